/*
 * key-get - CGI: GET /key/K[?level=stale][&index=M&wait=DUR]
 * Replies {"K":"V"} with ETag: "N" and X-Keyval-Index: N (N = the index of
 * the entry that last modified K); 404 {"error":"key not found"} with
 * X-Keyval-Index: the store's index. With index=M, a blocking query: raftd
 * holds the answer until K changes after M or DUR passes.
 * If-None-Match with that ETag (or *, or a list holding it): 304, no body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"
#include "cgi_main.h"

#define PROG "key-get"

static int handle(void)
{
    char key[KV_KEY_MAX + 2];
    size_t klen;
    long long wait_ms;
    json_t *req = cgi_get_request(stdout, getenv("REQUEST_URI"), key, &klen, &wait_ms);
    if (!req)
        return 0;
    json_t *reply;
    int code = cgi_call_raftd_t(PROG, req, (int)wait_ms + client_timeout_from_env(), &reply);
    json_decref(req);
    if (!reply)
        return 0;
    cgi_get_answer(stdout, code, reply, key, klen, getenv("HTTP_IF_NONE_MATCH"));
    json_decref(reply);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
