/*
 * raftd.h - raftd's private header: its limits, the state of one daemon
 * (struct raftd, passed to every module) and the modules' functions.
 *
 * Modules (one job each): main.c (parse, boot, run, clean up), options.c,
 * boot.c (store, node id, bootstrap/restore, pidfile, sockets; shutdown),
 * loop.c (epoll; knows no handler), run.c (one loop turn: timers, ready,
 * sweep), peer_out.c (outbound links: socat children), link_health.c
 * (declaring silent links dead), link_stderr.c (their stderr into the
 * log), fwd_replies.c (replies to forwarded requests, kept for a resend),
 * peer_in.c
 * (inbound peer connections), client.c (raftd.sock clients), request.c
 * (parsing and validation, one function per op), pending.c (the pending
 * request life cycle), ready.c (one Ready: persist, send, apply, answer),
 * snapshot.c, status.c (status and metrics), util.c (log, clock, paths,
 * JSON text, member names).
 */
#ifndef RAFTD_RAFTD_H
#define RAFTD_RAFTD_H

#include "codec.h"
#include "kvrules.h"
#include "loop.h"
#include "nodeid.h"
#include "raft.h"
#include "storage.h"

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REQ_TIMEOUT_MS 5000
/* socat options of the default -peer-connect: TCP_NODELAY (a link is
 * one-way, so the peer has no data to carry its ACK: with Nagle a frame
 * written while the previous one is unacknowledged waits for the peer's
 * delayed ACK, up to 40 ms, which was the p99 of writes at 8 clients),
 * give up a connect after 2 s, TCP keepalive, and TCP_USER_TIMEOUT
 * (level 6, option 18) of 10 s, so a link whose data is not acknowledged
 * fails instead of waiting out the retransmission backoff (link_health.c
 * restarts silent links sooner). */
#define PEER_TCP_OPTS \
    "nodelay,connect-timeout=2,keepalive,keepidle=5,keepintvl=2,keepcnt=3," \
    "setsockopt-int=6:18:10000"
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
#define HELLO_TIMEOUT_MS 10000
#define HELLO_FRAME_MAX 4096 /* a HELLO is < 400 bytes; a larger first frame is refused */
#define INBOUND_READ_BYTES (256u * 1024u)
/* A snapshot file (written only when a follower needs one) is written a
 * slice per loop turn (SNAP_STEP_BYTES of records) from a read transaction
 * that pins the table, so a big table never stalls the loop. */
#define SNAP_STEP_BYTES (1u << 20)
#define SNAP_TRAIL_SHARE(b) ((b) / 4 ? (b) / 4 : 1) /* 0 would mean no limit */

extern const char *const prog;

/* ------------------------------------------------------------------ types */

typedef struct peer { /* an outbound link: a child running -peer-connect */
    int used;
    uint64_t id;
    char meta[RAFT_META_MAX];
    char name[KV_NAME_MAX + 1];
    char raddr[KV_ADDR_MAX + 1];
    pid_t pid; /* link child, 0 none */
    int wfd;   /* its stdin, -1 none */
    wbuf out;
    size_t off;
    uint64_t started, restart_at, backoff;
    int announced_up, failing;
    uint64_t heard;    /* last frame from this peer (link_health.c) */
    unsigned hellos;   /* HELLOs from it since the link was added */
    int declared_dead; /* killed for silence, not heard from since */
    int err_fd;        /* read end of the child's stderr, -1 none (link_stderr.c) */
    char err_buf[256]; /* the line being read */
    size_t err_len;
    char err_last[256]; /* the last whole line */
    int err_pending;    /* err_last not logged yet */
    uint64_t err_logged;
} peer;

/* A reply to a forwarded request, kept for a resend (fwd_replies.c). */
#define FWD_KEEP_MAX 1024
#define FWD_KEEP_MS 5000
#define FWD_KEEP_TEXT 4096
typedef struct fwd_kept {
    uint64_t to, reqid, at;
    char *text; /* NULL: slot free */
    size_t len;
    int sent; /* queued on a link at least once */
} fwd_kept;

typedef struct known { /* id -> meta learned from a HELLO */
    uint64_t id;
    char meta[RAFT_META_MAX];
} known;

typedef struct inconn { /* an inbound peer connection on peer.sock */
    int fd;
    frame_reader fr;
    int hello;
    uint64_t from;
    uint64_t since;
    int dead;
    uint64_t removed_told; /* when we last told it it was removed (removal.c) */
} inconn;

