/*
 * key-put - CGI: PUT /key/K with the raw request body as the value.
 * If-Match: "N" sets only when K was last modified at index N;
 * If-None-Match: * sets only when K does not exist (412 otherwise).
 * ?lease=ID attaches K to lease ID (404 when there is no such lease).
 * Replies {"index":N}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-put"

static int handle(void)
{
    cgi_target t;
    const char *why;
    char key[KV_KEY_MAX + 2];
    size_t klen;
    char *body;
    size_t blen;

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int m = cgi_match_key_path(t.path, t.path_len, key, sizeof key, &klen, &why);
    if (m < 0)
        return cgi_error(stdout, 400, why), 0;
    if (m == 0)
        return cgi_error(stdout, 404, "not found"), 0;
    json_t *conds;
    if (cgi_conditions(key, klen, &conds, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen,
                           &why);
    if (st) {
        json_decref(conds);
        return cgi_error(stdout, st, why), 0;
    }
    if (memchr(body, '\0', blen) || !cgi_utf8_valid(body, blen)) {
        free(body);
        json_decref(conds);
        return cgi_error(stdout, 400, "value must be valid UTF-8 without NUL bytes"), 0;
    }
    json_t *kv = json_object();
    json_object_setn_new(kv, key, klen, json_stringn(body, blen));
    free(body);
    json_t *req;
    if (conds)
        req = json_pack("{s:s,s:o,s:o}", "op", "txn", "set", kv, "if", conds);
    else
        req = json_pack("{s:s,s:o}", "op", "set", "kv", kv);
    char lwhy[256];
    if (cgi_lease_param(t.query, t.query_len, req, lwhy, sizeof lwhy) < 0 ||
        (conds && json_object_get(req, "lease"))) {
        json_decref(req);
        return cgi_error(stdout, 400,
                         conds ? "lease with If-Match or If-None-Match: "
                                 "use POST /txn"
                               : lwhy),
               0;
    }
    cgi_relay_write(PROG, req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
