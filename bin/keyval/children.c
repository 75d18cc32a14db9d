/*
 * children.c - keyval's children: starting raftd, the socat listener and
 * lighttpd, noticing at once when one dies (SIGCHLD and the stop signals
 * wake a self-pipe that every wait polls), and stopping them all, front
 * to back, when one died or keyval is asked to stop.
 */
#include "keyval.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { C_RAFTD, C_SOCAT, C_LIGHTTPD, C_N };
static const char *child_name[C_N] = {"raftd", "socat", "lighttpd"};
static pid_t child_pid[C_N];
static char lighttpd_log[PATH_MAX + 32];

/* ---- waking up: signals and children's exits ---- */

static volatile sig_atomic_t stop_signal;
/* The self-pipe: a signal handler writes a byte, every wait polls the read
 * end, so nothing that arrives between a check and a wait is missed. */
static int wake_pipe[2] = {-1, -1};

static void wake(void)
{
    int e = errno;
    if (wake_pipe[1] >= 0 && write(wake_pipe[1], "", 1) < 0) {
        /* full: a wake-up is pending anyway */
    }
    errno = e;
}

static void on_signal(int sig)
{
    stop_signal = sig;
    wake();
}

static void on_child(int sig)
{
    (void)sig;
    wake();
}

void supervise_init(const char *log)
{
    snprintf(lighttpd_log, sizeof lighttpd_log, "%s", log);
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        die_msg("pipe: %s", strerror(errno));
        exit(1);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int supervise_fd(void)
{
    return wake_pipe[0];
}

void wait_event(int ms)
{
    struct pollfd p = {.fd = wake_pipe[0], .events = POLLIN};
    if (poll(&p, 1, ms) > 0 && (p.revents & POLLIN)) {
        char buf[64];
        while (read(wake_pipe[0], buf, sizeof buf) > 0) {
        }
    }
}

/* ---- children ---- */

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

/* "started NAME (pid N): ARGV", an argument with a space in '' */
static void say_started(const char *name, pid_t pid, char *const argv[])
{
    char line[8 * PATH_MAX];
    size_t o = 0;
    for (int i = 0; argv[i] && o < sizeof line; i++) {
        const char *q = strchr(argv[i], ' ') ? "'" : "";
        int n = snprintf(line + o, sizeof line - o, "%s%s%s%s", i ? " " : "", q, argv[i], q);
        o += n > 0 ? (size_t)n : 0;
    }
    say("started %s (pid %d): %s", name, (int)pid, line);
}

static void describe_status(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
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

/* Reaps a supervised child that exited: returns its index (and reports
 * it), or -1. Only our own children: join's curl is waited for by join.c. */
static int reap(void)
{
    for (int i = 0; i < C_N; i++) {
        int st;
        if (child_pid[i] <= 0 || waitpid(child_pid[i], &st, WNOHANG) != child_pid[i])
            continue;
        char why[128];
        describe_status(st, why, sizeof why);
        die_msg("%s (pid %d) %s", child_name[i], (int)child_pid[i], why);
        if (i == C_LIGHTTPD)
            show_log_tail(lighttpd_log, 5);
        child_pid[i] = 0;
        return i;
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
                    die_msg("%s (pid %d) did not stop in %d s; killing it", child_name[i],
                            (int)child_pid[i], STOP_GRACE_MS / 1000);
                    kill(child_pid[i], SIGKILL);
                    waitpid(child_pid[i], NULL, 0);
                    child_pid[i] = 0;
                }
            break;
        }
        wait_event(50);
    }
}

/* Exits after stopping every child. */
_Noreturn void finish(int code)
{
    stop_all();
    say("stopped");
    exit(code);
}

/* Called in every wait loop: exits when asked to stop or a child died. */
void check_children(void)
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

/* After start-up: wait for a signal or a child's exit, nothing else. */
_Noreturn void supervise(void)
{
    for (;;) {
        check_children();
        wait_event(-1);
    }
}

/* ---- starting them ---- */

/* The outbound TLS link's TCP options: as raftd's default -peer-connect
 * (raftd(8)): nodelay, connect timeout, keepalive, TCP_USER_TIMEOUT 10 s. */
#define LINK_TCP_OPTS \
    "nodelay,connect-timeout=2,keepalive,keepidle=5,keepintvl=2,keepcnt=3," \
    "setsockopt-int=6:18:10000"

