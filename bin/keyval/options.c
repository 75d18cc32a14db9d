/*
 * options.c - keyval's command line: the flags (usage() says what
 * man/keyval.1 says), the HOST:PORT addresses, the node ID and DATADIR
 * checks. Touches no file and starts nothing.
 */
#include "keyval.h"
#include "kvrules.h"

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void usage(FILE *f)
{
    fprintf(f,
            "usage: keyval [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT] [-join ADDR] DATADIR\n"
            "       keyval [-hadv HOST:PORT] [-radv HOST:PORT] [options as above] DATADIR\n"
            "       keyval -fastcgi|-fast [options as above] DATADIR\n"
            "       keyval -restore FILE [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT] DATADIR\n"
            "\n"
            "Starts one keyval node: raftd (Raft state, log and data in DATADIR/raft.db),\n"
            "a socat listener for peer traffic on the Raft address and lighttpd serving\n"
            "the HTTP API on the HTTP address. Stops them all on SIGINT or SIGTERM.\n"
            "\n"
            "  -id ID             node ID, 1-63 of [A-Za-z0-9._-] (default: the Raft\n"
            "                     address with ':' replaced by '-', localhost-12000)\n"
            "  -haddr HOST:PORT   HTTP API address (default localhost:11000)\n"
            "  -raddr HOST:PORT   Raft peer address (default localhost:12000)\n"
            "  -hadv HOST:PORT    HTTP address told to clients and peers (default -haddr);\n"
            "                     needed when -haddr is 0.0.0.0 or ::, which listen on\n"
            "                     every address but cannot be advertised\n"
            "  -radv HOST:PORT    Raft address told to peers (default -raddr); likewise\n"
            "  -join ADDR         HTTP address of a cluster member to join, e.g. :11000\n"
            "                     (used the first time only; a restarted node rejoins\n"
            "                     from its saved state)\n"
            "  -fastcgi           run the HTTP programs as resident FastCGI applications\n"
            "                     (lighttpd mod_fastcgi) instead of one CGI process per\n"
            "                     request (mod_cgi, the default)\n"
            "  -fast              raftd itself answers the key routes on the HTTP\n"
            "                     address and hands the other requests to lighttpd\n"
            "                     (in -fastcgi mode) behind it; plain HTTP only: with\n"
            "                     -https-cert or -auth-file it runs as -fastcgi\n"
            "  -ui on|off         the web console at /ui/ (default on; off: 404)\n"
            "Security (see keyval(1) and kv-certs(1)):\n"
            "  -peer-tls DIR      mutual TLS on every peer link (socat OPENSSL): DIR\n"
            "                     holds ca.crt (the cluster CA), node.crt and node.key;\n"
            "                     peers without a certificate from that CA are refused\n"
            "  -https-cert FILE   serve HTTPS (lighttpd mod_openssl) with this PEM\n"
            "                     certificate (and key, unless -https-key is given)\n"
            "  -https-key FILE    its private key\n"
            "  -https-ca FILE     CA that -join trusts for the member's HTTPS\n"
            "                     (default: DIR/ca.crt of -peer-tls, else the system's)\n"
            "  -auth-file FILE    HTTP basic authentication; lines USER:HASH:ro or\n"
            "                     USER:HASH:rw (HASH from openssl passwd -6); ro users\n"
            "                     may GET/HEAD, rw users may also write and join;\n"
            "                     no or bad credentials get 401, a user without the\n"
            "                     right 403; GET /health needs none (for load balancers)\n"
            "  -auth-health       with -auth-file: GET /health needs credentials too\n"
            "  -join-auth FILE    USER:PASSWORD (one line) that -join sends\n"
            "  -restore FILE      start a NEW one-node cluster in an empty DATADIR from\n"
            "                     FILE, a kv-backup file (runs kv-restore; see there for\n"
            "                     a node's own raft.db after losing a majority)\n"
            "  DATADIR            created if missing (mode 0700)\n"
            "\n"
            "A fresh DATADIR without -join starts a new one-node cluster.\n"
            "Environment: KEYVAL_RAFTD, KEYVAL_LIGHTTPD, KEYVAL_SOCAT, KEYVAL_CURL\n"
            "override the programs run.\n"
            "Exit status: 0 after a requested stop, 1 when a child failed or a step\n"
            "failed, 2 on a usage error.\n");
}

