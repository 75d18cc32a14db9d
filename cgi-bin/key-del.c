/*
 * key-del - CGI: DELETE /key/K (If-Match: "N" deletes only when K was last
 * modified at index N, else 412; If-Match: * only when K exists;
 * If-None-Match: * only when it does not). Replies {"index":N}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_main.h"

#define PROG "key-del"

#define ROUTE CGI_ROUTE_DEL

static int handle(void)
{
    cgi_keyw_handle(PROG, ROUTE);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
