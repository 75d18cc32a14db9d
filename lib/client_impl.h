/*
 * client_impl.h - the socket steps lib/client.c and lib/client_stream.c
 * share (private to lib/client*.c; callers use client.h).
 */
#ifndef KEYVAL_CLIENT_IMPL_H
#define KEYVAL_CLIENT_IMPL_H

#include <stddef.h>

/* CLOCK_MONOTONIC in milliseconds. */
long long client_now_ms(void);

/* Waits until fd is ready for events or the deadline (client_now_ms()
 * scale) passes. Returns 1 ready, 0 timed out, -1 error (errno set). */
int client_wait_fd(int fd, short events, long long deadline);

/* A non-blocking UNIX stream connection to sockpath within deadline.
 * Returns the descriptor, or -1 with err set. */
int client_connect_unix(const char *sockpath, long long deadline, int timeout_ms, char *err,
                        size_t errlen);

/* Sends buf[0..total) within deadline. Returns 0, or -1 with err set and
 * *partly set when some of it had been sent. */
int client_send_all(int fd, const char *buf, size_t total, long long deadline, int timeout_ms,
                    const char *sockpath, int *partly, char *err, size_t errlen);

#endif
