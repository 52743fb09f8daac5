"""Child results under ``serve``: a real ``smokegate serve`` runs a suite with a ``pytest``
check on a Flux event; the stored run keeps every test case (API JSON and JUnit, also after a
restart) and the dashboard's run page lists them with the failure's message."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.server.support import ServeProcess, flux_event, get_json, request

TESTS = """
import os


def test_revision_is_the_released_one():
    assert os.environ["SMOKEGATE_RELEASE_REVISION"] == "6.6.1"


def test_namespace():
    assert os.environ["SMOKEGATE_RELEASE_NAMESPACE"] == "apps"


def test_checkout_total():
    total = 41
    assert total == 42, "checkout total is off by one"
"""


def write_suite(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "functional").mkdir()
    (directory / "functional" / "test_release.py").write_text(textwrap.dedent(TESTS))
    (directory / "web.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: smokegate.io/v1
            kind: Suite
            metadata: {name: web}
            spec:
              checks:
                - name: functional
                  timeout: 60s
                  pytest: {tests: [functional]}
            """
        )
    )


def test_history_keeps_child_results_and_the_dashboard_shows_them(tmp_path: Path) -> None:
    write_suite(tmp_path / "suites")
    proc = ServeProcess.for_store(tmp_path, f"sqlite:///{tmp_path / 'h.db'}").start()
    try:
        status, _ = proc.post_hook(flux_event(revision="6.6.1"))
        assert status == 202
        (run,) = proc.wait_for_runs(1, timeout=90)
        assert run["verdict"] == "failed"
        check_cases(proc, run["id"])
    finally:
        proc.stop()
    # History survives a restart of the server: read from the store, not from memory.
    proc = ServeProcess(tmp_path, proc.config_path.read_text(), port=proc.port).start()
    try:
        check_cases(proc, run["id"])
    finally:
        proc.stop()


def check_cases(proc: ServeProcess, run_id: str) -> None:
    report = get_json(f"{proc.url}/api/v1/runs/{run_id}")["report"]
    (result,) = report["results"]
    assert [(c["name"], c["status"]) for c in result["cases"]] == [
        ("test_revision_is_the_released_one", "passed"),
        ("test_namespace", "passed"),
        ("test_checkout_total", "failed"),
    ]
    failed = result["cases"][2]
    assert failed["message"].startswith("AssertionError: checkout total is off by one")
    status, _, junit = request("GET", f"{proc.url}/api/v1/runs/{run_id}?format=junit")
    assert status == 200
    assert 'name="functional/functional.test_release.test_checkout_total"' in junit.decode()
    status, _, page = request("GET", f"{proc.url}/runs/{run_id}")
    html = page.decode()
    assert status == 200
    assert "test cases · 3 cases: 2 passed, 1 failed" in html
    assert "functional.test_release.test_checkout_total" in html
    assert "checkout total is off by one" in html
