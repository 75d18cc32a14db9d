/*
 * test_codec.c - the peer wire format: round trips of every frame and
 * message type, and rejection of truncated, oversized, trailing and
 * garbage input. Payloads handed to decoders are copied into buffers of
 * exactly their length so that ASan catches any read past the end.
 *
 * Prints "ok NAME" or "FAIL NAME: reason" per case, then
 * "N passed, M failed"; exits 1 on any failure.
 */
#include "codec.h"
#include "check.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deterministic PRNG (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d) {
        fprintf(stderr, "test_codec: malloc: out of memory\n");
        exit(2);
    }
    if (n)
        memcpy(d, p, n);
    return d;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int inside(const void *ptr, size_t n, const uint8_t *base, size_t len)
{
    const uint8_t *q = ptr;
    return q >= base && q <= base + len && n <= (size_t)(base + len - q);
}

/* A decoded message must point only inside [p, p+len). */
static int msg_inside(const raft_msg *m, const uint8_t *p, size_t len)
{
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        if (e->len == 0 ? e->data != NULL : !inside(e->data, e->len, p, len))
            return 0;
    }
    if (m->len == 0 ? m->data != NULL : !inside(m->data, m->len, p, len))
        return 0;
    return 1;
}

static int entries_equal(const raft_entry *a, const raft_entry *b)
{
    return a->term == b->term && a->index == b->index && a->type == b->type && a->len == b->len &&
           (a->len == 0 || !memcmp(a->data, b->data, a->len));
}

static int conf_equal(const raft_config *a, const raft_config *b)
{
    if (!a || !b)
        return a == b;
    if (a->n != b->n)
        return 0;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->nodes[i].id != b->nodes[i].id || a->nodes[i].voter != b->nodes[i].voter ||
            strcmp(a->nodes[i].meta, b->nodes[i].meta))
            return 0;
    return 1;
}

static const char *msg_diff(const raft_msg *a, const raft_msg *b)
{
    if (a->type != b->type)
        return "type";
    if (a->from != b->from)
        return "from";
    if (a->to != b->to)
        return "to";
    if (a->term != b->term)
        return "term";
    if (a->index != b->index)
        return "index";
    if (a->log_term != b->log_term)
        return "log_term";
    if (a->commit != b->commit)
        return "commit";
    if (a->reject != b->reject)
        return "reject";
    if (a->hint_index != b->hint_index)
        return "hint_index";
    if (a->hint_term != b->hint_term)
        return "hint_term";
    if (a->transfer != b->transfer)
        return "transfer";
    if (a->ctx != b->ctx)
        return "ctx";
    if (a->n_entries != b->n_entries)
        return "n_entries";
    for (uint32_t i = 0; i < a->n_entries; i++)
        if (!entries_equal(&a->entries[i], &b->entries[i]))
            return "entries";
    if (a->snap_index != b->snap_index)
        return "snap_index";
    if (a->snap_term != b->snap_term)
        return "snap_term";
    if (a->offset != b->offset)
        return "offset";
    if (a->last != b->last)
        return "last";
    if (a->len != b->len)
        return "len";
    if (a->len && memcmp(a->data, b->data, a->len))
        return "data";
    if (!conf_equal(a->conf, b->conf))
        return "conf";
    return NULL;
}

/* Encode m as a frame; check the frame header; return the payload in a
 * malloc'd buffer of exactly its size. */
static uint8_t *frame_payload(const wbuf *w, int want_kind, size_t *plen)
{
    if (w->len < 5 || be32(w->p) != w->len - 4 || w->p[4] != want_kind)
        return NULL;
    *plen = w->len - 5;
    return dup_exact(w->p + 5, *plen);
}

static raft_msg sample_msg(uint8_t type)
{
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = 0x0102030405060708ull;
    m.to = 0xfffffffffffffffeull;
    m.term = 77;
    m.index = 1234567;
    m.log_term = 76;
    m.commit = 1234000;
    m.reject = 1;
    m.hint_index = 99;
    m.hint_term = 3;
    m.transfer = 1;
    m.ctx = 0xdeadbeefcafef00dull;
    m.snap_index = 500;
    m.snap_term = 7;
    m.offset = 262144;
    m.last = 1;
    return m;
}

/* ------------------------------------------------------------ HELLO */

static peer_hello sample_hello(void)
{
    peer_hello h;
    memset(&h, 0, sizeof h);
    h.version = PEER_VERSION;
    h.from = 42;
    snprintf(h.cluster, sizeof h.cluster, "cluster-abc");
    snprintf(h.meta, sizeof h.meta, "node1 127.0.0.1:12001 127.0.0.1:11001");
    return h;
}

static void hello_round_trip(void)
{
    peer_hello h = sample_hello(), d;
    wbuf w = {0};
    CHECK(codec_hello_frame(&w, &h) == 0, "encode failed");
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_HELLO, &n);
    CHECK(p, "bad frame header");
    int rc = codec_hello_decode(&d, p, n);
    free(p);
    wbuf_free(&w);
    CHECK(rc == 0, "decode failed");
    CHECK(d.version == PEER_VERSION && d.from == 42, "version/from differ");
    CHECK(!strcmp(d.cluster, h.cluster), "cluster '%s'", d.cluster);
    CHECK(!strcmp(d.meta, h.meta), "meta '%s'", d.meta);
}

static void hello_round_trip_limits(void)
{
    peer_hello h = sample_hello(), d;
    memset(h.cluster, 'c', PEER_CLUSTER_ID_MAX);
    h.cluster[PEER_CLUSTER_ID_MAX] = 0;
    memset(h.meta, 'm', RAFT_META_MAX - 1);
    h.meta[RAFT_META_MAX - 1] = 0;
    h.from = UINT64_MAX;
    wbuf w = {0};
    CHECK(codec_hello_frame(&w, &h) == 0, "encode at limits failed");
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_HELLO, &n);
    CHECK(p, "bad frame header");
    int rc = codec_hello_decode(&d, p, n);
    free(p);
    wbuf_free(&w);
    CHECK(rc == 0, "decode failed");
    CHECK(d.from == UINT64_MAX && !strcmp(d.cluster, h.cluster) && !strcmp(d.meta, h.meta),
          "fields differ");

    /* Empty cluster and meta are fine too. */
    h.cluster[0] = 0;
    h.meta[0] = 0;
    CHECK(codec_hello_frame(&w, &h) == 0, "encode empty failed");
    p = frame_payload(&w, PEER_HELLO, &n);
    CHECK(p, "bad frame header");
    rc = codec_hello_decode(&d, p, n);
    free(p);
    wbuf_free(&w);
    CHECK(rc == 0 && d.cluster[0] == 0 && d.meta[0] == 0, "empty differs");
}

