/*
 * cgi_coord.c - parsing of the coordination requests: blocking-query and
 * lease parameters, lease ttls and ids, the txn body (cgi_coord.h).
 */
#include "cgi_coord.h"
#include "cgi.h"
#include "duration.h"
#include "kvrules.h"

#include <stdio.h>
#include <string.h>

int cgi_parse_u64(const char *s, long long *v)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    unsigned long long x = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        x = x * 10 + (unsigned long long)(*c - '0');
    }
    if (x > (unsigned long long)INT64_MAX)
        return -1;
    *v = (long long)x;
    return 0;
}

int cgi_blocking_params(const char *query, size_t query_len, json_t *req, long long *wait_ms,
                        char *why, size_t whylen)
{
    char idx[32], dur[32];
    const char *w;
    *wait_ms = 0;
    int ri = cgi_query_get(query, query_len, "index", idx, sizeof idx, &w);
    int rw = cgi_query_get(query, query_len, "wait", dur, sizeof dur, &w);
    long long m;
    if (ri < 0 || (ri > 0 && cgi_parse_u64(idx, &m) < 0)) {
        snprintf(why, whylen,
                 "bad index parameter: expected a decimal index "
                 "(as sent in X-Keyval-Index)");
        return -1;
    }
    if (rw != 0 && ri == 0) {
        snprintf(why, whylen,
                 "bad wait parameter: wait needs index (the "
                 "X-Keyval-Index of an earlier answer)");
        return -1;
    }
    if (ri == 0)
        return 0;
    uint64_t ms = CGI_WAIT_DEFAULT_MS;
    if (rw < 0) {
        snprintf(why, whylen, "bad wait parameter: %s", w);
        return -1;
    }
    if (rw > 0) {
        int e = duration_parse_ms(dur, CGI_WAIT_MAX_MS, &ms);
        if (e != DURATION_OK) {
            snprintf(why, whylen, "bad wait parameter: %s%s", duration_strerror(e),
                     e == DURATION_ERANGE ? " (at most 10m)" : "");
            return -1;
        }
    }
    json_object_set_new(req, "index", json_integer(m));
    json_object_set_new(req, "wait_ms", json_integer((json_int_t)ms));
    *wait_ms = (long long)ms;
    return 0;
}

int cgi_parse_lease_id(const char *s, size_t len, long long *id)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (cgi_parse_u64(buf, id) < 0 || *id < 1)
        return -1;
    return 0;
}

int cgi_lease_param(const char *query, size_t query_len, json_t *req, char *why, size_t whylen)
{
    char v[32];
    const char *w;
    long long id;
    int r = cgi_query_get(query, query_len, "lease", v, sizeof v, &w);
    if (r == 0)
        return 0;
    if (r < 0 || cgi_parse_lease_id(v, strlen(v), &id) < 0) {
        snprintf(why, whylen,
                 "bad lease parameter: expected a lease ID (a "
                 "decimal number from POST /lease)");
        return -1;
    }
    json_object_set_new(req, "lease", json_integer(id));
    return 0;
}

int cgi_parse_ttl(const json_t *ttl, long long *ms, char *why, size_t whylen)
{
    uint64_t v;
    if (json_is_string(ttl)) {
        int e = duration_parse_ms(json_string_value(ttl), UINT64_MAX, &v);
        if (e != DURATION_OK) {
            snprintf(why, whylen, "bad ttl: %s", duration_strerror(e));
            return -1;
        }
    } else if (json_is_integer(ttl) && json_integer_value(ttl) >= 0 &&
               json_integer_value(ttl) <= KV_LEASE_TTL_MAX_MS / 1000) {
        v = (uint64_t)json_integer_value(ttl) * 1000;
    } else {
        snprintf(why, whylen,
                 "bad ttl: expected a duration such as \"10s\" "
                 "(or a number of seconds)");
        return -1;
    }
    if (v < KV_LEASE_TTL_MIN_MS || v > KV_LEASE_TTL_MAX_MS) {
        snprintf(why, whylen, "bad ttl: must be from 1s to 24h");
        return -1;
    }
    *ms = (long long)v;
    return 0;
}

/* One compare: {"key":K} and exactly one of "index":N (N >= 0; 0 means
 * absent), "absent":true, "value":V. Returns 0 or -1 with why. */
static int check_compare(const json_t *c, size_t i, char *why, size_t whylen)
{
    const char *k;
    const json_t *v;
    int tests = 0;
    if (!json_is_object(c)) {
        snprintf(why, whylen, "if[%zu]: not an object", i);
        return -1;
    }
    json_t *key = json_object_get(c, "key");
    if (!json_is_string(key) || !kv_key_ok(json_string_value(key), json_string_length(key))) {
        snprintf(why, whylen, "if[%zu]: \"key\" must be a key (1..%d bytes)", i, KV_KEY_MAX);
        return -1;
    }
    json_object_foreach ((json_t *)c, k, v) {
        if (!strcmp(k, "key"))
            continue;
        if (!strcmp(k, "index") && json_is_integer(v) && json_integer_value(v) >= 0)
            tests++;
        else if (!strcmp(k, "absent") && json_is_true(v))
            tests++;
        else if (!strcmp(k, "value") && json_is_string(v) && json_string_length(v) <= KV_VALUE_MAX)
            tests++;
        else {
            snprintf(why, whylen,
                     "if[%zu]: bad member \"%s\" (expected \"index\":N, "
                     "\"absent\":true or \"value\":V)",
                     i, k);
            return -1;
        }
    }
    if (tests != 1) {
        snprintf(why, whylen, "if[%zu]: give exactly one of index, absent, value", i);
        return -1;
    }
    return 0;
}

