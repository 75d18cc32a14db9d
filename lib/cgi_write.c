/*
 * cgi_write.c - the conditional requests of the CGI programs: If-Match and
 * If-None-Match parsed into a condition, a GET's If-None-Match matched
 * against an ETag, and a write sent to raftd under its condition (an index
 * condition as a txn "if"; If-Match: * as read, then write on that index)
 * with its answer relayed, ETag included.
 */
#include "cgi.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Skips spaces and tabs. */
static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int cgi_cond_parse(const char *im, const char *inm, cgi_cond *c, const char **why)
{
    c->kind = CGI_IF_NONE;
    c->index = 0;
    if (im && *im && inm && *inm) {
        *why = "give If-Match or If-None-Match, not both";
        return -1;
    }
    if (im && *im) {
        const char *s = skip_ows(im);
        if (s[0] == '*' && *skip_ows(s + 1) == '\0') {
            c->kind = CGI_IF_EXISTS;
            return 0;
        }
        if (cgi_parse_etag(im, &c->index) < 0 || c->index <= 0) {
            *why = "If-Match must be * (the key exists) or one entity tag \"N\" with "
                   "N > 0 (as sent in ETag)";
            return -1;
        }
        c->kind = CGI_IF_INDEX;
    } else if (inm && *inm) {
        const char *s = skip_ows(inm);
        if (s[0] != '*' || *skip_ows(s + 1) != '\0') {
            *why = "If-None-Match on a write supports only \"*\" (the key must not exist)";
            return -1;
        }
        c->kind = CGI_IF_INDEX; /* index 0: absent */
    }
    return 0;
}

int cgi_cond_from_env(cgi_cond *c, const char **why)
{
    return cgi_cond_parse(getenv("HTTP_IF_MATCH"), getenv("HTTP_IF_NONE_MATCH"), c, why);
}

int cgi_etag_matches(const char *inm, long long index)
{
    if (!inm)
        return 0;
    const char *s = skip_ows(inm);
    if (s[0] == '*' && *skip_ows(s + 1) == '\0')
        return 1;
    while (*s) { /* a list: tag, tag, ... */
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char tag[64];
        long long v;
        if (n < sizeof tag) {
            memcpy(tag, s, n);
            tag[n] = '\0';
            if (cgi_parse_etag(tag, &v) == 0 && v == index)
                return 1;
        }
        if (!comma)
            break;
        s = skip_ows(comma + 1);
    }
    return 0;
}

/* The request for a write of set or delkey (not consumed) under an index
 * condition on each of its keys (none when c is NULL). */
json_t *cgi_write_req(json_t *set, json_t *delkey, const cgi_cond *c)
{
    if (!c || c->kind == CGI_IF_NONE)
        return set ? json_pack("{s:s,s:O}", "op", "set", "kv", set)
                   : json_pack("{s:s,s:O}", "op", "del", "key", delkey);
    json_t *conds = json_array();
    if (set) {
        const char *k;
        json_t *v;
        json_object_foreach (set, k, v) {
            json_array_append_new(conds,
                                  json_pack("{s:s,s:I}", "key", k, "index", (json_int_t)c->index));
        }
        return json_pack("{s:s,s:O,s:o}", "op", "txn", "set", set, "if", conds);
    }
    json_array_append_new(conds,
                          json_pack("{s:O,s:I}", "key", delkey, "index", (json_int_t)c->index));
    return json_pack("{s:s,s:[O],s:o}", "op", "txn", "del", delkey, "if", conds);
}

/* Answers the client with raftd's reply to a write (consumed). */
static void relay_reply(int code, json_t *reply, int sets)
{
    cgi_write_answer(stdout, code, reply, sets);
}

void cgi_write_answer(FILE *out, int code, json_t *reply, int sets)
{
    char xidx[64], etag[64];
    const char *hdrs[3] = {NULL, NULL, NULL};
    json_t *idx = json_object_get(reply, "index");
    if (code == 200 && json_is_integer(idx)) {
        long long n = (long long)json_integer_value(idx);
        snprintf(xidx, sizeof xidx, "X-Keyval-Index: %lld", n);
        snprintf(etag, sizeof etag, "ETag: \"%lld\"", n);
        hdrs[0] = xidx;
        hdrs[1] = sets ? etag : NULL;
    }
    json_object_del(reply, "code");
    cgi_respond(out, code, hdrs, reply);
    json_decref(reply);
}