static void hello_encode_rejects_bad_fields(void)
{
    peer_hello h = sample_hello();
    wbuf w = {0};
    h.from = 0;
    CHECK(codec_hello_frame(&w, &h) < 0, "from 0 accepted");
    h = sample_hello();
    memset(h.meta, 'm', sizeof h.meta); /* not NUL-terminated */
    CHECK(codec_hello_frame(&w, &h) < 0, "unterminated meta accepted");
    h = sample_hello();
    memset(h.cluster, 'c', sizeof h.cluster); /* 65 chars, no NUL */
    CHECK(codec_hello_frame(&w, &h) < 0, "unterminated cluster accepted");
    CHECK(w.len == 0, "failed encode left %zu bytes", w.len);
    wbuf_free(&w);
}

/* Build a hello payload by hand. */
static size_t hello_bytes(uint8_t *out, const char *magic, uint16_t ver, uint64_t from,
                          const char *cl, size_t cll, const char *meta, size_t ml)
{
    size_t n = 0;
    memcpy(out, magic, 6);
    n = 6;
    out[n++] = (uint8_t)(ver >> 8);
    out[n++] = (uint8_t)ver;
    for (int s = 56; s >= 0; s -= 8)
        out[n++] = (uint8_t)(from >> s);
    out[n++] = (uint8_t)cll;
    memcpy(out + n, cl, cll);
    n += cll;
    out[n++] = (uint8_t)(ml >> 8);
    out[n++] = (uint8_t)ml;
    memcpy(out + n, meta, ml);
    n += ml;
    return n;
}

static int hello_try(const uint8_t *b, size_t n)
{
    peer_hello d;
    uint8_t *p = dup_exact(b, n);
    int rc = codec_hello_decode(&d, p, n);
    free(p);
    return rc;
}

static void hello_decode_rejects_bad_input(void)
{
    uint8_t b[1024];
    size_t n;
    static char big[400];
    memset(big, 'x', sizeof big);

    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, "m", 1);
    CHECK(hello_try(b, n) == 0, "valid hand-built hello rejected");
    n = hello_bytes(b, "KVRAFX", PEER_VERSION, 5, "c", 1, "m", 1);
    CHECK(hello_try(b, n) < 0, "wrong magic accepted");
    n = hello_bytes(b, "kvraft", PEER_VERSION, 5, "c", 1, "m", 1);
    CHECK(hello_try(b, n) < 0, "lowercase magic accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION + 1, 5, "c", 1, "m", 1);
    CHECK(hello_try(b, n) < 0, "version %d accepted", PEER_VERSION + 1);
    n = hello_bytes(b, "KVRAFT", 0, 5, "c", 1, "m", 1);
    CHECK(hello_try(b, n) < 0, "version 0 accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 0, "c", 1, "m", 1);
    CHECK(hello_try(b, n) < 0, "from 0 accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, big, 65, "m", 1);
    CHECK(hello_try(b, n) < 0, "65-byte cluster id accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, big, 256);
    CHECK(hello_try(b, n) < 0, "256-byte meta accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, big, 255);
    CHECK(hello_try(b, n) == 0, "255-byte meta rejected");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "a\0b", 3, "m", 1);
    CHECK(hello_try(b, n) < 0, "NUL inside cluster accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, "m\0", 2);
    CHECK(hello_try(b, n) < 0, "NUL inside meta accepted");
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, "m", 1);
    b[n++] = 0;
    CHECK(hello_try(b, n) < 0, "trailing byte accepted");
    /* meta_len claims more than is there */
    n = hello_bytes(b, "KVRAFT", PEER_VERSION, 5, "c", 1, "m", 1);
    b[n - 2] = 200;
    CHECK(hello_try(b, n) < 0, "meta_len beyond payload accepted");
    CHECK(codec_hello_decode(NULL, b, n) < 0, "NULL hello accepted");
    peer_hello d;
    CHECK(codec_hello_decode(&d, NULL, 0) < 0, "NULL payload accepted");
}

static void hello_truncated_at_every_byte(void)
{
    peer_hello h = sample_hello();
    wbuf w = {0};
    CHECK(codec_hello_frame(&w, &h) == 0, "encode failed");
    size_t n = w.len - 5;
    for (size_t k = 0; k < n; k++) {
        int rc = hello_try(w.p + 5, k);
        if (rc >= 0) {
            wbuf_free(&w);
            CHECK(0, "hello truncated to %zu of %zu bytes accepted", k, n);
        }
    }
    wbuf_free(&w);
}

/* ------------------------------------------------------------ RAFT */

/* Encode, check frame, decode from an exact copy, compare, and check that
 * re-encoding the decoded message gives the same bytes. */
static const char *round_trip(const raft_msg *m)
{
    static char why[200];
    wbuf w = {0}, w2 = {0};
    if (codec_msg_frame(&w, m) < 0)
        return "encode failed";
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_RAFT, &n);
    if (!p) {
        wbuf_free(&w);
        return "bad frame header";
    }
    raft_msg d;
    const char *res = NULL;
    if (codec_msg_decode(&d, p, n) < 0) {
        res = "decode failed";
    } else {
        const char *diff = msg_diff(m, &d);
        if (diff) {
            snprintf(why, sizeof why, "field %s differs after round trip", diff);
            res = why;
        } else if (!msg_inside(&d, p, n)) {
            res = "decoded pointer outside payload";
        } else if (codec_msg_frame(&w2, &d) < 0) {
            res = "re-encode failed";
        } else if (w2.len != w.len || memcmp(w2.p, w.p, w.len)) {
            res = "re-encoding differs";
        }
        codec_msg_free(&d);
    }
    free(p);
    wbuf_free(&w);
    wbuf_free(&w2);
    return res;
}

static void msg_round_trip_every_type(void)
{
    for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
        raft_msg m = sample_msg((uint8_t)t);
        const char *why = round_trip(&m);
        CHECK(!why, "type %d: %s", t, why);
        /* all-zero optional fields too */
        memset(&m, 0, sizeof m);
        m.type = (uint8_t)t;
        m.from = 1;
        m.to = 2;
        why = round_trip(&m);
        CHECK(!why, "type %d minimal: %s", t, why);
    }
}

static uint8_t blob[3000];

static void fill_blob(void)
{
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i * 7 + 3);
}

static void msg_round_trip_append_entries(void)
{
    raft_entry e[5];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 5; i++) {
        e[i].term = 9;
        e[i].index = 101 + (uint64_t)i;
        e[i].type = (uint8_t)(i % 3);
        e[i].len = (uint32_t)(i * 100);
        e[i].data = i ? blob + i : NULL; /* entry 0: empty, NULL data */
    }
    raft_msg m = sample_msg(RAFT_MSG_APPEND);
    m.entries = e;
    m.n_entries = 5;
    m.index = 100;
    const char *why = round_trip(&m);
    CHECK(!why, "%s", why);

    /* The decoded entry data must be the payload's own bytes in order. */
    wbuf w = {0};
    CHECK(codec_msg_frame(&w, &m) == 0, "encode failed");
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_RAFT, &n);
    wbuf_free(&w);
    CHECK(p, "bad frame");
    raft_msg d;
    int rc = codec_msg_decode(&d, p, n);
    int ordered = rc == 0 && d.entries[0].data == NULL;
    for (int i = 1; rc == 0 && i < 5; i++)
        if (d.entries[i].data <= (uint8_t *)p ||
            (i > 1 && d.entries[i].data <= d.entries[i - 1].data))
            ordered = 0;
    codec_msg_free(&d);
    CHECK(d.entries == NULL && d.conf == NULL, "codec_msg_free left pointers");
    free(p);
    CHECK(rc == 0, "decode failed");
    CHECK(ordered, "entry data not laid out in the payload in order");
}

