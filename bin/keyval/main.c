/*
 * main.c - keyval: start one keyval node: raftd, the socat peer listener
 * and lighttpd, and join a cluster when asked. Same command line as the
 * seed:
 *
 *     keyval [-id ID] [-haddr HOST:PORT] [-raddr HOST:PORT] [-join ADDR] DATADIR
 *
 * It supervises its children: on SIGINT/SIGTERM it stops them all; when
 * one dies it says which, stops the rest and exits nonzero. Children get
 * SIGTERM if keyval itself dies (PR_SET_PDEATHSIG), so they stop cleanly.
 *
 * This file: finding the installation, preparing DATADIR, and the order of
 * the steps. options.c parses, config.c and security.c write DATADIR's
 * configuration, children.c and ready.c start and watch the children,
 * join.c joins.
 */
#include "keyval.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where am I? Templates and CGI programs are found relative to it; the
 * programs keyval runs too. 0, or -1 (printed). */
static int locate_install(install *in)
{
    memset(in, 0, sizeof *in);
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        die_msg("readlink /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    self[sl] = '\0';
    snprintf(in->bindir, sizeof in->bindir, "%s", self);
    char *slash = strrchr(in->bindir, '/');
    if (slash)
        *slash = '\0';
    if (find_dir(in->bindir, "../etc", "../share/keyval", "lighttpd.conf.in", in->etcdir,
                 sizeof in->etcdir) < 0) {
        die_msg("cannot find lighttpd.conf.in in %s/../etc or %s/../share/keyval", in->bindir,
                in->bindir);
        return -1;
    }
    if (find_dir(in->bindir, "../cgi-bin", "../libexec/keyval", "key-get", in->cgidir,
                 sizeof in->cgidir) < 0) {
        die_msg("cannot find the CGI programs in %s/../cgi-bin or "
                "%s/../libexec/keyval",
                in->bindir, in->bindir);
        return -1;
    }
    if (!config_safe(in->etcdir)) {
        die_msg("template directory %s has characters lighttpd.conf cannot hold", in->etcdir);
        return -1;
    }
    if (!config_safe(in->cgidir)) {
        die_msg("CGI directory %s has characters lighttpd.conf cannot hold", in->cgidir);
        return -1;
    }
    find_prog("KEYVAL_RAFTD", in->bindir, "raftd", in->raftd, sizeof in->raftd);
    find_prog("KEYVAL_SOCAT", NULL, "socat", in->socat, sizeof in->socat);
    find_prog("KEYVAL_LIGHTTPD", NULL, "lighttpd", in->lighttpd, sizeof in->lighttpd);
    find_prog("KEYVAL_CURL", NULL, "curl", in->curl, sizeof in->curl);
    return 0;
}

/* -restore: kv-restore fills an empty DATADIR with a new cluster. Returns
 * -1 to go on, else the exit status. */
static int restore_datadir(const options *o, const install *in)
{
    char kvrestore[PATH_MAX + 64];
    find_prog("KEYVAL_KV_RESTORE", in->bindir, "kv-restore", kvrestore, sizeof kvrestore);
    char *xargv[] = {kvrestore,
                     "-id",
                     (char *)o->id,
                     "-haddr",
                     (char *)o->hadv.text,
                     "-raddr",
                     (char *)o->radv.text,
                     (char *)o->restore_s,
                     (char *)o->datadir_s,
                     NULL};
    say("restoring %s into %s: %s", o->restore_s, o->datadir_s, kvrestore);
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
        die_msg("restore from %s failed; nothing started", o->restore_s);
        return WIFEXITED(rst) && WEXITSTATUS(rst) == 2 ? 2 : 1;
    }
    return -1;
}

/* The pid written in a lock file, or 0. */
static int pid_in(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return atoi(buf);
}

