#!/bin/sh
# A 3-node cluster with peer mutual TLS (keyval -peer-tls), HTTPS
# (-https-cert/-https-key) and HTTP basic authentication (-auth-file) on
# 127.0.0.1 ports 21200-21202 (HTTPS) and 21210-21212 (Raft, TLS):
# unauthenticated requests get 401, a read-only user's write gets 403, a
# writer can write; /health needs no credentials (unless -auth-health); nodes join over HTTPS with -join-auth; set/get/replication
# work over TLS; a peer with a certificate from another CA, or none, or
# plain TCP is refused before raftd sees a byte; a peer with a good
# certificate but another cluster id is refused by raftd's handshake and
# logged; raftd.sock is 0660 and DATADIR 0700.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

CERTS=$BUILD/bin/kv-certs
for tool in openssl; do
    command -v $tool >/dev/null 2>&1 || { bad setup "$tool is not installed (make deps)"; finish; }
done
require_ports 21200 21201 21202 21210 21211 21212

# Certificates: the cluster CA and one per node; another CA ("evil").
if ! "$CERTS" "$T/certs" n0 n1 n2 >"$T/certs.log" 2>&1 ||
   ! "$CERTS" "$T/evil" n9 >>"$T/certs.log" 2>&1; then
    bad setup "kv-certs failed: $(cat "$T/certs.log")"
    finish
fi
ok kv_certs
CA=$T/certs/ca.crt
hr=$(openssl passwd -6 -salt readsalt "read secret")
hw=$(openssl passwd -6 -salt writsalt "write secret")
printf '# keyval users\nreader:%s:ro\nwriter:%s:rw\n' "$hr" "$hw" >"$T/users"
printf 'writer:write secret\n' >"$T/join-auth"

# scurl USER:PASS|- METHOD PORT PATH [DATA]: sets HTTP_CODE and BODY.
scurl() {
    _sc_u=$1 _sc_m=$2 _sc_p=$3 _sc_path=$4 _sc_data=$5
    set -- -s -m 20 --cacert "$CA" -o "$T/body" -w '%{http_code}' -X "$_sc_m"
    [ "$_sc_u" != - ] && set -- "$@" -u "$_sc_u"
    [ -n "$_sc_data" ] && set -- "$@" --data-binary "$_sc_data"
    HTTP_CODE=$(curl "$@" "https://localhost:$_sc_p$_sc_path")
    BODY=$(cat "$T/body" 2>/dev/null)
}
R="reader:read secret"
W="writer:write secret"
sstatus() { curl -s -m 5 --cacert "$CA" -u "$R" "https://localhost:$1/status" | jq -r "$2"; }
s_is_leader() { [ "$(sstatus "$1" .state)" = leader ]; }
s_body_is() { scurl "$R" GET "$1" "$2"; [ "$HTTP_CODE" = 200 ] && [ "$BODY" = "$3" ]; }
expect() { # NAME WANT-CODE USER METHOD PORT PATH [DATA]
    _e_n=$1 _e_w=$2; shift 2
    scurl "$@"
    if [ "$HTTP_CODE" = "$_e_w" ]; then ok "$_e_n"; else bad "$_e_n" "$2 :$3$4 as ${1%%:*} gave $HTTP_CODE $BODY, want $_e_w"; fi
}

node_args() { # N: the security flags of node N
    echo "-peer-tls $T/certs/n$1 -https-cert $T/certs/n$1/node.crt -https-key $T/certs/n$1/node.key -auth-file $T/users"
}
# shellcheck disable=SC2046
start_node n0 -id n0 -haddr localhost:21200 -raddr localhost:21210 $(node_args 0) "$T/n0"
if wait_until 20 s_is_leader 21200; then
    ok n0_leads_over_https
else
    bad n0_leads_over_https "no leader on https://localhost:21200 within 20 s"
    finish
fi

