/*
 * test_cgi - unit tests of lib/cgi.c and lib/client.c, and the CGI programs
 * run as lighttpd runs them (environment in, response on stdout) against a
 * one-shot fake raftd on a temporary UNIX socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgi.h"
#include "client.h"
#include "check.h"

/* ---- percent-decoding ---- */

static void t_decode(const char *name, const char *in, int plus, int want_rc, const char *want)
{
    char out[64];
    size_t n = 0;
    const char *why = "";
    int rc = cgi_pct_decode(in, strlen(in), plus, out, sizeof out, &n, &why);
    if (want_rc < 0)
        check(rc < 0, name, "decode(%s) = %d, want error", in, rc);
    else
        check(rc == 0 && n == strlen(want) && strcmp(out, want) == 0, name,
              "decode(%s) = %d '%s' (%s), want '%s'", in, rc, rc ? "" : out, rc ? why : "", want);
}

static void test_decode(void)
{
    t_decode("decode_plain", "abc", 0, 0, "abc");
    t_decode("decode_2f", "a%2Fb", 0, 0, "a/b");
    t_decode("decode_2f_lower", "a%2fb", 0, 0, "a/b");
    t_decode("decode_utf8", "%C3%A9", 0, 0, "\xC3\xA9");
    t_decode("decode_plus_kept", "a+b", 0, 0, "a+b");
    t_decode("decode_plus_space", "a+b%2B", 1, 0, "a b+");
    t_decode("decode_bad_hex", "%zz", 0, -1, NULL);
    t_decode("decode_half_escape", "ab%4", 0, -1, NULL);
    t_decode("decode_lone_percent", "ab%", 0, -1, NULL);
    t_decode("decode_nul_rejected", "a%00b", 0, -1, NULL);
    t_decode("decode_percent_percent", "%25", 0, 0, "%");
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    t_decode("decode_too_long", big, 0, -1, NULL);
    /* exactly fits: 63 bytes + NUL in 64 */
    char fit[64];
    memset(fit, 'y', 63);
    fit[63] = '\0';
    t_decode("decode_exact_fit", fit, 0, 0, fit);
}

/* ---- UTF-8 and keys ---- */

static void test_keys(void)
{
    const char *why = NULL;
    check(cgi_utf8_valid("plain", 5), "utf8_ascii", "rejected");
    check(cgi_utf8_valid("\xE2\x82\xAC", 3), "utf8_euro", "rejected");
    check(cgi_utf8_valid("\xF0\x9F\x98\x80", 4), "utf8_4byte", "rejected");
    check(!cgi_utf8_valid("\xC0\x80", 2), "utf8_overlong", "accepted");
    check(!cgi_utf8_valid("\xED\xA0\x80", 3), "utf8_surrogate", "accepted");
    check(!cgi_utf8_valid("\xF4\x90\x80\x80", 4), "utf8_above_max", "accepted");
    check(!cgi_utf8_valid("\xE2\x82", 2), "utf8_truncated", "accepted");
    check(!cgi_utf8_valid("caf\xE9", 4), "utf8_latin1", "accepted");

    check(cgi_key_valid("k", 1, &why) == 0, "key_one_byte", "rejected");
    check(cgi_key_valid("", 0, &why) < 0 && strstr(why, "empty"), "key_empty",
          "accepted or wrong reason");
    char k[CGI_KEY_MAX + 1];
    memset(k, 'a', sizeof k);
    check(cgi_key_valid(k, CGI_KEY_MAX, &why) == 0, "key_max_len", "1024 rejected");
    check(cgi_key_valid(k, CGI_KEY_MAX + 1, &why) < 0 && strstr(why, "1024"), "key_too_long",
          "1025 accepted");
    check(cgi_key_valid("a\0b", 3, &why) < 0 && strstr(why, "NUL"), "key_nul", "accepted");
    check(cgi_key_valid("caf\xE9", 4, &why) < 0 && strstr(why, "UTF-8"), "key_not_utf8",
          "accepted");
}

/* ---- request targets and routes ---- */

