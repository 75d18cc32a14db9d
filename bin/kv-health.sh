#!/bin/sh
# kv-health - check one keyval node; one line of output and the exit codes
# of a monitoring plugin. See kv-health(8).
PROG=kv-health

usage() {
    cat <<'USAGE'
usage: kv-health [-H HOST:PORT] [-d DATADIR] [-C CAFILE] [-a FILE] [-t SECONDS]
                 [-l ENTRIES] [-L ENTRIES] [-s ENTRIES] [-w PERCENT]
                 [-c PERCENT] [-q]
Checks one keyval node through GET /status (and GET /status of the leader
it names) and prints one line: KEYVAL OK|WARNING|CRITICAL|UNKNOWN - why.
  -H HOST:PORT  the node's HTTP address
                (default: $KEYVAL_HADDR, else localhost:11000)
  -d DATADIR    the node's data directory; adds the raftd.sock and disk
                checks (default: $KEYVAL_DATADIR when set, else none)
  -C CAFILE     the node serves HTTPS: ask over https, trusting CAFILE
                (default: $KEYVAL_CACERT)
  -a FILE       the node wants HTTP basic auth: FILE has one line
                USER:PASSWORD, a read-only user is enough; the password
                stays out of the command line (default: $KEYVAL_AUTH_FILE)
  -t SECONDS    timeout of each request (default 5)
  -l ENTRIES    replication lag that is a WARNING (default 1000)
  -L ENTRIES    replication lag that is CRITICAL (default 10000)
  -s ENTRIES    log entries since the last snapshot that are a WARNING
                (default: 100000, or twice the node's own snapshot
                interval, status snapshot_every, when that is larger)
  -w PERCENT    disk use of DATADIR's filesystem that is a WARNING
                (default 90)
  -c PERCENT    disk use that is CRITICAL (default 95)
  -q            quiet: print nothing when the node is OK (for cron)
CRITICAL: the HTTP API or raftd.sock does not answer, the node was
removed from the cluster, no leader, the
leader does not answer, lag >= -L, disk use >= -c. WARNING: lag >= -l, a
follower the leader has not heard from, log >= -s entries without a
snapshot, disk use >= -w.
Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad usage, curl or
jq missing, an answer that cannot be read).
USAGE
}
# The usage lines alone, for a usage error (-h prints the rest).
short_usage() { usage | awk '/^usage:/ { u = 1; print; next } u && /^[ \t]/ { print; next } { exit }'; }

haddr=${KEYVAL_HADDR:-localhost:11000}
datadir=${KEYVAL_DATADIR:-}
timeout=5
lag_warn=1000
lag_crit=10000
snap_warn=100000
snap_warn_set=
disk_warn=90
disk_crit=95
quiet=
cafile=${KEYVAL_CACERT:-}
authfile=${KEYVAL_AUTH_FILE:-}

unknown() { echo "KEYVAL UNKNOWN - $*"; exit 3; }
# A usage error is UNKNOWN too: one line on stdout; on stderr the error
# and the usage lines only (kv-health -h has the rest).
usage_error() {
    echo "KEYVAL UNKNOWN - $*"
    echo "$PROG: $*" >&2
    short_usage >&2
    exit 3
}

number() { # NAME VALUE: a non-negative integer
    case $2 in
    ''|*[!0-9]*) usage_error "$1: expected a number, got '$2'" ;;
    esac
}

# The leading ':' keeps getopts quiet; the errors below say it once.
while getopts :H:d:C:a:t:l:L:s:w:c:qh opt; do
    case $opt in
    H) haddr=$OPTARG ;;
    C) cafile=$OPTARG ;;
    a) authfile=$OPTARG ;;
    d) datadir=$OPTARG ;;
    t) number -t "$OPTARG"; timeout=$OPTARG ;;
    l) number -l "$OPTARG"; lag_warn=$OPTARG ;;
    L) number -L "$OPTARG"; lag_crit=$OPTARG ;;
    s) number -s "$OPTARG"; snap_warn=$OPTARG; snap_warn_set=1 ;;
    w) number -w "$OPTARG"; disk_warn=$OPTARG ;;
    c) number -c "$OPTARG"; disk_crit=$OPTARG ;;
    q) quiet=1 ;;
    h) usage; exit 0 ;;
    :) usage_error "option -$OPTARG needs a value" ;;
    *) usage_error "unknown option -$OPTARG" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage_error "unexpected argument: $1"
