"""The Argo Workflows WorkflowTemplate (ci/argo/workflowtemplate.yaml).

Three checks, none of which needs Argo's controller:

* a server-side dry run on the real test apiserver with Argo's own "minimal" WorkflowTemplate CRD
  (the one Argo's install ships; it has no schema, so this proves kind, scope and metadata);
* its structure against Argo's API: the template is parsed into hera's models, which are
  generated from Argo's OpenAPI spec, and every field must survive the round trip (an unknown or
  misspelt field would be dropped, a wrong type refused);
* its step, run: the test plays Argo's executor and the kubelet — `{{…}}` parameters substituted
  as Argo does, the container's command run locally with its env, the ConfigMap volume written
  out from the real apiserver, the emptyDir a temporary directory, the service account replaced
  by a kubeconfig — and the output parameters read from their paths. The HelmRelease status is
  written by the test, as helm-controller would.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures_flux import apply, helmrelease
from hera.workflows.models import WorkflowTemplate
from kubeenv import KubeEnv

from tests.ci import manifests
from tests.ci.scenario import SUITE
from tests.servers.nginx import NginxServer

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "ci" / "argo" / "workflowtemplate.yaml"
PARAM = re.compile(r"\{\{\s*([a-z]+\.[a-zA-Z0-9.-]+)\s*\}\}")


def load() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


def template(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [t for t in doc["spec"]["templates"] if t["name"] == name]
    return found


def test_a_server_side_dry_run_with_argos_crd(kube_env: KubeEnv, kube_namespace: str) -> None:
    doc = load()
    doc["metadata"]["namespace"] = kube_namespace
    stored = manifests.dry_run(kube_env, doc)
    assert stored["kind"] == "WorkflowTemplate"
    assert manifests.pruned_fields(doc, stored) == []


def test_the_template_matches_argos_api_model() -> None:
    doc = load()
    model = WorkflowTemplate.model_validate(doc)
    back = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert manifests.pruned_fields(doc, back) == []
    # The round trip is not a rubber stamp: Argo's API has no `comand` or `volumeMount`.
    broken = copy.deepcopy(doc)
    gate = template(broken, "gate")
    gate["container"]["comand"] = gate["container"].pop("command")
    back = WorkflowTemplate.model_validate(broken).model_dump(
        by_alias=True, exclude_unset=True, mode="json"
    )
    assert manifests.pruned_fields(broken, back) == [".spec.templates[1].container.comand"]


def test_the_entrypoint_passes_every_parameter_to_the_gate_step() -> None:
    doc = load()
    workflow_params = {p["name"] for p in doc["spec"]["arguments"]["parameters"]}
    gate_inputs = {p["name"] for p in template(doc, "gate")["inputs"]["parameters"]}
    (step,) = template(doc, doc["spec"]["entrypoint"])["steps"][0]
    passed = {p["name"]: p["value"] for p in step["arguments"]["parameters"]}
    assert workflow_params == gate_inputs == set(passed)
    assert all(value == f"{{{{workflow.parameters.{n}}}}}" for n, value in passed.items())
    # Defaults agree between the workflow's arguments and the reusable step's inputs, except
    # notify-flux, which a templateRef caller opts into.
    defaults = {p["name"]: p.get("value") for p in doc["spec"]["arguments"]["parameters"]}
    step_defaults = {
        p["name"]: p.get("default") for p in template(doc, "gate")["inputs"]["parameters"]
    }
    assert {k: v for k, v in defaults.items() if k != "notify-flux"} == {
        k: v for k, v in step_defaults.items() if k != "notify-flux"
    }


def substitute(text: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        assert m[1] in values, f"{{{{{m[1]}}}}} has no value in the test"
        return values[m[1]]

    return PARAM.sub(one, text)


def run_gate_pod(
    kube_env: KubeEnv, ns: str, arguments: dict[str, str], kubeconfig: str, pod_root: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the `gate` template's container as Argo + the kubelet would; return the process and
    the output parameters."""
    gate = template(load(), "gate")
    values = {
        f"inputs.parameters.{p['name']}": p.get("default", "") for p in gate["inputs"]["parameters"]
    }
    values |= {f"inputs.parameters.{k}": v for k, v in arguments.items()}
    values["workflow.namespace"] = ns
    container = gate["container"]

    # Volumes: the ConfigMap's keys as files (read from the apiserver, as the kubelet does) and
    # the emptyDir; each mountPath maps to a directory under pod_root.
    mounts: dict[str, Path] = {}
    for vm in container["volumeMounts"]:
        (volume,) = [v for v in gate["volumes"] if v["name"] == vm["name"]]
        local = pod_root / vm["name"]
        local.mkdir(parents=True)
        if "configMap" in volume:
            name = substitute(volume["configMap"]["name"], values)
            cm = kube_env.kubectl_json("get", "configmap", name, "-n", ns)
            for key, text in cm["data"].items():
                (local / key).write_text(text)
        else:
            assert volume.get("emptyDir") == {}
        mounts[vm["mountPath"]] = local

    def local_path(path: str) -> str:
        for mount, local in mounts.items():
            if path == mount or path.startswith(mount + "/"):
                return str(local) + path[len(mount) :]
        return path

    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(pod_root),
        # In the pod: the ServiceAccount's token. Here: a kubeconfig for the same apiserver.
        "KUBECONFIG": kubeconfig,
        "NO_COLOR": "1",
    }
    for e in container["env"]:
        env[e["name"]] = local_path(substitute(e["value"], values))
    command = [substitute(c, values) for c in container["command"] + container["args"]]
    proc = subprocess.run(
        command, env=env, cwd=pod_root, capture_output=True, text=True, timeout=180
    )
    outputs = {}
    for p in gate["outputs"]["parameters"]:
        path = Path(local_path(p["valueFrom"]["path"]))
        outputs[p["name"]] = path.read_text() if path.is_file() else p["valueFrom"]["default"]
    return proc, outputs


