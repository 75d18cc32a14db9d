/* test_storage_coord.c - tests of the storage layer's coordination parts
 * (docs/coordination.md): the change history and its floor, blocking
 * queries' "changed after M", leases, the txn with compares, snapshots
 * with leases (and the old format), the schema migration, and history and
 * kv in one transaction. Each test asserts what a caller sees through
 * storage.h. */
#include "storage.h"
#include "check.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void remove_db(const char *name)
{
    char p[512], q[600];
    path_in(p, sizeof p, name);
    unlink(p);
    snprintf(q, sizeof q, "%s-wal", p);
    unlink(q);
    snprintf(q, sizeof q, "%s-shm", p);
    unlink(q);
}

static store *open_db(const char *name)
{
    char p[512];
    path_in(p, sizeof p, name);
    store *s = store_open(p);
    if (!s)
        printf("# store_open %s: %s\n", p, store_open_error());
    return s;
}

static store *fresh(const char *name)
{
    remove_db(name);
    return open_db(name);
}

static int apply_at(store *s, uint64_t index, const char *json, store_result *r)
{
    raft_entry e = {.term = 1,
                    .index = index,
                    .type = RAFT_ENTRY_NORMAL,
                    .len = (uint32_t)strlen(json),
                    .data = (uint8_t *)json};
    return store_apply(s, &e, r);
}

/* Apply at the next index; the result's code, or -1 on a storage error. */
static int run(store *s, const char *json, store_result *r)
{
    store_result tmp;
    if (!r)
        r = &tmp;
    if (apply_at(s, store_applied(s) + 1, json, r) < 0) {
        printf("# apply %s: %s\n", json, store_error(s));
        return -1;
    }
    return r->code;
}

/* The history as text: "IDX:set:K=V" / "IDX:del:K" / "IDX:del:K!" (expired),
 * space separated, in seq order. */
typedef struct dump {
    char buf[4096];
    size_t n;
    uint64_t last_seq;
    int rows, bad_order;
} dump;

static int dump_row(void *arg, const store_change *c)
{
    dump *d = arg;
    if (c->seq <= d->last_seq)
        d->bad_order = 1;
    d->last_seq = c->seq;
    d->rows++;
    int w = snprintf(d->buf + d->n, sizeof d->buf - d->n, "%s%llu:%s:%.*s%s%.*s%s", d->n ? " " : "",
                     (unsigned long long)c->index, c->del ? "del" : "set", (int)c->klen, c->key,
                     c->del ? "" : "=", c->del ? 0 : (int)c->vlen, c->del ? "" : c->value,
                     c->expired ? "!" : "");
    if (w > 0 && (size_t)w < sizeof d->buf - d->n)
        d->n += (size_t)w;
    return 0;
}

static const char *history(store *s, uint64_t from, const char *key, int prefix, dump *d)
{
    memset(d, 0, sizeof *d);
    if (store_changes(s, from, 0, key, key ? strlen(key) : 0, prefix, 100000, dump_row, d) < 0)
        return "(error)";
    if (d->bad_order)
        return "(seq out of order)";
    return d->buf;
}

static int has(store *s, const char *k, const char *v, uint64_t lease)
{
    char *got = NULL;
    size_t n = 0;
    uint64_t l = 99;
    int rc = store_get_lease(s, k, strlen(k), &got, &n, NULL, &l);
    int ok = rc == 1 && n == strlen(v) && memcmp(got, v, n) == 0 && l == lease;
    free(got);
    return ok;
}

static int absent(store *s, const char *k)
{
    return store_get(s, k, strlen(k), NULL, NULL, NULL) == 0;
}

static int64_t history_rows(store *s)
{
    dump d;
    history(s, 0, NULL, 1, &d);
    return d.rows;
}

/* ---- the change history ---- */

