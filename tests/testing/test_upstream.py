"""The fault-injecting upstream, driven over real loopback sockets with httpx and raw bytes.

These tests never use a tether client: they pin down the server that tether's own client tests rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tether.testing.upstream as upstream_module
from tether.testing.upstream import Reply, Upstream, main

pytestmark = pytest.mark.integration

GOOD_REQUEST = b"GET /ok HTTP/1.1\r\nHost: upstream\r\n\r\n"


class ManualClock:
    """A clock for the server's ``now`` that moves only when told to."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


@pytest.fixture
async def client(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.url, timeout=5, trust_env=False) as client:
        yield client


def address(up: Upstream) -> tuple[str, int]:
    parts = urlsplit(up.url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def exchange(up: Upstream, data: bytes, *, half_close: bool = True) -> bytes:
    """Send raw bytes on a fresh connection; return all the server sends until it closes the connection."""
    reader, writer = await asyncio.open_connection(*address(up))
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Split one raw response into status, headers (lower-cased names) and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


# -- scripted replies ---------------------------------------------------------------------------------------


async def test_replies_are_served_in_sequence_then_the_last_one_repeats(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.route("GET", "/seq", Reply(status=503, json={"error": "busy"}), Reply(body="ok"))
    responses = [await client.get("/seq") for _ in range(4)]
    assert [r.status_code for r in responses] == [503, 200, 200, 200]
    assert responses[0].json() == {"error": "busy"}
    assert [r.text for r in responses[1:]] == ["ok", "ok", "ok"]


async def test_an_exhausted_script_answers_404_without_repeat_last(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.route("POST", "/once", Reply(status=201), repeat_last=False)
    assert (await client.post("/once")).status_code == 201
    second = await client.post("/once")
    assert second.status_code == 404
    assert second.json() == {"error": "script exhausted", "method": "POST", "path": "/once"}


async def test_scripting_a_route_again_replaces_it_and_restarts_the_sequence(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.route("GET", "/r", Reply(body="a"), Reply(body="b"))
    assert (await client.get("/r")).text == "a"
    upstream.route("GET", "/r", Reply(body="c"), Reply(body="d"))
    assert [(await client.get("/r")).text for _ in range(2)] == ["c", "d"]


async def test_default_headers_and_bodies(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/empty")
    upstream.route("GET", "/json", Reply(json={"a": [1, 2]}, headers={"X-Custom": "yes"}))
    upstream.route("GET", "/text", Reply(body="héllo"))
    upstream.route("GET", "/bytes", Reply(body=b"\x00\x01", headers={"Content-Type": "image/png"}))
    upstream.route("GET", "/nocontent", Reply(status=204))

    empty = await client.get("/empty")
    assert (empty.status_code, empty.content) == (200, b"")
    assert empty.headers["content-length"] == "0"
    assert "content-type" not in empty.headers
    assert empty.headers["date"].endswith(" GMT")

    as_json = await client.get("/json")
    assert as_json.json() == {"a": [1, 2]}
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["x-custom"] == "yes"
    assert as_json.headers["content-length"] == str(len(as_json.content))

    text = await client.get("/text")
    assert text.content == "héllo".encode()
    assert text.headers["content-type"] == "text/plain; charset=utf-8"

    raw = await client.get("/bytes")
    assert raw.content == b"\x00\x01"
    assert raw.headers.get_list("content-type") == ["image/png"]

    no_content = await client.get("/nocontent")
    assert no_content.status_code == 204
    assert "content-length" not in no_content.headers


async def test_an_unknown_route_answers_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.delete("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "no route", "method": "DELETE", "path": "/nowhere"}


async def test_latency_delays_the_answer(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/slow", Reply(body="late", latency=0.2))
    started = time.monotonic()
    response = await client.get("/slow")
    assert time.monotonic() - started >= 0.2
    assert response.text == "late"


# -- faults -------------------------------------------------------------------------------------------------


async def test_reset_fault_aborts_the_connection_with_an_rst(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/reset", Reply(fault="reset"))
    with pytest.raises(httpx.ReadError):
        await client.get("/reset")
    with pytest.raises(ConnectionResetError):  # ECONNRESET, not a clean end of stream
        await exchange(upstream, b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n", half_close=False)


async def test_truncate_fault_sends_half_the_announced_body(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/cut", Reply(body="x" * 100, fault="truncate"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/cut")
    status, headers, body = parse_response(await exchange(upstream, b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (status, headers["content-length"], body) == (200, "100", b"x" * 50)


async def test_hang_fault_never_answers(upstream: Upstream) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    async with httpx.AsyncClient(base_url=upstream.url, timeout=0.2, trust_env=False) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/hang")
    assert len(upstream.requests_for("/hang")) == 1


async def test_stop_drops_a_hanging_connection_quietly(upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    async with httpx.AsyncClient(base_url=upstream.url, timeout=5, trust_env=False) as client:
        pending = asyncio.create_task(client.get("/hang"))
        for _ in range(500):  # until the server holds the request
            if upstream.requests:
                break
            await asyncio.sleep(0.01)
        await upstream.stop()
        with pytest.raises(httpx.RemoteProtocolError):
            await pending
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_close_fault_closes_cleanly_without_answering(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/close", Reply(fault="close"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/close")
    assert await exchange(upstream, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n", half_close=False) == b""


async def test_faults_follow_latency_and_are_recorded(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.route("GET", "/flaky", Reply(fault="close", latency=0.05), Reply(body="recovered"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/flaky")
    assert (await client.get("/flaky")).text == "recovered"
    assert len(upstream.requests_for("/flaky")) == 2


# -- quotas -------------------------------------------------------------------------------------------------


async def test_quota_limits_a_fixed_window_and_advertises_it_in_both_header_families() -> None:
    clock = ManualClock()
    async with Upstream(now=clock) as up, httpx.AsyncClient(base_url=up.url, trust_env=False) as client:
        up.quota("GET", "/limited", limit=2, window=30)
        first = await client.get("/limited")
        clock.advance(10.5)
        second = await client.get("/limited")
        third = await client.get("/limited")

        assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
        assert first.json() == second.json() == {"ok": True}
        assert third.json() == {"error": "rate limited"}
        assert third.headers["retry-after"] == "20"  # 19.5 s left, rounded up
        assert "retry-after" not in first.headers
        for response, remaining, reset in ((first, "1", "30"), (second, "0", "20"), (third, "0", "20")):
            assert response.headers["ratelimit-limit"] == response.headers["x-ratelimit-limit"] == "2"
            assert response.headers["ratelimit-remaining"] == response.headers["x-ratelimit-remaining"] == remaining
            assert response.headers["ratelimit-reset"] == reset
        epoch_reset = int(third.headers["x-ratelimit-reset"])
        assert time.time() + 18 <= epoch_reset <= time.time() + 21

        clock.advance(19.5)  # the window is over: the next request opens a new one
        fourth = await client.get("/limited")
        assert fourth.status_code == 200
        assert (fourth.headers["ratelimit-remaining"], fourth.headers["ratelimit-reset"]) == ("1", "30")


async def test_quota_with_a_custom_reply(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.quota("POST", "/q", limit=1, window=60, reply=Reply(status=201, body="made"))
    made = await client.post("/q")
    assert (made.status_code, made.text, made.headers["ratelimit-remaining"]) == (201, "made", "0")
    assert (await client.post("/q")).status_code == 429


# -- collections --------------------------------------------------------------------------------------------

ITEMS: list[object] = [{"id": i, "name": f"item {i}"} for i in range(23)]
Walk = Callable[[httpx.AsyncClient, str], Awaitable[tuple[list[object], int]]]


async def walk_link(client: httpx.AsyncClient, path: str) -> tuple[list[object], int]:
    items: list[object] = []
    pages = 0
    url: str | None = path
    while url is not None:
        response = await client.get(url)
        response.raise_for_status()
        pages += 1
        items.extend(response.json())
        url = response.links.get("next", {}).get("url")
    return items, pages


async def walk_cursor(client: httpx.AsyncClient, path: str) -> tuple[list[object], int]:
    items: list[object] = []
    pages = 0
    cursor: str | None = None
    while True:
        response = await client.get(path, params={"cursor": cursor} if cursor else None)
        response.raise_for_status()
        pages += 1
        body = response.json()
        items.extend(body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return items, pages


async def walk_page(client: httpx.AsyncClient, path: str) -> tuple[list[object], int]:
    items: list[object] = []
    page = 1
    while True:
        body = (await client.get(path, params={"page": page})).raise_for_status().json()
        assert body["page"] == page
        items.extend(body["results"])
        if page >= body["total_pages"]:
            return items, page
        page += 1


async def walk_offset(client: httpx.AsyncClient, path: str) -> tuple[list[object], int]:
    items: list[object] = []
    pages = 0
    while True:
        body = (await client.get(path, params={"offset": len(items)})).raise_for_status().json()
        pages += 1
        items.extend(body["items"])
        if len(items) >= body["total"]:
            return items, pages


async def walk_next_url(client: httpx.AsyncClient, path: str) -> tuple[list[object], int]:
    items: list[object] = []
    pages = 0
    url: str | None = path
    while url is not None:
        body = (await client.get(url)).raise_for_status().json()
        pages += 1
        items.extend(body["results"])
        url = body["next"]
    return items, pages


WALKS = [
    pytest.param("link", walk_link, id="link"),
    pytest.param("cursor", walk_cursor, id="cursor"),
    pytest.param("page", walk_page, id="page"),
    pytest.param("offset", walk_offset, id="offset"),
    pytest.param("next_url", walk_next_url, id="next_url"),
]


@pytest.mark.parametrize(("style", "walk"), WALKS)
async def test_each_collection_style_walks_every_item_in_order(
    upstream: Upstream, client: httpx.AsyncClient, style: Any, walk: Walk
) -> None:
    upstream.collection("/things", ITEMS, style=style, page_size=5)
    items, pages = await walk(client, "/things")
    assert items == ITEMS
    assert pages == 5


@pytest.mark.parametrize(("style", "walk"), WALKS)
async def test_an_empty_collection_is_one_empty_page(
    upstream: Upstream, client: httpx.AsyncClient, style: Any, walk: Walk
) -> None:
    upstream.collection("/none", [], style=style)
    assert await walk(client, "/none") == ([], 1)


async def test_link_style_names_first_prev_next_and_last(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.collection("/things", ITEMS, style="link", page_size=5)
    base = f"{upstream.url}/things"
    middle = await client.get("/things", params={"page": 3})
    assert middle.json() == ITEMS[10:15]
    assert {rel: link["url"] for rel, link in middle.links.items()} == {
        "first": f"{base}?page=1&per_page=5",
        "prev": f"{base}?page=2&per_page=5",
        "next": f"{base}?page=4&per_page=5",
        "last": f"{base}?page=5&per_page=5",
    }
    first = await client.get("/things")
    assert set(first.links) == {"next", "last"}
    last = await client.get("/things", params={"page": 5})
    assert set(last.links) == {"first", "prev"}
    wide = await client.get("/things", params={"per_page": 20, "page": 2})
    assert wide.json() == ITEMS[20:]


async def test_collection_queries_are_validated(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.collection("/c", ITEMS, style="cursor")
    upstream.collection("/p", ITEMS, style="page", page_size=5)
    upstream.collection("/o", ITEMS, style="offset")
    for path, params in [
        ("/c", {"cursor": "not-a-cursor"}),
        ("/c", {"cursor": ""}),
        ("/c", {"limit": "0"}),
        ("/p", {"page": "0"}),
        ("/p", {"per_page": "x"}),
        ("/o", {"offset": "-1"}),
        ("/o", {"limit": "9" * 40}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert "error" in response.json()
    past_end = (await client.get("/p", params={"page": 9})).json()
    assert past_end == {"results": [], "page": 9, "total_pages": 5}
    offset_limit = (await client.get("/o", params={"offset": 20, "limit": 2})).json()
    assert offset_limit == {"items": ITEMS[20:22], "total": 23}


# -- recording ----------------------------------------------------------------------------------------------


async def test_requests_are_recorded_with_headers_query_and_body() -> None:
    clock = ManualClock(50.0)
    async with Upstream(now=clock) as up, httpx.AsyncClient(base_url=up.url, trust_env=False) as client:
        up.route("POST", "/items", Reply(status=201))
        await client.post(
            "/items?tag=a&tag=b&empty=",
            content=b"\x00payload",
            headers=[("X-Trace", "t1"), ("x-trace", "t2")],
        )
        clock.advance(1)
        await client.get("/unrouted")

        recorded, unrouted = up.requests
        assert (recorded.method, recorded.path, recorded.body, recorded.received_at) == (
            "POST",
            "/items",
            b"\x00payload",
            50.0,
        )
        assert recorded.query == {"tag": ["a", "b"], "empty": [""]}
        assert [value for name, value in recorded.headers if name.lower() == "x-trace"] == ["t1", "t2"]
        assert recorded.header("X-TRACE") == "t1"
        assert recorded.header("content-length") == "8"
        assert recorded.header("missing") is None
        assert (unrouted.path, unrouted.received_at) == ("/unrouted", 51.0)
        assert up.requests_for("/items") == [recorded]

        up.reset()
        assert up.requests == []
        assert (await client.post("/items")).status_code == 404  # the route is gone too


async def test_requests_returns_a_copy(upstream: Upstream, client: httpx.AsyncClient) -> None:
    await client.get("/a")
    snapshot = upstream.requests
    snapshot.clear()
    assert len(upstream.requests) == 1


# -- HTTP/1.1 framing ---------------------------------------------------------------------------------------


async def test_keep_alive_pipelining_and_connection_close(upstream: Upstream) -> None:
    upstream.route("GET", "/a", Reply(body="A"))
    keep = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    close = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = await exchange(upstream, keep + keep + close, half_close=False)  # returns only because the server closes
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert raw.count(b"Connection: close\r\n") == 1
    assert raw.endswith(b"Connection: close\r\n\r\nA")


async def test_http_1_0_closes_unless_asked_to_keep_alive(upstream: Upstream) -> None:
    upstream.route("GET", "/a", Reply(body="A"))
    raw = await exchange(upstream, b"GET /a HTTP/1.0\r\n\r\n", half_close=False)
    assert parse_response(raw)[1]["connection"] == "close"
    raw = await exchange(upstream, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
    assert raw.count(b"Connection: keep-alive\r\n") == 2


async def test_chunked_request_bodies_are_decoded(upstream: Upstream) -> None:
    upstream.route("POST", "/upload", Reply(status=201))
    request = (
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    assert parse_response(await exchange(upstream, request))[0] == 201
    assert upstream.requests[0].body == b"Wikipedia"


async def test_expect_100_continue(upstream: Upstream) -> None:
    upstream.route("POST", "/upload", Reply(status=201))
    reader, writer = await asyncio.open_connection(*address(upstream))
    try:
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"abc")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 201 ")
    finally:
        writer.close()
        await writer.wait_closed()
    assert upstream.requests[0].body == b"abc"


async def test_head_answers_headers_only(upstream: Upstream) -> None:
    upstream.route("HEAD", "/h", Reply(body="hello"))
    upstream.route("GET", "/h", Reply(body="hello"))
    raw = await exchange(upstream, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /h HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert raw.count(b"Content-Length: 5\r\n") == 2
    assert raw.count(b"hello") == 1


# -- hostile input ------------------------------------------------------------------------------------------

HOSTILE = [
    pytest.param(b"\x00\xff\xfe garbage \x01\r\n\r\n", 400, id="garbage"),
    pytest.param(b"GET /ok HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, id="oversized-header"),
    pytest.param(b"GET /ok HTTP/1.1\r\n" + b"X-Many: a\r\n" * 7_000 + b"\r\n", 431, id="too-many-headers"),
    pytest.param(b"GET /" + b"a" * 70_000, 431, id="endless-request-line"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, id="negative-content-length"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", 400, id="invalid-content-length"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, id="two-lengths"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: 20000000\r\n\r\n", 413, id="body-too-large"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: " + b"9" * 5_000 + b"\r\n\r\n", 413, id="absurd-length"),
    pytest.param(b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFF\r\n", 413, id="chunk-too-large"),
    pytest.param(b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", 400, id="bad-chunk-size"),
    pytest.param(b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", 400, id="chunk-overrun"),
    pytest.param(b"POST /ok HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, id="unknown-coding"),
    pytest.param(
        b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, id="length-and-chunked"
    ),
    pytest.param(b"GET /ok HTTP/1.1\r\nNo-Colon\r\n\r\n", 400, id="header-without-colon"),
    pytest.param(b"GET /ok HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400, id="obs-fold"),
    pytest.param(b"GET /ok HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400, id="space-in-header-name"),
    pytest.param(b"GET /ok HTTP/1.1\r\nHost: x\nX-Smuggled: 1\r\n\r\n", 400, id="bare-lf"),
    pytest.param(b"GET /ok HTTP/1.1\r\nHost: x\rX-Smuggled: 1\r\n\r\n", 400, id="bare-cr"),
    pytest.param(b"GET /ok HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, id="nul"),
    pytest.param(b"GET /ok HTTP/2.0\r\n\r\n", 505, id="http-2"),
    pytest.param(b"GET ok HTTP/1.1\r\n\r\n", 400, id="relative-target"),
    pytest.param(b"GET /ok\r\n\r\n", 400, id="http-0.9"),
    pytest.param(b"POST /ok HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", None, id="truncated-body"),
    pytest.param(b"GET /ok HTT", None, id="truncated-head"),
    pytest.param(b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", None, id="truncated-chunk"),
]


@pytest.mark.parametrize(("data", "status"), HOSTILE)
async def test_hostile_input_is_refused_and_the_server_keeps_serving(
    upstream: Upstream, data: bytes, status: int | None
) -> None:
    upstream.route("GET", "/ok", Reply(body="fine"))
    raw = await exchange(upstream, data)
    if status is None:
        assert raw == b""  # closed without an answer
    else:
        got, headers, body = parse_response(raw)
        assert got == status
        assert headers["connection"] == "close"
        assert "error" in json.loads(body)
    assert upstream.requests == []
    assert parse_response(await exchange(upstream, GOOD_REQUEST))[2] == b"fine"


HTTP_PIECES = st.sampled_from(
    [
        *(b"GET", b"POST", b" ", b"/ok", b"/__upstream__/routes", b"?a=1", b"HTTP/1.1", b"HTTP/1.0", b":", b"5"),
        *(b"\r\n", b"\n", b"\r\n\r\n", b"Content-Length: ", b"Transfer-Encoding: chunked", b"Connection: close"),
        *(b"-1", b"\x00", b"0\r\n\r\n", b"ffffffff\r\n", b"{}", b"Expect: 100-continue"),
    ]
)


def test_random_input_never_breaks_the_server() -> None:
    with Upstream().running() as up:
        up.route("GET", "/ok", Reply(body="fine"))

        def send(data: bytes) -> bytes:
            received = b""
            with socket.create_connection(address(up), timeout=5) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                with contextlib.suppress(ConnectionResetError):
                    while chunk := sock.recv(65536):
                        received += chunk
            return received

        @settings(max_examples=80, deadline=None, database=None)
        @given(st.one_of(st.binary(max_size=300), st.lists(HTTP_PIECES, max_size=30).map(b"".join)))
        def check(data: bytes) -> None:
            answer = send(data)
            assert not answer.startswith(b"HTTP/1.1 500 ")
            assert send(GOOD_REQUEST).endswith(b"\r\n\r\nfine")

        check()


# -- admin API ----------------------------------------------------------------------------------------------


async def test_admin_api_scripts_everything_over_http(upstream: Upstream, client: httpx.AsyncClient) -> None:
    route = {
        "method": "GET",
        "path": "/x",
        "replies": [{"status": 503, "json": {"e": 1}, "headers": {"X-A": "1"}, "latency": 0}, {"body": "fine"}],
        "repeat_last": False,
    }
    assert (await client.post("/__upstream__/routes", json=route)).status_code == 204
    first, second, third = [await client.get("/x", params={"n": n}) for n in range(3)]
    assert (first.status_code, first.json(), first.headers["x-a"]) == (503, {"e": 1}, "1")
    assert (second.status_code, second.text) == (200, "fine")
    assert third.status_code == 404

    boom = {"method": "GET", "path": "/boom", "replies": [{"fault": "close"}]}
    assert (await client.post("/__upstream__/routes", json=boom)).status_code == 204
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/boom")

    quota = {"method": "GET", "path": "/q", "limit": 1, "window": 60}
    assert (await client.post("/__upstream__/quota", json=quota)).status_code == 204
    assert [(await client.get("/q")).status_code for _ in range(2)] == [200, 429]

    collection = {"path": "/c", "items": list(range(7)), "style": "cursor", "page_size": 3}
    assert (await client.post("/__upstream__/collection", json=collection)).status_code == 204
    assert await walk_cursor(client, "/c") == (list(range(7)), 3)

    await client.post("/x", content=b"\xff\x00")
    assert (await client.get("/__upstream__/count", params={"path": "/x"})).json() == {"count": 4}
    recorded = (await client.get("/__upstream__/requests")).json()
    assert not any(entry["path"].startswith("/__upstream__/") for entry in recorded)  # admin calls are not recorded
    assert recorded[0]["query"] == {"n": ["0"]}
    assert recorded[-1]["method"] == "POST"
    assert recorded[-1]["body"].encode("latin-1") == b"\xff\x00"
    assert ["Content-Length", "2"] in recorded[-1]["headers"] or ["content-length", "2"] in recorded[-1]["headers"]
    assert (await client.get("/__upstream__/count")).json() == {"count": len(recorded)}

    assert (await client.post("/__upstream__/reset")).status_code == 204
    assert (await client.get("/__upstream__/requests")).json() == []
    assert (await client.get("/x")).json()["error"] == "no route"


@pytest.mark.parametrize(
    ("endpoint", "payload", "message"),
    [
        ("routes", b"{not json", "not valid JSON"),
        ("routes", b"", "not valid JSON"),
        ("routes", b"[" * 100_000, "not valid JSON"),
        ("routes", b"[]", "route must be an object"),
        ("routes", b'{"method": "GET"}', "route is missing path"),
        ("routes", b'{"method": "GET", "path": "/x", "extra": 1}', "unknown field(s) extra"),
        ("routes", b'{"method": "GET", "path": "x"}', "route path"),
        ("routes", b'{"method": "GET", "path": "/__upstream__/routes"}', "reserved"),
        ("routes", b'{"method": "GET", "path": "/x", "replies": {}}', "route.replies must be a list"),
        ("routes", b'{"method": "GET", "path": "/x", "replies": [{"status": "200"}]}', "replies[0].status"),
        ("routes", b'{"method": "GET", "path": "/x", "replies": [{"status": 42}]}', "three-digit"),
        ("routes", b'{"method": "GET", "path": "/x", "replies": [{"fault": "explode"}]}', "Reply.fault must be one of"),
        ("routes", b'{"method": "GET", "path": "/x", "replies": [{"headers": {"A": 1}}]}', "headers['A']"),
        ("routes", b'{"method": "GET", "path": "/x", "repeat_last": 1}', "repeat_last must be true or false"),
        ("quota", b'{"method": "GET", "path": "/q", "limit": -1, "window": 1}', "limit"),
        ("quota", b'{"method": "GET", "path": "/q", "limit": 1, "window": "1"}', "quota.window must be a number"),
        ("collection", b'{"path": "/c", "items": [], "style": "bogus"}', "style must be one of"),
        ("collection", b'{"path": "/c", "items": [], "style": "link", "page_size": 0}', "page_size"),
    ],
)
async def test_invalid_admin_payloads_get_a_clear_400(
    upstream: Upstream, client: httpx.AsyncClient, endpoint: str, payload: bytes, message: str
) -> None:
    response = await client.post(f"/__upstream__/{endpoint}", content=payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert upstream.requests == []


async def test_admin_api_rejects_wrong_methods_and_unknown_endpoints(client: httpx.AsyncClient) -> None:
    wrong_method = await client.get("/__upstream__/reset")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert (await client.get("/__upstream__/nope")).status_code == 404


# -- lifecycle and validation -------------------------------------------------------------------------------


def test_running_in_a_thread_serves_sync_clients_and_takes_scripts_from_any_thread() -> None:
    with Upstream().running() as up, httpx.Client(base_url=up.url, timeout=5, trust_env=False) as client:
        up.route("GET", "/t", Reply(body="one"))
        assert client.get("/t").text == "one"
        up.route("GET", "/t", Reply(body="two"))
        assert client.get("/t").text == "two"
        assert [r.path for r in up.requests] == ["/t", "/t"]
        with pytest.raises(RuntimeError):
            up.start_in_thread()
    up.stop_thread()  # stopping twice is harmless


def test_a_thread_that_cannot_listen_raises_in_the_caller() -> None:
    with Upstream().running() as taken, pytest.raises(OSError, match="already in use"):
        Upstream(port=address(taken)[1]).start_in_thread()


async def test_lifecycle_guards() -> None:
    up = Upstream()
    with pytest.raises(RuntimeError):
        _ = up.url
    await up.start()
    try:
        assert up.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError):
            await up.start()
    finally:
        await up.stop()
    await up.stop()  # stopping twice is harmless


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Reply(status=99), id="status-too-low"),
        pytest.param(lambda: Reply(status=1000), id="status-too-high"),
        pytest.param(lambda: Reply(body="x", json={}), id="body-and-json"),
        pytest.param(lambda: Reply(latency=-1), id="negative-latency"),
        pytest.param(lambda: Reply(latency=math.inf), id="infinite-latency"),
        pytest.param(lambda: Reply(fault=cast(Any, "explode")), id="unknown-fault"),
        pytest.param(lambda: Reply(fault="truncate"), id="truncate-without-body"),
        pytest.param(lambda: Reply(headers={"Bad Name": "x"}), id="bad-header-name"),
        pytest.param(lambda: Reply(headers={"X": "a\r\nInjected: 1"}), id="header-injection"),
    ],
)
def test_invalid_replies_are_rejected(make: Callable[[], Reply]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # each case has its own message; the type is the contract
        make()


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda up: up.route("GET", "relative"), id="relative-path"),
        pytest.param(lambda up: up.route("GET", "/a?b=1"), id="query-in-path"),
        pytest.param(lambda up: up.route("GET", "/__upstream__/x"), id="reserved-path"),
        pytest.param(lambda up: up.route("GE T", "/a"), id="bad-method"),
        pytest.param(lambda up: up.quota("GET", "/q", limit=-1, window=1), id="negative-limit"),
        pytest.param(lambda up: up.quota("GET", "/q", limit=1, window=0), id="empty-window"),
        pytest.param(lambda up: up.collection("/c", [], style=cast(Any, "bogus")), id="unknown-style"),
        pytest.param(lambda up: up.collection("/c", [], style="link", page_size=0), id="empty-pages"),
    ],
)
def test_invalid_scripts_are_rejected(script: Callable[[Upstream], None]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # each case has its own message; the type is the contract
        script(Upstream())


def test_collection_items_must_be_json() -> None:
    with pytest.raises(TypeError):
        Upstream().collection("/c", [object()], style="link")


# -- command line -------------------------------------------------------------------------------------------

SRC = Path(upstream_module.__file__).resolve().parents[2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_command_line_serves_until_signalled(tmp_path: Path, signum: signal.Signals) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps([{"method": "GET", "path": "/hello", "replies": [{"json": {"hi": 1}}]}]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "tether.testing.upstream", "--port", "0", "--routes", str(routes)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        try:
            assert select.select([process.stdout], [], [], 10)[0], "the server printed nothing within 10 s"
            line = process.stdout.readline()
            assert line.startswith("listening on http://127.0.0.1:")
            url = line.removeprefix("listening on ").strip()
            with httpx.Client(base_url=url, timeout=5, trust_env=False) as client:
                assert client.get("/hello").json() == {"hi": 1}
                scripted = client.post("/__upstream__/routes", json={"method": "PUT", "path": "/p"})
                assert scripted.status_code == 204
                assert client.put("/p").status_code == 200
                assert client.get("/__upstream__/count").json() == {"count": 2}
            process.send_signal(signum)
            assert process.wait(timeout=10) == 0
            assert process.stdout.read() == ""  # exactly one line on stdout
        finally:
            if process.poll() is None:
                process.kill()


def test_command_line_rejects_an_invalid_routes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps([{"method": "GET", "path": "/ok"}, {"method": "GET", "path": "bad"}]))
    assert main(["--routes", str(routes)]) == 2
    assert "routes[1]" in capsys.readouterr().err
    assert main(["--routes", str(tmp_path / "missing.json")]) == 2
    routes.write_text("{}")
    assert main(["--routes", str(routes)]) == 2
    assert "must be a list" in capsys.readouterr().err
