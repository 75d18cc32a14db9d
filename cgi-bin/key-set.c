/*
 * key-set - CGI: POST /key with a JSON object of string values.
 * Sets all keys in one atomic operation; replies {"index":N}. ?lease=ID
 * attaches them all to lease ID (404 when there is no such lease).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-set"

static int handle(void)
{
    cgi_target t;
    const char *why;
    char *body;
    size_t blen;

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (!cgi_path_is(t.path, t.path_len, "/key"))
        return cgi_error(stdout, 404, "not found"), 0;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen,
                           &why);
    if (st)
        return cgi_error(stdout, st, why), 0;
    json_error_t jerr;
    json_t *obj = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &jerr);
    free(body);
    if (!obj)
        return cgi_errorf2(stdout, 400, "malformed JSON", jerr.text), 0;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return cgi_error(stdout, 400, "body must be a JSON object of string values"), 0;
    }
    if (json_object_size(obj) == 0) {
        json_decref(obj);
        return cgi_error(stdout, 400, "no keys given"), 0;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v)
    {
        if (cgi_key_valid(k, strlen(k), &why) < 0) {
            cgi_error(stdout, 400, why);
            json_decref(obj);
            return 0;
        }
        if (!json_is_string(v)) {
            cgi_errorf2(stdout, 400, "value is not a string for key", k);
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
    cgi_relay_write(PROG, req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
