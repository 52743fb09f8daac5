"""Suite fuzzing (issue 15, part 1): thousands of generated suite files through the loader.

Every generated file (tests/reliability/_fuzz.py: the README's and examples/ suites, mutated)
goes through what ``smokegate lint`` does, in process (``api.plan_run(..., lint=True)``): parse,
validate, interpolate, compile. It must load or fail with ``SuiteError`` whose every problem has
a line (``file:line[:col]: message``) — never another exception (a traceback), never an
unlocated problem. A sample of 200 goes through the CLI (most in process through
``cli.main``, some as real ``smokegate lint`` subprocesses): exit 0 or 2 only.

Profiles: ``ci`` (default) generates ≥ 2,000 suites; ``long``
(``SMOKEGATE_RELIABILITY_PROFILE=long``, ``make fuzz``) ≥ 10,000. Figures: one line
``figures[fuzz-suites]: ...`` in the test output and
``$SMOKEGATE_ARTIFACTS_DIR/reliability/fuzz-suites.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability._figures import publish
from tests.reliability._fuzz import BOMBS, suite_files

PROFILE = os.environ.get("SMOKEGATE_RELIABILITY_PROFILE", "ci")
SUITES = {"ci": 2_000, "long": 10_000}[PROFILE]
CLI_SAMPLE = 200
CLI_SUBPROCESSES = 24  # of the sample, run as real processes (the rest in process: speed)

FIGURES: dict[str, Any] = {}

FUZZ_SETTINGS = settings(
    max_examples=SUITES,
    # Hypothesis' own "ci" profile (chosen when CI is set) derandomizes: every round below would
    # draw the same suites again and never reach SUITES distinct ones. Fresh ones each run.
    derandomize=False,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout; failures print their blob
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)


def classify(path: Path) -> tuple[str, str]:
    """Load ``path`` as ``smokegate lint`` does; ``(outcome, why)``, the outcome one of ``ok``,
    ``located``, ``unlocated`` or ``traceback``."""
    from smokegate.api import plan_run
    from smokegate.core.errors import SuiteError, UsageError

    try:
        plan_run([str(path)], lint=True, env={})
    except SuiteError as exc:
        bad = [p for p in exc.problems if p.line is None]
        if bad:
            return "unlocated", "; ".join(str(p) for p in bad)
        if not exc.problems:
            return "unlocated", f"SuiteError without problems: {exc}"
        return "located", str(exc.problems[0])
    except UsageError as exc:  # one suite file given: nothing a suite contains is a usage error
        return "unlocated", f"UsageError: {exc}"
    except Exception:
        return "traceback", traceback.format_exc()
    return "ok", ""


def yaml_reader(why: str) -> bool:
    """A failure inside YAML reading (suite/yaml*.py and the YAML libraries under them), counted
    apart in the figures so a regression there is told from one in the loader."""
    return "ruamel" in why or "/suite/yaml" in why or ": YAML: " in why or "/yaml/" in why


@pytest.fixture(scope="module", autouse=True)
def _figures(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The module's figures, one line, once its tests ran (whichever of them ran)."""
    yield
    if FIGURES:
        publish(request.config, "fuzz-suites", FIGURES, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_generated_suites_load_or_fail_with_a_location(workdir: Path) -> None:
    """No assertion per example: every generated suite is counted (the figures), then the test
    fails listing one input per distinct failure, with its traceback or message."""
    outcomes: Counter[str] = Counter()
    distinct: set[int] = set()
    failures: dict[tuple[str, str], str] = {}
    target = workdir / "suite.yaml"
    started, cpu = time.monotonic(), time.process_time()

    examples = 0

    def one(raw: bytes) -> None:
        nonlocal examples
        examples += 1
        if hash(raw) in distinct:  # hypothesis repeats small inputs: each counts once
            return
        distinct.add(hash(raw))
        target.write_bytes(raw)
        outcome, why = classify(target)
        if outcome in ("traceback", "unlocated"):
            area = "yaml reader" if yaml_reader(why) else "loader"
            outcomes[f"{outcome} ({area})"] += 1
            last = why.strip().splitlines()[-1]
            key = re.sub(r"\d+|0x[0-9a-f]+", "N", last)[:90]
            failures.setdefault((outcome, key), f"{why[-3000:]}\n--- input ---\n{raw[:600]!r}")
            outcome = outcome + "s" if outcome == "traceback" else outcome
        outcomes[outcome] += 1

    while len(distinct) < SUITES:  # each run a fresh random one; repeats are not counted
        before = len(distinct)
        more = max(50, SUITES - len(distinct))
        settings(FUZZ_SETTINGS, max_examples=more)(given(suite_files())(one))()
        # A round that finds nothing new would repeat forever (a derandomized profile did).
        assert len(distinct) > before, f"no new suites after {len(distinct)} distinct ones"
    FIGURES.update(
        profile=PROFILE,
        suites_generated=sum(outcomes[k] for k in ("ok", "located", "tracebacks", "unlocated")),
        hypothesis_examples=examples,
        loaded=outcomes["ok"],
        refused_located=outcomes["located"],
        tracebacks=outcomes["tracebacks"],
        errors_without_file_line=outcomes["unlocated"],
        **{
            k.replace(" ", "_").replace("(", "").replace(")", ""): v
            for k, v in sorted(outcomes.items())
            if "(" in k
        },
        loader_seconds=round(time.monotonic() - started, 1),
        # On a shared machine wall time says little; CPU time is what an idle core would take.
        loader_cpu_seconds=round(time.process_time() - cpu, 1),
    )
    assert FIGURES["suites_generated"] >= SUITES
    assert outcomes["ok"] and outcomes["located"], outcomes  # both paths really exercised
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(
        f"[{o}] {k}\n{text}" for (o, k), text in failures.items()
    )


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lint_in_process(path: Path) -> tuple[int, str]:
    from smokegate.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["lint", str(path)])
    return code, err.getvalue()


