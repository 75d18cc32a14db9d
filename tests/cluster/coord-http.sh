#!/bin/sh
# Coordination over HTTP on a real 3-node cluster (c0, c1 under mod_cgi, c2
# with -fastcgi; ports 26700-26702 HTTP, 26710-26712 Raft): blocking GETs on
# a follower wake on a write at the leader (latency printed) and return
# unchanged after their wait; bad DUR 400; the watch stream delivers every
# change after `from` exactly once, in order, as ndjson and as SSE with a
# Last-Event-ID resume; an HTTP watch ends with a last line when raftd dies,
# while kv-watch resumes without gap or repeat across a kill -9 and restart
# of its node; leases (grant, attach, renew, get, revoke, expiry deletes
# the keys, 404s); txn. Prints ok/FAIL lines, figures, "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
require_ports 26700 26701 26702 26710 26711 26712
KVWATCH=$BUILD/bin/kv-watch

start_node c0 -id c0 -haddr 127.0.0.1:26700 -raddr 127.0.0.1:26710 "$T/c0"
wait_until 20 is_leader 26700 || { bad leader "no leader on :26700"; finish; }
start_node c1 -id c1 -haddr 127.0.0.1:26701 -raddr 127.0.0.1:26711 -join 127.0.0.1:26700 "$T/c1"
start_node c2 -fastcgi -id c2 -haddr 127.0.0.1:26702 -raddr 127.0.0.1:26712 \
    -join 127.0.0.1:26700 "$T/c2"
three_voters() { [ "$(status_field 26700 '[.nodes[] | select(.voter)] | length')" = 3 ]; }
wait_until 30 three_voters || { bad three_voters "$(status_field 26700 -c .nodes)"; finish; }
ok three_voters
L=26700 # the leader; c1 (26701, CGI) and c2 (26702, FastCGI) are followers
check "c0 still leads" is_leader $L
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# hdr FILE NAME: a header's value from curl -D output
hdr() { tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | tail -n 1; }

# ---- blocking queries, on each follower (CGI and FastCGI) ----
for F in 26701 26702; do
    expect_post "bq set on the leader ($F)" $L /key "{\"bq$F\":\"1\"}"
    wait_until 10 body_is $F "/key/bq$F?level=stale" "{\"bq$F\":\"1\"}"
    curl -s -m 10 -D "$T/h" -o /dev/null "http://127.0.0.1:$F/key/bq$F"
    M=$(hdr "$T/h" X-Keyval-Index)
    check "X-Keyval-Index on a key read on :$F ($M)" [ -n "$M" ]
    curl -s -m 10 -D "$T/bh" -o "$T/bb" "http://127.0.0.1:$F/key/bq$F?index=$M&wait=60s" &
    cpid=$!
    sleep 1
    t0=$(ms)
    http_post $L /key "{\"bq$F\":\"2\"}"
    wait $cpid
    rc=$?
    t1=$(ms)
    check "blocking GET on :$F wakes on a write at the leader" \
        [ $rc = 0 ] && [ "$(cat "$T/bb")" = "{\"bq$F\":\"2\"}" ]
    echo "figure: blocking GET on follower :$F woke $((t1 - t0)) ms after the write was sent"
    M2=$(hdr "$T/bh" X-Keyval-Index)
    check "the woken answer's X-Keyval-Index grew ($M -> $M2)" [ "${M2:-0}" -gt "$M" ]
    t0=$(ms)
    HTTP_CODE=$(curl -s -m 10 -D "$T/uh" -o "$T/ub" -w '%{http_code}' \
        "http://127.0.0.1:$F/key/bq$F?index=$M2&wait=1500ms")
    t1=$(ms)
    check "blocking GET on :$F returns unchanged after its wait" \
        [ "$HTTP_CODE" = 200 ] && [ "$(cat "$T/ub")" = "{\"bq$F\":\"2\"}" ] &&
        [ "$(hdr "$T/uh" X-Keyval-Index)" = "$M2" ]
    echo "figure: an unchanged blocking GET (wait=1500ms) on :$F answered after $((t1 - t0)) ms"
    # a missing key wakes when it is created; a listing wakes on a new key
    curl -s -m 10 -D "$T/h" -o /dev/null "http://127.0.0.1:$F/key/new$F"
    N=$(hdr "$T/h" X-Keyval-Index)
    curl -s -m 10 -o "$T/nb" "http://127.0.0.1:$F/key/new$F?index=$N&wait=60s" &
    cpid=$!
    curl -s -m 10 -D "$T/h" -o /dev/null "http://127.0.0.1:$F/key?prefix=lst$F"
    N2=$(hdr "$T/h" X-Keyval-Index)
    check "X-Keyval-Index on a listing on :$F ($N2)" [ -n "$N2" ]
    curl -s -m 10 -o "$T/lb" "http://127.0.0.1:$F/key?prefix=lst$F&index=$N2&wait=60s" &
    lpid=$!
    sleep 1
    http_post $L /key "{\"new$F\":\"here\",\"lst${F}a\":\"x\"}"
    wait $cpid
    check "a blocking GET of a missing key on :$F wakes when it is created" \
        [ "$(cat "$T/nb")" = "{\"new$F\":\"here\"}" ]
    wait $lpid
    check "a blocking listing on :$F wakes on a new key" \
        [ "$(jq -r '.items[0].key' "$T/lb")" = "lst${F}a" ]
    http_get $F "/key/bq$F?index=1&wait=5parsecs"
    check "bad DUR on :$F is 400 naming wait" \
        [ "$HTTP_CODE" = 400 ] && echo "$BODY" | grep -q 'bad wait parameter'