static raft_config full_conf(void)
{
    raft_config c;
    memset(&c, 0, sizeof c);
    c.n = RAFT_MAX_NODES;
    for (uint32_t i = 0; i < c.n; i++) {
        c.nodes[i].id = 1000 + i * 1000003ull;
        c.nodes[i].voter = (uint8_t)(i % 2);
        if (i == 0)
            memset(c.nodes[i].meta, 'z', RAFT_META_MAX - 1); /* longest */
        else if (i == 1)
            c.nodes[i].meta[0] = 0; /* empty */
        else
            snprintf(c.nodes[i].meta, RAFT_META_MAX, "node%u 127.0.0.1:%u 127.0.0.1:%u", i,
                     12000 + i, 11000 + i);
    }
    return c;
}

static void msg_round_trip_snapshot_with_conf(void)
{
    raft_config c = full_conf();
    raft_msg m = sample_msg(RAFT_MSG_SNAP);
    m.data = blob;
    m.len = sizeof blob;
    m.conf = &c;
    const char *why = round_trip(&m);
    CHECK(!why, "full conf: %s", why);
    c.n = 0;
    why = round_trip(&m);
    CHECK(!why, "empty conf: %s", why);
    m.conf = NULL;
    why = round_trip(&m);
    CHECK(!why, "no conf: %s", why);
    /* A chunk of exactly RAFT_SNAP_CHUNK bytes. */
    uint8_t *big = calloc(1, RAFT_SNAP_CHUNK);
    CHECK(big, "calloc");
    big[RAFT_SNAP_CHUNK - 1] = 0xab;
    m.data = big;
    m.len = RAFT_SNAP_CHUNK;
    why = round_trip(&m);
    free(big);
    CHECK(!why, "full chunk: %s", why);
}

/* A big message near PEER_FRAME_MAX round-trips; one byte over fails
 * without touching the output buffer. */
static void msg_frame_size_limit(void)
{
    const uint32_t fixed = 79 + 21 + 29 + 1; /* one entry, no snap, no conf */
    uint32_t max_data = PEER_FRAME_MAX - 1 - fixed;
    uint8_t *big = calloc(1, (size_t)max_data + 1);
    CHECK(big, "calloc");
    raft_entry e = {.term = 1, .index = 1, .type = 0, .len = max_data, .data = big};
    raft_msg m = sample_msg(RAFT_MSG_APPEND);
    m.entries = &e;
    m.n_entries = 1;
    wbuf w = {0};
    int rc = codec_msg_frame(&w, &m);
    size_t flen = w.len;
    e.len = max_data + 1;
    size_t before = w.len;
    int rc2 = codec_msg_frame(&w, &m);
    size_t after = w.len;
    const char *why = NULL;
    if (rc == 0 && rc2 < 0) {
        e.len = max_data;
        why = round_trip(&m);
    }
    wbuf_free(&w);
    free(big);
    CHECK(rc == 0, "frame of exactly PEER_FRAME_MAX refused");
    CHECK(flen == (size_t)PEER_FRAME_MAX + 4, "frame is %zu bytes", flen);
    CHECK(rc2 < 0, "frame over PEER_FRAME_MAX encoded");
    CHECK(after == before, "failed encode changed the buffer");
    CHECK(!why, "max frame: %s", why);
}

static void msg_encode_rejects_bad_fields(void)
{
    wbuf w = {0};
    raft_msg m = sample_msg(RAFT_MSG_APPEND);
    m.type = 0;
    CHECK(codec_msg_frame(&w, &m) < 0, "type 0 encoded");
    m.type = RAFT_MSG_TYPE_MAX + 1;
    CHECK(codec_msg_frame(&w, &m) < 0, "type max+1 encoded");
    m = sample_msg(RAFT_MSG_APPEND);
    m.from = 0;
    CHECK(codec_msg_frame(&w, &m) < 0, "from 0 encoded");
    m = sample_msg(RAFT_MSG_APPEND);
    m.n_entries = 3; /* entries NULL */
    CHECK(codec_msg_frame(&w, &m) < 0, "entries NULL encoded");
    m = sample_msg(RAFT_MSG_SNAP);
    m.len = 10; /* data NULL */
    CHECK(codec_msg_frame(&w, &m) < 0, "snap data NULL encoded");
    m = sample_msg(RAFT_MSG_SNAP);
    m.data = blob;
    m.len = RAFT_SNAP_CHUNK + 1;
    CHECK(codec_msg_frame(&w, &m) < 0, "chunk over RAFT_SNAP_CHUNK encoded");
    raft_config c = full_conf();
    m = sample_msg(RAFT_MSG_SNAP);
    m.conf = &c;
    c.n = RAFT_MAX_NODES + 1;
    CHECK(codec_msg_frame(&w, &m) < 0, "conf n > RAFT_MAX_NODES encoded");
    c = full_conf();
    c.nodes[3].id = c.nodes[5].id;
    CHECK(codec_msg_frame(&w, &m) < 0, "duplicate node id encoded");
    c = full_conf();
    memset(c.nodes[2].meta, 'q', RAFT_META_MAX);
    CHECK(codec_msg_frame(&w, &m) < 0, "unterminated meta encoded");
    CHECK(w.len == 0, "failed encodes left %zu bytes", w.len);
    wbuf_free(&w);
}

/* Payload of a sample message with entries, snapshot bytes and conf. */
static uint8_t *rich_payload(size_t *n, raft_config *c, raft_entry *e)
{
    *c = full_conf();
    for (int i = 0; i < 3; i++) {
        memset(&e[i], 0, sizeof e[i]);
        e[i].term = 4;
        e[i].index = 11 + (uint64_t)i;
        e[i].type = (uint8_t)i;
        e[i].len = (uint32_t)(5 * i);
        e[i].data = i ? blob : NULL;
    }
    raft_msg m = sample_msg(RAFT_MSG_APPEND);
    m.entries = e;
    m.n_entries = 3;
    m.data = blob + 100;
    m.len = 17;
    m.conf = c;
    wbuf w = {0};
    if (codec_msg_frame(&w, &m) < 0)
        return NULL;
    uint8_t *p = frame_payload(&w, PEER_RAFT, n);
    wbuf_free(&w);
    return p;
}

