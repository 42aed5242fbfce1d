"""The RFC 9111 decisions, pure, with the time passed in: no clock, no network, no storage."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether._models import Headers, Response
from tether.cache._fields import CacheControl, parse_cache_control
from tether.cache._keys import vary_key
from tether.cache._rules import (
    FOLLOWED_REDIRECTS,
    Fresh,
    Revalidate,
    Rules,
    ServeStale,
    assess,
    carries_secrets,
    conditional_headers,
    current_age,
    freshen,
    freshness_lifetime,
    head_matches,
    is_outage,
    stale_if_error_allows,
    storable,
    stored_headers,
    validator_matches,
    with_date,
)
from tether.cache._storage import CacheEntry
from tether.client._redirects import REDIRECT_STATUSES
from tether.errors import (
    CircuitOpen,
    ConnectError,
    DeadlineExceeded,
    NotFound,
    RateLimited,
    ReadError,
    ResponseTooLarge,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    ServerError,
    TransportTimeout,
)

T0 = 1_700_000_000.0  # wall-clock seconds: when the response arrived
RULES = Rules()
NO_CC = CacheControl()


def date(at: float) -> str:
    return formatdate(at, usegmt=True)


def entry(headers: dict[str, str] | list[tuple[str, str]], *, status: int = 200, at: float = T0) -> CacheEntry:
    return CacheEntry(
        key="k",
        vary_key="",
        url_key="u",
        url="https://api.example/x",
        method="GET",
        vary=(),
        status_code=status,
        reason="OK",
        headers=Headers(headers),
        content=b"body",
        request_time=at,
        response_time=at,
    )


def lifetime(headers: dict[str, str], status: int = 200, rules: Rules = RULES) -> float:
    return freshness_lifetime(status, Headers(headers), T0, rules)


def test_max_age_wins_over_expires_and_s_maxage_is_ignored_by_a_private_cache() -> None:
    headers = {"Cache-Control": "max-age=60, s-maxage=600", "Date": date(T0), "Expires": date(T0 + 3600)}
    assert lifetime(headers) == 60


def test_expires_minus_date() -> None:
    assert lifetime({"Date": date(T0), "Expires": date(T0 + 300)}) == 300
    assert lifetime({"Expires": date(T0 + 300)}) == 300  # no Date: the time it arrived stands in (RFC 9110 §6.6.1)


@pytest.mark.parametrize("expires", ["0", "-1", "yesterday", ""])
def test_an_invalid_expires_is_already_expired(expires: str) -> None:
    assert lifetime({"Date": date(T0), "Expires": expires}) == 0


def test_conflicting_expires_lines_are_stale() -> None:
    headers = Headers([("Date", date(T0)), ("Expires", date(T0 + 60)), ("Expires", date(T0 + 90))])
    assert freshness_lifetime(200, headers, T0, RULES) == 0


def test_heuristic_freshness_is_a_fraction_of_the_time_since_last_modified_capped() -> None:
    ten_days = 10 * 86_400
    headers = {"Date": date(T0), "Last-Modified": date(T0 - ten_days)}
    assert lifetime(headers, rules=Rules(heuristic_max=10**9)) == pytest.approx(86_400)  # 10 % of 10 days
    assert lifetime(headers, rules=Rules(heuristic_max=3600)) == 3600
    assert lifetime(headers, rules=Rules(heuristic_fraction=0)) == 0
    assert lifetime(headers, status=201) == 0  # 201 is not heuristically cacheable (RFC 9110 §15.1)
    assert lifetime({"Date": date(T0), "Last-Modified": date(T0 + 60)}) == 0  # modified "in the future"


def test_age_takes_the_larger_of_date_and_age_header_plus_delays() -> None:
    headers = Headers({"Date": date(T0 - 10), "Age": "30"})
    # request sent 2 s before the response came; 5 s in the cache since
    assert current_age(headers, T0 - 2, T0, T0 + 5) == pytest.approx(30 + 2 + 5)
    assert current_age(Headers({"Date": date(T0 - 100)}), T0, T0, T0 + 5) == pytest.approx(105)
    # a server clock ahead of ours never makes the age negative
    assert current_age(Headers({"Date": date(T0 + 500)}), T0, T0, T0) == 0


def test_fresh_then_stale() -> None:
    stored = entry({"Cache-Control": "max-age=60"})
    assert assess(stored, NO_CC, T0 + 59, RULES) == Fresh(59)
    assert assess(stored, NO_CC, T0 + 60, RULES) == Revalidate()


def test_no_cache_response_and_request_always_validate() -> None:
    assert assess(entry({"Cache-Control": "no-cache, max-age=60"}), NO_CC, T0, RULES) == Revalidate()
    assert assess(entry({"Cache-Control": "max-age=60"}), CacheControl(no_cache=True), T0, RULES) == Revalidate()


def test_request_max_age_min_fresh_and_max_stale() -> None:
    stored = entry({"Cache-Control": "max-age=60"})
    assert assess(stored, CacheControl(max_age=10), T0 + 20, RULES) == Revalidate()
    assert assess(stored, CacheControl(min_fresh=50), T0 + 20, RULES) == Revalidate()
    assert assess(stored, CacheControl(max_stale=30), T0 + 80, RULES) == ServeStale(80)
    assert assess(stored, CacheControl(max_stale=30), T0 + 91, RULES) == Revalidate()


def test_stale_while_revalidate_window() -> None:
    stored = entry({"Cache-Control": "max-age=60, stale-while-revalidate=30"})
    assert assess(stored, NO_CC, T0 + 75, RULES) == ServeStale(75)
    assert assess(stored, NO_CC, T0 + 90, RULES) == ServeStale(90)
    assert assess(stored, NO_CC, T0 + 91, RULES) == Revalidate()
    plain = entry({"Cache-Control": "max-age=60"})
    assert assess(plain, NO_CC, T0 + 70, Rules(stale_while_revalidate=20)) == ServeStale(70)  # the client allows it


@pytest.mark.parametrize("directive", ["must-revalidate", "no-cache"])
def test_must_revalidate_and_no_cache_are_never_served_stale(directive: str) -> None:
    stored = entry({"Cache-Control": f"max-age=60, {directive}, stale-while-revalidate=600, stale-if-error=600"})
    assert assess(stored, NO_CC, T0 + 61, Rules(stale_while_revalidate=600)) == Revalidate()
    assert stale_if_error_allows(stored, NO_CC, T0 + 61, Rules(stale_if_error=600)) is None


def test_stale_if_error_window_from_response_request_or_client() -> None:
    stored = entry({"Cache-Control": "max-age=60, stale-if-error=100"})
    assert stale_if_error_allows(stored, NO_CC, T0 + 160, RULES) == 160
    assert stale_if_error_allows(stored, NO_CC, T0 + 161, RULES) is None
    plain = entry({"Cache-Control": "max-age=60"})
    assert stale_if_error_allows(plain, NO_CC, T0 + 61, RULES) is None  # nobody allowed it
    assert stale_if_error_allows(plain, CacheControl(stale_if_error=5), T0 + 65, RULES) == 65
    assert stale_if_error_allows(plain, NO_CC, T0 + 100, Rules(stale_if_error=40)) == 100


def store(headers: dict[str, str] | list[tuple[str, str]], status: int = 200, *, request: str = "") -> bool:
    return storable("GET", status, Headers(headers), parse_cache_control([request]), RULES, now=T0)


def test_storable() -> None:
    assert store({"Cache-Control": "max-age=60"})
    assert store({"Cache-Control": "private, max-age=60"})  # a private cache stores private responses
    assert store({"ETag": '"v1"'})  # no lifetime, but it can be validated
    assert store({"Cache-Control": "no-cache", "ETag": '"v1"'})
    assert not store({})  # 200 without lifetime, validator or stale-if-error: it could never be reused
    assert not store({"Cache-Control": "no-store, max-age=60"})
    assert not store({"Cache-Control": "max-age=60"}, request="no-store")
    assert not store({"Cache-Control": "max-age=60", "Vary": "*"})
    assert not store({"Cache-Control": "max-age=60"}, status=206)
    assert not store({"Cache-Control": "max-age=60"}, status=404)  # errors are raised by tether, never stored
    assert store({"Cache-Control": "max-age=60"}, status=201)  # an explicit lifetime makes any final status storable
    assert not store({"ETag": '"v1"'}, status=201)  # no explicit freshness and not heuristically cacheable
    assert not storable("POST", 200, Headers({"Cache-Control": "max-age=60"}), NO_CC, RULES, now=T0)


def test_must_understand_overrides_no_store_for_understood_statuses() -> None:
    """RFC 9111 §5.2.2.3."""
    assert store({"Cache-Control": "must-understand, no-store, max-age=60"})
    assert not store({"Cache-Control": "must-understand, max-age=60"}, status=226)


@pytest.mark.parametrize("name", ["Set-Cookie", "X-Auth-Token", "X-Api-Key"])
def test_responses_carrying_secrets_are_never_stored(name: str) -> None:
    assert not store({"Cache-Control": "max-age=60", name: "secret"})


def test_conditional_headers_send_validators_and_drop_hostile_ones() -> None:
    stored = entry({"ETag": '"v1"', "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT"})
    assert conditional_headers(stored) == [
        ("If-None-Match", '"v1"'),
        ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]
    assert conditional_headers(entry({"ETag": '"caf\u00e9"'})) == []  # not ASCII: never sent
    assert conditional_headers(entry({"ETag": "x" * 5000})) == []
    assert conditional_headers(entry({"ETag": "  "})) == []
    assert conditional_headers(entry({})) == []


def test_validator_matching_of_a_304() -> None:
    stored = entry({"ETag": 'W/"v1"', "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT"})
    assert validator_matches(stored, Headers({"ETag": '"v1"'}))  # weak comparison (RFC 9110 §8.8.3.2)
    assert not validator_matches(stored, Headers({"ETag": '"v2"'}))
    assert validator_matches(stored, Headers({"Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT"}))
    assert not validator_matches(stored, Headers({"Last-Modified": "Mon, 07 Nov 1994 08:49:37 GMT"}))
    assert validator_matches(stored, Headers({}))  # nothing to tell: the one stored response (§4.3.4)
    assert not validator_matches(entry({}), Headers({"ETag": '"v1"'}))


def test_freshen_takes_the_304s_fields_but_not_the_contents_own() -> None:
    stored = entry({"ETag": '"v1"', "Content-Type": "application/json", "Content-Length": "4", "Age": "50", "X-V": "1"})
    refreshed = freshen(
        stored,
        Headers({"ETag": '"v1"', "Content-Length": "0", "Content-Type": "text/plain", "X-V": "2", "Connection": "x"}),
        T0 + 100,
        T0 + 101,
    )
    assert refreshed.headers["x-v"] == "2"
    assert refreshed.headers["content-type"] == "application/json"
    assert refreshed.headers["content-length"] == "4"
    assert "age" not in refreshed.headers  # the old Age described the old response
    assert "connection" not in refreshed.headers
    assert (refreshed.request_time, refreshed.response_time) == (T0 + 100, T0 + 101)
    assert refreshed.content == stored.content


def test_stored_headers_leave_out_hop_by_hop_fields() -> None:
    headers = Headers([("Connection", "X-Hop, close"), ("X-Hop", "1"), ("Keep-Alive", "5"), ("X-Kept", "2")])
    assert list(stored_headers(headers).items()) == [("X-Kept", "2")]


def test_outages() -> None:
    assert is_outage(Response(503))
    assert not is_outage(Response(501))
    assert is_outage(ServerError("x", status_code=502, headers=[], body_excerpt=""))
    assert not is_outage(NotFound("x", status_code=404, headers=[], body_excerpt=""))
    assert not is_outage(RateLimited("x", status_code=429, headers=[], body_excerpt="", retry_after=1.0))
    assert is_outage(ConnectError("x"))
    assert is_outage(ReadError("x"))
    assert is_outage(TransportTimeout("x"))
    assert not is_outage(ResponseTooLarge("x"))
    assert is_outage(DeadlineExceeded("x"))
    assert is_outage(CircuitOpen("x"))
    budget = RetryBudgetExhausted("x", last_error=ServerError("x", status_code=500, headers=[], body_excerpt=""))
    assert is_outage(budget)
    assert not is_outage(RetryAfterTooLong("x", retry_after=100, last_error=None))
    assert not is_outage(ValueError("x"))


@given(
    cache_control=st.text(max_size=80),
    age=st.text(max_size=12),
    expires=st.text(max_size=40),
    now=st.floats(min_value=0, max_value=1e12, allow_nan=False),
)
def test_no_header_value_makes_the_rules_raise(cache_control: str, age: str, expires: str, now: float) -> None:
    pairs = [("Cache-Control", cache_control), ("Age", age), ("Expires", expires), ("Date", expires)]
    stored = entry(pairs)
    decision = assess(stored, NO_CC, now, RULES)
    assert isinstance(decision, Fresh | ServeStale | Revalidate)
    stale_if_error_allows(stored, NO_CC, now, RULES)
    storable("GET", 200, stored.headers, NO_CC, RULES, now=now)


def test_a_304_without_date_restarts_the_age() -> None:
    """RFC 9110 §6.6.1: a 304 without ``Date`` is dated when received, so the freshened entry's apparent age
    (``response_time - Date``) restarts with its request/response times; a just-revalidated ``max-age=60``
    entry is fresh, not aged from the first fetch (which would make every call revalidate again)."""
    stored = entry({"Date": date(T0), "Cache-Control": "max-age=60", "ETag": '"a"'})
    not_modified = Headers([("ETag", '"a"'), ("Cache-Control", "max-age=60")])  # no Date
    fresh = freshen(stored, not_modified, T0 + 120, T0 + 120)
    assert fresh.headers["Date"] == date(T0 + 120)
    assert isinstance(assess(fresh, NO_CC, T0 + 121, RULES), Fresh)
    dated = freshen(stored, Headers([("Date", date(T0 + 100))]), T0 + 120, T0 + 120)
    assert dated.headers["Date"] == date(T0 + 100)  # a 304's own Date is kept


def test_a_response_stored_without_date_is_dated_when_received() -> None:
    """RFC 9110 §6.6.1: a cache storing a response without ``Date`` adds one, the time it was received."""
    assert with_date(Headers({"ETag": '"a"'}), T0)["Date"] == date(T0)
    assert with_date(Headers({"Date": date(T0 - 5)}), T0)["Date"] == date(T0 - 5)


def test_freshen_rekeys_by_the_304s_vary() -> None:
    """RFC 9111 §4.1: a 304 that adds ``Vary`` moves the entry to the variant of the revalidating request."""
    stored = entry({"ETag": '"a"'})
    fresh = freshen(stored, Headers({"Vary": "Accept"}), T0, T0, request_headers=Headers({"Accept": "text/csv"}))
    assert fresh.vary == ("accept",)
    assert fresh.vary_key == vary_key(Headers({"Accept": "text/csv"}), ("accept",)) != stored.vary_key


def test_redirects_the_pipeline_follows_are_not_stored() -> None:
    """A stored redirect would be served to calls whose policy follows redirects: the statuses the pipeline
    follows, with a ``Location``, are never stored (and the cache's list agrees with the pipeline's)."""
    assert FOLLOWED_REDIRECTS == REDIRECT_STATUSES
    for code in sorted(REDIRECT_STATUSES):
        assert not store({"Cache-Control": "max-age=60", "Location": "/new"}, status=code)
    assert store({"Cache-Control": "max-age=60"}, status=301)  # no Location: not followed, it is the answer


def test_a_response_echoing_a_request_secret_is_not_stored() -> None:
    """No stored header value may hold one of the request's secret values (an echoed query API key)."""
    link = Headers({"Cache-Control": "max-age=60", "Link": "</x?page=2&api_key=sk_live_abcdef>; rel=next"})
    assert storable("GET", 200, link, NO_CC, RULES, now=T0)
    assert not storable("GET", 200, link, NO_CC, RULES, now=T0, secrets=frozenset({"sk_live_abcdef"}))
    assert carries_secrets(link, ("sk_live_abcdef",))
    assert not carries_secrets(link, ("another-secret",))


