/*
 * snapshot.c - snapshots: when to take one, writing it a slice per loop
 * turn, receiving one from the leader, reading chunks to send, and
 * removing old snapshot files.
 */
#include "raftd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void snap_path(struct raftd *d, char *buf, size_t cap, uint64_t index)
{
    char name[64];
    snprintf(name, sizeof name, "snap-%llu.snap", (unsigned long long)index);
    path_in_dir(d, buf, cap, name);
}

void fsync_dir(struct raftd *d)
{
    int fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Received snapshot bytes go to DATADIR/snap-incoming, durable before
 * the core hears they are written. */
void write_chunk(struct raftd *d, const raft_chunk *ch)
{
    char path[PATH_MAX];
    path_in_dir(d, path, sizeof path, "snap-incoming");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (ch->offset == 0 ? O_TRUNC : 0), 0600);
    if (fd < 0)
        fatal(d, "%s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < ch->len) {
        ssize_t n = pwrite(fd, ch->data + done, ch->len - done, (off_t)(ch->offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fatal(d, "%s: write: %s", path, n < 0 ? strerror(errno) : "short write");
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        fatal(d, "%s: fsync: %s", path, strerror(errno));
    close(fd);
}

void remove_old_snaps(struct raftd *d, uint64_t keep)
{
    DIR *dir = opendir(d->dir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        unsigned long long idx;
        char tail[8];
        int is_snap = sscanf(de->d_name, "snap-%llu.sna%1s", &idx, tail) == 2 &&
                      strcmp(tail, "p") == 0;
        size_t l = strlen(de->d_name);
        int is_tmp = l > 4 && !strcmp(de->d_name + l - 4, ".tmp") &&
                     !strncmp(de->d_name, "snap-", 5);
        if ((is_snap && idx != keep) || is_tmp) {
            char path[PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", d->dir, de->d_name) < sizeof path)
                unlink(path);
        }
    }
    closedir(dir);
}

/* Give up the snapshot being written (an older state than what comes in). */
void snapshot_abort(struct raftd *d)
{
    if (d->snapw) {
        store_snapshot_abort(d->snapw);
        d->snapw = NULL;
        logf_(d, "snapshot at index %llu abandoned", (unsigned long long)d->snapw_index);
    }
}

/* Applied entries between compactions under the entry rule (0 when the
 * rule is off). Shown in status as snapshot_every (kv-health reads it).
 * A compaction no longer copies the table, so the interval no longer
 * grows with it. */
uint64_t snapshot_every(struct raftd *d)
{
    return d->snap_entries;
}

/* While a follower is being sent the snapshot file, compacting again
 * would make the file stale and restart the transfer: wait this long
 * after the last chunk sent. */
#define SNAP_SERVE_HOLD_MS 5000

/* When to compact: after -snapshot-entries applied entries, or when 3/4
 * of -snapshot-bytes of entry data has been appended since the last one
 * (and the core keeps at most 1/4 of it as trail behind a snapshot). See
 * docs/design.md, "Snapshot policy". */
static int snapshot_due(struct raftd *d, uint64_t applied)
{
    if (applied <= d->snap_index)
        return 0;
    if (d->snapw || (d->snap_served_ms && now_ms() - d->snap_served_ms < SNAP_SERVE_HOLD_MS))
        return 0;
    if (d->snap_bytes) {
        raft_status_info st;
        raft_status(d->r, &st);
        if (st.appended_bytes - d->snap_appended_base >=
            d->snap_bytes - SNAP_TRAIL_SHARE(d->snap_bytes))
            return 1;
    }
    uint64_t every = snapshot_every(d);
    return every && applied - d->snap_index >= every;
}

/* Compact at the applied index: the database already holds that state, so
 * the snapshot is its metadata (index, term, conf) recorded in the
 * database and the log before it dropped. No file is written. 0 done, -1
 * not possible now. */
static int compact_now(struct raftd *d, uint64_t applied)
{
    uint64_t term = raft_entry_term(d->r, applied);
    if (term == 0)
        return -1;
    raft_snap_meta m;
    memset(&m, 0, sizeof m);
    m.index = applied;
    m.term = term;
    m.conf = d->applied_conf;
    if (store_snapshot_mark(d->st, &m) < 0)
        store_fatal(d, "record snapshot");
    d->snap_index = applied;
    d->snap_term = term;
    remove_old_snaps(d, 0); /* a file of an older state is of no use now */
    int rc = raft_snapshot_taken(d->r, d->snap_index);
    if (rc != RAFT_OK)
        logf_(d, "raft_snapshot_taken: %s", raft_strerror(rc));
    raft_status_info st;
    raft_status(d->r, &st);
    d->snap_appended_base = st.appended_bytes;
#ifdef __GLIBC__
    malloc_trim(0); /* give the compacted entries' pages back to the system */
#endif
    d->m_snaps_taken++;
    logf_(d, "log compacted at index %llu", (unsigned long long)d->snap_index);
    return 0;
}

/* A follower needs a snapshot: compact at the applied index (if the last
 * compaction is older) and start writing the file of that state from a
 * read transaction on a second connection, a slice per loop turn. */
static void snapshot_file_begin(struct raftd *d)
{
    uint64_t applied = store_applied(d->st);
    if (applied == 0)
        return;
    if (applied != d->snap_index && compact_now(d, applied) < 0)
        return;
    raft_snap_meta m;
    memset(&m, 0, sizeof m);
    m.index = d->snap_index;
    m.term = d->snap_term;
    m.conf = d->applied_conf;
    char path[PATH_MAX];
    snap_path(d, path, sizeof path, d->snap_index);
    d->snapw = store_snapshot_begin(d->st, path, &m);
    if (!d->snapw)
        store_fatal(d, "begin snapshot");
    d->snapw_index = d->snap_index;
    d->snapw_term = d->snap_term;
    logf_(d, "writing snapshot file at index %llu for a follower",
          (unsigned long long)d->snap_index);
}

void maybe_snapshot(struct raftd *d)
{
    if (!d->snapw) {
        uint64_t applied = store_applied(d->st);
        if (snapshot_due(d, applied)) {
            if (applied > d->snap_index)
                compact_now(d, applied);
        }
        if (!d->snap_wanted)
            return;
        d->snap_wanted = 0;
        snapshot_file_begin(d);
        if (!d->snapw)
            return;
    }
    int rc = store_snapshot_step(d->snapw, SNAP_STEP_BYTES);
    if (rc < 0)
        store_fatal(d, "write snapshot");
    if (rc == 0)
        return;
    store_snap_writer *w = d->snapw;
    d->snapw = NULL;
    if (store_snapshot_finish(w) < 0)
        store_fatal(d, "record snapshot");
    d->snap_served_ms = now_ms(); /* hold compaction until it is sent */
    d->m_snap_files++;
    logf_(d, "snapshot file written at index %llu", (unsigned long long)d->snapw_index);
}

/* Fill m (a snapshot chunk the core asked for without data) from the
 * snapshot file of the current snapshot index, into d->chunk_buf; when
 * there is none, ask for one to be written (maybe_snapshot). 0 ok, -1 not
 * available now (the core resends). */
int snapshot_chunk_read(struct raftd *d, raft_msg *m)
{
    if (m->snap_index != d->snap_index || d->snap_index == 0)
        return -1;
    char path[PATH_MAX];
    snap_path(d, path, sizeof path, d->snap_index);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            logf_(d, "snapshot %s: %s", path, strerror(errno));
        if (!d->snapw)
            d->snap_wanted = 1;
        return -1;
    }
    struct stat sb;
    ssize_t n = -1;
    if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size >= m->offset)
        n = pread(fd, d->chunk_buf, sizeof d->chunk_buf, (off_t)m->offset);
    close(fd);
    if (n < 0)
        return -1;
    d->snap_served_ms = now_ms();
    m->data = d->chunk_buf;
    m->len = (uint32_t)n;
    m->last = m->offset + (uint64_t)n >= (uint64_t)sb.st_size;
    return 0;
}
