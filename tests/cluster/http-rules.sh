#!/bin/sh
# The request rules of the HTTP API, the same under CGI and FastCGI (one
# node of each: HTTP 127.0.0.1:26160 and :26161, Raft 26170 and 26171):
# listing pages (a limit above the page size is one page of 1000 and
# "more"; paging returns every key once), unknown query parameters and
# body fields are 400 naming them, conditional requests (304 on
# If-None-Match, If-Match on POST /key, If-Match: *, ETag on writes), and
# errors in plain words (no jansson internals).
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 26160 26161 26170 26171

# req NAME EXPECTED_CODE CURL-ARGS...: one request; body in $T/body.
req() {
    _name=$1 _code=$2; shift 2
    rm -f "$T/body"
    _got=$(curl -s -m 20 -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@")
    if [ "$_got" = "$_code" ]; then
        ok "$M.$_name"
    else
        bad "$M.$_name" "curl $* gave $_got $(head -c 300 "$T/body"), want $_code"
    fi
}
header() { grep -i "^$1:" "$T/headers" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
body_has() { grep -q -- "$1" "$T/body"; }

# keys_json PREFIX FROM TO: {"PREFIX0001":"v",...} for FROM..TO.
keys_json() {
    awk -v p="$1" -v a="$2" -v b="$3" 'BEGIN { printf "{"; for (i = a; i <= b; i++)
        printf "%s\"%s%04d\":\"v\"", (i > a ? "," : ""), p, i; printf "}" }'
}

run_checks() {
    U=http://127.0.0.1:$1

    # --- item 2: listing pages
    keys_json pg/ 1 1000 > "$T/k1"
    keys_json pg/ 1001 1205 > "$T/k2"
    req seed_1000 200 -XPOST $U/key --data-binary @"$T/k1"
    req seed_205 200 -XPOST $U/key --data-binary @"$T/k2"
    req list_limit_above_max 200 "$U/key?prefix=pg/&limit=5000"
    check "$M.list_above_max_is_one_page" \
        test "$(jq -c '[(.items | length), .more]' "$T/body")" = '[1000,true]'
    req list_limit_0 400 "$U/key?limit=0"
    check "$M.list_limit_0_says_range" body_has 'at least 1'
    req list_default 200 "$U/key?prefix=pg/"
    check "$M.list_default_100" test "$(jq '.items | length' "$T/body")" = 100
    after= pages=0
    : > "$T/seen"
    while [ $pages -lt 20 ]; do
        req "page_$pages" 200 "$U/key?prefix=pg/&limit=300&after=$after"
        jq -r '.items[].key' "$T/body" >> "$T/seen"
        pages=$((pages + 1))
        [ "$(jq .more "$T/body")" = true ] || break
        after=$(jq -r '.items[-1].key | @uri' "$T/body")
    done
    check "$M.paging_every_key_once" \
        test "$(sort "$T/seen" | uniq | wc -l)" = 1205 -a "$(wc -l < "$T/seen")" = 1205
    check "$M.paging_in_order" sh -c 'sort -c "$1"' - "$T/seen"

    # --- item 7: unknown query parameters and body fields
    # (wait and index are a blocking query's now: wait without index, or
    # a bad index, is 400 naming it)
    req get_wait 400 "$U/key/pg/0001?wait=true"
    check "$M.get_wait_named" body_has 'bad wait parameter'
    req get_level_ok 200 "$U/key/pg/0001?level=stale"
    req list_recursive 400 "$U/key?recursive=true"
    check "$M.list_recursive_named" body_has 'recursive'
    req list_index 400 "$U/key?prefix=pg/&index=five"
    req post_ttl_param 400 -XPOST "$U/key?ttl=5" -d '{"a":"1"}'
    req put_ttl_param 400 -XPUT "$U/key/a?ttl=5" --data-binary 1
    req del_recursive 400 -XDELETE "$U/key/a?recursive=true"
    req status_param 400 "$U/status?verbose=1"
    req health_max_lag_ok 200 "$U/health?max_lag=5"
    req health_param 400 "$U/health?wait=true"
    req metrics_param 400 "$U/metrics?x=1"
    req join_param 400 -XPOST "$U/join?force=1" -d '{"id":"x","addr":"h:1"}'
    req node_param 400 -XDELETE "$U/node/x?force=1"
    req join_ttl_field 400 -XPOST $U/join -d '{"id":"x","addr":"h:1","ttl":5}'
    check "$M.join_ttl_named" body_has 'unknown field \\"ttl\\"'
    req leader_extra_field 400 -XPOST $U/leader -d '{"id":"x","force":true}'
    # In POST /key the body is the key-value map: "ttl" is a key whose value
    # is not a string.
    req post_ttl_number 400 -XPOST $U/key -d '{"a":"1","ttl":5}'
    check "$M.post_ttl_named" body_has 'key \\"ttl\\" is not a string'
    req post_ttl_not_written 404 $U/key/a

    # --- item 9: no jansson internals
    req post_nul_value 400 -XPOST $U/key -d '{"a":"x\u0000y"}'
    check "$M.nul_plain" sh -c '! grep -q JSON_ "$1" && grep -q "NUL bytes" "$1"' - "$T/body"
    req post_nul_key 400 -XPOST $U/key -d '{"a\u0000":"x"}'
    check "$M.nul_key_plain" sh -c '! grep -q JSON_ "$1" && grep -q "NUL bytes" "$1"' - "$T/body"
    req join_nul 400 -XPOST $U/join -d '{"id":"a\u0000","addr":"h:1"}'
    check "$M.join_nul_plain" sh -c '! grep -q JSON_ "$1"' - "$T/body"
    req post_duplicate 400 -XPOST $U/key -d '{"a":"1","a":"2"}'
    check "$M.duplicate_plain" body_has 'appears twice'

    # --- item 6: conditional requests
    req put_c 200 -XPUT $U/key/c --data-binary one
    ci=$(jq .index "$T/body")
    check "$M.put_has_etag" test "$(header ETag)" = "\"$ci\""
    req get_c_304 304 -H "If-None-Match: \"$ci\"" $U/key/c
    check "$M.304_no_body" sh -c 'test ! -s "$1"' - "$T/body"
    check "$M.304_etag" test "$(header ETag)" = "\"$ci\""
    req get_c_304_weak_list 304 -H "If-None-Match: \"1\", W/\"$ci\"" $U/key/c
    req get_c_304_star 304 -H 'If-None-Match: *' $U/key/c
    req get_c_other_200 200 -H "If-None-Match: \"$((ci + 1000))\"" $U/key/c
    req get_missing_inm_404 404 -H 'If-None-Match: *' $U/key/nosuch
    req post_pair 200 -XPOST $U/key -d '{"m1":"a","m2":"b"}'
    mi=$(jq .index "$T/body")
    check "$M.post_has_etag" test "$(header ETag)" = "\"$mi\""
    req post_if_match_stale 412 -XPOST -H "If-Match: \"$ci\"" $U/key -d '{"m1":"x","m2":"y"}'
    req post_stale_not_written 200 $U/key/m1
    check "$M.post_stale_value_kept" test "$(jq -r .m1 "$T/body")" = a
    req post_if_match_batch 200 -XPOST -H "If-Match: \"$mi\"" $U/key -d '{"m1":"x","m2":"y"}'
    req post_if_none_match_exists 412 -XPOST -H 'If-None-Match: *' $U/key -d '{"m1":"z","new1":"z"}'
    req post_if_none_match_new 200 -XPOST -H 'If-None-Match: *' $U/key -d '{"new1":"z"}'
    req post_if_match_star_two 400 -XPOST -H 'If-Match: *' $U/key -d '{"m1":"z","m2":"z"}'
    req post_if_match_star_one 200 -XPOST -H 'If-Match: *' $U/key -d '{"m1":"star"}'
    req put_if_match_star_missing 412 -XPUT -H 'If-Match: *' $U/key/nosuch --data-binary x
    check "$M.star_missing_index_0" test "$(jq -c '[.key, .index]' "$T/body")" = '["nosuch",0]'
    req put_star_missing_not_written 404 $U/key/nosuch
    req put_if_match_star 200 -XPUT -H 'If-Match: *' $U/key/c --data-binary two
    req get_c_two 200 $U/key/c
    check "$M.star_put_value" test "$(jq -r .c "$T/body")" = two
    req del_if_match_star_missing 412 -XDELETE -H 'If-Match: *' $U/key/nosuch
    req del_if_match_star 200 -XDELETE -H 'If-Match: *' $U/key/c
    req get_c_gone 404 $U/key/c
    req put_if_none_match_tag 400 -XPUT -H 'If-None-Match: "3"' $U/key/c --data-binary x
}

start_node cgi -id cgi -haddr 127.0.0.1:26160 -raddr 127.0.0.1:26170 "$T/cgi"
start_node fcgi -fastcgi -id fcgi -haddr 127.0.0.1:26161 -raddr 127.0.0.1:26171 "$T/fcgi"
for p in 26160 26161; do
    if ! wait_until 20 is_leader $p; then
        bad "leader_$p" "no leader on :$p within 20 s"
        finish
    fi
done
M=cgi; run_checks 26160
M=fcgi; run_checks 26161
finish
