/*
 * raft-sim - seeded randomized simulation of the Raft core (lib/raft.c).
 *
 *   raft-sim --seed S --count N [--nodes 3|5] [--steps K] [-v] [--stop]
 *
 * Runs seeds S .. S+N-1 (--nodes 1..9, default 3; --steps of faults per
 * seed, default 5000; -v prints the whole trace; --stop ends at the first
 * failing seed, for tests/sim-mutants.sh). Every seed replays exactly.
 *
 * Every seed builds N cores in this process and drives them with a seeded
 * random scheduler: messages are dropped, delayed, duplicated, reordered
 * (a snapshot's first chunk is sometimes replayed late);
 * symmetric, one-way and bridge partitions come and go; nodes freeze
 * (like SIGSTOP), crash (losing everything not persisted: a crash can hit
 * before a ready is persisted, between persist and send, between send and
 * apply) and restart via raft_new + raft_restore; clients propose writes
 * in bursts and ReadIndex reads, also in bursts, on any node; snapshots are taken and
 * shipped in small chunks; nodes are removed and re-added (sometimes wiped
 * and rejoining empty under a new id); leadership is transferred. Options
 * (timeouts, batching, pipelining, trail, pre-vote, check-quorum,
 * auto-promotion) vary per seed.
 *
 * Leases (docs/coordination.md) as raftd runs them: clients grant leases
 * (a lease_grant entry; lease id = its index), renew them as ReadIndex
 * reads on the leader whose release renews (lease_renew_check: the guard,
 * rule 3), sometimes late, near the deadline, abandon and revoke them;
 * every node's state machine holds the lease table (in its snapshots
 * too); every leader runs lib/lease.c on one cluster clock (ticks x
 * TICK_MS, running on while a node is frozen, as CLOCK_MONOTONIC under
 * SIGSTOP) and proposes lease_expire entries. Renewals race leadership
 * transfers, and leaders pause with renewal rounds in flight.
 *
 * After every step: at most one leader per term; no node votes twice in a
 * term; a node keeps the entries it acknowledged while its term is the
 * same (after every persist); log matching (every few steps); leader completeness (at each new
 * leader); state machine safety (no two nodes apply different entries at
 * one index, a node applies only what is on its disk, snapshots hold what
 * was applied); every read released by ReadIndex covers every write
 * acknowledged before the read was issued, and the value the client then
 * reads (once applied >= read index) is that write's or newer; batches
 * within max_msg_bytes;
 * the in-memory log bounded by the snapshot trail; no lease ends early
 * (an applied lease_expire was proposed at least ttl after every renewal
 * of it answered 200 and after its grant was asked for, whichever node
 * applies it, before or after the answer); no renewal asked after its
 * lease ended is answered 200; every node holds the same lease table
 * after the same index. After the faults heal (links become FIFO): a
 * leader and steady progress, every proposal decided, no acknowledged
 * write lost, every member caught up, nodes at the same applied index
 * hold the same state, every lease (all abandoned at the heal) gone, its
 * expire proposed by the leader within ttl + 3 guards of the later of
 * its last renewal, the heal and the leader's election or apply of the
 * grant.
 *
 * One line per failing seed with the violated property, then the last
 * events before it. Ends with "N passed, M failed"; exit 0 only if none
 * failed. Speed and totals go to stderr.
 */
#include "raft.h"
#include "lease.h"
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXN 9
#define NKEYS 4
#define TRACE_RING 24
#define TRACE_LEN 160
#define SIM_LEASES 8 /* leases one state machine holds at most */
#define TICK_MS 100  /* the simulated clock: a tick is 100 ms */

/* ------------------------------------------------------------------ */
/* random numbers                                                      */

static uint64_t rnd_state;

static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* true with probability p/1000 */
static int chance(unsigned permille)
{
    return rnd_below(1000) < permille;
}

/* ------------------------------------------------------------------ */
/* the simulation state (one seed at a time)                           */

typedef struct store {
    raft_hard_state hs;
    raft_snap_meta snap; /* snap.index == 0: none */
    uint8_t *snap_data;
    size_t snap_len;
    raft_entry *log; /* consecutive entries, log[0].index = first */
    size_t n_log, cap_log;
    /* state machine, persisted together with its applied index */
    uint64_t applied, applied_term;
    uint64_t kv_val[NKEYS], kv_idx[NKEYS];
    uint64_t lease_id[SIM_LEASES], lease_ttl[SIM_LEASES]; /* by id */
    uint64_t n_leases;
    raft_config conf; /* configuration as of the applied index */
    /* snapshot staging area */
    uint64_t stg_index, stg_term;
    uint8_t *stg;
    size_t stg_len, stg_cap;
} store;

typedef struct node {
    uint64_t id;
    raft_t *core;
    int up;
    unsigned incarnation;
    uint64_t restart_at;   /* step to restart a crashed node */
    uint64_t frozen_until; /* step until which a paused node does nothing */
    unsigned phase;        /* tick phase */
    store st;
    unsigned snap_every;
    uint64_t *rq; /* released reads waiting for applied >= index */
    size_t n_rq, cap_rq;
    lease_table *lt;   /* lib/lease.c: deadlines while leading */
    uint64_t lt_term;  /* the term lt leads in */
    uint64_t lt_start; /* ms: when lt began to lead */
    /* the highest index this node acknowledged (an APPEND_RESP accepting
     * entries up to it) in term ack_term: while its term is ack_term,
     * its log must keep them (check_acked_kept) */
    uint64_t ack_term, ack_index;
} node;

typedef struct netmsg {
    raft_msg m;
    uint64_t at; /* deliver at this step */
} netmsg;

typedef struct oent {
    int set;
    uint64_t term;
    uint8_t type;
    uint64_t val;
    uint64_t cterm; /* the entry was committed in a term <= cterm */
    int lset;       /* lhash: the lease table after applying it */
    uint64_t lhash;
    /* a lease_grant entry: its lease's client record and its end */
    size_t lrec; /* s->leases[lrec - 1]; 0: no client heard of it */
    int lended, lby_expire;
    uint64_t lend_ms, lend_p;
    uint64_t lgrant_ms; /* when a leading node applied it last */
} oent;

typedef struct proposal {
    int node;
    unsigned incarnation;
    uint64_t index, term, val;
    int key;
    int acked;
} proposal;

typedef struct readreq {
    int node;
    unsigned incarnation;
    uint64_t need;     /* max acked index when issued */
    int key;           /* the key the client reads */
    uint64_t need_key; /* index of the last acked write to key then */
    uint64_t index;    /* read index the core released it with */
    int done;
    int renew;                       /* a lease_renew: its ReadIndex round */
    uint64_t lease, submitted, term; /* lease id, ms, leader's term */
} readreq;

/* A lease as its client knows it (created when the grant is answered). */
enum { LS_ACTIVE, LS_ABANDONED, LS_REVOKED };
typedef struct simlease {
    uint64_t id, ttl;
    uint64_t last_ack; /* ms: grant submitted / renewal answered 200 */
    int state;
    uint64_t quiet_from;    /* ms: abandoned or revoked since */
    uint64_t next_renew;    /* ms */
    int ended, by_expire;   /* revoke or expire applied (first node) */
    uint64_t end_ms, end_p; /* when, and the expire's proposal time */
    uint64_t proposed_ms;   /* the first expire proposed by the leader
                                of the highest term in its term */
    int prop_node;          /* ... by this node (index + 1) */
    uint64_t prop_term;     /* ... in this term */
} simlease;

typedef struct grantreq {
    int node;
    unsigned incarnation;
    uint64_t index, term, submitted;
} grantreq;

typedef struct sim {
    uint64_t seed;
    int n;
    int verbose;
    uint64_t step, steps;
    node nodes[MAXN];
    unsigned char cut[MAXN][MAXN]; /* 1: messages a -> b are lost */
    uint64_t link_at[MAXN][MAXN];  /* latest delivery time per link */

    /* per-seed knobs */
    unsigned tick_period, p_drop, p_dup, p_long, p_crash, p_ready_crash, p_part, p_freeze,
        p_propose, p_read, p_member, p_transfer, max_delay, p_grant;
    unsigned chunk; /* snapshot bytes per message */
    unsigned burst; /* most proposals a client sends at once */
    raft_options opts;

    netmsg *net;
    size_t n_net, cap_net;

    oent *oracle; /* applied entry per index */
    size_t cap_oracle;
    uint64_t max_applied;
    uint64_t *leader_of; /* leader id per term */
    size_t cap_leader;

    proposal *props;
    size_t n_props, cap_props;
    readreq *reads;
    size_t n_reads, cap_reads;
    uint64_t acked_max;        /* highest acknowledged write index */
    uint64_t acked_key[NKEYS]; /* the same per key */
    simlease *leases;
    size_t n_leases, cap_leases;
    grantreq *grants;
    size_t n_grants, cap_grants;
    uint64_t heal_ms; /* when the faults ended */
    uint64_t stat_grants, stat_renew_ok, stat_renew_refused, stat_expired, stat_revoked,
        stat_late_ms, stat_late_n, stat_late_elect_ms;
    uint64_t stat_wipes, stat_transfers_done, transfer_to;
    uint64_t stat_acked, stat_reads_ok, stat_snap_installs, stat_leaders, stat_crashes, stat_confs,
        stat_transfers;
    uint64_t stat_loads, stat_evicted_nodes; /* rd.loads answered; readies after
                                                  which a node held part of its
                                                  log in storage only */

    int faults; /* 0 during the liveness phase */
    int failed;
    char why[512];
    char trace[TRACE_RING][TRACE_LEN];
    unsigned n_trace;
} sim;

static void ev(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ev(sim *s, const char *fmt, ...)
{
    char *line = s->trace[s->n_trace % TRACE_RING];
    int k = snprintf(line, TRACE_LEN, "[%llu] ", (unsigned long long)s->step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, TRACE_LEN - (size_t)k, fmt, ap);
    va_end(ap);
    s->n_trace++;
    if (s->verbose)
        printf("  %s\n", line);
}

static void fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    ev(s, "VIOLATION: %s", s->why);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

#define GROW(arr, cap, need) \
    do { \
        if ((need) > (cap)) { \
            size_t nc_ = (cap) ? (cap) : 16; \
            while (nc_ < (need)) \
                nc_ *= 2; \
            (arr) = xrealloc((arr), nc_ * sizeof *(arr)); \
            memset((arr) + (cap), 0, (nc_ - (cap)) * sizeof *(arr)); \
            (cap) = nc_; \
        } \
    } while (0)

static int leader_index(sim *s);

static int idx_of(const sim *s, uint64_t id)
{
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].id == id)
            return i;
    return -1;
}

/* The simulated clock that raftd's CLOCK_MONOTONIC stands for: one for
 * the whole cluster, running on while a node is frozen (as SIGSTOP). */
static uint64_t now_ms(const sim *s)
{
    return s->step * TICK_MS / s->tick_period;
}

/* The guard: the minimum election timeout, in ms. */
static uint64_t guard_ms(const sim *s)
{
    return (uint64_t)s->opts.election_ticks * TICK_MS;
}

/* ------------------------------------------------------------------ */
/* messages                                                            */

