/*
 * fastset.c - the client-JSON fast path of lib/fastset.h: recognizes the
 * common "set" request or command without building a jansson tree. Not
 * part of the peer wire format (lib/codec.c); anything it does not match
 * goes to the caller's full JSON parser.
 */
#include "fastset.h"

#include <string.h>

static size_t fj_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* A plain string at s[*i]: its bytes between the quotes. */
static int fj_str(const char *s, size_t n, size_t *i, const char **p, size_t *len)
{
    if (*i >= n || s[*i] != '"')
        return 0;
    size_t j = *i + 1;
    while (j < n && s[j] != '"') {
        unsigned char c = (unsigned char)s[j];
        if (c < 0x20 || c > 0x7e || c == '\\')
            return 0;
        j++;
    }
    if (j >= n)
        return 0;
    *p = s + *i + 1;
    *len = j - *i - 1;
    *i = j + 1;
    return 1;
}

static int fj_is(const char *p, size_t len, const char *word)
{
    size_t wl = strlen(word);
    return len == wl && memcmp(p, word, wl) == 0;
}

/* {"k":"v",...} at s[*i]. */
static int fj_pairs(const char *s, size_t n, size_t *i, codec_kv *kv, size_t max, size_t key_max,
                    size_t value_max, size_t *count)
{
    size_t j = *i, c = 0;
    if (j >= n || s[j] != '{')
        return 0;
    j = fj_ws(s, n, j + 1);
    for (;;) {
        codec_kv e;
        if (c == max || !fj_str(s, n, &j, &e.k, &e.kl) || e.kl == 0 || e.kl > key_max)
            return 0;
        j = fj_ws(s, n, j);
        if (j >= n || s[j] != ':')
            return 0;
        j = fj_ws(s, n, j + 1);
        if (!fj_str(s, n, &j, &e.v, &e.vl) || e.vl > value_max)
            return 0;
        for (size_t x = 0; x < c; x++)
            if (kv[x].kl == e.kl && memcmp(kv[x].k, e.k, e.kl) == 0)
                return 0; /* duplicate: the full parser refuses it */
        kv[c++] = e;
        j = fj_ws(s, n, j);
        if (j < n && s[j] == ',') {
            j = fj_ws(s, n, j + 1);
            continue;
        }
        if (j < n && s[j] == '}')
            break;
        return 0;
    }
    *i = j + 1;
    *count = c;
    return 1;
}

int codec_fast_set(const char *s, size_t n, int request, codec_kv *kv, size_t max, size_t key_max,
                   size_t value_max, size_t *count, size_t *obj_off, size_t *obj_len)
{
    int have_op = 0, have_obj = 0;
    if (!s)
        return 0;
    size_t i = fj_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return 0;
    i = fj_ws(s, n, i + 1);
    for (;;) {
        const char *name;
        size_t nl;
        if (!fj_str(s, n, &i, &name, &nl))
            return 0;
        i = fj_ws(s, n, i);
        if (i >= n || s[i] != ':')
            return 0;
        i = fj_ws(s, n, i + 1);
        if (request && fj_is(name, nl, "op")) {
            const char *v;
            size_t vl;
            if (have_op || !fj_str(s, n, &i, &v, &vl) || !fj_is(v, vl, "set"))
                return 0;
            have_op = 1;
        } else if (fj_is(name, nl, request ? "kv" : "set")) {
            if (have_obj)
                return 0;
            *obj_off = i;
            if (!fj_pairs(s, n, &i, kv, max, key_max, value_max, count))
                return 0;
            *obj_len = i - *obj_off;
            have_obj = 1;
        } else {
            return 0;
        }
        i = fj_ws(s, n, i);
        if (i < n && s[i] == ',') {
            i = fj_ws(s, n, i + 1);
            continue;
        }
        if (i < n && s[i] == '}')
            break;
        return 0;
    }
    i = fj_ws(s, n, i + 1);
    return i == n && have_obj && (have_op || !request) && *count > 0;
}
