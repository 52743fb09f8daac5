"""Fixtures for the check-kind tests: certificates, a check context, and a CLI runner that
returns the JSON report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import CliResult, load_json, run_cli, write_suite
from tests.servers.tls import Certs, make_certs

from smokegate.checks.base import CheckContext


@pytest.fixture(scope="session")
def certs() -> Certs:
    return make_certs()


@pytest.fixture
async def ctx() -> Any:
    context = CheckContext()
    yield context
    await context.aclose()


@dataclass
class CliRun:
    cli: CliResult
    report: dict[str, Any]

    @property
    def code(self) -> int:
        return self.cli.code

    def result(self, name: str) -> dict[str, Any]:
        for r in self.report["results"]:
            if r["name"] == name:
                return r
        raise AssertionError(f"no result named {name!r} in {[r['name'] for r in self.results]}")

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.report["results"]


@pytest.fixture
def run_suite(tmp_path: Path) -> Callable[..., CliRun]:
    """Write ``checks_yaml`` as a suite, run ``smokegate run`` on it with a JSON report."""

    def _run(checks_yaml: str, *args: str, timeout: float = 60) -> CliRun:
        suite = write_suite(tmp_path, checks_yaml)
        report = tmp_path / "report.json"
        cli = run_cli("run", str(suite), "--report", f"json={report}", *args, timeout=timeout)
        assert report.exists(), f"no JSON report; exit {cli.code}\n{cli.text}"
        return CliRun(cli, load_json(report))

    return _run
