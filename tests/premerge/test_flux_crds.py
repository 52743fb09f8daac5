"""The bundled upstream Flux CRDs: complete files, strict validation of every Flux kind (unknown
fields located at file:line), the deprecated versions they still serve, and lazy, per-process
loading. Repository-level tests use real ``kubectl kustomize`` (the kube test env's kubectl)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smokegate.premerge import fluxcrds
from smokegate.premerge.schemas import Schemas, _bundled_file_schemas, crd_schemas
from tests.premerge.test_validate import validate, write_repo

KINDS = {
    ("helm.toolkit.fluxcd.io", "HelmRelease"): "v2",
    ("kustomize.toolkit.fluxcd.io", "Kustomization"): "v1",
    ("source.toolkit.fluxcd.io", "GitRepository"): "v1",
    ("source.toolkit.fluxcd.io", "HelmRepository"): "v1",
    ("source.toolkit.fluxcd.io", "OCIRepository"): "v1",
    ("source.toolkit.fluxcd.io", "HelmChart"): "v1",
}


def _schemas() -> Schemas:
    s = Schemas(None, kube=False)
    s.add_bundled_flux_crds()
    return s


def test_bundled_files_are_whole_crds_and_descriptions_are_dropped_safely() -> None:
    """Each file parses completely (a truncated copy would not end where a CRD ends), is the CRD
    of its kind and serves its stable version; dropping descriptions before the parse gives the
    very schemas a full parse gives."""
    index = fluxcrds.bundled_kinds()
    assert set(index) == set(KINDS)
    base = Path(fluxcrds.__file__).parent / "crds"
    assert not (base / "flux-condensed.yaml").exists()
    for (group, kind), name in index.items():
        text = (base / name).read_text(encoding="utf-8")
        docs = [d for d in yaml.safe_load_all(text) if d]
        assert len(docs) == 1, name
        crd = docs[0]
        assert crd["kind"] == "CustomResourceDefinition"
        assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (group, kind)
        assert name == f"{group}_{crd['spec']['names']['plural']}.yaml"
        served = {v["name"] for v in crd["spec"]["versions"] if v["served"]}
        assert KINDS[(group, kind)] in served, name
        assert text.rstrip().endswith("status: {}"), name  # the last version's subresources
        full = crd_schemas(crd)
        assert len(full) == len(served)
        assert _bundled_file_schemas(name) == full, name


def test_strip_descriptions_keeps_a_property_named_description() -> None:
    text = (
        "properties:\n"
        "  description:\n"
        "    description: |-\n"
        "      The text.\n"
        "\n"
        "      More text.\n"
        "    type: string\n"
        "  name:\n"
        "    description: A plain\n"
        "      continued scalar.\n"
        "    type: string\n"
    )
    assert yaml.safe_load(fluxcrds.strip_descriptions(text)) == {
        "properties": {"description": {"type": "string"}, "name": {"type": "string"}}
    }


KS = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  prune: true
  path: ./flux
  sourceRef: {kind: GitRepository, name: flux-system}
"""


def test_unknown_fields_in_kustomization_and_gitrepository_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "clusters/apps.yaml": KS
            + "  healthCheck: []\n"  # line 9: 'healthChecks' misspelt
            + "  dependsOn:\n"
            + "    - name: infra\n"
            + "      namespce: flux-system\n",  # line 12
            "flux/git.yaml": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 1m
  url: https://example.com/repo.git
  ref:
    branch: main
    brnch: main
