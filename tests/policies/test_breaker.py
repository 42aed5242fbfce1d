"""The circuit breaker as a pure state machine: times are plain numbers, nothing sleeps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import ConfigurationError
from tether.policies.breaker import CLOSED_ADMISSION, Admitted, CircuitBreaker, CircuitState, Refused

CONFIG = CircuitBreaker(min_calls=4, failure_ratio=0.5, window=10.0, buckets=10, open_for=5.0, max_open_for=30.0)


def _call(circuit: CircuitState, now: float, *, failed: bool, duration: float = 0.01) -> Admitted | Refused:
    permit = circuit.acquire(now)
    if isinstance(permit, Admitted):
        circuit.record(permit, now + duration, failed=failed, duration=duration)
    return permit


def test_stays_closed_below_min_calls_even_if_every_call_fails() -> None:
    circuit = CircuitState(CONFIG)
    for i in range(3):
        assert isinstance(_call(circuit, float(i), failed=True), Admitted)
    assert circuit.phase == "closed"


def test_trips_at_the_failure_ratio_and_refuses_until_the_open_time_ends() -> None:
    circuit = CircuitState(CONFIG)
    for i, failed in enumerate([False, True, False, True]):  # 2 of 4 failed: ratio 0.5 reached
        _call(circuit, 1.0 + i * 0.1, failed=failed)
    assert circuit.phase == "open"
    opened_at = 1.3 + 0.01
    refused = circuit.acquire(2.0)
    assert isinstance(refused, Refused)
    assert refused.retry_at == pytest.approx(opened_at + 5.0)
    assert isinstance(circuit.acquire(opened_at + 4.99), Refused)
    assert isinstance(circuit.acquire(opened_at + 5.0), Admitted)


def test_below_the_ratio_it_stays_closed() -> None:
    circuit = CircuitState(CONFIG)
    for i, failed in enumerate([False, True, False, False, False, True, False]):
        _call(circuit, i * 0.1, failed=failed)
    assert circuit.phase == "closed"


def _tripped(now: float = 0.0) -> CircuitState:
    circuit = CircuitState(CONFIG)
    for i in range(4):
        _call(circuit, now + i * 0.01, failed=True, duration=0.0)
    assert circuit.phase == "open"
    return circuit


def test_half_open_admits_the_probes_only_and_their_success_closes() -> None:
    circuit = _tripped()
    probe = circuit.acquire(10.0)
    assert isinstance(probe, Admitted) and probe.probe
    assert circuit.phase == "half_open"
    assert isinstance(circuit.acquire(10.1), Refused)  # one probe at a time by default
    circuit.record(probe, 10.2, failed=False, duration=0.2)
    assert circuit.snapshot(10.2).phase == "closed"
    assert circuit.snapshot(10.2).calls == 0  # a fresh window
    assert isinstance(circuit.acquire(10.3), Admitted)


def test_a_failed_probe_reopens_for_longer_each_time_up_to_the_cap() -> None:
    circuit = _tripped()
    now = 0.03
    durations = []
    for _ in range(6):
        refused = circuit.acquire(now)
        assert isinstance(refused, Refused)
        durations.append(refused.retry_at - now)
        now = refused.retry_at
        probe = circuit.acquire(now)
        assert isinstance(probe, Admitted) and probe.probe
        circuit.record(probe, now, failed=True, duration=0.0)
    assert durations == pytest.approx([5.0, 10.0, 20.0, 30.0, 30.0, 30.0])


def test_a_probe_that_never_reports_lapses_into_a_failure() -> None:
    circuit = _tripped()
    probe = circuit.acquire(10.0)
    assert isinstance(probe, Admitted)
    blocked = circuit.acquire(20.0)
    assert isinstance(blocked, Refused)
    assert blocked.retry_at == pytest.approx(10.0 + CONFIG.probe_timeout)
    reopened = circuit.acquire(10.0 + CONFIG.probe_timeout)
    assert isinstance(reopened, Refused)
    assert circuit.phase == "open"
    assert reopened.retry_at == pytest.approx(10.0 + CONFIG.probe_timeout + 10.0)  # the second trip: 2 x 5 s
    circuit.record(probe, 50.0, failed=False, duration=40.0)  # the lost probe reports at last: ignored
    assert circuit.phase == "open"


def test_a_released_probe_frees_its_slot_and_counts_nothing() -> None:
    """A probe whose call was cancelled before its answer gives its permit back: the next call probes at once,
    instead of being refused for ``probe_timeout`` and finding the circuit re-opened as if the probe had failed."""
    circuit = _tripped()
    probe = circuit.acquire(10.0)
    assert isinstance(probe, Admitted) and probe.probe
    circuit.release(probe)
    assert circuit.phase == "half_open"
    again = circuit.acquire(10.5)
    assert isinstance(again, Admitted) and again.probe
    circuit.release(probe)  # twice, or after another probe took the slot: nothing happens
    assert isinstance(circuit.acquire(10.6), Refused)  # ``again`` is still out
    circuit.record(again, 10.7, failed=False, duration=0.2)
    assert circuit.snapshot(10.7).phase == "closed"
    circuit.release(CLOSED_ADMISSION)  # a closed circuit's permit: nothing to give back
    assert circuit.snapshot(10.8).calls == 0


def test_refusal_answers_an_open_circuit_without_taking_a_permit() -> None:
    circuit = CircuitState(CONFIG)
    assert circuit.refusal(0.0) is None  # closed
    circuit = _tripped()
    refused = circuit.refusal(1.0)
    assert isinstance(refused, Refused)
    assert refused.retry_at == pytest.approx(0.03 + CONFIG.open_for)
    assert circuit.refusal(10.0) is None  # due to probe: only acquire decides, and takes the probe
    assert circuit.phase == "open"
    probe = circuit.acquire(10.0)
    assert isinstance(probe, Admitted) and probe.probe
    assert circuit.refusal(10.1) is None  # half-open: acquire says whether a probe slot is free


def test_settings_are_values_equal_settings_hash_alike() -> None:
    """Clients find a setting's states by its value, so settings must hash; statuses given as a set are frozen."""
    given_set = CircuitBreaker(failure_statuses={502, 503})  # type: ignore[arg-type]
    assert given_set.failure_statuses == frozenset({502, 503})
    assert hash(given_set) == hash(CircuitBreaker(failure_statuses=frozenset({503, 502})))
    assert len({CircuitBreaker(), CircuitBreaker(), CircuitBreaker(open_for=1.0)}) == 2


