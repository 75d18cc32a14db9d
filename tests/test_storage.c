/* test_storage.c - tests of lib/storage*.c (SQLite storage). */
#include "storage.h"
#include "check.h"

#include <errno.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static store *fresh(const char *name)
{
    char p[512], q[600];
    path_in(p, sizeof p, name);
    unlink(p);
    snprintf(q, sizeof q, "%s-wal", p);
    unlink(q);
    snprintf(q, sizeof q, "%s-shm", p);
    unlink(q);
    store *s = store_open(p);
    if (!s)
        printf("# store_open %s: %s\n", p, store_open_error());
    return s;
}

static store *reopen(store *s, const char *name)
{
    char p[512];
    store_close(s);
    path_in(p, sizeof p, name);
    return store_open(p);
}

static raft_entry mk(uint64_t index, uint64_t term, int type, const char *data)
{
    raft_entry e = {.term = term,
                    .index = index,
                    .type = (uint8_t)type,
                    .len = data ? (uint32_t)strlen(data) : 0,
                    .data = (uint8_t *)data};
    return e;
}

static int apply_cmd(store *s, uint64_t index, const char *json, store_result *r)
{
    raft_entry e = mk(index, 1, RAFT_ENTRY_NORMAL, json);
    return store_apply(s, &e, r);
}

/* 1 when key has value v (and, if idx nonzero, mod index idx). */
static int has(store *s, const char *k, const char *v, uint64_t idx)
{
    char *got = NULL;
    size_t n = 0;
    uint64_t mi = 0;
    int rc = store_get(s, k, strlen(k), &got, &n, &mi);
    int ok = rc == 1 && n == strlen(v) && memcmp(got, v, n) == 0 && (!idx || mi == idx);
    free(got);
    return ok;
}

static int absent(store *s, const char *k)
{
    return store_get(s, k, strlen(k), NULL, NULL, NULL) == 0;
}

static void test_fresh_load_empty(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    store_loaded l;
    CHECK(store_load(s, &l) == 0, "load: %s", store_error(s));
    CHECK(l.hs.term == 0 && l.hs.vote == 0 && l.n_entries == 0 && !l.has_snap && l.applied == 0,
          "fresh store not empty");
    store_loaded_free(&l);
    store_close(s);
}

static unsigned page_size_of(const char *name)
{
    char p[512];
    unsigned char h[18];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(h, 1, sizeof h, f) : 0;
    if (f)
        fclose(f);
    return n == sizeof h ? (unsigned)h[16] << 8 | h[17] : 0;
}

/* A new database uses STORE_PAGE_SIZE pages (fewer bytes written per
 * write); one made with 4 KiB pages keeps them and still works. */
static void test_page_size(void)
{
    store *s = fresh("ps.db");
    CHECK(s, "open failed");
    store_close(s);
    unsigned ps = page_size_of("ps.db");
    CHECK(ps == STORE_PAGE_SIZE, "new database has %u-byte pages, want %u", ps, STORE_PAGE_SIZE);
    char p[512];
    path_in(p, sizeof p, "ps4k.db");
    unlink(p);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK &&
              sqlite3_exec(db,
                           "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
                           "CREATE TABLE x(a);",
                           NULL, NULL, NULL) == SQLITE_OK,
          "make a 4 KiB database");
    sqlite3_close(db);
    s = store_open(p);
    CHECK(s, "open a 4 KiB database: %s", store_open_error());
    raft_hard_state hs = {.term = 3, .vote = 0};
    CHECK(store_begin(s) == 0 && store_save_hs(s, &hs) == 0 && store_commit(s) == 0,
          "write to a 4 KiB database: %s", store_error(s));
    store_close(s);
    ps = page_size_of("ps4k.db");
    CHECK(ps == 4096, "an existing database changed to %u-byte pages", ps);
}

