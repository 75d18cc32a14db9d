#!/bin/sh
# The HTTP API on a three-node cluster (HTTP 127.0.0.1:23100-23102, Raft
# 23110-23112): writes and reads through followers, an atomic multi-key
# write across a leader kill, If-Match races, limits and malformed input
# that leave the data unchanged, GET /health, GET /metrics, DELETE /node/ID
# and POST /leader from a follower, and an outcome-unknown 503 when raftd
# dies with a write in flight. Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 23100 23101 23102 23103 23110 23111 23112 23113
H0=23100 H1=23101 H2=23102 H3=23103
start_node a -id a -haddr 127.0.0.1:$H0 -raddr 127.0.0.1:23110 "$T/a"
if wait_until 20 is_leader $H0; then ok first_node_leads; else bad first_node_leads "no leader"; finish; fi
start_node b -id b -haddr 127.0.0.1:$H1 -raddr 127.0.0.1:23111 -join 127.0.0.1:$H0 "$T/b"
start_node c -id c -haddr 127.0.0.1:$H2 -raddr 127.0.0.1:23112 -join 127.0.0.1:$H0 "$T/c"
three_voters() { [ "$(status_field $H0 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
follows() { [ "$(status_field "$1" .leader)" = "$2" ]; }
if wait_until 40 three_voters && wait_until 20 follows $H1 a && wait_until 20 follows $H2 a; then
    ok three_nodes_join
else
    bad three_nodes_join "$(curl -s -m 5 127.0.0.1:$H0/status)"; finish
fi

# req NAME EXPECTED_CODE EXPECTED_BODY CURL-ARGS...: body "" = don't care.
req() {
    _name=$1 _code=$2 _body=$3; shift 3
    _got=$(curl -s -m 20 -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@")
    _b=$(cat "$T/body")
    if [ "$_got" = "$_code" ] && { [ -z "$_body" ] || [ "$_b" = "$_body" ]; }; then
        ok "$_name"
    else
        bad "$_name" "curl $* gave $_got $_b, want $_code $_body"
    fi
}
header() { grep -i "^$1:" "$T/headers" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
leader_port() {
    for _p in $H0 $H1 $H2; do
        [ "$(status_field $_p .state 2>/dev/null)" = leader ] && { echo $_p; return 0; }
    done
    return 1
}
U0=http://127.0.0.1:$H0 U1=http://127.0.0.1:$H1 U2=http://127.0.0.1:$H2

# --- writes through a follower, reads on another follower
req write_to_follower 200 "" -XPOST $U1/key -d '{"f1":"via-b"}'
req read_on_leader_sees_follower_write 200 '{"f1":"via-b"}' $U0/key/f1
req put_to_follower 200 "" -XPUT $U2/key/f2 --data-binary via-c
# A linearizable read on one follower right after a write acknowledged
# by another sees it (no waiting).
ryw_bad=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    curl -s -m 10 -o /dev/null -XPUT $U1/key/ryw --data-binary "v$i"
    got=$(curl -s -m 10 $U2/key/ryw)
    [ "$got" = "{\"ryw\":\"v$i\"}" ] || { ryw_bad=1; echo "# read on c after write on b: $got, want v$i"; }
done
check read_on_follower_after_write_elsewhere test $ryw_bad = 0
req delete_via_follower 200 "" -XDELETE $U2/key/f2
req deleted_on_leader 404 '{"error":"key not found"}' $U0/key/f2

# --- If-Match races: two clients, same ETag, exactly one wins
req race_seed 200 "" -XPUT $U0/key/race --data-binary 0
race_bad=0
for i in $(seq 1 20); do
    etag=$(curl -s -m 10 -D - -o /dev/null $U1/key/race | grep -i '^etag:' | sed 's/^[^:]*: *//' | tr -d '\r')
    curl -s -m 20 -o /dev/null -w '%{http_code}\n' -XPUT -H "If-Match: $etag" $U1/key/race \
        --data-binary "b$i" >"$T/r1" &
    r1=$!
    curl -s -m 20 -o /dev/null -w '%{http_code}\n' -XPUT -H "If-Match: $etag" $U2/key/race \
        --data-binary "c$i" >"$T/r2" &
    r2=$!
    wait $r1 $r2
    codes=$(cat "$T/r1" "$T/r2" | sort | tr '\n' ' ')
    final=$(curl -s -m 10 $U0/key/race | jq -r .race)
    case "$codes" in
    "200 412 ")
        if [ "$(cat "$T/r1")" = 200 ]; then want=b$i; else want=c$i; fi
        [ "$final" = "$want" ] || { race_bad=$((race_bad + 1)); echo "# race $i: winner $want, value $final"; } ;;
    *) race_bad=$((race_bad + 1)); echo "# race $i: answers $codes (want one 200, one 412)" ;;
    esac
done
check if_match_race_exactly_one_wins_20x test $race_bad = 0

# --- limits and malformed input: documented answer, data unchanged
req limits_seed 200 "" -XPOST $U1/key -d '{"keep":"same"}'
snapshot() { curl -s -m 10 "$U0/key?limit=1000" | jq -c '[.items[] | [.key, .value]]'; }
before=$(snapshot)
long=$(head -c 1025 /dev/zero | tr '\0' k)
req key_1025_put_400 400 "" -XPUT "$U1/key/$long" --data-binary x
req key_1025_post_400 400 "" -XPOST $U1/key -d "{\"$long\":\"x\"}"
{ printf '{"keep":"changed","big":"'; head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' b; printf '"}'; } >"$T/big1"
req value_over_1MiB_413 413 "" -XPOST $U1/key --data-binary @"$T/big1"
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' a >"$T/big4"
req body_over_4MiB_413 413 '{"error":"request body too large (max 4 MiB)"}' \
    -XPOST $U1/key --data-binary @"$T/big4"
{ printf '{"keep":"changed"'; for i in $(seq 1 1000); do printf ',"m%d":"x"' $i; done; printf '}'; } >"$T/many"
req keys_1001_413 413 "" -XPOST $U1/key --data-binary @"$T/many"
req bad_json_400 400 "" -XPOST $U1/key -d '{"keep": "changed",'
req non_string_value_400 400 "" -XPOST $U1/key -d '{"keep": "changed", "n": 1}'
req unknown_route_404 404 '{"error":"not found"}' $U1/nothing
req wrong_method_405 405 '{"error":"method not allowed"}' -XPATCH $U1/key/keep
check wrong_method_allow test "$(header Allow)" = "GET, PUT, DELETE"
req health_wrong_method_405 405 "" -XPOST $U1/health -d x
req node_wrong_method_405 405 "" $U1/node/b
req leader_bad_json_400 400 "" -XPOST $U1/leader -d '{"id":'
req leader_unknown_node_404 404 "" -XPOST $U1/leader -d '{"id":"nosuch"}'
req delete_unknown_node_404 404 "" -XDELETE $U1/node/nosuch
check data_unchanged_after_bad_requests test "$before" = "$(snapshot)"

# --- /health and /metrics on healthy nodes
for p in $H0 $H1 $H2; do
    req health_ok_$p 200 "" http://127.0.0.1:$p/health
    check health_body_ok_$p test "$(jq -r .status "$T/body")" = ok
done
req health_bad_max_lag_400 400 "" "$U1/health?max_lag=x"
req metrics_200 200 "" $U1/metrics
check metrics_content_type test "$(header Content-Type)" = "text/plain; version=0.0.4; charset=utf-8"
# Every line is a comment or "name{labels} value".
metrics_ok() {
    grep -v '^#' "$1" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+0-9.eEInfNa]+$' | grep -q . && return 1
    grep -q . "$1"
}
metric() { grep "^$2 " "$1" | head -n 1 | cut -d' ' -f2; }
cp "$T/body" "$T/m1"
check metrics_parse metrics_ok "$T/m1"
check metrics_have_names sh -c "grep -q '^keyval_term ' '$T/m1' && grep -q '^keyval_commit_index ' '$T/m1' && grep -q '^keyval_applied_index ' '$T/m1' && grep -q '^keyval_peer_up{peer=' '$T/m1' && grep -q '^# TYPE keyval_commit_latency_seconds histogram' '$T/m1'"
curl -s -m 10 -o "$T/l1" $U0/metrics
for i in 1 2 3 4 5; do curl -s -m 10 -o /dev/null -XPOST $U1/key -d "{\"m$i\":\"x\"}"; done
curl -s -m 10 -o "$T/m2" $U1/metrics
curl -s -m 10 -o "$T/l2" $U0/metrics
check metrics_forwarded_increase test "$(metric "$T/m2" keyval_forwarded_writes_total)" -ge $(($(metric "$T/m1" keyval_forwarded_writes_total) + 5))
# The leader applied them before it answered (a follower may learn of the
# commit only with the next heartbeat).
check metrics_applied_increase test "$(metric "$T/l2" keyval_applied_index)" -ge $(($(metric "$T/l1" keyval_applied_index) + 5))
check metrics_leader_proposals_increase test "$(metric "$T/l2" keyval_proposals_total)" -ge $(($(metric "$T/l1" keyval_proposals_total) + 5))
check metrics_commit_latency_count_increase test "$(metric "$T/l2" keyval_commit_latency_seconds_count)" -ge $(($(metric "$T/l1" keyval_commit_latency_seconds_count) + 5))
check metrics_fsync_count_increase test "$(metric "$T/m2" keyval_fsync_duration_seconds_count)" -gt "$(metric "$T/m1" keyval_fsync_duration_seconds_count)"
check metrics_fsyncs_counted test "$(metric "$T/m2" keyval_fsyncs_total)" = "$(metric "$T/m2" keyval_fsync_duration_seconds_count)"
check metrics_parse_after_writes metrics_ok "$T/l2"
# Reads are counted, at every level (the console's reads/s).
for i in 1 2 3; do curl -s -m 10 -o /dev/null $U1/key/m$i; curl -s -m 10 -o /dev/null "$U1/key/m$i?level=stale"; done
curl -s -m 10 -o /dev/null "$U1/key?prefix=m"
curl -s -m 10 -o "$T/m3" $U1/metrics
check metrics_reads_counted test "$(metric "$T/m3" keyval_reads_total)" -ge $(($(metric "$T/m2" keyval_reads_total) + 7))
# /status: when this node last heard from each member (the leader: every
# member, within an election timeout or so while all are up).
curl -s -m 10 -o "$T/st0" $U0/status
check status_last_heard_on_leader jq -e '[.nodes[] | select(.self | not) | .last_heard_ms | numbers | select(. < 5000)] | length == 2' "$T/st0"
curl -s -m 10 -o "$T/st1" $U1/status
check status_follower_heard_leader jq -e '[.nodes[] | select(.id == "a") | .last_heard_ms | numbers] | length == 1' "$T/st1"

# --- POST /leader from a follower, then DELETE /node/ID from a follower
req leader_transfer_from_follower 200 '{"leader":"c"}' -XPOST $U1/leader -d '{"id":"c"}'
if wait_until 10 follows $H0 c; then ok old_leader_follows_c; else bad old_leader_follows_c "$(status_field $H0 .leader)"; fi
req leader_transfer_back 200 '{"leader":"a"}' -XPOST $U2/leader -d '{"id":"a"}'
wait_until 10 follows $H1 a
KVADMIN=$BUILD/bin/kv-admin
check kv_admin_leader_from_follower "$KVADMIN" -d "$T/c" leader b
check kv_admin_leader_back "$KVADMIN" -d "$T/b" leader a
"$KVADMIN" -d "$T/b" remove nosuch 2>/dev/null
check kv_admin_remove_unknown_exit_1 test $? = 1
"$KVADMIN" -d "$T/b" bogus 2>/dev/null
check kv_admin_usage_exit_2 test $? = 2
check kv_admin_metrics test "$("$KVADMIN" -d "$T/b" metrics | jq -r '.metrics[] | select(.name == "keyval_has_leader") | .value')" = 1
wait_until 10 follows $H2 a
# A fourth node joins and is removed through a follower.
start_node d -id d -haddr 127.0.0.1:$H3 -raddr 127.0.0.1:23113 -join 127.0.0.1:$H0 "$T/d"
has_d() { status_field $H0 '.nodes[].id' | grep -qx d; }
four_voters() { [ "$(status_field $H0 '[.nodes[] | select(.voter)] | length')" = 4 ]; }
if wait_until 40 four_voters; then ok fourth_node_joins; else bad fourth_node_joins "$(status_field $H0 .nodes)"; fi
req delete_node_from_follower 200 "" -XDELETE $U1/node/d
if wait_until 10 sh -c "! curl -s -m 5 $U0/status | jq -r '.nodes[].id' | grep -qx d"; then
    ok node_d_removed
else
    bad node_d_removed "$(status_field $H0 '[.nodes[].id]')"
fi
kill_node d
req post_remove_still_works_404 404 "" -XPOST $U1/remove -d '{"id":"d"}'

# --- a multi-key write interrupted by a leader kill: all keys or none
ks='{'; for i in $(seq 1 50); do ks="$ks\"atom$i\":\"v$i\","; done; ks="${ks%,}}"
lp=$(leader_port)
case $lp in $H0) ln=a ;; $H1) ln=b ;; *) ln=c ;; esac
case $lp in $H0) fp=$H1 ;; *) fp=$H0 ;; esac
curl -s -m 20 -o "$T/atom" -w '%{http_code}' -XPOST http://127.0.0.1:$fp/key -d "$ks" >"$T/atom.code" &
apid=$!
kill_node $ln
wait $apid
echo "# atomic write during leader kill answered $(cat "$T/atom.code") $(cat "$T/atom")"
for p in $H0 $H1 $H2; do [ $p = $lp ] || sp=$p; done
new_leader() { [ -n "$(leader_port)" ]; }
wait_until 30 new_leader
n=$(curl -s -m 10 "http://127.0.0.1:$sp/key?prefix=atom&limit=1000" | jq '.items | length')
case $n in
0|50) ok multi_key_write_all_or_none ;;
*) bad multi_key_write_all_or_none "$n of 50 keys present" ;;
esac
if [ "$(cat "$T/atom.code")" = 200 ]; then
    check acknowledged_atomic_write_kept test "$n" = 50
