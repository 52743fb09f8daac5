#!/usr/bin/env bash
# Build the smokegate container image without a daemon, reproducibly: an OCI image layout
# (default dist/oci/smokegate, tagged with the version) made from Debian packages (mmdebstrap)
# and the project's wheel, with the config of the Dockerfile's final stage (umoci).
# See docs/image.md.
#
# usage: scripts/image/build.sh [--out DIR] [--rebuild] [--check-reproducible] [--update-constraints]
#   --out DIR               where the OCI layout goes (default: dist/oci/smokegate)
#   --rebuild               build the layer even if one for the same inputs is cached
#   --check-reproducible    build the layer twice from scratch and compare (exit 1 if they differ)
#   --update-constraints    re-resolve scripts/image/constraints.txt (newest wheels) and exit
#
# The layer is cached under $SMOKEGATE_IMAGE_CACHE (default ~/.cache/smokegate/image/) by a hash
# of everything it is made of (the build context of .dockerignore, the Dockerfile, the tools'
# versions): the same inputs give the same image in seconds. Downloads are cached there too
# (Debian packages in apt/, wheels in wheels/), so a rebuild after a source change is offline
# but for apt's package lists. helm and kubectl come from scripts/kube/get-helm.sh (cached in
# ~/.cache/smokegate/kube/bin, the binaries the tests use).
#
# Needs root (mmdebstrap --mode=root, chroot); installs mmdebstrap, umoci and binutils with apt
# when missing. Last line of stdout: the image reference (LAYOUT:TAG).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SMOKEGATE_IMAGE_CACHE:-$HOME/.cache/smokegate/image}
KUBE_BIN=${SMOKEGATE_KUBE_BIN:-$HOME/.cache/smokegate/kube/bin}
PY=${PYTHON:-python3}
SUITE=bookworm
ARCH=amd64
OUT=$REPO/dist/oci/smokegate
REBUILD=0 CHECK=0 UPDATE=0

log() { echo "build.sh: $*" >&2; }
fail() { echo "build.sh: error: $*" >&2; exit 1; }
while (($#)); do
  case $1 in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    --check-reproducible) CHECK=1; shift ;;
    --update-constraints) UPDATE=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $OUT == /* ]] || OUT=$PWD/$OUT
[[ $(id -u) == 0 ]] || fail "needs root: mmdebstrap --mode=root and chroot (try: sudo $0)"
[[ $(uname -m) == x86_64 ]] || fail "amd64 only: helm and kubectl come from an amd64 build"

# ---- tools, installed only when missing (like scripts/install-debian-deps.sh) ----
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v umoci >/dev/null || need+=(umoci)
command -v strip >/dev/null || need+=(binutils)
command -v unshare >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq || log "apt-get update reported errors; continuing"
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$PY" -m pip --version >/dev/null 2>&1 || fail "$PY has no pip (set PYTHON=/path/to/python3 with pip)"

# ---- inputs ----
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/src/smokegate/__init__.py")
[[ -n $VERSION ]] || fail "no __version__ in src/smokegate/__init__.py"
CONSTRAINTS=$HERE/constraints.txt
# The build context: what .dockerignore lets through (its `!path` lines), for both builds.
mapfile -t CONTEXT < <(sed -n 's/^!\(.*\)/\1/p' "$REPO/.dockerignore")
((${#CONTEXT[@]})) || fail ".dockerignore lets nothing through"
INPUTS=(Dockerfile .dockerignore "${CONTEXT[@]}")
cd "$REPO"
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t FILES < <(git ls-files -co --exclude-standard -- "${CONTEXT[@]}" | sort -u |
    while read -r f; do [[ -f $f ]] && echo "$f"; done)
  # The newest commit that changed an input: the image changes only when they do.
  SDE=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct -- "${INPUTS[@]}")}
  REVISION=$(git rev-parse HEAD)
  [[ -z $(git status --porcelain -- "${INPUTS[@]}") ]] || REVISION+=-dirty
else
  mapfile -t FILES < <(find "${CONTEXT[@]}" -type f ! -name '*.pyc' | sort)
  SDE=${SOURCE_DATE_EPOCH:?not a git checkout: set SOURCE_DATE_EPOCH}
  REVISION=${SMOKEGATE_IMAGE_REVISION:-unknown}
fi
[[ -n $SDE ]] || fail "cannot date the inputs (no commit touches them?): set SOURCE_DATE_EPOCH"
export SOURCE_DATE_EPOCH=$SDE
CREATED=$(date -u -d "@$SDE" +%Y-%m-%dT%H:%M:%SZ)
PACKAGES=$(sed 's/#.*//' "$HERE/debian-packages.txt" | xargs | tr ' ' ,)
PIP_PIN=$(grep '^pip==' "$CONSTRAINTS" 2>/dev/null || echo pip)
TOOLS="$(mmdebstrap --version) $(umoci --version) $(strip --version | head -1) $(tar --version | head -1)"
KEY=$( {
  printf '%s\n' "$SDE" "$SUITE" "$ARCH" "$TOOLS" "${SMOKEGATE_DEBIAN_MIRROR:-}"
  sha256sum Dockerfile .dockerignore "${FILES[@]}"
  sha256sum "$KUBE_BIN/helm" "$KUBE_BIN/kubectl" 2>/dev/null || true
} | sha256sum | cut -c1-16)
mkdir -p "$CACHE/apt" "$CACHE/wheels" "$CACHE/layouts" "$(dirname "$OUT")"
# One build at a time per cache (several worktrees' test runs share it): wait for the other.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.lock; waiting"
  flock 9
