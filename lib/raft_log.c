/*
 * raft_log.c - the in-memory Raft log: append (a CONFIG entry takes
 * effect at once), truncation of a conflicting suffix, compaction behind a
 * snapshot and the snapshot trail kept after it, and eviction of applied
 * entries beyond log_mem_bytes (they stay in storage: their terms and
 * configurations are kept here, their data is read back when a follower
 * needs it); memory handed to the caller is freed only at the next advance.
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

/* Append one item to a growable array (the core's queues and outputs). */
int raft_vec_push(vec *v, const void *item, size_t size)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        void *np = realloc(v->p, nc * size);
        if (!np)
            return RAFT_ENOMEM;
        v->p = np;
        v->cap = nc;
    }
    memcpy((char *)v->p + v->n * size, item, size);
    v->n++;
    return RAFT_OK;
}

static void trash(raft_t *r, uint8_t *p)
{
    if (!p)
        return;
    if (raft_vec_push(&r->garbage, &p, sizeof p) != RAFT_OK)
        free(p); /* nothing references it outside a ready in progress */
}

/* Append one entry (copying its data). CONFIG entries take effect as soon
 * as they are in the log, committed or not (dissertation 4.1). */
int raft_log_append(raft_t *r, uint64_t term, uint8_t type, const uint8_t *data, uint32_t len)
{
    if (r->n_ents == r->cap_ents) {
        size_t nc = r->cap_ents ? r->cap_ents * 2 : 64;
        raft_entry *ne = realloc(r->ents, nc * sizeof *ne);
        if (!ne)
            return RAFT_ENOMEM;
        r->ents = ne;
        r->cap_ents = nc;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return RAFT_ENOMEM;
        memcpy(copy, data, len);
    }
    raft_entry *e = &r->ents[r->n_ents++];
    e->term = term;
    e->index = last_index(r);
    e->type = type;
    e->len = len;
    e->data = copy;
    r->log_bytes += len;
    r->appended_bytes += len;
    if (type == RAFT_ENTRY_CONFIG) {
        raft_config c;
        if (raft_config_decode(&c, copy, len) == RAFT_OK) {
            r->conf = c;
            r->conf_index = e->index;
            raft_progress_rebuild(r);
        }
    }
    return RAFT_OK;
}

/* Drop entries >= from (never committed ones: callers check). */
void raft_log_truncate(raft_t *r, uint64_t from)
{
    if (from <= r->base_index || from > last_index(r))
        return;
    while (last_index(r) >= from) {
        raft_entry *e = &r->ents[r->n_ents - 1];
        r->log_bytes -= e->len;
        trash(r, e->data);
        r->n_ents--;
    }
    if (from < r->unstable_from) {
        /* storage has (or will have) some of them: tell it to delete */
        if (r->pending_trunc == 0 || from < r->pending_trunc)
            r->pending_trunc = from;
        r->unstable_from = from;
    }
    if (r->stable >= from)
        r->stable = from - 1;
    if (r->conf_index >= from)
        raft_conf_recompute(r);
}

/* Give back most of the entry array once it is mostly empty. */
static void ents_shrink(raft_t *r)
{
    if (r->cap_ents > 1024 && r->n_ents < r->cap_ents / 4) {
        size_t nc = r->cap_ents / 2;
        raft_entry *ne = realloc(r->ents, nc * sizeof *ne);
        if (ne) {
            r->ents = ne;
            r->cap_ents = nc;
        }
    }
}

/* Drop the first k entries held in memory (their data goes at the next
 * advance); the last of them becomes base_index. */
static void mem_drop(raft_t *r, size_t k)
{
    if (k == 0)
        return;
    r->base_index = r->ents[k - 1].index;
    r->base_term = r->ents[k - 1].term;
    for (size_t i = 0; i < k; i++) {
        r->log_bytes -= r->ents[i].len;
        trash(r, r->ents[i].data);
    }
    memmove(r->ents, r->ents + k, (r->n_ents - k) * sizeof *r->ents);
    r->n_ents -= k;
    ents_shrink(r);
}

