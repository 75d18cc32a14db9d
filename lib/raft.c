/*
 * raft.c - the Raft consensus core (see raft.h for the contract).
 *
 * A pure state machine: no I/O, no clock, no global mutable state. Each
 * Raft rule is enforced in one small function with a comment naming it
 * (section numbers refer to Ongaro's dissertation, "Consensus: Bridging
 * Theory and Practice", 2014).
 *
 * Deliberate bugs for the simulator's mutation test are selected with
 * -DMUTANT_xxx (see tests/sim-mutants.sh); a normal build has none.
 */
#include "raft.h"

#include <stdlib.h>
#include <limits.h>
#include <string.h>

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

#define MAX_READS 4096          /* pending ReadIndex requests per node */
/* A follower fails a READ_INDEX batch still unanswered after this many
 * election timeouts (the message or its answer was lost): the caller
 * retries instead of waiting for its own deadline. */
#define READ_BATCH_EXPIRY 2
#define MAX_INFLIGHT_CAP 4096

typedef struct progress {
    uint64_t id;
    uint64_t match, next;
    int state;
    int paused;            /* probe: one APPEND outstanding */
    int recent_active;     /* heard from since the last check-quorum */
    int prev_active;       /* recent_active as the last check-quorum found it */
    unsigned stall;        /* heartbeats without progress while replicating */
    int heard;             /* a response arrived since the last heartbeat */
    unsigned probe_wait;   /* heartbeats answered while a probe is unanswered */
    uint64_t match_at_hb;  /* match at the last heartbeat */
    uint64_t ctx_acked;    /* highest heartbeat round acknowledged */
    /* inflight APPENDs: ring of the last index each one carries */
    unsigned infl_head, infl_count;
    /* snapshot transfer */
    uint64_t snap_index;   /* snapshot being sent */
    uint64_t snap_offset;  /* next offset to send */
    unsigned snap_wait;    /* ticks since the last chunk went out */
} progress;

typedef struct pending_read {
    uint64_t ctx;    /* caller's id (local) or request id (remote) */
    uint64_t from;   /* 0: local request; else follower to answer */
    uint64_t index;  /* commit index when recorded */
    uint64_t round;  /* heartbeat round that confirms it (0: not recorded) */
} pending_read;

/* Follower side of ReadIndex: a read forwarded to the leader. Reads join
 * the open batch until the ready that carries its READ_INDEX is handed
 * out; then the batch is closed and only its answer resolves them. */
