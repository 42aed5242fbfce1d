"""Fixtures for cache integration tests: the real upstream on loopback, and the three client kinds behind one
sync facade (as in tests/client), which can also wait for the cache's background revalidations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import tether
from tether.testing import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A fresh upstream per test: a background revalidation a closed client abandoned mid-request must not reach
    the next test's scripted replies (a shared, reset upstream let such a straggler take the next test's first)."""
    with Upstream().running() as server:
        yield server


class AsyncFacade:
    """An AsyncClient's calls run to completion on a private loop, so tests read like the sync client's."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: tether.AsyncClient) -> None:
        self._loop = loop
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call

    def paginate(self, *args: Any, **kwargs: Any) -> list[Any]:
        async def collect() -> list[Any]:
            return [item async for item in self.client.paginate(*args, **kwargs)]

        return self._loop.run_until_complete(collect())

    def wait_background(self) -> None:
        caching = self.client._caching
        assert caching is not None
        self._loop.run_until_complete(asyncio.wait_for(caching.wait_background(), 10))

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())


class SyncFacade:
    def __init__(self, client: tether.Client) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def paginate(self, *args: Any, **kwargs: Any) -> list[Any]:
        return list(self.client.paginate(*args, **kwargs))

    def wait_background(self) -> None:
        caching = self.client._caching
        assert caching is not None
        assert caching.wait_background(10)

    def close(self) -> None:
        self.client.close()


KINDS = ["async-aiohttp", "async-httpx", "sync-httpx"]


@pytest.fixture(params=KINDS)
def make_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``make_client(base_url, **options)`` builds the parametrised client kind; all are closed afterwards."""
    kind: str = request.param
    loop = asyncio.new_event_loop()
    made: list[Any] = []

    def make(base_url: str, **options: Any) -> Any:
        if kind == "sync-httpx":
            facade: Any = SyncFacade(tether.Client(base_url, **options))
        else:
            transport = tether.HttpxAsyncTransport() if kind == "async-httpx" else None
            facade = AsyncFacade(loop, tether.AsyncClient(base_url, transport=transport, **options))
        made.append(facade)
        return facade

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for facade in made:
        facade.close()
    loop.close()