case $haddr in
*:*) ;;
*) usage_error "-H: expected HOST:PORT, got '$haddr'" ;;
esac
[ "$timeout" -ge 1 ] || usage_error "-t: at least 1 second"
# ":11000" means localhost, as in keyval -join.
case $haddr in :*) haddr=localhost$haddr ;; esac
for tool in curl jq; do
    command -v $tool >/dev/null 2>&1 || unknown "$tool is not installed"
done
scheme=http
if [ -n "$cafile" ]; then
    [ -r "$cafile" ] || usage_error "-C $cafile: not a readable file"
    scheme=https
fi
# curl reads "user" from a config on stdin, so the password is not in ps.
curl_user=""
if [ -n "$authfile" ]; then
    [ -r "$authfile" ] || usage_error "-a $authfile: not a readable file"
    [ "$(wc -l <"$authfile")" -le 1 ] && cred=$(head -n 1 "$authfile") &&
        case $cred in *:*) true ;; *) false ;; esac ||
        usage_error "-a $authfile: expected one line USER:PASSWORD"
    curl_user=$(printf '%s' "$cred" | sed 's/\\/\\\\/g; s/"/\\"/g')
fi

worst=0
msgs=""
problem() { # LEVEL MESSAGE
    [ "$1" -gt "$worst" ] && worst=$1
    msgs="${msgs:+$msgs; }$2"
}

report() {
    case $worst in
    0) word=OK ;; 1) word=WARNING ;; 2) word=CRITICAL ;; *) word=UNKNOWN ;;
    esac
    if [ "$worst" -ne 0 ] || [ -z "$quiet" ]; then
        echo "KEYVAL $word - $msgs"
    fi
    exit "$worst"
}

# raftd.sock and the disk, when the data directory is known.
if [ -n "$datadir" ]; then
    sock=$datadir/raftd.sock
    if [ ! -S "$sock" ]; then
        problem 2 "raftd.sock not found in $datadir (raftd not running?)"
    elif ! command -v socat >/dev/null 2>&1; then
        unknown "socat is not installed (needed for -d)"
    else
        ans=$(echo '{"op":"status"}' |
            timeout "$timeout" socat -t "$timeout" - "UNIX-CONNECT:$sock" 2>/dev/null)
        # (jq 1.6 -e succeeds on empty input: compare the text instead.)
        if [ "$(printf '%s' "$ans" | jq -r '.code' 2>/dev/null)" != 200 ]; then
            problem 2 "raftd not answering on $sock"
        fi
    fi
    if [ -d "$datadir" ]; then
        use=$(df -P "$datadir" 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); print $5 }')
        case $use in
        ''|*[!0-9]*) problem 3 "cannot read the disk use of $datadir" ;;
        *)
            if [ "$use" -ge "$disk_crit" ]; then
                problem 2 "disk ${use}% full"
            elif [ "$use" -ge "$disk_warn" ]; then
                problem 1 "disk ${use}% full"
            fi ;;
        esac
    else
        problem 2 "$datadir is not a directory"
    fi
fi

# get_status HADDR: sets ST (the body) and CODE; 0 when 200 and JSON.
get_status() {
    ST=$(printf '%s\n' "${curl_user:+user = \"$curl_user\"}" |
        curl -s -K - -m "$timeout" ${cafile:+--cacert "$cafile"} -w '\n%{http_code}' \
            "$scheme://$1/status" 2>/dev/null)
    CODE=$(printf '%s' "$ST" | tail -n 1)
    ST=$(printf '%s' "$ST" | sed '$d')
    [ "$CODE" = 200 ] && [ "$(printf '%s' "$ST" | jq -r 'type' 2>/dev/null)" = object ]
}

