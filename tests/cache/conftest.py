"""Fixtures for cache integration tests: a real upstream on loopback, fresh for each test.

The client kinds behind one sync facade (``make_client``) are in tests/conftest.py, shared with the client tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.testing import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A fresh upstream per test: a background revalidation a closed client abandoned mid-request must not reach
    the next test's scripted replies (a shared, reset upstream let such a straggler take the next test's first)."""
    with Upstream().running() as server:
        yield server