struct pending;

/* Bytes queued for a socket (fcgi.c, http_front.c; util.c). */
typedef struct outbuf {
    char *p;
    size_t len, off, cap; /* p[off..len) not written yet */
} outbuf;
/* Room for n more bytes at p + len (the written part reclaimed first):
 * 0, or -1 out of memory. */
int outbuf_room(outbuf *b, size_t n);
/* Write what b holds to fd as far as it takes it; a buffer left empty
 * and larger than keep_max is freed. Bytes written, or -1 when the
 * socket is broken. */
ssize_t outbuf_flush(outbuf *b, int fd, size_t keep_max);

typedef struct client { /* a connection on raftd.sock */
    int fd;
    char *in;
    size_t in_len, in_cap;
    size_t scanned; /* in[0..scanned) holds no newline */
    char *out;
    size_t out_len, out_off, out_cap;
    struct pending *busy; /* its request in progress; see pending_detach */
    int eof, dead;
    int refused; /* told 403: input discarded until it goes */
    uint64_t since;
    uint64_t last;         /* last byte received */
    struct watcher *watch; /* a watch stream: no more requests (watch.c) */
    int rd_closed;         /* a watch's client closed its sending side */
    /* Not NULL: a FastCGI request (fcgi.c), whose answers go here, not to fd. */
    void (*sink)(struct client *c, const char *s, size_t n);
    /* Not NULL (with sink): a reply that is a tree goes here (consumed). */
    void (*sink_json)(struct client *c, json_t *reply);
} client;

enum op {
    OP_GET,
    OP_LIST,
    OP_SET,
    OP_DEL,
    OP_TXN,
    OP_JOIN,
    OP_REMOVE,
    OP_TRANSFER,
    OP_STATUS,
    OP_METRICS,
    OP_WATCH,
    OP_LEASE_GRANT,
    OP_LEASE_RENEW,
    OP_LEASE_REVOKE,
    OP_LEASE_GET
};

/* The life cycle of a pending request (pending.c has the table). */
enum pstate {
    PS_NEW,          /* parsed, not yet dispatched */
    PS_RETRY,        /* waits for a leader: dispatched again every tick */
    PS_WAIT_READ,    /* read: asked the core for a read index */
    PS_WAIT_READIDX, /* read: has its index, waits until applied that far */
    PS_WAIT_APPLY,   /* write proposed here (leader): waits for its entry to apply */
    PS_WAIT_FWD      /* write forwarded to the leader: waits for its answer */
};

typedef struct pending {
    uint64_t id;
    int state;
    int op;
    int stale;
    json_t *req;
    char *cmd; /* command JSON for set/del/txn */
    size_t cmd_len;
    uint64_t node; /* join/remove/transfer target */
    char meta[RAFT_META_MAX];
    uint64_t index, term;
    uint64_t deadline;
    int proposed;         /* its fate may be decided without us knowing */
    uint64_t proposed_us; /* when this node (as leader) proposed it */
    client *cl;           /* local origin (NULL when gone or remote) */
    int remote;
    uint64_t from, rreqid;           /* remote origin */
    uint64_t submitted;              /* lease_renew: when its ReadIndex round was asked */
    int blocking;                    /* get/list with "index": hold until a change */
    uint64_t wait_index, wait_until; /* its "index" M; when it answers anyway */
    int waiting;                     /* held in d->waiters (watch.c), not d->pending */
    int txn_new;                     /* a txn of the if/then/else form */
    struct pending *next, *prev;
} pending;

/* Metrics histograms keep per-bucket counts; the bounds are upper limits
 * (le), +Inf is the total count. */
#define HIST_MAX_BUCKETS 16
typedef struct hist {
    const double *le;
    size_t n;
    uint64_t b[HIST_MAX_BUCKETS];
    uint64_t count;
    double sum;
} hist;

/* Rate limits of log lines about floods (one line per window). */
typedef struct log_limit {
    uint64_t last;
    unsigned n, dropped;
} log_limit;

/* ------------------------------------------------- the state of the daemon */

