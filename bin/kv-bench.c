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

struct bench_args {
    struct client_sockopt so;
    int nconns;
    double seconds;
    long long max_ops;
};

/* The flags into a and the g_ settings. Returns -1 to go on, else the
 * exit status. */
static int parse_args(int argc, char **argv, struct bench_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(o, "-q")) {
            g_quiet = 1;
            continue;
        }
        static const char *const valued[] = { "-s", "-d", "-c", "-t", "-n", "-op",
                                              "-keys", "-batch", "-vsize", "-prefix" };
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= !strcmp(o, valued[k]);
        if (!known) {
            fprintf(stderr, PROG ": unknown option %s\n", o);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, PROG ": %s needs a value\n", o);
            usage(stderr);
            return 2;
        }
        i++;
        if ((!strcmp(o, "-s") || !strcmp(o, "-d")) && client_sockopt_take(&a->so, o[1], v))
            continue;
        if (!strcmp(o, "-c"))
            a->nconns = atoi(v);
        else if (!strcmp(o, "-t"))
            a->seconds = atof(v);
        else if (!strcmp(o, "-n"))
            a->max_ops = atoll(v);
        else if (!strcmp(o, "-keys"))
            g_keys = atoll(v);
        else if (!strcmp(o, "-batch"))
            g_batch = atoi(v);
        else if (!strcmp(o, "-vsize"))
            g_vsize = atoi(v);
        else if (!strcmp(o, "-prefix"))
            g_prefix = v;
        else if (!strcmp(o, "-op")) {
            static const char *const ops[] = { [OP_SET] = "set", [OP_GET] = "get",
                                               [OP_STALE] = "stale", [OP_FILL] = "fill" };
            int found = -1;
            for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++)
                if (!strcmp(v, ops[k]))
                    found = k;
            if (found < 0) {
                fprintf(stderr, PROG ": bad -op %s\n", v);
                return 2;
            }
            g_op = found;
        }
    }
    if (a->nconns < 1 || a->nconns > MAX_CONNS || a->seconds <= 0 || a->seconds > 3600 ||
        g_keys < 1 || g_batch < 1 || g_batch > 10000 || g_vsize < 0 || g_vsize > 65536 ||
        a->max_ops < 0 || strlen(g_prefix) > 64 || strpbrk(g_prefix, "\"\\")) {
        fprintf(stderr, PROG ": option out of range (-c 1..%d, -t 0..3600, -batch 1..10000, "
                        "-vsize 0..65536, -prefix up to 64 bytes without quotes)\n",
                MAX_CONNS);
        return 2;
    }
    return -1;
}

/* What a run counts. */
struct bench_run {
    long long ops, errors, started, max_ops;
    char first_err[256];
    uint64_t *lat;
    size_t n_lat, lat_cap;
    uint64_t end; /* no new request after this (ns) */
    int active;   /* connections with a request outstanding */
};

/* Starts the next request on c unless the run is over; else c retires. */
static void start_next(struct bench_run *r, conn *c, int i, uint64_t now)
{
    c->busy = 0;
    if (now < r->end && !(r->max_ops && r->started >= r->max_ops) && next_request(c, i) == 0) {
        c->busy = 1;
        c->sent_ns = now_ns();
        r->started++;
    } else {
        r->active--;
    }
}

/* c's reply line is in c->in[0..nl): count it and its latency. Returns 0,
 * -1 when out of memory. */
static int take_reply(struct bench_run *r, conn *c, char *nl, uint64_t t)
{
    /* "code":2xx is success ("code" is the first member of raftd's
     * replies, but look for it anywhere). */
    *nl = '\0';
    char *code = strstr(c->in, "\"code\":");
    if (!(code && code[7] == '2')) {
        r->errors++;
        if (!r->first_err[0])
            snprintf(r->first_err, sizeof r->first_err, "%.200s", c->in);
    }
    c->skip = 0;
    c->in_len = 0;
    if (r->n_lat == r->lat_cap) {
        uint64_t *nlat = realloc(r->lat, 2 * r->lat_cap * sizeof *r->lat);
        if (!nlat)
            return -1;
        r->lat = nlat;
        r->lat_cap *= 2;
    }
    r->lat[r->n_lat++] = t - c->sent_ns;
    r->ops++;
    return 0;
}

/* One ready connection: send more of its request, or read its reply.
 * Returns 0, or -1 after printing why the run cannot go on. */
