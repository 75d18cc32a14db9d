/*
 * kv-lease - grant, renew, revoke or show a lease from the shell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi_coord.h"
#include "client.h"

#define PROG "kv-lease"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kv-lease [-s SOCKET | -d DATADIR] grant TTL\n"
        "       kv-lease [-s SOCKET | -d DATADIR] renew|revoke|get ID\n"
        "grant prints the new lease's ID (TTL: 1s to 24h, such as 10s or 5m);\n"
        "renew gives it its ttl again; revoke deletes it and every key attached\n"
        "to it; get prints {\"lease\",\"ttl_ms\",\"remaining_ms\",\"keys\"} as JSON.\n" CLIENT_SOCKOPT_USAGE
        "Timeout: $KEYVAL_TIMEOUT_MS milliseconds (default %d).\n"
        "Exit status: 0 done, 1 no such lease (or raftd refused), 2 usage error,\n"
        "5 outcome unknown (grant or revoke sent, no definite answer),\n"
        "111 temporary failure (raftd unreachable, no leader).\n",
        CLIENT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    int c;
    while ((c = getopt(argc, argv, "s:d:h")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        if (c == 'h')
            return usage(stdout), 0;
        return usage(stderr), TOOL_USAGE;
    }
    if (argc - optind != 2) {
        fprintf(stderr, PROG ": expected a command and one argument\n");
        return usage(stderr), TOOL_USAGE;
    }
    const char *cmd = argv[optind], *arg = argv[optind + 1];
    json_t *req;
    char why[256];
    long long v;
    if (!strcmp(cmd, "grant")) {
        json_t *ttl = json_string(arg);
        int bad = cgi_parse_ttl(ttl, &v, why, sizeof why);
        json_decref(ttl);
        if (bad) {
            fprintf(stderr, PROG ": %s\n", why);
            return TOOL_USAGE;
        }
        req = json_pack("{s:s,s:I}", "op", "lease_grant", "ttl_ms", (json_int_t)v);
    } else if (!strcmp(cmd, "renew") || !strcmp(cmd, "revoke") || !strcmp(cmd, "get")) {
        if (cgi_parse_lease_id(arg, strlen(arg), &v) < 0) {
            fprintf(stderr, PROG ": bad lease ID: %s\n", arg);
            return TOOL_USAGE;
        }
        char op[16];
        snprintf(op, sizeof op, "lease_%s", cmd);
        req = json_pack("{s:s,s:I}", "op", op, "lease", (json_int_t)v);
    } else {
        fprintf(stderr, PROG ": unknown command %s\n", cmd);
        return usage(stderr), TOOL_USAGE;
    }
    char sock[4096];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0) {
        json_decref(req);
        return TOOL_USAGE;
    }
    json_t *reply;
    int is_write = !strcmp(cmd, "grant") || !strcmp(cmd, "revoke");
    int rc = client_tool_call(PROG, sock, req, is_write, client_timeout_from_env(), &reply);
    json_decref(req);
    if (rc)
        return rc;
    if (client_reply_code(reply) != 200) {
        rc = client_tool_refused(PROG, cmd, reply);
    } else if (!strcmp(cmd, "grant")) {
        json_t *id = json_object_get(reply, "lease");
        if (json_is_string(id))
            printf("%s\n", json_string_value(id));
        else
            printf("%lld\n", (long long)json_integer_value(id));
    } else if (!strcmp(cmd, "get")) {
        json_object_del(reply, "code");
        char *text = json_dumps(reply, JSON_COMPACT);
        printf("%s\n", text ? text : "{}");
        free(text);
    }
    json_decref(reply);
    return rc;
}
