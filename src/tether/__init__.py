"""tether: third-party API integrations that survive the real world.

The public API is re-exported here; ``__all__`` is the contract::

    import tether

    async with tether.AsyncClient("https://api.example.com", auth=tether.Bearer(token),
                                  policy=tether.Policy(deadline=10, retries=3)) as api:
        me = (await api.get("/me")).json()
"""

from tether import errors
from tether._clock import Clock, SystemClock
from tether._models import Headers, Request, Response
from tether._version import __version__
from tether.auth import APIKey, Auth, Basic, Bearer, StaticAuth
from tether.client import (
    AiohttpTransport,
    AsyncClient,
    AsyncTransport,
    Client,
    Cursor,
    HttpxAsyncTransport,
    HttpxTransport,
    LinkHeader,
    NextURL,
    Offset,
    PageNumber,
    Paginator,
    SyncTransport,
)
from tether.errors import (
    BadRequest,
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
    TetherError,
    TransportError,
    TransportTimeout,
    Unauthorized,
    Unprocessable,
)
from tether.events import Hook
from tether.policies import Backoff, Idempotency, Policy, RetryBudget

__all__ = [
    "APIKey",
    "AiohttpTransport",
    "AsyncClient",
    "AsyncTransport",
    "Auth",
    "Backoff",
    "BadRequest",
    "Basic",
    "Bearer",
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
    "RateLimited",
    "ReadError",
    "Request",
    "Response",
    "ResponseTooLarge",
    "RetryAfterTooLong",
    "RetryBudget",
    "RetryBudgetExhausted",
    "ServerError",
    "StaticAuth",
    "SyncTransport",
    "SystemClock",
    "TetherError",
    "TransportError",
    "TransportTimeout",
    "Unauthorized",
    "Unprocessable",
    "__version__",
    "errors",
]