fi

WORKS=()
cleanup() { for w in "${WORKS[@]}"; do rm -rf --one-file-system "$w"; done; }
trap cleanup EXIT
newwork() { WORK=$(mktemp -d "$CACHE/work.XXXXXX"); WORKS+=("$WORK"); }

# ---- the root filesystem ----
# Debian minbase (what debian:bookworm-slim is) + debian-packages.txt, merged /usr without the
# usrmerge package (it would pull in perl), the dpkg excludes in place before packages unpack.
debian_rootfs() { # ROOT
  local mirrors=()
  if [[ -n ${SMOKEGATE_DEBIAN_MIRROR:-} ]]; then
    mirrors=("deb $SMOKEGATE_DEBIAN_MIRROR $SUITE main" "deb $SMOKEGATE_DEBIAN_MIRROR $SUITE-updates main"
      "deb ${SMOKEGATE_DEBIAN_SECURITY_MIRROR:-http://security.debian.org/debian-security} $SUITE-security main")
  fi
  log "mmdebstrap $SUITE minbase + $PACKAGES"
  mmdebstrap --mode=root --variant=minbase --format=directory --architectures="$ARCH" \
    --include="$PACKAGES" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives" "$1/etc/dpkg/dpkg.cfg.d"' \
    --setup-hook="install -m 0644 '$HERE/dpkg-slim' \"\$1/etc/dpkg/dpkg.cfg.d/smokegate-slim\"" \
    --setup-hook="sync-in '$CACHE/apt' /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives '$CACHE/apt'" \
    --customize-hook="rm -rf '$CACHE/apt/partial' '$CACHE/apt/lock'" \
    "$SUITE" "$1" "${mirrors[@]}" >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -40 "$WORK/mmdebstrap.log" >&2; fail "mmdebstrap failed (log above)"; }
}

