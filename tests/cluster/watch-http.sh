#!/bin/sh
# The HTTP side of the coordination routes against a scripted fake raftd
# (socat + sh on a UNIX socket), without a cluster: what lighttpd and the
# CGI programs make of raftd's answers. GET /watch relays events as they
# come (not at the end), as ndjson and as Server-Sent Events with "id:" on
# the last event of each index and Last-Event-ID resume; 410/503 pass
# through; a last line when raftd cuts the stream; the watch program exits
# and closes its raftd connection when the HTTP client goes away (CGI and
# -fastcgi configurations); blocking GETs pass index/wait_ms on and wait
# longer than KEYVAL_TIMEOUT_MS; bad DUR and bad lease parameters are 400
# without asking raftd; kv-watch resumes without repeat or gap (also when
# cut inside the changes of one index); kv-lease's exit statuses. Port
# 26610 (26611 for the -fastcgi configuration).
. "$(dirname "$0")/helpers.inc"
require_ports 26610 26611

SOCK=$T/fake.sock
REQS=$T/requests
: >"$REQS"
# The fake: one request line per connection, logged; the answer depends on
# what was asked. A watch keeps the connection until the watcher closes
# it, then logs "closed FROM".
cat >"$T/fake.sh" <<'EOS'
IFS= read -r line
echo "$line" >>"$REQS"
case $line in
*'"op":"watch","prefix":"kx"'*)
    echo '{"code":200,"index":2}'
    if [ -e "$REQS.kx" ]; then
        echo '{"index":3,"op":"set","key":"kx1","value":"a"}'
        echo '{"index":3,"op":"set","key":"kx2","value":"b"}'
        echo '{"index":4,"op":"set","key":"kx3","value":"c"}'
        cat >/dev/null
    else
        : >"$REQS.kx"
        echo '{"index":3,"op":"set","key":"kx1","value":"a"}'
    fi ;;
*'"op":"watch","prefix":"kw"'*'"from":2'*)
    echo '{"code":200,"index":2}'
    echo '{"index":3,"op":"set","key":"kw1","value":"a"}'
    echo '{"index":3,"op":"set","key":"kw2","value":"b"}'
    echo '{"index":4,"op":"del","key":"kw3"}' ;;
*'"op":"watch","prefix":"kw"'*'"from":3'*)
    echo '{"code":200,"index":4}'
    echo '{"index":4,"op":"del","key":"kw3"}'
    echo '{"index":5,"op":"set","key":"kw4","value":"d"}'
    cat >/dev/null ;;
*'"op":"lease_grant"'*)
    echo '{"code":200,"lease":"77","ttl_ms":10000}' ;;
*'"op":"lease_get"'*)
    echo '{"code":404,"error":"lease not found"}' ;;
*'"op":"lease_renew"'*)
    echo '{"code":503,"error":"no leader"}' ;;
*'"op":"watch"'*'"from":1}'*|*'"from":1,'*)
    echo '{"code":410,"error":"compacted","oldest":2}' ;;
*'"op":"watch"'*'"from":9'*)
    echo '{"code":503,"error":"too many watchers"}' ;;
*'"op":"watch"'*'"from":5'*)
    echo '{"code":200,"index":6}'
    echo '{"index":6,"op":"set","key":"a","value":"6"}' ;;
*'"op":"watch"'*)
    echo '{"code":200,"index":4}'
    echo '{"index":3,"op":"set","key":"a1","value":"x"}'
    echo '{"index":3,"op":"set","key":"a2","value":"y"}'
    echo '{"index":4,"op":"del","key":"a1"}'
    sleep 1
    echo '{"index":5,"op":"set","key":"a3","value":"late"}'
    cat >/dev/null
    echo "closed $line" >>"$REQS.closed" ;;
*'"wait_ms"'*)
    sleep 2
    echo '{"code":200,"key":"k","value":"v","index":8}' ;;
