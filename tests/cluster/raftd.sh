#!/bin/sh
# Cluster test of raftd alone: three raftd on loopback, peer traffic through
# socat (listeners on 127.0.0.1:14001-14003), clients through raftd.sock.
# Node a bootstraps, b and c join through a; reads and writes on leader and
# followers; kill -9 of the leader; restart and catch-up (by snapshot).
# Prints ok/FAIL lines and "N passed, M failed".
TEST_NAME="test"
NODES="a b c"
PEER_PREFIX=1400
# 20 ms ticks (elections after 0.5-1 s, as by default), snapshots every 20 entries
# keeping 5 behind, so a node that misses 60 entries needs a snapshot.
RAFTD_OPTS="-tick-ms 20 -election-ticks 25 -snapshot-entries 20 -snapshot-trail 5"
. tests/cluster/raftd-helpers.inc

# ---------------------------------------------------------------- start
start_cluster
LAST="node a never became leader"
check bootstrap_leader wait_until 5 is_state a leader

LAST="b is not waiting as a fresh node"
check fresh_node_follower is_state b follower

r=$(q a "{\"op\":\"join\",\"id\":\"b\",\"node_id\":\"$(nid b)\",\"addr\":\"127.0.0.1:14002\",\"haddr\":\"127.0.0.1:13002\"}")
LAST="join b: $r"
check join_b [ "$(echo "$r" | jq -r .code)" = 200 ]
r=$(q a "{\"op\":\"join\",\"id\":\"c\",\"node_id\":\"$(nid c)\",\"addr\":\"127.0.0.1:14003\",\"haddr\":\"127.0.0.1:13003\"}")
LAST="join c: $r"
check join_c [ "$(echo "$r" | jq -r .code)" = 200 ]

LAST="a's config: $(q a '{"op":"status"}')"
check three_voters wait_until 10 nvoters 3

ca=$(field a '{"op":"status"}' .cluster)
cb=$(field b '{"op":"status"}' .cluster)
cc=$(field c '{"op":"status"}' .cluster)
LAST="cluster ids a=$ca b=$cb c=$cc"
same_cluster() { [ -n "$ca" ] && [ "$ca" = "$cb" ] && [ "$ca" = "$cc" ]; }
check cluster_id_adopted same_cluster

r=$(q a "{\"op\":\"join\",\"id\":\"b\",\"node_id\":\"$(nid b)\",\"addr\":\"127.0.0.1:14002\",\"haddr\":\"127.0.0.1:13002\"}")
LAST="rejoin b: $r"
check rejoin_same_addr_noop [ "$r" = '{"code":200,"index":0}' ]

# A node id is per incarnation of a data directory: the member b under
# another id (a wiped b) is refused until b is removed.
r=$(q a '{"op":"join","id":"b","node_id":"00000000000000aa","addr":"127.0.0.1:14002"}')
LAST="join b with another id: $r"
check join_other_identity_409 [ "$(echo "$r" | jq -r .code)" = 409 ]
LAST="409 message: $r"
check join_other_identity_says_remove_first sh -c 'echo "$1" | jq -r .error | grep -q "remove it first"' - "$r"
LAST="a lists b's node_id: $(q a '{"op":"status"}' | jq -c .nodes)"
check status_lists_node_ids [ "$(field a '{"op":"status"}' '.nodes[] | select(.id == "b") | .node_id')" = "$(nid b)" ]

# ---------------------------------------------------------------- reads/writes
r=$(q a '{"op":"set","kv":{"user1":"batman"}}')
LAST="set on leader: $r"
check set_on_leader [ "$(echo "$r" | jq -r .code)" = 200 ]

r=$(q a '{"op":"get","key":"user1"}')
LAST="get on leader: $r"
check get_on_leader [ "$(echo "$r" | jq -r .value)" = batman ]

r=$(q b '{"op":"get","key":"user1"}')
LAST="linearizable get on follower b: $r"
check get_on_follower [ "$(echo "$r" | jq -r .value)" = batman ]

LAST="stale get on c never saw user1"
check stale_get_on_follower wait_until 5 has_stale c user1 batman

