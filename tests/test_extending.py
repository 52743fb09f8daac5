"""docs/extending.md's worked example kind, loaded from the page itself: a kind is its module
plus one registry line, and then suites can use it (lint, plan, run, fail with evidence)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smokegate.api import RunSettings, plan_run, run_plan
from smokegate.checks import KINDS, Kind
from smokegate.core.results import Status
from smokegate.suite import model
from tests.helpers import write_suite

DOC = Path(__file__).resolve().parent.parent / "docs/extending.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def file_contains(tmp_path: Path) -> Iterator[None]:
    module_code, registry_line = _blocks()
    (tmp_path / "docs_example_kind.py").write_text(module_code)
    sys.path.insert(0, str(tmp_path))
    # The registry line as the page shows it, with the module name of this test's copy.
    kind = eval(registry_line.strip().rstrip(","), {"Kind": Kind})
    assert (kind.name, kind.module) == ("fileContains", "smokegate.checks.file_contains")
    KINDS[kind.name] = Kind(kind.name, "docs_example_kind")
    for cached in (model.kind_names, model.kind_model, model.check_adapter):
        cached.cache_clear()
    yield
    del KINDS[kind.name]
    for cached in (model.kind_names, model.kind_model, model.check_adapter):
        cached.cache_clear()
    sys.path.remove(str(tmp_path))
    sys.modules.pop("docs_example_kind", None)


def test_the_worked_example_kind_runs(file_contains: None, tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("server {\n  listen 8080;\n}\n")
    suite = write_suite(
        tmp_path,
        """
        - name: config-rendered
          fileContains: {path: app.conf, text: "listen 8080"}
        - name: wrong-port
          fileContains: {path: app.conf, text: "listen 9090"}
        - name: missing
          fileContains: {path: nope.conf, text: x}
        """,
    )
    plan = plan_run([str(suite)])
    run = run_plan(plan, RunSettings())
    by = {r.name: r for r in run.results}
    assert by["config-rendered"].status is Status.PASSED
    assert by["wrong-port"].status is Status.FAILED
    assert by["wrong-port"].evidence[0].expected == "contains 'listen 9090'"
    assert by["missing"].status is Status.FAILED
    assert by["missing"].error_kind == "not_found"


def test_the_worked_example_kind_is_validated(file_contains: None, tmp_path: Path) -> None:
    from smokegate.core.errors import SuiteError

    suite = write_suite(tmp_path, "- {name: typo, fileContains: {path: a, txt: b}}")
    with pytest.raises(SuiteError) as caught:
        plan_run([str(suite)])
    problems = " | ".join(str(p) for p in caught.value.problems)
    assert "unknown field 'txt'" in problems and "missing required field 'text'" in problems


def test_a_kind_that_needs_the_cluster_says_so_in_its_registry_line(
    file_contains: None, tmp_path: Path
) -> None:
    """``needs_cluster`` is what makes a run read the kubeconfig before anything runs (exit 2 on
    a broken one); the engine and the API never name kinds for it."""
    from smokegate.api import kube_factory_for
    from smokegate.core.errors import UsageError
    from smokegate.kube.client import KubeOptions

    suite = write_suite(tmp_path, "- {name: c, fileContains: {path: a, text: b}}")
    plan = plan_run([str(suite)])
    broken = KubeOptions(kubeconfig=str(tmp_path / "nope"))
    kube_factory_for(plan, broken)  # a kind that needs no cluster: the kubeconfig is not read
    KINDS["fileContains"] = Kind("fileContains", "docs_example_kind", needs_cluster=True)
    with pytest.raises(UsageError, match=r"kubeconfig .*nope"):
        kube_factory_for(plan, broken)
    assert {k.name for k in KINDS.values() if k.needs_cluster} == {
        "kube",
        "helmTest",
        "fileContains",
    }