*'"op":"list"'*)
    echo '{"code":200,"items":[],"more":false,"index":12}' ;;
*)
    echo '{"code":404,"error":"key not found","index":11}' ;;
esac
EOS
socat UNIX-LISTEN:"$SOCK",fork,reuseaddr SYSTEM:"REQS=$REQS sh $T/fake.sh" 2>"$T/socat.log" &
all_pids="$all_pids $!"
wait_until 5 test -S "$SOCK"

# lighttpd from keyval's template, as keyval renders it (no security).
render() { # PORT MODE DIR
    mkdir -p "$3/www" "$3/tmp"
    : >"$3/security.conf"
    : >"$3/lighttpd-ui.conf" # the web console off (keyval writes it)
    sed -e "s|@HOST@|127.0.0.1|; s|@PORT@|$1|; s|@DATADIR@|$3|g; s|@CGIDIR@|$BUILD/cgi-bin|g" \
        -e "s|@SOCKET@|$SOCK|g; s|@ETCDIR@|$BUILD/etc|g; s|@MODE@|$2|g" \
        -e "s|@SECURITY@|$3/security.conf|; s|@MAXFDS@|1024|; s|@MAXCONNS@|300|" \
        "$BUILD/etc/lighttpd.conf.in" >"$3/lighttpd.conf"
    # -fastcgi sends the key routes to raftd's own fcgi.sock; the fake
    # raftd has none, so here they go to the resident programs (what this
    # test is about; raftd's answers are coord-http.sh's and fastcgi.sh's).
    if [ "$2" = fastcgi ]; then
        mkdir -p "$3/etc"
        awk '/"\/\.kv-cgi\/[a-z-]*" => \(\(/ { split($1, a, "/"); name = a[3]; sub(/"$/, "", name) }
             /"\/fcgi\.sock",/ {
                 sub(/"\/fcgi\.sock",/, "\"/fcgi-" name ".sock\",")
                 print
                 print "        \"bin-path\" => var.kv_cgidir + \"/" name "\","
                 print "        \"bin-environment\" => ( \"KEYVAL_SOCKET\" => var.kv_socket ),"
                 next
             }
             { print }' "$BUILD/etc/lighttpd-fastcgi.conf" >"$3/etc/lighttpd-fastcgi.conf"
        sed -i "s|$BUILD/etc/lighttpd-fastcgi.conf|$3/etc/lighttpd-fastcgi.conf|" "$3/lighttpd.conf"
    fi
    # a short request timeout, to see that a blocking query waits longer
    sed -i 's|"KEYVAL_SOCKET" => "'"$SOCK"'"|& , "KEYVAL_TIMEOUT_MS" => "1000"|' "$3/lighttpd.conf"
    /usr/sbin/lighttpd -D -f "$3/lighttpd.conf" >>"$T/lighttpd-$2.log" 2>&1 &
    all_pids="$all_pids $!"
    wait_until 10 curl -s -o /dev/null "http://127.0.0.1:$1/txn"
}
render 26610 cgi "$T/cgi"
render 26611 fastcgi "$T/fcgi"

