/*
 * ready.c - one Ready of the Raft core, as named steps: write received
 * snapshot chunks, send a leader's appends early, persist (hard state,
 * snapshot install, log changes, applied entries) in one transaction,
 * send the rest, answer the applied writes, note read indexes, advance.
 */
#include "raftd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answer: each write waiting for an entry just applied gets its result. */
static void answer_applied(struct raftd *d, const raft_ready *rd, const store_result *res)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry *e = &rd->committed[i];
        pending *next;
        for (pending *p = d->pending; p; p = next) {
            next = p->next;
            if (p->state != PS_WAIT_APPLY || p->index != e->index)
                continue;
            if (p->term != e->term) {
                finish(d, p,
                       json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                                 "leadership changed before the write committed; it was not "
                                 "applied",
                                 "outcome", "failed"));
                continue;
            }
            const store_result *r = &res[i];
            if (p->proposed_us)
                hist_observe(&d->h_commit, (double)(now_us() - p->proposed_us) / 1e6);
            if (leases_answer(d, p, r, e->index)) /* lease ops, 404, new txn */
                continue;
            if (r->code == 412)
                finish(d, p,
                       json_pack("{s:i,s:s,s:s,s:I}", "code", 412, "error", "condition failed",
                                 "key", r->key, "index", (json_int_t)r->index));
            else if (r->code == 400)
                finish(d, p, err_reply(400, "malformed command"));
            else
                finish_ok_index(d, p, e->index);
        }
    }
    /* Writes whose index was passed without being seen (snapshot install). */
    uint64_t applied = store_applied(d->st);
    pending *next;
    for (pending *p = d->pending; p; p = next) {
        next = p->next;
#ifdef KEYVAL_FAULT_MODES
        if (d->fault_apply_uncommitted && p->state == PS_WAIT_APPLY && p->index <= applied) {
            /* the broken mode acknowledges at its early apply, before commit */
            finish(d, p, json_pack("{s:i,s:I}", "code", 200, "index", (json_int_t)p->index));
            continue;
        }
#endif
        if (p->state == PS_WAIT_APPLY && p->index <= applied)
            finish(d, p,
                   json_pack("{s:i,s:s,s:s}", "code", 503, "error",
                             "the log was replaced by a snapshot; the write's fate is unknown",
                             "outcome", "unknown"));
    }
}

static void log_config(struct raftd *d, const raft_config *c, uint64_t index)
{
    char buf[1024];
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_NODES; i++) {
        char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
        kv_meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        int w = snprintf(buf + o, sizeof buf - o, "%s%s@%s%s", i ? " " : "", n, r,
                         c->nodes[i].voter ? "" : "(learner)");
        if (w < 0 || (size_t)w >= sizeof buf - o)
            break;
        o += (size_t)w;
    }
    logf_(d, "configuration at index %llu: %s", (unsigned long long)index, buf);
}

/* One batch of the core's work, and what a step needs to know of it. */
typedef struct ready_step {
    raft_ready rd;
    int need_txn;      /* anything to write to the store */
    int lazy;          /* only applying committed entries: no disk wait */
    int early;         /* the leader's AppendEntries go out before our fsync */
    int installed;     /* a snapshot was installed */
    int answered;      /* the applied writes are answered already */
    store_result *res; /* the result of each committed entry */
} ready_step;

/* Received snapshot chunks are written (and synced) first. */
static void ready_chunks(struct raftd *d, ready_step *s)
{
    for (size_t i = 0; i < s->rd.n_chunks; i++)
        write_chunk(d, &s->rd.chunks[i]);
}

/* Send: a leader's AppendEntries go out before its own write, so that the
 * followers' disks work while ours does (Raft thesis 10.2.1). Safe: the
 * core counts the leader's own copy only after raft_advance reports it
 * durable, and no reply is read before this batch is durable (a failed
 * write is fatal). Votes, acks and everything else still wait for the
 * disk (ready_send). */
static void ready_send_early(struct raftd *d, ready_step *s)
{
    if (!s->early)
        return;
    for (size_t i = 0; i < s->rd.n_msgs; i++)
        if (s->rd.msgs[i].type == RAFT_MSG_APPEND)
            send_msg(d, &s->rd.msgs[i]);
    peers_flush(d); /* out before our own fsync */
}

