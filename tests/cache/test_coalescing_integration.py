"""Single-flight in the clients, against the real upstream: 1,000 concurrent identical GETs make one upstream
request; different credentials (or policies) are never joined; the leader's failure reaches every follower; a
cancelled leader strands nobody. The sync client is driven from threads."""

from __future__ import annotations

import asyncio
import threading
import traceback
from typing import Any

import pytest

import tether
from tether import Policy
from tether.cache import CACHE_STATUS_HEADER, Cache
from tether.errors import ServerError
from tether.testing import Reply, Upstream

pytestmark = pytest.mark.integration

FAST = Policy(budget=None, retries=0)


def status(response: tether.Response) -> str | None:
    return response.headers.get(CACHE_STATUS_HEADER)


def async_client(kind: str, url: str, **options: Any) -> tether.AsyncClient:
    transport = tether.HttpxAsyncTransport() if kind == "httpx" else None
    return tether.AsyncClient(url, transport=transport, **options)


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
@pytest.mark.parametrize("with_cache", [False, True], ids=["coalesce-only", "cache"])
async def test_a_thousand_identical_gets_make_one_upstream_request(kind: str, with_cache: bool) -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/v1/report", Reply(json={"rows": 42}, latency=0.2))
        options: dict[str, Any] = {"cache": Cache()} if with_cache else {"coalesce": True}
        async with async_client(kind, upstream.url, **options) as api:
            responses = await asyncio.gather(*(api.get("/v1/report") for _ in range(1000)))
        assert len(upstream.requests_for("/v1/report")) == 1
    assert len({id(response) for response in responses}) == 1000  # each caller has its own Response
    assert all(response.json() == {"rows": 42} for response in responses)
    statuses = [status(response) for response in responses]
    assert statuses.count("COALESCED") == 999
    assert statuses.count("MISS" if with_cache else None) == 1


async def test_different_credentials_are_not_coalesced() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/me", Reply(json={}, latency=0.2))
        async with tether.AsyncClient(upstream.url, coalesce=True) as api:
            calls = [
                api.get("/me", headers={"Authorization": f"Bearer {'alice' if i % 2 else 'bob'}"}) for i in range(200)
            ]
            await asyncio.gather(*calls)
        seen = sorted(request.header("Authorization") or "" for request in upstream.requests_for("/me"))
    assert seen == ["Bearer alice", "Bearer bob"]


async def test_different_policies_or_headers_are_not_coalesced() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/x", Reply(json={}, latency=0.2))
        async with tether.AsyncClient(upstream.url, coalesce=True) as api:
            other = api.policy.replace(raise_for_status=False)
            await asyncio.gather(
                *(api.get("/x") for _ in range(10)),
                *(api.get("/x", policy=api.policy.replace()) for _ in range(10)),  # an equal policy: joined
                *(api.get("/x", policy=other) for _ in range(10)),
                *(api.get("/x", headers={"Accept": "text/csv"}) for _ in range(10)),
                *(api.get("/x", params={"page": 2}) for _ in range(10)),
            )
        assert len(upstream.requests_for("/x")) == 4


async def test_the_leaders_failure_reaches_every_follower() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/x", Reply(status=503, latency=0.2))
        async with tether.AsyncClient(upstream.url, coalesce=True, policy=FAST) as api:
            results = await asyncio.gather(*(api.get("/x") for _ in range(1000)), return_exceptions=True)
        assert len(upstream.requests_for("/x")) == 1
    assert all(isinstance(result, ServerError) for result in results)


async def test_a_cancelled_leader_does_not_hang_its_followers() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/x", Reply(json={"ok": True}, latency=0.3))
        async with tether.AsyncClient(upstream.url, coalesce=True) as api:
            leader = asyncio.ensure_future(api.get("/x"))
            await asyncio.sleep(0.05)  # the leader's request is on the wire
            followers = [asyncio.ensure_future(api.get("/x")) for _ in range(50)]
            await asyncio.sleep(0.05)
            leader.cancel()
            async with asyncio.timeout(5):
                responses = await asyncio.gather(*followers)
            with pytest.raises(asyncio.CancelledError):
                await leader
        assert len(upstream.requests_for("/x")) == 1  # the followers got the leader's request's answer
    assert all(response.json() == {"ok": True} for response in responses)


