/*
 * storage.h - one SQLite database per node: DATADIR/raft.db.
 *
 * Tables: meta (hard state, cluster id, node name, applied index, snapshot
 * metadata, history floor), log (index, term, type, data), kv (key, value,
 * mod_index, lease), leases (id, ttl_ms), changes (the change history:
 * seq, idx, op, key, value, expired).
 * WAL mode, synchronous=FULL: a batch is durable when store_commit returns.
 * The kv table, its change rows and the applied index change in the same
 * transaction, so a restart never replays what is already applied and the
 * history never disagrees with the table.
 *
 * Every function returns 0 on success, -1 on a storage error with a message
 * in store_error(). A storage error is fatal for raftd: it logs and exits.
 *
 * Commands (the data of RAFT_ENTRY_NORMAL entries) are JSON objects:
 *     {"set": {"k": "v", ...}, "del": ["k", ...],
 *      "if": [{"key": "k", "index": N}, ...]}
 * All members optional. "if" conditions: index N > 0 means the key must
 * exist and have been last modified at index N; N = 0 means the key must
 * not exist. The whole command applies atomically or, when a condition
 * fails, not at all (412).
 *
 * Commands with an "op" member (docs/coordination.md; lease IDs are
 * numbers or decimal strings):
 *   {"op":"set","kv":{K:V,..}[,"lease":ID]}  keys attached to lease ID (a
 *        set without "lease" detaches them); unknown ID: 404, nothing written
 *   {"op":"del","key":K}
 *   {"op":"txn","set":..,"del":..,"if":..}    the form above, 412 and all
 *   {"op":"txn","if":[CMP..],"then":[OP..],"else":[OP..]}  CMP {"key":K,
 *        "index":N} | {"key":K,"absent":true} | {"key":K,"value":V}; OP
 *        {"set":{..}[,"lease":ID]} | {"del":K}. All CMPs true: then-ops,
 *        else else-ops, in order; 200 with succeeded 1|0. A lease of the
 *        branch taken that does not exist: 404, nothing written. At most
 *        STORE_TXN_MAX keys over all ops and STORE_TXN_MAX compares.
 *   {"op":"lease_grant","ttl_ms":T}  lease ID = this entry's index;
 *        T in KV_LEASE_TTL_MIN_MS..KV_LEASE_TTL_MAX_MS (lib/kvrules.h)
 *   {"op":"lease_revoke","lease":ID} deletes the lease's keys and the
 *        lease in this entry; unknown ID: 404
 *   {"op":"lease_expire","lease":ID} the same, change rows marked
 *        expired; unknown ID: a no-op (200, lease 0)
 * A malformed command (unknown member, bad shape, over a limit) is 400 and
 * writes nothing.
 *
 * Change history: every key change an entry makes (a set; a del of a key
 * that existed; a revoke's or expire's deletes) is a row in the changes
 * table, in the order made, with the entry's index. At least
 * store_set_history_keep's N (default 10000) rows are kept; the trim runs
 * in the apply's transaction, at most 4096 rows at a time, once the rows
 * exceed N by N/8. store_history_floor F: every change with index > F is
 * kept (0 on a new node; a snapshot install sets the snapshot index).
 */
#ifndef KEYVAL_STORAGE_H
#define KEYVAL_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include "kvrules.h"
#include "raft.h"

typedef struct store store;

#define STORE_TXN_MAX KV_BATCH_MAX /* keys over a new txn's ops; compares */

/* What an applied entry was (store_result.op). */
enum {
    STORE_OP_NONE, /* NOOP or CONFIG entry, or a 400 */
    STORE_OP_SET,  /* {"set":..} or {"op":"set",..} */
    STORE_OP_DEL,
    STORE_OP_TXN, /* either txn form */
    STORE_OP_LEASE_GRANT,
    STORE_OP_LEASE_REVOKE,
    STORE_OP_LEASE_EXPIRE
};

/* Result of applying one command. */
typedef struct store_result {
    int code;        /* 200 applied, 412 condition failed (old txn form),
                          404 lease not found, 400 bad command,
                          503 lease_grant at the lease limit (nothing written) */
    char key[1025];  /* 412: the key whose condition failed */
    uint64_t index;  /* 412: that key's current mod index (0 absent) */
    int op;          /* STORE_OP_* */
    int succeeded;   /* new-form txn: 1 then-branch taken, 0 else-branch */
    uint64_t lease;  /* lease ops: the lease (grant: the new id = the
                          entry's index; expire of an unknown lease: 0) */
    uint64_t ttl_ms; /* lease_grant */
    /* The change rows this entry wrote: seq first_seq..last_seq, none
     * when first_seq is 0. store_changes(s, 0, first_seq - 1, ...) reads
     * exactly them (and later ones). */
    uint64_t first_seq, last_seq;
} store_result;

