"""From paths on disk (or stdin) to ``RawSuite``s: every YAML document read with its positions
and validated at the top level (apiVersion, kind, metadata, spec shape). Checks are compiled
later (``suite.loader``), once variables are known. Problems carry ``file:line:col``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from smokegate.core.errors import Problem, SuiteError, UsageError
from smokegate.suite.model import SuiteDoc, kind_names
from smokegate.suite.yamlpos import Document, Path, YamlSyntaxError, load_documents

SUITE_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class RawSuite:
    """A parsed, top-level-validated suite whose checks are not interpolated yet."""

    doc: Document
    model: SuiteDoc
    path: Path  # where this document's data sits (always () today; kept for clarity)

    @property
    def name(self) -> str:
        return self.model.metadata.name

    @property
    def base_dir(self) -> str:
        if self.doc.file == "-" or self.doc.file.startswith("<"):  # stdin, or built in memory
            return os.getcwd()
        return str(FsPath(self.doc.file).resolve().parent)


def find_suite_files(paths: Iterable[str]) -> list[str]:
    files: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        fp = FsPath(p)
        if fp.is_dir():
            found = sorted(
                str(f) for f in fp.rglob("*") if f.suffix in SUITE_SUFFIXES and f.is_file()
            )
            if not found:
                raise UsageError(f"{p}: directory contains no .yaml/.yml suite files")
            files.extend(found)
        elif fp.is_file():
            files.append(str(fp))
        else:
            raise UsageError(f"{p}: no such file or directory")
    if not files:
        raise UsageError("no suite files given")
    # The same file named twice (`suites/ suites/a.yaml`) is one suite, not a duplicate.
    unique: dict[str, str] = {}
    for f in files:
        unique.setdefault(f if f == "-" else str(FsPath(f).resolve()), f)
    return list(unique.values())


def parse_suites(paths: Iterable[str], *, stdin_text: str | None = None) -> list[RawSuite]:
    """Read and structurally validate suite files. Collects all problems before raising."""
    problems: list[Problem] = []
    suites: list[RawSuite] = []
    for file in find_suite_files(paths):
        try:
            text = (
                (stdin_text if stdin_text is not None else sys.stdin.read())
                if file == "-"
                else _read_utf8(file)
            )
        except (OSError, UnicodeDecodeError) as exc:  # (stdin decodes as it reads: no offset)
            problems.append(Problem(file, None, None, f"cannot read: {exc}"))
            continue
        except _NotUtf8 as exc:
            problems.append(exc.problem)
            continue
        try:
            docs = load_documents(text, file)
        except YamlSyntaxError as exc:
            problems.extend(exc.problems)
            continue
        if not docs:
            # Located like every other problem (editors jump to file:line).
            problems.append(Problem(file, 1, 1, "empty file: expected a smokegate Suite"))
        for doc in docs:
            suite = _validate_top(doc, problems)
            if suite is not None:
                suites.append(suite)
    seen: dict[str, str] = {}
    for s in suites:
        if s.name in seen:
            problems.append(
                s.doc.problem(
                    ("metadata", "name"),
                    f"duplicate suite name {s.name!r} (also in {seen[s.name]})",
                )
            )
        seen.setdefault(s.name, s.doc.file)
    if problems:
        raise SuiteError(problems)
    return suites


class _NotUtf8(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _read_utf8(file: str) -> str:
    """The file's text; a file that is not UTF-8 (binary, Latin-1, UTF-16) is refused at the
    first offending byte's line and column, not with a codec's byte offset."""
    data = FsPath(file).read_bytes()
    try:
        # As read_text() would: universal newlines.
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise _NotUtf8(
            Problem(file, line, column, f"not UTF-8 text (byte 0x{byte}): suites are UTF-8 YAML")
        ) from None


def suite_from_data(data: dict[str, Any], name: str) -> RawSuite:
    """A suite built in memory (the checks discovery derives), as if parsed from a file called
    ``name`` (it has no lines to point at). Raises ``SuiteError`` like ``parse_suites``."""
    problems: list[Problem] = []
    suite = _validate_top(Document(file=name, data=data), problems)
    if suite is None:
        raise SuiteError(problems)
    return suite


def _validate_top(doc: Document, problems: list[Problem]) -> RawSuite | None:
    data = doc.data
    if not isinstance(data, dict):
        problems.append(doc.problem((), "expected a mapping with apiVersion: smokegate.io/v1"))
        return None
    if data.get("kind") not in (None, "Suite"):
        problems.append(
            doc.problem(("kind",), f"kind {data.get('kind')!r} is not a smokegate Suite")
        )
        return None
    try:
        model = SuiteDoc.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, doc, ()))
        return None
    return RawSuite(doc, model, ())


def problems_from(
    exc: ValidationError, doc: Document, prefix: Path, *, tagged: bool = False
) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if tagged and loc and loc[0] in kind_names():
            loc = loc[1:]  # drop the union tag pydantic puts first
        etype = err["type"]
        path = (*prefix, *loc)
        key = False
        if etype == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" + _did_you_mean(doc, path)
            key = True
        elif etype == "missing":
            message = f"missing required field {loc[-1]!r}"
            path = path[:-1]
        elif etype in ("union_tag_not_found", "union_tag_invalid"):
            kinds = ", ".join(kind_names())
            message = f"a check needs exactly one kind key ({kinds})"
        else:
            msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            where = ".".join(str(p) for p in loc)
            message = f"{where}: {msg}" if where else msg
        out.append(doc.problem(path, message, key=key))
    return out


def _did_you_mean(doc: Document, path: Path) -> str:
    # The valid names are not in the error; the hint looks among all known field names.
    from smokegate.core.hints import unknown_field_hint
    from smokegate.suite.model import all_field_names

    return unknown_field_hint(str(path[-1]), all_field_names())
