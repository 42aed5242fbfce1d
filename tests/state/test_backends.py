"""One suite, every backend: memory, Redis (blocking) and Redis (asyncio) answer the same way on the real clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from tether.policies import Admitted, CircuitBreaker, RateLimit, Refused, RetryBudget
from tether.state import AsyncRedisState, MemoryState, RedisState, StateBackend

T = TypeVar("T")


class AsyncFacade:
    """Runs an :class:`AsyncRedisState`'s operations to completion on a private loop, as a StateBackend would."""

    def __init__(self, url: str, prefix: str) -> None:
        self._loop = asyncio.new_event_loop()
        self.state = AsyncRedisState(url, prefix=prefix, timeout=10.0, on_unavailable="closed")

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.state, name)
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def close(self) -> None:
        self._run(self.state.aclose())
        self._loop.close()


@pytest.fixture(params=["memory", "redis", "async-redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[StateBackend]:
    if request.param == "memory":
        yield MemoryState()
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("prefix")
    if request.param == "redis":
        with RedisState(url, prefix=prefix, timeout=10.0, on_unavailable="closed") as state:
            yield state
            assert state.stats().fallbacks == 0
    else:
        facade = AsyncFacade(url, prefix)
        yield facade
        assert facade.state.stats().fallbacks == 0
        facade.close()


def test_a_quota_lets_its_burst_through_then_spaces_calls(backend: StateBackend) -> None:
    limits = (RateLimit(10, burst=2),)
    now = time.monotonic()
    assert [backend.reserve("api", limits, now), backend.reserve("api", limits, now)] == [0.0, 0.0]
    refused = backend.reserve("api", limits, time.monotonic(), max_wait=0.0)
    assert 0.05 < refused <= 0.1  # not booked ...
    third = backend.reserve("api", limits, time.monotonic())
    assert third == pytest.approx(refused, abs=0.02)  # ... so the next call gets the same slot
    assert backend.reserve("api", limits, time.monotonic()) == pytest.approx(third + 0.1, abs=0.02)
    assert backend.reserve("other", limits, time.monotonic()) == 0.0


def test_learned_pacing_holds_calls_until_the_reset(backend: StateBackend) -> None:
    backend.learn("api", (), time.monotonic(), 0, 1.5)
    assert backend.reserve("api", (), time.monotonic(), max_wait=0.0) == pytest.approx(1.5, abs=0.05)
    backend.learn("paced", (), time.monotonic(), 4, 2.0)  # 4 calls over 2 s: one every 0.5 s
    waits = [backend.reserve("paced", (), time.monotonic()) for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.5, 1.0], abs=0.05)


def test_a_budget_suppresses_retries_beyond_its_share(backend: StateBackend) -> None:
    budget = RetryBudget(ratio=1.0, burst=2, min_per_second=0)
    now = time.monotonic()
    assert [backend.try_spend("client", budget, now) for _ in range(3)] == [True, True, False]
    backend.record_request("client", budget, now)
    assert [backend.try_spend("client", budget, now) for _ in range(2)] == [True, False]
    snapshot = backend.budget_snapshot("client", budget, now)
    assert (snapshot.requests, snapshot.retries, snapshot.suppressed) == (1, 3, 2)
    assert snapshot.tokens == pytest.approx(0.0, abs=0.01)


def test_a_circuit_opens_refuses_probes_and_closes(backend: StateBackend) -> None:
    breaker = CircuitBreaker(min_calls=2, failure_ratio=0.5, open_for=0.2, probes=1)
    now = time.monotonic()
    permit = backend.acquire("host", breaker, now).permit
    assert isinstance(permit, Admitted)
    assert backend.record("host", breaker, permit, now, failed=True, duration=0.01) is None
    assert backend.record("host", breaker, permit, now, failed=True, duration=0.01) == "open"
    refused = backend.acquire("host", breaker, time.monotonic())
    assert isinstance(refused.permit, Refused)
    assert refused.permit.retry_at == pytest.approx(now + 0.2, abs=0.05)
    snapshot = backend.circuit_snapshot("host", breaker, time.monotonic())
    assert (snapshot.phase, snapshot.calls, snapshot.failures, snapshot.trips) == ("open", 2, 2, 1)
    time.sleep(0.25)
    probe = backend.acquire("host", breaker, time.monotonic())
    assert (probe.phase, probe.changed) == ("half_open", True)
    assert isinstance(probe.permit, Admitted)
    assert probe.permit.probe
    assert isinstance(backend.acquire("host", breaker, time.monotonic()).permit, Refused)  # one probe at a time
    assert backend.record("host", breaker, probe.permit, time.monotonic(), failed=False, duration=0.01) == "closed"
    assert backend.acquire("host", breaker, time.monotonic()).phase == "closed"


def test_a_released_probe_frees_its_slot(backend: StateBackend) -> None:
    """A probe cancelled before its answer is given back without a verdict: the next call probes at once."""
    breaker = CircuitBreaker(min_calls=1, open_for=0.1, probe_timeout=30.0)
    now = time.monotonic()
    permit = backend.acquire("host", breaker, now).permit
    assert isinstance(permit, Admitted)
    assert backend.record("host", breaker, permit, now, failed=True, duration=0.01) == "open"
    time.sleep(0.15)
    probe = backend.acquire("host", breaker, time.monotonic()).permit
    assert isinstance(probe, Admitted) and probe.probe
    assert isinstance(backend.acquire("host", breaker, time.monotonic()).permit, Refused)
    backend.release("host", breaker, probe, time.monotonic())
    again = backend.acquire("host", breaker, time.monotonic())
    assert isinstance(again.permit, Admitted) and again.permit.probe
    assert backend.circuit_snapshot("host", breaker, time.monotonic()).trips == 1  # not counted as a failure
    assert backend.record("host", breaker, again.permit, time.monotonic(), failed=False, duration=0.01) == "closed"
