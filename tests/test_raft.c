/*
 * test_raft.c - black-box tests of the Raft core, written against raft.h.
 *
 * Each test drives one or several cores by hand: it ticks them, delivers
 * (or drops, or edits) the messages they send, persists every ready into a
 * tiny in-test store exactly as the persistence contract in raft.h says,
 * applies committed entries to a toy state machine (the concatenation of
 * NORMAL entry data) and calls raft_advance. Each test is named after the
 * rule it pins down.
 *
 * Besides each test's own assertions, the harness checks on every ready of
 * every node:
 *   - a VOTE_RESP granting a vote leaves only after the hard state with that
 *     term and vote is persisted (same ready or earlier); likewise a VOTE
 *     with the candidate's own vote, and no message (but pre-votes) carries
 *     a term above the persisted one;
 *   - an APPEND_RESP acknowledging index i leaves only after the log holds i;
 *   - the term never decreases and a vote never changes within a term;
 *   - appended entries continue the log; truncation and compaction stay
 *     inside it; committed entries are in the log, in order, applied once;
 *   - no two nodes apply different entries at one index;
 *   - at most one leader per term.
 * A violation fails the test that caused it.
 *
 * Every test runs in a child process with a time limit, so a crash or hang
 * in the core fails that test only. Output: "ok NAME" or "FAIL NAME: why"
 * per test, then "N passed, M failed"; exit 1 on any failure.
 */
#include "raft.h"
#include "check.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXN RAFT_MAX_NODES
#define E_TICKS 10 /* election_ticks used by every test */

/* ================================================================ checks */

/* CHECK, the ok/FAIL lines and the summary are tests/check.h's; each
 * case runs in a child (main), its first failure in check_why. */

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "test_raft: calloc: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_raft: realloc: out of memory\n");
        exit(2);
    }
    return p;
}

static uint8_t *xdup(const void *p, size_t n)
{
    uint8_t *d = xcalloc(1, n);
    if (n)
        memcpy(d, p, n);
    return d;
}

static const char *msg_name(int t)
{
    static const char *names[] = {"?",         "APPEND",      "APPEND_RESP",  "VOTE",
                                  "VOTE_RESP", "PREVOTE",     "PREVOTE_RESP", "SNAP",
                                  "SNAP_RESP", "TIMEOUT_NOW", "READ_INDEX",   "READ_INDEX_RESP"};
    return t >= 1 && t <= RAFT_MSG_TYPE_MAX ? names[t] : "?";
}

/* ================================================================ store */

typedef struct store {
    raft_hard_state hs;
    int has_snap;
    raft_snap_meta snap;
    uint8_t *snap_bytes;
    size_t snap_len;
    raft_entry *log; /* consecutive entries; data owned */
    size_t n_log, cap_log;
    uint64_t applied;
    uint8_t *sm; /* state machine: NORMAL data concatenated */
    size_t sm_len;
    raft_config sm_conf; /* configuration as of applied */
    uint8_t *stage;
    size_t stage_len;
} store;

static uint64_t store_last(const store *s)
{
    if (s->n_log)
        return s->log[s->n_log - 1].index;
    return s->has_snap ? s->snap.index : 0;
}

static const raft_entry *store_entry(const store *s, uint64_t i)
{
    if (!s->n_log || i < s->log[0].index || i > store_last(s))
        return NULL;
    return &s->log[i - s->log[0].index];
}

static uint64_t store_term(const store *s, uint64_t i)
{
    const raft_entry *e = store_entry(s, i);
    if (e)
        return e->term;
    if (s->has_snap && i == s->snap.index)
        return s->snap.term;
    return 0;
}

static void store_append(store *s, const raft_entry *e)
{
    if (s->n_log == s->cap_log) {
        s->cap_log = s->cap_log ? 2 * s->cap_log : 16;
        s->log = xrealloc(s->log, s->cap_log * sizeof *s->log);
    }
    raft_entry *d = &s->log[s->n_log++];
    *d = *e;
    d->data = e->len ? xdup(e->data, e->len) : NULL;
}

static void store_truncate(store *s, uint64_t from) /* drop >= from */
{
    while (s->n_log && s->log[s->n_log - 1].index >= from)
        free(s->log[--s->n_log].data);
}

static void store_compact(store *s, uint64_t to) /* drop <= to */
{
    size_t k = 0;
    while (k < s->n_log && s->log[k].index <= to)
        free(s->log[k++].data);
    memmove(s->log, s->log + k, (s->n_log - k) * sizeof *s->log);
    s->n_log -= k;
}

static void store_free(store *s)
{
    store_truncate(s, 0);
    free(s->log);
    free(s->snap_bytes);
    free(s->sm);
    free(s->stage);
    memset(s, 0, sizeof *s);
}

/* ================================================================ cluster */

typedef struct node {
    uint64_t id;
    raft_t *r; /* NULL: down, or a node the test plays by hand */
    raft_options opt;
    store st;
    raft_read reads[256];
    size_t n_reads;
    uint64_t failed[256];
    size_t n_failed;
    int installs;
    uint64_t max_truncate_seen; /* largest truncate_from seen (0 none) */
    int truncations;
} node;

/* A message as sent, for tests to look back at (no data kept). */
typedef struct tmsg {
    raft_msg m;         /* entries/data/conf pointers cleared */
    uint64_t first_ent; /* index of the first entry carried (0 none) */
    uint64_t last_ent;
    int has_conf;
    uint32_t conf_n;
} tmsg;

typedef struct applied_rec {
    uint64_t term;
    uint64_t hash;
    int set;
} applied_rec;

typedef struct cluster cluster;
struct cluster {
    int n;
    node nodes[MAXN];
    raft_msg **q;
    size_t q_head, q_len, q_cap;
    uint8_t cut[MAXN + 1][MAXN + 1];
    /* 0 drop, 1 deliver (may edit the message first) */
    int (*filter)(cluster *c, raft_msg *m);
    /* called with each ready before it is persisted */
    void (*ready_hook)(cluster *c, node *nd, const raft_ready *rd);
    void *hook_arg;
    tmsg *trace;
    size_t n_trace, cap_trace;
    char bad[600];
    applied_rec *hist;
    size_t hist_cap;
    uint64_t (*leaders)[2]; /* (term, id) */
    size_t n_leaders;
};

static void violation(cluster *c, const char *fmt, ...)
{
    if (c->bad[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->bad, sizeof c->bad, fmt, ap);
    va_end(ap);
}

/* Clusters of the current test, freed after it whatever happened. */
static cluster *live[8];
static int n_live;

static node *nd_of(cluster *c, uint64_t id)
{
    if (id < 1 || id > (uint64_t)c->n)
        return NULL;
    return &c->nodes[id - 1];
}

static raft_msg *msg_dup(const raft_msg *m)
{
    raft_msg *d = xcalloc(1, sizeof *d);
    *d = *m;
    d->entries = NULL;
    d->data = NULL;
    d->conf = NULL;
    if (m->n_entries) {
        d->entries = xcalloc(m->n_entries, sizeof *d->entries);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            d->entries[i] = m->entries[i];
            d->entries[i].data = m->entries[i].len ? xdup(m->entries[i].data, m->entries[i].len)
                                                   : NULL;
        }
    }
    if (m->len && m->data)
        d->data = xdup(m->data, m->len);
    if (m->conf) {
        d->conf = xcalloc(1, sizeof *d->conf);
        *d->conf = *m->conf;
    }
    return d;
}

static void msg_free(raft_msg *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->data);
    free(m->conf);
    free(m);
}

static void trace_add(cluster *c, const raft_msg *m)
{
    if (c->n_trace == c->cap_trace) {
        c->cap_trace = c->cap_trace ? 2 * c->cap_trace : 256;
        c->trace = xrealloc(c->trace, c->cap_trace * sizeof *c->trace);
    }
    tmsg *t = &c->trace[c->n_trace++];
    memset(t, 0, sizeof *t);
    t->m = *m;
    t->m.entries = NULL;
    t->m.data = NULL;
    t->m.conf = NULL;
    if (m->n_entries && m->entries) {
        t->first_ent = m->entries[0].index;
        t->last_ent = m->entries[m->n_entries - 1].index;
    }
    t->has_conf = m->conf != NULL;
    t->conf_n = m->conf ? m->conf->n : 0;
}

static void q_push(cluster *c, raft_msg *m)
{
    if (c->q_len == c->q_cap) {
        if (c->q_head > 0) {
            memmove(c->q, c->q + c->q_head, (c->q_len - c->q_head) * sizeof *c->q);
            c->q_len -= c->q_head;
            c->q_head = 0;
        }
        if (c->q_len == c->q_cap) {
            c->q_cap = c->q_cap ? 2 * c->q_cap : 256;
            c->q = xrealloc(c->q, c->q_cap * sizeof *c->q);
        }
    }
    c->q[c->q_len++] = m;
}

static void q_clear(cluster *c)
{
    for (size_t i = c->q_head; i < c->q_len; i++)
        msg_free(c->q[i]);
    c->q_head = c->q_len = 0;
}

/* Drop queued messages from or to id. */
static void q_drop_node(cluster *c, uint64_t id)
{
    size_t k = c->q_head;
    for (size_t i = c->q_head; i < c->q_len; i++) {
        if (c->q[i]->from == id || c->q[i]->to == id)
            msg_free(c->q[i]);
        else
            c->q[k++] = c->q[i];
    }
    c->q_len = k;
}

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void hist_record(cluster *c, node *nd, const raft_entry *e)
{
    if (e->index >= c->hist_cap) {
        size_t cap = c->hist_cap ? c->hist_cap : 64;
        while (cap <= e->index)
            cap *= 2;
        c->hist = xrealloc(c->hist, cap * sizeof *c->hist);
        memset(c->hist + c->hist_cap, 0, (cap - c->hist_cap) * sizeof *c->hist);
        c->hist_cap = cap;
    }
    uint64_t h = fnv(e->data, e->len, 0xcbf29ce484222325ull ^ e->type);
    applied_rec *a = &c->hist[e->index];
    if (a->set && (a->term != e->term || a->hash != h))
        violation(c,
                  "node %llu applied index %llu term %llu but another node "
                  "applied term %llu there",
                  (unsigned long long)nd->id, (unsigned long long)e->index,
                  (unsigned long long)e->term, (unsigned long long)a->term);
    a->set = 1;
    a->term = e->term;
    a->hash = h;
}

static void record_leader(cluster *c, node *nd)
{
    raft_status_info st;
    raft_status(nd->r, &st);
    if (st.role != RAFT_LEADER)
        return;
    for (size_t i = 0; i < c->n_leaders; i++)
        if (c->leaders[i][0] == st.term) {
            if (c->leaders[i][1] != nd->id)
                violation(c, "two leaders in term %llu: %llu and %llu", (unsigned long long)st.term,
                          (unsigned long long)c->leaders[i][1], (unsigned long long)nd->id);
            return;
        }
    c->leaders = xrealloc(c->leaders, (c->n_leaders + 1) * sizeof *c->leaders);
    c->leaders[c->n_leaders][0] = st.term;
    c->leaders[c->n_leaders][1] = nd->id;
    c->n_leaders++;
}

/* Step 1 of the contract: persist. */
static void persist(cluster *c, node *nd, const raft_ready *rd)
{
    store *s = &nd->st;
    unsigned long long id = nd->id;
    if (rd->hs_changed) {
        if (rd->hs.term < s->hs.term)
            violation(c, "node %llu: term went back from %llu to %llu", id,
                      (unsigned long long)s->hs.term, (unsigned long long)rd->hs.term);
        else if (rd->hs.term == s->hs.term && s->hs.vote && rd->hs.vote != s->hs.vote)
            violation(c, "node %llu: vote changed in term %llu from %llu to %llu", id,
                      (unsigned long long)s->hs.term, (unsigned long long)s->hs.vote,
                      (unsigned long long)rd->hs.vote);
        s->hs = rd->hs;
    }
    /* Chunks first, so a final chunk and its install in one ready work. */
    for (size_t i = 0; i < rd->n_chunks; i++) {
        const raft_chunk *ch = &rd->chunks[i];
        if (ch->len > RAFT_SNAP_CHUNK) {
            violation(c, "node %llu: chunk of %u bytes", id, ch->len);
            continue;
        }
        if (ch->offset == 0)
            s->stage_len = 0;
        if (ch->offset > (64u << 20)) {
            violation(c, "node %llu: chunk offset %llu", id, (unsigned long long)ch->offset);
            continue;
        }
        size_t end = (size_t)ch->offset + ch->len;
        if (end > s->stage_len) {
            s->stage = xrealloc(s->stage, end);
            memset(s->stage + s->stage_len, 0, end - s->stage_len);
            s->stage_len = end;
        }
        if (ch->len)
            memcpy(s->stage + ch->offset, ch->data, ch->len);
    }
    if (rd->snap_install) {
        nd->installs++;
        store_truncate(s, 0);
        s->has_snap = 1;
        s->snap = rd->snap;
        free(s->snap_bytes);
        s->snap_bytes = xdup(s->stage, s->stage_len);
        s->snap_len = s->stage_len;
        free(s->sm);
        s->sm = xdup(s->stage, s->stage_len);
        s->sm_len = s->stage_len;
        s->sm_conf = rd->snap.conf;
        s->applied = rd->snap.index;
    }
    if (rd->truncate_from) {
        nd->truncations++;
        if (rd->truncate_from > nd->max_truncate_seen)
            nd->max_truncate_seen = rd->truncate_from;
        if (rd->truncate_from <= s->applied)
            violation(c, "node %llu: truncate_from %llu <= applied %llu", id,
                      (unsigned long long)rd->truncate_from, (unsigned long long)s->applied);
        store_truncate(s, rd->truncate_from);
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry *e = &rd->entries[i];
        if (e->index != store_last(s) + 1) {
            violation(c, "node %llu: appended index %llu after last %llu", id,
                      (unsigned long long)e->index, (unsigned long long)store_last(s));
            return;
        }
        store_append(s, e);
    }
    if (rd->compact_to) {
        if (!s->has_snap || rd->compact_to > s->snap.index)
            violation(c, "node %llu: compact_to %llu beyond snapshot %llu", id,
                      (unsigned long long)rd->compact_to,
                      (unsigned long long)(s->has_snap ? s->snap.index : 0));
        else
            store_compact(s, rd->compact_to);
    }
}

