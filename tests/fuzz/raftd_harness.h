/*
 * raftd_harness.h - builds bin/raftd.c into a fuzz target (its main()
 * renamed) so the real request and peer handling code runs on fuzzer
 * input. The node is "node0" of a two-node configuration {node0, node1}
 * with cluster id "0123456789abcdef", an in-memory database and no peer
 * links; it is a follower without a leader, so requests that pass
 * validation wait (PS_RETRY) and are then answered 503 by the harness.
 * No child process is ever started: send_msg finds no link and known
 * peers are not linked while we are a member.
 */
#define main raftd_main
#include "../../bin/raftd.c"
#undef main

#define HARNESS_CLUSTER "0123456789abcdef"

static unsigned harness_runs;

static void harness_free_pending(void)
{
    while (g_pend) {
        pending *p = g_pend;
        finish(p, err_reply(503, "harness: dropped"));
        if (g_pend == p) /* finish must unlink it */
            abort();
    }
}

/* (Re)creates the core every `every` inputs to bound its memory. */
static void harness_setup(unsigned every)
{
    if (g_r && ++harness_runs % every != 0)
        return;
    if (!g_st) {
        signal(SIGPIPE, SIG_IGN);
        /* raftd's log lines (stdio stderr) would swamp the fuzzer's
         * output; sanitizer reports write to fd 2 directly and stay. */
        if (!getenv("FUZZ_RAFTD_LOG")) {
            FILE *nul = fopen("/dev/null", "w");
            if (nul)
                stderr = nul;
        }
        snprintf(g_name, sizeof g_name, "node0");
        snprintf(g_raddr, sizeof g_raddr, "127.0.0.1:21990");
        snprintf(g_haddr, sizeof g_haddr, "127.0.0.1:21991");
        snprintf(g_meta, sizeof g_meta, "node0 127.0.0.1:21990 127.0.0.1:21991");
        snprintf(g_cluster, sizeof g_cluster, HARNESS_CLUSTER);
        snprintf(g_dir, sizeof g_dir, "/nonexistent-fuzz-dir");
        g_connect = "false"; /* never used: no link is ever spawned */
        g_id = fnv1a64(g_name);
        g_st = store_open(":memory:");
        if (!g_st)
            abort();
    }
    harness_free_pending();
    if (g_r)
        raft_free(g_r);
    raft_options o;
    raft_options_default(&o);
    o.id = g_id;
    o.seed = 1;
    g_max_entry = o.max_entry_bytes;
    g_r = raft_new(&o);
    if (!g_r)
        abort();
    raft_hard_state hs = {0};
    raft_snap_meta sm;
    memset(&sm, 0, sizeof sm);
    sm.index = 1;
    sm.term = 1;
    sm.conf.n = 2;
    sm.conf.nodes[0].id = g_id;
    sm.conf.nodes[0].voter = 1;
    snprintf(sm.conf.nodes[0].meta, RAFT_META_MAX, "%s", g_meta);
    sm.conf.nodes[1].id = fnv1a64("node1");
    sm.conf.nodes[1].voter = 1;
    snprintf(sm.conf.nodes[1].meta, RAFT_META_MAX, "node1 127.0.0.1:21992 127.0.0.1:21993");
    if (raft_restore(g_r, &hs, &sm, NULL, 0, 1) != RAFT_OK)
        abort();
}