def test_head_matches_compares_every_validator_the_head_carries() -> None:
    """RFC 9111 §4.3.5: a HEAD updates a stored GET only if its ``ETag``, ``Last-Modified`` and
    ``Content-Length`` (those it carries) agree with the stored ones."""
    modified = "Sun, 06 Nov 1994 08:49:37 GMT"
    stored = entry({"ETag": 'W/"v1"', "Last-Modified": modified, "Content-Length": "4"})
    assert head_matches(stored, Headers({"ETag": '"v1"', "Last-Modified": modified, "Content-Length": "4"}))
    assert head_matches(stored, Headers({}))
    assert not head_matches(stored, Headers({"ETag": '"v2"'}))
    assert not head_matches(stored, Headers({"ETag": '"v1"', "Last-Modified": "Mon, 07 Nov 1994 08:49:37 GMT"}))
    assert not head_matches(stored, Headers({"ETag": '"v1"', "Content-Length": "0"}))
    assert not head_matches(entry({}), Headers({"ETag": '"v1"'}))


def test_the_entry_keeps_its_parsed_cache_control() -> None:
    """The response's ``Cache-Control`` is parsed once, when the entry is made (or replaced), not per lookup."""
    stored = entry({"Cache-Control": "max-age=60, must-revalidate"})
    assert stored.cache_control == CacheControl(max_age=60, must_revalidate=True)
    assert stored.replace(headers=Headers({"Cache-Control": "no-cache"})).cache_control == CacheControl(no_cache=True)
