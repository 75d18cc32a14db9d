#!/bin/sh
# The web console (/ui/, docs/console.md) in a real browser: Debian's
# chromium driven headless by playwright-core (tests/browser/ui-test.js)
# against a 3-node cluster with basic authentication (n0 mod_cgi, n1
# -fastcgi): three members and the leader listed, a killed follower shown
# down (the time printed as a figure), keys created and edited through
# the page as curl sees them, a stale edit shown as a conflict, a hostile
# key rendered as text, live updates from the watch stream, a read-only
# user without edit controls. With curl: the files and their
# Content-Security-Policy in both modes and over HTTPS, the rights probe,
# -ui off answering 404. Screenshots: $BUILD/test-logs/ui-*.png.
# The browser part skips (saying so) only when no browser can be installed
# (tests/deps.sh); the curl checks run anyway.
. "$(dirname "$0")/helpers.inc"
require_ports 27600 27601 27602 27603 27604 27610 27611 27612 27613 27614
BROWSER_DIR=$(cd "$(dirname "$0")/../browser" && pwd)

have_browser() {
    [ -x /usr/bin/chromium ] && command -v node >/dev/null 2>&1 &&
        [ -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]
}
if ! have_browser; then
    echo "ui: chromium, node or playwright-core missing: running tests/deps.sh"
    sh "$(dirname "$0")/../deps.sh" >"$T/deps.log" 2>&1 || tail -n 5 "$T/deps.log"
fi
SHOTS=$BUILD/test-logs
mkdir -p "$SHOTS"

hr=$(openssl passwd -6 -salt readsalt "read secret")
hw=$(openssl passwd -6 -salt writsalt "write secret")
printf 'reader:%s:ro\nwriter:%s:rw\n' "$hr" "$hw" >"$T/users"
printf 'writer:write secret\n' >"$T/join-auth"
R="reader:read secret"
W="writer:write secret"

start_node n0 -id n0 -haddr localhost:27600 -raddr localhost:27610 -auth-file "$T/users" "$T/n0"
leads() { [ "$(curl -s -m 2 -u "$W" http://127.0.0.1:27600/status | jq -r .state)" = leader ]; }
if ! wait_until 20 leads; then
    bad n0_leads "$(tail -n 5 "$T/n0.log")"
    finish
fi
start_node n1 -id n1 -haddr localhost:27601 -raddr localhost:27611 -auth-file "$T/users" \
    -fastcgi -join localhost:27600 -join-auth "$T/join-auth" "$T/n1"
start_node n2 -id n2 -haddr localhost:27602 -raddr localhost:27612 -auth-file "$T/users" \
    -join localhost:27600 -join-auth "$T/join-auth" "$T/n2"
three() {
    [ "$(curl -s -m 2 -u "$W" http://127.0.0.1:27600/status |
        jq '[.nodes[] | select(.voter and .active)] | length')" = 3 ] &&
        grep -q "joined the cluster" "$T/n1.log" && grep -q "joined the cluster" "$T/n2.log"
}
if wait_until 40 three; then
    ok three_nodes
else
    bad three_nodes "$(curl -s -u "$W" http://127.0.0.1:27600/status | jq -c .nodes)"
    finish
fi