typedef struct fwd_read {
    uint64_t ctx;    /* caller's id */
    uint64_t batch;  /* id of the READ_INDEX that carries it (msg ctx) */
    uint64_t asked;  /* fwd_clock when the batch was opened */
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
    unsigned election_elapsed;   /* ticks since reset (leader: for check-quorum) */
    unsigned election_timeout;   /* randomized in [e, 2e) */
    unsigned heartbeat_elapsed;
    uint64_t ticks_since_leader;

    /* the log: ents[0] has index base_index + 1 */
    raft_entry *ents;
    size_t n_ents, cap_ents;
    uint64_t base_index, base_term;
    size_t log_bytes;
    uint64_t stable;        /* entries <= stable are durable (confirmed by advance) */
    uint64_t unstable_from; /* first index not yet handed to storage */
    uint64_t pending_trunc; /* storage must delete >= this (0 none) */

    uint64_t commit;
    uint64_t handed;        /* last index handed out in rd.committed */
    uint64_t applied;       /* confirmed by advance */

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
    uint64_t *infl;          /* RAFT_MAX_NODES rings of max_inflight */
    uint64_t *infl_scratch;  /* same size, for progress_rebuild */
    size_t n_prs;
    uint64_t votes[RAFT_MAX_NODES]; /* ids that granted */
    uint64_t rejects[RAFT_MAX_NODES];
    size_t n_votes, n_rejects;
    uint64_t transferee;
    unsigned transfer_elapsed;
    int bcast_pending;

    /* ReadIndex */
    uint64_t hb_round;       /* current heartbeat round id */
    int round_open;          /* a round started since the last ready */
    vec reads_pending;       /* pending_read, leader */
    vec fwd_reads;           /* fwd_read, follower, oldest batch first */
    uint64_t fwd_batch;      /* id of the latest READ_INDEX batch */
    int fwd_open;            /* fwd_batch not handed out yet: reads join it */
    uint64_t fwd_clock;      /* ticks, to expire unanswered batches */
    uint64_t fwd_opened;     /* fwd_clock when fwd_batch was opened */

    /* output accumulated for the next ready */
    vec msgs;                /* raft_msg */
    vec chunks;              /* raft_chunk (data owned) */
    vec reads;               /* raft_read */
    vec reads_failed;        /* uint64_t */
    vec garbage;             /* uint8_t * freed at the next advance */
    int in_ready;
#ifdef MUTANT_ACK_BEFORE_PERSIST
    int mut_hold;
#endif
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int vec_push(vec *v, const void *item, size_t size)
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

static uint64_t rng_next(raft_t *r)
{
    /* splitmix64 */
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void trash(raft_t *r, uint8_t *p)
{
    if (!p)
        return;
    if (vec_push(&r->garbage, &p, sizeof p) != RAFT_OK)
        free(p); /* nothing references it outside a ready in progress */
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

const raft_node *raft_config_find(const raft_config *c, uint64_t id)
{
    if (!c || id == 0)
        return NULL;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_NODES; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}

static int conf_valid(const raft_config *c)
{
    if (!c || c->n == 0 || c->n > RAFT_MAX_NODES)
        return 0;
    int voters = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const raft_node *n = &c->nodes[i];
        if (n->id == 0 || n->voter > 1)
            return 0;
        if (memchr(n->meta, 0, RAFT_META_MAX) == NULL)
            return 0;
        for (uint32_t j = 0; j < i; j++)
            if (c->nodes[j].id == n->id)
                return 0;
        voters += n->voter;
    }
    return voters > 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Format: n:u32, then per node id:u64 voter:u8 meta_len:u16 meta. */
size_t raft_config_encode(const raft_config *c, uint8_t *buf, size_t cap)
{
    if (!c || c->n > RAFT_MAX_NODES)
        return 0;
    size_t need = 4;
    for (uint32_t i = 0; i < c->n; i++)
        need += 11 + strnlen(c->nodes[i].meta, RAFT_META_MAX - 1);
    if (!buf || cap < need)
        return 0;
    uint8_t *p = buf;
    p[0] = (uint8_t)(c->n >> 24); p[1] = (uint8_t)(c->n >> 16);
    p[2] = (uint8_t)(c->n >> 8); p[3] = (uint8_t)c->n;
    p += 4;
    for (uint32_t i = 0; i < c->n; i++) {
        size_t ml = strnlen(c->nodes[i].meta, RAFT_META_MAX - 1);
        put_u64(p, c->nodes[i].id);
        p[8] = c->nodes[i].voter;
        p[9] = (uint8_t)(ml >> 8);
        p[10] = (uint8_t)ml;
        memcpy(p + 11, c->nodes[i].meta, ml);
        p += 11 + ml;
    }
    return need;
}

int raft_config_decode(raft_config *c, const uint8_t *buf, size_t len)
{
    if (!c || !buf || len < 4)
        return RAFT_EINVAL;
    raft_config t;
    memset(&t, 0, sizeof t);
    uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
                 ((uint32_t)buf[2] << 8) | buf[3];
    if (n == 0 || n > RAFT_MAX_NODES)
        return RAFT_EINVAL;
    size_t off = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 11)
            return RAFT_EINVAL;
        const uint8_t *p = buf + off;
        size_t ml = ((size_t)p[9] << 8) | p[10];
        if (ml >= RAFT_META_MAX || len - off - 11 < ml)
            return RAFT_EINVAL;
        t.nodes[i].id = get_u64(p);
        t.nodes[i].voter = p[8];
        memcpy(t.nodes[i].meta, p + 11, ml);
        if (memchr(t.nodes[i].meta, 0, ml))
            return RAFT_EINVAL;
        off += 11 + ml;
    }
    if (off != len)
        return RAFT_EINVAL;
    t.n = n;
    if (!conf_valid(&t))
        return RAFT_EINVAL;
    *c = t;
    return RAFT_OK;
}

static int is_voter(const raft_config *c, uint64_t id)
{
    const raft_node *n = raft_config_find(c, id);
    return n && n->voter;
}

static size_t n_voters(const raft_config *c)
{
    size_t k = 0;
    for (uint32_t i = 0; i < c->n; i++)
        k += c->nodes[i].voter;
    return k;
}

static size_t quorum(const raft_t *r)
{
    return n_voters(&r->conf) / 2 + 1;
}

/* ------------------------------------------------------------------ */
/* the log                                                             */

static uint64_t last_index(const raft_t *r)
{
    return r->base_index + r->n_ents;
}

static raft_entry *entry_at(const raft_t *r, uint64_t i)
{
    if (i <= r->base_index || i > last_index(r))
        return NULL;
    return &r->ents[i - r->base_index - 1];
}

/* Is the term of index i known (0, base, or held in memory)? */
static int term_known(const raft_t *r, uint64_t i)
{
    return i == 0 || (i >= r->base_index && i <= last_index(r));
}

static uint64_t term_at(const raft_t *r, uint64_t i)
{
    if (i == 0)
        return 0;
    if (i == r->base_index)
        return r->base_term;
    const raft_entry *e = entry_at(r, i);
    return e ? e->term : 0;
}

static uint64_t last_term(const raft_t *r)
{
    return term_at(r, last_index(r));
}

static void conf_recompute(raft_t *r);
static void progress_rebuild(raft_t *r);

/* Append one entry (copying its data). CONFIG entries take effect as soon
 * as they are in the log, committed or not (dissertation 4.1). */
static int log_append(raft_t *r, uint64_t term, uint8_t type,
                      const uint8_t *data, uint32_t len)
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
            progress_rebuild(r);
        }
    }
    return RAFT_OK;
}

/* Drop entries >= from (never committed ones: callers check). */
static void log_truncate(raft_t *r, uint64_t from)
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
        conf_recompute(r);
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
static void log_reset(raft_t *r, uint64_t index, uint64_t term)
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

/* The configuration is that of the last CONFIG entry in the log, else the
 * snapshot's (entries <= snap.index are covered by snap.conf). */
static void conf_recompute(raft_t *r)
{
    for (uint64_t i = last_index(r); i > r->snap.index && i > r->base_index; i--) {
        const raft_entry *e = entry_at(r, i);
        raft_config c;
        if (e->type == RAFT_ENTRY_CONFIG &&
            raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
            r->conf = c;
            r->conf_index = i;
            progress_rebuild(r);
            return;
        }
    }
    r->conf = r->snap.conf;
    r->conf_index = r->snap.index;
    progress_rebuild(r);
}

