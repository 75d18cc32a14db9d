/*
 * raftd_harness.h - one raftd node for the fuzz targets fuzz_peer and
 * fuzz_client, built from raftd's own module objects (every bin/raftd/ file but
 * main.c; see fuzz.mk) through its private header, so that the real
 * request and peer handling code runs on fuzzer input. The node is
 * "node0" of a two-node configuration {node0, node1} with cluster id
 * "0123456789abcdef", an in-memory database, no loop and no peer links;
 * it is a follower without a leader, so requests that pass validation
 * wait (PS_RETRY) and are then answered 503 by the harness. No child
 * process is ever started: send_msg finds no link and known peers are
 * not linked while we are a member.
 */
#include "raftd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_CLUSTER "0123456789abcdef"

#include <sys/socket.h>
#include <unistd.h>

static struct raftd *hd; /* the node */
static unsigned harness_runs;

static void harness_free_pending(void)
{
    watch_shutdown(hd); /* held blocking queries come back to hd->pending */
    while (hd->pending) {
        pending *p = hd->pending;
        finish(hd, p, err_reply(503, "harness: dropped"));
        if (hd->pending == p) /* finish must unlink it */
            abort();
    }
}

static void harness_node(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* raftd's log lines (stdio stderr) would swamp the fuzzer's output;
     * sanitizer reports write to fd 2 directly and stay. */
    if (!getenv("FUZZ_RAFTD_LOG")) {
        FILE *nul = fopen("/dev/null", "w");
        if (nul)
            stderr = nul;
    }
    hd = calloc(1, sizeof *hd);
    if (!hd)
        abort();
    options_defaults(hd);
    status_init(hd);
    snprintf(hd->name, sizeof hd->name, "node0");
    snprintf(hd->raddr, sizeof hd->raddr, "127.0.0.1:21990");
    snprintf(hd->haddr, sizeof hd->haddr, "127.0.0.1:21991");
    kv_meta_format(hd->meta, sizeof hd->meta, hd->name, hd->raddr, hd->haddr);
    snprintf(hd->cluster, sizeof hd->cluster, HARNESS_CLUSTER);
    snprintf(hd->dir, sizeof hd->dir, "/nonexistent-fuzz-dir");
    hd->connect = "false"; /* never used: no link is ever spawned */
    hd->id = nodeid_legacy(hd->name);
    hd->st = store_open(":memory:");
    if (!hd->st)
        abort();
}

/* (Re)creates the core every `every` inputs to bound its memory. */
static void harness_setup(unsigned every)
{
    if (hd && hd->r && ++harness_runs % every != 0)
        return;
    if (!hd)
        harness_node();
    harness_free_pending();
    if (hd->r)
        raft_free(hd->r);
    raft_options o;
    raft_options_default(&o);
    o.id = hd->id;
    o.seed = 1;
    hd->max_entry = o.max_entry_bytes;
    hd->r = raft_new(&o);
    if (!hd->r)
        abort();
    raft_hard_state hs = {0};
    raft_snap_meta sm;
    memset(&sm, 0, sizeof sm);
    sm.index = 1;
    sm.term = 1;
    sm.conf.n = 2;
    sm.conf.nodes[0].id = hd->id;
    sm.conf.nodes[0].voter = 1;
    snprintf(sm.conf.nodes[0].meta, RAFT_META_MAX, "%s", hd->meta);
    sm.conf.nodes[1].id = nodeid_legacy("node1");
    sm.conf.nodes[1].voter = 1;
    snprintf(sm.conf.nodes[1].meta, RAFT_META_MAX, "node1 127.0.0.1:21992 127.0.0.1:21993");
    if (raft_restore(hd->r, &hs, &sm, NULL, 0, 1) != RAFT_OK)
        abort();
}

/* A connection under test (fuzz_fcgi, fuzz_front): the server's end of a
 * socket pair; *peer is the client's, which harness_drain reads so that
 * answers are written as to a client that reads them. */
static inline int harness_socket(int *peer)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    *peer = sv[1];
    return sv[0];
}

static inline void harness_drain(int peer)
{
    char buf[65536];
    while (read(peer, buf, sizeof buf) > 0) {
    }
}
