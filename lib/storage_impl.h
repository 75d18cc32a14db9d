/*
 * storage_impl.h - private to lib/storage*.c: the store struct, the table
 * of prepared statements and the helpers the three parts share. Callers
 * outside lib/storage*.c use storage.h only.
 *
 * The parts: storage.c (open/close, schema and its migration, errors,
 * statements, meta), storage_log.c (transactions, hard state, log),
 * storage_kv.c (the state machine: apply, the old command form, reads),
 * storage_cmd.c (the "op" command forms: set/del with lease, the txn with
 * compares, lease grant/revoke/expire), storage_history.c (the changes
 * table: rows, trimming, the floor, reads), storage_lease.c (lease reads),
 * storage_snap.c (the snapshot file: format, write, verify, install) and
 * storage_snap_writer.c (the incremental writer).
 */
#ifndef KEYVAL_STORAGE_IMPL_H
#define KEYVAL_STORAGE_IMPL_H

#include "storage.h"
#include "kvrules.h"

#include <sqlite3.h>
#include <stdio.h>

struct json_t; /* jansson's, for the command appliers */

#define KEY_MAX KV_KEY_MAX /* lib/kvrules.h */

/* One prepared statement per entry of the SQL table in storage.c. */
enum {
    ST_META_GET,
    ST_META_SET,
    ST_LOG_INSERT,
    ST_LOG_TRUNCATE,
    ST_LOG_COMPACT,
    ST_LOG_COMPACT_SOME,
    ST_LOG_LOAD,
    ST_LOG_RANGE,
    ST_KV_GET,
    ST_KV_SET,
    ST_KV_DEL,
    ST_KV_SCAN,
    ST_KV_SCAN_AFTER,
    ST_KV_COUNT,
    ST_KV_ALL,
    ST_KV_CLEAR,
    ST_LOG_CLEAR,
    ST_KV_BY_LEASE,
    ST_LEASE_GET,
    ST_LEASE_PUT,
    ST_LEASE_DEL,
    ST_LEASE_SCAN,
    ST_LEASE_COUNT,
    ST_LEASE_ALL,
    ST_LEASE_CLEAR,
    ST_CH_INSERT,
    ST_CH_TRIM,
    ST_CH_IDX_BEFORE,
    ST_CH_BOUNDS,
    ST_CH_SEEK,
    ST_CH_READ,
    ST_CH_ANY,
    ST_CH_CLEAR,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_N
};

struct store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    int in_txn;
    int lazy; /* this transaction commits with synchronous=NORMAL */
    uint64_t applied;
    int applied_dirty; /* applied moved in this transaction; written at commit */
    /* The changes table (storage_history.c): rows [min_seq, next_seq) are
     * kept, contiguous; every change with idx > floor is among them. */
    uint64_t next_seq, min_seq, floor;
    uint64_t history_keep; /* keep at least this many rows */
    uint64_t lease_max;    /* grants refused at this many leases (0: KV_LEASE_MAX) */
    char err[512];
};

/* storage.c: errors and statements. */
void storage_set_err(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int storage_db_fail(store *s, const char *what); /* sets err from SQLite, -1 */
sqlite3_stmt *storage_stmt(store *s, int which); /* reset, bindings cleared */
/* Run a statement that returns no rows. */
int storage_step_done(store *s, sqlite3_stmt *q, const char *what);
int storage_exec(store *s, const char *sql);
int storage_meta_get_int(store *s, const char *name, uint64_t *v); /* 1, 0 absent, -1 */
int storage_meta_set_int(store *s, const char *name, uint64_t v);
int storage_meta_set_blob(store *s, const char *name, const void *p, size_t n);

/* storage_log.c: functions that must be atomic open their own transaction
 * when the caller has none; auto_end commits it (ok == 0) or rolls back. */
int storage_auto_begin(store *s, int *own);
int storage_auto_end(store *s, int own, int ok);

/* storage_kv.c: write the applied index now (outside a caller's batch). */
int storage_set_applied(store *s, uint64_t idx);
int storage_valid_key(const char *k, size_t n);
/* The key's mod index and lease: 1 found, 0 absent, -1 error. */
int storage_kv_lookup(store *s, const char *k, size_t n, uint64_t *mod_index, uint64_t *lease);
/* Every write of the state machine goes through these two, which add the
 * change row in the same transaction. put: set k (lease 0 = none) at idx.
 * remove: delete k; a change row only when the key existed. */
int storage_kv_put(store *s, const char *k, size_t kl, const char *v, size_t vl, uint64_t idx,
                   uint64_t lease);
int storage_kv_remove(store *s, const char *k, size_t kl, uint64_t idx, int expired);

/* The old command form (cmd a json_t *; with "op":"txn" the old txn). */
int storage_apply_plain(store *s, const raft_entry *e, struct json_t *cmd, store_result *res);

/* storage_cmd.c: a command with an "op" member. 0 applied (res set), -1
 * storage error. */
int storage_apply_op(store *s, const raft_entry *e, struct json_t *cmd, store_result *res);

/* storage_history.c */
int storage_history_add(store *s, uint64_t idx, int del, const char *k, size_t kl, const char *v,
                        size_t vl, int expired);
int storage_history_trim(store *s);                  /* bounded work; in the apply's txn */
int storage_history_reload(store *s);                /* seq bounds and floor from the db */
int storage_history_reset(store *s, uint64_t floor); /* clear all; floor = floor */
int storage_history_open(store *s);                  /* at open: floor of an old db */

/* storage_snap.c: the snapshot meta recorded in the database, and the
 * pieces of the file format the incremental writer shares. */
int storage_snap_meta_load(store *s, int *has, raft_snap_meta *m);
int storage_snap_meta_save(store *s, const raft_snap_meta *meta);
#define SNAP_MAGIC_V1 "KVSNAP01"
#define SNAP_MAGIC_V2 "KVSNAP02"
#define FNV_OFF 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
typedef struct snap_out {
    FILE *f;
    uint64_t sum; /* FNV-1a of every byte written */
    int err;      /* a write failed */
} snap_out;
void storage_snap_header(snap_out *o, const raft_snap_meta *meta, uint64_t count);
/* One record from a row (key, value, mod_index, lease); its size. */
size_t storage_snap_record(snap_out *o, sqlite3_stmt *q);
/* The lease section, read through db (in the caller's read transaction). */
int storage_snap_leases(snap_out *o, sqlite3 *db, char *err, size_t errcap);
void storage_snap_trailer(snap_out *o);
int storage_snap_fsync_dir(const char *path);

#endif
