/*
 * cgi.h - helpers for the CGI programs behind lighttpd (mod_cgi).
 *
 * Paths come from REQUEST_URI (the original request target, which lighttpd
 * keeps unchanged through url.rewrite), never from PATH_INFO: lighttpd
 * decodes %2F there. We split the target at the first '?', match the route
 * on the raw path and percent-decode the key ourselves.
 *
 * Nothing here calls into the Raft core or storage.
 */
#ifndef KEYVAL_CGI_H
#define KEYVAL_CGI_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <jansson.h>
#include "kvrules.h"

/* The old name of KV_KEY_MAX, still used by tests/test_cgi.c and
 * tests/fuzz/fuzz_cgi.c; new code says KV_KEY_MAX. */
#define CGI_KEY_MAX KV_KEY_MAX
#define CGI_BODY_MAX (4u * 1024u * 1024u) /* request body limit */
#define CGI_URI_MAX 8192                  /* whole REQUEST_URI */

/* Percent-decodes in[0..inlen) into out (capacity outcap, NUL-terminated).
 * '+' is kept as '+' unless plus_is_space. Returns 0 and sets *outlen,
 * or -1 with *why on a bad escape ("%" not followed by two hex digits),
 * a decoded NUL byte, or output longer than outcap-1. */
int cgi_pct_decode(const char *in, size_t inlen, int plus_is_space, char *out, size_t outcap,
                   size_t *outlen, const char **why);

/* Checks a decoded key: 1..KV_KEY_MAX bytes, no NUL, valid UTF-8.
 * Returns 0 or -1 with *why. */
int cgi_key_valid(const char *key, size_t len, const char **why);

/* Nonzero when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int cgi_utf8_valid(const char *s, size_t len);

/* The raw path and query of a request target ("/key/a%2Fb?level=stale"). */
typedef struct cgi_target {
    const char *path; /* points into the target; not NUL-terminated */
    size_t path_len;
    const char *query; /* after '?', or "" */
    size_t query_len;
} cgi_target;

/* Splits uri at the first '?' (also drops a '#fragment'). Returns -1 with
 * *why when uri is NULL, empty, does not start with '/', is longer than
 * CGI_URI_MAX or contains control bytes. */
int cgi_split_target(const char *uri, cgi_target *t, const char **why);

/* Matches a raw path against "/key/<escaped key>". Returns 1 and the decoded
 * key in key (capacity keycap >= KV_KEY_MAX+1) when it matches and the key
 * is valid; 0 when the path is not of that form; -1 with *why when it is but
 * the key is bad (bad escape, empty, too long, not UTF-8). */
int cgi_match_key_path(const char *path, size_t path_len, char *key, size_t keycap, size_t *keylen,
                       const char **why);

/* Nonzero when the raw path equals name ("/key", "/status", ...), ignoring
 * one trailing '/'. */
int cgi_path_is(const char *path, size_t path_len, const char *name);

/* Looks up query parameter name (first occurrence) in a raw query string and
 * decodes its value ('+' means space) into out. Returns 1 found, 0 absent,
 * -1 with *why on a bad escape or a value longer than outcap-1. A parameter
 * without '=' has the value "". */
int cgi_query_get(const char *query, size_t query_len, const char *name, char *out, size_t outcap,
                  const char **why);

/* Reads the request body from fd according to content_length (the
 * CONTENT_LENGTH variable; NULL or "" means no body). Rejects a length that
 * is not a plain decimal number (400), above max (413), or a short body
 * (400). On success returns 0 with a malloc'ed, NUL-terminated *body of
 * *len bytes; on failure returns the HTTP status and sets *why. */
int cgi_read_body(int fd, const char *content_length, size_t max, char **body, size_t *len,
                  const char **why);

/* When set (FastCGI mode, lib/cgi_main.c), cgi_read_body reads the body
 * through it instead of from fd: like read(2), returns bytes read, 0 at
 * the end, -1 on error. */
extern ssize_t (*cgi_body_reader)(void *buf, size_t n);

/* Parses an entity tag such as "12" or W/"12" or 12 into an index.
 * Returns 0 and *index, or -1. "*" is not handled here. */
