"""Where the third-party test runners live for the tests: installed by
scripts/install-test-tools.sh (run by `make deps`) into a project-local cache."""

from __future__ import annotations

import os
from pathlib import Path

CACHE = Path(os.environ.get("SMOKEGATE_TOOLS_CACHE", str(Path.home() / ".cache/smokegate")))
NEWMAN = CACHE / "npm/node_modules/.bin/newman"
K6 = CACHE / "k6-1.1.0/bin/k6"


def tool(path: Path) -> str:
    """The tool's path; a clear failure (never a skip) when the setup did not install it."""
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is missing: run  bash scripts/install-test-tools.sh")
    return str(path)
