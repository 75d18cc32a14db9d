#!/bin/sh
# Cluster test of raftd's coordination ops at the raftd.sock level (issue
# 13, docs/coordination.md): blocking get/list, watch streams (exactly once
# across a kill -9 of the watched node, 410, too many watchers, a slow
# watcher bounded and cut), leases (grant/attach/renew/revoke, expiry in
# one entry, never early across a leader kill -9), new-form txn (413,
# 400). Three raftd on loopback, peer listeners on 127.0.0.1:14031-14033.
# Prints ok/FAIL lines, the figures it measures, and "N passed, M failed".
TEST_NAME="coord"
NODES="a b c"
PEER_PREFIX=1403
# 20 ms ticks x 25: elections after 0.5-1 s; a short history and few
# watchers so the limits are reached quickly.
RAFTD_OPTS="-tick-ms 20 -election-ticks 25 -watch-history 300 -max-watchers 6"
. tests/cluster/raftd-helpers.inc

ms() { echo $(($(date +%s%N) / 1000000)); }
code() { echo "$1" | jq -r .code 2>/dev/null; }
applied() { field "$1" '{"op":"status"}' .applied_index; }
leader() { for n in $NODES; do is_state "$n" leader && { echo "$n"; return; }; done; }

# A watch client: NAME NODE REQUEST. Its output in $T/NAME.out; it reads
# until watch_close NAME (two processes: socat, and the writer that keeps
# its input open).
watch_open() {
    mkfifo "$T/$1.in"
    socat -t 100 - UNIX-CONNECT:"$T/$2/raftd.sock" <"$T/$1.in" >"$T/$1.out" 2>/dev/null &
    eval "WS_$1=$!"
    PIDS="$PIDS $!"
    { printf '%s\n' "$3"; exec sleep 300; } >"$T/$1.in" &
    eval "WW_$1=$!"
    PIDS="$PIDS $!"
}
watch_close() {
    eval "kill \$WS_$1 \$WW_$1 2>/dev/null; wait \$WS_$1 \$WW_$1 2>/dev/null"
    rm -f "$T/$1.in"
}
lines() { if [ -f "$T/$1.out" ]; then wc -l <"$T/$1.out"; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
answers() { [ "$(field "$1" '{"op":"status"}' .code)" = 200 ]; } # a stale socket file is not enough

start_cluster
join_all
LAST="no 3 voters"
check three_voters wait_until 10 nvoters 3
wait_until 5 is_state b follower
wait_until 5 has_stale c boot x || true

# ------------------------------------------------------- blocking queries
r=$(q a '{"op":"set","kv":{"k":"v0"}}')
i0=$(echo "$r" | jq -r .index)
wait_until 5 has_stale b k v0
q b "{\"op\":\"get\",\"key\":\"k\",\"index\":$i0,\"wait_ms\":10000}" >"$T/bq.out" &
bq=$!
sleep 0.5
LAST="the blocking get returned before any write: $(cat "$T/bq.out")"
check blocking_get_holds [ ! -s "$T/bq.out" ]
t0=$(ms)
r=$(q a '{"op":"set","kv":{"k":"v1"}}')
i1=$(echo "$r" | jq -r .index)
wait $bq
t1=$(ms)
r=$(cat "$T/bq.out")
echo "figure: blocking get on follower b woke $((t1 - t0)) ms after the write on leader a was sent"
LAST="woke with $r, wrote index $i1"
check blocking_get_wakes_new_value [ "$(echo "$r" | jq -r '"\(.value) \(.index)"')" = "v1 $i1" ]

t0=$(ms)
r=$(q b "{\"op\":\"get\",\"key\":\"k\",\"index\":$i1,\"wait_ms\":800}")
t1=$(ms)
echo "figure: blocking get without a write returned after $((t1 - t0)) ms (wait_ms 800)"
LAST="got $r"
check blocking_get_times_out_unchanged [ "$(echo "$r" | jq -r '"\(.code) \(.value) \(.index)"')" = "200 v1 $i1" ]

r=$(q c '{"op":"get","key":"nokey","level":"stale"}')
LAST="404 without index: $r"
check get_404_has_store_index [ "$(echo "$r" | jq -r '.index | type')" = number ]
ia=$(echo "$r" | jq -r .index)
q c "{\"op\":\"get\",\"key\":\"nokey\",\"index\":$ia,\"wait_ms\":10000}" >"$T/mq.out" &
mq=$!
sleep 0.3
q a '{"op":"set","kv":{"nokey":"born"}}' >/dev/null
wait $mq
LAST="got $(cat "$T/mq.out")"
check missing_key_wakes_when_created [ "$(jq -r .value <"$T/mq.out")" = born ]

il=$(q b '{"op":"list","prefix":"p/"}' | jq -r .index)
q b "{\"op\":\"list\",\"prefix\":\"p/\",\"index\":$il,\"wait_ms\":10000}" >"$T/lq.out" &
lq=$!
sleep 0.3
q a '{"op":"set","kv":{"q/x":"other"}}' >/dev/null
sleep 0.7
LAST="woke on a change outside the prefix: $(cat "$T/lq.out")"
check list_ignores_other_prefix [ ! -s "$T/lq.out" ]
q a '{"op":"set","kv":{"p/1":"one"}}' >/dev/null
wait $lq
LAST="got $(cat "$T/lq.out")"
check list_wakes_on_prefix_change [ "$(jq -r '.items[0].key' <"$T/lq.out")" = p/1 ]

r=$(q a '{"op":"get","key":"k","wait_ms":100}')
LAST="$r"
check wait_without_index_400 [ "$(code "$r")" = 400 ]

# ------------------------------------------------------------ watch streams
m0=$(applied a)
watch_open w1 c "{\"op\":\"watch\",\"prefix\":\"w/\",\"from\":$m0}"
wait_until 5 has_lines w1 1
LAST="first line: $(head -n1 "$T/w1.out")"
check watch_first_line [ "$(head -n1 "$T/w1.out" | jq -r .code)" = 200 ]
N=60
j=1
while [ $j -le $N ]; do
    q a "{\"op\":\"set\",\"kv\":{\"w/$j\":\"$j\",\"o/$j\":\"x\"}}" >/dev/null
    if [ $j = 30 ]; then # kill -9 the watched node; the client resumes
        kill -9 "$RPID_c"
        wait "$RPID_c" 2>/dev/null
        watch_close w1
        last=$(tail -n +2 "$T/w1.out" | jq -r .index | tail -n1)
        [ -n "$last" ] || last=$m0
        start_raftd c
        wait_until 5 answers c
        watch_open w2 c "{\"op\":\"watch\",\"prefix\":\"w/\",\"from\":$last}"
    fi
    j=$((j + 1))
done
q a '{"op":"del","key":"w/1"}' >/dev/null
LAST="w2 has $(lines w2) lines"
wait_until 10 has_lines w2 $((N - 30 + 3)) || true
watch_close w2
{ tail -n +2 "$T/w1.out"; tail -n +2 "$T/w2.out"; } >"$T/events"
seq 1 $N >"$T/want"
echo 1 >>"$T/want"
jq -r 'if .op == "set" then .value else .key | ltrimstr("w/") end' <"$T/events" >"$T/got"
LAST="events differ from 1..$N + del w/1: $(diff "$T/want" "$T/got" | head -5 | tr '\n' ' ')"
check watch_exactly_once_across_kill9 cmp -s "$T/want" "$T/got"
LAST="indexes not increasing: $(jq -r .index <"$T/events" | tr '\n' ' ' | head -c 300)"
check watch_index_order sh -c 'jq -r .index <"$1" | sort -n -c' - "$T/events"
LAST="no del event: $(tail -n1 "$T/events")"
check watch_del_event [ "$(tail -n1 "$T/events" | jq -r .op)" = del ]

# A batch of 400 keys: the history (300 rows kept) moves past index 0.
kv=$(seq 1 400 | awk 'BEGIN{printf "{"} {printf "%s\"h/%d\":\"x\"", (NR>1?",":""), $1} END{printf "}"}')
q a "{\"op\":\"set\",\"kv\":$kv}" >/dev/null
q a "{\"op\":\"set\",\"kv\":$kv}" >/dev/null
r=$(printf '%s\n' '{"op":"watch","from":0}' | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/a/raftd.sock" | head -n1)
LAST="watch from 0: $r (status $(q a '{"op":"status"}' | jq -c '{history_floor,history_rows}'))"
check watch_below_floor_410 [ "$(echo "$r" | jq -r '"\(.code) \(.error) \(.oldest > 0)"')" = "410 compacted true" ]

for n in 1 2 3 4 5 6; do watch_open "x$n" b '{"op":"watch","prefix":"zz/"}'; done
wait_until 5 has_lines x6 1
r=$(printf '%s\n' '{"op":"watch","prefix":"zz/"}' | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/b/raftd.sock" | head -n1)
LAST="7th watcher: $r"
check too_many_watchers_503 [ "$r" = '{"code":503,"error":"too many watchers"}' ]
r=$(q b "{\"op\":\"get\",\"key\":\"k\",\"index\":$i1,\"wait_ms\":1000}")
LAST="a blocking query beyond the limit: $r"
check too_many_blocking_503 [ "$(code "$r")" = 503 ]
for n in 1 2 3 4 5 6; do watch_close "x$n"; done
LAST="watchers held on b: $(q b '{"op":"status"}' | jq .watchers)"
check watchers_released wait_until 5 sh -c '[ "$(printf "%s\n" "{\"op\":\"status\"}" | socat -t 5 - UNIX-CONNECT:"$1" | jq .watchers)" = 0 ]' - "$T/b/raftd.sock"

# A watcher that never reads: raftd keeps a bounded buffer for it, and it
# is cut once it falls out of the history kept.
ld=$(leader)
echo '{"op":"watch","prefix":"big/"}' >"$T/slowreq"
socat UNIX-CONNECT:"$T/$ld/raftd.sock" SYSTEM:"cat $T/slowreq; exec sleep 120" 2>/dev/null &
slow=$!
PIDS="$PIDS $slow"
LAST="the slow watcher is not held: $(q "$ld" '{"op":"status"}' | jq .watchers)"
check slow_watcher_held wait_until 5 sh -c '[ "$(printf "%s\n" "{\"op\":\"status\"}" | socat -t 5 - UNIX-CONNECT:"$1" | jq .watchers)" = 1 ]' - "$T/$ld/raftd.sock"
pid=$(eval echo \$RPID_$ld)
rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
val=$(head -c 1000 /dev/zero | tr '\0' v)
j=1
while [ $j -le 50 ]; do # 50 entries of 1000 keys x 1000 bytes: 50 MB of changes
    seq 1 1000 | awk -v v="$val" -v b="$j" 'BEGIN{printf "{\"op\":\"set\",\"kv\":{"} {printf "%s\"big/%d\":\"%s%d\"", (NR>1?",":""), $1, v, b} END{printf "}}\n"}' >"$T/bigset"
    timeout 12 socat -t 10 - UNIX-CONNECT:"$T/$ld/raftd.sock" <"$T/bigset" >/dev/null
    j=$((j + 1))
done
rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "figure: leader RSS with a watcher that never reads, before/after 50 MB of changes: ${rss0} kB / ${rss1} kB"
LAST="RSS grew from $rss0 kB to $rss1 kB"
check slow_watcher_rss_bounded [ $((rss1 - rss0)) -lt 40000 ]
LAST="watchers_cut on $ld: $(q "$ld" '{"op":"status"}' | jq .watchers_cut)"
check slow_watcher_cut [ "$(q "$ld" '{"op":"status"}' | jq .watchers_cut)" -ge 1 ]
kill $slow 2>/dev/null

# ------------------------------------------------------------------ leases
r=$(q b '{"op":"lease_grant","ttl_ms":5000}')
L=$(echo "$r" | jq -r .lease)
LAST="grant via follower: $r"
check lease_grant [ "$(echo "$r" | jq -r '"\(.code) \(.ttl_ms) \(.lease == (.index | tostring))"')" = "200 5000 true" ]
r=$(q c "{\"op\":\"set\",\"kv\":{\"svc/1\":\"up\",\"svc/2\":\"up\"},\"lease\":\"$L\"}")
LAST="attach: $r"
check lease_attach [ "$(code "$r")" = 200 ]
r=$(q c "{\"op\":\"lease_renew\",\"lease\":\"$L\"}")
LAST="renew via follower: $r"
check lease_renew [ "$(echo "$r" | jq -r '"\(.code) \(.lease)"')" = "200 $L" ]
r=$(q b "{\"op\":\"lease_get\",\"lease\":$L}")
LAST="lease_get: $r"
check lease_get [ "$(echo "$r" | jq -c '[.code, .ttl_ms, (.remaining_ms > 0), .keys]')" = '[200,5000,true,["svc/1","svc/2"]]' ]
r=$(q b "{\"op\":\"lease_revoke\",\"lease\":\"$L\"}")
LAST="revoke: $r"
check lease_revoke [ "$(code "$r")" = 200 ]
LAST="svc/1 after revoke: $(q b '{"op":"get","key":"svc/1"}')"
check revoke_deletes_keys [ "$(code "$(q b '{"op":"get","key":"svc/1"}')")" = 404 ]
r=$(q a "{\"op\":\"lease_renew\",\"lease\":\"$L\"}")
LAST="renew of a revoked lease: $r"
check renew_revoked_404 [ "$(code "$r")" = 404 ]
r=$(q a '{"op":"set","kv":{"orphan":"x"},"lease":"999999"}')
LAST="set with an unknown lease: $r"
check unknown_lease_404 [ "$(code "$r")" = 404 ]
LAST="orphan was written: $(q a '{"op":"get","key":"orphan"}')"
check unknown_lease_nothing_written [ "$(code "$(q a '{"op":"get","key":"orphan"}')")" = 404 ]
r=$(q a '{"op":"lease_grant","ttl_ms":10}')
LAST="ttl 10 ms: $r"
check lease_ttl_too_short_400 [ "$(code "$r")" = 400 ]

# Expiry: one entry deletes every key, the events say "expired".
m1=$(applied a)
L=$(q a '{"op":"lease_grant","ttl_ms":1000}' | jq -r .lease)
q a "{\"op\":\"set\",\"kv\":{\"e/1\":\"x\",\"e/2\":\"y\"},\"lease\":\"$L\"}" >/dev/null
watch_open we a "{\"op\":\"watch\",\"prefix\":\"e/\",\"from\":$m1}"
wait_until 8 has_lines we 5 || true
watch_close we
tail -n 2 "$T/we.out" >"$T/exp"
LAST="no expiry events: $(cat "$T/we.out")"
check lease_expiry_events [ "$(jq -s -c '[.[] | [.op, .key, .expired]]' <"$T/exp")" = '[["del","e/1",true],["del","e/2",true]]' ]
LAST="expiry not one entry: $(cat "$T/exp")"
check lease_expiry_one_entry [ "$(jq -r .index <"$T/exp" | sort -u | wc -l)" = 1 ]

# Never early across a leader kill -9: ttl 3 s, renewed at t, the leader
# killed; the key must be there until t + ttl, gone some time after.
ld=$(leader)
L=$(q "$ld" '{"op":"lease_grant","ttl_ms":3000}' | jq -r .lease)
q "$ld" "{\"op\":\"set\",\"kv\":{\"lk\":\"held\"},\"lease\":\"$L\"}" >/dev/null
r=$(q "$ld" "{\"op\":\"lease_renew\",\"lease\":\"$L\"}")
t=$(ms)
LAST="renew before the kill: $r"
check lease_renew_before_kill [ "$(code "$r")" = 200 ]
kill -9 "$(eval echo \$RPID_$ld)"
other=a
[ "$ld" = a ] && other=b
gone=""
while [ $(($(ms) - t)) -lt 15000 ]; do
    v=$(stale_value "$other" lk)
    if [ "$v" != held ]; then gone=$(ms); break; fi
    sleep 0.05
done
echo "figure: lease ttl 3000 ms renewed at t; leader $ld killed; key gone at t+$((gone - t)) ms (election timeout 500-1000 ms)"
LAST="gone at t+$((gone - t)) ms"
check lease_not_early_across_leader_kill [ -n "$gone" ] && [ $((gone - t)) -ge 3000 ]
LAST="never gone within 15 s"
check lease_expires_after_leader_kill [ -n "$gone" ]
start_raftd "$ld"
wait_until 5 answers "$ld"

# ---------------------------------------------------------------- txn
r=$(q b '{"op":"txn","if":[{"key":"k","value":"v1"},{"key":"nope","absent":true}],"then":[{"set":{"t1":"yes"}},{"del":"k"}],"else":[{"set":{"t1":"no"}}]}')
LAST="txn then: $r"
check txn_then [ "$(echo "$r" | jq -r '"\(.code) \(.succeeded)"')" = "200 true" ]
r=$(q b '{"op":"txn","if":[{"key":"k","absent":false}],"then":[],"else":[]}')
LAST="absent false: $r"
check txn_malformed_400 [ "$(code "$r")" = 400 ]
r=$(q b '{"op":"txn","if":[{"key":"t1","index":0}],"then":[{"set":{"t2":"x"}}],"else":[{"set":{"t2":"else"}}]}')
LAST="txn else: $r"
check txn_else [ "$(echo "$r" | jq -r '"\(.code) \(.succeeded)"')" = "200 false" ] && [ "$(field a '{"op":"get","key":"t2"}' .value)" = else ]
for bad in '{"op":"txn","then":{"set":{"a":"b"}}}' '{"op":"txn","then":[{"put":{"a":"b"}}]}' \
    '{"op":"txn","then":[{"set":{"m1":"b"},"del":"x"}]}' '{"op":"txn","if":[{"index":3}],"then":[{"set":{"m1":"b"}}]}' \
    '{"op":"txn","then":[{"set":{"m1":1}}]}'; do
    r=$(q a "$bad")
    [ "$(code "$r")" = 400 ] && [ -n "$(echo "$r" | jq -r .error)" ] || { LAST="$bad: $r"; break; }
    LAST=""
done
check txn_malformed_reasons [ -z "$LAST" ]
LAST="m1 written by a malformed txn"
check txn_malformed_nothing_written [ "$(code "$(q a '{"op":"get","key":"m1"}')")" = 404 ]
kv=$(seq 1 1001 | awk 'BEGIN{printf "{"} {printf "%s\"big%d\":\"x\"", (NR>1?",":""), $1} END{printf "}"}')
r=$(q a "{\"op\":\"txn\",\"then\":[{\"set\":$kv}]}")
LAST="1001 keys: $r"
check txn_huge_413 [ "$(code "$r")" = 413 ]

# ---------------------------------------------------------------- metrics
r=$(q a '{"op":"metrics"}' | jq -r '[.metrics[].name] | join(" ")')
LAST="metrics: $r"
check coord_metrics sh -c 'for m in keyval_watchers keyval_waiting_queries keyval_leases_held keyval_history_floor keyval_history_rows keyval_lease_expiries_proposed_total; do echo "$1" | grep -qw $m || exit 1; done' - "$r"

finish
