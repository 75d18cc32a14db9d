/*
 * fuzz_client - libFuzzer target for raftd's client socket: the bytes a
 * client writes to DATADIR/raftd.sock go through raftd's own line framing
 * (client_pump), JSON parsing and request validation (prepare) and
 * dispatch. See raftd_harness.h for the node the requests meet.
 *
 * Input: byte 0 picks the read size (as if the socket delivered the stream
 * in pieces of that size), the rest is the stream; it ends with EOF.
 */
#include <fcntl.h>
#include <unistd.h>

#include "raftd_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    harness_setup(1000);
    size_t chunk = ((size_t)data[0] + 1) * 3;
    data++;
    size--;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    c->fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (c->fd < 0)
        abort();
    size_t off = 0;
    /* client_read without the read(2): same buffer growth and EOF rule */
    while (!c->dead && !c->eof) {
        if (c->in_cap - c->in_len < 65536) {
            size_t nc = c->in_cap ? c->in_cap * 2 : 65536;
            if (nc > LINE_MAX_BYTES + 131072)
                nc = LINE_MAX_BYTES + 131072;
            if (nc > c->in_cap) {
                char *p = realloc(c->in, nc);
                if (!p)
                    break;
                hd->client_bufs += nc - c->in_cap;
                c->in = p;
                c->in_cap = nc;
            }
        }
        size_t room = c->in_cap - c->in_len;
        if (room == 0) {
            client_pump(hd, c);
        } else if (off == size) {
            c->eof = 1;
            if (c->in_len && c->in[c->in_len - 1] != '\n' && c->in_len < c->in_cap)
                c->in[c->in_len++] = '\n';
            client_pump(hd, c);
        } else {
            size_t n = size - off < chunk ? size - off : chunk;
            if (n > room)
                n = room;
            memcpy(c->in + c->in_len, data + off, n);
            off += n;
            c->in_len += n;
            client_pump(hd, c);
        }
        /* answer what waits, then let the client go on */
        while (c->busy) {
            harness_free_pending();
            client_pump(hd, c);
        }
        if (c->in_len > c->in_cap)
            abort();
    }
    harness_free_pending();
    client_free(hd, c);
    return 0;
}
