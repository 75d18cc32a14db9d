#!/bin/sh
# The seed README's walkthrough, command for command, with the real keyval
# on 127.0.0.1 ports 11000-11002 (HTTP) and 12000-12002 (Raft):
# one node; set and get; two nodes join with -join :11000; reads on all
# three; a second key; kill -9 the leader's processes; a new leader is
# elected, keys are still readable, writes are accepted on the new leader;
# the old leader restarted with its original command line catches up; a
# node that joined with -join restarts from its state without joining again.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 11000 11001 11002 12000 12001 12002

# keyval -id node0 ~/node0
start_node node0 -id node0 "$T/node0"
if wait_until 20 is_leader 11000; then
    ok node0_starts_and_leads
else
    bad node0_starts_and_leads "no leader on :11000 within 20 s"
    finish
fi

# curl -XPOST localhost:11000/key -d '{"user1": "batman"}'
expect_post set_user1 11000 /key '{"user1": "batman"}'
# curl -XGET localhost:11000/key/user1
expect_body get_user1 11000 /key/user1 '{"user1":"batman"}'

# keyval -id node1 -haddr localhost:11001 -raddr localhost:12001 -join :11000 ~/node1
start_node node1 -id node1 -haddr localhost:11001 -raddr localhost:12001 -join :11000 "$T/node1"
start_node node2 -id node2 -haddr localhost:11002 -raddr localhost:12002 -join :11000 "$T/node2"
three_voters() { [ "$(status_field 11000 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if wait_until 30 three_voters; then
    ok two_nodes_join
else
    bad two_nodes_join "node0 does not list 3 voters within 30 s: $(status_field 11000 -c .nodes)"
fi
for p in 11001 11002; do
    if wait_until 15 sh -c "curl -s -m 2 http://127.0.0.1:$p/status | jq -e '.leader == \"node0\"'"; then
        ok "node_${p}_follows_node0"
    else
        bad "node_${p}_follows_node0" "$(status_field $p -c .)"
    fi
done

# curl -XGET localhost:1100N/key/user1 on all three
for p in 11000 11001 11002; do
    expect_body "get_user1_on_$p" $p /key/user1 '{"user1":"batman"}'
done

# a second key
expect_post set_user2 11000 /key '{"user2": "robin"}'
for p in 11000 11001 11002; do
    expect_body "get_user2_on_$p" $p /key/user2 '{"user2":"robin"}'
done
for p in 11001 11002; do
    if wait_until 10 body_is $p '/key/user2?level=stale' '{"user2":"robin"}'; then
        ok "stale_read_user2_on_$p"
    else
        bad "stale_read_user2_on_$p" "$HTTP_CODE $BODY"
    fi
done
v=$("$KVGET" -d "$T/node2" user1)
check kv_get_on_node2 [ "$v" = batman ]

# Find the leader via /status and kill -9 its processes.
leader_port=$(status_field 11001 .leader_haddr | sed 's/.*://')
case $leader_port in
11000) old=node0 ;; 11001) old=node1 ;; 11002) old=node2 ;;
*) bad find_leader "leader_haddr is '$leader_port'"; finish ;;
esac
ok "find_leader_$old"
eval "old_args=\$args_$old"
kill_node "$old"
survivors=""
for p in 11000 11001 11002; do [ "$p" != "$leader_port" ] && survivors="$survivors $p"; done

new_leader() {
    for p in $survivors; do is_leader $p && { echo $p; return 0; }; done
    return 1
}
if wait_until 20 new_leader; then
    new_port=$(new_leader)
    ok "new_leader_elected_on_$new_port"
else
    bad new_leader_elected "no leader among$survivors within 20 s"
    finish
fi
for p in $survivors; do
    expect_body "after_kill_get_user1_on_$p" $p /key/user1 '{"user1":"batman"}'
    expect_body "after_kill_get_user2_on_$p" $p /key/user2 '{"user2":"robin"}'
done
expect_post set_user3_on_new_leader "$new_port" /key '{"user3": "joker"}'
for p in $survivors; do
    expect_body "get_user3_on_$p" $p /key/user3 '{"user3":"joker"}'
