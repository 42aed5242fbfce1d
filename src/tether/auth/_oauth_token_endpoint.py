"""Talking to a token endpoint (RFC 6749 §3.2, §5) and a revocation endpoint (RFC 7009), sans-IO.

:func:`token_request` builds the ``POST`` for any grant with the client's authentication (§2.3.1:
``client_secret_basic``, the default, form-encodes id and secret before Base64; ``client_secret_post`` puts them
in the body; ``none`` sends only ``client_id``, for public clients). :func:`read_token_response` turns the answer
into a :class:`Granted` or raises the typed :class:`tether.errors.OAuthError` for its ``error`` code; it reads
``error`` even from a 200 (GitHub answers errors with 200) and accepts a form-encoded body (GitHub's default).
No error message, ``repr`` or log line made here contains a token or the client secret.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode

from tether._models import Headers, Request, Response
from tether._redaction import redact_url
from tether.auth._vault_records import TokenSet
from tether.errors import (
    AccessDenied,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
)

__all__ = [
    "ClientAuth",
    "Granted",
    "error_from_fields",
    "read_token_response",
    "revocation_request",
    "token_request",
]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

_ERRORS: dict[str, type[OAuthError]] = {
    "invalid_grant": InvalidGrant,
    "invalid_client": InvalidClient,
    "invalid_scope": InvalidScope,
    "unauthorized_client": UnauthorizedClient,
    "unsupported_grant_type": UnauthorizedClient,
    "access_denied": AccessDenied,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAuth:
    """A registered client: its id, its secret (never in a repr) and how it authenticates to the token endpoint."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    method: AuthMethod = "client_secret_basic"

    def apply(self, form: dict[str, str]) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
        """``form`` with the client's credentials added, and the headers that carry them."""
        if self.method == "none" or self.client_secret is None:
            return {**form, "client_id": self.client_id}, ()
        if self.method == "client_secret_post":
            return {**form, "client_id": self.client_id, "client_secret": self.client_secret}, ()
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return form, (("Authorization", "Basic " + base64.b64encode(pair.encode()).decode("ascii")),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Granted:
    """A token response: the tokens, and the OIDC ``id_token`` if one came (never in a repr)."""

    tokens: TokenSet
    id_token: str | None = field(default=None, repr=False)


def _post(url: str, form: Mapping[str, str], headers: tuple[tuple[str, str], ...]) -> Request:
    return Request(
        "POST",
        url,
        headers=Headers(
            (("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"), *headers)
        ),
        content=urlencode(form).encode("ascii"),
    )


def token_request(url: str, client: ClientAuth, form: Mapping[str, str]) -> Request:
    """The ``POST`` to the token endpoint ``url`` for a grant given by ``form`` (``grant_type`` and its fields)."""
    body, headers = client.apply(dict(form))
    return _post(url, body, headers)


def revocation_request(url: str, client: ClientAuth, token: str, hint: str | None = None) -> Request:
    """The RFC 7009 §2.1 ``POST`` revoking ``token`` (``hint``: ``refresh_token`` or ``access_token``)."""
    form = {"token": token}
    if hint:
        form["token_type_hint"] = hint
    body, headers = client.apply(form)
    return _post(url, body, headers)


def _fields(response: Response) -> dict[str, object]:
    content_type = (response.headers.get("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" in content_type or "text/plain" in content_type:
        return dict(parse_qsl(response.content.decode("utf-8", "replace")))
    try:
        parsed = json.loads(response.content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def error_from_fields(fields: Mapping[str, object], *, status: int | None, url: str, doing: str) -> OAuthError:
    """The typed error for an RFC 6749 error answer (``error``, ``error_description``) to ``doing``."""
    code = fields.get("error")
    code = code if isinstance(code, str) else None
    description = fields.get("error_description")
    description = description if isinstance(description, str) else None
    cls = _ERRORS.get(code or "", OAuthError)
    what = f"the provider answered {code!r}" if code else f"the provider answered HTTP {status} without an error code"
    return cls(
        f"{doing} failed: {what} at {redact_url(url)}",
        error=code,
        description=description,
        status_code=status,
    )


def read_token_response(response: Response, *, now: float, doing: str) -> Granted:
    """The tokens a token endpoint granted, or the typed error it answered (``doing`` names the grant)."""
    request = response.request
    url = request.url if request is not None else ""
    fields = _fields(response)
    if response.status_code != 200 or "error" in fields:
        raise error_from_fields(fields, status=response.status_code, url=url, doing=doing)
    access_token = fields.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthError(
            f"{doing} failed: the token response from {redact_url(url)} has no access_token", status_code=200
        )
    token_type = fields.get("token_type")
    expires_in = fields.get("expires_in")
    try:
        lifetime = float(expires_in) if isinstance(expires_in, (int, float, str)) and expires_in != "" else None
    except ValueError:
        lifetime = None
    refresh_token = fields.get("refresh_token")
    scope = fields.get("scope")
    id_token = fields.get("id_token")
    tokens = TokenSet(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        # GitHub separates scopes with commas; RFC 6749 §3.3 with spaces
        scopes=tuple(scope.replace(",", " ").split()) if isinstance(scope, str) else (),
        expires_at=now + lifetime if lifetime is not None else None,
    )
    return Granted(tokens=tokens, id_token=id_token if isinstance(id_token, str) and id_token else None)
