"""``AsyncClient`` and ``Client``: thin shells around the one call pipeline.

Both build requests the same way (:class:`_ClientBase`), run the same sans-IO :func:`call_flow`, and differ
only in who carries out its actions: :func:`drive_async` with an async transport (aiohttp by default) or
:func:`drive_sync` with a blocking one (httpx by default). With a ``cache=`` or ``coalesce=True``, GET and HEAD
go through :mod:`tether.cache` first, which calls the pipeline only when the cache cannot answer alone, and once
for identical concurrent calls; a successful unsafe call invalidates what the cache holds for its URL.
"""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict
from urllib.parse import urlencode, urlsplit

from typing_extensions import Unpack

from tether._clock import Clock, SystemClock
from tether._models import Headers, HeadersLike, Request, Response
from tether._version import __version__
from tether.auth import Auth, StaticAuth
from tether.client._drive import drive_async, drive_sync
from tether.client._flow import Action, CallEnv, Outcome, call_flow
from tether.client._pagination import PageWalker, Paginator
from tether.client._transport import DEFAULT_MAX_RESPONSE_BYTES, AsyncTransport, SyncTransport
from tether.errors import ConfigurationError
from tether.events import Hook
from tether.policies import BulkheadSnapshot, CircuitSnapshot, Policy, RetryBudgetState
from tether.policies._scope import scope_key

if TYPE_CHECKING:
    from tether.cache import Cache
    from tether.cache._shell import AsyncCaching, SyncCaching
    from tether.client._shared import SharedGuards
    from tether.state import AsyncRedisState, RedisState

__all__ = ["AsyncClient", "CallOptions", "Client"]

_CACHEABLE = frozenset({"GET", "HEAD"})
"""The methods that go through a client's cache and single-flight (``tether.cache._rules.CACHEABLE_METHODS``)."""

ParamValue = str | int | float | bool | None
Params = Mapping[str, ParamValue | Sequence[ParamValue]] | Sequence[tuple[str, ParamValue]]

USER_AGENT = f"tether/{__version__}"


class CallOptions(TypedDict, total=False):
    """The keyword arguments every call method takes (``get``, ``post``, ..., ``request``)."""

    params: Params | None
    """Query parameters, appended to the URL (``None`` values are left out, sequences repeat the name)."""
    headers: HeadersLike | None
    """Extra headers; each replaces the client's header of the same name."""
    json: Any
    """A body to send as JSON (``Content-Type: application/json``)."""
    data: Mapping[str, Any] | None
    """A body to send form-encoded."""
    content: bytes | str | None
    """A raw body (a ``str`` is sent UTF-8 encoded)."""
    policy: Policy | None
    """This call's policy instead of the client's (e.g. ``api.policy.replace(retries=0)``)."""


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


def _caching_wanted(cache: Cache | None, coalesce: bool | None) -> bool:
    """Whether a client needs a caching shell; also checks the two options.

    :mod:`tether.cache` is imported only by a client that uses it.
    """
    if cache is not None:
        from tether.cache import Cache

        if not isinstance(cache, Cache):
            raise ConfigurationError(f"cache must be a tether.Cache or None, got {cache!r}")
    if coalesce is not None and not isinstance(coalesce, bool):
        raise ConfigurationError(f"coalesce must be True, False or None, got {coalesce!r}")
    return cache is not None or bool(coalesce)


