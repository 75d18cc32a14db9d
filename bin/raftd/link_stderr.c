/*
 * link_stderr.c - the standard error of the outbound link children
 * (socat) into raftd's log, so that a failed TLS name check or a refused
 * connection says why: each link's stderr is a pipe read by the loop; its
 * last line is kept (LINK_ERR_LINE bytes at most) and logged as
 * "peer link to NAME: LINE", at most once per LINK_ERR_EVERY_MS per
 * link (a link failing in a loop says its reason every 10 s, not at every
 * attempt). With -v every line is logged.
 */
#include "raftd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define LINK_ERR_EVERY_MS 10000

/* Log p's pending last line when its window allows (force: also inside
 * the window, used by -v). */
static void err_flush(struct raftd *d, peer *p, uint64_t now, int force)
{
    if (!p->err_pending)
        return;
    if (!force && p->err_logged && now - p->err_logged < LINK_ERR_EVERY_MS)
        return;
    logf_(d, "peer link to %s: %s", p->name, p->err_last);
    p->err_logged = now;
    p->err_pending = 0;
}

/* A whole line (or a too-long one, cut) of p's stderr. */
static void err_line(struct raftd *d, peer *p, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (!n)
        return;
    if (n >= sizeof p->err_last)
        n = sizeof p->err_last - 1;
    for (size_t i = 0; i < n; i++) /* printable only: it goes into a log */
        p->err_last[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
    p->err_last[n] = 0;
    p->err_pending = 1;
    err_flush(d, p, now_ms(), d->verbose);
}

/* n bytes of p's stderr: split into lines. */
static void err_feed(struct raftd *d, peer *p, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || p->err_len + 1 >= sizeof p->err_buf) {
            err_line(d, p, p->err_buf, p->err_len);
            p->err_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        p->err_buf[p->err_len++] = buf[i];
    }
}

/* Read what is there; at EOF (the child is gone) stop watching. */
static void err_read(struct raftd *d, peer *p)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(p->err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            link_stderr_close(d, p);
            return;
        }
        err_feed(d, p, buf, (size_t)n);
    }
}

static void err_event(loop *l, int fd, void *data, int events)
{
    (void)fd;
    (void)events;
    err_read(l->owner, data);
}

/* Before fork: a pipe for the child's stderr. Returns the write end for
 * the child (-1: none, the child keeps raftd's stderr). */
int link_stderr_open(struct raftd *d, peer *p)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    set_nonblock(fds[0]);
    if (loop_add(&d->loop, fds[0], LOOP_READ, err_event, p) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    p->err_fd = fds[0];
    p->err_len = 0;
    return fds[1];
}

/* The child is gone (or the link freed): read what is left, log a pending
 * line if its window allows, close. */
void link_stderr_close(struct raftd *d, peer *p)
{
    if (p->err_fd < 0)
        return;
    int fd = p->err_fd;
    p->err_fd = -1;
    loop_del(&d->loop, fd);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        err_feed(d, p, buf, (size_t)n);
    if (p->err_len)
        err_line(d, p, p->err_buf, p->err_len);
    p->err_len = 0;
    close(fd);
}

/* Every tick: a line held back by the window is logged once it opens. */
void link_stderr_timers(struct raftd *d, uint64_t now)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (d->peers[i].used)
            err_flush(d, &d->peers[i], now, 0);
}
