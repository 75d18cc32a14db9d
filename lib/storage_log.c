/*
 * storage_log.c - the Raft log store: transactions (durable and lazy
 * commits), hard state (term, vote), log append, truncation, compaction,
 * and loading it all back at start-up. Does not interpret entries.
 */
#include "storage_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- transactions ---- */

int store_begin(store *s)
{
    if (s->in_txn) {
        storage_set_err(s, "begin: a transaction is already open");
        return -1;
    }
    if (storage_step_done(s, storage_stmt(s, ST_BEGIN), "begin") < 0)
        return -1;
    s->in_txn = 1;
    return 0;
}

int store_begin_lazy(store *s)
{
    if (!s->in_txn && storage_exec(s, "PRAGMA synchronous=NORMAL") < 0)
        return -1;
    if (store_begin(s) < 0) {
        storage_exec(s, "PRAGMA synchronous=FULL");
        return -1;
    }
    s->lazy = 1;
    return 0;
}

/* After a lazy transaction: back to synchronous=FULL for the next. */
static int end_lazy(store *s)
{
    if (!s->lazy)
        return 0;
    s->lazy = 0;
    return storage_exec(s, "PRAGMA synchronous=FULL");
}

int store_commit(store *s)
{
    if (!s->in_txn) {
        storage_set_err(s, "commit: no transaction open");
        return -1;
    }
    /* The applied index of a batch of store_apply calls, written once. */
    if (s->applied_dirty) {
        if (storage_meta_set_int(s, "applied", s->applied) < 0) {
            char keep[sizeof s->err];
            memcpy(keep, s->err, sizeof keep);
            store_rollback(s);
            memcpy(s->err, keep, sizeof keep);
            return -1;
        }
        s->applied_dirty = 0;
    }
    if (storage_step_done(s, storage_stmt(s, ST_COMMIT), "commit") < 0) {
        store_rollback(s);
        return -1;
    }
    s->in_txn = 0;
    return end_lazy(s);
}

void store_rollback(store *s)
{
    if (!s->in_txn)
        return;
    sqlite3_stmt *q = storage_stmt(s, ST_ROLLBACK);
    sqlite3_step(q);
    sqlite3_reset(q);
    s->in_txn = 0;
    s->applied_dirty = 0;
    end_lazy(s);
    /* The cached applied index may be ahead of the database now. */
    uint64_t a;
    if (storage_meta_get_int(s, "applied", &a) >= 0)
        s->applied = a;
    storage_history_reload(s); /* the seq bounds and floor, likewise */
}

/* Functions that must be atomic open their own transaction when the caller
 * has none. */
int storage_auto_begin(store *s, int *own)
{
    *own = 0;
    if (s->in_txn)
        return 0;
    if (store_begin(s) < 0)
        return -1;
    *own = 1;
    return 0;
}

int storage_auto_end(store *s, int own, int ok)
{
    if (!own)
        return ok;
    if (ok < 0) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        store_rollback(s);
        memcpy(s->err, keep, sizeof keep);
        return -1;
    }
    return store_commit(s);
}
/* ---- hard state and log ---- */

int store_save_hs(store *s, const raft_hard_state *hs)
{
    int own, ok;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    ok = storage_meta_set_int(s, "term", hs->term);
    if (ok == 0)
        ok = storage_meta_set_int(s, "vote", hs->vote);
    return storage_auto_end(s, own, ok);
}

int store_truncate(store *s, uint64_t from)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LOG_TRUNCATE);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
    return storage_step_done(s, q, "truncate log");
}

int store_compact(store *s, uint64_t upto)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LOG_COMPACT);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)upto);
    return storage_step_done(s, q, "compact log");
}

int store_compact_some(store *s, uint64_t upto, unsigned max_rows)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LOG_COMPACT_SOME);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)(upto > INT64_MAX ? INT64_MAX : upto));
    sqlite3_bind_int64(q, 2, (sqlite3_int64)max_rows);
    if (storage_step_done(s, q, "compact log") < 0)
        return -1;
    return sqlite3_changes(s->db);
}

int store_append(store *s, const raft_entry *e, size_t n)
{
    int own, ok = 0;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    for (size_t i = 0; i < n && ok == 0; i++) {
        if (e[i].index == 0 || e[i].index > INT64_MAX) {
            storage_set_err(s, "append: bad index %llu", (unsigned long long)e[i].index);
            ok = -1;
            break;
        }
        sqlite3_stmt *q = storage_stmt(s, ST_LOG_INSERT);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)e[i].index);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)e[i].term);
        sqlite3_bind_int(q, 3, e[i].type);
        if (e[i].len)
            sqlite3_bind_blob(q, 4, e[i].data, (int)e[i].len, SQLITE_STATIC);
        else
            sqlite3_bind_zeroblob(q, 4, 0);
        ok = storage_step_done(s, q, "append log");
    }
    return storage_auto_end(s, own, ok);
}

