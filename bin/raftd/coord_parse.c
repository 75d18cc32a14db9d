/*
 * coord_parse.c - parsing and validation of the coordination ops of
 * docs/coordination.md (request.c's op table calls these): watch, the
 * lease ops, the new txn form, a set's "lease", and a get's or list's
 * blocking "index"/"wait_ms". Each checks the request with a reason for
 * the client and builds the log command that lib/storage applies; the
 * storage checks again (a command it refuses is a 400 on every node).
 */
#include "raftd.h"

#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS_DEFAULT 300000u /* 5 min, as the HTTP default */
#define WAIT_MS_MAX 600000u     /* 10 min */

/* A lease ID: a positive integer or its decimal string. 0 when not. */
uint64_t parse_lease_value(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!s || n < 1 || n > 19 || s[0] == '0')
        return 0;
    uint64_t id = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        id = id * 10 + (uint64_t)(s[i] - '0');
    }
    return id;
}

static json_t *lease_text(uint64_t id)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)id);
    return json_string(b);
}

static int key_ok(json_t *k, const char **why)
{
    if (!json_is_string(k)) {
        *why = "key must be a string";
        return 400;
    }
    return kv_key_check(json_string_value(k), json_string_length(k), why);
}

/* get/list: "index" M >= 0 makes it a blocking query of at most "wait_ms"
 * (default 5 min, at most 10 min). NULL fine, else the error reply. */
json_t *parse_blocking(pending *p)
{
    json_t *ix = json_object_get(p->req, "index"), *w = json_object_get(p->req, "wait_ms");
    if (!ix && !w)
        return NULL;
    if (!ix)
        return err_reply(400, "\"wait_ms\" needs \"index\"");
    if (!json_is_integer(ix) || json_integer_value(ix) < 0)
        return err_reply(400, "\"index\" must be an integer >= 0");
    if (w && (!json_is_integer(w) || json_integer_value(w) < 0 ||
              json_integer_value(w) > (json_int_t)WAIT_MS_MAX))
        return err_reply(400, "\"wait_ms\" must be an integer in 0..600000");
    p->blocking = 1;
    p->wait_index = (uint64_t)json_integer_value(ix);
    p->wait_until = now_ms() + (w ? (uint64_t)json_integer_value(w) : WAIT_MS_DEFAULT);
    return NULL;
}

/* A set with "lease": the command {"op":"set","kv":..,"lease":"ID"}. */
json_t *parse_set_lease(pending *p, json_t *kv, json_t **cmd)
{
    uint64_t id = parse_lease_value(json_object_get(p->req, "lease"));
    if (!id)
        return err_reply(400, "\"lease\" must be a lease ID (a positive integer or its string)");
    *cmd = json_pack("{s:s,s:O,s:o}", "op", "set", "kv", kv, "lease", lease_text(id));
    return NULL;
}

/* {"op":"watch","prefix":P|"key":K,"from":M}: the key or prefix in
 * p->meta is not enough (1024 bytes), so the request keeps them; "from"
 * absent means from the applied index at the start. */
json_t *parse_watch(struct raftd *d, pending *p, json_t **cmd)
{
    json_t *pre = json_object_get(p->req, "prefix"), *key = json_object_get(p->req, "key");
    json_t *from = json_object_get(p->req, "from");
    const char *why = NULL;
    int code;
    (void)d;
    (void)cmd;
    if (pre && key)
        return err_reply(400, "watch takes \"prefix\" or \"key\", not both");
    if (pre && (!json_is_string(pre) || json_string_length(pre) > KV_KEY_MAX ||
                strlen(json_string_value(pre)) != json_string_length(pre)))
        return err_reply(400, "\"prefix\" must be a string of at most 1024 bytes");
    if (key && (code = key_ok(key, &why)))
        return err_reply(code, why);
    if (from && (!json_is_integer(from) || json_integer_value(from) < 0))
        return err_reply(400, "\"from\" must be an integer >= 0");
    p->blocking = from != NULL; /* "from" given */
    p->wait_index = from ? (uint64_t)json_integer_value(from) : 0;
    return NULL;
}

json_t *parse_lease_grant(struct raftd *d, pending *p, json_t **cmd)
{
    json_t *t = json_object_get(p->req, "ttl_ms");
    (void)d;
    if (!json_is_integer(t) || json_integer_value(t) < 0 ||
        !lease_ttl_valid((uint64_t)json_integer_value(t))) {
        char msg[120];
        snprintf(msg, sizeof msg, "lease_grant needs \"ttl_ms\": an integer in %u..%u",
                 (unsigned)KV_LEASE_TTL_MIN_MS, (unsigned)KV_LEASE_TTL_MAX_MS);
        return err_reply(400, msg);
    }
    *cmd = json_pack("{s:s,s:O}", "op", "lease_grant", "ttl_ms", t);
    return NULL;
}

/* lease_renew, lease_revoke, lease_get: {"lease":ID}; the ID in p->node.
 * Only revoke is a log entry. */
json_t *parse_lease_id_op(struct raftd *d, pending *p, json_t **cmd)
{
    (void)d;
    p->node = parse_lease_value(json_object_get(p->req, "lease"));
    if (!p->node)
        return err_reply(400, "needs \"lease\": a lease ID (a positive integer or its string)");
    if (p->op == OP_LEASE_REVOKE)
        *cmd = json_pack("{s:s,s:o}", "op", "lease_revoke", "lease", lease_text(p->node));
    return NULL;
}

