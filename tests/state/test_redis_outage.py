"""When Redis is down, hangs, speaks nonsense or comes back: the backend falls back or fails, never hangs or leaks."""

from __future__ import annotations

import logging
import time

import pytest

from tether.policies import RateLimit, RetryBudget
from tether.state import AsyncRedisState, RedisState, SharedStateStats, SharedStateUnavailable

from .conftest import PrivateRedis, SilentServer, free_port

pytestmark = pytest.mark.integration

LIMITS = (RateLimit(1, burst=1),)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tether.state" and r.levelno == logging.WARNING]


def test_fail_open_falls_back_to_local_state_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with RedisState(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=0.2, retry_interval=60) as state:
        started = time.monotonic()
        waits = [state.reserve("api", LIMITS, time.monotonic()) for _ in range(3)]
        assert time.monotonic() - started < 1.0
        assert waits[0] == 0.0
        assert waits[1:] == pytest.approx([1.0, 2.0], abs=0.05)  # the process's own limiter answered
        assert state.stats() == SharedStateStats(available=False, outages=1, failures=1, fallbacks=3)
    [warning] = _warnings(caplog)
    assert f"127.0.0.1:{port}" in warning
    assert "own limiter, budget and circuit state" in warning
    assert "hunter2" not in caplog.text


async def test_fail_open_in_the_async_shell(caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncRedisState(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, retry_interval=60) as state:
        waits = [await state.reserve("api", LIMITS, time.monotonic()) for _ in range(2)]
        assert waits == pytest.approx([0.0, 1.0], abs=0.05)
        assert state.stats().fallbacks == 2
    assert len(_warnings(caplog)) == 1


def test_fail_closed_raises_shared_state_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with RedisState(f"redis://:hunter2@127.0.0.1:{port}/0", on_unavailable="closed", retry_interval=60) as state:
        for _ in range(3):
            with pytest.raises(SharedStateUnavailable) as caught:
                state.reserve("api", LIMITS, time.monotonic())
            message = str(caught.value)
            assert f"127.0.0.1:{port}" in message
            assert "hunter2" not in message
            assert caught.value.__cause__ is None  # no redis-py exception escapes, even chained
        assert state.stats() == SharedStateStats(available=False, outages=1, failures=1, fallbacks=0)
    assert len(_warnings(caplog)) == 1
    assert "SharedStateUnavailable" in _warnings(caplog)[0]


async def test_fail_closed_in_the_async_shell() -> None:
    async with AsyncRedisState(f"redis://127.0.0.1:{free_port()}/0", on_unavailable="closed") as state:
        with pytest.raises(SharedStateUnavailable):
            await state.try_spend("client", RetryBudget(), time.monotonic())


def test_a_redis_that_never_answers_costs_one_timeout(hanging_server: SilentServer) -> None:
    with RedisState(hanging_server.url, timeout=0.2, retry_interval=60) as state:
        started = time.monotonic()
        assert state.reserve("api", LIMITS, started) == 0.0
        first = time.monotonic() - started
        assert 0.15 < first < 1.0  # connected, then the read timed out
        started = time.monotonic()
        assert state.reserve("api", LIMITS, started) == pytest.approx(1.0, abs=0.3)
        assert time.monotonic() - started < 0.05  # until retry_interval passes, Redis is not even tried
    assert hanging_server.connections >= 1


async def test_a_redis_that_never_answers_is_cut_at_the_timeout_in_the_async_shell(
    hanging_server: SilentServer,
) -> None:
    async with AsyncRedisState(hanging_server.url, timeout=0.2, on_unavailable="closed") as state:
        started = time.monotonic()
        with pytest.raises(SharedStateUnavailable, match=r"no answer within 0\.2 s"):
            await state.reserve("api", LIMITS, started)
        assert 0.15 < time.monotonic() - started < 0.5


def test_a_server_that_speaks_nonsense_is_unavailable_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    server = SilentServer(reply=b"+OK\r\n")
    try:
        with RedisState(server.url, timeout=0.3, retry_interval=0) as state:
            first, _ = (state.reserve("api", LIMITS, time.monotonic()) for _ in range(2))
            assert first == 0.0
            assert state.stats().fallbacks == 2
    finally:
        server.close()
    assert len(_warnings(caplog)) == 1


def test_the_backend_reconnects_when_redis_comes_back(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisState(private_redis.url, timeout=0.3, retry_interval=0.2) as state, caplog.at_level(logging.INFO):
        limits = (RateLimit(1, burst=1),)
        assert state.reserve("api", limits, time.monotonic()) == 0.0
        private_redis.stop()
        assert state.reserve("api", limits, time.monotonic()) == 0.0  # local state: its first call
        assert not state.stats().available
        private_redis.start()  # an empty server: no data, no scripts
        time.sleep(0.25)
        assert state.reserve("api", limits, time.monotonic()) == 0.0  # Redis again, a fresh quota
        assert state.reserve("api", limits, time.monotonic()) > 0.9
        assert state.stats() == SharedStateStats(available=True, outages=1, failures=1, fallbacks=1)
    assert len(_warnings(caplog)) == 1
    assert any(r.name == "tether.state" and "answers again" in r.getMessage() for r in caplog.records)
