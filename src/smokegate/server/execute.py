"""One job -> one run, through the same library calls as ``smokegate run``/``gate``:
``session.plan_run`` + ``engine.runner.execute``, and, when Kubernetes is enabled, the gate's
pieces (``gate.wait_for_release``, ``flux.helmrelease.release_facts``/``helm_test_results``,
``session.fetch_suite_secrets``, ``kube.events.record_event``, ``flux.notify``).

Which suites run, first match wins:

1. ``suites`` in the job's payload (a manual run that names them; a schedule's own list);
2. the HelmRelease's ``smokegate.io/suites: a,b`` annotation (Kubernetes enabled);
3. the first ``releases:`` rule of serve.yaml whose selector matches.

Anything that stops a run before a check runs (no HelmRelease, a suite error, Flux reporting
the release failed, the cluster unreachable) is recorded as a run with verdict ``error`` and one
``setup`` check saying why, so the dashboard and API show it next to the other runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smokegate.server.config import SUITE_CONFIGMAP_LABEL, SUITES_ANNOTATION, ServeConfig
from smokegate.store.base import Job, NewRun, Verdict

log = logging.getLogger("smokegate.server")

# Triggers whose revision is a chart version Flux has (or will have) released.
CHART_REVISION_TRIGGERS = frozenset({"webhook", "watch"})


class SetupError(Exception):
    """The run could not start; the message becomes the ``setup`` check's message."""


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


def suite_index(config: ServeConfig, extra_files: Sequence[str] = ()) -> dict[str, str]:
    """Suite name -> file, from the configured directories and ``extra_files`` (read fresh for
    each run, so a changed ConfigMap is picked up without a restart)."""
    from smokegate.suite.loader import parse_suites

    # An empty directory is fine here (its suites may all come from ConfigMaps); the loader
    # would call it an error.
    dirs = [d for d in config.suite_dirs() if any(_suite_files(d))]
    paths = [*dirs, *extra_files]
    if not paths:
        return {}
    return {raw.name: raw.doc.file for raw in parse_suites(paths)}


def _suite_files(directory: str) -> Any:
    return (p for p in Path(directory).rglob("*") if p.suffix in (".yaml", ".yml"))


