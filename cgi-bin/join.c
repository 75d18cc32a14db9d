/*
 * join - CGI: POST /join with {"id":NAME,"addr":RADDR[,"haddr":HADDR]
 * [,"node_id":HEX16]}. Adds a node to the cluster (forwarded to the leader
 * by raftd); node_id is the joining node's Raft id from its status (keyval
 * -join sends it). A name that is a member with another id is refused (409).
 * Also serves POST /remove with {"id":NAME} and DELETE /node/NAME, which
 * remove a node, and POST /leader with {"id":NAME}, which hands leadership
 * to that node. All are forwarded to the leader by raftd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "join"
#define FIELD_MAX 255

/* The query parameters of these routes (none) and the fields of each body:
 * a new one is one line. */
static const char *const known_params[] = {
    NULL,
};
static const char *const join_fields[] = {
    "id", "addr", "haddr", "node_id", NULL,
};
static const char *const id_fields[] = {
    "id",
    NULL,
};

/* Checks an optional/required string member; returns its value or NULL
 * after writing a 400. *ok is cleared on error. */
static const char *member(json_t *obj, const char *name, int required, int *ok)
{
    json_t *v = json_object_get(obj, name);
    char msg[128];
    if (!v) {
        if (required) {
            snprintf(msg, sizeof msg, "missing \"%s\"", name);
            cgi_error(stdout, 400, msg);
            *ok = 0;
        }
        return NULL;
    }
    size_t n = json_string_length(v);
    if (!json_is_string(v) || n == 0 || n > FIELD_MAX || strlen(json_string_value(v)) != n) {
        snprintf(msg, sizeof msg, "\"%s\" must be a non-empty string of at most %d bytes", name,
                 FIELD_MAX);
        cgi_error(stdout, 400, msg);
        *ok = 0;
        return NULL;
    }
    return json_string_value(v);
}

/* Nonzero when addr looks like HOST:PORT with a port 1..65535. */
static int addr_ok(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 1 || p > 65535)
        return 0;
    for (const char *s = addr; s < colon; s++)
        if (*s <= ' ' || *s == '/' || *s == '"' || *s == '\'' || *s == '\\' || *s == ',' ||
            (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* POST /leader: raftd starts the transfer and answers at once; we then
 * watch this node's status until it names the new leader, for at most
 * LEADER_WAIT_MS: 200 {"leader":ID}, else 503 with the leader seen. */
#define LEADER_WAIT_MS 3000
static int transfer(json_t *req, const char *want)
{
    json_t *rep = NULL;
    int code = cgi_call_raftd(PROG, req, &rep);
    json_decref(req);
    if (!rep)
        return 0;
    if (code != 200) {
        json_object_del(rep, "code");
        cgi_respond(stdout, code, NULL, rep);
        json_decref(rep);
        return 0;
    }
    json_decref(rep);
    char seen[FIELD_MAX + 1] = "";
    for (int waited = 0; waited <= LEADER_WAIT_MS; waited += 50) {
        json_t *sreq = json_pack("{s:s}", "op", "status"), *st = NULL;
        code = cgi_call_raftd(PROG, sreq, &st);
        json_decref(sreq);
        if (!st)
            return 0; /* 503 written */
        const char *l = json_string_value(json_object_get(st, "leader"));
        snprintf(seen, sizeof seen, "%s", l ? l : "");
        json_decref(st);
        if (code == 200 && !strcmp(seen, want)) {
            json_t *b = json_pack("{s:s}", "leader", want);
            cgi_respond(stdout, 200, NULL, b);
            json_decref(b);
            return 0;
        }
        usleep(50 * 1000);
    }
    json_t *b = json_pack("{s:s,s:s}", "error", "leadership transfer did not complete in time",
                          "leader", seen);
    cgi_respond(stdout, 503, NULL, b);
    json_decref(b);
    return 0;
}

/* DELETE /node/NAME: NAME percent-decoded, one path segment. */
static int delete_node(const cgi_target *t)
{
    char id[FIELD_MAX + 1];
    size_t idlen;
    const char *why;
    const char *raw = t->path + 6;
    size_t rawlen = t->path_len - 6;
    if (rawlen > 0 && raw[rawlen - 1] == '/')
        rawlen--;
    if (rawlen == 0 || memchr(raw, '/', rawlen))
        return cgi_error(stdout, 404, "not found"), 0;
    if (cgi_pct_decode(raw, rawlen, 0, id, sizeof id, &idlen, &why) < 0)
        return cgi_errorf2(stdout, 400, "bad node id", why), 0;
    if (idlen == 0 || !cgi_utf8_valid(id, idlen))
        return cgi_error(stdout, 400, "bad node id: must be 1..255 bytes of UTF-8"), 0;
    json_t *req = json_pack("{s:s,s:s}", "op", "remove", "id", id);
    cgi_call_raftd(PROG, req, NULL);
    json_decref(req);
    return 0;
}

static int handle(void)
{
    cgi_target t;
    const char *why;
    char *body;
    size_t blen;
    int remove, leader = 0;
    const char *method = getenv("REQUEST_METHOD");

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    if (method && !strcmp(method, "DELETE")) {
        if (t.path_len > 6 && !memcmp(t.path, "/node/", 6))
            return delete_node(&t);
        return cgi_error(stdout, 404, "not found"), 0;
    }
    if (cgi_path_is(t.path, t.path_len, "/join"))
        remove = 0;
    else if (cgi_path_is(t.path, t.path_len, "/remove"))
        remove = 1;
    else if (cgi_path_is(t.path, t.path_len, "/leader"))
        remove = leader = 1;
    else
        return cgi_error(stdout, 404, "not found"), 0;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), 64 * 1024, &body, &blen, &why);
    if (st)
        return cgi_error(stdout, st, why), 0;
    json_t *obj = cgi_json_body(body, blen, JSON_REJECT_DUPLICATES);
    free(body);
    if (!obj)
        return 0;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cgi_error(stdout, 400, "body must be a JSON object"), 0;
    }
    if (cgi_fields_known(obj, remove ? id_fields : join_fields) < 0) {
        json_decref(obj);
        return 0;
    }
    int ok = 1;
    const char *id = member(obj, "id", 1, &ok);
    const char *addr = ok && !remove ? member(obj, "addr", 1, &ok) : NULL;
    const char *haddr = ok && !remove ? member(obj, "haddr", 0, &ok) : NULL;
    const char *node_id = ok && !remove ? member(obj, "node_id", 0, &ok) : NULL;
    if (!ok) {
        json_decref(obj);
        return 0;
    }
    if (addr && !addr_ok(addr)) {
        json_decref(obj);
        return cgi_error(stdout, 400, "\"addr\" must be HOST:PORT"), 0;
    }
    if (haddr && !addr_ok(haddr)) {
        json_decref(obj);
        return cgi_error(stdout, 400, "\"haddr\" must be HOST:PORT"), 0;
    }
    json_t *req = remove ? json_pack("{s:s,s:s}", "op", leader ? "transfer" : "remove", "id", id)
                         : json_pack("{s:s,s:s,s:s}", "op", "join", "id", id, "addr", addr);
    if (haddr)
        json_object_set_new(req, "haddr", json_string(haddr));
    if (node_id)
        json_object_set_new(req, "node_id", json_string(node_id));
    if (leader) {
        char want[FIELD_MAX + 1];
        snprintf(want, sizeof want, "%s", id);
        json_decref(obj);
        return transfer(req, want);
    }
    json_decref(obj);
    cgi_call_raftd(PROG, req, NULL);
    json_decref(req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