#define EXISTS_TRIES 8
/* If-Match: * on one key: read its index, write on that index. */
static void write_if_exists(const char *prog, json_t *set, json_t *delkey)
{
    const char *key = delkey ? json_string_value(delkey) : NULL;
    size_t klen = delkey ? json_string_length(delkey) : 0;
    if (set) {
        void *it = json_object_iter(set);
        key = json_object_iter_key(it);
        klen = strlen(key);
    }
    for (int n = 0; n < EXISTS_TRIES; n++) {
        json_t *get = json_pack("{s:s,s:s%}", "op", "get", "key", key, klen), *rep;
        int code = cgi_call_raftd(prog, get, &rep);
        json_decref(get);
        if (!rep)
            return; /* 503 written */
        json_t *ix = json_object_get(rep, "index");
        if (code == 404 || (code == 200 && !json_is_integer(ix))) {
            json_decref(rep);
            json_t *b = json_pack("{s:s,s:s%,s:i}", "error", "condition failed", "key", key, klen,
                                  "index", 0);
            cgi_respond(stdout, 412, NULL, b);
            json_decref(b);
            return;
        }
        if (code != 200)
            return relay_reply(code, rep, 0);
        cgi_cond c = {CGI_IF_INDEX, (long long)json_integer_value(ix)};
        json_decref(rep);
        json_t *req = cgi_write_req(set, delkey, &c);
        code = cgi_call_raftd(prog, req, &rep);
        json_decref(req);
        if (!rep)
            return;
        ix = json_object_get(rep, "index");
        if (code != 412 || !json_is_integer(ix) || json_integer_value(ix) == 0)
            return relay_reply(code, rep, set != NULL);
        json_decref(rep); /* changed in between, still there: again */
    }
    json_t *b = json_pack("{s:s,s:s}", "error",
                          "the key changed between each read and write; try again", "outcome",
                          "failed");
    cgi_respond(stdout, 503, NULL, b);
    json_decref(b);
}

void cgi_write_if(const char *prog, json_t *set, json_t *delkey, const cgi_cond *c)
{
    if (c && c->kind == CGI_IF_EXISTS)
        write_if_exists(prog, set, delkey);
    else
        cgi_relay_write(prog, cgi_write_req(set, delkey, c));
    json_decref(set);
    json_decref(delkey);
}

void cgi_relay_write(const char *prog, json_t *req)
{
    json_t *reply;
    const char *op = json_string_value(json_object_get(req, "op"));
    int sets = op && (!strcmp(op, "set") || (!strcmp(op, "txn") && json_object_get(req, "set")));
    int code = cgi_call_raftd(prog, req, &reply);
    json_decref(req);
    if (reply)
        relay_reply(code, reply, sets);
}

/* 304 for If-None-Match with the key's current entity tag: no body. */
static void not_modified(FILE *out, const char *const *hdrs)
{
    fputs("Status: 304 Not Modified\r\n", out);
    for (size_t i = 0; hdrs[i]; i++)
        fprintf(out, "%s\r\n", hdrs[i]);
    fputs("\r\n", out);
    fflush(out);
}

void cgi_respond_index_header(FILE *out, int code, json_t *reply)
{
    char xidx[64];
    const char *hdrs[2] = {NULL, NULL};
    json_t *ix = json_object_get(reply, "index");
    if (json_is_integer(ix)) {
        snprintf(xidx, sizeof xidx, "X-Keyval-Index: %lld", (long long)json_integer_value(ix));
        hdrs[0] = xidx;
    }
    json_object_del(reply, "code");
    json_object_del(reply, "index");
    cgi_respond(out, code, hdrs, reply);
}

/* n bytes that JSON encoding leaves as they are (jansson's, without
 * JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH): printable ASCII but '"', '\\'. */
static int json_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
            return 0;
    }
    return 1;
}