static void test_history_rows_per_command(void)
{
    store *s = fresh("h.db");
    CHECK(s, "open");
    store_result r;
    dump d;
    CHECK(store_history_floor(s) == 0 && store_history_last_seq(s) == 0, "new node: floor 0");
    CHECK(run(s, "{\"set\":{\"a\":\"1\"}}", &r) == 200, "fast set");
    CHECK(r.op == STORE_OP_SET && r.first_seq == 1 && r.last_seq == 1, "seq %llu..%llu",
          (unsigned long long)r.first_seq, (unsigned long long)r.last_seq);
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"b\":\"2\",\"c\":\"3\"}}", &r) == 200, "op set");
    CHECK(r.first_seq == 2 && r.last_seq == 3, "two rows");
    CHECK(run(s, "{\"del\":[\"nope\"]}", &r) == 200 && r.first_seq == 0,
          "del of a missing key: no row");
    CHECK(run(s, "{\"op\":\"del\",\"key\":\"a\"}", &r) == 200 && r.op == STORE_OP_DEL &&
              r.first_seq == 4,
          "op del");
    CHECK(run(s, "{\"set\":{\"d\":\"4\"},\"del\":[\"b\"],\"if\":[{\"key\":\"c\",\"index\":2}]}",
              &r) == 200 &&
              r.op == STORE_OP_TXN,
          "old txn");
    CHECK(run(s, "{\"op\":\"txn\",\"set\":{\"e\":\"5\"},\"if\":[{\"key\":\"c\",\"index\":9}]}",
              &r) == 412 &&
              r.first_seq == 0,
          "old txn in op form keeps its 412");
    CHECK(run(s, "{\"op\":\"txn\",\"if\":[],\"then\":[{\"del\":\"c\"},{\"set\":{\"c\":\"x\"}}]}",
              &r) == 200 &&
              r.succeeded == 1,
          "new txn");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":5000}", &r) == 200 && r.first_seq == 0,
          "grant: no row");
    uint64_t lease = r.lease;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "{\"op\":\"set\",\"kv\":{\"l1\":\"v\"},\"lease\":%llu}",
             (unsigned long long)lease);
    CHECK(run(s, cmd, &r) == 200, "set with lease");
    snprintf(cmd, sizeof cmd, "{\"op\":\"lease_expire\",\"lease\":\"%llu\"}",
             (unsigned long long)lease);
    CHECK(run(s, cmd, &r) == 200 && r.lease == lease, "expire");
    const char *want = "1:set:a=1 2:set:b=2 2:set:c=3 4:del:a 5:del:b 5:set:d=4 "
                       "7:del:c 7:set:c=x 9:set:l1=v 10:del:l1!";
    const char *got = history(s, 0, NULL, 1, &d);
    CHECK(!strcmp(got, want), "history\n#  got  %s\n#  want %s", got, want);
    CHECK(!strcmp(history(s, 5, NULL, 1, &d), "7:del:c 7:set:c=x 9:set:l1=v 10:del:l1!"),
          "from 5: %s", d.buf);
    CHECK(!strcmp(history(s, 0, "c", 0, &d), "2:set:c=3 7:del:c 7:set:c=x"), "key c: %s", d.buf);
    CHECK(!strcmp(history(s, 0, "l", 1, &d), "9:set:l1=v 10:del:l1!"), "prefix l: %s", d.buf);
    /* Chunks: after_seq resumes inside an entry. */
    memset(&d, 0, sizeof d);
    CHECK(store_changes(s, 0, 0, NULL, 0, 1, 3, dump_row, &d) == 3, "chunk of 3");
    uint64_t after = d.last_seq;
    memset(&d, 0, sizeof d);
    CHECK(store_changes(s, 0, after, NULL, 0, 1, 2, dump_row, &d) == 2 &&
              !strcmp(d.buf, "4:del:a 5:del:b"),
          "next chunk: %s", d.buf);
    /* The live path: exactly this entry's rows from its first_seq. */
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"z1\":\"a\",\"z2\":\"b\"}}", &r) == 200, "set");
    memset(&d, 0, sizeof d);
    CHECK(store_changes(s, 0, r.first_seq - 1, NULL, 0, 1, 100, dump_row, &d) == 2 &&
              !strcmp(d.buf, "11:set:z1=a 11:set:z2=b"),
          "live rows: %s", d.buf);
    store_close(s);
}

static void test_history_trim_and_floor(void)
{
    store *s = fresh("t.db");
    CHECK(s, "open");
    store_set_history_keep(s, 100);
    char cmd[100];
    for (int i = 1; i <= 1000; i++) {
        snprintf(cmd, sizeof cmd, "{\"set\":{\"k%d\":\"v%d\"}}", i % 10, i);
        CHECK(run(s, cmd, NULL) == 200, "set %d", i);
        int64_t n = history_rows(s);
        CHECK(n >= (i < 100 ? i : 100) && n <= 100 + 100 / 8, "after %d: %lld rows", i,
              (long long)n);
    }
    uint64_t f = store_history_floor(s);
    dump d;
    history(s, 0, NULL, 1, &d);
    /* Every change with index > floor is there: one per entry here. */
    CHECK(f > 0 && (uint64_t)d.rows == 1000 - f, "floor %llu, %d rows", (unsigned long long)f,
          d.rows);
    char first[32];
    snprintf(first, sizeof first, "%llu:set:", (unsigned long long)f + 1);
    CHECK(!strncmp(d.buf, first, strlen(first)), "oldest row is floor+1: %.40s", d.buf);
    /* Survives a reopen: same floor, seq goes on. */
    uint64_t last = store_history_last_seq(s);
    store_close(s);
    s = open_db("t.db");
    CHECK(s && store_history_floor(s) == f && store_history_last_seq(s) == last, "reopen");
    store_result r;
    CHECK(run(s, "{\"set\":{\"x\":\"y\"}}", &r) == 200 && r.first_seq == last + 1, "seq goes on");
    /* N lowered: the next applies trim (a bounded batch each), never
     * below N, and the floor follows. */
    store_set_history_keep(s, 10);
    for (int i = 0; i < 3; i++)
        CHECK(run(s, "{\"set\":{\"x\":\"z\"}}", NULL) == 200, "set");
    CHECK(history_rows(s) == 10 && store_history_floor(s) == store_applied(s) - 10,
          "10 rows, floor %llu", (unsigned long long)store_history_floor(s));
    store_close(s);
}

