/*
 * raft_read.c - ReadIndex (6.4): linearizable reads without a log write.
 * Leader side: a read is released at its commit index once a heartbeat
 * round started after it is acknowledged by a majority. Follower side:
 * reads are batched into one READ_INDEX to the leader.
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

static void fail_read(raft_t *r, const pending_read *pr)
{
    if (pr->from == 0 || pr->from == r->id) {
        raft_vec_push(&r->reads_failed, &pr->ctx, sizeof pr->ctx);
    } else {
        raft_msg *m = raft_msg_new(r, RAFT_MSG_READ_INDEX_RESP, pr->from);
        if (m) {
            m->ctx = pr->ctx;
            m->reject = 1;
        }
    }
}

void raft_fail_all_reads(raft_t *r)
{
    pending_read *ps = r->reads_pending.p;
    for (size_t i = 0; i < r->reads_pending.n; i++)
        fail_read(r, &ps[i]);
    r->reads_pending.n = 0;
    fwd_read *fw = r->fwd_reads.p;
    for (size_t i = 0; i < r->fwd_reads.n; i++)
        raft_vec_push(&r->reads_failed, &fw[i].ctx, sizeof fw[i].ctx);
    r->fwd_reads.n = 0;
    r->fwd_open = 0; /* later reads open a new batch (to the new leader) */
}

/* A new leader's commit index may lag behind what earlier leaders
 * committed until it commits an entry of its own term (6.4 step 1). */
static int can_serve_reads(const raft_t *r)
{
#ifdef MUTANT_READ_NO_TERM_COMMIT
    return 1; /* BUG: answers with a possibly stale commit index */
#endif
    return committed_in_term(r);
}

/* Leader side of ReadIndex (6.4): a read waits until the leader has
 * committed an entry of its term, records the commit index, and is
 * released once a majority acknowledged a heartbeat round started after. */
static void start_round(raft_t *r)
{
    if (r->round_open)
        return;
    r->hb_round++;
    r->round_open = 1;
    for (size_t i = 0; i < r->n_prs; i++)
        raft_send_heartbeat(r, &r->prs[i]);
}

static int round_confirmed(const raft_t *r, uint64_t round)
{
#ifdef MUTANT_READ_NO_ROUND
    (void)round;
    return 1;
#endif
    size_t k = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        const progress *p = &r->prs[i];
        if (!is_voter(&r->conf, p->id))
            continue;
        if (p->id == r->id || p->ctx_acked >= round)
            k++;
    }
    return k >= quorum(r);
}

static void release_read(raft_t *r, const pending_read *pr)
{
    if (pr->from == 0 || pr->from == r->id) {
        raft_read rd = {pr->ctx, pr->index};
        raft_vec_push(&r->reads, &rd, sizeof rd);
    } else {
        raft_msg *m = raft_msg_new(r, RAFT_MSG_READ_INDEX_RESP, pr->from);
        if (m) {
            m->ctx = pr->ctx;
            m->index = pr->index;
        }
    }
}