r=$(q c '{"op":"set","kv":{"user2":"robin"}}')
LAST="set on follower c: $r"
check write_on_follower_forwarded [ "$(echo "$r" | jq -r .code)" = 200 ]
r=$(q a '{"op":"get","key":"user2"}')
LAST="forwarded write not on leader: $r"
check forwarded_write_visible [ "$(echo "$r" | jq -r .value)" = robin ]

r=$(q b '{"op":"txn","set":{"user1":"joker"},"if":[{"key":"user1","index":1}]}')
LAST="txn with a wrong index via follower: $r"
check txn_condition_failed [ "$(echo "$r" | jq -r '"\(.code) \(.key)"')" = "412 user1" ]
r=$(q a '{"op":"get","key":"user1"}')
LAST="failed txn changed user1: $r"
check txn_changed_nothing [ "$(echo "$r" | jq -r .value)" = batman ]

r=$(q b '{"op":"del","key":"user2"}')
LAST="del via follower: $r"
check del_on_follower [ "$(echo "$r" | jq -r .code)" = 200 ]
r=$(q c '{"op":"get","key":"user2"}')
LAST="deleted key still there: $r"
check del_visible [ "$(echo "$r" | jq -r .code)" = 404 ]

big=$(head -c 1100 /dev/zero | tr '\0' k)
r=$(q a "{\"op\":\"set\",\"kv\":{\"$big\":\"v\"}}")
LAST="oversized key: $r"
check key_limit_413 [ "$(echo "$r" | jq -r .code)" = 413 ]
r=$(q b 'this is not json')
LAST="garbage request: $r"
check garbage_request_400 [ "$(echo "$r" | jq -r .code)" = 400 ]

# a 3 MiB write through a follower, read back on the other follower
mib=$(head -c 1048576 /dev/zero | tr '\0' v)
printf '{"op":"set","kv":{"big1":"%s","big2":"%s","big3":"%s"}}\n' "$mib" "$mib" "$mib" >"$T/big.json"
r=$(timeout 12 socat -t 10 - UNIX-CONNECT:"$T/c/raftd.sock" <"$T/big.json" 2>/dev/null)
LAST="3 MiB write via c: $(echo "$r" | head -c 200)"
check big_write_forwarded [ "$(echo "$r" | jq -r .code)" = 200 ]
big_on_b() { [ "$(field b '{"op":"get","key":"big3","level":"stale"}' '.value | length')" = 1048576 ]; }
LAST="b does not have big3 with 1 MiB"
check big_write_replicated wait_until 5 big_on_b

# local access control: even with loosened modes, another uid is refused
# (403 line, logged); the socket's group is let in
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    chmod 0755 "$T"; chmod 0711 "$T/a"; chmod 0666 "$T/a/raftd.sock"
    r=$(printf '{"op":"get","key":"user1"}\n' |
        setpriv --reuid=65534 --regid=65534 --clear-groups \
        timeout 10 socat -t 5 - UNIX-CONNECT:"$T/a/raftd.sock" 2>&1)
    LAST="uid 65534 got: $r"
    check other_uid_refused_403 [ "$r" = '{"code":403,"error":"uid 65534 may not use raftd.sock"}' ]
    r=$(printf '{"op":"get","key":"user1"}\n' |
        setpriv --reuid=65534 --regid="$(id -g)" --clear-groups \
        timeout 10 socat -t 5 - UNIX-CONNECT:"$T/a/raftd.sock" 2>&1)
    LAST="socket group member got: $r"
    check socket_group_allowed [ "$(echo "$r" | jq -r .value)" = batman ]
    LAST="no refusal logged"
    check refusal_logged grep -q "raftd.sock: refused 1 client" "$T/a.log"
    chmod 0700 "$T/a" "$T"; chmod 0660 "$T/a/raftd.sock"
else
    echo "# SO_PEERCRED checks skipped (need root and setpriv)"
fi
LAST="raftd.sock mode is $(stat -c %a "$T/b/raftd.sock")"
check client_socket_mode_0660 [ "$(stat -c %a "$T/b/raftd.sock")" = 660 ]

# garbage on the peer port: the connection is dropped, node keeps going
head -c 4096 /dev/urandom | timeout 5 socat -t 1 - TCP:127.0.0.1:14002 >/dev/null 2>&1
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 socat -t 1 - TCP:127.0.0.1:14002 >/dev/null 2>&1
LAST="b not answering after peer-port garbage"
check peer_garbage_survived is_state b follower