fi

port_node() { case $1 in $H0) echo a ;; $H1) echo b ;; *) echo c ;; esac; }
raftd_of() { eval "_p=\$pid_$1"; ps -o pid=,comm= --ppid "$_p" | awk '$2=="raftd"{print $1}'; }
start_node $ln $(eval echo "\$args_$ln")
healthy() { curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$1/health | grep -qx 200; }
if wait_until 30 healthy $lp; then ok restarted_node_healthy; else bad restarted_node_healthy "$(curl -s -m 5 http://127.0.0.1:$lp/health)"; fi

# The same, with the write certainly in flight: the followers' raftds are
# stopped, so the leader appends the entry but cannot commit it; then the
# leader is killed and the followers go on without it.
lp=$(leader_port); ln=$(port_node $lp)
f1=""; f2=""
for p in $H0 $H1 $H2; do [ $p = "$lp" ] || { [ -z "$f1" ] && f1=$p || f2=$p; }; done
q1=$(raftd_of $(port_node $f1)) q2=$(raftd_of $(port_node $f2))
ks='{'; for i in $(seq 1 50); do ks="$ks\"mid$i\":\"v$i\","; done; ks="${ks%,}}"
kill -STOP $q1 $q2
curl -s -m 20 -o "$T/mid" -w '%{http_code}' -XPOST http://127.0.0.1:$lp/key -d "$ks" >"$T/mid.code" &
mpid=$!
sleep 1
kill_node $ln
kill -CONT $q1 $q2
wait $mpid
echo "# multi-key write to a leader killed before it could commit answered $(cat "$T/mid.code") $(cat "$T/mid" 2>/dev/null)"
check interrupted_write_not_acknowledged test "$(cat "$T/mid.code")" != 200
wait_until 30 new_leader
start_node $ln $(eval echo "\$args_$ln")
wait_until 30 healthy $lp
n=$(curl -s -m 10 "http://127.0.0.1:$lp/key?prefix=mid&limit=1000" | jq '.items | length')
n2=$(curl -s -m 10 "http://127.0.0.1:$f1/key?prefix=mid&limit=1000" | jq '.items | length')
case $n.$n2 in
0.0|50.50) ok interrupted_multi_key_write_all_or_none ;;
*) bad interrupted_multi_key_write_all_or_none "$n (restarted node) / $n2 of 50 keys present" ;;
esac

