/*
 * raft_recv.c - receiving a message: raft_step validates it, applies
 * the term rules (3.3) and dispatches by type; the AppendEntries and
 * InstallSnapshot receivers, and the leader's handling of their answers.
 * Votes and ReadIndex messages are handled in raft_elect.c and
 * raft_read.c. No I/O, no clock, no file-scope state.
 */
#include "raft_impl.h"

/* AppendEntries receiver (3.5, Figure 3.1). */
static void handle_append(raft_t *r, const raft_msg *m)
{
    raft_msg *out;
    if (m->index < r->commit) {
        /* everything up to commit already matches the leader */
        out = reply(r, m, RAFT_MSG_APPEND_RESP);
        if (out) {
            out->index = r->commit;
            out->ctx = m->ctx;
        }
        return;
    }
    if (!term_known(r, m->index) || term_at(r, m->index) != m->log_term) {
        /* log matching: reject, with a hint for fast back-off: the last
         * index whose term is <= the leader's prev term */
        uint64_t hint = m->index < last_index(r) ? m->index : last_index(r);
        while (hint > r->base_index && term_at(r, hint) > m->log_term)
            hint--;
        out = reply(r, m, RAFT_MSG_APPEND_RESP);
        if (out) {
            out->reject = 1;
            out->index = m->index;
            out->hint_index = hint;
            out->hint_term = term_at(r, hint);
            out->ctx = m->ctx;
        }
        return;
    }
    /* append new entries, truncating a conflicting suffix (never below
     * the commit index: committed entries are never overwritten) */
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        if (e->index <= last_index(r)) {
            if (term_at(r, e->index) == e->term)
                continue;
            if (e->index <= r->commit)
                return; /* cannot happen with a correct leader */
            raft_log_truncate(r, e->index);
        }
        if (raft_log_append(r, e->term, e->type, e->data, e->len) != RAFT_OK)
            return; /* out of memory: no ack, the leader retries */
    }
    uint64_t last_new = m->index + m->n_entries;
    uint64_t c = m->commit < last_new ? m->commit : last_new;
    if (c > r->commit)
        r->commit = c;
    /* the ack leaves in the same ready that persists these entries */
    out = reply(r, m, RAFT_MSG_APPEND_RESP);
    if (out) {
        out->index = last_new;
        out->ctx = m->ctx;
    }
#ifdef MUTANT_ACK_BEFORE_PERSIST
    /* BUG: the ack leaves in this ready, the entries only in the next */
    if (m->n_entries)
        r->mut_hold = 1;
#endif
}

/* Leader: a follower's answer to AppendEntries. */
static void handle_append_resp(raft_t *r, const raft_msg *m, progress *p)
{
    if (m->ctx > p->ctx_acked)
        p->ctx_acked = m->ctx;
    if (m->reject) {
        /* stale rejections (for an index it already acked) are ignored */
        if (m->index <= p->match || p->state == PR_SNAPSHOT)
            goto reads;
        if (p->state == PR_PROBE && m->index != p->next - 1)
            goto reads;
        uint64_t nxt = m->index;
        if (m->hint_term > 0) {
            nxt = raft_last_with_term_le(r, m->hint_index, m->hint_term) + 1;
        } else if (m->hint_index + 1 < nxt) {
            nxt = m->hint_index + 1;
        }
        if (nxt <= p->match)
            nxt = p->match + 1;
        raft_pr_become_probe(p);
        p->next = nxt;
        raft_send_append(r, p);
        goto reads;
    }
    if (m->index > last_index(r))
        goto reads; /* acknowledges entries we never had: bogus */
    if (m->index > p->match) {
        p->match = m->index;
        p->stall = 0;
        if (p->next <= p->match)
            p->next = p->match + 1;
        if (p->state == PR_PROBE)
            raft_pr_become_replicate(p);
        else if (p->state == PR_SNAPSHOT && p->match >= p->snap_index)
            raft_pr_become_replicate(p);
        raft_infl_free_to(r, p, p->match);
        raft_maybe_commit(r);
        if (r->role != RAFT_LEADER)
            return;
        raft_transfer_check(r, p);
    }
    raft_send_append(r, p);
reads:
    raft_advance_reads(r);
}

static void snap_reply(raft_t *r, const raft_msg *m, uint64_t offset, int last, uint64_t index,
                       int reject)
{
    raft_msg *out = reply(r, m, RAFT_MSG_SNAP_RESP);
    if (!out)
        return;
    out->snap_index = m->snap_index;
    out->snap_term = m->snap_term;
    out->offset = offset;
    out->last = (uint8_t)last;
    out->index = index;
    out->reject = (uint8_t)reject;
    out->ctx = m->ctx;
}

