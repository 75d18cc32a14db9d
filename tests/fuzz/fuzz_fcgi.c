/*
 * fuzz_fcgi - libFuzzer target for raftd's FastCGI responder: the bytes
 * lighttpd writes to DATADIR/fcgi.sock go through the record layer
 * (lib/fcgi_rec.c, bin/raftd/fcgi.c) and, for a whole request, the HTTP
 * mapping (http_fast.c) into raftd's requests, whose answers come back as
 * records. See raftd_harness.h for the node the requests meet.
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
    size_t chunk = ((size_t)data[0] + 1) * 7;
    data++;
    size--;
    int peer, fd = harness_socket(&peer);
    fconn *c = fcgi_conn_new(hd, fd);
    if (!c) {
        close(fd);
        close(peer);
        return 0;
    }
    size_t off = 0;
    while (off < size && !c->dead && !c->closing) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t took = fcgi_feed(hd, c, data + off, n);
        harness_drain(peer);
        if (took == 0)
            break; /* a full buffer that holds no whole record: cannot be */
        off += took;
        /* answer what waits, as the node would later */
        if (c->r.cl.busy)
            harness_free_pending();
        if (c->in_len > c->in_cap || c->params_len > FCGI_PARAMS_MAX)
            abort();
    }
    harness_free_pending();
    fcgi_conn_free(hd, c);
    close(peer);
    return 0;
}
