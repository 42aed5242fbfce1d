"""Redirect decisions (pure): which redirects are followed, how the method changes, which headers survive."""

from __future__ import annotations

import pytest

from tether._models import Headers, Request, Response
from tether.client._redirects import follow
from tether.errors import ReadError

SECRET = "s3cr3t-value-123"
HEADERS = Headers(
    {
        "User-Agent": "tether/test",
        "Accept": "application/json",
        "Authorization": f"Bearer {SECRET}",
        "Cookie": f"sid={SECRET}",
        "X-API-Key": SECRET,
        "X-Shop": SECRET,
        "Content-Type": "application/json",
        "Idempotency-Key": "k-1",
    }
)


def _request(method: str = "GET", url: str = "https://api.example.com/v1/a", content: bytes | None = None) -> Request:
    return Request(method, url, headers=HEADERS, content=content)


def _redirect(status: int, location: str | None) -> Response:
    headers = Headers({"Location": location} if location is not None else {})
    return Response(status, headers=headers)


@pytest.mark.parametrize("status", [200, 204, 300, 304, 305, 306, 400, 404, 500])
def test_only_the_five_redirect_statuses_are_followed(status: int) -> None:
    assert follow(_request(), _redirect(status, "/elsewhere")) is None


@pytest.mark.parametrize("location", [None, "", "   "])
def test_a_redirect_without_a_location_is_the_response(location: str | None) -> None:
    assert follow(_request(), _redirect(302, location)) is None


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/v2/b", "https://api.example.com/v2/b"),
        ("b?x=1", "https://api.example.com/v1/b?x=1"),
        ("//cdn.example.com/c", "https://cdn.example.com/c"),
        ("https://api.example.com/d#frag", "https://api.example.com/d"),
    ],
)
def test_location_is_resolved_against_the_request_url(location: str, expected: str) -> None:
    following = follow(_request(), _redirect(302, location))
    assert following is not None
    assert following.url == expected


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (303, "POST", "GET"),
        (303, "PUT", "GET"),
        (303, "HEAD", "HEAD"),
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (301, "PUT", "PUT"),
        (302, "DELETE", "DELETE"),
        (307, "POST", "POST"),
        (308, "POST", "POST"),
        (308, "PATCH", "PATCH"),
    ],
)
def test_method_and_body_after_a_redirect(status: int, method: str, expected: str) -> None:
    following = follow(_request(method, content=b'{"a":1}'), _redirect(status, "/next"))
    assert following is not None
    assert following.method == expected
    if expected == method:
        assert following.content == b'{"a":1}'
        assert following.headers is HEADERS  # nothing to change: the very same headers
    else:
        assert following.content is None
        assert "content-type" not in following.headers
        assert following.headers["authorization"] == f"Bearer {SECRET}"  # same origin: credentials stay


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.net/steal",
        "http://api.example.com/v1/a",  # a downgrade to plain HTTP
        "https://api.example.com:8443/v1/a",  # another port
        "https://sub.api.example.com/v1/a",
    ],
)
def test_credentials_never_follow_to_another_origin(location: str) -> None:
    following = follow(_request(), _redirect(302, location), credentials=frozenset({"x-shop"}))
    assert following is not None
    names = {name.lower() for name, _ in following.headers.items()}
    assert names == {"user-agent", "accept", "content-type", "idempotency-key"}
    assert all(SECRET not in value for _, value in following.headers.items())


@pytest.mark.parametrize(
    ("source", "location"),
    [
        ("https://api.example.com/v1/a", "https://API.Example.com:443/v1/b"),
        ("http://api.example.com/v1/a", "https://api.example.com/v1/a"),  # an upgrade on the default ports
        ("http://127.0.0.1:8080/a", "/b"),
    ],
)
def test_credentials_stay_on_the_same_origin(source: str, location: str) -> None:
    following = follow(_request(url=source), _redirect(307, location), credentials=frozenset({"x-shop"}))
    assert following is not None
    assert following.headers is HEADERS


@pytest.mark.parametrize(
    "location",
    ["ftp://api.example.com/x", "javascript:alert(1)", "file:///etc/passwd", "http://", "http://:80/x"],
)
def test_a_location_that_is_not_an_http_url_is_a_read_error(location: str) -> None:
    with pytest.raises(ReadError, match="not an http"):
        follow(_request(), _redirect(302, location))


def test_the_error_for_a_bad_location_redacts_its_secrets() -> None:
    with pytest.raises(ReadError) as caught:
        follow(_request(), _redirect(302, f"ftp://example.com/x?access_token={SECRET}"))
    assert SECRET not in str(caught.value)
