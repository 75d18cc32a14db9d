/*
 * fcgi.c - raftd's FastCGI responder on fcgi.sock: lighttpd's mod_fastcgi
 * connects here and raftd answers in its own loop (no program process).
 * Records in: BEGIN_REQUEST, PARAMS, STDIN, ABORT_REQUEST, GET_VALUES;
 * out: STDOUT, END_REQUEST, GET_VALUES_RESULT, UNKNOWN_TYPE. One request
 * at a time per connection (FCGI_MPXS_CONNS 0; lighttpd sends one);
 * PARAMS up to FCGI_PARAMS_MAX, a body up to CGI_BODY_MAX; a malformed
 * record closes that connection only. http_fast.c maps the request.
 */
#include "fcgi.h"
#include "cgi.h"
#include "fcgi_rec.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IN_CAP (FCGI_HEADER_LEN + FCGI_CONTENT_MAX + 255 + 4096)

static int out_room(fconn *c, size_t n)
{
    if (outbuf_room(&c->out, n) < 0) {
        c->dead = 1;
        return -1;
    }
    return 0;
}

static void out_record(fconn *c, int type, unsigned id, const void *s, size_t n)
{
    if (c->dead || out_room(c, FCGI_HEADER_LEN + n) < 0)
        return;
    fcgi_put_header((uint8_t *)c->out.p + c->out.len, type, id, n);
    if (n)
        memcpy(c->out.p + c->out.len + FCGI_HEADER_LEN, s, n);
    c->out.len += FCGI_HEADER_LEN + n;
}

static void out_end(fconn *c, unsigned id, int proto)
{
    if (c->dead || out_room(c, 16) < 0)
        return;
    fcgi_put_end((uint8_t *)c->out.p + c->out.len, id, 0, proto);
    c->out.len += 16;
}

static void fconn_flush(fconn *c)
{
    if (!c->dead && outbuf_flush(&c->out, c->fd, FCGI_OUT_MAX) < 0)
        c->dead = 1;
}

/* The request is over (answered or aborted): ready for the next. */
static void request_reset(fconn *c)
{
    c->id = 0;
    c->params_done = c->started = c->body_over = 0;
    c->params_len = c->body_len = 0;
    if (c->body_cap > CGI_BODY_MAX / 16) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->r.h.kind = HR_NONE;
    c->r.live = 0;
    if (!c->keep)
        c->closing = 1;
}

