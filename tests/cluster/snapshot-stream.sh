#!/bin/sh
# A follower that needs a snapshot of a leader that keeps none on disk
# (compaction only records the snapshot meta in raft.db): raftd nodes on
# loopback, peers through socat, clients through DATADIR/raftd.sock.
# - compactions on the leader leave no snap-* file in its data dir;
# - a follower behind the compacted log gets the whole table, its leases
#   and key leases from a snapshot file the leader writes on demand, and
#   keeps no snapshot file after installing it;
# - the transfer cut mid-way (the follower killed while snap-incoming is
#   partial) leaves the follower's old state intact in its raft.db, and
#   after a restart it asks again and gets everything.
# - while a follower catches up by snapshot under a stream of writes
#   (compaction waits for the transfer), the leader holds at most
#   -snapshot-bytes (1 MiB here) of applied log in memory; the follower
#   gets the entries after the snapshot read back from the leader's
#   raft.db and ends with the same table.
# Prints ok/FAIL lines and "N passed, M failed". Nothing here is timed.
TEST_NAME=snapstream
NODES="a b c"
PEER_PREFIX=1404
RAFTD_OPTS="-tick-ms 20 -election-ticks 25 -snapshot-entries 20 -snapshot-trail 5 -snapshot-bytes 1048576"
. "$(dirname "$0")/raftd-helpers.inc"
KVB=$BUILD/bin/kv-bench
command -v sqlite3 >/dev/null 2>&1 || { echo "FAIL setup: sqlite3 not installed"; echo "0 passed, 1 failed"; exit 1; }

