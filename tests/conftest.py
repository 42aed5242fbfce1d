"""Fixtures shared by the client and cache integration tests: the three client kinds behind one sync facade.

The async client is driven on a private event loop, so every scenario is written once and runs against the
async (aiohttp), the async-httpx and the sync (httpx) client alike. Each directory brings its own ``upstream``.
Also: the Hypothesis profile every test uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

import tether

# Hypothesis's per-example wall-clock deadline (200 ms) fails healthy examples whenever this small shared machine
# is busy; the properties are what the tests check, so no example is timed.
settings.register_profile("tether", deadline=None)
settings.load_profile("tether")


class AsyncFacade:
    """Runs an AsyncClient's calls to completion on a private loop, so tests read like the sync client's."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: tether.AsyncClient) -> None:
        self._loop = loop
        self.client = client
        self.budget = client.budget

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
        """Wait for the client's cache to finish its background revalidations."""
        caching = self.client._caching
        assert caching is not None
        self._loop.run_until_complete(asyncio.wait_for(caching.wait_background(), 10))

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())


class SyncFacade:
    def __init__(self, client: tether.Client) -> None:
        self.client = client
        self.budget = client.budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def paginate(self, *args: Any, **kwargs: Any) -> list[Any]:
        return list(self.client.paginate(*args, **kwargs))

    def wait_background(self) -> None:
        """Wait for the client's cache to finish its background revalidations."""
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
            transport = None
            if kind == "async-httpx":
                limit = options.pop("max_response_bytes", tether.client.DEFAULT_MAX_RESPONSE_BYTES)
                transport = tether.HttpxAsyncTransport(max_response_bytes=limit)
            facade = AsyncFacade(loop, tether.AsyncClient(base_url, transport=transport, **options))
        made.append(facade)
        return facade

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for facade in made:
        facade.close()
    loop.close()