# --- /health 503 on a follower cut from its leader: stop the raftds of
# the two others (the leader among them)
ldp=$(leader_port)
for p in $H0 $H1 $H2; do [ $p = "$ldp" ] || lp=$p; done
check health_target_is_follower test "$(status_field $lp .state)" = follower
back() { healthy $lp; }
s1=""; s2=""
for p in $H0 $H1 $H2; do [ $p = $lp ] || { [ -z "$s1" ] && s1=$p || s2=$p; }; done
r1=$(raftd_of $(port_node $s1)) r2=$(raftd_of $(port_node $s2))
if [ -n "$r1" ] && [ -n "$r2" ]; then
    kill -STOP $r1 $r2
    unhealthy() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$lp/health)" = 503 ]; }
    if wait_until 10 unhealthy; then
        ok health_503_when_cut_off
        echo "# $(curl -s -m 2 http://127.0.0.1:$lp/health)"
        check health_503_has_reason test -n "$(curl -s -m 2 http://127.0.0.1:$lp/health | jq -r '.error // empty')"
    else
        bad health_503_when_cut_off "$(curl -s -m 2 http://127.0.0.1:$lp/health)"
    fi
    kill -CONT $r1 $r2
    if wait_until 30 back; then ok health_200_again; else bad health_200_again "$(curl -s -m 5 http://127.0.0.1:$lp/health)"; fi
