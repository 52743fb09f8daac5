"""Figures of the reliability suite: one line in the test output and a JSON file.

pytest captures a test's output; the line must show in a plain ``make test`` (``pytest -q``), so
it is written to the terminal with capturing suspended, and kept in
``$SMOKEGATE_ARTIFACTS_DIR/reliability/<name>.json`` (or under the test's tmp dir) for CI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest


def publish(config: pytest.Config, name: str, figures: dict[str, Any], tmp: Path) -> Path:
    """Print ``figures[name]: k=v, ...`` on the terminal and write them as JSON; the file's path."""
    root = Path(os.environ.get("SMOKEGATE_ARTIFACTS_DIR") or tmp / "artifacts")
    out = root / "reliability" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    line = f"figures[{name}]: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)
    else:
        print(line)
    return out
