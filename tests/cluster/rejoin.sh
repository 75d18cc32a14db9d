#!/bin/sh
# A wiped node that comes back under its old name must not vote twice: its
# Raft id is per incarnation of its data directory, so it is a different
# node to the cluster. Three keyval nodes (HTTP 25300-25302, Raft
# 25310-25312 on 127.0.0.1); a follower is stopped, its data directory
# wiped, and it is started again with -join under the same name: the join
# is refused (HTTP 409, "already a member with another identity; remove it
# first"), keyval exits non-zero, and the cluster serves on with the old
# member listed. After DELETE /node/NAME the same name joins, catches up
# and serves the earlier writes. Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 25300 25301 25302 25310 25311 25312

# ---- 1. three nodes, some writes
start_node node0 -id node0 -haddr 127.0.0.1:25300 -raddr 127.0.0.1:25310 "$T/node0"
if wait_until 20 is_leader 25300; then
    ok node0_starts_and_leads
else
    bad node0_starts_and_leads "no leader on :25300 within 20 s"
    finish
fi
for i in 1 2; do
    start_node node$i -id node$i -haddr 127.0.0.1:2530$i -raddr 127.0.0.1:2531$i \
        -join 127.0.0.1:25300 "$T/node$i"
done
three_voters() { [ "$(status_field 25300 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if wait_until 40 three_voters; then
    ok two_nodes_join
else
    bad two_nodes_join "status lists: $(status_field 25300 -c '[.nodes[] | {id,voter}]')"
    finish
fi
expect_post write_1 25300 /key '{"hero": "batman", "sidekick": "robin"}'
expect_post write_2 25302 /key '{"city": "gotham"}'

# The follower to wipe (node1 unless it leads).
V=node1
[ "$(status_field 25300 .leader)" = node1 ] && V=node2
VP=${V#node}
VH=2530$VP
eval "vargs=\$args_$V; vpid=\$pid_$V"
old_id=$(status_field "$VH" .node_id)
listed_id() { status_field 25300 ".nodes[] | select(.id == \"$V\") | .node_id"; }
check status_shows_node_ids sh -c '[ -n "$1" ] && [ "$1" != null ] && [ "$1" = "$2" ]' - \
    "$old_id" "$(listed_id)"
caught_up() { body_is "$VH" "/key/$1?level=stale" "$2"; }
check "${V}_has_writes" wait_until 15 caught_up city '{"city":"gotham"}'

# ---- 2. stop it, wipe it, start it again under the same name
kill -TERM "$vpid"
wait "$vpid"
check "${V}_stopped" test $? = 0
rm -rf "${T:?}/$V"
# shellcheck disable=SC2086
timeout 90 "$KEYVAL" $vargs >"$T/wiped.log" 2>&1 9>&-
rc=$?
check wiped_keyval_exits_nonzero sh -c '[ "$1" != 0 ] && [ "$1" != 124 ]' - "$rc"
if grep -q "$V is already a member with another identity" "$T/wiped.log" &&
    grep -q "remove it first: curl -X DELETE http://127.0.0.1:25300/node/$V" "$T/wiped.log" &&
    grep -q "kv-admin remove $V" "$T/wiped.log"; then
    ok wiped_node_told_to_remove_first
else
    bad wiped_node_told_to_remove_first "exit $rc, log: $(tail -n 5 "$T/wiped.log")"
fi
check wiped_node_stopped_everything port_free "$VH"
check wiped_node_raft_port_free port_free 2531$VP
new_id=$(sed -n 's/.*node id \([0-9a-f]\{16\}\)).*/\1/p' "$T/wiped.log" | head -n 1)
check wiped_node_has_new_id sh -c '[ -n "$1" ] && [ "$1" != "$2" ]' - "$new_id" "$old_id"

# The same refusal over HTTP, for a join by hand.
http_post 25302 /join "{\"id\":\"$V\",\"node_id\":\"$new_id\",\"addr\":\"127.0.0.1:2531$VP\"}"
if [ "$HTTP_CODE" = 409 ] &&
    echo "$BODY" | jq -r .error | grep -q "already a member with another identity"; then
    ok http_join_409
else
    bad http_join_409 "POST /join gave $HTTP_CODE $BODY"
fi

# The cluster serves reads and writes, and still lists the old member.
expect_post write_while_refused 25300 /key '{"after": "refusal"}'
expect_post write_while_refused_via_follower 25302 /key '{"more": "yes"}'
for p in 25300 25302; do
    expect_body "read_on_$p" $p /key/hero '{"hero":"batman"}'
    expect_body "read_new_on_$p" $p /key/after '{"after":"refusal"}'
done
check status_lists_old_member sh -c '[ "$1" = "$2" ]' - "$(listed_id)" "$old_id"
check still_three_voters three_voters

# ---- 3. remove the old member; the same name joins and catches up
HTTP_CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -XDELETE \
    "http://127.0.0.1:25300/node/$V")
check delete_old_member_200 test "$HTTP_CODE" = 200
gone() { [ -z "$(listed_id)" ]; }
check old_member_gone wait_until 10 gone
# shellcheck disable=SC2086
start_node "$V" $vargs
back() { [ "$(listed_id)" = "$new_id" ] && three_voters; }
if wait_until 40 back; then
    ok rejoined_under_same_name
else
    bad rejoined_under_same_name "status lists: $(status_field 25300 -c '[.nodes[] | {id,node_id,voter}]')"
fi
check rejoined_node_reports_new_id sh -c '[ "$1" = "$2" ]' - "$(status_field "$VH" .node_id)" "$new_id"
check rejoined_caught_up wait_until 30 caught_up hero '{"hero":"batman"}'
expect_body rejoined_stale_read_city "$VH" "/key/city?level=stale" '{"city":"gotham"}'
expect_body rejoined_stale_read_after "$VH" "/key/after?level=stale" '{"after":"refusal"}'
expect_post write_after_rejoin "$VH" /key '{"last": "one"}'
check write_after_rejoin_everywhere wait_until 10 body_is 25300 /key/last?level=stale '{"last":"one"}'
expect_body linearizable_read_on_rejoined "$VH" /key/last '{"last":"one"}'

# A normal restart keeps the id and does not join again.
eval "vpid=\$pid_$V"
kill -TERM "$vpid"
wait "$vpid"
# shellcheck disable=SC2086
start_node "$V" $vargs
up_again() { [ "$(status_field "$VH" .node_id)" = "$new_id" ]; }
check restart_keeps_id wait_until 20 up_again
check restart_does_not_join_again wait_until 5 grep -q "already joined" "$T/$V.log"
check restarted_serves wait_until 20 body_is "$VH" "/key/last?level=stale" '{"last":"one"}'

finish
