from __future__ import annotations

from collections.abc import Iterator

import pytest

from smokegate.demo import ServiceThread


@pytest.fixture
def slow_start_service() -> Iterator[ServiceThread]:
    """The real embedded demo service whose /ready answers 503 for its first 3 seconds."""
    svc = ServiceThread(ready_after=3.0)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def demo_service() -> Iterator[ServiceThread]:
    svc = ServiceThread(ready_after=0.0)
    svc.start()
    yield svc
    svc.stop()
