/*
 * storage_kv.c - the key-value state machine: apply a committed entry to
 * the kv table (with the applied index, in one transaction), and reads
 * (get, scan, count) from the local table. Every node must reach the same
 * verdict on a command, so nothing here depends on local state but the
 * table.
 */
#include "storage_impl.h"
#include "codec.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- applying commands ---- */

uint64_t store_applied(const store *s) { return s->applied; }

static int valid_key(const char *k, size_t n)
{
    return n >= 1 && n <= KEY_MAX && memchr(k, 0, n) == NULL;
}

/* 1 found, 0 absent, -1 error. */
static int kv_mod_index(store *s, const char *k, size_t n, uint64_t *idx)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_GET);
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
    return storage_db_fail(s, "read kv");
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

int storage_set_applied(store *s, uint64_t idx)
{
    if (storage_meta_set_int(s, "applied", idx) < 0)
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
        sqlite3_stmt *q = storage_stmt(s, ST_KV_SET);
        sqlite3_bind_blob(q, 1, kv[i].k, (int)kv[i].kl, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, kv[i].vl ? kv[i].v : "", (int)kv[i].vl, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)e->index);
        if (storage_step_done(s, q, "set key") < 0)
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
        sqlite3_stmt *q = storage_stmt(s, ST_KV_DEL);
        sqlite3_bind_blob(q, 1, json_string_value(v), (int)json_string_length(v),
                          SQLITE_STATIC);
        if (storage_step_done(s, q, "delete key") < 0) {
            json_decref(cmd);
            return -1;
        }
    }
    const char *name;
    json_object_foreach(json_object_get(cmd, "set"), name, v) {
        sqlite3_stmt *q = storage_stmt(s, ST_KV_SET);
        size_t vlen = json_string_length(v);
        sqlite3_bind_blob(q, 1, name, (int)strlen(name), SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, vlen ? json_string_value(v) : "", (int)vlen,
                          SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)e->index);
        if (storage_step_done(s, q, "set key") < 0) {
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
        storage_set_err(s, "apply: bad index %llu", (unsigned long long)e->index);
        return -1;
    }
    if (e->index <= s->applied) {
        storage_set_err(s, "apply: index %llu already applied (applied %llu)",
                        (unsigned long long)e->index, (unsigned long long)s->applied);
        return -1;
    }
    int own, ok = 0;
    uint64_t old = s->applied;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    if (e->type == RAFT_ENTRY_NORMAL)
        ok = apply_normal(s, e, res);
    /* Inside the caller's transaction the applied index row is written
     * once, by store_commit, for the whole batch: same transaction, one
     * row update instead of one per entry. */
    if (ok == 0 && own)
        ok = storage_set_applied(s, e->index);
    else if (ok == 0) {
        s->applied = e->index;
        s->applied_dirty = 1;
    }
    ok = storage_auto_end(s, own, ok);
    if (ok < 0 && own)
        s->applied = old;
    return ok;
}

/* ---- reads ---- */

int store_get(store *s, const char *key, size_t klen, char **value,
              size_t *vlen, uint64_t *mod_index)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_GET);
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return storage_db_fail(s, "read kv");
    }
    const void *p = sqlite3_column_blob(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    if (mod_index)
        *mod_index = (uint64_t)sqlite3_column_int64(q, 1);
    if (value) {
        char *v = malloc(n + 1);
        if (!v) {
            sqlite3_reset(q);
            storage_set_err(s, "read kv: out of memory");
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
    sqlite3_stmt *q = storage_stmt(s, after ? ST_KV_SCAN_AFTER : ST_KV_SCAN);
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
        return storage_db_fail(s, "scan kv");
    return visited;
}

int64_t store_count(store *s)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_COUNT);
    int rc = sqlite3_step(q);
    int64_t n = -1;
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    else
        storage_db_fail(s, "count kv");
    sqlite3_reset(q);
    return n;
}
