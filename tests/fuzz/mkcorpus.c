/*
 * mkcorpus - writes the seed corpus of the fuzz targets into DIR
 * (tests/fuzz/corpus/<target>/): real frames, commands and a snapshot
 * made with the library's own encoders. Usage: mkcorpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "storage.h"

static const char *dir;

static uint64_t fnv1a(const char *s) /* raftd's node id of a name */
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h ? h : 1;
}

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_codec(const char *name, wbuf *b, uint8_t chunk)
{
    uint8_t *p = malloc(b->len + 1);
    p[0] = chunk;
    memcpy(p + 1, b->p, b->len);
    put("codec", name, p, b->len + 1);
    free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus DIR\n");
        return 2;
    }
    dir = argv[1];
    mkdir(dir, 0755);

    /* codec: hello, then raft messages of several types, then fwd frames */
    peer_hello h = {.version = PEER_VERSION, .from = 0x1234};
    snprintf(h.cluster, sizeof h.cluster, "0123456789abcdef");
    snprintf(h.meta, sizeof h.meta, "node0 127.0.0.1:12000 127.0.0.1:11000");
    wbuf all = {0};
    wbuf b = {0};
    codec_hello_frame(&b, &h);
    codec_hello_frame(&all, &h);
    put_codec("hello", &b, 255);
    wbuf_free(&b);

    uint8_t d1[] = "{\"set\":{\"a\":\"1\"}}";
    raft_entry ents[2] = {
        {.term = 2, .index = 5, .type = RAFT_ENTRY_NORMAL, .len = sizeof d1 - 1, .data = d1},
        {.term = 2, .index = 6, .type = RAFT_ENTRY_NOOP}};
    raft_config conf = {.n = 2};
    conf.nodes[0].id = 1;
    conf.nodes[0].voter = 1;
    snprintf(conf.nodes[0].meta, RAFT_META_MAX, "node0 127.0.0.1:12000 -");
    conf.nodes[1].id = 2;
    conf.nodes[1].voter = 0;
    snprintf(conf.nodes[1].meta, RAFT_META_MAX, "node1 127.0.0.1:12001 -");
    uint8_t snapbytes[32] = "KVSNAP01";
    for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
        raft_msg m = {.type = (uint8_t)t,
                      .from = 0x1234,
                      .to = 7,
                      .term = 3,
                      .index = 4,
                      .log_term = 2,
                      .commit = 4,
                      .ctx = 9};
        if (t == RAFT_MSG_APPEND) {
            m.n_entries = 2;
            m.entries = ents;
        }
        if (t == RAFT_MSG_SNAP) {
            m.snap_index = 10;
            m.snap_term = 2;
            m.len = sizeof snapbytes;
            m.data = snapbytes;
            m.last = 1;
            m.conf = &conf;
        }
        if (t == RAFT_MSG_APPEND_RESP) {
            m.reject = 1;
            m.hint_index = 3;
            m.hint_term = 1;
        }
        b = (wbuf){0};
        if (codec_msg_frame(&b, &m) < 0 || codec_msg_frame(&all, &m) < 0) {
            fprintf(stderr, "mkcorpus: cannot encode type %d\n", t);
            return 1;
        }
        char name[32];
        snprintf(name, sizeof name, "msg-%02d", t);
        put_codec(name, &b, 255);
        wbuf_free(&b);
    }
    const char *req = "{\"op\":\"set\",\"kv\":{\"a\":\"b\"}}";
    b = (wbuf){0};
    codec_fwd_frame(&b, PEER_FWD_REQ, 42, 0x1234, req, strlen(req));
    codec_fwd_frame(&all, PEER_FWD_REQ, 42, 0x1234, req, strlen(req));
    put_codec("fwd-req", &b, 255);
    wbuf_free(&b);
    const char *rep = "{\"code\":200,\"index\":7}";
    b = (wbuf){0};
    codec_fwd_frame(&b, PEER_FWD_RESP, 42, 0, rep, strlen(rep));
    codec_fwd_frame(&all, PEER_FWD_RESP, 42, 0, rep, strlen(rep));
    put_codec("fwd-resp", &b, 255);
    wbuf_free(&b);
    put_codec("stream-chunk7", &all, 6);
    put_codec("stream", &all, 255);
    wbuf_free(&all);

    /* peer: streams as node1 of the harness's cluster (raftd_harness.h)
     * would send them to node0: a HELLO, then messages of every type. */
    {
        uint64_t id1 = fnv1a("node1"), id0 = fnv1a("node0");
        peer_hello ph = {.version = PEER_VERSION, .from = id1};
        snprintf(ph.cluster, sizeof ph.cluster, "0123456789abcdef");
        snprintf(ph.meta, sizeof ph.meta, "node1 127.0.0.1:21992 127.0.0.1:21993");
        wbuf hb = {0};
        codec_hello_frame(&hb, &ph);
        put("peer", "hello-only", hb.p, hb.len);
        peer_hello bad = ph;
        snprintf(bad.cluster, sizeof bad.cluster, "ffffffffffffffff");
        wbuf bb = {0};
        codec_hello_frame(&bb, &bad);
        put("peer", "hello-wrong-cluster", bb.p, bb.len);
        wbuf_free(&bb);
        wbuf st = {0};
        codec_hello_frame(&st, &ph);
        for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
            raft_msg m = {.type = (uint8_t)t,
                          .from = id1,
                          .to = id0,
                          .term = 2,
                          .index = 1,
                          .log_term = 1,
                          .commit = 1,
                          .ctx = 9};
            if (t == RAFT_MSG_APPEND) {
                ents[0].index = 2;
                ents[1].index = 3;
                m.n_entries = 2;
                m.entries = ents;
            }
            if (t == RAFT_MSG_SNAP) {
                m.snap_index = 10;
                m.snap_term = 2;
                m.len = sizeof snapbytes;
                m.data = snapbytes;
                m.last = 0;
                m.conf = &conf;
            }
            wbuf one = {0};
            codec_hello_frame(&one, &ph);
            codec_msg_frame(&one, &m);
            codec_msg_frame(&st, &m);
            char name[32];
            snprintf(name, sizeof name, "hello-msg-%02d", t);
            put("peer", name, one.p, one.len);
            wbuf_free(&one);
        }
        const char *fr = "{\"op\":\"set\",\"kv\":{\"a\":\"b\"}}";
        codec_fwd_frame(&st, PEER_FWD_REQ, 42, id1, fr, strlen(fr));
        const char *fp = "{\"code\":200,\"index\":7}";
        codec_fwd_frame(&st, PEER_FWD_RESP, 1, 0, fp, strlen(fp));
        put("peer", "stream", st.p, st.len);
        wbuf_free(&st);
        wbuf_free(&hb);
    }

    /* store: commands */
    static const char *cmds[] = {
        "{\"set\":{\"a\":\"1\",\"b\":\"2\"}}",
        "{\"del\":[\"a\"]}",
        "{\"set\":{\"c\":\"3\"},\"if\":[{\"key\":\"c\",\"index\":0}]}",
        "{\"set\":{\"c\":\"4\"},\"if\":[{\"key\":\"c\",\"index\":3}],\"del\":[\"b\"]}",
        "{\"set\":{\"k\\u0000x\":\"v\"}}",
        "{}",
        "[1,2]",
        /* the "op" forms; fuzz_store presets leases 1 and 2, keys a b
         * (lease 1, index 3) and c (index 4); one entry per line */
        "{\"op\":\"set\",\"kv\":{\"d\":\"4\"},\"lease\":2}\n"
        "{\"op\":\"lease_revoke\",\"lease\":\"2\"}",
        "{\"op\":\"set\",\"kv\":{\"a\":\"x\"},\"lease\":99}",
        "{\"op\":\"del\",\"key\":\"c\"}\n{\"op\":\"del\",\"key\":\"c\"}",
        "{\"op\":\"lease_grant\",\"ttl_ms\":1000}\n"
        "{\"op\":\"set\",\"kv\":{\"e\":\"5\"},\"lease\":5}\n"
        "{\"op\":\"lease_expire\",\"lease\":5}",
        "{\"op\":\"lease_expire\",\"lease\":1}\n{\"op\":\"lease_expire\",\"lease\":1}",
        "{\"op\":\"lease_grant\",\"ttl_ms\":999}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"index\":3},{\"key\":\"z\",\"absent\":true},"
        "{\"key\":\"c\",\"value\":\"3\"}],\"then\":[{\"del\":\"a\"},{\"set\":{\"z\":\"1\"},"
        "\"lease\":1}],\"else\":[{\"set\":{\"f\":\"6\"}}]}",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"c\",\"value\":\"no\"}],\"then\":[],"
        "\"else\":[{\"set\":{\"g\":\"7\"},\"lease\":3}]}",
        "{\"op\":\"txn\",\"set\":{\"c\":\"8\"},\"if\":[{\"key\":\"c\",\"index\":4}]}",
        "{\"op\":\"txn\",\"then\":[{\"set\":{\"k\":\"v\"},\"del\":\"k\"}]}",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "cmd-%zu", i);
        put("store", name, cmds[i], strlen(cmds[i]));
    }

    /* snapshot: a real file of a small table, with a lease (the format's
     * version 2; snap-4-v1 in the corpus is the version 1 file) */
    store *s = store_open(":memory:");
    if (!s) {
        fprintf(stderr, "mkcorpus: %s\n", store_open_error());
        return 1;
    }
    static const char *snap_cmds[] = {
        "{\"op\":\"lease_grant\",\"ttl_ms\":3000}",
        "{\"op\":\"set\",\"kv\":{\"l\":\"on lease 5\"},\"lease\":5}",
    };
    for (size_t i = 0; i < 6; i++) {
        const char *c = i < 4 ? cmds[i] : snap_cmds[i - 4];
        raft_entry e = {.term = 1,
                        .index = i + 1,
                        .type = RAFT_ENTRY_NORMAL,
                        .len = (uint32_t)strlen(c),
                        .data = (uint8_t *)c};
        store_result r;
        if (store_apply(s, &e, &r) < 0) {
            fprintf(stderr, "mkcorpus: %s\n", store_error(s));
            return 1;
        }
    }
    raft_snap_meta meta = {.index = 6, .term = 1, .conf = conf};
    char sp[512];
    snprintf(sp, sizeof sp, "%s/snapshot/snap-6", dir);
    char sd[512];
    snprintf(sd, sizeof sd, "%s/snapshot", dir);
    mkdir(sd, 0755);
    if (store_snapshot_write(s, sp, &meta) < 0) {
        fprintf(stderr, "mkcorpus: %s\n", store_error(s));
        return 1;
    }
    store_close(s);

    /* cgi: URI \0 CONTENT_LENGTH \0 If-Match \0 If-None-Match \0 body */
