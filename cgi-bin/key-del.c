/*
 * key-del - CGI: DELETE /key/K (If-Match: "N" deletes only when K was last
 * modified at index N, else 412). Replies {"index":N}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "key-del"

static int handle(void)
{
    cgi_target t;
    const char *why;
    char key[KV_KEY_MAX + 2];
    size_t klen;

    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int m = cgi_match_key_path(t.path, t.path_len, key, sizeof key, &klen, &why);
    if (m < 0)
        return cgi_error(stdout, 400, why), 0;
    if (m == 0)
        return cgi_error(stdout, 404, "not found"), 0;
    json_t *conds;
    if (cgi_conditions(key, klen, &conds, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    json_t *req;
    if (conds)
        req = json_pack("{s:s,s:[s%],s:o}", "op", "txn", "del", key, klen, "if", conds);
    else
        req = json_pack("{s:s,s:s%}", "op", "del", "key", key, klen);
    cgi_relay_write(PROG, req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
