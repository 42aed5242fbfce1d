"""Fixtures for client integration tests: a real upstream on loopback, shared by a module and reset per test.

The client kinds behind one sync facade (``make_client``) are in tests/conftest.py, shared with the cache tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.testing import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream().running() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_upstream(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()