/* One op: {"set":{K:V..}[,"lease":ID]} or {"del":K}. Adds its keys to
 * *nkeys. Returns 0 or -1 with why. */
static int check_op(const json_t *op, const char *arm, size_t i, size_t *nkeys, char *why,
                    size_t whylen)
{
    const char *k;
    json_t *v;
    json_t *set = json_object_get(op, "set"), *del = json_object_get(op, "del");
    json_t *lease = json_object_get(op, "lease");
    size_t want = (set ? 1 : 0) + (del ? 1 : 0) + (lease ? 1 : 0);
    if (!json_is_object(op) || (set ? 1 : 0) + (del ? 1 : 0) != 1 || json_object_size(op) != want ||
        (lease && !set)) {
        snprintf(why, whylen,
                 "%s[%zu]: expected {\"set\":{K:V,..}} (with optional "
                 "\"lease\") or {\"del\":K}",
                 arm, i);
        return -1;
    }
    if (lease) {
        long long id;
        const char *s = json_string_value(lease);
        if (!(json_is_integer(lease) && json_integer_value(lease) > 0) &&
            !(s && cgi_parse_lease_id(s, strlen(s), &id) == 0)) {
            snprintf(why, whylen, "%s[%zu]: bad lease (expected a lease ID)", arm, i);
            return -1;
        }
    }
    if (del) {
        if (!json_is_string(del) || !kv_key_ok(json_string_value(del), json_string_length(del))) {
            snprintf(why, whylen, "%s[%zu]: \"del\" must be a key", arm, i);
            return -1;
        }
        (*nkeys)++;
        return 0;
    }
    if (!json_is_object(set) || json_object_size(set) == 0) {
        snprintf(why, whylen, "%s[%zu]: \"set\" must be an object of keys and values", arm, i);
        return -1;
    }
    json_object_foreach (set, k, v) {
        if (!kv_key_ok(k, strlen(k)) || !cgi_utf8_valid(k, strlen(k))) {
            snprintf(why, whylen, "%s[%zu]: bad key (1..%d bytes of UTF-8)", arm, i, KV_KEY_MAX);
            return -1;
        }
        if (!json_is_string(v) || json_string_length(v) > KV_VALUE_MAX) {
            snprintf(why, whylen,
                     "%s[%zu]: value of \"%.64s\" must be a string of at most "
                     "1 MiB",
                     arm, i, k);
            return -1;
        }
    }
    *nkeys += json_object_size(set);
    return 0;
}

int cgi_txn_request(const json_t *body, json_t **req, char *why, size_t whylen)
{
    static const char *const arms[] = {"if", "then", "else"};
    const char *k;
    json_t *v;
    size_t nkeys = 0;
    *req = NULL;
    if (!json_is_object(body)) {
        snprintf(why, whylen,
                 "body must be a JSON object {\"if\":[..],\"then\":[..],"
                 "\"else\":[..]}");
        return 400;
    }
    json_object_foreach ((json_t *)body, k, v) {
        if (strcmp(k, "if") && strcmp(k, "then") && strcmp(k, "else")) {
            snprintf(why, whylen, "unknown member \"%.64s\" (expected if, then, else)", k);
            return 400;
        }
        if (!json_is_array(v)) {
            snprintf(why, whylen, "\"%s\" must be an array", k);
            return 400;
        }
    }
    json_t *ifs = json_object_get(body, "if");
    if (json_array_size(ifs) > KV_BATCH_MAX) {
        snprintf(why, whylen, "too many compares (%zu, at most %d)", json_array_size(ifs),
                 KV_BATCH_MAX);
        return 413;
    }
    for (size_t i = 0; i < json_array_size(ifs); i++)
        if (check_compare(json_array_get(ifs, i), i, why, whylen) < 0)
            return 400;
    for (int a = 1; a < 3; a++) {
        json_t *ops = json_object_get(body, arms[a]);
        for (size_t i = 0; i < json_array_size(ops); i++)
            if (check_op(json_array_get(ops, i), arms[a], i, &nkeys, why, whylen) < 0)
                return 400;
    }
    if (nkeys > KV_BATCH_MAX) {
        snprintf(why, whylen, "too many keys in the operations (%zu, at most %d)", nkeys,
                 KV_BATCH_MAX);
        return 413;
    }
    json_t *r = json_pack("{s:s}", "op", "txn");
    for (int a = 0; a < 3; a++) {
        json_t *arr = json_object_get(body, arms[a]);
        json_object_set_new(r, arms[a], arr ? json_deep_copy(arr) : json_array());
    }
    *req = r;
    return 0;
}
