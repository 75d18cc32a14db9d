/*
 * kv-del - delete one or more keys, all in one atomic write. Deleting a
 * key that does not exist succeeds (exit 0), as DELETE /key/K answers 200:
 * a script that wants a key gone gets "gone" either way, like rm -f. To
 * ask whether a key exists, use kv-get (exit 1 when it does not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "client.h"

#define PROG "kv-del"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kv-del [-s SOCKET | -d DATADIR] [-v] KEY [KEY ...]\n"
            "Deletes the keys in one atomic write.\n" CLIENT_SOCKOPT_USAGE
            "  -v          print the index of the write\n"
            "Timeout: $KEYVAL_TIMEOUT_MS milliseconds (default %d).\n"
            "Exit status: 0 deleted (also when a key did not exist), 2 usage error,\n"
            "3 raftd answered with an error, 4 raftd could not be reached,\n"
            "5 outcome unknown (sent, but no definite answer: it may have been applied).\n",
            CLIENT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    const char *why;
    int verbose = 0, c;
    while ((c = getopt(argc, argv, "s:d:vh")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind < 1) {
        fprintf(stderr, PROG ": expected at least one KEY\n");
        usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++)
        if (cgi_key_valid(argv[i], strlen(argv[i]), &why) < 0) {
            fprintf(stderr, PROG ": bad key: %s\n", why);
            return 2;
        }
    json_t *req;
    if (argc - optind == 1) {
        req = json_pack("{s:s,s:s}", "op", "del", "key", argv[optind]);
    } else {
        json_t *keys = json_array();
        for (int i = optind; i < argc; i++)
            json_array_append_new(keys, json_string(argv[i]));
        req = json_pack("{s:s,s:o}", "op", "txn", "del", keys);
    }
    char sock[4096], err[512];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0) {
        json_decref(req);
        return 2;
    }
    json_t *reply;
    int rc = client_request(sock, req, client_timeout_from_env(), &reply, err, sizeof err);
    json_decref(req);
    if (rc == CLIENT_SENT) {
        fprintf(stderr,
                PROG ": outcome unknown (the write may or may not "
                     "have been applied): raftd at %s: %s\n",
                sock, err);
        return 5;
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": raftd at %s: %s\n", sock, err);
        return 4;
    }
    int code = client_reply_code(reply), ret = 0;
    const char *e = json_string_value(json_object_get(reply, "error"));
    if (code != 200 && json_is_string(json_object_get(reply, "outcome")) &&
        !strcmp(json_string_value(json_object_get(reply, "outcome")), "unknown")) {
        fprintf(stderr, PROG ": outcome unknown: %s (HTTP %d)\n", e ? e : "bad reply from raftd",
                code);
        ret = 5;
    } else if (code != 200) {
        fprintf(stderr, PROG ": %s (HTTP %d)\n", e ? e : "bad reply from raftd", code);
        ret = 3;
    } else if (verbose) {
        printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "index")));
    }
    json_decref(reply);
    return ret;
}
