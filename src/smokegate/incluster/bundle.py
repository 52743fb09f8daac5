"""The suite files of an in-cluster run, as one ConfigMap: its keys, where each file appears in
the pod, and the way back from the pod's paths to the local ones.

A suite given by a clean relative path (``suites/web.yaml``) appears at that same path under
the pod's working directory, so the pod's console output and report name files exactly as a
local run would. Any other path (absolute, ``..``, stdin) appears as ``_/NN-<name>`` and is
mapped back when the report is read (``local_path``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from smokegate.core.errors import UsageError

MAX_CONFIGMAP_BYTES = 1024 * 1024
"""The API server refuses a ConfigMap whose keys and values exceed 1 MiB together."""
STDIN_NAME = "stdin.yaml"
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass(frozen=True, slots=True)
class BundledFile:
    local: str
    """The file as a local run names it (``-`` for stdin)."""
    key: str
    """Its ConfigMap key."""
    path: str
    """Where it appears in the pod, relative to the suites directory (the working directory)."""
    text: str


@dataclass(slots=True)
class SuiteBundle:
    files: list[BundledFile]

    @property
    def data(self) -> dict[str, str]:
        return {f.key: f.text for f in self.files}

    @property
    def items(self) -> list[dict[str, str]]:
        """The ConfigMap volume's ``items``: each key at its path."""
        return [{"key": f.key, "path": f.path} for f in self.files]

    @property
    def pod_paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def size(self) -> int:
        return sum(len(f.key.encode()) + len(f.text.encode()) for f in self.files)

    def local_path(self, pod_path: str) -> str:
        """The local name of a file the pod names ``pod_path`` (unchanged if unknown)."""
        for f in self.files:
            if f.path == pod_path:
                return f.local
        return pod_path


def _clean_relative(local: str) -> str | None:
    """``local`` as a POSIX path below the working directory, or None if it is not one."""
    if local == "-" or Path(local).is_absolute():
        return None
    parts = PurePosixPath(Path(local).as_posix()).parts
    if not parts or any(p in ("..", "") for p in parts) or parts[0] == "_":
        return None
    return str(PurePosixPath(*[p for p in parts if p != "."]))


def bundle_suites(paths: Sequence[str], *, stdin_text: str | None = None) -> SuiteBundle:
    """Every suite file ``paths`` name (directories expanded as ``run`` expands them), read now.
    ``UsageError`` when they do not fit in one ConfigMap."""
    from smokegate.suite.parse import find_suite_files

    files: list[BundledFile] = []
    for index, local in enumerate(find_suite_files(paths)):
        if local == "-":
            text, name = stdin_text or "", STDIN_NAME
        else:
            try:
                text = Path(local).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{local}: cannot read: {exc}") from None
            name = Path(local).name
        path = _clean_relative(local) or f"_/{index:02d}-{name}"
        key = f"{index:02d}-{_KEY_CHARS.sub('_', path)[-240:]}"  # keys: at most 253
        files.append(BundledFile(local if local == "-" else str(Path(local)), key, path, text))
    bundle = SuiteBundle(files)
    if bundle.size > MAX_CONFIGMAP_BYTES:
        raise UsageError(
            f"the suites take {bundle.size / 1024:.0f} KiB, more than one ConfigMap holds "
            f"({MAX_CONFIGMAP_BYTES // 1024} KiB): run them in several in-cluster runs"
        )
    return bundle
