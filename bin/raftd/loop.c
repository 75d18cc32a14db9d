/*
 * loop.c - the event loop over epoll(7), level-triggered (see loop.h).
 * Must not know its handlers: it only waits and calls back.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_BATCH 256

int loop_init(loop *l, int size, void *owner)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->size = size;
    l->owner = owner;
    l->files = calloc((size_t)size, sizeof *l->files); /* fn NULL: not registered */
    l->fired = calloc(LOOP_BATCH, sizeof *l->fired);
    if (l->epfd < 0 || !l->files || !l->fired) {
        loop_free(l);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void loop_free(loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
    free(l->files);
    free(l->fired);
    l->files = NULL;
    l->fired = NULL;
}

static uint32_t epoll_bits(int mask)
{
    return (mask & LOOP_READ ? EPOLLIN : 0) | (mask & LOOP_WRITE ? EPOLLOUT : 0);
}

int loop_add(loop *l, int fd, int mask, loop_fn *fn, void *data)
{
    if (fd < 0 || fd >= l->size) {
        errno = EMFILE;
        return -1;
    }
    struct epoll_event ev = {.events = epoll_bits(mask), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    l->files[fd] = (loop_file){mask, fn, data};
    return 0;
}

int loop_set_mask(loop *l, int fd, int mask)
{
    if (fd < 0 || fd >= l->size || !l->files[fd].fn)
        return -1;
    if (l->files[fd].mask == mask)
        return 0;
    struct epoll_event ev = {.events = epoll_bits(mask), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    l->files[fd].mask = mask;
    return 0;
}

void loop_del(loop *l, int fd)
{
    if (fd < 0 || fd >= l->size || !l->files[fd].fn)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->files[fd] = (loop_file){0, NULL, NULL};
}

int loop_has(const loop *l, int fd)
{
    return fd >= 0 && fd < l->size && l->files[fd].fn != NULL;
}

int loop_wait(loop *l, int timeout_ms)
{
    int n = epoll_wait(l->epfd, l->fired, LOOP_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    return n;
}

void loop_dispatch(loop *l, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = l->fired[i].data.fd;
        uint32_t e = l->fired[i].events;
        /* A callback earlier in this batch may have deleted fd. */
        if (fd < 0 || fd >= l->size || !l->files[fd].fn)
            continue;
        loop_file *f = &l->files[fd];
        int events = (e & EPOLLIN && f->mask & LOOP_READ ? LOOP_READ : 0) |
                     (e & EPOLLOUT && f->mask & LOOP_WRITE ? LOOP_WRITE : 0) |
                     (e & (EPOLLHUP | EPOLLERR) ? LOOP_HUP : 0);
        if (events)
            f->fn(l, fd, f->data, events);
    }
}
