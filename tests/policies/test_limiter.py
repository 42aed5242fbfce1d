"""Declared rate limits (GCRA) as a pure state machine: times are plain numbers, nothing sleeps."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import ConfigurationError
from tether.policies.limiter import Limiter, RateLimit


def test_a_full_burst_goes_at_once_then_calls_are_spaced_by_the_interval() -> None:
    limiter = Limiter((RateLimit(10, per=1.0),))
    assert [limiter.reserve(0.0) for _ in range(10)] == [0.0] * 10
    assert limiter.reserve(0.0) == pytest.approx(0.1)
    assert limiter.reserve(0.0) == pytest.approx(0.2)
    assert limiter.reserve(5.0) == 0.0  # the quota refilled meanwhile


def test_burst_one_spaces_every_call() -> None:
    limiter = Limiter((RateLimit(4, per=1.0, burst=1),))
    assert [round(limiter.reserve(0.0), 6) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_the_strictest_of_several_limits_decides() -> None:
    limiter = Limiter((RateLimit(10, per=1.0), RateLimit(15, per=60.0)))
    waits = [limiter.reserve(0.0) for _ in range(16)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.1)  # the per-second limit
    assert waits[15] == pytest.approx(4.0)  # the per-minute one: 15 used, the next slot in 60 / 15 s


def test_a_wait_longer_than_accepted_books_nothing() -> None:
    limiter = Limiter((RateLimit(1, per=1.0),))
    assert limiter.reserve(0.0) == 0.0
    assert limiter.reserve(0.0, max_wait=0.5) == pytest.approx(1.0)  # refused
    assert limiter.reserve(0.0, max_wait=0.5) == pytest.approx(1.0)  # still 1 s: the refusal took no slot
    assert limiter.reserve(0.0) == pytest.approx(1.0)  # accepted: booked
    assert limiter.reserve(0.0) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": 5, "per": 0}, {"rate": 5, "burst": 0}])
def test_invalid_limits_are_configuration_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="RateLimit needs"):
        RateLimit(**bad)  # type: ignore[arg-type]


@given(
    rate=st.integers(min_value=1, max_value=20),
    burst=st.integers(min_value=1, max_value=20),
    arrivals=st.lists(st.floats(min_value=0, max_value=0.5, allow_nan=False), max_size=80),
    max_wait=st.floats(min_value=0, max_value=2, allow_nan=False),
)
def test_calls_never_run_ahead_of_the_rate_beyond_the_burst(
    rate: int, burst: int, arrivals: list[float], max_wait: float
) -> None:
    """For any arrivals, the calls that were let through start at times where, between the i-th and the j-th,
    at least (j - i + 1 - burst) intervals passed; and no call waits longer than it accepted."""
    limit = RateLimit(rate, per=1.0, burst=burst)
    limiter = Limiter((limit,))
    now, starts = 0.0, []
    for gap in arrivals:
        now += gap
        wait = limiter.reserve(now, max_wait)
        if wait <= max_wait:
            starts.append(now + wait)
    starts.sort()
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            needed = (j - i + 1 - burst) * limit.interval
            assert starts[j] - starts[i] >= needed - 1e-9 * max(1.0, starts[j])
    assert all(not math.isnan(s) for s in starts)
