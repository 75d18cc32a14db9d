/*
 * client.c - one JSON-line request to raftd.sock with an overall deadline.
 */
#include "client.h"
#include "client_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

long long client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - client_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        return 1;
    }
}

int client_timeout_from_env(void)
{
    const char *s = getenv("KEYVAL_TIMEOUT_MS");
    if (s && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (!errno && *end == '\0' && v >= 1 && v <= 600000)
            return (int)v;
    }
    return CLIENT_TIMEOUT_MS;
}

int client_reply_code(const json_t *reply)
{
    json_t *c = json_object_get(reply, "code");
    if (!json_is_integer(c))
        return 502;
    json_int_t v = json_integer_value(c);
    if (v < 100 || v > 599)
        return 502;
    return (int)v;
}

/* A kept connection is reusable when nothing is waiting on it: raftd
 * sends nothing unasked, so a readable socket means EOF or an error
 * (raftd restarted or dropped us). Checked before sending, so that no
 * request is ever sent twice. */
static int conn_idle_ok(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    return r == 0;
}

int client_request(const char *sockpath, json_t *req, int timeout_ms, json_t **reply, char *err,
                   size_t errlen)
{
    return client_request_keep(NULL, sockpath, req, timeout_ms, reply, err, errlen);
}

/* Declared in client_impl.h, as are the next two. */
int client_connect_unix(const char *sockpath, long long deadline, int timeout_ms, char *err,
                        size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (!sockpath || !*sockpath) {
        snprintf(err, errlen, "no socket path given");
        return -1;
    }
    if (strlen(sockpath) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path too long (max %zu bytes): %s", sizeof sa.sun_path - 1,
                 sockpath);
        return -1;
    }
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        snprintf(err, errlen, "connect %s: %s", sockpath, strerror(errno));
        close(fd);
        return -1;
    }
    int w = client_wait_fd(fd, POLLOUT, deadline);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (w == 0) {
        snprintf(err, errlen, "connect %s: timed out after %d ms", sockpath, timeout_ms);
    } else if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        snprintf(err, errlen, "connect %s: %s", sockpath,
                 strerror(w < 0   ? errno
                          : soerr ? soerr
                                  : EIO));
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

int client_send_all(int fd, const char *buf, size_t total, long long deadline, int timeout_ms,
                    const char *sockpath, int *partly, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < total) {
        ssize_t n = send(fd, buf + off, total - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        *partly = off > 0;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = client_wait_fd(fd, POLLOUT, deadline);
            if (w == 0) {
                snprintf(err, errlen, "send to %s: timed out after %d ms", sockpath, timeout_ms);
                return -1;
            }
            if (w < 0) {
                snprintf(err, errlen, "poll: %s", strerror(errno));
                return -1;
            }
            continue;
        }
        snprintf(err, errlen, "send to %s: %s", sockpath,
                 n < 0 ? strerror(errno) : "connection closed");
        return -1;
    }
    return 0;
}

/* Reads one line (without its newline) into *buf (grown, at most
 * CLIENT_REPLY_MAX bytes) within deadline; *len is its length. Returns 0,
 * or -1 with err set. */
static int read_line(int fd, char **buf, size_t *len, long long deadline, int timeout_ms,
                     const char *sockpath, char *err, size_t errlen)
{
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (cap - *len < 65536) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > CLIENT_REPLY_MAX + 1)
                ncap = CLIENT_REPLY_MAX + 1;
            if (ncap <= *len) {
                snprintf(err, errlen, "reply from %s too large (max %u bytes)", sockpath,
                         CLIENT_REPLY_MAX);
                return -1;
            }
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            *buf = nb;
            cap = ncap;
        }
        ssize_t n = recv(fd, *buf + *len, cap - *len, 0);
        if (n > 0) {
            char *nl = memchr(*buf + *len, '\n', (size_t)n);
            *len += (size_t)n;
            if (nl) {
                *len = (size_t)(nl - *buf);
                return 0;
            }
            continue;
        }
        if (n == 0) {
            snprintf(err, errlen, "%s closed the connection without a reply", sockpath);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = client_wait_fd(fd, POLLIN, deadline);
            if (w == 0) {
                snprintf(err, errlen, "no reply from %s within %d ms", sockpath, timeout_ms);
                return -1;
            }
            if (w < 0) {
                snprintf(err, errlen, "poll: %s", strerror(errno));
                return -1;
            }
            continue;
        }
        snprintf(err, errlen, "read from %s: %s", sockpath, strerror(errno));
        return -1;
    }
}