@pytest.fixture
def suites_configmap(kube_env: KubeEnv, release: tuple[str, str], tmp_path: Path) -> str:
    ns, _ = release
    suite = tmp_path / "podinfo.yaml"
    suite.write_text(SUITE)
    kube_env.kubectl("create", "configmap", "smokegate-suites", "-n", ns, f"--from-file={suite}")
    return ns


def test_the_step_passes_and_fails_with_smokegate(
    kube_env: KubeEnv,
    suites_configmap: str,
    release: tuple[str, str],
    nginx: NginxServer,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    ns, token = release
    # `namespace` left empty: the workflow's namespace is the release's.
    arguments = {
        "release": "podinfo",
        "revision": "6.6.2",
        "timeout": "30s",
        "args": f"--var base={nginx.url}",
    }
    proc, outputs = run_gate_pod(kube_env, ns, arguments, kubeconfig, tmp_path / "pod1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outputs == {"exit-code": "0\n", "result": "4 passed, 0 failed, 0 errors, 0 skipped"}

    arguments["args"] += " --var expectedVersion=9.9.9 --var probePattern=^wrong$"
    proc, outputs = run_gate_pod(kube_env, ns, arguments, kubeconfig, tmp_path / "pod2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert outputs == {"exit-code": "1\n", "result": "2 passed, 2 failed, 0 errors, 0 skipped"}
    assert token not in proc.stdout + proc.stderr
    assert (tmp_path / "pod2" / "reports" / "junit.xml").is_file()


def test_the_step_exits_3_when_flux_never_gets_there(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    apply(kube_env, helmrelease("podinfo", ns))
    kube_env.kubectl(
        "create", "configmap", "smokegate-suites", "-n", ns, "--from-literal=a.yaml=" + SUITE
    )
    proc, outputs = run_gate_pod(
        kube_env, ns, {"release": "podinfo", "timeout": "2s"}, kubeconfig, tmp_path / "pod"
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert outputs == {"exit-code": "3\n", "result": ""}
    assert "not ready after 2" in proc.stderr
