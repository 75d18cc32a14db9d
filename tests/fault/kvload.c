/*
 * kvload - concurrent HTTP workload for the fault tests; records a history.
 *
 *   kvload -o DIR -P PORTSFILE -c CLIENTS -d SECONDS -s SEED [-t TIMEOUT_S] [-k KEYPREFIX]
 *   kvload -F -o DIR -P PORTSFILE [-k KEYPREFIX]   final linearizable read of every key
 *   kvload -now                                    prints CLOCK_MONOTONIC in ns
 * -L: count a 503 "raftd unavailable" that came after the request reached
 * raftd (not "connect ...") as unknown, not failed: the CGI layer gives no
 * "outcome":"unknown" there although the write may commit (a known bug,
 * tests/fault/ambiguous-503.sh); lets long runs look past it.
 *
 * Each client is a process talking HTTP/1.1 over loopback to a random port
 * listed in PORTSFILE (re-read every second, so nodes can come and go).
 * Operations: linearizable reads, stale reads, PUT writes of unique values,
 * conditional PUTs (If-Match from the client's last read, If-None-Match: *),
 * deletes and multi-key POST /key batches, over a rotating window of three
 * keys (a new key every ~333 operations, so each key sees ~1000 ops).
 * One line per operation (a batch: one line per key) in DIR/hist-CLIENT:
 *   CLIENT SEQ INVOKE_NS RETURN_NS OUTCOME TYPE KEY VALUE EXPECT INDEX APPLIED PORT
 *   HTTP_STATUS ERROR (0: no answer; ERROR the reply's "error", '_' for spaces)
 * OUTCOME ok | fail (definitely no effect) | pre (TYPE c only: 412, the
 * condition did not hold) | unk (timeout, connection lost after sending, 503 "outcome":"unknown").
 * TYPE r read, s stale read, w write, c conditional write, d delete,
 * b part of a batch. "-" stands for absent / not applicable. Timestamps are
 * CLOCK_MONOTONIC, comparable across processes.
 */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX (1u << 20)
#define WINDOW 3
#define OPS_PER_SLIDE 333
#define MAX_PORTS 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* ----------------------------------------------------------- HTTP client */

typedef struct {
    int sent;   /* request fully written */
    int status; /* 0: no complete response */
    char etag_index[32], applied[32];
    char *body; /* NUL-terminated, malloc'd */
} resp;

static int dial(int port, uint64_t deadline)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            close(fd);
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void header_value(const char *hdrs, const char *name, char *out, size_t outsz)
{
    out[0] = 0;
    size_t nl = strlen(name);
    for (const char *p = hdrs; p && *p;) {
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t o = 0;
            while (*v == ' ' || *v == '"')
                v++;
            while (*v && *v != '\r' && *v != '\n' && *v != '"' && o + 1 < outsz)
                out[o++] = *v++;
            out[o] = 0;
            return;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
}

/* One request on a fresh connection (Connection: close). */
static void http(int port, const char *method, const char *path, const char *hdr, const char *body,
                 uint64_t timeout_ns, resp *r)
{
    memset(r, 0, sizeof *r);
    uint64_t deadline = now_ns() + timeout_ns;
    int fd = dial(port, deadline);
    if (fd < 0)
        return;
    char req[8192];
    size_t bl = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, port, hdr ? hdr : "", bl, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req) {
        close(fd);
        return;
    }
    size_t off = 0;
    char *buf = malloc(RESP_MAX + 1);
    size_t len = 0;
    if (!buf) {
        close(fd);
        return;
    }
    int partial_write = 0;
    for (;;) {
        int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
        if (left <= 0)
            break;
        struct pollfd p = {fd, (short)(off < (size_t)n ? POLLOUT : POLLIN), 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        if (off < (size_t)n) {
            ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                partial_write = 1;
                if (off == (size_t)n)
                    r->sent = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                break;
            }
            continue;
        }
        ssize_t m = recv(fd, buf + len, RESP_MAX - len, 0);
        if (m > 0) {
            len += (size_t)m;
            if (len >= RESP_MAX)
                break;
        } else if (m == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    close(fd);
    if (partial_write)
        r->sent = 1; /* any byte sent: the server may have acted on it */
    buf[len] = 0;
    char *hend = strstr(buf, "\r\n\r\n");
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) || !hend) {
        free(buf);
        return;
    }
    *hend = 0;
    char cl[32];
    header_value(buf, "Content-Length", cl, sizeof cl);
    const char *b = hend + 4;
    size_t have = len - (size_t)(b - buf);
    if (cl[0] && (size_t)atol(cl) > have) { /* truncated body */
        free(buf);
        return;
    }
    r->status = atoi(buf + 9);
    header_value(buf, "X-Keyval-Index", r->etag_index, sizeof r->etag_index);
    header_value(buf, "X-Keyval-Applied", r->applied, sizeof r->applied);
    r->body = strdup(b);
    free(buf);
}

