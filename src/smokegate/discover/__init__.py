"""Zero-config smoke tests: derive a suite from what a release already tells Kubernetes.

* ``objects``: rendered manifests / API objects -> typed workloads, Services, Ingresses;
* ``ports``: Kubernetes' own port-resolution rules (probe ports, Service ``targetPort``);
* ``probes``: container probes as the kubelet reads them (defaults, budgets, handlers);
* ``build``: probes, Service ports and Ingresses -> checks, plus what cannot be checked and why;
* ``render``: the suite as commented YAML;
* ``source``: objects from a Helm release Secret, from labels, or from files;
* ``selector``: kubectl-style label selectors.

* ``request``: the entry points (``DiscoverRequest``, ``discover_suite``,
  ``discover_from_helmrelease``, ``merge_discovered``) that ``smokegate discover``,
  ``run --discover``, ``gate --discover`` and the server call.

The command line is ``smokegate.cli.discover``.
"""
