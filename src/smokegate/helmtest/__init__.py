"""``smokegate helm-test``: run a Helm release's own test hooks properly, and report them like
every other check.

* ``target``: which release (a Helm release, or a Flux HelmRelease resolved as Flux does) and
  its latest deployed record (decoded by ``smokegate.helm.release``);
* ``hooks``: which hooks are tests, Helm's order (weight, name), selection (``--filter`` …);
* ``runner``: create, watch, collect every container's logs, clean up (always);
* ``record``: optionally write ``last_run`` back into Helm's record, as ``helm test`` does;
* ``flux``: run them for ``gate --helm-tests run``;
* ``cli``: the subcommand. The suite check kind is ``smokegate.checks.helmtest``.

See docs/helm-test.md.
"""
