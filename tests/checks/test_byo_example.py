"""``examples/byo-suites/`` runs as shipped (real pytest, newman, k6 and curl) against the real
embedded demo service: the example is documentation, so it must stay correct."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import load_json, run_cli
from tests.tools import K6, NEWMAN, tool

from smokegate.demo import ServiceThread

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "byo-suites" / "suite.yaml"


def test_example_passes_against_the_demo_service_and_waits_for_healthz(
    tmp_path: Path,
) -> None:
    path = f"{Path(tool(NEWMAN)).parent}:{Path(tool(K6)).parent}:{os.environ['PATH']}"
    assert run_cli("lint", str(EXAMPLE), env={"PATH": path}).code == 0
    for broken in (False, True):
        svc = ServiceThread(broken=broken, ready_after=0.0)
        svc.start()
        try:
            report = tmp_path / f"r-{broken}.json"
            cli = run_cli(
                "run",
                str(EXAMPLE),
                "--var",
                f"base_url=http://127.0.0.1:{svc.service.ports['http']}",
                f"--report=json={report}",
                env={"PATH": path},
                timeout=180,
            )
        finally:
            svc.stop()
        results = {r["name"]: r for r in load_json(report)["results"]}
        cases = {name: len(r["cases"]) for name, r in results.items()}
        if not broken:
            assert cli.code == 0, cli.text
            assert cases == {"healthz": 0, "functional": 4, "contract": 3, "load": 5, "headers": 2}
        else:
            # The broken demo: /healthz answers 503, so the heavy suites do not even start.
            assert cli.code == 1
            assert results["healthz"]["status"] == "failed"
            assert {results[n]["status"] for n in cases if n != "healthz"} == {"skipped"}
