#!/bin/sh
# Separate hosts: three keyval nodes, each in a network namespace of its
# own with a real address on a private bridge (10.231.14.0/24, inside a
# hub namespace this test creates; nothing is added to the root
# namespace), joined over those addresses. A link is cut by setting the
# node's port on the bridge down. Covers: join over real addresses; a
# follower cut off while the leader takes writes (the cut-off node
# refuses writes and reads with "no leader" at once; its catch-up time
# after the heal is printed); the leader cut off (election time printed;
# the old leader steps down and catches up); kill -9 and restart; the
# same with -peer-tls across hosts (certificates from kv-certs, one per
# node). Needs root and `ip netns`; prints a SKIP line otherwise.
# NETNS_CUT=SECONDS (default 30) is the length of the long cut;
# NETNS_LONG=1 adds a 120 s cut. Figures are printed as "figure: ...".
cd "$(dirname "$0")/../.." || exit 1

skip() {
    echo "SKIP netns: $*"
    echo "0 passed, 0 failed"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
probe=kvtp$$
ip netns add $probe 2>/dev/null || skip "ip netns add does not work here"
ip netns del $probe

. tests/cluster/helpers.inc
# One run at a time (the lock of require_ports; the port is only a name:
# every node listens inside its own namespace).
require_ports 26400

CUT=${NETNS_CUT:-30}
NS=kvt$$
NET=10.231.14
NODES="1 2 3"
KVCERTS=$BUILD/bin/kv-certs

ns_cleanup() {
    cleanup
    for n in $NODES; do ip netns del $NS-n$n 2>/dev/null; done
    ip netns del $NS-hub 2>/dev/null
}
trap ns_cleanup EXIT

# The hub: a bridge; node N: eth0 = $NET.1N, its peer vN on the bridge.
ip netns add $NS-hub || { bad setup "ip netns add"; finish; }
ip -n $NS-hub link add br0 type bridge
ip -n $NS-hub link set br0 up
for n in $NODES; do
    ip netns add $NS-n$n
    ip -n $NS-n$n link set lo up
    ip -n $NS-hub link add v$n type veth peer name eth0 netns $NS-n$n
    ip -n $NS-hub link set v$n master br0
    ip -n $NS-hub link set v$n up
    ip -n $NS-n$n addr add $NET.1$n/24 dev eth0
    ip -n $NS-n$n link set eth0 up
done

cut() { ip -n $NS-hub link set v$1 down; }
heal() { ip -n $NS-hub link set v$1 up; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# sock N: node N's raftd.sock (a file: reachable from every namespace).
sock() { echo "$T/n$1/raftd.sock"; }
st() { echo '{"op":"status"}' | timeout 5 socat -t 4 - "UNIX-CONNECT:$(sock "$1")" 2>/dev/null |
    jq -r "$2" 2>/dev/null; }

# start N [ARGS...]: keyval in node N's namespace on its own address.
start() {
    _n=$1; shift
    _join=""
    [ "$_n" != 1 ] && [ ! -e "$T/n$_n/raft.db" ] && _join="-join $NET.11:11000"
    _tls=""
    [ -n "$PEER_TLS" ] && _tls="-peer-tls $T/pki/n$_n"
    # n3 listens on every address and advertises its own (-hadv/-radv).
    _addrs="-haddr $NET.1$_n:11000 -raddr $NET.1$_n:12000"
    [ "$_n" = 3 ] && _addrs="-haddr 0.0.0.0:11000 -raddr 0.0.0.0:12000 -hadv $NET.13:11000
        -radv $NET.13:12000"
    ip netns exec $NS-n$_n "$KEYVAL" -id n$_n $_addrs $_join $_tls "$@" "$T/n$_n" \
        >>"$T/n$_n.log" 2>&1 9>&- &
    eval "pid_n$_n=$!"
    all_pids="$all_pids $!"
}

leader_of() { st "$1" .leader; }
voters3() { [ "$(st 1 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
all_follow() {
    _l=$(leader_of 1)
    [ -n "$_l" ] && [ "$(leader_of 2)" = "$_l" ] && [ "$(leader_of 3)" = "$_l" ]
}
# caught_up N INDEX: node N has applied INDEX.
caught_up() { [ "$(st "$1" .applied_index)" -ge "$2" ] 2>/dev/null; }

# A writer against one node's raftd.sock: kv-set in a loop, one unique
# value per write, counting ok / failed / unknown (kv-set's exit status).
writer() { # NODE FILE
    _i=0
    while [ ! -e "$T/stop-writer" ]; do
        _i=$((_i + 1))
        KEYVAL_TIMEOUT_MS=8000 "$KVSET" -s "$(sock "$1")" "w$_i" "v$_i" >/dev/null 2>&1
        case $? in 0) echo ok ;; 3 | 4) echo failed ;; 5) echo unknown ;; *) echo other ;; esac
        sleep 0.05
    done >"$2"
}
start_writer() {
    rm -f "$T/stop-writer"
    writer "$1" "$2" &
    writer_pid=$!
}
stop_writer() {
    touch "$T/stop-writer"
    wait "$writer_pid" 2>/dev/null
    echo "figure: writes to $1: $(grep -c '^ok' "$2") acknowledged," \
        "$(grep -c '^failed' "$2") failed, $(grep -c '^unknown' "$2") unknown"
}

