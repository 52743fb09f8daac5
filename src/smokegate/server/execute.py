"""One job -> one run, through the same library calls as ``smokegate run``/``gate``:
``api.plan_run`` + ``api.execute_plan``, and, when Kubernetes is enabled, the gate's pieces
(``flux.wait.wait_for_release``, ``flux.helmrelease.release_facts``/``helm_test_results``,
``api.fetch_suite_secrets``, ``discover.request.discover_from_helmrelease``,
``kube.events.record_event``, ``flux.notify``).

Which suites run, first match wins:

1. ``suites`` in the job's payload (a manual run that names them; a schedule's own list);
2. the HelmRelease's ``smokegate.io/suites: a,b`` annotation (Kubernetes enabled);
3. the first ``releases:`` rule of serve.yaml whose selector matches.

Discovery (checks derived from the release's probes, Services and Ingresses, as
``gate --discover``) joins them when the HelmRelease's ``smokegate.io/discover`` annotation says
``"true"``, or, without that annotation, when the matching rule says ``discover: true``; not
for a run whose payload names its suites. It reads the Helm release Secret after the wait, so
it needs Kubernetes and a HelmRelease: without them it is skipped (a warning at start). The
suites' checks win on name clashes; discovery alone is enough to run.

Anything that stops a run before a check runs (no HelmRelease, a suite error, Flux reporting
the release failed, the cluster unreachable) is recorded as a run with verdict ``error`` and one
``setup`` check saying why, so the dashboard and API show it next to the other runs.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# ``discover.request.merged_suite_paths`` writes the discovered suite into one process-wide
# directory, under a name that depends on the release only: two runs of one release at once
# would share the file. Each run writes it under this lock and moves it into its own directory
# (removed when the run ends), so nothing accumulates and no run reads another's suite.
_MERGE_LOCK = threading.Lock()


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


@dataclass(slots=True)
class Outcome:
    run: NewRun | None
    """None: nothing maps to this release, so nothing ran (the job is closed without a run)."""
    notes: list[str] = field(default_factory=list)


class KubeAccess:
    """The cluster configuration, read once at start (kubeconfig or the pod's service account)."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        from smokegate.kube.client import KubeOptions, load_config

        self.options = KubeOptions(kubeconfig, context)
        self.config = load_config(self.options)

    def client(self, namespace: str) -> Any:
        from smokegate.kube.client import KubeClient

        return KubeClient(self.config, namespace)


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
        try:
            return await self._run(job, started)
        except SetupError as exc:
            return Outcome(error_run(job, str(exc), started))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a SuiteError, ClusterError, or a bug: recorded, not lost
            from smokegate.core.errors import SmokegateError

            if not isinstance(exc, SmokegateError):
                log.exception("job %s (%s) failed", job.id, job.release)
            return Outcome(error_run(job, describe_error(exc), started))

    async def _run(self, job: Job, started: float) -> Outcome:
        from smokegate.flux.helmrelease import helm_test_results, release_facts

        hr, client = await self._helmrelease(job)
        workdir: Path | None = None
        try:
            facts = release_facts(hr) if hr is not None else self._facts_from_job(job)
            mapping = self._suites_for(job, hr)
            helm_tests = helm_test_results(hr) if hr is not None else []
            # After the wait: the release Secret read is the new revision's.
            discovery = await self._discover(job, hr, client, mapping) if mapping.discover else None
            merge = discovery if discovery is not None and discovery.checks else None
            if not mapping.suites and not helm_tests and merge is None:
                if discovery is not None:
                    raise SetupError(_nothing_discovered(discovery))
                log.info("job %s: no suites map to %s; nothing to run", job.id, job.release)
                return Outcome(None)
            if merge is not None:
                workdir = Path(tempfile.mkdtemp(prefix="smokegate-run-discovered-"))
            plan = await self._plan(job, mapping, facts, client, merge, workdir)
            report_run = await self._execute(job, plan, facts, helm_tests, mapping)
            if discovery is not None:
                report_run.context["discovery"] = _discovery_context(discovery)
            notes: list[str] = []
            if hr is not None and client is not None:
                notes = await self._report_back(client, hr, facts, report_run, plan.redactor)
            if notes:
                report_run.context["reportedTo"] = notes
        finally:
            if client is not None:
                await client.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        return Outcome(self._new_run(job, report_run, plan.redactor, facts.revision), notes)

    # --- the release -------------------------------------------------------------------------

    async def _helmrelease(self, job: Job) -> tuple[dict[str, Any] | None, Any]:
        """The HelmRelease once Flux has reconciled it (Kubernetes enabled), else None."""
        if self.kube is None or job.release.startswith("schedule/"):
            return None, None
        from smokegate.core.errors import GateTimeout
        from smokegate.flux.wait import wait_for_release
        from smokegate.kube.client import HELMRELEASE, KubeError

        client = self.kube.client(job.namespace)
        try:
            hr = await client.get_or_none(HELMRELEASE, job.name, job.namespace)
            if hr is None:
                if job.trigger in ("flagger", "argo"):
                    # A canary need not be a HelmRelease: test it with the facts we were given.
                    return None, client
                raise SetupError(f"HelmRelease {job.release} not found")
            revision = job.revision if job.trigger in CHART_REVISION_TRIGGERS else None
            hr = await wait_for_release(
                client,
                job.namespace,
                job.name,
                revision=revision or None,
                timeout=self.config.kubernetes.wait_timeout,
                progress=lambda msg: log.info("job %s: %s", job.id, msg),
            )
            return hr, client
        except KubeError as exc:
            await client.close()
            raise SetupError(str(exc)) from None
        except GateTimeout as exc:
            await client.close()
            raise SetupError(str(exc)) from None
        except BaseException:
            await client.close()
            raise

    def _facts_from_job(self, job: Job) -> Any:
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

    def _suites_for(self, job: Job, hr: dict[str, Any] | None) -> RunMapping:
        requested = [str(s) for s in job.payload.get("suites") or []]
        labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
        rule = self.config.rule_for(job.namespace, job.name, labels)
        mapping = RunMapping(
            [],
            vars=dict(rule.vars) if rule else {},
            resolve=list(rule.resolve) if rule else [],
            resolve_table=rule.resolve_table() if rule else {},
        )
        if requested:
            # A run that names its suites runs exactly those.
            mapping.suites = requested
            return mapping
        annotated = discover_annotation(hr)
        mapping.discover = annotated if annotated is not None else bool(rule and rule.discover)
        mapping.suites = annotation_suites(hr) or (list(rule.suites) if rule else [])
        return mapping

    async def _discover(
        self, job: Job, hr: dict[str, Any] | None, client: Any, mapping: RunMapping
    ) -> Any:
        """The release's discovered checks (``discover.request.discover_from_helmrelease``), or
        None when there is no HelmRelease to read (no Kubernetes, a canary, a schedule).
        A failure (nothing found, the Secret unreadable) is a ``SetupError``: an error run."""
        if hr is None or client is None:
            if self.kube is not None:
                log.info("job %s: %s is not a HelmRelease: no discovery", job.id, job.release)
            return None
        from smokegate.core.errors import SmokegateError
        from smokegate.discover.request import DiscoverRequest, discover_from_helmrelease

        # The rule's resolve entries are written into the discovered checks (so gRPC checks,
        # which connect by target, are redirected too) and applied to the whole run.
        request = DiscoverRequest(resolve=tuple(mapping.resolve))
        try:
            discovery = await discover_from_helmrelease(client, hr, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, SmokegateError):
                log.exception("job %s: discovery for %s failed", job.id, job.release)
            raise SetupError(f"discovery for {job.release} failed: {describe_error(exc)}") from None
        log.info("job %s: %s", job.id, discovery.summary())
        for note in discovery.notes:
            log.info("job %s: discovery: %s", job.id, note)
        return discovery

    async def _configmap_suites(self) -> list[str]:
        if not self.config.suites.config_maps.enabled or self.kube is None:
            return []
        if self._configmap_root is None:
            self._configmap_root = Path(tempfile.mkdtemp(prefix="smokegate-configmap-suites-"))
        return await configmap_suites(self.config, self.kube, self._configmap_root)

    # --- plan, run, report --------------------------------------------------------------------

    async def _plan(
        self,
        job: Job,
        mapping: RunMapping,
        facts: Any,
        client: Any,
        discovery: Any = None,
        workdir: Path | None = None,
    ) -> Any:
        """The run's plan: the mapped suites, plus the discovered suite (written into
        ``workdir``) when ``discovery`` is given."""
        from smokegate.api import fetch_suite_secrets, parse_suites, plan_run

        suites = mapping.suites
        paths: list[str] = []
        if suites:
            extra = await self._configmap_suites()
            index = await asyncio.to_thread(suite_index, self.config, extra)
            missing = [s for s in suites if s not in index]
            if missing:
                have = ", ".join(sorted(index)) or "none"
                raise SetupError(f"no suite named {', '.join(missing)} (suites: {have})")
            paths = [index[s] for s in suites]
        if discovery is not None:
            assert workdir is not None
            paths = await asyncio.to_thread(_merge_discovered, paths, discovery, workdir)
        namespace = facts.namespace or None
        secrets: dict[Any, str] = {}
        if client is not None:
            raws = await asyncio.to_thread(parse_suites, paths)
            secrets = await fetch_suite_secrets(
                client, raws, namespace, cli_vars=mapping.vars, release_vars=facts.variables()
            )
        # Parsing and interpolation are synchronous CPU work: keep them off the event loop.
        return await asyncio.to_thread(
            plan_run,
            paths,
            cli_vars=mapping.vars,
            release_vars=facts.variables(),
            secrets=secrets,
            default_namespace=namespace,
        )

    async def _execute(
        self,
        job: Job,
        plan: Any,
        facts: Any,
        helm_tests: list[Any],
        mapping: RunMapping | None = None,
    ) -> Any:
        from smokegate.api import RunSettings, execute_plan

        kube = self.kube
        namespace = facts.namespace or None
        context = facts.context() if facts.helm_release_namespace else {}
        context |= {"trigger": job.trigger, "jobId": job.id}
        if job.payload.get("event"):
            context["event"] = job.payload["event"]
        concurrency = self.config.worker.check_concurrency
        return await execute_plan(
            plan,
            RunSettings(
                concurrency=concurrency,
                resolve=dict(mapping.resolve_table) if mapping else None,
            ),
            context=context,
            kube_factory=(lambda: kube.client(namespace or "default")) if kube else None,
            namespace=namespace,
            extra_results=helm_tests,
        )

    async def _report_back(
        self, client: Any, hr: dict[str, Any], facts: Any, run: Any, redactor: Any
    ) -> list[str]:
        """The gate's report-back: an Event on the HelmRelease and, optionally, Flux's
        notification-controller. Failures become notes; the verdict stands."""
        from smokegate.flux.notify import NotifyError, build_event, outcome_of, post_event
        from smokegate.kube.client import KubeError
        from smokegate.kube.events import record_event

        outcome = outcome_of(run, redactor)
        notes = []
        k8s = self.config.kubernetes
        if k8s.record_events:
            try:
                await record_event(
                    client,
                    hr,
                    reason=outcome.reason,
                    message=outcome.message(),
                    warning=not outcome.ok,
                )
                notes.append(f"Event {outcome.reason}")
            except KubeError as exc:
                notes.append(f"could not record an Event: {exc}")
        if k8s.notify_flux:
            try:
                status = await post_event(k8s.notify_flux, build_event(facts, outcome))
                notes.append(f"notification-controller: {status}")
            except NotifyError as exc:
                notes.append(str(exc))
        return notes

    def _new_run(self, job: Job, run: Any, redactor: Any, revision: str) -> NewRun:
        from smokegate.report import redacted
        from smokegate.report.jsonreport import report_data

        clean = redacted(run, redactor)
        report = report_data(clean)
        counts = clean.counts()
        failed = [r.id for r in clean.results if r.status.value in ("failed", "error")]
        message = f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed"
        if failed:
            message += ": " + ", ".join(failed[:10]) + (" …" if len(failed) > 10 else "")
        return NewRun(
            id=clean.run_id,
            release=job.release,
            revision=revision or job.revision,
            trigger=job.trigger,
            verdict=Verdict.PASSED if clean.ok else Verdict.FAILED,
            started_at=clean.started_at,
            finished_at=clean.finished_at,
            counts=counts,
            report=report,
            message=message,
        )


def _merge_discovered(paths: list[str], discovery: Any, workdir: Path) -> list[str]:
    """``paths`` plus the discovered suite (``discover.request.merged_suite_paths``: the suites'
    checks win on name clashes), its file moved into ``workdir`` (see ``_MERGE_LOCK``)."""
    from smokegate.discover.request import merged_suite_paths

    with _MERGE_LOCK:
        merged = merged_suite_paths(paths, discovery)
        written = Path(merged[-1])
        own = workdir / written.name
        shutil.move(written, own)
    return [*merged[:-1], str(own)]


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
