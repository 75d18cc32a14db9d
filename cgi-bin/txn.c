/*
 * txn - CGI: POST /txn {"if":[CMP..],"then":[OP..],"else":[OP..]}.
 * One log entry, atomic: all compares true -> the then-ops, else the
 * else-ops. Replies {"index":I,"succeeded":true|false}; a malformed txn is
 * 400 with the reason (413 beyond the batch limits) and writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "txn"

/* POST /txn takes no query parameters; a new one is one line here. */
static const char *const known_params[] = {
    NULL,
};

static int handle(void)
{
    cgi_target t;
    const char *w;
    char *body, why[512];
    size_t blen;
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &w) < 0)
        return cgi_error(stdout, 400, w), 0;
    if (!cgi_path_is(t.path, t.path_len, "/txn"))
        return cgi_error(stdout, 404, "not found"), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen, &w);
    if (st)
        return cgi_error(stdout, st, w), 0;
    json_t *obj = cgi_json_body(body, blen, JSON_REJECT_DUPLICATES);
    free(body);
    if (!obj)
        return 0;
    json_t *req;
    st = cgi_txn_request(obj, &req, why, sizeof why);
    json_decref(obj);
    if (st)
        return cgi_errorf2(stdout, st, "bad txn", why), 0;
    cgi_relay_write(PROG, req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
