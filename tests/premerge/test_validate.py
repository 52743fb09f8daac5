"""``smokegate validate`` on repositories built with real git, rendered with real helm and
built with real ``kubectl kustomize`` (no network: charts come from the repository or a
--chart-dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smokegate.cli import main
from smokegate.premerge.validate import ValidateOptions, validate_repository
from tests.premerge import gitops
from tests.premerge.conftest import checkout


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_broken_commit_has_exactly_the_two_errors_located(
    gitops_repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = checkout(gitops_repo["repo"], gitops_repo["broken"], tmp_path / "broken")
    report = validate_repository(
        ValidateOptions(str(tree), chart_dirs=[str(gitops_repo["chart_dir"])], pull=False)
    )
    errors = report.errors
    assert len(errors) == 2, [e.text() for e in errors]
    plain = next(e for e in errors if e.file)
    rendered = next(e for e in errors if e.template)
    # The plain manifest: file and line of the offending field.
    assert (plain.file, plain.line) == ("apps/staging/debug-service.yaml", gitops.DEBUG_PORT_LINE)
    assert plain.field == "spec.ports[0].port" and plain.object == "Service staging/debug"
    assert '"http" is not of type integer' in plain.message
    # The rendered object: release and chart template.
    assert rendered.release.startswith("prod/web")
    assert rendered.template == "web/templates/deployment.yaml"
    assert rendered.field == "spec.replicas" and rendered.object == "Deployment prod/web"
    assert '"many" is not of type integer' in rendered.message
    assert report.kustomizations == 2 and report.rendered == report.releases == 4
    assert report.validated == report.objects > 20
    # The CLI says the same and exits 1.
    code, out, _ = run_cli(
        capsys, "validate", str(tree), "--chart-dir", str(gitops_repo["chart_dir"]), "--no-pull"
    )
    assert code == 1
    assert f"apps/staging/debug-service.yaml:{gitops.DEBUG_PORT_LINE}: Service staging/debug" in out
    assert "web/templates/deployment.yaml: Deployment prod/web: spec.replicas" in out
    assert "2 errors" in out


def test_fixed_commit_passes(
    gitops_repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = checkout(gitops_repo["repo"], gitops_repo["fixed"], tmp_path / "fixed")
    code, out, _ = run_cli(
        capsys, "validate", str(tree), "--chart-dir", str(gitops_repo["chart_dir"]), "--no-pull"
    )
    assert code == 0, out
    assert "passed: 0 errors" in out and "1 suite" in out


def test_reports_junit_json_markdown_and_step_summary(
    gitops_repo: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from junitparser import JUnitXml

    tree = checkout(gitops_repo["repo"], gitops_repo["broken"], tmp_path / "tree")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out_dir = tmp_path / "out"
    code, stdout, _ = run_cli(
        capsys,
        "validate",
        str(tree),
        "--chart-dir",
        str(gitops_repo["chart_dir"]),
        "--no-pull",
        "--output",
        "json",
        "--report",
        f"junit={out_dir}/v.xml",
        "--report",
        f"json={out_dir}/v.json",
    )
    assert code == 1
    data = json.loads(stdout)
    assert data["ok"] is False and data["summary"]["errors"] == 2
    assert {f["location"] for f in data["findings"]} == {
        f"apps/staging/debug-service.yaml:{gitops.DEBUG_PORT_LINE}",
        "HelmRelease prod/web (clusters/prod): web/templates/deployment.yaml",
    }
    assert json.loads((out_dir / "v.json").read_text()) == data | {
        "summary": data["summary"]
        | {
            "durationSeconds": json.loads((out_dir / "v.json").read_text())["summary"][
                "durationSeconds"
            ]
        }
    }
    xml = JUnitXml.fromfile(str(out_dir / "v.xml"))
    cases = {c.name: c for s in xml for c in s}
    assert set(cases) == {
        "Kustomization flux-system/apps-staging",
        "HelmRelease prod/web (clusters/prod)",
    }
    failing = cases["Kustomization flux-system/apps-staging"]
    assert failing.result and "spec.ports[0].port" in failing.result[0].message
    md = summary.read_text()
    assert md.startswith("earlier step\n") and "❌ smokegate validate failed" in md
    assert "debug-service.yaml:11" in md


def test_missing_directory_and_tools_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "nope"))
    assert code == 2 and "no such directory" in err
    code, _, err = run_cli(capsys, "validate", str(tmp_path), "--kubectl", str(tmp_path / "kc"))
    assert code == 2 and "--kubectl" in err and "not an executable" in err


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        gitops.write(root, rel, text)
    return root


def validate(root: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["validate", str(root), "--no-pull", "--output", "json", *extra])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return code, json.loads(out)


HR = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: apps
spec:
  interval: 5m
  chart:
    spec:
      chart: {chart}
      version: "{version}"
      sourceRef:
        kind: HelmRepository
        name: charts
  {extra}
"""

