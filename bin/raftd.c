/*
 * raftd - the Raft daemon of one keyval node.
 *
 *   raftd -id NAME -raddr HOST:PORT -haddr HOST:PORT [-bootstrap]
 *         [-peer-connect TEMPLATE] [-tick-ms 50] [-election-ticks 10]
 *         [-snapshot-entries 10000] [-snapshot-bytes 16777216]
 *         [-snapshot-trail 1000] [-v] DATADIR
 *
 * -snapshot-trail: log entries kept behind a snapshot for slow followers.
 * Snapshot policy: see snapshot_due().
 *
 * One single-threaded poll(2) loop. It owns DATADIR/raft.db (lib/storage),
 * drives the Raft core (lib/raft), serves clients on DATADIR/raftd.sock
 * (docs/client-protocol.md) and talks to peers only through other
 * processes: inbound connections arrive on DATADIR/peer.sock (a socat
 * listener forwards TCP there), outbound links are children running the
 * -peer-connect command (default "socat STDIO TCP:%a") fed through a pipe.
 * It never opens a TCP socket.
 *
 * Files in DATADIR: raft.db (+ -wal, -shm), raftd.pid (locked while
 * running), raftd.sock, peer.sock, snap-INDEX.snap (the latest snapshot),
 * snap-incoming (a snapshot being received).
 */
#include "codec.h"
#include "raft.h"
#include "nodeid.h"
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_TIMEOUT_MS 5000
#define LINE_MAX_BYTES (16u * 1024u * 1024u)
/* All raftd.sock clients' request buffers together: a client whose line
 * would need more is answered 503 and closed; nothing of it was started. */
#define CLIENT_BUFS_MAX (128u * 1024u * 1024u)
#define CLIENT_BUF_MIN 65536u
#define LIST_REPLY_BYTES (16u * 1024u * 1024u)
#define PEER_OUT_MAX (32u * 1024u * 1024u)
#define MAX_CLIENTS 1024
#define MAX_INBOUND 64
#define MAX_PEERS 16
#define MAX_KNOWN 32
#define KEY_MAX 1024
#define VALUE_MAX (1024u * 1024u)
#define BATCH_MAX 1000
#define LIST_DEFAULT 100
#define HELLO_TIMEOUT_MS 10000
#define HELLO_FRAME_MAX 4096   /* a HELLO is < 400 bytes; a larger first frame is refused */
#define NAME_MAX_LEN 63
#define ADDR_MAX_LEN 95

/* ------------------------------------------------------------------ types */

typedef struct peer {
    int used;
    uint64_t id;
    char meta[RAFT_META_MAX];
    char name[NAME_MAX_LEN + 1];
    char raddr[ADDR_MAX_LEN + 1];
    pid_t pid;          /* link child, 0 none */
    int wfd;            /* its stdin, -1 none */
    wbuf out;
    size_t off;
    uint64_t started, restart_at, backoff;
    int announced_up, failing;
} peer;

typedef struct known {  /* id -> meta learned from a HELLO */
    uint64_t id;
    char meta[RAFT_META_MAX];
} known;

typedef struct inconn {
    int fd;
    frame_reader fr;
    int hello;
    uint64_t from;
    uint64_t since;
    int dead;
} inconn;

struct pending;

typedef struct client {
    int fd;
    char *in;
    size_t in_len, in_cap;
    size_t scanned;       /* in[0..scanned) holds no newline */
    char *out;
    size_t out_len, out_off, out_cap;
    struct pending *busy;
    int eof, dead;
    int refused;          /* told 403: input discarded until it goes */
    uint64_t since;
    uint64_t last;        /* last byte received */
} client;

enum op {
    OP_GET, OP_LIST, OP_SET, OP_DEL, OP_TXN, OP_JOIN, OP_REMOVE, OP_TRANSFER, OP_STATUS,
    OP_METRICS
};

enum pstate {
    PS_NEW, PS_RETRY, PS_WAIT_READ, PS_WAIT_READIDX, PS_WAIT_APPLY, PS_WAIT_FWD
};

typedef struct pending {
    uint64_t id;
    int state;
    int op;
    int stale;
    json_t *req;
    char *cmd;            /* command JSON for set/del/txn */
    size_t cmd_len;
    uint64_t node;        /* join/remove/transfer target */
    char meta[RAFT_META_MAX];
    uint64_t index, term;
    uint64_t deadline;
    int proposed;         /* its fate may be decided without us knowing */
    uint64_t proposed_us; /* when this node (as leader) proposed it */
    client *cl;           /* local origin (NULL when gone or remote) */
    int remote;
    uint64_t from, rreqid;/* remote origin */
    struct pending *next, *prev;
} pending;

/* ----------------------------------------------------------------- globals */

static const char *prog = "raftd";
static char g_name[NAME_MAX_LEN + 1];
static char g_raddr[ADDR_MAX_LEN + 1], g_haddr[ADDR_MAX_LEN + 1];
static char g_meta[RAFT_META_MAX];
static char g_dir[PATH_MAX];
static char g_cluster[PEER_CLUSTER_ID_MAX + 1];
static const char *g_connect = "socat STDIO TCP:%a";
#ifdef KEYVAL_FAULT_MODES
/* Test-only deliberate bugs for tests/fault/teeth.sh, never in a normal
 * build (make fault-modes): env KEYVAL_FAULT_MODE = ack-early (answer a
 * write when proposed), local-read (default reads without ReadIndex),
 * apply-uncommitted (apply entries as soon as they are appended). */
static int g_fault_ack_early, g_fault_local_read, g_fault_apply_uncommitted;
#endif
static unsigned g_tick_ms = 50, g_election_ticks = 10;
static uint64_t g_snap_entries = 10000;
static uint64_t g_snap_bytes = 16u << 20;
static uint64_t g_snap_trail = 1000;
static uint64_t g_snap_keys, g_snap_keys_at; /* records in the snapshot at g_snap_keys_at */
static size_t g_snap_log_base;               /* least log_bytes since the last snapshot */
static int g_verbose;
static uint64_t g_id;

static store *g_st;
static raft_t *g_r;
static raft_config g_applied_conf;
static uint64_t g_snap_index, g_snap_term;
static int g_force_snapshot;
static size_t g_max_entry = 8u << 20; /* the core's max_entry_bytes */

static int g_client_lfd = -1, g_peer_lfd = -1, g_pid_fd = -1;
static char g_client_path[PATH_MAX], g_peer_path[PATH_MAX], g_pid_path[PATH_MAX];

static peer g_peers[MAX_PEERS];
static known g_known[MAX_KNOWN];
static inconn *g_in[MAX_INBOUND + 16];  /* + room for the dead of one turn */
static size_t g_n_in;
static client *g_cl[MAX_CLIENTS + 64];  /* + room for the dead of one turn */
static size_t g_n_cl;
static size_t g_max_clients = MAX_CLIENTS; /* lowered to fit RLIMIT_NOFILE */
static pending *g_pend;
static uint64_t g_next_id = 1;
static volatile sig_atomic_t g_stop;
static uint64_t g_last_meta_fix;
static uint64_t g_last_slow_log;
static store_snap_writer *g_snapw; /* snapshot being written, or NULL */
static uint64_t g_snapw_index, g_snapw_term;
static void snapshot_abort(void);
static uint8_t g_chunk_buf[RAFT_SNAP_CHUNK];
/* Throughput counters, in status: durable commits (each one WAL sync),
 * log entries written by them, commits that only applied committed
 * entries and did not wait for the disk. */
static uint64_t g_fsyncs, g_entries_persisted, g_lazy_commits;

/* Metrics ({"op":"metrics"}, rendered by the status CGI program as
 * Prometheus text on GET /metrics). Histograms keep per-bucket counts;
 * the bounds are upper limits (le), +Inf is the total count. */
