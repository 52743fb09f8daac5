"""The Flux CRDs bundled in ``smokegate/premerge/crds/``, loaded lazily and once per process.

The files are the upstream CRDs, unchanged (see ``crds/README.md``): about 290 kB of YAML, most
of it ``description:`` text. Parsing all of them costs more than the rest of validate's start-up,
so nothing is parsed until an object of a bundled kind is validated, and then only that kind's
file, once per process (every ``Schemas`` of the process shares it: the tests build many).
Descriptions are dropped *before* the YAML parse: that halves its cost, and schema conversion
ignores them anyway (a test checks that the result is identical to a full parse).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

from smokegate.premerge.yamlio import load_all

_GROUP = re.compile(r"^  group: (\S+)$", re.MULTILINE)
_KIND = re.compile(r"^    kind: (\S+)$", re.MULTILINE)
# A description with an inline value (plain, quoted or block scalar): its continuation lines are
# indented deeper than the key. A *property* called "description" has no inline value (its
# schema follows on the next lines), so it never matches and is kept.
_DESCRIPTION = re.compile(r"^( *)description: \S")


def _crd_dir() -> Any:
    return resources.files("smokegate.premerge") / "crds"


@functools.cache
def bundled_kinds() -> dict[tuple[str, str], str]:
    """``(group, kind)`` -> file name, from a cheap scan of each file's head (no YAML parse)."""
    out: dict[tuple[str, str], str] = {}
    for entry in sorted(_crd_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        head = entry.read_text(encoding="utf-8")[:2000]
        group, kind = _GROUP.search(head), _KIND.search(head)
        if group and kind:
            out[(group.group(1), kind.group(1))] = entry.name
    return out


@functools.cache
def bundled_crds(name: str) -> tuple[dict[str, Any], ...]:
    """The CustomResourceDefinitions of one bundled file, descriptions dropped. Callers must
    not mutate them (they are shared by every ``Schemas`` of the process)."""
    text = (_crd_dir() / name).read_text(encoding="utf-8")
    docs = load_all(strip_descriptions(text))
    return tuple(
        d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    )


def strip_descriptions(text: str) -> str:
    """``text`` without its ``description:`` entries (controller-gen's CRD layout: block
    indentation, one key per line)."""
    out: list[str] = []
    skip: int | None = None
    for line in text.split("\n"):
        if skip is not None:
            stripped = line.lstrip(" ")
            if not stripped or len(line) - len(stripped) > skip:
                continue
            skip = None
        m = _DESCRIPTION.match(line)
        if m:
            skip = len(m.group(1))
            continue
        out.append(line)
    return "\n".join(out)
