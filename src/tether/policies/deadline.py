"""Deadline: one total time budget for a call, covering every attempt and every wait.

States: running (``remaining > 0``) → expired. Each attempt's timeout is
``min(attempt_timeout, remaining)``, and no wait may end at or past the deadline, so a call never outlives
its budget by more than the shell's scheduling latency. Pure: every method takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """A call's deadline: started at ``started_at``, expires at ``expires_at`` (``inf`` for none)."""

    started_at: float
    expires_at: float

    @classmethod
    def start(cls, now: float, total: float | None) -> Deadline:
        """A deadline ``total`` seconds after ``now`` (``None``: no deadline)."""
        return cls(now, math.inf if total is None else now + total)

    def remaining(self, now: float) -> float:
        """Seconds left (never negative; ``inf`` without a deadline)."""
        return max(0.0, self.expires_at - now)

    def expired(self, now: float) -> bool:
        """Whether no time is left."""
        return now >= self.expires_at

    def attempt_timeout(self, now: float, per_attempt: float | None) -> float | None:
        """The timeout for an attempt starting at ``now``: ``min(per_attempt, remaining)``; ``None`` if unbounded."""
        remaining = self.expires_at - now
        if per_attempt is None:
            return None if remaining == math.inf else max(0.0, remaining)
        return max(0.0, min(per_attempt, remaining))

    def allows_wait(self, now: float, seconds: float) -> bool:
        """Whether waiting ``seconds`` from ``now`` still leaves time for another attempt."""
        return now + seconds < self.expires_at

    def elapsed(self, now: float) -> float:
        """Seconds since the call started."""
        return now - self.started_at
