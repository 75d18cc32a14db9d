/*
 * route-error - CGI: every request no other program serves.
 * 405 (with Allow) for a known path with the wrong method, else 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_main.h"

static int handle(void)
{
    cgi_target t;
    const char *why;
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    const char *allow = NULL;
    if (cgi_path_is(t.path, t.path_len, "/key"))
        allow = "Allow: GET, POST";
    else if (t.path_len > 5 && memcmp(t.path, "/key/", 5) == 0)
        allow = "Allow: GET, PUT, DELETE";
    else if (cgi_path_is(t.path, t.path_len, "/join") ||
             cgi_path_is(t.path, t.path_len, "/remove") ||
             cgi_path_is(t.path, t.path_len, "/leader"))
        allow = "Allow: POST";
    else if (t.path_len > 6 && memcmp(t.path, "/node/", 6) == 0)
        allow = "Allow: DELETE";
    else if (cgi_path_is(t.path, t.path_len, "/lease"))
        allow = "Allow: POST";
    else if (t.path_len > 7 && memcmp(t.path, "/lease/", 7) == 0)
        allow = "Allow: GET, PUT, DELETE";
    else if (cgi_path_is(t.path, t.path_len, "/txn"))
        allow = "Allow: POST";
    else if (cgi_path_is(t.path, t.path_len, "/watch") ||
             (t.path_len > 7 && memcmp(t.path, "/watch/", 7) == 0))
        allow = "Allow: GET";
    else if (cgi_path_is(t.path, t.path_len, "/status") ||
             cgi_path_is(t.path, t.path_len, "/health") ||
             cgi_path_is(t.path, t.path_len, "/metrics"))
        allow = "Allow: GET";
    if (!allow)
        return cgi_error(stdout, 404, "not found"), 0;
    const char *hdrs[2] = {allow, NULL};
    json_t *b = json_pack("{s:s}", "error", "method not allowed");
    cgi_respond(stdout, 405, hdrs, b);
    json_decref(b);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
