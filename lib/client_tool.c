/*
 * client_tool.c - one raftd call of a coordination tool (kv-watch,
 * kv-lease, kv-lock) with its failures turned into the tools' exit
 * statuses (client.h).
 */
#include "client.h"

#include <stdio.h>
#include <string.h>

int client_tool_call(const char *prog, const char *sock, json_t *req, int is_write, int timeout_ms,
                     json_t **reply)
{
    char err[512];
    int rc = client_request(sock, req, timeout_ms, reply, err, sizeof err);
    if (rc == CLIENT_SENT && is_write) {
        fprintf(stderr, "%s: outcome unknown (sent, no answer): raftd at %s: %s\n", prog, sock,
                err);
        return TOOL_UNKNOWN;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: raftd at %s: %s\n", prog, sock, err);
        return TOOL_TEMP;
    }
    const char *oc = json_string_value(json_object_get(*reply, "outcome"));
    if (client_reply_code(*reply) != 200 && oc && !strcmp(oc, "unknown")) {
        const char *e = json_string_value(json_object_get(*reply, "error"));
        fprintf(stderr, "%s: outcome unknown: %s\n", prog, e ? e : "no definite answer");
        json_decref(*reply);
        *reply = NULL;
        return TOOL_UNKNOWN;
    }
    return 0;
}

int client_tool_refused(const char *prog, const char *what, const json_t *reply)
{
    int code = client_reply_code(reply);
    const char *e = json_string_value(json_object_get(reply, "error"));
    fprintf(stderr, "%s: %s: %s (HTTP %d)\n", prog, what, e ? e : "bad reply from raftd", code);
    return code >= 500 ? TOOL_TEMP : TOOL_NO;
}