void raft_advance_reads(raft_t *r)
{
    if (r->role != RAFT_LEADER)
        return;
    pending_read *ps = r->reads_pending.p;
    /* reads that waited for an entry of this term get their index and
     * a heartbeat round now (round 0: not recorded yet; rounds start at 1) */
    if (can_serve_reads(r)) {
        int started = 0;
        for (size_t i = 0; i < r->reads_pending.n; i++) {
            if (ps[i].round)
                continue;
            if (!started) {
                start_round(r);
                started = 1;
            }
            ps[i].index = r->commit;
            ps[i].round = r->hb_round;
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < r->reads_pending.n; i++) {
        if (ps[i].round && round_confirmed(r, ps[i].round))
            release_read(r, &ps[i]);
        else
            ps[keep++] = ps[i];
    }
    r->reads_pending.n = keep;
}

static int leader_read(raft_t *r, uint64_t ctx, uint64_t from)
{
    if (r->reads_pending.n >= MAX_READS)
        return RAFT_EBUSY;
    pending_read pr = {ctx, from, 0, 0};
    if (can_serve_reads(r)) {
        pr.index = r->commit;
        start_round(r);
        pr.round = r->hb_round;
    }
    if (raft_vec_push(&r->reads_pending, &pr, sizeof pr) != RAFT_OK)
        return RAFT_ENOMEM;
    raft_advance_reads(r);
    return RAFT_OK;
}

void raft_handle_read_index(raft_t *r, const raft_msg *m)
{
    if (r->role != RAFT_LEADER || leader_read(r, m->ctx, m->from) != RAFT_OK) {
        raft_msg *out = reply(r, m, RAFT_MSG_READ_INDEX_RESP);
        if (out) {
            out->ctx = m->ctx;
            out->reject = 1;
        }
    }
}

/* The answer to a READ_INDEX batch resolves every read in it: released
 * at the leader's read index, or all failed on a reject. Only the leader
 * the batch was sent to can answer it: batches asked of an earlier leader
 * were failed when the leader changed (raft_set_leader), so an answer from
 * any other node, or for a batch no longer here, is ignored. */
void raft_handle_read_index_resp(raft_t *r, const raft_msg *m)
{
    if (m->from != r->leader || m->ctx == 0)
        return;
#ifdef MUTANT_READ_BATCH_REOPEN
    /* BUG: a batch stays open after its READ_INDEX left, until answered:
     * reads asked later are released at an index recorded before them */
    if (m->ctx == r->fwd_batch)
        r->fwd_open = 0;
#else
    if (r->fwd_open && m->ctx == r->fwd_batch)
        return; /* that READ_INDEX has not even left: not an answer to it */
#endif
    fwd_read *fw = r->fwd_reads.p;
    size_t keep = 0;
    for (size_t i = 0; i < r->fwd_reads.n; i++) {
        if (fw[i].batch != m->ctx) {
            fw[keep++] = fw[i];
        } else if (m->reject) {
            raft_vec_push(&r->reads_failed, &fw[i].ctx, sizeof fw[i].ctx);
        } else {
            raft_read rd = {fw[i].ctx, m->index};
            raft_vec_push(&r->reads, &rd, sizeof rd);
        }
    }
    r->fwd_reads.n = keep;
}

/* A batch unanswered for READ_BATCH_EXPIRY election timeouts was lost on
 * the way (or its answer was): fail its reads so the caller retries them
 * in a new batch. Batches sit in fwd_reads oldest first. */
void raft_expire_read_batches(raft_t *r)
{
    r->fwd_clock++;
    uint64_t limit = (uint64_t)READ_BATCH_EXPIRY * r->o.election_ticks;
    fwd_read *fw = r->fwd_reads.p;
    size_t k = 0;
    while (k < r->fwd_reads.n && r->fwd_clock - fw[k].asked >= limit &&
           !(r->fwd_open && fw[k].batch == r->fwd_batch)) {
        raft_vec_push(&r->reads_failed, &fw[k].ctx, sizeof fw[k].ctx);
        k++;
    }
    if (k) {
        memmove(fw, fw + k, (r->fwd_reads.n - k) * sizeof *fw);
        r->fwd_reads.n -= k;
    }
}

int raft_read_index(raft_t *r, uint64_t ctx)
{
    if (!r || r->in_ready)
        return RAFT_EINVAL;
    if (r->role == RAFT_LEADER)
        return leader_read(r, ctx, 0);
    if (r->leader == 0)
        return RAFT_ENOTLEADER;
    if (r->fwd_reads.n >= MAX_READS)
        return RAFT_EBUSY;
    /* ReadIndex batching: the first read since the last ready opens a
     * batch and puts its READ_INDEX in the outgoing messages; later reads
     * join it until raft_ready_get() hands that message out. Every read of
     * a batch was asked before its READ_INDEX left, so the leader's answer
     * (a commit index it holds after receiving the request) covers them
     * all. */
    if (!r->fwd_open) {
        uint64_t b = r->fwd_batch + 1;
        if (b == 0)
            b = 1; /* 0 is never a batch id */
        raft_msg *m = raft_msg_new(r, RAFT_MSG_READ_INDEX, r->leader);
        if (!m)
            return RAFT_ENOMEM;
        m->ctx = b;
        r->fwd_batch = b;
        r->fwd_open = 1;
        r->fwd_opened = r->fwd_clock;
    }
    fwd_read fr = {ctx, r->fwd_batch, r->fwd_opened};
    if (raft_vec_push(&r->fwd_reads, &fr, sizeof fr) != RAFT_OK)
        return RAFT_ENOMEM;
    return RAFT_OK;
}
