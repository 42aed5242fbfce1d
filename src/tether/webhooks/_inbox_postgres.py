"""The inbox's PostgreSQL repository: the SQLite store's twin, for several workers on several hosts.

Same schema (the numbered steps of ``tether.store._migrations.MIGRATIONS``, with the id and blob spellings
translated), same ``tether_migrations`` table, same semantics; :class:`tether.webhooks._inbox_storage.InboxStore`
is the contract. What differs is claiming: ``SELECT ... FOR UPDATE SKIP LOCKED`` lets every worker lease a
disjoint batch without waiting on another's, and the lease ``UPDATE`` commits in the same transaction, so no event
is claimed twice.
Migrating takes a transaction-scoped advisory lock, so two processes opening a fresh database migrate in turn.

One connection (autocommit; every operation is one explicit transaction), shared between threads under a lock and
reopened once it is broken. ``psycopg.Error`` propagates; the inbox turns it into a 5xx receipt or re-raises it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError
from tether.store._migrations import migrate_postgres
from tether.store._postgres import connect_postgres, is_postgres_url, psycopg_module
from tether.webhooks._inbox_event import InboxEvent
from tether.webhooks._inbox_storage import COLUMNS, Claimed, NewEvent, event_from_row, initial_state

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresInboxStore", "is_postgres_url"]

_DUE = """
    ((status = 'pending' AND next_attempt_at <= %(now)s) OR (status = 'processing' AND lease_expires_at <= %(now)s))
    AND (order_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM webhook_events AS earlier
        WHERE earlier.source = webhook_events.source AND earlier.order_key = webhook_events.order_key
          AND earlier.id < webhook_events.id AND earlier.status IN ('pending', 'processing')))