static void test_log_round_trip(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    raft_entry e[4] = {mk(1, 1, RAFT_ENTRY_CONFIG, "conf"), mk(2, 1, RAFT_ENTRY_NOOP, NULL),
                       mk(3, 2, RAFT_ENTRY_NORMAL, "{\"set\":{\"a\":\"1\"}}"),
                       mk(4, 2, RAFT_ENTRY_NORMAL, "")};
    uint8_t bin[5] = {0, 1, 2, 0, 255};
    e[3].data = bin;
    e[3].len = 5;
    CHECK(store_begin(s) == 0, "begin: %s", store_error(s));
    CHECK(store_append(s, e, 4) == 0, "append: %s", store_error(s));
    CHECK(store_commit(s) == 0, "commit: %s", store_error(s));
    s = reopen(s, "a.db");
    CHECK(s, "reopen failed");
    store_loaded l;
    CHECK(store_load(s, &l) == 0, "load: %s", store_error(s));
    CHECK(l.n_entries == 4, "expected 4 entries, got %zu", l.n_entries);
    for (size_t i = 0; i < 4; i++) {
        CHECK(l.entries[i].index == e[i].index && l.entries[i].term == e[i].term &&
                  l.entries[i].type == e[i].type && l.entries[i].len == e[i].len &&
                  (e[i].len == 0 || memcmp(l.entries[i].data, e[i].data, e[i].len) == 0),
              "entry %zu differs", i);
    }
    store_loaded_free(&l);
    store_close(s);
}

static void test_truncate_and_compact(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    raft_entry e[10];
    for (int i = 0; i < 10; i++)
        e[i] = mk((uint64_t)i + 1, 1, RAFT_ENTRY_NOOP, NULL);
    CHECK(store_append(s, e, 10) == 0, "append: %s", store_error(s));
    /* conflict: replace 7.. with term-2 entries */
    raft_entry r[2] = {mk(7, 2, RAFT_ENTRY_NORMAL, "x"), mk(8, 2, RAFT_ENTRY_NORMAL, "y")};
    CHECK(store_begin(s) == 0, "begin");
    CHECK(store_truncate(s, 7) == 0, "truncate: %s", store_error(s));
    CHECK(store_append(s, r, 2) == 0, "append: %s", store_error(s));
    CHECK(store_compact(s, 3) == 0, "compact: %s", store_error(s));
    CHECK(store_commit(s) == 0, "commit");
    s = reopen(s, "a.db");
    CHECK(s, "reopen failed");
    store_loaded l;
    CHECK(store_load(s, &l) == 0, "load: %s", store_error(s));
    CHECK(l.n_entries == 5, "expected entries 4..8, got %zu", l.n_entries);
    CHECK(l.entries[0].index == 4 && l.entries[4].index == 8, "wrong range %llu..%llu",
          (unsigned long long)l.entries[0].index, (unsigned long long)l.entries[4].index);
    CHECK(l.entries[3].term == 2 && l.entries[3].len == 1 && l.entries[3].data[0] == 'x',
          "entry 7 not replaced");
    store_loaded_free(&l);
    store_close(s);
}

