/*
 * peer_out.c - outbound peer links: one child per peer running the
 * -peer-connect command (socat), fed through a pipe; spawning, restart
 * with backoff, reaping, the set of links matching the configuration, and
 * queueing Raft messages and forwarded requests on them.
 */
#include "raftd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static peer *peer_find(struct raftd *d, uint64_t id)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (d->peers[i].used && d->peers[i].id == id)
            return &d->peers[i];
    return NULL;
}

static void peer_close_pipe(struct raftd *d, peer *p)
{
    if (p->wfd >= 0) {
        loop_del(&d->loop, p->wfd);
        close(p->wfd);
    }
    p->wfd = -1;
    p->out.len = 0;
    p->off = 0;
}

static void peer_kill(struct raftd *d, peer *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGTERM);
    peer_close_pipe(d, p);
}

static void peer_free(struct raftd *d, peer *p)
{
    peer_kill(d, p);
    wbuf_free(&p->out);
    memset(p, 0, sizeof *p);
    p->wfd = -1;
}

static peer *peer_add(struct raftd *d, uint64_t id, const char *meta)
{
    peer *p = NULL;
    for (int i = 0; i < MAX_PEERS && !p; i++)
        if (!d->peers[i].used)
            p = &d->peers[i];
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->used = 1;
    p->id = id;
    p->wfd = -1;
    p->backoff = 100;
    snprintf(p->meta, sizeof p->meta, "%s", meta);
    char h[KV_ADDR_MAX + 1];
    kv_meta_split(meta, p->name, sizeof p->name, p->raddr, sizeof p->raddr, h, sizeof h);
    return p;
}

#define LINK_ARGS_MAX 32
#define LINK_WORD_MAX 512

/* The -peer-connect template split on spaces, %a replaced by raddr, as
 * argv (words holds the text). Returns argc. */
static int link_argv(const char *tmpl, const char *raddr, size_t raddr_cap,
                     char *argv[LINK_ARGS_MAX + 1], char words[][LINK_WORD_MAX])
{
    int argc = 0;
    const char *s = tmpl;
    while (*s && argc < LINK_ARGS_MAX) {
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
                src = raddr;
                sl = strnlen(raddr, raddr_cap - 1);
                s += 2;
            } else {
                s++;
            }
            for (size_t k = 0; k < sl && o + 1 < LINK_WORD_MAX; k++)
                w[o++] = src[k];
        }
        words[argc][o] = 0;
        argv[argc] = words[argc];
        argc++;
    }
    argv[argc] = NULL;
    return argc;
}

