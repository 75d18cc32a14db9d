#!/bin/sh
# kv-backup - a consistent copy of a keyval node's database, taken while
# the node keeps serving. See kv-backup(1).
PROG=kv-backup

usage() {
    cat <<'USAGE'
usage: kv-backup [-d DATADIR] [-S] [-q] FILE
Writes a consistent copy of DATADIR/raft.db (the key-value table, the
applied index, the Raft log and state) to FILE while the node keeps
serving: SQLite's VACUUM INTO reads one snapshot of the database. First
a linearizable read (kv-get) makes the node apply every write the cluster
acknowledged before kv-backup started, so those are all in the copy;
when that fails (no leader, raftd stopped) kv-backup says so and copies
what the node has applied. The copy is written to FILE.tmp.PID, checked
(PRAGMA quick_check), fsynced and renamed to FILE, so FILE is either the
old file or a whole new backup, mode 0600 (it holds every key and value).
Restore it with kv-restore(8).
  -d DATADIR  the node's data directory
              (default: $KEYVAL_DATADIR, else $HOME/node0)
  -S          skip the linearizable read: copy what the node has applied
  -q          quiet: print nothing on success (notes still go to stderr)
Exit status: 0 written, 1 failed (FILE unchanged), 2 usage error.
USAGE
}
# The usage lines alone, for a usage error (-h prints the rest).
short_usage() { usage | awk '/^usage:/ { u = 1; print; next } u && /^[ \t]/ { print; next } { exit }'; }

die() { echo "$PROG: $*" >&2; [ -n "$tmp" ] && rm -f "$tmp"; exit 1; }

datadir=${KEYVAL_DATADIR:-$HOME/node0}
quiet=
stale=
tmp=
while getopts :d:Sqh opt; do
    case $opt in
    d) datadir=$OPTARG ;;
    S) stale=1 ;;
    q) quiet=1 ;;
    h) usage; exit 0 ;;
    :) echo "$PROG: option -$OPTARG needs a value" >&2; short_usage >&2; exit 2 ;;
    *) echo "$PROG: unknown option -$OPTARG" >&2; short_usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "$PROG: expected exactly one FILE" >&2
    usage >&2
    exit 2
fi
out=$1
command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is not installed"
db=$datadir/raft.db
[ -f "$db" ] || die "$db: no such database (is $datadir a keyval data directory?)"
[ -d "$out" ] && die "$out is a directory; give a file name"
outdir=$(dirname -- "$out")
[ -d "$outdir" ] || die "$outdir: no such directory"

# The read barrier: a linearizable read on this node returns only after
# the node has applied everything committed when the read began.
if [ -z "$stale" ]; then
    kvget=$(dirname -- "$0")/kv-get
    [ -x "$kvget" ] || kvget=kv-get
    berr=$(KEYVAL_TIMEOUT_MS=${KEYVAL_TIMEOUT_MS:-5000} \
        "$kvget" -d "$datadir" kv-backup-read-barrier 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        echo "$PROG: note: could not confirm the node is up to date" \
            "($(printf '%s\n' "$berr" | head -n 1)); copying what it has applied" >&2
    fi
fi

tmp=$out.tmp.$$
rm -f "$tmp"
# The copy holds every key and value: only its owner may read it, as
# only the owner may enter DATADIR (0700).
umask 077
# SQL string literal: double every single quote.
q=$(printf '%s' "$tmp" | sed "s/'/''/g")
err=$(sqlite3 -bail -cmd '.timeout 10000' "$db" "VACUUM INTO '$q';" 2>&1) ||
    die "copy $db: $err"
[ -f "$tmp" ] || die "copy $db: sqlite3 wrote no file"
chmod 600 "$tmp" || die "chmod 600 $tmp failed"
# Mark it as a backup (kv-restore accepts it without -force-new-cluster)
# and check it.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
info=$(sqlite3 -bail "$tmp" "
PRAGMA journal_mode=DELETE;
INSERT OR REPLACE INTO meta(name, value)
  SELECT 'backup_of', coalesce((SELECT value FROM meta WHERE name = 'cluster'), '') || ' $now';
SELECT (SELECT value FROM meta WHERE name = 'applied'),
       (SELECT count(*) FROM kv),
       (SELECT value FROM meta WHERE name = 'cluster');
PRAGMA quick_check;" 2>&1) || die "check $tmp: $info"
check=$(printf '%s\n' "$info" | tail -n 1)
[ "$check" = ok ] || die "check $tmp: quick_check says: $check"
line=$(printf '%s\n' "$info" | grep '|' | tail -n 1)
applied=$(printf '%s' "$line" | cut -d'|' -f1)
count=$(printf '%s' "$line" | cut -d'|' -f2)
cluster=$(printf '%s' "$line" | cut -d'|' -f3)
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$out" || die "rename $tmp to $out failed"
sync "$outdir" 2>/dev/null || true
tmp=
[ -n "$quiet" ] ||
    echo "$PROG: $out: $count keys, applied index ${applied:-0}, cluster ${cluster:-none}"
exit 0
