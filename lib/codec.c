/*
 * codec.c - the peer wire format (see codec.h for framing and HELLO).
 *
 * All integers are big-endian. Every decoder reads through a cursor that
 * checks each read against the bytes left, checks every count and length
 * against the bytes left and against a sane maximum BEFORE allocating, and
 * requires the payload to be consumed exactly (trailing bytes are an
 * error). Decoded pointers (entry data, snapshot bytes, JSON text) point
 * into the payload, never outside it. This file makes no calls into
 * raft.c.
 *
 * PEER_RAFT payload (one raft_msg):
 *
 *   fixed   type:u8 (1..RAFT_MSG_TYPE_MAX)  from:u64 (!=0)  to:u64 (!=0)
 *           term:u64  index:u64  log_term:u64  commit:u64
 *           reject:u8 (0|1)  hint_index:u64  hint_term:u64
 *           transfer:u8 (0|1)  ctx:u64                       79 bytes
 *   entries n_entries:u32, then n_entries times:
 *             term:u64 index:u64 type:u8 (0..2) len:u32 data[len]
 *                                                  21 bytes + data each
 *   snap    snap_index:u64 snap_term:u64 offset:u64 last:u8 (0|1)
 *           len:u32 (<= RAFT_SNAP_CHUNK) data[len]   29 bytes + data
 *   conf    has_conf:u8 (0|1); when 1:
 *             n:u8 (<= RAFT_MAX_NODES), then n times:
 *               id:u64 (!=0, no duplicates) voter:u8 (0|1)
 *               meta_len:u16 (< RAFT_META_MAX) meta[meta_len] (no NUL)
 *
 * Entries and conf are encoded for any message type that has them (the
 * core only sets them on APPEND and SNAP); semantic checks are the core's.
 * A message whose data is NULL with len 0 decodes with data == NULL.
 *
 * HELLO: codec_hello_frame always writes PEER_VERSION (h->version is not
 * read); codec_hello_decode rejects any other version, a wrong magic,
 * from == 0, NUL bytes in cluster or meta, and trailing bytes.
 *
 * PEER_FWD_REQ and PEER_FWD_RESP payloads are both
 *   reqid:u64 from:u64 json[rest]
 * (FWD_RESP carries whatever `from` was given to codec_fwd_frame, so that
 * codec_fwd_decode, which is not told the kind, parses both alike; `from`
 * may be NULL at decode to ignore it.)
 *
 * Frame reader: buffers at most CODEC_READER_MAX unconsumed bytes (one
 * largest frame plus 1 MiB of what follows it); feed more than that
 * without taking frames out and feed fails. A length prefix of 0 or above
 * PEER_FRAME_MAX, or an unknown kind, is a framing error as soon as the
 * 5-byte header is in.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#define HELLO_MAGIC "KVRAFT"
#define HELLO_MAGIC_LEN 6
#define MSG_FIXED_BYTES 79u
#define ENTRY_HDR_BYTES 21u
#define SNAP_HDR_BYTES 29u
#define NODE_HDR_BYTES 11u
#define FRAME_HDR_BYTES 5u
#define CODEC_READER_MAX ((size_t)PEER_FRAME_MAX + FRAME_HDR_BYTES + (1u << 20))

/* ---------------------------------------------------------------- output */