static void msg_truncated_at_every_byte(void)
{
    raft_config c;
    raft_entry e[3];
    size_t n;
    uint8_t *full = rich_payload(&n, &c, e);
    CHECK(full, "encode failed");
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = dup_exact(full, k);
        raft_msg d;
        memset(&d, 0x5a, sizeof d);
        int rc = codec_msg_decode(&d, p, k);
        int clean = d.entries == NULL && d.conf == NULL && d.n_entries == 0;
        if (rc == 0)
            codec_msg_free(&d);
        free(p);
        if (rc >= 0 || !clean) {
            free(full);
            CHECK(rc < 0, "truncated to %zu of %zu bytes accepted", k, n);
            CHECK(clean, "failed decode left allocations (at %zu)", k);
        }
    }
    /* one extra byte is as bad as one missing */
    uint8_t *p = malloc(n + 1);
    CHECK(p, "malloc");
    memcpy(p, full, n);
    p[n] = 0;
    raft_msg d;
    int rc = codec_msg_decode(&d, p, n + 1);
    if (rc == 0)
        codec_msg_free(&d);
    int ok_full = codec_msg_decode(&d, full, n);
    if (ok_full == 0)
        codec_msg_free(&d);
    free(p);
    free(full);
    CHECK(rc < 0, "trailing byte accepted");
    CHECK(ok_full == 0, "untruncated payload rejected");
}

/* Offsets into the rich payload. */
#define OFF_TYPE 0
#define OFF_FROM 1
#define OFF_TO 9
#define OFF_REJECT 49
#define OFF_TRANSFER 66
#define OFF_NENT 75
#define OFF_ENT0 79

static int decode_copy(const uint8_t *b, size_t n)
{
    uint8_t *p = dup_exact(b, n);
    raft_msg d;
    int rc = codec_msg_decode(&d, p, n);
    if (rc == 0) {
        if (!msg_inside(&d, p, n))
            rc = 99;
        codec_msg_free(&d);
    }
    free(p);
    return rc;
}

static void msg_decode_rejects_bad_fields(void)
{
    raft_config c;
    raft_entry e[3];
    size_t n;
    uint8_t *full = rich_payload(&n, &c, e);
    CHECK(full, "encode failed");
    uint8_t *b = malloc(n);
    CHECK(b, "malloc");
    struct {
        size_t off;
        uint8_t val;
        const char *what;
    } cases[] = {
        {OFF_TYPE, 0, "type 0"},         {OFF_TYPE, RAFT_MSG_TYPE_MAX + 1, "type max+1"},
        {OFF_TYPE, 255, "type 255"},     {OFF_REJECT, 2, "reject 2"},
        {OFF_TRANSFER, 7, "transfer 7"}, {OFF_ENT0 + 16, 3, "entry type 3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, full, n);
        b[cases[i].off] = cases[i].val;
        int rc = decode_copy(b, n);
        if (rc >= 0) {
            free(b);
            free(full);
            CHECK(0, "%s accepted", cases[i].what);
        }
    }
    memcpy(b, full, n);
    memset(b + OFF_FROM, 0, 8);
    int rc_from = decode_copy(b, n);
    memcpy(b, full, n);
    memset(b + OFF_TO, 0, 8);
    int rc_to = decode_copy(b, n);
    /* The conf: find it from the end. Its last node's meta is the
     * longest text; walk: has_conf sits right after snapshot data. */
    size_t snap_at = OFF_ENT0 + 3 * 21 + 0 + 5 + 10; /* after entries */
    size_t conf_at = snap_at + 29 + 17;
    int conf_flag_ok = full[conf_at] == 1 && full[conf_at + 1] == RAFT_MAX_NODES;
    memcpy(b, full, n);
    b[conf_at] = 2;
    int rc_flag = decode_copy(b, n);
    memcpy(b, full, n);
    b[conf_at + 1] = RAFT_MAX_NODES + 1;
    int rc_n = decode_copy(b, n);
    memcpy(b, full, n);
    b[conf_at + 2 + 8] = 2; /* first node's voter flag */
    int rc_voter = decode_copy(b, n);
    memcpy(b, full, n);
    memcpy(b + conf_at + 2 + 11 + 255, b + conf_at + 2, 8); /* dup id */
    int rc_dup = decode_copy(b, n);
    memcpy(b, full, n);
    b[conf_at + 2 + 11 + 10] = 0; /* NUL inside first node's meta */
    int rc_nul = decode_copy(b, n);
    memcpy(b, full, n);
    memset(b + conf_at + 2, 0, 8); /* node id 0 */
    int rc_id0 = decode_copy(b, n);
    memcpy(b, full, n);
    b[snap_at + 24] = 2; /* last flag */
    int rc_last = decode_copy(b, n);
    free(b);
    free(full);
    CHECK(rc_from < 0, "from 0 accepted");
    CHECK(rc_to < 0, "to 0 accepted");
    CHECK(conf_flag_ok, "test offsets wrong: no conf at %zu", conf_at);
    CHECK(rc_flag < 0, "has_conf 2 accepted");
    CHECK(rc_n < 0, "conf n > RAFT_MAX_NODES accepted");
    CHECK(rc_voter < 0, "voter 2 accepted");
    CHECK(rc_dup < 0, "duplicate node id accepted");
    CHECK(rc_nul < 0, "NUL inside meta accepted");
    CHECK(rc_id0 < 0, "node id 0 accepted");
    CHECK(rc_last < 0, "last 2 accepted");
}

static void msg_huge_counts_rejected(void)
{
    raft_config c;
    raft_entry e[3];
    size_t n;
    uint8_t *full = rich_payload(&n, &c, e);
    CHECK(full, "encode failed");
    uint8_t *b = malloc(n);
    CHECK(b, "malloc");
    /* one entry more than the bytes left could hold */
    uint32_t fit = (uint32_t)((n - OFF_ENT0) / 21);
    uint32_t bad_counts[] = {0xffffffffu, 0x80000000u, fit + 1, 1000000};
    int rc[4], rc_len[3];
    for (int i = 0; i < 4; i++) {
        memcpy(b, full, n);
        put_be32(b + OFF_NENT, bad_counts[i]);
        rc[i] = decode_copy(b, n);
    }
    /* entry 0's data one byte longer than all that follows it */
    uint32_t past = (uint32_t)(n - OFF_ENT0 - 21 + 1);
    uint32_t bad_lens[] = {0xffffffffu, (uint32_t)n, past};
    for (int i = 0; i < 3; i++) {
        memcpy(b, full, n);
        put_be32(b + OFF_ENT0 + 17, bad_lens[i]);
        rc_len[i] = decode_copy(b, n);
    }
    /* snapshot len over RAFT_SNAP_CHUNK, and beyond the payload */
    size_t snap_at = OFF_ENT0 + 3 * 21 + 15;
    memcpy(b, full, n);
    put_be32(b + snap_at + 25, RAFT_SNAP_CHUNK + 1);
    int rc_snap = decode_copy(b, n);
    memcpy(b, full, n);
    put_be32(b + snap_at + 25, 0xffffffffu);
    int rc_snap2 = decode_copy(b, n);
    memcpy(b, full, n);
    int rc_ok = decode_copy(b, n);
    free(b);
    free(full);
    CHECK(rc_ok == 0, "unmodified payload rejected (%d)", rc_ok);
    for (int i = 0; i < 4; i++)
        CHECK(rc[i] < 0, "n_entries %u accepted", bad_counts[i]);
    for (int i = 0; i < 3; i++)
        CHECK(rc_len[i] < 0, "entry len %u accepted", bad_lens[i]);
    CHECK(rc_snap < 0, "snapshot len RAFT_SNAP_CHUNK+1 accepted");
    CHECK(rc_snap2 < 0, "snapshot len 0xffffffff accepted");
}

/* Random bytes and random mutations of valid payloads: decoders never
 * crash, never point outside, and what they accept re-encodes exactly. */
static void msg_garbage_and_mutations(void)
{
    raft_config c;
    raft_entry e[3];
    size_t n;
    uint8_t *full = rich_payload(&n, &c, e);
    CHECK(full, "encode failed");
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len;
        uint8_t *p;
        if (iter % 2) {
            len = rnd() % 300;
            p = dup_exact(full, len);
            for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t)rnd();
        } else {
            len = n;
            p = dup_exact(full, n);
            int flips = 1 + (int)(rnd() % 4);
            for (int f = 0; f < flips; f++)
                p[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
        }
        raft_msg d;
        if (codec_msg_decode(&d, p, len) == 0) {
            accepted++;
            int in = msg_inside(&d, p, len);
            wbuf w = {0};
            int re = codec_msg_frame(&w, &d);
            int same = re == 0 && w.len == len + 5 && !memcmp(w.p + 5, p, len);
            wbuf_free(&w);
            codec_msg_free(&d);
            if (!in || !same) {
                free(p);
                free(full);
                CHECK(in, "iteration %d: pointer outside payload", iter);
                CHECK(same, "iteration %d: accepted bytes re-encode differently", iter);
            }
        }
        peer_hello h;
        (void)codec_hello_decode(&h, p, len);
        uint64_t r, fr;
        const char *j;
        size_t jl;
        if (codec_fwd_decode(p, len, &r, &fr, &j, &jl) == 0 && !inside(j, jl, p, len)) {
            free(p);
            free(full);
            CHECK(0, "fwd json outside payload");
        }
        free(p);
    }
    free(full);
    /* Single-bit flips in data bytes are accepted; a test that accepted
     * nothing would prove nothing. */
    CHECK(accepted > 100, "only %d mutated payloads decoded", accepted);
}

