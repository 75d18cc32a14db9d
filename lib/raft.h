/*
 * raft.h - the Raft consensus core of keyval, as a pure state machine.
 *
 * The core does no I/O, reads no clock and keeps no global state. Everything
 * it needs comes in through the calls below; everything it wants done comes
 * out of raft_ready() as one batch of work. The same core runs inside raftd
 * and, many times over, inside the seeded simulator (tests/raft-sim.c).
 *
 * Node ids are nonzero 64-bit numbers. The application attaches an opaque
 * text "meta" to every member (raftd stores "NAME RADDR HADDR" there); the
 * core only stores and replicates it.
 *
 * ---------------------------------------------------------------------------
 * THE PERSISTENCE CONTRACT
 *
 * The caller drives the core with this loop:
 *
 *     raft_tick / raft_step / raft_propose / raft_read_index / ...   (inputs)
 *     while (raft_has_ready(r)) {
 *         raft_ready rd;
 *         raft_ready_get(r, &rd);
 *         1. PERSIST, atomically and durably (one transaction, fsync):
 *              - rd.hs if rd.hs_changed           (term, vote)
 *              - if rd.snap_install: the staged snapshot rd.snap replaces the
 *                state machine and the whole log; snapshot metadata saved;
 *                the applied index becomes rd.snap.index
 *              - if rd.truncate_from: delete log entries with index >=
 *                rd.truncate_from
 *              - rd.entries[0..n_entries): append to the log
 *              - rd.chunks: incoming snapshot chunks, written to the staging
 *                area at their offsets (a chunk with offset 0 restarts it).
 *                Write them FIRST: when rd.snap_install is set, the final
 *                chunk of that snapshot is in the same ready's rd.chunks,
 *                so stage the chunks, then install, then truncate/append.
 *            Applying rd.committed may happen in the same transaction.
 *         2. SEND rd.msgs (only after step 1 is durable; this is what makes
 *            "a follower never acknowledges what it has not persisted" and
 *            "a node never votes without persisting the vote" hold: the core
 *            puts acknowledgements and votes in the same batch as the state
 *            they depend on, never in an earlier one).
 *            Messages of type RAFT_MSG_SNAP arrive with data == NULL: the
 *            caller fills data/len/last with the bytes of its current
 *            snapshot (the one whose index is msg.snap_index) starting at
 *            msg.offset, at most RAFT_SNAP_CHUNK bytes. If it no longer has
 *            that snapshot it drops the message.
 *            rd.loads (only with log_mem_bytes set): the log entries
 *            [from, upto] that a follower needs are no longer held in
 *            memory. Read them from the log in storage, in order, as many
 *            as fit in max_bytes of data (at least one), and after
 *            raft_advance hand them back with raft_entries_loaded(r, id,
 *            ...); the core sends them. Answer with n = 0 when the log no
 *            longer has entry `from`. A load never answered is given up
 *            after a few heartbeats and asked again.
 *         3. APPLY rd.committed in order (entries of type RAFT_ENTRY_NORMAL
 *            change the state machine; NOOP and CONFIG entries only advance
 *            the applied index). The applied index must be stored together
 *            with the state it describes.
 *         4. ANSWER rd.reads whose index <= applied index now; keep the
 *            others until the applied index reaches them. Fail rd.reads_failed
 *            (or ask again). A follower's READ_INDEX for the reads asked
 *            since the last ready is in rd.msgs: reads asked from here on
 *            go in a later batch (see raft_read_index).
 *         5. raft_advance(r, &rd)  -- tells the core all of the above is done.
 *     }
 *
 * All pointers inside a raft_ready stay valid until raft_advance() and no
 * other raft_* call may be made between raft_ready_get() and raft_advance()
 * except raft_status()/raft_config_get()/raft_entry_term().
 * A crash at any point loses only what was not persisted in step 1; on
 * restart the caller rebuilds the core with raft_new() + raft_restore().
 *
 * Commit index is not persisted; it is recovered from the leader.
 *
 * Snapshots: when the caller has captured the state machine at applied index
 * i (and can serve its bytes by offset), it calls raft_snapshot_taken(r, i).
 * The core then forgets log entries <= i - trail (fewer kept when their data
 * exceeds snapshot_trail_bytes) and reports compact_to in a later ready so
 * storage can delete them too.
 * ---------------------------------------------------------------------------
 */
#ifndef KEYVAL_RAFT_H
#define KEYVAL_RAFT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_NODES 9
#define RAFT_META_MAX 256            /* bytes of meta per node, including NUL */
#define RAFT_SNAP_CHUNK (256 * 1024) /* max snapshot bytes in one message */
/* What an entry held in memory costs beyond its data, for log_mem_bytes:
 * its raft_entry slot and the allocator's header, rounded up. */
