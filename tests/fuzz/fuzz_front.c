/*
 * fuzz_front - libFuzzer target for raftd on the HTTP port (keyval
 * -fast): the bytes a client sends go through the head parser
 * (lib/http_head.c), the choice between answering and handing over
 * (bin/raftd/http_front.c) and, for a key route, the HTTP mapping
 * (http_fast.c) into raftd's requests, whose answers come back as HTTP
 * responses. The harness has no lighttpd behind it (-http-back names no
 * socket), so a request raftd would hand over is answered 503 and the
 * connection closes. See raftd_harness.h for the node the requests meet.
 *
 * Input: byte 0 picks the piece size (as if the socket delivered the
 * stream in pieces of that size), the rest is the stream.
 */
#include "fcgi.h"
#include "raftd_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    harness_setup(1000);
    snprintf(hd->http_back, sizeof hd->http_back, "/nonexistent-fuzz-dir/http.sock");
    size_t chunk = ((size_t)data[0] + 1) * 7;
    data++;
    size--;
    int peer, fd = harness_socket(&peer);
    hconn *c = http_front_conn_new(hd, fd);
    if (!c) {
        close(fd);
        close(peer);
        return 0;
    }
    size_t off = 0;
    while (off < size && !c->dead && !c->closing) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t took = http_front_feed(hd, c, data + off, n);
        off += took;
        harness_drain(peer);
        /* Answer what waits, as the node would later, and take the
         * pipelined requests after it, as the end-of-turn sweep does. */
        for (;;) {
            if (c->r.cl.busy)
                harness_free_pending();
            if (c->in_len > HF_IN_CAP || c->out.off > c->out.len)
                abort();
            size_t before = c->in_len;
            if (c->busy || c->dead || c->closing || c->back >= 0 || !c->in_len)
                break;
            http_front_feed(hd, c, NULL, 0);
            harness_drain(peer);
            if (!c->busy && c->in_len == before)
                break; /* an incomplete request: more bytes needed */
        }
        if (took == 0 && !c->busy)
            break; /* a full buffer: cannot be, a whole request fits */
    }
    harness_free_pending();
    http_front_conn_free(hd, c);
    close(peer);
    return 0;
}
