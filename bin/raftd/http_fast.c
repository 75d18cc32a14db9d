/*
 * http_fast.c - the HTTP routes raftd answers itself on fcgi.sock (fcgi.c):
 * GET/HEAD /key/K (all its forms, blocking ones too), PUT /key/K and
 * DELETE /key/K (unconditional, If-Match: "N", If-None-Match: *). Each
 * becomes the op a raftd.sock client sends (client_line), and raftd's
 * reply the answer the CGI programs give, through the same lib/cgi*.c
 * code (cgi_get_request, cgi_get_answer, cgi_write_req, cgi_write_answer).
 * Everything else lighttpd sends to the programs (etc/lighttpd-fastcgi.conf).
 */
#include "fcgi.h"
#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The body of the request being parsed, for cgi_read_body. */
static const char *body_at;
static size_t body_left;

static ssize_t body_read(void *buf, size_t n)
{
    if (n > body_left)
        n = body_left;
    memcpy(buf, body_at, n);
    body_at += n;
    body_left -= n;
    return (ssize_t)n;
}

/* Send what out holds (a whole CGI answer) as c's answer. */
static void answer_mem(struct raftd *d, fconn *c, FILE *out, char **buf, size_t *len)
{
    fclose(out);
    if (*buf)
        fcgi_answer(d, c, *buf, *len);
    free(*buf);
    *buf = NULL;
}

/* The write of PUT (put) or DELETE /key/K; NULL after an answer in out. */
static json_t *write_request(FILE *out, fconn *c, int put, hreq *h)
{
    static const char *const put_params[] = {"lease", NULL};
    static const char *const del_params[] = {NULL};
    char uri[CGI_URI_MAX + 2], im[512], inm[512], clen[32];
    const char *why;
    cgi_target t;
    if (!fcgi_param(c, "REQUEST_URI", uri, sizeof uri))
        uri[0] = 0;
    if (cgi_split_target(uri[0] ? uri : NULL, &t, &why) < 0)
        return cgi_error(out, 400, why), NULL;
    int m = cgi_match_key_path(t.path, t.path_len, h->key, sizeof h->key, &h->klen, &why);
    if (m <= 0)
        return cgi_error(out, m < 0 ? 400 : 404, m < 0 ? why : "not found"), NULL;
    if (cgi_query_known_f(out, &t, put ? put_params : del_params) < 0)
        return NULL;
    cgi_cond cond;
    int has_im = fcgi_param(c, "HTTP_IF_MATCH", im, sizeof im);
    int has_inm = fcgi_param(c, "HTTP_IF_NONE_MATCH", inm, sizeof inm);
    if (cgi_cond_parse(has_im ? im : NULL, has_inm ? inm : NULL, &cond, &why) < 0)
        return cgi_error(out, 400, why), NULL;
    if (cond.kind == CGI_IF_EXISTS) /* two round trips: key-put/key-del do it */
        return cgi_error(out, 500, "If-Match: * reached raftd's FastCGI socket"), NULL;
    if (!put)
        return cgi_write_req(NULL, json_stringn(h->key, h->klen), &cond);
    json_t *lreq = json_object();
    char lwhy[256];
    if (cgi_lease_param(t.query, t.query_len, lreq, lwhy, sizeof lwhy) < 0) {
        json_decref(lreq);
        return cgi_error(out, 400, lwhy), NULL;
    }
    if (json_object_size(lreq) && cond.kind != CGI_IF_NONE) {
        json_decref(lreq);
        return cgi_error(out, 400, "lease with If-Match or If-None-Match: use POST /txn"), NULL;
    }
    char *body;
    size_t blen;
    body_at = c->body ? c->body : "";
    body_left = c->body_over ? 0 : c->body_len;
    ssize_t (*saved)(void *, size_t) = cgi_body_reader;
    cgi_body_reader = body_read;
    int st = cgi_read_body(-1, fcgi_param(c, "CONTENT_LENGTH", clen, sizeof clen) ? clen : NULL,
                           CGI_BODY_MAX, &body, &blen, &why);
    cgi_body_reader = saved;
    if (st) {
        json_decref(lreq);
        return cgi_error(out, st, why), NULL;
    }
    if (memchr(body, '\0', blen) || !cgi_utf8_valid(body, blen)) {
        free(body);
        json_decref(lreq);
        return cgi_error(out, 400, "value must be valid UTF-8 without NUL bytes"), NULL;
    }
    json_t *kv = json_object();
    json_object_setn_new(kv, h->key, h->klen, json_stringn(body, blen));
    free(body);
    h->sets = 1;
    if (json_object_size(lreq)) {
        json_object_set_new(lreq, "op", json_string("set"));
        json_object_set_new(lreq, "kv", kv);
        return lreq;
    }
    json_decref(lreq);
    json_t *req = cgi_write_req(kv, NULL, &cond);
    json_decref(kv);
    return req;
}

void http_fast_start(struct raftd *d, fconn *c)
{
    char method[16], uri[CGI_URI_MAX + 2], *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        static const char oom[] = "Status: 500 Internal Server Error\r\n"
                                  "Content-Type: application/json\r\n\r\n"
                                  "{\"error\":\"out of memory\"}";
        fcgi_answer(d, c, oom, sizeof oom - 1);
        return;
    }
    hreq *h = &c->h;
    memset(h, 0, sizeof *h);
    if (!fcgi_param(c, "REQUEST_METHOD", method, sizeof method))
        method[0] = 0;
    json_t *req = NULL;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        long long wait_ms;
        h->kind = HR_GET;
        h->has_inm = fcgi_param(c, "HTTP_IF_NONE_MATCH", h->inm, sizeof h->inm);
        req = cgi_get_request(out, fcgi_param(c, "REQUEST_URI", uri, sizeof uri) ? uri : NULL,
                              h->key, &h->klen, &wait_ms);
    } else if (!strcmp(method, "PUT") || !strcmp(method, "DELETE")) {
        h->kind = HR_WRITE;
        req = write_request(out, c, method[0] == 'P', h);
    } else {
        cgi_error(out, 405, "method not served on raftd's FastCGI socket");
    }
    if (!req)
        return answer_mem(d, c, out, &buf, &len);
    fclose(out);
    free(buf);
    char *line = json_dumps(req, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(req);
    if (!line) {
        static const char oom[] = "{\"code\":500,\"error\":\"out of memory\"}";
        return http_fast_reply(d, c, oom, sizeof oom - 1);
    }
    client_line(d, &c->cl, line, strlen(line));
    free(line);
}

void http_fast_reply(struct raftd *d, fconn *c, const char *s, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return;
    json_t *reply = json_loadb(s, n, 0, NULL);
    if (!json_is_object(reply)) {
        json_decref(reply);
        logf_(d, "fcgi.sock: reply is not a JSON object");
        cgi_error(out, 502, "bad reply from raftd");
    } else if (c->h.kind == HR_GET) {
        cgi_get_answer(out, client_reply_code(reply), reply, c->h.key, c->h.klen,
                       c->h.has_inm ? c->h.inm : NULL);
        json_decref(reply);
    } else {
        cgi_write_answer(out, client_reply_code(reply), reply, c->h.sets);
    }
    answer_mem(d, c, out, &buf, &len);
}
