"""The discovered suite as YAML a person can read and keep: where every check came from as a
comment above it, and what could not be checked (and why) at the end."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any, Protocol


class _Check(Protocol):
    origin: str
    via: str
    notes: list[str]


class Renderable(Protocol):
    """What rendering reads of a ``build.Discovery`` (declared here: ``Discovery.yaml()`` calls
    this module, so this module must not import ``build``)."""

    source: str
    command: str | None

    @property
    def checks(self) -> Sequence[_Check]: ...
    @property
    def not_checked(self) -> Sequence[object]: ...
    @property
    def notes(self) -> Sequence[str]: ...
    def suite(self) -> dict[str, Any]: ...


# Small mappings read best on one line: `retry: {attempts: 3, interval: 10s, within: 30s}`.
_FLOW_KEYS = {"tags", "retry", "expect", "tls", "release", "labels", "resolve"}
WIDTH = 100


def _commented(value: Any, key: str | None = None) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        out: Any = CommentedMap((k, _commented(v, k)) for k, v in value.items())
    elif isinstance(value, list):
        out = CommentedSeq(_commented(v) for v in value)
    else:
        return value
    if key in _FLOW_KEYS:
        out.fa.set_flow_style()
    return out


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, WIDTH - 2 - len(indent), subsequent_indent=indent, break_on_hyphens=False
    ) or [""]


def render_yaml(discovery: Renderable) -> str:
    from ruamel.yaml import YAML

    doc = _commented(discovery.suite())
    checks = doc["spec"]["checks"]
    for i, check in enumerate(discovery.checks):
        lines = [*_wrap(f"from {check.origin}", "  "), *_wrap(check.via, "  ")]
        for note in check.notes:
            lines += _wrap(note, "  ")
        checks.yaml_set_comment_before_after_key(i, before="\n".join(lines), indent=4)

    head = _wrap(f"Discovered by smokegate from {discovery.source}.")
    if discovery.command:
        head.append(f"Regenerate: {discovery.command}")  # unwrapped: copy-paste must work
    head += _wrap(
        "Keep it as is, or run it next to your own suite: your checks win on name clashes "
        "(smokegate run --discover ... your-suite.yaml)."
    )
    for note in discovery.notes:
        head += _wrap(f"note: {note}", "  ")
    doc.yaml_set_start_comment("\n".join(head))

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a value: long URLs and descriptions stay on one line
    buf = io.StringIO()
    yaml.dump(doc, buf)
    text = buf.getvalue()
    if discovery.not_checked:
        tail = [f"Not checked ({len(discovery.not_checked)}):"]
        for item in discovery.not_checked:
            tail += _wrap(f"- {item}", "    ")
        text += "".join(f"#{' ' if line else ''}{line}\n" for line in tail)
    return text
