/*
 * security.c - keyval's security options: peer TLS files (-peer-tls), HTTPS
 * (-https-cert, -https-key, -https-ca), basic authentication (-auth-file:
 * DATADIR/htpasswd and the mod_auth rules) and the credentials -join sends
 * (-join-auth: DATADIR/join.curlrc). Every file is checked before anything
 * starts; the result is DATADIR/lighttpd-security.conf.
 */
#include "keyval.h"
#include "kvrules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A path that can go into a socat address and raftd's -peer-connect
 * template (split on spaces) as well as lighttpd.conf. */
static int socat_safe(const char *s)
{
    return config_safe(s) && !strpbrk(s, ",:!' ");
}

/* Resolves a readable regular file; 0 ok, -1 with a message printed. */
static int secure_file(const char *opt, const char *in, char *out, size_t outlen)
{
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(in, real) || stat(real, &sb) < 0) {
        die_msg("%s %s: %s", opt, in, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || access(real, R_OK) < 0) {
        die_msg("%s %s: not a readable file", opt, in);
        return -1;
    }
    if (!socat_safe(real)) {
        die_msg("%s %s: the path may not contain quotes, backslashes, spaces, "
                "control characters or any of ,:!'",
                opt, real);
        return -1;
    }
    if (strlen(real) >= outlen) {
        die_msg("%s %s: path too long", opt, real);
        return -1;
    }
    snprintf(out, outlen, "%s", real);
    return 0;
}

static int auth_user_ok(const char *u, size_t n)
{
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!kv_name_char(u[i]) && u[i] != '@')
            return 0;
    return 1;
}

/* Appends to re (cap bytes) a regex matching the start of a base64 token
 * whose decoded text starts with "USER:": the whole 3-byte groups give
 * fixed characters, a last group of 1 or 2 bytes a fixed character and a
 * class of those whose high bits match. User names are [A-Za-z0-9._@-],
 * so only '+' of the base64 alphabet needs a bracket. 0, or -1 when full. */
static int base64_prefix_re(const char *user, size_t ul, char *re, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char in[72];
    size_t n = ul + 1, len = strlen(re);
    if (n > sizeof in)
        return -1;
    memcpy(in, user, ul);
    in[ul] = ':';
    char out[320];
    size_t o = 0;
#define PUT(c) \
    (o += (size_t)snprintf(out + o, sizeof out - o, "%s%c%s", (c) == '+' ? "[" : "", (c), \
                           (c) == '+' ? "]" : ""))
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        for (int k = 3; k >= 0; k--)
            PUT(b64[(v >> (6 * k)) & 63]);
    }
    size_t rest = n - i; /* 0, 1 or 2 bytes; their last character is a class */
    if (rest) {
        unsigned v = (unsigned)in[i] << 16 | (rest == 2 ? (unsigned)in[i + 1] << 8 : 0);
        PUT(b64[v >> 18]);
        if (rest == 2)
            PUT(b64[(v >> 12) & 63]);
        unsigned fixed = rest == 1 ? (v >> 12) & 0x30 : (v >> 6) & 0x3c;
        unsigned span = rest == 1 ? 16 : 4;
        out[o++] = '[';
        for (unsigned c = fixed; c < fixed + span; c++)
            out[o++] = b64[c]; /* '+' and '/' are plain in a class */
        out[o++] = ']';
        out[o] = '\0';
    }
#undef PUT
    if (o >= sizeof out || len + o + 2 >= cap)
        return -1;
    snprintf(re + len, cap - len, "%s%s", len ? "|" : "", out);
    return 0;
}

/* Reads -auth-file (USER:HASH:ro|rw lines, # comments), writes the
 * htpasswd file lighttpd reads (USER:HASH, mode 0600) and appends the
 * mod_auth configuration to conf. Returns 0, or -1 with a message. */
