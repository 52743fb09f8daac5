"""smokegate: verify Kubernetes deployments after they happen.

Kept import-free on purpose: ``smokegate --version`` must start in well under 150 ms, so every
heavy module (pydantic, rich, YAML, HTTP) is imported by the code path that needs it.
"""

__version__ = "0.1.0"
