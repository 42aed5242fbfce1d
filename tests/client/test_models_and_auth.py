"""Request/Response/Headers behaviour, request building and static auth (pure)."""

import json

import pytest

from tether import APIKey, AsyncClient, Basic, Bearer, ConfigurationError, Headers, Policy, Request, Response
from tether.errors import NotFound


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")])
    assert headers["content-type"] == "text/plain"
    assert headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert "CONTENT-TYPE" in headers
    assert len(headers) == 2
    assert next(iter(headers.items())) == ("Set-Cookie", "a=1")
    merged = headers.merged({"content-type": "application/json"})
    assert merged.get_list("Content-Type") == ["application/json"]
    assert headers["Content-Type"] == "text/plain"  # immutable: merged() copies


def test_response_text_json_and_errors() -> None:
    response = Response(
        200, headers=Headers({"Content-Type": "text/plain; charset=latin-1"}), content="é".encode("latin-1")
    )
    assert response.text == "é"
    assert Response(200, content=b'{"a": [1]}').json() == {"a": [1]}
    with pytest.raises(ValueError, match="not JSON"):
        Response(200, content=b"<html>").json()
    assert Response(200, headers=Headers({"Content-Type": "text/plain; charset=nope"}), content=b"ok").text == "ok"
    with pytest.raises(NotFound):
        Response(404, request=Request("GET", "https://x.test/a")).raise_for_status()
    assert Response(204).raise_for_status().is_success


def client() -> AsyncClient:
    return AsyncClient("https://api.example.com/v1/", params={"lang": "en"}, headers={"X-Team": "core"})


def test_build_request_joins_base_url_params_and_json() -> None:
    request = client().build_request(
        "post", "/charges", params={"expand": ["a", "b"], "skip": None}, json={"amount": 5}
    )
    assert request.method == "POST"
    assert request.url == "https://api.example.com/v1/charges?lang=en&expand=a&expand=b"
    assert json.loads(request.content or b"") == {"amount": 5}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Team"] == "core"
    assert request.headers["User-Agent"].startswith("tether/")


def test_post_and_patch_get_a_generated_idempotency_key_others_do_not() -> None:
    api = client()
    keys = {api.build_request(m, "/x").headers.get("Idempotency-Key") for m in ("POST", "POST")}
    assert len(keys) == 2 and None not in keys  # fresh per call
    assert "Idempotency-Key" in api.build_request("PATCH", "/x").headers
    assert "Idempotency-Key" not in api.build_request("GET", "/x").headers
    assert "Idempotency-Key" not in api.build_request("PUT", "/x").headers
    own = api.build_request("POST", "/x", headers={"idempotency-key": "mine"})
    assert own.headers.get_list("Idempotency-Key") == ["mine"]
    off = api.build_request("POST", "/x", policy=Policy(idempotency=None))
    assert "Idempotency-Key" not in off.headers


def test_form_data_and_content() -> None:
    api = client()
    form = api.build_request("POST", "/x", data={"a": "1 2", "b": True})
    assert form.content == b"a=1+2&b=true"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert api.build_request("PUT", "/x", content="raw").content == b"raw"
    with pytest.raises(ConfigurationError, match="at most one"):
        api.build_request("POST", "/x", json={}, data={})


def test_relative_url_needs_base_url_and_base_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncClient().build_request("GET", "/x")
    with pytest.raises(ConfigurationError):
        AsyncClient("ftp://example.com")
    assert AsyncClient().build_request("GET", "https://a.test/x").url == "https://a.test/x"


def test_static_auth_schemes() -> None:
    request = Request("GET", "https://a.test/x?y=1#frag")
    assert Bearer("t").apply(request).headers["Authorization"] == "Bearer t"
    assert Basic("u", "p").apply(request).headers["Authorization"] == "Basic dTpw"
    assert APIKey("k").apply(request).headers["X-API-Key"] == "k"
    assert APIKey("k", header="Authorization", prefix="Token ").apply(request).headers["Authorization"] == "Token k"
    assert APIKey("k w", in_="query", name="api_key").apply(request).url == "https://a.test/x?y=1&api_key=k%20w#frag"
    with pytest.raises(ConfigurationError):
        Bearer("bad\r\nX-Injected: 1")
    with pytest.raises(ConfigurationError):
        Basic("a:b", "p")


def test_policy_validation_and_replace() -> None:
    policy = Policy()
    assert policy.replace(retries=0).retries == 0
    assert policy.retries == 3
    with pytest.raises(ConfigurationError):
        Policy(deadline=0)
    with pytest.raises(ConfigurationError):
        Policy(retries=-1)


def test_undecoded_headers_repair_lone_surrogates_on_first_read() -> None:
    """Values decoded with surrogateescape (aiohttp) become encodable: UTF-8 kept, other bytes as latin-1."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from tether._models import UndecodedHeaders

    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    data = CIMultiDictProxy(CIMultiDict([("X-Bad", raw), ("X-Good", "caf\u00e9 \u2603"), ("X-Ascii", "a")]))
    headers = UndecodedHeaders._wrap(data)
    assert headers["x-bad"] == "caf\u00e9"
    assert type(headers) is Headers  # settled once: a plain Headers from now on
    assert headers["x-good"] == "caf\u00e9 \u2603"
    assert headers.get_list("X-Ascii") == ["a"]
    for value in headers.values():
        value.encode("utf-8")
    ascii_only = UndecodedHeaders._wrap(CIMultiDictProxy(CIMultiDict([("A", "1")])))
    assert list(ascii_only.items()) == [("A", "1")]
    assert type(ascii_only) is Headers


def test_a_copy_of_undecoded_headers_is_repaired_too() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from tether._models import UndecodedHeaders

    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    copy = Headers(UndecodedHeaders._wrap(CIMultiDictProxy(CIMultiDict([("X-Bad", raw)]))))
    assert copy["x-bad"] == "caf\u00e9"
    copy["x-bad"].encode("utf-8")
