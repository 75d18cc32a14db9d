/*
 * request.c - parsing and validation of client requests: the op table,
 * one parse function per op that checks the request and builds the log
 * command (or names the target node), and the write fast path for a
 * plain set on the leader. Validation rules are lib/kvrules'.
 */
#include "raftd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key given as a JSON value. Returns 0 ok, else the error code and sets
 * *why. */
static int check_key(json_t *k, const char **why)
{
    if (!json_is_string(k)) {
        *why = "key must be a string";
        return 400;
    }
    return kv_key_check(json_string_value(k), json_string_length(k), why);
}

/* An object of key: string value, counted into *count. */
static int check_set_obj(json_t *set, size_t *count, const char **why)
{
    if (!json_is_object(set)) {
        *why = "\"set\"/\"kv\" must be an object of string values";
        return 400;
    }
    const char *k;
    json_t *v;
    int code;
    json_object_foreach (set, k, v) {
        if ((code = kv_key_check(k, strlen(k), why)))
            return code;
        if (!json_is_string(v)) {
            *why = "values must be strings";
            return 400;
        }
        if (json_string_length(v) > KV_VALUE_MAX) {
            *why = "value larger than 1 MiB";
            return 413;
        }
        (*count)++;
    }
    return 0;
}

/* Each parse function checks p->req; a write also sets *cmd to its log
 * command (a new reference). NULL when fine, else the error reply. */
typedef json_t *parse_fn(struct raftd *d, pending *p, json_t **cmd);

static json_t *parse_get(struct raftd *d, pending *p, json_t **cmd)
{
    const char *why = NULL;
    int code;
    (void)d;
    (void)cmd;
    if ((code = check_key(json_object_get(p->req, "key"), &why)))
        return err_reply(code, why);
    return parse_blocking(p);
}

static json_t *parse_list(struct raftd *d, pending *p, json_t **cmd)
{
    json_t *req = p->req;
    json_t *pre = json_object_get(req, "prefix"), *after = json_object_get(req, "after");
    json_t *lim = json_object_get(req, "limit");
    const char *why = NULL;
    int code;
    (void)d;
    (void)cmd;
    if (pre && (!json_is_string(pre) || json_string_length(pre) > KV_KEY_MAX ||
                strlen(json_string_value(pre)) != json_string_length(pre)))
        return err_reply(400, "\"prefix\" must be a string of at most 1024 bytes");
    if (after && (code = check_key(after, &why)))
        return err_reply(code, why);
    if (lim && (!json_is_integer(lim) || json_integer_value(lim) < 1))
        return err_reply(400, "\"limit\" must be a positive integer");
    /* A limit above KV_LIST_MAX is one page of KV_LIST_MAX and "more"
     * (pending.c do_read): a client pages, it does not fail. */
    return parse_blocking(p);
}

static json_t *parse_set(struct raftd *d, pending *p, json_t **cmd)
{
    size_t n = 0;
    const char *why = NULL;
    int code;
    json_t *kv = json_object_get(p->req, "kv");
    (void)d;
    if (!kv)
        return err_reply(400, "set needs \"kv\"");
    if ((code = check_set_obj(kv, &n, &why)))
        return err_reply(code, why);
    if (n == 0)
        return err_reply(400, "nothing to set");
    if (n > KV_BATCH_MAX)
        return err_reply(413, "more than 1000 keys in one request");
    if (json_object_get(p->req, "lease"))
        return parse_set_lease(p, kv, cmd);
    *cmd = json_pack("{s:O}", "set", kv);
    return NULL;
}

static json_t *parse_del(struct raftd *d, pending *p, json_t **cmd)
{
    const char *why = NULL;
    int code;
    json_t *k = json_object_get(p->req, "key");
    (void)d;
    if ((code = check_key(k, &why)))
        return err_reply(code, why);
    *cmd = json_pack("{s:[O]}", "del", k);
    return NULL;
}