store *store_open(const char *path); /* NULL: see store_open_error() */
const char *store_open_error(void);
void store_close(store *s);
const char *store_error(const store *s);

/* Loaded persistent state. Free with store_loaded_free. */
typedef struct store_loaded {
    raft_hard_state hs;
    int has_snap;
    raft_snap_meta snap;
    raft_entry *entries;
    size_t n_entries;
    uint64_t applied;
} store_loaded;
int store_load(store *s, store_loaded *out);
void store_loaded_free(store_loaded *l);
/* Log entries from..upto in order, as many as fit in max_bytes of data
 * (at least one), stopping at a gap; none when entry `from` is not there.
 * 0 ok (*n_out may be 0), -1 error. Free with store_entries_free. */
int store_log_range(store *s, uint64_t from, uint64_t upto, size_t max_bytes, raft_entry **out,
                    size_t *n_out);
void store_entries_free(raft_entry *e, size_t n);

/* Node metadata (small strings): "cluster", "name", ... */
int store_meta_get(store *s, const char *name, char *buf,
                   size_t cap); /* 1 found, 0 absent, -1 error */
int store_meta_set(store *s, const char *name, const char *value);

/* One batch = one transaction. */
int store_begin(store *s);
int store_commit(store *s);
/* A transaction whose commit does not wait for the disk (WAL with
 * synchronous=NORMAL): atomic, and durable together with the next
 * durable commit. For work that can be redone from the durable log. */
int store_begin_lazy(store *s);
void store_rollback(store *s);

int store_save_hs(store *s, const raft_hard_state *hs);
int store_truncate(store *s, uint64_t from); /* delete index >= from */
int store_append(store *s, const raft_entry *e, size_t n);
int store_compact(store *s, uint64_t upto); /* delete index <= upto */
/* The same, at most max_rows of the oldest rows at a time (a compaction
 * after a long transfer may have many): returns the rows deleted (fewer
 * than max_rows: done) or -1. */
int store_compact_some(store *s, uint64_t upto, unsigned max_rows);

/* Apply one committed entry (any type) and set the applied index to
 * e->index. NOOP and CONFIG entries only move the applied index. A
 * malformed command is not an error: it yields code 400 and changes
 * nothing (every node reaches the same verdict). */
int store_apply(store *s, const raft_entry *e, store_result *res);
uint64_t store_applied(const store *s);

/* Reads from the local table. */
int store_get(store *s, const char *key, size_t klen, char **value, size_t *vlen,
              uint64_t *mod_index); /* 1 found, 0 absent */
/* Keys >= start (exclusive of `after` when after is non-NULL) with prefix,
 * in key order, at most limit. Calls fn for each; stops when fn returns
 * nonzero. Returns the number visited or -1. */
int store_scan(store *s, const char *prefix, const char *after, size_t limit,
               int (*fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
                         uint64_t mod_index),
               void *arg);
int64_t store_count(store *s);
/* store_get that also gives the key's lease (0 none); any out may be NULL. */
int store_get_lease(store *s, const char *key, size_t klen, char **value, size_t *vlen,
                    uint64_t *mod_index, uint64_t *lease); /* 1 found, 0 absent */

/* ---- change history (lib/storage_history.c) ---- */

typedef struct store_change {
    uint64_t seq;    /* the row's place in the history (grows by 1) */
    uint64_t index;  /* the entry's log index */
    int del;         /* 1 del, 0 set */
    int expired;     /* a lease_expire's delete */
    const char *key; /* valid during the callback only */
    size_t klen;
    const char *value; /* set: the new value; del: NULL */
    size_t vlen;
} store_change;
/* Changes with index > from_index and seq > after_seq whose key is key
 * (prefix 0) or starts with key (prefix 1; key NULL or "" = all), in seq
 * order, at most limit; fn returns nonzero to stop. Returns the number
 * visited or -1. A watcher drains in chunks: from_index M, after_seq the
 * last seq it was given (0 at first). When from_index < the floor, rows
 * are missing: the caller checks store_history_floor first (410). */
