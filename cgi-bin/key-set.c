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

#define ROUTE CGI_ROUTE_POST

static int handle(void)
{
    cgi_cond cond;
    cgi_keyw_in in = {getenv("REQUEST_URI"), getenv("CONTENT_LENGTH"), getenv("HTTP_IF_MATCH"),
                      getenv("HTTP_IF_NONE_MATCH"), STDIN_FILENO};
    json_t *req = cgi_keyw_request(stdout, ROUTE, &in, &cond);
    if (!req)
        return 0;
    if (json_object_get(req, "lease")) { /* a set with a lease: no condition */
        cgi_relay_write(PROG, req);
        return 0;
    }
    json_t *kv = json_incref(json_object_get(req, "kv"));
    json_t *key = json_incref(json_object_get(req, "key"));
    json_decref(req);
    cgi_write_if(PROG, kv, key, &cond);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
