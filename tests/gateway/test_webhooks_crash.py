"""Crash test: signed GitHub deliveries at a real gateway process that is SIGKILLed and restarted at random moments.

The sender behaves like a provider: anything but a 2xx (or a dropped connection) is unacknowledged and sent again
later, and some deliveries are sent twice on purpose. The handler is idempotent (``INSERT OR IGNORE`` keyed by the
provider's delivery id in its own SQLite file) and counts its runs. Every delivery must end up stored once in the
inbox and handled, none lost and nothing extra; handler runs may exceed N (delivery to handlers is at least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tether.webhooks import Inbox

pytestmark = pytest.mark.integration

SECRET = "gh-crash-test-secret"
EVENTS = 200
DUPLICATES = 20
KILLS = 5
SEED = 20240604
SEND_DEADLINE = 20.0
DRAIN_DEADLINE = 10.0

SERVER = """
import sqlite3
import sys
import time
from pathlib import Path

import uvicorn

from tether.gateway.app import create_app
from tether.gateway.config import GatewaySettings, WebhookSource
from tether.webhooks import Inbox

port, database, results, secret = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
# A short lease so that events claimed by a killed worker are claimed again soon after the restart.
inbox = Inbox(database, lease=2.0, max_attempts=1000)
store = sqlite3.connect(results, isolation_level=None, timeout=10)
store.execute("PRAGMA journal_mode=WAL")
store.execute("CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY)")
store.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")


@inbox.on("gh", "*")
def handle(event):
    # Count the run as it starts (its own commit), work a little so kills land mid-handler, then record the
    # outcome idempotently: a run cut short by SIGKILL shows as an extra run, never as an extra outcome.
    store.execute(
        "INSERT INTO runs (id, n) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1",
        (event.provider_event_id,),
    )
    time.sleep(0.005)
    store.execute("INSERT OR IGNORE INTO handled (id) VALUES (?)", (event.provider_event_id,))


settings = GatewaySettings(
    database=database,
    sources=(WebhookSource(name="gh", scheme="github", secrets=(secret,)),),
    worker_idle=0.02,
)
uvicorn.run(create_app(settings, inbox=inbox), host="127.0.0.1", port=port, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"action": "opened", "delivery": delivery}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "pull_request",
        "Content-Type": "application/json",
    }
    return body, headers


