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
  seconds after it was issued and counts as a failure. A caller that knows its probe ended without a verdict (its
  call was cancelled before the answer) gives the permit back with :meth:`CircuitState.release`: the probe slot
  frees at once and nothing is counted, since the cancellation is the caller's, not the provider's.

What a failure is belongs to the caller (:meth:`CircuitBreaker.is_failure` gives the default: transport errors,
timeouts and 5xx responses; a 4xx is the caller's mistake, not the provider's failure).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal

from tether.errors import ConfigurationError
from tether.policies._scope import SCOPES, Scope, scope_key

__all__ = ["CLOSED_ADMISSION", "Admitted", "CircuitBreaker", "CircuitSnapshot", "CircuitState", "Refused"]

Phase = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    """When a circuit opens and how it recovers; see the module docstring.

    ``slow_call`` (seconds) enables the slow-call rule; ``None`` disables it. ``scope`` says what one circuit
    covers: a ``host`` (scheme, host and port; the default), an ``endpoint`` (method and URL path), or the whole
    ``client`` (one provider).
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
    scope: Scope = "host"

    def __post_init__(self) -> None:
        if not isinstance(self.failure_statuses, frozenset):  # hashable: settings find their states by value
            object.__setattr__(self, "failure_statuses", frozenset(self.failure_statuses))
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
        if self.scope not in SCOPES:
            problems.append("scope 'host', 'endpoint' or 'client'")
        if problems:
            raise ConfigurationError(f"CircuitBreaker needs {'; '.join(problems)}; got {self!r}")

    def key(self, method: str, url: str) -> str:
        """The circuit a call to ``method url`` belongs to, per ``scope``."""
        return scope_key(self.scope, method, url)

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


CLOSED_ADMISSION = Admitted(probe=False, issued=-math.inf)
"""What :meth:`CircuitState.acquire` returns for every call while the circuit is closed (one shared object)."""


class CircuitState:
    """The state machine of the circuit ``key`` (thread-safe; pure apart from its own state: callers pass ``now``)."""

    __slots__ = (
        "_buckets",
        "_calls",
        "_failure_ratio",
        "_failures",
        "_last_slot",
        "_lock",
        "_min_calls",
        "_open_until",
        "_probes_out",
        "_slot_width",
        "_slow",
        "_slow_call",
        "_slow_ratio",
        "_trips",
        "config",
        "key",
        "phase",
    )

    def __init__(self, config: CircuitBreaker, key: str = "") -> None:
        self.config = config
        self.key = key
        # ``closed``, ``open`` or ``half_open``; a plain attribute, since callers read it on every call (only this
        # class writes it, under the lock)
        self.phase: Phase = "closed"
        self._lock = threading.Lock()
        self._slot_width = config.window / config.buckets
        # the settings record() reads on every call, flattened
        self._buckets = config.buckets
        self._min_calls = config.min_calls
        self._failure_ratio = config.failure_ratio
        self._slow_call = math.inf if config.slow_call is None else config.slow_call
        self._slow_ratio = config.slow_ratio if config.slow_call is not None else math.inf
        # per time slice (bucket slot % buckets): calls, failures, slow calls; a bucket is emptied when its slice
        # leaves the window, so the sums over all buckets are the window's counts
        self._calls = [0] * config.buckets
        self._failures = [0] * config.buckets
        self._slow = [0] * config.buckets
        self._last_slot = 0
        self._trips = 0
        self._open_until = -math.inf
        self._probes_out: list[float] = []  # issue times of the probes not yet reported

    def acquire(self, now: float) -> Admitted | Refused:
        """May a call start now? A half-open circuit admits at most ``probes`` at a time."""
        if self.phase == "closed":  # the hot path, read without the lock: a stale read only admits one more call
            return CLOSED_ADMISSION
        with self._lock:
            return self._acquire_locked(now)

    def _acquire_locked(self, now: float) -> Admitted | Refused:
        if self.phase == "closed":  # closed again since the caller looked
            return CLOSED_ADMISSION
        if self.phase == "open":
            if now < self._open_until:
                return Refused(self._open_until)
            self.phase = "half_open"
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

    def refusal(self, now: float) -> Refused | None:
        """The refusal :meth:`acquire` would answer at ``now`` because the circuit is open; no permit is taken.

        ``None`` unless the circuit is open and not yet due to let a probe through. A caller asks it before
        waiting for something else (a bulkhead slot), so that an open circuit fails the call at once.
        """
        if self.phase != "open":  # read without the lock, as acquire does: acquire still decides
            return None
        open_until = self._open_until
        return Refused(open_until) if now < open_until else None

    def release(self, permit: Admitted) -> None:
        """Give back ``permit`` without a verdict: its call ended before an answer (it was cancelled).

        A probe's slot frees at once for another call to probe, instead of lapsing after ``probe_timeout`` and
        counting as a failure; nothing is counted in the window. A permit of a closed circuit needs no release.
        """
        if not permit.probe:
            return
        with self._lock:
            if self.phase == "half_open" and permit.issued in self._probes_out:
                self._probes_out.remove(permit.issued)

    def record(self, permit: Admitted, now: float, failed: bool, duration: float) -> bool:
        """Report how an admitted call ended; whether that changed the phase.

        ``failed`` follows the caller's rule (:meth:`CircuitBreaker.is_failure`); ``duration`` is in seconds.
        The trip rule is evaluated when a failure (or slow call) is recorded: a success never opens a circuit.
        """
        slow = duration >= self._slow_call
        if permit.probe:
            return self._record_probe(permit, now, failed or slow)
        slot = int(now // self._slot_width)
        if slot > self._last_slot:
            with self._lock:
                self._advance(slot)
        if not (failed or slow):
            # on every call's path, without the lock: a race can lose a success, never invent a failure
            self._calls[slot % self._buckets] += 1
            return False
        with self._lock:
            if self.phase != "closed":
                return False  # a call admitted before the circuit opened: the decision is already made
            index = slot % self._buckets
            self._calls[index] += 1
            self._failures[index] += failed
            self._slow[index] += slow
            calls = sum(self._calls)
            if calls < self._min_calls:
                return False
            if sum(self._failures) >= self._failure_ratio * calls or sum(self._slow) >= self._slow_ratio * calls:
                self._trip(now)
                return True
            return False

    def _record_probe(self, permit: Admitted, now: float, failed: bool) -> bool:
        with self._lock:
            if permit.issued not in self._probes_out or self.phase != "half_open":
                return False  # a lapsed probe, already counted as a failure
            self._probes_out.remove(permit.issued)
            if failed:
                self._trip(now)
                return True
            if not self._probes_out:
                self._close()
                return True
            return False

    def snapshot(self, now: float) -> CircuitSnapshot:
        """The current state (window counts as of ``now``)."""
        with self._lock:
            self._advance(int(now // self._slot_width))
            calls, failures, slow = sum(self._calls), sum(self._failures), sum(self._slow)
            open_until = self._open_until if self.phase == "open" else None
            return CircuitSnapshot(self.phase, calls, failures, slow, self._trips, open_until)

    # -- internals (called with the lock held) ----------------------------------------------------------

    def _advance(self, slot: int) -> None:
        """Empty the buckets of the slices between the last recorded one and ``slot``: they left the window."""
        last = self._last_slot
        if slot <= last:
            return
        for expired in range(last + 1, min(slot, last + self._buckets) + 1):
            index = expired % self._buckets
            self._calls[index] = self._failures[index] = self._slow[index] = 0
        self._last_slot = slot

    def _trip(self, now: float) -> None:
        config = self.config
        duration = min(config.max_open_for, config.open_for * config.open_multiplier ** min(self._trips, 64))
        self._trips += 1
        self.phase = "open"
        self._open_until = now + duration
        self._probes_out.clear()

    def _close(self) -> None:
        self.phase = "closed"
        self._trips = 0
        buckets = self.config.buckets
        self._calls, self._failures, self._slow = [0] * buckets, [0] * buckets, [0] * buckets
        self._probes_out.clear()

    def __repr__(self) -> str:
        return f"<CircuitState {self.key!r} {self.phase} trips={self._trips}>"
