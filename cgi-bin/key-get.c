/*
 * key-get - CGI: GET /key/K[?level=stale][&index=M&wait=DUR]
 * Replies {"K":"V"} with ETag: "N" and X-Keyval-Index: N (N = the index of
 * the entry that last modified K); 404 {"error":"key not found"} with
 * X-Keyval-Index: the store's index. With index=M, a blocking query: raftd
 * holds the answer until K changes after M or DUR passes.
 * If-None-Match with that ETag (or *, or a list holding it): 304, no body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"
#include "cgi_main.h"

#define PROG "key-get"

/* The query parameters of GET /key/K: one line each. */
static const char *const known_params[] = {
    "level",
    "index",
    "wait",
    NULL,
};

/* 304 for If-None-Match with the key's current entity tag: no body. */
static void not_modified(const char *const *hdrs)
{
    fputs("Status: 304 Not Modified\r\n", stdout);
    for (size_t i = 0; hdrs[i]; i++)
        fprintf(stdout, "%s\r\n", hdrs[i]);
    fputs("\r\n", stdout);
    fflush(stdout);
}

static int handle(void)
{
    cgi_target t;
    const char *why;
    char key[KV_KEY_MAX + 2];
    char level[32];
    size_t klen;

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int m = cgi_match_key_path(t.path, t.path_len, key, sizeof key, &klen, &why);
    if (m < 0)
        return cgi_error(stdout, 400, why), 0;
    if (m == 0)
        return cgi_error(stdout, 404, "not found"), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    int lv = cgi_query_get(t.query, t.query_len, "level", level, sizeof level, &why);
    if (lv < 0)
        return cgi_errorf2(stdout, 400, "bad level parameter", why), 0;
    if (lv > 0 && strcmp(level, "stale") != 0 && strcmp(level, "linearizable") != 0 &&
        strcmp(level, "") != 0)
        return cgi_error(stdout, 400, "bad level parameter: expected stale or linearizable"), 0;

    json_t *req = json_pack("{s:s,s:s%}", "op", "get", "key", key, klen);
    if (lv > 0 && strcmp(level, "stale") == 0)
        json_object_set_new(req, "level", json_string("stale"));
    char bwhy[256];
    long long wait_ms;
    if (cgi_blocking_params(t.query, t.query_len, req, &wait_ms, bwhy, sizeof bwhy) < 0) {
        json_decref(req);
        return cgi_error(stdout, 400, bwhy), 0;
    }
    json_t *reply;
    int code = cgi_call_raftd_t(PROG, req, (int)wait_ms + client_timeout_from_env(), &reply);
    json_decref(req);
    if (!reply)
        return 0;
    if (code != 200) {
        char x404[64];
        const char *h404[2] = {NULL, NULL};
        json_t *ix = json_object_get(reply, "index");
        if (json_is_integer(ix)) {
            snprintf(x404, sizeof x404, "X-Keyval-Index: %lld", (long long)json_integer_value(ix));
            h404[0] = x404;
        }
        json_object_del(reply, "code");
        json_object_del(reply, "index"); /* a 404's store index: not the body's */
        cgi_respond(stdout, code, h404, reply);
        json_decref(reply);
        return 0;
    }
    json_t *val = json_object_get(reply, "value");
    json_t *idx = json_object_get(reply, "index");
    if (!json_is_string(val)) {
        fprintf(stderr, PROG ": bad reply from raftd: no string \"value\"\n");
        cgi_error(stdout, 502, "bad reply from raftd");
        json_decref(reply);
        return 0;
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
        cgi_etag_matches(getenv("HTTP_IF_NONE_MATCH"), (long long)json_integer_value(idx))) {
        not_modified(hdrs);
        json_decref(reply);
        return 0;
    }
    json_t *body = json_object();
    json_object_setn(body, key, klen, val);
    cgi_respond(stdout, 200, hdrs, body);
    json_decref(body);
    json_decref(reply);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
