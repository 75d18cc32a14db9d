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
    fprintf(f, "usage: kv-restore [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT]\n"
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

struct restore_args {
    const char *id, *haddr, *raddr, *backup;
    int force;
};

/* Flags and the two operands. Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct restore_args *a)
{
    static char default_id[64];
    const char *pos[2];
    int npos = 0;
    a->haddr = "localhost:11000";
    a->raddr = "localhost:12000";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char **slot = NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "-id")) {
            slot = &a->id;
        } else if (!strcmp(o, "-haddr")) {
            slot = &a->haddr;
        } else if (!strcmp(o, "-raddr")) {
            slot = &a->raddr;
        } else if (!strcmp(o, "-force-new-cluster")) {
            a->force = 1;
            continue;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, PROG ": unknown option %s\n", o);
            usage(stderr);
            return 2;
        } else {
            if (npos == 2) {
                fprintf(stderr, PROG ": expected BACKUP and DATADIR, got more\n");
                usage(stderr);
                return 2;
            }
            pos[npos++] = o;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, PROG ": %s needs an argument\n", o);
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
    a->backup = pos[0];
    g_dir = pos[1];
    if (!addr_valid(a->haddr) || !addr_valid(a->raddr)) {
        fprintf(stderr, PROG ": bad address %s: expected HOST:PORT\n",
                addr_valid(a->haddr) ? a->raddr : a->haddr);
        return 2;
    }
    if (!a->id) {
        size_t k = 0;
        for (const char *c = a->raddr; *c && k < sizeof default_id - 1; c++)
            default_id[k++] = kv_name_char(*c) ? *c : '-';
        a->id = default_id;
    }
    if (!kv_name_ok(a->id)) {
        fprintf(stderr, PROG ": bad -id %s: must be 1-63 characters of [A-Za-z0-9._-]\n", a->id);
        return 2;
    }
    if (strlen(g_dir) > 80) {
        fprintf(stderr, PROG ": DATADIR %s is too long (raftd takes at most 80 bytes)\n", g_dir);
        return 2;
    }
    return -1;
}

/* What the backup says of itself, read before DATADIR is touched. */
struct backup_info {
    sqlite3 *db;
    int64_t nkeys;
    uint64_t applied;
    char old_cluster[80];
};

/* Opens and checks the backup. Returns -1 to go on, else the exit status. */
static int open_backup(const struct restore_args *a, struct backup_info *bi)
{
    struct stat st;
    if (stat(a->backup, &st) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", a->backup, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, PROG ": %s: not a regular file\n", a->backup);
        return 1;
    }
    sqlite3 *src = NULL;
    if (sqlite3_open_v2(a->backup, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, PROG ": %s: %s\n", a->backup, sqlite3_errmsg(src));
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
        fprintf(stderr, PROG ": %s is not a keyval database or backup: %s\n", a->backup,
                sqlite3_errmsg(src));
        sqlite3_finalize(q);
        sqlite3_close(src);
        return 1;
    }
    sqlite3_finalize(q);
    char applied_s[32], marker[200];
    meta_text(src, "applied", applied_s, sizeof applied_s);
    meta_text(src, "backup_of", marker, sizeof marker);
    meta_text(src, "cluster", bi->old_cluster, sizeof bi->old_cluster);
    uint64_t applied = strtoull(applied_s, NULL, 10);
    if (!marker[0] && !a->force) {
        fprintf(stderr,
                PROG ": REFUSED: %s is not a kv-backup file (it looks like a node's own\n" PROG
                     ": raft.db). Restoring it starts a NEW cluster from this one node's\n" PROG
                     ": data, forgetting every other member and any write this node had\n" PROG
                     ": not applied. Do that only when the old cluster's majority is lost\n" PROG
                     ": for good and its nodes will never run again; then repeat with\n" PROG
                     ": -force-new-cluster. Otherwise restore a kv-backup file.\n",
                a->backup);
        sqlite3_close(src);
        return 2;
    }
    if (applied == 0) {
        fprintf(stderr,
                PROG ": %s has no applied entries: nothing to restore "
                     "(start a new node with keyval instead)\n",
                a->backup);
        sqlite3_close(src);
        return 1;
    }
    bi->db = src;
    bi->nkeys = nkeys;
    bi->applied = applied;
    return -1;
}

/* DATADIR: made, or an existing empty directory. Returns -1 to go on,
 * else the exit status. */
static int prepare_datadir(void)
{
    if (mkdir(g_dir, 0700) == 0) {
        g_made_dir = 1;
        return -1;
    }
    if (errno != EEXIST) {
        fprintf(stderr, PROG ": mkdir %s: %s\n", g_dir, strerror(errno));
        return 1;
    }
    int e = dir_empty(g_dir);
    if (e != 1) {
        fprintf(stderr,
                PROG ": REFUSED: %s %s; restore only into a new, empty "
                     "directory\n",
                g_dir, e < 0 ? "is not a readable directory" : "is not empty");
        return 2;
    }
    return -1;
}

/* A consistent copy of src into dbpath with SQLite's online backup (works
 * on a live db), keeping the table and the applied index and forgetting
 * the old log and state. Closes src. Returns -1 to go on, else the exit
 * status. */
static int copy_table(sqlite3 *src, const char *backup, const char *dbpath)
{
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
    char *err = NULL;
    if (sqlite3_exec(dst, "DELETE FROM log; DELETE FROM meta WHERE name <> 'applied';", NULL, NULL,
                     &err) != SQLITE_OK) {
        int r = fail("%s: %s", dbpath, err ? err : "error");
        sqlite3_free(err);
        sqlite3_close(dst);
        return r;
    }
    sqlite3_close(dst);
    return -1;
}

/* The copied table becomes a one-node cluster: a snapshot at the applied
 * index, a new incarnation of node ID and a new cluster id (written to
 * cluster, 33 bytes). Returns -1 to go on, else the exit status. */
static int make_cluster(const struct restore_args *a, const struct backup_info *bi,
                        const char *dbpath, const char *snap, char *cluster)
{
    store *s = store_open(dbpath);
    if (!s)
        return fail("%s%s", store_open_error(), "");
    raft_snap_meta m;
    memset(&m, 0, sizeof m);
    m.index = bi->applied;
    m.term = 1;
    m.conf.n = 1;
    /* A new incarnation of node ID: its Raft id (lib/nodeid.h), stored
     * for raftd to find. */
    char inc[NODEID_HEX_LEN + 1];
    if (nodeid_new_incarnation(inc, sizeof inc) < 0) {
        store_close(s);
        return fail("/dev/urandom: %s%s", strerror(errno ? errno : EIO), "");
    }
    m.conf.nodes[0].id = nodeid_derive(a->id, inc);
    m.conf.nodes[0].voter = 1;
    kv_meta_format(m.conf.nodes[0].meta, sizeof m.conf.nodes[0].meta, a->id, a->raddr, a->haddr);
    raft_hard_state hs = {.term = 1, .vote = 0};

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
    snprintf(from, sizeof from, "%s@%" PRIu64, bi->old_cluster[0] ? bi->old_cluster : "unknown",
             bi->applied);

    if (store_applied(s) != bi->applied || store_begin(s) < 0 ||
        store_snapshot_write(s, snap, &m) < 0 || store_save_hs(s, &hs) < 0 ||
        store_meta_set(s, "incarnation", inc) < 0 || store_meta_set(s, "name", a->id) < 0 ||
        store_meta_set(s, "cluster", cluster) < 0 || store_meta_set(s, "restored_from", from) < 0 ||
        store_commit(s) < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", store_error(s));
        store_close(s);
        return fail("%s: %s", dbpath, msg);
    }
    store_close(s);
    return -1;
}

int main(int argc, char **argv)
{
    struct restore_args a = {0};
    struct backup_info bi = {0};
    int r;
    if ((r = parse_args(argc, argv, &a)) >= 0)
        return r;
    if ((r = open_backup(&a, &bi)) >= 0)
        return r;
    if ((r = prepare_datadir()) >= 0) {
        sqlite3_close(bi.db);
        return r;
    }
    char dbpath[160], snap[160], side[200];
    snprintf(dbpath, sizeof dbpath, "%s/raft.db", g_dir);
    snprintf(snap, sizeof snap, "%s/snap-%" PRIu64 ".snap", g_dir, bi.applied);
    track(dbpath);
    snprintf(side, sizeof side, "%s-wal", dbpath);
    track(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    track(side);
    track(snap);
    char cluster[33];
    if ((r = copy_table(bi.db, a.backup, dbpath)) >= 0 ||
        (r = make_cluster(&a, &bi, dbpath, snap, cluster)) >= 0)
        return r;
    printf("%s: new cluster %s (node %s), %" PRId64 " keys at index %" PRIu64
           " from %s (cluster %s)\n",
           g_dir, cluster, a.id, bi.nkeys, bi.applied, a.backup,
           bi.old_cluster[0] ? bi.old_cluster : "unknown");
    printf("start it with: keyval -id %s -haddr %s -raddr %s %s\n", a.id, a.haddr, a.raddr, g_dir);
    return 0;
}
