"""The HTTP clients, their transports, and pagination styles."""

from tether.client._aiohttp import AiohttpTransport
from tether.client._client import AsyncClient, CallOptions, Client
from tether.client._flow import CallEnv, Send, Sleep, call_flow
from tether.client._httpx import HttpxAsyncTransport, HttpxTransport
from tether.client._pagination import (
    Cursor,
    LinkHeader,
    NextURL,
    Offset,
    Page,
    PageNumber,
    PageWalker,
    Paginator,
)
from tether.client._transport import DEFAULT_MAX_RESPONSE_BYTES, AsyncTransport, SyncTransport

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "AsyncClient",
    "AsyncTransport",
    "CallEnv",
    "CallOptions",
    "Client",
    "Cursor",
    "HttpxAsyncTransport",
    "HttpxTransport",
    "LinkHeader",
    "NextURL",
    "Offset",
    "Page",
    "PageNumber",
    "PageWalker",
    "Paginator",
    "Send",
    "Sleep",
    "SyncTransport",
    "call_flow",
]
