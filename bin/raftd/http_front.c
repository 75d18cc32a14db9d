/*
 * http_front.c - raftd on the node's HTTP port (keyval -fast): it accepts
 * the connections on a listening TCP socket keyval hands it (-http-fd),
 * answers the key routes itself (http_fast.c: GET/HEAD/PUT/DELETE
 * /key/K, POST /key, as lighttpd routes them to fcgi.sock in -fastcgi)
 * and hands every other connection, from its first request that is not
 * one of those, to lighttpd on a UNIX socket (-http-back): from then on
 * raftd only carries bytes both ways, with back-pressure, and lighttpd
 * answers everything on it (the other routes, 4xx of malformed requests,
 * chunked or large bodies, Expect, ...). The parser (lib/http_head.c)
 * takes only plain heads; anything else is lighttpd's.
 *
 * Bounds: -http-conns connections (past it raftd stops accepting, as
 * lighttpd does); HF_IN_CAP bytes of input each (a head up to
 * HTTP_HEAD_MAX and a body raftd answers itself); HF_OUT_MAX queued
 * output before raftd stops reading a connection. Timeouts as
 * lighttpd.conf's: a request that sends nothing for 10 s, a reply not
 * read for 30 s, a kept-alive connection idle for 5 s. A connection
 * handed to lighttpd has lighttpd's timeouts.
 */
#include "fcgi.h"
#include "http_head.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HF_OUT_MAX (256u * 1024u)
#define HF_READ_IDLE_MS 10000
#define HF_WRITE_IDLE_MS 30000
#define HF_KEEP_IDLE_MS 5000

static hconn *of_req(const fastreq *r)
{
    return (hconn *)((char *)r - offsetof(hconn, r));
}

/* ---- the request as CGI variables */

/* Field name f matches CGI name cgi ("IF_MATCH" for If-Match). */
static int field_is(const http_span *f, const char *cgi)
{
    size_t n = strlen(cgi);
    if (f->n != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char a = f->p[i], b = cgi[i];
        if (a == '-')
            a = '_';
        else if (a >= 'a' && a <= 'z')
            a = (char)(a - 'a' + 'A');
        if (a != b)
            return 0;
    }
    return 1;
}

static int span_out(const http_span *s, char *out, size_t cap)
{
    size_t n = s->n < cap - 1 ? s->n : cap - 1;
    memcpy(out, s->p, n);
    out[n] = 0;
    return 1;
}

static int hf_param(const fastreq *r, const char *name, char *out, size_t cap)
{
    const hconn *c = of_req(r);
    const http_head *h = &c->head;
    if (!strcmp(name, "REQUEST_METHOD"))
        return span_out(&h->method, out, cap);
    if (!strcmp(name, "REQUEST_URI"))
        return span_out(&h->target, out, cap);
    const char *f = !strcmp(name, "CONTENT_LENGTH") ? "CONTENT_LENGTH"
                    : !strncmp(name, "HTTP_", 5)    ? name + 5
                                                    : NULL;
    for (size_t i = 0; f && i < h->n_fields; i++)
        if (field_is(&h->fields[i].name, f))
            return span_out(&h->fields[i].value, out, cap);
    return 0;
}

/* ---- output */

static int out_room(hconn *c, size_t n)
{
    if (outbuf_room(&c->out, n) < 0) {
        c->dead = 1;
        return -1;
    }
    return 0;
}

static void out_put(hconn *c, const char *s, size_t n)
{
    if (c->dead || out_room(c, n) < 0)
        return;
    memcpy(c->out.p + c->out.len, s, n);
    c->out.len += n;
}

static void hf_flush(hconn *c)
{
    if (c->dead)
        return;
    ssize_t w = outbuf_flush(&c->out, c->fd, HF_OUT_MAX);
    if (w < 0)
        c->dead = 1;
    else if (w > 0)
        c->last = now_ms();
}

/* "Date: ..." of this second, as lighttpd sends it. */
static const char *date_line(struct raftd *d)
{
    time_t t = time(NULL);
    if ((long long)t != d->http_date_t) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(d->http_date, sizeof d->http_date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        d->http_date_t = (long long)t;
    }
    return d->http_date;
}

/* A CGI answer (Status:, headers, blank line, body) as an HTTP/1.1
 * response, as lighttpd makes it. */
