/*
 * storage_snap_writer.c - writing a snapshot file incrementally, for a
 * caller that must not stall on a big table (storage.h,
 * store_snapshot_begin): a second, read-only connection's read
 * transaction pins the kv and leases tables as of the applied index while
 * the caller goes on committing; each step writes about a budget's worth
 * of records. The file format is storage_snap.c's.
 */
#include "storage_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct store_snap_writer {
    store *s;
    sqlite3 *db;     /* read-only connection holding the read txn */
    sqlite3_stmt *q; /* the records, in key order */
    raft_snap_meta meta;
    char path[4096], tmp[4200];
    snap_out o;
    int64_t count, seen;
    int done;
};

static void writer_free(store_snap_writer *w, int unlink_tmp)
{
    if (w->q)
        sqlite3_finalize(w->q);
    if (w->db) {
        sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(w->db);
    }
    if (w->o.f)
        fclose(w->o.f);
    if (unlink_tmp)
        unlink(w->tmp);
    free(w);
}

store_snap_writer *store_snapshot_begin(store *s, const char *path, const raft_snap_meta *meta)
{
    if (s->in_txn) {
        storage_set_err(s, "snapshot begin: a transaction is open");
        return NULL;
    }
    if (meta->index != s->applied || meta->index == 0) {
        storage_set_err(s, "snapshot: meta index %llu is not the applied index %llu",
                        (unsigned long long)meta->index, (unsigned long long)s->applied);
        return NULL;
    }
    store_snap_writer *w = calloc(1, sizeof *w);
    if (!w) {
        storage_set_err(s, "snapshot: out of memory");
        return NULL;
    }
    w->s = s;
    w->meta = *meta;
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path) {
        storage_set_err(s, "snapshot %s: path too long", path);
        free(w);
        return NULL;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    sqlite3_stmt *m = NULL;
    if (sqlite3_open_v2(s->path, &w->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(w->db, 5000) != SQLITE_OK ||
        sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(w->db,
                           "SELECT (SELECT value FROM meta WHERE name = 'applied'),"
                           " (SELECT count(*) FROM kv)",
                           -1, &m, NULL) != SQLITE_OK ||
        sqlite3_step(m) != SQLITE_ROW) {
        storage_set_err(s, "snapshot read connection: %s",
                        w->db ? sqlite3_errmsg(w->db) : "cannot open");
        sqlite3_finalize(m);
        writer_free(w, 0);
        return NULL;
    }
    /* The read transaction starts at the first read: check it saw the state
     * the caller meant. */
    uint64_t applied = (uint64_t)sqlite3_column_int64(m, 0);
    w->count = sqlite3_column_int64(m, 1);
    sqlite3_finalize(m);
    if (applied != meta->index) {
        storage_set_err(s, "snapshot: database is at %llu, not %llu (uncommitted changes?)",
                        (unsigned long long)applied, (unsigned long long)meta->index);
        writer_free(w, 0);
        return NULL;
    }
    if (sqlite3_prepare_v2(w->db, "SELECT key, value, mod_index, lease FROM kv ORDER BY key", -1,
                           &w->q, NULL) != SQLITE_OK) {
        storage_set_err(s, "snapshot read: %s", sqlite3_errmsg(w->db));
        writer_free(w, 0);
        return NULL;
    }
    w->o.f = fopen(w->tmp, "wb");
    w->o.sum = FNV_OFF;
    if (!w->o.f) {
        storage_set_err(s, "snapshot %s: %s", w->tmp, strerror(errno));
        writer_free(w, 0);
        return NULL;
    }
    storage_snap_header(&w->o, meta, (uint64_t)w->count);
    return w;
}

int store_snapshot_step(store_snap_writer *w, size_t budget)
{
    store *s = w->s;
    if (w->done)
        return 1;
    size_t written = 0;
    int rc = SQLITE_ROW;
    while (written < budget && !w->o.err && (rc = sqlite3_step(w->q)) == SQLITE_ROW) {
        written += storage_snap_record(&w->o, w->q);
        w->seen++;
    }
    if (w->o.err) {
        storage_set_err(s, "snapshot %s: write: %s", w->tmp, strerror(errno));
        return -1;
    }
    if (rc == SQLITE_ROW) {
        /* Start write-back now so that the final fsync has little left. */
        if (fflush(w->o.f) == 0)
            sync_file_range(fileno(w->o.f), 0, 0, SYNC_FILE_RANGE_WRITE);
        return 0;
    }
    if (rc != SQLITE_DONE) {
        storage_set_err(s, "snapshot read kv: %s", sqlite3_errmsg(w->db));
        return -1;
    }
    if (w->seen != w->count) {
        storage_set_err(s, "snapshot: read %lld records, expected %lld", (long long)w->seen,
                        (long long)w->count);
        return -1;
    }
    /* The leases, as of the same read transaction as the records. */
    if (storage_snap_leases(&w->o, w->db, s->err, sizeof s->err) < 0)
        return -1;
    storage_snap_trailer(&w->o);
    if (w->o.err || fflush(w->o.f) != 0 || fsync(fileno(w->o.f)) != 0) {
        storage_set_err(s, "snapshot %s: write: %s", w->tmp, strerror(errno));
        return -1;
    }
    int cr = fclose(w->o.f);
    w->o.f = NULL;
    if (cr != 0) {
        storage_set_err(s, "snapshot %s: close: %s", w->tmp, strerror(errno));
        return -1;
    }
    if (rename(w->tmp, w->path) != 0) {
        storage_set_err(s, "snapshot rename %s: %s", w->path, strerror(errno));
        return -1;
    }
    storage_snap_fsync_dir(w->path);
    w->done = 1;
    return 1;
}

int store_snapshot_finish(store_snap_writer *w)
{
    store *s = w->s;
    if (!w->done) {
        storage_set_err(s, "snapshot finish: file not complete");
        store_snapshot_abort(w);
        return -1;
    }
    raft_snap_meta meta = w->meta;
    writer_free(w, 0);
    int own;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    return storage_auto_end(s, own, storage_snap_meta_save(s, &meta));
}

int store_snapshot_mark(store *s, const raft_snap_meta *meta)
{
    if (meta->index != s->applied || meta->index == 0) {
        storage_set_err(s, "snapshot: meta index %llu is not the applied index %llu",
                        (unsigned long long)meta->index, (unsigned long long)s->applied);
        return -1;
    }
    int own;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    return storage_auto_end(s, own, storage_snap_meta_save(s, meta));
}

void store_snapshot_abort(store_snap_writer *w)
{
    if (w)
        writer_free(w, !w->done);
}

int64_t store_snapshot_records(const store_snap_writer *w)
{
    return w->count;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int64_t store_snapshot_file_records(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t h[28], c[8];
    int64_t n = -1;
    if (fread(h, 1, sizeof h, f) == sizeof h &&
        (memcmp(h, SNAP_MAGIC_V1, 8) == 0 || memcmp(h, SNAP_MAGIC_V2, 8) == 0)) {
        uint32_t cl = be32(h + 24);
        uint64_t count;
        if (cl <= 65536 && fseek(f, (long)cl, SEEK_CUR) == 0 && fread(c, 1, 8, f) == 8 &&
            (count = (uint64_t)be32(c) << 32 | be32(c + 4)) <= INT64_MAX)
            n = (int64_t)count;
    }
    fclose(f);
    return n;
}
