#!/bin/sh
# kv-certs - make a throwaway certificate authority and node certificates
# for a keyval cluster's peer mutual TLS (keyval -peer-tls) and HTTPS
# (keyval -https-cert/-https-key), with openssl.
PROG=kv-certs

usage() {
    cat <<'USAGE'
usage: kv-certs [-d DAYS] [-H HOSTS] [-b BITS] DIR NODE[=HOSTS]...
Creates DIR/ca.crt and DIR/ca.key (a new CA, unless DIR/ca.key exists,
then that CA signs), and for each NODE a directory DIR/NODE holding
  ca.crt     the cluster CA (what peers and clients verify against)
  node.crt   NODE's certificate, signed by the CA (CN=NODE)
  node.key   its private key (mode 0600)
which is what keyval -peer-tls DIR/NODE takes; the same pair serves as
-https-cert DIR/NODE/node.crt -https-key DIR/NODE/node.key.
  -d DAYS    validity in days (default 30)
  -H HOSTS   comma-separated host names and IP addresses the certificates
             are valid for, besides NODE itself
             (default localhost,127.0.0.1,::1)
  NODE=HOSTS this node's own names and addresses instead of -H: give each
             host its own, so a peer's name check means something
Serial numbers are random (128 bits), so certificates made at any time by
the same CA never share one. To add a node later, run kv-certs again on
the same DIR with the new NODE=HOSTS: the existing CA signs it.
  -b BITS    RSA key size (default 2048)
Keys are written with umask 077. Exit status 0 ok, 1 openssl failed,
2 usage.
USAGE
}
# The usage lines alone, for a usage error (-h prints the rest).
short_usage() { usage | awk '/^usage:/ { u = 1; print; next } u && /^[ \t]/ { print; next } { exit }'; }

days=30
hosts=localhost,127.0.0.1,::1
bits=2048
while getopts :d:H:b:h opt; do
    case $opt in
    d) days=$OPTARG ;;
    H) hosts=$OPTARG ;;
    b) bits=$OPTARG ;;
    h) usage; exit 0 ;;
    :) echo "$PROG: option -$OPTARG needs a value" >&2; short_usage >&2; exit 2 ;;
    *) echo "$PROG: unknown option -$OPTARG" >&2; short_usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $days in ''|*[!0-9]*) echo "$PROG: -d: expected a number of days" >&2; exit 2 ;; esac
case $bits in ''|*[!0-9]*) echo "$PROG: -b: expected a number of bits" >&2; exit 2 ;; esac
case $hosts in *[!A-Za-z0-9.,:_-]*) echo "$PROG: -H: bad character in $hosts" >&2; exit 2 ;; esac
if [ $# -lt 2 ]; then
    usage >&2
    exit 2
fi
dir=$1
shift
for a in "$@"; do
    n=${a%%=*}
    case $n in
    ''|*[!A-Za-z0-9._-]*|.|..) echo "$PROG: bad node name '$n': use [A-Za-z0-9._-]" >&2; exit 2 ;;
    esac
    case $a in
    *=*[!A-Za-z0-9.,:_-]*) echo "$PROG: $n=: bad character in ${a#*=}" >&2; exit 2 ;;
    *=) echo "$PROG: $n=: no hosts given" >&2; exit 2 ;;
    esac
done
command -v openssl >/dev/null 2>&1 || { echo "$PROG: openssl not found" >&2; exit 1; }

umask 077
mkdir -p "$dir" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() { echo "$PROG: $*" >&2; [ -s "$tmp/err" ] && sed 's/^/  /' "$tmp/err" >&2; exit 1; }

if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey "rsa:$bits" -nodes -sha256 -days "$days" \
        -subj "/CN=keyval cluster CA $(date -u +%Y%m%dT%H%M%SZ)-$$" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>"$tmp/err" || fail "cannot create the CA"
    echo "$PROG: new CA $dir/ca.crt"
fi

san() { # NODE [HOSTS] -> subjectAltName value
    out="DNS:$1"
    hosts=${2:-$default_hosts}
    old_ifs=$IFS; IFS=,
    for h in $hosts; do
        [ -z "$h" ] && continue
        case $h in
        *:*|*[0-9].[0-9]*[0-9]) # IPv6 or IPv4-looking
            if echo "$h" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$|:'; then
                out="$out,IP:$h"
            else
                out="$out,DNS:$h"
            fi ;;
        *) out="$out,DNS:$h" ;;
        esac
    done
    IFS=$old_ifs
    echo "$out"
}

default_hosts=$hosts
# A random positive 128-bit serial (RFC 5280: at most 20 bytes, positive):
# two certificates of one CA never share a serial, whenever they are made.
new_serial() {
    h=$(openssl rand -hex 16) || return 1
    printf '0x%x%s\n' $((0x$(printf %.1s "$h") & 7)) "${h#?}"
}
for a in "$@"; do
    n=${a%%=*}
    nh=""
    case $a in *=*) nh=${a#*=} ;; esac
    mkdir -p "$dir/$n" || exit 1
    cat >"$tmp/ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$(san "$n" "$nh")
EXT
    openssl req -new -newkey "rsa:$bits" -nodes -sha256 -subj "/CN=$n" \
        -keyout "$dir/$n/node.key" -out "$tmp/csr" 2>"$tmp/err" || fail "cannot make a key for $n"
    serial=$(new_serial) || fail "openssl rand failed"
    openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "$serial" -days "$days" -sha256 -extfile "$tmp/ext" \
        -out "$dir/$n/node.crt" 2>"$tmp/err" || fail "cannot sign the certificate of $n"
    cp "$dir/ca.crt" "$dir/$n/ca.crt" || exit 1
    chmod 600 "$dir/$n/node.key"
    chmod 644 "$dir/$n/node.crt" "$dir/$n/ca.crt"
    echo "$PROG: $dir/$n/node.crt ($(san "$n" "$nh"), serial $serial)"
done
