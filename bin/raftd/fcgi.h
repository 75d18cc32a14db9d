/*
 * fcgi.h - raftd's FastCGI responder (fcgi.c: connections and records on
 * fcgi.sock) and the HTTP routes it answers itself (http_fast.c).
 */
#ifndef RAFTD_FCGI_H
#define RAFTD_FCGI_H

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

typedef struct fconn { /* a connection on fcgi.sock */
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    unsigned id; /* request in progress (from BEGIN_REQUEST), 0 none */
    int keep;    /* FCGI_KEEP_CONN: the connection outlives the request */
    int params_done, started;
    char *params;
    size_t params_len;
    char *body;
    size_t body_len, body_cap;
    int body_over; /* more than CGI_BODY_MAX came: only the length counts */
    client cl;     /* the request's side in raftd: its answers come to fcgi_sink */
    hreq h;
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
/* The value of param name (NUL-terminated in *out, up to cap-1 bytes):
 * 1 found, 0 absent. */
int fcgi_param(const fconn *c, const char *name, char *out, size_t cap);
/* Queue a complete CGI-style answer (Status:, headers, body) as STDOUT
 * records and END_REQUEST; the request is done. */
void fcgi_answer(struct raftd *d, fconn *c, const char *s, size_t n);

/* http_fast.c */
/* Start the request of c (params and body complete). */
void http_fast_start(struct raftd *d, fconn *c);
/* raftd's reply text (a JSON object) to c's request: its HTTP answer. */
void http_fast_reply(struct raftd *d, fconn *c, const char *s, size_t n);

#endif
