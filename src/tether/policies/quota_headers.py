"""Reading a provider's quota from its response headers, to pace calls before it answers 429.

Each dialect becomes a :class:`Quota`: ``remaining`` calls allowed over the next ``reset_after`` seconds.

- IETF draft-ietf-httpapi-ratelimit-headers, draft-07 and later: ``RateLimit: "policy";r=<remaining>;t=<reset>``,
  one list member per policy; the strictest policy (the fewest calls per second left) wins. ``t`` is optional:
  without it the policy's window ``w`` from ``RateLimit-Policy: "policy";q=<quota>;w=<window>`` bounds the reset.
  Earlier drafts: ``RateLimit: limit=…, remaining=…, reset=…`` or ``RateLimit-Remaining`` with ``RateLimit-Reset``.
- The widespread ``X-RateLimit-Remaining`` with ``X-RateLimit-Reset`` (delta seconds, or a Unix time in seconds
  or milliseconds, as GitHub sends it).
- Shopify's leaky bucket, ``X-Shopify-Shop-Api-Call-Limit: <used>/<size>``: the bucket leaks ``size / 20`` calls
  a second (2/s for 40, 4/s for 80, as Shopify documents), so it is empty after ``used / leak`` seconds, during
  which ``size`` calls fit: a quota of ``size`` over ``used / leak`` seconds, which paces at the leak rate as the
  bucket fills.
- ``Retry-After`` on a 429 or 503: nothing remains until then.

Pure and never raising: an unreadable header is no header.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container
from dataclasses import dataclass

from tether._retry_after import parse_reset, parse_retry_after

__all__ = ["Quota", "announces_quota", "read_quota"]

GetHeader = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Quota:
    """``remaining`` calls allowed over the next ``reset_after`` seconds.

    ``window``: a fixed window's announcement, its reset in whole seconds (the ``RateLimit`` and ``X-RateLimit-*``
    dialects), which :meth:`~tether.policies.Limiter.learn` may tighten across the window's responses.
    """

    remaining: int
    reset_after: float
    window: bool = False


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    # ASCII digits only ("¹".isdigit() is true), and few enough of them for int() (it refuses over 4,300 digits)
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _structured(value: str, wall: Callable[[], float], get_header: GetHeader) -> Quota | None:
    if ";" not in value:  # an early draft's one policy: ``limit=…, remaining=…, reset=…``
        return _params(value.split(","), wall, None)
    strictest: Quota | None = None
    windows: dict[str, float] | None = None
    for member in value.split(","):
        name, *params = member.split(";")
        quota = _params(params, wall, None)
        if quota is None and any(p.strip().lower().startswith("r=") for p in params):  # no ``t``: use the window
            if windows is None:
                windows = _windows(get_header("ratelimit-policy"))
            quota = _params(params, wall, windows.get(name.strip()))
        if quota is not None and (strictest is None or _pace(quota) > _pace(strictest)):
            strictest = quota
    return strictest


def _params(params: list[str], wall: Callable[[], float], default_reset: float | None) -> Quota | None:
    remaining: int | None = None
    reset = default_reset
    for param in params:
        key, sep, raw = param.strip().partition("=")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("r", "remaining"):
            remaining = _count(raw)
        elif key in ("t", "reset"):
            reset = parse_reset(raw, wall())
    if remaining is None or reset is None:
        return None
    return Quota(remaining, reset, window=True)


def _windows(value: str | None) -> dict[str, float]:
    """The window ``w`` of each policy in a ``RateLimit-Policy`` field, by policy name (as written, quoted)."""
    windows: dict[str, float] = {}
    for member in (value or "").split(","):
        name, *params = member.split(";")
        for param in params:
            key, sep, raw = param.strip().partition("=")
            window = _count(raw) if sep and key.strip().lower() == "w" else None
            if window:
                windows[name.strip()] = float(window)
    return windows


def _pace(quota: Quota) -> tuple[float, float]:
    """How strict a quota is: seconds per remaining call (none left: infinitely), then the wait to its reset."""
    return (quota.reset_after / quota.remaining if quota.remaining else math.inf, quota.reset_after)


def _shopify(value: str) -> Quota | None:
    used_text, sep, size_text = value.partition("/")
    used, size = _count(used_text), _count(size_text)
    if not sep or used is None or not size:
        return None
    return Quota(size, used / (size / 20.0))


def announces_quota(headers: Container[str], status: int) -> bool:
    """Whether a response with these (case-insensitive) header names may announce a quota.

    The cheap check made on every response before :func:`read_quota`.
    """
    return (
        "ratelimit" in headers
        or "x-ratelimit-remaining" in headers
        or "ratelimit-remaining" in headers
        or "x-shopify-shop-api-call-limit" in headers
        or (status in (429, 503) and "retry-after" in headers)
    )


def read_quota(status: int, get_header: GetHeader, wall: Callable[[], float]) -> Quota | None:
    """The quota a response announces, or ``None``; ``wall()`` is wall-clock time (for epoch reset values).

    Called on every response: the common case, no quota header, costs a few lookups and reads no clock.
    """
    if status in (429, 503):
        retry_after = get_header("retry-after")
        delay = parse_retry_after(retry_after, wall()) if retry_after is not None else None
        if delay is not None:
            return Quota(0, delay)
    structured = get_header("ratelimit")
    if structured is not None:
        quota = _structured(structured, wall, get_header)
        if quota is not None:
            return quota
    for prefix in ("ratelimit-", "x-ratelimit-"):  # the standard's delta seconds first: see Limiter.learn
        remaining = _count(get_header(prefix + "remaining"))
        if remaining is not None:
            raw_reset = get_header(prefix + "reset")
            reset = parse_reset(raw_reset, wall()) if raw_reset is not None else None
            if reset is not None:
                return Quota(remaining, reset, window=True)
    shopify = get_header("x-shopify-shop-api-call-limit")
    return _shopify(shopify) if shopify is not None else None
