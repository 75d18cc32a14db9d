/*
 * cgi_keyreq.c - the request of GET /key/K from its target: shared by the
 * key-get program and raftd's FastCGI responder (bin/raftd/http_fast.c),
 * so both answer a bad request with the same words.
 */
#include "cgi.h"
#include "cgi_coord.h"

#include <string.h>

/* The query parameters of GET /key/K: one line each. */
static const char *const get_params[] = {
    "level",
    "index",
    "wait",
    NULL,
};

json_t *cgi_get_request(FILE *out, const char *uri, char *key, size_t *klen, long long *wait_ms)
{
    cgi_target t;
    const char *why;
    char level[32];

    if (cgi_split_target(uri, &t, &why) < 0)
        return cgi_error(out, 400, why), NULL;
    int m = cgi_match_key_path(t.path, t.path_len, key, KV_KEY_MAX + 2, klen, &why);
    if (m < 0)
        return cgi_error(out, 400, why), NULL;
    if (m == 0)
        return cgi_error(out, 404, "not found"), NULL;
    if (cgi_query_known_f(out, &t, get_params) < 0)
        return NULL;
    int lv = cgi_query_get(t.query, t.query_len, "level", level, sizeof level, &why);
    if (lv < 0)
        return cgi_errorf2(out, 400, "bad level parameter", why), NULL;
    if (lv > 0 && strcmp(level, "stale") != 0 && strcmp(level, "linearizable") != 0 &&
        strcmp(level, "") != 0)
        return cgi_error(out, 400, "bad level parameter: expected stale or linearizable"), NULL;

    json_t *req = json_pack("{s:s,s:s%}", "op", "get", "key", key, *klen);
    if (lv > 0 && strcmp(level, "stale") == 0)
        json_object_set_new(req, "level", json_string("stale"));
    char bwhy[256];
    if (cgi_blocking_params(t.query, t.query_len, req, wait_ms, bwhy, sizeof bwhy) < 0) {
        json_decref(req);
        return cgi_error(out, 400, bwhy), NULL;
    }
    return req;
}

/* The query parameters of the writes: one line each. */
static const char *const put_params[] = {"lease", NULL};
static const char *const del_params[] = {NULL};

/* The body of a PUT /key/K or POST /key read from fd (or cgi_body_reader):
 * NULL after writing the error. */
static char *write_body(FILE *out, int fd, const char *content_length, size_t *blen)
{
    const char *why;
    char *body;
    int st = cgi_read_body(fd, content_length, CGI_BODY_MAX, &body, blen, &why);
    if (st)
        return cgi_error(out, st, why), NULL;
    return body;
}

/* POST /key's body: an object of valid keys with string values. */
static json_t *set_body(FILE *out, char *body, size_t blen, const cgi_cond *cond)
{
    const char *why;
    json_t *obj = cgi_json_body_f(out, body, blen, JSON_REJECT_DUPLICATES);
    free(body);
    if (!obj)
        return NULL;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cgi_error(out, 400, "body must be a JSON object of string values"), NULL;
    }
    if (json_object_size(obj) == 0) {
        json_decref(obj);
        return cgi_error(out, 400, "no keys given"), NULL;
    }
    if (cond->kind == CGI_IF_EXISTS && json_object_size(obj) > 1) {
        json_decref(obj);
        return cgi_error(out, 400, "If-Match: * takes a body of one key (or PUT /key/K)"), NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v) {
        if (cgi_key_valid(k, strlen(k), &why) < 0) {
            cgi_error(out, 400, why);
            json_decref(obj);
            return NULL;
        }
        if (!json_is_string(v)) {
            char msg[1200];
            snprintf(msg, sizeof msg,
                     "value of key \"%s\" is not a string (the body is the "
                     "keys to set, each with a string value)",
                     k);
            cgi_error(out, 400, msg);
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *cgi_keyw_request(FILE *out, int route, const cgi_keyw_in *in, cgi_cond *cond)
{
    cgi_target t;
    const char *why;
    char key[KV_KEY_MAX + 2];
    size_t klen = 0;

    if (cgi_split_target(in->uri, &t, &why) < 0)
        return cgi_error(out, 400, why), NULL;
    if (route == CGI_ROUTE_POST) {
        if (!cgi_path_is(t.path, t.path_len, "/key"))
            return cgi_error(out, 404, "not found"), NULL;
    } else {
        int m = cgi_match_key_path(t.path, t.path_len, key, sizeof key, &klen, &why);
        if (m < 0)
            return cgi_error(out, 400, why), NULL;
        if (m == 0)
            return cgi_error(out, 404, "not found"), NULL;
    }
    if (cgi_query_known_f(out, &t, route == CGI_ROUTE_DEL ? del_params : put_params) < 0)
        return NULL;
    if (cgi_cond_parse(in->if_match, in->if_none_match, cond, &why) < 0)
        return cgi_error(out, 400, why), NULL;
    if (route == CGI_ROUTE_DEL)
        return json_pack("{s:s,s:s%}", "op", "del", "key", key, klen);
    json_t *req = json_object();
    char lwhy[256];
    if (route == CGI_ROUTE_PUT) {
        if (cgi_lease_param(t.query, t.query_len, req, lwhy, sizeof lwhy) < 0) {
            json_decref(req);
            return cgi_error(out, 400, lwhy), NULL;
        }
        if (json_object_size(req) && cond->kind != CGI_IF_NONE) {
            json_decref(req);
            return cgi_error(out, 400, "lease with If-Match or If-None-Match: use POST /txn"), NULL;
        }
    }
    size_t blen;
    char *body = write_body(out, in->fd, in->content_length, &blen);
    if (!body)
        return json_decref(req), NULL;
    json_t *kv;
    if (route == CGI_ROUTE_PUT) {
        if (memchr(body, '\0', blen) || !cgi_utf8_valid(body, blen)) {
            free(body);
            json_decref(req);
            return cgi_error(out, 400, "value must be valid UTF-8 without NUL bytes"), NULL;
        }
        kv = json_object();
        json_object_setn_new(kv, key, klen, json_stringn(body, blen));
        free(body);
    } else if (!(kv = set_body(out, body, blen, cond))) {
        return json_decref(req), NULL;
    }
    json_object_set_new(req, "op", json_string("set"));
    json_object_set_new(req, "kv", kv);
    if (route == CGI_ROUTE_POST) {
        if (cgi_lease_param(t.query, t.query_len, req, lwhy, sizeof lwhy) < 0) {
            json_decref(req);
            return cgi_error(out, 400, lwhy), NULL;
        }
        if (json_object_get(req, "lease") && cond->kind != CGI_IF_NONE) {
            json_decref(req);
            return cgi_error(out, 400, "lease with If-Match or If-None-Match: use POST /txn"), NULL;
        }
    }
    return req;
}