/* ------------------------------------------------------------- workload */

static char portsfile[1024];
static int ports[MAX_PORTS], nports;
static uint64_t ports_read_at;

static void load_ports(void)
{
    uint64_t t = now_ns();
    if (nports && t - ports_read_at < 1000000000ull)
        return;
    ports_read_at = t;
    FILE *f = fopen(portsfile, "r");
    if (!f)
        return;
    int tmp[MAX_PORTS], n = 0, p;
    while (n < MAX_PORTS && fscanf(f, "%d", &p) == 1)
        if (p > 0 && p < 65536)
            tmp[n++] = p;
    fclose(f);
    if (n) {
        memcpy(ports, tmp, sizeof tmp[0] * (size_t)n);
        nports = n;
    }
}

static FILE *hist;
static int client_id;
static const char *keyprefix = "k";

static const resp *cur; /* the answer of the op being recorded, for its status */

static void record(long seq, uint64_t inv, uint64_t ret, const char *outcome, char type, long key,
                   const char *value, const char *expect, const char *index, const char *applied,
                   int port)
{
    char why[80] = "-";
    if (cur && cur->status != 200 && cur->body) { /* the error, spaces made '_' */
        json_error_t e;
        json_t *j = json_loads(cur->body, 0, &e);
        const char *er = json_string_value(json_object_get(j, "error"));
        if (er) {
            snprintf(why, sizeof why, "%s", er);
            for (char *c = why; *c; c++)
                if (*c == ' ' || *c == '\n' || *c == '\t')
                    *c = '_';
        }
        json_decref(j);
    }
    fprintf(hist, "%d %ld %llu %llu %s %c %s%ld %s %s %s %s %d %d %s\n", client_id, seq,
            (unsigned long long)inv, (unsigned long long)ret, outcome, type, keyprefix, key,
            value && *value ? value : "-", expect && *expect ? expect : "-",
            index && *index ? index : "-", applied && *applied ? applied : "-", port,
            cur ? cur->status : 0, why);
    fflush(hist);
}

static int is_unknown_503(const resp *r)
{
    return r->status == 503 && r->body && strstr(r->body, "\"outcome\"") &&
           strstr(r->body, "unknown");
}

static int lenient_503; /* -L */

/* Outcome of a write-like request: ok (200); fail when nothing was sent,
 * a 4xx, or a 503 without "outcome":"unknown" (not proposed, per
 * docs/client-protocol.md); otherwise unk (no complete answer, 503 unknown,
 * other 5xx). */
static const char *write_outcome(const resp *r)
{
    if (r->status == 200)
        return "ok";
    if (!r->sent)
        return "fail";
    if (r->status == 0 || is_unknown_503(r))
        return "unk";
    if (r->status >= 400 && r->status < 500)
        return "fail";
    if (r->status == 503 && lenient_503 && r->body && strstr(r->body, "raftd unavailable") &&
        !strstr(r->body, "unavailable: connect "))
        return "unk"; /* -L: known bug, see tests/fault/ambiguous-503.sh */
    if (r->status == 503)
        return "fail";
    return "unk";
}

/* Value of key in a GET body {"K":"V"}; "" when absent or unparsable. */
static int body_value(const char *body, const char *key, char *out, size_t outsz)
{
    out[0] = 0;
    json_error_t e;
    json_t *j = body ? json_loads(body, 0, &e) : NULL;
    if (!j)
        return -1;
    json_t *v = json_object_get(j, key);
    int rc = -1;
    if (json_is_string(v)) {
        snprintf(out, outsz, "%s", json_string_value(v));
        rc = 0;
    }
    json_decref(j);
    return rc;
}

typedef struct {
    long key;
    char value[64];
    char index[32];
} lastread;