/* Step 2: send. Invariants on what leaves the node. */
static void send_msgs(cluster *c, node *nd, const raft_ready *rd)
{
    store *s = &nd->st;
    for (size_t i = 0; i < rd->n_msgs; i++) {
        raft_msg m = rd->msgs[i];
        if (m.from != nd->id)
            violation(c, "node %llu sent %s with from=%llu", (unsigned long long)nd->id,
                      msg_name(m.type), (unsigned long long)m.from);
        if (m.type == RAFT_MSG_VOTE_RESP && !m.reject &&
            (s->hs.term != m.term || s->hs.vote != m.to))
            violation(c,
                      "node %llu granted its vote to %llu in term %llu before "
                      "persisting it (persisted term %llu vote %llu)",
                      (unsigned long long)nd->id, (unsigned long long)m.to,
                      (unsigned long long)m.term, (unsigned long long)s->hs.term,
                      (unsigned long long)s->hs.vote);
        if (m.type == RAFT_MSG_VOTE && (s->hs.term != m.term || s->hs.vote != nd->id))
            violation(c,
                      "node %llu asked for votes in term %llu before "
                      "persisting its own (persisted term %llu vote %llu)",
                      (unsigned long long)nd->id, (unsigned long long)m.term,
                      (unsigned long long)s->hs.term, (unsigned long long)s->hs.vote);
        if (m.type != RAFT_MSG_PREVOTE && m.type != RAFT_MSG_PREVOTE_RESP && m.term > s->hs.term)
            violation(c, "node %llu sent %s in term %llu, persisted term %llu",
                      (unsigned long long)nd->id, msg_name(m.type), (unsigned long long)m.term,
                      (unsigned long long)s->hs.term);
        if (m.type == RAFT_MSG_APPEND_RESP && !m.reject && m.index > store_last(s))
            violation(c,
                      "node %llu acknowledged index %llu with only %llu "
                      "persisted",
                      (unsigned long long)nd->id, (unsigned long long)m.index,
                      (unsigned long long)store_last(s));
        if (m.type == RAFT_MSG_SNAP && !m.data) {
            if (!s->has_snap || s->snap.index != m.snap_index || m.offset > s->snap_len)
                continue; /* no longer have it: drop, as the contract says */
            size_t left = s->snap_len - (size_t)m.offset;
            m.len = (uint32_t)(left < RAFT_SNAP_CHUNK ? left : RAFT_SNAP_CHUNK);
            m.data = s->snap_bytes + m.offset;
            m.last = m.offset + m.len == s->snap_len;
        }
        trace_add(c, &m);
        q_push(c, msg_dup(&m));
    }
}

/* Step 3: apply. */
static void apply(cluster *c, node *nd, const raft_ready *rd)
{
    store *s = &nd->st;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry *e = &rd->committed[i];
        if (e->index != s->applied + 1) {
            violation(c, "node %llu: committed index %llu after applied %llu",
                      (unsigned long long)nd->id, (unsigned long long)e->index,
                      (unsigned long long)s->applied);
            return;
        }
        if (store_term(s, e->index) != e->term)
            violation(c,
                      "node %llu: committed index %llu term %llu but the "
                      "persisted log has term %llu there",
                      (unsigned long long)nd->id, (unsigned long long)e->index,
                      (unsigned long long)e->term, (unsigned long long)store_term(s, e->index));
        if (e->type == RAFT_ENTRY_NORMAL && e->len) {
            s->sm = xrealloc(s->sm, s->sm_len + e->len);
            memcpy(s->sm + s->sm_len, e->data, e->len);
            s->sm_len += e->len;
        } else if (e->type == RAFT_ENTRY_CONFIG) {
            raft_config cf;
            if (raft_config_decode(&cf, e->data, e->len) != RAFT_OK)
                violation(c, "node %llu: CONFIG entry %llu does not decode",
                          (unsigned long long)nd->id, (unsigned long long)e->index);
            else
                s->sm_conf = cf;
        }
        hist_record(c, nd, e);
        s->applied = e->index;
    }
}

static void drive(cluster *c, node *nd)
{
    int guard = 0;
    while (nd->r && raft_has_ready(nd->r)) {
        if (++guard > 100000) {
            violation(c, "node %llu: readies never stop", (unsigned long long)nd->id);
            return;
        }
        raft_ready rd;
        memset(&rd, 0, sizeof rd);
        raft_ready_get(nd->r, &rd);
        if (c->ready_hook)
            c->ready_hook(c, nd, &rd);
        persist(c, nd, &rd);
        send_msgs(c, nd, &rd);
        apply(c, nd, &rd);
        for (size_t i = 0; i < rd.n_reads; i++)
            if (nd->n_reads < 256)
                nd->reads[nd->n_reads++] = rd.reads[i];
        for (size_t i = 0; i < rd.n_reads_failed; i++)
            if (nd->n_failed < 256)
                nd->failed[nd->n_failed++] = rd.reads_failed[i];
        record_leader(c, nd);
        raft_advance(nd->r, &rd);
    }
}

static raft_options base_opts(void)
{
    raft_options o;
    raft_options_default(&o);
    o.election_ticks = E_TICKS;
    o.heartbeat_ticks = 1;
    return o;
}

/* n node slots with ids 1..n, options o (id and seed set per node), no
 * cores yet. */
static cluster *cl_new(int n, const raft_options *o, uint64_t seed)
{
    cluster *c = xcalloc(1, sizeof *c);
    c->n = n;
    for (int i = 0; i < n; i++) {
        node *nd = &c->nodes[i];
        nd->id = (uint64_t)i + 1;
        nd->opt = *o;
        nd->opt.id = nd->id;
        nd->opt.seed = seed * 1000003u + nd->id * 7919u + 1;
    }
    if (n_live < 8)
        live[n_live++] = c;
    return c;
}

static void cl_free(cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->nodes[i].r)
            raft_free(c->nodes[i].r);
        store_free(&c->nodes[i].st);
    }
    q_clear(c);
    free(c->q);
    free(c->trace);
    free(c->hist);
    free(c->leaders);
    free(c);
}

static raft_config make_conf(int voters, int learners)
{
    raft_config cf;
    memset(&cf, 0, sizeof cf);
    cf.n = (uint32_t)(voters + learners);
    for (uint32_t i = 0; i < cf.n; i++) {
        cf.nodes[i].id = i + 1;
        cf.nodes[i].voter = i < (uint32_t)voters;
        snprintf(cf.nodes[i].meta, RAFT_META_MAX, "node%u 127.0.0.1:%u 127.0.0.1:%u", i, 12000 + i,
                 11000 + i);
    }
    return cf;
}

static int start_core(cluster *c, node *nd)
{
    nd->r = raft_new(&nd->opt);
    if (!nd->r) {
        violation(c, "raft_new failed for node %llu", (unsigned long long)nd->id);
        return -1;
    }
    return 0;
}

/* Bootstrap nodes 1..k with conf (every member starts from the same first
 * entry). Returns 0 or -1. */
static int cl_boot(cluster *c, int k, const raft_config *cf)
{
    for (int i = 0; i < k; i++) {
        node *nd = &c->nodes[i];
        if (start_core(c, nd) < 0)
            return -1;
        int rc = raft_bootstrap(nd->r, cf);
        if (rc != RAFT_OK) {
            violation(c, "raft_bootstrap: %s", raft_strerror(rc));
            return -1;
        }
        drive(c, nd);
    }
    return 0;
}

/* Rebuild the core of nd from its store, as after a crash. */
static int restart(cluster *c, uint64_t id)
{
    node *nd = nd_of(c, id);
    if (nd->r)
        raft_free(nd->r);
    nd->r = NULL;
    q_drop_node(c, id);
    if (start_core(c, nd) < 0)
        return -1;
    store *s = &nd->st;
    size_t k = 0;
    while (k < s->n_log && s->has_snap && s->log[k].index <= s->snap.index)
        k++;
    int rc = raft_restore(nd->r, &s->hs, s->has_snap ? &s->snap : NULL,
                          s->n_log - k ? s->log + k : NULL, s->n_log - k, s->applied);
    if (rc != RAFT_OK) {
        violation(c, "raft_restore of node %llu: %s", (unsigned long long)id, raft_strerror(rc));
        return -1;
    }
    drive(c, nd);
    return 0;
}

static void crash(cluster *c, uint64_t id)
{
    node *nd = nd_of(c, id);
    if (nd->r)
        raft_free(nd->r);
    nd->r = NULL;
    q_drop_node(c, id);
}

static void deliver_all(cluster *c)
{
    size_t steps = 0;
    while (c->q_head < c->q_len) {
        raft_msg *m = c->q[c->q_head++];
        if (++steps > 500000) {
            violation(c, "the network never goes quiet");
            msg_free(m);
            q_clear(c);
            return;
        }
        node *to = nd_of(c, m->to);
        int ok = to && to->r && m->from <= MAXN && m->to <= MAXN && !c->cut[m->from][m->to];
        if (ok && c->filter)
            ok = c->filter(c, m);
        if (ok) {
            raft_step(to->r, m);
            drive(c, to);
        }
        msg_free(m);
    }
    c->q_head = c->q_len = 0;
}

static void tick(cluster *c, uint64_t id)
{
    node *nd = nd_of(c, id);
    if (!nd->r)
        return;
    raft_tick(nd->r);
    drive(c, nd);
}

/* t rounds of: tick every running node, deliver everything. */
static void run(cluster *c, int t)
{
    for (int k = 0; k < t; k++) {
        for (int i = 0; i < c->n; i++)
            tick(c, c->nodes[i].id);
        deliver_all(c);
    }
}

static raft_status_info status_of(cluster *c, uint64_t id)
{
    raft_status_info st;
    memset(&st, 0, sizeof st);
    node *nd = nd_of(c, id);
    if (nd && nd->r)
        raft_status(nd->r, &st);
    return st;
}

static int role(cluster *c, uint64_t id)
{
    return status_of(c, id).role;
}
static uint64_t term_of(cluster *c, uint64_t id)
{
    return status_of(c, id).term;
}

/* Only id ticks, until it sends something (a campaign), then everything
 * is delivered; repeated until id leads. 0 on success. */
static int elect(cluster *c, uint64_t id)
{
    deliver_all(c);
    for (int round = 0; round < 20; round++) {
        for (int t = 0; t < 4 * E_TICKS && c->q_head == c->q_len; t++) {
            tick(c, id);
            if (role(c, id) == RAFT_LEADER)
                break;
        }
        deliver_all(c);
        if (role(c, id) == RAFT_LEADER) {
            deliver_all(c);
            return 0;
        }
    }
    return -1;
}

static void cut_both(cluster *c, uint64_t a, uint64_t b, int on)
{
    c->cut[a][b] = c->cut[b][a] = (uint8_t)on;
}

static void isolate(cluster *c, uint64_t a, int on)
{
    for (int i = 1; i <= c->n; i++)
        if ((uint64_t)i != a)
            cut_both(c, a, (uint64_t)i, on);
}

static void trace_reset(cluster *c)
{
    c->n_trace = 0;
}

static size_t count_msgs(cluster *c, int type, uint64_t from, uint64_t to)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_trace; i++) {
        const raft_msg *m = &c->trace[i].m;
        if (m->type == type && (!from || m->from == from) && (!to || m->to == to))
            n++;
    }
    return n;
}

static const tmsg *last_msg(cluster *c, int type, uint64_t from, uint64_t to)
{
    for (size_t i = c->n_trace; i-- > 0;) {
        const raft_msg *m = &c->trace[i].m;
        if (m->type == type && (!from || m->from == from) && (!to || m->to == to))
            return &c->trace[i];
    }
    return NULL;
}

static int propose(cluster *c, uint64_t id, const void *data, uint32_t len, uint64_t *index)
{
    uint64_t idx = 0, term = 0;
    int rc = raft_propose(nd_of(c, id)->r, data, len, &idx, &term);
    if (index)
        *index = idx;
    drive(c, nd_of(c, id));
    return rc;
}

static int has_read(const node *nd, uint64_t ctx, uint64_t *index)
{
    for (size_t i = 0; i < nd->n_reads; i++)
        if (nd->reads[i].ctx == ctx) {
            if (index)
                *index = nd->reads[i].index;
            return 1;
        }
    return 0;
}

static int has_failed(const node *nd, uint64_t ctx)
{
    for (size_t i = 0; i < nd->n_failed; i++)
        if (nd->failed[i] == ctx)
            return 1;
    return 0;
}

/* Give node id (no core yet) a persisted log: entry 1 = CONFIG of cf in
 * term 1, then entries 2..n+1 with terms[0..n). Returns 0 or -1. */
