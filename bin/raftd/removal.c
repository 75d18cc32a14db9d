/*
 * removal.c - knowing that this node was removed from the cluster, and
 * telling a removed node so.
 *
 * A node removed by DELETE /node/NAME usually never receives the entry
 * that removes it (the leader stops replicating to it at once), so the
 * leader tells it: a message from a node outside the leader's
 * configuration is answered with a PEER_REMOVED notice (lib/codec.h) on
 * the link the leader keeps to nodes that talk to it (peer_out.c). A node
 * also knows when it applies a configuration without itself.
 *
 * A removed node logs it once, keeps it in raft.db (meta "removed", so a
 * restart knows and keyval -join joins again), shows it in its status and
 * stops ticking its core: it does not campaign, and its reads and writes
 * fail at once. An AppendEntries or snapshot from a leader (it was added
 * again) ends it. The Raft core is not involved: the notice is raftd's.
 */
#include "raftd.h"

#include <stdio.h>
#include <string.h>

#define NOTICE_EVERY_MS 1000

void removal_boot(struct raftd *d)
{
    char why[256];
    int rc = store_meta_get(d->st, "removed", why, sizeof why);
    if (rc < 0)
        store_fatal(d, "read meta removed");
    if (rc == 1 && why[0]) {
        d->removed = 1;
        snprintf(d->removed_why, sizeof d->removed_why, "%s", why);
        logf_(d,
              "this node was removed from the cluster (%s); not campaigning until it is "
              "added again (keyval -join joins again)",
              why);
    }
}

void removal_set(struct raftd *d, const char *why)
{
    if (d->removed)
        return;
    d->removed = 1;
    snprintf(d->removed_why, sizeof d->removed_why, "%s", why);
    if (store_meta_set(d->st, "removed", d->removed_why) < 0)
        store_fatal(d, "save meta removed");
    char nid[NODEID_HEX_LEN + 1];
    nodeid_format(d->id, nid, sizeof nid);
    logf_(d,
          "removed from the cluster (%s); not campaigning. To rejoin, start keyval with its "
          "-join again, or POST /join {\"id\":\"%s\",\"addr\":\"%s\",\"node_id\":\"%s\"} to "
          "a member",
          d->removed_why, d->name, d->raddr, nid);
}

/* A leader sends us entries or a snapshot: we are a member again. */
void removal_heard_leader(struct raftd *d, const raft_msg *m)
{
    if (!d->removed || (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_SNAP))
        return;
    raft_status_info st;
    raft_status(d->r, &st);
    if (m->term < st.term)
        return;
    d->removed = 0;
    d->removed_why[0] = '\0';
    if (store_meta_set(d->st, "removed", "") < 0)
        store_fatal(d, "save meta removed");
    char n[KV_NAME_MAX + 1];
    node_name(d, m->from, n, sizeof n);
    logf_(d, "a member of the cluster again (leader %s)", n);
}

/* A PEER_REMOVED notice from the node `from`. */
void removal_notice(struct raftd *d, uint64_t from, uint64_t node, uint64_t term)
{
    raft_status_info st;
    raft_status(d->r, &st);
    if (node != d->id || term < st.term || d->removed)
        return;
    char n[KV_NAME_MAX + 1], why[200];
    node_name(d, from, n, sizeof n);
    snprintf(why, sizeof why,
             "leader %s of term %llu has no longer this node in its "
             "configuration",
             n, (unsigned long long)term);
    removal_set(d, why);
}

/* The leader's side: m came from a node outside our configuration. */
void removal_tell(struct raftd *d, inconn *c, const raft_msg *m)
{
    const raft_config *cf = raft_config_get(d->r);
    if (!cf || raft_config_find(cf, m->from)) /* every message: the cheap test first */
        return;
    raft_status_info st;
    raft_status(d->r, &st);
    if (st.role != RAFT_LEADER)
        return;
    uint64_t now = now_ms();
    if (c->removed_told && now - c->removed_told < NOTICE_EVERY_MS)
        return;
    if (send_removed(d, m->from, st.term) < 0)
        return; /* no link to it yet: at its next message */
    if (!c->removed_told) {
        char n[KV_NAME_MAX + 1];
        node_name(d, m->from, n, sizeof n);
        logf_(d, "told %s it is no longer a member of the cluster", n);
    }
    c->removed_told = now;
}

/* After a configuration was applied: are we still in it? */
void removal_check_conf(struct raftd *d, uint64_t index)
{
    const raft_config *c = &d->applied_conf, *latest = raft_config_get(d->r);
    /* A node added again applies the entry that removed it while it
     * catches up: the latest configuration, which holds it, says so. */
    if (c->n == 0 || raft_config_find(c, d->id) || (latest && raft_config_find(latest, d->id)))
        return;
    char why[100];
    snprintf(why, sizeof why, "applied the configuration at index %llu, which does not hold it",
             (unsigned long long)index);
    removal_set(d, why);
}
