"""Where the server's suites come from: the configured directories, ConfigMaps labelled
``smokegate.io/suite=true``, and the ``smokegate.io/suites`` annotation of a HelmRelease."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smokegate.server.config import SUITE_CONFIGMAP_LABEL, SUITES_ANNOTATION, ServeConfig

if TYPE_CHECKING:
    from smokegate.suite.parse import RawSuite


class SetupError(Exception):
    """The run could not start; the message becomes the ``setup`` check's message."""


def suite_index(config: ServeConfig, extra_files: Sequence[str] = ()) -> dict[str, RawSuite]:
    """Suite name -> the suite, parsed, from the configured directories and ``extra_files``
    (read fresh for each run, so a changed ConfigMap is picked up without a restart; each file
    parsed once, and the run plans the suites parsed here)."""
    from smokegate.suite.loader import parse_suites

    # An empty directory is fine here (its suites may all come from ConfigMaps); the loader
    # would call it an error.
    dirs = [d for d in config.suite_dirs() if any(_suite_files(d))]
    paths = [*dirs, *extra_files]
    if not paths:
        return {}
    return {raw.name: raw for raw in parse_suites(paths)}


def _suite_files(directory: str) -> Any:
    return (p for p in Path(directory).rglob("*") if p.suffix in (".yaml", ".yml"))


def annotation_suites(hr: dict[str, Any] | None) -> list[str]:
    annotations = ((hr or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(SUITES_ANNOTATION) or ""
    return [s.strip() for s in text.split(",") if s.strip()]


async def configmap_suites(config: ServeConfig, kube: Any, root: Path) -> list[str]:
    """Suites from ConfigMaps labelled ``smokegate.io/suite=true`` (every ``*.yaml``/``*.yml``
    key), written to files named by their content's hash: a file is never rewritten, so runs
    planning at the same time never read a half-written suite."""
    cfg = config.suites.config_maps
    import hashlib

    from smokegate.server.kubeobj import configmap_class, plain

    namespaces = cfg.namespaces or config.kubernetes.namespaces or ["*"]
    client = kube.client("default")
    files: list[str] = []
    try:
        for ns in namespaces:
            listing = client.api.list(
                configmap_class(), namespace=ns, labels={SUITE_CONFIGMAP_LABEL: "true"}
            )
            async for obj in listing:
                cm = plain(obj)
                meta = cm.get("metadata") or {}
                for key, text in sorted((cm.get("data") or {}).items()):
                    if not key.endswith((".yaml", ".yml")):
                        continue
                    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                    folder = root / digest
                    # The file name says where the suite came from in file:line errors.
                    path = folder / f"configmap-{meta.get('namespace')}-{meta.get('name')}-{key}"
                    if not path.exists():
                        folder.mkdir(parents=True, exist_ok=True)
                        path.write_text(text, encoding="utf-8")
                    files.append(str(path))
    except Exception as exc:
        from smokegate.kube.client import api_error

        raise SetupError(str(api_error(exc, "listing suite ConfigMaps"))) from None
    finally:
        await client.close()
    return files