char *cgi_get_found_plain(int code, json_t *reply, const char *key, size_t klen,
                          const char *if_none_match, size_t *len)
{
    json_t *val = json_object_get(reply, "value"), *idx = json_object_get(reply, "index");
    json_t *app = json_object_get(reply, "applied");
    if (code != 200 || if_none_match || !json_is_string(val) || !json_is_integer(idx) ||
        (app && !json_is_integer(app)))
        return NULL;
    const char *v = json_string_value(val);
    size_t vl = json_string_length(val);
    if (!json_plain(key, klen) || !json_plain(v, vl))
        return NULL;
    size_t cap = 256 + klen + vl;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    long long i = (long long)json_integer_value(idx);
    int n = snprintf(b, cap,
                     "Status: 200 OK\r\nContent-Type: application/json\r\nETag: \"%lld\"\r\n"
                     "X-Keyval-Index: %lld\r\n",
                     i, i);
    if (app)
        n += snprintf(b + n, cap - (size_t)n, "X-Keyval-Applied: %lld\r\n",
                      (long long)json_integer_value(app));
    size_t o = (size_t)n;
    memcpy(b + o, "\r\n{\"", 4);
    o += 4;
    memcpy(b + o, key, klen);
    o += klen;
    memcpy(b + o, "\":\"", 3);
    o += 3;
    memcpy(b + o, v, vl);
    o += vl;
    memcpy(b + o, "\"}", 2);
    *len = o + 2;
    return b;
}

void cgi_get_answer(FILE *out, int code, json_t *reply, const char *key, size_t klen,
                    const char *if_none_match)
{
    size_t plen;
    char *plain = cgi_get_found_plain(code, reply, key, klen, if_none_match, &plen);
    if (plain) { /* the common case, without jansson */
        fwrite(plain, 1, plen, out);
        fflush(out);
        free(plain);
        return;
    }
    if (code != 200) { /* a 404's "index" is the store's: a header, not the body's */
        cgi_respond_index_header(out, code, reply);
        return;
    }
    json_t *val = json_object_get(reply, "value");
    json_t *idx = json_object_get(reply, "index");
    if (!json_is_string(val)) {
        fprintf(stderr, "key-get: bad reply from raftd: no string \"value\"\n");
        cgi_error(out, 502, "bad reply from raftd");
        return;
    }
    char etag[64] = "", xidx[64] = "", xapp[64] = "";
    const char *hdrs[4];
    int nh = 0;
    if (json_is_integer(idx)) {
        snprintf(etag, sizeof etag, "ETag: \"%lld\"", (long long)json_integer_value(idx));
        snprintf(xidx, sizeof xidx, "X-Keyval-Index: %lld", (long long)json_integer_value(idx));
        hdrs[nh++] = etag;
        hdrs[nh++] = xidx;
    }
    json_t *app = json_object_get(reply, "applied");
    if (json_is_integer(app)) {
        snprintf(xapp, sizeof xapp, "X-Keyval-Applied: %lld", (long long)json_integer_value(app));
        hdrs[nh++] = xapp;
    }
    hdrs[nh] = NULL;
    if (json_is_integer(idx) &&
        cgi_etag_matches(if_none_match, (long long)json_integer_value(idx))) {
        not_modified(out, hdrs);
        return;
    }
    json_t *body = json_object();
    json_object_setn(body, key, klen, val);
    cgi_respond(out, 200, hdrs, body);
    json_decref(body);
}

void cgi_keyw_handle(const char *prog, int route)
{
    cgi_cond cond;
    cgi_keyw_in in = {getenv("REQUEST_URI"), getenv("CONTENT_LENGTH"), getenv("HTTP_IF_MATCH"),
                      getenv("HTTP_IF_NONE_MATCH"), STDIN_FILENO};
    json_t *req = cgi_keyw_request(stdout, route, &in, &cond);
    if (!req)
        return;
    if (json_object_get(req, "lease")) { /* a set with a lease: no condition */
        cgi_relay_write(prog, req);
        return;
    }
    json_t *kv = json_incref(json_object_get(req, "kv"));
    json_t *key = json_incref(json_object_get(req, "key"));
    json_decref(req);
    cgi_write_if(prog, kv, key, &cond);
}
