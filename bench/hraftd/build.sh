#!/usr/bin/env bash
# Rebuild hraftd (github.com/otoolep/hraftd) offline on Debian 12 (bookworm)
# using only Debian's Go 1.19 and Debian's hashicorp/raft 1.1.2 packages.
#
# Usage: build.sh SRC_DIR [OUT_DIR]
#   SRC_DIR  an extracted hraftd source tree (e.g. `git archive HEAD | tar -x`),
#            tested with commit 97a01648bd9e2dfc4c95c3c25a3621dd8d153adb
#   OUT_DIR  where the binary goes (default /tmp/hraftd-bin) -> OUT_DIR/hraftd
# Env:
#   SKIP_APT=1   do not run apt-get (packages already installed)
#   RUN_TESTS=1  also run `go test ./...` (tests bind ephemeral 127.0.0.1:0 ports)
#
# The source tree given in SRC_DIR is not modified; it is copied into a
# private GOPATH under a temp dir and patched there.
set -euo pipefail

SRC=${1:?usage: $0 SRC_DIR [OUT_DIR]}
OUT=${2:-/tmp/hraftd-bin}
SRC=$(cd "$SRC" && pwd)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) # the build runs in another directory
[ -f "$SRC/main.go" ] && [ -f "$SRC/store/store.go" ] || { echo "not an hraftd tree: $SRC" >&2; exit 1; }

# 1. Debian packages: Go 1.19 + raft 1.1.2 + raft-boltdb (boltdb/bolt based) and their -dev deps.
if [ "${SKIP_APT:-0}" != 1 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    golang-go golang-github-hashicorp-raft-dev golang-github-hashicorp-raft-boltdb-dev
fi

# 2. Private GOPATH (GOPATH mode: the tree's go.mod asks for go 1.21 / toolchain
#    go1.23.3 and raft v1.7.0, which Go 1.19 offline cannot satisfy).
WORK=$(mktemp -d /tmp/hraftd-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PKG=$WORK/gopath/src/github.com/otoolep/hraftd
mkdir -p "$(dirname "$PKG")"
cp -a "$SRC" "$PKG"
rm -rf "$PKG/.git"

export GO111MODULE=off
export GOPATH=$WORK/gopath:/usr/share/gocode
export GOCACHE=$WORK/gocache
export GOFLAGS=
export GOPROXY=off
export CGO_ENABLED=0

# 3. Minimal patch for raft 1.1.2 / raft-boltdb (v1):
#    a) raft-boltdb/v2 (go.etcd.io/bbolt) is not packaged; Debian's
#       github.com/hashicorp/raft-boltdb has the same New(Options{Path: ...}) API
#       (backed by github.com/boltdb/bolt instead of go.etcd.io/bbolt).
#    b) (*raft.Raft).LeaderWithID() does not exist in raft 1.1.2 (added in a later 1.x);
#       replace it with a helper that maps Leader()'s address to its ID via the
#       cluster configuration.
ST=$PKG/store/store.go
sed -i 's#"github.com/hashicorp/raft-boltdb/v2"#"github.com/hashicorp/raft-boltdb"#' "$ST"
if grep -q 's\.raft\.LeaderWithID()' "$ST"; then
  sed -i 's#s\.raft\.LeaderWithID()#leaderWithID(s.raft)#' "$ST"
  cat > "$PKG/store/raft11_compat.go" <<'EOF'
package store

import (
	"net"

	"github.com/hashicorp/raft"
)

// leaderWithID stands in for (*raft.Raft).LeaderWithID, which hashicorp/raft
// 1.1.x lacks: it returns Leader()'s address and the ID of the server with that
// address in the current configuration ("", "" when there is no known leader).
// Addresses are compared literally first, then after resolving, because the
// leader advertises its resolved transport address (e.g. 127.0.0.1:12000)
// while joined nodes are stored as given (e.g. localhost:12001).
func leaderWithID(r *raft.Raft) (raft.ServerAddress, raft.ServerID) {
	addr := r.Leader()
	if addr == "" {
		return "", ""
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return addr, ""
	}
	servers := f.Configuration().Servers
	for _, srv := range servers {
		if srv.Address == addr {
			return addr, srv.ID
		}
	}
	if la, err := net.ResolveTCPAddr("tcp", string(addr)); err == nil {
		for _, srv := range servers {
			if sa, err := net.ResolveTCPAddr("tcp", string(srv.Address)); err == nil && sa.String() == la.String() {
				return addr, srv.ID
			}
		}
	}
	return addr, ""
}
EOF
fi

# Record exactly what was changed relative to SRC_DIR.
mkdir -p "$OUT"
(cd "$WORK/gopath/src/github.com/otoolep" && diff -ruN --exclude=.git "$SRC" hraftd > "$OUT/hraftd-raft112.diff" || true)

# 4. Build (and optionally test).
cd "$PKG"
go version
go vet ./...
if [ "${RUN_TESTS:-0}" = 1 ]; then
  go test ./...
fi
mkdir -p "$OUT"
go build -trimpath -o "$OUT/hraftd.new" .
mv -f "$OUT/hraftd.new" "$OUT/hraftd"
echo "built $OUT/hraftd"
