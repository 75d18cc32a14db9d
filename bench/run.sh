#!/bin/bash
# make bench: keyval (CGI mode, FastCGI mode), etcd (if installed), hraftd
# (the seed, if built: bench/hraftd.inc) and a
# trivial static CGI under lighttpd (the floor), one after another on
# loopback, each driven by wrk at 1, 8 and 32 connections; then kv-bench
# straight at raftd.sock, writes per fsync, raftd RSS and database bytes
# per key at BENCH_KEYS keys, and the restart time of a node holding them.
# Writes a Markdown report to bench/results/YYYY-MM-DD.md (BENCH_OUT).
#
# Environment: BUILD (build), BENCH_SECONDS per round (5), BENCH_CONNS
# ("1 8 32"), BENCH_KEYS (100000), BENCH_SYSTEMS ("cgi fastcgi fast etcd hraftd floor floor-fcgi"),
# BENCH_PARTS ("disk http scale-http direct size startup profile"; profile needs perf;
# scale-http: BENCH_SCALE_KEYS, BENCH_SCALE_SYSTEMS), BENCH_ROUNDS (3: the http
# part runs every system once per round, rounds interleaved, and the report
# shows the median round), BENCH_DIRECT_CONNS ("1 8 32 64"). BENCH_KEYS
# may list several sizes ("100000 1000000" by default); BENCH_VSIZE is the
# value size of the size part (100 bytes, as the issue's memory target).
# Ports 19100-19599 on 127.0.0.1.
# Figures only: nothing here passes or fails on timing.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-1 8 32}
KEYS_LIST=${BENCH_KEYS:-100000 1000000}
VSIZE=${BENCH_VSIZE:-100}
SYSTEMS=${BENCH_SYSTEMS:-cgi fastcgi fast etcd hraftd floor floor-fcgi}
PARTS=${BENCH_PARTS:-disk http scale-http direct size startup profile}
ROUNDS=${BENCH_ROUNDS:-3}
DCONNS=${BENCH_DIRECT_CONNS:-1 8 32 64}
OUT=${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d).md}
KEYVAL=$BUILD/bin/keyval
KVB=$BUILD/bin/kv-bench
WRKDIR=$(pwd)/bench/wrk
mkdir -p "$(dirname "$OUT")"
T=$(mktemp -d /tmp/keyval-bench.XXXXXX)
pids=""

for tool in wrk curl jq lighttpd; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] ||
        { echo "bench: $tool is not installed (make bench-deps)" >&2; exit 1; }
done

say() { echo "bench: $*" >&2; }

stop_pids() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 50); do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.2
    done
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then
            for c in $(ps -o pid= --ppid "$p"); do kill -9 "$c" 2>/dev/null; done
            kill -9 "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    pids=""
}
cleanup() { trap - EXIT INT TERM; stop_pids; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

wait_until() { # SECONDS CMD...
    local n=$(( $1 * 5 )); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

# wrk_round LABEL WORKLOAD CONNS URL SCRIPT [ARG]: one row into $T/rows:
# label workload conns req/s p50_ms p99_ms non2xx
wrk_round() {
    local label=$1 wl=$2 c=$3 url=$4 script=$5 arg=${6:-}
    local th=$(( c < 2 ? 1 : 2 ))
    local out="$T/wrk.out"
    wrk -t "$th" -c "$c" -d "${SECS}s" --timeout 10s --latency -s "$WRKDIR/$script" "$url" \
        ${arg:+-- "$arg"} >"$out" 2>&1
    local rps p50 p99 bad
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$(awk '/Socket errors:/ { print $0 }' "$out" | sed 's/.*errors: //')
    echo "$label $wl $c ${rps:-0} $(to_ms "$p50") $(to_ms "$p99") ${bad:-0}${errs:+ ($errs)}" >>"$T/rows"
    echo "$label $wl $c ${rps:-0} $(to_ms "$p50") $(to_ms "$p99") ${bad:-0}${errs:+ ($errs)}" >>"$T/rows.all"
    say "$label $wl c=$c: ${rps:-?} req/s p50 ${p50:-?} p99 ${p99:-?} non-2xx ${bad:-0}"
}

to_ms() { # wrk duration (812.00us, 1.23ms, 2.00s) -> milliseconds
    case $1 in
    *us) awk -v v="${1%us}" 'BEGIN { printf "%.2f", v / 1000 }' ;;
    *ms) awk -v v="${1%ms}" 'BEGIN { printf "%.2f", v }' ;;
    *s) awk -v v="${1%s}" 'BEGIN { printf "%.1f", v * 1000 }' ;;
    *) echo "-" ;;
    esac
}

