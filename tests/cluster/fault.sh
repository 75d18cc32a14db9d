#!/bin/sh
# Short fault-injection schedule (part of make test): a 3-node keyval
# cluster in the default (CGI) mode and a 5-node one in -fast mode, on
# loopback (ports 16000-16599), under concurrent HTTP clients while random
# nemeses (kill -9, SIGSTOP, partitions, membership change, leadership
# transfer, full disk) are injected and healed; every
# history is checked for linearizability, lost writes, stale reads and
# convergence (tests/fault/jepsen.sh); then tests/fault/ambiguous-503.sh
# (ports 16700-16712). Seeds print on every run; replay with
# FAULT_SEED=N. FAULT_DURATION sets seconds per cluster (default 40).
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
seed=${FAULT_SEED:-$(( $(date +%s) % 100000 ))}
dur=${FAULT_DURATION:-40}
p=0 f=0
for n in 3 5; do
    out=$(mktemp)
    mode=cgi
    [ $n = 5 ] && mode=fast # raftd on the HTTP port (keyval -fast)
    bash tests/fault/jepsen.sh -M $mode -n $n -d "$dur" -s $((seed + n)) -c 6 -p 16000 -H 1-4 -b 30 >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "FAIL fault_${n}_nodes: no summary (exit $rc)"
        f=$((f + 1))
        continue
    fi
    p=$((p + $(echo "$line" | cut -d' ' -f1)))
    f=$((f + $(echo "$line" | cut -d' ' -f3)))
    [ $rc -ne 0 ] && [ "$(echo "$line" | cut -d' ' -f3)" = 0 ] && { echo "FAIL fault_${n}_nodes: exit $rc"; f=$((f + 1)); }
done
# Regression: a write whose raftd dies after taking it is "outcome":"unknown".
out=$(bash tests/fault/ambiguous-503.sh 2>&1)
echo "$out" | grep -E '^(ok|FAIL)'
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
if [ -n "$line" ]; then
    p=$((p + $(echo "$line" | cut -d' ' -f1)))
    f=$((f + $(echo "$line" | cut -d' ' -f3)))
else
    echo "FAIL ambiguous_503: no summary"; f=$((f + 1))
fi
echo "$p passed, $f failed"
[ $f -eq 0 ]
