/*
 * storage.c - SQLite storage for one keyval node (see storage.h).
 *
 * Schema:
 *   meta(name TEXT PRIMARY KEY, value)   hard state ("term", "vote"),
 *        "applied", snapshot meta ("snap_index", "snap_term", "snap_conf"
 *        as a blob), and the application's small strings ("cluster",
 *        "name", ...).
 *   log(idx INTEGER PRIMARY KEY, term INTEGER, type INTEGER, data BLOB)
 *   kv(key BLOB PRIMARY KEY, value BLOB, mod_index INTEGER)
 *
 * Snapshot file format (all integers big-endian):
 *   magic    "KVSNAP01"                       8 bytes
 *   index    u64, term u64
 *   conf_len u32, conf bytes                  (see conf_encode below)
 *   count    u64                              number of records
 *   records  klen u32, key, vlen u32, value, mod_index u64
 *   trailer  "KVSNEND!" 8 bytes, checksum u64 = FNV-1a 64 of every byte
 *            before the checksum (magic .. trailer)
 * A file is written to PATH.tmp, fsynced, renamed to PATH and the directory
 * fsynced. Install verifies the whole file (lengths and checksum) before it
 * touches the database.
 *
 * Config encoding (snap_conf and snapshot header): n u32, then per node
 * id u64, voter u8, meta_len u16, meta bytes. Encoded here rather than with
 * raft_config_encode so storage does not depend on the core.
 */
#include "storage.h"
#include "codec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX 1024

enum {
    ST_META_GET,
    ST_META_SET,
    ST_LOG_INSERT,
    ST_LOG_TRUNCATE,
    ST_LOG_COMPACT,
    ST_LOG_LOAD,
    ST_KV_GET,
    ST_KV_SET,
    ST_KV_DEL,
    ST_KV_SCAN,
    ST_KV_SCAN_AFTER,
    ST_KV_COUNT,
    ST_KV_ALL,
    ST_KV_CLEAR,
    ST_LOG_CLEAR,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_N
};