static void test_targets(void)
{
    cgi_target t;
    const char *why = NULL;
    int rc = cgi_split_target("/key/a%2Fb?level=stale#frag", &t, &why);
    check(rc == 0 && t.path_len == 10 && memcmp(t.path, "/key/a%2Fb", 10) == 0 &&
              t.query_len == 11 && memcmp(t.query, "level=stale", 11) == 0,
          "split_path_query", "rc=%d path_len=%zu query_len=%zu", rc, t.path_len, t.query_len);
    rc = cgi_split_target("/status", &t, &why);
    check(rc == 0 && t.path_len == 7 && t.query_len == 0, "split_no_query", "rc=%d", rc);
    check(cgi_split_target(NULL, &t, &why) < 0, "split_null", "accepted");
    check(cgi_split_target("", &t, &why) < 0, "split_empty", "accepted");
    check(cgi_split_target("key/a", &t, &why) < 0, "split_no_slash", "accepted");
    check(cgi_split_target("/key/a\nb", &t, &why) < 0, "split_control", "accepted");
    char *longuri = malloc(CGI_URI_MAX + 10);
    memset(longuri, 'a', CGI_URI_MAX + 9);
    longuri[0] = '/';
    longuri[CGI_URI_MAX + 9] = '\0';
    check(cgi_split_target(longuri, &t, &why) < 0, "split_too_long", "accepted");
    free(longuri);

    char key[CGI_KEY_MAX + 2];
    size_t kl = 0;
    const char *p = "/key/a%2Fb";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == 1 && kl == 3 && strcmp(key, "a/b") == 0, "route_key_2f", "rc=%d key=%s", rc,
          rc == 1 ? key : why);
    p = "/key/a/../b";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == 1 && strcmp(key, "a/../b") == 0, "route_key_dots_kept", "rc=%d", rc);
    p = "/key/user%201";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == 1 && strcmp(key, "user 1") == 0, "route_key_space", "rc=%d", rc);
    p = "/key/a+b";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == 1 && strcmp(key, "a+b") == 0, "route_key_plus_literal", "rc=%d", rc);
    p = "/key/";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == -1 && strstr(why, "empty"), "route_key_empty", "rc=%d", rc);
    p = "/key/%zz";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == -1 && strstr(why, "escape"), "route_key_bad_escape", "rc=%d", rc);
    p = "/key/a%00";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == -1 && strstr(why, "NUL"), "route_key_nul", "rc=%d", rc);
    p = "/key/caf%E9";
    rc = cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why);
    check(rc == -1 && strstr(why, "UTF-8"), "route_key_not_utf8", "rc=%d", rc);
    p = "/keys/x";
    check(cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why) == 0, "route_not_key",
          "matched");
    p = "/key";
    check(cgi_match_key_path(p, strlen(p), key, sizeof key, &kl, &why) == 0, "route_key_collection",
          "matched");

    /* 1024 bytes as %41 escapes: 3072 characters, still fine. */
    char esc[5 + 3 * (CGI_KEY_MAX + 1) + 1];
    strcpy(esc, "/key/");
    for (int i = 0; i < CGI_KEY_MAX; i++)
        strcat(esc + 5 + 3 * i, "%41");
    rc = cgi_match_key_path(esc, strlen(esc), key, sizeof key, &kl, &why);
    check(rc == 1 && kl == CGI_KEY_MAX, "route_key_1024_escaped", "rc=%d kl=%zu", rc, kl);
    strcat(esc, "B");
    rc = cgi_match_key_path(esc, strlen(esc), key, sizeof key, &kl, &why);
    check(rc == -1 && strstr(why, "1024"), "route_key_1025", "rc=%d", rc);

    check(cgi_path_is("/status", 7, "/status"), "path_is_exact", "no");
    check(cgi_path_is("/status/", 8, "/status"), "path_is_slash", "no");
    check(!cgi_path_is("/statusx", 8, "/status"), "path_is_prefix_only", "yes");
}

static void test_query(void)
{
    char out[32];
    const char *why = NULL;
    const char *q = "limit=10&prefix=a%20b+c&level=stale&flag";
    int rc = cgi_query_get(q, strlen(q), "prefix", out, sizeof out, &why);
    check(rc == 1 && strcmp(out, "a b c") == 0, "query_decode", "rc=%d out=%s", rc, out);
    rc = cgi_query_get(q, strlen(q), "level", out, sizeof out, &why);
    check(rc == 1 && strcmp(out, "stale") == 0, "query_middle", "rc=%d", rc);
    rc = cgi_query_get(q, strlen(q), "flag", out, sizeof out, &why);
    check(rc == 1 && out[0] == '\0', "query_no_value", "rc=%d", rc);
    rc = cgi_query_get(q, strlen(q), "lev", out, sizeof out, &why);
    check(rc == 0, "query_prefix_name_absent", "rc=%d", rc);
    rc = cgi_query_get("", 0, "level", out, sizeof out, &why);
    check(rc == 0, "query_empty", "rc=%d", rc);
    q = "level=%zz";
    rc = cgi_query_get(q, strlen(q), "level", out, sizeof out, &why);
    check(rc == -1, "query_bad_escape", "rc=%d", rc);
    q = "a=1&&level=x&level=y";
    rc = cgi_query_get(q, strlen(q), "level", out, sizeof out, &why);
    check(rc == 1 && strcmp(out, "x") == 0, "query_first_wins", "rc=%d out=%s", rc, out);
    char longv[100];
    snprintf(longv, sizeof longv, "v=%060d", 0);
    rc = cgi_query_get(longv, strlen(longv), "v", out, sizeof out, &why);
    check(rc == -1, "query_value_too_long", "rc=%d", rc);
    /* Query parsing only sees the bytes it was given. */
    q = "level=stale";
    rc = cgi_query_get(q, 5, "level", out, sizeof out, &why);
    check(rc == 1 && out[0] == '\0', "query_bounded_len", "rc=%d out=%s", rc, out);
}

