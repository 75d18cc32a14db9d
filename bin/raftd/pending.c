/*
 * pending.c - the life cycle of a pending request, from its start to its
 * one answer (to a local client, or relayed to the follower that
 * forwarded it):
 *
 *   state            moved on by                       to
 *   PS_NEW           dispatch: status, metrics, stale  answered
 *                    read on a leader/follower         PS_WAIT_READ (or PS_RETRY)
 *                    write on the leader               PS_WAIT_APPLY (or PS_RETRY)
 *                    write on a follower               PS_WAIT_FWD (or PS_RETRY)
 *   PS_RETRY         every tick: dispatch again        as PS_NEW
 *   PS_WAIT_READ     ready: read index known/failed    PS_WAIT_READIDX / PS_RETRY
 *   PS_WAIT_READIDX  applied >= its index              answered from the table
 *   PS_WAIT_APPLY    its entry applied (ready.c)       answered
 *   PS_WAIT_FWD      the leader's reply / "notleader"  answered / PS_RETRY
 *   any              deadline passed                   answered 503
 *   PS_NEW, PS_RETRY no leader heard for 2 election     answered 503 "no leader"
 *                    timeouts (leaderless)              at once
 */
#include "raftd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct list_ctx {
    json_t *items;
    size_t n, limit, bytes;
    int more;
} list_ctx;

