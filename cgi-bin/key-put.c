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

#define ROUTE CGI_ROUTE_PUT

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