static void test_changed_after(void)
{
    store *s = fresh("c.db");
    CHECK(s, "open");
    CHECK(run(s, "{\"set\":{\"app/a\":\"1\"}}", NULL) == 200, "1");        /* 1 */
    CHECK(run(s, "{\"set\":{\"other\":\"1\"}}", NULL) == 200, "2");        /* 2 */
    CHECK(run(s, "{\"set\":{\"app/b\":\"1\"}}", NULL) == 200, "3");        /* 3 */
    CHECK(run(s, "{\"op\":\"del\",\"key\":\"app/a\"}", NULL) == 200, "4"); /* 4 */
    CHECK(run(s, "{\"set\":{\"other\":\"2\"}}", NULL) == 200, "5");        /* 5 */
    CHECK(store_changed_after(s, "app/b", 5, 0, 2) == 1, "key set at 3, M=2");
    CHECK(store_changed_after(s, "app/b", 5, 0, 3) == 0, "key set at 3, M=3");
    CHECK(store_changed_after(s, "app/a", 5, 0, 3) == 1, "deleted at 4, M=3");
    CHECK(store_changed_after(s, "app/a", 5, 0, 4) == 0, "deleted at 4, M=4");
    CHECK(store_changed_after(s, "never", 5, 0, 0) == 0, "a key that never existed");
    CHECK(store_changed_after(s, "app/", 4, 1, 3) == 1, "prefix: a delete after M");
    CHECK(store_changed_after(s, "app/", 4, 1, 4) == 0, "prefix: only others changed");
    CHECK(store_changed_after(s, "", 0, 1, 4) == 1, "empty prefix: everything");
    CHECK(store_changed_after(s, "other", 5, 0, 5) == 0, "M = applied");
    CHECK(store_changed_after(s, "\xff", 1, 1, 0) == 0, "prefix 0xFF: nothing");
    /* Below the floor, a delete cannot be ruled out: "changed". */
    store_set_history_keep(s, 1);
    for (int i = 0; i < 5; i++)
        CHECK(run(s, "{\"set\":{\"other\":\"3\"}}", NULL) == 200, "set");
    CHECK(store_history_floor(s) > 4, "floor rose: %llu",
          (unsigned long long)store_history_floor(s));
    CHECK(store_changed_after(s, "app/a", 5, 0, 4) == 1, "absent key below the floor");
    CHECK(store_changed_after(s, "app/b", 5, 0, 3) == 0, "existing key: exact below the floor");
    CHECK(store_changed_after(s, "app/", 4, 1, 4) == 1, "prefix below the floor");
    store_close(s);
}

/* ---- leases ---- */

static int count_key(void *arg, const char *k, size_t kl)
{
    (void)k;
    (void)kl;
    (*(int *)arg)++;
    return 0;
}

