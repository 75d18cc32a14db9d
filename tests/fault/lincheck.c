/*
 * lincheck - checks a history recorded by kvload.
 *
 *   lincheck [-b SECONDS] [-m MB] [-T TIMELINE] HISTDIR
 *
 * Reads HISTDIR/hist-* (format in kvload.c). Checks, per key:
 *  - linearizability of reads, writes, deletes, conditional writes and the
 *    key's part of each batch (lincheck.h), within -b seconds (default 20)
 *    and -m MB of memo (default 512); a key that cannot be decided in
 *    budget is UNKNOWN, never passed;
 *  - no lost writes: the final read (client 999) shows each acknowledged
 *    write (and each unknown-outcome write or batch whose value was read on
 *    any key: it took effect, on all its keys - a torn batch shows here), or a value written / a delete done by an op that may be ordered
 *    after it (its return is not before the write's invocation);
 *  - one value, one index: a value is always read with the same index;
 *  - stale reads: only values some write (acknowledged or unknown) wrote;
 *    on one node (port), applied index and the key's index never go down
 *    between reads that do not overlap in time.
 * Batches are split per key: the projection of a linearizable multi-key
 * history onto one key is linearizable (each batch acts on k at its single
 * linearization point), so a per-key violation is a real one; cross-key
 * atomicity is not checked by this split (only its lost-write side is).
 * On a violation prints the first op that cannot be placed, the history
 * window around it and the nemesis events (TIMELINE lines "MONO_NS text")
 * near it. Exit 0 all passed, 1 violation, 2 some key unknown, 3 bad input.
 */
#include "lincheck.h"

#include <dirent.h>
#include <inttypes.h>

#define LINE_MAX_LEN 512

typedef struct hop {
    int client;
    long seq;
    uint64_t inv, ret;
    char outcome; /* o f u p */
    char type;
    int key, value, expect;
    long index, applied;
    int port;
    char line[LINE_MAX_LEN];
} hop;

/* ---------------------------------------------------- string interning */
typedef struct {
    char **s;
    int *id;
    size_t cap, n;
} strtab;

static int intern(strtab *t, const char *s)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        char **ns = calloc(ncap, sizeof *ns);
        int *ni = calloc(ncap, sizeof *ni);
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->s[i])
                continue;
            uint64_t h = lc_hash((const uint64_t *)"", 0, 0);
            for (const char *p = t->s[i]; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ull;
            size_t j = h & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = t->s[i], ni[j] = t->id[i];
        }
        free(t->s), free(t->id);
        t->s = ns, t->id = ni, t->cap = ncap;
    }
    uint64_t h = lc_hash((const uint64_t *)"", 0, 0);
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    size_t j = h & (t->cap - 1);
    while (t->s[j]) {
        if (!strcmp(t->s[j], s))
            return t->id[j];
        j = (j + 1) & (t->cap - 1);
    }
    t->s[j] = strdup(s);
    t->id[j] = (int)t->n++;
    return t->id[j];
}

static strtab keys, values;
static hop *H;
static size_t nH, capH;
static uint64_t T0 = LC_INF;

static double rel(uint64_t t)
{
    return t == LC_INF ? -1 : (double)(int64_t)(t - T0) / 1e9;
}

