"""The protocol drivers are optional extras: without one, a suite using its kind stops with
exit 2 and the pip command to run (never an ImportError), and everything else still works.

The driver is hidden in a subprocess with ``sys.modules[name] = None``, which makes both
``importlib.util.find_spec`` and ``import`` fail for it exactly as if it were not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_suite

KINDS = {
    "postgres": ("psycopg", "postgres: {host: orders-db.example, password: x}"),
    "mysql": ("aiomysql", "mysql: {host: catalog-db.example, password: x}"),
    "redis": ("redis", "redis: {host: sessions.example}"),
    "grpc": ("grpc", 'grpc: {target: "payments.example:50051"}'),
}
DRIVERS = tuple(module for module, _ in KINDS.values())


def smokegate_without(hidden: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {hidden!r}:\n"
        "    sys.modules[name] = None\n"
        "from smokegate.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["run", "lint"])
def test_missing_driver_is_exit_2_with_the_pip_command(
    tmp_path: Path, kind: str, command: str
) -> None:
    module, block = KINDS[kind]
    suite = write_suite(tmp_path, f"- name: backend\n  {block}")
    proc = smokegate_without((module,), command, str(suite))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"pip install 'smokegate[{kind}]'" in proc.stderr
    assert f"{suite}:" in proc.stderr  # located at the check, like any suite problem
    assert "Traceback" not in proc.stderr and "ImportError" not in proc.stderr


def test_other_kinds_and_the_schema_work_without_any_driver(tmp_path: Path) -> None:
    # Every check module is imported to build the suite schema: none may import its driver.
    schema = smokegate_without(DRIVERS, "schema")
    assert schema.returncode == 0, schema.stderr
    for kind in KINDS:
        assert f'"{kind}"' in schema.stdout
    suite = write_suite(tmp_path, '- name: site\n  http: {url: "http://127.0.0.1:1/"}')
    lint = smokegate_without(DRIVERS, "lint", str(suite))
    assert lint.returncode == 0, lint.stderr
