/*
 * http_head.c - the strict HTTP/1.x request-head parser and its field
 * helpers (see http_head.h). One pass over at most HTTP_HEAD_MAX bytes;
 * every byte is looked at once, and only below buf + len.
 */
#include "http_head.h"

#define METHOD_MAX 16
#define CONTENT_LENGTH_DIGITS 18 /* 10^18 - 1 fits a long long */

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return 1;
    default: return 0;
    }
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* A byte of a field value: VCHAR, obs-text, SP or HTAB. */
static int is_value_byte(unsigned char c)
{
    return (c >= 0x21 && c != 0x7f) || is_ows(c);
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the C string z, ASCII case-insensitive. */
static int span_is(const char *s, size_t n, const char *z)
{
    size_t k = 0;
    for (; k < n; k++)
        if (!z[k] || lower((unsigned char)s[k]) != lower((unsigned char)z[k]))
            return 0;
    return z[k] == 0;
}

static http_span span(const unsigned char *p, size_t n)
{
    http_span s = {(const char *)p, n};
    return s;
}

/* Running out of bytes (i == end) means "read more", unless the head has
 * had all its HTTP_HEAD_MAX bytes already. */
#define MORE() return len >= HTTP_HEAD_MAX ? -1 : 0
#define AT_END() (i == end)

int http_head_parse(const char *buf, size_t len, http_head *h)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t end = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
    size_t i = 0, s;

    /* method SP */
    while (i < end && b[i] >= 'A' && b[i] <= 'Z' && i < METHOD_MAX)
        i++;
    if (AT_END())
        MORE();
    if (i == 0 || b[i] != ' ')
        return -1; /* also a 17th letter, a leading CRLF or SP */
    h->method = span(b, i);
    i++;

    /* request-target SP: origin-form only */
    s = i;
    if (AT_END())
        MORE();
    if (b[i] != '/')
        return -1;
    while (i < end && b[i] >= 0x21 && b[i] <= 0x7e)
        i++;
    if (AT_END())
        MORE();
    if (b[i] != ' ')
        return -1;
    h->target = span(b + s, i - s);
    i++;

    /* "HTTP/1." ("0" / "1") CRLF */
    static const char version[] = "HTTP/1.";
    for (size_t k = 0; k < sizeof version - 1; k++, i++) {
        if (AT_END())
            MORE();
        if (b[i] != (unsigned char)version[k])
            return -1;
    }
    if (AT_END())
        MORE();
    if (b[i] != '0' && b[i] != '1')
        return -1;
    h->minor = b[i] - '0';
    i++;
    for (const char *crlf = "\r\n"; *crlf; crlf++, i++) {
        if (AT_END())
            MORE();
        if (b[i] != (unsigned char)*crlf)
            return -1;
    }

    /* field lines, then the blank line */
    h->n_fields = 0;
    for (;;) {
        if (AT_END())
            MORE();
        if (b[i] == '\r') {
            i++;
            if (AT_END())
                MORE();
            if (b[i] != '\n')
                return -1;
            h->head_len = i + 1;
            return 1;
        }
        if (h->n_fields == HTTP_HDRS_MAX)
            return -1;
        /* name ":"; a SP/HTAB here is an obs-fold, a LF a bare one */
        s = i;
        while (i < end && is_tchar(b[i]))
            i++;
        if (AT_END())
            MORE();
        if (i == s || b[i] != ':')
            return -1;
        http_field *f = &h->fields[h->n_fields];
        f->name = span(b + s, i - s);
        i++;
        /* OWS value OWS: the value runs to its last non-OWS byte */
        while (i < end && is_ows(b[i]))
            i++;
        size_t vs = i, ve = i;
        for (; i < end && is_value_byte(b[i]); i++)
            if (!is_ows(b[i]))
                ve = i + 1;
        f->value = span(b + vs, ve - vs);
        for (const char *crlf = "\r\n"; *crlf; crlf++, i++) {
            if (AT_END())
                MORE();
            if (b[i] != (unsigned char)*crlf)
                return -1;
        }
        h->n_fields++;
    }
}

const http_span *http_head_field(const http_head *h, const char *name, int *count)
{
    const http_span *first = NULL;
    int n = 0;
    for (size_t k = 0; k < h->n_fields; k++) {
        if (!span_is(h->fields[k].name.p, h->fields[k].name.n, name))
            continue;
        if (!first)
            first = &h->fields[k].value;
        n++;
    }
    if (count)
        *count = n;
    return first;
}

long long http_head_content_length(const http_head *h)
{
    int count;
    const http_span *v = http_head_field(h, "Content-Length", &count);
    if (!v)
        return -1;
    if (count != 1 || v->n < 1 || v->n > CONTENT_LENGTH_DIGITS)
        return -2;
    long long n = 0;
    for (size_t k = 0; k < v->n; k++) {
        if (v->p[k] < '0' || v->p[k] > '9')
            return -2;
        n = n * 10 + (v->p[k] - '0');
    }
    return n;
}

/* Whether the comma-separated list s[0..n) holds the token z (any case,
 * OWS around each element, empty elements skipped). */
static int list_has(const char *s, size_t n, const char *z)
{
    size_t k = 0;
    while (k < n) {
        size_t e = k;
        while (e < n && s[e] != ',')
            e++;
        size_t a = k, b = e;
        while (a < b && is_ows((unsigned char)s[a]))
            a++;
        while (b > a && is_ows((unsigned char)s[b - 1]))
            b--;
        if (span_is(s + a, b - a, z))
            return 1;
        k = e + 1;
    }
    return 0;
}

int http_head_keep_alive(const http_head *h)
{
    int closing = 0, keep = 0;
    for (size_t k = 0; k < h->n_fields; k++) {
        const http_field *f = &h->fields[k];
        if (!span_is(f->name.p, f->name.n, "Connection"))
            continue;
        closing |= list_has(f->value.p, f->value.n, "close");
        keep |= list_has(f->value.p, f->value.n, "keep-alive");
    }
    if (closing)
        return 0;
    return h->minor >= 1 || keep;
}