/* Configuration as of index i (for snapshot metadata). */
static void conf_at(const raft_t *r, uint64_t i, raft_config *out)
{
    for (uint64_t k = i; k > r->snap.index && k > r->base_index; k--) {
        const raft_entry *e = entry_at(r, k);
        if (e && e->type == RAFT_ENTRY_CONFIG &&
            raft_config_decode(out, e->data, e->len) == RAFT_OK)
            return;
    }
    *out = r->snap.conf;
}

/* ------------------------------------------------------------------ */
/* progress (leader's view of each member)                             */

static uint64_t *infl_ring(raft_t *r, size_t slot)
{
    return r->infl + slot * r->o.max_inflight;
}

static progress *pr_find(raft_t *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void pr_init(raft_t *r, progress *p, uint64_t id)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->next = last_index(r) + 1;
    p->state = PR_PROBE;
    p->recent_active = 1;
}

static void infl_reset(progress *p)
{
    p->infl_head = 0;
    p->infl_count = 0;
}

/* One progress per member; existing ones keep their state. */
static void progress_rebuild(raft_t *r)
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
            memcpy(infl_ring(r, r->n_prs), scratch + k * r->o.max_inflight,
                   ring_bytes);
        } else {
            pr_init(r, p, id);
        }
        r->n_prs++;
    }
    if (r->transferee && !is_voter(&r->conf, r->transferee))
        r->transferee = 0; /* target left: abort the transfer */
}

static int infl_full(raft_t *r, progress *p)
{
    return p->infl_count >= r->o.max_inflight;
}

static void infl_add(raft_t *r, progress *p, uint64_t last)
{
    if (infl_full(r, p))
        return;
    uint64_t *ring = infl_ring(r, (size_t)(p - r->prs));
    ring[(p->infl_head + p->infl_count) % r->o.max_inflight] = last;
    p->infl_count++;
}

static void infl_free_to(raft_t *r, progress *p, uint64_t idx)
{
    uint64_t *ring = infl_ring(r, (size_t)(p - r->prs));
    while (p->infl_count && ring[p->infl_head] <= idx) {
        p->infl_head = (p->infl_head + 1) % r->o.max_inflight;
        p->infl_count--;
    }
}

static void pr_become_probe(progress *p)
{
    p->state = PR_PROBE;
    p->paused = 0;
    p->next = p->match + 1;
    p->stall = 0;
    infl_reset(p);
}

static void pr_become_replicate(progress *p)
{
    p->state = PR_REPLICATE;
    p->paused = 0;
    p->next = p->match + 1;
    p->stall = 0;
    infl_reset(p);
}

/* ------------------------------------------------------------------ */
/* outgoing messages                                                   */

