#!/bin/sh
# kv-lock and kv-lease on a real 3-node cluster (ports 26800-26802 HTTP,
# 26810-26812 Raft). Contenders on all three nodes: each holder writes its
# fencing token into the key "fence" by a txn that succeeds only if the
# stored token is lower (read the token and its index, then txn if index
# unchanged); from the log of acquire/fenced/release times: holders never
# overlap and tokens strictly increase. kv-lock exits 1 when WAIT elapses,
# exits 111 and SIGTERMs prog when its lease is revoked from outside, exits
# with prog's status and frees the lock. Under faults (kill -9 of the
# leader while contenders run, then its restart): tokens stay strictly
# increasing and no two holders' fenced writes interleave. kv-lease's
# commands and exit statuses. Prints ok/FAIL lines, figures, a summary.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
require_ports 26800 26801 26802 26810 26811 26812
KVLOCK=$BUILD/bin/kv-lock
KVLEASE=$BUILD/bin/kv-lease

start_node k0 -id k0 -haddr 127.0.0.1:26800 -raddr 127.0.0.1:26810 "$T/k0"
wait_until 20 is_leader 26800 || { bad leader "no leader on :26800"; finish; }
for i in 1 2; do
    start_node k$i -id k$i -haddr 127.0.0.1:2680$i -raddr 127.0.0.1:2681$i \
        -join 127.0.0.1:26800 "$T/k$i"
done
three_voters() { [ "$(status_field 26800 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
wait_until 30 three_voters || { bad three_voters "$(status_field 26800 -c .nodes)"; finish; }
ok three_voters
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- kv-lease ----
id=$("$KVLEASE" -d "$T/k1" grant 30s)
check "kv-lease grant prints an ID ($id)" [ -n "$id" ]
"$KVSET" -d "$T/k2" -l "$id" svc/a 1
check "kv-set -l attaches" [ "$("$KVLEASE" -d "$T/k0" get "$id" | jq -c .keys)" = '["svc/a"]' ]
check "kv-lease renew" "$KVLEASE" -d "$T/k2" renew "$id"
check "kv-lease revoke" "$KVLEASE" -d "$T/k1" revoke "$id"
"$KVGET" -d "$T/k0" svc/a >/dev/null 2>&1
check "revoke deleted the key (kv-get exit 1)" [ $? = 1 ]
"$KVLEASE" -d "$T/k0" renew "$id" 2>/dev/null
check "renewing a revoked lease exits 1" [ $? = 1 ]
"$KVSET" -d "$T/k0" -l "$id" svc/b 1 2>/dev/null
check "kv-set -l with an unknown lease fails (3)" [ $? = 3 ]
"$KVLEASE" -d "$T/k0" grant 10 2>/dev/null
check "kv-lease grant without unit exits 2" [ $? = 2 ]
"$KVLEASE" -s "$T/nowhere.sock" get 1 2>/dev/null
check "kv-lease with raftd unreachable exits 111" [ $? = 111 ]

# ---- the holder: logs, fences, sleeps ----
cat >"$T/holder.sh" <<'EOS'
tok=$KEYVAL_LOCK_INDEX
trap 'echo "release $ID $tok $(date +%s%N) lost" >>"$LOG"; exit 143' TERM
echo "acquire $ID $tok $(date +%s%N)" >>"$LOG"
n=0
while [ $n -lt 25 ]; do
    n=$((n + 1))
    code=$(curl -s -m 3 -D "$TMP.h" -o "$TMP.b" -w '%{http_code}' "http://127.0.0.1:$PORT/key/fence")
    if [ "$code" = 404 ]; then
        cond='{"key":"fence","absent":true}'; cur=0
    elif [ "$code" = 200 ]; then
        cur=$(jq -r .fence "$TMP.b")
        et=$(tr -d '\r"' <"$TMP.h" | sed -n 's/^ETag: //Ip')
        cond="{\"key\":\"fence\",\"index\":$et}"
    else
        sleep 0.2; continue
    fi
    if [ "$cur" -ge "$tok" ]; then
        echo "refused $ID $tok $(date +%s%N) $cur" >>"$LOG"; break
    fi
    r=$(curl -s -m 3 -XPOST "http://127.0.0.1:$PORT/txn" \
        -d "{\"if\":[$cond],\"then\":[{\"set\":{\"fence\":\"$tok\"}}]}")
    case $r in
    *'"succeeded":true'*) echo "fenced $ID $tok $(date +%s%N)" >>"$LOG"; break ;;
    *'"succeeded":false'*) ;;
    *) sleep 0.2 ;;
    esac
