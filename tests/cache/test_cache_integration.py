"""The cache in the clients, against the real fault-injecting upstream on loopback.

Every scenario runs on the aiohttp async client, the httpx async client and the httpx sync client (see
conftest.py). Time is a FakeClock: an entry goes stale when the test moves the clock, never by waiting. The
upstream answers from a script, whatever the request's preconditions: a test scripts the 304 it expects and
checks the conditional request tether sent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

import tether
from tether import Policy
from tether.cache import CACHE_STATUS_HEADER, Cache, MemoryStorage, SQLiteStorage
from tether.errors import ConnectError, ServerError
from tether.testing import FakeClock, Reply, Upstream

pytestmark = pytest.mark.integration

FAST = Policy(budget=None, retries=0)
WALL = 1_700_000_000.0  # FakeClock's wall-clock start


def status(response: tether.Response) -> str | None:
    return response.headers.get(CACHE_STATUS_HEADER)


def cached(**headers: str) -> Reply:
    return Reply(json={"v": 1}, headers=headers)


def test_off_by_default(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    api = make_client(upstream.url)
    assert status(api.get("/x")) is None
    api.get("/x")
    assert len(upstream.requests_for("/x")) == 2


def test_a_fresh_hit_sends_nothing(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    first = api.get("/x")
    assert status(first) == "MISS"
    clock.advance(30)
    second = api.get("/x")
    assert status(second) == "HIT"
    assert second.json() == {"v": 1}
    assert second.headers["Age"] == "30"
    assert second is not first
    assert len(upstream.requests_for("/x")) == 1


def test_etag_revalidation_304(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=60", "ETag": '"v1"', "X-Build": "a"}),
        Reply(status=304, headers={"Cache-Control": "max-age=120", "ETag": '"v1"', "X-Build": "b"}),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    api.get("/x")
    clock.advance(61)
    revalidated = api.get("/x")
    assert status(revalidated) == "REVALIDATED"
    assert revalidated.status_code == 200
    assert revalidated.json() == {"v": 1}  # the stored body
    assert revalidated.headers["X-Build"] == "b"  # the 304's fields refresh the stored ones
    first, second = upstream.requests_for("/x")
    assert first.header("If-None-Match") is None
    assert second.header("If-None-Match") == '"v1"'
    clock.advance(100)  # within the new max-age=120
    assert status(api.get("/x")) == "HIT"
    assert len(upstream.requests_for("/x")) == 2


def test_last_modified_revalidation(upstream: Upstream, make_client: Any) -> None:
    modified = formatdate(WALL - 86_400, usegmt=True)
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10", "Last-Modified": modified}),
        Reply(status=304, headers={"Last-Modified": modified}),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    api.get("/x")
    clock.advance(11)
    assert status(api.get("/x")) == "REVALIDATED"
    assert upstream.requests_for("/x")[1].header("If-Modified-Since") == modified


def test_a_changed_resource_replaces_the_stored_one(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10", "ETag": '"v1"'}),
        Reply(json={"v": 2}, headers={"Cache-Control": "max-age=10", "ETag": '"v2"'}),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    api.get("/x")
    clock.advance(11)
    changed = api.get("/x")
    assert (status(changed), changed.json()) == ("MISS", {"v": 2})
    hit = api.get("/x")
    assert (status(hit), hit.json()) == ("HIT", {"v": 2})


def test_heuristic_freshness_from_last_modified(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        cached(Date=formatdate(WALL, usegmt=True), **{"Last-Modified": formatdate(WALL - 10_000, usegmt=True)}),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    api.get("/x")
    clock.advance(999)  # 10 % of 10,000 s
    assert status(api.get("/x")) == "HIT"
    clock.advance(2)
    api.get("/x")
    assert len(upstream.requests_for("/x")) == 2


def test_no_store_is_never_stored(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "no-store, max-age=60", "ETag": '"v1"'}))
    storage = MemoryStorage()
    api = make_client(upstream.url, cache=Cache(storage))
    assert status(api.get("/x")) == "MISS"
    assert status(api.get("/x")) == "MISS"
    assert len(upstream.requests_for("/x")) == 2
    assert len(storage) == 0
    assert upstream.requests_for("/x")[1].header("If-None-Match") is None


def test_private_responses_are_keyed_by_credential(upstream: Upstream, make_client: Any, tmp_path: Path) -> None:
    """Two clients with different tokens share one SQLite storage: neither sees the other's private response,
    and the tokens appear nowhere in the database file."""
    upstream.route(
        "GET",
        "/me",
        Reply(json={"user": "alice"}, headers={"Cache-Control": "private, max-age=60"}),
        Reply(json={"user": "bob"}, headers={"Cache-Control": "private, max-age=60"}),
    )
    path = tmp_path / "cache.db"
    with SQLiteStorage(path) as storage:
        cache = Cache(storage)
        alice = make_client(upstream.url, cache=cache, auth=tether.Bearer("alice-token-123"))
        bob = make_client(upstream.url, cache=cache, auth=tether.Bearer("bob-token-456"))
        assert alice.get("/me").json() == {"user": "alice"}
        bob_me = bob.get("/me")
        assert (status(bob_me), bob_me.json()) == ("MISS", {"user": "bob"})
        again = alice.get("/me")
        assert (status(again), again.json()) == ("HIT", {"user": "alice"})
        alice_too = make_client(upstream.url, cache=cache, auth=tether.Bearer("alice-token-123"))
        assert alice_too.get("/me").json() == {"user": "alice"}  # same credential, another client: shared
        assert len(upstream.requests_for("/me")) == 2
        # coalescing across credentials is covered in test_coalescing_integration.py
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"alice-token" not in raw
    assert b"bob-token" not in raw


def test_query_api_keys_are_credentials(upstream: Upstream, make_client: Any, tmp_path: Path) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    path = tmp_path / "cache.db"
    with SQLiteStorage(path) as storage:
        one = make_client(upstream.url, cache=Cache(storage), auth=tether.APIKey("key-one-999", in_="query"))
        two = make_client(upstream.url, cache=Cache(storage), auth=tether.APIKey("key-two-999", in_="query"))
        one.get("/x")
        two.get("/x")
        assert status(one.get("/x")) == "HIT"
        assert len(upstream.requests_for("/x")) == 2
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"key-one-999" not in raw
    assert b"key-two-999" not in raw


class HeaderFlow(tether.Auth):
    """A custom auth flow: tether cannot see its credential before sending."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: tether.Request) -> Any:
        yield request.with_headers({"X-Custom": self.token})


