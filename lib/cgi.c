/*
 * cgi.c - request parsing and response writing for the CGI programs.
 */
#include "cgi.h"
#include "client.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cgi_pct_decode(const char *in, size_t inlen, int plus_is_space, char *out, size_t outcap,
                   size_t *outlen, const char **why)
{
    size_t o = 0;
    if (outcap == 0) {
        *why = "no room";
        return -1;
    }
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= inlen || (h = hexval((unsigned char)in[i + 1])) < 0 ||
                (l = hexval((unsigned char)in[i + 2])) < 0) {
                *why = "bad percent-escape (expected %XX with two hex digits)";
                return -1;
            }
            c = (unsigned char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') {
            *why = "contains a NUL byte";
            return -1;
        }
        if (o + 1 >= outcap) {
            *why = "too long";
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return 0;
}

int cgi_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

int cgi_key_valid(const char *key, size_t len, const char **why)
{
    if (!kv_key_ok(key, len)) { /* the rule is lib/kvrules'; the words are HTTP's */
        *why = len == 0           ? "key is empty"
               : len > KV_KEY_MAX ? "key is longer than 1024 bytes"
                                  : "key contains a NUL byte";
        return -1;
    }
    if (!cgi_utf8_valid(key, len)) {
        *why = "key is not valid UTF-8";
        return -1;
    }
    return 0;
}

int cgi_split_target(const char *uri, cgi_target *t, const char **why)
{
    if (!uri || !*uri) {
        *why = "no REQUEST_URI";
        return -1;
    }
    size_t n = strnlen(uri, CGI_URI_MAX + 1);
    if (n > CGI_URI_MAX) {
        *why = "request target too long";
        return -1;
    }
    if (uri[0] != '/') {
        *why = "request target does not start with '/'";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c < 0x20 || c == 0x7F) {
            *why = "request target contains control characters";
            return -1;
        }
    }
    const char *hash = memchr(uri, '#', n);
    if (hash)
        n = (size_t)(hash - uri);
    const char *q = memchr(uri, '?', n);
    t->path = uri;
    if (q) {
        t->path_len = (size_t)(q - uri);
        t->query = q + 1;
        t->query_len = n - t->path_len - 1;
    } else {
        t->path_len = n;
        t->query = "";
        t->query_len = 0;
    }
    return 0;
}

int cgi_path_is(const char *path, size_t path_len, const char *name)
{
    size_t nl = strlen(name);
    if (path_len == nl + 1 && path[nl] == '/')
        path_len = nl;
    return path_len == nl && memcmp(path, name, nl) == 0;
}

int cgi_match_key_path(const char *path, size_t path_len, char *key, size_t keycap, size_t *keylen,
                       const char **why)
{
    static const char prefix[] = "/key/";
    size_t pl = sizeof prefix - 1;
    if (path_len < pl || memcmp(path, prefix, pl) != 0)
        return 0;
    size_t kl = 0;
    /* Decode into key; anything longer than KV_KEY_MAX fails here or
     * in cgi_key_valid. */
    size_t cap = keycap < KV_KEY_MAX + 2 ? keycap : KV_KEY_MAX + 2;
    if (cgi_pct_decode(path + pl, path_len - pl, 0, key, cap, &kl, why) < 0) {
        if (strcmp(*why, "too long") == 0)
            *why = "key is longer than 1024 bytes";
        else if (strcmp(*why, "contains a NUL byte") == 0)
            *why = "key contains a NUL byte";
        else
            *why = "key has a bad percent-escape (expected %XX)";
        return -1;
    }
    if (cgi_key_valid(key, kl, why) < 0)
        return -1;
    if (keylen)
        *keylen = kl;
    return 1;
}

int cgi_query_get(const char *query, size_t query_len, const char *name, char *out, size_t outcap,
                  const char **why)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i <= query_len) {
        const char *p = query + i;
        const char *amp = memchr(p, '&', query_len - i);
        size_t plen = amp ? (size_t)(amp - p) : query_len - i;
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        char kbuf[256];
        size_t kdl;
        const char *w;
        if (klen > 0 && klen < sizeof kbuf &&
            cgi_pct_decode(p, klen, 1, kbuf, sizeof kbuf, &kdl, &w) == 0 && kdl == nl &&
            memcmp(kbuf, name, nl) == 0) {
            const char *v = eq ? eq + 1 : p + plen;
            size_t vlen = eq ? plen - klen - 1 : 0;
            if (cgi_pct_decode(v, vlen, 1, out, outcap, NULL, why) < 0)
                return -1;
            return 1;
        }
        if (!amp)
            break;
        i += plen + 1;
    }
    return 0;
}

