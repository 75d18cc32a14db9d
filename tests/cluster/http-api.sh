#!/bin/sh
# The HTTP API through the real lighttpd routing of one keyval node
# (HTTP 127.0.0.1:11020, Raft 12020): key escaping, methods, errors, limits,
# conditional writes, listing, and the kv-* tools on the same node.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 11020 12020
P=11020
U=http://127.0.0.1:$P
start_node a -id a -haddr localhost:$P -raddr localhost:12020 "$T/a"
if wait_until 20 is_leader $P; then ok node_starts; else bad node_starts "no leader"; finish; fi

# req NAME EXPECTED_CODE EXPECTED_BODY CURL-ARGS...: one request; body ""
# means "don't care".
req() {
    _name=$1 _code=$2 _body=$3; shift 3
    _got=$(curl -s -m 10 -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@")
    _b=$(cat "$T/body")
    if [ "$_got" = "$_code" ] && { [ -z "$_body" ] || [ "$_b" = "$_body" ]; }; then
        ok "$_name"
    else
        bad "$_name" "curl $* gave $_got $_b, want $_code $_body"
    fi
}
header() { grep -i "^$1:" "$T/headers" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r'; }

req set_two_keys 200 "" -XPOST $U/key -d '{"user1": "batman", "a/b": "slash"}'
idx=$(jq -r .index "$T/body")
req get_key 200 '{"user1":"batman"}' $U/key/user1
check get_etag_is_index test "$(header ETag)" = "\"$idx\""
check get_x_keyval_index test "$(header X-Keyval-Index)" = "$idx"
check get_content_type_json test "$(header Content-Type)" = application/json
req get_key_with_escaped_slash 200 '{"a/b":"slash"}' $U/key/a%2Fb
# Everything after /key/ is the key: a literal slash means the same key.
req get_unescaped_slash_same_key 200 '{"a/b":"slash"}' $U/key/a/b
req get_missing 404 '{"error":"key not found"}' $U/key/nosuch
req get_stale 200 '{"user1":"batman"}' "$U/key/user1?level=stale"
req get_bad_level 400 "" "$U/key/user1?level=fast"
req get_bad_escape 400 "" "$U/key/%zz"
req get_empty_key 400 "" $U/key/
req get_utf8_key_missing 404 "" $U/key/caf%C3%A9
req get_not_utf8_key 400 "" $U/key/caf%E9
long=$(head -c 1025 /dev/zero | tr '\0' k)
req get_key_1025_bytes 400 "" "$U/key/$long"
req set_utf8_and_dots 200 "" -XPOST $U/key -d '{"café": "crème", "x/../y": "dots"}'
req get_utf8 200 '{"café":"crème"}' $U/key/caf%C3%A9
req get_dots_literal 200 '{"x/../y":"dots"}' --path-as-is $U/key/x/../y

req post_non_string 400 "" -XPOST $U/key -d '{"n": 1}'
req post_malformed 400 "" -XPOST $U/key -d '{"n": '
req post_array 400 "" -XPOST $U/key -d '["a"]'
req post_empty_object 400 "" -XPOST $U/key -d '{}'
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' a > "$T/big"
req post_over_4MiB_413_json 413 '{"error":"request body too large (max 4 MiB)"}' \
    -XPOST $U/key --data-binary @"$T/big"
# raftd takes values up to 1 MiB; a larger one is refused with raftd's 413.
{ printf '{"big": "'; head -c 1000000 /dev/zero | tr '\0' b; printf '"}'; } > "$T/big1"
req post_1MB_value 200 "" -XPOST $U/key --data-binary @"$T/big1"
size=$(curl -s -m 10 $U/key/big | jq -r '.big | length')
check get_1MB_value test "$size" = 1000000
{ printf '{"big": "'; head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' b; printf '"}'; } > "$T/big2"
req post_2MiB_value_413 413 "" -XPOST $U/key --data-binary @"$T/big2"
check post_2MiB_value_413_json test "$(jq -r .error "$T/body" | head -c 5)" != ""

req put_raw_value 200 "" -XPUT $U/key/p --data-binary 'hello world'
req get_put_value 200 '{"p":"hello world"}' $U/key/p
pidx=$(header ETag | tr -d '"')
req put_if_none_match_exists 412 "" -XPUT -H 'If-None-Match: *' $U/key/p --data-binary x
req put_if_match_stale 412 "" -XPUT -H "If-Match: \"$((pidx + 1000))\"" $U/key/p --data-binary x
req put_if_match_current 200 "" -XPUT -H "If-Match: \"$pidx\"" $U/key/p --data-binary v2
req get_after_cas 200 '{"p":"v2"}' $U/key/p
req delete_if_match_stale 412 "" -XDELETE -H "If-Match: \"$pidx\"" $U/key/p
req delete_key 200 "" -XDELETE $U/key/p
req get_deleted 404 '{"error":"key not found"}' $U/key/p
req put_if_none_match_new 200 "" -XPUT -H 'If-None-Match: *' $U/key/p --data-binary fresh

req list_prefix 200 "" "$U/key?prefix=user"
check list_has_user1 test "$(jq -c '[.items[].key]' "$T/body")" = '["user1"]'
req list_limit 200 "" "$U/key?limit=2"
check list_limit_more test "$(jq -c '[(.items | length), .more]' "$T/body")" = '[2,true]'
req list_bad_limit 400 "" "$U/key?limit=abc"

req wrong_method_405 405 "" -XPATCH $U/key/user1
check wrong_method_allow test "$(header Allow)" = "GET, PUT, DELETE"
req delete_collection_405 405 "" -XDELETE $U/key
req get_join_405 405 "" $U/join
req unknown_route_404 404 '{"error":"not found"}' $U/nothing
req cgi_dir_hidden_404 404 "" $U/.kv-cgi/status
req head_key 200 "" -I $U/key/user1
req status_200 200 "" $U/status
check status_is_leader test "$(jq -r .state "$T/body")" = leader
req join_missing_addr 400 "" -XPOST $U/join -d '{"id": "x"}'
req join_malformed 400 "" -XPOST $U/join -d 'nope'

# kv tools on the same node
check kv_set test "$("$KVSET" -d "$T/a" tool value; echo $?)" = 0
check kv_get test "$("$KVGET" -d "$T/a" tool)" = value
req kv_set_visible_over_http 200 '{"tool":"value"}' $U/key/tool
"$KVGET" -d "$T/a" nosuch 2>/dev/null
check kv_get_missing_exit_1 test $? = 1
"$KVGET" 2>/dev/null
check kv_get_usage_exit_2 test $? = 2
"$KVGET" -s "$T/none.sock" tool 2>/dev/null
check kv_get_unreachable_exit_4 test $? = 4
"$BUILD/bin/kv-del" -d "$T/a" tool
check kv_del test $? = 0
check kv_del_gone test "$("$KVGET" -d "$T/a" tool 2>/dev/null; echo $?)" = 1
# Deleting a missing key succeeds, silently, as -h and kv-del(1) say.
out=$("$BUILD/bin/kv-del" -d "$T/a" tool 2>&1)
check kv_del_missing_exit_0 test $? = 0 -a -z "$out"
check kv_del_help_exit_0_for_missing sh -c '"$1" -h | grep -q "0 deleted (also when a key did not exist)"' - "$BUILD/bin/kv-del"
printf 'from stdin' | "$KVSET" -d "$T/a" piped
check kv_set_stdin test "$("$KVGET" -d "$T/a" piped)" = "from stdin"
check kv_get_stale test "$("$KVGET" -S -d "$T/a" piped)" = "from stdin"
finish
