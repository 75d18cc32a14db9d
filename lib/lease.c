/*
 * lease.c - the leader's lease deadlines (rules and their argument in
 * lease.h). Pure: no I/O, no clock, no global state; `now` comes in.
 *
 * The table is an array sorted by id (grants arrive in log order, so an
 * append is the common case): lookups are a binary search, lease_due()
 * and lease_next_expiry() one pass over at most max leases.
 *
 * Deliberate bugs for tests/sim-mutants.sh, under -DMUTANT_xxx (a normal
 * build has none): LEASE_FRESH_NO_GUARD, LEASE_NO_FRESH_TERM,
 * LEASE_RENEW_NO_GUARD, LEASE_RENEW_WHILE_EXPIRING.
 */
#include "lease.h"

#include <stdlib.h>
#include <string.h>

typedef struct lease {
    uint64_t id;
    uint64_t ttl_ms;
    uint64_t deadline; /* leading: propose the expire at or after it */
    uint64_t retry_at; /* proposed: hand out again then (refused) */
    int proposed;
} lease;

struct lease_table {
    lease *v;
    size_t n, max;
    uint64_t guard_ms;
    int leading;
    uint64_t start; /* when leadership was won */
};

int lease_ttl_valid(uint64_t ttl_ms)
{
    return ttl_ms >= KV_LEASE_TTL_MIN_MS && ttl_ms <= KV_LEASE_TTL_MAX_MS;
}

lease_table *lease_table_new(size_t max, uint64_t guard_ms)
{
    if (max == 0 || guard_ms == 0 || max > SIZE_MAX / sizeof(lease))
        return NULL;
    lease_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->v = calloc(max, sizeof *t->v);
    if (!t->v) {
        free(t);
        return NULL;
    }
    t->max = max;
    t->guard_ms = guard_ms;
    return t;
}

void lease_table_free(lease_table *t)
{
    if (!t)
        return;
    free(t->v);
    free(t);
}