# ---------------------------------------------------------------- keyval
# Three nodes: k0 (HTTP 19101, Raft 19201, bootstrap leader), k1, k2.
start_keyval() { # MODE (cgi|fastcgi|fast)
    local flag=""
    [ "$1" = fastcgi ] && flag=-fastcgi
    [ "$1" = fast ] && flag=-fast
    rm -rf "$T/k0" "$T/k1" "$T/k2"
    "$KEYVAL" $flag -id k0 -haddr 127.0.0.1:19101 -raddr 127.0.0.1:19201 "$T/k0" \
        >"$T/k0.log" 2>&1 &
    pids="$pids $!"
    wait_until 20 sh -c '[ "$(curl -s -m 2 http://127.0.0.1:19101/status | jq -r .state)" = leader ]' ||
        { say "keyval k0 did not lead"; return 1; }
    for i in 1 2; do
        "$KEYVAL" $flag -id k$i -haddr 127.0.0.1:1910$((i + 1)) -raddr 127.0.0.1:1920$((i + 1)) \
            -join 127.0.0.1:19101 "$T/k$i" >"$T/k$i.log" 2>&1 &
        pids="$pids $!"
    done
    wait_until 30 sh -c '[ "$(curl -s -m 2 http://127.0.0.1:19101/status |
        jq -r "[.nodes[] | select(.voter)] | length")" = 3 ]' ||
        { say "keyval: 3 voters not reached"; return 1; }
    # Keys r0..r99 for the read rounds.
    "$KVB" -d "$T/k0" -op fill -keys 100 -batch 100 -prefix r -c 1 -t 60 -q >/dev/null
}

raftd_pid() { cat "$T/$1/raftd.pid" 2>/dev/null | head -1; }

status_num() { # NODE FIELD
    echo '{"op":"status"}' | socat -t 5 - UNIX-CONNECT:"$T/$1/raftd.sock" | jq -r ".$2 // empty"
}

# cpu_snapshot: CPU seconds so far, by program, of every process under
# the started PIDs: own time, plus the time of reaped children (mod_cgi's
# programs) under the name "cgi". Prints "name ticks" lines.
descendants() {
    local p
    for p in "$@"; do
        echo "$p"
        descendants $(ps -o pid= --ppid "$p")
    done
}
cpu_snapshot() {
    for p in $(descendants $pids); do
        [ -r /proc/$p/stat ] || continue
        # comm may hold spaces; fields after ") " start at state (3).
        sed 's/^[0-9]* (\(.*\)) /\1 /' /proc/$p/stat 2>/dev/null |
            awk '{ print $1, $13 + $14; if ($15 + $16 > 0) print "cgi", $15 + $16 }'
    done | awk '{ t[$1] += $2 } END { for (k in t) print k, t[k] }' | sort
}
# cpu_profile LABEL REQUESTS BEFORE-FILE AFTER-FILE: CPU ms per request.
cpu_profile() {
    local hz
    hz=$(getconf CLK_TCK)
    join -a 2 -e 0 -o 0,1.2,2.2 "$3" "$4" |
        awk -v l="$1" -v n="$2" -v hz="$hz" '{ d = ($3 - $2) * 1000 / hz;
            if (d > 0) printf "%s %s %.3f\n", l, $1, d / n }' >>"$T/cpu"
}

http_rounds() { # LABEL URL-BASE WRITE-SCRIPT READ-SCRIPT LIN-ARG STALE-ARG
    local label=$1 base=$2
    for c in $CONNS; do
        cpu_snapshot >"$T/cpu0"
        case $label in
        etcd) wrk_round "$label" write "$c" "$base" etcd-put.lua ;;
        *) wrk_round "$label" write "$c" "$base" kv-set.lua ;;
        esac
        cpu_snapshot >"$T/cpu1"
        n=$(tail -1 "$T/rows" | awk -v s="$SECS" '{ print $4 * s }')
        [ "${n:-0}" -gt 0 ] 2>/dev/null && cpu_profile "$label write c=$c" "$n" "$T/cpu0" "$T/cpu1"
    done
    for c in $CONNS; do
        case $label in
        etcd) wrk_round "$label" read-linearizable "$c" "$base" etcd-range.lua ;;
        *) wrk_round "$label" read-linearizable "$c" "$base" kv-get.lua ;;
        esac
    done
    for c in $CONNS; do
        case $label in
        etcd) wrk_round "$label" read-stale "$c" "$base" etcd-range.lua serializable ;;
        *) wrk_round "$label" read-stale "$c" "$base" kv-get.lua stale ;;
        esac
    done
}