/* store_log_range: what raftd reads back for a follower (rd.loads). */
static void test_log_range(void)
{
    store *s = fresh("r.db");
    CHECK(s, "open failed");
    raft_entry e[8];
    for (int i = 0; i < 8; i++)
        e[i] = mk((uint64_t)i + 1, i < 4 ? 1 : 2, RAFT_ENTRY_NORMAL, "0123456789");
    CHECK(store_append(s, e, 8) == 0, "append: %s", store_error(s));
    CHECK(store_compact(s, 2) == 0, "compact: %s", store_error(s));
    raft_entry *got;
    size_t n;
    /* bounded by bytes (at least one), by upto, and consecutive */
    CHECK(store_log_range(s, 3, 8, 25, &got, &n) == 0 && n == 2, "25 bytes from 3: %zu", n);
    CHECK(got[0].index == 3 && got[1].index == 4 && got[1].term == 1 && got[1].len == 10 &&
              memcmp(got[1].data, "0123456789", 10) == 0,
          "entries 3..4 read back wrong");
    store_entries_free(got, n);
    CHECK(store_log_range(s, 4, 6, 1000, &got, &n) == 0 && n == 3 && got[2].index == 6 &&
              got[2].term == 2,
          "4..6: %zu entries", n);
    store_entries_free(got, n);
    CHECK(store_log_range(s, 5, 8, 1, &got, &n) == 0 && n == 1 && got[0].index == 5,
          "one entry over max_bytes: %zu", n);
    store_entries_free(got, n);
    /* compacted: nothing, not the next one */
    CHECK(store_log_range(s, 2, 8, 1000, &got, &n) == 0 && n == 0, "compacted 2: %zu", n);
    store_entries_free(got, n);
    CHECK(store_log_range(s, 9, 12, 1000, &got, &n) == 0 && n == 0, "past the end: %zu", n);
    store_entries_free(got, n);
    /* compaction a few rows at a time: the oldest first, then done */
    CHECK(store_compact_some(s, 6, 2) == 2, "first slice: %s", store_error(s));
    CHECK(store_log_range(s, 4, 8, 1000, &got, &n) == 0 && n == 0, "4 left after the slice");
    store_entries_free(got, n);
    CHECK(store_log_range(s, 5, 8, 1000, &got, &n) == 0 && n == 4, "5.. gone: %zu", n);
    store_entries_free(got, n);
    CHECK(store_compact_some(s, 6, 2) == 2, "second slice");
    CHECK(store_compact_some(s, 6, 2) == 0, "nothing left to compact");
    CHECK(store_log_range(s, 7, 8, 1000, &got, &n) == 0 && n == 2, "7..8 kept: %zu", n);
    store_entries_free(got, n);
    store_close(s);
}

static void test_hard_state_and_meta(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    raft_hard_state hs = {.term = 7, .vote = 0xfedcba9876543210ULL};
    CHECK(store_save_hs(s, &hs) == 0, "save hs: %s", store_error(s));
    CHECK(store_meta_set(s, "cluster", "abc123") == 0, "meta set: %s", store_error(s));
    s = reopen(s, "a.db");
    CHECK(s, "reopen failed");
    store_loaded l;
    CHECK(store_load(s, &l) == 0, "load");
    CHECK(l.hs.term == 7 && l.hs.vote == 0xfedcba9876543210ULL, "hard state lost: %llu %llx",
          (unsigned long long)l.hs.term, (unsigned long long)l.hs.vote);
    store_loaded_free(&l);
    char buf[64];
    CHECK(store_meta_get(s, "cluster", buf, sizeof buf) == 1 && strcmp(buf, "abc123") == 0,
          "meta cluster lost");
    CHECK(store_meta_get(s, "nothing", buf, sizeof buf) == 0, "absent meta found");
    char tiny[3];
    CHECK(store_meta_get(s, "cluster", tiny, sizeof tiny) == -1, "overlong meta not refused");
    /* rollback discards */
    CHECK(store_begin(s) == 0, "begin");
    CHECK(store_meta_set(s, "cluster", "zzz") == 0, "meta set");
    store_rollback(s);
    CHECK(store_meta_get(s, "cluster", buf, sizeof buf) == 1 && strcmp(buf, "abc123") == 0,
          "rollback did not discard");
    store_close(s);
}

