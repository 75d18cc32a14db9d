/*
 * test_nodeid.c - node ids unique per incarnation (lib/nodeid.c): the
 * derivation, the text form, and what raftd's startup gets from a new
 * database, the same database again, a wiped one and one of a version
 * before incarnations.
 *
 * Prints "ok NAME" or "FAIL NAME: reason" per case, then
 * "N passed, M failed"; exits 1 on any failure.
 */
#include "nodeid.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_tmp[64];

static void db_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s.db", g_tmp, name);
}

/* Opens DB, runs nodeid_load for NAME as raftd does (fresh when the
 * database holds no Raft state) and stores the name; returns the id. */
static uint64_t start(const char *db, const char *name, int *legacy, char *inc, size_t cap)
{
    char path[128], err[300];
    db_path(path, sizeof path, db);
    store *s = store_open(path);
    if (!s)
        return 0;
    store_loaded ld;
    int fresh = 0;
    if (store_load(s, &ld) == 0) {
        fresh = ld.n_entries == 0 && !ld.has_snap && ld.hs.term == 0 && ld.applied == 0;
        store_loaded_free(&ld);
    }
    char stored[80];
    int has_name = store_meta_get(s, "name", stored, sizeof stored) == 1;
    uint64_t id = 0;
    if (nodeid_load(s, name, fresh, &id, inc, cap, legacy, err, sizeof err) < 0) {
        printf("# nodeid_load: %s\n", err);
        id = 0;
    }
    if (!has_name)
        store_meta_set(s, "name", name);
    store_close(s);
    return id;
}

static void rm_db(const char *db)
{
    char path[128], side[160];
    db_path(path, sizeof path, db);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_nodeid.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        check(0, "setup", "mkdtemp");
        return check_summary();
    }

    /* The legacy id is the FNV-1a 64 of the name (what raftd used). */
    EXPECT(nodeid_legacy("") == 0xcbf29ce484222325ULL &&
               nodeid_legacy("a") == 0xaf63dc4c8601ec8cULL,
           "legacy_is_fnv1a64");
    EXPECT(nodeid_derive("node1", NULL) == nodeid_legacy("node1") &&
               nodeid_derive("node1", "") == nodeid_legacy("node1"),
           "derive_without_incarnation_is_legacy");
    EXPECT(nodeid_derive("node1", "00000000000000aa") !=
                   nodeid_derive("node1", "00000000000000ab") &&
               nodeid_derive("node1", "00000000000000aa") != nodeid_legacy("node1"),
           "derive_depends_on_incarnation");
    EXPECT(nodeid_derive("node1", "00000000000000aa") != nodeid_derive("node2", "00000000000000aa"),
           "derive_depends_on_name");
    EXPECT(nodeid_derive("node1", "00000000000000aa") == nodeid_derive("node1", "00000000000000aa"),
           "derive_is_stable");

    char a[NODEID_HEX_LEN + 1], b[NODEID_HEX_LEN + 1];
    uint64_t v = 0;
    EXPECT(nodeid_new_incarnation(a, sizeof a) == 0 && nodeid_new_incarnation(b, sizeof b) == 0 &&
               strcmp(a, b) != 0,
           "new_incarnations_differ");
    EXPECT(strlen(a) == 16 && nodeid_parse(a, &v), "new_incarnation_is_16_hex");
    EXPECT(nodeid_new_incarnation(a, 8) < 0, "new_incarnation_small_buffer_refused");

    char f[NODEID_HEX_LEN + 1];
    nodeid_format(0x00ab00cd00ef0012ULL, f, sizeof f);
    EXPECT(!strcmp(f, "00ab00cd00ef0012"), "format_16_hex");
    EXPECT(nodeid_parse(f, &v) && v == 0x00ab00cd00ef0012ULL, "parse_round_trip");
    EXPECT(nodeid_parse("00AB00CD00EF0012", &v) && v == 0x00ab00cd00ef0012ULL, "parse_upper_case");
    v = 7;
    EXPECT(!nodeid_parse(NULL, &v) && !nodeid_parse("", &v) && !nodeid_parse("abc", &v) &&
               !nodeid_parse("00ab00cd00ef00120", &v) && !nodeid_parse("00ab00cd00ef001g", &v) &&
               !nodeid_parse("0000000000000000", &v) && !nodeid_parse(" 0ab00cd00ef0012", &v) &&
               v == 7,
           "parse_rejects");

    /* A new data directory gets an incarnation; a restart keeps the id. */
    int legacy = -1;
    char inc1[32], inc2[32], inc3[32];
    uint64_t id1 = start("n1", "node1", &legacy, inc1, sizeof inc1);
    EXPECT(id1 && legacy == 0 && strlen(inc1) == 16 && id1 == nodeid_derive("node1", inc1) &&
               id1 != nodeid_legacy("node1"),
           "new_db_gets_incarnation");
    uint64_t id1b = start("n1", "node1", &legacy, inc2, sizeof inc2);
    EXPECT(id1b == id1 && legacy == 0 && !strcmp(inc1, inc2), "restart_keeps_id");

    /* Wiped: the same name on a new database is a new identity. */
    rm_db("n1");
    uint64_t id1c = start("n1", "node1", &legacy, inc3, sizeof inc3);
    EXPECT(id1c && id1c != id1 && legacy == 0 && strcmp(inc1, inc3), "wiped_db_gets_new_id");

    /* A database of an older version: a name, no incarnation. */
    {
        char path[128];
        db_path(path, sizeof path, "old");
        store *s = store_open(path);
        int made = s && store_meta_set(s, "name", "node0") == 0;
        raft_hard_state hs = {.term = 3, .vote = 42};
        made = made && store_save_hs(s, &hs) == 0;
        if (s)
            store_close(s);
        EXPECT(made, "old_db_made");
    }
    char inc4[32] = "x";
    uint64_t id0 = start("old", "node0", &legacy, inc4, sizeof inc4);
    EXPECT(id0 == nodeid_legacy("node0") && legacy == 1 && !inc4[0], "old_db_keeps_name_hash");
    id0 = start("old", "node0", &legacy, inc4, sizeof inc4);
    EXPECT(id0 == nodeid_legacy("node0") && legacy == 1, "old_db_stays_legacy");

    /* A database with a name but no Raft state yet (a joiner of an older
     * version that may already be in a configuration): legacy too. */
    {
        char path[128];
        db_path(path, sizeof path, "oldjoiner");
        store *s = store_open(path);
        if (s) {
            store_meta_set(s, "name", "node5");
            store_close(s);
        }
    }
    uint64_t id5 = start("oldjoiner", "node5", &legacy, inc4, sizeof inc4);
    EXPECT(id5 == nodeid_legacy("node5") && legacy == 1, "old_fresh_joiner_keeps_name_hash");

    /* A stored incarnation that is not 16 hex digits is an error. */
    {
        char path[128], err[300];
        db_path(path, sizeof path, "bad");
        store *s = store_open(path);
        int rc = -2;
        if (s) {
            store_meta_set(s, "incarnation", "zz");
            uint64_t id;
            rc = nodeid_load(s, "node1", 1, &id, inc4, sizeof inc4, &legacy, err, sizeof err);
            store_close(s);
        }
        EXPECT(rc == -1, "bad_incarnation_is_error");
    }

    const char *dbs[] = {"n1", "old", "oldjoiner", "bad"};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
        rm_db(dbs[i]);
    rmdir(g_tmp);
    return check_summary();
}
