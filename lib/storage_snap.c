/*
 * storage_snap.c - the snapshot file: its format, writing it from the kv
 * table (at once or incrementally from a second read-only connection),
 * and verifying and installing one; plus the snapshot meta in the database.
 *
 * File format (all integers big-endian):
 *   magic    "KVSNAP01"                       8 bytes
 *   index    u64, term u64
 *   conf_len u32, conf bytes                  (see conf_encode below)
 *   count    u64                              number of records
 *   records  klen u32, key, vlen u32, value, mod_index u64
 *   trailer  "KVSNEND!" 8 bytes, checksum u64 = FNV-1a 64 of every byte
 *            before the checksum (magic .. trailer)
 * A file is written to PATH.tmp, fsynced, renamed to PATH and the directory
 * fsynced. Install verifies the whole file (lengths and checksum) before it
 * touches the database.
 *
 * Config encoding (snap_conf and snapshot header): n u32, then per node
 * id u64, voter u8, meta_len u16, meta bytes. Encoded here rather than with
 * raft_config_encode so storage does not depend on the core.
 */
#include "storage_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- config encoding ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

#define CONF_MAX (4 + RAFT_MAX_NODES * (8 + 1 + 2 + RAFT_META_MAX))

static size_t conf_encode(const raft_config *c, uint8_t *buf)
{
    size_t o = 0;
    uint32_t n = c->n > RAFT_MAX_NODES ? RAFT_MAX_NODES : c->n;
    put32(buf, n);
    o = 4;
    for (uint32_t i = 0; i < n; i++) {
        const raft_node *nd = &c->nodes[i];
        size_t ml = strnlen(nd->meta, RAFT_META_MAX - 1);
        put64(buf + o, nd->id);
        buf[o + 8] = nd->voter;
        buf[o + 9] = (uint8_t)(ml >> 8);
        buf[o + 10] = (uint8_t)ml;
        memcpy(buf + o + 11, nd->meta, ml);
        o += 11 + ml;
    }
    return o;
}

static int conf_decode(raft_config *c, const uint8_t *p, size_t len)
{
    memset(c, 0, sizeof *c);
    if (len < 4)
        return -1;
    uint32_t n = get32(p);
    if (n > RAFT_MAX_NODES)
        return -1;
    size_t o = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - o < 11)
            return -1;
        raft_node *nd = &c->nodes[i];
        nd->id = get64(p + o);
        nd->voter = p[o + 8];
        size_t ml = (size_t)p[o + 9] << 8 | p[o + 10];
        o += 11;
        if (ml >= RAFT_META_MAX || len - o < ml)
            return -1;
        memcpy(nd->meta, p + o, ml);
        nd->meta[ml] = 0;
        o += ml;
    }
    if (o != len)
        return -1;
    c->n = n;
    return 0;
}
/* ---- snapshots ---- */

#define FNV_OFF 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

typedef struct snap_out {
    FILE *f;
    uint64_t sum;
    int err;
} snap_out;

static void sw(snap_out *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        o->sum = (o->sum ^ b[i]) * FNV_PRIME;
    if (n && fwrite(p, 1, n, o->f) != n)
        o->err = 1;
}
static void sw32(snap_out *o, uint32_t v) { uint8_t b[4]; put32(b, v); sw(o, b, 4); }
static void sw64(snap_out *o, uint64_t v) { uint8_t b[8]; put64(b, v); sw(o, b, 8); }

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int storage_snap_meta_load(store *s, int *has, raft_snap_meta *m)
{
    memset(m, 0, sizeof *m);
    *has = 0;
    if (storage_meta_get_int(s, "snap_index", &m->index) < 0 ||
        storage_meta_get_int(s, "snap_term", &m->term) < 0)
        return -1;
    if (m->index == 0)
        return 0;
    sqlite3_stmt *q = storage_stmt(s, ST_META_GET);
    sqlite3_bind_text(q, 1, "snap_conf", -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        if (rc == SQLITE_DONE) {
            storage_set_err(s, "snapshot %llu: configuration missing",
                            (unsigned long long)m->index);
            return -1;
        }
        return storage_db_fail(s, "read snapshot meta");
    }
    const void *p = sqlite3_column_blob(q, 0);
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    int bad = conf_decode(&m->conf, p, n);
    sqlite3_reset(q);
    if (bad) {
        storage_set_err(s, "snapshot %llu: configuration corrupt", (unsigned long long)m->index);
        return -1;
    }
    *has = 1;
    return 0;
}

