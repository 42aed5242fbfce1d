"""The cached call's sans-IO flows, driven by hand: each yielded action is answered by the test, so every
branch is reached without a server, a storage or a clock that moves by itself."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tether._models import Headers, Request, Response
from tether.cache._flow import (
    CACHE_STATUS_HEADER,
    Background,
    CacheAction,
    Drop,
    Fetch,
    Load,
    Plan,
    Save,
    lookup,
    network,
)
from tether.cache._keys import request_keys
from tether.cache._rules import Rules
from tether.cache._storage import CacheEntry
from tether.errors import ConnectError, NotFound
from tether.testing import FakeClock

URL = "https://api.example/v1/x"
RULES = Rules()


def request(method: str = "GET", **headers: str) -> Request:
    return Request(method, URL, headers=Headers(headers))


def response(
    headers: dict[str, str] | None = None, *, status: int = 200, body: bytes = b'{"v":1}', url: str = URL
) -> Response:
    return Response(status, headers=Headers(headers or {}), content=body, request=Request("GET", url))


def start(req: Request, clock: FakeClock) -> Generator[CacheAction, object, Response | Plan]:
    return lookup(req, request_keys(req), req.headers, RULES, clock)


def run_to_end(flow: Generator[CacheAction, object, object], first: object) -> tuple[object, list[object]]:
    """Answer storage actions with ``None`` and record them; return the flow's result and the actions."""
    actions: list[object] = []
    try:
        action = flow.send(first)
        while True:
            actions.append(action)
            action = flow.send(None)
    except StopIteration as stop:
        return stop.value, actions


def fetched(clock: FakeClock, req: Request, answer: Response) -> CacheEntry:
    """Run a miss for ``req`` answered by ``answer``; the entry it saves."""
    flow = start(req, clock)
    assert isinstance(next(flow), Load)
    plan, _ = run_to_end(flow, [])
    assert isinstance(plan, Plan)
    net = network(plan, RULES, clock)
    assert isinstance(next(net), Fetch)
    result, actions = run_to_end(net, answer)
    assert isinstance(result, Response)
    assert result.headers[CACHE_STATUS_HEADER] == "MISS"
    (save,) = actions
    assert isinstance(save, Save)
    return save.entry


def test_a_miss_is_fetched_and_saved_then_hit() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=60"}))
    clock.advance(10)
    flow = start(request(), clock)
    next(flow)
    hit, actions = run_to_end(flow, [entry])
    assert isinstance(hit, Response)
    assert actions == []
    assert (hit.headers[CACHE_STATUS_HEADER], hit.headers["Age"], hit.content) == ("HIT", "10", b'{"v":1}')


def test_unsafe_and_precondition_requests_bypass_the_cache() -> None:
    clock = FakeClock()
    for req in (request("POST"), request(**{"If-None-Match": '"x"'}), request(Range="bytes=0-1")):
        flow = start(req, clock)
        with pytest.raises(StopIteration) as stop:
            next(flow)
        assert isinstance(stop.value.value, Plan)
        assert not stop.value.value.store


def test_a_stale_entry_within_swr_is_served_and_revalidated_in_the_background() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1, stale-while-revalidate=9"}))
    clock.advance(5)
    flow = start(request(), clock)
    next(flow)
    background = flow.send([entry])
    assert isinstance(background, Background)
    assert background.plan.entry is entry
    served, _ = run_to_end(flow, None)
    assert isinstance(served, Response)
    assert served.headers[CACHE_STATUS_HEADER] == "STALE"


def revalidate(clock: FakeClock, entry: CacheEntry, answer: Response | Exception) -> tuple[object, list[object]]:
    flow = start(request(), clock)
    next(flow)
    plan, _ = run_to_end(flow, [entry])
    assert isinstance(plan, Plan)
    net = network(plan, RULES, clock)
    fetch = next(net)
    assert isinstance(fetch, Fetch)
    assert fetch.request.headers.get("If-None-Match") == entry.headers.get("etag")
    try:
        return run_to_end(net, answer)
    except BaseException as error:
        return error, []


