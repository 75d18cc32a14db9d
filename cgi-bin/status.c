/*
 * status - CGI: GET /status (raftd's status object), GET /health (200 or
 * 503 for a load balancer) and GET /metrics (Prometheus text format).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "status"
/* GET /health: a node more than this many entries behind its commit index
 * in applying is unhealthy (?max_lag=N overrides, 0..1000000000). */
#define HEALTH_MAX_LAG 100

/* The query parameters of each route: one line each. */
static const char *const health_params[] = {
    "max_lag",
    NULL,
};
static const char *const no_params[] = {
    NULL,
};

static json_int_t int_of(const json_t *o, const char *name, json_int_t dflt)
{
    json_t *v = json_object_get(o, name);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int health(const cgi_target *t)
{
    char buf[32];
    const char *why;
    long long max_lag = HEALTH_MAX_LAG;
    int q = cgi_query_get(t->query, t->query_len, "max_lag", buf, sizeof buf, &why);
    if (q < 0)
        return cgi_error(stdout, 400, why), 0;
    if (q > 0) {
        char *end;
        errno = 0;
        max_lag = strtoll(buf, &end, 10);
        if (errno || !*buf || *end || max_lag < 0 || max_lag > 1000000000)
            return cgi_error(stdout, 400, "max_lag must be an integer 0..1000000000"), 0;
    }
    json_t *req = json_pack("{s:s}", "op", "status"), *st = NULL;
    int code = cgi_call_raftd(PROG, req, &st); /* writes its own 503 on failure */
    json_decref(req);
    if (!st)
        return 0;
    if (code != 200) {
        json_object_del(st, "code");
        cgi_respond(stdout, code, NULL, st);
        json_decref(st);
        return 0;
    }
    const char *leader = json_string_value(json_object_get(st, "leader"));
    const char *state = json_string_value(json_object_get(st, "state"));
    json_int_t contact = int_of(st, "last_contact_ms", -1);
    json_int_t eto = int_of(st, "election_timeout_ms", 0);
    json_int_t commit = int_of(st, "commit_index", 0);
    json_int_t applied = int_of(st, "applied_index", 0);
    json_int_t lag = commit > applied ? commit - applied : 0;
    char reason[400] = "";
    if (json_is_true(json_object_get(st, "removed")))
        snprintf(reason, sizeof reason,
                 "removed from the cluster (%s): restart it with its keyval -join command "
                 "line, or POST /join with its node_id to a member",
                 json_string_value(json_object_get(st, "removed_reason"))
                     ? json_string_value(json_object_get(st, "removed_reason"))
                     : "");
    else if (!leader || !*leader)
        snprintf(reason, sizeof reason, "no leader known");
    else if (contact < 0 || contact > eto)
        snprintf(reason, sizeof reason,
                 "leader %s not heard from for %lld ms (election timeout %lld ms)", leader,
                 (long long)contact, (long long)eto);
    else if (lag > max_lag)
        snprintf(reason, sizeof reason,
                 "applied index %lld is %lld entries behind commit index %lld (max %lld)",
                 (long long)applied, (long long)lag, (long long)commit, max_lag);
    json_t *b = json_pack("{s:s,s:O,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "status",
                          *reason ? "unhealthy" : "ok", "id",
                          json_object_get(st, "id") ? json_object_get(st, "id") : json_null(),
                          "state", state ? state : "", "leader", leader ? leader : "",
                          "last_contact_ms", contact, "election_timeout_ms", eto, "commit_index",
                          commit, "applied_index", applied, "lag", lag);
    json_decref(st);
    if (b && *reason)
        json_object_set_new(b, "error", json_string(reason));
    cgi_respond(stdout, *reason ? 503 : 200, NULL, b);
    json_decref(b);
    return 0;
}

/* A number in Prometheus text format. */
static void prom_num(FILE *out, double v)
{
    if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", out);
    else if (isnan(v))
        fputs("NaN", out);
    else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        fprintf(out, "%.0f", v);
    else
        fprintf(out, "%.9g", v);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void prom_label(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out), fputc(*s, out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static int valid_metric_name(const char *n)
{
    if (!n || !*n || (n[0] >= '0' && n[0] <= '9'))
        return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == ':'))
            return 0;
    return 1;
}

static int metrics(void)
{
    json_t *req = json_pack("{s:s}", "op", "metrics"), *rep = NULL;
    int code = cgi_call_raftd(PROG, req, &rep);
    json_decref(req);
    if (!rep)
        return 0;
    json_t *arr = json_object_get(rep, "metrics");
    if (code != 200 || !json_is_array(arr)) {
        json_object_del(rep, "code");
        if (code == 200)
            cgi_error(stdout, 502, "raftd sent no metrics");
        else
            cgi_respond(stdout, code, NULL, rep);
        json_decref(rep);
        return 0;
    }
    char *text = NULL;
    size_t tlen = 0;
    FILE *o = open_memstream(&text, &tlen);
    if (!o) {
        json_decref(rep);
        return cgi_error(stdout, 500, "out of memory"), 0;
    }
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *help = json_string_value(json_object_get(m, "help"));
        if (!valid_metric_name(name) || !type)
            continue;
        if (help)
            fprintf(o, "# HELP %s %s\n", name, help);
        fprintf(o, "# TYPE %s %s\n", name, type);
        if (!strcmp(type, "histogram")) {
            json_t *b = json_object_get(m, "buckets"), *e;
            size_t j;
            json_array_foreach(b, j, e)
            {
                fprintf(o, "%s_bucket{le=\"", name);
                prom_num(o, json_number_value(json_array_get(e, 0)));
                fputs("\"} ", o);
                prom_num(o, json_number_value(json_array_get(e, 1)));
                fputc('\n', o);
            }
            double count = json_number_value(json_object_get(m, "count"));
            fprintf(o, "%s_bucket{le=\"+Inf\"} ", name);
            prom_num(o, count);
            fprintf(o, "\n%s_sum ", name);
            prom_num(o, json_number_value(json_object_get(m, "sum")));
            fprintf(o, "\n%s_count ", name);
            prom_num(o, count);
            fputc('\n', o);
        } else if (json_is_array(json_object_get(m, "series"))) {
            json_t *e;
            size_t j;
            json_array_foreach(json_object_get(m, "series"), j, e)
            {
                const char *k;
                json_t *lv;
                int first = 1;
                fputs(name, o);
                json_object_foreach(json_object_get(e, "labels"), k, lv)
                {
                    if (!valid_metric_name(k) || !json_is_string(lv))
                        continue;
                    fprintf(o, "%s%s=\"", first ? "{" : ",", k);
                    prom_label(o, json_string_value(lv));
                    fputc('"', o);
                    first = 0;
                }
                fputs(first ? " " : "} ", o);
                prom_num(o, json_number_value(json_object_get(e, "value")));
                fputc('\n', o);
            }
        } else {
            fprintf(o, "%s ", name);
            prom_num(o, json_number_value(json_object_get(m, "value")));
            fputc('\n', o);
        }
    }
    json_decref(rep);
    if (fclose(o) != 0 || !text) {
        free(text);
        return cgi_error(stdout, 500, "out of memory"), 0;
    }
    fprintf(stdout, "Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
                    "charset=utf-8\r\n\r\n");
    fwrite(text, 1, tlen, stdout);
    fflush(stdout);
    free(text);
    return 0;
}

static int handle(void)
{
    cgi_target t;
    const char *why;
    if (cgi_split_target(getenv("REQUEST_URI"), &t, &why) < 0)
        return cgi_error(stdout, 400, why), 0;
    int is_health = cgi_path_is(t.path, t.path_len, "/health");
    if (cgi_query_known(&t, is_health ? health_params : no_params) < 0)
        return 0;
    if (is_health)
        return health(&t);
    if (cgi_path_is(t.path, t.path_len, "/metrics"))
        return metrics();
    if (!cgi_path_is(t.path, t.path_len, "/status"))
        return cgi_error(stdout, 404, "not found"), 0;
    json_t *req = json_pack("{s:s}", "op", "status");
    cgi_call_raftd(PROG, req, NULL);
    json_decref(req);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
