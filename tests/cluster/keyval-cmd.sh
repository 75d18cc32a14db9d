#!/bin/sh
# The keyval command itself (HTTP 127.0.0.1:11040-11041, Raft 12040-12041):
# usage errors, DATADIR creation, taken ports, a second keyval (or a
# raftd) on a live DATADIR refused before it touches anything, supervision
# (a dying child stops the node with a message and exit 1; SIGINT stops
# everything with exit 0; children do not outlive a killed keyval), and a
# join that gets no answer.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 11040 11041 12040 12041

# expect_exit NAME CODE GREP-PATTERN keyval-args...: runs keyval to
# completion (bounded) and checks exit status and a message on stderr.
expect_exit() {
    _n=$1 _c=$2 _pat=$3; shift 3
    timeout 20 "$KEYVAL" "$@" >"$T/out" 2>"$T/err"
    _rc=$?
    if [ "$_rc" = "$_c" ] && grep -q -- "$_pat" "$T/err"; then
        ok "$_n"
    else
        bad "$_n" "keyval $* exited $_rc (want $_c), stderr: $(head -c 300 "$T/err")"
    fi
}
expect_exit no_datadir 2 "no DATADIR given"
expect_exit unknown_option 2 "unknown option -port" -port 1 "$T/x"
expect_exit missing_value 2 "needs a value" "$T/x" -haddr
expect_exit bad_port 2 "port must be 1..65535" -haddr localhost:99999 "$T/x"
expect_exit bad_addr 2 "expected HOST:PORT" -raddr nocolon "$T/x"
expect_exit bad_id 2 "bad -id" -id 'a b' "$T/x"
expect_exit two_datadirs 2 "more than one DATADIR" "$T/x" "$T/y"
expect_exit bad_datadir_chars 2 "bad DATADIR" "$T/a,b"
# Bind every address, advertise none: refused, with the way out.
expect_exit unspecified_haddr_refused 2 "cannot advertise HTTP address 0.0.0.0:11049.*pass -hadv" \
    -haddr 0.0.0.0:11049 "$T/x"
expect_exit unspecified_radv_refused 2 "cannot advertise Raft address \[::\]:12049.*pass -radv" \
    -raddr '[::]:12049' "$T/x"
check usage_errors_create_nothing test ! -e "$T/x"
timeout 5 "$KEYVAL" -h >"$T/out" 2>&1
check help_exit_0 test $? = 0
check help_shows_usage grep -q "usage: keyval \[-id ID\] \[-haddr HOST:PORT\] \[-raddr HOST:PORT\] \[-join ADDR\] DATADIR" "$T/out"

# A node: DATADIR made with mode 0700, config rendered, default ID.
start_node a -haddr localhost:11040 -raddr localhost:12040 "$T/deep/a"
if wait_until 20 is_leader 11040; then ok node_starts; else bad node_starts "no leader"; finish; fi
check datadir_mode_0700 test "$(stat -c %a "$T/deep/a")" = 700
check config_rendered grep -q 'server.port = 11040' "$T/deep/a/lighttpd.conf"
check default_id_from_raddr test "$(status_field 11040 .id)" = localhost-12040
check step_lines_printed grep -q "keyval: started lighttpd (pid" "$T/a.log"

# A second keyval on the live node's DATADIR is refused before it writes
# or starts anything: the node keeps its config, its lighttpd and serving.
conf_sum=$(cksum <"$T/deep/a/lighttpd.conf")
lighttpd_pid=$(cat "$T/deep/a/lighttpd.pid")
expect_exit second_keyval_refused 1 "$T/deep/a is in use by keyval (pid $pid_a)" \
    -id other -haddr localhost:11041 -raddr localhost:12041 "$T/deep/a"
