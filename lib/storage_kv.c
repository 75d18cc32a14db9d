/*
 * storage_kv.c - the key-value state machine: apply a committed entry to
 * the kv table (with the applied index, in one transaction), and reads
 * (get, scan, count) from the local table; the old command form
 * {"set","del","if"} (the "op" forms are storage_cmd.c's). Every write goes
 * through storage_kv_put / storage_kv_remove, which add the change row.
 * Every node must reach the same verdict on a command, so nothing here
 * depends on local state but the tables.
 */
#include "storage_impl.h"
#include "codec.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- applying commands ---- */

uint64_t store_applied(const store *s)
{
    return s->applied;
}

int storage_valid_key(const char *k, size_t n)
{
    return kv_key_ok(k, n);
}

int storage_kv_lookup(store *s, const char *k, size_t n, uint64_t *mod_index, uint64_t *lease)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_GET);
    sqlite3_bind_blob(q, 1, k, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *mod_index = *lease = 0;
    if (rc == SQLITE_ROW) {
        *mod_index = (uint64_t)sqlite3_column_int64(q, 1);
        *lease = (uint64_t)sqlite3_column_int64(q, 2);
        sqlite3_reset(q);
        return 1;
    }
    sqlite3_reset(q);
    if (rc == SQLITE_DONE)
        return 0;
    return storage_db_fail(s, "read kv");
}

int storage_kv_put(store *s, const char *k, size_t kl, const char *v, size_t vl, uint64_t idx,
                   uint64_t lease)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_SET);
    sqlite3_bind_blob(q, 1, k, (int)kl, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, vl ? v : "", (int)vl, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)idx);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)lease);
    if (storage_step_done(s, q, "set key") < 0)
        return -1;
    return storage_history_add(s, idx, 0, k, kl, v, vl, 0);
}

int storage_kv_remove(store *s, const char *k, size_t kl, uint64_t idx, int expired)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_DEL);
    sqlite3_bind_blob(q, 1, k, (int)kl, SQLITE_STATIC);
    if (storage_step_done(s, q, "delete key") < 0)
        return -1;
    if (sqlite3_changes(s->db) == 0) /* it was not there: no change */
        return 0;
    return storage_history_add(s, idx, 1, k, kl, NULL, 0, expired);
}

/* Check the shape of a command of the old form (with_op: as the old
 * txn form {"op":"txn",...}). 0 valid, -1 malformed. */