#define HIST_MAX_BUCKETS 16
typedef struct hist {
    const double *le;
    size_t n;
    uint64_t b[HIST_MAX_BUCKETS];
    uint64_t count;
    double sum;
} hist;
static const double g_lat_le[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double g_batch_le[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
static hist g_h_commit = { g_lat_le, sizeof g_lat_le / sizeof g_lat_le[0], {0}, 0, 0 };
static hist g_h_fsync = { g_lat_le, sizeof g_lat_le / sizeof g_lat_le[0], {0}, 0, 0 };
static hist g_h_batch = { g_batch_le, sizeof g_batch_le / sizeof g_batch_le[0], {0}, 0, 0 };
static uint64_t g_m_proposals, g_m_forwarded, g_m_leader_changes, g_m_snaps_taken,
    g_m_snaps_installed, g_m_clients_accepted, g_m_outcome_unknown;

static void hist_observe(hist *h, double v)
{
    for (size_t i = 0; i < h->n; i++)
        if (v <= h->le[i]) {
            h->b[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

/* ----------------------------------------------------------------- helpers */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", prog, g_name[0] ? g_name : "-", buf);
}
#define vlog(...) do { if (g_verbose) logf_(__VA_ARGS__); } while (0)

static void cleanup(void);

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, buf);
    cleanup();
    exit(1);
}

static void store_fatal(const char *what)
{
    fatal("%s: %s", what, store_error(g_st));
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* HOST:PORT, printable, no spaces, port 1..65535. */
static int valid_addr(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > ADDR_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    const char *c = strrchr(s, ':');
    if (!c || !c[1])
        return 0;
    char *end;
    errno = 0;
    long port = strtol(c + 1, &end, 10);
    return !errno && *end == 0 && port >= 1 && port <= 65535;
}

/* Split "NAME RADDR HADDR". Missing parts become "". */
static void meta_split(const char *meta, char *name, size_t nc, char *raddr, size_t rc,
                       char *haddr, size_t hc)
{
    char tmp[RAFT_META_MAX];
    snprintf(tmp, sizeof tmp, "%s", meta);
    char *save = NULL;
    char *a = strtok_r(tmp, " ", &save);
    char *b = a ? strtok_r(NULL, " ", &save) : NULL;
    char *c = b ? strtok_r(NULL, " ", &save) : NULL;
    snprintf(name, nc, "%s", a ? a : "");
    snprintf(raddr, rc, "%s", b ? b : "");
    snprintf(haddr, hc, "%s", c && strcmp(c, "-") ? c : "");
}

static void node_name(uint64_t id, char *buf, size_t cap)
{
    const raft_config *c = raft_config_get(g_r);
    const raft_node *n = c ? raft_config_find(c, id) : NULL;
    char r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
    if (n) {
        meta_split(n->meta, buf, cap, r, sizeof r, h, sizeof h);
        return;
    }
    for (int i = 0; i < MAX_KNOWN; i++)
        if (g_known[i].id == id) {
            meta_split(g_known[i].meta, buf, cap, r, sizeof r, h, sizeof h);
            return;
        }
    if (id == g_id)
        snprintf(buf, cap, "%s", g_name);
    else
        snprintf(buf, cap, "%016llx", (unsigned long long)id);
}

/* The member of c called name (its meta's first word), or NULL. */
static const raft_node *member_by_name(const raft_config *c, const char *name)
{
    for (uint32_t i = 0; c && i < c->n; i++) {
        char n[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
        meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        if (!strcmp(n, name))
            return &c->nodes[i];
    }
    return NULL;
}

/* The member a remove or transfer names: its "node_id" when given, else
 * the member of that name in the latest configuration; 0 when none. */
static uint64_t request_member(const pending *p)
{
    const raft_config *c = raft_config_get(g_r);
    const raft_node *byname = member_by_name(c, p->meta);
    uint64_t id = p->node ? p->node : byname ? byname->id : 0;
    return c && id && raft_config_find(c, id) ? id : 0;
}

static void path_in_dir(char *buf, size_t cap, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", g_dir, name) >= cap)
        fatal("%s/%s: path too long", g_dir, name);
}

static void snap_path(char *buf, size_t cap, uint64_t index)
{
    char name[64];
    snprintf(name, sizeof name, "snap-%llu.snap", (unsigned long long)index);
    path_in_dir(buf, cap, name);
}

static void fsync_dir(void)
{
    int fd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ------------------------------------------------------------------ peers */

static peer *peer_find(uint64_t id)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_peers[i].used && g_peers[i].id == id)
            return &g_peers[i];
    return NULL;
}

static void peer_close_pipe(peer *p)
{
    if (p->wfd >= 0)
        close(p->wfd);
    p->wfd = -1;
    p->out.len = 0;
    p->off = 0;
}

static void peer_kill(peer *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGTERM);
    peer_close_pipe(p);
}

static void peer_free(peer *p)
{
    peer_kill(p);
    wbuf_free(&p->out);
    memset(p, 0, sizeof *p);
    p->wfd = -1;
}

static peer *peer_add(uint64_t id, const char *meta)
{
    peer *p = NULL;
    for (int i = 0; i < MAX_PEERS && !p; i++)
        if (!g_peers[i].used)
            p = &g_peers[i];
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->used = 1;
    p->id = id;
    p->wfd = -1;
    p->backoff = 100;
    snprintf(p->meta, sizeof p->meta, "%s", meta);
    char h[ADDR_MAX_LEN + 1];
    meta_split(meta, p->name, sizeof p->name, p->raddr, sizeof p->raddr, h, sizeof h);
    return p;
}

/* Start the link child for p. */
static void peer_spawn(peer *p, uint64_t now)
{
    char *argv[33];
    char words[33][512];
    int argc = 0;
    const char *s = g_connect;
    while (*s && argc < 32) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        size_t o = 0;
        char *w = words[argc];
        while (*s && *s != ' ') {
            const char *src = s;
            size_t sl = 1;
            if (s[0] == '%' && s[1] == 'a') {
                src = p->raddr;
                sl = strnlen(p->raddr, sizeof p->raddr - 1);
                s += 2;
            } else {
                s++;
            }
            for (size_t k = 0; k < sl && o + 1 < sizeof words[0]; k++)
                w[o++] = src[k];
        }
        words[argc][o] = 0;
        argv[argc] = words[argc];
        argc++;
    }
    argv[argc] = NULL;
    p->restart_at = now + p->backoff;
    if (argc == 0 || !p->raddr[0])
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        logf_("peer link to %s: pipe: %s", p->name, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        logf_("peer link to %s: fork: %s", p->name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(fds[0], 0);
        if (nul >= 0) {
            dup2(nul, 1);
            if (!g_verbose)
                dup2(nul, 2);
        }
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: peer link: exec %s: %s\n", prog, argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[0]);
    p->pid = pid;
    p->wfd = fds[1];
    set_nonblock(p->wfd);
    p->started = now;
    p->out.len = 0;
    p->off = 0;
    peer_hello h;
    memset(&h, 0, sizeof h);
    h.version = PEER_VERSION;
    h.from = g_id;
    snprintf(h.cluster, sizeof h.cluster, "%s", g_cluster);
    snprintf(h.meta, sizeof h.meta, "%s", g_meta);
    if (codec_hello_frame(&p->out, &h) < 0)
        logf_("peer link to %s: cannot encode hello", p->name);
    vlog("peer link to %s: started pid %d", p->name, (int)pid);
}

static void peer_flush(peer *p)
{
    while (p->wfd >= 0 && p->off < p->out.len) {
        ssize_t n = write(p->wfd, p->out.p + p->off, p->out.len - p->off);
        if (n > 0) {
            p->off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        vlog("peer link to %s: write: %s", p->name, n < 0 ? strerror(errno) : "closed");
        peer_kill(p); /* reaped later; restart with backoff */
        return;
    }
    if (p->off == p->out.len) {
        p->off = 0;
        p->out.len = 0;
        if (p->out.cap > (4u << 20)) {
            wbuf_free(&p->out);
        }
    }
}

/* Room for more in p's queue? Compacts it first. */
static int peer_ready(peer *p)
{
    if (!p || p->pid <= 0 || p->wfd < 0)
        return 0;
    if (p->off > 0 && p->off >= p->out.len / 2) {
        memmove(p->out.p, p->out.p + p->off, p->out.len - p->off);
        p->out.len -= p->off;
        p->off = 0;
    }
    return p->out.len - p->off < PEER_OUT_MAX;
}

static const char *known_meta(uint64_t id)
{
    for (int i = 0; i < MAX_KNOWN; i++)
        if (g_known[i].id == id && id)
            return g_known[i].meta;
    return NULL;
}

static void known_set(uint64_t id, const char *meta)
{
    int slot = -1;
    for (int i = 0; i < MAX_KNOWN; i++) {
        if (g_known[i].id == id) {
            slot = i;
            break;
        }
        if (slot < 0 && g_known[i].id == 0)
            slot = i;
    }
    if (slot < 0)
        slot = (int)(id % MAX_KNOWN);
    g_known[slot].id = id;
    snprintf(g_known[slot].meta, sizeof g_known[slot].meta, "%s", meta);
}

/* Is there an open, greeted inbound connection from id? */
static int inbound_from(uint64_t id)
{
    for (size_t i = 0; i < g_n_in; i++)
        if (g_in[i]->hello && !g_in[i]->dead && g_in[i]->from == id)
            return 1;
    return 0;
}

/* Make the set of links match the configuration: one per other member;
 * also one to each node that is talking to us now although it is not in
 * our configuration (ours may be stale: it may be a leader we have not
 * heard of yet), and, while this node is not a member itself (a joiner),
 * to each node that contacted us. */
static void peers_reconcile(void)
{
    const raft_config *c = raft_config_get(g_r);
    int self_member = c && raft_config_find(c, g_id) != NULL;
    uint64_t want_id[MAX_PEERS];
    const char *want_meta[MAX_PEERS];
    int nw = 0;
    for (uint32_t i = 0; c && i < c->n && nw < MAX_PEERS; i++) {
        if (c->nodes[i].id == g_id)
            continue;
        want_id[nw] = c->nodes[i].id;
        want_meta[nw++] = c->nodes[i].meta;
    }
    {
        for (int i = 0; i < MAX_KNOWN && nw < MAX_PEERS; i++) {
            if (!g_known[i].id || g_known[i].id == g_id)
                continue;
            if (self_member && !inbound_from(g_known[i].id))
                continue;
            int dup = 0;
            for (int j = 0; j < nw; j++)
                dup |= want_id[j] == g_known[i].id;
            if (!dup) {
                want_id[nw] = g_known[i].id;
                want_meta[nw++] = g_known[i].meta;
            }
        }
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &g_peers[i];
        if (!p->used)
            continue;
        int keep = 0;
        for (int j = 0; j < nw; j++) {
            if (want_id[j] != p->id)
                continue;
            char n[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
            meta_split(want_meta[j], n, sizeof n, r, sizeof r, h, sizeof h);
            keep = strcmp(r, p->raddr) == 0;
            if (keep)
                snprintf(p->meta, sizeof p->meta, "%s", want_meta[j]);
        }
        if (!keep) {
            logf_("peer link to %s closed (no longer a member or address changed)", p->name);
            peer_free(p);
        }
    }
    for (int j = 0; j < nw; j++)
        if (!peer_find(want_id[j]) && !peer_add(want_id[j], want_meta[j]))
            logf_("too many peer links");
}

static void peers_reap(uint64_t now)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < MAX_PEERS; i++) {
            peer *p = &g_peers[i];
            if (!p->used || p->pid != pid)
                continue;
            peer_close_pipe(p);
            p->pid = 0;
            char why[64];
            if (WIFEXITED(st))
                snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(st));
            else
                snprintf(why, sizeof why, "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            if (p->announced_up || WIFSIGNALED(st)) {
                logf_("peer link to %s down (%s)", p->name, why);
            } else if (!p->failing) {
                logf_("peer link to %s down: cannot reach %s (%s); retrying", p->name, p->raddr,
                      why);
            }
            if (now - p->started >= 2000)
                p->backoff = 100;
            else
                p->backoff = p->backoff * 2 > 5000 ? 5000 : p->backoff * 2;
            p->failing = !p->announced_up || p->failing;
            if (p->announced_up)
                p->failing = 0;
            p->announced_up = 0;
            p->restart_at = now + p->backoff;
        }
    }
}

static void peers_timers(uint64_t now)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &g_peers[i];
        if (!p->used)
            continue;
        if (p->pid == 0 && now >= p->restart_at)
            peer_spawn(p, now);
        else if (p->pid > 0 && !p->announced_up && now - p->started >= 1000) {
            p->announced_up = 1;
            p->failing = 0;
            logf_("peer link to %s up (%s)", p->name, p->raddr);
        }
    }
}

/* Send a raft message; drops it when there is no link or no room. */
static void send_msg(raft_msg *m)
{
    peer *p = peer_find(m->to);
    if (!p) {
        /* Links to non-members: see peers_reconcile. */
        const raft_config *c = raft_config_get(g_r);
        const char *meta = known_meta(m->to);
        if (!meta || (c && raft_config_find(c, g_id) && !inbound_from(m->to)))
            return;
        p = peer_add(m->to, meta);
        if (!p)
            return;
        peer_spawn(p, now_ms());
    }
    if (!peer_ready(p))
        return;
    if (m->type == RAFT_MSG_SNAP && !m->data) {
        if (m->snap_index != g_snap_index || g_snap_index == 0)
            return;
        char path[PATH_MAX];
        snap_path(path, sizeof path, g_snap_index);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            logf_("snapshot %s: %s", path, strerror(errno));
            return;
        }
        struct stat sb;
        ssize_t n = -1;
        if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size >= m->offset)
            n = pread(fd, g_chunk_buf, sizeof g_chunk_buf, (off_t)m->offset);
        close(fd);
        if (n < 0)
            return;
        m->data = g_chunk_buf;
        m->len = (uint32_t)n;
        m->last = m->offset + (uint64_t)n >= (uint64_t)sb.st_size;
        int rc = codec_msg_frame(&p->out, m);
        m->data = NULL;
        m->len = 0;
        if (rc < 0)
            logf_("cannot encode snapshot chunk for %s", p->name);
    } else if (codec_msg_frame(&p->out, m) < 0) {
        logf_("cannot encode message for %s", p->name);
    }
    /* Written by peers_flush: all frames of a ready go in one write. */
}

static int send_fwd(uint64_t to, int kind, uint64_t reqid, const char *json, size_t len)
{
    peer *p = peer_find(to);
    if (!peer_ready(p))
        return -1;
    if (codec_fwd_frame(&p->out, kind, reqid, g_id, json, len) < 0)
        return -1;
    return 0; /* written by peers_flush */
}

/* Write every link's queued frames: one write per link for what a loop
 * turn (or a ready) produced, instead of one per message. */
static void peers_flush(void)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_peers[i].used && g_peers[i].wfd >= 0 && g_peers[i].off < g_peers[i].out.len)
            peer_flush(&g_peers[i]);
}

/* ---------------------------------------------------------------- clients */

/* Append n bytes (and a newline when nl) to c's output; 0 or -1 (c is
 * dead). Nothing is written yet: client_flush does that. */
static int client_queue(client *c, const char *s, size_t n, int nl)
{
    if (c->dead)
        return -1;
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    size_t need = c->out_len + n + (nl ? 1 : 0);
    if (need > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 4096;
        while (nc < need)
            nc *= 2;
        char *p = realloc(c->out, nc);
        if (!p) {
            c->dead = 1;
            return -1;
        }
        c->out = p;
        c->out_cap = nc;
    }
    if (n) {
        memcpy(c->out + c->out_len, s, n);
        c->out_len += n;
    }
    if (nl)
        c->out[c->out_len++] = '\n';
    return 0;
}

/* Write what c has queued, as far as the socket takes it. */
static void client_flush(client *c)
{
    if (c->dead)
        return;
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        c->dead = 1;
        break;
    }
    if (c->out_off == c->out_len && c->out_cap > (1u << 20)) {
        free(c->out);
        c->out = NULL;
        c->out_cap = c->out_len = c->out_off = 0;
    }
}

static void client_write(client *c, const char *s, size_t n)
{
    if (client_queue(c, s, n, 0) == 0)
        client_flush(c);
}

/* One reply line: text plus its newline, in one write. */
static void client_send_text(client *c, const char *s, size_t n)
{
    if (client_queue(c, s, n, 1) == 0)
        client_flush(c);
}

typedef struct dumpbuf {
    char *p, *heap;
    size_t len, cap;
} dumpbuf;

static int dump_cb(const char *b, size_t n, void *data)
{
    dumpbuf *d = data;
    if (d->len + n > d->cap) {
        size_t nc = d->cap * 2;
        while (nc < d->len + n)
            nc *= 2;
        char *np = d->heap ? realloc(d->heap, nc) : malloc(nc);
        if (!np)
            return -1;
        if (!d->heap)
            memcpy(np, d->p, d->len);
        d->heap = d->p = np;
        d->cap = nc;
    }
    memcpy(d->p + d->len, b, n);
    d->len += n;
    return 0;
}

/* JSON text of v, NUL-terminated, encoded once: in buf while it fits
 * (*heap = NULL), else in malloc'd memory (*heap, to free). NULL when it
 * cannot be encoded. */
static const char *dump_json(json_t *v, char *buf, size_t cap, size_t *len, char **heap)
{
    dumpbuf d = {buf, NULL, 0, cap};
    *heap = NULL;
    if (json_dump_callback(v, dump_cb, &d, JSON_COMPACT) != 0 || dump_cb("", 1, &d) != 0) {
        free(d.heap);
        return NULL;
    }
    *heap = d.heap;
    *len = d.len - 1;
    return d.p;
}

static void client_send_json(client *c, json_t *reply)
{
    char buf[1024], *heap;
    size_t n;
    const char *s = dump_json(reply, buf, sizeof buf, &n, &heap);
    if (!s) {
        const char *e = "{\"code\":500,\"error\":\"cannot encode reply\"}";
        client_send_text(c, e, strlen(e));
        return;
    }
    client_send_text(c, s, n);
    free(heap);
}

static json_t *err_reply(int code, const char *msg)
{
    return json_pack("{s:i,s:s}", "code", code, "error", msg);
}

/* ---------------------------------------------------------------- pending */