static void test_apply(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    store_result r;
    CHECK(apply_cmd(s, 1, "{\"set\":{\"a\":\"1\",\"b\":\"2\"}}", &r) == 0 && r.code == 200,
          "set: code %d %s", r.code, store_error(s));
    CHECK(has(s, "a", "1", 1) && has(s, "b", "2", 1), "set values missing");
    CHECK(store_applied(s) == 1, "applied %llu", (unsigned long long)store_applied(s));
    raft_entry noop = mk(2, 1, RAFT_ENTRY_NOOP, NULL);
    CHECK(store_apply(s, &noop, &r) == 0 && r.code == 200 && store_applied(s) == 2, "noop");
    /* condition on the wrong index: nothing changes, applied moves */
    CHECK(apply_cmd(s, 3,
                    "{\"set\":{\"a\":\"X\",\"c\":\"3\"},\"del\":[\"b\"],"
                    "\"if\":[{\"key\":\"a\",\"index\":1},{\"key\":\"b\",\"index\":2}]}",
                    &r) == 0,
          "apply: %s", store_error(s));
    CHECK(r.code == 412 && strcmp(r.key, "b") == 0 && r.index == 1,
          "want 412 on b cur 1, got %d %s %llu", r.code, r.key, (unsigned long long)r.index);
    CHECK(has(s, "a", "1", 1) && has(s, "b", "2", 1) && absent(s, "c"),
          "failed condition changed the table");
    CHECK(store_applied(s) == 3, "applied not advanced by failed condition");
    /* "must not exist" condition */
    CHECK(apply_cmd(s, 4, "{\"set\":{\"c\":\"3\"},\"if\":[{\"key\":\"c\",\"index\":0}]}", &r) ==
                  0 &&
              r.code == 200 && has(s, "c", "3", 4),
          "create-if-absent failed: %d", r.code);
    CHECK(apply_cmd(s, 5, "{\"set\":{\"c\":\"4\"},\"if\":[{\"key\":\"c\",\"index\":0}]}", &r) ==
                  0 &&
              r.code == 412 && r.index == 4 && has(s, "c", "3", 4),
          "create-if-absent not refused");
    /* matching conditions, set + del together */
    CHECK(apply_cmd(s, 6,
                    "{\"set\":{\"a\":\"A\"},\"del\":[\"b\",\"nope\"],"
                    "\"if\":[{\"key\":\"a\",\"index\":1},{\"key\":\"c\",\"index\":4}]}",
                    &r) == 0 &&
              r.code == 200,
          "txn failed: %d", r.code);
    CHECK(has(s, "a", "A", 6) && absent(s, "b") && has(s, "c", "3", 4), "txn result wrong");
    /* condition on a missing key with index > 0 */
    CHECK(apply_cmd(s, 7, "{\"del\":[\"a\"],\"if\":[{\"key\":\"b\",\"index\":1}]}", &r) == 0 &&
              r.code == 412 && r.index == 0 && has(s, "a", "A", 6),
          "missing key condition");
    /* malformed commands: 400, nothing changes, applied moves */
    const char *bad[] = {"",
                         "[1]",
                         "{\"set\":[1]}",
                         "{\"set\":{\"a\":1}}",
                         "{\"del\":\"a\"}",
                         "{\"bogus\":1}",
                         "{\"set\":{\"\":\"v\"}}",
                         "{\"if\":[{\"key\":\"a\"}]}",
                         "{\"if\":[{\"key\":\"a\",\"index\":-1}]}",
                         "not json",
                         "{\"set\":{\"a\":\"1\""};
    uint64_t idx = 8;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, idx++) {
        CHECK(apply_cmd(s, idx, bad[i], &r) == 0, "apply error on bad command %zu: %s", i,
              store_error(s));
        CHECK(r.code == 400, "bad command %zu gave %d", i, r.code);
        CHECK(store_applied(s) == idx, "applied not moved by bad command");
    }
    CHECK(has(s, "a", "A", 6) && has(s, "c", "3", 4) && store_count(s) == 2,
          "bad command changed the table");
    /* long key: 1024 ok, 1025 refused */
    char cmd[2200], key[1100];
    memset(key, 'k', 1025);
    key[1024] = 0;
    snprintf(cmd, sizeof cmd, "{\"set\":{\"%s\":\"v\"}}", key);
    CHECK(apply_cmd(s, idx++, cmd, &r) == 0 && r.code == 200 && has(s, key, "v", 0),
          "1024-byte key");
    key[1024] = 'k';
    key[1025] = 0;
    snprintf(cmd, sizeof cmd, "{\"set\":{\"%s\":\"v\"}}", key);
    CHECK(apply_cmd(s, idx++, cmd, &r) == 0 && r.code == 400, "1025-byte key accepted");
    /* re-applying an old index is an error */
    CHECK(apply_cmd(s, 3, "{}", &r) == -1, "old index re-applied");
    /* applied survives reopen */
    uint64_t want = store_applied(s);
    s = reopen(s, "a.db");
    CHECK(s && store_applied(s) == want, "applied index lost on reopen");
    store_close(s);
}

