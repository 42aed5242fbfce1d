"""``AsyncClient`` and ``Client``: thin shells around the one call pipeline.

Both build requests the same way (:class:`_ClientBase`), run the same sans-IO :func:`call_flow`, and differ
only in who carries out its actions: :func:`drive_async` with an async transport (aiohttp by default) or
:func:`drive_sync` with a blocking one (httpx by default).
"""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

from tether._clock import Clock, SystemClock
from tether._models import Headers, HeadersLike, Request, Response
from tether._version import __version__
from tether.auth import Auth, StaticAuth
from tether.client._drive import drive_async, drive_sync
from tether.client._flow import Action, CallEnv, Outcome, call_flow
from tether.client._pagination import PageWalker, Paginator
from tether.client._transport import AsyncTransport, SyncTransport
from tether.errors import ConfigurationError
from tether.events import Hook
from tether.policies import Policy, RetryBudgetState

__all__ = ["AsyncClient", "Client"]

ParamValue = str | int | float | bool | None
Params = Mapping[str, ParamValue | Sequence[ParamValue]] | Sequence[tuple[str, ParamValue]]

USER_AGENT = f"tether/{__version__}"


def _encode_params(params: Params) -> str:
    pairs: list[tuple[str, str]] = []
    items = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        values = value if isinstance(value, list | tuple) else (value,)
        for item in values:
            if item is None:
                continue
            pairs.append((name, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return urlencode(pairs)


class _ClientBase:
    """Configuration and request building shared by both clients."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None,
        headers: HeadersLike | None,
        params: Params | None,
        policy: Policy | None,
        hooks: Sequence[Hook],
        clock: Clock | None,
    ) -> None:
        if base_url and urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.policy = policy or Policy()
        self.headers = Headers({"User-Agent": USER_AGENT, "Accept": "application/json"}).merged(headers)
        # Static header credentials join the base headers once; requests without extra headers then share this one
        # object, which the aiohttp transport sends as its session's defaults (no per-request header merge).
        fixed = auth.fixed_headers() if isinstance(auth, StaticAuth) else None
        self._base_headers = self.headers.merged(fixed) if fixed else self.headers
        self._flow_auth: Auth | None = None if fixed else auth
        self._params = _encode_params(params) if params else ""
        self.clock: Clock = clock or SystemClock()
        budget = RetryBudgetState(self.policy.budget, self.clock.monotonic()) if self.policy.budget else None
        self._env = CallEnv(self.clock, budget=budget, hooks=hooks)

    def _flow(self, request: Request, policy: Policy | None, auth: Auth | None) -> Generator[Action, Outcome, Response]:
        """The call flow for ``request`` under ``policy`` (default: the client's), with ``auth``."""
        return call_flow(request, policy or self.policy, self._env, auth)

    @property
    def budget(self) -> RetryBudgetState | None:
        """The retry budget's state shared by this client's calls (``None`` when disabled)."""
        return self._env.budget

    def _url(self, url: str, params: Params | None) -> str:
        if "://" not in url:
            if not self.base_url:
                raise ConfigurationError(f"relative URL {url!r} needs a client base_url")
            url = f"{self.base_url}/{url.lstrip('/')}" if url else self.base_url
        query = self._params
        if params:
            extra = _encode_params(params)
            query = f"{query}&{extra}" if query and extra else query or extra
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url

    def build_request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: HeadersLike | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        policy: Policy | None = None,
    ) -> Request:
        """The :class:`Request` a call with these arguments sends.

        Static header credentials (``Bearer``, ``Basic``, header ``APIKey``) are already in its headers; other auth
        schemes are applied when it is sent.
        """
        method = method.upper()
        body: bytes | None = None
        extra: list[tuple[str, str]] = []
        if (json is not None) + (data is not None) + (content is not None) > 1:
            raise ConfigurationError("pass at most one of json=, data= and content=")
        if json is not None:
            body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
            extra.append(("Content-Type", "application/json"))
        elif data is not None:
            body = _encode_params(data).encode()
            extra.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        merged = self._base_headers
        if extra:
            merged = merged.merged([pair for pair in extra if pair[0] not in merged])
        if headers:
            merged = merged.merged(headers)
        idempotency = (policy or self.policy).idempotency
        if idempotency is not None and idempotency.needs_key(method, merged):
            merged = merged.merged(((idempotency.header, idempotency.new_key()),))
        return Request(method, self._url(url, params), headers=merged, content=body)


class AsyncClient(_ClientBase):
    """An asyncio HTTP client with deadlines, retries, a retry budget, idempotency keys and pagination.

    ``async with AsyncClient("https://api.example.com", auth=Bearer(token)) as api: await api.get("/me")``.
    The transport defaults to aiohttp (pooled, keep-alive); pass ``transport=`` for another, e.g.
    :class:`~tether.client.HttpxAsyncTransport`. By default a final 4xx/5xx raises its typed
    :mod:`tether.errors` exception (``Policy(raise_for_status=False)`` returns it instead).
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        auth: Auth | None = None,
        headers: HeadersLike | None = None,
        params: Params | None = None,
        policy: Policy | None = None,
        transport: AsyncTransport | None = None,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
        hooks: Sequence[Hook] = (),
        clock: Clock | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, headers=headers, params=params, policy=policy, hooks=hooks, clock=clock)
        if transport is None:
            from tether.client._aiohttp import AiohttpTransport

            transport = AiohttpTransport(
                max_connections=max_connections,
                max_connections_per_host=max_connections_per_host,
                default_headers=self._base_headers,
            )
        self.transport = transport

    async def send(self, request: Request, *, policy: Policy | None = None) -> Response:
        """Send a request (from :meth:`build_request` or built by hand) through the whole pipeline, auth included."""
        flow = self._flow(request, policy, self.auth)
        return await drive_async(flow, self.transport, self.clock)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: HeadersLike | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        policy: Policy | None = None,
    ) -> Response:
        """Make a call: build the request, then send it with retries under ``policy`` (default: the client's)."""
        request = self.build_request(
            method, url, params=params, headers=headers, json=json, data=data, content=content, policy=policy
        )
        # send()'s body, inlined: one coroutine fewer on every call
        flow = self._flow(request, policy, self._flow_auth)
        return await drive_async(flow, self.transport, self.clock)

    async def get(self, url: str, **kwargs: Any) -> Response:
        """``GET``; keyword arguments as for :meth:`request`."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response:
        """``HEAD``; keyword arguments as for :meth:`request`."""
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        """``POST`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        """``PUT``; keyword arguments as for :meth:`request`."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        """``PATCH`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        """``DELETE``; keyword arguments as for :meth:`request`."""
        return await self.request("DELETE", url, **kwargs)

    async def paginate(
        self,
        url: str,
        paginator: Paginator,
        *,
        params: Params | None = None,
        headers: HeadersLike | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        policy: Policy | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of every page of a GET collection, each page a full pipeline call."""
        walker = PageWalker(
            paginator,
            self.build_request("GET", url, params=params, headers=headers),
            max_items=max_items,
            max_pages=max_pages,
        )
        while (request := walker.next_request()) is not None:
            flow = self._flow(request, policy, self._flow_auth)
            for item in walker.accept(await drive_async(flow, self.transport, self.clock)):
                yield item

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={self.base_url!r} transport={self.transport!r}>"


class Client(_ClientBase):
    """The synchronous twin of :class:`AsyncClient`, for scripts and WSGI apps; httpx is its default transport."""

    def __init__(
        self,
        base_url: str = "",
        *,
        auth: Auth | None = None,
        headers: HeadersLike | None = None,
        params: Params | None = None,
        policy: Policy | None = None,
        transport: SyncTransport | None = None,
        max_connections: int = 100,
        hooks: Sequence[Hook] = (),
        clock: Clock | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, headers=headers, params=params, policy=policy, hooks=hooks, clock=clock)
        if transport is None:
            from tether.client._httpx import HttpxTransport

            transport = HttpxTransport(max_connections=max_connections)
        self.transport = transport

    def send(self, request: Request, *, policy: Policy | None = None) -> Response:
        """Send a request (from :meth:`build_request` or built by hand) through the whole pipeline, auth included."""
        flow = self._flow(request, policy, self.auth)
        return drive_sync(flow, self.transport, self.clock)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: HeadersLike | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        policy: Policy | None = None,
    ) -> Response:
        """Make a call: build the request, then send it with retries under ``policy`` (default: the client's)."""
        request = self.build_request(
            method, url, params=params, headers=headers, json=json, data=data, content=content, policy=policy
        )
        flow = self._flow(request, policy, self._flow_auth)
        return drive_sync(flow, self.transport, self.clock)

    def get(self, url: str, **kwargs: Any) -> Response:
        """``GET``; keyword arguments as for :meth:`request`."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        """``HEAD``; keyword arguments as for :meth:`request`."""
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        """``POST`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        """``PUT``; keyword arguments as for :meth:`request`."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        """``PATCH`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        """``DELETE``; keyword arguments as for :meth:`request`."""
        return self.request("DELETE", url, **kwargs)

    def paginate(
        self,
        url: str,
        paginator: Paginator,
        *,
        params: Params | None = None,
        headers: HeadersLike | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        policy: Policy | None = None,
    ) -> Iterator[Any]:
        """Iterate the items of every page of a GET collection, each page a full pipeline call."""
        walker = PageWalker(
            paginator,
            self.build_request("GET", url, params=params, headers=headers),
            max_items=max_items,
            max_pages=max_pages,
        )
        while (request := walker.next_request()) is not None:
            flow = self._flow(request, policy, self._flow_auth)
            yield from walker.accept(drive_sync(flow, self.transport, self.clock))

    def close(self) -> None:
        """Close the transport's connections."""
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client base_url={self.base_url!r} transport={self.transport!r}>"