static const char *const stmt_sql[ST_N] = {
    [ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(name, value) VALUES(?1, ?2)",
    [ST_LOG_INSERT] = "INSERT OR REPLACE INTO log(idx, term, type, data) VALUES(?1, ?2, ?3, ?4)",
    [ST_LOG_TRUNCATE] = "DELETE FROM log WHERE idx >= ?1",
    [ST_LOG_COMPACT] = "DELETE FROM log WHERE idx <= ?1",
    [ST_LOG_LOAD] = "SELECT idx, term, type, data FROM log WHERE idx > ?1 ORDER BY idx",
    [ST_KV_GET] = "SELECT value, mod_index FROM kv WHERE key = ?1",
    [ST_KV_SET] = "INSERT OR REPLACE INTO kv(key, value, mod_index) VALUES(?1, ?2, ?3)",
    [ST_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [ST_KV_SCAN] = "SELECT key, value, mod_index FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
    [ST_KV_SCAN_AFTER] = "SELECT key, value, mod_index FROM kv WHERE key >= ?1 AND key > ?3 ORDER BY key LIMIT ?2",
    [ST_KV_COUNT] = "SELECT count(*) FROM kv",
    [ST_KV_ALL] = "SELECT key, value, mod_index FROM kv ORDER BY key",
    [ST_KV_CLEAR] = "DELETE FROM kv",
    [ST_LOG_CLEAR] = "DELETE FROM log",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    int in_txn;
    int lazy;          /* this transaction commits with synchronous=NORMAL */
    uint64_t applied;
    int applied_dirty; /* applied moved in this transaction; written at commit */
    char err[512];
};

static char open_err[1200];

const char *store_open_error(void) { return open_err; }
const char *store_error(const store *s) { return s ? s->err : open_err; }

static void set_err(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static int db_fail(store *s, const char *what)
{
    set_err(s, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

static sqlite3_stmt *stmt(store *s, int which)
{
    sqlite3_stmt *q = s->st[which];
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return q;
}

/* Run a statement that returns no rows. */
static int step_done(store *s, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_fail(s, what);
    return 0;
}

static int exec_sql(store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(s, "%s: %s", sql, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* ---- meta helpers ---- */

static int meta_get_int(store *s, const char *name, uint64_t *v)
{
    sqlite3_stmt *q = stmt(s, ST_META_GET);
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
    return db_fail(s, "read meta");
}

static int meta_set_int(store *s, const char *name, uint64_t v)
{
    sqlite3_stmt *q = stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)v);
    return step_done(s, q, "write meta");
}

static int meta_set_blob(store *s, const char *name, const void *p, size_t n)
{
    sqlite3_stmt *q = stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, n ? p : "", (int)n, SQLITE_TRANSIENT);
    return step_done(s, q, "write meta");
}

/* ---- config encoding ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

#define CONF_MAX (4 + RAFT_MAX_NODES * (8 + 1 + 2 + RAFT_META_MAX))

static size_t conf_encode(const raft_config *c, uint8_t *buf)
{
    size_t o = 0;
    uint32_t n = c->n > RAFT_MAX_NODES ? RAFT_MAX_NODES : c->n;
    put32(buf, n);
    o = 4;
    for (uint32_t i = 0; i < n; i++) {
        const raft_node *nd = &c->nodes[i];
        size_t ml = strnlen(nd->meta, RAFT_META_MAX - 1);
        put64(buf + o, nd->id);
        buf[o + 8] = nd->voter;
        buf[o + 9] = (uint8_t)(ml >> 8);
        buf[o + 10] = (uint8_t)ml;
        memcpy(buf + o + 11, nd->meta, ml);
        o += 11 + ml;
    }
    return o;
}

static int conf_decode(raft_config *c, const uint8_t *p, size_t len)
{
    memset(c, 0, sizeof *c);
    if (len < 4)
        return -1;
    uint32_t n = get32(p);
    if (n > RAFT_MAX_NODES)
        return -1;
    size_t o = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - o < 11)
            return -1;
        raft_node *nd = &c->nodes[i];
        nd->id = get64(p + o);
        nd->voter = p[o + 8];
        size_t ml = (size_t)p[o + 9] << 8 | p[o + 10];
        o += 11;
        if (ml >= RAFT_META_MAX || len - o < ml)
            return -1;
        memcpy(nd->meta, p + o, ml);
        nd->meta[ml] = 0;
        o += ml;
    }
    if (o != len)
        return -1;
    c->n = n;
    return 0;
}

/* ---- open / close ---- */

store *store_open(const char *path)
{
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        snprintf(open_err, sizeof open_err, "%s: out of memory", path);
        free(s);
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(open_err, sizeof open_err, "%s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec_sql(s, "PRAGMA journal_mode=WAL") < 0 ||
        exec_sql(s, "PRAGMA synchronous=FULL") < 0 ||
        exec_sql(s, "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value);"
                    "CREATE TABLE IF NOT EXISTS log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
                    " type INTEGER NOT NULL, data BLOB);"
                    "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL,"
                    " mod_index INTEGER NOT NULL);") < 0) {
        snprintf(open_err, sizeof open_err, "%s: %s", path, s->err);
        goto fail;
    }
    /* WAL must really be on; a read-only or odd filesystem may refuse. */
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->st[i], NULL) != SQLITE_OK) {
            snprintf(open_err, sizeof open_err, "%s: prepare: %s", path,
                     sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    if (meta_get_int(s, "applied", &s->applied) < 0) {
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

/* ---- transactions ---- */

int store_begin(store *s)
{
    if (s->in_txn) {
        set_err(s, "begin: a transaction is already open");
        return -1;
    }
    if (step_done(s, stmt(s, ST_BEGIN), "begin") < 0)
        return -1;
    s->in_txn = 1;
    return 0;
}

int store_begin_lazy(store *s)
{
    if (!s->in_txn && exec_sql(s, "PRAGMA synchronous=NORMAL") < 0)
        return -1;
    if (store_begin(s) < 0) {
        exec_sql(s, "PRAGMA synchronous=FULL");
        return -1;
    }
    s->lazy = 1;
    return 0;
}

/* After a lazy transaction: back to synchronous=FULL for the next. */
static int end_lazy(store *s)
{
    if (!s->lazy)
        return 0;
    s->lazy = 0;
    return exec_sql(s, "PRAGMA synchronous=FULL");
}

int store_commit(store *s)
{
    if (!s->in_txn) {
        set_err(s, "commit: no transaction open");
        return -1;
    }
    /* The applied index of a batch of store_apply calls, written once. */
    if (s->applied_dirty) {
        if (meta_set_int(s, "applied", s->applied) < 0) {
            char keep[sizeof s->err];
            memcpy(keep, s->err, sizeof keep);
            store_rollback(s);
            memcpy(s->err, keep, sizeof keep);
            return -1;
        }
        s->applied_dirty = 0;
    }
    if (step_done(s, stmt(s, ST_COMMIT), "commit") < 0) {
        store_rollback(s);
        return -1;
    }
    s->in_txn = 0;
    return end_lazy(s);
}

void store_rollback(store *s)
{
    if (!s->in_txn)
        return;
    sqlite3_stmt *q = stmt(s, ST_ROLLBACK);
    sqlite3_step(q);
    sqlite3_reset(q);
    s->in_txn = 0;
    s->applied_dirty = 0;
    end_lazy(s);
    /* The cached applied index may be ahead of the database now. */
    uint64_t a;
    if (meta_get_int(s, "applied", &a) >= 0)
        s->applied = a;
}

/* Functions that must be atomic open their own transaction when the caller
 * has none. */
static int auto_begin(store *s, int *own)
{
    *own = 0;
    if (s->in_txn)
        return 0;
    if (store_begin(s) < 0)
        return -1;
    *own = 1;
    return 0;
}

static int auto_end(store *s, int own, int ok)
{
    if (!own)
        return ok;
    if (ok < 0) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        store_rollback(s);
        memcpy(s->err, keep, sizeof keep);
        return -1;
    }
    return store_commit(s);
}

/* ---- meta ---- */

int store_meta_get(store *s, const char *name, char *buf, size_t cap)
{
    sqlite3_stmt *q = stmt(s, ST_META_GET);
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
        return db_fail(s, "read meta");
    }
    const unsigned char *t = sqlite3_column_text(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    if (!t || n + 1 > cap) {
        sqlite3_reset(q);
        set_err(s, "meta %s: value too long (%zu bytes)", name, n);
        return -1;
    }
    memcpy(buf, t, n);
    buf[n] = 0;
    sqlite3_reset(q);
    return 1;
}

int store_meta_set(store *s, const char *name, const char *value)
{
    sqlite3_stmt *q = stmt(s, ST_META_SET);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    return step_done(s, q, "write meta");
}

/* ---- hard state and log ---- */

int store_save_hs(store *s, const raft_hard_state *hs)
{
    int own, ok;
    if (auto_begin(s, &own) < 0)
        return -1;
    ok = meta_set_int(s, "term", hs->term);
    if (ok == 0)
        ok = meta_set_int(s, "vote", hs->vote);
    return auto_end(s, own, ok);
}

int store_truncate(store *s, uint64_t from)
{
    sqlite3_stmt *q = stmt(s, ST_LOG_TRUNCATE);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
    return step_done(s, q, "truncate log");
}

int store_compact(store *s, uint64_t upto)
{
    sqlite3_stmt *q = stmt(s, ST_LOG_COMPACT);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)upto);
    return step_done(s, q, "compact log");
}

int store_append(store *s, const raft_entry *e, size_t n)
{
    int own, ok = 0;
    if (auto_begin(s, &own) < 0)
        return -1;
    for (size_t i = 0; i < n && ok == 0; i++) {
        if (e[i].index == 0 || e[i].index > INT64_MAX) {
            set_err(s, "append: bad index %llu", (unsigned long long)e[i].index);
            ok = -1;
            break;
        }
        sqlite3_stmt *q = stmt(s, ST_LOG_INSERT);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)e[i].index);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)e[i].term);
        sqlite3_bind_int(q, 3, e[i].type);
        if (e[i].len)
            sqlite3_bind_blob(q, 4, e[i].data, (int)e[i].len, SQLITE_STATIC);
        else
            sqlite3_bind_zeroblob(q, 4, 0);
        ok = step_done(s, q, "append log");
    }
    return auto_end(s, own, ok);
}

