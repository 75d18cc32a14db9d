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