/* ---- addresses ---- */

/* Parses HOST:PORT (HOST may be empty, meaning localhost; [v6] allowed).
 * Returns 0 or -1 with a message in err. */
static int parse_addr(const char *s, addr *a, char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':');
    if (!colon) {
        snprintf(err, errlen, "bad address %s: expected HOST:PORT", s);
        return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || errno || p < 1 || p > 65535) {
        snprintf(err, errlen, "bad address %s: port must be 1..65535", s);
        return -1;
    }
    size_t hl = (size_t)(colon - s);
    char host[256];
    if (hl >= sizeof host) {
        snprintf(err, errlen, "bad address %s: host too long", s);
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    for (char *c = host; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == '\\' || *c == '\'' || *c == ',' || *c == '/' ||
            (unsigned char)*c >= 0x7f) {
            snprintf(err, errlen, "bad address %s: bad character in host", s);
            return -1;
        }
    if (host[0] == '\0' || strcmp(host, "localhost") == 0) {
        snprintf(a->text, sizeof a->text, "localhost:%ld", p);
        snprintf(a->host, sizeof a->host, "127.0.0.1");
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            snprintf(err, errlen, "bad address %s: cannot resolve %s: %s", s, host,
                     gai_strerror(rc));
            return -1;
        }
        if (getnameinfo(res->ai_addr, res->ai_addrlen, a->host, sizeof a->host, NULL, 0,
                        NI_NUMERICHOST) != 0) {
            freeaddrinfo(res);
            snprintf(err, errlen, "bad address %s: cannot resolve %s", s, host);
            return -1;
        }
        freeaddrinfo(res);
        snprintf(a->text, sizeof a->text, "%.*s:%ld", (int)hl, s, p);
    }
    a->port = (int)p;
    return 0;
}

/* ---- flags ---- */

/* Flags that take a value, -NAME VALUE or -NAME=VALUE (also --NAME). */
static const struct {
    const char *name;
    size_t off;
} value_flags[] = {
    {"id", offsetof(options, id)},
    {"haddr", offsetof(options, haddr_s)},
    {"raddr", offsetof(options, raddr_s)},
    {"hadv", offsetof(options, hadv_s)},
    {"radv", offsetof(options, radv_s)},
    {"join", offsetof(options, join_s)},
    {"restore", offsetof(options, restore_s)},
    {"peer-tls", offsetof(options, peer_tls_s)},
    {"https-cert", offsetof(options, https_cert_s)},
    {"https-key", offsetof(options, https_key_s)},
    {"https-ca", offsetof(options, https_ca_s)},
    {"auth-file", offsetof(options, auth_file_s)},
    {"join-auth", offsetof(options, join_auth_s)},
    {"ui", offsetof(options, ui_s)},
};

static const char **value_flag(options *o, const char *name, size_t nl)
{
    for (size_t i = 0; i < sizeof value_flags / sizeof value_flags[0]; i++)
        if (strlen(value_flags[i].name) == nl && strncmp(name, value_flags[i].name, nl) == 0)
            return (const char **)((char *)o + value_flags[i].off);
    return NULL;
}

/* Flags without a value. */
static int *bool_flag(options *o, const char *name, size_t nl)
{
    if (nl == 7 && strncmp(name, "fastcgi", 7) == 0)
        return &o->fastcgi;
    if (nl == 4 && strncmp(name, "fast", 4) == 0)
        return &o->fast;
    if (nl == 11 && strncmp(name, "auth-health", 11) == 0)
        return &o->auth_health;
    return NULL;
}

