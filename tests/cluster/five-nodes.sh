#!/bin/sh
# Five keyval nodes (HTTP 11010-11014, Raft 12010-12014 on 127.0.0.1)
# survive two failures: kill -9 the leader and one follower, a new leader is
# elected among the three left, reads and writes go on. With a third node
# gone there is no majority: writes fail with 503 (bounded), stale reads
# still answer. Restarting the killed nodes restores service and they catch
# up; then POST /remove takes one node out. Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

require_ports 11010 11011 11012 11013 11014 12010 12011 12012 12013 12014

start_node n0 -id n0 -haddr localhost:11010 -raddr localhost:12010 "$T/n0"
if wait_until 20 is_leader 11010; then
    ok n0_starts_and_leads
else
    bad n0_starts_and_leads "no leader on :11010 within 20 s"
    finish
fi
for i in 1 2 3 4; do
    start_node n$i -id n$i -haddr localhost:1101$i -raddr localhost:1201$i \
        -join :11010 "$T/n$i"
done
five_voters() { [ "$(status_field 11010 '[.nodes[] | select(.voter)] | length')" = 5 ]; }
if wait_until 40 five_voters; then
    ok four_nodes_join
else
    bad four_nodes_join "status lists: $(status_field 11010 -c '[.nodes[] | {id,voter}]')"
    finish
fi

expect_post set_before_failures 11012 /key '{"hero": "batman", "sidekick": "robin"}'
for i in 0 1 2 3 4; do
    expect_body "read_on_n$i" 1101$i /key/hero '{"hero":"batman"}'
done

# Two failures: the leader and one follower.
leader_port=$(status_field 11010 .leader_haddr | sed 's/.*://')
case $leader_port in 1101[0-4]) ;; *) bad find_leader "leader_haddr '$leader_port'"; finish ;; esac
lead=n${leader_port#1101}
other=n0
[ "$lead" = n0 ] && other=n1
ok "find_leader_$lead"
kill_node "$lead"
kill_node "$other"
survivors=""
for i in 0 1 2 3 4; do
    [ "n$i" != "$lead" ] && [ "n$i" != "$other" ] && survivors="$survivors 1101$i"
done

new_leader() {
    for p in $survivors; do is_leader $p && { echo $p; return 0; }; done
    return 1
}
if wait_until 20 new_leader; then
    new_port=$(new_leader)
    ok "new_leader_after_two_failures_$new_port"
else
    bad new_leader_after_two_failures "no leader among$survivors within 20 s"
    finish
fi
for p in $survivors; do
    expect_body "after_failures_read_on_$p" $p /key/sidekick '{"sidekick":"robin"}'
done
expect_post write_with_three_of_five "$new_port" /key '{"villain": "joker"}'
for p in $survivors; do
    [ "$p" = "$new_port" ] && continue
    expect_post "write_via_follower_$p" $p /key "{\"from$p\": \"ok\"}"
    expect_body "read_villain_on_$p" $p /key/villain '{"villain":"joker"}'
done

# A third failure: no majority. A write must fail (503), not hang; a stale
# read still answers from the local copy.
third=""
for p in $survivors; do [ "$p" != "$new_port" ] && third=$p; done
kill_node "n${third#1101}"
left=""
for p in $survivors; do [ "$p" != "$third" ] && left="$left $p"; done
one=$(echo $left | cut -d' ' -f1)
start=$(date +%s)
http_post "$one" /key '{"lost": "write"}'
took=$(( $(date +%s) - start ))
if [ "$HTTP_CODE" = 503 ] && [ "$took" -le 20 ]; then
    ok no_majority_write_503
else
    bad no_majority_write_503 "POST gave $HTTP_CODE $BODY after ${took}s"
fi
expect_body no_majority_stale_read "$one" '/key/villain?level=stale' '{"villain":"joker"}'

# Bring the three killed nodes back with their original command lines.
for n in $lead $other n${third#1101}; do
    eval "a=\$args_$n"
    # shellcheck disable=SC2086
    start_node "$n" $a
done
any_leader() {
    for i in 0 1 2 3 4; do is_leader 1101$i && return 0; done
    return 1
}
if wait_until 30 any_leader; then ok leader_after_restarts; else bad leader_after_restarts "none within 30 s"; fi
wait_until 20 sh -c "curl -s -m 5 -XPOST http://127.0.0.1:$one/key -d '{\"after\": \"restart\"}' | grep -q index"
for i in 0 1 2 3 4; do
    if wait_until 30 body_is 1101$i '/key/after?level=stale' '{"after":"restart"}'; then
        ok "caught_up_n$i"
    else
        bad "caught_up_n$i" "GET :1101$i/key/after?level=stale gave $HTTP_CODE $BODY"
    fi
done
expect_body restarted_leader_has_villain "$leader_port" /key/villain '{"villain":"joker"}'

# POST /remove takes a follower out of the configuration; the request goes
# to another follower, which forwards it to the leader.
cur=$(status_field 11010 .leader_haddr | sed 's/.*://')
victim="" via=""
for i in 0 1 2 3 4; do
    [ "1101$i" = "$cur" ] && continue
    if [ -z "$victim" ]; then victim=$i; elif [ -z "$via" ]; then via=$i; fi
done
expect_post "remove_n$victim" 1101$via /remove "{\"id\": \"n$victim\"}"
four_voters() {
    [ "$(status_field "$cur" '[.nodes[] | select(.voter)] | length')" = 4 ] &&
    [ "$(status_field "$cur" "[.nodes[] | select(.id == \"n$victim\")] | length")" = 0 ]
}
if wait_until 15 four_voters; then
    ok removed_from_configuration
else
    bad removed_from_configuration "$(status_field "$cur" -c '[.nodes[].id]')"
fi
expect_post write_after_remove 1101$via /key '{"after": "remove"}'
expect_body read_after_remove "$cur" /key/after '{"after":"remove"}'
finish
