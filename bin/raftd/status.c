/*
 * status.c - what raftd tells about itself: {"op":"status"} (the node,
 * its role, indexes, members; read by kv-health and GET /status) and
 * {"op":"metrics"} (counters and histograms, rendered by the status CGI
 * program as Prometheus text on GET /metrics).
 */
#include "raftd.h"

#include <stdio.h>
#include <string.h>

static const double lat_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

/* The histograms' bounds. */
void status_init(struct raftd *d)
{
    d->h_commit = (hist){lat_le, sizeof lat_le / sizeof lat_le[0], {0}, 0, 0};
    d->h_fsync = (hist){lat_le, sizeof lat_le / sizeof lat_le[0], {0}, 0, 0};
    d->h_batch = (hist){batch_le, sizeof batch_le / sizeof batch_le[0], {0}, 0, 0};
}

/* Count v in h. */
void hist_observe(hist *h, double v)
{
    for (size_t i = 0; i < h->n; i++)
        if (v <= h->le[i]) {
            h->b[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

/* {"op":"status"}: the node, its role, indexes and members. */
json_t *status_json(struct raftd *d)
{
    raft_status_info st;
    raft_status(d->r, &st);
    const raft_config *c = raft_config_get(d->r);
    char lname[KV_NAME_MAX + 1] = "", lr[KV_ADDR_MAX + 1] = "", lh[KV_ADDR_MAX + 1] = "";
    if (st.leader) {
        const raft_node *ln = c ? raft_config_find(c, st.leader) : NULL;
        if (ln)
            kv_meta_split(ln->meta, lname, sizeof lname, lr, sizeof lr, lh, sizeof lh);
        else
            node_name(d, st.leader, lname, sizeof lname);
    }
    static const char *const roles[] = {"follower", "precandidate", "candidate", "leader"};
    const char *role = st.role >= 0 && st.role <= 3 ? roles[st.role] : "unknown";
    if (d->removed) /* removal.c: not ticking, not campaigning */
        role = "removed";
    json_t *nodes = json_array();
    uint64_t now = now_ms();
    for (uint32_t i = 0; c && i < c->n; i++) {
        char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
        kv_meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b}", "id", n, "addr", r, "haddr", h, "voter",
                              c->nodes[i].voter != 0, "self", c->nodes[i].id == d->id);
        if (!o)
            continue;
        char nid[NODEID_HEX_LEN + 1];
        nodeid_format(c->nodes[i].id, nid, sizeof nid);
        json_object_set_new(o, "node_id", json_string(nid));
        /* ms since the last frame from this member (any role): a peer we
         * have never heard from has none */
        peer *pr = c->nodes[i].id == d->id ? NULL : peer_by_id(d, c->nodes[i].id);
        if (pr && pr->heard)
            json_object_set_new(o, "last_heard_ms", json_integer((json_int_t)(now - pr->heard)));
        if (st.role == RAFT_LEADER) {
            for (size_t k = 0; k < st.n_progress; k++) {
                if (st.progress[k].id != c->nodes[i].id)
                    continue;
                json_object_set_new(o, "match", json_integer((json_int_t)st.progress[k].match));
                json_object_set_new(o, "next", json_integer((json_int_t)st.progress[k].next));
                json_object_set_new(o, "active",
                                    json_boolean(st.progress[k].recent_active ||
                                                 st.progress[k].id == d->id));
            }
        }
        json_array_append_new(nodes, o);
    }
    /* How long ago this node heard from its leader (0 on the leader;
     * -1 when no leader is known), and the election timeout, for
     * GET /health. */
    json_int_t contact = st.role == RAFT_LEADER ? 0
                         : st.leader            ? (json_int_t)(st.ticks_since_leader * d->tick_ms)
                                                : -1;
    json_t *out = json_pack("{s:i,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                            "code", 200, "fsyncs", (json_int_t)d->fsyncs, "entries_persisted",
                            (json_int_t)d->entries_persisted, "lazy_commits",
                            (json_int_t)d->lazy_commits, "id", d->name, "cluster", d->cluster,
                            "state", role, "leader", lname, "leader_haddr", lh, "term",
                            (json_int_t)st.term, "commit_index", (json_int_t)st.commit,
                            "applied_index", (json_int_t)store_applied(d->st), "last_log_index",
                            (json_int_t)st.last_index, "snapshot_index", (json_int_t)d->snap_index,
                            "first_log_index", (json_int_t)st.first_index, "nodes", nodes);
    if (out) {
        char nid[NODEID_HEX_LEN + 1];
        nodeid_format(d->id, nid, sizeof nid);
        json_object_set_new(out, "node_id", json_string(nid));
        json_object_set_new(out, "last_contact_ms", json_integer(contact));
        json_object_set_new(out, "snapshot_every", json_integer((json_int_t)snapshot_every(d)));
        json_object_set_new(out, "election_timeout_ms",
                            json_integer((json_int_t)d->tick_ms * d->election_ticks));
        /* removal.c: this node is not in the cluster any more */
        json_object_set_new(out, "removed", json_boolean(d->removed));
        if (d->removed)
            json_object_set_new(out, "removed_reason", json_string(d->removed_why));
        json_t *co = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "watchers",
                               (json_int_t)d->n_watchers, "waiting_queries",
                               (json_int_t)d->n_waiters, "leases_held", (json_int_t)leases_held(d),
                               "history_floor", (json_int_t)store_history_floor(d->st),
                               "history_rows", (json_int_t)store_history_rows(d->st),
                               "expiries_proposed", (json_int_t)d->m_expiries_proposed,
                               "watchers_cut", (json_int_t)d->m_watchers_cut);
        json_object_update(out, co);
        json_decref(co);
    }
    return out;
}

