/*
 * raft_impl.h - private to the Raft core (lib/raft*.c): the node's state
 * (struct raft), the leader's per-member progress, pending reads, and the
 * functions the core's files call in each other. Nothing outside lib/raft*.c
 * includes it; the public API and the persistence contract are raft.h.
 *
 * The core is split by concern, after etcd-io/raft and canonical/raft:
 *   raft.c            public API: lifecycle, tick, propose, ready/advance
 *   raft_config.c     membership: encoding, validation, one-server changes
 *   raft_log.c        in-memory log: append, truncate, compact, trail
 *   raft_progress.c   the leader's view of each member; the commit rule
 *   raft_elect.c      roles, (pre-)votes, check-quorum, lease, transfer
 *   raft_replicate.c  what the leader sends: appends, heartbeats, chunks
 *   raft_read.c       ReadIndex, leader and follower side
 *   raft_recv.c       raft_step: validation, terms, dispatch by type
 *
 * Like all of the core: no file-scope mutable state, no I/O, no clock.
 * Internal functions shared between these files carry the raft_ prefix
 * (they are external symbols of libkeyval.a) and are declared here; small
 * accessors are static inline below.
 */
#ifndef KEYVAL_RAFT_IMPL_H
#define KEYVAL_RAFT_IMPL_H

#include "raft.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

#define MAX_READS 4096 /* pending ReadIndex requests per node */
/* A follower fails a READ_INDEX batch still unanswered after this many
 * election timeouts (the message or its answer was lost): the caller
 * retries instead of waiting for its own deadline. */
#define READ_BATCH_EXPIRY 2
#define MAX_INFLIGHT_CAP 4096

typedef struct progress {
    uint64_t id;
    uint64_t match, next;
    int state;
    int paused;           /* probe: one APPEND outstanding */
    int recent_active;    /* heard from since the last check-quorum */
    int prev_active;      /* recent_active as the last check-quorum found it */
    unsigned stall;       /* heartbeats without progress while replicating */
    int heard;            /* a response arrived since the last heartbeat */
    unsigned probe_wait;  /* heartbeats answered while a probe is unanswered */
    uint64_t match_at_hb; /* match at the last heartbeat */
    uint64_t ctx_acked;   /* highest heartbeat round acknowledged */
    /* inflight APPENDs: ring of the last index each one carries */
    unsigned infl_head, infl_count;
    /* snapshot transfer */
    uint64_t snap_index;  /* snapshot being sent */
    uint64_t snap_offset; /* next offset to send */
    unsigned snap_wait;   /* ticks since the last chunk went out */
    /* entries being read back from storage for it (rd.loads) */
    uint64_t load_id;   /* 0: none asked */
    unsigned load_wait; /* heartbeats since it was asked */
} progress;

/* Terms of entries held in storage only: from index on, term (until the
 * next run). */
typedef struct term_run {
    uint64_t index, term;
} term_run;

/* A CONFIG entry held in storage only, decoded (raft_conf_at needs it). */
typedef struct ev_conf {
    uint64_t index;
    raft_config conf;
} ev_conf;

typedef struct pending_read {
    uint64_t ctx;   /* caller's id (local) or request id (remote) */
    uint64_t from;  /* 0: local request; else follower to answer */
    uint64_t index; /* commit index when recorded */
    uint64_t round; /* heartbeat round that confirms it (0: not recorded) */
} pending_read;

/* Follower side of ReadIndex: a read forwarded to the leader. Reads join
 * the open batch until the ready that carries its READ_INDEX is handed
 * out; then the batch is closed and only its answer resolves them. */
typedef struct fwd_read {
    uint64_t ctx;   /* caller's id */
    uint64_t batch; /* id of the READ_INDEX that carries it (msg ctx) */
    uint64_t asked; /* fwd_clock when the batch was opened */
} fwd_read;

typedef struct vec {
    void *p;
    size_t n, cap;
} vec;

struct raft {
    raft_options o;
    uint64_t id;
    uint64_t rng;

    /* persistent state and what storage has of it */
    uint64_t term, vote;
    raft_hard_state hs_saved;

    int role;
    uint64_t leader;
    unsigned election_elapsed; /* ticks since reset (leader: for check-quorum) */
    unsigned election_timeout; /* randomized in [e, 2e) */
    unsigned heartbeat_elapsed;
    uint64_t ticks_since_leader;

