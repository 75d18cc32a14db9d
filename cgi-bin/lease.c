/*
 * lease - CGI: the lease routes.
 *   POST /lease {"ttl":"10s"}  grant: {"lease":"ID","ttl_ms":10000}
 *   PUT /lease/ID              renew: {"lease":"ID","ttl_ms":T}
 *   GET /lease/ID              {"lease":"ID","ttl_ms":T,"remaining_ms":R,"keys":[..]}
 *   DELETE /lease/ID           revoke (deletes its keys): {"index":N}
 * 404 {"error":"lease not found"} for an unknown or expired lease.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "lease"

/* The lease routes take no query parameters; a new one is one line here. */
static const char *const known_params[] = {
    NULL,
};

/* POST /lease: the body {"ttl":DUR}. */
static int grant(void)
{
    char *body, why[256];
    size_t blen;
    const char *w;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), 65536, &body, &blen, &w);
    if (st)
        return cgi_error(stdout, st, w), 0;
    json_t *obj = cgi_json_body(body, blen, JSON_REJECT_DUPLICATES);
    free(body);
    if (!obj)
        return 0;
    long long ms;
    json_t *ttl = json_object_get(obj, "ttl");
    if (!json_is_object(obj) || json_object_size(obj) != 1 || !ttl) {
        json_decref(obj);
        return cgi_error(stdout, 400, "body must be {\"ttl\":DURATION}, e.g. {\"ttl\":\"10s\"}"), 0;
    }
    int bad = cgi_parse_ttl(ttl, &ms, why, sizeof why);
    json_decref(obj);
    if (bad)
        return cgi_error(stdout, 400, why), 0;
    cgi_relay_write(PROG, json_pack("{s:s,s:I}", "op", "lease_grant", "ttl_ms", (json_int_t)ms));
    return 0;
}

static int handle(void)
{
    cgi_target t;
    const char *why;
    const char *method = getenv("REQUEST_METHOD");
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (!method)
        method = "GET";
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    if (cgi_path_is(t.path, t.path_len, "/lease")) {
        if (strcmp(method, "POST") != 0)
            return cgi_error(stdout, 405, "method not allowed"), 0;
        return grant();
    }
    long long id;
    if (t.path_len <= 7 || memcmp(t.path, "/lease/", 7) != 0)
        return cgi_error(stdout, 404, "not found"), 0;
    size_t idlen = t.path_len - 7;
    if (t.path[t.path_len - 1] == '/')
        idlen--;
    if (cgi_parse_lease_id(t.path + 7, idlen, &id) < 0)
        return cgi_error(stdout, 404, "lease not found"), 0;
    const char *op = !strcmp(method, "PUT")      ? "lease_renew"
                     : !strcmp(method, "DELETE") ? "lease_revoke"
                                                 : "lease_get";
    json_t *req = json_pack("{s:s,s:I}", "op", op, "lease", (json_int_t)id);
    if (!strcmp(op, "lease_get"))
        cgi_call_raftd(PROG, req, NULL), json_decref(req);
    else
        cgi_relay_write(PROG, req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