static raft_msg *msg_new(raft_t *r, int type, uint64_t to)
{
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = (uint8_t)type;
    m.from = r->id;
    m.to = to;
    m.term = r->term;
    if (vec_push(&r->msgs, &m, sizeof m) != RAFT_OK)
        return NULL; /* out of memory: the message is lost, Raft retries */
    return (raft_msg *)r->msgs.p + (r->msgs.n - 1);
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

/* Send a snapshot chunk at p->snap_offset (the caller fills the bytes). */
static void send_snap_chunk(raft_t *r, progress *p)
{
    raft_config *c = malloc(sizeof *c);
    if (!c)
        return;
    raft_msg *m = msg_new(r, RAFT_MSG_SNAP, p->id);
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
    infl_reset(p);
    send_snap_chunk(r, p);
}

/* Build one APPEND to p starting at p->next with as many entries as fit
 * in max_msg_bytes (at least one: batching). Returns 1 when a message went
 * out, 0 when nothing was sent (nothing to send, out of memory, or the
 * follower needs a snapshot instead, which is then started). */
static int send_append_msg(raft_t *r, progress *p, int allow_empty)
{
    uint64_t prev = p->next - 1;
    if (prev < r->base_index || !term_known(r, prev)) {
        /* the entries it needs are compacted: send a snapshot (chapter 5) */
        pr_become_snapshot(r, p);
        return 0;
    }
    uint64_t last = last_index(r);
    if (p->next > last && !allow_empty)
        return 0;
    size_t n = 0, bytes = 0;
    for (uint64_t i = p->next; i <= last; i++) {
        const raft_entry *e = entry_at(r, i);
        if (n > 0 && bytes + e->len > r->o.max_msg_bytes)
            break;
        bytes += e->len;
        n++;
    }
    raft_entry *es = NULL;
    if (n) {
        es = malloc(n * sizeof *es);
        if (!es)
            return 0;
        memcpy(es, entry_at(r, p->next), n * sizeof *es);
    }
    raft_msg *m = msg_new(r, RAFT_MSG_APPEND, p->id);
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
            infl_add(r, p, sent_last);
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

/* Replicate to one follower as far as its state allows (batching,
 * pipelining up to max_inflight in replicate state; one probe otherwise). */
static void send_append(raft_t *r, progress *p)
{
    if (p->id == r->id)
        return;
    switch (p->state) {
    case PR_SNAPSHOT:
        return;
    case PR_PROBE:
        if (!p->paused)
            send_append_msg(r, p, 1);
        return;
    case PR_REPLICATE:
        while (!infl_full(r, p) && p->next <= last_index(r) &&
               p->state == PR_REPLICATE)
            if (!send_append_msg(r, p, 0))
                break;
        return;
    }
}

static void broadcast_append(raft_t *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        send_append(r, &r->prs[i]);
}

/* A heartbeat: an empty APPEND whose prev is the follower's known match,
 * so it never causes a spurious rejection; ctx names the round. */
static void send_heartbeat(raft_t *r, progress *p)
{
    if (p->id == r->id)
        return;
    raft_msg *m = msg_new(r, RAFT_MSG_APPEND, p->id);
    if (!m)
        return;
    uint64_t prev = term_known(r, p->match) ? p->match : 0;
    m->index = prev;
    m->log_term = term_at(r, prev);
    m->commit = r->commit;
    m->ctx = r->hb_round;
}

/* ------------------------------------------------------------------ */
/* roles                                                               */

static void reset_election_timer(raft_t *r)
{
    unsigned e = r->o.election_ticks;
    r->election_elapsed = 0;
    r->election_timeout = e + (unsigned)(rng_next(r) % e);
}

static void fail_read(raft_t *r, const pending_read *pr)
{
    if (pr->from == 0 || pr->from == r->id) {
        vec_push(&r->reads_failed, &pr->ctx, sizeof pr->ctx);
    } else {
        raft_msg *m = msg_new(r, RAFT_MSG_READ_INDEX_RESP, pr->from);
        if (m) {
            m->ctx = pr->ctx;
            m->reject = 1;
        }
    }
}

static void fail_all_reads(raft_t *r)
{
    pending_read *ps = r->reads_pending.p;
    for (size_t i = 0; i < r->reads_pending.n; i++)
        fail_read(r, &ps[i]);
    r->reads_pending.n = 0;
    fwd_read *fw = r->fwd_reads.p;
    for (size_t i = 0; i < r->fwd_reads.n; i++)
        vec_push(&r->reads_failed, &fw[i].ctx, sizeof fw[i].ctx);
    r->fwd_reads.n = 0;
    r->fwd_open = 0; /* later reads open a new batch (to the new leader) */
}

static void set_leader(raft_t *r, uint64_t leader)
{
    if (leader != r->leader)
        fail_all_reads(r); /* reads asked of the old leader are lost */
    r->leader = leader;
}

/* Step down. The election timer keeps running (Figure 3.1: only a
 * leader's AppendEntries or a granted vote reset it); otherwise a
 * candidate that keeps learning a newer term from rejections would always
 * restart its timer behind its rival's and never win. A former leader
 * draws a fresh timeout. */
static void become_follower(raft_t *r, uint64_t term, uint64_t leader)
{
    if (r->role == RAFT_LEADER) {
        fail_all_reads(r);
        reset_election_timer(r);
    }
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->role = RAFT_FOLLOWER;
    set_leader(r, leader);
    r->transferee = 0;
    r->bcast_pending = 0;
}

/* A node campaigns only if it is a voter of its latest configuration (a
 * removed node or a learner never disrupts the cluster). */
static int promotable(const raft_t *r)
{
    return is_voter(&r->conf, r->id);
}

static void become_leader(raft_t *r);

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
    if (count_in(r->votes, r->n_votes, from) ||
        count_in(r->rejects, r->n_rejects, from))
        return;
    if (granted && r->n_votes < RAFT_MAX_NODES)
        r->votes[r->n_votes++] = from;
    else if (!granted && r->n_rejects < RAFT_MAX_NODES)
        r->rejects[r->n_rejects++] = from;
}

static void campaign(raft_t *r, int pre, int transfer);

/* Check the tally after each vote; a majority of voters wins (3.4). */
static void check_votes(raft_t *r)
{
    size_t q = quorum(r);
    if (tally(r, r->votes, r->n_votes) >= q) {
        if (r->role == RAFT_PRECANDIDATE)
            campaign(r, 0, 0);
        else
            become_leader(r);
    } else if (tally(r, r->rejects, r->n_rejects) >= q) {
        become_follower(r, r->term, 0);
    }
}

/* Start an election. Pre-vote (9.6): first ask whether a vote would be
 * granted, at term+1, without changing our own term; only a node that
 * could win disrupts the cluster with a real term increase. */
static void campaign(raft_t *r, int pre, int transfer)
{
    if (!promotable(r))
        return;
    set_leader(r, 0);
    r->n_votes = r->n_rejects = 0;
    reset_election_timer(r);
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
        raft_msg *m = msg_new(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, n->id);
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
    set_leader(r, r->id);
    r->transferee = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        uint64_t id = p->id;
        pr_init(r, p, id);
        if (id == r->id) {
            p->match = r->stable;
            p->state = PR_REPLICATE;
        }
    }
    log_append(r, r->term, RAFT_ENTRY_NOOP, NULL, 0);
    r->bcast_pending = 1;
}

/* ------------------------------------------------------------------ */
/* commit and reads                                                    */

static void maybe_step_down_removed(raft_t *r);
static void advance_reads(raft_t *r);

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The leader's own log counts only once storage confirmed it (persistence
 * contract): its match is r->stable, set in raft_advance. */
static uint64_t pr_match(const raft_t *r, const progress *p)
{
    return p->id == r->id ? r->stable : p->match;
}

/* Commit rule (3.6.2): the highest index replicated on a majority of
 * voters is committed only if its entry is of the current term. */
static void maybe_commit(raft_t *r)
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
            if (p->id != r->id && p->state == PR_REPLICATE &&
                p->next > last_index(r))
                send_heartbeat(r, p);
        }
        advance_reads(r);
        maybe_step_down_removed(r);
    }
}

/* A leader removed from the configuration leads until the removal is
 * committed, then steps down (4.2.2). */
static void maybe_step_down_removed(raft_t *r)
{
    if (r->role == RAFT_LEADER && r->conf_index <= r->commit &&
        !is_voter(&r->conf, r->id))
        become_follower(r, r->term, 0);
}