# The wheel, built from a copy of the build context (never from the working tree's build/ or
# egg-info leftovers), with the pinned pip and setuptools.
app_wheel() { # DEST_DIR
  local src=$WORK/src pip_whl
  mkdir -p "$src"
  tar -C "$REPO" -cf - "${FILES[@]}" | tar -C "$src" -xf -
  pip_whl=$(pip_wheel)
  local bc=()
  [[ -f $CONSTRAINTS ]] && bc=(--build-constraint "$CONSTRAINTS")
  # Its output goes to a log (setuptools' deprecation notices are noise here), shown on failure.
  "$PY" "$pip_whl/pip" wheel -q --disable-pip-version-check --no-deps "${bc[@]}" -w "$1" "$src" \
    >"$WORK/wheel.log" 2>&1 || { cat "$WORK/wheel.log" >&2; fail "building the wheel failed"; }
  ls "$1"/smokegate-*.whl >/dev/null || fail "no wheel was built"
}
pip_wheel() { # prints the path of the pinned pip's wheel (downloaded once)
  local have
  have=$(ls "$CACHE/wheels/${PIP_PIN/==/-}"-py3-none-any.whl 2>/dev/null | tail -1 || true)
  if [[ -z $have || $PIP_PIN == pip ]]; then
    "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$PIP_PIN" \
      >"$CACHE/pip-download.log" 2>&1 || { cat "$CACHE/pip-download.log" >&2; fail "cannot download $PIP_PIN"; }
    have=$(ls -t "$CACHE/wheels"/pip-*-py3-none-any.whl | head -1)
  fi
  echo "$have"
}
ca_bundle() { # the host's trust store, for pip inside the root (TLS proxies sign with their own CA)
  local f
  for f in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    [[ -n $f && -f $f ]] && { echo "$f"; return; }
  done
}
# /tmp/smokegate-build inside the root: the same paths as in the Dockerfile's builder stage (pip
# records the wheel's path in direct_url.json).
stage_build_dir() { # ROOT -> prints the host dir bound at /tmp/smokegate-build
  local b=$WORK/build
  mkdir -p "$b/dist" "$b/wheels"
  app_wheel "$b/dist"
  cp "$(pip_wheel)" "$b/"
  cp "$HERE/install-venv.sh" "$b/"
  [[ -f $CONSTRAINTS ]] && cp "$CONSTRAINTS" "$b/constraints.txt" || : >"$b/constraints.txt"
  local ca; ca=$(ca_bundle || true)
  [[ -n $ca ]] && cp "$ca" "$b/ca.crt"
  echo "$b"
}
in_root() { # ROOT BUILD_DIR CMD...  (root, network, the build dir and the wheel cache mounted)
  local root=$1 b=$2; shift 2
  "$HERE/run-in-rootfs.sh" --bind "$b:/tmp/smokegate-build" --bind "$CACHE/wheels:/tmp/smokegate-build/wheels" \
    --env PATH=/usr/sbin:/usr/bin:/sbin:/bin --env HOME=/tmp --env LANG=C.UTF-8 \
    --env SOURCE_DATE_EPOCH="$SDE" "$root" -- "$@"
}

build_layer() { # -> $WORK/layer.tar
  local root=$WORK/rootfs b whl pipw ca=
  debian_rootfs "$root"
  b=$(stage_build_dir)
  whl=$(cd "$b/dist" && ls smokegate-*.whl)
  pipw=$(cd "$b" && ls pip-*.whl)
  [[ -f $b/ca.crt ]] && ca=/tmp/smokegate-build/ca.crt
  log "venv /opt/smokegate: $whl[all] ($(grep -c '==' "$b/constraints.txt") pins)"
  in_root "$root" "$b" /bin/sh /tmp/smokegate-build/install-venv.sh /opt/smokegate \
    /tmp/smokegate-build/wheels "/tmp/smokegate-build/dist/$whl" "/tmp/smokegate-build/$pipw" \
    /tmp/smokegate-build/constraints.txt $ca >&2
  sh "$HERE/strip-venv.sh" "$root/opt/smokegate"
  bash "$REPO/scripts/kube/get-helm.sh" "$KUBE_BIN" >&2
  install -m 0755 -o root -g root "$KUBE_BIN/helm" "$KUBE_BIN/kubectl" "$root/usr/local/bin/"
  "$PY" "$HERE/finish-rootfs.py" "$root" >&2
  # The layer: mmdebstrap's own reproducible tar options; no device nodes (the runtime makes
  # /dev), empty /proc, /sys.
  tar -C "$root" --sort=name --mtime="@$SDE" --clamp-mtime --numeric-owner --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$WORK/layer.tar" .
  rm -rf --one-file-system "$root"
}

oci_from_layer() { # LAYOUT
  umoci init --layout "$1"
  umoci new --image "$1:build"
  umoci raw add-layer --image "$1:build" --history.created="$CREATED" \
    --history.created_by="scripts/image/build.sh: mmdebstrap $SUITE minbase + $PACKAGES; /opt/smokegate (smokegate[all] $VERSION); helm, kubectl" \
    "$WORK/layer.tar"
}

layer_digest() { # LAYOUT -> the compressed layer's digest
  umoci stat --image "$1:build" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["history"][0]["layer"]["digest"])'
}

