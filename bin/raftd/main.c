/*
 * raftd - the Raft daemon of one keyval node (man/raftd.8).
 *
 * One single-threaded epoll loop. It owns DATADIR/raft.db (lib/storage),
 * drives the Raft core (lib/raft), serves clients on DATADIR/raftd.sock
 * (docs/client-protocol.md) and talks to peers only through other
 * processes: inbound connections arrive on DATADIR/peer.sock (a socat
 * listener forwards TCP there), outbound links are children running the
 * -peer-connect command (default "socat STDIO TCP:%a") fed through a pipe.
 * It never opens a TCP socket. raftd.h lists the modules.
 *
 * Files in DATADIR: raft.db (+ -wal, -shm), raftd.pid (locked while
 * running), raftd.sock, peer.sock, snap-INDEX.snap (the latest snapshot),
 * snap-incoming (a snapshot being received).
 */
#include "raftd.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    struct raftd *d = calloc(1, sizeof *d);
    if (!d)
        return 1;
    options_defaults(d);
    options_parse(d, argc, argv);
    run_signals();
    boot(d);
    run(d);
    cleanup(d);
    free(d);
    return 0;
}