. bench/hraftd.inc

bench_keyval_http() { # MODE
    say "keyval $1 cluster"
    start_keyval "$1" || { stop_pids; return 1; }
    http_rounds "keyval-$1" http://127.0.0.1:19101
    stop_pids
}

# ---------------------------------------------------------------- etcd
bench_etcd() {
    if ! command -v etcd >/dev/null 2>&1; then
        say "etcd not installed (make bench-deps): skipped"
        echo "etcd: not installed, skipped" >>"$T/notes"
        return 0
    fi
    say "etcd cluster ($(etcd --version 2>/dev/null | head -1))"
    local cluster="e0=http://127.0.0.1:19401,e1=http://127.0.0.1:19402,e2=http://127.0.0.1:19403"
    for i in 0 1 2; do
        etcd --name e$i --data-dir "$T/e$i" \
            --listen-client-urls http://127.0.0.1:1930$((i + 1)) \
            --advertise-client-urls http://127.0.0.1:1930$((i + 1)) \
            --listen-peer-urls http://127.0.0.1:1940$((i + 1)) \
            --initial-advertise-peer-urls http://127.0.0.1:1940$((i + 1)) \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token keyval-bench --log-level error >"$T/e$i.log" 2>&1 &
        pids="$pids $!"
    done
    local leader=""
    for _ in $(seq 100); do
        for i in 1 2 3; do
            if [ "$(curl -s -m 2 -X POST http://127.0.0.1:1930$i/v3/maintenance/status -d '{}' |
                jq -r '.leader == .header.member_id' 2>/dev/null)" = true ]; then
                leader=1930$i
                break 2
            fi
        done
        sleep 0.2
    done
    if [ -z "$leader" ]; then
        say "etcd: no leader"
        stop_pids
        return 1
    fi
    for i in $(seq 0 99); do
        k=$(printf 'r%d' "$i" | base64)
        curl -s -m 5 -X POST "http://127.0.0.1:$leader/v3/kv/put" \
            -d "{\"key\":\"$k\",\"value\":\"$(printf v%d "$i" | base64)\"}" >/dev/null
    done
    http_rounds etcd "http://127.0.0.1:$leader"
    stop_pids
}

# ---------------------------------------------------------------- floor
bench_floor() {
    say "lighttpd + trivial static CGI (floor)"
    mkdir -p "$T/floor/www"
    cat >"$T/floor/lighttpd.conf" <<EOF
server.modules = ( "mod_alias", "mod_cgi" )
server.bind = "127.0.0.1"
server.port = 19501
server.document-root = "$T/floor/www"
server.errorlog = "$T/floor/error.log"
alias.url = ( "/t" => "$BUILD/bench/triv-cgi" )
cgi.assign = ( "" => "" )
EOF
    lighttpd -D -f "$T/floor/lighttpd.conf" >"$T/floor.log" 2>&1 &
    pids="$pids $!"
    wait_until 10 curl -s -m 1 -o /dev/null http://127.0.0.1:19501/t || { say "floor: no lighttpd"; stop_pids; return 1; }
    for c in $CONNS; do wrk_round floor-cgi get "$c" http://127.0.0.1:19501 floor.lua; done
    stop_pids
}