def test_several_probes_must_all_succeed() -> None:
    circuit = CircuitState(CircuitBreaker(min_calls=2, probes=2, open_for=1.0))
    _call(circuit, 0.0, failed=True)
    _call(circuit, 0.1, failed=True)
    first, second = circuit.acquire(5.0), circuit.acquire(5.0)
    assert isinstance(first, Admitted) and isinstance(second, Admitted)
    assert isinstance(circuit.acquire(5.0), Refused)
    circuit.record(first, 5.1, failed=False, duration=0.1)
    assert circuit.phase == "half_open"
    circuit.record(second, 5.2, failed=False, duration=0.2)
    assert circuit.snapshot(5.2).phase == "closed"


def test_failures_leave_the_window_as_it_slides() -> None:
    circuit = CircuitState(CONFIG)
    for i in range(3):
        _call(circuit, i * 0.1, failed=True)
    assert circuit.snapshot(0.5).failures == 3
    assert circuit.snapshot(11.0).calls == 0  # ten seconds later they are gone
    _call(circuit, 11.0, failed=True)  # one more failure: 1 call in the window, below min_calls
    assert circuit.phase == "closed"


def test_a_call_admitted_before_the_trip_reporting_late_changes_nothing() -> None:
    circuit = CircuitState(CONFIG)
    early = circuit.acquire(0.0)
    assert isinstance(early, Admitted)
    for i in range(4):
        _call(circuit, 0.1 + i * 0.01, failed=True)
    assert circuit.phase == "open"
    circuit.record(early, 0.5, failed=False, duration=0.5)
    assert circuit.phase == "open"


