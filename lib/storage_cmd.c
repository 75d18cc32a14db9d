/*
 * storage_cmd.c - the commands with an "op" member (docs/coordination.md,
 * storage.h): set and del with leases, the txn with compares and then /
 * else branches, lease grant, revoke and expire. Each is validated whole
 * before anything is written: a malformed command is 400, an unknown lease
 * 404, and neither writes a row. Like storage_kv.c, the verdict depends
 * only on the command and the tables, so every node reaches the same one.
 */
#include "storage_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ---- */

/* 1 when every member of o is one of the NULL-terminated names. */
static int only_members(json_t *o, const char *const *names)
{
    const char *name;
    json_t *v;
    json_object_foreach (o, name, v) {
        int known = 0;
        for (const char *const *n = names; *n && !known; n++)
            known = !strcmp(name, *n);
        if (!known)
            return 0;
    }
    return 1;
}

static int is_key(json_t *k)
{
    return json_is_string(k) && storage_valid_key(json_string_value(k), json_string_length(k));
}

/* A lease ID: a positive integer or its decimal string. 0 when invalid. */
static uint64_t lease_id(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    if (!json_is_string(v))
        return 0;
    const char *p = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < 1 || n > 19 || p[0] == '0')
        return 0;
    uint64_t id = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        id = id * 10 + (uint64_t)(p[i] - '0');
    }
    return id <= INT64_MAX ? id : 0;
}

/* {K:V,..} of valid keys and string values, at least one. 0 ok, -1 bad. */
static int check_kv(json_t *kv, size_t *nkeys)
{
    const char *k;
    json_t *v;
    if (!json_is_object(kv) || json_object_size(kv) == 0)
        return -1;
    json_object_foreach (kv, k, v) {
        if (!storage_valid_key(k, strlen(k)) || !json_is_string(v))
            return -1;
        (*nkeys)++;
    }
    return 0;
}

/* OP: {"set":{..}[,"lease":ID]} or {"del":K}. */
static int check_ops(json_t *ops, size_t *nkeys)
{
    static const char *const set_m[] = {"set", "lease", NULL};
    size_t i;
    json_t *op;
    if (!ops)
        return 0;
    if (!json_is_array(ops))
        return -1;
    json_array_foreach (ops, i, op) {
        json_t *set = json_object_get(op, "set"), *lease = json_object_get(op, "lease");
        if (!json_is_object(op))
            return -1;
        if (set) {
            if (!only_members(op, set_m) || check_kv(set, nkeys) < 0 || (lease && !lease_id(lease)))
                return -1;
        } else if (json_object_size(op) != 1 || !is_key(json_object_get(op, "del"))) {
            return -1;
        } else {
            (*nkeys)++;
        }
    }
    return 0;
}

/* CMP: {"key":K} and one of "index":N>=0, "absent":true, "value":V. */
static int check_cmps(json_t *cmps)
{
    size_t i;
    json_t *c;
    if (!cmps)
        return 0;
    if (!json_is_array(cmps) || json_array_size(cmps) > STORE_TXN_MAX)
        return -1;
    json_array_foreach (cmps, i, c) {
        json_t *ix = json_object_get(c, "index"), *ab = json_object_get(c, "absent");
        json_t *val = json_object_get(c, "value");
        if (!json_is_object(c) || json_object_size(c) != 2 || !is_key(json_object_get(c, "key")))
            return -1;
        if (!(json_is_integer(ix) && json_integer_value(ix) >= 0) && !json_is_true(ab) &&
            !json_is_string(val))
            return -1;
    }
    return 0;
}

/* ---- helpers of apply ---- */

/* 1 exists, 0 not, -1 error. */
static int lease_exists(store *s, uint64_t id)
{
    uint64_t ttl;
    return store_lease_get(s, id, &ttl);
}

