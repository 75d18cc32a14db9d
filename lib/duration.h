/*
 * duration.h - the one parser of durations in keyval's requests: a lease's
 * "ttl" and a blocking query's "wait" ("500ms", "10s", "5m", "1h").
 *
 * Pure: no I/O, no clock, no allocation.
 *
 * Grammar: one or more decimal digits, then exactly one unit: "ms", "s",
 * "m" or "h". Nothing else: no sign, no spaces, no fraction, no compound
 * ("1m30s"), no leading "+". A bare number ("10") is refused: Consul's
 * ?wait= needs a unit too, and a bare number is ambiguous (etcd's lease
 * TTL counts seconds, most timeouts here count milliseconds). A caller
 * that takes a JSON number may decide that a number means seconds.
 */
#ifndef KEYVAL_DURATION_H
#define KEYVAL_DURATION_H

#include <stdint.h>

enum {
    DURATION_OK = 0,
    DURATION_EINVAL = -1, /* empty, junk, no unit, unknown unit, a sign */
    DURATION_ERANGE = -2, /* a well-formed duration above max_ms
                              (also one that overflows 64 bits) */
};

/* Parse s into *ms. A result above max_ms is DURATION_ERANGE (pass
 * UINT64_MAX for no limit beyond overflow). *ms is written only on
 * DURATION_OK. Zero ("0s") is well formed: the caller checks its own
 * lower bound. */
int duration_parse_ms(const char *s, uint64_t max_ms, uint64_t *ms);

/* The reason for an error code, for a 400 answer ("bad duration: ..."). */
const char *duration_strerror(int err);

#endif