static int seed_log(cluster *c, uint64_t id, const raft_config *cf, const uint64_t *terms, size_t n,
                    raft_hard_state hs)
{
    node *nd = nd_of(c, id);
    uint8_t buf[RAFT_MAX_NODES * (RAFT_META_MAX + 64) + 64];
    size_t len = raft_config_encode(cf, buf, sizeof buf);
    if (len == 0) {
        violation(c, "raft_config_encode failed");
        return -1;
    }
    raft_entry e = {
        .term = 1, .index = 1, .type = RAFT_ENTRY_CONFIG, .len = (uint32_t)len, .data = buf};
    store_append(&nd->st, &e);
    for (size_t i = 0; i < n; i++) {
        char d[32];
        int dl = snprintf(d, sizeof d, "e%zu-t%llu", i + 2, (unsigned long long)terms[i]);
        raft_entry x = {.term = terms[i],
                        .index = i + 2,
                        .type = RAFT_ENTRY_NORMAL,
                        .len = (uint32_t)dl,
                        .data = (uint8_t *)d};
        store_append(&nd->st, &x);
    }
    nd->st.hs = hs;
    return restart(c, id);
}

/* Step a hand-made message into id and drive it. */
static int step(cluster *c, uint64_t id, const raft_msg *m)
{
    node *nd = nd_of(c, id);
    int rc = raft_step(nd->r, m);
    drive(c, nd);
    return rc;
}

/* The caller's side of a snapshot: capture the state machine at the
 * applied index, then tell the core. */
static int take_snapshot(cluster *c, node *nd)
{
    store *s = &nd->st;
    uint64_t si = s->applied;
    s->has_snap = 1;
    s->snap.index = si;
    s->snap.term = store_term(s, si);
    s->snap.conf = s->sm_conf;
    free(s->snap_bytes);
    s->snap_bytes = xdup(s->sm, s->sm_len);
    s->snap_len = s->sm_len;
    int rc = raft_snapshot_taken(nd->r, si);
    drive(c, nd);
    return rc;
}

#define CHECK_CLEAN(c) CHECK(!(c)->bad[0], "harness invariant: %s", (c)->bad)

/* ================================================================ tests */

/* Election timeouts are drawn from [e, 2e), differ between seeds, and the
 * same seed gives the same timeout (replayable simulations). */
static void election_timeout_is_randomized(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    int seen[64] = {0};
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        int first = -1;
        for (int rep = 0; rep < 2; rep++) {
            cluster *c = cl_new(3, &o, seed);
            CHECK(cl_boot(c, 1, &cf) == 0, "%s", c->bad);
            int t = 0;
            while (t < 5 * E_TICKS && role(c, 1) == RAFT_FOLLOWER) {
                tick(c, 1);
                t++;
            }
            CHECK_CLEAN(c);
            CHECK(role(c, 1) != RAFT_FOLLOWER, "seed %llu: no campaign within %d ticks",
                  (unsigned long long)seed, 5 * E_TICKS);
            CHECK(t >= E_TICKS && t <= 2 * E_TICKS,
                  "seed %llu: campaign after %d ticks, outside [%d, %d]", (unsigned long long)seed,
                  t, E_TICKS, 2 * E_TICKS);
            if (rep == 0)
                first = t;
            else
                CHECK(t == first, "seed %llu: same seed campaigned after %d then %d ticks",
                      (unsigned long long)seed, first, t);
            n_live--;
            cl_free(c);
        }
        if (!seen[first]++)
            distinct++;
    }
    CHECK(distinct >= 4, "only %d distinct timeouts over 30 seeds", distinct);
}

/* The VOTE_RESP granting a vote comes out in the same ready as the hard
 * state holding that vote, never earlier. */
static struct {
    int grants;
    int grant_with_hs;
    int grant_before_hs;
} vote_obs;

static void vote_hook(cluster *c, node *nd, const raft_ready *rd)
{
    (void)c;
    if (nd->id != 2)
        return;
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const raft_msg *m = &rd->msgs[i];
        if (m->type != RAFT_MSG_VOTE_RESP || m->reject)
            continue;
        vote_obs.grants++;
        int in_this = rd->hs_changed && rd->hs.term == m->term && rd->hs.vote == m->to;
        int before = nd->st.hs.term == m->term && nd->st.hs.vote == m->to;
        if (in_this)
            vote_obs.grant_with_hs++;
        else if (!before)
            vote_obs.grant_before_hs++;
    }
}

static void vote_persisted_before_grant(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    o.check_quorum = 0;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 11);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    memset(&vote_obs, 0, sizeof vote_obs);
    c->ready_hook = vote_hook;
    for (int t = 0; t < 4 * E_TICKS && role(c, 1) != RAFT_CANDIDATE; t++)
        tick(c, 1);
    CHECK(role(c, 1) == RAFT_CANDIDATE, "node 1 never became candidate");
    uint64_t t1 = term_of(c, 1);
    deliver_all(c);
    CHECK(vote_obs.grants >= 1, "node 2 never granted node 1's vote in term %llu",
          (unsigned long long)t1);
    CHECK(vote_obs.grant_before_hs == 0,
          "VOTE_RESP granting the vote left in a ready before the one "
          "persisting hs.vote");
    CHECK(vote_obs.grant_with_hs >= 1,
          "the ready with the grant did not carry hs {term %llu, vote 1}", (unsigned long long)t1);
    /* And what was persisted survives a crash: node 2 restarted still
     * holds the vote for 1 in that term. */
    CHECK(restart(c, 2) == 0, "%s", c->bad);
    raft_status_info st = status_of(c, 2);
    CHECK(st.term == t1 && st.vote == 1, "restarted node 2: term %llu vote %llu",
          (unsigned long long)st.term, (unsigned long long)st.vote);
    CHECK_CLEAN(c);
}

/* Log up-to-date check: a vote is granted only to a candidate whose last
 * log term is higher, or equal with a last index at least as high. */
static void no_vote_for_stale_log(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    o.check_quorum = 0;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 12);
    uint64_t terms[] = {2, 3}; /* log: 1:t1 CONFIG, 2:t2, 3:t3 */
    CHECK(seed_log(c, 2, &cf, terms, 2, (raft_hard_state){5, 0}) == 0, "%s", c->bad);
    struct {
        uint64_t term, index, log_term;
        int grant;
        const char *what;
    } cases[] = {
        {6, 2, 3, 0, "same last term, shorter log"},
        {7, 10, 2, 0, "longer log, lower last term"},
        {8, 3, 3, 1, "identical log"},
        {9, 1, 4, 1, "higher last term, shorter log"},
        {10, 0, 0, 0, "empty log"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raft_msg m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_VOTE;
        m.from = 3;
        m.to = 2;
        m.term = cases[i].term;
        m.index = cases[i].index;
        m.log_term = cases[i].log_term;
        trace_reset(c);
        step(c, 2, &m);
        const tmsg *r = last_msg(c, RAFT_MSG_VOTE_RESP, 2, 3);
        CHECK(r, "%s: no VOTE_RESP to candidate (term %llu)", cases[i].what,
              (unsigned long long)m.term);
        CHECK(r->m.reject == !cases[i].grant,
              "%s: candidate last (index %llu, term %llu) vs own (3, 3): "
              "reject=%d, want %d",
              cases[i].what, (unsigned long long)m.index, (unsigned long long)m.log_term,
              r->m.reject, !cases[i].grant);
        CHECK(r->m.term == m.term, "%s: VOTE_RESP term %llu, want %llu", cases[i].what,
              (unsigned long long)r->m.term, (unsigned long long)m.term);
    }
    CHECK_CLEAN(c);
}

/* A pre-candidate keeps its term; a PREVOTE changes no one's term; the
 * partitioned node rejoins without deposing the leader. */
static void prevote_does_not_bump_term(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 13);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    uint64_t t = term_of(c, 1);
    isolate(c, 3, 1);
    trace_reset(c);
    run(c, 6 * E_TICKS);
    CHECK(count_msgs(c, RAFT_MSG_PREVOTE, 3, 0) > 0, "isolated node 3 sent no PREVOTE in %d ticks",
          6 * E_TICKS);
    CHECK(count_msgs(c, RAFT_MSG_VOTE, 3, 0) == 0,
          "isolated node 3 sent VOTE without winning a pre-vote");
    CHECK(term_of(c, 3) == t && nd_of(c, 3)->st.hs.term == t,
          "isolated node 3 moved from term %llu to %llu (persisted %llu)", (unsigned long long)t,
          (unsigned long long)term_of(c, 3), (unsigned long long)nd_of(c, 3)->st.hs.term);
    /* A PREVOTE from node 3 reaching node 2 leaves node 2's term alone. */
    const tmsg *pv = last_msg(c, RAFT_MSG_PREVOTE, 3, 2);
    CHECK(pv, "no PREVOTE from 3 to 2");
    raft_msg m = pv->m;
    step(c, 2, &m);
    CHECK(term_of(c, 2) == t, "PREVOTE (term %llu) moved node 2 to term %llu",
          (unsigned long long)m.term, (unsigned long long)term_of(c, 2));
    isolate(c, 3, 0);
    run(c, 4 * E_TICKS);
    CHECK(role(c, 1) == RAFT_LEADER && term_of(c, 1) == t,
          "after node 3 rejoined: node 1 role %s term %llu (was leader in %llu)",
          raft_role_name(role(c, 1)), (unsigned long long)term_of(c, 1), (unsigned long long)t);
    CHECK(status_of(c, 3).leader == 1, "node 3 did not rejoin under node 1");
    CHECK_CLEAN(c);
}

/* A leader that hears from no quorum for an election timeout steps down;
 * one that does hear stays. */
static void check_quorum_leader_steps_down(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 14);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 5 * E_TICKS);
    CHECK(role(c, 1) == RAFT_LEADER, "connected leader lost leadership");
    isolate(c, 1, 1);
    int stepped = -1;
    for (int t = 0; t < 4 * E_TICKS; t++) {
        tick(c, 1);
        deliver_all(c);
        if (role(c, 1) != RAFT_LEADER) {
            stepped = t + 1;
            break;
        }
    }
    CHECK(stepped > 0, "isolated leader still leads after %d ticks", 4 * E_TICKS);
    CHECK(stepped <= 2 * E_TICKS + 1, "isolated leader stepped down only after %d ticks", stepped);
    CHECK(status_of(c, 1).leader == 0, "stepped-down node still names leader %llu",
          (unsigned long long)status_of(c, 1).leader);
    CHECK_CLEAN(c);
}

/* Status "active" (kv-health reads it): a follower that answers every
 * heartbeat is never shown silent, also right after a check-quorum reset;
 * a cut-off one is within two election timeouts. */
static int shown_active(cluster *c, uint64_t leader, uint64_t id)
{
    raft_status_info st = status_of(c, leader);
    for (size_t i = 0; i < st.n_progress; i++)
        if (st.progress[i].id == id)
            return st.progress[i].recent_active;
    return -1;
}

static void status_active_steady_across_check_quorum(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 15);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 2 * E_TICKS);
    int blinks = 0;
    for (int t = 0; t < 6 * E_TICKS; t++) {
        tick(c, 1); /* may run check-quorum: look before any ack */
        if (shown_active(c, 1, 2) != 1 || shown_active(c, 1, 3) != 1)
            blinks++;
        deliver_all(c);
        tick(c, 2);
        tick(c, 3);
        deliver_all(c);
    }
    CHECK(blinks == 0, "a connected follower was shown inactive at %d of %d ticks", blinks,
          6 * E_TICKS);
    CHECK(role(c, 1) == RAFT_LEADER, "leader lost leadership");
    isolate(c, 3, 1);
    int gone = -1;
    for (int t = 0; t < 4 * E_TICKS && gone < 0; t++) {
        run(c, 1);
        if (shown_active(c, 1, 3) == 0)
            gone = t + 1;
    }
    CHECK(gone > 0 && gone <= 2 * E_TICKS + 1,
          "a cut-off follower was shown inactive after %d ticks", gone);
    CHECK_CLEAN(c);
}

/* With check-quorum, a follower that hears from its leader ignores a VOTE
 * (no grant, no term change). */
static void follower_ignores_vote_while_leader_alive(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 15);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    uint64_t t = term_of(c, 1);
    raft_status_info s3 = status_of(c, 3);
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = t + 1;
    m.index = s3.last_index;
    m.log_term = raft_entry_term(nd_of(c, 3)->r, s3.last_index);
    trace_reset(c);
    step(c, 2, &m);
    const tmsg *r = last_msg(c, RAFT_MSG_VOTE_RESP, 2, 3);
    CHECK(!r || r->m.reject, "node 2 granted a vote while its leader is alive");
    CHECK(term_of(c, 2) == t, "node 2 moved to term %llu (leader's term %llu)",
          (unsigned long long)term_of(c, 2), (unsigned long long)t);
    CHECK(status_of(c, 2).leader == 1, "node 2 forgot its leader");
    run(c, 3);
    CHECK(role(c, 1) == RAFT_LEADER && term_of(c, 1) == t, "leader disturbed: role %s term %llu",
          raft_role_name(role(c, 1)), (unsigned long long)term_of(c, 1));
    CHECK_CLEAN(c);
}

/* A follower acknowledges entries only in a ready that persists them (or
 * after); the harness checks every APPEND_RESP, this test makes sure some
 * were checked. */
static struct {
    uint64_t persisted_max;
    uint64_t acked_max;
    int early;
} ack_obs;

static void ack_hook(cluster *c, node *nd, const raft_ready *rd)
{
    (void)c;
    if (nd->id != 2)
        return;
    uint64_t last = store_last(&nd->st);
    if (rd->truncate_from && rd->truncate_from <= last)
        last = rd->truncate_from - 1;
    if (rd->n_entries)
        last = rd->entries[rd->n_entries - 1].index;
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const raft_msg *m = &rd->msgs[i];
        if (m->type == RAFT_MSG_APPEND_RESP && !m->reject) {
            if (m->index > last)
                ack_obs.early++;
            if (m->index > ack_obs.acked_max)
                ack_obs.acked_max = m->index;
        }
    }
}

