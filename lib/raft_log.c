/*
 * raft_log.c - the in-memory Raft log: append (a CONFIG entry takes
 * effect at once), truncation of a conflicting suffix, compaction behind a
 * snapshot and the snapshot trail kept after it; memory handed to the
 * caller is freed only at the next advance.
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

/* Forget entries <= upto (they are in a snapshot). */
static void log_compact(raft_t *r, uint64_t upto)
{
    if (upto <= r->base_index || upto > last_index(r))
        return;
    size_t k = (size_t)(upto - r->base_index);
    uint64_t t = term_at(r, upto);
    for (size_t i = 0; i < k; i++) {
        r->log_bytes -= r->ents[i].len;
        trash(r, r->ents[i].data);
    }
    memmove(r->ents, r->ents + k, (r->n_ents - k) * sizeof *r->ents);
    r->n_ents -= k;
    r->base_index = upto;
    r->base_term = t;
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
    if (index < r->base_index)
        return RAFT_EINVAL;
    raft_snap_meta s;
    s.index = index;
    s.term = term_at(r, index);
    raft_conf_at(r, index, &s.conf);
    r->snap = s;
    if (index > r->o.snapshot_trail || r->o.snapshot_trail_bytes) {
        uint64_t upto = index > r->o.snapshot_trail ? index - r->o.snapshot_trail : 0;
        if (r->o.snapshot_trail_bytes) {
            /* keep only the newest entries <= index whose data fits */
            size_t kept = 0;
            uint64_t i = index;
            while (i > r->base_index && i > upto) {
                size_t len = r->ents[i - r->base_index - 1].len;
                if (kept + len > r->o.snapshot_trail_bytes)
                    break;
                kept += len;
                i--;
            }
            upto = i;
        }
        if (upto > r->base_index) {
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
