/*
 * codec.h - the peer wire format: framing, handshake and Raft messages.
 *
 * A peer link is a byte stream (socat carries it over TCP). It begins with
 * one HELLO frame from the connecting side, then carries frames:
 *
 *     frame   = length:u32be kind:u8 payload[length-1]
 *     length  = 1 + payload bytes, 1 <= length <= PEER_FRAME_MAX
 *
 * All integers are big-endian. Every decoder checks every length against
 * the bytes it has; a frame that does not parse is an error and the link
 * is closed, never trusted.
 *
 *   PEER_HELLO   : magic "KVRAFT" (6 bytes), version:u16, from:u64,
 *                  cluster_len:u8, cluster id bytes (0..64),
 *                  meta_len:u16, meta bytes (< RAFT_META_MAX)
 *   PEER_RAFT    : one raft_msg (see codec_msg_encode)
 *   PEER_FWD_REQ : reqid:u64, from:u64, JSON request text (a client request
 *                  forwarded by a follower to the leader)
 *   PEER_FWD_RESP: reqid:u64, JSON reply text
 */
#ifndef KEYVAL_CODEC_H
#define KEYVAL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "raft.h"

#define PEER_VERSION 1
#define PEER_FRAME_MAX (16u * 1024u * 1024u)
#define PEER_CLUSTER_ID_MAX 64

enum peer_kind {
    PEER_HELLO = 1,
    PEER_RAFT = 2,
    PEER_FWD_REQ = 3,
    PEER_FWD_RESP = 4,
};

typedef struct peer_hello {
    uint16_t version;
    uint64_t from;
    char cluster[PEER_CLUSTER_ID_MAX + 1];
    char meta[RAFT_META_MAX];
} peer_hello;

/* A growable output buffer. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf;
void wbuf_free(wbuf *b);

/* Append a whole frame (length, kind, payload) to b. 0 ok, -1 on error
 * (too big or out of memory). */
int codec_hello_frame(wbuf *b, const peer_hello *h);
int codec_msg_frame(wbuf *b, const raft_msg *m);
int codec_fwd_frame(wbuf *b, int kind, uint64_t reqid, uint64_t from,
                    const char *json, size_t json_len);

/* Incremental frame reader: feed bytes, take whole frames out.
 * codec_reader_next returns 1 with *kind, *payload, *len set to the next
 * whole frame (valid until the next call), 0 when more bytes are needed,
 * -1 on a framing error (bad length), after which the link must close. */
typedef struct frame_reader {
    uint8_t *buf;
    size_t len, cap, off;
} frame_reader;
int codec_reader_feed(frame_reader *fr, const uint8_t *data, size_t n);
int codec_reader_next(frame_reader *fr, int *kind, const uint8_t **payload,
                      size_t *len);
void codec_reader_free(frame_reader *fr);

/* Payload decoders. 0 ok, -1 malformed. Decoded messages point into the
 * payload for entry data and snapshot bytes; codec_msg_free releases the
 * arrays decode allocated (entries, conf). */
int codec_hello_decode(peer_hello *h, const uint8_t *p, size_t len);
int codec_msg_decode(raft_msg *m, const uint8_t *p, size_t len);
void codec_msg_free(raft_msg *m);
int codec_fwd_decode(const uint8_t *p, size_t len, uint64_t *reqid,
                     uint64_t *from, const char **json, size_t *json_len);

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
int codec_fast_set(const char *s, size_t n, int request, codec_kv *kv, size_t max,
                   size_t key_max, size_t value_max, size_t *count, size_t *obj_off,
                   size_t *obj_len);

#endif