def _shared_guards(state: object, expected: str, client: str, base_url: str) -> SharedGuards | None:
    """The shared guards of a client's ``state`` (``None``: none); ``expected`` names the state class it takes.

    The client is known to the shared state by its ``base_url``'s origin, which keys its ``"client"``-scoped
    circuits and quotas; clients without a ``base_url`` share one ``"client"`` scope. :mod:`tether.state` is
    imported only by a client given a state.
    """
    if state is None:
        return None
    import tether.state
    from tether.client._shared import SharedGuards

    if not isinstance(state, getattr(tether.state, expected)):
        other = "AsyncRedisState: AsyncClient" if client == "Client" else "RedisState: the blocking Client"
        raise ConfigurationError(f"{client}(state=...) needs a tether.state.{expected} ({other}), got {state!r}")
    return SharedGuards(state, client=scope_key("host", "", base_url) if base_url else "")


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
        shared: SharedGuards | None = None,
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
        credentials = frozenset(name.lower() for name, _ in fixed) if fixed else frozenset()
        self._env = CallEnv(self.clock, budget=budget, hooks=hooks, credentials=credentials, shared=shared)

    def _flow(self, request: Request, policy: Policy | None, auth: Auth | None) -> Generator[Action, Outcome, Response]:
        """The call flow for ``request`` under ``policy`` (default: the client's), with ``auth``."""
        return call_flow(request, policy or self.policy, self._env, auth)

    def _call(self, method: str, url: str, options: CallOptions) -> Generator[Action, Outcome, Response]:
        """The call flow of a call method: its request built from ``options``, the client's auth applied."""
        request = self.build_request(method, url, **options)
        return call_flow(request, options.get("policy") or self.policy, self._env, self._flow_auth)

    def circuits(self) -> dict[str, CircuitSnapshot]:
        """The state of every circuit this client's calls have used, by key (``scheme://host:port`` by default)."""
        now = self.clock.monotonic()
        return {key: state.snapshot(now) for key, state in self._env.circuits().items()}

    def bulkheads(self) -> dict[str, BulkheadSnapshot]:
        """The state of every bulkhead compartment this client's calls have used, by key."""
        return {key: compartment.snapshot() for key, compartment in self._env.compartments().items()}

    @property
    def budget(self) -> RetryBudgetState | None:
        """The retry budget's state shared by this client's calls.

        ``None`` when the policy has no budget, and for a client given a shared ``state``: its budgets are kept
        there, one per host, for every process (read one with the state's ``budget_snapshot``).
        """
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
        merged = self._base_headers
        body: bytes | None = None
        if json is not None or data is not None or content is not None:
            if (json is not None) + (data is not None) + (content is not None) > 1:
                raise ConfigurationError("pass at most one of json=, data= and content=")
            content_type: str | None = None
            if json is not None:
                body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
                content_type = "application/json"
            elif data is not None:
                body = _encode_params(data).encode()
                content_type = "application/x-www-form-urlencoded"
            elif content is not None:
                body = content.encode() if isinstance(content, str) else content
            if content_type is not None and "Content-Type" not in merged:
                merged = merged.merged((("Content-Type", content_type),))
        if headers:
            merged = merged.merged(headers)
        idempotency = (policy or self.policy).idempotency
        if idempotency is not None and method in idempotency.methods and idempotency.needs_key(method, merged):
            merged = merged.merged(((idempotency.header, idempotency.new_key()),))
        return Request._of(method, self._url(url, params), merged, body)