static void msg_copy(raft_msg *d, const raft_msg *m)
{
    *d = *m;
    d->entries = NULL;
    d->conf = NULL;
    d->data = NULL;
    if (m->n_entries) {
        d->entries = xrealloc(NULL, m->n_entries * sizeof *d->entries);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            d->entries[i] = m->entries[i];
            d->entries[i].data = NULL;
            if (m->entries[i].len) {
                d->entries[i].data = xrealloc(NULL, m->entries[i].len);
                memcpy(d->entries[i].data, m->entries[i].data, m->entries[i].len);
            }
        }
    }
    if (m->conf) {
        d->conf = xrealloc(NULL, sizeof *d->conf);
        *d->conf = *m->conf;
    }
    if (m->len && m->data) {
        d->data = xrealloc(NULL, m->len);
        memcpy(d->data, m->data, m->len);
    }
}

static void msg_free(raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->conf);
    free(m->data);
}

static const char *mtype(int t)
{
    static const char *names[] = {"?",     "APP",  "APP_R",  "VOTE", "VOTE_R", "PRE",
                                  "PRE_R", "SNAP", "SNAP_R", "TNOW", "RIDX",   "RIDX_R"};
    return t >= 0 && t <= RAFT_MSG_TYPE_MAX ? names[t] : "?";
}

static void net_send(sim *s, const raft_msg *m)
{
    int a = idx_of(s, m->from), b = idx_of(s, m->to);
    if (m->type == RAFT_MSG_APPEND && m->n_entries > 1) {
        /* batching stays within max_msg_bytes (one entry may exceed it) */
        size_t bytes = 0;
        for (uint32_t i = 0; i < m->n_entries; i++)
            bytes += m->entries[i].len;
        if (bytes > s->opts.max_msg_bytes)
            fail(s, "n%llu sent %u entries of %zu bytes, over max_msg_bytes %zu",
                 (unsigned long long)m->from, m->n_entries, bytes, s->opts.max_msg_bytes);
    }
    if (a < 0 || b < 0)
        return;
    int copies = 1;
    if (s->faults && chance(s->p_drop))
        copies = 0;
    else if (s->faults && chance(s->p_dup))
        copies = 2;
    /* A snapshot's first chunk is sometimes replayed late (an old link's
     * data arriving after the follower caught up by appends): by then the
     * follower's log may hold the snapshot's index and acknowledged
     * entries after it, which the install must not drop. */
    int replay = copies && s->faults && m->type == RAFT_MSG_SNAP && m->offset == 0 && chance(250);
    for (int c = 0; c < copies + replay; c++) {
        GROW(s->net, s->cap_net, s->n_net + 1);
        netmsg *nm = &s->net[s->n_net++];
        msg_copy(&nm->m, m);
        uint64_t d = 1 + rnd_below(s->max_delay);
        if (s->faults && chance(s->p_long))
            d += rnd_below(s->tick_period * 20);
        if (c == copies) /* the replay */
            d += 1 + rnd_below(s->tick_period * 10);
        nm->at = s->step + d;
        /* a healed network is like TCP: in order on each link */
        if (!s->faults && nm->at < s->link_at[a][b])
            nm->at = s->link_at[a][b];
        s->link_at[a][b] = nm->at;
    }
}

/* ------------------------------------------------------------------ */
/* storage of one node                                                 */

static uint64_t store_last(const store *st)
{
    return st->n_log ? st->log[st->n_log - 1].index : st->snap.index;
}

static void store_truncate(store *st, uint64_t from)
{
    while (st->n_log && st->log[st->n_log - 1].index >= from) {
        free(st->log[st->n_log - 1].data);
        st->n_log--;
    }
}

static void store_compact(store *st, uint64_t upto)
{
    size_t k = 0;
    while (k < st->n_log && st->log[k].index <= upto)
        free(st->log[k++].data);
    if (k)
        memmove(st->log, st->log + k, (st->n_log - k) * sizeof *st->log);
    st->n_log -= k;
}

static void store_free(store *st)
{
    store_truncate(st, 0);
    free(st->log);
    free(st->snap_data);
    free(st->stg);
    memset(st, 0, sizeof *st);
}

/* A snapshot's bytes: applied index, term, then every key's value and
 * the index that wrote it, then the lease table: its size and SIM_LEASES
 * slots of (id, ttl_ms). */
#define SNAP_LEASES (16 + NKEYS * 16)
#define SNAP_BYTES (SNAP_LEASES + 8 + SIM_LEASES * 16)

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void state_serialize(const store *st, uint8_t *out)
{
    put64(out, st->applied);
    put64(out + 8, st->applied_term);
    for (int k = 0; k < NKEYS; k++) {
        put64(out + 16 + 16 * k, st->kv_val[k]);
        put64(out + 24 + 16 * k, st->kv_idx[k]);
    }
    uint8_t *l = out + SNAP_LEASES;
    put64(l, st->n_leases);
    for (int k = 0; k < SIM_LEASES; k++) {
        put64(l + 8 + 16 * k, st->lease_id[k]);
        put64(l + 16 + 16 * k, st->lease_ttl[k]);
    }
}

