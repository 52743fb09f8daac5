"""The exception tree. Every error a user can cause is a ``SmokegateError`` with a readable
message; the CLI maps each family to an exit code and never shows a traceback for them."""

from __future__ import annotations

from dataclasses import dataclass


class SmokegateError(Exception):
    """Base of every expected error."""

    exit_code = 4


class UsageError(SmokegateError):
    """Bad flags or arguments: nothing ran."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a suite file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class SuiteError(SmokegateError):
    """One or more problems in suite files; all are collected before raising."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingExtraError(SuiteError):
    """A check kind needs an optional dependency that is not installed."""


class GateTimeout(SmokegateError):
    """The target never became ready (gate): exit 3."""

    exit_code = 3


class ClusterError(SmokegateError):
    """The Kubernetes API refused or failed a request; the message names the resource."""

    exit_code = 4
