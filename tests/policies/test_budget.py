"""Retry budget: retries add at most ``ratio`` of traffic (plus burst and the per-second trickle)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import ConfigurationError
from tether.policies import RetryBudget, RetryBudgetState


def test_fresh_budget_allows_a_burst_then_suppresses() -> None:
    state = RetryBudgetState(RetryBudget(ratio=0.1, burst=3, min_per_second=0), now=0.0)
    assert [state.try_spend(0.0) for _ in range(4)] == [True, True, True, False]
    snap = state.snapshot()
    assert (snap.retries, snap.suppressed) == (3, 1)


def test_requests_earn_retries_at_the_ratio() -> None:
    state = RetryBudgetState(RetryBudget(ratio=0.25, burst=1, min_per_second=0), now=0.0)
    assert state.try_spend(0.0)
    assert not state.try_spend(0.0)
    for _ in range(4):
        state.record_request(0.0)
    assert state.try_spend(0.0)
    assert not state.try_spend(0.0)


def test_quiet_clients_refill_over_time() -> None:
    state = RetryBudgetState(RetryBudget(ratio=0, burst=1, min_per_second=0.5), now=0.0)
    assert state.try_spend(0.0)
    assert not state.try_spend(1.0)  # 0.5 token
    assert state.try_spend(2.0)  # 0.5 + 0.5 = 1 token


def test_tokens_never_exceed_burst() -> None:
    state = RetryBudgetState(RetryBudget(ratio=1, burst=2, min_per_second=100), now=0.0)
    for _ in range(100):
        state.record_request(1000.0)
    assert state.snapshot().tokens == 2


def test_invalid_settings() -> None:
    with pytest.raises(ConfigurationError):
        RetryBudget(ratio=-0.1)
    with pytest.raises(ConfigurationError):
        RetryBudget(burst=0.5)


events = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.sampled_from(["request", "retry"])),
    max_size=300,
)


@given(
    events=events,
    ratio=st.floats(min_value=0, max_value=1),
    burst=st.floats(min_value=1, max_value=20),
    trickle=st.floats(min_value=0, max_value=5),
    window=st.tuples(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300)),
)
def test_budget_never_allows_more_than_its_share_over_any_window(
    events: list[tuple[float, str]], ratio: float, burst: float, trickle: float, window: tuple[int, int]
) -> None:
    """Over any window: retries <= burst + ratio x requests + trickle x duration."""
    state = RetryBudgetState(RetryBudget(ratio=ratio, burst=burst, min_per_second=trickle), now=0.0)
    now = 0.0
    log: list[tuple[float, str, bool]] = []
    for gap, kind in events:
        now += gap
        if kind == "request":
            state.record_request(now)
            log.append((now, kind, True))
        else:
            log.append((now, kind, state.try_spend(now)))
    lo, hi = sorted(window)
    chosen = log[lo:hi]
    if not chosen:
        return
    duration = chosen[-1][0] - chosen[0][0]
    requests = sum(1 for _, kind, _ in chosen if kind == "request")
    retries = sum(1 for _, kind, allowed in chosen if kind == "retry" and allowed)
    assert retries <= burst + ratio * requests + trickle * duration + 1e-9