/* One compare against the table: 1 true, 0 false, -1 error. */
static int cmp_holds(store *s, json_t *c)
{
    json_t *k = json_object_get(c, "key"), *ix = json_object_get(c, "index");
    json_t *val = json_object_get(c, "value");
    const char *key = json_string_value(k);
    size_t klen = json_string_length(k);
    if (val) {
        size_t vl;
        char *v = NULL;
        int found = store_get(s, key, klen, &v, &vl, NULL);
        if (found < 0)
            return -1;
        int same = found && vl == json_string_length(val) && !memcmp(v, json_string_value(val), vl);
        free(v);
        return same;
    }
    uint64_t mod, lease;
    int found = storage_kv_lookup(s, key, klen, &mod, &lease);
    if (found < 0)
        return -1;
    if (!ix) /* "absent": true */
        return !found;
    uint64_t want = (uint64_t)json_integer_value(ix);
    return want == 0 ? !found : found && mod == want;
}

/* Every lease the ops name exists: 1 yes, 0 no, -1 error. */
static int ops_leases_exist(store *s, json_t *ops)
{
    size_t i;
    json_t *op;
    json_array_foreach (ops, i, op) {
        json_t *lease = json_object_get(op, "lease");
        int r = lease ? lease_exists(s, lease_id(lease)) : 1;
        if (r <= 0)
            return r;
    }
    return 1;
}

static int put_kv(store *s, json_t *kv, uint64_t idx, uint64_t lease)
{
    const char *k;
    json_t *v;
    json_object_foreach (kv, k, v) {
        if (storage_kv_put(s, k, strlen(k), json_string_value(v), json_string_length(v), idx,
                           lease) < 0)
            return -1;
    }
    return 0;
}

static int run_ops(store *s, json_t *ops, uint64_t idx)
{
    size_t i;
    json_t *op;
    json_array_foreach (ops, i, op) {
        json_t *set = json_object_get(op, "set"), *del = json_object_get(op, "del");
        int r = set ? put_kv(s, set, idx, lease_id(json_object_get(op, "lease")))
                    : storage_kv_remove(s, json_string_value(del), json_string_length(del), idx, 0);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* ---- the commands ---- */

static int apply_set(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    static const char *const m[] = {"op", "kv", "lease", NULL};
    json_t *lease = json_object_get(cmd, "lease");
    size_t n = 0;
    res->op = STORE_OP_SET;
    if (!only_members(cmd, m) || check_kv(json_object_get(cmd, "kv"), &n) < 0 ||
        n > STORE_TXN_MAX || (lease && !lease_id(lease)))
        return res->code = 400, 0;
    uint64_t id = lease ? lease_id(lease) : 0;
    int r = id ? lease_exists(s, id) : 1;
    if (r <= 0)
        return r < 0 ? -1 : (res->code = 404, 0);
    res->lease = id;
    return put_kv(s, json_object_get(cmd, "kv"), e->index, id);
}

static int apply_del(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    static const char *const m[] = {"op", "key", NULL};
    json_t *k = json_object_get(cmd, "key");
    res->op = STORE_OP_DEL;
    if (!only_members(cmd, m) || !is_key(k))
        return res->code = 400, 0;
    return storage_kv_remove(s, json_string_value(k), json_string_length(k), e->index, 0);
}

/* {"op":"txn","if":[..],"then":[..],"else":[..]}. */
static int apply_txn(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    static const char *const m[] = {"op", "if", "then", "else", NULL};
    json_t *cmps = json_object_get(cmd, "if"), *then = json_object_get(cmd, "then");
    json_t *els = json_object_get(cmd, "else");
    size_t nkeys = 0, i;
    json_t *c;
    res->op = STORE_OP_TXN;
    if (!only_members(cmd, m) || check_cmps(cmps) < 0 || check_ops(then, &nkeys) < 0 ||
        check_ops(els, &nkeys) < 0 || nkeys > STORE_TXN_MAX)
        return res->code = 400, 0;
    int all = 1;
    json_array_foreach (cmps, i, c) {
        int r = cmp_holds(s, c);
        if (r < 0)
            return -1;
        if (!r) {
            all = 0;
            break;
        }
    }
    json_t *ops = all ? then : els;
    int r = ops_leases_exist(s, ops);
    if (r <= 0)
        return r < 0 ? -1 : (res->code = 404, 0);
    res->succeeded = all;
    return run_ops(s, ops, e->index);
}

static int apply_lease_grant(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    static const char *const m[] = {"op", "ttl_ms", NULL};
    json_t *t = json_object_get(cmd, "ttl_ms");
    res->op = STORE_OP_LEASE_GRANT;
    if (!only_members(cmd, m) || !json_is_integer(t) ||
        json_integer_value(t) < KV_LEASE_TTL_MIN_MS || json_integer_value(t) > KV_LEASE_TTL_MAX_MS)
        return res->code = 400, 0;
    int64_t n = store_lease_count(s);
    if (n < 0)
        return -1;
    if ((uint64_t)n >= (s->lease_max ? s->lease_max : KV_LEASE_MAX))
        return res->code = 503, 0; /* the same on every node: nothing written */
    sqlite3_stmt *q = storage_stmt(s, ST_LEASE_PUT);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)e->index);
    sqlite3_bind_int64(q, 2, json_integer_value(t));
    if (storage_step_done(s, q, "grant lease") < 0)
        return -1;
    res->lease = e->index;
    res->ttl_ms = (uint64_t)json_integer_value(t);
    return 0;
}

