#!/bin/bash
# Fault-injection run: a real keyval cluster on loopback, concurrent HTTP
# clients recording a history (kvload), nemeses chosen at random from a
# seed, each with its heal, then final reads, a convergence check and the
# history checker (lincheck: per-key linearizability, lost writes, stale
# reads). Prints ok/FAIL lines and "N passed, M failed".
#
#   tests/fault/jepsen.sh [-n NODES] [-d SECONDS] [-s SEED] [-c CLIENTS]
#                         [-p PORTBASE] [-N "NEMESES"] [-H MIN-MAX] [-r RAFTD]
#                         [-m FAULT_MODE] [-b CHECK_BUDGET_S] [-M HTTP_MODE] [-x]
#
# Nodes n0.. use HTTP PORTBASE+i and Raft PORTBASE+500+i on 127.0.0.1
# (default PORTBASE 15000; keep PORTBASE within 15000-16400). NEMESES
# (default all): kill kill-leader kill-raftd kill-all pause pause-leader part-majority
# part-leader part-oneway part-bridge member transfer disk.
# -H: seconds a fault is held (default 2-6). -r: the raftd program run by
# keyval (through a wrapper that adds -peer-connect "faultlink SRC %a").
# -m: KEYVAL_FAULT_MODE for raftd builds with -DKEYVAL_FAULT_MODES.
# -M: keyval's HTTP mode for every node: cgi (default), fastcgi or fast.
# -L: count 503 "raftd unavailable" after the request reached raftd as an
#     unknown outcome (a known bug: tests/fault/ambiguous-503.sh).
# Env: BUILD (default build), KEEP=1 keeps the run directory.

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
NODES=3 DURATION=60 SEED=$(( $(date +%s) % 100000 )) CLIENTS=6 PORTBASE=15000
NEMESES="kill kill-leader kill-raftd kill-all pause pause-leader part-majority part-leader part-oneway part-bridge member transfer disk"
HOLD=2-6 RAFTD=$BUILD/bin/raftd MODE="" BUDGET=30 LENIENT="" HTTP_MODE=cgi
while getopts n:d:s:c:p:N:H:r:m:b:M:xL o; do
    case $o in
    n) NODES=$OPTARG ;; d) DURATION=$OPTARG ;; s) SEED=$OPTARG ;;
    c) CLIENTS=$OPTARG ;; p) PORTBASE=$OPTARG ;; N) NEMESES=$OPTARG ;;
    H) HOLD=$OPTARG ;; r) RAFTD=$OPTARG ;; m) MODE=$OPTARG ;; b) BUDGET=$OPTARG ;;
    M) HTTP_MODE=$OPTARG ;; x) ;; L) LENIENT=-L ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done
