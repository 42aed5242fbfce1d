"""The verified event: what :func:`tether.webhooks.verify` returns once a delivery is proven authentic."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["VerifiedEvent", "parse_json"]


def parse_json(raw: bytes) -> Any:
    """The body parsed as JSON when it is a JSON object or array, else ``None`` (never raises)."""
    if raw.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting a RecursionError
        return None


def _field(payload: Any, name: str | None) -> str | None:
    if name is None or not isinstance(payload, dict):
        return None
    value = payload.get(name)
    return value if isinstance(value, str) else None


_UNPARSED: Any = object()
"""``payload`` not read yet: most deliveries are stored, not read, and a 1 KB body costs ~10 us to parse."""


class VerifiedEvent:
    """An authentic webhook delivery (immutable).

    ``id`` is the provider's event or delivery id (for deduplication) and ``type`` its event type, each where the
    scheme's headers or the payload give one; ``timestamp`` the signed Unix time for timestamped schemes;
    ``payload`` the body parsed as JSON (``None`` when it is not JSON, e.g. a form body), parsed when first read;
    ``raw`` the exact bytes received; ``scheme`` the scheme's name. The ``repr`` leaves out the body, which may
    hold personal data.
    """

    __slots__ = ("_payload", "id", "raw", "scheme", "timestamp", "type")

    scheme: str
    id: str | None
    type: str | None
    timestamp: int | None
    raw: bytes
    _payload: Any

    def __init__(
        self,
        *,
        scheme: str,
        id: str | None = None,
        type: str | None = None,
        timestamp: int | None = None,
        payload: Any = _UNPARSED,
        raw: bytes = b"",
    ) -> None:
        for name, value in (("scheme", scheme), ("id", id), ("type", type), ("timestamp", timestamp), ("raw", raw)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_payload", payload)

    @property
    def payload(self) -> Any:
        """The body parsed as JSON when it is a JSON object or array, else ``None``."""
        if self._payload is _UNPARSED:
            object.__setattr__(self, "_payload", parse_json(self.raw))
        return self._payload

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"VerifiedEvent is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"VerifiedEvent is immutable: cannot delete {name!r}")

    def _fields(self) -> tuple[object, ...]:
        return (self.scheme, self.id, self.type, self.timestamp, self.payload, self.raw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifiedEvent):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # the payload is usually a dict

    def __repr__(self) -> str:
        return (
            f"VerifiedEvent(scheme={self.scheme!r}, id={self.id!r}, type={self.type!r}, timestamp={self.timestamp!r})"
        )

    @classmethod
    def from_body(
        cls,
        *,
        scheme: str,
        raw: bytes,
        timestamp: int | None = None,
        id: str | None = None,
        type: str | None = None,
        id_field: str | None = None,
        type_field: str | None = None,
    ) -> VerifiedEvent:
        """Build the event, taking ``id``/``type`` from the JSON payload's fields when the headers gave none.

        The payload is parsed here only when a field must be read from it; otherwise when first read.
        """
        payload = _UNPARSED
        if (id is None and id_field is not None) or (type is None and type_field is not None):
            payload = parse_json(raw)
            id = id if id is not None else _field(payload, id_field)
            type = type if type is not None else _field(payload, type_field)
        return cls(scheme=scheme, id=id, type=type, timestamp=timestamp, payload=payload, raw=raw)
