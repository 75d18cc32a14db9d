#!/bin/sh
# kv-certs for separate hosts: one CA, one certificate per node with only
# that node's own names and addresses (NODE=HOSTS), serial numbers unique
# even for certificates made in the same second (two runs and one run with
# two nodes), and a node added later signed by the same CA. No ports.
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc
CERTS=$BUILD/bin/kv-certs
command -v openssl >/dev/null 2>&1 || { bad setup "openssl not installed"; finish; }
serial() { openssl x509 -in "$T/pki/$1/node.crt" -noout -serial | sed 's/^serial=//'; }
san() { openssl x509 -in "$T/pki/$1/node.crt" -noout -ext subjectAltName | tail -n 1 |
    sed 's/^ *//'; }

# Two nodes in one run, a third in a second run, all within a second or two.
"$CERTS" "$T/pki" n1=10.0.0.1 n2=10.0.0.2,n2.example >"$T/out" 2>&1
check one_run_ok [ $? = 0 ]
"$CERTS" "$T/pki" n3=10.0.0.3 >>"$T/out" 2>&1
check second_run_ok [ $? = 0 ]
s1=$(serial n1) s2=$(serial n2) s3=$(serial n3)
echo "# serials: $s1 $s2 $s3"
check serials_differ_in_one_run sh -c '[ -n "$1" ] && [ "$1" != "$2" ]' - "$s1" "$s2"
check serials_differ_across_runs sh -c \
    '[ -n "$1" ] && [ "$1" != "$2" ] && [ "$1" != "$3" ]' - "$s3" "$s1" "$s2"
check n1_has_only_its_ip [ "$(san n1)" = "DNS:n1, IP Address:10.0.0.1" ]
check n2_has_only_its_names [ "$(san n2)" = "DNS:n2, IP Address:10.0.0.2, DNS:n2.example" ]
check n3_has_only_its_ip [ "$(san n3)" = "DNS:n3, IP Address:10.0.0.3" ]
# The node added later is signed by the same CA as the others.
check added_node_same_ca openssl verify -CAfile "$T/pki/n1/ca.crt" "$T/pki/n3/node.crt"
check one_ca cmp -s "$T/pki/n1/ca.crt" "$T/pki/n3/ca.crt"
# -H still applies to nodes given without =HOSTS.
# The man page's way, one run per host with -H, twice in the same second.
"$CERTS" -H 10.0.0.9 "$T/pki" n9 >>"$T/out" 2>&1
"$CERTS" -H 10.0.0.8 "$T/pki" n8 >>"$T/out" 2>&1
check dash_H_for_plain_node [ "$(san n9)" = "DNS:n9, IP Address:10.0.0.9" ]
check dash_H_runs_serials_differ [ "$(serial n9)" != "$(serial n8)" ]
"$CERTS" "$T/pki" 'n4=10.0.0.4 x' >"$T/bad" 2>&1
check bad_hosts_refused [ $? = 2 ]
finish