/* Delete every key of lease id (change rows with the expired flag), in
 * chunks read before they are deleted, then the lease. */
#define REVOKE_CHUNK 256
typedef struct key_list {
    char *k[REVOKE_CHUNK];
    size_t kl[REVOKE_CHUNK], n;
    int oom;
} key_list;

static int collect_key(void *arg, const char *k, size_t kl)
{
    key_list *l = arg;
    if (!(l->k[l->n] = malloc(kl ? kl : 1)))
        return l->oom = 1;
    memcpy(l->k[l->n], k, kl);
    l->kl[l->n++] = kl;
    return 0;
}

static int drop_lease(store *s, uint64_t id, uint64_t idx, int expired)
{
    for (;;) {
        key_list l = {.n = 0};
        int got = store_lease_keys(s, id, NULL, REVOKE_CHUNK, collect_key, &l);
        int ok = got < 0 ? -1 : 0;
        if (l.oom) {
            storage_set_err(s, "revoke lease: out of memory");
            ok = -1;
        }
        for (size_t i = 0; i < l.n; i++) {
            if (ok == 0)
                ok = storage_kv_remove(s, l.k[i], l.kl[i], idx, expired);
            free(l.k[i]);
        }
        if (ok < 0)
            return -1;
        if (l.n == 0)
            break;
    }
    sqlite3_stmt *q = storage_stmt(s, ST_LEASE_DEL);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
    return storage_step_done(s, q, "delete lease");
}

/* lease_revoke (404 when unknown) and lease_expire (a no-op then). */
static int apply_lease_end(store *s, const raft_entry *e, json_t *cmd, store_result *res,
                           int expire)
{
    static const char *const m[] = {"op", "lease", NULL};
    uint64_t id = lease_id(json_object_get(cmd, "lease"));
    res->op = expire ? STORE_OP_LEASE_EXPIRE : STORE_OP_LEASE_REVOKE;
    if (!only_members(cmd, m) || !id)
        return res->code = 400, 0;
    int r = lease_exists(s, id);
    if (r < 0)
        return -1;
    if (!r) {
        if (!expire)
            res->code = 404;
        return 0;
    }
    res->lease = id;
    return drop_lease(s, id, e->index, expire);
}

int storage_apply_op(store *s, const raft_entry *e, json_t *cmd, store_result *res)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    res->code = 200;
    if (!op)
        return res->code = 400, 0;
    if (!strcmp(op, "set"))
        return apply_set(s, e, cmd, res);
    if (!strcmp(op, "del"))
        return apply_del(s, e, cmd, res);
    if (!strcmp(op, "txn")) {
        if (json_object_get(cmd, "then") || json_object_get(cmd, "else"))
            return apply_txn(s, e, cmd, res);
        return storage_apply_plain(s, e, cmd, res);
    }
    if (!strcmp(op, "lease_grant"))
        return apply_lease_grant(s, e, cmd, res);
    if (!strcmp(op, "lease_revoke"))
        return apply_lease_end(s, e, cmd, res, 0);
    if (!strcmp(op, "lease_expire"))
        return apply_lease_end(s, e, cmd, res, 1);
    res->code = 400;
    return 0;
}
