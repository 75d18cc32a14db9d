#!/bin/sh
# A/B of the -fastcgi mode: OLD=<build of the old tree> (default
# /work/wt-try2/build) against NEW=<this build>, alternating, 3 rounds of
# bench/run.sh http at 8 and 32 connections, and the FastCGI floor each
# round. Figures only (bench/results/2026-12-02-fcgi.md).
cd "$(dirname "$0")/.." || exit 1
OLD=${OLD:-/work/wt-try2/build}
NEW=${NEW:-$(pwd)/build}
R=${R:-/tmp}
for r in 1 2 3; do
  for b in old new; do
    case $b in old) B=$OLD ;; new) B=$NEW ;; esac
    echo "## round $r $b"
    BUILD=$B BENCH_PARTS=http BENCH_SYSTEMS=fastcgi BENCH_CONNS="8 32" BENCH_ROUNDS=1 \
      BENCH_OUT=$R/rep-$r-$b.md nice -n 5 sh bench/run.sh 2>&1 | grep -E "req/s"
  done
  echo "## round $r floor"
  BUILD=$NEW BENCH_PARTS=http BENCH_SYSTEMS=floor-fcgi BENCH_CONNS="8 32" BENCH_ROUNDS=1 \
    BENCH_OUT=$R/rep-$r-floor.md nice -n 5 sh bench/run.sh 2>&1 | grep -E "req/s"
done