static pending *pending_find(uint64_t id)
{
    for (pending *p = g_pend; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void pending_unlink(pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        g_pend = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

/* Answer p with the reply text s (n bytes, no newline) and free p. */
static void finish_text(pending *p, const char *s, size_t n)
{
    if (p->cl) {
        client_send_text(p->cl, s, n);
        p->cl->busy = NULL;
    } else if (p->remote) {
        if (send_fwd(p->from, PEER_FWD_RESP, p->rreqid, s, n) < 0)
            vlog("cannot relay reply to forwarded request (no link)");
    }
    pending_unlink(p);
    json_decref(p->req);
    free(p->cmd);
    free(p);
}

/* Answer p with reply (consumed) and free p. */
static void finish(pending *p, json_t *reply)
{
    if (!reply)
        reply = err_reply(500, "out of memory");
    const char *oc = json_string_value(json_object_get(reply, "outcome"));
    if (oc && !strcmp(oc, "unknown"))
        g_m_outcome_unknown++;
    char buf[1024], *heap;
    size_t n;
    const char *s = dump_json(reply, buf, sizeof buf, &n, &heap);
    json_decref(reply);
    if (!s) {
        s = "{\"code\":500,\"error\":\"cannot encode reply\"}";
        n = strlen(s);
    }
    finish_text(p, s, n);
    free(heap);
}

/* The common answer to a write, {"code":200,"index":N}, without jansson. */
static void finish_ok_index(pending *p, uint64_t index)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"code\":200,\"index\":%llu}",
                     (unsigned long long)index);
    finish_text(p, buf, (size_t)n);
}

/* ------------------------------------------------------- request handling */

static uint64_t snapshot_every(void);

static json_t *status_json(void)
{
    raft_status_info st;
    raft_status(g_r, &st);
    const raft_config *c = raft_config_get(g_r);
    char lname[NAME_MAX_LEN + 1] = "", lr[ADDR_MAX_LEN + 1] = "", lh[ADDR_MAX_LEN + 1] = "";
    if (st.leader) {
        const raft_node *ln = c ? raft_config_find(c, st.leader) : NULL;
        if (ln)
            meta_split(ln->meta, lname, sizeof lname, lr, sizeof lr, lh, sizeof lh);
        else
            node_name(st.leader, lname, sizeof lname);
    }
    static const char *roles[] = {"follower", "precandidate", "candidate", "leader"};
    const char *role = st.role >= 0 && st.role <= 3 ? roles[st.role] : "unknown";
    json_t *nodes = json_array();
    for (uint32_t i = 0; c && i < c->n; i++) {
        char n[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
        meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b}", "id", n, "addr", r, "haddr", h, "voter",
                              c->nodes[i].voter != 0, "self", c->nodes[i].id == g_id);
        if (!o)
            continue;
        char nid[NODEID_HEX_LEN + 1];
        nodeid_format(c->nodes[i].id, nid, sizeof nid);
        json_object_set_new(o, "node_id", json_string(nid));
        if (st.role == RAFT_LEADER) {
            for (size_t k = 0; k < st.n_progress; k++) {
                if (st.progress[k].id != c->nodes[i].id)
                    continue;
                json_object_set_new(o, "match", json_integer((json_int_t)st.progress[k].match));
                json_object_set_new(o, "next", json_integer((json_int_t)st.progress[k].next));
                json_object_set_new(o, "active", json_boolean(st.progress[k].recent_active ||
                                                              st.progress[k].id == g_id));
            }
        }
        json_array_append_new(nodes, o);
    }
    /* How long ago this node heard from its leader (0 on the leader;
     * -1 when no leader is known), and the election timeout, for
     * GET /health. */
    json_int_t contact = st.role == RAFT_LEADER ? 0
                         : st.leader ? (json_int_t)(st.ticks_since_leader * g_tick_ms) : -1;
    json_t *out = json_pack("{s:i,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                     "code", 200, "fsyncs", (json_int_t)g_fsyncs, "entries_persisted",
                     (json_int_t)g_entries_persisted, "lazy_commits", (json_int_t)g_lazy_commits,
                     "id",
                     g_name, "cluster", g_cluster, "state", role, "leader", lname, "leader_haddr",
                     lh, "term", (json_int_t)st.term, "commit_index", (json_int_t)st.commit,
                     "applied_index", (json_int_t)store_applied(g_st), "last_log_index",
                     (json_int_t)st.last_index, "snapshot_index", (json_int_t)g_snap_index,
                     "first_log_index", (json_int_t)st.first_index, "nodes", nodes);
    if (out) {
        char nid[NODEID_HEX_LEN + 1];
        nodeid_format(g_id, nid, sizeof nid);
        json_object_set_new(out, "node_id", json_string(nid));
        json_object_set_new(out, "last_contact_ms", json_integer(contact));
        json_object_set_new(out, "snapshot_every", json_integer((json_int_t)snapshot_every()));
        json_object_set_new(out, "election_timeout_ms",
                            json_integer((json_int_t)g_tick_ms * g_election_ticks));
    }
    return out;
}

static void metric_add(json_t *arr, const char *name, const char *type, const char *help,
                       double value)
{
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:f}", "name", name, "type", type,
                                         "help", help, "value", value));
}

static void metric_hist(json_t *arr, const char *name, const char *help, const hist *h)
{
    json_t *b = json_array();
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->b[i];
        json_array_append_new(b, json_pack("[f,I]", h->le[i], (json_int_t)cum));
    }
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:f,s:I}", "name", name, "type",
                                         "histogram", "help", help, "buckets", b, "sum", h->sum,
                                         "count", (json_int_t)h->count));
}

/* {"op":"metrics"}: every counter as {"name","type","help","value"} or,
 * for histograms, "buckets" ([le, cumulative count]...), "sum", "count";
 * labelled gauges have "series": [{"labels":{..},"value":V}]. */
static json_t *metrics_json(void)
{
    raft_status_info st;
    raft_status(g_r, &st);
    json_t *m = json_array();
    if (!m)
        return NULL;
    metric_add(m, "keyval_term", "gauge", "Current Raft term.", (double)st.term);
    metric_add(m, "keyval_commit_index", "gauge", "Highest log index known committed.",
               (double)st.commit);
    metric_add(m, "keyval_applied_index", "gauge", "Highest log index applied to the table.",
               (double)store_applied(g_st));
    metric_add(m, "keyval_last_log_index", "gauge", "Last index in this node's log.",
               (double)st.last_index);
    metric_add(m, "keyval_snapshot_index", "gauge", "Index of the latest snapshot.",
               (double)g_snap_index);
    metric_add(m, "keyval_is_leader", "gauge", "1 when this node is the leader.",
               st.role == RAFT_LEADER ? 1 : 0);
    metric_add(m, "keyval_has_leader", "gauge", "1 when this node knows a leader.",
               st.leader ? 1 : 0);
    metric_add(m, "keyval_last_contact_seconds", "gauge",
               "Time since the leader was last heard (0 on the leader).",
               st.role == RAFT_LEADER ? 0 : (double)(st.ticks_since_leader * g_tick_ms) / 1e3);
    metric_add(m, "keyval_leader_changes_total", "counter",
               "Times this node saw a new leader (or the same in a new term).",
               (double)g_m_leader_changes);
    metric_add(m, "keyval_proposals_total", "counter",
               "Entries proposed by this node as leader (writes, membership).",
               (double)g_m_proposals);
    metric_add(m, "keyval_forwarded_writes_total", "counter",
               "Writes this node forwarded to the leader.", (double)g_m_forwarded);
    metric_add(m, "keyval_outcome_unknown_total", "counter",
               "Writes answered 503 with outcome unknown.", (double)g_m_outcome_unknown);
    metric_hist(m, "keyval_commit_latency_seconds",
                "Leader: time from proposal to applied, per write.", &g_h_commit);
    metric_hist(m, "keyval_fsync_duration_seconds",
                "Duration of each durable store commit (one WAL sync).", &g_h_fsync);
    metric_hist(m, "keyval_batch_entries",
                "Log entries written per durable commit (group commit batch).", &g_h_batch);
    metric_add(m, "keyval_fsyncs_total", "counter", "Durable store commits (WAL syncs).",
               (double)g_fsyncs);
    metric_add(m, "keyval_entries_persisted_total", "counter",
               "Log entries written by durable commits.", (double)g_entries_persisted);
    metric_add(m, "keyval_lazy_commits_total", "counter",
               "Commits that only applied entries and did not wait for the disk.",
               (double)g_lazy_commits);
    metric_add(m, "keyval_snapshots_taken_total", "counter", "Snapshots written by this node.",
               (double)g_m_snaps_taken);
    metric_add(m, "keyval_snapshots_installed_total", "counter",
               "Snapshots received from the leader and installed.",
               (double)g_m_snaps_installed);
    metric_add(m, "keyval_log_bytes", "gauge",
               "Bytes of log entry data held in memory (since the snapshot, plus its trail).",
               (double)st.log_bytes);
    metric_add(m, "keyval_sqlite_memory_bytes", "gauge",
               "Heap bytes held by SQLite (page caches, schema, statements).",
               (double)store_memory_used());
    size_t live = 0;
    for (size_t i = 0; i < g_n_cl; i++)
        if (!g_cl[i]->dead)
            live++;
    metric_add(m, "keyval_client_connections", "gauge", "Open connections on raftd.sock.",
               (double)live);
    metric_add(m, "keyval_client_connections_accepted_total", "counter",
               "Connections accepted on raftd.sock.", (double)g_m_clients_accepted);
    json_t *series = json_array();
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &g_peers[i];
        if (!p->used)
            continue;
        json_array_append_new(series, json_pack("{s:{s:s},s:i}", "labels", "peer", p->name,
                                                "value", peer_ready(p) ? 1 : 0));
    }
    json_array_append_new(m, json_pack("{s:s,s:s,s:s,s:o}", "name", "keyval_peer_up", "type",
                                       "gauge", "help",
                                       "1 when the outbound link to the peer is running.",
                                       "series", series));
    return json_pack("{s:i,s:s,s:o}", "code", 200, "id", g_name, "metrics", m);
}

/* A key: 1..KEY_MAX bytes, no NUL. Returns 0 ok, else the error code and
 * sets *why. */
static int check_key(json_t *k, const char **why)
{
    if (!json_is_string(k)) {
        *why = "key must be a string";
        return 400;
    }
    size_t n = json_string_length(k);
    if (n == 0) {
        *why = "key must not be empty";
        return 400;
    }
    if (n > KEY_MAX) {
        *why = "key longer than 1024 bytes";
        return 413;
    }
    if (strlen(json_string_value(k)) != n) {
        *why = "key must not contain NUL";
        return 400;
    }
    return 0;
}

static int check_set_obj(json_t *set, size_t *count, const char **why)
{
    if (!json_is_object(set)) {
        *why = "\"set\"/\"kv\" must be an object of string values";
        return 400;
    }
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
        size_t kl = strlen(k);
        if (kl == 0) {
            *why = "key must not be empty";
            return 400;
        }
        if (kl > KEY_MAX) {
            *why = "key longer than 1024 bytes";
            return 413;
        }
        if (!json_is_string(v)) {
            *why = "values must be strings";
            return 400;
        }
        if (json_string_length(v) > VALUE_MAX) {
            *why = "value larger than 1 MiB";
            return 413;
        }
        (*count)++;
    }
    return 0;
}

/* Validate p->req and prepare the command / target. Returns NULL when the
 * request is fine, else an error reply. */
