"""The verified event: what :func:`tether.webhooks.verify` returns once a delivery is proven authentic."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedEvent:
    """An authentic webhook delivery.

    ``id`` is the provider's event or delivery id (for deduplication) and ``type`` its event type, each where the
    scheme's headers or the payload give one; ``timestamp`` the signed Unix time for timestamped schemes;
    ``payload`` the body parsed as JSON (``None`` when it is not JSON, e.g. a form body); ``raw`` the exact bytes
    received; ``scheme`` the scheme's name. The ``repr`` leaves out the body, which may hold personal data.
    """

    scheme: str
    id: str | None = None
    type: str | None = None
    timestamp: int | None = None
    payload: Any = field(default=None, repr=False)
    raw: bytes = field(default=b"", repr=False)

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
        """Build the event, taking ``id``/``type`` from the JSON payload's fields when the headers gave none."""
        payload = parse_json(raw)
        return cls(
            scheme=scheme,
            id=id if id is not None else _field(payload, id_field),
            type=type if type is not None else _field(payload, type_field),
            timestamp=timestamp,
            payload=payload,
            raw=raw,
        )
