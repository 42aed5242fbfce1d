"""The durable inbox: verify, persist, then answer; run handlers later, with retries, dead letters and replay.

Receiving (:meth:`Inbox.receive`) is synchronous and short: size checks, :func:`verify`, one database
transaction committed durably (SQLite: full fsync), then a :class:`Receipt` whose status is 2xx only once the
event is on disk. Handlers run in :meth:`Inbox.run_pending` (one pass) or :meth:`Inbox.work` (a loop the caller
owns), never in the request. Delivery to handlers is at least once: a handler that fails, or whose worker dies,
runs again, so handlers must be idempotent. Deduplication on ``(source, provider event id)`` keeps a provider's
retries from being processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import random as _random
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from tether._clock import Clock, SystemClock
from tether._redaction import redact_text
from tether.errors import ConfigurationError, WebhookVerificationError
from tether.policies.backoff import Backoff
from tether.webhooks._group_commit import GroupCommit
from tether.webhooks._handlers import Handler, HandlerRegistry, OrderBy
from tether.webhooks._headers import HeadersInput
from tether.webhooks._inbox_asgi import InboxEndpoint
from tether.webhooks._inbox_event import EventStatus, InboxEvent
from tether.webhooks._inbox_postgres import PostgresInboxStore, is_postgres_url
from tether.webhooks._inbox_storage import InboxStore, NewEvent
from tether.webhooks._inbox_store import SQLiteInboxStore
from tether.webhooks._receipt import Outcome, Receipt
from tether.webhooks._scheme import Scheme
from tether.webhooks._stored_headers import dump_headers, header_pairs, header_size
from tether.webhooks._timestamps import DEFAULT_TOLERANCE
from tether.webhooks._verify import verify

__all__ = ["DEFAULT_BACKOFF", "Inbox"]

logger = logging.getLogger("tether.webhooks")

DEFAULT_BACKOFF = Backoff(initial=10.0, multiplier=2.0, max=3600.0)
"""Handler retries wait up to 10 s, 20 s, 40 s... at most an hour, with full jitter."""

_DAY = 86_400.0
_MAX_BATCH = 512
"""Deliveries in one group commit at most (bounds one transaction's size and time)."""
_MAX_ERROR_CHARS = 2000


def _storage_failed(new: NewEvent, exc: Exception) -> Receipt:
    logger.warning("Could not store a %s webhook; answering 503 so it is retried: %s", new.source, exc)
    return Receipt(outcome=Outcome.STORAGE_FAILED, provider_event_id=new.provider_event_id, reason="storage failed")


def _stored(new: NewEvent, stored: tuple[int, bool]) -> Receipt:
    event_id, created = stored
    return Receipt(
        outcome=Outcome.ACCEPTED if created else Outcome.DUPLICATE,
        event_id=event_id,
        provider_event_id=new.provider_event_id,
    )


def _describe(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")[:_MAX_ERROR_CHARS]


class Inbox:
    """A durable, deduplicating webhook inbox in one SQLite database (WAL mode) or in PostgreSQL.

    ``path_or_url`` is a file path or ``sqlite:///PATH``, or ``postgresql://user@host/db`` (needs the
    ``postgres`` extra; add ``?options=-csearch_path%3DNAME`` for a schema other than ``public``), where any
    number of workers in any number of processes claim events with ``FOR UPDATE SKIP LOCKED``. ``clock``
    (default: the system clock) dates events, leases and retries; ``random`` (a :class:`random.Random`) draws
    the backoff jitter. Deliveries over
    ``max_body`` bytes answer 413 and over ``max_headers`` characters of headers 431. A provider event id is
    deduplicated for ``retention`` seconds (default 30 days; Stripe retries for 3). A handler run holds its event
    for ``lease`` seconds, renewed every third of it while the handler runs: if the worker dies, another claims the
    event once the lease ends, and a handler may run longer than the lease. After ``max_attempts`` failed runs an
    event is ``dead`` until replayed; between runs it waits ``backoff`` (full jitter). ``busy_timeout`` is how long
    a SQLite write waits for another writer, or the PostgreSQL connect timeout.

    ``unhandled`` says what happens to a delivery none of *this* inbox's handlers wants: ``"pending"`` (the
    default) stores it for a worker, which marks it processed if no handler wants it when it runs (workers in
    other processes, with their own handlers, may share the database); ``"processed"`` stores it processed at
    once, sparing a worker the claim and the completion: only for an inbox whose own worker is the only one, such
    as the gateway's. Either way, replay runs it once a handler exists.
    """

    def __init__(
        self,
        path_or_url: str | Path,
        *,
        clock: Clock | None = None,
        max_body: int = 1 << 20,
        max_headers: int = 64 << 10,
        retention: float = 30 * _DAY,
        lease: float = 300.0,
        max_attempts: int = 10,
        backoff: Backoff = DEFAULT_BACKOFF,
        random: _random.Random | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        busy_timeout: float = 5.0,
        unhandled: Literal["pending", "processed"] = "pending",
    ) -> None:
        if unhandled not in ("pending", "processed"):
            raise ConfigurationError(f"Inbox(unhandled=...) must be 'pending' or 'processed', not {unhandled!r}")
        if max_body < 0 or max_headers < 0 or retention <= 0 or lease <= 0 or max_attempts < 1 or busy_timeout < 0:
            raise ConfigurationError(
                "Inbox needs max_body >= 0, max_headers >= 0, retention > 0, lease > 0, max_attempts >= 1 "
                "and busy_timeout >= 0"
            )
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._max_body = max_body
        self._max_headers = max_headers
        self._retention = retention
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._random = random if random is not None else _random.Random()
        self._tolerance = tolerance
        self._handlers = HandlerRegistry()
        self._settle_unhandled = unhandled == "processed"
        self._rejections: Counter[str] = Counter()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._store: InboxStore
        if is_postgres_url(path_or_url):
            self._store = PostgresInboxStore(str(path_or_url), connect_timeout=busy_timeout, now=self._clock.time())
        else:
            self._store = SQLiteInboxStore(path_or_url, busy_timeout=busy_timeout, now=self._clock.time())
        self._writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(
            self._write, name="tether-inbox-writer", max_batch=_MAX_BATCH
        )

    # -- receiving -------------------------------------------------------------------------------------------

    def receive(
        self,
        source: str,
        scheme: str | Scheme,
        *,
        secret: str | Sequence[str],
        headers: HeadersInput,
        body: bytes,
        url: str | None = None,
    ) -> Receipt:
        """Verify a delivery, store it durably, and say which status to answer. Never raises for a bad delivery.

        Order: a body over ``max_body`` → 413; headers over ``max_headers`` → 431; a failed signature → 401,
        counted in :attr:`rejections` and not stored; then the raw body, the headers (credentials redacted), the
        source and the provider's event id are written in one transaction → 200 ``accepted``, or 200
        ``duplicate`` when that id was already received within the retention window (the first delivery wins and
        is not run again); a storage error → 503, so the provider retries. Usable as is from a Flask or Django
        view: answer ``receipt.status``. Raises :class:`tether.errors.ConfigurationError` only for a call that
        cannot work (an unknown scheme, no secret, a body that is not bytes).

        The write joins the inbox's group commit: deliveries received at the same time, from other threads or
        from :meth:`areceive`, share one transaction and one fsync, and each call returns only once the commit
        holding its row is on disk (a failed commit answers 503 to every delivery it held). This call blocks
        its thread meanwhile; in async code use :meth:`areceive`.
        """
        prepared = self._prepare(source, scheme, secret=secret, headers=headers, body=body, url=url)
        if isinstance(prepared, Receipt):
            return prepared
        try:
            stored = self._writer.submit(prepared).result()
        except Exception as exc:  # sqlite3.Error / psycopg.Error, or a closed inbox
            return _storage_failed(prepared, exc)
        return _stored(prepared, stored)

    async def areceive(
        self,
        source: str,
        scheme: str | Scheme,
        *,
        secret: str | Sequence[str],
        headers: HeadersInput,
        body: bytes,
        url: str | None = None,
    ) -> Receipt:
        """:meth:`receive` for async code: verification runs in the calling task, the durable write on the writer.

        The event loop is never blocked on the database: the task waits for the group commit holding its row
        and gets 200 only once that commit is on disk.
        """
        prepared = self._prepare(source, scheme, secret=secret, headers=headers, body=body, url=url)
        if isinstance(prepared, Receipt):
            return prepared
        try:
            stored = await self._writer.write(prepared)
        except Exception as exc:  # sqlite3.Error / psycopg.Error, or a closed inbox
            return _storage_failed(prepared, exc)
        return _stored(prepared, stored)

    def _prepare(
        self,
        source: str,
        scheme: str | Scheme,
        *,
        secret: str | Sequence[str],
        headers: HeadersInput,
        body: bytes,
        url: str | None,
    ) -> NewEvent | Receipt:
        """The row to store for a verified delivery, or the receipt refusing it (413, 431, 401)."""
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ConfigurationError(f"Inbox.receive() needs the raw body as bytes, not {type(body).__name__}")
        body = bytes(body)
        if len(body) > self._max_body:
            return Receipt(outcome=Outcome.TOO_LARGE, reason=f"body over {self._max_body} bytes")
        pairs = header_pairs(headers)
        if header_size(pairs) > self._max_headers:
            return Receipt(outcome=Outcome.HEADERS_TOO_LARGE, reason=f"headers over {self._max_headers} characters")
        now = self._clock.time()
        try:
            verified = verify(
                scheme, secret=secret, headers=pairs, body=body, url=url, now=now, tolerance=self._tolerance
            )
        except WebhookVerificationError as exc:
            self._rejections[source] += 1
            logger.info("Rejected a %s webhook: %s", source, type(exc).__name__)
            return Receipt(outcome=Outcome.REJECTED, reason=type(exc).__name__)
        provider_id = verified.id or f"sha256:{hashlib.sha256(body).hexdigest()}"
        handled = not self._settle_unhandled or self._handlers.wants(source, verified.type)
        order_key = None
        if self._handlers.ordered:
            provisional = InboxEvent(
                id=0,
                source=source,
                provider_event_id=provider_id,
                type=verified.type,
                status=EventStatus.PENDING,
                attempts=0,
                received_at=now,
                next_attempt_at=now,
                raw=body,
                headers=(),
            )
            order_key = self._handlers.order_key(provisional)
        return NewEvent(
            source=source,
            provider_event_id=provider_id,
            event_type=verified.type,
            headers_json=dump_headers(pairs),
            body=body,
            order_key=order_key,
            handled=handled,
        )

    def _write(self, news: list[NewEvent]) -> list[tuple[int, bool]]:
        """The group commit's flush (on the writer thread): one transaction, one durable commit."""
        now = self._clock.time()
        return self._store.insert_many(news, now=now, keep_since=now - self._retention)

    @property
    def rejections(self) -> Mapping[str, int]:
        """Deliveries refused for a bad signature since this inbox was opened, per source (a snapshot)."""
        return dict(self._rejections)

    def asgi(
        self, source: str, scheme: str | Scheme, *, secret: str | Sequence[str], url: str | None = None
    ) -> InboxEndpoint:
        """An ASGI app receiving ``source``'s webhooks, for Starlette/FastAPI: ``Route("/webhooks/stripe", app)``.

        It answers ``POST`` with the :class:`Receipt`'s status and a small JSON body, any other method 405, and
        stops reading a body as soon as it passes ``max_body``. It stores through :meth:`areceive` (group commit).
        ``url`` is the public URL the provider calls, needed by Twilio and Square.
        """
        return InboxEndpoint(self, source, scheme, secret=secret, url=url, max_body=self._max_body)

    # -- handlers --------------------------------------------------------------------------------------------

    def on(
        self, source: str, event_type: str = "*", *, order_by: OrderBy | None = None
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function (sync or async, taking an :class:`InboxEvent`) for matching events.

        ``event_type`` ``"*"`` matches every event of ``source``. With ``order_by`` (a function of the event
        giving a key, e.g. ``lambda event: event.payload["customer"]``), events with the same key run one at a
        time in arrival order; an event waiting for a retry holds back the later ones of its key. The key is
        computed when the event is received, so register handlers before receiving.
        """

        def register(handler: Handler) -> Handler:
            self._handlers.add(source, event_type, handler, order_by)
            return handler

        return register

    async def run_pending(self, *, limit: int = 100) -> int:
        """Claim up to ``limit`` due events and run their handlers one by one; return how many were run.

        A handler's exception schedules a retry (``backoff``) or, after ``max_attempts``, makes the event dead; it
        is logged, never raised. An event no handler matches is marked processed (replay it once one exists).
        The claimed events that succeeded are marked processed together, in one transaction, after the last
        handler of the batch (one commit, not one per event); should the worker die before that, they run again,
        which at-least-once delivery already allows. The database calls run in a thread, never on the event loop.
        """
        claimed = await asyncio.to_thread(
            self._store.claim,
            owner=self._owner,
            now=self._clock.time(),
            lease=self._lease,
            limit=limit,
            max_attempts=self._max_attempts,
        )
        for event_id in claimed.dead:
            logger.warning("Webhook event %s is dead: its worker stopped on the last attempt", event_id)
        if not claimed.events:
            return 0
        held = {event.id for event in claimed.events}  # leased to this worker and not yet released
        renewing = asyncio.create_task(self._keep_leases(held), name="tether-inbox-lease-renewal")
        try:
            succeeded = []
            for event in claimed.events:
                if await self._run(event):
                    succeeded.append(event.id)
                else:
                    held.discard(event.id)  # fail() released it
            if succeeded:
                lost = await asyncio.to_thread(
                    self._store.complete_many, succeeded, owner=self._owner, now=self._clock.time()
                )
                for event_id in lost:
                    logger.warning("Webhook event %s finished after losing its lease; another worker owns it", event_id)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        return len(claimed.events)

    async def _keep_leases(self, held: set[int]) -> None:
        """Every third of the lease (real time), extend the leases of the batch's unreleased events.

        A handler may thus run longer than ``lease`` without another worker taking its event; only a worker that
        stops renewing (it died, or its event loop is blocked for a whole lease) loses them.
        """
        while True:
            await asyncio.sleep(self._lease / 3)
            if not held:
                continue
            try:
                lost = await asyncio.to_thread(
                    self._store.renew, sorted(held), owner=self._owner, until=self._clock.time() + self._lease
                )
            except Exception as exc:  # the store is down: the next renewal may reach it before the leases end
                logger.warning("Could not renew webhook event leases: %s", _describe(exc))
                continue
            for event_id in lost:
                held.discard(event_id)
                logger.warning("Webhook event %s lost its lease while running; another worker may run it", event_id)

    async def _run(self, event: InboxEvent) -> bool:
        """Run ``event``'s handlers; ``True`` when they all succeeded, else its failure is recorded."""
        try:
            for handler in self._handlers.handlers(event.source, event.type):
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            error = _describe(exc)
            retry_at = None
            if event.attempts >= self._max_attempts:
                logger.warning("Webhook event %s is dead after %d attempts: %s", event.id, event.attempts, error)
            else:
                delay = self._backoff.delay(event.attempts, self._random.random())
                logger.info("Webhook event %s failed (attempt %d), retrying in %.1f s", event.id, event.attempts, delay)
                retry_at = self._clock.time() + delay
            await asyncio.to_thread(self._store.fail, event.id, owner=self._owner, error=error, retry_at=retry_at)
            return False
        return True

    async def work(
        self, *, idle: float = 1.0, limit: int = 100, gather: float = 0.05, stop: asyncio.Event | None = None
    ) -> None:
        """Run handlers until ``stop`` is set (or the task is cancelled), sleeping ``idle`` seconds when none is due.

        After a pass that ran some events but fewer than ``limit``, the worker waits ``gather`` seconds (at most
        ``idle``) before claiming again, so that under a steady stream of deliveries it claims and completes them
        in batches: each claim and each completion is a durable commit, and claiming every event as it arrives
        would spend more time (and fsyncs, and the store's lock) on bookkeeping than on ingesting. A handler thus
        starts at most ``gather`` seconds later than it could. The caller owns the task (an app's lifespan task
        group). A storage error is logged and retried after ``idle``; finished events older than the retention
        window are purged about once an hour.
        """
        if gather < 0:
            raise ConfigurationError("Inbox.work() needs gather >= 0")
        last_purge: float | None = None
        while stop is None or not stop.is_set():
            try:
                ran = await self.run_pending(limit=limit)
                if last_purge is None or self._clock.time() - last_purge >= 3600:
                    last_purge = self._clock.time()
                    await asyncio.to_thread(self.purge)
            except Exception as exc:  # the store is down: keep the worker alive, the events are safe on disk
                logger.warning("The webhook worker could not reach its store: %s", exc)
                ran = 0
            if ran == 0:
                await self._clock.asleep(idle)
            elif ran < limit and gather > 0:
                await self._clock.asleep(min(gather, idle))

    # -- operating -------------------------------------------------------------------------------------------

    def replay(
        self,
        event_id: int | None = None,
        *,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Queue processed or dead events to run again; return how many.

        By the inbox's ``event_id``, or every event of ``source`` received in ``[since, until)`` (Unix seconds,
        each bound optional). Replay with no argument at all is refused: use ``replay(source=...)`` per source.
        """
        if event_id is None and source is None and since is None and until is None:
            raise ConfigurationError("replay() needs an event id or a source/since/until filter; see replay_dead()")
        return self._store.replay(now=self._clock.time(), event_id=event_id, source=source, since=since, until=until)

    def replay_dead(self, *, source: str | None = None) -> int:
        """Queue every dead event (of ``source``, when given) to run again; return how many."""
        return self._store.replay(now=self._clock.time(), source=source, statuses=("dead",))

    def get(self, event_id: int) -> InboxEvent | None:
        """One event by the inbox's id, or ``None``."""
        return self._store.get(event_id)

    def events(
        self, *, status: EventStatus | str | None = None, source: str | None = None, limit: int = 100
    ) -> list[InboxEvent]:
        """Events, newest first, optionally of one status and source."""
        return self._store.list(status=None if status is None else EventStatus(status), source=source, limit=limit)

    def purge(self) -> int:
        """Delete processed and dead events older than the retention window; return how many."""
        return self._store.purge(before=self._clock.time() - self._retention)

    def close(self) -> None:
        """Stop the writer (after committing what it holds) and close the database connection."""
        self._writer.close()
        self._store.close()

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Inbox(owner={self._owner!r})"
