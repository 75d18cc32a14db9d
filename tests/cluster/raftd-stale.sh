#!/bin/sh
# Cluster test of raftd: a node that was down while the configuration
# changed comes back with a stale configuration and must still follow a
# leader it has never heard of. Nodes a, b, c (socat listeners on
# 127.0.0.1:14021-14024); c is stopped, d joins, leadership moves to d,
# c restarts and must catch up from d. Prints ok/FAIL lines and
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
    exec 9>/tmp/keyval-test-ports-14021-14024.lock
    flock -w 300 9 || { echo "FAIL setup: ports 14021-14024 busy for 300 s"; echo "0 passed, 1 failed"; exit 1; }
fi
listener_free() { # port
    ! (echo | timeout 2 socat -u - TCP:127.0.0.1:$1 2>/dev/null)
}
for port in $(seq 14021 14024); do
    listener_free $port || { echo "FAIL setup: something already listens on 127.0.0.1:$port"; echo "0 passed, 1 failed"; exit 1; }
done

T=$(mktemp -d /tmp/kv-raftd-stale.XXXXXX)
PIDS=""
passed=0
failed=0

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    if [ -n "$KEEP_LOGS" ]; then mkdir -p "$KEEP_LOGS" && cp "$T"/*.log "$KEEP_LOGS"/ 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
}
check() { # name description command...
    name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "${LAST:-condition false}"; fi
}

port_of() { case $1 in a) echo 1;; b) echo 2;; c) echo 3;; d) echo 4;; esac; }

RAFTD_OPTS="-tick-ms 20 -election-ticks 10"

start_listener() { # name
    n=$(port_of "$1")
    socat TCP-LISTEN:1402$n,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$T/$1/peer.sock" \
        2>>"$T/$1.socat.log" &
    eval "LPID_$1=$!"
    PIDS="$PIDS $!"
}

start_raftd() { # name [extra args]
    name=$1; shift
    n=$(port_of "$name")
    mkdir -p "$T/$name"
    # shellcheck disable=SC2086
    "$RAFTD" -id "$name" -raddr 127.0.0.1:1402$n -haddr 127.0.0.1:1302$n $RAFTD_OPTS "$@" \
        "$T/$name" 2>>"$T/$name.log" &
    eval "RPID_$name=$!"
    PIDS="$PIDS $!"
}

# q NODE JSON: one request, prints the reply line.
q() {
    printf '%s\n' "$2" | timeout 12 socat -t 10 - UNIX-CONNECT:"$T/$1/raftd.sock" 2>/dev/null
}

# field NODE JSON FILTER
field() { q "$1" "$2" | jq -r "$3" 2>/dev/null; }
# nid NODE: its Raft id (16 hex digits), which a join request names.
nid() { field "$1" '{"op":"status"}' .node_id; }

# wait_until SECONDS command...: retries every 0.1 s.
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

is_state() { [ "$(field "$1" '{"op":"status"}' .state)" = "$2" ]; }
sock_up() { [ -S "$T/$1/raftd.sock" ]; }
leader_of() { field "$1" '{"op":"status"}' .leader; }
has_leader() { l=$(leader_of "$1"); [ -n "$l" ] && [ "$l" != null ]; }
voters() { field "$1" '{"op":"status"}' '[.nodes[] | select(.voter)] | length'; }
stale_value() { field "$1" "{\"op\":\"get\",\"key\":\"$2\",\"level\":\"stale\"}" .value; }
has_stale() { [ "$(stale_value "$1" "$2")" = "$3" ]; }

# ---------------------------------------------------------------- start
mkdir -p "$T/a" "$T/b" "$T/c" "$T/d"
for n in a b c d; do start_listener $n; done
start_raftd a -bootstrap
start_raftd b
start_raftd c
wait_until 5 sock_up a && wait_until 5 sock_up b && wait_until 5 sock_up c
wait_until 5 is_state a leader
q a "{\"op\":\"join\",\"id\":\"b\",\"node_id\":\"$(nid b)\",\"addr\":\"127.0.0.1:14022\"}" >/dev/null
q a "{\"op\":\"join\",\"id\":\"c\",\"node_id\":\"$(nid c)\",\"addr\":\"127.0.0.1:14023\"}" >/dev/null
nvoters() { [ "$(voters a)" = "$1" ]; }
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

if [ "$failed" -gt 0 ]; then
    for n in a b c d; do echo "--- $n.log"; tail -n 15 "$T/$n.log" 2>/dev/null; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