def test_custom_auth_flows_never_share_entries_across_clients(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    cache = Cache()
    one = make_client(upstream.url, cache=cache, auth=HeaderFlow("one"))
    two = make_client(upstream.url, cache=cache, auth=HeaderFlow("two"))
    one.get("/x")
    assert status(one.get("/x")) == "HIT"
    assert status(two.get("/x")) == "MISS"
    assert upstream.requests_for("/x")[1].header("X-Custom") == "two"


def test_vary_selects_variants(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60", "Vary": "Accept-Language"}))
    api = make_client(upstream.url, cache=Cache())
    api.get("/x", headers={"Accept-Language": "en"})
    api.get("/x", headers={"Accept-Language": "fr"})
    assert status(api.get("/x", headers={"Accept-Language": "en"})) == "HIT"
    assert status(api.get("/x", headers={"Accept-Language": "fr"})) == "HIT"
    assert status(api.get("/x")) == "MISS"  # no Accept-Language is a third variant
    assert len(upstream.requests_for("/x")) == 3


def test_stale_while_revalidate_serves_stale_during_one_background_revalidation(
    upstream: Upstream, make_client: Any
) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10, stale-while-revalidate=60", "ETag": '"v1"'}),
        Reply(status=304, latency=0.3, headers={"Cache-Control": "max-age=10, stale-while-revalidate=60"}),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock)
    api.get("/x")
    clock.advance(20)
    served = [api.get("/x") for _ in range(20)]
    assert {status(r) for r in served} == {"STALE"}
    assert {r.headers["Age"] for r in served} == {"20"}
    assert all(r.json() == {"v": 1} for r in served)
    api.wait_background()
    requests = upstream.requests_for("/x")
    assert len(requests) == 2  # exactly one background revalidation for twenty stale answers
    assert requests[1].header("If-None-Match") == '"v1"'
    assert status(api.get("/x")) == "HIT"  # the 304 freshened the entry
    clock.advance(100)  # past max-age and stale-while-revalidate: validated in the foreground
    assert status(api.get("/x")) == "REVALIDATED"


def test_a_failed_background_revalidation_keeps_serving(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10, stale-while-revalidate=60"}),
        Reply(status=503),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock, policy=FAST)
    api.get("/x")
    clock.advance(20)
    assert status(api.get("/x")) == "STALE"
    api.wait_background()
    assert status(api.get("/x")) == "STALE"  # still within the window; one more background attempt
    api.wait_background()
    assert len(upstream.requests_for("/x")) == 3


def test_stale_if_error_on_a_5xx(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10, stale-if-error=300", "ETag": '"v1"'}),
        Reply(status=503),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock, policy=Policy(budget=None))  # 3 retries, fake waits
    api.get("/x")
    clock.advance(60)
    stale = api.get("/x")
    assert (status(stale), stale.json(), stale.status_code) == ("STALE", {"v": 1}, 200)
    assert len(upstream.requests_for("/x")) == 5  # the validation went through the pipeline: 1 + 3 retries
    clock.advance(300)  # past stale-if-error
    with pytest.raises(ServerError):
        api.get("/x")


def test_stale_if_error_on_a_transport_error_and_by_client_setting(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10"}), Reply(fault="reset"))
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(stale_if_error=120), clock=clock, policy=FAST)
    api.get("/x")
    clock.advance(60)
    assert status(api.get("/x")) == "STALE"


def test_stale_if_error_on_connection_refused(make_client: Any) -> None:
    with Upstream().running() as server:
        server.route("GET", "/x", Reply(json={"v": 1}, headers={"Cache-Control": "max-age=1, stale-if-error=60"}))
        clock = FakeClock()
        api = make_client(server.url, cache=Cache(), clock=clock, policy=FAST)
        api.get("/x")
    clock.advance(5)
    assert status(api.get("/x")) == "STALE"  # the server is gone
    clock.advance(60)
    with pytest.raises(ConnectError):
        api.get("/x")


def test_must_revalidate_is_never_served_stale(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10, must-revalidate, stale-if-error=300"}),
        Reply(status=503),
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(stale_if_error=300), clock=clock, policy=FAST)
    api.get("/x")
    clock.advance(11)
    with pytest.raises(ServerError):
        api.get("/x")


def test_a_5xx_returned_by_policy_is_answered_stale_too(upstream: Upstream, make_client: Any) -> None:
    upstream.route(
        "GET", "/x", Reply(json={"v": 1}, headers={"Cache-Control": "max-age=10, stale-if-error=60"}), Reply(status=500)
    )
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(), clock=clock, policy=FAST.replace(raise_for_status=False))
    api.get("/x")
    clock.advance(20)
    assert status(api.get("/x")) == "STALE"


