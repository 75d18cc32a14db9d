/*
 * test_cgi_coord - unit tests of lib/cgi_coord.c (blocking-query and lease
 * parameters, ttls, the txn body) and lib/client_stream.c (a watch's first
 * reply and event lines, split reads, the line bound, deadlines, the end)
 * against a forked fake raftd on a temporary UNIX socket.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgi_coord.h"
#include "check.h"
#include "client.h"
#include "kvrules.h"

/* ---- ?index=M&wait=DUR ---- */

static void t_blocking(const char *q, int want_rc, long long want_index, long long want_wait,
                       const char *want_why)
{
    json_t *req = json_object();
    char why[256] = "";
    long long w = -1;
    int rc = cgi_blocking_params(q, strlen(q), req, &w, why, sizeof why);
    json_t *ix = json_object_get(req, "index"), *wm = json_object_get(req, "wait_ms");
    int ok = rc == want_rc;
    if (ok && rc == 0 && want_index >= 0)
        ok = json_integer_value(ix) == want_index && json_integer_value(wm) == want_wait &&
             w == want_wait;
    if (ok && rc == 0 && want_index < 0)
        ok = !ix && !wm && w == 0;
    if (ok && want_why)
        ok = strstr(why, want_why) != NULL;
    char name[128];
    snprintf(name, sizeof name, "blocking params '%s'", q);
    check(ok, name, "rc %d why '%s' index %lld wait %lld", rc, why,
          (long long)json_integer_value(ix), w);
    json_decref(req);
}

static void test_blocking(void)
{
    t_blocking("", 0, -1, 0, NULL);
    t_blocking("level=stale", 0, -1, 0, NULL);
    t_blocking("index=5", 0, 5, 300000, NULL);
    t_blocking("index=5&wait=500ms", 0, 5, 500, NULL);
    t_blocking("wait=10s&index=0", 0, 0, 10000, NULL);
    t_blocking("index=7&wait=10m", 0, 7, 600000, NULL);
    t_blocking("index=7&wait=601s", -1, 0, 0, "bad wait parameter");
    t_blocking("index=7&wait=11m", -1, 0, 0, "at most 10m");
    t_blocking("index=7&wait=10", -1, 0, 0, "bad wait parameter");
    t_blocking("index=7&wait=1m30s", -1, 0, 0, "bad wait parameter");
    t_blocking("index=7&wait=", -1, 0, 0, "bad wait parameter");
    t_blocking("index=7&wait=%zz", -1, 0, 0, "bad wait parameter");
    t_blocking("wait=5s", -1, 0, 0, "needs index");
    t_blocking("index=-1", -1, 0, 0, "bad index parameter");
    t_blocking("index=", -1, 0, 0, "bad index parameter");
    t_blocking("index=1x", -1, 0, 0, "bad index parameter");
    t_blocking("index=99999999999999999999", -1, 0, 0, "bad index parameter");
}

/* ---- lease parameters, ids, ttls ---- */

static void test_lease(void)
{
    long long id = 0, ms = 0;
    char why[256];
    EXPECT(cgi_parse_lease_id("42", 2, &id) == 0 && id == 42, "lease id 42");
    EXPECT(cgi_parse_lease_id("42/", 2, &id) == 0 && id == 42, "lease id length bound");
    EXPECT(cgi_parse_lease_id("0", 1, &id) < 0, "lease id 0 refused");
    EXPECT(cgi_parse_lease_id("", 0, &id) < 0, "empty lease id refused");
    EXPECT(cgi_parse_lease_id("+4", 2, &id) < 0, "signed lease id refused");
    EXPECT(cgi_parse_lease_id("9223372036854775808", 19, &id) < 0, "lease id overflow");

    json_t *req = json_object();
    EXPECT(cgi_lease_param("lease=17", 8, req, why, sizeof why) == 0 &&
               json_integer_value(json_object_get(req, "lease")) == 17,
           "?lease=17 sets lease");
    json_object_clear(req);
    EXPECT(cgi_lease_param("x=1", 3, req, why, sizeof why) == 0 && json_object_size(req) == 0,
           "no lease parameter: nothing set");
    EXPECT(cgi_lease_param("lease=abc", 9, req, why, sizeof why) < 0 &&
               strstr(why, "bad lease parameter"),
           "?lease=abc is refused with a reason");
    EXPECT(cgi_lease_param("lease=", 6, req, why, sizeof why) < 0, "?lease= is refused");
    json_decref(req);

    struct {
        const char *json;
        int rc;
        long long ms;
    } ttls[] = {
        {"\"10s\"", 0, 10000},
        {"\"1s\"", 0, 1000},
        {"\"24h\"", 0, 86400000},
        {"\"999ms\"", -1, 0},
        {"\"25h\"", -1, 0},
        {"\"10\"", -1, 0},
        {"30", 0, 30000},
        {"0", -1, 0},
        {"-5", -1, 0},
        {"1.5", -1, 0},
        {"null", -1, 0},
        {"\"\"", -1, 0},
        {"90000", -1, 0},
        {"\"1500ms\"", 0, 1500},
    };
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
        json_t *t = json_loads(ttls[i].json, JSON_DECODE_ANY, NULL);
        ms = -1;
        int rc = cgi_parse_ttl(t, &ms, why, sizeof why);
        char name[64];
        snprintf(name, sizeof name, "ttl %s", ttls[i].json);
        check(rc == ttls[i].rc && (rc || ms == ttls[i].ms), name, "rc %d ms %lld (%s)", rc, ms,
              rc ? why : "");
        json_decref(t);
    }
}

