"""Prints the image's sizes and build time after the test summary (test_image.py fills it in):
output captured during a fixture's teardown would never be seen."""

from __future__ import annotations

import pytest

IMAGE_SUMMARY = pytest.StashKey[str]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    line = config.stash.get(IMAGE_SUMMARY, None)
    if line:
        terminalreporter.write_line(line)
