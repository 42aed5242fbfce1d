"""Reading Cache-Control, Age, dates and Vary: the RFC's readings, and no input a server can send makes them raise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.cache._fields import MAX_DELTA, CacheControl, parse_age, parse_cache_control, parse_http_date, parse_vary


def cc(*lines: str) -> CacheControl:
    return parse_cache_control(lines)


def test_common_response_directives() -> None:
    parsed = cc("private, max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=600")
    assert parsed.private
    assert parsed.max_age == 60
    assert parsed.must_revalidate
    assert parsed.stale_while_revalidate == 30
    assert parsed.stale_if_error == 600
    assert not parsed.no_store
    assert not parsed.public


def test_names_are_case_insensitive_and_lines_combine() -> None:
    parsed = cc("No-Store", "MAX-AGE=5")
    assert parsed.no_store
    assert parsed.max_age == 5


def test_quoted_delta_seconds_and_field_lists_with_commas() -> None:
    parsed = cc('max-age="120", no-cache="Set-Cookie, X-Foo", public')
    assert parsed.max_age == 120
    assert parsed.no_cache  # qualified no-cache is treated as plain no-cache: stricter
    assert parsed.public


@pytest.mark.parametrize(
    "value",
    ["max-age=-1", "max-age=abc", "max-age=", "max-age", "max-age=1.5", "max-age=٣", "max-age=0x10", "max-age=1 0"],
)
def test_invalid_delta_seconds_count_as_stale(value: str) -> None:
    """RFC 9111 §4.2.1: invalid freshness information is treated as stale (0), never as "no directive"."""
    assert cc(value).max_age == 0


def test_huge_delta_is_capped_at_2_to_the_31() -> None:
    assert cc("max-age=99999999999999999999999999999999").max_age == MAX_DELTA
    assert cc("max-age=" + "9" * 10_000).max_age == MAX_DELTA  # no int() of a 10,000-digit string
    assert cc("max-age=2147483649").max_age == MAX_DELTA


def test_repeated_directive_with_different_values_counts_as_stale() -> None:
    assert cc("max-age=10, max-age=20").max_age == 0
    assert cc("max-age=10", "max-age=20").max_age == 0
    assert cc("max-age=10, max-age=10").max_age == 10


def test_bare_max_stale_accepts_any_staleness() -> None:
    assert cc("max-stale").max_stale == MAX_DELTA
    assert cc("max-stale=5").max_stale == 5


def test_unknown_and_junk_directives_are_ignored() -> None:
    assert cc(",,, ;;; =5, foo=bar, immutable, max-age=3") == CacheControl(max_age=3)
    assert cc('no-cache="unterminated') == CacheControl(no_cache=True)
    assert cc("") == CacheControl()


@given(st.lists(st.text(max_size=200), max_size=5))
def test_parse_cache_control_never_raises(lines: list[str]) -> None:
    parsed = parse_cache_control(lines)
    for value in (parsed.max_age, parsed.max_stale, parsed.min_fresh, parsed.stale_if_error):
        assert value is None or 0 <= value <= MAX_DELTA


def test_age() -> None:
    assert parse_age(["30"]) == 30
    assert parse_age(["30, 40"]) == 30  # a list: the first member (§5.1)
    assert parse_age(["-3"]) is None
    assert parse_age(["abc"]) is None
    assert parse_age([]) is None
    assert parse_age(["9" * 50]) == MAX_DELTA


@given(st.lists(st.text(max_size=50), max_size=3))
def test_parse_age_never_raises(values: list[str]) -> None:
    age = parse_age(values)
    assert age is None or 0 <= age <= MAX_DELTA


def test_http_dates() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777.0
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777.0  # obsolete RFC 850 form
    for bad in ("0", "", None, "yesterday", "Sun, 06 Nov 99999 08:49:37 GMT", "x" * 500, "Sun, 06 Nov 1994 08:49:37"):
        assert parse_http_date(bad) is None


@given(st.text(max_size=120))
def test_parse_http_date_never_raises(value: str) -> None:
    parse_http_date(value)


def test_vary() -> None:
    assert parse_vary(["Accept-Language, accept", "X-Tenant"]) == ("accept", "accept-language", "x-tenant")
    assert parse_vary(["Accept, *"]) is None
    assert parse_vary([" , ,"]) == ()
    assert parse_vary([]) == ()


def test_asctime_http_dates_are_gmt() -> None:
    """RFC 9110 §5.6.7: the asctime form has no zone and is GMT; any other zone-less date is still refused."""
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777.0
    assert parse_http_date("Sun Nov 16 08:49:37 1994") == 784111777.0 + 10 * 86_400
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37") is None


def test_only_if_cached_is_understood() -> None:
    """RFC 9111 §5.2.1.7: the request directive is parsed (the flow then never contacts the origin)."""
    assert cc("only-if-cached").only_if_cached
    assert not cc("no-cache").only_if_cached