static void test_lease_attach_revoke_expire(void)
{
    store *s = fresh("l.db");
    CHECK(s, "open");
    store_result r;
    dump d;
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":5000}", &r) == 200, "grant");
    CHECK(r.op == STORE_OP_LEASE_GRANT && r.lease == 1 && r.ttl_ms == 5000, "id = index 1");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":1000}", &r) == 200 && r.lease == 2, "grant 2");
    CHECK(store_lease_count(s) == 2, "2 leases");
    uint64_t ttl;
    CHECK(store_lease_get(s, 1, &ttl) == 1 && ttl == 5000, "lease_get");
    CHECK(store_lease_get(s, 7, &ttl) == 0, "unknown lease");
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},\"lease\":\"1\"}",
              &r) == 200 &&
              r.lease == 1,
          "attach a b c");
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"d\":\"4\"},\"lease\":2}", NULL) == 200,
          "attach d to 2");
    CHECK(run(s, "{\"set\":{\"e\":\"5\"}}", NULL) == 200, "e without lease");
    CHECK(run(s, "{\"set\":{\"c\":\"3\"}}", NULL) == 200, "c detached by a set without lease");
    CHECK(has(s, "a", "1", 1) && has(s, "c", "3", 0) && has(s, "d", "4", 2), "key leases");
    int n = 0;
    CHECK(store_lease_keys(s, 1, NULL, 100, count_key, &n) == 2 && n == 2, "lease 1 has a b");
    n = 0;
    CHECK(store_lease_keys(s, 1, NULL, 1, count_key, &n) == 1, "bounded by limit");
    n = 0;
    CHECK(store_lease_keys(s, 1, "a", 10, count_key, &n) == 1, "after a: b");
    CHECK(run(s, "{\"op\":\"lease_revoke\",\"lease\":1}", &r) == 200, "revoke");
    CHECK(r.op == STORE_OP_LEASE_REVOKE && r.lease == 1 && r.first_seq &&
              r.last_seq == r.first_seq + 1,
          "two rows in the revoke");
    CHECK(absent(s, "a") && absent(s, "b") && has(s, "c", "3", 0) && has(s, "d", "4", 2) &&
              has(s, "e", "5", 0),
          "exactly the lease's keys deleted");
    CHECK(store_lease_get(s, 1, &ttl) == 0 && store_lease_count(s) == 1, "lease 1 gone");
    CHECK(!strcmp(history(s, 6, NULL, 1, &d), "7:del:a 7:del:b"), "revoke rows: %s", d.buf);
    CHECK(run(s, "{\"op\":\"lease_expire\",\"lease\":2}", &r) == 200 &&
              r.op == STORE_OP_LEASE_EXPIRE && r.lease == 2,
          "expire");
    CHECK(absent(s, "d") && store_lease_count(s) == 0, "d expired");
    CHECK(!strcmp(history(s, 7, NULL, 1, &d), "8:del:d!"), "expired flag: %s", d.buf);
    store_close(s);
}

static int lease_row(void *arg, uint64_t id, uint64_t ttl)
{
    char *b = arg;
    snprintf(b + strlen(b), 200 - strlen(b), "%llu/%llu ", (unsigned long long)id,
             (unsigned long long)ttl);
    return 0;
}

/* The lease limit is the state machine's: a grant at the limit writes
 * nothing (503) on every node, also grants already in flight when the
 * leader's own check passed; after a revoke a grant fits again. */
static void test_lease_limit(void)
{
    store *s = fresh("lmax.db");
    CHECK(s, "open");
    store_result r;
    store_set_lease_max(s, 3);
    for (int i = 0; i < 3; i++)
        CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":5000}", &r) == 200, "grant %d", i);
    uint64_t applied = store_applied(s);
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":5000}", &r) == 503, "fourth: 503");
    CHECK(store_lease_count(s) == 3 && r.first_seq == 0, "nothing written");
    CHECK(store_applied(s) == applied + 1, "the entry is applied (a refusal, not an error)");
    CHECK(run(s, "{\"op\":\"lease_revoke\",\"lease\":1}", &r) == 200, "revoke 1");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":5000}", &r) == 200, "a grant fits again");
    CHECK(store_lease_count(s) == 3, "3 leases");
    store_close(s);
}

static void test_lease_unknown_and_bad(void)
{
    store *s = fresh("u.db");
    CHECK(s, "open");
    store_result r;
    CHECK(run(s, "{\"set\":{\"k\":\"old\"}}", NULL) == 200, "k");
    uint64_t seq = store_history_last_seq(s);
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"k\":\"new\",\"j\":\"1\"},\"lease\":99}", &r) == 404,
          "set with unknown lease: %d", r.code);
    CHECK(has(s, "k", "old", 0) && absent(s, "j") && store_history_last_seq(s) == seq,
          "nothing written");
    CHECK(store_applied(s) == 2, "the entry is applied all the same");
    CHECK(run(s, "{\"op\":\"lease_revoke\",\"lease\":99}", &r) == 404, "revoke unknown");
    CHECK(run(s, "{\"op\":\"lease_expire\",\"lease\":99}", &r) == 200 && r.lease == 0,
          "expire unknown: no-op");
    CHECK(run(s,
              "{\"op\":\"txn\",\"then\":[{\"set\":{\"k\":\"t\"}},{\"set\":{\"j\":\"1\"},"
              "\"lease\":99}]}",
              &r) == 404,
          "txn with an unknown lease");
    CHECK(has(s, "k", "old", 0) && absent(s, "j") && store_history_last_seq(s) == seq,
          "txn wrote nothing");
    const char *bad[] = {
        "{\"op\":\"lease_grant\",\"ttl_ms\":999}",
        "{\"op\":\"lease_grant\",\"ttl_ms\":86400001}",
        "{\"op\":\"lease_grant\",\"ttl_ms\":\"5000\"}",
        "{\"op\":\"lease_grant\"}",
        "{\"op\":\"lease_grant\",\"ttl_ms\":5000,\"x\":1}",
        "{\"op\":\"lease_revoke\",\"lease\":0}",
        "{\"op\":\"lease_revoke\",\"lease\":\"01\"}",
        "{\"op\":\"lease_revoke\",\"lease\":-3}",
        "{\"op\":\"lease_expire\"}",
        "{\"op\":\"set\",\"kv\":{\"k\":\"v\"},\"lease\":\"abc\"}",
        "{\"op\":\"set\",\"kv\":{}}",
        "{\"op\":\"set\",\"kv\":{\"k\":1}}",
        "{\"op\":\"del\",\"key\":\"\"}",
        "{\"op\":\"nope\"}",
        "{\"op\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(run(s, bad[i], &r) == 400 && r.op == STORE_OP_NONE, "not 400: %s", bad[i]);
        CHECK(store_lease_count(s) == 0 && store_history_last_seq(s) == seq, "wrote: %s", bad[i]);
    }
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":1000}", &r) == 200, "min ttl");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":86400000}", &r) == 200, "max ttl");
    char list[200] = "";
    CHECK(store_lease_scan(s, 0, 10, lease_row, list) == 2, "scan");
    char want[200];
    snprintf(want, sizeof want, "%llu/1000 %llu/86400000 ", (unsigned long long)r.lease - 1,
             (unsigned long long)r.lease);
    CHECK(!strcmp(list, want), "scan: %s want %s", list, want);
    list[0] = 0;
    CHECK(store_lease_scan(s, r.lease - 1, 10, lease_row, list) == 1, "scan after id");
    store_close(s);
}

