/*
 * ui.c - the web console's lighttpd configuration: writes
 * DATADIR/lighttpd-ui.conf (included at the end of lighttpd.conf), which
 * serves the static files of ETCDIR/ui (share/keyval/ui when installed)
 * at /ui/ with a Content-Security-Policy, or only a comment with -ui off.
 */
#include "keyval.h"

#include <errno.h>
#include <string.h>

/* The policy: the page's own scripts, styles and requests only; nothing
 * inline (no <script> bodies, no style attributes), no frames, no forms
 * posting elsewhere. */
#define UI_CSP \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The console's routes. GET/HEAD /ui/ and /ui/NAME.(html|css|js) are files
 * of the ui directory; POST /ui/rights is the rights probe (docs/console.md):
 * a user who may not write gets 403 from lighttpd-security.conf's rule for
 * every method but GET/HEAD, anyone else rights.json. Any other request
 * under /ui goes to route-error (404/405). Placed after the method blocks
 * of lighttpd.conf, this url.rewrite-once replaces theirs for /ui. */
static const char ui_conf_fmt[] =
    "# Written by keyval at each start: the web console at /ui/ (keyval -ui).\n"
    "$HTTP[\"url\"] =~ \"^/ui(/|$|\\?)\" {\n"
    "    url.rewrite-once = ( \"^.*$\" => \"/.kv-cgi/route-error\" )\n"
    "    $HTTP[\"request-method\"] =~ \"^(GET|HEAD)$\" {\n"
    "        url.rewrite-once = (\n"
    "            \"^/ui/?(\\?.*)?$\" => \"/.kv-ui/index.html\",\n"
    "            \"^/ui/([a-z]+\\.(html|css|js))(\\?.*)?$\" => \"/.kv-ui/$1\",\n"
    "            \"^.*$\" => \"/.kv-cgi/route-error\",\n"
    "        )\n"
    "    }\n"
    "    $HTTP[\"request-method\"] == \"POST\" {\n"
    "        url.rewrite-once = (\n"
    "            \"^/ui/rights(\\?.*)?$\" => \"/.kv-ui/rights.json\",\n"
    "            \"^.*$\" => \"/.kv-cgi/route-error\",\n"
    "        )\n"
    "    }\n"
    "}\n"
    "$HTTP[\"url\"] =~ \"^/\\.kv-ui/\" {\n"
    "    alias.url = ( \"/.kv-ui/\" => \"%s/\" )\n"
    "    mimetype.assign = (\n"
    "        \".html\" => \"text/html; charset=utf-8\",\n"
    "        \".css\" => \"text/css; charset=utf-8\",\n"
    "        \".js\" => \"text/javascript; charset=utf-8\",\n"
    "        \".json\" => \"application/json\",\n"
    "    )\n"
    "    setenv.add-response-header = (\n"
    "        \"Content-Security-Policy\" => \"" UI_CSP "\",\n"
    "        \"X-Content-Type-Options\" => \"nosniff\",\n"
    "        \"Referrer-Policy\" => \"no-referrer\",\n"
    "        \"Cache-Control\" => \"no-cache\",\n"
    "    )\n"
    "}\n";

int ui_conf_write(const options *o, const install *in, const paths *p)
{
    char path[PATH_MAX + 32], dir[PATH_MAX + 8], text[4096 + PATH_MAX];
    snprintf(path, sizeof path, "%s/lighttpd-ui.conf", p->datadir);
    snprintf(dir, sizeof dir, "%s/ui", in->etcdir);
    if (o->ui_off) {
        snprintf(text, sizeof text,
                 "# Written by keyval at each start: the web console is off (-ui off);\n"
                 "# /ui/ answers 404 like any unknown path.\n");
    } else {
        if (!file_exists(dir)) {
            die_msg("web console files %s are missing (reinstall keyval, or run with -ui off)",
                    dir);
            return -1;
        }
        snprintf(text, sizeof text, ui_conf_fmt, dir);
    }
    if (write_file(path, text, 0600) < 0) {
        die_msg("write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
