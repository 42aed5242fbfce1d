"""Group commit: concurrent deliveries share one transaction and one fsync, and each learns its own batch's fate.

The writer is driven with real SQLite files. Where a test needs to know which items share a batch, the first
batch's flush waits on an event the test sets, so the items submitted meanwhile are queued together: no sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers
from tests.webhooks.conftest import OpenInbox
from tether.testing import FakeClock
from tether.webhooks import Inbox, Outcome, Receipt
from tether.webhooks._group_commit import GroupCommit, GroupCommitClosed
from tether.webhooks._inbox_storage import NewEvent
from tether.webhooks._inbox_store import SQLiteInboxStore


def new_event(provider_id: str) -> NewEvent:
    return NewEvent(
        source="stripe",
        provider_event_id=provider_id,
        event_type="payment_intent.succeeded",
        headers_json="[]",
        body=stripe_body(provider_id),
        order_key=None,
    )


class GatedStore:
    """A real SQLite store whose first flush waits for ``gate``, recording every batch it is given."""

    def __init__(self, path: Path) -> None:
        self.store = SQLiteInboxStore(path, busy_timeout=5.0, now=0.0)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def flush(self, news: list[NewEvent]) -> Sequence[tuple[int, bool]]:
        if not self.batches:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        self.batches.append([new.provider_event_id for new in news])
        return self.store.insert_many(news, now=1.0, keep_since=0.0)

    def rows(self) -> list[str]:
        return [event.provider_event_id for event in self.store.list(status=None, source=None, limit=1000)]


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[GatedStore]:
    store = GatedStore(tmp_path / "inbox.db")
    yield store
    store.store.close()


def test_items_queued_during_a_commit_share_the_next_transaction(gated: GatedStore) -> None:
    """While one batch commits, every item that arrives waits for it and then goes into one batch together."""
    writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(gated.flush, name="test-writer")
    first = writer.submit(new_event("evt_first"))
    assert gated.entered.wait(10)
    rest = [writer.submit(new_event(f"evt_{index}")) for index in range(50)]
    gated.gate.set()
    assert first.result(10) == (1, True)
    assert [future.result(10) for future in rest] == [(index + 2, True) for index in range(50)]
    writer.close()
    assert gated.batches == [["evt_first"], [f"evt_{index}" for index in range(50)]]
    assert len(gated.rows()) == 51


def test_a_duplicate_inside_one_batch_is_stored_once_and_answered_as_a_duplicate(gated: GatedStore) -> None:
    """Two deliveries of the same id in one transaction: the first is created, the second names its row."""
    writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(gated.flush, name="test-writer")
    writer.submit(new_event("evt_warm"))
    assert gated.entered.wait(10)
    both = [writer.submit(new_event("evt_twice")), writer.submit(new_event("evt_twice"))]
    gated.gate.set()
    assert [future.result(10) for future in both] == [(2, True), (2, False)]
    writer.close()
    assert gated.batches[1] == ["evt_twice", "evt_twice"]
    assert sorted(gated.rows()) == ["evt_twice", "evt_warm"]


def test_a_failed_commit_fails_every_item_of_its_batch_and_stores_none(gated: GatedStore, tmp_path: Path) -> None:
    """One bad row aborts the transaction: all items of that batch get the error, none is stored; others are."""
    poison = sqlite3.connect(tmp_path / "inbox.db")
    poison.execute(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON webhook_events WHEN NEW.provider_event_id = 'evt_poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    poison.commit()
    poison.close()
    writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(gated.flush, name="test-writer")
    first = writer.submit(new_event("evt_before"))
    assert gated.entered.wait(10)
    group = [writer.submit(new_event(name)) for name in ("evt_a", "evt_b", "evt_poison", "evt_c")]
    gated.gate.set()
    assert first.result(10) == (1, True)
    for future in group:
        with pytest.raises(sqlite3.IntegrityError, match="poisoned"):
            future.result(10)
    after = writer.submit(new_event("evt_after"))
    assert after.result(10)[1] is True
    writer.close()
    assert sorted(gated.rows()) == ["evt_after", "evt_before"]


def test_a_closed_writer_refuses_new_items_after_flushing_queued_ones(gated: GatedStore) -> None:
    """close() commits what is queued, then refuses: no accepted item is ever dropped."""
    writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(gated.flush, name="test-writer")
    first = writer.submit(new_event("evt_1"))
    assert gated.entered.wait(10)
    second = writer.submit(new_event("evt_2"))
    closing = threading.Thread(target=writer.close)
    closing.start()
    gated.gate.set()
    closing.join(10)
    assert (first.result(10), second.result(10)) == ((1, True), (2, True))
    with pytest.raises(GroupCommitClosed):
        writer.submit(new_event("evt_3"))


def test_tasks_await_the_commit_without_blocking_the_event_loop(gated: GatedStore) -> None:
    """``await write()`` waits for the commit while the loop keeps running other tasks."""
    writer: GroupCommit[NewEvent, tuple[int, bool]] = GroupCommit(gated.flush, name="test-writer")

    async def scenario() -> tuple[list[tuple[int, bool]], bool]:
        waiting = asyncio.gather(*(writer.write(new_event(f"evt_{index}")) for index in range(20)))
        await asyncio.to_thread(gated.entered.wait, 10)
        loop_ran = True  # this task ran while twenty writes were waiting for a blocked commit
        gated.gate.set()
        return list(await waiting), loop_ran

    results, loop_ran = asyncio.run(scenario())
    writer.close()
    assert loop_ran
    assert sorted(results) == [(index + 1, True) for index in range(20)]
    assert len(gated.rows()) == 20


# -- through the inbox ----------------------------------------------------------------------------------------


async def deliver_all(inbox: Inbox, clock: FakeClock, bodies: list[bytes]) -> list[Receipt]:
    return list(
        await asyncio.gather(
            *(
                inbox.areceive("stripe", "stripe", secret=SECRET, headers=stripe_headers(body, clock.time()), body=body)
                for body in bodies
            )
        )
    )


def test_many_concurrent_deliveries_are_each_stored_once(open_inbox: OpenInbox) -> None:
    """200 deliveries at once, 50 of them sent twice: every id stored once, every delivery answered 200."""
    clock = FakeClock()
    inbox = open_inbox(clock=clock)
    bodies = [stripe_body(f"evt_{index}") for index in range(200)]
    receipts = asyncio.run(deliver_all(inbox, clock, bodies + bodies[:50]))
    assert all(receipt.status == 200 for receipt in receipts)
    outcomes = [receipt.outcome for receipt in receipts]
    assert outcomes.count(Outcome.ACCEPTED) == 200
    assert outcomes.count(Outcome.DUPLICATE) == 50
    stored = inbox.events(limit=1000)
    assert sorted(event.provider_event_id for event in stored) == sorted(f"evt_{index}" for index in range(200))
    by_id = {receipt.provider_event_id: receipt.event_id for receipt in receipts[:200]}
    assert all(by_id[receipt.provider_event_id] == receipt.event_id for receipt in receipts[200:])


def test_threads_share_the_group_commit_too(open_inbox: OpenInbox) -> None:
    """The sync receive() from many threads (a WSGI server) stores each delivery once and answers 200."""
    clock = FakeClock()
    inbox = open_inbox(clock=clock)
    bodies = [stripe_body(f"evt_t{index}") for index in range(64)]
    receipts: list[Receipt] = []

    def send(body: bytes) -> None:
        headers = stripe_headers(body, clock.time())
        receipts.append(inbox.receive("stripe", "stripe", secret=SECRET, headers=headers, body=body))

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(receipt.outcome for receipt in receipts) == [Outcome.ACCEPTED] * 64
    assert len(inbox.events(limit=1000)) == 64


def test_a_locked_database_answers_503_to_every_concurrent_delivery_and_stores_none(tmp_path: Path) -> None:
    """When the commit cannot happen, every delivery waiting on it answers 503 and nothing is stored."""
    clock = FakeClock()
    path = tmp_path / "inbox.db"
    inbox = Inbox(path, clock=clock, busy_timeout=0.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    bodies = [stripe_body(f"evt_locked_{index}") for index in range(30)]
    receipts = asyncio.run(deliver_all(inbox, clock, bodies))
    assert {(receipt.outcome, receipt.status) for receipt in receipts} == {(Outcome.STORAGE_FAILED, 503)}
    blocker.execute("ROLLBACK")
    blocker.close()
    assert inbox.events() == []
    retried = asyncio.run(deliver_all(inbox, clock, bodies))
    assert {receipt.outcome for receipt in retried} == {Outcome.ACCEPTED}
    inbox.close()


def test_a_closed_inbox_answers_503_from_async_code(tmp_path: Path) -> None:
    """areceive() on a closed inbox is a retryable 503, like receive()."""
    clock = FakeClock()
    inbox = Inbox(tmp_path / "inbox.db", clock=clock)
    inbox.close()
    (receipt,) = asyncio.run(deliver_all(inbox, clock, [stripe_body("evt_closed")]))
    assert receipt.status == 503


class StoppingClock(FakeClock):
    """The fake clock (it records sleeps) that sets ``stop`` after ``sleeps_before_stop`` sleeps."""

    def __init__(self, stop: asyncio.Event, sleeps_before_stop: int) -> None:
        super().__init__()
        self.stop = stop
        self.sleeps_before_stop = sleeps_before_stop

    async def asleep(self, seconds: float) -> None:
        await super().asleep(seconds)
        if len(self.sleeps) >= self.sleeps_before_stop:
            self.stop.set()


@pytest.mark.parametrize("limit", [100, 2])
def test_a_busy_worker_waits_gather_after_a_partial_batch_and_idle_when_empty(
    open_inbox: OpenInbox, limit: int
) -> None:
    """A full batch claims again at once, a partial one waits ``gather``, an empty pass waits ``idle``.

    With ``limit`` 2 the three events take a full pass (no wait) and a partial one; with 100, one partial pass.
    """

    async def scenario() -> tuple[list[str], list[float]]:
        stop = asyncio.Event()
        clock = StoppingClock(stop, sleeps_before_stop=2)
        inbox = open_inbox(clock=clock)
        handled: list[str] = []

        @inbox.on("stripe")
        def handle(event: object) -> None:
            handled.append(getattr(event, "provider_event_id", ""))

        await deliver_all(inbox, clock, [stripe_body(f"evt_{index}") for index in range(3)])
        await inbox.work(idle=2.0, limit=limit, gather=0.05, stop=stop)
        return handled, clock.sleeps

    handled, sleeps = asyncio.run(scenario())
    assert sorted(handled) == ["evt_0", "evt_1", "evt_2"]
    assert sleeps == [0.05, 2.0]


@pytest.mark.parametrize("location", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def test_one_batch_of_firsts_repeats_known_and_expired_ids_answers_each_item_in_order(
    location: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """200 items (several multi-row statements): new ids, repeats in the batch, ids stored before, an expired one."""
    from tether.webhooks._inbox_postgres import PostgresInboxStore

    if location == "sqlite":
        store: SQLiteInboxStore | PostgresInboxStore = SQLiteInboxStore(tmp_path / "b.db", busy_timeout=5, now=0.0)
    else:
        store = PostgresInboxStore(request.getfixturevalue("postgres_url"), connect_timeout=5, now=0.0)
    try:
        [(known, _)] = store.insert_many([new_event("known")], now=100.0, keep_since=0.0)
        settled = dataclasses.replace(new_event("old"), handled=False)  # stored processed, long ago
        [(old, _)] = store.insert_many([settled], now=1.0, keep_since=0.0)
        batch = [new_event(f"n{i}") for i in range(195)]
        batch[10:10] = [new_event("n3")]  # a repeat of an earlier item of the batch
        batch += [new_event("known"), new_event("n150"), new_event("old"), new_event("n194")]
        results = store.insert_many(batch, now=200.0, keep_since=50.0)
        assert len(results) == len(batch) == 200
        pairs = list(zip(batch, results, strict=True))
        ids = {item.provider_event_id: event_id for item, (event_id, created) in pairs if created}
        assert len(ids) == 196 and len(set(ids.values())) == 196  # every first delivery stored, once (and "old")
        assert results[10] == (ids["n3"], False)
        # "old" was finished and received before keep_since: the provider stopped retrying, so it is a new event
        assert results[-4:] == [(known, False), (ids["n150"], False), (ids["old"], True), (ids["n194"], False)]
        assert ids["old"] != old and store.get(old) is None
        # every item, in batch order, names the row of its own provider id
        for item, (event_id, _) in pairs:
            stored = store.get(event_id)
            assert stored is not None and stored.provider_event_id == item.provider_event_id
    finally:
        store.close()
