#!/bin/sh
# Teeth of the fault suite: runs tests/fault/jepsen.sh against raftd built
# with -DKEYVAL_FAULT_MODES (make fault-modes -> build-faults/bin/raftd) in
# each deliberately broken mode (env KEYVAL_FAULT_MODE) and expects the
# checkers to FAIL the run; a control run with no mode must pass.
#   ack-early          answer a write when proposed, before commit/fsync
#   local-read         answer default (linearizable) reads locally, no ReadIndex
#   apply-uncommitted  apply log entries to the table as soon as they are
#                      appended, before they are committed
# ack-early and local-read run TEETH_DURATION s with every nemesis;
# apply-uncommitted runs 2*TEETH_DURATION+10 s with leader partitions and
# pauses only (its bug shows when a leader holding unreplicated entries is
# cut off). All runs use -L (the known ambiguous-503 bug counted as
# unknown, so a failure is the mode's doing).
# TEETH_MODES, TEETH_DURATION (s, default 40),
# TEETH_SEED override.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
FRAFTD=build-faults/bin/raftd
modes=${TEETH_MODES:-"ack-early local-read apply-uncommitted"}
dur=${TEETH_DURATION:-40}
seed=${TEETH_SEED:-4242}
p=0 f=0
[ -x "$FRAFTD" ] || { echo "FAIL setup: $FRAFTD not built (make fault-modes)"; echo "0 passed, 1 failed"; exit 1; }
for mode in none $modes; do
    start=$(date +%s)
    out=$(mktemp)
    if [ "$mode" = none ]; then
        BUILD=$BUILD bash tests/fault/jepsen.sh -L -n 3 -d "$dur" -s "$seed" -p 16300 -r "$FRAFTD" -H 1-4 >"$out" 2>&1
    else
        nem="kill kill-leader kill-raftd kill-all pause pause-leader part-majority part-leader part-oneway part-bridge member transfer disk"
        d=$dur
        [ "$mode" = apply-uncommitted ] && nem="part-leader part-oneway pause-leader" && d=$((dur * 2 + 10))
        BUILD=$BUILD bash tests/fault/jepsen.sh -n 3 -d "$d" -s "$seed" -p 16300 -r "$FRAFTD" -H 1-4 -m "$mode" -N "$nem" -L >"$out" 2>&1
    fi
    rc=$?
    took=$(( $(date +%s) - start ))
    grep -E '^(FAIL|VIOLATION|LOST|UNKNOWN|history:|checked|faults)' "$out" | head -6 | cut -c1-200 | sed 's/^/    /'
    if [ "$mode" = none ]; then
        if [ $rc = 0 ]; then echo "ok control_run_passes (${took}s)"; p=$((p + 1)); else
            echo "FAIL control_run_passes: the fault build without a mode failed"; f=$((f + 1)); tail -30 "$out"; fi
    elif [ $rc != 0 ] && grep -q -E '^(VIOLATION|LOST WRITE)|^FAIL convergence' "$out"; then
        echo "ok catches_$mode (${took}s run: $(grep -c -E '^(VIOLATION|LOST WRITE)' "$out") violations$(grep -q '^FAIL convergence' "$out" && echo ', tables diverge'))"
        p=$((p + 1))
    else
        echo "FAIL catches_$mode: run exit $rc without a violation"
        f=$((f + 1))
    fi
    rm -f "$out"
done
echo "$p passed, $f failed"
[ $f -eq 0 ]
