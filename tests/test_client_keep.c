/*
 * test_client_keep - client_request_keep (the connection a resident
 * FastCGI program keeps to raftd.sock): two requests share one
 * connection; after the server closes it (raftd restarted) the next
 * request reconnects before sending; a failed request leaves no
 * connection behind. Prints ok/FAIL lines and "N passed, M failed".
 */
#include "client.h"
#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Server: on each accepted connection answers every request line with
 * {"code":200,"conn":N} (N counts connections); closes a connection after
 * close_after replies on it. */
static void serve(int lfd, int close_after)
{
    int nconn = 0;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(0);
        nconn++;
        int replies = 0;
        char buf[4096];
        size_t len = 0;
        for (;;) {
            ssize_t n = read(fd, buf + len, sizeof buf - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            char *nl;
            while ((nl = memchr(buf, '\n', len))) {
                char out[64];
                int ol = snprintf(out, sizeof out, "{\"code\":200,\"conn\":%d}\n", nconn);
                if (write(fd, out, (size_t)ol) != ol)
                    _exit(1);
                replies++;
                len -= (size_t)(nl + 1 - buf);
                memmove(buf, nl + 1, len);
            }
            if (replies >= close_after)
                break;
        }
        close(fd);
    }
}

static int conn_of(json_t *r)
{
    json_t *c = json_object_get(r, "conn");
    return json_is_integer(c) ? (int)json_integer_value(c) : -1;
}

int main(void)
{
    char dir[] = "/tmp/test_client_keep.XXXXXX";
    if (!mkdtemp(dir)) {
        check(0, "setup", "mkdtemp");
        return check_summary();
    }
    char path[256];
    snprintf(path, sizeof path, "%s/raftd.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 8) < 0) {
        check(0, "setup", "listen %s", path);
        return check_summary();
    }
    pid_t pid = fork();
    if (pid == 0)
        serve(lfd, 2);
    close(lfd);

    int keep = -1;
    json_t *req = json_pack("{s:s}", "op", "status");
    json_t *r = NULL;
    char err[256] = "";
    int rc = client_request_keep(&keep, path, req, 2000, &r, err, sizeof err);
    check(rc == 0 && conn_of(r) == 1, "first_request", "%s", err);
    check(keep >= 0, "connection_kept", "keep is -1 after a reply");
    json_decref(r);
    int kept = keep;
    rc = client_request_keep(&keep, path, req, 2000, &r, err, sizeof err);
    check(rc == 0 && conn_of(r) == 1 && keep == kept, "second_request_same_connection", "%s",
          rc ? err : "a new connection was opened");
    json_decref(r);
    /* The server closed that connection after two replies (as a restarted
     * raftd would have); give the close a moment to arrive. */
    usleep(100000);
    rc = client_request_keep(&keep, path, req, 2000, &r, err, sizeof err);
    check(rc == 0 && conn_of(r) == 2, "reconnects_after_server_closed", "%s",
          rc ? err : "wrong conn");
    json_decref(r);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(path);
    usleep(100000);
    rc = client_request_keep(&keep, path, req, 500, &r, err, sizeof err);
    check(rc == -1 && r == NULL && keep == -1, "fails_when_server_gone", "expected -1");
    rc = client_request(path, req, 500, &r, err, sizeof err);
    check(rc == -1, "plain_request_fails_too", "expected -1");
    json_decref(req);
    rmdir(dir);
    return check_summary();
}
