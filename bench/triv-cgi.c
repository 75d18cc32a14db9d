/* triv-cgi - the smallest CGI answer: the floor of a mod_cgi request. */
#include <stdio.h>

int main(void)
{
    fputs("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{}", stdout);
    return 0;
}
