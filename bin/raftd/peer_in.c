/*
 * peer_in.c - inbound peer connections on DATADIR/peer.sock (socat
 * forwards TCP there): accept, HELLO checks, Raft messages into the core,
 * forwarded requests and their replies. Frames are decoded only by
 * lib/codec.
 */
#include "raftd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void inconn_close(struct raftd *d, inconn *c, const char *why)
{
    if (why && !c->hello) {
        /* Strangers: one line per 10 s at most, whatever the flood. */
        log_limit *ll = &d->lim_stranger;
        ll->n++;
        if (!ll->last || now_ms() - ll->last >= 10000) {
            logf_(d, "closed %u inbound peer connection%s before or at HELLO (last: %s)", ll->n,
                  ll->n == 1 ? "" : "s", why);
            ll->last = now_ms();
            ll->n = 0;
        }
        c->dead = 1;
        return;
    }
    if (why) {
        char n[KV_NAME_MAX + 1] = "unknown";
        if (c->hello)
            node_name(d, c->from, n, sizeof n);
        logf_(d, "peer connection from %s closed: %s", n, why);
    }
    c->dead = 1;
}

/* A HELLO we refuse: worth a line each (a misconfigured node), but at most
 * 10 lines per 10 s. */
static void hello_reject(struct raftd *d, inconn *c, const char *why)
{
    log_limit *ll = &d->lim_hello;
    uint64_t now = now_ms();
    if (!ll->last || now - ll->last >= 10000) {
        if (ll->dropped)
            logf_(d, "(%u more refused HELLOs not shown)", ll->dropped);
        ll->last = now;
        ll->n = ll->dropped = 0;
    }
    if (ll->n++ < 10)
        logf_(d, "refused peer connection: %s", why);
    else
        ll->dropped++;
    c->dead = 1;
}

static int handle_hello(struct raftd *d, inconn *c, const uint8_t *pl, size_t len)
{
    peer_hello h;
    if (codec_hello_decode(&h, pl, len) < 0) {
        hello_reject(d, c, "bad hello (wrong magic or version?)");
        return -1;
    }
    if (h.from == d->id) {
        hello_reject(d, c, "hello from our own id");
        return -1;
    }
    const raft_config *conf = raft_config_get(d->r);
    int joiner = !conf || conf->n == 0;
    char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], hh[KV_ADDR_MAX + 1];
    kv_meta_split(h.meta, n, sizeof n, r, sizeof r, hh, sizeof hh);
    if (!kv_name_ok(n) || !kv_addr_ok(r)) {
        hello_reject(d, c, "hello with bad node meta");
        return -1;
    }
    if (d->cluster[0]) {
        if (strcmp(h.cluster, d->cluster) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s is in cluster '%s', we are in '%s'", n, h.cluster,
                     d->cluster);
            hello_reject(d, c, why);
            return -1;
        }
    } else {
        if (!joiner || !h.cluster[0]) {
            hello_reject(d, c, "hello without a cluster id");
            return -1;
        }
        snprintf(d->cluster, sizeof d->cluster, "%s", h.cluster);
        if (store_meta_set(d->st, "cluster", d->cluster) < 0)
            store_fatal(d, "save cluster id");
        logf_(d, "joined cluster %s (contacted by %s)", d->cluster, n);
    }
    /* A sender outside our configuration is still accepted when its
     * cluster id matches: our configuration may be stale (we were down
     * while it was added, and it may lead now); refusing it would leave us
     * behind for good. Removed nodes cannot disrupt: the core ignores vote
     * requests while it hears from a leader, and we never open links to
     * non-members while we are a member. */
    if (!joiner && !raft_config_find(conf, h.from))
        vlog(d, "accepting %s, not in our configuration (same cluster)", n);
    known_set(d, h.from, h.meta);
    c->hello = 1;
    c->from = h.from;
    vlog(d, "peer connection from %s", n);
    if (joiner)
        peers_reconcile(d);
    return 0;
}