# HTTP basic authentication
expect unauthenticated_write_401 401 - POST 21200 /key '{"a":"1"}'
expect unauthenticated_read_401 401 - GET 21200 /key/a
expect wrong_password_401 401 "reader:guess" GET 21200 /key/a
expect reader_cannot_write_403 403 "$R" POST 21200 /key '{"a":"1"}'
expect reader_cannot_put_403 403 "$R" PUT 21200 /key/a 'x'
expect reader_cannot_delete_403 403 "$R" DELETE 21200 /key/a
expect reader_cannot_join_403 403 "$R" POST 21200 /join '{"id":"x","addr":"127.0.0.1:21299"}'
check forbidden_body_without_newline [ "$BODY" = '{"error":"forbidden"}' ] && [ "$(tail -c 1 "$T/body")" = "}" ]
expect unknown_user_write_401 401 "nobody:x" POST 21200 /key '{"a":"1"}'
# the coordination routes: lease and txn writes need the write right, a
# watch and a lease read only a user (the CGI's own 400 shows the request
# got past authentication)
expect reader_cannot_grant_lease_403 403 "$R" POST 21200 /lease '{"ttl":"10s"}'
expect reader_cannot_renew_lease_403 403 "$R" PUT 21200 /lease/1 ''
expect reader_cannot_revoke_lease_403 403 "$R" DELETE 21200 /lease/1
expect reader_cannot_txn_403 403 "$R" POST 21200 /txn '{}'
expect writer_may_txn 400 "$W" POST 21200 /txn '{"if":5}'
expect unauthenticated_watch_401 401 - GET 21200 '/watch?prefix=a'
expect reader_may_watch 400 "$R" GET 21200 '/watch?prefix=a&from=x'
expect writer_wrong_password_401 401 "writer:guess" POST 21200 /key '{"a":"1"}'
# A load balancer probes /health without a password; /status and
# /metrics stay behind authentication.
expect health_without_credentials 200 - GET 21200 /health
expect status_needs_credentials 401 - GET 21200 /status
check unauthorized_body_without_newline [ "$(tail -c 1 "$T/body")" = "}" ]
expect metrics_needs_credentials 401 - GET 21200 /metrics
expect health_post_needs_credentials 401 - POST 21200 /health x
expect writer_writes 200 "$W" POST 21200 /key '{"user1":"batman"}'
expect reader_reads 200 "$R" GET 21200 /key/user1
check reader_reads_value [ "$BODY" = '{"user1":"batman"}' ]
check writer_reads s_body_is 21200 /key/user1 '{"user1":"batman"}'
# Plain HTTP on the HTTPS port gets no answer.
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:21200/key/user1)
check plain_http_refused [ "$code" != 200 ]
# An HTTPS client that does not trust the cluster CA refuses the server.
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -u "$R" https://localhost:21200/key/user1)
check untrusted_server_refused [ "$code" = 000 ]

# Two nodes join over HTTPS, as the writer (-join-auth), and replicate
# over peer mTLS.
# shellcheck disable=SC2046
start_node n1 -id n1 -haddr localhost:21201 -raddr localhost:21211 $(node_args 1) \
    -join localhost:21200 -join-auth "$T/join-auth" "$T/n1"
# shellcheck disable=SC2046
start_node n2 -id n2 -haddr localhost:21202 -raddr localhost:21212 $(node_args 2) \
    -auth-health -join localhost:21200 -join-auth "$T/join-auth" "$T/n2"