def _annotation_suites(hr: dict[str, Any] | None) -> list[str]:
    annotations = ((hr or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(SUITES_ANNOTATION) or ""
    return [s.strip() for s in text.split(",") if s.strip()]


class JobRunner:
    """Turns claimed jobs into runs. Stateless between jobs; safe to call concurrently."""

    def __init__(self, config: ServeConfig, kube: KubeAccess | None = None) -> None:
        self.config = config
        self.kube = kube
        self._configmap_root: Path | None = None

    async def run(self, job: Job) -> Outcome:
        started = time.time()
        try:
            return await self._run(job, started)
        except SetupError as exc:
            return Outcome(error_run(job, str(exc), started))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a SuiteError, ClusterError, or a bug: recorded, not lost
            from smokegate.errors import SmokegateError

            if not isinstance(exc, SmokegateError):
                log.exception("job %s (%s) failed", job.id, job.release)
            return Outcome(error_run(job, _describe(exc), started))

    async def _run(self, job: Job, started: float) -> Outcome:
        from smokegate.flux.helmrelease import helm_test_results, release_facts

        hr, client = await self._helmrelease(job)
        try:
            facts = release_facts(hr) if hr is not None else self._facts_from_job(job)
            suites, rule_vars = self._suites_for(job, hr)
            helm_tests = helm_test_results(hr) if hr is not None else []
            if not suites and not helm_tests:
                log.info("job %s: no suites map to %s; nothing to run", job.id, job.release)
                return Outcome(None)
            plan = await self._plan(job, suites, rule_vars, facts, client)
            report_run = await self._execute(job, plan, facts, helm_tests)
            notes: list[str] = []
            if hr is not None and client is not None:
                notes = await self._report_back(client, hr, facts, report_run)
            if notes:
                report_run.context["reportedTo"] = notes
        finally:
            if client is not None:
                await client.close()
        return Outcome(self._new_run(job, report_run, plan.redactor, facts.revision), notes)

    # --- the release -------------------------------------------------------------------------

    async def _helmrelease(self, job: Job) -> tuple[dict[str, Any] | None, Any]:
        """The HelmRelease once Flux has reconciled it (Kubernetes enabled), else None."""
        if self.kube is None or job.release.startswith("schedule/"):
            return None, None
        from smokegate.errors import GateTimeout
        from smokegate.gate import wait_for_release
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

    def _suites_for(self, job: Job, hr: dict[str, Any] | None) -> tuple[list[str], dict[str, str]]:
        requested = [str(s) for s in job.payload.get("suites") or []]
        labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
        rule = self.config.rule_for(job.namespace, job.name, labels)
        rule_vars = dict(rule.vars) if rule else {}
        if requested:
            return requested, rule_vars
        annotated = _annotation_suites(hr)
        if annotated:
            return annotated, rule_vars
        return (list(rule.suites) if rule else []), rule_vars

    # --- plan, run, report --------------------------------------------------------------------

    async def _plan(
        self,
        job: Job,
        suites: list[str],
        rule_vars: dict[str, str],
        facts: Any,
        client: Any,
    ) -> Any:
        from smokegate.session import fetch_suite_secrets, parse_suites, plan_run

        extra = await self._configmap_suites()
        index = await asyncio.to_thread(suite_index, self.config, extra)
        missing = [s for s in suites if s not in index]
        if missing:
            have = ", ".join(sorted(index)) or "none"
            raise SetupError(f"no suite named {', '.join(missing)} (suites: {have})")
        paths = [index[s] for s in suites]
        namespace = facts.namespace or None
        secrets: dict[Any, str] = {}
        if client is not None:
            raws = await asyncio.to_thread(parse_suites, paths)
            secrets = await fetch_suite_secrets(client, raws, namespace)
        # Parsing and interpolation are synchronous CPU work: keep them off the event loop.
        return await asyncio.to_thread(
            plan_run,
            paths,
            cli_vars=rule_vars,
            release_vars=facts.variables(),
            secrets=secrets,
            default_namespace=namespace,
        )

    async def _configmap_suites(self) -> list[str]:
        """Suites from ConfigMaps labelled ``smokegate.io/suite=true`` (every ``*.yaml``/``*.yml``
        key), written to files named by their content's hash: a file is never rewritten, so runs
        planning at the same time never read a half-written suite."""
        cfg = self.config.suites.config_maps
        if not cfg.enabled or self.kube is None:
            return []
        import hashlib
        import tempfile

        from smokegate.server.kubeobj import configmap_class, plain

        if self._configmap_root is None:
            self._configmap_root = Path(tempfile.mkdtemp(prefix="smokegate-configmap-suites-"))
        namespaces = cfg.namespaces or self.config.kubernetes.namespaces or ["*"]
        client = self.kube.client("default")
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
                        folder = self._configmap_root / digest
                        # The file name says where the suite came from in file:line errors.
                        path = (
                            folder / f"configmap-{meta.get('namespace')}-{meta.get('name')}-{key}"
                        )
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

    async def _execute(self, job: Job, plan: Any, facts: Any, helm_tests: list[Any]) -> Any:
        from smokegate.checks.base import CheckContext
        from smokegate.engine.runner import RunOptions, execute

        kube = self.kube
        namespace = facts.namespace or None
        ctx = CheckContext(
            redactor=plan.redactor,
            kube_factory=(lambda: kube.client(namespace or "default")) if kube else None,
            namespace=namespace,
            max_connections_per_origin=self.config.worker.check_concurrency,
        )
        context = facts.context() if facts.helm_release_namespace else {}
        context |= {"trigger": job.trigger, "jobId": job.id}
        if job.payload.get("event"):
            context["event"] = job.payload["event"]
        run = await execute(
            plan.suites,
            plan.checks,
            ctx,
            RunOptions(concurrency=self.config.worker.check_concurrency),
            context=context,
        )
        if helm_tests:
            run.results = [*helm_tests, *run.results]
        return run

    async def _report_back(
        self, client: Any, hr: dict[str, Any], facts: Any, run: Any
    ) -> list[str]:
        """The gate's report-back: an Event on the HelmRelease and, optionally, Flux's
        notification-controller. Failures become notes; the verdict stands."""
        from smokegate.flux.notify import NotifyError, build_event, outcome_of, post_event
        from smokegate.kube.client import KubeError
        from smokegate.kube.events import record_event

        outcome = outcome_of(run)
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


def error_run(job: Job, message: str, started: float) -> NewRun:
    """A run that could not start, as a report with one ``setup`` check that says why."""
    from smokegate.engine.results import CheckResult, RunResult, Status

    finished = time.time()
    result = CheckResult(
        id="smokegate/setup",
        name="setup",
        suite="smokegate",
        kind="setup",
        status=Status.ERROR,
        source="smokegate serve",
        started_at=started,
        duration=finished - started,
        message=message,
        error_kind="config",
    )
    run = RunResult(
        run_id=uuid.uuid4().hex[:12],
        started_at=started,
        finished_at=finished,
        results=[result],
        context={"trigger": job.trigger, "jobId": job.id, "release": {"revision": job.revision}},
    )
    return NewRun(
        id=run.run_id,
        release=job.release,
        revision=job.revision,
        trigger=job.trigger,
        verdict=Verdict.ERROR,
        started_at=started,
        finished_at=finished,
        counts=run.counts(),
        report=run.to_dict(),
        message=message[:2000],
    )


def _describe(exc: BaseException) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "; ".join(str(p) for p in problems)
    from smokegate.errors import SmokegateError

    return (
        str(exc)
        if isinstance(exc, SmokegateError)
        else f"internal error: {type(exc).__name__}: {exc}"
    )
