/*
 * kv-bench - drive raftd.sock directly: N concurrent connections, each
 * sending one request at a time, and print throughput and latency.
 *
 *   kv-bench [-s SOCK | -d DATADIR] [-c CONNS] [-t SECONDS | -n OPS]
 *            [-op set|get|stale] [-keys N] [-batch K] [-vsize BYTES]
 *            [-prefix P] [-q]
 *
 * set:   writes unique keys P<conn>-<seq> (K keys per request, one atomic
 *        set) with values of BYTES bytes.
 * get:   linearizable reads of keys P0 .. P(N-1) (round robin).
 * stale: the same reads with "level":"stale".
 * fill:  writes keys P0 .. P(N-1) once (K per request), then stops; used to
 *        preload data for reads and for size measurements.
 *
 * Output, one line:
 *   op=set conns=8 ops=12345 errors=0 seconds=5.00 ops_per_s=2469.0
 *   p50_us=3100 p99_us=7400 max_us=12000
 * Exit status 0, or 1 when any request failed (non-2xx or no reply) or
 * the socket cannot be reached, 2 on a usage error.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define PROG "kv-bench"
#define MAX_CONNS 1024
#define REPLY_MAX (1u << 20)

enum { OP_SET, OP_GET, OP_STALE, OP_FILL };

typedef struct conn {
    int fd;
    char *buf;
    char *out;
    size_t out_len, out_off;
    char in[4096];
    size_t in_len;
    size_t skip;          /* bytes of an over-long reply still to drop */
    uint64_t sent_ns;
    uint64_t seq;
    int busy;
} conn;

static int g_op = OP_SET, g_batch = 1, g_vsize = 16, g_quiet;
static long long g_keys = 1000;
static const char *g_prefix = "kb";
static char *g_value;
static long long g_fill_next;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: kv-bench [-s SOCK | -d DATADIR] [-c CONNS] [-t SECONDS | -n OPS]\n"
"                [-op set|get|stale|fill] [-keys N] [-batch K] [-vsize BYTES]\n"
"                [-prefix P] [-q]\n"
"\n"
"Sends requests to raftd.sock, one outstanding request per connection, and\n"
"prints ops/s and latency percentiles.\n"
"  -s SOCK      the raftd socket\n"
"  -d DATADIR   use DATADIR/raftd.sock (without -s or -d: $KEYVAL_SOCKET,\n"
"               else $KEYVAL_DATADIR/raftd.sock, else $HOME/node0/raftd.sock)\n"
"  -c CONNS     connections (default 8)\n"
"  -t SECONDS   run this long (default 5)\n"
"  -n OPS       stop after this many requests instead\n"
"  -op set      unique keys P<conn>-<seq>, K keys per request (default)\n"
"  -op get      linearizable reads of P0..P(N-1)\n"
"  -op stale    stale reads of P0..P(N-1)\n"
"  -op fill     writes P0..P(N-1) once, K per request, then stops\n"
"  -keys N      key space of get/stale/fill (default 1000)\n"
"  -batch K     keys per write request (default 1)\n"
"  -vsize B     value size in bytes (default 16)\n"
"  -prefix P    key prefix (default kb)\n"
"  -q           quiet: only the summary line, no errors of single requests\n");
}

