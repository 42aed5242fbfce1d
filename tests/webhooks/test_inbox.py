"""The durable inbox: persist before 2xx, deduplicate, refuse what must not be stored, retry, die, replay."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers
from tests.webhooks.conftest import OpenInbox
from tether.errors import ConfigurationError
from tether.testing import FakeClock
from tether.webhooks import EventStatus, Inbox, InboxEvent, Outcome, Receipt


class FixedRandom(random.Random):
    """Jitter pinned to one value, so backoff delays are exact."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inbox(open_inbox: OpenInbox, clock: FakeClock) -> Inbox:
    return open_inbox(clock=clock, random=FixedRandom(0.5), max_attempts=3)


def deliver(inbox: Inbox, clock: FakeClock, body: bytes, **extra_headers: str) -> Receipt:
    headers = {**stripe_headers(body, clock.time()), **extra_headers}
    return inbox.receive("stripe", "stripe", secret=SECRET, headers=headers, body=body)


def test_accepted_event_is_stored_with_its_raw_body_and_safe_headers(inbox: Inbox, clock: FakeClock) -> None:
    """A verified delivery answers 200 only with body, headers, source and provider id stored; no credential kept."""
    body = stripe_body("evt_1", customer="cus_1")
    receipt = deliver(inbox, clock, body, Authorization="Bearer sk_live_secret", Cookie="session=abc")
    assert receipt.outcome is Outcome.ACCEPTED
    assert (receipt.status, receipt.ok, receipt.provider_event_id) == (200, True, "evt_1")
    assert receipt.event_id is not None
    event = inbox.get(receipt.event_id)
    assert event is not None
    assert (event.source, event.provider_event_id, event.type) == ("stripe", "evt_1", "payment_intent.succeeded")
    assert event.status is EventStatus.PENDING
    assert event.raw == body
    assert event.payload["data"] == {"customer": "cus_1"}
    stored = dict(event.headers)
    assert stored["Stripe-Signature"].startswith("t=")
    assert stored["Authorization"] == "[REDACTED]"
    assert stored["Cookie"] == "[REDACTED]"
    assert "sk_live_secret" not in repr(event.headers)
    assert "session=abc" not in repr(event.headers)
    assert event.received_at == clock.time()


def test_a_duplicate_answers_200_keeps_the_first_body_and_runs_once(inbox: Inbox, clock: FakeClock) -> None:
    """The same provider id again (even with another body) is a 200 duplicate; the first delivery wins."""
    runs: list[bytes] = []

    @inbox.on("stripe", "*")
    def handle(event: InboxEvent) -> None:
        runs.append(event.raw)

    first = deliver(inbox, clock, stripe_body("evt_dup", amount=1))
    asyncio.run(inbox.run_pending())
    clock.advance(3 * 86_400)  # Stripe's retries go on for three days
    second = deliver(inbox, clock, stripe_body("evt_dup", amount=999))
    assert second.outcome is Outcome.DUPLICATE
    assert (second.status, second.event_id) == (200, first.event_id)
    assert asyncio.run(inbox.run_pending()) == 0
    assert runs == [stripe_body("evt_dup", amount=1)]
    assert len(inbox.events()) == 1


def test_the_same_id_after_the_retention_window_is_a_new_event(open_inbox: OpenInbox, clock: FakeClock) -> None:
    """Deduplication lasts `retention` seconds for finished events; after that the id names a new event."""
    inbox = open_inbox(clock=clock, retention=100.0)
    first = deliver(inbox, clock, stripe_body("evt_old"))
    asyncio.run(inbox.run_pending())
    clock.advance(101)
    again = deliver(inbox, clock, stripe_body("evt_old"))
    assert again.outcome is Outcome.ACCEPTED
    assert again.event_id != first.event_id


def test_a_pending_event_stays_deduplicated_past_the_window(open_inbox: OpenInbox, clock: FakeClock) -> None:
    """An event not yet processed is never replaced, however old: it would be lost otherwise."""
    inbox = open_inbox(clock=clock, retention=100.0)
    first = deliver(inbox, clock, stripe_body("evt_waiting"))
    clock.advance(1000)
    assert deliver(inbox, clock, stripe_body("evt_waiting")).event_id == first.event_id