/* The state machine's lease table in one number, to compare nodes. */
static uint64_t lease_hash(const store *st)
{
    uint64_t h = st->n_leases;
    for (uint64_t k = 0; k < st->n_leases; k++) {
        h = h * 1000003ULL ^ st->lease_id[k];
        h = h * 1000003ULL ^ st->lease_ttl[k];
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* oracle checks                                                       */

static oent *oracle_at(sim *s, uint64_t index)
{
    GROW(s->oracle, s->cap_oracle, index + 1);
    return &s->oracle[index];
}

/* State machine safety: the entry applied at an index is the same on
 * every node. */
static void check_apply(sim *s, int ni, const raft_entry *e)
{
    uint64_t val = 0;
    if (e->type == RAFT_ENTRY_NORMAL && e->len == 9)
        val = get64(e->data + 1);
    else if (e->type == RAFT_ENTRY_NORMAL && e->len == 17) /* a lease command */
        val = ((uint64_t)e->data[0] << 56) ^ get64(e->data + 1) ^
              get64(e->data + 9) * 0x9e3779b97f4a7c15ULL;
    oent *o = oracle_at(s, e->index);
    if (!o->set) {
        o->set = 1;
        o->term = e->term;
        o->type = e->type;
        o->val = val;
        raft_status_info st;
        raft_status(s->nodes[ni].core, &st);
        o->cterm = st.term;
        if (e->index > s->max_applied)
            s->max_applied = e->index;
        return;
    }
    if (o->term != e->term || o->type != e->type || o->val != val)
        fail(s,
             "state machine safety: node %llu applied index %llu term %llu "
             "val %llu, another node applied term %llu val %llu",
             (unsigned long long)s->nodes[ni].id, (unsigned long long)e->index,
             (unsigned long long)e->term, (unsigned long long)val, (unsigned long long)o->term,
             (unsigned long long)o->val);
}

/* Leader completeness: a new leader of term T holds every entry known to
 * be committed in a term before T (applied implies committed; the term of
 * the node that applied it first bounds the term of the commit). A leader
 * of an old term may still win late, after newer terms committed more. */
static void check_new_leader(sim *s, int ni)
{
    raft_t *r = s->nodes[ni].core;
    raft_status_info st;
    raft_status(r, &st);
    for (uint64_t i = st.first_index; i <= s->max_applied; i++) {
        oent *o = oracle_at(s, i);
        if (!o->set || o->cterm >= st.term)
            continue;
        uint64_t t = raft_entry_term(r, i);
        if (t != o->term) {
            fail(s,
                 "leader completeness: leader %llu of term %llu has term "
                 "%llu at committed index %llu (committed term %llu)",
                 (unsigned long long)st.id, (unsigned long long)st.term, (unsigned long long)t,
                 (unsigned long long)i, (unsigned long long)o->term);
            return;
        }
    }
}

static void check_leaders(sim *s)
{
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        if (!nd->up)
            continue;
        raft_status_info st;
        raft_status(nd->core, &st);
        /* bounded memory: nothing older than snapshot - trail is kept */
        if (st.snap_index + 1 > st.first_index + s->opts.snapshot_trail)
            fail(s, "n%llu keeps entries from %llu, snapshot %llu, trail %llu",
                 (unsigned long long)nd->id, (unsigned long long)st.first_index,
                 (unsigned long long)st.snap_index, (unsigned long long)s->opts.snapshot_trail);
        if (st.role != RAFT_LEADER)
            continue;
        GROW(s->leader_of, s->cap_leader, st.term + 1);
        uint64_t *l = &s->leader_of[st.term];
        if (*l == 0) {
            *l = nd->id;
            s->stat_leaders++;
            if (s->transfer_to == nd->id)
                s->stat_transfers_done++;
            s->transfer_to = 0;
            ev(s, "n%llu leader of term %llu (last %llu commit %llu)", (unsigned long long)nd->id,
               (unsigned long long)st.term, (unsigned long long)st.last_index,
               (unsigned long long)st.commit);
            check_new_leader(s, i);
        } else if (*l != nd->id) {
            fail(s, "election safety: two leaders in term %llu: %llu and %llu",
                 (unsigned long long)st.term, (unsigned long long)*l, (unsigned long long)nd->id);
        }
    }
}

/* With log_mem_bytes, what is held in memory beyond it is not yet
 * applied (applied entries beyond it leave memory at each advance). */
static void check_log_memory(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    if (!nd->up || !s->opts.log_mem_bytes)
        return;
    raft_status_info st;
    raft_status(nd->core, &st);
    size_t n = (size_t)(st.last_index + 1 - st.mem_first_index);
    size_t mem = st.log_bytes + n * RAFT_ENTRY_OVERHEAD;
    if (mem > s->opts.log_mem_bytes && st.mem_first_index <= st.applied)
        fail(s, "n%llu holds %zu bytes of log from %llu, over log_mem_bytes %zu, with %llu applied",
             (unsigned long long)nd->id, mem, (unsigned long long)st.mem_first_index,
             s->opts.log_mem_bytes, (unsigned long long)st.applied);
    if (st.mem_first_index > st.first_index)
        s->stat_evicted_nodes++;
}

/* Log matching: if two logs have an entry with the same index and term,
 * they agree on every earlier entry (compared by term here, and by value
 * through state machine safety). */
static void check_log_matching(sim *s)
{
    for (int a = 0; a < s->n; a++)
        for (int b = a + 1; b < s->n; b++) {
            node *x = &s->nodes[a], *y = &s->nodes[b];
            if (!x->up || !y->up)
                continue;
            raft_status_info sx, sy;
            raft_status(x->core, &sx);
            raft_status(y->core, &sy);
            uint64_t lo = sx.first_index > sy.first_index ? sx.first_index : sy.first_index;
            uint64_t hi = sx.last_index < sy.last_index ? sx.last_index : sy.last_index;
            int matched = 0;
            for (uint64_t i = hi; i >= lo && i > 0; i--) {
                uint64_t tx = raft_entry_term(x->core, i);
                uint64_t ty = raft_entry_term(y->core, i);
                if (matched && tx != ty) {
                    fail(s,
                         "log matching: n%llu and n%llu agree on a later "
                         "entry but differ at index %llu (terms %llu, %llu)",
                         (unsigned long long)x->id, (unsigned long long)y->id,
                         (unsigned long long)i, (unsigned long long)tx, (unsigned long long)ty);
                    return;
                }
                if (tx && tx == ty)
                    matched = 1;
            }
        }
}

/* ------------------------------------------------------------------ */
/* a node's ready loop                                                 */

static void node_crash(sim *s, int ni, const char *where)
{
    node *nd = &s->nodes[ni];
    if (!nd->up)
        return;
    raft_free(nd->core);
    nd->core = NULL;
    lease_table_free(nd->lt); /* deadlines are memory only */
    nd->lt = NULL;
    nd->up = 0;
    nd->frozen_until = 0;
    nd->n_rq = 0; /* its clients lost their connections */
    /* the staging area is a scratch file: it may survive or not */
    nd->restart_at = s->step + 1 + rnd_below(s->tick_period * 40);
    s->stat_crashes++;
    ev(s, "n%llu CRASH %s", (unsigned long long)nd->id, where);
}

static void persist(sim *s, int ni, const raft_ready *rd)
{
    node *nd = &s->nodes[ni];
    store *st = &nd->st;
    if (rd->hs_changed) {
        if (rd->hs.term < st->hs.term)
            fail(s, "n%llu: term went back from %llu to %llu", (unsigned long long)nd->id,
                 (unsigned long long)st->hs.term, (unsigned long long)rd->hs.term);
        if (rd->hs.term == st->hs.term && st->hs.vote && rd->hs.vote != st->hs.vote)
            fail(s, "n%llu: voted twice in term %llu (%llu, then %llu)", (unsigned long long)nd->id,
                 (unsigned long long)rd->hs.term, (unsigned long long)st->hs.vote,
                 (unsigned long long)rd->hs.vote);
        st->hs = rd->hs;
    }
    for (size_t i = 0; i < rd->n_chunks; i++) {
        const raft_chunk *c = &rd->chunks[i];
        if (c->offset == 0 || c->snap_index != st->stg_index || c->snap_term != st->stg_term) {
            st->stg_len = 0;
            st->stg_index = c->snap_index;
            st->stg_term = c->snap_term;
        }
        if (c->offset > st->stg_len) {
            fail(s, "n%llu: snapshot chunk at offset %llu leaves a gap (have %zu)",
                 (unsigned long long)nd->id, (unsigned long long)c->offset, st->stg_len);
            return;
        }
        GROW(st->stg, st->stg_cap, c->offset + c->len + 1);
        if (c->len)
            memcpy(st->stg + c->offset, c->data, c->len);
        st->stg_len = c->offset + c->len;
    }
    if (rd->snap_install) {
        if (st->stg_index != rd->snap.index || st->stg_term != rd->snap.term ||
            st->stg_len != SNAP_BYTES) {
            fail(s,
                 "n%llu: install of snapshot %llu/%llu but staged %llu/%llu "
                 "with %zu bytes",
                 (unsigned long long)nd->id, (unsigned long long)rd->snap.index,
                 (unsigned long long)rd->snap.term, (unsigned long long)st->stg_index,
                 (unsigned long long)st->stg_term, st->stg_len);
            return;
        }
        const uint8_t *p = st->stg;
        if (get64(p) != rd->snap.index || get64(p + 8) != rd->snap.term) {
            fail(s, "n%llu: snapshot bytes describe %llu/%llu, meta says %llu/%llu",
                 (unsigned long long)nd->id, (unsigned long long)get64(p),
                 (unsigned long long)get64(p + 8), (unsigned long long)rd->snap.index,
                 (unsigned long long)rd->snap.term);
            return;
        }
        if (rd->snap.index < st->applied)
            fail(s, "n%llu: snapshot %llu installed over applied %llu", (unsigned long long)nd->id,
                 (unsigned long long)rd->snap.index, (unsigned long long)st->applied);
        st->applied = rd->snap.index;
        st->applied_term = rd->snap.term;
        const uint8_t *l = p + SNAP_LEASES;
        st->n_leases = get64(l);
        if (st->n_leases > SIM_LEASES) {
            fail(s, "n%llu: snapshot holds %llu leases", (unsigned long long)nd->id,
                 (unsigned long long)st->n_leases);
            return;
        }
        for (int k = 0; k < SIM_LEASES; k++) {
            st->lease_id[k] = get64(l + 8 + 16 * k);
            st->lease_ttl[k] = get64(l + 16 + 16 * k);
        }
        oent *lo = oracle_at(s, st->applied);
        if (lo->lset && lo->lhash != lease_hash(st))
            fail(s,
                 "n%llu: snapshot at %llu holds another lease table than "
                 "the nodes that applied %llu",
                 (unsigned long long)nd->id, (unsigned long long)st->applied,
                 (unsigned long long)st->applied);
        for (int k = 0; k < NKEYS; k++) {
            st->kv_val[k] = get64(p + 16 + 16 * k);
            st->kv_idx[k] = get64(p + 24 + 16 * k);
            /* every value must be the write applied at its index */
            if (st->kv_idx[k]) {
                oent *o = oracle_at(s, st->kv_idx[k]);
                if (o->set && o->val != st->kv_val[k])
                    fail(s,
                         "n%llu: snapshot holds key %d = %llu from index "
                         "%llu, but that index wrote %llu",
                         (unsigned long long)nd->id, k, (unsigned long long)st->kv_val[k],
                         (unsigned long long)st->kv_idx[k], (unsigned long long)o->val);
            }
        }
        free(st->snap_data);
        st->snap_data = xrealloc(NULL, st->stg_len);
        memcpy(st->snap_data, st->stg, st->stg_len);
        st->snap_len = st->stg_len;
        st->snap = rd->snap;
        st->conf = rd->snap.conf;
        store_truncate(st, 0);
        s->stat_snap_installs++;
        ev(s, "n%llu installs snapshot %llu/%llu", (unsigned long long)nd->id,
           (unsigned long long)rd->snap.index, (unsigned long long)rd->snap.term);
    }
    if (rd->truncate_from) {
        if (rd->truncate_from <= st->applied)
            fail(s, "n%llu: truncation from %llu below applied %llu", (unsigned long long)nd->id,
                 (unsigned long long)rd->truncate_from, (unsigned long long)st->applied);
        store_truncate(st, rd->truncate_from);
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry *e = &rd->entries[i];
        if (e->index != store_last(st) + 1) {
            fail(s, "n%llu: storage append of index %llu after %llu", (unsigned long long)nd->id,
                 (unsigned long long)e->index, (unsigned long long)store_last(st));
            return;
        }
        GROW(st->log, st->cap_log, st->n_log + 1);
        raft_entry *d = &st->log[st->n_log++];
        *d = *e;
        d->data = NULL;
        if (e->len) {
            d->data = xrealloc(NULL, e->len);
            memcpy(d->data, e->data, e->len);
        }
    }
    if (rd->compact_to)
        store_compact(st, rd->compact_to);
}

static void send_all(sim *s, int ni, const raft_ready *rd)
{
    node *nd = &s->nodes[ni];
    for (size_t i = 0; i < rd->n_msgs; i++) {
        raft_msg m = rd->msgs[i];
        if (m.type == RAFT_MSG_SNAP) {
            /* fill the chunk from our current snapshot */
            if (m.snap_index != nd->st.snap.index || !nd->st.snap_data)
                continue;
            if (m.offset > nd->st.snap_len)
                continue;
            size_t left = nd->st.snap_len - (size_t)m.offset;
            size_t n = left < s->chunk ? left : s->chunk;
            m.data = nd->st.snap_data + m.offset;
            m.len = (uint32_t)n;
            m.last = n == left;
        }
        if (m.type == RAFT_MSG_APPEND_RESP && !m.reject) {
            if (m.term != nd->ack_term) {
                nd->ack_term = m.term;
                nd->ack_index = 0;
            }
            if (m.index > nd->ack_index)
                nd->ack_index = m.index;
        }
        net_send(s, &m);
    }
}

/* Entries a node acknowledged in its current term stay in its log: the
 * leader of that term may have counted them toward a commit. Only a
 * leader of a later term may overwrite them (a stale append or snapshot
 * of the same term must not: MUTANT_SNAP_NO_IGNORE drops them). */
static void check_acked_kept(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    if (!nd->up || !nd->ack_index || nd->st.hs.term != nd->ack_term)
        return;
    if (store_last(&nd->st) < nd->ack_index)
        fail(s, "n%llu acknowledged entries to %llu in term %llu, its log now ends at %llu",
             (unsigned long long)nd->id, (unsigned long long)nd->ack_index,
             (unsigned long long)nd->ack_term, (unsigned long long)store_last(&nd->st));
}

/* ------------------------------------------------------------------ */
/* leases: log commands, the state machine's table, the leader's glue  */

/* Lease commands are LEASE_CMD bytes: kind, then two numbers:
 * grant (ttl_ms, the client's request number), revoke (id, 0),
 * expire (id, the leader's clock when it proposed it: only the checks
 * read it, never the state machine). */
#define LEASE_CMD 17
enum { CMD_GRANT = 0xA1, CMD_REVOKE = 0xA2, CMD_EXPIRE = 0xA3 };

static int is_lease_cmd(const raft_entry *e)
{
    return e->type == RAFT_ENTRY_NORMAL && e->len == LEASE_CMD && e->data[0] >= CMD_GRANT &&
           e->data[0] <= CMD_EXPIRE;
}

static int propose_lease_cmd(sim *s, int ni, int kind, uint64_t a, uint64_t b, uint64_t *index,
                             uint64_t *term)
{
    uint8_t cmd[LEASE_CMD];
    cmd[0] = (uint8_t)kind;
    put64(cmd + 1, a);
    put64(cmd + 9, b);
    return raft_propose(s->nodes[ni].core, cmd, sizeof cmd, index, term);
}

static simlease *lease_rec(sim *s, uint64_t id)
{
    if (id == 0 || id >= s->cap_oracle)
        return NULL;
    size_t r = s->oracle[id].lrec;
    return r ? &s->leases[r - 1] : NULL;
}

static int sm_lease_find(const store *st, uint64_t id)
{
    for (uint64_t k = 0; k < st->n_leases; k++)
        if (st->lease_id[k] == id)
            return (int)k;
    return -1;
}

/* Leadership as raftd sees it at each ready, before applying: won (or
 * won again in a new term) -> load every lease of the applied state and
 * start; lost -> stop. */
static void lease_sync(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    raft_status_info st;
    raft_status(nd->core, &st);
    int lead = st.role == RAFT_LEADER;
    if (lease_leading(nd->lt) && (!lead || nd->lt_term != st.term))
        lease_leader_stop(nd->lt);
    if (!lead || lease_leading(nd->lt))
        return;
    for (uint64_t k = 0; k < nd->st.n_leases; k++) {
        int rc = lease_load(nd->lt, nd->st.lease_id[k], nd->st.lease_ttl[k]);
        if (rc != LEASE_OK)
            fail(s, "n%llu: lease_load(%llu): %s", (unsigned long long)nd->id,
                 (unsigned long long)nd->st.lease_id[k], lease_strerror(rc));
    }
    lease_leader_start(nd->lt, now_ms(s));
    nd->lt_term = st.term;
    nd->lt_start = now_ms(s);
}

/* When an abandoned lease may expire at the earliest: ttl after its last
 * renewal, after it was abandoned (or revoked), and after the heal (the
 * faults may keep every leader away before). */
static uint64_t lease_quiet_since(const sim *s, const simlease *l)
{
    uint64_t b = l->last_ack > l->quiet_from ? l->last_ack : l->quiet_from;
    return b > s->heal_ms ? b : s->heal_ms;
}

/* ... and leader li counts its ttl from its election at the earliest. */
static uint64_t lease_counted_from(const sim *s, const simlease *l, int li)
{
    uint64_t b = lease_quiet_since(s, l);
    return b > s->nodes[li].lt_start ? b : s->nodes[li].lt_start;
}

/* A lease ends (revoke or expire applied on node ni). Safety: an expire
 * was proposed at least ttl after the last renewal answered 200 (and
 * after the grant was submitted). */
static void lease_ended(sim *s, int ni, uint64_t id, int by_expire, uint64_t proposed_at)
{
    oent *o = oracle_at(s, id);
    if (!o->lended) {
        /* kept for a client that hears of its grant only later */
        o->lended = 1;
        o->lby_expire = by_expire;
        o->lend_ms = now_ms(s);
        o->lend_p = proposed_at;
    }
    simlease *l = lease_rec(s, id);
    if (!l)
        return; /* no client heard of it yet */
    if (by_expire && l->last_ack + l->ttl > proposed_at)
        fail(s,
             "lease ended early: n%llu applies the expire of lease %llu "
             "proposed at %llu ms, but a renewal was answered at %llu ms "
             "(ttl %llu ms)",
             (unsigned long long)s->nodes[ni].id, (unsigned long long)id,
             (unsigned long long)proposed_at, (unsigned long long)l->last_ack,
             (unsigned long long)l->ttl);
    if (l->ended)
        return;
    l->ended = 1;
    l->by_expire = by_expire;
    l->end_ms = o->lend_ms;
    l->end_p = proposed_at;
    if (by_expire) {
        s->stat_expired++;
        if (!s->faults) {
            /* accuracy after the heal: how long past ttl it lived */
            uint64_t base = lease_quiet_since(s, l);
            uint64_t late = l->end_ms > base + l->ttl ? l->end_ms - base - l->ttl : 0;
            if (late > s->stat_late_ms)
                s->stat_late_ms = late;
            /* and its proposal by the leader, counted as the check does */
            int li = leader_index(s);
            base = li >= 0 ? lease_counted_from(s, l, li) : UINT64_MAX;
            if (li >= 0 && o->lgrant_ms > base)
                base = o->lgrant_ms;
            late = l->proposed_ms > base + l->ttl ? l->proposed_ms - base - l->ttl : 0;
            if (l->proposed_ms >= base && late > s->stat_late_elect_ms)
                s->stat_late_elect_ms = late;
            s->stat_late_n++;
        }
    } else {
        s->stat_revoked++;
    }
}

/* A grant applied at the node that proposed it: its client has the
 * answer, and counts ttl from when it asked. */
static void grant_answered(sim *s, int ni, const raft_entry *e, uint64_t ttl, uint64_t req)
{
    node *nd = &s->nodes[ni];
    if (req < 1 || req > s->n_grants)
        return;
    grantreq *g = &s->grants[req - 1];
    if (g->node != ni || g->incarnation != nd->incarnation || g->index != e->index ||
        g->term != e->term)
        return;
    g->node = -1; /* answered once */
    GROW(s->leases, s->cap_leases, s->n_leases + 1);
    simlease *l = &s->leases[s->n_leases++];
    memset(l, 0, sizeof *l);
    l->id = e->index;
    l->ttl = ttl;
    l->last_ack = g->submitted;
    uint64_t now = now_ms(s);
    l->next_renew = now + ttl * (25 + rnd_below(85)) / 100;
    l->state = s->faults ? LS_ACTIVE : LS_ABANDONED;
    l->quiet_from = now;
    s->stat_grants++;
    oent *o = oracle_at(s, e->index);
    o->lrec = s->n_leases;
    /* the answer may come after the lease already ended elsewhere (this
     * node then skips the end in a snapshot): no earlier than ttl after
     * the grant was asked for */
    if (o->lended)
        lease_ended(s, ni, l->id, o->lby_expire, o->lend_p);
}

/* Apply a lease command to node ni's state machine (the same on every
 * node: nothing here reads the clock or the node's role), then tell the
 * leader's table. */
static void lease_apply(sim *s, int ni, const raft_entry *e)
{
    node *nd = &s->nodes[ni];
    store *st = &nd->st;
    uint64_t a = get64(e->data + 1), b = get64(e->data + 9);
    if (e->data[0] == CMD_GRANT) {
        if (st->n_leases == SIM_LEASES || !lease_ttl_valid(a))
            return; /* answered "too many leases" / 400 */
        st->lease_id[st->n_leases] = e->index;
        st->lease_ttl[st->n_leases] = a;
        st->n_leases++;
        if (lease_leading(nd->lt)) {
            oracle_at(s, e->index)->lgrant_ms = now_ms(s);
            int rc = lease_granted(nd->lt, e->index, a, now_ms(s));
            if (rc != LEASE_OK)
                fail(s, "n%llu: lease_granted(%llu): %s", (unsigned long long)nd->id,
                     (unsigned long long)e->index, lease_strerror(rc));
        }
        grant_answered(s, ni, e, a, b);
        return;
    }
    int k = sm_lease_find(st, a);
    if (k < 0)
        return; /* unknown: revoke is a 404, expire a no-op */
    for (uint64_t j = (uint64_t)k; j + 1 < st->n_leases; j++) {
        st->lease_id[j] = st->lease_id[j + 1];
        st->lease_ttl[j] = st->lease_ttl[j + 1];
    }
    st->n_leases--;
    st->lease_id[st->n_leases] = st->lease_ttl[st->n_leases] = 0;
    lease_removed(nd->lt, a);
    lease_ended(s, ni, a, e->data[0] == CMD_EXPIRE, b);
}

/* A renewal's ReadIndex round is confirmed and applied at node ni (or,
 * in a mutant, no round at all): the leader's answer. */
static void renew_answer(sim *s, int ni, uint64_t id, uint64_t submitted, uint64_t term)
{
    node *nd = &s->nodes[ni];
    uint64_t now = now_ms(s);
    int rc = LEASE_ENOTLEADER;
    if (lease_leading(nd->lt) && nd->lt_term == term)
        rc = lease_renew_check(nd->lt, id, submitted, now);
    simlease *l = lease_rec(s, id);
    if (rc != LEASE_OK) {
        s->stat_renew_refused++;
        if (l && (rc == LEASE_EUNKNOWN || rc == LEASE_EEXPIRING) && l->state == LS_ACTIVE) {
            l->state = LS_ABANDONED; /* the client learns it is gone */
            l->quiet_from = now;
        }
        return;
    }
    s->stat_renew_ok++;
    if (!l)
        return;
    if (l->ended && l->end_ms < submitted)
        fail(s,
             "renewal of lease %llu submitted at %llu ms answered 200 by "
             "n%llu, but the lease ended at %llu ms",
             (unsigned long long)id, (unsigned long long)submitted, (unsigned long long)nd->id,
             (unsigned long long)l->end_ms);
    else if (l->ended && l->by_expire && l->end_p < now + l->ttl)
        fail(s,
             "lease ended early: n%llu answers a renewal of lease %llu at "
             "%llu ms, but its expire (proposed at %llu ms, ttl %llu ms) "
             "is applied",
             (unsigned long long)nd->id, (unsigned long long)id, (unsigned long long)now,
             (unsigned long long)l->end_p, (unsigned long long)l->ttl);
    if (now > l->last_ack)
        l->last_ack = now;
}

static void apply_all(sim *s, int ni, const raft_ready *rd)
{
    node *nd = &s->nodes[ni];
    store *st = &nd->st;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry *e = &rd->committed[i];
        if (e->index != st->applied + 1) {
            fail(s, "n%llu: applies index %llu after %llu", (unsigned long long)nd->id,
                 (unsigned long long)e->index, (unsigned long long)st->applied);
            return;
        }
        if (e->index > store_last(st))
            fail(s, "n%llu: applies index %llu that is not on its disk (last %llu)",
                 (unsigned long long)nd->id, (unsigned long long)e->index,
                 (unsigned long long)store_last(st));
        check_apply(s, ni, e);
        if (e->type == RAFT_ENTRY_NORMAL && e->len == 9) {
            int k = e->data[0] % NKEYS;
            uint64_t val = get64(e->data + 1);
            st->kv_val[k] = val;
            st->kv_idx[k] = e->index;
            /* the proposer acknowledges its client */
            if (val >= 1 && val <= s->n_props) {
                proposal *p = &s->props[val - 1];
                if (p->node == ni && p->incarnation == nd->incarnation && p->index == e->index &&
                    p->term == e->term && !p->acked) {
                    p->acked = 1;
                    s->stat_acked++;
                    if (e->index > s->acked_max)
                        s->acked_max = e->index;
                    if (e->index > s->acked_key[k])
                        s->acked_key[k] = e->index;
                }
            }
        }
        if (e->type == RAFT_ENTRY_CONFIG &&
            raft_config_decode(&st->conf, e->data, e->len) != RAFT_OK)
            fail(s, "n%llu: applied a CONFIG entry that does not decode",
                 (unsigned long long)nd->id);
        if (is_lease_cmd(e))
            lease_apply(s, ni, e);
        st->applied = e->index;
        st->applied_term = e->term;
        /* determinism: the same lease table after the same index */
        oent *o = oracle_at(s, e->index);
        uint64_t h = lease_hash(st);
        if (!o->lset) {
            o->lset = 1;
            o->lhash = h;
        } else if (o->lhash != h) {
            fail(s,
                 "state machine safety: n%llu holds another lease table "
                 "(%llu leases) after applying %llu than the node that "
                 "applied it first",
                 (unsigned long long)nd->id, (unsigned long long)st->n_leases,
                 (unsigned long long)e->index);
        }
    }
}