pid_t start_raftd(const options *o, const install *in, const paths *p, const security *sec,
                  int bootstrap)
{
    char *rargv[20];
    char fdarg[16] = "", conns[24] = "";
    char connect_tmpl[4 * PATH_MAX + 256];
    int ra = 0;
    rargv[ra++] = (char *)in->raftd;
    rargv[ra++] = "-id";
    rargv[ra++] = (char *)o->id;
    /* raftd opens no TCP socket: its addresses are the advertised ones. */
    rargv[ra++] = "-raddr";
    rargv[ra++] = (char *)o->radv.text;
    rargv[ra++] = "-haddr";
    rargv[ra++] = (char *)o->hadv.text;
    if (bootstrap)
        rargv[ra++] = "-bootstrap";
    if (o->peer_tls_s) {
        /* Outbound links: mutual TLS with our certificate, trusting only
         * the cluster CA (socat also checks the peer's name, %a's host). */
        snprintf(connect_tmpl, sizeof connect_tmpl,
                 "%s STDIO OPENSSL:%%a,cert=%s,key=%s,cafile=%s,verify=1,%s", in->socat,
                 sec->tls_crt, sec->tls_key, sec->tls_ca, LINK_TCP_OPTS);
        rargv[ra++] = "-peer-connect";
        rargv[ra++] = connect_tmpl;
    }
    int http_fd = -1;
    if (o->fast) { /* a copy without close-on-exec: raftd's only */
        if ((http_fd = dup(o->http_fd)) < 0) {
            die_msg("dup: %s", strerror(errno));
            finish(1);
        }
        snprintf(fdarg, sizeof fdarg, "%d", http_fd);
        snprintf(conns, sizeof conns, "%llu", http_max_conns());
        rargv[ra++] = "-http-fd";
        rargv[ra++] = fdarg;
        rargv[ra++] = "-http-back";
        rargv[ra++] = (char *)p->httpsock;
        rargv[ra++] = "-http-conns";
        rargv[ra++] = conns;
    }
    rargv[ra++] = (char *)p->datadir;
    rargv[ra] = NULL;
    child_pid[C_RAFTD] = spawn(rargv);
    if (http_fd >= 0)
        close(http_fd);
    if (child_pid[C_RAFTD] < 0)
        finish(1);
    say_started("raftd", child_pid[C_RAFTD], rargv);
    return child_pid[C_RAFTD];
}

/* The listener's TCP options: nodelay, as the links' (replies to
 * forwarded requests go back this way, and would otherwise wait for the
 * other side's delayed ACK); keepalive: a connection whose peer vanished
 * in a partition (it has since connected anew) is closed within ~25 s,
 * and its socat child with it, instead of lingering for hours. */
#define LISTEN_TCP_OPTS "nodelay,keepalive,keepidle=10,keepintvl=5,keepcnt=3"

/* socat: inbound peer traffic on the Raft address */
void start_socat(const options *o, const install *in, const paths *p, const security *sec)
{
    char listen[4 * PATH_MAX + 400], connect_to[PATH_MAX + 64];
    int v6 = strchr(o->raddr.host, ':') != NULL;
    /* backlog: a connection flood does not drop real peers' SYNs at once;
     * max-children: one socat process per connection, and a TLS one waits
     * in its handshake as long as the client likes, so a flood is capped
     * at 512 processes (about 60 MB) instead of exhausting the host.
     * raftd closes connections that do not say HELLO (10 s, or sooner
     * when 64 are pending), which frees plain-TCP children. */
    if (o->peer_tls_s) /* refuses peers without a certificate from the CA */
        snprintf(listen, sizeof listen,
                 "OPENSSL-LISTEN:%d,bind=%s%s%s,pf=ip%s,reuseaddr,fork,backlog=128,"
                 "max-children=512,cert=%s,key=%s,cafile=%s,verify=1,%s",
                 o->raddr.port, v6 ? "[" : "", o->raddr.host, v6 ? "]" : "", v6 ? "6" : "4",
                 sec->tls_crt, sec->tls_key, sec->tls_ca, LISTEN_TCP_OPTS);
    else
        snprintf(listen, sizeof listen,
                 "TCP%s-LISTEN:%d,bind=%s%s%s,reuseaddr,fork,backlog=128,max-children=512,%s",
                 v6 ? "6" : "4", o->raddr.port, v6 ? "[" : "", o->raddr.host, v6 ? "]" : "",
                 LISTEN_TCP_OPTS);
    snprintf(connect_to, sizeof connect_to, "UNIX-CONNECT:%s", p->peersock);
    char *sargv[] = {(char *)in->socat, listen, connect_to, NULL};
    child_pid[C_SOCAT] = spawn(sargv);
    if (child_pid[C_SOCAT] < 0)
        finish(1);
    say("started socat (pid %d): %s %s %s", (int)child_pid[C_SOCAT], in->socat, listen, connect_to);
}

void start_lighttpd(const install *in, const paths *p)
{
    char *largv[] = {(char *)in->lighttpd, "-D", "-f", (char *)p->conf, NULL};
    child_pid[C_LIGHTTPD] = spawn(largv);
    if (child_pid[C_LIGHTTPD] < 0)
        finish(1);
    say_started("lighttpd", child_pid[C_LIGHTTPD], largv);
}
