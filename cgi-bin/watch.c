/*
 * watch - CGI: GET /watch?prefix=P&from=M and GET /watch/K?from=M.
 *
 * Opens a watch on raftd.sock and relays each event line to the HTTP
 * client as it comes: one JSON object per line (application/x-ndjson), or
 * with "Accept: text/event-stream" as Server-Sent Events whose "id:" is
 * the event's index (set on the last event of each index, so that a
 * resume from Last-Event-ID neither repeats nor skips one). Never ends by
 * itself; when raftd cuts the stream, a last line says why. When the HTTP
 * client goes away (a write fails, or stdout reports an error or hang-up)
 * it exits, which closes its raftd.sock connection and ends the watch.
 *
 * Always a process of its own under mod_cgi, also with keyval -fastcgi:
 * a resident FastCGI responder would be held by one watcher. So it does
 * not use cgi_main and writes to fd 1 unbuffered.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"

#define PROG "watch"

/* The query parameters of GET /watch and /watch/K: one line each. */
static const char *const known_params[] = {
    "prefix",
    "from",
    NULL,
};

/* Idle stream: a comment (SSE) or an empty line (ndjson) this often, so
 * that a client gone away is noticed even when nothing changes (lighttpd
 * notices only when it writes to the client, then closes our stdout). */
static int heartbeat_ms(void)
{
    const char *s = getenv("KEYVAL_WATCH_HEARTBEAT_MS");
    int v = s ? atoi(s) : 0;
    return v >= 100 && v <= 600000 ? v : 5000;
}

/* SSE: how long an event waits for more events of its index before it
 * goes out with "id:" (raftd writes one entry's events together). */
#define SSE_GRACE_MS 50

static int sse;
static int raftd_said_why; /* raftd's own last line ({"error":..}) was relayed */

/* Writes all of buf to fd 1; on failure (client gone) exits. */
static void out(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            exit(0);
        buf += n;
        len -= (size_t)n;
    }
}

static void outs(const char *s)
{
    out(s, strlen(s));
}

/* One event line; for SSE with "id: I" when id >= 0. An object with
 * "error" is a last line: an "error" event in SSE. */
static void emit(const char *line, size_t len, long long id, int is_error)
{
    if (!sse) {
        out(line, len);
        outs("\n");
        return;
    }
    char head[64];
    if (is_error)
        outs("event: error\n");
    if (id >= 0) {
        snprintf(head, sizeof head, "id: %lld\n", id);
        outs(head);
    }
    outs("data: ");
    out(line, len);
    outs("\n\n");
}

/* The request from the target; NULL with *why (400) on a bad one. */
static json_t *watch_request(const cgi_target *t, char *why, size_t whylen)
{
    char key[KV_KEY_MAX + 2], v[KV_KEY_MAX + 2];
    size_t klen;
    const char *w;
    json_t *req = json_pack("{s:s}", "op", "watch");
    int m;
    if (t->path_len > 7 && memcmp(t->path, "/watch/", 7) == 0) {
        /* /watch/K: the same key rules as /key/K */
        char fake[KV_KEY_MAX * 3 + 16];
        int n = snprintf(fake, sizeof fake, "/key/%.*s", (int)(t->path_len - 7), t->path + 7);
        m = n > 0 && (size_t)n < sizeof fake
                ? cgi_match_key_path(fake, (size_t)n, key, sizeof key, &klen, &w)
                : -1;
        if (m <= 0) {
            snprintf(why, whylen, "%s", m < 0 ? w : "bad key");
            goto bad;
        }
        json_object_set_new(req, "key", json_stringn(key, klen));
    } else if (cgi_path_is(t->path, t->path_len, "/watch")) {
        int r = cgi_query_get(t->query, t->query_len, "prefix", v, sizeof v, &w);
        if (r < 0 || (r > 0 && !cgi_utf8_valid(v, strlen(v)))) {
            snprintf(why, whylen, "bad prefix parameter: %s", r < 0 ? w : "not valid UTF-8");
            goto bad;
        }
        json_object_set_new(req, "prefix", json_string(r > 0 ? v : ""));
    } else {
        snprintf(why, whylen, "not found");
        json_decref(req);
        return NULL;
    }
    long long from = -1;
    int r = cgi_query_get(t->query, t->query_len, "from", v, 32, &w);
    if (r != 0 && (r < 0 || cgi_parse_u64(v, &from) < 0)) {
        snprintf(why, whylen, "bad from parameter: expected a decimal index");
        goto bad;
    }
    const char *last = getenv("HTTP_LAST_EVENT_ID");
    if (last && *last && cgi_parse_u64(last, &from) < 0) {
        snprintf(why, whylen, "bad Last-Event-ID: expected a decimal index");
        goto bad;
    }
    if (from >= 0)
        json_object_set_new(req, "from", json_integer(from));
    return req;
bad:
    json_decref(req);
    return NULL;
}