static void answer_reads(sim *s, int ni, const raft_ready *rd)
{
    node *nd = &s->nodes[ni];
    for (size_t i = 0; i < rd->n_reads; i++) {
        uint64_t ctx = rd->reads[i].ctx;
        if (ctx == 0 || ctx > s->n_reads) {
            fail(s, "n%llu: read with unknown ctx %llu", (unsigned long long)nd->id,
                 (unsigned long long)ctx);
            continue;
        }
        readreq *q = &s->reads[ctx - 1];
        if (q->node != ni || q->incarnation != nd->incarnation || q->done) {
            fail(s, "n%llu: read %llu released at the wrong node or twice",
                 (unsigned long long)nd->id, (unsigned long long)ctx);
            continue;
        }
        q->done = 1;
        if (rd->reads[i].index < q->need) {
            fail(s,
                 "linearizability: read %llu at n%llu released with index "
                 "%llu but write at index %llu was acknowledged before it "
                 "was issued",
                 (unsigned long long)ctx, (unsigned long long)nd->id,
                 (unsigned long long)rd->reads[i].index, (unsigned long long)q->need);
            continue;
        }
        q->index = rd->reads[i].index;
        GROW(nd->rq, nd->cap_rq, nd->n_rq + 1);
        nd->rq[nd->n_rq++] = ctx;
    }
    for (size_t i = 0; i < rd->n_reads_failed; i++) {
        uint64_t ctx = rd->reads_failed[i];
        if (ctx >= 1 && ctx <= s->n_reads)
            s->reads[ctx - 1].done = 1;
    }
}

/* The client's answer: once the node applied up to the read index, the
 * value it reads must be the last write to that key acknowledged before
 * the read was issued, or a newer one. */
static void serve_reads(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    size_t keep = 0;
    for (size_t i = 0; i < nd->n_rq; i++) {
        readreq *q = &s->reads[nd->rq[i] - 1];
        if (nd->st.applied < q->index) {
            nd->rq[keep++] = nd->rq[i];
            continue;
        }
        if (q->renew) {
            renew_answer(s, ni, q->lease, q->submitted, q->term);
            continue;
        }
        uint64_t got = nd->st.kv_idx[q->key];
        if (got < q->need_key)
            fail(s,
                 "linearizability: read %llu of key %d at n%llu sees the "
                 "write at index %llu, but the write at index %llu was "
                 "acknowledged before the read was issued",
                 (unsigned long long)nd->rq[i], q->key, (unsigned long long)nd->id,
                 (unsigned long long)got, (unsigned long long)q->need_key);
        else
            s->stat_reads_ok++;
    }
    nd->n_rq = keep;
}

