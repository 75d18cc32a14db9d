/*
 * lincheck.h - linearizability checker for per-key register histories
 * (Wing & Gong search with Lowe's memoization), plus lost-write and
 * stale-read checks. Header-only so tests/test_lincheck.c and
 * tests/fault/lincheck.c share it.
 *
 * Model of one key: a register holding a value id or absent (-1).
 *   read r        ok iff state == value (value -1: 404)
 *   write w, b    state = value
 *   delete d      state = absent
 *   cas c         ok/unk: needs state == expect, then state = value;
 *                 pre (412): needs state != expect, no change
 * Values are unique per write, so "If-Match: N" (N the index read along
 * with value V) is the condition "state == V".
 *
 * Outcomes: ok (returned), unk (may take effect at any point after its
 * invocation, or never: its return time is +infinity), pre. Ops that
 * definitely failed are not given to the checker.
 */
#ifndef LINCHECK_H
#define LINCHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LC_INF UINT64_MAX

typedef struct lc_op {
    uint64_t inv, ret; /* ret LC_INF when unknown */
    char outcome;      /* 'o' ok, 'u' unknown, 'p' precondition failed */
    char type;         /* r s w b d c */
    int value;         /* value id, -1 absent */
    int expect;        /* cas: expected value id, -1 absent */
    int id;            /* caller's index, for reports */
} lc_op;

enum { LC_LINEARIZABLE = 0, LC_VIOLATION = 1, LC_UNKNOWN = 2 };

typedef struct lc_result {
    int verdict;
    int stuck; /* violation: caller id of the op whose return was reached
                           unplaced on the deepest path (the first op that cannot
                           be placed) */
    int depth; /* most ops linearized on any path */
    uint64_t steps;
} lc_result;

/* -------------------------------------------------------- the search */

typedef struct lc_entry {
    int op; /* index into ops */
    int is_call;
    uint64_t t;
    struct lc_entry *next, *prev, *match;
} lc_entry;

static int lc_step(const lc_op *o, int state, int *out)
{
    switch (o->type) {
    case 'r': *out = state; return state == o->value;
    case 'w':
    case 'b': *out = o->value; return 1;
    case 'd': *out = -1; return 1;
    case 'c':
        if (o->outcome == 'p') {
            *out = state;
            return state != o->expect;
        }
        *out = o->value;
        return state == o->expect;
    }
    return 0;
}

typedef struct {
    uint64_t *slots_hash; /* 0 empty */
    int *slots_state;
    uint64_t **slots_bits;
    size_t cap, used, words;
    size_t bytes, max_bytes;
} lc_cache;

static uint64_t lc_hash(const uint64_t *bits, size_t words, int state)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uint32_t)state;
    for (size_t i = 0; i < words; i++) {
        h ^= bits[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h ? h : 1;
}

static int lc_cache_grow(lc_cache *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 4096;
    uint64_t *nh = calloc(ncap, sizeof *nh);
    int *ns = calloc(ncap, sizeof *ns);
    uint64_t **nb = calloc(ncap, sizeof *nb);
    if (!nh || !ns || !nb) {
        free(nh), free(ns), free(nb);
        return -1;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots_hash[i])
            continue;
        size_t j = c->slots_hash[i] & (ncap - 1);
        while (nh[j])
            j = (j + 1) & (ncap - 1);
        nh[j] = c->slots_hash[i];
        ns[j] = c->slots_state[i];
        nb[j] = c->slots_bits[i];
    }
    free(c->slots_hash), free(c->slots_state), free(c->slots_bits);
    c->slots_hash = nh, c->slots_state = ns, c->slots_bits = nb;
    c->bytes += ncap * (sizeof *nh + sizeof *ns + sizeof *nb) -
                c->cap * (sizeof *nh + sizeof *ns + sizeof *nb);
    c->cap = ncap;
    return 0;
}

/* 1 inserted, 0 already there, -1 out of memory budget */
static int lc_cache_add(lc_cache *c, const uint64_t *bits, int state)
{
    if ((c->used + 1) * 2 > c->cap && lc_cache_grow(c) < 0)
        return -1;
    uint64_t h = lc_hash(bits, c->words, state);
    size_t j = h & (c->cap - 1);
    while (c->slots_hash[j]) {
        if (c->slots_hash[j] == h && c->slots_state[j] == state &&
            !memcmp(c->slots_bits[j], bits, c->words * sizeof *bits))
            return 0;
        j = (j + 1) & (c->cap - 1);
    }
    if (c->bytes > c->max_bytes)
        return -1;
    uint64_t *copy = malloc(c->words * sizeof *bits);
    if (!copy)
        return -1;
    memcpy(copy, bits, c->words * sizeof *bits);
    c->slots_hash[j] = h;
    c->slots_state[j] = state;
    c->slots_bits[j] = copy;
    c->used++;
    c->bytes += c->words * sizeof *bits + 16;
    return 1;
}