static int check_command(json_t *cmd, int with_op)
{
    if (!json_is_object(cmd))
        return -1;
    const char *name;
    json_t *v;
    json_object_foreach (cmd, name, v) {
        if (strcmp(name, "set") && strcmp(name, "del") && strcmp(name, "if") &&
            (!with_op || strcmp(name, "op")))
            return -1;
    }
    json_t *set = json_object_get(cmd, "set");
    if (set) {
        if (!json_is_object(set))
            return -1;
        json_object_foreach (set, name, v) {
            if (!storage_valid_key(name, strlen(name)) || !json_is_string(v))
                return -1;
        }
    }
    json_t *del = json_object_get(cmd, "del");
    if (del) {
        size_t i;
        if (!json_is_array(del))
            return -1;
        json_array_foreach (del, i, v) {
            if (!json_is_string(v) ||
                !storage_valid_key(json_string_value(v), json_string_length(v)))
                return -1;
        }
    }
    json_t *cond = json_object_get(cmd, "if");
    if (cond) {
        size_t i;
        if (!json_is_array(cond))
            return -1;
        json_array_foreach (cond, i, v) {
            json_t *k = json_object_get(v, "key");
            json_t *ix = json_object_get(v, "index");
            if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_string(k) ||
                !json_is_integer(ix) || json_integer_value(ix) < 0 ||
                !storage_valid_key(json_string_value(k), json_string_length(k)))
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

/* {"set":{...}} or {"op":"set","kv":{...}} of plain strings
 * (codec_fast_set): applied without jansson. 1 done, 0 not that shape, -1
 * error. */
#define FAST_SET_MAX 64
static int apply_fast_set(store *s, const raft_entry *e, store_result *res)
{
    codec_kv kv[FAST_SET_MAX];
    size_t n = 0, off, len;
    const char *d = (const char *)e->data;
    /* The old form {"set":{..}}, or {"op":"set","kv":{..}} without a lease. */
    if (!e->len ||
        (!codec_fast_set(d, e->len, 0, kv, FAST_SET_MAX, KEY_MAX, SIZE_MAX, &n, &off, &len) &&
         !codec_fast_set(d, e->len, 1, kv, FAST_SET_MAX, KEY_MAX, SIZE_MAX, &n, &off, &len)))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (storage_kv_put(s, kv[i].k, kv[i].kl, kv[i].v, kv[i].vl, e->index, 0) < 0)
            return -1;
    res->code = 200;
    res->op = STORE_OP_SET;
    return 1;
}

/* The old command form, {"set":..,"del":..,"if":..}: conditions first,
 * then deletes, then sets. 0 applied or refused (res), -1 error. */
int storage_apply_plain(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    size_t i;
    json_t *v, *set = json_object_get(cmd, "set"), *del = json_object_get(cmd, "del");
    json_t *cond = json_object_get(cmd, "if");
    if (check_command(cmd, json_object_get(cmd, "op") != NULL) < 0) {
        res->code = 400;
        return 0;
    }
    res->op = cond || (set && del) || json_object_get(cmd, "op") ? STORE_OP_TXN
              : del                                              ? STORE_OP_DEL
              : set                                              ? STORE_OP_SET
                                                                 : STORE_OP_NONE;
    json_array_foreach (cond, i, v) {
        json_t *k = json_object_get(v, "key");
        const char *key = json_string_value(k);
        size_t klen = json_string_length(k);
        uint64_t want = (uint64_t)json_integer_value(json_object_get(v, "index"));
        uint64_t cur, lease;
        int found = storage_kv_lookup(s, key, klen, &cur, &lease);
        if (found < 0)
            return -1;
        if ((want == 0 && found) || (want > 0 && (!found || cur != want))) {
            res->code = 412;
            memcpy(res->key, key, klen);
            res->key[klen] = 0;
            res->index = found ? cur : 0;
            return 0;
        }
    }
    json_array_foreach (del, i, v) {
        if (storage_kv_remove(s, json_string_value(v), json_string_length(v), e->index, 0) < 0)
            return -1;
    }
    const char *name;
    json_object_foreach (set, name, v) {
        if (storage_kv_put(s, name, strlen(name), json_string_value(v), json_string_length(v),
                           e->index, 0) < 0)
            return -1;
    }
    res->code = 200;
    return 0;
}

static int apply_normal(store *s, const raft_entry *e, store_result *res)
{
    int fast = apply_fast_set(s, e, res);
    if (fast != 0)
        return fast < 0 ? -1 : 0;
    json_error_t jerr;
    json_t *cmd = NULL;
    if (e->len)
        cmd = json_loadb((const char *)e->data, e->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                         &jerr);
    if (!json_is_object(cmd)) {
        json_decref(cmd);
        res->code = 400;
        return 0;
    }
    int ok = json_object_get(cmd, "op") ? storage_apply_op(s, e, cmd, res)
                                        : storage_apply_plain(s, e, cmd, res);
    json_decref(cmd);
    if (ok == 0 && res->code == 400)
        res->op = STORE_OP_NONE;
    return ok;
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
    uint64_t old = s->applied, seq0 = s->next_seq;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    if (e->type == RAFT_ENTRY_NORMAL)
        ok = apply_normal(s, e, res);
    if (ok == 0 && s->next_seq > seq0) {
        res->first_seq = seq0;
        res->last_seq = s->next_seq - 1;
        ok = storage_history_trim(s);
    }
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

int store_get_lease(store *s, const char *key, size_t klen, char **value, size_t *vlen,
                    uint64_t *mod_index, uint64_t *lease)
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
    if (lease)
        *lease = (uint64_t)sqlite3_column_int64(q, 2);
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

int store_get(store *s, const char *key, size_t klen, char **value, size_t *vlen,
              uint64_t *mod_index)
{
    return store_get_lease(s, key, klen, value, vlen, mod_index, NULL);
}

int store_scan(store *s, const char *prefix, const char *after, size_t limit,
               int (*fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
                         uint64_t mod_index),
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