/* Persist: install a received snapshot in the open transaction. */
static void ready_install(struct raftd *d, ready_step *s)
{
    char in[PATH_MAX];
    snapshot_abort(d); /* of an older state than what comes in */
    path_in_dir(d, in, sizeof in, "snap-incoming");
    if (store_snapshot_install(d->st, in, &s->rd.snap) < 0)
        store_fatal(d, "install snapshot");
    /* The database now holds that state: the file is not kept. */
    unlink(in);
    d->applied_conf = s->rd.snap.conf;
    s->installed = 1;
    d->m_snaps_installed++;
}

/* Apply: the committed entries, in the same transaction as the log
 * changes, so the applied index moves with the table. */
static void ready_apply(struct raftd *d, ready_step *s)
{
    const raft_ready *rd = &s->rd;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry *e = &rd->committed[i];
        if (e->index <= store_applied(d->st)) {
            s->res[i].code = 200;
            continue;
        }
        if (store_apply(d->st, e, &s->res[i]) < 0)
            store_fatal(d, "apply");
        if (e->type == RAFT_ENTRY_CONFIG) {
            raft_config c;
            if (raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
                d->applied_conf = c;
                log_config(d, &c, e->index);
                removal_check_conf(d, e->index);
            } else
                logf_(d, "config entry %llu does not decode", (unsigned long long)e->index);
        }
    }
#ifdef KEYVAL_FAULT_MODES
    for (size_t i = 0; d->fault_apply_uncommitted && i < rd->n_entries; i++) {
        const raft_entry *e = &rd->entries[i];
        store_result r;
        memset(&r, 0, sizeof r);
        if (e->type != RAFT_ENTRY_CONFIG && e->index == store_applied(d->st) + 1 &&
            store_apply(d->st, e, &r) < 0)
            store_fatal(d, "apply");
    }
#endif
}

#define LOG_COMPACT_ROWS 10000

/* Persist (and apply) the batch in one transaction. */
static void ready_persist(struct raftd *d, ready_step *s)
{
    const raft_ready *rd = &s->rd;
    if ((s->lazy ? store_begin_lazy(d->st) : store_begin(d->st)) < 0)
        store_fatal(d, "begin");
    if (rd->hs_changed && store_save_hs(d->st, &rd->hs) < 0)
        store_fatal(d, "save hard state");
    if (rd->snap_install)
        ready_install(d, s);
    if (rd->truncate_from && store_truncate(d->st, rd->truncate_from) < 0)
        store_fatal(d, "truncate log");
    if (rd->n_entries && store_append(d->st, rd->entries, rd->n_entries) < 0)
        store_fatal(d, "append log");
    /* Compaction deletes the log rows before the trail, LOG_COMPACT_ROWS
     * per batch: after a long snapshot transfer held it, there can be
     * hundreds of thousands, and one DELETE of them all would stall this
     * batch's writes. Rows left (also across a restart) are never read:
     * loads and restarts read only after the compaction point. */
    if (rd->compact_to > d->compact_goal)
        d->compact_goal = rd->compact_to;
    if (d->compact_goal) {
        int n = store_compact_some(d->st, d->compact_goal, LOG_COMPACT_ROWS);
        if (n < 0)
            store_fatal(d, "compact log");
        if (n < LOG_COMPACT_ROWS)
            d->compact_goal = 0;
    }
    ready_apply(d, s);
    /* Answer before the fsync: the committed entries are durable on a
     * majority already (the core counts our own copy only once we
     * reported it durable), and their results are fixed by the log:
     * answer them before this commit waits for the disk for the new
     * entries. */
    if (!s->lazy && !s->installed && rd->n_committed) {
        answer_applied(d, rd, s->res);
        s->answered = 1;
        peers_flush(d); /* relayed replies of forwarded writes */
    }
    uint64_t c0 = now_us();
    if (store_commit(d->st) < 0)
        store_fatal(d, "commit");
    if (s->lazy) {
        d->lazy_commits++;
    } else {
        d->fsyncs++;
        d->entries_persisted += rd->n_entries;
        hist_observe(&d->h_fsync, (double)(now_us() - c0) / 1e6);
        if (rd->n_entries)
            hist_observe(&d->h_batch, (double)rd->n_entries);
    }
}

