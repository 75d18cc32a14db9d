#!/bin/sh
# Backup and restore: kv-backup of a live 3-node cluster's follower while
# a client keeps writing; every write acknowledged before the backup began
# is in it; keyval -restore starts a NEW cluster (new cluster id) from it, a
# node joins that cluster, both serve exactly the backup's table, and new
# writes get higher indexes. Refusals: a non-empty DATADIR, a node's own
# raft.db without -force-new-cluster, a file that is no database. Then the
# old cluster loses its majority for good and its survivor is restarted as
# a new cluster with -force-new-cluster.
# Ports 17300-17304 (HTTP), 17310-17314 (Raft).
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
# cond NAME 'SHELL CONDITION': ok when the whole condition holds.
cond() {
    _c_n=$1; shift
    if eval "$*"; then ok "$_c_n"; else bad "$_c_n" "$*"; fi
}
BACKUP=$BUILD/bin/kv-backup
DUMP=$BUILD/bin/kv-dump
RESTORE=$BUILD/bin/kv-restore
for p in "$BACKUP" "$DUMP" "$RESTORE"; do
    [ -x "$p" ] || { bad setup "$p not built"; finish; }
done
command -v sqlite3 >/dev/null 2>&1 || { bad setup "sqlite3 not installed (make deps)"; finish; }

require_ports 17300 17301 17302 17303 17304 17310 17311 17312 17313 17314

start_node n0 -id n0 -haddr 127.0.0.1:17300 -raddr 127.0.0.1:17310 "$T/n0"
wait_until 20 is_leader 17300 || { bad setup "no leader on :17300"; finish; }
start_node n1 -id n1 -haddr 127.0.0.1:17301 -raddr 127.0.0.1:17311 -join 127.0.0.1:17300 "$T/n1"
start_node n2 -id n2 -haddr 127.0.0.1:17302 -raddr 127.0.0.1:17312 -join 127.0.0.1:17300 "$T/n2"
three_active() {
    [ "$(status_field 17300 '[.nodes[] | select(.voter and .active)] | length')" = 3 ]
}
wait_until 30 three_active || { bad setup "3 active voters: $(status_field 17300 -c .nodes)"; finish; }
old_cluster=$(status_field 17300 .cluster)

# A writer: one key per request, "w<i>" = "v<i> <"quote"> \ é"; each
# acknowledged (200) write is appended to $T/acked after its answer.
: > "$T/acked"
(
    i=0
    while [ ! -f "$T/stop" ] && [ $i -lt 5000 ]; do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPOST \
            http://127.0.0.1:17300/key -d "{\"w$i\":\"v$i \\\"q\\\" \\\\ é\"}")
        [ "$code" = 200 ] && echo "w$i" >> "$T/acked"
        i=$((i + 1))
    done
) &
writer=$!
all_pids="$all_pids $writer"
enough() { [ "$(wc -l < "$T/acked")" -ge "$1" ]; }
wait_until 30 enough 30 || bad setup "writer: only $(wc -l < "$T/acked") writes in 30 s"

# Back up the follower n1 while the writes go on.
cp "$T/acked" "$T/acked.before"
if "$BACKUP" -d "$T/n1" "$T/backup.db" > "$T/backup.out" 2>&1; then
    ok "backup_under_writes ($(cat "$T/backup.out"))"
else
    bad backup_under_writes "$(cat "$T/backup.out")"
fi
wait_until 10 enough $(( $(wc -l < "$T/acked.before") + 10 ))
touch "$T/stop"
wait "$writer"
check writes_went_on_during_backup [ "$(wc -l < "$T/acked")" -gt "$(wc -l < "$T/acked.before")" ]
check no_tmp_file_left [ -z "$(ls "$T" | grep 'backup.db.tmp')" ]
# The copy holds every key and value: as private as DATADIR (0700).
check backup_mode_0600 [ "$(stat -c %a "$T/backup.db")" = 600 ]

"$DUMP" -f "$T/backup.db" > "$T/backup.jsonl"
jq -r .key "$T/backup.jsonl" | sort > "$T/backup.keys"
sort "$T/acked.before" > "$T/acked.before.sorted"
missing=$(comm -23 "$T/acked.before.sorted" "$T/backup.keys" | head -n 5 | tr '\n' ' ')
check_missing() { [ -z "$missing" ]; }
if check_missing; then
    ok "backup_has_every_write_acknowledged_before_it ($(wc -l < "$T/acked.before") writes, $(wc -l < "$T/backup.keys") keys)"
else
    bad backup_has_every_write_acknowledged_before_it "missing: $missing"
fi
bad_values=$(jq -r 'select(.value != ("v" + (.key | ltrimstr("w")) + " \"q\" \\ é")) | .key' \
    "$T/backup.jsonl" | head -n 3)
cond backup_values_intact '[ -z "$bad_values" ] && [ -s "$T/backup.jsonl" ]'
check dump_is_json_lines_key_value_index \
    jq -e -s 'all(.[]; (keys == ["index","key","value"]) and (.index | type) == "number")' "$T/backup.jsonl"
applied=$(sqlite3 "$T/backup.db" "SELECT value FROM meta WHERE name = 'applied'")