def _lint_subprocess(path: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "smokegate", "lint", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return proc.returncode, proc.stderr


def test_cli_exit_codes_for_a_sample_are_0_or_2(
    workdir: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    files: list[Path] = []

    @settings(FUZZ_SETTINGS, max_examples=CLI_SAMPLE)
    @given(suite_files())
    def collect(raw: bytes) -> None:
        if len(files) < CLI_SAMPLE:
            path = workdir / "cli" / f"s{len(files):03d}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(raw)
            files.append(path)

    collect()
    assert len(files) == CLI_SAMPLE
    cpu = time.process_time() + _children_cpu()
    sub, inproc = files[:CLI_SUBPROCESSES], files[CLI_SUBPROCESSES:]
    results = [(p, *_lint_in_process(p)) for p in inproc]
    with ThreadPoolExecutor(4) as pool:
        results += [(p, *r) for p, r in zip(sub, pool.map(_lint_subprocess, sub), strict=True)]
    codes = Counter(code for _, code, _ in results)
    bad = [(p, c, e) for p, c, e in results if c not in (0, 2) or "Traceback" in e]
    FIGURES.update(
        cli_sample=len(results),
        cli_subprocesses=len(sub),
        cli_exit_codes=dict(sorted(codes.items())),
        cli_exit_codes_other_than_0_or_2=sum(n for c, n in codes.items() if c not in (0, 2)),
        cli_cpu_seconds=round(time.process_time() + _children_cpu() - cpu, 1),
    )
    # Which of them fail inside YAML reading (the same input, loaded in process):
    FIGURES["cli_bad_in_yaml_reader"] = sum(yaml_reader(classify(p)[1]) for p, _, _ in bad)
    assert not bad, "\n".join(f"{p}: exit {c}\n{e}" for p, c, e in bad[:5])


BOMB_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    from smokegate.core.errors import SuiteError
    from smokegate.suite.parse import parse_suites

    out = {}
    for path in sys.argv[1:]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start, cpu = time.perf_counter(), time.process_time()
        try:
            parse_suites([path])
            message = None
        except SuiteError as exc:
            message = str(exc)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out[path] = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": after / 1024,
                     "peak_growth_mb": (after - before) / 1024, "error": message}
    print(json.dumps(out))
    """
)


def test_alias_bombs_are_refused_within_1s_and_100mb(tmp_path: Path) -> None:
    """Each bomb in a fresh process: the load's CPU time (and wall time, reported: on a shared
    machine it measures the other jobs too) and the growth of the process's peak RSS
    (ru_maxrss, so C allocations count too) over its peak after the imports."""
    paths = {}
    for name, text in BOMBS.items():
        paths[name] = tmp_path / f"{name.replace(' ', '-')}.yaml"
        paths[name].write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_PROBE, *map(str, paths.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)
    for name, path in paths.items():
        m = measured[str(path)]
        FIGURES[f"bomb_{name.replace(' ', '_')}"] = (
            f"cpu {m['cpu_seconds']:.2f}s wall {m['seconds']:.2f}s "
            f"peak +{m['peak_growth_mb']:.0f}MB (rss {m['peak_rss_mb']:.0f}MB)"
        )
        assert m["error"], f"{name}: the bomb loaded"
        assert "aliases expand to more than 100,000 values" in m["error"], m["error"]
        assert m["error"].startswith(f"{path}:"), m["error"]  # located
        assert m["cpu_seconds"] < 1.0, (name, m)
        assert m["peak_growth_mb"] < 100, (name, m)


def test_aliases_below_the_limit_still_load(tmp_path: Path) -> None:
    """The limit refuses bombs, not suites that reuse blocks: a document reaching ~75,000
    values through aliases (9^5 leaves) is not refused for its aliases."""
    from smokegate.core.errors import SuiteError
    from smokegate.suite.parse import parse_suites

    text = "\n".join(BOMBS["lists"].splitlines()[:10]) + "\n  checks: []\n"
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as caught:  # vars hold scalars: refused, but not as a bomb
        parse_suites([str(path)])
    assert "aliases expand" not in str(caught.value)
    assert f"{path}:10:8: spec.vars.e" in str(caught.value)


# --- regressions: each defect the fuzzer found, as the smallest suite that showed it --------

HEAD = "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: r}\nspec:\n"
EXEC = (
    HEAD
    + "  checks:\n    - name: e\n"
    + "      exec: {command: [ls], expect: {stdout: {regex: 'a{99999999999}'}}}\n"
)
HTTP_RX = HEAD + (
    "  checks:\n    - name: h\n"
    "      http: {url: 'http://127.0.0.1:1/', expect: {json: {'$.a': {regex: '[a-'}}}}\n"
)
SCHEMA_RX = HEAD + (
    "  checks:\n    - name: h\n"
    "      http: {url: 'http://127.0.0.1:1/', expect: {schema: {pattern: 'a{99999999999}'}}}\n"
)
NAMES = HEAD + "  checks:\n    - name: {a: 1}\n      needs: [x]\n      tcp: {host: h, port: 1}\n"
LOADER_CASES = {
    # parse.py read non-UTF-8 files with a codec error and no line ("position 37")
    "not-utf8": (
        HEAD.encode() + b"  vars: {a: caf\xe9}\n",
        "r.yaml:5:16: not UTF-8 text (byte 0xe9)",
    ),
    "utf16": (("\ufeff" + HEAD).encode("utf-16"), "r.yaml:1:1: not UTF-8 text (byte 0xff)"),
    # an empty file (or only comments, `---`, `~`) was the one problem without a line
    "empty": (b"# nothing here\n---\n", "r.yaml:1:1: empty file"),
    # exec/kube caught re.error only: a repetition count past the C limit was a traceback
    "regex-overflow": (EXEC.encode(), "r.yaml:7:54: exec.expect.stdout.regex: invalid regex"),
    # http regexes (body, header and JSON matchers) were compiled only when the check ran:
    # `lint` said ok, the run failed
    "http-regex": (HTTP_RX.encode(), "r.yaml:7:57: http.expect.json: invalid regex '[a-'"),
    # a JSON Schema `pattern` past the regex engine's limit: OverflowError out of check_schema
    # (found by the long profile)
    "schema-regex-overflow": (
        SCHEMA_RX.encode(),
        "r.yaml:7:59: http.expect.schema: invalid JSON Schema: the repetition number is too large",
    ),
    # an integer duration past float's range was an OverflowError traceback; "inf" was a
    # timeout that never ends
    "huge-duration": (
        (HEAD + "  defaults: {timeout: 1" + "0" * 400 + "}\n  checks: []\n").encode(),
        "r.yaml:5:23: spec.defaults.timeout: duration too large",
    ),
    "infinite-duration": (
        (HEAD + "  defaults: {timeout: inf}\n  checks: []\n").encode(),
        "r.yaml:5:23: spec.defaults.timeout: a duration must be finite",
    ),
    # a check name that is a mapping crashed the `needs` resolution (unhashable dict)
    "name-mapping": (NAMES.encode(), "r.yaml:6:13: name: Input should be a valid string"),
}


@pytest.mark.parametrize("case", sorted(LOADER_CASES))
def test_loader_regressions(case: str, tmp_path: Path) -> None:
    raw, expected = LOADER_CASES[case]
    path = tmp_path / "r.yaml"
    path.write_bytes(raw)
    outcome, why = classify(path)
    assert outcome == "located", why
    assert expected.split(": ", 1)[0] in why and expected.split(": ", 1)[1] in why, why


def test_kube_values_regex_overflow_is_a_validation_error() -> None:
    from pydantic import ValidationError

    from smokegate.checks.kube import DataExpect

    with pytest.raises(ValidationError, match="invalid regex"):
        DataExpect.model_validate({"name": "x", "values": {"k": "a{99999999999}"}})


# Defects in YAML reading the fuzzer found (tracebacks, errors without a line); each is now
# refused with a located error (suite/yamlrt.py, suite/yamlc.py, suite/yamldoc.py MAX_NESTING).
YAML_READER_CASES = {
    "deep-flow-nesting": HEAD + "  vars: {a: " + "[" * 300 + "1" + "]" * 300 + "}\n",
    "control-character": HEAD + '  vars: {a: "x\x1ay"}\n',
    "nul-character": HEAD + "  vars:\x00 {}\n",
    "bad-int-tag": HEAD + "  vars: {a: !!int nope}\n",
    "bad-hex-int": HEAD + "  vars: {a: 0x_}\n",
    "deep-flow-nesting-past-libyaml": HEAD + "  vars: {a: " + "[" * 1200 + "]" * 1200 + "}\n",
    "deep-flow-nesting-with-a-tab": HEAD + "  vars: {a: " + "[" * 300 + "]" * 300 + "}\t\n",
}


@pytest.mark.parametrize("case", sorted(YAML_READER_CASES))
def test_yaml_reader_regressions_refused_with_a_location(case: str, tmp_path: Path) -> None:
    """Each was a traceback or an error without a line before the fix."""
    path = tmp_path / "r.yaml"
    path.write_text(YAML_READER_CASES[case])
    outcome, why = classify(path)
    assert outcome == "located", f"{outcome}: {why[-600:]}"