/* ---- load ---- */

void store_loaded_free(store_loaded *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_entries; i++)
        free(l->entries[i].data);
    free(l->entries);
    l->entries = NULL;
    l->n_entries = 0;
}

/* Read the current row of a log query into a new entry at *v (grown as
 * needed), its data copied. 0 done, -1 error (set on s). */
static int log_row(store *s, sqlite3_stmt *q, raft_entry **v, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        raft_entry *ne = realloc(*v, nc * sizeof *ne);
        if (!ne) {
            storage_set_err(s, "load log: out of memory");
            return -1;
        }
        *v = ne;
        *cap = nc;
    }
    raft_entry *e = &(*v)[*n];
    memset(e, 0, sizeof *e);
    e->index = (uint64_t)sqlite3_column_int64(q, 0);
    e->term = (uint64_t)sqlite3_column_int64(q, 1);
    e->type = (uint8_t)sqlite3_column_int(q, 2);
    const void *d = sqlite3_column_blob(q, 3);
    size_t len = (size_t)sqlite3_column_bytes(q, 3);
    if (len > UINT32_MAX) {
        storage_set_err(s, "load log: entry %llu too large", (unsigned long long)e->index);
        return -1;
    }
    if (len) {
        e->data = malloc(len);
        if (!e->data) {
            storage_set_err(s, "load log: out of memory");
            return -1;
        }
        memcpy(e->data, d, len);
    }
    e->len = (uint32_t)len;
    (*n)++;
    return 0;
}

int store_log_range(store *s, uint64_t from, uint64_t upto, size_t max_bytes, raft_entry **out,
                    size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (from == 0 || from > INT64_MAX || upto > INT64_MAX)
        return 0;
    size_t cap = 0, bytes = 0;
    sqlite3_stmt *q = storage_stmt(s, ST_LOG_RANGE);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)upto);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 3);
        if (*n_out > 0 && bytes + len > max_bytes)
            break;
        if (log_row(s, q, out, n_out, &cap) < 0)
            goto fail;
        bytes += len;
        if ((*out)[*n_out - 1].index != from + *n_out - 1)
            break; /* a gap: what was read so far is consecutive */
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        storage_db_fail(s, "read log");
        goto fail;
    }
    sqlite3_reset(q);
    if (*n_out && (*out)[*n_out - 1].index != from + *n_out - 1) {
        free((*out)[*n_out - 1].data);
        (*n_out)--;
    }
    return 0;
fail:
    sqlite3_reset(q);
    store_entries_free(*out, *n_out);
    *out = NULL;
    *n_out = 0;
    return -1;
}

void store_entries_free(raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

int store_load(store *s, store_loaded *out)
{
    memset(out, 0, sizeof *out);
    if (storage_meta_get_int(s, "term", &out->hs.term) < 0 ||
        storage_meta_get_int(s, "vote", &out->hs.vote) < 0 ||
        storage_meta_get_int(s, "applied", &out->applied) < 0 ||
        storage_snap_meta_load(s, &out->has_snap, &out->snap) < 0)
        return -1;
    s->applied = out->applied;
    size_t cap = 0;
    uint64_t base = out->has_snap ? out->snap.index : 0;
    sqlite3_stmt *q = storage_stmt(s, ST_LOG_LOAD);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)base);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (log_row(s, q, &out->entries, &out->n_entries, &cap) < 0)
            goto fail;
        const raft_entry *e = &out->entries[out->n_entries - 1];
        uint64_t want = out->n_entries == 1 ? e->index : out->entries[out->n_entries - 2].index + 1;
        if (e->index != want) {
            storage_set_err(s, "load log: gap before index %llu", (unsigned long long)e->index);
            goto fail;
        }
        if (out->n_entries == 1 && base && e->index != base + 1) {
            storage_set_err(s, "load log: first entry %llu does not follow snapshot %llu",
                            (unsigned long long)e->index, (unsigned long long)base);
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        storage_db_fail(s, "load log");
        goto fail;
    }
    sqlite3_reset(q);
    return 0;
fail:
    sqlite3_reset(q);
    store_loaded_free(out);
    return -1;
}
