#!/bin/sh
# bench/scale.sh - writes as the table grows (issue 15 items 2-4), raftd
# direct: a 3-node raftd cluster on loopback (peers through socat),
# kv-bench at the leader's raftd.sock, single-key writes of 100-byte
# values from 32 connections. Prints, for an empty table and after a fill
# of SCALE_KEYS keys: ops/s and p99 (median of ROUNDS rounds), the
# leader's bytes written (/proc/PID/io write_bytes) and CPU
# (/proc/PID/stat utime+stime) per write, its RSS, snapshot (compaction)
# and snapshot-file counts, restart-to-serving times and disk bytes per
# key. Figures only: nothing here passes or fails on speed.
#
# The fill is offline, to be fast: the three raftd stop, the same rows
# (key fillN, a 100-byte value) are inserted into each node's kv table
# with sqlite3 in one transaction, and the nodes restart. Every node then
# holds the same state, as if the rows had been written through Raft.
#
# Usage: BUILD=build SCALE_KEYS=2000000 ROUNDS=3 SECS=5 sh bench/scale.sh
# (make bench-scale runs it). Also: CONNS (32), SCALE_PAGE_SIZE (unset), BENCH_SCALE_PORT (1409:
# peers on 127.0.0.1:14091..3), CATCHUP_SECS (writes during the catch-up,
# 2 x SECS), SCALE_RAFTD_OPTS (more raftd options, e.g. -snapshot-bytes N).
BUILD=${BUILD:-build}
KEYS=${SCALE_KEYS:-2000000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-32}
PP=${BENCH_SCALE_PORT:-1409}
RAFTD=$BUILD/bin/raftd
KVB=$BUILD/bin/kv-bench
for tool in socat jq sqlite3; do
    command -v $tool >/dev/null 2>&1 || { echo "scale: $tool not installed" >&2; exit 1; }
done
[ -x "$RAFTD" ] && [ -x "$KVB" ] || { echo "scale: $RAFTD or $KVB not built" >&2; exit 1; }
exec 9>/tmp/keyval-test-ports-${PP}1-${PP}3.lock
flock -w 600 9 || { echo "scale: ports busy" >&2; exit 1; }

