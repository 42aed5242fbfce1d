"""Cache keys: equal requests meet, credentials never do, and no key or stored URL holds a secret."""

from __future__ import annotations

import pytest

from tether._models import Headers, Request
from tether.cache._keys import NO_CREDENTIALS, Credentials, RequestKeys, request_keys, url_key, vary_key

URL = "https://api.example/v1/items?page=2"
SECRET = "sk_live_abcdef123456"


def keys_of(
    url: str = URL, headers: dict[str, str] | None = None, identity: str = "", body: bytes | None = None
) -> RequestKeys:
    return request_keys(Request("GET", url, headers=Headers(headers or {}), content=body), identity)


def test_equal_requests_have_equal_keys() -> None:
    assert keys_of(headers={"Accept": "application/json"}) == keys_of(headers={"accept": "application/json"})


def test_the_method_and_the_url_make_the_key() -> None:
    get = keys_of()
    head = request_keys(Request("HEAD", URL), "")
    assert get.key != head.key
    assert get.url_key == head.url_key  # an unsafe request to the URL invalidates both
    assert keys_of(URL + "&x=1").key != get.key
    assert keys_of(URL + "#fragment").key == get.key  # a fragment never reaches the server


@pytest.mark.parametrize("name", ["Authorization", "Cookie", "X-API-Key", "X-Shopify-Access-Token"])
def test_different_credentials_never_share_a_key(name: str) -> None:
    alice = keys_of(headers={name: "alice-secret"})
    bob = keys_of(headers={name: "bob-secret"})
    anonymous = keys_of()
    assert len({alice.key, bob.key, anonymous.key}) == 3
    assert len({alice.flight, bob.flight, anonymous.flight}) == 3
    assert alice.url_key == bob.url_key == anonymous.url_key


def test_a_query_api_key_is_part_of_the_credential_not_of_the_url() -> None:
    alice = keys_of(URL + "&api_key=alice")
    bob = keys_of(URL + "&api_key=bob")
    assert alice.key != bob.key
    assert alice.url_key == bob.url_key == url_key(URL)
    assert "alice" not in alice.url


def test_an_identity_separates_credentials_tether_cannot_see() -> None:
    assert keys_of(identity="client-1").key != keys_of(identity="client-2").key


def test_no_key_holds_a_secret() -> None:
    for keys in (
        keys_of(URL + "&access_token=" + SECRET, headers={"Authorization": f"Bearer {SECRET}"}),
        keys_of(f"https://user:{SECRET}@api.example/v1?key={SECRET}"),
    ):
        for value in (keys.key, keys.url_key, keys.flight, keys.url):
            assert SECRET not in value


def test_the_flight_key_is_stricter_than_the_cache_key() -> None:
    plain = keys_of()
    traced = keys_of(headers={"X-Request-Id": "1"})
    assert plain.key == traced.key  # the cache key ignores other headers (Vary selects variants)
    assert plain.flight != traced.flight  # but only identical requests share a flight
    assert keys_of(body=b"a").flight != keys_of(body=b"b").flight


def test_vary_key_normalises_whitespace_and_lines_but_not_values() -> None:
    names = ("accept", "accept-language")
    one = Headers([("Accept", "a/b, c/d"), ("Accept-Language", "en")])
    two = Headers([("accept", "a/b,c/d"), ("accept-language", "en")])
    three = Headers([("Accept", "a/b"), ("Accept", "c/d"), ("Accept-Language", "en")])
    assert vary_key(one, names) == vary_key(two, names) == vary_key(three, names)
    assert vary_key(one, names) != vary_key(Headers([("Accept", "a/b, c/d"), ("Accept-Language", "fr")]), names)
    # an absent header is not an empty one
    assert vary_key(Headers({"Accept-Language": ""}), ("accept-language",)) != vary_key(Headers(), ("accept-language",))
    assert vary_key(one, ()) == ""


AUTH_SETS = Credentials(headers=frozenset({"ocp-apim-subscription-key"}), params=frozenset({"appid"}))


def test_the_auths_headers_and_params_are_credentials_whatever_their_names() -> None:
    """Names ``is_sensitive_name`` does not flag are credentials when the client's auth sets them: they key the
    entry (by digest) and leave the URL; without ``Credentials`` they are ordinary headers and parameters."""

    def keys(url: str, headers: dict[str, str], credentials: Credentials = AUTH_SETS) -> RequestKeys:
        return request_keys(Request("GET", url, headers=Headers(headers)), "", credentials)

    alice = keys(URL, {"Ocp-Apim-Subscription-Key": "alice-secret"})
    bob = keys(URL, {"Ocp-Apim-Subscription-Key": "bob-secret"})
    assert alice.key != bob.key
    assert alice.flight != bob.flight
    with_param = keys(URL + "&appid=" + SECRET, {})
    assert with_param.url_key == url_key(URL, AUTH_SETS) == url_key(URL)
    assert SECRET not in with_param.url
    assert SECRET in with_param.secrets  # kept for the call, to refuse storing a response that echoes it
    assert SECRET not in repr(with_param)
    plain = keys(URL + "&appid=" + SECRET, {}, NO_CREDENTIALS)
    assert SECRET in plain.url  # appid is not a credential by name


def test_cutting_a_secret_keeps_the_rest_of_the_query_as_sent() -> None:
    """The secret is cut out of the query as sent, never re-encoded, so the ``url_key`` of a URL with the auth's
    parameter equals that of the same URL without it (what an unsafe request before auth invalidates)."""
    url = "https://api.example/items?ids=1,2&q=a+b&x=%2F"
    assert url_key(url + "&api_key=" + SECRET) == url_key(url)
    assert url_key(url + "&appid=" + SECRET, AUTH_SETS) == url_key(url, AUTH_SETS)
    assert url_key("https://api.example/items?api_key=" + SECRET) == url_key("https://api.example/items")
    assert url_key(url) != url_key(url.replace("1,2", "1%2C2"))  # the query's bytes are the URL's


def test_a_head_knows_the_key_of_the_get_it_may_update() -> None:
    """RFC 9111 §4.3.5: a HEAD's ``get_key`` is the key of the same request as a GET (same credentials)."""
    head = request_keys(Request("HEAD", URL, headers=Headers({"Authorization": "Bearer a"})))
    get = request_keys(Request("GET", URL, headers=Headers({"Authorization": "Bearer a"})))
    assert head.get_key == get.key == get.get_key != head.key