done
sleep 0.3
echo "release $ID $tok $(date +%s%N)" >>"$LOG"
EOS
# contender NODE ROUNDS LOG: kv-lock in a loop on that node
contender() {
    r=0
    while [ $r -lt "$2" ]; do
        ID=$1 PORT=$((26800 + ${1#k})) LOG=$3 TMP=$T/tmp-$1 \
            "$KVLOCK" -d "$T/$1" -t 2s lockdemo sh "$T/holder.sh" 2>>"$T/contender-$1.log"
        r=$((r + 1))
    done
}
# overlaps LOG: the holders' intervals, in acquisition order, never overlap
# and their tokens strictly increase
no_overlap() {
    awk '$1 == "acquire" { a[$3] = $4 } $1 == "release" { r[$3] = $4 }
         END { for (t in a) print a[t], t, (t in r ? r[t] : "open") }' "$1" | sort -n |
    awk 'NR > 1 && ($2 + 0 <= pt + 0 || pr == "open" || $1 + 0 <= pr + 0) { bad = 1;
             print "overlap or token order: " prev " then " $0 > "/dev/stderr" }
         { pt = $2; pr = $3; prev = $0 } END { exit bad }'
}
# fenced_in_order LOG: successful fenced writes, in time order, have
# strictly increasing tokens
fenced_in_order() {
    grep '^fenced' "$1" | sort -k4,4n | awk '$3 + 0 <= p + 0 { bad = 1 } { p = $3 } END { exit bad }'
}

t0=$(ms)
: >"$T/lock.log"
cpids=""
for n in k0 k1 k2; do contender $n 4 "$T/lock.log" & cpids="$cpids $!"; done
wait $cpids
t1=$(ms)
acq=$(grep -c '^acquire' "$T/lock.log")
check "12 acquisitions by 3 contenders ($acq)" [ "$acq" = 12 ]
check "holders never overlap, tokens strictly increase" no_overlap "$T/lock.log"
check "every holder's fenced write went in (none refused)" \
    [ "$(grep -c '^fenced' "$T/lock.log")" = 12 ]
check "fenced writes in token order" fenced_in_order "$T/lock.log"
echo "figure: 12 lock acquisitions (hold ~0.3 s + fenced write each) in $((t1 - t0)) ms"
http_get 26800 /key/kv-lock/lockdemo
check "the lock key is gone after the last release" [ "$HTTP_CODE" = 404 ]

# ---- exit statuses ----
"$KVLOCK" -d "$T/k1" demo5 sh -c 'exit 7'
check "kv-lock exits with prog's status (7)" [ $? = 7 ]
"$KVLOCK" -d "$T/k1" demo5 sh -c 'test -n "$KEYVAL_LOCK_INDEX" && test "$KEYVAL_LOCK_INDEX" -gt 0'
check "prog gets KEYVAL_LOCK_INDEX" [ $? = 0 ]
"$KVLOCK" -d "$T/k0" -t 5s demo3 sleep 4 &
hpid=$!
held() { http_get 26801 /key/kv-lock/demo3; [ "$HTTP_CODE" = 200 ]; }
wait_until 10 held
w0=$(ms)
"$KVLOCK" -d "$T/k2" -w 1s demo3 true 2>/dev/null
rc=$?
w1=$(ms)
check "kv-lock exits 1 when WAIT elapses" [ $rc = 1 ]
echo "figure: kv-lock -w 1s gave up after $((w1 - w0)) ms"
wait $hpid
check "the holder finished normally (0)" [ $? = 0 ]
"$KVLOCK" -d "$T/k2" -w 5s demo3 true
check "then the lock is free again" [ $? = 0 ]
"$KVLOCK" -d "$T/k1" -t 3s demo4 sh -c "trap 'echo TERM >\"$T/term\"; exit 0' TERM; while :; do sleep 0.1; done" 2>"$T/demo4.err" &
hpid=$!
held4() { http_get 26800 /key/kv-lock/demo4; [ "$HTTP_CODE" = 200 ]; }
wait_until 10 held4
lid=$(echo "$BODY" | jq -r '.["kv-lock/demo4"]' | sed -n 's/.*lease \([0-9]*\).*/\1/p')
r0=$(ms)
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XDELETE "http://127.0.0.1:26802/lease/$lid")
check "revoke the holder's lease from outside ($lid: $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
wait $hpid
rc=$?
r1=$(ms)
check "kv-lock exits 111 when its lease is revoked" [ $rc = 111 ]
check "... after sending prog SIGTERM" test -s "$T/term"
echo "figure: kv-lock noticed the revoked lease after $((r1 - r0)) ms (ttl 3s, renewals every 1 s)"

# ---- contenders under faults: kill -9 the leader, restart it ----
: >"$T/fault.log"
cpids=""
for n in k0 k1 k2; do contender $n 6 "$T/fault.log" & cpids="$cpids $!"; done
sleep 3
leader=""
for p in 26800 26801 26802; do is_leader $p && leader=k$((p - 26800)); done
check "a leader to kill ($leader)" [ -n "$leader" ]
[ -n "$leader" ] && kill_node "$leader"
f0=$(ms)
sleep 4
eval "largs=\$args_$leader"
[ -n "$leader" ] && start_node "$leader" $largs
wait $cpids
f1=$(ms)
echo "figure: $(grep -c '^acquire' "$T/fault.log") acquisitions, $(grep -c '^fenced' "$T/fault.log") fenced writes, $(grep -c lost "$T/fault.log") holders lost their lock, in $((f1 - f0)) ms after the kill"
check "under faults: tokens strictly increase in acquisition order" \
    sh -c "grep '^acquire' '$T/fault.log' | sort -k4,4n | awk '\$3 + 0 <= p + 0 { bad = 1 } { p = \$3 } END { exit bad }'"
check "under faults: no two holders' fenced writes interleave" fenced_in_order "$T/fault.log"
check "under faults: the lock was taken again after the kill" \
    [ "$(awk -v f="$f0" '$1 == "acquire" && $4 / 1000000 > f' "$T/fault.log" | wc -l)" -gt 0 ]
finish