/* rd.loads: read the entries back from this node's stored log, as raftd
 * reads them from SQLite. Under faults an answer is sometimes lost (the
 * core asks again) or shorter than it could be. */
static void answer_loads(sim *s, int ni, const raft_load *ls, size_t n)
{
    node *nd = &s->nodes[ni];
    store *st = &nd->st;
    for (size_t k = 0; k < n && nd->up && !s->failed; k++) {
        const raft_load *l = &ls[k];
        s->stat_loads++;
        if (s->faults && chance(30))
            continue;
        size_t first = 0, cnt = 0, bytes = 0;
        if (st->n_log && l->from >= st->log[0].index && l->from <= store_last(st)) {
            first = (size_t)(l->from - st->log[0].index);
            while (first + cnt < st->n_log && st->log[first + cnt].index <= l->upto) {
                size_t len = st->log[first + cnt].len;
                if (cnt > 0 && bytes + len > l->max_bytes)
                    break;
                bytes += len;
                cnt++;
            }
            if (cnt > 1 && s->faults && chance(100))
                cnt = 1 + (size_t)rnd_below(cnt - 1);
        }
        int rc = raft_entries_loaded(nd->core, l->id, cnt ? &st->log[first] : NULL, cnt);
        if (rc != RAFT_OK)
            fail(s, "n%llu: raft_entries_loaded(%llu..) of its own log: %s",
                 (unsigned long long)nd->id, (unsigned long long)l->from, raft_strerror(rc));
    }
}

/* Persist, send, apply, answer, advance: with crashes between. */
static void process(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    int rounds = 0;
    while (nd->up && raft_has_ready(nd->core) && !s->failed) {
        if (++rounds > 1000) {
            fail(s, "n%llu: ready loop does not settle", (unsigned long long)nd->id);
            return;
        }
        raft_ready rd;
        raft_ready_get(nd->core, &rd);
        /* a node that won comes with its no-op entry in this ready */
        if (lease_leading(nd->lt) || rd.n_entries || rd.hs_changed)
            lease_sync(s, ni);
        int crash_at = -1;
        if (s->faults && chance(s->p_ready_crash))
            crash_at = (int)rnd_below(4);
        if (crash_at == 0) {
            node_crash(s, ni, "before persist");
            return;
        }
        persist(s, ni, &rd);
        check_acked_kept(s, ni);
        if (crash_at == 1) {
            node_crash(s, ni, "after persist, before send");
            return;
        }
        send_all(s, ni, &rd);
        if (crash_at == 2) {
            node_crash(s, ni, "after send, before apply");
            return;
        }
        apply_all(s, ni, &rd);
        answer_reads(s, ni, &rd);
        serve_reads(s, ni);
        raft_load loads[RAFT_MAX_NODES * 2];
        size_t n_loads = rd.n_loads < RAFT_MAX_NODES * 2 ? rd.n_loads : RAFT_MAX_NODES * 2;
        if (rd.n_loads > RAFT_MAX_NODES * 2)
            fail(s, "n%llu: %zu loads in one ready", (unsigned long long)nd->id, rd.n_loads);
        if (n_loads)
            memcpy(loads, rd.loads, n_loads * sizeof *loads);
        raft_advance(nd->core, &rd);
        if (crash_at == 3) {
            node_crash(s, ni, "after advance");
            return;
        }
        answer_loads(s, ni, loads, n_loads);
        check_log_memory(s, ni);
    }
    /* take a snapshot now and then */
    store *st = &nd->st;
    if (nd->up && st->applied >= st->snap.index + nd->snap_every && st->applied > 0) {
        raft_snap_meta meta;
        meta.index = st->applied;
        meta.term = st->applied_term;
        /* the configuration as of the applied index, tracked from the
         * CONFIG entries applied (as raftd does) */
        meta.conf = st->conf;
        if (meta.conf.n == 0)
            return;
        uint8_t *buf = xrealloc(NULL, SNAP_BYTES);
        state_serialize(st, buf);
        free(st->snap_data);
        st->snap_data = buf;
        st->snap_len = SNAP_BYTES;
        st->snap = meta;
        int rc = raft_snapshot_taken(nd->core, meta.index);
        if (rc != RAFT_OK)
            fail(s, "n%llu: snapshot_taken(%llu) failed: %s", (unsigned long long)nd->id,
                 (unsigned long long)meta.index, raft_strerror(rc));
        ev(s, "n%llu snapshot at %llu", (unsigned long long)nd->id, (unsigned long long)meta.index);
        /* compaction shows up in a ready */
        process(s, ni);
    }
}

/* ------------------------------------------------------------------ */
/* node lifecycle                                                      */

static void node_start(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    raft_options o = s->opts;
    o.id = nd->id;
    o.seed = s->seed * 1000003ULL + nd->id * 7919ULL + nd->incarnation;
    nd->core = raft_new(&o);
    if (!nd->core) {
        fail(s, "raft_new failed");
        return;
    }
    store *st = &nd->st;
    raft_entry *es = st->log;
    size_t n = st->n_log;
    while (n && es[0].index <= st->snap.index) {
        es++;
        n--;
    }
    int rc = raft_restore(nd->core, &st->hs, st->snap.index ? &st->snap : NULL, es, n, st->applied);
    if (rc != RAFT_OK) {
        fail(s,
             "n%llu: raft_restore rejected its own storage: %s "
             "(applied %llu, snap %llu, log %zu entries from %llu)",
             (unsigned long long)nd->id, raft_strerror(rc), (unsigned long long)st->applied,
             (unsigned long long)st->snap.index, n, (unsigned long long)(n ? es[0].index : 0));
        raft_free(nd->core);
        nd->core = NULL;
        return;
    }
    /* room beyond the state machine's limit: a mutant's stale entries */
    nd->lt = lease_table_new(4 * SIM_LEASES, guard_ms(s));
    nd->lt_term = 0;
    if (!nd->lt) {
        fail(s, "lease_table_new failed");
        raft_free(nd->core);
        nd->core = NULL;
        return;
    }
    nd->up = 1;
    nd->incarnation++;
}

static void node_restart(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    node_start(s, ni);
    if (nd->up)
        ev(s, "n%llu restart (term %llu, snap %llu, log to %llu, applied %llu)",
           (unsigned long long)nd->id, (unsigned long long)nd->st.hs.term,
           (unsigned long long)nd->st.snap.index, (unsigned long long)store_last(&nd->st),
           (unsigned long long)nd->st.applied);
}

static int leader_index(sim *s)
{
    int best = -1;
    uint64_t bt = 0;
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        if (!nd->up)
            continue;
        raft_status_info st;
        raft_status(nd->core, &st);
        if (st.role == RAFT_LEADER && st.term >= bt) {
            best = i;
            bt = st.term;
        }
    }
    return best;
}

static int node_usable(const sim *s, int i)
{
    const node *nd = &s->nodes[i];
    return nd->up && nd->frozen_until <= s->step;
}

/* ------------------------------------------------------------------ */
/* client and operator actions                                         */

static void do_propose(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    GROW(s->props, s->cap_props, s->n_props + 1);
    proposal *p = &s->props[s->n_props];
    uint8_t data[9];
    p->key = (int)rnd_below(NKEYS);
    p->val = s->n_props + 1;
    data[0] = (uint8_t)p->key;
    put64(data + 1, p->val);
    int rc = raft_propose(nd->core, data, sizeof data, &p->index, &p->term);
    if (rc != RAFT_OK)
        return;
    p->node = ni;
    p->incarnation = nd->incarnation;
    p->acked = 0;
    s->n_props++;
    ev(s, "n%llu propose val %llu at %llu/%llu", (unsigned long long)nd->id,
       (unsigned long long)p->val, (unsigned long long)p->index, (unsigned long long)p->term);
}

static void do_read(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    GROW(s->reads, s->cap_reads, s->n_reads + 1);
    uint64_t ctx = s->n_reads + 1;
    int rc = raft_read_index(nd->core, ctx);
    if (rc != RAFT_OK)
        return;
    readreq *q = &s->reads[s->n_reads++];
    q->node = ni;
    q->incarnation = nd->incarnation;
    q->need = s->acked_max;
    q->key = (int)rnd_below(NKEYS);
    q->need_key = s->acked_key[q->key];
    q->index = 0;
    q->done = 0;
    q->renew = 0;
    ev(s, "n%llu read %llu (needs %llu)", (unsigned long long)nd->id, (unsigned long long)ctx,
       (unsigned long long)q->need);
}

/* ------------------------------------------------------------------ */
/* lease clients and the leader's expiry                               */

/* The node a lease request reaches: the one the client picked if it
 * thinks it leads, else the leader it would forward to (raftd forwards
 * lease requests to the leader it knows); -1 when none is reachable.
 * A stale leader that still thinks it leads is picked too. */
static int lease_target(sim *s)
{
    int i = (int)rnd_below((uint64_t)s->n);
    if (node_usable(s, i)) {
        raft_status_info st;
        raft_status(s->nodes[i].core, &st);
        if (st.role == RAFT_LEADER)
            return i;
    }
    i = leader_index(s);
    return i >= 0 && node_usable(s, i) ? i : -1;
}

static void do_grant(sim *s)
{
    int ni = lease_target(s);
    if (ni < 0)
        return;
    uint64_t ttl = KV_LEASE_TTL_MIN_MS + rnd_below(3001);
    GROW(s->grants, s->cap_grants, s->n_grants + 1);
    grantreq *g = &s->grants[s->n_grants];
    if (propose_lease_cmd(s, ni, CMD_GRANT, ttl, s->n_grants + 1, &g->index, &g->term) != RAFT_OK)
        return;
    g->node = ni;
    g->incarnation = s->nodes[ni].incarnation;
    g->submitted = now_ms(s);
    s->n_grants++;
    ev(s, "n%llu lease_grant ttl %llu at %llu", (unsigned long long)s->nodes[ni].id,
       (unsigned long long)ttl, (unsigned long long)g->index);
    process(s, ni);
}

/* A renewal: a ReadIndex read on leader ni; its release renews
 * (renew_answer). */
static void renew_at(sim *s, int ni, simlease *l)
{
    node *nd = &s->nodes[ni];
    raft_status_info st;
    raft_status(nd->core, &st);
    if (st.role != RAFT_LEADER)
        return;
#ifdef MUTANT_LEASE_RENEW_NO_ROUND
    /* answered from the leader's table at once, without a round */
    renew_answer(s, ni, l->id, now_ms(s), st.term);
    return;
#endif
    GROW(s->reads, s->cap_reads, s->n_reads + 1);
    uint64_t ctx = s->n_reads + 1;
    if (raft_read_index(nd->core, ctx) != RAFT_OK)
        return;
    readreq *q = &s->reads[s->n_reads++];
    memset(q, 0, sizeof *q);
    q->node = ni;
    q->incarnation = nd->incarnation;
    q->need = s->acked_max;
    q->renew = 1;
    q->lease = l->id;
    q->submitted = now_ms(s);
    q->term = st.term;
    process(s, ni);
    if (nd->up && chance(30)) {
        /* the leader pauses with the round in flight for two to four
         * election timeouts: a leader is elected meanwhile and this one
         * would answer when it thaws (the guard refuses it); the client
         * may give up on the lease right after this renewal */
        uint64_t et = (uint64_t)s->tick_period * s->opts.election_ticks;
        nd->frozen_until = s->step + 2 * et + rnd_below(2 * et);
        ev(s, "n%llu frozen until %llu", (unsigned long long)nd->id,
           (unsigned long long)nd->frozen_until);
        if (chance(500)) {
            l->state = LS_ABANDONED;
            l->quiet_from = now_ms(s);
        }
    }
}

