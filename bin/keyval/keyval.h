/*
 * keyval.h - private to bin/keyval/: what the files of the keyval command
 * share (options, the node's paths, messages, children, readiness).
 */
#ifndef KEYVAL_KEYVAL_H
#define KEYVAL_KEYVAL_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#define PROG "keyval"
#define TEMPLATE_MAX (64 * 1024)
#define RAFTD_READY_MS 60000
#define HTTP_READY_MS 15000
#define JOIN_RETRY_MS 120000
#define JOIN_CONFIRM_MS 30000
#define STOP_GRACE_MS 10000
#define AUTH_USERS_MAX 64

typedef struct addr {
    char text[300]; /* as advertised: "localhost:11000" */
    char host[256]; /* numeric host to bind/connect: "127.0.0.1" */
    int port;
} addr;

/* The command line, checked (options.c). */
typedef struct options {
    const char *id, *haddr_s, *raddr_s, *hadv_s, *radv_s, *join_s, *datadir_s, *restore_s;
    const char *peer_tls_s, *https_cert_s, *https_key_s, *https_ca_s, *auth_file_s, *join_auth_s;
    int fastcgi, auth_health;
    int fast;         /* -fast: raftd on the HTTP port, lighttpd (-fastcgi) behind it */
    int http_fd;      /* with -fast: the HTTP port's listening socket, for raftd */
    const char *ui_s; /* -ui on|off (default on) */
    int ui_off;
    addr haddr, raddr, join; /* bound (-haddr, -raddr) and the member to join */
    addr hadv, radv;         /* advertised: -hadv, -radv, else as bound */
    char default_id[64];
} options;

/* Where keyval and its programs are (main.c). */
typedef struct install {
    char bindir[PATH_MAX], etcdir[PATH_MAX], cgidir[PATH_MAX];
    char raftd[PATH_MAX + 64], socat[PATH_MAX + 64], lighttpd[PATH_MAX + 64], curl[PATH_MAX + 64];
} install;

/* The files of DATADIR (main.c). */
typedef struct paths {
    char datadir[PATH_MAX];
    char sock[PATH_MAX + 32], peersock[PATH_MAX + 32], conf[PATH_MAX + 32], dbpath[PATH_MAX + 32],
        marker[PATH_MAX + 32], www[PATH_MAX + 32], tmpdir[PATH_MAX + 32],
        lighttpd_log[PATH_MAX + 32], secpath[PATH_MAX + 32], htpasswd[PATH_MAX + 32],
        curlrc[PATH_MAX + 32], lock[PATH_MAX + 32], raftd_pid[PATH_MAX + 32];
    char httpsock[PATH_MAX + 32]; /* -fast: lighttpd listens here, behind raftd */
} paths;

/* Peer TLS files and how -join reaches the member (security.c). */
typedef struct security {
    char tls_ca[PATH_MAX], tls_crt[PATH_MAX], tls_key[PATH_MAX]; /* -peer-tls */
    const char *join_scheme;                                     /* "http", "https" */
    char join_cacert[PATH_MAX];                                  /* "" or --cacert */
    char join_curlrc[PATH_MAX + 32];                             /* "" or curl -K */
} security;

/* options.c */
void usage(FILE *f);
/* Parses and checks argv into o. Returns -1 to go on, else the exit status
 * (0 after -h, 2 on a usage error, the message printed). */
int options_parse(int argc, char **argv, options *o);

/* util.c: messages (stdout "keyval: ..." and stderr), clock, files. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long now_ms(void);
int mkdirs(const char *path, mode_t mode);
int file_exists(const char *path);
char *read_small(const char *path, size_t max);
int write_file(const char *path, const char *text, mode_t mode);
int find_dir(const char *bindir, const char *rel1, const char *rel2, const char *probe, char *out,
             size_t outlen);
void find_prog(const char *env, const char *bindir, const char *name, char *out, size_t outlen);

/* config.c: lighttpd's configuration in DATADIR. */
int config_safe(const char *s);
int config_write(const options *o, const install *in, const paths *p);
/* The HTTP connections a node holds (lighttpd's server.max-connections). */
unsigned long long http_max_conns(void);
int node_conf_write(const options *o, const paths *p, const security *sec);

/* ui.c: DATADIR/lighttpd-ui.conf, the web console at /ui/ (or off). */
int ui_conf_write(const options *o, const install *in, const paths *p);

/* security.c: checks the security options' files and writes
 * lighttpd-security.conf, htpasswd and join.curlrc. 0, or -1 (printed). */
int security_setup(const options *o, const install *in, const paths *p, security *sec);

/* children.c: starting, supervising and stopping raftd, socat, lighttpd. */
void supervise_init(const char *lighttpd_log);
int supervise_fd(void);    /* readable when a signal or a child's exit came */
void wait_event(int ms);   /* up to ms (-1: no limit) for one of those */
void check_children(void); /* exits when asked to stop or a child died */
_Noreturn void finish(int code);
_Noreturn void supervise(void);
pid_t start_raftd(const options *o, const install *in, const paths *p, const security *sec,
                  int bootstrap);
void start_socat(const options *o, const install *in, const paths *p, const security *sec);
void start_lighttpd(const install *in, const paths *p);

/* ready.c: waiting until the children serve. */
int tcp_listening(const char *host, int port);
void wait_raftd(const char *sock, char *node_id, size_t cap, int *removed);
void wait_tcp(const char *what, const char *host, int port);
/* Like wait_tcp, for a UNIX socket that must accept a connection. */
void wait_unix(const char *what, const char *path);
/* A listening TCP socket (non-blocking, close-on-exec) on host:port, for
 * raftd (-fast); -1 (printed). */
int tcp_listen(const char *host, int port);

/* join.c: asking a member (-join) to add this node. */
/* Says "joined the cluster" (and writes marker) only once the leader has
 * replicated to this node (its raftd at sock has applied the join). */
void join_cluster(const options *o, const install *in, const security *sec, const char *node_id,
                  const char *marker, const char *sock);

#endif