/* ------------------------------------------------------------ FWD */

static void fwd_round_trip(void)
{
    const char *js = "{\"op\":\"set\",\"kv\":{\"a\":\"b\"}}";
    wbuf w = {0};
    CHECK(codec_fwd_frame(&w, PEER_FWD_REQ, 77, 3, js, strlen(js)) == 0, "encode req failed");
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_FWD_REQ, &n);
    wbuf_free(&w);
    CHECK(p, "bad req frame");
    uint64_t r = 0, f = 0;
    const char *j = NULL;
    size_t jl = 0;
    int rc = codec_fwd_decode(p, n, &r, &f, &j, &jl);
    int same = rc == 0 && r == 77 && f == 3 && jl == strlen(js) && !memcmp(j, js, jl) &&
               inside(j, jl, p, n);
    free(p);
    CHECK(same, "request differs after round trip");

    const char *reply = "{\"code\":200,\"index\":9}";
    CHECK(codec_fwd_frame(&w, PEER_FWD_RESP, UINT64_MAX, 0, reply, strlen(reply)) == 0,
          "encode resp failed");
    p = frame_payload(&w, PEER_FWD_RESP, &n);
    wbuf_free(&w);
    CHECK(p, "bad resp frame");
    rc = codec_fwd_decode(p, n, &r, NULL, &j, &jl); /* from may be NULL */
    same = rc == 0 && r == UINT64_MAX && jl == strlen(reply) && !memcmp(j, reply, jl);
    free(p);
    CHECK(same, "reply differs after round trip");

    /* empty JSON text is framed; kind checked */
    CHECK(codec_fwd_frame(&w, PEER_FWD_REQ, 1, 1, NULL, 0) == 0, "empty text refused");
    CHECK(w.len == 5 + 16, "empty fwd frame is %zu bytes", w.len);
    size_t before = w.len;
    CHECK(codec_fwd_frame(&w, PEER_RAFT, 1, 1, "{}", 2) < 0, "fwd frame of kind RAFT encoded");
    CHECK(codec_fwd_frame(&w, PEER_FWD_REQ, 1, 1, NULL, 5) < 0, "NULL json with length encoded");
    CHECK(codec_fwd_frame(&w, PEER_FWD_REQ, 1, 1, "x", PEER_FRAME_MAX) < 0,
          "json over the frame limit encoded");
    CHECK(w.len == before, "failed encodes changed the buffer");
    wbuf_free(&w);
}

/* PEER_REMOVED: node and term, exactly 16 bytes. */
static void removed_round_trip(void)
{
    wbuf w = {0};
    CHECK(codec_removed_frame(&w, 0x0123456789abcdefull, 42) == 0, "encode removed failed");
    CHECK(w.len == 5 + 16, "removed frame is %zu bytes", w.len);
    size_t n;
    uint8_t *p = frame_payload(&w, PEER_REMOVED, &n);
    wbuf_free(&w);
    CHECK(p, "bad removed frame");
    uint64_t node = 0, term = 0;
    int rc = p ? codec_removed_decode(p, n, &node, &term) : -1;
    CHECK(rc == 0 && node == 0x0123456789abcdefull && term == 42, "removed differs: %d %llx %llu",
          rc, (unsigned long long)node, (unsigned long long)term);
    for (size_t k = 0; p && k < 16; k++) {
        uint8_t *q = dup_exact(p, k);
        CHECK(codec_removed_decode(q, k, &node, &term) < 0, "removed of %zu bytes accepted", k);
        free(q);
    }
    free(p);
}

static void fwd_truncated_rejected(void)
{
    uint8_t b[16] = {0};
    for (size_t k = 0; k < 16; k++) {
        uint8_t *p = dup_exact(b, k);
        uint64_t r, f;
        const char *j;
        size_t jl;
        int rc = codec_fwd_decode(p, k, &r, &f, &j, &jl);
        free(p);
        CHECK(rc < 0, "fwd payload of %zu bytes accepted", k);
    }
    uint8_t *p = dup_exact(b, 16);
    uint64_t r, f;
    const char *j;
    size_t jl = 99;
    int rc = codec_fwd_decode(p, 16, &r, &f, &j, &jl);
    free(p);
    CHECK(rc == 0 && jl == 0, "16-byte fwd payload: rc %d len %zu", rc, jl);
}

/* ------------------------------------------------------------ reader */

