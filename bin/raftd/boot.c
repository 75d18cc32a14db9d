/*
 * boot.c - raftd's start-up and its undoing: the pidfile lock, limits,
 * the store and the node's name, id and cluster, the Raft core restored
 * or bootstrapped, the two UNIX sockets, the loop; and cleanup at exit.
 */
#include "raftd.h"
#include "fcgi.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int listen_unix(struct raftd *d, const char *path, mode_t mode)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        fatal(d, "%s: socket path too long (max %zu bytes)", path, sizeof sa.sun_path - 1);
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fatal(d, "socket: %s", strerror(errno));
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0)
        fatal(d, "bind %s: %s", path, strerror(errno));
    if (chmod(path, mode) < 0)
        fatal(d, "chmod %s: %s", path, strerror(errno));
    if (listen(fd, 512) < 0)
        fatal(d, "listen %s: %s", path, strerror(errno));
    return fd;
}

/* Tell a service manager (systemd Type=notify, through keyval) how we are:
 * one datagram to $NOTIFY_SOCKET when it is set (boot_notify_init). */
void notify(struct raftd *d, const char *state)
{
    if (!d->notify_path[0])
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t l = strlen(d->notify_path);
    memcpy(sa.sun_path, d->notify_path, l);
    if (d->notify_path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l)) < 0)
        logf_(d, "notify %s: %s", d->notify_path, strerror(errno));
    close(fd);
}

static void notify_init(struct raftd *d)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (e && (e[0] == '/' || e[0] == '@') && strlen(e) < sizeof d->notify_path)
        snprintf(d->notify_path, sizeof d->notify_path, "%s", e);
    unsetenv("NOTIFY_SOCKET"); /* not for our link children */
}

static void random_hex(struct raftd *d, char *out, size_t nbytes)
{
    uint8_t b[32];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, nbytes) != (ssize_t)nbytes)
        fatal(d, "/dev/urandom: %s", strerror(errno));
    close(fd);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void open_pidfile(struct raftd *d)
{
    path_in_dir(d, d->pid_path, sizeof d->pid_path, "raftd.pid");
    int fd = open(d->pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fatal(d, "%s: %s", d->pid_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        fprintf(stderr, "%s: %s: another raftd is running on %s\n", prog, d->pid_path, d->dir);
        exit(1);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        fatal(d, "%s: write: %s", d->pid_path, strerror(errno));
    d->pid_fd = fd;
}

/* Room for every client, peer connection, link pipe and SQLite; fewer
 * clients when the descriptor limit cannot be raised. Returns the limit. */
static int boot_limits(struct raftd *d)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 65536;
    rlim_t want = MAX_CLIENTS + 64 + MAX_INBOUND + 16 + MAX_PEERS + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        rlim_t other = 64 + MAX_INBOUND + 16 + MAX_PEERS + 64;
        d->max_clients = rl.rlim_cur > other + 16 ? (size_t)(rl.rlim_cur - other) : 16;
        logf_(d, "file descriptor limit %llu: at most %zu clients", (unsigned long long)rl.rlim_cur,
              d->max_clients);
    }
    return rl.rlim_cur > 1u << 20 ? 1 << 20 : (int)rl.rlim_cur;
}

static void boot_fault_modes(struct raftd *d)
{
#ifdef KEYVAL_FAULT_MODES
    const char *m = getenv("KEYVAL_FAULT_MODE");
    if (m && *m) {
        d->fault_ack_early = !strcmp(m, "ack-early");
        d->fault_local_read = !strcmp(m, "local-read");
        d->fault_apply_uncommitted = !strcmp(m, "apply-uncommitted");
        if (!d->fault_ack_early && !d->fault_local_read && !d->fault_apply_uncommitted)
            fatal(d, "unknown KEYVAL_FAULT_MODE %s", m);
        logf_(d, "DELIBERATELY BROKEN: fault mode %s", m);
    }
#else
    (void)d;
#endif
}

/* Open DATADIR/raft.db, check it is this node's, learn the cluster id and
 * the node's Raft id, and load what it holds into *ld. 1 when fresh. */
