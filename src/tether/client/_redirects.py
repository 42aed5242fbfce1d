"""Following redirects, decided in the pipeline rather than in the transports.

Why our own: aiohttp and httpx both follow redirects, but on a redirect to another origin they strip only
``Authorization`` (and ``Cookie``); an API key in ``X-API-Key`` or any other credential header travels on to
whatever host the ``Location`` names. tether's transports therefore never follow redirects; the call flow does,
through :func:`follow`, the same way for every transport:

- only 301, 302, 303, 307 and 308 with a ``Location`` are followed (anything else is the response);
- 303 becomes a ``GET`` (a ``HEAD`` stays one), and so does a ``POST`` answered with 301 or 302, as browsers,
  httpx and aiohttp do; the body and its headers go with the method change; 307 and 308 repeat method and body;
- to another origin (scheme, host or port differ; an upgrade from ``http`` to ``https`` on the same host and
  default ports does not count), every credential-like header is dropped: ``Authorization``, ``Cookie``, any
  name :func:`~tether._redaction.is_sensitive_name` flags and the names the client's auth sets;
- a ``Location`` that is not an ``http(s)`` URL with a host is a :class:`~tether.errors.ReadError`.
"""

from __future__ import annotations

from collections.abc import Container
from urllib.parse import urljoin, urlsplit

from tether._models import Headers, Request, Response
from tether._redaction import is_sensitive_name, redact_url
from tether.errors import ReadError

__all__ = ["REDIRECT_STATUSES", "follow"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port out of range: an origin of its own, which the transport will refuse
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def _same_origin(source: str, target: str) -> bool:
    old, new = _origin(source), _origin(target)
    if old == new:
        return True
    # http://host -> https://host on the default ports is an upgrade, not a new origin
    return old == ("http", new[1], 80) and new == ("https", old[1], 443)


def follow(request: Request, response: Response, credentials: Container[str] = ()) -> Request | None:
    """The request that follows ``response`` to ``request``, or ``None`` when it is not a redirect to follow.

    ``credentials``: lower-cased names of the headers the client's auth sets, dropped on a cross-origin hop.
    Raises :class:`~tether.errors.ReadError` for a ``Location`` that is not an ``http(s)`` URL.
    """
    status = response.status_code
    if status not in REDIRECT_STATUSES:
        return None
    location = response.headers.get("location", "").strip()
    if not location:
        return None
    target = urljoin(request.url, location)
    parts = urlsplit(target)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ReadError(
            f"the server redirected to {redact_url(location)!r}, which is not an http(s) URL",
            method=request.method,
            url=request.url,
        )
    target = target.partition("#")[0]
    method, content, headers = request.method, request.content, request.headers
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        headers = Headers([pair for pair in headers.items() if pair[0].lower() not in _BODY_HEADERS])
    if not _same_origin(request.url, target):
        headers = Headers(
            [
                (name, value)
                for name, value in headers.items()
                if not is_sensitive_name(name) and name.lower() not in credentials
            ]
        )
    return Request(method, target, headers=headers, content=content)