/* Storage-only entries: drop the runs and configurations at or before
 * upto, which becomes the compaction point. */
static void disk_trim(raft_t *r, uint64_t upto)
{
    term_run *rs = r->runs.p;
    size_t k = 0;
    while (k + 1 < r->runs.n && rs[k + 1].index <= upto + 1)
        k++;
    /* rs[k] covers upto + 1 unless every run is past it */
    if (k) {
        memmove(rs, rs + k, (r->runs.n - k) * sizeof *rs);
        r->runs.n -= k;
    }
    if (r->runs.n && rs[0].index <= upto)
        rs[0].index = upto + 1;
    if (upto >= r->base_index)
        r->runs.n = 0;
    r->disk_index = upto;
}

/* Forget entries <= upto (they are in a snapshot), in memory and in
 * storage (compact_to tells storage). */
static void log_compact(raft_t *r, uint64_t upto)
{
    if (upto <= r->disk_index || upto > last_index(r))
        return;
    uint64_t t = term_at(r, upto);
    if (upto > r->base_index)
        mem_drop(r, (size_t)(upto - r->base_index));
    disk_trim(r, upto);
    r->disk_term = t;
}

/* Term of an entry held in storage only (disk_index < i < base_index),
 * from the runs; the compaction point itself is disk_term. */
uint64_t raft_disk_term(const raft_t *r, uint64_t i)
{
    if (i == r->disk_index)
        return r->disk_term;
    if (i < r->disk_index)
        return 0;
    const term_run *rs = r->runs.p;
    size_t lo = 0, hi = r->runs.n; /* the last run with index <= i */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs[mid].index <= i)
            lo = mid;
        else
            hi = mid;
    }
    return r->runs.n && rs[lo].index <= i ? rs[lo].term : 0;
}

/* The last index <= index whose term is <= term (terms grow along the
 * log); disk_index - 1 when even the compaction point's is larger (the
 * follower needs a snapshot). */
uint64_t raft_last_with_term_le(const raft_t *r, uint64_t index, uint64_t term)
{
    if (index > last_index(r))
        index = last_index(r);
    while (index > r->base_index && term_at(r, index) > term)
        index--;
    if (index > r->base_index || term_at(r, index) <= term)
        return index;
    /* into the entries held in storage only: run by run */
    const term_run *rs = r->runs.p;
    for (size_t k = r->runs.n; k-- > 0;) {
        if (rs[k].index > index)
            continue;
        if (rs[k].term <= term)
            return index;
        index = rs[k].index - 1;
    }
    if (index > r->disk_index)
        index = r->disk_index;
    if (index == r->disk_index && index > 0 && r->disk_term > term)
        return index - 1;
    return index;
}

/* The configuration of the last CONFIG entry held in storage only at or
 * before i (and after the snapshot), NULL when there is none; *at gets its
 * index. */
const raft_config *raft_ev_conf_at(const raft_t *r, uint64_t i, uint64_t *at)
{
    const ev_conf *c = r->ev_confs.p;
    for (size_t k = r->ev_confs.n; k-- > 0;)
        if (c[k].index <= i && c[k].index > r->snap.index) {
            *at = c[k].index;
            return &c[k].conf;
        }
    return NULL;
}

/* Keep at most log_mem_bytes of log in memory: the oldest entries that
 * are applied and durable leave memory (storage has them; they are never
 * truncated). Their terms go to runs, their configurations to ev_confs. */
