"""Suite-wide test policy: in CI a skipped test is a failure (a missing dependency must be seen,
not silently skipped)."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and os.environ.get("CI"):
        reporter.write_line(f"CI: {skipped} test(s) skipped; skips are failures in CI", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
