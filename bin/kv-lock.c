/*
 * kv-lock - run a program while holding a lock of the cluster (the
 * s6-setlock / "consul lock" idiom): a lease-backed lock key, taken by a
 * txn "if absent then set with the lease", waited for with a blocking
 * query, renewed while the program runs, released when it exits. The
 * program gets KEYVAL_LOCK_INDEX, the index of the txn that took the lock:
 * a fencing token that grows with every acquisition.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"
#include "duration.h"

#define PROG "kv-lock"
#define LOCK_PREFIX "kv-lock/"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kv-lock [-s SOCKET | -d DATADIR] [-t TTL] [-w WAIT] NAME prog [args...]\n"
        "Takes the lock NAME (the key kv-lock/NAME, attached to a lease of TTL),\n"
        "waiting for it, runs prog with KEYVAL_LOCK_INDEX set to the index of the\n"
        "write that took the lock (a fencing token: it grows with every\n"
        "acquisition), renews the lease every TTL/3 while prog runs and releases\n"
        "the lock when prog exits. SIGTERM, SIGINT and SIGHUP are passed to prog.\n" CLIENT_SOCKOPT_USAGE
        "  -t TTL      the lease's ttl (default 15s; 1s to 24h): how long the lock\n"
        "              outlives a kv-lock that died without releasing it\n"
        "  -w WAIT     give up when the lock is not taken within WAIT (default:\n"
        "              wait for ever); 0s: try once\n"
        "Exit status: prog's (128+N when killed by signal N); 1 the lock was not\n"
        "taken within WAIT; 2 usage error; 111 temporary failure: raftd\n"
        "unreachable before the lock was taken, or the lock was lost (no renewal\n"
        "answered for a whole TTL, or the lease ended): prog got SIGTERM then.\n");
}

static const char *sock;
static char lock_key[KV_KEY_MAX + 1];
static long long ttl_ms = 15000;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One call; 0 with *reply when raftd answered (any code), else the tool
 * status (printed). */
static int call(json_t *req, int is_write, long long timeout, json_t **reply)
{
    int rc = client_tool_call(PROG, sock, req, is_write, (int)timeout, reply);
    json_decref(req);
    return rc;
}

/* Renews the lease: 1 renewed, 0 failed for now, -1 the lease is gone. */
static int renew(long long lease)
{
    json_t *reply;
    if (call(json_pack("{s:s,s:I}", "op", "lease_renew", "lease", (json_int_t)lease), 0,
             ttl_ms / 3 > 0 ? ttl_ms / 3 : 1, &reply))
        return 0;
    int code = client_reply_code(reply);
    json_decref(reply);
    return code == 200 ? 1 : code == 404 ? -1 : 0;
}

/* When the lock key holds holder (ours: a txn whose answer was lost did
 * take it), its index (the token); else 0. */
static long long ours(const char *holder)
{
    json_t *reply;
    if (call(json_pack("{s:s,s:s}", "op", "get", "key", lock_key), 0, client_timeout_from_env(),
             &reply))
        return 0;
    const char *v = json_string_value(json_object_get(reply, "value"));
    long long idx = client_reply_code(reply) == 200 && v && !strcmp(v, holder)
                        ? (long long)json_integer_value(json_object_get(reply, "index"))
                        : 0;
    json_decref(reply);
    return idx;
}

/* Tries to take the lock: returns the token (> 0), 0 when it is held by
 * another, or -status on a failure. */
