"""Shared helpers for the inbox tests: signing Stripe deliveries at a given time."""

from __future__ import annotations

import hashlib
import hmac
import json

SECRET = "whsec_inbox_test_secret"


def stripe_body(event_id: str, event_type: str = "payment_intent.succeeded", **data: object) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "data": data}).encode()


def stripe_headers(body: bytes, t: float, secret: str = SECRET) -> dict[str, str]:
    stamp = int(t)
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}
