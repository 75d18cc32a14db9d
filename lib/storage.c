/*
 * storage.c - the shared core of the node's SQLite store (see storage.h):
 * open/close, pragmas and schema, the table of SQL statements, error
 * reporting, and the meta table. The log, the key-value state machine and
 * the snapshot file live in storage_log.c, storage_kv.c, storage_snap.c.
 *
 * Schema:
 *   meta(name TEXT PRIMARY KEY, value)   hard state ("term", "vote"),
 *        "applied", snapshot meta ("snap_index", "snap_term", "snap_conf"
 *        as a blob), and the application's small strings ("cluster",
 *        "name", ...).
 *   log(idx INTEGER PRIMARY KEY, term INTEGER, type INTEGER, data BLOB)
 *   kv(key BLOB PRIMARY KEY, value BLOB, mod_index INTEGER, lease INTEGER)
 *        lease 0 = none; index kv_lease(lease, key) WHERE lease != 0, so
 *        a revoke finds its keys and a set without a lease pays nothing.
 *   leases(id INTEGER PRIMARY KEY, ttl_ms INTEGER)   id = the grant's index
 *   changes(seq INTEGER PRIMARY KEY, idx, op 'set'|'del', key, value,
 *        expired)   the change history (storage_history.c); meta
 *        "history_floor" and "history_seq" go with it.
 * A database of the previous version (kv without lease, no leases or
 * changes table) is migrated at open: ALTER TABLE kv ADD COLUMN lease, the
 * new tables created, history_floor = its applied index.
 */