struct raftd {
    /* options (options.c) */
    char name[KV_NAME_MAX + 1];
    char raddr[KV_ADDR_MAX + 1], haddr[KV_ADDR_MAX + 1];
    char meta[RAFT_META_MAX]; /* "NAME RADDR HADDR", ours */
    char dir[PATH_MAX];
    const char *connect; /* -peer-connect template */
    unsigned tick_ms, election_ticks;
    uint64_t snap_entries, snap_bytes, snap_trail;
    int verbose, bootstrap;
#ifdef KEYVAL_FAULT_MODES
    /* Test-only deliberate bugs for tests/fault/teeth.sh, never in a
     * normal build (make fault-modes): env KEYVAL_FAULT_MODE = ack-early
     * (answer a write when proposed), local-read (default reads without
     * ReadIndex), apply-uncommitted (apply entries as soon as they are
     * appended). */
    int fault_ack_early, fault_local_read, fault_apply_uncommitted;
#endif

    /* the node (boot.c) */
    char cluster[PEER_CLUSTER_ID_MAX + 1];
    uint64_t id;
    store *st;
    raft_t *r;
    size_t max_entry; /* the core's max_entry_bytes */
    raft_config applied_conf;
    int client_lfd, peer_lfd, pid_fd;
    char client_path[PATH_MAX], peer_path[PATH_MAX], pid_path[PATH_MAX];
    int fcgi_lfd; /* fcgi.sock (fcgi.c), -1 none */
    char fcgi_path[PATH_MAX];
    struct fconn *fconns;
    size_t n_fconns;
    uint64_t m_fcgi_requests;
    int http_lfd;            /* -http-fd: the HTTP port (http_front.c), -1 none */
    char http_back[108];     /* -http-back: lighttpd's UNIX socket behind it */
    unsigned http_conns_max; /* -http-conns */
    struct hconn *hconns;
    unsigned n_hconns;
    int http_accepting, http_again;
    char http_date[48];
    long long http_date_t;
    uint64_t m_http_requests, m_http_passed;
    uint64_t m_reads;      /* get and list requests accepted (any level) */
    char notify_path[108]; /* $NOTIFY_SOCKET, "" none */
    int cleaned;
    loop loop;

    /* snapshots (snapshot.c) */
    uint64_t snap_index, snap_term;
    uint64_t snap_appended_base; /* core's appended_bytes at the last compaction */
    uint64_t compact_goal;       /* log rows <= this still to delete (0 none) */
    store_snap_writer *snapw;    /* snapshot file being written, or NULL */
    int snap_wanted;             /* a follower needs the snapshot file */
    uint64_t snap_served_ms;     /* when a chunk of it was last sent */
    uint64_t snapw_index, snapw_term;
    uint8_t chunk_buf[RAFT_SNAP_CHUNK];

    /* peers (peer_out.c, peer_in.c) */
    peer peers[MAX_PEERS];
    known known[MAX_KNOWN];
    fwd_kept fwd_kept[FWD_KEEP_MAX]; /* fwd_replies.c */
    unsigned fwd_kept_next;
    inconn *inconns[MAX_INBOUND + 16]; /* + room for the dead of one turn */
    size_t n_inconns;
    uint8_t *inbound_buf; /* INBOUND_READ_BYTES, for reads */

    /* clients and requests (client.c, pending.c) */
    client *clients[MAX_CLIENTS + 64]; /* + room for the dead of one turn */
    size_t n_clients;
    size_t max_clients; /* lowered to fit RLIMIT_NOFILE */
    size_t client_bufs; /* sum of the clients' in_cap */
    pending *pending;
    uint64_t next_id;

    /* the loop turn (run.c) */
    uint64_t next_tick;
    uint64_t last_meta_fix, last_slow_log;
    int last_role;
    uint64_t last_leader, counted_leader, counted_term;
    uint64_t link_leader; /* the last leader known (link_health.c) */
    log_limit lim_stranger, lim_hello, lim_refusal, lim_inbound_full;

    /* removal (removal.c): this node is not in the cluster any more */
    int removed;
    char removed_why[256];
    /* coordination (watch.c, leases.c; docs/coordination.md) */
    struct watcher *watchers;     /* watch streams */
    pending *waiters;             /* blocking queries held */
    size_t n_watchers, n_waiters; /* together at most max_watchers */
    unsigned max_watchers;        /* -max-watchers */
    uint64_t history_keep;        /* -watch-history */
    uint64_t seen_seq;            /* change rows handed out to watchers */
    uint64_t waiters_due;         /* earliest wait_until of the waiters */
    struct lease_table *leases;   /* the leader's deadlines (lib/lease.c) */
    uint64_t lease_next;          /* cached lease_next_expiry() */
    int lease_dirty;              /* the table changed: recompute it */
    uint64_t m_expiries_proposed, m_watchers_cut, m_wakeups;

