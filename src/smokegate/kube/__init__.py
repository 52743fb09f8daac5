"""Kubernetes access for smokegate: configuration, a small dict-based async client over lightkube,
kstatus-style readiness, Secret fetching and Event recording.

Nothing here imports lightkube at package import time: ``smokegate --version`` and suites that
never touch a cluster stay fast. Import the submodules you need.
"""
