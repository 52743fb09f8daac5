"""Running checks: ``select`` (which checks, ``-k``/``-t``/``needs``), ``runner`` (the scheduler,
the attempt loop with retries and timeouts), ``results`` (what a run produced), ``loop`` (the
event loop every synchronous entry point uses). Knows no check kind by name: kinds come from
the registry in ``smokegate.checks``."""
