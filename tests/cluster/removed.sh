#!/bin/sh
# A removed node learns it was removed and has a way back. Three keyval
# nodes (HTTP 26180-26182, Raft 26190-26192 on 127.0.0.1): DELETE
# /node/node2; node2's /status says "removed":true, /health and kv-health
# say CRITICAL "removed from the cluster", it logs it once and stops
# campaigning (its term stays); restarted with its original command line
# (-join) it joins again, is a voter with the data written meanwhile. A
# repeat POST /join without haddr keeps the member's haddr; a POST /join
# without node_id of a name nobody knows is 400 asking for node_id, and no
# learner is added. Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

HEALTH=$BUILD/bin/kv-health
require_ports 26180 26181 26182 26190 26191 26192

start_node node0 -id node0 -haddr 127.0.0.1:26180 -raddr 127.0.0.1:26190 "$T/node0"
if ! wait_until 20 is_leader 26180; then
    bad node0_leads "no leader on :26180 within 20 s"
    finish
fi
for i in 1 2; do
    start_node node$i -id node$i -haddr 127.0.0.1:2618$i -raddr 127.0.0.1:2619$i \
        -join 127.0.0.1:26180 "$T/node$i"
done
three_voters() { [ "$(status_field 26180 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if ! wait_until 40 three_voters; then
    bad three_voters "$(status_field 26180 -c '[.nodes[] | {id,voter}]')"
    finish
fi
ok three_voters
expect_post write_before 26180 /key '{"before": "removal"}'
check node2_has_write wait_until 10 body_is 26182 '/key/before?level=stale' '{"before":"removal"}'

# ---- 1. remove node2: it learns it, says so, stops campaigning
t0=$(date +%s%N)
code=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -XDELETE http://127.0.0.1:26180/node/node2)
check delete_node2_200 test "$code" = 200
removed() { [ "$(status_field 26182 .removed)" = true ]; }
if wait_until 15 removed; then
    ok node2_status_removed
    echo "# node2 knew it was removed $(( ($(date +%s%N) - t0) / 1000000 )) ms after DELETE /node/node2"
else
    bad node2_status_removed "$(curl -s -m 5 http://127.0.0.1:26182/status | head -c 400)"
fi
code=$(curl -s -m 10 -o "$T/health" -w '%{http_code}' http://127.0.0.1:26182/health)
check health_503_removed sh -c '[ "$1" = 503 ] && jq -r .error "$2" | grep -q "removed from the cluster"' \
    - "$code" "$T/health"
hout=$("$HEALTH" -H 127.0.0.1:26182 -d "$T/node2" 2>&1)
hrc=$?
if [ "$hrc" = 2 ] && printf '%s' "$hout" | grep -q "^KEYVAL CRITICAL - .*removed from the cluster.*-join"; then
    ok "kv_health_critical_removed ($hout)"
else
    bad kv_health_critical_removed "exit $hrc: $hout"
fi
term1=$(status_field 26182 .term)
sleep 3 # six election timeouts
check removed_node_stops_campaigning test "$(status_field 26182 .state)" = removed
check removed_node_term_unchanged test "$(status_field 26182 .term)" = "$term1"
check removed_logged_once test "$(grep -c 'raftd: node2: removed from the cluster' "$T/node2.log")" = 1
code=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' http://127.0.0.1:26182/key/before)
check removed_read_503_at_once sh -c '[ "$1" = 503 ] && grep -q "removed from the cluster" "$2"' \
    - "$code" "$T/body"
check leader_lists_two_nodes test "$(status_field 26180 '.nodes | length')" = 2
expect_post write_while_removed 26180 /key '{"during": "removal"}'

# ---- 2. restart node2 with its original command line: it joins again
kill -TERM "$pid_node2"
wait "$pid_node2"
# shellcheck disable=SC2086
start_node node2 $args_node2
back() { three_voters && [ "$(status_field 26182 .removed)" = false ]; }
if wait_until 40 back; then
    ok node2_voter_again
else
    bad node2_voter_again "$(status_field 26180 -c '[.nodes[] | {id,voter}]') $(tail -n 5 "$T/node2.log")"
fi
check keyval_says_joining_again grep -q "this node was removed from the cluster; joining" "$T/node2.log"
check node2_has_data_written_while_removed \
    wait_until 20 body_is 26182 '/key/during?level=stale' '{"during":"removal"}'
expect_body node2_linearizable_read 26182 /key/before '{"before":"removal"}'
expect_post node2_write_after_rejoin 26182 /key '{"after": "rejoin"}'
check health_ok_again wait_until 10 sh -c 'curl -s -m 5 -o /dev/null -w "%{http_code}" http://127.0.0.1:26182/health | grep -q 200'

# ---- 3. POST /join by hand: without haddr keeps haddr; without node_id
haddr1() { status_field 26180 '.nodes[] | select(.id == "node1") | .haddr'; }
check node1_haddr_before test "$(haddr1)" = 127.0.0.1:26181
nid1=$(status_field 26181 .node_id)
http_post 26180 /join "{\"id\":\"node1\",\"addr\":\"127.0.0.1:26191\",\"node_id\":\"$nid1\"}"
check repeat_join_index_0 test "$HTTP_CODE $BODY" = '200 {"index":0}'
check repeat_join_keeps_haddr test "$(haddr1)" = 127.0.0.1:26181
http_post 26182 /join '{"id":"node1","addr":"127.0.0.1:26191"}'
check repeat_join_no_node_id_index_0 test "$HTTP_CODE $BODY" = '200 {"index":0}'
check repeat_join_no_node_id_keeps_haddr test "$(haddr1)" = 127.0.0.1:26181
http_post 26181 /join '{"id":"ghost","addr":"127.0.0.1:26199"}'
check join_unknown_without_node_id_400 sh -c '[ "$1" = 400 ] && echo "$2" | grep -q node_id' \
    - "$HTTP_CODE" "$BODY"
check no_ghost_learner test "$(status_field 26180 '[.nodes[] | select(.id == "ghost")] | length')" = 0
finish