# ---------------------------------------------------------------- direct
# kv-bench at the leader's raftd.sock; writes per fsync from raftd's
# status counters (fsyncs, entries_persisted) when it has them.
bench_direct() {
    say "kv-bench straight at raftd.sock (keyval cgi cluster)"
    start_keyval cgi || { stop_pids; return 1; }
    for op in ${BENCH_DIRECT_OPS:-set get stale}; do
        for c in $DCONNS; do
            local f0 e0 f1 e1
            f0=$(status_num k0 fsyncs); e0=$(status_num k0 entries_persisted)
            line=$("$KVB" -d "$T/k0" -op "$op" -c "$c" -t "$SECS" -keys 100 -prefix r -q)
            f1=$(status_num k0 fsyncs); e1=$(status_num k0 entries_persisted)
            wpf="-"
            if [ -n "$f0" ] && [ -n "$f1" ] && [ "$f1" -gt "$f0" ]; then
                wpf=$(awk -v e=$((e1 - e0)) -v f=$((f1 - f0)) 'BEGIN { printf "%.1f (%d/%d)", e / f, e, f }')
            fi
            echo "$op $c $line wpf=$wpf" >>"$T/direct"
            say "direct $op c=$c: $line; entries/fsync $wpf"
        done
    done
    stop_pids
}

# ---------------------------------------------------------------- size
# BENCH_KEYS keys of BENCH_VSIZE-byte values (keys "s<N>", ~7 bytes) into a
# 3-node cluster; raftd RSS (anonymous + file-backed: mmapped database pages
# would count as file) and raft.db bytes per key on the leader; snapshots
# the leader took; restart time.
bench_disk() {
    say "disk: fdatasync and single-row SQLite commits in $T"
    "$BUILD/bench/disk-probe" "$T" "$SECS" >"$T/disk" || { say "disk-probe failed"; : >"$T/disk"; }
    say "$(cat "$T/disk")"
}
disk_num() { # PROBE FIELD
    awk -v p="probe=$1" -v f="$2" '$1 == p { for (i = 2; i <= NF; i++) {
        split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$T/disk" 2>/dev/null
}
# The median round of each (system, workload, conns) in rows.all, by req/s,
# with the lowest and highest req/s of all rounds: the rows of the report.
median_rows() {
    sort -k1,1 -k2,2 -k3,3n -k4,4n "$T/rows.all" | awk '
        function flush() {
            if (!n) return
            split(row[int((n + 1) / 2)], f, " ")
            rest = ""; for (i = 7; i in f; i++) rest = rest " " f[i]
            print f[1], f[2], f[3], f[4], f[5], f[6], lo "-" hi, n rest
            n = 0 }
        { key = $1 " " $2 " " $3
          if (key != last) { flush(); last = key }
          n++; row[n] = $0; if (n == 1) lo = $4; hi = $4 }
        END { flush() }'
}
bench_floor_fcgi() {
    say "lighttpd + trivial FastCGI program, 8 resident (floor of the FastCGI mode)"
    mkdir -p "$T/ffloor/www"
    cat >"$T/ffloor/lighttpd.conf" <<EOF
server.modules = ( "mod_fastcgi" )
server.bind = "127.0.0.1"
server.port = 19502
server.document-root = "$T/ffloor/www"
server.errorlog = "$T/ffloor/error.log"
fastcgi.server = ( "/t" => (( "socket" => "$T/ffloor/fcgi.sock",
    "bin-path" => "$BUILD/bench/triv-fcgi", "check-local" => "disable", "max-procs" => 8 )) )
EOF
    lighttpd -D -f "$T/ffloor/lighttpd.conf" >"$T/ffloor.log" 2>&1 &
    pids="$pids $!"
    wait_until 10 curl -s -m 1 -o /dev/null http://127.0.0.1:19502/t || { say "floor-fcgi: no lighttpd"; stop_pids; return 1; }
    for c in $CONNS; do wrk_round floor-fcgi get "$c" http://127.0.0.1:19502 floor.lua; done
    stop_pids
}
bench_size() { # KEYS
    local KEYS=$1
    say "size: $KEYS keys of $VSIZE bytes"
    start_keyval cgi || { stop_pids; return 1; }
    local pid rss0 rss1 t0 t1 anon1
    pid=$(raftd_pid k0)
    rss0=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
    t0=$(date +%s.%N)
    fill=$("$KVB" -d "$T/k0" -op fill -keys "$KEYS" -batch 100 -vsize "$VSIZE" -prefix s -c 4 -t 1800 -q)
    t1=$(date +%s.%N)
    sleep 1
    rss1=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
    local hwm
    hwm=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status)
    anon1=$(awk '/RssAnon/ { print $2 }' /proc/$pid/status)
    local file1 nsnap
    file1=$(awk '/RssFile/ { print $2 }' /proc/$pid/status)
    nsnap=$(echo '{"op":"metrics"}' | socat -t 5 - UNIX-CONNECT:"$T/k0/raftd.sock" |
        jq -r '.metrics[] | select(.name == "keyval_snapshots_taken_total") | .value')
    sqlite3 "$T/k0/raft.db" 'PRAGMA wal_checkpoint(PASSIVE);' >/dev/null 2>&1
    local db wal kvcount
    db=$(stat -c %s "$T/k0/raft.db")
    wal=$(stat -c %s "$T/k0/raft.db-wal" 2>/dev/null || echo 0)
    snaps=$(du -cb "$T"/k0/snap-*.snap 2>/dev/null | tail -1 | awk '{ print $1 }')
    kvcount=$(status_num k0 applied_index)
    # Restart k1 (a follower holding the keys): time from start to
    # answering a linearizable read through its HTTP API.
    local k1pid
    k1pid=$(echo $pids | awk '{ print $2 }')
    kill -TERM "$k1pid"; wait "$k1pid" 2>/dev/null
    pids=$(echo $pids | awk '{ $2 = ""; print }')
    local r0 r1 rt
    r0=$(date +%s.%N)
    "$KEYVAL" -id k1 -haddr 127.0.0.1:19102 -raddr 127.0.0.1:19202 -join 127.0.0.1:19101 "$T/k1" \
        >>"$T/k1.log" 2>&1 &
    pids="$pids $!"
    wait_until 60 sh -c "curl -s -m 2 http://127.0.0.1:19102/key/s$((KEYS - 1)) | grep -q abcdefghijklmnop"
    r1=$(date +%s.%N)
    rt=$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", b - a }')
    local rpid rrss
    rpid=$(raftd_pid k1)
    rrss=$(awk '/VmRSS/ { print $2 }' /proc/$rpid/status 2>/dev/null)
    echo "| $KEYS | $(echo "$fill" | sed -n 's/.*keys_per_s=\([0-9.]*\).*/\1 keys\/s/p') | ${rss0} / ${rss1} / ${hwm} KiB | ${anon1:-?} + ${file1:-?} KiB | $db + $wal | $(( (db + wal) / KEYS )) | ${snaps:-0} B | ${nsnap:-?} | ${rt} s | ${rrss:-?} KiB |" >>"$T/size"
    echo "applied index after the fill of $KEYS keys: $kvcount; fill: \`$fill\`" >>"$T/size.notes"
    echo "$KEYS $rss1 $hwm $rt" >>"$T/size.kv"
    say "size: $(tail -1 "$T/size")"
    stop_pids
}

