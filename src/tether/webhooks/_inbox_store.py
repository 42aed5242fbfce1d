"""The inbox's SQLite repository: every read and write of ``webhook_events``, each write one transaction.

It implements :class:`tether.webhooks._inbox_storage.InboxStore`; ``_inbox_postgres`` is its PostgreSQL twin.

The store takes times as arguments and never reads a clock; :class:`tether.webhooks.Inbox` passes its clock's
wall time (wall, not monotonic: leases and retry times must mean the same thing to another process and after a
restart). ``sqlite3.Error`` propagates; the inbox turns it into a 5xx receipt or re-raises it to its caller.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tether.webhooks._inbox_event import InboxEvent
from tether.webhooks._inbox_schema import open_sqlite
from tether.webhooks._inbox_storage import COLUMNS as _COLUMNS
from tether.webhooks._inbox_storage import Claimed, NewEvent, initial_state
from tether.webhooks._inbox_storage import event_from_row as _event

__all__ = ["Claimed", "NewEvent", "SQLiteInboxStore"]

_DUE = """
    ((status = 'pending' AND next_attempt_at <= :now) OR (status = 'processing' AND lease_expires_at <= :now))
    AND (order_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM webhook_events AS earlier
        WHERE earlier.source = webhook_events.source AND earlier.order_key = webhook_events.order_key
          AND earlier.id < webhook_events.id AND earlier.status IN ('pending', 'processing')))
"""

_LEASE = (
    "UPDATE webhook_events SET status = 'processing', attempts = attempts + 1, lease_owner = ?, lease_expires_at = ? "
)
_INSERT = (
    "INSERT INTO webhook_events (source, provider_event_id, event_type, headers, body, received_at, status, "
    "attempts, next_attempt_at, processed_at, order_key) VALUES "
)
_ROW = "(?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
_ROWS_PER_INSERT = 90
"""Rows in one multi-row INSERT: 10 parameters each, under SQLite's oldest limit of 999."""
_UNLESS_KNOWN = " ON CONFLICT (source, provider_event_id) DO NOTHING RETURNING id"
_UNLESS_KNOWN_BY_KEY = " ON CONFLICT (source, provider_event_id) DO NOTHING RETURNING id, source, provider_event_id"
_IDS_PER_STATEMENT = 500
"""Ids bound in one ``IN (...)`` list, well under SQLite's oldest limit of 999 parameters."""
_REPLAY = (
    "UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?, processed_at = NULL, "
    "lease_owner = NULL, lease_expires_at = NULL WHERE "
)