static int load_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[LINE_MAX_LEN];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        char oc[8], ty[4], k[256], v[128], ex[128], idx[32], ap[32];
        hop h;
        memset(&h, 0, sizeof h);
        unsigned long long inv, ret;
        if (sscanf(line, "%d %ld %llu %llu %7s %3s %255s %127s %127s %31s %31s %d", &h.client,
                   &h.seq, &inv, &ret, oc, ty, k, v, ex, idx, ap, &h.port) != 12) {
            fprintf(stderr, "lincheck: %s: bad line: %s", path, line);
            bad = 1;
            continue;
        }
        line[strcspn(line, "\n")] = 0;
        snprintf(h.line, sizeof h.line, "%s", line);
        h.inv = inv;
        h.ret = ret;
        h.outcome = !strcmp(oc, "ok")    ? 'o'
                    : !strcmp(oc, "unk") ? 'u'
                    : !strcmp(oc, "pre") ? 'p'
                                         : 'f';
        h.type = ty[0];
        h.key = intern(&keys, k);
        h.value = strcmp(v, "-") ? intern(&values, v) : -1;
        h.expect = strcmp(ex, "-") ? intern(&values, ex) : -1;
        h.index = strcmp(idx, "-") ? atol(idx) : -1;
        h.applied = strcmp(ap, "-") ? atol(ap) : -1;
        if (h.outcome == 'u')
            h.ret = LC_INF; /* may take effect at any time after invocation */
        if (inv < T0)
            T0 = inv;
        if (nH == capH) {
            size_t cap = capH ? capH * 2 : 65536;
            hop *nh = realloc(H, cap * sizeof *H);
            if (!nh) {
                fprintf(stderr, "lincheck: %s: out of memory\n", path);
                fclose(f);
                return -1;
            }
            H = nh;
            capH = cap;
        }
        H[nH++] = h;
    }
    fclose(f);
    return bad ? -1 : 0;
}

static const char *key_name(int id)
{
    for (size_t i = 0; i < keys.cap; i++)
        if (keys.s[i] && keys.id[i] == id)
            return keys.s[i];
    return "?";
}

static int by_inv(const void *a, const void *b)
{
    const hop *x = *(const hop *const *)a, *y = *(const hop *const *)b;
    return x->inv < y->inv ? -1 : x->inv > y->inv;
}

static void print_op(const char *pfx, const hop *h)
{
    printf("%s[%9.3f .. %9.3f] %s\n", pfx, rel(h->inv), rel(h->ret), h->line);
}

static const char *timeline_path;