static int save_snap_meta(store *s, const raft_snap_meta *meta)
{
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    if (storage_meta_set_int(s, "snap_index", meta->index) < 0 ||
        storage_meta_set_int(s, "snap_term", meta->term) < 0 ||
        storage_meta_set_blob(s, "snap_conf", cbuf, cl) < 0)
        return -1;
    return 0;
}

int store_snapshot_write(store *s, const char *path, const raft_snap_meta *meta)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        storage_set_err(s, "snapshot %s: path too long", path);
        return -1;
    }
    if (meta->index != s->applied) {
        storage_set_err(s, "snapshot: meta index %llu is not the applied index %llu",
                        (unsigned long long)meta->index, (unsigned long long)s->applied);
        return -1;
    }
    int own;
    if (storage_auto_begin(s, &own) < 0) /* a consistent view of kv */
        return -1;
    snap_out o = {.f = fopen(tmp, "wb"), .sum = FNV_OFF};
    if (!o.f) {
        storage_set_err(s, "snapshot %s: %s", tmp, strerror(errno));
        return storage_auto_end(s, own, -1);
    }
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    int64_t count = store_count(s);
    if (count < 0)
        goto fail;
    sw(&o, "KVSNAP01", 8);
    sw64(&o, meta->index);
    sw64(&o, meta->term);
    sw32(&o, (uint32_t)cl);
    sw(&o, cbuf, cl);
    sw64(&o, (uint64_t)count);
    sqlite3_stmt *q = storage_stmt(s, ST_KV_ALL);
    int rc;
    int64_t seen = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && !o.err) {
        size_t kl = (size_t)sqlite3_column_bytes(q, 0);
        const void *k = sqlite3_column_blob(q, 0);
        sw32(&o, (uint32_t)kl);
        sw(&o, k, kl);
        size_t vl = (size_t)sqlite3_column_bytes(q, 1);
        const void *v = sqlite3_column_blob(q, 1);
        sw32(&o, (uint32_t)vl);
        sw(&o, v, vl);
        sw64(&o, (uint64_t)sqlite3_column_int64(q, 2));
        seen++;
    }
    sqlite3_reset(q);
    if (!o.err && rc != SQLITE_DONE) {
        storage_db_fail(s, "snapshot read kv");
        goto fail;
    }
    if (seen != count) {
        storage_set_err(s, "snapshot: kv table changed while writing");
        goto fail;
    }
    sw(&o, "KVSNEND!", 8);
    uint8_t sb[8];
    put64(sb, o.sum);
    if (fwrite(sb, 1, 8, o.f) != 8)
        o.err = 1;
    if (o.err || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
        storage_set_err(s, "snapshot %s: write: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(o.f) != 0) {
        o.f = NULL;
        storage_set_err(s, "snapshot %s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    o.f = NULL;
    if (rename(tmp, path) != 0) {
        storage_set_err(s, "snapshot rename %s: %s", path, strerror(errno));
        goto fail;
    }
    fsync_dir_of(path);
    if (save_snap_meta(s, meta) < 0)
        return storage_auto_end(s, own, -1);
    return storage_auto_end(s, own, 0);
fail:
    if (o.f)
        fclose(o.f);
    unlink(tmp);
    return storage_auto_end(s, own, -1);
}

/* Reader over a snapshot file that checksums what it reads. */
typedef struct snap_in {
    FILE *f;
    uint64_t sum;
    int err;     /* short read */
    uint8_t *buf;
    size_t cap;
} snap_in;

static int sr(snap_in *in, void *p, size_t n)
{
    if (n && fread(p, 1, n, in->f) != n) {
        in->err = 1;
        return -1;
    }
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        in->sum = (in->sum ^ b[i]) * FNV_PRIME;
    return 0;
}
static int sr32(snap_in *in, uint32_t *v)
{
    uint8_t b[4];
    if (sr(in, b, 4) < 0)
        return -1;
    *v = get32(b);
    return 0;
}
static int sr64(snap_in *in, uint64_t *v)
{
    uint8_t b[8];
    if (sr(in, b, 8) < 0)
        return -1;
    *v = get64(b);
    return 0;
}
static int sr_buf(snap_in *in, size_t n)
{
    if (n + 1 > in->cap) {
        size_t nc = n + 1 < 4096 ? 4096 : n + 1;
        uint8_t *nb = realloc(in->buf, nc);
        if (!nb)
            return -1;
        in->buf = nb;
        in->cap = nc;
    }
    return sr(in, in->buf, n);
}

#define SNAP_VALUE_MAX (64u * 1024 * 1024)

/* Read and check a snapshot file. With insert set, insert every record into
 * kv. Returns 0 ok, -1 error (message set). */
static int snap_pass(store *s, const char *path, const raft_snap_meta *meta, int insert)
{
    snap_in in = {.f = fopen(path, "rb"), .sum = FNV_OFF};
    if (!in.f) {
        storage_set_err(s, "snapshot %s: %s", path, strerror(errno));
        return -1;
    }
    int ret = -1;
    uint8_t magic[8];
    uint64_t idx, term, count;
    uint32_t cl;
    if (sr(&in, magic, 8) < 0 || memcmp(magic, "KVSNAP01", 8) != 0) {
        storage_set_err(s, "snapshot %s: not a keyval snapshot", path);
        goto out;
    }
    if (sr64(&in, &idx) < 0 || sr64(&in, &term) < 0 || sr32(&in, &cl) < 0)
        goto short_read;
    if (idx != meta->index || term != meta->term) {
        storage_set_err(s, "snapshot %s: is index %llu term %llu, expected %llu/%llu", path,
                        (unsigned long long)idx, (unsigned long long)term,
                        (unsigned long long)meta->index, (unsigned long long)meta->term);
        goto out;
    }
    raft_config conf;
    if (cl > CONF_MAX || sr_buf(&in, cl) < 0 || conf_decode(&conf, in.buf, cl) < 0) {
        storage_set_err(s, "snapshot %s: bad configuration", path);
        goto out;
    }
    if (sr64(&in, &count) < 0)
        goto short_read;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t kl, vl;
        uint64_t mi;
        if (sr32(&in, &kl) < 0)
            goto short_read;
        if (kl < 1 || kl > KEY_MAX) {
            storage_set_err(s, "snapshot %s: bad key length %u", path, kl);
            goto out;
        }
        char key[KEY_MAX];
        if (sr(&in, key, kl) < 0 || sr32(&in, &vl) < 0)
            goto short_read;
        if (vl > SNAP_VALUE_MAX) {
            storage_set_err(s, "snapshot %s: bad value length %u", path, vl);
            goto out;
        }
        if (sr_buf(&in, vl) < 0) {
            if (!in.err)
                storage_set_err(s, "snapshot %s: out of memory", path);
            else
                storage_set_err(s, "snapshot %s: truncated", path);
            goto out;
        }
        if (sr64(&in, &mi) < 0)
            goto short_read;
        if (insert) {
            sqlite3_stmt *q = storage_stmt(s, ST_KV_SET);
            sqlite3_bind_blob(q, 1, key, (int)kl, SQLITE_STATIC);
            sqlite3_bind_blob(q, 2, vl ? (void *)in.buf : (void *)"", (int)vl, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)mi);
            if (storage_step_done(s, q, "snapshot insert") < 0)
                goto out;
        }
    }
    if (sr(&in, magic, 8) < 0)
        goto short_read;
    if (memcmp(magic, "KVSNEND!", 8) != 0) {
        storage_set_err(s, "snapshot %s: bad trailer", path);
        goto out;
    }
    uint64_t want = in.sum, got;
    if (sr64(&in, &got) < 0)
        goto short_read;
    if (got != want) {
        storage_set_err(s, "snapshot %s: checksum mismatch", path);
        goto out;
    }
    if (fgetc(in.f) != EOF) {
        storage_set_err(s, "snapshot %s: trailing bytes", path);
        goto out;
    }
    ret = 0;
    goto out;
short_read:
    storage_set_err(s, "snapshot %s: truncated", path);
out:
    fclose(in.f);
    free(in.buf);
    return ret;
}