/* Install the staged snapshot: it replaces the log and state machine. */
static void snap_install(raft_t *r)
{
    r->snap = r->stage;
    r->staging = 0;
    raft_log_reset(r, r->snap.index, r->snap.term);
    r->stable = 0; /* durable once the ready with snap_install is done */
    r->snap_install_pending = 1;
    if (r->commit < r->snap.index)
        r->commit = r->snap.index;
    r->handed = r->snap.index;
    r->conf = r->snap.conf;
    r->conf_index = r->snap.index;
    raft_progress_rebuild(r);
    /* chunks of this snapshot still queued are part of this install */
}

/* InstallSnapshot receiver, chunk by chunk. */
static void handle_snap(raft_t *r, const raft_msg *m)
{
    uint64_t have = term_known(r, m->snap_index) && term_at(r, m->snap_index) == m->snap_term;
#ifdef MUTANT_SNAP_NO_IGNORE
    have = 0; /* BUG: installs a snapshot its log already has, dropping
               * the acknowledged entries after it */
#endif
    if (m->snap_index <= r->commit || have) {
        /* nothing to install: never drop entries we may have acked */
        uint64_t idx = have && m->snap_index > r->commit ? m->snap_index : r->commit;
        snap_reply(r, m, 0, 1, idx, 0);
        return;
    }
    if (m->offset == 0) {
        /* a new (or changed) snapshot restarts the staging area */
        r->staging = 1;
        r->stage.index = m->snap_index;
        r->stage.term = m->snap_term;
        r->stage.conf = *m->conf;
        r->stage_offset = 0;
    } else if (!r->staging || r->stage.index != m->snap_index || r->stage.term != m->snap_term) {
        snap_reply(r, m, 0, 0, 0, 1); /* unknown transfer: restart */
        return;
    } else if (m->offset != r->stage_offset) {
        /* out of order chunk: refuse it, say where we are */
        snap_reply(r, m, r->stage_offset, 0, 0, 0);
        return;
    }
    raft_chunk c;
    memset(&c, 0, sizeof c);
    c.snap_index = m->snap_index;
    c.snap_term = m->snap_term;
    c.offset = m->offset;
    c.len = m->len;
    c.last = m->last;
    if (m->len) {
        uint8_t *d = malloc(m->len);
        if (!d)
            return;
        memcpy(d, m->data, m->len);
        c.data = d;
    }
    if (raft_vec_push(&r->chunks, &c, sizeof c) != RAFT_OK) {
        free((void *)c.data);
        return;
    }
    r->stage_offset += m->len;
    if (m->last) {
        snap_install(r);
        snap_reply(r, m, r->stage_offset, 1, r->snap.index, 0);
    } else {
        snap_reply(r, m, r->stage_offset, 0, 0, 0);
    }
}

static void handle_snap_resp(raft_t *r, const raft_msg *m, progress *p)
{
    if (m->ctx > p->ctx_acked)
        p->ctx_acked = m->ctx;
    if (m->last && !m->reject) {
        /* installed (or not needed): the follower matches up to index */
        if (m->index > last_index(r))
            return; /* bogus */
        if (m->index > p->match)
            p->match = m->index;
        if (p->state == PR_SNAPSHOT) {
            raft_pr_become_probe(p);
        }
        if (p->next <= p->match)
            p->next = p->match + 1;
        raft_maybe_commit(r);
        if (r->role != RAFT_LEADER)
            return;
        raft_transfer_check(r, p);
        raft_send_append(r, p);
        raft_advance_reads(r);
        return;
    }
    if (p->state != PR_SNAPSHOT)
        goto reads;
    if (m->reject || p->snap_index != r->snap.index) {
        /* restart with the snapshot we have now, from offset 0 */
        p->snap_index = r->snap.index;
        p->snap_offset = 0;
        raft_send_snap_chunk(r, p);
    } else if (m->snap_index == p->snap_index && m->offset != p->snap_offset) {
        /* the follower says where it is (a duplicated first chunk may
         * have restarted it): continue from there */
        p->snap_offset = m->offset;
        raft_send_snap_chunk(r, p);
    }
reads:
    raft_advance_reads(r);
}