/* ---- load ---- */

void store_loaded_free(store_loaded *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_entries; i++)
        free(l->entries[i].data);
    free(l->entries);
    l->entries = NULL;
    l->n_entries = 0;
}

static int load_snap_meta(store *s, int *has, raft_snap_meta *m)
{
    memset(m, 0, sizeof *m);
    *has = 0;
    if (meta_get_int(s, "snap_index", &m->index) < 0 ||
        meta_get_int(s, "snap_term", &m->term) < 0)
        return -1;
    if (m->index == 0)
        return 0;
    sqlite3_stmt *q = stmt(s, ST_META_GET);
    sqlite3_bind_text(q, 1, "snap_conf", -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        if (rc == SQLITE_DONE) {
            set_err(s, "snapshot %llu: configuration missing",
                    (unsigned long long)m->index);
            return -1;
        }
        return db_fail(s, "read snapshot meta");
    }
    const void *p = sqlite3_column_blob(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    int bad = conf_decode(&m->conf, p, n);
    sqlite3_reset(q);
    if (bad) {
        set_err(s, "snapshot %llu: configuration corrupt", (unsigned long long)m->index);
        return -1;
    }
    *has = 1;
    return 0;
}

int store_load(store *s, store_loaded *out)
{
    memset(out, 0, sizeof *out);
    if (meta_get_int(s, "term", &out->hs.term) < 0 ||
        meta_get_int(s, "vote", &out->hs.vote) < 0 ||
        meta_get_int(s, "applied", &out->applied) < 0 ||
        load_snap_meta(s, &out->has_snap, &out->snap) < 0)
        return -1;
    s->applied = out->applied;
    size_t cap = 0;
    uint64_t base = out->has_snap ? out->snap.index : 0;
    sqlite3_stmt *q = stmt(s, ST_LOG_LOAD);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)base);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (out->n_entries == cap) {
            size_t nc = cap ? cap * 2 : 256;
            raft_entry *ne = realloc(out->entries, nc * sizeof *ne);
            if (!ne) {
                set_err(s, "load log: out of memory");
                goto fail;
            }
            out->entries = ne;
            cap = nc;
        }
        raft_entry *e = &out->entries[out->n_entries];
        memset(e, 0, sizeof *e);
        e->index = (uint64_t)sqlite3_column_int64(q, 0);
        e->term = (uint64_t)sqlite3_column_int64(q, 1);
        e->type = (uint8_t)sqlite3_column_int(q, 2);
        const void *d = sqlite3_column_blob(q, 3);
        size_t n = (size_t)sqlite3_column_bytes(q, 3);
        if (n > UINT32_MAX) {
            set_err(s, "load log: entry %llu too large", (unsigned long long)e->index);
            goto fail;
        }
        if (n) {
            e->data = malloc(n);
            if (!e->data) {
                set_err(s, "load log: out of memory");
                goto fail;
            }
            memcpy(e->data, d, n);
        }
        e->len = (uint32_t)n;
        out->n_entries++;
        uint64_t want = out->n_entries == 1 ? e->index : out->entries[out->n_entries - 2].index + 1;
        if (e->index != want) {
            set_err(s, "load log: gap before index %llu", (unsigned long long)e->index);
            goto fail;
        }
        if (out->n_entries == 1 && base && e->index != base + 1) {
            set_err(s, "load log: first entry %llu does not follow snapshot %llu",
                    (unsigned long long)e->index, (unsigned long long)base);
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(s, "load log");
        goto fail;
    }
    sqlite3_reset(q);
    return 0;
