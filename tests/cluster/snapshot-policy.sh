#!/bin/sh
# raftd's snapshot policy as a user sees it, on single-node clusters (one
# raftd with -bootstrap: no peers, no TCP port):
# - -snapshot-bytes: with a huge -snapshot-entries, writing more log bytes
#   than the limit takes snapshots (keyval_snapshots_taken_total,
#   snapshot_index) and keeps the log held in memory (keyval_log_bytes)
#   near the limit; with -snapshot-bytes 0 no snapshot is taken.
# - compaction copies nothing: one every -snapshot-entries entries whatever
#   the table size, no snap-* file in the data dir, and a restart after
#   compactions serves every key; without a byte limit the trail behind a
#   snapshot is kept.
# Prints ok/FAIL lines and "N passed, M failed". Nothing here is timed.
BUILD=${BUILD:-build}
RAFTD=$BUILD/bin/raftd
KVB=$BUILD/bin/kv-bench
for tool in socat jq; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL setup: $tool not installed"; echo "0 passed, 1 failed"; exit 1; }
done
[ -x "$RAFTD" ] && [ -x "$KVB" ] || { echo "FAIL setup: $RAFTD or $KVB not built"; echo "0 passed, 1 failed"; exit 1; }

T=$(mktemp -d /tmp/kv-snappol-test.XXXXXX)
PID=""
passed=0
failed=0
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    if [ -n "$KEEP_LOGS" ]; then mkdir -p "$KEEP_LOGS" && cp "$T"/*.log "$KEEP_LOGS"/ 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() { # name command...
    name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "${LAST:-condition false}"; fi
}
q() { printf '%s\n' "$2" | timeout 12 socat -t 10 - UNIX-CONNECT:"$T/$1/raftd.sock" 2>/dev/null; }
status() { q "$1" '{"op":"status"}' | jq -r ".$2"; }
metric() { q "$1" '{"op":"metrics"}' | jq -r ".metrics[] | select(.name == \"$2\") | .value"; }
wait_until() { # SECONDS command...
    limit=$(( $1 * 10 )); shift
    i=0
    while [ $i -lt $limit ]; do
        if "$@"; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
is_leader() { [ "$(status "$1" state)" = leader ]; }

start() { # node [raftd options]
    nd=$1; shift
    mkdir -p "$T/$nd"
    "$RAFTD" -id "$nd" -raddr 127.0.0.1:1 -haddr 127.0.0.1:2 -bootstrap "$@" "$T/$nd" \
        2>>"$T/$nd.log" &
    PID=$!
    wait_until 10 is_leader "$nd"
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=""; }
# writes NAME N VSIZE [BATCH]: N write requests, one at a time.
writes() { "$KVB" -d "$T/$1" -op set -c 1 -n "$2" -vsize "$3" -batch "${4:-1}" -prefix "w$RANDOM" -q >/dev/null; }

# ---------------------------------------------------------------- bytes
# 64 KiB limit: a snapshot once 32 KiB of entries are held since the last.
# 100 writes of 4 KiB = 400 KiB of log.
check start_bytes start b -snapshot-entries 1000000000 -snapshot-bytes 65536
writes b 100 4096
n=$(metric b keyval_snapshots_taken_total)
LAST="keyval_snapshots_taken_total is '$n' after 400 KiB of writes with -snapshot-bytes 65536"
check bytes_limit_takes_snapshots [ "${n:-0}" -ge 5 ]
si=$(status b snapshot_index)
LAST="snapshot_index is '$si'"
check bytes_limit_snapshot_index [ "${si:-0}" -gt 0 ]
fl=$(status b first_log_index)
LAST="first_log_index $fl, snapshot_index $si: more than 16 KiB (1/4 of the limit) of 4 KiB entries kept behind the snapshot"
check bytes_limit_bounds_trail [ "${fl:-0}" -gt $(( ${si:-0} - 5 )) ]
lb=$(metric b keyval_log_bytes)
LAST="keyval_log_bytes is '$lb' (limit 65536, plus one 4 KiB entry)"
check bytes_limit_bounds_log [ "${lb:-999999999}" -le $((65536 + 8192)) ]
stop

# Control: the same writes without a byte limit take no snapshot.
check start_nolimit start n -snapshot-entries 1000000000 -snapshot-bytes 0
writes n 100 4096
n=$(metric n keyval_snapshots_taken_total)
LAST="keyval_snapshots_taken_total is '$n' with -snapshot-bytes 0"
check no_bytes_limit_no_snapshot [ "$n" = 0 ]
lb=$(metric n keyval_log_bytes)
LAST="keyval_log_bytes is '$lb', expected above 400000"
check no_bytes_limit_log_grows [ "${lb:-0}" -gt 400000 ]
stop

# ---------------------------------------------------------------- keys
# -snapshot-entries 10: a compaction every 10 entries whatever the table
# holds (it copies nothing: the database is the snapshot). One request of
# 300 keys, then 10 writes, then 100: compactions follow the entries, no
# snapshot file is written, and a restart serves every key.
check start_keys start k -snapshot-entries 10 -snapshot-bytes 0
writes k 1 16 300
writes k 12 16
s1=$(status k snapshot_index)
LAST="snapshot_index is '$s1' after 13 entries with -snapshot-entries 10"
check entries_first_snapshot [ "${s1:-0}" -ge 10 ]
fl=$(status k first_log_index)
LAST="first_log_index is '$fl' after a snapshot at $s1: the trail (-snapshot-trail 1000, no byte limit) was dropped"
check trail_kept_without_bytes_limit [ "${fl:-999}" -lt "$s1" ]
writes k 100 16
s2=$(status k snapshot_index)
LAST="snapshot_index moved from $s1 to $s2 after 100 entries; with -snapshot-entries 10 it should follow them"
check interval_is_entries [ "${s2:-0}" -ge $((s1 + 90)) ]
ev=$(status k snapshot_every)
LAST="status snapshot_every is '$ev' with -snapshot-entries 10"
check status_shows_interval [ "$ev" = 10 ]
nf=$(ls "$T/k" | grep -c '^snap-')
LAST="the data dir holds $nf snap-* files after $(metric k keyval_snapshots_taken_total) compactions: $(ls "$T/k" | tr '\n' ' ')"
check no_snapshot_file_per_compaction [ "$nf" = 0 ]
before=$(q k '{"op":"list","prefix":"w","limit":1000}' | jq -c '.items' 2>/dev/null | md5sum)
nb=$(q k '{"op":"list","prefix":"w","limit":1000}' | jq -r '.items | length' 2>/dev/null)
stop
check restart_keys start k -snapshot-entries 10 -snapshot-bytes 0
nk=$(q k '{"op":"list","prefix":"w","limit":1000}' | jq -r '.items | length' 2>/dev/null)
after=$(q k '{"op":"list","prefix":"w","limit":1000}' | jq -c '.items' 2>/dev/null | md5sum)
LAST="after a restart following compactions the node lists '$nk' keys, had '$nb' (>= 300 expected) or other values"
same_keys() { [ "${nb:-0}" -ge 300 ] && [ "$nk" = "$nb" ] && [ "$after" = "$before" ]; }
check restart_after_compaction_serves_all same_keys
s3=$(status k snapshot_index)
LAST="snapshot_index after the restart is '$s3', was '$s2'"
check snapshot_index_kept_after_restart [ "$s3" = "$s2" ]
stop

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