/* One compare of a new-form txn, copied to out with only its members. */
static json_t *txn_cmp(json_t *c, json_t *out)
{
    const char *why = NULL;
    int code;
    json_t *k = json_object_get(c, "key");
    if (!json_is_object(c))
        return err_reply(400, "each \"if\" must be an object");
    if ((code = key_ok(k, &why)))
        return err_reply(code, why);
    json_t *ix = json_object_get(c, "index"), *ab = json_object_get(c, "absent");
    json_t *v = json_object_get(c, "value");
    if (json_object_size(c) != 2 || (!ix && !ab && !v))
        return err_reply(400, "each \"if\" is {\"key\":K} with one of \"index\":N, "
                              "\"absent\":true, \"value\":V");
    if (ix && (!json_is_integer(ix) || json_integer_value(ix) < 0))
        return err_reply(400, "\"index\" of a compare must be an integer >= 0");
    if (ab && !json_is_true(ab))
        return err_reply(400, "\"absent\" of a compare must be true");
    if (v && !json_is_string(v))
        return err_reply(400, "\"value\" of a compare must be a string");
    if (v && json_string_length(v) > KV_VALUE_MAX)
        return err_reply(413, "value larger than 1 MiB");
    json_array_append_new(out, json_pack("{s:O,s:O}", "key", k,
                                         ix   ? "index"
                                         : ab ? "absent"
                                              : "value",
                                         ix   ? ix
                                         : ab ? ab
                                              : v));
    return NULL;
}

/* One operation of then/else, copied to out; keys counted into *n. */
static json_t *txn_op(json_t *o, json_t *out, size_t *n)
{
    const char *why = NULL, *k;
    int code;
    json_t *set = json_object_get(o, "set"), *del = json_object_get(o, "del");
    json_t *lease = json_object_get(o, "lease"), *v;
    if (!json_is_object(o) || (!set == !del))
        return err_reply(400, "each operation is {\"set\":{K:V,..}} (with optional \"lease\") "
                              "or {\"del\":K}");
    if (del) {
        if (json_object_size(o) != 1)
            return err_reply(400, "a {\"del\":K} operation takes nothing else");
        if ((code = key_ok(del, &why)))
            return err_reply(code, why);
        (*n)++;
        json_array_append_new(out, json_pack("{s:O}", "del", del));
        return NULL;
    }
    if (json_object_size(o) != (lease ? 2u : 1u))
        return err_reply(400, "a {\"set\"} operation takes only \"set\" and \"lease\"");
    if (!json_is_object(set) || json_object_size(set) == 0)
        return err_reply(400, "\"set\" must be a non-empty object of string values");
    json_object_foreach (set, k, v) {
        if ((code = kv_key_check(k, strlen(k), &why)))
            return err_reply(code, why);
        if (!json_is_string(v))
            return err_reply(400, "values must be strings");
        if (json_string_length(v) > KV_VALUE_MAX)
            return err_reply(413, "value larger than 1 MiB");
        (*n)++;
    }
    uint64_t id = lease ? parse_lease_value(lease) : 0;
    if (lease && !id)
        return err_reply(400, "\"lease\" must be a lease ID (a positive integer or its string)");
    json_t *c = json_pack("{s:O}", "set", set);
    if (id)
        json_object_set_new(c, "lease", lease_text(id));
    json_array_append_new(out, c);
    return NULL;
}

/* then/else: an array of operations (absent: none). */
static json_t *txn_branch(json_t *req, const char *name, json_t *cmd, size_t *n)
{
    json_t *ops = json_object_get(req, name), *o, *err;
    size_t i;
    if (!ops)
        return NULL;
    if (!json_is_array(ops)) {
        char msg[80];
        snprintf(msg, sizeof msg, "\"%s\" must be an array of operations", name);
        return err_reply(400, msg);
    }
    json_t *out = json_array();
    json_object_set_new(cmd, name, out);
    json_array_foreach (ops, i, o) {
        if ((err = txn_op(o, out, n)))
            return err;
    }
    return NULL;
}

/* {"op":"txn","if":[CMP..],"then":[OP..],"else":[OP..]} (request.c's
 * parse_txn hands over when "then" or "else" is present). */
json_t *parse_txn_new(struct raftd *d, pending *p, json_t **cmd)
{
    static const char *const allowed[] = {"op", "if", "then", "else", "level", NULL};
    json_t *req = p->req, *cmps = json_object_get(req, "if"), *c, *err = NULL;
    const char *name;
    size_t n = 0, i;
    (void)d;
    json_object_foreach (req, name, c) {
        int ok = 0;
        for (i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(name, allowed[i]);
        if (!ok) {
            char msg[120];
            snprintf(msg, sizeof msg, "a txn with \"then\"/\"else\" takes no \"%.40s\"", name);
            return err_reply(400, msg);
        }
    }
    if (cmps && !json_is_array(cmps))
        return err_reply(400, "\"if\" must be an array of compares");
    if (cmps && json_array_size(cmps) > STORE_TXN_MAX)
        return err_reply(413, "more than 1000 compares in one txn");
    p->txn_new = 1;
    *cmd = json_pack("{s:s}", "op", "txn");
    json_t *out = json_array();
    json_object_set_new(*cmd, "if", out);
    json_array_foreach (cmps, i, c) {
        if ((err = txn_cmp(c, out)))
            return err;
    }
    if ((err = txn_branch(req, "then", *cmd, &n)) || (err = txn_branch(req, "else", *cmd, &n)))
        return err;
    if (n > STORE_TXN_MAX)
        return err_reply(413, "more than 1000 keys in one txn");
    return NULL;
}
