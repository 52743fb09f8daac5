"""Figures of the reliability suite: one JSON line per measurement in
``$SMOKEGATE_ARTIFACTS_DIR/reliability/<part>.json`` (default ``<repo>/artifacts``), and the same
line printed after pytest's summary, so ``make test`` (``-q``, output captured) shows it.

A plugin registered at run time rather than a conftest hook: output printed by a test is
captured (invisible with ``-q``), and this needs no conftest.py that other modules must share.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_PLUGIN = "smokegate-reliability-figures"


def artifacts_dir() -> Path:
    return Path(os.environ.get("SMOKEGATE_ARTIFACTS_DIR") or REPO / "artifacts") / "reliability"


class _Printer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.lines:
            terminalreporter.section("reliability figures")
            for line in self.lines:
                terminalreporter.write_line(line)


def record(config: pytest.Config, part: str, figures: dict[str, Any]) -> None:
    """Append ``figures`` to ``<part>.json`` and print it after the test summary."""
    out = artifacts_dir()
    out.mkdir(parents=True, exist_ok=True)
    line = {"part": part, "at": round(time.time(), 3), **figures}
    with open(out / f"{part}.json", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=False) + "\n")
    printer = config.pluginmanager.get_plugin(_PLUGIN)
    if printer is None:
        printer = _Printer()
        config.pluginmanager.register(printer, _PLUGIN)
    text = " ".join(f"{k}={_short(v)}" for k, v in figures.items())
    printer.lines.append(f"reliability {part}: {text}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
