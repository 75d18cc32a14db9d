/*
 * ready.c - waiting until keyval's children serve: raftd answers on its
 * socket, socat and lighttpd listen on their ports. Bounded polls (every
 * 100 ms, up to RAFTD_READY_MS and HTTP_READY_MS) that a child's exit or a
 * stop signal cuts short.
 */
#include "keyval.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

/* Nonzero when some socket listens on TCP port of host (a numeric
 * address; for IPv4 a listener on that address or on 0.0.0.0 counts, for
 * IPv6 any listener on the port), per /proc/net/tcp{,6}. Checked this way,
 * not by connecting, so that no half-made peer connection reaches raftd. */
int tcp_listening(const char *host, int port)
{
    struct in_addr want;
    int v4 = inet_pton(AF_INET, host, &want) == 1;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        char line[512];
        int found = 0;
        if (!fgets(line, sizeof line, f)) { /* header */
            fclose(f);
            continue;
        }
        while (!found && fgets(line, sizeof line, f)) {
            char local[128];
            unsigned st;
            if (sscanf(line, " %*d: %127s %*s %x", local, &st) != 2)
                continue;
            char *c = strrchr(local, ':');
            if (!c || st != 0x0A || strtol(c + 1, NULL, 16) != port)
                continue;
            if (i == 0 && v4) {
                *c = '\0';
                uint32_t a = (uint32_t)strtoul(local, NULL, 16);
                if (a != 0 && a != want.s_addr)
                    continue;
            }
            found = 1;
        }
        fclose(f);
        if (found)
            return 1;
    }
    return 0;
}

/* Waits until raftd answers a status request on its socket; *removed is
 * set when raftd says this node was removed from the cluster; node_id gets
 * this node's Raft id as raftd reports it (16 hex digits; unique per
 * incarnation of DATADIR), sent with -join. */
void wait_raftd(const char *sock, char *node_id, size_t cap, int *removed)
{
    long long deadline = now_ms() + RAFTD_READY_MS;
    char err[512] = "";
    for (;;) {
        check_children();
        if (file_exists(sock)) {
            json_t *req = json_pack("{s:s}", "op", "status"), *reply = NULL;
            int rc = client_request(sock, req, 2000, &reply, err, sizeof err);
            json_decref(req);
            const char *nid = rc == 0 ? json_string_value(json_object_get(reply, "node_id")) : NULL;
            if (nid)
                snprintf(node_id, cap, "%s", nid);
            *removed = rc == 0 && json_is_true(json_object_get(reply, "removed"));
            json_decref(reply);
            if (rc == 0)
                return;
        } else {
            snprintf(err, sizeof err, "%.400s does not exist", sock);
        }
        if (now_ms() > deadline) {
            die_msg("raftd not ready after %d s: %s", RAFTD_READY_MS / 1000, err);
            finish(1);
        }
        wait_event(100);
    }
}

void wait_tcp(const char *what, const char *host, int port)
{
    long long deadline = now_ms() + HTTP_READY_MS;
    for (;;) {
        check_children();
        if (tcp_listening(host, port))
            return;
        if (now_ms() > deadline) {
            die_msg("%s not accepting connections on %s:%d after %d s", what, host, port,
                    HTTP_READY_MS / 1000);
            finish(1);
        }
        wait_event(100);
    }
}

void wait_unix(const char *what, const char *path)
{
    long long deadline = now_ms() + HTTP_READY_MS;
    for (;;) {
        check_children();
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int up = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0)
            close(fd);
        if (up)
            return;
        if (now_ms() > deadline) {
            die_msg("%s not accepting connections on %s after %d s", what, path,
                    HTTP_READY_MS / 1000);
            finish(1);
        }
        wait_event(100);
    }
}

int tcp_listen(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res, *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        die_msg("HTTP address %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (int v4 = 1; v4 >= 0 && fd < 0; v4--) /* IPv4 first, as tcp_listening */
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != v4)
                continue;
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int one = 1;
            if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0)) {
                err = errno;
                close(fd);
                fd = -1;
            }
        }
    freeaddrinfo(res);
    if (fd < 0)
        die_msg("HTTP address %s:%d: %s", host, port, strerror(err ? err : EADDRNOTAVAIL));
    return fd;
}