#define RAFT_ENTRY_OVERHEAD 64

/* Error codes (negative). */
enum {
    RAFT_OK = 0,
    RAFT_ENOTLEADER = -1, /* this node is not the leader */
    RAFT_EBUSY = -2,      /* a membership change or transfer is in progress */
    RAFT_EINVAL = -3,     /* bad argument (unknown node, bad meta, ...) */
    RAFT_ENOMEM = -4,     /* allocation failed */
    RAFT_ETOOBIG = -5,    /* entry or batch exceeds configured limits */
    RAFT_ENOQUORUM = -6,  /* a removal would leave no voter */
    RAFT_ETRANSFER = -7,  /* leadership transfer in progress, try later */
};

/* Node roles. */
enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
};

/* Log entry types. */
enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application command */
    RAFT_ENTRY_NOOP = 1,   /* appended by a new leader */
    RAFT_ENTRY_CONFIG = 2, /* data = raft_config_encode() of the new config */
};

typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;
    uint32_t len;
    uint8_t *data; /* len bytes; may be NULL when len == 0 */
} raft_entry;

typedef struct raft_node {
    uint64_t id;
    uint8_t voter;            /* 1 voter, 0 learner (non-voting) */
    char meta[RAFT_META_MAX]; /* NUL-terminated application text */
} raft_node;

typedef struct raft_config {
    uint32_t n;
    raft_node nodes[RAFT_MAX_NODES];
} raft_config;

typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote; /* 0: no vote in this term */
} raft_hard_state;

typedef struct raft_snap_meta {
    uint64_t index;
    uint64_t term;
    raft_config conf; /* configuration as of index */
} raft_snap_meta;

/* Message types. */
enum raft_msg_type {
    RAFT_MSG_APPEND = 1, /* AppendEntries (also heartbeats: no entries) */
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3, /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5,
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_SNAP = 7, /* InstallSnapshot chunk */
    RAFT_MSG_SNAP_RESP = 8,
    RAFT_MSG_TIMEOUT_NOW = 9, /* leadership transfer: start election now */
    RAFT_MSG_READ_INDEX = 10, /* follower asks leader for a read index,
                                   for a whole batch of reads */
    RAFT_MSG_READ_INDEX_RESP = 11,
    RAFT_MSG_TYPE_MAX = 11,
};

typedef struct raft_msg {
    uint8_t type;
    uint64_t from, to;
    uint64_t term;

    /* APPEND: prev index/term. VOTE/PREVOTE: last log index/term.
     * APPEND_RESP: on success the last index now matched; on reject the
     * index that was rejected. SNAP_RESP: see below. */
    uint64_t index;
    uint64_t log_term;
    uint64_t commit; /* APPEND: leader's commit index */

    uint8_t reject;      /* *_RESP: 1 rejected / vote not granted */
    uint64_t hint_index; /* APPEND_RESP reject: follower's hint */
    uint64_t hint_term;  /* APPEND_RESP reject: term at hint_index (0 none) */
    uint8_t transfer;    /* VOTE: campaign caused by leadership transfer */

    uint64_t ctx; /* APPEND/APPEND_RESP: heartbeat round id for
                              ReadIndex; READ_INDEX(_RESP): batch id (the
                              follower's, echoed by the leader; never 0) */

    uint32_t n_entries; /* APPEND */
    raft_entry *entries;

    /* SNAP: snapshot at snap_index/snap_term with configuration conf;
     * this message carries bytes [offset, offset+len); last = 1 on the
     * final chunk. SNAP_RESP: reject=0 and offset = next expected offset,
     * or last = 1 and index = follower's last log index when installed
     * (or when no install was needed); reject = 1: restart from 0. */
    uint64_t snap_index, snap_term;
    uint64_t offset;
    uint8_t last;
    uint32_t len;
    uint8_t *data;
    raft_config *conf; /* SNAP only; NULL elsewhere */
} raft_msg;

typedef struct raft_read {
    uint64_t ctx;   /* the caller's id from raft_read_index() */
    uint64_t index; /* answer once applied index >= index */
} raft_read;

typedef struct raft_chunk {
    uint64_t snap_index, snap_term;
    uint64_t offset;
    uint32_t len;
    const uint8_t *data;
    uint8_t last;
} raft_chunk;

/* Entries a follower needs that are held in storage only (see rd.loads). */
typedef struct raft_load {
    uint64_t id;      /* pass back to raft_entries_loaded */
    uint64_t to;      /* the follower they are for */
    uint64_t from;    /* first index to read */
    uint64_t upto;    /* last index that may be read */
    size_t max_bytes; /* data bytes to read at most (at least one entry) */
} raft_load;

