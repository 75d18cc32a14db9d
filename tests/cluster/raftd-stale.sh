#!/bin/sh
# Cluster test of raftd: a node that was down while the configuration
# changed comes back with a stale configuration and must still follow a
# leader it has never heard of. Nodes a, b, c (socat listeners on
# 127.0.0.1:14021-14024); c is stopped, d joins, leadership moves to d,
# c restarts and must catch up from d. Prints ok/FAIL lines and
# "N passed, M failed".
TEST_NAME=stale
NODES="a b c d"
PEER_PREFIX=1402
RAFTD_OPTS="-tick-ms 20 -election-ticks 10"
. tests/cluster/raftd-helpers.inc

# ---------------------------------------------------------------- start
start_cluster
join_all
LAST="cluster of three did not form"
check three_voters wait_until 10 nvoters 3
r=$(q a '{"op":"set","kv":{"before":"1"}}')
LAST="write: $r"
check first_write [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="c did not get the first write"
check c_has_first_write wait_until 5 has_stale c before 1

kill -TERM "$RPID_c"
c_stopped() { ! kill -0 "$RPID_c" 2>/dev/null; }
wait_until 5 c_stopped
start_raftd d
wait_until 5 sock_up d
r=$(q b "{\"op\":\"join\",\"id\":\"d\",\"node_id\":\"$(nid d)\",\"addr\":\"127.0.0.1:14024\"}")
LAST="join d while c is down: $r"
check join_d_while_c_down [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="d did not become a voter: $(q a '{"op":"status"}' | jq -c .nodes)"
check four_voters wait_until 10 nvoters 4
r=$(q a '{"op":"transfer","id":"d"}')
LAST="transfer to d: $r"
check transfer_to_d [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="d did not become leader"
check d_leads wait_until 5 is_state d leader
r=$(q d '{"op":"set","kv":{"after":"2"}}')
LAST="write on d: $r"
check write_on_d [ "$(echo "$r" | jq -r .code)" = 200 ]

start_raftd c
wait_until 5 sock_up c
LAST="c (stale configuration without d) never caught up from leader d"
check stale_node_catches_up wait_until 10 has_stale c after 2
c_knows_d() { [ "$(field c '{"op":"status"}' .leader)" = d ]; }
LAST="c does not name d as leader"
check stale_node_follows_new_leader wait_until 5 c_knows_d

finish
