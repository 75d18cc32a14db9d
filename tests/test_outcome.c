/*
 * test_outcome - a write whose request reached "raftd" but got no reply is
 * never reported as failed: client_request returns CLIENT_SENT (-3) when
 * the server read the request and closed the connection, -1 when nothing
 * could be sent; the CGI programs answer 503 {"outcome":"unknown"} for a
 * write in the first case and a plain 503 otherwise (and for reads);
 * kv-set and kv-del exit 5 vs 4. A fake raftd on a UNIX socket in /tmp.
 * Run from the top of the tree with the programs built under $BUILD
 * (default build). Prints ok/FAIL lines and "N passed, M failed".
 */
#include "client.h"
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fake raftd: reads one request line, then closes without a reply. */
static pid_t start_closer(const char *path)
{
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0) {
        perror("fake raftd");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0)
                continue;
            char c;
            while (read(fd, &c, 1) == 1 && c != '\n')
                ;
            close(fd);
        }
    }
    close(lfd);
    return pid;
}

/* Runs prog with env (NULL-terminated "K=V" list) and stdin text; returns
 * its exit status and up to cap-1 bytes of stdout in out. */
static int run(const char *prog, char *const env[], const char *in, char *out, size_t cap,
               char *const argv[])
{
    int pin[2], pout[2];
    if (pipe(pin) < 0 || pipe(pout) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        int dn = open("/dev/null", 1);
        if (dn >= 0)
            dup2(dn, 2);
        close(pin[1]);
        close(pout[0]);
        execve(prog, argv, env);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    if (in && write(pin[1], in, strlen(in)) < 0)
        perror("write");
    close(pin[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(pout[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(pout[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    const char *build = getenv("BUILD") && *getenv("BUILD") ? getenv("BUILD") : "build";
    char sock[108], none[108], err[512], out[4096], prog[512], envsock[200];
    snprintf(sock, sizeof sock, "/tmp/kv-outcome-%d.sock", (int)getpid());
    snprintf(none, sizeof none, "/tmp/kv-outcome-%d-none.sock", (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    pid_t srv = start_closer(sock);

    json_t *req = json_pack("{s:s,s:{s:s}}", "op", "set", "kv", "k", "v"), *reply = NULL;
    int rc = client_request(sock, req, 2000, &reply, err, sizeof err);
    check(rc == CLIENT_SENT, "client_sent_then_closed_is_CLIENT_SENT", "%s", err);
    rc = client_request(none, req, 2000, &reply, err, sizeof err);
    check(rc == -1, "client_connect_refused_is_minus_1", "%s", err);
    json_decref(req);

    /* CGI key-put: a write sent, then the connection closed. */
    snprintf(prog, sizeof prog, "%s/cgi-bin/key-put", build);
    snprintf(envsock, sizeof envsock, "KEYVAL_SOCKET=%s", sock);
    char *argv[] = {prog, NULL};
    char *env_put[] = {envsock,
                       "REQUEST_METHOD=PUT",
                       "REQUEST_URI=/key/x",
                       "CONTENT_LENGTH=1",
                       "KEYVAL_TIMEOUT_MS=2000",
                       NULL};
    run(prog, env_put, "v", out, sizeof out, argv);
    check(strstr(out, "Status: 503") != NULL, "cgi_put_lost_reply_503", "%s", out);
    check(strstr(out, "\"outcome\":\"unknown\"") != NULL, "cgi_put_lost_reply_outcome_unknown",
          "%s", out);

    snprintf(prog, sizeof prog, "%s/cgi-bin/key-set", build);
    char *argv2[] = {prog, NULL};
    char *env_post[] = {envsock,
                        "REQUEST_METHOD=POST",
                        "REQUEST_URI=/key",
                        "CONTENT_LENGTH=9",
                        "KEYVAL_TIMEOUT_MS=2000",
                        NULL};
    run(prog, env_post, "{\"a\":\"b\"}", out, sizeof out, argv2);
    check(strstr(out, "Status: 503") && strstr(out, "\"outcome\":\"unknown\""),
          "cgi_post_lost_reply_outcome_unknown", "%s", out);

    /* Nothing sent: plain 503 without an outcome. */
    char envnone[200];
    snprintf(envnone, sizeof envnone, "KEYVAL_SOCKET=%s", none);
    char *env_put_none[] = {envnone, "REQUEST_METHOD=PUT", "REQUEST_URI=/key/x", "CONTENT_LENGTH=1",
                            NULL};
    snprintf(prog, sizeof prog, "%s/cgi-bin/key-put", build);
    run(prog, env_put_none, "v", out, sizeof out, argv);
    check(strstr(out, "Status: 503") && !strstr(out, "\"outcome\""),
          "cgi_put_unreachable_plain_503", "%s", out);

    /* A read whose reply is lost changed nothing: plain 503. */
    snprintf(prog, sizeof prog, "%s/cgi-bin/key-get", build);
    char *argv3[] = {prog, NULL};
    char *env_get[] = {envsock, "REQUEST_METHOD=GET", "REQUEST_URI=/key/x",
                       "KEYVAL_TIMEOUT_MS=2000", NULL};
    run(prog, env_get, "", out, sizeof out, argv3);
    check(strstr(out, "Status: 503") && !strstr(out, "\"outcome\""), "cgi_get_lost_reply_plain_503",
          "%s", out);

    /* kv-set / kv-del: 5 when sent, 4 when unreachable. */
    char p_set[512], p_del[512];
    snprintf(p_set, sizeof p_set, "%s/bin/kv-set", build);
    snprintf(p_del, sizeof p_del, "%s/bin/kv-del", build);
    char *env_tool[] = {"KEYVAL_TIMEOUT_MS=2000", NULL};
    char *a1[] = {p_set, "-s", sock, "k", "v", NULL};
    char *a2[] = {p_set, "-s", none, "k", "v", NULL};
    char *a3[] = {p_del, "-s", sock, "k", NULL};
    char *a4[] = {p_del, "-s", none, "k", NULL};
    char msg[64];
    int st = run(p_set, env_tool, "", out, sizeof out, a1);
    snprintf(msg, sizeof msg, "exit %d", st);
    check(st == 5, "kv_set_lost_reply_exit_5", "%s", msg);
    st = run(p_set, env_tool, "", out, sizeof out, a2);
    snprintf(msg, sizeof msg, "exit %d", st);
    check(st == 4, "kv_set_unreachable_exit_4", "%s", msg);
    st = run(p_del, env_tool, "", out, sizeof out, a3);
    snprintf(msg, sizeof msg, "exit %d", st);
    check(st == 5, "kv_del_lost_reply_exit_5", "%s", msg);
    st = run(p_del, env_tool, "", out, sizeof out, a4);
    snprintf(msg, sizeof msg, "exit %d", st);
    check(st == 4, "kv_del_unreachable_exit_4", "%s", msg);

    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    unlink(sock);
    return check_summary();
}
