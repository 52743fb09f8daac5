#!/usr/bin/env python3
"""Tell why two layer tarballs differ: entries only in one, and entries whose content or
metadata (mode, owner, mtime, link target, PAX records) differ. Used by
``build.sh --check-reproducible``; exit 0 when they have the same entries and contents.

usage: compare-layers.py A.tar B.tar [--limit N]
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
from typing import Any


def entries(path: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            digest = ""
            if member.isfile():
                extracted = tar.extractfile(member)
                digest = hashlib.sha256(extracted.read() if extracted else b"").hexdigest()
            out[member.name] = {
                "type": member.type,
                "mode": oct(member.mode),
                "owner": f"{member.uid}:{member.gid}",
                "mtime": member.mtime,
                "link": member.linkname,
                "size": member.size,
                "sha256": digest,
                "pax": dict(sorted(member.pax_headers.items())),
            }
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(argv[argv.index("--limit") + 1]) if "--limit" in argv else 50
    a, b = entries(argv[1]), entries(argv[2])
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    changed = [
        (name, [k for k in a[name] if a[name][k] != b[name][k]])
        for name in sorted(a.keys() & b.keys())
        if a[name] != b[name]
    ]
    for name in only_a[:limit]:
        print(f"only in first:  {name}")
    for name in only_b[:limit]:
        print(f"only in second: {name}")
    for name, fields in changed[:limit]:
        print(f"differs ({', '.join(fields)}): {name}")
    total = len(only_a) + len(only_b) + len(changed)
    print(f"{total} differing entries ({len(changed)} changed, {len(only_a)}+{len(only_b)} unique)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