static json_t *prepare(pending *p)
{
    json_t *req = p->req;
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *why = NULL;
    int code;
    if (!op)
        return err_reply(400, "request needs \"op\"");
    if (!strcmp(op, "get")) p->op = OP_GET;
    else if (!strcmp(op, "list")) p->op = OP_LIST;
    else if (!strcmp(op, "set")) p->op = OP_SET;
    else if (!strcmp(op, "del")) p->op = OP_DEL;
    else if (!strcmp(op, "txn")) p->op = OP_TXN;
    else if (!strcmp(op, "join")) p->op = OP_JOIN;
    else if (!strcmp(op, "remove")) p->op = OP_REMOVE;
    else if (!strcmp(op, "transfer")) p->op = OP_TRANSFER;
    else if (!strcmp(op, "status")) p->op = OP_STATUS;
    else if (!strcmp(op, "metrics")) p->op = OP_METRICS;
    else
        return err_reply(400, "unknown op");

    json_t *level = json_object_get(req, "level");
    if (level) {
        const char *l = json_string_value(level);
        if (!l || (strcmp(l, "stale") && strcmp(l, "linearizable") && strcmp(l, "default")))
            return err_reply(400, "\"level\" must be \"stale\" or \"linearizable\"");
        p->stale = !strcmp(l, "stale");
    }
    json_t *cmd = NULL;
    switch (p->op) {
    case OP_GET:
        if ((code = check_key(json_object_get(req, "key"), &why)))
            return err_reply(code, why);
        return NULL;
    case OP_LIST: {
        json_t *pre = json_object_get(req, "prefix"), *after = json_object_get(req, "after");
        json_t *lim = json_object_get(req, "limit");
        if (pre && (!json_is_string(pre) || json_string_length(pre) > KEY_MAX ||
                    strlen(json_string_value(pre)) != json_string_length(pre)))
            return err_reply(400, "\"prefix\" must be a string of at most 1024 bytes");
        if (after && (code = check_key(after, &why)))
            return err_reply(code, why);
        if (lim && (!json_is_integer(lim) || json_integer_value(lim) < 1))
            return err_reply(400, "\"limit\" must be a positive integer");
        if (lim && json_integer_value(lim) > BATCH_MAX)
            return err_reply(413, "\"limit\" larger than 1000");
        return NULL;
    }
    case OP_SET: {
        size_t n = 0;
        json_t *kv = json_object_get(req, "kv");
        if (!kv)
            return err_reply(400, "set needs \"kv\"");
        if ((code = check_set_obj(kv, &n, &why)))
            return err_reply(code, why);
        if (n == 0)
            return err_reply(400, "nothing to set");
        if (n > BATCH_MAX)
            return err_reply(413, "more than 1000 keys in one request");
        cmd = json_pack("{s:O}", "set", kv);
        break;
    }
    case OP_DEL: {
        json_t *k = json_object_get(req, "key");
        if ((code = check_key(k, &why)))
            return err_reply(code, why);
        cmd = json_pack("{s:[O]}", "del", k);
        break;
    }
    case OP_TXN: {
        size_t n = 0;
        json_t *set = json_object_get(req, "set"), *del = json_object_get(req, "del");
        json_t *cond = json_object_get(req, "if");
        if (!set && !del)
            return err_reply(400, "txn needs \"set\" or \"del\"");
        cmd = json_object();
        if (set) {
            if ((code = check_set_obj(set, &n, &why))) {
                json_decref(cmd);
                return err_reply(code, why);
            }
            json_object_set(cmd, "set", set);
        }
        if (del) {
            size_t i;
            json_t *v;
            if (!json_is_array(del)) {
                json_decref(cmd);
                return err_reply(400, "\"del\" must be an array of keys");
            }
            json_array_foreach(del, i, v) {
                if ((code = check_key(v, &why))) {
                    json_decref(cmd);
                    return err_reply(code, why);
                }
                n++;
            }
            json_object_set(cmd, "del", del);
        }
        if (cond) {
            size_t i;
            json_t *v;
            if (!json_is_array(cond)) {
                json_decref(cmd);
                return err_reply(400, "\"if\" must be an array of {\"key\",\"index\"}");
            }
            json_t *clean = json_array();
            json_array_foreach(cond, i, v) {
                json_t *ix = json_object_get(v, "index");
                if (!json_is_object(v) || (code = check_key(json_object_get(v, "key"), &why)) ||
                    !json_is_integer(ix) || json_integer_value(ix) < 0) {
                    json_decref(cmd);
                    json_decref(clean);
                    return err_reply(code ? code : 400,
                                     code ? why : "each \"if\" needs \"key\" and \"index\" >= 0");
                }
                json_array_append_new(clean, json_pack("{s:O,s:O}", "key",
                                                       json_object_get(v, "key"), "index", ix));
                n++;
            }
            json_object_set_new(cmd, "if", clean);
        }
        if (n > BATCH_MAX) {
            json_decref(cmd);
            return err_reply(413, "more than 1000 keys in one request");
        }
        break;
    }
    case OP_JOIN: {
        const char *id = json_string_value(json_object_get(req, "id"));
        const char *addr = json_string_value(json_object_get(req, "addr"));
        json_t *hj = json_object_get(req, "haddr");
        const char *haddr = json_string_value(hj);
        if (!id || !valid_name(id))
            return err_reply(400, "join needs \"id\": 1-63 of [A-Za-z0-9._-]");
        if (!addr || !valid_addr(addr))
            return err_reply(400, "join needs \"addr\" as HOST:PORT");
        if (hj && !json_is_null(hj) && (!haddr || (haddr[0] && !valid_addr(haddr))))
            return err_reply(400, "\"haddr\" must be HOST:PORT");
        snprintf(p->meta, sizeof p->meta, "%s %s %s", id, addr, haddr && haddr[0] ? haddr : "-");
        /* The joining node's Raft id ("node_id" in its status): unique per
         * incarnation of its data directory. Without it, the id a node of a
         * version before incarnations has: the hash of its name. */
        json_t *nj = json_object_get(req, "node_id");
        if (nj && !json_is_null(nj)) {
            if (!nodeid_parse(json_string_value(nj), &p->node))
                return err_reply(400, "\"node_id\" must be 16 hex digits (the joining "
                                      "node's node_id from its status)");
        } else {
            p->node = nodeid_legacy(id);
        }
        return NULL;
    }
    case OP_REMOVE:
    case OP_TRANSFER: {
        /* By name; the leader finds the member's id in its configuration
         * (or takes "node_id" when given). */
        const char *id = json_string_value(json_object_get(req, "id"));
        if (!id || !valid_name(id))
            return err_reply(400, "needs \"id\": a node name");
        snprintf(p->meta, sizeof p->meta, "%s", id);
        p->node = 0;
        json_t *nj = json_object_get(req, "node_id");
        if (nj && !json_is_null(nj) && !nodeid_parse(json_string_value(nj), &p->node))
            return err_reply(400, "\"node_id\" must be 16 hex digits");
        return NULL;
    }
    case OP_STATUS:
    case OP_METRICS:
        return NULL;
    }
    if (!cmd)
        return err_reply(500, "out of memory");
    {
        /* Encoded on the stack and copied once, not grown by jansson. */
        char buf[4096], *heap;
        size_t n = 0;
        const char *t = dump_json(cmd, buf, sizeof buf, &n, &heap);
        json_decref(cmd);
        if (!t)
            return err_reply(500, "out of memory");
        if (heap) {
            p->cmd = heap;
        } else if ((p->cmd = malloc(n + 1)) != NULL) {
            memcpy(p->cmd, t, n);
            p->cmd[n] = 0;
        } else {
            return err_reply(500, "out of memory");
        }
        p->cmd_len = n;
    }
    if (p->cmd_len > g_max_entry) {
        char msg[100];
        snprintf(msg, sizeof msg, "write larger than %zu bytes in total", g_max_entry);
        return err_reply(413, msg);
    }
    return NULL;
}

typedef struct list_ctx {
    json_t *items;
    size_t n, limit, bytes;
    int more;
} list_ctx;

static int list_cb(void *arg, const char *k, size_t klen, const char *v, size_t vlen, uint64_t mi)
{
    list_ctx *lc = arg;
    if (lc->n >= lc->limit || lc->bytes > LIST_REPLY_BYTES) {
        lc->more = 1;
        return 1;
    }
    json_t *o = json_pack("{s:s%,s:s%,s:I}", "key", k, klen, "value", v, vlen, "index",
                          (json_int_t)mi);
    if (o)
        json_array_append_new(lc->items, o);
    lc->n++;
    lc->bytes += klen + vlen;
    return 0;
}

/* Serve a read from the local table. */
static json_t *do_read(pending *p)
{
    json_t *reply;
    if (p->op == OP_GET) {
        json_t *k = json_object_get(p->req, "key");
        char *v = NULL;
        size_t vl = 0;
        uint64_t mi = 0;
        int rc = store_get(g_st, json_string_value(k), json_string_length(k), &v, &vl, &mi);
        if (rc < 0)
            store_fatal("read");
        if (rc == 0)
            return err_reply(404, "key not found");
        reply = json_pack("{s:i,s:O,s:s%,s:I}", "code", 200, "key", k, "value", v, vl, "index",
                          (json_int_t)mi);
        free(v);
    } else {
        const char *pre = json_string_value(json_object_get(p->req, "prefix"));
        const char *after = json_string_value(json_object_get(p->req, "after"));
        json_t *lim = json_object_get(p->req, "limit");
        list_ctx lc = {.items = json_array(),
                       .limit = lim ? (size_t)json_integer_value(lim) : LIST_DEFAULT};
        if (store_scan(g_st, pre ? pre : "", after, lc.limit + 1, list_cb, &lc) < 0)
            store_fatal("list");
        reply = json_pack("{s:i,s:o,s:b}", "code", 200, "items", lc.items, "more", lc.more);
    }
    if (reply && p->stale)
        json_object_set_new(reply, "applied", json_integer((json_int_t)store_applied(g_st)));
    return reply;
}

static int is_write(int op)
{
    return op == OP_SET || op == OP_DEL || op == OP_TXN || op == OP_JOIN || op == OP_REMOVE ||
           op == OP_TRANSFER;
}

/* Execute a write on the leader. */
static void leader_write(pending *p)
{
    raft_status_info st;
    raft_status(g_r, &st);
    uint64_t idx = 0, term = st.term;
    int rc;
    switch (p->op) {
    case OP_JOIN: {
        /* One name, one identity: a node that comes back under a member's
         * name with another id (its data directory was wiped, so it may
         * have forgotten a vote it gave) is refused until the old member
         * is removed. */
        const raft_config *c = raft_config_get(g_r);
        char name[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
        meta_split(p->meta, name, sizeof name, r, sizeof r, h, sizeof h);
        const raft_node *same = member_by_name(c, name);
        const raft_node *byid = c ? raft_config_find(c, p->node) : NULL;
        if ((same && same->id != p->node) || (byid && byid != same)) {
            char msg[700], other[NAME_MAX_LEN + 1] = "";
            if (same)
                snprintf(msg, sizeof msg,
                         "%s is already a member with another identity (member id %016llx, "
                         "joining id %016llx: its data directory was wiped or replaced); "
                         "remove it first: curl -X DELETE http://%s/node/%s (or kv-admin "
                         "remove %s on a member), then join again",
                         name, (unsigned long long)same->id, (unsigned long long)p->node,
                         g_haddr, name, name);
            else {
                meta_split(byid->meta, other, sizeof other, r, sizeof r, h, sizeof h);
                snprintf(msg, sizeof msg, "node id %016llx is already member %s's; a node "
                         "cannot join under another name", (unsigned long long)p->node, other);
            }
            logf_("refused join of %s as node id %016llx: %s", name,
                  (unsigned long long)p->node,
                  same ? "the member of that name has another id" : "the id is another member's");
            finish(p, err_reply(409, msg));
            return;
        }
        rc = raft_add_node(g_r, p->node, p->meta, &idx);
        if (rc == RAFT_OK && idx == 0) {
            finish(p, json_pack("{s:i,s:i}", "code", 200, "index", 0));
            return;
        }
        break;
    }
    case OP_REMOVE: {
        uint64_t target = request_member(p);
        if (!target) {
            finish(p, err_reply(404, "no such node in the cluster"));
            return;
        }
        rc = raft_remove_node(g_r, target, &idx);
        break;
    }
    case OP_TRANSFER: {
        uint64_t target = request_member(p);
        if (!target) {
            finish(p, err_reply(404, "no such node in the cluster"));
            return;
        }
        if (target == g_id) {
            finish(p, json_pack("{s:i}", "code", 200));
            return;
        }
        rc = raft_transfer_leader(g_r, target);
        if (rc == RAFT_OK) {
            finish(p, json_pack("{s:i}", "code", 200));
            return;
        }
        break;
    }
    default:
        rc = raft_propose(g_r, p->cmd, (uint32_t)p->cmd_len, &idx, &term);
        break;
    }
    switch (rc) {
    case RAFT_OK:
#ifdef KEYVAL_FAULT_MODES
        if (g_fault_ack_early && (p->op == OP_SET || p->op == OP_DEL || p->op == OP_TXN)) {
            finish(p, json_pack("{s:i,s:I}", "code", 200, "index", (json_int_t)idx));
            return;
        }
#endif
        p->state = PS_WAIT_APPLY;
        p->index = idx;
        p->term = term;
        p->proposed = 1;
        p->proposed_us = now_us();
        g_m_proposals++;
        return;
    case RAFT_ENOTLEADER:
    case RAFT_EBUSY:
    case RAFT_ETRANSFER:
        p->state = PS_RETRY;
        return;
    case RAFT_ETOOBIG:
        finish(p, err_reply(413, "request too large for one log entry"));
        return;
    case RAFT_ENOQUORUM:
        finish(p, err_reply(400, "removing this node would leave no voter"));
        return;
    case RAFT_EINVAL:
        finish(p, err_reply(400, p->op == OP_TRANSFER ? "cannot transfer leadership to that node"
                                                      : "invalid membership change"));
        return;
    default:
        finish(p, err_reply(500, raft_strerror(rc)));
        return;
    }
}

static json_t *pending_req(pending *p);

/* Move p forward as far as it can go now. */
static void dispatch(pending *p)
{
    if (p->op == OP_STATUS) {
        finish(p, status_json());
        return;
    }
    if (p->op == OP_METRICS) {
        finish(p, metrics_json());
        return;
    }
    if (p->op == OP_GET || p->op == OP_LIST) {
#ifdef KEYVAL_FAULT_MODES
        if (g_fault_local_read) {
            finish(p, do_read(p));
            return;
        }
#endif
        if (p->stale) {
            finish(p, do_read(p));
            return;
        }
        if (raft_read_index(g_r, p->id) == RAFT_OK)
            p->state = PS_WAIT_READ;
        else
            p->state = PS_RETRY;
        return;
    }
    raft_status_info st;
    raft_status(g_r, &st);
    if (st.role == RAFT_LEADER) {
        leader_write(p);
        return;
    }
    if (p->remote) {
        finish(p, json_pack("{s:i,s:s,s:b}", "code", 503, "error", "not the leader",
                            "notleader", 1));
        return;
    }
    if (st.leader && st.leader != g_id) {
        json_t *rq = pending_req(p);
        char *s = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
        int ok = s && send_fwd(st.leader, PEER_FWD_REQ, p->id, s, strlen(s)) == 0;
        free(s);
        if (ok) {
            p->state = PS_WAIT_FWD;
            p->proposed = 1;
            g_m_forwarded++;
            return;
        }
    }
    p->state = PS_RETRY;
}

/* A new pending request, linked in; NULL (answered) when out of memory. */
static pending *pending_new(json_t *req, client *cl, int remote, uint64_t from, uint64_t rreqid)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        json_t *r = err_reply(500, "out of memory");
        if (cl)
            client_send_json(cl, r);
        json_decref(r);
        json_decref(req);
        return NULL;
    }
    p->id = g_next_id++;
    p->req = req;
    p->cl = cl;
    p->remote = remote;
    p->from = from;
    p->rreqid = rreqid;
    p->deadline = now_ms() + (remote ? REQ_TIMEOUT_MS - 1000 : REQ_TIMEOUT_MS);
    p->next = g_pend;
    if (g_pend)
        g_pend->prev = p;
    g_pend = p;
    if (cl)
        cl->busy = p;
    return p;
}

static void start_request(json_t *req, client *cl, int remote, uint64_t from, uint64_t rreqid)
{
    pending *p = pending_new(req, cl, remote, from, rreqid);
    if (!p)
        return;
    json_t *err = prepare(p);
    if (err) {
        finish(p, err);
        return;
    }
    if (g_verbose) {
        const char *op = json_string_value(json_object_get(req, "op"));
        vlog("request %llu: %s%s", (unsigned long long)p->id, op ? op : "?",
             remote ? " (forwarded)" : "");
    }
    dispatch(p);
}

/* The write fast path: a client's plain {"op":"set","kv":{...}} on the
 * leader (codec_fast_set) becomes its command {"set":{...}} by copying
 * the object's text, with no jansson tree. 1 taken, 0 not for the fast
 * path (the caller parses it as usual). The request tree is rebuilt from
 * the command only if the write must be forwarded after all. */