static int committed_in_term(const raft_t *r)
{
    return term_at(r, r->commit) == r->term;
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
        send_heartbeat(r, &r->prs[i]);
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
        vec_push(&r->reads, &rd, sizeof rd);
    } else {
        raft_msg *m = msg_new(r, RAFT_MSG_READ_INDEX_RESP, pr->from);
        if (m) {
            m->ctx = pr->ctx;
            m->index = pr->index;
        }
    }
}

static void advance_reads(raft_t *r)
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
    if (vec_push(&r->reads_pending, &pr, sizeof pr) != RAFT_OK)
        return RAFT_ENOMEM;
    advance_reads(r);
    return RAFT_OK;
}

/* ------------------------------------------------------------------ */
/* ticks                                                               */

static void expire_read_batches(raft_t *r);

/* Leader with check-quorum (6.2): if a majority of voters was not heard
 * from during an election timeout, step down so clients find the real
 * leader. */
static void check_quorum(raft_t *r)
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
        become_follower(r, r->term, 0);
}

static void maybe_auto_promote(raft_t *r);

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
    switch (p->state) {
    case PR_PROBE:
        /* the probe or its answer was lost (the follower answers our
         * heartbeats but not the probe): retry, not more often than every
         * few heartbeats, as a probe may carry a big batch */
        if (p->paused && alive && ++p->probe_wait >= STALL_HEARTBEATS)
            p->paused = 0;
        if (!p->paused) {
            send_append(r, p); /* the probe doubles as the heartbeat */
            return;
        }
        break;
    case PR_REPLICATE: {
        int outstanding = p->infl_count > 0 || p->next <= last_index(r);
        if (outstanding && alive && p->match == p->match_at_hb) {
            /* the follower answers heartbeats but not our appends: the
             * pipeline lost messages, fall back to probing */
            if (++p->stall >= STALL_HEARTBEATS ||
                r->transferee == p->id) {
                pr_become_probe(p);
                send_append(r, p);
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
            send_snap_chunk(r, p);
        }
        break;
    }
    send_heartbeat(r, p);
}

static void tick_leader(raft_t *r)
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
        check_quorum(r);
        if (r->role != RAFT_LEADER)
            return;
    }
    if (r->heartbeat_elapsed >= r->o.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        for (size_t i = 0; i < r->n_prs; i++)
            heartbeat_peer(r, &r->prs[i]);
        maybe_auto_promote(r);
    }
}

void raft_tick(raft_t *r)
{
    if (!r || r->in_ready)
        return;
    expire_read_batches(r);
    if (r->role == RAFT_LEADER) {
        tick_leader(r);
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
            reset_election_timer(r);
            campaign(r, r->o.pre_vote, 0);
        }
    }
}

/* ------------------------------------------------------------------ */
/* incoming messages                                                   */

static raft_msg *reply(raft_t *r, const raft_msg *m, int type)
{
    return msg_new(r, type, m->from);
}

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
            log_truncate(r, e->index);
        }
        if (log_append(r, e->term, e->type, e->data, e->len) != RAFT_OK)
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

static uint64_t find_conflict_by_term(const raft_t *r, uint64_t index,
                                      uint64_t term)
{
    if (index > last_index(r))
        index = last_index(r);
    while (index > r->base_index && term_at(r, index) > term)
        index--;
    if (index == r->base_index && index > 0 && term_at(r, index) > term)
        return index - 1; /* the conflict is inside the snapshot */
    return index;
}

/* Leadership transfer (3.10): once the target has the whole log, tell it
 * to campaign at once. */
static void transfer_check(raft_t *r, progress *p)
{
    if (r->transferee == p->id && p->match == last_index(r))
        msg_new(r, RAFT_MSG_TIMEOUT_NOW, p->id);
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
            nxt = find_conflict_by_term(r, m->hint_index, m->hint_term) + 1;
        } else if (m->hint_index + 1 < nxt) {
            nxt = m->hint_index + 1;
        }
        if (nxt <= p->match)
            nxt = p->match + 1;
        pr_become_probe(p);
        p->next = nxt;
        send_append(r, p);
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
            pr_become_replicate(p);
        else if (p->state == PR_SNAPSHOT && p->match >= p->snap_index)
            pr_become_replicate(p);
        infl_free_to(r, p, p->match);
        maybe_commit(r);
        if (r->role != RAFT_LEADER)
            return;
        transfer_check(r, p);
    }
    send_append(r, p);
reads:
    advance_reads(r);
}

static int log_up_to_date(const raft_t *r, const raft_msg *m)
{
#ifdef MUTANT_VOTE_NO_LOG_CHECK
    (void)r; (void)m;
    return 1;
#endif
    /* election restriction (3.6.1) */
    return m->log_term > last_term(r) ||
           (m->log_term == last_term(r) && m->index >= last_index(r));
}

/* RequestVote / pre-vote receiver. */
static void handle_vote(raft_t *r, const raft_msg *m)
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
        reset_election_timer(r);
    }
}

static void handle_vote_resp(raft_t *r, const raft_msg *m)
{
    if ((m->type == RAFT_MSG_PREVOTE_RESP && r->role != RAFT_PRECANDIDATE) ||
        (m->type == RAFT_MSG_VOTE_RESP && r->role != RAFT_CANDIDATE))
        return;
    record_vote(r, m->from, !m->reject);
    check_votes(r);
}

