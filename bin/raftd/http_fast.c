/*
 * http_fast.c - the HTTP routes raftd answers itself, on fcgi.sock
 * (fcgi.c) or on its own HTTP port (http_front.c):
 * GET/HEAD /key/K (all its forms, blocking ones too), PUT /key/K, POST
 * /key and DELETE /key/K (unconditional, with ?lease=ID, If-Match: "N",
 * If-None-Match: *; If-Match: * stays with the programs). Each
 * becomes the op a raftd.sock client sends (client_line), and raftd's
 * reply the answer the CGI programs give, through the same lib/cgi*.c
 * code (cgi_get_request, cgi_keyw_request, cgi_get_answer, cgi_write_req,
 * cgi_write_answer).
 * Everything else lighttpd sends to the programs (etc/lighttpd-fastcgi.conf).
 * The transport gives the request as CGI variables (fastreq.param) and
 * takes the answer as a CGI answer (fastreq.answer).
 */
#include "fcgi.h"
#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"

#include <stddef.h>
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

/* Send what out holds (a whole CGI answer) as r's answer. */
static void answer_mem(fastreq *r, FILE *out, char **buf, size_t *len)
{
    fclose(out);
    r->live = 0;
    if (*buf)
        r->answer(r->d, r, *buf, *len);
    free(*buf);
    *buf = NULL;
}

static void answer_const(fastreq *r, const char *s, size_t n)
{
    r->live = 0;
    r->answer(r->d, r, s, n);
}

/* The write of PUT /key/K, POST /key or DELETE /key/K; NULL after an
 * answer in out. */
static json_t *write_request(FILE *out, fastreq *r, int route, hreq *h)
{
    char uri[CGI_URI_MAX + 2], im[8192], inm[8192], clen[32];
    cgi_keyw_in in = {
        r->param(r, "REQUEST_URI", uri, sizeof uri) ? uri : NULL,
        r->param(r, "CONTENT_LENGTH", clen, sizeof clen) ? clen : NULL,
        r->param(r, "HTTP_IF_MATCH", im, sizeof im) ? im : NULL,
        r->param(r, "HTTP_IF_NONE_MATCH", inm, sizeof inm) ? inm : NULL,
        -1,
    };
    cgi_cond cond;
    body_at = r->body ? r->body : "";
    body_left = r->body_over ? 0 : r->body_len;
    ssize_t (*saved)(void *, size_t) = cgi_body_reader;
    cgi_body_reader = body_read;
    json_t *req = cgi_keyw_request(out, route, &in, &cond);
    cgi_body_reader = saved;
    if (!req)
        return NULL;
    h->sets = route != CGI_ROUTE_DEL;
    if (cond.kind == CGI_IF_NONE || json_object_get(req, "lease"))
        return req;
    if (cond.kind == CGI_IF_EXISTS) { /* a read, then a write: the programs do it */
        json_decref(req);
        return cgi_error(out, 500, "If-Match: * reached raftd's fast path"), NULL;
    }
    json_t *w = cgi_write_req(json_object_get(req, "kv"), json_object_get(req, "key"), &cond);
    json_decref(req);
    return w;
}

static void fast_reply(fastreq *r, const char *s, size_t n);
static void fast_reply_json(fastreq *r, json_t *reply);

/* raftd's answer to r's client (pending.c, request.c). */
static void fastreq_sink(client *cl, const char *s, size_t n)
{
    fastreq *r = (fastreq *)((char *)cl - offsetof(fastreq, cl));
    if (r->live)
        fast_reply(r, s, n);
}

/* The same as a tree (pending.c finish): no text in between. */
static void fastreq_sink_json(client *cl, json_t *reply)
{
    fastreq *r = (fastreq *)((char *)cl - offsetof(fastreq, cl));
    if (r->live)
        fast_reply_json(r, reply);
    else
        json_decref(reply);
}

void fastreq_init(fastreq *r, struct raftd *d,
                  int (*param)(const fastreq *, const char *, char *, size_t),
                  void (*answer)(struct raftd *, fastreq *, const char *, size_t))
{
    memset(r, 0, sizeof *r);
    r->d = d;
    r->param = param;
    r->answer = answer;
    r->cl.fd = -1;
    r->cl.sink = fastreq_sink;
    r->cl.sink_json = fastreq_sink_json;
}

