"""Rate limiting: declared quotas, as a pure state machine.

A :class:`RateLimit` is one quota ("10 per second", "1000 per hour", with a burst); :class:`Limiter` is the state
of one key (a host by default) under several quotas at once. It implements GCRA, the generic cell rate algorithm:
for each quota it keeps a *theoretical arrival time* (TAT), advanced by the emission interval ``per / rate`` for
every call, and a call may go once ``TAT - burst tolerance`` has passed. A token bucket allows the same traffic;
GCRA needs one number per quota and no refill arithmetic.

:meth:`Limiter.reserve` answers "how long must this call wait?" and books the call's slot in every quota only if
the caller accepts that wait (``max_wait``): a call that would wait past its deadline takes nothing, so refusing it
costs the others nothing. Callers pass ``now`` (monotonic seconds); nothing here sleeps.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from tether.errors import ConfigurationError

__all__ = ["Limiter", "RateLimit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``rate`` calls per ``per`` seconds, ``burst`` of them back to back (default: ``rate``)."""

    rate: int
    per: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        burst = self.rate if self.burst is None else self.burst
        if self.rate < 1 or not self.per > 0 or burst < 1:
            raise ConfigurationError(f"RateLimit needs rate >= 1, per > 0 and burst >= 1; got {self!r}")

    @property
    def interval(self) -> float:
        """Seconds between calls at the sustained rate."""
        return self.per / self.rate

    @property
    def tolerance(self) -> float:
        """How far ahead of the sustained rate a burst may run, in seconds."""
        return self.interval * ((self.rate if self.burst is None else self.burst) - 1)


class Limiter:
    """The GCRA state of one key under ``limits`` (thread-safe; pure apart from its own state)."""

    __slots__ = ("_intervals", "_lock", "_tats", "_tolerances", "key", "limits")

    def __init__(self, limits: tuple[RateLimit, ...], key: str = "") -> None:
        self.limits = limits
        self.key = key
        self._intervals = [limit.interval for limit in limits]
        self._tolerances = [limit.tolerance for limit in limits]
        self._tats = [-math.inf] * len(limits)
        self._lock = threading.Lock()

    def reserve(self, now: float, max_wait: float = math.inf) -> float:
        """The wait before a call may go (0: at once), in seconds.

        The call's slot is booked when that wait is at most ``max_wait``; otherwise nothing is booked and the
        (longer) wait is returned, for the caller to refuse the call.
        """
        with self._lock:
            tats = self._tats
            wait = 0.0
            for tat, tolerance in zip(tats, self._tolerances, strict=True):
                ready = tat - tolerance - now
                wait = max(wait, ready)
            if wait > max_wait:
                return wait
            start = now + wait
            for index, interval in enumerate(self._intervals):
                tats[index] = max(tats[index], start) + interval
            return wait

    def __repr__(self) -> str:
        return f"<Limiter {self.key!r} {list(self.limits)}>"