static int scan_cb(void *arg, const char *k, size_t klen, const char *v, size_t vlen, uint64_t mi)
{
    char *out = arg;
    (void)v;
    (void)vlen;
    (void)mi;
    strncat(out, k, klen);
    strcat(out, ",");
    return 0;
}

static void test_scan(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    store_result r;
    CHECK(apply_cmd(s, 1,
                    "{\"set\":{\"user1\":\"a\",\"user2\":\"b\",\"user3\":\"c\","
                    "\"usf\":\"d\",\"a\":\"e\",\"zz\":\"f\"}}",
                    &r) == 0 &&
              r.code == 200,
          "set");
    char out[256] = "";
    CHECK(store_scan(s, "user", NULL, 100, scan_cb, out) == 3 &&
              strcmp(out, "user1,user2,user3,") == 0,
          "prefix scan: %s", out);
    out[0] = 0;
    CHECK(store_scan(s, "user", "user1", 1, scan_cb, out) == 1 && strcmp(out, "user2,") == 0,
          "after+limit scan: %s", out);
    out[0] = 0;
    CHECK(store_scan(s, "", NULL, 100, scan_cb, out) == 6 &&
              strcmp(out, "a,user1,user2,user3,usf,zz,") == 0,
          "full scan: %s", out);
    CHECK(store_count(s) == 6, "count");
    store_close(s);
}

static void make_conf(raft_snap_meta *m, uint64_t index, uint64_t term)
{
    memset(m, 0, sizeof *m);
    m->index = index;
    m->term = term;
    m->conf.n = 2;
    m->conf.nodes[0].id = 11;
    m->conf.nodes[0].voter = 1;
    strcpy(m->conf.nodes[0].meta, "node0 127.0.0.1:12000 127.0.0.1:11000");
    m->conf.nodes[1].id = 22;
    m->conf.nodes[1].voter = 0;
    strcpy(m->conf.nodes[1].meta, "node1 127.0.0.1:12001 127.0.0.1:11001");
}

