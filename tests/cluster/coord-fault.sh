#!/bin/sh
# The coordination features under faults, on a 3-node cluster (HTTP ports
# 27700-27702, Raft 27710-27712; every outbound peer link through
# tests/fault/faultlink so links can be cut). Faults: kill -9 and restart,
# SIGSTOP/SIGCONT of raftd, cut links, leader changes.
#  1. watch: writers do PUTs and 2-key batches (two changes of one index)
#     on every node while faults hit; kv-watch -p and a raw curl /watch
#     resumed by hand, both on the node that is killed (twice), paused and
#     cut off, must deliver every acknowledged write exactly once, in
#     index order, at the index it was acknowledged with, and nothing that
#     was never written (an unknown-outcome write may appear, once).
#  2. leases under leader failover (kill -9, then SIGSTOP of the leader
#     just before the ttl ends): never gone before ttl after the last
#     renewal answered 200 (the clock reasoning is at the lease section),
#     gone in the end; figures: how late after the ttl, with and without a
#     failover, and after the new leader's deadline.
#  3. kv-lock: 4 contenders on one name; each holder writes 3 times to a
#     fenced resource (a file under flock(1) that refuses a token older
#     than the last one it accepted) while the leader is killed, paused and
#     cut off, and one holder stops itself and its kv-lock past its lease:
#     tokens unique and increasing in acquisition order, no two holders'
#     accepted writes interleave, the stopped holder's late writes are
#     refused and its kv-lock exits 111.
#  4. figures: 256 watchers on one node (raftd RSS per watcher; the 257th
#     is refused; all 256 see a write), blocking-query wake-up latency on a
#     follower (50 tries), disk bytes raftd writes per PUT.
# About 2 minutes. Seen to fail (mutants built into build-mut): kv-watch
# resuming one index late, a new leader giving leases deadline "now",
# kv-lock passing the lease id as its token.
# Prints ok/FAIL lines, "figure:" lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
require_ports 27700 27701 27702 27710 27711 27712
LINK=$BUILD/tests/fault/faultlink
LOAD=$BUILD/tests/fault/kvload
KVWATCH=$BUILD/bin/kv-watch
KVLOCK=$BUILD/bin/kv-lock
for f in "$LINK" "$LOAD" "$KVWATCH" "$KVLOCK"; do
    [ -x "$f" ] || { bad setup "$f not built (make)"; finish; }
