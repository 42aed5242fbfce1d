"""The inbox's ASGI endpoint: raw ASGI answers, bounded body reading, and mounting in Starlette."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from tests.webhooks._inbox_support import SECRET, stripe_body, stripe_headers
from tether.testing import FakeClock
from tether.webhooks import Inbox


def call(
    app: Any, method: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/"
) -> tuple[int, dict[str, Any]]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "headers": headers, "path": path, "root_path": "", "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_asgi_endpoint_accepts_refuses_and_bounds_the_body(tmp_path: Path) -> None:
    """POST answers the receipt's status; other methods 405; a body over the limit 413 while streaming."""
    clock = FakeClock()
    inbox = Inbox(tmp_path / "inbox.db", clock=clock, max_body=200)
    app = inbox.asgi("stripe", "stripe", secret=SECRET)
    body = stripe_body("evt_asgi")
    headers = [(k.lower().encode(), v.encode()) for k, v in stripe_headers(body, clock.time()).items()]
    assert call(app, "POST", headers, [body[:10], body[10:]]) == (200, {"status": "accepted", "id": 1})
    assert call(app, "POST", headers, [body]) == (200, {"status": "duplicate", "id": 1})
    assert call(app, "POST", [], [body])[0] == 401
    assert call(app, "GET", headers, [b""])[0] == 405
    status, document = call(app, "POST", headers, [b"x" * 150, b"x" * 150, b"never read"])
    assert (status, document["status"]) == (413, "too_large")
    assert len(inbox.events()) == 1


def test_asgi_endpoint_mounts_in_starlette(tmp_path: Path) -> None:
    """Mounted in a Starlette app, the endpoint is routed to and answers (Starlette's TestClient needs httpx2)."""
    clock = FakeClock()
    inbox = Inbox(tmp_path / "inbox.db", clock=clock)
    app = Starlette(routes=[Route("/webhooks/stripe", inbox.asgi("stripe", "stripe", secret=SECRET))])
    body = stripe_body("evt_starlette")
    headers = [(k.lower().encode(), v.encode()) for k, v in stripe_headers(body, clock.time()).items()]
    status, document = call(app, "POST", headers, [body], path="/webhooks/stripe")
    assert (status, document["status"]) == (200, "accepted")
    assert inbox.events()[0].provider_event_id == "evt_starlette"
