"""``smokegate serve``: one process in the cluster that runs the right suites on every new
HelmRelease revision (Flux webhooks, manual and scheduled triggers, progressive-delivery gates),
keeps the history in a store and shows it (HTTP API, Prometheus metrics, dashboard).

Nothing here is imported by ``smokegate --version`` or the other commands: the server's
dependencies (the ``server`` extra) are only needed by ``serve``.
"""
