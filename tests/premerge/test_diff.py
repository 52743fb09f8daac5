"""``smokegate diff`` between commits of the GitOps repository (real git, helm, kubectl)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from smokegate.cli import main
from tests.premerge import gitops
from tests.premerge.conftest import checkout

SECRETS = (gitops.SECRET_PASSWORD, gitops.SECRET_TOKEN, gitops.SECRET_TOKEN_2)


def diff(capsys: pytest.CaptureFixture[str], repo: dict, *argv: str) -> tuple[int, str, str]:
    code = main(
        [
            "diff",
            *argv,
            "--repo",
            str(repo["repo"]),
            "--chart-dir",
            str(repo["chart_dir"]),
            "--no-pull",
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text
        assert base64.b64encode(s.encode()).decode() not in text


def test_diff_between_commits_json(gitops_repo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = diff(
        capsys, gitops_repo, gitops_repo["fixed"], gitops_repo["change"], "-o", "json"
    )
    assert code == 0, err
    assert_no_secret(out + err)
    data = json.loads(out)
    owners = {o["id"]: o for o in data["owners"]}
    # replicas 3 -> 4 in prod's web release (a targetPath value from the overlay's ConfigMap)
    web = owners["prod/web (clusters/prod)"]
    (deploy,) = [o for o in web["objects"] if o["object"] == "Deployment prod/web"]
    assert deploy["change"] == "changed" and deploy["template"] == "web/templates/deployment.yaml"
    assert "-  replicas: 3\n+  replicas: 4\n" in deploy["diff"]
    assert "\n-replicaCount: 3\n" in web["valuesDiff"]
    assert "\n+replicaCount: 4\n" in web["valuesDiff"]
    assert web["suites"] == ["web-smoke (smoke/web.yaml)"]
    # the added Service and the removed ConfigMap, in both overlays' Kustomizations
    for env in ("prod", "staging"):
        ks = {o["object"]: o for o in owners[f"flux-system/apps-{env}"]["objects"]}
        assert ks[f"Service {env}/web-public"]["change"] == "added"
        assert ks[f"ConfigMap {env}/legacy-settings"]["change"] == "removed"
        assert "-  mode: legacy" in ks[f"ConfigMap {env}/legacy-settings"]["diff"]
        # The new Service is one more route to web's pods: its readiness probe is checked
        # through it too (discovery's rule 12; the pods come from the HelmRelease).
        assert owners[f"flux-system/apps-{env}"]["discoveredChecks"]["new"] == [
            "web-readiness[service=web-public:http]"
        ]
    # the chart version bump
    api = owners["prod/api (clusters/prod)"]
    assert api["chart"] == {"base": "api 1.0.0", "head": "api 1.1.0"}
    assert any("+    helm.sh/chart: api-1.1.0" in o["diff"] for o in api["objects"])
    # the rotated Secret shows *that* it changed
    (secret,) = [
        o
        for o in owners["flux-system/apps-prod"]["objects"]
        if o["object"] == "Secret prod/web-secrets"
    ]
    lines = [ln for ln in secret["diff"].splitlines() if "token:" in ln]
    assert len(lines) == 2 and lines[0].startswith("-") and lines[1].startswith("+")
    assert all("<secret hmac:" in ln for ln in lines) and lines[0][1:] != lines[1][1:]
    # ...and where a chart copied the Secret value (a pod annotation), it is masked too
    assert "<secret hmac:" in deploy["diff"]
    summary = data["summary"]
    assert summary["objectsAdded"] == 2 and summary["objectsRemoved"] == 2


def test_diff_console_and_markdown_never_show_secrets(
    gitops_repo: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    code, console, err = diff(capsys, gitops_repo, gitops_repo["broken"], gitops_repo["change"])
    assert code == 0, err
    assert_no_secret(console + err)
    assert "+ Service prod/web-public added" in console
    assert "- ConfigMap prod/legacy-settings removed" in console
    assert "chart: api 1.0.0 → api 1.1.0" in console
    code, md, err = diff(
        capsys, gitops_repo, gitops_repo["fixed"], gitops_repo["change"], "-o", "markdown"
    )
    assert code == 0
    assert_no_secret(md)
    assert md.count("<details>") == md.count("</details>") == 6
    assert "| ✏️ | HelmRelease prod/web (clusters/prod) |" in md
    assert len(md) < 60_000


def test_markdown_is_capped_with_a_note(
    gitops_repo: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    code, md, _ = diff(
        capsys,
        gitops_repo,
        gitops_repo["fixed"],
        gitops_repo["change"],
        "-o",
        "markdown",
        "--max-chars",
        "4000",
    )
    assert code == 0
    assert len(md) < 4500
    assert "sections left out to keep this comment under 4,000 characters" in md


def test_no_changes_and_exit_code(gitops_repo: dict, capsys: pytest.CaptureFixture[str]) -> None:
    c = gitops_repo["change"]
    code, out, _ = diff(capsys, gitops_repo, c, c, "--exit-code")
    assert code == 0 and "no changes" in out
    code, _, _ = diff(capsys, gitops_repo, gitops_repo["fixed"], c, "--exit-code")
    assert code == 1


def test_two_directories_and_the_working_tree(
    gitops_repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = checkout(gitops_repo["repo"], gitops_repo["fixed"], tmp_path / "base")
    head = checkout(gitops_repo["repo"], gitops_repo["fixed"], tmp_path / "head")
    legacy = head / "apps/base/legacy-settings.yaml"
    legacy.write_text(legacy.read_text().replace("mode: legacy", "mode: modern"))
    code = main(
        ["diff", str(base), str(head), "--chart-dir", str(gitops_repo["chart_dir"]), "-o", "json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    changed = [o["object"] for owner in data["owners"] for o in owner["objects"]]
    assert sorted(changed) == [
        "ConfigMap prod/legacy-settings",
        "ConfigMap staging/legacy-settings",
    ]
    # Without HEAD: the working tree of --repo (uncommitted changes included) against a revision.
    code = main(
        [
            "diff",
            gitops_repo["fixed"],
            "--repo",
            str(head),
            "--chart-dir",
            str(gitops_repo["chart_dir"]),
            "-o",
            "json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["head"].startswith("working tree")
    assert sorted(o["object"] for owner in data["owners"] for o in owner["objects"]) == sorted(
        changed
    )


def test_bad_revision_is_a_usage_error(
    gitops_repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = diff(capsys, gitops_repo, "no-such-branch")
    assert code == 2 and "'no-such-branch': neither a directory nor a git revision" in err
    plain = tmp_path / "plain"
    shutil.copytree(gitops_repo["repo"] / "apps", plain / "apps")
    code = main(["diff", "main", "--repo", str(plain)])
    assert code == 2
    assert "not in a git repository" in capsys.readouterr().err


def test_a_release_the_merge_breaks_is_shown_with_its_error(
    gitops_repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = checkout(gitops_repo["repo"], gitops_repo["fixed"], tmp_path / "base")
    head = checkout(gitops_repo["repo"], gitops_repo["fixed"], tmp_path / "head")
    api = head / "apps/base/api.yaml"
    api.write_text(api.read_text().replace('version: "1.0.0"', 'version: "9.9.9"'))
    argv = ["diff", str(base), str(head), "--chart-dir", str(gitops_repo["chart_dir"]), "--no-pull"]
    code = main([*argv, "-o", "markdown"])
    md = capsys.readouterr().out
    assert code == 0
    assert "HelmRelease prod/api (clusters/prod)" in md
    assert "head: chart &#39;api&#39; 9.9.9" in md or "head: chart 'api' 9.9.9" in md
    assert "| 🗑️ |" not in md  # the release is broken, not removed
    data_code = main([*argv, "-o", "json"])
    owners = {o["id"]: o for o in json.loads(capsys.readouterr().out)["owners"]}
    assert data_code == 0
    api_release = owners["prod/api (clusters/prod)"]
    assert api_release["objects"] == [] and api_release["errors"][0].startswith("head: chart")