static int conn_io(struct bench_run *r, conn *c, int i)
{
    if (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            return 0;
        if (w <= 0) {
            fprintf(stderr, PROG ": send: %s\n", strerror(errno));
            return -1;
        }
        c->out_off += (size_t)w;
        return 0;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n <= 0) {
        fprintf(stderr, PROG ": raftd closed a connection: %s\n", n < 0 ? strerror(errno) : "EOF");
        return -1;
    }
    c->in_len += (size_t)n;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
        if (c->in_len == sizeof c->in) { /* long reply: keep the head only */
            c->skip = 1;
            memmove(c->in, c->in + sizeof c->in - 64, 64);
            c->in_len = 64;
        }
        return 0;
    }
    uint64_t t = now_ns();
    if (take_reply(r, c, nl, t) < 0)
        return -1;
    start_next(r, c, i, t);
    return 0;
}

/* Drives nconns connections until the run ends. Returns 0, or 1 on a
 * failure that stops it. */
static int run_conns(struct bench_run *r, conn *cs, struct pollfd *pf, int nconns)
{
    r->active = nconns;
    for (int i = 0; i < nconns; i++)
        start_next(r, &cs[i], i, 0);
    while (r->active > 0) {
        for (int i = 0; i < nconns; i++) {
            conn *c = &cs[i];
            pf[i].fd = c->busy ? c->fd : -1;
            pf[i].events = c->out_off < c->out_len ? POLLOUT : POLLIN;
            pf[i].revents = 0;
        }
        uint64_t now = now_ns();
        int to = now >= r->end + 10000000000ull ? 0 : 1000;
        int pr = poll(pf, (nfds_t)nconns, to);
        if (pr < 0 && errno != EINTR) {
            perror(PROG ": poll");
            return 1;
        }
        if (pr == 0 && now_ns() > r->end + 10000000000ull) {
            fprintf(stderr, PROG ": %d requests got no reply within 10 s of the end\n",
                    r->active);
            r->errors += r->active;
            return 0;
        }
        for (int i = 0; i < nconns; i++)
            if (cs[i].busy && pf[i].revents && conn_io(r, &cs[i], i) < 0)
                return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_args a = { .nconns = 8, .seconds = 5 };
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char sock[4096];
    if (client_sockopt_path(&a.so, PROG, sock, sizeof sock) < 0)
        return 2;
    g_value = malloc((size_t)g_vsize + 1);
    if (!g_value)
        return 1;
    for (int i = 0; i < g_vsize; i++)
        g_value[i] = (char)('a' + i % 26);
    g_value[g_vsize] = '\0';

    int nconns = a.nconns;
    conn *cs = calloc((size_t)nconns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)nconns, sizeof *pf);
    struct bench_run r = { .max_ops = a.max_ops, .lat_cap = 1u << 16 };
    r.lat = malloc(r.lat_cap * sizeof *r.lat);
    int ok = cs && pf && r.lat;
    for (int i = 0; ok && i < nconns; i++) {
        cs[i].fd = conn_open(sock);
        if (cs[i].fd < 0) {
            fprintf(stderr, PROG ": connect %s: %s\n", sock, strerror(errno));
            ok = 0;
        }
    }
    if (!ok) {
        free(r.lat);
        return 1;
    }
    uint64_t t0 = now_ns();
    r.end = t0 + (uint64_t)(a.seconds * 1e9);
    if (run_conns(&r, cs, pf, nconns)) {
        free(r.lat);
        return 1;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(r.lat, r.n_lat, sizeof *r.lat, cmp_u64);
    size_t n = r.n_lat;
    uint64_t p50 = n ? r.lat[n / 2] : 0, p99 = n ? r.lat[(n * 99) / 100] : 0,
             mx = n ? r.lat[n - 1] : 0;
    static const char *names[] = {"set", "get", "stale", "fill"};
    printf("op=%s conns=%d batch=%d ops=%lld errors=%lld seconds=%.2f ops_per_s=%.1f "
           "keys_per_s=%.1f p50_us=%llu p99_us=%llu max_us=%llu\n",
           names[g_op], nconns, g_batch, r.ops, r.errors, secs, r.ops / secs,
           (g_op == OP_SET || g_op == OP_FILL ? g_batch : 1) * r.ops / secs,
           (unsigned long long)(p50 / 1000), (unsigned long long)(p99 / 1000),
           (unsigned long long)(mx / 1000));
    if (r.errors && !g_quiet)
        fprintf(stderr, PROG ": %lld requests failed; first reply: %s\n", r.errors,
                r.first_err);
    for (int i = 0; i < nconns; i++) {
        close(cs[i].fd);
        free(cs[i].buf);
    }
    free(r.lat);
    return r.errors ? 1 : 0;
}
