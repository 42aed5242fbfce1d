"""The shells that run a client's cached and coalesced calls, twins that hold no caching decisions.

:class:`AsyncCaching` runs them with asyncio, :class:`SyncCaching` with blocking calls from threads. A client with a
cache or with coalescing hands each GET and HEAD here with ``fetch``, a function running a request through its whole
call pipeline. The shell works out the request's keys (credentials applied, then hashed; every header and query
parameter the client's auth sets counts as a credential, found once by applying the auth to a probe request), runs
:func:`tether.cache._flow.lookup` (a fresh hit never reaches ``fetch``), then :func:`tether.cache._flow.network`
inside single-flight, so identical concurrent calls share one upstream call and each gets its own ``Response``
(followers' say ``X-Tether-Cache: COALESCED``). It performs the flows' actions: ``Fetch`` through ``fetch`` (an
exception is handed back to the flow as a value), storage actions on the storage (on a worker thread when the
storage blocks and the shell is async), and ``Background`` as one revalidation per entry at a time, in a task or
thread the shell owns: :meth:`AsyncCaching.aclose` cancels them, :meth:`SyncCaching.close` waits for them.

A storage that fails never fails a call: its error is logged at WARNING and reads as a miss; nor does a
background revalidation that cannot start (no thread to be had): logged at WARNING, the stale response served.
``only-if-cached`` with nothing usable stored answers 504, raised as :class:`~tether.errors.ServerError` when the
call's policy raises for status.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Hashable
from functools import partial
from typing import TypeVar
from urllib.parse import unquote_plus, urljoin, urlsplit

from tether._clock import Clock
from tether._models import Headers, Request, Response
from tether._redaction import describe_exception
from tether.auth import Auth, StaticAuth
from tether.cache._coalesce import AsyncSingleFlight, SyncSingleFlight
from tether.cache._config import Cache
from tether.cache._flow import Background, CacheAction, Drop, Fetch, Load, Plan, Save, lookup, network, tagged
from tether.cache._keys import NO_CREDENTIALS, Credentials, RequestKeys, request_keys, url_key
from tether.cache._rules import CACHEABLE_METHODS
from tether.cache._storage import CacheStorage
from tether.errors import error_for_response

__all__ = ["AsyncCaching", "SyncCaching"]

logger = logging.getLogger("tether.cache")

T = TypeVar("T")

_SAFE_METHODS = CACHEABLE_METHODS | {"OPTIONS", "TRACE"}
"""RFC 9110 §9.2.1; every other method invalidates (RFC 9111 §4.4: "including methods whose safety is unknown")."""

BACKGROUND_JOIN_SECONDS = 30.0
"""How long :meth:`SyncCaching.close` waits for background revalidations still running."""


def _perform(storage: CacheStorage, action: CacheAction) -> object:
    """Carry out a storage action; a failing storage is logged and reads as empty."""
    try:
        if type(action) is Load:
            return storage.get(action.key)
        if type(action) is Save:
            storage.put(action.entry)
        elif type(action) is Drop:
            storage.delete(action.key, action.vary_key)
    except Exception as error:
        logger.warning("tether cache: the storage failed (%s); carrying on without it", describe_exception(error))
        return []
    return None


def _invalidate(storage: CacheStorage, url_keys: list[str]) -> None:
    try:
        for key in url_keys:
            storage.invalidate(key)
    except Exception as error:
        logger.warning("tether cache: invalidation failed (%s)", describe_exception(error))


_PROBE_URL = "https://tether.invalid/"


def credentials_of(auth: Auth | None) -> Credentials:
    """The names of the headers and query parameters a static ``auth`` sets (none for a custom auth flow).

    Its ``fixed_headers()``, and what applying it to an empty probe request adds (an ``APIKey``'s query parameter).
    """
    if not isinstance(auth, StaticAuth):
        return NO_CREDENTIALS
    headers = {name.lower() for name, _ in auth.fixed_headers() or ()}
    params: set[str] = set()
    try:
        probe = auth.apply(Request("GET", _PROBE_URL))
    except Exception as error:  # a custom StaticAuth that cannot apply itself to a bare request
        logger.warning("tether cache: could not list the credentials of %r (%s)", auth, describe_exception(error))
    else:
        headers.update(name.lower() for name, _ in probe.headers.items())
        query = probe.url.partition("#")[0].partition("?")[2]
        params.update(unquote_plus(pair.partition("=")[0]) for pair in query.split("&") if pair)
    return Credentials(frozenset(headers), frozenset(params)) if headers or params else NO_CREDENTIALS


def _invalidated(request: Request, response: Response, credentials: Credentials) -> list[str]:
    """The URL keys a successful unsafe request invalidates (RFC 9111 §4.4).

    Its target, and the ``Location`` and ``Content-Location`` it names on the same origin; computed as a cached
    request's ``url_key`` is, so the auth's query parameter, applied or not, does not matter.
    """
    keys = [url_key(request.url, credentials)]
    origin = urlsplit(request.url)[:2]
    for name in ("location", "content-location"):
        value = response.headers.get(name)
        if not value:
            continue
        try:
            target = urljoin(request.url, value.strip())
            same_origin = urlsplit(target)[:2] == origin
        except ValueError:
            continue
        if same_origin:
            keys.append(url_key(target, credentials))
    return keys


def _answer(response: Response, policy: object) -> Response:
    """A response the cache gives without the pipeline: the 504 to ``only-if-cached`` raises as the policy says."""
    if response.status_code >= 400 and getattr(policy, "raise_for_status", True):
        raise error_for_response(response, attempts=0)
    return response


class _Caching:
    """What both shells share: the settings and the keys of a request."""

    def __init__(self, cache: Cache | None, *, coalesce: bool, clock: Clock, auth: Auth | None = None) -> None:
        self.cache = cache
        self.coalesce = coalesce
        self._clock = clock
        # credentials a custom auth flow adds are invisible before sending: its entries are this client's alone
        self._identity = secrets.token_hex(16)
        self._credentials = credentials_of(auth)

    def _keys(self, request: Request, auth: Auth | None) -> tuple[RequestKeys, Headers]:
        """The request's keys and its headers as sent (static credentials applied)."""
        if isinstance(auth, StaticAuth):
            sent = auth.apply(request)
            return request_keys(sent, "", self._credentials), sent.headers
        identity = self._identity if auth is not None else ""
        return request_keys(request, identity, self._credentials), request.headers

    @staticmethod
    def _flight(keys: RequestKeys, policy: object) -> Hashable:
        """The single-flight key: identical requests under equal policies (a policy decides raise vs return)."""
        key = (keys.flight, policy)
        try:
            hash(key)
        except TypeError:  # an unhashable policy: equal only to itself
            return (keys.flight, id(policy))
        return key

    def _invalidation(self, request: Request, response: Response) -> list[str] | None:
        if self.cache is None or request.method in _SAFE_METHODS or response.status_code >= 400:
            return None
        return _invalidated(request, response, self._credentials)


class AsyncCaching(_Caching):
    """A client's cache and single-flight, run with asyncio.

    ``auth``: the client's, whose headers and query parameters key the entries as credentials.
    """

    def __init__(self, cache: Cache | None, *, coalesce: bool, clock: Clock, auth: Auth | None = None) -> None:
        super().__init__(cache, coalesce=coalesce, clock=clock, auth=auth)
        self._flights: AsyncSingleFlight[Response] | None = AsyncSingleFlight() if coalesce else None
        self._background: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._closed = False

    async def call(
        self, request: Request, auth: Auth | None, policy: object, fetch: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Answer a GET or HEAD through the cache and single-flight; ``fetch`` runs the client's pipeline."""
        keys, sent_headers = self._keys(request, auth)
        work: Callable[[], Awaitable[Response]]
        if self.cache is not None:
            found = await self._drive(lookup(request, keys, sent_headers, self.cache.rules, self._clock), fetch)
            if not isinstance(found, Plan):
                return _answer(found, policy)
            work = partial(self._settle, found, fetch)
        else:
            work = partial(fetch, request)
        if self._flights is None:
            return await work()
        response, led = await self._flights.run(self._flight(keys, policy), work)
        return response if led else tagged(response, "COALESCED")

    async def _settle(self, plan: Plan, fetch: Callable[[Request], Awaitable[Response]]) -> Response:
        assert self.cache is not None  # noqa: S101 - only a cache makes plans
        return await self._drive(network(plan, self.cache.rules, self._clock), fetch)

    async def after_unsafe(self, request: Request, response: Response) -> None:
        """Invalidate what a successful unsafe request changed (RFC 9111 §4.4)."""
        url_keys = self._invalidation(request, response)
        if url_keys is None or self.cache is None:
            return
        storage = self.cache.storage
        if storage.blocking:
            await asyncio.to_thread(_invalidate, storage, url_keys)
        else:
            _invalidate(storage, url_keys)

    async def _drive(
        self, flow: Generator[CacheAction, object, T], fetch: Callable[[Request], Awaitable[Response]]
    ) -> T:
        storage = self.cache.storage if self.cache is not None else None
        try:
            action = next(flow)
            while True:
                outcome: object = None
                if type(action) is Fetch:
                    try:
                        outcome = await fetch(action.request)
                    except Exception as error:
                        outcome = error
                elif type(action) is Background:
                    self._start_revalidation(action.plan, fetch)
                elif storage is not None:
                    outcome = (
                        await asyncio.to_thread(_perform, storage, action)
                        if storage.blocking
                        else _perform(storage, action)
                    )
                action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def _start_revalidation(self, plan: Plan, fetch: Callable[[Request], Awaitable[Response]]) -> None:
        entry = plan.entry
        if entry is None or self._closed:
            return
        slot = (entry.key, entry.vary_key)
        if slot in self._background:
            return  # one background revalidation per entry at a time
        task = asyncio.get_running_loop().create_task(self._revalidate(plan, fetch))
        self._background[slot] = task
        task.add_done_callback(lambda _: self._background.pop(slot, None))

    async def _revalidate(self, plan: Plan, fetch: Callable[[Request], Awaitable[Response]]) -> None:
        assert self.cache is not None  # noqa: S101 - only a cache starts revalidations
        try:
            await self._drive(network(plan, self.cache.rules, self._clock), fetch)
        except Exception as error:
            logger.warning(
                "tether cache: background revalidation of %s failed: %s", plan.keys.url, describe_exception(error)
            )

    async def wait_background(self) -> None:
        """Wait until no background revalidation runs (tests, graceful shutdown)."""
        while self._background:
            await asyncio.gather(*self._background.values(), return_exceptions=True)

    @property
    def revalidating(self) -> int:
        """How many background revalidations are running."""
        return len(self._background)

    async def aclose(self) -> None:
        """Cancel the background revalidations still running and wait for them to end."""
        self._closed = True
        tasks = list(self._background.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SyncCaching(_Caching):
    """A client's cache and single-flight, run with blocking calls from any number of threads.

    ``auth``: the client's, whose headers and query parameters key the entries as credentials.
    """

    def __init__(self, cache: Cache | None, *, coalesce: bool, clock: Clock, auth: Auth | None = None) -> None:
        super().__init__(cache, coalesce=coalesce, clock=clock, auth=auth)
        self._flights: SyncSingleFlight[Response] | None = SyncSingleFlight() if coalesce else None
        self._lock = threading.Lock()
        self._background: dict[tuple[str, str], threading.Thread] = {}
        self._closed = False

    def call(
        self, request: Request, auth: Auth | None, policy: object, fetch: Callable[[Request], Response]
    ) -> Response:
        """Answer a GET or HEAD through the cache and single-flight; ``fetch`` runs the client's pipeline."""
        keys, sent_headers = self._keys(request, auth)
        work: Callable[[], Response]
        if self.cache is not None:
            found = self._drive(lookup(request, keys, sent_headers, self.cache.rules, self._clock), fetch)
            if not isinstance(found, Plan):
                return _answer(found, policy)
            work = partial(self._settle, found, fetch)
        else:
            work = partial(fetch, request)
        if self._flights is None:
            return work()
        response, led = self._flights.run(self._flight(keys, policy), work)
        return response if led else tagged(response, "COALESCED")

    def _settle(self, plan: Plan, fetch: Callable[[Request], Response]) -> Response:
        assert self.cache is not None  # noqa: S101 - only a cache makes plans
        return self._drive(network(plan, self.cache.rules, self._clock), fetch)

    def after_unsafe(self, request: Request, response: Response) -> None:
        """Invalidate what a successful unsafe request changed (RFC 9111 §4.4)."""
        url_keys = self._invalidation(request, response)
        if url_keys is not None and self.cache is not None:
            _invalidate(self.cache.storage, url_keys)

    def _drive(self, flow: Generator[CacheAction, object, T], fetch: Callable[[Request], Response]) -> T:
        storage = self.cache.storage if self.cache is not None else None
        try:
            action = next(flow)
            while True:
                outcome: object = None
                if type(action) is Fetch:
                    try:
                        outcome = fetch(action.request)
                    except Exception as error:
                        outcome = error
                elif type(action) is Background:
                    self._start_revalidation(action.plan, fetch)
                elif storage is not None:
                    outcome = _perform(storage, action)
                action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def _start_revalidation(self, plan: Plan, fetch: Callable[[Request], Response]) -> None:
        entry = plan.entry
        if entry is None:
            return
        slot = (entry.key, entry.vary_key)
        with self._lock:
            if self._closed or slot in self._background:
                return  # one background revalidation per entry at a time
            thread = threading.Thread(
                target=self._revalidate, args=(plan, fetch, slot), name="tether-cache-revalidate", daemon=True
            )
            self._background[slot] = thread
        try:
            thread.start()
        except RuntimeError as error:  # "can't start new thread": the stale response is served all the same
            logger.warning(
                "tether cache: could not start the background revalidation of %s (%s)",
                plan.keys.url,
                describe_exception(error),
            )
            with self._lock:
                if self._background.get(slot) is thread:
                    del self._background[slot]

    def _revalidate(self, plan: Plan, fetch: Callable[[Request], Response], slot: tuple[str, str]) -> None:
        assert self.cache is not None  # noqa: S101 - only a cache starts revalidations
        try:
            self._drive(network(plan, self.cache.rules, self._clock), fetch)
        except Exception as error:
            logger.warning(
                "tether cache: background revalidation of %s failed: %s", plan.keys.url, describe_exception(error)
            )
        finally:
            with self._lock:
                self._background.pop(slot, None)

    def wait_background(self, timeout: float | None = None) -> bool:
        """Wait until no background revalidation runs, at most ``timeout`` seconds; whether none runs now.

        The wait is real time (a revalidation ends when its request does), not the injected clock's.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._background.values())
            if not threads:
                return True
            for thread in threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return not self._background

    @property
    def revalidating(self) -> int:
        """How many background revalidations are running."""
        with self._lock:
            return len(self._background)

    def close(self) -> None:
        """Start no more background revalidations; wait (a bounded time) for those still running."""
        with self._lock:
            self._closed = True
        self.wait_background(BACKGROUND_JOIN_SECONDS)
