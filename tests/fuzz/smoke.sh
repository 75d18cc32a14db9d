#!/bin/sh
# Smoke run of every fuzz target, so that a refactor cannot silently break
# one: tests/fuzz/smoke.sh SECONDS TARGET...  (make fuzz-smoke)
# Builds each $FUZZ_BUILD/fuzz_TARGET with $MAKE (its own log in
# $FUZZ_BUILD/log/build-TARGET.log), then runs the targets that built for
# SECONDS each, 2 at a time, through run.sh on their seed corpus with a
# throwaway working corpus ($FUZZ_BUILD/smoke-corpus, emptied first, so
# neither tests/fuzz/corpus nor make fuzz's corpus grows). A target that
# does not build counts as a failure; it never stops the others. Ends
# "N passed, M failed" (one per target) and exits non-zero on a failure.
MAKE=${MAKE:-make}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
export FUZZ_BUILD
secs=${1:?usage: smoke.sh SECONDS TARGET...}
shift
mkdir -p "$FUZZ_BUILD/log"
built=""
n_built=0
build_fail=0
for t in "$@"; do
    log=$FUZZ_BUILD/log/build-$t.log
    # make's exit status, not the binary's presence: an old binary stays
    # behind when the new one fails to link.
    if $MAKE --no-print-directory "$FUZZ_BUILD/fuzz_$t" >"$log" 2>&1; then
        built="$built $t"
        n_built=$((n_built + 1))
    else
        echo "FAIL fuzz_$t: does not build (see $log)"
        grep -m 3 -E ': (fatal )?error:|undefined reference|No rule to make target' "$log" | sed "s|^|    fuzz_$t: |"
        build_fail=$((build_fail + 1))
    fi
done
pass=0
fail=0
if [ -n "$built" ]; then
    rm -rf "$FUZZ_BUILD/smoke-corpus"
    out=$FUZZ_BUILD/log/smoke-run.log
    # shellcheck disable=SC2086
    FUZZ_WORK=$FUZZ_BUILD/smoke-corpus sh tests/fuzz/run.sh -j 2 "$secs" $built >"$out" 2>&1
    grep -E '^(ok|FAIL) ' "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        pass=${line%% passed*}
        fail=${line#*passed, }
        fail=${fail%% failed*}
    else
        echo "FAIL fuzz-smoke: run.sh printed no summary (see $out)"
        fail=$n_built
    fi
fi
fail=$((fail + build_fail))
echo "fuzz-smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
