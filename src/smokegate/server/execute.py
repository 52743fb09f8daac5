"""One job -> one run, through the release flow ``gate`` runs too
(``app.release.run_release``: wait for Flux, facts, Secrets, discovery, Helm tests, plan, run,
redact once, report back through the configured notifiers). This module makes the job's
request, chooses its suites once the HelmRelease is read, logs what the flow reports, and turns
the redacted run into the stored one.

Which suites run, first match wins:

1. ``suites`` in the job's payload (a manual run that names them; a schedule's own list);
2. the HelmRelease's ``smokegate.io/suites: a,b`` annotation (Kubernetes enabled);
3. the first ``releases:`` rule of serve.yaml whose selector matches.

Each suite file is parsed once per job (the index of suites by name is built from the parsed
files). Discovery (checks derived from the release's probes, Services and Ingresses, as
``gate --discover``) joins them when the HelmRelease's ``smokegate.io/discover`` annotation says
``"true"``, or, without that annotation, when the matching rule says ``discover: true``; not
for a run whose payload names its suites. It reads the Helm release Secret after the wait, so
it needs Kubernetes and a HelmRelease: without them it is skipped (a warning at start). The
suites' checks win on name clashes (merged in memory); discovery alone is enough to run.

Anything that stops a run before a check runs (no HelmRelease, a suite error, Flux reporting
the release failed, the cluster unreachable) is recorded as a run with verdict ``error`` and one
``setup`` check saying why, so the dashboard and API show it next to the other runs.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.app.release import KubeCluster, Quiet
from smokegate.server.config import (
    ServeConfig,
    discover_annotation,
)
from smokegate.server.error_runs import describe_error, error_run
from smokegate.server.suites import SetupError, annotation_suites, configmap_suites, suite_index
from smokegate.store.base import Job, NewRun, Verdict

__all__ = ["JobRunner", "KubeAccess", "Outcome", "SetupError", "error_run", "suite_index"]

log = logging.getLogger("smokegate.server")

# Triggers whose revision is a chart version Flux has (or will have) released.
CHART_REVISION_TRIGGERS = frozenset({"webhook", "watch"})
# Triggers that may name a canary that is not a HelmRelease: tested with the facts given.
CANARY_TRIGGERS = frozenset({"flagger", "argo"})


@dataclass(slots=True)
class RunMapping:
    """What a job runs: suite names, the rule's variables and resolve overrides, and whether
    discovered checks join them."""

    suites: list[str]
    vars: dict[str, str] = field(default_factory=dict)
    discover: bool = False
    resolve: list[str] = field(default_factory=list)
    """``HOST:PORT:ADDR`` entries (the rule's ``resolve``)."""
    resolve_table: dict[tuple[str, int], str] = field(default_factory=dict)
    in_cluster: Any = None
    """The rule's ``inCluster`` (``InClusterRun``): run the suites in a Job (server.incluster)."""


@dataclass(slots=True)
class Outcome:
    run: NewRun | None
    """None: nothing maps to this release, so nothing ran (the job is closed without a run)."""
    notes: list[str] = field(default_factory=list)


class KubeAccess(KubeCluster):
    """The cluster configuration, read once at start (kubeconfig or the pod's service account)."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        from smokegate.kube.client import KubeOptions, load_config

        self.options = KubeOptions(kubeconfig, context)
        super().__init__(load_config(self.options))


class JobObserver(Quiet):
    """The release flow, as the server's log tells it (``job N: …``); remembers the phase, so
    a failure says where it happened."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.current = ""

    def phase(self, name: str) -> None:
        self.current = name

    def progress(self, message: str) -> None:
        log.info("job %s: %s", self.job.id, message)

    def discovered(self, discovery: Any) -> None:
        log.info("job %s: %s", self.job.id, discovery.summary())
        for note in discovery.notes:
            log.info("job %s: discovery: %s", self.job.id, note)


class JobRunner:
    """Turns claimed jobs into runs. Stateless between jobs; safe to call concurrently."""

    def __init__(self, config: ServeConfig, kube: KubeAccess | None = None) -> None:
        self.config = config
        self.kube = kube
        self._configmap_root: Path | None = None
        if kube is None and any(rule.discover for rule in config.releases):
            # Once, at start: discovery reads the Helm release Secret of the HelmRelease.
            log.warning(
                "releases: discover: true needs kubernetes.enabled (discovery reads the Helm "
                "release Secret): runs of those releases skip discovery"
            )

    async def run(self, job: Job) -> Outcome:
        started = time.time()
        observer = JobObserver(job)
        try:
            return await self._run(job, observer)
        except SetupError as exc:
            return Outcome(error_run(job, str(exc), started))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a SuiteError, ClusterError, or a bug: recorded, not lost
            from smokegate.core.errors import SmokegateError

            if observer.current == "discover":
                if not isinstance(exc, SmokegateError):
                    log.exception("job %s: discovery for %s failed", job.id, job.release)
                message = f"discovery for {job.release} failed: {describe_error(exc)}"
                return Outcome(error_run(job, message, started))
            if not isinstance(exc, SmokegateError):
                log.exception("job %s (%s) failed", job.id, job.release)
            return Outcome(error_run(job, describe_error(exc), started))

    async def _run(self, job: Job, observer: JobObserver) -> Outcome:
        from smokegate.app.release import ReleaseRequest, run_release

        schedule = job.release.startswith("schedule/")
        namespace = job.namespace
        if schedule:
            # No release: Secrets without a namespace are the service account's (or context's).
            namespace = str(self.kube.config.namespace or "default") if self.kube else ""
        request = ReleaseRequest(
            namespace=namespace,
            name=None if schedule else job.name,
            suites=lambda hr: self._choose(job, hr),
            cluster=self.kube,
            revision=(job.revision or None) if job.trigger in CHART_REVISION_TRIGGERS else None,
            wait_timeout=self.config.kubernetes.wait_timeout,
            missing="skip" if job.trigger in CANARY_TRIGGERS else "fail",
            facts=self._facts_from_job(job),
            settings=self._settings(),
            context=self._context(job),
            notifiers=self._notifiers(),
        )
        result = await run_release(request, observer)
        if result.run is None:
            if result.discovery is not None:
                raise SetupError(_nothing_discovered(result.discovery))
            log.info("job %s: no suites map to %s; nothing to run", job.id, job.release)
            return Outcome(None)
        run = result.run
        if result.discovery is not None:
            run.context["discovery"] = _discovery_context(result.discovery)
        notes = [d.short for d in result.deliveries]
        if notes:
            run.context["reportedTo"] = notes
        return Outcome(self._new_run(job, run, result.facts.revision), notes)

    # --- the request --------------------------------------------------------------------------

    def _facts_from_job(self, job: Job) -> Any:
        """The facts of a run without a HelmRelease to read them from (a schedule, a canary,
        Kubernetes disabled)."""
        from smokegate.flux.helmrelease import ReleaseFacts

        meta = (job.payload.get("event") or {}).get("metadata") or {}
        namespace, name = job.namespace, job.name
        if job.release.startswith("schedule/"):
            namespace, name = "", job.name
        return ReleaseFacts(
            helm_release=name,
            helm_release_namespace=namespace,
            name=name,
            namespace=namespace,
            revision=job.revision,
            app_version=str(
                meta.get("app-version") or meta.get("helm.toolkit.fluxcd.io/app-version") or ""
            ),
            digest=str(
                meta.get("oci-digest") or meta.get("helm.toolkit.fluxcd.io/oci-digest") or ""
            ),
            chart="",
            version=None,
        )

    def _settings(self) -> Any:
        from smokegate.api import RunSettings

        return RunSettings(concurrency=self.config.worker.check_concurrency)

    def _context(self, job: Job) -> dict[str, Any]:
        context: dict[str, Any] = {"trigger": job.trigger, "jobId": job.id}
        if job.payload.get("event"):
            context["event"] = job.payload["event"]
        return context

    def _notifiers(self) -> list[Any]:
        """The report-back of serve.yaml's ``kubernetes`` section (with Kubernetes enabled)."""
        from smokegate.app.notify import FluxNotifier, KubeEventNotifier

        k8s = self.config.kubernetes
        notifiers: list[Any] = [KubeEventNotifier()] if k8s.record_events else []
        if k8s.notify_flux:
            notifiers.append(FluxNotifier(k8s.notify_flux))
        return notifiers

    # --- the suites ---------------------------------------------------------------------------

    async def _choose(self, job: Job, hr: dict[str, Any] | None) -> Any:
        """The job's suites (parsed once), its rule's vars and resolve overrides, and
        discovery, once the HelmRelease (if any) has been read."""
        from smokegate.app.release import SuiteChoice

        mapping = self._suites_for(job, hr)
        discover = None
        if mapping.discover:
            if hr is not None:
                from smokegate.discover.request import DiscoverRequest

                # The rule's resolve entries are written into the discovered checks (so gRPC
                # checks, which connect by target, are redirected too) and apply to the run.
                discover = DiscoverRequest(resolve=tuple(mapping.resolve))
            elif self.kube is not None:
                log.info("job %s: %s is not a HelmRelease: no discovery", job.id, job.release)
        suites: list[Any] = []
        if mapping.suites:
            extra = await self._configmap_suites()
            index = await asyncio.to_thread(suite_index, self.config, extra)
            missing = [s for s in mapping.suites if s not in index]
            if missing:
                have = ", ".join(sorted(index)) or "none"
                raise SetupError(f"no suite named {', '.join(missing)} (suites: {have})")
            suites = [index[s] for s in mapping.suites]
        runner = None
        if mapping.in_cluster is not None and self.kube is not None:
            from smokegate.server.incluster import InClusterJobRunner

            if discover is not None:
                raise SetupError(
                    "a rule with inCluster cannot also discover checks: discovered checks "
                    "are not files the Job could mount (run them here, or write them to a "
                    "suite with `smokegate discover`)"
                )
            runner = InClusterJobRunner(
                self.kube, job, mapping, concurrency=self.config.worker.check_concurrency
            )
        return SuiteChoice(
            suites,
            vars=mapping.vars,
            discover=discover,
            resolve=dict(mapping.resolve_table) if mapping.resolve_table else None,
            runner=runner,
        )

    def _suites_for(self, job: Job, hr: dict[str, Any] | None) -> RunMapping:
        requested = [str(s) for s in job.payload.get("suites") or []]
        labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
        rule = self.config.rule_for(job.namespace, job.name, labels)
        mapping = RunMapping(
            [],
            vars=dict(rule.vars) if rule else {},
            resolve=list(rule.resolve) if rule else [],
            resolve_table=rule.resolve_table() if rule else {},
            in_cluster=rule.in_cluster if rule else None,
        )
        if requested:
            # A run that names its suites runs exactly those.
            mapping.suites = requested
            return mapping
        annotated = discover_annotation(hr)
        mapping.discover = annotated if annotated is not None else bool(rule and rule.discover)
        mapping.suites = annotation_suites(hr) or (list(rule.suites) if rule else [])
        return mapping

    async def _configmap_suites(self) -> list[str]:
        if not self.config.suites.config_maps.enabled or self.kube is None:
            return []
        if self._configmap_root is None:
            self._configmap_root = Path(tempfile.mkdtemp(prefix="smokegate-configmap-suites-"))
        return await configmap_suites(self.config, self.kube, self._configmap_root)

    # --- the stored run -----------------------------------------------------------------------

    def _new_run(self, job: Job, run: Any, revision: str) -> NewRun:
        """The stored run, from the flow's run (already redacted, once, by the flow)."""
        from smokegate.report.jsonreport import report_data

        report = report_data(run)
        counts = run.counts()
        failed = [r.id for r in run.results if r.status.value in ("failed", "error")]
        message = f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed"
        if failed:
            message += ": " + ", ".join(failed[:10]) + (" …" if len(failed) > 10 else "")
        return NewRun(
            id=run.run_id,
            release=job.release,
            revision=revision or job.revision,
            trigger=job.trigger,
            verdict=Verdict.PASSED if run.ok else Verdict.FAILED,
            started_at=run.started_at,
            finished_at=run.finished_at,
            counts=counts,
            report=report,
            message=message,
        )


def _nothing_discovered(discovery: Any) -> str:
    text = f"discovery found nothing to check: {discovery.summary()}"
    reasons = [f"{n.origin}: {n.reason}" for n in discovery.not_checked[:5]]
    if reasons:
        text += " (" + "; ".join(reasons) + ")"
    return text


def _discovery_context(discovery: Any) -> dict[str, Any]:
    """What discovery read and found, for the report's context (the API and dashboard)."""
    return {
        "source": discovery.source,
        "suite": discovery.suite_name,
        "checks": [c.name for c in discovery.checks],
        "notChecked": [{"origin": n.origin, "reason": n.reason} for n in discovery.not_checked],
        "notes": list(discovery.notes),
    }