/* Three frames of different kinds back to back. */
static void three_frames(wbuf *w)
{
    peer_hello h = sample_hello();
    raft_config c;
    raft_entry e[3];
    size_t n;
    uint8_t *p = rich_payload(&n, &c, e);
    raft_msg m = sample_msg(RAFT_MSG_APPEND);
    m.entries = e;
    m.n_entries = 3;
    m.conf = &c;
    if (codec_hello_frame(w, &h) < 0 || codec_msg_frame(w, &m) < 0 ||
        codec_fwd_frame(w, PEER_FWD_RESP, 5, 6, "{}", 2) < 0) {
        fprintf(stderr, "test_codec: encoding sample frames failed\n");
        exit(2);
    }
    free(p);
}

/* Drain fr, appending "kind:len;" per frame to log; -1 on error. */
static int drain(frame_reader *fr, char *log, size_t cap, int *frames)
{
    int kind;
    const uint8_t *pl;
    size_t len;
    int rc;
    while ((rc = codec_reader_next(fr, &kind, &pl, &len)) == 1) {
        size_t used = strlen(log);
        snprintf(log + used, cap - used, "%d:%zu;", kind, len);
        if (kind == PEER_RAFT) {
            raft_msg d;
            if (codec_msg_decode(&d, pl, len) < 0)
                return -2;
            codec_msg_free(&d);
        } else if (kind == PEER_HELLO) {
            peer_hello h;
            if (codec_hello_decode(&h, pl, len) < 0)
                return -2;
        }
        (*frames)++;
    }
    return rc;
}

static void reader_split_at_every_position(void)
{
    wbuf w = {0};
    three_frames(&w);
    char want[128] = "";
    frame_reader fr = {0};
    int frames = 0;
    CHECK(codec_reader_feed(&fr, w.p, w.len) == 0, "feed whole failed");
    CHECK(drain(&fr, want, sizeof want, &frames) == 0, "drain whole failed");
    codec_reader_free(&fr);
    CHECK(frames == 3, "%d frames from one feed", frames);

    for (size_t cut = 0; cut <= w.len; cut++) {
        char got[128] = "";
        frame_reader r2 = {0};
        frames = 0;
        int rc = codec_reader_feed(&r2, w.p, cut);
        if (rc == 0)
            rc = drain(&r2, got, sizeof got, &frames);
        if (rc == 0)
            rc = codec_reader_feed(&r2, w.p + cut, w.len - cut);
        if (rc == 0)
            rc = drain(&r2, got, sizeof got, &frames);
        codec_reader_free(&r2);
        if (rc != 0 || strcmp(got, want)) {
            wbuf_free(&w);
            CHECK(0, "split at %zu: rc %d, got '%s' want '%s'", cut, rc, got, want);
        }
    }

    /* byte by byte; nothing comes out before a frame is whole */
    char got[128] = "";
    frame_reader r3 = {0};
    frames = 0;
    size_t frame_end[3];
    frame_end[0] = 4 + be32(w.p);
    frame_end[1] = frame_end[0] + 4 + be32(w.p + frame_end[0]);
    frame_end[2] = w.len;
    for (size_t i = 0; i < w.len; i++) {
        int before = frames;
        int rc = codec_reader_feed(&r3, w.p + i, 1);
        if (rc == 0)
            rc = drain(&r3, got, sizeof got, &frames);
        int expect = before + (i + 1 == frame_end[before] ? 1 : 0);
        if (rc != 0 || frames != expect) {
            codec_reader_free(&r3);
            wbuf_free(&w);
            CHECK(0, "byte %zu: rc %d, %d frames, expected %d", i, rc, frames, expect);
        }
    }
    codec_reader_free(&r3);
    wbuf_free(&w);
    CHECK(!strcmp(got, want), "byte by byte got '%s' want '%s'", got, want);
}

static int reader_try(const uint8_t *b, size_t n)
{
    frame_reader fr = {0};
    int kind;
    const uint8_t *pl;
    size_t len;
    int rc = codec_reader_feed(&fr, b, n);
    if (rc == 0)
        rc = codec_reader_next(&fr, &kind, &pl, &len);
    codec_reader_free(&fr);
    return rc;
}

static void reader_rejects_bad_lengths(void)
{
    uint8_t b[5] = {0, 0, 0, 0, PEER_RAFT};
    CHECK(reader_try(b, 5) < 0, "length 0 accepted");
    put_be32(b, 0xffffffffu);
    CHECK(reader_try(b, 5) < 0, "length 0xffffffff accepted");
    put_be32(b, PEER_FRAME_MAX + 1);
    CHECK(reader_try(b, 5) < 0, "length PEER_FRAME_MAX+1 accepted");
    put_be32(b, PEER_FRAME_MAX);
    CHECK(reader_try(b, 5) == 0, "length PEER_FRAME_MAX refused");
    put_be32(b, 1);
    CHECK(reader_try(b, 5) == 1, "empty-payload frame not returned");
    b[4] = 0;
    CHECK(reader_try(b, 5) < 0, "kind 0 accepted");
    b[4] = PEER_REMOVED + 1;
    CHECK(reader_try(b, 5) < 0, "kind %d accepted", PEER_REMOVED + 1);
    b[4] = 0xff;
    CHECK(reader_try(b, 5) < 0, "kind 255 accepted");
    /* a bad header after a good frame is still found */
    uint8_t two[11] = {0, 0, 0, 1, PEER_HELLO, 0xff, 0xff, 0xff, 0xff, PEER_RAFT, 0};
    frame_reader fr = {0};
    int kind;
    const uint8_t *pl;
    size_t len;
    int rc0 = codec_reader_feed(&fr, two, sizeof two);
    int rc1 = codec_reader_next(&fr, &kind, &pl, &len);
    int rc2 = codec_reader_next(&fr, &kind, &pl, &len);
    int rc3 = codec_reader_next(&fr, &kind, &pl, &len);
    codec_reader_free(&fr);
    CHECK(rc0 == 0 && rc1 == 1 && kind == PEER_HELLO && len == 0,
          "good frame before bad one not returned");
    CHECK(rc2 < 0 && rc3 < 0, "bad second header accepted (%d %d)", rc2, rc3);
}

/* A frame of the largest size passes whole, fed in 64 KiB pieces; the
 * reader's memory stays bounded when a peer streams junk. */
