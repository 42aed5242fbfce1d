"""Reading a server's "wait this long" from response headers.

Servers say when to come back in several dialects; this module turns each into a delay in seconds from
``now`` (wall-clock seconds since the epoch, injected):

- ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date.
- ``RateLimit-Reset`` (IETF draft-ietf-httpapi-ratelimit-headers, delta seconds) and the widespread
  ``X-RateLimit-Reset``, which providers send either as delta seconds or as a Unix timestamp (GitHub,
  Twitter/X) and sometimes in milliseconds. A value too large to be a plausible delta is read as an epoch.
- the ``RateLimit`` field: ``limit=…, remaining=…, reset=…`` (draft-06) or ``"policy";r=…;t=…`` (draft-07+),
  where ``reset``/``t`` is delta seconds.

Everything here is pure and never raises on malformed input: an unreadable header is no header.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = ["parse_reset", "parse_retry_after", "server_delay"]

# A delta larger than this (about 3 years) is taken to be an absolute Unix time.
_EPOCH_THRESHOLD = 100_000_000.0
# ... and one larger than this to be an absolute Unix time in milliseconds.
_EPOCH_MS_THRESHOLD = 100_000_000_000.0


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date); ``None`` if unreadable."""
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; obsolete forms may parse naive
        return None
    return max(0.0, when.timestamp() - now)


def parse_reset(value: str, now: float) -> float | None:
    """Seconds to wait from a rate-limit reset value (delta seconds, Unix seconds or Unix milliseconds)."""
    number = _number(value)
    if number is None:
        return None
    if number >= _EPOCH_MS_THRESHOLD:
        return max(0.0, number / 1000.0 - now)
    if number >= _EPOCH_THRESHOLD:
        return max(0.0, number - now)
    return number


def _structured_reset(value: str, now: float) -> float | None:
    for item in value.split(","):
        for param in item.split(";"):
            key, sep, raw = param.strip().partition("=")
            if sep and key.strip().lower() in ("reset", "t"):  # draft-07+: r=remaining, t=reset delta
                return parse_reset(raw, now)
    return None


_READERS: tuple[tuple[str, Callable[[str, float], float | None]], ...] = (
    ("retry-after", parse_retry_after),
    ("ratelimit-reset", parse_reset),
    ("x-ratelimit-reset", parse_reset),
    ("ratelimit", _structured_reset),
)


def server_delay(get_header: Callable[[str], str | None], now: float) -> float | None:
    """The delay a response asks for, in seconds, or ``None`` if it names none.

    ``Retry-After`` wins when present and readable; otherwise the reset headers are consulted. The caller
    decides whether the response is one where a reset applies (a 429 or 503), since a reset header on a
    successful response only describes the quota.
    """
    for name, reader in _READERS:
        raw = get_header(name)
        if raw is not None:
            delay = reader(raw, now)
            if delay is not None:
                return delay
    return None
