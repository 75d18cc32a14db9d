#!/bin/sh
# raftd under valgrind memcheck (ports 24100-24102 HTTP, 24110-24112 Raft):
# a 3-node cluster whose three raftd run under valgrind (keyval's
# KEYVAL_RAFTD), driven through the daemon's paths: bootstrap, joins,
# writes (fast-path sets, escaped and multi-key sets, conditional PUT,
# DELETE), forwarded writes, linearizable and stale reads on followers
# (batched ReadIndex), listing, status and metrics, the coordination ops
# (leases with an expiry, txn, blocking reads, a watch), a request line over the
# limit, a follower stopped and restarted (catch-up), and a snapshot
# (-snapshot-entries through KEYVAL_RAFTD_ARGS); the followers in -fast
# mode (raftd on the HTTP port). Every raftd is stopped
# with SIGTERM and its valgrind report must say "0 errors"; definite leaks
# count as errors.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

if ! command -v valgrind >/dev/null 2>&1; then
    bad setup "valgrind is not installed (make deps)"
    finish
fi
require_ports 24100 24101 24102 24110 24111 24112

# The wrapper keyval starts instead of raftd. --child-silent-after-fork:
# raftd's fork+exec of socat is not raftd.
cat >"$T/vg-raftd" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --errors-for-leak-kinds=definite \
    --child-silent-after-fork=yes --log-file="$T/vg.%p.txt" \
    "$BUILD/bin/raftd" -snapshot-entries 40 "\$@"
EOF
chmod +x "$T/vg-raftd"
export KEYVAL_RAFTD="$T/vg-raftd"

start_node v0 -id v0 -haddr 127.0.0.1:24100 -raddr 127.0.0.1:24110 "$T/v0"
if wait_until 60 is_leader 24100; then
    ok v0_leads_under_valgrind
else
    bad v0_leads_under_valgrind "no leader on :24100 within 60 s: $(tail -n 5 "$T/v0.log")"
    finish
fi
# The followers run with -fast: the requests to them go through raftd's
# HTTP front (http_front.c) and, for the other routes, its hand-over to
# lighttpd.
start_node v1 -fast -id v1 -haddr 127.0.0.1:24101 -raddr 127.0.0.1:24111 -join 127.0.0.1:24100 "$T/v1"
start_node v2 -fast -id v2 -haddr 127.0.0.1:24102 -raddr 127.0.0.1:24112 -join 127.0.0.1:24100 "$T/v2"
three_voters() { [ "$(status_field 24100 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if wait_until 90 three_voters; then
    ok three_voters
else
    bad three_voters "$(status_field 24100 -c .nodes)"
    finish
fi
leader_port() {
    for p in 24100 24101 24102; do
        is_leader $p && { echo $p; return 0; }
    done
    return 1
}
wait_until 30 leader_port
L=$(leader_port)
F=24101
[ "$L" = 24101 ] && F=24102

# Writes of every kind, on the leader and forwarded by a follower.
expect_post set_fast_path "$L" /key '{"a":"1","b":"2"}'
expect_post set_escaped "$L" /key '{"c\u00e9":"line\nbreak","q":"\"quoted\""}'
expect_post set_forwarded "$F" /key '{"fwd":"yes"}'
i=0
while [ $i -lt 50 ]; do # past -snapshot-entries 40: a snapshot on each node
    http_post "$L" /key "{\"k$i\":\"v$i\"}"
    i=$((i + 1))
done
check fifty_writes [ "$HTTP_CODE" = 200 ]
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -X PUT -H 'If-None-Match: *' \
    "http://127.0.0.1:$L/key/only" -d 'once')
check conditional_put_created [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 201 ]
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -X PUT -H 'If-None-Match: *' \
    "http://127.0.0.1:$L/key/only" -d 'twice')
check conditional_put_412 [ "$HTTP_CODE" = 412 ]
HTTP_CODE=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$L/key/b")
check delete [ "$HTTP_CODE" = 200 ]

# Reads: linearizable and stale on a follower, listing, status, metrics.
check lin_read_follower wait_until 20 body_is "$F" /key/fwd '{"fwd":"yes"}'
check stale_read_follower wait_until 20 body_is "$F" '/key/k49?level=stale' '{"k49":"v49"}'
http_get "$F" /key/b
check deleted_is_404 [ "$HTTP_CODE" = 404 ]
http_get "$L" '/key?prefix=k&limit=5'
check listing [ "$HTTP_CODE" = 200 ]
http_get "$F" /metrics
check metrics [ "$HTTP_CODE" = 200 ]
# The follower's raftd answered key requests on its HTTP port and handed
# /metrics (and the like) to lighttpd.
front_n() { printf '%s\n' "$BODY" | awk -v m="$1" '$1 == m { print $2 }'; }
check fast_front_answered sh -c '[ "${1:-0}" -ge 2 ] && [ "${2:-0}" -ge 1 ]' - \
    "$(front_n keyval_http_requests_total)" "$(front_n keyval_http_handovers_total)"
snap=$(status_field "$L" .snapshot_index)
check snapshot_taken [ "${snap:-0}" -gt 0 ]

