/*
 * util.c - what every raftd module uses: log lines and fatal errors, the
 * clock, paths in DATADIR, JSON reply text, member names, and the
 * credentials check of the two UNIX sockets.
 */
#include "raftd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct dumpbuf {
    char *p, *heap;
    size_t len, cap;
} dumpbuf;

const char *const prog = "raftd";

void logf_(struct raftd *d, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", prog, d->name[0] ? d->name : "-", buf);
}

void fatal(struct raftd *d, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, buf);
    cleanup(d);
    exit(1);
}

void store_fatal(struct raftd *d, const char *what)
{
    fatal(d, "%s: %s", what, store_error(d->st));
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int dump_cb(const char *b, size_t n, void *data)
{
    dumpbuf *db = data;
    if (db->len + n > db->cap) {
        size_t nc = db->cap * 2;
        while (nc < db->len + n)
            nc *= 2;
        char *np = db->heap ? realloc(db->heap, nc) : malloc(nc);
        if (!np)
            return -1;
        if (!db->heap)
            memcpy(np, db->p, db->len);
        db->heap = db->p = np;
        db->cap = nc;
    }
    memcpy(db->p + db->len, b, n);
    db->len += n;
    return 0;
}

/* JSON text of v, NUL-terminated, encoded once: in buf while it fits
 * (*heap = NULL), else in malloc'd memory (*heap, to free). NULL when it
 * cannot be encoded. */
const char *dump_json(json_t *v, char *buf, size_t cap, size_t *len, char **heap)
{
    dumpbuf db = {buf, NULL, 0, cap};
    *heap = NULL;
    if (json_dump_callback(v, dump_cb, &db, JSON_COMPACT) != 0 || dump_cb("", 1, &db) != 0) {
        free(db.heap);
        return NULL;
    }
    *heap = db.heap;
    *len = db.len - 1;
    return db.p;
}

json_t *err_reply(int code, const char *msg)
{
    return json_pack("{s:i,s:s}", "code", code, "error", msg);
}

void path_in_dir(struct raftd *d, char *buf, size_t cap, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", d->dir, name) >= cap)
        fatal(d, "%s/%s: path too long", d->dir, name);
}

void node_name(struct raftd *d, uint64_t id, char *buf, size_t cap)
{
    const raft_config *c = raft_config_get(d->r);
    const raft_node *n = c ? raft_config_find(c, id) : NULL;
    char r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
    if (n) {
        kv_meta_split(n->meta, buf, cap, r, sizeof r, h, sizeof h);
        return;
    }
    for (int i = 0; i < MAX_KNOWN; i++)
        if (d->known[i].id == id) {
            kv_meta_split(d->known[i].meta, buf, cap, r, sizeof r, h, sizeof h);
            return;
        }
    if (id == d->id)
        snprintf(buf, cap, "%s", d->name);
    else
        snprintf(buf, cap, "%016llx", (unsigned long long)id);
}

/* The member of c called name (its meta's first word), or NULL. */
const raft_node *member_by_name(const raft_config *c, const char *name)
{
    for (uint32_t i = 0; c && i < c->n; i++) {
        char n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
        kv_meta_split(c->nodes[i].meta, n, sizeof n, r, sizeof r, h, sizeof h);
        if (!strcmp(n, name))
            return &c->nodes[i];
    }
    return NULL;
}

/* Local access control on top of the socket's file mode: a connecting
 * process must run as our uid, as root, or with the socket file's group
 * (primary or supplementary). Returns 1 allowed, 0 refused; sets uid, gid. */
int socket_peer_allowed(int fd, const char *sockpath, uid_t *uid, gid_t *gid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return 0;
    *uid = cr.uid;
    *gid = cr.gid;
    if (cr.uid == 0 || cr.uid == geteuid())
        return 1;
    struct stat sb;
    gid_t sockgid = stat(sockpath, &sb) == 0 ? sb.st_gid : getegid();
    if (cr.gid == sockgid)
        return 1;
#ifdef SO_PEERGROUPS
    gid_t groups[256];
    socklen_t gl = sizeof groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
        for (size_t i = 0; i < gl / sizeof groups[0]; i++)
            if (groups[i] == sockgid)
                return 1;
#endif
    return 0;
}

/* Log refusals: the first at once, then at most one line per 10 s. */
void log_refusal(struct raftd *d, const char *sockname, uid_t uid, gid_t gid)
{
    log_limit *ll = &d->lim_refusal; /* one for both sockets */
    ll->n++;
    uint64_t now = now_ms();
    if (ll->last && now - ll->last < 10000)
        return;
    logf_(d,
          "%s: refused %u client%s (last: uid %u gid %u; not our uid, root or the "
          "socket's group)",
          sockname, ll->n, ll->n == 1 ? "" : "s", (unsigned)uid, (unsigned)gid);
    ll->n = 0;
    ll->last = now;
}

int outbuf_room(outbuf *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->off && b->len + n > b->cap) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + n)
        nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p)
        return -1;
    b->p = p;
    b->cap = nc;
    return 0;
}

ssize_t outbuf_flush(outbuf *b, int fd, size_t keep_max)
{
    size_t done = 0;
    while (b->off < b->len) {
        ssize_t w = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (w > 0) {
            b->off += (size_t)w;
            done += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        } else {
            return -1;
        }
    }
    if (b->off == b->len && b->cap > keep_max) {
        free(b->p);
        b->p = NULL;
        b->cap = b->len = b->off = 0;
    }
    return (ssize_t)done;
}
