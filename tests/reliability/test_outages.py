"""Part 4 of the reliability suite: outages, against real processes.

* kube-apiserver crashed and restarted while ``smokegate gate`` waits and while ``serve``
  watches (a private control plane: see ``_outage_env.ControlPlane``); a revision published
  *during* the outage (through the cluster's second API server) is run after it. Figure: the
  delay from the API server being back to the gate's verdict / the watch's run.
* PostgreSQL stopped while ``serve`` runs jobs, and while a revision is published: the runs
  finished during the outage are kept in memory and written after it, the revision published
  meanwhile is queued after it. Figure: results kept / produced.
* ``serve`` SIGKILLed right after its 202s (some jobs queued, some mid-run): every one runs
  after the restart, each once.
* A target that accepts connections and never answers: every check kind's timeout (and the
  gate's ``--timeout``) is honoured within 10%.
* Disk full for one report (a 64 KiB tmpfs): a one-line error naming it, exit 4, the other
  reports written, no partial file left behind.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, write_suite
from tests.reliability._blackhole import Blackhole
from tests.reliability._outage_env import (
    ControlPlane,
    PlaneStarting,
    RestartablePostgres,
    patch_status,
    wants_plane,
)
from tests.reliability._serve import figures_fixture, sqlite_counts, start_serve, wait_until
from tests.server.conftest import fresh_pg_database
from tests.server.support import REPO, ServeProcess, Target, flux_event, get_json, write_suites

TIMEOUT = 2.0


figures = figures_fixture("outages")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


# --- a target that never answers ---------------------------------------------------------------


def test_a_target_that_never_answers_times_out_on_time(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    hole = Blackhole()
    try:
        p = hole.port
        kinds = {
            "http": f'http: {{url: "http://127.0.0.1:{p}/health"}}',
            "tcp-banner": f'tcp: {{host: 127.0.0.1, port: {p}, expect: {{banner: "^SSH"}}}}',
            "tcp-send": f'tcp: {{host: 127.0.0.1, port: {p}, send: "PING", expect: {{contains: PONG}}}}',  # noqa: E501
            "tls": f"tls: {{host: 127.0.0.1, port: {p}}}",
            "dns-tcp": f"dns: {{name: example.com, nameserver: 127.0.0.1, port: {p}, tcp: true}}",
            "postgres": f"postgres: {{host: 127.0.0.1, port: {p}, user: u, password: pw, database: d}}",  # noqa: E501
            "mysql": f"mysql: {{host: 127.0.0.1, port: {p}, user: u, password: pw, database: d}}",
            "redis": f"redis: {{host: 127.0.0.1, port: {p}}}",
            "grpc": f'grpc: {{target: "127.0.0.1:{p}"}}',
            "kube": "kube: {exists: {kind: ConfigMap, name: x, namespace: default}}",
        }
        checks = "".join(
            f"- name: {name}\n  timeout: {TIMEOUT:g}s\n  {spec}\n" for name, spec in kinds.items()
        )
        suite = write_suite(tmp_path, checks)
        kubeconfig = tmp_path / "kubeconfig"  # an API server that never answers either
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{p}",
                                                   "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }))  # fmt: skip
        report = tmp_path / "r.json"
        gate_timeout = 3.0
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two processes at once
            running = pool.submit(
                run_cli,
                "run", str(suite), "--kubeconfig", str(kubeconfig), "--report", f"json={report}",
            )  # fmt: skip
            t0 = time.monotonic()
            # The gate's own --timeout, waiting for a HelmRelease on that API server.
            gate = run_cli(
                "gate", "hr/podinfo", "-n", "apps", "--timeout", f"{gate_timeout:g}s",
                "--kubeconfig", str(kubeconfig), str(suite),
            )  # fmt: skip
            gate_wall = time.monotonic() - t0
            result = running.result()
        assert result.code == 1, result.text
        durations = {}
        for r in json.loads(report.read_text())["results"]:
            assert r["status"] == "failed" and r["errorKind"] == "timeout", r
            (attempt,) = r["attempts"]
            durations[r["name"]] = attempt["duration"]
        assert set(durations) == set(kinds)
        # Never answered at all: an unreachable cluster (exit 4), not an unready release (3).
        assert gate.code == 4, gate.text
        assert "the Kubernetes API did not answer within" in gate.err, gate.err
        assert "Traceback" not in gate.text
        waited = float(gate.err.split("did not answer within ")[1].split("s", 1)[0])
        deviation = {k: (d - TIMEOUT) / TIMEOUT for k, d in durations.items()}
        deviation["gate"] = (waited - gate_timeout) / gate_timeout
        worst = max(deviation, key=lambda k: abs(deviation[k]))
        figures["timeouts"] = {
            "kinds": len(deviation),
            "timeoutS": TIMEOUT,
            "worst": worst,
            "worstDeviation": f"{deviation[worst] * 100:+.1f}%",
            "gateWallS": round(gate_wall, 2),
        }
        for kind, dev in deviation.items():
            assert -0.01 <= dev <= 0.10, (kind, dev, durations)
        assert hole.accepted >= len(kinds) - 1  # they did connect: the hole accepted them
    finally:
        hole.close()


# --- disk full ---------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, filled up to its last few KiB (mounting needs root: CI runs as root)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        with open(mnt / "filler", "wb") as fh:
            fh.write(b"\0" * (64 * 1024 - 8 * 1024))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_for_one_report_exit_4_and_the_others_written(
    tmp_path: Path, full_disk: Path, target: Target, figures: dict[str, Any]
) -> None:
    # 30 checks: a JUnit report of ~10 KiB, more than the 8 KiB left.
    checks = "".join(
        f"- name: check-{i:02d}\n  description: {'padding ' * 10}\n"
        f'  http: {{url: "{target.url}/health?i={i}"}}\n'
        for i in range(30)
    )
    suite = write_suite(tmp_path, checks)
    ok = tmp_path / "ok"
    args = [
        "run", str(suite),
        "--report", f"junit={full_disk / 'junit.xml'}",
        "--report", f"json={ok / 'report.json'}",
        "--report", f"html={ok / 'report.html'}",
        "--report", f"markdown={ok / 'report.md'}",
    ]  # fmt: skip
    result = run_cli(*args)
    errors = [line for line in result.err.splitlines() if line.startswith("smokegate:")]
    figures["disk-full"] = {
        "exit": result.code,
        "errors": len(errors),
        "othersWritten": sum(
            (ok / n).is_file() for n in ("report.json", "report.html", "report.md")
        ),
        "partialLeft": (full_disk / "junit.xml").exists(),
    }
    assert result.code == 4, result.text
    assert "Traceback" not in result.text
    assert len(errors) == 1, result.err
    assert errors[0].startswith(
        f"smokegate: cannot write junit report to {full_disk / 'junit.xml'}"
    )
    assert "No space left on device" in errors[0]
    assert json.loads((ok / "report.json").read_text())["counts"]["passed"] == 30
    assert "check-29" in (ok / "report.html").read_text()
    assert "check-29" in (ok / "report.md").read_text()
    # A truncated XML would be read by CI as a broken (or, worse, a short) report.
    assert not (full_disk / "junit.xml").exists()


# --- serve SIGKILLed after 202 -----------------------------------------------------------------


def test_serve_killed_after_its_202s_runs_every_job_after_restart(
    tmp_path: Path, target: Target, figures: dict[str, Any]
) -> None:
    write_suites(tmp_path / "suites", target.url)
    db = tmp_path / "h.db"
    rules = "  - match: {namespace: apps}\n    suites: [slow]\n"
    target.slow = 1.0
    slow_before = target.hits.get("/slow", 0)  # the Target is shared by the module's tests
    first = start_serve(tmp_path, f"sqlite:///{db}", rules=rules, worker=", concurrency: 2")
    n = 10
    for i in range(n):
        assert first.post_hook(flux_event(revision=f"3.0.{i}"))[0] == 202
    wait_until(
        lambda: target.hits.get("/slow", 0) >= slow_before + 2, 15, what="two runs in progress"
    )
    first.kill()  # SIGKILL: two jobs mid-run, eight still queued
    killed_at = time.monotonic()
    target.slow = 0.0
    second = start_serve(tmp_path, f"sqlite:///{db}", rules=rules, worker=", concurrency: 4")
    try:
        runs = second.wait_for_runs(n, timeout=60)
        recovered = time.monotonic() - killed_at
        second.wait_idle()
        revisions = sorted(r["revision"] for r in second.runs())
        assert revisions == sorted(f"3.0.{i}" for i in range(n))  # each once, none lost
        attempts = [get_json(f"{second.url}/api/v1/jobs/{r['jobId']}")["attempts"] for r in runs]
        figures["sigkill"] = {
            "accepted": n,
            "runAfterRestart": len(runs),
            "midRunAtKill": sum(a == 2 for a in attempts),
            "allRunWithinS": round(recovered, 1),
        }
        assert sum(a == 2 for a in attempts) >= 1  # some were mid-run: taken over after lease
        assert sqlite_counts(db) == {"jobs": n, "runs": n}
    finally:
        second.stop()
        target.slow = 0.0


# --- the cluster and the store ---------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _plane_starting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PlaneStarting | None]:
    if not wants_plane(request.session):
        yield None
        return
    # Usually already starting: test_load_soak starts it during its soak's idle minute.
    starting = PlaneStarting.shared(tmp_path_factory)
    try:
        yield starting
    finally:
        starting.stop()


@pytest.fixture(scope="module")
def plane(_plane_starting: PlaneStarting | None) -> ControlPlane:
    assert _plane_starting is not None
    return _plane_starting.get()


def test_apiserver_crash_during_gate_and_watch_published_meanwhile_is_run_after(
    tmp_path: Path, plane: ControlPlane, target: Target, figures: dict[str, Any]
) -> None:
    from fixtures_flux import helmrelease, snapshot, status_ready, status_reconciling

    from tests.reliability._outage_env import apply

    ns = "outage-kube"
    plane.kubectl("create", "namespace", ns)
    write_suites(tmp_path / "suites", target.url)
    plane.create_release(ns, "watched", "web")
    plane.publish(ns, "watched", "1.0.0", 1)
    # The gate's release (no suites annotation: serve leaves it alone), mid-upgrade to 2.0.0.
    hr = helmrelease("gated", ns)
    apply(plane, hr)
    plane.publish(ns, "gated", "1.0.0", 1)
    hr["spec"]["chart"]["spec"]["version"] = "2.0.0"
    assert apply(plane, hr)["metadata"]["generation"] == 2
    patch_status(
        plane, "hr", "gated", ns,
        status_reconciling(2, "2.0.0", snapshot("gated", ns, "1.0.0", version=1)),
    )  # fmt: skip
    suite = tmp_path / "suites" / "web.yaml"
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO / "src")}
    # The gate and serve start together (each takes seconds to import and connect).
    gate = subprocess.Popen(
        [sys.executable, "-m", "smokegate", "gate", "hr/gated", "-n", ns, "--revision",
         "2.0.0", "--timeout", "90s", "--kubeconfig", str(plane.kubeconfig), str(suite)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(gate.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    proc: ServeProcess | None = None
    try:
        proc = start_serve(
            tmp_path / "serve",
            f"sqlite:///{tmp_path / 'h.db'}",
            suites_dir=str(tmp_path / "suites"),
            extra=plane.kube_block(ns),
            rules="  - match: {name: nothing-matches-this}\n    suites: [web]\n",
        )
        wait_until(lambda: proc.runs(), 30, what="the watch's first run")
        # Once the gate has read the release and waits (an API server unreachable at its very
        # first read is a configuration error, exit 4 at once: see docs/reliability.md).
        wait_until(lambda: any("waiting for" in line for line in lines), 30, what="the gate")
        time.sleep(0.5)
        assert gate.poll() is None
        plane.stop_apiserver()
        # Flux carries on through the other API server: both releases reach a new revision.
        plane.publish(ns, "watched", "1.0.1", 2, via=plane.via_second)
        patch_status(
            plane.via_second, "hr", "gated", ns,
            status_ready("gated", ns, 2, "2.0.0"),
        )  # fmt: skip
        time.sleep(2.0)  # still down: nothing can be read
        assert gate.poll() is None, "".join(lines)
        back = plane.start_apiserver()
        back_epoch = time.time()
        gate.wait(timeout=90)
        gate_delay = time.monotonic() - back
        reader.join(timeout=10)
        out = "".join(lines)
        runs = wait_until(
            lambda: [r for r in proc.runs() if r["revision"] == "1.0.1"], 60, 0.05, "1.0.1 run"
        )
        watch_delay = runs[0]["finishedAt"] - back_epoch  # the run, not when we looked
        assert gate.returncode == 0, out
        assert "PASSED 2 passed" in out
        assert runs[0]["trigger"] == "watch" and runs[0]["verdict"] == "passed"
        status = get_json(proc.url + "/api/v1/status")
        figures["apiserver"] = {
            "downS": 2.0,
            "gateVerdictAfterBackS": round(gate_delay, 2),
            "watchRunAfterBackS": round(watch_delay, 2),
            "watchResumes": status["watch"]["resumes"],
            "runs": len(proc.runs()),
        }
        assert len(proc.runs()) == 2  # 1.0.0 and 1.0.1, nothing twice
    finally:
        if gate.poll() is None:
            gate.kill()
        if proc is not None:
            proc.stop()


def test_postgres_down_during_runs_and_a_publish_nothing_is_lost(
    tmp_path: Path, plane: ControlPlane, target: Target, figures: dict[str, Any]
) -> None:
    ns = "outage-pg"
    plane.kubectl("create", "namespace", ns)
    write_suites(tmp_path / "suites", target.url)
    pg = RestartablePostgres().start()
    target.slow = 2.0
    proc: ServeProcess | None = None
    try:
        url = fresh_pg_database(pg)
        proc = start_serve(
            tmp_path / "serve",
            url,
            suites_dir=str(tmp_path / "suites"),
            extra=plane.kube_block(ns),
            rules="  - match: {name: nothing-matches-this}\n    suites: [web]\n",
            worker=", concurrency: 4",
        )
        n = 3
        slow_before = target.hits.get("/slow", 0)  # the Target is shared by the module's tests
        for i in range(n):
            plane.create_release(ns, f"app{i}", "slow")
            plane.publish(ns, f"app{i}", "1.0.0", 1)
        wait_until(
            lambda: target.hits.get("/slow", 0) >= slow_before + n, 30, what="three runs running"
        )
        pg.down()  # the runs finish while the store is down
        down_at = time.monotonic()
        plane.create_release(ns, "late", "web")
        plane.publish(ns, "late", "1.0.0", 1)  # the watch sees it while the store is down
        time.sleep(max(0.0, down_at + 4.0 - time.monotonic()))
        assert "cannot save its run yet" in proc.log, proc.log[-3000:]
        back = pg.up()
        back_epoch = time.time()
        runs = proc.wait_for_runs(n + 1, timeout=60)
        after = time.monotonic() - back
        proc.wait_idle()
        runs = proc.runs()
        # Kept: the run recorded is the one that ran before the store came back (not a rerun).
        kept = sum(1 for r in runs if r["release"] != f"{ns}/late" and r["startedAt"] < back_epoch)
        figures["postgres"] = {
            "downS": 4.0,
            "resultsProduced": n,
            "resultsKept": kept,
            "publishedDuringOutageRun": any(r["release"] == f"{ns}/late" for r in runs),
            "allWrittenAfterBackS": round(after, 2),
        }
        assert sorted(r["release"] for r in runs) == sorted(
            [f"{ns}/app{i}" for i in range(n)] + [f"{ns}/late"]
        )
        assert kept == n, proc.log[-6000:]  # written after recovery, not run again
        assert all(r["verdict"] == "passed" for r in runs), runs
    finally:
        target.slow = 0.0
        if proc is not None:
            proc.stop()
        pg.stop()