ssize_t (*cgi_body_reader)(void *buf, size_t n);

int cgi_read_body(int fd, const char *content_length, size_t max, char **body, size_t *len,
                  const char **why)
{
    *body = NULL;
    *len = 0;
    unsigned long long cl = 0;
    if (content_length && *content_length) {
        const char *s = content_length;
        if (strlen(s) > 19) {
            *why = "request body too large";
            return 413;
        }
        for (; *s; s++) {
            if (*s < '0' || *s > '9') {
                *why = "bad Content-Length";
                return 400;
            }
            cl = cl * 10 + (unsigned)(*s - '0');
        }
    }
    if (cl > max) {
        *why = "request body too large";
        return 413;
    }
    char *b = malloc((size_t)cl + 1);
    if (!b) {
        *why = "out of memory";
        return 500;
    }
    size_t got = 0;
    while (got < cl) {
        ssize_t n = cgi_body_reader ? cgi_body_reader(b + got, (size_t)cl - got)
                                    : read(fd, b + got, (size_t)cl - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(b);
            *why = n < 0 ? "cannot read request body" : "request body shorter than Content-Length";
            return 400;
        }
        got += (size_t)n;
    }
    b[got] = '\0';
    *body = b;
    *len = got;
    return 0;
}

int cgi_parse_etag(const char *s, long long *index)
{
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (s[0] == 'W' && s[1] == '/')
        s += 2;
    int quoted = *s == '"';
    if (quoted)
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    long long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (quoted) {
        if (*s != '"')
            return -1;
        s++;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s)
        return -1;
    *index = v;
    return 0;
}

const char *cgi_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 428: return "Precondition Required";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

int cgi_respond(FILE *out, int status, const char *const *headers, const json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = 0;
    if (fprintf(out, "Status: %d %s\r\nContent-Type: application/json\r\n", status,
                cgi_reason(status)) < 0)
        rc = -1;
    for (size_t i = 0; headers && headers[i]; i++)
        if (fprintf(out, "%s\r\n", headers[i]) < 0)
            rc = -1;
    if (fprintf(out, "\r\n%s", text ? text : "{}") < 0)
        rc = -1;
    if (fflush(out) != 0)
        rc = -1;
    free(text);
    return rc;
}

int cgi_error(FILE *out, int status, const char *msg)
{
    json_t *b = json_pack("{s:s}", "error", msg ? msg : "error");
    int rc = cgi_respond(out, status, NULL, b);
    json_decref(b);
    return rc;
}

int cgi_errorf2(FILE *out, int status, const char *prefix, const char *detail)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s: %s", prefix, detail);
    return cgi_error(out, status, buf);
}

int cgi_is_write_request(const json_t *req)
{
    static const char *const writes[] = {"set",         "del",          "txn",
                                         "join",        "remove",       "transfer",
                                         "lease_grant", "lease_revoke", NULL};
    const char *op = json_string_value(json_object_get(req, "op"));
    for (size_t i = 0; op && writes[i]; i++)
        if (!strcmp(op, writes[i]))
            return 1;
    return 0;
}

int cgi_call_raftd(const char *prog, json_t *req, json_t **reply_out)
{
    return cgi_call_raftd_t(prog, req, client_timeout_from_env(), reply_out);
}