class SQLiteInboxStore:
    """``webhook_events`` in one SQLite file, safe to share between threads (one lock) and processes (SQLite's)."""

    __slots__ = ("_connection", "_lock")

    def __init__(self, path_or_url: str | Path, *, busy_timeout: float, now: float) -> None:
        self._connection = open_sqlite(path_or_url, busy_timeout=busy_timeout, now=now)
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def insert_many(self, news: Sequence[NewEvent], *, now: float, keep_since: float) -> list[tuple[int, bool]]:
        """Store each of ``news`` unless ``(source, provider_event_id)`` was received at or after ``keep_since``.

        One transaction for all (one fsync'd commit): every row is committed, or none is and the error propagates.
        Returns ``(id, created)`` per item, in order: the new row's id, or the first delivery's id for a duplicate,
        including a duplicate of an earlier item of the same batch. A row older than the window that is finished
        (processed or dead) is replaced: the provider has long stopped retrying, so the same id now names a new
        event. A row still pending or processing always counts as a duplicate.
        """
        with self._transaction() as db:
            # First deliveries, by far the most common case, go in a few multi-row statements; each key they
            # stored belongs to its first item in the batch. Every other item finds the row it hit (_insert).
            first: dict[tuple[str, str], int] = {}
            for start in range(0, len(news), _ROWS_PER_INSERT):
                chunk = news[start : start + _ROWS_PER_INSERT]
                params: list[object] = []
                for new in chunk:
                    status, processed_at = initial_state(new, now)
                    params += (new.source, new.provider_event_id, new.event_type, new.headers_json, new.body, now)
                    params += (status, now, processed_at, new.order_key)
                rows = ", ".join([_ROW] * len(chunk))
                for event_id, source, provider_id in db.execute(_INSERT + rows + _UNLESS_KNOWN_BY_KEY, params):
                    first[(source, provider_id)] = int(event_id)
            results: list[tuple[int, bool]] = []
            for new in news:
                event_id = first.pop((new.source, new.provider_event_id), None)
                if event_id is not None:
                    results.append((event_id, True))
                else:
                    results.append(self._insert(db, new, now=now, keep_since=keep_since))
            return results

    @staticmethod
    def _insert(db: sqlite3.Connection, new: NewEvent, *, now: float, keep_since: float) -> tuple[int, bool]:
        status, processed_at = initial_state(new, now)
        values = (new.source, new.provider_event_id, new.event_type, new.headers_json, new.body, now, status, now)
        tail = (processed_at, new.order_key)
        # The first delivery, by far the most common case, costs one statement; a repeat finds the row it hit.
        row = db.execute(_INSERT + _ROW + _UNLESS_KNOWN, values + tail).fetchone()
        if row is not None:
            return int(row[0]), True
        event_id, received_at, found_status = db.execute(
            "SELECT id, received_at, status FROM webhook_events WHERE source = ? AND provider_event_id = ?",
            (new.source, new.provider_event_id),
        ).fetchone()
        if received_at >= keep_since or found_status in ("pending", "processing"):
            return int(event_id), False
        db.execute("DELETE FROM webhook_events WHERE id = ?", (event_id,))
        (event_id,) = db.execute(_INSERT + _ROW + " RETURNING id", values + tail).fetchone()
        return int(event_id), True

    def claim(self, *, owner: str, now: float, lease: float, limit: int, max_attempts: int) -> Claimed:
        """Lease up to ``limit`` due events to ``owner`` until ``now + lease``, oldest first.

        Due: pending and past ``next_attempt_at``, or processing with an expired lease (its worker died). With an
        ordering key, only the oldest unfinished event of each key is due. An expired lease on an event that had
        already started ``max_attempts`` runs marks it dead instead (a poison event that kills its worker).
        """
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT id, attempts FROM webhook_events WHERE {_DUE} ORDER BY id LIMIT :limit",  # noqa: S608 constant
                {"now": now, "limit": limit},
            ).fetchall()
            dead = [event_id for event_id, attempts in rows if attempts >= max_attempts]
            for event_id in dead:
                db.execute(
                    "UPDATE webhook_events SET status = 'dead', lease_owner = NULL, lease_expires_at = NULL, "
                    "last_error = ? WHERE id = ?",
                    (f"the worker running attempt {max_attempts} stopped before finishing (lease expired)", event_id),
                )
            leased = [event_id for event_id, attempts in rows if attempts < max_attempts]
            events: list[InboxEvent] = []
            for start in range(0, len(leased), _IDS_PER_STATEMENT):  # one statement per chunk, not one per event
                chunk = leased[start : start + _IDS_PER_STATEMENT]
                events += map(
                    _event,
                    db.execute(
                        _LEASE + f"WHERE id IN ({', '.join('?' * len(chunk))}) RETURNING {_COLUMNS}",
                        (owner, now + lease, *chunk),
                    ).fetchall(),
                )
            events.sort(key=lambda event: event.id)
            return Claimed(events=events, dead=dead)

    def complete_many(self, event_ids: Sequence[int], *, owner: str, now: float) -> list[int]:
        """Mark leased events processed in one transaction; return the ids ``owner`` no longer held a lease on."""
        assignments = (
            "status = 'processed', processed_at = ?, lease_owner = NULL, lease_expires_at = NULL, last_error = NULL"
        )
        return self._update_held(event_ids, owner, assignments, (now,))

    def renew(self, event_ids: Sequence[int], *, owner: str, until: float) -> list[int]:
        """Extend ``owner``'s leases on these processing events to ``until``; return the ids it no longer holds."""
        return self._update_held(event_ids, owner, "lease_expires_at = ?", (until,))

    def _update_held(
        self, event_ids: Sequence[int], owner: str, assignments: str, values: tuple[object, ...]
    ) -> list[int]:
        """``SET assignments`` on the events of ``event_ids`` that ``owner`` holds leased; the ids it no longer held.

        One transaction, one statement per chunk of ids; ``assignments`` is a constant of this module.
        """
        held: set[int] = set()
        with self._transaction() as db:
            for start in range(0, len(event_ids), _IDS_PER_STATEMENT):
                chunk = list(event_ids[start : start + _IDS_PER_STATEMENT])
                rows = db.execute(
                    f"UPDATE webhook_events SET {assignments} WHERE lease_owner = ? AND status = 'processing' "  # noqa: S608
                    f"AND id IN ({', '.join('?' * len(chunk))}) RETURNING id",
                    (*values, owner, *chunk),
                ).fetchall()
                held.update(event_id for (event_id,) in rows)
        return [event_id for event_id in event_ids if event_id not in held]

    def fail(self, event_id: int, *, owner: str, error: str, retry_at: float | None) -> bool:
        """Record a failed run: pending again from ``retry_at``, or dead when ``retry_at`` is ``None``."""
        status = "dead" if retry_at is None else "pending"
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE webhook_events SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
                "lease_owner = NULL, lease_expires_at = NULL, last_error = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'processing'",
                (status, retry_at, error, event_id, owner),
            )
            return cursor.rowcount == 1

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
        clauses = [f"status IN ({', '.join('?' for _ in statuses)})"]
        params: list[Any] = list(statuses)
        for clause, value in (("id = ?", event_id), ("source = ?", source)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if since is not None:
            clauses.append("received_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("received_at < ?")
            params.append(until)
        with self._transaction() as db:
            cursor = db.execute(
                _REPLAY + " AND ".join(clauses),
                [now, *params],
            )
            return cursor.rowcount

    def get(self, event_id: int) -> InboxEvent | None:
        """One event by the inbox's id."""
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_COLUMNS} FROM webhook_events WHERE id = ?",  # noqa: S608 constant columns
                (event_id,),
            ).fetchone()
        return None if row is None else _event(row)

    def list(self, *, status: str | None, source: str | None, limit: int) -> list[InboxEvent]:
        """Events, newest first, optionally of one status and source."""
        clauses, params = ["1 = 1"], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM webhook_events WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",  # noqa: S608
                [*params, limit],
            ).fetchall()
        return [_event(row) for row in rows]

    def purge(self, *, before: float) -> int:
        """Delete finished events received before ``before``; pending and processing ones are always kept."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM webhook_events WHERE received_at < ? AND status IN ('processed', 'dead')", (before,)
            )
            return cursor.rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()
