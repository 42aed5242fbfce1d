"""What the Redis backend leaves in Redis: namespaced keys, bounded hashes, TTLs on everything, scripts reloaded."""

from __future__ import annotations

import time

import pytest
import redis

from tether.policies import CLOSED_ADMISSION, CircuitBreaker, RateLimit, RetryBudget
from tether.state import RedisCommands, RedisState

from .conftest import PrivateRedis

pytestmark = pytest.mark.integration


def test_every_key_is_under_the_prefix_hides_its_name_and_expires(redis_url: str, prefix: str) -> None:
    secret_key = "POST https://hooks.example.com/services/T0/B0/s3cr3tT0ken"
    with RedisState(redis_url, prefix=prefix, idle_ttl=120) as state:
        now = time.monotonic()
        state.reserve(secret_key, (RateLimit(100, burst=1),), now)
        state.try_spend(secret_key, RetryBudget(), now)
        state.record(secret_key, CircuitBreaker(), CLOSED_ADMISSION, now, failed=True, duration=0.1)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(key.decode() for key in client.scan_iter(match=f"{prefix}*"))
        assert [key.removeprefix(prefix).split(":")[0] for key in keys] == ["budget", "circuit", "limiter"]
        assert not any("s3cr3t" in key for key in keys)
        ttls = {key.removeprefix(prefix).split(":")[0]: client.pttl(key) for key in keys}
        assert 0 < ttls["limiter"] <= 1010  # expires once the quota has recovered (10 ms), plus a second
        assert 115_000 < ttls["budget"] <= 121_000
        assert 115_000 < ttls["circuit"] <= 121_000
    finally:
        client.close()


def test_a_circuits_hash_stays_bounded_however_long_it_runs(redis_url: str, prefix: str) -> None:
    breaker = CircuitBreaker(window=1.0, buckets=4, min_calls=1000)
    commands = RedisCommands(prefix=prefix, server_time=False)  # a fake clock, to cross many windows at once
    with RedisState(redis_url, prefix=prefix) as state:
        for step in range(400):
            now = 1000.0 + step * 0.37
            state.execute(commands.record("host", breaker, CLOSED_ADMISSION, now, failed=step % 3 == 0, duration=0))
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.hlen(commands.redis_key("circuit", "host")) <= 3 * 4 + 3  # buckets, geometry, slot, phase
        finally:
            client.close()
        snapshot = state.execute(commands.circuit_snapshot("host", breaker, now))
        assert snapshot.calls <= 3  # a one-second window holds about three calls 0.37 s apart


def test_another_window_shape_starts_the_counts_afresh(redis_url: str, prefix: str) -> None:
    with RedisState(redis_url, prefix=prefix) as state:
        now = time.monotonic()
        wide = CircuitBreaker(window=10.0, buckets=10, min_calls=100)
        narrow = CircuitBreaker(window=10.0, buckets=3, min_calls=100)
        for _ in range(5):
            state.record("host", wide, CLOSED_ADMISSION, now, failed=True, duration=0)
        assert state.circuit_snapshot("host", wide, now).failures == 5
        state.record("host", narrow, CLOSED_ADMISSION, now, failed=True, duration=0)
        assert state.circuit_snapshot("host", narrow, now).failures == 1
        assert state.circuit_snapshot("host", wide, now).failures == 0


def test_scripts_are_sent_again_when_the_server_forgot_them(private_redis: PrivateRedis) -> None:
    with RedisState(private_redis.url) as state:
        limits = (RateLimit(1, burst=1),)
        assert state.reserve("k", limits, time.monotonic()) == 0.0
        client = redis.Redis.from_url(private_redis.url)
        client.script_flush()
        client.close()
        assert state.reserve("k", limits, time.monotonic()) > 0.9
        assert state.stats().failures == 0