fail:
    sqlite3_reset(q);
    store_loaded_free(out);
    return -1;
}

/* ---- applying commands ---- */

uint64_t store_applied(const store *s) { return s->applied; }

static int valid_key(const char *k, size_t n)
{
    return n >= 1 && n <= KEY_MAX && memchr(k, 0, n) == NULL;
}

/* 1 found, 0 absent, -1 error. */
static int kv_mod_index(store *s, const char *k, size_t n, uint64_t *idx)
{
    sqlite3_stmt *q = stmt(s, ST_KV_GET);
    sqlite3_bind_blob(q, 1, k, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *idx = (uint64_t)sqlite3_column_int64(q, 1);
        sqlite3_reset(q);
        return 1;
    }
    sqlite3_reset(q);
    *idx = 0;
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail(s, "read kv");
}

/* Check a command's shape. 0 valid, -1 malformed. */
static int check_command(json_t *cmd)
{
    if (!json_is_object(cmd))
        return -1;
    const char *name;
    json_t *v;
    json_object_foreach(cmd, name, v) {
        if (strcmp(name, "set") && strcmp(name, "del") && strcmp(name, "if"))
            return -1;
    }
    json_t *set = json_object_get(cmd, "set");
    if (set) {
        if (!json_is_object(set))
            return -1;
        json_object_foreach(set, name, v) {
            if (!valid_key(name, strlen(name)) || !json_is_string(v))
                return -1;
        }
    }
    json_t *del = json_object_get(cmd, "del");
    if (del) {
        size_t i;
        if (!json_is_array(del))
            return -1;
        json_array_foreach(del, i, v) {
            if (!json_is_string(v) ||
                !valid_key(json_string_value(v), json_string_length(v)))
                return -1;
        }
    }
    json_t *cond = json_object_get(cmd, "if");
    if (cond) {
        size_t i;
        if (!json_is_array(cond))
            return -1;
        json_array_foreach(cond, i, v) {
            json_t *k = json_object_get(v, "key");
            json_t *ix = json_object_get(v, "index");
            if (!json_is_object(v) || json_object_size(v) != 2 ||
                !json_is_string(k) || !json_is_integer(ix) ||
                json_integer_value(ix) < 0 ||
                !valid_key(json_string_value(k), json_string_length(k)))
                return -1;
        }
    }
    return 0;
}

static int set_applied(store *s, uint64_t idx)
{
    if (meta_set_int(s, "applied", idx) < 0)
        return -1;
    s->applied = idx;
    s->applied_dirty = 0;
    return 0;
}

/* {"set":{...}} of plain strings (codec_fast_set): applied without
 * jansson. 1 done, 0 not that shape, -1 error. */
#define FAST_SET_MAX 64
static int apply_fast_set(store *s, const raft_entry *e, store_result *res)
{
    codec_kv kv[FAST_SET_MAX];
    size_t n = 0, off, len;
    if (!e->len || !codec_fast_set((const char *)e->data, e->len, 0, kv, FAST_SET_MAX, KEY_MAX,
                                   SIZE_MAX, &n, &off, &len))
        return 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *q = stmt(s, ST_KV_SET);
        sqlite3_bind_blob(q, 1, kv[i].k, (int)kv[i].kl, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, kv[i].vl ? kv[i].v : "", (int)kv[i].vl, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)e->index);
        if (step_done(s, q, "set key") < 0)
            return -1;
    }
    res->code = 200;
    return 1;
}

static int apply_normal(store *s, const raft_entry *e, store_result *res)
{
    int fast = apply_fast_set(s, e, res);
    if (fast != 0)
        return fast < 0 ? -1 : 0;
    json_error_t jerr;
    json_t *cmd = NULL;
    if (e->len)
        cmd = json_loadb((const char *)e->data, e->len,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!cmd || check_command(cmd) < 0) {
        json_decref(cmd);
        res->code = 400;
        return 0;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cmd, "if"), i, v) {
        json_t *k = json_object_get(v, "key");
        const char *key = json_string_value(k);
        size_t klen = json_string_length(k);
        uint64_t want = (uint64_t)json_integer_value(json_object_get(v, "index"));
        uint64_t cur;
        int found = kv_mod_index(s, key, klen, &cur);
        if (found < 0) {
            json_decref(cmd);
            return -1;
        }
        if ((want == 0 && found) || (want > 0 && (!found || cur != want))) {
            res->code = 412;
            memcpy(res->key, key, klen);
            res->key[klen] = 0;
            res->index = found ? cur : 0;
            json_decref(cmd);
            return 0;
        }
    }
    json_array_foreach(json_object_get(cmd, "del"), i, v) {
        sqlite3_stmt *q = stmt(s, ST_KV_DEL);
        sqlite3_bind_blob(q, 1, json_string_value(v), (int)json_string_length(v),
                          SQLITE_STATIC);
        if (step_done(s, q, "delete key") < 0) {
            json_decref(cmd);
            return -1;
        }
    }
    const char *name;
    json_object_foreach(json_object_get(cmd, "set"), name, v) {
        sqlite3_stmt *q = stmt(s, ST_KV_SET);
        size_t vlen = json_string_length(v);
        sqlite3_bind_blob(q, 1, name, (int)strlen(name), SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, vlen ? json_string_value(v) : "", (int)vlen,
                          SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)e->index);
        if (step_done(s, q, "set key") < 0) {
            json_decref(cmd);
            return -1;
        }
    }
    json_decref(cmd);
    res->code = 200;
    return 0;
}