def test_a_bad_signature_answers_401_is_counted_and_not_stored(inbox: Inbox, clock: FakeClock) -> None:
    """Forged, unsigned and stale deliveries get 401 with the failure's name, counted per source, nothing stored."""
    body = stripe_body("evt_forged")
    forged = inbox.receive(
        "stripe", "stripe", secret=SECRET, headers=stripe_headers(body, clock.time(), secret="other"), body=body
    )
    unsigned = inbox.receive("stripe", "stripe", secret=SECRET, headers={}, body=body)
    stale = inbox.receive(
        "stripe", "stripe", secret=SECRET, headers=stripe_headers(body, clock.time() - 3600), body=body
    )
    other_body = inbox.receive(
        "stripe", "stripe", secret=SECRET, headers=stripe_headers(b"{}", clock.time()), body=body
    )
    assert [r.status for r in (forged, unsigned, stale, other_body)] == [401] * 4
    assert [r.reason for r in (forged, unsigned, stale, other_body)] == [
        "SignatureMismatch",
        "MissingSignatureHeader",
        "TimestampOutsideTolerance",
        "SignatureMismatch",
    ]
    assert all(r.event_id is None and not r.ok for r in (forged, unsigned, stale))
    assert inbox.rejections == {"stripe": 4}
    assert inbox.events() == []
    assert SECRET not in repr(forged)


def test_a_body_over_the_limit_answers_413_before_verifying(open_inbox: OpenInbox, clock: FakeClock) -> None:
    """A body over max_body is refused with 413 and never stored nor counted as a forgery."""
    inbox = open_inbox(clock=clock, max_body=64)
    body = stripe_body("evt_big", note="x" * 100)
    receipt = deliver(inbox, clock, body)
    assert (receipt.outcome, receipt.status) == (Outcome.TOO_LARGE, 413)
    assert inbox.events() == []
    assert inbox.rejections == {}


def test_huge_headers_answer_431_and_are_not_stored(inbox: Inbox, clock: FakeClock) -> None:
    """Headers beyond max_headers (64 KiB by default) are refused whole."""
    receipt = deliver(inbox, clock, stripe_body("evt_h"), **{f"X-Pad-{i}": "y" * 1000 for i in range(80)})
    assert (receipt.outcome, receipt.status) == (Outcome.HEADERS_TOO_LARGE, 431)
    assert inbox.events() == []


def test_a_huge_signature_header_is_a_401_not_a_crash(inbox: Inbox, clock: FakeClock) -> None:
    """A 60 KB signature header is malformed: 401, nothing stored."""
    body = stripe_body("evt_sig")
    receipt = inbox.receive(
        "stripe", "stripe", secret=SECRET, headers={"Stripe-Signature": "t=1,v1=" + "a" * 60_000}, body=body
    )
    assert (receipt.status, receipt.reason) == (401, "MalformedSignatureHeader")
    assert inbox.events() == []


def test_non_utf8_body_and_header_bytes_are_stored_exactly(inbox: Inbox, clock: FakeClock) -> None:
    """Bytes that are not UTF-8 are kept as received; without a provider id the body's hash deduplicates."""
    body = b"\xff\xfe\x00 not json \x80"
    headers = [(k.encode(), v.encode()) for k, v in stripe_headers(body, clock.time()).items()]
    headers.append((b"x-odd", b"\xe9\xff"))
    receipt = inbox.receive("stripe", "stripe", secret=SECRET, headers=headers, body=body)
    assert receipt.status == 200
    assert receipt.provider_event_id is not None
    assert receipt.provider_event_id.startswith("sha256:")
    assert receipt.event_id is not None
    event = inbox.get(receipt.event_id)
    assert event is not None
    assert event.raw == body
    assert event.payload is None
    assert dict(event.headers)["x-odd"] == "\xe9\xff"
    again = inbox.receive("stripe", "stripe", secret=SECRET, headers=headers, body=body)
    assert again.outcome is Outcome.DUPLICATE


