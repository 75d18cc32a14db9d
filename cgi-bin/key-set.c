/*
 * key-set - CGI: POST /key with a JSON object of string values.
 * Sets all keys in one atomic operation; replies {"index":N} with
 * ETag: "N". If-Match: "N" / If-None-Match: * hold for every key of the
 * body (all last changed at N / none exists); If-Match: * (exists) takes a
 * body of one key. ?lease=ID attaches them all to lease ID (404 when there
 * is no such lease; not with a condition: POST /txn does that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "cgi_coord.h"
#include "cgi_main.h"

#define PROG "key-set"

#define ROUTE CGI_ROUTE_POST

static int handle(void)
{
    cgi_keyw_handle(PROG, ROUTE);
    return 0;
}

int main(void)
{
    return cgi_main(handle);
}
