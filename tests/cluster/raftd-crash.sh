#!/bin/sh
# Crash test of raftd: acknowledged writes survive kill -9 of every node.
# Three raftd on loopback (socat listeners on 127.0.0.1:14011-14013); many
# concurrent writers; all three raftd are killed with SIGKILL while writes
# are in flight; after a restart every write that was answered 200 must be
# there with its value, on every node. Prints ok/FAIL lines and
# "N passed, M failed".
BUILD=${BUILD:-build}
RAFTD=$BUILD/bin/raftd
for tool in socat jq; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL setup: $tool not installed"; echo "0 passed, 1 failed"; exit 1; }
done
[ -x "$RAFTD" ] || { echo "FAIL setup: $RAFTD not built"; echo "0 passed, 1 failed"; exit 1; }

# Fixed ports: concurrent runs of this test (two engineers running make
# test at once) would talk to each other's nodes, so take a lock first.
if command -v flock >/dev/null 2>&1; then
    exec 9>/tmp/keyval-test-ports-14011-14013.lock
    flock -w 300 9 || { echo "FAIL setup: ports 14011-14013 busy for 300 s"; echo "0 passed, 1 failed"; exit 1; }
fi
listener_free() { # port
    ! (echo | timeout 2 socat -u - TCP:127.0.0.1:$1 2>/dev/null)
}
for port in $(seq 14011 14013); do
    listener_free $port || { echo "FAIL setup: something already listens on 127.0.0.1:$port"; echo "0 passed, 1 failed"; exit 1; }
done

T=$(mktemp -d /tmp/kv-raftd-crash.XXXXXX)
PIDS=""
passed=0
failed=0
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() {
    name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "${LAST:-condition false}"; fi
}
port_of() { case $1 in a) echo 1;; b) echo 2;; c) echo 3;; esac; }

start_listener() {
    n=$(port_of "$1")
    socat TCP-LISTEN:1401$n,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$T/$1/peer.sock" \
        2>/dev/null &
    PIDS="$PIDS $!"
}
start_raftd() {
    name=$1; shift
    n=$(port_of "$name")
    mkdir -p "$T/$name"
    "$RAFTD" -id "$name" -raddr 127.0.0.1:1401$n -haddr 127.0.0.1:1301$n -tick-ms 20 \
        -snapshot-entries 50 -snapshot-trail 10 "$@" "$T/$name" 2>>"$T/$name.log" &
    eval "RPID_$name=$!"
    PIDS="$PIDS $!"
}
q() { printf '%s\n' "$2" | timeout 12 socat -t 10 - UNIX-CONNECT:"$T/$1/raftd.sock" 2>/dev/null; }
field() { q "$1" "$2" | jq -r "$3" 2>/dev/null; }
# nid NODE: its Raft id (16 hex digits), which a join request names.
nid() { field "$1" '{"op":"status"}' .node_id; }
wait_until() {
    limit=$(( $1 * 10 )); shift
    i=0
    while [ $i -lt $limit ]; do
        if "$@"; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
sock_up() { [ -S "$T/$1/raftd.sock" ]; }
is_state() { [ "$(field "$1" '{"op":"status"}' .state)" = "$2" ]; }
voters() { field a '{"op":"status"}' '[.nodes[] | select(.voter)] | length'; }
three_voters() { [ "$(voters)" = 3 ]; }

mkdir -p "$T/a" "$T/b" "$T/c" "$T/w"
for n in a b c; do start_listener $n; done
start_raftd a -bootstrap
start_raftd b
start_raftd c
wait_until 5 sock_up a && wait_until 5 sock_up b && wait_until 5 sock_up c
wait_until 5 is_state a leader
q a "{\"op\":\"join\",\"id\":\"b\",\"node_id\":\"$(nid b)\",\"addr\":\"127.0.0.1:14012\"}" >/dev/null
q a "{\"op\":\"join\",\"id\":\"c\",\"node_id\":\"$(nid c)\",\"addr\":\"127.0.0.1:14013\"}" >/dev/null
LAST="cluster did not form: $(q a '{"op":"status"}')"
check cluster_formed wait_until 10 three_voters

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

if [ "$failed" -gt 0 ]; then
    for n in a b c; do echo "--- $n.log"; tail -n 15 "$T/$n.log"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