int store_changes(store *s, uint64_t from_index, uint64_t after_seq, const char *key, size_t klen,
                  int prefix, size_t limit, int (*fn)(void *arg, const store_change *c), void *arg);
uint64_t store_history_floor(const store *s);
uint64_t store_history_last_seq(const store *s);   /* 0: none written yet */
uint64_t store_history_rows(const store *s);       /* rows kept now */
void store_set_history_keep(store *s, uint64_t n); /* at least n rows (n >= 1) */
/* Tests only: grants are refused (503) at n leases instead of KV_LEASE_MAX.
 * Every node of a cluster must apply with the same limit. */
void store_set_lease_max(store *s, uint64_t n);
/* For a blocking query: has what a read of key (prefix 0) or of the keys
 * under key (prefix 1) covers changed after index m? An existing key: its
 * mod index > m. Otherwise (or a prefix): any change row after m for it.
 * When m < the floor that is unknown and the answer is 1. 1 changed, 0
 * not, -1 error. */
int store_changed_after(store *s, const char *key, size_t klen, int prefix, uint64_t m);

/* ---- leases (lib/storage_lease.c) ---- */

int store_lease_get(store *s, uint64_t id, uint64_t *ttl_ms); /* 1 found, 0 absent, -1 */
/* The lease's keys > after (NULL: from the first), in key order, at most
 * limit. Returns the number visited or -1. */
int store_lease_keys(store *s, uint64_t id, const char *after, size_t limit,
                     int (*fn)(void *arg, const char *k, size_t klen), void *arg);
/* Leases with id > after_id, in id order, at most limit (a new leader
 * walks them all in chunks for its fresh term). Visited or -1. */
int store_lease_scan(store *s, uint64_t after_id, size_t limit,
                     int (*fn)(void *arg, uint64_t id, uint64_t ttl_ms), void *arg);
int64_t store_lease_count(store *s);

/* Snapshots. write: serialize the kv table (with each key's lease) and
 * the leases as of the applied index to a file (atomically: tmp +
 * rename), record snapshot meta (index, term, conf) in the database.
 * install: replace the kv and leases tables with the contents of a
 * snapshot file (the previous format reads as no leases) and set applied
 * = meta->index, delete the whole log and the change history (floor =
 * meta->index), record the snapshot meta; inside the current transaction. */
int store_snapshot_write(store *s, const char *path, const raft_snap_meta *meta);
int store_snapshot_install(store *s, const char *path, const raft_snap_meta *meta);

/* Incremental snapshot writing, for a caller that must not stall on a big
 * table. begin (outside a transaction, meta->index == the applied index)
 * opens a second, read-only connection whose read transaction pins the kv
 * table as of that index; the caller goes on committing meanwhile. step
 * writes records worth about `budget` bytes: 0 more to do, 1 the file is
 * complete (fsynced and renamed to path), -1 error. finish (after step
 * returned 1) records the snapshot meta like store_snapshot_write and
 * frees the writer; abort deletes the partial file and frees it. Errors
 * are in store_error(s). At most one writer per store. */
typedef struct store_snap_writer store_snap_writer;
store_snap_writer *store_snapshot_begin(store *s, const char *path, const raft_snap_meta *meta);
int store_snapshot_step(store_snap_writer *w, size_t budget);
int store_snapshot_finish(store_snap_writer *w);
void store_snapshot_abort(store_snap_writer *w);
/* Page size of a new database (bytes). */
#define STORE_PAGE_SIZE 2048
#define STORE_PAGE_SIZE_STR "2048"

/* Compaction without a file: the database holds the state as of the
 * applied index, so record meta (index = applied, term, conf) as the
 * snapshot's metadata, in the current transaction or one of its own. */
int store_snapshot_mark(store *s, const raft_snap_meta *meta);
/* Records (keys) in the snapshot being written. */
int64_t store_snapshot_records(const store_snap_writer *w);
/* Records in a snapshot file, from its header (not verified): >= 0, or -1
 * when the file cannot be read or is not a snapshot. */
int64_t store_snapshot_file_records(const char *path);

/* Bytes of heap SQLite holds (sqlite3_memory_used: page caches, schema,
 * statements) over all connections. */
int64_t store_memory_used(void);

#endif
