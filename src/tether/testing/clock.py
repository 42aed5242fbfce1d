"""A fake clock for tests: time stands still until you (or a sleep) move it.

``FakeClock`` implements :class:`tether.Clock`. Sleeping advances it instantly and records the delay, so a
client built with ``clock=FakeClock()`` runs its whole retry schedule without waiting — the "test mode that
turns waits off" — while deadlines, backoff and ``Retry-After`` are still computed exactly.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that moves only when told: ``advance(seconds)``, or a ``sleep``/``asleep`` call.

    ``monotonic()`` starts at ``start``; ``time()`` is ``wall_start + `` the same offset. ``sleeps`` lists every
    delay slept, in order.
    """

    def __init__(self, start: float = 1_000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._offset = 0.0
        self._start = start
        self._wall_start = wall_start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic reading."""
        return self._start + self._offset

    def time(self) -> float:
        """The fake wall-clock time (seconds since the epoch)."""
        return self._wall_start + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and jump ahead instead of blocking."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        """Record the sleep and jump ahead; yields to the event loop once, as a real sleep would."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self.monotonic():.3f})"
