"""The cached call, written once as two sans-IO generators: :func:`lookup` and :func:`network`.

A GET or HEAD with a cache runs :func:`lookup` first. It yields :class:`Load` (the shell answers with the
stored entries under the request's key) and, for a response served stale while revalidating,
:class:`Background` (the shell starts one background revalidation for that entry unless one is running). It
returns the :class:`~tether.Response` to give the caller (fresh, or stale within ``stale-while-revalidate``)
or a :class:`Plan`: the call needs the network. :func:`network` carries a plan out: it yields :class:`Fetch`
(the shell runs the client's whole call pipeline — retries, deadline, breaker, auth — and answers with the
response or the exception it raised), :class:`Save` and :class:`Drop`. A 304 freshens and serves the stored
response; an outage serves it stale within ``stale-if-error``; any other answer is returned, and stored if
the rules allow; a 200 to a HEAD also updates (or drops, if outdated) the stored GET responses it describes.
The shells (:mod:`tether.cache._shell`) put single-flight around :func:`network`, so identical concurrent calls
share one plan's upstream call.

A request with ``Cache-Control: only-if-cached`` (RFC 9111 §5.2.1.7) never reaches the network: :func:`lookup`
answers it from storage (fresh, or stale where allowed, without a background revalidation) or with a
``504 Gateway Timeout`` response, which the shell raises as an error when the call's policy raises for status.

Every response tether hands out from here carries :data:`CACHE_STATUS_HEADER` (``X-Tether-Cache``):

- ``HIT``: served from the cache, fresh, no request sent;
- ``STALE``: served from the cache, stale (within ``stale-while-revalidate``, or ``stale-if-error`` after the
  upstream failed);
- ``REVALIDATED``: the upstream answered a conditional request with 304; the stored body was served;
- ``MISS``: the upstream's full response (stored if cacheable), or the 504 answering ``only-if-cached``;
- ``COALESCED``: not this call's own: it shared an identical in-flight call's outcome (set by the shell).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal, cast

from tether._clock import Clock
from tether._models import Headers, Request, Response
from tether.cache._fields import EMPTY, CacheControl, parse_cache_control
from tether.cache._keys import RequestKeys, url_key, vary_key
from tether.cache._rules import (
    CACHEABLE_METHODS,
    Fresh,
    Rules,
    ServeStale,
    assess,
    conditional_headers,
    current_age,
    freshen,
    head_matches,
    is_outage,
    reusable_vary,
    stale_if_error_allows,
    storable,
    stored_headers,
    validator_matches,
    with_date,
)
from tether.cache._storage import CacheEntry

__all__ = [
    "CACHE_STATUS_HEADER",
    "Background",
    "CacheAction",
    "CacheStatus",
    "Drop",
    "Fetch",
    "Load",
    "Plan",
    "Save",
    "lookup",
    "network",
    "tagged",
]

CACHE_STATUS_HEADER = "X-Tether-Cache"
"""The response header saying where a cached client's GET/HEAD response came from (see the module docs)."""

CacheStatus = Literal["HIT", "STALE", "REVALIDATED", "MISS", "COALESCED"]

_BYPASS = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range")
"""A request carrying its own preconditions or a range is the caller's business: sent as is, never stored."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A call the cache cannot answer alone: ``request`` to fetch, and what to do with the answer.

    ``keys`` and ``key_headers`` (the request's headers as sent, credentials applied) locate and vary its entry;
    ``entry`` is the stored response to validate, if any; ``store``: whether the answer may be stored.
    """

    request: Request
    keys: RequestKeys
    key_headers: Headers
    request_cc: CacheControl
    entry: CacheEntry | None
    store: bool


@dataclass(slots=True)
class Load:
    """Action: the stored entries under ``key`` (answer: ``list[CacheEntry]``)."""

    key: str


@dataclass(slots=True)
class Fetch:
    """Action: run ``request`` through the client's call pipeline (answer: its ``Response`` or exception)."""

    request: Request


@dataclass(slots=True)
class Save:
    """Action: store ``entry`` (answer: ``None``)."""

    entry: CacheEntry


@dataclass(slots=True)
class Drop:
    """Action: remove the entry ``key``/``vary_key`` (answer: ``None``)."""

    key: str
    vary_key: str


@dataclass(slots=True)
class Background:
    """Action: carry ``plan`` out in the background, unless its entry is already being revalidated (``None``)."""

    plan: Plan


CacheAction = Load | Fetch | Save | Drop | Background