def test_a_locked_database_answers_503_and_a_retry_then_succeeds(tmp_path: Path, clock: FakeClock) -> None:
    """When storage fails the provider must retry: 503, nothing half-written; the retry is accepted."""
    path = tmp_path / "inbox.db"
    inbox = Inbox(path, clock=clock, busy_timeout=0.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    body = stripe_body("evt_locked")
    receipt = deliver(inbox, clock, body)
    assert (receipt.outcome, receipt.status, receipt.ok) == (Outcome.STORAGE_FAILED, 503, False)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert deliver(inbox, clock, body).outcome is Outcome.ACCEPTED


def test_a_closed_store_answers_503(inbox: Inbox, clock: FakeClock) -> None:
    """Any storage error, not only SQLite's busy lock, becomes a retryable 503."""
    inbox.close()
    assert deliver(inbox, clock, stripe_body("evt_closed")).status == 503


def test_a_read_only_database_answers_503(tmp_path: Path, clock: FakeClock) -> None:
    """A database the process may read but not write (a full or read-only disk) refuses with 503."""
    path = tmp_path / "inbox.db"
    Inbox(path, clock=clock).close()
    inbox = Inbox(f"file:{path}?mode=ro", clock=clock, busy_timeout=0.0)
    assert deliver(inbox, clock, stripe_body("evt_ro")).status == 503


def test_handler_failure_retries_with_backoff_then_succeeds(inbox: Inbox, clock: FakeClock) -> None:
    """A failing handler keeps the event pending until its backoff elapses; the retry then completes it."""
    calls: list[int] = []

    @inbox.on("stripe", "payment_intent.succeeded")
    async def handle(event: InboxEvent) -> None:
        calls.append(event.attempts)
        if len(calls) == 1:
            raise RuntimeError("downstream unavailable")

    receipt = deliver(inbox, clock, stripe_body("evt_retry"))
    assert receipt.event_id is not None
    assert asyncio.run(inbox.run_pending()) == 1
    event = inbox.get(receipt.event_id)
    assert event is not None
    assert event.status is EventStatus.PENDING
    assert event.last_error == "RuntimeError: downstream unavailable"
    assert event.next_attempt_at == clock.time() + 5.0  # 0.5 x the first ceiling of 10 s
    clock.advance(4.9)
    assert asyncio.run(inbox.run_pending()) == 0
    clock.advance(0.2)
    assert asyncio.run(inbox.run_pending()) == 1
    done = inbox.get(receipt.event_id)
    assert done is not None
    assert (done.status, done.attempts, done.last_error, done.processed_at) == (
        EventStatus.PROCESSED,
        2,
        None,
        clock.time(),
    )
    assert calls == [1, 2]


def test_an_event_is_dead_after_max_attempts_and_its_error_is_redacted(inbox: Inbox, clock: FakeClock) -> None:
    """max_attempts failures make the event dead (kept, with the last error), never dropped nor retried forever."""

    @inbox.on("stripe")
    def handle(event: InboxEvent) -> None:
        raise ValueError('upstream said {"api_key": "sk_live_leak"}')

    receipt = deliver(inbox, clock, stripe_body("evt_dead"))
    assert receipt.event_id is not None
    for _ in range(3):
        assert asyncio.run(inbox.run_pending()) == 1
        clock.advance(3600)
    assert asyncio.run(inbox.run_pending()) == 0
    event = inbox.get(receipt.event_id)
    assert event is not None
    assert (event.status, event.attempts) == (EventStatus.DEAD, 3)
    assert event.last_error is not None
    assert "sk_live_leak" not in event.last_error
    assert event.last_error.startswith("ValueError")
    assert [e.id for e in inbox.events(status="dead")] == [receipt.event_id]


def test_an_event_without_handler_is_marked_processed(inbox: Inbox, clock: FakeClock) -> None:
    """No handler is not a failure; replay runs it once a handler exists."""
    receipt = deliver(inbox, clock, stripe_body("evt_nobody"))
    assert receipt.event_id is not None
    assert asyncio.run(inbox.run_pending()) == 1
    event = inbox.get(receipt.event_id)
    assert event is not None
    assert event.status is EventStatus.PROCESSED


def test_replay_by_id_by_source_and_range_and_all_dead(inbox: Inbox, clock: FakeClock) -> None:
    """Processed and dead events return to pending by id, by source and time range, or all dead ones."""
    seen: list[str] = []
    failing = {"evt_c"}

    @inbox.on("stripe")
    def handle(event: InboxEvent) -> None:
        seen.append(event.provider_event_id)
        if event.provider_event_id in failing:
            raise RuntimeError("boom")

    ids = {}
    for name in ("evt_a", "evt_b", "evt_c"):
        receipt = deliver(inbox, clock, stripe_body(name))
        assert receipt.event_id is not None
        ids[name] = receipt.event_id
        clock.advance(100)
    for _ in range(3):
        asyncio.run(inbox.run_pending())
        clock.advance(3600)
    assert inbox.get(ids["evt_c"]).status is EventStatus.DEAD  # type: ignore[union-attr]
    seen.clear()

    assert inbox.replay(ids["evt_a"]) == 1
    assert inbox.replay(ids["evt_a"]) == 0  # already pending: nothing to re-queue
    asyncio.run(inbox.run_pending())
    assert seen == ["evt_a"]

    seen.clear()
    start = 1_700_000_000.0
    assert inbox.replay(source="stripe", since=start + 50, until=start + 150) == 1  # only evt_b
    assert inbox.replay(source="github") == 0
    asyncio.run(inbox.run_pending())
    assert seen == ["evt_b"]

    seen.clear()
    failing.clear()
    assert inbox.replay_dead() == 1
    asyncio.run(inbox.run_pending())
    assert seen == ["evt_c"]
    replayed = inbox.get(ids["evt_c"])
    assert replayed is not None
    assert (replayed.status, replayed.attempts) == (EventStatus.PROCESSED, 1)
    with pytest.raises(ConfigurationError):
        inbox.replay()


def test_a_crashed_workers_lease_expires_and_the_event_is_reclaimed(open_inbox: OpenInbox, clock: FakeClock) -> None:
    """A worker that dies mid-handler leaves the event processing; after the lease another worker runs it."""
    started = asyncio.Event()
    first = open_inbox(clock=clock, lease=60.0)

    @first.on("stripe")
    async def hang(event: InboxEvent) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes: the worker dies here

    receipt = deliver(first, clock, stripe_body("evt_lease"))
    assert receipt.event_id is not None

    async def crash() -> None:
        task = asyncio.create_task(first.run_pending())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(crash())
    assert first.get(receipt.event_id).status is EventStatus.PROCESSING  # type: ignore[union-attr]

    second = open_inbox(clock=clock, lease=60.0)
    ran: list[int] = []
    second.on("stripe")(lambda event: ran.append(event.attempts))
    assert asyncio.run(second.run_pending()) == 0  # the lease still holds
    clock.advance(60)
    assert asyncio.run(second.run_pending()) == 1
    assert ran == [2]
    assert second.get(receipt.event_id).status is EventStatus.PROCESSED  # type: ignore[union-attr]
    # The dead worker's late completion cannot overwrite the new owner's result.
    assert first.get(receipt.event_id).status is EventStatus.PROCESSED  # type: ignore[union-attr]


def test_a_lease_lost_on_the_last_attempt_makes_the_event_dead(open_inbox: OpenInbox, clock: FakeClock) -> None:
    """An event that kills its worker every time is dead after max_attempts leases, not reclaimed forever."""
    inbox = open_inbox(clock=clock, lease=10.0, max_attempts=1)

    @inbox.on("stripe")
    async def hang(event: InboxEvent) -> None:
        raise asyncio.CancelledError  # the worker dies inside the handler

    receipt = deliver(inbox, clock, stripe_body("evt_poison"))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(inbox.run_pending())
    clock.advance(10)
    assert asyncio.run(inbox.run_pending()) == 0
    event = inbox.get(receipt.event_id)  # type: ignore[arg-type]
    assert event is not None
    assert event.status is EventStatus.DEAD
    assert event.last_error is not None
    assert "lease expired" in event.last_error


def test_events_with_the_same_key_run_one_at_a_time_in_arrival_order(inbox: Inbox, clock: FakeClock) -> None:
    """With order_by, a failing event holds back later events of its key, not those of other keys."""
    seen: list[str] = []
    fail_once = {"evt_1"}

    @inbox.on("stripe", "*", order_by=lambda event: event.payload["data"]["customer"])
    def handle(event: InboxEvent) -> None:
        seen.append(event.provider_event_id)
        if event.provider_event_id in fail_once:
            fail_once.discard(event.provider_event_id)
            raise RuntimeError("try again")

    deliver(inbox, clock, stripe_body("evt_1", customer="alice"))
    deliver(inbox, clock, stripe_body("evt_2", customer="alice"))
    deliver(inbox, clock, stripe_body("evt_3", customer="bob"))
    deliver(inbox, clock, stripe_body("evt_4"))  # no customer: order_by raises, the event is simply unordered
    asyncio.run(inbox.run_pending())
    assert seen == ["evt_1", "evt_3", "evt_4"]  # evt_2 waits for evt_1's retry
    clock.advance(3600)
    asyncio.run(inbox.run_pending())
    assert seen == ["evt_1", "evt_3", "evt_4", "evt_1"]  # one per key per pass: evt_2 only after evt_1 finished
    asyncio.run(inbox.run_pending())
    assert seen[-1] == "evt_2"


def test_work_loop_runs_until_stopped_and_sleeps_on_the_clock(inbox: Inbox, clock: FakeClock) -> None:
    """The worker loop handles events as they arrive and idles on the injected clock, not wall time."""
    stop = asyncio.Event()
    seen: list[str] = []

    @inbox.on("stripe")
    def handle(event: InboxEvent) -> None:
        seen.append(event.provider_event_id)
        stop.set()

    deliver(inbox, clock, stripe_body("evt_w"))
    asyncio.run(inbox.work(stop=stop, idle=2.0))
    assert seen == ["evt_w"]


def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """One migration table records the schema version; reopening does not re-apply; a newer schema is refused."""
    path = tmp_path / "inbox.db"
    Inbox(path, clock=clock).close()
    Inbox(f"sqlite:///{path}", clock=clock).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version, name FROM tether_migrations").fetchall() == [
        (1, "webhook inbox"),
        (2, "connections vault"),
        (3, "oauth states"),
    ]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.execute("INSERT INTO tether_migrations VALUES (99, 'future', 0)")
    db.commit()
    db.close()
    with pytest.raises(ConfigurationError, match="newer"):
        Inbox(path, clock=clock)


