/*
 * kv-get - print the value of a key, read from the local raftd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "client.h"

#define PROG "kv-get"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kv-get [-s SOCKET | -d DATADIR] [-S] [-n] [-i] KEY\n"
            "Prints the value of KEY followed by a newline.\n" CLIENT_SOCKOPT_USAGE
            "  -S          stale read: answer from the local copy at once\n"
            "              (default: linearizable, confirmed with the leader)\n"
            "  -n          no newline after the value\n"
            "  -i          print the index of the key's last change instead\n"
            "Timeout: $KEYVAL_TIMEOUT_MS milliseconds (default %d).\n"
            "Exit status: 0 found, 1 key not found, 2 usage error,\n"
            "3 raftd answered with an error, 4 raftd could not be reached.\n",
            CLIENT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    int stale = 0, nonl = 0, want_index = 0, c;
    while ((c = getopt(argc, argv, "s:d:Snih")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 'S': stale = 1; break;
        case 'n': nonl = 1; break;
        case 'i': want_index = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, PROG ": expected exactly one KEY\n");
        usage(stderr);
        return 2;
    }
    const char *key = argv[optind], *why;
    if (cgi_key_valid(key, strlen(key), &why) < 0) {
        fprintf(stderr, PROG ": bad key: %s\n", why);
        return 2;
    }
    char sock[4096], err[512];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0)
        return 2;
    json_t *req = json_pack("{s:s,s:s}", "op", "get", "key", key), *reply;
    if (stale)
        json_object_set_new(req, "level", json_string("stale"));
    int rc = client_request(sock, req, client_timeout_from_env(), &reply, err, sizeof err);
    json_decref(req);
    if (rc < 0) {
        fprintf(stderr, PROG ": raftd at %s: %s\n", sock, err);
        return 4;
    }
    int code = client_reply_code(reply);
    json_t *val = json_object_get(reply, "value");
    int ret = 0;
    if (code == 404) {
        fprintf(stderr, PROG ": %s: key not found\n", key);
        ret = 1;
    } else if (code != 200 || !json_is_string(val)) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, PROG ": %s: %s (HTTP %d)\n", key, e ? e : "bad reply from raftd", code);
        ret = 3;
    } else if (want_index) {
        printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "index")));
    } else {
        fwrite(json_string_value(val), 1, json_string_length(val), stdout);
        if (!nonl)
            putchar('\n');
    }
    json_decref(reply);
    if (fflush(stdout) != 0) {
        fprintf(stderr, PROG ": write to stdout failed\n");
        return 3;
    }
    return ret;
}