static void append_ack_only_with_entries_persisted(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 16);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 2);
    memset(&ack_obs, 0, sizeof ack_obs);
    c->ready_hook = ack_hook;
    uint64_t idx = 0;
    for (int i = 0; i < 5; i++)
        CHECK(propose(c, 1, "abcdef", 6, &idx) == RAFT_OK, "propose failed");
    deliver_all(c);
    CHECK(ack_obs.acked_max >= idx, "node 2 never acknowledged index %llu (max ack %llu)",
          (unsigned long long)idx, (unsigned long long)ack_obs.acked_max);
    CHECK(ack_obs.early == 0,
          "%d APPEND_RESP acknowledged entries not persisted in that ready "
          "or before",
          ack_obs.early);
    CHECK(store_last(&nd_of(c, 2)->st) >= idx, "node 2 log ends at %llu",
          (unsigned long long)store_last(&nd_of(c, 2)->st));
    run(c, 2);
    CHECK(nd_of(c, 2)->st.applied >= idx, "node 2 applied only %llu of %llu",
          (unsigned long long)nd_of(c, 2)->st.applied, (unsigned long long)idx);
    CHECK_CLEAN(c);
}

/* A new leader appends a NOOP of its term right away, and it commits. */
static void leader_appends_noop_on_election(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 17);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    uint64_t last_before = store_last(&nd_of(c, 1)->st);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    uint64_t t = term_of(c, 1);
    const raft_entry *e = store_entry(&nd_of(c, 1)->st, last_before + 1);
    CHECK(e, "leader persisted no entry after index %llu on election",
          (unsigned long long)last_before);
    CHECK(e->type == RAFT_ENTRY_NOOP && e->term == t,
          "entry %llu after election: type %u term %llu, want NOOP term %llu",
          (unsigned long long)e->index, e->type, (unsigned long long)e->term,
          (unsigned long long)t);
    run(c, 2);
    for (uint64_t id = 1; id <= 3; id++)
        CHECK(nd_of(c, id)->st.applied >= last_before + 1,
              "node %llu applied %llu, NOOP at %llu not applied", (unsigned long long)id,
              (unsigned long long)nd_of(c, id)->st.applied, (unsigned long long)(last_before + 1));
    CHECK(c->hist[last_before + 1].term == t, "applied NOOP has wrong term");
    CHECK_CLEAN(c);
}

/* Figure 8 of the Raft paper. Only node 2 and 3 may receive APPENDs from
 * node 1 in step (c), and node 3 only up to the old entry. */
static uint64_t fig8_old_index;

static int fig8_filter(cluster *c, raft_msg *m)
{
    (void)c;
    if (m->from != 1 || m->type != RAFT_MSG_APPEND)
        return 1;
    if (m->to == 3) {
        /* the network carries to node 3 only entries up to the old one */
        uint32_t k = 0;
        while (k < m->n_entries && m->entries[k].index <= fig8_old_index)
            k++;
        for (uint32_t i = k; i < m->n_entries; i++)
            free(m->entries[i].data);
        m->n_entries = k;
        return 1;
    }
    return 1;
}

static int drop_from5_appends(cluster *c, raft_msg *m)
{
    (void)c;
    return !(m->from == 5 && m->type == RAFT_MSG_APPEND);
}

static void figure8_previous_term_entry_not_committed_by_counting(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    o.check_quorum = 0;
    raft_config cf = make_conf(5, 0);
    cluster *c = cl_new(5, &o, 18);
    CHECK(cl_boot(c, 5, &cf) == 0, "%s", c->bad);

    /* (a) S1 leads in term T1 and replicates entry X (index i) to S2 only. */
    CHECK(elect(c, 1) == 0, "S1 not elected: %s", c->bad);
    run(c, 2);
    uint64_t t1 = term_of(c, 1);
    for (uint64_t p = 3; p <= 5; p++)
        cut_both(c, 1, p, 1);
    uint64_t xi = 0;
    CHECK(propose(c, 1, "X", 1, &xi) == RAFT_OK, "propose X failed");
    deliver_all(c);
    fig8_old_index = xi;
    CHECK(store_term(&nd_of(c, 2)->st, xi) == t1, "(a) S2 lacks X at %llu", (unsigned long long)xi);
    CHECK(store_last(&nd_of(c, 3)->st) < xi, "(a) S3 got X");
    CHECK(status_of(c, 1).commit < xi, "(a) X committed on 2 of 5");

    /* (b) S1 crashes; S5 is elected by S3, S4 (and itself) in T2 and
     * appends an entry of T2 at index i that reaches no one. */
    crash(c, 1);
    memset(c->cut, 0, sizeof c->cut);
    c->filter = drop_from5_appends;
    CHECK(elect(c, 5) == 0, "(b) S5 not elected: %s", c->bad);
    c->filter = NULL;
    uint64_t t2 = term_of(c, 5);
    CHECK(t2 > t1, "(b) S5's term %llu not above %llu", (unsigned long long)t2,
          (unsigned long long)t1);
    CHECK(store_term(&nd_of(c, 5)->st, xi) == t2, "(b) S5 has no own entry at %llu",
          (unsigned long long)xi);
    crash(c, 5);

    /* (c) S1 restarts and is elected in T3 by S2, S3 (S4 down too). It
     * replicates X to S3: X is now on S1, S2, S3, a majority, but its term
     * is old. Its own T3 entry reaches only S2. */
    crash(c, 4);
    CHECK(restart(c, 1) == 0, "%s", c->bad);
    c->filter = fig8_filter;
    CHECK(elect(c, 1) == 0, "(c) S1 not re-elected: %s", c->bad);
    uint64_t t3 = term_of(c, 1);
    CHECK(t3 > t2, "(c) S1's term %llu not above S5's %llu", (unsigned long long)t3,
          (unsigned long long)t2);
    for (int k = 0; k < 3; k++) {
        tick(c, 1);
        deliver_all(c);
    }
    CHECK(store_term(&nd_of(c, 3)->st, xi) == t1,
          "(c) X (term %llu) not replicated to S3 (S3 has term %llu at %llu)",
          (unsigned long long)t1, (unsigned long long)store_term(&nd_of(c, 3)->st, xi),
          (unsigned long long)xi);
    CHECK(store_last(&nd_of(c, 3)->st) == xi, "(c) S3 got entries past X");
    CHECK(store_last(&nd_of(c, 2)->st) > xi, "(c) S2 lacks S1's T3 entry");
    raft_status_info st = status_of(c, 1);
    CHECK(st.commit < xi,
          "(c) leader committed index %llu (term %llu entry) by counting "
          "replicas: commit=%llu",
          (unsigned long long)xi, (unsigned long long)t1, (unsigned long long)st.commit);
    CHECK(xi >= c->hist_cap || !c->hist[xi].set, "(c) some node applied index %llu",
          (unsigned long long)xi);

    /* (e) once an entry of T3 is on a majority, both commit. (The leader
     * believes it sent entry i+1 to S3; it may take an election timeout to
     * notice the loss and resend.) */
    c->filter = NULL;
    run(c, 3 * E_TICKS);
    st = status_of(c, 1);
    CHECK(st.commit > xi,
          "(e) commit %llu not past %llu after the T3 entry "
          "reached S3",
          (unsigned long long)st.commit, (unsigned long long)xi);
    CHECK(c->hist[xi].set && c->hist[xi].term == t1, "(e) X not applied with its term");
    CHECK_CLEAN(c);
}

/* A follower whose log conflicts with the leader's deletes the conflicting
 * suffix (from the first conflict, not before) and takes the leader's; a
 * stale APPEND of entries it already has truncates nothing. */
static void log_conflict_truncates_follower(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 19);
    uint64_t terms[] = {1, 2, 2}; /* 1:t1 CONFIG 2:t1 3:t2 4:t2 */
    CHECK(seed_log(c, 2, &cf, terms, 3, (raft_hard_state){2, 0}) == 0, "%s", c->bad);
    node *f = nd_of(c, 2);
    raft_entry ents[3];
    char d[3][4] = {"x3", "y4", "z5"};
    for (int i = 0; i < 3; i++)
        ents[i] = (raft_entry){.term = 3,
                               .index = 3 + (uint64_t)i,
                               .type = RAFT_ENTRY_NORMAL,
                               .len = 2,
                               .data = (uint8_t *)d[i]};
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    m.index = 2;
    m.log_term = 1;
    m.commit = 0;
    m.n_entries = 3;
    m.entries = ents;
    trace_reset(c);
    step(c, 2, &m);
    const tmsg *r = last_msg(c, RAFT_MSG_APPEND_RESP, 2, 1);
    CHECK(r && !r->m.reject && r->m.index == 5,
          "APPEND(prev 2/t1, 3..5 t3): reply %s reject=%d index=%llu, want "
          "accept index 5",
          r ? "present" : "missing", r ? r->m.reject : -1,
          r ? (unsigned long long)r->m.index : 0ull);
    CHECK(f->truncations == 1 && f->max_truncate_seen == 3,
          "truncate_from %llu (%d truncations), want exactly 3",
          (unsigned long long)f->max_truncate_seen, f->truncations);
    for (uint64_t i = 3; i <= 5; i++)
        CHECK(store_term(&f->st, i) == 3, "index %llu has term %llu, want 3", (unsigned long long)i,
              (unsigned long long)store_term(&f->st, i));
    CHECK(store_term(&f->st, 2) == 1, "matching entry 2 lost");

    /* A delayed duplicate of an older APPEND: no truncation, and the ack
     * claims only what that message proves. */
    m.index = 1;
    m.log_term = 1;
    m.n_entries = 1;
    raft_entry e2 = {
        .term = 1, .index = 2, .type = RAFT_ENTRY_NORMAL, .len = 5, .data = (uint8_t *)"e2-t1"};
    m.entries = &e2;
    trace_reset(c);
    step(c, 2, &m);
    r = last_msg(c, RAFT_MSG_APPEND_RESP, 2, 1);
    CHECK(f->truncations == 1, "a duplicate APPEND truncated the log from %llu",
          (unsigned long long)f->max_truncate_seen);
    CHECK(store_last(&f->st) == 5, "log ends at %llu after a duplicate, want 5",
          (unsigned long long)store_last(&f->st));
    CHECK(r && !r->m.reject && r->m.index == 2,
          "duplicate APPEND(prev 1, [2]): reject=%d index=%llu, want accept "
          "index 2",
          r ? r->m.reject : -1, r ? (unsigned long long)r->m.index : 0ull);

    /* A mismatching prev term is rejected and truncates nothing. */
    m.index = 4;
    m.log_term = 2;
    m.n_entries = 0;
    m.entries = NULL;
    trace_reset(c);
    step(c, 2, &m);
    r = last_msg(c, RAFT_MSG_APPEND_RESP, 2, 1);
    CHECK(r && r->m.reject && r->m.index == 4,
          "APPEND(prev 4/t2) vs own 4/t3: reject=%d index=%llu, want reject "
          "index 4",
          r ? r->m.reject : -1, r ? (unsigned long long)r->m.index : 0ull);
    CHECK(r->m.hint_index <= 4, "reject hint_index %llu beyond 4",
          (unsigned long long)r->m.hint_index);
    CHECK(f->truncations == 1 && store_last(&f->st) == 5, "a rejected APPEND changed the log");
    CHECK_CLEAN(c);
}

/* After a rejection the leader jumps by the follower's hint instead of
 * stepping back one index per round trip. */
static void fast_backoff_uses_hint(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 20);
    uint64_t lead[99], foll[29];
    for (int i = 0; i < 99; i++) /* indexes 2..100: 2..5 t1, 6..100 t3 */
        lead[i] = i + 2 <= 5 ? 1 : 3;
    for (int i = 0; i < 29; i++) /* indexes 2..30: 2..5 t1, 6..30 t2 */
        foll[i] = i + 2 <= 5 ? 1 : 2;
    CHECK(seed_log(c, 1, &cf, lead, 99, (raft_hard_state){3, 0}) == 0, "%s", c->bad);
    CHECK(seed_log(c, 3, &cf, lead, 99, (raft_hard_state){3, 0}) == 0, "%s", c->bad);
    CHECK(seed_log(c, 2, &cf, foll, 29, (raft_hard_state){2, 0}) == 0, "%s", c->bad);
    isolate(c, 2, 1);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    isolate(c, 2, 0);
    trace_reset(c);
    node *f = nd_of(c, 2), *l = nd_of(c, 1);
    for (int k = 0; k < 5; k++) {
        tick(c, 1);
        deliver_all(c);
        if (store_last(&f->st) == store_last(&l->st) && store_term(&f->st, 30) == 3)
            break;
    }
    size_t rejects = 0;
    for (size_t i = 0; i < c->n_trace; i++)
        if (c->trace[i].m.type == RAFT_MSG_APPEND_RESP && c->trace[i].m.from == 2 &&
            c->trace[i].m.reject)
            rejects++;
    CHECK(store_last(&f->st) == store_last(&l->st) && store_term(&f->st, 30) == 3,
          "follower not repaired: last %llu (leader %llu), term at 30 %llu",
          (unsigned long long)store_last(&f->st), (unsigned long long)store_last(&l->st),
          (unsigned long long)store_term(&f->st, 30));
    CHECK(rejects <= 3,
          "%zu rejected APPENDs before the logs matched (conflict spans "
          "6..100)",
          rejects);
    CHECK(f->max_truncate_seen == 6, "follower truncated from %llu, want 6",
          (unsigned long long)f->max_truncate_seen);
    CHECK_CLEAN(c);
}