int store_snapshot_install(store *s, const char *path, const raft_snap_meta *meta)
{
    if (meta->index == 0 || meta->index > INT64_MAX) {
        storage_set_err(s, "snapshot install: bad index");
        return -1;
    }
    if (snap_pass(s, path, meta, 0) < 0)
        return -1;
    int own, ok;
    uint64_t old = s->applied;
    if (storage_auto_begin(s, &own) < 0)
        return -1;
    ok = storage_step_done(s, storage_stmt(s, ST_KV_CLEAR), "snapshot clear kv");
    if (ok == 0)
        ok = storage_step_done(s, storage_stmt(s, ST_LOG_CLEAR), "snapshot clear log");
    if (ok == 0)
        ok = snap_pass(s, path, meta, 1);
    if (ok == 0)
        ok = save_snap_meta(s, meta);
    if (ok == 0)
        ok = storage_set_applied(s, meta->index);
    ok = storage_auto_end(s, own, ok);
    if (ok < 0)
        s->applied = old;
    return ok;
}

/* ---- incremental snapshots ---- */

struct store_snap_writer {
    store *s;
    sqlite3 *db;          /* read-only connection holding the read txn */
    sqlite3_stmt *q;
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
    if (sqlite3_prepare_v2(w->db, "SELECT key, value, mod_index FROM kv ORDER BY key", -1, &w->q,
                           NULL) != SQLITE_OK) {
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
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    sw(&w->o, "KVSNAP01", 8);
    sw64(&w->o, meta->index);
    sw64(&w->o, meta->term);
    sw32(&w->o, (uint32_t)cl);
    sw(&w->o, cbuf, cl);
    sw64(&w->o, (uint64_t)w->count);
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
        size_t kl = (size_t)sqlite3_column_bytes(w->q, 0);
        const void *k = sqlite3_column_blob(w->q, 0);
        size_t vl = (size_t)sqlite3_column_bytes(w->q, 1);
        const void *v = sqlite3_column_blob(w->q, 1);
        sw32(&w->o, (uint32_t)kl);
        sw(&w->o, k, kl);
        sw32(&w->o, (uint32_t)vl);
        sw(&w->o, v, vl);
        sw64(&w->o, (uint64_t)sqlite3_column_int64(w->q, 2));
        written += kl + vl + 16;
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
    sw(&w->o, "KVSNEND!", 8);
    uint8_t sb[8];
    put64(sb, w->o.sum);
    if (fwrite(sb, 1, 8, w->o.f) != 8 || fflush(w->o.f) != 0 || fsync(fileno(w->o.f)) != 0) {
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
    fsync_dir_of(w->path);
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
    return storage_auto_end(s, own, save_snap_meta(s, &meta));
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

int64_t store_snapshot_file_records(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t h[28], c[8];
    int64_t n = -1;
    if (fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "KVSNAP01", 8) == 0) {
        uint32_t cl = get32(h + 24);
        if (cl <= CONF_MAX && fseek(f, (long)cl, SEEK_CUR) == 0 && fread(c, 1, 8, f) == 8 &&
            get64(c) <= INT64_MAX)
            n = (int64_t)get64(c);
    }
    fclose(f);
    return n;
}
