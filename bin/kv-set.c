/*
 * kv-set - set one or more keys, all in one atomic write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "client.h"

#define PROG "kv-set"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kv-set [-s SOCKET | -d DATADIR] [-v] [-l LEASE] KEY VALUE [KEY VALUE ...]\n"
        "       kv-set [-s SOCKET | -d DATADIR] [-v] [-l LEASE] KEY < FILE\n"
        "Sets the keys to the values in one atomic write (all or none). With only\n"
        "KEY, the value is read from standard input (at most 4 MiB, UTF-8).\n" CLIENT_SOCKOPT_USAGE
        "  -v          print the index of the write\n"
        "  -l LEASE    attach the keys to lease LEASE (kv-lease grant); they are\n"
        "              deleted when it ends (an unknown lease: error, nothing set)\n"
        "Timeout: $KEYVAL_TIMEOUT_MS milliseconds (default %d).\n"
        "Exit status: 0 written, 2 usage error, 3 raftd answered with an error\n"
        "(for example no leader), 4 raftd could not be reached, 5 outcome unknown\n"
        "(the request was sent but no definite answer came: it may have been applied).\n",
        CLIENT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    const char *why;
    int verbose = 0, c;
    long long lease = 0;
    while ((c = getopt(argc, argv, "s:d:vl:h")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 'v': verbose = 1; break;
        case 'l':
            if (cgi_parse_lease_id(optarg, strlen(optarg), &lease) < 0) {
                fprintf(stderr, PROG ": bad lease ID: %s\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int n = argc - optind;
    if (n < 1 || (n > 1 && n % 2 != 0)) {
        fprintf(stderr, PROG ": expected KEY VALUE pairs, or one KEY with the "
                             "value on standard input\n");
        usage(stderr);
        return 2;
    }
    json_t *kv = json_object();
    if (n == 1) {
        const char *key = argv[optind];
        if (cgi_key_valid(key, strlen(key), &why) < 0) {
            fprintf(stderr, PROG ": bad key: %s\n", why);
            json_decref(kv);
            return 2;
        }
        if (isatty(STDIN_FILENO))
            fprintf(stderr,
                    PROG ": reading the value of %s from standard input "
                         "(end it with Ctrl-D)\n",
                    key);
        size_t cap = CGI_BODY_MAX + 1, len = 0;
        char *buf = malloc(cap);
        if (!buf) {
            fprintf(stderr, PROG ": out of memory\n");
            return 3;
        }
        size_t r;
        while ((r = fread(buf + len, 1, cap - len, stdin)) > 0)
            len += r;
        if (ferror(stdin)) {
            fprintf(stderr, PROG ": read standard input: %s\n", strerror(errno));
            free(buf);
            json_decref(kv);
            return 3;
        }
        if (len > CGI_BODY_MAX) {
            fprintf(stderr, PROG ": value on standard input is larger than 4 MiB\n");
            free(buf);
            json_decref(kv);
            return 2;
        }
        if (memchr(buf, '\0', len) || !cgi_utf8_valid(buf, len)) {
            fprintf(stderr, PROG ": value must be valid UTF-8 without NUL bytes\n");
            free(buf);
            json_decref(kv);
            return 2;
        }
        json_object_set_new(kv, key, json_stringn(buf, len));
        free(buf);
    } else {
        for (int i = optind; i < argc; i += 2) {
            const char *key = argv[i], *val = argv[i + 1];
            if (cgi_key_valid(key, strlen(key), &why) < 0) {
                fprintf(stderr, PROG ": bad key: %s\n", why);
                json_decref(kv);
                return 2;
            }
            if (!cgi_utf8_valid(val, strlen(val)) || strlen(val) > CGI_BODY_MAX) {
                fprintf(stderr,
                        PROG ": value for %s must be valid UTF-8 of at "
                             "most 4 MiB\n",
                        key);
                json_decref(kv);
                return 2;
            }
            json_object_set_new(kv, key, json_string(val));
        }
    }
    char sock[4096], err[512];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0) {
        json_decref(kv);
        return 2;
    }
    json_t *req = json_pack("{s:s,s:o}", "op", "set", "kv", kv), *reply;
    if (lease)
        json_object_set_new(req, "lease", json_integer(lease));
    int rc = client_request(sock, req, client_timeout_from_env(), &reply, err, sizeof err);
    json_decref(req);
    if (rc == -2) {
        fprintf(stderr, PROG ": %s\n", err);
        return 3;
    }
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
    const char *oc = json_string_value(json_object_get(reply, "outcome"));
    if (code != 200 && oc && !strcmp(oc, "unknown")) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, PROG ": outcome unknown: %s (HTTP %d)\n", e ? e : "bad reply from raftd",
                code);
        ret = 5;
    } else if (code != 200) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, PROG ": %s (HTTP %d)\n", e ? e : "bad reply from raftd", code);
        ret = 3;
    } else if (verbose) {
        printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "index")));
    }
    json_decref(reply);
    return ret;
}
