/*
 * keyval - start one keyval node: raftd, the socat peer listener and
 * lighttpd, and join a cluster when asked. Same command line as the seed:
 *
 *     keyval [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT] [-join ADDR] DATADIR
 *
 * It supervises its children: on SIGINT/SIGTERM it stops them all; when
 * one dies it says which, stops the rest and exits nonzero. Children get
 * SIGTERM if keyval itself dies (PR_SET_PDEATHSIG), so they stop cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define PROG "keyval"
#define TEMPLATE_MAX (64 * 1024)
#define RAFTD_READY_MS 60000
#define HTTP_READY_MS 15000
#define JOIN_RETRY_MS 120000
#define STOP_GRACE_MS 10000

static volatile sig_atomic_t stop_signal;

/* -join over HTTPS and with basic authentication (set in main). */
static const char *join_scheme = "http";
static char join_cacert[PATH_MAX];
static char join_curlrc[PATH_MAX + 32];

static void on_signal(int sig) { stop_signal = sig; }

static void usage(FILE *f)
{
    fprintf(f,
"usage: keyval [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT] [-join ADDR] DATADIR\n"
"       keyval -fastcgi [options as above] DATADIR\n"
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
"  -join ADDR         HTTP address of a cluster member to join, e.g. :11000\n"
"                     (used the first time only; a restarted node rejoins\n"
"                     from its saved state)\n"
"  -fastcgi           run the HTTP programs as resident FastCGI applications\n"
"                     (lighttpd mod_fastcgi) instead of one CGI process per\n"
"                     request (mod_cgi, the default)\n"
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
"                     may GET/HEAD, rw users may also write and join\n"
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

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void die_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* a signal cuts it short: fine */
}

/* ---- addresses ---- */

typedef struct addr {
    char text[300];  /* as advertised: "localhost:11000" */
    char host[256];  /* numeric host to bind/connect: "127.0.0.1" */
    int port;
} addr;

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
        if (*c <= ' ' || *c == '"' || *c == '\\' || *c == '\'' || *c == ',' ||
            *c == '/' || (unsigned char)*c >= 0x7f) {
            snprintf(err, errlen, "bad address %s: bad character in host", s);
            return -1;
        }
    if (host[0] == '\0' || strcmp(host, "localhost") == 0) {
        snprintf(a->text, sizeof a->text, "localhost:%ld", p);
        snprintf(a->host, sizeof a->host, "127.0.0.1");
    } else {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            snprintf(err, errlen, "bad address %s: cannot resolve %s: %s", s,
                     host, gai_strerror(rc));
            return -1;
        }
        if (getnameinfo(res->ai_addr, res->ai_addrlen, a->host, sizeof a->host,
                        NULL, 0, NI_NUMERICHOST) != 0) {
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

/* ---- children ---- */

enum { C_RAFTD, C_SOCAT, C_LIGHTTPD, C_N };
static const char *child_name[C_N] = { "raftd", "socat", "lighttpd" };
static pid_t child_pid[C_N];

static pid_t spawn(char *const argv[])
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        die_msg("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static void describe_status(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(buf, n, "stopped (status %d)", st);
}

static char lighttpd_log[PATH_MAX + 32];

/* Prints the last n lines of a log file (lighttpd writes its errors there,
 * not to stderr). */
static void show_log_tail(const char *path, int n)
{
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char lines[8][512];
    int count = 0;
    if (n > 8)
        n = 8;
    while (fgets(lines[count % n], sizeof lines[0], f))
        count++;
    fclose(f);
    int first = count > n ? count - n : 0;
    for (int k = first; k < count; k++) {
        char *l = lines[k % n];
        l[strcspn(l, "\n")] = '\0';
        die_msg("%s: %s", path, l);
    }
}

/* Reaps any child that exited. Returns the index of a supervised child
 * that died (and reports it), or -1. */
static int reap(void)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < C_N; i++) {
            if (child_pid[i] == p) {
                char why[128];
                describe_status(st, why, sizeof why);
                die_msg("%s (pid %d) %s", child_name[i], (int)p, why);
                if (i == C_LIGHTTPD)
                    show_log_tail(lighttpd_log, 5);
                child_pid[i] = 0;
                return i;
            }
        }
    }
    return -1;
}