# Refusals; none of them leaves anything behind.
mkdir -p "$T/full" && echo x > "$T/full/file"
out=$("$RESTORE" -id r0 "$T/backup.db" "$T/full" 2>&1); rc=$?
cond refuses_non_empty_datadir '[ "$rc" = 2 ] && echo "$out" | grep -q '\''not empty'\'''
out=$("$RESTORE" -id r0 "$T/n0/raft.db" "$T/refused" 2>&1); rc=$?
cond refuses_a_node_db_without_force '[ "$rc" = 2 ] && echo "$out" | grep -q '\''REFUSED'\'' && echo "$out" | grep -q -- -force-new-cluster && [ ! -e "$T/refused" ]'
out=$("$KEYVAL" -restore "$T/backup.db" -join 127.0.0.1:17300 "$T/withjoin" 2>&1); rc=$?
cond keyval_restore_refuses_join '[ "$rc" = 2 ] && [ ! -e "$T/withjoin" ]'
echo "not a database" > "$T/junk.db"
out=$("$RESTORE" -id r0 "$T/junk.db" "$T/junk" 2>&1); rc=$?
cond refuses_junk '[ "$rc" = 1 ] && [ ! -e "$T/junk" ]'
out=$("$RESTORE" -id 'bad id' "$T/backup.db" "$T/badid" 2>&1); rc=$?
cond refuses_bad_id '[ "$rc" = 2 ] && [ ! -e "$T/badid" ]'

# Restore into a new cluster (keyval -restore runs kv-restore, then starts
# the node) and grow it by a join.
start_node r0 -restore "$T/backup.db" -id r0 -haddr 127.0.0.1:17303 -raddr 127.0.0.1:17313 "$T/r0"
if wait_until 20 grep -q 'new cluster .* keys at index' "$T/r0.log"; then
    ok "keyval_restore ($(grep -m 1 'new cluster' "$T/r0.log"))"
else
    bad keyval_restore "$(tail -n 5 "$T/r0.log")"
fi
if wait_until 20 is_leader 17303; then ok restored_node_leads; else bad restored_node_leads "$(status_field 17303 -c .)"; fi
new_cluster=$(status_field 17303 .cluster)
cond restored_cluster_is_new '[ -n "$new_cluster" ] && [ "$new_cluster" != null ] && [ "$new_cluster" != "$old_cluster" ]'
check restored_node_is_alone [ "$(status_field 17303 '.nodes | length')" = 1 ]
start_node r1 -id r1 -haddr 127.0.0.1:17304 -raddr 127.0.0.1:17314 -join 127.0.0.1:17303 "$T/r1"
two_active() {
    [ "$(status_field 17303 '[.nodes[] | select(.voter and .active)] | length')" = 2 ]
}
if wait_until 30 two_active; then ok node_joins_restored_cluster; else bad node_joins_restored_cluster "$(status_field 17303 -c .nodes)"; fi
wait_until 20 sh -c "[ \"\$(curl -s -m 2 http://127.0.0.1:17304/status | jq .applied_index)\" -ge $applied ]"

"$DUMP" -d "$T/r0" > "$T/r0.jsonl"
"$DUMP" -d "$T/r1" > "$T/r1.jsonl"
check restored_table_equals_backup cmp -s "$T/backup.jsonl" "$T/r0.jsonl"
check joined_node_table_equals_backup cmp -s "$T/backup.jsonl" "$T/r1.jsonl"
k=$(head -n 1 "$T/acked.before")
expect_body read_over_http_on_joined_node 17304 "/key/$k" "{\"$k\":\"v${k#w} \\\"q\\\" \\\\ é\"}"
http_get 17303 "/key/$k"
etag=$(curl -s -m 5 -D - -o /dev/null "http://127.0.0.1:17303/key/$k" | tr -d '\r' |
    sed -n 's/^[Ee][Tt][Aa][Gg]: "\(.*\)"$/\1/p')
idx=$(jq -r --arg k "$k" 'select(.key == $k) | .index' "$T/backup.jsonl")
cond etag_is_the_backups_index '[ -n "$etag" ] && [ "$etag" = "$idx" ]'
http_post 17304 /key '{"after-restore":"yes"}'
new_idx=$(printf '%s' "$BODY" | jq -r .index)
cond new_write_after_restore '[ "$HTTP_CODE" = 200 ] && [ "$new_idx" -gt "$applied" ]'

# The old cluster loses its majority for good: n0 and n2 killed; n1
# cannot write. Its data becomes a new cluster, explicitly.
kill_node n0
kill_node n2
http_post 17301 /key '{"lost":"majority"}'
check no_writes_without_majority [ "$HTTP_CODE" = 503 ]
kill -TERM "$pid_n1"
wait "$pid_n1" 2>/dev/null
"$DUMP" -d "$T/n1" > "$T/n1.jsonl"
out=$("$RESTORE" -id n1 -haddr 127.0.0.1:17301 -raddr 127.0.0.1:17311 "$T/n1/raft.db" "$T/s1" 2>&1); rc=$?
cond survivor_refused_without_force '[ "$rc" = 2 ] && [ ! -e "$T/s1" ]'
if "$RESTORE" -id n1 -haddr 127.0.0.1:17301 -raddr 127.0.0.1:17311 -force-new-cluster \
    "$T/n1/raft.db" "$T/s1" > "$T/force.out" 2>&1; then
    ok force_new_cluster
else
    bad force_new_cluster "$(cat "$T/force.out")"
fi
start_node s1 -id n1 -haddr 127.0.0.1:17301 -raddr 127.0.0.1:17311 "$T/s1"
if wait_until 20 is_leader 17301; then ok survivor_leads_new_cluster; else bad survivor_leads_new_cluster "$(status_field 17301 -c .)"; fi
"$DUMP" -d "$T/s1" > "$T/s1.jsonl"
check survivor_keeps_its_table cmp -s "$T/n1.jsonl" "$T/s1.jsonl"
check survivor_has_the_backup_writes [ -z "$(comm -23 "$T/backup.keys" "$(jq -r .key "$T/s1.jsonl" | sort > "$T/s1.keys"; echo "$T/s1.keys")")" ]
expect_post survivor_takes_writes 17301 /key '{"recovered":"yes"}'

finish
