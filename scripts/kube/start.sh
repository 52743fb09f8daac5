#!/usr/bin/env bash
# Start a real single-node Kubernetes control plane (etcd + kube-apiserver) on loopback, by hand.
# (The pytest fixtures use tests/kube/kubeenv.py instead, which picks free ports itself; the flags
# there mirror the ones here.)
# No scheduler, no kubelet, no controller-manager: objects are stored and validated, watches work,
# status subresources work, but no container ever runs (tests play the part of controllers by
# patching status). The ServiceAccount admission plugin is off because no token controller runs
# to give service accounts their tokens; everything else is the default admission chain.
#
# Usage: start.sh DIR [PORT]   -> writes DIR/kubeconfig (token `admin-token`, system:masters),
#                                 DIR/*.pid, DIR/*.log.    Stop with: stop.sh DIR
# etcd listens on $ETCD_PORT (default PORT+10000) and ETCD_PORT+1 (peer).
# Binaries: run ensure.sh first ($SMOKEGATE_KUBE_BIN or ~/.cache/smokegate/kube/bin; etcd on PATH).
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd); PORT=${2:-16443}; ETCD_PORT=${ETCD_PORT:-$((PORT + 10000))}
BIN=${SMOKEGATE_KUBE_BIN:-$HOME/.cache/smokegate/kube/bin}
[[ -x $BIN/kube-apiserver ]] || { echo "no kube-apiserver in $BIN: run scripts/kube/ensure.sh" >&2; exit 1; }
command -v etcd >/dev/null || { echo "no etcd on PATH: run scripts/kube/ensure.sh" >&2; exit 1; }
cd "$DIR"
[[ -f sa.key ]] || openssl genrsa -out sa.key 2048 2>/dev/null
echo 'admin-token,admin,admin,system:masters' > tokens.csv
etcd --data-dir "$DIR/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  > etcd.log 2>&1 & echo $! > etcd.pid
# --insecure-port=0: never open the unauthenticated port (it would bypass RBAC and clash on 8080).
"$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --secure-port="$PORT" \
  --insecure-port=0 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none --cert-dir="$DIR/certs" \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file=sa.key \
  --service-account-signing-key-file=sa.key --token-auth-file=tokens.csv --authorization-mode=RBAC \
  --service-cluster-ip-range=10.96.0.0/16 --disable-admission-plugins=ServiceAccount \
  --feature-gates=TTLAfterFinished=true \
  > apiserver.log 2>&1 & echo $! > apiserver.pid
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:$PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: admin-token}}]
contexts: [{name: test, context: {cluster: test, user: admin, namespace: default}}]
current-context: test
KC
for _ in $(seq 60); do
  if curl -sfk -H 'Authorization: Bearer admin-token' "https://127.0.0.1:$PORT/readyz" >/dev/null; then
    echo "kube-apiserver ready: KUBECONFIG=$DIR/kubeconfig"; exit 0
  fi
  sleep 1
done
echo "kube-apiserver did not become ready; see $DIR/apiserver.log" >&2; exit 1
