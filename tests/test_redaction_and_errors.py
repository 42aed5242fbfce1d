"""Secrets never reach an error message, a repr or a log line; errors say what happened and what to do."""

import pytest

from tether import APIKey, Basic, Bearer, Headers, Request, Response
from tether._redaction import REDACTED, is_sensitive_name, redact_headers, redact_text, redact_url
from tether.errors import (
    BODY_EXCERPT_LIMIT,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    HTTPStatusError,
    NotFound,
    RateLimited,
    ServerError,
    TetherError,
    Unauthorized,
    Unprocessable,
    error_for_response,
)


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "cookie",
        "Set-Cookie",
        "X-API-Key",
        "api_key",
        "X-Shopify-Access-Token",
        "client_secret",
        "refresh_token",
        "password",
        "sig",
        "code",
        "X-Auth-Token",
        "Proxy-Authorization",
    ],
)
def test_sensitive_names(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize("name", ["Content-Type", "page", "cursor", "limit", "id", "Accept", "X-Request-Id"])
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive_name(name)


def test_redact_url_query_and_userinfo() -> None:
    url = "https://user:hunter2@api.example.com/v1/x?page=2&access_token=abc123&key=K"
    redacted = redact_url(url)
    assert "hunter2" not in redacted and "abc123" not in redacted and "=K" not in redacted
    assert "page=2" in redacted and "user:" in redacted
    assert redact_url("https://api.example.com/v1/x?page=2") == "https://api.example.com/v1/x?page=2"


def test_redact_headers() -> None:
    pairs = redact_headers([("Authorization", "Bearer t0k"), ("Content-Type", "application/json")])
    assert pairs == [("Authorization", REDACTED), ("Content-Type", "application/json")]


def test_redact_text_json_form_and_bearer() -> None:
    text = redact_text('{"access_token": "AT-1", "id": "x", "nested": {"client_secret": "CS"}} token=ZZ&a=1 Bearer BBB')
    for secret in ("AT-1", "CS", "ZZ", "BBB"):
        assert secret not in text
    assert '"id": "x"' in text and "a=1" in text


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
    request = Request(
        "POST",
        "https://api.example.com/v1/charges?api_key=sk_live_SECRET",
        headers=Headers({"Authorization": "Bearer sk_live_TOKEN"}),
    )
    return Response(status, headers=Headers(headers), content=body, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, Unprocessable),
        (429, RateLimited),
        (418, ClientError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[HTTPStatusError]) -> None:
    error = error_for_response(_response(status), attempts=2, elapsed=1.5)
    assert type(error) is cls
    assert isinstance(error, TetherError)
    assert (error.status_code, error.method, error.attempts) == (status, "POST", 2)
    text = str(error)
    assert "2 attempts in 1.50 s" in text
    assert cls.advice and cls.advice in text  # says what to do


def test_errors_never_show_secrets() -> None:
    body = b'{"error": "bad", "access_token": "sk_live_BODY", "card": {"cvc": "123"}}'
    error = error_for_response(_response(400, body, {"Set-Cookie": "session=sk_live_COOKIE"}))
    everything = f"{error} {error!r} {error.url} {error.headers} {error.body_excerpt}"
    for secret in ("sk_live_SECRET", "sk_live_TOKEN", "sk_live_BODY", "sk_live_COOKIE"):
        assert secret not in everything
    assert "bad" in error.body_excerpt


def test_body_excerpt_is_bounded() -> None:
    error = error_for_response(_response(500, b"x" * (BODY_EXCERPT_LIMIT * 50)))
    assert len(error.body_excerpt) < BODY_EXCERPT_LIMIT + 100
    assert f"{BODY_EXCERPT_LIMIT * 50} bytes in all" in error.body_excerpt


def test_non_utf8_body_excerpt() -> None:
    error = error_for_response(_response(500, b"\xff\xfe\x00garbage\x80"))
    assert "garbage" in error.body_excerpt


def test_rate_limited_carries_retry_after() -> None:
    error = error_for_response(_response(429, headers={"Retry-After": "30"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 30
    assert "retry after 30 s" in str(error)
    missing = error_for_response(_response(429))
    assert isinstance(missing, RateLimited) and missing.retry_after is None


def test_reprs_of_requests_and_credentials_hide_secrets() -> None:
    request = _response(200).request
    assert "sk_live_SECRET" not in repr(request)
    assert "sk_live_TOKEN" not in repr(request.headers) if request else True
    for auth in (Bearer("sk_live_B"), APIKey("sk_live_K"), Basic("me", "sk_live_P")):
        assert "sk_live" not in repr(auth) and "sk_live" not in str(auth)


def test_timeouts_are_builtin_timeouts() -> None:
    from tether.errors import ConnectTimeout, DeadlineExceeded, TransportTimeout

    for cls in (TransportTimeout, DeadlineExceeded, ConnectTimeout):
        assert issubclass(cls, TimeoutError)