/* snapshot_trail_bytes bounds the trail by the bytes of its entries: with
 * 1000-byte entries and a 2500-byte bound, two entries stay behind the
 * snapshot although snapshot_trail allows 1000; without it all stay. */
static void snapshot_trail_bounded_by_bytes(void)
{
    for (int bounded = 0; bounded < 2; bounded++) {
        raft_options o = base_opts();
        o.snapshot_trail = 1000;
        o.snapshot_trail_bytes = bounded ? 2500 : 0;
        raft_config cf = make_conf(3, 0);
        cluster *c = cl_new(3, &o, 23);
        CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
        CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
        run(c, 2);
        uint8_t buf[1000];
        memset(buf, 'x', sizeof buf);
        uint64_t idx = 0;
        for (int i = 0; i < 10; i++) {
            int rc = propose(c, 1, buf, sizeof buf, &idx);
            CHECK(rc == RAFT_OK, "propose %d: %s", i, raft_strerror(rc));
            deliver_all(c);
        }
        run(c, 2);
        node *l = nd_of(c, 1);
        CHECK(l->st.applied >= idx, "leader applied %llu of %llu",
              (unsigned long long)l->st.applied, (unsigned long long)idx);
        uint64_t si = l->st.applied;
        CHECK(take_snapshot(c, l) == RAFT_OK, "raft_snapshot_taken failed");
        raft_status_info st = status_of(c, 1);
        if (bounded) {
            CHECK(st.first_index == si - 1, "bounded: first_index %llu, want %llu",
                  (unsigned long long)st.first_index, (unsigned long long)(si - 1));
            CHECK(st.log_bytes <= 2500 + (st.last_index - si) * 1000, "bounded: %zu log bytes",
                  st.log_bytes);
        } else {
            CHECK(st.first_index == 1, "unbounded: first_index %llu, want 1",
                  (unsigned long long)st.first_index);
        }
        CHECK_CLEAN(c);
    }
}

/* A follower behind the leader's compacted log gets the snapshot in chunks
 * of at most RAFT_SNAP_CHUNK bytes, installs it, then continues by log. */
static void snapshot_sent_to_lagging_follower_in_chunks(void)
{
    raft_options o = base_opts();
    o.snapshot_trail = 2;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 21);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 2);
    isolate(c, 3, 1);
    enum { PIECE = 100000, PIECES = 6 };
    uint8_t *buf = xcalloc(1, PIECE);
    uint64_t idx = 0;
    for (int p = 0; p < PIECES; p++) {
        for (int i = 0; i < PIECE; i++)
            buf[i] = (uint8_t)(p * 31 + i * 7);
        int rc = propose(c, 1, buf, PIECE, &idx);
        if (rc != RAFT_OK)
            free(buf);
        CHECK(rc == RAFT_OK, "propose %d: %s", p, raft_strerror(rc));
        deliver_all(c);
    }
    free(buf);
    run(c, 2);
    node *l = nd_of(c, 1), *f = nd_of(c, 3);
    CHECK(l->st.applied >= idx, "leader applied %llu of %llu", (unsigned long long)l->st.applied,
          (unsigned long long)idx);
    /* the leader captures its state machine and compacts */
    uint64_t si = l->st.applied;
    int rc = take_snapshot(c, l);
    CHECK(rc == RAFT_OK, "raft_snapshot_taken(%llu): %s", (unsigned long long)si,
          raft_strerror(rc));
    run(c, 2);
    CHECK(status_of(c, 1).first_index > store_last(&f->st) + 1,
          "leader kept index %llu that node 3 needs (first_index %llu, trail 2, "
          "snapshot %llu)",
          (unsigned long long)(store_last(&f->st) + 1),
          (unsigned long long)status_of(c, 1).first_index, (unsigned long long)si);
    trace_reset(c);
    isolate(c, 3, 0);
    run(c, 10);
    size_t n_snap = 0;
    uint64_t want_off = 0;
    int order_ok = 1, conf_ok = 1, idx_ok = 1;
    for (size_t i = 0; i < c->n_trace; i++) {
        const tmsg *t = &c->trace[i];
        if (t->m.type != RAFT_MSG_SNAP || t->m.from != 1 || t->m.to != 3)
            continue;
        if (n_snap < 3 && t->m.offset != want_off)
            order_ok = 0;
        want_off += t->m.len;
        n_snap++;
        if (!t->has_conf || t->conf_n != 3)
            conf_ok = 0;
        if (t->m.snap_index != si)
            idx_ok = 0;
    }
    CHECK(n_snap >= 3, "%zu SNAP messages for a %zu-byte snapshot", n_snap, l->st.snap_len);
    CHECK(order_ok, "SNAP chunks not at offsets 0, %d, %d", RAFT_SNAP_CHUNK, 2 * RAFT_SNAP_CHUNK);
    CHECK(conf_ok, "a SNAP message lacks the 3-node configuration");
    CHECK(idx_ok, "a SNAP message names a snapshot other than %llu", (unsigned long long)si);
    CHECK(f->installs == 1, "node 3 installed %d snapshots", f->installs);
    CHECK(f->st.has_snap && f->st.snap.index == si, "node 3 snapshot at %llu",
          (unsigned long long)f->st.snap.index);
    CHECK(f->st.snap.conf.n == 3, "installed snapshot config has %u nodes", f->st.snap.conf.n);
    CHECK(f->st.sm_len == l->st.sm_len && !memcmp(f->st.sm, l->st.sm, f->st.sm_len),
          "node 3 state machine (%zu bytes) differs from leader's (%zu)", f->st.sm_len,
          l->st.sm_len);
    const tmsg *sr = last_msg(c, RAFT_MSG_SNAP_RESP, 3, 1);
    CHECK(sr && sr->m.last && !sr->m.reject, "no final SNAP_RESP from node 3");
    /* and replication continues by log after the snapshot */
    CHECK(propose(c, 1, "after", 5, &idx) == RAFT_OK, "propose after failed");
    run(c, 3);
    CHECK(f->st.applied >= idx, "node 3 applied %llu, want %llu", (unsigned long long)f->st.applied,
          (unsigned long long)idx);
    CHECK(f->st.sm_len == l->st.sm_len && !memcmp(f->st.sm, l->st.sm, f->st.sm_len),
          "node 3 state machine differs after the snapshot");
    CHECK_CLEAN(c);
}

/* Learners never campaign, their votes do not elect, their acks do not
 * commit. Voters 1, 2; learners 3, 4. */
static void learner_does_not_vote(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    o.check_quorum = 0;
    o.auto_promote = 0; /* caught-up learners would become voters */
    raft_config cf = make_conf(2, 2);
    cluster *c = cl_new(4, &o, 22);
    CHECK(cl_boot(c, 4, &cf) == 0, "%s", c->bad);
    trace_reset(c);
    for (int t = 0; t < 6 * E_TICKS; t++) {
        tick(c, 3);
        tick(c, 4);
    }
    CHECK(role(c, 3) == RAFT_FOLLOWER && role(c, 4) == RAFT_FOLLOWER,
          "a learner left the follower role");
    CHECK(count_msgs(c, RAFT_MSG_VOTE, 3, 0) + count_msgs(c, RAFT_MSG_VOTE, 4, 0) +
                  count_msgs(c, RAFT_MSG_PREVOTE, 3, 0) + count_msgs(c, RAFT_MSG_PREVOTE, 4, 0) ==
              0,
          "a learner asked for votes");
    q_clear(c);
    /* Without voter 2, node 1 cannot win, whatever learners answer. */
    isolate(c, 2, 1);
    for (int t = 0; t < 6 * E_TICKS; t++) {
        tick(c, 1);
        deliver_all(c);
        CHECK(role(c, 1) != RAFT_LEADER,
              "node 1 became leader with 1 of 2 voters (learners counted)");
    }
    isolate(c, 2, 0);
    CHECK(elect(c, 1) == 0, "node 1 not elected with node 2: %s", c->bad);
    run(c, 2);
    uint64_t commit = status_of(c, 1).commit;
    isolate(c, 2, 1);
    uint64_t idx;
    CHECK(propose(c, 1, "L", 1, &idx) == RAFT_OK, "propose failed");
    for (int k = 0; k < 3; k++) {
        tick(c, 1);
        deliver_all(c);
    }
    CHECK(store_last(&nd_of(c, 3)->st) >= idx, "learner 3 not replicated to");
    CHECK(status_of(c, 1).commit == commit, "commit moved to %llu on acks of learners only",
          (unsigned long long)status_of(c, 1).commit);
    isolate(c, 2, 0);
    run(c, 3 * E_TICKS); /* time to notice the lost APPENDs */
    CHECK(status_of(c, 1).commit >= idx, "entry never committed with voter 2");
    CHECK_CLEAN(c);
}

static const raft_node *conf_find(const raft_config *cf, uint64_t id)
{
    for (uint32_t i = 0; cf && i < cf->n; i++)
        if (cf->nodes[i].id == id)
            return &cf->nodes[i];
    return NULL;
}

/* An added node joins as a learner, catches up and is then promoted to
 * voter by the leader on its own. */
static void learner_promoted_when_caught_up(void)
{
    raft_options o = base_opts();
    o.auto_promote = 1;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(4, &o, 23);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    /* node 4: an empty node started with no state */
    node *n4 = nd_of(c, 4);
    CHECK(start_core(c, n4) == 0, "%s", c->bad);
    raft_hard_state hs0 = {0, 0};
    int rc = raft_restore(n4->r, &hs0, NULL, NULL, 0, 0);
    CHECK(rc == RAFT_OK, "raft_restore of an empty node: %s", raft_strerror(rc));
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 2);
    for (int i = 0; i < 5; i++)
        CHECK(propose(c, 1, "data", 4, NULL) == RAFT_OK, "propose failed");
    run(c, 2);
    uint64_t idx = 0;
    rc = raft_add_node(nd_of(c, 1)->r, 4, "node4 127.0.0.1:12004 127.0.0.1:11004", &idx);
    CHECK(rc == RAFT_OK, "raft_add_node: %s", raft_strerror(rc));
    CHECK(idx > 0, "raft_add_node gave index 0 for a new node");
    drive(c, nd_of(c, 1));
    const raft_node *rn = conf_find(raft_config_get(nd_of(c, 1)->r), 4);
    CHECK(rn && rn->voter == 0, "node 4 %s right after raft_add_node",
          rn ? "is a voter" : "is missing from the config");
    CHECK(!strcmp(rn->meta, "node4 127.0.0.1:12004 127.0.0.1:11004"), "node 4 meta '%s'", rn->meta);
    run(c, 3 * E_TICKS);
    CHECK(store_last(&n4->st) == store_last(&nd_of(c, 1)->st),
          "node 4 log ends at %llu, leader's at %llu", (unsigned long long)store_last(&n4->st),
          (unsigned long long)store_last(&nd_of(c, 1)->st));
    rn = conf_find(&nd_of(c, 1)->st.sm_conf, 4);
    CHECK(rn && rn->voter == 1, "leader's applied config: node 4 %s after catching up",
          rn ? "still a learner" : "missing");
    rn = conf_find(&n4->st.sm_conf, 4);
    CHECK(rn && rn->voter == 1, "node 4's own applied config: %s", rn ? "learner" : "missing");
    /* The quorum is now 3 of 4 voters: 1 and 2 alone do not commit. */
    run(c, 2);
    isolate(c, 3, 1);
    isolate(c, 4, 1);
    uint64_t commit = status_of(c, 1).commit, i2;
    CHECK(propose(c, 1, "q", 1, &i2) == RAFT_OK, "propose failed");
    run(c, 3);
    CHECK(status_of(c, 1).commit == commit, "2 of 4 voters committed index %llu",
          (unsigned long long)status_of(c, 1).commit);
    isolate(c, 3, 0);
    isolate(c, 4, 0);
    run(c, 3 * E_TICKS); /* time to notice the lost APPENDs */
    CHECK(status_of(c, 1).commit >= i2, "entry not committed after healing");
    CHECK_CLEAN(c);
}

/* A leader that removes itself leads until the change commits, then steps
 * down; the rest elect a leader and the removed node does not disturb them. */
static void leader_removed_steps_down(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 24);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    uint64_t idx = 0;
    int rc = raft_remove_node(nd_of(c, 1)->r, 1, &idx);
    CHECK(rc == RAFT_OK, "raft_remove_node(self): %s", raft_strerror(rc));
    drive(c, nd_of(c, 1));
    CHECK(role(c, 1) == RAFT_LEADER, "leader stepped down before the change "
                                     "committed");
    int stepped = 0;
    uint64_t new_leader = 0, lead_term = 0;
    for (int t = 0; t < 8 * E_TICKS; t++) {
        run(c, 1);
        if (!stepped && role(c, 1) != RAFT_LEADER) {
            stepped = 1;
            CHECK(status_of(c, 1).commit >= idx,
                  "stepped down with commit %llu before the removal at %llu "
                  "committed",
                  (unsigned long long)status_of(c, 1).commit, (unsigned long long)idx);
        }
        for (uint64_t id = 2; id <= 3; id++)
            if (!new_leader && role(c, id) == RAFT_LEADER) {
                new_leader = id;
                lead_term = term_of(c, id);
            }
    }
    CHECK(stepped, "removed leader still leads after %d ticks", 8 * E_TICKS);
    CHECK(new_leader, "nodes 2, 3 elected no leader");
    CHECK(role(c, new_leader) == RAFT_LEADER && term_of(c, new_leader) == lead_term,
          "new leader %llu disturbed: role %s term %llu (elected in %llu)",
          (unsigned long long)new_leader, raft_role_name(role(c, new_leader)),
          (unsigned long long)term_of(c, new_leader), (unsigned long long)lead_term);
    CHECK(!conf_find(raft_config_get(nd_of(c, new_leader)->r), 1),
          "node 1 still in the new leader's config");
    CHECK(role(c, 1) != RAFT_LEADER, "removed node leads again");
    uint64_t i2;
    CHECK(propose(c, new_leader, "w", 1, &i2) == RAFT_OK, "propose failed");
    run(c, 3);
    CHECK(status_of(c, new_leader).commit >= i2, "2-node cluster cannot commit");
    CHECK_CLEAN(c);
}

