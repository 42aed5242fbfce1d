"""Single-flight: identical concurrent calls share one execution (request coalescing).

The first call for a key (the *leader*) starts the work; calls for the same key that arrive while it runs
(*followers*) wait for its outcome instead of starting their own. Every caller gets the outcome: the value, or
the exception it raised. The key is the caller's business (tether uses :mod:`tether.cache._keys`: method, URL,
credential, every header, the body, and the call's policy).

:class:`AsyncSingleFlight` runs the work in a task of its own, which every caller, the leader included, awaits
through :func:`asyncio.shield`: cancelling a caller only stops its wait. The work is cancelled when its last
caller has gone, and a call arriving after that starts afresh; so a cancelled leader never leaves followers
hanging, and followers still get the result of the leader's request.

:class:`SyncSingleFlight` runs the work in the leader's thread while followers block on an event. If the leader
is interrupted by a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``), the
flight is abandoned and one of the followers runs the work again as the new leader. A failed flight raises a copy
of the leader's exception in each follower, carrying the leader's traceback: raising one object in many threads
would prepend every thread's frames to its one shared ``__traceback__`` (growing, and keeping those frames alive).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["AsyncSingleFlight", "SyncSingleFlight"]

T = TypeVar("T")


class _AsyncFlight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class AsyncSingleFlight(Generic[T]):
    """Coalesces concurrent asyncio calls by key (see the module documentation)."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[Hashable, _AsyncFlight[T]] = {}

    def __len__(self) -> int:
        """The number of keys with work in flight."""
        return len(self._flights)

    def waiting(self, key: Hashable) -> int:
        """How many calls wait for the work in flight for ``key`` (the leader included)."""
        flight = self._flights.get(key)
        return 0 if flight is None else flight.waiters

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``work()``'s outcome, shared with every concurrent call for ``key``; and whether this call led."""
        flight = self._flights.get(key)
        leader = flight is None
        if flight is None:
            flight = self._flights[key] = self._start(key, work)
        flight.waiters += 1
        try:
            result = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                self._finished(key, flight)  # a call arriving from now on starts afresh
                flight.task.cancel()
            raise
        flight.waiters -= 1
        return result, leader

    def _start(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> _AsyncFlight[T]:
        flight = _AsyncFlight(asyncio.ensure_future(work()))

        def done(task: asyncio.Task[T]) -> None:
            self._finished(key, flight)
            if not task.cancelled():
                task.exception()  # retrieved here too, in case every caller was cancelled as it failed

        flight.task.add_done_callback(done)
        return flight

    def _finished(self, key: Hashable, flight: _AsyncFlight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]


def _copy_error(error: Exception, traceback: TracebackType | None) -> Exception:
    """A copy of ``error`` (same type, arguments, attributes, cause) with ``traceback``, for one follower to raise.

    Built without calling ``__init__`` (tether's errors take keyword-only arguments); an exception that cannot be
    copied so is shared as it is.
    """
    cls = type(error)
    try:
        clone = cls.__new__(cls, *error.args)
        clone.__dict__.update(error.__dict__)
    except Exception:
        return error
    if isinstance(getattr(error, "__notes__", None), list):
        clone.__notes__ = list(error.__notes__)
    clone.__cause__ = error.__cause__
    clone.__context__ = error.__context__
    clone.__suppress_context__ = error.__suppress_context__
    return clone.with_traceback(traceback)


class _SyncFlight(Generic[T]):
    __slots__ = ("abandoned", "done", "error", "result", "traceback", "waiters")

    def __init__(self) -> None:
        self.waiters = 0
        self.done = threading.Event()
        self.result: T | None = None
        self.error: Exception | None = None
        self.traceback: TracebackType | None = None
        self.abandoned = False


class SyncSingleFlight(Generic[T]):
    """Coalesces concurrent calls from several threads by key (see the module documentation)."""

    __slots__ = ("_flights", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _SyncFlight[T]] = {}

    def __len__(self) -> int:
        """The number of keys with work in flight."""
        with self._lock:
            return len(self._flights)

    def waiting(self, key: Hashable) -> int:
        """How many calls wait for the work in flight for ``key`` (the leader not counted)."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.waiters

    def run(self, key: Hashable, work: Callable[[], T]) -> tuple[T, bool]:
        """``work()``'s outcome, shared with every concurrent call for ``key``; and whether this call led."""
        while True:
            with self._lock:
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _SyncFlight()
                else:
                    flight.waiters += 1
            if leader:
                return self._lead(key, flight, work), True
            flight.done.wait()
            if flight.abandoned:
                continue  # the leader was interrupted: race to lead a new flight
            if flight.error is not None:
                raise _copy_error(flight.error, flight.traceback)
            return flight.result, False  # type: ignore[return-value]

    def _lead(self, key: Hashable, flight: _SyncFlight[T], work: Callable[[], T]) -> T:
        try:
            flight.result = result = work()
        except Exception as error:
            flight.error = error
            flight.traceback = error.__traceback__  # the leader's, before its callers' frames join it
            raise
        except BaseException:
            flight.abandoned = True
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()
        return result