/* A txn's "del": an array of keys, counted into *n. */
static json_t *txn_del(json_t *del, size_t *n)
{
    size_t i;
    json_t *v;
    const char *why = NULL;
    int code;
    if (!json_is_array(del))
        return err_reply(400, "\"del\" must be an array of keys");
    json_array_foreach (del, i, v) {
        if ((code = check_key(v, &why)))
            return err_reply(code, why);
        (*n)++;
    }
    return NULL;
}

/* A txn's "if": [{"key","index"}...], copied to *clean with only those
 * members, counted into *n. */
static json_t *txn_if(json_t *cond, json_t **clean, size_t *n)
{
    size_t i;
    json_t *v;
    const char *why = NULL;
    int code = 0;
    if (!json_is_array(cond))
        return err_reply(400, "\"if\" must be an array of {\"key\",\"index\"}");
    *clean = json_array();
    json_array_foreach (cond, i, v) {
        json_t *ix = json_object_get(v, "index");
        if (!json_is_object(v) || (code = check_key(json_object_get(v, "key"), &why)) ||
            !json_is_integer(ix) || json_integer_value(ix) < 0) {
            json_decref(*clean);
            *clean = NULL;
            return err_reply(code ? code : 400,
                             code ? why : "each \"if\" needs \"key\" and \"index\" >= 0");
        }
        json_array_append_new(*clean, json_pack("{s:O,s:O}", "key", json_object_get(v, "key"),
                                                "index", ix));
        (*n)++;
    }
    return NULL;
}

static json_t *parse_txn(struct raftd *d, pending *p, json_t **cmd)
{
    size_t n = 0;
    const char *why = NULL;
    int code;
    json_t *req = p->req, *err = NULL, *clean = NULL;
    json_t *set = json_object_get(req, "set"), *del = json_object_get(req, "del");
    json_t *cond = json_object_get(req, "if");
    if (json_object_get(req, "then") || json_object_get(req, "else"))
        return parse_txn_new(d, p, cmd);
    if (!set && !del)
        return err_reply(400, "txn needs \"set\" or \"del\" (or \"then\"/\"else\")");
    if (set && (code = check_set_obj(set, &n, &why)))
        return err_reply(code, why);
    if (del && (err = txn_del(del, &n)))
        return err;
    if (cond && (err = txn_if(cond, &clean, &n)))
        return err;
    if (n > KV_BATCH_MAX) {
        json_decref(clean);
        return err_reply(413, "more than 1000 keys in one request");
    }
    *cmd = json_object();
    if (set)
        json_object_set(*cmd, "set", set);
    if (del)
        json_object_set(*cmd, "del", del);
    if (clean)
        json_object_set_new(*cmd, "if", clean);
    return NULL;
}

static json_t *parse_join(struct raftd *d, pending *p, json_t **cmd)
{
    json_t *req = p->req;
    const char *id = json_string_value(json_object_get(req, "id"));
    const char *addr = json_string_value(json_object_get(req, "addr"));
    json_t *hj = json_object_get(req, "haddr");
    const char *haddr = json_string_value(hj);
    (void)cmd;
    if (!id || !kv_name_ok(id))
        return err_reply(400, "join needs \"id\": 1-63 of [A-Za-z0-9._-]");
    if (!addr || !kv_addr_ok(addr))
        return err_reply(400, "join needs \"addr\" as HOST:PORT");
    if (hj && !json_is_null(hj) && (!haddr || (haddr[0] && !kv_addr_ok(haddr))))
        return err_reply(400, "\"haddr\" must be HOST:PORT");
    kv_meta_format(p->meta, sizeof p->meta, id, addr, haddr);
    /* The joining node's Raft id ("node_id" in its status): unique per
     * incarnation of its data directory. Without it (a join by hand), the
     * id of the node of that name that talks to us now, else of the member
     * of that name (a repeat join); else 0, and the leader answers 400
     * (leader_write): the hash of the name, which older versions took,
     * is no id a node of this version has, and a learner under it would
     * never catch up. */
    json_t *nj = json_object_get(req, "node_id");
    if (nj && !json_is_null(nj)) {
        if (!nodeid_parse(json_string_value(nj), &p->node))
            return err_reply(400, "\"node_id\" must be 16 hex digits (the joining "
                                  "node's node_id from its status)");
    } else {
        const raft_config *c = raft_config_get(d->r);
        const raft_node *m = member_by_name(c, id);
        p->node = known_live_by_name(d, id);
        if (!p->node && m)
            p->node = m->id;
    }
    return NULL;
}