/* Transfer: proposals stop, the target is brought up to date, only then is
 * told TIMEOUT_NOW, and wins at once (followers honour its transfer VOTE
 * despite the leader lease). */
static struct {
    int timeout_now;
    int early;
    uint64_t match_at_send, last_at_send;
} xfer_obs;

static void xfer_hook(cluster *c, node *nd, const raft_ready *rd)
{
    (void)c;
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const raft_msg *m = &rd->msgs[i];
        if (m->type != RAFT_MSG_TIMEOUT_NOW)
            continue;
        xfer_obs.timeout_now++;
        raft_status_info st;
        raft_status(nd->r, &st);
        uint64_t match = 0;
        for (size_t k = 0; k < st.n_progress; k++)
            if (st.progress[k].id == m->to)
                match = st.progress[k].match;
        xfer_obs.match_at_send = match;
        xfer_obs.last_at_send = st.last_index;
        if (match != st.last_index)
            xfer_obs.early++;
    }
}

/* Messages to node 3 are held back (delayed, not lost) while hold3 is on. */
static raft_msg *held[4096];
static size_t n_held;

static int hold_to_3(cluster *c, raft_msg *m)
{
    (void)c;
    if (m->to != 3)
        return 1;
    if (n_held < sizeof held / sizeof held[0])
        held[n_held++] = msg_dup(m);
    return 0;
}

static void release_held(cluster *c)
{
    for (size_t i = 0; i < n_held; i++)
        q_push(c, held[i]);
    n_held = 0;
}

/* Node 3 falls behind (its APPENDs delayed, or lost when lose is set),
 * then leadership is handed to it. */
static void transfer_case(int lose)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 25);
    n_held = 0;
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    uint64_t t = term_of(c, 1);
    if (lose)
        isolate(c, 3, 1);
    else
        c->filter = hold_to_3;
    uint64_t idx;
    for (int i = 0; i < 3; i++)
        CHECK(propose(c, 1, "t", 1, &idx) == RAFT_OK, "propose failed");
    deliver_all(c);
    CHECK(store_last(&nd_of(c, 3)->st) < idx, "node 3 not behind");
    memset(&xfer_obs, 0, sizeof xfer_obs);
    c->ready_hook = xfer_hook;
    int rc = raft_transfer_leader(nd_of(c, 1)->r, 3);
    CHECK(rc == RAFT_OK, "raft_transfer_leader: %s", raft_strerror(rc));
    drive(c, nd_of(c, 1));
    rc = raft_propose(nd_of(c, 1)->r, "z", 1, NULL, NULL);
    CHECK(rc == RAFT_ETRANSFER, "propose during transfer: %s, want ETRANSFER", raft_strerror(rc));
    drive(c, nd_of(c, 1));
    if (lose) {
        isolate(c, 3, 0);
    } else {
        c->filter = NULL;
        release_held(c);
    }
    /* only the leader ticks (followers stay inside its lease), and less
     * than the election timeout after which the transfer is abandoned */
    int ticks = 0;
    deliver_all(c);
    while (ticks < E_TICKS - 1 && role(c, 3) != RAFT_LEADER) {
        tick(c, 1);
        ticks++;
        deliver_all(c);
    }
    CHECK(xfer_obs.timeout_now >= 1,
          "no TIMEOUT_NOW sent within %d leader ticks (target log %llu, "
          "leader %llu)",
          ticks, (unsigned long long)store_last(&nd_of(c, 3)->st),
          (unsigned long long)store_last(&nd_of(c, 1)->st));
    CHECK(xfer_obs.early == 0, "TIMEOUT_NOW sent with target match %llu < leader last %llu",
          (unsigned long long)xfer_obs.match_at_send, (unsigned long long)xfer_obs.last_at_send);
    CHECK(role(c, 3) == RAFT_LEADER, "node 3 is %s after the transfer", raft_role_name(role(c, 3)));
    CHECK(term_of(c, 3) == t + 1, "node 3 leads in term %llu, want %llu",
          (unsigned long long)term_of(c, 3), (unsigned long long)(t + 1));
    CHECK(role(c, 1) == RAFT_FOLLOWER, "old leader is %s", raft_role_name(role(c, 1)));
    run(c, 2);
    CHECK(propose(c, 3, "after", 5, &idx) == RAFT_OK, "new leader refuses");
    run(c, 2);
    CHECK(status_of(c, 3).commit >= idx, "new leader cannot commit");
    CHECK(status_of(c, 1).transferee == 0, "old leader still transferring");
    CHECK_CLEAN(c);
}

static void transfer_leader_to_caught_up_node(void)
{
    transfer_case(0);
}

/* The same when the APPENDs to the target were lost: starting a transfer
 * must bring the target up to date within the transfer's time limit
 * (an election timeout), not leave it to the lost-message timer. */
static void transfer_to_target_that_lost_appends(void)
{
    transfer_case(1);
}

/* A read on the leader is answered only after a heartbeat round confirms
 * leadership, with the commit index at the time of the request; an
 * isolated leader never answers and fails the read when it steps down. */
static void read_index_requires_heartbeat_round(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 26);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    node *l = nd_of(c, 1);
    uint64_t commit = status_of(c, 1).commit;
    int rc = raft_read_index(l->r, 42);
    CHECK(rc == RAFT_OK, "raft_read_index on leader: %s", raft_strerror(rc));
    drive(c, l);
    CHECK(!has_read(l, 42, NULL), "read answered before any follower confirmed leadership");
    isolate(c, 3, 1);
    deliver_all(c);
    uint64_t ri = 0;
    CHECK(has_read(l, 42, &ri), "read not answered after node 2 acknowledged");
    CHECK(ri == commit, "read index %llu, want commit %llu", (unsigned long long)ri,
          (unsigned long long)commit);
    isolate(c, 3, 0);

    isolate(c, 1, 1);
    rc = raft_read_index(l->r, 43);
    CHECK(rc == RAFT_OK, "second raft_read_index: %s", raft_strerror(rc));
    drive(c, l);
    int stepped = 0;
    for (int t = 0; t < 4 * E_TICKS; t++) {
        tick(c, 1);
        deliver_all(c);
        CHECK(!has_read(l, 43, NULL), "isolated leader answered a read");
        if (role(c, 1) != RAFT_LEADER) {
            stepped = 1;
            break;
        }
    }
    CHECK(stepped, "isolated leader did not step down");
    CHECK(has_failed(l, 43), "read pending when leadership was lost not in "
                             "reads_failed");
    CHECK_CLEAN(c);
}

/* A follower's read goes to the leader as READ_INDEX and comes back in the
 * follower's rd.reads with the leader's commit index; with no leader
 * known raft_read_index says ENOTLEADER. */
static void read_index_on_follower_asks_leader(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 27);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    int rc = raft_read_index(nd_of(c, 2)->r, 5);
    drive(c, nd_of(c, 2));
    CHECK(rc == RAFT_ENOTLEADER || has_failed(nd_of(c, 2), 5),
          "read with no leader known: %s and not failed", raft_strerror(rc));
    q_clear(c);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 3);
    uint64_t commit = status_of(c, 1).commit;
    trace_reset(c);
    node *f = nd_of(c, 2);
    rc = raft_read_index(f->r, 77);
    CHECK(rc == RAFT_OK, "raft_read_index on follower: %s", raft_strerror(rc));
    drive(c, f);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX, 2, 1) == 1,
          "follower sent %zu READ_INDEX to the leader", count_msgs(c, RAFT_MSG_READ_INDEX, 2, 1));
    CHECK(!has_read(f, 77, NULL), "follower answered without the leader");
    deliver_all(c);
    uint64_t ri = 0;
    CHECK(has_read(f, 77, &ri), "follower's read never came back");
    CHECK(ri == commit, "read index %llu, want leader's commit %llu", (unsigned long long)ri,
          (unsigned long long)commit);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2) == 1, "leader sent %zu READ_INDEX_RESP",
          count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2));
    CHECK_CLEAN(c);
}

/* ---------------------------------------------------- ReadIndex batching */

/* READ_INDEX messages from followers are held back (a slow or lossy
 * link) while hold_ri is set; the test delivers or drops them. */
static raft_msg *ri_held[64];
static size_t n_ri_held;
static int hold_ri;

static int hold_read_index(cluster *c, raft_msg *m)
{
    (void)c;
    if (!hold_ri || m->type != RAFT_MSG_READ_INDEX)
        return 1;
    if (n_ri_held < sizeof ri_held / sizeof ri_held[0])
        ri_held[n_ri_held++] = msg_dup(m);
    return 0;
}

static void ri_held_free(void)
{
    for (size_t i = 0; i < n_ri_held; i++)
        msg_free(ri_held[i]);
    n_ri_held = 0;
    hold_ri = 0;
}

/* Elected leader 1 of three nodes, everything delivered. */
static cluster *three_with_leader(uint64_t seed)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, seed);
    n_ri_held = 0;
    hold_ri = 0;
    if (cl_boot(c, 3, &cf) != 0 || elect(c, 1) != 0)
        return NULL;
    run(c, 3);
    c->filter = hold_read_index;
    return c;
}

static size_t n_released(const node *nd, uint64_t from, uint64_t to)
{
    size_t k = 0;
    for (uint64_t x = from; x < to; x++)
        k += has_read(nd, x, NULL);
    return k;
}

static size_t n_failed_of(const node *nd, uint64_t from, uint64_t to)
{
    size_t k = 0;
    for (uint64_t x = from; x < to; x++)
        k += has_failed(nd, x);
    return k;
}

/* 50 reads asked of a follower in one turn leave in ONE READ_INDEX, come
 * back in ONE READ_INDEX_RESP, and are all released at the leader's read
 * index; the follower serves them once its applied index reaches it. */
static void read_index_follower_batches_one_turn(void)
{
    cluster *c = three_with_leader(41);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    /* the leader commits a write the follower has not applied yet */
    c->filter = NULL;
    cut_both(c, 1, 2, 1);
    uint64_t wi = 0;
    CHECK(propose(c, 1, "w1", 2, &wi) == RAFT_OK, "propose failed");
    deliver_all(c);
    run(c, 1);
    uint64_t commit = status_of(c, 1).commit;
    CHECK(commit >= wi, "write %llu not committed by 1 and 3 (commit %llu)", (unsigned long long)wi,
          (unsigned long long)commit);
    CHECK(f->st.applied < wi, "follower applied the write it was cut from");
    cut_both(c, 1, 2, 0);

    trace_reset(c);
    for (uint64_t x = 1000; x < 1050; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read %llu refused", (unsigned long long)x);
    drive(c, f);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0) == 1, "50 reads in one turn sent %zu READ_INDEX",
          count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0));
    CHECK(n_released(f, 1000, 1050) == 0, "released before the leader answered");
    deliver_all(c);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0) == 1, "READ_INDEX sent again (%zu)",
          count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0));
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2) == 1,
          "leader answered the batch with %zu READ_INDEX_RESP",
          count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2));
    CHECK(n_released(f, 1000, 1050) == 50, "%zu of 50 reads released", n_released(f, 1000, 1050));
    for (uint64_t x = 1000; x < 1050; x++) {
        uint64_t ri = 0;
        has_read(f, x, &ri);
        CHECK(ri == commit, "read %llu at index %llu, want the leader's commit %llu",
              (unsigned long long)x, (unsigned long long)ri, (unsigned long long)commit);
    }
    /* the caller serves them once applied >= read index: it gets there */
    run(c, 2);
    CHECK(f->st.applied >= commit, "follower applied %llu, read index %llu",
          (unsigned long long)f->st.applied, (unsigned long long)commit);
    CHECK(n_failed_of(f, 1000, 1050) == 0, "some reads also failed");
    CHECK_CLEAN(c);
}

/* A batch closes when the ready carrying its READ_INDEX is handed out:
 * reads asked after that go in a new batch, and the first batch's answer
 * (recorded before they were asked) never releases them. */
