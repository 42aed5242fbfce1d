"""The built-in schemes, by the names :func:`tether.webhooks.verify` accepts.

GitHub, Shopify, Slack, Zoom and Square sign with a single HMAC header, so each is a :class:`GenericHMAC`
configuration, written from the provider's documented formula.
"""

from __future__ import annotations

from tether.webhooks._generic import GenericHMAC
from tether.webhooks._scheme import Scheme
from tether.webhooks._standard import StandardWebhooks
from tether.webhooks._stripe import Stripe
from tether.webhooks._twilio import Twilio

__all__ = ["GITHUB", "SCHEMES", "SHOPIFY", "SLACK", "SQUARE", "ZOOM"]

GITHUB = GenericHMAC(
    name="github",
    header="X-Hub-Signature-256",
    prefix="sha256=",
    encoding="hex",
    signed="body",
    id_header="X-GitHub-Delivery",
    type_header="X-GitHub-Event",
    id_field=None,
    type_field=None,
)
"""GitHub: ``X-Hub-Signature-256: sha256=hex(HMAC-SHA256(secret, raw))``; no timestamp."""

SHOPIFY = GenericHMAC(
    name="shopify",
    header="X-Shopify-Hmac-Sha256",
    encoding="base64",
    signed="body",
    id_header="X-Shopify-Webhook-Id",
    type_header="X-Shopify-Topic",
    id_field=None,
    type_field=None,
)
"""Shopify: ``X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(app secret, raw))``."""

SLACK = GenericHMAC(
    name="slack",
    header="X-Slack-Signature",
    prefix="v0=",
    encoding="hex",
    signed="v0:{timestamp}:{body}",
    timestamp_header="X-Slack-Request-Timestamp",
    id_field="event_id",
    type_field="type",
)
"""Slack: ``X-Slack-Signature: v0=hex(HMAC-SHA256(signing secret, "v0:" + ts + ":" + raw))``."""

ZOOM = GenericHMAC(
    name="zoom",
    header="x-zm-signature",
    prefix="v0=",
    encoding="hex",
    signed="v0:{timestamp}:{body}",
    timestamp_header="x-zm-request-timestamp",
    id_field=None,
    type_field="event",
)
"""Zoom: ``x-zm-signature: v0=hex(HMAC-SHA256(secret token, "v0:" + ts + ":" + raw))``."""

SQUARE = GenericHMAC(
    name="square",
    header="x-square-hmacsha256-signature",
    encoding="base64",
    signed="{url}{body}",
    id_field="event_id",
    type_field="type",
)
"""Square: ``x-square-hmacsha256-signature: base64(HMAC-SHA256(signature key, notification URL + raw))``."""

SCHEMES: dict[str, Scheme] = {
    "stripe": Stripe(),
    "github": GITHUB,
    "shopify": SHOPIFY,
    "slack": SLACK,
    "twilio": Twilio(),
    "square": SQUARE,
    "zoom": ZOOM,
    "standard": StandardWebhooks(),
    "svix": StandardWebhooks(header_prefix="svix-", name="svix"),
}
