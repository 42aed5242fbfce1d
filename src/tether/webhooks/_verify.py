"""The one entry point: :func:`verify` a delivery against a scheme and its secrets, or raise why not."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from tether.errors import ConfigurationError
from tether.webhooks._event import VerifiedEvent
from tether.webhooks._headers import Headers, HeadersInput
from tether.webhooks._registry import SCHEMES
from tether.webhooks._scheme import Delivery, Scheme
from tether.webhooks._timestamps import DEFAULT_TOLERANCE

__all__ = ["verify"]


def _scheme(scheme: str | Scheme) -> Scheme:
    if isinstance(scheme, str):
        found = SCHEMES.get(scheme.lower())
        if found is None:
            raise ConfigurationError(f"Unknown webhook scheme {scheme!r}; use one of {sorted(SCHEMES)} or GenericHMAC")
        return found
    if not isinstance(scheme, Scheme):
        raise ConfigurationError(f"A webhook scheme must be a name or a scheme object, not {type(scheme).__name__}")
    return scheme


def _secrets(secret: str | Sequence[str]) -> tuple[str, ...]:
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets:
        raise ConfigurationError("verify() needs at least one secret")
    for value in secrets:
        if not isinstance(value, str) or not value:
            raise ConfigurationError("Each webhook secret must be a non-empty string")
    return secrets


def verify(
    scheme: str | Scheme,
    *,
    secret: str | Sequence[str],
    headers: HeadersInput | Headers,
    body: bytes,
    url: str | None = None,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> VerifiedEvent:
    """Verify a webhook delivery's signature and return the event, or raise why it is not authentic.

    ``scheme`` is ``"stripe"``, ``"github"``, ``"shopify"``, ``"slack"``, ``"twilio"``, ``"square"``, ``"zoom"``,
    ``"standard"``, ``"svix"``, or a scheme object such as :class:`GenericHMAC`. ``secret`` is one secret or a
    list while rotating (any may match). ``headers`` is any mapping or list of ``(name, value)`` pairs, looked up
    case-insensitively; ``body`` the exact raw bytes received, never re-serialised JSON. ``url`` is the public URL
    the provider called, required by the URL-signing schemes (Twilio, Square). ``now`` is the current Unix time
    (default: the system clock); a signed timestamp may differ from it by at most ``tolerance`` seconds either way.

    Raises a :class:`tether.errors.WebhookVerificationError` subclass (``MissingSignatureHeader``,
    ``MalformedSignatureHeader``, ``SignatureMismatch``, ``TimestampOutsideTolerance``) for a delivery that fails,
    and :class:`tether.errors.ConfigurationError` for a call that cannot work (unknown scheme, no secret, a body
    passed as ``str``, a missing ``url``). Signatures are compared in constant time.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ConfigurationError(
            f"verify() needs the raw request body as bytes, not {type(body).__name__}: signatures cover exact bytes"
        )
    if math.isnan(tolerance) or tolerance < 0:
        raise ConfigurationError("verify() tolerance must be a non-negative number of seconds")
    chosen = _scheme(scheme)
    delivery = Delivery(headers=Headers(headers), body=bytes(body), url=url)
    return chosen.verify(
        delivery,
        secrets=_secrets(secret),
        now=time.time() if now is None else now,
        tolerance=tolerance,
    )
