"""Part 2 of the reliability suite: hostile requests to ``POST /hooks/flux`` of a real
``smokegate serve`` (subprocess, SQLite store). Every refused request must start nothing: the
figure per case is the HTTP status and the jobs + runs the store gained (0 for each bad case).

Replays: Flux's ``generic-hmac`` signs the body only (no timestamp, no nonce), so a captured
request can be sent again forever. What that can cause is bounded by the store's dedup key
(release, revision, trigger): a replay inside the retention window (``store.retention.maxAge``,
default 30 days) is answered "duplicate" and runs nothing; once retention has forgotten the
job, one replay re-runs that revision once, deduplicated again from then on.
``test_replays_cause_at_most_one_deduplicated_rerun_per_retention_window`` proves it with a 2 s
window. A replay cannot name another release or revision (the body is signed), choose suites
(they come from serve.yaml or the HelmRelease annotation), or bypass the signature.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import hashlib
import hmac
import inspect
import json
import socket
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smokegate.core.secrets import Secret
from smokegate.server import hooks, state
from tests.reliability._serve import (
    artifacts_dir,
    figures_fixture,
    sqlite_counts,
    start_serve,
    wait_until,
)
from tests.server.support import SECRET, ServeProcess, Target, flux_event, signature, write_suites

BODY_TIMEOUT = 2.0  # webhooks.flux.bodyTimeout for these servers (default 10s)


figures = figures_fixture("webhooks")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, target: Target) -> Iterator[ServeProcess]:
    work = tmp_path_factory.mktemp("hostile")
    write_suites(work / "suites", target.url)
    proc = start_serve(
        work,
        f"sqlite:///{work / 'h.db'}",
        webhook=f"    bodyTimeout: {BODY_TIMEOUT}s\n",
    )
    yield proc
    proc.stop()
    assert SECRET not in proc.log  # the key is never logged, whatever was sent
    assert "Traceback" not in proc.log, proc.log[-3000:]


def raw_post(
    port: int,
    body: bytes,
    headers: dict[str, str],
    *,
    chunked: bool = False,
    pace: float = 0.0,
    declared: int | None = None,
) -> tuple[int, bytes]:
    """POST /hooks/flux over a bare socket: full control of the framing and headers (urllib
    adds a Content-Type of its own). ``pace``: seconds between single body bytes (slow loris).
    The server may answer before the body is sent; send errors are ignored, the answer read."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        length = len(body) if declared is None else declared
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
        head = f"POST /hooks/flux HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            s.sendall(head.encode())
            if pace:
                for byte in body:
                    s.sendall(bytes([byte]))
                    time.sleep(pace)
            elif chunked:
                for i in range(0, len(body), 65536):
                    chunk = body[i : i + 65536]
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(body)
        except OSError:
            pass
        answer = b""
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
        head_text, _, payload = answer.partition(b"\r\n\r\n")
        return int(head_text.split(b" ", 2)[1]), payload