/* ---- the txn with compares ---- */

static void test_txn_compares_and_branches(void)
{
    store *s = fresh("x.db");
    CHECK(s, "open");
    store_result r;
    CHECK(run(s, "{\"set\":{\"a\":\"1\"}}", NULL) == 200, "a at 1");
    struct {
        const char *cmp;
        int holds;
    } cases[] = {
        {"{\"key\":\"a\",\"index\":1}", 1},     {"{\"key\":\"a\",\"index\":2}", 0},
        {"{\"key\":\"b\",\"index\":0}", 1},     {"{\"key\":\"a\",\"index\":0}", 0},
        {"{\"key\":\"b\",\"absent\":true}", 1}, {"{\"key\":\"a\",\"absent\":true}", 0},
        {"{\"key\":\"a\",\"value\":\"1\"}", 1}, {"{\"key\":\"a\",\"value\":\"2\"}", 0},
        {"{\"key\":\"b\",\"value\":\"\"}", 0},
    };
    char cmd[400];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(cmd, sizeof cmd,
                 "{\"op\":\"txn\",\"if\":[%s],\"then\":[{\"set\":{\"t\":\"%zu\"}}],"
                 "\"else\":[{\"set\":{\"e\":\"%zu\"}}]}",
                 cases[i].cmp, i, i);
        CHECK(run(s, cmd, &r) == 200, "txn %zu: %d", i, r.code);
        CHECK(r.op == STORE_OP_TXN && r.succeeded == cases[i].holds, "compare %s: succeeded %d",
              cases[i].cmp, r.succeeded);
        char v[8];
        snprintf(v, sizeof v, "%zu", i);
        CHECK(has(s, cases[i].holds ? "t" : "e", v, 0), "branch of %s", cases[i].cmp);
    }
    /* All compares must hold; ops in order; a set with a lease. */
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":2000}", &r) == 200, "grant");
    uint64_t l = r.lease;
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"index\":1},{\"key\":\"a\",\"value\":\"9\"}],"
             "\"then\":[{\"set\":{\"no\":\"1\"}}],\"else\":[{\"del\":\"a\"},"
             "{\"set\":{\"a\":\"2\"},\"lease\":%llu}]}",
             (unsigned long long)l);
    CHECK(run(s, cmd, &r) == 200 && r.succeeded == 0, "one false compare: else");
    CHECK(absent(s, "no") && has(s, "a", "2", l), "else ops in order, with lease");
    CHECK(run(s, "{\"op\":\"txn\",\"then\":[{\"set\":{\"u\":\"1\"}}]}", &r) == 200 &&
              r.succeeded == 1,
          "no compares: then");
    CHECK(run(s, "{\"op\":\"txn\",\"if\":[{\"key\":\"zz\",\"index\":5}],\"then\":[]}", &r) == 200 &&
              r.succeeded == 0,
          "false with no else: 200, nothing");
    store_close(s);
}

static char *big_txn(const char *fmt_head, int n, const char *item)
{
    size_t cap = (size_t)n * 64 + 256, o = 0;
    char *b = malloc(cap);
    o += (size_t)snprintf(b, cap, "%s", fmt_head);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(b + o, cap - o, i ? ",%s" : "%s", item);
    snprintf(b + o, cap - o, "]}");
    return b;
}

