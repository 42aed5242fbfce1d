"""The inbox's storage seam: the records a store takes and returns, and the :class:`InboxStore` protocol.

:class:`tether.webhooks.Inbox` talks to its database only through these methods; ``SQLiteInboxStore`` and
``PostgresInboxStore`` implement them over the same schema (``_inbox_schema``) with the same semantics, and one
test suite runs against both. Stores take times as arguments and never read a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tether.webhooks._inbox_event import EventStatus, InboxEvent
from tether.webhooks._stored_headers import load_headers

__all__ = ["COLUMNS", "Claimed", "InboxStore", "NewEvent", "event_from_row", "initial_state"]

COLUMNS = (
    "id, source, provider_event_id, event_type, status, attempts, received_at, next_attempt_at, body, headers, "
    "last_error, processed_at, order_key"
)
"""The columns :func:`event_from_row` reads, in its order."""


def event_from_row(row: Sequence[Any]) -> InboxEvent:
    """An :class:`InboxEvent` from a row selected as :data:`COLUMNS`."""
    return InboxEvent(
        id=int(row[0]),
        source=row[1],
        provider_event_id=row[2],
        type=row[3],
        status=EventStatus(row[4]),
        attempts=row[5],
        received_at=row[6],
        next_attempt_at=row[7],
        raw=bytes(row[8]),
        headers=load_headers(row[9]),
        last_error=row[10],
        processed_at=row[11],
        order_key=row[12],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """A verified delivery to store."""

    source: str
    provider_event_id: str
    event_type: str | None
    headers_json: str
    body: bytes
    order_key: str | None
    handled: bool = True
    """Whether a handler wants it: if not, it is stored already processed (no worker claims it; replay runs it)."""


def initial_state(new: NewEvent, now: float) -> tuple[str, float | None]:
    """The status and ``processed_at`` a new row starts with: pending, or processed at once when no handler wants it."""
    return ("pending", None) if new.handled else ("processed", now)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """What one claim returned: events now leased to the caller, and events found dead (lease lost too often)."""

    events: list[InboxEvent]
    dead: list[int]


class InboxStore(Protocol):
    """Every read and write of ``webhook_events``; each write is one transaction. Database errors propagate."""

    def insert_many(self, news: Sequence[NewEvent], *, now: float, keep_since: float) -> list[tuple[int, bool]]:
        """Store each of ``news`` unless deduplicated, in one transaction: all committed, or none and it raises.

        ``(id, created)`` per item, in order; for a duplicate (also of an earlier item of the same batch) the first
        delivery's id. One call is one durable commit, which is what group commit shares between requests.
        """
        ...

    def claim(self, *, owner: str, now: float, lease: float, limit: int, max_attempts: int) -> Claimed:
        """Lease up to ``limit`` due events to ``owner`` until ``now + lease``, oldest first."""
        ...

    def complete_many(self, event_ids: Sequence[int], *, owner: str, now: float) -> list[int]:
        """Mark leased events processed in one transaction; return the ids ``owner`` no longer held a lease on."""
        ...

    def renew(self, event_ids: Sequence[int], *, owner: str, until: float) -> list[int]:
        """Extend ``owner``'s leases on these processing events to ``until``; return the ids it no longer holds."""
        ...

    def fail(self, event_id: int, *, owner: str, error: str, retry_at: float | None) -> bool:
        """Record a failed run: pending again from ``retry_at``, or dead when ``retry_at`` is ``None``."""
        ...

    def replay(
        self,
        *,
        now: float,
        event_id: int | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
        statuses: tuple[str, ...] = ("processed", "dead"),
    ) -> int:
        """Put finished events matching every given filter back to pending with a fresh attempt count."""
        ...

    def get(self, event_id: int) -> InboxEvent | None:
        """One event by the inbox's id."""
        ...

    def list(self, *, status: str | None, source: str | None, limit: int) -> list[InboxEvent]:
        """Events, newest first, optionally of one status and source."""
        ...

    def purge(self, *, before: float) -> int:
        """Delete finished events received before ``before``; pending and processing ones are always kept."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
