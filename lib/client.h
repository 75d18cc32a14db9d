/*
 * client.h - talk to raftd over DATADIR/raftd.sock (docs/client-protocol.md).
 *
 * One request: connect, send one JSON object as one line, read one reply
 * line (bounded by CLIENT_REPLY_MAX), parse it, close. Every step is bounded
 * by one overall deadline. Used by the CGI programs and the kv-* tools.
 * No calls into the Raft core or storage: this links on its own.
 */
#ifndef KEYVAL_CLIENT_H
#define KEYVAL_CLIENT_H

#include <stddef.h>
#include <jansson.h>

/* Largest reply line accepted from raftd, in bytes. */
#define CLIENT_REPLY_MAX (64u * 1024u * 1024u)
/* Largest request line sent (raftd's documented limit). */
#define CLIENT_REQUEST_MAX (16u * 1024u * 1024u)
/* Default overall timeout of one request, in milliseconds. It is longer
 * than raftd's own request timeout so that raftd's 503 reaches the user. */
#define CLIENT_TIMEOUT_MS 15000
/* Timeout of a status or metrics request: raftd answers those at once, so
 * a raftd that says nothing for this long is not answering (a paused or
 * wedged daemon), and GET /health and /status say so quickly. */
#define CLIENT_STATUS_TIMEOUT_MS 3000

/* Sends req (a JSON object) to the raftd socket at sockpath and waits at
 * most timeout_ms (<= 0: CLIENT_TIMEOUT_MS) for the reply. On success
 * returns 0 and stores the reply object in *reply (caller json_decref's it);
 * the reply has an integer "code" member. On failure returns -1, *reply is
 * NULL and err holds a one-line reason ("connect /x/raftd.sock: No such
 * file or directory", "no reply ... within 15000 ms", ...); returns -2
 * (nothing sent) when the encoded request exceeds CLIENT_REQUEST_MAX;
 * returns -3 (CLIENT_SENT) when the failure came after some or all of the
 * request was sent (no reply, closed, timed out): raftd may have acted on
 * it, so a write's outcome is unknown. -1 means nothing was sent. */
#define CLIENT_SENT (-3)
int client_request(const char *sockpath, json_t *req, int timeout_ms, json_t **reply, char *err,
                   size_t errlen);

/* Like client_request, over a connection kept in *keep (-1: none yet).
 * An idle kept connection that raftd closed (restart) is replaced by a
 * new one before anything is sent; after a reply the connection stays
 * open in *keep; after any failure it is closed and *keep is -1. With
 * keep NULL this is client_request. */
int client_request_keep(int *keep, const char *sockpath, json_t *req, int timeout_ms,
                        json_t **reply, char *err, size_t errlen);

/* Returns the reply's HTTP status ("code"), or 502 when missing/invalid. */
/* A jansson parse error in plain words, for a user: NUL bytes and
 * duplicate keys named as such (not by jansson's flag names), the syntax
 * errors in jansson's own text with where they are. Returns buf. */
const char *client_json_why(const json_error_t *e, char *buf, size_t cap);

int client_reply_code(const json_t *reply);

/* Request timeout from $KEYVAL_TIMEOUT_MS when set to 1..600000, else
 * CLIENT_TIMEOUT_MS. */
int client_timeout_from_env(void);

/* Chooses the raftd socket for the kv-* tools, first that applies:
 * sock (-s PATH), datadir (-d DATADIR: DATADIR/raftd.sock), $KEYVAL_SOCKET,
 * $KEYVAL_DATADIR/raftd.sock, $HOME/node0/raftd.sock (the seed's first
 * node). Returns 0, or -1 when the result does not fit in out. */
int client_socket_path(const char *sock, const char *datadir, char *out, size_t outlen);

/* The socket options of the kv-* tools: -s SOCKET and -d DATADIR. */
struct client_sockopt {
    const char *sock;    /* -s SOCKET, or NULL */
    const char *datadir; /* -d DATADIR, or NULL */
};