""",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    errors = {(f["file"], f["field"]): f for f in data["findings"] if f["severity"] == "error"}
    assert set(errors) == {
        ("clusters/apps.yaml", "spec.healthCheck"),
        ("clusters/apps.yaml", "spec.dependsOn[0].namespce"),
        ("flux/git.yaml", "spec.ref.brnch"),
    }
    assert errors[("clusters/apps.yaml", "spec.healthCheck")]["line"] == 9
    assert errors[("clusters/apps.yaml", "spec.healthCheck")]["message"] == (
        "unknown field 'healthCheck'"
    )
    assert errors[("clusters/apps.yaml", "spec.dependsOn[0].namespce")]["line"] == 12
    brnch = errors[("flux/git.yaml", "spec.ref.brnch")]
    assert brnch["line"] == 9 and brnch["message"] == "unknown field 'brnch'"
    assert brnch["object"] == "GitRepository flux-system/flux-system"


def test_wrong_types_in_an_ocirepository_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tools_bin: Path
) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "clusters/apps.yaml": KS,
            "flux/oci.yaml": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: podinfo, namespace: flux-system}
spec:
  interval: 5m
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  insecure: "yes"
  ref:
    semver: ">=6.0.0"
  layerSelector: {mediaType: x, operation: unpack}
""",
        },
    )
    code, data = validate(root, capsys=capsys)
    assert code == 1
    errors = {f["field"]: f for f in data["findings"] if f["severity"] == "error"}
    assert set(errors) == {"spec.insecure", "spec.layerSelector.operation"}
    assert errors["spec.insecure"]["message"] == '"yes" is not of type boolean'
    assert (errors["spec.insecure"]["file"], errors["spec.insecure"]["line"]) == (
        "flux/oci.yaml",
        7,
    )
    assert "['extract', 'copy']" in errors["spec.layerSelector.operation"]["message"]