T=$(mktemp -d /tmp/kv-scale.XXXXXX)
LPIDS=""
cleanup() {
    for n in a b c; do stop_node $n; done
    for p in $LPIDS; do kill "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

port() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
q() { printf '%s\n' "$2" | timeout 12 socat -t 10 - UNIX-CONNECT:"$T/$1/raftd.sock" 2>/dev/null; }
field() { q "$1" "$2" | jq -r "$3" 2>/dev/null; }
pid_of() { eval "echo \${PID_$1:-}"; }
start_node() { # node [args]
    n=$1; shift
    mkdir -p "$T/$n"
    "$RAFTD" -id "$n" -raddr 127.0.0.1:$PP$(port "$n") -haddr 127.0.0.1:$((PP - 100))$(port "$n") \
        $SCALE_RAFTD_OPTS "$@" "$T/$n" 2>>"$T/$n.log" &
    eval "PID_$n=$!"
}
stop_node() {
    p=$(pid_of "$1")
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    eval "PID_$1="
}
now() { date +%s.%N; }
wait_for() { # seconds command...
    lim=$(($1 * 20)); shift
    i=0
    while [ $i -lt $lim ]; do "$@" && return 0; sleep 0.05; i=$((i + 1)); done
    return 1
}
is_leader() { [ "$(field "$1" '{"op":"status"}' .state)" = leader ]; }
lin_get() { [ "$(field "$1" "{\"op\":\"get\",\"key\":\"$2\"}" .code)" = 200 ]; }
stale_get() { [ "$(field "$1" "{\"op\":\"get\",\"key\":\"$2\",\"level\":\"stale\"}" .code)" = 200 ]; }
leader() { for n in a b c; do is_leader $n && { echo $n; return; }; done; }
io_w() { awk '/^write_bytes/ { print $2 }' /proc/"$1"/io; }
cpu_ticks() { sed 's/^[0-9]* (.*) //' /proc/"$1"/stat | awk '{ print $12 + $13 }'; }
rss_kb() { awk '/VmRSS/ { print $2 }' /proc/"$1"/status; }
metric() { field "$1" '{"op":"metrics"}' ".metrics[] | select(.name == \"$2\") | .value"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# rounds LABEL: ROUNDS kv-bench rounds at the leader; one line each and a
# median line.
rounds() {
    L=$(leader)
    lp=$(pid_of "$L")
    hz=$(getconf CLK_TCK)
    : >"$T/rounds"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        f0=$(metric "$L" keyval_fsyncs_total); e0=$(metric "$L" keyval_entries_persisted_total)
        w0=$(io_w "$lp"); c0=$(cpu_ticks "$lp")
        out=$("$KVB" -d "$T/$L" -op set -c "$CONNS" -t "$SECS" -vsize 100 -prefix "r$r$1-" -q)
        w1=$(io_w "$lp"); c1=$(cpu_ticks "$lp")
        f1=$(metric "$L" keyval_fsyncs_total); e1=$(metric "$L" keyval_entries_persisted_total)
        per=$(awk -v f0="$f0" -v f1="$f1" -v e0="$e0" -v e1="$e1" -v a="$w0" -v b="$w1" 'BEGIN {
            f = f1 - f0; if (f < 1) f = 1
            printf "%.1f entries and %.1f 4 KiB pages per durable commit", (e1 - e0) / f, (b - a) / f / 4120 }')
        ops=$(echo "$out" | sed -n 's/.* ops=\([0-9]*\) .*/\1/p')
        rate=$(echo "$out" | sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p')
        p99=$(echo "$out" | sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' | awk '{ printf "%.1f", $1 / 1000 }')
        bpw=$(awk -v a="$w0" -v b="$w1" -v n="$ops" 'BEGIN { printf "%.0f", n ? (b - a) / n : 0 }')
        upw=$(awk -v a="$c0" -v b="$c1" -v n="$ops" -v hz="$hz" 'BEGIN { printf "%.1f", n ? (b - a) / hz * 1e6 / n : 0 }')
        echo "$rate $p99 $bpw $upw" >>"$T/rounds"
        echo "  $1 round $r: $rate ops/s, p99 $p99 ms, leader $bpw B and $upw us CPU per write; $per"
        r=$((r + 1))
    done
    echo "$1 median: $(cut -d' ' -f1 "$T/rounds" | median) ops/s, p99 $(cut -d' ' -f2 "$T/rounds" | median) ms," \
        "$(cut -d' ' -f3 "$T/rounds" | median) B/write, $(cut -d' ' -f4 "$T/rounds" | median) us CPU/write;" \
        "leader RSS $(($(rss_kb "$lp") / 1024)) MiB, compactions $(metric "$L" keyval_snapshots_taken_total)," \
        "snapshot files $(metric "$L" keyval_snapshot_files_total)"
}

start_all() {
    start_node a "$@"
    start_node b "$@"
    start_node c "$@"
}

for n in a b c; do
    mkdir -p "$T/$n"
    # An experiment: SCALE_PAGE_SIZE=N creates raft.db with that page size.
    [ -n "$SCALE_PAGE_SIZE" ] &&
        sqlite3 "$T/$n/raft.db" "PRAGMA page_size=$SCALE_PAGE_SIZE; PRAGMA journal_mode=WAL;" >/dev/null
    socat TCP-LISTEN:$PP$(port $n),bind=127.0.0.1,reuseaddr,fork,nodelay UNIX-CONNECT:"$T/$n/peer.sock" 2>/dev/null &
    LPIDS="$LPIDS $!"
done
start_node a -bootstrap
start_node b
start_node c
wait_for 10 is_leader a || { echo "scale: no leader" >&2; exit 1; }
for n in b c; do
    wait_for 5 test -S "$T/$n/raftd.sock"
    nid=$(field $n '{"op":"status"}' .node_id)
    q a "{\"op\":\"join\",\"id\":\"$n\",\"node_id\":\"$nid\",\"addr\":\"127.0.0.1:$PP$(port $n)\"}" >/dev/null
done
sleep 2
echo "# bench/scale.sh: $RAFTD, $CONNS connections, ${SECS}s rounds, 100-byte values," \
    "page size $(sqlite3 "$T/a/raft.db" 'PRAGMA page_size')"
rounds empty

# Offline fill: the same rows on every node.
for n in a b c; do stop_node $n; done
t0=$(now)
for n in a b c; do
    sqlite3 "$T/$n/raft.db" "PRAGMA journal_mode=WAL; BEGIN;
      WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $KEYS)
      INSERT OR REPLACE INTO kv(key, value, mod_index, lease)
      SELECT CAST('fill' || i AS BLOB), CAST(printf('%0100d', i) AS BLOB), 1, 0 FROM s;
      COMMIT; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
done
t1=$(now)
echo "fill: $KEYS keys into 3 databases offline in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
t0=$(now)
start_all
wait_for 30 lin_get a fill1
t1=$(now)
echo "restart (all 3 nodes) to the first linearizable read on a: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
sleep 1
rounds "k$KEYS"
L=$(leader)
F=b
[ "$L" = b ] && F=c
stop_node $F
t0=$(now)
start_node $F
wait_for 30 stale_get $F fill1
t1=$(now)
echo "restart of follower $F to its first read: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
stop_node "$L"
t0=$(now)
start_node "$L"
wait_for 30 stale_get "$L" fill1
t1=$(now)
echo "restart of the leader $L to its first (stale) read: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
sleep 2

# Catch-up: a follower misses more than the trail, then restarts while a
# round runs; the leader writes the snapshot file on demand and streams it.
L=$(leader)
lp=$(pid_of "$L")
F=b
[ "$L" = b ] && F=c
stop_node $F
"$KVB" -d "$T/$L" -op set -c "$CONNS" -t 2 -vsize 100 -prefix miss- -q >/dev/null
t0=$(now)
start_node $F
out=$("$KVB" -d "$T/$L" -op set -c "$CONNS" -t "${CATCHUP_SECS:-$((SECS * 2))}" -vsize 100 -prefix catch- -q)
wait_for 120 grep -q "snapshot installed" "$T/$F.log"
t1=$(now)
echo "catch-up of $F by snapshot ($(grep -c 'snapshot installed' "$T/$F.log") installed," \
    "$(metric "$L" keyval_snapshot_files_total) file(s) written on demand) in" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; writes meanwhile:" \
    "$(echo "$out" | sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p') ops/s," \
    "p99 $(echo "$out" | sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' | awk '{ printf "%.1f", $1 / 1000 }') ms," \
    "max $(echo "$out" | sed -n 's/.*max_us=\([0-9]*\).*/\1/p' | awk '{ printf "%.1f", $1 / 1000 }') ms;" \
    "leader RSS $(($(rss_kb "$lp") / 1024)) MiB, peak $(($(awk '/VmHWM/ { print $2 }' /proc/"$lp"/status) / 1024)) MiB"
L=$(leader)
n=$(sqlite3 "$T/$L/raft.db" "SELECT count(*) FROM kv")
sz=$(cat "$T/$L"/raft.db "$T/$L"/raft.db-wal 2>/dev/null | wc -c)
echo "disk: raft.db + wal of $L $sz bytes for $n keys, $(awk -v a="$sz" -v n="$n" 'BEGIN { printf "%.0f", a / n }') B/key;" \
    "snap-* files: $(ls "$T/$L" | grep -c '^snap-')"
