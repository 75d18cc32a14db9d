/*
 * raft.c - the Raft consensus core's public API (see raft.h for the
 * contract): lifecycle (new, restore, bootstrap, free), tick, propose,
 * the ready/advance loop, and status.
 *
 * A pure state machine: no I/O, no clock, no global mutable state. Each
 * Raft rule is enforced in one small function with a comment naming it
 * (section numbers refer to Ongaro's dissertation, "Consensus: Bridging
 * Theory and Practice", 2014). The core is split by concern into
 * lib/raft_*.c; raft_impl.h lists the files and holds the state.
 *
 * Deliberate bugs for the simulator's mutation test are selected with
 * -DMUTANT_xxx (see tests/sim-mutants.sh); a normal build has none.
 */
#include "raft_impl.h"

/* ------------------------------------------------------------------ */
/* tick and proposals                                                  */

void raft_tick(raft_t *r)
{
    if (!r || r->in_ready)
        return;
    raft_expire_read_batches(r);
    if (r->role == RAFT_LEADER) {
        raft_tick_leader(r);
        return;
    }
    r->ticks_since_leader++;
    if (r->election_elapsed < UINT_MAX) /* a learner's timer runs on */
        r->election_elapsed++;
    if (r->election_elapsed >= r->election_timeout) {
        /* A node that cannot campaign (a learner, or one outside its own
         * configuration) lets its timer run on, so that its lease on a
         * silent leader expires and it answers (pre-)votes again: it may
         * have been promoted without knowing it yet. */
        if (promotable(r)) {
            raft_reset_election_timer(r);
            raft_campaign(r, r->o.pre_vote, 0);
        }
    }
}