    /* the log: ents[0] has index base_index + 1. Storage holds the log
     * after disk_index; entries in (disk_index, base_index] are in
     * storage only (evicted under log_mem_bytes: applied and durable),
     * their terms in runs and their CONFIG entries in ev_confs. */
    raft_entry *ents;
    size_t n_ents, cap_ents;
    uint64_t base_index, base_term;
    uint64_t disk_index, disk_term;
    vec runs;     /* term_run, ascending index, first at disk_index + 1 */
    vec ev_confs; /* ev_conf with index in (snap.index, base_index] */
    size_t log_bytes;
    uint64_t appended_bytes;
    uint64_t load_seq;      /* last rd.loads id */
    uint64_t stable;        /* entries <= stable are durable (confirmed by advance) */
    uint64_t unstable_from; /* first index not yet handed to storage */
    uint64_t pending_trunc; /* storage must delete >= this (0 none) */

    uint64_t commit;
    uint64_t handed;  /* last index handed out in rd.committed */
    uint64_t applied; /* confirmed by advance */

    /* snapshot: the latest one this node has (taken or installed) */
    raft_snap_meta snap;
    int snap_install_pending;
    uint64_t compact_to;

    /* incoming snapshot being staged (follower) */
    int staging;
    raft_snap_meta stage;
    uint64_t stage_offset;

    /* configuration: the latest CONFIG entry in the log, else snap.conf */
    raft_config conf;
    uint64_t conf_index;

    /* leader / candidate */
    progress prs[RAFT_MAX_NODES];
    uint64_t *infl;         /* RAFT_MAX_NODES rings of max_inflight */
    uint64_t *infl_scratch; /* same size, for raft_progress_rebuild */
    size_t n_prs;
    uint64_t votes[RAFT_MAX_NODES]; /* ids that granted */
    uint64_t rejects[RAFT_MAX_NODES];
    size_t n_votes, n_rejects;
    uint64_t transferee;
    unsigned transfer_elapsed;
    int bcast_pending;

    /* ReadIndex */
    uint64_t hb_round;   /* current heartbeat round id */
    int round_open;      /* a round started since the last ready */
    vec reads_pending;   /* pending_read, leader */
    vec fwd_reads;       /* fwd_read, follower, oldest batch first */
    uint64_t fwd_batch;  /* id of the latest READ_INDEX batch */
    int fwd_open;        /* fwd_batch not handed out yet: reads join it */
    uint64_t fwd_clock;  /* ticks, to expire unanswered batches */
    uint64_t fwd_opened; /* fwd_clock when fwd_batch was opened */

    /* output accumulated for the next ready */
    vec msgs;         /* raft_msg */
    vec chunks;       /* raft_chunk (data owned) */
    vec loads;        /* raft_load */
    vec reads;        /* raft_read */
    vec reads_failed; /* uint64_t */
    vec garbage;      /* uint8_t * freed at the next advance */
    int in_ready;
#ifdef MUTANT_ACK_BEFORE_PERSIST
    int mut_hold;
#endif
};

/* ------------------------------------------------------------------ */
/* functions the core's files share, by defining file                  */

/* raft_config.c */
int raft_conf_valid(const raft_config *c);
void raft_conf_recompute(raft_t *r);
void raft_conf_at(const raft_t *r, uint64_t i, raft_config *out);
void raft_maybe_step_down_removed(raft_t *r);
void raft_maybe_auto_promote(raft_t *r);

/* raft_log.c */
int raft_vec_push(vec *v, const void *item, size_t size);
int raft_log_append(raft_t *r, uint64_t term, uint8_t type, const uint8_t *data, uint32_t len);
void raft_log_truncate(raft_t *r, uint64_t from);
void raft_log_reset(raft_t *r, uint64_t index, uint64_t term);
void raft_log_evict(raft_t *r);
uint64_t raft_disk_term(const raft_t *r, uint64_t i);
uint64_t raft_last_with_term_le(const raft_t *r, uint64_t index, uint64_t term);
const raft_config *raft_ev_conf_at(const raft_t *r, uint64_t i, uint64_t *at);

