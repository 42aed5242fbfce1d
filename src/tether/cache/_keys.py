"""Cache and single-flight keys: what makes two requests "the same", with every credential hashed.

A private cache must never hand one user's response to another, so the primary key joins the method, the URL
and a *credential fingerprint*: a SHA-256 digest of every credential the request carries — headers whose names
look like credentials (``Authorization``, ``Cookie``, ``X-API-Key``, ``*-Token``, ... per
:func:`tether._redaction.is_sensitive_name`), query parameters named like credentials (an ``APIKey`` sent as
``?api_key=``), URL userinfo — and an optional ``identity`` for credentials tether cannot see before sending (a
custom :class:`~tether.Auth` flow). The secrets are moved out of the URL into the fingerprint, so that the
``url_key`` an unsafe request invalidates is the same for every credential. Keys are hex digests: nothing stored
or kept in memory holds a secret in plaintext.

``Vary`` (RFC 9111 §4.1) selects between variants under one primary key by the request's values of the named
headers, normalised as the RFC allows (lines combined, whitespace around commas dropped) and hashed as well.

The single-flight key is stricter than the cache key: the primary key plus every other request header and the
body, so only requests that are identical in every respect share one upstream call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tether._models import Headers, Request
from tether._redaction import is_sensitive_name, redact_url

__all__ = ["RequestKeys", "request_keys", "url_key", "vary_key"]

_SEP = "\x00"  # cannot occur in a URL or a header value, so joined parts cannot be confused

_sensitive = lru_cache(maxsize=4096)(is_sensitive_name)  # a client sends the same few header names again and again


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """The keys of one request.

    ``key``: primary cache key (method, URL without secrets, credential fingerprint); ``url_key``: the URL
    without secrets, for invalidation; ``url``: the redacted URL, for diagnostics; ``flight``: the single-flight
    key (the primary key, every other header and the body).
    """

    key: str
    url_key: str
    url: str
    flight: str


def _digest(*parts: str) -> str:
    return hashlib.sha256(_SEP.join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _split_secrets(url: str) -> tuple[str, list[str]]:
    """``url`` without its fragment, userinfo and credential-like query parameters; and those secrets."""
    base, _, _fragment = url.partition("#")
    if "@" not in base and not any(_sensitive(name) for name in _query_names(base)):
        return base, []
    try:
        parts = urlsplit(base)
    except ValueError:
        return base, []
    secrets: list[str] = []
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        secrets.append(f"userinfo={userinfo}")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if not _sensitive(name)]
        if len(kept) != len(pairs):
            secrets.extend(sorted(f"query:{name}={value}" for name, value in pairs if _sensitive(name)))
            query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, "")), secrets


def _query_names(url: str) -> list[str]:
    _, _, query = url.partition("?")
    return [pair.partition("=")[0] for pair in query.split("&")] if query else []


def url_key(url: str) -> str:
    """The digest of ``url`` without fragment and secrets: what an unsafe request to it invalidates."""
    return _digest("url", _split_secrets(url)[0])


class _HeaderParts:
    """The header-derived parts of the keys of the last headers seen (requests usually share their client's)."""

    last: tuple[Headers, list[str], list[str]] | None = None


def _header_parts(headers: Headers) -> tuple[list[str], list[str]]:
    """The request's credential headers and its other headers, each as sorted ``name=value`` strings."""
    last = _HeaderParts.last  # one read: another thread may replace it meanwhile
    if last is not None and last[0] is headers:
        return last[1], last[2]
    secrets: list[str] = []
    others: list[str] = []
    for name, value in headers.items():
        lowered = name.lower()
        if _sensitive(lowered):
            secrets.append(f"header:{lowered}={value}")
        else:
            others.append(f"{lowered}={value}")
    secrets.sort()
    others.sort()
    _HeaderParts.last = (headers, secrets, others)
    return secrets, others


def request_keys(request: Request, identity: str = "") -> RequestKeys:
    """The keys of ``request`` as it will be sent (credentials applied); ``identity`` adds unseen credentials."""
    url, url_secrets = _split_secrets(request.url)
    header_secrets, others = _header_parts(request.headers)
    secrets = [*url_secrets, *header_secrets]
    if identity:
        secrets.append(f"identity={identity}")
    fingerprint = _digest("credential", *secrets)
    key = _digest("key", request.method, url, fingerprint)
    body = hashlib.sha256(request.content).hexdigest() if request.content else ""
    return RequestKeys(
        key=key,
        url_key=_digest("url", url),
        url=redact_url(url),
        flight=_digest("flight", key, body, *others),
    )


def _normalise(values: list[str]) -> str:
    """Header lines as one value, whitespace around list commas dropped (RFC 9111 §4.1 allows both)."""
    return ",".join(part.strip() for part in ",".join(values).split(","))


def vary_key(headers: Headers, names: tuple[str, ...]) -> str:
    """The digest of the request's values of the ``Vary`` field ``names`` (``""`` when there are none)."""
    if not names:
        return ""
    parts: list[str] = []
    for name in names:
        values = headers.get_list(name)
        # an absent header differs from an empty one
        parts.append(f"{name}:{_normalise(values)}" if values else f"{name}!")
    return _digest("vary", *parts)