case $RAFTD in /*) ;; *) RAFTD=$(pwd)/$RAFTD ;; esac
case $HTTP_MODE in
cgi) MODE_FLAG="" ;; fastcgi) MODE_FLAG=-fastcgi ;; fast) MODE_FLAG=-fast ;;
*) echo "-M: cgi, fastcgi or fast" >&2; exit 2 ;;
esac
KEYVAL=$BUILD/bin/keyval
LINK=$BUILD/tests/fault/faultlink
LOAD=$BUILD/tests/fault/kvload
CHECK=$BUILD/tests/fault/lincheck
passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
summary() { echo "$passed passed, $failed failed"; }
for f in "$KEYVAL" "$RAFTD" "$LINK" "$LOAD" "$CHECK"; do
    [ -x "$f" ] || { bad setup "$f not built (make)"; summary; exit 1; }
done
for tool in curl jq socat; do
    command -v $tool >/dev/null || { bad setup "$tool not installed"; summary; exit 1; }
done
if [ "$PORTBASE" -lt 15000 ] || [ $((PORTBASE + 599)) -gt 16999 ]; then
    bad setup "PORTBASE $PORTBASE outside 15000-16400"; summary; exit 1
fi
exec 9>"/tmp/keyval-fault-$PORTBASE.lock"
flock -w 600 9 || { bad setup "ports $PORTBASE+ busy for 600 s"; summary; exit 1; }

T=$(mktemp -d /tmp/keyval-fault.XXXXXX)
mkdir -p "$T/ctl" "$T/hist"
export KV_FAULT_DIR=$T/ctl
[ -n "$MODE" ] && export KEYVAL_FAULT_MODE=$MODE
cat >"$T/raftd-wrap" <<EOF
#!/bin/sh
# raftd with every outbound peer link through faultlink (SRC = our Raft port)
src=0 prev=
for a in "\$@"; do [ "\$prev" = -raddr ] && src=\${a##*:}; prev=\$a; done
exec "$RAFTD" -peer-connect "$LINK \$src %a" "\$@"
EOF
chmod 755 "$T/raftd-wrap"
export KEYVAL_RAFTD=$T/raftd-wrap

RANDOM=$SEED
now_ns() { "$LOAD" -now; }
T_START=$(now_ns)
event() { # text: timeline (monotonic ns) and stdout (seconds since start)
    local t; t=$(now_ns)
    echo "$t $*" >>"$T/timeline"
    printf '  [%7.2f] %s\n' "$(echo "($t - $T_START) / 1000000000" | bc -l)" "$*"
}
rnd() { R=$((RANDOM % $1)); }

# ---------------------------------------------------------------- nodes
# state_i: up, down (killed / stopped by disk full), paused, gone (removed)
declare -a state pid args mounted
LOAD_PID=""
hport() { echo $((PORTBASE + $1)); }
rport() { echo $((PORTBASE + 500 + $1)); }
NEXT=0

cleanup() {
    trap - EXIT INT TERM
    [ -n "$LOAD_PID" ] && [ ! -e "$T/kvload.rc" ] && kill "$(cat "$T/kvload.pid" 2>/dev/null)" "$LOAD_PID" 2>/dev/null
    for i in "${!pid[@]}"; do
        local p=${pid[$i]}
        [ -n "$p" ] || continue
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill -CONT "$c" 2>/dev/null; done
        kill -TERM "$p" 2>/dev/null
    done
    for _ in $(seq 50); do
        local alive=""
        for p in "${pid[@]}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.2
    done
    for p in "${pid[@]}"; do
        [ -n "$p" ] || continue
        if kill -0 "$p" 2>/dev/null; then
            for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill -9 "$c" 2>/dev/null; done
            kill -9 "$p" 2>/dev/null
        fi
    done
    [ -n "$LOAD_PID" ] && wait "$LOAD_PID" 2>/dev/null
    sleep 0.3
    for i in "${!mounted[@]}"; do
        [ "${mounted[$i]}" = 1 ] && umount -l "$T/n$i" 2>/dev/null
    done
    if [ -n "$KEEP" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'bad interrupted "signal"; summary; exit 1' INT TERM

launch() { # i: start node i with its command line in args[i]
    local i=$1
    # shellcheck disable=SC2086
    "$KEYVAL" ${args[$i]} >>"$T/n$i.log" 2>&1 &
    pid[$i]=$!
    state[$i]=up
}
new_node() { # i [join_port]
    local i=$1
    args[$i]="$MODE_FLAG -id n$i -haddr 127.0.0.1:$(hport "$i") -raddr 127.0.0.1:$(rport "$i")"
    [ -n "$2" ] && args[$i]="${args[$i]} -join 127.0.0.1:$2"
    args[$i]="${args[$i]} $T/n$i"
    launch "$i"
}
raftd_of() { ps -o pid=,comm= --ppid "${pid[$1]}" 2>/dev/null | awk '$2=="raftd"{print $1}'; }
kill_node() { _kill_node "$@" 2>/dev/null; } # no "Killed" job notices
_kill_node() { # i: kill -9 keyval and all it started
    local i=$1 p=${pid[$1]} kids
    kids=$(ps -o pid= --ppid "$p" 2>/dev/null)
    kill -9 "$p" $kids 2>/dev/null
    for _ in $(seq 50); do
        local alive=""
        for k in $p $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    { wait "$p"; } 2>/dev/null
    state[$i]=down
}
stop_node() { # i: SIGTERM, then -9 after 10 s
    local i=$1 p=${pid[$1]}
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill_node "$i"
    wait "$p" 2>/dev/null
}
members() { # indexes of nodes in the cluster (not removed)
    for i in "${!state[@]}"; do [ "${state[$i]}" != gone ] && echo "$i"; done
}
live() { for i in "${!state[@]}"; do [ "${state[$i]}" = up ] && echo "$i"; done; }
write_ports() {
    local l=""
    for i in $(members); do l="$l $(hport "$i")"; done
    echo "$l" >"$T/ports.tmp" && mv "$T/ports.tmp" "$T/ports"
}
status() { curl -s -m 2 "http://127.0.0.1:$(hport "$1")/status"; }
leader() { # index of the leader as seen by a live node, or nothing
    for i in $(live); do
        local h; h=$(status "$i" | jq -r '.leader_haddr // empty' 2>/dev/null)
        case $h in *:*) local p=${h##*:}; echo $((p - PORTBASE)); return 0 ;; esac
    done
    return 1
}
wait_leader() { # seconds
    for _ in $(seq $(($1 * 5))); do
        local l; l=$(leader) && [ -n "$l" ] && [ "${state[$l]}" = up ] &&
            [ "$(status "$l" | jq -r .state 2>/dev/null)" = leader ] && return 0
        sleep 0.2
    done
    return 1
}
voters() { status "$1" | jq '[.nodes[] | select(.voter)] | length' 2>/dev/null; }

# ---------------------------------------------------------------- start
echo "fault run: seed $SEED, $NODES nodes, $DURATION s, $CLIENTS clients, HTTP mode $HTTP_MODE, nemeses: $NEMESES${MODE:+, raftd fault mode $MODE}"
for i in $(seq 0 $((NODES - 1))); do
    if ! ss -ltnH "sport = :$(hport "$i")" | grep -q . && ! ss -ltnH "sport = :$(rport "$i")" | grep -q .; then :; else
        bad setup "port $(hport "$i") or $(rport "$i") in use"; summary; exit 1
    fi
    mkdir -p "$T/n$i"
    # a small tmpfs per node for the disk-full nemesis (root only)
    if [[ " $NEMESES " == *" disk "* ]] && [ "$(id -u)" = 0 ] &&
        mount -t tmpfs -o size=48m,mode=0700 tmpfs "$T/n$i" 2>/dev/null; then
        mounted[$i]=1
    fi
done
new_node 0
NEXT=$NODES
if ! wait_leader 20; then bad cluster_start "n0 did not lead in 20 s"; summary; exit 1; fi
for i in $(seq 1 $((NODES - 1))); do new_node "$i" "$(hport 0)"; done
for _ in $(seq 200); do [ "$(voters 0)" = "$NODES" ] && break; sleep 0.2; done
if [ "$(voters 0)" = "$NODES" ]; then ok "cluster_start_$NODES"; else
    bad cluster_start "$(status 0)"; summary; exit 1
fi
write_ports

# kvload under a subshell that forks nothing else, which keeps its exit
# status in kvload.rc: this shell forks many processes, and on a host
# whose PIDs wrap quickly (pid_max 32768, a CGI process per request) a
# new child can take the dead kvload's PID, after which bash's "wait"
# no longer knows it (127) and "kill -0" finds somebody else.
(
    "$LOAD" $LENIENT -o "$T/hist" -P "$T/ports" -c "$CLIENTS" -d "$DURATION" -s "$SEED" -t 12 \
        -k "s$SEED-k" >"$T/kvload.out" 2>&1 &
    echo $! >"$T/kvload.pid"
    wait $!
    echo $? >"$T/kvload.rc"
) &
LOAD_PID=$!
event "workload started: $CLIENTS clients for $DURATION s"

# ---------------------------------------------------------------- nemeses
declare -A count
hmin=${HOLD%-*} hmax=${HOLD#*-}
hold() { rnd $((hmax - hmin + 1)); sleep $((hmin + R)); }
cut() { : >"$T/ctl/cut-$(rport "$1")-$(rport "$2")"; } # directed link i -> j
heal_net() { rm -f "$T"/ctl/cut-*; }
pick_live() { local a=($(live)); [ ${#a[@]} -gt 0 ] || return 1; rnd ${#a[@]}; P=${a[$R]}; }
pick_follower() { # P: a live node that is not the leader L
    local a=() i
    for i in $(live); do [ "$i" != "$L" ] && a+=("$i"); done
    [ ${#a[@]} -gt 0 ] || return 1
    rnd ${#a[@]}; P=${a[$R]}
}
disk_unclean=0 disk_events=0

nemesis() {
    local kind=$1 L P m i j
    L=$(leader)
    case $kind in
    kill | kill-leader)
        if [ $kind = kill-leader ] && [ -n "$L" ] && [ "${state[$L]}" = up ]; then P=$L; else pick_live || return; fi
        event "$kind: kill -9 n$P${L:+ (leader n$L)}"
        kill_node "$P"; hold
        launch "$P"; event "heal: restart n$P" ;;
    kill-raftd) # only the daemon crashes: in-flight CGI requests lose their raftd
        pick_live || return
        local rp; rp=$(raftd_of "$P"); [ -n "$rp" ] || return
        event "kill-raftd: kill -9 raftd of n$P (pid $rp)${L:+ (leader n$L)}"
        kill -9 "$rp"
        for _ in $(seq 50); do kill -0 "${pid[$P]}" 2>/dev/null || break; sleep 0.2; done
        kill_node "$P"; hold
        launch "$P"; event "heal: restart n$P" ;;
    kill-all) # durability: every node crashes right after acknowledgements
        local all=($(live)); [ ${#all[@]} -gt 0 ] || return
        event "kill-all: kill -9 {${all[*]/#/n}} at once${L:+ (leader n$L)}"
        for i in "${all[@]}"; do kill -9 "${pid[$i]}" $(ps -o pid= --ppid "${pid[$i]}" 2>/dev/null) 2>/dev/null; done
        for i in "${all[@]}"; do kill_node "$i"; done
        hold
        for i in "${all[@]}"; do launch "$i"; done
        event "heal: restart {${all[*]/#/n}}" ;;
    pause | pause-leader)
        if [ $kind = pause-leader ] && [ -n "$L" ] && [ "${state[$L]}" = up ]; then P=$L; else pick_live || return; fi
        local rp; rp=$(raftd_of "$P"); [ -n "$rp" ] || return
        event "$kind: SIGSTOP raftd of n$P (pid $rp)${L:+ (leader n$L)}"
        kill -STOP "$rp"; state[$P]=paused; hold
        kill -CONT "$rp"; state[$P]=up; event "heal: SIGCONT n$P" ;;
    part-majority | part-leader | part-oneway | part-bridge)
        local ms=($(members)) minority=() majority=()
        [ ${#ms[@]} -ge 3 ] || return
        for i in $(seq $((${#ms[@]} - 1)) -1 1); do # shuffle
            rnd $((i + 1)); local t=${ms[$i]}; ms[$i]=${ms[$R]}; ms[$R]=$t
        done
        if [ $kind = part-leader ] || [ $kind = part-oneway ]; then
            [ -n "$L" ] || return
            minority=("$L"); for i in "${ms[@]}"; do [ "$i" != "$L" ] && majority+=("$i"); done
        else
            local k=$((${#ms[@]} / 2))
            minority=("${ms[@]:0:$k}"); majority=("${ms[@]:$k}")
        fi
        if [ $kind = part-bridge ]; then
            # the first of the majority is a bridge that sees everyone
            local bridge=${majority[0]}; majority=("${majority[@]:1}")
            for i in "${minority[@]}"; do for j in "${majority[@]}"; do cut "$i" "$j"; cut "$j" "$i"; done; done
            event "part-bridge: {${minority[*]/#/n}} | {${majority[*]/#/n}} cut, n$bridge bridges both${L:+ (leader n$L)}"
        elif [ $kind = part-oneway ]; then
            for j in "${majority[@]}"; do cut "$L" "$j"; done
            event "part-oneway: leader n$L cannot send to {${majority[*]/#/n}} (still hears them)"
        else
            for i in "${minority[@]}"; do for j in "${majority[@]}"; do cut "$i" "$j"; cut "$j" "$i"; done; done
            event "$kind: {${minority[*]/#/n}} | {${majority[*]/#/n}}${L:+ (leader n$L)}"
        fi
        hold; heal_net; event "heal: network" ;;
    member)
        [ -n "$L" ] || return
        pick_follower || return
        [ ${#state[@]} -lt 90 ] || return
        event "member: POST /remove n$P (via leader n$L)"
        local code
        code=$(curl -s -m 15 -o "$T/remove.out" -w '%{http_code}' -XPOST \
            "http://127.0.0.1:$(hport "$L")/remove" -d "{\"id\":\"n$P\"}")
        if [ "$code" != 200 ]; then event "member: remove n$P answered $code $(cat "$T/remove.out")"; return; fi
        stop_node "$P"; state[$P]=gone; write_ports
        event "member: n$P removed and stopped"
        hold
        m=$NEXT; NEXT=$((NEXT + 1)); mkdir -p "$T/n$m"
        L=$(leader); [ -n "$L" ] || L=$(live | head -1)
        new_node "$m" "$(hport "$L")"
        event "heal: fresh node n$m joins via n$L"
        for _ in $(seq 100); do
            status "$m" | jq -e '.nodes | length > 0' >/dev/null 2>&1 && [ "$(voters "$L")" = "$NODES" ] && break
            sleep 0.2
        done
        write_ports; event "member: n$m in the cluster ($(voters "$L") voters)" ;;
    transfer)
        [ -n "$L" ] || return
        pick_follower || return
        local rep
        rep=$(echo "{\"op\":\"transfer\",\"id\":\"n$P\"}" | timeout 10 socat -t 10 - UNIX-CONNECT:"$T/n$L/raftd.sock" 2>&1)
        event "transfer: leader n$L -> n$P: $rep" ;;
    disk)
        local cands=()
        for i in $(live); do [ "${mounted[$i]}" = 1 ] && cands+=("$i"); done
        [ ${#cands[@]} -gt 0 ] || return
        rnd ${#cands[@]}; P=${cands[$R]}
        disk_events=$((disk_events + 1))
        event "disk: filling the tmpfs of n$P"
        dd if=/dev/zero of="$T/n$P/filler" bs=1M >/dev/null 2>&1
        local stopped=""
        for _ in $(seq 75); do kill -0 "${pid[$P]}" 2>/dev/null || { stopped=1; break; }; sleep 0.2; done
        if [ -n "$stopped" ]; then
            wait "${pid[$P]}"; local rc=$?
            state[$P]=down
            event "disk: n$P stopped (keyval exit $rc): $(grep -i -m1 -E 'full|space|disk|storage|SQLITE' "$T/n$P.log" | tail -c 200)"
            if [ $rc -gt 128 ] || grep -q -E 'killed by signal (6|7|11)|Segmentation|Aborted|AddressSanitizer' "$T/n$P.log"; then
                disk_unclean=$((disk_unclean + 1)); event "disk: n$P did not stop cleanly"
            fi
        else
            event "disk: n$P still running after 15 s with a full disk"
        fi
        hold
        rm -f "$T/n$P/filler"
        [ "${state[$P]}" = down ] && { launch "$P"; event "heal: disk freed, restart n$P"; } ||
            event "heal: disk freed on n$P" ;;
    esac
    count[$kind]=$((${count[$kind]:-0} + 1))
}

kinds=($NEMESES)
while [ ! -e "$T/kvload.rc" ]; do
    rnd 3; sleep $((1 + R))
    [ -e "$T/kvload.rc" ] && break
    rnd ${#kinds[@]}
    nemesis "${kinds[$R]}" 2>>"$T/nemesis.err" # job notices ("Killed") go there
done
wait "$LOAD_PID" 2>/dev/null
lrc=$(cat "$T/kvload.rc" 2>/dev/null)
LOAD_PID=""
event "workload finished (exit $lrc): $(tail -1 "$T/kvload.out")"
if [ "$lrc" = 0 ]; then ok workload; else bad workload "kvload exit $lrc: $(tail -3 "$T/kvload.out")"; fi

# ---------------------------------------------------------------- heal all
heal_net
for i in "${!state[@]}"; do
    case ${state[$i]} in
    paused) kill -CONT "$(raftd_of "$i")"; state[$i]=up ;;
    down) rm -f "$T/n$i/filler"; launch "$i" ;;
    up) kill -0 "${pid[$i]}" 2>/dev/null || { event "n$i had exited: $(tail -2 "$T/n$i.log" | tr '\n' ' ')"; launch "$i"; } ;;
    esac
done
event "healed everything; quiet period"
if wait_leader 30; then ok healed_cluster_has_leader; else bad healed_cluster_has_leader "no leader 30 s after healing"; fi
sleep 3

if "$LOAD" -F -o "$T/hist" -P "$T/ports" -t 12 -k "s$SEED-k" >"$T/final.out" 2>&1; then
    ok final_reads
else
    bad final_reads "$(tail -3 "$T/final.out")"
fi

# Convergence: every member's own table (stale listing) is the same.
table() { # i: all keys of this run, from node i's local copy
    local after="" out="" page
    for _ in $(seq 100); do
        page=$(curl -s -m 5 "http://127.0.0.1:$(hport "$1")/key?prefix=s$SEED-k&limit=1000&level=stale${after:+&after=$after}") || return 1
        echo "$page" | jq -e .items >/dev/null 2>&1 || return 1
        echo "$page" | jq -r '.items[] | "\(.key) \(.value) \(.index)"'
        [ "$(echo "$page" | jq -r .more)" = true ] || return 0
        after=$(echo "$page" | jq -r '.items[-1].key')
    done
}
converged=""
for _ in $(seq 30); do
    first="" same=1
    for i in $(members); do
        table "$i" >"$T/table-n$i" || { same=0; break; }
        if [ -z "$first" ]; then first=$i; elif ! cmp -s "$T/table-n$first" "$T/table-n$i"; then same=0; fi
    done
    [ $same = 1 ] && { converged=1; break; }
    sleep 1
done
if [ -n "$converged" ]; then
    ok "convergence_$(wc -l <"$T/table-n$first")_keys_on_$(members | wc -l)_nodes"
else
    bad convergence "tables differ after 30 s: $(for i in $(members); do echo -n "n$i:$(md5sum <"$T/table-n$i" | cut -c1-8)/$(wc -l <"$T/table-n$i") "; done)"
    for i in $(members); do [ "$i" != "$first" ] && diff "$T/table-n$first" "$T/table-n$i" | head -5; done
fi

if [ "$disk_events" -gt 0 ]; then
    if [ "$disk_unclean" = 0 ]; then ok "disk_full_stops_cleanly_x$disk_events"; else
        bad disk_full_stops_cleanly "$disk_unclean of $disk_events disk-full nodes crashed"
    fi
fi

"$CHECK" -b "$BUDGET" -T "$T/timeline" "$T/hist" >"$T/check.out" 2>&1
crc=$?
cat "$T/check.out"
nem="" total=0
for k in "${!count[@]}"; do nem="$nem $k=${count[$k]}"; total=$((total + count[$k])); done
echo "faults injected: $total:$nem"
case $crc in
0) ok "linearizable_no_lost_writes_seed_$SEED" ;;
2) bad "history_unchecked_seed_$SEED" "some keys could not be checked in budget (reported unknown, not passed)" ;;
*) bad "linearizable_seed_$SEED" "checker exit $crc; replay: tests/fault/jepsen.sh -n $NODES -d $DURATION -s $SEED -c $CLIENTS -N \"$NEMESES\"${MODE:+ -m $MODE}${LENIENT:+ -L}"
   echo "nemesis timeline (seconds since start):"
   while read -r t rest; do printf '  [%7.2f] %s\n' "$(echo "($t - $T_START) / 1000000000" | bc -l)" "$rest"; done <"$T/timeline"
   for i in "${!state[@]}"; do echo "--- n$i.log (last lines)"; tail -5 "$T/n$i.log"; done ;;
esac
summary
[ "$failed" = 0 ]