typedef struct raft_ready {
    int hs_changed;
    raft_hard_state hs;

    int snap_install; /* install the staged snapshot described by snap */
    raft_snap_meta snap;

    uint64_t truncate_from; /* 0: none */
    raft_entry *entries;
    size_t n_entries;

    raft_chunk *chunks;
    size_t n_chunks;

    raft_msg *msgs;
    size_t n_msgs;

    raft_entry *committed;
    size_t n_committed;

    raft_read *reads;
    size_t n_reads;
    uint64_t *reads_failed; /* ctx of reads that cannot be served here */
    size_t n_reads_failed;

    uint64_t compact_to; /* storage may delete entries <= compact_to; 0 none */

    raft_load *loads; /* entries to read back from storage (step 2) */
    size_t n_loads;
} raft_ready;

typedef struct raft_options {
    uint64_t id;                 /* this node's id, nonzero */
    uint64_t seed;               /* random source for election timeouts and
                                      ReadIndex batch ids: use a fresh one on
                                      every start (raftd reads /dev/urandom) */
    unsigned election_ticks;     /* default 10; timeout is random in [e, 2e) */
    unsigned heartbeat_ticks;    /* default 1 */
    unsigned max_inflight;       /* AppendEntries in flight per peer, default 64 */
    size_t max_msg_bytes;        /* entry bytes per AppendEntries, default 1 MiB */
    size_t max_entry_bytes;      /* largest proposal accepted, default 8 MiB */
    uint64_t snapshot_trail;     /* entries kept behind a snapshot, default 1000 */
    size_t snapshot_trail_bytes; /* and at most these bytes of them; 0 no limit */
    size_t log_mem_bytes;        /* hold at most this much log in memory
                                      (data + RAFT_ENTRY_OVERHEAD per entry):
                                      older applied entries stay in storage
                                      only and are read back for a follower
                                      that needs them (rd.loads); 0 hold
                                      the whole log, the default */
    int pre_vote;                /* default 1 */
    int check_quorum;            /* default 1 */
    int auto_promote;            /* promote caught-up learners, default 1 */
} raft_options;

typedef struct raft_progress_info {
    uint64_t id;
    uint64_t match, next;
    int state; /* 0 probe, 1 replicate, 2 snapshot */
    unsigned inflight;
    int recent_active; /* heard from within the last one or two election
                            timeouts (this check-quorum period or the last) */
} raft_progress_info;

typedef struct raft_status_info {
    uint64_t id;
    int role; /* enum raft_role */
    uint64_t term;
    uint64_t vote;
    uint64_t leader; /* 0: unknown */
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index;     /* first index of the log (in memory or storage) */
    uint64_t mem_first_index; /* first index held in memory */
    uint64_t last_index;
    uint64_t snap_index, snap_term;
    uint64_t ticks_since_leader; /* ticks since a leader was last heard */
    uint64_t transferee;         /* 0: no transfer in progress */
    size_t log_bytes;            /* bytes of entry data held in memory */
    uint64_t appended_bytes;     /* entry data appended since raft_new */
    size_t n_progress;
    raft_progress_info progress[RAFT_MAX_NODES]; /* leader only */
} raft_status_info;

typedef struct raft raft_t;

/* Defaults for every option; callers set id and seed, then adjust. */
void raft_options_default(raft_options *o);

/* Create a core. Returns NULL on bad options or out of memory. */
raft_t *raft_new(const raft_options *o);
void raft_free(raft_t *r);

/* Rebuild state from storage, before any other input. snap may be NULL
 * (no snapshot: log starts at index 1). entries are the persisted log
 * entries after snap->index, consecutive. applied is the index the
 * state machine has applied (>= snap->index). The core copies everything.
 * The configuration is the one of the last CONFIG entry in the log, else
 * the snapshot's. Returns RAFT_OK or RAFT_EINVAL / RAFT_ENOMEM. */
int raft_restore(raft_t *r, const raft_hard_state *hs, const raft_snap_meta *snap,
                 const raft_entry *entries, size_t n_entries, uint64_t applied);

/* Create a brand-new cluster with conf as its first configuration (entry 1,
 * term 1, type CONFIG). Only on an empty node. The entry comes out of the
 * next ready to persist. */
int raft_bootstrap(raft_t *r, const raft_config *conf);

/* One tick of logical time. */
void raft_tick(raft_t *r);

