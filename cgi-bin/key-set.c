/*
 * key-set - CGI: POST /key with a JSON object of string values.
 * Sets all keys in one atomic operation; replies {"index":N} with
 * ETag: "N". If-Match: "N" / If-None-Match: * hold for every key of the
 * body (all last changed at N / none exists); If-Match: * (exists) takes a
 * body of one key. ?lease=ID attaches them all to lease ID (404 when there
 * is no such lease; not with a condition: POST /txn does that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-set"

/* The query parameters of POST /key: one line each. */
static const char *const known_params[] = {
    "lease",
    NULL,
};

static int handle(void)
{
    cgi_target t;
    const char *why;
    char *body;
    size_t blen;
    cgi_cond cond;

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (!cgi_path_is(t.path, t.path_len, "/key"))
        return cgi_error(stdout, 404, "not found"), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    if (cgi_cond_from_env(&cond, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen,
                           &why);
    if (st)
        return cgi_error(stdout, st, why), 0;
    json_t *obj = cgi_json_body(body, blen, JSON_REJECT_DUPLICATES);
    free(body);
    if (!obj)
        return 0;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cgi_error(stdout, 400, "body must be a JSON object of string values"), 0;
    }
    if (json_object_size(obj) == 0) {
        json_decref(obj);
        return cgi_error(stdout, 400, "no keys given"), 0;
    }
    if (cond.kind == CGI_IF_EXISTS && json_object_size(obj) > 1) {
        json_decref(obj);
        return cgi_error(stdout, 400,
                         "If-Match: * takes a body of one key "
                         "(or PUT /key/K)"),
               0;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe (obj, tmp, k, v) {
        if (cgi_key_valid(k, strlen(k), &why) < 0) {
            cgi_error(stdout, 400, why);
            json_decref(obj);
            return 0;
        }
        if (!json_is_string(v)) {
            char msg[1200];
            snprintf(msg, sizeof msg,
                     "value of key \"%s\" is not a string (the body is the "
                     "keys to set, each with a string value)",
                     k);
            cgi_error(stdout, 400, msg);
            json_decref(obj);
            return 0;
        }
    }
    json_t *req = json_pack("{s:s,s:o}", "op", "set", "kv", obj);
    char lwhy[256];
    if (cgi_lease_param(t.query, t.query_len, req, lwhy, sizeof lwhy) < 0) {
        json_decref(req);
        return cgi_error(stdout, 400, lwhy), 0;
    }
    if (json_object_get(req, "lease")) { /* a set with a lease: no condition */
        if (cond.kind != CGI_IF_NONE) {
            json_decref(req);
            return cgi_error(stdout, 400, "lease with If-Match or If-None-Match: use POST /txn"), 0;
        }
        cgi_relay_write(PROG, req);
        return 0;
    }
    obj = json_incref(json_object_get(req, "kv"));
    json_decref(req);
    cgi_write_if(PROG, obj, NULL, &cond);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
