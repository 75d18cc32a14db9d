/*
 * options.c - raftd's command line: flags into struct raftd, with their
 * defaults; usage() mirrors the SYNOPSIS and OPTIONS of man/raftd.8.
 */
#include "raftd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -h: the text on stdout, exit 0; a usage error: on stderr, exit 2. */
static void usage_to(FILE *out, int status)
{
    fprintf(out, "usage: raftd -id NAME -raddr HOST:PORT -haddr HOST:PORT [-bootstrap]\n"
                 "             [-peer-connect TEMPLATE] [-tick-ms MS] [-election-ticks N]\n"
                 "             [-snapshot-entries N] [-snapshot-bytes BYTES]\n"
                 "             [-snapshot-trail N] [-watch-history N] [-max-watchers N]\n"
                 "             [-http-fd FD -http-back PATH [-http-conns N]] [-v] DATADIR\n\n"
                 "  -id NAME               node name, 1-63 of [A-Za-z0-9._-]\n"
                 "  -raddr HOST:PORT       address peers reach this node at (its socat listener)\n"
                 "  -haddr HOST:PORT       the node's HTTP address, told to clients\n"
                 "  -radv HOST:PORT        Raft address advertised to peers (default -raddr)\n"
                 "  -hadv HOST:PORT        HTTP address advertised (default -haddr); neither\n"
                 "                         may be unspecified (0.0.0.0, ::)\n"
                 "  -bootstrap             on an empty DATADIR, start a new one-node cluster\n"
                 "  -peer-connect TEMPLATE command that connects to a peer, %%a its HOST:PORT\n"
                 "                         (default: socat STDIO TCP:%%a," PEER_TCP_OPTS ")\n"
                 "  -tick-ms MS            length of one Raft tick (default 50)\n"
                 "  -election-ticks N      election timeout in ticks (default 10)\n"
                 "  -snapshot-entries N    applied entries between compactions (default 10000)\n"
                 "  -snapshot-bytes BYTES  log bytes held in memory (default 16777216)\n"
                 "  -snapshot-trail N      entries kept behind a snapshot (default 1000)\n"
                 "  -watch-history N       changes kept for watches, at least (default 10000)\n"
                 "  -max-watchers N        watch streams + blocking queries held (default 256)\n"
                 "  -http-fd FD            answer the key routes on this listening TCP socket\n"
                 "                         (the HTTP port, keyval -fast) and hand the other\n"
                 "                         requests to the HTTP server (lighttpd) on\n"
                 "  -http-back PATH        this UNIX socket; the two go together\n"
                 "  -http-conns N          connections held on -http-fd (default 1024)\n"
                 "  -v                     log every request and more peer events\n"
                 "The log is compacted (the database is the snapshot; no file is written)\n"
                 "every -snapshot-entries applied entries (0: not by count), and when the\n"
                 "log held in memory has grown by 3/4 of -snapshot-bytes since the last one\n"
                 "(0: no byte limit); at most -snapshot-trail entries and 1/4 of\n"
                 "-snapshot-bytes stay behind a snapshot. A snapshot file is written only\n"
                 "when a follower needs one.\n");
    exit(status);
}

static void usage(void)
{
    usage_to(stderr, 2);
}

static unsigned long long parse_num(const char *opt, const char *s, unsigned long long lo,
                                    unsigned long long hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || !*s || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: expected a number in %llu..%llu, got '%s'\n", prog, opt, lo, hi,
                s);
        exit(2);
    }
    return v;
}

/* The defaults of every option and of the state that is not zero. */
void options_defaults(struct raftd *d)
{
    d->connect = "socat STDIO TCP:%a," PEER_TCP_OPTS;
    d->tick_ms = 50;
    d->election_ticks = 10;
    d->snap_entries = 10000;
    d->snap_bytes = 16u << 20;
    d->snap_trail = 1000;
    d->max_entry = 8u << 20;
    d->max_clients = MAX_CLIENTS;
    d->history_keep = 10000;
    d->max_watchers = 256;
    d->client_lfd = d->peer_lfd = d->pid_fd = d->fcgi_lfd = d->http_lfd = -1;
    d->http_conns_max = 1024;
    d->next_id = 1;
    d->last_role = -1;
    d->last_leader = (uint64_t)-1;
    d->loop.epfd = -1;
    for (int i = 0; i < MAX_PEERS; i++)
        d->peers[i].wfd = d->peers[i].err_fd = -1;
}