pending *pending_find(struct raftd *d, uint64_t id)
{
    for (pending *p = d->pending; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

void pending_unlink(struct raftd *d, pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        d->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

/* The two ends of the link between a client and its request in progress
 * (c->busy, p->cl) are cut only here. Its request finished: the client
 * may send the next one. */
static void pending_detach(pending *p)
{
    if (p->cl && p->cl->busy == p)
        p->cl->busy = NULL;
    p->cl = NULL;
}

/* The client went away: its requests still run to their end (a write may
 * already be in the log), but their answers are dropped. */
void pending_detach_client(struct raftd *d, client *c)
{
    watch_client_gone(d, c);
    for (pending *p = d->pending; p; p = p->next)
        if (p->cl == c)
            p->cl = NULL; /* nobody to tell */
    c->busy = NULL;
}

/* Answer p with the reply text s (n bytes, no newline) and free p. */
/* p has been answered: free it. */
static void finished(struct raftd *d, pending *p)
{
    if (p->cl)
        pending_detach(p);
    pending_unlink(d, p);
    json_decref(p->req);
    free(p->cmd);
    free(p);
}

static void finish_text(struct raftd *d, pending *p, const char *s, size_t n)
{
    if (p->cl)
        client_send_text(p->cl, s, n);
    else if (p->remote)
        fwd_reply_send(d, p->from, p->rreqid, s, n); /* kept for a resend */
    finished(d, p);
}

/* Answer p with reply (consumed) and free p. */
void finish(struct raftd *d, pending *p, json_t *reply)
{
    if (!reply)
        reply = err_reply(500, "out of memory");
    const char *oc = json_string_value(json_object_get(reply, "outcome"));
    if (oc && !strcmp(oc, "unknown"))
        d->m_outcome_unknown++;
    if (p->cl && p->cl->sink_json) { /* raftd's own HTTP: no text between */
        p->cl->sink_json(p->cl, reply);
        finished(d, p);
        return;
    }
    char buf[1024], *heap;
    size_t n;
    const char *s = dump_json(reply, buf, sizeof buf, &n, &heap);
    json_decref(reply);
    if (!s) {
        s = "{\"code\":500,\"error\":\"cannot encode reply\"}";
        n = strlen(s);
    }
    finish_text(d, p, s, n);
    free(heap);
}

/* The common answer to a write, {"code":200,"index":N}, without jansson. */
void finish_ok_index(struct raftd *d, pending *p, uint64_t index)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"code\":200,\"index\":%llu}", (unsigned long long)index);
    finish_text(d, p, buf, (size_t)n);
}

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

/* Serve a read from the local table. What a blocking query passes back
 * as its "index" (X-Keyval-Index): a found key's mod index, else (a 404,
 * a listing) "index" the store's applied index at reading; a stale read
 * also has "applied". */
json_t *do_read(struct raftd *d, pending *p)
{
    json_t *reply;
    if (p->op == OP_GET) {
        json_t *k = json_object_get(p->req, "key");
        char *v = NULL;
        size_t vl = 0;
        uint64_t mi = 0;
        int rc = store_get(d->st, json_string_value(k), json_string_length(k), &v, &vl, &mi);
        if (rc < 0)
            store_fatal(d, "read");
        if (rc == 0)
            reply = json_pack("{s:i,s:s,s:I}", "code", 404, "error", "key not found", "index",
                              (json_int_t)store_applied(d->st));
        else
            reply = json_pack("{s:i,s:O,s:s%,s:I}", "code", 200, "key", k, "value", v, vl, "index",
                              (json_int_t)mi);
        free(v);
    } else {
        const char *pre = json_string_value(json_object_get(p->req, "prefix"));
        const char *after = json_string_value(json_object_get(p->req, "after"));
        json_t *lim = json_object_get(p->req, "limit");
        json_int_t want = lim ? json_integer_value(lim) : KV_LIST_DEFAULT;
        list_ctx lc = {.items = json_array(),
                       .limit = want > KV_LIST_MAX ? KV_LIST_MAX : (size_t)want};
        if (store_scan(d->st, pre ? pre : "", after, lc.limit + 1, list_cb, &lc) < 0)
            store_fatal(d, "list");
        reply = json_pack("{s:i,s:o,s:b,s:I}", "code", 200, "items", lc.items, "more", lc.more,
                          "index", (json_int_t)store_applied(d->st));
    }
    if (reply && p->stale)
        json_object_set_new(reply, "applied", json_integer((json_int_t)store_applied(d->st)));
    return reply;
}

/* The member a remove or transfer names: its "node_id" when given, else
 * the member of that name in the latest configuration; 0 when none. */
static uint64_t request_member(struct raftd *d, const pending *p)
{
    const raft_config *c = raft_config_get(d->r);
    const raft_node *byname = member_by_name(c, p->meta);
    uint64_t id = p->node ? p->node : byname ? byname->id : 0;
    return c && id && raft_config_find(c, id) ? id : 0;
}

/* A join that would give one name two identities, or one identity two
 * names: answered 409 here (1), else 0. A node that comes back under a
 * member's name with another id (its data directory was wiped, so it may
 * have forgotten a vote it gave) is refused until the old member is
 * removed. */
static int join_conflict(struct raftd *d, pending *p)
{
    const raft_config *c = raft_config_get(d->r);
    char name[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
    kv_meta_split(p->meta, name, sizeof name, r, sizeof r, h, sizeof h);
    const raft_node *same = member_by_name(c, name);
    const raft_node *byid = c ? raft_config_find(c, p->node) : NULL;
    if (!((same && same->id != p->node) || (byid && byid != same)))
        return 0;
    char msg[700], other[KV_NAME_MAX + 1] = "";
    if (same)
        snprintf(msg, sizeof msg,
                 "%s is already a member with another identity (member id %016llx, "
                 "joining id %016llx: its data directory was wiped or replaced); "
                 "remove it first: curl -X DELETE http://%s/node/%s (or kv-admin "
                 "remove %s on a member), then join again",
                 name, (unsigned long long)same->id, (unsigned long long)p->node, d->haddr, name,
                 name);
    else {
        kv_meta_split(byid->meta, other, sizeof other, r, sizeof r, h, sizeof h);
        snprintf(msg, sizeof msg,
                 "node id %016llx is already member %s's; a node "
                 "cannot join under another name",
                 (unsigned long long)p->node, other);
    }
    logf_(d, "refused join of %s as node id %016llx: %s", name, (unsigned long long)p->node,
          same ? "the member of that name has another id" : "the id is another member's");
    finish(d, p, err_reply(409, msg));
    return 1;
}

/* A repeat join without "haddr" keeps the member's HTTP address. */
static void join_keep_haddr(struct raftd *d, pending *p)
{
    json_t *hj = json_object_get(p->req, "haddr");
    const raft_config *c = raft_config_get(d->r);
    const raft_node *m = c ? raft_config_find(c, p->node) : NULL;
    if ((hj && !json_is_null(hj)) || !m)
        return;
    char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
    char mn[KV_NAME_MAX + 1], mr[KV_ADDR_MAX + 1], mh[KV_ADDR_MAX + 1];
    kv_meta_split(p->meta, n, sizeof n, r, sizeof r, h, sizeof h);
    kv_meta_split(m->meta, mn, sizeof mn, mr, sizeof mr, mh, sizeof mh);
    kv_meta_format(p->meta, sizeof p->meta, n, r, mh);
}

/* What the core said to a proposal (or membership change) of p. */
static void proposal_result(struct raftd *d, pending *p, int rc, uint64_t idx, uint64_t term)
{
    switch (rc) {
    case RAFT_OK:
#ifdef KEYVAL_FAULT_MODES
        if (d->fault_ack_early && (p->op == OP_SET || p->op == OP_DEL || p->op == OP_TXN)) {
            finish(d, p, json_pack("{s:i,s:I}", "code", 200, "index", (json_int_t)idx));
            return;
        }
#endif
        p->state = PS_WAIT_APPLY;
        p->index = idx;
        p->term = term;
        p->proposed = 1;
        p->proposed_us = now_us();
        d->m_proposals++;
        return;
    case RAFT_ENOTLEADER:
    case RAFT_EBUSY:
    case RAFT_ETRANSFER: p->state = PS_RETRY; return;
    case RAFT_ETOOBIG: finish(d, p, err_reply(413, "request too large for one log entry")); return;
    case RAFT_ENOQUORUM:
        finish(d, p, err_reply(400, "removing this node would leave no voter"));
        return;
    case RAFT_EINVAL:
        finish(d, p,
               err_reply(400, p->op == OP_TRANSFER ? "cannot transfer leadership to that node"
                                                   : "invalid membership change"));
        return;
    default: finish(d, p, err_reply(500, raft_strerror(rc))); return;
    }
}

/* A read whose index is applied (or a stale one): a lease renewal's
 * check, a blocking query's hold, or the answer from the table. */
static void answer_read(struct raftd *d, pending *p)
{
    if (p->op == OP_LEASE_RENEW) {
        json_t *r = leases_read_done(d, p);
        if (r)
            finish(d, p, r);
        return;
    }
    if (p->blocking && watch_hold(d, p))
        return;
    finish(d, p, do_read(d, p));
}

/* Execute a write on the leader. */
static void leader_write(struct raftd *d, pending *p)
{
    raft_status_info st;
    raft_status(d->r, &st);
    uint64_t idx = 0, term = st.term, target = 0;
    int rc;
    switch (p->op) {
    case OP_JOIN:
        if (!p->node) {
            finish(d, p,
                   err_reply(400, "join needs \"node_id\": the joining node's Raft id, "
                                  "16 hex digits from its GET /status (keyval -join "
                                  "sends it)"));
            return;
        }
        join_keep_haddr(d, p);
        if (join_conflict(d, p))
            return;
        rc = raft_add_node(d->r, p->node, p->meta, &idx);
        if (rc == RAFT_OK && idx == 0) {
            finish(d, p, json_pack("{s:i,s:i}", "code", 200, "index", 0));
            return;
        }
        break;
    case OP_REMOVE:
    case OP_TRANSFER:
        if (!(target = request_member(d, p))) {
            finish(d, p, err_reply(404, "no such node in the cluster"));
            return;
        }
        if (p->op == OP_REMOVE) {
            rc = raft_remove_node(d->r, target, &idx);
            break;
        }
        if (target == d->id) {
            finish(d, p, json_pack("{s:i}", "code", 200));
            return;
        }
        rc = raft_transfer_leader(d->r, target);
        if (rc == RAFT_OK) {
            finish(d, p, json_pack("{s:i}", "code", 200));
            return;
        }
        break;
    case OP_LEASE_GRANT:
    case OP_LEASE_RENEW:
    case OP_LEASE_GET:
        if (leases_leader_op(d, p))
            return;
        rc = raft_propose(d->r, p->cmd, (uint32_t)p->cmd_len, &idx, &term); /* a grant */
        break;
    default: rc = raft_propose(d->r, p->cmd, (uint32_t)p->cmd_len, &idx, &term); break;
    }
    proposal_result(d, p, rc, idx, term);
}

/* Does this node know it has no leader? Not a leader, no leader known
 * or none heard from for two election timeouts (an election normally ends
 * within one, so a request arriving during a failover still waits for
 * the new leader; a node cut off from the others answers at once). */
static int leaderless(struct raftd *d)
{
    raft_status_info st;
    raft_status(d->r, &st);
    return st.role != RAFT_LEADER && st.ticks_since_leader >= 2 * (uint64_t)d->election_ticks;
}

/* The 503 of a request that was not proposed and has no leader to go to. */
static json_t *no_leader_reply(const pending *p)
{
    if (is_write(p->op))
        return err_reply(503, "no leader: the cluster cannot take writes now");
    return err_reply(503, "no leader: cannot serve a linearizable read now "
                          "(try \"level\":\"stale\")");
}

/* Move p forward as far as it can go now. */
void dispatch(struct raftd *d, pending *p)
{
    if (p->op == OP_STATUS) {
        finish(d, p, status_json(d));
        return;
    }
    if (p->op == OP_METRICS) {
        finish(d, p, metrics_json(d));
        return;
    }
    if (d->removed && !p->stale) { /* removal.c: it would wait for nothing */
        char msg[400];
        snprintf(msg, sizeof msg, "this node was removed from the cluster (%s); ask a member",
                 d->removed_why);
        finish(d, p, json_pack("{s:i,s:s,s:b}", "code", 503, "error", msg, "removed", 1));
        return;
    }
    if (p->op == OP_WATCH) {
        watch_start(d, p);
        return;
    }
    if (p->op == OP_GET || p->op == OP_LIST) {
#ifdef KEYVAL_FAULT_MODES
        if (d->fault_local_read) {
            answer_read(d, p);
            return;
        }
#endif
        if (p->stale) {
            answer_read(d, p);
            return;
        }
        if (leaderless(d)) {
            finish(d, p, no_leader_reply(p));
            return;
        }
        if (raft_read_index(d->r, p->id) == RAFT_OK)
            p->state = PS_WAIT_READ;
        else
            p->state = PS_RETRY;
        return;
    }
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.role == RAFT_LEADER) {
        leader_write(d, p);
        return;
    }
    if (p->remote) {
        finish(d, p,
               json_pack("{s:i,s:s,s:b}", "code", 503, "error", "not the leader", "notleader", 1));
        return;
    }
    if (!p->proposed && leaderless(d)) {
        finish(d, p, no_leader_reply(p));
        return;
    }
    if (st.leader && st.leader != d->id) {
        json_t *rq = pending_req(p);
        char *s = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
        int ok = s && send_fwd(d, st.leader, PEER_FWD_REQ, p->id, s, strlen(s)) == 0;
        free(s);
        if (ok) {
            p->state = PS_WAIT_FWD;
            p->proposed = 1;
            d->m_forwarded++;
            return;
        }
    }
    p->state = PS_RETRY;
}

void pending_link(struct raftd *d, pending *p)
{
    p->prev = NULL;
    p->next = d->pending;
    if (d->pending)
        d->pending->prev = p;
    d->pending = p;
}

/* A new pending request, linked in; NULL (answered) when out of memory. */
pending *pending_new(struct raftd *d, json_t *req, client *cl, int remote, uint64_t from,
                     uint64_t rreqid)
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
    p->id = d->next_id++;
    p->req = req;
    p->cl = cl;
    p->remote = remote;
    p->from = from;
    p->rreqid = rreqid;
    p->deadline = now_ms() + (remote ? REQ_TIMEOUT_MS - 1000 : REQ_TIMEOUT_MS);
    pending_link(d, p);
    if (cl)
        cl->busy = p;
    return p;
}

