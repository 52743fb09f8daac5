"""The GitHub Action (action.yml + ci/github/smokegate_action.py), run as the Actions runner would.

The `gate` step runs through bash with the runner's environment (tests/ci/actions.py), the real
`smokegate gate` waits on a HelmRelease in a real kube-apiserver (with Flux's upstream CRD) and
tests a real nginx. No helm-controller runs here: the test writes the HelmRelease status the way
helm-controller does (tests/kube/fixtures_flux.py). The install step is not run (it would
`pip install` smokegate from the network); `steps.install.outputs.bin` points at this checkout's
smokegate instead, and the install script's syntax is checked with `bash -n`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fixtures_flux import apply, helmrelease
from kubeenv import KubeEnv

from tests.ci import actions
from tests.ci.scenario import SUITE, line_of
from tests.servers.nginx import NginxServer

sys.path.insert(0, str(actions.SCRIPT.parent))
import smokegate_action

SMOKEGATE = str(Path(sys.executable).parent / "smokegate")


def run_action(inputs: dict[str, str], workspace: Path, tmp_path: Path) -> actions.StepRun:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    return actions.run_gate_step(
        inputs, workspace=workspace, runner_temp=runner_temp, smokegate_bin=SMOKEGATE
    )


def after_resume(run: actions.StepRun) -> list[str]:
    """stdout after smokegate's output (workflow commands are paused while it runs)."""
    (stop,) = [line for line in run.lines if line.startswith("::stop-commands::")]
    token = stop.removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    resume = run.lines.index(f"::{token}::")
    return run.lines[resume + 1 :]


def test_a_passing_gate(
    workspace: Path, tmp_path: Path, nginx: NginxServer, release: tuple[str, str], kubeconfig: str
) -> None:
    ns, token = release
    run = run_action(
        {
            "release": "helmrelease/podinfo",
            "namespace": ns,
            "revision": "6.6.2",
            "suite": "smoke/*.yaml",  # a glob, expanded by the script
            "timeout": "30s",
            "kubeconfig": kubeconfig,
            "args": f"--var base={nginx.url}",
        },
        workspace,
        tmp_path,
    )
    assert run.code == 0, run.stdout + run.stderr
    assert after_resume(run) == [], "a passing run annotates nothing"
    assert "podinfo-smoke/api-key-echo" in run.stdout

    assert run.summary.startswith("### ✅ smokegate passed: 4 passed"), run.summary
    assert "<code>podinfo-smoke/version</code>" in run.summary
    assert token not in run.summary + run.stdout + run.stderr

    out = run.outputs
    assert set(out) == set(smokegate_action.OUTPUTS)
    assert (out["exit-code"], out["ok"], out["passed"], out["failed"], out["total"]) == (
        "0",
        "true",
        "4",
        "0",
        "4",
    )
    report = json.loads(Path(out["report-json"]).read_text())
    assert report["ok"] is True and out["run-id"] == report["runId"]
    assert report["context"]["release"]["revision"] == "6.6.2"
    for fmt in ("junit", "html", "markdown"):
        path = Path(out[f"report-{fmt}"])
        assert path.is_file() and path.parent == Path(out["report-dir"])
    assert Path(out["report-dir"]).parent == tmp_path / "runner-temp"


def test_a_failing_gate_annotates_the_failed_checks_lines(
    workspace: Path, tmp_path: Path, nginx: NginxServer, release: tuple[str, str], kubeconfig: str
) -> None:
    ns, token = release
    run = run_action(
        {
            "release": f"{ns}/podinfo",
            "suite": "smoke/",
            "timeout": "30s",
            "kubeconfig": kubeconfig,
            # version: expects 9.9.9, nginx says 1.2.3; api-key-echo: the echo is the Secret's
            # value, which does not match `^wrong$`, and the mismatch message must not show it.
            "args": f"--var base={nginx.url} --var expectedVersion=9.9.9 "
            "--var probePattern=^wrong$",
            "report-dir": "out/smoke",
        },
        workspace,
        tmp_path,
    )
    assert run.code == 1, run.stdout + run.stderr
    annotations = after_resume(run)
    version_line = line_of(SUITE, "- name: version")
    echo_line = line_of(SUITE, "- name: api-key-echo")
    assert len(annotations) == 2, annotations
    first, second = annotations
    assert first.startswith(
        f"::error file=smoke/podinfo.yaml,line={version_line},"
        "title=smokegate%3A podinfo-smoke/version failed::"
    ), first
    assert "9.9.9" in first and "1.2.3" in first
    assert second.startswith(
        f"::error file=smoke/podinfo.yaml,line={echo_line},"
        "title=smokegate%3A podinfo-smoke/api-key-echo failed::"
    ), second
    assert "***" in second

    assert run.summary.startswith("### ❌ smokegate failed"), run.summary
    assert "podinfo-smoke/version" in run.summary
    everything = run.stdout + run.stderr + run.summary + json.dumps(run.outputs)
    assert token not in everything
    assert token not in (workspace / "out" / "smoke" / "report.json").read_text()

    out = run.outputs
    assert (out["exit-code"], out["ok"], out["passed"], out["failed"], out["errors"]) == (
        "1",
        "false",
        "2",
        "2",
        "0",
    )
    assert out["report-dir"] == str(workspace / "out" / "smoke")
    assert out["report-junit"] == str(workspace / "out" / "smoke" / "junit.xml")