static long long try_take(long long lease)
{
    char holder[128], host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(holder, sizeof holder, "pid %ld on %s, lease %lld", (long)getpid(), host, lease);
    json_t *req = json_pack("{s:s,s:[{s:s,s:b}],s:[{s:{s:s},s:I}],s:[]}", "op", "txn", "if", "key",
                            lock_key, "absent", 1, "then", "set", lock_key, holder, "lease",
                            (json_int_t)lease, "else");
    json_t *reply;
    int rc = call(req, 1, client_timeout_from_env(), &reply);
    if (rc == TOOL_UNKNOWN) {
        long long mine = ours(holder);
        return mine ? mine : -rc;
    }
    if (rc)
        return -rc;
    long long token = -TOOL_TEMP;
    if (client_reply_code(reply) == 200) {
        token = json_is_true(json_object_get(reply, "succeeded"))
                    ? (long long)json_integer_value(json_object_get(reply, "index"))
                    : ours(holder);
    } else {
        int st = client_tool_refused(PROG, "take the lock", reply);
        token = -(st == TOOL_NO ? TOOL_TEMP : st);
    }
    json_decref(reply);
    return token;
}

/* Waits (a blocking query, at most wait_ms) until the lock key changes
 * or is absent. */
static void wait_change(long long wait_ms)
{
    json_t *reply;
    if (wait_ms < 1)
        return;
    if (call(json_pack("{s:s,s:s}", "op", "get", "key", lock_key), 0, client_timeout_from_env(),
             &reply)) {
        sleep_ms(wait_ms < 500 ? wait_ms : 500);
        return;
    }
    int code = client_reply_code(reply);
    long long idx = (long long)json_integer_value(json_object_get(reply, "index"));
    json_decref(reply);
    if (code != 200)
        return; /* absent (404): try at once */
    if (call(json_pack("{s:s,s:s,s:I,s:I}", "op", "get", "key", lock_key, "index", (json_int_t)idx,
                       "wait_ms", (json_int_t)wait_ms),
             0, wait_ms + client_timeout_from_env(), &reply) == 0)
        json_decref(reply);
    else
        sleep_ms(500);
}

/* Deletes the lock key if it is still ours, then revokes the lease. */
static void release(long long lease, long long token)
{
    json_t *reply;
    json_t *req = json_pack("{s:s,s:[{s:s,s:I}],s:[{s:s}],s:[]}", "op", "txn", "if", "key",
                            lock_key, "index", (json_int_t)token, "then", "del", lock_key, "else");
    if (call(req, 1, client_timeout_from_env(), &reply) == 0)
        json_decref(reply);
    if (call(json_pack("{s:s,s:I}", "op", "lease_revoke", "lease", (json_int_t)lease), 1,
             client_timeout_from_env(), &reply) == 0)
        json_decref(reply);
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s)
{
    got_sig = s;
}

/* Runs prog while renewing; returns kv-lock's exit status. renewed: when
 * the last renewal (or the grant) that was answered 200 was sent, the time
 * from which the lease surely lasts a ttl. */