# follower_cut LABEL SECONDS: cut a follower while the leader takes
# writes; checks that the cut-off node refuses at once, prints the
# catch-up time after the heal.
follower_cut() {
    _fl=$1
    _l=$(leader_of 1)
    _ln=${_l#n}
    _f=1
    [ "$_ln" = 1 ] && _f=2
    start_writer "$_ln" "$T/writes-$_fl"
    cut $_f
    sleep 3
    # A client that waits 3 s gets the answer: the node knows it has no
    # leader, so it says so instead of waiting out its 5 s request timeout.
    _t0=$(ms)
    KEYVAL_TIMEOUT_MS=3000 "$KVSET" -s "$(sock $_f)" cutoff 1 >"$T/out" 2>&1
    _rc=$?
    _t1=$(ms)
    KEYVAL_TIMEOUT_MS=3000 "$KVGET" -s "$(sock $_f)" cutoff >"$T/outr" 2>&1
    _rcr=$?
    _t2=$(ms)
    echo "figure: $_fl: cut-off node n$_f answers a write in $((_t1 - _t0)) ms" \
        "(exit $_rc: $(head -c 100 "$T/out")), a read in $((_t2 - _t1)) ms (exit $_rcr)"
    if [ $_rc = 3 ] && grep -q "no leader" "$T/out"; then
        ok "${_fl}_cutoff_write_says_no_leader"
    else
        bad "${_fl}_cutoff_write_says_no_leader" "exit $_rc: $(cat "$T/out")"
    fi
    if [ $_rcr = 3 ] && grep -q "no leader" "$T/outr"; then
        ok "${_fl}_cutoff_read_says_no_leader"
    else
        bad "${_fl}_cutoff_read_says_no_leader" "exit $_rcr: $(cat "$T/outr")"
    fi
    sleep $(($2 - 3))
    stop_writer "n$_ln" "$T/writes-$_fl"
    "$KVSET" -s "$(sock "$_ln")" after-$_fl 1 >/dev/null 2>&1
    _target=$(st "$_ln" .commit_index)
    _h=$(ms)
    heal $_f
    if wait_until 120 caught_up $_f "$_target"; then
        echo "figure: $_fl: n$_f caught up (applied $_target) $(($(ms) - _h)) ms after the heal" \
            "of a ${2} s cut"
        ok "${_fl}_follower_catches_up"
    else
        bad "${_fl}_follower_catches_up" "n$_f applied $(st $_f .applied_index) < $_target"
    fi
    # What the operator reads in the leader's log.
    check "${_fl}_leader_logs_link_declared_dead" \
        grep -q "peer link to n$_f declared dead (no contact for" "$T/n$_ln.log"
    check "${_fl}_leader_logs_link_back" wait_until 10 \
        grep -q "peer link to n$_f back" "$T/n$_ln.log"
}

# link_child N M: the pid of node N's link child (socat) to node M.
link_child() {
    eval "_kp=\$pid_n$1"
    _rp=""
    for _c in $(children_of "$_kp"); do
        [ "$(cat /proc/$_c/comm 2>/dev/null)" = raftd ] && _rp=$_c
    done
    for _c in $(children_of "$_rp"); do
        tr '\0' ' ' </proc/$_c/cmdline 2>/dev/null | grep -q "$NET.1$2:12000" && echo "$_c"
    done | head -n 1
}

# fwd_reply_cut LABEL: the leader's link to a follower stopped (SIGSTOP):
# a write sent to that follower is forwarded to the leader and committed;
# the client must learn that it was (not "outcome unknown").
fwd_reply_cut() {
    _wl=$1
    _l=$(leader_of 1)
    _ln=${_l#n}
    _f=3
    [ "$_ln" = 3 ] && _f=2
    _sp=$(link_child "$_ln" "$_f")
    if [ -z "$_sp" ]; then
        bad "${_wl}_find_link_child" "no link child of n$_ln to n$_f"
        return
    fi
    kill -STOP "$_sp"
    _t0=$(ms)
    KEYVAL_TIMEOUT_MS=10000 "$KVSET" -s "$(sock $_f)" fwd-$_wl 1 >"$T/out" 2>&1
    _rc=$?
    echo "figure: $_wl: write to n$_f with the leader's link to it stopped: exit $_rc" \
        "after $(($(ms) - _t0)) ms ($(head -c 100 "$T/out"))"
    check "${_wl}_forwarded_write_acknowledged" [ $_rc = 0 ]
    kill -CONT "$_sp" 2>/dev/null
    wait_until 10 caught_up $_f "$(st "$_ln" .commit_index)"
}

# oneway_cut LABEL: stop (SIGSTOP) a follower's link child to the leader:
# its acknowledgements stop, the leader's messages still arrive. The
# follower must take writes again without anyone resuming that process.
oneway_cut() {
    _ol=$1
    _l=$(leader_of 1)
    _ln=${_l#n}
    _f=3
    [ "$_ln" = 3 ] && _f=2
    _sp=$(link_child "$_f" "$_ln")
    if [ -z "$_sp" ]; then
        bad "${_ol}_find_link_child" "no socat child of n$_f raftd ($_rp) to n$_ln"
        return
    fi
    kill -STOP "$_sp"
    _h=$(ms)
    "$KVSET" -s "$(sock "$_ln")" oneway-$_ol 1 >/dev/null 2>&1
    _target=$(st "$_ln" .commit_index)
    # The leader must hear n$_f again: its match reaches the new entry.
    matched() {
        [ "$(st "$_ln" ".nodes[] | select(.id == \"n$_f\") | .match")" -ge "$_target" ] 2>/dev/null
    }
    if wait_until 30 matched; then
        echo "figure: $_ol: leader hears n$_f again $(($(ms) - _h)) ms after its link child was stopped"
        ok "${_ol}_oneway_cut_heals_itself"
    else
        bad "${_ol}_oneway_cut_heals_itself" "leader's match of n$_f stays below $_target"
    fi
    kill -CONT "$_sp" 2>/dev/null
}

# leader_cut LABEL: cut the leader; print the election time; heal.
leader_cut() {
    _cl=$1
    _l=$(leader_of 1)
    _ln=${_l#n}
    _o1=1 _o2=2
    [ "$_ln" = 1 ] && _o1=3
    [ "$_ln" = 2 ] && _o2=3
    _h=$(ms)
    cut $_ln
    new_leader() {
        _x=$(leader_of $_o1)
        [ -n "$_x" ] && [ "$_x" != "$_l" ] && [ "$(leader_of $_o2)" = "$_x" ]
    }
    if wait_until 30 new_leader; then
        echo "figure: $_cl: new leader $(leader_of $_o1) $(($(ms) - _h)) ms after the leader $_l was cut"
        ok "${_cl}_new_leader_elected"
    else
        bad "${_cl}_new_leader_elected" "no new leader on n$_o1/n$_o2"
    fi
    "$KVSET" -s "$(sock $_o1)" during-$_cl 1 >/dev/null 2>&1
    check "${_cl}_majority_takes_writes" [ $? = 0 ]
    _target=$(st $_o1 .commit_index)
    _h=$(ms)
    heal $_ln
    if wait_until 60 caught_up $_ln "$_target"; then
        echo "figure: $_cl: old leader $_l caught up $(($(ms) - _h)) ms after the heal"
        ok "${_cl}_old_leader_catches_up"
    else
        bad "${_cl}_old_leader_catches_up" "$_l applied $(st $_ln .applied_index) < $_target"
    fi
    check "${_cl}_old_leader_follows" [ "$(leader_of $_ln)" = "$(leader_of $_o1)" ]
}

# run_cluster LABEL [KEYVAL ARGS]: the whole scenario on a fresh cluster.
run_cluster() {
    _lab=$1; shift
    for n in $NODES; do rm -rf "$T/n$n"; done
    start 1 "$@"
    if ! wait_until 30 sh -c "[ \"\$(echo '{\"op\":\"status\"}' | socat -t 2 - UNIX-CONNECT:$(sock 1) 2>/dev/null | jq -r .state)\" = leader ]"; then
        bad "${_lab}_n1_leads" "n1 not leader"
        return 1
    fi
    start 2 "$@"
    wait_until 20 sh -c "[ \"\$(echo '{\"op\":\"status\"}' | socat -t 2 - UNIX-CONNECT:$(sock 1) 2>/dev/null | jq '[.nodes[]|select(.voter)]|length')\" = 2 ]"
    start 3 "$@"
    if wait_until 40 voters3 && wait_until 20 all_follow; then
        ok "${_lab}_join_over_real_addresses"
    else
        bad "${_lab}_join_over_real_addresses" "$(st 1 -c .nodes)"
        return 1
    fi
    check "${_lab}_status_shows_real_address" \
        [ "$(st 1 '.nodes[] | select(.id == "n2") | .haddr')" = "$NET.12:11000" ]
    check "${_lab}_bound_to_any_advertises_its_own_address" \
        [ "$(st 1 '.nodes[] | select(.id == "n3") | .haddr + " " + .addr')" = \
            "$NET.13:11000 $NET.13:12000" ]
    # HTTP across hosts: n3's namespace asks n2 for a key written on n1.
    "$KVSET" -s "$(sock 1)" hello world >/dev/null
    check "${_lab}_http_read_across_hosts" wait_until 10 sh -c \
        "ip netns exec $NS-n3 curl -s -m 3 http://$NET.12:11000/key/hello | grep -q world"
    # kv-health on a host, given only the data directory, finds its node.
    _hl=$(ip netns exec $NS-n1 "$BUILD/bin/kv-health" -d "$T/n1" 2>&1)
    check "${_lab}_kv_health_finds_its_node" sh -c "echo '$_hl' | grep -q '^KEYVAL OK - node n1'"
    follower_cut "${_lab}_cut${CUT}" "$CUT"
    if [ -n "$NETNS_LONG" ]; then
        follower_cut "${_lab}_cut120" 120
    fi
    oneway_cut "${_lab}_oneway"
    fwd_reply_cut "${_lab}_fwdreply"
    leader_cut "${_lab}_leadercut"
    # kill -9 a follower and restart it with the same command line.
    _l=$(leader_of 1)
    _k=1
    [ "$_l" = n1 ] && _k=2
    kill_node n$_k
    "$KVSET" -s "$(sock "${_l#n}")" while-dead 1 >/dev/null 2>&1
    _target=$(st "${_l#n}" .commit_index)
    start $_k "$@"
    check "${_lab}_killed_node_restarts_and_catches_up" wait_until 30 caught_up $_k "$_target"
    for n in $NODES; do
        kill_node n$n
        mv "$T/n$n.log" "$T/$_lab-n$n.log"
    done
}

run_cluster plain

# Peer TLS across hosts: one CA, one certificate per node with its own IP.
certs_ok=1
for n in $NODES; do
    "$KVCERTS" -H $NET.1$n "$T/pki" n$n >>"$T/certs.log" 2>&1 || certs_ok=0
done
if [ $certs_ok = 1 ]; then
    PEER_TLS=1
    run_cluster tls
else
    bad tls_certs "kv-certs failed: $(tail -n 3 "$T/certs.log")"
fi
finish