static void test_snapshot_round_trip(void)
{
    store *s = fresh("a.db");
    CHECK(s, "open failed");
    store_result r;
    CHECK(apply_cmd(s, 1, "{\"set\":{\"k1\":\"v1\",\"k2\":\"\"}}", &r) == 0 && r.code == 200,
          "set");
    CHECK(apply_cmd(s, 2, "{\"set\":{\"k3\":\"with\\u0000nul\"}}", &r) == 0 && r.code == 200,
          "set");
    char snap[512];
    path_in(snap, sizeof snap, "snap-2.snap");
    raft_snap_meta m;
    make_conf(&m, 2, 1);
    CHECK(store_snapshot_write(s, snap, &m) == 0, "write: %s", store_error(s));
    raft_snap_meta wrong;
    make_conf(&wrong, 5, 1);
    CHECK(store_snapshot_write(s, snap, &wrong) == -1, "snapshot at unapplied index accepted");

    store *t = fresh("b.db");
    CHECK(t, "open b");
    CHECK(apply_cmd(t, 1, "{\"set\":{\"old\":\"gone\"}}", &r) == 0, "set b");
    raft_entry e[3] = {mk(1, 1, RAFT_ENTRY_NOOP, NULL), mk(2, 1, RAFT_ENTRY_NOOP, NULL),
                       mk(3, 1, RAFT_ENTRY_NOOP, NULL)};
    CHECK(store_append(t, e, 3) == 0, "append b");
    CHECK(store_begin(t) == 0, "begin");
    CHECK(store_snapshot_install(t, snap, &m) == 0, "install: %s", store_error(t));
    CHECK(store_commit(t) == 0, "commit");
    t = reopen(t, "b.db");
    CHECK(t, "reopen b");
    CHECK(store_applied(t) == 2, "applied %llu", (unsigned long long)store_applied(t));
    CHECK(has(t, "k1", "v1", 1) && has(t, "k2", "", 1) && absent(t, "old"), "kv not replaced");
    char *v = NULL;
    size_t vl = 0;
    CHECK(store_get(t, "k3", 2, &v, &vl, NULL) == 1 && vl == 8 && memcmp(v, "with\0nul", 8) == 0,
          "binary value lost");
    free(v);
    store_loaded l;
    CHECK(store_load(t, &l) == 0, "load");
    CHECK(l.has_snap && l.snap.index == 2 && l.snap.term == 1 && l.snap.conf.n == 2 &&
              l.snap.conf.nodes[1].id == 22 && l.snap.conf.nodes[1].voter == 0 &&
              strcmp(l.snap.conf.nodes[1].meta, m.conf.nodes[1].meta) == 0,
          "snapshot meta lost");
    CHECK(l.n_entries == 0 && l.applied == 2, "log not cleared: %zu", l.n_entries);
    store_loaded_free(&l);
    /* entries after the snapshot load; later appends continue */
    raft_entry more = mk(3, 2, RAFT_ENTRY_NORMAL, "{}");
    CHECK(store_append(t, &more, 1) == 0, "append after install");
    CHECK(store_load(t, &l) == 0 && l.n_entries == 1 && l.entries[0].index == 3, "load after");
    store_loaded_free(&l);

    /* corrupt file: refused, nothing changed */
    FILE *f = fopen(snap, "r+b");
    CHECK(f, "open snap");
    fseek(f, 60, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 60, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    store *u = fresh("c.db");
    CHECK(u, "open c");
    CHECK(apply_cmd(u, 1, "{\"set\":{\"keep\":\"me\"}}", &r) == 0, "set c");
    CHECK(store_snapshot_install(u, snap, &m) == -1, "corrupt snapshot installed");
    CHECK(strstr(store_error(u), "snapshot") != NULL, "no error text: %s", store_error(u));
    CHECK(has(u, "keep", "me", 1) && store_applied(u) == 1, "corrupt install changed state");
    /* truncated file */
    CHECK(truncate(snap, 30) == 0, "truncate");
    CHECK(store_snapshot_install(u, snap, &m) == -1, "truncated snapshot installed");
    store_close(u);
    store_close(t);
    store_close(s);
}

/* The incremental writer pins the table as of begin while writes go on. */
static void test_incremental_snapshot(void)
{
    store *s = fresh("inc.db");
    CHECK(s, "open failed");
    store_result r;
    char cmd[256];
    for (int i = 1; i <= 50; i++) {
        snprintf(cmd, sizeof cmd, "{\"set\":{\"key%03d\":\"value%d\"}}", i, i);
        CHECK(apply_cmd(s, (uint64_t)i, cmd, &r) == 0 && r.code == 200, "apply %d", i);
    }
    char snap[512];
    path_in(snap, sizeof snap, "snap-50.snap");
    raft_snap_meta m;
    make_conf(&m, 50, 3);
    raft_snap_meta wrong;
    make_conf(&wrong, 49, 3);
    CHECK(store_snapshot_begin(s, snap, &wrong) == NULL, "begin at a non-applied index");
    CHECK(store_begin(s) == 0, "begin txn");
    CHECK(store_snapshot_begin(s, snap, &m) == NULL, "begin inside a transaction accepted");
    store_rollback(s);
    store_snap_writer *w = store_snapshot_begin(s, snap, &m);
    CHECK(w, "snapshot begin: %s", store_error(s));
    int steps = 0, rc;
    uint64_t idx = 51;
    while ((rc = store_snapshot_step(w, 40)) == 0) {
        steps++;
        /* writes go on meanwhile, in their own transactions */
        snprintf(cmd, sizeof cmd,
                 "{\"set\":{\"key001\":\"changed%d\",\"new%d\":\"x\"},\"del\":[\"key050\"]}", steps,
                 steps);
        CHECK(store_begin(s) == 0, "begin");
        CHECK(apply_cmd(s, idx++, cmd, &r) == 0 && r.code == 200, "concurrent apply: %s",
              store_error(s));
        CHECK(store_commit(s) == 0, "commit while snapshotting: %s", store_error(s));
    }
    CHECK(rc == 1, "step failed: %s", store_error(s));
    CHECK(steps >= 5, "budget not honoured: %d steps", steps);
    CHECK(store_snapshot_finish(w) == 0, "finish: %s", store_error(s));
    store_loaded l;
    CHECK(store_load(s, &l) == 0 && l.has_snap && l.snap.index == 50 && l.snap.term == 3,
          "snapshot meta not recorded");
    store_loaded_free(&l);
    store *t = fresh("inc2.db");
    CHECK(t, "open");
    CHECK(store_snapshot_install(t, snap, &m) == 0, "install: %s", store_error(t));
    CHECK(store_count(t) == 50 && has(t, "key001", "value1", 1) &&
              has(t, "key050", "value50", 50) && absent(t, "new1"),
          "snapshot is not the table as of begin");
    store_close(t);
    /* abort leaves no file behind */
    char snap2[512], tmp2[600];
    path_in(snap2, sizeof snap2, "snap-x.snap");
    snprintf(tmp2, sizeof tmp2, "%s.tmp", snap2);
    raft_snap_meta m2;
    make_conf(&m2, store_applied(s), 3);
    w = store_snapshot_begin(s, snap2, &m2);
    CHECK(w, "begin 2: %s", store_error(s));
    CHECK(store_snapshot_step(w, 10) == 0, "step 2");
    store_snapshot_abort(w);
    CHECK(access(tmp2, F_OK) != 0 && access(snap2, F_OK) != 0, "abort left a file");
    store_close(s);
}

/* Child: commits batches forever, reporting each committed batch number on
 * the pipe only after store_commit returned. */
#define BATCH_KEYS 20
static void crash_child(const char *path, int wfd)
{
    store *s = store_open(path);
    if (!s)
        _exit(2);
    for (uint64_t b = 1;; b++) {
        char cmd[4096];
        int o = snprintf(cmd, sizeof cmd, "{\"set\":{");
        for (int k = 0; k < BATCH_KEYS; k++)
            o += snprintf(cmd + o, sizeof cmd - (size_t)o, "%s\"b%llu-%d\":\"%llu\"", k ? "," : "",
                          (unsigned long long)b, k, (unsigned long long)b);
        snprintf(cmd + o, sizeof cmd - (size_t)o, "}}");
        raft_entry e = mk(b, 1, RAFT_ENTRY_NORMAL, cmd);
        raft_hard_state hs = {.term = b, .vote = b};
        store_result r;
        if (store_begin(s) || store_save_hs(s, &hs) || store_append(s, &e, 1) ||
            store_apply(s, &e, &r) || r.code != 200 || store_commit(s))
            _exit(3);
        if (write(wfd, &b, sizeof b) != sizeof b)
            _exit(4);
    }
}

static void test_crash_loses_nothing_committed(void)
{
    char path[512];
    store *s0 = fresh("crash.db");
    CHECK(s0, "open");
    store_close(s0);
    path_in(path, sizeof path, "crash.db");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(p[0]);
        crash_child(path, p[1]);
    }
    close(p[1]);
    uint64_t last = 0, b;
    /* Let it commit a varying number of batches, then kill it mid-stream. */
    uint64_t target = 30 + (uint64_t)(getpid() % 40);
    while (last < target && read(p[0], &b, sizeof b) == sizeof b)
        last = b;
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    close(p[0]);
    CHECK(last >= target, "child stopped early at %llu", (unsigned long long)last);
    CHECK(WIFSIGNALED(st), "child exited instead of being killed (status %d)", st);
    store *s = store_open(path);
    CHECK(s, "reopen after crash: %s", store_open_error());
    store_loaded l;
    CHECK(store_load(s, &l) == 0, "load: %s", store_error(s));
    uint64_t a = l.applied;
    CHECK(a >= last, "lost committed batches: applied %llu < acknowledged %llu",
          (unsigned long long)a, (unsigned long long)last);
    CHECK(l.n_entries == a && l.hs.term == a && l.hs.vote == a,
          "log/hard state disagree with applied %llu: %zu entries, term %llu",
          (unsigned long long)a, l.n_entries, (unsigned long long)l.hs.term);
    store_loaded_free(&l);
    for (uint64_t i = 1; i <= a + 2; i++) {
        for (int k = 0; k < BATCH_KEYS; k++) {
            char key[64], val[32];
            snprintf(key, sizeof key, "b%llu-%d", (unsigned long long)i, k);
            snprintf(val, sizeof val, "%llu", (unsigned long long)i);
            if (i <= a)
                CHECK(has(s, key, val, i), "committed batch %llu key %d missing",
                      (unsigned long long)i, k);
            else
                CHECK(absent(s, key), "uncommitted batch %llu half applied", (unsigned long long)i);
        }
    }
    CHECK(store_count(s) == (int64_t)a * BATCH_KEYS, "extra keys");
    store_close(s);
}