static void snap_reply(raft_t *r, const raft_msg *m, uint64_t offset,
                       int last, uint64_t index, int reject)
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
    log_reset(r, r->snap.index, r->snap.term);
    r->stable = 0; /* durable once the ready with snap_install is done */
    r->snap_install_pending = 1;
    if (r->commit < r->snap.index)
        r->commit = r->snap.index;
    r->handed = r->snap.index;
    r->conf = r->snap.conf;
    r->conf_index = r->snap.index;
    progress_rebuild(r);
    /* chunks of this snapshot still queued are part of this install */
}

/* InstallSnapshot receiver, chunk by chunk. */
static void handle_snap(raft_t *r, const raft_msg *m)
{
    uint64_t have = term_known(r, m->snap_index) &&
                    term_at(r, m->snap_index) == m->snap_term;
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
    } else if (!r->staging || r->stage.index != m->snap_index ||
               r->stage.term != m->snap_term) {
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
    if (vec_push(&r->chunks, &c, sizeof c) != RAFT_OK) {
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
            pr_become_probe(p);
        }
        if (p->next <= p->match)
            p->next = p->match + 1;
        maybe_commit(r);
        if (r->role != RAFT_LEADER)
            return;
        transfer_check(r, p);
        send_append(r, p);
        advance_reads(r);
        return;
    }
    if (p->state != PR_SNAPSHOT)
        goto reads;
    if (m->reject || p->snap_index != r->snap.index) {
        /* restart with the snapshot we have now, from offset 0 */
        p->snap_index = r->snap.index;
        p->snap_offset = 0;
        send_snap_chunk(r, p);
    } else if (m->snap_index == p->snap_index && m->offset != p->snap_offset) {
        /* the follower says where it is (a duplicated first chunk may
         * have restarted it): continue from there */
        p->snap_offset = m->offset;
        send_snap_chunk(r, p);
    }
reads:
    advance_reads(r);
}

static void handle_read_index(raft_t *r, const raft_msg *m)
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
 * were failed when the leader changed (set_leader), so an answer from any
 * other node, or for a batch no longer here, is ignored. */
static void handle_read_index_resp(raft_t *r, const raft_msg *m)
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
            vec_push(&r->reads_failed, &fw[i].ctx, sizeof fw[i].ctx);
        } else {
            raft_read rd = {fw[i].ctx, m->index};
            vec_push(&r->reads, &rd, sizeof rd);
        }
    }
    r->fwd_reads.n = keep;
}

/* A batch unanswered for READ_BATCH_EXPIRY election timeouts was lost on
 * the way (or its answer was): fail its reads so the caller retries them
 * in a new batch. Batches sit in fwd_reads oldest first. */
static void expire_read_batches(raft_t *r)
{
    r->fwd_clock++;
    uint64_t limit = (uint64_t)READ_BATCH_EXPIRY * r->o.election_ticks;
    fwd_read *fw = r->fwd_reads.p;
    size_t k = 0;
    while (k < r->fwd_reads.n && r->fwd_clock - fw[k].asked >= limit &&
           !(r->fwd_open && fw[k].batch == r->fwd_batch)) {
        vec_push(&r->reads_failed, &fw[k].ctx, sizeof fw[k].ctx);
        k++;
    }
    if (k) {
        memmove(fw, fw + k, (r->fwd_reads.n - k) * sizeof *fw);
        r->fwd_reads.n -= k;
    }
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
            if (e->index != m->index + 1 + i || e->term > m->term ||
                e->term < m->log_term || e->type > RAFT_ENTRY_CONFIG ||
                (e->len && !e->data))
                return 0;
            if (i > 0 && e->term < m->entries[i - 1].term)
                return 0;
            raft_config c;
            if (e->type == RAFT_ENTRY_CONFIG &&
                raft_config_decode(&c, e->data, e->len) != RAFT_OK)
                return 0;
        }
        if (m->log_term > m->term)
            return 0;
    }
    if (m->type == RAFT_MSG_SNAP) {
        if (!m->conf || !conf_valid(m->conf) || m->len > RAFT_SNAP_CHUNK ||
            (m->len && !m->data) || m->snap_index == 0 ||
            m->snap_term == 0 || m->snap_term > m->term ||
            m->offset > UINT64_MAX - m->len)
            return 0;
    }
    return 1;
}

/* Lease for stickiness (4.2.3): a voter that heard from a live leader
 * within the minimum election timeout ignores (pre)votes, so a node that
 * rejoins from a partition cannot depose a healthy leader. */