def test_a_suite_error_is_annotated_at_its_line_and_column(
    workspace: Path, tmp_path: Path, release: tuple[str, str], kubeconfig: str
) -> None:
    ns, _ = release
    broken = SUITE.replace('json: {"$.status": ok}', 'jsno: {"$.status": ok}')
    (workspace / "smoke" / "podinfo.yaml").write_text(broken)
    line = line_of(broken, 'jsno: {"$.status": ok}')
    column = broken.splitlines()[line - 1].index("jsno") + 1
    run = run_action(
        {"release": "podinfo", "namespace": ns, "suite": "smoke", "kubeconfig": kubeconfig},
        workspace,
        tmp_path,
    )
    assert run.code == 2, run.stdout + run.stderr
    (annotation,) = after_resume(run)
    assert annotation.startswith(
        f"::error file=smoke/podinfo.yaml,line={line},col={column},"
        "title=smokegate%3A suite error::unknown field 'jsno'"
    ), annotation
    # smokegate wrote no summary (nothing ran): the action says why.
    assert "usage or suite error: nothing ran (exit 2)" in run.summary
    assert "unknown field 'jsno'" in run.summary
    assert (run.outputs["exit-code"], run.outputs["total"], run.outputs["report-json"]) == (
        "2",
        "0",
        "",
    )


def test_a_release_that_never_becomes_ready(
    kube_env: KubeEnv, kube_namespace: str, workspace: Path, tmp_path: Path, kubeconfig: str
) -> None:
    ns = kube_namespace
    apply(kube_env, helmrelease("podinfo", ns))  # no status: helm-controller never got to it
    run = run_action(
        {
            "release": "podinfo",
            "namespace": ns,
            "suite": "smoke",
            "timeout": "2s",
            "kubeconfig": kubeconfig,
        },
        workspace,
        tmp_path,
    )
    assert run.code == 3, run.stdout + run.stderr
    (annotation,) = after_resume(run)
    assert annotation.startswith("::error title=smokegate%3A release never became ready::")
    assert f"helmrelease {ns}/podinfo not ready after 2" in annotation
    assert "the release never became ready (exit 3)" in run.summary
    assert run.outputs["exit-code"] == "3" and run.outputs["ok"] == "false"


def test_bad_inputs_are_reported_without_running_smokegate(workspace: Path, tmp_path: Path) -> None:
    run = run_action({"release": "podinfo", "suite": "nothing/*.yaml"}, workspace, tmp_path)
    assert run.code == 2
    assert run.lines[-1] == (
        "::error title=smokegate action%3A bad input::suite pattern 'nothing/*.yaml' matched no "
        f"file in {workspace}"
    )
    assert not any(line.startswith("::stop-commands::") for line in run.lines)
    assert run.outputs == {"exit-code": "2", "ok": "false"}

    run = run_action({"release": "", "suite": "smoke"}, workspace, tmp_path)
    assert run.code == 2 and "input 'release' is required" in run.stdout

    run = run_action({"release": "x", "annotations": "maybe"}, workspace, tmp_path)
    assert run.code == 2 and "input 'annotations' must be true or false" in run.stdout


# --- action.yml itself -------------------------------------------------------------------------


