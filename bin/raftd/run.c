/*
 * run.c - raftd's loop: each turn waits for events (loop.c dispatches
 * them to the handlers that registered), then runs the ticks that are
 * due, the core's Ready, a snapshot slice, the clients' queued lines,
 * link supervision, and frees what died. Nothing here blocks but the
 * SQLite commit inside process_ready.
 */
#include "raftd.h"
#include "fcgi.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* The only file-scope state of raftd besides prog: set by SIGTERM/SIGINT. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void run_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Log a new role or leader; count leader changes for the metrics. */
static void log_role_changes(struct raftd *d)
{
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.role == d->last_role && st.leader == d->last_leader)
        return;
    if (st.leader && (st.leader != d->counted_leader || st.term != d->counted_term)) {
        d->m_leader_changes++;
        d->counted_leader = st.leader;
        d->counted_term = st.term;
    }
    if (st.role == RAFT_LEADER && d->last_role != RAFT_LEADER)
        logf_(d, "elected leader in term %llu", (unsigned long long)st.term);
    else if (d->last_role == RAFT_LEADER && st.role != RAFT_LEADER)
        logf_(d, "stepped down in term %llu", (unsigned long long)st.term);
    if (st.role != RAFT_LEADER && st.leader != d->last_leader && st.leader && st.leader != d->id) {
        char n[KV_NAME_MAX + 1];
        node_name(d, st.leader, n, sizeof n);
        logf_(d, "following leader %s in term %llu", n, (unsigned long long)st.term);
    }
    d->last_role = st.role;
    d->last_leader = st.leader;
}

/* The leader keeps its own address in the configuration current. */
static void fix_own_meta(struct raftd *d, uint64_t now)
{
    if (now - d->last_meta_fix < 1000)
        return;
    d->last_meta_fix = now;
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.role != RAFT_LEADER)
        return;
    const raft_config *c = raft_config_get(d->r);
    const raft_node *me = c ? raft_config_find(c, d->id) : NULL;
    if (me && strcmp(me->meta, d->meta) != 0) {
        uint64_t idx = 0;
        if (raft_add_node(d->r, d->id, d->meta, &idx) == RAFT_OK && idx)
            logf_(d, "updating own address in the configuration to %s", d->meta);
    }
}

/* The ticks that are due (at most 5 at once; a loop that fell further
 * behind starts afresh), and what runs on a tick. */
static void run_ticks(struct raftd *d, uint64_t now)
{
    if (now < d->next_tick)
        return;
    unsigned ticks = 0;
    while (now >= d->next_tick && ticks < 5) {
        if (!d->removed) /* removal.c: a removed node does not campaign */
            raft_tick(d->r);
        d->next_tick += d->tick_ms;
        ticks++;
    }
    if (now >= d->next_tick)
        d->next_tick = now + d->tick_ms;
    pending_timers(d, now);
    links_check(d, now);
    link_stderr_timers(d, now);
    fwd_replies_timers(d, now);
    peers_timers(d, now);
    fix_own_meta(d, now);
    inconns_timers(d, now);
}

/* A turn that takes half an election timeout endangers leadership: say
 * so (at most every 10 s). */
static void log_slow_turn(struct raftd *d, uint64_t turn_start)
{
    uint64_t turn_ms = now_ms() - turn_start;
    if (turn_ms * 2 >= (uint64_t)d->tick_ms * d->election_ticks && turn_ms >= 100 &&
        now_ms() - d->last_slow_log >= 10000) {
        d->last_slow_log = now_ms();
        logf_(d, "slow: one loop turn took %llu ms (election timeout %u ms); disk too slow?",
              (unsigned long long)turn_ms, d->tick_ms * d->election_ticks);
    }
}

/* One turn of the loop. */
static void run_turn(struct raftd *d)
{
    uint64_t now = now_ms();
    /* A snapshot being written goes on at once: no wait. */
    int timeout = d->next_tick > now && !d->snapw && !d->http_again ? (int)(d->next_tick - now) : 0;
    timeout = leases_timeout(d, now, timeout); /* lease deadlines, blocking queries */
    int n = loop_wait(&d->loop, timeout);
    if (n < 0)
        fatal(d, "epoll_wait: %s", strerror(errno));
    uint64_t turn_start = now_ms();
    loop_dispatch(&d->loop, n);
    now = now_ms();
    run_ticks(d, now);
    leases_timers(d, now);
    process_ready(d);
    maybe_snapshot(d);
    process_ready(d);
    clients_pump(d);
    process_ready(d);
    peers_reap(d, now);
    peers_reconcile(d);
    log_role_changes(d);
    log_slow_turn(d, turn_start);
    inconns_sweep(d);
    clients_sweep(d);
    fcgi_sweep(d);
    http_front_sweep(d);
    peers_watch(d);
}

/* Turn until SIGTERM or SIGINT. */
void run(struct raftd *d)
{
    d->next_tick = now_ms() + d->tick_ms;
    watch_init(d);
    leases_init(d);
    while (!stop_requested)
        run_turn(d);
    logf_(d, "shutting down");
    notify(d, "STOPPING=1\n");
}
