"""The in-memory backend: the policies' own answers, one state per setting and key."""

from __future__ import annotations

import math

from tether.policies import (
    CLOSED_ADMISSION,
    Admitted,
    CircuitBreaker,
    Limiter,
    RateLimit,
    Refused,
    RetryBudget,
    RetryBudgetState,
)
from tether.state import CLOSED, Admission, MemoryState, StateBackend

LIMITS = (RateLimit(2, per=1.0, burst=1),)
BREAKER = CircuitBreaker(min_calls=2, failure_ratio=0.5, window=10.0, buckets=5, open_for=1.0, probes=1)


def test_is_a_state_backend() -> None:
    backend: StateBackend = MemoryState()
    assert backend.reserve("k", (), 0.0) == 0.0


def test_limiter_answers_as_the_policy_does() -> None:
    state, policy = MemoryState(), Limiter(LIMITS)
    for now in (0.0, 0.0, 0.1, 0.2, 2.0):
        assert state.reserve("k", LIMITS, now) == policy.reserve(now)
    assert state.reserve("k", LIMITS, 2.0, max_wait=0.1) == policy.reserve(2.0, max_wait=0.1)


def test_learned_pacing_answers_as_the_policy_does() -> None:
    state, policy = MemoryState(), Limiter(())
    state.learn("k", (), 10.0, 0, 2.0)
    policy.learn(10.0, 0, 2.0)
    assert state.reserve("k", (), 10.5, max_wait=0) == policy.reserve(10.5, max_wait=0) == 1.5


def test_state_is_per_key_and_per_setting_and_equal_settings_share_it() -> None:
    state = MemoryState()
    assert state.reserve("a", LIMITS, 0.0) == 0.0
    assert state.reserve("b", LIMITS, 0.0) == 0.0  # another key
    assert state.reserve("a", (RateLimit(2, burst=1),), 0.0) > 0  # an equal setting, the same state
    assert state.reserve("a", (RateLimit(3, burst=1),), 0.0) == 0.0  # another setting
    assert state.limiter("a", LIMITS) is state.limiter("a", (RateLimit(2, burst=1),))


def test_budget_answers_as_the_policy_does() -> None:
    config = RetryBudget(ratio=0.5, burst=2, min_per_second=0)
    state, policy = MemoryState(), RetryBudgetState(config, 0.0)
    outcomes = []
    for now in (0.0, 0.1, 0.2, 0.3):
        state.record_request("client", config, now)
        policy.record_request(now)
        outcomes.append((state.try_spend("client", config, now), policy.try_spend(now)))
    assert all(ours == theirs for ours, theirs in outcomes)
    assert [ours for ours, _ in outcomes] == [True, True, True, False]
    assert state.budget_snapshot("client", config, 0.3) == policy.snapshot()


def test_circuit_admission_reports_each_phase_change_once() -> None:
    state = MemoryState()
    assert state.acquire("h", BREAKER, 0.0) is CLOSED
    assert state.record("h", BREAKER, CLOSED_ADMISSION, 0.1, failed=True, duration=0.1) is None  # below min_calls
    assert state.record("h", BREAKER, CLOSED_ADMISSION, 0.2, failed=True, duration=0.1) == "open"
    refused = state.acquire("h", BREAKER, 0.5)
    assert refused == Admission(Refused(1.2), "open", changed=False)
    probe = state.acquire("h", BREAKER, 1.2)
    assert probe == Admission(Admitted(probe=True, issued=1.2), "half_open", changed=True)
    assert state.acquire("h", BREAKER, 1.3) == Admission(Refused(1.2 + BREAKER.probe_timeout), "half_open", False)
    assert isinstance(probe.permit, Admitted)
    assert state.record("h", BREAKER, probe.permit, 1.4, failed=False, duration=0.2) == "closed"
    snapshot = state.circuit_snapshot("h", BREAKER, 1.5)
    assert (snapshot.phase, snapshot.calls, snapshot.trips, snapshot.open_until) == ("closed", 0, 0, None)


def test_a_lapsed_probe_reopens_the_circuit_as_a_change() -> None:
    state = MemoryState()
    for now in (0.0, 0.1):
        state.record("h", BREAKER, CLOSED_ADMISSION, now, failed=True, duration=0.0)
    assert state.acquire("h", BREAKER, 1.1).phase == "half_open"
    lapsed = state.acquire("h", BREAKER, 1.1 + BREAKER.probe_timeout)
    assert lapsed.changed
    assert lapsed.phase == "open"
    assert isinstance(lapsed.permit, Refused)
    assert lapsed.permit.retry_at > 1.1 + BREAKER.probe_timeout
    assert math.isfinite(lapsed.permit.retry_at)