/* The event index of a line, or -1 (an error line, or not an event). */
static long long line_index(const char *line, size_t len, int *is_error)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    json_t *ix = json_object_get(o, "index");
    long long i = json_is_integer(ix) ? (long long)json_integer_value(ix) : -1;
    *is_error = json_object_get(o, "error") != NULL;
    json_decref(o);
    return i;
}

/* Relays events until raftd ends the stream; returns the last index
 * relayed (-1 none) and sets *err. */
static long long relay(client_stream *s, char *err, size_t errlen)
{
    char *pend = NULL; /* SSE: the event held back until the next is seen */
    size_t plen = 0;
    long long pidx = -1, last = -1;
    int perr = 0, hb = heartbeat_ms();
    for (;;) {
        const char *line;
        size_t len;
        /* SSE: give the rest of an entry's events a moment to arrive */
        int r = client_stream_next(s, pend ? SSE_GRACE_MS : 0, &line, &len, err, errlen);
        if (r == 0 && pend) { /* nothing more at once: the entry is whole */
            emit(pend, plen, perr ? -1 : pidx, perr);
            free(pend);
            pend = NULL;
        }
        if (r == 0) {
            struct pollfd p[2] = {{.fd = client_stream_fd(s), .events = POLLIN},
                                  {.fd = STDOUT_FILENO, .events = 0}};
            int n = poll(p, 2, hb);
            if (n < 0 && errno != EINTR)
                exit(0);
            if (n > 0 && (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
                exit(0); /* the client went away */
            if (n == 0)
                outs(sse ? ": keepalive\n\n" : "\n");
            continue;
        }
        if (r < 0)
            break;
        int is_err;
        long long i = line_index(line, len, &is_err);
        if (i >= 0 && !is_err)
            last = i;
        raftd_said_why = is_err;
        if (!sse) {
            emit(line, len, -1, is_err);
            continue;
        }
        if (pend) {
            emit(pend, plen, perr || pidx == i ? -1 : pidx, perr);
            free(pend);
        }
        pend = malloc(len + 1);
        if (!pend)
            exit(1);
        memcpy(pend, line, len);
        plen = len;
        pidx = i;
        perr = is_err;
    }
    if (pend) {
        emit(pend, plen, perr ? -1 : pidx, perr);
        free(pend);
    }
    return last;
}

int main(void)
{
    cgi_target t;
    const char *w;
    char why[512], err[512];
    signal(SIGPIPE, SIG_IGN);
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &w) < 0)
        return cgi_error(stdout, 400, w), 0;
    if (cgi_query_known(&t, known_params) < 0)
        return 0;
    json_t *req = watch_request(&t, why, sizeof why);
    if (!req)
        return cgi_error(stdout, strcmp(why, "not found") ? 400 : 404, why), 0;
    const char *accept = getenv("HTTP_ACCEPT");
    sse = accept && strstr(accept, "text/event-stream") != NULL;
    const char *sock = getenv("KEYVAL_SOCKET");
    json_t *first;
    client_stream *s = client_stream_open(sock, req, client_timeout_from_env(), &first, err,
                                          sizeof err);
    json_decref(req);
    if (!s) {
        fprintf(stderr, PROG ": watch request to raftd failed: %s\n", err);
        return cgi_errorf2(stdout, 503, "raftd unavailable", err), 0;
    }
    int code = client_reply_code(first);
    if (code != 200) { /* 410 compacted, 503 too many watchers, 400, ... */
        json_object_del(first, "code");
        cgi_respond(stdout, code, NULL, first);
        json_decref(first);
        client_stream_close(s);
        return 0;
    }
    char head[256];
    snprintf(head, sizeof head,
             "Status: 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
             "X-Keyval-Index: %lld\r\n\r\n",
             sse ? "text/event-stream" : "application/x-ndjson",
             (long long)json_integer_value(json_object_get(first, "index")));
    json_decref(first);
    outs(head);
    long long last = relay(s, err, sizeof err);
    client_stream_close(s);
    json_t *tail = json_pack("{s:s,s:I}", "error",
                             !strcmp(err, "closed") ? "watch ended: raftd closed the stream" : err,
                             "last_index", (json_int_t)last);
    char *text = json_dumps(tail, JSON_COMPACT);
    json_decref(tail);
    if (text && !raftd_said_why)
        emit(text, strlen(text), -1, 1);
    free(text);
    return 0;
}
