#!/bin/sh
# make install / make uninstall with DESTDIR and PREFIX: every file lands
# under DESTDIR/PREFIX in its place (bin, sbin, libexec/keyval,
# share/keyval, share/man/manN), templates are rendered for PREFIX, the
# installed keyval runs a one-node walkthrough using only the installed
# tree (raftd from sbin, CGI programs from libexec/keyval, the template
# from share/keyval), the installed tools work, and uninstall leaves no
# file behind. Ports 17100, 17110.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
cond() {
    _c_n=$1; shift
    if eval "$*"; then ok "$_c_n"; else bad "$_c_n" "$*"; fi
}
require_ports 17100 17110
MAKE=${MAKE:-make}

# --- the default PREFIX: the file list
D1=$T/dest1
if $MAKE -s install BUILD="$BUILD" DESTDIR="$D1" > "$T/install1.log" 2>&1; then
    ok install_default_prefix
else
    bad install_default_prefix "$(tail -n 5 "$T/install1.log")"
fi
(cd "$D1" && find . -type f -o -type l) | sed 's|^\./||' | sort > "$T/files1"
cond nothing_outside_prefix '! grep -v "^usr/local/" "$T/files1"'
for f in bin/keyval bin/kv-get bin/kv-set bin/kv-del bin/kv-backup bin/kv-dump \
    sbin/raftd sbin/kv-health sbin/kv-restore \
    libexec/keyval/key-get libexec/keyval/key-set libexec/keyval/status \
    share/keyval/lighttpd.conf.in share/keyval/keyval@.service share/keyval/keyval.cron \
    share/keyval/ui/index.html share/keyval/ui/keys.js \
    share/man/man1/keyval.1 share/man/man1/kv-get.1 share/man/man1/kv-backup.1 \
    share/man/man7/keyval-http.7 share/man/man8/raftd.8 share/man/man8/kv-health.8 \
    share/man/man8/keyval-cgi.8; do
    cond "installed_$f" 'grep -qx "usr/local/$f" "$T/files1"'
done
# Each program sits where its man page's section says: man1 -> bin,
# man8 -> sbin.
for m in man/*.[18]; do
    name=$(basename "$m"); sec=${name##*.}; name=${name%.*}
    [ -x "$BUILD/bin/$name" ] || continue
    dir=bin; [ "$sec" = 8 ] && dir=sbin
    cond "section${sec}_${name}_in_$dir" "grep -qx 'usr/local/$dir/$name' '$T/files1'"
done
cond no_test_programs_installed '! grep -E "test_|raft-sim" "$T/files1"'
cond programs_executable '[ -x "$D1/usr/local/bin/keyval" ] && [ -x "$D1/usr/local/sbin/raftd" ] &&
    [ -x "$D1/usr/local/libexec/keyval/key-get" ]'
cond unit_rendered_for_prefix \
    'grep -q "^ExecStart=/usr/local/bin/keyval " "$D1/usr/local/share/keyval/keyval@.service" &&
     ! grep -q "@[A-Z]*@" "$D1/usr/local/share/keyval/keyval@.service" "$D1/usr/local/share/keyval/keyval.cron"'
cond cron_path_has_sbin_and_bin \
    'grep -q "^PATH=/usr/local/sbin:/usr/local/bin:" "$D1/usr/local/share/keyval/keyval.cron"'
$MAKE -s uninstall BUILD="$BUILD" DESTDIR="$D1" > "$T/uninstall1.log" 2>&1
left=$(cd "$D1" && find . -type f -o -type l -o -name keyval)
cond uninstall_default_prefix_leaves_nothing '[ -z "$left" ]' || echo "    left: $left"

# --- another PREFIX, and a walkthrough from the installed tree only
D2=$T/dest2
P=/opt/kv
$MAKE -s install BUILD="$BUILD" DESTDIR="$D2" PREFIX=$P > "$T/install2.log" 2>&1
cond install_opt_prefix '[ -x "$D2$P/bin/keyval" ]' || tail -n 5 "$T/install2.log"
R=$D2$P
# No build tree on PATH: only the installed programs and the system's.
PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export PATH
unset KEYVAL_RAFTD
KEYVAL=$R/bin/keyval
start_node i0 -id i0 -haddr 127.0.0.1:17100 -raddr 127.0.0.1:17110 "$T/i0"
if wait_until 20 is_leader 17100; then ok installed_node_leads; else bad installed_node_leads "$(tail -n 5 "$T/i0.log")"; fi
cond installed_keyval_runs_installed_raftd 'grep -q "started raftd (pid [0-9]*): $R/sbin/raftd " "$T/i0.log"'
cond installed_lighttpd_uses_installed_cgi 'grep -q "$R/libexec/keyval" "$T/i0/lighttpd.conf"'
# The seed walkthrough: POST /key, GET /key/K.
expect_post installed_post_key 17100 /key '{"user1": "batman"}'
expect_body installed_get_key 17100 /key/user1 '{"user1":"batman"}'
cond installed_kv_get '[ "$("$R/bin/kv-get" -d "$T/i0" user1)" = batman ]'
cond installed_kv_set '"$R/bin/kv-set" -d "$T/i0" user2 robin && [ "$("$R/bin/kv-get" -d "$T/i0" user2)" = robin ]'
cond installed_kv_health '"$R/sbin/kv-health" -H 127.0.0.1:17100 -d "$T/i0" | grep -q "^KEYVAL OK"'
cond installed_kv_backup '"$R/bin/kv-backup" -q -d "$T/i0" "$T/i0.backup" && [ -s "$T/i0.backup" ]'
cond installed_kv_dump '[ "$("$R/bin/kv-dump" -f "$T/i0.backup" | wc -l)" = 2 ]'
cond installed_man_pages_found \
    '[ "$(MANPATH="$R/share/man" man -w kv-health 2>/dev/null)" = "$R/share/man/man8/kv-health.8" ]'
kill -TERM "$pid_i0"
wait "$pid_i0" 2>/dev/null
cond installed_node_stops_cleanly '! kill -0 "$pid_i0" 2>/dev/null'

$MAKE -s uninstall BUILD="$BUILD" DESTDIR="$D2" PREFIX=$P > "$T/uninstall2.log" 2>&1
left=$(cd "$D2" && find . -type f -o -type l -o -name keyval)
cond uninstall_leaves_nothing '[ -z "$left" ]' || echo "    left: $left"
cond install_refuses_relative_prefix '! $MAKE -s install BUILD="$BUILD" DESTDIR="$T/dest3" PREFIX=opt >/dev/null 2>&1'

finish
