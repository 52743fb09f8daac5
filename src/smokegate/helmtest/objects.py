"""What a Helm test run creates, and how it is found again: names (``<hook>-sg<run>``), the run
and release labels every created object carries, the annotations naming the hook and revision,
and the record of each object created (``Created``) and of each test's outcome (``LastRun``)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from smokegate.kube.client import ResourceType

RUN_LABEL = "smokegate.io/helm-test-run"
RELEASE_LABEL = "smokegate.io/helm-test-release"
HOOK_ANNOTATION = "smokegate.io/helm-test-hook"
REVISION_ANNOTATION = "smokegate.io/helm-test-revision"
MAX_NAME = 63  # a Job's name becomes its pods' job-name label value


@dataclass(slots=True)
class LastRun:
    """What ``helm test`` records per hook (``last_run``)."""

    started_at: float
    completed_at: float | None
    phase: str


@dataclass(slots=True)
class Created:
    """One object this run created (or is creating: it is tracked before the request)."""

    rt: ResourceType
    name: str
    namespace: str
    hook: str
    deleted: bool = False

    @property
    def ref(self) -> str:
        return f"{self.rt.kind.lower()}/{self.name}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def object_name(hook: str, run_id: str) -> str:
    """``<hook>-sg<run>``, shortened (with a digest of the full name) to fit 63 characters."""
    suffix = f"sg{run_id}"
    name = f"{hook}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(hook.encode()).hexdigest()[:6]
    keep = MAX_NAME - len(suffix) - len(digest) - 2
    return f"{hook[:keep].rstrip('-.')}-{digest}-{suffix}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