static simlease *random_active_lease(sim *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_leases; i++)
        n += s->leases[i].state == LS_ACTIVE && !s->leases[i].ended;
    if (n == 0)
        return NULL;
    size_t k = (size_t)rnd_below(n);
    for (size_t i = 0; i < s->n_leases; i++)
        if (s->leases[i].state == LS_ACTIVE && !s->leases[i].ended && k-- == 0)
            return &s->leases[i];
    return NULL;
}

static void do_renew(sim *s, simlease *l)
{
    int ni = lease_target(s);
    if (ni >= 0)
        renew_at(s, ni, l);
}

static void do_revoke(sim *s, simlease *l)
{
    int ni = lease_target(s);
    uint64_t idx, term;
    if (ni < 0 || propose_lease_cmd(s, ni, CMD_REVOKE, l->id, 0, &idx, &term) != RAFT_OK)
        return;
    l->state = LS_REVOKED;
    l->quiet_from = now_ms(s);
    ev(s, "n%llu lease_revoke %llu at %llu", (unsigned long long)s->nodes[ni].id,
       (unsigned long long)l->id, (unsigned long long)idx);
    process(s, ni);
}

/* Clients grant leases, renew them (some late, near the deadline), and
 * abandon or revoke them. Once a tick, while the faults last. */
static void lease_client_events(sim *s)
{
    if (!s->p_grant || s->step % s->tick_period)
        return;
    if (chance(s->p_grant))
        do_grant(s);
    uint64_t now = now_ms(s);
    for (size_t i = 0; i < s->n_leases && !s->failed; i++) {
        simlease *l = &s->leases[i];
        if (l->state != LS_ACTIVE || l->ended || l->next_renew > now)
            continue;
        l->next_renew = now + l->ttl * (25 + rnd_below(85)) / 100;
        if (chance(100)) {
            l->state = LS_ABANDONED;
            l->quiet_from = now;
            ev(s, "lease %llu abandoned", (unsigned long long)l->id);
        } else if (chance(25)) {
            do_revoke(s, l);
        } else {
            do_renew(s, l);
        }
    }
}

/* Every leader proposes lease_expire for each lease lease_due() hands
 * out (a frozen one does nothing until it thaws). */
static void lease_leader_events(sim *s)
{
    uint64_t now = now_ms(s), due[4 * SIM_LEASES];
    for (int i = 0; i < s->n && !s->failed; i++) {
        node *nd = &s->nodes[i];
        if (!node_usable(s, i) || lease_next_expiry(nd->lt) > now)
            continue;
        lease_sync(s, i); /* a check-quorum step-down comes without a ready */
        size_t n = lease_due(nd->lt, now, due, sizeof due / sizeof due[0]);
        for (size_t k = 0; k < n; k++) {
            uint64_t idx = 0, term;
            int rc = propose_lease_cmd(s, i, CMD_EXPIRE, due[k], now, &idx, &term);
            if (rc != RAFT_OK)
                lease_expire_refused(nd->lt, due[k], now);
            simlease *l = lease_rec(s, due[k]);
            /* the first proposal since lease_counted_from() */
            if (rc == RAFT_OK && l && i == leader_index(s) &&
                (l->prop_node != i + 1 || l->prop_term != nd->lt_term)) {
                l->proposed_ms = now;
                l->prop_node = i + 1;
                l->prop_term = nd->lt_term;
            }
            ev(s, "n%llu lease_expire %llu: %s at %llu", (unsigned long long)nd->id,
               (unsigned long long)due[k], rc == RAFT_OK ? "proposed" : "refused",
               (unsigned long long)idx);
        }
        if (n)
            process(s, i);
    }
}

/* A removed node loses its disk and comes back as a brand-new, empty
 * node under a new id: it joins through the learner path (log or
 * snapshot catch-up, then promotion). */
static void node_wipe(sim *s, int ni)
{
    node *nd = &s->nodes[ni];
    if (nd->up)
        raft_free(nd->core);
    nd->core = NULL;
    lease_table_free(nd->lt);
    nd->lt = NULL;
    nd->up = 0;
    nd->frozen_until = 0;
    store_free(&nd->st);
    nd->n_rq = 0;
    nd->ack_term = nd->ack_index = 0;
    uint64_t old = nd->id;
    nd->id += 10;
    node_start(s, ni);
    s->stat_wipes++;
    ev(s, "n%llu wiped, returns empty as n%llu", (unsigned long long)old,
       (unsigned long long)nd->id);
}

static void do_member(sim *s, int li)
{
    node *ld = &s->nodes[li];
    const raft_config *c = raft_config_get(ld->core);
    /* re-add a node that is out, else remove one */
    for (uint32_t k = 0; k < c->n; k++) {
        uint64_t idx = 0;
        if (!c->nodes[k].voter && raft_promote_node(ld->core, c->nodes[k].id, &idx) == RAFT_OK) {
            s->stat_confs++;
            ev(s, "n%llu promotes n%llu at %llu", (unsigned long long)ld->id,
               (unsigned long long)c->nodes[k].id, (unsigned long long)idx);
            return;
        }
    }
    for (int i = 0; i < s->n; i++) {
        if (raft_config_find(c, s->nodes[i].id))
            continue;
        char meta[32];
        snprintf(meta, sizeof meta, "node%d", i);
        uint64_t idx = 0;
        int rc;
        if (s->faults && chance(300)) {
            /* only once its removal is committed (the add succeeds only
             * then) may a node be wiped and come back as a new one */
            rc = raft_add_node(ld->core, s->nodes[i].id + 10, meta, &idx);
            if (rc == RAFT_OK)
                node_wipe(s, i);
        } else {
            rc = raft_add_node(ld->core, s->nodes[i].id, meta, &idx);
        }
        if (rc == RAFT_OK) {
            s->stat_confs++;
            ev(s, "n%llu adds n%llu at %llu", (unsigned long long)ld->id,
               (unsigned long long)s->nodes[i].id, (unsigned long long)idx);
        }
        return;
    }
    if (!s->faults)
        return;
    unsigned voters = 0;
    for (uint32_t i = 0; i < c->n; i++)
        voters += c->nodes[i].voter;
    if (voters < 3)
        return;
    int victim = (int)rnd_below((uint64_t)s->n);
    uint64_t idx = 0;
    int rc = raft_remove_node(ld->core, s->nodes[victim].id, &idx);
    if (rc == RAFT_OK) {
        s->stat_confs++;
        ev(s, "n%llu removes n%llu at %llu", (unsigned long long)ld->id,
           (unsigned long long)s->nodes[victim].id, (unsigned long long)idx);
    }
}

static void do_transfer(sim *s, int li)
{
    node *ld = &s->nodes[li];
    int t = (int)rnd_below((uint64_t)s->n);
    if (t == li)
        return;
    if (raft_transfer_leader(ld->core, s->nodes[t].id) == RAFT_OK) {
        s->stat_transfers++;
        s->transfer_to = s->nodes[t].id;
        ev(s, "n%llu transfers leadership to n%llu", (unsigned long long)ld->id,
           (unsigned long long)s->nodes[t].id);
        /* a renewal races the transfer, and is sometimes its client's
         * last: the new leader must not expire it before ttl after the
         * old leader's answer */
        simlease *l = random_active_lease(s);
        if (l) {
            renew_at(s, li, l);
            if (chance(500)) {
                l->state = LS_ABANDONED;
                l->quiet_from = now_ms(s);
            }
        }
        process(s, li);
        if (ld->up && chance(600)) {
            /* the old leader pauses (GC, SIGSTOP) for less than an
             * election timeout just as the target campaigns: the acks of
             * its last round wait, and it answers them after the target
             * won (the votes of a transfer skip the followers' lease) */
            ld->frozen_until = s->step + 1 +
                               rnd_below((uint64_t)s->tick_period * s->opts.election_ticks);
            ev(s, "n%llu frozen until %llu", (unsigned long long)ld->id,
               (unsigned long long)ld->frozen_until);
        }
    }
}

static void heal(sim *s)
{
    memset(s->cut, 0, sizeof s->cut);
}

static void do_partition(sim *s)
{
    heal(s);
    int kind = (int)rnd_below(5);
    int n = s->n;
    switch (kind) {
    case 0: /* heal */ ev(s, "network healed"); return;
    case 1: { /* symmetric split */
        unsigned mask = (unsigned)rnd_below((1u << n) - 2) + 1;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++)
                if (((mask >> a) & 1) != ((mask >> b) & 1))
                    s->cut[a][b] = 1;
        ev(s, "partition: split mask %x", mask);
        return;
    }
    case 2: { /* one-way cuts */
        int k = 1 + (int)rnd_below(3);
        for (int i = 0; i < k; i++) {
            int a = (int)rnd_below((uint64_t)n), b = (int)rnd_below((uint64_t)n);
            if (a != b)
                s->cut[a][b] = 1;
        }
        ev(s, "partition: %d one-way cuts", k);
        return;
    }
    case 3: { /* bridge: x talks to both sides, the sides not to each other */
        int x = (int)rnd_below((uint64_t)n);
        unsigned mask = (unsigned)rnd();
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++)
                if (a != x && b != x && ((mask >> a) & 1) != ((mask >> b) & 1))
                    s->cut[a][b] = 1;
        ev(s, "partition: bridge through n%llu", (unsigned long long)s->nodes[x].id);
        return;
    }
    case 4: { /* isolate the leader or a random node */
        int x = leader_index(s);
        if (x < 0 || chance(300))
            x = (int)rnd_below((uint64_t)n);
        for (int a = 0; a < n; a++)
            if (a != x)
                s->cut[a][x] = s->cut[x][a] = 1;
        ev(s, "partition: isolate n%llu", (unsigned long long)s->nodes[x].id);
        return;
    }
    }
}

/* ------------------------------------------------------------------ */
/* one step of simulated time                                          */

/* Deliver every message due now, in the order they were sent (so a link
 * is FIFO unless delays reorder it). */
static void deliver(sim *s)
{
    size_t n0 = s->n_net, w = 0;
    for (size_t i = 0; i < n0; i++) {
        netmsg nm = s->net[i];
        int b = idx_of(s, nm.m.to), a = idx_of(s, nm.m.from);
        if (s->failed || nm.at > s->step ||
            (b >= 0 && s->nodes[b].up && s->nodes[b].frozen_until > s->step)) {
            s->net[w++] = nm;
            continue;
        }
        raft_msg m = nm.m;
        if (b >= 0 && a >= 0 && s->nodes[b].up && !s->cut[a][b]) {
            if (s->verbose && (m.type == RAFT_MSG_SNAP || m.type == RAFT_MSG_SNAP_RESP))
                ev(s, "n%llu -> n%llu %s t%llu snap %llu/%llu off %llu len %u%s%s idx %llu",
                   (unsigned long long)m.from, (unsigned long long)m.to, mtype(m.type),
                   (unsigned long long)m.term, (unsigned long long)m.snap_index,
                   (unsigned long long)m.snap_term, (unsigned long long)m.offset, m.len,
                   m.last ? " LAST" : "", m.reject ? " REJ" : "", (unsigned long long)m.index);
            else if (s->verbose)
                ev(s, "n%llu -> n%llu %s t%llu i%llu lt%llu c%llu n%u%s ctx%llu",
                   (unsigned long long)m.from, (unsigned long long)m.to, mtype(m.type),
                   (unsigned long long)m.term, (unsigned long long)m.index,
                   (unsigned long long)m.log_term, (unsigned long long)m.commit, m.n_entries,
                   m.reject ? " REJ" : "", (unsigned long long)m.ctx);
            int rc = raft_step(s->nodes[b].core, &m);
            if (rc != RAFT_OK)
                fail(s, "n%llu rejected a well-formed %s from n%llu: %s", (unsigned long long)m.to,
                     mtype(m.type), (unsigned long long)m.from, raft_strerror(rc));
            process(s, b);
        }
        msg_free(&m);
    }
    /* messages sent while delivering follow the ones kept */
    size_t added = s->n_net - n0;
    if (added)
        memmove(s->net + w, s->net + n0, added * sizeof *s->net);
    s->n_net = w + added;
}

