/*
 * leases.c - the glue between lib/lease.c (the leader's deadlines, pure)
 * and raftd: the table follows this node's role (loaded with every lease
 * of the applied state, with a fresh term, on becoming leader; dropped on
 * losing it), hears of the lease entries applied, and its next deadline
 * is a timer of the loop at which lease_expire entries are proposed. Also
 * the answers of the lease ops (docs/coordination.md, "Leases").
 *
 * Nothing here decides anything on a follower: lease_renew and lease_get
 * are forwarded to the leader (pending.c's dispatch), and a table that is
 * not leading answers LEASE_ENOTLEADER, which makes the request retry.
 */
#include "raftd.h"

#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Grants are refused (503) at KV_LEASE_MAX leases: here before proposing,
 * and by the state machine for grants already in flight. */
#define LEASE_TABLE_MAX KV_LEASE_MAX
#define LEASE_KEYS_SHOWN 1000 /* lease_get lists at most this many keys */
#define EXPIRE_BATCH 64

static uint64_t guard_ms(const struct raftd *d)
{
    return (uint64_t)d->tick_ms * d->election_ticks; /* the minimum election timeout */
}

void leases_init(struct raftd *d)
{
    d->leases = lease_table_new(LEASE_TABLE_MAX, guard_ms(d));
    if (!d->leases)
        fatal(d, "out of memory (lease table)");
    d->lease_next = UINT64_MAX;
}

size_t leases_held(const struct raftd *d)
{
    return d->leases && lease_leading(d->leases) ? lease_count(d->leases) : 0;
}

void leases_free(struct raftd *d)
{
    lease_table_free(d->leases);
    d->leases = NULL;
}

static void note(struct raftd *d, int rc, uint64_t id)
{
    if (rc == LEASE_EFULL || rc == LEASE_EINVAL)
        logf_(d, "lease %llu has no deadline here: %s", (unsigned long long)id, lease_strerror(rc));
    d->lease_dirty = 1;
}

typedef struct load_ctx {
    struct raftd *d;
    uint64_t last;
} load_ctx;

static int load_cb(void *arg, uint64_t id, uint64_t ttl_ms)
{
    load_ctx *c = arg;
    note(c->d, lease_load(c->d->leases, id, ttl_ms), id);
    c->last = id;
    return 0;
}

/* The table leads while this node is leader. */
void leases_sync(struct raftd *d)
{
    if (!d->leases)
        return;
    raft_status_info st;
    raft_status(d->r, &st);
    int leading = lease_leading(d->leases);
    if (st.role == RAFT_LEADER && !leading) {
        load_ctx c = {d, 0};
        int n;
        do { /* in chunks, each after the highest id loaded */
            n = store_lease_scan(d->st, c.last, 1000, load_cb, &c);
            if (n < 0)
                store_fatal(d, "read leases");
        } while (n == 1000);
        lease_leader_start(d->leases, now_ms());
        d->lease_dirty = 1;
        logf_(d, "leader: %zu leases get a fresh term (ttl + %llu ms from now)",
              lease_count(d->leases), (unsigned long long)guard_ms(d));
    } else if (st.role != RAFT_LEADER && leading) {
        lease_leader_stop(d->leases);
        d->lease_dirty = 1;
    }
}

/* The lease entries a Ready applied. */
void leases_applied(struct raftd *d, const raft_ready *rd, const store_result *res)
{
    uint64_t now = now_ms();
    leases_sync(d);
    for (size_t i = 0; i < rd->n_committed; i++) {
        const store_result *r = &res[i];
        if (r->code != 200 || !r->lease)
            continue;
        if (r->op == STORE_OP_LEASE_GRANT) {
            int rc = lease_granted(d->leases, r->lease, r->ttl_ms, now);
            if (rc != LEASE_ENOTLEADER)
                note(d, rc, r->lease);
        } else if (r->op == STORE_OP_LEASE_REVOKE || r->op == STORE_OP_LEASE_EXPIRE) {
            lease_removed(d->leases, r->lease);
            d->lease_dirty = 1;
        }
    }
}

static json_t *lease_str(uint64_t id)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)id);
    return json_string(b);
}

/* The answer of a write whose entry applied, when it is one of ours: a
 * lease op, a 404 (unknown lease), a new-form txn. 1 answered. */
int leases_answer(struct raftd *d, pending *p, const store_result *r, uint64_t index)
{
    if (r->code == 404) {
        finish(d, p, err_reply(404, "lease not found"));
        return 1;
    }
    if (r->code == 503) { /* the state machine's lease limit: nothing written */
        finish(d, p, err_reply(503, "too many leases"));
        return 1;
    }
    if (r->code != 200)
        return 0;
    if (p->op == OP_LEASE_GRANT) {
        finish(d, p,
               json_pack("{s:i,s:I,s:o,s:I}", "code", 200, "index", (json_int_t)index, "lease",
                         lease_str(r->lease), "ttl_ms", (json_int_t)r->ttl_ms));
        return 1;
    }
    if (p->op == OP_TXN && p->txn_new) {
        finish(d, p,
               json_pack("{s:i,s:I,s:b}", "code", 200, "index", (json_int_t)index, "succeeded",
                         r->succeeded));
        return 1;
    }
    return 0;
}

