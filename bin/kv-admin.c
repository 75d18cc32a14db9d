/*
 * kv-admin - membership and leadership of the cluster, through the local
 * raftd: remove a node, hand leadership to a node, print the metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define PROG "kv-admin"
#define ID_MAX 63
#define LEADER_WAIT_MS 3000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kv-admin [-s SOCKET | -d DATADIR] remove ID\n"
            "       kv-admin [-s SOCKET | -d DATADIR] leader ID\n"
            "       kv-admin [-s SOCKET | -d DATADIR] metrics\n"
            "remove ID: removes node ID from the cluster (prints the index).\n"
            "leader ID: hands leadership to node ID and waits up to %d ms until this\n"
            "node follows it.\n"
            "metrics: prints raftd's counters as one JSON object (GET /metrics has\n"
            "them in Prometheus text format).\n" CLIENT_SOCKOPT_USAGE
            "Timeout: $KEYVAL_TIMEOUT_MS milliseconds (default %d).\n"
            "Exit status: 0 done, 1 no such node, 2 usage error, 3 raftd answered with\n"
            "an error (or the transfer did not finish in time), 4 raftd could not be\n"
            "reached, 5 outcome unknown (sent, but no definite answer).\n",
            LEADER_WAIT_MS, CLIENT_TIMEOUT_MS);
}

/* One request; returns an exit status, *reply set on 0. */
static int call(const char *sock, json_t *req, json_t **reply)
{
    char err[512];
    int rc = client_request(sock, req, client_timeout_from_env(), reply, err, sizeof err);
    if (rc == CLIENT_SENT) {
        fprintf(stderr,
                PROG ": outcome unknown (it may or may not have been done): "
                     "raftd at %s: %s\n",
                sock, err);
        return 5;
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": raftd at %s: %s\n", sock, err);
        return 4;
    }
    int code = client_reply_code(*reply);
    if (code == 200)
        return 0;
    const char *e = json_string_value(json_object_get(*reply, "error"));
    const char *oc = json_string_value(json_object_get(*reply, "outcome"));
    fprintf(stderr, PROG ": %s%s (HTTP %d)\n",
            oc && !strcmp(oc, "unknown") ? "outcome unknown: " : "", e ? e : "bad reply from raftd",
            code);
    json_decref(*reply);
    *reply = NULL;
    return oc && !strcmp(oc, "unknown") ? 5 : code == 404 ? 1 : 3;
}

int main(int argc, char **argv)
{
    struct client_sockopt so = {0};
    int c;
    while ((c = getopt(argc, argv, "s:d:h")) != -1) {
        if (client_sockopt_take(&so, c, optarg))
            continue;
        switch (c) {
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int n = argc - optind;
    const char *cmd = n > 0 ? argv[optind] : "";
    int need_id = !strcmp(cmd, "remove") || !strcmp(cmd, "leader");
    if (!(need_id && n == 2) && !(!strcmp(cmd, "metrics") && n == 1)) {
        fprintf(stderr, PROG ": expected remove ID, leader ID or metrics\n");
        usage(stderr);
        return 2;
    }
    const char *id = need_id ? argv[optind + 1] : NULL;
    if (id && (!*id || strlen(id) > ID_MAX)) {
        fprintf(stderr, PROG ": ID must be 1..%d bytes\n", ID_MAX);
        return 2;
    }
    char sock[4096];
    if (client_sockopt_path(&so, PROG, sock, sizeof sock) < 0)
        return 2;
    json_t *req, *reply = NULL;
    int ret;
    if (!strcmp(cmd, "metrics")) {
        req = json_pack("{s:s}", "op", "metrics");
        ret = call(sock, req, &reply);
        json_decref(req);
        if (ret == 0) {
            json_object_del(reply, "code");
            char *s = json_dumps(reply, JSON_COMPACT);
            if (s)
                printf("%s\n", s);
            free(s);
        }
        json_decref(reply);
        return ret;
    }
    if (!strcmp(cmd, "remove")) {
        req = json_pack("{s:s,s:s}", "op", "remove", "id", id);
        ret = call(sock, req, &reply);
        json_decref(req);
        if (ret == 0)
            printf("%lld\n", (long long)json_integer_value(json_object_get(reply, "index")));
        json_decref(reply);
        return ret;
    }
    req = json_pack("{s:s,s:s}", "op", "transfer", "id", id);
    ret = call(sock, req, &reply);
    json_decref(req);
    json_decref(reply);
    if (ret)
        return ret;
    char seen[ID_MAX + 1] = "";
    for (int waited = 0; waited <= LEADER_WAIT_MS; waited += 50) {
        req = json_pack("{s:s}", "op", "status");
        ret = call(sock, req, &reply);
        json_decref(req);
        if (ret)
            return ret == 5 ? 3 : ret; /* a status read changes nothing */
        const char *l = json_string_value(json_object_get(reply, "leader"));
        snprintf(seen, sizeof seen, "%s", l ? l : "");
        json_decref(reply);
        if (!strcmp(seen, id))
            return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr,
            PROG ": leadership transfer to %s did not complete in %d ms "
                 "(leader now: %s)\n",
            id, LEADER_WAIT_MS, *seen ? seen : "none");
    return 3;
}
