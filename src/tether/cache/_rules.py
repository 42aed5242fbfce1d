"""The caching rules of RFC 9111 for a *private* cache, as pure functions of a response and the time.

tether's cache belongs to one client and every entry is keyed by the credential that fetched it (see
:mod:`tether.cache._keys`), so it is a private cache in the RFC's sense: ``private`` responses are stored,
``s-maxage`` and ``proxy-revalidate`` do not apply, and a request with ``Authorization`` may be stored (§3.5).
Nothing here reads a clock: ``now`` is wall-clock seconds, passed in (the shell reads the injected clock).

Decisions, with the sections they follow:

- **Storing** (§3): ``GET``/``HEAD`` only; a final status below 400 other than 206 and 304 (4xx/5xx are raised
  as errors by tether and never stored); no ``no-store`` in the request or the response (unless
  ``must-understand`` is present and the status is one we understand, §5.2.2.3); not ``Vary: *``; and an explicit
  lifetime (``max-age``, ``Expires``), ``public``/``private``, or a heuristically cacheable status (RFC 9110
  §15.1). tether also skips responses that set a cookie, carry a credential-like header or echo one of the
  request's secrets in a header value (they would be kept in plaintext), redirects the client's pipeline follows
  (301, 302, 303, 307, 308 with a ``Location``: one stored by a call that did not follow redirects would be served
  to one that does), and responses that could never be reused (no lifetime, no validator, no stale-if-error).
- **Freshness lifetime** (§4.2.1): ``max-age``, else ``Expires`` minus ``Date``, else a heuristic (§4.2.2): a
  fraction (10 %) of the time since ``Last-Modified``, capped, for heuristically cacheable statuses.
- **Age** (§4.2.3): ``apparent_age = max(0, response_time - date)``, ``corrected_age = Age + response_delay``,
  ``current_age = max(apparent_age, corrected_age) + (now - response_time)``.
- **Reuse** (§4.2, §4.3, RFC 5861): fresh (and the request's ``max-age``/``min-fresh`` are met) → served as is;
  stale but within ``stale-while-revalidate`` (or the request's ``max-stale``) → served stale while one
  background revalidation runs; otherwise → validated with a conditional request first. ``no-cache`` in the
  response or the request always validates; ``no-cache`` and ``must-revalidate`` forbid serving it stale (§4.2.4).
- **Stale on error** (RFC 5861 §4): when validating fails with an outage (transport error, timeout, 500, 502,
  503, 504, an open circuit), a stale response within ``stale-if-error`` seconds of staleness is served instead.
- **Validation** (§4.3.1, §4.3.4, §3.2): ``If-None-Match`` from ``ETag`` and ``If-Modified-Since`` from
  ``Last-Modified``; a 304 freshens the stored response: its header fields replace the stored ones, except the
  content's own (``Content-Length``, ``-Type``, ``-Encoding``, ``-Range``) and hop-by-hop fields, and its
  ``Vary`` re-keys the entry by the revalidating request's headers.
- **Date** (RFC 9110 §6.6.1): a response or 304 stored without ``Date`` gets one, the time it was received.
- **HEAD** (§4.3.5): a 200 to a HEAD updates the stored GET responses it could have selected when their
  validators agree, and makes them stale (drops them) when they differ.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tether._models import Headers, Response
from tether._redaction import is_sensitive_name
from tether.cache._fields import (
    EMPTY,
    CacheControl,
    format_http_date,
    parse_age,
    parse_cache_control,
    parse_http_date,
    parse_vary,
)
from tether.cache._keys import vary_key
from tether.cache._storage import CacheEntry
from tether.errors import (
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    HTTPStatusError,
    ResponseTooLarge,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    TransportError,
)

__all__ = [
    "CACHEABLE_METHODS",
    "FOLLOWED_REDIRECTS",
    "Fresh",
    "Revalidate",
    "Rules",
    "ServeStale",
    "assess",
    "carries_secrets",
    "conditional_headers",
    "current_age",
    "freshen",
    "freshness_lifetime",
    "head_matches",
    "is_outage",
    "reusable_vary",
    "stale_if_error_allows",
    "storable",
    "stored_headers",
    "validator_matches",
    "with_date",
]

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})

HEURISTICALLY_CACHEABLE = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
"""RFC 9110 §15.1 (206 left out: tether never stores partial content)."""

UNDERSTOOD_STATUSES = frozenset({200, 203, 204, 300, 301, 302, 303, 307, 308})
"""Statuses whose caching requirements we implement, for ``must-understand`` (§5.2.2.3)."""

FOLLOWED_REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""The redirects the client's pipeline follows (``tether.client._redirects.REDIRECT_STATUSES``; a test checks
they agree). The cache sits in front of the pipeline and its key ignores the policy, so one stored by a call with
``max_redirects=0`` would be served to a call that follows redirects: they are not stored."""

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "proxy-authenticate"}
)
"""Fields a cache does not store (§3.1), nor take from a 304."""

