#!/bin/sh
# Runs libFuzzer targets: tests/fuzz/run.sh [-j N] SECONDS TARGET...
# Each target runs SECONDS under nice -n 19 on its working corpus
# $FUZZ_BUILD/corpus/TARGET (seeded from tests/fuzz/corpus/TARGET; FUZZ_WORK
# names another folder for the working corpora), at most N (default 2) at a
# time. Crashes land in $FUZZ_BUILD/artifacts/; the log of each run in
# $FUZZ_BUILD/log/TARGET.log. Prints one line per target:
#   ok fuzz_TARGET: SECONDS s, RUNS runs, EXECS/s
# or FAIL fuzz_TARGET: crash (artifact ...), and "N passed, M failed".
#    tests/fuzz/run.sh -regress TARGET...
# runs each target once over its seed corpus and tests/fuzz/regress/TARGET
# (inputs that once crashed it) instead.
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_WORK=${FUZZ_WORK:-$FUZZ_BUILD/corpus}
if [ "$1" = -regress ]; then
    shift
    pass=0 fail=0
    for t in "$@"; do
        dirs="tests/fuzz/corpus/$t"
        [ -d "tests/fuzz/regress/$t" ] && dirs="$dirs tests/fuzz/regress/$t"
        # shellcheck disable=SC2086
        if "$FUZZ_BUILD/fuzz_$t" -runs=0 $dirs >"$FUZZ_BUILD/regress-$t.log" 2>&1; then
            echo "ok fuzz_regress_$t: $(find $dirs -type f | wc -l) inputs"
            pass=$((pass + 1))
        else
            echo "FAIL fuzz_regress_$t: see $FUZZ_BUILD/regress-$t.log"
            fail=$((fail + 1))
        fi
    done
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi
jobs=2
if [ "$1" = -j ]; then jobs=$2; shift 2; fi
secs=${1:?usage: run.sh [-j N] SECONDS TARGET...}
shift
mkdir -p "$FUZZ_BUILD/artifacts" "$FUZZ_BUILD/log"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done' INT TERM EXIT

run_one() {
    t=$1
    mkdir -p "$FUZZ_WORK/$t"
    nice -n 19 "$FUZZ_BUILD/fuzz_$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$FUZZ_BUILD/artifacts/$t-" \
        "$FUZZ_WORK/$t" "tests/fuzz/corpus/$t" \
        >"$FUZZ_BUILD/log/$t.log" 2>&1
}

# Targets run in groups of $jobs; every run lasts $secs, so groups finish
# together.
running=0
for t in "$@"; do
    run_one "$t" &
    pids="$pids $!"
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        pids=""
        running=0
    fi
done
wait
pids=""
pass=0 fail=0
for t in "$@"; do
    log=$FUZZ_BUILD/log/$t.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if grep -qE '^==[0-9]+==ERROR|^SUMMARY|runtime error|Test unit written' "$log"; then
        art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1)
        echo "FAIL fuzz_$t: crash (artifact ${art:-see $log})"
        fail=$((fail + 1))
    elif [ -z "$runs" ]; then
        echo "FAIL fuzz_$t: did not run (see $log)"
        fail=$((fail + 1))
    else
        echo "ok fuzz_$t: $secs s, $runs runs, $rate execs/s"
        pass=$((pass + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
