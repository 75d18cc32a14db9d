/*
 * storage_impl.h - private to lib/storage*.c: the store struct, the table
 * of prepared statements and the helpers the three parts share. Callers
 * outside lib/storage*.c use storage.h only.
 *
 * The parts: storage.c (open/close, errors, statements, meta),
 * storage_log.c (transactions, hard state, log), storage_kv.c (the state
 * machine: apply, reads), storage_snap.c (the snapshot file).
 */
#ifndef KEYVAL_STORAGE_IMPL_H
#define KEYVAL_STORAGE_IMPL_H

#include "storage.h"

#include <sqlite3.h>

#define KEY_MAX 1024

/* One prepared statement per entry of the SQL table in storage.c. */
enum {
    ST_META_GET,
    ST_META_SET,
    ST_LOG_INSERT,
    ST_LOG_TRUNCATE,
    ST_LOG_COMPACT,
    ST_LOG_LOAD,
    ST_KV_GET,
    ST_KV_SET,
    ST_KV_DEL,
    ST_KV_SCAN,
    ST_KV_SCAN_AFTER,
    ST_KV_COUNT,
    ST_KV_ALL,
    ST_KV_CLEAR,
    ST_LOG_CLEAR,
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
    int lazy;          /* this transaction commits with synchronous=NORMAL */
    uint64_t applied;
    int applied_dirty; /* applied moved in this transaction; written at commit */
    char err[512];
};

/* storage.c: errors and statements. */
void storage_set_err(store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
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

/* storage_snap.c: the snapshot meta recorded in the database. */
int storage_snap_meta_load(store *s, int *has, raft_snap_meta *m);

#endif
