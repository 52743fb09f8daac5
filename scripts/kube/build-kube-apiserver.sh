#!/usr/bin/env bash
# Build a real kube-apiserver (Kubernetes v1.20.2) from Debian's source package, offline.
#
# Why: no prebuilt Kubernetes binaries can be downloaded on these machines, but Debian ships the
# full Kubernetes source (with vendor/) as the source of its `kubernetes-client` package, plus Go 1.19.
# This script turns those into a working kube-apiserver for the project's integration tests.
#
# Usage: build-kube-apiserver.sh [BIN_DIR]   (default: $SMOKEGATE_KUBE_BIN or ~/.cache/smokegate/kube/bin)
# Normally run through ensure.sh, which first installs the Debian packages this needs
# (golang-1.19-go, golang-github-modern-go-reflect2-dev, golang-github-json-iterator-go-dev) and a
# deb-src line. Idempotent: exits at once when BIN_DIR/kube-apiserver exists. ~3 min on 2 cores.
set -euo pipefail
BIN=${1:-${SMOKEGATE_KUBE_BIN:-$HOME/.cache/smokegate/kube/bin}}
if [[ -x $BIN/kube-apiserver ]]; then echo "kube-apiserver already built: $BIN/kube-apiserver"; exit 0; fi
GO=/usr/lib/go-1.19/bin/go
[[ -x $GO ]] || { echo "error: $GO missing; run scripts/kube/ensure.sh (installs golang-1.19-go)" >&2; exit 1; }
mkdir -p "$BIN"
WORK=$(mktemp -d -t kube-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# 1. Kubernetes source (orig tarball of Debian's `kubernetes` source package, includes vendor/)
cd "$WORK"
apt-get source --download-only kubernetes >"$WORK/apt-source.log" 2>&1 \
  || { cat "$WORK/apt-source.log" >&2; echo "error: apt-get source kubernetes failed (deb-src line? run ensure.sh)" >&2; exit 1; }
tar xzf kubernetes_*.orig.tar.gz
SRC=$(ls -d "$WORK"/kubernetes-*/)
mkdir -p "$WORK/gopath/src/k8s.io"
ln -s "$SRC" "$WORK/gopath/src/k8s.io/kubernetes"
cd "$WORK/gopath/src/k8s.io/kubernetes"

# 2. reflect2 1.0.1 / json-iterator 1.1.10 crash under Go >= 1.18 ("fatal error: fault" in map
#    iteration); swap in Debian's 1.0.2 / 1.1.12, which are API-compatible.
rm -rf vendor/github.com/modern-go/reflect2 vendor/github.com/json-iterator/go
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/json-iterator/go vendor/github.com/json-iterator/go
find vendor/github.com/modern-go/reflect2 vendor/github.com/json-iterator/go -name '*_test.go' -delete

# GOPATH mode: the 1.20 tree predates a usable go.mod build with vendored staging repos.
# The Go build cache (~1 GB) lives next to BIN so a retry after a failed build is quicker; it is
# removed after a successful build since the binary is then cached.
export PATH=/usr/lib/go-1.19/bin:$PATH GO111MODULE=off GOPATH=$WORK/gopath GOFLAGS= \
  GOCACHE=${GOCACHE:-$(dirname "$BIN")/gocache}
# 3. The OpenAPI definitions are generated, not shipped: generate them like `make gen_openapi` does.
go build -o "$WORK/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
DIRS=$( set +o pipefail; (find pkg cmd plugin -name '*.go'; find -L vendor -name '*.go') 2>/dev/null | grep -v /testdata/ \
  | xargs grep -l '+k8s:openapi-gen=' | grep -v -e '^vendor/k8s.io/code-generator' -e '^vendor/k8s.io/sample-apiserver' \
  | xargs -n1 dirname | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd, )
"$WORK/openapi-gen" --logtostderr -i "$DIRS" -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$WORK/violations.report" \
  2>"$WORK/openapi-gen.log" || { tail -20 "$WORK/openapi-gen.log" >&2; exit 1; }

# 4. Report a real version on /version (the tarball carries a placeholder), then build.
for VER in staging/src/k8s.io/component-base/version/base.go staging/src/k8s.io/client-go/pkg/version/base.go; do
  sed -i -e 's/gitMajor string\( = ""\)\? /gitMajor string = "1" /' -e 's/gitMinor string\( = ""\)\? /gitMinor string = "20" /' \
    -e 's/gitVersion \( *\)\(string \)\?= "v0.0.0-master+[0-9a-f]*"/gitVersion \1\2= "v1.20.2"/' "$VER"
done
# Build to a temp name and rename: an interrupted build never leaves a "cached" broken binary.
go build -ldflags "-s -w" -o "$BIN/kube-apiserver.tmp" ./cmd/kube-apiserver
mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
[[ $GOCACHE == "$(dirname "$BIN")/gocache" ]] && { chmod -R u+w "$GOCACHE"; rm -rf "$GOCACHE"; }
echo "built $BIN/kube-apiserver"