static int in_lease(const raft_t *r)
{
    if (!r->o.check_quorum)
        return 0;
    if (r->role == RAFT_LEADER)
        return 1;
    return r->leader != 0 && r->election_elapsed < r->o.election_ticks;
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
        handle_read_index(r, m);
        return RAFT_OK;
    }
    if (m->type == RAFT_MSG_READ_INDEX_RESP) {
        handle_read_index_resp(r, m);
        return RAFT_OK;
    }

    /* Terms (3.3): a newer term makes us a follower; an older one is
     * stale. Pre-votes do not change terms. */
    if (m->term > r->term) {
        int vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        if (vote_req && !m->transfer && in_lease(r))
            return RAFT_OK;
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* no term change */
        } else {
            int from_leader = m->type == RAFT_MSG_APPEND ||
                              m->type == RAFT_MSG_SNAP ||
                              m->type == RAFT_MSG_TIMEOUT_NOW;
            become_follower(r, m->term, from_leader ? m->from : 0);
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
            raft_msg *out = reply(r, m, m->type == RAFT_MSG_VOTE
                                            ? RAFT_MSG_VOTE_RESP
                                            : RAFT_MSG_PREVOTE_RESP);
            if (out)
                out->reject = 1;
        }
        return RAFT_OK;
    }

    progress *p;
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_SNAP:
        if (r->role == RAFT_LEADER)
            return RAFT_OK; /* two leaders in one term cannot happen */
        if (r->role != RAFT_FOLLOWER || r->leader != m->from)
            become_follower(r, r->term, m->from);
        r->election_elapsed = 0;
        r->ticks_since_leader = 0;
        if (m->type == RAFT_MSG_APPEND)
            handle_append(r, m);
        else
            handle_snap(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_SNAP_RESP:
        if (r->role != RAFT_LEADER || !(p = pr_find(r, m->from)))
            return RAFT_OK;
        p->recent_active = 1;
        p->heard = 1;
        if (m->type == RAFT_MSG_APPEND_RESP)
            handle_append_resp(r, m, p);
        else
            handle_snap_resp(r, m, p);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        if (!m->transfer && in_lease(r) && m->type == RAFT_MSG_PREVOTE) {
            raft_msg *out = reply(r, m, RAFT_MSG_PREVOTE_RESP);
            if (out)
                out->reject = 1;
            return RAFT_OK;
        }
        handle_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        handle_vote_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        /* leadership transfer: campaign at once, skipping pre-vote */
        if (r->role != RAFT_LEADER && promotable(r)) {
            set_leader(r, 0);
            campaign(r, 0, 1);
        }
        break;
    }
    return RAFT_OK;
}

/* ------------------------------------------------------------------ */
/* client calls                                                        */

static int leader_ready(const raft_t *r)
{
    return r && !r->in_ready && r->role == RAFT_LEADER;
}

int raft_propose(raft_t *r, const void *data, uint32_t len, uint64_t *index,
                 uint64_t *term)
{
    if (!r || (len && !data))
        return RAFT_EINVAL;
    if (!leader_ready(r))
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    if (len > r->o.max_entry_bytes)
        return RAFT_ETOOBIG;
    int rc = log_append(r, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rc != RAFT_OK)
        return rc;
    r->bcast_pending = 1;
    if (index)
        *index = last_index(r);
    if (term)
        *term = r->term;
    return RAFT_OK;
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
        raft_msg *m = msg_new(r, RAFT_MSG_READ_INDEX, r->leader);
        if (!m)
            return RAFT_ENOMEM;
        m->ctx = b;
        r->fwd_batch = b;
        r->fwd_open = 1;
        r->fwd_opened = r->fwd_clock;
    }
    fwd_read fr = {ctx, r->fwd_batch, r->fwd_opened};
    if (vec_push(&r->fwd_reads, &fr, sizeof fr) != RAFT_OK)
        return RAFT_ENOMEM;
    return RAFT_OK;
}

/* Membership changes one server at a time (4.1): only one uncommitted
 * CONFIG entry, and none before the leader committed an entry of its term
 * (the fix for the single-server change bug, see raft-dev 2015). */
static int conf_change_allowed(const raft_t *r)
{
    if (!leader_ready(r))
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_EBUSY;
    if (r->conf_index > r->commit || !committed_in_term(r))
        return RAFT_EBUSY;
    return RAFT_OK;
}

static int propose_conf(raft_t *r, const raft_config *c, uint64_t *index)
{
    uint8_t buf[4 + RAFT_MAX_NODES * (11 + RAFT_META_MAX)];
    size_t n = raft_config_encode(c, buf, sizeof buf);
    if (n == 0 || !conf_valid(c))
        return RAFT_EINVAL;
    int rc = log_append(r, r->term, RAFT_ENTRY_CONFIG, buf, (uint32_t)n);
    if (rc != RAFT_OK)
        return rc;
    r->bcast_pending = 1;
    if (index)
        *index = last_index(r);
    return RAFT_OK;
}

int raft_add_node(raft_t *r, uint64_t id, const char *meta, uint64_t *index)
{
    if (!r || id == 0 || !meta || strnlen(meta, RAFT_META_MAX) >= RAFT_META_MAX)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    raft_node *n = NULL;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.nodes[i].id == id)
            n = &c.nodes[i];
    if (n) {
        if (strcmp(n->meta, meta) == 0) {
            if (index)
                *index = 0;
            return RAFT_OK;
        }
        memset(n->meta, 0, RAFT_META_MAX);
        strcpy(n->meta, meta);
    } else {
        if (c.n >= RAFT_MAX_NODES)
            return RAFT_EINVAL;
        n = &c.nodes[c.n++];
        memset(n, 0, sizeof *n);
        n->id = id;
        n->voter = 0; /* joins as a learner, promoted once caught up */
        strcpy(n->meta, meta);
    }
    return propose_conf(r, &c, index);
}

int raft_remove_node(raft_t *r, uint64_t id, uint64_t *index)
{
    if (!r || id == 0)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    uint32_t k;
    for (k = 0; k < c.n; k++)
        if (c.nodes[k].id == id)
            break;
    if (k == c.n)
        return RAFT_EINVAL;
    if (c.nodes[k].voter && n_voters(&c) == 1)
        return RAFT_ENOQUORUM;
    c.nodes[k] = c.nodes[c.n - 1];
    c.n--;
    return propose_conf(r, &c, index);
}