void raft_log_evict(raft_t *r)
{
    if (!r->o.log_mem_bytes)
        return;
    uint64_t lim = r->applied < r->stable ? r->applied : r->stable;
    size_t mem = r->log_bytes + r->n_ents * RAFT_ENTRY_OVERHEAD;
    size_t k = 0;
    while (k < r->n_ents && mem > r->o.log_mem_bytes && r->ents[k].index <= lim) {
        const raft_entry *e = &r->ents[k];
        term_run *rs = r->runs.p;
        int new_run = !r->runs.n || rs[r->runs.n - 1].term != e->term;
#ifdef MUTANT_EVICT_STALE_TERM
        new_run = !r->runs.n; /* BUG: entries of a later term keep the old one */
#endif
        if (new_run) {
            term_run t = {e->index, e->term};
            if (raft_vec_push(&r->runs, &t, sizeof t) != RAFT_OK)
                break;
        }
        int keep_conf = e->type == RAFT_ENTRY_CONFIG && e->index > r->snap.index;
#ifdef MUTANT_EVICT_NO_CONF
        keep_conf = 0; /* BUG: a configuration held in storage only is forgotten */
#endif
        if (keep_conf) {
            ev_conf c;
            c.index = e->index;
            if (raft_config_decode(&c.conf, e->data, e->len) == RAFT_OK &&
                raft_vec_push(&r->ev_confs, &c, sizeof c) != RAFT_OK)
                break;
        }
        mem -= e->len + RAFT_ENTRY_OVERHEAD;
        k++;
    }
    mem_drop(r, k);
}

/* Replace the whole log by a snapshot's position. */
void raft_log_reset(raft_t *r, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < r->n_ents; i++)
        trash(r, r->ents[i].data);
    r->n_ents = 0;
    r->log_bytes = 0;
    r->base_index = index;
    r->base_term = term;
    r->disk_index = index;
    r->disk_term = term;
    r->runs.n = 0;
    r->ev_confs.n = 0;
    ents_shrink(r);
    r->unstable_from = index + 1;
    r->pending_trunc = 0;
}

int raft_snapshot_taken(raft_t *r, uint64_t index)
{
    if (!r || r->in_ready)
        return RAFT_EINVAL;
    if (index > r->applied || index > last_index(r))
        return RAFT_EINVAL;
    if (index <= r->snap.index)
        return RAFT_OK; /* a newer snapshot (taken or installed) covers it */
    if (index < r->disk_index)
        return RAFT_EINVAL;
    raft_snap_meta s;
    s.index = index;
    s.term = term_at(r, index);
    raft_conf_at(r, index, &s.conf);
    r->snap = s;
    /* configurations at or before the snapshot are in s.conf */
    ev_conf *ec = r->ev_confs.p;
    size_t keep = 0;
    for (size_t k = 0; k < r->ev_confs.n; k++)
        if (ec[k].index > index)
            ec[keep++] = ec[k];
    r->ev_confs.n = keep;
    if (index > r->o.snapshot_trail || r->o.snapshot_trail_bytes) {
        uint64_t upto = index > r->o.snapshot_trail ? index - r->o.snapshot_trail : 0;
        if (r->o.snapshot_trail_bytes) {
            /* keep only the newest entries <= index whose data fits;
             * entries held in storage only cost no memory and stay
             * under the entry count */
            size_t kept = 0;
            uint64_t i = index;
            while (i > r->base_index && i > upto) {
                size_t len = r->ents[i - r->base_index - 1].len;
                if (kept + len > r->o.snapshot_trail_bytes)
                    break;
                kept += len;
                i--;
            }
            if (i > r->base_index || r->base_index == r->disk_index)
                upto = i;
        }
        if (upto > r->disk_index) {
            log_compact(r, upto);
            r->compact_to = upto;
        }
    }
    /* transfers of an older snapshot restart with this one */
    if (r->role == RAFT_LEADER)
        for (size_t i = 0; i < r->n_prs; i++) {
            progress *p = &r->prs[i];
            if (p->state == PR_SNAPSHOT && p->snap_index != index) {
                p->snap_index = index;
                p->snap_offset = 0;
                raft_send_snap_chunk(r, p);
            }
        }
    return RAFT_OK;
}

uint64_t raft_entry_term(const raft_t *r, uint64_t index)
{
    if (!r || index == 0 || !term_known(r, index))
        return 0;
    return term_at(r, index);
}