static int fconn_param(const fastreq *r, const char *name, char *out, size_t cap)
{
    const fconn *c = (const fconn *)((const char *)r - offsetof(fconn, r));
    const uint8_t *p = (const uint8_t *)c->params, *n, *v;
    size_t left = c->params_len, nl, vl, used, want = strlen(name);
    while (fcgi_next_pair(p, left, &n, &nl, &v, &vl, &used) == 1) {
        if (nl == want && memcmp(n, name, nl) == 0) {
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
        p += used;
        left -= used;
    }
    return 0;
}

static void fconn_answer(struct raftd *d, fastreq *r, const char *s, size_t n)
{
    fconn *c = (fconn *)((char *)r - offsetof(fconn, r));
    if (!c->id)
        return;
    for (size_t off = 0; off < n;) {
        size_t k = n - off > 32768 ? 32768 : n - off;
        out_record(c, FCGI_STDOUT, c->id, s + off, k);
        off += k;
    }
    out_record(c, FCGI_STDOUT, c->id, NULL, 0);
    out_end(c, c->id, FCGI_REQUEST_COMPLETE);
    request_reset(c); /* pending.c cuts c->r.cl from its request next */
    d->m_fcgi_requests++;
    fconn_flush(c);
}

/* GET_VALUES: what we are asked about, from what we know. */
static void get_values(fconn *c, const uint8_t *p, size_t len)
{
    uint8_t out[512];
    size_t o = 0, nl, vl, used;
    const uint8_t *n, *v;
    while (fcgi_next_pair(p, len, &n, &nl, &v, &vl, &used) == 1) {
        const char *val = NULL;
        if (nl == 14 && !memcmp(n, "FCGI_MAX_CONNS", 14))
            val = "1024";
        else if (nl == 13 && !memcmp(n, "FCGI_MAX_REQS", 13))
            val = "1024";
        else if (nl == 15 && !memcmp(n, "FCGI_MPXS_CONNS", 15))
            val = "0";
        if (val)
            o += fcgi_put_pair(out + o, sizeof out - o, (const char *)n, nl, val, strlen(val));
        p += used;
        len -= used;
    }
    out_record(c, FCGI_GET_VALUES_RESULT, 0, out, o);
}

static int append(char **buf, size_t *len, size_t *cap, const uint8_t *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n + 1)
            nc *= 2;
        char *p = realloc(*buf, nc);
        if (!p)
            return -1;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

/* One record of c; -1 when the connection must close. */
static int fconn_record(fconn *c, const fcgi_header *h, const uint8_t *ct)
{
    switch (h->type) {
    case FCGI_GET_VALUES:
        if (h->id == 0)
            get_values(c, ct, h->clen);
        return 0;
    case FCGI_BEGIN_REQUEST:
        if (h->id == 0 || h->clen < 8)
            return -1;
        if (c->id || c->started) {
            out_end(c, h->id, FCGI_CANT_MPX_CONN);
            return 0;
        }
        c->keep = ct[2] & FCGI_KEEP_CONN;
        if (((unsigned)ct[0] << 8 | ct[1]) != FCGI_RESPONDER) {
            out_end(c, h->id, FCGI_UNKNOWN_ROLE);
            return 0;
        }
        c->id = h->id;
        c->closing = 0;
        return 0;
    case FCGI_ABORT_REQUEST:
        if (h->id && h->id == c->id) {
            unsigned id = c->id;
            http_fast_drop(&c->r);
            request_reset(c);
            out_end(c, id, FCGI_REQUEST_COMPLETE);
        }
        return 0;
    case FCGI_PARAMS:
        if (!c->id || h->id != c->id || c->params_done)
            return 0;
        if (h->clen == 0) {
            c->params_done = 1;
            return 0;
        }
        if (c->params_len + h->clen > FCGI_PARAMS_MAX)
            return -1;
        if (!c->params && !(c->params = malloc(FCGI_PARAMS_MAX)))
            return -1;
        memcpy(c->params + c->params_len, ct, h->clen);
        c->params_len += h->clen;
        return 0;
    case FCGI_STDIN:
        if (!c->id || h->id != c->id || c->started)
            return 0;
        if (h->clen == 0) {
            c->started = 1;
            c->r.body = c->body;
            c->r.body_len = c->body_len;
            c->r.body_over = c->body_over;
            http_fast_start(&c->r);
            return 0;
        }
        if (c->body_len + h->clen > CGI_BODY_MAX)
            c->body_over = 1;
        else if (append(&c->body, &c->body_len, &c->body_cap, ct, h->clen) < 0)
            return -1;
        return 0;
    default:
        if (h->id == 0) { /* a management record we do not know */
            uint8_t u[8] = {(uint8_t)h->type};
            out_record(c, FCGI_UNKNOWN_TYPE, 0, u, sizeof u);
        }
        return 0;
    }
}

/* Take every whole record c holds. */
static void fconn_process(struct raftd *d, fconn *c)
{
    size_t off = 0;
    while (!c->dead && !c->closing) {
        fcgi_header h;
        long r = fcgi_parse_record(c->in + off, c->in_len - off, &h);
        if (r < 0 || (r > 0 && fconn_record(c, &h, c->in + off + FCGI_HEADER_LEN) < 0)) {
            vlog(d, "fcgi.sock: malformed or oversized record: connection closed");
            c->dead = 1;
            break;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    fconn_flush(c);
}

size_t fcgi_feed(struct raftd *d, fconn *c, const uint8_t *p, size_t n)
{
    if (n > c->in_cap - c->in_len)
        n = c->in_cap - c->in_len;
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    fconn_process(d, c);
    return n;
}

static void fconn_read(struct raftd *d, fconn *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->dead = 1;
        return;
    }
    c->in_len += (size_t)n;
    c->last = now_ms();
    fconn_process(d, c);
}

static int fconn_mask(const fconn *c)
{
    if (c->out.off < c->out.len)
        return LOOP_WRITE | (c->out.len - c->out.off < FCGI_OUT_MAX ? LOOP_READ : 0);
    return c->closing ? 0 : LOOP_READ;
}

static void fconn_event(loop *l, int fd, void *data, int events)
{
    fconn *c = data;
    (void)fd;
    if (events & LOOP_WRITE)
        fconn_flush(c);
    if (events & LOOP_READ)
        fconn_read(l->owner, c);
    else if (events & LOOP_HUP)
        c->dead = 1;
}

void fcgi_conn_free(struct raftd *d, fconn *c)
{
    if (!c)
        return;
    http_fast_drop(&c->r);
    if (loop_has(&d->loop, c->fd))
        loop_del(&d->loop, c->fd);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out.p);
    free(c->params);
    free(c->body);
    free(c);
}

fconn *fcgi_conn_new(struct raftd *d, int fd)
{
    fconn *c = calloc(1, sizeof *c);
    if (!c || !(c->in = malloc(IN_CAP))) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->in_cap = IN_CAP;
    fastreq_init(&c->r, d, fconn_param, fconn_answer);
    c->last = now_ms();
    return c;
}

static void fcgi_accept(loop *l, int lfd, void *data, int events)
{
    struct raftd *d = l->owner;
    (void)data;
    (void)events;
    for (int k = 0; k < 64; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uid_t uid;
        gid_t gid;
        if (!socket_peer_allowed(fd, d->fcgi_path, &uid, &gid)) {
            log_refusal(d, "fcgi.sock", uid, gid);
            close(fd);
            continue;
        }
        fconn *c = d->n_fconns < FCGI_CONNS_MAX ? fcgi_conn_new(d, fd) : NULL;
        if (!c || loop_add(&d->loop, fd, LOOP_READ, fconn_event, c) < 0) {
            if (c)
                fcgi_conn_free(d, c); /* closes fd */
            else
                close(fd);
            continue;
        }
        c->next = d->fconns;
        d->fconns = c;
        d->n_fconns++;
    }
}

void fcgi_boot(struct raftd *d)
{
    path_in_dir(d, d->fcgi_path, sizeof d->fcgi_path, "fcgi.sock");
    d->fcgi_lfd = listen_unix(d, d->fcgi_path, 0660);
    if (loop_add(&d->loop, d->fcgi_lfd, LOOP_READ, fcgi_accept, NULL) < 0)
        fatal(d, "epoll: %s", strerror(errno));
}

void fcgi_close_all(struct raftd *d)
{
    while (d->fconns) {
        fconn *c = d->fconns;
        d->fconns = c->next;
        fcgi_conn_free(d, c);
    }
    d->n_fconns = 0;
    if (d->fcgi_lfd >= 0) {
        loop_del(&d->loop, d->fcgi_lfd);
        close(d->fcgi_lfd);
        unlink(d->fcgi_path);
        d->fcgi_lfd = -1;
    }
}

/* End of a turn: finish answered requests, free closed connections, set
 * what the others wait for. */
void fcgi_sweep(struct raftd *d)
{
    for (fconn **pp = &d->fconns; *pp;) {
        fconn *c = *pp;
        if (c->dead || (c->closing && c->out.off == c->out.len)) {
            *pp = c->next;
            d->n_fconns--;
            fcgi_conn_free(d, c);
            continue;
        }
        if (loop_set_mask(&d->loop, c->fd, fconn_mask(c)) < 0)
            fatal(d, "epoll: %s", strerror(errno));
        pp = &c->next;
    }
}
