"""Idempotency: which calls may be repeated, and the key that makes an unsafe one repeatable.

Methods that are idempotent by definition (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE) are
retried as they are. POST and PATCH are not: repeating one may charge a card twice. They are retried only
when the request carries an idempotency key, which tether generates (a random UUID4) before the first
attempt and keeps identical across every attempt, so the provider can recognise a repeat (Stripe, Adyen,
PayPal and the IETF draft ``Idempotency-Key`` header field all work this way).
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass, field

__all__ = ["IDEMPOTENT_METHODS", "Idempotency"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Idempotency:
    """Idempotency-key settings.

    ``header`` names the key header (default ``Idempotency-Key``); ``methods`` are those that get a generated
    key when the caller did not set one; ``generate=False`` never adds one (the caller's own key still
    makes the call retryable).
    """

    header: str = "Idempotency-Key"
    methods: frozenset[str] = field(default_factory=lambda: frozenset({"POST", "PATCH"}))
    generate: bool = True

    def needs_key(self, method: str, headers: Container[str]) -> bool:
        """Whether a key should be generated for a ``method`` request with these header names."""
        return self.generate and method in self.methods and self.header not in headers

    @staticmethod
    def new_key() -> str:
        """A fresh random key."""
        return str(uuid.uuid4())
