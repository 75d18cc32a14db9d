/*
 * client.c - raftd.sock clients: accept (with the credentials check and
 * the connection limit), read request lines within the common buffer
 * budget, write answers, refuse what raftd will not hold.
 */
#include "raftd.h"
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Append n bytes (and a newline when nl) to c's output; 0 or -1 (c is
 * dead). Nothing is written yet: client_flush does that. */
static int client_queue(client *c, const char *s, size_t n, int nl)
{
    if (c->dead)
        return -1;
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    size_t need = c->out_len + n + (nl ? 1 : 0);
    if (need > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 4096;
        while (nc < need)
            nc *= 2;
        char *p = realloc(c->out, nc);
        if (!p) {
            c->dead = 1;
            return -1;
        }
        c->out = p;
        c->out_cap = nc;
    }
    if (n) {
        memcpy(c->out + c->out_len, s, n);
        c->out_len += n;
    }
    if (nl)
        c->out[c->out_len++] = '\n';
    return 0;
}

/* Write what c has queued, as far as the socket takes it. */
void client_flush(client *c)
{
    if (c->dead)
        return;
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        c->dead = 1;
        break;
    }
    if (c->out_off == c->out_len && c->out_cap > (1u << 20)) {
        free(c->out);
        c->out = NULL;
        c->out_cap = c->out_len = c->out_off = 0;
    }
}

/* Bytes queued for c and not written yet. */
size_t client_unsent(const client *c)
{
    return c->out_len - c->out_off;
}

/* One line of a stream (watch.c bounds what it queues): the written part
 * of the buffer is reclaimed first, so a stream that never drains to
 * empty does not grow it. 0 or -1 (c is dead). */
int client_stream_line(client *c, const char *s, size_t n)
{
    if (c->out_off && c->out_off >= c->out_cap / 2) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return client_queue(c, s, n, 1);
}

static void client_write(client *c, const char *s, size_t n)
{
    if (client_queue(c, s, n, 0) == 0)
        client_flush(c);
}

/* One reply line: text plus its newline, in one write. */
void client_send_text(client *c, const char *s, size_t n)
{
    if (c->sink) {
        c->sink(c, s, n);
        return;
    }
    if (client_queue(c, s, n, 1) == 0)
        client_flush(c);
}

void client_send_json(client *c, json_t *reply)
{
    char buf[1024], *heap;
    size_t n;
    const char *s = dump_json(reply, buf, sizeof buf, &n, &heap);
    if (!s) {
        const char *e = "{\"code\":500,\"error\":\"cannot encode reply\"}";
        client_send_text(c, e, strlen(e));
        return;
    }
    client_send_text(c, s, n);
    free(heap);
}

/* Answer c with an error, drop what it sent and close it once the answer
 * is out: for input raftd will not hold. */
static void client_refuse(client *c, int code, const char *why)
{
    json_t *r = err_reply(code, why);
    client_send_json(c, r);
    json_decref(r);
    c->eof = 1;
    c->in_len = 0;
    c->scanned = 0;
}

/* One request line from c (without its newline): the fast path for a
 * plain set on the leader, else parsed and started; blank lines are
 * skipped. */
void client_line(struct raftd *d, client *c, const char *line, size_t l)
{
    int blank = 1;
    for (size_t i = 0; i < l && blank; i++)
        blank = line[i] == ' ' || line[i] == '\t';
    if (blank || start_fast_set(d, c, line, l))
        return;
    json_error_t je;
    json_t *req = json_loadb(line, l, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(req)) {
        char msg[300], jw[240];
        snprintf(msg, sizeof msg, "malformed request: %s",
                 req ? "not a JSON object" : client_json_why(&je, jw, sizeof jw));
        json_decref(req);
        json_t *r = err_reply(400, msg);
        client_send_json(c, r);
        json_decref(r);
        return;
    }
    start_request(d, req, c, 0, 0, 0);
}

/* Take c's whole request lines, one at a time: the next only once the
 * answer to the last is out. */