static void stop_all(void)
{
    /* Front to back: lighttpd, socat, then raftd. */
    for (int i = C_N - 1; i >= 0; i--) {
        if (child_pid[i] > 0) {
            say("stopping %s (pid %d)", child_name[i], (int)child_pid[i]);
            kill(child_pid[i], SIGTERM);
        }
    }
    long long deadline = now_ms() + STOP_GRACE_MS;
    for (;;) {
        int left = 0;
        for (int i = 0; i < C_N; i++) {
            if (child_pid[i] <= 0)
                continue;
            int st;
            pid_t r = waitpid(child_pid[i], &st, WNOHANG);
            if (r == child_pid[i] || (r < 0 && errno == ECHILD))
                child_pid[i] = 0;
            else
                left++;
        }
        if (!left)
            break;
        if (now_ms() > deadline) {
            for (int i = 0; i < C_N; i++)
                if (child_pid[i] > 0) {
                    die_msg("%s (pid %d) did not stop in %d s; killing it",
                            child_name[i], (int)child_pid[i], STOP_GRACE_MS / 1000);
                    kill(child_pid[i], SIGKILL);
                    waitpid(child_pid[i], NULL, 0);
                    child_pid[i] = 0;
                }
            break;
        }
        sleep_ms(50);
    }
}

/* Exits after stopping every child. */
static void finish(int code)
{
    stop_all();
    say("stopped");
    exit(code);
}

/* Called in every wait loop: exits when asked to stop or a child died. */
static void check_children(void)
{
    if (stop_signal) {
        say("got %s, stopping", strsignal(stop_signal));
        finish(0);
    }
    int dead = reap();
    if (dead >= 0) {
        die_msg("%s died; stopping the others", child_name[dead]);
        finish(1);
    }
}

/* ---- files ---- */

static int mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    struct stat sb;
    if (stat(buf, &sb) < 0)
        return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int is_exec(const char *path)
{
    return access(path, X_OK) == 0;
}

/* Reads a whole small file; returns malloc'ed text or NULL. */
static char *read_small(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(buf);
        errno = bad && buf ? EFBIG : errno;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0)
        return -1;
    return 0;
}

/* Characters that may go into a double-quoted lighttpd config string. */
static int config_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            return 0;
    return 1;
}

/* Replaces @NAME@ placeholders; returns malloc'ed text. */
static char *render(const char *tmpl, const char *const *names,
                    const char *const *values, int n)
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

/* Finds dir/rel1 or dir/rel2 (first that exists); returns 0 and the
 * directory path in out. */
static int find_dir(const char *bindir, const char *rel1, const char *rel2,
                    const char *probe, char *out, size_t outlen)
{
    const char *rels[2] = { rel1, rel2 };
    for (int i = 0; i < 2; i++) {
        char d[PATH_MAX], f[PATH_MAX + 64];
        snprintf(d, sizeof d, "%s/%s", bindir, rels[i]);
        char real[PATH_MAX];
        if (!realpath(d, real))
            continue;
        snprintf(f, sizeof f, "%s/%s", real, probe);
        if (file_exists(f)) {
            snprintf(out, outlen, "%s", real);
            return 0;
        }
    }
    return -1;
}

/* Finds a program: $ENV, then bindir/name, then PATH, then /usr/sbin. */
static void find_prog(const char *env, const char *bindir, const char *name,
                      char *out, size_t outlen)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, outlen, "%s", e);
        return;
    }
    char p[PATH_MAX + 64];
    if (bindir) {
        snprintf(p, sizeof p, "%s/%s", bindir, name);
        if (is_exec(p)) {
            snprintf(out, outlen, "%s", p);
            return;
        }
        /* Installed: keyval in PREFIX/bin, raftd in PREFIX/sbin. */
        char real[PATH_MAX];
        snprintf(p, sizeof p, "%s/../sbin/%s", bindir, name);
        if (is_exec(p) && realpath(p, real)) {
            snprintf(out, outlen, "%s", real);
            return;
        }
    }
    const char *path = getenv("PATH");
    if (path) {
        const char *s = path;
        while (*s) {
            const char *c = strchr(s, ':');
            size_t l = c ? (size_t)(c - s) : strlen(s);
            if (l > 0 && l < PATH_MAX) {
                snprintf(p, sizeof p, "%.*s/%s", (int)l, s, name);
                if (is_exec(p)) {
                    snprintf(out, outlen, "%s", p);
                    return;
                }
            }
            s += l + (c ? 1 : 0);
        }
    }
    const char *sys[] = { "/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin" };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", sys[i], name);
        if (is_exec(p)) {
            snprintf(out, outlen, "%s", p);
            return;
        }
    }
    snprintf(out, outlen, "%s", name);
}

/* ---- readiness ---- */

/* Nonzero when some socket listens on TCP port of host (a numeric
 * address; for IPv4 a listener on that address or on 0.0.0.0 counts, for
 * IPv6 any listener on the port), per /proc/net/tcp{,6}. Checked this way,
 * not by connecting, so that no half-made peer connection reaches raftd. */
