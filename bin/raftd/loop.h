/*
 * loop.h - the event loop: descriptors registered with a mask and a
 * callback with their own data; the loop waits (epoll) and dispatches.
 * It knows nothing of what the descriptors are. Timers are the caller's:
 * it passes the time to the next one as the wait's timeout.
 */
#ifndef RAFTD_LOOP_H
#define RAFTD_LOOP_H

#define LOOP_READ 1
#define LOOP_WRITE 2
#define LOOP_HUP 4 /* hang-up or error: reported whatever the mask */

struct loop;
struct epoll_event;
/* Called with the events that fired (LOOP_* bits) on fd. */
typedef void loop_fn(struct loop *l, int fd, void *data, int events);

typedef struct loop_file {
    int mask;
    loop_fn *fn; /* NULL: fd not registered */
    void *data;
} loop_file;

typedef struct loop {
    int epfd;
    int size; /* descriptors 0..size-1 may be registered */
    loop_file *files;
    void *owner; /* handed to callbacks through l->owner */
    struct epoll_event *fired;
} loop;

/* 0 ok, -1 with errno. */
int loop_init(loop *l, int size, void *owner);
void loop_free(loop *l);
/* Register fd (mask may be 0: only hang-ups are reported). */
int loop_add(loop *l, int fd, int mask, loop_fn *fn, void *data);
/* Change what fd waits for; a no-op when the mask is unchanged. */
int loop_set_mask(loop *l, int fd, int mask);
/* Forget fd; call before closing it. */
void loop_del(loop *l, int fd);
/* Nonzero when fd is registered. */
int loop_has(const loop *l, int fd);
/* Wait at most timeout_ms (0: do not wait). Returns the number of
 * events, 0 on timeout or EINTR, -1 on error. */
int loop_wait(loop *l, int timeout_ms);
/* Call back for the n events loop_wait returned. */
void loop_dispatch(loop *l, int n);

#endif
