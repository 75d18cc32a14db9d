/*
 * disk-probe - what the disk under DIR gives a durable store, the yardsticks
 * the performance targets are written against:
 *   fdatasync: append 100 bytes to a file and fdatasync it, as fast as it
 *              goes for SECONDS: rate and latency percentiles;
 *   sqlite:    one INSERT of a 100-byte row per transaction in a WAL
 *              database with synchronous=FULL (keyval's settings), for
 *              SECONDS: commits per second and latency percentiles.
 * Usage: disk-probe DIR [SECONDS]   (default 3 seconds per probe)
 * Prints one line per probe, key=value, and removes its files.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1u << 22)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *lat, size_t n, double secs)
{
    if (n == 0) {
        printf("probe=%s ops=0\n", name);
        return;
    }
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("probe=%s ops=%zu seconds=%.2f ops_per_s=%.0f p50_us=%.0f p99_us=%.0f\n", name, n, secs,
           (double)n / secs, lat[n / 2], lat[(size_t)((double)n * 0.99)]);
}

static int probe_fdatasync(const char *dir, double secs, double *lat)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/disk-probe.%ld", dir, (long)getpid()) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0) {
        fprintf(stderr, "disk-probe: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[100];
    memset(buf, 'x', sizeof buf);
    size_t n = 0;
    double t0 = now_us(), end = t0 + secs * 1e6, t = t0;
    while (t < end && n < MAX_SAMPLES) {
        double a = now_us();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
            fprintf(stderr, "disk-probe: %s: %s\n", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        t = now_us();
        lat[n++] = t - a;
    }
    close(fd);
    unlink(path);
    report("fdatasync", lat, n, (t - t0) / 1e6);
    return 0;
}

static int probe_sqlite(const char *dir, double secs, double *lat)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/disk-probe.%ld.db", dir, (long)getpid()) >=
        (int)sizeof path - 8)
        return -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)", NULL, NULL, NULL) ==
                 SQLITE_OK &&
             sqlite3_prepare_v2(db, "INSERT INTO t (k, v) VALUES (?, ?)", -1, &ins, NULL) ==
                 SQLITE_OK;
    char val[100];
    memset(val, 'v', sizeof val);
    size_t n = 0;
    double t0 = now_us(), end = t0 + secs * 1e6, t = t0;
    while (ok && t < end && n < MAX_SAMPLES) {
        double a = now_us();
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)n);
        sqlite3_bind_blob(ins, 2, val, sizeof val, SQLITE_STATIC);
        ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_step(ins) == SQLITE_DONE && sqlite3_reset(ins) == SQLITE_OK &&
             sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
        t = now_us();
        lat[n++] = t - a;
    }
    if (!ok)
        fprintf(stderr, "disk-probe: %s: %s\n", path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(ins);
    sqlite3_close(db);
    char side[4200];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    if (!ok)
        return -1;
    report("sqlite-commit", lat, n, (t - t0) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: disk-probe DIR [SECONDS]\n");
        return 2;
    }
    double secs = argc == 3 ? atof(argv[2]) : 3.0;
    if (!(secs > 0 && secs <= 600)) {
        fprintf(stderr, "disk-probe: SECONDS must be in (0, 600]\n");
        return 2;
    }
    double *lat = malloc(MAX_SAMPLES * sizeof *lat);
    if (!lat) {
        fprintf(stderr, "disk-probe: out of memory\n");
        return 1;
    }
    int rc = probe_fdatasync(argv[1], secs, lat) == 0 && probe_sqlite(argv[1], secs, lat) == 0;
    free(lat);
    return rc ? 0 : 1;
}
