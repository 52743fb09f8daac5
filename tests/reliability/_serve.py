"""Shared by the reliability modules of parts 2, 4 and 5: a real ``smokegate serve`` (the
``tests.server.support`` process), configured by text edits of the standard serve.yaml, and
counts read straight from its SQLite store (what the REST API shows could hide a job)."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability._figures import publish
from tests.server.support import ServeProcess, config_text

WEBHOOK_LINE = "    secrets: [{env: SG_TEST_WEBHOOK_SECRET}]\n"


def serve_config(
    port: int,
    store_url: str,
    *,
    webhook: str = "",
    store: str = "",
    **kw: Any,
) -> str:
    """``tests.server.support.config_text`` plus extra ``webhooks.flux`` keys (``webhook``,
    YAML lines indented 4) and extra ``store`` keys (``store``, flow-style, e.g.
    ``retention: {maxAge: 2s}``)."""
    text = config_text(port, store_url, **kw)
    if webhook:
        text = text.replace(WEBHOOK_LINE, WEBHOOK_LINE + webhook)
    if store:
        text = text.replace(
            f'store: {{url: "{store_url}"}}', f'store: {{url: "{store_url}", {store}}}'
        )
    return text


def start_serve(workdir: Path, store_url: str, **kw: Any) -> ServeProcess:
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    return ServeProcess(workdir, serve_config(port, store_url, **kw), port=port).start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_counts(db: Path) -> dict[str, int]:
    """Rows in the store's ``jobs`` and ``runs`` tables (read-only, while serve runs)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    return {"jobs": int(jobs), "runs": int(runs)}


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS from /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def wait_until(probe: Any, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or probe}")
        time.sleep(interval)


def profile() -> str:
    """``ci`` (default) or ``long`` (``SMOKEGATE_RELIABILITY_PROFILE=long``, ``make fuzz``)."""
    return "long" if os.environ.get("SMOKEGATE_RELIABILITY_PROFILE") == "long" else "ci"


def artifacts_dir(tmp: Path) -> Path:
    """Where ``_figures.publish`` writes (``$SMOKEGATE_ARTIFACTS_DIR/reliability``)."""
    return Path(os.environ.get("SMOKEGATE_ARTIFACTS_DIR") or tmp / "artifacts") / "reliability"


def figures_fixture(part: str) -> Any:
    """A module-scoped ``figures`` dict: each test adds its figures under a key; at the end of
    the module they are published as one line (``figures[PART]: …``) and
    ``$SMOKEGATE_ARTIFACTS_DIR/reliability/PART.json``."""

    @pytest.fixture(scope="module")
    def figures(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[dict[str, Any]]:
        collected: dict[str, Any] = {}
        yield collected
        if collected:
            publish(request.config, part, collected, tmp_path_factory.mktemp("figures"))

    return figures
