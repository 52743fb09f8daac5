"""A release's test hooks: which hooks are tests, in what order they run, which are selected.

* **Tests** are the hooks whose events include ``test`` (or Helm 2's ``test-success``, which
  Helm 3/4 still accept; ``test-failure`` never was a test and Helm drops it).
* **Order** is Helm's: ascending ``helm.sh/hook-weight`` (an unparsable weight is 0, as with
  Go's ``Atoi``), ties broken by name.
* **Runnable** tests are Pods and Jobs: they end, and their exit code is the verdict. Other kinds
  marked as test hooks (a ConfigMap holding the test script, a ServiceAccount) are *support
  objects*: created in weight order like Helm does, never reported as tests.
* **Selection** (``--filter``): globs on hook names, ``!GLOB`` excludes; Helm's ``name=X`` and
  ``!name=X`` mean the same as ``X`` and ``!X``. Unlike Helm, anything else (``foo=bar``) is an
  error rather than silently ignored. ``-k``/``-t``/``--exclude-tag`` work as for suites; a
  hook's tags come from its ``smokegate.io/tags`` annotation (comma-separated).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import groupby
from typing import Any

from smokegate.core.selection import Selection
from smokegate.helm.release import HelmHook, HelmReleaseRecord
from smokegate.helmtest.target import HelmTestError

TEST_EVENTS = frozenset({"test", "test-success"})
RUNNABLE = {("v1", "Pod"), ("batch/v1", "Job")}
TAGS_ANNOTATION = "smokegate.io/tags"
_HELM_FILTER = re.compile(r"^(!)?\s?name=(.*)$")


@dataclass(frozen=True, slots=True)
class TestHook:
    """One test hook of the release, with its manifest parsed."""

    __test__ = False  # not a pytest class, whatever its name

    name: str
    kind: str
    path: str
    weight: int
    obj: Mapping[str, Any]
    """The hook's object as Helm rendered it (its ``manifest``)."""
    delete_policies: tuple[str, ...] = ()
    last_phase: str = ""
    """Phase of Helm's last run of it (``Succeeded``/``Failed``/…), from the release record."""
    tags: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"helm-test/{self.name}"

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def runnable(self) -> bool:
        """A Pod or Job: something that ends with a verdict."""
        return (self.api_version, self.kind) in RUNNABLE

    @property
    def namespace(self) -> str | None:
        """The namespace the manifest names, if any (Helm honours it)."""
        return (self.obj.get("metadata") or {}).get("namespace") or None


def _weight(hook: HelmHook, annotations: Mapping[str, Any]) -> int:
    if hook.weight:
        return hook.weight
    try:
        return int(str(annotations.get("helm.sh/hook-weight", "0")).strip())
    except ValueError:
        return 0  # Helm: strconv.Atoi error -> weight 0


def _is_test(hook: HelmHook, annotations: Mapping[str, Any]) -> bool:
    events = set(hook.events)
    if not events:  # records written by very old Helm versions: read the annotation instead
        events = {e.strip() for e in str(annotations.get("helm.sh/hook", "")).split(",")}
    return bool(events & TEST_EVENTS)


def release_tests(record: HelmReleaseRecord, describe: str) -> list[TestHook]:
    """The release's test hooks in Helm's run order (weight, then name)."""
    import yaml

    out = []
    for hook in record.hooks:
        try:
            obj = yaml.safe_load(hook.manifest) or {}
        except yaml.YAMLError as exc:
            raise HelmTestError(
                f"{describe}: hook {hook.name}: manifest is not YAML: {exc}"
            ) from None
        if not isinstance(obj, dict):
            raise HelmTestError(f"{describe}: hook {hook.name}: manifest is not an object")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not _is_test(hook, annotations):
            continue
        tags = tuple(
            t.strip() for t in str(annotations.get(TAGS_ANNOTATION, "")).split(",") if t.strip()
        )
        out.append(
            TestHook(
                name=hook.name,
                kind=hook.kind or str(obj.get("kind") or ""),
                path=hook.path,
                weight=_weight(hook, annotations),
                obj=obj,
                delete_policies=hook.delete_policies,
                last_phase=str((hook.last_run or {}).get("phase") or ""),
                tags=tags,
            )
        )
    return sorted(out, key=lambda h: (h.weight, h.name))


def weight_groups(hooks: Iterable[TestHook]) -> list[list[TestHook]]:
    """Consecutive hooks of equal weight (``hooks`` already in run order)."""
    return [list(g) for _, g in groupby(hooks, key=lambda h: h.weight)]


