#!/bin/sh
# A join that cannot work: with peer TLS, the joiner's certificate does
# not name the address it advertises (127.0.0.1), so the leader's link to
# it fails socat's name check. keyval -join must not say "joined the
# cluster"; it says, after its bounded wait, that the leader has not
# replicated to this node and what to check; the leader's raftd log
# carries socat's own error line (the link child's stderr). Then a good
# join on the same cluster says "joined the cluster" only after the node
# has applied the leader's entries. Ports 26410-26412, 26420-26422.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 26410 26411 26412 26420 26421 26422
CERTS=$BUILD/bin/kv-certs
# n0, n1: certificates for 127.0.0.1; bad: only for 10.9.9.9.
if ! "$CERTS" -H 127.0.0.1 "$T/pki" n0 n1 >"$T/certs.log" 2>&1 ||
   ! "$CERTS" -H 10.9.9.9 "$T/pki" bad >>"$T/certs.log" 2>&1; then
    bad setup "kv-certs: $(cat "$T/certs.log")"
    finish
fi
start_node n0 -id n0 -haddr 127.0.0.1:26410 -raddr 127.0.0.1:26420 -peer-tls "$T/pki/n0" "$T/n0"
wait_until 20 is_leader 26410 || { bad setup "n0 does not lead"; finish; }

start_node bad -id bad -haddr 127.0.0.1:26412 -raddr 127.0.0.1:26422 -peer-tls "$T/pki/bad" \
    -join 127.0.0.1:26410 "$T/bad"
said_not_replicated() { grep -q "has not replicated to it within" "$T/bad.log"; }
if wait_until 60 said_not_replicated; then
    ok bad_join_says_not_replicated
else
    bad bad_join_says_not_replicated "$(tail -n 5 "$T/bad.log")"
fi
check bad_join_not_called_joined sh -c "! grep -q 'joined the cluster' '$T/bad.log'"
check bad_join_names_what_to_check grep -q "certificate names that host" "$T/bad.log"
check bad_join_not_marked test ! -e "$T/bad/joined"
# socat's reason, from the link child's stderr, in the leader's log.
check leader_logs_link_error grep -q "raftd: n0: peer link to bad: .*socat.*E " "$T/n0.log"
grep "peer link to bad: " "$T/n0.log" | head -n 2 | sed 's/^/# /'
# At most one such line per 10 s, however often the link is retried.
echo "# figure: $(grep -c "peer link to bad: .*socat" "$T/n0.log") socat lines logged over the" \
    "30 s join wait (at most one per 10 s per link)"
kill_node bad

start_node n1 -id n1 -haddr 127.0.0.1:26411 -raddr 127.0.0.1:26421 -peer-tls "$T/pki/n1" \
    -join 127.0.0.1:26410 "$T/n1"
if wait_until 60 grep -q "joined the cluster" "$T/n1.log"; then
    ok good_join_says_joined
else
    bad good_join_says_joined "$(tail -n 5 "$T/n1.log")"
fi
check good_join_waited_for_replication grep -q "waiting for the leader to replicate" "$T/n1.log"
check good_join_node_has_data sh -c \
    "[ \$(curl -s -m 5 http://127.0.0.1:26411/status | jq .applied_index) -gt 0 ]"
finish