VALID: dict[str, dict[str, Any]] = {
    "Kustomization": {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "spec": {
            "interval": "10m",
            "retryInterval": "1m",
            "timeout": "5m",
            "prune": True,
            "wait": True,
            "path": "./apps",
            "targetNamespace": "apps",
            "namePrefix": "p-",
            "deletionPolicy": "Delete",
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            "dependsOn": [{"name": "infra", "readyExpr": "status.ready"}],
            "healthCheckExprs": [{"apiVersion": "v1", "kind": "X", "current": "true"}],
            "postBuild": {
                "substitute": {"env": "prod"},
                "substituteFrom": [{"kind": "ConfigMap", "name": "vars", "optional": True}],
            },
            "patches": [{"patch": "- op: add", "target": {"kind": "Deployment"}}],
            "commonMetadata": {"labels": {"team": "a"}},
        },
    },
    "GitRepository": {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "spec": {
            "interval": "1m",
            "url": "ssh://git@example.com/repo.git",
            "ref": {"name": "refs/heads/main"},
            "secretRef": {"name": "git"},
            "provider": "github",
            "sparseCheckout": ["apps/"],
            "ignore": "/*\n!/apps\n",
            "verify": {"mode": "HEAD", "secretRef": {"name": "keys"}},
        },
    },
    "HelmRepository": {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "spec": {"interval": "1h", "url": "oci://ghcr.io/org/charts", "type": "oci"},
    },
    "OCIRepository": {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "spec": {
            "interval": "5m",
            "url": "oci://ghcr.io/org/app",
            "ref": {"semver": "1.x"},
            "verify": {
                "provider": "cosign",
                "matchOIDCIdentity": [{"issuer": "i", "subject": "s"}],
            },
        },
    },
    "HelmChart": {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "spec": {
            "interval": "10m",
            "chart": "podinfo",
            "version": "6.x",
            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            "valuesFiles": ["values.yaml"],
        },
    },
    "HelmRelease": {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "spec": {
            "interval": "5m",
            "chartRef": {"kind": "OCIRepository", "name": "app"},
            "values": {"anything": {"goes": [1, "x"]}},
            "install": {"remediation": {"retries": 3}},
        },
    },
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_object_of_each_kind_passes(kind: str) -> None:
    obj = {**VALID[kind], "kind": kind, "metadata": {"name": "x", "namespace": "ns"}}
    assert _schemas().validate(obj) == []
    # ...and strictly: one unknown field in its spec is one error there.
    bad = {**obj, "spec": {**obj["spec"], "specc": 1}}
    assert [(e.path, e.message) for e in _schemas().validate(bad) or ()] == [
        (("spec", "specc"), "unknown field 'specc'")
    ]


OLDER: dict[str, dict[str, Any]] = {
    "Kustomization": {
        "interval": "5m",
        "prune": False,
        "validation": "client",
        "sourceRef": {"kind": "GitRepository", "name": "x"},
        "patchesStrategicMerge": [{"kind": "Deployment"}],
    },
    "GitRepository": {"interval": "1m", "url": "https://x/y", "gitImplementation": "go-git"},
    "HelmRepository": {
        "interval": "1h",
        "url": "https://charts.example.com",
        "accessFrom": {"namespaceSelectors": [{"matchLabels": {"a": "b"}}]},
    },
    "OCIRepository": {"interval": "5m", "url": "oci://x/y", "ref": {"tag": "1.0"}},
    "HelmChart": {
        "interval": "1m",
        "chart": "c",
        "valuesFile": "v.yaml",
        "sourceRef": {"kind": "HelmRepository", "name": "r"},
    },
}


@pytest.mark.parametrize("kind", sorted(OLDER))
def test_deprecated_v1beta2_still_validates_with_its_own_schema(kind: str) -> None:
    group = "kustomize" if kind == "Kustomization" else "source"
    api = f"{group}.toolkit.fluxcd.io/v1beta2"
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": OLDER[kind]}
    assert _schemas().validate(obj) == []
    bad = {**obj, "spec": {**OLDER[kind], "intervl": "1m"}}
    assert [e.message for e in _schemas().validate(bad) or ()] == ["unknown field 'intervl'"]


def test_each_version_has_its_own_fields_and_unserved_versions_are_unknown() -> None:
    s = _schemas()
    v1_only = {
        "interval": "5m",
        "prune": True,
        "deletionPolicy": "Delete",
        "sourceRef": {"kind": "GitRepository", "name": "x"},
    }
    ks = {"kind": "Kustomization", "metadata": {"name": "x"}, "spec": v1_only}
    assert s.validate({**ks, "apiVersion": "kustomize.toolkit.fluxcd.io/v1"}) == []
    old = s.validate({**ks, "apiVersion": "kustomize.toolkit.fluxcd.io/v1beta2"})
    assert [e.message for e in old or ()] == ["unknown field 'deletionPolicy'"]
    # v1beta1 is no longer served by the bundled CRD: no schema (listed, not failed)...
    assert s.validate({**ks, "apiVersion": "kustomize.toolkit.fluxcd.io/v1beta1"}) is None


def test_bundled_crds_win_over_a_repository_copy_which_fills_other_versions() -> None:
    lax = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    copy = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "kustomize.toolkit.fluxcd.io",
            "names": {"kind": "Kustomization", "plural": "kustomizations"},
            "versions": [
                {"name": v, "served": True, "schema": {"openAPIV3Schema": lax}}
                for v in ("v1", "v1beta1")
            ],
        },
    }
    s = _schemas()
    s.add_crd(copy)
    ks = {"kind": "Kustomization", "metadata": {"name": "x"}, "spec": {"bogus": 1}}
    strict = s.validate({**ks, "apiVersion": "kustomize.toolkit.fluxcd.io/v1"}) or []
    assert "unknown field 'bogus'" in [e.message for e in strict]
    assert s.validate({**ks, "apiVersion": "kustomize.toolkit.fluxcd.io/v1beta1"}) == []


def test_bundled_files_are_parsed_lazily_and_once_per_process() -> None:
    fluxcrds.bundled_crds.cache_clear()
    _bundled_file_schemas.cache_clear()
    s = _schemas()
    assert s.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}) is None
    assert fluxcrds.bundled_crds.cache_info().currsize == 0  # nothing Flux seen: nothing parsed
    git = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "x"},
        "spec": {"interval": "1m", "url": "https://x/y"},
    }
    assert s.validate(git) == []
    assert fluxcrds.bundled_crds.cache_info().currsize == 1  # only GitRepository's file
    assert _schemas().validate(git) == []  # a second Schemas reuses it
    info = _bundled_file_schemas.cache_info()
    assert (info.currsize, info.hits) == (1, 1)