class _Server:
    """The gateway subprocess: start, wait until healthy, SIGKILL, stop cleanly."""

    def __init__(self, tmp_path: Path) -> None:
        self.script = tmp_path / "server.py"
        self.script.write_text(SERVER)
        self.database = tmp_path / "inbox.db"
        self.results = tmp_path / "results.db"
        self.log = tmp_path / "server.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), str(self.port), str(self.database), str(self.results), SECRET],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise AssertionError("server did not come up")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _plan(rng: random.Random) -> tuple[list[str], list[str]]:
    """The distinct delivery ids and the send order: each id once, plus deliberate duplicates placed later."""
    ids = [f"delivery-{i:04d}" for i in range(EVENTS)]
    order = list(ids)
    for _ in range(DUPLICATES):
        index = rng.randrange(EVENTS // 2)
        order.insert(rng.randrange(index + 1, len(order) + 1), ids[index])
    return ids, order


def test_sigkill_and_restart_lose_nothing_and_handle_each_event_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ids, order = _plan(rng)
    kill_at = sorted(rng.sample(range(10, len(order) - 10), KILLS))
    kill_delays = [rng.uniform(0.0, 0.05) for _ in range(KILLS)]
    server = _Server(tmp_path)
    progress = {"sent": 0}
    progress_changed = threading.Condition()
    kills: list[int] = []
    killer_errors: list[BaseException] = []
    stop_killer = threading.Event()

    def reached(threshold: int) -> Callable[[], bool]:
        return lambda: progress["sent"] >= threshold or stop_killer.is_set()

    def killer() -> None:
        try:
            for threshold, delay in zip(kill_at, kill_delays, strict=True):
                with progress_changed:
                    progress_changed.wait_for(reached(threshold), timeout=SEND_DEADLINE)
                if stop_killer.is_set():
                    return
                time.sleep(delay)
                server.kill()
                kills.append(progress["sent"])
                server.start()
        except BaseException as exc:  # reported by the main thread
            killer_errors.append(exc)

    attempts = 0
    resends = 0
    statuses: dict[str, int] = {}
    acknowledged: set[int] = set()
    first_sent: set[int] = set()
    keyed = list(enumerate(order))
    queue = deque(keyed)
    started = time.monotonic()
    thread = threading.Thread(target=killer, name="killer", daemon=True)
    server.start()
    try:
        thread.start()
        with httpx.Client(base_url=server.url, timeout=2.0) as client:
            deadline = time.monotonic() + SEND_DEADLINE
            while queue:
                assert time.monotonic() < deadline, f"{len(queue)} deliveries still unacknowledged"
                slot, delivery = queue.popleft()
                body, headers = _signed(delivery)
                attempts += 1
                if slot in first_sent:
                    resends += 1
                first_sent.add(slot)
                try:
                    response = client.post("/webhooks/gh", content=body, headers=headers)
                    ok = response.is_success
                    answer = response.json().get("status", "?") if ok else str(response.status_code)
                    statuses[answer] = statuses.get(answer, 0) + 1
                except httpx.TransportError:
                    ok = False
                    statuses["connection error"] = statuses.get("connection error", 0) + 1
                if ok:
                    acknowledged.add(slot)
                    with progress_changed:
                        progress["sent"] += 1
                        progress_changed.notify_all()
                else:
                    queue.append((slot, delivery))  # unacknowledged: the provider sends it again later
                    time.sleep(0.02)
        thread.join(timeout=SEND_DEADLINE)
        assert not thread.is_alive(), "the killer thread did not finish"
        assert not killer_errors, killer_errors
        assert len(kills) == KILLS
        assert len(acknowledged) == len(order)
        # Each id is accepted at most once; every other acknowledged send (deliberate duplicates, and resends of
        # deliveries stored before a kill cut off their answer) is answered "duplicate".
        assert statuses.get("accepted", 0) <= EVENTS
        assert statuses.get("accepted", 0) + statuses.get("duplicate", 0) == len(order)

        # The last server runs undisturbed: let its worker drain (expired leases of killed workers included).
        with Inbox(server.database) as inbox:
            drain_deadline = time.monotonic() + DRAIN_DEADLINE
            while inbox.events(status="pending", limit=1) or inbox.events(status="processing", limit=1):
                assert time.monotonic() < drain_deadline, "the worker did not drain the inbox in time"
                time.sleep(0.05)
    finally:
        stop_killer.set()
        with progress_changed:
            progress_changed.notify_all()
        thread.join(timeout=20)
        server.stop()

    with Inbox(server.database) as inbox:
        events = inbox.events(limit=10 * EVENTS)
    stored = [event.provider_event_id for event in events]
    assert sorted(stored) == ids, "every delivery stored exactly once, nothing extra"
    assert {event.source for event in events} == {"gh"}
    assert {str(event.status) for event in events} == {"processed"}

    with sqlite3.connect(server.results) as results:
        handled = sorted(row[0] for row in results.execute("SELECT id FROM handled"))
        runs = dict(results.execute("SELECT id, n FROM runs").fetchall())
    results.close()
    assert handled == ids, "every delivery handled, none lost, nothing extra"
    assert sorted(runs) == ids
    handler_runs = sum(runs.values())
    assert handler_runs >= EVENTS
    print(
        f"\ncrash test: N={EVENTS} duplicates={DUPLICATES} kills={len(kills)} (after acks {kills}) "
        f"posts={attempts} resends={resends} statuses={statuses} handler_runs={handler_runs} "
        f"re-runs={handler_runs - EVENTS} events_rerun={sum(1 for n in runs.values() if n > 1)} "
        f"elapsed={time.monotonic() - started:.1f}s"
    )
