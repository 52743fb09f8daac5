"""``smokegate run --in-cluster``: a Job in the namespace runs the suites, its log streams to the
console, its report comes back through the log and is written here as if the run were local.

The test plays job controller, scheduler and kubelet (incluster_kubelet.py says exactly what is
faked): the pod's ``smokegate`` is the real one of this checkout, run locally with the
ConfigMap's files as its working directory and a token of the pod's ServiceAccount.
"""

from __future__ import annotations

import json
from pathlib import Path

import junitparser
from incluster_support import DB_PASSWORD, Cluster

from smokegate.incluster.manifests import DEFAULT_IMAGE, RUN_LABEL
from smokegate.report.jsonreport import load_schema

PASSING = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: web}
spec:
  vars:
    colour: red
  checks:
    - name: settings
      kube: {configMap: {name: settings, keys: [mode]}}
    - name: db-password-${colour}
      exec:
        command: 'echo "password of length $${#PW}, colour $COLOUR"; test $${#PW} -eq 18'
        env: {PW: "${secret:db/password}", COLOUR: "${colour}"}
"""

FAILING = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: api}
spec:
  checks:
    - name: ok
      exec: {command: "true"}
    - name: broken
      exec:
        command: 'echo "leaking $PW"; exit 3'
        env: {PW: "${secret:db/password}"}
"""


def test_pass_streams_the_pod_console_and_reports_as_if_local(cluster: Cluster) -> None:
    cluster.suite(PASSING, "suites/web.yaml")
    r = cluster.run(
        "suites/web.yaml", "--service-account", "smokegate", "--var", "colour=green",
        "--report", "junit=out/junit.xml", code=0,
    )  # fmt: skip
    # The pod's console, streamed: its check lines and summary, the local suite path.
    assert "✓ web/settings kube" in r.out
    assert "✓ web/db-password-green exec" in r.out
    assert "PASSED 2 passed" in r.out
    assert "smokegate report v1" not in r.out  # the report block is collected, not shown
    assert f"created job {cluster.name}/smokegate-run-" in r.err
    assert "deleted job smokegate-run-" in r.err
    # The report: valid, the pod's results, named as locally.
    import jsonschema

    jsonschema.validate(r.report, load_schema())
    assert [x["status"] for x in r.report["results"]] == ["passed", "passed"]
    assert r.results["web/settings"]["source"] == "suites/web.yaml:8"
    assert r.report["suites"] == [{"name": "web", "file": "suites/web.yaml", "release": None}]
    where = r.report["context"]["inCluster"]
    assert where["namespace"] == cluster.name and where["image"] == DEFAULT_IMAGE
    assert where["exitCode"] == 0 and where["job"].startswith("smokegate-run-")
    junit = junitparser.JUnitXml.fromfile(str(cluster.tmp_path / "out" / "junit.xml"))
    assert sum(s.tests for s in junit) == 2 and sum(s.failures for s in junit) == 0
    # The Secret was read by the pod's ServiceAccount, never shipped, never shown.
    assert DB_PASSWORD not in r.text + json.dumps(r.report)
    (job,) = cluster.actors.jobs
    (cm,) = cluster.actors.configmaps
    assert DB_PASSWORD not in json.dumps(job) + json.dumps(cm)
    assert cluster.left() == []
    # What ran in the pod, and how.
    (ran,) = cluster.actors.runs
    assert ran["argv"][:2] == ["smokegate", "run"]
    assert ran["argv"][ran["argv"].index("--var") :][:2] == ["--var", "colour=green"]
    assert ran["argv"][-1] == "suites/web.yaml" and ran["exit"] == 0
    assert Path(ran["cwd"], "suites/web.yaml").read_text() == PASSING