static void hf_answer(struct raftd *d, fastreq *r, const char *s, size_t n)
{
    hconn *c = of_req(r);
    if (!c->busy)
        return;
    const char *end = memmem(s, n, "\r\n\r\n", 4);
    const char *body = end ? end + 4 : s + n;
    size_t hlen = end ? (size_t)(end - s) + 2 : 0, blen = (size_t)(s + n - body);
    int code = 200;
    const char *reason = "OK";
    size_t rlen = 2;
    char line[128];
    /* The Status line first, the other header lines as they are. */
    const char *rest = s, *rest_end = s + hlen;
    if (hlen >= 8 && !strncasecmp(s, "Status: ", 8)) {
        const char *eol = memchr(s, '\n', hlen);
        code = atoi(s + 8);
        reason = s + 8;
        while (reason < eol && *reason != ' ')
            reason++;
        if (reason < eol)
            reason++;
        rlen = (size_t)(eol - reason) - (eol > reason && eol[-1] == '\r');
        rest = eol + 1;
    }
    if (code < 100 || code > 999)
        code = 502, reason = "Bad Gateway", rlen = 11;
    int l = snprintf(line, sizeof line, "HTTP/1.%d %d %.*s\r\n", c->minor, code,
                     (int)(rlen > 60 ? 60 : rlen), reason);
    out_put(c, line, (size_t)l);
    out_put(c, rest, (size_t)(rest_end - rest));
    if (code != 304 && code != 204 && !(code >= 100 && code < 200)) {
        l = snprintf(line, sizeof line, "Content-Length: %zu\r\n", blen);
        out_put(c, line, (size_t)l);
    }
    if (!c->keep)
        out_put(c, "Connection: close\r\n", 19);
    else if (c->minor == 0)
        out_put(c, "Connection: keep-alive\r\n", 24);
    const char *date = date_line(d);
    out_put(c, date, strlen(date));
    out_put(c, "Server: keyval\r\n\r\n", 18);
    if (!c->head_only && code != 304 && code != 204)
        out_put(c, body, blen);
    d->m_http_requests++;
    c->busy = 0;
    memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
    c->in_len -= c->req_len;
    c->req_len = 0;
    if (!c->keep) {
        c->closing = 1;
    } else if (c->in_len) {
        c->pipelined = 1; /* the sweep takes it, once pending.c let go */
        d->http_again = 1;
    } else if (c->eof)
        c->closing = 1; /* the client sent all it will */
    hf_flush(c);
}

/* ---- lighttpd behind */

static void hf_refuse(hconn *c, const char *why)
{
    char b[512];
    int n = snprintf(b, sizeof b,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n{\"error\":\"%s\"}",
                     strlen(why) + 12, why);
    out_put(c, b, (size_t)n);
    c->closing = 1;
    hf_flush(c);
}

static void back_event(loop *l, int fd, void *data, int events);

/* From now on lighttpd answers c: what c holds and sends goes there. */
static void hand_over(struct raftd *d, hconn *c)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d->http_back);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)) {
        logf_(d, "HTTP: cannot reach lighttpd at %s: %s", d->http_back, strerror(errno));
        if (fd >= 0)
            close(fd);
        hf_refuse(c, "the HTTP server behind raftd (lighttpd) is not reachable");
        return;
    }
    if (loop_add(&d->loop, fd, LOOP_READ | LOOP_WRITE, back_event, c) < 0) {
        close(fd);
        hf_refuse(c, "out of descriptors");
        return;
    }
    c->back = fd;
    d->m_http_passed++;
}

/* ---- requests raftd answers itself */

/* r's route is one raftd answers itself (lighttpd.conf's rewrites to
 * key-get, key-set, key-put, key-del; If-Match: * stays with lighttpd). */
static int fast_route(const http_head *h, int *head_only)
{
    const http_span *m = &h->method, *t = &h->target;
    int key_sub = t->n >= 5 && !memcmp(t->p, "/key/", 5);
    *head_only = m->n == 4 && !memcmp(m->p, "HEAD", 4);
    if ((m->n == 3 && !memcmp(m->p, "GET", 3)) || *head_only)
        return key_sub;
    if ((m->n == 3 && !memcmp(m->p, "PUT", 3)) || (m->n == 6 && !memcmp(m->p, "DELETE", 6)))
        return key_sub;
    if (m->n == 4 && !memcmp(m->p, "POST", 4)) {
        /* ^/key/?(\?.*)?$ */
        size_t k = 4;
        if (t->n < 4 || memcmp(t->p, "/key", 4))
            return 0;
        if (k < t->n && t->p[k] == '/')
            k++;
        return k == t->n || t->p[k] == '?';
    }
    return 0;
}

/* Fields that make a request lighttpd's. */
static int plain_fields(const http_head *h)
{
    static const char *const theirs[] = {"Transfer-Encoding", "Expect", "Upgrade", "Authorization",
                                         "Content-Encoding"};
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        if (http_head_field(h, theirs[i], NULL))
            return 0;
    int n;
    const http_span *im = http_head_field(h, "If-Match", &n);
    if (n > 1 || (im && memchr(im->p, '*', im->n)))
        return 0;
    http_head_field(h, "If-None-Match", &n);
    if (n > 1)
        return 0;
    if (h->minor == 1 && !http_head_field(h, "Host", NULL))
        return 0; /* lighttpd's 400 */
    return 1;
}

