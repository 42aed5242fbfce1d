"""The inbox on PostgreSQL: what only a shared server can show, beyond the suite ``test_inbox.py`` runs on both stores.

Several inboxes on their own connections claim with ``FOR UPDATE SKIP LOCKED``: a locked row is skipped, not waited
on, and concurrent workers never run one event twice. Each test uses a fresh schema (``postgres_url``), dropped after.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers
from tether.errors import ConfigurationError
from tether.testing import FakeClock
from tether.webhooks import EventStatus, Inbox, InboxEvent, Outcome, Receipt

pytestmark = pytest.mark.integration


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def deliver(inbox: Inbox, clock: FakeClock, event_id: str) -> Receipt:
    body = stripe_body(event_id)
    return inbox.receive("stripe", "stripe", secret=SECRET, headers=stripe_headers(body, clock.time()), body=body)


def test_receive_stores_once_and_a_duplicate_is_not_stored_again(postgres_url: str) -> None:
    """The row is committed before the 2xx; the same provider id again answers duplicate and adds no row."""
    clock = FakeClock()
    with Inbox(postgres_url, clock=clock) as inbox:
        first = deliver(inbox, clock, "evt_pg_1")
        second = deliver(inbox, clock, "evt_pg_1")
    assert first.outcome is Outcome.ACCEPTED
    assert (second.outcome, second.event_id) == (Outcome.DUPLICATE, first.event_id)
    with _connect(postgres_url) as db:
        rows = db.execute("SELECT source, provider_event_id, status, body FROM webhook_events").fetchall()
    assert rows == [("stripe", "evt_pg_1", "pending", stripe_body("evt_pg_1"))]


def test_schema_is_migrated_once_into_the_same_versioned_table_and_newer_is_refused(postgres_url: str) -> None:
    """Two inboxes opening a fresh schema at once migrate in turn; a database newer than the code is refused."""
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            Inbox(postgres_url).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with _connect(postgres_url) as db:
        assert db.execute("SELECT version, name FROM tether_migrations").fetchall() == [
            (1, "webhook inbox"),
            (2, "connections vault"),
            (3, "oauth states"),
        ]
        db.execute("INSERT INTO tether_migrations (version, name, applied_at) VALUES (99, 'future', 0)")
    with pytest.raises(ConfigurationError, match="newer than this tether"):
        Inbox(postgres_url)


def test_an_unreachable_server_is_a_configuration_error() -> None:
    """A wrong URL fails at construction with a readable error, not a psycopg exception."""
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigurationError, match="Cannot open"):
        Inbox("postgresql://postgres@127.0.0.1:1/test", busy_timeout=1.0)


def test_a_row_locked_by_another_transaction_is_skipped_not_waited_on(postgres_url: str) -> None:
    """SKIP LOCKED: while another worker's transaction holds the oldest event, a claim takes the next one at once."""
    clock = FakeClock()
    with Inbox(postgres_url, clock=clock) as inbox:
        ran: list[str] = []
        inbox.on("stripe")(lambda event: ran.append(event.provider_event_id))
        locked = deliver(inbox, clock, "evt_locked")
        deliver(inbox, clock, "evt_free")
        claimed: list[int] = []
        worker = threading.Thread(target=lambda: claimed.append(asyncio.run(inbox.run_pending())))
        with _connect(postgres_url) as other:
            with other.transaction():
                other.execute("SELECT id FROM webhook_events WHERE id = %s FOR UPDATE", (locked.event_id,))
                worker.start()
                worker.join(timeout=5)
                waited = worker.is_alive()  # a plain FOR UPDATE would block here until the lock is released
            worker.join()
        assert not waited
        assert claimed == [1]
        assert ran == ["evt_free"]
        assert asyncio.run(inbox.run_pending()) == 1
        assert ran == ["evt_free", "evt_locked"]


def test_two_workers_on_two_connections_handle_each_of_50_events_exactly_once(postgres_url: str) -> None:
    """Two inboxes (two processes' worth of connections) run_pending concurrently: no event is claimed twice."""
    handled: Counter[str] = Counter()
    by_worker: Counter[str] = Counter()
    lock = threading.Lock()
    with Inbox(postgres_url) as receiver:
        receipts = [
            receiver.receive(
                "stripe",
                "stripe",
                secret=SECRET,
                headers=stripe_headers(stripe_body(f"evt_{n}"), time.time()),
                body=stripe_body(f"evt_{n}"),
            )
            for n in range(50)
        ]
    assert all(receipt.outcome is Outcome.ACCEPTED for receipt in receipts)
    workers = [Inbox(postgres_url), Inbox(postgres_url)]
    barrier = threading.Barrier(len(workers))

    def work(name: str, inbox: Inbox) -> None:
        def handle(event: InboxEvent) -> None:
            time.sleep(0.002)  # long enough for the other worker's claims to interleave
            with lock:
                handled[event.provider_event_id] += 1
                by_worker[name] += 1

        inbox.on("stripe")(handle)
        barrier.wait()
        while asyncio.run(inbox.run_pending(limit=3)):
            pass

    threads = [threading.Thread(target=work, args=(f"w{i}", inbox)) for i, inbox in enumerate(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert handled == Counter({f"evt_{n}": 1 for n in range(50)})
        assert sum(by_worker.values()) == 50
        assert len(by_worker) == 2, by_worker  # both workers took part
        assert all(event.status is EventStatus.PROCESSED for event in workers[0].events(limit=100))
    finally:
        for inbox in workers:
            inbox.close()
