/*
 * fuzz_codec - libFuzzer target for the peer wire format (lib/codec.c):
 * the incremental frame reader fed in fuzzer-chosen chunks, and every
 * payload decoder (hello, raft message, forwarded request/reply) on the
 * frames it yields and on the raw input. A raft message that decodes must
 * re-encode and decode again to the same type (round trip).
 *
 * Input: byte 0 picks the chunk size for the reader, the rest is the
 * stream as a peer would send it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void decode_payload(int kind, const uint8_t *p, size_t len)
{
    peer_hello h;
    raft_msg m;
    uint64_t reqid, from;
    const char *js;
    size_t jl;
    switch (kind) {
    case PEER_HELLO:
        if (codec_hello_decode(&h, p, len) == 0) {
            /* decoded strings must be NUL-terminated within bounds */
            if (memchr(h.cluster, 0, sizeof h.cluster) == NULL ||
                memchr(h.meta, 0, sizeof h.meta) == NULL)
                abort();
            wbuf b = {0};
            if (codec_hello_frame(&b, &h) == 0) {
                peer_hello h2;
                if (b.len < 5 || codec_hello_decode(&h2, b.p + 5, b.len - 5) != 0 ||
                    h2.from != h.from || strcmp(h2.cluster, h.cluster) || strcmp(h2.meta, h.meta))
                    abort();
            }
            wbuf_free(&b);
        }
        break;
    case PEER_RAFT:
        if (codec_msg_decode(&m, p, len) == 0) {
            wbuf b = {0};
            if (codec_msg_frame(&b, &m) == 0) {
                raft_msg m2;
                if (b.len < 5 || codec_msg_decode(&m2, b.p + 5, b.len - 5) != 0)
                    abort();
                if (m2.type != m.type || m2.term != m.term || m2.from != m.from)
                    abort();
                codec_msg_free(&m2);
            }
            wbuf_free(&b);
            codec_msg_free(&m);
        }
        break;
    case PEER_FWD_REQ:
        if (codec_fwd_decode(p, len, &reqid, &from, &js, &jl) == 0 && jl > len)
            abort();
        break;
    case PEER_FWD_RESP:
        if (codec_fwd_decode(p, len, &reqid, NULL, &js, &jl) == 0 && jl > len)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;

    /* The raw input through each decoder. */
    for (int k = PEER_HELLO; k <= PEER_FWD_RESP; k++)
        decode_payload(k, data, size);

    /* The stream through the frame reader, as raftd's inconn_read does. */
    frame_reader fr = {0};
    size_t off = 0;
    int dead = 0;
    while (off < size && !dead) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (codec_reader_feed(&fr, data + off, n) < 0)
            break;
        off += n;
        int kind, rc;
        const uint8_t *pl;
        size_t len;
        while ((rc = codec_reader_next(&fr, &kind, &pl, &len)) == 1) {
            if (len >= PEER_FRAME_MAX)
                abort();
            decode_payload(kind, pl, len);
        }
        if (rc < 0)
            dead = 1;
    }
    codec_reader_free(&fr);
    return 0;
}