static void read_index_batch_closed_when_sent(void)
{
    cluster *c = three_with_leader(42);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    hold_ri = 1;
    trace_reset(c);
    for (uint64_t x = 1; x <= 5; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_ri_held == 1, "%zu READ_INDEX for the first batch", n_ri_held);
    uint64_t c1 = status_of(c, 1).commit;

    /* a write is acknowledged; reads asked now must see it */
    uint64_t wi = 0;
    CHECK(propose(c, 1, "w2", 2, &wi) == RAFT_OK, "propose failed");
    run(c, 2);
    uint64_t c2 = status_of(c, 1).commit;
    CHECK(c2 >= wi && c2 > c1, "write not committed");
    for (uint64_t x = 6; x <= 10; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_ri_held == 2, "%zu READ_INDEX for two batches", n_ri_held);
    CHECK(ri_held[0]->ctx != ri_held[1]->ctx, "two batches share id %llu",
          (unsigned long long)ri_held[0]->ctx);

    /* the first batch's answer: reads 1..5 only, at an index >= c1 */
    hold_ri = 0;
    q_push(c, msg_dup(ri_held[0]));
    deliver_all(c);
    CHECK(n_released(f, 1, 6) == 5, "first batch: %zu of 5 released", n_released(f, 1, 6));
    CHECK(n_released(f, 6, 11) == 0,
          "reads asked after the first READ_INDEX left were released by its answer");
    uint64_t ri = 0;
    has_read(f, 1, &ri);
    CHECK(ri >= c1, "first batch index %llu < commit %llu when asked", (unsigned long long)ri,
          (unsigned long long)c1);
    /* a duplicate of the first batch changes nothing */
    q_push(c, msg_dup(ri_held[0]));
    deliver_all(c);
    CHECK(n_released(f, 6, 11) == 0, "duplicate answer released the second batch");

    q_push(c, msg_dup(ri_held[1]));
    deliver_all(c);
    CHECK(n_released(f, 6, 11) == 5, "second batch: %zu of 5 released", n_released(f, 6, 11));
    for (uint64_t x = 6; x <= 10; x++) {
        has_read(f, x, &ri);
        CHECK(ri >= wi, "read %llu released at %llu before the write at %llu",
              (unsigned long long)x, (unsigned long long)ri, (unsigned long long)wi);
    }
    ri_held_free();
    CHECK_CLEAN(c);
}

static raft_msg read_resp(uint64_t from, uint64_t to, uint64_t term, uint64_t batch, uint64_t index,
                          int reject)
{
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_READ_INDEX_RESP;
    m.from = from;
    m.to = to;
    m.term = term;
    m.ctx = batch;
    m.index = index;
    m.reject = (uint8_t)reject;
    return m;
}

/* A rejected batch fails every read in it; nothing is released, and an
 * answer from a node that is not the leader is ignored. */
static void read_index_rejected_batch_fails_all(void)
{
    cluster *c = three_with_leader(43);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    hold_ri = 1;
    for (uint64_t x = 100; x < 150; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_ri_held == 1, "%zu READ_INDEX for one turn", n_ri_held);
    uint64_t b = ri_held[0]->ctx, t = term_of(c, 1);

    raft_msg m = read_resp(3, 2, t, b, 1000, 0); /* not the leader */
    step(c, 2, &m);
    CHECK(n_released(f, 100, 150) == 0, "an answer from a non-leader released reads");
    m = read_resp(1, 2, t, b, 0, 1);
    step(c, 2, &m);
    CHECK(n_failed_of(f, 100, 150) == 50, "reject failed %zu of 50 reads",
          n_failed_of(f, 100, 150));
    CHECK(n_released(f, 100, 150) == 0, "a rejected batch released reads");
    /* a late success for the same batch is ignored */
    m = read_resp(1, 2, t, b, status_of(c, 1).commit, 0);
    step(c, 2, &m);
    CHECK(n_released(f, 100, 150) == 0, "a failed batch was released later");
    ri_held_free();
    CHECK_CLEAN(c);
}

/* Reads pending at a follower when its leader changes are failed, and a
 * late answer from the old leader, even a successful one, releases
 * nothing; reads asked afterwards go to the new leader in a new batch and
 * are released at an index that includes its term's first entry. */
static void read_index_batch_failed_on_leader_change(void)
{
    cluster *c = three_with_leader(44);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    hold_ri = 1;
    for (uint64_t x = 200; x < 220; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_ri_held == 1, "%zu READ_INDEX", n_ri_held);
    uint64_t b = ri_held[0]->ctx, t1 = term_of(c, 1);
    uint64_t old_commit = status_of(c, 1).commit;

    hold_ri = 0;
    CHECK(raft_transfer_leader(nd_of(c, 1)->r, 3) == RAFT_OK, "transfer refused");
    drive(c, nd_of(c, 1));
    for (int t = 0; t < 4 * E_TICKS && role(c, 3) != RAFT_LEADER; t++)
        run(c, 1);
    CHECK(role(c, 3) == RAFT_LEADER, "node 3 not elected: %s", c->bad);
    run(c, 2);
    CHECK(status_of(c, 2).leader == 3, "follower does not know the new leader");
    CHECK(n_failed_of(f, 200, 220) == 20, "leader change failed %zu of 20 reads",
          n_failed_of(f, 200, 220));
    /* the old leader's late answer, and the READ_INDEX reaching it late */
    raft_msg m = read_resp(1, 2, t1, b, old_commit, 0);
    step(c, 2, &m);
    q_push(c, msg_dup(ri_held[0]));
    deliver_all(c);
    CHECK(n_released(f, 200, 220) == 0,
          "a read asked of the old leader was released after the change");

    uint64_t new_commit = status_of(c, 3).commit;
    CHECK(new_commit > old_commit, "new leader committed nothing of its term");
    trace_reset(c);
    for (uint64_t x = 300; x < 310; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX, 2, 3) == 1, "%zu READ_INDEX to the new leader",
          count_msgs(c, RAFT_MSG_READ_INDEX, 2, 3));
    deliver_all(c);
    CHECK(n_released(f, 300, 310) == 10, "%zu of 10 reads released by the new leader",
          n_released(f, 300, 310));
    uint64_t ri = 0;
    has_read(f, 300, &ri);
    CHECK(ri >= new_commit, "released at %llu, new leader's commit %llu", (unsigned long long)ri,
          (unsigned long long)new_commit);
    ri_held_free();
    CHECK_CLEAN(c);
}

static int drop_append_resp_2_to_1(cluster *c, raft_msg *m)
{
    (void)c;
    return !(m->type == RAFT_MSG_APPEND_RESP && m->from == 2 && m->to == 1);
}

/* A leader that loses leadership with a follower's batch pending rejects
 * the batch: the follower fails all of its reads. */
static void read_index_batch_rejected_when_leader_steps_down(void)
{
    cluster *c = three_with_leader(45);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    /* node 1 hears node 2's READ_INDEX but no follower acknowledges the
     * round: node 3 is cut off, node 2's acknowledgements are lost */
    isolate(c, 3, 1);
    c->filter = drop_append_resp_2_to_1;
    for (uint64_t x = 400; x < 430; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c); /* READ_INDEX reaches node 1 */
    for (int t = 0; t < 4 * E_TICKS && role(c, 1) == RAFT_LEADER; t++)
        run(c, 1);
    CHECK(role(c, 1) != RAFT_LEADER, "leader without a quorum did not step down");
    deliver_all(c);
    CHECK(n_released(f, 400, 430) == 0, "reads released without a quorum");
    CHECK(n_failed_of(f, 400, 430) == 30, "%zu of 30 reads failed", n_failed_of(f, 400, 430));
    CHECK_CLEAN(c);
}

/* A batch whose READ_INDEX (or answer) is lost is failed after a few
 * election timeouts, so the caller can retry; the retry goes through. */
static void read_index_lost_batch_expires(void)
{
    cluster *c = three_with_leader(46);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    hold_ri = 1;
    for (uint64_t x = 500; x < 510; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "read refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_ri_held == 1, "%zu READ_INDEX", n_ri_held);
    ri_held_free(); /* lost */
    int t = 0;
    while (n_failed_of(f, 500, 510) == 0 && t < 10 * E_TICKS) {
        run(c, 1);
        t++;
    }
    CHECK(n_failed_of(f, 500, 510) == 10, "%zu of 10 lost reads failed after %d ticks",
          n_failed_of(f, 500, 510), t);
    CHECK(t >= E_TICKS, "lost batch failed after only %d ticks", t);
    CHECK(status_of(c, 2).leader == 1, "leader changed meanwhile");
    for (uint64_t x = 510; x < 520; x++)
        CHECK(raft_read_index(f->r, x) == RAFT_OK, "retry refused");
    drive(c, f);
    deliver_all(c);
    CHECK(n_released(f, 510, 520) == 10, "%zu of 10 retried reads released",
          n_released(f, 510, 520));
    CHECK_CLEAN(c);
}

/* At most MAX_READS (4096) reads wait at a follower; more get EBUSY.
 * Whatever the size, one turn's reads are one READ_INDEX. */
static void read_index_batch_bounded(void)
{
    cluster *c = three_with_leader(47);
    CHECK(c, "no leader");
    node *f = nd_of(c, 2);
    trace_reset(c);
    int rc = RAFT_OK;
    uint64_t x = 1;
    for (; x <= 5000 && rc == RAFT_OK; x++)
        rc = raft_read_index(f->r, x);
    CHECK(rc == RAFT_EBUSY, "read %llu: %s, want EBUSY", (unsigned long long)(x - 1),
          raft_strerror(rc));
    CHECK(x - 2 == 4096, "%llu reads accepted, want 4096", (unsigned long long)(x - 2));
    drive(c, f);
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0) == 1, "%zu READ_INDEX",
          count_msgs(c, RAFT_MSG_READ_INDEX, 2, 0));
    deliver_all(c);
    CHECK(raft_read_index(f->r, 9999) == RAFT_OK, "room again after the answer");
    drive(c, f);
    deliver_all(c);
    CHECK_CLEAN(c);
}

/* The leader's side: its own reads and READ_INDEX batches from followers
 * that arrive in one turn share one heartbeat round (one heartbeat per
 * follower), and each follower batch gets one answer. */
static void read_index_leader_one_round_per_turn(void)
{
    cluster *c = three_with_leader(48);
    CHECK(c, "no leader");
    c->filter = NULL;
    node *l = nd_of(c, 1);
    trace_reset(c);
    for (uint64_t x = 1; x <= 50; x++)
        CHECK(raft_read_index(l->r, x) == RAFT_OK, "leader read refused");
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_READ_INDEX;
    m.to = 1;
    m.term = term_of(c, 1);
    m.from = 2;
    m.ctx = 77;
    CHECK(raft_step(l->r, &m) == RAFT_OK, "READ_INDEX from 2 refused");
    m.from = 3;
    m.ctx = 88;
    CHECK(raft_step(l->r, &m) == RAFT_OK, "READ_INDEX from 3 refused");
    drive(c, l);
    size_t hb = count_msgs(c, RAFT_MSG_APPEND, 1, 0);
    CHECK(hb == 2, "one turn of reads sent %zu heartbeats, want 2 (one round)", hb);
    deliver_all(c);
    CHECK(n_released(l, 1, 51) == 50, "%zu of 50 leader reads released", n_released(l, 1, 51));
    CHECK(count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2) == 1 &&
              count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 3) == 1,
          "answers: %zu to 2, %zu to 3", count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 2),
          count_msgs(c, RAFT_MSG_READ_INDEX_RESP, 1, 3));
    CHECK_CLEAN(c);
}

/* Proposals: ENOTLEADER on followers and leaderless nodes (nothing
 * appended), ETOOBIG above max_entry_bytes, and on the leader the index and
 * term where the entry will sit. */
static void propose_on_follower_fails_notleader(void)
{
    raft_options o = base_opts();
    o.max_entry_bytes = 1000;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 28);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    uint64_t i = 0, t = 0;
    int rc = raft_propose(nd_of(c, 1)->r, "a", 1, &i, &t);
    CHECK(rc == RAFT_ENOTLEADER, "propose with no leader: %s", raft_strerror(rc));
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    run(c, 2);
    uint64_t last2 = store_last(&nd_of(c, 2)->st);
    rc = raft_propose(nd_of(c, 2)->r, "a", 1, &i, &t);
    CHECK(rc == RAFT_ENOTLEADER, "propose on follower: %s", raft_strerror(rc));
    drive(c, nd_of(c, 2));
    CHECK(store_last(&nd_of(c, 2)->st) == last2 && status_of(c, 2).last_index == last2,
          "follower appended after a refused proposal");
    static uint8_t big[1001];
    rc = raft_propose(nd_of(c, 1)->r, big, 1001, &i, &t);
    CHECK(rc == RAFT_ETOOBIG, "1001-byte proposal with max 1000: %s", raft_strerror(rc));
    uint64_t last1 = status_of(c, 1).last_index;
    rc = raft_propose(nd_of(c, 1)->r, big, 1000, &i, &t);
    CHECK(rc == RAFT_OK, "1000-byte proposal: %s", raft_strerror(rc));
    CHECK(i == last1 + 1 && t == term_of(c, 1),
          "proposal placed at index %llu term %llu, want %llu term %llu", (unsigned long long)i,
          (unsigned long long)t, (unsigned long long)(last1 + 1),
          (unsigned long long)term_of(c, 1));
    drive(c, nd_of(c, 1));
    run(c, 2);
    CHECK(i < c->hist_cap && c->hist[i].set && c->hist[i].term == t,
          "accepted proposal not committed at (%llu, %llu)", (unsigned long long)i,
          (unsigned long long)t);
    CHECK_CLEAN(c);
}

/* A node rebuilt from its store keeps term, vote, log and applied index:
 * it does not vote twice in a term, and applies nothing twice. */
