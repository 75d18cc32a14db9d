#!/bin/sh
# keyval -fastcgi: the walkthrough's checks with the HTTP programs resident
# under lighttpd's mod_fastcgi (ports 19060-19062 HTTP, 19070-19072 Raft).
# Three nodes; set and get; 404; a write through a follower is forwarded;
# stale and linearizable reads on every node; the same program processes
# serve request after request (no new process per request) and keep one
# raftd.sock connection each; a body that is not JSON gets 400; a killed
# resident program is replaced and requests go on.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 19060 19061 19062 19070 19071 19072

start_node f0 -fastcgi -id f0 -haddr 127.0.0.1:19060 -raddr 127.0.0.1:19070 "$T/f0"
if wait_until 20 is_leader 19060; then
    ok fastcgi_node_leads
else
    bad fastcgi_node_leads "no leader on :19060 within 20 s"
    finish
fi
check config_uses_fastcgi grep -q 'lighttpd-fastcgi.conf' "$T/f0/lighttpd.conf"

expect_post set_user1 19060 /key '{"user1": "batman"}'
expect_body get_user1 19060 /key/user1 '{"user1":"batman"}'
http_get 19060 /key/nobody
check missing_key_404 [ "$HTTP_CODE" = 404 ] && check missing_key_body [ "$BODY" = '{"error":"key not found"}' ]
http_post 19060 /key 'not json'
check bad_json_400 [ "$HTTP_CODE" = 400 ]
http_get 19060 /nowhere
check route_error_404 [ "$HTTP_CODE" = 404 ]