#include "storage_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stmt_sql[ST_N] = {
    [ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(name, value) VALUES(?1, ?2)",
    [ST_LOG_INSERT] = "INSERT OR REPLACE INTO log(idx, term, type, data) VALUES(?1, ?2, ?3, ?4)",
    [ST_LOG_TRUNCATE] = "DELETE FROM log WHERE idx >= ?1",
    [ST_LOG_COMPACT] = "DELETE FROM log WHERE idx <= ?1",
    [ST_LOG_COMPACT_SOME] =
        "DELETE FROM log WHERE idx <= min(?1, (SELECT min(idx) FROM log) + ?2 - 1)",
    [ST_LOG_LOAD] = "SELECT idx, term, type, data FROM log WHERE idx > ?1 ORDER BY idx",
    [ST_LOG_RANGE] = "SELECT idx, term, type, data FROM log WHERE idx >= ?1 AND idx <= ?2 "
                     "ORDER BY idx",
    [ST_KV_GET] = "SELECT value, mod_index, lease FROM kv WHERE key = ?1",
    [ST_KV_SET] = "INSERT OR REPLACE INTO kv(key, value, mod_index, lease) VALUES(?1, ?2, ?3, ?4)",
    [ST_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [ST_KV_SCAN] = "SELECT key, value, mod_index FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
    [ST_KV_SCAN_AFTER] =
        "SELECT key, value, mod_index FROM kv WHERE key >= ?1 AND key > ?3 ORDER BY key LIMIT ?2",
    [ST_KV_COUNT] = "SELECT count(*) FROM kv",
    [ST_KV_ALL] = "SELECT key, value, mod_index, lease FROM kv ORDER BY key",
    [ST_KV_CLEAR] = "DELETE FROM kv",
    [ST_LOG_CLEAR] = "DELETE FROM log",
    /* "lease != 0" lets the planner use the partial index kv_lease. */
    [ST_KV_BY_LEASE] = "SELECT key FROM kv WHERE lease = ?1 AND lease != 0 AND key > ?2"
                       " ORDER BY lease, key LIMIT ?3",
    [ST_LEASE_GET] = "SELECT ttl_ms FROM leases WHERE id = ?1",
    [ST_LEASE_PUT] = "INSERT OR REPLACE INTO leases(id, ttl_ms) VALUES(?1, ?2)",
    [ST_LEASE_DEL] = "DELETE FROM leases WHERE id = ?1",
    [ST_LEASE_SCAN] = "SELECT id, ttl_ms FROM leases WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_LEASE_COUNT] = "SELECT count(*) FROM leases",
    [ST_LEASE_ALL] = "SELECT id, ttl_ms FROM leases ORDER BY id",
    [ST_LEASE_CLEAR] = "DELETE FROM leases",
    [ST_CH_INSERT] = "INSERT INTO changes(seq, idx, op, key, value, expired)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_CH_TRIM] = "DELETE FROM changes WHERE seq < ?1",
    [ST_CH_IDX_BEFORE] = "SELECT idx FROM changes WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
    [ST_CH_BOUNDS] = "SELECT min(seq), max(seq) FROM changes",
    [ST_CH_SEEK] = "SELECT seq, idx FROM changes WHERE seq >= ?1 ORDER BY seq LIMIT 1",
    [ST_CH_READ] = "SELECT seq, idx, op, key, value, expired FROM changes"
                   " WHERE seq >= ?1 AND key >= ?2 AND key < ?3 ORDER BY seq LIMIT ?4",
    [ST_CH_ANY] = "SELECT 1 FROM changes WHERE seq >= ?1 AND key >= ?2 AND key < ?3 LIMIT 1",
    [ST_CH_CLEAR] = "DELETE FROM changes",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};
static char open_err[1200];

const char *store_open_error(void)
{
    return open_err;
}
const char *store_error(const store *s)
{
    return s ? s->err : open_err;
}

void storage_set_err(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

int storage_db_fail(store *s, const char *what)
{
    storage_set_err(s, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

sqlite3_stmt *storage_stmt(store *s, int which)
{
    sqlite3_stmt *q = s->st[which];
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return q;
}

/* Run a statement that returns no rows. */
int storage_step_done(store *s, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return storage_db_fail(s, what);
    return 0;
}

int storage_exec(store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        storage_set_err(s, "%s: %s", sql, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* ---- meta helpers ---- */

int storage_meta_get_int(store *s, const char *name, uint64_t *v)
{
    sqlite3_stmt *q = storage_stmt(s, ST_META_GET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *v = (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        return 1;
    }
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) {
        *v = 0;
        return 0;
    }
    return storage_db_fail(s, "read meta");
}

int storage_meta_set_int(store *s, const char *name, uint64_t v)
{
    sqlite3_stmt *q = storage_stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)v);
    return storage_step_done(s, q, "write meta");
}

int storage_meta_set_blob(store *s, const char *name, const void *p, size_t n)
{
    sqlite3_stmt *q = storage_stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, n ? p : "", (int)n, SQLITE_TRANSIENT);
    return storage_step_done(s, q, "write meta");
}
/* ---- open / close ---- */

/* 1 when table has column col, 0 not, -1 error. */
static int has_column(store *s, const char *table, const char *col)
{
    char sql[128];
    sqlite3_stmt *q = NULL;
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return storage_db_fail(s, "table_info");
    int rc, found = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (!strcmp((const char *)sqlite3_column_text(q, 1), col))
            found = 1;
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return storage_db_fail(s, "table_info");
    return found;
}

/* The tables, created or migrated from the previous version in one
 * transaction. */
static int create_schema(store *s)
{
    if (storage_exec(
            s, "BEGIN IMMEDIATE;"
               "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value);"
               "CREATE TABLE IF NOT EXISTS log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
               " type INTEGER NOT NULL, data BLOB);"
               "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL,"
               " mod_index INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0);"
               "CREATE TABLE IF NOT EXISTS leases(id INTEGER PRIMARY KEY,"
               " ttl_ms INTEGER NOT NULL);"
               "CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY,"
               " idx INTEGER NOT NULL, op TEXT NOT NULL, key BLOB NOT NULL, value BLOB,"
               " expired INTEGER NOT NULL DEFAULT 0);") < 0)
        return -1;
    int has = has_column(s, "kv", "lease");
    if (has < 0 ||
        (!has &&
         storage_exec(s, "ALTER TABLE kv ADD COLUMN lease INTEGER NOT NULL DEFAULT 0") < 0) ||
        storage_exec(s, "CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease, key) WHERE lease != 0;"
                        "COMMIT") < 0) {
        storage_exec(s, "ROLLBACK");
        return -1;
    }
    return 0;
}

store *store_open(const char *path)
{
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        snprintf(open_err, sizeof open_err, "%s: out of memory", path);
        free(s);
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(open_err, sizeof open_err, "%s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* 2 KiB pages in a new database (an existing one keeps its own): a
     * write dirties about one kv leaf, and each dirty page is a WAL frame
     * and later a checkpoint write; 2 KiB pages cut the bytes written per
     * write by ~22% against 4 KiB, with no loss of rate
     * (bench/results/2026-12-02-scale.md). */
    if (storage_exec(s, "PRAGMA page_size=" STORE_PAGE_SIZE_STR) < 0 ||
        storage_exec(s, "PRAGMA journal_mode=WAL") < 0 ||
        storage_exec(s, "PRAGMA synchronous=FULL") < 0 || create_schema(s) < 0) {
        snprintf(open_err, sizeof open_err, "%s: %s", path, s->err);
        goto fail;
    }
    /* WAL must really be on; a read-only or odd filesystem may refuse. */
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(open_err, sizeof open_err, "%s: prepare: %s", path, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    if (storage_meta_get_int(s, "applied", &s->applied) < 0 || storage_history_open(s) < 0) {
        snprintf(open_err, sizeof open_err, "%s: %s", path, s->err);
        goto fail;
    }
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->in_txn && s->st[ST_ROLLBACK])
        store_rollback(s);
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}
/* ---- meta ---- */

int store_meta_get(store *s, const char *name, char *buf, size_t cap)
{
    sqlite3_stmt *q = storage_stmt(s, ST_META_GET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        if (cap)
            buf[0] = 0;
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return storage_db_fail(s, "read meta");
    }
    const unsigned char *t = sqlite3_column_text(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    if (!t || n + 1 > cap) {
        sqlite3_reset(q);
        storage_set_err(s, "meta %s: value too long (%zu bytes)", name, n);
        return -1;
    }
    memcpy(buf, t, n);
    buf[n] = 0;
    sqlite3_reset(q);
    return 1;
}

int store_meta_set(store *s, const char *name, const char *value)
{
    sqlite3_stmt *q = storage_stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    return storage_step_done(s, q, "write meta");
}

int64_t store_memory_used(void)
{
    return (int64_t)sqlite3_memory_used();
}