static void lc_cache_free(lc_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots_hash[i])
            free(c->slots_bits[i]);
    free(c->slots_hash), free(c->slots_state), free(c->slots_bits);
    memset(c, 0, sizeof *c);
}

static int lc_entry_cmp(const void *a, const void *b)
{
    const lc_entry *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1; /* calls first at equal times: more permissive */
    return x->op - y->op;
}

static double lc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Is the history ops[0..n) of one key, starting from an absent key,
 * linearizable? budget_s: wall-clock budget; max_bytes: memo budget. */
static lc_result lc_check(const lc_op *ops, int n, double budget_s, size_t max_bytes)
{
    lc_result res = {LC_LINEARIZABLE, -1, 0, 0};
    if (n == 0)
        return res;
    lc_entry *es = calloc((size_t)n * 2 + 1, sizeof *es);
    size_t words = ((size_t)n + 63) / 64;
    uint64_t *bits = calloc(words, sizeof *bits);
    struct fr {
        lc_entry *e;
        int state;
    } *stack = calloc((size_t)n + 1, sizeof *stack);
    if (!es || !bits || !stack) {
        free(es), free(bits), free(stack);
        res.verdict = LC_UNKNOWN;
        return res;
    }
    for (int i = 0; i < n; i++) {
        es[2 * i] = (lc_entry){i, 1, ops[i].inv, NULL, NULL, NULL};
        es[2 * i + 1] = (lc_entry){i, 0, ops[i].ret, NULL, NULL, NULL};
    }
    qsort(es, (size_t)n * 2, sizeof *es, lc_entry_cmp);
    int *callpos = malloc(sizeof(int) * (size_t)n), *retpos = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < 2 * n; i++) {
        if (es[i].is_call)
            callpos[es[i].op] = i;
        else
            retpos[es[i].op] = i;
    }
    lc_entry *head = &es[2 * n]; /* sentinel */
    head->op = -1;
    head->prev = NULL;
    head->next = &es[0];
    es[0].prev = head;
    for (int i = 0; i < 2 * n; i++) {
        es[i].next = i + 1 < 2 * n ? &es[i + 1] : NULL;
        if (i > 0)
            es[i].prev = &es[i - 1];
    }
    for (int i = 0; i < n; i++) {
        es[callpos[i]].match = &es[retpos[i]];
        es[retpos[i]].match = &es[callpos[i]];
    }
    free(callpos), free(retpos);

    lc_cache cache;
    memset(&cache, 0, sizeof cache);
    cache.words = words;
    cache.max_bytes = max_bytes;
    int sp = 0, state = -1, stuck_depth = -1;
    double t0 = lc_now();
    lc_entry *e = head->next;
    while (head->next) {
        if ((++res.steps & 0xffff) == 0 && lc_now() - t0 > budget_s) {
            res.verdict = LC_UNKNOWN;
            break;
        }
        if (!e) { /* cannot happen: every call has its return after it */
            res.verdict = LC_UNKNOWN;
            break;
        }
        if (e->is_call) {
            const lc_op *o = &ops[e->op];
            int ns;
            if (lc_step(o, state, &ns)) {
                bits[e->op / 64] |= 1ull << (e->op % 64);
                int added = lc_cache_add(&cache, bits, ns);
                if (added < 0) {
                    res.verdict = LC_UNKNOWN;
                    break;
                }
                if (added) {
                    stack[sp].e = e;
                    stack[sp].state = state;
                    sp++;
                    if (sp > res.depth)
                        res.depth = sp;
                    state = ns;
                    /* lift call and return out of the list */
                    e->prev->next = e->next;
                    if (e->next)
                        e->next->prev = e->prev;
                    lc_entry *r = e->match;
                    r->prev->next = r->next;
                    if (r->next)
                        r->next->prev = r->prev;
                    e = head->next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
        } else {
            if (e->t == LC_INF)
                break;              /* only unknown-outcome ops left: they may never take effect */
            if (sp > stuck_depth) { /* deepest dead end so far: report its op */
                stuck_depth = sp;
                res.stuck = ops[e->op].id;
            }
            if (sp == 0) {
                res.verdict = LC_VIOLATION;
                break;
            }
            sp--;
            lc_entry *c = stack[sp].e;
            state = stack[sp].state;
            bits[c->op / 64] &= ~(1ull << (c->op % 64));
            /* unlift: put return then call back */
            lc_entry *r = c->match;
            r->prev->next = r;
            if (r->next)
                r->next->prev = r;
            c->prev->next = c;
            if (c->next)
                c->next->prev = c;
            e = c->next;
        }
    }
    lc_cache_free(&cache);
    free(es), free(bits), free(stack);
    return res;
}

#endif