/* Start, wait for or hand over the requests c holds, one at a time. */
static void hf_process(struct raftd *d, hconn *c)
{
    if (c->in_process)
        return;
    c->in_process = 1;
    c->stalled = 0;
    while (!c->dead && !c->closing && !c->busy && c->back < 0 && c->in_len) {
        if (c->out.len - c->out.off >= HF_OUT_MAX) {
            c->pipelined = 1; /* answers wait for the client to read: so does this */
            break;
        }
        int rc = http_head_parse(c->in, c->in_len, &c->head);
        if (rc == 0) {
            c->stalled = 1;
            break;
        }
        long long cl = rc > 0 ? http_head_content_length(&c->head) : -2;
        int head_only = 0;
        if (rc < 0 || cl == -2 || cl > (long long)HF_BODY_MAX ||
            !fast_route(&c->head, &head_only) || !plain_fields(&c->head) || (head_only && cl > 0)) {
            hand_over(d, c);
            break;
        }
        size_t blen = cl > 0 ? (size_t)cl : 0;
        if (c->in_len < c->head.head_len + blen) {
            c->stalled = 1; /* the body is on its way */
            break;
        }
        c->busy = 1;
        c->req_len = c->head.head_len + blen;
        c->keep = http_head_keep_alive(&c->head);
        c->head_only = head_only;
        c->minor = c->head.minor;
        c->r.body = c->in + c->head.head_len;
        c->r.body_len = blen;
        c->r.body_over = 0;
        /* It may be answered at once (hf_answer); a next request waits
         * for the sweep, when pending.c has let go of c->r.cl. */
        http_fast_start(&c->r);
        break;
    }
    c->in_process = 0;
}

/* ---- events */

static void hf_read(struct raftd *d, hconn *c)
{
    if (c->in_len == HF_IN_CAP)
        return;
    ssize_t n = recv(c->fd, c->in + c->in_len, HF_IN_CAP - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->eof = 1;
        if (c->back < 0 && !c->busy && !c->in_len)
            c->dead = 1; /* nothing on its way to it */
        return;
    }
    c->in_len += (size_t)n;
    c->last = now_ms();
    if (c->back < 0)
        hf_process(d, c);
}

