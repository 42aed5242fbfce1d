"""Circuit breaker: stop calling a provider that is failing, probe it now and then, resume when it answers.

:class:`CircuitBreaker` is the immutable setting; :class:`CircuitState` is the state machine for one key (a host
by default), pure apart from its own state: every method takes ``now`` (monotonic seconds).

- **Closed**: calls pass. Each finished call is counted in a sliding window of ``window`` seconds, kept as
  ``buckets`` time slices, as a failure or not and as slow or not (slower than ``slow_call``). Once the window
  holds at least ``min_calls`` calls and the failure ratio reaches ``failure_ratio`` (or the slow ratio reaches
  ``slow_ratio``), the circuit opens.
- **Open**: calls are refused (:meth:`CircuitState.acquire` returns a :class:`Refused` with the time the next
  probe is allowed) for ``open_for`` seconds, multiplied by ``open_multiplier`` for every trip in a row without a
  recovery, up to ``max_open_for``.
- **Half-open**: after that, up to ``probes`` calls pass as probes. When they all succeed, the circuit closes
  (window and trip count reset); the first failure re-opens it for longer. A probe that never reports (its task
  was cancelled, its process hung) cannot keep the circuit half-open: a probe permit lapses ``probe_timeout``
  seconds after it was issued and counts as a failure.

What a failure is belongs to the caller (:meth:`CircuitBreaker.is_failure` gives the default: transport errors,
timeouts and 5xx responses; a 4xx is the caller's mistake, not the provider's failure).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal

from tether.errors import ConfigurationError

__all__ = ["Admitted", "CircuitBreaker", "CircuitSnapshot", "CircuitState", "Refused"]

Phase = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    """When a circuit opens and how it recovers; see the module docstring.

    ``slow_call`` (seconds) enables the slow-call rule; ``None`` disables it.
    """

    failure_ratio: float = 0.5
    slow_call: float | None = None
    slow_ratio: float = 0.8
    window: float = 30.0
    buckets: int = 10
    min_calls: int = 20
    open_for: float = 5.0
    open_multiplier: float = 2.0
    max_open_for: float = 120.0
    probes: int = 1
    probe_timeout: float = 30.0
    failure_statuses: frozenset[int] = field(default_factory=lambda: frozenset(range(500, 600)))

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.failure_ratio <= 1 or not 0 < self.slow_ratio <= 1:
            problems.append("failure_ratio and slow_ratio in (0, 1]")
        if self.slow_call is not None and not self.slow_call > 0:
            problems.append("slow_call > 0 or None")
        if not self.window > 0 or self.buckets < 1 or self.min_calls < 1:
            problems.append("window > 0, buckets >= 1, min_calls >= 1")
        if not 0 < self.open_for <= self.max_open_for or self.open_multiplier < 1:
            problems.append("0 < open_for <= max_open_for, open_multiplier >= 1")
        if self.probes < 1 or not self.probe_timeout > 0:
            problems.append("probes >= 1, probe_timeout > 0")
        if problems:
            raise ConfigurationError(f"CircuitBreaker needs {'; '.join(problems)}; got {self!r}")

    def is_failure(self, status: int | None) -> bool:
        """Whether an attempt that ended with ``status`` (``None``: a transport error or timeout) failed."""
        return status is None or status in self.failure_statuses


@dataclass(frozen=True, slots=True)
class Admitted:
    """The call may go; ``probe`` when it is one of a half-open circuit's probes (report it with ``record``)."""

    probe: bool
    issued: float


@dataclass(frozen=True, slots=True)
class Refused:
    """The circuit is open: no call until ``retry_at`` (monotonic seconds)."""

    retry_at: float


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """A circuit's state for diagnostics and health checks."""

    phase: Phase
    calls: int
    failures: int
    slow: int
    trips: int
    open_until: float | None


_CLOSED_PERMIT = Admitted(probe=False, issued=-math.inf)