snap_files() { ls "$T/$1" | grep -c '^snap-[0-9]'; }
db() { sqlite3 "$T/$1/raft.db" "$2" 2>/dev/null; }
kill9() { # node
    eval "p=\$RPID_$1"
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

for n in $NODES; do mkdir -p "$T/$n"; start_listener "$n"; done
start_raftd a -bootstrap
start_raftd b
start_raftd c
wait_until 5 sock_up b && wait_until 5 sock_up c
LAST="a did not become leader"
check a_leads wait_until 10 is_state a leader
lid=$(field a '{"op":"lease_grant","ttl_ms":86400000}' .lease)
q a "{\"op\":\"set\",\"kv\":{\"leased\":\"l1\"},\"lease\":\"$lid\"}" >/dev/null
q a '{"op":"set","kv":{"old":"v1"}}' >/dev/null
join_all
LAST="b never had old=v1"
check b_joined wait_until 20 has_stale b old v1
LAST="a's configuration has $(voters a) voters"
check three_voters wait_until 20 nvoters 3

# b stops; the leader (with c) writes ~16 MB (many 256 KiB chunks) and compacts.
kill "$RPID_b"
wait "$RPID_b" 2>/dev/null
"$KVB" -d "$T/a" -op set -c 4 -n 1600 -vsize 10000 -prefix big -q >/dev/null
q a '{"op":"set","kv":{"old":"v2"}}' >/dev/null
si=$(field a '{"op":"status"}' .snapshot_index)
LAST="leader snapshot_index is '$si' after 1600 writes with -snapshot-entries 20"
check leader_compacted [ "${si:-0}" -gt 1000 ]
LAST="the leader's data dir holds snapshot files: $(ls "$T/a" | tr '\n' ' ')"
check no_snapshot_file_on_leader [ "$(snap_files a)" = 0 ]

# b restarts and needs a snapshot: kill it while the transfer is partial.
start_raftd b
i=0
while [ $i -lt 2000 ] && [ ! -s "$T/b/snap-incoming" ]; do sleep 0.01; i=$((i + 1)); done
kill9 b
part=$(stat -c %s "$T/b/snap-incoming" 2>/dev/null || echo 0)
LAST="b never received snapshot bytes (snap-incoming missing)"
check transfer_started [ "$part" -gt 0 ]
LAST="b's raft.db after the cut: old='$(db b "SELECT CAST(value AS TEXT) FROM kv WHERE CAST(key AS TEXT) = 'old'")', big keys $(db b "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'big%'")"
cut_kept_old() {
    [ "$(db b "SELECT CAST(value AS TEXT) FROM kv WHERE CAST(key AS TEXT) = 'old'")" = v1 ] &&
        [ "$(db b "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'big%'")" = 0 ]
}
check cut_leaves_old_state cut_kept_old

# Restarted again, b retries and installs the whole state.
start_raftd b
LAST="b never had old=v2 after the retry"
check retry_installs wait_until 60 has_stale b old v2
LAST="b did not log a snapshot install"
check installed_by_snapshot grep -q "snapshot installed" "$T/b.log"
nb=$(field b '{"op":"status"}' .applied)
wait_until 10 has_stale b leased l1
kill "$RPID_b"
wait "$RPID_b" 2>/dev/null
nbig=$(db b "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'big%'")
nbig_a=$(db a "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'big%'")
LAST="b holds $nbig big keys, a holds $nbig_a (b applied $nb)"
whole() { [ "${nbig:-0}" -gt 0 ] && [ "$nbig" = "$nbig_a" ]; }
check whole_table whole
LAST="b's leases: '$(db b "SELECT id FROM leases")', leased key's lease '$(db b "SELECT lease FROM kv WHERE CAST(key AS TEXT) = 'leased'")', want $lid"
leases_ok() {
    [ "$(db b "SELECT id FROM leases")" = "$lid" ] &&
        [ "$(db b "SELECT lease FROM kv WHERE CAST(key AS TEXT) = 'leased'")" = "$lid" ]
}
check leases_in_snapshot leases_ok
LAST="b keeps snapshot files after installing: $(ls "$T/b" | tr '\n' ' ')"
check no_snapshot_file_on_follower [ "$(snap_files b)" = 0 ]
nf=$(field a '{"op":"metrics"}' '.metrics[] | select(.name == "keyval_snapshot_files_total") | .value')
LAST="keyval_snapshot_files_total on the leader is '$nf'"
check leader_wrote_file_on_demand [ "${nf:-0}" -ge 1 ]

# b misses more writes, then catches up while 10 KB writes go on at a.
metric() { field "$1" '{"op":"metrics"}' ".metrics[] | select(.name == \"$2\") | .value"; }
"$KVB" -d "$T/a" -op set -c 4 -n 300 -vsize 10000 -prefix gap -q >/dev/null
"$KVB" -d "$T/a" -op set -c 8 -t 6 -vsize 10000 -prefix flow -q >"$T/flow.out" 2>&1 &
fpid=$!
start_raftd b
maxlog=0
while kill -0 "$fpid" 2>/dev/null; do
    lb=$(metric a keyval_log_bytes)
    lb=${lb%.*}
    [ "${lb:-0}" -gt "$maxlog" ] && maxlog=$lb
    sleep 0.1
done
wait "$fpid"
echo "# leader log in memory at most $maxlog bytes during the catch-up; writes meanwhile: $(cat "$T/flow.out")"
q a '{"op":"set","kv":{"old":"v3"}}' >/dev/null
LAST="b never had old=v3 after catching up"
check caught_up_under_writes wait_until 60 has_stale b old v3
loads=$(metric a keyval_log_loads_total)
LAST="the leader read no entries back from raft.db (keyval_log_loads_total '$loads'); $(grep -c 'snapshot installed' "$T/b.log") installs on b"
check entries_read_back [ "${loads%.*}" -gt 0 ]
LAST="the leader held up to $maxlog bytes of log in memory during the catch-up, -snapshot-bytes 1048576 (one unapplied batch of 8 writes of 10 KB may come on top)"
bounded() { [ "$maxlog" -gt 0 ] && [ "$maxlog" -le $((1048576 + 8 * 10100)) ]; }
check leader_log_bounded bounded
kill "$RPID_b"
wait "$RPID_b" 2>/dev/null
kill "$RPID_a"
wait "$RPID_a" 2>/dev/null
same() {
    [ "$(db a "SELECT count(*), sum(length(value)) FROM kv WHERE CAST(key AS TEXT) LIKE 'flow%'")" = \
        "$(db b "SELECT count(*), sum(length(value)) FROM kv WHERE CAST(key AS TEXT) LIKE 'flow%'")" ]
}
LAST="flow keys on a: $(db a "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'flow%'"), on b: $(db b "SELECT count(*) FROM kv WHERE CAST(key AS TEXT) LIKE 'flow%'")"
check same_table_after_catch_up same
finish