static void client_main(int id, uint64_t end, uint64_t timeout_ns, uint64_t seed,
                        volatile long *counter, volatile long *maxkey)
{
    client_id = id;
    rng_state = seed * 7919u + (uint64_t)id * 104729u + 1;
    lastread lr[WINDOW * 4];
    memset(lr, 0, sizeof lr);
    for (int i = 0; i < WINDOW * 4; i++)
        lr[i].key = -1;
    long seq = 0;
    while (now_ns() < end) {
        load_ports();
        if (!nports) {
            usleep(100000);
            continue;
        }
        int port = ports[rnd() % (uint64_t)nports];
        long total = __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
        long base = total / OPS_PER_SLIDE;
        long key = base + (long)(rnd() % WINDOW);
        long mk = *maxkey;
        while (key + WINDOW > mk &&
               !__atomic_compare_exchange_n(maxkey, &mk, key + WINDOW, 0, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST))
            ;
        char k[128], path[256], val[64], hdr[128], body[512];
        snprintf(k, sizeof k, "%s%ld", keyprefix, key);
        snprintf(val, sizeof val, "c%d-%ld", id, seq);
        lastread *L = &lr[key % (WINDOW * 4)];
        unsigned dice = (unsigned)(rnd() % 100);
        resp r;
        uint64_t inv = now_ns(), ret;
        cur = &r;
        if (dice < 35 || dice >= 100) { /* linearizable read */
            snprintf(path, sizeof path, "/key/%s", k);
            http(port, "GET", path, NULL, NULL, timeout_ns, &r);
            ret = now_ns();
            char v[64];
            if (r.status == 200 && body_value(r.body, k, v, sizeof v) == 0) {
                record(seq, inv, ret, "ok", 'r', key, v, NULL, r.etag_index, NULL, port);
                L->key = key;
                snprintf(L->value, sizeof L->value, "%s", v);
                snprintf(L->index, sizeof L->index, "%s", r.etag_index);
            } else if (r.status == 404) {
                record(seq, inv, ret, "ok", 'r', key, "-", NULL, NULL, NULL, port);
                L->key = -1;
            } else {
                record(seq, inv, ret, "fail", 'r', key, NULL, NULL, NULL, NULL, port);
            }
        } else if (dice < 45) { /* stale read */
            snprintf(path, sizeof path, "/key/%s?level=stale", k);
            http(port, "GET", path, NULL, NULL, timeout_ns, &r);
            ret = now_ns();
            char v[64];
            if (r.status == 200 && body_value(r.body, k, v, sizeof v) == 0)
                record(seq, inv, ret, "ok", 's', key, v, NULL, r.etag_index, r.applied, port);
            else if (r.status == 404)
                record(seq, inv, ret, "ok", 's', key, "-", NULL, NULL, r.applied, port);
            else
                record(seq, inv, ret, "fail", 's', key, NULL, NULL, NULL, NULL, port);
        } else if (dice < 70) { /* write */
            snprintf(path, sizeof path, "/key/%s", k);
            http(port, "PUT", path, NULL, val, timeout_ns, &r);
            ret = now_ns();
            record(seq, inv, ret, write_outcome(&r), 'w', key, val, NULL, NULL, NULL, port);
        } else if (dice < 85) { /* conditional write */
            const char *expect = "-";
            if (L->key == key && L->index[0] && (rnd() % 4)) {
                snprintf(hdr, sizeof hdr, "If-Match: \"%s\"\r\n", L->index);
                expect = L->value;
            } else {
                snprintf(hdr, sizeof hdr, "If-None-Match: *\r\n");
            }
            snprintf(path, sizeof path, "/key/%s", k);
            http(port, "PUT", path, hdr, val, timeout_ns, &r);
            ret = now_ns();
            const char *o = r.status == 412 ? "pre" : write_outcome(&r);
            record(seq, inv, ret, o, 'c', key, val, expect, NULL, NULL, port);
        } else if (dice < 90) { /* delete */
            snprintf(path, sizeof path, "/key/%s", k);
            http(port, "DELETE", path, NULL, NULL, timeout_ns, &r);
            ret = now_ns();
            const char *o = r.status == 404 ? "ok" : write_outcome(&r);
            record(seq, inv, ret, o, 'd', key, "-", NULL, NULL, NULL, port);
        } else { /* batch of 2-3 keys of the window */
            int nk = 2 + (int)(rnd() % 2);
            long keys[3];
            size_t o = (size_t)snprintf(body, sizeof body, "{");
            for (int i = 0; i < nk; i++) {
                keys[i] = base + i;
                o += (size_t)snprintf(body + o, sizeof body - o, "%s\"%s%ld\":\"%s\"", i ? "," : "",
                                      keyprefix, keys[i], val);
            }
            snprintf(body + o, sizeof body - o, "}");
            http(port, "POST", "/key", NULL, body, timeout_ns, &r);
            ret = now_ns();
            const char *oc = write_outcome(&r);
            for (int i = 0; i < nk; i++)
                record(seq, inv, ret, oc, 'b', keys[i], val, NULL, NULL, NULL, port);
        }
        if (!r.sent)
            usleep(100000); /* node down: do not spin on refused connections */
        free(r.body);
        seq++;
    }
}