def test_unsupported_urls_and_settings_are_configuration_errors(tmp_path: Path) -> None:
    """Unknown URL schemes and impossible settings fail at construction."""
    with pytest.raises(ConfigurationError, match="not supported"):
        Inbox("mysql://localhost/tether")
    with pytest.raises(ConfigurationError):
        Inbox(tmp_path / "x.db", max_attempts=0)
    with pytest.raises(ConfigurationError, match="Cannot open"):
        Inbox(tmp_path / "missing" / "dir" / "x.db")
    inbox = Inbox(tmp_path / "ok.db")
    with pytest.raises(ConfigurationError, match="bytes"):
        inbox.receive("stripe", "stripe", secret=SECRET, headers={}, body="text")  # type: ignore[arg-type]


def test_unhandled_processed_stores_what_no_handler_wants_as_processed_and_leaves_the_rest_to_the_worker(
    open_inbox: OpenInbox, clock: FakeClock
) -> None:
    """``unhandled="processed"``: no claim or completion for an event nobody handles; a handled one is run as usual."""
    inbox = open_inbox(clock=clock, unhandled="processed")
    ran: list[str] = []

    @inbox.on("stripe", "invoice.paid")
    def on_invoice(event: InboxEvent) -> None:
        ran.append(event.provider_event_id)

    nobody = deliver(inbox, clock, stripe_body("evt_nobody"))  # type payment_intent.succeeded: no handler
    wanted = deliver(inbox, clock, stripe_body("evt_wanted", event_type="invoice.paid"))
    assert (nobody.outcome, wanted.outcome) == (Outcome.ACCEPTED, Outcome.ACCEPTED)
    assert nobody.event_id is not None and wanted.event_id is not None
    stored = inbox.get(nobody.event_id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.processed_at) == (EventStatus.PROCESSED, 0, clock.time())
    assert inbox.get(wanted.event_id).status is EventStatus.PENDING  # type: ignore[union-attr]
    assert asyncio.run(inbox.run_pending()) == 1  # only the wanted one is claimed
    assert ran == ["evt_wanted"]
    # a duplicate of the settled one is still a duplicate; replay runs it once a handler exists
    assert deliver(inbox, clock, stripe_body("evt_nobody")).outcome is Outcome.DUPLICATE
    inbox.on("stripe")(on_invoice)
    assert inbox.replay(event_id=nobody.event_id) == 1
    assert asyncio.run(inbox.run_pending()) == 1
    assert ran == ["evt_wanted", "evt_nobody"]