class AsyncClient(_ClientBase):
    """An asyncio HTTP client with deadlines, retries, a retry budget, idempotency keys and pagination.

    ``async with AsyncClient("https://api.example.com", auth=Bearer(token)) as api: await api.get("/me")``.
    The transport defaults to aiohttp (pooled, keep-alive); pass ``transport=`` for another, e.g.
    :class:`~tether.client.HttpxAsyncTransport`. By default a final 4xx/5xx raises its typed
    :mod:`tether.errors` exception (``Policy(raise_for_status=False)`` returns it instead). A response body
    larger than ``max_response_bytes`` (64 MiB by default, decoded; ``None``: no limit) raises
    ``ResponseTooLarge`` instead of filling memory.

    ``cache=tether.Cache()`` caches GET and HEAD responses by RFC 9111 (see :mod:`tether.cache`); ``coalesce``
    makes identical concurrent GET/HEAD calls share one upstream call (default: on with a cache, off without;
    ``coalesce=True`` turns it on without a cache).

    ``state=tether.state.AsyncRedisState(...)`` shares the calls' rate limits (declared and learned), circuits and
    retry budget with every process using the same Redis (see :mod:`tether.state`); the client does not close it.
    A ``"client"`` scope is keyed there by the origin of ``base_url``: clients of one provider share it, clients
    without a ``base_url`` all share one.
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
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        hooks: Sequence[Hook] = (),
        clock: Clock | None = None,
        cache: Cache | None = None,
        coalesce: bool | None = None,
        state: AsyncRedisState | None = None,
    ) -> None:
        shared = _shared_guards(state, "AsyncRedisState", "AsyncClient", base_url)
        super().__init__(
            base_url, auth=auth, headers=headers, params=params, policy=policy, hooks=hooks, clock=clock, shared=shared
        )
        self._caching: AsyncCaching | None = None
        if _caching_wanted(cache, coalesce):
            from tether.cache._shell import AsyncCaching

            self._caching = AsyncCaching(cache, coalesce=coalesce is not False, clock=self.clock, auth=auth)
        if transport is None:
            from tether.client._aiohttp import AiohttpTransport

            transport = AiohttpTransport(
                max_connections=max_connections,
                max_connections_per_host=max_connections_per_host,
                default_headers=self._base_headers,
                max_response_bytes=max_response_bytes,
            )
        self.transport = transport

    async def send(self, request: Request, *, policy: Policy | None = None) -> Response:
        """Send a request (from :meth:`build_request` or built by hand) through the whole pipeline, auth included."""
        if self._caching is not None:
            return await self._through_cache(request, policy or self.policy, self.auth)
        flow = self._flow(request, policy, self.auth)
        return await drive_async(flow, self.transport, self.clock)

    async def request(self, method: str, url: str, **options: Unpack[CallOptions]) -> Response:
        """Make a call: build the request, then send it with retries under ``policy`` (default: the client's)."""
        if self._caching is not None:
            return await self._cached(method, url, options)
        return await drive_async(self._call(method, url, options), self.transport, self.clock)

    async def _cached(self, method: str, url: str, options: CallOptions) -> Response:
        """A call method's call, through the cache (a client with ``cache`` or ``coalesce``)."""
        request = self.build_request(method, url, **options)
        return await self._through_cache(request, options.get("policy") or self.policy, self._flow_auth)

    async def _through_cache(self, request: Request, policy: Policy, auth: Auth | None) -> Response:
        """GET/HEAD through the cache and single-flight; other methods invalidate what they change."""
        caching, env, transport, clock = self._caching, self._env, self.transport, self.clock
        assert caching is not None  # noqa: S101 - only called with caching on

        async def fetch(outgoing: Request) -> Response:
            return await drive_async(call_flow(outgoing, policy, env, auth), transport, clock)

        if request.method in _CACHEABLE:
            return await caching.call(request, auth, policy, fetch)
        response = await fetch(request)
        await caching.after_unsafe(request, response)
        return response

    # Each verb drives its flow itself rather than awaiting request(): one coroutine fewer on every call.
    async def get(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``GET``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return await self._cached("GET", url, options)
        return await drive_async(self._call("GET", url, options), self.transport, self.clock)

    async def head(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``HEAD``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return await self._cached("HEAD", url, options)
        return await drive_async(self._call("HEAD", url, options), self.transport, self.clock)

    async def post(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``POST`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        if self._caching is not None:
            return await self._cached("POST", url, options)
        return await drive_async(self._call("POST", url, options), self.transport, self.clock)

    async def put(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``PUT``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return await self._cached("PUT", url, options)
        return await drive_async(self._call("PUT", url, options), self.transport, self.clock)

    async def patch(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``PATCH`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        if self._caching is not None:
            return await self._cached("PATCH", url, options)
        return await drive_async(self._call("PATCH", url, options), self.transport, self.clock)

    async def delete(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``DELETE``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return await self._cached("DELETE", url, options)
        return await drive_async(self._call("DELETE", url, options), self.transport, self.clock)

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
            if self._caching is not None:
                page = await self._through_cache(request, policy or self.policy, self._flow_auth)
            else:
                page = await drive_async(self._flow(request, policy, self._flow_auth), self.transport, self.clock)
            for item in walker.accept(page):
                yield item

    async def aclose(self) -> None:
        """Close the transport's connections (and cancel the cache's background revalidations)."""
        if self._caching is not None:
            await self._caching.aclose()
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
    """The synchronous twin of :class:`AsyncClient`, for scripts and WSGI apps; httpx is its default transport.

    ``cache`` and ``coalesce`` as for :class:`AsyncClient`; coalescing joins identical calls from several threads.
    ``state=tether.state.RedisState(...)`` shares rate limits, circuits and the retry budget across processes.
    """

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
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        hooks: Sequence[Hook] = (),
        clock: Clock | None = None,
        cache: Cache | None = None,
        coalesce: bool | None = None,
        state: RedisState | None = None,
    ) -> None:
        shared = _shared_guards(state, "RedisState", "Client", base_url)
        super().__init__(
            base_url, auth=auth, headers=headers, params=params, policy=policy, hooks=hooks, clock=clock, shared=shared
        )
        self._caching: SyncCaching | None = None
        if _caching_wanted(cache, coalesce):
            from tether.cache._shell import SyncCaching

            self._caching = SyncCaching(cache, coalesce=coalesce is not False, clock=self.clock, auth=auth)
        if transport is None:
            from tether.client._httpx import HttpxTransport

            transport = HttpxTransport(
                max_connections=max_connections,
                default_headers=self._base_headers,
                max_response_bytes=max_response_bytes,
            )
        self.transport = transport

    def send(self, request: Request, *, policy: Policy | None = None) -> Response:
        """Send a request (from :meth:`build_request` or built by hand) through the whole pipeline, auth included."""
        if self._caching is not None:
            return self._through_cache(request, policy or self.policy, self.auth)
        flow = self._flow(request, policy, self.auth)
        return drive_sync(flow, self.transport, self.clock)

    def request(self, method: str, url: str, **options: Unpack[CallOptions]) -> Response:
        """Make a call: build the request, then send it with retries under ``policy`` (default: the client's)."""
        if self._caching is not None:
            return self._cached(method, url, options)
        return drive_sync(self._call(method, url, options), self.transport, self.clock)

    def _cached(self, method: str, url: str, options: CallOptions) -> Response:
        """A call method's call, through the cache (a client with ``cache`` or ``coalesce``)."""
        request = self.build_request(method, url, **options)
        return self._through_cache(request, options.get("policy") or self.policy, self._flow_auth)

    def _through_cache(self, request: Request, policy: Policy, auth: Auth | None) -> Response:
        """GET/HEAD through the cache and single-flight; other methods invalidate what they change."""
        caching, env, transport, clock = self._caching, self._env, self.transport, self.clock
        assert caching is not None  # noqa: S101 - only called with caching on

        def fetch(outgoing: Request) -> Response:
            return drive_sync(call_flow(outgoing, policy, env, auth), transport, clock)

        if request.method in _CACHEABLE:
            return caching.call(request, auth, policy, fetch)
        response = fetch(request)
        caching.after_unsafe(request, response)
        return response

    def get(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``GET``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return self._cached("GET", url, options)
        return drive_sync(self._call("GET", url, options), self.transport, self.clock)

    def head(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``HEAD``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return self._cached("HEAD", url, options)
        return drive_sync(self._call("HEAD", url, options), self.transport, self.clock)

    def post(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``POST`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        if self._caching is not None:
            return self._cached("POST", url, options)
        return drive_sync(self._call("POST", url, options), self.transport, self.clock)

    def put(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``PUT``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return self._cached("PUT", url, options)
        return drive_sync(self._call("PUT", url, options), self.transport, self.clock)

    def patch(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``PATCH`` (an ``Idempotency-Key`` is added so it can be retried safely)."""
        if self._caching is not None:
            return self._cached("PATCH", url, options)
        return drive_sync(self._call("PATCH", url, options), self.transport, self.clock)

    def delete(self, url: str, **options: Unpack[CallOptions]) -> Response:
        """``DELETE``; keyword arguments as for :meth:`request`."""
        if self._caching is not None:
            return self._cached("DELETE", url, options)
        return drive_sync(self._call("DELETE", url, options), self.transport, self.clock)

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
            if self._caching is not None:
                page = self._through_cache(request, policy or self.policy, self._flow_auth)
            else:
                page = drive_sync(self._flow(request, policy, self._flow_auth), self.transport, self.clock)
            yield from walker.accept(page)

    def close(self) -> None:
        """Close the transport's connections (after the cache's background revalidations end)."""
        if self._caching is not None:
            self._caching.close()
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client base_url={self.base_url!r} transport={self.transport!r}>"