def test_every_input_reaches_the_script_or_the_install_steps() -> None:
    """A renamed or added input that is not wired through fails here."""
    action = actions.load_action()
    declared = set(action["inputs"])
    gate = actions.step(action, "gate")
    mapped = {}
    for var, value in gate["env"].items():
        if var.startswith("INPUT_"):
            (expr,) = actions.expressions(str(value))
            name = expr.removeprefix("inputs.")
            assert smokegate_action.env_name(name) == var, (var, expr)
            mapped[name] = var
    assert set(mapped) == set(smokegate_action.INPUTS), (
        "the gate step maps exactly what the script reads"
    )
    install_steps = [s for s in action["runs"]["steps"] if s.get("id") != "gate"]
    used_by_install = set(re.findall(r"inputs\.([a-z-]+)", json.dumps(install_steps)))
    assert used_by_install == {"install", "version", "extras", "python-version"}
    assert declared == set(mapped) | used_by_install
    # Defaults agree, so the script behaves the same when run outside Actions.
    for name, default in smokegate_action.INPUTS.items():
        assert str(action["inputs"][name].get("default", "")) == default, name
    assert action["inputs"]["release"]["required"] is True


def test_every_output_is_one_the_script_writes() -> None:
    action = actions.load_action()
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.gate.outputs.{name} }}}}", name
    assert set(action["outputs"]) == set(smokegate_action.OUTPUTS)


def test_every_expression_is_one_the_runner_emulation_knows() -> None:
    """tests/ci/actions.py refuses unknown expressions; this lists what action.yml uses."""
    text = actions.ACTION.read_text()
    used = set(actions.expressions(text))
    allowed = {f"inputs.{name}" for name in actions.load_action()["inputs"]}
    allowed |= {"github.action_path", "steps.install.outputs.bin"}
    allowed |= {f"steps.gate.outputs.{name}" for name in smokegate_action.OUTPUTS}
    assert used <= allowed, used - allowed


def test_action_yml_matches_githubs_schema_and_its_scripts_parse() -> None:
    """SchemaStore's action.yml schema (vendored by check-jsonschema), and `bash -n` on the
    install script (run through the same expansion as the runner would)."""
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency"
    r = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", str(actions.ACTION)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    install = actions.step(actions.load_action(), "install")
    script = actions.EXPRESSION.sub("x", install["run"])
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --- the script's pieces -----------------------------------------------------------------------


def test_workflow_command_escaping_follows_githubs_rules() -> None:
    cmd = smokegate_action.workflow_command(
        "error", "100% down\r\nsee: a, b", file="suites/a,b:c.yaml", line=3, title="x: y, 50%"
    )
    assert cmd == (
        "::error file=suites/a%2Cb%3Ac.yaml,line=3,title=x%3A y%2C 50%25"
        "::100%25 down%0D%0Asee: a, b"
    )
    assert smokegate_action.workflow_command("warning", "plain") == "::warning::plain"


def test_sources_outside_the_workspace_get_no_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "smoke").mkdir(parents=True)
    plan = smokegate_action.Plan(
        ["smokegate"], ws / "smoke", ws, tmp_path, {}, annotations=True, max_annotations=10
    )
    assert smokegate_action.repo_path("web.yaml", plan) == "smoke/web.yaml"
    assert smokegate_action.repo_path("../other/web.yaml", plan) == "other/web.yaml"
    assert smokegate_action.repo_path(str(tmp_path / "elsewhere.yaml"), plan) is None
    assert smokegate_action.split_source("C:/x/y.yaml:12") == ("C:/x/y.yaml", 12)
    assert smokegate_action.split_source("demo.yaml") == ("demo.yaml", None)
    report = {
        "results": [
            {
                "id": "s/a",
                "status": "failed",
                "source": f"{tmp_path}/elsewhere.yaml:4",
                "message": "m",
            },
            {"id": "s/b", "status": "passed", "source": "web.yaml:9", "message": ""},
            {"id": "s/c", "status": "error", "source": "web.yaml:9", "message": "refused"},
        ]
    }
    assert smokegate_action.check_annotations(report, plan) == [
        f"::error title=smokegate%3A s/a failed::m%0A(defined in {tmp_path}/elsewhere.yaml:4)",
        "::error file=smoke/web.yaml,line=9,title=smokegate%3A s/c error::refused",
    ]


def test_annotations_are_capped_with_a_note_of_how_many_more(tmp_path: Path) -> None:
    plan = smokegate_action.Plan(
        ["smokegate"], tmp_path, tmp_path, tmp_path, {}, annotations=True, max_annotations=3
    )
    report = {
        "results": [
            {"id": f"s/{i}", "status": "failed", "source": f"web.yaml:{i}", "message": "no"}
            for i in range(1, 8)
        ]
    }
    lines = smokegate_action.annotations_for(smokegate_action.Outcome(1), report, plan)
    assert len(lines) == 3
    assert lines[0].startswith("::error file=web.yaml,line=1,")
    assert lines[2] == (
        "::error title=smokegate::5 more problems: see the job summary and the reports"
    )
