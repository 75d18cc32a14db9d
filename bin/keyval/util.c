/*
 * util.c - keyval's small helpers: its messages (progress to stdout,
 * errors to stderr, both "keyval: ..."), the clock, small files written
 * atomically, and finding its directories and the programs it runs.
 */
#include "keyval.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

void die_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files ---- */

int mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    struct stat sb;
    if (stat(buf, &sb) < 0)
        return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int is_exec(const char *path)
{
    return access(path, X_OK) == 0;
}

/* Reads a whole small file; returns malloc'ed text or NULL. */
char *read_small(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(buf);
        errno = bad && buf ? EFBIG : errno;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0)
        return -1;
    return 0;
}

/* ---- directories and programs ---- */

/* Finds dir/rel1 or dir/rel2 (first that exists); returns 0 and the
 * directory path in out. */
int find_dir(const char *bindir, const char *rel1, const char *rel2, const char *probe, char *out,
             size_t outlen)
{
    const char *rels[2] = {rel1, rel2};
    for (int i = 0; i < 2; i++) {
        char d[PATH_MAX], f[PATH_MAX + 64];
        snprintf(d, sizeof d, "%s/%s", bindir, rels[i]);
        char real[PATH_MAX];
        if (!realpath(d, real))
            continue;
        snprintf(f, sizeof f, "%s/%s", real, probe);
        if (file_exists(f)) {
            snprintf(out, outlen, "%s", real);
            return 0;
        }
    }
    return -1;
}

/* Finds a program: $ENV, then bindir/name, then PATH, then /usr/sbin. */
void find_prog(const char *env, const char *bindir, const char *name, char *out, size_t outlen)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, outlen, "%s", e);
        return;
    }
    char p[PATH_MAX + 64];
    if (bindir) {
        snprintf(p, sizeof p, "%s/%s", bindir, name);
        if (is_exec(p)) {
            snprintf(out, outlen, "%s", p);
            return;
        }
        /* Installed: keyval in PREFIX/bin, raftd in PREFIX/sbin. */
        char real[PATH_MAX];
        snprintf(p, sizeof p, "%s/../sbin/%s", bindir, name);
        if (is_exec(p) && realpath(p, real)) {
            snprintf(out, outlen, "%s", real);
            return;
        }
    }
    const char *path = getenv("PATH");
    if (path) {
        const char *s = path;
        while (*s) {
            const char *c = strchr(s, ':');
            size_t l = c ? (size_t)(c - s) : strlen(s);
            if (l > 0 && l < PATH_MAX) {
                snprintf(p, sizeof p, "%.*s/%s", (int)l, s, name);
                if (is_exec(p)) {
                    snprintf(out, outlen, "%s", p);
                    return;
                }
            }
            s += l + (c ? 1 : 0);
        }
    }
    const char *sys[] = {"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", sys[i], name);
        if (is_exec(p)) {
            snprintf(out, outlen, "%s", p);
            return;
        }
    }
    snprintf(out, outlen, "%s", name);
}
