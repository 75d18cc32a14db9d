/*
 * kvflood - hostile-client load for one keyval endpoint (the peer port or
 * raftd.sock): many connections that send garbage, truncated frames, huge
 * length prefixes, a byte at a time, or nothing at all. Used by
 * tests/cluster/hostile.sh to show a node keeps serving others.
 *
 * usage: kvflood (-tcp HOST:PORT | -unix PATH) -mode MODE [-n N] [-t SECONDS]
 *   idle      open N connections and send nothing
 *   garbage   each connection sends 64 KiB of pseudo-random bytes
 *   huge      each sends a frame header claiming 4 GiB (peer port) and,
 *             on raftd.sock, a 17 MiB line without a newline
 *   bigframe  each sends a whole 16 MiB first frame (peer port: before
 *             any HELLO; raftd.sock: a 16 MiB line without a newline)
 *   truncated each sends the first half of a valid HELLO frame
 *   trickle   slowloris: each sends one byte of a JSON request every
 *             200 ms and never finishes
 *   headers   HTTP slowloris (-tcp to the HTTP port): each sends a request
 *             line, then one header line every 3 s, and never ends the
 *             header
 * Holds everything for SECONDS (default 10), then prints
 *   kvflood: MODE: N opened, F failed to open, C closed by the server
 * and exits 0. Connections beyond the process's descriptor limit, TCP
 * connects not accepted by the end and UNIX connects that wait over 1 s
 * count as failed. Never more than 4096 connections; every wait is
 * bounded (at most 2 x SECONDS in all).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 4096

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *tcp_addr, *unix_path;

/* Opens one connection. TCP: non-blocking, *connecting set while the
 * handshake is under way (the main loop finishes it), so that 1000
 * connects are in flight at once; a listener whose backlog is full drops
 * SYNs and TCP retries them. UNIX: a connect bounded by a 1 s send
 * timeout (it waits while the listener's backlog is full). */
static int dial(int *connecting)
{
    int fd = -1;
    *connecting = 0;
    if (unix_path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(unix_path) >= sizeof sa.sun_path)
            return -1;
        strcpy(sa.sun_path, unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct timeval tv = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            close(fd);
            return -1;
        }
    } else {
        char host[256];
        const char *c = strrchr(tcp_addr, ':');
        if (!c || (size_t)(c - tcp_addr) >= sizeof host)
            return -1;
        memcpy(host, tcp_addr, (size_t)(c - tcp_addr));
        host[c - tcp_addr] = 0;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(host, c + 1, &hints, &res) != 0)
            return -1;
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
            if (errno == EINPROGRESS) {
                *connecting = 1;
            } else {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
    }
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Writes what fits now; returns bytes written or -1 when the peer is gone. */
static ssize_t send_some(int fd, const void *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return w;
}

