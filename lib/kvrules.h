/*
 * kvrules.h - what a valid key, value, batch, listing, node name and
 * address is: the limits and checks that raftd, storage, the CGI programs
 * and the kv-* tools share, so that each rule is written once.
 *
 * Pure functions on bytes: no I/O, no allocation, no jansson, no SQLite
 * (the statically linked CGI programs link this module too).
 */
#ifndef KEYVAL_KVRULES_H
#define KEYVAL_KVRULES_H

#include <stddef.h>

#define KV_KEY_MAX 1024              /* bytes in a key (at least 1) */
#define KV_VALUE_MAX (1024u * 1024u) /* bytes in one value written by a client */
#define KV_BATCH_MAX 1000            /* keys set, deleted or tested by one write */
#define KV_LIST_DEFAULT 100          /* items in a listing when no "limit" is given */
#define KV_LIST_MAX 1000             /* the largest "limit" of a listing */
#define KV_NAME_MAX 63               /* bytes in a node name */
#define KV_ADDR_MAX 95               /* bytes in a HOST:PORT address */
#define KV_LEASE_TTL_MIN_MS 1000     /* the shortest lease a grant may ask for */
#define KV_LEASE_TTL_MAX_MS 86400000 /* the longest: one day */
#define KV_LEASE_MAX 100000          /* leases the state machine holds; a grant beyond: 503 */

/* A key as storage holds it: 1..KV_KEY_MAX bytes, no NUL. */
int kv_key_ok(const char *k, size_t n);

/* The same rule with the answer raftd gives a client: 0 when k[0..n) is a
 * valid key, else 400 (empty, or holds a NUL) or 413 (too long), with
 * *why set to the reason. */
int kv_key_check(const char *k, size_t n, const char **why);

/* A node name: 1..KV_NAME_MAX of [A-Za-z0-9._-] (kv_name_char). */
int kv_name_ok(const char *s);
int kv_name_char(char c);

/* An address HOST:PORT: 3..KV_ADDR_MAX printable bytes without spaces,
 * ending in ':' and a port of 1..65535. */
int kv_addr_ok(const char *s);
/* Is HOST:PORT's host unspecified (0.0.0.0, ::, [::], empty)? Such an
 * address can be bound but not advertised: nobody can reach it. */
int kv_addr_unspecified(const char *s);

/* A member's meta in the Raft configuration (RAFT_META_MAX bytes at most):
 * "NAME RADDR HADDR", HADDR "-" when the node serves no HTTP. */
int kv_meta_format(char *buf, size_t cap, const char *name, const char *raddr, const char *haddr);

/* Splits a meta into its words; a missing part (or HADDR "-") becomes "".
 * Each output is NUL-terminated within its capacity. */
void kv_meta_split(const char *meta, char *name, size_t name_cap, char *raddr, size_t raddr_cap,
                   char *haddr, size_t haddr_cap);

#endif
