/*
 * config.c - lighttpd's configuration in DATADIR: the www and tmp
 * directories, the JSON error pages, and lighttpd.conf rendered from
 * etc/lighttpd.conf.in. (lighttpd-security.conf is security.c's.)
 */
#include "keyval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Characters that may go into a double-quoted lighttpd config string. */
int config_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            return 0;
    return 1;
}

/* Replaces @NAME@ placeholders; returns malloc'ed text. */
static char *render(const char *tmpl, const char *const *names, const char *const *values, int n)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    for (int i = 0; i < n; i++)
        cap += 64 * (strlen(values[i]) + 1);
    /* Simple two-pass-free approach: grow as needed. */
    char *out = malloc(cap);
    if (!out)
        return NULL;
    const char *p = tmpl;
    while (*p) {
        int hit = -1;
        if (*p == '@') {
            for (int i = 0; i < n; i++) {
                size_t nl = strlen(names[i]);
                if (strncmp(p + 1, names[i], nl) == 0 && p[1 + nl] == '@') {
                    hit = i;
                    break;
                }
            }
        }
        const char *piece = hit >= 0 ? values[hit] : p;
        size_t plen = hit >= 0 ? strlen(values[hit]) : 1;
        if (len + plen + 1 > cap) {
            size_t ncap = (len + plen + 1) * 2;
            char *no = realloc(out, ncap);
            if (!no) {
                free(out);
                return NULL;
            }
            out = no;
            cap = ncap;
        }
        memcpy(out + len, piece, plen);
        len += plen;
        p += hit >= 0 ? strlen(names[hit]) + 2 : 1;
    }
    out[len] = '\0';
    return out;
}

/* DATADIR/www: the body lighttpd sends with each error status. */
static int write_error_pages(const paths *p)
{
    if (mkdirs(p->www, 0700) < 0 || mkdirs(p->tmpdir, 0700) < 0) {
        die_msg("create %s/www and %s/tmp: %s", p->datadir, p->datadir, strerror(errno));
        return -1;
    }
    static const struct {
        int code;
        const char *msg;
    } errpages[] = {
        {400, "bad request"},
        {401, "authentication required"},
        {403, "forbidden"},
        {404, "not found"},
        {405, "method not allowed"},
        {408, "request timeout"},
        {411, "length required"},
        {413, "request body too large (max 4 MiB)"},
        {414, "request URI too long"},
        {417, "expectation failed"},
        {431, "request header fields too large"},
        {500, "internal server error"},
        {501, "not implemented"},
        {502, "bad gateway"},
        {503, "service unavailable"},
        {504, "gateway timeout"},
    };
    for (size_t i = 0; i < sizeof errpages / sizeof errpages[0]; i++) {
        char f[PATH_MAX + 64], text[128];
        snprintf(f, sizeof f, "%s/error-%d.html", p->www, errpages[i].code);
        /* No newline after the JSON: the docs promise bodies without one,
         * like the CGI programs' replies. */
        /* 500, 502-504 from lighttpd itself: the backend (raftd's
         * fcgi.sock with -fastcgi, or a program) died or did not answer
         * (a FastCGI backend that dies mid-request is lighttpd's 500); a
         * write may have been applied: say so, as raftd's own 503s do. */
        int gw = errpages[i].code == 500 || (errpages[i].code >= 502 && errpages[i].code <= 504);
        snprintf(text, sizeof text, "{\"error\":\"%s\"%s}", errpages[i].msg,
                 gw ? ",\"outcome\":\"unknown\"" : "");
        if (write_file(f, text, 0644) < 0) {
            die_msg("write %s: %s", f, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* lighttpd's descriptor budget and connection limit. Slow clients (a
 * header line every few seconds) hold a connection each, and lighttpd
 * 1.4.69 has neither a per-IP limit (mod_evasive is not in Debian's
 * package) nor a deadline for a whole request header; what keeps a slow
 * flood from locking everyone else out is room: up to 16384 descriptors
 * (as many as the hard RLIMIT_NOFILE allows; lighttpd raises its soft
 * limit itself) and a third of them for connections, lighttpd's own
 * ratio (a CGI request also holds two pipes). */
static unsigned long long http_fds(void)
{
    rlim_t fds = 16384;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < fds)
        fds = rl.rlim_max;
    if (fds < 256)
        fds = 256;
    return (unsigned long long)fds;
}

unsigned long long http_max_conns(void)
{
    return http_fds() / 3;
}

static void http_limits(char *maxfds, char *maxconns, size_t cap)
{
    snprintf(maxfds, cap, "%llu", http_fds());
    snprintf(maxconns, cap, "%llu", http_max_conns());
}

/* Writes the error pages and DATADIR/lighttpd.conf. 0, or -1 (printed). */
int config_write(const options *o, const install *in, const paths *p)
{
    if (write_error_pages(p) < 0)
        return -1;
    char tpath[PATH_MAX + 64];
    snprintf(tpath, sizeof tpath, "%s/lighttpd.conf.in", in->etcdir);
    char *tmpl = read_small(tpath, TEMPLATE_MAX);
    if (!tmpl) {
        die_msg("read %s: %s", tpath, strerror(errno));
        return -1;
    }
    char port[16], maxfds[24], maxconns[24];
    snprintf(port, sizeof port, "%d", o->haddr.port);
    http_limits(maxfds, maxconns, sizeof maxfds);
    const char *names[] = {"HOST",   "PORT", "DATADIR",  "CGIDIR", "SOCKET",
                           "ETCDIR", "MODE", "SECURITY", "MAXFDS", "MAXCONNS"};
    /* -fast: lighttpd listens on DATADIR/http.sock; raftd has the port. */
    const char *values[] = {o->fast ? p->httpsock : o->haddr.host,
                            port,
                            p->datadir,
                            in->cgidir,
                            p->sock,
                            in->etcdir,
                            o->fastcgi ? "fastcgi" : "cgi",
                            p->secpath,
                            maxfds,
                            maxconns};
    char *text = render(tmpl, names, values, 10);
    free(tmpl);
    if (!text || write_file(p->conf, text, 0600) < 0) {
        die_msg("write %s: %s", p->conf, text ? strerror(errno) : "out of memory");
        free(text);
        return -1;
    }
    free(text);
    say("wrote %s", p->conf);
    return 0;
}

/* DATADIR/node.conf: how a tool on this host reaches this node's HTTP API
 * (kv-health -d DATADIR reads it; kv-health(8)). KEY=VALUE lines, read
 * with sed, never sourced. Rewritten at every start. 0, or -1 (printed). */
int node_conf_write(const options *o, const paths *p, const security *sec)
{
    char path[PATH_MAX + 32], authf[PATH_MAX] = "", text[4 * PATH_MAX + 512];
    snprintf(path, sizeof path, "%s/node.conf", p->datadir);
    if (o->join_auth_s && !realpath(o->join_auth_s, authf))
        authf[0] = '\0';
    const char *ca = sec->join_cacert[0] ? sec->join_cacert : "";
    snprintf(text, sizeof text,
             "# Written by keyval at each start: this node's HTTP API for the\n"
             "# tools on this host (kv-health -d DATADIR). Do not edit.\n"
             "haddr=%s\n"
             "scheme=%s\n"
             "cacert=%s\n"
             "auth=%s\n"
             "auth_file=%s\n",
             o->hadv.text, o->https_cert_s ? "https" : "http", o->https_cert_s ? ca : "",
             !o->auth_file_s  ? "none"
             : o->auth_health ? "all"
                              : "status",
             o->auth_file_s ? authf : "");
    if (write_file(path, text, 0600) < 0) {
        die_msg("write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