typedef struct keys_ctx {
    json_t *keys;
    size_t n;
    int more;
} keys_ctx;

static int keys_cb(void *arg, const char *k, size_t klen)
{
    keys_ctx *c = arg;
    if (c->n >= LEASE_KEYS_SHOWN) {
        c->more = 1;
        return 1;
    }
    json_array_append_new(c->keys, json_stringn(k, klen));
    c->n++;
    return 0;
}

static json_t *lease_get_reply(struct raftd *d, pending *p)
{
    uint64_t ttl = 0, left = 0;
    int rc = store_lease_get(d->st, p->node, &ttl);
    if (rc < 0)
        store_fatal(d, "read lease");
    if (rc == 0)
        return err_reply(404, "lease not found");
    rc = lease_remaining(d->leases, p->node, now_ms(), &left);
    if (rc == LEASE_ENOTLEADER)
        return NULL;
    keys_ctx c = {json_array(), 0, 0};
    if (store_lease_keys(d->st, p->node, NULL, LEASE_KEYS_SHOWN + 1, keys_cb, &c) < 0)
        store_fatal(d, "read lease keys");
    return json_pack("{s:i,s:o,s:I,s:I,s:o,s:b}", "code", 200, "lease", lease_str(p->node),
                     "ttl_ms", (json_int_t)ttl, "remaining_ms", (json_int_t)left, "keys", c.keys,
                     "more", c.more);
}

/* A lease op on the leader (pending.c's leader_write): 1 handled here, 0
 * to be proposed (a grant within the limit). */
int leases_leader_op(struct raftd *d, pending *p)
{
    json_t *r;
    switch (p->op) {
    case OP_LEASE_GRANT:
        if (store_lease_count(d->st) < (int64_t)KV_LEASE_MAX)
            return 0;
        finish(d, p, err_reply(503, "too many leases"));
        return 1;
    case OP_LEASE_GET:
        if ((r = lease_get_reply(d, p)))
            finish(d, p, r);
        else
            p->state = PS_RETRY; /* leader, but the table does not lead yet */
        return 1;
    case OP_LEASE_RENEW:
        /* The round that confirms leadership; lease_renew_check wants
         * the time it was asked (lib/lease.h, rule 1). */
        p->submitted = now_ms();
        p->state = raft_read_index(d->r, p->id) == RAFT_OK ? PS_WAIT_READ : PS_RETRY;
        return 1;
    default: return 0;
    }
}

/* A renewal whose ReadIndex round is confirmed and applied: its answer,
 * or NULL when it is retried (the table is not leading). */
json_t *leases_read_done(struct raftd *d, pending *p)
{
    int rc = lease_renew_check(d->leases, p->node, p->submitted, now_ms());
    uint64_t ttl = 0;
    d->lease_dirty = 1;
    switch (rc) {
    case LEASE_OK:
        if (store_lease_get(d->st, p->node, &ttl) < 0)
            store_fatal(d, "read lease");
        return json_pack("{s:i,s:o,s:I}", "code", 200, "lease", lease_str(p->node), "ttl_ms",
                         (json_int_t)ttl);
    case LEASE_EUNKNOWN:
    case LEASE_EEXPIRING: return err_reply(404, "lease not found");
    case LEASE_ETOOLATE:
        return json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                         "the renewal took longer than an election timeout; retry it", "outcome",
                         "unknown");
    default: p->state = PS_RETRY; return NULL;
    }
}

/* The loop's wait: not past the next lease deadline or held query. */
int leases_timeout(struct raftd *d, uint64_t now, int timeout)
{
    if (d->lease_dirty && d->leases) {
        d->lease_next = lease_next_expiry(d->leases);
        d->lease_dirty = 0;
    }
    uint64_t next = d->lease_next < d->waiters_due ? d->lease_next : d->waiters_due;
    if (next == UINT64_MAX)
        return timeout;
    uint64_t ms = next > now ? next - now : 0;
    return ms < (uint64_t)timeout ? (int)ms : timeout;
}

/* Every turn: follow the role, propose the expiries that are due, answer
 * the held queries whose wait is over. */
void leases_timers(struct raftd *d, uint64_t now)
{
    leases_sync(d);
    watch_timers(d, now);
    if (d->lease_dirty) {
        d->lease_next = lease_next_expiry(d->leases);
        d->lease_dirty = 0;
    }
    if (now < d->lease_next)
        return;
    uint64_t ids[EXPIRE_BATCH];
    size_t n;
    do {
        n = lease_due(d->leases, now, ids, EXPIRE_BATCH);
        for (size_t i = 0; i < n; i++) {
            char cmd[80];
            int len = snprintf(cmd, sizeof cmd, "{\"op\":\"lease_expire\",\"lease\":\"%llu\"}",
                               (unsigned long long)ids[i]);
            uint64_t idx = 0, term = 0;
            int rc = raft_propose(d->r, cmd, (uint32_t)len, &idx, &term);
            if (rc == RAFT_OK)
                d->m_expiries_proposed++;
            vlog(d, "lease %llu expired: %s", (unsigned long long)ids[i],
                 rc == RAFT_OK ? "expire proposed" : raft_strerror(rc));
        }
    } while (n == EXPIRE_BATCH);
    d->lease_dirty = 1;
}