int cgi_parse_etag(const char *s, long long *index);

/* Writes a complete CGI response to out: "Status: N Reason", Content-Type
 * application/json, the extra header lines (each "Name: value", may be
 * NULL-terminated array or NULL), then body as compact JSON with no
 * trailing newline, byte for byte what the seed sends for GET /key/K
 * ({"K":"V"}). When body is NULL, writes {}. Returns 0, or -1 when the write failed. */
int cgi_respond(FILE *out, int status, const char *const *headers, const json_t *body);

/* Writes {"error": msg} with status. */
int cgi_error(FILE *out, int status, const char *msg);

/* Writes {"error": "<prefix>: <detail>"} with status. */
int cgi_errorf2(FILE *out, int status, const char *prefix, const char *detail);

/* Reason phrase of an HTTP status ("Not Found"), "Unknown" otherwise. */
const char *cgi_reason(int status);

/* Sends req to raftd at $KEYVAL_SOCKET and relays the reply: status from
 * "code", the rest of the object as the body. On a transport failure
 * writes 503 {"error":"raftd unavailable: ..."} and logs to stderr
 * (lighttpd's error log), except that a write (cgi_is_write_request)
 * whose request was sent before the failure gets 503 {"error":...,
 * "outcome":"unknown"}: it may have committed. A request too large to
 * send gets 413. Returns
 * the status written. When reply_out is
 * not NULL the reply is not written but handed back (caller decref's):
 * then returns its code, or 503 after writing the error itself, with
 * *reply_out NULL. */
int cgi_call_raftd(const char *prog, json_t *req, json_t **reply_out);

/* cgi_call_raftd with its own timeout (a blocking query waits longer than
 * $KEYVAL_TIMEOUT_MS). */
int cgi_call_raftd_t(const char *prog, json_t *req, int timeout_ms, json_t **reply_out);

/* Send a write request (consumed) to raftd and answer the client with
 * raftd's reply, plus `X-Keyval-Index: N` when the write was applied and,
 * for a write that sets keys, `ETag: "N"` (their entity tag now). */
void cgi_relay_write(const char *prog, json_t *req);

/* The answer to raftd's reply (consumed) to a write, as cgi_relay_write
 * gives it, written to out; sets: the write sets keys (an ETag too). */
void cgi_write_answer(FILE *out, int code, json_t *reply, int sets);
/* The answer of GET /key/K to raftd's reply (code, reply; not consumed)
 * to its get, written to out: 200 {"K":"V"} with ETag, X-Keyval-Index
 * (and X-Keyval-Applied), 304 when if_none_match (may be NULL) matches,
 * else the error with the store's index in X-Keyval-Index. */
/* Answers reply (not consumed) with its "index" as the X-Keyval-Index
 * header instead of a body member, and without "code". */
void cgi_respond_index_header(FILE *out, int code, json_t *reply);
/* cgi_get_answer's 200 for a key and value of plain text (printable
 * ASCII but '"' and '\\': what JSON leaves as it is) without If-None-Match,
 * in a malloc'd buffer of *len bytes, made without jansson or stdio;
 * NULL in every other case (then cgi_get_answer makes the answer). */
char *cgi_get_found_plain(int code, json_t *reply, const char *key, size_t klen,
                          const char *if_none_match, size_t *len);
void cgi_get_answer(FILE *out, int code, json_t *reply, const char *key, size_t klen,
                    const char *if_none_match);
/* Nonzero when req's "op" changes state (set, del, txn, join, remove,
 * transfer). */
int cgi_is_write_request(const json_t *req);

/* The condition of a write, from If-Match and If-None-Match. */
enum { CGI_IF_NONE, CGI_IF_INDEX, CGI_IF_EXISTS };
typedef struct cgi_cond {
    int kind;        /* CGI_IF_NONE: unconditional */
    long long index; /* CGI_IF_INDEX: the key's index must be this; 0 = absent */
} cgi_cond;

/* The request of a write of set or delkey (neither consumed) under c
 * (NULL or CGI_IF_NONE: unconditional; CGI_IF_INDEX: a txn "if"). */
