"""The watch trigger and HA against the real test apiserver (the test plays helm-controller):
a release turning Ready at a new revision starts a run within 1 s; the watch resumes after an
API server restart and re-lists after 410 Gone without re-running tested revisions; two
replicas on one PostgreSQL elect one leader through a Lease, never run a job twice, and the
survivor takes over when the leader is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_flux import apply, helmrelease, patch_status, status_ready
from kubeenv import KubeEnv
from tests.helpers import free_port
from tests.server.conftest import fresh_pg_database
from tests.server.support import (
    ServeProcess,
    Target,
    config_text,
    flux_event,
    get_json,
    write_suites,
)
from tests.servers.postgres import PostgresServer


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


def kube_block(env: KubeEnv, ns: str, *, leader: bool = False) -> str:
    text = (
        "kubernetes:\n  enabled: true\n  watch: true\n"
        f"  kubeconfig: {env.kubeconfig}\n  namespaces: [{ns}]\n  waitTimeout: 20s\n"
    )
    if leader:
        text += (
            f"  leaderElection: {{enabled: true, namespace: {ns}, leaseDuration: 3s, "
            "renewEvery: 1s}\n"
        )
    return text


def serve(tmp: Path, env: KubeEnv, ns: str, store_url: str, **kw: bool) -> ServeProcess:
    port = free_port()
    text = config_text(
        port, store_url, extra=kube_block(env, ns, **kw),
        rules="  - match: {name: nothing-matches-this}\n    suites: [web]\n",
    )  # fmt: skip
    (tmp / f"serve-{port}").mkdir()
    (tmp / f"serve-{port}" / "suites").symlink_to(tmp / "suites")
    return ServeProcess(tmp / f"serve-{port}", text, port=port)


def publish(env: KubeEnv, ns: str, revision: str, generation: int, name: str = "podinfo") -> None:
    """helm-controller finished an upgrade to ``revision`` (digest changes with it)."""
    status = status_ready(name, ns, generation, revision, version=generation)
    status["history"][0]["digest"] = "sha256:" + revision.replace(".", "").ljust(64, "0")
    patch_status(env, "hr", name, ns, status)


def create_release(env: KubeEnv, ns: str, name: str = "podinfo") -> None:
    hr = helmrelease(name, ns)
    hr["metadata"]["annotations"] = {"smokegate.io/suites": "web"}
    apply(env, hr)


def wait_runs(procs: list[ServeProcess], n: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = procs[0].runs()
        if len(runs) >= n:
            return runs
        time.sleep(0.02)
    raise AssertionError(
        f"{len(runs)} runs, wanted {n}:\n" + "\n".join(p.log[-2000:] for p in procs)
    )


# --- the watch ------------------------------------------------------------------------------


def test_ready_at_a_new_revision_starts_a_run_within_a_second(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str, target: Target
) -> None:
    ns = kube_namespace
    write_suites(tmp_path / "suites", target.url)
    create_release(kube_env, ns)
    publish(kube_env, ns, "6.6.1", 1)
    proc = serve(tmp_path, kube_env, ns, f"sqlite:///{tmp_path / 'h.db'}").start()
    try:
        (first,) = wait_runs([proc], 1)  # found by the initial list
        assert (first["trigger"], first["revision"], first["verdict"]) == (
            "watch",
            "6.6.1",
            "passed",
        )
        t0 = time.monotonic()
        publish(kube_env, ns, "6.6.2", 2)
        runs = wait_runs([proc], 2, timeout=5)
        elapsed = time.monotonic() - t0
        print(f"\nwatch: Ready at 6.6.2 -> run finished {elapsed * 1000:.0f} ms after the patch")
        assert elapsed < 1.0
        assert runs[0]["revision"] == "6.6.2"
        # More status writes at the same revision and digest: nothing new.
        publish(kube_env, ns, "6.6.2", 2)
        time.sleep(1)
        assert len(proc.runs()) == 2
    finally:
        proc.stop()


def test_relist_after_410_does_not_rerun_tested_revisions(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str
) -> None:
    """In-process: a watch from a compacted-away version gets 410 (a real apiserver's answer);
    the re-list finds the already-tested revision and the store answers duplicate."""
    from smokegate.server.config import parse_config
    from smokegate.server.execute import KubeAccess
    from smokegate.server.watch import Gone, ReleaseWatcher, helmrelease_class
    from smokegate.store.sql import SqlStore

    ns = kube_namespace
    create_release(kube_env, ns)
    publish(kube_env, ns, "1.0.0", 1)
    config = parse_config(
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n" + kube_block(kube_env, ns),
        str(tmp_path / "serve.yaml"), check_suites=False,
    )  # fmt: skip

    async def scenario() -> None:
        store = SqlStore(f"sqlite:///{tmp_path / 'h.db'}")
        await store.open()
        kube = KubeAccess(str(kube_env.kubeconfig), None)
        try:
            first = ReleaseWatcher(config, store, kube, wake=lambda: None)
            client = kube.client(ns)
            with pytest.raises(Gone):
                await first._watch(client.api, helmrelease_class(), ns, "1")
            await client.close()
            first.start()
            await _until(lambda: _depth(store), 1)
            await first.stop()
            # A new watcher (a re-list after 410, or a restarted replica): no new job.
            second = ReleaseWatcher(config, store, kube, wake=lambda: None)
            second.start()
            await _until(lambda: asyncio.sleep(0, second.relists), 1)
            await asyncio.sleep(0.5)
            assert await _depth(store) == 1
            # A values-only change: same chart version, new digest -> a new job.
            status = status_ready("podinfo", ns, 1, "1.0.0")
            status["history"][0]["digest"] = "sha256:" + "e" * 64
            patch_status(kube_env, "hr", "podinfo", ns, status)
            await _until(lambda: _depth(store), 2)
            await second.stop()
        finally:
            await store.close()

    asyncio.run(scenario())


async def _depth(store: object) -> int:
    depth = await store.queue_depth()  # type: ignore[attr-defined]
    return int(depth["queued"])


async def _until(probe: object, want: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe() >= want:  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {want}")


class RestartableEnv(KubeEnv):
    """A private API server (restarting the session's would disturb other tests) that can be
    restarted in place: same port, same etcd, so clients reconnect to the same cluster."""

    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.cmds = {**getattr(self, "cmds", {}), name: cmd}
        super()._spawn(name, cmd)

    def restart_apiserver(self, down_for: float) -> None:
        procs = dict(self._procs)
        api = procs["apiserver"]
        api.kill()  # a crash; a graceful stop waits out open watches for a long time
        api.wait(timeout=30)
        self._procs = [(n, p) for n, p in self._procs if n != "apiserver"]
        time.sleep(down_for)
        self._spawn("apiserver", self.cmds["apiserver"])
        self._wait_ready()


def test_watch_survives_an_apiserver_restart(
    tmp_path: Path, kube_bin_dir: Path, target: Target
) -> None:
    env = RestartableEnv(kube_bin_dir)
    env.start(tmp_path / "kube")
    try:
        env.apply_crd()
        ns = "restart"
        env.kubectl("create", "namespace", ns)
        write_suites(tmp_path / "suites", target.url)
        create_release(env, ns)
        publish(env, ns, "2.0.0", 1)
        proc = serve(tmp_path, env, ns, f"sqlite:///{tmp_path / 'h.db'}").start()
        try:
            wait_runs([proc], 1)
            env.restart_apiserver(down_for=2)
            # Published right after the restart, before the watch is back (it backs off).
            publish(env, ns, "2.0.1", 2)
            runs = wait_runs([proc], 2, timeout=30)
            assert runs[0]["revision"] == "2.0.1" and runs[0]["trigger"] == "watch"
            status = get_json(proc.url + "/api/v1/status")
            print(f"\nwatch after an apiserver restart: {status['watch']}")
            assert status["watch"]["resumes"] >= 1, status
            assert len(proc.runs()) == 2
        finally:
            proc.stop()
    finally:
        env.stop()


# --- HA -------------------------------------------------------------------------------------


def test_two_replicas_one_leader_no_duplicates_and_failover(
    tmp_path: Path, kube_env: KubeEnv, kube_namespace: str, postgres: PostgresServer,
    target: Target,
) -> None:  # fmt: skip
    ns = kube_namespace
    write_suites(tmp_path / "suites", target.url)
    store_url = fresh_pg_database(postgres)
    create_release(kube_env, ns)
    publish(kube_env, ns, "3.0.0", 1)
    a = serve(tmp_path, kube_env, ns, store_url, leader=True).start()
    b = serve(tmp_path, kube_env, ns, store_url, leader=True).start()
    procs = [a, b]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            leaders = [p for p in procs if get_json(p.url + "/api/v1/status")["leader"]]
            if len(leaders) == 1:
                break
            time.sleep(0.1)
        assert len(leaders) == 1, [get_json(p.url + "/api/v1/status") for p in procs]
        (leader,) = leaders
        (follower,) = [p for p in procs if p is not leader]
        assert not get_json(follower.url + "/api/v1/status")["watching"]
        wait_runs(procs, 1)
        # The same Flux event delivered to both replicas at once: one run.
        body = flux_event(namespace=ns, revision="3.0.0")
        for p in procs:
            assert p.post_hook(body)[0] == 202
        wait_runs(procs, 2)
        time.sleep(1)
        lease = kube_env.kubectl_json("get", "lease", "smokegate-leader", "-n", ns)
        assert lease["spec"]["holderIdentity"] == get_json(leader.url + "/api/v1/status")["worker"]

        leader.kill()
        t0 = time.monotonic()
        while not get_json(follower.url + "/api/v1/status")["leader"]:
            assert time.monotonic() - t0 < 10, follower.log[-2000:]
            time.sleep(0.05)
        takeover = time.monotonic() - t0
        print(f"\nHA: the follower took over {takeover:.2f}s after the leader was killed "
              "(lease 3s, renew every 1s)")  # fmt: skip
        assert takeover <= 3 + 1 + 0.5
        publish(kube_env, ns, "3.0.1", 2)
        runs = wait_runs([follower], 3)
        keys = [(r["revision"], r["trigger"]) for r in runs]
        assert sorted(keys) == [("3.0.0", "watch"), ("3.0.0", "webhook"), ("3.0.1", "watch")]
    finally:
        for p in procs:
            p.stop()
