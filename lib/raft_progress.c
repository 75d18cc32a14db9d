/*
 * raft_progress.c - the leader's view of each member (match, next,
 * probe/replicate state, the inflight window of pipelined APPENDs) and the
 * commit rule that follows from the matches (3.6.2).
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

progress *raft_pr_find(raft_t *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void raft_pr_init(raft_t *r, progress *p, uint64_t id)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->next = last_index(r) + 1;
    p->state = PR_PROBE;
    p->recent_active = 1;
}

void raft_infl_reset(progress *p)
{
    p->infl_head = 0;
    p->infl_count = 0;
}

/* One progress per member; existing ones keep their state. */
void raft_progress_rebuild(raft_t *r)
{
    progress old[RAFT_MAX_NODES];
    size_t n_old = r->n_prs;
    memcpy(old, r->prs, sizeof old);
    size_t ring_bytes = (size_t)r->o.max_inflight * sizeof(uint64_t);
    /* rings move with their progress: copy them aside first */
    uint64_t *scratch = r->infl_scratch;
    memcpy(scratch, r->infl, ring_bytes * RAFT_MAX_NODES);
    r->n_prs = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.nodes[i].id;
        progress *p = &r->prs[r->n_prs];
        size_t k;
        for (k = 0; k < n_old; k++)
            if (old[k].id == id)
                break;
        if (k < n_old) {
            *p = old[k];
            memcpy(infl_ring(r, r->n_prs), scratch + k * r->o.max_inflight, ring_bytes);
        } else {
            raft_pr_init(r, p, id);
        }
        r->n_prs++;
    }
    if (r->transferee && !is_voter(&r->conf, r->transferee))
        r->transferee = 0; /* target left: abort the transfer */
}

void raft_infl_add(raft_t *r, progress *p, uint64_t last)
{
    if (infl_full(r, p))
        return;
    uint64_t *ring = infl_ring(r, (size_t)(p - r->prs));
    ring[(p->infl_head + p->infl_count) % r->o.max_inflight] = last;
    p->infl_count++;
}

void raft_infl_free_to(raft_t *r, progress *p, uint64_t idx)
{
    uint64_t *ring = infl_ring(r, (size_t)(p - r->prs));
    while (p->infl_count && ring[p->infl_head] <= idx) {
        p->infl_head = (p->infl_head + 1) % r->o.max_inflight;
        p->infl_count--;
    }
}

void raft_pr_become_probe(progress *p)
{
    p->state = PR_PROBE;
    p->paused = 0;
    p->load_id = 0; /* an answer to an earlier load is ignored */
    p->next = p->match + 1;
    p->stall = 0;
    raft_infl_reset(p);
}

void raft_pr_become_replicate(progress *p)
{
    p->state = PR_REPLICATE;
    p->paused = 0;
    p->load_id = 0; /* an answer to an earlier load is ignored */
    p->next = p->match + 1;
    p->stall = 0;
    raft_infl_reset(p);
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Commit rule (3.6.2): the highest index replicated on a majority of
 * voters is committed only if its entry is of the current term. */
void raft_maybe_commit(raft_t *r)
{
    if (r->role != RAFT_LEADER)
        return;
    uint64_t ms[RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (is_voter(&r->conf, r->prs[i].id))
            ms[n++] = pr_match(r, &r->prs[i]);
    if (n == 0)
        return;
    qsort(ms, n, sizeof ms[0], cmp_u64_desc);
    uint64_t idx = ms[n / 2]; /* majority = n/2+1 have at least this */
#ifdef MUTANT_COMMIT_OLD_TERM
    if (idx > r->commit) {
#else
    if (idx > r->commit && term_at(r, idx) == r->term) {
#endif
        r->commit = idx;
        /* followers learn the new commit index promptly */
        for (size_t i = 0; i < r->n_prs; i++) {
            progress *p = &r->prs[i];
            if (p->id != r->id && p->state == PR_REPLICATE && p->next > last_index(r))
                raft_send_heartbeat(r, p);
        }
        raft_advance_reads(r);
        raft_maybe_step_down_removed(r);
    }
}
