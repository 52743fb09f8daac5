"""``helmTest``: run a release's own Helm test hooks (``helm.sh/hook: test`` Pods and Jobs) as a
check, so ``run``, ``gate`` and ``serve`` include the chart's tests next to the suite's.

    - name: chart-tests
      helmTest:
        release: myapp              # a Helm release, or hr/NAME for a Flux HelmRelease
        filter: ['myapp-test-*', '!*-slow']
        parallel: true              # the hooks of one weight at once
        testTimeout: 3m             # per hook (default 5m, as helm test)
      timeout: 15m                  # the check's own limit must cover all its hooks

    - name: chart-tests-in-gate     # under `gate`, the release is known:
      helmTest: {release: "${release.name}"}
      timeout: 10m

One check covers the selected hooks: it passes when all of them pass, and otherwise names each
failed hook (evidence) with the reason (exit code, timeout). Its log holds every hook's
container logs, the failed hooks' last, so the console's log tail shows a failure. Write one
check per hook (``filter: [NAME]``) to get one report entry each.

Every hook runs even after one fails; logs are collected before anything is deleted; what the
check created is deleted when it ends, also when the check times out or the run is interrupted
(see ``smokegate.helmtest.runner``). The namespace is ``namespace``, else the run's (``-n``, or
the release's under ``gate``), else the kubeconfig context's.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from smokegate.checks.base import CheckContext, CheckFailed, ErrorKind, Mismatch, Outcome, Spec
from smokegate.core.results import CheckResult, Status
from smokegate.suite.model import Duration


class HelmTestSpec(Spec):
    """Run the Helm test hooks of a release."""

    release: str = Field(min_length=1)
    """A Helm release name, or `hr/NAME` for a Flux HelmRelease (its release name, storage and
    target namespace are resolved as Flux does)."""
    namespace: str | None = None
    """Of the release or HelmRelease; default: the run's namespace."""
    filter: list[str] = Field(default_factory=list)
    """Globs on hook names; `!GLOB` excludes; Helm's `name=X`/`!name=X` work too."""
    parallel: bool = False
    """Run the hooks of one weight at the same time (weights still run in order)."""
    max_parallel: int = Field(default=8, ge=1)
    fail_fast: bool = False
    """Stop after the first failed hook, as `helm test` does (default: run them all)."""
    test_timeout: Duration = 300.0
    """Per hook, from creation until it ends."""
    rerun_failed: bool = False
    """Only the hooks whose last run failed (Flux's status for hr/NAME, else Helm's record)."""
    flux_filters: bool = True
    """For hr/NAME: apply the HelmRelease's spec.test.filters."""
    record: bool = False
    """Also record the outcomes in Helm's release record (`helm status` shows them)."""

    @field_validator("filter")
    @classmethod
    def _filters_parse(cls, v: list[str]) -> list[str]:
        from smokegate.helmtest.hooks import parse_filters
        from smokegate.helmtest.target import HelmTestError

        try:
            parse_filters(v)
        except HelmTestError as exc:
            raise ValueError(str(exc).replace("--filter ", "filter ")) from None
        return v


async def run(spec: HelmTestSpec, ctx: CheckContext) -> Outcome:
    from smokegate.core.errors import ClusterError
    from smokegate.core.selection import Selection
    from smokegate.helmtest.hooks import choose, failed_last_time, parse_filters, release_tests
    from smokegate.helmtest.record import record_last_runs
    from smokegate.helmtest.runner import HelmTestRun, Options
    from smokegate.helmtest.target import HelmTestError, load_release, resolve_target

    kube = ctx.kube
    namespace = spec.namespace or ctx.namespace or kube.namespace
    try:
        target = await resolve_target(kube, spec.release, namespace)
        loaded = await load_release(kube, target)
        hooks = release_tests(loaded.record, loaded.describe)
    except HelmTestError as exc:
        raise CheckFailed(str(exc), kind=ErrorKind.NOT_FOUND) from None
    except ClusterError as exc:
        kind = ErrorKind.FORBIDDEN if "forbidden" in str(exc) else ErrorKind.CONNECTION_REFUSED
        raise CheckFailed(str(exc), kind=kind) from None
    only = failed_last_time(hooks, target.flux_test_hooks) if spec.rerun_failed else None
    chosen = choose(
        hooks,
        filters=parse_filters(spec.filter),
        selection=Selection(),
        only=only,
        flux_filters=target.flux_filters if spec.flux_filters else (),
    )
    info = {"release": loaded.describe, "chart": loaded.chart}
    if not chosen.tests:
        if only is not None and not only:
            return Outcome(True, "nothing to rerun: no hook failed last time", details=info)
        what = "has no test hooks" if not any(h.runnable for h in hooks) else "no hook matches"
        raise CheckFailed(f"{loaded.describe}: {what}", kind=ErrorKind.CONFIG, details=info)
    options = Options(
        timeout=spec.test_timeout,
        parallel=spec.parallel,
        max_parallel=spec.max_parallel,
        keep_going=not spec.fail_fast,
    )
    test_run = HelmTestRun(kube, loaded, chosen.selected, options)
    results = await test_run.run()  # cleans up before returning, or before re-raising
    details: dict[str, object] = {
        **info,
        "run": test_run.run_id,
        "tests": [_summary(r) for r in results],
    }
    if spec.record:
        details["recorded"] = await record_last_runs(kube, loaded, test_run.last_runs)
    if test_run.leftovers:
        details["leftovers"] = test_run.leftovers
    return outcome_of(results, details)


def _summary(r: CheckResult) -> dict[str, object]:
    out: dict[str, object] = {
        "name": r.name,
        "status": r.status.value,
        "duration": round(r.duration, 3),
    }
    for key in ("object", "phase", "exitCodes"):
        if r.details.get(key) is not None:
            out[key] = r.details[key]
    if r.message:
        out["message"] = r.message
    return out


def outcome_of(results: list[CheckResult], details: dict[str, object]) -> Outcome:
    """One outcome for a set of hook results: passed when all passed; the log holds every
    hook's logs, failed hooks last (the console shows a log's tail)."""
    bad = [r for r in results if r.status in (Status.FAILED, Status.ERROR)]
    ordered = [r for r in results if r not in bad] + bad
    log = "".join(f"===== {r.name}: {r.status.value} =====\n{r.log or NO_LOG}" for r in ordered)
    details = {**details, "log": log}
    n = len(results)
    if not bad:
        return Outcome(True, f"{n} Helm test{'s' if n != 1 else ''} passed", details=details)
    message = f"{len(bad)} of {n} Helm tests failed: " + "; ".join(
        f"{r.name}: {r.message}" for r in bad[:3]
    )
    if len(bad) > 3:
        message += f" (+{len(bad) - 3} more)"
    evidence = [Mismatch(f"helm test {r.name}", "Succeeded", r.message) for r in bad]
    kinds = {r.error_kind for r in bad}
    kind = kinds.pop() if len(kinds) == 1 else ErrorKind.EXPECTATION
    return Outcome(False, message, evidence, None, details, kind or ErrorKind.EXPECTATION)


NO_LOG = "(no log)\n"
SPEC = HelmTestSpec