static int boot_store(struct raftd *d, store_loaded *ld)
{
    char dbpath[PATH_MAX];
    path_in_dir(d, dbpath, sizeof dbpath, "raft.db");
    d->st = store_open(dbpath);
    if (!d->st)
        fatal(d, "open database: %s", store_open_error());
    char stored[128];
    int rc = store_meta_get(d->st, "name", stored, sizeof stored);
    if (rc < 0)
        store_fatal(d, "read node name");
    if (rc == 1 && strcmp(stored, d->name) != 0)
        fatal(d, "%s belongs to node '%s', not '%s'", d->dir, stored, d->name);
    if (store_meta_get(d->st, "cluster", d->cluster, sizeof d->cluster) < 0)
        store_fatal(d, "read cluster id");
    if (store_load(d->st, ld) < 0)
        store_fatal(d, "load");
    int fresh = ld->n_entries == 0 && !ld->has_snap && ld->hs.term == 0 && ld->applied == 0;

    /* The Raft id: of this incarnation of the data directory (made now
     * when the directory is new), or the name's hash for a database of a
     * version before incarnations (lib/nodeid.h). */
    char inc[NODEID_HEX_LEN + 1], why[300];
    int legacy = 0;
    if (nodeid_load(d->st, d->name, fresh, &d->id, inc, sizeof inc, &legacy, why, sizeof why) < 0)
        fatal(d, "%s", why);
    if (legacy)
        logf_(d,
              "node id %016llx (the name's hash: a data directory made before "
              "incarnations)",
              (unsigned long long)d->id);
    else
        vlog(d, "node id %016llx (incarnation %s)", (unsigned long long)d->id, inc);
    if (rc == 0 && store_meta_set(d->st, "name", d->name) < 0)
        store_fatal(d, "save node name");
    return fresh;
}

static void boot_core(struct raftd *d)
{
    raft_options o;
    raft_options_default(&o);
    o.id = d->id;
    uint8_t seed[8];
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, seed, 8) != 8)
        fatal(d, "/dev/urandom: %s", strerror(errno));
    close(ufd);
    memcpy(&o.seed, seed, 8);
    /* Request ids from a random start (48 bits, so they never wrap): a
     * leader's kept reply to a request of our previous run (fwd_replies.c)
     * cannot match one of ours. */
    d->next_id = (o.seed >> 16) | 1;
    o.election_ticks = d->election_ticks;
    o.snapshot_trail = d->snap_trail;
    o.snapshot_trail_bytes = d->snap_bytes ? (size_t)SNAP_TRAIL_SHARE(d->snap_bytes) : 0;
    /* at most -snapshot-bytes of log in memory, also while compaction
     * waits for a follower's transfer: older applied entries are read
     * back from raft.db when a follower needs them (ready_loads) */
    o.log_mem_bytes = (size_t)d->snap_bytes;
    d->max_entry = o.max_entry_bytes;
    d->r = raft_new(&o);
    if (!d->r)
        fatal(d, "cannot create the Raft core (bad options?)");
}

/* The core as the store left it: hard state, snapshot, log; and the
 * configuration as of the applied index. */
static void boot_restore(struct raftd *d, store_loaded *ld)
{
    int rc = raft_restore(d->r, &ld->hs, ld->has_snap ? &ld->snap : NULL, ld->entries,
                          ld->n_entries, ld->applied);
    if (rc != RAFT_OK)
        fatal(d, "restore Raft state from %s/raft.db: %s", d->dir, raft_strerror(rc));
    if (ld->has_snap) {
        d->applied_conf = ld->snap.conf;
        d->snap_index = ld->snap.index;
        d->snap_term = ld->snap.term;
    }
    for (size_t i = 0; i < ld->n_entries; i++) {
        const raft_entry *e = &ld->entries[i];
        if (e->index <= ld->applied && e->type == RAFT_ENTRY_CONFIG) {
            raft_config c;
            if (raft_config_decode(&c, e->data, e->len) == RAFT_OK)
                d->applied_conf = c;
        }
    }
    logf_(d, "restarted: term %llu, applied %llu, %zu log entries, snapshot %llu",
          (unsigned long long)ld->hs.term, (unsigned long long)ld->applied, ld->n_entries,
          (unsigned long long)d->snap_index);
}