for mode in cgi fastcgi; do
    P=26610
    [ $mode = fastcgi ] && P=26611
    U=http://127.0.0.1:$P

    # ndjson: the first three events arrive before the late one is sent
    : >"$REQS.closed"
    curl -sN -m 4 -D "$T/h" "$U/watch?prefix=a&from=2" >"$T/w" 2>/dev/null &
    cpid=$!
    sleep 0.7
    n_early=$(grep -c index "$T/w")
    check "$mode: ndjson events stream as they come (3 before the late one, got $n_early)" \
        [ "$n_early" = 3 ]
    wait $cpid
    check "$mode: ndjson content type" grep -qi '^content-type: application/x-ndjson' "$T/h"
    check "$mode: X-Keyval-Index of the watch" grep -qi '^x-keyval-index: 4' "$T/h"
    check "$mode: all four events in order" \
        [ "$(grep index "$T/w" | jq -r .index | tr '\n' ' ')" = "3 3 4 5 " ]
    check "$mode: raftd got the prefix and from" \
        grep -q '"op":"watch","prefix":"a","from":2' "$REQS"
    # the client went away (curl -m 4): the program exits and closes raftd.sock
    t0=$(date +%s%N)
    check "$mode: watch closes its raftd connection when the client goes away" \
        wait_until 25 grep -q closed "$REQS.closed"
    echo "figure $mode: raftd connection closed $(( ($(date +%s%N) - t0) / 1000000 )) ms after the client left"

    # SSE: id on the last event of each index only
    curl -sN -m 2 -H 'Accept: text/event-stream' "$U/watch/a1?from=2" >"$T/s" 2>/dev/null
    ids=$(grep '^id:' "$T/s" | tr '\n' ' ')
    check "$mode: SSE ids on the last event of each index ($ids)" [ "$ids" = "id: 3 id: 4 id: 5 " ]
    check "$mode: SSE data lines" [ "$(grep -c '^data: {' "$T/s")" = 4 ]
    check "$mode: /watch/K asks for the key" grep -q '"op":"watch","key":"a1","from":2' "$REQS"
    curl -sN -m 2 -H 'Accept: text/event-stream' -H 'Last-Event-ID: 7' \
        "$U/watch?prefix=b&from=2" >/dev/null 2>&1
    check "$mode: Last-Event-ID resumes from that index" \
        grep -q '"op":"watch","prefix":"b","from":7' "$REQS"

    # errors of the first reply pass through
    http_get $P "/watch?prefix=a&from=1"
    check "$mode: 410 compacted passed through ($HTTP_CODE $BODY)" \
        [ "$HTTP_CODE" = 410 ] && [ "$(echo "$BODY" | jq -r .oldest)" = 2 ]
    http_get $P "/watch?prefix=a&from=9"
    check "$mode: 503 too many watchers passed through ($HTTP_CODE)" [ "$HTTP_CODE" = 503 ]
    # raftd cuts the stream: a last line says so
    curl -sN -m 5 "$U/watch?prefix=a&from=5" >"$T/c" 2>/dev/null
    check "$mode: a last line when raftd cuts the stream ($(tail -n 1 "$T/c"))" \
        [ "$(tail -n 1 "$T/c" | jq -r .last_index)" = 6 ]
    http_get $P "/watch?prefix=a&from=x"
    check "$mode: bad from is 400" [ "$HTTP_CODE" = 400 ]

    # blocking GET: index and wait_ms reach raftd; the CGI waits for the
    # answer longer than KEYVAL_TIMEOUT_MS (1 s here; the fake takes 2 s)
    HTTP_CODE=$(curl -s -m 10 -D "$T/h" -o "$T/body" -w '%{http_code}' "$U/key/k?index=5&wait=3s")
    check "$mode: blocking GET waits past the request timeout ($HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
    check "$mode: blocking GET sends index and wait_ms" \
        grep -q '"op":"get","key":"k","index":5,"wait_ms":3000' "$REQS"
    check "$mode: X-Keyval-Index on a key read" grep -qi '^x-keyval-index: 8' "$T/h"
    grep -q '"prefix":"p","index":5,"wait_ms":300000' "$REQS" || true
    HTTP_CODE=$(curl -s -m 10 -D "$T/h" -o /dev/null -w '%{http_code}' "$U/key/nokey")
    check "$mode: X-Keyval-Index on a 404 ($HTTP_CODE)" grep -qi '^x-keyval-index: 11' "$T/h"
    HTTP_CODE=$(curl -s -m 10 -D "$T/h" -o "$T/body" -w '%{http_code}' "$U/key?prefix=p")
    check "$mode: X-Keyval-Index on a listing" grep -qi '^x-keyval-index: 12' "$T/h"
    check "$mode: listing body unchanged" [ "$(cat "$T/body")" = '{"items":[],"more":false}' ]
    before=$(wc -l <"$REQS")
    for q in "wait=10" "wait=5x" "wait=11m" "wait=-1s"; do
        http_get $P "/key/k?index=1&$q"
        check "$mode: $q is 400 naming wait ($BODY)" \
            [ "$HTTP_CODE" = 400 ] && echo "$BODY" | grep -q 'bad wait parameter'
    done
    http_get $P "/key?prefix=p&index=x"
    check "$mode: bad index is 400" [ "$HTTP_CODE" = 400 ]
    http_get $P "/key/k?wait=1s"
    check "$mode: wait without index is 400" [ "$HTTP_CODE" = 400 ]
    HTTP_CODE=$(curl -s -m 5 -o "$T/body" -w '%{http_code}' -XPUT "$U/key/k?lease=abc" -d v)
    check "$mode: bad lease parameter is 400" [ "$HTTP_CODE" = 400 ]
    http_post $P "/lease" '{"ttl":"10"}'
    check "$mode: a ttl without unit is 400 ($BODY)" [ "$HTTP_CODE" = 400 ]
    http_post $P "/txn" '{"if":[{"key":"a"}],"then":[]}'
    check "$mode: a malformed txn is 400 with the reason ($BODY)" \
        [ "$HTTP_CODE" = 400 ] && echo "$BODY" | grep -q 'if\[0\]'
    check "$mode: none of the bad requests reached raftd" [ "$(wc -l <"$REQS")" = "$before" ]
