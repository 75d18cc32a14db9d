/*
 * key-put - CGI: PUT /key/K with the raw request body as the value.
 * If-Match: "N" sets only when K was last modified at index N;
 * If-Match: * only when K exists; If-None-Match: * only when K does not
 * exist (412 otherwise). ?lease=ID attaches K to lease ID (404 when there
 * is no such lease). Replies {"index":N} with ETag: "N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-put"

#define ROUTE CGI_ROUTE_PUT

static int handle(void)
{
    cgi_keyw_handle(PROG, ROUTE);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
