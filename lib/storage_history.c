/*
 * storage_history.c - the change history that watches and blocking
 * queries read: one row of the changes table per key change an applied
 * entry makes, written in the apply's transaction; trimming to the last N
 * rows; the history floor; reads by index and key range; "has this read
 * changed after M". Knows nothing of commands (storage_kv.c and
 * storage_cmd.c call storage_history_add through storage_kv_put/remove).
 *
 * Rows: seq (INTEGER PRIMARY KEY, given here from next_seq, never reused:
 * meta "history_seq" remembers where it was when the table is cleared),
 * idx (the entry's log index, non-decreasing in seq), op 'set'|'del', key,
 * value (NULL for del), expired (1 for a lease_expire's deletes). The rows
 * kept are [min_seq, next_seq), contiguous, since rows are only added at
 * the top and trimmed at the bottom (a rolled-back transaction reloads
 * the bounds). meta "history_floor" F: every change with idx > F is kept.
 * It rises when a trim deletes rows (F = the idx of the last row deleted)
 * and is set by a snapshot install (F = the snapshot index: what came
 * before is unknown there) and on opening a database that has no floor
 * yet (one made by the previous version, or by kv-restore: F = applied).
 *
 * There is no index on idx: idx grows with seq, so the first row after
 * index M is found by a binary search on seq (log2(rows) point reads),
 * which costs the write path nothing.
 */
#include "storage_impl.h"

#include <stdlib.h>
#include <string.h>

#define HISTORY_KEEP_DEFAULT 10000
/* At most this many rows deleted by one trim: bounds the work of one apply. */
#define TRIM_BATCH_MAX 4096

/* ---- bounds and floor ---- */

int storage_history_reload(store *s)
{
    sqlite3_stmt *q = storage_stmt(s, ST_CH_BOUNDS);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return storage_db_fail(s, "read history bounds");
    }
    int empty = sqlite3_column_type(q, 0) == SQLITE_NULL;
    uint64_t lo = (uint64_t)sqlite3_column_int64(q, 0);
    uint64_t hi = (uint64_t)sqlite3_column_int64(q, 1);
    sqlite3_reset(q);
    uint64_t base = 0;
    if (storage_meta_get_int(s, "history_seq", &base) < 0 ||
        storage_meta_get_int(s, "history_floor", &s->floor) < 0)
        return -1;
    if (empty) {
        s->next_seq = base > 0 ? base : 1;
        s->min_seq = s->next_seq;
    } else {
        s->min_seq = lo;
        s->next_seq = hi + 1 > base ? hi + 1 : base;
    }
    return 0;
}

int storage_history_reset(store *s, uint64_t floor)
{
    if (storage_step_done(s, storage_stmt(s, ST_CH_CLEAR), "clear history") < 0 ||
        storage_meta_set_int(s, "history_seq", s->next_seq) < 0 ||
        storage_meta_set_int(s, "history_floor", floor) < 0)
        return -1;
    s->min_seq = s->next_seq;
    s->floor = floor;
    return 0;
}

int storage_history_open(store *s)
{
    if (!s->history_keep)
        s->history_keep = HISTORY_KEEP_DEFAULT;
    uint64_t f;
    int has = storage_meta_get_int(s, "history_floor", &f);
    if (has < 0 || storage_history_reload(s) < 0)
        return -1;
    if (has)
        return 0;
    /* No floor yet: a new database (applied 0), one of the previous
     * version, or kv-restore's copy (its meta is gone, its rows, if any,
     * belong to another cluster's numbering). What came before applied
     * is unknown here. */
    int own;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    return storage_auto_end(s, own, storage_history_reset(s, s->applied));
}

uint64_t store_history_floor(const store *s)
{
    return s->floor;
}
uint64_t store_history_last_seq(const store *s)
{
    return s->next_seq - 1;
}
uint64_t store_history_rows(const store *s)
{
    return s->next_seq - s->min_seq;
}

void store_set_history_keep(store *s, uint64_t n)
{
    s->history_keep = n ? n : 1;
}

/* ---- writing ---- */

int storage_history_add(store *s, uint64_t idx, int del, const char *k, size_t kl, const char *v,
                        size_t vl, int expired)
{
    sqlite3_stmt *q = storage_stmt(s, ST_CH_INSERT);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)s->next_seq);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)idx);
    sqlite3_bind_text(q, 3, del ? "del" : "set", 3, SQLITE_STATIC);
    sqlite3_bind_blob(q, 4, k, (int)kl, SQLITE_STATIC);
    if (!del)
        sqlite3_bind_blob(q, 5, vl ? v : "", (int)vl, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, expired ? 1 : 0);
    if (storage_step_done(s, q, "write history") < 0)
        return -1;
    s->next_seq++;
    return 0;
}

/* Keep at least history_keep rows; trim once they exceed it by an eighth,
 * at most TRIM_BATCH_MAX rows per call (an apply), so the work per apply
 * is bounded and amortized to about one row deleted per row added. */
int storage_history_trim(store *s)
{
    uint64_t n = s->next_seq - s->min_seq, keep = s->history_keep;
    if (n <= keep + keep / 8)
        return 0;
    uint64_t drop = n - keep;
    if (drop > TRIM_BATCH_MAX)
        drop = TRIM_BATCH_MAX;
    uint64_t cut = s->min_seq + drop; /* delete seq < cut */
    sqlite3_stmt *q = storage_stmt(s, ST_CH_IDX_BEFORE);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)cut);
    int rc = sqlite3_step(q);
    uint64_t floor = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return storage_db_fail(s, "trim history");
    q = storage_stmt(s, ST_CH_TRIM);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)cut);
    if (storage_step_done(s, q, "trim history") < 0)
        return -1;
    if (floor > s->floor && storage_meta_set_int(s, "history_floor", floor) < 0)
        return -1;
    s->min_seq = cut;
    if (floor > s->floor)
        s->floor = floor;
    return 0;
}