async def test_when_every_caller_is_cancelled_the_request_is_dropped_and_the_next_call_starts_afresh() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/x", Reply(json={"n": 1}, latency=0.3), Reply(json={"n": 2}))
        async with tether.AsyncClient(upstream.url, coalesce=True) as api:
            calls = [asyncio.ensure_future(api.get("/x")) for _ in range(10)]
            await asyncio.sleep(0.05)
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            async with asyncio.timeout(5):
                assert (await api.get("/x")).json() == {"n": 2}
        assert len(upstream.requests_for("/x")) == 2


async def test_coalescing_can_be_turned_off_with_a_cache() -> None:
    async with Upstream() as upstream:
        upstream.route("GET", "/x", Reply(json={}, latency=0.1, headers={"Cache-Control": "max-age=60"}))
        async with tether.AsyncClient(upstream.url, cache=Cache(), coalesce=False) as api:
            await asyncio.gather(*(api.get("/x") for _ in range(20)))
            assert status(await api.get("/x")) == "HIT"
        assert len(upstream.requests_for("/x")) == 20


def run_threads(count: int, target: Any) -> list[Any]:
    """``target(index)`` in ``count`` threads released at once; each one's result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target(index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.parametrize("with_cache", [False, True], ids=["coalesce-only", "cache"])
def test_sync_threads_share_one_upstream_request(with_cache: bool) -> None:
    options: dict[str, Any] = {"cache": Cache()} if with_cache else {"coalesce": True}
    with Upstream().running() as upstream, tether.Client(upstream.url, **options) as api:
        upstream.route("GET", "/x", Reply(json={"ok": True}, latency=0.5))
        responses = run_threads(50, lambda _: api.get("/x"))
        assert len(upstream.requests_for("/x")) == 1
    assert len({id(response) for response in responses}) == 50
    assert all(response.json() == {"ok": True} for response in responses)
    assert [status(response) for response in responses].count("COALESCED") == 49


def test_sync_threads_get_the_leaders_failure() -> None:
    with Upstream().running() as upstream, tether.Client(upstream.url, coalesce=True, policy=FAST) as api:
        upstream.route("GET", "/x", Reply(status=503, latency=0.5))
        results = run_threads(20, lambda _: api.get("/x"))
        assert len(upstream.requests_for("/x")) == 1
    assert all(isinstance(result, ServerError) for result in results)


def test_sync_different_credentials_are_not_coalesced() -> None:
    with Upstream().running() as upstream, tether.Client(upstream.url, coalesce=True) as api:
        upstream.route("GET", "/me", Reply(json={}, latency=0.5))
        tokens = ("alice", "bob", "carol")
        run_threads(30, lambda i: api.get("/me", headers={"Authorization": f"Bearer {tokens[i % 3]}"}))
        seen = sorted(request.header("Authorization") or "" for request in upstream.requests_for("/me"))
    assert seen == ["Bearer alice", "Bearer bob", "Bearer carol"]  # one request per credential, not per thread


def test_sync_coalesced_followers_do_not_share_one_growing_traceback(upstream: Upstream) -> None:
    """Each follower thread raises its own copy of the leader's error, with the leader's traceback: raising one
    object in every thread would prepend each thread's frames to its shared ``__traceback__`` (with 20 threads
    ~125 frames against ~5 for a lone call, growing with the followers and keeping their frames alive)."""
    upstream.route("GET", "/boom", Reply(status=500, latency=0.5))
    solo = tether.Client(upstream.url, policy=FAST)
    with pytest.raises(ServerError) as alone:
        solo.get("/boom")
    solo.close()
    baseline = len(traceback.extract_tb(alone.value.__traceback__))

    api = tether.Client(upstream.url, coalesce=True, policy=FAST)
    errors: list[ServerError] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            api.get("/boom")
        except ServerError as error:
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    api.close()
    assert len(errors) == 20
    assert len(upstream.requests_for("/boom")) == 2  # the solo call and one coalesced call
    assert len({id(error) for error in errors}) == 20  # every caller has its own exception object
    assert {(type(error), error.status_code, str(error)) for error in errors} == {
        (ServerError, 500, str(errors[0]))
    }  # ... equal to the leader's
    longest = max(len(traceback.extract_tb(error.__traceback__)) for error in errors)
    assert longest <= baseline + 20, f"{longest} frames in a caller's traceback (a single call has {baseline})"
