/*
 * raft_elect.c - roles and elections: randomized timeouts, becoming
 * follower/candidate/leader, pre-vote (9.6) and vote, the election
 * restriction (3.6.1), check-quorum (6.2), the leader lease (4.2.3), and
 * leadership transfer (3.10).
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

static uint64_t rng_next(raft_t *r)
{
    /* splitmix64 */
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void raft_reset_election_timer(raft_t *r)
{
    unsigned e = r->o.election_ticks;
    r->election_elapsed = 0;
    r->election_timeout = e + (unsigned)(rng_next(r) % e);
}

void raft_set_leader(raft_t *r, uint64_t leader)
{
    if (leader != r->leader)
        raft_fail_all_reads(r); /* reads asked of the old leader are lost */
    r->leader = leader;
}

/* Step down. The election timer keeps running (Figure 3.1: only a
 * leader's AppendEntries or a granted vote reset it); otherwise a
 * candidate that keeps learning a newer term from rejections would always
 * restart its timer behind its rival's and never win. A former leader
 * draws a fresh timeout. */
void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader)
{
    if (r->role == RAFT_LEADER) {
        raft_fail_all_reads(r);
        raft_reset_election_timer(r);
    }
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->role = RAFT_FOLLOWER;
    raft_set_leader(r, leader);
    r->transferee = 0;
    r->bcast_pending = 0;
}

static int count_in(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

static size_t tally(const raft_t *r, const uint64_t *ids, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += is_voter(&r->conf, ids[i]);
    return k;
}

static void record_vote(raft_t *r, uint64_t from, int granted)
{
    if (count_in(r->votes, r->n_votes, from) || count_in(r->rejects, r->n_rejects, from))
        return;
    if (granted && r->n_votes < RAFT_MAX_NODES)
        r->votes[r->n_votes++] = from;
    else if (!granted && r->n_rejects < RAFT_MAX_NODES)
        r->rejects[r->n_rejects++] = from;
}

static void become_leader(raft_t *r);

/* Check the tally after each vote; a majority of voters wins (3.4). */
static void check_votes(raft_t *r)
{
    size_t q = quorum(r);
    if (tally(r, r->votes, r->n_votes) >= q) {
        if (r->role == RAFT_PRECANDIDATE)
            raft_campaign(r, 0, 0);
        else
            become_leader(r);
    } else if (tally(r, r->rejects, r->n_rejects) >= q) {
        raft_become_follower(r, r->term, 0);
    }
}

/* Start an election. Pre-vote (9.6): first ask whether a vote would be
 * granted, at term+1, without changing our own term; only a node that
 * could win disrupts the cluster with a real term increase. */
void raft_campaign(raft_t *r, int pre, int transfer)
{
    if (!promotable(r))
        return;
    raft_set_leader(r, 0);
    r->n_votes = r->n_rejects = 0;
    raft_reset_election_timer(r);
    uint64_t t;
    if (pre) {
        r->role = RAFT_PRECANDIDATE;
        t = r->term + 1;
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id; /* persisted in the same ready as the VOTE msgs */
        t = r->term;
    }
    record_vote(r, r->id, 1);
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const raft_node *n = &r->conf.nodes[i];
        if (n->id == r->id || !n->voter)
            continue;
        int type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
        raft_msg *m = raft_msg_new(r, type, n->id);
        if (!m)
            continue;
        m->term = t;
        m->index = last_index(r);
        m->log_term = last_term(r);
        m->transfer = (uint8_t)transfer;
    }
    check_votes(r);
}

/* A new leader appends a NOOP: it can only commit earlier entries by
 * committing one of its own term (3.6.2, Figure 3.7). */
static void become_leader(raft_t *r)
{
    r->role = RAFT_LEADER;
    raft_set_leader(r, r->id);
    r->transferee = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        uint64_t id = p->id;
        raft_pr_init(r, p, id);
        if (id == r->id) {
            p->match = r->stable;
            p->state = PR_REPLICATE;
        }
    }
    raft_log_append(r, r->term, RAFT_ENTRY_NOOP, NULL, 0);
    r->bcast_pending = 1;
}

/* Leader with check-quorum (6.2): if a majority of voters was not heard
 * from during an election timeout, step down so clients find the real
 * leader. */
void raft_check_quorum(raft_t *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        if (is_voter(&r->conf, p->id) && (p->id == r->id || p->recent_active))
            k++;
        if (p->id != r->id) {
            p->prev_active = p->recent_active;
            p->recent_active = 0;
        }
    }
    if (r->o.check_quorum && k < quorum(r))
        raft_become_follower(r, r->term, 0);
}

/* Leadership transfer (3.10): once the target has the whole log, tell it
 * to campaign at once. */
void raft_transfer_check(raft_t *r, progress *p)
{
    if (r->transferee == p->id && p->match == last_index(r))
        raft_msg_new(r, RAFT_MSG_TIMEOUT_NOW, p->id);
}

static int log_up_to_date(const raft_t *r, const raft_msg *m)
{
#ifdef MUTANT_VOTE_NO_LOG_CHECK
    (void)r;
    (void)m;
    return 1;
#endif
    /* election restriction (3.6.1) */
    return m->log_term > last_term(r) || (m->log_term == last_term(r) && m->index >= last_index(r));
}

/* RequestVote / pre-vote receiver. */
void raft_handle_vote(raft_t *r, const raft_msg *m)
{
    int pre = m->type == RAFT_MSG_PREVOTE;
    int can_vote;
    if (pre)
        can_vote = m->term > r->term;
    else
        can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0);
    int grant = m->term >= r->term && can_vote && log_up_to_date(r, m);
    raft_msg *out = reply(r, m, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP);
    if (!out)
        return;
    out->reject = (uint8_t)!grant;
    if (grant && pre) {
        out->term = m->term; /* a pre-vote changes nothing here */
    } else if (grant) {
        r->vote = m->from; /* persisted in the same ready as this reply */
        raft_reset_election_timer(r);
    }
}

void raft_handle_vote_resp(raft_t *r, const raft_msg *m)
{
    if ((m->type == RAFT_MSG_PREVOTE_RESP && r->role != RAFT_PRECANDIDATE) ||
        (m->type == RAFT_MSG_VOTE_RESP && r->role != RAFT_CANDIDATE))
        return;
    record_vote(r, m->from, !m->reject);
    check_votes(r);
}

/* Lease for stickiness (4.2.3): a voter that heard from a live leader
 * within the minimum election timeout ignores (pre)votes, so a node that
 * rejoins from a partition cannot depose a healthy leader. */
int raft_in_lease(const raft_t *r)
{
    if (!r->o.check_quorum)
        return 0;
    if (r->role == RAFT_LEADER)
        return 1;
    return r->leader != 0 && r->election_elapsed < r->o.election_ticks;
}

int raft_transfer_leader(raft_t *r, uint64_t id)
{
    if (!r || id == 0)
        return RAFT_EINVAL;
    if (!leader_ready(r))
        return RAFT_ENOTLEADER;
    if (id == r->id)
        return RAFT_OK;
    if (!is_voter(&r->conf, id))
        return RAFT_EINVAL;
    if (r->transferee)
        return RAFT_EBUSY;
    progress *p = raft_pr_find(r, id);
    if (!p)
        return RAFT_EINVAL;
    r->transferee = id;
    r->transfer_elapsed = 0;
    if (p->match == last_index(r))
        raft_transfer_check(r, p);
    else
        raft_send_append(r, p);
    return RAFT_OK;
}
