#!/bin/sh
# kv-health through each state a monitor meets: a healthy leader and
# follower (exit 0, one line, -q silent), a lagging follower seen from the
# leader (raftd of a follower stopped with SIGSTOP while writes go on: 1 or
# 2 by threshold), a log without snapshots and a full disk by threshold, a
# hung raftd (SIGSTOP: 2; GET /health says so within seconds), no HTTP API (2), a node whose two peers were
# killed (no leader: 2), bad usage (3). Ports 17200-17202, 17210-17212.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
# cond NAME 'SHELL CONDITION': ok when the whole condition holds.
cond() {
    _c_n=$1; shift
    if eval "$*"; then ok "$_c_n"; else bad "$_c_n" "$*"; fi
}
HEALTH=$BUILD/bin/kv-health
[ -x "$HEALTH" ] || { bad setup "$HEALTH not built"; finish; }

require_ports 17200 17201 17202 17210 17211 17212

start_node n0 -id n0 -haddr 127.0.0.1:17200 -raddr 127.0.0.1:17210 "$T/n0"
wait_until 20 is_leader 17200 || { bad setup "no leader on :17200"; finish; }
start_node n1 -id n1 -haddr 127.0.0.1:17201 -raddr 127.0.0.1:17211 -join 127.0.0.1:17200 "$T/n1"
start_node n2 -id n2 -haddr 127.0.0.1:17202 -raddr 127.0.0.1:17212 -join 127.0.0.1:17200 "$T/n2"
three_active() {
    [ "$(status_field 17200 '[.nodes[] | select(.voter and .active)] | length')" = 3 ]
}
wait_until 30 three_active || { bad setup "3 active voters: $(status_field 17200 -c .nodes)"; finish; }
http_post 17200 /key '{"a":"1"}'
wait_until 10 body_is 17202 '/key/a?level=stale' '{"a":"1"}'

# run_health ARGS...: sets OUT (stdout), RC, LINES (number of lines).
run_health() {
    OUT=$("$HEALTH" "$@" 2>"$T/health.err")
    RC=$?
    LINES=$(printf '%s' "$OUT" | grep -c '')
}
# expect_health NAME RC PATTERN ARGS...: exit RC, one line matching PATTERN.
expect_health() {
    _eh_n=$1 _eh_rc=$2 _eh_pat=$3; shift 3
    run_health "$@"
    if [ "$RC" = "$_eh_rc" ] && [ "$LINES" = 1 ] && printf '%s' "$OUT" | grep -qE "$_eh_pat"; then
        ok "$_eh_n ($OUT)"
    else
        bad "$_eh_n" "kv-health $* gave exit $RC, $LINES lines: $OUT $(cat "$T/health.err")"
    fi
}
raftd_of() { ps -o pid=,comm= --ppid "$1" | awk '$2 == "raftd" { print $1 }'; }

expect_health healthy_leader 0 '^KEYVAL OK - node n0 is leader' -H 127.0.0.1:17200 -d "$T/n0"
# A healthy cluster stays OK across check-quorum periods: the leader's
# "active" must not blink off for a follower that answers every heartbeat
# (it once did, just after each check-quorum reset).
blinks=""
i=0
while [ $i -lt 30 ]; do
    run_health -H 127.0.0.1:17200
    [ "$RC" = 0 ] || blinks="$blinks [$RC: $OUT]"
    sleep 0.1
    i=$((i + 1))
done
check healthy_leader_stays_ok_30_times [ -z "$blinks" ]
[ -n "$blinks" ] && echo "# not OK:$blinks"
expect_health healthy_follower 0 '^KEYVAL OK - node n1 is follower.*leader n0' \
    -H 127.0.0.1:17201 -d "$T/n1"
# -d alone: the node's own HTTP address comes from DATADIR/node.conf.
KEYVAL_HADDR= expect_health address_from_datadir 0 '^KEYVAL OK - node n1 is follower' -d "$T/n1"
run_health -q -H 127.0.0.1:17200 -d "$T/n0"
cond quiet_when_ok '[ "$RC" = 0 ] && [ -z "$OUT" ]'
KEYVAL_HADDR=127.0.0.1:17201 KEYVAL_DATADIR=$T/n1 run_health
cond address_from_environment '[ "$RC" = 0 ] && printf '\''%s'\'' "$OUT" | grep -q '\''node n1'\'''