def test_a_304_for_another_representation_refetches_in_full() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1", "ETag": '"v1"'}))
    clock.advance(5)
    flow = start(request(), clock)
    next(flow)
    plan, _ = run_to_end(flow, [entry])
    assert isinstance(plan, Plan)
    net = network(plan, RULES, clock)
    next(net)
    drop = net.send(response({"ETag": '"v9"'}, status=304, body=b""))
    assert isinstance(drop, Drop)
    refetch = net.send(None)
    assert isinstance(refetch, Fetch)
    assert "if-none-match" not in refetch.request.headers
    result, actions = run_to_end(net, response({"Cache-Control": "max-age=1", "ETag": '"v2"'}, body=b"new"))
    assert isinstance(result, Response)
    assert result.content == b"new"
    assert [type(action) for action in actions] == [Save]


def test_a_304_that_now_forbids_storing_is_served_and_the_entry_dropped() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1", "ETag": '"v1"'}))
    clock.advance(5)
    result, actions = revalidate(
        clock, entry, response({"ETag": '"v1"', "Cache-Control": "no-store"}, status=304, body=b"")
    )
    assert isinstance(result, Response)
    assert result.headers[CACHE_STATUS_HEADER] == "REVALIDATED"
    assert [type(action) for action in actions] == [Drop]


def test_an_unstorable_success_supersedes_the_entry_but_an_error_does_not() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1", "ETag": '"v1"'}))
    clock.advance(5)
    _, actions = revalidate(clock, entry, response({"Cache-Control": "no-store"}))
    assert [type(action) for action in actions] == [Drop]
    error = NotFound("gone", status_code=404, headers=[], body_excerpt="")
    raised, actions = revalidate(clock, entry, error)
    assert raised is error
    assert actions == []


def test_an_outage_without_stale_if_error_raises() -> None:
    clock = FakeClock()
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1", "ETag": '"v1"'}))
    clock.advance(5)
    error = ConnectError("refused")
    raised, _ = revalidate(clock, entry, error)
    assert raised is error


def test_a_redirected_response_is_not_stored() -> None:
    clock = FakeClock()
    flow = start(request(), clock)
    next(flow)
    plan, _ = run_to_end(flow, [])
    assert isinstance(plan, Plan)
    net = network(plan, RULES, clock)
    next(net)
    result, actions = run_to_end(net, response({"Cache-Control": "max-age=60"}, url=URL + "/moved"))
    assert isinstance(result, Response)
    assert actions == []


def test_a_response_that_now_varies_differently_replaces_the_old_variant() -> None:
    clock = FakeClock()
    req = request(Accept="text/csv")
    entry = fetched(clock, req, response({"Cache-Control": "max-age=1", "ETag": '"v1"'}))
    clock.advance(5)
    flow = start(req, clock)
    next(flow)
    plan, _ = run_to_end(flow, [entry])
    assert isinstance(plan, Plan)
    net = network(plan, RULES, clock)
    next(net)
    _, actions = run_to_end(net, response({"Cache-Control": "max-age=60", "Vary": "Accept"}))
    save, drop = actions
    assert isinstance(save, Save)
    assert save.entry.vary == ("accept",)
    assert isinstance(drop, Drop)
    assert (drop.key, drop.vary_key) == (entry.key, entry.vary_key)


def test_only_if_cached_is_answered_from_storage_or_with_a_504() -> None:
    """RFC 9111 §5.2.1.7: ``only-if-cached`` never yields a ``Fetch`` nor a ``Background``: a fresh entry is a
    HIT, a stale one within ``stale-while-revalidate`` is served STALE without revalidating, and nothing stored
    (or a stale entry that would need validating, or a request the cache would pass through) gives a 504."""
    clock = FakeClock()
    only = {"Cache-Control": "only-if-cached"}
    entry = fetched(clock, request(), response({"Cache-Control": "max-age=1, stale-while-revalidate=9"}))

    def answer(stored: list[CacheEntry]) -> Response:
        flow = start(request(**only), clock)
        assert isinstance(next(flow), Load)
        result, actions = run_to_end(flow, stored)
        assert actions == []  # neither Fetch nor Background
        assert isinstance(result, Response)
        return result

    assert answer([entry]).headers[CACHE_STATUS_HEADER] == "HIT"
    clock.advance(5)
    assert answer([entry]).headers[CACHE_STATUS_HEADER] == "STALE"
    clock.advance(60)
    assert answer([entry]).status_code == 504
    assert answer([]).status_code == 504
    bypassing = request(**only, **{"If-None-Match": '"x"'})
    with pytest.raises(StopIteration) as stop:
        next(start(bypassing, clock))
    assert isinstance(stop.value.value, Response)
    assert stop.value.value.status_code == 504