static void handle_fwd_req(struct raftd *d, inconn *c, const uint8_t *pl, size_t len)
{
    uint64_t reqid, from;
    const char *js;
    size_t jl;
    if (codec_fwd_decode(pl, len, &reqid, &from, &js, &jl) < 0 || from != c->from) {
        inconn_close(d, c, "bad forwarded request");
        return;
    }
    json_error_t je;
    json_t *req = json_loadb(js, jl, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(req)) {
        json_decref(req);
        const char *e = "{\"code\":400,\"error\":\"malformed forwarded request\"}";
        send_fwd(d, from, PEER_FWD_RESP, reqid, e, strlen(e));
        return;
    }
    start_request(d, req, NULL, 1, from, reqid);
}

static void handle_fwd_resp(struct raftd *d, inconn *c, const uint8_t *pl, size_t len)
{
    uint64_t reqid;
    const char *js;
    size_t jl;
    if (codec_fwd_decode(pl, len, &reqid, NULL, &js, &jl) < 0) {
        inconn_close(d, c, "bad forwarded reply");
        return;
    }
    pending *p = pending_find(d, reqid);
    if (!p || p->state != PS_WAIT_FWD)
        return; /* late: we already answered */
    json_error_t je;
    json_t *rep = json_loadb(js, jl, JSON_ALLOW_NUL, &je);
    if (!json_is_object(rep) || !json_is_integer(json_object_get(rep, "code"))) {
        json_decref(rep);
        finish(d, p,
               json_pack("{s:i,s:s,s:s}", "code", 502, "error", "the leader sent a malformed reply",
                         "outcome", "unknown"));
        return;
    }
    if (json_is_true(json_object_get(rep, "notleader"))) {
        json_decref(rep);
        p->state = PS_RETRY; /* it was never proposed there */
        p->proposed = 0;
        return;
    }
    finish(d, p, rep);
}

/* A Raft message from the peer c: into the core. -1 when c is closed. */
static int handle_raft(struct raftd *d, inconn *c, const uint8_t *pl, size_t len)
{
    raft_msg m;
    if (codec_msg_decode(&m, pl, len) < 0) {
        inconn_close(d, c, "malformed raft message");
        return -1;
    }
    if (m.from != c->from) {
        codec_msg_free(&m);
        inconn_close(d, c, "raft message with a forged sender");
        return -1;
    }
    /* A node that is not in its own configuration (a new or wiped node)
     * has no vote to give: it may have forgotten one. */
    if (m.type == RAFT_MSG_VOTE || m.type == RAFT_MSG_PREVOTE) {
        const raft_config *cf = raft_config_get(d->r);
        if (!cf || !raft_config_find(cf, d->id)) {
            vlog(d, "ignoring a vote request: not a member yet");
            codec_msg_free(&m);
            return 0;
        }
    }
    removal_tell(d, c, &m);
    removal_heard_leader(d, &m);
    int src = raft_step(d->r, &m);
    if (src == RAFT_EINVAL)
        vlog(d, "raft_step rejected a message of type %d", m.type);
    codec_msg_free(&m);
    return 0;
}

