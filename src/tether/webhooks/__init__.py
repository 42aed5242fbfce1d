"""Verify incoming webhooks: pure functions over the exact raw bytes, constant-time, with a timestamp window.

>>> event = verify("github", secret=secret, headers=request.headers, body=raw_body)  # doctest: +SKIP

Built-in schemes by name: ``"stripe"``, ``"github"``, ``"shopify"``, ``"slack"``, ``"twilio"``, ``"square"``,
``"zoom"``, ``"standard"`` and ``"svix"``; :class:`GenericHMAC` describes any other HMAC-signing provider.
Failures raise :class:`tether.errors.WebhookVerificationError` subclasses.

:class:`Inbox` receives deliveries durably (verify, persist in SQLite, then answer 2xx), deduplicates them, and
runs handlers later with retries, dead letters and replay; :meth:`Inbox.receive` returns a :class:`Receipt`.
"""

from __future__ import annotations

from tether.webhooks._event import VerifiedEvent
from tether.webhooks._generic import GenericHMAC
from tether.webhooks._headers import Headers
from tether.webhooks._inbox import DEFAULT_BACKOFF, Inbox
from tether.webhooks._inbox_event import EventStatus, InboxEvent
from tether.webhooks._receipt import Outcome, Receipt
from tether.webhooks._registry import GITHUB, SCHEMES, SHOPIFY, SLACK, SQUARE, ZOOM
from tether.webhooks._scheme import Delivery, Scheme
from tether.webhooks._standard import StandardWebhooks
from tether.webhooks._stripe import Stripe
from tether.webhooks._twilio import Twilio
from tether.webhooks._verify import verify
from tether.webhooks._zoom import zoom_url_validation

__all__ = [
    "DEFAULT_BACKOFF",
    "GITHUB",
    "SCHEMES",
    "SHOPIFY",
    "SLACK",
    "SQUARE",
    "ZOOM",
    "Delivery",
    "EventStatus",
    "GenericHMAC",
    "Headers",
    "Inbox",
    "InboxEvent",
    "Outcome",
    "Receipt",
    "Scheme",
    "StandardWebhooks",
    "Stripe",
    "Twilio",
    "VerifiedEvent",
    "verify",
    "zoom_url_validation",
]