/* ---- the txn body ---- */

static void t_txn(const char *name, const char *body, int want, const char *want_why)
{
    json_t *b = json_loads(body, JSON_DECODE_ANY, NULL), *req = NULL;
    char why[512] = "";
    int rc = cgi_txn_request(b, &req, why, sizeof why);
    int ok = rc == want && (want != 0 || req) && (!want_why || strstr(why, want_why));
    if (ok && rc == 0)
        ok = !strcmp(json_string_value(json_object_get(req, "op")), "txn") &&
             json_is_array(json_object_get(req, "if")) &&
             json_is_array(json_object_get(req, "then")) &&
             json_is_array(json_object_get(req, "else"));
    check(ok, name, "rc %d why '%s'", rc, why);
    json_decref(req);
    json_decref(b);
}

static void test_txn(void)
{
    t_txn("txn: full form",
          "{\"if\":[{\"key\":\"a\",\"index\":3},{\"key\":\"b\",\"absent\":true},"
          "{\"key\":\"c\",\"value\":\"v\"}],\"then\":[{\"set\":{\"a\":\"1\"},"
          "\"lease\":\"7\"},{\"del\":\"b\"}],\"else\":[{\"set\":{\"x\":\"y\"}}]}",
          0, NULL);
    t_txn("txn: empty object is an empty txn", "{}", 0, NULL);
    t_txn("txn: index 0 means absent", "{\"if\":[{\"key\":\"a\",\"index\":0}]}", 0, NULL);
    t_txn("txn: lease as a number", "{\"then\":[{\"set\":{\"a\":\"1\"},\"lease\":9}]}", 0, NULL);
    t_txn("txn: not an object", "[1]", 400, "body must be");
    t_txn("txn: unknown member", "{\"iff\":[]}", 400, "unknown member \"iff\"");
    t_txn("txn: if not an array", "{\"if\":{}}", 400, "\"if\" must be an array");
    t_txn("txn: compare without a test", "{\"if\":[{\"key\":\"a\"}]}", 400, "if[0]");
    t_txn("txn: compare with two tests", "{\"if\":[{\"key\":\"a\",\"index\":1,\"absent\":true}]}",
          400, "exactly one");
    t_txn("txn: absent false", "{\"if\":[{\"key\":\"a\",\"absent\":false}]}", 400, "if[0]");
    t_txn("txn: negative index", "{\"if\":[{\"key\":\"a\",\"index\":-1}]}", 400, "if[0]");
    t_txn("txn: compare without key", "{\"if\":[{\"index\":1}]}", 400, "\"key\"");
    t_txn("txn: empty key", "{\"if\":[{\"key\":\"\",\"index\":1}]}", 400, "\"key\"");
    t_txn("txn: second compare is named", "{\"if\":[{\"key\":\"a\",\"index\":1},5]}", 400, "if[1]");
    t_txn("txn: op with set and del", "{\"then\":[{\"set\":{\"a\":\"1\"},\"del\":\"a\"}]}", 400,
          "then[0]");
    t_txn("txn: lease on a del", "{\"then\":[{\"del\":\"a\",\"lease\":1}]}", 400, "then[0]");
    t_txn("txn: bad lease", "{\"else\":[{\"set\":{\"a\":\"1\"},\"lease\":\"x\"}]}", 400,
          "else[0]: bad lease");
    t_txn("txn: non-string value", "{\"then\":[{\"set\":{\"a\":1}}]}", 400, "then[0]");
    t_txn("txn: empty set", "{\"then\":[{\"set\":{}}]}", 400, "then[0]");
    t_txn("txn: unknown op member", "{\"then\":[{\"put\":{\"a\":\"1\"}}]}", 400, "then[0]");

    /* the limits: 1000 compares and 1000 keys over all ops */
    json_t *b = json_object(), *ifs = json_array(), *ops = json_array();
    for (int i = 0; i <= KV_BATCH_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_array_append_new(ifs, json_pack("{s:s,s:i}", "key", k, "index", 1));
        json_array_append_new(ops, json_pack("{s:s}", "del", k));
    }
    json_object_set_new(b, "if", ifs);
    char *text = json_dumps(b, 0);
    t_txn("txn: 1001 compares is 413", text, 413, "too many compares");
    free(text);
    json_array_remove(ifs, 0);
    json_object_set_new(b, "then", ops);
    text = json_dumps(b, 0);
    t_txn("txn: 1001 keys in the ops is 413", text, 413, "too many keys");
    free(text);
    json_array_remove(ops, 0);
    text = json_dumps(b, 0);
    t_txn("txn: 1000 compares and 1000 keys pass", text, 0, NULL);
    free(text);
    json_decref(b);
}