check second_keyval_kept_config test "$(cksum <"$T/deep/a/lighttpd.conf")" = "$conf_sum"
check second_keyval_kept_lighttpd_pid test "$(cat "$T/deep/a/lighttpd.pid" 2>/dev/null)" = "$lighttpd_pid"
check second_keyval_started_nothing sh -c '! ss -ltnH "sport = :11041 or sport = :12041" | grep -q .'
expect_post first_node_still_writes 11040 /key '{"second":"refused"}'
check first_node_still_listens_on_11040 grep -q 'server.port = 11040' "$T/deep/a/lighttpd.conf"
# A raftd holding DATADIR/raftd.pid (here flock(1) in its place) counts too.
mkdir -p "$T/held" && echo 4242 >"$T/held/raftd.pid"
flock "$T/held/raftd.pid" sleep 30 9>&- &
holder=$!
all_pids="$all_pids $holder"
wait_until 5 sh -c "! flock -n '$T/held/raftd.pid' true"
expect_exit raftd_lock_refused 1 "is in use by raftd (pid 4242)" \
    -haddr localhost:11041 -raddr localhost:12041 "$T/held"
check raftd_lock_wrote_nothing test ! -e "$T/held/lighttpd.conf"
kill "$holder" 2>/dev/null

# Taken ports are refused up front.
expect_exit http_port_taken 1 "port 11040 is already in use" \
    -haddr localhost:11040 -raddr localhost:12041 "$T/b"
expect_exit raft_port_taken 1 "port 12040 is already in use" \
    -haddr localhost:11041 -raddr localhost:12040 "$T/b"

# kill -9 of a child: keyval names it, stops the rest, exits 1.
kids=$(children_of "$pid_a")
lpid=""
for k in $kids; do
    [ "$(cat /proc/$k/comm 2>/dev/null)" = lighttpd ] && lpid=$k
done
if [ -z "$lpid" ]; then
    bad find_lighttpd "no lighttpd among children $kids"
else
    kill -9 "$lpid"
    wait "$pid_a"
    rc=$?
    check child_death_exit_1 test "$rc" = 1
    check child_death_named grep -q "lighttpd (pid $lpid) was killed by signal 9" "$T/a.log"
    gone() { for k in $kids; do kill -0 "$k" 2>/dev/null && return 1; done; return 0; }
    if wait_until 10 gone; then ok child_death_stops_others; else bad child_death_stops_others "still alive"; fi
fi

# Restart on the same DATADIR: existing state, no -bootstrap; SIGINT stops all.
start_node a2 -haddr localhost:11040 -raddr localhost:12040 "$T/deep/a"
if wait_until 20 is_leader 11040; then ok restart_same_datadir; else bad restart_same_datadir "no leader"; fi
check restart_uses_state grep -q "(existing state)" "$T/a2.log"
check restart_no_bootstrap test "$(grep -c -- '-bootstrap' "$T/a2.log")" = 0
kids=$(children_of "$pid_a2")
kill -INT "$pid_a2"
wait "$pid_a2"
check sigint_exit_0 test $? = 0
gone() { for k in $kids; do kill -0 "$k" 2>/dev/null && return 1; done; return 0; }
if wait_until 10 gone; then ok sigint_stops_children; else bad sigint_stops_children "still alive"; fi

# kill -9 of keyval: its children stop too.
start_node a3 -haddr localhost:11040 -raddr localhost:12040 "$T/deep/a"
wait_until 20 is_leader 11040
kids=$(children_of "$pid_a3")
check three_children test "$(echo $kids | wc -w)" = 3
kill -9 "$pid_a3"
wait "$pid_a3" 2>/dev/null
if wait_until 10 gone; then ok children_do_not_outlive_keyval; else bad children_do_not_outlive_keyval "still alive"; fi
if wait_until 10 sh -c '! ss -ltnH "sport = :11040" | grep -q .'; then
    ok port_released
else
    bad port_released "11040 still listening"
fi

# -join that gets no answer (curl replaced by /bin/false) keeps retrying,
# says so, and SIGTERM still stops the node cleanly.
KEYVAL_CURL=/bin/false timeout 30 "$KEYVAL" -id b -haddr localhost:11041 \
    -raddr localhost:12041 -join :11040 "$T/nojoin" >"$T/out" 2>"$T/err" 9>&- &
jpid=$!
all_pids="$all_pids $jpid"
sleep 3
kill -TERM "$jpid"
wait "$jpid"
check join_retry_stops_on_sigterm test $? = 0
check join_retry_said_so grep -q "retrying" "$T/out"
finish