/* Read what the peer sent and handle each whole frame. */
void inconn_read(struct raftd *d, inconn *c)
{
    if (c->dead)
        return;
    if (!d->inbound_buf && !(d->inbound_buf = malloc(INBOUND_READ_BYTES)))
        fatal(d, "out of memory");
    uint8_t *buf = d->inbound_buf;
    ssize_t n = read(c->fd, buf, INBOUND_READ_BYTES);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->hello)
            vlog(d, "peer connection closed");
        c->dead = 1;
        return;
    }
    if (codec_reader_feed(&c->fr, buf, (size_t)n) < 0) {
        inconn_close(d, c, "framing error");
        return;
    }
    /* Before HELLO nobody gets a 16 MiB buffer: the first frame must be
     * HELLO-sized. */
    uint32_t fl;
    if (!c->hello && codec_reader_peek_len(&c->fr, &fl) && fl > HELLO_FRAME_MAX) {
        inconn_close(d, c, "first frame too large for a hello");
        return;
    }
    int kind;
    const uint8_t *pl;
    size_t len;
    int rc = 0;
    while (!c->dead && (rc = codec_reader_next(&c->fr, &kind, &pl, &len)) == 1) {
        if (!c->hello) {
            if (kind != PEER_HELLO) {
                inconn_close(d, c, "first frame is not a hello");
                return;
            }
            handle_hello(d, c, pl, len);
            continue;
        }
        switch (kind) {
        case PEER_RAFT:
            if (handle_raft(d, c, pl, len) < 0)
                return;
            break;
        case PEER_FWD_REQ: handle_fwd_req(d, c, pl, len); break;
        case PEER_FWD_RESP: handle_fwd_resp(d, c, pl, len); break;
        case PEER_REMOVED: {
            uint64_t node, term;
            if (codec_removed_decode(pl, len, &node, &term) < 0) {
                inconn_close(d, c, "bad removed notice");
                return;
            }
            removal_notice(d, c->from, node, term);
            break;
        }
        default: inconn_close(d, c, "unexpected frame"); return;
        }
    }
    if (rc < 0)
        inconn_close(d, c, "framing error");
}

static void inconn_event(loop *l, int fd, void *data, int events)
{
    (void)fd;
    (void)events;
    inconn_read(l->owner, data);
}

/* New connections on peer.sock (the loop's callback for its listener). */
static void accept_peers(struct raftd *d)
{
    for (int k = 0; k < 16; k++) {
        int fd = accept4(d->peer_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uid_t uid;
        gid_t gid;
        if (!socket_peer_allowed(fd, d->peer_path, &uid, &gid)) {
            close(fd);
            log_refusal(d, "peer.sock", uid, gid);
            continue;
        }
        /* Full: a connection that has not said HELLO yet (the oldest)
         * makes room, so idle connections cannot lock real peers out. */
        size_t live = 0;
        inconn *victim = NULL;
        for (size_t i = 0; i < d->n_inconns; i++) {
            if (d->inconns[i]->dead)
                continue;
            live++;
            if (!d->inconns[i]->hello && (!victim || d->inconns[i]->since < victim->since))
                victim = d->inconns[i];
        }
        if (live >= MAX_INBOUND && victim && d->n_inconns < MAX_INBOUND + 16) {
            victim->dead = 1;
            live--;
        }
        if (live >= MAX_INBOUND || d->n_inconns >= MAX_INBOUND + 16) {
            log_limit *ll = &d->lim_inbound_full;
            if (now_ms() - ll->last > 10000) {
                ll->last = now_ms();
                logf_(d, "too many inbound peer connections; refusing new ones");
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
        if (loop_add(&d->loop, fd, LOOP_READ, inconn_event, c) < 0) {
            close(fd);
            free(c);
            continue;
        }
        d->inconns[d->n_inconns++] = c;
    }
}

void peer_listen_event(loop *l, int fd, void *data, int events)
{
    (void)fd;
    (void)data;
    (void)events;
    accept_peers(l->owner);
}

/* Called every tick: a connection gets HELLO_TIMEOUT_MS to say HELLO. */
void inconns_timers(struct raftd *d, uint64_t now)
{
    for (size_t i = 0; i < d->n_inconns; i++)
        if (!d->inconns[i]->hello && now - d->inconns[i]->since > HELLO_TIMEOUT_MS)
            inconn_close(d, d->inconns[i], "no hello in time");
}

void inconn_free(struct raftd *d, inconn *c)
{
    loop_del(&d->loop, c->fd);
    close(c->fd);
    codec_reader_free(&c->fr);
    free(c);
}

/* End of a turn: free the connections marked dead. */
void inconns_sweep(struct raftd *d)
{
    for (size_t i = 0; i < d->n_inconns;) {
        if (d->inconns[i]->dead) {
            inconn_free(d, d->inconns[i]);
            d->inconns[i] = d->inconns[--d->n_inconns];
        } else {
            i++;
        }
    }
}