static void test_txn_malformed(void)
{
    store *s = fresh("m.db");
    CHECK(s, "open");
    store_result r;
    CHECK(run(s, "{\"set\":{\"a\":\"1\"}}", NULL) == 200, "a");
    uint64_t seq = store_history_last_seq(s);
    const char *bad[] = {
        "{\"op\":\"txn\",\"then\":{}}",
        "{\"op\":\"txn\",\"then\":[{\"set\":{\"k\":\"v\"},\"del\":\"k\"}]}",
        "{\"op\":\"txn\",\"then\":[{\"del\":\"a\",\"lease\":1}]}",
        "{\"op\":\"txn\",\"then\":[{\"del\":[\"a\"]}]}",
        "{\"op\":\"txn\",\"then\":[{\"set\":{\"k\":5}}]}",
        "{\"op\":\"txn\",\"then\":[{\"set\":{\"k\":\"v\"},\"lease\":0}]}",
        "{\"op\":\"txn\",\"then\":[{\"put\":{\"k\":\"v\"}}]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\"}],\"then\":[]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"absent\":false}],\"then\":[]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"index\":-1}],\"then\":[]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"index\":1,\"value\":\"1\"}],\"then\":[]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"\",\"index\":1}],\"then\":[]}",
        "{\"op\":\"txn\",\"if\":{},\"then\":[]}",
        "{\"op\":\"txn\",\"then\":[],\"set\":{\"k\":\"v\"}}",
        "{\"op\":\"txn\",\"then\":[{\"del\":\"a\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(run(s, bad[i], &r) == 400 && store_history_last_seq(s) == seq && has(s, "a", "1", 0),
              "not refused: %s (%d)", bad[i], r.code);
    /* Limits: 1000 keys over all ops and 1000 compares; one more is 400. */
    char *ok = big_txn("{\"op\":\"txn\",\"then\":[], \"else\":[", 1000, "{\"del\":\"a\"}");
    char *over = big_txn("{\"op\":\"txn\",\"then\":[], \"else\":[", 1001, "{\"del\":\"a\"}");
    char *cok = big_txn("{\"op\":\"txn\",\"then\":[], \"if\":[", 1000,
                        "{\"key\":\"a\",\"index\":1}");
    char *cover = big_txn("{\"op\":\"txn\",\"then\":[], \"if\":[", 1001,
                          "{\"key\":\"a\",\"index\":1}");
    int r1 = run(s, ok, NULL), r2 = run(s, over, NULL), r3 = run(s, cok, NULL),
        r4 = run(s, cover, NULL);
    free(ok);
    free(over);
    free(cok);
    free(cover);
    CHECK(r1 == 200 && r2 == 400 && r3 == 200 && r4 == 400, "limits: %d %d %d %d", r1, r2, r3, r4);
    store_close(s);
}

/* ---- snapshots ---- */

static void make_conf(raft_snap_meta *m, uint64_t index)
{
    memset(m, 0, sizeof *m);
    m->index = index;
    m->term = 1;
    m->conf.n = 1;
    m->conf.nodes[0].id = 11;
    m->conf.nodes[0].voter = 1;
    strcpy(m->conf.nodes[0].meta, "node0 127.0.0.1:12000 127.0.0.1:11000");
}

static void check_installed(store *t, uint64_t at, const char *what)
{
    (void)what;
    uint64_t ttl;
    CHECK(store_applied(t) == at, "applied");
    CHECK(has(t, "a", "1", 1) && has(t, "b", "2", 0) && has(t, "c", "3", 2), "keys and leases");
    CHECK(absent(t, "stale"), "old table replaced");
    CHECK(store_lease_count(t) == 2 && store_lease_get(t, 1, &ttl) == 1 && ttl == 3000 &&
              store_lease_get(t, 2, &ttl) == 1 && ttl == 4000,
          "leases");
    CHECK(store_history_floor(t) == at && history_rows(t) == 0, "floor = snapshot index");
}

