/*
 * cgi_main.h - run one CGI handler under plain CGI or as a FastCGI
 * application.
 *
 * Each program in cgi-bin/ is written as a handler for one request: it
 * reads the request from getenv() and cgi_read_body(), and writes the
 * response to stdout. cgi_main() runs it:
 *
 *   - under plain CGI (mod_cgi; stdin is not a listening socket) once;
 *   - under FastCGI (lighttpd's mod_fastcgi started the program with a
 *     listening socket on stdin) once per request, in a loop, with environ
 *     set to the request's parameters, the body read from the FastCGI
 *     stream and stdout captured and sent back as the FastCGI reply.
 *
 * Built without libfcgi (KEYVAL_HAVE_FCGI undefined), it is plain CGI only.
 * A resident FastCGI program keeps its raftd.sock connection open across
 * requests (cgi_call_raftd).
 */
#ifndef KEYVAL_CGI_MAIN_H
#define KEYVAL_CGI_MAIN_H

/* Runs handle once per request; returns the process exit status. */
int cgi_main(int (*handle)(void));

/* Nonzero while serving a FastCGI request. */
int cgi_is_fastcgi(void);

#endif
