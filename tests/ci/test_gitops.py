"""examples/gitops/: every manifest is valid for the real API, against Flux's upstream CRDs.

Each kustomization is built with kubectl's kustomize (as kustomize-controller does), then every
object goes through a server-side dry run on the test apiserver (v1.20) holding the upstream
HelmRelease, OCIRepository, Kustomization, Provider and Alert CRDs (tests/kube/crds/README.md).
Fields the server would prune, and the CRDs' CEL rules (which v1.20 cannot enforce), are checked
too (tests/ci/manifests.py). No Flux controller runs here: this proves the manifests are what
Flux's API accepts, not that Flux reconciles them.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeenv import KubeEnv

from tests.ci import manifests

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
# The directories Flux applies (clusters/production's Kustomizations point at the other two).
LAYERS = ("clusters/production", "apps", "smokegate")
NAMESPACES = ("flux-system", "apps", "smokegate")


def kustomize(env: KubeEnv, directory: Path) -> list[dict[str, Any]]:
    out = env.kubectl("kustomize", str(directory)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def built(kube_env: KubeEnv) -> dict[str, list[dict[str, Any]]]:
    # The namespaces exist for real, as Flux (or bootstrap) creates them before their contents:
    # a dry run of an object in a namespace that does not exist is refused at admission.
    for ns in NAMESPACES:
        r = kube_env.kubectl("get", "namespace", ns, check=False)
        if r.returncode != 0:
            kube_env.kubectl("create", "namespace", ns)
    return {layer: kustomize(kube_env, GITOPS / layer) for layer in LAYERS}


def objects(built: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [obj for layer in LAYERS for obj in built[layer]]


def by_kind(built: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(built) if o["kind"] == kind]


def test_every_manifest_file_is_in_a_kustomization() -> None:
    """A new file that no kustomization lists would escape the dry run below."""
    listed: set[Path] = set()
    for kfile in GITOPS.rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text())
        for entry in k.get("resources", []):
            target = (kfile.parent / entry).resolve()
            listed |= {target / "kustomization.yaml"} if target.is_dir() else {target}
        for gen in k.get("configMapGenerator", []):
            listed |= {(kfile.parent / f.split("=")[-1]).resolve() for f in gen.get("files", [])}
    yaml_files = {p.resolve() for p in GITOPS.rglob("*.yaml") if ".github" not in p.parts}
    tops = {(GITOPS / layer / "kustomization.yaml").resolve() for layer in LAYERS}
    assert yaml_files - listed - tops == set()
    # ... and the Flux Kustomizations point at those layers, by repository path.
    for ks in yaml.safe_load_all((GITOPS / "clusters" / "production" / "apps.yaml").read_text()):
        assert (REPO / ks["spec"]["path"] / "kustomization.yaml").is_file()
    ks = yaml.safe_load((GITOPS / "clusters" / "production" / "smokegate.yaml").read_text())
    assert (REPO / ks["spec"]["path"] / "kustomization.yaml").is_file()


def test_the_flux_objects_use_the_current_apis(built: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in objects(built)}
    assert kinds == {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
        ("notification.toolkit.fluxcd.io/v1beta3", "Provider"),
        ("notification.toolkit.fluxcd.io/v1beta3", "Alert"),
    }


def test_every_object_passes_a_server_side_dry_run_unpruned(
    kube_env: KubeEnv, built: dict[str, list[dict[str, Any]]]
) -> None:
    checked = 0
    for obj in objects(built):
        stored = manifests.dry_run(kube_env, obj)
        assert stored["kind"] == obj["kind"]
        assert manifests.pruned_fields(obj, stored) == [], f"{obj['kind']} {obj['metadata']}"
        key = (obj["apiVersion"], obj["kind"])
        if key in manifests.crds():
            assert manifests.cel_violations(manifests.crds()[key], stored) == [], obj["kind"]
        checked += 1
    # 2 Namespaces, 2 Flux Kustomizations, OCIRepository, HelmRelease, ConfigMap, Provider, Alert
    assert checked == 9


def test_the_old_apiserver_dropped_the_cel_rules_so_the_tests_evaluate_them(
    kube_env: KubeEnv,
) -> None:
    upstream = manifests.crds()
    hr_rules = manifests.cel_rules(upstream[("helm.toolkit.fluxcd.io/v2", "HelmRelease")])
    oci_rules = manifests.cel_rules(upstream[("source.toolkit.fluxcd.io/v1", "OCIRepository")])
    assert any("has(self.chartRef)" in r["rule"] for r in hr_rules)
    assert len(oci_rules) == 3
    for name in ("helmreleases.helm.toolkit.fluxcd.io", "ocirepositories.source.toolkit.fluxcd.io"):
        served = kube_env.kubectl_json("get", "crd", name)
        assert "x-kubernetes-validations" not in json.dumps(served["spec"]), (
            "the apiserver keeps CEL rules now: drop the evaluation in tests/ci/manifests.py"
        )


def test_the_checks_catch_broken_manifests(
    kube_env: KubeEnv, built: dict[str, list[dict[str, Any]]]
) -> None:
    """Each way of being wrong is caught by one of the three checks."""
    (hr,) = by_kind(built, "HelmRelease")
    (provider,) = by_kind(built, "Provider")
    (alert,) = by_kind(built, "Alert")

    typo = copy.deepcopy(hr)
    typo["spec"]["upgrade"]["remediation"]["retrys"] = 3
    assert ".spec.upgrade.remediation.retrys: field not declared in schema" in (
        manifests.dry_run_error(kube_env, typo)
    )

    missing = copy.deepcopy(hr)
    del missing["spec"]["interval"]
    assert "spec.interval: Required value" in manifests.dry_run_error(kube_env, missing)

    bad_type = copy.deepcopy(provider)
    bad_type["spec"]["type"] = "generic-hmak"
    assert "spec.type: Unsupported value" in manifests.dry_run_error(kube_env, bad_type)

    no_sources = copy.deepcopy(alert)
    del no_sources["spec"]["eventSources"]
    assert "spec.eventSources: Required value" in manifests.dry_run_error(kube_env, no_sources)

    both = copy.deepcopy(hr)
    both["spec"]["chart"] = {
        "spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}
    }
    stored = manifests.dry_run(kube_env, both)  # v1.20 cannot tell: only the CEL rule does
    schema = manifests.crds()[("helm.toolkit.fluxcd.io/v2", "HelmRelease")]
    assert manifests.cel_violations(schema, stored) == [
        ".spec: either chart or chartRef must be set"
    ]


def test_the_notification_objects_wire_flux_to_smokegate_serve(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    (provider,) = by_kind(built, "Provider")
    (alert,) = by_kind(built, "Alert")
    (hr,) = by_kind(built, "HelmRelease")
    assert provider["spec"]["type"] == "generic-hmac"
    assert provider["spec"]["secretRef"] == {"name": "smokegate-webhook"}
    assert provider["spec"]["address"].endswith("/hooks/flux")  # serve's Flux endpoint
    assert alert["metadata"]["namespace"] == provider["metadata"]["namespace"]
    assert alert["spec"]["providerRef"] == {"name": provider["metadata"]["name"]}
    assert {"kind": "HelmRelease", "name": "podinfo", "namespace": hr["metadata"]["namespace"]} in (
        alert["spec"]["eventSources"]
    )
    (oci,) = by_kind(built, "OCIRepository")
    assert hr["spec"]["chartRef"] == {"kind": "OCIRepository", "name": oci["metadata"]["name"]}
    assert oci["metadata"]["namespace"] == hr["metadata"]["namespace"]


def test_the_suite_configmap_holds_the_suite_and_it_lints(
    built: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    (cm,) = by_kind(built, "ConfigMap")
    assert cm["metadata"]["name"] == "smokegate-suites"  # no hash suffix: the chart refers to it
    source = GITOPS / "smokegate" / "suites" / "podinfo.yaml"
    assert cm["data"] == {"podinfo.yaml": source.read_text()}
    mounted = tmp_path / "suites"  # what a pod mounting the ConfigMap sees
    mounted.mkdir()
    for key, text in cm["data"].items():
        (mounted / key).write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "smokegate", "lint", str(mounted)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 suite, 4 checks" in r.stdout + r.stderr
    # The HelmRelease's annotation names this suite, as serve looks suites up by name.
    (hr,) = by_kind(built, "HelmRelease")
    suite = yaml.safe_load(cm["data"]["podinfo.yaml"])
    assert hr["metadata"]["annotations"]["smokegate.io/suites"] == suite["metadata"]["name"]


def test_the_example_workflow_matches_githubs_schema() -> None:
    workflow = GITOPS / ".github" / "workflows" / "smoke.yaml"
    checker = str(Path(sys.executable).parent / "check-jsonschema")
    r = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    steps = yaml.safe_load(workflow.read_text())["jobs"]["gate"]["steps"]
    (gate,) = [s for s in steps if str(s.get("uses", "")).endswith("/smokegate@v0.1.0")]
    action_inputs = set(yaml.safe_load((REPO / "action.yml").read_text())["inputs"])
    assert set(gate["with"]) <= action_inputs
    assert gate["with"]["suite"] == "examples/gitops/smokegate/suites/"


def test_the_upstream_crds_are_v1_and_established(kube_env: KubeEnv) -> None:
    """Flux's CRDs are apiextensions.k8s.io/v1 and the v1.20 apiserver serves them; Argo's
    minimal CRD is the v1beta1 exception (tests/kube/crds/README.md)."""
    for path in sorted(manifests.CRD_DIR.glob("*.yaml")):
        (crd,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        expected = (
            "apiextensions.k8s.io/v1beta1"
            if "argoproj" in path.name
            else ("apiextensions.k8s.io/v1")
        )
        assert crd["apiVersion"] == expected, path.name
        served = kube_env.kubectl_json("get", "crd", crd["metadata"]["name"])
        conditions = {c["type"]: c["status"] for c in served["status"]["conditions"]}
        assert conditions["Established"] == "True", path.name
        if "argoproj" not in path.name:  # no schema at all is "non-structural", by design
            assert conditions.get("NonStructuralSchema") != "True", path.name