def tagged(response: Response, status: CacheStatus, request: Request | None = None) -> Response:
    """A new ``Response`` with the same content and :data:`CACHE_STATUS_HEADER` set to ``status``."""
    return Response(
        response.status_code,
        headers=response.headers.merged(((CACHE_STATUS_HEADER, status),)),
        content=response.content,
        request=request if request is not None else response.request,
        reason_phrase=response.reason_phrase,
    )


def _served(entry: CacheEntry, request: Request, age: float, status: CacheStatus) -> Response:
    """The stored response, as served: with its current ``Age`` (RFC 9111 §4) and the cache status."""
    return Response(
        entry.status_code,
        headers=entry.headers.merged((("Age", str(int(age))), (CACHE_STATUS_HEADER, status))),
        content=entry.content,
        request=request,
        reason_phrase=entry.reason,
    )


def _select(entries: list[CacheEntry], keys: RequestKeys, method: str, headers: Headers) -> CacheEntry | None:
    """The newest stored entry whose ``Vary`` fields match the request's (RFC 9111 §4.1)."""
    best: CacheEntry | None = None
    for entry in entries:
        if entry.key != keys.key or entry.method != method:
            continue
        if entry.vary_key != vary_key(headers, entry.vary):
            continue
        if best is None or entry.response_time > best.response_time:
            best = entry
    return best


def _unsatisfiable(request: Request) -> Response:
    """The answer to ``only-if-cached`` when nothing stored may be used: 504 (RFC 9111 §5.2.1.7)."""
    return Response(
        504,
        headers=Headers([("Content-Type", "text/plain; charset=utf-8"), (CACHE_STATUS_HEADER, "MISS")]),
        content=b"only-if-cached: no stored response may be used, and the origin is not contacted",
        request=request,
        reason_phrase="Gateway Timeout",
    )


def lookup(
    request: Request, keys: RequestKeys, key_headers: Headers, rules: Rules, clock: Clock
) -> Generator[CacheAction, object, Response | Plan]:
    """Answer ``request`` from the cache if the rules allow; else the :class:`Plan` for :func:`network`."""
    values = request.headers.get_list("cache-control")
    request_cc = parse_cache_control(values) if values else EMPTY
    bypass = request.method not in CACHEABLE_METHODS or any(name in request.headers for name in _BYPASS)
    if request_cc.only_if_cached:
        return (
            yield from _from_storage(
                request, keys, key_headers=key_headers, request_cc=request_cc, rules=rules, clock=clock, bypass=bypass
            )
        )
    if bypass:
        return Plan(request, keys, key_headers, EMPTY, None, store=False)
    entries = cast("list[CacheEntry]", (yield Load(keys.key)))
    entry = _select(entries, keys, request.method, key_headers) if entries else None
    if entry is None:
        return Plan(request, keys, key_headers, request_cc, None, store=True)
    decision = assess(entry, request_cc, clock.time(), rules)
    if type(decision) is Fresh:
        return _served(entry, request, decision.age, "HIT")
    plan = Plan(request, keys, key_headers, request_cc, entry, store=True)
    if type(decision) is ServeStale:
        yield Background(plan)
        return _served(entry, request, decision.age, "STALE")
    return plan


def _from_storage(
    request: Request,
    keys: RequestKeys,
    *,
    key_headers: Headers,
    request_cc: CacheControl,
    rules: Rules,
    clock: Clock,
    bypass: bool,
) -> Generator[CacheAction, object, Response]:
    """``only-if-cached`` (RFC 9111 §5.2.1.7): a stored response (fresh, or stale where allowed), else a 504.

    Never contacts the origin: no validation, not even a background one for a response served stale.
    """
    if bypass:
        return _unsatisfiable(request)
    entries = cast("list[CacheEntry]", (yield Load(keys.key)))
    entry = _select(entries, keys, request.method, key_headers) if entries else None
    if entry is not None:
        decision = assess(entry, request_cc, clock.time(), rules)
        if type(decision) is Fresh or type(decision) is ServeStale:
            return _served(entry, request, decision.age, "HIT" if type(decision) is Fresh else "STALE")
    return _unsatisfiable(request)


