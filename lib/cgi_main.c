/*
 * cgi_main.c - one handler, plain CGI or FastCGI (see cgi_main.h).
 */
#include "cgi_main.h"
#include "cgi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#ifdef KEYVAL_HAVE_FCGI
#include <fcgiapp.h>

#include <netdb.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

/* libfcgi's OS_CreateLocalIpcFd (FCGX_OpenSocket on "host:port") calls
 * gethostbyname, which glibc cannot provide to a static program without
 * its shared NSS modules; the linker warns about it. We never open a
 * socket ourselves (lighttpd hands us one on fd 0), so this stand-in only
 * keeps the static link quiet and correct. */
struct hostent *gethostbyname(const char *name)
{
    (void)name;
    h_errno = HOST_NOT_FOUND;
    return NULL;
}

static FCGX_Stream *g_in;
static int g_fastcgi;

int cgi_is_fastcgi(void)
{
    return g_fastcgi;
}

/* The request body comes from the FastCGI stream, not from fd 0. */
static ssize_t fcgi_body_read(void *buf, size_t n)
{
    if (!g_in)
        return -1;
    if (n > 1u << 30)
        n = 1u << 30;
    return FCGX_GetStr(buf, (int)n, g_in);
}

int cgi_main(int (*handle)(void))
{
    if (FCGX_IsCGI())
        return handle();
    /* Resident under lighttpd: when lighttpd dies (even by SIGKILL, which
     * gives it no time to stop us), we go too, instead of waiting in
     * accept on a socket nobody will connect to again. */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        return 0;
    if (FCGX_Init() != 0) {
        fprintf(stderr, "cgi: FCGX_Init failed\n");
        return 1;
    }
    FCGX_Request rq;
    if (FCGX_InitRequest(&rq, 0, 0) != 0) {
        fprintf(stderr, "cgi: FCGX_InitRequest failed\n");
        return 1;
    }
    g_fastcgi = 1;
    char **env0 = environ;
    FILE *out0 = stdout;
    while (FCGX_Accept_r(&rq) >= 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem) {
            FCGX_FPrintF(rq.out, "Status: 500 Internal Server Error\r\n"
                                 "Content-Type: application/json\r\n\r\n"
                                 "{\"error\":\"out of memory\"}");
            FCGX_Finish_r(&rq);
            continue;
        }
        environ = rq.envp;
        g_in = rq.in;
        cgi_body_reader = fcgi_body_read;
        stdout = mem;
        handle();
        fflush(mem);
        stdout = out0;
        cgi_body_reader = NULL;
        g_in = NULL;
        environ = env0;
        fclose(mem);
        /* Long replies go out in pieces (FCGX_PutStr takes an int). */
        for (size_t off = 0; off < len;) {
            size_t n = len - off > (1u << 30) ? (1u << 30) : len - off;
            if (FCGX_PutStr(buf + off, (int)n, rq.out) < 0)
                break;
            off += n;
        }
        free(buf);
        FCGX_Finish_r(&rq);
    }
    return 0;
}

#else

int cgi_is_fastcgi(void)
{
    return 0;
}

int cgi_main(int (*handle)(void))
{
    return handle();
}

#endif
