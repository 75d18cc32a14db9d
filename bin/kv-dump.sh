#!/bin/sh
# kv-dump - a keyval node's key-value table as JSON lines. See kv-dump(1).
PROG=kv-dump

usage() {
    cat <<'USAGE'
usage: kv-dump [-d DATADIR | -f FILE] [-p PREFIX]
Prints the key-value table, one JSON object per line in key order:
  {"key":"K","value":"V","index":N}
(N: the log index of the write that last changed K), read in one
transaction from the node's database while the node keeps serving, or
from a backup file. This is the node's local copy (a stale read).
  -d DATADIR  the node's data directory
              (default: $KEYVAL_DATADIR, else $HOME/node0)
  -f FILE     read a backup written by kv-backup instead
  -p PREFIX   only keys that start with PREFIX
Exit status: 0 printed, 1 failed, 2 usage error.
USAGE
}
# The usage lines alone, for a usage error (-h prints the rest).
short_usage() { usage | awk '/^usage:/ { u = 1; print; next } u && /^[ \t]/ { print; next } { exit }'; }

die() { echo "$PROG: $*" >&2; exit 1; }

datadir=${KEYVAL_DATADIR:-$HOME/node0}
file=
prefix=
while getopts :d:f:p:h opt; do
    case $opt in
    d) datadir=$OPTARG ;;
    f) file=$OPTARG ;;
    p) prefix=$OPTARG ;;
    h) usage; exit 0 ;;
    :) echo "$PROG: option -$OPTARG needs a value" >&2; short_usage >&2; exit 2 ;;
    *) echo "$PROG: unknown option -$OPTARG" >&2; short_usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 0 ]; then
    echo "$PROG: unexpected argument: $1" >&2
    usage >&2
    exit 2
fi
command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 is not installed"
if [ -n "$file" ]; then
    db=$file
    ro=-readonly
else
    db=$datadir/raft.db
    ro=
fi
[ -f "$db" ] || die "$db: no such database"
p=$(printf '%s' "$prefix" | sed "s/'/''/g")
# substr() compares bytes of the BLOB key, so no LIKE escaping is needed.
sqlite3 -bail $ro -cmd '.timeout 10000' "$db" "
SELECT json_object('key', CAST(key AS TEXT), 'value', CAST(value AS TEXT),
                   'index', mod_index)
FROM kv
WHERE substr(key, 1, length(CAST('$p' AS BLOB))) = CAST('$p' AS BLOB)
ORDER BY key;" || die "read $db failed"