/* remove and transfer: by name; the leader finds the member's id in its
 * configuration (or takes "node_id" when given). */
static json_t *parse_member(struct raftd *d, pending *p, json_t **cmd)
{
    const char *id = json_string_value(json_object_get(p->req, "id"));
    (void)d;
    (void)cmd;
    if (!id || !kv_name_ok(id))
        return err_reply(400, "needs \"id\": a node name");
    snprintf(p->meta, sizeof p->meta, "%s", id);
    p->node = 0;
    json_t *nj = json_object_get(p->req, "node_id");
    if (nj && !json_is_null(nj) && !nodeid_parse(json_string_value(nj), &p->node))
        return err_reply(400, "\"node_id\" must be 16 hex digits");
    return NULL;
}

static json_t *parse_nothing(struct raftd *d, pending *p, json_t **cmd)
{
    (void)d;
    (void)p;
    (void)cmd;
    return NULL;
}

static const struct op_def {
    const char *name;
    int op;
    parse_fn *parse;
} ops[] = {
    {"get", OP_GET, parse_get},
    {"list", OP_LIST, parse_list},
    {"set", OP_SET, parse_set},
    {"del", OP_DEL, parse_del},
    {"txn", OP_TXN, parse_txn},
    {"join", OP_JOIN, parse_join},
    {"remove", OP_REMOVE, parse_member},
    {"transfer", OP_TRANSFER, parse_member},
    {"status", OP_STATUS, parse_nothing},
    {"metrics", OP_METRICS, parse_nothing},
    {"watch", OP_WATCH, parse_watch},
    {"lease_grant", OP_LEASE_GRANT, parse_lease_grant},
    {"lease_renew", OP_LEASE_RENEW, parse_lease_id_op},
    {"lease_revoke", OP_LEASE_REVOKE, parse_lease_id_op},
    {"lease_get", OP_LEASE_GET, parse_lease_id_op},
};

/* The command's text in p->cmd: encoded on the stack and copied once, not
 * grown by jansson. Consumes cmd. */
static json_t *encode_cmd(struct raftd *d, pending *p, json_t *cmd)
{
    if (!cmd)
        return err_reply(500, "out of memory");
    char buf[4096], *heap;
    size_t n = 0;
    const char *t = dump_json(cmd, buf, sizeof buf, &n, &heap);
    json_decref(cmd);
    if (!t)
        return err_reply(500, "out of memory");
    if (heap) {
        p->cmd = heap;
    } else if ((p->cmd = malloc(n + 1)) != NULL) {
        memcpy(p->cmd, t, n);
        p->cmd[n] = 0;
    } else {
        return err_reply(500, "out of memory");
    }
    p->cmd_len = n;
    if (p->cmd_len > d->max_entry) {
        char msg[100];
        snprintf(msg, sizeof msg, "write larger than %zu bytes in total", d->max_entry);
        return err_reply(413, msg);
    }
    return NULL;
}

/* Validate p->req and prepare the command / target. Returns NULL when the
 * request is fine, else an error reply. */