static void random_events(sim *s)
{
    int n = s->n;
    if (chance(s->p_part))
        do_partition(s);
    for (int i = 0; i < n; i++) {
        node *nd = &s->nodes[i];
        if (!nd->up) {
            if (nd->restart_at <= s->step) {
                node_restart(s, i);
                process(s, i);
            }
            continue;
        }
        if (chance(s->p_crash)) {
            node_crash(s, i, "between readies");
            continue;
        }
        if (nd->frozen_until <= s->step && chance(s->p_freeze)) {
            nd->frozen_until = s->step + 1 + rnd_below(s->tick_period * 30);
            ev(s, "n%llu frozen until %llu", (unsigned long long)nd->id,
               (unsigned long long)nd->frozen_until);
        }
    }
}

static void client_events(sim *s)
{
    int n = s->n;
    for (int i = 0; i < n; i++) {
        if (!node_usable(s, i))
            continue;
        if (s->faults && chance(s->p_propose)) {
            /* clients write in bursts: long uncommitted suffixes on
             * leaders that are then cut off make logs diverge */
            unsigned k = 1 + (unsigned)rnd_below(s->burst);
            for (unsigned j = 0; j < k; j++)
                do_propose(s, i);
            process(s, i);
        }
        if (node_usable(s, i) && chance(s->p_read)) {
            /* reads come in bursts too: a follower batches the reads of
             * one turn into one READ_INDEX */
            unsigned k = 1 + (unsigned)rnd_below(s->burst);
            for (unsigned j = 0; j < k; j++)
                do_read(s, i);
            process(s, i);
        }
    }
    int li = leader_index(s);
    if (li >= 0 && node_usable(s, li) && chance(s->p_member)) {
        do_member(s, li);
        process(s, li);
    }
    li = leader_index(s);
    if (li >= 0 && node_usable(s, li) && s->faults && chance(s->p_transfer)) {
        do_transfer(s, li);
        process(s, li);
    }
    if (s->faults)
        lease_client_events(s);
}

static void tick_all(sim *s)
{
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        if (!node_usable(s, i))
            continue;
        if ((s->step + nd->phase) % s->tick_period == 0) {
            raft_tick(nd->core);
            process(s, i);
        }
    }
}

static void one_step(sim *s)
{
    s->step++;
    if (s->faults)
        random_events(s);
    tick_all(s);
    deliver(s);
    client_events(s);
    lease_leader_events(s);
    check_leaders(s);
    if (s->step % 32 == 0)
        check_log_matching(s);
}

/* ------------------------------------------------------------------ */
/* liveness after the faults end                                       */

static int all_decided(sim *s, uint64_t *first_open)
{
    for (size_t i = 0; i < s->n_props; i++) {
        proposal *p = &s->props[i];
        oent *o = oracle_at(s, p->index);
        if (!o->set) {
            /* nobody applied this index one by one (snapshots covered it):
             * it is decided once the leader's commit index passed it */
            int li = leader_index(s);
            raft_status_info st;
            if (li >= 0) {
                raft_status(s->nodes[li].core, &st);
                if (p->index <= st.commit)
                    continue;
            }
            *first_open = p->val;
            return 0;
        }
        if (p->acked && (o->term != p->term || o->val != p->val)) {
            fail(s, "acknowledged write lost: val %llu at %llu/%llu", (unsigned long long)p->val,
                 (unsigned long long)p->index, (unsigned long long)p->term);
            return 0;
        }
    }
    return 1;
}

/* Liveness of leases after the heal: the leader proposes (once in its
 * term, lib/lease.h) the expire of
 * every lease its client stopped renewing (all of them, from the heal
 * on) within ttl + guard + LEASE_SLACK_ET maximum election timeouts
 * (2e ticks each: a transfer in progress refuses proposals) of
 * lease_counted_from(): the later of its last renewal, abandon, the heal
 * and the leader's election (or its apply of the grant, when later). The
 * expire's commit then waits for the log (a follower catching up hundreds
 * of entries one at a time, say): the phase ends only when no lease is
 * left, within the phase's budget. */
#define LEASE_SLACK_ET 1
static void check_leases_late(sim *s)
{
    uint64_t now = now_ms(s);
    uint64_t bound = guard_ms(s) + LEASE_SLACK_ET * 2 * guard_ms(s);
    int li = leader_index(s);
    if (li < 0)
        return;
    for (size_t i = 0; i < s->n_leases; i++) {
        simlease *l = &s->leases[i];
        /* the leader counts from when it applied the grant, too */
        if (l->ended || s->nodes[li].st.applied < l->id)
            continue;
        uint64_t base = lease_counted_from(s, l, li);
        if (s->oracle[l->id].lgrant_ms > base)
            base = s->oracle[l->id].lgrant_ms;
        /* proposed in this leader's term: it commits or the term ends */
        if (l->prop_node == li + 1 && l->prop_term == s->nodes[li].lt_term)
            continue;
        if (now > base + l->ttl + bound) {
            fail(s,
                 "liveness: the expire of lease %llu (ttl %llu ms) not "
                 "proposed by the leader %llu ms after its last renewal, "
                 "abandon, the heal or the leader's election (bound ttl + "
                 "%llu ms)",
                 (unsigned long long)l->id, (unsigned long long)l->ttl,
                 (unsigned long long)(now - base), (unsigned long long)bound);
            return;
        }
    }
}

static void liveness(sim *s)
{
    s->faults = 0;
    heal(s);
    ev(s, "faults end: network healed, every node resumes");
    /* every lease client stops renewing */
    s->heal_ms = now_ms(s);
    for (size_t i = 0; i < s->n_leases; i++)
        if (s->leases[i].state == LS_ACTIVE) {
            s->leases[i].state = LS_ABANDONED;
            s->leases[i].quiet_from = s->heal_ms;
        }
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        nd->frozen_until = 0;
        if (!nd->up) {
            node_restart(s, i);
            process(s, i);
        }
    }
    uint64_t max_prop = 0;
    for (size_t i = 0; i < s->n_props; i++)
        if (s->props[i].index > max_prop)
            max_prop = s->props[i].index;
    /* bounded: 60 election timeouts without progress, or 2000 election
     * timeouts in all */
    uint64_t budget = (uint64_t)s->tick_period * 60 * s->opts.election_ticks;
    uint64_t cap = (uint64_t)s->tick_period * 2000 * s->opts.election_ticks;
    uint64_t start = s->step, last_progress = s->step;
    /* progress: some node applies more, or the same leader sees its
     * followers' match indexes grow (logs may shrink on truncation, so
     * raw log lengths do not measure it) */
    uint64_t applied_sum = 0, lead_id = 0, lead_term = 0, match_sum = 0;
    while (!s->failed) {
        uint64_t a = 0;
        for (int i = 0; i < s->n; i++)
            a += s->nodes[i].st.applied;
        if (a > applied_sum)
            last_progress = s->step;
        applied_sum = a;
        int lx = leader_index(s);
        if (lx >= 0) {
            raft_status_info st;
            raft_status(s->nodes[lx].core, &st);
            uint64_t m = 0;
            for (size_t k = 0; k < st.n_progress; k++)
                m += st.progress[k].match;
            if (st.id == lead_id && st.term == lead_term && m > match_sum)
                last_progress = s->step;
            lead_id = st.id;
            lead_term = st.term;
            match_sum = m;
        }
        if (s->step - last_progress > budget || s->step - start > cap) {
            uint64_t open = 0;
            all_decided(s, &open);
            int li = leader_index(s);
            for (int i = 0; i < s->n; i++) {
                raft_status_info st;
                if (!s->nodes[i].up)
                    continue;
                raft_status(s->nodes[i].core, &st);
                const raft_config *c = raft_config_get(s->nodes[i].core);
                char cs[128] = "";
                size_t o = 0;
                for (uint32_t k = 0; k < c->n && o < sizeof cs - 16; k++)
                    o += (size_t)snprintf(cs + o, sizeof cs - o, " %llu%s",
                                          (unsigned long long)c->nodes[k].id,
                                          c->nodes[k].voter ? "" : "L");
                ev(s,
                   "n%llu %s term %llu leader %llu commit %llu applied %llu "
                   "last %llu conf[%s ]",
                   (unsigned long long)st.id, raft_role_name(st.role), (unsigned long long)st.term,
                   (unsigned long long)st.leader, (unsigned long long)st.commit,
                   (unsigned long long)s->nodes[i].st.applied, (unsigned long long)st.last_index,
                   cs);
            }
            fail(s,
                 "liveness: %llu ticks after the faults ended (%llu without "
                 "progress): leader %s, max applied %llu of %llu proposed, "
                 "first undecided val %llu",
                 (unsigned long long)((s->step - start) / s->tick_period),
                 (unsigned long long)((s->step - last_progress) / s->tick_period),
                 li >= 0 ? "yes" : "none", (unsigned long long)s->max_applied,
                 (unsigned long long)max_prop, (unsigned long long)open);
            break;
        }
        one_step(s);
        if (s->step % s->tick_period == 0)
            check_leases_late(s);
        int li = leader_index(s);
        if (li < 0)
            continue;
        raft_status_info st;
        raft_status(s->nodes[li].core, &st);
        /* clients keep writing until the log passes every proposal */
        for (size_t i = 0; i < s->n_props; i++)
            if (s->props[i].index > max_prop)
                max_prop = s->props[i].index;
        if (st.last_index < max_prop && s->step % s->tick_period == 0) {
            do_propose(s, li);
            process(s, li);
        }
        if (raft_entry_term(s->nodes[li].core, st.commit) != st.term)
            continue;
        if (st.commit < max_prop)
            continue;
        uint64_t open;
        if (!all_decided(s, &open))
            continue;
        /* every member caught up, every lease gone */
        const raft_config *c = raft_config_get(s->nodes[li].core);
        int ok = s->nodes[li].st.n_leases == 0;
        for (uint32_t k = 0; k < c->n; k++) {
            int ni = idx_of(s, c->nodes[k].id);
            if (ni >= 0 && s->nodes[ni].st.applied < st.commit)
                ok = 0;
        }
        if (ok)
            break;
    }
    if (!s->failed)
        check_log_matching(s);
    /* nodes at the same applied index hold the same state */
    for (int a = 0; a < s->n && !s->failed; a++)
        for (int b = a + 1; b < s->n; b++) {
            store *x = &s->nodes[a].st, *y = &s->nodes[b].st;
            if (x->applied != y->applied)
                continue;
            if (memcmp(x->kv_val, y->kv_val, sizeof x->kv_val) ||
                memcmp(x->kv_idx, y->kv_idx, sizeof x->kv_idx) || lease_hash(x) != lease_hash(y)) {
                fail(s,
                     "state machine safety: n%llu and n%llu both applied "
                     "%llu but hold different values",
                     (unsigned long long)s->nodes[a].id, (unsigned long long)s->nodes[b].id,
                     (unsigned long long)x->applied);
                break;
            }
        }
}