/* Bytes c sent on to lighttpd, and lighttpd's back to c. */
static void back_write(hconn *c)
{
    size_t off = 0;
    while (off < c->in_len) {
        ssize_t w = send(c->back, c->in + off, c->in_len - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        else {
            c->dead = 1;
            return;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->eof && !c->in_len && !c->back_shut) {
        shutdown(c->back, SHUT_WR);
        c->back_shut = 1;
    }
}

static void back_read(hconn *c)
{
    if (c->out.len - c->out.off >= HF_OUT_MAX || out_room(c, 16384) < 0)
        return;
    ssize_t n = recv(c->back, c->out.p + c->out.len, c->out.cap - c->out.len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->back_eof = 1;
        c->closing = 1;
        return;
    }
    c->out.len += (size_t)n;
    hf_flush(c);
}

static void back_event(loop *l, int fd, void *data, int events)
{
    hconn *c = data;
    (void)l;
    (void)fd;
    if (events & LOOP_WRITE)
        back_write(c);
    if (events & (LOOP_READ | LOOP_HUP))
        back_read(c);
}

static void hf_event(loop *l, int fd, void *data, int events)
{
    hconn *c = data;
    (void)fd;
    if (events & LOOP_WRITE)
        hf_flush(c);
    if (events & (LOOP_READ | LOOP_HUP))
        hf_read(l->owner, c);
    if (c->back >= 0)
        back_write(c);
}

void http_front_conn_free(struct raftd *d, hconn *c)
{
    http_fast_drop(&c->r);
    if (loop_has(&d->loop, c->fd))
        loop_del(&d->loop, c->fd);
    close(c->fd);
    if (c->back >= 0) {
        if (loop_has(&d->loop, c->back))
            loop_del(&d->loop, c->back);
        close(c->back);
    }
    free(c->in);
    free(c->out.p);
    free(c);
}

hconn *http_front_conn_new(struct raftd *d, int fd)
{
    hconn *c = calloc(1, sizeof *c);
    if (c && !(c->in = malloc(HF_IN_CAP))) {
        free(c);
        c = NULL;
    }
    if (!c)
        return NULL;
    c->fd = fd;
    c->back = -1;
    c->last = now_ms();
    fastreq_init(&c->r, d, hf_param, hf_answer);
    return c;
}

size_t http_front_feed(struct raftd *d, hconn *c, const uint8_t *p, size_t n)
{
    if (n > HF_IN_CAP - c->in_len)
        n = HF_IN_CAP - c->in_len;
    if (n)
        memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    if (c->back < 0)
        hf_process(d, c);
    return n;
}

static void hf_accept(loop *l, int lfd, void *data, int events)
{
    struct raftd *d = l->owner;
    (void)data;
    (void)events;
    for (int k = 0; k < 64 && d->n_hconns < d->http_conns_max; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* Replies go out whole when they are ready, as lighttpd's: no
         * Nagle wait for the client's delayed ACK (a UNIX socket, in
         * tests, refuses the option, which is harmless). */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        hconn *c = http_front_conn_new(d, fd);
        if (!c || loop_add(&d->loop, fd, LOOP_READ, hf_event, c) < 0) {
            if (c)
                http_front_conn_free(d, c); /* closes fd */
            else
                close(fd);
            continue;
        }
        c->next = d->hconns;
        d->hconns = c;
        d->n_hconns++;
    }
}

void http_front_boot(struct raftd *d)
{
    if (d->http_lfd < 0)
        return;
    int fl = fcntl(d->http_lfd, F_GETFL);
    if (fl < 0 || fcntl(d->http_lfd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(d->http_lfd, F_SETFD, FD_CLOEXEC) < 0)
        fatal(d, "-http-fd %d: %s", d->http_lfd, strerror(errno));
    if (loop_add(&d->loop, d->http_lfd, LOOP_READ, hf_accept, NULL) < 0)
        fatal(d, "epoll: %s", strerror(errno));
    d->http_accepting = 1;
}

void http_front_close_all(struct raftd *d)
{
    while (d->hconns) {
        hconn *c = d->hconns;
        d->hconns = c->next;
        http_front_conn_free(d, c);
    }
    d->n_hconns = 0;
    if (d->http_lfd >= 0) {
        loop_del(&d->loop, d->http_lfd);
        close(d->http_lfd);
        d->http_lfd = -1;
    }
}

/* The connection has waited too long for its client. */
static int timed_out(const hconn *c, uint64_t now)
{
    if (c->back >= 0 || c->busy)
        return 0; /* lighttpd's timeouts; raftd answers within its own */
    uint64_t idle = now - c->last;
    if (c->out.off < c->out.len)
        return idle > HF_WRITE_IDLE_MS;
    return idle > (c->in_len ? HF_READ_IDLE_MS : HF_KEEP_IDLE_MS);
}

static int client_mask(const hconn *c)
{
    int m = 0;
    if (c->out.off < c->out.len)
        m |= LOOP_WRITE;
    if (!c->eof && !c->closing && c->in_len < HF_IN_CAP && c->out.len - c->out.off < HF_OUT_MAX)
        m |= LOOP_READ;
    return m;
}

static int back_mask(const hconn *c)
{
    int m = c->in_len ? LOOP_WRITE : 0;
    if (!c->back_eof && c->out.len - c->out.off < HF_OUT_MAX)
        m |= LOOP_READ;
    return m;
}

/* End of a turn: drop what is done or timed out, set what the others
 * wait for, accept again below the limit. */
void http_front_sweep(struct raftd *d)
{
    if (d->http_lfd < 0)
        return;
    d->http_again = 0;
    uint64_t now = now_ms();
    for (hconn **pp = &d->hconns; *pp;) {
        hconn *c = *pp;
        /* done: all is written and nothing more will come (from
         * lighttpd, for a connection handed over) */
        int done = c->out.off == c->out.len &&
                   (c->back >= 0 ? c->back_eof : c->closing && !c->busy);
        if (c->dead || done || timed_out(c, now)) {
            *pp = c->next;
            d->n_hconns--;
            http_front_conn_free(d, c);
            continue;
        }
        if (c->pipelined && c->out.len - c->out.off < HF_OUT_MAX) {
            c->pipelined = 0; /* the next request, now that the last is done */
            hf_process(d, c);
        }
        if (c->eof && !c->busy && c->back < 0 && (!c->in_len || c->stalled))
            c->closing = 1; /* what is left can never be a whole request */
        if ((c->back >= 0 && loop_set_mask(&d->loop, c->back, back_mask(c)) < 0) ||
            loop_set_mask(&d->loop, c->fd, client_mask(c)) < 0)
            fatal(d, "epoll: %s", strerror(errno));
        pp = &c->next;
    }
    int want = d->n_hconns < d->http_conns_max;
    if (want != d->http_accepting) {
        if (loop_set_mask(&d->loop, d->http_lfd, want ? LOOP_READ : 0) < 0)
            fatal(d, "epoll: %s", strerror(errno));
        d->http_accepting = want;
    }
}