static void test_etag(void)
{
    long long v = -1;
    check(cgi_parse_etag("\"12\"", &v) == 0 && v == 12, "etag_quoted", "v=%lld", v);
    check(cgi_parse_etag("W/\"3\"", &v) == 0 && v == 3, "etag_weak", "v=%lld", v);
    check(cgi_parse_etag(" 7 ", &v) == 0 && v == 7, "etag_bare", "v=%lld", v);
    check(cgi_parse_etag("\"12", &v) < 0, "etag_unterminated", "accepted");
    check(cgi_parse_etag("abc", &v) < 0, "etag_garbage", "accepted");
    check(cgi_parse_etag("\"1\", \"2\"", &v) < 0, "etag_list_rejected", "accepted");
    check(cgi_parse_etag("99999999999999999999999", &v) < 0, "etag_overflow", "accepted");
}

/* cgi_cond_parse(im, inm): want_kind (-1: refused) and want_index. */
static void t_cond(const char *name, const char *im, const char *inm, int want_kind,
                   long long want_index)
{
    cgi_cond c = {-1, -1};
    const char *why = "";
    int rc = cgi_cond_parse(im, inm, &c, &why);
    if (want_kind < 0)
        check(rc < 0, name, "accepted: kind %d", c.kind);
    else
        check(rc == 0 && c.kind == want_kind && c.index == want_index, name,
              "rc %d kind %d index %lld (%s)", rc, c.kind, c.index, rc ? why : "");
}

static void test_conditions(void)
{
    t_cond("cond_none", NULL, NULL, CGI_IF_NONE, 0);
    t_cond("cond_if_match", "\"4\"", "", CGI_IF_INDEX, 4);
    t_cond("cond_if_match_star", " * ", NULL, CGI_IF_EXISTS, 0);
    t_cond("cond_if_none_match_star", NULL, "*", CGI_IF_INDEX, 0);
    t_cond("cond_both_refused", "\"1\"", "*", -1, 0);
    t_cond("cond_list_refused", "\"1\", \"2\"", NULL, -1, 0);
    t_cond("cond_inm_tag_refused", NULL, "\"2\"", -1, 0);
    check(cgi_etag_matches("\"7\"", 7), "inm_match", "no");
    check(!cgi_etag_matches("\"8\"", 7), "inm_other", "matched");
    check(cgi_etag_matches("\"1\", W/\"7\"", 7), "inm_list_weak", "no");
    check(cgi_etag_matches("*", 7), "inm_star", "no");
    check(!cgi_etag_matches(NULL, 7) && !cgi_etag_matches("", 7), "inm_absent", "matched");

    static const char *const known[] = {"level", "limit", NULL};
    static const char *const none[] = {NULL};
    char bad[32] = "";
    const char *q = "level=stale&limit=3";
    check(cgi_query_unknown(q, strlen(q), known, bad, sizeof bad) == 0, "query_known", "bad %s",
          bad);
    q = "level=stale&wa%69t=true";
    check(cgi_query_unknown(q, strlen(q), known, bad, sizeof bad) < 0 && !strcmp(bad, "wait"),
          "query_unknown_decoded", "bad %s", bad);
    q = "recursive";
    check(cgi_query_unknown(q, strlen(q), none, bad, sizeof bad) < 0 && !strcmp(bad, "recursive"),
          "query_unknown_flag", "bad %s", bad);
    check(cgi_query_unknown("", 0, none, bad, sizeof bad) == 0, "query_empty_known", "bad %s", bad);
    q = "level=stale&&limit=1&";
    check(cgi_query_unknown(q, strlen(q), known, bad, sizeof bad) == 0, "query_empty_parts",
          "bad %s", bad);

    json_error_t je;
    char jw[200];
    json_t *j = json_loads("{\"a\":\"x\\u0000\"}", 0, &je);
    check(!j && strstr(client_json_why(&je, jw, sizeof jw), "NUL bytes") && !strstr(jw, "JSON_"),
          "json_why_nul_plain", "[%s]", jw);
    json_decref(j);
}

/* ---- body reading ---- */

static int body_case(const char *data, size_t dlen, const char *cl, size_t max, char **body,
                     size_t *len, const char **why)
{
    int p[2];
    if (pipe(p) < 0)
        return -999;
    if (dlen && write(p[1], data, dlen) != (ssize_t)dlen)
        return -998;
    close(p[1]);
    int rc = cgi_read_body(p[0], cl, max, body, len, why);
    close(p[0]);
    return rc;
}

