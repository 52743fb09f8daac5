"""Running checks: ``select`` (which checks, ``-k``/``-t``/``needs``) and ``runner`` (the
scheduler, the attempt loop with retries and timeouts). What a run produces
(``core.results``) and the event loop (``core.loop``) sit below, in ``smokegate.core``. Knows
no check kind by name: kinds come from the registry in ``smokegate.checks``."""
