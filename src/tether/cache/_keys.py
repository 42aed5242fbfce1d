"""Cache and single-flight keys: what makes two requests "the same", with every credential hashed.

A private cache must never hand one user's response to another, so the primary key joins the method, the URL
and a *credential fingerprint*: a SHA-256 digest of every credential the request carries — the headers and
query parameters the client's auth sets, whatever their names (:class:`Credentials`: ``APIKey(key,
header="Ocp-Apim-Subscription-Key")``, ``APIKey(key, in_="query", name="appid")``), headers and query
parameters whose names look like credentials (``Authorization``, ``Cookie``, ``X-API-Key``, ``*-Token``,
``?api_key=``, ... per :func:`tether._redaction.is_sensitive_name`), URL userinfo — and an optional
``identity`` for credentials tether cannot see before sending (a custom :class:`~tether.Auth` flow). The
secrets are cut out of the URL into the fingerprint by editing the query string as sent (the other parameters
keep their exact bytes), so that the ``url_key`` an unsafe request invalidates is the same for every
credential, with or without the auth's query parameter. Keys are hex digests: nothing stored or kept in memory
holds a secret in plaintext; :attr:`RequestKeys.secrets` keeps the request's secret values for the call only,
so that the flow can refuse to store a response echoing one.

``Vary`` (RFC 9111 §4.1) selects between variants under one primary key by the request's values of the named
headers, normalised as the RFC allows (lines combined, whitespace around commas dropped) and hashed as well.

The single-flight key is stricter than the cache key: the primary key plus every other request header and the
body, so only requests that are identical in every respect share one upstream call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from tether._models import Headers, Request
from tether._redaction import is_sensitive_name, redact_url

__all__ = ["NO_CREDENTIALS", "Credentials", "RequestKeys", "request_keys", "url_key", "vary_key"]

_SEP = "\x00"  # cannot occur in a URL or a header value, so joined parts cannot be confused

_sensitive = lru_cache(maxsize=4096)(is_sensitive_name)  # a client sends the same few header names again and again

MIN_SECRET_LENGTH = 8
"""Secret values shorter than this are not looked for in responses: they would match by chance (a length)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The names of the credentials a client's auth sets: each is a secret, whatever :func:`is_sensitive_name` says.

    ``headers``: lower-cased header names; ``params``: query parameter names (decoded).
    """

    headers: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()

    def is_header(self, lowered: str) -> bool:
        """Whether the header named ``lowered`` (lower-cased) carries a credential."""
        return lowered in self.headers or _sensitive(lowered)

    def is_param(self, name: str) -> bool:
        """Whether the query parameter ``name`` (decoded) carries a credential."""
        return name in self.params or _sensitive(name)


NO_CREDENTIALS = Credentials()


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """The keys of one request.

    ``key``: primary cache key (method, URL without secrets, credential fingerprint); ``url_key``: the URL
    without secrets, for invalidation; ``url``: the redacted URL, for diagnostics; ``flight``: the single-flight
    key (the primary key, every other header and the body); ``get_key``: the primary key of the same request as
    a GET (for a HEAD, the stored GET responses its 200 updates, RFC 9111 §4.3.5); ``credentials``: the names
    the keys were computed with (a related URL's ``url_key`` is computed alike); ``secrets``: the request's
    secret values, for this call only (never stored, never in a ``repr``).
    """

    key: str
    url_key: str
    url: str
    flight: str
    get_key: str = ""
    credentials: Credentials = NO_CREDENTIALS
    secrets: frozenset[str] = field(default=frozenset(), repr=False, compare=False)


def _digest(*parts: str) -> str:
    return hashlib.sha256(_SEP.join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _secret_values(value: str, out: set[str]) -> None:
    """Add ``value`` and its last word (the token of ``Bearer <token>``) to ``out``, if long enough to look for."""
    for candidate in (value, *value.split()[-1:]):
        if len(candidate) >= MIN_SECRET_LENGTH:
            out.add(candidate)


def _split_secrets(url: str, credentials: Credentials, values: set[str] | None = None) -> tuple[str, list[str]]:
    """``url`` without its fragment, userinfo and credential query parameters; and those secrets.

    The query is edited as sent, pair by pair, never re-encoded: the remaining parameters keep their bytes, so a
    URL with the auth's parameter and the same URL without it have the same result. ``values`` collects the
    secret values (as sent and decoded).
    """
    base = url.partition("#")[0]
    head, _, query = base.partition("?")
    secrets: list[str] = []
    if query:
        kept: list[str] = []
        found: list[str] = []
        for pair in query.split("&"):
            raw_name, _, raw_value = pair.partition("=")
            name = unquote_plus(raw_name)
            if not credentials.is_param(name):
                kept.append(pair)
                continue
            value = unquote_plus(raw_value)
            found.append(f"query:{name}={value}")
            if values is not None:
                _secret_values(raw_value, values)
                _secret_values(value, values)
        if found:
            secrets.extend(sorted(found))
            base = f"{head}?{'&'.join(kept)}" if kept else head
    if "@" in head:
        try:
            parts = urlsplit(base)
        except ValueError:
            return base, secrets
        if "@" in parts.netloc:
            userinfo, _, netloc = parts.netloc.rpartition("@")
            secrets.append(f"userinfo={userinfo}")
            if values is not None:
                _secret_values(userinfo, values)
                _secret_values(unquote_plus(userinfo.partition(":")[2]), values)
            base = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return base, secrets


def url_key(url: str, credentials: Credentials = NO_CREDENTIALS) -> str:
    """The digest of ``url`` without fragment and secrets: what an unsafe request to it invalidates."""
    return _digest("url", _split_secrets(url, credentials)[0])


class _HeaderParts:
    """The header-derived parts of the keys of the last headers seen (requests usually share their client's)."""

    last: tuple[Headers, Credentials, list[str], list[str], frozenset[str]] | None = None


def _header_parts(headers: Headers, credentials: Credentials) -> tuple[list[str], list[str], frozenset[str]]:
    """The request's credential headers and its other headers, as sorted ``name=value`` strings; secret values."""
    last = _HeaderParts.last  # one read: another thread may replace it meanwhile
    if last is not None and last[0] is headers and last[1] is credentials:
        return last[2], last[3], last[4]
    secrets: list[str] = []
    others: list[str] = []
    values: set[str] = set()
    for name, value in headers.items():
        lowered = name.lower()
        if credentials.is_header(lowered):
            secrets.append(f"header:{lowered}={value}")
            _secret_values(value, values)
        else:
            others.append(f"{lowered}={value}")
    secrets.sort()
    others.sort()
    frozen = frozenset(values)
    _HeaderParts.last = (headers, credentials, secrets, others, frozen)
    return secrets, others, frozen


def request_keys(request: Request, identity: str = "", credentials: Credentials = NO_CREDENTIALS) -> RequestKeys:
    """The keys of ``request`` as it will be sent (credentials applied); ``identity`` adds unseen credentials.

    ``credentials``: the names of the headers and query parameters the client's auth sets.
    """
    values: set[str] = set()
    url, url_secrets = _split_secrets(request.url, credentials, values)
    header_secrets, others, header_values = _header_parts(request.headers, credentials)
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
        get_key=key if request.method == "GET" else _digest("key", "GET", url, fingerprint),
        credentials=credentials,
        secrets=header_values | values if values else header_values,
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
