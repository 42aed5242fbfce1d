"""The auth protocol: how credentials join a call.

An auth is a *flow*, like the call pipeline itself: ``auth_flow(request)`` is a generator that yields the
request to send (credentials attached) and receives the final response to it. It may then yield another
request — a token refresh, or the original request again with a fresh token — or return to finish. This
one shape serves a static header and refresh-on-401 alike, and the client drives it for async and sync
calls without knowing which. A response it receives has passed through the whole retry pipeline.

Static credentials subclass :class:`StaticAuth` and implement ``apply`` only; the client then skips the
generator on the hot path.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol, runtime_checkable

from tether._models import Request, Response

__all__ = ["Auth", "StaticAuth"]


@runtime_checkable
class Auth(Protocol):
    """Attaches credentials to requests; may resend after seeing a response (e.g. refresh on 401)."""

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Yield requests to send; receive each one's response; return when done."""
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