static int setup_auth(const char *file, const char *htpasswd, int auth_health, char *conf,
                      size_t confcap)
{
    char *text = read_small(file, 256 * 1024);
    if (!text) {
        die_msg("-auth-file %s: %s", file, strerror(errno));
        return -1;
    }
    size_t cap = strlen(text) + 1;
    char *out = malloc(cap);
    char readers[AUTH_USERS_MAX * 72] = "", writers[AUTH_USERS_MAX * 320] = "";
    size_t olen = 0, rlen = 0;
    int users = 0, lineno = 0, ret = -1;
    if (!out) {
        die_msg("-auth-file %s: out of memory", file);
        goto done;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (ll == 0 || line[0] == '#')
            continue;
        char *c1 = strchr(line, ':'), *c2 = strrchr(line, ':');
        if (!c1 || c1 == c2) {
            die_msg("-auth-file %s:%d: expected USER:HASH:ro or USER:HASH:rw", file, lineno);
            goto done;
        }
        const char *role = c2 + 1;
        int rw = !strcmp(role, "rw");
        if (!rw && strcmp(role, "ro")) {
            die_msg("-auth-file %s:%d: role must be ro or rw, not '%s'", file, lineno, role);
            goto done;
        }
        size_t ul = (size_t)(c1 - line), hl = (size_t)(c2 - c1 - 1);
        if (!auth_user_ok(line, ul)) {
            die_msg("-auth-file %s:%d: user names are 1-64 of [A-Za-z0-9._@-]", file, lineno);
            goto done;
        }
        if (hl == 0) {
            die_msg("-auth-file %s:%d: empty password hash", file, lineno);
            goto done;
        }
        for (size_t i = 0; i < hl; i++) {
            unsigned char h = (unsigned char)c1[1 + i];
            if (h <= ' ' || h >= 0x7f) {
                die_msg("-auth-file %s:%d: the hash has spaces or control characters", file,
                        lineno);
                goto done;
            }
        }
        if (++users > AUTH_USERS_MAX) {
            die_msg("-auth-file %s: more than %d users", file, AUTH_USERS_MAX);
            goto done;
        }
        olen += (size_t)snprintf(out + olen, cap - olen, "%.*s\n", (int)(c2 - line), line);
        rlen += (size_t)snprintf(readers + rlen, sizeof readers - rlen, "%suser=%.*s",
                                 rlen ? "|" : "", (int)ul, line);
        if (rw && base64_prefix_re(line, ul, writers, sizeof writers) < 0) {
            die_msg("-auth-file %s: too many rw users", file);
            goto done;
        }
    }
    if (users == 0) {
        die_msg("-auth-file %s: no users", file);
        goto done;
    }
    if (write_file(htpasswd, out, 0600) < 0) {
        die_msg("write %s: %s", htpasswd, strerror(errno));
        goto done;
    }
    /* Every user may read; a method that is not GET/HEAD writes (or is
     * refused by routing): only rw users. No or bad credentials get 401
     * from mod_auth. A valid user without the right gets 403 from
     * mod_access, which runs after mod_auth (its place in server.modules)
     * and so only sees authenticated requests. lighttpd 1.4 has no
     * condition on the authenticated user, so the write rule matches the
     * user name in the Authorization header: the base64 of "USER:" of an
     * rw user (mod_auth has checked that user's password by then). */
    size_t cl = strlen(conf);
    int n = snprintf(
        conf + cl, confcap - cl,
        "# HTTP basic authentication (keyval -auth-file): ro users may\n"
        "# GET/HEAD, rw users may also write. 401 without valid credentials,\n"
        "# 403 for a valid user without the right.\n"
        "server.modules += ( \"mod_auth\", \"mod_authn_file\", \"mod_access\" )\n"
        "auth.backend = \"htpasswd\"\n"
        "auth.backend.htpasswd.userfile = \"%s\"\n"
        "auth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"keyval\",\n"
        "                           \"require\" => \"%s\" ) )\n"
        "$HTTP[\"request-method\"] !~ \"^(GET|HEAD)$\" {\n"
        "%s%s%s"
        "        url.access-deny = ( \"\" )\n"
        "%s"
        "}\n"
        "%s",
        htpasswd, readers,
        writers[0] ? "    # not an rw user (the base64 of \"USER:\" of each)\n"
                     "    $REQUEST_HEADER[\"Authorization\"] !~ \"^[Bb][Aa][Ss][Ii][Cc] +("
                   : "",
        writers, writers[0] ? ")\" {\n" : "", writers[0] ? "    }\n" : "",
        auth_health ? "# GET /health needs credentials too (keyval -auth-health).\n"
                    : "# GET /health (routed to /.kv-cgi/status/health) needs no credentials:\n"
                      "# a load balancer probes it without a password. /status and\n"
                      "# /metrics stay behind authentication. keyval -auth-health\n"
                      "# turns this off.\n"
                      "$HTTP[\"url\"] == \"/.kv-cgi/status/health\" {\n"
                      "    auth.require = ( )\n"
                      "}\n");
    if (n < 0 || (size_t)n >= confcap - cl) {
        die_msg("-auth-file %s: configuration too long", file);
        goto done;
    }
    ret = 0;
done:
    free(out);
    free(text);
    return ret;
}

/* Writes the curl config that -join uses for USER:PASSWORD from file
 * (mode 0600 in DATADIR). Returns 0 or -1 with a message. */
