#!/usr/bin/env bash
# Stop what start.sh DIR started (by the pids it recorded), apiserver first so it does not log
# etcd errors, and wait until each is gone so DIR/etcd can be reused at once.
set -euo pipefail
DIR=${1:?usage: stop.sh DIR}
for p in apiserver etcd; do
  [[ -f $DIR/$p.pid ]] || continue
  pid=$(cat "$DIR/$p.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true   # still there after 10 s: force it
  fi
  rm -f "$DIR/$p.pid"
done
