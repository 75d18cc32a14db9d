/*
 * key-list - CGI: GET /key?prefix=P&after=K&limit=N[&level=stale][&index=M&wait=DUR]
 * X-Keyval-Index: the store's index. With index=M, a blocking query.
 * Replies {"items":[{"key":..,"value":..,"index":..}],"more":bool}: at most
 * limit (default KV_LIST_DEFAULT) items; a limit above KV_LIST_MAX is
 * KV_LIST_MAX, and "more" tells the client to ask again with after=.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"
#include "cgi_main.h"

#define PROG "key-list"
#define LIMIT_WHY \
    "bad limit parameter: expected a whole number of at least 1 (above 1000, " \
    "the page holds 1000 keys and \"more\" says whether keys are left)"

/* The query parameters of GET /key: one line each. */
static const char *const known_params[] = {
    "prefix", "after", "limit", "level", "index", "wait", NULL,
};

static int handle(void)
{
    cgi_target t;
    const char *why;
    char prefix[KV_KEY_MAX + 2], after[KV_KEY_MAX + 2], num[32], level[32];

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (!cgi_path_is(t.path, t.path_len, "/key"))
        return cgi_error(stdout, 404, "not found"), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    json_t *req = json_pack("{s:s}", "op", "list");
    int r = cgi_query_get(t.query, t.query_len, "prefix", prefix, sizeof prefix, &why);
    if (r < 0 || (r > 0 && !cgi_utf8_valid(prefix, strlen(prefix)))) {
        json_decref(req);
        return cgi_errorf2(stdout, 400, "bad prefix parameter", r < 0 ? why : "not valid UTF-8"), 0;
    }
    json_object_set_new(req, "prefix", json_string(r > 0 ? prefix : ""));
    r = cgi_query_get(t.query, t.query_len, "after", after, sizeof after, &why);
    if (r < 0 || (r > 0 && !cgi_utf8_valid(after, strlen(after)))) {
        json_decref(req);
        return cgi_errorf2(stdout, 400, "bad after parameter", r < 0 ? why : "not valid UTF-8"), 0;
    }
    if (r > 0 && after[0])
        json_object_set_new(req, "after", json_string(after));
    r = cgi_query_get(t.query, t.query_len, "limit", num, sizeof num, &why);
    if (r != 0) {
        char *end;
        errno = 0;
        long long v = r > 0 ? strtoll(num, &end, 10) : 0;
        if (r < 0 || !num[0] || *end || v < 1 || errno) {
            json_decref(req);
            return cgi_error(stdout, 400, LIMIT_WHY), 0;
        }
        /* Above the page size: one full page and "more", as raftd does. */
        json_object_set_new(req, "limit", json_integer(v > KV_LIST_MAX ? KV_LIST_MAX : v));
    }
    r = cgi_query_get(t.query, t.query_len, "level", level, sizeof level, &why);
    if (r < 0 ||
        (r > 0 && strcmp(level, "stale") && strcmp(level, "linearizable") && strcmp(level, ""))) {
        json_decref(req);
        return cgi_error(stdout, 400, "bad level parameter: expected stale or linearizable"), 0;
    }
    if (r > 0 && strcmp(level, "stale") == 0)
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
    cgi_respond_index_header(stdout, code, reply);
    json_decref(reply);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