/* A message received from a peer. The core copies what it keeps.
 * Messages from unknown senders, with bad fields, or stale are ignored
 * (returns RAFT_EINVAL for malformed ones, RAFT_OK otherwise). */
int raft_step(raft_t *r, const raft_msg *m);

/* Propose an application command on the leader. On success *index and
 * *term say where it will sit; it is committed when an entry with that
 * index AND term comes out in rd.committed (a different term at that index
 * means it was lost). Returns RAFT_ENOTLEADER on a non-leader,
 * RAFT_ETRANSFER during a leadership transfer, RAFT_ETOOBIG. */
int raft_propose(raft_t *r, const void *data, uint32_t len, uint64_t *index, uint64_t *term);

/* Ask for a linearizable read. ctx is the caller's id for the request.
 * The read comes back, exactly once, in rd.reads (with the index to wait
 * for) or in rd.reads_failed (no leader known, leadership lost, the leader
 * refused or did not answer). Returns RAFT_OK, RAFT_ENOTLEADER when no
 * leader is known, RAFT_EBUSY when MAX_READS (4096) reads already wait on
 * this node.
 *
 * Batching (ReadIndex, thesis 6.4):
 *  - On the leader, every read asked between two raft_ready_get() calls,
 *    its own and the READ_INDEX batches of followers, is confirmed by ONE
 *    heartbeat round started in that turn and released at the commit index
 *    recorded with it. A new leader first commits an entry of its term;
 *    the reads that waited for it share the round started then.
 *  - On a follower, the first read after a raft_ready_get() opens a batch
 *    and puts one READ_INDEX (ctx = batch id) to the leader in the next
 *    ready; every read asked before that ready is handed out joins it. The
 *    batch closes there: later reads go in the next batch, never in one
 *    already sent. So a follower sends at most one READ_INDEX per ready,
 *    and several batches may be in flight. The leader's answer releases
 *    every read of the batch at the leader's read index; a reject fails
 *    them all. A change of leader fails every batch (an answer from the
 *    old leader is then ignored); a batch unanswered after
 *    2 * election_ticks ticks is failed too, so the caller can retry. The
 *    caller may still time reads out by its own clock. */
int raft_read_index(raft_t *r, uint64_t ctx);

/* Membership changes, leader only, one at a time (RAFT_EBUSY otherwise; also
 * until the leader has committed an entry of its own term).
 * add: a new node joins as a learner (and is promoted automatically once
 * caught up when auto_promote is set); adding an existing id with different
 * meta updates its meta; same meta: no-op returning RAFT_OK with *index = 0.
 * remove: any node including the leader itself (the leader steps down once
 * the change commits). promote: learner -> voter now.
 * *index (may be NULL) receives the index of the CONFIG entry. */
int raft_add_node(raft_t *r, uint64_t id, const char *meta, uint64_t *index);
int raft_remove_node(raft_t *r, uint64_t id, uint64_t *index);
int raft_promote_node(raft_t *r, uint64_t id, uint64_t *index);

/* Hand leadership to a voter. The leader stops accepting proposals, brings
 * the target up to date and tells it to campaign at once. Aborted after an
 * election timeout. */
int raft_transfer_leader(raft_t *r, uint64_t id);

/* The entries read for rd.loads[k] (id = its id), after raft_advance;
 * n = 0 when they are not there. The core copies them and checks them
 * against its log; answers that no longer fit (the follower moved on, the
 * node is no longer leader) are ignored. */
int raft_entries_loaded(raft_t *r, uint64_t id, const raft_entry *entries, size_t n);

/* The caller captured the state machine at applied index `index`. */
int raft_snapshot_taken(raft_t *r, uint64_t index);

/* Work to do. */
int raft_has_ready(const raft_t *r);
void raft_ready_get(raft_t *r, raft_ready *rd);
void raft_advance(raft_t *r, const raft_ready *rd);

/* Inspection. */
void raft_status(const raft_t *r, raft_status_info *st);
const raft_config *raft_config_get(const raft_t *r); /* latest, maybe uncommitted */
/* Term of entry `index`, 0 when unknown (compacted or beyond the log). */
uint64_t raft_entry_term(const raft_t *r, uint64_t index);
const char *raft_role_name(int role);
const char *raft_strerror(int err);

/* Config (de)serialization, used for CONFIG entries and by callers that
 * store snapshot metadata. encode returns bytes written or 0 if cap is too
 * small; decode returns RAFT_OK or RAFT_EINVAL. */
size_t raft_config_encode(const raft_config *c, uint8_t *buf, size_t cap);
int raft_config_decode(raft_config *c, const uint8_t *buf, size_t len);
const raft_node *raft_config_find(const raft_config *c, uint64_t id);

#endif
