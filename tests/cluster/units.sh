#!/bin/sh
# etc/keyval@.service and etc/keyval.cron: the unit passes systemd-analyze
# verify (skipped, with a note, where systemd-analyze is missing); raftd
# sends READY=1 to $NOTIFY_SOCKET; the cron entries, run as cron would run
# them against a real node, log nothing while it is healthy, log a
# CRITICAL line through logger when it is down, and write a checked daily
# backup. Ports 17400, 17410.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
cond() {
    _c_n=$1; shift
    if eval "$*"; then ok "$_c_n"; else bad "$_c_n" "$*"; fi
}
require_ports 17400 17410

# --- the systemd unit
sed -e "s|@BINDIR@|$BUILD/bin|g" -e "s|@SBINDIR@|$BUILD/bin|g" etc/keyval@.service.in \
    > "$T/keyval@.service"
ln -s "keyval@.service" "$T/keyval@node0.service"
cond unit_rendered '! grep -q @ "$T/keyval@.service" || ! grep "@[A-Z]*@" "$T/keyval@.service"'
for key in Type=notify User=keyval StateDirectory=keyval/%i RuntimeDirectory=keyval/%i \
    Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
    cond "unit_has_$key" 'grep -qx "$key" "$T/keyval@.service"'
done
cond unit_runs_keyval_on_the_state_directory \
    'grep -qx "ExecStart=$BUILD/bin/keyval -id %i \$KEYVAL_ARGS %S/keyval/%i" "$T/keyval@.service"'
if command -v systemd-analyze >/dev/null 2>&1; then
    out=$(cd "$T" && systemd-analyze verify --man=no "$T/keyval@node0.service" 2>&1); rc=$?
    cond "systemd_analyze_verify" '[ "$rc" = 0 ] && [ -z "$out" ]' || echo "    $out"
    # Negative control: verify does notice a broken unit.
    sed 's/^Type=notify/Type=notify-typo/' "$T/keyval@.service" > "$T/broken@.service"
    out=$(cd "$T" && systemd-analyze verify --man=no "$T/broken@x.service" 2>&1)
    cond verify_catches_a_broken_unit '[ -n "$out" ]'
else
    echo "skip systemd_analyze_verify: systemd-analyze is not installed (not counted as passed)"
fi

# --- READY=1 on $NOTIFY_SOCKET (raftd, a child of keyval, sends it)
socat -u "UNIX-RECV:$T/notify.sock" "CREATE:$T/notify.out" 9>&- &
notify_pid=$!
all_pids="$all_pids $notify_pid"
wait_until 5 test -S "$T/notify.sock"
NOTIFY_SOCKET=$T/notify.sock start_node c0 -id c0 -haddr 127.0.0.1:17400 -raddr 127.0.0.1:17410 "$T/c0"
if wait_until 20 grep -q 'READY=1' "$T/notify.out"; then
    ok "ready_notification ($(tr '\n' ' ' < "$T/notify.out"))"
else
    bad ready_notification "nothing on NOTIFY_SOCKET: $(cat "$T/notify.out" 2>/dev/null)"
fi
kill "$notify_pid" 2>/dev/null
wait_until 20 is_leader 17400 || { bad setup "no leader on :17400"; finish; }
http_post 17400 /key '{"cron":"yes"}'

# --- the cron entries, run the way cron runs them
sed -e "s|@BINDIR@|$BUILD/bin|g" -e "s|@SBINDIR@|$BUILD/bin|g" etc/keyval.cron.in > "$T/keyval.cron"
grep -vE '^[[:space:]]*(#|$)' "$T/keyval.cron" | grep -vE '^[A-Z_]+=' > "$T/entries"
cond cron_has_two_entries '[ "$(wc -l < "$T/entries")" = 2 ]'
cond cron_every_minute_runs_kv_health \
    'grep -qE "^\* \* \* \* \* keyval kv-health -q .*\| logger " "$T/entries"'
cond cron_daily_checks_and_backs_up \
    'grep -E "^[0-9]+ [0-9]+ \* \* \* keyval " "$T/entries" | grep -q "PRAGMA quick_check" &&
     grep -E "^[0-9]+ [0-9]+ \* \* \* keyval " "$T/entries" | grep -q "kv-backup"'
# A fake logger records what would reach syslog.
mkdir -p "$T/fakebin"
cat > "$T/fakebin/logger" <<EOF
#!/bin/sh
while IFS= read -r line; do echo "logger \$*: \$line" >> "$T/syslog"; done
EOF
chmod 755 "$T/fakebin/logger"
cronpath=$(sed -n 's/^PATH=//p' "$T/keyval.cron")
# run_entry N: the Nth entry's command (after 5 time fields and the user),
# with cron's "\%" -> "%", in cron's environment from the file.
run_entry() {
    raw=$(sed -n "${1}p" "$T/entries" | cut -d' ' -f7-)
    if printf '%s' "$raw" | grep -q '\(^\|[^\\]\)%'; then
        echo "unescaped % (cron would cut the command there) in: $raw" >> "$T/syslog"
        return 1
    fi
    cmd=$(printf '%s' "$raw" | sed 's/\\%/%/g')
    env -i HOME="$T" SHELL=/bin/sh PATH="$T/fakebin:$cronpath" \
        KEYVAL_DATADIR="$T/c0" KEYVAL_HADDR=127.0.0.1:17400 KEYVAL_BACKUPS="$T/backups" \
        /bin/sh -c "$cmd"
}
: > "$T/syslog"
run_entry 1
cond health_entry_logs_nothing_when_healthy '[ ! -s "$T/syslog" ]' || cat "$T/syslog"
run_entry 2
cond daily_entry_logs_nothing_when_healthy '[ ! -s "$T/syslog" ]' || cat "$T/syslog"
backup=$(ls "$T/backups"/raft-*.db 2>/dev/null | head -n 1)
cond daily_entry_writes_a_backup '[ -n "$backup" ] && [ "$(sqlite3 "$backup" "PRAGMA quick_check")" = ok ] &&
    [ "$(sqlite3 "$backup" "SELECT CAST(value AS TEXT) FROM kv WHERE CAST(key AS TEXT) = '\''cron'\''")" = yes ]'
# Corrupt a copy of the database: the daily entry logs the quick_check failure.
mkdir -p "$T/bad"
sqlite3 "$T/bad/raft.db" "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB); INSERT INTO kv VALUES('a','b');"
dd if=/dev/urandom of="$T/bad/raft.db" bs=1 count=200 seek=4000 conv=notrunc 2>/dev/null
dd if=/dev/zero of="$T/bad/raft.db" bs=1 count=100 seek=20 conv=notrunc 2>/dev/null
: > "$T/syslog"
cmd2=$(sed -n 2p "$T/entries" | cut -d' ' -f7- | sed 's/\\%/%/g')
env -i HOME="$T" PATH="$T/fakebin:$cronpath" KEYVAL_DATADIR="$T/bad" KEYVAL_BACKUPS="$T/backups2" \
    /bin/sh -c "$cmd2"
cond daily_entry_logs_a_bad_database 'grep -q "logger -t kv-maint -p daemon.err: quick_check" "$T/syslog"' ||
    cat "$T/syslog"
kill_node c0
: > "$T/syslog"
run_entry 1
cond health_entry_logs_critical_when_down \
    'grep -q "logger -t kv-health -p daemon.warning: KEYVAL CRITICAL" "$T/syslog"' || cat "$T/syslog"

finish