/* A new cluster of this one node, with a new cluster id. */
static void boot_bootstrap(struct raftd *d)
{
    random_hex(d, d->cluster, 16);
    if (store_meta_set(d->st, "cluster", d->cluster) < 0)
        store_fatal(d, "save cluster id");
    raft_config c;
    memset(&c, 0, sizeof c);
    c.n = 1;
    c.nodes[0].id = d->id;
    c.nodes[0].voter = 1;
    snprintf(c.nodes[0].meta, sizeof c.nodes[0].meta, "%s", d->meta);
    int rc = raft_bootstrap(d->r, &c);
    if (rc != RAFT_OK)
        fatal(d, "bootstrap: %s", raft_strerror(rc));
    logf_(d, "bootstrapped new cluster %s", d->cluster);
}

/* The loop and the two listening sockets in it. */
static void boot_sockets(struct raftd *d, int max_fds)
{
    if (loop_init(&d->loop, max_fds, d) < 0)
        fatal(d, "epoll: %s", strerror(errno));
    path_in_dir(d, d->client_path, sizeof d->client_path, "raftd.sock");
    path_in_dir(d, d->peer_path, sizeof d->peer_path, "peer.sock");
    d->peer_lfd = listen_unix(d, d->peer_path, 0600);
    d->client_lfd = listen_unix(d, d->client_path, 0660);
    if (loop_add(&d->loop, d->client_lfd, LOOP_READ, client_listen_event, NULL) < 0 ||
        loop_add(&d->loop, d->peer_lfd, LOOP_READ, peer_listen_event, NULL) < 0)
        fatal(d, "epoll: %s", strerror(errno));
}

/* Everything up to serving: on return raftd.sock and peer.sock listen. */
void boot(struct raftd *d)
{
    if (mkdir(d->dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: mkdir %s: %s\n", prog, d->dir, strerror(errno));
        exit(1);
    }
    notify_init(d);
    open_pidfile(d);
    int max_fds = boot_limits(d);
    boot_fault_modes(d);
    status_init(d);
    store_loaded ld;
    int fresh = boot_store(d, &ld);
    boot_core(d);
    if (!fresh) {
        boot_restore(d, &ld);
        removal_boot(d);
        if (!d->removed)
            removal_check_conf(d, ld.applied);
    } else if (d->bootstrap)
        boot_bootstrap(d);
    else
        logf_(d, "new node: waiting to be added to a cluster");
    store_loaded_free(&ld);
    remove_old_snaps(d, d->snap_index);
    char inc[PATH_MAX];
    path_in_dir(d, inc, sizeof inc, "snap-incoming");
    unlink(inc);
    boot_sockets(d, max_fds);
    fcgi_boot(d);
    http_front_boot(d);

    process_ready(d);
    peers_reconcile(d);
    logf_(d, "listening on %s (raft %s, http %s)", d->client_path, d->raddr, d->haddr);
    char st[300];
    snprintf(st, sizeof st, "READY=1\nSTATUS=raftd %s listening on raftd.sock\n", d->name);
    notify(d, st);
}

/* Undo boot, once (fatal errors call it too): answer what waits, stop the
 * link children, close and unlink the sockets, close the store, drop the
 * pidfile. */
void cleanup(struct raftd *d)
{
    if (d->cleaned)
        return;
    d->cleaned = 1;
    pending_shutdown(d);
    peers_stop(d);
    fwd_replies_free(d);
    for (size_t i = 0; i < d->n_clients; i++)
        client_free(d, d->clients[i]);
    d->n_clients = 0;
    leases_free(d);
    for (size_t i = 0; i < d->n_inconns; i++)
        inconn_free(d, d->inconns[i]);
    d->n_inconns = 0;
    http_front_close_all(d);
    fcgi_close_all(d);
    if (d->client_lfd >= 0) {
        loop_del(&d->loop, d->client_lfd);
        close(d->client_lfd);
        unlink(d->client_path);
    }
    if (d->peer_lfd >= 0) {
        loop_del(&d->loop, d->peer_lfd);
        close(d->peer_lfd);
        unlink(d->peer_path);
    }
    if (d->r)
        raft_free(d->r);
    d->r = NULL;
    if (d->snapw)
        store_snapshot_abort(d->snapw);
    d->snapw = NULL;
    if (d->st)
        store_close(d->st);
    d->st = NULL;
    if (d->pid_fd >= 0) {
        unlink(d->pid_path);
        close(d->pid_fd);
    }
    loop_free(&d->loop);
    free(d->inbound_buf);
    d->inbound_buf = NULL;
}