done
# Beyond the seed: a write sent to a follower is forwarded to the leader.
for p in $survivors; do [ "$p" != "$new_port" ] && follower=$p; done
expect_post set_on_follower_forwarded "$follower" /key '{"user4": "bane"}'
expect_body get_user4_on_new_leader "$new_port" /key/user4 '{"user4":"bane"}'

# Restart the old leader with its original command line: it catches up.
# shellcheck disable=SC2086
start_node "$old" $old_args
if wait_until 30 body_is "$leader_port" '/key/user3?level=stale' '{"user3":"joker"}'; then
    ok old_leader_caught_up_user3
else
    bad old_leader_caught_up_user3 "GET :$leader_port/key/user3?level=stale gave $HTTP_CODE $BODY"
fi
if wait_until 15 body_is "$leader_port" '/key/user4?level=stale' '{"user4":"bane"}'; then
    ok old_leader_caught_up_user4
else
    bad old_leader_caught_up_user4 "$HTTP_CODE $BODY"
fi
expect_body old_leader_linearizable_read "$leader_port" /key/user1 '{"user1":"batman"}'
follows() { [ "$(status_field "$leader_port" .leader_haddr)" = "localhost:$new_port" ]; }
if wait_until 10 follows; then
    ok old_leader_follows_new_leader
else
    bad old_leader_follows_new_leader "$(status_field "$leader_port" -c '{state,leader,leader_haddr}')"
fi

# Stop a node that joined with -join (SIGTERM), write while it is down,
# start it again with the same command line: it does not join again, it
# rejoins from its saved state and catches up. Prefer a follower.
joined=""
for n in node1 node2; do
    [ "$n" = "$old" ] && continue
    eval "a=\$args_$n"
    case "$a " in *"localhost:$new_port "*) [ -z "$joined" ] && joined=$n; continue ;; esac
    joined=$n
done
eval "jp=\$pid_$joined; jargs=\$args_$joined"
jport=$(echo "$jargs" | sed 's/.*-haddr localhost:\([0-9]*\).*/\1/')
kill -TERM "$jp"
wait "$jp"
check "sigterm_${joined}_exits_0" test $? = 0
# Written through the restarted old leader (a write to any node is
# forwarded to the leader); retried while an election may be going on.
post_ok() { http_post "$1" "$2" "$3"; [ "$HTTP_CODE" = 200 ]; }
if wait_until 20 post_ok "$leader_port" /key '{"user5": "alfred"}'; then
    ok "set_while_${joined}_down"
else
    bad "set_while_${joined}_down" "POST gave $HTTP_CODE $BODY"
fi
# shellcheck disable=SC2086
start_node "$joined" $jargs
if wait_until 30 body_is "$jport" '/key/user5?level=stale' '{"user5":"alfred"}'; then
    ok "restarted_${joined}_caught_up"
else
    bad "restarted_${joined}_caught_up" "GET :$jport/key/user5?level=stale gave $HTTP_CODE $BODY"
fi
if grep -q "already joined" "$T/$joined.log"; then
    ok "restarted_${joined}_did_not_join_again"
else
    bad "restarted_${joined}_did_not_join_again" "no 'already joined' line in its log"
fi

# A missing key is 404 with the JSON error.
http_get 11000 /key/nosuchkey
check missing_key_404 test "$HTTP_CODE" = 404 -a "$BODY" = '{"error":"key not found"}'

# SIGTERM stops each node and everything it started.
for n in node0 node1 node2; do
    eval "p=\$pid_$n"
    kill -TERM "$p"
done
stopped() {
    for n in node0 node1 node2; do eval "kill -0 \$pid_$n" 2>/dev/null && return 1; done
    for port in 11000 11001 11002 12000 12001 12002; do port_free $port || return 1; done
    return 0
}
if wait_until 20 stopped; then
    ok sigterm_stops_all
else
    bad sigterm_stops_all "nodes or ports still alive"
fi
finish
