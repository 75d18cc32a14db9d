/*
 * link_health.c - liveness of the outbound peer links. A link child
 * (socat) whose TCP connection stalled in a partition waits out the
 * kernel's retransmission backoff (minutes) after the network heals. So
 * raftd watches what it hears from each peer on the inbound side: when a
 * peer it expects to hear from (the leader hears from every member, a
 * follower from its leader, a candidate from every voter) has sent
 * nothing for LINK_DEAD_TIMEOUTS election timeouts, the link to it is
 * declared dead and its child killed, and the usual restart follows.
 * Links are one-way, so when a peer reconnects to us (a new HELLO on an
 * older link of ours), it may have stopped hearing us: our link to it is
 * restarted too. Decides nothing about Raft; only kills link children.
 */
#include "raftd.h"

#include <signal.h>

/* Election timeouts of silence before a link is declared dead. */
#define LINK_DEAD_TIMEOUTS 3

static uint64_t dead_after_ms(const struct raftd *d)
{
    return (uint64_t)LINK_DEAD_TIMEOUTS * d->tick_ms * d->election_ticks;
}

/* Restart p's child now: SIGKILL (a stopped or stuck socat ignores
 * SIGTERM until it runs again); peers_reap restarts it at once. */
static void link_restart(struct raftd *d, peer *p, const char *why, uint64_t quiet_ms)
{
    if (!p->declared_dead) /* once per silence, not once per restart */
        logf_(d, "peer link to %s declared dead (%s %llu ms); restarting", p->name, why,
              (unsigned long long)quiet_ms);
    else
        vlog(d, "peer link to %s still dead; restarting", p->name);
    p->declared_dead = 1;
    p->backoff = 100;
    kill(p->pid, SIGKILL);
}

/* A frame (of any kind) arrived from id on a greeted inbound connection. */
void link_heard(struct raftd *d, uint64_t id)
{
    peer *p = peer_by_id(d, id);
    if (!p)
        return;
    p->heard = now_ms();
    if (p->declared_dead) {
        p->declared_dead = 0;
        logf_(d, "peer link to %s back", p->name);
    }
}

/* A HELLO from id: it (re)connected to us. */
void link_hello(struct raftd *d, uint64_t id)
{
    peer *p = peer_by_id(d, id);
    uint64_t now = now_ms();
    if (!p)
        return;
    int again = p->hellos++ > 0;
    /* A reconnection: the peer may have declared its link dead because it
     * does not hear us, and ours may be stalled (even while we hear it:
     * a one-way cut). Our own link, when young, is left alone, so the
     * peer's answer to our restart cannot restart it again (no
     * ping-pong). */
    if (again && p->pid > 0 && now - p->started >= dead_after_ms(d))
        link_restart(d, p, "the peer reconnected; link up for", now - p->started);
    p->heard = now;
}

/* Should we be hearing from p now? */
static int expect_contact(struct raftd *d, const raft_status_info *st, const peer *p)
{
    const raft_config *c = raft_config_get(d->r);
    const raft_node *n = c ? raft_config_find(c, p->id) : NULL;
    if (!n)
        return 0;
    switch (st->role) {
    case RAFT_LEADER: return 1;
    case RAFT_PRECANDIDATE:
    case RAFT_CANDIDATE: return n->voter;
    default: return p->id == (st->leader ? st->leader : d->link_leader);
    }
}

/* Every tick: declare dead the links of peers that have gone silent. */
void links_check(struct raftd *d, uint64_t now)
{
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.leader && st.leader != d->id)
        d->link_leader = st.leader;
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &d->peers[i];
        if (!p->used || p->pid <= 0 || !expect_contact(d, &st, p))
            continue;
        uint64_t since = p->heard > p->started ? p->heard : p->started;
        if (now - since >= dead_after_ms(d))
            link_restart(d, p, "no contact for", now - (p->heard ? p->heard : p->started));
    }
}