int raft_propose(raft_t *r, const void *data, uint32_t len, uint64_t *index, uint64_t *term)
{
    if (!r || (len && !data))
        return RAFT_EINVAL;
    if (!leader_ready(r))
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    if (len > r->o.max_entry_bytes)
        return RAFT_ETOOBIG;
    int rc = raft_log_append(r, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rc != RAFT_OK)
        return rc;
    r->bcast_pending = 1;
    if (index)
        *index = last_index(r);
    if (term)
        *term = r->term;
    return RAFT_OK;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

void raft_options_default(raft_options *o)
{
    memset(o, 0, sizeof *o);
    o->election_ticks = 10;
    o->heartbeat_ticks = 1;
    o->max_inflight = 64;
    o->max_msg_bytes = 1024 * 1024;
    o->max_entry_bytes = 8 * 1024 * 1024;
    o->snapshot_trail = 1000;
    o->pre_vote = 1;
    o->check_quorum = 1;
    o->auto_promote = 1;
}

raft_t *raft_new(const raft_options *o)
{
    if (!o || o->id == 0 || o->election_ticks < 2 || o->heartbeat_ticks == 0 ||
        o->heartbeat_ticks >= o->election_ticks || o->max_inflight == 0 ||
        o->max_inflight > MAX_INFLIGHT_CAP || o->max_msg_bytes == 0)
        return NULL;
    raft_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = *o;
    r->id = o->id;
    r->rng = o->seed ^ (o->id * 0x2545f4914f6cdd1dULL);
    r->infl = calloc((size_t)RAFT_MAX_NODES * o->max_inflight, sizeof(uint64_t));
    r->infl_scratch = calloc((size_t)RAFT_MAX_NODES * o->max_inflight, sizeof(uint64_t));
    if (!r->infl || !r->infl_scratch) {
        free(r->infl);
        free(r->infl_scratch);
        free(r);
        return NULL;
    }
    r->role = RAFT_FOLLOWER;
    r->unstable_from = 1;
    raft_reset_election_timer(r);
    /* READ_INDEX batch ids start at a point drawn from the seed (without
     * touching the election-timeout stream), so that a late answer to a
     * batch of an earlier incarnation does not match a new one. */
    uint64_t z = o->seed ^ (o->id * 0x9e3779b97f4a7c15ULL) ^ 0x7265616462617463ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    r->fwd_batch = (z ^ (z >> 31)) >> 1;
    return r;
}

static void msgs_free(vec *v)
{
    raft_msg *ms = v->p;
    for (size_t i = 0; i < v->n; i++) {
        free(ms[i].entries);
        free(ms[i].conf);
    }
    v->n = 0;
}

static void vec_free(vec *v)
{
    free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

static void garbage_free(raft_t *r)
{
    uint8_t **g = r->garbage.p;
    for (size_t i = 0; i < r->garbage.n; i++)
        free(g[i]);
    r->garbage.n = 0;
}

static void chunks_free(raft_t *r)
{
    raft_chunk *c = r->chunks.p;
    for (size_t i = 0; i < r->chunks.n; i++)
        free((void *)c[i].data);
    r->chunks.n = 0;
}

void raft_free(raft_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_ents; i++)
        free(r->ents[i].data);
    free(r->ents);
    msgs_free(&r->msgs);
    chunks_free(r);
    garbage_free(r);
    vec_free(&r->msgs);
    vec_free(&r->chunks);
    vec_free(&r->loads);
    vec_free(&r->runs);
    vec_free(&r->ev_confs);
    vec_free(&r->garbage);
    vec_free(&r->reads);
    vec_free(&r->reads_failed);
    vec_free(&r->reads_pending);
    vec_free(&r->fwd_reads);
    free(r->infl);
    free(r->infl_scratch);
    free(r);
}

int raft_restore(raft_t *r, const raft_hard_state *hs, const raft_snap_meta *snap,
                 const raft_entry *entries, size_t n_entries, uint64_t applied)
{
    if (!r || r->in_ready || last_index(r) != 0 || r->term != 0)
        return RAFT_EINVAL;
    if (n_entries && !entries)
        return RAFT_EINVAL;
    uint64_t base = snap ? snap->index : 0;
    uint64_t bterm = snap ? snap->term : 0;
    uint64_t hterm = hs ? hs->term : 0;
    if (snap && snap->index && (!raft_conf_valid(&snap->conf) || snap->term == 0))
        return RAFT_EINVAL;
    uint64_t prev_term = bterm;
    for (size_t i = 0; i < n_entries; i++) {
        const raft_entry *e = &entries[i];
        if (e->index != base + 1 + i || e->term < prev_term || e->term > hterm ||
            e->type > RAFT_ENTRY_CONFIG || (e->len && !e->data))
            return RAFT_EINVAL;
        prev_term = e->term;
    }
    if (applied < base || applied > base + n_entries)
        return RAFT_EINVAL;
    if (hs) {
        r->term = hs->term;
        r->vote = hs->vote;
        r->hs_saved = *hs;
    }
    if (snap) {
        r->snap = *snap;
        if (!snap->index)
            memset(&r->snap, 0, sizeof r->snap);
    }
    r->base_index = base;
    r->base_term = bterm;
    r->disk_index = base;
    r->disk_term = bterm;
    for (size_t i = 0; i < n_entries; i++) {
        int rc = raft_log_append(r, entries[i].term, entries[i].type, entries[i].data,
                                 entries[i].len);
        if (rc != RAFT_OK)
            return rc;
    }
    r->stable = last_index(r);
    r->unstable_from = last_index(r) + 1;
    r->commit = applied;
    r->handed = applied;
    r->applied = applied;
    raft_conf_recompute(r);
    raft_log_evict(r);
    garbage_free(r);
    return RAFT_OK;
}

int raft_bootstrap(raft_t *r, const raft_config *conf)
{
    if (!r || r->in_ready || !raft_conf_valid(conf))
        return RAFT_EINVAL;
    if (last_index(r) != 0 || r->base_index != 0 || r->term != 0)
        return RAFT_EINVAL;
    uint8_t buf[4 + RAFT_MAX_NODES * (11 + RAFT_META_MAX)];
    size_t n = raft_config_encode(conf, buf, sizeof buf);
    if (n == 0)
        return RAFT_EINVAL;
    r->term = 1;
    return raft_log_append(r, 1, RAFT_ENTRY_CONFIG, buf, (uint32_t)n);
}

/* ------------------------------------------------------------------ */
/* ready / advance                                                     */

static uint64_t commit_visible(const raft_t *r)
{
    uint64_t l = last_index(r);
    return r->commit < l ? r->commit : l;
}

int raft_has_ready(const raft_t *r)
{
    if (!r || r->in_ready)
        return 0;
    return r->term != r->hs_saved.term || r->vote != r->hs_saved.vote || r->snap_install_pending ||
           r->pending_trunc || r->unstable_from <= last_index(r) || r->chunks.n || r->msgs.n ||
           r->bcast_pending || commit_visible(r) > r->handed || r->reads.n || r->reads_failed.n ||
           r->compact_to || r->loads.n;
}

void raft_ready_get(raft_t *r, raft_ready *rd)
{
    memset(rd, 0, sizeof *rd);
    if (!r || r->in_ready)
        return;
    if (r->bcast_pending && r->role == RAFT_LEADER)
        raft_broadcast_append(r);
    r->bcast_pending = 0;
    if (r->term != r->hs_saved.term || r->vote != r->hs_saved.vote) {
        rd->hs_changed = 1;
        rd->hs.term = r->term;
        rd->hs.vote = r->vote;
    }
    if (r->snap_install_pending) {
        rd->snap_install = 1;
        rd->snap = r->snap;
    }
    rd->truncate_from = r->pending_trunc;
    r->pending_trunc = 0;
    int hold = 0;
#ifdef MUTANT_ACK_BEFORE_PERSIST
    hold = r->mut_hold;
    r->mut_hold = 0;
#endif
    if (!hold && r->unstable_from <= last_index(r)) {
        rd->entries = entry_at(r, r->unstable_from);
        rd->n_entries = (size_t)(last_index(r) - r->unstable_from + 1);
        r->unstable_from = last_index(r) + 1;
    }
    rd->chunks = r->chunks.p;
    rd->n_chunks = r->chunks.n;
    rd->msgs = r->msgs.p;
    rd->n_msgs = r->msgs.n;
    uint64_t cv = commit_visible(r);
    if (hold && cv >= r->unstable_from)
        cv = r->unstable_from - 1;
    if (cv > r->handed) {
        rd->committed = entry_at(r, r->handed + 1);
        rd->n_committed = (size_t)(cv - r->handed);
        r->handed = cv;
    }
    rd->reads = r->reads.p;
    rd->n_reads = r->reads.n;
    rd->reads_failed = r->reads_failed.p;
    rd->n_reads_failed = r->reads_failed.n;
    rd->compact_to = r->compact_to;
    r->compact_to = 0;
    rd->loads = r->loads.p;
    rd->n_loads = r->loads.n;
    r->round_open = 0;
#ifndef MUTANT_READ_BATCH_REOPEN
    r->fwd_open = 0; /* its READ_INDEX leaves now: the batch is closed */
#endif
    r->in_ready = 1;
}

void raft_advance(raft_t *r, const raft_ready *rd)
{
    if (!r || !r->in_ready)
        return;
    r->in_ready = 0;
    msgs_free(&r->msgs);
    chunks_free(r);
    garbage_free(r);
    r->reads.n = 0;
    r->reads_failed.n = 0;
    r->loads.n = 0;
    if (rd->hs_changed)
        r->hs_saved = rd->hs;
    if (rd->snap_install) {
        r->snap_install_pending = 0;
        if (r->stable < rd->snap.index)
            r->stable = rd->snap.index;
        if (r->applied < rd->snap.index)
            r->applied = rd->snap.index;
    }
    if (rd->n_entries) {
        uint64_t l = rd->entries[rd->n_entries - 1].index;
        if (l > r->stable && l <= last_index(r))
            r->stable = l;
    }
    if (rd->n_committed)
        r->applied = rd->committed[rd->n_committed - 1].index;
    if (r->role == RAFT_LEADER) {
        progress *self = raft_pr_find(r, r->id);
        if (self)
            self->match = r->stable;
        raft_maybe_commit(r);
        raft_advance_reads(r);
    }
    raft_log_evict(r);
}

/* ------------------------------------------------------------------ */
/* inspection                                                          */

void raft_status(const raft_t *r, raft_status_info *st)
{
    memset(st, 0, sizeof *st);
    if (!r)
        return;
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = r->disk_index + 1;
    st->mem_first_index = r->base_index + 1;
    st->last_index = last_index(r);
    st->snap_index = r->snap.index;
    st->snap_term = r->snap.term;
    st->ticks_since_leader = r->ticks_since_leader;
    st->transferee = r->transferee;
    st->log_bytes = r->log_bytes;
    st->appended_bytes = r->appended_bytes;
    if (r->role == RAFT_LEADER) {
        st->n_progress = r->n_prs;
        for (size_t i = 0; i < r->n_prs; i++) {
            const progress *p = &r->prs[i];
            raft_progress_info *pi = &st->progress[i];
            pi->id = p->id;
            pi->match = pr_match(r, p);
            pi->next = p->next;
            pi->state = p->state;
            pi->inflight = p->infl_count;
            /* for status: heard from in this check-quorum period or the
             * last, so a check just after the reset does not see a
             * follower that answers every heartbeat as silent */
            pi->recent_active = p->id == r->id ? 1 : p->recent_active || p->prev_active;
        }
    }
}

const raft_config *raft_config_get(const raft_t *r)
{
    return r ? &r->conf : NULL;
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "precandidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "unknown";
}

const char *raft_strerror(int err)
{
    switch (err) {
    case RAFT_OK: return "ok";
    case RAFT_ENOTLEADER: return "not the leader";
    case RAFT_EBUSY: return "a membership change or transfer is in progress";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_ETOOBIG: return "entry too big";
    case RAFT_ENOQUORUM: return "the change would leave no voter";
    case RAFT_ETRANSFER: return "leadership transfer in progress";
    }
    return "unknown error";
}