void wbuf_free(wbuf *b)
{
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int wbuf_reserve(wbuf *b, size_t more)
{
    if (more > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + more;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Writers assume space was reserved. */
static void put_u8(wbuf *b, uint8_t v)
{
    b->p[b->len++] = v;
}

static void put_u16(wbuf *b, uint16_t v)
{
    b->p[b->len++] = (uint8_t)(v >> 8);
    b->p[b->len++] = (uint8_t)v;
}

static void put_u32(wbuf *b, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        b->p[b->len++] = (uint8_t)(v >> s);
}

static void put_u64(wbuf *b, uint64_t v)
{
    for (int s = 56; s >= 0; s -= 8)
        b->p[b->len++] = (uint8_t)(v >> s);
}

static void put_bytes(wbuf *b, const void *p, size_t n)
{
    if (n) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

/* Reserve a whole frame of payload_len bytes and write its header. */
static int frame_begin(wbuf *b, int kind, uint64_t payload_len)
{
    if (payload_len > (uint64_t)PEER_FRAME_MAX - 1)
        return -1;
    if (wbuf_reserve(b, FRAME_HDR_BYTES + (size_t)payload_len) < 0)
        return -1;
    put_u32(b, (uint32_t)(payload_len + 1));
    put_u8(b, (uint8_t)kind);
    return 0;
}

/* ---------------------------------------------------------------- input */

typedef struct cursor {
    const uint8_t *p;
    size_t len, pos;
} cursor;

static size_t cur_left(const cursor *c)
{
    return c->len - c->pos;
}

static int get_u8(cursor *c, uint8_t *v)
{
    if (cur_left(c) < 1)
        return -1;
    *v = c->p[c->pos++];
    return 0;
}

static int get_flag(cursor *c, uint8_t *v)
{
    if (get_u8(c, v) < 0 || *v > 1)
        return -1;
    return 0;
}

static int get_u16(cursor *c, uint16_t *v)
{
    if (cur_left(c) < 2)
        return -1;
    *v = (uint16_t)((unsigned)c->p[c->pos] << 8 | c->p[c->pos + 1]);
    c->pos += 2;
    return 0;
}

static int get_u32(cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4)
        return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++)
        x = x << 8 | c->p[c->pos + i];
    c->pos += 4;
    *v = x;
    return 0;
}

static int get_u64(cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8)
        return -1;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | c->p[c->pos + i];
    c->pos += 8;
    *v = x;
    return 0;
}

/* Point *out at the next n bytes of the payload. */
static int get_span(cursor *c, size_t n, const uint8_t **out)
{
    if (cur_left(c) < n)
        return -1;
    *out = c->p + c->pos;
    c->pos += n;
    return 0;
}

/* n bytes of text with no NUL, copied NUL-terminated into dst[cap]. */
static int get_text(cursor *c, size_t n, char *dst, size_t cap)
{
    const uint8_t *s;
    if (n >= cap || get_span(c, n, &s) < 0)
        return -1;
    if (n && memchr(s, 0, n))
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- HELLO */

int codec_hello_frame(wbuf *b, const peer_hello *h)
{
    if (!b || !h || h->from == 0)
        return -1;
    size_t cl = strnlen(h->cluster, sizeof h->cluster);
    size_t ml = strnlen(h->meta, sizeof h->meta);
    if (cl > PEER_CLUSTER_ID_MAX || ml >= RAFT_META_MAX)
        return -1;
    uint64_t plen = HELLO_MAGIC_LEN + 2 + 8 + 1 + cl + 2 + ml;
    if (frame_begin(b, PEER_HELLO, plen) < 0)
        return -1;
    put_bytes(b, HELLO_MAGIC, HELLO_MAGIC_LEN);
    put_u16(b, PEER_VERSION); /* this build speaks one version */
    put_u64(b, h->from);
    put_u8(b, (uint8_t)cl);
    put_bytes(b, h->cluster, cl);
    put_u16(b, (uint16_t)ml);
    put_bytes(b, h->meta, ml);
    return 0;
}

int codec_hello_decode(peer_hello *h, const uint8_t *p, size_t len)
{
    if (!h)
        return -1;
    memset(h, 0, sizeof *h);
    if (!p)
        return -1;
    cursor c = {p, len, 0};
    const uint8_t *magic;
    uint8_t cl;
    uint16_t ml;
    peer_hello t;
    memset(&t, 0, sizeof t);
    if (get_span(&c, HELLO_MAGIC_LEN, &magic) < 0 ||
        memcmp(magic, HELLO_MAGIC, HELLO_MAGIC_LEN) != 0)
        return -1;
    if (get_u16(&c, &t.version) < 0 || t.version != PEER_VERSION)
        return -1;
    if (get_u64(&c, &t.from) < 0 || t.from == 0)
        return -1;
    if (get_u8(&c, &cl) < 0 || cl > PEER_CLUSTER_ID_MAX ||
        get_text(&c, cl, t.cluster, sizeof t.cluster) < 0)
        return -1;
    if (get_u16(&c, &ml) < 0 || get_text(&c, ml, t.meta, sizeof t.meta) < 0)
        return -1;
    if (cur_left(&c) != 0)
        return -1;
    *h = t;
    return 0;
}

/* ---------------------------------------------------------------- RAFT */

int codec_msg_frame(wbuf *b, const raft_msg *m)
{
    if (!b || !m)
        return -1;
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->from == 0 || m->to == 0 || m->reject > 1 ||
        m->transfer > 1 || m->last > 1)
        return -1;
    if (m->n_entries && !m->entries)
        return -1;
    if (m->len > RAFT_SNAP_CHUNK || (m->len && !m->data))
        return -1;

    /* Size first, with every length checked, so nothing is half-written. */
    uint64_t plen = MSG_FIXED_BYTES;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        if (e->type > RAFT_ENTRY_CONFIG || (e->len && !e->data))
            return -1;
        plen += ENTRY_HDR_BYTES + (uint64_t)e->len;
        if (plen > PEER_FRAME_MAX)
            return -1;
    }
    plen += SNAP_HDR_BYTES + (uint64_t)m->len + 1;
    size_t meta_len[RAFT_MAX_NODES];
    if (m->conf) {
        const raft_config *cf = m->conf;
        if (cf->n > RAFT_MAX_NODES)
            return -1;
        plen += 1;
        for (uint32_t i = 0; i < cf->n; i++) {
            const raft_node *nd = &cf->nodes[i];
            if (nd->id == 0 || nd->voter > 1)
                return -1;
            for (uint32_t j = 0; j < i; j++)
                if (cf->nodes[j].id == nd->id)
                    return -1;
            meta_len[i] = strnlen(nd->meta, RAFT_META_MAX);
            if (meta_len[i] >= RAFT_META_MAX)
                return -1;
            plen += NODE_HDR_BYTES + meta_len[i];
        }
    }
    if (frame_begin(b, PEER_RAFT, plen) < 0)
        return -1;

    put_u8(b, m->type);
    put_u64(b, m->from);
    put_u64(b, m->to);
    put_u64(b, m->term);
    put_u64(b, m->index);
    put_u64(b, m->log_term);
    put_u64(b, m->commit);
    put_u8(b, m->reject);
    put_u64(b, m->hint_index);
    put_u64(b, m->hint_term);
    put_u8(b, m->transfer);
    put_u64(b, m->ctx);
    put_u32(b, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        put_u64(b, e->term);
        put_u64(b, e->index);
        put_u8(b, e->type);
        put_u32(b, e->len);
        put_bytes(b, e->data, e->len);
    }
    put_u64(b, m->snap_index);
    put_u64(b, m->snap_term);
    put_u64(b, m->offset);
    put_u8(b, m->last);
    put_u32(b, m->len);
    put_bytes(b, m->data, m->len);
    put_u8(b, m->conf ? 1 : 0);
    if (m->conf) {
        put_u8(b, (uint8_t)m->conf->n);
        for (uint32_t i = 0; i < m->conf->n; i++) {
            const raft_node *nd = &m->conf->nodes[i];
            put_u64(b, nd->id);
            put_u8(b, nd->voter);
            put_u16(b, (uint16_t)meta_len[i]);
            put_bytes(b, nd->meta, meta_len[i]);
        }
    }
    return 0;
}

