"""The inbox as a raw ASGI endpoint: read the body (bounded), receive it, answer the receipt's status.

Verification runs on the event loop (an HMAC over a bounded body costs microseconds; a thread hop per request
costs more); the durable write waits on the inbox's group commit without blocking the loop.

Plain ASGI, so it mounts in Starlette or FastAPI (``Route("/webhooks/stripe", endpoint)``) and in any other
ASGI server without a framework dependency.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from tether.webhooks._receipt import Outcome, Receipt
from tether.webhooks._scheme import Scheme

if TYPE_CHECKING:
    from tether.webhooks._inbox import Inbox

__all__ = ["InboxEndpoint"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


async def _answer(send: Send, status: int, document: dict[str, Any] | bytes) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _document(receipt: Receipt) -> dict[str, Any] | bytes:
    if receipt.reason is None and receipt.event_id is not None:  # accepted or duplicate: the JSON without a dumps
        return b'{"status": "%s", "id": %d}' % (receipt.outcome.value.encode(), receipt.event_id)
    document: dict[str, Any] = {"status": receipt.outcome.value}
    if receipt.event_id is not None:
        document["id"] = receipt.event_id
    if receipt.reason is not None:
        document["reason"] = receipt.reason
    return document


class InboxEndpoint:
    """An ASGI app that feeds ``POST`` deliveries to ``inbox.receive(source, scheme, ...)``.

    A class, not a function, so Starlette's ``Route`` treats it as an ASGI app rather than a request handler.
    """

    __slots__ = ("_inbox", "_max_body", "_scheme", "_secret", "_source", "_url")

    def __init__(
        self,
        inbox: Inbox,
        source: str,
        scheme: str | Scheme,
        *,
        secret: str | Sequence[str],
        url: str | None,
        max_body: int,
    ) -> None:
        self._inbox = inbox
        self._source = source
        self._scheme = scheme
        self._secret = secret
        self._url = url
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"The webhook endpoint serves HTTP only, not {scope['type']!r}")
        if scope["method"] != "POST":
            await _answer(send, 405, {"status": "method_not_allowed"})
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the provider gave up; it will deliver again
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                receipt = Receipt(outcome=Outcome.TOO_LARGE, reason=f"body over {self._max_body} bytes")
                await _answer(send, receipt.status, _document(receipt))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        receipt = await self._inbox.areceive(
            self._source,
            self._scheme,
            secret=self._secret,
            headers=list(scope.get("headers", [])),
            body=b"".join(chunks),
            url=self._url,
        )
        await _answer(send, receipt.status, _document(receipt))

    def __repr__(self) -> str:
        return f"InboxEndpoint(source={self._source!r})"  # never the secret
