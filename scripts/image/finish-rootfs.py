#!/usr/bin/env python3
"""Finish the smokegate image's root filesystem: its user, /data, and the clean-up.

Runs in the Dockerfile's final stage (``python3 finish-rootfs.py /``, the image's own Python) and
in build.sh on the host against the unpacked root (``finish-rootfs.py ROOT``), so both images get
exactly this. Standard library only; idempotent.

* user and group ``smokegate`` (65532), written into passwd/group/shadow/gshadow directly: no
  useradd, whose shadow entry would carry today's date (not reproducible);
* ``/data``: the working directory and volume, owned by that user;
* the paths scripts/image/dpkg-slim excludes (docs, man pages, translations) that the base
  install put there before the exclude was in place: the same globs, the same semantics as dpkg;
* apt lists and caches, logs, backup files and other leftovers of the build, which would only
  grow the image or make two builds differ;
* no setuid/setgid bits (su, mount, passwd, ...): nothing in the image may gain privileges,
  whatever the pod's securityContext says.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import sys
from pathlib import Path

UID = GID = 65532
USER = "smokegate"
HOME = "/tmp"
DATA = "/data"
HERE = Path(__file__).resolve().parent

# Files of the build, never of the image. mmdebstrap already removes some when
# SOURCE_DATE_EPOCH is set; docker builds leave others.
LEFTOVER_GLOBS = [
    "/var/lib/apt/lists/*",
    "/var/cache/apt/*.bin",
    "/var/cache/apt/archives/*.deb",
    "/var/cache/apt/archives/partial/*",
    "/var/cache/debconf/*-old",
    "/var/lib/dpkg/*-old",
    "/var/log/*.log",
    "/var/log/apt/*",
    "/var/cache/ldconfig/aux-cache",
    "/root/.cache",
    "/tmp/*",
    "/var/tmp/*",
]
# Provided by the container runtime (a bind mount each); mmdebstrap copies the build host's.
# Left alone when finishing "/" (inside `docker build` they are the runtime's mounts).
RUNTIME_FILES = ["/etc/hostname", "/etc/resolv.conf"]


def dpkg_globs(path: Path) -> tuple[list[str], list[str]]:
    """path-exclude / path-include patterns of a dpkg config fragment."""
    excludes: list[str] = []
    includes: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, pattern = line.partition(" ")
        (excludes if key == "path-exclude" else includes if key == "path-include" else []).append(
            pattern.strip()
        )
    return excludes, includes


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def slim(root: Path, excludes: list[str], includes: list[str]) -> int:
    """Delete files matching an exclude and no include (dpkg: fnmatch without FNM_PATHNAME, so
    ``*`` crosses ``/``); then directories left empty below each exclude's fixed prefix."""
    removed = 0
    for pattern in excludes:
        base = root / pattern.split("*", 1)[0].lstrip("/").rstrip("/")
        base = base if base.is_dir() else base.parent
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
                full = Path(dirpath) / name
                inside = "/" + str(full.relative_to(root))
                if fnmatch.fnmatchcase(inside, pattern) and not any(
                    fnmatch.fnmatchcase(inside, inc) for inc in includes
                ):
                    full.unlink()
                    removed += 1
            here = Path(dirpath)
            if here != base and not any(here.iterdir()):
                here.rmdir()
    return removed


def reset_apt_archives(root: Path) -> None:
    """/var/cache/apt/archives as a fresh apt leaves it, whatever a build's download cache
    brought along (an old lock file, its partial/ with other times and owners)."""
    archives = root / "var/cache/apt/archives"
    if not archives.is_dir():
        return
    remove(archives / "lock")
    remove(archives / "partial")
    partial = archives / "partial"
    partial.mkdir(mode=0o700)
    partial.chmod(0o700)
    users = (line.split(":") for line in (root / "etc/passwd").read_text().splitlines())
    apt_uid = next((int(u[2]) for u in users if u[0] == "_apt"), 0)
    os.chown(partial, apt_uid, 0)


def drop_setid(root: Path) -> list[str]:
    """Clear setuid/setgid bits, on the root's own filesystem only (not /proc, /sys, mounts)."""
    dropped = []
    device = root.stat().st_dev
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if (Path(dirpath) / d).lstat().st_dev == device]
        for name in filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                full.chmod(stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
                dropped.append("/" + str(full.relative_to(root)))
    return dropped


def add_line(file: Path, name: str, line: str) -> None:
    lines = file.read_text().splitlines() if file.exists() else []
    if any(existing.split(":", 1)[0] == name for existing in lines):
        return
    mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0o644
    file.write_text("\n".join([*lines, line]) + "\n")
    file.chmod(mode)


def add_user(root: Path) -> None:
    etc = root / "etc"
    add_line(etc / "group", USER, f"{USER}:x:{GID}:")
    add_line(etc / "passwd", USER, f"{USER}:x:{UID}:{GID}:smokegate:{HOME}:/usr/sbin/nologin")
    # Locked password, no aging fields: no date in it.
    add_line(etc / "shadow", USER, f"{USER}:!:::::::")
    add_line(etc / "gshadow", USER, f"{USER}:!::")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: finish-rootfs.py ROOT", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if not (root / "etc" / "passwd").is_file():
        print(f"finish-rootfs.py: {root} has no etc/passwd: not a root filesystem", file=sys.stderr)
        return 2
    add_user(root)
    data = root / DATA.lstrip("/")
    data.mkdir(mode=0o755, exist_ok=True)
    os.chown(data, UID, GID)
    data.chmod(0o755)

    excludes, includes = dpkg_globs(HERE / "dpkg-slim")
    removed = slim(root, excludes, includes)
    for pattern in LEFTOVER_GLOBS:
        for match in root.glob(pattern.lstrip("/")):
            remove(match)
    reset_apt_archives(root)
    if root != Path("/"):
        for name in RUNTIME_FILES:
            remove(root / name.lstrip("/"))
    dropped = drop_setid(root)
    print(
        f"finish-rootfs.py: user {USER} ({UID}), {DATA}; {removed} excluded files removed; "
        f"setuid/setgid dropped from {len(dropped)} files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
