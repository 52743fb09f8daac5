#!/bin/sh
# Make the smokegate virtualenv from wheels only, with the interpreter that will run it.
#
# Runs INSIDE the image's root filesystem: a chroot in build.sh, the builder stage in the
# Dockerfile. Resolving there matters: wheels are picked for this Python's ABI and glibc, and
# environment markers are evaluated for this Python (Debian's 3.11.2 needs async-timeout for redis,
# a 3.11.7 host would not).
#
# usage: install-venv.sh VENV WHEELHOUSE APP_WHEEL PIP_WHEEL CONSTRAINTS [CA_BUNDLE]
#   WHEELHOUSE  a directory of wheels, reused and filled: a later build with the same pins runs
#               offline; CA_BUNDLE: trust store for PyPI (e.g. a host's, behind a TLS proxy).
set -eu
VENV=$1 WHEELS=$2 APP=$3 PIP_WHEEL=$4 CONSTRAINTS=$5 CA=${6:-}

/usr/bin/python3 -m venv --without-pip "$VENV"
# pip runs from its wheel (a documented way to run pip) so the venv never contains pip itself;
# --isolated: no pip config or PIP_* variables of whoever runs this.
pip() { "$VENV/bin/python" "$PIP_WHEEL/pip" --isolated --disable-pip-version-check --no-input "$@"; }

REQ="$APP[all]"
# The wheelhouse holds dependencies only. `pip download` saves the project's wheel there too, and
# next time takes that stale copy ("already downloaded") for the new one: its old extras' needs
# would be fetched, the new ones not.
rm -f "$WHEELS"/smokegate-*.whl
install() {
  pip install -q --no-index --find-links "$WHEELS" --only-binary=:all: --no-compile \
    --no-cache-dir -c "$CONSTRAINTS" "$REQ"
}
# Offline first (everything already in the wheelhouse), else fetch what is missing from PyPI;
# the install itself is the test of "everything is there".
if ! install 2>/dev/null; then
  pip download -q --only-binary=:all: ${CA:+--cert "$CA"} -c "$CONSTRAINTS" -d "$WHEELS" "$REQ"
  rm -f "$WHEELS"/smokegate-*.whl
  install
fi

# Bytecode now, because a read-only root filesystem cannot be written at run time (every start
# would compile everything again). unchecked-hash: no timestamps inside (reproducible), and the
# image never changes under it, so checking sources at import is wasted time. PYTHONHASHSEED fixes
# the order of frozensets in code objects.
PYTHONHASHSEED=0 "$VENV/bin/python" -m compileall -q --invalidation-mode unchecked-hash \
  "$VENV/lib" >/dev/null
