"""Time, injected.

Every component that reads the clock takes a :class:`Clock`, so tests never depend on wall time. A clock
answers two questions — a monotonic reading for durations and deadlines, and the wall-clock time for
absolute dates sent by servers (``Retry-After`` as an HTTP-date, epoch reset headers) — and performs the
one blocking action the shells need: sleeping. :class:`tether.testing.FakeClock` implements the same
protocol and jumps instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What tether needs from a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch (wall-clock time)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, :func:`time.sleep`, :func:`asyncio.sleep`."""

    __slots__ = ()

    # The builtins themselves, not wrappers: the call pipeline reads the clock on every call.
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    def sleep(self, seconds: float) -> None:
        """Block with :func:`time.sleep`."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Suspend with :func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
