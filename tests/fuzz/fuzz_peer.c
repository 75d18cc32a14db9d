/*
 * fuzz_peer - libFuzzer target for raftd's inbound peer connections: the
 * bytes a peer sends to DATADIR/peer.sock go through raftd's own
 * inconn_read (frame reader, HELLO checks of cluster id and node meta,
 * raft message decoding and the sender check, raft_step into the core,
 * forwarded requests and replies). See raftd_harness.h for the node.
 *
 * Input: the stream, delivered through a memfd that inconn_read reads
 * until EOF. Seeds start with a valid HELLO from node1 of the cluster.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "raftd_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_setup(200);
    int fd = memfd_create("peer", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    lseek(fd, 0, SEEK_SET);
    inconn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->fd = fd;
    c->since = now_ms();
    for (int i = 0; i < 1000 && !c->dead; i++)
        inconn_read(hd, c);
    if (!c->dead)
        abort(); /* EOF must end the connection */
    harness_free_pending();
    close(fd);
    codec_reader_free(&c->fr);
    free(c);
    /* a HELLO may have taught us a peer; forget it so state stays bounded */
    memset(hd->known, 0, sizeof hd->known);
    return 0;
}
