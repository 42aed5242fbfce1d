"""Redaction of secrets from URLs, headers and bodies before they reach an error, a log line or a metric.

The rule is conservative: a header, query parameter or JSON/form field whose *name* looks like it carries a
credential has its value replaced by ``[REDACTED]``. Names are matched case-insensitively against exact
names (``authorization``, ``cookie``, ...) and against fragments (``token``, ``secret``, ``password``,
``api-key``, ...), so provider-specific spellings (``X-Shopify-Access-Token``, ``client_secret``,
``sig``) are caught without a list per provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "describe_exception", "is_sensitive_name", "redact_headers", "redact_text", "redact_url"]

REDACTED = "[REDACTED]"

_EXACT = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "sig",
        "signature",
        "code",
        "key",
        "apikey",
        "auth",
        "pass",
        "pwd",
    }
)
_FRAGMENTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "api_key",
    "apikey",
    "access-key",
    "access_key",
    "private-key",
    "private_key",
    "session",
    "credential",
    "signature",
    "assertion",
)


def is_sensitive_name(name: str) -> bool:
    """Whether a header, parameter or field called ``name`` may carry a secret."""
    lowered = name.lower()
    if lowered in _EXACT:
        return True
    return any(fragment in lowered for fragment in _FRAGMENTS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the header pairs with every sensitive value replaced by :data:`REDACTED`."""
    return [(name, REDACTED if is_sensitive_name(name) else value) for name, value in headers]


def redact_url(url: str) -> str:
    """Return ``url`` without a password in its userinfo and without sensitive query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_name(name) for name, _ in pairs):
            query = urlencode(
                [(name, REDACTED if is_sensitive_name(name) else value) for name, value in pairs],
                safe="[]",
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# "name": "value"  (JSON)   and   name=value  (form / query text)
# a value may run to the end of the text unterminated (a body cut short), and is redacted all the same
_JSON_FIELD = re.compile(r'"(?P<name>[^"\\]{1,64})"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)(?:"|\\?$)')
_FORM_FIELD = re.compile(r"(?P<lead>^|[&?\s])(?P<name>[A-Za-z0-9_.\-\[\]]{1,64})=(?P<value>[^&\s]*)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*")


def redact_text(text: str) -> str:
    """Redact credential-looking JSON fields, form fields and ``Bearer``/``Basic`` values in free text."""

    def json_field(match: re.Match[str]) -> str:
        if is_sensitive_name(match["name"]):
            return f'"{match["name"]}": "{REDACTED}"'
        return match[0]

    def form_field(match: re.Match[str]) -> str:
        if is_sensitive_name(match["name"]):
            return f"{match['lead']}{match['name']}={REDACTED}"
        return match[0]

    text = _JSON_FIELD.sub(json_field, text)
    text = _FORM_FIELD.sub(form_field, text)
    return _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)


def describe_exception(exc: BaseException, request: object = None) -> str:
    """A foreign exception's type and message, fit for an error or a log: URLs and credentials redacted.

    Libraries quote the request URL (aiohttp) or the bytes they received (an echoing server's request line) in
    their messages; both may carry a query API key. ``request`` (anything with a ``url``) is replaced by its
    redacted form before the text-level redaction runs.
    """
    text = f"{type(exc).__name__}: {exc}"
    url = getattr(request, "url", None)
    if isinstance(url, str) and url:
        text = text.replace(url, redact_url(url))
    text = redact_text(text)
    return text if len(text) <= 500 else text[:500] + "…"
