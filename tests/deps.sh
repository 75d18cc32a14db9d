#!/bin/sh
# Installs the Debian packages keyval needs to build, run and test.
set -e
PKGS="build-essential valgrind libsqlite3-dev sqlite3 libjansson-dev libfcgi-dev lighttpd lighttpd-mod-openssl openssl socat jq curl procps iproute2 util-linux bc mandoc man-db systemd"
# make test's fuzz suite (clang and its libFuzzer runtime) and lint suite
PKGS="$PKGS clang libclang-rt-dev clang-format cppcheck"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
echo "deps: ok"
