/*
 * status - CGI: GET /status. Relays raftd's status object.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "status"

static int handle(void)
{
    cgi_target t;
    const char *why;
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    if (!cgi_path_is(t.path, t.path_len, "/status"))
        return cgi_error(stdout, 404, "not found"), 0;
    json_t *req = json_pack("{s:s}", "op", "status");
    cgi_call_raftd(PROG, req, NULL);
    json_decref(req);
    return 0;
}

int main(void) { return cgi_main(handle); }