int raft_promote_node(raft_t *r, uint64_t id, uint64_t *index)
{
    if (!r || id == 0)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    for (uint32_t k = 0; k < c.n; k++) {
        if (c.nodes[k].id != id)
            continue;
        if (c.nodes[k].voter)
            return RAFT_EINVAL;
        c.nodes[k].voter = 1;
        return propose_conf(r, &c, index);
    }
    return RAFT_EINVAL;
}

/* A learner is promoted once it has everything committed so far. */
static void maybe_auto_promote(raft_t *r)
{
    if (!r->o.auto_promote || r->role != RAFT_LEADER ||
        conf_change_allowed(r) != RAFT_OK)
        return;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        const raft_node *n = raft_config_find(&r->conf, p->id);
        if (n && !n->voter && p->match >= r->commit && p->recent_active) {
            raft_promote_node(r, p->id, NULL);
            return;
        }
    }
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
    progress *p = pr_find(r, id);
    if (!p)
        return RAFT_EINVAL;
    r->transferee = id;
    r->transfer_elapsed = 0;
    if (p->match == last_index(r))
        transfer_check(r, p);
    else
        send_append(r, p);
    return RAFT_OK;
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
    conf_at(r, index, &s.conf);
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
                send_snap_chunk(r, p);
            }
        }
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
    r->infl_scratch = calloc((size_t)RAFT_MAX_NODES * o->max_inflight,
                             sizeof(uint64_t));
    if (!r->infl || !r->infl_scratch) {
        free(r->infl);
        free(r->infl_scratch);
        free(r);
        return NULL;
    }
    r->role = RAFT_FOLLOWER;
    r->unstable_from = 1;
    reset_election_timer(r);
    /* READ_INDEX batch ids start at a point drawn from the seed (without
     * touching the election-timeout stream), so that a late answer to a
     * batch of an earlier incarnation does not match a new one. */
    uint64_t z = o->seed ^ (o->id * 0x9e3779b97f4a7c15ULL) ^ 0x7265616462617463ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    r->fwd_batch = (z ^ (z >> 31)) >> 1;
    return r;
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
    vec_free(&r->garbage);
    vec_free(&r->reads);
    vec_free(&r->reads_failed);
    vec_free(&r->reads_pending);
    vec_free(&r->fwd_reads);
    free(r->infl);
    free(r->infl_scratch);
    free(r);
}

int raft_restore(raft_t *r, const raft_hard_state *hs,
                 const raft_snap_meta *snap, const raft_entry *entries,
                 size_t n_entries, uint64_t applied)
{
    if (!r || r->in_ready || last_index(r) != 0 || r->term != 0)
        return RAFT_EINVAL;
    if (n_entries && !entries)
        return RAFT_EINVAL;
    uint64_t base = snap ? snap->index : 0;
    uint64_t bterm = snap ? snap->term : 0;
    uint64_t hterm = hs ? hs->term : 0;
    if (snap && snap->index && (!conf_valid(&snap->conf) || snap->term == 0))
        return RAFT_EINVAL;
    uint64_t prev_term = bterm;
    for (size_t i = 0; i < n_entries; i++) {
        const raft_entry *e = &entries[i];
        if (e->index != base + 1 + i || e->term < prev_term ||
            e->term > hterm || e->type > RAFT_ENTRY_CONFIG ||
            (e->len && !e->data))
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
    for (size_t i = 0; i < n_entries; i++) {
        int rc = log_append(r, entries[i].term, entries[i].type,
                            entries[i].data, entries[i].len);
        if (rc != RAFT_OK)
            return rc;
    }
    r->stable = last_index(r);
    r->unstable_from = last_index(r) + 1;
    r->commit = applied;
    r->handed = applied;
    r->applied = applied;
    conf_recompute(r);
    garbage_free(r);
    return RAFT_OK;
}

int raft_bootstrap(raft_t *r, const raft_config *conf)
{
    if (!r || r->in_ready || !conf_valid(conf))
        return RAFT_EINVAL;
    if (last_index(r) != 0 || r->base_index != 0 || r->term != 0)
        return RAFT_EINVAL;
    uint8_t buf[4 + RAFT_MAX_NODES * (11 + RAFT_META_MAX)];
    size_t n = raft_config_encode(conf, buf, sizeof buf);
    if (n == 0)
        return RAFT_EINVAL;
    r->term = 1;
    return log_append(r, 1, RAFT_ENTRY_CONFIG, buf, (uint32_t)n);
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
    return r->term != r->hs_saved.term || r->vote != r->hs_saved.vote ||
           r->snap_install_pending || r->pending_trunc ||
           r->unstable_from <= last_index(r) || r->chunks.n || r->msgs.n ||
           r->bcast_pending || commit_visible(r) > r->handed || r->reads.n ||
           r->reads_failed.n || r->compact_to;
}

void raft_ready_get(raft_t *r, raft_ready *rd)
{
    memset(rd, 0, sizeof *rd);
    if (!r || r->in_ready)
        return;
    if (r->bcast_pending && r->role == RAFT_LEADER)
        broadcast_append(r);
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
        progress *self = pr_find(r, r->id);
        if (self)
            self->match = r->stable;
        maybe_commit(r);
        advance_reads(r);
    }
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
    st->first_index = r->base_index + 1;
    st->last_index = last_index(r);
    st->snap_index = r->snap.index;
    st->snap_term = r->snap.term;
    st->ticks_since_leader = r->ticks_since_leader;
    st->transferee = r->transferee;
    st->log_bytes = r->log_bytes;
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

uint64_t raft_entry_term(const raft_t *r, uint64_t index)
{
    if (!r || index == 0 || !term_known(r, index))
        return 0;
    return term_at(r, index);
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
