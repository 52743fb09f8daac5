"""Reporting a release's verdict back where Flux users look, behind one protocol: a
``Notifier`` takes the ``Verdict`` (built once, from the redacted run) and says how delivery
went. Each front end configures its list (``gate``: ``--no-event``, ``--notify-flux``;
``serve``: ``kubernetes.recordEvents``, ``kubernetes.notifyFlux``).

* ``KubeEventNotifier``: a Kubernetes Event on the HelmRelease (``kube.events``), reason
  ``SmokeTestSucceeded``/``SmokeTestFailed``;
* ``FluxNotifier``: the same verdict POSTed to Flux's notification-controller in its own event
  format (``flux.notify``), so Alerts and Providers forward it.

A failed delivery is a ``Delivery`` with ``ok=False``, never an exception: the suite's verdict
stands, and the front end shows what could not be reported and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from smokegate.flux.helmrelease import ReleaseFacts
    from smokegate.flux.notify import GateOutcome
    from smokegate.kube.client import KubeClient

__all__ = ["Delivery", "FluxNotifier", "KubeEventNotifier", "Notifier", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What is reported: the release, its HelmRelease, and the outcome of the (redacted) run."""

    facts: ReleaseFacts
    helmrelease: dict[str, Any]
    outcome: GateOutcome
    client: KubeClient
    """The flow's API client (for notifiers that write to the cluster)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one notifier fared: ``text`` is a sentence for a person (``recorded Event
    SmokeTestFailed on helmrelease apps/web``), ``short`` the same for a run's context
    (``Event SmokeTestFailed``)."""

    notifier: str
    ok: bool
    text: str
    short: str


class Notifier(Protocol):
    name: str

    async def notify(self, verdict: Verdict) -> Delivery: ...


class KubeEventNotifier:
    """A Kubernetes Event on the HelmRelease (``kubectl describe``, ``flux events``); needs
    ``create`` on ``events`` in its namespace (docs/rbac.md)."""

    name = "event"

    async def notify(self, verdict: Verdict) -> Delivery:
        from smokegate.kube.client import HELMRELEASE, KubeError
        from smokegate.kube.events import record_event

        outcome = verdict.outcome
        facts = verdict.facts
        what = HELMRELEASE.describe(facts.helm_release, facts.helm_release_namespace)
        try:
            await record_event(
                verdict.client,
                verdict.helmrelease,
                reason=outcome.reason,
                message=outcome.message(),
                warning=not outcome.ok,
            )
        except KubeError as exc:
            return Delivery(
                self.name,
                False,
                f"warning: could not record an Event on {what}: {exc}",
                f"could not record an Event: {exc}",
            )
        return Delivery(
            self.name, True, f"recorded Event {outcome.reason} on {what}", f"Event {outcome.reason}"
        )


class FluxNotifier:
    """The verdict POSTed to Flux's notification-controller at ``url``."""

    name = "flux"

    def __init__(self, url: str) -> None:
        self.url = url

    async def notify(self, verdict: Verdict) -> Delivery:
        from smokegate.flux.notify import NotifyError, build_event, post_event

        try:
            status = await post_event(self.url, build_event(verdict.facts, verdict.outcome))
        except NotifyError as exc:
            return Delivery(self.name, False, f"warning: {exc}", str(exc))
        return Delivery(
            self.name,
            True,
            f"notified Flux at {self.url}: {status}",
            f"notification-controller: {status}",
        )
