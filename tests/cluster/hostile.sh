#!/bin/sh
# Hostile input against one keyval node (HTTP 127.0.0.1:21100, Raft
# 127.0.0.1:21101): tests/fault/kvflood sends garbage, truncated frames,
# huge length prefixes, slowloris trickles and ~1000 idle connections to
# the peer port and to raftd.sock. During each flood a write over HTTP and
# a read over raftd.sock (kv-get) must still succeed, raftd must stay up,
# and its peak RSS (VmHWM) must stay bounded.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

FLOOD=$BUILD/tests/fault/kvflood
if [ ! -x "$FLOOD" ]; then
    bad setup "$FLOOD not built (run make)"
    finish
fi
HP=21100
RP=21101
RSS_LIMIT_KB=${RSS_LIMIT_KB:-262144} # peak RSS of raftd: 256 MiB
require_ports $HP $RP

start_node n0 -id n0 -haddr 127.0.0.1:$HP -raddr 127.0.0.1:$RP "$T/n0"
if ! wait_until 20 is_leader $HP; then
    bad starts "no leader on :$HP within 20 s"
    finish
fi
ok starts
raftd_pid=$(ps -o pid=,comm= --ppid "$pid_n0" | awk '$2 == "raftd" { print $1 }')
if [ -z "$raftd_pid" ]; then
    bad raftd_pid "no raftd child of keyval $pid_n0"
    finish
fi
sock=$T/n0/raftd.sock
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$raftd_pid/status" 2>/dev/null; }
echo "# raftd $raftd_pid: RSS $(rss VmRSS) kB at start"

i=0
# flood NAME TARGET-ARGS MODE N SECONDS: runs kvflood in the background and
# checks, while it runs, that a write (HTTP) and a read (raftd.sock) work.
flood() {
    _f_name=$1 _f_target=$2 _f_mode=$3 _f_n=$4 _f_t=$5
    i=$((i + 1))
    # shellcheck disable=SC2086
    "$FLOOD" $_f_target -mode "$_f_mode" -n "$_f_n" -t "$_f_t" >"$T/flood.out" 2>&1 &
    _f_pid=$!
    all_pids="$all_pids $_f_pid"
    sleep 2
    http_post $HP /key "{\"k$i\":\"v$i\"}"
    _f_set=$HTTP_CODE
    _f_get=$(timeout 10 "$KVGET" -s "$sock" "k$i" 2>&1)
    _f_rc=$?
    wait "$_f_pid"
    _f_out=$(cat "$T/flood.out")
    if [ "$_f_set" = 200 ] && [ "$_f_rc" = 0 ] && [ "$_f_get" = "v$i" ]; then
        ok "${_f_name}_still_serves"
    else
        bad "${_f_name}_still_serves" "during the flood: POST gave $_f_set $BODY; kv-get gave rc $_f_rc '$_f_get'; $_f_out"
    fi
    if kill -0 "$raftd_pid" 2>/dev/null; then
        ok "${_f_name}_raftd_alive"
    else
        bad "${_f_name}_raftd_alive" "raftd $raftd_pid is gone"
        finish
    fi
    _f_hwm=$(rss VmHWM)
    echo "# $_f_name: $_f_out; raftd RSS $(rss VmRSS) kB, peak $_f_hwm kB"
    if [ "${_f_hwm:-0}" -le "$RSS_LIMIT_KB" ]; then
        ok "${_f_name}_memory_bounded"
    else
        bad "${_f_name}_memory_bounded" "raftd peak RSS $_f_hwm kB > $RSS_LIMIT_KB kB"
    fi
}

flood peer_idle_1000 "-tcp 127.0.0.1:$RP" idle 1000 6
flood peer_garbage "-tcp 127.0.0.1:$RP" garbage 200 5
flood peer_huge_length "-tcp 127.0.0.1:$RP" huge 200 5
flood peer_big_first_frame "-tcp 127.0.0.1:$RP" bigframe 64 8
flood peer_truncated "-tcp 127.0.0.1:$RP" truncated 200 5
flood peer_trickle "-tcp 127.0.0.1:$RP" trickle 100 5
flood sock_idle_1000 "-unix $sock" idle 1000 6
flood sock_garbage "-unix $sock" garbage 200 5
flood sock_huge_line "-unix $sock" huge 8 5
# 64 clients each holding a 16 MiB line without its newline: 1 GiB if each
# got its buffer; the common budget (128 MiB) answers the rest 503.
flood sock_big_lines_64 "-unix $sock" bigframe 64 8
flood sock_truncated "-unix $sock" truncated 200 5
flood sock_trickle "-unix $sock" trickle 200 5

# A peer that says HELLO still gets through while 1000 idle connections
# hold the peer port: idle ones without HELLO make room for it (the HELLO
# here has another cluster id, so raftd's refusal line proves it was read).
"$FLOOD" -tcp 127.0.0.1:$RP -mode idle -n 1000 -t 8 >"$T/flood.out" 2>&1 &
fp=$!
all_pids="$all_pids $fp"
sleep 3
timeout 5 socat -u OPEN:tests/fuzz/corpus/peer/hello-wrong-cluster TCP:127.0.0.1:$RP 2>/dev/null
if wait_until 5 grep -q "is in cluster 'ffffffffffffffff'" "$T/n0.log"; then
    ok hello_gets_through_idle_flood
else
    bad hello_gets_through_idle_flood "raftd never read the HELLO: $(grep -i 'inbound' "$T/n0.log" | tail -n 2)"
fi
wait "$fp"

# Afterwards: every connection is gone and the node answers at once.
check after_all_floods body_is $HP /key/k1 '{"k1":"v1"}'
finish
