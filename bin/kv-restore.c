/*
 * kv-restore - make a fresh DATADIR that starts a NEW one-node cluster from
 * a backup (kv-backup's output) or, with -force-new-cluster, from a
 * surviving node's own raft.db after the cluster's majority is lost.
 *
 * The new DATADIR holds the backup's kv table and applied index as a
 * snapshot at that index whose configuration is this one node; the log is
 * empty, the term 1, the cluster id new. raftd started on it (by keyval
 * with the same -id) elects itself and serves; other nodes join it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvrules.h"
#include "nodeid.h"
#include "storage.h"

#define PROG "kv-restore"

static void usage(FILE *f)
{
    fprintf(f,
"usage: kv-restore [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT]\n"
"                  [-force-new-cluster] BACKUP DATADIR\n"
"Creates DATADIR (which must be missing or empty) holding a NEW one-node\n"
"cluster with a new cluster id, the key-value table and the applied index\n"
"of BACKUP (a file written by kv-backup). Start the node afterwards with\n"
"keyval and the same -id, -haddr and -raddr; other nodes join it.\n"
"  -id ID             node ID, 1-63 of [A-Za-z0-9._-] (default: the Raft\n"
"                     address with ':' replaced by '-', localhost-12000)\n"
"  -haddr HOST:PORT   HTTP API address (default localhost:11000)\n"
"  -raddr HOST:PORT   Raft peer address (default localhost:12000)\n"
"  -force-new-cluster accept a node's own raft.db (not a kv-backup file):\n"
"                     for recovery when a majority is lost for good\n"
"Exit status: 0 restored, 1 failed (nothing is left in DATADIR),\n"
"2 usage error or refused.\n");
}

/* HOST:PORT with a port of 1-65535 and a host without spaces. */
static int addr_valid(const char *s)
{
    const char *c = strrchr(s, ':');
    if (!c || c == s || strlen(s) > 200)
        return 0;
    for (const char *p = s; p < c; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f)
            return 0;
    char *end;
    errno = 0;
    long port = strtol(c + 1, &end, 10);
    return !errno && *end == '\0' && c[1] && port >= 1 && port <= 65535;
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

static char g_created[4][256];
static int g_n_created;
static const char *g_dir;
static int g_made_dir;

static void undo(void)
{
    for (int i = 0; i < g_n_created; i++)
        unlink(g_created[i]);
    if (g_made_dir)
        rmdir(g_dir);
}

static void track(const char *path)
{
    if (g_n_created < 4)
        snprintf(g_created[g_n_created++], sizeof g_created[0], "%s", path);
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    undo();
    return 1;
}

/* Reads meta NAME of the open backup as text; "" when absent. */
static void meta_text(sqlite3 *db, const char *name, char *out, size_t cap)
{
    sqlite3_stmt *q;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT CAST(value AS TEXT) FROM meta WHERE name = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
}

int main(int argc, char **argv)
{
    const char *id = NULL, *haddr = "localhost:11000", *raddr = "localhost:12000";
    int force = 0;
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-id")) {
            slot = &id;
        } else if (!strcmp(a, "-haddr")) {
            slot = &haddr;
        } else if (!strcmp(a, "-raddr")) {
            slot = &raddr;
        } else if (!strcmp(a, "-force-new-cluster")) {
            force = 1;
            continue;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            if (npos == 2) {
                fprintf(stderr, PROG ": expected BACKUP and DATADIR, got more\n");
                usage(stderr);
                return 2;
            }
            pos[npos++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, PROG ": %s needs an argument\n", a);
            usage(stderr);
            return 2;
        }
        *slot = argv[++i];
    }
    if (npos != 2) {
        fprintf(stderr, PROG ": expected BACKUP and DATADIR\n");
        usage(stderr);
        return 2;
    }
    const char *backup = pos[0];
    g_dir = pos[1];
    if (!addr_valid(haddr) || !addr_valid(raddr)) {
        fprintf(stderr, PROG ": bad address %s: expected HOST:PORT\n",
                addr_valid(haddr) ? raddr : haddr);
        return 2;
    }
    static char default_id[64];
    if (!id) {
        size_t k = 0;
        for (const char *c = raddr; *c && k < sizeof default_id - 1; c++)
            default_id[k++] = kv_name_char(*c) ? *c : '-';
        id = default_id;
    }
    if (!kv_name_ok(id)) {
        fprintf(stderr, PROG ": bad -id %s: must be 1-63 characters of [A-Za-z0-9._-]\n", id);
        return 2;
    }
    if (strlen(g_dir) > 80) {
        fprintf(stderr, PROG ": DATADIR %s is too long (raftd takes at most 80 bytes)\n",
                g_dir);
        return 2;
    }

    /* Look at the backup before touching DATADIR. */
    struct stat st;
    if (stat(backup, &st) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", backup, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, PROG ": %s: not a regular file\n", backup);
        return 1;
    }
    sqlite3 *src = NULL;
    if (sqlite3_open_v2(backup, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, PROG ": %s: %s\n", backup, sqlite3_errmsg(src));
        sqlite3_close(src);
        return 1;
    }
    sqlite3_busy_timeout(src, 10000);
    sqlite3_stmt *q;
    int64_t nkeys = -1;
    if (sqlite3_prepare_v2(src, "SELECT count(*) FROM kv", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        nkeys = sqlite3_column_int64(q, 0);
    if (nkeys < 0) {
        fprintf(stderr, PROG ": %s is not a keyval database or backup: %s\n", backup,
                sqlite3_errmsg(src));
        sqlite3_finalize(q);
        sqlite3_close(src);
        return 1;
    }
    sqlite3_finalize(q);
    char applied_s[32], marker[200], old_cluster[80];
    meta_text(src, "applied", applied_s, sizeof applied_s);
    meta_text(src, "backup_of", marker, sizeof marker);
    meta_text(src, "cluster", old_cluster, sizeof old_cluster);
    uint64_t applied = strtoull(applied_s, NULL, 10);
    if (!marker[0] && !force) {
        fprintf(stderr,
                PROG ": REFUSED: %s is not a kv-backup file (it looks like a node's own\n"
                PROG ": raft.db). Restoring it starts a NEW cluster from this one node's\n"
                PROG ": data, forgetting every other member and any write this node had\n"
                PROG ": not applied. Do that only when the old cluster's majority is lost\n"
                PROG ": for good and its nodes will never run again; then repeat with\n"
                PROG ": -force-new-cluster. Otherwise restore a kv-backup file.\n",
                backup);
        sqlite3_close(src);
        return 2;
    }
    if (applied == 0) {
        fprintf(stderr, PROG ": %s has no applied entries: nothing to restore "
                "(start a new node with keyval instead)\n", backup);
        sqlite3_close(src);
        return 1;
    }

    /* DATADIR: missing or empty. */
    if (mkdir(g_dir, 0700) == 0) {
        g_made_dir = 1;
    } else if (errno != EEXIST) {
        fprintf(stderr, PROG ": mkdir %s: %s\n", g_dir, strerror(errno));
        sqlite3_close(src);
        return 1;
    } else {
        int e = dir_empty(g_dir);
        if (e != 1) {
            fprintf(stderr, PROG ": REFUSED: %s %s; restore only into a new, empty "
                    "directory\n", g_dir, e < 0 ? "is not a readable directory" : "is not empty");
            sqlite3_close(src);
            return 2;
        }
    }

    char dbpath[160], snap[160];
    snprintf(dbpath, sizeof dbpath, "%s/raft.db", g_dir);
    snprintf(snap, sizeof snap, "%s/snap-%" PRIu64 ".snap", g_dir, applied);
    track(dbpath);
    char side[200];
    snprintf(side, sizeof side, "%s-wal", dbpath);
    track(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    track(side);
    track(snap);

    /* A consistent copy with SQLite's online backup (works on a live db). */
    sqlite3 *dst = NULL;
    if (sqlite3_open_v2(dbpath, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        int r = fail("%s: %s", dbpath, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        sqlite3_close(src);
        return r;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    if (b)
        sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        int r = fail("copy %s: %s", backup, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        sqlite3_close(src);
        return r;
    }
    sqlite3_close(src);
    /* Keep the table and the applied index; forget the old log and state. */
    char *err = NULL;
    if (sqlite3_exec(dst, "DELETE FROM log; DELETE FROM meta WHERE name <> 'applied';", NULL,
                     NULL, &err) != SQLITE_OK) {
        int r = fail("%s: %s", dbpath, err ? err : "error");
        sqlite3_free(err);
        sqlite3_close(dst);
        return r;
    }
    sqlite3_close(dst);

    store *s = store_open(dbpath);
    if (!s)
        return fail("%s%s", store_open_error(), "");
    raft_snap_meta m;
    memset(&m, 0, sizeof m);
    m.index = applied;
    m.term = 1;
    m.conf.n = 1;
    /* A new incarnation of node ID: its Raft id (lib/nodeid.h), stored
     * for raftd to find. */
    char inc[NODEID_HEX_LEN + 1];
    if (nodeid_new_incarnation(inc, sizeof inc) < 0) {
        store_close(s);
        return fail("/dev/urandom: %s%s", strerror(errno ? errno : EIO), "");
    }
    m.conf.nodes[0].id = nodeid_derive(id, inc);
    m.conf.nodes[0].voter = 1;
    kv_meta_format(m.conf.nodes[0].meta, sizeof m.conf.nodes[0].meta, id, raddr, haddr);
    raft_hard_state hs = {.term = 1, .vote = 0};

    char cluster[33];
    unsigned char rnd[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (fd >= 0)
            close(fd);
        store_close(s);
        return fail("/dev/urandom: %s%s", strerror(errno), "");
    }
    close(fd);
    for (int i = 0; i < 16; i++)
        sprintf(cluster + 2 * i, "%02x", rnd[i]);
    char from[300];
    snprintf(from, sizeof from, "%s@%" PRIu64, old_cluster[0] ? old_cluster : "unknown",
             applied);

    if (store_applied(s) != applied || store_begin(s) < 0 ||
        store_snapshot_write(s, snap, &m) < 0 || store_save_hs(s, &hs) < 0 ||
        store_meta_set(s, "incarnation", inc) < 0 || store_meta_set(s, "name", id) < 0 ||
        store_meta_set(s, "cluster", cluster) < 0 ||
        store_meta_set(s, "restored_from", from) < 0 || store_commit(s) < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", store_error(s));
        store_close(s);
        return fail("%s: %s", dbpath, msg);
    }
    store_close(s);
    printf("%s: new cluster %s (node %s), %" PRId64 " keys at index %" PRIu64
           " from %s (cluster %s)\n",
           g_dir, cluster, id, nkeys, applied, backup, old_cluster[0] ? old_cluster : "unknown");
    printf("start it with: keyval -id %s -haddr %s -raddr %s %s\n", id, haddr, raddr, g_dir);
    return 0;
}