static void reader_largest_frame_and_bound(void)
{
    size_t total = 4 + (size_t)PEER_FRAME_MAX;
    uint8_t *big = malloc(total);
    CHECK(big, "malloc");
    put_be32(big, PEER_FRAME_MAX);
    big[4] = PEER_FWD_REQ;
    for (size_t i = 5; i < total; i++)
        big[i] = (uint8_t)i;
    frame_reader fr = {0};
    int got = 0, rc = 0;
    size_t glen = 0;
    int payload_ok = 0;
    for (size_t off = 0; off < total && rc == 0; off += 65536) {
        size_t k = total - off < 65536 ? total - off : 65536;
        rc = codec_reader_feed(&fr, big + off, k);
        int kind;
        const uint8_t *pl;
        size_t len;
        int r;
        while (rc == 0 && (r = codec_reader_next(&fr, &kind, &pl, &len)) != 0) {
            if (r < 0) {
                rc = -1;
                break;
            }
            got++;
            glen = len;
            payload_ok = kind == PEER_FWD_REQ && len == total - 5 && !memcmp(pl, big + 5, len);
        }
    }
    codec_reader_free(&fr);
    CHECK(rc == 0 && got == 1, "largest frame: rc %d, %d frames", rc, got);
    CHECK(payload_ok, "largest frame payload differs (len %zu)", glen);

    /* Feeding without taking frames out: refused past the bound. A 1 MiB
     * chunk of valid empty frames, fed again and again. */
    frame_reader f2 = {0};
    size_t k = (1u << 20) - ((1u << 20) % 5);
    for (size_t j = 0; j + 5 <= k; j += 5) {
        put_be32(big + j, 1);
        big[j + 4] = PEER_HELLO;
    }
    int refused = 0;
    size_t fed = 0;
    for (int i = 0; i < 64 && !refused; i++) {
        if (codec_reader_feed(&f2, big, k) < 0)
            refused = 1;
        else
            fed += k;
    }
    size_t cap = f2.cap;
    /* after refusing, taking frames out makes room again */
    int kind;
    const uint8_t *pl;
    size_t len;
    while (codec_reader_next(&f2, &kind, &pl, &len) == 1)
        ;
    int again = codec_reader_feed(&f2, big, k);
    codec_reader_free(&f2);
    free(big);
    CHECK(refused, "reader buffered %zu bytes without refusing", fed);
    CHECK(fed >= (size_t)PEER_FRAME_MAX, "reader refused after only %zu bytes", fed);
    CHECK(fed <= (size_t)PEER_FRAME_MAX + 5 + (1u << 20),
          "reader buffered %zu bytes before refusing", fed);
    CHECK(cap <= 2 * ((size_t)PEER_FRAME_MAX + 5 + (1u << 20)), "reader buffer grew to %zu", cap);
    CHECK(again == 0, "feed refused after the buffer was drained");
}

static void reader_garbage(void)
{
    int errors = 0;
    for (int iter = 0; iter < 2000; iter++) {
        uint8_t junk[256];
        size_t n = 1 + rnd() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rnd();
        frame_reader fr = {0};
        int rc = codec_reader_feed(&fr, junk, n);
        int kind;
        const uint8_t *pl;
        size_t len;
        int steps = 0;
        while (rc == 0 && steps++ < 1000) {
            int r = codec_reader_next(&fr, &kind, &pl, &len);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r == 0)
                break;
            if (!inside(pl, len, fr.buf, fr.len)) {
                codec_reader_free(&fr);
                CHECK(0, "payload outside the reader's buffer");
            }
        }
        if (rc < 0)
            errors++;
        codec_reader_free(&fr);
        CHECK(steps < 1000, "reader looped on garbage");
    }
    /* Random junk almost always has an impossible length prefix. */
    CHECK(errors > 1500, "only %d of 2000 junk streams rejected", errors);
}

/* codec_fast_set: the shapes it takes, and everything it leaves to the
 * full JSON parser. */
static int fast(const char *s, int request, size_t *n)
{
    codec_kv kv[4];
    size_t off = 0, len = 0;
    *n = 0;
    return codec_fast_set(s, strlen(s), request, kv, 4, 8, 16, n, &off, &len);
}

static void fast_set_shapes(void)
{
    codec_kv kv[4];
    size_t n = 0, off = 0, len = 0;
    const char *rq = "{\"op\":\"set\",\"kv\":{\"k1\":\"v1\",\"k2\":\"\"}}";
    CHECK(codec_fast_set(rq, strlen(rq), 1, kv, 4, 8, 16, &n, &off, &len) == 1, "request");
    CHECK(n == 2 && kv[0].kl == 2 && !memcmp(kv[0].k, "k1", 2) && kv[0].vl == 2 &&
              !memcmp(kv[0].v, "v1", 2) && kv[1].vl == 0,
          "pairs");
    CHECK(len == strlen("{\"k1\":\"v1\",\"k2\":\"\"}") && rq[off] == '{' &&
              rq[off + len - 1] == '}',
          "object span %zu+%zu", off, len);
    CHECK(fast(" { \"kv\" : { \"a\" : \"b\" } ,\"op\":\"set\" }\n", 1, &n) && n == 1,
          "whitespace, members in the other order");
    CHECK(fast("{\"set\":{\"a\":\"b\"}}", 0, &n) && n == 1, "command");
    CHECK(!fast("{\"set\":{\"a\":\"b\"}}", 1, &n), "command taken as a request");
    CHECK(!fast("{\"op\":\"set\",\"kv\":{\"a\":\"b\"}}", 0, &n), "request taken as a command");
    CHECK(!fast("{\"op\":\"get\",\"kv\":{\"a\":\"b\"}}", 1, &n), "other op");
    CHECK(!fast("{\"kv\":{\"a\":\"b\"}}", 1, &n), "no op");
    CHECK(!fast("{\"op\":\"set\"}", 1, &n), "no kv");
    CHECK(!fast("{\"op\":\"set\",\"kv\":{}}", 1, &n), "empty kv");
    CHECK(!fast("{\"op\":\"set\",\"kv\":{\"a\":\"b\"},\"level\":\"stale\"}", 1, &n),
          "extra member");
    CHECK(!fast("{\"op\":\"set\",\"op\":\"set\",\"kv\":{\"a\":\"b\"}}", 1, &n), "dup op");
    CHECK(!fast("{\"set\":{\"a\":\"b\",\"a\":\"c\"}}", 0, &n), "duplicate key");
    CHECK(!fast("{\"set\":{\"a\\n\":\"b\"}}", 0, &n), "escape in a key");
    CHECK(!fast("{\"set\":{\"a\":\"b\\\"\"}}", 0, &n), "escape in a value");
    CHECK(!fast("{\"set\":{\"a\":\"\xc3\xa9\"}}", 0, &n), "non-ASCII");
    CHECK(!fast("{\"set\":{\"a\":\"b\tc\"}}", 0, &n), "control byte");
    CHECK(!fast("{\"set\":{\"a\":1}}", 0, &n), "number value");
    CHECK(!fast("{\"set\":{\"\":\"b\"}}", 0, &n), "empty key");
    CHECK(!fast("{\"set\":{\"123456789\":\"b\"}}", 0, &n), "key over key_max");
    CHECK(fast("{\"set\":{\"12345678\":\"b\"}}", 0, &n), "key at key_max");
    CHECK(!fast("{\"set\":{\"a\":\"12345678901234567\"}}", 0, &n), "value over value_max");
    CHECK(!fast("{\"set\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\",\"e\":\"5\"}}", 0, &n),
          "more than max pairs");
    CHECK(!fast("{\"set\":{\"a\":\"b\"}} x", 0, &n), "trailing bytes");
    CHECK(!fast("{\"set\":{\"a\":\"b\"}", 0, &n), "truncated");
    CHECK(!fast("{\"set\":{\"a\":\"b\",}}", 0, &n), "trailing comma");
    CHECK(!fast("{\"set\":{\"a\" \"b\"}}", 0, &n), "missing colon");
    CHECK(!fast("", 0, &n) && !fast("{", 0, &n) && !fast("\"", 0, &n), "fragments");
}

