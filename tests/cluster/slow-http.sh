#!/bin/sh
# Slow HTTP clients against one keyval node (HTTP 127.0.0.1:21130, Raft
# 127.0.0.1:21131): tests/fault/kvflood opens 1,500 connections that each
# send a request line and then one header line every 3 s, never ending
# the header (slowloris, under lighttpd's 10 s read timeout). While they
# hold their connections, a normal GET and GET /health must each be
# answered within 3 s: the generated lighttpd.conf leaves room for more
# connections than such a flood (server.max-connections, keyval(1) HTTP
# LIMITS). Loopback only; the flood ends by itself after 15 s and is
# stopped by PID. About 25 s.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

FLOOD=${FLOOD:-$BUILD/tests/fault/kvflood}
if [ ! -x "$FLOOD" ]; then
    bad setup "$FLOOD not built (run make)"
    finish
fi
HP=21130
RP=21131
N=1500
require_ports $HP $RP

start_node n0 -id n0 -haddr 127.0.0.1:$HP -raddr 127.0.0.1:$RP "$T/n0"
if ! wait_until 20 is_leader $HP; then
    bad starts "no leader on :$HP within 20 s"
    finish
fi
ok starts
expect_post write_before 21130 /key '{"slow":"clients"}'
check limits_in_config grep -q '^server.max-connections = [0-9]' "$T/n0/lighttpd.conf"

"$FLOOD" -tcp 127.0.0.1:$HP -mode headers -n $N -t 15 >"$T/flood.out" 2>&1 &
fpid=$!
all_pids="$all_pids $fpid"
# The flood's connections are up (established on its side; some may wait
# in lighttpd's backlog), and each has sent a header line or two.
held() { [ "$(ss -tnH state established "dport = :$HP" | wc -l)" -ge $((N - 50)) ]; }
if wait_until 10 held; then
    ok "flood_connected ($(ss -tnH state established "dport = :$HP" | wc -l) connections)"
else
    bad flood_connected "only $(ss -tnH state established "dport = :$HP" | wc -l) of $N connections"
fi
sleep 4
t0=$(date +%s%N)
code=$(curl -s -m 3 -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$HP/key/slow")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$code" = 200 ] && [ "$(cat "$T/body")" = '{"slow":"clients"}' ]; then
    ok "get_during_slow_flood (${ms} ms)"
else
    bad get_during_slow_flood "GET gave '$code' after $ms ms: $(tail -n 2 "$T/n0/lighttpd.log")"
fi
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HP/health")
check health_during_slow_flood [ "$code" = 200 ]
still=$(ss -tnH state established "dport = :$HP" | wc -l)
wait "$fpid"
out=$(cat "$T/flood.out")
echo "# $out; $still still open during the checks"
# The slow clients were really held (not cut off early): most of them are
# still open when the flood ends.
check flood_was_held [ "$still" -ge $((N - 50)) ]
check write_after_flood sh -c "curl -s -m 5 -XPOST -d '{\"after\":\"flood\"}' http://127.0.0.1:$HP/key | grep -q index"
finish
