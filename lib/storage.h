/*
 * storage.h - one SQLite database per node: DATADIR/raft.db.
 *
 * Tables: meta (hard state, cluster id, node name, applied index, snapshot
 * metadata), log (index, term, type, data), kv (key, value, mod_index).
 * WAL mode, synchronous=FULL: a batch is durable when store_commit returns.
 * The kv table and the applied index change in the same transaction, so a
 * restart never replays what is already applied.
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
 * fails, not at all.
 */
#ifndef KEYVAL_STORAGE_H
#define KEYVAL_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include "raft.h"

typedef struct store store;

/* Result of applying one command. */
typedef struct store_result {
    int code;          /* 200 applied, 412 condition failed, 400 bad command */
    char key[1025];    /* 412: the key whose condition failed */
    uint64_t index;    /* 412: that key's current mod index (0 absent) */
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

/* Node metadata (small strings): "cluster", "name", ... */
int store_meta_get(store *s, const char *name, char *buf, size_t cap); /* 1 found, 0 absent, -1 error */
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
int store_truncate(store *s, uint64_t from);          /* delete index >= from */
int store_append(store *s, const raft_entry *e, size_t n);
int store_compact(store *s, uint64_t upto);            /* delete index <= upto */

/* Apply one committed entry (any type) and set the applied index to
 * e->index. NOOP and CONFIG entries only move the applied index. A
 * malformed command is not an error: it yields code 400 and changes
 * nothing (every node reaches the same verdict). */
int store_apply(store *s, const raft_entry *e, store_result *res);
uint64_t store_applied(const store *s);

/* Reads from the local table. */
int store_get(store *s, const char *key, size_t klen, char **value,
              size_t *vlen, uint64_t *mod_index); /* 1 found, 0 absent */
/* Keys >= start (exclusive of `after` when after is non-NULL) with prefix,
 * in key order, at most limit. Calls fn for each; stops when fn returns
 * nonzero. Returns the number visited or -1. */
int store_scan(store *s, const char *prefix, const char *after, size_t limit,
               int (*fn)(void *arg, const char *k, size_t klen,
                         const char *v, size_t vlen, uint64_t mod_index),
               void *arg);
int64_t store_count(store *s);

/* Snapshots. write: serialize the kv table as of the applied index to a
 * file (atomically: tmp + rename), record snapshot meta (index, term,
 * conf) in the database. install: replace the kv table with the contents
 * of a snapshot file and set applied = meta->index, delete the whole log,
 * record the snapshot meta; inside the current transaction. */
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
store_snap_writer *store_snapshot_begin(store *s, const char *path,
                                        const raft_snap_meta *meta);
int store_snapshot_step(store_snap_writer *w, size_t budget);
int store_snapshot_finish(store_snap_writer *w);
void store_snapshot_abort(store_snap_writer *w);
/* Records (keys) in the snapshot being written. */
int64_t store_snapshot_records(const store_snap_writer *w);
/* Records in a snapshot file, from its header (not verified): >= 0, or -1
 * when the file cannot be read or is not a snapshot. */
int64_t store_snapshot_file_records(const char *path);

/* Bytes of heap SQLite holds (sqlite3_memory_used: page caches, schema,
 * statements) over all connections. */
int64_t store_memory_used(void);

#endif