_NOT_FROM_304 = HOP_BY_HOP | {"content-length", "content-type", "content-encoding", "content-range"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The settings the rules take from :class:`~tether.Cache`.

    ``heuristic_fraction`` and ``heuristic_max``: the heuristic lifetime; ``stale_while_revalidate`` and
    ``stale_if_error``: staleness the client accepts on top of what the server allows (0: only the server's).
    """

    heuristic_fraction: float = 0.1
    heuristic_max: float = 86_400.0
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0


def response_directives(headers: Headers) -> CacheControl:
    """The response's ``Cache-Control``."""
    values = headers.get_list("cache-control")
    return parse_cache_control(values) if values else EMPTY


def carries_secrets(headers: Headers, secrets: Collection[str] = ()) -> bool:
    """Whether storing ``headers`` would keep a secret in plaintext.

    A cookie set, a credential-like field name, or a value holding one of ``secrets`` (the request's credential
    values: an upstream echoing a query API key in a ``Link`` header).
    """
    for name, value in headers.items():
        if name.lower() == "set-cookie" or is_sensitive_name(name):
            return True
        if secrets and any(secret in value for secret in secrets):
            return True
    return False


def storable(
    method: str,
    status: int,
    headers: Headers,
    request_cc: CacheControl,
    rules: Rules,
    *,
    now: float,
    secrets: Collection[str] = (),
) -> bool:
    """Whether a response may be stored (§3), and is worth storing; ``now``: when it arrived.

    ``secrets``: the request's credential values, which no stored header value may hold.
    """
    if method not in CACHEABLE_METHODS or not 200 <= status < 400 or status in (206, 304):
        return False
    if status in FOLLOWED_REDIRECTS and "location" in headers:
        return False
    cc = response_directives(headers)
    explicit = cc.max_age is not None or "expires" in headers or cc.public or cc.private
    refused = (
        (status not in UNDERSTOOD_STATUSES if cc.must_understand else cc.no_store)  # §5.2.2.3, §5.2.2.5
        or request_cc.no_store  # §5.2.1.5
        or parse_vary(headers.get_list("vary")) is None  # Vary: * never matches (§4.1)
        or carries_secrets(headers, secrets)
        or not (explicit or status in HEURISTICALLY_CACHEABLE)  # §3, last condition
    )
    if refused:
        return False
    # worth keeping only if it can be reused: validated, served stale on an error, or fresh for a while
    return (
        "etag" in headers
        or "last-modified" in headers
        or bool(cc.stale_if_error or rules.stale_if_error)
        or freshness_lifetime(status, headers, now, rules, cc) > 0
    )


def freshness_lifetime(
    status: int, headers: Headers, response_time: float, rules: Rules, cc: CacheControl | None = None
) -> float:
    """Seconds a response stays fresh (§4.2.1); 0 when it is stale at once. ``cc``: its parsed ``Cache-Control``."""
    if cc is None:
        cc = response_directives(headers)
    if cc.max_age is not None:
        return float(cc.max_age)
    date = parse_http_date(headers.get("date")) or response_time
    expires = headers.get_list("expires")
    if expires:
        if len(set(expires)) > 1:
            return 0.0  # conflicting Expires lines: treated as stale (§4.2.1)
        when = parse_http_date(expires[0])
        return 0.0 if when is None else max(0.0, when - date)  # an invalid Expires is in the past (§5.3)
    if status not in HEURISTICALLY_CACHEABLE and not cc.public:
        return 0.0
    last_modified = parse_http_date(headers.get("last-modified"))
    if last_modified is None or last_modified >= date:
        return 0.0
    return min((date - last_modified) * rules.heuristic_fraction, rules.heuristic_max)


def current_age(headers: Headers, request_time: float, response_time: float, now: float) -> float:
    """The response's age in seconds (§4.2.3)."""
    date = parse_http_date(headers.get("date"))
    apparent = max(0.0, response_time - date) if date is not None else 0.0
    age_value = parse_age(headers.get_list("age")) or 0
    corrected = age_value + max(0.0, response_time - request_time)
    return max(apparent, corrected) + max(0.0, now - response_time)


@dataclass(frozen=True, slots=True)
class Fresh:
    """Serve the stored response as is; ``age`` for its ``Age`` header."""

    age: float


@dataclass(frozen=True, slots=True)
class ServeStale:
    """Serve the stored (stale) response now and revalidate it in the background (RFC 5861 §3)."""

    age: float


@dataclass(frozen=True, slots=True)
class Revalidate:
    """Validate the stored response with the origin before using it."""


Decision = Fresh | ServeStale | Revalidate


def _may_serve_stale(cc: CacheControl) -> bool:
    return not (cc.no_cache or cc.must_revalidate)  # §4.2.4


def assess(entry: CacheEntry, request_cc: CacheControl, now: float, rules: Rules) -> Decision:
    """How to use ``entry`` for a request with directives ``request_cc`` at wall-clock ``now`` (§4.2, §4.3)."""
    cc = entry.cache_control
    if cc.no_cache or request_cc.no_cache:
        return Revalidate()
    age = current_age(entry.headers, entry.request_time, entry.response_time, now)
    lifetime = freshness_lifetime(entry.status_code, entry.headers, entry.response_time, rules, cc)
    if request_cc.max_age is not None and age > request_cc.max_age:
        return Revalidate()
    if request_cc.min_fresh is not None:
        lifetime -= request_cc.min_fresh
    if age < lifetime:
        return Fresh(age)
    if not _may_serve_stale(cc):
        return Revalidate()
    staleness = age - lifetime
    allowed = max(cc.stale_while_revalidate or 0, rules.stale_while_revalidate)
    if request_cc.max_stale is not None:
        allowed = max(allowed, request_cc.max_stale)
    if staleness <= allowed and allowed > 0:
        return ServeStale(age)
    return Revalidate()


def stale_if_error_allows(entry: CacheEntry, request_cc: CacheControl, now: float, rules: Rules) -> float | None:
    """The age to serve ``entry`` at after a failed validation (RFC 5861 §4), or ``None`` if it may not be."""
    cc = entry.cache_control
    if not _may_serve_stale(cc):
        return None
    age = current_age(entry.headers, entry.request_time, entry.response_time, now)
    lifetime = freshness_lifetime(entry.status_code, entry.headers, entry.response_time, rules, cc)
    allowed = max(cc.stale_if_error or 0, request_cc.stale_if_error or 0, rules.stale_if_error)
    if allowed > 0 and age - lifetime <= allowed:
        return age
    return None


def reusable_vary(headers: Headers) -> tuple[str, ...]:
    """The ``Vary`` names of a storable response (``storable`` already refused ``Vary: *``)."""
    return parse_vary(headers.get_list("vary")) or ()


def _sendable(value: str | None) -> str | None:
    """A validator fit to send back: printable ASCII, bounded (a hostile one is dropped, never sent)."""
    if value is None or len(value) > 1024 or not value.isascii() or not value.isprintable():
        return None
    return value.strip() or None


def conditional_headers(entry: CacheEntry) -> list[tuple[str, str]]:
    """The precondition fields validating ``entry`` (§4.3.1): ``If-None-Match``, ``If-Modified-Since``."""
    fields: list[tuple[str, str]] = []
    etag = _sendable(entry.headers.get("etag"))
    if etag is not None:
        fields.append(("If-None-Match", etag))
    last_modified = _sendable(entry.headers.get("last-modified"))
    if last_modified is not None:
        fields.append(("If-Modified-Since", last_modified))
    return fields


def _opaque(etag: str) -> str:
    etag = etag.strip()
    return etag[2:] if etag[:2] in ("W/", "w/") else etag


def validator_matches(entry: CacheEntry, not_modified: Headers) -> bool:
    """Whether a 304 is about ``entry`` (§4.3.4): same entity tag, else same ``Last-Modified``, else assumed."""
    etag = not_modified.get("etag")
    if etag is not None:
        stored = entry.headers.get("etag")
        return stored is not None and _opaque(stored) == _opaque(etag)
    last_modified = not_modified.get("last-modified")
    if last_modified is not None:
        return entry.headers.get("last-modified") == last_modified
    return True


def head_matches(entry: CacheEntry, head: Headers) -> bool:
    """Whether a 200 to a HEAD describes the stored GET ``entry`` (§4.3.5).

    Every validator the HEAD response carries (``ETag``, ``Last-Modified``) and its ``Content-Length`` must agree
    with the stored ones.
    """
    etag = head.get("etag")
    if etag is not None:
        stored = entry.headers.get("etag")
        if stored is None or _opaque(stored) != _opaque(etag):
            return False
    last_modified = head.get("last-modified")
    if last_modified is not None and entry.headers.get("last-modified") != last_modified:
        return False
    length = head.get("content-length")
    stored_length = entry.headers.get("content-length")
    return length is None or stored_length is None or length.strip() == stored_length.strip()


def freshen(
    entry: CacheEntry,
    not_modified: Headers,
    request_time: float,
    response_time: float,
    *,
    request_headers: Headers | None = None,
) -> CacheEntry:
    """``entry`` updated by a 304 (§3.2, §4.3.4): its fields replace the stored ones; its times restart the age.

    A 304 without ``Date`` is dated ``response_time`` (RFC 9110 §6.6.1), or the stored ``Date`` would age the
    freshened entry from the first fetch. With ``request_headers`` (the revalidating request's, as sent) the
    entry's ``vary`` and ``vary_key`` follow the merged ``Vary`` (§4.1).
    """
    updates = [(name, value) for name, value in not_modified.items() if name.lower() not in _NOT_FROM_304]
    if "date" not in not_modified:
        updates.append(("Date", format_http_date(response_time)))
    headers = entry.headers.merged(updates)
    if "age" in entry.headers and "age" not in not_modified:
        headers = Headers([(name, value) for name, value in headers.items() if name.lower() != "age"])
    if request_headers is None:
        return entry.replace(headers=headers, request_time=request_time, response_time=response_time)
    vary = reusable_vary(headers)
    return entry.replace(
        headers=headers,
        request_time=request_time,
        response_time=response_time,
        vary=vary,
        vary_key=vary_key(request_headers, vary),
    )


def with_date(headers: Headers, received: float) -> Headers:
    """``headers`` with a ``Date``: a response stored without one is dated when received (RFC 9110 §6.6.1)."""
    return headers if "date" in headers else headers.merged((("Date", format_http_date(received)),))


def stored_headers(headers: Headers) -> Headers:
    """The fields of a response as stored (§3.1): hop-by-hop fields and those ``Connection`` names left out."""
    listed = {part.strip().lower() for line in headers.get_list("connection") for part in line.split(",")}
    dropped = HOP_BY_HOP | listed
    if not any(name.lower() in dropped for name, _ in headers.items()):
        return Headers(headers)
    return Headers([(name, value) for name, value in headers.items() if name.lower() not in dropped])


OUTAGE_STATUSES = frozenset({500, 502, 503, 504})
"""The statuses RFC 5861 §4 counts as errors for ``stale-if-error``."""


def is_outage(outcome: object) -> bool:
    """Whether a failed validation is an outage that ``stale-if-error`` covers (RFC 5861 §4).

    A 500/502/503/504 (raised or returned), a transport error or timeout (not ``ResponseTooLarge``), the call's
    deadline, an open circuit or a full bulkhead, and a retry budget or ``Retry-After`` limit that ended such a
    failure. A 4xx (including 429) is an answer, not an outage.
    """
    if isinstance(outcome, Response | HTTPStatusError):
        return outcome.status_code in OUTAGE_STATUSES
    if isinstance(outcome, ResponseTooLarge):
        return False
    if isinstance(outcome, TransportError | DeadlineExceeded | CircuitOpen | BulkheadFull):
        return True
    if isinstance(outcome, RetryBudgetExhausted | RetryAfterTooLong):
        return is_outage(outcome.last_error)
    return False