# Coordination paths: leases (grant, attach, renew, get, revoke, an
# expiry proposed by the leader), txn with compares, blocking queries (one
# woken by a write on another node, one that times out), a watch stream
# from history and live, on a follower.
http_post "$L" /lease '{"ttl":"60s"}'
lease=$(printf '%s' "$BODY" | jq -r .lease 2>/dev/null)
check lease_grant [ "$HTTP_CODE" = 200 ] && [ -n "$lease" ] && [ "$lease" != null ]
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -X PUT \
    "http://127.0.0.1:$F/key/leased?lease=$lease" -d 'held')
check key_with_lease_forwarded [ "$HTTP_CODE" = 200 ]
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -X PUT "http://127.0.0.1:$F/lease/$lease")
check lease_renew_forwarded [ "$HTTP_CODE" = 200 ]
http_get "$F" "/lease/$lease"
check lease_get_lists_key [ "$HTTP_CODE" = 200 ] && printf '%s' "$BODY" | jq -e '.keys == ["leased"]' >/dev/null
HTTP_CODE=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$L/lease/$lease")
check lease_revoke [ "$HTTP_CODE" = 200 ]
http_get "$L" /key/leased
check revoked_key_gone [ "$HTTP_CODE" = 404 ]
http_post "$L" /lease '{"ttl":"1s"}'
short=$(printf '%s' "$BODY" | jq -r .lease 2>/dev/null)
HTTP_CODE=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -X PUT \
    "http://127.0.0.1:$L/key/ephemeral?lease=$short" -d 'soon gone')
check key_with_short_lease [ "$HTTP_CODE" = 200 ]
gone() { http_get "$L" /key/ephemeral; [ "$HTTP_CODE" = 404 ]; }
check lease_expired_by_leader wait_until 30 gone
expect_post txn_then "$L" /txn '{"if":[{"key":"a","value":"1"}],"then":[{"set":{"t":"then"}}],"else":[{"del":"a"}]}'
check txn_succeeded [ "$(printf '%s' "$BODY" | jq -r .succeeded)" = true ]
expect_post txn_else "$L" /txn '{"if":[{"key":"nope","index":7}],"then":[{"del":"a"}],"else":[{"set":{"t":"else"}}]}'
check txn_else_taken [ "$(printf '%s' "$BODY" | jq -r .succeeded)" = false ]
idx=$(curl -s -m 10 -D - -o /dev/null "http://127.0.0.1:$F/key/fwd" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-keyval-index"{print $2}')
curl -s -m 60 -o "$T/blocked" "http://127.0.0.1:$F/key/fwd?index=$idx&wait=30s" &
bq=$!
curl -s -N -m 60 -o "$T/watched" "http://127.0.0.1:$F/watch?prefix=fwd&from=0" &
wq=$!
sleep 2
expect_post write_wakes_blocked_read "$L" /key '{"fwd":"again"}'
wait_until 20 sh -c "! kill -0 $bq 2>/dev/null"
check blocking_read_woken [ "$(jq -r .fwd "$T/blocked" 2>/dev/null)" = again ]
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$F/key/k1?index=999999&wait=500ms")
check blocking_read_times_out [ "$HTTP_CODE" = 200 ]
watched() { [ "$(grep -c '"key":"fwd"' "$T/watched")" -ge 2 ]; }
if wait_until 20 watched; then
    ok watch_history_and_live
else
    bad watch_history_and_live "watch output: $(head -c 600 "$T/watched")"
fi
kill "$wq" 2>/dev/null
wait "$wq" "$bq" 2>/dev/null

# A request line over raftd.sock's 16 MiB limit (413), straight at raftd.
head -c 17000000 /dev/zero | tr '\0' ' ' | timeout 60 socat -t 30 - UNIX-CONNECT:"$T/v0/raftd.sock" \
    >"$T/huge.out" 2>/dev/null
check huge_line_413 grep -q '"code":413' "$T/huge.out"

# A follower stops (SIGTERM, so its valgrind report is written), misses
# writes, restarts and catches up.
eval "vf=\$pid_v$((F - 24100))"
kill -TERM "$vf"
wait_until 60 sh -c "! kill -0 $vf 2>/dev/null"
expect_post write_while_follower_down "$L" /key '{"late":"still"}'
n=v$((F - 24100))
start_node "$n" -id "$n" -haddr 127.0.0.1:$F -raddr 127.0.0.1:$((F + 10)) -join 127.0.0.1:"$L" "$T/$n"
check follower_catches_up wait_until 90 body_is "$F" '/key/late?level=stale' '{"late":"still"}'

# Stop everything with SIGTERM and read the reports.
for p in $all_pids; do kill -TERM "$p" 2>/dev/null; done
for p in $all_pids; do wait_until 90 sh -c "! kill -0 $p 2>/dev/null"; done
reports=0
for f in "$T"/vg.*.txt; do
    [ -f "$f" ] || continue
    grep -q "ERROR SUMMARY" "$f" || continue
    reports=$((reports + 1))
    if grep -q "ERROR SUMMARY: 0 errors" "$f"; then
        ok "valgrind_clean_$(basename "$f" .txt)"
    else
        bad "valgrind_clean_$(basename "$f" .txt)" "$(grep -A 12 -m 1 -E 'Invalid|uninitialised|definitely lost|Mismatched' "$f" | head -n 14)"
    fi
done
LAST="valgrind reports of raftd: $reports"
check four_raftd_reports [ "$reports" -ge 4 ]
finish