else
    bad health_503_when_cut_off "raftd pids not found"
fi

# --- outcome unknown: raftd killed with writes in flight through a follower
lp=$(leader_port)
for p in $H0 $H1 $H2; do [ $p = "$lp" ] || fp=$p; done
fn=$(port_node $fp)
for w in 1 2 3; do
    ( i=0; while [ $i -lt 300 ]; do
          i=$((i + 1))
          out=$(curl -s -m 20 -w ' %{http_code}' -XPUT http://127.0.0.1:$fp/key/u$w --data-binary v$i)
          echo "v$i $out"
          case $out in *\ 200) ;; *) break ;; esac
      done >"$T/u$w.out" ) &
    eval "wp$w=\$!"
done
sleep 1
kill -9 "$(raftd_of $fn)"
wait $wp1 $wp2 $wp3
dishonest=0
for w in 1 2 3; do
    last=$(tail -n 1 "$T/u$w.out")
    v=${last%% *}
    final=$(curl -s -m 10 http://127.0.0.1:$lp/key/u$w)
    echo "# writer $w: last answer $last; final $final"
    # No HTTP answer at all (curl's 000: keyval stops lighttpd when its
    # raftd dies) claims nothing either: like "outcome unknown".
    case $last in
    *'"outcome":"unknown"'*|*' 200'|*' 000') ;;
    *) [ "$final" = "{\"u$w\":\"$v\"}" ] && dishonest=$((dishonest + 1)) ;;
    esac
done
check no_committed_write_reported_failed test $dishonest = 0
finish