def test_sqlite_persists_across_clients_and_survives_a_damaged_row(
    upstream: Upstream, make_client: Any, tmp_path: Path
) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    upstream.route("GET", "/y", cached(**{"Cache-Control": "max-age=60"}))
    path = tmp_path / "cache.db"
    clock = FakeClock()
    with SQLiteStorage(path) as storage:
        first = make_client(upstream.url, cache=Cache(storage), clock=clock)
        first.get("/x")
        first.get("/y")
        first.close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE tether_http_cache_v1 SET headers = '{broken' WHERE url LIKE '%/y'")
    raw.commit()
    raw.close()
    with SQLiteStorage(path) as storage:  # a new process would do the same
        second = make_client(upstream.url, cache=Cache(storage), clock=clock)
        assert status(second.get("/x")) == "HIT"
        assert status(second.get("/y")) == "MISS"  # the damaged row read as a miss, and was replaced
        assert status(second.get("/y")) == "HIT"
    assert len(upstream.requests_for("/x")) == 1
    assert len(upstream.requests_for("/y")) == 2


def test_lru_bound_evicts(upstream: Upstream, make_client: Any) -> None:
    for path in ("/a", "/b", "/c"):
        upstream.route("GET", path, cached(**{"Cache-Control": "max-age=60"}))
    api = make_client(upstream.url, cache=Cache(MemoryStorage(max_entries=2)))
    api.get("/a")
    api.get("/b")
    assert status(api.get("/a")) == "HIT"
    api.get("/c")  # evicts /b, the least recently used
    assert status(api.get("/a")) == "HIT"
    assert status(api.get("/b")) == "MISS"


