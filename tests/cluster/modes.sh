#!/bin/sh
# Every mode passes the same API tests: runs the HTTP API suites again
# with every node in -fastcgi mode (KEYVAL_TEST_FASTCGI=1, helpers.inc
# start_node), where raftd answers the key routes itself on fcgi.sock,
# and in -fast mode (KEYVAL_TEST_FAST=1), where raftd answers them on the
# HTTP port and hands the rest to lighttpd behind it. security.sh runs in
# -fastcgi only: with HTTPS or basic authentication -fast is -fastcgi
# (http-front.sh checks that); hostile.sh in -fast only (below). The
# default (mod_cgi) runs are the suites' own entries in make test. Each suite takes its own ports and lock;
# prints their lines prefixed with the mode and suite and ends
# "N passed, M failed" over all of them.
cd "$(dirname "$0")/../.." || exit 1
pass=0
fail=0
run_suite() { # MODE SUITE
    case $1 in
    fastcgi) out=$(KEYVAL_TEST_FASTCGI=1 sh "tests/cluster/$2.sh" 2>&1) ;;
    fast) out=$(KEYVAL_TEST_FAST=1 sh "tests/cluster/$2.sh" 2>&1) ;;
    esac
    rc=$?
    printf '%s\n' "$out" | grep -E '^(ok|FAIL) ' | sed "s/^\(ok\|FAIL\) /\1 $1-$2: /"
    last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=${last%% passed*}
    f=${last#*passed, }
    f=${f%% failed*}
    if [ -z "$last" ]; then
        echo "FAIL $1-$2: no summary line (rc $rc)"
        fail=$((fail + 1))
        return
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || { echo "FAIL $1-$2: exit $rc"; fail=$((fail + 1)); }
}
# hostile.sh runs in -fast only (there raftd is the HTTP server, and the
# connections it hands over meet lighttpd in -fastcgi mode): about 80 s
# less for make test.
for t in http-api http-rules walkthrough security api-ext slow-http; do
    run_suite fastcgi "$t"
done
for t in http-api http-rules walkthrough api-ext hostile slow-http; do
    run_suite fast "$t"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