# ---------------------------------------------------------------- link supervision
# Kill a's outbound socat links; raftd restarts them and replication goes on.
links_of_a() { pgrep -P "$RPID_a" 2>/dev/null | wc -l; }
two_links() { [ "$(links_of_a)" -eq 2 ]; }
LAST="a does not run two link children: $(links_of_a)"
check two_link_children wait_until 5 two_links
old_links=$(pgrep -P "$RPID_a" | tr '\n' ' ')
# shellcheck disable=SC2086
kill -9 $old_links 2>/dev/null
new_links() {
    cur=$(pgrep -P "$RPID_a" | tr '\n' ' ')
    [ "$(echo "$cur" | wc -w)" -eq 2 ] || return 1
    for p in $cur; do case " $old_links " in *" $p "*) return 1;; esac; done
}
LAST="links not restarted (now: $(pgrep -P "$RPID_a" | tr '\n' ' '), before: $old_links)"
check links_restarted wait_until 5 new_links
LAST="a did not log the link going down"
check link_down_logged grep -q "peer link to [bc] down" "$T/a.log"
r=$(q a '{"op":"set","kv":{"afterlinks":"yes"}}')
LAST="write after link restart: $r"
check write_after_link_restart [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="b never saw the write after link restart"
check replicated_after_link_restart wait_until 5 has_stale b afterlinks yes

# ---------------------------------------------------------------- kill -9 leader
kill -9 "$RPID_a"
wait "$RPID_a" 2>/dev/null
new_leader() {
    for n in b c; do
        if is_state $n leader; then NEWL=$n; return 0; fi
    done
    return 1
}
NEWL=""
LAST="no new leader after killing a"
check new_leader_elected wait_until 10 new_leader

if [ -n "$NEWL" ]; then
    r=$(q "$NEWL" '{"op":"get","key":"user1"}')
    LAST="data after failover: $r"
    check data_intact_after_failover [ "$(echo "$r" | jq -r .value)" = batman ]
    # 60 writes while a is down, on one connection: snapshots run every 20
    # entries, so a must catch up through InstallSnapshot.
    other=b; [ "$NEWL" = b ] && other=c
    i=1
    reqs=""
    while [ $i -le 60 ]; do
        reqs="$reqs{\"op\":\"set\",\"kv\":{\"k$i\":\"v$i\"}}
"
        i=$((i + 1))
    done
    out=$(printf '%s' "$reqs" | timeout 30 socat -t 20 - UNIX-CONNECT:"$T/$other/raftd.sock" 2>/dev/null)
    n200=$(echo "$out" | jq -r .code | grep -c '^200$')
    LAST="writes with a down: $n200 of 60 got 200"
    check writes_while_leader_down [ "$n200" = 60 ]
    snapi=$(field "$NEWL" '{"op":"status"}' .snapshot_index)
    LAST="new leader snapshot index $snapi"
    check snapshot_taken [ "${snapi:-0}" -gt 20 ]
fi

# ---------------------------------------------------------------- restart a
start_raftd a
wait_until 5 sock_up a
LAST="restarted a never got k60"
check restarted_node_caught_up wait_until 15 has_stale a k60 v60
LAST="restarted a lost user1"
check restarted_node_kept_old_data has_stale a user1 batman
LAST="a did not log a snapshot install"
check restart_used_snapshot grep -q "snapshot installed" "$T/a.log"
# The snapshot holds the three 1 MiB values: it came in many chunks.
big_on_a() { [ "$(field a '{"op":"get","key":"big2","level":"stale"}' '.value | length')" = 1048576 ]; }
LAST="a lacks big2 after a multi-chunk snapshot"
check multi_chunk_snapshot big_on_a
r=$(q a '{"op":"set","kv":{"after":"restart"}}')
LAST="write through restarted a: $r"
check write_after_restart [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="write after restart not on c"
check write_after_restart_replicated wait_until 5 has_stale c after restart

r=$(q a '{"op":"list","prefix":"k","limit":5}')
LAST="list: $r"
check list_prefix [ "$(echo "$r" | jq -r '"\(.items | length) \(.more)"')" = "5 true" ]

# ---------------------------------------------------------------- many clients
# 150 concurrent writers spread over the three nodes (two thirds forwarded).
mkdir -p "$T/conc"
i=1
CPIDS=""
while [ $i -le 150 ]; do
    case $((i % 3)) in 0) n=a;; 1) n=b;; 2) n=c;; esac
    q $n "{\"op\":\"set\",\"kv\":{\"conc$i\":\"x$i\"}}" >"$T/conc/$i" &
    CPIDS="$CPIDS $!"
    i=$((i + 1))
