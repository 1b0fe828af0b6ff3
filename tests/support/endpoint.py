"""The loopback analytics endpoint as a fixture: a real HTTP/1.1 server per test, no mocks.

Registered as a pytest plugin by ``tests/conftest.py``:

- ``recording_endpoint`` (function scope): a started :class:`~tools.demo.endpoint.RecordingEndpoint` on a
  free 127.0.0.1 port, with an empty fault schedule; stopped after the test. Point the sender at
  ``recording_endpoint.url``; program faults with its methods (``fail_first``, ``reject_rows``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.demo.endpoint import RecordingEndpoint

__all__ = ["recording_endpoint"]


@pytest.fixture
def recording_endpoint() -> Iterator[RecordingEndpoint]:
    """A fresh recording endpoint for one test (cheap: a thread and a socket)."""
    with RecordingEndpoint() as endpoint:
        yield endpoint
