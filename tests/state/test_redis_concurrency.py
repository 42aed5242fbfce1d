"""Many callers at once on one key: every decision is one atomic script, so no two callers get the same slot."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from tether.policies import CircuitBreaker, RateLimit, RetryBudget
from tether.state import AsyncRedisState, RedisState

pytestmark = pytest.mark.integration

LIMITS = (RateLimit(10, burst=1),)  # a slot every 0.1 s: far wider than the callers' scheduling noise


def _assert_one_caller_per_slot(slots: list[float], count: int) -> None:
    slots.sort()
    assert len(slots) == count
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) > 0.1 - 0.03
    assert slots[-1] - slots[0] == pytest.approx((count - 1) * 0.1, abs=0.05)


async def test_concurrent_tasks_each_get_their_own_slot(redis_url: str, prefix: str) -> None:
    async with AsyncRedisState(redis_url, prefix=prefix, timeout=10.0, on_unavailable="closed") as state:

        async def book() -> float:
            wait = await state.reserve("api", LIMITS, time.monotonic())
            return time.monotonic() + wait  # Redis decided just before its reply came back

        slots = await asyncio.gather(*(book() for _ in range(40)))
        assert state.stats().fallbacks == 0
    _assert_one_caller_per_slot(list(slots), 40)


def test_concurrent_threads_each_get_their_own_slot(redis_url: str, prefix: str) -> None:
    slots: list[float] = []
    lock = threading.Lock()
    with RedisState(redis_url, prefix=prefix, timeout=10.0, on_unavailable="closed") as state:

        def book() -> None:
            for _ in range(5):
                wait = state.reserve("api", LIMITS, time.monotonic())
                slot = time.monotonic() + wait  # Redis decided just before its reply came back
                with lock:
                    slots.append(slot)

        threads = [threading.Thread(target=book) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert state.stats().fallbacks == 0
    _assert_one_caller_per_slot(slots, 40)


async def test_concurrent_retries_spend_each_token_once(redis_url: str, prefix: str) -> None:
    budget = RetryBudget(ratio=0, burst=7, min_per_second=0)
    async with AsyncRedisState(redis_url, prefix=prefix, timeout=10.0, on_unavailable="closed") as state:
        spent = await asyncio.gather(*(state.try_spend("client", budget, time.monotonic()) for _ in range(30)))
    assert sum(spent) == 7


async def test_concurrent_failures_open_the_circuit_exactly_once(redis_url: str, prefix: str) -> None:
    breaker = CircuitBreaker(min_calls=5, failure_ratio=0.5, open_for=30)
    async with AsyncRedisState(redis_url, prefix=prefix, timeout=10.0, on_unavailable="closed") as state:
        admissions = await asyncio.gather(*(state.acquire("host", breaker, time.monotonic()) for _ in range(20)))
        changes = await asyncio.gather(
            *(
                state.record("host", breaker, admission.permit, time.monotonic(), failed=True, duration=0.01)  # type: ignore[arg-type]
                for admission in admissions
            )
        )
        assert changes.count("open") == 1
        assert changes.count(None) == 19
        snapshot = await state.circuit_snapshot("host", breaker, time.monotonic())
    assert (snapshot.phase, snapshot.trips, snapshot.failures) == ("open", 1, 5)