#define FAST_SET_MAX 64
static int start_fast_set(client *cl, const char *line, size_t len)
{
    static const char head[] = "{\"set\":";
    codec_kv kv[FAST_SET_MAX];
    size_t n = 0, off = 0, olen = 0;
    raft_status_info st;
    raft_status(g_r, &st);
    if (st.role != RAFT_LEADER ||
        !codec_fast_set(line, len, 1, kv, FAST_SET_MAX, KEY_MAX, VALUE_MAX, &n, &off, &olen))
        return 0;
    size_t cl_len = sizeof head - 1 + olen + 1;
    if (cl_len > g_max_entry)
        return 0;
    char *cmd = malloc(cl_len + 1);
    if (!cmd)
        return 0;
    memcpy(cmd, head, sizeof head - 1);
    memcpy(cmd + sizeof head - 1, line + off, olen);
    cmd[cl_len - 1] = '}';
    cmd[cl_len] = 0;
    pending *p = pending_new(NULL, cl, 0, 0, 0);
    if (!p) {
        free(cmd);
        return 1;
    }
    p->op = OP_SET;
    p->cmd = cmd;
    p->cmd_len = cl_len;
    vlog("request %llu: set (fast path)", (unsigned long long)p->id);
    dispatch(p);
    return 1;
}

/* p's request tree; rebuilt from its command for a fast-path set. */
static json_t *pending_req(pending *p)
{
    if (!p->req && p->op == OP_SET && p->cmd) {
        json_t *c = json_loadb(p->cmd, p->cmd_len, 0, NULL);
        json_t *kv = json_object_get(c, "set");
        if (kv)
            p->req = json_pack("{s:s,s:O}", "op", "set", "kv", kv);
        json_decref(c);
    }
    return p->req;
}

/* Called every tick: retry what waits for a leader, expire what is late. */
static void pending_timers(uint64_t now)
{
    pending *next;
    for (pending *p = g_pend; p; p = next) {
        next = p->next;
        if (now >= p->deadline) {
            if (p->proposed)
                finish(p, json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                                    "request timed out; the write may or may not have been "
                                    "applied",
                                    "outcome", "unknown"));
            else if (is_write(p->op))
                finish(p, err_reply(503, "no leader: the cluster cannot take writes now"));
            else
                finish(p, err_reply(503, "no leader: cannot serve a linearizable read now "
                                         "(try \"level\":\"stale\")"));
            continue;
        }
        if (p->state == PS_RETRY)
            dispatch(p);
    }
}

static void check_reads(void)
{
    uint64_t applied = store_applied(g_st);
    pending *next;
    for (pending *p = g_pend; p; p = next) {
        next = p->next;
        if (p->state == PS_WAIT_READIDX && p->index <= applied)
            finish(p, do_read(p));
    }
}

/* --------------------------------------------------------- the ready loop */

static void write_chunk(const raft_chunk *ch)
{
    char path[PATH_MAX];
    path_in_dir(path, sizeof path, "snap-incoming");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (ch->offset == 0 ? O_TRUNC : 0), 0600);
    if (fd < 0)
        fatal("%s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < ch->len) {
        ssize_t n = pwrite(fd, ch->data + done, ch->len - done, (off_t)(ch->offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fatal("%s: write: %s", path, n < 0 ? strerror(errno) : "short write");
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        fatal("%s: fsync: %s", path, strerror(errno));
    close(fd);
}

static void remove_old_snaps(uint64_t keep)
{
    DIR *d = opendir(g_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long idx;
        char tail[8];
        int is_snap = sscanf(de->d_name, "snap-%llu.sna%1s", &idx, tail) == 2 &&
                      strcmp(tail, "p") == 0;
        size_t l = strlen(de->d_name);
        int is_tmp = l > 4 && !strcmp(de->d_name + l - 4, ".tmp") && !strncmp(de->d_name, "snap-", 5);
        if ((is_snap && idx != keep) || is_tmp) {
            char path[PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", g_dir, de->d_name) < sizeof path)
                unlink(path);
        }
    }
    closedir(d);
}

static void answer_applied(const raft_ready *rd, const store_result *res)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry *e = &rd->committed[i];
        pending *next;
        for (pending *p = g_pend; p; p = next) {
            next = p->next;
            if (p->state != PS_WAIT_APPLY || p->index != e->index)
                continue;
            if (p->term != e->term) {
                finish(p, json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                                    "leadership changed before the write committed; it was not "
                                    "applied",
                                    "outcome", "failed"));
                continue;
            }
            const store_result *r = &res[i];
            if (p->proposed_us)
                hist_observe(&g_h_commit, (double)(now_us() - p->proposed_us) / 1e6);
            if (r->code == 412)
                finish(p, json_pack("{s:i,s:s,s:s,s:I}", "code", 412, "error",
                                    "condition failed", "key", r->key, "index",
                                    (json_int_t)r->index));
            else if (r->code == 400)
                finish(p, err_reply(400, "malformed command"));
            else
                finish_ok_index(p, e->index);
        }
    }
    /* Writes whose index was passed without being seen (snapshot install). */
    uint64_t applied = store_applied(g_st);
    pending *next;
    for (pending *p = g_pend; p; p = next) {
        next = p->next;
#ifdef KEYVAL_FAULT_MODES
        if (g_fault_apply_uncommitted && p->state == PS_WAIT_APPLY && p->index <= applied) {
            /* the broken mode acknowledges at its early apply, before commit */
            finish(p, json_pack("{s:i,s:I}", "code", 200, "index", (json_int_t)p->index));
            continue;
        }
#endif
        if (p->state == PS_WAIT_APPLY && p->index <= applied)
            finish(p, json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                                "the log was replaced by a snapshot; the write's fate is unknown",
                                "outcome", "unknown"));
    }
}

static void log_config(const raft_config *c, uint64_t index)
{
    char buf[1024];
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_NODES; i++) {
        char n[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], h[ADDR_MAX_LEN + 1];
        meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        int w = snprintf(buf + o, sizeof buf - o, "%s%s@%s%s", i ? " " : "", n, r,
                         c->nodes[i].voter ? "" : "(learner)");
        if (w < 0 || (size_t)w >= sizeof buf - o)
            break;
        o += (size_t)w;
    }
    logf_("configuration at index %llu: %s", (unsigned long long)index, buf);
}

static void process_ready(void)
{
    while (raft_has_ready(g_r)) {
        raft_ready rd;
        raft_ready_get(g_r, &rd);
        for (size_t i = 0; i < rd.n_chunks; i++)
            write_chunk(&rd.chunks[i]);
        int need_txn = rd.hs_changed || rd.snap_install || rd.truncate_from || rd.n_entries ||
                       rd.compact_to || rd.n_committed;
        /* Only applying committed entries: that can be redone from the
         * durable log after a crash (the applied index is in the same
         * transaction), so this commit does not wait for the disk; the
         * next durable commit syncs it with everything before it. */
        int lazy = need_txn && !rd.hs_changed && !rd.snap_install && !rd.truncate_from &&
                   !rd.n_entries && !rd.compact_to && !rd.n_chunks;
        /* A leader's AppendEntries go out before its own write, so that
         * the followers' disks work while ours does (Raft thesis 10.2.1).
         * Safe: the core counts the leader's own copy only after
         * raft_advance reports it durable, and no reply is read before
         * this batch is durable (a failed write is fatal). Votes, acks
         * and everything else still wait for the disk. */
        int early = !rd.hs_changed && !rd.snap_install && !rd.truncate_from;
        if (early) {
            for (size_t i = 0; i < rd.n_msgs; i++)
                if (rd.msgs[i].type == RAFT_MSG_APPEND)
                    send_msg(&rd.msgs[i]);
            peers_flush(); /* out before our own fsync */
        }
        store_result *res = NULL;
        if (rd.n_committed) {
            res = calloc(rd.n_committed, sizeof *res);
            if (!res)
                fatal("out of memory");
        }
        int installed = 0, answered = 0;
        if (need_txn) {
            if ((lazy ? store_begin_lazy(g_st) : store_begin(g_st)) < 0)
                store_fatal("begin");
            if (rd.hs_changed && store_save_hs(g_st, &rd.hs) < 0)
                store_fatal("save hard state");
            if (rd.snap_install) {
                char in[PATH_MAX], out[PATH_MAX];
                snapshot_abort(); /* of an older state than what comes in */
                path_in_dir(in, sizeof in, "snap-incoming");
                snap_path(out, sizeof out, rd.snap.index);
                if (store_snapshot_install(g_st, in, &rd.snap) < 0)
                    store_fatal("install snapshot");
                if (rename(in, out) != 0)
                    fatal("rename %s: %s", in, strerror(errno));
                fsync_dir();
                g_applied_conf = rd.snap.conf;
                installed = 1;
                g_m_snaps_installed++;
            }
            if (rd.truncate_from && store_truncate(g_st, rd.truncate_from) < 0)
                store_fatal("truncate log");
            if (rd.n_entries && store_append(g_st, rd.entries, rd.n_entries) < 0)
                store_fatal("append log");
            if (rd.compact_to && store_compact(g_st, rd.compact_to) < 0)
                store_fatal("compact log");
            for (size_t i = 0; i < rd.n_committed; i++) {
                const raft_entry *e = &rd.committed[i];
                if (e->index <= store_applied(g_st)) {
                    res[i].code = 200;
                    continue;
                }
                if (store_apply(g_st, e, &res[i]) < 0)
                    store_fatal("apply");
                if (e->type == RAFT_ENTRY_CONFIG) {
                    raft_config c;
                    if (raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
                        g_applied_conf = c;
                        log_config(&c, e->index);
                    } else
                        logf_("config entry %llu does not decode", (unsigned long long)e->index);
                }
            }
#ifdef KEYVAL_FAULT_MODES
            for (size_t i = 0; g_fault_apply_uncommitted && i < rd.n_entries; i++) {
                const raft_entry *e = &rd.entries[i];
                store_result r;
                memset(&r, 0, sizeof r);
                if (e->type != RAFT_ENTRY_CONFIG && e->index == store_applied(g_st) + 1 &&
                    store_apply(g_st, e, &r) < 0)
                    store_fatal("apply");
            }
#endif
            /* The committed entries are durable on a majority already (the
             * core counts our own copy only once we reported it durable),
             * and their results are fixed by the log: answer them before
             * this commit waits for the disk for the new entries. */
            if (!lazy && !installed && rd.n_committed) {
                answer_applied(&rd, res);
                answered = 1;
                peers_flush(); /* relayed replies of forwarded writes */
            }
            uint64_t c0 = now_us();
            if (store_commit(g_st) < 0)
                store_fatal("commit");
            if (lazy) {
                g_lazy_commits++;
            } else {
                g_fsyncs++;
                g_entries_persisted += rd.n_entries;
                hist_observe(&g_h_fsync, (double)(now_us() - c0) / 1e6);
                if (rd.n_entries)
                    hist_observe(&g_h_batch, (double)rd.n_entries);
            }
        }
        if (installed) {
            g_snap_index = rd.snap.index;
            g_snap_term = rd.snap.term;
            remove_old_snaps(g_snap_index);
            logf_("snapshot installed at index %llu (term %llu)", (unsigned long long)rd.snap.index,
                  (unsigned long long)rd.snap.term);
        }
        for (size_t i = 0; i < rd.n_msgs; i++)
            if (!early || rd.msgs[i].type != RAFT_MSG_APPEND)
                send_msg(&rd.msgs[i]);
        peers_flush(); /* acks and votes go out before we apply */
        if (!answered)
            answer_applied(&rd, res);
        free(res);
        for (size_t i = 0; i < rd.n_reads; i++) {
            pending *p = pending_find(rd.reads[i].ctx);
            if (p && p->state == PS_WAIT_READ) {
                p->state = PS_WAIT_READIDX;
                p->index = rd.reads[i].index;
            }
        }
        for (size_t i = 0; i < rd.n_reads_failed; i++) {
            pending *p = pending_find(rd.reads_failed[i]);
            if (p && p->state == PS_WAIT_READ)
                p->state = PS_RETRY;
        }
        raft_advance(g_r, &rd);
        check_reads();
        peers_flush(); /* relayed replies of forwarded writes */
    }
}

/* Snapshots are written a slice per loop turn (SNAP_STEP_BYTES of records)
 * from a read transaction that pins the table, so a big table never
 * stalls the loop. */
#define SNAP_STEP_BYTES (4u << 20)
static void snapshot_abort(void)
{
    if (g_snapw) {
        store_snapshot_abort(g_snapw);
        g_snapw = NULL;
        logf_("snapshot at index %llu abandoned", (unsigned long long)g_snapw_index);
    }
}

/* When to snapshot. A snapshot costs O(table); to keep that O(1) per write
 * it waits for a number of applied entries that grows with the table:
 * max(-snapshot-entries, keys in the last snapshot / SNAP_KEYS_DIV). So that
 * memory stays bounded whatever the entry size, it also starts when the
 * log held in memory has grown by 3/4 of -snapshot-bytes since the last
 * one (and the core keeps at most 1/4 of it as trail behind a snapshot).
 * See docs/design.md, "Snapshot policy". */
#define SNAP_KEYS_DIV 2
#define SNAP_TRAIL_SHARE(b) ((b) / 4 ? (b) / 4 : 1) /* 0 would mean no limit */
/* Applied entries between snapshots under the entry rule: max(-snapshot-
 * entries, keys in the last snapshot / SNAP_KEYS_DIV); 0 when the rule is
 * off. Shown in status as snapshot_every (kv-health reads it). */