done

# ---- the watch stream: every change after from, once, in order ----
curl -s -m 10 -D "$T/h" -o /dev/null "http://127.0.0.1:$L/key?prefix=w/"
M0=$(hdr "$T/h" X-Keyval-Index)
: >"$T/expect"
i=0
while [ $i -lt 12 ]; do
    port=$((26700 + i % 3))
    case $((i % 3)) in
    0) http_post $port /key "{\"w/a$i\":\"$i\",\"w/b$i\":\"$i\"}"
       idx=$(echo "$BODY" | jq -r .index)
       printf '%s set w/a%s\n%s set w/b%s\n' "$idx" $i "$idx" $i >>"$T/expect" ;;
    1) HTTP_CODE=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' -XPUT \
           "http://127.0.0.1:$port/key/w/c$i" --data-binary "v$i")
       idx=$(jq -r .index "$T/body")
       echo "$idx set w/c$i" >>"$T/expect" ;;
    2) HTTP_CODE=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' -XDELETE \
           "http://127.0.0.1:$port/key/w/a$((i - 2))")
       idx=$(jq -r .index "$T/body")
       echo "$idx del w/a$((i - 2))" >>"$T/expect" ;;
    esac
    i=$((i + 1))
done
http_post $L /key '{"other":"not under w/"}'
nexp=$(wc -l <"$T/expect")
# events of one write may come in any key order: compare sorted
sort -n "$T/expect" >"$T/expect.sorted"
for F in 26701 26702; do
    curl -sN -m 30 "http://127.0.0.1:$F/watch?prefix=w/&from=$M0" >"$T/wn$F" 2>/dev/null &
    cpid=$!
    wait_until 20 sh -c "[ \$(grep -c index '$T/wn$F') -ge $nexp ]"
    sleep 0.5
    kill $cpid 2>/dev/null
    wait $cpid 2>/dev/null
    grep index "$T/wn$F" | jq -r '"\(.index) \(.op) \(.key)"' >"$T/got$F"
    sort -n "$T/got$F" >"$T/got$F.s"
    check "ndjson watch on :$F: every change after from exactly once ($(wc -l <"$T/got$F")/$nexp)" \
        cmp -s "$T/expect.sorted" "$T/got$F.s"
    check "ndjson watch on :$F: in index order" \
        sh -c "cut -d' ' -f1 '$T/got$F' | sort -n -c"
done
# SSE on the FastCGI node, then a resume from a Last-Event-ID in the middle
curl -sN -m 4 -H 'Accept: text/event-stream' "http://127.0.0.1:26702/watch?prefix=w/&from=$M0" \
    >"$T/sse" 2>/dev/null