/* Called every tick: retry what waits for a leader, expire what is late. */
void pending_timers(struct raftd *d, uint64_t now)
{
    pending *next;
    for (pending *p = d->pending; p; p = next) {
        next = p->next;
        if (now >= p->deadline) {
            if (p->proposed)
                finish(d, p,
                       json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                                 "request timed out; the write may or may not have been "
                                 "applied",
                                 "outcome", "unknown"));
            else
                finish(d, p, no_leader_reply(p));
            continue;
        }
        if (p->state == PS_RETRY)
            dispatch(d, p);
    }
}

void check_reads(struct raftd *d)
{
    uint64_t applied = store_applied(d->st);
    pending *next;
    for (pending *p = d->pending; p; p = next) {
        next = p->next;
        if (p->state == PS_WAIT_READIDX && p->index <= applied)
            answer_read(d, p);
    }
}

/* Ready: the core has a read index for the read with id ctx. */
void pending_read_index(struct raftd *d, uint64_t ctx, uint64_t index)
{
    pending *p = pending_find(d, ctx);
    if (p && p->state == PS_WAIT_READ) {
        p->state = PS_WAIT_READIDX;
        p->index = index;
    }
}

/* Ready: the read with id ctx lost its read index (leadership changed). */
void pending_read_failed(struct raftd *d, uint64_t ctx)
{
    pending *p = pending_find(d, ctx);
    if (p && p->state == PS_WAIT_READ)
        p->state = PS_RETRY;
}

/* Shutting down: tell waiting local clients (best effort, non-blocking). */
void pending_shutdown(struct raftd *d)
{
    watch_shutdown(d); /* the blocking queries held come back here */
    while (d->pending) {
        pending *p = d->pending;
        p->remote = 0;
        finish(d, p,
               json_pack("{s:i,s:s,s:s}", "code", 503, "error", "raftd is shutting down", "outcome",
                         p->proposed ? "unknown" : "failed"));
    }
}
