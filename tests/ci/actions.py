"""Run action.yml's steps the way the GitHub Actions runner runs a composite action's `run:` step.

The runner expands ``${{ … }}`` expressions in a step's ``env:`` and ``run:``, then runs the
script with ``bash --noprofile --norc -eo pipefail`` in an environment holding the runner's
variables (GITHUB_WORKSPACE, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP, …) and the step's
``env:``. This module does exactly that for the expressions action.yml uses, and refuses any other
expression, so a new one cannot go unexpanded unnoticed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
SCRIPT = REPO / "ci" / "github" / "smokegate_action.py"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def step(action: dict[str, Any], step_id: str) -> dict[str, Any]:
    (found,) = [s for s in action["runs"]["steps"] if s.get("id") == step_id]
    return found


def expressions(text: str) -> list[str]:
    return EXPRESSION.findall(text)


@dataclass
class StepRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def expand(text: str, context: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        expr = m[1]
        if expr not in context:
            raise AssertionError(f"expression ${{{{ {expr} }}}} is not known to the test runner")
        return context[expr]

    return EXPRESSION.sub(one, text)


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT's two forms: ``name=value`` and ``name<<DELIMITER`` … ``DELIMITER``."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def run_gate_step(
    inputs: dict[str, str],
    *,
    workspace: Path,
    runner_temp: Path,
    smokegate_bin: str,
    timeout: float = 180,
) -> StepRun:
    """Run action.yml's `gate` step with ``inputs`` (unset ones take action.yml's defaults)."""
    action = load_action()
    declared = action["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs not declared in action.yml: {unknown}"
    context = {
        f"inputs.{name}": inputs.get(name, str(spec.get("default", "")))
        for name, spec in declared.items()
    }
    context["github.action_path"] = str(REPO)
    context["steps.install.outputs.bin"] = smokegate_bin  # the install step's output
    gate = step(action, "gate")
    assert gate["shell"] == "bash"
    output_file = runner_temp / "github_output"
    summary_file = runner_temp / "step_summary.md"
    output_file.write_text("")
    summary_file.write_text("")
    env = {
        # What the runner gives every step (the subset smokegate and the script look at).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(runner_temp)),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(REPO),
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "RUNNER_TEMP": str(runner_temp),
        "NO_COLOR": "1",
    }
    env.update({k: expand(str(v), context) for k, v in gate.get("env", {}).items()})
    script = runner_temp / "gate-step.sh"
    script.write_text(expand(gate["run"], context))
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return StepRun(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        parse_outputs(output_file.read_text()),
        summary_file.read_text(),
    )
