/*
 * store-apply.c - the storage layer's apply rate: N log entries, each a
 * single-key set of a 100-byte value ({"set":{"kNNNNNN":"vvv..."}}),
 * applied with store_apply in batches of B entries per transaction (one
 * store_begin/store_commit per batch, as raftd applies a Ready batch).
 * Prints entries per second (wall clock) and microseconds per entry of
 * wall clock and of CPU (user + system: steadier on a shared machine);
 * no assertions.
 *
 * usage: store-apply DIR [N [B [KEYS]]]   (defaults 20000 100 1000)
 * KEYS distinct keys are set round-robin, so the table stays small and the
 * figure is the cost of the write path, not of a growing B-tree.
 */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store-apply DIR [N [B [KEYS]]]\n");
        return 100;
    }
    long n = argc > 2 ? atol(argv[2]) : 20000;
    long b = argc > 3 ? atol(argv[3]) : 100;
    long keys = argc > 4 ? atol(argv[4]) : 1000;
    if (n < 1 || b < 1 || keys < 1) {
        fprintf(stderr, "store-apply: N, B and KEYS must be positive\n");
        return 100;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.db", argv[1]);
    unlink(path);
    store *s = store_open(path);
    if (!s) {
        fprintf(stderr, "store-apply: %s\n", store_open_error());
        return 111;
    }
    if (getenv("STORE_APPLY_KEEP")) /* the history kept (storage default 10000) */
        store_set_history_keep(s, (uint64_t)atoll(getenv("STORE_APPLY_KEEP")));
    char value[101];
    memset(value, 'v', 100);
    value[100] = 0;
    char cmd[256];
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n; i += b) {
        if (store_begin(s) < 0)
            goto fail;
        for (long j = i; j < i + b && j < n; j++) {
            int len = snprintf(cmd, sizeof cmd, "{\"set\":{\"k%06ld\":\"%s\"}}", j % keys, value);
            raft_entry e = {.term = 1,
                            .index = (uint64_t)j + 1,
                            .type = RAFT_ENTRY_NORMAL,
                            .len = (uint32_t)len,
                            .data = (uint8_t *)cmd};
            store_result r;
            if (store_apply(s, &e, &r) < 0 || r.code != 200)
                goto fail;
        }
        if (store_commit(s) < 0)
            goto fail;
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    printf("store-apply: %ld entries, %ld per transaction, %ld keys: %.0f entries/s, "
           "%.2f us/entry wall, %.2f us/entry CPU\n",
           n, b, keys, (double)n / dt, dt * 1e6 / (double)n, dc * 1e6 / (double)n);
    store_close(s);
    unlink(path);
    return 0;
fail:
    fprintf(stderr, "store-apply: %s\n", store_error(s));
    store_close(s);
    return 111;
}