int store_apply(store *s, const raft_entry *e, store_result *res)
{
    store_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->code = 200;
    if (e->index == 0 || e->index > INT64_MAX) {
        set_err(s, "apply: bad index %llu", (unsigned long long)e->index);
        return -1;
    }
    if (e->index <= s->applied) {
        set_err(s, "apply: index %llu already applied (applied %llu)",
                (unsigned long long)e->index, (unsigned long long)s->applied);
        return -1;
    }
    int own, ok = 0;
    uint64_t old = s->applied;
    if (auto_begin(s, &own) < 0)
        return -1;
    if (e->type == RAFT_ENTRY_NORMAL)
        ok = apply_normal(s, e, res);
    /* Inside the caller's transaction the applied index row is written
     * once, by store_commit, for the whole batch: same transaction, one
     * row update instead of one per entry. */
    if (ok == 0 && own)
        ok = set_applied(s, e->index);
    else if (ok == 0) {
        s->applied = e->index;
        s->applied_dirty = 1;
    }
    ok = auto_end(s, own, ok);
    if (ok < 0 && own)
        s->applied = old;
    return ok;
}

/* ---- reads ---- */

int store_get(store *s, const char *key, size_t klen, char **value,
              size_t *vlen, uint64_t *mod_index)
{
    sqlite3_stmt *q = stmt(s, ST_KV_GET);
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return db_fail(s, "read kv");
    }
    const void *p = sqlite3_column_blob(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    if (mod_index)
        *mod_index = (uint64_t)sqlite3_column_int64(q, 1);
    if (value) {
        char *v = malloc(n + 1);
        if (!v) {
            sqlite3_reset(q);
            set_err(s, "read kv: out of memory");
            return -1;
        }
        if (n)
            memcpy(v, p, n);
        v[n] = 0;
        *value = v;
    }
    if (vlen)
        *vlen = n;
    sqlite3_reset(q);
    return 1;
}