done
command -v flock >/dev/null || { bad setup "flock(1) not installed"; finish; }
mkdir -p "$T/ctl"
export KV_FAULT_DIR="$T/ctl"
cat >"$T/raftd-wrap" <<EOF
#!/bin/sh
# raftd with every outbound peer link through faultlink (SRC = our Raft port)
src=0 prev=
for a in "\$@"; do [ "\$prev" = -raddr ] && src=\${a##*:}; prev=\$a; done
exec "$BUILD/bin/raftd" -peer-connect "$LINK \$src %a" "\$@"
EOF
chmod 755 "$T/raftd-wrap"
export KEYVAL_RAFTD="$T/raftd-wrap"

# now: CLOCK_MONOTONIC in ms, the clock raftd keeps lease deadlines on
now() { echo $(($("$LOAD" -now) / 1000000)); }
hp() { echo $((27700 + $1)); }
rp() { echo $((27710 + $1)); }
paused=""
raftd_of() {
    eval "_ro_p=\$pid_n$1"
    ps -o pid=,comm= --ppid "$_ro_p" 2>/dev/null | awk '$2 == "raftd" { print $1 }'
}
# leader: the index of the node that says it leads (paused nodes skipped)
leader() {
    for _l_i in 0 1 2; do
        case " $paused " in *" $_l_i "*) continue ;; esac
        [ "$(curl -s -m 2 "http://127.0.0.1:$(hp $_l_i)/status" | jq -r .state 2>/dev/null)" = leader ] &&
            { echo "$_l_i"; return 0; }
    done
    return 1
}
wait_leader() { wait_until "$1" leader; }
log_event() { echo "  [$(($(now) - T0)) ms] $*"; }
kill9() { log_event "kill -9 n$1"; kill_node "n$1" 2>/dev/null; }
restart() { log_event "restart n$1"; eval "_rs_a=\$args_n$1"; start_node "n$1" $_rs_a; }
pause() {
    _pa_r=$(raftd_of "$1")
    log_event "SIGSTOP raftd of n$1 ($_pa_r)"
    [ -n "$_pa_r" ] && kill -STOP "$_pa_r"
    paused="$paused $1"
    eval "paused_pid_$1=$_pa_r"
}
resume() {
    eval "_re_r=\$paused_pid_$1"
    log_event "SIGCONT raftd of n$1"
    [ -n "$_re_r" ] && kill -CONT "$_re_r"
    paused=$(echo "$paused" | sed "s/ $1//")
}
isolate() {
    log_event "cut every link of n$1"
    for _is_j in 0 1 2; do
        [ "$_is_j" = "$1" ] && continue
        : >"$KV_FAULT_DIR/cut-$(rp "$1")-$(rp "$_is_j")"
        : >"$KV_FAULT_DIR/cut-$(rp "$_is_j")-$(rp "$1")"
    done
}
heal() { log_event "heal links"; rm -f "$KV_FAULT_DIR"/cut-*; }
# fault_round: one of each fault, the watched node n2 and the leader
fault_round() {
    sleep 2
    kill9 2; sleep 2; restart 2; sleep 3
    kill9 2; restart 2; sleep 3
    pause 2; sleep 3; resume 2; sleep 2
    L=$(leader); [ -n "$L" ] && { kill9 "$L"; sleep 3; restart "$L"; }
    wait_leader 15; sleep 2
    L=$(leader); [ -n "$L" ] && { pause "$L"; sleep 3; resume "$L"; }
    wait_leader 15; sleep 2
    L=$(leader); [ -n "$L" ] && { isolate "$L"; sleep 3; heal; }
    sleep 2
    isolate 2; sleep 3; heal
    wait_leader 15
}

T0=$(now)
start_node n0 -id n0 -haddr 127.0.0.1:27700 -raddr 127.0.0.1:27710 "$T/n0"
wait_until 20 is_leader 27700 || { bad leader "no leader on :27700"; finish; }
for i in 1 2; do
    start_node n$i -id n$i -haddr 127.0.0.1:$(hp $i) -raddr 127.0.0.1:$(rp $i) \
        -join 127.0.0.1:27700 "$T/n$i"
done
three_voters() { [ "$(status_field 27700 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
wait_until 30 three_voters || { bad three_voters "$(status_field 27700 -c .nodes)"; finish; }
ok three_voters

# ======================================================= 1. watch stream
I0=$(curl -s -m 5 -D - -o /dev/null "http://127.0.0.1:27702/key?prefix=w/" |
    tr -d '\r' | sed -n 's/^X-Keyval-Index: *//Ip')
check "a start index from X-Keyval-Index ($I0)" [ -n "$I0" ]
"$KVWATCH" -d "$T/n2" -p -i "$I0" w/ >"$T/kvwatch.out" 2>"$T/kvwatch.err" &
kvw_pid=$!
all_pids="$all_pids $kvw_pid"
# raw_watch: curl /watch on n2 as a client would resume it: the stream
# may have been cut inside the changes of one index (a batch), so ask again
# from before the last index seen and drop the events of it already kept
raw_watch() {
    last=$I0 s=0
    while [ ! -e "$T/stop-raw" ]; do
        s=$((s + 1))
        from=$last
        [ "$last" -gt "$I0" ] && from=$((last - 1))
        curl -s -N -m 120 "http://127.0.0.1:27702/watch?prefix=w/&from=$from" >"$T/raw.$s" 2>/dev/null &
        echo $! >"$T/raw.curl"
        wait $!
        grep -F "{\"index\":$last," "$T/raw.out" >"$T/raw.had"
        grep -E '^\{"index":[0-9]+,.*\}$' "$T/raw.$s" | grep -vxF -f "$T/raw.had" >>"$T/raw.out"
        l=$(tail -n 1 "$T/raw.out" | jq -r .index 2>/dev/null)
        [ -n "$l" ] && last=$l
        sleep 0.3
    done
}
: >"$T/raw.out"
raw_watch 2>/dev/null &
raw_pid=$!
all_pids="$all_pids $raw_pid"
# writer C: on the nodes in turn, writer 1 PUTs w/1-SEQ = v1-SEQ, writer
# 2 POSTs the batch w/2-SEQa, w/2-SEQb (two changes of one index); logs
# "key value code index outcome" per key
writer() {
    seq=0
    while [ ! -e "$T/stop-writers" ]; do
        seq=$((seq + 1))
        u=http://127.0.0.1:$(hp $(((seq + $1) % 3)))/key
        if [ "$1" = 1 ]; then
            keys=w/1-$seq
            code=$(curl -s -m 5 -o "$T/wbody.$1" -w '%{http_code}' -XPUT "$u/$keys" -d "v1-$seq")
        else
            keys="w/2-${seq}a w/2-${seq}b"
            code=$(curl -s -m 5 -o "$T/wbody.$1" -w '%{http_code}' -XPOST "$u" \
                -d "{\"w/2-${seq}a\":\"v2-${seq}a\",\"w/2-${seq}b\":\"v2-${seq}b\"}")
        fi
        idx=$(jq -r '.index // 0' "$T/wbody.$1" 2>/dev/null)
        outc=$(jq -r '.outcome // "-"' "$T/wbody.$1" 2>/dev/null)
        for k in $keys; do
            echo "$k v${k#w/} $code ${idx:-0} ${outc:--}" >>"$T/writes.$1"
        done
    done
}
for c in 1 2; do writer $c & eval "wpid_$c=$!"; all_pids="$all_pids $!"; done
fault_round
touch "$T/stop-writers"
wait $wpid_1 $wpid_2
cat "$T/writes.1" "$T/writes.2" >"$T/writes"
wait_leader 20
expect_post "a final write after the faults" 27700 /key '{"w/zz-end":"end"}'
endi=$(echo "$BODY" | jq -r .index)
caught_up() {
    grep -q "\"index\":$endi," "$T/kvwatch.out" && cat "$T"/raw.[0-9]* | grep -q "\"index\":$endi,"
}
wait_until 40 caught_up
check "both watchers reached the final write (index $endi)" caught_up
touch "$T/stop-raw"
kill "$(cat "$T/raw.curl")" "$kvw_pid" 2>/dev/null
wait "$raw_pid" "$kvw_pid" 2>/dev/null
sleep 0.5
acked=$(awk '$3 == 200' "$T/writes" | wc -l)
unknown=$(awk '$3 == "000" || $5 == "unknown" || ($3 >= 500 && $3 != 503)' "$T/writes" | wc -l)
echo "figure: watch under faults: $(wc -l <"$T/writes") writes, $acked acknowledged, $unknown unknown outcome; kv-watch reconnections: $(grep -c 'again' "$T/kvwatch.err"); raw curl sessions: $(ls "$T"/raw.[0-9]* | wc -l)"
check "most writes were acknowledged ($acked)" [ "$acked" -gt 20 ]
# watch_ok FILE: every acknowledged write exactly once at its index, in
# index order, nothing never written (FAIL lines name the event)
watch_ok() {
    jq -r 'select(.index) | [.index, .op, .key, (.value // "-")] | @tsv' "$1" |
        awk -v I0="$I0" -v endi="$endi" '
        FNR == NR { if ($3 == 200) { ack[$1] = $4; val[$1] = $2 }
                    else if ($3 == "000" || $5 == "unknown" || ($3 >= 500 && $3 != 503)) unk[$1] = 1
                    next }
        { if ($1 + 0 < prev + 0) { print "  out of index order: " $0 " after " prev; bad = 1 }
          prev = $1
          if ($3 == "w/zz-end") next
          if (seen[$3]++) { print "  repeated: " $0; bad = 1 }
          if ($2 != "set") { print "  not a set: " $0; bad = 1 }
          if ($3 in ack) { if (ack[$3] != $1 || val[$3] != $4) { print "  wrong index or value: " $0 " (acked " ack[$3] " " val[$3] ")"; bad = 1 } }
          else if (!($3 in unk)) { print "  never written (or failed for sure): " $0; bad = 1 } }
        END { for (k in ack) if (!(k in seen)) { print "  missing acked write: " k " at " ack[k]; bad = 1; if (++m > 10) break }
              exit bad }' "$T/writes" -
}
check "kv-watch: every acknowledged write once, in order, nothing unwritten" watch_ok "$T/kvwatch.out"
check "raw /watch?from= resumed: every acknowledged write once, in order" watch_ok "$T/raw.out"

# ======================================================= 2. lease expiry
# What a client can observe, on one monotonic clock (all on this host):
# a renewal sent at S and answered 200 was confirmed by the leader at some
# A > S, and the leader then sets its deadline to A + ttl; a later leader
# sets at least its election time + G + ttl > A + ttl (docs/coordination.md).
# The expiry is committed after the deadline, so a linearizable read that
# answers 404 and returned at R1 took effect after the commit: R1 > A + ttl
# > S + ttl. So every 404 read of a lease's key must have R1 > S_max + ttl,
# S_max the latest send time of a 200 renewal (or of the grant). We test
# exactly that (S taken before curl, R1 after it: both loose the right way).
TTL=3000
G=500 # -tick-ms 50 x -election-ticks 10: the minimum election timeout
: >"$T/lease.log"
# grant I: a 3 s lease and the key lk/I on it; the grant's send time is
# its first "renewal"
grant() {
    s=$(now)
    id=$(curl -s -m 5 -XPOST "http://127.0.0.1:$(hp $(($1 % 3)))/lease" -d '{"ttl":"3s"}' | jq -r '.lease // empty')
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -XPUT \
        "http://127.0.0.1:$(hp $(($1 % 3)))/key/lk/$1?lease=$id" -d "v$1")
    [ -n "$id" ] && [ "$code" = 200 ] && echo "renew $1 $s 200 $id" >>"$T/lease.log"
    eval "lease_$1=$id"
}
# keeper I: renews lease I every 0.7 s until stop-keep
keeper() {
    eval "id=\$lease_$1"
    n=0
    while [ ! -e "$T/stop-keep" ]; do
        n=$((n + 1))
        s=$(now)
        code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' -XPUT "http://127.0.0.1:$(hp $(((n + $1) % 3)))/lease/$id")
        echo "renew $1 $s $code" >>"$T/lease.log"
        sleep 0.7
    done
}
# poller STOPFILE I...: reads the keys lk/I in turn, on the nodes in turn
poller() {
    n=0 stop=$1
    shift
    while [ ! -e "$stop" ]; do
        for k in "$@"; do
            n=$((n + 1))
            r0=$(now)
            code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(hp $((n % 3)))/key/lk/$k")
            echo "read $k $r0 $code $(now)" >>"$T/lease.log"
        done
    done
}
gone() { # I...: every lk/I was read 404
    for k in "$@"; do grep -q "^read $k [0-9]* 404" "$T/lease.log" || return 1; done
}
# late I...: per lease, first 404 read returned - last 200 renewal sent - ttl
late() {
    awk -v ttl=$TTL -v keys=" $* " '
        $1 == "renew" && $4 == 200 && $3 > smax[$2] { smax[$2] = $3 }
        $1 == "read" && $4 == 404 && !($2 in first) { first[$2] = $5 }
        END { for (k in first) if (index(keys, " " k " ")) print first[k] - smax[k] - ttl }' "$T/lease.log" |
        sort -n | tr '\n' ' '
}
# since_leader T I...: per lease, first 404 read returned - (T + G + ttl),
# T the time the test first saw the new leader (after its election)
since_leader() {
    awk -v d=$(($1 + G + TTL)) -v keys=" $* " '
        $1 == "read" && $4 == 404 && !($2 in first) { first[$2] = $5 }
        END { for (k in first) if (index(keys, " " k " ")) print first[k] - d }' "$T/lease.log" |
        sort -n | tr '\n' ' '
}
for i in 0 1 2 3 4 5; do grant $i; done
check "6 leases granted, a key on each" [ "$(grep -c '^renew' "$T/lease.log")" = 6 ]
for k in 0 1 2; do keeper $k & eval "kpid_$k=$!"; all_pids="$all_pids $!"; done
poller "$T/stop-poll" 0 1 2 3 4 5 &
ppid_=$!
all_pids="$all_pids $ppid_"
# leases 3-5 are abandoned now: kill -9 the leader before their ttl ends
sleep 1.5
L=$(leader)
f0=$(now)
[ -n "$L" ] && kill9 "$L"
wait_leader 20
e1=$(now)
sleep 2
[ -n "$L" ] && restart "$L"
sleep 6
# leases 0-2 are abandoned now: SIGSTOP the leader before their ttl ends
touch "$T/stop-keep"
wait $kpid_0 $kpid_1 $kpid_2
sleep 1
L=$(leader)
f1=$(now)
[ -n "$L" ] && pause "$L"
wait_leader 20
e2=$(now)
sleep 2
[ -n "$L" ] && resume "$L"
wait_until 30 gone 0 1 2 3 4 5
touch "$T/stop-poll"
wait $ppid_
# leases 6-7: no fault, for comparison
wait_leader 20
grant 6
grant 7
poller "$T/stop-poll2" 6 7 &
ppid_=$!
all_pids="$all_pids $ppid_"
wait_until 20 gone 6 7
touch "$T/stop-poll2"
wait $ppid_
echo "figure: failover seen by the test $((e1 - f0)) ms after kill -9 of the leader, $((e2 - f1)) ms after SIGSTOP"
lease_check() {
    awk -v ttl=$TTL '
        $1 == "renew" && $4 == 200 && $3 > smax[$2] { smax[$2] = $3 }
        $1 == "read" { reads[NR] = $0 }
        END { for (r in reads) { split(reads[r], f, " ")
                  if (f[4] == 404 && f[5] + 0 <= smax[f[2]] + ttl) {
                      print "  lk/" f[2] " read 404 at " f[5] " <= last 200 renewal sent " smax[f[2]] " + ttl"; bad = 1 } }
              exit bad }' "$T/lease.log"
}
check "no lease key gone before ttl after its last renewal answered 200 ($(grep -c '^renew [0-9]* [0-9]* 200' "$T/lease.log") of $(grep -c '^renew' "$T/lease.log") grants and renewals answered 200, $(grep -c '^read' "$T/lease.log") reads)" lease_check
check "every abandoned lease's key is gone in the end" gone 0 1 2 3 4 5 6 7
echo "figure: lease expiry, ms after ttl from the last renewal answered 200 (first 404 read returned - renewal sent - ttl): no fault: $(late 6 7); leader killed 1.5 s after the grant: $(late 3 4 5); leader paused 1 s after the last renewal: $(late 0 1 2)"
# before T I...: how many of the keys were seen gone before T (a renewal
# that took longer than G is 503, not 200: under load a kept lease can end)
before() {
    awk -v t="$1" -v keys=" $(echo "$@" | cut -d' ' -f2-) " '
        $1 == "read" && $4 == 404 && !($2 in first) { first[$2] = $5 }
        END { for (k in first) if (index(keys, " " k " ") && first[k] < t) n++; print n + 0 }' "$T/lease.log"
}
echo "figure: the same, ms after the new leader's deadline (first 404 - (new leader seen + G + ttl)): killed: $(since_leader "$e1" 3 4 5)($(before "$f0" 3 4 5) of 3 gone before the kill); paused: $(since_leader "$e2" 0 1 2)($(before "$f1" 0 1 2) of 3 gone before the pause)"

# ======================================================= 3. kv-lock
# The protected resource: a file under flock(1) that remembers the last
# token it accepted and refuses an older one, as a real fenced store would.
: >"$T/res.last"
: >"$T/res.log"
cat >"$T/resource.sh" <<'EOS'
# resource.sh TOKEN WHO: one fenced write
last=$(cat "$RES.last")
if [ "${last:-0}" -le "$1" ]; then
    echo "$1" >"$RES.last"; echo "accept $1 $2" >>"$RES.log"
else
    echo "reject $1 $2 $last" >>"$RES.log"
fi
EOS
cat >"$T/holder.sh" <<'EOS'
tok=$KEYVAL_LOCK_INDEX
echo "acquire $ID $tok $(date +%s%N)" >>"$LOG"
w=0
# the victim (once, when asked): one write, then it stops itself and its
# kv-lock (a GC pause, a stopped VM) past its lease; when continued it goes
# on writing and ignores kv-lock's SIGTERM for a while: only the fence
# can keep its late writes out
if mv "$VICTIM" "$VICTIM.taken" 2>/dev/null; then
    trap '' TERM
    w=1
    flock "$RES.lock" sh "$RESSH" "$tok" "$ID-$w"
    echo "$PPID $$ $ID $tok" >"$VICTIM.pids"
    kill -STOP "$PPID" $$
fi
while [ $w -lt 3 ]; do
    w=$((w + 1))
    flock "$RES.lock" sh "$RESSH" "$tok" "$ID-$w"
    sleep 0.15
done
EOS
contender() { # NAME NODE
    r=0
    while [ ! -e "$T/stop-lock" ]; do
        r=$((r + 1))
        ID=$1-$r LOG=$T/lock.log RES=$T/res RESSH=$T/resource.sh VICTIM=$T/victim \
            "$KVLOCK" -d "$T/n$2" -t 2s -w 30s fencedemo sh "$T/holder.sh" 2>>"$T/contender-$1.log"
        rc=$?
        echo "exit $1-$r $rc" >>"$T/lock.log"
        # not acquired (its node down or paused): try again a little later
        grep -q "^acquire $1-$r " "$T/lock.log" || sleep 0.5
    done
}
: >"$T/lock.log"
cpids=""
for c in a:0 b:1 c:2 d:0; do contender "${c%:*}" "${c#*:}" & cpids="$cpids $!"; done
all_pids="$all_pids $cpids"
sleep 3
L=$(leader); [ -n "$L" ] && { kill9 "$L"; sleep 3; restart "$L"; }
wait_leader 20; sleep 3
L=$(leader); [ -n "$L" ] && { pause "$L"; sleep 4; resume "$L"; }
wait_leader 20; sleep 3
L=$(leader); [ -n "$L" ] && { isolate "$L"; sleep 3; heal; }
sleep 3
# a holder stopped past its lease (see holder.sh)
: >"$T/victim"
wait_until 20 test -s "$T/victim.pids"
read -r vk vh vid vtok <"$T/victim.pids"
log_event "holder $vid (token $vtok) stopped itself and its kv-lock ($vk)"
newer() { awk -v t="$vtok" '$1 == "accept" && $2 > t { f = 1 } END { exit !f }' "$T/res.log"; }
wait_until 20 newer
check "another holder took the lock and wrote while $vid was stopped" newer
log_event "SIGCONT holder $vid and its kv-lock"
kill -CONT "$vh" "$vk"
touch "$T/stop-lock"
wait $cpids
acq=$(grep -c '^acquire' "$T/lock.log")
echo "figure: kv-lock, 4 contenders, kill -9 / pause / isolation of the leader: $acq acquisitions, $(grep -c '^accept' "$T/res.log") accepted and $(grep -c '^reject' "$T/res.log") refused fenced writes, $(awk '$1 == "acquire" { a[$2] = 1 } $1 == "exit" && $3 == 111 && ($2 in a) { n++ } END { print n + 0 }' "$T/lock.log") holders lost their lease (exit 111), $(grep -c '^exit' "$T/lock.log") kv-lock runs"
check "the lock was taken over and over ($acq)" [ "$acq" -gt 4 ]
check "every acquisition got its own token" \
    [ "$(awk '$1 == "acquire" { print $3 }' "$T/lock.log" | sort | uniq -d | wc -l)" = 0 ]
check "tokens increase in acquisition order" \
    sh -c "grep '^acquire' '$T/lock.log' | sort -k4,4n | awk '\$3 + 0 <= p + 0 { bad = 1 } { p = \$3 } END { exit bad }'"
# no interleaving: once a holder's accepted writes end and another's begin,
# the first holder is never accepted again
no_interleave() {
    awk '$1 == "accept" { h = $3; sub(/-[0-9]+$/, "", h)
            if (h != cur) { if (done[h]) { print "  " h " accepted again after " cur; bad = 1 }
                            done[cur] = 1; cur = h } }
         END { exit bad }' "$T/res.log"
}
check "no two holders' fenced writes interleave" no_interleave
check "the stopped holder's late writes were refused by the fence" \
    [ "$(grep -c "^reject $vtok $vid-[23] " "$T/res.log")" = 2 ]
check "its kv-lock exited 111 (lease lost)" grep -q "^exit $vid 111\$" "$T/lock.log"

# ======================================================= 4. figures
wait_leader 20
F=1
[ "$(leader)" = 1 ] && F=0
rf=$(raftd_of $F)
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
r0=$(rss "$rf")
wpids=""
i=0
while [ $i -lt 256 ]; do
    "$KVWATCH" -d "$T/n$F" -p fig/ >"$T/fig.$i" 2>/dev/null &
    wpids="$wpids $!"
    i=$((i + 1))
done
all_pids="$all_pids $wpids"
watchers() { [ "$(curl -s -m 5 "http://127.0.0.1:$(hp $F)/metrics" | awk '$1 == "keyval_watchers" { print $2 }')" = 256 ]; }
wait_until 60 watchers
check "256 watchers held by n$F" watchers
r1=$(rss "$rf")
echo "figure: 256 watchers on n$F: raftd VmRSS $r0 kB -> $r1 kB, $(((r1 - r0) * 1024 / 256)) bytes per watcher"
# kv-watch takes the 503 as temporary and retries: give it 3 s
timeout 3 "$KVWATCH" -d "$T/n$F" -p fig/ >"$T/w257.out" 2>"$T/w257.err"
check "the 257th watcher is refused: too many watchers ($(head -n 1 "$T/w257.err"))" \
    sh -c "grep -q 'too many watchers' '$T/w257.err' && ! test -s '$T/w257.out'"
HTTP_CODE=$(curl -s -m 5 -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$(hp $F)/watch?prefix=fig/")
check "... and over HTTP: 503 ($HTTP_CODE $(cat "$T/body"))" [ "$HTTP_CODE" = 503 ]
expect_post "a write seen by 256 watchers" 27700 /key '{"fig/x":"1"}'
all_saw() { [ "$(cat "$T"/fig.[0-9]* | grep -c '"key":"fig/x"')" = 256 ]; }
wait_until 20 all_saw
check "all 256 watchers printed it once" all_saw
kill $wpids 2>/dev/null
wait $wpids 2>/dev/null

# blocking-query wake-up: a blocking GET on follower F, a PUT on the other
# follower (forwarded to the leader); time from the PUT's answer to the
# GET's answer (negative: the follower woke before the writer heard)
L=$(leader)
W=0
while [ "$W" = "$F" ] || [ "$W" = "$L" ]; do W=$((W + 1)); done
: >"$T/bq"
woke=0
i=0
while [ $i -lt 50 ]; do
    i=$((i + 1))
    m=$(curl -s -m 5 -D - -o /dev/null "http://127.0.0.1:$(hp $F)/key/bq" | tr -d '\r' |
        sed -n 's/^X-Keyval-Index: *//Ip')
    (curl -s -m 20 -o "$T/bq.body" "http://127.0.0.1:$(hp $F)/key/bq?index=${m:-0}&wait=10s"
     now >"$T/bq.end") &
    bq_pid=$!
    sleep 0.3
    w0=$(now)
    curl -s -m 5 -o /dev/null -XPUT "http://127.0.0.1:$(hp $W)/key/bq" -d "v$i"
    w1=$(now)
    wait $bq_pid
    [ "$(jq -r .bq "$T/bq.body" 2>/dev/null)" = "v$i" ] && woke=$((woke + 1))
    echo "$(($(cat "$T/bq.end") - w1)) $(($(cat "$T/bq.end") - w0))" >>"$T/bq"
done
check "every blocking GET on the follower woke with the new value ($woke/50)" [ "$woke" = 50 ]
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }
echo "figure: blocking GET on follower n$F woken by a PUT on n$W (50 tries): after the PUT's answer p50 $(cut -d' ' -f1 "$T/bq" | pct 50) ms p99 $(cut -d' ' -f1 "$T/bq" | pct 99) ms; after the PUT was sent p50 $(cut -d' ' -f2 "$T/bq" | pct 50) ms p99 $(cut -d' ' -f2 "$T/bq" | pct 99) ms"

# disk bytes per write on the leader (the kv row, the log entry and the
# history row, SQLite pages and WAL): /proc/PID/io write_bytes over 300 PUTs
rl=$(raftd_of "$L")
b0=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$rl/io" 2>/dev/null)
i=0
while [ $i -lt 300 ]; do
    i=$((i + 1))
    curl -s -m 5 -o /dev/null -XPUT "http://127.0.0.1:$(hp "$L")/key/cost/$i" -d "value-$i"
done
b1=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$rl/io" 2>/dev/null)
[ -n "$b0" ] && [ -n "$b1" ] &&
    echo "figure: leader raftd wrote $(((b1 - b0) / 300)) disk bytes per PUT of a ~8-byte key and value (300 sequential PUTs; log entry + kv row + history row, SQLite WAL)"
finish
