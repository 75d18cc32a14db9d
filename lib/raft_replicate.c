/*
 * raft_replicate.c - what the leader sends: AppendEntries batched and
 * pipelined, heartbeats with their read round, snapshots in chunks, and
 * the once-per-heartbeat retransmission of each follower's state.
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

/* Queue a message for the next ready; the caller fills in the rest. */
raft_msg *raft_msg_new(raft_t *r, int type, uint64_t to)
{
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = (uint8_t)type;
    m.from = r->id;
    m.to = to;
    m.term = r->term;
    if (raft_vec_push(&r->msgs, &m, sizeof m) != RAFT_OK)
        return NULL; /* out of memory: the message is lost, Raft retries */
    return (raft_msg *)r->msgs.p + (r->msgs.n - 1);
}

/* Send a snapshot chunk at p->snap_offset (the caller fills the bytes). */
void raft_send_snap_chunk(raft_t *r, progress *p)
{
    raft_config *c = malloc(sizeof *c);
    if (!c)
        return;
    raft_msg *m = raft_msg_new(r, RAFT_MSG_SNAP, p->id);
    if (!m) {
        free(c);
        return;
    }
    *c = r->snap.conf;
    m->snap_index = r->snap.index;
    m->snap_term = r->snap.term;
    m->offset = p->snap_offset;
    m->conf = c;
    m->commit = r->commit;
    m->ctx = r->hb_round;
    p->snap_wait = 0;
}

static void pr_become_snapshot(raft_t *r, progress *p)
{
    p->state = PR_SNAPSHOT;
    p->snap_index = r->snap.index;
    p->snap_offset = 0;
    p->paused = 0;
    p->load_id = 0;
    raft_infl_reset(p);
    raft_send_snap_chunk(r, p);
}

/* Queue an APPEND of es[0..n) (a copy the message owns; the entries'
 * data stays with the log or the garbage) after prev, and move p on. */
static int append_out(raft_t *r, progress *p, uint64_t prev, const raft_entry *src, size_t n)
{
    raft_entry *es = NULL;
    if (n) {
        es = malloc(n * sizeof *es);
        if (!es)
            return 0;
        memcpy(es, src, n * sizeof *es);
    }
    raft_msg *m = raft_msg_new(r, RAFT_MSG_APPEND, p->id);
    if (!m) {
        free(es);
        return 0;
    }
    m->index = prev;
    m->log_term = term_at(r, prev);
    m->commit = r->commit;
    m->n_entries = (uint32_t)n;
    m->entries = es;
    m->ctx = r->hb_round;
    if (n) {
        uint64_t sent_last = prev + n;
        if (p->state == PR_REPLICATE) {
            /* pipelining: optimistically move next past what is in flight */
            p->next = sent_last + 1;
            raft_infl_add(r, p, sent_last);
        } else {
            p->paused = 1;
            p->probe_wait = 0;
        }
    } else if (p->state == PR_PROBE) {
        p->paused = 1;
        p->probe_wait = 0;
    }
    return 1;
}

/* The entries p needs next are in storage only: ask the caller to read
 * them (rd.loads); raft_entries_loaded sends them. One load per follower
 * at a time. */
static void request_load(raft_t *r, progress *p)
{
    if (p->load_id)
        return;
    raft_load l;
    l.id = ++r->load_seq;
    l.to = p->id;
    l.from = p->next;
    l.upto = r->base_index;
    l.max_bytes = r->o.max_msg_bytes;
    if (raft_vec_push(&r->loads, &l, sizeof l) != RAFT_OK)
        return;
    p->load_id = l.id;
    p->load_wait = 0;
    if (p->state == PR_PROBE) {
        p->paused = 1; /* the probe is on its way */
        p->probe_wait = 0;
    }
}

/* Build one APPEND to p starting at p->next with as many entries as fit
 * in max_msg_bytes (at least one: batching). Returns 1 when a message went
 * out, 0 when nothing was sent (nothing to send, out of memory, the
 * entries must be read from storage first, or the follower needs a
 * snapshot instead, which is then started). */
static int send_append_msg(raft_t *r, progress *p, int allow_empty)
{
    uint64_t prev = p->next - 1;
    if (prev < r->disk_index || !term_known(r, prev)) {
        /* the entries it needs are compacted: send a snapshot (chapter 5) */
        pr_become_snapshot(r, p);
        return 0;
    }
    uint64_t last = last_index(r);
    if (p->next > last && !allow_empty)
        return 0;
    if (p->next <= r->base_index) {
        request_load(r, p);
        return 0;
    }
    size_t n = 0, bytes = 0;
    for (uint64_t i = p->next; i <= last; i++) {
        const raft_entry *e = entry_at(r, i);
        if (n > 0 && bytes + e->len > r->o.max_msg_bytes)
            break;
        bytes += e->len;
        n++;
    }
    return append_out(r, p, prev, n ? entry_at(r, p->next) : NULL, n);
}