done
for p in $CPIDS; do wait "$p"; done
n200=$(cat "$T"/conc/* | jq -r .code | grep -c '^200$')
LAST="concurrent writes: $n200 of 150 got 200"
check concurrent_writes [ "$n200" = 150 ]
r=$(q a '{"op":"list","prefix":"conc","limit":1000}')
LAST="concurrent keys listed: $(echo "$r" | jq -r '.items | length')"
check concurrent_writes_all_there [ "$(echo "$r" | jq -r '.items | length')" = 150 ]

# A client that never reads its replies and one that stalls mid-line do not
# hold up anyone else.
(yes '{"op":"status"}' | head -n 20000 | timeout 5 socat -u - UNIX-CONNECT:"$T/a/raftd.sock" \
    >/dev/null 2>&1) &
SLOW1=$!
PIDS="$PIDS $SLOW1"
( (printf '{"op":"get","ke'; sleep 4) | timeout 5 socat -t 5 - UNIX-CONNECT:"$T/a/raftd.sock" \
    >/dev/null 2>&1) &
SLOW2=$!
PIDS="$PIDS $SLOW2"
sleep 0.5
t0=$(date +%s%N)
r=$(q a '{"op":"get","key":"user1"}')
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
LAST="get took ${ms} ms next to slow clients: $r"
fast_answer() { [ "$(echo "$r" | jq -r .value)" = batman ] && [ $ms -lt 1000 ]; }
check slow_clients_do_not_stall fast_answer
wait $SLOW1 $SLOW2 2>/dev/null

# ---------------------------------------------------------------- membership
cur=""
for n in a b c; do is_state $n leader && cur=$n; done
target=a; [ "$cur" = a ] && target=c
r=$(q b "{\"op\":\"transfer\",\"id\":\"$target\"}")
LAST="transfer to $target: $r"
check transfer_accepted [ "$(echo "$r" | jq -r .code)" = 200 ]
LAST="$target did not become leader after transfer"
check transfer_done wait_until 5 is_state $target leader

r=$(q b '{"op":"remove","id":"nosuch"}')
LAST="remove unknown: $r"
check remove_unknown_404 [ "$(echo "$r" | jq -r .code)" = 404 ]
rm_node=c; [ "$target" = c ] && rm_node=a
r=$(q b "{\"op\":\"remove\",\"id\":\"$rm_node\"}")
LAST="remove $rm_node: $r"
check remove_node [ "$(echo "$r" | jq -r .code)" = 200 ]
two_nodes() { [ "$(field "$target" '{"op":"status"}' '.nodes | length')" = 2 ]; }
LAST="config after remove: $(q "$target" '{"op":"status"}' | jq -c .nodes)"
check remove_applied wait_until 5 two_nodes

# ---------------------------------------------------------------- no quorum
# Two voters left (b and $target); stop b and a write on $target cannot commit.
kill -TERM "$RPID_b"
stopped_b() { ! kill -0 "$RPID_b" 2>/dev/null; }
wait_until 5 stopped_b
t0=$(date +%s)
r=$(q "$target" '{"op":"set","kv":{"lost":"maybe"}}')
t1=$(date +%s)
LAST="write without quorum: $r after $((t1 - t0)) s"
timely_503() { [ "$(echo "$r" | jq -r .code)" = 503 ] && [ $((t1 - t0)) -le 8 ]; }
check no_quorum_503 timely_503

# ---------------------------------------------------------------- clean stop
start_raftd b
wait_until 5 sock_up b
kill -TERM "$RPID_b"
stopped() { ! kill -0 "$RPID_b" 2>/dev/null; }
LAST="b did not exit on SIGTERM"
check sigterm_clean_exit wait_until 5 stopped
LAST="b left its socket behind"
check sigterm_removes_socket [ ! -e "$T/b/raftd.sock" ]

finish
