"""Edge cases found in review: secrets in odd places, signals, limits, bad report paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port, run_cli, write_suite
from tests.servers.nginx import NginxServer


def _all_output(res, *files: Path) -> str:
    return res.out + res.err + "".join(f.read_text() for f in files if f.exists())


def test_secret_equal_to_a_style_name_does_not_break_the_console(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        '- {name: a, http: {url: "http://127.0.0.1:1/${tok}"}}',
        extra_spec="vars: {tok: {value: dim, secret: true}}",
    )
    res = run_cli("run", str(suite))
    assert res.code == 1, res.text
    assert "internal error" not in res.text and "MarkupError" not in res.text
    assert "/***" in res.out


def test_validation_errors_do_not_print_secret_values(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        '- {name: a, http: {url: "http://exa mple/${env:SG_TOKEN}"}}',
    )
    res = run_cli("lint", str(suite), env={"SG_TOKEN": "supersecretvalue"})
    assert res.code == 2
    assert "url must be http://" in res.err
    # env values are not secret by default; a secret var is:
    suite2 = write_suite(
        tmp_path,
        '- {name: a, http: {url: "http://exa mple/${tok}"}}',
        extra_spec="vars: {tok: {value: '${env:SG_TOKEN}', secret: true}}",
        filename="s2.yaml",
    )
    res2 = run_cli("lint", str(suite2), env={"SG_TOKEN": "supersecretvalue"})
    assert res2.code == 2 and "url must be http://" in res2.err
    assert "supersecretvalue" not in res2.text and "***" in res2.err


def test_url_userinfo_password_is_redacted_everywhere(tmp_path: Path) -> None:
    port = free_port()
    suite = write_suite(
        tmp_path, f'- {{name: a, http: {{url: "http://bob:p4ssw0rdz@127.0.0.1:{port}/"}}}}'
    )
    files = [tmp_path / f"r.{ext}" for ext in ("json", "xml", "md", "html")]
    args = ["run", str(suite)]
    for fmt, f in zip(("json", "junit", "markdown", "html"), files, strict=True):
        args += ["--report", f"{fmt}={f}"]
    res = run_cli(*args)
    assert res.code == 1
    text = _all_output(res, *files)
    assert "p4ssw0rdz" not in text
    assert "Ym9iOnA0c3N3MHJkeg" not in text  # base64("bob:p4ssw0rdz") prefix


def test_secret_straddling_the_snippet_cut_is_not_half_leaked(tmp_path: Path) -> None:
    secret = "S3cr3t-" + "k" * 30 + "-END"
    with NginxServer() as nginx:
        suite = write_suite(
            tmp_path,
            f"""
            - name: echo
              http:
                url: "{nginx.url}/echo"
                method: POST
                body: "{"x" * 480}${{tok}}"
                expect: {{status: 418}}
            """,
            extra_spec=f"vars: {{tok: {{value: '{secret}', secret: true}}}}",
        )
        report = tmp_path / "r.json"
        res = run_cli("run", str(suite), "--report", f"json={report}")
    assert res.code == 1, res.text
    text = _all_output(res, report)
    for i in range(0, len(secret) - 8):
        assert secret[i : i + 8] not in text, secret[i : i + 8]
    snippet = json.loads(report.read_text())["results"][0]["snippet"]
    assert "xxxx" in snippet


def test_matrix_too_large_is_a_located_error(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path, '- {name: m, matrix: {i: {range: [0, 100000000000]}}, http: {url: "http://x"}}'
    )
    res = run_cli("lint", str(suite))
    assert res.code == 2
    assert f"{suite}:6:" in res.err and "more than 100,000 values" in res.err


def test_unwritable_report_path_fails_before_running(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, '- {name: a, exec: {command: ["true"]}}')
    res = run_cli("run", str(suite), "--report", f"html={tmp_path}")
    assert res.code == 2 and "is a directory" in res.err
    assert "✓" not in res.out  # nothing ran


def test_list_needs_no_cluster_for_secret_references(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        '- {name: a, http: {url: "http://x/", headers: {X-T: {secretRef: {name: s, key: k}}}}}',
    )
    res = run_cli("run", str(suite), "--list", env={"KUBECONFIG": str(tmp_path / "none")})
    assert res.code == 0, res.text
    assert "t/a  http" in res.out


def test_select_matrix_check_by_exact_name(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path, '- {name: web, matrix: {port: [80, 443]}, http: {url: "http://x:${port}/"}}'
    )
    res = run_cli("run", str(suite), "--list", "-k", "t/web[port=80]")
    assert res.code == 0 and res.out.split() == ["t/web[port=80]", "http"]


def test_same_file_twice_is_one_suite(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, '- {name: a, http: {url: "http://x/"}}')
    res = run_cli("lint", str(tmp_path), str(suite))
    assert res.code == 0 and "1 suite, 1 check" in res.out


def test_vars_cycle_is_named(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        '- {name: a, http: {url: "http://${a}/"}}',
        extra_spec="vars: {a: '${b}', b: '${a}'}",
    )
    res = run_cli("lint", str(suite))
    assert res.code == 2 and "vars cycle: a -> b -> a" in res.err


def test_sigterm_stops_like_ctrl_c_reports_and_kills_process_groups(tmp_path: Path) -> None:
    marker = "31.4159"
    suite = write_suite(
        tmp_path,
        f"""
        - {{name: quick, exec: {{command: ["true"]}}}}
        - name: slow
          timeout: 60s
          exec: {{command: "sleep {marker} & sleep {marker}"}}
        """,
    )
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smokegate", "run", str(suite), "--report", f"json={report}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    deadline = time.time() + 20
    while time.time() < deadline:
        if subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    assert {r["name"]: r["status"] for r in data["results"]} == {
        "quick": "passed",
        "slow": "skipped",
    }
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.returncode == 1, f"left running: {left.stdout}"


def test_parser_for_one_command_is_the_full_parsers_subparser() -> None:
    """`smokegate run` builds only the `run` subparser (the other command modules are not
    imported): the command table covers every command, and each one's parser is the same."""
    import argparse

    from smokegate.cli import COMMANDS, build_parser

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    full = subparsers(build_parser())
    assert list(full) == [name for name, _, _ in COMMANDS]
    for name in full:
        alone = subparsers(build_parser(only=name))
        assert list(alone) == [name]
        assert alone[name].format_help() == full[name].format_help()