static void usage(void)
{
    fprintf(stderr, "usage: kvflood (-tcp HOST:PORT | -unix PATH) -mode "
                    "idle|garbage|huge|bigframe|truncated|trickle|headers [-n N] [-t SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    int n = 100, secs = 10;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "-tcp"))
            tcp_addr = argv[++i];
        else if (!strcmp(argv[i], "-unix"))
            unix_path = argv[++i];
        else if (!strcmp(argv[i], "-mode"))
            mode = argv[++i];
        else if (!strcmp(argv[i], "-n"))
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t"))
            secs = atoi(argv[++i]);
        else
            usage();
    }
    if (!mode || (!tcp_addr == !unix_path) || n < 1 || n > MAX_CONN || secs < 1 || secs > 600)
        usage();
    int m_idle = !strcmp(mode, "idle"), m_garbage = !strcmp(mode, "garbage"),
        m_huge = !strcmp(mode, "huge"), m_trunc = !strcmp(mode, "truncated"),
        m_trickle = !strcmp(mode, "trickle"), m_big = !strcmp(mode, "bigframe"),
        m_headers = !strcmp(mode, "headers");
    if (!(m_idle || m_garbage || m_huge || m_trunc || m_trickle || m_big || m_headers))
        usage();
    if (m_headers && !tcp_addr)
        usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    static int fds[MAX_CONN];
    static size_t sent[MAX_CONN];
    static uint8_t payload[17u << 20];
    size_t plen = 0;
    uint32_t x = 12345;
    if (m_garbage) {
        plen = 64 * 1024;
        for (size_t i = 0; i < plen; i++) {
            x = x * 1103515245u + 12345u;
            payload[i] = (uint8_t)(x >> 16);
        }
    } else if (m_huge) {
        if (unix_path) { /* one line longer than raftd's 16 MiB limit */
            plen = 17u << 20;
            memset(payload, ' ', plen);
            payload[0] = '{';
        } else { /* length 0xffffffff, kind HELLO */
            const uint8_t h[] = {0xff, 0xff, 0xff, 0xff, 1};
            memcpy(payload, h, sizeof h);
            plen = sizeof h;
        }
    } else if (m_big) { /* a first frame of 16 MiB (the frame limit), all sent */
        const uint8_t h[] = {0x01, 0x00, 0x00, 0x00, 1};
        plen = (16u << 20) + 4;
        memset(payload, 'x', plen);
        memcpy(payload, h, sizeof h);
    } else if (m_trunc) {
        if (unix_path) {
            const char *s = "{\"op\":\"set\",\"kv\":{\"a\":";
            plen = strlen(s);
            memcpy(payload, s, plen);
        } else { /* a HELLO header claiming 100 bytes, then 10 of them */
            const uint8_t h[] = {0, 0, 0, 100, 1, 'K', 'V', 'R', 'A', 'F', 'T', 0, 1, 0, 0};
            memcpy(payload, h, sizeof h);
            plen = sizeof h;
        }
    } else if (m_headers) { /* sent at once; the header lines come later */
        const char *s = "GET /key/slow HTTP/1.1\r\nHost: localhost\r\n";
        plen = strlen(s);
        memcpy(payload, s, plen);
    } else if (m_trickle) {
        const char *s =
            unix_path ? "{\"op\":\"get\",\"key\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      : "\0\0\0\xff\x01KVRAFT\0\x01\0\0\0\0\0\0\0\x01\x10"
                        "0123456789abcdef\0\x20node9 127.0.0.1:1 -      "
                        "                                          ";
        plen = unix_path ? strlen(s) : 120;
        memcpy(payload, s, plen);
    }

    int opened = 0, failed = 0, closed = 0;
    static int connecting[MAX_CONN];
    long long open_end = now_ms() + (long long)secs * 1000;
    for (int i = 0; i < n; i++) {
        fds[i] = now_ms() < open_end ? dial(&connecting[i]) : -1; /* bounded too */
        if (fds[i] < 0)
            failed++;
        else if (!connecting[i])
            opened++;
    }
    long long end = now_ms() + (long long)secs * 1000, next_trickle = 0, next_header = 0;
    static struct pollfd pf[MAX_CONN];
    while (now_ms() < end) {
        long long t = now_ms();
        int trickle_now = m_trickle && t >= next_trickle;
        if (trickle_now)
            next_trickle = t + 200;
        int header_now = m_headers && t >= next_header;
        if (header_now)
            next_header = t + 3000;
        for (int i = 0; i < n; i++) {
            pf[i].fd = fds[i];
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            if (fds[i] < 0)
                continue;
            if (connecting[i]) {
                pf[i].events = POLLOUT;
                continue;
            }
            if (!m_idle && !m_trickle && sent[i] < plen) {
                ssize_t w = send_some(fds[i], payload + sent[i], plen - sent[i]);
                if (w < 0) {
                    close(fds[i]);
                    fds[i] = pf[i].fd = -1;
                    closed++;
                    continue;
                }
                sent[i] += (size_t)w;
                if (sent[i] < plen)
                    pf[i].events |= POLLOUT;
            }
            if (header_now && sent[i] >= plen) {
                static const char line[] = "X-Slow: 1\r\n";
                if (send_some(fds[i], line, sizeof line - 1) < 0) {
                    close(fds[i]);
                    fds[i] = pf[i].fd = -1;
                    closed++;
                    continue;
                }
            }
            if (trickle_now && sent[i] < plen) {
                ssize_t w = send_some(fds[i], payload + sent[i], 1);
                if (w < 0) {
                    close(fds[i]);
                    fds[i] = pf[i].fd = -1;
                    closed++;
                    continue;
                }
                sent[i] += (size_t)w;
            }
        }
        int wait = (int)(end - now_ms());
        if (wait > 100)
            wait = 100;
        if (wait < 0)
            wait = 0;
        if (poll(pf, (nfds_t)n, wait) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (fds[i] >= 0 && connecting[i] && pf[i].revents) {
                int err = 0;
                socklen_t el = sizeof err;
                if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
                    close(fds[i]);
                    fds[i] = -1;
                    failed++;
                } else {
                    opened++;
                }
                connecting[i] = 0;
                continue;
            }
            if (fds[i] < 0 || connecting[i] || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t r = recv(fds[i], buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0 && connecting[i])
            failed++; /* still not accepted at the end */
        if (fds[i] >= 0)
            close(fds[i]);
    }
    printf("kvflood: %s: %d opened, %d failed to open, %d closed by the server\n", mode, opened,
           failed, closed);
    return 0;
}