/* ---- client_stream against a fake raftd ---- */

static char sockpath[108];

/* The fake accepts one connection, reads the request line, then writes
 * script (all of it, or with pauses at each '|': 200 ms) and waits for the
 * client to close, or closes at once when close_after. */
static pid_t fake_stream(const char *script, int close_after)
{
    unlink(sockpath);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4) < 0)
        return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(ls);
        return pid;
    }
    alarm(10);
    int c = accept(ls, NULL, NULL);
    char ch;
    while (read(c, &ch, 1) == 1 && ch != '\n')
        ;
    for (const char *s = script; *s;) {
        if (*s == '|') {
            usleep(200000);
            s++;
            continue;
        }
        size_t n = strcspn(s, "|");
        while (n > 0) {
            ssize_t w = write(c, s, n);
            if (w <= 0)
                _exit(0);
            s += w;
            n -= (size_t)w;
        }
    }
    if (!close_after)
        while (read(c, &ch, 1) > 0)
            ;
    _exit(0);
}

static void test_stream(void)
{
    char err[256];
    const char *line;
    size_t len;
    json_t *first, *req = json_pack("{s:s}", "op", "watch");
    snprintf(sockpath, sizeof sockpath, "/tmp/test_cgi_coord.%d.sock", (int)getpid());

    /* events split across writes, two in one write, then a pause */
    pid_t pid = fake_stream("{\"code\":200,\"index\":4}\n{\"index\":5,|\"op\":\"del\"}\n"
                            "{\"index\":6}\n{\"index\":7}\n|",
                            0);
    client_stream *s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    EXPECT(s && client_reply_code(first) == 200 &&
               json_integer_value(json_object_get(first, "index")) == 4,
           "stream: the first reply");
    json_decref(first);
    int r = s ? client_stream_next(s, 2000, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 1 && len == strlen("{\"index\":5,\"op\":\"del\"}") &&
               !strcmp(line, "{\"index\":5,\"op\":\"del\"}"),
           "stream: a line split across two writes");
    r = s ? client_stream_next(s, 2000, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 1 && !strcmp(line, "{\"index\":6}"), "stream: the first of two in one write");
    r = s ? client_stream_next(s, 0, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 1 && !strcmp(line, "{\"index\":7}"), "stream: a buffered line with timeout 0");
    r = s ? client_stream_next(s, 0, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 0, "stream: timeout 0 with nothing there");
    r = s ? client_stream_next(s, 100, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 0, "stream: a deadline passes");
    client_stream_close(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* the end of the stream */
    pid = fake_stream("{\"code\":200,\"index\":1}\n{\"index\":2}\n", 1);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    json_decref(first);
    r = s ? client_stream_next(s, 2000, &line, &len, err, sizeof err) : -9;
    EXPECT(r == 1, "stream: last line before the end");
    r = s ? client_stream_next(s, -1, &line, &len, err, sizeof err) : -9;
    EXPECT(r == -1 && !strcmp(err, "closed"), "stream: raftd closed it: -1 \"closed\"");
    client_stream_close(s);
    waitpid(pid, NULL, 0);

    /* a refusal is a first reply like any other */
    pid = fake_stream("{\"code\":410,\"error\":\"compacted\",\"oldest\":9}\n", 1);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    EXPECT(s && client_reply_code(first) == 410, "stream: 410 first reply handed back");
    json_decref(first);
    client_stream_close(s);
    waitpid(pid, NULL, 0);

    /* no first reply within the timeout; closed without one; not JSON */
    pid = fake_stream("", 0);
    s = client_stream_open(sockpath, req, 300, &first, err, sizeof err);
    EXPECT(!s && !first && strstr(err, "no reply"), "stream: no first reply in time");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pid = fake_stream("", 1);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    EXPECT(!s && strstr(err, "without a reply"), "stream: closed before the first reply");
    waitpid(pid, NULL, 0);
    pid = fake_stream("nope\n", 1);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    EXPECT(!s && strstr(err, "malformed"), "stream: a first reply that is not JSON");
    waitpid(pid, NULL, 0);
    unlink(sockpath);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    EXPECT(!s && strstr(err, "connect"), "stream: nobody listening");

    /* an event line above CLIENT_EVENT_MAX is an error, not a hang */
    size_t big = CLIENT_EVENT_MAX + 10;
    char *script = malloc(big + 64);
    strcpy(script, "{\"code\":200,\"index\":1}\n");
    size_t o = strlen(script);
    memset(script + o, 'x', big);
    script[o + big] = '\0';
    pid = fake_stream(script, 0);
    free(script);
    s = client_stream_open(sockpath, req, 2000, &first, err, sizeof err);
    json_decref(first);
    r = s ? client_stream_next(s, 5000, &line, &len, err, sizeof err) : -9;
    check(r == -1 && strstr(err, "too long") != NULL, "stream: an over-long line is refused",
          "r %d err %s", r, err);
    client_stream_close(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sockpath);
    json_decref(req);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_blocking();
    test_lease();
    test_txn();
    test_stream();
    return check_summary();
}
