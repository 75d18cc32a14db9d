/*
 * http_head.h - a strict parser of one HTTP/1.x request head (RFC 9112
 * section 2-5), pure and allocation-free: it reads buf[0..len) and fills
 * a caller's http_head whose spans point into buf. No I/O, no malloc, no
 * global state. raftd answers a few simple routes itself with it and
 * hands everything else, unchanged, to lighttpd; so being strict is the
 * point: anything unusual is "not mine" (-1) and lighttpd deals with it.
 *
 * What it takes, byte by byte (anything else is -1):
 *   request-line = method SP request-target SP "HTTP/1." ("0" / "1") CRLF
 *       method   1..16 of A-Z
 *       target   1+ bytes of 0x21..0x7e, the first one '/'
 *                (no absolute-form, authority-form or "*")
 *       exactly one SP between the three, none before or after
 *   field-line   = name ":" OWS value OWS CRLF     (at most HTTP_HDRS_MAX)
 *       name     1+ tchar (RFC 9110 5.6.2), no space before the ':'
 *       value    bytes of 0x21..0x7e, 0x80..0xff, SP and HTAB (no CTL,
 *                no NUL, no DEL); it may be empty
 *   CRLF         the blank line that ends the head
 * No obs-fold (a line starting with SP or HTAB), no bare LF, no CR that is
 * not followed by LF, no empty line before the request line. The whole
 * head, blank line included, is at most HTTP_HEAD_MAX bytes; the parser
 * never looks at more than that, nor at anything after the head (a body
 * or a pipelined request). It does not read Transfer-Encoding or any
 * other field's meaning except through the helpers below.
 */
#ifndef KEYVAL_HTTP_HEAD_H
#define KEYVAL_HTTP_HEAD_H

#include <stddef.h>

#define HTTP_HEAD_MAX 8192 /* request line + headers + blank line */
#define HTTP_HDRS_MAX 32

typedef struct {
    const char *p;
    size_t n;
} http_span;

typedef struct {
    http_span name, value; /* value without leading/trailing SP/HTAB */
} http_field;

typedef struct {
    http_span method, target; /* target: the request-target as sent */
    int minor;                /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    size_t n_fields;
    http_field fields[HTTP_HDRS_MAX];
    size_t head_len; /* bytes through the CRLF CRLF */
} http_head;

/* 1: buf[0..len) starts with a whole head, parsed into *h (spans point into buf).
 * 0: not complete yet and len < HTTP_HEAD_MAX (read more).
 * -1: not a head this parser takes (malformed, bare LF, obs-fold, a line or head
 *     too long: len >= HTTP_HEAD_MAX without CRLFCRLF, more than HTTP_HDRS_MAX fields,
 *     a version other than HTTP/1.0 or HTTP/1.1, a target not starting with '/').
 * A malformation already in buf[0..len) is -1 at once, before the head is
 * complete; so a prefix of a good head is 0, and once a prefix is -1 (or
 * 1) every longer buffer gives the same answer. *h is written on 0 and -1
 * too, but means something only on 1. O(min(len, HTTP_HEAD_MAX)) time. */
int http_head_parse(const char *buf, size_t len, http_head *h);

/* The field named name (ASCII case-insensitive): its value span, NULL if absent;
 * *count (if not NULL) = how many fields have that name. */
const http_span *http_head_field(const http_head *h, const char *name, int *count);

/* Content-Length: -1 absent; -2 present but not exactly one field of 1..18 ASCII
 * digits (a list "5, 5", a sign, spaces inside, or two fields count as -2); else the value. */
long long http_head_content_length(const http_head *h);

/* 1 if the connection stays open after this request: HTTP/1.1 without a
 * "close" token in Connection, or HTTP/1.0 with a "keep-alive" token
 * (tokens are comma-separated, case-insensitive, OWS around them).
 * Every Connection field counts, and "close" wins over "keep-alive"
 * (RFC 9112 9.3). */
int http_head_keep_alive(const http_head *h);

#endif