/* Their lines in the tools' -h text (kv-bench words its own). */
#define CLIENT_SOCKOPT_USAGE \
    "  -s SOCKET   raftd socket to use\n" \
    "  -d DATADIR  use DATADIR/raftd.sock\n" \
    "              default: $KEYVAL_SOCKET, else $KEYVAL_DATADIR/raftd.sock,\n" \
    "              else $HOME/node0/raftd.sock\n"

/* For an option loop: when opt is 's' or 'd', stores arg in *o and
 * returns 1; otherwise returns 0 and leaves *o alone. */
int client_sockopt_take(struct client_sockopt *o, int opt, const char *arg);

/* client_socket_path of *o. On failure prints "PROG: socket path too
 * long" on stderr and returns -1 (the tools then exit 2). */
int client_sockopt_path(const struct client_sockopt *o, const char *prog, char *out, size_t outlen);

/* ---- streaming calls (lib/client_stream.c): a watch on raftd.sock ----
 *
 * Open: connect, send one request line, read the first reply line (all
 * within timeout_ms), then read the lines that follow one at a time, each
 * at most CLIENT_EVENT_MAX bytes, with a deadline per call or none. Used
 * by the watch CGI program and kv-watch. */

/* Largest event line accepted after the first reply: a 1 MiB value may
 * take up to 6 MiB JSON-escaped, plus the key. */
#define CLIENT_EVENT_MAX (8u * 1024u * 1024u)

typedef struct client_stream client_stream;

/* Returns the open stream and the first reply in *first (caller decref's;
 * it has an integer "code": the caller decides whether events follow), or
 * NULL with *first NULL and err set (nothing worth keeping). */
client_stream *client_stream_open(const char *sockpath, json_t *req, int timeout_ms, json_t **first,
                                  char *err, size_t errlen);

/* The next line, without its newline, NUL-terminated in *line (valid until
 * the next call) of *len bytes. timeout_ms < 0 waits for ever, 0 only
 * takes what is already there. Returns 1 a line, 0 timed out, -1 the
 * stream ended (raftd closed it: err "closed") or failed (err says why;
 * a line above CLIENT_EVENT_MAX is a failure). */
int client_stream_next(client_stream *s, int timeout_ms, const char **line, size_t *len, char *err,
                       size_t errlen);

/* The socket, to poll it beside other descriptors. A line may already be
 * buffered: call client_stream_next(s, 0, ...) before waiting on it. */
int client_stream_fd(const client_stream *s);

/* Closes the connection (raftd drops the watch) and frees s (NULL ok). */
void client_stream_close(client_stream *s);

/* ---- the coordination tools' calls (lib/client_tool.c) ----
 * Exit statuses of kv-watch, kv-lease and kv-lock, as s6's tools. */
#define TOOL_OK 0
#define TOOL_NO 1 /* a negative answer: not found, not acquired */
#define TOOL_USAGE 2
#define TOOL_UNKNOWN 5 /* a write was sent, its outcome is not known */
#define TOOL_TEMP 111  /* temporary failure: raftd unreachable, 503 */

/* client_request for a tool: 0 with *reply (any code) when raftd
 * answered; otherwise prints "PROG: ..." on stderr and returns TOOL_TEMP,
 * or TOOL_UNKNOWN when a write (is_write) was sent; *reply is NULL then.
 * An answer 503 with "outcome":"unknown" is TOOL_UNKNOWN too (printed). */
int client_tool_call(const char *prog, const char *sock, json_t *req, int is_write, int timeout_ms,
                     json_t **reply);

/* Prints "PROG: WHAT: error (HTTP code)" for a reply that is not 200 and
 * returns the tool's status: TOOL_NO for 404, TOOL_TEMP for 5xx, else
 * TOOL_NO. */
int client_tool_refused(const char *prog, const char *what, const json_t *reply);

#endif
