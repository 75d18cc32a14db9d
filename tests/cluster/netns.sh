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
# NETNS_LONG=1 (make soak-netns) adds the cuts in NETNS_LONG_CUTS
# (default "120 600": 2 and 10 minutes). Figures are printed as
# "figure: ...".
cd "$(dirname "$0")/../.." || exit 1

CUT=${NETNS_CUT:-30}
NET=10.231.14
NODES="1 2 3"
LOCK=26400
# n3 listens on every address and advertises its own (-hadv/-radv).
ANY_NODE=3
. tests/cluster/netns.inc
netns_setup

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
    refuses_at_once "$_fl" $_f
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
    start_cluster "$_lab" "$@" || return 1
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
        for _lc in ${NETNS_LONG_CUTS:-120 600}; do
            follower_cut "${_lab}_cut$_lc" "$_lc"
        done
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