void client_pump(struct raftd *d, client *c)
{
    while (!c->dead && !c->busy && !c->watch && c->out_off == c->out_len) {
        char *nl = c->in_len > c->scanned ? memchr(c->in + c->scanned, '\n', c->in_len - c->scanned)
                                          : NULL;
        if (!nl) {
            c->scanned = c->in_len;
            if (c->in_len > LINE_MAX_BYTES)
                client_refuse(c, 413, "request line longer than 16 MiB");
            return;
        }
        size_t ll = (size_t)(nl - c->in);
        size_t rest = c->in_len - ll - 1;
        if (ll > LINE_MAX_BYTES) {
            json_t *r = err_reply(413, "request line longer than 16 MiB");
            client_send_json(c, r);
            json_decref(r);
        } else {
            size_t l = ll;
            if (l && c->in[l - 1] == '\r')
                l--;
            client_line(d, c, c->in, l);
        }
        memmove(c->in, nl + 1, rest);
        c->in_len = rest;
        c->scanned = 0;
    }
}

void client_read(struct raftd *d, client *c)
{
    if (c->dead)
        return;
    if (c->refused || c->watch) { /* a watch takes no more requests */
        char junk[4096];
        ssize_t n = read(c->fd, junk, sizeof junk);
        if (n == 0 && c->watch)
            c->rd_closed = 1; /* a half-close: the watch goes on until a hang-up */
        else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            c->dead = 1;
        return;
    }
    if (c->in_cap - c->in_len < CLIENT_BUF_MIN) {
        size_t nc = c->in_cap ? c->in_cap * 2 : CLIENT_BUF_MIN;
        if (nc > LINE_MAX_BYTES + 131072)
            nc = LINE_MAX_BYTES + 131072;
        if (nc > c->in_cap && nc > CLIENT_BUF_MIN &&
            d->client_bufs - c->in_cap + nc > CLIENT_BUFS_MAX) {
            client_refuse(c, 503,
                          "raftd is holding too many large requests from other "
                          "clients; retry later");
            return;
        }
        if (nc > c->in_cap) {
            char *p = realloc(c->in, nc);
            if (!p) {
                c->dead = 1;
                return;
            }
            d->client_bufs += nc - c->in_cap;
            c->in = p;
            c->in_cap = nc;
        }
    }
    size_t room = c->in_cap - c->in_len;
    if (room == 0) {
        client_pump(d, c);
        return;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    c->last = now_ms();
    if (n <= 0) {
        c->eof = 1;
        /* A last request without its newline still counts. */
        if (c->in_len && c->in[c->in_len - 1] != '\n' && c->in_len < c->in_cap)
            c->in[c->in_len++] = '\n';
        client_pump(d, c);
        return;
    }
    c->in_len += (size_t)n;
    client_pump(d, c);
    /* A big request is done: give its buffer back to the common budget
     * (FastCGI programs keep their connection for many requests). */
    if (!c->dead && c->in_cap > CLIENT_BUF_MIN && c->in_len <= CLIENT_BUF_MIN / 2) {
        char *p = realloc(c->in, CLIENT_BUF_MIN);
        if (p) {
            d->client_bufs -= c->in_cap - CLIENT_BUF_MIN;
            c->in = p;
            c->in_cap = CLIENT_BUF_MIN;
        }
    }
}

void client_free(struct raftd *d, client *c)
{
    pending_detach_client(d, c);
    loop_del(&d->loop, c->fd);
    close(c->fd);
    d->client_bufs -= c->in_cap;
    free(c->in);
    free(c->out);
    free(c);
}

/* What c waits for: room to write what it is owed, else its next
 * request (while none is in progress and its line may still grow), else
 * only a hang-up. */
static int client_mask(const client *c)
{
    if (c->watch) /* input only to see it end; a hang-up ends the watch */
        return (c->rd_closed ? 0 : LOOP_READ) | (c->out_off < c->out_len ? LOOP_WRITE : 0);
    if (c->out_off < c->out_len)
        return LOOP_WRITE;
    if (c->refused || (!c->busy && !c->eof && c->in_len <= LINE_MAX_BYTES))
        return LOOP_READ;
    return 0;
}

static void client_event(loop *l, int fd, void *data, int events)
{
    client *c = data;
    (void)fd;
    if (events & LOOP_WRITE) {
        client_flush(c);
        if (c->watch)
            watch_drained(l->owner, c); /* more history as the client reads */
    }
    if (events & LOOP_READ)
        client_read(l->owner, c);
    else if (events & LOOP_HUP)
        c->dead = 1; /* gone for good: nobody to answer */
}

/* New connections on raftd.sock (the loop's callback for its listener). */
static void accept_clients(struct raftd *d)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(d->client_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uid_t uid;
        gid_t gid;
        int allowed = socket_peer_allowed(fd, d->client_path, &uid, &gid);
        if (!allowed)
            log_refusal(d, "raftd.sock", uid, gid);
        /* Full: make room by closing the longest-idle client (connected,
         * nothing asked, nothing owed), so idle connections cannot lock
         * everyone out. */
        size_t live = 0;
        client *victim = NULL;
        for (size_t i = 0; i < d->n_clients; i++) {
            client *o = d->clients[i];
            if (o->dead)
                continue;
            live++;
            if (!o->busy && !o->watch && o->out_off == o->out_len && o->in_len == 0 &&
                (!victim || o->last < victim->last))
                victim = o;
        }
        if (live >= d->max_clients && victim && d->n_clients < MAX_CLIENTS + 64) {
            victim->dead = 1;
            live--;
            vlog(d, "too many clients: closed the longest-idle one");
        }
        if (live >= d->max_clients || d->n_clients >= MAX_CLIENTS + 64) {
            const char *e = "{\"code\":503,\"error\":\"too many clients\"}\n";
            ssize_t w = write(fd, e, strlen(e));
            (void)w;
            close(fd);
            continue;
        }
        client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->since = c->last = now_ms();
        if (loop_add(&d->loop, fd, client_mask(c), client_event, c) < 0) {
            close(fd);
            free(c);
            continue;
        }
        d->clients[d->n_clients++] = c;
        d->m_clients_accepted++;
        if (!allowed) {
            /* Answer at once; read and drop what it sends so that it can
             * finish sending and read the answer; close when it goes. */
            char e[128];
            int n = snprintf(e, sizeof e,
                             "{\"code\":403,\"error\":\"uid %u may not use raftd.sock\"}\n",
                             (unsigned)uid);
            c->refused = 1;
            client_write(c, e, (size_t)n);
            shutdown(fd, SHUT_WR);
        }
    }
}

void client_listen_event(loop *l, int fd, void *data, int events)
{
    (void)fd;
    (void)data;
    (void)events;
    accept_clients(l->owner);
}

/* Every turn: take what each client has sent while nothing else runs. */
void clients_pump(struct raftd *d)
{
    for (size_t i = 0; i < d->n_clients; i++)
        client_pump(d, d->clients[i]);
}

/* End of a turn: free the clients that are dead or done (all answered,
 * nothing more to come), refused ones after 5 s; the others wait for what
 * they now need. */
void clients_sweep(struct raftd *d)
{
    for (size_t i = 0; i < d->n_clients;) {
        client *c = d->clients[i];
        int done = c->eof && !c->busy && c->out_off == c->out_len &&
                   !(c->in_len > c->scanned &&
                     memchr(c->in + c->scanned, '\n', c->in_len - c->scanned));
        if (c->refused && now_ms() - c->since > 5000)
            done = 1;
        if (c->dead || done) {
            client_free(d, c);
            d->clients[i] = d->clients[--d->n_clients];
        } else {
            if (loop_set_mask(&d->loop, c->fd, client_mask(c)) < 0)
                fatal(d, "epoll: %s", strerror(errno));
            i++;
        }
    }
}
