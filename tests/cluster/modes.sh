#!/bin/sh
# Both modes pass the same API tests: runs the HTTP API suites again with
# every node in -fastcgi mode (KEYVAL_TEST_FASTCGI=1, helpers.inc
# start_node), where raftd answers the key routes itself on fcgi.sock.
# The default (mod_cgi) runs are the suites' own entries in make test.
# Each suite takes its own ports and lock; prints their lines prefixed
# with the suite and ends "N passed, M failed" over all of them.
cd "$(dirname "$0")/../.." || exit 1
pass=0
fail=0
for t in http-api http-rules walkthrough security api-ext hostile slow-http; do
    out=$(KEYVAL_TEST_FASTCGI=1 sh "tests/cluster/$t.sh" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^(ok|FAIL) ' | sed "s/^\(ok\|FAIL\) /\1 fastcgi-$t: /"
    last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=${last%% passed*}
    f=${last#*passed, }
    f=${f%% failed*}
    if [ -z "$last" ]; then
        echo "FAIL fastcgi-$t: no summary line (rc $rc)"
        fail=$((fail + 1))
        continue
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || { echo "FAIL fastcgi-$t: exit $rc"; fail=$((fail + 1)); }
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