three_voters() { [ "$(sstatus 21200 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
if wait_until 40 three_voters; then
    ok two_nodes_join_over_tls
else
    bad two_nodes_join_over_tls "$(sstatus 21200 -c .nodes); $(tail -n 5 "$T/n1.log")"
    finish
fi
check join_password_not_left [ ! -e "$T/n1/join.curlrc" ]

# kv-health on an HTTPS node with basic auth: -C and -a (a reader is enough).
printf '%s\n' "$R" >"$T/reader-auth"
chmod 600 "$T/reader-auth"
hout=$("$BUILD/bin/kv-health" -H localhost:21200 -C "$CA" -a "$T/reader-auth")
hrc=$?
LAST="kv-health -C -a gave exit $hrc: $hout"
check health_https_auth_ok sh -c '[ "$1" = 0 ] && echo "$2" | grep -q "^KEYVAL OK"' - "$hrc" "$hout"
hout=$("$BUILD/bin/kv-health" -H localhost:21200 -C "$CA")
hrc=$?
LAST="kv-health without -a gave exit $hrc: $hout"
check health_without_auth_critical sh -c '[ "$1" = 2 ] && echo "$2" | grep -q "401"' - "$hrc" "$hout"
hout=$(KEYVAL_CACERT=$CA KEYVAL_AUTH_FILE=$T/reader-auth "$BUILD/bin/kv-health" -H localhost:21200)
hrc=$?
LAST="kv-health with KEYVAL_CACERT and KEYVAL_AUTH_FILE gave exit $hrc: $hout"
check health_env_auth_ok [ "$hrc" = 0 ]
for p in 21201 21202; do
    if wait_until 15 sh -c "curl -s -m 2 --cacert '$CA' -u '$R' https://localhost:$p/status | jq -e '.leader == \"n0\"'"; then
        ok "node_${p}_follows_n0"
    else
        bad "node_${p}_follows_n0" "$(sstatus $p -c .)"
    fi
done
for p in 21200 21201 21202; do
    if wait_until 10 s_body_is $p /key/user1 '{"user1":"batman"}'; then
        ok "get_user1_on_$p"
    else
        bad "get_user1_on_$p" "$HTTP_CODE $BODY"
    fi
done
# n2 runs with -auth-health: its /health needs credentials too.
expect auth_health_401 401 - GET 21202 /health
expect auth_health_reader_200 200 "$R" GET 21202 /health
expect write_via_follower 200 "$W" POST 21201 /key '{"user2":"robin"}'
expect reader_cannot_write_on_follower_403 403 "$R" POST 21202 /key '{"user3":"joker"}'
for p in 21200 21201 21202; do
    if wait_until 10 s_body_is $p '/key/user2?level=stale' '{"user2":"robin"}'; then
        ok "replicated_user2_to_$p"
    else
        bad "replicated_user2_to_$p" "$HTTP_CODE $BODY"
    fi
done
check local_kv_get "$KVGET" -d "$T/n2" user2

# Peers: another CA's certificate, no certificate, plain TCP: refused by
# socat's TLS handshake (it logs why) before raftd sees a byte (nothing
# new in raftd's log about it). With TLS 1.3 the client's side may finish
# its handshake before the server refuses it, so the refusal is checked
# on the server.
hello=tests/fuzz/corpus/peer/hello-only
before=$(grep -c 'peer connection from' "$T/n0.log")
# refused NAME LOG-PATTERN SOCAT-ADDRESS
refused() {
    _r_n0=$(grep -c "$2" "$T/n0.log")
    timeout 10 socat -u "OPEN:$hello" "$3" 2>>"$T/evil.err"
    if wait_until 5 sh -c "[ \$(grep -c '$2' '$T/n0.log') -gt $_r_n0 ]"; then
        ok "$1"
    else
        bad "$1" "socat's listener did not log '$2'"
    fi
}
refused wrong_cert_peer_refused 'certificate verify failed\|unknown ca' \
    "OPENSSL:localhost:21210,cert=$T/evil/n9/node.crt,key=$T/evil/n9/node.key,cafile=$CA,verify=1"
refused no_cert_peer_refused 'did not return a certificate' \
    "OPENSSL:localhost:21210,cafile=$CA,verify=1"
refused plain_tcp_peer_refused 'wrong version number\|SSL_accept' TCP:127.0.0.1:21210
sleep 1
after=$(grep -c 'peer connection from' "$T/n0.log")
check refused_peers_never_reach_raftd [ "$before" = "$after" ]

# A peer with a good certificate but another cluster id: raftd's HELLO
# check refuses it and says why.
good="cert=$T/certs/n1/node.crt,key=$T/certs/n1/node.key,cafile=$CA,verify=1"
timeout 10 socat -u "OPEN:tests/fuzz/corpus/peer/hello-wrong-cluster" "OPENSSL:localhost:21210,$good" 2>/dev/null
if wait_until 5 grep -q "is in cluster 'ffffffffffffffff', we are in" "$T/n0.log"; then
    ok wrong_cluster_refused_and_logged
else
    bad wrong_cluster_refused_and_logged "no refusal in raftd's log"
fi
# The cluster still works.
expect write_after_attacks 200 "$W" POST 21200 /key '{"user4":"alfred"}'
for p in 21201 21202; do
    if wait_until 10 s_body_is $p '/key/user4?level=stale' '{"user4":"alfred"}'; then
        ok "replicated_user4_to_$p"
    else
        bad "replicated_user4_to_$p" "$HTTP_CODE $BODY"
    fi
done

# Local access: DATADIR 0700, raftd.sock 0660, secrets 0600.
check datadir_0700 [ "$(stat -c %a "$T/n0")" = 700 ]
check raftd_sock_0660 [ "$(stat -c %a "$T/n0/raftd.sock")" = 660 ]
check htpasswd_0600 [ "$(stat -c %a "$T/n0/htpasswd")" = 600 ]
# raftd checks SO_PEERCRED even when the modes are loosened: uid 65534
# (gid 65534) is refused; a member of the socket's group (gid 0 here) is
# let in.
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    chmod 0711 "$T" "$T/n0" && chmod 0666 "$T/n0/raftd.sock"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$KVGET" -s "$T/n0/raftd.sock" user1 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && echo "$out" | grep -q 'may not use raftd.sock'; then
        ok peercred_other_uid_refused
    else
        bad peercred_other_uid_refused "kv-get as uid 65534 gave rc $rc: $out"
    fi
    out=$(setpriv --reuid=65534 --regid=0 --clear-groups "$KVGET" -s "$T/n0/raftd.sock" user1 2>&1)
    check peercred_socket_group_allowed [ "$out" = batman ]
    chmod 0700 "$T" "$T/n0" && chmod 0660 "$T/n0/raftd.sock"
    if wait_until 5 grep -q 'raftd.sock: refused 1 client' "$T/n0.log"; then
        ok peercred_refusal_logged
    else
        bad peercred_refusal_logged "no refusal line in $T/n0.log"
    fi
else
    echo "# SO_PEERCRED checks skipped (need root and setpriv)"
fi
finish
