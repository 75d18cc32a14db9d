/*
 * fuzz_http - libFuzzer target for the strict HTTP/1.x request-head parser
 * (lib/http_head.c): the bytes a client sends raftd before it decides
 * whether to answer itself or hand the connection to lighttpd.
 *
 * Input: the bytes as received. Each parse reads a malloc'd copy of
 * exactly the bytes it is given, so ASan sees a read past buf + len. On 1
 * the head's invariants are checked (spans inside buf, head_len within len
 * and ending in the first CRLF CRLF, values trimmed, the byte classes the
 * parser promises) and the helpers run over it. Then a prefix (its length
 * from bytes 0-1; the whole head or one byte short of it when the input
 * parses) must agree: 0, or the same answer, as -1 and 1 do not change
 * with more bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

static const char *lo, *hi; /* the buffer parsed */

static void span_inside(http_span s)
{
    if (s.n > (size_t)(hi - lo) || s.p < lo || s.p > hi - s.n)
        abort();
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_head(const http_head *h, size_t len)
{
    if (h->head_len < 16 || h->head_len > len || h->head_len > HTTP_HEAD_MAX)
        abort(); /* the shortest: "M / HTTP/1.0\r\n\r\n" */
    if (memcmp(lo + h->head_len - 4, "\r\n\r\n", 4) != 0)
        abort();
    /* the first CRLF CRLF ends the head */
    for (size_t k = 0; k + 4 < h->head_len; k++)
        if (!memcmp(lo + k, "\r\n\r\n", 4))
            abort();
    if (h->minor != 0 && h->minor != 1)
        abort();
    if (h->method.p != lo || h->method.n < 1 || h->method.n > 16)
        abort();
    span_inside(h->target);
    if (h->target.n < 1 || h->target.p[0] != '/')
        abort();
    if (h->n_fields > HTTP_HDRS_MAX)
        abort();
    for (size_t k = 0; k < h->n_fields; k++) {
        const http_field *f = &h->fields[k];
        span_inside(f->name);
        span_inside(f->value);
        if (f->name.n < 1 || f->value.p + f->value.n > lo + h->head_len)
            abort();
        for (size_t j = 0; j < f->name.n; j++)
            if ((unsigned char)f->name.p[j] <= ' ' || f->name.p[j] == ':' ||
                (unsigned char)f->name.p[j] >= 0x7f)
                abort();
        if (f->value.n && (is_ows(f->value.p[0]) || is_ows(f->value.p[f->value.n - 1])))
            abort();
        for (size_t j = 0; j < f->value.n; j++) {
            unsigned char c = (unsigned char)f->value.p[j];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                abort();
        }
        /* the lookup finds this field's name, at this field or before */
        char name[64];
        if (f->name.n < sizeof name) {
            memcpy(name, f->name.p, f->name.n);
            name[f->name.n] = 0;
            int count = 0;
            const http_span *v = http_head_field(h, name, &count);
            if (!v || count < 1 || (size_t)count > h->n_fields || v > &f->value)
                abort();
        }
    }
    long long cl = http_head_content_length(h);
    if (cl < -2 || cl > 999999999999999999LL)
        abort();
    int count = 0;
    const http_span *v = http_head_field(h, "content-length", &count);
    if ((cl == -1) != (v == NULL) || (cl >= 0 && count != 1))
        abort();
    int ka = http_head_keep_alive(h);
    if (ka != 0 && ka != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    lo = buf;
    hi = buf + size;
    http_head h, hp;
    int r = http_head_parse(buf, size, &h);
    if (r != 1 && r != 0 && r != -1)
        abort();
    if (r == 0 && size >= HTTP_HEAD_MAX)
        abort();
    if (r == 1)
        check_head(&h, size);
    /* a prefix of the input: 0, or the same answer (and the same head) */
    size_t pick = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : size ? data[0] : 0;
    size_t cut = pick % (size + 1);
    if (r == 1 && h.head_len > cut)
        cut = h.head_len - pick % 2;   /* the whole head, or one byte short */
    char *pre = malloc(cut ? cut : 1); /* its own copy: ASan sees a read past cut */
    if (!pre)
        abort();
    memcpy(pre, buf, cut);
    int rp = http_head_parse(pre, cut, &hp);
    free(pre);
    if (rp != 0 && rp != r)
        abort();
    if (r == 1 && cut >= h.head_len && rp != 1)
        abort();
    if (rp == 1 && (hp.head_len != h.head_len || hp.n_fields != h.n_fields))
        abort();
    if (r == 1 && cut == h.head_len - 1 && rp != 0)
        abort();
    free(buf);
    return 0;
}
