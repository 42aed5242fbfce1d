"""Bulkhead: at most so many requests in flight per key, the rest queued in a bounded line, first come first served.

:class:`Bulkhead` is the immutable setting; :class:`Compartment` is the state of one key (a host by default). A
slot is held for one attempt: from the call's turn until its request is answered, never while a call sleeps between
retries, so a slow backoff does not starve other calls. The call flow takes its turn *first* and only then books
its rate-limit permit, holding the slot through the pacing wait the limiter asks for: booked before the turn, the
permits of calls that waited in line together would all be due by the time the line let them go, and they would
leave back to back, closer than the declared rate allows. (Leaving the slot for the pacing wait and queueing again
would need a second booking after the second turn, for the same reason.) An open circuit fails a call before it
queues (see :mod:`tether.client._flow`).

:meth:`Compartment.enter` never blocks: it admits the caller (``True``), refuses it because the line is full
(``False``), or puts it in line and returns its :class:`Ticket`. Waiting for a ticket is the shell's job (an
asyncio future or a threading event, see :mod:`tether.client._drive`): it :meth:`arms <Ticket.arm>` the ticket with
a wake-up callback, which :meth:`Compartment.leave` calls when it hands the freed slot over, directly to the first
ticket in line. A caller that stops waiting (its time is up, or it was cancelled) calls :meth:`Compartment.withdraw`,
which says whether the slot had been handed over meanwhile; then the caller holds it and must ``leave`` in turn.
Thread-safe: the sync client's threads share a compartment.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tether.errors import ConfigurationError
from tether.policies._scope import SCOPES, Scope, scope_key

__all__ = ["Bulkhead", "BulkheadSnapshot", "Compartment", "Ticket"]


@dataclass(frozen=True, slots=True)
class Bulkhead:
    """At most ``max_concurrent`` requests in flight per key; up to ``max_queue`` more wait in line.

    A call that finds the line full fails at once with ``BulkheadFull``; one that waits longer than ``max_wait``
    seconds (``None``: as long as its deadline allows) fails with ``BulkheadFull`` too, or with
    ``DeadlineExceeded`` if its deadline ran out first. ``scope``: what one compartment covers, each ``host`` (the
    default), ``endpoint`` or the whole ``client``.
    """

    max_concurrent: int
    max_queue: int = 100
    max_wait: float | None = None
    scope: Scope = "host"

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_concurrent, bool)
            or not isinstance(self.max_concurrent, int)
            or self.max_concurrent < 1
            or isinstance(self.max_queue, bool)
            or not isinstance(self.max_queue, int)
            or self.max_queue < 0
            or (self.max_wait is not None and not self.max_wait > 0)
            or self.scope not in SCOPES
        ):
            raise ConfigurationError(
                "Bulkhead needs an int max_concurrent >= 1, an int max_queue >= 0, max_wait > 0 or None and scope "
                f"'host', 'endpoint' or 'client'; got {self!r}"
            )

    def key(self, method: str, url: str) -> str:
        """The compartment a call to ``method url`` belongs to, per ``scope``."""
        return scope_key(self.scope, method, url)


@dataclass(frozen=True, slots=True)
class BulkheadSnapshot:
    """A compartment's state for diagnostics and health checks: requests in flight and calls waiting in line."""

    active: int
    queued: int
    max_concurrent: int
    max_queue: int


class Ticket:
    """A place in a compartment's line; ``granted`` once a slot has been handed to it."""

    __slots__ = ("_lock", "_wake", "granted")

    def __init__(self, lock: threading.Lock) -> None:
        self.granted = False
        self._lock = lock  # the compartment's
        self._wake: Callable[[], object] | None = None

    def arm(self, wake: Callable[[], object]) -> None:
        """Call ``wake()`` when the slot is handed over (at once if it already has been)."""
        with self._lock:
            self._wake = wake
            granted = self.granted
        if granted:
            wake()


class Compartment:
    """The slots and the line of one key under a :class:`Bulkhead` setting."""

    __slots__ = ("_line", "active", "config", "key", "lock")

    def __init__(self, config: Bulkhead, key: str = "") -> None:
        self.config = config
        self.key = key
        self.active = 0
        self._line: deque[Ticket] = deque()
        self.lock = threading.Lock()

    @property
    def queued(self) -> int:
        """How many calls wait in line."""
        return len(self._line)

    @property
    def full(self) -> bool:
        """Whether a call entering now would wait in line or be refused (read without the lock: a hint)."""
        return self.active >= self.config.max_concurrent or bool(self._line)

    def enter(self) -> bool | Ticket:
        """Take a slot (``True``), find the line full (``False``), or queue up (the :class:`Ticket` to wait on)."""
        with self.lock:
            if self.active < self.config.max_concurrent and not self._line:
                self.active += 1
                return True
            if len(self._line) >= self.config.max_queue:
                return False
            ticket = Ticket(self.lock)
            self._line.append(ticket)
            return ticket

    def leave(self) -> None:
        """Give a slot back: straight to the first ticket in line, if any, else free it."""
        with self.lock:
            if not self._line:
                self.active -= 1
                return
            ticket = self._line.popleft()
            ticket.granted = True  # the slot passes over: active is unchanged
            wake = ticket._wake
        if wake is not None:
            wake()

    def withdraw(self, ticket: Ticket) -> bool:
        """Stop waiting on ``ticket``; ``True`` if its slot was handed over meanwhile (the caller now holds it)."""
        with self.lock:
            if ticket.granted:
                return True
            self._line.remove(ticket)
            return False

    def snapshot(self) -> BulkheadSnapshot:
        """The compartment's state now."""
        with self.lock:
            return BulkheadSnapshot(self.active, len(self._line), self.config.max_concurrent, self.config.max_queue)

    def __repr__(self) -> str:
        limit = self.config.max_concurrent
        return f"Compartment(key={self.key!r}, active={self.active}/{limit}, queued={len(self._line)})"
