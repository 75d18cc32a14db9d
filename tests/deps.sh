#!/bin/sh
# Installs the Debian packages keyval needs to build, run and test.
set -e
PKGS="build-essential valgrind libsqlite3-dev sqlite3 libjansson-dev libfcgi-dev lighttpd lighttpd-mod-openssl openssl socat jq curl procps iproute2 util-linux bc mandoc man-db systemd"
# make test's fuzz suite (clang and its libFuzzer runtime) and lint suite
PKGS="$PKGS clang libclang-rt-dev clang-format cppcheck"
# the web console's browser test (tests/cluster/ui.sh): Debian's chromium,
# driven by playwright-core from the npm registry (below)
# (npm: Debian's package, unless an npm came with another nodejs package,
# which Debian's npm would conflict with)
PKGS="$PKGS chromium nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
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
# playwright-core into tests/browser/node_modules (gitignored); it drives
# /usr/bin/chromium and downloads no browser of its own. Failing here
# only makes tests/cluster/ui.sh skip.
BROWSER_DIR=$(dirname "$0")/browser
if [ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]; then
    # package.json pins the version tested (it needs node >= 20); Debian 12's
    # own nodejs is 18, for which 1.49.1 is the last that supports it
    pw=""
    node -e 'process.exit(parseInt(process.versions.node, 10) >= 20 ? 0 : 1)' 2>/dev/null ||
        pw="playwright-core@1.49.1"
    (cd "$BROWSER_DIR" && npm install --no-audit --no-fund --no-package-lock --no-save --silent $pw) ||
        echo "deps: playwright-core could not be installed (tests/cluster/ui.sh will skip)"
fi
echo "deps: ok"
