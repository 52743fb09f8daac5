"""A Flux GitOps repository built for the tests with real git and real helm.

Layout (the acceptance fixture of the pre-merge issue)::

    clusters/prod/apps.yaml        Flux Kustomization apps-prod     -> ./apps/prod
    clusters/staging/apps.yaml     Flux Kustomization apps-staging  -> ./apps/staging
    clusters/sources.yaml          GitRepository flux-system, HelmRepository internal
    apps/base/                     HelmRelease web (chart ./charts/web from this repository,
                                   valuesFrom ConfigMap web-settings with targetPath, and a
                                   Secret web-secrets with targetPath), HelmRelease api
                                   (chart api from HelmRepository internal: --chart-dir),
                                   ConfigMap legacy-settings, Secret db-credentials
    apps/prod/                     overlay: namespace prod, web-settings replicas
    apps/staging/                  overlay: namespace staging, web-settings replicas, a
                                   debug Service
    charts/web/                    `helm create web`
    chart-dir/api-1.0.0.tgz, api-1.1.0.tgz   `helm create api`, packaged
    smoke/web.yaml                 a smokegate suite for HelmRelease prod/web

``broken`` (the first commit) has exactly two errors: the staging debug Service's port is a
string (``apps/staging/debug-service.yaml``, line ``DEBUG_PORT_LINE``), and prod's web-settings
make the web chart render ``replicas: many``. ``fixed`` (the second) repairs both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_PASSWORD = "s3cr3t-db-pa55word"
SECRET_TOKEN = "tok-9f8e7d6c5b4a"
SECRET_TOKEN_2 = "tok-rotated-1a2b3c4d"
DEBUG_PORT_LINE = 11


def bin_dir() -> Path:
    env = os.environ.get("SMOKEGATE_KUBE_BIN")
    return Path(env) if env else Path.home() / ".cache" / "smokegate" / "kube" / "bin"


def ensure_tools() -> Path:
    """helm and kubectl from the kube test env (scripts/kube/get-helm.sh when missing)."""
    d = bin_dir()
    if not ((d / "helm").is_file() and (d / "kubectl").is_file()):
        script = HERE.parents[1] / "scripts" / "kube" / "get-helm.sh"
        subprocess.run(["bash", str(script), str(d)], check=True, capture_output=True)
    return d


def helm(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        [str(bin_dir() / "helm"), *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text.lstrip("\n"), encoding="utf-8")
    return p


def packaged_chart(dest: Path, name: str, version: str, work: Path) -> Path:
    """``helm create NAME`` at VERSION, packaged into ``dest``."""
    src = work / f"{name}-{version}"
    src.mkdir(parents=True, exist_ok=True)
    helm("create", name, cwd=src)
    chart_yaml = src / name / "Chart.yaml"
    text = chart_yaml.read_text()
    chart_yaml.write_text(text.replace("version: 0.1.0", f"version: {version}"))
    dest.mkdir(parents=True, exist_ok=True)
    helm("package", str(src / name), "--destination", str(dest))
    return dest / f"{name}-{version}.tgz"


KS = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps-{env}
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/{env}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""

SOURCES = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: https://git.example.invalid/gitops.git
  ref:
    branch: main
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: internal
  namespace: flux-system
spec:
  interval: 1h
  url: https://charts.example.invalid/
"""

WEB_HR = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: web-settings
      valuesKey: replicas
      targetPath: replicaCount
    - kind: Secret
      name: web-secrets
      valuesKey: token
      targetPath: podAnnotations.token
  values:
    service:
      port: 8080
"""

API_HR = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: api
spec:
  interval: 10m
  chart:
    spec:
      chart: api
      version: "{version}"
      sourceRef:
        kind: HelmRepository
        name: internal
        namespace: flux-system
  values:
    replicaCount: 1
"""

BASE_KUSTOMIZATION = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
"""

LEGACY_CM = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: legacy-settings
data:
  mode: legacy
"""

DB_SECRET = f"""
apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
type: Opaque
stringData:
  password: {SECRET_PASSWORD}
"""