/* Send: everything not sent early, now that the batch is durable. */
static void ready_send(struct raftd *d, ready_step *s)
{
    for (size_t i = 0; i < s->rd.n_msgs; i++)
        if (!s->early || s->rd.msgs[i].type != RAFT_MSG_APPEND)
            send_msg(d, &s->rd.msgs[i]);
    peers_flush(d); /* acks and votes go out before we apply */
}

/* Reads: the read indexes the core has confirmed or lost. */
static void ready_reads(struct raftd *d, ready_step *s)
{
    for (size_t i = 0; i < s->rd.n_reads; i++)
        pending_read_index(d, s->rd.reads[i].ctx, s->rd.reads[i].index);
    for (size_t i = 0; i < s->rd.n_reads_failed; i++)
        pending_read_failed(d, s->rd.reads_failed[i]);
}

/* Loads: log entries the core no longer holds in memory, read back from
 * raft.db for a follower (after raft_advance, as lib/raft.h says). */
static void ready_loads(struct raftd *d, const raft_load *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        raft_entry *es;
        size_t got;
        if (store_log_range(d->st, ls[i].from, ls[i].upto, ls[i].max_bytes, &es, &got) < 0)
            store_fatal(d, "read log");
        int rc = raft_entries_loaded(d->r, ls[i].id, es, got);
        if (rc != RAFT_OK)
            logf_(d, "entries %llu.. read back from the log: %s", (unsigned long long)ls[i].from,
                  raft_strerror(rc));
        d->m_log_loads++;
        d->m_log_loaded += got;
        store_entries_free(es, got);
    }
}

/* Do the core's work until it has none: the Ready loop of lib/raft.h.
 * The order is what safety depends on: persist before anything that
 * depends on it is sent (only a leader's AppendEntries go early, see
 * ready_send_early), send before apply, advance only after all. */
void process_ready(struct raftd *d)
{
    while (raft_has_ready(d->r)) {
        ready_step s;
        memset(&s, 0, sizeof s);
        raft_ready *rd = &s.rd;
        raft_ready_get(d->r, rd);
        ready_chunks(d, &s);
        s.need_txn = rd->hs_changed || rd->snap_install || rd->truncate_from || rd->n_entries ||
                     rd->compact_to || rd->n_committed;
        /* Only applying committed entries: that can be redone from the
         * durable log after a crash (the applied index is in the same
         * transaction), so this commit does not wait for the disk; the
         * next durable commit syncs it with everything before it. */
        s.lazy = s.need_txn && !rd->hs_changed && !rd->snap_install && !rd->truncate_from &&
                 !rd->n_entries && !rd->compact_to && !rd->n_chunks;
        s.early = !rd->hs_changed && !rd->snap_install && !rd->truncate_from;
        ready_send_early(d, &s);
        if (rd->n_committed && !(s.res = calloc(rd->n_committed, sizeof *s.res)))
            fatal(d, "out of memory");
        if (s.need_txn)
            ready_persist(d, &s);
        if (s.installed) {
            d->snap_index = rd->snap.index;
            d->snap_term = rd->snap.term;
            remove_old_snaps(d, d->snap_index);
            logf_(d, "snapshot installed at index %llu (term %llu)",
                  (unsigned long long)rd->snap.index, (unsigned long long)rd->snap.term);
        }
        ready_send(d, &s);
        if (!s.answered)
            answer_applied(d, rd, s.res);
        if (rd->n_committed || s.installed) { /* leases, blocking queries, watches */
            leases_applied(d, rd, s.res);
            watch_applied(d, s.installed);
        }
        free(s.res);
        ready_reads(d, &s);
        raft_load loads[RAFT_MAX_NODES];
        size_t n_loads = rd->n_loads < RAFT_MAX_NODES ? rd->n_loads : RAFT_MAX_NODES;
        if (n_loads)
            memcpy(loads, rd->loads, n_loads * sizeof *loads);
        raft_advance(d->r, rd);
        ready_loads(d, loads, n_loads);
        check_reads(d);
        peers_flush(d); /* relayed replies of forwarded writes */
    }
}