/* ------------------------------------------------------------------ */
/* one seed                                                            */

static void sim_free(sim *s)
{
    for (int i = 0; i < s->n; i++) {
        raft_free(s->nodes[i].core);
        lease_table_free(s->nodes[i].lt);
        store_free(&s->nodes[i].st);
        free(s->nodes[i].rq);
    }
    for (size_t i = 0; i < s->n_net; i++)
        msg_free(&s->net[i].m);
    free(s->net);
    free(s->oracle);
    free(s->leader_of);
    free(s->props);
    free(s->reads);
    free(s->leases);
    free(s->grants);
}

/* totals over all seeds, for the closing summary */
static struct {
    uint64_t leaders, props, acked, reads, installs, crashes, confs, transfers, wipes,
        transfers_done, loads, evicted;
    uint64_t grants, renew_ok, renew_refused, expired, revoked, late_n, late_max_ms,
        late_max_et10, /* in tenths of an election timeout */
        late_elect_ms, late_elect_et10;
} tot;

static int run_seed(uint64_t seed, int n, uint64_t steps, int verbose, uint64_t *steps_done)
{
    sim *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    s->seed = seed;
    s->n = n;
    s->steps = steps;
    s->verbose = verbose;
    s->faults = 1;
    rnd_state = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)n;

    /* knobs differ per seed */
    s->tick_period = 4;
    s->max_delay = 2 + (unsigned)rnd_below(8);
    s->p_drop = (unsigned)rnd_below(120);
    s->p_dup = (unsigned)rnd_below(60);
    s->p_long = (unsigned)rnd_below(30);
    s->p_crash = (unsigned)rnd_below(3);
    s->p_ready_crash = (unsigned)rnd_below(15);
    s->p_part = (unsigned)rnd_below(8);
    s->p_freeze = (unsigned)rnd_below(3);
    s->p_propose = 20 + (unsigned)rnd_below(100);
    s->p_read = 10 + (unsigned)rnd_below(60);
    s->p_member = (unsigned)rnd_below(6);
    s->p_transfer = (unsigned)rnd_below(4);
    /* lease grants per tick (permille); one seed in eight has none */
    s->p_grant = chance(125) ? 0 : 5 + (unsigned)rnd_below(60);
    /* small chunks exercise chunking; one in four seeds sends a whole
     * snapshot in one message, as raftd mostly does */
    s->chunk = chance(250) ? SNAP_BYTES : 3 + (unsigned)rnd_below(40);
    s->burst = 1 + (unsigned)rnd_below(8);
    raft_options_default(&s->opts);
    s->opts.election_ticks = 5 + (unsigned)rnd_below(16);
    s->opts.heartbeat_ticks = 1 + (unsigned)rnd_below(3);
    s->opts.max_inflight = 1 + (unsigned)rnd_below(8);
    s->opts.max_msg_bytes = 9 + rnd_below(200);
    s->opts.snapshot_trail = rnd_below(12);
    /* most seeds hold a few entries in memory and read older ones back
     * from storage for followers (raftd: -snapshot-bytes) */
    s->opts.log_mem_bytes = chance(250) ? 0 : RAFT_ENTRY_OVERHEAD + (size_t)rnd_below(600);
    /* mostly the defaults raftd runs with, sometimes the rest */
    s->opts.pre_vote = !chance(150);
    s->opts.check_quorum = !chance(150);
    /* without both, a removed node that never learned of its removal
     * disrupts every election forever: Raft promises no liveness then */
    if (!s->opts.pre_vote)
        s->opts.check_quorum = 1;
    s->opts.auto_promote = !chance(200);

    raft_config conf;
    memset(&conf, 0, sizeof conf);
    conf.n = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        node *nd = &s->nodes[i];
        nd->id = (uint64_t)i + 1;
        nd->phase = (unsigned)rnd_below(s->tick_period);
        nd->snap_every = 3 + (unsigned)rnd_below(40);
        conf.nodes[i].id = nd->id;
        conf.nodes[i].voter = 1;
        snprintf(conf.nodes[i].meta, sizeof conf.nodes[i].meta, "node%d", i);
    }
    if (verbose)
        printf("seed %llu: %d nodes, drop %u dup %u long %u crash %u/%u part %u "
               "freeze %u inflight %u msgbytes %zu trail %llu chunk %u "
               "prevote %d checkquorum %d autopromote %d\n",
               (unsigned long long)seed, n, s->p_drop, s->p_dup, s->p_long, s->p_crash,
               s->p_ready_crash, s->p_part, s->p_freeze, s->opts.max_inflight,
               s->opts.max_msg_bytes, (unsigned long long)s->opts.snapshot_trail, s->chunk,
               s->opts.pre_vote, s->opts.check_quorum, s->opts.auto_promote);
    for (int i = 0; i < n; i++) {
        node_start(s, i);
        if (s->failed)
            break;
        int rc = raft_bootstrap(s->nodes[i].core, &conf);
        if (rc != RAFT_OK)
            fail(s, "bootstrap failed: %s", raft_strerror(rc));
        process(s, i);
    }
    while (!s->failed && s->step < steps)
        one_step(s);
    if (!s->failed)
        liveness(s);

    int ok = !s->failed;
    if (!ok) {
        printf("FAIL seed %llu (%d nodes): %s\n", (unsigned long long)seed, n, s->why);
        if (!verbose) {
            unsigned from = s->n_trace > 20 ? s->n_trace - 20 : 0;
            for (unsigned i = from; i < s->n_trace; i++)
                printf("    %s\n", s->trace[i % TRACE_RING]);
        }
    } else if (verbose) {
        printf("ok seed %llu: %llu steps, %llu leaders, %zu proposals (%llu acked), "
               "%llu reads ok, %llu snapshot installs, %llu crashes, %llu config "
               "changes, %llu transfers\n",
               (unsigned long long)seed, (unsigned long long)s->step,
               (unsigned long long)s->stat_leaders, s->n_props, (unsigned long long)s->stat_acked,
               (unsigned long long)s->stat_reads_ok, (unsigned long long)s->stat_snap_installs,
               (unsigned long long)s->stat_crashes, (unsigned long long)s->stat_confs,
               (unsigned long long)s->stat_transfers);
    }
    *steps_done += s->step;
    tot.leaders += s->stat_leaders;
    tot.props += s->n_props;
    tot.acked += s->stat_acked;
    tot.reads += s->stat_reads_ok;
    tot.installs += s->stat_snap_installs;
    tot.crashes += s->stat_crashes;
    tot.confs += s->stat_confs;
    tot.transfers += s->stat_transfers;
    tot.wipes += s->stat_wipes;
    tot.loads += s->stat_loads;
    tot.evicted += s->stat_evicted_nodes;
    tot.transfers_done += s->stat_transfers_done;
    tot.grants += s->stat_grants;
    tot.renew_ok += s->stat_renew_ok;
    tot.renew_refused += s->stat_renew_refused;
    tot.expired += s->stat_expired;
    tot.revoked += s->stat_revoked;
    tot.late_n += s->stat_late_n;
    if (s->stat_late_ms > tot.late_max_ms)
        tot.late_max_ms = s->stat_late_ms;
    if (s->stat_late_ms * 10 / guard_ms(s) > tot.late_max_et10)
        tot.late_max_et10 = s->stat_late_ms * 10 / guard_ms(s);
    if (s->stat_late_elect_ms > tot.late_elect_ms)
        tot.late_elect_ms = s->stat_late_elect_ms;
    if (s->stat_late_elect_ms * 10 / guard_ms(s) > tot.late_elect_et10)
        tot.late_elect_et10 = s->stat_late_elect_ms * 10 / guard_ms(s);
    sim_free(s);
    free(s);
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: raft-sim --seed S --count N [--nodes 3|5] "
                    "[--steps K] [-v] [--stop]\n");
    exit(2);
}

static uint64_t num_arg(const char *opt, const char *v)
{
    char *end;
    if (!v)
        usage();
    unsigned long long x = strtoull(v, &end, 10);
    if (*v == '\0' || *end != '\0' || *v == '-') {
        fprintf(stderr, "raft-sim: bad number for %s: %s\n", opt, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, count = 1, steps = 5000;
    int nodes = 3, verbose = 0, stop = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--seed"))
            seed = num_arg(a, argv[++i]);
        else if (!strcmp(a, "--count"))
            count = num_arg(a, argv[++i]);
        else if (!strcmp(a, "--nodes"))
            nodes = (int)num_arg(a, argv[++i]);
        else if (!strcmp(a, "--steps"))
            steps = num_arg(a, argv[++i]);
        else if (!strcmp(a, "-v"))
            verbose = 1;
        else if (!strcmp(a, "--stop"))
            stop = 1;
        else
            usage();
    }
    if (nodes < 1 || nodes > MAXN) {
        fprintf(stderr, "raft-sim: --nodes must be 1..%d\n", MAXN);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t total_steps = 0;
    for (uint64_t k = 0; k < count; k++) {
        if (run_seed(seed + k, nodes, steps, verbose, &total_steps))
            check_passed++;
        else if (check_failed++, stop)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "raft-sim: %llu seeds, %d nodes, %llu steps in %.2f s "
            "(%.0f steps/s)\n",
            (unsigned long long)count, nodes, (unsigned long long)total_steps, secs,
            secs > 0 ? (double)total_steps / secs : 0.0);
    fprintf(stderr,
            "raft-sim: totals: %llu elections won, %llu proposals, "
            "%llu acknowledged, %llu reads checked, %llu snapshot "
            "installs, %llu crashes, %llu config changes, %llu "
            "transfers (%llu won by the target), %llu nodes wiped and "
            "rejoined, %llu loads of entries held in storage only "
            "(after %llu readies with such entries)\n",
            (unsigned long long)tot.leaders, (unsigned long long)tot.props,
            (unsigned long long)tot.acked, (unsigned long long)tot.reads,
            (unsigned long long)tot.installs, (unsigned long long)tot.crashes,
            (unsigned long long)tot.confs, (unsigned long long)tot.transfers,
            (unsigned long long)tot.transfers_done, (unsigned long long)tot.wipes,
            (unsigned long long)tot.loads, (unsigned long long)tot.evicted);
    fprintf(stderr,
            "raft-sim: leases: %llu granted, %llu renewals answered "
            "200, %llu refused, %llu expired, %llu revoked; after the "
            "heal %llu expired, applied at most %llu ms (%llu.%llu "
            "minimum election timeouts) past ttl + its last renewal, "
            "abandon or the heal; proposed at most %llu ms "
            "(%llu.%llu) past ttl + that or its leader's election\n",
            (unsigned long long)tot.grants, (unsigned long long)tot.renew_ok,
            (unsigned long long)tot.renew_refused, (unsigned long long)tot.expired,
            (unsigned long long)tot.revoked, (unsigned long long)tot.late_n,
            (unsigned long long)tot.late_max_ms, (unsigned long long)(tot.late_max_et10 / 10),
            (unsigned long long)(tot.late_max_et10 % 10), (unsigned long long)tot.late_elect_ms,
            (unsigned long long)(tot.late_elect_et10 / 10),
            (unsigned long long)(tot.late_elect_et10 % 10));
    return check_summary();
}