static uint64_t snapshot_every(void)
{
    if (g_snap_entries == 0)
        return 0;
    if (g_snap_keys_at != g_snap_index) { /* restarted, or installed one */
        char path[PATH_MAX];
        snap_path(path, sizeof path, g_snap_index);
        int64_t n = g_snap_index ? store_snapshot_file_records(path) : 0;
        g_snap_keys = n > 0 ? (uint64_t)n : 0;
        g_snap_keys_at = g_snap_index;
    }
    uint64_t every = g_snap_entries;
    if (g_snap_keys / SNAP_KEYS_DIV > every)
        every = g_snap_keys / SNAP_KEYS_DIV;
    return every;
}

static int snapshot_due(uint64_t applied)
{
    if (g_force_snapshot)
        return 1;
    if (applied <= g_snap_index)
        return 0;
    if (g_snap_bytes) {
        raft_status_info st;
        raft_status(g_r, &st);
        if (st.log_bytes < g_snap_log_base)
            g_snap_log_base = st.log_bytes;
        if (st.log_bytes - g_snap_log_base >= g_snap_bytes - SNAP_TRAIL_SHARE(g_snap_bytes))
            return 1;
    }
    uint64_t every = snapshot_every();
    return every && applied - g_snap_index >= every;
}

static void maybe_snapshot(void)
{
    if (!g_snapw) {
        uint64_t applied = store_applied(g_st);
        if (!snapshot_due(applied))
            return;
        if (applied == 0 || applied == g_snap_index) {
            g_force_snapshot = 0;
            return;
        }
    uint64_t term = raft_entry_term(g_r, applied);
        if (term == 0)
            return;
        raft_snap_meta m;
        memset(&m, 0, sizeof m);
        m.index = applied;
        m.term = term;
        m.conf = g_applied_conf;
        char path[PATH_MAX];
        snap_path(path, sizeof path, applied);
        g_snapw = store_snapshot_begin(g_st, path, &m);
        if (!g_snapw)
            store_fatal("begin snapshot");
        g_snapw_index = applied;
        g_snapw_term = term;
        g_force_snapshot = 0;
    }
    int rc = store_snapshot_step(g_snapw, SNAP_STEP_BYTES);
    if (rc < 0)
        store_fatal("write snapshot");
    if (rc == 0)
        return;
    store_snap_writer *w = g_snapw;
    g_snapw = NULL;
    int64_t records = store_snapshot_records(w);
    if (store_snapshot_finish(w) < 0)
        store_fatal("record snapshot");
    g_snap_index = g_snapw_index;
    g_snap_term = g_snapw_term;
    g_snap_keys = records > 0 ? (uint64_t)records : 0;
    g_snap_keys_at = g_snap_index;
    remove_old_snaps(g_snap_index);
    rc = raft_snapshot_taken(g_r, g_snap_index);
    if (rc != RAFT_OK)
        logf_("raft_snapshot_taken: %s", raft_strerror(rc));
    raft_status_info st;
    raft_status(g_r, &st);
    g_snap_log_base = st.log_bytes;
#ifdef __GLIBC__
    malloc_trim(0); /* give the compacted entries' pages back to the system */
#endif
    g_m_snaps_taken++;
    logf_("snapshot taken at index %llu", (unsigned long long)g_snap_index);
}

/* ------------------------------------------------------------ inbound peers */

static void inconn_close(inconn *c, const char *why)
{
    if (why && !c->hello) {
        /* Strangers: one line per 10 s at most, whatever the flood. */
        static uint64_t last_log;
        static unsigned n;
        n++;
        if (!last_log || now_ms() - last_log >= 10000) {
            logf_("closed %u inbound peer connection%s before or at HELLO (last: %s)", n,
                  n == 1 ? "" : "s", why);
            last_log = now_ms();
            n = 0;
        }
        c->dead = 1;
        return;
    }
    if (why) {
        char n[NAME_MAX_LEN + 1] = "unknown";
        if (c->hello)
            node_name(c->from, n, sizeof n);
        logf_("peer connection from %s closed: %s", n, why);
    }
    c->dead = 1;
}

/* A HELLO we refuse: worth a line each (a misconfigured node), but at most
 * 10 lines per 10 s. */
static void hello_reject(inconn *c, const char *why)
{
    static uint64_t window;
    static unsigned n, dropped;
    uint64_t now = now_ms();
    if (!window || now - window >= 10000) {
        if (dropped)
            logf_("(%u more refused HELLOs not shown)", dropped);
        window = now;
        n = dropped = 0;
    }
    if (n++ < 10)
        logf_("refused peer connection: %s", why);
    else
        dropped++;
    c->dead = 1;
}

static int handle_hello(inconn *c, const uint8_t *pl, size_t len)
{
    peer_hello h;
    if (codec_hello_decode(&h, pl, len) < 0) {
        hello_reject(c, "bad hello (wrong magic or version?)");
        return -1;
    }
    if (h.from == g_id) {
        hello_reject(c, "hello from our own id");
        return -1;
    }
    const raft_config *conf = raft_config_get(g_r);
    int joiner = !conf || conf->n == 0;
    char n[NAME_MAX_LEN + 1], r[ADDR_MAX_LEN + 1], hh[ADDR_MAX_LEN + 1];
    meta_split(h.meta, n, sizeof n, r, sizeof r, hh, sizeof hh);
    if (!valid_name(n) || !valid_addr(r)) {
        hello_reject(c, "hello with bad node meta");
        return -1;
    }
    if (g_cluster[0]) {
        if (strcmp(h.cluster, g_cluster) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s is in cluster '%s', we are in '%s'", n, h.cluster,
                     g_cluster);
            hello_reject(c, why);
            return -1;
        }
    } else {
        if (!joiner || !h.cluster[0]) {
            hello_reject(c, "hello without a cluster id");
            return -1;
        }
        snprintf(g_cluster, sizeof g_cluster, "%s", h.cluster);
        if (store_meta_set(g_st, "cluster", g_cluster) < 0)
            store_fatal("save cluster id");
        logf_("joined cluster %s (contacted by %s)", g_cluster, n);
    }
    /* A sender outside our configuration is still accepted when its
     * cluster id matches: our configuration may be stale (we were down
     * while it was added, and it may lead now); refusing it would leave us
     * behind for good. Removed nodes cannot disrupt: the core ignores vote
     * requests while it hears from a leader, and we never open links to
     * non-members while we are a member. */
    if (!joiner && !raft_config_find(conf, h.from))
        vlog("accepting %s, not in our configuration (same cluster)", n);
    known_set(h.from, h.meta);
    c->hello = 1;
    c->from = h.from;
    vlog("peer connection from %s", n);
    if (joiner)
        peers_reconcile();
    return 0;
}

static void handle_fwd_req(inconn *c, const uint8_t *pl, size_t len)
{
    uint64_t reqid, from;
    const char *js;
    size_t jl;
    if (codec_fwd_decode(pl, len, &reqid, &from, &js, &jl) < 0 || from != c->from) {
        inconn_close(c, "bad forwarded request");
        return;
    }
    json_error_t je;
    json_t *req = json_loadb(js, jl, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(req)) {
        json_decref(req);
        const char *e = "{\"code\":400,\"error\":\"malformed forwarded request\"}";
        send_fwd(from, PEER_FWD_RESP, reqid, e, strlen(e));
        return;
    }
    start_request(req, NULL, 1, from, reqid);
}

static void handle_fwd_resp(inconn *c, const uint8_t *pl, size_t len)
{
    uint64_t reqid;
    const char *js;
    size_t jl;
    if (codec_fwd_decode(pl, len, &reqid, NULL, &js, &jl) < 0) {
        inconn_close(c, "bad forwarded reply");
        return;
    }
    pending *p = pending_find(reqid);
    if (!p || p->state != PS_WAIT_FWD)
        return; /* late: we already answered */
    json_error_t je;
    json_t *rep = json_loadb(js, jl, JSON_ALLOW_NUL, &je);
    if (!json_is_object(rep) || !json_is_integer(json_object_get(rep, "code"))) {
        json_decref(rep);
        finish(p, json_pack("{s:i,s:s,s:s}", "code", 502, "error",
                            "the leader sent a malformed reply", "outcome", "unknown"));
        return;
    }
    if (json_is_true(json_object_get(rep, "notleader"))) {
        json_decref(rep);
        p->state = PS_RETRY; /* it was never proposed there */
        p->proposed = 0;
        return;
    }
    finish(p, rep);
}

static void inconn_read(inconn *c)
{
    static uint8_t buf[256 * 1024];
    if (c->dead)
        return;
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->hello)
            vlog("peer connection closed");
        c->dead = 1;
        return;
    }
    if (codec_reader_feed(&c->fr, buf, (size_t)n) < 0) {
        inconn_close(c, "framing error");
        return;
    }
    /* Before HELLO nobody gets a 16 MiB buffer: the first frame must be
     * HELLO-sized. */
    if (!c->hello && c->fr.len - c->fr.off >= 4) {
        const uint8_t *h = c->fr.buf + c->fr.off;
        uint32_t fl = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (fl > HELLO_FRAME_MAX) {
            inconn_close(c, "first frame too large for a hello");
            return;
        }
    }
    int kind;
    const uint8_t *pl;
    size_t len;
    int rc = 0;
    while (!c->dead && (rc = codec_reader_next(&c->fr, &kind, &pl, &len)) == 1) {
        if (!c->hello) {
            if (kind != PEER_HELLO) {
                inconn_close(c, "first frame is not a hello");
                return;
            }
            handle_hello(c, pl, len);
            continue;
        }
        switch (kind) {
        case PEER_RAFT: {
            raft_msg m;
            if (codec_msg_decode(&m, pl, len) < 0) {
                inconn_close(c, "malformed raft message");
                return;
            }
            if (m.from != c->from) {
                codec_msg_free(&m);
                inconn_close(c, "raft message with a forged sender");
                return;
            }
            /* A node that is not in its own configuration (a new or wiped
             * node) has no vote to give: it may have forgotten one. */
            if (m.type == RAFT_MSG_VOTE || m.type == RAFT_MSG_PREVOTE) {
                const raft_config *cf = raft_config_get(g_r);
                if (!cf || !raft_config_find(cf, g_id)) {
                    vlog("ignoring a vote request: not a member yet");
                    codec_msg_free(&m);
                    break;
                }
            }
            int src = raft_step(g_r, &m);
            if (src == RAFT_EINVAL)
                vlog("raft_step rejected a message of type %d", m.type);
            codec_msg_free(&m);
            break;
        }
        case PEER_FWD_REQ:
            handle_fwd_req(c, pl, len);
            break;
        case PEER_FWD_RESP:
            handle_fwd_resp(c, pl, len);
            break;
        default:
            inconn_close(c, "unexpected frame");
            return;
        }
    }
    if (rc < 0)
        inconn_close(c, "framing error");
}

/* ---------------------------------------------------------- client sockets */

/* Answer c with an error, drop what it sent and close it once the answer
 * is out: for input raftd will not hold. */
static void client_refuse(client *c, int code, const char *why)
{
    json_t *r = err_reply(code, why);
    client_send_json(c, r);
    json_decref(r);
    c->eof = 1;
    c->in_len = 0;
    c->scanned = 0;
}