sed -n 's/^data: //p' "$T/sse" | grep index | jq -r '"\(.index) \(.op) \(.key)"' | sort -n >"$T/sse.got"
check "SSE watch: the same events" cmp -s "$T/expect.sorted" "$T/sse.got"
mid=$(grep '^id: ' "$T/sse" | sed -n 4p | cut -d' ' -f2)
curl -sN -m 4 -H 'Accept: text/event-stream' -H "Last-Event-ID: $mid" \
    "http://127.0.0.1:26702/watch?prefix=w/&from=$M0" >"$T/sse2" 2>/dev/null
sed -n 's/^data: //p' "$T/sse2" | grep index | jq -r '"\(.index) \(.op) \(.key)"' | sort -n >"$T/sse2.got"
awk -v m="$mid" '$1 > m' "$T/expect.sorted" >"$T/expect.after"
check "SSE resume from Last-Event-ID $mid: exactly the events after it" \
    [ -n "$mid" ] && cmp -s "$T/expect.after" "$T/sse2.got"

# ---- raftd dies: the HTTP watch ends with a last line; kv-watch resumes ----
curl -sN -m 30 "http://127.0.0.1:26701/watch?prefix=w/" >"$T/wdie" 2>/dev/null &
cpid=$!
"$KVWATCH" -d "$T/c1" -p -i "$M0" kw/ >"$T/kvw" 2>"$T/kvw.err" &
kwpid=$!
all_pids="$all_pids $kwpid"
sleep 1
: >"$T/kexpect"
kw_write() { # PORT N
    http_post "$1" /key "{\"kw/$2\":\"$2\"}"
    echo "$(echo "$BODY" | jq -r .index) set kw/$2" >>"$T/kexpect"
}
for n in 1 2 3 4; do kw_write $L $n; done
wait_until 10 sh -c "[ \$(wc -l <'$T/kvw') -ge 4 ]"
kill_node c1
wait $cpid 2>/dev/null
check "the HTTP watch ended with a last line when its raftd died ($(tail -n 1 "$T/wdie"))" \
    sh -c "tail -n 1 '$T/wdie' | jq -e .error >/dev/null"
for n in 5 6 7 8; do kw_write $L $n; done
start_node c1 $args_c1
wait_until 30 body_is 26701 '/key/kw/8?level=stale' '{"kw/8":"8"}'
for n in 9 10 11 12; do kw_write 26701 $n; done
wait_until 30 sh -c "[ \$(wc -l <'$T/kvw') -ge 12 ]"
sleep 0.5
kill $kwpid
jq -r '"\(.index) \(.op) \(.key)"' "$T/kvw" >"$T/kgot"
check "kv-watch resumed across kill -9 + restart of its node: no gap, no repeat ($(wc -l <"$T/kgot")/12)" \
    cmp -s "$T/kexpect" "$T/kgot"
check "kv-watch said it reconnected" grep -q "connected to" "$T/kvw.err"

# ---- leases ----
http_post 26701 /lease '{"ttl":"3s"}'
LID=$(echo "$BODY" | jq -r .lease)
check "POST /lease on a follower grants ($BODY)" \
    [ "$HTTP_CODE" = 200 ] && [ "$(echo "$BODY" | jq -r .ttl_ms)" = 3000 ]
curl -sN -m 30 "http://127.0.0.1:26702/watch?prefix=ls/" >"$T/lw" 2>/dev/null &
lwpid=$!
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPUT \
    "http://127.0.0.1:26702/key/ls/one?lease=$LID" --data-binary 1)
check "PUT /key/K?lease=ID attaches" [ "$HTTP_CODE" = 200 ]
http_post 26700 "/key?lease=$LID" '{"ls/two":"2"}'
check "POST /key?lease=ID attaches" [ "$HTTP_CODE" = 200 ]
http_get 26701 "/lease/$LID"
check "GET /lease/ID shows its keys ($BODY)" \
    [ "$(echo "$BODY" | jq -c '.keys | sort')" = '["ls/one","ls/two"]' ]
for n in 1 2 3; do
    sleep 1
    HTTP_CODE=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' -XPUT "http://127.0.0.1:26702/lease/$LID")
    [ "$HTTP_CODE" = 200 ] || break