json_t *prepare(struct raftd *d, pending *p)
{
    const char *op = json_string_value(json_object_get(p->req, "op"));
    const struct op_def *def = NULL;
    if (!op)
        return err_reply(400, "request needs \"op\"");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && !def; i++)
        if (!strcmp(op, ops[i].name))
            def = &ops[i];
    if (!def)
        return err_reply(400, "unknown op");
    p->op = def->op;
    json_t *level = json_object_get(p->req, "level");
    if (level) {
        const char *l = json_string_value(level);
        if (!l || (strcmp(l, "stale") && strcmp(l, "linearizable") && strcmp(l, "default")))
            return err_reply(400, "\"level\" must be \"stale\" or \"linearizable\"");
        p->stale = !strcmp(l, "stale");
    }
    json_t *cmd = NULL, *err = def->parse(d, p, &cmd);
    if (err) {
        json_decref(cmd);
        /* err is a reply the parse function made, never cmd's address */
        /* cppcheck-suppress returnDanglingLifetime */
        return err;
    }
    if (p->op == OP_GET || p->op == OP_LIST)
        d->m_reads++;
    if (p->op != OP_SET && p->op != OP_DEL && p->op != OP_TXN && p->op != OP_LEASE_GRANT &&
        p->op != OP_LEASE_REVOKE)
        return NULL;
    return encode_cmd(d, p, cmd);
}

/* Start a request that came as a JSON object (req consumed): from a local
 * client cl, or forwarded by the follower from (remote, its id rreqid). */
void start_request(struct raftd *d, json_t *req, client *cl, int remote, uint64_t from,
                   uint64_t rreqid)
{
    pending *p = pending_new(d, req, cl, remote, from, rreqid);
    if (!p)
        return;
    json_t *err = prepare(d, p);
    if (err) {
        finish(d, p, err);
        return;
    }
    if (d->verbose) {
        const char *op = json_string_value(json_object_get(req, "op"));
        vlog(d, "request %llu: %s%s", (unsigned long long)p->id, op ? op : "?",
             remote ? " (forwarded)" : "");
    }
    dispatch(d, p);
}

/* The write fast path: a client's plain {"op":"set","kv":{...}} on the
 * leader (codec_fast_set) becomes its command {"set":{...}} by copying
 * the object's text, with no jansson tree. 1 taken, 0 not for the fast
 * path (the caller parses it as usual). The request tree is rebuilt from
 * the command only if the write must be forwarded after all. */
#define FAST_SET_MAX 64
int start_fast_set(struct raftd *d, client *cl, const char *line, size_t len)
{
    static const char head[] = "{\"set\":";
    codec_kv kv[FAST_SET_MAX];
    size_t n = 0, off = 0, olen = 0;
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.role != RAFT_LEADER ||
        !codec_fast_set(line, len, 1, kv, FAST_SET_MAX, KV_KEY_MAX, KV_VALUE_MAX, &n, &off, &olen))
        return 0;
    size_t cl_len = sizeof head - 1 + olen + 1;
    if (cl_len > d->max_entry)
        return 0;
    char *cmd = malloc(cl_len + 1);
    if (!cmd)
        return 0;
    memcpy(cmd, head, sizeof head - 1);
    memcpy(cmd + sizeof head - 1, line + off, olen);
    cmd[cl_len - 1] = '}';
    cmd[cl_len] = 0;
    pending *p = pending_new(d, NULL, cl, 0, 0, 0);
    if (!p) {
        free(cmd);
        return 1;
    }
    p->op = OP_SET;
    p->cmd = cmd;
    p->cmd_len = cl_len;
    vlog(d, "request %llu: set (fast path)", (unsigned long long)p->id);
    dispatch(d, p);
    return 1;
}

/* p's request tree; rebuilt from its command for a fast-path set. */
json_t *pending_req(pending *p)
{
    if (!p->req && p->op == OP_SET && p->cmd) {
        json_t *c = json_loadb(p->cmd, p->cmd_len, 0, NULL);
        json_t *kv = json_object_get(c, "set");
        if (kv)
            p->req = json_pack("{s:s,s:O}", "op", "set", "kv", kv);
        json_decref(c);
    }
    return p->req;
}

int is_write(int op)
{
    return op == OP_SET || op == OP_DEL || op == OP_TXN || op == OP_JOIN || op == OP_REMOVE ||
           op == OP_TRANSFER || op >= OP_LEASE_GRANT;
}