static int tcp_listening(const char *host, int port)
{
    struct in_addr want;
    int v4 = inet_pton(AF_INET, host, &want) == 1;
    const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        char line[512];
        int found = 0;
        if (!fgets(line, sizeof line, f)) { /* header */
            fclose(f);
            continue;
        }
        while (!found && fgets(line, sizeof line, f)) {
            char local[128];
            unsigned st;
            if (sscanf(line, " %*d: %127s %*s %x", local, &st) != 2)
                continue;
            char *c = strrchr(local, ':');
            if (!c || st != 0x0A || strtol(c + 1, NULL, 16) != port)
                continue;
            if (i == 0 && v4) {
                *c = '\0';
                uint32_t a = (uint32_t)strtoul(local, NULL, 16);
                if (a != 0 && a != want.s_addr)
                    continue;
            }
            found = 1;
        }
        fclose(f);
        if (found)
            return 1;
    }
    return 0;
}

/* This node's Raft id as raftd reports it (16 hex digits; unique per
 * incarnation of DATADIR), sent with -join. */
static char node_id[32];

/* Waits until raftd answers a status request on its socket. */
static void wait_raftd(const char *sock)
{
    long long deadline = now_ms() + RAFTD_READY_MS;
    char err[512] = "";
    for (;;) {
        check_children();
        if (file_exists(sock)) {
            json_t *req = json_pack("{s:s}", "op", "status"), *reply = NULL;
            int rc = client_request(sock, req, 2000, &reply, err, sizeof err);
            json_decref(req);
            const char *nid = rc == 0 ? json_string_value(json_object_get(reply, "node_id"))
                                      : NULL;
            if (nid)
                snprintf(node_id, sizeof node_id, "%s", nid);
            json_decref(reply);
            if (rc == 0)
                return;
        } else {
            snprintf(err, sizeof err, "%.400s does not exist", sock);
        }
        if (now_ms() > deadline) {
            die_msg("raftd not ready after %d s: %s", RAFTD_READY_MS / 1000, err);
            finish(1);
        }
        sleep_ms(100);
    }
}

static void wait_tcp(const char *what, const char *host, int port)
{
    long long deadline = now_ms() + HTTP_READY_MS;
    for (;;) {
        check_children();
        if (tcp_listening(host, port))
            return;
        if (now_ms() > deadline) {
            die_msg("%s not accepting connections on %s:%d after %d s", what,
                    host, port, HTTP_READY_MS / 1000);
            finish(1);
        }
        sleep_ms(100);
    }
}

/* ---- join ---- */

/* Runs curl to POST body to url; stores the HTTP code (0 when no answer)
 * and up to outlen-1 bytes of the reply. Returns 0 when curl ran. */
static int http_post(const char *curl, const char *url, const char *body,
                     int *code, char *out, size_t outlen)
{
    int pfd[2];
    *code = 0;
    out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], STDOUT_FILENO);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, STDERR_FILENO);
        const char *argv[24];
        int a = 0;
        argv[a++] = curl;
        argv[a++] = "-s";
        argv[a++] = "-m";
        argv[a++] = "5";
        if (join_curlrc[0]) { /* the password stays out of argv */
            argv[a++] = "-K";
            argv[a++] = join_curlrc;
        }
        if (join_cacert[0]) {
            argv[a++] = "--cacert";
            argv[a++] = join_cacert;
        }
        argv[a++] = "-X";
        argv[a++] = "POST";
        argv[a++] = "-H";
        argv[a++] = "Content-Type: application/json";
        argv[a++] = "--data-binary";
        argv[a++] = body;
        argv[a++] = "-w";
        argv[a++] = "\n%{http_code}";
        argv[a++] = url;
        argv[a] = NULL;
        execvp(curl, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1) {
            char sink[512];
            while (read(pfd[0], sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    buf[len] = '\0';
    char *nl = strrchr(buf, '\n');
    if (nl) {
        *code = atoi(nl + 1);
        *nl = '\0';
    }
    size_t n = strlen(buf);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, buf, n);
    out[n] = '\0';
    return 0;
}

static void do_join(const char *curl, const addr *join, const char *id,
                    const addr *raddr, const addr *haddr, const char *marker)
{
    char url[400];
    snprintf(url, sizeof url, "%s://%s%s%s:%d/join", join_scheme,
             strchr(join->host, ':') ? "[" : "", join->host,
             strchr(join->host, ':') ? "]" : "", join->port);
    json_t *b = json_pack("{s:s,s:s,s:s}", "id", id, "addr", raddr->text,
                          "haddr", haddr->text);
    if (b && node_id[0])
        json_object_set_new(b, "node_id", json_string(node_id));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!body) {
        die_msg("join: cannot encode request");
        finish(1);
    }
    say("joining the cluster at %s as %s (%s, node id %s)", join->text, id, raddr->text,
        node_id[0] ? node_id : "unknown");
    long long deadline = now_ms() + JOIN_RETRY_MS;
    int attempt = 0;
    for (;;) {
        check_children();
        int code;
        char reply[1024];
        attempt++;
        if (http_post(curl, url, body, &code, reply, sizeof reply) < 0) {
            die_msg("join: cannot run %s: %s", curl, strerror(errno));
            free(body);
            finish(1);
        }
        if (code == 200) {
            say("joined the cluster via %s", join->text);
            if (write_file(marker, "joined\n", 0600) < 0)
                die_msg("write %s: %s", marker, strerror(errno));
            free(body);
            return;
        }
        if (code == 409) {
            /* This name is a member with another identity (this data
             * directory is not the one it joined with). */
            json_t *r = json_loads(reply, 0, NULL);
            const char *e = json_string_value(json_object_get(r, "error"));
            die_msg("join refused by %s: %s", join->text, e ? e : reply);
            json_decref(r);
            free(body);
            finish(1);
        }
        if (code != 0 && code != 503 && code != 502 && code != 504) {
            die_msg("join: %s refused: HTTP %d %s", url, code, reply);
            free(body);
            finish(1);
        }
        if (now_ms() > deadline) {
            die_msg("join: no success after %d s (last: %s)", JOIN_RETRY_MS / 1000,
                    code ? reply : "no answer");
            free(body);
            finish(1);
        }
        if (attempt == 1 || attempt % 10 == 0)
            say("join: %s: %s; retrying", url,
                code ? reply : "no answer");
        for (int i = 0; i < 10; i++) {
            check_children();
            sleep_ms(100);
        }
    }
}