# ---------------------------------------------------------------- startup
# What one mod_cgi request pays before any work: fork+exec+exit+wait of
# the program (bench/spawn-time), static vs dynamic. key-get runs its
# whole request path up to connect(), which fails (no raftd): 503.
bench_startup() {
    say "CGI start-up cost"
    local progs="$BUILD/bench/triv-cgi $BUILD/bench/triv-cgi-dyn $BUILD/cgi-bin/key-get $BUILD/bench/key-get-dyn $BUILD/bench/key-get-dyn-all"
    : >"$T/startup.raw"
    for round in 1 2 3; do
        for p in $progs; do
            REQUEST_URI=/key/x KEYVAL_SOCKET=$T/none.sock "$BUILD/bench/spawn-time" 1000 "$p" >>"$T/startup.raw"
        done
    done
    {
        echo "| program | linking | us per fork+exec+exit (best of 3 x 1000) |"
        echo "| --- | --- | --- |"
        for p in $progs; do
            local how
            case $p in
            */triv-cgi) how="static" ;;
            */triv-cgi-dyn) how="dynamic (libc only)" ;;
            */cgi-bin/key-get) how="static: jansson + libfcgi + libc (the build now)" ;;
            */key-get-dyn) how="dynamic: jansson, libfcgi, libm (as-needed; the build before)" ;;
            */key-get-dyn-all) how="dynamic: every library of the Makefile (sqlite3, jansson, libfcgi, libm)" ;;
            esac
            best=$(awk -v p="$p:" '$1 == p { print $2 }' "$T/startup.raw" | sort -n | head -1)
            echo "| $(basename "$p") | $how | $best |"
        done
    } >"$T/startup"
    say "$(cat "$T/startup")"
}

