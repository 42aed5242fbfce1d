"""Reading server delays: Retry-After (seconds, HTTP-date), RateLimit-Reset / X-RateLimit-Reset (delta, epoch)."""

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from tether._retry_after import parse_reset, parse_retry_after, server_delay

NOW = 1_700_000_000.0


def headers(**values: str) -> Callable[[str], str | None]:
    lowered = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return lowered.get


def test_retry_after_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


def test_retry_after_http_date_is_relative_to_injected_now() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 90, tz=UTC), usegmt=True)
    assert parse_retry_after(when, NOW) == 90.0


def test_retry_after_date_in_the_past_means_now() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW - 90, tz=UTC), usegmt=True)
    assert parse_retry_after(when, NOW) == 0.0


def test_unreadable_values_are_no_value() -> None:
    for bad in ("", "soon", "-5", "nan", "inf", "1e400", "Mon, 99 Foo 2020"):
        assert parse_retry_after(bad, NOW) is None, bad
        assert parse_reset(bad, NOW) is None or bad in ("Mon, 99 Foo 2020",), bad


def test_reset_delta_epoch_and_epoch_ms() -> None:
    assert parse_reset("30", NOW) == 30.0
    assert parse_reset(str(int(NOW) + 45), NOW) == 45.0  # GitHub's X-RateLimit-Reset: epoch seconds
    assert parse_reset(str(int(NOW * 1000) + 2500), NOW) == 2.5  # epoch milliseconds
    assert parse_reset(str(int(NOW) - 10), NOW) == 0.0  # a reset already past


def test_retry_after_wins_over_reset_headers() -> None:
    get = headers(retry_after="7", x_ratelimit_reset="99")
    assert server_delay(get, NOW) == 7.0


def test_unreadable_retry_after_falls_back_to_reset() -> None:
    get = headers(retry_after="garbage", ratelimit_reset="12")
    assert server_delay(get, NOW) == 12.0


def test_structured_ratelimit_field() -> None:
    get = headers(ratelimit='"default";r=0;t=17')
    assert server_delay(get, NOW) == 17.0
    get = headers(ratelimit="limit=100, remaining=0, reset=5")
    assert server_delay(get, NOW) == 5.0


def test_no_headers_no_delay() -> None:
    assert server_delay(headers(), NOW) is None


@given(st.text(max_size=200))
def test_parsers_never_raise_and_never_go_negative(value: str) -> None:
    for parser in (parse_retry_after, parse_reset):
        result = parser(value, NOW)
        assert result is None or result >= 0