if ((UPDATE)); then
  newwork
  debian_rootfs "$WORK/rootfs"
  b=$(stage_build_dir)
  whl=$(cd "$b/dist" && ls smokegate-*.whl)
  mkdir -p "$b/lock"
  log "resolving smokegate[all] with the image's Python, newest wheels"
  in_root "$WORK/rootfs" "$b" /bin/sh -c '
    set -e; cd /tmp/smokegate-build
    python3 -m venv --without-pip /tmp/v
    pw=$(ls pip-*.whl); /tmp/v/bin/python "$pw/pip" --isolated download -q --only-binary=:all: ${1:+--cert "$1"} \
      -d lock "dist/$0[all]" pip setuptools' "$whl" "$([[ -f $b/ca.crt ]] && echo /tmp/smokegate-build/ca.crt)" >&2
  "$PY" - "$b/lock" "$CONSTRAINTS.new" <<'PY'
import datetime, pathlib, re, sys
lock, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
pins = sorted(
    f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"
    for name, version in (w.name.split("-")[:2] for w in lock.glob("*.whl"))
    if name != "smokegate"
)
today = datetime.date.today().isoformat()
out.write_text(
    "# Exact versions of the Python packages in the image, and of pip and setuptools that build\n"
    "# it: the Dockerfile and scripts/image/build.sh both install from this file.\n"
    f"# Generated by scripts/image/build.sh --update-constraints on {today}.\n"
    + "\n".join(pins) + "\n"
)
PY
  mv "$CONSTRAINTS.new" "$CONSTRAINTS"
  log "wrote $CONSTRAINTS ($(grep -c '==' "$CONSTRAINTS") pins)"
  exit 0
fi
[[ -f $CONSTRAINTS ]] || fail "no $CONSTRAINTS: run $0 --update-constraints"

if ((CHECK)); then
  digests=() layers=()
  for i in 1 2; do
    newwork
    log "reproducibility: build $i of 2"
    build_layer
    oci_from_layer "$WORK/oci"
    digests+=("$(layer_digest "$WORK/oci")")
    layers+=("$WORK/layer.tar")
  done
  if [[ ${digests[0]} == "${digests[1]}" ]]; then
    echo "reproducible: both builds made layer ${digests[0]}"
    exit 0
  fi
  echo "NOT reproducible: ${digests[0]} vs ${digests[1]}"
  "$PY" "$HERE/compare-layers.py" "${layers[@]}"
  exit 1
fi

LAYOUT_CACHE=$CACHE/layouts/$KEY
if ((REBUILD)) || [[ ! -f $LAYOUT_CACHE/index.json ]]; then
  start=$(date +%s)
  newwork
  log "building the layer (inputs $KEY, SOURCE_DATE_EPOCH=$SDE)"
  build_layer
  oci_from_layer "$WORK/oci"
  rm -f "$WORK/layer.tar"
  rm -rf "$LAYOUT_CACHE"
  mv "$WORK/oci" "$LAYOUT_CACHE"
  log "layer built in $(($(date +%s) - start))s"
  # Keep the three newest layouts only.
  ls -1dt "$CACHE/layouts"/*/ | tail -n +4 | xargs -r rm -rf
else
  log "layer for inputs $KEY is cached"
  touch "$LAYOUT_CACHE"
fi

# ---- the image: cached layer + the Dockerfile's config + this revision's labels ----
args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED")
[[ -n ${SMOKEGATE_IMAGE_SOURCE:-} ]] && args+=(--build-arg "SOURCE_URL=$SMOKEGATE_IMAGE_SOURCE")
mapfile -t CONFIG < <("$PY" "$HERE/dockerfile_config.py" "$REPO/Dockerfile" --umoci "${args[@]}")
((${#CONFIG[@]})) || fail "no image config from the Dockerfile"
rm -rf "$OUT.tmp"
cp -a "$LAYOUT_CACHE" "$OUT.tmp"
umoci config --image "$OUT.tmp:build" --tag "$VERSION" --no-history --created="$CREATED" \
  --architecture="$ARCH" --os=linux "${CONFIG[@]}"
umoci rm --image "$OUT.tmp:build"
umoci gc --layout "$OUT.tmp"
chmod -R a+rX "$OUT.tmp"  # umoci writes blobs 0600; anyone may read or push the image
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "image $OUT:$VERSION (revision $REVISION)"
echo "$OUT:$VERSION"