/* Start the link child for p. */
static void peer_spawn(struct raftd *d, peer *p, uint64_t now)
{
    char *argv[LINK_ARGS_MAX + 1];
    char words[LINK_ARGS_MAX + 1][LINK_WORD_MAX];
    int argc = link_argv(d->connect, p->raddr, sizeof p->raddr, argv, words);
    p->restart_at = now + p->backoff;
    if (argc == 0 || !p->raddr[0])
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        logf_(d, "peer link to %s: pipe: %s", p->name, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        logf_(d, "peer link to %s: fork: %s", p->name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(fds[0], 0);
        if (nul >= 0) {
            dup2(nul, 1);
            if (!d->verbose)
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
    h.from = d->id;
    snprintf(h.cluster, sizeof h.cluster, "%s", d->cluster);
    snprintf(h.meta, sizeof h.meta, "%s", d->meta);
    if (codec_hello_frame(&p->out, &h) < 0)
        logf_(d, "peer link to %s: cannot encode hello", p->name);
    vlog(d, "peer link to %s: started pid %d", p->name, (int)pid);
}

static void peer_flush(struct raftd *d, peer *p)
{
    while (p->wfd >= 0 && p->off < p->out.len) {
        ssize_t n = write(p->wfd, p->out.p + p->off, p->out.len - p->off);
        if (n > 0) {
            p->off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        vlog(d, "peer link to %s: write: %s", p->name, n < 0 ? strerror(errno) : "closed");
        peer_kill(d, p); /* reaped later; restart with backoff */
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
int peer_ready(peer *p)
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

static const char *known_meta(struct raftd *d, uint64_t id)
{
    for (int i = 0; i < MAX_KNOWN; i++)
        if (d->known[i].id == id && id)
            return d->known[i].meta;
    return NULL;
}

void known_set(struct raftd *d, uint64_t id, const char *meta)
{
    int slot = -1;
    for (int i = 0; i < MAX_KNOWN; i++) {
        if (d->known[i].id == id) {
            slot = i;
            break;
        }
        if (slot < 0 && d->known[i].id == 0)
            slot = i;
    }
    if (slot < 0)
        slot = (int)(id % MAX_KNOWN);
    d->known[slot].id = id;
    snprintf(d->known[slot].meta, sizeof d->known[slot].meta, "%s", meta);
}

/* Is there an open, greeted inbound connection from id? */
static int inbound_from(struct raftd *d, uint64_t id)
{
    for (size_t i = 0; i < d->n_inconns; i++)
        if (d->inconns[i]->hello && !d->inconns[i]->dead && d->inconns[i]->from == id)
            return 1;
    return 0;
}

uint64_t known_live_by_name(struct raftd *d, const char *name)
{
    for (int i = 0; i < MAX_KNOWN; i++) {
        char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
        if (!d->known[i].id || !inbound_from(d, d->known[i].id))
            continue;
        kv_meta_split(d->known[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        if (strcmp(n, name) == 0)
            return d->known[i].id;
    }
    return 0;
}

/* Make the set of links match the configuration: one per other member;
 * also one to each node that is talking to us now although it is not in
 * our configuration (ours may be stale: it may be a leader we have not
 * heard of yet), and, while this node is not a member itself (a joiner),
 * to each node that contacted us. */
void peers_reconcile(struct raftd *d)
{
    const raft_config *c = raft_config_get(d->r);
    int self_member = c && raft_config_find(c, d->id) != NULL;
    uint64_t want_id[MAX_PEERS];
    const char *want_meta[MAX_PEERS];
    int nw = 0;
    for (uint32_t i = 0; c && i < c->n && nw < MAX_PEERS; i++) {
        if (c->nodes[i].id == d->id)
            continue;
        want_id[nw] = c->nodes[i].id;
        want_meta[nw++] = c->nodes[i].meta;
    }
    {
        for (int i = 0; i < MAX_KNOWN && nw < MAX_PEERS; i++) {
            if (!d->known[i].id || d->known[i].id == d->id)
                continue;
            if (self_member && !inbound_from(d, d->known[i].id))
                continue;
            int dup = 0;
            for (int j = 0; j < nw; j++)
                dup |= want_id[j] == d->known[i].id;
            if (!dup) {
                want_id[nw] = d->known[i].id;
                want_meta[nw++] = d->known[i].meta;
            }
        }
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &d->peers[i];
        if (!p->used)
            continue;
        int keep = 0;
        for (int j = 0; j < nw; j++) {
            if (want_id[j] != p->id)
                continue;
            char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
            kv_meta_split(want_meta[j], n, sizeof n, r, sizeof r, h, sizeof h);
            keep = strcmp(r, p->raddr) == 0;
            if (keep)
                snprintf(p->meta, sizeof p->meta, "%s", want_meta[j]);
        }
        if (!keep) {
            logf_(d, "peer link to %s closed (no longer a member or address changed)", p->name);
            peer_free(d, p);
        }
    }
    for (int j = 0; j < nw; j++)
        if (!peer_find(d, want_id[j]) && !peer_add(d, want_id[j], want_meta[j]))
            logf_(d, "too many peer links");
}

void peers_reap(struct raftd *d, uint64_t now)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < MAX_PEERS; i++) {
            peer *p = &d->peers[i];
            if (!p->used || p->pid != pid)
                continue;
            peer_close_pipe(d, p);
            p->pid = 0;
            char why[64];
            if (WIFEXITED(st))
                snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(st));
            else
                snprintf(why, sizeof why, "killed by signal %d",
                         WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            if (p->announced_up || WIFSIGNALED(st)) {
                logf_(d, "peer link to %s down (%s)", p->name, why);
            } else if (!p->failing) {
                logf_(d, "peer link to %s down: cannot reach %s (%s); retrying", p->name, p->raddr,
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

void peers_timers(struct raftd *d, uint64_t now)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &d->peers[i];
        if (!p->used)
            continue;
        if (p->pid == 0 && now >= p->restart_at)
            peer_spawn(d, p, now);
        else if (p->pid > 0 && !p->announced_up && now - p->started >= 1000) {
            p->announced_up = 1;
            p->failing = 0;
            logf_(d, "peer link to %s up (%s)", p->name, p->raddr);
        }
    }
}

/* Send a raft message; drops it when there is no link or no room. */
void send_msg(struct raftd *d, raft_msg *m)
{
    peer *p = peer_find(d, m->to);
    if (!p) {
        /* Links to non-members: see peers_reconcile. */
        const raft_config *c = raft_config_get(d->r);
        const char *meta = known_meta(d, m->to);
        if (!meta || (c && raft_config_find(c, d->id) && !inbound_from(d, m->to)))
            return;
        p = peer_add(d, m->to, meta);
        if (!p)
            return;
        peer_spawn(d, p, now_ms());
    }
    if (!peer_ready(p))
        return;
    if (m->type == RAFT_MSG_SNAP && !m->data) {
        if (snapshot_chunk_read(d, m) < 0)
            return;
        int rc = codec_msg_frame(&p->out, m);
        m->data = NULL;
        m->len = 0;
        if (rc < 0)
            logf_(d, "cannot encode snapshot chunk for %s", p->name);
    } else if (codec_msg_frame(&p->out, m) < 0) {
        logf_(d, "cannot encode message for %s", p->name);
    }
    /* Written by peers_flush: all frames of a ready go in one write. */
}

int send_fwd(struct raftd *d, uint64_t to, int kind, uint64_t reqid, const char *json, size_t len)
{
    peer *p = peer_find(d, to);
    if (!peer_ready(p))
        return -1;
    if (codec_fwd_frame(&p->out, kind, reqid, d->id, json, len) < 0)
        return -1;
    return 0; /* written by peers_flush */
}

int send_removed(struct raftd *d, uint64_t to, uint64_t term)
{
    peer *p = peer_find(d, to);
    if (!peer_ready(p) || codec_removed_frame(&p->out, to, term) < 0)
        return -1;
    return 0; /* written by peers_flush */
}

/* Write every link's queued frames: one write per link for what a loop
 * turn (or a ready) produced, instead of one per message. */
void peers_flush(struct raftd *d)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (d->peers[i].used && d->peers[i].wfd >= 0 && d->peers[i].off < d->peers[i].out.len)
            peer_flush(d, &d->peers[i]);
}

/* The loop's callback for a link's pipe, registered while output waits. */
static void peer_event(loop *l, int fd, void *data, int events)
{
    struct raftd *d = l->owner;
    (void)fd;
    if (events & LOOP_HUP)
        peer_kill(d, data);
    else
        peer_flush(d, data);
}

/* Wait for room in each link's pipe that has output queued, and for
 * nothing on the others (their children are reaped, not polled). */
void peers_watch(struct raftd *d)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &d->peers[i];
        if (!p->used || p->wfd < 0)
            continue;
        int queued = p->off < p->out.len;
        int watched = loop_has(&d->loop, p->wfd);
        if (queued && !watched) {
            if (loop_add(&d->loop, p->wfd, LOOP_WRITE, peer_event, p) < 0)
                fatal(d, "epoll: %s", strerror(errno));
        } else if (!queued && watched) {
            loop_del(&d->loop, p->wfd);
        }
    }
}

/* At exit: SIGTERM to every link child, up to 1 s for them to go, then
 * SIGKILL; the links freed. */
void peers_stop(struct raftd *d)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (d->peers[i].used && d->peers[i].pid > 0)
            kill(d->peers[i].pid, SIGTERM);
    for (int t = 0; t < 50; t++) {
        int any = 0;
        for (int i = 0; i < MAX_PEERS; i++) {
            peer *p = &d->peers[i];
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
        peer *p = &d->peers[i];
        if (p->used && p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        if (p->used)
            peer_free(d, p);
    }
}
