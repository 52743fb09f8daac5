"""The dashboard in a real browser (Debian's headless Chromium): the release board and a failed
run's page, with the failing check's evidence. Screenshots go to $SMOKEGATE_ARTIFACTS_DIR (CI
keeps them) or the test's temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.support import ServeProcess, Target, flux_event, request, write_suites

CHROMIUM_HINT = "apt-get install -y -o DPkg::Lock::Timeout=600 chromium"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(f"headless Chromium not found: {CHROMIUM_HINT}")
    return path


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("SMOKEGATE_ARTIFACTS_DIR") or tmp_path / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, Target]]:
    target = Target()
    write_suites(tmp_path / "suites", target.url)
    proc = ServeProcess.for_store(tmp_path, f"sqlite:///{tmp_path / 'h.db'}").start()
    yield proc, target
    proc.stop()
    target.close()


def test_board_and_failed_run_render_in_chromium(
    server: tuple[ServeProcess, Target], tmp_path: Path, artifacts: Path
) -> None:
    proc, target = server
    for revision in ("6.5.0", "6.5.1", "6.6.0"):
        proc.post_hook(flux_event(revision=revision))
        proc.wait_for_runs(int(revision.split(".")[2]) + (2 if revision == "6.6.0" else 1))
    target.healthy = False
    proc.post_hook(flux_event(name="checkout", revision="2.0.0"))
    proc.post_hook(flux_event(revision="6.6.1"))
    runs = proc.wait_for_runs(5)
    failed = next(r for r in runs if r["release"] == "apps/checkout")

    # The HTML as served.
    status, headers, raw = request("GET", proc.url + "/")
    board = raw.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "apps/podinfo" in board and "apps/checkout" in board
    assert board.index("apps/checkout") < board.index("apps/podinfo")  # failing releases first
    assert 'class="rev">6.6.1<' in board and 'class="rev">2.0.0<' in board
    assert board.count('href="/runs/') >= 5  # history strips link every run
    status, _, raw = request("GET", f"{proc.url}/runs/{failed['id']}")
    page = raw.decode()
    assert status == 200 and "FAILED" in page and "health" in page
    assert "expected" in page and "503" in page and "apps/checkout history" in page
    status, _, raw = request("GET", proc.url + "/releases/apps/podinfo")
    assert status == 200 and raw.decode().count('<span class="verdict') == 4

    # In the browser: the DOM after rendering, and screenshots.
    dom = browse(f"{proc.url}/runs/{failed['id']}", tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "web/health" in dom.stdout or "health" in dom.stdout
    assert "status" in dom.stdout and "503" in dom.stdout
    assert "2 of 2 shown" in dom.stdout  # the report's script ran in the browser
    for name, url in (("board", proc.url + "/"), ("failed-run", f"{proc.url}/runs/{failed['id']}")):
        shot = artifacts / f"dashboard-{name}.png"
        shot.unlink(missing_ok=True)
        done = browse(url, tmp_path / "profile", f"--screenshot={shot}")
        assert done.returncode == 0, done.stderr[-2000:]
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