if ! get_status "$haddr"; then
    case $CODE in
    000|'') problem 2 "HTTP API at $haddr not answering" ;;
    *)
        why=$(printf '%s' "$ST" | jq -r '.error // empty' 2>/dev/null)
        problem 2 "GET /status at $haddr: $CODE ${why:-bad answer}" ;;
    esac
    report
fi

f() { printf '%s' "$ST" | jq -r "$1" 2>/dev/null; }
id=$(f '.id // "?"')
state=$(f '.state // "?"')
leader=$(f '.leader // empty')
leader_haddr=$(f '.leader_haddr // empty')
term=$(f '.term // 0')
applied=$(f '.applied_index // 0')
last=$(f '.last_log_index // 0')
snap=$(f '.snapshot_index // 0')
every=$(f '.snapshot_every // 0')
case $every in ''|*[!0-9]*) every=0 ;; esac
for v in "$term" "$applied" "$last" "$snap"; do
    case $v in ''|*[!0-9]*) unknown "unreadable /status from $haddr" ;; esac
done

lag=0
removed=$(f '.removed // false')
if [ "$removed" = true ]; then
    problem 2 "node $id was removed from the cluster ($(f '.removed_reason // ""')); restart it with its keyval -join command line to join again"
elif [ -z "$leader" ]; then
    problem 2 "no leader (node $id is $state in term $term)"
elif [ "$state" = leader ]; then
    # The leader's view of each follower: how far behind, heard from.
    n=$(f '[.nodes[] | select(.self | not)] | length')
    i=0
    while [ "$i" -lt "${n:-0}" ]; do
        fid=$(f "[.nodes[] | select(.self | not)][$i].id")
        fmatch=$(f "[.nodes[] | select(.self | not)][$i].match // 0")
        factive=$(f "[.nodes[] | select(.self | not)][$i].active")
        [ "$factive" = false ] && problem 1 "leader has not heard from $fid"
        case $fmatch in ''|*[!0-9]*) fmatch=0 ;; esac
        flag=$((last - fmatch))
        [ "$flag" -gt "$lag" ] && lag=$flag
        if [ "$flag" -ge "$lag_crit" ]; then
            problem 2 "follower $fid lags $flag entries"
        elif [ "$flag" -ge "$lag_warn" ]; then
            problem 1 "follower $fid lags $flag entries"
        fi
        i=$((i + 1))
    done
else
    # A follower: the leader it names must answer and agree.
    self_st=$ST
    if [ -z "$leader_haddr" ]; then
        problem 1 "leader $leader has no HTTP address in the configuration"
    elif ! get_status "$leader_haddr"; then
        problem 2 "leader $leader at $leader_haddr not answering"
    else
        lstate=$(f '.state // "?"')
        lterm=$(f '.term // 0')
        lcommit=$(f '.commit_index // 0')
        case $lcommit in ''|*[!0-9]*) lcommit=0 ;; esac
        if [ "$lstate" != leader ]; then
            problem 2 "leader $leader at $leader_haddr says it is $lstate (term $lterm)"
        else
            lag=$((lcommit - applied))
            [ "$lag" -lt 0 ] && lag=0
            if [ "$lag" -ge "$lag_crit" ]; then
                problem 2 "lags the leader by $lag entries"
            elif [ "$lag" -ge "$lag_warn" ]; then
                problem 1 "lags the leader by $lag entries"
            fi
        fi
    fi
    ST=$self_st
fi

since=$((last - snap))
# raftd snapshots every snapshot_every entries, more on big tables
# (docs/design.md, "Snapshot policy"): without -s, only twice that is
# overdue.
[ -z "$snap_warn_set" ] && [ $((2 * every)) -gt "$snap_warn" ] && snap_warn=$((2 * every))
if [ "$since" -ge "$snap_warn" ]; then
    problem 1 "$since log entries since the last snapshot (at $snap)"
fi

[ -z "$msgs" ] && msgs="node $id is $state in term $term, leader $leader, applied $applied, lag $lag"
report