def test_the_objects_it_creates(cluster: Cluster) -> None:
    cluster.suite(PASSING, "web.yaml")
    cluster.run("web.yaml", "--service-account", "smokegate", "--job-timeout", "2m",
                "--pod-annotation", "sidecar.istio.io/inject=true", code=0)  # fmt: skip
    (job,) = cluster.actors.jobs
    (cm,) = cluster.actors.configmaps
    run_id = job["metadata"]["labels"][RUN_LABEL]
    labels = {
        "app.kubernetes.io/name": "smokegate",
        "app.kubernetes.io/managed-by": "smokegate",
        "app.kubernetes.io/component": "in-cluster-run",
        RUN_LABEL: run_id,
    }
    assert job["metadata"]["name"] == cm["metadata"]["name"] == f"smokegate-run-{run_id}"
    assert labels.items() <= job["metadata"]["labels"].items()
    assert labels.items() <= cm["metadata"]["labels"].items()
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 600  # kept by the apiserver (feature gate on)
    assert spec["activeDeadlineSeconds"] == 120 + 60
    tmpl = spec["template"]
    assert labels.items() <= tmpl["metadata"]["labels"].items()
    assert tmpl["metadata"]["annotations"] == {"sidecar.istio.io/inject": "true"}
    pod = tmpl["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "smokegate"
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    (c,) = pod["containers"]
    assert c["image"] == DEFAULT_IMAGE and c["command"] == ["smokegate"]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/smokegate/suites", "/tmp"}
    assert c["workingDir"] == "/etc/smokegate/suites"
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    # Deleting the Job deletes the ConfigMap (the garbage collector follows this reference).
    (owner,) = cm["metadata"]["ownerReferences"]
    assert owner["kind"] == "Job" and owner["name"] == job["metadata"]["name"]
    assert owner["uid"] == job["metadata"]["uid"]
    assert list(cm["data"].values()) == [PASSING]
    assert cluster.left() == []


def test_fail_exits_1_with_junit_and_redacted_output(cluster: Cluster) -> None:
    cluster.suite(FAILING, "api.yaml")
    junit_path = cluster.tmp_path / "junit.xml"
    r = cluster.run("api.yaml", "--service-account", "smokegate",
                    "--report", f"junit={junit_path}", "--report", "markdown=out/r.md",
                    "--report", "html=out/r.html", code=1)  # fmt: skip
    assert "✗ api/broken exec" in r.out and "FAILED 1 passed, 1 failed" in r.out
    assert r.results["api/broken"]["status"] == "failed"
    assert r.results["api/broken"]["source"] == "api.yaml:8"
    junit = junitparser.JUnitXml.fromfile(str(junit_path))
    cases = {case.name: case for suite in junit for case in suite}
    assert set(cases) == {"ok", "broken"} or set(cases) == {"api/ok", "api/broken"}
    broken = next(c for n, c in cases.items() if n.endswith("broken"))
    assert not broken.is_passed and any(isinstance(x, junitparser.Failure) for x in broken.result)
    assert sum(s.failures for s in junit) == 1
    for path in (junit_path, cluster.tmp_path / "out/r.md", cluster.tmp_path / "out/r.html"):
        assert DB_PASSWORD not in path.read_text()
    assert "leaking ***" in json.dumps(r.report)
    assert DB_PASSWORD not in r.text
    assert cluster.left() == []


def test_a_suite_error_is_exit_2_before_anything_is_created(cluster: Cluster) -> None:
    cluster.suite(PASSING.replace("${colour}", "${colur}"), "bad.yaml")
    r = cluster.run("bad.yaml", code=2, report=False)
    assert "bad.yaml:" in r.err and "colur" in r.err
    assert "created job" not in r.err
    assert cluster.actors.jobs == [] and cluster.left() == []
    # An environment variable the pod will not have is an error here too, with the way out.
    cluster.suite(PASSING.replace("${colour}", "${env:SHADE}"), "env.yaml")
    r = cluster.run("env.yaml", code=2, report=False, env_extra={"SHADE": "x"})
    assert "SHADE" in r.err and "--env" in r.err
    r = cluster.run("env.yaml", "--env", "SHADE=navy", "--service-account", "smokegate",
                    code=0)  # fmt: skip
    assert "db-password-navy" in r.out
    assert cluster.left() == []


def test_a_missing_secret_is_found_by_the_pod_exit_2(cluster: Cluster) -> None:
    cluster.suite(PASSING.replace("db/password", "nope/password"), "web.yaml")
    r = cluster.run("web.yaml", "--service-account", "smokegate", code=2, report=False)
    # The pod's own message, streamed: it is the pod that reads Secrets.
    assert "secret " in r.out and "/nope key 'password': the Secret does not exist" in r.out
    assert not cluster.report_path.exists()
    assert cluster.left() == []


def test_an_image_that_cannot_start_is_exit_4_with_the_reason(cluster: Cluster) -> None:
    cluster.suite(PASSING, "web.yaml")
    r = cluster.run("web.yaml", "--image", "Registry.Example/Smoke Gate", code=4)
    assert "InvalidImageName" in r.err or "InvalidImageName" in r.out
    runner = r.results["in-cluster/runner"]
    assert runner["status"] == "error" and runner["errorKind"] == "config"
    assert "never ran" in runner["message"] and "invalid reference format" in runner["message"]
    assert [x["status"] for x in r.report["results"][:-1]] == ["skipped", "skipped"]
    assert cluster.actors.runs == []
    assert cluster.left() == []


def test_keep_job_leaves_the_objects_for_inspection(cluster: Cluster) -> None:
    cluster.suite(PASSING, "web.yaml")
    r = cluster.run("web.yaml", "--service-account", "smokegate", "--keep-job", code=0)
    (job,) = cluster.actors.jobs
    name = job["metadata"]["name"]
    assert f"kept job {cluster.name}/{name} (--keep-job)" in r.err
    left = cluster.left()
    assert f"Job/{name}" in left and f"ConfigMap/{name}" in left
    assert any(o.startswith(f"Pod/{name}-") for o in left)
    # What docs/in-cluster.md says to run for leftovers finds exactly these.
    cluster.kubectl("delete", "job,configmap,pod", "-n", cluster.name,
                    "-l", "app.kubernetes.io/component=in-cluster-run")  # fmt: skip
    assert cluster.left() == []