def test_an_unsafe_request_invalidates_the_url(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/items/1", cached(**{"Cache-Control": "max-age=60"}))
    upstream.route("GET", "/items", cached(**{"Cache-Control": "max-age=60"}))
    upstream.route("PATCH", "/items/1", Reply(json={"ok": True}))
    upstream.route("POST", "/items", Reply(status=201, headers={"Location": "/items/1"}))
    api = make_client(upstream.url, cache=Cache())
    api.get("/items/1")
    api.get("/items")
    api.patch("/items/1", json={"name": "new"})
    assert status(api.get("/items/1")) == "MISS"
    api.post("/items", json={})  # invalidates /items and, by Location, /items/1
    assert status(api.get("/items")) == "MISS"
    assert status(api.get("/items/1")) == "MISS"


def test_head_is_cached_apart_from_get(upstream: Upstream, make_client: Any) -> None:
    upstream.route("HEAD", "/x", Reply(headers={"Cache-Control": "max-age=60"}))
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    api = make_client(upstream.url, cache=Cache())
    assert status(api.head("/x")) == "MISS"
    assert status(api.head("/x")) == "HIT"
    assert api.get("/x").json() == {"v": 1}
    assert status(api.request("GET", "/x")) == "HIT"


def test_request_directives_and_own_preconditions(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60", "ETag": '"v1"'}))
    api = make_client(upstream.url, cache=Cache())
    api.get("/x")
    forced = api.get("/x", headers={"Cache-Control": "no-cache"})
    assert status(forced) == "MISS"  # validated: the upstream answered in full
    assert upstream.requests_for("/x")[-1].header("If-None-Match") == '"v1"'
    own = api.get("/x", headers={"If-None-Match": '"mine"'})  # the caller's own precondition: sent as is
    assert status(own) == "MISS"
    assert upstream.requests_for("/x")[-1].header("If-None-Match") == '"mine"'
    assert status(api.get("/x")) == "HIT"


def test_pagination_and_send_use_the_cache(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    upstream.route("GET", "/items", Reply(json=[1, 2, 3], headers={"Cache-Control": "max-age=60"}))
    api = make_client(upstream.url, cache=Cache(), auth=tether.Bearer("t"))
    request = api.client.build_request("GET", "/x")
    assert status(api.send(request)) == "MISS"
    assert status(api.send(request)) == "HIT"
    assert status(api.get("/x")) == "HIT"  # send() and get() meet on one key, credentials and all
    assert api.paginate("/items", tether.LinkHeader()) == [1, 2, 3]
    assert api.paginate("/items", tether.LinkHeader()) == [1, 2, 3]
    assert len(upstream.requests_for("/items")) == 1


HOSTILE = [
    {"Cache-Control": "max-age=abc"},
    {"Cache-Control": "max-age=-5"},
    {"Cache-Control": "max-age=99999999999999999999999999999999999999"},
    {"Cache-Control": "max-age=10, max-age=20"},
    {"Cache-Control": "max-age=10", "cache-control": "max-age=30"},
    {"Cache-Control": 'no-cache="unterminated, max-age=60'},
    {"Cache-Control": ",,,=,;;max-age==60,,"},
    {"Cache-Control": "stale-while-revalidate=-1, stale-if-error=x, max-age=0"},
    {"Cache-Control": "max-age=60", "Age": "-3"},
    {"Cache-Control": "max-age=60", "Age": "99999999999999999999999"},
    {"Expires": "0", "Date": "garbage"},
    {"Expires": "Sun, 06 Nov 99999 08:49:37 GMT"},
    {"Cache-Control": "max-age=60", "Vary": " , ,, "},
    {"Cache-Control": "max-age=60", "Vary": "*"},
    {"Cache-Control": "max-age=60", "ETag": "\"unterminated \\' etag", "Last-Modified": "not a date"},
    {"Cache-Control": "max-age=60", "ETag": "x" * 8000},
    {"Cache-Control": "max-age=60", "Set-Cookie": "session=abc"},
    {"Cache-Control": 'private="x", public, no-transform, immutable, must-understand, max-age=5'},
]


@pytest.mark.parametrize("headers", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_cache_headers_never_crash(upstream: Upstream, make_client: Any, headers: dict[str, str]) -> None:
    upstream.route("GET", "/x", Reply(json={"v": 1}, headers=headers))
    clock = FakeClock()
    api = make_client(upstream.url, cache=Cache(stale_if_error=10), clock=clock)
    for advance in (0, 1, 100, 10**7):
        clock.advance(advance)
        response = api.get("/x")
        assert response.json() == {"v": 1}
        assert status(response) in ("MISS", "HIT", "REVALIDATED", "STALE")


def test_cache_options_are_checked() -> None:
    with pytest.raises(tether.ConfigurationError):
        Cache(heuristic_fraction=2)
    with pytest.raises(tether.ConfigurationError):
        Cache(stale_if_error=-1)
    with pytest.raises(tether.ConfigurationError):
        Cache(object())  # type: ignore[arg-type]
    with pytest.raises(tether.ConfigurationError):
        tether.Client("http://127.0.0.1:1", cache="yes")  # type: ignore[arg-type]


class BrokenStorage:
    """A storage whose every operation fails: the cache must carry on without it."""

    blocking = False

    def get(self, key: str) -> list[Any]:
        raise OSError("disk on fire")

    def put(self, entry: Any) -> None:
        raise OSError("disk on fire")

    def delete(self, key: str, vary_key: str) -> None:
        raise OSError("disk on fire")

    def invalidate(self, url_key: str) -> None:
        raise OSError("disk on fire")

    def close(self) -> None:
        pass


def test_a_failing_storage_never_fails_a_call(
    upstream: Upstream, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.route("GET", "/x", cached(**{"Cache-Control": "max-age=60"}))
    upstream.route("POST", "/x", Reply(json={}))
    api = make_client(upstream.url, cache=Cache(BrokenStorage()))
    with caplog.at_level(logging.WARNING, "tether.cache"):
        assert status(api.get("/x")) == "MISS"
        assert status(api.get("/x")) == "MISS"
        api.post("/x")
    assert "disk on fire" in caplog.text


def test_closing_ends_background_revalidations(upstream: Upstream, make_client: Any) -> None:
    """Every background task has an owner: closing the client cancels (async) or awaits (sync, bounded by the
    attempt timeout) a revalidation stuck on a hanging upstream."""
    upstream.route(
        "GET",
        "/x",
        Reply(json={"v": 1}, headers={"Cache-Control": "max-age=1, stale-while-revalidate=60"}),
        Reply(fault="hang"),
    )
    clock = FakeClock()
    policy = Policy(budget=None, retries=0, attempt_timeout=0.5)
    api = make_client(upstream.url, cache=Cache(), clock=clock, policy=policy)
    api.get("/x")
    clock.advance(5)
    assert status(api.get("/x")) == "STALE"
    assert api.client._caching.revalidating == 1
    started = time.monotonic()
    api.close()
    assert time.monotonic() - started < 5
    assert api.client._caching.revalidating == 0


# -- credentials the client's auth sets, whatever their names ------------------------------------------------


def raw_files(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.iterdir() if path.is_file())


def test_an_api_key_header_with_an_unflagged_name_keys_the_entry(upstream: Upstream, make_client: Any) -> None:
    """Every header the client's auth sets is a credential, not only those ``is_sensitive_name`` flags: two
    clients with ``APIKey(..., header="Ocp-Apim-Subscription-Key")`` (Azure API Management) sharing one storage
    never get each other's ``private`` responses."""
    upstream.route(
        "GET",
        "/me",
        Reply(json={"user": "alice"}, headers={"Cache-Control": "private, max-age=60"}),
        Reply(json={"user": "bob"}, headers={"Cache-Control": "private, max-age=60"}),
    )
    cache = Cache(MemoryStorage())
    header = "Ocp-Apim-Subscription-Key"
    alice = make_client(upstream.url, cache=cache, policy=FAST, auth=tether.APIKey("alice-key", header=header))
    bob = make_client(upstream.url, cache=cache, policy=FAST, auth=tether.APIKey("bob-key", header=header))
    assert alice.get("/me").json() == {"user": "alice"}
    bob_me = bob.get("/me")
    assert bob_me.json() == {"user": "bob"}, f"bob got alice's private response ({status(bob_me)})"
    assert len(upstream.requests_for("/me")) == 2


def test_a_query_api_key_with_an_unflagged_name_is_not_stored_in_plaintext(upstream: Upstream, tmp_path: Path) -> None:
    """The auth's query parameter is cut out of the stored URL by name: ``APIKey(k, in_="query", name="appid")``
    (OpenWeatherMap's parameter, which ``is_sensitive_name`` does not flag) leaves no trace in the SQLite file,
    and the response is still stored."""
    upstream.route("GET", "/weather", Reply(json={"t": 21}, headers={"Cache-Control": "max-age=60"}))
    with SQLiteStorage(tmp_path / "cache.db") as storage:
        api = tether.Client(
            upstream.url,
            cache=Cache(storage),
            policy=FAST,
            auth=tether.APIKey("appid-secret-4711", in_="query", name="appid"),
        )
        api.get("/weather")
        api.close()
        assert len(storage) == 1
    leaked = b"appid-secret-4711" in raw_files(tmp_path)
    assert not leaked, "the API key is in the SQLite file in plaintext"


def test_a_response_echoing_the_query_api_key_in_a_header_is_not_stored(upstream: Upstream, tmp_path: Path) -> None:
    """An API taking ``?api_key=`` may echo it in its pagination ``Link`` header (GitHub did): a response whose
    stored header values hold one of the request's secret values is not stored, so the key never reaches disk."""
    upstream.route(
        "GET",
        "/items",
        Reply(
            json=[1, 2],
            headers={
                "Cache-Control": "max-age=60",
                "Link": f'<{upstream.url}/items?page=2&api_key=query-secret-0815>; rel="next"',
            },
        ),
    )
    with SQLiteStorage(tmp_path / "cache.db") as storage:
        api = tether.Client(
            upstream.url, cache=Cache(storage), policy=FAST, auth=tether.APIKey("query-secret-0815", in_="query")
        )
        api.get("/items")
        api.close()
    leaked = b"query-secret-0815" in raw_files(tmp_path)
    assert not leaked, "the API key is in the SQLite file in plaintext (the stored Link header)"


def test_an_unsafe_request_invalidates_the_get_despite_a_query_api_key(upstream: Upstream) -> None:
    """RFC 9111 §4.4 with a query ``APIKey``: the GET's ``url_key`` (computed with the key applied, then cut out)
    and the DELETE's (computed before auth) are the same, because the secret is cut out of the query as sent
    rather than the query being re-encoded (``ids=1,2`` stays ``ids=1,2``, not ``ids=1%2C2``)."""
    upstream.route("GET", "/items", Reply(json={"n": 2}, headers={"Cache-Control": "max-age=3600"}))
    upstream.route("DELETE", "/items", Reply(status=204))
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, auth=tether.APIKey("k-123", in_="query"))
    api.get("/items?ids=1,2")
    api.delete("/items?ids=1,2")
    after = api.get("/items?ids=1,2")
    api.close()
    assert status(after) != "HIT"
    assert len(upstream.requests_for("/items")) == 3


# -- RFC 9111 / 9110 details ---------------------------------------------------------------------------------


def test_sqlite_a_newer_response_too_large_to_store_drops_the_outdated_entry(
    upstream: Upstream, tmp_path: Path
) -> None:
    """A newer representation over ``SQLiteStorage(max_bytes=...)`` is not stored, and the outdated one it was
    to replace is deleted all the same: the next call fetches instead of serving the superseded ``v1`` as a
    fresh HIT."""
    upstream.route(
        "GET",
        "/doc",
        Reply(body="v1", headers={"Cache-Control": "max-age=3600", "ETag": '"v1"'}),
        Reply(body="v2" * 5_000, headers={"Cache-Control": "max-age=3600", "ETag": '"v2"'}),
    )
    with SQLiteStorage(tmp_path / "cache.db", max_bytes=4_096) as storage:
        api = tether.Client(upstream.url, cache=Cache(storage), policy=FAST, clock=FakeClock())
        assert api.get("/doc").text == "v1"
        assert api.get("/doc", headers={"Cache-Control": "no-cache"}).text.startswith("v2")
        again = api.get("/doc")
        api.close()
    assert again.text.startswith("v2"), f"served the superseded representation ({status(again)})"


def test_a_redirect_stored_without_following_is_not_served_to_a_call_that_follows(upstream: Upstream) -> None:
    """The cache sits in front of the pipeline and its key ignores the policy, so a redirect the pipeline would
    follow is never stored: a 301 fetched with ``max_redirects=0`` is not served to a later call whose policy
    follows redirects (which gets the target, through the redirect flow and its credential stripping)."""
    upstream.route("GET", "/old", Reply(status=301, headers={"Location": "/new", "Cache-Control": "max-age=3600"}))
    upstream.route("GET", "/new", Reply(json={"new": True}))
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST)
    assert api.get("/old", policy=FAST.replace(max_redirects=0)).status_code == 301
    followed = api.get("/old")
    api.close()
    assert followed.status_code == 200, f"a {followed.status_code} served as {status(followed)}"
    assert followed.json() == {"new": True}


def test_expires_in_asctime_format_is_understood(upstream: Upstream) -> None:
    """RFC 9110 §5.6.7: a recipient MUST accept all three HTTP-date forms; ``Expires: Tue Nov 14 23:13:20 2023``
    (asctime, no zone: GMT) gives the response an hour of freshness."""
    expires = time.asctime(time.gmtime(WALL + 3_600))
    upstream.route("GET", "/x", Reply(json={}, headers={"Date": formatdate(WALL, usegmt=True), "Expires": expires}))
    clock = FakeClock()
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, clock=clock)
    api.get("/x")
    clock.advance(60)
    second = api.get("/x")
    api.close()
    assert status(second) == "HIT"


def test_only_if_cached_never_contacts_the_origin(upstream: Upstream) -> None:
    """RFC 9111 §5.2.1.7: with ``only-if-cached`` and nothing stored, the answer is a 504 (raised as a
    ``ServerError`` under a policy that raises for status, returned under one that does not) and the origin
    never sees the request; once a fresh response is stored, it is served."""
    upstream.route("GET", "/x", Reply(json={"v": 1}, headers={"Cache-Control": "max-age=60"}))
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST)
    only = {"Cache-Control": "only-if-cached"}
    with pytest.raises(ServerError) as raised:
        api.get("/x", headers=only)
    assert raised.value.status_code == 504
    returned = api.get("/x", headers=only, policy=FAST.replace(raise_for_status=False))
    assert returned.status_code == 504
    assert upstream.requests_for("/x") == []
    api.get("/x")
    hit = api.get("/x", headers=only)
    api.close()
    assert (hit.status_code, status(hit)) == (200, "HIT")
    assert len(upstream.requests_for("/x")) == 1


def test_a_head_response_with_a_new_validator_makes_the_stored_get_stale(upstream: Upstream) -> None:
    """RFC 9111 §4.3.5: a 200 to a HEAD whose ``ETag`` differs from the stored GET's makes that GET stale
    (tether drops it): after the HEAD said the representation is now ``"v2"``, the ``"v1"`` body is not served
    as a fresh HIT."""
    upstream.route("GET", "/r", Reply(body="v1", headers={"Cache-Control": "max-age=3600", "ETag": '"v1"'}))
    upstream.route("HEAD", "/r", Reply(headers={"Cache-Control": "max-age=3600", "ETag": '"v2"'}))
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, clock=FakeClock())
    api.get("/r")
    assert api.head("/r").headers["ETag"] == '"v2"'
    after = api.get("/r")
    api.close()
    assert status(after) != "HIT" or after.headers["ETag"] == '"v2"'