static void print_timeline(uint64_t from, uint64_t to)
{
    if (!timeline_path)
        return;
    FILE *f = fopen(timeline_path, "r");
    if (!f)
        return;
    char line[1024];
    printf("    nemesis events from %.3f to %.3f s:\n", rel(from), rel(to));
    while (fgets(line, sizeof line, f)) {
        unsigned long long t;
        int off = 0;
        if (sscanf(line, "%llu %n", &t, &off) < 1)
            continue;
        if (t >= from && t <= to)
            printf("      %9.3f %s", rel(t), line + off);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    double budget = 20;
    size_t mem_mb = 512;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            mem_mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-T") && i + 1 < argc)
            timeline_path = argv[++i];
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else {
            fprintf(stderr, "usage: lincheck [-b SECONDS] [-m MB] [-T TIMELINE] HISTDIR\n");
            return 3;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: lincheck [-b SECONDS] [-m MB] [-T TIMELINE] HISTDIR\n");
        return 3;
    }
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 3;
    }
    struct dirent *de;
    int nfiles = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "hist-", 5))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (load_file(p) < 0) {
            fprintf(stderr, "lincheck: cannot read %s\n", p);
            return 3;
        }
        nfiles++;
    }
    closedir(d);
    if (!nfiles || !nH) {
        fprintf(stderr, "lincheck: no history in %s\n", dir);
        return 3;
    }

    /* ---- statistics */
    long ops = 0, unk = 0, failed = 0, by_type[128] = {0};
    uint64_t longest = 0;
    const hop *longest_op = NULL;
    for (size_t i = 0; i < nH; i++) {
        const hop *h = &H[i];
        if (h->type == 'b' && i > 0 && H[i - 1].type == 'b' && H[i - 1].client == h->client &&
            H[i - 1].seq == h->seq)
            continue; /* later keys of one batch */
        ops++;
        by_type[(unsigned char)h->type]++;
        if (h->outcome == 'u')
            unk++;
        if (h->outcome == 'f')
            failed++;
        uint64_t ret = h->outcome == 'u' ? 0 : h->ret;
        if (h->outcome == 'u') {
            /* the waiting time of an unknown op: from its line */
            unsigned long long a, b;
            if (sscanf(h->line, "%*d %*d %llu %llu", &a, &b) == 2)
                ret = b;
        }
        if (ret > h->inv && ret - h->inv > longest) {
            longest = ret - h->inv;
            longest_op = h;
        }
    }
    printf("history: %ld operations (%ld reads, %ld stale reads, %ld writes, %ld conditional, "
           "%ld deletes, %ld batches), %ld definite failures, %ld unknown outcomes, %zu keys\n",
           ops, by_type['r'], by_type['s'], by_type['w'], by_type['c'], by_type['d'], by_type['b'],
           failed, unk, keys.n);
    printf("longest wait: %.3f s", (double)longest / 1e9);
    if (longest_op)
        printf(" (%s)", longest_op->line);
    printf("\n");

    int violations = 0, unknown_keys = 0;
    size_t nkeys = keys.n;
    /* ops of each key, in file order */
    hop ***bykey = calloc(nkeys, sizeof *bykey);
    size_t *nk = calloc(nkeys, sizeof *nk), *ck = calloc(nkeys, sizeof *ck);
    for (size_t i = 0; i < nH; i++) {
        int k = H[i].key;
        if (nk[k] == ck[k]) {
            ck[k] = ck[k] ? ck[k] * 2 : 64;
            bykey[k] = realloc(bykey[k], ck[k] * sizeof **bykey);
        }
        bykey[k][nk[k]++] = &H[i];
    }
    int nvals = (int)values.n + 1;
    long *val_index = malloc(sizeof(long) * (size_t)nvals);
    const hop **writer = malloc(sizeof(*writer) * (size_t)nvals);
    char *observed = malloc((size_t)nvals);
    long lost = 0, stale_bad = 0, index_bad = 0;
    /* values read anywhere: a write (batch) with unknown outcome whose value
     * was read on any key did take effect, on all of its keys */
    char *seen_any = calloc((size_t)nvals, 1);
    for (size_t i = 0; i < nH; i++)
        if ((H[i].type == 'r' || H[i].type == 's') && H[i].outcome == 'o' && H[i].value >= 0)
            seen_any[H[i].value] = 1;
    for (size_t k = 0; k < nkeys; k++) {
        hop **L = bykey[k];
        size_t n = nk[k];
        qsort(L, n, sizeof *L, by_inv);
        const char *kn = key_name((int)k);
        for (int v = 0; v < nvals; v++)
            val_index[v] = -1, writer[v] = NULL, observed[v] = 0;
        int has_pre = 0;
        const hop *final = NULL;
        for (size_t i = 0; i < n; i++) {
            const hop *h = L[i];
            if ((h->type == 'w' || h->type == 'b' || h->type == 'c') &&
                (h->outcome == 'o' || h->outcome == 'u') && h->value >= 0)
                writer[h->value] = h;
            if (h->outcome == 'p')
                has_pre = 1;
            if (h->type == 'r' && h->outcome == 'o' && h->value >= 0)
                observed[h->value] = 1;
            if (h->type == 'c' && h->expect >= 0)
                observed[h->expect] = 1;
            if (h->type == 'r' && h->client == 999)
                final = h;
        }
        /* one value, one index; stale reads see written values */
        for (size_t i = 0; i < n; i++) {
            const hop *h = L[i];
            if ((h->type != 'r' && h->type != 's') || h->outcome != 'o' || h->value < 0)
                continue;
            if (!writer[h->value]) {
                printf("VIOLATION %s: read a value no write wrote: %s\n", kn, h->line);
                for (size_t q = 0; q < nH; q++) /* who did write it, and what were they told */
                    if (H[q].value == h->value && H[q].type != 'r' && H[q].type != 's')
                        print_op("    written by ", &H[q]);
                violations++;
                stale_bad++;
            }
            if (h->index >= 0) {
                if (val_index[h->value] >= 0 && val_index[h->value] != h->index) {
                    printf("VIOLATION %s: value read at index %ld and at %ld: %s\n", kn,
                           val_index[h->value], h->index, h->line);
                    violations++;
                    index_bad++;
                }
                val_index[h->value] = h->index;
            }
        }
        /* stale reads never go backwards on one node */
        for (size_t i = 0; i < n; i++) {
            const hop *b = L[i];
            if (b->type != 's' || b->outcome != 'o')
                continue;
            for (size_t j = 0; j < i; j++) {
                const hop *a = L[j];
                if (a->type != 's' || a->outcome != 'o' || a->port != b->port || a->ret >= b->inv)
                    continue;
                if ((a->applied >= 0 && b->applied >= 0 && b->applied < a->applied) ||
                    (a->index >= 0 && b->index >= 0 && b->index < a->index)) {
                    printf("VIOLATION %s: stale read went backwards on port %d:\n", kn, b->port);
                    print_op("    earlier ", a);
                    print_op("    later   ", b);
                    violations++;
                    stale_bad++;
                    break;
                }
            }
        }
        /* lost writes */
        if (final) {
            for (size_t i = 0; i < n; i++) {
                const hop *w = L[i];
                if (!(w->type == 'w' || w->type == 'b' || w->type == 'c'))
                    continue;
                if (w->outcome != 'o' &&
                    !(w->outcome == 'u' && w->value >= 0 && seen_any[w->value]))
                    continue;
                if (final->value == w->value)
                    continue;
                int explained = 0;
                for (size_t j = 0; j < n && !explained; j++) {
                    const hop *x = L[j];
                    if (x == w || x->inv > final->ret || (x->ret != LC_INF && x->ret < w->inv))
                        continue;
                    if (x->outcome != 'o' && x->outcome != 'u')
                        continue;
                    if (final->value < 0 ? x->type == 'd'
                                         : ((x->type == 'w' || x->type == 'b' || x->type == 'c') &&
                                            x->value == final->value))
                        explained = 1;
                }
                if (!explained) {
                    printf("LOST WRITE %s: %s %s; final read %s\n", kn,
                           w->outcome == 'o' ? "acknowledged" : "seen elsewhere (torn batch?)",
                           w->line, final->line);
                    lost++;
                    violations++;
                }
            }
        }
        /* linearizability */
        lc_op *lo = malloc(sizeof *lo * (n ? n : 1));
        const hop **back = malloc(sizeof *back * (n ? n : 1));
        int m = 0;
        for (size_t i = 0; i < n; i++) {
            const hop *h = L[i];
            if (h->type == 's' || h->outcome == 'f' || h->type == 'C')
                continue;
            if (h->type == 'r' && h->outcome != 'o')
                continue;
            /* an unknown write whose value nobody saw may be taken to have had no
             * effect, unless a failed condition could need it */
            if (h->outcome == 'u' && h->type != 'd' && !has_pre && h->value >= 0 &&
                !observed[h->value])
                continue;
            lo[m] = (lc_op){h->inv, h->ret, h->outcome, h->type, h->value, h->expect, (int)i};
            back[m] = h;
            m++;
        }
        lc_result r = lc_check(lo, m, budget, mem_mb << 20);
        if (r.verdict == LC_UNKNOWN) {
            printf("UNKNOWN %s: %d ops not decided within %.0f s / %zu MB (%" PRIu64
                   " steps, depth %d)\n",
                   kn, m, budget, mem_mb, r.steps, r.depth);
            unknown_keys++;
        } else if (r.verdict == LC_VIOLATION) {
            violations++;
            const hop *s = L[r.stuck];
            printf("VIOLATION %s: not linearizable (%d ops; %d placed on the deepest path); "
                   "first op that cannot be placed:\n",
                   kn, m, r.depth);
            print_op("    >>> ", s);
            printf("    history of %s around it (relative seconds; unknown ops end at -1):\n", kn);
            size_t at = (size_t)r.stuck;
            size_t lo_i = at > 15 ? at - 15 : 0, hi_i = at + 8 < n ? at + 8 : n - 1;
            for (size_t i = lo_i; i <= hi_i; i++)
                print_op(i == at ? "    >>> " : "        ", L[i]);
            print_timeline(s->inv > 15000000000ull ? s->inv - 15000000000ull : 0,
                           s->ret == LC_INF ? s->inv + 15000000000ull : s->ret + 5000000000ull);
        }
        free(lo), free(back);
    }
    printf("checked %zu keys: %d violations (%ld lost writes, %ld stale-read, %ld index), "
           "%d keys unknown\n",
           nkeys, violations, lost, stale_bad, index_bad, unknown_keys);
    return violations ? 1 : unknown_keys ? 2 : 0;
}