int store_scan(store *s, const char *prefix, const char *after, size_t limit,
               int (*fn)(void *arg, const char *k, size_t klen,
                         const char *v, size_t vlen, uint64_t mod_index),
               void *arg)
{
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    sqlite3_stmt *q = stmt(s, after ? ST_KV_SCAN_AFTER : ST_KV_SCAN);
    sqlite3_bind_blob(q, 1, prefix, (int)plen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    if (after)
        sqlite3_bind_blob(q, 3, after, (int)strlen(after), SQLITE_STATIC);
    int rc, visited = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *k = sqlite3_column_blob(q, 0);
        size_t kl = (size_t)sqlite3_column_bytes(q, 0);
        if (kl < plen || (plen && memcmp(k, prefix, plen) != 0)) {
            rc = SQLITE_DONE;
            break;
        }
        const char *v = sqlite3_column_blob(q, 1);
        size_t vl = (size_t)sqlite3_column_bytes(q, 1);
        uint64_t mi = (uint64_t)sqlite3_column_int64(q, 2);
        visited++;
        if (fn(arg, k ? k : "", kl, v ? v : "", vl, mi)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_fail(s, "scan kv");
    return visited;
}

int64_t store_count(store *s)
{
    sqlite3_stmt *q = stmt(s, ST_KV_COUNT);
    int rc = sqlite3_step(q);
    int64_t n = -1;
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    else
        db_fail(s, "count kv");
    sqlite3_reset(q);
    return n;
}

/* ---- snapshots ---- */

#define FNV_OFF 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

typedef struct snap_out {
    FILE *f;
    uint64_t sum;
    int err;
} snap_out;

static void sw(snap_out *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        o->sum = (o->sum ^ b[i]) * FNV_PRIME;
    if (n && fwrite(p, 1, n, o->f) != n)
        o->err = 1;
}
static void sw32(snap_out *o, uint32_t v) { uint8_t b[4]; put32(b, v); sw(o, b, 4); }
static void sw64(snap_out *o, uint64_t v) { uint8_t b[8]; put64(b, v); sw(o, b, 8); }

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int save_snap_meta(store *s, const raft_snap_meta *meta)
{
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    if (meta_set_int(s, "snap_index", meta->index) < 0 ||
        meta_set_int(s, "snap_term", meta->term) < 0 ||
        meta_set_blob(s, "snap_conf", cbuf, cl) < 0)
        return -1;
    return 0;
}

int store_snapshot_write(store *s, const char *path, const raft_snap_meta *meta)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        set_err(s, "snapshot %s: path too long", path);
        return -1;
    }
    if (meta->index != s->applied) {
        set_err(s, "snapshot: meta index %llu is not the applied index %llu",
                (unsigned long long)meta->index, (unsigned long long)s->applied);
        return -1;
    }
    int own;
    if (auto_begin(s, &own) < 0) /* a consistent view of kv */
        return -1;
    snap_out o = {.f = fopen(tmp, "wb"), .sum = FNV_OFF};
    if (!o.f) {
        set_err(s, "snapshot %s: %s", tmp, strerror(errno));
        return auto_end(s, own, -1);
    }
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    int64_t count = store_count(s);
    if (count < 0)
        goto fail;
    sw(&o, "KVSNAP01", 8);
    sw64(&o, meta->index);
    sw64(&o, meta->term);
    sw32(&o, (uint32_t)cl);
    sw(&o, cbuf, cl);
    sw64(&o, (uint64_t)count);
    sqlite3_stmt *q = stmt(s, ST_KV_ALL);
    int rc;
    int64_t seen = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && !o.err) {
        size_t kl = (size_t)sqlite3_column_bytes(q, 0);
        const void *k = sqlite3_column_blob(q, 0);
        sw32(&o, (uint32_t)kl);
        sw(&o, k, kl);
        size_t vl = (size_t)sqlite3_column_bytes(q, 1);
        const void *v = sqlite3_column_blob(q, 1);
        sw32(&o, (uint32_t)vl);
        sw(&o, v, vl);
        sw64(&o, (uint64_t)sqlite3_column_int64(q, 2));
        seen++;
    }
    sqlite3_reset(q);
    if (!o.err && rc != SQLITE_DONE) {
        db_fail(s, "snapshot read kv");
        goto fail;
    }
    if (seen != count) {
        set_err(s, "snapshot: kv table changed while writing");
        goto fail;
    }
    sw(&o, "KVSNEND!", 8);
    uint8_t sb[8];
    put64(sb, o.sum);
    if (fwrite(sb, 1, 8, o.f) != 8)
        o.err = 1;
    if (o.err || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
        set_err(s, "snapshot %s: write: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(o.f) != 0) {
        o.f = NULL;
        set_err(s, "snapshot %s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    o.f = NULL;
    if (rename(tmp, path) != 0) {
        set_err(s, "snapshot rename %s: %s", path, strerror(errno));
        goto fail;
    }
    fsync_dir_of(path);
    if (save_snap_meta(s, meta) < 0)
        return auto_end(s, own, -1);
    return auto_end(s, own, 0);
fail:
    if (o.f)
        fclose(o.f);
    unlink(tmp);
    return auto_end(s, own, -1);
}

/* Reader over a snapshot file that checksums what it reads. */
typedef struct snap_in {
    FILE *f;
    uint64_t sum;
    int err;     /* short read */
    uint8_t *buf;
    size_t cap;
} snap_in;

static int sr(snap_in *in, void *p, size_t n)
{
    if (n && fread(p, 1, n, in->f) != n) {
        in->err = 1;
        return -1;
    }
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        in->sum = (in->sum ^ b[i]) * FNV_PRIME;
    return 0;
}
static int sr32(snap_in *in, uint32_t *v)
{
    uint8_t b[4];
    if (sr(in, b, 4) < 0)
        return -1;
    *v = get32(b);
    return 0;
}
static int sr64(snap_in *in, uint64_t *v)
{
    uint8_t b[8];
    if (sr(in, b, 8) < 0)
        return -1;
    *v = get64(b);
    return 0;
}
static int sr_buf(snap_in *in, size_t n)
{
    if (n + 1 > in->cap) {
        size_t nc = n + 1 < 4096 ? 4096 : n + 1;
        uint8_t *nb = realloc(in->buf, nc);
        if (!nb)
            return -1;
        in->buf = nb;
        in->cap = nc;
    }
    return sr(in, in->buf, n);
}

#define SNAP_VALUE_MAX (64u * 1024 * 1024)

/* Read and check a snapshot file. With insert set, insert every record into
 * kv. Returns 0 ok, -1 error (message set). */
static int snap_pass(store *s, const char *path, const raft_snap_meta *meta, int insert)
{
    snap_in in = {.f = fopen(path, "rb"), .sum = FNV_OFF};
    if (!in.f) {
        set_err(s, "snapshot %s: %s", path, strerror(errno));
        return -1;
    }
    int ret = -1;
    uint8_t magic[8];
    uint64_t idx, term, count;
    uint32_t cl;
    if (sr(&in, magic, 8) < 0 || memcmp(magic, "KVSNAP01", 8) != 0) {
        set_err(s, "snapshot %s: not a keyval snapshot", path);
        goto out;
    }
    if (sr64(&in, &idx) < 0 || sr64(&in, &term) < 0 || sr32(&in, &cl) < 0)
        goto short_read;
    if (idx != meta->index || term != meta->term) {
        set_err(s, "snapshot %s: is index %llu term %llu, expected %llu/%llu", path,
                (unsigned long long)idx, (unsigned long long)term,
                (unsigned long long)meta->index, (unsigned long long)meta->term);
        goto out;
    }
    raft_config conf;
    if (cl > CONF_MAX || sr_buf(&in, cl) < 0 || conf_decode(&conf, in.buf, cl) < 0) {
        set_err(s, "snapshot %s: bad configuration", path);
        goto out;
    }
    if (sr64(&in, &count) < 0)
        goto short_read;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t kl, vl;
        uint64_t mi;
        if (sr32(&in, &kl) < 0)
            goto short_read;
        if (kl < 1 || kl > KEY_MAX) {
            set_err(s, "snapshot %s: bad key length %u", path, kl);
            goto out;
        }
        char key[KEY_MAX];
        if (sr(&in, key, kl) < 0 || sr32(&in, &vl) < 0)
            goto short_read;
        if (vl > SNAP_VALUE_MAX) {
            set_err(s, "snapshot %s: bad value length %u", path, vl);
            goto out;
        }
        if (sr_buf(&in, vl) < 0) {
            if (!in.err)
                set_err(s, "snapshot %s: out of memory", path);
            else
                set_err(s, "snapshot %s: truncated", path);
            goto out;
        }
        if (sr64(&in, &mi) < 0)
            goto short_read;
        if (insert) {
            sqlite3_stmt *q = stmt(s, ST_KV_SET);
            sqlite3_bind_blob(q, 1, key, (int)kl, SQLITE_STATIC);
            sqlite3_bind_blob(q, 2, vl ? (void *)in.buf : (void *)"", (int)vl, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)mi);
            if (step_done(s, q, "snapshot insert") < 0)
                goto out;
        }
    }
    if (sr(&in, magic, 8) < 0)
        goto short_read;
    if (memcmp(magic, "KVSNEND!", 8) != 0) {
        set_err(s, "snapshot %s: bad trailer", path);
        goto out;
    }
    uint64_t want = in.sum, got;
    if (sr64(&in, &got) < 0)
        goto short_read;
    if (got != want) {
        set_err(s, "snapshot %s: checksum mismatch", path);
        goto out;
    }
    if (fgetc(in.f) != EOF) {
        set_err(s, "snapshot %s: trailing bytes", path);
        goto out;
    }
    ret = 0;
    goto out;
short_read:
    set_err(s, "snapshot %s: truncated", path);
out:
    fclose(in.f);
    free(in.buf);
    return ret;
}

