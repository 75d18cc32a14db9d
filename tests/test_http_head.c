/*
 * test_http_head - the strict HTTP/1.x request-head parser (lib/http_head.c):
 * good heads with 0, 1 and 32 fields, every prefix of a good head, the
 * HTTP_HEAD_MAX and HTTP_HDRS_MAX limits, one head per malformation it
 * refuses, field lookup, Content-Length and keep-alive.
 *
 * Each parse reads a heap copy of exactly the bytes given, so that the
 * ASan build (build-asan/tests) catches a read past buf + len.
 */
#include "check.h"
#include "http_head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static http_head h;

/* http_head_parse over a malloc'd copy of s[0..n); the copy stays alive in
 * last_buf (freed by the next call) so the spans in h can be read. */
static char *last_buf;
static int parse_n(const char *s, size_t n)
{
    free(last_buf);
    last_buf = malloc(n ? n : 1);
    if (!last_buf)
        abort();
    memcpy(last_buf, s, n);
    return http_head_parse(last_buf, n, &h);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static int span_eq(http_span s, const char *z)
{
    return s.n == strlen(z) && memcmp(s.p, z, s.n) == 0;
}

/* A head with n fields "X-Field-K: value-K", into out (cap bytes). */
static size_t head_with_fields(char *out, size_t cap, int n)
{
    size_t len = (size_t)snprintf(out, cap, "GET /many HTTP/1.1\r\n");
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(out + len, cap - len, "X-Field-%d: value-%d\r\n", k, k);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    return len;
}

static void good_no_fields(void)
{
    const char *s = "GET / HTTP/1.1\r\n\r\n";
    CHECK(parse(s) == 1, "not parsed");
    CHECK(span_eq(h.method, "GET") && span_eq(h.target, "/"), "method/target");
    CHECK(h.minor == 1 && h.n_fields == 0 && h.head_len == strlen(s), "minor %d n %zu len %zu",
          h.minor, h.n_fields, h.head_len);
    CHECK(h.method.p == last_buf && h.target.p == last_buf + 4, "spans not into buf");
}

static void good_one_field_and_body(void)
{
    const char *s = "PUT /key/a%20b?lease=7&x=[1] HTTP/1.0\r\nHost: node0:8080\r\n\r\nBODY\r\n";
    CHECK(parse(s) == 1, "not parsed");
    CHECK(span_eq(h.method, "PUT") && span_eq(h.target, "/key/a%20b?lease=7&x=[1]"), "target");
    CHECK(h.minor == 0 && h.n_fields == 1, "minor %d n %zu", h.minor, h.n_fields);
    CHECK(span_eq(h.fields[0].name, "Host") && span_eq(h.fields[0].value, "node0:8080"), "field");
    CHECK(h.head_len == strlen(s) - strlen("BODY\r\n"), "head_len %zu", h.head_len);
}

static void good_32_fields(void)
{
    char b[4096];
    size_t n = head_with_fields(b, sizeof b, HTTP_HDRS_MAX);
    CHECK(parse_n(b, n) == 1, "32 fields refused");
    for (size_t k = 0; k < n; k++)
        CHECK(parse_n(b, k) == 0, "prefix of %zu bytes gives not 0", k);
    CHECK(parse_n(b, n) == 1, "32 fields refused");
    CHECK(h.n_fields == HTTP_HDRS_MAX && h.head_len == n, "n %zu", h.n_fields);
    CHECK(span_eq(h.fields[31].name, "X-Field-31") && span_eq(h.fields[31].value, "value-31"),
          "last field");
    n = head_with_fields(b, sizeof b, HTTP_HDRS_MAX + 1);
    CHECK(parse_n(b, n) == -1, "33 fields taken");
    /* and at once, when the 33rd line begins */
    const char *last = strstr(b, "X-Field-32:");
    CHECK(last && parse_n(b, (size_t)(last - b) + 1) == -1, "33rd field seen late");
    CHECK(parse_n(b, (size_t)(last - b)) == 0, "32 fields and no end yet not 0");
}

/* Every proper prefix of a good head is "read more"; the whole one parses. */
static void every_prefix_incomplete(void)
{
    const char *s = "POST /key?x=%2F HTTP/1.1\r\n"
                    "Host: a\r\n"
                    "Content-Length:  \t12\t \r\n"
                    "X-Empty:\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "\r\n";
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++)
        CHECK(parse_n(s, k) == 0, "prefix of %zu bytes gives not 0", k);
    CHECK(parse_n(s, n) == 1 && h.head_len == n && h.n_fields == 4, "whole head");
    CHECK(span_eq(h.fields[1].value, "12") && span_eq(h.fields[2].value, ""), "values trimmed");
}

