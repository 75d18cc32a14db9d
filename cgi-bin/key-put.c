/*
 * key-put - CGI: PUT /key/K with the raw request body as the value.
 * If-Match: "N" sets only when K was last modified at index N;
 * If-Match: * only when K exists; If-None-Match: * only when K does not
 * exist (412 otherwise). Replies {"index":N} with ETag: "N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "key-put"

/* PUT /key/K takes no query parameters; a new one is one line here. */
static const char *const known_params[] = {
    NULL,
};

static int handle(void)
{
    cgi_target t;
    const char *why;
    char key[KV_KEY_MAX + 2];
    size_t klen;
    char *body;
    size_t blen;

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
    int st = cgi_read_body(STDIN_FILENO, getenv("CONTENT_LENGTH"), CGI_BODY_MAX, &body, &blen,
                           &why);
    if (st)
        return cgi_error(stdout, st, why), 0;
    if (memchr(body, '\0', blen) || !cgi_utf8_valid(body, blen)) {
        free(body);
        return cgi_error(stdout, 400, "value must be valid UTF-8 without NUL bytes"), 0;
    }
    json_t *kv = json_object();
    json_object_setn_new(kv, key, klen, json_stringn(body, blen));
    free(body);
    cgi_write_if(PROG, kv, NULL, &cond);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