/* Parse the command line into d; a bad one ends raftd with status 2. */
void options_parse(struct raftd *d, int argc, char **argv)
{
    const char *dir = NULL;
    char radv[KV_ADDR_MAX + 1] = "", hadv[KV_ADDR_MAX + 1] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDARG() \
    do { \
        if (!next) { \
            fprintf(stderr, "%s: %s needs an argument\n", prog, a); \
            usage(); \
        } \
        i++; \
    } while (0)
        if (!strcmp(a, "-id")) {
            NEEDARG();
            if (!kv_name_ok(next)) {
                fprintf(stderr, "%s: -id: '%s' must be 1-63 of [A-Za-z0-9._-]\n", prog, next);
                exit(2);
            }
            snprintf(d->name, sizeof d->name, "%s", next);
        } else if (!strcmp(a, "-raddr") || !strcmp(a, "-haddr") || !strcmp(a, "-radv") ||
                   !strcmp(a, "-hadv")) {
            NEEDARG();
            if (!kv_addr_ok(next)) {
                fprintf(stderr, "%s: %s: '%s' is not HOST:PORT\n", prog, a, next);
                exit(2);
            }
            char *dst = a[2] == 'a' && a[3] == 'd' && a[4] == 'v'
                            ? (a[1] == 'r' ? radv : hadv)
                            : (a[1] == 'r' ? d->raddr : d->haddr);
            snprintf(dst, sizeof d->raddr, "%s", next);
        } else if (!strcmp(a, "-bootstrap")) {
            d->bootstrap = 1;
        } else if (!strcmp(a, "-peer-connect")) {
            NEEDARG();
            if (!strstr(next, "%a") || strlen(next) > 4000) {
                fprintf(stderr, "%s: -peer-connect: template must contain %%a\n", prog);
                exit(2);
            }
            d->connect = next;
        } else if (!strcmp(a, "-tick-ms")) {
            NEEDARG();
            d->tick_ms = (unsigned)parse_num(a, next, 1, 10000);
        } else if (!strcmp(a, "-election-ticks")) {
            NEEDARG();
            d->election_ticks = (unsigned)parse_num(a, next, 2, 1000);
        } else if (!strcmp(a, "-snapshot-entries")) {
            NEEDARG();
            d->snap_entries = parse_num(a, next, 0, 1000000000ULL);
        } else if (!strcmp(a, "-snapshot-bytes")) {
            NEEDARG();
            d->snap_bytes = parse_num(a, next, 0, 1ULL << 40);
        } else if (!strcmp(a, "-snapshot-trail")) {
            NEEDARG();
            d->snap_trail = parse_num(a, next, 0, 1000000000ULL);
        } else if (!strcmp(a, "-watch-history")) {
            NEEDARG();
            d->history_keep = parse_num(a, next, 1, 1000000000ULL);
        } else if (!strcmp(a, "-max-watchers")) {
            NEEDARG();
            d->max_watchers = (unsigned)parse_num(a, next, 0, 100000);
        } else if (!strcmp(a, "-http-fd")) {
            NEEDARG();
            d->http_lfd = (int)parse_num(a, next, 3, 1000000);
        } else if (!strcmp(a, "-http-back")) {
            NEEDARG();
            if (next[0] != '/' || strlen(next) >= sizeof d->http_back) {
                fprintf(stderr,
                        "%s: -http-back: '%s' is not an absolute socket path of at most "
                        "107 bytes\n",
                        prog, next);
                exit(2);
            }
            snprintf(d->http_back, sizeof d->http_back, "%s", next);
        } else if (!strcmp(a, "-http-conns")) {
            NEEDARG();
            d->http_conns_max = (unsigned)parse_num(a, next, 1, 1000000);
        } else if (!strcmp(a, "-v")) {
            d->verbose = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_to(stdout, 0);
        } else if (a[0] == '-') {
            fprintf(stderr, "%s: unknown option %s\n", prog, a);
            usage();
        } else if (!dir) {
            dir = a;
        } else {
            fprintf(stderr, "%s: more than one DATADIR given\n", prog);
            usage();
        }
    }
    if (!dir || !d->name[0] || !d->raddr[0] || !d->haddr[0]) {
        fprintf(stderr, "%s: -id, -raddr, -haddr and DATADIR are required\n", prog);
        usage();
    }
    if ((d->http_lfd >= 0) != (d->http_back[0] != 0)) {
        fprintf(stderr, "%s: -http-fd and -http-back go together\n", prog);
        usage();
    }
    if (strlen(dir) > 80) {
        fprintf(stderr, "%s: %s: DATADIR path too long for UNIX sockets (max 80 bytes)\n", prog,
                dir);
        exit(2);
    }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    /* What peers and clients are told: the advertised addresses. */
    if (radv[0])
        snprintf(d->raddr, sizeof d->raddr, "%s", radv);
    if (hadv[0])
        snprintf(d->haddr, sizeof d->haddr, "%s", hadv);
    if (kv_addr_unspecified(d->raddr) || kv_addr_unspecified(d->haddr)) {
        int r = kv_addr_unspecified(d->raddr);
        fprintf(stderr,
                "%s: cannot advertise %s %s: no peer or client can reach an unspecified "
                "address; pass -%sadv HOST:PORT, an address of this host that others reach\n",
                prog, r ? "Raft address" : "HTTP address", r ? d->raddr : d->haddr, r ? "r" : "h");
        exit(2);
    }
    kv_meta_format(d->meta, sizeof d->meta, d->name, d->raddr, d->haddr);
}