static void client_pump(client *c)
{
    while (!c->dead && !c->busy && c->out_off == c->out_len) {
        char *nl = c->in_len > c->scanned
                       ? memchr(c->in + c->scanned, '\n', c->in_len - c->scanned)
                       : NULL;
        if (!nl) {
            c->scanned = c->in_len;
            if (c->in_len > LINE_MAX_BYTES)
                client_refuse(c, 413, "request line longer than 16 MiB");
            return;
        }
        size_t ll = (size_t)(nl - c->in);
        size_t rest = c->in_len - ll - 1;
        if (ll > LINE_MAX_BYTES) {
            json_t *r = err_reply(413, "request line longer than 16 MiB");
            client_send_json(c, r);
            json_decref(r);
        } else {
            size_t l = ll;
            if (l && c->in[l - 1] == '\r')
                l--;
            int blank = 1;
            for (size_t i = 0; i < l && blank; i++)
                blank = c->in[i] == ' ' || c->in[i] == '\t';
            if (!blank && start_fast_set(c, c->in, l)) {
                /* taken by the fast path */
            } else if (!blank) {
                json_error_t je;
                json_t *req = json_loadb(c->in, l, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
                if (!json_is_object(req)) {
                    char msg[300];
                    snprintf(msg, sizeof msg, "malformed request: %s",
                             req ? "not a JSON object" : je.text);
                    json_decref(req);
                    json_t *r = err_reply(400, msg);
                    client_send_json(c, r);
                    json_decref(r);
                } else {
                    start_request(req, c, 0, 0, 0);
                }
            }
        }
        memmove(c->in, nl + 1, rest);
        c->in_len = rest;
        c->scanned = 0;
    }
}

static size_t g_client_bufs; /* sum of the clients' in_cap */

static void client_read(client *c)
{
    if (c->dead)
        return;
    if (c->refused) {
        char junk[4096];
        ssize_t n = read(c->fd, junk, sizeof junk);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            c->dead = 1;
        return;
    }
    if (c->in_cap - c->in_len < CLIENT_BUF_MIN) {
        size_t nc = c->in_cap ? c->in_cap * 2 : CLIENT_BUF_MIN;
        if (nc > LINE_MAX_BYTES + 131072)
            nc = LINE_MAX_BYTES + 131072;
        if (nc > c->in_cap && nc > CLIENT_BUF_MIN &&
            g_client_bufs - c->in_cap + nc > CLIENT_BUFS_MAX) {
            client_refuse(c, 503, "raftd is holding too many large requests from other "
                                  "clients; retry later");
            return;
        }
        if (nc > c->in_cap) {
            char *p = realloc(c->in, nc);
            if (!p) {
                c->dead = 1;
                return;
            }
            g_client_bufs += nc - c->in_cap;
            c->in = p;
            c->in_cap = nc;
        }
    }
    size_t room = c->in_cap - c->in_len;
    if (room == 0) {
        client_pump(c);
        return;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    c->last = now_ms();
    if (n <= 0) {
        c->eof = 1;
        /* A last request without its newline still counts. */
        if (c->in_len && c->in[c->in_len - 1] != '\n' && c->in_len < c->in_cap)
            c->in[c->in_len++] = '\n';
        client_pump(c);
        return;
    }
    c->in_len += (size_t)n;
    client_pump(c);
    /* A big request is done: give its buffer back to the common budget
     * (FastCGI programs keep their connection for many requests). */
    if (!c->dead && c->in_cap > CLIENT_BUF_MIN && c->in_len <= CLIENT_BUF_MIN / 2) {
        char *p = realloc(c->in, CLIENT_BUF_MIN);
        if (p) {
            g_client_bufs -= c->in_cap - CLIENT_BUF_MIN;
            c->in = p;
            c->in_cap = CLIENT_BUF_MIN;
        }
    }
}

static void client_free(client *c)
{
    for (pending *p = g_pend; p; p = p->next)
        if (p->cl == c)
            p->cl = NULL; /* still runs to its end; nobody to tell */
    close(c->fd);
    g_client_bufs -= c->in_cap;
    free(c->in);
    free(c->out);
    free(c);
}

/* Local access control on top of the socket's file mode: a connecting
 * process must run as our uid, as root, or with the socket file's group
 * (primary or supplementary). Returns 1 allowed, 0 refused; sets uid, gid. */
static int peer_allowed(int fd, const char *sockpath, uid_t *uid, gid_t *gid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return 0;
    *uid = cr.uid;
    *gid = cr.gid;
    if (cr.uid == 0 || cr.uid == geteuid())
        return 1;
    struct stat sb;
    gid_t sockgid = stat(sockpath, &sb) == 0 ? sb.st_gid : getegid();
    if (cr.gid == sockgid)
        return 1;
#ifdef SO_PEERGROUPS
    gid_t groups[256];
    socklen_t gl = sizeof groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
        for (size_t i = 0; i < gl / sizeof groups[0]; i++)
            if (groups[i] == sockgid)
                return 1;
#endif
    return 0;
}

/* Log refusals: the first at once, then at most one line per 10 s. */
static void log_refusal(const char *sockname, uid_t uid, gid_t gid)
{
    static uint64_t last_log;
    static unsigned pending_n;
    pending_n++;
    uint64_t now = now_ms();
    if (last_log && now - last_log < 10000)
        return;
    logf_("%s: refused %u client%s (last: uid %u gid %u; not our uid, root or the "
          "socket's group)",
          sockname, pending_n, pending_n == 1 ? "" : "s", (unsigned)uid, (unsigned)gid);
    pending_n = 0;
    last_log = now;
}

static void accept_clients(void)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(g_client_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uid_t uid;
        gid_t gid;
        int allowed = peer_allowed(fd, g_client_path, &uid, &gid);
        if (!allowed)
            log_refusal("raftd.sock", uid, gid);
        /* Full: make room by closing the longest-idle client (connected,
         * nothing asked, nothing owed), so idle connections cannot lock
         * everyone out. */
        size_t live = 0;
        client *victim = NULL;
        for (size_t i = 0; i < g_n_cl; i++) {
            client *o = g_cl[i];
            if (o->dead)
                continue;
            live++;
            if (!o->busy && o->out_off == o->out_len && o->in_len == 0 &&
                (!victim || o->last < victim->last))
                victim = o;
        }
        if (live >= g_max_clients && victim && g_n_cl < MAX_CLIENTS + 64) {
            victim->dead = 1;
            live--;
            vlog("too many clients: closed the longest-idle one");
        }
        if (live >= g_max_clients || g_n_cl >= MAX_CLIENTS + 64) {
            const char *e = "{\"code\":503,\"error\":\"too many clients\"}\n";
            ssize_t w = write(fd, e, strlen(e));
            (void)w;
            close(fd);
            continue;
        }
        client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->since = c->last = now_ms();
        g_cl[g_n_cl++] = c;
        g_m_clients_accepted++;
        if (!allowed) {
            /* Answer at once; read and drop what it sends so that it can
             * finish sending and read the answer; close when it goes. */
            char e[128];
            int n = snprintf(e, sizeof e,
                             "{\"code\":403,\"error\":\"uid %u may not use raftd.sock\"}\n",
                             (unsigned)uid);
            c->refused = 1;
            client_write(c, e, (size_t)n);
            shutdown(fd, SHUT_WR);
        }
    }
}

static void accept_peers(void)
{
    for (int k = 0; k < 16; k++) {
        int fd = accept4(g_peer_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uid_t uid;
        gid_t gid;
        if (!peer_allowed(fd, g_peer_path, &uid, &gid)) {
            close(fd);
            log_refusal("peer.sock", uid, gid);
            continue;
        }
        /* Full: a connection that has not said HELLO yet (the oldest)
         * makes room, so idle connections cannot lock real peers out. */
        size_t live = 0;
        inconn *victim = NULL;
        for (size_t i = 0; i < g_n_in; i++) {
            if (g_in[i]->dead)
                continue;
            live++;
            if (!g_in[i]->hello && (!victim || g_in[i]->since < victim->since))
                victim = g_in[i];
        }
        if (live >= MAX_INBOUND && victim && g_n_in < MAX_INBOUND + 16) {
            victim->dead = 1;
            live--;
        }
        if (live >= MAX_INBOUND || g_n_in >= MAX_INBOUND + 16) {
            static uint64_t last_full_log;
            if (now_ms() - last_full_log > 10000) {
                last_full_log = now_ms();
                logf_("too many inbound peer connections; refusing new ones");
            }
            close(fd);
            continue;
        }
        inconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->since = now_ms();
        g_in[g_n_in++] = c;
    }
}

/* --------------------------------------------------------------- startup */

static int listen_unix(const char *path, mode_t mode)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        fatal("%s: socket path too long (max %zu bytes)", path, sizeof sa.sun_path - 1);
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fatal("socket: %s", strerror(errno));
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0)
        fatal("bind %s: %s", path, strerror(errno));
    if (chmod(path, mode) < 0)
        fatal("chmod %s: %s", path, strerror(errno));
    if (listen(fd, 512) < 0)
        fatal("listen %s: %s", path, strerror(errno));
    return fd;
}

/* Tell a service manager (systemd Type=notify, through keyval) how we are:
 * one datagram to $NOTIFY_SOCKET when it is set. */
static void notify(const char *state)
{
    static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    static int init, have;
    if (!init) {
        init = 1;
        const char *e = getenv("NOTIFY_SOCKET");
        if (e && (e[0] == '/' || e[0] == '@') && strlen(e) < sizeof path) {
            snprintf(path, sizeof path, "%s", e);
            have = 1;
        }
        unsetenv("NOTIFY_SOCKET"); /* not for our link children */
    }
    if (!have)
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t l = strlen(path);
    memcpy(sa.sun_path, path, l);
    if (path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l)) < 0)
        logf_("notify %s: %s", path, strerror(errno));
    close(fd);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void cleanup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    /* Tell waiting local clients (best effort, non-blocking). */
    while (g_pend) {
        pending *p = g_pend;
        p->remote = 0;
        finish(p, json_pack("{s:i,s:s,s:s}", "code", 503, "error", "raftd is shutting down",
                            "outcome", p->proposed ? "unknown" : "failed"));
    }
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_peers[i].used && g_peers[i].pid > 0)
            kill(g_peers[i].pid, SIGTERM);
    for (int t = 0; t < 50; t++) {
        int any = 0;
        for (int i = 0; i < MAX_PEERS; i++) {
            peer *p = &g_peers[i];
            if (!p->used || p->pid <= 0)
                continue;
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
                p->pid = 0;
            else
                any = 1;
        }
        if (!any)
            break;
        usleep(20000);
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &g_peers[i];
        if (p->used && p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        if (p->used)
            peer_free(p);
    }
    for (size_t i = 0; i < g_n_cl; i++)
        client_free(g_cl[i]);
    g_n_cl = 0;
    for (size_t i = 0; i < g_n_in; i++) {
        close(g_in[i]->fd);
        codec_reader_free(&g_in[i]->fr);
        free(g_in[i]);
    }
    g_n_in = 0;
    if (g_client_lfd >= 0) {
        close(g_client_lfd);
        unlink(g_client_path);
    }
    if (g_peer_lfd >= 0) {
        close(g_peer_lfd);
        unlink(g_peer_path);
    }
    if (g_r)
        raft_free(g_r);
    g_r = NULL;
    if (g_snapw)
        store_snapshot_abort(g_snapw);
    g_snapw = NULL;
    if (g_st)
        store_close(g_st);
    g_st = NULL;
    if (g_pid_fd >= 0) {
        unlink(g_pid_path);
        close(g_pid_fd);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: raftd -id NAME -raddr HOST:PORT -haddr HOST:PORT [-bootstrap]\n"
            "             [-peer-connect TEMPLATE] [-tick-ms 50] [-election-ticks 10]\n"
            "             [-snapshot-entries 10000] [-snapshot-bytes 16777216]\n"
            "             [-snapshot-trail 1000] [-v] DATADIR\n"
            "Snapshots are taken every max(-snapshot-entries, keys/2) applied entries\n"
            "(0: not by count), and when the log held in memory has grown by 3/4 of\n"
            "-snapshot-bytes since the last one (0: no byte limit); at most\n"
            "-snapshot-trail entries and 1/4 of -snapshot-bytes stay behind a snapshot.\n");
    exit(2);
}

static unsigned long long parse_num(const char *opt, const char *s, unsigned long long lo,
                                    unsigned long long hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || !*s || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: expected a number in %llu..%llu, got '%s'\n", prog, opt, lo, hi,
                s);
        exit(2);
    }
    return v;
}

