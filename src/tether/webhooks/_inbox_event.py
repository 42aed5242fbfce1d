"""A stored webhook event as handlers and operators see it, and the states it moves through.

::

    pending ──claim──► processing ──handlers ok──► processed
       ▲                  │  │
       │   handler failed,│  └──failed max_attempts times──► dead
       └── retry later ◄──┘
    (a processing event whose worker's lease expired is claimed again; replay puts processed or dead back to pending)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.webhooks._event import parse_json
from tether.webhooks._stored_headers import HeaderPairs

__all__ = ["EventStatus", "InboxEvent"]


class EventStatus(StrEnum):
    """Where an inbox event stands: ``pending``, ``processing`` (claimed under a lease), ``processed`` or ``dead``."""

    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    DEAD = "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxEvent:
    """One received webhook event, as stored.

    ``id`` is the inbox's own id; ``provider_event_id`` the provider's id (or ``sha256:`` of the body when the
    scheme gives none), unique per ``source`` within the retention window; ``type`` the event type when known;
    ``raw`` the exact bytes received and ``payload`` their JSON parse (``None`` when not JSON); ``headers`` as
    received with credentials redacted. Times are Unix seconds from the inbox's clock. ``attempts`` counts
    handler runs started so far (including the current one while a handler runs); ``last_error`` is the latest
    failure, redacted. The ``repr`` leaves out the body and headers.
    """

    id: int
    source: str
    provider_event_id: str
    type: str | None
    status: EventStatus
    attempts: int
    received_at: float
    next_attempt_at: float
    raw: bytes = field(repr=False)
    headers: HeaderPairs = field(repr=False)
    last_error: str | None = None
    processed_at: float | None = None
    order_key: str | None = None

    @property
    def payload(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is not a JSON object or array."""
        return parse_json(self.raw)
