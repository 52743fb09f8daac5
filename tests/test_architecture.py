"""The house rules (docs/architecture.md): no import circles, nothing below the CLI imports it,
and the import-linter contracts of ``make lint`` really fail when a library module reaches up."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts/import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_import_graph_has_no_circles_and_nothing_imports_the_cli_from_below() -> None:
    graph_mod = _graph_module()
    graph = graph_mod.build()
    assert len(graph.modules) > 100  # it read the real package, not an empty directory
    assert graph.edges["smokegate.cli"]  # and it sees imports (the CLI imports its commands)
    assert graph.cycles() == []
    into_cli = graph.imports_into("smokegate.cli")
    assert into_cli == [("smokegate.__main__", "smokegate.cli")]  # `python -m smokegate` only


def test_the_graph_check_finds_a_circle(tmp_path: Path) -> None:
    """The cycle finder is not vacuous: a two-module circle in a copy is reported."""
    graph_mod = _graph_module()
    pkg = tmp_path / "smokegate"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from smokegate import b\n")
    (pkg / "b.py").write_text("def f():\n    from smokegate.a import x\n")
    (pkg / "c.py").write_text("import smokegate.cli\n")
    (pkg / "cli.py").write_text("")
    graph = graph_mod.build(tmp_path)
    assert graph.cycles() == [["smokegate.a", "smokegate.b"]]
    assert graph.imports_into("smokegate.cli") == [("smokegate.c", "smokegate.cli")]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "pyproject.toml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_linter_contracts_hold_and_fail_on_an_import_from_below(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    kept = _lint_imports(copy)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "3 kept, 0 broken" in kept.stdout

    # A library module (the store) that reaches up into the CLI breaks two contracts.
    base = copy / "src/smokegate/store/base.py"
    base.write_text(base.read_text() + "\n\ndef _violation() -> None:\n    import smokegate.cli\n")
    broken = _lint_imports(copy)
    out = broken.stdout + broken.stderr
    assert broken.returncode != 0, out
    assert "Nothing below the CLI imports it BROKEN" in out
    assert "Layers: cli > server" in out and "BROKEN" in out
    assert "smokegate.store.base -> smokegate.cli" in out
    # It ran on the copy, not the checkout.
    assert (
        str(copy / "src")
        in subprocess.run(
            [sys.executable, "-c", "import smokegate; print(smokegate.__file__)"],
            env={**os.environ, "PYTHONPATH": str(copy / "src")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_checks_stand_below_the_engine_and_core_below_everything(tmp_path: Path) -> None:
    """Issue 16's layers: a check kind that reaches up into the engine, and a ``core`` module
    that reaches into ``suite``, each break the layers contract (no exemption covers them)."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    for module, target in (
        ("checks/tcp.py", "smokegate.engine.runner"),
        ("core/outcome.py", "smokegate.suite.model"),
    ):
        path = copy / "src/smokegate" / module
        path.write_text(path.read_text() + f"\n\ndef _violation() -> None:\n    import {target}\n")
    broken = _lint_imports(copy)
    out = broken.stdout + broken.stderr
    assert broken.returncode != 0, out
    assert "smokegate.checks.tcp -> smokegate.engine.runner" in out
    assert "smokegate.core.outcome -> smokegate.suite.model" in out


def test_examples_demo_is_the_bundled_demo_suite() -> None:
    """README and ``demo --help`` point at examples/demo.yaml; ``smokegate demo`` runs the
    copy packaged with smokegate. They must be the same file."""
    from smokegate.demo import SUITE

    assert (REPO / "examples/demo.yaml").read_bytes() == SUITE.read_bytes()
