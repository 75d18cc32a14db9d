/*
 * storage_snap.c - the snapshot file: its format, writing it from the kv
 * and leases tables at once, verifying and installing one; the pieces of
 * the format the incremental writer (storage_snap_writer.c) shares; the
 * snapshot meta in the database.
 *
 * File format (all integers big-endian), version 2:
 *   magic    "KVSNAP02"                       8 bytes
 *   index    u64, term u64
 *   conf_len u32, conf bytes                  (see conf_encode below)
 *   count    u64                              number of records
 *   records  klen u32, key, vlen u32, value, mod_index u64, lease u64
 *   nleases  u64, then per lease id u64, ttl_ms u64
 *   trailer  "KVSNEND!" 8 bytes, checksum u64 = FNV-1a 64 of every byte
 *            before the checksum (magic .. trailer)
 * Version 1 ("KVSNAP01", written before leases) has records without the
 * lease and no lease section; it still reads, as no leases.
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
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
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
/* ---- writing the file ---- */

static void sw(snap_out *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        o->sum = (o->sum ^ b[i]) * FNV_PRIME;
    if (n && fwrite(p, 1, n, o->f) != n)
        o->err = 1;
}
static void sw32(snap_out *o, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    sw(o, b, 4);
}
static void sw64(snap_out *o, uint64_t v)
{
    uint8_t b[8];
    put64(b, v);
    sw(o, b, 8);
}

void storage_snap_header(snap_out *o, const raft_snap_meta *meta, uint64_t count)
{
    uint8_t cbuf[CONF_MAX];
    size_t cl = conf_encode(&meta->conf, cbuf);
    sw(o, SNAP_MAGIC_V2, 8);
    sw64(o, meta->index);
    sw64(o, meta->term);
    sw32(o, (uint32_t)cl);
    sw(o, cbuf, cl);
    sw64(o, count);
}

size_t storage_snap_record(snap_out *o, sqlite3_stmt *q)
{
    size_t kl = (size_t)sqlite3_column_bytes(q, 0);
    const void *k = sqlite3_column_blob(q, 0);
    size_t vl = (size_t)sqlite3_column_bytes(q, 1);
    const void *v = sqlite3_column_blob(q, 1);
    sw32(o, (uint32_t)kl);
    sw(o, k, kl);
    sw32(o, (uint32_t)vl);
    sw(o, v, vl);
    sw64(o, (uint64_t)sqlite3_column_int64(q, 2));
    sw64(o, (uint64_t)sqlite3_column_int64(q, 3));
    return kl + vl + 24;
}

int storage_snap_leases(snap_out *o, sqlite3 *db, char *err, size_t errcap)
{
    sqlite3_stmt *c = NULL, *q = NULL;
    int rc = SQLITE_ERROR;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM leases", -1, &c, NULL) == SQLITE_OK &&
        sqlite3_step(c) == SQLITE_ROW &&
        sqlite3_prepare_v2(db, "SELECT id, ttl_ms FROM leases ORDER BY id", -1, &q, NULL) ==
            SQLITE_OK) {
        int64_t n = sqlite3_column_int64(c, 0), seen = 0;
        sw64(o, (uint64_t)n);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            sw64(o, (uint64_t)sqlite3_column_int64(q, 0));
            sw64(o, (uint64_t)sqlite3_column_int64(q, 1));
            seen++;
        }
        if (rc == SQLITE_DONE && seen != n)
            rc = SQLITE_MISUSE;
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errcap, "snapshot read leases: %s",
                 rc == SQLITE_MISUSE ? "table changed while writing" : sqlite3_errmsg(db));
    sqlite3_finalize(c);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? 0 : -1;
}

void storage_snap_trailer(snap_out *o)
{
    sw(o, "KVSNEND!", 8);
    uint8_t sb[8];
    put64(sb, o->sum);
    if (fwrite(sb, 1, 8, o->f) != 8)
        o->err = 1;
}

int storage_snap_fsync_dir(const char *path)
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

int storage_snap_meta_save(store *s, const raft_snap_meta *meta)
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
    int64_t count = store_count(s);
    if (count < 0)
        goto fail;
    storage_snap_header(&o, meta, (uint64_t)count);
    sqlite3_stmt *q = storage_stmt(s, ST_KV_ALL);
    int rc;
    int64_t seen = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && !o.err) {
        storage_snap_record(&o, q);
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
    if (storage_snap_leases(&o, s->db, s->err, sizeof s->err) < 0)
        goto fail;
    storage_snap_trailer(&o);
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
    storage_snap_fsync_dir(path);
    if (storage_snap_meta_save(s, meta) < 0)
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
    int err; /* short read */
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

/* The lease section of a version 2 file. 0 ok, -1 error (message set). */
static int snap_pass_leases(store *s, snap_in *in, const char *path, int insert)
{
    uint64_t n, id, ttl;
    if (sr64(in, &n) < 0) {
        storage_set_err(s, "snapshot %s: truncated", path);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (sr64(in, &id) < 0 || sr64(in, &ttl) < 0) {
            storage_set_err(s, "snapshot %s: truncated", path);
            return -1;
        }
        if (id == 0 || id > INT64_MAX || ttl > INT64_MAX) {
            storage_set_err(s, "snapshot %s: bad lease", path);
            return -1;
        }
        if (insert) {
            sqlite3_stmt *q = storage_stmt(s, ST_LEASE_PUT);
            sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
            sqlite3_bind_int64(q, 2, (sqlite3_int64)ttl);
            if (storage_step_done(s, q, "snapshot insert lease") < 0)
                return -1;
        }
    }
    return 0;
}

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
    if (sr(&in, magic, 8) < 0 ||
        (memcmp(magic, SNAP_MAGIC_V1, 8) != 0 && memcmp(magic, SNAP_MAGIC_V2, 8) != 0)) {
        storage_set_err(s, "snapshot %s: not a keyval snapshot", path);
        goto out;
    }
    int v2 = memcmp(magic, SNAP_MAGIC_V2, 8) == 0;
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
        uint64_t lease = 0;
        if (sr64(&in, &mi) < 0 || (v2 && sr64(&in, &lease) < 0))
            goto short_read;
        if (mi > INT64_MAX || lease > INT64_MAX) {
            storage_set_err(s, "snapshot %s: bad index", path);
            goto out;
        }
        if (insert) {
            sqlite3_stmt *q = storage_stmt(s, ST_KV_SET);
            sqlite3_bind_blob(q, 1, key, (int)kl, SQLITE_STATIC);
            sqlite3_bind_blob(q, 2, vl ? (void *)in.buf : (void *)"", (int)vl, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)mi);
            sqlite3_bind_int64(q, 4, (sqlite3_int64)lease);
            if (storage_step_done(s, q, "snapshot insert") < 0)
                goto out;
        }
    }
    if (v2 && snap_pass_leases(s, &in, path, insert) < 0)
        goto out;
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
        ok = storage_step_done(s, storage_stmt(s, ST_LEASE_CLEAR), "snapshot clear leases");
    /* What came before the snapshot is unknown here: the history starts
     * at it. */
    if (ok == 0)
        ok = storage_history_reset(s, meta->index);
    if (ok == 0)
        ok = snap_pass(s, path, meta, 1);
    if (ok == 0)
        ok = storage_snap_meta_save(s, meta);
    if (ok == 0)
        ok = storage_set_applied(s, meta->index);
    ok = storage_auto_end(s, own, ok);
    if (ok < 0) {
        s->applied = old;
        storage_history_reload(s);
    }
    return ok;
}
