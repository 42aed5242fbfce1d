"""Signals an auth flow waits on (:class:`tether.auth.WaitFor`), and the single-flight gate built from them.

A :class:`RefreshGate` lets one caller at a time do a piece of work (a token refresh) while the others wait for
it: :meth:`RefreshGate.join` makes the first caller the leader (``None``) and hands every later one the
:class:`FiredSignal` the leader fires in :meth:`RefreshGate.finish`. It works across coroutines and threads
alike: the client's driver waits on a signal with an asyncio future or a ``threading.Event``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["NEVER", "FiredSignal", "RefreshGate"]


class FiredSignal:
    """Fires once; wakes everyone armed before or after."""

    __slots__ = ("_fired", "_lock", "_wakes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fired = False
        self._wakes: list[Callable[[], object]] = []

    def arm(self, wake: Callable[[], object]) -> None:
        """Call ``wake()`` when fired (at once if already fired)."""
        with self._lock:
            if not self._fired:
                self._wakes.append(wake)
                return
        wake()

    def fire(self) -> None:
        """Wake every waiter."""
        with self._lock:
            self._fired = True
            wakes, self._wakes = self._wakes, []
        for wake in wakes:
            wake()


class _Never:
    """A signal that never fires: waiting on it is a pause of the wait's timeout (polling another process)."""

    __slots__ = ()

    def arm(self, wake: Callable[[], object]) -> None:
        """Never call ``wake``."""


NEVER = _Never()


class RefreshGate:
    """One leader at a time; the rest wait for the leader's signal."""

    __slots__ = ("_current", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: FiredSignal | None = None

    def join(self) -> FiredSignal | None:
        """``None``: you lead, call :meth:`finish` when done. Otherwise the signal to wait on, then re-check."""
        with self._lock:
            if self._current is None:
                self._current = FiredSignal()
                return None
            return self._current

    def finish(self) -> None:
        """End the leader's turn and wake the waiters."""
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            current.fire()