HELMREPO = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: apps
spec:
  interval: 1h
  url: {url}
"""


def test_unavailable_chart_names_release_and_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "hr.yaml": HR.format(name="web", chart="web", version="1.2.3", extra=""),
            "repo.yaml": HELMREPO.format(url="https://charts.example.invalid/"),
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    (err,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert err["category"] == "chart" and err["file"] == "hr.yaml"
    assert "HelmRelease apps/web" in err["message"]
    assert "HelmRepository apps/charts (https://charts.example.invalid/)" in err["message"]
    assert "--no-pull" in err["message"]


def test_failed_pull_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    """A HelmRepository on a closed local port: the real `helm pull` fails at once."""
    root = write_repo(
        tmp_path / "repo",
        {
            "hr.yaml": HR.format(name="web", chart="web", version="1.2.3", extra=""),
            "repo.yaml": HELMREPO.format(url="http://127.0.0.1:9/"),
        },
    )
    code = main(["validate", str(root), "--output", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    (err,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert "`helm pull` failed" in err["message"] and "127.0.0.1:9" in err["message"]
    assert err["line"] == 12  # the `sourceRef:` key


def test_chart_ref_oci_repository_from_chart_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    charts = tmp_path / "charts"
    gitops.packaged_chart(charts, "podinfo", "6.5.0", tmp_path / "work")
    root = write_repo(
        tmp_path / "repo",
        {
            "oci.yaml": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: podinfo, namespace: apps}
spec:
  interval: 10m
  url: oci://ghcr.io/stefanprodan/charts/podinfo
  ref: {tag: 6.5.0}
""",
            "hr.yaml": """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  interval: 10m
  chartRef: {kind: OCIRepository, name: podinfo}
  values: {replicaCount: 2}
""",
        },
    )
    code, data = validate(root, "--chart-dir", str(charts), capsys=capsys)
    assert code == 0, data["findings"]
    assert data["summary"]["helmReleasesRendered"] == 1


def test_flux_objects_are_checked_against_their_crds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            "charts/web/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"
            ),
            "flux/hr.yaml": """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  interval: 5m
  chart:
    spec:
      chart: ./charts/web
      sourceRef: {kind: GitRepository, name: flux-system}
  valuesFrm: {}
""",
            "flux/ks.yaml": """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./flux
  sourceRef: {kind: GitRepository, name: flux-system}
""",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    by_file = {(f["file"], f.get("field")): f for f in data["findings"] if f["severity"] == "error"}
    typo = by_file[("flux/hr.yaml", "spec.valuesFrm")]
    assert typo["message"] == "unknown field 'valuesFrm'" and typo["line"] == 12
    prune = by_file[("flux/ks.yaml", "spec")]
    assert "'prune' is required" in prune["message"] and prune["line"] == 4
    assert len(by_file) == 2


def test_kustomization_problems_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "clusters/prod/apps.yaml": """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps/missing
""",
            "clusters/prod/infra.yaml": """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./infra
""",
            "infra/kustomization.yaml": "resources: [nothere.yaml]\n",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    errors = {f["file"]: f for f in data["findings"] if f["severity"] == "error"}
    assert errors["clusters/prod/apps.yaml"]["line"] == 8
    assert "./apps/missing" in errors["clusters/prod/apps.yaml"]["message"]
    assert "kustomize build failed" in errors["clusters/prod/infra.yaml"]["message"]
    assert "nothere.yaml" in errors["clusters/prod/infra.yaml"]["message"]


def test_postbuild_substitution_and_targetnamespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "clusters/prod/apps.yaml": """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps
  targetNamespace: shop
  postBuild:
    substitute: {replicas: "2"}
    substituteFrom:
      - {kind: ConfigMap, name: cluster-vars}
""",
            "clusters/prod/vars.yaml": """
apiVersion: v1
kind: ConfigMap
metadata: {name: cluster-vars, namespace: flux-system}
data: {image: "nginx:1.27", port: "many"}
""",
            # No kustomization.yaml: Flux generates one listing the files.
            "apps/deploy.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ${image}
          ports:
            - containerPort: ${port:=8080}