/* Final linearizable read of keys 0..maxkey, retried until answered. */
static int final_reads(long maxkey, uint64_t timeout_ns)
{
    client_id = 999;
    int bad = 0;
    for (long key = 0; key <= maxkey; key++) {
        char k[128], path[256];
        snprintf(k, sizeof k, "%s%ld", keyprefix, key);
        snprintf(path, sizeof path, "/key/%s", k);
        uint64_t give_up = now_ns() + 60ull * 1000000000ull;
        int done = 0;
        while (!done && now_ns() < give_up) {
            ports_read_at = 0;
            load_ports();
            if (!nports)
                break;
            int port = ports[rnd() % (uint64_t)nports];
            resp r;
            uint64_t inv = now_ns();
            http(port, "GET", path, NULL, NULL, timeout_ns, &r);
            cur = &r;
            uint64_t ret = now_ns();
            char v[64];
            if (r.status == 200 && body_value(r.body, k, v, sizeof v) == 0) {
                record(key, inv, ret, "ok", 'r', key, v, NULL, r.etag_index, NULL, port);
                done = 1;
            } else if (r.status == 404) {
                record(key, inv, ret, "ok", 'r', key, "-", NULL, NULL, NULL, port);
                done = 1;
            } else {
                usleep(200000);
            }
            free(r.body);
        }
        if (!done) {
            fprintf(stderr, "kvload: final read of %s got no answer in 60 s\n", k);
            bad = 1;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    const char *outdir = NULL;
    int clients = 5, final = 0;
    double dur = 10, timeout_s = 12;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-now")) {
            printf("%llu\n", (unsigned long long)now_ns());
            return 0;
        } else if (!strcmp(a, "-F")) {
            final = 1;
        } else if (!strcmp(a, "-L")) {
            lenient_503 = 1;
        } else if (v && !strcmp(a, "-o")) {
            outdir = v, i++;
        } else if (v && !strcmp(a, "-P")) {
            snprintf(portsfile, sizeof portsfile, "%s", v), i++;
        } else if (v && !strcmp(a, "-c")) {
            clients = atoi(v), i++;
        } else if (v && !strcmp(a, "-d")) {
            dur = atof(v), i++;
        } else if (v && !strcmp(a, "-s")) {
            seed = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "-t")) {
            timeout_s = atof(v), i++;
        } else if (v && !strcmp(a, "-k")) {
            keyprefix = v, i++;
        } else {
            fprintf(stderr, "usage: kvload -o DIR -P PORTSFILE [-c N] [-d S] [-s SEED] [-t S] "
                            "[-k PREFIX] | -F -o DIR -P PORTSFILE | -now\n");
            return 2;
        }
    }
    if (!outdir || !portsfile[0] || clients < 1 || clients > 64 || dur <= 0 || timeout_s <= 0) {
        fprintf(stderr, "kvload: need -o DIR and -P PORTSFILE (1-64 clients)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t timeout_ns = (uint64_t)(timeout_s * 1e9);
    char path[2048];
    if (final) {
        snprintf(path, sizeof path, "%s/maxkey", outdir);
        FILE *f = fopen(path, "r");
        long mk = -1;
        if (!f || fscanf(f, "%ld", &mk) != 1) {
            fprintf(stderr, "kvload: cannot read %s\n", path);
            return 1;
        }
        fclose(f);
        snprintf(path, sizeof path, "%s/hist-final", outdir);
        hist = fopen(path, "w");
        if (!hist)
            return 1;
        rng_state = 12345;
        int rc = final_reads(mk, timeout_ns);
        fclose(hist);
        return rc;
    }
    long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 1;
    shared[0] = 0;
    shared[1] = 0;
    uint64_t end = now_ns() + (uint64_t)(dur * 1e9);
    pid_t pids[64];
    for (int c = 0; c < clients; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            snprintf(path, sizeof path, "%s/hist-%d", outdir, c);
            hist = fopen(path, "w");
            if (!hist)
                _exit(1);
            client_main(c, end, timeout_ns, seed, &shared[0], &shared[1]);
            fclose(hist);
            _exit(0);
        }
    }
    int rc = 0;
    for (int c = 0; c < clients; c++) {
        int st;
        if (pids[c] < 0 || waitpid(pids[c], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            rc = 1;
    }
    snprintf(path, sizeof path, "%s/maxkey", outdir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%ld\n", shared[1]);
        fclose(f);
    }
    printf("kvload: %ld operations by %d clients\n", shared[0], clients);
    return rc;
}
