"""Pagination styles, pure: each reads items and the next request from a response."""

import json
from typing import Any

import pytest

from tether import Cursor, Headers, LinkHeader, NextURL, Offset, PageNumber, PaginationError, Request, Response
from tether.client import PageWalker
from tether.client._pagination import parse_link_header


def page(request: Request, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(200, headers=Headers(headers), content=json.dumps(body).encode(), request=request)


BASE = Request("GET", "https://api.example.com/items?filter=x")


def test_parse_link_header_rfc8288() -> None:
    value = '<https://a.test/x?page=3&a=1,2>; rel="next", <https://a.test/x?page=1>; rel="first prev"; title="a, b"'
    links = parse_link_header([value])
    assert links == {
        "next": "https://a.test/x?page=3&a=1,2",
        "first": "https://a.test/x?page=1",
        "prev": "https://a.test/x?page=1",
    }
    assert parse_link_header(["garbage", ""]) == {}


def test_link_header_follows_next_and_resolves_relative() -> None:
    style = LinkHeader()
    result = style.page(BASE, page(BASE, [1, 2], {"Link": '</items?page=2>; rel="next"'}))
    assert result.items == [1, 2]
    assert result.next is not None and result.next.url == "https://api.example.com/items?page=2"
    assert style.page(BASE, page(BASE, [3])).next is None


def test_cursor_from_body() -> None:
    style = Cursor(param="cursor", cursor_path="meta.next_cursor", items_path="data")
    result = style.page(BASE, page(BASE, {"data": [1], "meta": {"next_cursor": "abc"}}))
    assert result.next is not None and result.next.url == "https://api.example.com/items?filter=x&cursor=abc"
    assert style.page(BASE, page(BASE, {"data": [1], "meta": {"next_cursor": None}})).next is None


def test_stripe_style_cursor_from_last_item() -> None:
    style = Cursor(
        param="starting_after",
        from_item="id",
        has_more_path="has_more",
        items_path="data",
        limit_param="limit",
        limit=2,
    )
    first = style.start(BASE)
    assert "limit=2" in first.url
    result = style.page(first, page(first, {"data": [{"id": "a"}, {"id": "b"}], "has_more": True}))
    assert result.next is not None and "starting_after=b" in result.next.url
    assert style.page(first, page(first, {"data": [{"id": "c"}], "has_more": False})).next is None


def test_page_number_stops_on_empty_short_or_total() -> None:
    style = PageNumber(items_path="results", size_param="per_page", size=2, total_pages_path="total_pages")
    first = style.start(BASE)
    assert "page=1" in first.url and "per_page=2" in first.url
    nxt = style.page(first, page(first, {"results": [1, 2], "total_pages": 3})).next
    assert nxt is not None and "page=2" in nxt.url
    assert style.page(first, page(first, {"results": [1], "total_pages": 3})).next is None
    assert style.page(first, page(first, {"results": []})).next is None
    last = first.with_url(first.url.replace("page=1", "page=3"))
    assert style.page(last, page(last, {"results": [1, 2], "total_pages": 3})).next is None


def test_offset_limit() -> None:
    style = Offset(limit=2, items_path="items", total_path="total")
    first = style.start(BASE)
    nxt = style.page(first, page(first, {"items": [1, 2], "total": 5})).next
    assert nxt is not None and "offset=2" in nxt.url and "limit=2" in nxt.url
    assert style.page(first, page(first, {"items": [1]})).next is None
    at_end = first.with_url(first.url.replace("offset=0", "offset=2"))
    assert style.page(at_end, page(at_end, {"items": [3, 4], "total": 4})).next is None


def test_next_url_in_body() -> None:
    style = NextURL()
    result = style.page(BASE, page(BASE, {"results": [1], "next": "/items?page=2"}))
    assert result.next is not None and result.next.url == "https://api.example.com/items?page=2"
    assert style.page(BASE, page(BASE, {"results": [1], "next": None})).next is None


@pytest.mark.parametrize(
    ("style", "body", "message"),
    [
        (Cursor(items_path="data"), {"items": []}, "expected a list of items at 'data', found nothing"),
        (LinkHeader(), {"not": "a list"}, "as the body, found dict"),
        (NextURL(), {"results": [1], "next": 5}, "must be a string"),
        (Cursor(cursor_path="c", items_path="data"), {"data": [1], "c": {"x": 1}}, "cursor must be"),
    ],
)
def test_unexpected_shapes_raise_pagination_error(style: Any, body: Any, message: str) -> None:
    with pytest.raises(PaginationError, match=message):
        style.page(BASE, page(BASE, body))


def test_non_json_page_raises_pagination_error() -> None:
    bad = Response(200, content=b"<html>", request=BASE)
    with pytest.raises(PaginationError, match="not JSON"):
        LinkHeader().page(BASE, bad)


def test_walker_bounds_and_loop_detection() -> None:
    style = NextURL()
    walker = PageWalker(style, BASE, max_items=3)
    request = walker.next_request()
    assert request is not None
    assert walker.accept(page(request, {"results": [1, 2], "next": "/items?p=2"})) == [1, 2]
    request = walker.next_request()
    assert request is not None
    assert walker.accept(page(request, {"results": [3, 4], "next": "/items?p=3"})) == [3]
    assert walker.next_request() is None

    looping = PageWalker(style, BASE)
    request = looping.next_request()
    assert request is not None
    looping.accept(page(request, {"results": [1], "next": BASE.url}))
    with pytest.raises(PaginationError, match="loops"):
        looping.next_request()

    pages = PageWalker(style, BASE, max_pages=1)
    request = pages.next_request()
    assert request is not None
    pages.accept(page(request, {"results": [1], "next": "/items?p=2"}))
    assert pages.next_request() is None
