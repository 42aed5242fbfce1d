"""The bulkhead end to end: real concurrent calls (asyncio tasks, threads) against the real upstream on loopback.

The upstream answers after ``LATENCY``; its record of when each request arrived shows how many were in flight at
once. Times are real: a turn in the line comes when another request ends, which no fake clock can hasten.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tether
from tether import Bulkhead, Policy
from tether.errors import BulkheadFull
from tether.testing import Recorded, Reply, Upstream

pytestmark = pytest.mark.integration

LATENCY = 0.2


def _most_at_once(received: list[Recorded]) -> int:
    """The most requests that arrived within one latency of each other, i.e. were on the upstream together."""
    times = sorted(r.received_at for r in received)
    return max(sum(1 for other in times if t - LATENCY * 0.8 < other <= t) for t in times)


async def _gather_async(client: tether.AsyncClient, calls: int) -> list[Any]:
    return await asyncio.gather(*(client.get("/slow") for _ in range(calls)), return_exceptions=True)


def _gather_sync(client: tether.Client, calls: int) -> list[Any]:
    def one() -> Any:
        try:
            return client.get("/slow")
        except tether.TetherError as error:
            return error

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(lambda _: one(), range(calls)))


def _run(kind: str, url: str, policy: Policy, calls: int) -> list[Any]:
    if kind == "sync":
        with tether.Client(url, policy=policy) as client:
            return _gather_sync(client, calls)

    async def main() -> list[Any]:
        transport = tether.HttpxAsyncTransport() if kind == "async-httpx" else None
        async with tether.AsyncClient(url, policy=policy, transport=transport) as client:
            return await _gather_async(client, calls)

    return asyncio.run(main())


KINDS = ["async-aiohttp", "async-httpx", "sync"]


@pytest.fixture
def slow_upstream() -> Any:
    with Upstream().running() as server:
        server.route("GET", "/slow", Reply(json={"ok": True}, latency=LATENCY))
        yield server


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_bulkhead_every_call_is_in_flight_at_once(kind: str, slow_upstream: Upstream) -> None:
    # the control: shows the measure below can see concurrency, so the bounded case means something
    results = _run(kind, slow_upstream.url, Policy(budget=None), 6)
    assert all(r.status_code == 200 for r in results)
    assert _most_at_once(slow_upstream.requests_for("/slow")) == 6


@pytest.mark.parametrize("kind", KINDS)
def test_at_most_max_concurrent_in_flight_and_every_queued_call_succeeds(kind: str, slow_upstream: Upstream) -> None:
    results = _run(kind, slow_upstream.url, Policy(budget=None, bulkhead=Bulkhead(2, max_queue=10)), 6)
    assert [r.status_code for r in results] == [200] * 6
    received = slow_upstream.requests_for("/slow")
    assert len(received) == 6
    assert _most_at_once(received) == 2
    span = max(r.received_at for r in received) - min(r.received_at for r in received)
    assert span >= 2 * LATENCY * 0.9  # three waves of two


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_line_fails_fast_without_sending(kind: str, slow_upstream: Upstream) -> None:
    results = _run(kind, slow_upstream.url, Policy(budget=None, bulkhead=Bulkhead(1, max_queue=1)), 5)
    ok = [r for r in results if isinstance(r, tether.Response)]
    refused = [r for r in results if isinstance(r, BulkheadFull)]
    assert (len(ok), len(refused)) == (2, 3)  # one in flight, one in line, the rest turned away
    assert all(r.attempts == 0 for r in refused)
    assert len(slow_upstream.requests_for("/slow")) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_max_wait_bounds_the_time_in_line(kind: str, slow_upstream: Upstream) -> None:
    slow_upstream.route("GET", "/slow", Reply(json={"ok": True}, latency=1.0))
    policy = Policy(budget=None, bulkhead=Bulkhead(1, max_queue=5, max_wait=0.1))
    results = _run(kind, slow_upstream.url, policy, 3)
    waited = [r for r in results if isinstance(r, BulkheadFull)]
    assert len(waited) == 2
    assert all(r.waited == pytest.approx(0.1) and r.elapsed < 0.9 for r in waited)
    assert len(slow_upstream.requests_for("/slow")) == 1


def test_cancelled_waiters_never_leak_slots(slow_upstream: Upstream) -> None:
    async def main() -> None:
        policy = Policy(budget=None, bulkhead=Bulkhead(1, max_queue=10))
        async with tether.AsyncClient(slow_upstream.url, policy=policy) as client:
            tasks = [asyncio.create_task(client.get("/slow")) for _ in range(5)]
            await asyncio.sleep(LATENCY / 2)
            for task in tasks[1:]:
                task.cancel()  # four cancelled while waiting in line
            assert (await tasks[0]).status_code == 200
            await asyncio.gather(*tasks, return_exceptions=True)
            assert [(b.active, b.queued) for b in client.bulkheads().values()] == [(0, 0)]
            assert (await client.get("/slow")).status_code == 200  # the compartment still works

    asyncio.run(main())
    assert len(slow_upstream.requests_for("/slow")) == 2
