"""Reading the header fields HTTP caching depends on, defensively.

``Cache-Control`` (RFC 9111 §5.2, with the RFC 5861 extensions ``stale-while-revalidate`` and
``stale-if-error``), ``Age`` (§5.1), ``Expires`` (§5.3), ``Date``/``Last-Modified`` (RFC 9110 §6.6.1, §8.8.2) and
``Vary`` (RFC 9110 §12.5.5). Servers send anything; everything here is pure and never raises on malformed input.
The choices for bad input are the RFC's, and the most restrictive where it leaves one open:

- a delta-seconds value (``max-age=...``) that is not a non-negative integer counts as 0, i.e. already stale
  (§4.2.1: "caches are encouraged to consider responses that have invalid freshness information to be stale");
- a directive repeated with different values counts as 0 as well (§4.2.1: use the first, or consider the response
  stale; we do the latter);
- a value larger than 2^31 is capped to 2^31 (§1.2.2);
- an unreadable ``Age`` is ignored (§5.1); an unreadable ``Expires`` means "already expired" (§5.3);
- ``no-cache`` with field names is treated as plain ``no-cache`` (every reuse is validated), which is stricter;
- an HTTP-date must say ``GMT``, except in the asctime form, which has no zone and is GMT by definition
  (RFC 9110 §5.6.7: a recipient must accept all three forms).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime

__all__ = [
    "MAX_DELTA",
    "CacheControl",
    "format_http_date",
    "parse_age",
    "parse_cache_control",
    "parse_http_date",
    "parse_vary",
]

MAX_DELTA = 2**31
"""The largest delta-seconds value a cache must represent (RFC 9111 §1.2.2); larger values are capped to it."""

_DELTA_DIGITS = 10  # more digits than this is past MAX_DELTA anyway (and int() of a huge string is slow)


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The ``Cache-Control`` directives tether understands, request or response; ``None``: absent."""

    no_store: bool = False
    no_cache: bool = False
    must_revalidate: bool = False
    must_understand: bool = False
    only_if_cached: bool = False
    private: bool = False
    public: bool = False
    max_age: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None


EMPTY = CacheControl()

_FLAGS = {
    "no-store": "no_store",
    "no-cache": "no_cache",
    "must-revalidate": "must_revalidate",
    "must-understand": "must_understand",
    "only-if-cached": "only_if_cached",
    "private": "private",
    "public": "public",
}
_DELTAS = {
    "max-age": "max_age",
    "max-stale": "max_stale",
    "min-fresh": "min_fresh",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
}


def _delta(value: str | None) -> int:
    """A delta-seconds value: 0 if invalid, capped at :data:`MAX_DELTA`."""
    if value is None:
        return 0
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        return 0
    if len(value) > _DELTA_DIGITS:
        return MAX_DELTA
    return min(int(value), MAX_DELTA)


def _directives(text: str) -> Iterable[tuple[str, str | None]]:
    """(name, value) pairs of a comma-separated directive list; quoted values may hold commas."""
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in "=,":
            i += 1
        name = text[start:i].strip().lower()
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                i += 1
                chars: list[str] = []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        i += 1
                    chars.append(text[i])
                    i += 1
                i += 1  # the closing quote (or past the end of an unterminated one)
                value = "".join(chars)
                while i < n and text[i] != ",":  # anything between the quote and the comma is junk
                    i += 1
            else:
                start = i
                while i < n and text[i] != ",":
                    i += 1
                value = text[start:i].strip()
        if name:
            yield name, value


def parse_cache_control(values: Iterable[str]) -> CacheControl:
    """The directives of every ``Cache-Control`` line in ``values`` (repeated lines are one list, RFC 9110 §5.3)."""
    flags: dict[str, bool] = {}
    deltas: dict[str, int] = {}
    for line in values:
        for name, value in _directives(line):
            flag = _FLAGS.get(name)
            if flag is not None:
                flags[flag] = True
                continue
            field = _DELTAS.get(name)
            if field is None:
                continue  # extensions we do not know are ignored (§5.2.3)
            # a bare max-stale accepts any staleness (§5.2.1.2)
            seconds = MAX_DELTA if name == "max-stale" and value is None else _delta(value)
            if field in deltas and deltas[field] != seconds:
                seconds = 0  # conflicting repeats: the response is treated as stale
            deltas[field] = seconds
    if not flags and not deltas:
        return EMPTY
    return CacheControl(**flags, **deltas)  # type: ignore[arg-type]


def parse_age(values: list[str]) -> int | None:
    """The ``Age`` in seconds, from the first member of the first line; ``None`` if absent or invalid (§5.1)."""
    if not values:
        return None
    first = values[0].split(",", 1)[0].strip()
    if not first.isascii() or not first.isdigit():
        return None
    return MAX_DELTA if len(first) > _DELTA_DIGITS else min(int(first), MAX_DELTA)


_ASCTIME = re.compile(r"[A-Za-z]{3} [A-Za-z]{3} [ \d]?\d \d\d:\d\d:\d\d \d{4}")
"""The asctime form of an HTTP-date (``Sun Nov  6 08:49:37 1994``), which carries no zone: it is GMT."""


def parse_http_date(value: str | None) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7) as Unix seconds; ``None`` if absent or unreadable."""
    if not value or len(value) > 100:
        return None
    value = value.strip()
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            # the asctime form is GMT by definition; any other zone-less date is not an HTTP-date
            if not _ASCTIME.fullmatch(value):
                return None
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return seconds if math.isfinite(seconds) else None


def format_http_date(seconds: float) -> str:
    """Unix ``seconds`` as an IMF-fixdate (RFC 9110 §5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(seconds, usegmt=True)


def parse_vary(values: list[str]) -> tuple[str, ...] | None:
    """The lower-cased, sorted, de-duplicated field names of ``Vary``; ``None`` for ``Vary: *`` (never matches)."""
    names: set[str] = set()
    for line in values:
        for part in line.split(","):
            name = part.strip().lower()
            if name == "*":
                return None
            if name:
                names.add(name)
    return tuple(sorted(names))
