"""Flows over the library, shared by the front ends: ``release`` (one run of a HelmRelease's
suites, from the wait for Flux to the report back: ``run_release``, used by ``gate`` and by
``serve``'s job runner) and ``notify`` (the ``Notifier``s that report a verdict back: a
Kubernetes Event, Flux's notification-controller)."""
