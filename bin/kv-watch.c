/*
 * kv-watch - print every change of a key (or of the keys under a prefix)
 * as one JSON line, for ever; reconnects to the local raftd and resumes
 * after the last change it printed, so that nothing is missed or repeated
 * across a leader change or a restart of the node.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"

#define PROG "kv-watch"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kv-watch [-s SOCKET | -d DATADIR] [-p] [-i INDEX] KEY|PREFIX\n"
        "Prints each change of KEY as one JSON object per line, in index order:\n"
        "{\"index\":I,\"op\":\"set\",\"key\":K,\"value\":V} or {\"index\":I,\"op\":\"del\",\"key\":K}\n"
        "(\"expired\":true when a lease ended). Runs until killed; when the node's\n"
        "raftd goes away it reconnects and resumes after the last change printed.\n" CLIENT_SOCKOPT_USAGE
        "  -p          watch every key that starts with PREFIX\n"
        "  -i INDEX    start with the changes after INDEX (default: from now on)\n"
        "Exit status: 1 the changes after INDEX are no longer kept (compacted),\n"
        "2 usage error; otherwise it does not exit by itself.\n");
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Where to resume: every change with index <= done has been printed, and
 * of index done+1, the first skip changes. */
struct pos {
    long long done;
    long long skip;
};

/* One connection: prints events until the stream ends. Returns 0 to
 * reconnect, or an exit status. */
static int watch_once(const char *sock, json_t *base, struct pos *pos, int *started, int *quiet)
{
    char err[512];
    json_t *req = json_deep_copy(base), *first;
    if (*started)
        json_object_set_new(req, "from", json_integer(pos->done));
    client_stream *s = client_stream_open(sock, req, client_timeout_from_env(), &first, err,
                                          sizeof err);
    json_decref(req);
    if (!s) {
        if (!*quiet)
            fprintf(stderr, PROG ": raftd at %s: %s (retrying)\n", sock, err);
        *quiet = 1;
        return 0;
    }
    int code = client_reply_code(first);
    if (code != 200) {
        const char *e = json_string_value(json_object_get(first, "error"));
        fprintf(stderr, PROG ": %s (HTTP %d)%s\n", e ? e : "refused", code,
                code >= 500 ? " (retrying)" : "");
        json_decref(first);
        client_stream_close(s);
        return code == 410 || code < 500 ? TOOL_NO : 0;
    }
    if (!*started) { /* from now on: the store's index at the start */
        pos->done = (long long)json_integer_value(json_object_get(first, "index"));
        pos->skip = 0;
        *started = 1;
    }
    json_decref(first);
    if (*quiet)
        fprintf(stderr, PROG ": connected to %s again\n", sock);
    *quiet = 0;
    long long seen_at_next = 0; /* events of index done+1 seen on this connection */
    const char *line;
    size_t len;
    while (client_stream_next(s, -1, &line, &len, err, sizeof err) == 1) {
        json_t *ev = json_loadb(line, len, 0, NULL);
        json_t *ix = json_object_get(ev, "index");
        if (!json_is_integer(ix) || json_object_get(ev, "error")) {
            fprintf(stderr, PROG ": raftd ended the watch: %.*s (resuming)\n", (int)len, line);
            json_decref(ev);
            break;
        }
        long long i = (long long)json_integer_value(ix);
        json_decref(ev);
        if (i <= pos->done)
            continue; /* cannot happen: raftd sends only after from */
        if (i == pos->done + 1 && seen_at_next < pos->skip) {
            seen_at_next++; /* printed before the reconnect */
            continue;
        }
        fwrite(line, 1, len, stdout);
        putchar('\n');
        if (fflush(stdout) != 0)
            exit(0);
        /* several changes share one index: resume from before it */
        if (i == pos->done + 1) {
            pos->skip++;
            seen_at_next++;
        } else {
            pos->done = i - 1;
            pos->skip = 1;
            seen_at_next = 1;
        }
    }
    client_stream_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    int prefix = 0, c, started = 0;
    struct pos pos = {0, 0};
    while ((c = getopt(argc, argv, "s:d:pi:h")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 'p': prefix = 1; break;
        case 'i':
            if (cgi_parse_u64(optarg, &pos.done) < 0) {
                fprintf(stderr, PROG ": bad index: %s\n", optarg);
                return TOOL_USAGE;
            }
            started = 1;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return TOOL_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, PROG ": expected one KEY or PREFIX\n");
        return usage(stderr), TOOL_USAGE;
    }
    const char *k = argv[optind], *why;
    if (!(prefix && !*k) && cgi_key_valid(k, strlen(k), &why) < 0) {
        fprintf(stderr, PROG ": bad key: %s\n", why);
        return TOOL_USAGE;
    }
    char sock[4096];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0)
        return TOOL_USAGE;
    json_t *base = json_pack("{s:s,s:s}", "op", "watch", prefix ? "prefix" : "key", k);
    int quiet = 0, backoff = 100;
    for (;;) {
        long long before = pos.done + pos.skip;
        int rc = watch_once(sock, base, &pos, &started, &quiet);
        if (rc) {
            json_decref(base);
            return rc;
        }
        backoff = pos.done + pos.skip != before ? 100 : backoff * 2 > 2000 ? 2000 : backoff * 2;
        sleep_ms(backoff);
    }
}