static void pipelined_and_trailing_bytes(void)
{
    const char *s = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(parse(s) == 1 && h.head_len == 19 && span_eq(h.target, "/a"), "first");
    CHECK(parse(s + 19) == 1 && span_eq(h.target, "/b") && h.n_fields == 1, "second");
    /* bytes after the head are not looked at, however bad */
    static const char junk[] = "GET / HTTP/1.1\r\n\r\n\0\n\r \x01\xff";
    CHECK(parse_n(junk, sizeof junk - 1) == 1 && h.head_len == 18, "junk after head");
}

/* A head padded with one long field to len bytes, ending with the blank
 * line (complete) or not. */
static char *long_head(size_t len, int complete)
{
    char *b = malloc(len);
    if (!b)
        abort();
    const char *start = "GET / HTTP/1.1\r\nX-Pad: ";
    memcpy(b, start, strlen(start));
    memset(b + strlen(start), 'p', len - strlen(start));
    if (complete)
        memcpy(b + len - 4, "\r\n\r\n", 4);
    return b;
}

static void head_limits(void)
{
    char *b = long_head(HTTP_HEAD_MAX - 1, 0);
    CHECK(parse_n(b, HTTP_HEAD_MAX - 1) == 0, "MAX-1 bytes, no end: not 0");
    free(b);
    b = long_head(HTTP_HEAD_MAX, 0);
    int r = parse_n(b, HTTP_HEAD_MAX);
    free(b);
    CHECK(r == -1, "MAX bytes, no end: %d", r);
    b = long_head(HTTP_HEAD_MAX + 100, 0);
    r = parse_n(b, HTTP_HEAD_MAX + 100);
    free(b);
    CHECK(r == -1, "MAX+100 bytes, no end: %d", r);
    /* a head of exactly HTTP_HEAD_MAX bytes is taken, one more is not */
    b = long_head(HTTP_HEAD_MAX, 1);
    r = parse_n(b, HTTP_HEAD_MAX);
    free(b);
    CHECK(r == 1 && h.head_len == HTTP_HEAD_MAX, "head of MAX bytes: %d", r);
    b = long_head(HTTP_HEAD_MAX + 1, 1);
    r = parse_n(b, HTTP_HEAD_MAX + 1);
    free(b);
    CHECK(r == -1, "head of MAX+1 bytes: %d", r);
    /* a long target: the same limit */
    b = malloc(HTTP_HEAD_MAX);
    if (!b)
        abort();
    memcpy(b, "GET /", 5);
    memset(b + 5, 't', HTTP_HEAD_MAX - 5);
    r = parse_n(b, HTTP_HEAD_MAX - 1);
    CHECK(r == 0, "long target below MAX: %d", r);
    r = parse_n(b, HTTP_HEAD_MAX);
    free(b);
    CHECK(r == -1, "long target at MAX: %d", r);
}

static void methods(void)
{
    CHECK(parse("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n") == 1 && h.method.n == 16, "16 letters");
    CHECK(parse("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n") == -1, "17 letters");
    CHECK(parse("ABCDEFGHIJKLMNOPQ") == -1, "17 letters seen before the end");
    CHECK(parse("ABCDEFGHIJKLMNOP") == 0, "16 letters so far");
    CHECK(parse("M / HTTP/1.0\r\n\r\n") == 1 && h.minor == 0, "one letter");
    CHECK(parse("DELETE /key/a HTTP/1.1\r\n\r\n") == 1, "DELETE");
}

static void values_taken(void)
{
    CHECK(parse("GET / HTTP/1.1\r\nX: \t a  b\t c \t\r\n\r\n") == 1 &&
              span_eq(h.fields[0].value, "a  b\t c"),
          "OWS trimmed, inner SP/HTAB kept");
    CHECK(parse("GET / HTTP/1.1\r\nX: \t \r\n\r\n") == 1 && h.fields[0].value.n == 0,
          "value of OWS only is empty");
    CHECK(parse("GET / HTTP/1.1\r\nX:\r\n\r\n") == 1 && h.fields[0].value.n == 0, "empty value");
    CHECK(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n") == 1 &&
              span_eq(h.fields[0].value, "caf\xc3\xa9 \x80\xff"),
          "obs-text");
    CHECK(parse("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ:v\r\n\r\n") == 1 &&
              span_eq(h.fields[0].name, "!#$%&'*+-.^_`|~09azAZ") && span_eq(h.fields[0].value, "v"),
          "every tchar in a name");
    CHECK(parse("GET / HTTP/1.1\r\nX: \"quoted, list\"; a=b\r\n\r\n") == 1, "quotes");
}