done

# ---- kv-watch resumes without repeat or gap; kv-lease's exit statuses ----
"$BUILD/bin/kv-watch" -s "$SOCK" -p -i 2 kw >"$T/kvw" 2>"$T/kvw.err" &
kwpid=$!
all_pids="$all_pids $kwpid"
"$BUILD/bin/kv-watch" -s "$SOCK" -p -i 2 kx >"$T/kvx" 2>"$T/kvx.err" &
kxpid=$!
all_pids="$all_pids $kxpid"
wait_until 10 sh -c "[ \$(wc -l <'$T/kvw') -ge 4 ] && [ \$(wc -l <'$T/kvx') -ge 3 ]"
sleep 0.3
kill $kwpid $kxpid
check "kv-watch resumed after the index it finished, from 3" \
    grep -q '"op":"watch","prefix":"kw","from":3' "$REQS"
check "kv-watch: no change repeated, none missed ($(jq -r .key "$T/kvw" | tr '\n' ' '))" \
    [ "$(jq -r .key "$T/kvw" | tr '\n' ' ')" = "kw1 kw2 kw3 kw4 " ]
check "kv-watch cut inside one index: resumes before it, skips what it printed ($(jq -r .key "$T/kvx" | tr '\n' ' '))" \
    [ "$(jq -r .key "$T/kvx" | tr '\n' ' ')" = "kx1 kx2 kx3 " ]
check "kv-lease grant prints the ID" [ "$("$BUILD/bin/kv-lease" -s "$SOCK" grant 10s)" = 77 ]
"$BUILD/bin/kv-lease" -s "$SOCK" get 77 2>/dev/null
check "kv-lease get of an unknown lease exits 1" [ $? = 1 ]
"$BUILD/bin/kv-lease" -s "$SOCK" renew 77 2>/dev/null
check "kv-lease renew without a leader (503) exits 111" [ $? = 111 ]
"$BUILD/bin/kv-lease" -s "$SOCK" grant 0.5s 2>/dev/null
check "kv-lease grant with a bad TTL exits 2" [ $? = 2 ]
"$BUILD/bin/kv-watch" -s "$SOCK" 2>/dev/null
check "kv-watch without KEY exits 2" [ $? = 2 ]
finish