void codec_msg_free(raft_msg *m)
{
    if (!m)
        return;
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
    free(m->conf);
    m->conf = NULL;
}

static int decode_conf(cursor *c, raft_config *cf)
{
    uint8_t n;
    if (get_u8(c, &n) < 0 || n > RAFT_MAX_NODES || cur_left(c) < (size_t)n * NODE_HDR_BYTES)
        return -1;
    cf->n = n;
    for (uint32_t i = 0; i < n; i++) {
        raft_node *nd = &cf->nodes[i];
        uint16_t ml;
        if (get_u64(c, &nd->id) < 0 || nd->id == 0)
            return -1;
        for (uint32_t j = 0; j < i; j++)
            if (cf->nodes[j].id == nd->id)
                return -1;
        if (get_flag(c, &nd->voter) < 0 || get_u16(c, &ml) < 0 ||
            get_text(c, ml, nd->meta, sizeof nd->meta) < 0)
            return -1;
    }
    return 0;
}

static int decode_msg(raft_msg *m, cursor *c)
{
    const uint8_t *span;
    if (get_u8(c, &m->type) < 0 || m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
        return -1;
    if (get_u64(c, &m->from) < 0 || m->from == 0 || get_u64(c, &m->to) < 0 || m->to == 0 ||
        get_u64(c, &m->term) < 0 || get_u64(c, &m->index) < 0 || get_u64(c, &m->log_term) < 0 ||
        get_u64(c, &m->commit) < 0 || get_flag(c, &m->reject) < 0 ||
        get_u64(c, &m->hint_index) < 0 || get_u64(c, &m->hint_term) < 0 ||
        get_flag(c, &m->transfer) < 0 || get_u64(c, &m->ctx) < 0)
        return -1;

    uint32_t n;
    if (get_u32(c, &n) < 0)
        return -1;
    /* Every entry takes at least ENTRY_HDR_BYTES: bound n before calloc. */
    if (n > cur_left(c) / ENTRY_HDR_BYTES)
        return -1;
    if (n) {
        m->entries = calloc(n, sizeof *m->entries);
        if (!m->entries)
            return -1;
        m->n_entries = n;
        for (uint32_t i = 0; i < n; i++) {
            raft_entry *e = &m->entries[i];
            if (get_u64(c, &e->term) < 0 || get_u64(c, &e->index) < 0 || get_u8(c, &e->type) < 0 ||
                e->type > RAFT_ENTRY_CONFIG || get_u32(c, &e->len) < 0 ||
                get_span(c, e->len, &span) < 0)
                return -1;
            e->data = e->len ? (uint8_t *)span : NULL;
        }
    }

    if (get_u64(c, &m->snap_index) < 0 || get_u64(c, &m->snap_term) < 0 ||
        get_u64(c, &m->offset) < 0 || get_flag(c, &m->last) < 0 || get_u32(c, &m->len) < 0 ||
        m->len > RAFT_SNAP_CHUNK || get_span(c, m->len, &span) < 0)
        return -1;
    m->data = m->len ? (uint8_t *)span : NULL;

    uint8_t has_conf;
    if (get_flag(c, &has_conf) < 0)
        return -1;
    if (has_conf) {
        m->conf = calloc(1, sizeof *m->conf);
        if (!m->conf || decode_conf(c, m->conf) < 0)
            return -1;
    }
    return cur_left(c) == 0 ? 0 : -1;
}

int codec_msg_decode(raft_msg *m, const uint8_t *p, size_t len)
{
    if (!m)
        return -1;
    memset(m, 0, sizeof *m);
    if (!p)
        return -1;
    cursor c = {p, len, 0};
    if (decode_msg(m, &c) < 0) {
        codec_msg_free(m);
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- FWD */

int codec_fwd_frame(wbuf *b, int kind, uint64_t reqid, uint64_t from, const char *json,
                    size_t json_len)
{
    if (!b || (kind != PEER_FWD_REQ && kind != PEER_FWD_RESP))
        return -1;
    if (json_len && !json)
        return -1;
    if (json_len > PEER_FRAME_MAX)
        return -1;
    if (frame_begin(b, kind, 16 + (uint64_t)json_len) < 0)
        return -1;
    put_u64(b, reqid);
    put_u64(b, from);
    put_bytes(b, json, json_len);
    return 0;
}

int codec_fwd_decode(const uint8_t *p, size_t len, uint64_t *reqid, uint64_t *from,
                     const char **json, size_t *json_len)
{
    if (!p || !reqid || !json || !json_len)
        return -1;
    cursor c = {p, len, 0};
    uint64_t r, f;
    if (get_u64(&c, &r) < 0 || get_u64(&c, &f) < 0)
        return -1;
    *reqid = r;
    if (from)
        *from = f;
    *json = (const char *)(p + c.pos);
    *json_len = cur_left(&c);
    return 0;
}

int codec_removed_frame(wbuf *b, uint64_t node, uint64_t term)
{
    if (!b || frame_begin(b, PEER_REMOVED, 16) < 0)
        return -1;
    put_u64(b, node);
    put_u64(b, term);
    return 0;
}

int codec_removed_decode(const uint8_t *p, size_t len, uint64_t *node, uint64_t *term)
{
    if (!p || !node || !term || len != 16)
        return -1;
    cursor c = {p, len, 0};
    return get_u64(&c, node) < 0 || get_u64(&c, term) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- reader */

static int kind_known(int kind)
{
    return kind >= PEER_HELLO && kind <= PEER_REMOVED;
}

/* Check the header of the frame at fr->off if it is all in: -1 bad. */
static int header_check(const frame_reader *fr, uint32_t *flen)
{
    const uint8_t *h = fr->buf + fr->off;
    uint32_t l = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (l < 1 || l > PEER_FRAME_MAX || !kind_known(h[4]))
        return -1;
    *flen = l;
    return 0;
}

int codec_reader_feed(frame_reader *fr, const uint8_t *data, size_t n)
{
    if (!fr || (n && !data))
        return -1;
    if (fr->off > fr->len || fr->len > fr->cap)
        return -1;
    size_t pending = fr->len - fr->off;
    if (n > CODEC_READER_MAX || pending > CODEC_READER_MAX - n)
        return -1;
    /* Drop consumed bytes; the frame last returned is released now. */
    if (fr->off) {
        if (pending)
            memmove(fr->buf, fr->buf + fr->off, pending);
        fr->off = 0;
        fr->len = pending;
    }
    size_t need = pending + n;
    if (need > fr->cap) {
        size_t cap = fr->cap ? fr->cap : 4096;
        while (cap < need)
            cap *= 2; /* need <= CODEC_READER_MAX: no overflow */
        uint8_t *p = realloc(fr->buf, cap);
        if (!p)
            return -1;
        fr->buf = p;
        fr->cap = cap;
    } else if (fr->cap > (1u << 20) && need <= (64u << 10)) {
        /* Give back the room a large frame needed. */
        uint8_t *p = realloc(fr->buf, 64u << 10);
        if (p) {
            fr->buf = p;
            fr->cap = 64u << 10;
        }
    }
    if (n)
        memcpy(fr->buf + fr->len, data, n);
    fr->len += n;
    uint32_t flen;
    if (fr->len - fr->off >= FRAME_HDR_BYTES && header_check(fr, &flen) < 0)
        return -1;
    return 0;
}

int codec_reader_next(frame_reader *fr, int *kind, const uint8_t **payload, size_t *len)
{
    if (!fr || !kind || !payload || !len)
        return -1;
    if (fr->off > fr->len || fr->len > fr->cap)
        return -1;
    size_t pending = fr->len - fr->off;
    if (pending < FRAME_HDR_BYTES)
        return 0;
    uint32_t flen;
    if (header_check(fr, &flen) < 0)
        return -1;
    if (pending - 4 < flen)
        return 0;
    *kind = fr->buf[fr->off + 4];
    *payload = fr->buf + fr->off + FRAME_HDR_BYTES;
    *len = flen - 1;
    fr->off += 4 + (size_t)flen;
    return 1;
}

int codec_reader_peek_len(const frame_reader *fr, uint32_t *flen)
{
    if (!fr || fr->off > fr->len || fr->len - fr->off < 4)
        return 0;
    const uint8_t *h = fr->buf + fr->off;
    *flen = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return 1;
}

void codec_reader_free(frame_reader *fr)
{
    if (!fr)
        return;
    free(fr->buf);
    fr->buf = NULL;
    fr->len = fr->cap = fr->off = 0;
}