int store_snapshot_install(store *s, const char *path, const raft_snap_meta *meta)
{
    if (meta->index == 0 || meta->index > INT64_MAX) {
        set_err(s, "snapshot install: bad index");
        return -1;
    }
    if (snap_pass(s, path, meta, 0) < 0)
        return -1;
    int own, ok;
    uint64_t old = s->applied;
    if (auto_begin(s, &own) < 0)
        return -1;
    ok = step_done(s, stmt(s, ST_KV_CLEAR), "snapshot clear kv");
    if (ok == 0)
        ok = step_done(s, stmt(s, ST_LOG_CLEAR), "snapshot clear log");
    if (ok == 0)
        ok = snap_pass(s, path, meta, 1);
    if (ok == 0)
        ok = save_snap_meta(s, meta);
    if (ok == 0)
        ok = set_applied(s, meta->index);
    ok = auto_end(s, own, ok);
    if (ok < 0)
        s->applied = old;
    return ok;
}

/* ---- incremental snapshots ---- */

struct store_snap_writer {
    store *s;
    sqlite3 *db;          /* read-only connection holding the read txn */
    sqlite3_stmt *q;
    raft_snap_meta meta;
    char path[4096], tmp[4200];
    snap_out o;
    int64_t count, seen;
    int done;
};

static void writer_free(store_snap_writer *w, int unlink_tmp)
{
    if (w->q)
        sqlite3_finalize(w->q);
    if (w->db) {
        sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(w->db);
    }
    if (w->o.f)
        fclose(w->o.f);
    if (unlink_tmp)
        unlink(w->tmp);
    free(w);
}

