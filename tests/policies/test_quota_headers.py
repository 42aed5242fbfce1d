"""Quota announcements in response headers, and the pacing the limiter learns from them (pure)."""

from __future__ import annotations

import pytest

from tether.policies.limiter import Limiter
from tether.policies.quota_headers import Quota, read_quota

WALL = 1_700_000_000.0


def _read(status: int, headers: dict[str, str]) -> Quota | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    return read_quota(status, lowered.get, lambda: WALL)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"RateLimit": '"default";r=50;t=30'}, Quota(50, 30.0)),
        (200, {"RateLimit": "limit=100, remaining=7, reset=12"}, Quota(7, 12.0)),
        (200, {"RateLimit-Remaining": "9", "RateLimit-Reset": "3"}, Quota(9, 3.0)),
        (200, {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": str(int(WALL) + 1800)}, Quota(4999, 1800.0)),
        (200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "60"}, Quota(10, 60.0)),
        (200, {"X-Shopify-Shop-Api-Call-Limit": "32/40"}, Quota(40, 16.0)),  # leaks 2/s: empty in 16 s
        (429, {"Retry-After": "7", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}, Quota(0, 7.0)),
        (503, {"Retry-After": "2"}, Quota(0, 2.0)),
        (200, {"Retry-After": "2"}, None),  # a Retry-After on a success says nothing of a quota
        (200, {}, None),
        (200, {"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "60"}, None),
        (200, {"X-RateLimit-Remaining": "5"}, None),
        (200, {"RateLimit": "garbage;;;=="}, None),
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
