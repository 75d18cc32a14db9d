/*
 * fcgi.h - the HTTP routes raftd answers itself (http_fast.c), over
 * two transports: FastCGI from lighttpd on fcgi.sock (fcgi.c, keyval
 * -fastcgi) and HTTP on the node's own port (http_front.c, keyval -fast).
 */
#ifndef RAFTD_FCGI_H
#define RAFTD_FCGI_H

#include "http_head.h"
#include "raftd.h"

#define FCGI_PARAMS_MAX (64u * 1024u) /* a request's PARAMS stream */
#define FCGI_OUT_MAX (1u << 20)       /* queued output before input waits */
#define FCGI_CONNS_MAX 1024

/* One request's HTTP side (http_fast.c). */
typedef struct hreq {
    int kind; /* HR_GET, HR_WRITE */
    int sets; /* a write that sets a key: ETag in the answer */
    char key[KV_KEY_MAX + 2];
    size_t klen;
    char inm[8192]; /* If-None-Match of a GET (lighttpd: headers <= 8 KiB) */
    int has_inm;
} hreq;
enum { HR_NONE, HR_GET, HR_WRITE };

/* One request as http_fast.c sees it, whatever carried it. The transport
 * fills in param, answer, the body and d; live from the start of the
 * request to its answer. */
typedef struct fastreq {
    /* The value of CGI variable name (REQUEST_METHOD, REQUEST_URI,
     * CONTENT_LENGTH, HTTP_IF_MATCH, ...) NUL-terminated in out (up to
     * cap-1 bytes): 1 found, 0 absent. */
    int (*param)(const struct fastreq *r, const char *name, char *out, size_t cap);
    /* Take a complete CGI-style answer (Status:, headers, body). */
    void (*answer)(struct raftd *d, struct fastreq *r, const char *s, size_t n);
    struct raftd *d;
    const char *body;
    size_t body_len;
    int body_over; /* more than CGI_BODY_MAX came: only the length counts */
    int live;
    client cl; /* the request's side in raftd: its answers come to fastreq_sink */
    hreq h;
} fastreq;

typedef struct fconn { /* a connection on fcgi.sock */
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    outbuf out;
    unsigned id; /* request in progress (from BEGIN_REQUEST), 0 none */
    int keep;    /* FCGI_KEEP_CONN: the connection outlives the request */
    int params_done, started;
    char *params;
    size_t params_len;
    char *body;
    size_t body_len, body_cap;
    int body_over; /* more than CGI_BODY_MAX came: only the length counts */
    fastreq r;
    int dead, closing;
    uint64_t last;
    struct fconn *next;
} fconn;

/* fcgi.c */
void fcgi_boot(struct raftd *d);
void fcgi_close_all(struct raftd *d);
void fcgi_sweep(struct raftd *d);
/* A connection on fd (not yet in the loop); NULL when out of memory. */
fconn *fcgi_conn_new(struct raftd *d, int fd);
/* Take up to n bytes of p as if read from c's socket; returns how many
 * were taken (its buffer holds one whole record at most). */
size_t fcgi_feed(struct raftd *d, fconn *c, const uint8_t *p, size_t n);
/* Close c's socket and free it (c may be NULL). */
void fcgi_conn_free(struct raftd *d, fconn *c);

#define HF_BODY_MAX (64u * 1024u) /* larger bodies go to lighttpd */
#define HF_IN_CAP (HTTP_HEAD_MAX + HF_BODY_MAX)

typedef struct hconn { /* a connection on the HTTP port (http_front.c) */
    int fd;
    int back; /* lighttpd's socket once the connection is handed over, else -1 */
    char *in; /* from the client, not yet answered or passed on */
    size_t in_len;
    outbuf out; /* to the client */
    fastreq r;
    http_head head; /* of r's request (spans into in) */
    size_t req_len; /* its head and body */
    int busy;       /* r is with raftd */
    int keep, head_only, minor;
    int eof, back_eof, back_shut;
    int dead, closing, in_process;
    int stalled;   /* in holds the start of a request, not all of it */
    int pipelined; /* in holds a request to start at the end of the turn */
    uint64_t last; /* last byte moved */
    struct hconn *next;
} hconn;

/* http_front.c */
/* A connection on fd (not yet in the loop); NULL when out of memory. */
hconn *http_front_conn_new(struct raftd *d, int fd);
/* Take up to n bytes of p as if read from c's socket; returns how many
 * were taken (0: its buffer is full until a request is answered). */
size_t http_front_feed(struct raftd *d, hconn *c, const uint8_t *p, size_t n);
/* Close c's sockets and free it. */
void http_front_conn_free(struct raftd *d, hconn *c);
void http_front_boot(struct raftd *d);
void http_front_close_all(struct raftd *d);
void http_front_sweep(struct raftd *d);

/* http_fast.c */
/* Set up r for a transport (param and answer), with no request live. */
void fastreq_init(fastreq *r, struct raftd *d,
                  int (*param)(const fastreq *, const char *, char *, size_t),
                  void (*answer)(struct raftd *, fastreq *, const char *, size_t));
/* Start r's request (params and body complete): r->answer gets its
 * answer, now or from a later turn. */
void http_fast_start(fastreq *r);
/* The request is gone (its client left): no answer. */
void http_fast_drop(fastreq *r);

#endif