static void field_lookup(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-Two: 1\r\nhost: b\r\nx-two: 2\r\nHOSTX: c\r\n"
                    "\r\n";
    CHECK(parse(s) == 1 && h.n_fields == 5, "not parsed");
    int count = -1;
    const http_span *v = http_head_field(&h, "HOST", &count);
    CHECK(v && span_eq(*v, "a") && count == 2, "HOST: count %d", count);
    v = http_head_field(&h, "X-two", &count);
    CHECK(v && span_eq(*v, "1") && count == 2, "X-two: count %d", count);
    v = http_head_field(&h, "hostx", &count);
    CHECK(v && span_eq(*v, "c") && count == 1, "hostx: count %d", count);
    v = http_head_field(&h, "Hos", &count);
    CHECK(!v && count == 0, "a prefix of a name matched");
    v = http_head_field(&h, "Host-Extra", &count);
    CHECK(!v && count == 0, "a longer name matched");
    CHECK(http_head_field(&h, "host", NULL) == &h.fields[0].value, "count NULL");
    CHECK(!http_head_field(&h, "", &count) && count == 0, "empty name");
}

static long long clen(const char *fields)
{
    char b[512];
    snprintf(b, sizeof b, "POST /key HTTP/1.1\r\n%s\r\n", fields);
    if (parse(b) != 1)
        return -100;
    return http_head_content_length(&h);
}

static void content_length(void)
{
    CHECK(clen("") == -1, "absent");
    CHECK(clen("Host: a\r\n") == -1, "absent among others");
    CHECK(clen("Content-Length: 5\r\n") == 5, "5");
    CHECK(clen("content-length: 0\r\n") == 0, "0, lower case");
    CHECK(clen("CONTENT-LENGTH:\t 5 \t\r\n") == 5, "OWS trimmed");
    CHECK(clen("Content-Length: 007\r\n") == 7, "leading zeros");
    CHECK(clen("Content-Length: 5 5\r\n") == -2, "5 5");
    CHECK(clen("Content-Length: 5, 5\r\n") == -2, "list 5, 5");
    CHECK(clen("Content-Length: 5,5\r\n") == -2, "list 5,5");
    CHECK(clen("Content-Length: +5\r\n") == -2, "+5");
    CHECK(clen("Content-Length: -5\r\n") == -2, "-5");
    CHECK(clen("Content-Length: 0x5\r\n") == -2, "0x5");
    CHECK(clen("Content-Length: 5a\r\n") == -2, "5a");
    CHECK(clen("Content-Length:\r\n") == -2, "empty");
    CHECK(clen("Content-Length: 5\r\nContent-Length: 5\r\n") == -2, "two equal fields");
    CHECK(clen("Content-Length: 5\r\ncontent-length: 6\r\n") == -2, "two fields");
    CHECK(clen("Content-Length: 999999999999999999\r\n") == 999999999999999999LL, "18 digits");
    CHECK(clen("Content-Length: 000000000000000001\r\n") == 1, "18 digits with zeros");
    CHECK(clen("Content-Length: 1000000000000000000\r\n") == -2, "19 digits");
    CHECK(clen("Content-Length: 0000000000000000001\r\n") == -2, "19 digits with zeros");
    CHECK(clen("Content-Length: 99999999999999999999999\r\n") == -2, "23 digits");
    CHECK(clen("Content-Length-X: 5\r\n") == -1, "another name");
}

static int keep(int minor, const char *fields)
{
    char b[512];
    snprintf(b, sizeof b, "GET / HTTP/1.%d\r\n%s\r\n", minor, fields);
    if (parse(b) != 1)
        return -100;
    return http_head_keep_alive(&h);
}