int client_request_keep(int *keep, const char *sockpath, json_t *req, int timeout_ms,
                        json_t **reply, char *err, size_t errlen)
{
    int fd = -1;
    if (keep && *keep >= 0) {
        if (conn_idle_ok(*keep))
            fd = *keep;
        else
            close(*keep);
        *keep = -1;
    }
    char *line = NULL, *buf = NULL;
    size_t len = 0;
    int ret = -1, sent = 0;

    *reply = NULL;
    if (timeout_ms <= 0)
        timeout_ms = CLIENT_TIMEOUT_MS;
    long long deadline = client_now_ms() + timeout_ms;

    line = json_dumps(req, JSON_COMPACT);
    if (!line) {
        snprintf(err, errlen, "cannot encode request as JSON");
        goto out;
    }
    size_t linelen = strlen(line);
    if (linelen + 1 > CLIENT_REQUEST_MAX) {
        snprintf(err, errlen, "request too large (%zu bytes, max %u)", linelen + 1,
                 CLIENT_REQUEST_MAX);
        ret = -2;
        goto out;
    }
    if (fd < 0 && (fd = client_connect_unix(sockpath, deadline, timeout_ms, err, errlen)) < 0)
        goto out;

    /* Send the request line (with its newline). */
    line[linelen] = '\n'; /* json_dumps' NUL is replaced; length known */
    if (client_send_all(fd, line, linelen + 1, deadline, timeout_ms, sockpath, &sent, err, errlen) <
        0)
        goto out;
    /* From here on raftd may have read the request and acted on it. */
    sent = 1;
    if (read_line(fd, &buf, &len, deadline, timeout_ms, sockpath, err, errlen) < 0)
        goto out;

    json_error_t jerr;
    json_t *r = json_loadb(buf, len, 0, &jerr);
    if (!r || !json_is_object(r)) {
        json_decref(r);
        char jw[200];
        snprintf(err, errlen, "malformed reply from %s: %s", sockpath,
                 r ? "not an object" : client_json_why(&jerr, jw, sizeof jw));
        goto out;
    }
    *reply = r;
    ret = 0;
    if (keep) {
        *keep = fd;
        fd = -1;
    }
out:
    if (ret == -1 && sent)
        ret = -3;
    if (fd >= 0)
        close(fd);
    free(buf);
    free(line);
    return ret;
}

int client_socket_path(const char *sock, const char *datadir, char *out, size_t outlen)
{
    const char *e;
    int n;
    if (sock && *sock)
        n = snprintf(out, outlen, "%s", sock);
    else if (datadir && *datadir)
        n = snprintf(out, outlen, "%s/raftd.sock", datadir);
    else if ((e = getenv("KEYVAL_SOCKET")) && *e)
        n = snprintf(out, outlen, "%s", e);
    else if ((e = getenv("KEYVAL_DATADIR")) && *e)
        n = snprintf(out, outlen, "%s/raftd.sock", e);
    else
        n = snprintf(out, outlen, "%s/node0/raftd.sock", (e = getenv("HOME")) && *e ? e : ".");
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int client_sockopt_take(struct client_sockopt *o, int opt, const char *arg)
{
    if (opt == 's')
        o->sock = arg;
    else if (opt == 'd')
        o->datadir = arg;
    else
        return 0;
    return 1;
}

int client_sockopt_path(const struct client_sockopt *o, const char *prog, char *out, size_t outlen)
{
    if (client_socket_path(o->sock, o->datadir, out, outlen) < 0) {
        fprintf(stderr, "%s: socket path too long\n", prog);
        return -1;
    }
    return 0;
}

const char *client_json_why(const json_error_t *e, char *buf, size_t cap)
{
    switch (json_error_code(e)) {
    case json_error_null_character:
        snprintf(buf, cap, "strings may not contain NUL bytes (\\u0000)");
        break;
    case json_error_null_byte_in_key:
        snprintf(buf, cap, "keys may not contain NUL bytes (\\u0000)");
        break;
    case json_error_duplicate_key:
        snprintf(buf, cap, "a key appears twice in one object (line %d)", e->line);
        break;
    case json_error_invalid_utf8: snprintf(buf, cap, "not valid UTF-8"); break;
    default: snprintf(buf, cap, "%s (line %d, column %d)", e->text, e->line, e->column);
    }
    return buf;
}
