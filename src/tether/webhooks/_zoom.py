"""Zoom's endpoint URL validation: the challenge it sends before any event, and the answer it expects."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["zoom_url_validation"]


def zoom_url_validation(secret: str, plain_token: str) -> dict[str, str]:
    """The JSON answer to Zoom's ``endpoint.url_validation`` event.

    ``plain_token`` is the event's ``payload.plainToken``; the answer carries it back with
    ``encryptedToken = hex(HMAC-SHA256(secret token, plainToken))``. Verify the validation request itself with
    ``verify("zoom", ...)`` first: Zoom signs it like any other event.
    """
    encrypted = hmac.new(secret.encode("utf-8"), plain_token.encode("utf-8"), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}