/* raft_progress.c */
progress *raft_pr_find(raft_t *r, uint64_t id);
void raft_pr_init(raft_t *r, progress *p, uint64_t id);
void raft_infl_reset(progress *p);
void raft_progress_rebuild(raft_t *r);
void raft_infl_add(raft_t *r, progress *p, uint64_t last);
void raft_infl_free_to(raft_t *r, progress *p, uint64_t idx);
void raft_pr_become_probe(progress *p);
void raft_pr_become_replicate(progress *p);
void raft_maybe_commit(raft_t *r);

/* raft_elect.c */
void raft_reset_election_timer(raft_t *r);
void raft_set_leader(raft_t *r, uint64_t leader);
void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader);
void raft_campaign(raft_t *r, int pre, int transfer);
void raft_check_quorum(raft_t *r);
void raft_transfer_check(raft_t *r, progress *p);
void raft_handle_vote(raft_t *r, const raft_msg *m);
void raft_handle_vote_resp(raft_t *r, const raft_msg *m);
int raft_in_lease(const raft_t *r);

/* raft_replicate.c */
raft_msg *raft_msg_new(raft_t *r, int type, uint64_t to);
void raft_send_snap_chunk(raft_t *r, progress *p);
void raft_send_append(raft_t *r, progress *p);
void raft_broadcast_append(raft_t *r);
void raft_send_heartbeat(raft_t *r, progress *p);
void raft_tick_leader(raft_t *r);

/* raft_read.c */
void raft_fail_all_reads(raft_t *r);
void raft_advance_reads(raft_t *r);
void raft_handle_read_index(raft_t *r, const raft_msg *m);
void raft_handle_read_index_resp(raft_t *r, const raft_msg *m);
void raft_expire_read_batches(raft_t *r);

/* ------------------------------------------------------------------ */
/* small accessors                                                     */

static inline int is_voter(const raft_config *c, uint64_t id)
{
    const raft_node *n = raft_config_find(c, id);
    return n && n->voter;
}

static inline size_t n_voters(const raft_config *c)
{
    size_t k = 0;
    for (uint32_t i = 0; i < c->n; i++)
        k += c->nodes[i].voter;
    return k;
}

static inline size_t quorum(const raft_t *r)
{
    return n_voters(&r->conf) / 2 + 1;
}

static inline uint64_t last_index(const raft_t *r)
{
    return r->base_index + r->n_ents;
}

static inline raft_entry *entry_at(const raft_t *r, uint64_t i)
{
    if (i <= r->base_index || i > last_index(r))
        return NULL;
    return &r->ents[i - r->base_index - 1];
}

/* Is the term of index i known (0, the compaction point, in storage
 * only, or held in memory)? */
static inline int term_known(const raft_t *r, uint64_t i)
{
    return i == 0 || (i >= r->disk_index && i <= last_index(r));
}

static inline uint64_t term_at(const raft_t *r, uint64_t i)
{
    if (i == 0)
        return 0;
    if (i == r->base_index)
        return r->base_term;
    if (i < r->base_index)
        return raft_disk_term(r, i);
    const raft_entry *e = entry_at(r, i);
    return e ? e->term : 0;
}

static inline uint64_t last_term(const raft_t *r)
{
    return term_at(r, last_index(r));
}

static inline uint64_t *infl_ring(raft_t *r, size_t slot)
{
    return r->infl + slot * r->o.max_inflight;
}

static inline int infl_full(raft_t *r, progress *p)
{
    return p->infl_count >= r->o.max_inflight;
}

/* A node campaigns only if it is a voter of its latest configuration (a
 * removed node or a learner never disrupts the cluster). */
static inline int promotable(const raft_t *r)
{
    return is_voter(&r->conf, r->id);
}

/* The leader's own log counts only once storage confirmed it (persistence
 * contract): its match is r->stable, set in raft_advance. */
static inline uint64_t pr_match(const raft_t *r, const progress *p)
{
    return p->id == r->id ? r->stable : p->match;
}

static inline int committed_in_term(const raft_t *r)
{
    return term_at(r, r->commit) == r->term;
}

static inline raft_msg *reply(raft_t *r, const raft_msg *m, int type)
{
    return raft_msg_new(r, type, m->from);
}

static inline int leader_ready(const raft_t *r)
{
    return r && !r->in_ready && r->role == RAFT_LEADER;
}

#endif