static void test_snapshot_with_leases(void)
{
    store *s = fresh("s.db");
    CHECK(s, "open");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":3000}", NULL) == 200, "grant 1");
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":4000}", NULL) == 200, "grant 2");
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"a\":\"1\"},\"lease\":1}", NULL) == 200, "a");
    CHECK(run(s, "{\"set\":{\"b\":\"2\"}}", NULL) == 200, "b");
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"c\":\"3\"},\"lease\":2}", NULL) == 200, "c");
    char snap[512], snap2[512];
    path_in(snap, sizeof snap, "s.snap");
    path_in(snap2, sizeof snap2, "s2.snap");
    raft_snap_meta m;
    make_conf(&m, 5);
    CHECK(store_snapshot_write(s, snap, &m) == 0, "write: %s", store_error(s));
    store_snap_writer *w = store_snapshot_begin(s, snap2, &m);
    CHECK(w, "begin: %s", store_error(s));
    int rc;
    while ((rc = store_snapshot_step(w, 10)) == 0)
        ;
    CHECK(rc == 1 && store_snapshot_finish(w) == 0, "incremental: %s", store_error(s));
    CHECK(store_snapshot_file_records(snap) == 3, "records in header");
    store_close(s);
    const char *files[] = {snap, snap2};
    for (int i = 0; i < 2; i++) {
        store *t = fresh("t2.db");
        CHECK(t, "open t");
        CHECK(run(t, "{\"set\":{\"stale\":\"x\"}}", NULL) == 200, "stale");
        CHECK(run(t, "{\"op\":\"lease_grant\",\"ttl_ms\":9000}", NULL) == 200, "stale lease");
        uint64_t seq = store_history_last_seq(t);
        CHECK(store_snapshot_install(t, files[i], &m) == 0, "install: %s", store_error(t));
        check_installed(t, 5, files[i]);
        if (check_case_failed)
            return;
        store_result r;
        CHECK(apply_at(t, 6, "{\"op\":\"lease_revoke\",\"lease\":2}", &r) == 0 && r.code == 200 &&
                  r.first_seq > seq,
              "revoke after install; seq not reused");
        CHECK(absent(t, "c") && has(t, "a", "1", 1), "lease keys work after install");
        store_close(t);
        t = open_db("t2.db");
        CHECK(t && store_history_floor(t) == 5 && store_history_last_seq(t) == r.last_seq,
              "floor and seq after reopen");
        store_close(t);
    }
}

/* A version 1 file (before leases), written by hand. */
static void put_be(FILE *f, uint64_t v, int bytes, uint64_t *sum)
{
    for (int i = bytes - 1; i >= 0; i--) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        *sum = (*sum ^ b) * 0x100000001b3ULL;
        fputc(b, f);
    }
}
static void put_raw(FILE *f, const char *p, size_t n, uint64_t *sum)
{
    for (size_t i = 0; i < n; i++) {
        *sum = (*sum ^ (uint8_t)p[i]) * 0x100000001b3ULL;
        fputc(p[i], f);
    }
}

static void test_snapshot_version1_reads(void)
{
    char snap[512];
    path_in(snap, sizeof snap, "v1.snap");
    FILE *f = fopen(snap, "wb");
    CHECK(f, "create");
    uint64_t sum = 0xcbf29ce484222325ULL;
    const char *meta = "node0 127.0.0.1:12000 127.0.0.1:11000";
    put_raw(f, "KVSNAP01", 8, &sum);
    put_be(f, 7, 8, &sum);
    put_be(f, 1, 8, &sum);
    put_be(f, 4 + 11 + strlen(meta), 4, &sum);
    put_be(f, 1, 4, &sum);
    put_be(f, 11, 8, &sum);
    put_be(f, 1, 1, &sum);
    put_be(f, strlen(meta), 2, &sum);
    put_raw(f, meta, strlen(meta), &sum);
    put_be(f, 2, 8, &sum);
    const char *kv[][2] = {{"k1", "v1"}, {"k2", "value two"}};
    for (int i = 0; i < 2; i++) {
        put_be(f, strlen(kv[i][0]), 4, &sum);
        put_raw(f, kv[i][0], strlen(kv[i][0]), &sum);
        put_be(f, strlen(kv[i][1]), 4, &sum);
        put_raw(f, kv[i][1], strlen(kv[i][1]), &sum);
        put_be(f, (uint64_t)i + 3, 8, &sum);
    }
    put_raw(f, "KVSNEND!", 8, &sum);
    uint64_t final = sum;
    put_be(f, final, 8, &sum);
    fclose(f);
    CHECK(store_snapshot_file_records(snap) == 2, "records");
    store *t = fresh("v1.db");
    CHECK(t, "open");
    raft_snap_meta m;
    make_conf(&m, 7);
    CHECK(store_snapshot_install(t, snap, &m) == 0, "install v1: %s", store_error(t));
    uint64_t mi;
    CHECK(has(t, "k1", "v1", 0) && has(t, "k2", "value two", 0), "keys, lease none");
    CHECK(store_get(t, "k2", 2, NULL, NULL, &mi) == 1 && mi == 4, "mod index");
    CHECK(store_lease_count(t) == 0 && store_history_floor(t) == 7, "no leases, floor 7");
    store_close(t);
}

/* ---- migration, restore, crash safety ---- */

