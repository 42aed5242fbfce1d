"""Rate limiting: declared quotas and pacing learned from the provider, as a pure state machine.

A :class:`RateLimit` is one quota ("10 per second", "1000 per hour", with a burst); :class:`Limiter` is the state
of one key (a host by default) under several quotas at once. It implements GCRA, the generic cell rate algorithm:
for each quota it keeps a *theoretical arrival time* (TAT), advanced by the emission interval ``per / rate`` for
every call, and a call may go once ``TAT - burst tolerance`` has passed. A token bucket allows the same traffic;
GCRA needs one number per quota and no refill arithmetic.

:meth:`Limiter.reserve` answers "how long must this call wait?" and books the call's slot in every quota only if
the caller accepts that wait (``max_wait``): a call that would wait past its deadline takes nothing, so refusing it
costs the others nothing. :meth:`Limiter.learn` adds what the provider announced (see
:mod:`tether.policies.quota_headers`): ``remaining`` calls until a reset are spread evenly up to it. Callers pass
``now`` (monotonic seconds); nothing here sleeps.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from tether.errors import ConfigurationError

__all__ = ["Limiter", "RateLimit"]

_NEGLIGIBLE = 1e-6


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

    __slots__ = (
        "_intervals",
        "_learned_interval",
        "_learned_remaining",
        "_learned_tat",
        "_learned_until",
        "_lock",
        "_tats",
        "_tighten",
        "_tightened",
        "_tolerances",
        "key",
        "limits",
    )

    def __init__(self, limits: tuple[RateLimit, ...], key: str = "") -> None:
        self.limits = limits
        self.key = key
        self._intervals = [limit.interval for limit in limits]
        self._tolerances = [limit.tolerance for limit in limits]
        self._tats = [-math.inf] * len(limits)
        self._lock = threading.Lock()
        # pacing learned from the provider (learn()): calls spaced by _learned_interval until _learned_until
        self._learned_interval = 0.0
        self._learned_tat = -math.inf
        self._learned_until = -math.inf
        self._learned_remaining = 0
        self._tighten = True  # until the provider shows that it rounds its resets down (see learn())
        self._tightened = False  # whether the current window's reset was moved earlier than announced

    def learn(self, now: float, remaining: int, reset_after: float, *, window: bool = False) -> None:
        """The provider says ``remaining`` calls are allowed over the next ``reset_after`` seconds.

        They are spread evenly over that time (none before it, when ``remaining`` is 0), instead of being spent at
        once, which would leave the client stalled until the reset. A stop (``remaining`` 0, e.g. ``Retry-After``
        on a 429) is taken as said.

        ``window``: the announcement is a fixed window's, with the reset in whole seconds (``RateLimit``,
        ``X-RateLimit-*``). Most providers round it up, so one response places the reset up to a second late (with a
        2 s window, pacing by it alone used 70-93 % of the quota in ``bench/ratelimit_goodput.py``). Each response of
        the same window (``remaining`` not going up, the reset not yet passed) then bounds it anew, since the client
        reads it after the server counted, and the earliest bound is kept, which converges on the true reset. A
        provider that rounds down makes that bound early; it shows as a response after the bound that still belongs
        to the old window, or a stop (429) there, and from then on this limiter keeps each announced reset as said:
        such a provider costs at most that one early call.
        """
        with self._lock:
            if reset_after <= 0:
                self._learned_until = -math.inf
                return
            until = now + reset_after
            same_window = 0 < remaining <= self._learned_remaining
            refused = remaining <= 0 and not window  # a stop the provider imposed (Retry-After on a 429)
            if self._tightened and (refused or (same_window and now >= self._learned_until)):
                self._tighten = False  # the window outlasted the earliest bound: this provider rounds down
            if window and self._tighten and same_window and now < self._learned_until:
                self._tightened = self._tightened or self._learned_until < until
                until = min(until, self._learned_until)  # the same window: keep the tightest bound
            elif not same_window or not self._tighten:
                self._tightened = False
            self._learned_until = until
            self._learned_remaining = remaining
            if remaining <= 0:
                self._learned_interval = 0.0
                self._learned_tat = max(self._learned_tat, until)
            else:
                self._learned_interval = (until - now) / remaining

    @property
    def learned_reset(self) -> float | None:
        """When the provider's current window ends, as learned from its responses (``None``: nothing learned)."""
        return None if self._learned_until == -math.inf else self._learned_until

    def reserve(self, now: float, max_wait: float = math.inf) -> float:
        """The wait before a call may go (0: at once), in seconds.

        The call's slot is booked when that wait is at most ``max_wait``; otherwise nothing is booked and the
        (longer) wait is returned, for the caller to refuse the call.
        """
        learning = now < self._learned_until or now < self._learned_tat
        if not self.limits and not learning:  # nothing declared, nothing learned: the common case, lock-free
            return 0.0
        with self._lock:
            tats = self._tats
            wait = max(0.0, self._learned_tat - now) if learning else 0.0
            for tat, tolerance in zip(tats, self._tolerances, strict=True):
                ready = tat - tolerance - now
                wait = max(wait, ready)
            if wait < _NEGLIGIBLE:  # float dust from adding up intervals is not a wait
                wait = 0.0
            if wait > max_wait:
                return wait
            start = now + wait
            for index, interval in enumerate(self._intervals):
                tats[index] = max(tats[index], start) + interval
            if start < self._learned_until:
                self._learned_tat = max(self._learned_tat, start) + self._learned_interval
            return wait

    def __repr__(self) -> str:
        return f"<Limiter {self.key!r} {list(self.limits)}>"