static void test_open_errors(void)
{
    store *s = store_open("/nonexistent-dir/x/raft.db");
    CHECK(!s, "opened a db in a missing directory");
    CHECK(strstr(store_open_error(), "/nonexistent-dir") != NULL, "error lacks path: %s",
          store_open_error());
    char p[512];
    path_in(p, sizeof p, "garbage.db");
    FILE *f = fopen(p, "w");
    CHECK(f, "create");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file at all\n", f);
    fclose(f);
    s = store_open(p);
    CHECK(!s, "opened a garbage file");
}

/* The fast path of plain {"set":{...}} commands gives what the full
 * parser gives: values, mod index, and 400 for what jansson refuses. */
static void test_apply_fast_set(void)
{
    store *s = fresh("fast.db");
    CHECK(s, "open failed");
    store_result r;
    CHECK(apply_cmd(s, 1, " { \"set\" : { \"x\" : \"1\" , \"y\" : \"\" } } ", &r) == 0 &&
              r.code == 200,
          "set: code %d %s", r.code, store_error(s));
    CHECK(has(s, "x", "1", 1) && has(s, "y", "", 1), "values missing");
    CHECK(apply_cmd(s, 2, "{\"set\":{\"x\":\"2\",\"x\":\"3\"}}", &r) == 0 && r.code == 400,
          "duplicate key: code %d", r.code);
    CHECK(has(s, "x", "1", 1), "duplicate changed x");
    CHECK(apply_cmd(s, 3, "{\"set\":{\"x\":\"\\u00e9\"}}", &r) == 0 && r.code == 200 &&
              has(s, "x", "\xc3\xa9", 3),
          "escaped value through the full parser");
    CHECK(apply_cmd(s, 4, "{\"set\":{}}", &r) == 0 && r.code == 200 && store_applied(s) == 4,
          "empty set");
    store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_storage.%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        check(0, "setup", "mkdir %s: %s", dir, strerror(errno));
        return check_summary();
    }
    RUN(test_fresh_load_empty);
    RUN(test_page_size);
    RUN(test_log_round_trip);
    RUN(test_truncate_and_compact);
    RUN(test_log_range);
    RUN(test_hard_state_and_meta);
    RUN(test_apply);
    RUN(test_apply_fast_set);
    RUN(test_scan);
    RUN(test_snapshot_round_trip);
    RUN(test_incremental_snapshot);
    RUN(test_crash_loses_nothing_committed);
    RUN(test_open_errors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_storage: could not remove %s\n", dir);
    return check_summary();
}