/* The flags and DATADIR into o: -1 to go on, else the exit status. */
static int parse_flags(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] != '\0') {
            const char *name = a + 1 + (a[1] == '-');
            const char *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            int *on = eq ? NULL : bool_flag(o, name, nl);
            if (on) {
                *on = 1;
                continue;
            }
            const char **dst = value_flag(o, name, nl);
            if (!dst) {
                fprintf(stderr, PROG ": unknown option %s\n", a);
                usage(stderr);
                return 2;
            }
            if (eq) {
                *dst = eq + 1;
            } else {
                if (i + 1 >= argc) {
                    fprintf(stderr, PROG ": option %s needs a value\n", a);
                    usage(stderr);
                    return 2;
                }
                *dst = argv[++i];
            }
            continue;
        }
        if (o->datadir_s) {
            fprintf(stderr, PROG ": more than one DATADIR given (%s, %s)\n", o->datadir_s, a);
            usage(stderr);
            return 2;
        }
        o->datadir_s = a;
    }
    if (!o->datadir_s || !*o->datadir_s) {
        fprintf(stderr, PROG ": no DATADIR given\n");
        usage(stderr);
        return 2;
    }
    return -1;
}

int options_parse(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->haddr_s = "localhost:11000";
    o->raddr_s = "localhost:12000";
    int rc = parse_flags(argc, argv, o);
    if (rc >= 0)
        return rc;
    if (o->restore_s && o->join_s) {
        fprintf(stderr, PROG ": -restore starts a new cluster; it cannot be "
                             "combined with -join\n");
        return 2;
    }
    if (o->ui_s && strcmp(o->ui_s, "on") != 0 && strcmp(o->ui_s, "off") != 0) {
        fprintf(stderr, PROG ": bad -ui %s: expected on or off\n", o->ui_s);
        return 2;
    }
    o->ui_off = o->ui_s && strcmp(o->ui_s, "off") == 0;
    if (o->fast && (o->https_cert_s || o->auth_file_s)) {
        /* raftd speaks plain HTTP only: lighttpd keeps TLS and passwords. */
        printf(PROG ": -fast: with -https-cert or -auth-file lighttpd keeps the HTTP port "
                    "(raftd does not speak TLS or check passwords); running as -fastcgi\n");
        o->fast = 0;
        o->fastcgi = 1;
    }
    if (o->fast)
        o->fastcgi = 1;
    o->http_fd = -1;
    if (o->auth_health && !o->auth_file_s) {
        fprintf(stderr, PROG ": -auth-health needs -auth-file\n");
        return 2;
    }
    char err[512];
    if (parse_addr(o->haddr_s, &o->haddr, err, sizeof err) < 0 ||
        parse_addr(o->raddr_s, &o->raddr, err, sizeof err) < 0 ||
        (o->join_s && parse_addr(o->join_s, &o->join, err, sizeof err) < 0) ||
        parse_addr(o->hadv_s ? o->hadv_s : o->haddr_s, &o->hadv, err, sizeof err) < 0 ||
        parse_addr(o->radv_s ? o->radv_s : o->raddr_s, &o->radv, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }
    for (int r = 0; r < 2; r++) {
        const addr *adv = r ? &o->radv : &o->hadv;
        if (!kv_addr_unspecified(adv->text))
            continue;
        fprintf(stderr,
                PROG ": cannot advertise %s %s: clients and peers cannot reach an "
                     "unspecified address; pass -%sadv HOST:PORT with an address of this host "
                     "that they reach (-%saddr %s still listens on every address)\n",
                r ? "Raft address" : "HTTP address", adv->text, r ? "r" : "h", r ? "r" : "h",
                r ? o->raddr.text : o->haddr.text);
        return 2;
    }
    /* raftd takes node IDs of 1-63 of [A-Za-z0-9._-]. The seed's default ID
     * is the Raft address; ours is that address with every other character
     * replaced by '-' ("localhost:12000" -> "localhost-12000"). */
    if (!o->id) {
        size_t k = 0;
        for (const char *c = o->radv.text; *c && k < sizeof o->default_id - 1; c++)
            o->default_id[k++] = kv_name_char(*c) ? *c : '-';
        o->default_id[k] = '\0';
        o->id = o->default_id;
    }
    if (!kv_name_ok(o->id)) {
        fprintf(stderr,
                PROG ": bad -id %s: must be 1-63 characters of "
                     "[A-Za-z0-9._-]\n",
                o->id);
        return 2;
    }
    if (!config_safe(o->datadir_s) || strpbrk(o->datadir_s, ",:!'")) {
        fprintf(stderr,
                PROG ": bad DATADIR %s: it may not contain quotes, "
                     "backslashes, control characters or any of ,:!'\n",
                o->datadir_s);
        return 2;
    }
    return -1;
}
