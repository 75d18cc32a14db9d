#!/bin/sh
# Mutation test of the Raft simulator: build the core with each deliberate
# bug (-DMUTANT_xxx in lib/raft*.c, lib/lease.c or raft-sim's lease glue)
# into build-mut-NAME/, run raft-sim on a seed budget and report whether
# the bug was caught and after how many seeds. A mutant that survives is a
# hole in the simulator.
#
# The lease mutants (docs/coordination.md, lib/lease.h's rules):
#   LEASE_FRESH_NO_GUARD      a new leader gives leases now + ttl, without
#                             the guard (the contract's first rule): an old
#                             leader's renewal answered after a transfer
#                             elected the new one outlives it
#   LEASE_NO_FRESH_TERM       a leader keeps the deadlines of its previous
#                             term instead of a fresh one
#   LEASE_RENEW_NO_GUARD      a renewal is answered however long it waited
#   LEASE_RENEW_WHILE_EXPIRING a renewal is answered 200 while the lease's
#                             expire is proposed and not yet applied
#   LEASE_RENEW_NO_ROUND      (raft-sim.c) a renewal is answered from the
#                             leader's table at once, without ReadIndex
# The mutants of the log held partly in storage only (log_mem_bytes):
#   EVICT_STALE_TERM          an entry leaving memory keeps the term of the
#                             entries before it, not its own
#   EVICT_NO_CONF             a CONFIG entry leaving memory is forgotten, so
#                             the configuration falls back to the snapshot's
# Usage: tests/sim-mutants.sh [SEED_BUDGET]   (default 5000 per cluster size)
# Ends with "N passed, M failed" where passed = caught.
BUDGET=${1:-${MUTANT_SEEDS:-5000}}
CC=${CC:-cc}
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -Ilib"
# the core: lib/raft.c (public API) and its parts lib/raft_*.c; the
# leader's lease deadlines: lib/lease.c
CORE="lib/raft.c lib/raft_*.c lib/lease.c"
MUTANTS="COMMIT_OLD_TERM VOTE_NO_LOG_CHECK ACK_BEFORE_PERSIST READ_NO_ROUND READ_NO_TERM_COMMIT READ_BATCH_REOPEN SNAP_NO_IGNORE"
MUTANTS="$MUTANTS EVICT_STALE_TERM EVICT_NO_CONF"
MUTANTS="$MUTANTS LEASE_FRESH_NO_GUARD LEASE_NO_FRESH_TERM LEASE_RENEW_NO_GUARD LEASE_RENEW_WHILE_EXPIRING LEASE_RENEW_NO_ROUND"
cd "$(dirname "$0")/.." || exit 2
pass=0
fail=0
for m in $MUTANTS; do
    dir=build-mut-$m
    mkdir -p "$dir"
    if ! $CC $CFLAGS -DMUTANT_$m -o "$dir/raft-sim" tests/raft-sim.c $CORE \
            2>"$dir/build.log"; then
        echo "FAIL $m: does not build (see $dir/build.log)"
        fail=$((fail + 1))
        continue
    fi
    caught=""
    for n in 3 5; do
        out=$("$dir/raft-sim" --seed 1 --count "$BUDGET" --nodes $n --stop 2>/dev/null)
        line=$(printf '%s\n' "$out" | grep -m1 '^FAIL seed')
        if [ -n "$line" ]; then
            seed=$(printf '%s\n' "$line" | sed -E 's/^FAIL seed ([0-9]+).*/\1/')
            why=$(printf '%s\n' "$line" | sed -E 's/^FAIL seed [0-9]+ \([0-9]+ nodes\): //' | cut -c1-100)
            caught="$n nodes, after $seed seeds: $why"
            break
        fi
    done
    if [ -n "$caught" ]; then
        echo "ok $m caught ($caught)"
        pass=$((pass + 1))
    else
        echo "FAIL $m: survived $BUDGET seeds of 3 and of 5 nodes"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