start_node f1 -fastcgi -id f1 -haddr 127.0.0.1:19061 -raddr 127.0.0.1:19071 -join 127.0.0.1:19060 "$T/f1"
start_node f2 -fastcgi -id f2 -haddr 127.0.0.1:19062 -raddr 127.0.0.1:19072 -join 127.0.0.1:19060 "$T/f2"
three_voters() { [ "$(status_field 19060 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if wait_until 30 three_voters; then
    ok two_nodes_join
else
    bad two_nodes_join "$(status_field 19060 -c .nodes)"
fi

# A write through a follower is forwarded to the leader.
expect_post forwarded_write 19061 /key '{"user2": "robin"}'
for p in 19060 19061 19062; do
    expect_body "get_user2_on_$p" $p /key/user2 '{"user2":"robin"}'
    if wait_until 10 body_is $p '/key/user1?level=stale' '{"user1":"batman"}'; then
        ok "stale_read_on_$p"
    else
        bad "stale_read_on_$p" "$HTTP_CODE $BODY"
    fi
done

# /health reaches the resident status program under its own path
# (/.kv-cgi/status/health, so that -auth-file can leave it open).
http_get 19060 /health
check health_under_fastcgi sh -c '[ "$1" = 200 ] && [ "$(printf %s "$2" | jq -r .status)" = ok ]' - "$HTTP_CODE" "$BODY"
http_get 19060 /status
check status_under_fastcgi [ "$HTTP_CODE" = 200 ]

# GET, PUT and DELETE /key/K and POST /key are answered by raftd itself on fcgi.sock: no
# key-get process exists (key-put and key-del run, idle, for If-Match: *),
# and raftd counts the requests.
lpid=$(ps -o pid=,comm= --ppid "$pid_f0" | awk '$2 == "lighttpd" { print $1 }')
progs() { ps -o pid=,comm= --ppid "$lpid" | awk -v n="$1" '$2 == n { print $1 }' | sort | tr '\n' ' '; }
fcgi_count() { curl -s "http://127.0.0.1:19060/metrics" | awk '$1 == "keyval_fcgi_requests_total" { print $2 }'; }
n0=$(fcgi_count)
i=0
while [ $i -lt 20 ]; do http_get 19060 /key/user1; i=$((i + 1)); done
check get_after_20_requests [ "$HTTP_CODE" = 200 ]
n1=$(fcgi_count)
check raftd_answered_the_gets sh -c '[ -n "$1" ] && [ "$2" -ge $(($1 + 20)) ]' - "$n0" "$n1"
check no_key_get_program [ -z "$(progs key-get)" ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary v9 http://127.0.0.1:19060/key/fast9)
check put_answered [ "$code" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE http://127.0.0.1:19060/key/fast9)
check delete_answered [ "$code" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{"fast8":"v8"}' \
    http://127.0.0.1:19060/key)
check post_answered [ "$code" = 200 ]
n2=$(fcgi_count)
check raftd_answered_put_post_delete [ "$n2" -ge $((n1 + 3)) ]
# If-Match: * needs a read and a write: key-put does it, resident.
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-Match: *' --data-binary x \
    http://127.0.0.1:19060/key/user1)
check if_match_star_put [ "$code" = 200 ]
check if_match_star_by_program [ "$(fcgi_count)" = "$n2" ]

# raftd's FastCGI socket itself: GET_VALUES says one request per
# connection; a malformed record closes that connection only.
vals=$(printf '\001\011\000\000\000\021\000\000\017\000FCGI_MPXS_CONNS' |
    socat -t 2 - "UNIX-CONNECT:$T/f0/fcgi.sock" | tr -c 'A-Z_0-9' '.')
check fcgi_get_values_no_mpx sh -c 'printf %s "$1" | grep -q FCGI_MPXS_CONNS0' - "$vals"
printf 'GET / HTTP/1.0\r\n\r\n' | socat -t 2 - "UNIX-CONNECT:$T/f0/fcgi.sock" >/dev/null 2>&1
http_get 19060 /key/user1
check get_after_malformed_record sh -c '[ "$1" = 200 ] && [ "$2" = "{\"user1\":\"x\"}" ]' - "$HTTP_CODE" "$BODY"

# Resident: the key-list processes under f0's lighttpd stay the same across
# requests, and each holds at most one connection to raftd.sock.
getters() { progs key-list; }
http_get 19060 /key
before=$(getters)
check key_list_resident [ -n "$before" ]
i=0
while [ $i -lt 20 ]; do http_get 19060 /key; i=$((i + 1)); done
check list_after_20_requests [ "$HTTP_CODE" = 200 ]
after=$(getters)
check same_processes_after_20_requests [ "$before" = "$after" ]
conns_ok=1
for g in $after; do
    n=$(ls -l /proc/$g/fd 2>/dev/null | grep -c socket)
    # fd 0 (the FastCGI listener), the request connection, raftd.sock
    [ "$n" -le 3 ] || conns_ok=0
done
check one_raftd_connection_each [ $conns_ok = 1 ]

# A killed resident program is restarted by lighttpd.
victim=$(echo $after | awk '{ print $1 }')
kill -9 "$victim"
if wait_until 10 sh -c 'curl -s -o /dev/null -w %{http_code} http://127.0.0.1:19060/key | grep -qx 200'; then
    ok list_after_program_killed
else
    bad list_after_program_killed "$HTTP_CODE $BODY"
fi

# lighttpd killed -9 cannot stop its resident programs: they go with it
# (PR_SET_PDEATHSIG, lib/cgi_main.c) instead of lingering, orphaned, in
# accept; keyval sees lighttpd die and stops the node.
lpid=$(ps -o pid=,comm= --ppid "$pid_f0" | awk '$2 == "lighttpd" { print $1 }')
kids=$(ps -o pid= --ppid "$lpid" | tr '\n' ' ')
check programs_before_lighttpd_killed [ -n "$kids" ]
kill -9 "$lpid"
gone() { for k in $kids; do kill -0 "$k" 2>/dev/null && return 1; done; return 0; }
if wait_until 5 gone; then
    ok programs_exit_with_lighttpd
else
    bad programs_exit_with_lighttpd "still running: $(ps -o pid=,ppid=,comm= -p "$(echo $kids | tr ' ' ,)")"
    kill $kids 2>/dev/null
fi
finish
