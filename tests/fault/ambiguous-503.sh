#!/bin/bash
# Reproduces: a write answered 503 {"error":"raftd unavailable: ... closed the
# connection without a reply"} - no "outcome":"unknown" - can be committed.
# Three nodes on 127.0.0.1 (HTTP 16700-16702, Raft 16710-16712); four
# sequential writers PUT unique values to the follower b; b's raftd is killed
# with SIGKILL; each writer's last answer is compared with the key's final
# value read from the leader. Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
for port in 16700 16701 16702 16710 16711 16712; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "FAIL setup: port $port in use"; echo "0 passed, 1 failed"; exit 1
    fi
done
T=$(mktemp -d /tmp/kv-ambig503.XXXXXX)
pids=() passed=0 failed=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$KEEP" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
"$BUILD/bin/keyval" -id a -haddr 127.0.0.1:16700 -raddr 127.0.0.1:16710 "$T/a" >"$T/a.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -s -m 1 127.0.0.1:16700/status | grep -q '"leader"' && break; sleep 0.2; done
"$BUILD/bin/keyval" -id b -haddr 127.0.0.1:16701 -raddr 127.0.0.1:16711 -join 127.0.0.1:16700 "$T/b" >"$T/b.log" 2>&1 & pids+=($!)
"$BUILD/bin/keyval" -id c -haddr 127.0.0.1:16702 -raddr 127.0.0.1:16712 -join 127.0.0.1:16700 "$T/c" >"$T/c.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
    [ "$(curl -s -m 1 127.0.0.1:16700/status | jq '.nodes | length' 2>/dev/null)" = 3 ] && break; sleep 0.2
done
for _ in $(seq 50); do curl -s -m 1 -o /dev/null 127.0.0.1:16701/status && break; sleep 0.2; done
writers=()
for w in 1 2 3 4; do
    ( for i in $(seq 1 400); do
          out=$(curl -s -m 20 -w ' %{http_code}' -XPUT 127.0.0.1:16701/key/k$w --data-binary v$i)
          echo "v$i $out"
          case $out in *\ 200) ;; *) break ;; esac
      done >"$T/w$w.out" ) &
    writers+=($!)
done
sleep 1.5
rp=$(ps -o pid=,comm= --ppid "${pids[1]}" | awk '$2=="raftd"{print $1}')
kill -9 "$rp"
wait "${writers[@]}"
bad=0
for w in 1 2 3 4; do
    last=$(tail -n 1 "$T/w$w.out")
    final=$(curl -s -m 10 127.0.0.1:16700/key/k$w)
    echo "writer $w: last answer: $last | final value on the leader: $final"
    v=${last%% *}
    case $last in
    *'"outcome":"unknown"'*|*' 000') ;;   # honest: fate unknown / no answer
    *' 200') ;;
    *) if [ "$final" = "{\"k$w\":\"$v\"}" ]; then bad=$((bad + 1)); fi ;;
    esac
done
if [ $bad = 0 ]; then echo "ok failed_writes_were_not_applied"; passed=1; else
    echo "FAIL failed_writes_were_not_applied: $bad writes answered 503 without \"outcome\":\"unknown\" were committed"
    failed=1
fi
echo "$passed passed, $failed failed"
[ $failed = 0 ]
