/*
 * key-put - CGI: PUT /key/K with the raw request body as the value.
 * If-Match: "N" sets only when K was last modified at index N;
 * If-Match: * only when K exists; If-None-Match: * only when K does not
 * exist (412 otherwise). ?lease=ID attaches K to lease ID (404 when there
 * is no such lease). Replies {"index":N} with ETag: "N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-put"

/* The query parameters of PUT /key/K: one line each. */
static const char *const known_params[] = {
    "lease",
    NULL,
};

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
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    cgi_cond cond;
    if (cgi_cond_from_env(&cond, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    json_t *lreq = json_object();
    char lwhy[256];
    if (cgi_lease_param(t.query, t.query_len, lreq, lwhy, sizeof lwhy) < 0) {
        json_decref(lreq);
        return cgi_error(stdout, 400, lwhy), 0;
    }
    if (json_object_size(lreq) && cond.kind != CGI_IF_NONE) {
        json_decref(lreq);
        return cgi_error(stdout, 400, "lease with If-Match or If-None-Match: use POST /txn"), 0;
    }
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen,
                           &why);
    if (st) {
        json_decref(lreq);
        return cgi_error(stdout, st, why), 0;
    }
    if (memchr(body, '\0', blen) || !cgi_utf8_valid(body, blen)) {
        free(body);
        json_decref(lreq);
        return cgi_error(stdout, 400, "value must be valid UTF-8 without NUL bytes"), 0;
    }
    json_t *kv = json_object();
    json_object_setn_new(kv, key, klen, json_stringn(body, blen));
    free(body);
    if (json_object_size(lreq)) { /* a set with a lease: no condition */
        json_object_set_new(lreq, "op", json_string("set"));
        json_object_set_new(lreq, "kv", kv);
        cgi_relay_write(PROG, lreq);
        return 0;
    }
    json_decref(lreq);
    cgi_write_if(PROG, kv, NULL, &cond);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
