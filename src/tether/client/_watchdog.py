"""Attempt timeouts for asyncio transports, on timers shared by attempts that end close together.

Why not ``asyncio.timeout`` or aiohttp's own ``ClientTimeout(total=...)``: each arms one event-loop timer per
request and cancels it when the response arrives, and asyncio keeps cancelled timers in its heap until they
would have fired. At thousands of requests per second with a 10 s timeout, that heap holds tens of thousands of
dead entries, and every request pays for pushing into it. Measured here against nginx on loopback at 32 in
flight, raw aiohttp served about 11 % more requests per CPU-second with no timeout than with its default one,
and ``asyncio.timeout`` around it cost slightly more than aiohttp's timer.

The :class:`Watchdog` instead sets each expiry :data:`GRACE` (50 ms) past the timeout, rounded up to a tick of
about 1 % of the timeout (at least 1 ms), and keeps one timer per tick: a 10 s timeout shares one timer with every
attempt started in the same 100 ms. An attempt therefore never ends *before* its timeout and at most 50 ms plus 1 %
(or 1 ms) after it. The grace lets a transport's own exact timer for a phase of the same length (aiohttp's connect
timeout, which starts a little after the attempt) fire first, so a connection that cannot be made is reported as
such. Arming and disarming are a set insertion and removal. When a tick's timer fires, the tasks still registered
on it are cancelled, and :meth:`Watchdog.disarm` tells the transport to turn that cancellation into its own
timeout error, exactly as ``asyncio.timeout`` would (a cancellation from anyone else still propagates).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["GRACE", "Alarm", "Watchdog", "expiry", "tick"]


GRACE = 0.05
"""Seconds an attempt is given past its timeout, for the transport's own timers to fire first."""


def tick(timeout: float) -> float:
    """The largest of 1 s, 100 ms, 10 ms and 1 ms that is at most 1 % of ``timeout`` (1 ms below 0.1 s)."""
    if timeout >= 10.0:
        return 1.0 if timeout >= 100.0 else 0.1
    return 0.01 if timeout >= 1.0 else 0.001


_ticks: dict[float, float] = {}  # tick() by timeout: attempts mostly share the policy's attempt timeout


def expiry(now: float, timeout: float) -> float:
    """When an attempt started at ``now`` with ``timeout`` is cut: :data:`GRACE` after, rounded up to a tick."""
    step = _ticks.get(timeout)
    if step is None:
        if len(_ticks) > 64:  # shrinking near-deadline timeouts are one-offs
            _ticks.clear()
        step = _ticks[timeout] = tick(timeout)
    return math.ceil((now + timeout + GRACE) / step) * step


class Alarm:
    """The tasks due to expire at one tick; ``fired`` once their time is up and they were cancelled."""

    __slots__ = ("fired", "tasks", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.tasks: set[asyncio.Task[Any]] = set()
        self.fired = False


class Watchdog:
    """Cancels tasks whose attempt outlived its timeout; one per event loop (a transport's session)."""

    __slots__ = ("_alarms", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._alarms: dict[float, Alarm] = {}

    def arm(self, task: asyncio.Task[Any], timeout: float) -> Alarm:
        """Register ``task`` to be cancelled ``timeout`` seconds from now (rounded up to its tick)."""
        when = expiry(self._loop.time(), timeout)
        alarm = self._alarms.get(when)
        if alarm is None:
            alarm = self._alarms[when] = Alarm(when)
            self._loop.call_at(when, self._fire, alarm)
        alarm.tasks.add(task)
        return alarm

    def _fire(self, alarm: Alarm) -> None:
        del self._alarms[alarm.when]
        alarm.fired = True
        for task in alarm.tasks:
            task.cancel()

    @staticmethod
    def disarm(alarm: Alarm, task: asyncio.Task[Any]) -> bool:
        """Unregister ``task``; whether its alarm had fired on it (the attempt timed out).

        When it had, the cancellation the watchdog requested is withdrawn (``Task.uncancel``); if someone
        else asked to cancel the task too, their cancellation stands and the caller must let it propagate.
        """
        if not alarm.fired or task not in alarm.tasks:
            alarm.tasks.discard(task)
            return False
        alarm.tasks.discard(task)
        task.uncancel()
        return True

    def __len__(self) -> int:
        """The number of pending alarms (timers armed on the loop)."""
        return len(self._alarms)