static void test_body(void)
{
    char *b = NULL;
    size_t n = 0;
    const char *why = "";
    int rc = body_case("hello", 5, "5", 100, &b, &n, &why);
    check(rc == 0 && n == 5 && strcmp(b, "hello") == 0, "body_ok", "rc=%d", rc);
    free(b);
    rc = body_case("", 0, NULL, 100, &b, &n, &why);
    check(rc == 0 && n == 0 && b && b[0] == '\0', "body_none", "rc=%d", rc);
    free(b);
    rc = body_case("hello", 5, "abc", 100, &b, &n, &why);
    check(rc == 400 && !b, "body_bad_length", "rc=%d", rc);
    rc = body_case("hello", 5, "-1", 100, &b, &n, &why);
    check(rc == 400, "body_negative_length", "rc=%d", rc);
    rc = body_case("hello", 5, "101", 100, &b, &n, &why);
    check(rc == 413 && strstr(why, "too large"), "body_over_limit", "rc=%d", rc);
    rc = body_case("hello", 5, "99999999999999999999999", 100, &b, &n, &why);
    check(rc == 413, "body_huge_length", "rc=%d", rc);
    rc = body_case("hel", 3, "5", 100, &b, &n, &why);
    check(rc == 400 && strstr(why, "shorter"), "body_short", "rc=%d", rc);
    rc = body_case("hello", 5, "100", 100, &b, &n, &why);
    check(rc == 400, "body_short_at_limit", "rc=%d", rc);
    /* Exactly at the 4 MiB limit is accepted, one byte more is not. */
    char cl[32];
    snprintf(cl, sizeof cl, "%u", CGI_BODY_MAX + 1);
    rc = body_case("x", 1, cl, CGI_BODY_MAX, &b, &n, &why);
    check(rc == 413, "body_4MiB_plus_1", "rc=%d", rc);
}

/* ---- responses ---- */

static int ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_respond(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *b = json_pack("{s:s}", "user1", "batman");
    const char *h[] = {"ETag: \"5\"", NULL};
    cgi_respond(f, 200, h, b);
    fclose(f);
    json_decref(b);
    const char *want = "Status: 200 OK\r\nContent-Type: application/json\r\n"
                       "ETag: \"5\"\r\n\r\n{\"user1\":\"batman\"}";
    check(buf && strcmp(buf, want) == 0, "respond_format", "got [%s]", buf);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    cgi_error(f, 404, "key not found");
    fclose(f);
    check(buf && strstr(buf, "Status: 404 Not Found\r\n") == buf &&
              ends(buf, "\r\n\r\n{\"error\":\"key not found\"}"),
          "error_format", "got [%s]", buf);
    free(buf);
}

/* ---- a one-shot fake raftd ---- */

static char sockpath[108];

typedef struct fake {
    pid_t pid;
    int reqfd; /* read end: the request line the fake received */
} fake;

/* mode: 0 reply with `reply`, 1 never reply, 2 close at once,
 * 3 reply without newline then hang, 4 reply a huge line */
static int fake_start(fake *fk, int mode, const char *reply)
{
    unlink(sockpath);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4) < 0)
        return -1;
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        alarm(10);
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            _exit(1);
        char line[65536];
        size_t n = 0;
        while (n < sizeof line - 1) {
            ssize_t r = read(c, line + n, 1);
            if (r <= 0 || line[n] == '\n')
                break;
            n++;
        }
        if (write(p[1], line, n) < 0)
            _exit(1);
        close(p[1]);
        if (mode == 0) {
            if (write(c, reply, strlen(reply)) < 0 || write(c, "\n", 1) < 0)
                _exit(1);
        } else if (mode == 1) {
            pause();
        } else if (mode == 3) {
            if (write(c, "{\"code\":200", 11) < 0)
                _exit(1);
            pause();
        } else if (mode == 4) {
            char *big = malloc(1 << 20);
            memset(big, ' ', 1 << 20);
            for (;;)
                if (write(c, big, 1 << 20) < 0)
                    _exit(0);
        }
        close(c);
        _exit(0);
    }
    close(ls);
    close(p[1]);
    fk->pid = pid;
    fk->reqfd = p[0];
    return 0;
}

