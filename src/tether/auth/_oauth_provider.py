"""An OAuth 2.0 / OIDC provider's endpoints, given by hand or discovered from its metadata.

Discovery (OpenID Connect Discovery 1.0 §4, RFC 8414 §3) is a sans-IO flow: it yields the metadata ``GET``
requests and receives their responses, trying ``{issuer}/.well-known/openid-configuration`` first and then the
RFC 8414 location (``/.well-known/oauth-authorization-server`` inserted before the issuer's path). The document's
``issuer`` must equal the configured issuer exactly (OIDC Discovery §4.3, RFC 8414 §3.3): otherwise a document
served elsewhere could impersonate the provider.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from tether._models import Request, Response
from tether.errors import DiscoveryFailed

__all__ = ["Provider", "discovery_flow", "metadata_urls"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """Where a provider's endpoints are.

    ``token_url`` is required; ``authorize_url`` for the authorization code flow, ``revocation_url`` for RFC 7009
    revocation on disconnect, ``issuer`` and ``jwks_uri`` for OpenID Connect ID tokens.
    ``code_challenge_methods`` is what the metadata advertises (empty: unknown).
    """

    token_url: str
    authorize_url: str | None = None
    revocation_url: str | None = None
    issuer: str | None = None
    jwks_uri: str | None = None
    userinfo_url: str | None = None
    code_challenge_methods: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object], *, issuer: str) -> Provider:
        """Read a discovery document; :class:`DiscoveryFailed` if it is not ``issuer``'s or lacks a token endpoint."""
        found = metadata.get("issuer")
        if found != issuer:
            raise DiscoveryFailed(f"the metadata names issuer {found!r}, not the configured {issuer!r}")
        token_url = metadata.get("token_endpoint")
        if not isinstance(token_url, str) or not token_url:
            raise DiscoveryFailed(f"the metadata of {issuer!r} has no token_endpoint")

        def url(name: str) -> str | None:
            value = metadata.get(name)
            return value if isinstance(value, str) and value else None

        methods = metadata.get("code_challenge_methods_supported")
        return cls(
            token_url=token_url,
            authorize_url=url("authorization_endpoint"),
            revocation_url=url("revocation_endpoint"),
            issuer=issuer,
            jwks_uri=url("jwks_uri"),
            userinfo_url=url("userinfo_endpoint"),
            code_challenge_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else (),
        )


def metadata_urls(issuer: str) -> tuple[str, ...]:
    """Where ``issuer``'s metadata may be: the OIDC location, then the RFC 8414 one (same when it has no path)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise DiscoveryFailed(f"an issuer is an http(s) URL without query or fragment, got {issuer!r}")
    path = parts.path.rstrip("/")
    oidc = urlunsplit((parts.scheme, parts.netloc, f"{path}/.well-known/openid-configuration", "", ""))
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", ""))
    return (oidc, rfc8414)


def discovery_flow(issuer: str) -> Generator[Request, Response, Provider]:
    """Yield metadata requests until one answers with ``issuer``'s document; its :class:`Provider`."""
    failures: list[str] = []
    for url in metadata_urls(issuer):
        response = yield Request("GET", url, headers=None)
        if response.status_code != 200:
            failures.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            metadata = json.loads(response.content)
        except ValueError:
            failures.append(f"{url}: not JSON")
            continue
        if not isinstance(metadata, dict):
            failures.append(f"{url}: not a JSON object")
            continue
        return Provider.from_metadata(metadata, issuer=issuer)
    raise DiscoveryFailed(f"no metadata for issuer {issuer!r} ({'; '.join(failures)})")
