/*
 * cgi_coord.h - request parsing of the coordination routes (blocking
 * queries, leases, txn, watch; docs/http-api.md, "Coordination"), shared
 * by the CGI programs and the kv-* tools. Pure: no I/O.
 *
 * Every parser writes a one-line reason into why (capacity whylen) on a
 * bad input; the caller answers 400 with it.
 */
#ifndef KEYVAL_CGI_COORD_H
#define KEYVAL_CGI_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* The wait of a blocking query: default 5 minutes, at most 10. */
#define CGI_WAIT_DEFAULT_MS (5u * 60u * 1000u)
#define CGI_WAIT_MAX_MS (10u * 60u * 1000u)

/* A decimal number 0..INT64_MAX without sign, spaces or leading '+'.
 * Returns 0, or -1. */
int cgi_parse_u64(const char *s, long long *v);

/* ?index=M&wait=DUR of a read. Without index: 0, req unchanged, *wait_ms
 * 0. With index: req gains "index":M and "wait_ms" (DUR, default
 * CGI_WAIT_DEFAULT_MS, at most CGI_WAIT_MAX_MS), *wait_ms is it. wait
 * without index, a bad index or a bad DUR: -1 with why. */
int cgi_blocking_params(const char *query, size_t query_len, json_t *req, long long *wait_ms,
                        char *why, size_t whylen);

/* ?lease=ID of a write: req gains "lease":ID when given. 0, or -1. */
int cgi_lease_param(const char *query, size_t query_len, json_t *req, char *why, size_t whylen);

/* A lease ID from a path segment or an argument: decimal, 1..INT64_MAX.
 * Returns 0, or -1. */
int cgi_parse_lease_id(const char *s, size_t len, long long *id);

/* A lease ttl: a DUR string ("10s") or a JSON integer of seconds, within
 * KV_LEASE_TTL_MIN_MS..KV_LEASE_TTL_MAX_MS. Returns 0 with *ms, or -1. */
int cgi_parse_ttl(const json_t *ttl, long long *ms, char *why, size_t whylen);

/* The body of POST /txn, {"if":[CMP..],"then":[OP..],"else":[OP..]}
 * (docs/coordination.md), checked and turned into the raftd request
 * {"op":"txn",...} in *req (caller decref's; body is not consumed). The
 * limits: KV_BATCH_MAX compares, KV_BATCH_MAX keys in all ops together
 * (413 then), keys as kv_key_ok, values UTF-8 strings. Returns 0, or the
 * HTTP status (400 or 413) with why. */
int cgi_txn_request(const json_t *body, json_t **req, char *why, size_t whylen);

#endif