def _entry(plan: Plan, response: Response, request_time: float, response_time: float) -> CacheEntry:
    headers = with_date(stored_headers(response.headers), response_time)
    vary = reusable_vary(headers)
    return CacheEntry(
        key=plan.keys.key,
        vary_key=vary_key(plan.key_headers, vary),
        url_key=plan.keys.url_key,
        url=plan.keys.url,
        method=plan.request.method,
        vary=vary,
        status_code=response.status_code,
        reason=response.reason_phrase,
        headers=headers,
        content=response.content if plan.request.method == "GET" else b"",
        request_time=request_time,
        response_time=response_time,
    )


def network(plan: Plan, rules: Rules, clock: Clock) -> Generator[CacheAction, object, Response]:
    """Fetch for ``plan`` (conditionally, if it has an entry) and settle the answer with the cache.

    Raises what the pipeline raised, unless ``stale-if-error`` lets the stored response stand in for it.
    """
    entry = plan.entry
    conditions = conditional_headers(entry) if entry is not None else []
    request_time = clock.time()
    outcome = yield Fetch(plan.request.with_headers(conditions) if conditions else plan.request)
    response_time = clock.time()
    if entry is not None:
        if conditions and type(outcome) is Response and outcome.status_code == 304:
            if validator_matches(entry, outcome.headers):
                fresh = freshen(entry, outcome.headers, request_time, response_time, request_headers=plan.key_headers)
                yield from _keep(plan, entry, fresh, rules, response_time)
                age = current_age(fresh.headers, request_time, response_time, response_time)
                return _served(fresh, plan.request, age, "REVALIDATED")
            # a 304 about another representation than ours (RFC 9111 §4.3.4): ours is outdated, fetch in full
            yield Drop(entry.key, entry.vary_key)
            entry = None
            request_time = clock.time()
            outcome = yield Fetch(plan.request)
            response_time = clock.time()
        elif is_outage(outcome):
            stale_age = stale_if_error_allows(entry, plan.request_cc, response_time, rules)
            if stale_age is not None:
                return _served(entry, plan.request, stale_age, "STALE")
    if not isinstance(outcome, Response):
        assert isinstance(outcome, BaseException)  # noqa: S101 - the shell answers a Fetch with one or the other
        raise outcome
    if plan.store:
        status = outcome.status_code
        keys = plan.keys
        direct = outcome.request is None or url_key(outcome.request.url, keys.credentials) == keys.url_key
        method = plan.request.method
        if direct and storable(  # a redirected response is another URL's
            method, status, outcome.headers, plan.request_cc, rules, now=response_time, secrets=keys.secrets
        ):
            stored = _entry(plan, outcome, request_time, response_time)
            yield Save(stored)
            if entry is not None and entry.vary_key != stored.vary_key:
                yield Drop(entry.key, entry.vary_key)  # the response now varies differently: the old variant goes
        elif entry is not None and status < 400:
            yield Drop(entry.key, entry.vary_key)  # superseded by a response that may not be stored
        if direct and method == "HEAD" and status == 200:
            yield from _update_gets(plan, outcome.headers, request_time, response_time, rules)
    return tagged(outcome, "MISS")


def _keep(
    plan: Plan, entry: CacheEntry, fresh: CacheEntry, rules: Rules, now: float
) -> Generator[CacheAction, object, None]:
    """Store ``fresh``, the freshened ``entry``, if it may be stored; drop ``entry`` if it is not replaced."""
    if storable(
        fresh.method, fresh.status_code, fresh.headers, plan.request_cc, rules, now=now, secrets=plan.keys.secrets
    ):
        yield Save(fresh)
        if fresh.vary_key == entry.vary_key:
            return  # replaced in place; a new Vary moved it to another variant slot
    yield Drop(entry.key, entry.vary_key)


def _update_gets(
    plan: Plan, head: Headers, request_time: float, response_time: float, rules: Rules
) -> Generator[CacheAction, object, None]:
    """A 200 to HEAD updates the stored GET responses it could have selected, or drops them (RFC 9111 §4.3.5).

    Updated as by a 304 when the validators agree (:func:`~tether.cache._rules.head_matches`); otherwise the
    stored representation is outdated and dropped (stricter than the RFC's "consider it stale").
    """
    get_key = plan.keys.get_key
    entries = cast("list[CacheEntry]", (yield Load(get_key)))
    for entry in entries:
        if entry.key != get_key or entry.method != "GET" or entry.vary_key != vary_key(plan.key_headers, entry.vary):
            continue
        if head_matches(entry, head):
            fresh = freshen(entry, head, request_time, response_time, request_headers=plan.key_headers)
            yield from _keep(plan, entry, fresh, rules, response_time)
        else:
            yield Drop(entry.key, entry.vary_key)