/* ---- node IDs ---- */

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 63)
        return 0;
    for (; *id; id++)
        if (!id_char(*id))
            return 0;
    return 1;
}

/* ---- security: peer TLS, HTTPS, basic authentication ---- */

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
                "control characters or any of ,:!'", opt, real);
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
        if (!id_char(u[i]) && u[i] != '@')
            return 0;
    return 1;
}

#define AUTH_USERS_MAX 64

/* Reads -auth-file (USER:HASH:ro|rw lines, # comments), writes the
 * htpasswd file lighttpd reads (USER:HASH, mode 0600) and appends the
 * mod_auth configuration to conf. Returns 0, or -1 with a message. */
static int setup_auth(const char *file, const char *htpasswd, char *conf, size_t confcap)
{
    char *text = read_small(file, 256 * 1024);
    if (!text) {
        die_msg("-auth-file %s: %s", file, strerror(errno));
        return -1;
    }
    size_t cap = strlen(text) + 1;
    char *out = malloc(cap);
    char readers[AUTH_USERS_MAX * 72] = "", writers[AUTH_USERS_MAX * 72] = "";
    size_t olen = 0, rlen = 0, wlen = 0;
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
                die_msg("-auth-file %s:%d: the hash has spaces or control characters",
                        file, lineno);
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
        if (rw)
            wlen += (size_t)snprintf(writers + wlen, sizeof writers - wlen, "%suser=%.*s",
                                     wlen ? "|" : "", (int)ul, line);
    }
    if (users == 0) {
        die_msg("-auth-file %s: no users", file);
        goto done;
    }
    if (write_file(htpasswd, out, 0600) < 0) {
        die_msg("write %s: %s", htpasswd, strerror(errno));
        goto done;
    }
    /* A method that is not GET/HEAD writes (or is refused by routing):
     * only rw users. With no rw user nobody may write. */
    size_t cl = strlen(conf);
    int n = snprintf(conf + cl, confcap - cl,
        "# HTTP basic authentication (keyval -auth-file): ro users may\n"
        "# GET/HEAD, rw users may also write.\n"
        "server.modules += ( \"mod_auth\", \"mod_authn_file\" )\n"
        "auth.backend = \"htpasswd\"\n"
        "auth.backend.htpasswd.userfile = \"%s\"\n"
        "$HTTP[\"request-method\"] =~ \"^(GET|HEAD)$\" {\n"
        "    auth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"keyval\",\n"
        "                               \"require\" => \"%s\" ) )\n"
        "}\n"
        "$HTTP[\"request-method\"] !~ \"^(GET|HEAD)$\" {\n"
        "    auth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"keyval\",\n"
        "                               \"require\" => \"%s\" ) )\n"
        "}\n",
        htpasswd, readers, wlen ? writers : "user=-no-writer-");
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

/* ---- main ---- */