"""
_CLAIM = (
    f"SELECT id, attempts FROM webhook_events WHERE {_DUE} "  # noqa: S608 constant
    "ORDER BY id LIMIT %(limit)s FOR UPDATE OF webhook_events SKIP LOCKED"
)
_LEASE = (
    "UPDATE webhook_events SET status = 'processing', attempts = attempts + 1, lease_owner = %s, "  # noqa: S608
    "lease_expires_at = %s WHERE id = %s RETURNING " + COLUMNS
)
_REPLAY = (
    "UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = %s, processed_at = NULL, "
    "lease_owner = NULL, lease_expires_at = NULL WHERE "
)


def _migrate(connection: psycopg.Connection[Any], now: float) -> None:
    migrate_postgres(connection, now=now, what="webhook inbox")


def _connect(url: str, connect_timeout: float) -> psycopg.Connection[Any]:
    return connect_postgres(url, connect_timeout, what="webhook inbox")


class PostgresInboxStore:
    """``webhook_events`` in a PostgreSQL database (the URL's ``options=-csearch_path=...`` selects a schema)."""

    __slots__ = ("_connect_timeout", "_connection", "_lock", "_url")

    def __init__(self, url: str, *, connect_timeout: float, now: float) -> None:
        psycopg = psycopg_module("webhook inbox")
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        try:
            self._connection = _connect(url, connect_timeout)
        except psycopg.Error as exc:
            raise ConfigurationError(f"Cannot open the webhook inbox database: {exc}") from exc
        try:
            _migrate(self._connection, now)
        except psycopg.Error as exc:
            self._connection.close()
            raise ConfigurationError(f"Cannot prepare the webhook inbox database: {exc}") from exc
        except BaseException:
            self._connection.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            if self._connection.broken:  # the server restarted or the network dropped: one fresh connection
                self._connection.close()
                self._connection = _connect(self._url, self._connect_timeout)
            with self._connection.transaction():
                yield self._connection

    def insert_many(self, news: Sequence[NewEvent], *, now: float, keep_since: float) -> list[tuple[int, bool]]:
        """Store each of ``news`` unless deduplicated, all in one transaction; ``(id, created)`` per item, in order.

        The retention rule is the SQLite store's. A concurrent first delivery of the same id (another worker's
        transaction) is caught by the unique constraint (``ON CONFLICT DO NOTHING``) and answered as a duplicate.
        Rows are written in ``(source, provider_event_id)`` order, so two processes' batches that share ids take
        their row locks in the same order and cannot deadlock on each other.
        """
        order = sorted(range(len(news)), key=lambda index: (news[index].source, news[index].provider_event_id))
        results: list[tuple[int, bool]] = [(0, False)] * len(news)
        with self._transaction() as db:
            for index in order:
                results[index] = self._insert(db, news[index], now=now, keep_since=keep_since)
        return results

    @staticmethod
    def _insert(db: psycopg.Connection[Any], new: NewEvent, *, now: float, keep_since: float) -> tuple[int, bool]:
        found = db.execute(
            "SELECT id, received_at, status FROM webhook_events WHERE source = %s AND provider_event_id = %s "
            "FOR UPDATE",
            (new.source, new.provider_event_id),
        ).fetchone()
        if found is not None:
            event_id, received_at, status = found
            if received_at >= keep_since or status in ("pending", "processing"):
                return int(event_id), False
            db.execute("DELETE FROM webhook_events WHERE id = %s", (event_id,))
        status, processed_at = initial_state(new, now)
        inserted = db.execute(
            "INSERT INTO webhook_events (source, provider_event_id, event_type, headers, body, received_at, status, "
            "attempts, next_attempt_at, processed_at, order_key) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s) "
            "ON CONFLICT (source, provider_event_id) DO NOTHING RETURNING id",
            (
                new.source,
                new.provider_event_id,
                new.event_type,
                new.headers_json,
                new.body,
                now,
                status,
                now,
                processed_at,
                new.order_key,
            ),
        ).fetchone()
        if inserted is not None:
            return int(inserted[0]), True
        winner = db.execute(
            "SELECT id FROM webhook_events WHERE source = %s AND provider_event_id = %s",
            (new.source, new.provider_event_id),
        ).fetchone()
        if winner is None:  # pragma: no cover - the conflicting row was deleted in between; let the caller retry
            raise RuntimeError("a concurrent delivery of the same event id vanished; retry")
        return int(winner[0]), False

    def claim(self, *, owner: str, now: float, lease: float, limit: int, max_attempts: int) -> Claimed:
        """Lease up to ``limit`` due events to ``owner``, skipping rows another worker is claiming right now.

        Due and dead-on-expiry are as in the SQLite store; ``FOR UPDATE SKIP LOCKED`` makes concurrent claims
        disjoint, and a row another worker leased and committed meanwhile is re-checked and no longer due.
        """
        with self._transaction() as db:
            rows = db.execute(_CLAIM, {"now": now, "limit": limit}).fetchall()
            dead = [int(event_id) for event_id, attempts in rows if attempts >= max_attempts]
            for event_id in dead:
                db.execute(
                    "UPDATE webhook_events SET status = 'dead', lease_owner = NULL, lease_expires_at = NULL, "
                    "last_error = %s WHERE id = %s",
                    (f"the worker running attempt {max_attempts} stopped before finishing (lease expired)", event_id),
                )
            events = []
            for event_id, attempts in rows:
                if attempts >= max_attempts:
                    continue
                row = db.execute(_LEASE, (owner, now + lease, event_id)).fetchone()
                if row is not None:
                    events.append(event_from_row(row))
            return Claimed(events=events, dead=dead)

    def complete_many(self, event_ids: Sequence[int], *, owner: str, now: float) -> list[int]:
        """Mark leased events processed in one transaction; return the ids ``owner`` no longer held a lease on."""
        lost = []
        with self._transaction() as db:
            for event_id in event_ids:
                cursor = db.execute(
                    "UPDATE webhook_events SET status = 'processed', processed_at = %s, lease_owner = NULL, "
                    "lease_expires_at = NULL, last_error = NULL "
                    "WHERE id = %s AND lease_owner = %s AND status = 'processing'",
                    (now, event_id, owner),
                )
                if cursor.rowcount != 1:
                    lost.append(event_id)
        return lost

    def renew(self, event_ids: Sequence[int], *, owner: str, until: float) -> list[int]:
        """Extend ``owner``'s leases on these processing events to ``until``; return the ids it no longer holds."""
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE webhook_events SET lease_expires_at = %s "
                "WHERE lease_owner = %s AND status = 'processing' AND id = ANY(%s) RETURNING id",
                (until, owner, list(event_ids)),
            ).fetchall()
        held = {event_id for (event_id,) in rows}
        return [event_id for event_id in event_ids if event_id not in held]

    def fail(self, event_id: int, *, owner: str, error: str, retry_at: float | None) -> bool:
        """Record a failed run: pending again from ``retry_at``, or dead when ``retry_at`` is ``None``."""
        status = "dead" if retry_at is None else "pending"
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE webhook_events SET status = %s, "
                "next_attempt_at = COALESCE(%s::DOUBLE PRECISION, next_attempt_at), "
                "lease_owner = NULL, lease_expires_at = NULL, last_error = %s "
                "WHERE id = %s AND lease_owner = %s AND status = 'processing'",
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
        clauses = ["status = ANY(%s)"]
        params: list[Any] = [list(statuses)]
        for clause, value in (("id = %s", event_id), ("source = %s", source)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if since is not None:
            clauses.append("received_at >= %s")
            params.append(since)
        if until is not None:
            clauses.append("received_at < %s")
            params.append(until)
        with self._transaction() as db:
            cursor = db.execute(_REPLAY + " AND ".join(clauses), [now, *params])
            return int(cursor.rowcount)

    def get(self, event_id: int) -> InboxEvent | None:
        """One event by the inbox's id."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM webhook_events WHERE id = %s", (event_id,)).fetchone()  # noqa: S608
        return None if row is None else event_from_row(row)

    def list(self, *, status: str | None, source: str | None, limit: int) -> list[InboxEvent]:
        """Events, newest first, optionally of one status and source."""
        clauses, params = ["1 = 1"], []
        if status is not None:
            clauses.append("status = %s")
            params.append(status)
        if source is not None:
            clauses.append("source = %s")
            params.append(source)
        query = f"SELECT {COLUMNS} FROM webhook_events WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT %s"  # noqa: S608
        with self._transaction() as db:
            rows = db.execute(query, [*params, limit]).fetchall()
        return [event_from_row(row) for row in rows]

    def purge(self, *, before: float) -> int:
        """Delete finished events received before ``before``; pending and processing ones are always kept."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM webhook_events WHERE received_at < %s AND status IN ('processed', 'dead')", (before,)
            )
            return int(cursor.rowcount)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()
