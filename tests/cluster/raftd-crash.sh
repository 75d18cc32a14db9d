#!/bin/sh
# Crash test of raftd: acknowledged writes survive kill -9 of every node.
# Three raftd on loopback (socat listeners on 127.0.0.1:14011-14013); many
# concurrent writers; all three raftd are killed with SIGKILL while writes
# are in flight; after a restart every write that was answered 200 must be
# there with its value, on every node. Prints ok/FAIL lines and
# "N passed, M failed".
TEST_NAME=crash
NODES="a b c"
PEER_PREFIX=1401
RAFTD_OPTS="-tick-ms 20 -snapshot-entries 50 -snapshot-trail 10"
. tests/cluster/raftd-helpers.inc

start_cluster
mkdir -p "$T/w"
join_all
LAST="cluster did not form: $(q a '{"op":"status"}')"
check cluster_formed wait_until 10 nvoters 3

# 30 writers, each writing its own keys one after another on one
# connection to a node of its choosing, until the nodes die.
w=1
WPIDS=""
while [ $w -le 30 ]; do
    case $((w % 3)) in 0) n=a;; 1) n=b;; 2) n=c;; esac
    (
        i=1
        while [ $i -le 400 ]; do
            printf '{"op":"set","kv":{"w%d-%d":"v%d-%d"}}\n' $w $i $w $i
            i=$((i + 1))
        done
    ) | timeout 20 socat -t 10 - UNIX-CONNECT:"$T/$n/raftd.sock" >"$T/w/$w" 2>/dev/null &
    WPIDS="$WPIDS $!"
    w=$((w + 1))
done
sleep 1.5
kill -9 "$RPID_a" "$RPID_b" "$RPID_c"
for p in $WPIDS; do wait "$p" 2>/dev/null; done
wait "$RPID_a" "$RPID_b" "$RPID_c" 2>/dev/null

# Which writes were acknowledged? Replies come in request order per
# connection, so reply line i belongs to key w-i.
w=1
: >"$T/acked"
while [ $w -le 30 ]; do
    awk -v w=$w '/^\{"code":200,/ {print "w" w "-" NR " v" w "-" NR}' "$T/w/$w" >>"$T/acked"
    w=$((w + 1))
done
acked=$(wc -l <"$T/acked")
echo "# $acked writes acknowledged before the crash"
LAST="only $acked writes acknowledged before the crash"
check some_writes_acked [ "$acked" -ge 30 ]

start_raftd a
start_raftd b
start_raftd c
wait_until 5 sock_up a && wait_until 5 sock_up b && wait_until 5 sock_up c
has_leader() { for n in a b c; do is_state $n leader && return 0; done; return 1; }
LAST="no leader after restarting all nodes"
check leader_after_restart wait_until 10 has_leader

# A linearizable read on every node for every acknowledged key, over one
# connection per node.
for n in a b c; do
    awk '{printf "{\"op\":\"get\",\"key\":\"%s\"}\n", $1}' "$T/acked" |
        timeout 60 socat -t 30 - UNIX-CONNECT:"$T/$n/raftd.sock" 2>/dev/null |
        jq -r '"\(.key) \(.value)"' >"$T/got.$n"
    missing=$(awk 'NR==FNR {have[$0]=1; next} !($0 in have)' "$T/got.$n" "$T/acked" | wc -l)
    LAST="$missing of $acked acknowledged writes missing or wrong on $n (e.g. $(awk 'NR==FNR {have[$0]=1; next} !($0 in have)' "$T/got.$n" "$T/acked" | head -n 1))"
    check "acked_writes_survive_on_$n" [ "$missing" -eq 0 ]
done

finish
