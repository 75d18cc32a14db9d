/*
 * faultlink - a controllable one-way peer link for fault tests.
 *
 *   faultlink SRC HOST:PORT
 *
 * raftd runs it as its -peer-connect command ("faultlink SRC %a"): raftd
 * writes the frames for one peer to our stdin, we forward them over one TCP
 * connection to HOST:PORT (loopback only). The directed link SRC -> PORT is
 * cut while the file $KV_FAULT_DIR/cut-SRC-PORT exists:
 *   - cut when we start: we read and discard stdin until the cut is healed,
 *     then exit, so raftd restarts the link with a fresh HELLO;
 *   - cut while connected: we reset the connection and exit at once.
 * The control file is checked every 50 ms. Exit status 0 on heal or EOF,
 * 1 on a connection error.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char cutpath[4096];

static int is_cut(void)
{
    struct stat st;
    return cutpath[0] && stat(cutpath, &st) == 0;
}

static int dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (!host[0])
        snprintf(host, sizeof host, "127.0.0.1");
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    /* loopback only: 127.0.0.0/8 */
    if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
        freeaddrinfo(res);
        fprintf(stderr, "faultlink: %s is not a loopback address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1; /* as raftd's default link (socat nodelay) */
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr,
                "usage: faultlink SRC HOST:PORT  (cut while $KV_FAULT_DIR/cut-SRC-PORT exists)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *dir = getenv("KV_FAULT_DIR");
    const char *port = strrchr(argv[2], ':');
    if (dir && port)
        snprintf(cutpath, sizeof cutpath, "%s/cut-%s-%s", dir, argv[1], port + 1);
    static char buf[65536];
    if (is_cut()) {
        for (;;) {
            struct pollfd p = {0, POLLIN, 0};
            int r = poll(&p, 1, 50);
            if (r > 0) {
                ssize_t n = read(0, buf, sizeof buf);
                if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                    return 0;
            }
            if (!is_cut())
                return 0;
        }
    }
    int fd = dial(argv[2]);
    if (fd < 0)
        return 1;
    size_t len = 0, off = 0;
    int in_eof = 0;
    for (;;) {
        struct pollfd p[2];
        p[0].fd = (len == 0 && !in_eof) ? 0 : -1;
        p[0].events = POLLIN;
        p[1].fd = fd;
        p[1].events = POLLIN | (len > off ? POLLOUT : 0);
        int r = poll(p, 2, 50);
        if (is_cut()) {
            reset_close(fd);
            return 0;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n > 0) {
                len = (size_t)n;
                off = 0;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_eof = 1;
            }
        }
        if (p[1].revents & (POLLERR | POLLHUP))
            return 1;
        if (p[1].revents & POLLIN) {
            char junk[512];
            ssize_t n = read(fd, junk, sizeof junk);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                return 1;
        }
        if (len > off && (p[1].revents & POLLOUT)) {
            ssize_t n = send(fd, buf + off, len - off, MSG_DONTWAIT);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                return 1;
            if (off == len)
                len = off = 0;
        }
        if (in_eof && len == 0) {
            close(fd);
            return 0;
        }
    }
}
