"""serve's ``inCluster:`` release rules: a job's suites run in a Job in the release's namespace
(``incluster.api``, as ``run --in-cluster``), and the run comes back as if it ran here, so the
store, the Event, Flux's notification and the dashboard see it like any other run.

The pod's console lines go to the server's log (``job N: pod: …``). A pod that stopped before
running a check (a suite or cluster problem only the pod could see, exit 2 or 4) becomes an
error run with its last lines as the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from smokegate.server.suites import SetupError

log = logging.getLogger("smokegate.server")
TAIL_LINES = 15


async def execute_in_cluster(
    kube: Any,
    job: Any,
    plan: Any,
    facts: Any,
    helm_tests: list[Any],
    mapping: Any,
    context: dict[str, Any],
    *,
    concurrency: int,
) -> Any:
    """The ``RunResult`` of ``plan``'s suites run in the cluster (``mapping.in_cluster`` says
    how the Job looks); ``SetupError`` when the pod ran no check."""
    from smokegate.incluster.api import InClusterRequest, execute, prepare
    from smokegate.incluster.manifests import DEFAULT_IMAGE, PodOptions

    rule = mapping.in_cluster
    namespace = facts.namespace or job.namespace
    release_vars = {k: "" if v is None else str(v) for k, v in facts.variables().items()}
    request = InClusterRequest(
        suites=[suite.file for suite in plan.suites],
        namespace=namespace,
        pod=PodOptions(
            image=rule.image or DEFAULT_IMAGE,
            service_account=rule.service_account,
            image_pull_secrets=tuple(rule.image_pull_secrets),
            env=dict(rule.env),
            labels=dict(rule.pod_labels),
            annotations=dict(rule.pod_annotations),
        ),
        timeout=rule.timeout,
        # A schedule's facts are empty: the pod's `run` then knows no ${release.*}, as here.
        cli_vars={**mapping.vars, **(release_vars if facts.helm_release_namespace else {})},
        concurrency=concurrency,
        resolve=tuple(mapping.resolve),
        context=context,
        extra_results=tuple(helm_tests),
    )
    prepared = await asyncio.to_thread(prepare, request, namespace=namespace)
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def output(line: str) -> None:
        text = line.rstrip("\n")
        tail.append(text)
        log.info("job %s: pod: %s", job.id, text)

    client = kube.client(namespace)
    try:
        outcome = await execute(
            prepared,
            client,
            output=output,
            progress=lambda message: log.info("job %s: %s", job.id, message),
        )
    finally:
        await client.close()
    for note in outcome.notes:
        log.warning("job %s: %s", job.id, note)
    if outcome.run is None:
        lines = " | ".join(line.strip() for line in tail if line.strip())
        raise SetupError(
            f"the in-cluster run stopped before any check ran (exit {outcome.code}): {lines}"
        )
    return outcome.run
