#!/bin/sh
# Runs keyval's test suites and ends with one line "N passed, M failed".
# Usage: tests/run-all.sh [unit] [sim] [cluster] [asan] [fuzz] [lint]
# (default: all six)
# asan: the unit tests, 300 simulator seeds per size and the walkthrough
# again with the ASan+UBSan build in build-asan/ (make asan-build).
# fuzz: make fuzz-smoke (builds every fuzz target with clang and runs each
# ~10 s; one that does not build is a failure). lint: make lint
# (clang-format check and cppcheck). Both use $MAKE (default make).
# Each test program prints its own "N passed, M failed" as its last such
# line; this script adds them up. A program that crashes or prints no
# summary counts as one failure.
BUILD=${BUILD:-build}
SIM_SEEDS=${SIM_SEEDS:-2000}
suites=${*:-unit sim cluster asan fuzz lint}
total_pass=0
total_fail=0
failed_names=""

run() { # name command...
    name=$1; shift
    echo "=== $name"
    out=$(mktemp)
    "$@" >"$out" 2>&1
    rc=$?
    # every FAIL line (they can be far from the end), then the tail
    grep '^FAIL' "$out" | head -n 20 | sed 's/^/    /'
    tail -n 40 "$out" | grep -v '^ok ' | grep -v '^FAIL' | sed 's/^/    /' | tail -n 20
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        p=0; f=1
    else
        p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
        f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [ "$f" -ne 0 ] && failed_names="$failed_names $name"
    echo "--- $name: $p passed, $f failed (exit $rc)"
}

for s in $suites; do
    case $s in
    unit)
        for t in "$BUILD"/tests/test_*; do
            [ -x "$t" ] && run "$(basename "$t")" "$t"
        done ;;
    sim)
        if [ -x "$BUILD/tests/raft-sim" ]; then
            run raft-sim-3 "$BUILD/tests/raft-sim" --seed 1 --count "$SIM_SEEDS" --nodes 3
            run raft-sim-5 "$BUILD/tests/raft-sim" --seed 1 --count "$SIM_SEEDS" --nodes 5
            run sim-mutants sh tests/sim-mutants.sh
        fi ;;
    cluster)
        for t in tests/cluster/*.sh; do
            [ -f "$t" ] && run "cluster/$(basename "$t" .sh)" env BUILD="$BUILD" sh "$t"
        done ;;
    asan)
        A=${ASAN_BUILD:-build-asan}
        if [ ! -x "$A/tests/raft-sim" ]; then
            run asan-build sh -c "echo 'FAIL asan-build: $A not built (make asan-build)'; echo '0 passed, 1 failed'; exit 1"
        else
            for t in "$A"/tests/test_*; do
                [ -x "$t" ] && run "asan/$(basename "$t")" env BUILD="$A" "$t"
            done
            run asan/raft-sim-3 "$A/tests/raft-sim" --seed 7000001 --count 300 --nodes 3
            run asan/raft-sim-5 "$A/tests/raft-sim" --seed 7000001 --count 300 --nodes 5
            run asan/cluster/walkthrough env BUILD="$A" sh tests/cluster/walkthrough.sh
        fi ;;
    fuzz)
        run fuzz-smoke "${MAKE:-make}" --no-print-directory fuzz-smoke ;;
    lint)
        run lint "${MAKE:-make}" --no-print-directory lint ;;
    *) echo "run-all: unknown suite: $s" >&2; exit 2 ;;
    esac
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