class CircuitState:
    """The state machine of one circuit (thread-safe; pure apart from its own state: callers pass ``now``)."""

    __slots__ = (
        "_calls",
        "_failures",
        "_last_slot",
        "_lock",
        "_open_until",
        "_phase",
        "_probes_out",
        "_slot_width",
        "_slow",
        "_totals",
        "_trips",
        "config",
    )

    def __init__(self, config: CircuitBreaker) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._phase: Phase = "closed"
        self._slot_width = config.window / config.buckets
        # per time slice (bucket slot % buckets): calls, failures, slow calls; _totals holds their sums over the
        # live buckets, kept up to date as buckets expire, so recording a call is O(1)
        self._calls = [0] * config.buckets
        self._failures = [0] * config.buckets
        self._slow = [0] * config.buckets
        self._totals = [0, 0, 0]
        self._last_slot = 0
        self._trips = 0
        self._open_until = -math.inf
        self._probes_out: list[float] = []  # issue times of the probes not yet reported

    @property
    def phase(self) -> Phase:
        """``closed``, ``open`` or ``half_open``, as of the last call to :meth:`acquire` or :meth:`record`."""
        return self._phase

    def acquire(self, now: float) -> Admitted | Refused:
        """May a call start now? A half-open circuit admits at most ``probes`` at a time."""
        if self._phase == "closed":  # the hot path, read without the lock: a stale read only admits one more call
            return _CLOSED_PERMIT
        with self._lock:
            if self.phase == "closed":  # re-read under the lock (the property defeats the type checker's narrowing)
                return _CLOSED_PERMIT
            if self._phase == "open":
                if now < self._open_until:
                    return Refused(self._open_until)
                self._phase = "half_open"
                self._probes_out.clear()
            lapsed = [t for t in self._probes_out if now - t >= self.config.probe_timeout]
            if lapsed:  # a probe that never reported: a failure
                self._trip(now)
                return Refused(self._open_until)
            if len(self._probes_out) >= self.config.probes:
                oldest = min(self._probes_out)
                return Refused(oldest + self.config.probe_timeout)
            self._probes_out.append(now)
            return Admitted(probe=True, issued=now)

    def record(self, permit: Admitted, now: float, *, failed: bool, duration: float) -> None:
        """Report how an admitted call ended: ``failed`` per the caller's rule, after ``duration`` seconds."""
        slow = self.config.slow_call is not None and duration >= self.config.slow_call
        with self._lock:
            if permit.probe:
                if permit.issued not in self._probes_out or self._phase != "half_open":
                    return  # a lapsed probe, already counted as a failure
                self._probes_out.remove(permit.issued)
                if failed or slow:
                    self._trip(now)
                elif not self._probes_out:
                    self._close()
                return
            if self._phase != "closed":
                return  # a call admitted before the circuit opened: the decision is already made
            self._count(now, failed=failed, slow=slow)
            if self._should_trip(now):
                self._trip(now)

    def snapshot(self, now: float) -> CircuitSnapshot:
        """The current state (window counts as of ``now``)."""
        with self._lock:
            self._advance(int(now // self._slot_width))
            calls, failures, slow = self._totals
            open_until = self._open_until if self._phase == "open" else None
            return CircuitSnapshot(self._phase, calls, failures, slow, self._trips, open_until)

    # -- internals (called with the lock held) ----------------------------------------------------------

    def _advance(self, slot: int) -> None:
        """Expire the buckets of the slices between the last recorded one and ``slot``."""
        last = self._last_slot
        if slot <= last:
            return
        totals = self._totals
        for expired in range(last + 1, min(slot, last + self.config.buckets) + 1):
            index = expired % self.config.buckets
            totals[0] -= self._calls[index]
            totals[1] -= self._failures[index]
            totals[2] -= self._slow[index]
            self._calls[index] = self._failures[index] = self._slow[index] = 0
        self._last_slot = slot

    def _count(self, now: float, *, failed: bool, slow: bool) -> None:
        slot = int(now // self._slot_width)
        self._advance(slot)
        index = slot % self.config.buckets
        totals = self._totals
        self._calls[index] += 1
        totals[0] += 1
        if failed:
            self._failures[index] += 1
            totals[1] += 1
        if slow:
            self._slow[index] += 1
            totals[2] += 1

    def _should_trip(self, now: float) -> bool:
        calls, failures, slow = self._totals
        if calls < self.config.min_calls:
            return False
        if failures >= self.config.failure_ratio * calls:
            return True
        return self.config.slow_call is not None and slow >= self.config.slow_ratio * calls

    def _trip(self, now: float) -> None:
        config = self.config
        duration = min(config.max_open_for, config.open_for * config.open_multiplier ** min(self._trips, 64))
        self._trips += 1
        self._phase = "open"
        self._open_until = now + duration
        self._probes_out.clear()

    def _close(self) -> None:
        self._phase = "closed"
        self._trips = 0
        buckets = self.config.buckets
        self._calls, self._failures, self._slow = [0] * buckets, [0] * buckets, [0] * buckets
        self._totals = [0, 0, 0]
        self._probes_out.clear()

    def __repr__(self) -> str:
        return f"<CircuitState {self._phase} trips={self._trips}>"