static int run(char **argv, long long lease, long long token, long long renewed)
{
    char tok[32];
    snprintf(tok, sizeof tok, "%lld", token);
    setenv("KEYVAL_LOCK_INDEX", tok, 1);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
        release(lease, token);
        return TOOL_TEMP;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, PROG ": run %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    long long last_ok = renewed, next = last_ok + ttl_ms / 3;
    int status, lost = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (got_sig) {
            kill(pid, got_sig);
            got_sig = 0;
        }
        if (!lost && now_ms() >= next) {
            long long sent = now_ms(); /* the lease runs at least ttl from here */
            int r = renew(lease);
            if (r > 0)
                last_ok = sent;
            if (r < 0 || now_ms() - last_ok >= ttl_ms) {
                fprintf(stderr, PROG ": lost the lock %s (%s): stopping %s\n", lock_key,
                        r < 0 ? "the lease ended" : "no renewal answered for a whole ttl", argv[0]);
                kill(pid, SIGTERM);
                lost = 1;
            }
            next = r > 0 ? last_ok + ttl_ms / 3 : now_ms() + 200;
        }
        sleep_ms(20);
    }
    if (lost)
        return TOOL_TEMP;
    release(lease, token);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    long long wait_ms = -1;
    uint64_t v;
    int c;
    while ((c = getopt(argc, argv, "+s:d:t:w:h")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 't':
        case 'w':
            if (duration_parse_ms(optarg, c == 't' ? KV_LEASE_TTL_MAX_MS : UINT64_MAX, &v) ||
                (c == 't' && v < KV_LEASE_TTL_MIN_MS)) {
                fprintf(stderr, PROG ": bad -%c %s (a duration such as 15s%s)\n", c, optarg,
                        c == 't' ? ", 1s to 24h" : "");
                return TOOL_USAGE;
            }
            if (c == 't')
                ttl_ms = (long long)v;
            else
                wait_ms = (long long)v;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return TOOL_USAGE;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, PROG ": expected NAME and a program to run\n");
        return usage(stderr), TOOL_USAGE;
    }
    const char *name = argv[optind], *why;
    int n = snprintf(lock_key, sizeof lock_key, LOCK_PREFIX "%s", name);
    if (!*name || n < 0 || (size_t)n >= sizeof lock_key ||
        cgi_key_valid(lock_key, strlen(lock_key), &why) < 0) {
        fprintf(stderr, PROG ": bad lock name %s\n", name);
        return TOOL_USAGE;
    }
    static char path[4096];
    if (client_sockopt_path(&so, PROG, path, sizeof path) < 0)
        return TOOL_USAGE;
    sock = path;
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    json_t *reply;
    long long granted = now_ms();
    int rc = call(json_pack("{s:s,s:I}", "op", "lease_grant", "ttl_ms", (json_int_t)ttl_ms), 1,
                  client_timeout_from_env(), &reply);
    if (rc)
        return TOOL_TEMP;
    if (client_reply_code(reply) != 200) {
        client_tool_refused(PROG, "grant a lease", reply);
        json_decref(reply);
        return TOOL_TEMP;
    }
    json_t *jl = json_object_get(reply, "lease");
    long long lease = 0;
    if (json_is_string(jl))
        cgi_parse_lease_id(json_string_value(jl), json_string_length(jl), &lease);
    else
        lease = (long long)json_integer_value(jl);
    json_decref(reply);
    long long deadline = wait_ms < 0 ? -1 : now_ms() + wait_ms, renewed = granted;
    for (;;) {
        if (got_sig)
            break;
        long long token = try_take(lease);
        if (token > 0)
            return run(argv + optind + 1, lease, token, renewed);
        if (token < 0 && now_ms() - renewed >= ttl_ms) {
            fprintf(stderr, PROG ": raftd at %s: no answer for a whole ttl\n", sock);
            got_sig = -1;
            break;
        }
        long long left = deadline < 0 ? ttl_ms / 3 : deadline - now_ms();
        if (left <= 0)
            break;
        if (token == 0)
            wait_change(left < ttl_ms / 3 ? left : ttl_ms / 3);
        else
            sleep_ms(left < 200 ? left : 200);
        if (now_ms() - renewed >= ttl_ms / 3) {
            long long sent = now_ms();
            int r = renew(lease);
            if (r > 0)
                renewed = sent;
            else if (r < 0 &&
                     call(json_pack("{s:s,s:I}", "op", "lease_grant", "ttl_ms", (json_int_t)ttl_ms),
                          1, client_timeout_from_env(), &reply) == 0) {
                /* the lease ended while we waited: a new one */
                jl = json_object_get(reply, "lease");
                if (json_is_string(jl))
                    cgi_parse_lease_id(json_string_value(jl), json_string_length(jl), &lease);
                else if (json_is_integer(jl))
                    lease = (long long)json_integer_value(jl);
                json_decref(reply);
                renewed = sent; /* a grant's ttl counts from its apply, after this */
            }
        }
    }
    json_t *r2;
    if (call(json_pack("{s:s,s:I}", "op", "lease_revoke", "lease", (json_int_t)lease), 1,
             client_timeout_from_env(), &r2) == 0)
        json_decref(r2);
    if (got_sig)
        return got_sig < 0 ? TOOL_TEMP : 128 + got_sig;
    fprintf(stderr, PROG ": %s not taken within the wait\n", lock_key);
    return TOOL_NO;
}
