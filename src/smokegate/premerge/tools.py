"""Finding and running the external tools the pre-merge layer drives: ``kubectl`` (for
``kubectl kustomize``), ``helm`` and ``git``.

Lookup order for each: the explicit path (``--kubectl``/``--helm``), ``$SMOKEGATE_KUBE_BIN``,
the test environment's ``~/.cache/smokegate/kube/bin`` (scripts/kube/ensure.sh puts real helm v4
and kubectl there), then ``$PATH``. A missing tool is a ``UsageError`` that says how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smokegate.core.errors import UsageError

KUBE_BIN = Path.home() / ".cache" / "smokegate" / "kube" / "bin"

_HINTS = {
    "kubectl": "install kubectl (it carries `kubectl kustomize`) or pass --kubectl PATH",
    "helm": "install helm (v3.8+ or v4) or pass --helm PATH",
    "git": "install git",
}


class ToolError(Exception):
    """A tool ran and failed: ``message`` is its own words (stderr), trimmed."""

    def __init__(self, tool: str, args: Sequence[str], code: int, message: str) -> None:
        self.tool = tool
        self.args_ = list(args)
        self.code = code
        self.message = message
        super().__init__(f"{tool} exited {code}: {message}")


@dataclass(frozen=True, slots=True)
class Tools:
    kubectl: str
    helm: str
    git: str = "git"

    @classmethod
    def find(
        cls, *, kubectl: str | None = None, helm: str | None = None, need_helm: bool = True
    ) -> Tools:
        return cls(
            kubectl=find_tool("kubectl", kubectl),
            helm=find_tool("helm", helm) if need_helm else (helm or "helm"),
            git=find_tool("git", None),
        )


def find_tool(name: str, explicit: str | None) -> str:
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise UsageError(f"--{name} {explicit}: not an executable")
        return path
    candidates = []
    if os.environ.get("SMOKEGATE_KUBE_BIN"):
        candidates.append(Path(os.environ["SMOKEGATE_KUBE_BIN"]) / name)
    candidates.append(KUBE_BIN / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name} not found: {_HINTS.get(name, 'install it')}")
    return found


def run_tool(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> str:
    """Run ``argv``; its stdout, or ``ToolError`` with its stderr. Never a shell."""
    tool = Path(argv[0]).name
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            input=input_text,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(tool, argv, -1, f"timed out after {timeout:.0f}s") from None
    except OSError as exc:
        raise ToolError(tool, argv, -1, str(exc)) from None
    if proc.returncode != 0:
        raise ToolError(tool, argv, proc.returncode, tidy_stderr(proc.stderr))
    return proc.stdout


def tidy_stderr(text: str, limit: int = 2000) -> str:
    """A tool's stderr as one readable message: no blank lines, helm's ``Error: `` prefix
    dropped, capped."""
    lines = [ln.rstrip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln[len("Error: ") :] if ln.startswith("Error: ") else ln for ln in lines]
    out = "\n".join(lines) or "(no message)"
    return out if len(out) <= limit else out[:limit] + "…"