static void test_migration_from_old_schema(void)
{
    remove_db("old.db");
    char p[512];
    path_in(p, sizeof p, "old.db");
    sqlite3 *db;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK, "sqlite open");
    /* The schema of the previous version, as its storage.c created it. */
    int rc = sqlite3_exec(
        db,
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta(name TEXT PRIMARY KEY, value);"
        "CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
        " type INTEGER NOT NULL, data BLOB);"
        "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, mod_index INTEGER NOT NULL);"
        "INSERT INTO kv VALUES(CAST('old' AS BLOB), CAST('v' AS BLOB), 41);"
        "INSERT INTO meta VALUES('applied', 42);",
        NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK(rc == SQLITE_OK, "old schema");
    store *s = open_db("old.db");
    CHECK(s, "open migrates");
    CHECK(store_applied(s) == 42 && has(s, "old", "v", 0), "old row, lease 0");
    CHECK(store_history_floor(s) == 42 && history_rows(s) == 0, "floor = applied");
    CHECK(store_changed_after(s, "old", 3, 0, 41) == 0, "exact for an existing key");
    store_result r;
    CHECK(run(s, "{\"op\":\"lease_grant\",\"ttl_ms\":2000}", &r) == 200 && r.lease == 43, "grant");
    CHECK(run(s, "{\"op\":\"set\",\"kv\":{\"old\":\"w\"},\"lease\":43}", NULL) == 200, "attach");
    store_close(s);
    s = open_db("old.db");
    CHECK(s && has(s, "old", "w", 43) && store_history_floor(s) == 42, "reopen: no re-migration");
    store_close(s);
}

static void test_restored_copy_floor(void)
{
    store *s = fresh("r.db");
    CHECK(s, "open");
    for (int i = 0; i < 5; i++)
        CHECK(run(s, "{\"set\":{\"k\":\"v\"}}", NULL) == 200, "set");
    store_close(s);
    /* What kv-restore does to its copy: keep kv and applied, drop meta. */
    char p[512];
    path_in(p, sizeof p, "r.db");
    sqlite3 *db;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK, "sqlite open");
    int rc = sqlite3_exec(db, "DELETE FROM log; DELETE FROM meta WHERE name <> 'applied';", NULL,
                          NULL, NULL);
    sqlite3_close(db);
    CHECK(rc == SQLITE_OK, "strip meta");
    s = open_db("r.db");
    CHECK(s && store_applied(s) == 5, "reopen");
    CHECK(store_history_floor(s) == 5 && history_rows(s) == 0, "floor = applied, rows cleared");
    store_close(s);
}

static void test_history_and_kv_one_transaction(void)
{
    store *s = fresh("k.db");
    CHECK(s, "open");
    CHECK(run(s, "{\"set\":{\"a\":\"1\"}}", NULL) == 200, "a");
    uint64_t seq = store_history_last_seq(s);
    CHECK(store_begin(s) == 0, "begin");
    store_result r;
    CHECK(apply_at(s, 2, "{\"op\":\"set\",\"kv\":{\"b\":\"2\",\"a\":\"x\"}}", &r) == 0 &&
              r.code == 200,
          "apply in txn");
    CHECK(has(s, "b", "2", 0) && history_rows(s) == 3, "visible inside");
    store_rollback(s); /* the crash: nothing of the batch reached the disk */
    CHECK(store_applied(s) == 1 && absent(s, "b") && has(s, "a", "1", 0), "kv rolled back");
    CHECK(history_rows(s) == 1 && store_history_last_seq(s) == seq, "history rolled back");
    CHECK(apply_at(s, 2, "{\"set\":{\"c\":\"3\"}}", &r) == 0 && r.first_seq == seq + 1,
          "the redo gets the next seq");
    dump d;
    CHECK(!strcmp(history(s, 0, NULL, 1, &d), "1:set:a=1 2:set:c=3"), "%s", d.buf);
    store_close(s);
    s = open_db("k.db");
    CHECK(s && !strcmp(history(s, 0, NULL, 1, &d), "1:set:a=1 2:set:c=3"), "durable: %s", d.buf);
    store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_storage_coord.%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        check(0, "setup", "mkdir %s: %s", dir, strerror(errno));
        return check_summary();
    }
    RUN(test_history_rows_per_command);
    RUN(test_history_trim_and_floor);
    RUN(test_changed_after);
    RUN(test_lease_attach_revoke_expire);
    RUN(test_lease_unknown_and_bad);
    RUN(test_lease_limit);
    RUN(test_txn_compares_and_branches);
    RUN(test_txn_malformed);
    RUN(test_snapshot_with_leases);
    RUN(test_snapshot_version1_reads);
    RUN(test_migration_from_old_schema);
    RUN(test_restored_copy_floor);
    RUN(test_history_and_kv_one_transaction);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_storage_coord: could not remove %s\n", dir);
    return check_summary();
}