store_snap_writer *store_snapshot_begin(store *s, const char *path, const raft_snap_meta *meta)
{
    if (s->in_txn) {
        set_err(s, "snapshot begin: a transaction is open");
        return NULL;
    }
    if (meta->index != s->applied || meta->index == 0) {
        set_err(s, "snapshot: meta index %llu is not the applied index %llu",
                (unsigned long long)meta->index, (unsigned long long)s->applied);
        return NULL;
    }
    store_snap_writer *w = calloc(1, sizeof *w);
    if (!w) {
        set_err(s, "snapshot: out of memory");
        return NULL;
    }
    w->s = s;
    w->meta = *meta;
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path) {
        set_err(s, "snapshot %s: path too long", path);
        free(w);
        return NULL;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    sqlite3_stmt *m = NULL;
    if (sqlite3_open_v2(s->path, &w->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(w->db, 5000) != SQLITE_OK ||
        sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(w->db,
                           "SELECT (SELECT value FROM meta WHERE name = 'applied'),"
                           " (SELECT count(*) FROM kv)",
                           -1, &m, NULL) != SQLITE_OK ||
        sqlite3_step(m) != SQLITE_ROW) {
        set_err(s, "snapshot read connection: %s", w->db ? sqlite3_errmsg(w->db) : "cannot open");
        sqlite3_finalize(m);
        writer_free(w, 0);
        return NULL;
    }
    /* The read transaction starts at the first read: check it saw the state
     * the caller meant. */
    uint64_t applied = (uint64_t)sqlite3_column_int64(m, 0);
    w->count = sqlite3_column_int64(m, 1);
    sqlite3_finalize(m);
    if (applied != meta->index) {
        set_err(s, "snapshot: database is at %llu, not %llu (uncommitted changes?)",
                (unsigned long long)applied, (unsigned long long)meta->index);
        writer_free(w, 0);
        return NULL;
    }
    if (sqlite3_prepare_v2(w->db, "SELECT key, value, mod_index FROM kv ORDER BY key", -1, &w->q,
                           NULL) != SQLITE_OK) {
        set_err(s, "snapshot read: %s", sqlite3_errmsg(w->db));
        writer_free(w, 0);
        return NULL;
    }
    w->o.f = fopen(w->tmp, "wb");
    w->o.sum = FNV_OFF;
    if (!w->o.f) {
        set_err(s, "snapshot %s: %s", w->tmp, strerror(errno));
        writer_free(w, 0);
        return NULL;
    }
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    sw(&w->o, "KVSNAP01", 8);
    sw64(&w->o, meta->index);
    sw64(&w->o, meta->term);
    sw32(&w->o, (uint32_t)cl);
    sw(&w->o, cbuf, cl);
    sw64(&w->o, (uint64_t)w->count);
    return w;
}

int store_snapshot_step(store_snap_writer *w, size_t budget)
{
    store *s = w->s;
    if (w->done)
        return 1;
    size_t written = 0;
    int rc = SQLITE_ROW;
    while (written < budget && !w->o.err && (rc = sqlite3_step(w->q)) == SQLITE_ROW) {
        size_t kl = (size_t)sqlite3_column_bytes(w->q, 0);
        const void *k = sqlite3_column_blob(w->q, 0);
        size_t vl = (size_t)sqlite3_column_bytes(w->q, 1);
        const void *v = sqlite3_column_blob(w->q, 1);
        sw32(&w->o, (uint32_t)kl);
        sw(&w->o, k, kl);
        sw32(&w->o, (uint32_t)vl);
        sw(&w->o, v, vl);
        sw64(&w->o, (uint64_t)sqlite3_column_int64(w->q, 2));
        written += kl + vl + 16;
        w->seen++;
    }
    if (w->o.err) {
        set_err(s, "snapshot %s: write: %s", w->tmp, strerror(errno));
        return -1;
    }
    if (rc == SQLITE_ROW) {
        /* Start write-back now so that the final fsync has little left. */
        if (fflush(w->o.f) == 0)
            sync_file_range(fileno(w->o.f), 0, 0, SYNC_FILE_RANGE_WRITE);
        return 0;
    }
    if (rc != SQLITE_DONE) {
        set_err(s, "snapshot read kv: %s", sqlite3_errmsg(w->db));
        return -1;
    }
    if (w->seen != w->count) {
        set_err(s, "snapshot: read %lld records, expected %lld", (long long)w->seen,
                (long long)w->count);
        return -1;
    }
    sw(&w->o, "KVSNEND!", 8);
    uint8_t sb[8];
    put64(sb, w->o.sum);
    if (fwrite(sb, 1, 8, w->o.f) != 8 || fflush(w->o.f) != 0 || fsync(fileno(w->o.f)) != 0) {
        set_err(s, "snapshot %s: write: %s", w->tmp, strerror(errno));
        return -1;
    }
    int cr = fclose(w->o.f);
    w->o.f = NULL;
    if (cr != 0) {
        set_err(s, "snapshot %s: close: %s", w->tmp, strerror(errno));
        return -1;
    }
    if (rename(w->tmp, w->path) != 0) {
        set_err(s, "snapshot rename %s: %s", w->path, strerror(errno));
        return -1;
    }
    fsync_dir_of(w->path);
    w->done = 1;
    return 1;
}

int store_snapshot_finish(store_snap_writer *w)
{
    store *s = w->s;
    if (!w->done) {
        set_err(s, "snapshot finish: file not complete");
        store_snapshot_abort(w);
        return -1;
    }
    raft_snap_meta meta = w->meta;
    writer_free(w, 0);
    int own;
    if (auto_begin(s, &own) < 0)
        return -1;
    return auto_end(s, own, save_snap_meta(s, &meta));
}

void store_snapshot_abort(store_snap_writer *w)
{
    if (w)
        writer_free(w, !w->done);
}

int64_t store_snapshot_records(const store_snap_writer *w)
{
    return w->count;
}

int64_t store_snapshot_file_records(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t h[28], c[8];
    int64_t n = -1;
    if (fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "KVSNAP01", 8) == 0) {
        uint32_t cl = get32(h + 24);
        if (cl <= CONF_MAX && fseek(f, (long)cl, SEEK_CUR) == 0 && fread(c, 1, 8, f) == 8 &&
            get64(c) <= INT64_MAX)
            n = (int64_t)get64(c);
    }
    fclose(f);
    return n;
}

int64_t store_memory_used(void)
{
    return (int64_t)sqlite3_memory_used();
}