WEB_SECRET = """
apiVersion: v1
kind: Secret
metadata:
  name: web-secrets
type: Opaque
stringData:
  token: {token}
"""

OVERLAY = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {env}
resources:
  - ../base
{extra}configMapGenerator:
  - name: web-settings
    literals:
      - replicas={replicas}
generatorOptions:
  disableNameSuffixHash: true
"""

# Line DEBUG_PORT_LINE is `port:`.
DEBUG_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: debug
spec:
  selector:
    app: web
  ports:
    - name: http
      protocol: TCP
      port: {port}
"""

EXTRA_SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: web-public
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
    - name: http
      port: 80
      targetPort: http
"""

SUITE = """
apiVersion: smokegate.io/v1
kind: Suite
metadata:
  name: web-smoke
spec:
  release:
    helmRelease: web
    namespace: prod
  checks:
    - name: home
      http:
        url: http://web.prod.svc:8080/
"""


def build_repo(root: Path, work: Path) -> dict[str, str]:
    """Create the repository at ``root`` with its commits; returns {label: commit}.

    broken  - the two errors
    fixed   - both repaired (the base of the diff)
    change  - replicas 3 -> 4, a Service added, the legacy ConfigMap removed, api chart
              1.0.0 -> 1.1.0, the web token Secret rotated
    """
    commits: dict[str, str] = {}
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "charts").mkdir()
    helm("create", "web", cwd=root / "charts")
    chart_dir = work / "chart-dir"
    packaged_chart(chart_dir, "api", "1.0.0", work)
    packaged_chart(chart_dir, "api", "1.1.0", work)
    write(root, "clusters/sources.yaml", SOURCES)
    for env in ("prod", "staging"):
        write(root, f"clusters/{env}/apps.yaml", KS.format(env=env))
    write(root, "apps/base/web.yaml", WEB_HR)
    write(root, "apps/base/api.yaml", API_HR.format(version="1.0.0"))
    write(root, "apps/base/legacy-settings.yaml", LEGACY_CM)
    write(root, "apps/base/db-credentials.yaml", DB_SECRET)
    write(root, "apps/base/web-secrets.yaml", WEB_SECRET.format(token=SECRET_TOKEN))
    base_resources = [
        "web.yaml",
        "api.yaml",
        "legacy-settings.yaml",
        "db-credentials.yaml",
        "web-secrets.yaml",
    ]

    def base(resources: list[str]) -> None:
        write(
            root,
            "apps/base/kustomization.yaml",
            BASE_KUSTOMIZATION.format(resources="\n".join(f"  - {r}" for r in resources)),
        )

    base(base_resources)
    write(
        root, "apps/prod/kustomization.yaml", OVERLAY.format(env="prod", replicas="many", extra="")
    )
    write(
        root,
        "apps/staging/kustomization.yaml",
        OVERLAY.format(env="staging", replicas="2", extra="  - debug-service.yaml\n"),
    )
    write(root, "apps/staging/debug-service.yaml", DEBUG_SERVICE.format(port='"http"'))
    write(root, "smoke/web.yaml", SUITE)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "broken")
    commits["broken"] = git(root, "rev-parse", "HEAD").strip()

    write(root, "apps/prod/kustomization.yaml", OVERLAY.format(env="prod", replicas="3", extra=""))
    write(root, "apps/staging/debug-service.yaml", DEBUG_SERVICE.format(port="8080"))
    git(root, "commit", "-q", "-am", "fixed")
    commits["fixed"] = git(root, "rev-parse", "HEAD").strip()

    write(root, "apps/prod/kustomization.yaml", OVERLAY.format(env="prod", replicas="4", extra=""))
    write(root, "apps/base/web-public.yaml", EXTRA_SERVICE)
    (root / "apps/base/legacy-settings.yaml").unlink()
    base([r for r in base_resources if r != "legacy-settings.yaml"] + ["web-public.yaml"])
    write(root, "apps/base/api.yaml", API_HR.format(version="1.1.0"))
    write(root, "apps/base/web-secrets.yaml", WEB_SECRET.format(token=SECRET_TOKEN_2))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change")
    commits["change"] = git(root, "rev-parse", "HEAD").strip()
    return commits