static void keep_alive(void)
{
    CHECK(keep(1, "") == 1, "1.1 default");
    CHECK(keep(1, "Connection: close\r\n") == 0, "1.1 close");
    CHECK(keep(1, "connection: CLOSE\r\n") == 0, "1.1 CLOSE");
    CHECK(keep(1, "Connection: Upgrade ,\tclose \r\n") == 0, "1.1 close in a list");
    CHECK(keep(1, "Connection: keep-alive, close\r\n") == 0, "1.1 close wins");
    CHECK(keep(1, "Connection: keep-alive\r\n") == 1, "1.1 keep-alive");
    CHECK(keep(1, "Connection: closed, xclose, close-ish\r\n") == 1, "1.1 not close tokens");
    CHECK(keep(1, "Connection: Upgrade\r\nConnection: close\r\n") == 0, "1.1 second field");
    CHECK(keep(1, "Connection:\r\n") == 1, "1.1 empty Connection");
    CHECK(keep(1, "X-Connection: close\r\n") == 1, "1.1 another field");
    CHECK(keep(0, "") == 0, "1.0 default");
    CHECK(keep(0, "Connection: keep-alive\r\n") == 1, "1.0 keep-alive");
    CHECK(keep(0, "Connection: Keep-Alive\r\n") == 1, "1.0 Keep-Alive");
    CHECK(keep(0, "Connection: ,, foo ,\tKEEP-ALIVE\t, bar,\r\n") == 1, "1.0 in a list");
    CHECK(keep(0, "Connection: foo\r\nConnection: keep-alive\r\n") == 1, "1.0 second field");
    CHECK(keep(0, "Connection: keep-alive, close\r\n") == 0, "1.0 close wins");
    CHECK(keep(0, "Connection: keep-alive\r\nConnection: close\r\n") == 0, "1.0 close later");
    CHECK(keep(0, "Connection: keep-alivex\r\n") == 0, "1.0 keep-alivex");
    CHECK(keep(0, "Connection: keep alive\r\n") == 0, "1.0 keep alive");
    CHECK(keep(0, "Keep-Alive: timeout=5\r\n") == 0, "1.0 Keep-Alive field only");
}

/* One head per rule; each one is -1. */
#define BAD(name, lit) \
    { \
        name, lit, sizeof lit - 1 \
    }
