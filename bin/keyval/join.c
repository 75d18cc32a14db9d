/*
 * join.c - -join: asking a cluster member, over its HTTP API (POST /join
 * with curl), to add this node, retrying while the cluster has no leader.
 */
#include "client.h"
#include "keyval.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs curl to POST body to url; stores the HTTP code (0 when no answer)
 * and up to outlen-1 bytes of the reply. Returns 0 when curl ran. */
static int http_post(const char *curl, const security *sec, const char *url, const char *body,
                     int *code, char *out, size_t outlen)
{
    int pfd[2];
    *code = 0;
    out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], STDOUT_FILENO);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, STDERR_FILENO);
        const char *argv[24];
        int a = 0;
        argv[a++] = curl;
        argv[a++] = "-s";
        argv[a++] = "-m";
        argv[a++] = "5";
        if (sec->join_curlrc[0]) { /* the password stays out of argv */
            argv[a++] = "-K";
            argv[a++] = sec->join_curlrc;
        }
        if (sec->join_cacert[0]) {
            argv[a++] = "--cacert";
            argv[a++] = sec->join_cacert;
        }
        argv[a++] = "-X";
        argv[a++] = "POST";
        argv[a++] = "-H";
        argv[a++] = "Content-Type: application/json";
        argv[a++] = "--data-binary";
        argv[a++] = body;
        argv[a++] = "-w";
        argv[a++] = "\n%{http_code}";
        argv[a++] = url;
        argv[a] = NULL;
        execvp(curl, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char buf[4096];
    size_t len = 0;
    for (;;) {
        /* curl gives up after 5 s; meanwhile a child's death still counts. */
        struct pollfd w[2] = {{.fd = pfd[0], .events = POLLIN},
                              {.fd = supervise_fd(), .events = POLLIN}};
        if (poll(w, 2, -1) < 0 && errno != EINTR)
            break;
        if (w[1].revents & POLLIN) {
            wait_event(0);
            check_children();
        }
        if (!(w[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1) {
            char sink[512];
            while (read(pfd[0], sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    buf[len] = '\0';
    char *nl = strrchr(buf, '\n');
    if (nl) {
        *code = atoi(nl + 1);
        *nl = '\0';
    }
    size_t n = strlen(buf);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, buf, n);
    out[n] = '\0';
    return 0;
}

/* After the leader said yes: has it replicated to this node? Waits up to
 * JOIN_CONFIRM_MS for this node's raftd (sock) to know a leader and to
 * have applied the entry that added it (index; 0: it was a member
 * already, any applied entry will do). 1 when it has, else 0 with the
 * reason printed. */
static int join_confirmed(const options *o, const char *sock, long long index)
{
    long long deadline = now_ms() + JOIN_CONFIRM_MS;
    json_int_t applied = -1;
    char leader[80] = "", err[512] = "";
    for (;;) {
        check_children();
        json_t *req = json_pack("{s:s}", "op", "status"), *st = NULL;
        int rc = client_request(sock, req, 2000, &st, err, sizeof err);
        json_decref(req);
        if (rc == 0) {
            const char *l = json_string_value(json_object_get(st, "leader"));
            snprintf(leader, sizeof leader, "%s", l ? l : "");
            json_t *a = json_object_get(st, "applied_index");
            applied = json_is_integer(a) ? json_integer_value(a) : -1;
        }
        json_decref(st);
        if (rc == 0 && leader[0] && applied > 0 && applied >= index)
            return 1;
        if (now_ms() > deadline)
            break;
        wait_event(200);
    }
    die_msg("join: the leader added this node (entry %lld) but has not replicated to it within "
            "%d s (this node: leader %s, applied %lld%s%s). The leader cannot reach this node "
            "at %s: check -radv (the address the others connect to), the network between "
            "them, and with -peer-tls that this node's certificate names that host and that "
            "every node trusts the same CA; raftd's \"peer link\" lines say more. Not marked "
            "as joined: a restart joins again.",
            index, JOIN_CONFIRM_MS / 1000, leader[0] ? leader : "unknown", (long long)applied,
            err[0] && applied < 0 ? ", " : "", err[0] && applied < 0 ? err : "", o->radv.text);
    return 0;
}

void join_cluster(const options *o, const install *in, const security *sec, const char *node_id,
                  const char *marker, const char *sock)
{
    const addr *join = &o->join, *raddr = &o->radv, *haddr = &o->hadv;
    const char *id = o->id, *curl = in->curl;
    char url[400];
    snprintf(url, sizeof url, "%s://%s%s%s:%d/join", sec->join_scheme,
             strchr(join->host, ':') ? "[" : "", join->host, strchr(join->host, ':') ? "]" : "",
             join->port);
    json_t *b = json_pack("{s:s,s:s,s:s}", "id", id, "addr", raddr->text, "haddr", haddr->text);
    if (b && node_id[0])
        json_object_set_new(b, "node_id", json_string(node_id));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!body) {
        die_msg("join: cannot encode request");
        finish(1);
    }
    say("joining the cluster at %s as %s (%s, node id %s)", join->text, id, raddr->text,
        node_id[0] ? node_id : "unknown");
    long long deadline = now_ms() + JOIN_RETRY_MS;
    int attempt = 0;
    for (;;) {
        check_children();
        int code;
        char reply[1024];
        attempt++;
        if (http_post(curl, sec, url, body, &code, reply, sizeof reply) < 0) {
            die_msg("join: cannot run %s: %s", curl, strerror(errno));
            free(body);
            finish(1);
        }
        if (code == 200) {
            json_t *r = json_loads(reply, 0, NULL);
            json_t *ix = json_object_get(r, "index");
            long long index = json_is_integer(ix) ? (long long)json_integer_value(ix) : 0;
            json_decref(r);
            free(body);
            say("join: %s added this node; waiting for the leader to replicate to it", join->text);
            if (!join_confirmed(o, sock, index))
                return;
            say("joined the cluster via %s", join->text);
            if (write_file(marker, "joined\n", 0600) < 0)
                die_msg("write %s: %s", marker, strerror(errno));
            return;
        }
        if (code == 409) {
            /* This name is a member with another identity (this data
             * directory is not the one it joined with). */
            json_t *r = json_loads(reply, 0, NULL);
            const char *e = json_string_value(json_object_get(r, "error"));
            die_msg("join refused by %s: %s", join->text, e ? e : reply);
            json_decref(r);
            free(body);
            finish(1);
        }
        if (code != 0 && code != 503 && code != 502 && code != 504) {
            die_msg("join: %s refused: HTTP %d %s", url, code, reply);
            free(body);
            finish(1);
        }
        if (now_ms() > deadline) {
            die_msg("join: no success after %d s (last: %s)", JOIN_RETRY_MS / 1000,
                    code ? reply : "no answer");
            free(body);
            finish(1);
        }
        if (attempt == 1 || attempt % 10 == 0)
            say("join: %s: %s; retrying", url, code ? reply : "no answer");
        long long next = now_ms() + 1000; /* the next attempt in 1 s */
        for (long long left = 1000; left > 0; left = next - now_ms()) {
            check_children();
            wait_event((int)left);
        }
    }
}
