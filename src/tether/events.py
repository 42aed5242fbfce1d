"""Typed events the call pipeline emits, and the hook protocol that receives them.

A hook is any callable taking one event. Logging is one such hook (installed by default, see
:mod:`tether._logging`); metrics and tracing will be others. Events are frozen and carry only redacted
data: ``url`` is already stripped of secrets, and no headers or bodies are included.

Names follow ``thing.started / .completed / .failed``:

==================== ===================================================================
``attempt.started``  an attempt is about to be sent (:class:`AttemptStarted`)
``retry.scheduled``  an attempt failed and will be repeated after a wait (:class:`RetryScheduled`)
``retry.suppressed`` a retry was refused by the retry budget (:class:`RetrySuppressed`)
``call.completed``   the call returned a response (:class:`CallCompleted`)
``call.failed``      the call gave up and raises ``error`` (:class:`GaveUp`)
``connection.needs_reauth`` a stored OAuth connection's grant is confirmed dead (:class:`ConnectionNeedsReauth`)
==================== ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

__all__ = [
    "AttemptStarted",
    "CallCompleted",
    "CircuitChanged",
    "ConnectionNeedsReauth",
    "Event",
    "GaveUp",
    "Hook",
    "RetryScheduled",
    "RetrySuppressed",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Common fields: the call's ``method``, redacted ``url`` and the ``attempt`` number (1-based)."""

    name: ClassVar[str] = "event"
    method: str
    url: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """An attempt is about to be sent with ``timeout`` seconds (``None``: unbounded)."""

    name: ClassVar[str] = "attempt.started"
    timeout: float | None


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed with ``reason``; the next starts after ``delay`` seconds."""

    name: ClassVar[str] = "retry.scheduled"
    delay: float
    reason: str
    server_asked: bool


@dataclass(frozen=True, slots=True)
class RetrySuppressed(Event):
    """Attempt ``attempt`` failed with ``reason`` and would have been retried, but the budget said no."""

    name: ClassVar[str] = "retry.suppressed"
    reason: str


@dataclass(frozen=True, slots=True)
class CallCompleted(Event):
    """The call ended with a ``status`` response after ``attempt`` attempts and ``elapsed`` seconds."""

    name: ClassVar[str] = "call.completed"
    status: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class GaveUp(Event):
    """The call failed after ``attempt`` attempts and ``elapsed`` seconds; ``error`` is what it raises."""

    name: ClassVar[str] = "call.failed"
    elapsed: float
    error: BaseException


@dataclass(frozen=True, slots=True)
class CircuitChanged(Event):
    """The circuit ``key`` went to ``phase`` (``open``, ``half_open`` or ``closed``) during this call's attempt."""

    name: ClassVar[str] = "circuit.changed"
    key: str
    phase: str


@dataclass(frozen=True, slots=True)
class ConnectionNeedsReauth(Event):
    """Connection ``connection_id`` of ``integration`` was marked ``needs_reauth``: ``reason`` says why.

    ``method`` and ``url`` are the refresh request's (the token endpoint, redacted). A person must connect again.
    """

    name: ClassVar[str] = "connection.needs_reauth"
    integration: str
    connection_id: str
    reason: str


class Hook(Protocol):
    """Receives every event of a client's calls. It must be quick and must not raise."""

    def __call__(self, event: Event, /) -> None:
        """Handle ``event``."""
        ...