int main(int argc, char **argv)
{
    const char *id = NULL, *haddr_s = "localhost:11000",
               *raddr_s = "localhost:12000", *join_s = NULL, *datadir_s = NULL,
               *restore_s = NULL;
    int fastcgi = 0;
    const char *peer_tls_s = NULL, *https_cert_s = NULL, *https_key_s = NULL,
               *https_ca_s = NULL, *auth_file_s = NULL, *join_auth_s = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 ||
            strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] != '\0') {
            const char *name = a + 1 + (a[1] == '-');
            const char *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            const char **dst = NULL;
            if (nl == 7 && strncmp(name, "fastcgi", 7) == 0 && !eq) {
                fastcgi = 1;
                continue;
            }
            if (nl == 2 && strncmp(name, "id", 2) == 0)
                dst = &id;
            else if (nl == 5 && strncmp(name, "haddr", 5) == 0)
                dst = &haddr_s;
            else if (nl == 5 && strncmp(name, "raddr", 5) == 0)
                dst = &raddr_s;
            else if (nl == 4 && strncmp(name, "join", 4) == 0)
                dst = &join_s;
            else if (nl == 7 && strncmp(name, "restore", 7) == 0)
                dst = &restore_s;
            else if (nl == 8 && strncmp(name, "peer-tls", 8) == 0)
                dst = &peer_tls_s;
            else if (nl == 10 && strncmp(name, "https-cert", 10) == 0)
                dst = &https_cert_s;
            else if (nl == 9 && strncmp(name, "https-key", 9) == 0)
                dst = &https_key_s;
            else if (nl == 8 && strncmp(name, "https-ca", 8) == 0)
                dst = &https_ca_s;
            else if (nl == 9 && strncmp(name, "auth-file", 9) == 0)
                dst = &auth_file_s;
            else if (nl == 9 && strncmp(name, "join-auth", 9) == 0)
                dst = &join_auth_s;
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
        if (datadir_s) {
            fprintf(stderr, PROG ": more than one DATADIR given (%s, %s)\n",
                    datadir_s, a);
            usage(stderr);
            return 2;
        }
        datadir_s = a;
    }
    if (!datadir_s || !*datadir_s) {
        fprintf(stderr, PROG ": no DATADIR given\n");
        usage(stderr);
        return 2;
    }

    if (restore_s && join_s) {
        fprintf(stderr, PROG ": -restore starts a new cluster; it cannot be "
                "combined with -join\n");
        return 2;
    }
    addr haddr, raddr, join;
    char err[512];
    if (parse_addr(haddr_s, &haddr, err, sizeof err) < 0 ||
        parse_addr(raddr_s, &raddr, err, sizeof err) < 0 ||
        (join_s && parse_addr(join_s, &join, err, sizeof err) < 0)) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }
    /* raftd takes node IDs of 1-63 of [A-Za-z0-9._-]. The seed's default ID
     * is the Raft address; ours is that address with every other character
     * replaced by '-' ("localhost:12000" -> "localhost-12000"). */
    static char default_id[64];
    if (!id) {
        size_t k = 0;
        for (const char *c = raddr.text; *c && k < sizeof default_id - 1; c++)
            default_id[k++] = id_char(*c) ? *c : '-';
        default_id[k] = '\0';
        id = default_id;
    }
    if (!id_valid(id)) {
        fprintf(stderr, PROG ": bad -id %s: must be 1-63 characters of "
                "[A-Za-z0-9._-]\n", id);
        return 2;
    }
    if (!config_safe(datadir_s) || strpbrk(datadir_s, ",:!'")) {
        fprintf(stderr, PROG ": bad DATADIR %s: it may not contain quotes, "
                "backslashes, control characters or any of ,:!'\n", datadir_s);
        return 2;
    }

    /* Where am I? Templates and CGI programs are found relative to it. */
    char self[PATH_MAX], bindir[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        die_msg("readlink /proc/self/exe: %s", strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    snprintf(bindir, sizeof bindir, "%s", self);
    char *slash = strrchr(bindir, '/');
    if (slash)
        *slash = '\0';
    char etcdir[PATH_MAX], cgidir[PATH_MAX];
    if (find_dir(bindir, "../etc", "../share/keyval", "lighttpd.conf.in",
                 etcdir, sizeof etcdir) < 0) {
        die_msg("cannot find lighttpd.conf.in in %s/../etc or %s/../share/keyval",
                bindir, bindir);
        return 1;
    }
    if (find_dir(bindir, "../cgi-bin", "../libexec/keyval", "key-get",
                 cgidir, sizeof cgidir) < 0) {
        die_msg("cannot find the CGI programs in %s/../cgi-bin or "
                "%s/../libexec/keyval", bindir, bindir);
        return 1;
    }
    if (!config_safe(etcdir)) {
        die_msg("template directory %s has characters lighttpd.conf cannot hold",
                etcdir);
        return 1;
    }
    if (!config_safe(cgidir)) {
        die_msg("CGI directory %s has characters lighttpd.conf cannot hold", cgidir);
        return 1;
    }
    char raftd[PATH_MAX + 64], socat[PATH_MAX + 64], lighttpd[PATH_MAX + 64],
        curl[PATH_MAX + 64];
    find_prog("KEYVAL_RAFTD", bindir, "raftd", raftd, sizeof raftd);
    find_prog("KEYVAL_SOCAT", NULL, "socat", socat, sizeof socat);
    find_prog("KEYVAL_LIGHTTPD", NULL, "lighttpd", lighttpd, sizeof lighttpd);
    find_prog("KEYVAL_CURL", NULL, "curl", curl, sizeof curl);

    /* -restore: kv-restore fills an empty DATADIR with a new cluster. */
    if (restore_s) {
        char kvrestore[PATH_MAX + 64];
        find_prog("KEYVAL_KV_RESTORE", bindir, "kv-restore", kvrestore, sizeof kvrestore);
        char *xargv[] = { kvrestore, "-id", (char *)id, "-haddr", haddr.text,
                          "-raddr", raddr.text, (char *)restore_s, (char *)datadir_s,
                          NULL };
        say("restoring %s into %s: %s", restore_s, datadir_s, kvrestore);
        pid_t rp = fork();
        if (rp < 0) {
            die_msg("fork: %s", strerror(errno));
            return 1;
        }
        if (rp == 0) {
            execvp(xargv[0], xargv);
            fprintf(stderr, PROG ": run %s: %s\n", xargv[0], strerror(errno));
            _exit(127);
        }
        int rst;
        while (waitpid(rp, &rst, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(rst) || WEXITSTATUS(rst) != 0) {
            die_msg("restore from %s failed; nothing started", restore_s);
            return WIFEXITED(rst) && WEXITSTATUS(rst) == 2 ? 2 : 1;
        }
    }

    /* DATADIR */
    if (mkdirs(datadir_s, 0700) < 0) {
        die_msg("create %s: %s", datadir_s, strerror(errno));
        return 1;
    }
    char datadir[PATH_MAX];
    if (!realpath(datadir_s, datadir)) {
        die_msg("resolve %s: %s", datadir_s, strerror(errno));
        return 1;
    }
    if (!config_safe(datadir) || strpbrk(datadir, ",:!'")) {
        die_msg("bad DATADIR %s: quotes, backslashes, control characters and "
                "\",:!'\" cannot go into the lighttpd and socat arguments", datadir);
        return 1;
    }
    char sock[PATH_MAX + 32], peersock[PATH_MAX + 32], conf[PATH_MAX + 32],
        dbpath[PATH_MAX + 32], marker[PATH_MAX + 32], www[PATH_MAX + 32],
        tmpdir[PATH_MAX + 32];
    snprintf(sock, sizeof sock, "%s/raftd.sock", datadir);
    snprintf(peersock, sizeof peersock, "%s/peer.sock", datadir);
    snprintf(conf, sizeof conf, "%s/lighttpd.conf", datadir);
    snprintf(dbpath, sizeof dbpath, "%s/raft.db", datadir);
    snprintf(marker, sizeof marker, "%s/joined", datadir);
    snprintf(www, sizeof www, "%s/www", datadir);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", datadir);
    snprintf(lighttpd_log, sizeof lighttpd_log, "%s/lighttpd.log", datadir);
    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        die_msg("DATADIR path %s is too long for a UNIX socket path "
                "(DATADIR/raftd.sock must be under 108 bytes)", datadir);
        return 1;
    }
    /* lighttpd's FastCGI sockets: DATADIR/fcgi-route-error.sock-N */
    if (fastcgi && strlen(datadir) + sizeof "/fcgi-route-error.sock-99" >
                       sizeof(((struct sockaddr_un *)0)->sun_path)) {
        die_msg("DATADIR path %s is too long for -fastcgi (its FastCGI socket "
                "paths must be under 108 bytes)", datadir);
        return 1;
    }
    int fresh = !file_exists(dbpath);
    say("data directory %s (%s)", datadir, fresh ? "new" : "existing state");
    {   /* DATADIR holds raft.db, the sockets and the htpasswd file: nobody
         * but its owner (and, if the admin chose so, its group) gets in. */
        struct stat sb;
        if (stat(datadir, &sb) == 0 && (sb.st_mode & 0007)) {
            say("%s was open to others (mode %03o); making it %03o", datadir,
                (unsigned)(sb.st_mode & 0777), (unsigned)(sb.st_mode & 0770));
            if (chmod(datadir, sb.st_mode & 0770) < 0) {
                die_msg("chmod %s: %s", datadir, strerror(errno));
                return 1;
            }
        }
    }

    /* Security options: files are checked before anything starts. */
    char tls_ca[PATH_MAX], tls_crt[PATH_MAX], tls_key[PATH_MAX];
    char https_crt[PATH_MAX] = "", https_key[PATH_MAX] = "";
    char secconf[AUTH_USERS_MAX * 160 + 4096] =
        "# Written by keyval: HTTPS and authentication of this node (none).\n";
    char secpath[PATH_MAX + 32], htpasswd[PATH_MAX + 32];
    snprintf(secpath, sizeof secpath, "%s/lighttpd-security.conf", datadir);
    snprintf(htpasswd, sizeof htpasswd, "%s/htpasswd", datadir);
    char curlrc[PATH_MAX + 32];
    snprintf(curlrc, sizeof curlrc, "%s/join.curlrc", datadir);
    unlink(curlrc); /* left over from a killed start */
    if (peer_tls_s) {
        char d[PATH_MAX], f[PATH_MAX + 16];
        if (!realpath(peer_tls_s, d)) {
            die_msg("-peer-tls %s: %s", peer_tls_s, strerror(errno));
            return 1;
        }
        snprintf(f, sizeof f, "%s/ca.crt", d);
        if (secure_file("-peer-tls", f, tls_ca, sizeof tls_ca) < 0)
            return 1;
        snprintf(f, sizeof f, "%s/node.crt", d);
        if (secure_file("-peer-tls", f, tls_crt, sizeof tls_crt) < 0)
            return 1;
        snprintf(f, sizeof f, "%s/node.key", d);
        if (secure_file("-peer-tls", f, tls_key, sizeof tls_key) < 0)
            return 1;
        if (strchr(socat, ' ')) {
            die_msg("-peer-tls: the socat path %s may not contain spaces", socat);
            return 1;
        }
    }
    if (https_key_s && !https_cert_s) {
        die_msg("-https-key needs -https-cert");
        return 1;
    }
    if (https_cert_s) {
        if (secure_file("-https-cert", https_cert_s, https_crt, sizeof https_crt) < 0 ||
            (https_key_s &&
             secure_file("-https-key", https_key_s, https_key, sizeof https_key) < 0))
            return 1;
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
        join_scheme = "https";
    }
    if (https_ca_s) {
        if (secure_file("-https-ca", https_ca_s, join_cacert, sizeof join_cacert) < 0)
            return 1;
    } else if (peer_tls_s && https_cert_s) {
        snprintf(join_cacert, sizeof join_cacert, "%s", tls_ca);
    }
    if (auth_file_s) {
        if (setup_auth(auth_file_s, htpasswd, secconf, sizeof secconf) < 0)
            return 1;
    } else {
        unlink(htpasswd);
    }
    if (join_auth_s) {
        if (setup_join_auth(join_auth_s, curlrc) < 0)
            return 1;
        snprintf(join_curlrc, sizeof join_curlrc, "%s", curlrc);
    }
    if (write_file(secpath, secconf, 0600) < 0) {
        die_msg("write %s: %s", secpath, strerror(errno));
        return 1;
    }

    if (mkdirs(www, 0700) < 0 || mkdirs(tmpdir, 0700) < 0) {
        die_msg("create %s/www and %s/tmp: %s", datadir, datadir, strerror(errno));
        return 1;
    }
    static const struct { int code; const char *msg; } errpages[] = {
        { 400, "bad request" }, { 401, "authentication required" },
        { 403, "forbidden" }, { 404, "not found" },
        { 405, "method not allowed" }, { 408, "request timeout" },
        { 411, "length required" }, { 413, "request body too large (max 4 MiB)" },
        { 414, "request URI too long" }, { 417, "expectation failed" },
        { 431, "request header fields too large" },
        { 500, "internal server error" }, { 501, "not implemented" },
        { 502, "bad gateway" }, { 503, "service unavailable" },
        { 504, "gateway timeout" },
    };
    for (size_t i = 0; i < sizeof errpages / sizeof errpages[0]; i++) {
        char p[PATH_MAX + 64], text[128];
        snprintf(p, sizeof p, "%s/error-%d.html", www, errpages[i].code);
        snprintf(text, sizeof text, "{\"error\":\"%s\"}\n", errpages[i].msg);
        if (write_file(p, text, 0644) < 0) {
            die_msg("write %s: %s", p, strerror(errno));
            return 1;
        }
    }

    char tpath[PATH_MAX + 64];
    snprintf(tpath, sizeof tpath, "%s/lighttpd.conf.in", etcdir);
    char *tmpl = read_small(tpath, TEMPLATE_MAX);
    if (!tmpl) {
        die_msg("read %s: %s", tpath, strerror(errno));
        return 1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", haddr.port);
    const char *names[] = { "HOST", "PORT", "DATADIR", "CGIDIR", "SOCKET",
                            "ETCDIR", "MODE", "SECURITY" };
    const char *values[] = { haddr.host, port, datadir, cgidir, sock, etcdir,
                             fastcgi ? "fastcgi" : "cgi", secpath };
    char *text = render(tmpl, names, values, 8);
    free(tmpl);
    if (!text || write_file(conf, text, 0600) < 0) {
        die_msg("write %s: %s", conf, text ? strerror(errno) : "out of memory");
        free(text);
        return 1;
    }
    free(text);
    say("wrote %s", conf);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Fail early, and clearly, when an address is taken. */
    if (tcp_listening(haddr.host, haddr.port)) {
        die_msg("HTTP address %s: port %d is already in use", haddr.text, haddr.port);
        return 1;
    }
    if (tcp_listening(raddr.host, raddr.port)) {
        die_msg("Raft address %s: port %d is already in use", raddr.text, raddr.port);
        return 1;
    }

    /* raftd */
    int bootstrap = fresh && !join_s;
    char *rargv[14];
    char connect_tmpl[4 * PATH_MAX + 128];
    int ra = 0;
    rargv[ra++] = raftd;
    rargv[ra++] = "-id";
    rargv[ra++] = (char *)id;
    rargv[ra++] = "-raddr";
    rargv[ra++] = raddr.text;
    rargv[ra++] = "-haddr";
    rargv[ra++] = haddr.text;
    if (bootstrap)
        rargv[ra++] = "-bootstrap";
    if (peer_tls_s) {
        /* Outbound links: mutual TLS with our certificate, trusting only
         * the cluster CA (socat also checks the peer's name, %a's host). */
        snprintf(connect_tmpl, sizeof connect_tmpl,
                 "%s STDIO OPENSSL:%%a,cert=%s,key=%s,cafile=%s,verify=1",
                 socat, tls_crt, tls_key, tls_ca);
        rargv[ra++] = "-peer-connect";
        rargv[ra++] = connect_tmpl;
    }
    rargv[ra++] = datadir;
    rargv[ra] = NULL;
    child_pid[C_RAFTD] = spawn(rargv);
    if (child_pid[C_RAFTD] < 0)
        finish(1);
    say("started raftd (pid %d): %s -id %s -raddr %s -haddr %s%s%s%s%s %s",
        (int)child_pid[C_RAFTD], raftd, id, raddr.text, haddr.text,
        bootstrap ? " -bootstrap" : "", peer_tls_s ? " -peer-connect '" : "",
        peer_tls_s ? connect_tmpl : "", peer_tls_s ? "'" : "", datadir);
    wait_raftd(sock);
    say("raftd is ready on %s", sock);

    /* socat: inbound peer traffic on the Raft address */
    char listen[4 * PATH_MAX + 400], connect_to[PATH_MAX + 64];
    int v6 = strchr(raddr.host, ':') != NULL;
    /* backlog: a connection flood does not drop real peers' SYNs at once;
     * max-children: one socat process per connection, and a TLS one waits
     * in its handshake as long as the client likes, so a flood is capped
     * at 512 processes (about 60 MB) instead of exhausting the host.
     * raftd closes connections that do not say HELLO (10 s, or sooner
     * when 64 are pending), which frees plain-TCP children. */
    if (peer_tls_s) /* refuses peers without a certificate from the CA */
        snprintf(listen, sizeof listen,
                 "OPENSSL-LISTEN:%d,bind=%s%s%s,pf=ip%s,reuseaddr,fork,backlog=128,"
                 "max-children=512,cert=%s,key=%s,cafile=%s,verify=1",
                 raddr.port, v6 ? "[" : "", raddr.host, v6 ? "]" : "", v6 ? "6" : "4",
                 tls_crt, tls_key, tls_ca);
    else
        snprintf(listen, sizeof listen,
                 "TCP%s-LISTEN:%d,bind=%s%s%s,reuseaddr,fork,backlog=128,max-children=512",
                 v6 ? "6" : "4", raddr.port, v6 ? "[" : "", raddr.host, v6 ? "]" : "");
    snprintf(connect_to, sizeof connect_to, "UNIX-CONNECT:%s", peersock);
    char *sargv[] = { socat, listen, connect_to, NULL };
    child_pid[C_SOCAT] = spawn(sargv);
    if (child_pid[C_SOCAT] < 0)
        finish(1);
    say("started socat (pid %d): %s %s %s", (int)child_pid[C_SOCAT], socat,
        listen, connect_to);

    /* lighttpd */
    char *largv[] = { lighttpd, "-D", "-f", conf, NULL };
    child_pid[C_LIGHTTPD] = spawn(largv);
    if (child_pid[C_LIGHTTPD] < 0)
        finish(1);
    say("started lighttpd (pid %d): %s -D -f %s", (int)child_pid[C_LIGHTTPD],
        lighttpd, conf);
    wait_tcp("socat", raddr.host, raddr.port);
    wait_tcp("lighttpd", haddr.host, haddr.port);
    say("serving HTTP on %s (%s:%d), Raft on %s", haddr.text, haddr.host,
        haddr.port, raddr.text);

    if (join_s) {
        if (!fresh && file_exists(marker))
            say("already joined; not joining %s again", join.text);
        else
            do_join(curl, &join, id, &raddr, &haddr, marker);
    }
    if (join_curlrc[0])
        unlink(join_curlrc); /* the password is needed no longer */
    say("node %s is running; stop it with Ctrl-C or SIGTERM to pid %d", id,
        (int)getpid());

    for (;;) {
        check_children();
        sleep_ms(200);
    }
}