def signed(body: bytes, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Signature": signature(body), **extra}


def _hex(body: bytes, algo: str = "sha256", key: str = SECRET) -> str:
    return hmac.new(key.encode(), body, getattr(hashlib, algo)).hexdigest()


def _cases() -> list[tuple[str, bytes, dict[str, str], dict[str, object], int]]:
    """(case, body, headers, raw_post options, expected status)."""
    ev = flux_event(revision="9.9.9")
    other = flux_event(revision="9.9.8")
    big = flux_event(revision="9.9.7").replace(b'"message":"', b'"message":"' + b"x" * 1_100_000)
    ct = {"Content-Type": "application/json"}
    nested = b'{"involvedObject":' * 3000 + b"{}" + b"}" * 3000
    unknown = flux_event(namespace="nobody-maps-this", revision="1.0.0")
    bad_name = flux_event(name="UPPER_case", revision="1.0.0")
    no_rev = json.loads(ev)
    no_rev["metadata"] = {}
    no_rev_body = json.dumps(no_rev, separators=(",", ":")).encode()
    return [
        ("no-signature", ev, ct, {}, 401),
        ("empty-signature", ev, {**ct, "X-Signature": ""}, {}, 401),
        ("wrong-key", ev, {**ct, "X-Signature": "sha256=" + _hex(ev, key="guess")}, {}, 401),
        ("signature-of-other-body", ev, {**ct, "X-Signature": signature(other)}, {}, 401),
        ("truncated-signature", ev, {**ct, "X-Signature": signature(ev)[:40]}, {}, 401),
        ("prefix-colon", ev, {**ct, "X-Signature": "sha256:" + _hex(ev)}, {}, 401),
        ("prefix-missing", ev, {**ct, "X-Signature": _hex(ev)}, {}, 401),
        ("prefix-dash", ev, {**ct, "X-Signature": "sha-256=" + _hex(ev)}, {}, 401),
        ("algorithm-md5", ev, {**ct, "X-Signature": "md5=" + _hex(ev, "md5")}, {}, 401),
        ("algorithm-sha1", ev, {**ct, "X-Signature": "sha1=" + _hex(ev, "sha1")}, {}, 401),
        ("algorithm-mismatch", ev, {**ct, "X-Signature": "sha512=" + _hex(ev)}, {}, 401),
        ("oversized-declared", big, signed(big), {}, 413),
        ("oversized-chunked", big, signed(big), {"chunked": True}, 413),
        ("oversized-lying-length", big, signed(big), {"declared": 100}, 401),
        ("malformed-json", b"{not json", signed(b"{not json"), {}, 400),
        ("json-array", b"[]", signed(b"[]"), {}, 400),
        ("not-utf8", b'{"a":"\xff\xfe"}', signed(b'{"a":"\xff\xfe"}'), {}, 400),
        ("deep-nesting", nested, signed(nested), {}, 400),
        ("empty-body", b"", signed(b""), {}, 400),
        ("content-type-text", ev, signed(ev, **{"Content-Type": "text/plain"}), {}, 415),
        (
            "content-type-form",
            ev,
            signed(ev, **{"Content-Type": "application/x-www-form-urlencoded"}),
            {},
            415,
        ),
        ("content-type-missing", ev, {"X-Signature": signature(ev)}, {}, 415),
        ("unknown-helmrelease", unknown, signed(unknown), {}, 200),
        ("invalid-release-name", bad_name, signed(bad_name), {}, 200),
        (
            "not-a-helmrelease",
            flux_event(kind="Kustomization"),
            signed(flux_event(kind="Kustomization")),
            {},
            200,
        ),
        (
            "reason-not-starting-runs",
            flux_event(reason="UpgradeFailed"),
            signed(flux_event(reason="UpgradeFailed")),
            {},
            200,
        ),
        ("no-revision", no_rev_body, signed(no_rev_body), {}, 422),
    ]


def test_hostile_requests_are_refused_and_start_nothing(
    hostile: ServeProcess, figures: dict[str, Any]
) -> None:
    db = hostile.workdir / "h.db"
    results: dict[str, dict[str, int]] = {}
    for case, body, headers, options, expected in _cases():
        before = sqlite_counts(db)
        status, answer = raw_post(hostile.port, body, headers, **options)  # type: ignore[arg-type]
        after = sqlite_counts(db)
        started = after["jobs"] - before["jobs"] + after["runs"] - before["runs"]
        results[case] = {"status": status, "runsStarted": started}
        assert status == expected, (case, status, answer[:300])
        assert SECRET.encode() not in answer and _hex(body).encode() not in answer, case
    # The worker polls every 200 ms: give anything wrongly queued the time to become a run.
    time.sleep(0.5)
    final = sqlite_counts(db)
    assert final == {"jobs": 0, "runs": 0}, final
    assert hostile.runs() == []
    # Control: the same server does accept the genuine event (so the refusals above are real).
    good = flux_event(revision="9.9.9")
    assert raw_post(hostile.port, good, signed(good))[0] == 202
    wait_until(lambda: sqlite_counts(db)["runs"] == 1, 30, what="the control run")
    hostile.wait_idle()
    bad = {c: r for c, r in results.items() if r["runsStarted"]}
    assert not bad, bad
    figures["refused"] = {
        "cases": len(results),
        "runsStarted": sum(r["runsStarted"] for r in results.values()),
        "byStatus": dict(sorted(Counter(r["status"] for r in results.values()).items())),
    }
    out = artifacts_dir(hostile.workdir) / "webhooks-cases.json"  # every case, not printed
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def test_slow_loris_is_cut_off_and_does_not_stall_others(
    hostile: ServeProcess, figures: dict[str, Any]
) -> None:
    db = hostile.workdir / "h.db"
    before = sqlite_counts(db)
    ev = flux_event(revision="7.7.7")
    # Other clients holding 50 connections with headers half sent (never finished).
    idle = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", hostile.port), timeout=10)
        s.sendall(b"POST /hooks/flux HTTP/1.1\r\nHost: x\r\nContent-Len")
        idle.append(s)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            t0 = time.monotonic()
            # One body byte every 100 ms: ~90 s for the whole event if nobody cut it off.
            loris = pool.submit(raw_post, hostile.port, ev, signed(ev), pace=0.1)
            time.sleep(0.3)
            # Meanwhile another client is served at once.
            t1 = time.monotonic()
            status = raw_post(hostile.port, b"[]", signed(b"[]"))[0]
            other_latency = time.monotonic() - t1
            assert status == 400
            status, answer = loris.result(timeout=60)
            cut_after = time.monotonic() - t0
    finally:
        for s in idle:
            s.close()
    assert status == 408, answer
    assert BODY_TIMEOUT <= cut_after < BODY_TIMEOUT * 1.5 + 1, cut_after
    assert other_latency < 1.0, other_latency
    assert sqlite_counts(db) == before
    figures["slowloris"] = {
        "status": status,
        "cutAfterS": round(cut_after, 2),
        "bodyTimeoutS": BODY_TIMEOUT,
        "otherRequestS": round(other_latency, 3),
        "halfOpenConnections": 50,
        "runsStarted": sqlite_counts(db)["jobs"] - before["jobs"],
    }


def test_a_client_gone_mid_body_is_logged_not_a_traceback(
    hostile: ServeProcess, figures: dict[str, Any]
) -> None:
    db = hostile.workdir / "h.db"
    before = sqlite_counts(db)
    ev = flux_event(revision="6.6.6")
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", hostile.port), timeout=10) as s:
            head = f"POST /hooks/flux HTTP/1.1\r\nHost: x\r\nContent-Length: {len(ev)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in signed(ev).items()) + "\r\n"
            s.sendall(head.encode() + ev[:50])  # then gone
    wait_until(lambda: hostile.log.count("client disconnected") >= 5, 10, what="the log lines")
    assert "Traceback" not in hostile.log, hostile.log[-3000:]
    assert sqlite_counts(db) == before
    figures["goneMidBody"] = {"clients": 5, "tracebacks": 0, "runsStarted": 0}


def test_replays_cause_at_most_one_deduplicated_rerun_per_retention_window(
    tmp_path: Path, target: Target, figures: dict[str, Any]
) -> None:
    write_suites(tmp_path / "suites", target.url)
    window = 2.0
    proc = start_serve(
        tmp_path,
        f"sqlite:///{tmp_path / 'h.db'}",
        store=f"retention: {{maxAge: {window:g}s, interval: 500ms}}",
    )
    try:
        body = flux_event(revision="5.0.0")  # captured once, replayed from here on
        seen_runs: set[str] = set()
        answers: list[int] = []

        def replay(n: int) -> list[dict[str, object]]:
            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                got = list(pool.map(lambda _: proc.post_hook(body), range(n)))
            answers.extend(s for s, _ in got)
            return [a for _, a in got]

        def collect() -> None:
            seen_runs.update(r["id"] for r in proc.runs() if r["revision"] == "5.0.0")

        first = replay(20)  # the original and 19 replays at once: one job
        assert sum(bool(a["queued"]) for a in first) == 1
        wait_until(lambda: proc.runs(), 30, what="the first run")
        proc.wait_idle()
        again = replay(20)  # replays after the run: duplicates
        assert not any(a["queued"] for a in again)
        collect()
        assert len(seen_runs) == 1
        # Retention forgets the job (and its run) after the window ...
        wait_until(lambda: not proc.runs(), 20, 0.2, "retention to remove the run")
        time.sleep(0.6)
        # ... and only then does a replay queue the revision again: once, deduplicated.
        later = replay(20)
        assert sum(bool(a["queued"]) for a in later) == 1
        wait_until(lambda: proc.runs(), 30, what="the rerun")
        proc.wait_idle()
        collect()
        assert set(answers) == {202}
        assert len(seen_runs) == 2, seen_runs
        figures["replay"] = {
            "replays": len(answers) - 1,
            "retentionWindowS": window,
            "windowsPassed": 2,
            "runs": len(seen_runs),
            "bound": "1 run per (release, revision) per retention window",
        }
    finally:
        proc.stop()


def test_signature_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing is not measured (on a shared 2-core machine the noise is orders of magnitude
    above the difference an early-exit ``==`` makes); instead: the digest is only ever
    compared by ``hmac.compare_digest`` (the stdlib's constant-time comparison), every
    configured key is tried whether or not an earlier one matched, and no ``==``/``!=``
    touches a digest or token in the two functions that check them."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hooks.hmac, "compare_digest", counting)
    body = flux_event()
    keys = [Secret(SECRET), Secret("second"), Secret("third")]
    for header in (signature(body), "sha256=" + _hex(body, key="third"), "sha256=" + "0" * 64):
        calls.clear()
        with contextlib.suppress(hooks.HookError):
            hooks.verify_signature(body, header, keys)
        assert len(calls) == len(keys), header  # no early exit on the first match
    secret_names = {"given", "given_bytes", "expected", "reveal", "api_token", "header"}
    for fn in (hooks.verify_signature, state.ServerState.token_ok):
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and {"Eq", "NotEq"} & {
                type(op).__name__ for op in node.ops
            }:
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                assert not names & secret_names, (fn.__qualname__, ast.unparse(node))
        assert "compare_digest" in ast.unparse(tree)