/* DATADIR belongs to one node at a time. keyval holds an flock(2) on
 * DATADIR/keyval.pid (with its pid in it) for as long as it runs; raftd
 * holds DATADIR/raftd.pid the same way (a raftd started by hand counts
 * too). Both are checked before anything in DATADIR is written or any
 * child started, so a second keyval changes nothing of a live node.
 * The lock file is never unlinked: the lock, not the file, decides.
 * 0, or -1 (printed). */
static int lock_datadir(paths *p)
{
    int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        die_msg("%s: %s", p->lock, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno, pid = pid_in(fd);
        close(fd);
        if (e != EWOULDBLOCK) {
            die_msg("lock %s: %s", p->lock, strerror(e));
            return -1;
        }
        die_msg("%s is in use by keyval (pid %d); not starting", p->datadir, pid);
        return -1;
    }
    /* raftd takes its own lock; only look whether someone holds it. */
    int rfd = open(p->raftd_pid, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
        if (flock(rfd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
            die_msg("%s is in use by raftd (pid %d); not starting", p->datadir, pid_in(rfd));
            close(rfd);
            close(fd);
            return -1;
        }
        close(rfd); /* drops the shared lock at once */
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        die_msg("write %s: %s", p->lock, strerror(errno));
        close(fd);
        return -1;
    }
    return 0; /* fd stays open: the lock lasts until keyval exits */
}

/* Creates DATADIR (mode 0700), names its files and takes its lock; *fresh when it holds
 * no raft.db yet. 0, or -1 (printed). */
static int prepare_datadir(const options *o, paths *p, int *fresh)
{
    memset(p, 0, sizeof *p);
    if (mkdirs(o->datadir_s, 0700) < 0) {
        die_msg("create %s: %s", o->datadir_s, strerror(errno));
        return -1;
    }
    if (!realpath(o->datadir_s, p->datadir)) {
        die_msg("resolve %s: %s", o->datadir_s, strerror(errno));
        return -1;
    }
    if (!config_safe(p->datadir) || strpbrk(p->datadir, ",:!'")) {
        die_msg("bad DATADIR %s: quotes, backslashes, control characters and "
                "\",:!'\" cannot go into the lighttpd and socat arguments",
                p->datadir);
        return -1;
    }
    snprintf(p->sock, sizeof p->sock, "%s/raftd.sock", p->datadir);
    snprintf(p->peersock, sizeof p->peersock, "%s/peer.sock", p->datadir);
    snprintf(p->conf, sizeof p->conf, "%s/lighttpd.conf", p->datadir);
    snprintf(p->dbpath, sizeof p->dbpath, "%s/raft.db", p->datadir);
    snprintf(p->marker, sizeof p->marker, "%s/joined", p->datadir);
    snprintf(p->www, sizeof p->www, "%s/www", p->datadir);
    snprintf(p->tmpdir, sizeof p->tmpdir, "%s/tmp", p->datadir);
    snprintf(p->lighttpd_log, sizeof p->lighttpd_log, "%s/lighttpd.log", p->datadir);
    snprintf(p->secpath, sizeof p->secpath, "%s/lighttpd-security.conf", p->datadir);
    snprintf(p->htpasswd, sizeof p->htpasswd, "%s/htpasswd", p->datadir);
    snprintf(p->curlrc, sizeof p->curlrc, "%s/join.curlrc", p->datadir);
    snprintf(p->lock, sizeof p->lock, "%s/keyval.pid", p->datadir);
    snprintf(p->raftd_pid, sizeof p->raftd_pid, "%s/raftd.pid", p->datadir);
    snprintf(p->httpsock, sizeof p->httpsock, "%s/http.sock", p->datadir);
    if (strlen(p->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        die_msg("DATADIR path %s is too long for a UNIX socket path "
                "(DATADIR/raftd.sock must be under 108 bytes)",
                p->datadir);
        return -1;
    }
    /* lighttpd's FastCGI sockets: DATADIR/fcgi-route-error.sock-N */
    if (o->fastcgi && strlen(p->datadir) + sizeof "/fcgi-route-error.sock-99" >
                          sizeof(((struct sockaddr_un *)0)->sun_path)) {
        die_msg("DATADIR path %s is too long for -fastcgi (its FastCGI socket "
                "paths must be under 108 bytes)",
                p->datadir);
        return -1;
    }
    if (lock_datadir(p) < 0)
        return -1;
    *fresh = !file_exists(p->dbpath);
    say("data directory %s (%s)", p->datadir, *fresh ? "new" : "existing state");
    /* DATADIR holds raft.db, the sockets and the htpasswd file: nobody
     * but its owner (and, if the admin chose so, its group) gets in. */
    struct stat sb;
    if (stat(p->datadir, &sb) == 0 && (sb.st_mode & 0007)) {
        say("%s was open to others (mode %03o); making it %03o", p->datadir,
            (unsigned)(sb.st_mode & 0777), (unsigned)(sb.st_mode & 0770));
        if (chmod(p->datadir, sb.st_mode & 0770) < 0) {
            die_msg("chmod %s: %s", p->datadir, strerror(errno));
            return -1;
        }
    }

    return 0;
}

int main(int argc, char **argv)
{
    options o;
    install in;
    paths p;
    security sec;
    int fresh, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = options_parse(argc, argv, &o)) >= 0)
        return rc;
    if (locate_install(&in) < 0)
        return 1;
    if (o.restore_s && (rc = restore_datadir(&o, &in)) >= 0)
        return rc;
    if (prepare_datadir(&o, &p, &fresh) < 0 || security_setup(&o, &in, &p, &sec) < 0 ||
        config_write(&o, &in, &p) < 0 || node_conf_write(&o, &p, &sec) < 0 ||
        ui_conf_write(&o, &in, &p) < 0)
        return 1;
    supervise_init(p.lighttpd_log);

    /* Fail early, and clearly, when an address is taken. */
    if (tcp_listening(o.haddr.host, o.haddr.port)) {
        die_msg("HTTP address %s: port %d is already in use", o.haddr.text, o.haddr.port);
        return 1;
    }
    if (tcp_listening(o.raddr.host, o.raddr.port)) {
        die_msg("Raft address %s: port %d is already in use", o.raddr.text, o.raddr.port);
        return 1;
    }
    if (o.fast) { /* raftd answers on the port; lighttpd is behind it */
        if ((o.http_fd = tcp_listen(o.haddr.host, o.haddr.port)) < 0)
            return 1;
        unlink(p.httpsock);
    }

    char node_id[32] = "";
    int removed = 0;
    start_raftd(&o, &in, &p, &sec, fresh && !o.join_s);
    wait_raftd(p.sock, node_id, sizeof node_id, &removed);
    say("raftd is ready on %s", p.sock);
    start_socat(&o, &in, &p, &sec);
    start_lighttpd(&in, &p);
    wait_tcp("socat", o.raddr.host, o.raddr.port);
    if (o.fast)
        wait_unix("lighttpd", p.httpsock);
    else
        wait_tcp("lighttpd", o.haddr.host, o.haddr.port);
    say("serving HTTP on %s (%s:%d%s), Raft on %s; advertised as %s and %s", o.haddr.text,
        o.haddr.host, o.haddr.port, o.fast ? ", raftd with lighttpd behind it" : "", o.raddr.text,
        o.hadv.text, o.radv.text);

    if (o.join_s) {
        if (removed)
            say("this node was removed from the cluster; joining %s again", o.join.text);
        if (!removed && !fresh && file_exists(p.marker))
            say("already joined; not joining %s again", o.join.text);
        else
            join_cluster(&o, &in, &sec, node_id, p.marker, p.sock);
    } else if (removed) {
        say("this node was removed from the cluster: start it with -join ADDR of a member "
            "to join again");
    }
    if (sec.join_curlrc[0])
        unlink(sec.join_curlrc); /* the password is needed no longer */
    say("node %s is running; stop it with Ctrl-C or SIGTERM to pid %d", o.id, (int)getpid());
    supervise();
}