static int setup_join_auth(const char *file, const char *rc)
{
    char *text = read_small(file, 4096);
    if (!text) {
        die_msg("-join-auth %s: %s", file, strerror(errno));
        return -1;
    }
    text[strcspn(text, "\r\n")] = '\0';
    if (!strchr(text, ':')) {
        die_msg("-join-auth %s: expected one line USER:PASSWORD", file);
        free(text);
        return -1;
    }
    char conf[4096 * 2 + 32];
    size_t o = (size_t)snprintf(conf, sizeof conf, "user = \"");
    for (const char *c = text; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            die_msg("-join-auth %s: control character in the password", file);
            free(text);
            return -1;
        }
        if (*c == '"' || *c == '\\')
            conf[o++] = '\\';
        conf[o++] = *c;
    }
    snprintf(conf + o, sizeof conf - o, "\"\n");
    free(text);
    if (write_file(rc, conf, 0600) < 0) {
        die_msg("write %s: %s", rc, strerror(errno));
        return -1;
    }
    return 0;
}

int security_setup(const options *o, const install *in, const paths *p, security *sec)
{
    memset(sec, 0, sizeof *sec);
    sec->join_scheme = "http";
    char https_crt[PATH_MAX] = "", https_key[PATH_MAX] = "";
    char secconf[AUTH_USERS_MAX * 400 + 4096] =
        "# Written by keyval: HTTPS and authentication of this node (none).\n";
    unlink(p->curlrc); /* left over from a killed start */
    if (o->peer_tls_s) {
        char d[PATH_MAX], f[PATH_MAX + 16];
        if (!realpath(o->peer_tls_s, d)) {
            die_msg("-peer-tls %s: %s", o->peer_tls_s, strerror(errno));
            return -1;
        }
        snprintf(f, sizeof f, "%s/ca.crt", d);
        if (secure_file("-peer-tls", f, sec->tls_ca, sizeof sec->tls_ca) < 0)
            return -1;
        snprintf(f, sizeof f, "%s/node.crt", d);
        if (secure_file("-peer-tls", f, sec->tls_crt, sizeof sec->tls_crt) < 0)
            return -1;
        snprintf(f, sizeof f, "%s/node.key", d);
        if (secure_file("-peer-tls", f, sec->tls_key, sizeof sec->tls_key) < 0)
            return -1;
        if (strchr(in->socat, ' ')) {
            die_msg("-peer-tls: the socat path %s may not contain spaces", in->socat);
            return -1;
        }
    }
    if (o->https_key_s && !o->https_cert_s) {
        die_msg("-https-key needs -https-cert");
        return -1;
    }
    if (o->https_cert_s) {
        if (secure_file("-https-cert", o->https_cert_s, https_crt, sizeof https_crt) < 0 ||
            (o->https_key_s &&
             secure_file("-https-key", o->https_key_s, https_key, sizeof https_key) < 0))
            return -1;
        snprintf(secconf, sizeof secconf,
                 "# Written by keyval: HTTPS and authentication of this node.\n"
                 "server.modules += ( \"mod_openssl\" )\n"
                 "ssl.engine = \"enable\"\n"
                 "# HTTP/1.1 only: over HTTP/2 lighttpd resets the stream of a\n"
                 "# refused request (401, 413) whose body it did not read, and\n"
                 "# clients see a transport error instead of the status.\n"
                 "server.feature-flags += ( \"server.h2proto\" => \"disable\" )\n"
                 "ssl.pemfile = \"%s\"\n"
                 "%s%s%s",
                 https_crt, https_key[0] ? "ssl.privkey = \"" : "", https_key,
                 https_key[0] ? "\"\n" : "");
        sec->join_scheme = "https";
    }
    if (o->https_ca_s) {
        if (secure_file("-https-ca", o->https_ca_s, sec->join_cacert, sizeof sec->join_cacert) < 0)
            return -1;
    } else if (o->peer_tls_s && o->https_cert_s) {
        snprintf(sec->join_cacert, sizeof sec->join_cacert, "%s", sec->tls_ca);
    }
    if (o->auth_file_s) {
        if (setup_auth(o->auth_file_s, p->htpasswd, o->auth_health, secconf, sizeof secconf) < 0)
            return -1;
    } else {
        unlink(p->htpasswd);
    }
    if (o->join_auth_s) {
        if (setup_join_auth(o->join_auth_s, p->curlrc) < 0)
            return -1;
        snprintf(sec->join_curlrc, sizeof sec->join_curlrc, "%s", p->curlrc);
    }
    if (write_file(p->secpath, secconf, 0600) < 0) {
        die_msg("write %s: %s", p->secpath, strerror(errno));
        return -1;
    }
    return 0;
}