int cgi_call_raftd_t(const char *prog, json_t *req, int timeout_ms, json_t **reply_out)
{
    const char *sock = getenv("KEYVAL_SOCKET");
    char err[512];
    json_t *reply = NULL;
    if (reply_out)
        *reply_out = NULL;
    if (!sock || !*sock) {
        fprintf(stderr, "%s: no raftd socket: KEYVAL_SOCKET is not set\n", prog);
        cgi_error(stdout, 503, "raftd unavailable: KEYVAL_SOCKET is not set");
        return 503;
    }
    /* Kept open across requests of a resident (FastCGI) program. */
    static int conn = -1;
    int timeout = timeout_ms;
    const char *op = json_string_value(json_object_get(req, "op"));
    if (op && (!strcmp(op, "status") || !strcmp(op, "metrics")) &&
        timeout > CLIENT_STATUS_TIMEOUT_MS)
        timeout = CLIENT_STATUS_TIMEOUT_MS;
    int rc = client_request_keep(&conn, sock, req, timeout, &reply, err, sizeof err);
    if (rc == -2) {
        cgi_error(stdout, 413, err);
        return 413;
    }
    if (rc == CLIENT_SENT && cgi_is_write_request(req)) {
        /* raftd may have read the write and committed it: never call that
         * a failure (docs/http-api.md, "outcome"). */
        char msg[700];
        snprintf(msg, sizeof msg,
                 "raftd unavailable after the write was sent "
                 "(it may or may not have been applied): %s",
                 err);
        fprintf(stderr, "%s: outcome unknown: %s\n", prog, err);
        json_t *b = json_pack("{s:s,s:s}", "error", msg, "outcome", "unknown");
        cgi_respond(stdout, 503, NULL, b);
        json_decref(b);
        return 503;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: request to raftd failed: %s\n", prog, err);
        cgi_errorf2(stdout, 503, "raftd unavailable", err);
        return 503;
    }
    int code = client_reply_code(reply);
    if (reply_out) {
        *reply_out = reply;
        return code;
    }
    json_object_del(reply, "code");
    cgi_respond(stdout, code, NULL, reply);
    json_decref(reply);
    return code;
}

int cgi_query_unknown(const char *query, size_t len, const char *const *known, char *bad,
                      size_t badcap)
{
    size_t i = 0;
    while (i < len) {
        const char *p = query + i;
        const char *amp = memchr(p, '&', len - i);
        size_t plen = amp ? (size_t)(amp - p) : len - i;
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        char name[256];
        size_t nl = 0;
        const char *w;
        int found = plen == 0; /* "a&&b": nothing between */
        if (!found && cgi_pct_decode(p, klen, 1, name, sizeof name, &nl, &w) == 0)
            for (size_t k = 0; known && known[k] && !found; k++)
                found = strcmp(name, known[k]) == 0;
        else if (!found)
            snprintf(name, sizeof name, "%.*s", (int)(klen < 64 ? klen : 64), p);
        if (!found) {
            snprintf(bad, badcap, "%s", name);
            return -1;
        }
        i += plen + 1;
    }
    return 0;
}

/* "level, prefix" from a table, for an error message. */
static void known_list(const char *const *known, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t k = 0; known && known[k] && o < cap; k++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", k ? ", " : "", known[k]);
}

int cgi_query_known(const cgi_target *t, const char *const *known)
{
    return cgi_query_known_f(stdout, t, known);
}

int cgi_query_known_f(FILE *out, const cgi_target *t, const char *const *known)
{
    char bad[256], list[256], msg[600];
    if (cgi_query_unknown(t->query, t->query_len, known, bad, sizeof bad) == 0)
        return 0;
    known_list(known, list, sizeof list);
    snprintf(msg, sizeof msg, "unknown query parameter \"%s\" (%s%s)", bad,
             list[0] ? "this route takes: " : "this route takes none", list);
    cgi_error(out, 400, msg);
    return -1;
}

int cgi_fields_known(const json_t *obj, const char *const *known)
{
    const char *name;
    json_t *v;
    char list[256], msg[600];
    json_object_foreach ((json_t *)obj, name, v) {
        int found = 0;
        for (size_t k = 0; known[k] && !found; k++)
            found = strcmp(name, known[k]) == 0;
        if (!found) {
            known_list(known, list, sizeof list);
            snprintf(msg, sizeof msg, "unknown field \"%.200s\" (this body takes: %s)", name, list);
            cgi_error(stdout, 400, msg);
            return -1;
        }
    }
    return 0;
}

json_t *cgi_json_body(const char *body, size_t len, size_t flags)
{
    return cgi_json_body_f(stdout, body, len, flags);
}

json_t *cgi_json_body_f(FILE *out, const char *body, size_t len, size_t flags)
{
    json_error_t jerr;
    char why[240];
    json_t *obj = json_loadb(body, len, flags, &jerr);
    if (!obj) {
        enum json_error_code e = json_error_code(&jerr);
        int plain = e == json_error_null_character || e == json_error_null_byte_in_key ||
                    e == json_error_duplicate_key || e == json_error_invalid_utf8;
        client_json_why(&jerr, why, sizeof why);
        if (plain)
            cgi_error(out, 400, why);
        else
            cgi_errorf2(out, 400, "malformed JSON", why);
    }
    return obj;
}
