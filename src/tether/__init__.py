"""tether: third-party API integrations that survive the real world.

The public API is re-exported here; ``__all__`` is the contract::

    import tether

    async with tether.AsyncClient("https://api.example.com", auth=tether.Bearer(token),
                                  policy=tether.Policy(deadline=10, retries=3)) as api:
        me = (await api.get("/me")).json()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether import errors
from tether._clock import Clock, SystemClock
from tether._models import Headers, Request, Response
from tether._version import __version__
from tether.auth import APIKey, Auth, Basic, Bearer, StaticAuth
from tether.client import (
    AsyncClient,
    AsyncTransport,
    Client,
    Cursor,
    LinkHeader,
    NextURL,
    Offset,
    PageNumber,
    Paginator,
    SyncTransport,
)
from tether.errors import (
    BadRequest,
    BulkheadFull,
    CircuitOpen,
    ClientError,
    ConfigurationError,
    Conflict,
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    Forbidden,
    HTTPStatusError,
    NotFound,
    PaginationError,
    RateLimited,
    ReadError,
    ResponseTooLarge,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    ServerError,
    SharedStateUnavailable,
    TetherError,
    TransportError,
    TransportTimeout,
    Unauthorized,
    Unprocessable,
)
from tether.events import Hook
from tether.policies import Backoff, Bulkhead, CircuitBreaker, Idempotency, Policy, RateLimit, RetryBudget

__all__ = [
    "APIKey",
    "AiohttpTransport",
    "AsyncClient",
    "AsyncRedisState",
    "AsyncTransport",
    "Auth",
    "Backoff",
    "BadRequest",
    "Basic",
    "Bearer",
    "Bulkhead",
    "BulkheadFull",
    "Cache",
    "CircuitBreaker",
    "CircuitOpen",
    "Client",
    "ClientError",
    "Clock",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "Cursor",
    "DeadlineExceeded",
    "Forbidden",
    "HTTPStatusError",
    "Headers",
    "Hook",
    "HttpxAsyncTransport",
    "HttpxTransport",
    "Idempotency",
    "LinkHeader",
    "NextURL",
    "NotFound",
    "Offset",
    "PageNumber",
    "PaginationError",
    "Paginator",
    "Policy",
    "RateLimit",
    "RateLimited",
    "ReadError",
    "RedisState",
    "Request",
    "Response",
    "ResponseTooLarge",
    "RetryAfterTooLong",
    "RetryBudget",
    "RetryBudgetExhausted",
    "ServerError",
    "SharedStateUnavailable",
    "StaticAuth",
    "SyncTransport",
    "SystemClock",
    "TetherError",
    "TransportError",
    "TransportTimeout",
    "Unauthorized",
    "Unprocessable",
    "__version__",
    "cache",
    "errors",
]

if TYPE_CHECKING:
    from tether import cache
    from tether.cache import Cache
    from tether.client import AiohttpTransport, HttpxAsyncTransport, HttpxTransport
    from tether.state import AsyncRedisState, RedisState

_LAZY = frozenset({"AiohttpTransport", "HttpxAsyncTransport", "HttpxTransport"})
_CACHE = frozenset({"Cache", "cache"})
_STATE = frozenset({"AsyncRedisState", "RedisState"})


def __getattr__(name: str) -> Any:
    # the transports, and so aiohttp and httpx, are imported on first use (see tether.client)
    if name in _LAZY:
        import tether.client

        value = getattr(tether.client, name)
        globals()[name] = value
        return value
    if name in _CACHE:
        # tether.cache too is imported on first use (hashlib, secrets and its dataclasses: ~15-30 ms)
        import tether.cache

        cached: Any = tether.cache if name == "cache" else tether.cache.Cache
        globals()[name] = cached
        return cached
    if name in _STATE:
        # so is tether.state (its commands hash keys; redis itself is imported only when a state connects)
        import tether.state

        shared: Any = getattr(tether.state, name)
        globals()[name] = shared
        return shared
    raise AttributeError(f"module 'tether' has no attribute {name!r}")