# ucurl USER|- METHOD PORT PATH: sets HTTP_CODE, BODY and $T/headers.
ucurl() {
    _u_a="" _u_d=""
    [ "$1" != - ] && _u_a="$1"
    [ $# -ge 5 ] && _u_d=1
    HTTP_CODE=$(curl -s -m 10 ${_u_a:+-u "$_u_a"} -X "$2" -D "$T/headers" -o "$T/body" \
        -w '%{http_code}' ${_u_d:+--data-binary "$5"} "http://127.0.0.1:$3$4")
    BODY=$(cat "$T/body" 2>/dev/null)
}
header() { grep -i "^$1:" "$T/headers" | sed 's/^[^:]*: *//' | tr -d '\r'; }
csp_ok() {
    _c=$(header Content-Security-Policy)
    echo "$_c" | grep -q "script-src 'self'" && echo "$_c" | grep -q "style-src 'self'" &&
        ! echo "$_c" | grep -q "unsafe-inline"
}
for p in 27600 27601; do
    ucurl "$R" GET $p /ui/
    check "ui_page_$p" sh -c '[ "$1" = 200 ] && echo "$2" | grep -q "<title>keyval console"' - "$HTTP_CODE" "$BODY"
    check "ui_page_html_$p" sh -c 'echo "$1" | grep -q "^text/html"' - "$(header Content-Type)"
    check "ui_csp_$p" csp_ok
    ucurl "$R" GET $p /ui/keys.js
    check "ui_script_$p" sh -c '[ "$1" = 200 ] && echo "$2" | grep -q "^text/javascript"' - "$HTTP_CODE" "$(header Content-Type)"
done
ucurl - GET 27600 /ui/
check ui_needs_credentials [ "$HTTP_CODE" = 401 ]
ucurl "$R" GET 27600 /ui/nope.txt
check ui_unknown_file_404 [ "$HTTP_CODE" = 404 ]
ucurl "$R" GET 27600 /ui/../raft.db
check ui_no_escape_404 [ "$HTTP_CODE" = 404 ]
ucurl "$R" POST 27600 /ui/rights ""
check rights_reader_403 [ "$HTTP_CODE" = 403 ]
ucurl "$W" POST 27601 /ui/rights ""
check rights_writer_200 sh -c '[ "$1" = 200 ] && [ "$2" = "{\"write\":true}" ]' - "$HTTP_CODE" "$BODY"

# The browser. n2 is the follower it kills (all its processes, by PID).
if have_browser; then
    kill_pids="$pid_n2 $(children_of "$pid_n2")"
    UI_BASE=http://127.0.0.1:27600 UI_RW="$W" UI_RO="$R" UI_FOLLOWER=n2 UI_KILL="$kill_pids" \
        UI_SHOTS="$SHOTS" NODE_PATH="$BROWSER_DIR/node_modules" \
        timeout 180 node "$BROWSER_DIR/ui-test.js" >"$T/browser.out" 2>&1
    brc=$?
    wait "$pid_n2" 2>/dev/null
    cat "$T/browser.out"
    passed=$((passed + $(grep -c '^ok ' "$T/browser.out")))
    failed=$((failed + $(grep -c '^FAIL ' "$T/browser.out")))
    check browser_ran sh -c '[ "$1" = 0 ] && grep -q "^browser: all checks done" "$2"' - "$brc" "$T/browser.out"
    for s in ui-cluster ui-keys; do
        check "screenshot_$s" [ -s "$SHOTS/$s.png" ]
    done
    echo "screenshots: $SHOTS/ui-*.png"
else
    echo "SKIP browser: no browser could be installed (needs /usr/bin/chromium, node and"
    echo "SKIP browser: $BROWSER_DIR/node_modules/playwright-core; see tests/deps.sh);"
    echo "SKIP browser: only the curl checks of the console ran"
fi

# -ui off: /ui/ is an unknown path; the API is unchanged.
start_node n3 -id n3 -haddr localhost:27603 -raddr localhost:27613 -ui off "$T/n3"
if wait_until 20 sh -c '[ "$(curl -s -m 2 http://127.0.0.1:27603/status | jq -r .state)" = leader ]'; then
    ucurl - GET 27603 /ui/
    check ui_off_404 sh -c '[ "$1" = 404 ] && [ "$2" = "{\"error\":\"not found\"}" ]' - "$HTTP_CODE" "$BODY"
    check ui_off_conf grep -q "console is off" "$T/n3/lighttpd-ui.conf"
else
    bad ui_off_node "$(tail -n 5 "$T/n3.log")"
fi
"$KEYVAL" -ui maybe "$T/bad" >"$T/bad.out" 2>&1
check ui_bad_value_usage sh -c '[ "$1" = 2 ] && grep -q "bad -ui maybe" "$2"' - "$?" "$T/bad.out"

# HTTPS: the same page and policy.
if "$BUILD/bin/kv-certs" "$T/certs" n4 >"$T/certs.log" 2>&1; then
    start_node n4 -id n4 -haddr localhost:27604 -raddr localhost:27614 \
        -https-cert "$T/certs/n4/node.crt" -https-key "$T/certs/n4/node.key" "$T/n4"
    hs() { curl -s -m 5 --cacert "$T/certs/ca.crt" -D "$T/headers" -o "$T/body" -w '%{http_code}' "https://localhost:27604$1"; }
    hs_leads() { [ "$(curl -s -m 2 --cacert "$T/certs/ca.crt" https://localhost:27604/status | jq -r .state)" = leader ]; }
    if wait_until 30 hs_leads; then
        check ui_https_page [ "$(hs /ui/)" = 200 ]
        check ui_https_csp csp_ok
    else
        bad ui_https_node "$(tail -n 5 "$T/n4.log")"
    fi
else
    bad kv_certs "$(cat "$T/certs.log")"
fi
finish
