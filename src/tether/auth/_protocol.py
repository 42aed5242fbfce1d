"""The auth protocol: how credentials join a call.

An auth is a *flow*, like the call pipeline itself: ``auth_flow(request)`` is a generator that yields the
request to send (credentials attached) and receives the final response to it. It may then yield another
request — a token refresh, or the original request again with a fresh token — or return to finish. This
one shape serves a static header and refresh-on-401 alike, and the client drives it for async and sync
calls without knowing which. A response it receives has passed through the whole retry pipeline.

A flow that must wait for something outside the call — another coroutine's or thread's token refresh, or
another process's — yields :class:`WaitFor` instead of a request: the client's driver waits (asyncio or
blocking) until the signal fires or the timeout passes, then resumes the flow with ``next()`` (the ``yield``
evaluates to ``None``; the flow re-checks whatever it waited for).

Static credentials subclass :class:`StaticAuth` and implement ``apply`` only; the client then skips the
generator on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether._models import Request, Response

__all__ = ["Auth", "Signal", "StaticAuth", "WaitFor"]


class Signal(Protocol):
    """Something a flow can wait for: it calls ``wake()`` once it fires (at once if it already has), from any thread."""

    def arm(self, wake: Callable[[], object]) -> None:
        """Call ``wake()`` when the signal fires."""
        ...


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Yielded by an auth flow: pause until ``signal`` fires, at most ``timeout`` seconds (``None``: no limit)."""

    signal: Signal
    timeout: float | None


@runtime_checkable
class Auth(Protocol):
    """Attaches credentials to requests; may resend after seeing a response (e.g. refresh on 401)."""

    def auth_flow(self, request: Request) -> Generator[Request | WaitFor, Response, None]:
        """Yield requests to send (or :class:`WaitFor` pauses); receive each request's response; return when done."""
        ...


class StaticAuth:
    """Credentials that never change during a call: subclasses implement :meth:`apply`."""

    __slots__ = ()

    def apply(self, request: Request) -> Request:
        """Return ``request`` with the credentials attached."""
        raise NotImplementedError

    def fixed_headers(self) -> tuple[tuple[str, str], ...] | None:
        """The headers this scheme always adds, if that is all it does; ``None`` otherwise.

        A client merges them into its base headers once instead of applying the scheme to every request.
        """
        return None

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send the request once, with credentials applied."""
        yield self.apply(request)
