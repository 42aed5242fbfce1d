"""Quota announcements in response headers, and the pacing the limiter learns from them (pure)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policies.limiter import Limiter
from tether.policies.quota_headers import Quota, read_quota

WALL = 1_700_000_000.0


def _read(status: int, headers: dict[str, str]) -> Quota | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    return read_quota(status, lowered.get, lambda: WALL)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"RateLimit": '"default";r=50;t=30'}, Quota(50, 30.0, window=True)),
        (200, {"RateLimit": "limit=100, remaining=7, reset=12"}, Quota(7, 12.0, window=True)),
        (200, {"RateLimit-Remaining": "9", "RateLimit-Reset": "3"}, Quota(9, 3.0, window=True)),
        (
            200,
            {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": str(int(WALL) + 1800)},
            Quota(4999, 1800.0, window=True),
        ),
        (200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "60"}, Quota(10, 60.0, window=True)),
        (200, {"X-Shopify-Shop-Api-Call-Limit": "32/40"}, Quota(40, 16.0)),  # leaks 2/s: empty in 16 s
        (429, {"Retry-After": "7", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}, Quota(0, 7.0)),
        (503, {"Retry-After": "2"}, Quota(0, 2.0)),
        (200, {"Retry-After": "2"}, None),  # a Retry-After on a success says nothing of a quota
        (200, {}, None),
        (200, {"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "60"}, None),
        (200, {"X-RateLimit-Remaining": "5"}, None),
        (200, {"RateLimit": "garbage;;;=="}, None),
        # several policies: the strictest wins (5 left for 10 s, one per 2 s, over 900 for 360 s, one per 0.4 s)
        (200, {"RateLimit": '"hour";r=900;t=360, "burst";r=5;t=10'}, Quota(5, 10.0, window=True)),
        (200, {"RateLimit": '"hour";r=900;t=3600, "burst";r=5;t=10'}, Quota(900, 3600.0, window=True)),  # one per 4 s
        (200, {"RateLimit": '"burst";r=5;t=10, "hour";r=0;t=1800'}, Quota(0, 1800.0, window=True)),  # none left: stop
        # no ``t``: the policy's window bounds the reset
        (200, {"RateLimit": '"day";r=40', "RateLimit-Policy": '"day";q=1000;w=86400'}, Quota(40, 86400.0, window=True)),
        (200, {"RateLimit": '"day";r=40', "RateLimit-Policy": '"other";q=10;w=1'}, None),  # unknown policy
        (200, {"RateLimit": '"day";r=40', "RateLimit-Policy": '"day";q=1000;w=soon'}, None),
        (200, {"RateLimit": '"a";r=1;t=x, "b";r=2;t=4'}, Quota(2, 4.0, window=True)),  # a malformed member is skipped
        (200, {"X-Shopify-Shop-Api-Call-Limit": "32/0"}, None),
        (200, {"X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "60"}, None),
    ],
)
def test_each_dialect_reads_as_remaining_calls_until_a_reset(
    status: int, headers: dict[str, str], expected: Quota | None
) -> None:
    assert _read(status, headers) == expected


def test_learned_quota_is_spread_evenly_until_the_reset() -> None:
    limiter = Limiter(())
    assert limiter.reserve(0.0) == 0.0  # nothing learned yet
    limiter.learn(0.0, remaining=4, reset_after=2.0)
    waits = [limiter.reserve(0.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert limiter.reserve(10.0) == 0.0  # past the reset, the pacing no longer holds


def test_nothing_remaining_means_wait_for_the_reset() -> None:
    limiter = Limiter(())
    limiter.learn(5.0, remaining=0, reset_after=3.0)
    assert limiter.reserve(5.0) == pytest.approx(3.0)
    assert limiter.reserve(5.0, max_wait=1.0) == pytest.approx(3.0)  # refused: a deadline closer than the reset


HEADER_NAMES = [
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-shopify-shop-api-call-limit",
    "retry-after",
]


@settings(max_examples=500)
@given(
    status=st.sampled_from([200, 429, 503]),
    headers=st.dictionaries(
        st.sampled_from(HEADER_NAMES),
        st.one_of(
            st.text(max_size=60),
            st.from_regex(r'"[a-z]{1,3}";(r|t|q|w)=-?[0-9]{1,25}(;(r|t|w)=[0-9.e+-]{0,12}){0,3}', fullmatch=True),
        ),
    ),
)
def test_hostile_headers_never_raise_and_never_give_a_nonsense_quota(status: int, headers: dict[str, str]) -> None:
    quota = read_quota(status, headers.get, lambda: WALL)
    if quota is not None:
        assert quota.remaining >= 0
        assert 0 <= quota.reset_after < math.inf