#define CG(name, lit) \
    { \
        name, lit, sizeof lit - 1 \
    }
    static const struct {
        const char *name;
        const char *v;
        size_t n;
    } cg[] = {
        CG("get", "/key/a%2Fb?level=stale\0\0\0\0"),
        CG("put", "/key/x\0"
                  "5\0\"3\"\0\0hello"),
        CG("put-inm", "/key/x\0"
                      "1\0\0*\0z"),
        CG("set", "/key\0"
                  "19\0\0\0{\"a\":\"1\",\"b\":\"\"}"),
        CG("list", "/key?prefix=a+b&after=a%20&limit=10&level=linearizable"),
        CG("join",
           "/join\0"
           "70\0\0\0{\"id\":\"node1\",\"addr\":\"127.0.0.1:12001\",\"haddr\":\"127.0.0.1:11001\"}"),
    };
    for (size_t i = 0; i < sizeof cg / sizeof cg[0]; i++)
        put("cgi", cg[i].name, cg[i].v, cg[i].n);

    /* client: JSON request lines as raftd.sock takes them */
    static const char *lines[] = {
        "{\"op\":\"get\",\"key\":\"a\",\"level\":\"stale\"}\n",
        "{\"op\":\"set\",\"kv\":{\"a\":\"1\"}}\n{\"op\":\"del\",\"key\":\"a\"}\n",
        "{\"op\":\"txn\",\"set\":{\"a\":\"1\"},\"del\":[\"b\"],\"if\":[{\"key\":\"a\",\"index\":0}]}\n",
        "{\"op\":\"list\",\"prefix\":\"a\",\"after\":\"ab\",\"limit\":10}\r\n",
        "{\"op\":\"join\",\"id\":\"node1\",\"addr\":\"127.0.0.1:12001\",\"haddr\":\"127.0.0.1:11001\"}\n",
        "{\"op\":\"remove\",\"id\":\"node1\"}\n{\"op\":\"transfer\",\"id\":\"node2\"}\n",
        "{\"op\":\"status\"}\n  \n[1]\n{bad\n",
        "{\"op\":\"get\",\"key\":\"a\",\"index\":3,\"wait_ms\":50,\"level\":\"stale\"}\n"
        "{\"op\":\"list\",\"prefix\":\"a\",\"index\":0,\"wait_ms\":10}\n",
        "{\"op\":\"watch\",\"prefix\":\"a/\",\"from\":0}\n{\"op\":\"get\",\"key\":\"a\"}\n",
        "{\"op\":\"watch\",\"key\":\"k\"}\n",
        "{\"op\":\"lease_grant\",\"ttl_ms\":5000}\n{\"op\":\"lease_renew\",\"lease\":\"12\"}\n"
        "{\"op\":\"lease_get\",\"lease\":12}\n{\"op\":\"lease_revoke\",\"lease\":\"12\"}\n",
        "{\"op\":\"set\",\"kv\":{\"a\":\"1\"},\"lease\":\"7\"}\n",
        "{\"op\":\"txn\",\"if\":[{\"key\":\"a\",\"index\":0},{\"key\":\"b\",\"absent\":true},"
        "{\"key\":\"c\",\"value\":\"v\"}],\"then\":[{\"set\":{\"a\":\"1\"},\"lease\":3},"
        "{\"del\":\"b\"}],\"else\":[{\"set\":{\"x\":\"y\"}}]}\n",
    };
    /* byte 0 is fuzz_client's read-size selector, then the stream */
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char name[32], buf[512];
        snprintf(name, sizeof name, "req-%zu", i);
        buf[0] = (char)(i == 2 ? 2 : 255);
        size_t n = strlen(lines[i]);
        memcpy(buf + 1, lines[i], n);
        put("client", name, buf, n + 1);
    }
    return 0;
}