def test_slow_calls_trip_when_the_rule_is_on() -> None:
    config = CircuitBreaker(min_calls=4, slow_call=1.0, slow_ratio=0.75)
    circuit = CircuitState(config)
    for i, duration in enumerate([2.0, 2.0, 0.1, 2.0]):
        _call(circuit, float(i), failed=False, duration=duration)
    assert circuit.phase == "open"
    off = CircuitState(CircuitBreaker(min_calls=4))
    for i in range(4):
        _call(off, float(i), failed=False, duration=60.0)
    assert off.phase == "closed"


def test_what_counts_as_a_failure_by_default() -> None:
    config = CircuitBreaker()
    assert config.is_failure(None)  # a transport error or timeout
    assert config.is_failure(500) and config.is_failure(503)
    assert not config.is_failure(404) and not config.is_failure(429) and not config.is_failure(200)


@pytest.mark.parametrize(
    "changes",
    [
        {"failure_ratio": 0},
        {"failure_ratio": 1.5},
        {"slow_call": 0},
        {"window": 0},
        {"buckets": 0},
        {"min_calls": 0},
        {"open_for": 0},
        {"open_for": 10, "max_open_for": 5},
        {"open_multiplier": 0.5},
        {"probes": 0},
    ],
)
def test_invalid_settings_are_configuration_errors(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="CircuitBreaker needs"):
        CircuitBreaker(**changes)  # type: ignore[arg-type]


steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=8, allow_nan=False),  # time advance
        st.sampled_from(["ok", "fail", "slow", "lost"]),  # how the admitted call ends
    ),
    max_size=120,
)


@settings(max_examples=300)
@given(steps=steps, probes=st.integers(min_value=1, max_value=3))
def test_invariants_hold_for_any_history(steps: list[tuple[float, str]], probes: int) -> None:
    """Never a plain call while not closed; never more probes out than allowed; open times grow within the cap."""
    config = CircuitBreaker(
        min_calls=3,
        window=5.0,
        buckets=5,
        open_for=1.0,
        max_open_for=8.0,
        probes=probes,
        probe_timeout=4.0,
        slow_call=1.0,
    )
    circuit = CircuitState(config)
    now = 0.0
    outstanding: list[Admitted] = []
    last_open: float | None = None
    for advance, ending in steps:
        now += advance
        phase_before = circuit.phase
        permit = circuit.acquire(now)
        if isinstance(permit, Refused):
            assert permit.retry_at > now
            continue
        if not permit.probe:
            assert phase_before == "closed"
        else:
            assert circuit.phase == "half_open"
            assert len(circuit._probes_out) <= probes
        if ending == "lost":
            outstanding.append(permit)
            continue
        duration = 2.0 if ending == "slow" else 0.1
        circuit.record(permit, now + duration, failed=ending == "fail", duration=duration)
        snapshot = circuit.snapshot(now + duration)
        assert 0 <= snapshot.failures <= snapshot.calls and 0 <= snapshot.slow <= snapshot.calls
        if snapshot.open_until is not None:
            length = snapshot.open_until - (now + duration)
            assert 0 < length <= config.max_open_for + 1e-9
            if last_open is not None and snapshot.trips > 1:
                assert length >= min(last_open, config.max_open_for) - 1e-9
            last_open = length
        elif circuit.phase == "closed":
            last_open = None


def test_threads_recording_at_once_never_invent_failures_or_break_the_window() -> None:
    """The sync client shares circuits between threads: successes are counted without the lock (a race may lose
    one), failures under it; the counts stay within bounds and the trip decision stays sound."""
    import threading

    circuit = CircuitState(CircuitBreaker(min_calls=1_000_000, window=60.0))  # never trips here
    permit = circuit.acquire(0.0)
    assert isinstance(permit, Admitted)

    def work(failing: bool) -> None:
        for i in range(2_000):
            circuit.record(permit, 1.0 + i * 1e-4, failing and i % 10 == 0, 0.01)

    threads = [threading.Thread(target=work, args=(n % 2 == 0,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = circuit.snapshot(2.0)
    assert snapshot.failures == 4 * 200  # failures are counted under the lock: exact
    assert snapshot.failures <= snapshot.calls <= 8 * 2_000
    assert circuit.phase == "closed"