    /* counters, in status and metrics (status.c) */
    uint64_t fsyncs, entries_persisted, lazy_commits;
    hist h_commit, h_fsync, h_batch;
    uint64_t m_proposals, m_forwarded, m_leader_changes, m_snaps_taken, m_snap_files,
        m_snaps_installed, m_clients_accepted, m_outcome_unknown, m_log_loads, m_log_loaded;
};

/* ------------------------------------------------------------- modules */

/* util.c */
/* "raftd: NAME: text" on stderr; vlog only with -v. */
void logf_(struct raftd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define vlog(d, ...) \
    do { \
        if ((d)->verbose) \
            logf_(d, __VA_ARGS__); \
    } while (0)
/* "raftd: text", cleanup, exit 1. */
void fatal(struct raftd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void store_fatal(struct raftd *d, const char *what);
uint64_t now_ms(void);
uint64_t now_us(void);
int set_nonblock(int fd);
const char *dump_json(json_t *v, char *buf, size_t cap, size_t *len, char **heap);
json_t *err_reply(int code, const char *msg);
void path_in_dir(struct raftd *d, char *buf, size_t cap, const char *name);
void node_name(struct raftd *d, uint64_t id, char *buf, size_t cap);
const raft_node *member_by_name(const raft_config *c, const char *name);
int socket_peer_allowed(int fd, const char *sockpath, uid_t *uid, gid_t *gid);
void log_refusal(struct raftd *d, const char *sockname, uid_t uid, gid_t gid);

/* removal.c */
void removal_boot(struct raftd *d);
void removal_set(struct raftd *d, const char *why);
void removal_heard_leader(struct raftd *d, const raft_msg *m);
void removal_notice(struct raftd *d, uint64_t from, uint64_t node, uint64_t term);
void removal_tell(struct raftd *d, inconn *c, const raft_msg *m);
void removal_check_conf(struct raftd *d, uint64_t index);

/* options.c */
void options_defaults(struct raftd *d);
void options_parse(struct raftd *d, int argc, char **argv);

/* boot.c */
void notify(struct raftd *d, const char *state);
void boot(struct raftd *d);
/* A listening UNIX socket at path (replacing a stale one), mode; fatal on error. */
int listen_unix(struct raftd *d, const char *path, mode_t mode);
void cleanup(struct raftd *d);

/* run.c */
void run_signals(void);
void run(struct raftd *d);

/* peer_out.c */
peer *peer_by_id(struct raftd *d, uint64_t id);
int peer_ready(peer *p);
void known_set(struct raftd *d, uint64_t id, const char *meta);
void peers_reconcile(struct raftd *d);
void peers_reap(struct raftd *d, uint64_t now);
void peers_timers(struct raftd *d, uint64_t now);
void send_msg(struct raftd *d, raft_msg *m);
int send_fwd(struct raftd *d, uint64_t to, int kind, uint64_t reqid, const char *json, size_t len);
/* The id of a node named name that is connected to us now, else 0. */
uint64_t known_live_by_name(struct raftd *d, const char *name);
/* A PEER_REMOVED notice to `to` (removal.c). 0 queued, -1 no link. */
int send_removed(struct raftd *d, uint64_t to, uint64_t term);
void peers_flush(struct raftd *d);
void peers_watch(struct raftd *d);
void peers_stop(struct raftd *d);

/* fwd_replies.c */
void fwd_reply_send(struct raftd *d, uint64_t to, uint64_t reqid, const char *s, size_t n);
void fwd_replies_relink(struct raftd *d, uint64_t to);
void fwd_replies_timers(struct raftd *d, uint64_t now);
void fwd_replies_free(struct raftd *d);

/* link_stderr.c */
int link_stderr_open(struct raftd *d, peer *p);
void link_stderr_close(struct raftd *d, peer *p);
void link_stderr_timers(struct raftd *d, uint64_t now);

/* link_health.c */
void link_heard(struct raftd *d, uint64_t id);
void link_hello(struct raftd *d, uint64_t id);
void links_check(struct raftd *d, uint64_t now);

/* peer_in.c */
void inconn_read(struct raftd *d, inconn *c);
void peer_listen_event(loop *l, int fd, void *data, int events);
void inconns_timers(struct raftd *d, uint64_t now);
void inconn_free(struct raftd *d, inconn *c);
void inconns_sweep(struct raftd *d);

/* client.c */
void client_send_text(client *c, const char *s, size_t n);
/* One request line of c, as if c had sent it on raftd.sock. */
void client_line(struct raftd *d, client *c, const char *line, size_t l);
void client_send_json(client *c, json_t *reply);
void client_pump(struct raftd *d, client *c);
void client_read(struct raftd *d, client *c);
void client_free(struct raftd *d, client *c);
void client_listen_event(loop *l, int fd, void *data, int events);
void clients_pump(struct raftd *d);
void clients_sweep(struct raftd *d);

/* request.c */
json_t *prepare(struct raftd *d, pending *p);
void start_request(struct raftd *d, json_t *req, client *cl, int remote, uint64_t from,
                   uint64_t rreqid);
int start_fast_set(struct raftd *d, client *cl, const char *line, size_t len);
json_t *pending_req(pending *p);
int is_write(int op);

/* pending.c */
pending *pending_find(struct raftd *d, uint64_t id);
void pending_detach_client(struct raftd *d, client *c);
void finish(struct raftd *d, pending *p, json_t *reply);
void finish_ok_index(struct raftd *d, pending *p, uint64_t index);
void dispatch(struct raftd *d, pending *p);
pending *pending_new(struct raftd *d, json_t *req, client *cl, int remote, uint64_t from,
                     uint64_t rreqid);
void pending_timers(struct raftd *d, uint64_t now);
void check_reads(struct raftd *d);
void pending_read_index(struct raftd *d, uint64_t ctx, uint64_t index);
void pending_read_failed(struct raftd *d, uint64_t ctx);
void pending_shutdown(struct raftd *d);

/* ready.c */
void process_ready(struct raftd *d);

/* snapshot.c */
void snap_path(struct raftd *d, char *buf, size_t cap, uint64_t index);
void fsync_dir(struct raftd *d);
void write_chunk(struct raftd *d, const raft_chunk *ch);
void remove_old_snaps(struct raftd *d, uint64_t keep);
void snapshot_abort(struct raftd *d);
uint64_t snapshot_every(struct raftd *d);
void maybe_snapshot(struct raftd *d);
int snapshot_chunk_read(struct raftd *d, raft_msg *m);

/* status.c */
void status_init(struct raftd *d);
void hist_observe(hist *h, double v);
json_t *status_json(struct raftd *d);
json_t *metrics_json(struct raftd *d);

/* coord_parse.c: the parse functions of the coordination ops and options
 * (request.c's table calls them) */
json_t *parse_watch(struct raftd *d, pending *p, json_t **cmd);
json_t *parse_lease_grant(struct raftd *d, pending *p, json_t **cmd);
json_t *parse_lease_id_op(struct raftd *d, pending *p, json_t **cmd);
json_t *parse_txn_new(struct raftd *d, pending *p, json_t **cmd);
json_t *parse_blocking(pending *p);
json_t *parse_set_lease(pending *p, json_t *kv, json_t **cmd);
uint64_t parse_lease_value(json_t *v);

/* watch.c: blocking queries and watch streams */
int watch_hold(struct raftd *d, pending *p);
void watch_start(struct raftd *d, pending *p);
void watch_applied(struct raftd *d, int installed);
void watch_drained(struct raftd *d, client *c);
void watch_client_gone(struct raftd *d, client *c);
void watch_timers(struct raftd *d, uint64_t now);
void watch_init(struct raftd *d);
void watch_shutdown(struct raftd *d);

/* leases.c: lib/lease.c's table driven by the role, the applied entries
 * and the loop's timer; the lease ops' answers */
void leases_init(struct raftd *d);
void leases_sync(struct raftd *d);
void leases_applied(struct raftd *d, const raft_ready *rd, const store_result *res);
int leases_answer(struct raftd *d, pending *p, const store_result *r, uint64_t index);
int leases_leader_op(struct raftd *d, pending *p);
json_t *leases_read_done(struct raftd *d, pending *p);
int leases_timeout(struct raftd *d, uint64_t now, int timeout);
void leases_timers(struct raftd *d, uint64_t now);
void leases_free(struct raftd *d);
size_t leases_held(const struct raftd *d); /* 0 unless leading */

/* client.c (streams) */
void client_flush(client *c);
int client_stream_line(client *c, const char *s, size_t n);
size_t client_unsent(const client *c);

/* pending.c */
json_t *do_read(struct raftd *d, pending *p);
void pending_link(struct raftd *d, pending *p);
void pending_unlink(struct raftd *d, pending *p);

#endif
