"""The test upstream's public values: :class:`Reply`, one scripted answer, and :class:`Recorded`, one request.

They are published as ``tether.testing.upstream.Reply`` and ``tether.testing.upstream.Recorded`` (and from
``tether.testing``); they are defined here, below the server module, so that the private modules that need them
(the scripts and the admin API) do not import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from tether.testing._http11 import TCHARS, has_control_characters

__all__ = ["Fault", "Recorded", "Reply"]

Fault = Literal["reset", "truncate", "hang", "close"]
_FAULTS: frozenset[str] = frozenset(get_args(Fault))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One scripted answer from the upstream.

    ``body`` is sent as is (a ``str`` is UTF-8 encoded); if ``json`` is not ``None`` it is serialised as the body
    instead, with ``Content-Type: application/json``. ``headers`` are added to the defaults
    (``Content-Length``, ``Content-Type`` when there is a body, ``Date``) and replace any default of the same
    name, so a test can even send a lying ``Content-Length``. The server waits ``latency`` seconds (real time)
    before answering or misbehaving. ``fault``, when set, replaces the answer:

    * ``"reset"``: close the socket abruptly with a TCP RST (``SO_LINGER`` 0), without answering;
    * ``"truncate"``: send the headers with the full ``Content-Length`` but only half the body, then close
      (needs a non-empty body);
    * ``"hang"``: never answer, until the client goes away or the server stops;
    * ``"close"``: close the connection cleanly (FIN) without answering.

    Invalid values raise ``ValueError`` (or ``TypeError``) at construction.
    """

    status: int = 200
    body: bytes | str = b""
    json: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    fault: Fault | None = None

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError(f"Reply.status must be an int, not {type(self.status).__name__}")
        if not 100 <= self.status <= 999:
            raise ValueError(f"Reply.status must be a three-digit HTTP status, not {self.status}")
        if not isinstance(self.body, bytes | str):
            raise TypeError(f"Reply.body must be bytes or str, not {type(self.body).__name__}")
        if self.json is not None and self.body:
            raise ValueError("give Reply either body or json, not both")
        if not (isinstance(self.latency, int | float) and 0 <= self.latency < math.inf):
            raise ValueError(f"Reply.latency must be a finite number of seconds >= 0, not {self.latency!r}")
        if self.fault is not None and self.fault not in _FAULTS:
            raise ValueError(f"Reply.fault must be one of {sorted(_FAULTS)} or None, not {self.fault!r}")
        if self.fault == "truncate" and self.json is None and not self.body:
            raise ValueError('Reply(fault="truncate") needs a body (or json) to cut in half')
        for name, value in self.headers.items():
            if not isinstance(name, str) or not name or name.strip(TCHARS):
                raise ValueError(f"invalid header name in Reply.headers: {name!r}")
            if not isinstance(value, str) or has_control_characters(value) or not value.isascii():
                raise ValueError(f"header {name!r} in Reply.headers needs a printable ASCII value: {value!r}")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the upstream received it.

    ``path`` is the request target's path exactly as sent (still percent-encoded), without the query;
    ``query`` maps each query parameter to all its values, in order; ``headers`` are the header fields in the
    order received, with their names as sent. ``received_at`` is a reading of the server's clock (the ``now``
    given to :class:`~tether.testing.upstream.Upstream`, ``time.monotonic`` by default).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        """Return the first value of the header ``name`` (case-insensitive), or ``None`` if absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None