int raft_entries_loaded(raft_t *r, uint64_t id, const raft_entry *es, size_t n)
{
    if (!r || r->in_ready || (n && !es))
        return RAFT_EINVAL;
    if (r->role != RAFT_LEADER || id == 0)
        return RAFT_OK;
    progress *p = NULL;
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].load_id == id)
            p = &r->prs[i];
    if (!p)
        return RAFT_OK; /* given up, or the follower's state changed */
    p->load_id = 0;
    if (n == 0 || p->state == PR_SNAPSHOT || es[0].index != p->next)
        return RAFT_OK;
    /* what storage gave must be this log: consecutive, same terms */
    size_t k = 0, bytes = 0;
    while (k < n) {
        const raft_entry *e = &es[k];
        uint64_t want = p->next + k;
        if (e->index != want || want > last_index(r) || e->term != term_at(r, want) ||
            e->type > RAFT_ENTRY_CONFIG || (e->len && !e->data))
            break;
        if (k > 0 && bytes + e->len > r->o.max_msg_bytes)
            break;
        bytes += e->len;
        k++;
    }
    if (k == 0)
        return RAFT_EINVAL;
    raft_entry *copy = malloc(k * sizeof *copy);
    if (!copy)
        return RAFT_ENOMEM;
    size_t done = 0;
    for (; done < k; done++) {
        copy[done] = es[done];
        copy[done].data = NULL;
        if (es[done].len) {
            uint8_t *d = malloc(es[done].len);
            if (!d || raft_vec_push(&r->garbage, &d, sizeof d) != RAFT_OK) {
                free(d);
                break;
            }
            memcpy(d, es[done].data, es[done].len);
            copy[done].data = d;
        }
    }
    /* the data copies are freed with the garbage after the next ready */
    int sent = done && append_out(r, p, p->next - 1, copy, done);
    free(copy);
    if (!sent)
        return RAFT_ENOMEM;
    raft_send_append(r, p); /* more, from memory or another load */
    return RAFT_OK;
}

/* Replicate to one follower as far as its state allows (batching,
 * pipelining up to max_inflight in replicate state; one probe otherwise). */
void raft_send_append(raft_t *r, progress *p)
{
    if (p->id == r->id)
        return;
    switch (p->state) {
    case PR_SNAPSHOT: return;
    case PR_PROBE:
        if (!p->paused)
            send_append_msg(r, p, 1);
        return;
    case PR_REPLICATE:
        while (!infl_full(r, p) && p->next <= last_index(r) && p->state == PR_REPLICATE)
            if (!send_append_msg(r, p, 0))
                break;
        return;
    }
}

void raft_broadcast_append(raft_t *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        raft_send_append(r, &r->prs[i]);
}

/* A heartbeat: an empty APPEND whose prev is the follower's known match,
 * so it never causes a spurious rejection; ctx names the round. */
void raft_send_heartbeat(raft_t *r, progress *p)
{
    if (p->id == r->id)
        return;
    raft_msg *m = raft_msg_new(r, RAFT_MSG_APPEND, p->id);
    if (!m)
        return;
    uint64_t prev = term_known(r, p->match) ? p->match : 0;
    m->index = prev;
    m->log_term = term_at(r, prev);
    m->commit = r->commit;
    m->ctx = r->hb_round;
}

#define STALL_HEARTBEATS 3

/* Once per heartbeat interval, per follower: the heartbeat itself, and
 * retransmission. Retries go only to followers that answered since the
 * last heartbeat, so nothing big is sent to a dead node. */
static void heartbeat_peer(raft_t *r, progress *p)
{
    if (p->id == r->id)
        return;
    int alive = p->heard;
    p->heard = 0;
    if (p->load_id && ++p->load_wait > STALL_HEARTBEATS)
        p->load_id = 0; /* never answered: ask again */
    switch (p->state) {
    case PR_PROBE:
        /* the probe or its answer was lost (the follower answers our
         * heartbeats but not the probe): retry, not more often than every
         * few heartbeats, as a probe may carry a big batch */
        if (p->paused && alive && ++p->probe_wait >= STALL_HEARTBEATS)
            p->paused = 0;
        if (!p->paused) {
            size_t before = r->msgs.n;
            raft_send_append(r, p); /* the probe doubles as the heartbeat */
            if (r->msgs.n > before)
                return; /* (not when it waits for a load from storage) */
        }
        break;
    case PR_REPLICATE: {
        int outstanding = p->infl_count > 0 || p->next <= last_index(r);
        if (outstanding && alive && p->match == p->match_at_hb) {
            /* the follower answers heartbeats but not our appends: the
             * pipeline lost messages, fall back to probing */
            if (++p->stall >= STALL_HEARTBEATS || r->transferee == p->id) {
                raft_pr_become_probe(p);
                raft_send_append(r, p);
                p->match_at_hb = p->match;
                return;
            }
        } else if (p->match != p->match_at_hb) {
            p->stall = 0;
        }
        p->match_at_hb = p->match;
        break;
    }
    case PR_SNAPSHOT:
        if (++p->snap_wait >= r->o.election_ticks / 2 + 1) {
            /* chunk or answer lost: resend (the current snapshot) */
            if (p->snap_index != r->snap.index) {
                p->snap_index = r->snap.index;
                p->snap_offset = 0;
            }
            raft_send_snap_chunk(r, p);
        }
        break;
    }
    raft_send_heartbeat(r, p);
}

void raft_tick_leader(raft_t *r)
{
    r->ticks_since_leader = 0;
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->transferee) {
        /* a transfer that does not finish within an election timeout is
         * abandoned and the leader accepts proposals again (3.10) */
        if (++r->transfer_elapsed >= r->o.election_ticks)
            r->transferee = 0;
    }
    if (r->election_elapsed >= r->o.election_ticks) {
        r->election_elapsed = 0;
        raft_check_quorum(r);
        if (r->role != RAFT_LEADER)
            return;
    }
    if (r->heartbeat_elapsed >= r->o.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        for (size_t i = 0; i < r->n_prs; i++)
            heartbeat_peer(r, &r->prs[i]);
        raft_maybe_auto_promote(r);
    }
}
