"""The HTTP clients, their transports, and pagination styles.

The transports are imported on first use: aiohttp and httpx take about 0.4 s to import, which ``import tether``
(the CLI, a script using only the policies) should not pay. A client imports its default transport when built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tether.client._client import AsyncClient, CallOptions, Client
from tether.client._flow import CallEnv, Send, Sleep, call_flow
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

if TYPE_CHECKING:
    from tether.client._aiohttp import AiohttpTransport
    from tether.client._httpx import HttpxAsyncTransport, HttpxTransport

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

_LAZY = {
    "AiohttpTransport": "tether.client._aiohttp",
    "HttpxAsyncTransport": "tether.client._httpx",
    "HttpxTransport": "tether.client._httpx",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tether.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
