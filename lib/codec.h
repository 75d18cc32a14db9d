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
 *   PEER_REMOVED : node:u64, term:u64 (a leader of term `term` tells node
 *                  `node`, which is talking to it, that it is not in the
 *                  configuration: it was removed). A node of a version
 *                  without this kind closes the link on it (unknown kind),
 *                  which costs nothing: it was removed.
 */
#ifndef KEYVAL_CODEC_H
#define KEYVAL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "raft.h"
#include "fastset.h" /* codec_fast_set, once declared here */

#define PEER_VERSION 1
#define PEER_FRAME_MAX (16u * 1024u * 1024u)
#define PEER_CLUSTER_ID_MAX 64

enum peer_kind {
    PEER_HELLO = 1,
    PEER_RAFT = 2,
    PEER_FWD_REQ = 3,
    PEER_FWD_RESP = 4,
    PEER_REMOVED = 5,
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
int codec_fwd_frame(wbuf *b, int kind, uint64_t reqid, uint64_t from, const char *json,
                    size_t json_len);
int codec_removed_frame(wbuf *b, uint64_t node, uint64_t term);

/* Incremental frame reader: feed bytes, take whole frames out.
 * codec_reader_next returns 1 with *kind, *payload, *len set to the next
 * whole frame (valid until the next call), 0 when more bytes are needed,
 * -1 on a framing error (bad length), after which the link must close. */
typedef struct frame_reader {
    uint8_t *buf;
    size_t len, cap, off;
} frame_reader;
int codec_reader_feed(frame_reader *fr, const uint8_t *data, size_t n);
int codec_reader_next(frame_reader *fr, int *kind, const uint8_t **payload, size_t *len);
void codec_reader_free(frame_reader *fr);
/* The length field of the next frame (1 + payload bytes) as soon as its
 * four bytes are in, before the frame is whole: 1 and *flen, else 0. Lets
 * a reader refuse a frame too large for what it expects (raftd: a first
 * frame larger than a HELLO) before buffering it. */
int codec_reader_peek_len(const frame_reader *fr, uint32_t *flen);

/* Payload decoders. 0 ok, -1 malformed. Decoded messages point into the
 * payload for entry data and snapshot bytes; codec_msg_free releases the
 * arrays decode allocated (entries, conf). */
int codec_hello_decode(peer_hello *h, const uint8_t *p, size_t len);
int codec_msg_decode(raft_msg *m, const uint8_t *p, size_t len);
void codec_msg_free(raft_msg *m);
int codec_fwd_decode(const uint8_t *p, size_t len, uint64_t *reqid, uint64_t *from,
                     const char **json, size_t *json_len);
int codec_removed_decode(const uint8_t *p, size_t len, uint64_t *node, uint64_t *term);

#endif