static int conn_open(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Builds the next request of c into c->out. Returns 0, or -1 when a fill
 * has nothing left to write. */
static int next_request(conn *c, int idx)
{
    /* Each connection has its own buffer: a request may go out in
     * pieces while others are built. */
    size_t cap = 256 + (size_t)g_batch * (size_t)(g_vsize + 96);
    if (!c->buf) {
        c->buf = malloc(cap);
        if (!c->buf) {
            fprintf(stderr, PROG ": out of memory\n");
            exit(1);
        }
    }
    char *buf = c->buf;
    size_t o = 0;
    if (g_op == OP_GET || g_op == OP_STALE) {
        long long k = (long long)((c->seq * MAX_CONNS + (uint64_t)idx) % (uint64_t)g_keys);
        o = (size_t)snprintf(buf, cap, "{\"op\":\"get\",\"key\":\"%s%lld\"%s}\n", g_prefix, k,
                             g_op == OP_STALE ? ",\"level\":\"stale\"" : "");
    } else {
        if (g_op == OP_FILL && g_fill_next >= g_keys)
            return -1;
        o = (size_t)snprintf(buf, cap, "{\"op\":\"set\",\"kv\":{");
        for (int i = 0; i < g_batch; i++) {
            if (g_op == OP_FILL) {
                if (g_fill_next >= g_keys)
                    break;
                o += (size_t)snprintf(buf + o, cap - o, "%s\"%s%lld\":\"%s\"", i ? "," : "",
                                      g_prefix, g_fill_next++, g_value);
            } else {
                o += (size_t)snprintf(buf + o, cap - o, "%s\"%s%d-%llu-%d\":\"%s\"",
                                      i ? "," : "", g_prefix, idx,
                                      (unsigned long long)c->seq, i, g_value);
            }
        }
        o += (size_t)snprintf(buf + o, cap - o, "}}\n");
    }
    c->seq++;
    c->out = buf;
    c->out_len = o;
    c->out_off = 0;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    int nconns = 8;
    double seconds = 5;
    long long max_ops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-q")) {
            g_quiet = 1;
            continue;
        }
        static const char *const valued[] = { "-s", "-d", "-c", "-t", "-n", "-op",
                                              "-keys", "-batch", "-vsize", "-prefix" };
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, PROG ": %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if ((!strcmp(a, "-s") || !strcmp(a, "-d")) && client_sockopt_take(&so, a[1], v))
            continue;
        if (!strcmp(a, "-c"))
            nconns = atoi(v);
        else if (!strcmp(a, "-t"))
            seconds = atof(v);
        else if (!strcmp(a, "-n"))
            max_ops = atoll(v);
        else if (!strcmp(a, "-keys"))
            g_keys = atoll(v);
        else if (!strcmp(a, "-batch"))
            g_batch = atoi(v);
        else if (!strcmp(a, "-vsize"))
            g_vsize = atoi(v);
        else if (!strcmp(a, "-prefix"))
            g_prefix = v;
        else if (!strcmp(a, "-op")) {
            if (!strcmp(v, "set"))
                g_op = OP_SET;
            else if (!strcmp(v, "get"))
                g_op = OP_GET;
            else if (!strcmp(v, "stale"))
                g_op = OP_STALE;
            else if (!strcmp(v, "fill"))
                g_op = OP_FILL;
            else {
                fprintf(stderr, PROG ": bad -op %s\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (nconns < 1 || nconns > MAX_CONNS || seconds <= 0 || seconds > 3600 || g_keys < 1 ||
        g_batch < 1 || g_batch > 10000 || g_vsize < 0 || g_vsize > 65536 || max_ops < 0 ||
        strlen(g_prefix) > 64 || strpbrk(g_prefix, "\"\\")) {
        fprintf(stderr, PROG ": option out of range (-c 1..%d, -t 0..3600, -batch 1..10000, "
                        "-vsize 0..65536, -prefix up to 64 bytes without quotes)\n",
                MAX_CONNS);
        return 2;
    }
    char sock[4096];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0)
        return 2;
    g_value = malloc((size_t)g_vsize + 1);
    if (!g_value)
        return 1;
    for (int i = 0; i < g_vsize; i++)
        g_value[i] = (char)('a' + i % 26);
    g_value[g_vsize] = '\0';

    conn *cs = calloc((size_t)nconns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)nconns, sizeof *pf);
    size_t lat_cap = 1u << 16, n_lat = 0;
    uint64_t *lat = malloc(lat_cap * sizeof *lat);
    if (!cs || !pf || !lat)
        return 1;
    for (int i = 0; i < nconns; i++) {
        cs[i].fd = conn_open(sock);
        if (cs[i].fd < 0) {
            fprintf(stderr, PROG ": connect %s: %s\n", sock, strerror(errno));
            return 1;
        }
    }
    long long ops = 0, errors = 0, started = 0;
    char first_err[256] = "";
    uint64_t t0 = now_ns();
    uint64_t end = t0 + (uint64_t)(seconds * 1e9);
    int active = nconns;
    for (int i = 0; i < nconns; i++) {
        if ((max_ops && started >= max_ops) || next_request(&cs[i], i) < 0) {
            active--;
            continue;
        }
        cs[i].busy = 1;
        cs[i].sent_ns = now_ns();
        started++;
    }
    while (active > 0) {
        for (int i = 0; i < nconns; i++) {
            conn *c = &cs[i];
            pf[i].fd = c->busy ? c->fd : -1;
            pf[i].events = c->out_off < c->out_len ? POLLOUT : POLLIN;
            pf[i].revents = 0;
        }
        uint64_t now = now_ns();
        int to = now >= end + 10000000000ull ? 0 : 1000;
        int pr = poll(pf, (nfds_t)nconns, to);
        if (pr < 0 && errno != EINTR) {
            perror(PROG ": poll");
            return 1;
        }
        if (pr == 0 && now_ns() > end + 10000000000ull) {
            fprintf(stderr, PROG ": %d requests got no reply within 10 s of the end\n", active);
            errors += active;
            break;
        }
        for (int i = 0; i < nconns; i++) {
            conn *c = &cs[i];
            if (!c->busy || !pf[i].revents)
                continue;
            if (c->out_off < c->out_len) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    fprintf(stderr, PROG ": send: %s\n", strerror(errno));
                    return 1;
                }
                c->out_off += (size_t)w;
                continue;
            }
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                fprintf(stderr, PROG ": raftd closed a connection: %s\n",
                        r < 0 ? strerror(errno) : "EOF");
                return 1;
            }
            c->in_len += (size_t)r;
            char *nl = memchr(c->in, '\n', c->in_len);
            if (!nl) {
                if (c->in_len == sizeof c->in) { /* long reply: keep the head only */
                    c->skip = 1;
                    memmove(c->in, c->in + sizeof c->in - 64, 64);
                    c->in_len = 64;
                }
                continue;
            }
            uint64_t t = now_ns();
            /* One reply: "code":2xx is success ("code" is the first member
             * of raftd's replies, but look for it anywhere). */
            *nl = '\0';
            char *code = strstr(c->in, "\"code\":");
            int ok = code && code[7] == '2';
            if (!ok) {
                errors++;
                if (!first_err[0])
                    snprintf(first_err, sizeof first_err, "%.200s", c->in);
            }
            c->skip = 0;
            c->in_len = 0;
            if (n_lat == lat_cap) {
                uint64_t *nlat = realloc(lat, 2 * lat_cap * sizeof *lat);
                if (!nlat)
                    return 1;
                lat = nlat;
                lat_cap *= 2;
            }
            lat[n_lat++] = t - c->sent_ns;
            ops++;
            c->busy = 0;
            if (t < end && !(max_ops && started >= max_ops) && next_request(c, i) == 0) {
                c->busy = 1;
                c->sent_ns = now_ns();
                started++;
            } else {
                active--;
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(lat, n_lat, sizeof *lat, cmp_u64);
    uint64_t p50 = n_lat ? lat[n_lat / 2] : 0, p99 = n_lat ? lat[(n_lat * 99) / 100] : 0,
             mx = n_lat ? lat[n_lat - 1] : 0;
    static const char *names[] = {"set", "get", "stale", "fill"};
    printf("op=%s conns=%d batch=%d ops=%lld errors=%lld seconds=%.2f ops_per_s=%.1f "
           "keys_per_s=%.1f p50_us=%llu p99_us=%llu max_us=%llu\n",
           names[g_op], nconns, g_batch, ops, errors, secs, ops / secs,
           (g_op == OP_SET || g_op == OP_FILL ? g_batch : 1) * ops / secs,
           (unsigned long long)(p50 / 1000), (unsigned long long)(p99 / 1000),
           (unsigned long long)(mx / 1000));
    if (errors && !g_quiet)
        fprintf(stderr, PROG ": %lld requests failed; first reply: %s\n", errors, first_err);
    for (int i = 0; i < nconns; i++) {
        close(cs[i].fd);
        free(cs[i].buf);
    }
    return errors ? 1 : 0;
}
