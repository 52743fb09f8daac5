#!/usr/bin/env python3
"""Read the image config (what ``docker build`` would put into the OCI config) from the final
stage of the Dockerfile, so build.sh applies exactly the Dockerfile's USER, ENV, WORKDIR,
ENTRYPOINT, CMD, VOLUME, EXPOSE and LABEL: the Dockerfile is the one place they are written.

usage: dockerfile_config.py DOCKERFILE [--build-arg NAME=VALUE ...] [--umoci]
  prints the config as JSON (OCI field names), or with --umoci the ``umoci config`` options,
  one per line.

Covers the Dockerfile syntax this project uses, strictly: exec (JSON) form for ENTRYPOINT, CMD and
VOLUME, ``KEY=VALUE`` pairs for ENV and LABEL, ``$VAR``/``${VAR}`` from ARG and ENV. Anything
else in the final stage that would change the config is an error, not silently ignored.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

# What debian:bookworm-slim's own config contributes (its only Env entry); ENV PATH replaces it.
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# Instructions that do not touch the image config.
NO_CONFIG = {"RUN", "COPY", "ADD"}
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class DockerfileError(ValueError):
    pass


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(p for p in pending if p)
        pending = []
        word, _, rest = joined.partition(" ")
        out.append((start, word.upper(), rest.strip()))
    if pending:
        raise DockerfileError(f"line {start}: instruction continued past the end of the file")
    return out


def _expand(value: str, scope: dict[str, str]) -> str:
    return _VAR.sub(lambda m: scope.get(m.group(1) or m.group(2), ""), value)


def _pairs(number: int, word: str, rest: str, scope: dict[str, str]) -> list[tuple[str, str]]:
    pairs = []
    for token in shlex.split(rest):
        key, sep, value = token.partition("=")
        if not sep:
            raise DockerfileError(f"line {number}: {word} needs KEY=VALUE pairs, got {token!r}")
        pairs.append((key, _expand(value, scope)))
    return pairs


def _json_list(number: int, word: str, rest: str) -> list[str]:
    try:
        value = json.loads(rest)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DockerfileError(f"line {number}: {word} must use the exec (JSON array) form")
    return value


def image_config(dockerfile: Path, build_args: dict[str, str] | None = None) -> dict[str, Any]:
    build_args = build_args or {}
    global_args: dict[str, str] = {}
    steps = instructions(dockerfile.read_text())
    stages = [i for i, (_, word, _) in enumerate(steps) if word == "FROM"]
    if not stages:
        raise DockerfileError(f"{dockerfile}: no FROM")
    for number, word, rest in steps[: stages[0]]:
        if word != "ARG":
            raise DockerfileError(f"line {number}: only ARG may come before the first FROM")
        name, _, default = rest.partition("=")
        global_args[name] = build_args.get(name, default)

    args: dict[str, str] = {}
    env = dict(BASE_ENV)
    config: dict[str, Any] = {"Labels": {}}
    for number, word, rest in steps[stages[-1] + 1 :]:
        scope = {**args, **env}
        if word == "ARG":
            name, sep, default = rest.partition("=")
            value = default if sep else global_args.get(name, "")
            args[name] = build_args.get(name, _expand(value, scope))
        elif word == "ENV":
            env.update(_pairs(number, word, rest, scope))
        elif word == "LABEL":
            config["Labels"].update(_pairs(number, word, rest, scope))
        elif word == "USER":
            config["User"] = _expand(rest, scope)
        elif word == "WORKDIR":
            config["WorkingDir"] = _expand(rest, scope)
        elif word in ("ENTRYPOINT", "CMD"):
            config[word.capitalize()] = _json_list(number, word, rest)
        elif word == "VOLUME":
            config["Volumes"] = {v: {} for v in _json_list(number, word, rest)}
        elif word == "EXPOSE":
            config["ExposedPorts"] = {
                (p if "/" in p else f"{p}/tcp"): {} for p in _expand(rest, scope).split()
            }
        elif word == "STOPSIGNAL":
            config["StopSignal"] = _expand(rest, scope)
        elif word not in NO_CONFIG:
            raise DockerfileError(f"line {number}: {word} is not supported here")
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    return config


def umoci_options(config: dict[str, Any]) -> list[str]:
    opts = ["--clear=config.env", "--clear=config.labels", "--clear=config.entrypoint"]
    opts += ["--clear=config.cmd", "--clear=config.volume", "--clear=config.exposedports"]
    opts += [f"--config.env={e}" for e in config["Env"]]
    opts += [f"--config.label={k}={v}" for k, v in config["Labels"].items()]
    opts += [f"--config.entrypoint={a}" for a in config.get("Entrypoint", [])]
    opts += [f"--config.cmd={a}" for a in config.get("Cmd", [])]
    opts += [f"--config.volume={v}" for v in config.get("Volumes", {})]
    opts += [f"--config.exposedports={p}" for p in config.get("ExposedPorts", {})]
    for key, option in (("User", "user"), ("WorkingDir", "workingdir")):
        if key in config:
            opts.append(f"--config.{option}={config[key]}")
    if "StopSignal" in config:
        raise DockerfileError("STOPSIGNAL: umoci 0.4 cannot set it; drop it or extend build.sh")
    return opts


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    dockerfile, build_args, as_umoci = Path(args[0]), {}, False
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--umoci":
            as_umoci = True
        elif arg == "--build-arg":
            name, sep, value = next(rest, "").partition("=")
            if not sep:
                print("dockerfile_config.py: --build-arg needs NAME=VALUE", file=sys.stderr)
                return 2
            build_args[name] = value
        else:
            print(f"dockerfile_config.py: unknown option {arg}", file=sys.stderr)
            return 2
    try:
        config = image_config(dockerfile, build_args)
        if as_umoci:
            for option in umoci_options(config):
                if "\n" in option:
                    raise DockerfileError(f"newline in {option!r}")
                print(option)
        else:
            print(json.dumps(config, indent=2))
    except (DockerfileError, OSError) as exc:
        print(f"dockerfile_config.py: {dockerfile}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