expect_health log_without_snapshot_warns 1 \
    '^KEYVAL WARNING - [0-9]+ log entries since the last snapshot' -H 127.0.0.1:17200 -s 1
expect_health disk_warning 1 '^KEYVAL WARNING - disk [0-9]+% full' \
    -H 127.0.0.1:17200 -d "$T/n0" -w 0 -c 101
expect_health disk_critical 2 '^KEYVAL CRITICAL - disk [0-9]+% full' \
    -H 127.0.0.1:17200 -d "$T/n0" -w 0 -c 0

# A lagging follower: n2's raftd stopped while 30 writes commit on n0+n1.
r2=$(raftd_of "$pid_n2")
kill -STOP "$r2"
i=0
while [ $i -lt 30 ]; do
    http_post 17200 /key "{\"k$i\":\"v$i\"}"
    i=$((i + 1))
done
check writes_commit_without_n2 [ "$HTTP_CODE" = 200 ]
expect_health lagging_follower_warns 1 '^KEYVAL WARNING - .*(follower n2 lags [0-9]+ entries|not heard from n2)' \
    -H 127.0.0.1:17200 -l 20 -L 100000
expect_health lagging_follower_critical 2 '^KEYVAL CRITICAL - .*follower n2 lags [0-9]+ entries' \
    -H 127.0.0.1:17200 -l 5 -L 20
# The same raftd, hung: its own node is CRITICAL.
expect_health hung_raftd 2 '^KEYVAL CRITICAL - raftd not answering on .*n2/raftd.sock' \
    -H 127.0.0.1:17202 -d "$T/n2" -t 2
# GET /health on the node whose raftd is paused: an answer (503, raftd
# does not answer) within a client's 10 s, not silence until 15 s.
_h0=$(date +%s%N)
http_get 17202 /health
echo "# figure: GET /health with raftd paused answered $HTTP_CODE in" \
    "$((($(date +%s%N) - _h0) / 1000000)) ms"
cond health_of_paused_raftd_answers \
    '[ "$HTTP_CODE" = 503 ] && printf "%s" "$BODY" | grep -q "raftd unavailable.*within"'
kill -CONT "$r2"
caught_up() { [ "$(status_field 17200 '[.nodes[] | select(.id == "n2") | .match] | .[0]')" = \
    "$(status_field 17200 .last_log_index)" ]; }
wait_until 20 caught_up
expect_health follower_caught_up 0 '^KEYVAL OK' -H 127.0.0.1:17200 -l 20

expect_health no_http_api 2 '^KEYVAL CRITICAL - HTTP API at 127.0.0.1:17209 not answering' \
    -H 127.0.0.1:17209 -t 2

# No leader: n0 and n1 killed for good, n2 left alone.
kill_node n0
kill_node n1
no_leader() {
    run_health -H 127.0.0.1:17202 -d "$T/n2" -t 2
    [ "$RC" = 2 ] && printf '%s' "$OUT" | grep -q 'no leader'
}
if wait_until 30 no_leader; then
    ok "no_leader ($OUT)"
else
    bad no_leader "exit $RC: $OUT"
fi

expect_health bad_option 3 '^KEYVAL UNKNOWN - unknown option -Z$' -Z
# stderr: one error line and the short usage (3 lines), no shell message.
check bad_option_stderr_short sh -c '[ "$(wc -l <"$1")" = 4 ] &&
    [ "$(head -n 1 "$1")" = "kv-health: unknown option -Z" ] &&
    sed -n 2p "$1" | grep -q "^usage: kv-health "' - "$T/health.err"
expect_health missing_value 3 '^KEYVAL UNKNOWN - option -t needs a value$' -t
expect_health bad_number 3 "^KEYVAL UNKNOWN - -l: expected a number, got 'many'" -l many
expect_health extra_argument 3 '^KEYVAL UNKNOWN - unexpected argument: extra' extra

finish
