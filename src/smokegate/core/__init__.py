"""The leaf of the house: the vocabulary and small utilities every layer shares, importing
nothing of smokegate outside ``core``.

* ``errors``: the exception tree and its exit codes, ``Problem`` (a located suite problem);
* ``secrets``: ``Secret`` (text that renders as ``***``) and the ``Redactor``;
* ``durations``: ``300ms``/``1m30s`` parsing and formatting;
* ``outcome``: what one attempt of a check produces (``Outcome``, ``Mismatch``,
  ``CheckFailed``, ``ErrorKind``);
* ``results``: what a run produced (``RunResult``, ``CheckResult``, ``Status``), the data every
  reporter and store reads;
* ``selection``: ``Selection`` (``-k``/``-t``/``--exclude-tag``) as data;
* ``loop``: ``run_async``, the event loop every synchronous entry point uses.
"""