void http_fast_drop(fastreq *r)
{
    pending_detach_client(r->d, &r->cl); /* it runs on; nobody to tell */
    r->live = 0;
    r->h.kind = HR_NONE;
}

void http_fast_start(fastreq *r)
{
    struct raftd *d = r->d;
    char method[16], uri[CGI_URI_MAX + 2], *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        static const char oom[] = "Status: 500 Internal Server Error\r\n"
                                  "Content-Type: application/json\r\n\r\n"
                                  "{\"error\":\"out of memory\"}";
        answer_const(r, oom, sizeof oom - 1);
        return;
    }
    r->live = 1;
    hreq *h = &r->h; /* not memset: inm is 8 KiB */
    h->kind = HR_NONE;
    h->sets = h->has_inm = 0;
    h->klen = 0;
    h->key[0] = h->inm[0] = 0;
    if (!r->param(r, "REQUEST_METHOD", method, sizeof method))
        method[0] = 0;
    json_t *req = NULL;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        long long wait_ms;
        h->kind = HR_GET;
        h->has_inm = r->param(r, "HTTP_IF_NONE_MATCH", h->inm, sizeof h->inm);
        req = cgi_get_request(out, r->param(r, "REQUEST_URI", uri, sizeof uri) ? uri : NULL, h->key,
                              &h->klen, &wait_ms);
    } else if (!strcmp(method, "PUT") || !strcmp(method, "POST") || !strcmp(method, "DELETE")) {
        h->kind = HR_WRITE;
        int route = method[0] == 'D'   ? CGI_ROUTE_DEL
                    : method[1] == 'U' ? CGI_ROUTE_PUT
                                       : CGI_ROUTE_POST;
        req = write_request(out, r, route, h);
    } else {
        cgi_error(out, 405, "method not served by raftd itself");
    }
    if (!req)
        return answer_mem(r, out, &buf, &len);
    fclose(out);
    free(buf);
    if (h->kind == HR_GET) { /* the tree as it is: no text in between */
        start_request(d, req, &r->cl, 0, 0, 0);
        return;
    }
    /* A write as text: client_line's fast path takes a plain set
     * without a jansson tree (start_fast_set). */
    char *line = json_dumps(req, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(req);
    if (!line) {
        static const char oom[] = "{\"code\":500,\"error\":\"out of memory\"}";
        return fast_reply(r, oom, sizeof oom - 1);
    }
    client_line(d, &r->cl, line, strlen(line));
    free(line);
}

/* The common answer, a found key of plain text without If-None-Match,
 * made without jansson or stdio (cgi_get_found_plain): 1 answered, 0 not
 * that case. */
static int fast_get_found(fastreq *r, json_t *reply)
{
    size_t n;
    char *b = cgi_get_found_plain(client_reply_code(reply), reply, r->h.key, r->h.klen,
                                  r->h.has_inm ? r->h.inm : NULL, &n);
    if (!b)
        return 0;
    r->live = 0;
    r->answer(r->d, r, b, n);
    free(b);
    return 1;
}

/* raftd's reply (a JSON object, consumed) to r's request: its HTTP answer. */
static void fast_reply_json(fastreq *r, json_t *reply)
{
    if (r->h.kind == HR_GET && json_is_object(reply) && fast_get_found(r, reply)) {
        json_decref(reply);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        static const char oom[] = "Status: 500 Internal Server Error\r\n"
                                  "Content-Type: application/json\r\n\r\n"
                                  "{\"error\":\"out of memory\",\"outcome\":\"unknown\"}";
        json_decref(reply);
        return answer_const(r, oom, sizeof oom - 1);
    }
    if (!json_is_object(reply)) {
        json_decref(reply);
        logf_(r->d, "HTTP fast path: reply is not a JSON object");
        cgi_error(out, 502, "bad reply from raftd");
    } else if (r->h.kind == HR_GET) {
        cgi_get_answer(out, client_reply_code(reply), reply, r->h.key, r->h.klen,
                       r->h.has_inm ? r->h.inm : NULL);
        json_decref(reply);
    } else {
        cgi_write_answer(out, client_reply_code(reply), reply, r->h.sets);
    }
    answer_mem(r, out, &buf, &len);
}

/* raftd's reply text (a JSON object) to r's request. */
static void fast_reply(fastreq *r, const char *s, size_t n)
{
    fast_reply_json(r, json_loadb(s, n, 0, NULL));
}