def test_a_head_response_with_the_same_validator_freshens_the_stored_get(upstream: Upstream) -> None:
    """RFC 9111 §4.3.5, the other half: a 200 to a HEAD whose validators agree with the stored GET's updates
    it like a 304 would (its fields, its age restarting), so the stale GET is a fresh HIT again. The HEAD
    carries the GET's ``Content-Length``, as a server's does; a different length would make the GET stale."""
    upstream.route("GET", "/r", Reply(body="v1", headers={"Cache-Control": "max-age=60", "ETag": '"v1"'}))
    head = {"Cache-Control": "max-age=60", "ETag": '"v1"', "Content-Length": "2", "X-Seen": "head"}
    upstream.route("HEAD", "/r", Reply(headers=head))
    clock = FakeClock()
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, clock=clock)
    api.get("/r")
    clock.advance(120)
    api.head("/r")
    after = api.get("/r")
    api.close()
    assert (status(after), after.text, after.headers.get("X-Seen")) == ("HIT", "v1", "head")
    assert len(upstream.requests_for("/r")) == 2  # the GET and the HEAD


def test_a_304_that_adds_vary_rekeys_the_entry(upstream: Upstream) -> None:
    """RFC 9111 §4.1 after a 304 (§4.3.4): a ``Vary: Accept`` the 304 adds re-keys the freshened entry by the
    revalidating request's ``Accept``, so a request for XML is not served the stored JSON."""
    upstream.route(
        "GET",
        "/neg",
        Reply(json={"fmt": "json"}, headers={"Cache-Control": "max-age=60", "ETag": '"a"'}),
        Reply(status=304, headers={"Cache-Control": "max-age=60", "ETag": '"a"', "Vary": "Accept"}),
        Reply(body="<xml/>", headers={"Cache-Control": "max-age=60", "ETag": '"b"', "Vary": "Accept"}),
    )
    clock = FakeClock()
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, clock=clock)
    api.get("/neg")
    clock.advance(61)
    assert status(api.get("/neg")) == "REVALIDATED"
    assert status(api.get("/neg")) == "HIT"  # the same Accept finds the re-keyed entry
    xml = api.get("/neg", headers={"Accept": "application/xml"})
    api.close()
    assert xml.content == b"<xml/>", f"{status(xml)}: {xml.content!r}"


# -- background revalidation ---------------------------------------------------------------------------------


def test_sync_a_background_revalidation_that_cannot_start_never_fails_the_call(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When no thread can be started (``RuntimeError: can't start new thread``, simulated), the stale response
    is served all the same, the failure is logged at WARNING, and the entry's revalidation slot is released (a
    later call may revalidate it; ``close()`` does not wait for a thread that does not exist)."""
    upstream.route(
        "GET", "/s", Reply(json={"v": 1}, headers={"Cache-Control": "max-age=1, stale-while-revalidate=600"})
    )
    clock = FakeClock()
    api = tether.Client(upstream.url, cache=Cache(), policy=FAST, clock=clock)
    api.get("/s")
    clock.advance(5)

    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, "tether.cache"):
        patch.setattr(threading.Thread, "start", cannot_start)
        try:
            served: tether.Response | None = api.get("/s")
        except RuntimeError:
            served = None
    caching = api._caching
    assert caching is not None
    leaked = caching.revalidating
    with caching._lock:  # let close() return at once even if the slot leaked
        caching._background.clear()
    api.close()
    assert served is not None and status(served) == "STALE"
    assert leaked == 0
    assert "could not start the background revalidation" in caplog.text
