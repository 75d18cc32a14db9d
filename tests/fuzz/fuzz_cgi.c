/*
 * fuzz_cgi - libFuzzer target for the CGI request parsing of lib/cgi.c and
 * the body checks the CGI programs make (cgi-bin/key-set, key-put, join).
 *
 * Input: fields separated by a NUL byte:
 *   REQUEST_URI \0 CONTENT_LENGTH \0 If-Match \0 If-None-Match \0 body
 * Missing fields are unset. The body is read through cgi_read_body from a
 * memfd, exactly as from stdin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cgi.h"

static FILE *devnull;

static void set_or_unset(const char *name, const char *v)
{
    if (v)
        setenv(name, v, 1);
    else
        unsetenv(name);
}

static void check_key_json(json_t *obj)
{
    const char *k, *why;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (cgi_key_valid(k, strlen(k), &why) < 0)
            return;
        if (!json_is_string(v))
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    const char *field[5] = {0};
    size_t flen[5] = {0};
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    size_t pos = 0;
    int nf = 0;
    while (nf < 4 && pos <= size) {
        char *z = memchr(copy + pos, 0, size + 1 - pos);
        field[nf] = copy + pos;
        flen[nf] = (size_t)(z - (copy + pos));
        nf++;
        pos = (size_t)(z - copy) + 1;
        if (pos > size)
            break;
    }
    const char *body = pos <= size ? copy + pos : NULL;
    size_t blen = body ? size - pos : 0;

    /* Request target */
    cgi_target t;
    const char *why;
    if (field[0] && cgi_split_target(field[0], &t, &why) == 0) {
        if (t.path_len > flen[0] || t.query_len > flen[0])
            abort();
        char key[CGI_KEY_MAX + 2];
        size_t klen;
        int m = cgi_match_key_path(t.path, t.path_len, key, sizeof key, &klen, &why);
        if (m == 1) {
            if (klen == 0 || klen > CGI_KEY_MAX || strlen(key) != klen ||
                !cgi_utf8_valid(key, klen))
                abort();
            set_or_unset("HTTP_IF_MATCH", field[2]);
            set_or_unset("HTTP_IF_NONE_MATCH", field[3]);
            cgi_cond c;
            if (cgi_cond_from_env(&c, &why) == 0 && c.kind == CGI_IF_INDEX && c.index < 0)
                abort();
            (void)cgi_etag_matches(field[3], 7);
            static const char *const known[] = {"level", "limit", NULL};
            char bad[64];
            (void)cgi_query_unknown(t.query, t.query_len, known, bad, sizeof bad);
        }
        (void)cgi_path_is(t.path, t.path_len, "/key");
        (void)cgi_path_is(t.path, t.path_len, "/join");
        static const char *names[] = {"level", "prefix", "after", "limit", ""};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char out[CGI_KEY_MAX + 2];
            int r = cgi_query_get(t.query, t.query_len, names[i], out, sizeof out, &why);
            if (r == 1 && strlen(out) >= sizeof out)
                abort();
            char small[8];
            cgi_query_get(t.query, t.query_len, names[i], small, sizeof small, &why);
        }
    }
    if (field[0]) {
        char out[64];
        size_t ol;
        cgi_pct_decode(field[0], flen[0], 1, out, sizeof out, &ol, &why);
        long long ix;
        cgi_parse_etag(field[0], &ix);
    }

    /* Body: as stdin with CONTENT_LENGTH */
    int fd = memfd_create("body", 0);
    if (fd >= 0) {
        if (blen && write(fd, body, blen) != (ssize_t)blen)
            abort();
        lseek(fd, 0, SEEK_SET);
        char *b;
        size_t bl;
        int st = cgi_read_body(fd, field[1], 1 << 20, &b, &bl, &why);
        if (st == 0) {
            if (bl > blen || b[bl] != 0)
                abort();
            /* key-put: a raw value */
            (void)cgi_utf8_valid(b, bl);
            /* key-set / join: a JSON object */
            json_error_t je;
            json_t *obj = json_loadb(b, bl, JSON_REJECT_DUPLICATES, &je);
            if (json_is_object(obj)) {
                check_key_json(obj);
                cgi_respond(devnull, 200, NULL, obj);
            }
            json_decref(obj);
            free(b);
        } else {
            cgi_error(devnull, st, why);
        }
        close(fd);
    }
    free(copy);
    return 0;
}