/* codec_fast_set against jansson on random near-commands: whatever the
 * fast path takes, jansson (JSON_REJECT_DUPLICATES, as the full path)
 * reads as the same object of the same string pairs. */
static uint64_t fs_rng = 0x9e3779b97f4a7c15ULL;
static unsigned fs_rand(unsigned n)
{
    fs_rng ^= fs_rng << 13;
    fs_rng ^= fs_rng >> 7;
    fs_rng ^= fs_rng << 17;
    return (unsigned)(fs_rng % n);
}

static void fs_put(char *b, size_t *l, size_t cap, const char *t)
{
    size_t n = strlen(t);
    if (*l + n < cap) {
        memcpy(b + *l, t, n);
        *l += n;
    }
}

static void fs_ws(char *b, size_t *l, size_t cap)
{
    static const char *ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    fs_put(b, l, cap, ws[fs_rand(7)]);
}

static void fs_string(char *b, size_t *l, size_t cap, int key)
{
    static const char *bits[] = {"a",    "b",   "k",       "0",        "-",  " ", "/", "~",
                                 "\\\"", "\\n", "\\u0041", "\xc3\xa9", "\t", "{", ":", ","};
    fs_put(b, l, cap, "\"");
    unsigned n = key ? 1 + fs_rand(3) : fs_rand(6);
    for (unsigned i = 0; i < n; i++)
        fs_put(b, l, cap, bits[fs_rand(100) < 85 ? fs_rand(8) : fs_rand(16)]);
    fs_put(b, l, cap, "\"");
}

static void fast_set_agrees_with_jansson(void)
{
    char b[512];
    int taken = 0, bad = 0;
    for (int it = 0; it < 200000 && bad < 5; it++) {
        size_t l = 0;
        int request = (int)fs_rand(2);
        fs_ws(b, &l, sizeof b);
        fs_put(b, &l, sizeof b, "{");
        fs_ws(b, &l, sizeof b);
        if (request) {
            fs_put(b, &l, sizeof b, fs_rand(10) ? "\"op\"" : "\"kv\"");
            fs_ws(b, &l, sizeof b);
            fs_put(b, &l, sizeof b, ":");
            fs_put(b, &l, sizeof b, fs_rand(10) ? "\"set\"" : "\"get\"");
            fs_put(b, &l, sizeof b, ",");
            fs_ws(b, &l, sizeof b);
        }
        fs_put(b, &l, sizeof b, request ? "\"kv\"" : "\"set\"");
        fs_put(b, &l, sizeof b, ":");
        fs_ws(b, &l, sizeof b);
        fs_put(b, &l, sizeof b, "{");
        unsigned pairs = fs_rand(6);
        for (unsigned i = 0; i < pairs; i++) {
            if (i)
                fs_put(b, &l, sizeof b, ",");
            fs_ws(b, &l, sizeof b);
            fs_string(b, &l, sizeof b, 1);
            fs_ws(b, &l, sizeof b);
            fs_put(b, &l, sizeof b, ":");
            fs_ws(b, &l, sizeof b);
            if (fs_rand(20))
                fs_string(b, &l, sizeof b, 0);
            else
                fs_put(b, &l, sizeof b, fs_rand(2) ? "1" : "null");
        }
        fs_put(b, &l, sizeof b, "}");
        fs_ws(b, &l, sizeof b);
        fs_put(b, &l, sizeof b, "}");
        fs_ws(b, &l, sizeof b);
        /* a third of them get one byte changed, dropped or added */
        if (l > 2 && fs_rand(3) == 0) {
            static const char junk[] = "{}[]:,\" \\a0\x01\xff";
            size_t at = fs_rand((unsigned)l);
            switch (fs_rand(3)) {
            case 0: b[at] = junk[fs_rand(sizeof junk - 1)]; break;
            case 1:
                memmove(b + at, b + at + 1, l - at - 1);
                l--;
                break;
            default:
                if (l + 1 < sizeof b) {
                    memmove(b + at + 1, b + at, l - at);
                    b[at] = junk[fs_rand(sizeof junk - 1)];
                    l++;
                }
            }
        }
        codec_kv kv[8];
        size_t n = 0, off = 0, olen = 0;
        if (!codec_fast_set(b, l, request, kv, 8, 6, 12, &n, &off, &olen))
            continue;
        taken++;
        json_error_t je;
        json_t *doc = json_loadb(b, l, JSON_REJECT_DUPLICATES, &je);
        json_t *obj = json_object_get(doc, request ? "kv" : "set");
        int same = doc && json_is_object(obj) && json_object_size(obj) == n &&
                   json_object_size(doc) == (request ? 2u : 1u) && n > 0 && olen > 0 &&
                   b[off] == '{' && b[off + olen - 1] == '}';
        if (same && request)
            same = json_is_string(json_object_get(doc, "op")) &&
                   !strcmp(json_string_value(json_object_get(doc, "op")), "set");
        for (size_t i = 0; same && i < n; i++) {
            char key[16];
            memcpy(key, kv[i].k, kv[i].kl);
            key[kv[i].kl] = 0;
            json_t *v = json_object_get(obj, key);
            same = json_is_string(v) && json_string_length(v) == kv[i].vl &&
                   !memcmp(json_string_value(v), kv[i].v, kv[i].vl);
        }
        json_decref(doc);
        if (!same) {
            bad++;
            CHECK(0, "fast path took what jansson reads otherwise: %.*s", (int)l, b);
        }
    }
    CHECK(bad == 0, "%d disagreements", bad);
    /* the generator must reach the fast path often, or this proves little */
    CHECK(taken > 20000, "fast path took only %d of 200000", taken);
}

int main(void)
{
    fill_blob();
    RUN(hello_round_trip);
    RUN(hello_round_trip_limits);
    RUN(hello_encode_rejects_bad_fields);
    RUN(hello_decode_rejects_bad_input);
    RUN(hello_truncated_at_every_byte);
    RUN(msg_round_trip_every_type);
    RUN(msg_round_trip_append_entries);
    RUN(msg_round_trip_snapshot_with_conf);
    RUN(msg_frame_size_limit);
    RUN(msg_encode_rejects_bad_fields);
    RUN(msg_truncated_at_every_byte);
    RUN(msg_decode_rejects_bad_fields);
    RUN(msg_huge_counts_rejected);
    RUN(msg_garbage_and_mutations);
    RUN(fwd_round_trip);
    RUN(removed_round_trip);
    RUN(fwd_truncated_rejected);
    RUN(reader_split_at_every_position);
    RUN(reader_rejects_bad_lengths);
    RUN(reader_largest_frame_and_bound);
    RUN(reader_garbage);
    RUN(fast_set_shapes);
    RUN(fast_set_agrees_with_jansson);
    return check_summary();
}