""",
        },
    )
    from smokegate.premerge.repo import load_repo

    repo = load_repo(root, kubectl=str(tools_bin / "kubectl"))
    (deploy,) = [o for o in repo.objects if o.kind == "Deployment"]
    assert deploy.namespace == "shop"
    assert deploy.data["spec"]["replicas"] == 2
    container = deploy.data["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"
    assert container["ports"][0]["containerPort"] == "many"  # substituteFrom wins over default
    code, data = validate(root, capsys=capsys)
    assert code == 1
    (err,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert err["file"] == "apps/deploy.yaml" and err["line"] == 14
    assert err["object"] == "Deployment shop/web"


def test_suites_are_linted_and_must_name_a_defined_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "smoke/ghost.yaml": """
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: ghost}
spec:
  release: {helmRelease: ghost, namespace: apps}
  checks:
    - name: up
      tcp: {host: ghost.apps.svc, port: 80}
""",
            "smoke/broken.yaml": """
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: broken}
spec:
  checks:
    - name: up
      http: {url: http://x/, expect: {status: many}}
""",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert {f["file"] for f in errors} == {"smoke/ghost.yaml", "smoke/broken.yaml"}
    ghost = next(f for f in errors if f["file"] == "smoke/ghost.yaml")
    assert ghost["line"] == 5 and "HelmRelease apps/ghost" in ghost["message"]
    broken = next(f for f in errors if f["file"] == "smoke/broken.yaml")
    assert broken["line"] == 7 and broken["category"] == "suite"


def test_secret_values_never_appear_in_validate_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    """A value from a valuesFrom Secret that makes the chart render an invalid object: the
    error is reported, the value is not."""
    secret_value = "hunter2-very-secret"
    root = write_repo(
        tmp_path / "repo",
        {
            "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            "charts/web/templates/svc.yaml": """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
    - port: {{ .Values.port }}
""",
            "hr.yaml": """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: apps}
spec:
  interval: 5m
  chart:
    spec:
      chart: ./charts/web
      sourceRef: {kind: GitRepository, name: flux-system}
  valuesFrom:
    - {kind: Secret, name: web, valuesKey: port, targetPath: port}
""",
            "secret.yaml": f"""
apiVersion: v1
kind: Secret
metadata: {{name: web, namespace: apps}}
stringData: {{port: {secret_value}}}
""",
        },
    )
    code = main(["validate", str(root), "--no-pull"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "spec.ports[0].port" in out and "is not of type integer" in out
    assert secret_value not in out + err


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue]}
              port: {x-kubernetes-int-or-string: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_chart_crds_validate_the_charts_resources_and_post_renderers_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "charts/widgets/Chart.yaml": "apiVersion: v2\nname: widgets\nversion: 0.2.0\n",
            "charts/widgets/crds/widget.yaml": CRD,
            "charts/widgets/templates/w.yaml": """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  size: {{ .Values.size }}
  color: green
  shape: round
  port: http
  extra: {anything: [1, 2]}
""",
            "hr.yaml": """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: widgets, namespace: apps}
spec:
  interval: 5m
  chart:
    spec:
      chart: ./charts/widgets
      sourceRef: {kind: GitRepository, name: flux-system}
  values: {size: 0}
  postRenderers:
    - kustomize:
        patches:
          - target: {kind: Widget}
            patch: |
              - op: add
                path: /metadata/labels
                value: {patched: "yes"}
""",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    errors = {f["field"]: f for f in data["findings"] if f["severity"] == "error"}
    assert set(errors) == {"spec.color", "spec.shape", "spec.size"}
    assert errors["spec.shape"]["message"] == "unknown field 'shape'"
    assert errors["spec.size"]["template"] == "widgets/templates/w.yaml"
    assert errors["spec.size"]["release"] == "apps/widgets"
    from smokegate.premerge.repo import load_repo
    from smokegate.premerge.tools import Tools
    from smokegate.premerge.validate import ValidateOptions, render_repository

    tools = Tools.find()
    (rel,) = render_repository(
        load_repo(root, kubectl=tools.kubectl), tools, ValidateOptions(), None
    )
    widget = next(o for o in rel.objects if o.kind == "Widget")
    assert widget.data["metadata"]["labels"] == {
        "patched": "yes",
        "helm.toolkit.fluxcd.io/name": "widgets",
        "helm.toolkit.fluxcd.io/namespace": "apps",
    }
    assert widget.template == "widgets/templates/w.yaml"
    assert any(o.kind == "CustomResourceDefinition" for o in rel.objects)  # install.crds: Create


def test_empty_repository_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    code, data = validate(tmp_path, capsys=capsys)
    assert code == 0 and data["summary"]["objects"] == 0
