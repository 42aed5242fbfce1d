"""The Redis scripts are the local policies, step for step: the same operations give the same answers.

Here the scripts decide at the caller's ``now`` (``server_time=False``) so that one fake clock drives both the
policy and Redis, and every answer is compared exactly: waits, refusals' times, probes, phases, snapshots.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tether.policies import (
    CLOSED_ADMISSION,
    Admitted,
    CircuitBreaker,
    Limiter,
    RateLimit,
    RetryBudget,
    RetryBudgetState,
)
from tether.state import MemoryState, RedisCommands, RedisState

from .conftest import delete_prefix

pytestmark = pytest.mark.integration

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def shell() -> Iterator[tuple[RedisState, RedisCommands]]:
    from .conftest import REDIS_URL, _answers

    if not _answers(REDIS_URL):
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    prefix = f"tether-test:{uuid.uuid4().hex}:"
    # fail closed: a Redis too slow to answer (a loaded machine) must fail the test as such, not as a divergence
    state = RedisState(REDIS_URL, prefix=prefix, timeout=10.0, on_unavailable="closed")
    yield state, RedisCommands(prefix=prefix, server_time=False, deposit_interval=1e9)
    state.close()
    delete_prefix(REDIS_URL, prefix)


def _fresh_key() -> str:
    return uuid.uuid4().hex


# times on a grid of 0.05 s, so that slot and window boundaries are hit exactly, as a fake clock would
steps = st.integers(0, 40).map(lambda n: n * 0.05)

rate_limits = st.builds(
    RateLimit, rate=st.integers(1, 20), per=st.sampled_from([0.5, 1.0, 3.0]), burst=st.none() | st.integers(1, 5)
)


@SETTINGS
@given(
    limits=st.lists(rate_limits, max_size=3).map(tuple),
    operations=st.lists(
        st.tuples(
            st.sampled_from(["reserve", "learn", "learn-window"]),
            steps,
            st.sampled_from([math.inf, 0.0, 0.3, 2.0]),
            st.integers(0, 5),
            st.sampled_from([-1.0, 0.0, 0.5, 2.0, 4.0]),
        ),
        min_size=1,
        max_size=25,
    ),
)
@example(  # a reservation exactly when learned pacing ends books nothing in it
    limits=(),
    operations=[("learn", 0.0, math.inf, 2, 2.0), ("reserve", 2.0, math.inf, 0, 0.0), ("reserve", 0.0, 0.0, 0, 0.0)],
)
@example(  # announcements of one window keep the earliest reset they bound
    limits=(),
    operations=[
        ("learn-window", 0.0, math.inf, 3, 2.0),
        ("learn-window", 0.5, math.inf, 2, 2.0),
        ("reserve", 0.0, math.inf, 0, 0.0),
        ("reserve", 0.0, math.inf, 0, 0.0),
        ("learn-window", 1.5, math.inf, 5, 2.0),  # more remaining: a new window
        ("reserve", 0.0, math.inf, 0, 0.0),
        ("reserve", 0.0, math.inf, 0, 0.0),
    ],
)
@example(  # a window that outlasts its tightened bound turns the tightening off
    limits=(),
    operations=[
        ("learn-window", 0.0, math.inf, 4, 2.0),
        ("learn-window", 0.5, math.inf, 3, 2.0),  # 2.5 said, 2.0 kept
        ("learn-window", 1.6, math.inf, 2, 0.5),  # past 2.0 and still the same window
        ("learn-window", 1.0, math.inf, 5, 2.0),
        ("learn-window", 0.2, math.inf, 4, 2.0),  # taken as said from now on
        ("reserve", 0.0, math.inf, 0, 0.0),
        ("reserve", 0.0, math.inf, 0, 0.0),
    ],
)
def test_the_limiter_script_answers_as_the_limiter(
    shell: tuple[RedisState, RedisCommands], limits: tuple[RateLimit, ...], operations: list[Any]
) -> None:
    state, commands = shell
    key, local, now = _fresh_key(), Limiter(limits), 1000.0
    for kind, step, max_wait, remaining, reset_after in operations:
        now += step
        if kind == "reserve":
            assert state.execute(commands.reserve(key, limits, now, max_wait)) == local.reserve(now, max_wait)
        else:
            window = kind == "learn-window"
            state.execute(commands.learn(key, limits, now, remaining, reset_after, window=window))
            local.learn(now, remaining, reset_after, window=window)
    assert state.stats().fallbacks == 0


@SETTINGS
@given(
    config=st.builds(
        RetryBudget,
        ratio=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
        burst=st.sampled_from([1.0, 2.0, 5.0]),
        min_per_second=st.sampled_from([0.0, 0.2, 1.0]),
    ),
    operations=st.lists(st.tuples(st.sampled_from(["request", "retry"]), steps), min_size=1, max_size=30),
)
def test_the_budget_script_answers_as_the_budget(
    shell: tuple[RedisState, RedisCommands], config: RetryBudget, operations: list[tuple[str, float]]
) -> None:
    state, commands = shell
    key, now = _fresh_key(), 1000.0
    local = RetryBudgetState(config, now)
    for kind, step in operations:
        now += step
        if kind == "request":
            local.record_request(now)
            command = commands.record_request(key, config, now)
            if command is not None:
                state.execute(command)
        else:
            assert state.execute(commands.try_spend(key, config, now)) == local.try_spend(now)
    ours = state.execute(commands.budget_snapshot(key, config, now))
    theirs = local.snapshot()
    assert (ours.requests, ours.retries, ours.suppressed) == (theirs.requests, theirs.retries, theirs.suppressed)
    assert ours.tokens == pytest.approx(theirs.tokens)


breakers = st.builds(
    CircuitBreaker,
    failure_ratio=st.sampled_from([0.3, 0.5, 1.0]),
    slow_call=st.none() | st.just(0.5),
    slow_ratio=st.sampled_from([0.5, 1.0]),
    window=st.sampled_from([1.0, 2.0, 10.0]),
    buckets=st.integers(1, 6),
    min_calls=st.integers(1, 5),
    open_for=st.sampled_from([0.5, 1.0]),
    open_multiplier=st.sampled_from([1.0, 2.0, 3.0]),
    max_open_for=st.just(4.0),
    probes=st.integers(1, 3),
    probe_timeout=st.sampled_from([0.5, 2.0]),
)


@SETTINGS
@given(
    config=breakers,
    operations=st.lists(
        st.tuples(
            st.sampled_from(["acquire", "acquire", "record"]),
            steps,
            st.integers(0, 3),
            st.sampled_from([True, True, False]),
            st.sampled_from([0.0, 0.2, 0.5, 1.0]),
        ),
        min_size=1,
        max_size=40,
    ),
)
@example(  # trips in a row: the open time grows up to max_open_for
    config=CircuitBreaker(min_calls=1, open_for=0.5, open_multiplier=2.0, max_open_for=4.0, probe_timeout=2.0),
    operations=[
        ("acquire", 0.0, 0, True, 0.0),
        ("record", 0.1, 0, True, 0.1),
        *[("acquire", 0.5, 0, True, 0.0), ("acquire", 0.5, 0, True, 0.0), ("record", 0.5, 0, True, 0.0)] * 4,
    ],
)
@example(  # a probe lapses exactly probe_timeout after it was issued
    config=CircuitBreaker(min_calls=1, open_for=0.5, probe_timeout=0.5),
    operations=[
        ("acquire", 0.0, 0, True, 0.0),
        ("record", 0.0, 0, True, 0.0),
        ("acquire", 0.5, 0, True, 0.0),
        ("acquire", 0.5, 0, True, 0.0),
    ],
)
def test_the_circuit_scripts_answer_as_the_circuit(
    shell: tuple[RedisState, RedisCommands], config: CircuitBreaker, operations: list[Any]
) -> None:
    state, commands = shell
    key, local, now = _fresh_key(), MemoryState(), 1000.0
    ours_out: list[Admitted] = []  # permits not reported yet, in the same order on both sides
    theirs_out: list[Admitted] = []
    for kind, step, pick, failed, duration in operations:
        now += step
        if kind == "acquire":
            ours = state.execute(commands.acquire(key, config, now))
            theirs = local.acquire(key, config, now)
            assert ours == theirs
            if isinstance(ours.permit, Admitted):
                ours_out.append(ours.permit)
                assert isinstance(theirs.permit, Admitted)
                theirs_out.append(theirs.permit)
        elif ours_out:
            index = pick % len(ours_out)
            ours_phase = state.execute(
                commands.record(key, config, ours_out.pop(index), now, failed=failed, duration=duration)
            )
            theirs_phase = local.record(key, config, theirs_out.pop(index), now, failed=failed, duration=duration)
            assert ours_phase == theirs_phase
        assert state.execute(commands.circuit_snapshot(key, config, now)) == local.circuit_snapshot(key, config, now)
    assert state.stats().fallbacks == 0


def test_window_slots_follow_pythons_floor_division(shell: tuple[RedisState, RedisCommands]) -> None:
    """1024.7 // (1 / 3) is 3074.0, though fmod and floor alone give 3073: the call must expire in the same slot."""
    state, commands = shell
    key, local = _fresh_key(), MemoryState()
    config = CircuitBreaker(window=1.0, buckets=3, min_calls=5)
    state.execute(commands.record(key, config, CLOSED_ADMISSION, 1024.7, failed=False, duration=0.0))
    local.record(key, config, CLOSED_ADMISSION, 1024.7, failed=False, duration=0.0)
    for step in range(120):
        now = 1024.7 + step * 0.01
        assert state.execute(commands.circuit_snapshot(key, config, now)) == local.circuit_snapshot(key, config, now)


@pytest.mark.parametrize("reset_after", [math.nan, math.inf, -math.inf, 1e308, 5e-324])
@pytest.mark.parametrize("remaining", [0, 1, 10**18])
def test_odd_announcements_neither_break_the_script_nor_differ(
    shell: tuple[RedisState, RedisCommands], remaining: int, reset_after: float
) -> None:
    state, commands = shell
    key, local, now = _fresh_key(), Limiter((RateLimit(5),)), 1000.0
    state.execute(commands.learn(key, local.limits, now, remaining, reset_after))
    local.learn(now, remaining, reset_after)
    for max_wait in (math.inf, 0.0, math.nan, -1.0):
        now += 0.1
        assert state.execute(commands.reserve(key, local.limits, now, max_wait)) == local.reserve(now, max_wait)
    assert state.stats().failures == 0