/* ---- reading ---- */

/* The first seq whose idx > m (next_seq when none): a binary search over
 * the contiguous rows [min_seq, next_seq). -1 error. */
static int first_seq_after(store *s, uint64_t m, uint64_t *seq)
{
    uint64_t lo = s->min_seq, hi = s->next_seq; /* answer in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        sqlite3_stmt *q = storage_stmt(s, ST_CH_SEEK);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)mid);
        int rc = sqlite3_step(q);
        uint64_t at = 0, idx = 0;
        if (rc == SQLITE_ROW) {
            at = (uint64_t)sqlite3_column_int64(q, 0);
            idx = (uint64_t)sqlite3_column_int64(q, 1);
        }
        sqlite3_reset(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return storage_db_fail(s, "seek history");
        if (rc == SQLITE_DONE || idx > m)
            hi = mid; /* no row in [mid, at) : the answer is <= at */
        else
            lo = at + 1;
    }
    *seq = lo;
    return 0;
}

/* The key range of a read: [lo, hi). An exact key k is [k, k "\0"): keys
 * hold no NUL. A prefix p is [p, p with its last byte raised); an empty or
 * all-0xFF prefix runs to 1025 bytes of 0xFF, above every key. */
typedef struct key_range {
    char lo[KEY_MAX + 1], hi[KEY_MAX + 2];
    size_t lol, hil;
} key_range;

static int make_range(key_range *r, const char *k, size_t kl, int prefix)
{
    if (kl > KEY_MAX)
        return -1;
    memcpy(r->lo, k, kl);
    r->lol = kl;
    if (!prefix) {
        memcpy(r->hi, k, kl);
        r->hi[kl] = 0;
        r->hil = kl + 1;
        return 0;
    }
    size_t n = kl;
    while (n > 0 && (unsigned char)k[n - 1] == 0xFF)
        n--;
    if (n == 0) {
        memset(r->hi, 0xFF, KEY_MAX + 1);
        r->hil = KEY_MAX + 1;
        return 0;
    }
    memcpy(r->hi, k, n);
    r->hi[n - 1] = (char)((unsigned char)k[n - 1] + 1);
    r->hil = n;
    return 0;
}

static void bind_range(sqlite3_stmt *q, const key_range *r)
{
    sqlite3_bind_blob(q, 2, r->lol ? r->lo : "", (int)r->lol, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, r->hi, (int)r->hil, SQLITE_STATIC);
}

int store_changes(store *s, uint64_t from_index, uint64_t after_seq, const char *key, size_t klen,
                  int prefix, size_t limit, int (*fn)(void *arg, const store_change *c), void *arg)
{
    key_range r;
    uint64_t start;
    if (!key) {
        key = "";
        klen = 0;
        prefix = 1;
    }
    if (make_range(&r, key, klen, prefix) < 0) {
        storage_set_err(s, "read history: key too long");
        return -1;
    }
    if (first_seq_after(s, from_index, &start) < 0)
        return -1;
    if (after_seq >= start)
        start = after_seq + 1;
    sqlite3_stmt *q = storage_stmt(s, ST_CH_READ);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)start);
    bind_range(q, &r);
    sqlite3_bind_int64(q, 4, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc, visited = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_change c = {
            .seq = (uint64_t)sqlite3_column_int64(q, 0),
            .index = (uint64_t)sqlite3_column_int64(q, 1),
            .del = sqlite3_column_bytes(q, 2) == 3 && !memcmp(sqlite3_column_text(q, 2), "del", 3),
            .expired = sqlite3_column_int(q, 5),
        };
        c.key = sqlite3_column_blob(q, 3);
        c.klen = (size_t)sqlite3_column_bytes(q, 3);
        if (!c.del) {
            c.value = sqlite3_column_blob(q, 4);
            c.vlen = (size_t)sqlite3_column_bytes(q, 4);
            if (!c.value)
                c.value = "";
        }
        visited++;
        if (fn(arg, &c)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return storage_db_fail(s, "read history");
    return visited;
}

int store_changed_after(store *s, const char *key, size_t klen, int prefix, uint64_t m)
{
    if (m >= s->applied)
        return 0;
    if (!key) {
        key = "";
        klen = 0;
        prefix = 1;
    }
    if (!prefix) {
        uint64_t mod, lease;
        int found = storage_kv_lookup(s, key, klen, &mod, &lease);
        if (found < 0)
            return -1;
        /* A key that exists changed after m iff its mod index says so: a
         * delete and re-create after m would have set it. */
        if (found)
            return mod > m;
    }
    /* Deletes are known only from the history: below its floor the answer
     * is unknown, so "changed" (the caller answers now, with an index at
     * or above the floor, so the next wait can block). */
    if (m < s->floor)
        return 1;
    key_range r;
    uint64_t start;
    if (make_range(&r, key, klen, prefix) < 0) {
        storage_set_err(s, "read history: key too long");
        return -1;
    }
    if (first_seq_after(s, m, &start) < 0)
        return -1;
    sqlite3_stmt *q = storage_stmt(s, ST_CH_ANY);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)start);
    bind_range(q, &r);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return storage_db_fail(s, "read history");
    return rc == SQLITE_ROW;
}