static const struct {
    const char *name;
    const char *s;
    size_t n;
} bad[] = {
    BAD("method_lower_case", "get / HTTP/1.1\r\n\r\n"),
    BAD("method_mixed_case", "Get / HTTP/1.1\r\n\r\n"),
    BAD("method_digit", "GET2 / HTTP/1.1\r\n\r\n"),
    BAD("method_dash", "M-SEARCH / HTTP/1.1\r\n\r\n"),
    BAD("method_empty", " / HTTP/1.1\r\n\r\n"),
    BAD("method_nul", "GET\0 / HTTP/1.1\r\n\r\n"),
    BAD("leading_crlf", "\r\nGET / HTTP/1.1\r\n\r\n"),
    BAD("leading_lf", "\nGET / HTTP/1.1\r\n\r\n"),
    BAD("leading_space", " GET / HTTP/1.1\r\n\r\n"),
    BAD("empty_head", "\r\n\r\n"),
    BAD("two_spaces_after_method", "GET  / HTTP/1.1\r\n\r\n"),
    BAD("two_spaces_after_target", "GET /  HTTP/1.1\r\n\r\n"),
    BAD("tab_after_method", "GET\t/ HTTP/1.1\r\n\r\n"),
    BAD("tab_after_target", "GET /\tHTTP/1.1\r\n\r\n"),
    BAD("space_before_crlf", "GET / HTTP/1.1 \r\n\r\n"),
    BAD("no_version", "GET /\r\n\r\n"),
    BAD("http_0_9", "GET / \r\n\r\n"),
    BAD("target_empty", "GET  HTTP/1.1\r\n\r\n"),
    BAD("target_absolute", "GET http://h/ HTTP/1.1\r\n\r\n"),
    BAD("target_asterisk", "OPTIONS * HTTP/1.1\r\n\r\n"),
    BAD("target_authority", "CONNECT h:443 HTTP/1.1\r\n\r\n"),
    BAD("target_ctl", "GET /a\x01 HTTP/1.1\r\n\r\n"),
    BAD("target_del", "GET /a\x7f HTTP/1.1\r\n\r\n"),
    BAD("target_high", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n"),
    BAD("target_nul", "GET /a\0b HTTP/1.1\r\n\r\n"),
    BAD("version_1_2", "GET / HTTP/1.2\r\n\r\n"),
    BAD("version_1_9", "GET / HTTP/1.9\r\n\r\n"),
    BAD("version_2_0", "GET / HTTP/2.0\r\n\r\n"),
    BAD("version_0_9", "GET / HTTP/0.9\r\n\r\n"),
    BAD("version_1_10", "GET / HTTP/1.10\r\n\r\n"),
    BAD("version_1", "GET / HTTP/1\r\n\r\n"),
    BAD("version_lower_case", "GET / http/1.1\r\n\r\n"),
    BAD("version_other_name", "GET / HTTQ/1.1\r\n\r\n"),
    BAD("bare_lf_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n"),
    BAD("bare_lf_field", "GET / HTTP/1.1\r\nHost: a\n\r\n"),
    BAD("bare_lf_end", "GET / HTTP/1.1\r\nHost: a\r\n\n"),
    BAD("bare_lf_only", "GET / HTTP/1.1\n\n"),
    BAD("bare_lf_in_value", "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n"),
    BAD("cr_request_line", "GET / HTTP/1.1\rX\r\n\r\n"),
    BAD("cr_in_value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
    BAD("cr_end", "GET / HTTP/1.1\r\n\rX\r\n"),
    BAD("cr_cr_lf", "GET / HTTP/1.1\r\r\n\r\n"),
    BAD("obs_fold_sp", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
    BAD("obs_fold_htab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"),
    BAD("first_line_folded", "GET / HTTP/1.1\r\n X: a\r\n\r\n"),
    BAD("space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    BAD("tab_before_colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
    BAD("empty_name", "GET / HTTP/1.1\r\n: a\r\n\r\n"),
    BAD("no_colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n"),
    BAD("no_colon_at_all", "GET / HTTP/1.1\r\nHost\r\n\r\n"),
    BAD("name_paren", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"),
    BAD("name_slash", "GET / HTTP/1.1\r\nA/B: a\r\n\r\n"),
    BAD("name_high", "GET / HTTP/1.1\r\nH\xc3\xb6: a\r\n\r\n"),
    BAD("name_nul", "GET / HTTP/1.1\r\nH\0: a\r\n\r\n"),
    BAD("value_nul", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"),
    BAD("value_ctl", "GET / HTTP/1.1\r\nX: a\x01"
                     "b\r\n\r\n"),
    BAD("value_esc", "GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n"),
    BAD("value_del", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"),
    BAD("value_vt", "GET / HTTP/1.1\r\nX: a\vb\r\n\r\n"),
};

/* Each is -1, and so is every prefix from the first one that is -1 on
 * (a shorter one is 0: it could still become a good head). */
static void malformed(void)
{
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "malformed_%s", bad[k].name);
        int r = parse_n(bad[k].s, bad[k].n), refused = 0;
        size_t m = 0;
        for (; m <= bad[k].n; m++) {
            int rm = parse_n(bad[k].s, m);
            if (rm == 1 || (refused && rm != -1))
                break;
            refused |= rm == -1;
        }
        check(r == -1 && m > bad[k].n, name, "gives %d (prefix %zu)", r, m);
    }
}

static void refused_early(void)
{
    CHECK(parse("get") == -1, "lower-case method not seen at once");
    CHECK(parse("GET  ") == -1, "double space not seen at once");
    CHECK(parse("GET / HTTP/2") == -1, "version 2 not seen at once");
    CHECK(parse("GET / HTTP/1.1\n") == -1, "bare LF not seen at once");
    CHECK(parse("GET / HTTP/1.1\r") == 0, "a CR at the end waits");
    CHECK(parse("GET / HTTP/1.1\r\nX: a\r\n ") == -1, "obs-fold not seen at once");
    CHECK(parse_n("", 0) == 0, "empty buffer waits");
    CHECK(http_head_parse(NULL, 0, &h) == 0, "NULL, 0 waits");
}

int main(void)
{
    RUN(good_no_fields);
    RUN(good_one_field_and_body);
    RUN(good_32_fields);
    RUN(every_prefix_incomplete);
    RUN(pipelined_and_trailing_bytes);
    RUN(head_limits);
    RUN(methods);
    RUN(values_taken);
    RUN(field_lookup);
    RUN(content_length);
    RUN(keep_alive);
    malformed();
    RUN(refused_early);
    free(last_buf);
    return check_summary();
}
