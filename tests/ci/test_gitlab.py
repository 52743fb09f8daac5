"""The GitLab CI template (ci/gitlab/smokegate.gitlab-ci.yml): its structure, and its job run.

Structure: GitLab's own CI schema (SchemaStore's gitlab-ci.json, vendored by check-jsonschema)
for the template and for a pipeline that extends it as docs/ci.md shows; GitLab's CI Lint API is
not reachable offline. The run: the job as a GitLab runner executes it — `extends` merged,
variables in the environment (job variables over the template's), before_script and script in
one POSIX `sh -e` script in the project directory — with the real `smokegate gate` against the
real test apiserver (a HelmRelease whose status the test writes, as helm-controller would) and
a real nginx. SMOKEGATE_INSTALL is `none` (smokegate is this checkout's, not pip's).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from fixtures_flux import apply, helmrelease
from junitparser import JUnitXml
from kubeenv import KubeEnv

from tests.servers.nginx import NginxServer

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "ci" / "gitlab" / "smokegate.gitlab-ci.yml"
TEMPLATE_JOB = ".smokegate-gate"


def merge(base: Any, over: Any) -> Any:
    """GitLab's `extends`: hashes are merged deeply, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def user_pipeline(variables: dict[str, str]) -> dict[str, Any]:
    """A project's .gitlab-ci.yml: the template (as `include` brings it in) and a job on it."""
    pipeline = yaml.safe_load(TEMPLATE.read_text())
    pipeline["stages"] = ["verify"]
    pipeline["smoke:podinfo"] = {"extends": TEMPLATE_JOB, "stage": "verify", "variables": variables}
    return pipeline


def resolved_job(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    job = pipeline[name]
    base = pipeline[job["extends"]]
    merged = merge(base, {k: v for k, v in job.items() if k != "extends"})
    return merged


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency"
    return subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(path)], capture_output=True, text=True
    )


def run_job(
    job: dict[str, Any], project_dir: Path, kubeconfig: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(project_dir),
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(project_dir),
        "CI_JOB_NAME": "smoke:podinfo",
        "KUBECONFIG": kubeconfig,  # a File-type CI/CD variable: GitLab puts the file's path here
        "NO_COLOR": "1",
    }
    env.update({k: str(v) for k, v in job["variables"].items()})
    script = "\n".join([*job.get("before_script", []), *job["script"]])
    return subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_the_template_and_a_pipeline_using_it_match_gitlabs_schema(tmp_path: Path) -> None:
    r = schema_check(TEMPLATE)
    assert r.returncode == 0, r.stdout + r.stderr
    pipeline = tmp_path / ".gitlab-ci.yml"
    user = user_pipeline({"SMOKEGATE_RELEASE": "podinfo"})
    pipeline.write_text(yaml.safe_dump(user))
    r = schema_check(pipeline)
    assert r.returncode == 0, r.stdout + r.stderr
    # The schema checks hidden jobs (.smokegate-gate) loosely; the job that extends it is
    # checked in full. So check the template's keywords as that job, with `extends` resolved.
    resolved = {"stages": ["verify"], "smoke:podinfo": resolved_job(user, "smoke:podinfo")}
    pipeline.write_text(yaml.safe_dump(resolved))
    r = schema_check(pipeline)
    assert r.returncode == 0, r.stdout + r.stderr
    # ... and that check is not a rubber stamp: a misspelt keyword fails it.
    job = resolved["smoke:podinfo"]
    job["artifact"] = job.pop("artifacts")
    pipeline.write_text(yaml.safe_dump(resolved))
    assert schema_check(pipeline).returncode != 0


def test_the_junit_report_is_an_artifact_kept_pass_or_fail() -> None:
    job = yaml.safe_load(TEMPLATE.read_text())[TEMPLATE_JOB]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == "smokegate-reports/junit.xml"
    assert "smokegate-reports/" in artifacts["paths"]
    assert job["image"]["entrypoint"] == [""]
    # Every variable the script reads has a default in the template (documented there).
    script = "\n".join(job["before_script"] + job["script"])
    used = set(re.findall(r"\$\{?(SMOKEGATE_[A-Z_]+)", script)) | {"SMOKEGATE_IMAGE"}
    assert used == set(job["variables"]), used ^ set(job["variables"])


def test_the_job_passes_and_fails_with_smokegate(
    tmp_path: Path, nginx: NginxServer, release: tuple[str, str], kubeconfig: str, workspace: Path
) -> None:
    ns, token = release
    variables = {
        "SMOKEGATE_INSTALL": "none",
        "SMOKEGATE_RELEASE": "podinfo",
        "SMOKEGATE_NAMESPACE": ns,
        "SMOKEGATE_REVISION": "6.6.2",
        "SMOKEGATE_SUITES": "smoke/",
        "SMOKEGATE_TIMEOUT": "30s",
        "SMOKEGATE_ARGS": f"--var base={nginx.url}",
    }
    job = resolved_job(user_pipeline(variables), "smoke:podinfo")
    assert job["variables"]["SMOKEGATE_EXTRAS"] == "all"  # the template's default survives

    r = run_job(job, workspace, kubeconfig)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "smokegate 0." in r.stdout  # before_script's `smokegate --version`
    junit = workspace / job["artifacts"]["reports"]["junit"]
    suite = JUnitXml.fromfile(str(junit))
    assert (suite.tests, suite.failures, suite.errors) == (4, 0, 0)

    variables["SMOKEGATE_ARGS"] += " --var expectedVersion=9.9.9"
    job = resolved_job(user_pipeline(variables), "smoke:podinfo")
    r = run_job(job, workspace, kubeconfig)
    assert r.returncode == 1, r.stdout + r.stderr
    suite = JUnitXml.fromfile(str(junit))
    assert (suite.tests, suite.failures) == (4, 1)
    assert "9.9.9" in junit.read_text()
    for name in ("report.json", "report.html", "report.md"):
        assert (workspace / "smokegate-reports" / name).is_file()
    assert token not in r.stdout + r.stderr + junit.read_text()


def test_the_job_refuses_to_run_without_a_release(tmp_path: Path, kubeconfig: str) -> None:
    job = resolved_job(user_pipeline({"SMOKEGATE_INSTALL": "none"}), "smoke:podinfo")
    r = run_job(job, tmp_path, kubeconfig)
    assert r.returncode == 2
    assert "set SMOKEGATE_RELEASE" in r.stderr


def test_the_job_exits_3_when_flux_never_gets_there(
    kube_env: KubeEnv, kube_namespace: str, workspace: Path, kubeconfig: str
) -> None:
    apply(kube_env, helmrelease("podinfo", kube_namespace))  # helm-controller never reports
    job = resolved_job(
        user_pipeline(
            {
                "SMOKEGATE_INSTALL": "none",
                "SMOKEGATE_RELEASE": f"{kube_namespace}/podinfo",
                "SMOKEGATE_TIMEOUT": "2s",
                "SMOKEGATE_SUITES": "smoke/podinfo.yaml",
            }
        ),
        "smoke:podinfo",
    )
    r = run_job(job, workspace, kubeconfig)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not ready after 2" in r.stderr