/* The position of id, or where it would go. */
static size_t find_pos(const lease_table *t, uint64_t id)
{
    size_t lo = 0, hi = t->n;
    if (t->n && t->v[t->n - 1].id < id)
        return t->n; /* the common case: a new grant */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static lease *find(const lease_table *t, uint64_t id)
{
    size_t k = find_pos(t, id);
    return k < t->n && t->v[k].id == id ? &t->v[k] : NULL;
}

/* Insert id or find it; NULL when full. */
static lease *insert(lease_table *t, uint64_t id)
{
    size_t k = find_pos(t, id);
    if (k < t->n && t->v[k].id == id)
        return &t->v[k];
    if (t->n == t->max)
        return NULL;
    memmove(t->v + k + 1, t->v + k, (t->n - k) * sizeof *t->v);
    t->n++;
    memset(&t->v[k], 0, sizeof t->v[k]);
    t->v[k].id = id;
    return &t->v[k];
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int lease_load(lease_table *t, uint64_t id, uint64_t ttl_ms)
{
    if (t->leading || id == 0 || !lease_ttl_valid(ttl_ms))
        return LEASE_EINVAL;
    lease *l = insert(t, id);
    if (!l)
        return LEASE_EFULL;
    l->ttl_ms = ttl_ms;
    return LEASE_OK;
}

void lease_leader_start(lease_table *t, uint64_t now)
{
    t->leading = 1;
    t->start = now;
    for (size_t k = 0; k < t->n; k++) {
        lease *l = &t->v[k];
#ifdef MUTANT_LEASE_NO_FRESH_TERM
        /* keeps the deadline of its previous term where it had one */
        if (l->deadline)
            continue;
#endif
#ifdef MUTANT_LEASE_FRESH_NO_GUARD
        l->deadline = add_sat(now, l->ttl_ms);
#else
        l->deadline = add_sat(add_sat(now, t->guard_ms), l->ttl_ms);
#endif
        l->proposed = 0;
    }
}

void lease_leader_stop(lease_table *t)
{
    t->leading = 0;
#ifdef MUTANT_LEASE_NO_FRESH_TERM
    return; /* keeps every deadline for its next term */
#endif
    t->n = 0;
}

int lease_leading(const lease_table *t)
{
    return t->leading;
}

int lease_granted(lease_table *t, uint64_t id, uint64_t ttl_ms, uint64_t now)
{
    if (!t->leading)
        return LEASE_ENOTLEADER;
    if (id == 0 || !lease_ttl_valid(ttl_ms))
        return LEASE_EINVAL;
    lease *l = insert(t, id);
    if (!l)
        return LEASE_EFULL;
    /* a grant of an earlier term may have been renewed by the old leader
     * up to one guard after this term began (rule 2 in lease.h) */
    uint64_t base = now;
#ifndef MUTANT_LEASE_FRESH_NO_GUARD
    if (base < add_sat(t->start, t->guard_ms))
        base = add_sat(t->start, t->guard_ms);
#endif
    l->ttl_ms = ttl_ms;
    l->deadline = add_sat(base, ttl_ms);
    l->proposed = 0;
    return LEASE_OK;
}

void lease_removed(lease_table *t, uint64_t id)
{
    size_t k = find_pos(t, id);
    if (k >= t->n || t->v[k].id != id)
        return;
    memmove(t->v + k, t->v + k + 1, (t->n - k - 1) * sizeof *t->v);
    t->n--;
}

int lease_renew_check(lease_table *t, uint64_t id, uint64_t submitted_at, uint64_t now)
{
    if (!t->leading)
        return LEASE_ENOTLEADER;
    lease *l = find(t, id);
    if (!l)
        return LEASE_EUNKNOWN;
#ifndef MUTANT_LEASE_RENEW_WHILE_EXPIRING
    if (l->proposed)
        return LEASE_EEXPIRING;
#endif
#ifndef MUTANT_LEASE_RENEW_NO_GUARD
    /* a clock that went back (submitted_at > now) is refused too */
    if (submitted_at > now || now - submitted_at >= t->guard_ms)
        return LEASE_ETOOLATE;
#else
    (void)submitted_at;
#endif
    uint64_t d = add_sat(now, l->ttl_ms);
    if (d > l->deadline)
        l->deadline = d;
    return LEASE_OK;
}

/* When lease_due() would hand l out: once per term, unless refused. */
static uint64_t due_at(const lease *l)
{
    return l->proposed ? l->retry_at : l->deadline;
}

uint64_t lease_next_expiry(const lease_table *t)
{
    uint64_t best = UINT64_MAX;
    if (!t->leading)
        return best;
    for (size_t k = 0; k < t->n; k++) {
        uint64_t at = due_at(&t->v[k]);
        if (at < best)
            best = at;
    }
    return best;
}

size_t lease_due(lease_table *t, uint64_t now, uint64_t *out, size_t max)
{
    size_t n = 0;
    if (!t->leading)
        return 0;
    for (size_t k = 0; k < t->n && n < max; k++) {
        lease *l = &t->v[k];
        if (due_at(l) > now)
            continue;
        l->proposed = 1;
        l->retry_at = UINT64_MAX;
        out[n++] = l->id;
    }
    return n;
}

void lease_expire_refused(lease_table *t, uint64_t id, uint64_t now)
{
    lease *l = find(t, id);
    if (l && l->proposed)
        l->retry_at = add_sat(now, t->guard_ms);
}

int lease_remaining(const lease_table *t, uint64_t id, uint64_t now, uint64_t *ms)
{
    if (!t->leading)
        return LEASE_ENOTLEADER;
    const lease *l = find(t, id);
    if (!l)
        return LEASE_EUNKNOWN;
    *ms = l->proposed || l->deadline <= now ? 0 : l->deadline - now;
    return LEASE_OK;
}

size_t lease_count(const lease_table *t)
{
    return t->n;
}

const char *lease_strerror(int err)
{
    switch (err) {
    case LEASE_OK: return "ok";
    case LEASE_EUNKNOWN: return "lease not found";
    case LEASE_ETOOLATE: return "renewal not confirmed in time";
    case LEASE_EEXPIRING: return "lease expired";
    case LEASE_ENOTLEADER: return "not the leader";
    case LEASE_EFULL: return "too many leases";
    case LEASE_EINVAL: return "invalid lease argument";
    }
    return "unknown error";
}
