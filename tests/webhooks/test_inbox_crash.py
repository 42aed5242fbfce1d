"""kill -9 loses nothing: a 2xx answer means the event is on disk, and a dead worker's event is run again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tether.testing import FakeClock
from tether.webhooks import EventStatus, Inbox, InboxEvent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

RECEIVER = textwrap.dedent(
    """
    import sys, time
    from tether.webhooks import Inbox
    from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers

    inbox = Inbox(sys.argv[1])
    for n in range(int(sys.argv[2])):
        body = stripe_body(f"evt_{n}")
        receipt = inbox.receive("stripe", "stripe", secret=SECRET, headers=stripe_headers(body, time.time()), body=body)
        print(receipt.status, receipt.event_id, flush=True)
    time.sleep(60)
    """
)

WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from tether.webhooks import Inbox

    inbox = Inbox(sys.argv[1], lease=30.0)

    @inbox.on("stripe")
    async def handle(event):
        print("running", event.id, flush=True)
        time.sleep(60)

    asyncio.run(inbox.run_pending())
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def kill9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert process.stdout is not None
    process.stdout.close()


def test_kill_9_right_after_answering_2xx_loses_nothing(tmp_path: Path) -> None:
    """Every delivery answered 200 by a process SIGKILLed just after is found pending on reopening."""
    path = tmp_path / "inbox.db"
    process = spawn(RECEIVER, str(path), "20")
    assert process.stdout is not None
    answers = [process.stdout.readline().split() for _ in range(20)]
    kill9(process)
    assert all(status == "200" for status, _ in answers)
    inbox = Inbox(path)
    events = inbox.events(limit=1000)
    assert sorted(e.id for e in events) == sorted(int(event_id) for _, event_id in answers)
    assert {e.status for e in events} == {EventStatus.PENDING}
    assert sorted(e.provider_event_id for e in events) == sorted(f"evt_{n}" for n in range(20))


def test_a_worker_killed_mid_handler_leaves_the_event_to_be_reclaimed(tmp_path: Path) -> None:
    """A worker SIGKILLed inside a handler loses nothing; after its lease another worker runs the event."""
    path = tmp_path / "inbox.db"
    receiver = Inbox(path)
    from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers

    body = stripe_body("evt_worker")
    assert receiver.receive("stripe", "stripe", secret=SECRET, headers=stripe_headers(body, time.time()), body=body).ok
    process = spawn(WORKER, str(path))
    assert process.stdout is not None
    assert process.stdout.readline().split()[0] == "running"
    kill9(process)
    clock = FakeClock(wall_start=time.time() + 31)  # past the dead worker's 30 s lease
    survivor = Inbox(path, clock=clock)
    ran: list[int] = []

    @survivor.on("stripe")
    def handle(event: InboxEvent) -> None:
        ran.append(event.attempts)

    assert asyncio.run(survivor.run_pending()) == 1
    assert ran == [2]
    assert survivor.events()[0].status is EventStatus.PROCESSED