static void restore_after_crash_keeps_hard_state(void)
{
    raft_options o = base_opts();
    o.pre_vote = 0;
    o.check_quorum = 0;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 29);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    for (int t = 0; t < 4 * E_TICKS && role(c, 1) != RAFT_CANDIDATE; t++)
        tick(c, 1);
    CHECK(role(c, 1) == RAFT_CANDIDATE, "node 1 never campaigned");
    uint64_t t1 = term_of(c, 1);
    /* deliver node 1's VOTE to node 2 only; lose the answer */
    isolate(c, 3, 1);
    c->cut[2][1] = 1;
    deliver_all(c);
    memset(c->cut, 0, sizeof c->cut);
    CHECK(nd_of(c, 2)->st.hs.term == t1 && nd_of(c, 2)->st.hs.vote == 1,
          "node 2 persisted term %llu vote %llu", (unsigned long long)nd_of(c, 2)->st.hs.term,
          (unsigned long long)nd_of(c, 2)->st.hs.vote);
    CHECK(restart(c, 2) == 0, "%s", c->bad);
    raft_status_info st = status_of(c, 2);
    CHECK(st.term == t1 && st.vote == 1, "after restart: term %llu vote %llu",
          (unsigned long long)st.term, (unsigned long long)st.vote);
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = t1;
    m.index = st.last_index;
    m.log_term = raft_entry_term(nd_of(c, 2)->r, st.last_index);
    trace_reset(c);
    step(c, 2, &m);
    const tmsg *r = last_msg(c, RAFT_MSG_VOTE_RESP, 2, 3);
    CHECK(!r || r->m.reject, "restarted node voted twice in term %llu", (unsigned long long)t1);
    m.term = t1 + 1; /* control: a new term's vote is free */
    trace_reset(c);
    step(c, 2, &m);
    r = last_msg(c, RAFT_MSG_VOTE_RESP, 2, 3);
    CHECK(r && !r->m.reject, "restarted node refused a vote in a fresh term");
    q_clear(c);

    /* log, applied and commit after a crash */
    CHECK(elect(c, 3) == 0, "node 3 not elected: %s", c->bad);
    uint64_t idx;
    for (int i = 0; i < 4; i++)
        CHECK(propose(c, 3, "r", 1, &idx) == RAFT_OK, "propose failed");
    run(c, 3);
    node *n2 = nd_of(c, 2);
    CHECK(n2->st.applied >= idx, "node 2 applied %llu of %llu", (unsigned long long)n2->st.applied,
          (unsigned long long)idx);
    uint64_t last = store_last(&n2->st), applied = n2->st.applied;
    raft_hard_state hs = n2->st.hs;
    crash(c, 2);
    CHECK(restart(c, 2) == 0, "%s", c->bad);
    st = status_of(c, 2);
    CHECK(st.term == hs.term && st.vote == hs.vote,
          "restored term %llu vote %llu, stored %llu %llu", (unsigned long long)st.term,
          (unsigned long long)st.vote, (unsigned long long)hs.term, (unsigned long long)hs.vote);
    CHECK(st.last_index == last, "restored last_index %llu, stored %llu",
          (unsigned long long)st.last_index, (unsigned long long)last);
    CHECK(st.applied == applied, "restored applied %llu, stored %llu",
          (unsigned long long)st.applied, (unsigned long long)applied);
    CHECK(raft_entry_term(n2->r, idx) == store_term(&n2->st, idx), "restored term of %llu differs",
          (unsigned long long)idx);
    run(c, 3);
    CHECK(status_of(c, 2).commit >= idx, "restarted node's commit %llu < %llu",
          (unsigned long long)status_of(c, 2).commit, (unsigned long long)idx);
    CHECK(propose(c, 3, "s", 1, &idx) == RAFT_OK, "propose failed");
    run(c, 3);
    CHECK(n2->st.applied >= idx, "restarted node does not apply new entries");
    CHECK_CLEAN(c);
}

/* One voter is a quorum: it elects itself and commits alone (the first
 * node of a new cluster runs like this until others join). */
static void single_node_cluster_commits_alone(void)
{
    raft_options o = base_opts();
    raft_config cf = make_conf(1, 0);
    cluster *c = cl_new(1, &o, 30);
    CHECK(cl_boot(c, 1, &cf) == 0, "%s", c->bad);
    int t = 0;
    while (t < 3 * E_TICKS && role(c, 1) != RAFT_LEADER) {
        tick(c, 1);
        t++;
    }
    CHECK(role(c, 1) == RAFT_LEADER, "single node is %s after %d ticks", raft_role_name(role(c, 1)),
          t);
    CHECK(t <= 2 * E_TICKS, "single node took %d ticks to lead", t);
    uint64_t idx;
    CHECK(propose(c, 1, "solo", 4, &idx) == RAFT_OK, "propose failed");
    CHECK(nd_of(c, 1)->st.applied >= idx,
          "single node did not commit its proposal at once (applied %llu of "
          "%llu)",
          (unsigned long long)nd_of(c, 1)->st.applied, (unsigned long long)idx);
    uint64_t ri = 0;
    CHECK(raft_read_index(nd_of(c, 1)->r, 9) == RAFT_OK, "read_index failed");
    drive(c, nd_of(c, 1));
    CHECK(has_read(nd_of(c, 1), 9, &ri) && ri >= idx,
          "single node's read not answered at once (index %llu)", (unsigned long long)ri);
    CHECK(c->n_trace == 0, "single node sent %zu messages", c->n_trace);
    CHECK_CLEAN(c);
}

/* A node added after the log was compacted starts empty, receives the
 * snapshot (with the configuration), catches up and becomes a voter. */
static void new_node_joins_from_snapshot(void)
{
    raft_options o = base_opts();
    o.snapshot_trail = 2;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(4, &o, 31);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    node *n4 = nd_of(c, 4), *l = nd_of(c, 1);
    CHECK(start_core(c, n4) == 0, "%s", c->bad);
    raft_hard_state hs0 = {0, 0};
    CHECK(raft_restore(n4->r, &hs0, NULL, NULL, 0, 0) == RAFT_OK,
          "raft_restore of an empty node failed");
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    for (int i = 0; i < 8; i++)
        CHECK(propose(c, 1, "before-join;", 12, NULL) == RAFT_OK, "propose failed");
    run(c, 2);
    uint64_t si = l->st.applied;
    CHECK(take_snapshot(c, l) == RAFT_OK, "raft_snapshot_taken failed");
    run(c, 2);
    CHECK(status_of(c, 1).first_index > 1, "leader did not compact (first %llu)",
          (unsigned long long)status_of(c, 1).first_index);
    uint64_t idx = 0;
    int rc = raft_add_node(l->r, 4, "node4 127.0.0.1:12004 127.0.0.1:11004", &idx);
    CHECK(rc == RAFT_OK, "raft_add_node: %s", raft_strerror(rc));
    drive(c, l);
    run(c, 4 * E_TICKS);
    CHECK(n4->installs == 1, "node 4 installed %d snapshots", n4->installs);
    CHECK(n4->st.has_snap && n4->st.snap.index >= si, "node 4 snapshot index %llu, want >= %llu",
          (unsigned long long)n4->st.snap.index, (unsigned long long)si);
    CHECK(store_last(&n4->st) == store_last(&l->st), "node 4 log ends at %llu, leader's at %llu",
          (unsigned long long)store_last(&n4->st), (unsigned long long)store_last(&l->st));
    CHECK(n4->st.sm_len == l->st.sm_len && !memcmp(n4->st.sm, l->st.sm, l->st.sm_len),
          "node 4 state machine differs from the leader's");
    const raft_node *rn = conf_find(&n4->st.sm_conf, 4);
    CHECK(rn && rn->voter, "node 4's applied config: %s", rn ? "learner" : "missing");
    CHECK(conf_find(raft_config_get(n4->r), 1) != NULL, "node 4 does not know node 1");
    CHECK_CLEAN(c);
}

/* A node restarted from a snapshot plus the log after it keeps its
 * position: snapshot, log, applied index; it applies only what is new. */
static void restore_from_snapshot_keeps_state(void)
{
    raft_options o = base_opts();
    o.snapshot_trail = 1;
    raft_config cf = make_conf(3, 0);
    cluster *c = cl_new(3, &o, 32);
    CHECK(cl_boot(c, 3, &cf) == 0, "%s", c->bad);
    CHECK(elect(c, 1) == 0, "node 1 not elected: %s", c->bad);
    for (int i = 0; i < 6; i++)
        CHECK(propose(c, 1, "s1;", 3, NULL) == RAFT_OK, "propose failed");
    run(c, 2);
    node *n2 = nd_of(c, 2);
    uint64_t si = n2->st.applied;
    CHECK(take_snapshot(c, n2) == RAFT_OK, "raft_snapshot_taken failed");
    uint64_t idx;
    for (int i = 0; i < 3; i++)
        CHECK(propose(c, 1, "s2;", 3, &idx) == RAFT_OK, "propose failed");
    run(c, 2);
    CHECK(n2->st.applied >= idx, "node 2 behind before the crash");
    size_t sm_len = n2->st.sm_len;
    uint64_t last = store_last(&n2->st), applied = n2->st.applied;
    crash(c, 2);
    CHECK(restart(c, 2) == 0, "%s", c->bad);
    raft_status_info st = status_of(c, 2);
    CHECK(st.snap_index == si, "restored snap_index %llu, want %llu",
          (unsigned long long)st.snap_index, (unsigned long long)si);
    CHECK(st.last_index == last && st.applied == applied,
          "restored last %llu applied %llu, stored %llu %llu", (unsigned long long)st.last_index,
          (unsigned long long)st.applied, (unsigned long long)last, (unsigned long long)applied);
    CHECK(raft_entry_term(n2->r, si) == n2->st.snap.term,
          "term at the snapshot index unknown after restore");
    CHECK(propose(c, 1, "s3;", 3, &idx) == RAFT_OK, "propose failed");
    run(c, 3);
    CHECK(n2->st.applied >= idx, "restored node does not apply new entries");
    CHECK(n2->st.sm_len == sm_len + 3, "state machine grew by %zu, want 3", n2->st.sm_len - sm_len);
    CHECK_CLEAN(c);
}

/* ================================================================ main */

typedef void (*test_fn)(void);
static const struct {
    const char *name;
    test_fn fn;
} tests[] = {
#define T(x) \
    { \
#x, x \
    }
    T(election_timeout_is_randomized),
    T(vote_persisted_before_grant),
    T(no_vote_for_stale_log),
    T(prevote_does_not_bump_term),
    T(check_quorum_leader_steps_down),
    T(status_active_steady_across_check_quorum),
    T(follower_ignores_vote_while_leader_alive),
    T(append_ack_only_with_entries_persisted),
    T(leader_appends_noop_on_election),
    T(figure8_previous_term_entry_not_committed_by_counting),
    T(log_conflict_truncates_follower),
    T(fast_backoff_uses_hint),
    T(snapshot_sent_to_lagging_follower_in_chunks),
    T(snapshot_trail_bounded_by_bytes),
    T(learner_does_not_vote),
    T(learner_promoted_when_caught_up),
    T(leader_removed_steps_down),
    T(transfer_leader_to_caught_up_node),
    T(transfer_to_target_that_lost_appends),
    T(read_index_requires_heartbeat_round),
    T(read_index_on_follower_asks_leader),
    T(read_index_follower_batches_one_turn),
    T(read_index_batch_closed_when_sent),
    T(read_index_rejected_batch_fails_all),
    T(read_index_batch_failed_on_leader_change),
    T(read_index_batch_rejected_when_leader_steps_down),
    T(read_index_lost_batch_expires),
    T(read_index_batch_bounded),
    T(read_index_leader_one_round_per_turn),
    T(propose_on_follower_fails_notleader),
    T(restore_after_crash_keeps_hard_state),
    T(single_node_cluster_commits_alone),
    T(new_node_joins_from_snapshot),
    T(restore_from_snapshot_keeps_state),
#undef T
};

/* Run one test in this process; returns 0 pass, 1 fail (message in
 * check_why). Clusters of any outcome are freed here. */
static int run_one(size_t i)
{
    check_case_begin(tests[i].name);
    n_live = 0;
    tests[i].fn();
    /* an invariant broken after the test's last check still fails it */
    for (int k = 0; k < n_live && !check_case_failed; k++)
        if (live[k]->bad[0])
            check_fail_at(0, "harness invariant: %s", live[k]->bad);
    for (int k = 0; k < n_live; k++)
        cl_free(live[k]);
    n_live = 0;
    return check_case_failed;
}

int main(int argc, char **argv)
{
    int inproc = getenv("TEST_RAFT_INPROC") != NULL; /* for debuggers */
    size_t n_tests = sizeof tests / sizeof tests[0];
    for (size_t i = 0; i < n_tests; i++) {
        if (argc > 1) { /* run only the named tests */
            int want = 0;
            for (int a = 1; a < argc; a++)
                if (!strcmp(argv[a], tests[i].name))
                    want = 1;
            if (!want)
                continue;
        }
        if (inproc) {
            run_one(i);
            check_case_end();
            continue;
        }
        fflush(stdout);
        int pfd[2];
        if (pipe(pfd) < 0) {
            perror("test_raft: pipe");
            return 2;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("test_raft: fork");
            return 2;
        }
        if (pid == 0) {
            close(pfd[0]);
            alarm(60);
            int f = run_one(i);
            if (f) {
                ssize_t w = write(pfd[1], check_why, strlen(check_why));
                (void)w;
            }
            close(pfd[1]);
            exit(f ? 1 : 0); /* exit, not _exit: LeakSanitizer runs */
        }
        close(pfd[1]);
        char msg[sizeof check_why + 1];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof msg - 1 && (r = read(pfd[0], msg + got, sizeof msg - 1 - got)) > 0)
            got += (size_t)r;
        msg[got] = 0;
        close(pfd[0]);
        int ws = 0;
        waitpid(pid, &ws, 0);
        const char *name = tests[i].name;
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
            check(1, name, "%s", msg);
        else if (WIFSIGNALED(ws))
            check(0, name, "killed by signal %d (%s)%s%s", WTERMSIG(ws),
                  WTERMSIG(ws) == SIGALRM ? "timeout 60s" : "crash", got ? "; " : "", msg);
        else if (got)
            check(0, name, "%s", msg);
        else
            check(0, name, "exit status %d (sanitizer report on stderr?)",
                  WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    return check_summary();
}
