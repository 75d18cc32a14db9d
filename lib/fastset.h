/*
 * fastset.h - the write fast path: a client's plain {"op":"set","kv":{...}}
 * (or the log command {"set":{...}}) read without a JSON tree.
 */
#ifndef KEYVAL_FASTSET_H
#define KEYVAL_FASTSET_H

#include <stddef.h>

/* The write fast path: recognize the common "set" JSON without building a
 * jansson tree. request 1 matches a client request {"op":"set","kv":{...}}
 * (members in either order), request 0 a log command {"set":{...}}. The
 * object must hold 1..max members whose keys (1..key_max bytes, no two
 * alike) and values (at most value_max bytes) are plain strings: only
 * bytes 0x20-0x7E, no backslash, so the text between the quotes is the
 * string itself. JSON whitespace is allowed between tokens. Returns 1 and
 * fills kv[0..*count) (pointing into s) and the span of the inner object
 * (s + *obj_off, *obj_len bytes); 0 for anything else, which the caller
 * hands to its full JSON parser (which also gives the error, if any). */
typedef struct codec_kv {
    const char *k, *v;
    size_t kl, vl;
} codec_kv;
int codec_fast_set(const char *s, size_t n, int request, codec_kv *kv, size_t max, size_t key_max,
                   size_t value_max, size_t *count, size_t *obj_off, size_t *obj_len);

#endif