static int msg_valid(const raft_t *r, const raft_msg *m)
{
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX)
        return 0;
    if (m->from == 0 || m->from == r->id || (m->to != 0 && m->to != r->id))
        return 0;
    if (m->type == RAFT_MSG_APPEND) {
        if (m->n_entries && !m->entries)
            return 0;
        if (m->n_entries > UINT32_MAX / 2)
            return 0;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const raft_entry *e = &m->entries[i];
            if (e->index != m->index + 1 + i || e->term > m->term || e->term < m->log_term ||
                e->type > RAFT_ENTRY_CONFIG || (e->len && !e->data))
                return 0;
            if (i > 0 && e->term < m->entries[i - 1].term)
                return 0;
            raft_config c;
            if (e->type == RAFT_ENTRY_CONFIG && raft_config_decode(&c, e->data, e->len) != RAFT_OK)
                return 0;
        }
        if (m->log_term > m->term)
            return 0;
    }
    if (m->type == RAFT_MSG_SNAP) {
        if (!m->conf || !raft_conf_valid(m->conf) || m->len > RAFT_SNAP_CHUNK ||
            (m->len && !m->data) || m->snap_index == 0 || m->snap_term == 0 ||
            m->snap_term > m->term || m->offset > UINT64_MAX - m->len)
            return 0;
    }
    return 1;
}

/* Terms (3.3): a newer term makes us a follower; an older one is stale.
 * Pre-votes do not change terms. Returns 1 when the message goes on to
 * its receiver, 0 when it was answered (or ignored) here. */
static int step_term(raft_t *r, const raft_msg *m)
{
    if (m->term > r->term) {
        int vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        if (vote_req && !m->transfer && raft_in_lease(r))
            return 0;
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* no term change */
        } else {
            int from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAP ||
                              m->type == RAFT_MSG_TIMEOUT_NOW;
            raft_become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAP) {
            /* tell a stale leader about the newer term */
            raft_msg *out = reply(r, m, RAFT_MSG_APPEND_RESP);
            if (out) {
                out->reject = 1;
                out->index = m->index;
            }
        } else if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
            /* a candidate behind in term learns the term from the
             * rejection; otherwise two candidates whose configurations
             * do not include each other could race forever */
            raft_msg *out =
                reply(r, m, m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP);
            if (out)
                out->reject = 1;
        }
        return 0;
    }
    return 1;
}

/* APPEND or SNAP from the leader of our term (a follower's step). */
static void step_from_leader(raft_t *r, const raft_msg *m)
{
    if (r->role == RAFT_LEADER)
        return; /* two leaders in one term cannot happen */
    if (r->role != RAFT_FOLLOWER || r->leader != m->from)
        raft_become_follower(r, r->term, m->from);
    r->election_elapsed = 0;
    r->ticks_since_leader = 0;
    if (m->type == RAFT_MSG_APPEND)
        handle_append(r, m);
    else
        handle_snap(r, m);
}

/* A follower's answer to APPEND or SNAP (the leader's step). */
static void step_follower_answer(raft_t *r, const raft_msg *m)
{
    progress *p;
    if (r->role != RAFT_LEADER || !(p = raft_pr_find(r, m->from)))
        return;
    p->recent_active = 1;
    p->heard = 1;
    if (m->type == RAFT_MSG_APPEND_RESP)
        handle_append_resp(r, m, p);
    else
        handle_snap_resp(r, m, p);
}

int raft_step(raft_t *r, const raft_msg *m)
{
    if (!r || !m || r->in_ready)
        return RAFT_EINVAL;
    if (!msg_valid(r, m))
        return RAFT_EINVAL;

    /* ReadIndex traffic is independent of terms: the answer is checked by
     * the leader's own heartbeat round. */
    if (m->type == RAFT_MSG_READ_INDEX) {
        raft_handle_read_index(r, m);
        return RAFT_OK;
    }
    if (m->type == RAFT_MSG_READ_INDEX_RESP) {
        raft_handle_read_index_resp(r, m);
        return RAFT_OK;
    }
    if (!step_term(r, m))
        return RAFT_OK;

    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_SNAP: step_from_leader(r, m); break;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_SNAP_RESP: step_follower_answer(r, m); break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        if (!m->transfer && raft_in_lease(r) && m->type == RAFT_MSG_PREVOTE) {
            raft_msg *out = reply(r, m, RAFT_MSG_PREVOTE_RESP);
            if (out)
                out->reject = 1;
            return RAFT_OK;
        }
        raft_handle_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP: raft_handle_vote_resp(r, m); break;
    case RAFT_MSG_TIMEOUT_NOW:
        /* leadership transfer: campaign at once, skipping pre-vote */
        if (r->role != RAFT_LEADER && promotable(r)) {
            raft_set_leader(r, 0);
            raft_campaign(r, 0, 1);
        }
        break;
    }
    return RAFT_OK;
}
