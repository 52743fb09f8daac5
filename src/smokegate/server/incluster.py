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


class InClusterJobRunner:
    """The release flow's ``Runner`` for a job whose rule says ``inCluster``: the plan's suites
    run in a Job in the release's namespace (``mapping.in_cluster`` says how the Job looks), and
    the run comes back as if it ran here; ``SetupError`` when the pod ran no check."""

    def __init__(self, kube: Any, job: Any, mapping: Any, *, concurrency: int) -> None:
        self.kube = kube
        self.job = job
        self.mapping = mapping
        self.concurrency = concurrency

    async def __call__(self, plan: Any, run: Any) -> Any:
        from smokegate.api import execute_plan
        from smokegate.incluster.api import InClusterRequest, execute, prepare
        from smokegate.incluster.manifests import DEFAULT_IMAGE, PodOptions

        if not plan.checks:  # Helm test results only: nothing for a pod to run
            return await execute_plan(
                plan, run.settings, context=run.context, extra_results=run.extra_results
            )
        job, rule, facts = self.job, self.mapping.in_cluster, run.facts
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
            cli_vars={**run.vars, **(release_vars if facts.helm_release_namespace else {})},
            concurrency=self.concurrency,
            resolve=tuple(self.mapping.resolve),
            context=run.context,
            extra_results=tuple(run.extra_results),
        )
        prepared = await asyncio.to_thread(prepare, request, namespace=namespace)
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def output(line: str) -> None:
            text = line.rstrip("\n")
            tail.append(text)
            log.info("job %s: pod: %s", job.id, text)

        client = self.kube.client(namespace)
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
