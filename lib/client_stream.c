/*
 * client_stream.c - one request to raftd.sock whose reply is a stream of
 * lines (a watch): the first reply, then event lines as they come, each
 * bounded, read with a deadline or none (client.h).
 */
#include "client.h"
#include "client_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct client_stream {
    int fd;
    char *buf;
    size_t start, len, cap; /* unread bytes are buf[start..len) */
    char path[256];
};

/* Makes room for at least one more read; the buffer grows up to
 * CLIENT_EVENT_MAX + 2 bytes. Returns 0, or -1 when a line is too long. */
static int make_room(client_stream *s)
{
    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->len - s->start);
        s->len -= s->start;
        s->start = 0;
    }
    if (s->cap - s->len >= 4096)
        return 0;
    size_t ncap = s->cap ? s->cap * 2 : 65536;
    if (ncap > CLIENT_EVENT_MAX + 2)
        ncap = CLIENT_EVENT_MAX + 2; /* a line, its newline, one spare byte */
    if (ncap < s->len + 2)
        return -1; /* full: no newline within CLIENT_EVENT_MAX + 1 bytes */
    char *nb = realloc(s->buf, ncap);
    if (!nb)
        return -1;
    s->buf = nb;
    s->cap = ncap;
    return 0;
}

/* A complete line already in the buffer: returns 1 and takes it. */
static int take_line(client_stream *s, const char **line, size_t *len)
{
    char *nl = s->len > s->start ? memchr(s->buf + s->start, '\n', s->len - s->start) : NULL;
    if (!nl)
        return 0;
    *nl = '\0';
    *line = s->buf + s->start;
    *len = (size_t)(nl - (s->buf + s->start));
    s->start = (size_t)(nl - s->buf) + 1;
    return 1;
}

int client_stream_next(client_stream *s, int timeout_ms, const char **line, size_t *len, char *err,
                       size_t errlen)
{
    long long deadline = timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
    for (;;) {
        if (take_line(s, line, len))
            return 1;
        if (make_room(s) < 0) {
            snprintf(err, errlen, "line from %s too long (max %u bytes)", s->path,
                     CLIENT_EVENT_MAX);
            return -1;
        }
        ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len - 1, 0);
        if (n > 0) {
            s->len += (size_t)n;
            continue;
        }
        if (n == 0) {
            snprintf(err, errlen, "closed");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(err, errlen, "read from %s: %s", s->path, strerror(errno));
            return -1;
        }
        if (timeout_ms == 0)
            return 0;
        int w;
        if (deadline < 0) {
            struct pollfd p = {.fd = s->fd, .events = POLLIN};
            w = poll(&p, 1, -1);
            if (w < 0 && errno == EINTR)
                continue;
        } else {
            w = client_wait_fd(s->fd, POLLIN, deadline);
        }
        if (w == 0)
            return 0;
        if (w < 0) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

client_stream *client_stream_open(const char *sockpath, json_t *req, int timeout_ms, json_t **first,
                                  char *err, size_t errlen)
{
    *first = NULL;
    if (timeout_ms <= 0)
        timeout_ms = CLIENT_TIMEOUT_MS;
    long long deadline = client_now_ms() + timeout_ms;
    client_stream *s = calloc(1, sizeof *s);
    if (s)
        s->fd = -1;
    char *text = json_dumps(req, JSON_COMPACT);
    if (!s || !text) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(s->path, sizeof s->path, "%s", sockpath ? sockpath : "");
    s->fd = client_connect_unix(sockpath, deadline, timeout_ms, err, errlen);
    if (s->fd < 0)
        goto fail;
    size_t tl = strlen(text);
    text[tl] = '\n'; /* the NUL is replaced; the length is known */
    int partly = 0;
    if (client_send_all(s->fd, text, tl + 1, deadline, timeout_ms, sockpath, &partly, err, errlen) <
        0)
        goto fail;
    const char *line;
    size_t len;
    long long left = deadline - client_now_ms();
    int r = client_stream_next(s, left > 0 ? (int)left : 1, &line, &len, err, errlen);
    if (r == 0)
        snprintf(err, errlen, "no reply from %s within %d ms", sockpath, timeout_ms);
    if (r == -1 && !strcmp(err, "closed"))
        snprintf(err, errlen, "%s closed the connection without a reply", sockpath);
    if (r != 1)
        goto fail;
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "malformed reply from %s: %s", sockpath,
                 o ? "not an object" : jerr.text);
        json_decref(o);
        goto fail;
    }
    free(text);
    *first = o;
    return s;
fail:
    free(text);
    if (s && s->fd >= 0)
        close(s->fd);
    if (s)
        free(s->buf);
    free(s);
    return NULL;
}

int client_stream_fd(const client_stream *s)
{
    return s->fd;
}

void client_stream_close(client_stream *s)
{
    if (!s)
        return;
    close(s->fd);
    free(s->buf);
    free(s);
}