/* Returns the request the fake got (static buffer) and reaps it. */
static const char *fake_finish(fake *fk)
{
    static char req[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof req - 1 && (r = read(fk->reqfd, req + n, sizeof req - 1 - n)) > 0)
        n += (size_t)r;
    req[n] = '\0';
    close(fk->reqfd);
    kill(fk->pid, SIGKILL);
    waitpid(fk->pid, NULL, 0);
    return req;
}

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_client(void)
{
    fake fk;
    char err[512];
    json_t *reply = NULL;
    json_t *req = json_pack("{s:s,s:s}", "op", "get", "key", "a/b");

    fake_start(&fk, 0, "{\"code\":200,\"key\":\"a/b\",\"value\":\"v\",\"index\":3}");
    int rc = client_request(sockpath, req, 2000, &reply, err, sizeof err);
    const char *got = fake_finish(&fk);
    check(rc == 0 && client_reply_code(reply) == 200 &&
              strcmp(json_string_value(json_object_get(reply, "value")), "v") == 0,
          "client_roundtrip", "rc=%d err=%s", rc, rc ? err : "");
    check(strcmp(got, "{\"op\":\"get\",\"key\":\"a/b\"}") == 0 ||
              strcmp(got, "{\"key\":\"a/b\",\"op\":\"get\"}") == 0,
          "client_request_line", "sent [%s]", got);
    json_decref(reply);

    fake_start(&fk, 1, NULL);
    long long t0 = ms_now();
    rc = client_request(sockpath, req, 300, &reply, err, sizeof err);
    long long dt = ms_now() - t0;
    fake_finish(&fk);
    check(rc < 0 && !reply && dt >= 250 && dt < 2000 && strstr(err, "300 ms"), "client_timeout",
          "rc=%d dt=%lld err=%s", rc, dt, err);

    fake_start(&fk, 3, NULL);
    rc = client_request(sockpath, req, 300, &reply, err, sizeof err);
    fake_finish(&fk);
    check(rc < 0 && !reply, "client_partial_line_timeout", "rc=%d", rc);

    fake_start(&fk, 2, NULL);
    rc = client_request(sockpath, req, 2000, &reply, err, sizeof err);
    fake_finish(&fk);
    check(rc < 0 && strstr(err, "without a reply"), "client_closed", "rc=%d err=%s", rc, err);

    fake_start(&fk, 0, "not json");
    rc = client_request(sockpath, req, 2000, &reply, err, sizeof err);
    fake_finish(&fk);
    check(rc < 0 && strstr(err, "malformed"), "client_malformed_reply", "rc=%d err=%s", rc, err);

    fake_start(&fk, 0, "[1,2]");
    rc = client_request(sockpath, req, 2000, &reply, err, sizeof err);
    fake_finish(&fk);
    check(rc < 0 && strstr(err, "not an object"), "client_array_reply", "rc=%d err=%s", rc, err);

    fake_start(&fk, 4, NULL);
    t0 = ms_now();
    rc = client_request(sockpath, req, 10000, &reply, err, sizeof err);
    dt = ms_now() - t0;
    fake_finish(&fk);
    check(rc < 0 && strstr(err, "too large"), "client_reply_too_large", "rc=%d dt=%lld err=%s", rc,
          dt, err);

    unlink(sockpath);
    rc = client_request(sockpath, req, 2000, &reply, err, sizeof err);
    check(rc < 0 && strstr(err, "connect") && strstr(err, sockpath), "client_no_socket",
          "rc=%d err=%s", rc, err);

    char longp[200];
    memset(longp, 'p', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    rc = client_request(longp, req, 2000, &reply, err, sizeof err);
    check(rc < 0 && strstr(err, "too long"), "client_path_too_long", "rc=%d", rc);
    json_decref(req);

    json_t *r = json_pack("{s:i}", "code", 404);
    check(client_reply_code(r) == 404, "reply_code", "wrong");
    json_decref(r);
    r = json_pack("{s:s}", "code", "x");
    check(client_reply_code(r) == 502, "reply_code_missing", "wrong");
    json_decref(r);
}

/* ---- the CGI programs, run as lighttpd runs them ---- */

static char cgidir[PATH_MAX];

typedef struct cgi_run {
    char out[65536]; /* response */
    char req[65536]; /* what the fake raftd got ("" if nothing) */
} cgi_run;

/* Runs program with the given environment (NULL-terminated "K=V" list)
 * and stdin body (CONTENT_LENGTH = its length unless env sets it), against a fake replying with reply (NULL: no fake). */
static void run_cgi(cgi_run *r, const char *prog, const char *const *env, const char *body,
                    const char *reply)
{
    fake fk;
    int have_fake = reply != NULL;
    r->out[0] = r->req[0] = '\0';
    if (have_fake)
        fake_start(&fk, 0, reply);
    else
        unlink(sockpath);
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 2);
        close(in[1]);
        close(out[0]);
        clearenv();
        for (int i = 0; env[i]; i++)
            putenv((char *)env[i]);
        char sockenv[200];
        snprintf(sockenv, sizeof sockenv, "KEYVAL_SOCKET=%s", sockpath);
        putenv(sockenv);
        putenv("KEYVAL_TIMEOUT_MS=3000");
        char clenv[64];
        if (body && !getenv("CONTENT_LENGTH")) {
            snprintf(clenv, sizeof clenv, "CONTENT_LENGTH=%zu", strlen(body));
            putenv(clenv);
        }
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", cgidir, prog);
        execl(path, prog, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (body && *body && write(in[1], body, strlen(body)) < 0)
        perror("write");
    close(in[1]);
    size_t n = 0;
    ssize_t k;
    while (n < sizeof r->out - 1 && (k = read(out[0], r->out + n, sizeof r->out - 1 - n)) > 0)
        n += (size_t)k;
    r->out[n] = '\0';
    close(out[0]);
    waitpid(pid, NULL, 0);
    if (have_fake)
        snprintf(r->req, sizeof r->req, "%s", fake_finish(&fk));
}

/* Compares the request the fake got with want (JSON equality). */
static int req_is(const cgi_run *r, const char *want)
{
    json_t *a = json_loads(r->req, 0, NULL), *b = json_loads(want, 0, NULL);
    int eq = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void test_programs(void)
{
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/key-get", cgidir);
    if (access(probe, X_OK) != 0) {
        check(0, "cgi_programs_built", "%s not found", probe);
        return;
    }
    cgi_run *r = malloc(sizeof *r);

    const char *get_env[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/key/a%2Fb", "CONTENT_LENGTH=0",
                             NULL};
    run_cgi(r, "key-get", get_env, NULL,
            "{\"code\":200,\"key\":\"a/b\",\"value\":\"batman\",\"index\":7}");
    check(starts(r->out, "Status: 200 OK\r\n") && strstr(r->out, "ETag: \"7\"\r\n") &&
              strstr(r->out, "X-Keyval-Index: 7\r\n") &&
              ends(r->out, "\r\n\r\n{\"a/b\":\"batman\"}"),
          "key_get_body_and_etag", "out [%s]", r->out);
    check(req_is(r, "{\"op\":\"get\",\"key\":\"a/b\"}"), "key_get_request", "sent [%s]", r->req);

    const char *stale_env[] = {"REQUEST_URI=/key/x?level=stale", NULL};
    run_cgi(r, "key-get", stale_env, NULL,
            "{\"code\":200,\"key\":\"x\",\"value\":\"1\",\"index\":2,\"applied\":9}");
    check(req_is(r, "{\"op\":\"get\",\"key\":\"x\",\"level\":\"stale\"}"), "key_get_stale_request",
          "sent [%s]", r->req);

    run_cgi(r, "key-get", get_env, NULL, "{\"code\":404,\"error\":\"key not found\"}");
    check(starts(r->out, "Status: 404 Not Found\r\n") &&
              ends(r->out, "\r\n\r\n{\"error\":\"key not found\"}"),
          "key_get_404", "out [%s]", r->out);

    const char *bad_env[] = {"REQUEST_URI=/key/%zz", NULL};
    run_cgi(r, "key-get", bad_env, NULL, NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "escape"), "key_get_bad_escape_400",
          "out [%s]", r->out);

    const char *lvl_env[] = {"REQUEST_URI=/key/x?level=bogus", NULL};
    run_cgi(r, "key-get", lvl_env, NULL, NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "level"), "key_get_bad_level_400",
          "out [%s]", r->out);

    run_cgi(r, "key-get", get_env, NULL, NULL);
    check(starts(r->out, "Status: 503 ") && strstr(r->out, "raftd unavailable"),
          "key_get_no_raftd_503", "out [%s]", r->out);

    const char *set_env[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/key", NULL};
    run_cgi(r, "key-set", set_env, "{\"user1\":\"batman\",\"user2\":\"robin\"}",
            "{\"code\":200,\"index\":12}");
    check(starts(r->out, "Status: 200 OK\r\n") && strstr(r->out, "X-Keyval-Index: 12\r\n") &&
              strstr(r->out, "{\"index\":12}"),
          "key_set_ok", "out [%s]", r->out);
    check(req_is(r, "{\"op\":\"set\",\"kv\":{\"user1\":\"batman\",\"user2\":\"robin\"}}"),
          "key_set_request_atomic", "sent [%s]", r->req);

    const char *set_env2[] = {"REQUEST_URI=/key", "CONTENT_LENGTH=8", NULL};
    run_cgi(r, "key-set", set_env2, "{\"a\":1}X", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "malformed JSON"),
          "key_set_trailing_garbage_400", "out [%s]", r->out);
    const char *set_env3[] = {"REQUEST_URI=/key", "CONTENT_LENGTH=7", NULL};
    run_cgi(r, "key-set", set_env3, "{\"a\":1}", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "not a string"),
          "key_set_non_string_400", "out [%s]", r->out);
    const char *set_env4[] = {"REQUEST_URI=/key", "CONTENT_LENGTH=2", NULL};
    run_cgi(r, "key-set", set_env4, "[]", NULL);
    check(starts(r->out, "Status: 400 "), "key_set_array_400", "out [%s]", r->out);
    run_cgi(r, "key-set", set_env4, "{}", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "no keys"), "key_set_empty_400",
          "out [%s]", r->out);
    const char *set_env5[] = {"REQUEST_URI=/key", "CONTENT_LENGTH=4194305", NULL};
    run_cgi(r, "key-set", set_env5, "{}", NULL);
    check(starts(r->out, "Status: 413 "), "key_set_over_4MiB_413", "out [%s]", r->out);
    const char *set_env6[] = {"REQUEST_URI=/key", NULL};
    run_cgi(r, "key-set", set_env6, "{\"\":\"x\"}", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "empty"), "key_set_empty_key_400",
          "out [%s]", r->out);

    const char *put_env[] = {"REQUEST_URI=/key/k1", "CONTENT_LENGTH=5", "HTTP_IF_MATCH=\"4\"",
                             NULL};
    run_cgi(r, "key-put", put_env, "hello",
            "{\"code\":412,\"error\":\"condition failed\",\"key\":\"k1\",\"index\":5}");
    check(starts(r->out, "Status: 412 ") && strstr(r->out, "condition failed"),
          "key_put_if_match_412", "out [%s]", r->out);
    check(req_is(r, "{\"op\":\"txn\",\"set\":{\"k1\":\"hello\"},"
                    "\"if\":[{\"key\":\"k1\",\"index\":4}]}"),
          "key_put_if_match_request", "sent [%s]", r->req);
    const char *put_env2[] = {"REQUEST_URI=/key/k1", "CONTENT_LENGTH=5", "HTTP_IF_NONE_MATCH=*",
                              NULL};
    run_cgi(r, "key-put", put_env2, "hello", "{\"code\":200,\"index\":6}");
    check(req_is(r, "{\"op\":\"txn\",\"set\":{\"k1\":\"hello\"},"
                    "\"if\":[{\"key\":\"k1\",\"index\":0}]}"),
          "key_put_if_none_match_request", "sent [%s]", r->req);
    const char *put_env3[] = {"REQUEST_URI=/key/k1", "CONTENT_LENGTH=5", NULL};
    run_cgi(r, "key-put", put_env3, "hello", "{\"code\":200,\"index\":6}");
    check(req_is(r, "{\"op\":\"set\",\"kv\":{\"k1\":\"hello\"}}"), "key_put_plain_request",
          "sent [%s]", r->req);
    const char *put_env4[] = {"REQUEST_URI=/key/k1", "CONTENT_LENGTH=1", "HTTP_IF_MATCH=*", NULL};
    run_cgi(r, "key-put", put_env4, "x", "{\"code\":404,\"error\":\"key not found\"}");
    check(starts(r->out, "Status: 412 ") && strstr(r->out, "\"index\":0") &&
              req_is(r, "{\"op\":\"get\",\"key\":\"k1\"}"),
          "key_put_if_match_star_reads_then_412", "sent [%s] out [%s]", r->req, r->out);

    /* 4 MiB of control bytes is a valid raw value but 24 MiB as JSON:
     * too large for raftd's 16 MiB request line; 413, nothing sent. */
    char *ctl = malloc(CGI_BODY_MAX + 1);
    memset(ctl, 1, CGI_BODY_MAX);
    ctl[CGI_BODY_MAX] = '\0';
    const char *put_env5[] = {"REQUEST_URI=/key/big", NULL};
    run_cgi(r, "key-put", put_env5, ctl, NULL);
    free(ctl);
    check(starts(r->out, "Status: 413 ") && strstr(r->out, "too large"),
          "key_put_request_too_large_413", "out [%.200s]", r->out);

    const char *del_env[] = {"REQUEST_METHOD=DELETE", "REQUEST_URI=/key/a%2Fb", NULL};
    run_cgi(r, "key-del", del_env, NULL, "{\"code\":200,\"index\":8}");
    check(starts(r->out, "Status: 200 ") && req_is(r, "{\"op\":\"del\",\"key\":\"a/b\"}"),
          "key_del_request", "sent [%s] out [%s]", r->req, r->out);

    const char *list_env[] = {"REQUEST_URI=/key?prefix=user&limit=2&after=user1", NULL};
    run_cgi(r, "key-list", list_env, NULL, "{\"code\":200,\"items\":[],\"more\":false}");
    check(req_is(r, "{\"op\":\"list\",\"prefix\":\"user\",\"limit\":2,\"after\":\"user1\"}"),
          "key_list_request", "sent [%s]", r->req);
    const char *list_env2[] = {"REQUEST_URI=/key?limit=0", NULL};
    run_cgi(r, "key-list", list_env2, NULL, NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "limit"), "key_list_bad_limit_400",
          "out [%s]", r->out);

    const char *list_env3[] = {"REQUEST_URI=/key?limit=5000", NULL};
    run_cgi(r, "key-list", list_env3, NULL, "{\"code\":200,\"items\":[],\"more\":false}");
    check(req_is(r, "{\"op\":\"list\",\"prefix\":\"\",\"limit\":1000}"), "key_list_limit_clamped",
          "sent [%s]", r->req);
    const char *list_env4[] = {"REQUEST_URI=/key?ttl=true", NULL};
    run_cgi(r, "key-list", list_env4, NULL, NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "\\\"ttl\\\""),
          "key_list_unknown_param_400", "out [%s]", r->out);
    /* the seed's ?wait=true is a blocking query's parameter now: 400 */
    const char *list_env5[] = {"REQUEST_URI=/key?wait=true", NULL};
    run_cgi(r, "key-list", list_env5, NULL, NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "bad wait parameter"),
          "key_list_wait_without_index_400", "out [%s]", r->out);

    const char *join_env[] = {"REQUEST_URI=/join", NULL};
    run_cgi(r, "join", join_env, "{\"id\":\"node1\",\"addr\":\"localhost:12001\"}",
            "{\"code\":200,\"index\":3}");
    check(starts(r->out, "Status: 200 ") &&
              req_is(r, "{\"op\":\"join\",\"id\":\"node1\",\"addr\":\"localhost:12001\"}"),
          "join_request", "sent [%s] out [%s]", r->req, r->out);
    const char *join_env_id[] = {"REQUEST_URI=/join", NULL};
    run_cgi(r, "join", join_env_id,
            "{\"id\":\"node1\",\"addr\":\"localhost:12001\",\"node_id\":\"00ab00cd00ef0012\"}",
            "{\"code\":409,\"error\":\"node1 is already a member with another identity\"}");
    check(starts(r->out, "Status: 409 ") && strstr(r->out, "another identity") &&
              req_is(r, "{\"op\":\"join\",\"id\":\"node1\",\"addr\":\"localhost:12001\","
                        "\"node_id\":\"00ab00cd00ef0012\"}"),
          "join_passes_node_id_and_409", "sent [%s] out [%s]", r->req, r->out);
    const char *join_env2[] = {"REQUEST_URI=/join", NULL};
    run_cgi(r, "join", join_env2, "{\"id\":\"node1\"}", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "addr"), "join_missing_addr_400",
          "out [%s]", r->out);
    const char *join_env3[] = {"REQUEST_URI=/join", NULL};
    run_cgi(r, "join", join_env3, "{\"id\":\"n\",\"addr\":\"nohostport\"}", NULL);
    check(starts(r->out, "Status: 400 ") && strstr(r->out, "HOST:PORT"), "join_bad_addr_400",
          "out [%s]", r->out);

    const char *st_env[] = {"REQUEST_URI=/status", NULL};
    run_cgi(r, "status", st_env, NULL, "{\"code\":200,\"id\":\"node0\",\"state\":\"leader\"}");
    int relayed = starts(r->out, "Status: 200 ") && strstr(r->out, "\"state\":\"leader\"") != NULL;
    int has_code = strstr(r->out, "\"code\"") != NULL;
    check(relayed && !has_code, "status_relay_without_code", "out [%s]", r->out);

    const char *re_env[] = {"REQUEST_METHOD=PATCH", "REQUEST_URI=/key/x", NULL};
    run_cgi(r, "route-error", re_env, NULL, NULL);
    check(starts(r->out, "Status: 405 ") && strstr(r->out, "Allow: GET, PUT, DELETE"), "route_405",
          "out [%s]", r->out);
    const char *re_env2[] = {"REQUEST_URI=/nothing/here", NULL};
    run_cgi(r, "route-error", re_env2, NULL, NULL);
    check(starts(r->out, "Status: 404 ") && strstr(r->out, "{\"error\":\"not found\"}"),
          "route_404", "out [%s]", r->out);
    free(r);
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    snprintf(sockpath, sizeof sockpath, "/tmp/test_cgi.%d.sock", (int)getpid());
    /* CGI programs: $BUILD/cgi-bin, else next to this program's ../cgi-bin */
    const char *build = getenv("BUILD");
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *s = strrchr(self, '/');
        if (s)
            *s = '\0';
        snprintf(cgidir, sizeof cgidir, "%.*s/../cgi-bin", PATH_MAX - 20, self);
    } else if (build) {
        snprintf(cgidir, sizeof cgidir, "%.*s/cgi-bin", PATH_MAX - 20, build);
    }
    (void)argv;

    test_decode();
    test_keys();
    test_targets();
    test_query();
    test_etag();
    test_conditions();
    test_body();
    test_respond();
    test_client();
    test_programs();
    unlink(sockpath);
    return check_summary();
}