static void metric_add(json_t *arr, const char *name, const char *type, const char *help,
                       double value)
{
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:f}", "name", name, "type", type, "help",
                                         help, "value", value));
}

static void metric_hist(json_t *arr, const char *name, const char *help, const hist *h)
{
    json_t *b = json_array();
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->b[i];
        json_array_append_new(b, json_pack("[f,I]", h->le[i], (json_int_t)cum));
    }
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:f,s:I}", "name", name, "type",
                                         "histogram", "help", help, "buckets", b, "sum", h->sum,
                                         "count", (json_int_t)h->count));
}

/* {"op":"metrics"}: every counter as {"name","type","help","value"} or,
 * for histograms, "buckets" ([le, cumulative count]...), "sum", "count";
 * labelled gauges have "series": [{"labels":{..},"value":V}]. */
json_t *metrics_json(struct raftd *d)
{
    raft_status_info st;
    raft_status(d->r, &st);
    json_t *m = json_array();
    if (!m)
        return NULL;
    metric_add(m, "keyval_term", "gauge", "Current Raft term.", (double)st.term);
    metric_add(m, "keyval_commit_index", "gauge", "Highest log index known committed.",
               (double)st.commit);
    metric_add(m, "keyval_applied_index", "gauge", "Highest log index applied to the table.",
               (double)store_applied(d->st));
    metric_add(m, "keyval_last_log_index", "gauge", "Last index in this node's log.",
               (double)st.last_index);
    metric_add(m, "keyval_snapshot_index", "gauge", "Index of the latest snapshot.",
               (double)d->snap_index);
    metric_add(m, "keyval_is_leader", "gauge", "1 when this node is the leader.",
               st.role == RAFT_LEADER ? 1 : 0);
    metric_add(m, "keyval_has_leader", "gauge", "1 when this node knows a leader.",
               st.leader ? 1 : 0);
    metric_add(m, "keyval_last_contact_seconds", "gauge",
               "Time since the leader was last heard (0 on the leader).",
               st.role == RAFT_LEADER ? 0 : (double)(st.ticks_since_leader * d->tick_ms) / 1e3);
    metric_add(m, "keyval_leader_changes_total", "counter",
               "Times this node saw a new leader (or the same in a new term).",
               (double)d->m_leader_changes);
    metric_add(m, "keyval_proposals_total", "counter",
               "Entries proposed by this node as leader (writes, membership).",
               (double)d->m_proposals);
    metric_add(m, "keyval_forwarded_writes_total", "counter",
               "Writes this node forwarded to the leader.", (double)d->m_forwarded);
    metric_add(m, "keyval_outcome_unknown_total", "counter",
               "Writes answered 503 with outcome unknown.", (double)d->m_outcome_unknown);
    metric_hist(m, "keyval_commit_latency_seconds",
                "Leader: time from proposal to applied, per write.", &d->h_commit);
    metric_hist(m, "keyval_fsync_duration_seconds",
                "Duration of each durable store commit (one WAL sync).", &d->h_fsync);
    metric_hist(m, "keyval_batch_entries",
                "Log entries written per durable commit (group commit batch).", &d->h_batch);
    metric_add(m, "keyval_fsyncs_total", "counter", "Durable store commits (WAL syncs).",
               (double)d->fsyncs);
    metric_add(m, "keyval_entries_persisted_total", "counter",
               "Log entries written by durable commits.", (double)d->entries_persisted);
    metric_add(m, "keyval_lazy_commits_total", "counter",
               "Commits that only applied entries and did not wait for the disk.",
               (double)d->lazy_commits);
    metric_add(m, "keyval_snapshots_taken_total", "counter",
               "Log compactions (snapshots recorded in the database, no file) by this node.",
               (double)d->m_snaps_taken);
    metric_add(m, "keyval_snapshot_files_total", "counter",
               "Snapshot files written on demand for a follower that needed one.",
               (double)d->m_snap_files);
    metric_add(m, "keyval_snapshots_installed_total", "counter",
               "Snapshots received from the leader and installed.", (double)d->m_snaps_installed);
    metric_add(m, "keyval_log_bytes", "gauge",
               "Bytes of log entry data held in memory (at most -snapshot-bytes once applied).",
               (double)st.log_bytes);
    metric_add(m, "keyval_log_loads_total", "counter",
               "Reads of log entries back from raft.db for a follower (held in storage only).",
               (double)d->m_log_loads);
    metric_add(m, "keyval_log_loaded_entries_total", "counter",
               "Log entries read back from raft.db for a follower.", (double)d->m_log_loaded);
    metric_add(m, "keyval_sqlite_memory_bytes", "gauge",
               "Heap bytes held by SQLite (page caches, schema, statements).",
               (double)store_memory_used());
    metric_add(m, "keyval_watchers", "gauge", "Watch streams held by this node.",
               (double)d->n_watchers);
    metric_add(m, "keyval_waiting_queries", "gauge",
               "Blocking queries held by this node until a change or their wait.",
               (double)d->n_waiters);
    metric_add(m, "keyval_watch_wakeups_total", "counter",
               "Blocking queries answered because a change matched.", (double)d->m_wakeups);
    metric_add(m, "keyval_watchers_cut_total", "counter",
               "Watchers cut because they fell behind the history kept (or a snapshot "
               "replaced it).",
               (double)d->m_watchers_cut);
    metric_add(m, "keyval_leases_held", "gauge",
               "Leases whose deadlines this node keeps (the leader; 0 elsewhere).",
               (double)leases_held(d));
    metric_add(m, "keyval_lease_expiries_proposed_total", "counter",
               "lease_expire entries proposed by this node as leader.",
               (double)d->m_expiries_proposed);
    metric_add(m, "keyval_history_floor", "gauge",
               "Index F: every change after F is in the change history.",
               (double)store_history_floor(d->st));
    metric_add(m, "keyval_history_rows", "gauge", "Rows of the change history kept.",
               (double)store_history_rows(d->st));
    size_t live = 0;
    for (size_t i = 0; i < d->n_clients; i++)
        if (!d->clients[i]->dead)
            live++;
    metric_add(m, "keyval_client_connections", "gauge", "Open connections on raftd.sock.",
               (double)live);
    metric_add(m, "keyval_client_connections_accepted_total", "counter",
               "Connections accepted on raftd.sock.", (double)d->m_clients_accepted);
    metric_add(m, "keyval_reads_total", "counter",
               "Key reads and listings this node accepted (any level, from raftd.sock or "
               "fcgi.sock or the HTTP port).",
               (double)d->m_reads);
    metric_add(m, "keyval_fcgi_requests_total", "counter",
               "HTTP requests raftd answered itself on fcgi.sock (keyval -fastcgi).",
               (double)d->m_fcgi_requests);
    metric_add(m, "keyval_http_requests_total", "counter",
               "HTTP requests raftd answered itself on the HTTP port (keyval -fast).",
               (double)d->m_http_requests);
    metric_add(m, "keyval_http_handovers_total", "counter",
               "Connections raftd handed to lighttpd on the HTTP port (keyval -fast).",
               (double)d->m_http_passed);
    json_t *series = json_array();
    for (int i = 0; i < MAX_PEERS; i++) {
        peer *p = &d->peers[i];
        if (!p->used)
            continue;
        json_array_append_new(series, json_pack("{s:{s:s},s:i}", "labels", "peer", p->name, "value",
                                                peer_ready(p) ? 1 : 0));
    }
    json_array_append_new(
        m, json_pack("{s:s,s:s,s:s,s:o}", "name", "keyval_peer_up", "type", "gauge", "help",
                     "1 when the outbound link to the peer is running.", "series", series));
    return json_pack("{s:i,s:s,s:o}", "code", 200, "id", d->name, "metrics", m);
}
