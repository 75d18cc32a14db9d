/*
 * key-del - CGI: DELETE /key/K (If-Match: "N" deletes only when K was last
 * modified at index N, else 412; If-Match: * only when K exists;
 * If-None-Match: * only when it does not). Replies {"index":N}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "key-del"

/* DELETE /key/K takes no query parameters; a new one is one line here. */
static const char *const known_params[] = {
    NULL,
};

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
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    cgi_cond cond;
    if (cgi_cond_from_env(&cond, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    cgi_write_if(PROG, NULL, json_stringn(key, klen), &cond);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