# --- selection ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookFilter:
    """``--filter`` values: include globs (any may match) and exclude globs (none may match)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.include or self.exclude)


def parse_filters(values: Sequence[str]) -> HookFilter:
    """``["a-*", "!*-slow", "name=b", "!name=c"]`` (comma-separated lists too, as Helm's
    ``--filter`` takes them) -> a ``HookFilter``. Unknown ``key=value`` forms are errors."""
    include: list[str] = []
    exclude: list[str] = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            helm = _HELM_FILTER.match(item)
            if helm:
                negate, pattern = bool(helm.group(1)), helm.group(2).strip()
            elif "=" in item:
                raise HelmTestError(
                    f"--filter {item!r}: only hook-name globs are supported (GLOB, !GLOB, "
                    "name=GLOB, !name=GLOB); Helm would silently ignore this filter"
                )
            else:
                negate, pattern = item.startswith("!"), item.lstrip("!").strip()
            if not pattern:
                raise HelmTestError(f"--filter {item!r}: empty pattern")
            (exclude if negate else include).append(pattern)
    return HookFilter(tuple(include), tuple(exclude))


@dataclass(slots=True)
class Choice:
    hook: TestHook
    reason: str | None = None
    """Why it is not selected (None: it runs)."""

    @property
    def selected(self) -> bool:
        return self.reason is None


@dataclass(slots=True)
class Chosen:
    choices: list[Choice] = field(default_factory=list)

    @property
    def selected(self) -> list[TestHook]:
        return [c.hook for c in self.choices if c.selected]

    @property
    def tests(self) -> list[TestHook]:
        """Selected hooks that are tests (Pods and Jobs)."""
        return [h for h in self.selected if h.runnable]


def _flux_keeps(hook: TestHook, filters: Sequence[Mapping[str, Any]]) -> bool:
    # Helm's filter semantics, which Flux's spec.test.filters map onto: exact names, the
    # excludes first, then (if any include is given) only the included names.
    excluded = {f["name"] for f in filters if f.get("exclude")}
    included = {f["name"] for f in filters if not f.get("exclude")}
    return hook.name not in excluded and (not included or hook.name in included)


def choose(
    hooks: Sequence[TestHook],
    *,
    filters: HookFilter = HookFilter(),
    selection: Selection = Selection(),  # noqa: B008  (frozen: never mutated)
    only: Iterable[str] | None = None,
    only_reason: str = "--rerun-failed: it did not fail last time",
    flux_filters: Sequence[Mapping[str, Any]] = (),
) -> Chosen:
    """Apply every selection rule; each unselected hook says which rule dropped it.

    Support objects (non-Pod/Job hooks) follow the name rules only, so a ``--filter`` naming a
    test does not drop the ConfigMap its pod mounts; they are created only if some test runs."""
    wanted = set(only) if only is not None else None
    out = Chosen()
    for hook in hooks:
        out.choices.append(Choice(hook, _reason(hook, filters, selection, wanted, only_reason,
                                                flux_filters)))  # fmt: skip
    if not out.tests:
        for c in out.choices:
            if c.selected:
                c.reason = "support object: no selected test needs it"
    return out


def _reason(
    hook: TestHook,
    filters: HookFilter,
    selection: Selection,
    wanted: set[str] | None,
    only_reason: str,
    flux_filters: Sequence[Mapping[str, Any]],
) -> str | None:
    if flux_filters and not _flux_keeps(hook, flux_filters):
        return "excluded by the HelmRelease's spec.test.filters"
    if not hook.runnable:
        return None
    if filters.include and not any(fnmatchcase(hook.name, p) for p in filters.include):
        return f"not matched by --filter {' '.join(repr(p) for p in filters.include)}"
    for p in filters.exclude:
        if fnmatchcase(hook.name, p):
            return f"excluded by --filter '!{p}'"
    patterns = list(selection.patterns)
    include = [p for p in patterns if not p.startswith("!")]
    if include and not any(fnmatchcase(hook.name, p) or fnmatchcase(hook.id, p) for p in include):
        return f"not matched by -k {' '.join(repr(p) for p in include)}"
    for p in (p[1:] for p in patterns if p.startswith("!")):
        if fnmatchcase(hook.name, p) or fnmatchcase(hook.id, p):
            return f"excluded by -k '!{p}'"
    if selection.tags and not set(selection.tags) & set(hook.tags):
        return f"has none of the tags {', '.join(selection.tags)}"
    dropped = set(selection.exclude_tags) & set(hook.tags)
    if dropped:
        return f"excluded by --exclude-tag {', '.join(sorted(dropped))}"
    if wanted is not None and hook.name not in wanted:
        return only_reason
    return None


def failed_last_time(hooks: Sequence[TestHook], flux_hooks: Mapping[str, Any]) -> set[str]:
    """Names of the tests whose last run failed: Flux's ``testHooks`` when it has any (what
    helm-controller ran), else the phases in Helm's own record (``helm test`` runs)."""
    if flux_hooks:
        return {
            name
            for name, state in flux_hooks.items()
            if isinstance(state, Mapping) and state.get("phase") == "Failed"
        }
    return {h.name for h in hooks if h.last_phase == "Failed"}
