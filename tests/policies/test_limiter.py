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


# --- learned pacing -----------------------------------------------------------------------------------------------


def _spacing(limiter: Limiter, now: float, calls: int) -> list[float]:
    """The waits of ``calls`` calls all asking at ``now``."""
    return [round(limiter.reserve(now), 6) for _ in range(calls)]


def test_learned_quota_is_spread_evenly_up_to_the_reset() -> None:
    limiter = Limiter(())
    limiter.learn(0.0, 4, 2.0)
    assert _spacing(limiter, 0.0, 4) == [0.0, 0.5, 1.0, 1.5]
    assert limiter.reserve(2.0) == 0.0  # past the reset: no pacing until the provider speaks again


def test_a_stop_waits_for_the_reset() -> None:
    limiter = Limiter(())
    limiter.learn(0.0, 0, 7.0)
    assert limiter.reserve(1.0) == pytest.approx(6.0)


def test_later_responses_of_one_window_tighten_a_rounded_up_reset() -> None:
    # the window really ends at 1.6; the server rounds the seconds left up, as providers do
    limiter = Limiter(())
    limiter.learn(0.0, 10, 2.0, window=True)  # ends "by 2.0"
    limiter.learn(0.7, 9, 1.0, window=True)  # ceil(1.6 - 0.7) = 1: ends by 1.7, earlier: kept
    limiter.learn(0.9, 8, 1.0, window=True)  # by 1.9: later than what is known, ignored
    assert _spacing(limiter, 0.9, 2) == [0.0, pytest.approx(0.8 / 8)]


def test_a_quota_that_is_not_a_fixed_window_is_never_tightened() -> None:
    # Shopify's leaky bucket: "40 calls over used / 2 s" grows as the bucket fills; each response is taken as said
    limiter = Limiter(())
    limiter.learn(0.0, 40, 0.5)
    limiter.learn(0.4, 40, 10.0)
    assert limiter.learned_reset == pytest.approx(10.4)


def test_a_provider_that_rounds_resets_down_turns_the_tightening_off() -> None:
    # the window really ends at 2.5; the provider truncates the seconds left
    limiter = Limiter(())
    limiter.learn(0.0, 10, 2.0, window=True)  # int(2.5) = 2: by 2.0
    limiter.learn(0.2, 9, 2.0, window=True)  # int(2.3) = 2: by 2.2; the earlier 2.0 is kept
    assert limiter.learned_reset == pytest.approx(2.0)
    limiter.learn(2.1, 8, 0.0 + 0.4, window=True)  # past the bound, and still the old window (8 left): caught
    limiter.learn(3.0, 10, 2.0, window=True)  # a new window: by 5.0
    limiter.learn(3.2, 9, 2.0, window=True)  # by 5.2: from now on each reset is taken as said
    assert limiter.learned_reset == pytest.approx(5.2)


def test_a_429_right_after_a_tightened_window_turns_the_tightening_off() -> None:
    limiter = Limiter(())
    limiter.learn(0.0, 10, 2.0, window=True)
    limiter.learn(0.2, 9, 2.0, window=True)  # 2.2 said, 2.0 kept
    limiter.learn(2.05, 0, 1.0)  # but the provider refused: Retry-After 1
    limiter.learn(3.0, 10, 2.0, window=True)
    limiter.learn(3.2, 9, 2.0, window=True)
    assert limiter.learned_reset == pytest.approx(5.2)  # the latest announcement, not the earliest bound


def test_a_new_window_starts_over_when_remaining_goes_up() -> None:
    limiter = Limiter(())
    limiter.learn(0.0, 2, 1.0)
    limiter.learn(0.5, 100, 10.0)  # a fresh window: the old bound says nothing about it
    assert _spacing(limiter, 0.5, 2) == [0.0, pytest.approx(0.1)]


def test_a_stop_is_taken_as_said_even_if_an_earlier_reset_was_known() -> None:
    limiter = Limiter(())
    limiter.learn(0.0, 5, 1.0)
    limiter.learn(0.5, 0, 7.0)  # 429 with Retry-After: 7 overrides the window's bound
    assert limiter.reserve(0.5) == pytest.approx(7.0)


@given(
    end=st.floats(0.5, 20.0),
    offsets=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=30),
)
def test_the_learned_reset_is_never_before_the_true_one_and_is_the_tightest_bound(
    end: float, offsets: list[float]
) -> None:
    # responses read at increasing times within one window, each announcing ceil(seconds left), as providers do
    limiter = Limiter(())
    times = sorted(offset * end for offset in offsets)
    for index, now in enumerate(times):
        limiter.learn(now, len(times) - index, float(math.ceil(end - now)), window=True)
    learned = limiter.learned_reset
    assert learned is not None
    assert learned >= end - 1e-9
    assert learned == pytest.approx(min(now + math.ceil(end - now) for now in times))