static void random_hex(char *out, size_t nbytes)
{
    uint8_t b[32];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, nbytes) != (ssize_t)nbytes)
        fatal("/dev/urandom: %s", strerror(errno));
    close(fd);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void open_pidfile(void)
{
    path_in_dir(g_pid_path, sizeof g_pid_path, "raftd.pid");
    int fd = open(g_pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fatal("%s: %s", g_pid_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        fprintf(stderr, "%s: %s: another raftd is running on %s\n", prog, g_pid_path, g_dir);
        exit(1);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        fatal("%s: write: %s", g_pid_path, strerror(errno));
    g_pid_fd = fd;
}

static void log_role_changes(void)
{
    static int last_role = -1;
    static uint64_t last_leader = (uint64_t)-1;
    raft_status_info st;
    raft_status(g_r, &st);
    if (st.role == last_role && st.leader == last_leader)
        return;
    static uint64_t counted_leader, counted_term;
    if (st.leader && (st.leader != counted_leader || st.term != counted_term)) {
        g_m_leader_changes++;
        counted_leader = st.leader;
        counted_term = st.term;
    }
    if (st.role == RAFT_LEADER && last_role != RAFT_LEADER)
        logf_("elected leader in term %llu", (unsigned long long)st.term);
    else if (last_role == RAFT_LEADER && st.role != RAFT_LEADER)
        logf_("stepped down in term %llu", (unsigned long long)st.term);
    if (st.role != RAFT_LEADER && st.leader != last_leader && st.leader && st.leader != g_id) {
        char n[NAME_MAX_LEN + 1];
        node_name(st.leader, n, sizeof n);
        logf_("following leader %s in term %llu", n, (unsigned long long)st.term);
    }
    last_role = st.role;
    last_leader = st.leader;
}

/* The leader keeps its own address in the configuration current. */
static void fix_own_meta(uint64_t now)
{
    if (now - g_last_meta_fix < 1000)
        return;
    g_last_meta_fix = now;
    raft_status_info st;
    raft_status(g_r, &st);
    if (st.role != RAFT_LEADER)
        return;
    const raft_config *c = raft_config_get(g_r);
    const raft_node *me = c ? raft_config_find(c, g_id) : NULL;
    if (me && strcmp(me->meta, g_meta) != 0) {
        uint64_t idx = 0;
        if (raft_add_node(g_r, g_id, g_meta, &idx) == RAFT_OK && idx)
            logf_("updating own address in the configuration to %s", g_meta);
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int bootstrap = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDARG()                                                           \
    do {                                                                    \
        if (!next) {                                                        \
            fprintf(stderr, "%s: %s needs an argument\n", prog, a);         \
            usage();                                                        \
        }                                                                   \
        i++;                                                                \
    } while (0)
        if (!strcmp(a, "-id")) {
            NEEDARG();
            if (!valid_name(next)) {
                fprintf(stderr, "%s: -id: '%s' must be 1-63 of [A-Za-z0-9._-]\n", prog, next);
                exit(2);
            }
            snprintf(g_name, sizeof g_name, "%s", next);
        } else if (!strcmp(a, "-raddr") || !strcmp(a, "-haddr")) {
            NEEDARG();
            if (!valid_addr(next)) {
                fprintf(stderr, "%s: %s: '%s' is not HOST:PORT\n", prog, a, next);
                exit(2);
            }
            snprintf(a[1] == 'r' ? g_raddr : g_haddr, sizeof g_raddr, "%s", next);
        } else if (!strcmp(a, "-bootstrap")) {
            bootstrap = 1;
        } else if (!strcmp(a, "-peer-connect")) {
            NEEDARG();
            if (!strstr(next, "%a") || strlen(next) > 4000) {
                fprintf(stderr, "%s: -peer-connect: template must contain %%a\n", prog);
                exit(2);
            }
            g_connect = next;
        } else if (!strcmp(a, "-tick-ms")) {
            NEEDARG();
            g_tick_ms = (unsigned)parse_num(a, next, 1, 10000);
        } else if (!strcmp(a, "-election-ticks")) {
            NEEDARG();
            g_election_ticks = (unsigned)parse_num(a, next, 2, 1000);
        } else if (!strcmp(a, "-snapshot-entries")) {
            NEEDARG();
            g_snap_entries = parse_num(a, next, 0, 1000000000ULL);
        } else if (!strcmp(a, "-snapshot-bytes")) {
            NEEDARG();
            g_snap_bytes = parse_num(a, next, 0, 1ULL << 40);
        } else if (!strcmp(a, "-snapshot-trail")) {
            NEEDARG();
            g_snap_trail = parse_num(a, next, 0, 1000000000ULL);
        } else if (!strcmp(a, "-v")) {
            g_verbose = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
        } else if (a[0] == '-') {
            fprintf(stderr, "%s: unknown option %s\n", prog, a);
            usage();
        } else if (!dir) {
            dir = a;
        } else {
            fprintf(stderr, "%s: more than one DATADIR given\n", prog);
            usage();
        }
    }
    if (!dir || !g_name[0] || !g_raddr[0] || !g_haddr[0]) {
        fprintf(stderr, "%s: -id, -raddr, -haddr and DATADIR are required\n", prog);
        usage();
    }
    if (strlen(dir) > 80) {
        fprintf(stderr, "%s: %s: DATADIR path too long for UNIX sockets (max 80 bytes)\n", prog,
                dir);
        exit(2);
    }
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    snprintf(g_meta, sizeof g_meta, "%s %s %s", g_name, g_raddr, g_haddr);

    if (mkdir(g_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: mkdir %s: %s\n", prog, g_dir, strerror(errno));
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    open_pidfile();

    /* Room for every client, peer connection, link pipe and SQLite. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = MAX_CLIENTS + 64 + MAX_INBOUND + 16 + MAX_PEERS + 64;
        if (rl.rlim_cur < want) {
            rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur < want) {
            rlim_t other = 64 + MAX_INBOUND + 16 + MAX_PEERS + 64;
            g_max_clients = rl.rlim_cur > other + 16 ? (size_t)(rl.rlim_cur - other) : 16;
            logf_("file descriptor limit %llu: at most %zu clients",
                  (unsigned long long)rl.rlim_cur, g_max_clients);
        }
    }

#ifdef KEYVAL_FAULT_MODES
    {
        const char *m = getenv("KEYVAL_FAULT_MODE");
        if (m && *m) {
            g_fault_ack_early = !strcmp(m, "ack-early");
            g_fault_local_read = !strcmp(m, "local-read");
            g_fault_apply_uncommitted = !strcmp(m, "apply-uncommitted");
            if (!g_fault_ack_early && !g_fault_local_read && !g_fault_apply_uncommitted)
                fatal("unknown KEYVAL_FAULT_MODE %s", m);
            logf_("DELIBERATELY BROKEN: fault mode %s", m);
        }
    }
#endif
    char dbpath[PATH_MAX];
    path_in_dir(dbpath, sizeof dbpath, "raft.db");
    g_st = store_open(dbpath);
    if (!g_st)
        fatal("open database: %s", store_open_error());
    char stored[128];
    int rc = store_meta_get(g_st, "name", stored, sizeof stored);
    if (rc < 0)
        store_fatal("read node name");
    if (rc == 1 && strcmp(stored, g_name) != 0)
        fatal("%s belongs to node '%s', not '%s'", g_dir, stored, g_name);
    if (store_meta_get(g_st, "cluster", g_cluster, sizeof g_cluster) < 0)
        store_fatal("read cluster id");

    store_loaded ld;
    if (store_load(g_st, &ld) < 0)
        store_fatal("load");
    int fresh = ld.n_entries == 0 && !ld.has_snap && ld.hs.term == 0 && ld.applied == 0;

    /* The Raft id: of this incarnation of the data directory (made now
     * when the directory is new), or the name's hash for a database of a
     * version before incarnations (lib/nodeid.h). */
    {
        char inc[NODEID_HEX_LEN + 1], why[300];
        int legacy = 0;
        if (nodeid_load(g_st, g_name, fresh, &g_id, inc, sizeof inc, &legacy, why,
                        sizeof why) < 0)
            fatal("%s", why);
        if (legacy)
            logf_("node id %016llx (the name's hash: a data directory made before "
                  "incarnations)", (unsigned long long)g_id);
        else
            vlog("node id %016llx (incarnation %s)", (unsigned long long)g_id, inc);
    }
    if (rc == 0 && store_meta_set(g_st, "name", g_name) < 0)
        store_fatal("save node name");

    raft_options o;
    raft_options_default(&o);
    o.id = g_id;
    uint8_t seed[8];
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, seed, 8) != 8)
        fatal("/dev/urandom: %s", strerror(errno));
    close(ufd);
    memcpy(&o.seed, seed, 8);
    o.election_ticks = g_election_ticks;
    o.snapshot_trail = g_snap_trail;
    o.snapshot_trail_bytes = g_snap_bytes ? (size_t)SNAP_TRAIL_SHARE(g_snap_bytes) : 0;
    g_max_entry = o.max_entry_bytes;
    g_r = raft_new(&o);
    if (!g_r)
        fatal("cannot create the Raft core (bad options?)");

    if (!fresh) {
        rc = raft_restore(g_r, &ld.hs, ld.has_snap ? &ld.snap : NULL, ld.entries, ld.n_entries,
                          ld.applied);
        if (rc != RAFT_OK)
            fatal("restore Raft state from %s: %s", dbpath, raft_strerror(rc));
        if (ld.has_snap) {
            g_applied_conf = ld.snap.conf;
            g_snap_index = ld.snap.index;
            g_snap_term = ld.snap.term;
        }
        for (size_t i = 0; i < ld.n_entries; i++) {
            const raft_entry *e = &ld.entries[i];
            if (e->index <= ld.applied && e->type == RAFT_ENTRY_CONFIG) {
                raft_config c;
                if (raft_config_decode(&c, e->data, e->len) == RAFT_OK)
                    g_applied_conf = c;
            }
        }
        if (g_snap_index) {
            char sp[PATH_MAX];
            snap_path(sp, sizeof sp, g_snap_index);
            if (access(sp, R_OK) != 0) {
                logf_("snapshot file %s missing; taking a new one", sp);
                g_force_snapshot = 1;
            }
        }
        logf_("restarted: term %llu, applied %llu, %zu log entries, snapshot %llu",
              (unsigned long long)ld.hs.term, (unsigned long long)ld.applied, ld.n_entries,
              (unsigned long long)g_snap_index);
    } else if (bootstrap) {
        random_hex(g_cluster, 16);
        if (store_meta_set(g_st, "cluster", g_cluster) < 0)
            store_fatal("save cluster id");
        raft_config c;
        memset(&c, 0, sizeof c);
        c.n = 1;
        c.nodes[0].id = g_id;
        c.nodes[0].voter = 1;
        snprintf(c.nodes[0].meta, sizeof c.nodes[0].meta, "%s", g_meta);
        rc = raft_bootstrap(g_r, &c);
        if (rc != RAFT_OK)
            fatal("bootstrap: %s", raft_strerror(rc));
        logf_("bootstrapped new cluster %s", g_cluster);
    } else {
        logf_("new node: waiting to be added to a cluster");
    }
    store_loaded_free(&ld);
    remove_old_snaps(g_snap_index);
    {
        char inc[PATH_MAX];
        path_in_dir(inc, sizeof inc, "snap-incoming");
        unlink(inc);
    }

    path_in_dir(g_client_path, sizeof g_client_path, "raftd.sock");
    path_in_dir(g_peer_path, sizeof g_peer_path, "peer.sock");
    g_peer_lfd = listen_unix(g_peer_path, 0600);
    g_client_lfd = listen_unix(g_client_path, 0660);
    for (int i = 0; i < MAX_PEERS; i++)
        g_peers[i].wfd = -1;

    process_ready();
    peers_reconcile();
    logf_("listening on %s (raft %s, http %s)", g_client_path, g_raddr, g_haddr);
    {
        char st[300];
        snprintf(st, sizeof st, "READY=1\nSTATUS=raftd %s listening on raftd.sock\n", g_name);
        notify(st);
    }

    uint64_t next_tick = now_ms() + g_tick_ms;
    size_t npfd = 2 + MAX_INBOUND + 16 + MAX_PEERS + MAX_CLIENTS + 64;
    struct pollfd *pfd = calloc(npfd, sizeof *pfd);
    if (!pfd)
        fatal("out of memory");
    enum { K_CL_LISTEN, K_PEER_LISTEN, K_IN, K_PEER, K_CLIENT };
    int *kind = calloc(npfd, sizeof *kind);
    void **ptr = calloc(npfd, sizeof *ptr);
    if (!kind || !ptr)
        fatal("out of memory");

    while (!g_stop) {
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = g_client_lfd, .events = POLLIN};
        kind[n++] = K_CL_LISTEN;
        pfd[n] = (struct pollfd){.fd = g_peer_lfd, .events = POLLIN};
        kind[n++] = K_PEER_LISTEN;
        for (size_t i = 0; i < g_n_in; i++) {
            pfd[n] = (struct pollfd){.fd = g_in[i]->fd, .events = POLLIN};
            kind[n] = K_IN;
            ptr[n++] = g_in[i];
        }
        for (int i = 0; i < MAX_PEERS; i++) {
            peer *p = &g_peers[i];
            if (p->used && p->wfd >= 0 && p->off < p->out.len) {
                pfd[n] = (struct pollfd){.fd = p->wfd, .events = POLLOUT};
                kind[n] = K_PEER;
                ptr[n++] = p;
            }
        }
        for (size_t i = 0; i < g_n_cl; i++) {
            client *c = g_cl[i];
            short ev = 0;
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            else if (c->refused || (!c->busy && !c->eof && c->in_len <= LINE_MAX_BYTES))
                ev |= POLLIN;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
            kind[n] = K_CLIENT;
            ptr[n++] = c;
        }
        uint64_t now = now_ms();
        int timeout = next_tick > now && !g_snapw ? (int)(next_tick - now) : 0;
        int pr = poll(pfd, n, timeout);
        if (pr < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
        uint64_t turn_start = now_ms();
        for (nfds_t i = 0; pr > 0 && i < n; i++) {
            short re = pfd[i].revents;
            if (!re)
                continue;
            switch (kind[i]) {
            case K_CL_LISTEN:
                accept_clients();
                break;
            case K_PEER_LISTEN:
                accept_peers();
                break;
            case K_IN:
                inconn_read(ptr[i]);
                break;
            case K_PEER:
                if (re & (POLLERR | POLLHUP))
                    peer_kill(ptr[i]);
                else
                    peer_flush(ptr[i]);
                break;
            case K_CLIENT: {
                client *c = ptr[i];
                if (re & POLLOUT)
                    client_flush(c);
                if (re & POLLIN)
                    client_read(c);
                else if (re & (POLLHUP | POLLERR))
                    c->dead = 1; /* gone for good: nobody to answer */
                break;
            }
            }
        }
        now = now_ms();
        if (now >= next_tick) {
            unsigned ticks = 0;
            while (now >= next_tick && ticks < 5) {
                raft_tick(g_r);
                next_tick += g_tick_ms;
                ticks++;
            }
            if (now >= next_tick)
                next_tick = now + g_tick_ms;
            pending_timers(now);
            peers_timers(now);
            fix_own_meta(now);
            for (size_t i = 0; i < g_n_in; i++)
                if (!g_in[i]->hello && now - g_in[i]->since > HELLO_TIMEOUT_MS)
                    inconn_close(g_in[i], "no hello in time");
        }
        process_ready();
        maybe_snapshot();
        process_ready();
        for (size_t i = 0; i < g_n_cl; i++)
            client_pump(g_cl[i]);
        process_ready();
        peers_reap(now);
        peers_reconcile();
        log_role_changes();
        /* A turn that takes half an election timeout endangers leadership:
         * say so (at most every 10 s). */
        uint64_t turn_ms = now_ms() - turn_start;
        if (turn_ms * 2 >= (uint64_t)g_tick_ms * g_election_ticks && turn_ms >= 100 &&
            now_ms() - g_last_slow_log >= 10000) {
            g_last_slow_log = now_ms();
            logf_("slow: one loop turn took %llu ms (election timeout %u ms); disk too slow?",
                  (unsigned long long)turn_ms, g_tick_ms * g_election_ticks);
        }
        /* sweep */
        for (size_t i = 0; i < g_n_in;) {
            if (g_in[i]->dead) {
                close(g_in[i]->fd);
                codec_reader_free(&g_in[i]->fr);
                free(g_in[i]);
                g_in[i] = g_in[--g_n_in];
            } else {
                i++;
            }
        }
        for (size_t i = 0; i < g_n_cl;) {
            client *c = g_cl[i];
            int done = c->eof && !c->busy && c->out_off == c->out_len &&
                       !(c->in_len > c->scanned &&
                         memchr(c->in + c->scanned, '\n', c->in_len - c->scanned));
            if (c->refused && now_ms() - c->since > 5000)
                done = 1;
            if (c->dead || done) {
                client_free(c);
                g_cl[i] = g_cl[--g_n_cl];
            } else {
                i++;
            }
        }
    }
    logf_("shutting down");
    notify("STOPPING=1\n");
    free(pfd);
    free(kind);
    free(ptr);
    cleanup();
    return 0;
}