json_t *cgi_write_req(json_t *set, json_t *delkey, const cgi_cond *c);
/* The request of GET /key/K[?level=..][&index=M&wait=DUR] from its
 * target uri: the get, the decoded key (key: KV_KEY_MAX+2 bytes) and the
 * wait in ms (0: not blocking); NULL after writing the 400/404 to out. */
json_t *cgi_get_request(FILE *out, const char *uri, char *key, size_t *klen, long long *wait_ms);
/* Parses the headers of a write (either may be NULL or ""): If-Match: "N"
 * (the key was last changed at index N), If-Match: * (the key exists),
 * If-None-Match: * (the key does not exist). Returns 0 with *c, or -1
 * with *why (400) for both headers, a list, or another value. */
int cgi_cond_parse(const char *if_match, const char *if_none_match, cgi_cond *c, const char **why);

/* cgi_cond_parse of this request's HTTP_IF_MATCH and HTTP_IF_NONE_MATCH. */
int cgi_cond_from_env(cgi_cond *c, const char **why);

/* Nonzero when If-None-Match (a GET's: "*", or a list of entity tags, weak
 * or strong) matches the entity tag of index. */
int cgi_etag_matches(const char *if_none_match, long long index);

/* Sends a write of either set (an object of key: value) or delkey (one
 * key), both consumed, under condition c, and answers the client as
 * cgi_relay_write does. An index condition goes to raftd as a txn "if" on
 * every key; "exists" (one key only) reads the key's index, then writes on
 * the condition that it is still that index, and reads again when the key
 * changed in between (up to 8 times); a missing key is 412 with index 0. */
void cgi_write_if(const char *prog, json_t *set, json_t *delkey, const cgi_cond *c);

/* The query parameters a route knows: a NULL-terminated table per route
 * (each program has its own; a new parameter is one more line). Returns 0
 * when every parameter of query[0..len) is in known, else -1 with the
 * first unknown name, decoded, in bad (capacity badcap). */
int cgi_query_unknown(const char *query, size_t len, const char *const *known, char *bad,
                      size_t badcap);

/* The same for t's query, writing the 400 {"error":"unknown query parameter
 * \"NAME\" ..."} itself. Returns 0 when all are known, -1 after the 400. */
int cgi_query_known(const cgi_target *t, const char *const *known);
/* cgi_query_known writing its 400 to out. */
int cgi_query_known_f(FILE *out, const cgi_target *t, const char *const *known);

/* The fields a JSON body object knows (NULL-terminated). Returns 0, or -1
 * after writing 400 {"error":"unknown field \"NAME\" ..."}. */
int cgi_fields_known(const json_t *obj, const char *const *known);

/* Parses a JSON request body (jansson flags as json_loadb's). NULL after
 * writing the 400 with a plain reason: jansson's own words are kept only
 * for syntax errors ("malformed JSON: ..."); a \u0000 says "strings may
 * not contain NUL bytes (\u0000)", not jansson's flag names. */
json_t *cgi_json_body(const char *body, size_t len, size_t flags);

/* cgi_json_body writing its 400 to out. */
json_t *cgi_json_body_f(FILE *out, const char *body, size_t len, size_t flags);
/* The single-key writes (lib/cgi_keyreq.c): PUT /key/K (raw body),
 * POST /key (a JSON object of keys), DELETE /key/K. */
enum { CGI_ROUTE_PUT, CGI_ROUTE_POST, CGI_ROUTE_DEL };
typedef struct cgi_keyw_in { /* the request's CGI variables; NULL: unset */
    const char *uri, *content_length, *if_match, *if_none_match;
    int fd; /* the body (or cgi_body_reader) */
} cgi_keyw_in;
/* The write of route from in: {"op":"set","kv":{..}} (with "lease" when
 * asked) or {"op":"del","key":K}, and its condition in *cond (as the
 * request is unconditional; cgi_write_if or cgi_write_req apply it).
 * NULL after writing the 400/404/413 to out. */
json_t *cgi_keyw_request(FILE *out, int route, const cgi_keyw_in *in, cgi_cond *cond);
/* The whole of key-put, key-set or key-del (route): the request from the
 * CGI variables and stdin, sent under its condition, answered on stdout. */
void cgi_keyw_handle(const char *prog, int route);
#endif