def test_by_default_an_unhandled_delivery_waits_for_a_worker_that_may_have_handlers(
    open_inbox: OpenInbox, clock: FakeClock
) -> None:
    """A web process without handlers must not settle events that a worker process with handlers will run."""
    receiving = open_inbox(clock=clock)
    receipt = deliver(receiving, clock, stripe_body("evt_later"))
    assert receipt.event_id is not None
    assert receiving.get(receipt.event_id).status is EventStatus.PENDING  # type: ignore[union-attr]
    working = open_inbox(clock=clock)
    ran: list[str] = []
    working.on("stripe")(lambda event: ran.append(event.provider_event_id))
    assert asyncio.run(working.run_pending()) == 1
    assert ran == ["evt_later"]


def test_unhandled_must_be_pending_or_processed(open_inbox: OpenInbox) -> None:
    with pytest.raises(ConfigurationError, match="unhandled"):
        open_inbox(unhandled="dropped")


def test_a_handler_running_longer_than_its_lease_keeps_its_event(open_inbox: OpenInbox) -> None:
    """Real time: a 0.3 s lease, a 1.2 s handler, a rival worker claiming every 50 ms: it never gets the event.

    (Without renewal the rival takes it once the lease ends: see the crashed-worker test above.)
    """
    first = open_inbox(lease=0.3)
    rival = open_inbox(lease=0.3)
    runs: list[str] = []
    started = asyncio.Event()

    async def slow(event: InboxEvent) -> None:
        runs.append("first")
        started.set()
        await asyncio.sleep(1.2)

    first.on("stripe")(slow)
    rival.on("stripe")(lambda event: runs.append("rival"))
    body = stripe_body("evt_slow")
    receipt = first.receive("stripe", "stripe", secret=SECRET, headers=stripe_headers(body, time.time()), body=body)
    assert receipt.outcome is Outcome.ACCEPTED and receipt.event_id is not None

    async def scenario() -> int:
        working = asyncio.create_task(first.run_pending())
        await started.wait()  # the first worker has claimed the event and runs its handler
        claimed_by_rival = 0
        while not working.done():
            claimed_by_rival += await rival.run_pending()
            await asyncio.sleep(0.05)
        assert await working == 1
        return claimed_by_rival

    assert asyncio.run(scenario()) == 0
    assert runs == ["first"]
    stored = first.get(receipt.event_id)
    assert stored is not None and stored.status is EventStatus.PROCESSED and stored.attempts == 1