# ---------------------------------------------------------------- report
# The issue's targets (issue 6), each against the figure of this run it is
# written against; "-" where this run did not measure it.
targets() {
    row_rps() { awk -v l="$1" -v w="$2" -v c="$3" '$1 == l && $2 == w && $3 == c { print $4 }' "$T/rows" 2>/dev/null; }
    direct_f() { awk -v o="$1" -v c="$2" -v f="$3" '$1 == o && $2 == c { for (i = 3; i <= NF; i++) {
        split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$T/direct" 2>/dev/null; }
    ratio_line() { # TEXT NUM DEN GOAL WHAT
        local r="-" met="-"
        if [ -n "$2" ] && [ -n "$3" ] && [ "$3" != 0 ]; then
            r=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')
            met=$(awk -v r="$r" -v g="$4" 'BEGIN { print (r >= g) ? "yes" : "no" }')
        fi
        echo "| $1 | $5: ${2:--} / ${3:--} = $r | $met |"
    }
    echo
    echo "## Targets of issue 6 on this run"
    echo
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    ratio_line "FastCGI writes, 32 conns: >= 2x etcd" "$(row_rps keyval-fastcgi write 32)" "$(row_rps etcd write 32)" 2 "req/s"
    ratio_line "FastCGI linearizable reads, 32 conns: >= 3x etcd linearizable" \
        "$(row_rps keyval-fastcgi read-linearizable 32)" "$(row_rps etcd read-linearizable 32)" 3 "req/s"
    ratio_line "FastCGI stale reads, 32 conns: >= 3x etcd serializable" \
        "$(row_rps keyval-fastcgi read-stale 32)" "$(row_rps etcd read-stale 32)" 3 "req/s"
    ratio_line "fast mode writes, 32 conns: >= 2x etcd (issue 15)" "$(row_rps keyval-fast write 32)" "$(row_rps etcd write 32)" 2 "req/s"
    ratio_line "fast mode linearizable reads, 32 conns: >= 3x etcd linearizable (issue 15)" \
        "$(row_rps keyval-fast read-linearizable 32)" "$(row_rps etcd read-linearizable 32)" 3 "req/s"
    ratio_line "(bound) trivial FastCGI floor, 32 conns, over etcd serializable" \
        "$(row_rps floor-fcgi get 32)" "$(row_rps etcd read-stale 32)" 3 "req/s"
    for c in 8 32; do
        for wl in write read-linearizable read-stale; do
            ratio_line "CGI $wl, $c conns: >= 0.9x the trivial-CGI floor" \
                "$(row_rps keyval-cgi "$wl" "$c")" "$(row_rps floor-cgi get "$c")" 0.9 "req/s"
        done
    done
    ratio_line "raftd direct writes, 64 clients: >= 5x single-row SQLite commits" \
        "$(direct_f set 64 ops_per_s)" "$(disk_num sqlite-commit ops_per_s)" 5 "ops/s"
    ratio_line "raftd direct linearizable reads, 64 clients: >= 50,000/s" "$(direct_f get 64 ops_per_s)" 50000 1 "ops/s over 50,000"
    ratio_line "single-client write p50 through raftd.sock: <= 3x fdatasync p50" \
        "$(disk_num fdatasync p50_us)" "$(direct_f set 1 p50_us)" 0.3333 "fdatasync p50 us / write p50 us (goal >= 0.33)"
    local rss hwm rt
    read -r _ rss hwm rt <<EOF2
$(awk '$1 == 1000000' "$T/size.kv" 2>/dev/null)
EOF2
    if [ -n "$rss" ]; then
        echo "| raftd RSS with 1,000,000 keys: <= 32 MiB | after the fill $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB | $([ "$hwm" -le 32768 ] && echo yes || echo no) |"
        echo "| restart to serving with 1,000,000 keys: <= 2 s | $rt s | $(awk -v t="$rt" 'BEGIN { print (t <= 2) ? "yes" : "no" }') |"
    else
        echo "| raftd RSS and restart with 1,000,000 keys | - (BENCH_KEYS did not include 1000000) | - |"
    fi
}
report() {
    {
        echo "# keyval benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "Loopback, 3-node clusters, durable writes (keyval: SQLite WAL synchronous=FULL;"
        echo "etcd: default fsync). wrk ${SECS} s per round (1 thread at 1 connection, else 2),"
        echo "requests to the leader. Host: $(nproc) cores, $(uname -r); load average at start:"
        echo "$LOAD0. Other engineers' jobs share these cores, so figures are noisy."
        echo
        echo "## HTTP (wrk)"
        echo
        echo "Ratio: req/s over etcd's on this run for the same workload and connections"
        echo "(keyval write vs etcd put, linearizable GET vs etcd range, stale GET vs etcd"
        echo "serializable range). Ratio to hraftd: keyval's req/s over hraftd's (the seed)"
        echo "for writes; both keyval read levels against hraftd's GET, which reads the"
        echo "node's in-memory map (a stale read; its row is \"read-stale\")."
        echo
        echo "| system | workload | conns | req/s (median round) | p50 ms | p99 ms | req/s range (rounds) | non-2xx | ratio to etcd | ratio to hraftd |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        while read -r label wl c rps p50 p99 range nr bad; do
            ratio="-"
            e=$(awk -v w="$wl" -v c="$c" '$1 == "etcd" && $2 == w && $3 == c { print $4 }' "$T/rows")
            [ "$label" = floor-fcgi ] && e=$(awk -v c="$c" '$1 == "etcd" && $2 == "read-stale" && $3 == c { print $4 }' "$T/rows")
            [ "$label" = floor-cgi ] && e=$(awk -v c="$c" '$1 == "etcd" && $2 == "write" && $3 == c { print $4 }' "$T/rows")
            [ -n "$e" ] && [ "$e" != 0 ] && ratio=$(awk -v a="$rps" -v b="$e" 'BEGIN { printf "%.2f", a / b }')
            echo "| $label | $wl | $c | $rps | $p50 | $p99 | $range ($nr) | $bad | $ratio | $(ratio_to_hraftd "$label" "$wl" "$c" "$rps") |"
        done <"$T/rows"
        echo
        echo "floor-cgi: lighttpd mod_cgi running a static 'Status: 200' program (ratio to etcd writes)."
        echo "floor-fcgi: lighttpd mod_fastcgi with 8 resident programs answering 'Status: 200'"
        echo "(libfcgi, as key-get; ratio to etcd serializable reads)."
        [ -f "$T/notes" ] && sed 's/^/- /' "$T/notes"
        scale_report
        if [ -s "$T/disk" ]; then
            echo
            echo "## Disk (bench/disk-probe in the benchmark's directory, ${SECS} s each)"
            echo
            echo "| probe | ops/s | p50 us | p99 us |"
            echo "| --- | --- | --- | --- |"
            for pr in fdatasync sqlite-commit; do
                echo "| $pr | $(disk_num $pr ops_per_s) | $(disk_num $pr p50_us) | $(disk_num $pr p99_us) |"
            done
            echo
            echo "fdatasync: append 100 bytes + fdatasync; sqlite-commit: one 100-byte row per"
            echo "transaction, WAL, synchronous=FULL (keyval's settings)."
        fi
        if [ -f "$T/direct" ]; then
            echo
            echo "## raftd.sock direct (kv-bench, keyval 3-node cluster, leader's socket)"
            echo
            echo "| op | conns | ops/s | p50 us | p99 us | errors | entries per fsync (entries/fsyncs) |"
            echo "| --- | --- | --- | --- | --- | --- | --- |"
            while read -r op c line; do
                ops=$(echo "$line" | sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p')
                p50=$(echo "$line" | sed -n 's/.*p50_us=\([0-9]*\).*/\1/p')
                p99=$(echo "$line" | sed -n 's/.*p99_us=\([0-9]*\).*/\1/p')
                er=$(echo "$line" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
                wpf=$(echo "$line" | sed -n 's/.*wpf=\(.*\)$/\1/p')
                echo "| $op | $c | $ops | $p50 | $p99 | $er | $wpf |"
            done <"$T/direct"
        fi
        if [ -f "$T/cpu" ]; then
            echo
            echo "## CPU per HTTP write (ms of CPU per request, by program, from /proc)"
            echo
            echo "cgi = reaped mod_cgi children (key-set); fastcgi programs show under their own"
            echo "names; raftd, socat and lighttpd are the sum over the three nodes (hraftd: its"
            echo "three processes)."
            echo
            echo "Mean over the rounds."
            echo
            echo "| round | program | CPU ms per request |"
            echo "| --- | --- | --- |"
            awk '{ r = $1 " " $2 " " $3 " | " $4; if (!(r in sum)) order[++k] = r; sum[r] += $5; cnt[r]++ }
                END { for (i = 1; i <= k; i++) printf "| %s | %.3f |\n", order[i], sum[order[i]] / cnt[order[i]] }' "$T/cpu"
        fi
        if [ -f "$T/startup" ]; then
            echo
            echo "## CGI start-up"
            echo
            cat "$T/startup"
        fi
        if [ -f "$T/profile" ]; then
            echo
            echo "## Profiles (perf record -a -g, 8 s inside each 10 s load)"
            echo
            cat "$T/profile"
        fi
        if [ -f "$T/size" ]; then
            echo
            echo "## Size and restart"
            echo
            echo "Values of $VSIZE bytes."
            echo
            echo "| keys | fill (kv-bench fill, 100 keys/request, 4 conns) | leader raftd RSS before / after / peak | leader RssAnon + RssFile after | raft.db + wal bytes | bytes per key | snapshot files | snapshots taken (leader) | restart to first read (follower) | restarted raftd RSS |"
            echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            cat "$T/size"
            echo
            sed 's/^/- /' "$T/size.notes"
        fi
        targets
        hraftd_targets
    } >"$OUT"
    say "wrote $OUT"
}

# perf record -a -g over the middle of a load; prints where the CPU went:
# by program and library, then the hottest symbols of raftd.
perf_window() { # LABEL SECONDS-OF-LOAD LOAD-COMMAND...
    local label=$1 secs=$2; shift 2
    "$@" >/dev/null 2>&1 &
    local lp=$!
    sleep 1
    perf record -a -g -o "$T/perf.data" -- sleep $((secs - 2)) >/dev/null 2>&1
    wait "$lp"
    {
        echo "### $label"
        echo
        echo "CPU samples of the whole machine by program and library (top 14):"
        echo
        echo '```'
        perf report -i "$T/perf.data" --no-children --sort comm,dso -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -14
        echo '```'
        echo
        echo "raftd's hottest symbols (top 14, share of all samples):"
        echo
        echo '```'
        perf report -i "$T/perf.data" --no-children --comm raftd --sort dso,sym -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -14
        echo '```'
        echo
    } >>"$T/profile"
}
bench_profile() {
    if ! command -v perf >/dev/null 2>&1 || ! perf record -o /dev/null -a -- true >/dev/null 2>&1; then
        say "profile: perf missing or not allowed: skipped"
        echo "profile: perf missing or not allowed, skipped" >>"$T/notes"
        return 0
    fi
    say "profile: perf -a during FastCGI writes, stale reads and direct writes"
    start_keyval fastcgi || { stop_pids; return 1; }
    perf_window "FastCGI writes, 32 connections (wrk)" 10 \
        wrk -t 2 -c 32 -d 10s -s "$WRKDIR/kv-set.lua" http://127.0.0.1:19101
    perf_window "FastCGI linearizable reads, 32 connections (wrk)" 10 \
        wrk -t 2 -c 32 -d 10s -s "$WRKDIR/kv-get.lua" http://127.0.0.1:19101
    perf_window "FastCGI stale reads, 32 connections (wrk)" 10 \
        wrk -t 2 -c 32 -d 10s -s "$WRKDIR/kv-get.lua" http://127.0.0.1:19101 -- stale
    perf_window "raftd direct writes, 64 clients (kv-bench)" 10 \
        "$KVB" -d "$T/k0" -op set -c 64 -t 10 -q
    perf_window "raftd direct writes, 1 client (kv-bench)" 10 \
        "$KVB" -d "$T/k0" -op set -c 1 -t 10 -q
    stop_pids
}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$T/rows"
for part in $PARTS; do
    case $part in
    http)
        for r in $(seq "$ROUNDS"); do
            say "http round $r of $ROUNDS"
            for s in $SYSTEMS; do
                case $s in
                cgi|fastcgi|fast) bench_keyval_http "$s" ;;
                etcd) bench_etcd ;;
                hraftd) bench_hraftd ;;
                floor) bench_floor ;;
                floor-fcgi) bench_floor_fcgi ;;
                esac
            done
        done
        median_rows >"$T/rows" ;;
    scale-http) bench_scale ;;
    direct) bench_direct ;;
    size) for k in $KEYS_LIST; do bench_size "$k"; done ;;
    disk) bench_disk ;;
    startup) bench_startup ;;
    profile) bench_profile ;;
    esac
done
report
cat "$OUT"