done
t_renew=$(ms)
check "PUT /lease/ID renews (through FastCGI, 3 times a second apart)" [ "$HTTP_CODE" = 200 ]
check "the keys outlived the ttl while renewed" body_is 26700 /key/ls/one '{"ls/one":"1"}'
gone() { http_get 26700 /key/ls/two; [ "$HTTP_CODE" = 404 ]; }
wait_until 20 gone
t_gone=$(ms)
check "expiry deletes the lease's keys" gone
echo "figure: lease ttl 3000 ms expired $((t_gone - t_renew)) ms after its last renewal (polled every 200 ms)"
http_get 26700 /key/ls/one
check "expiry deletes every key of the lease" [ "$HTTP_CODE" = 404 ]
http_get 26701 "/lease/$LID"
check "GET of an expired lease is 404" [ "$HTTP_CODE" = 404 ]
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPUT "http://127.0.0.1:26701/lease/$LID")
check "renewing an expired lease is 404" [ "$HTTP_CODE" = 404 ]
sleep 0.5
kill $lwpid 2>/dev/null
check "the watch saw the expiry as deletes with expired:true" \
    [ "$(grep -c '"expired":true' "$T/lw")" = 2 ]
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPUT \
    "http://127.0.0.1:26701/key/ls/x?lease=999999" --data-binary 1)
check "PUT with an unknown lease is 404" [ "$HTTP_CODE" = 404 ]
http_get 26700 /key/ls/x
check "... and writes nothing" [ "$HTTP_CODE" = 404 ]
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XDELETE "http://127.0.0.1:26700/lease/999999")
check "DELETE of an unknown lease is 404" [ "$HTTP_CODE" = 404 ]
http_post 26700 /lease '{"ttl":"60s"}'
LID2=$(echo "$BODY" | jq -r .lease)
http_post 26701 "/key?lease=$LID2" '{"ls/r1":"1","ls/r2":"2"}'
HTTP_CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XDELETE "http://127.0.0.1:26702/lease/$LID2")
check "DELETE /lease/ID revokes" [ "$HTTP_CODE" = 200 ]
http_get 26700 /key/ls/r2
check "revoking deletes its keys" [ "$HTTP_CODE" = 404 ]
http_post 26700 /lease '{"ttl":"500ms"}'
check "a ttl under 1s is 400" [ "$HTTP_CODE" = 400 ]

# ---- txn ----
T1='{"if":[{"key":"tx/a","absent":true}],"then":[{"set":{"tx/a":"first"}}],"else":[{"set":{"tx/lost":"yes"}}]}'
http_post 26701 /txn "$T1"
check "txn: compares true, then-branch ($BODY)" \
    [ "$HTTP_CODE" = 200 ] && [ "$(echo "$BODY" | jq .succeeded)" = true ]
TI=$(echo "$BODY" | jq .index)
http_post 26702 /txn "$T1"
check "txn: compares false, else-branch ($BODY)" \
    [ "$HTTP_CODE" = 200 ] && [ "$(echo "$BODY" | jq .succeeded)" = false ]
check "txn: the then-write is there" body_is 26700 /key/tx/a '{"tx/a":"first"}'
check "txn: the else-write is there" body_is 26700 /key/tx/lost '{"tx/lost":"yes"}'
http_post 26700 /txn "{\"if\":[{\"key\":\"tx/a\",\"index\":$TI},{\"key\":\"tx/a\",\"value\":\"first\"}],\"then\":[{\"del\":\"tx/a\"},{\"set\":{\"tx/b\":\"2\"}}]}"
check "txn: index and value compares, del and set" \
    [ "$(echo "$BODY" | jq .succeeded)" = true ]
http_get 26700 /key/tx/a
check "txn: deleted" [ "$HTTP_CODE" = 404 ]
http_post 26700 /txn '{"if":[{"key":"tx/b","absent":true,"value":"2"}],"then":[{"set":{"tx/c":"x"}}]}'
check "txn: a malformed compare is 400 with the reason ($BODY)" [ "$HTTP_CODE" = 400 ]
http_get 26700 /key/tx/c
check "txn: a malformed txn writes nothing" [ "$HTTP_CODE" = 404 ]
HTTP_CODE=$(curl -s -m 10 -o /dev/null -D "$T/h" -w '%{http_code}' "http://127.0.0.1:26700/txn")
check "GET /txn is 405 with Allow: POST" [ "$HTTP_CODE" = 405 ] && [ "$(hdr "$T/h" Allow)" = POST ]
finish
