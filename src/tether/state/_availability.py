"""Whether the shared state answers, and what to do while it does not: pure bookkeeping, no I/O.

A shell asks :meth:`Availability.should_try` before each command and reports how it went. The first failure
starts an *outage*: one WARNING names it (never one per call), and for ``retry_interval`` seconds commands do not
even try Redis, so a dead or hanging server costs the calls nothing; then one command at a time tries again.
The outage ends (one INFO line) when a command sent after its latest failure succeeds: an answer to a command
sent earlier says nothing about the server now, so a slow or overloaded Redis does not flap between outages.
Meanwhile :meth:`Availability.fall_back` answers:

- ``on_unavailable="open"`` (the default): from the process's own in-memory state, counting each answer in
  ``fallbacks``. Quotas and circuits are then per process, as if there were no Redis.
- ``on_unavailable="closed"``: by raising :class:`~tether.state.SharedStateUnavailable`.

Times are the callers' ``now`` (monotonic seconds); messages name the server without credentials and carry the
failure redacted.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Literal, TypeVar

from tether._redaction import describe_exception
from tether.errors import ConfigurationError, SharedStateUnavailable
from tether.state._commands import Command

__all__ = ["Availability", "OnUnavailable", "SharedStateStats", "logger"]

OnUnavailable = Literal["open", "closed"]

T = TypeVar("T")

logger = logging.getLogger("tether.state")


@dataclass(frozen=True, slots=True)
class SharedStateStats:
    """Counters of a shared backend, for metrics and health checks.

    ``available``: no outage is going on. ``outages``: outages begun; ``failures``: commands that failed (a
    timeout, a refused connection, an error reply); ``fallbacks``: answers given from local state instead.
    """

    available: bool
    outages: int
    failures: int
    fallbacks: int


class Availability:
    """The outage state of one shared backend (thread-safe; pure apart from its own state)."""

    __slots__ = (
        "_down_since",
        "_failed_at",
        "_failures",
        "_fallbacks",
        "_last_error",
        "_lock",
        "_outages",
        "_retry_at",
        "on_unavailable",
        "retry_interval",
        "where",
    )

    def __init__(self, on_unavailable: OnUnavailable, retry_interval: float, where: str) -> None:
        if on_unavailable not in ("open", "closed"):
            raise ConfigurationError(f"on_unavailable must be 'open' or 'closed', got {on_unavailable!r}")
        if not 0 <= retry_interval < math.inf:
            raise ConfigurationError(f"retry_interval must be a number of seconds >= 0, got {retry_interval!r}")
        self.on_unavailable: OnUnavailable = on_unavailable
        self.retry_interval = retry_interval
        self.where = where
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._failed_at = -math.inf  # when the latest failed command was sent
        self._retry_at = -math.inf
        self._last_error = ""
        self._outages = 0
        self._failures = 0
        self._fallbacks = 0

    def should_try(self, now: float) -> bool:
        """Whether a command at ``now`` should go to Redis: always, except during an outage between retries."""
        if self._down_since is None:
            return True
        with self._lock:
            if self._down_since is None:
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_interval  # this command is the retry; the others keep falling back
            return True

    def failed(self, now: float, error: BaseException) -> None:
        """A command started at ``now`` failed with ``error``; the first failure of an outage is logged."""
        described = describe_exception(error)
        with self._lock:
            self._failures += 1
            self._failed_at = max(self._failed_at, now)
            self._retry_at = now + self.retry_interval
            self._last_error = described
            starts = self._down_since is None
            if starts:
                self._down_since = now
                self._outages += 1
        if starts:
            consequence = (
                "each process uses its own limiter, budget and circuit state"
                if self.on_unavailable == "open"
                else "calls fail with SharedStateUnavailable"
            )
            logger.warning(
                "shared state at %s is unavailable (%s); %s until it answers again (retrying every %g s)",
                self.where,
                described,
                consequence,
                self.retry_interval,
            )

    def succeeded(self, started: float) -> None:
        """A command sent at ``started`` got its answer; that ends an outage if no command sent since failed."""
        if self._down_since is None:
            return
        with self._lock:
            down_since = self._down_since
            if down_since is None or started < self._failed_at:
                return  # sent before the latest failure: it says nothing about the server now
            self._down_since = None
            self._retry_at = -math.inf
        logger.info("shared state at %s answers again after %.1f s unavailable", self.where, started - down_since)

    def fall_back(self, command: Command[T]) -> T:
        """The answer to ``command`` without Redis: from local state, or ``SharedStateUnavailable``."""
        if self.on_unavailable == "closed":
            raise SharedStateUnavailable(
                f"shared state at {self.where} is unavailable ({self._last_error}); "
                f"the {command.script.name.replace('_', ' ')} decision could not be made"
            )
        with self._lock:
            self._fallbacks += 1
        return command.local()

    def stats(self) -> SharedStateStats:
        """The counters so far."""
        with self._lock:
            return SharedStateStats(self._down_since is None, self._outages, self._failures, self._fallbacks)

    def __repr__(self) -> str:
        return f"<Availability {self.where} {self.stats()}>"
