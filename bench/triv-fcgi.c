/* triv-fcgi - the smallest FastCGI answer: the floor of a request through
 * lighttpd's mod_fastcgi to a resident program (libfcgi, as key-get). */
#include <fcgiapp.h>

int main(void)
{
    FCGX_Stream *in, *out, *err;
    FCGX_ParamArray envp;
    while (FCGX_Accept(&in, &out, &err, &envp) >= 0)
        FCGX_PutS("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{}", out);
    return 0;
}
