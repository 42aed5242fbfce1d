"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`` over ``t + "." + raw``.

The key is the endpoint secret string (``whsec_...``) used as-is, UTF-8 encoded; unlike Standard Webhooks it is
*not* base64-decoded. Any ``v1`` may match (Stripe sends one per active secret while a secret is rolled).
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.errors import MalformedSignatureHeader, SignatureMismatch
from tether.webhooks._event import VerifiedEvent
from tether.webhooks._scheme import Delivery
from tether.webhooks._signing import decode_signature, hmac_digest, matches_any
from tether.webhooks._timestamps import check_tolerance, parse_timestamp

__all__ = ["Stripe"]

_HEADER = "Stripe-Signature"
_MAX_ITEMS = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Stripe:
    """Stripe's webhook signatures; the event's ``id`` and ``type`` come from the JSON payload."""

    name: str = "stripe"

    def _parse(self, value: str) -> tuple[str, list[bytes]]:
        items = [item.strip() for item in value.split(",")]
        if len(items) > _MAX_ITEMS:
            raise self._malformed(f"holds {len(items)} items (at most {_MAX_ITEMS} are read)")
        stamps: list[str] = []
        signatures: list[bytes] = []
        for item in items:
            key, sep, text = item.partition("=")
            if not sep:
                continue  # empty items (",,") and unknown flags carry nothing to check
            if key == "t":
                stamps.append(text)
            elif key == "v1":
                signature = decode_signature(text, "hex")
                if signature is not None:
                    signatures.append(signature)
        if len(stamps) != 1:
            raise self._malformed("needs exactly one t=<unix time>" if stamps else "has no t=<unix time>")
        if not signatures:
            raise self._malformed("has no v1=<hex signature> (only v1 is accepted)")
        return stamps[0], signatures

    def _malformed(self, what: str) -> MalformedSignatureHeader:
        return MalformedSignatureHeader(
            f"The stripe webhook's {_HEADER} header {what}", scheme=self.name, header=_HEADER
        )

    def verify(self, delivery: Delivery, *, secrets: tuple[str, ...], now: float, tolerance: float) -> VerifiedEvent:
        """Verify a Stripe delivery against any of the endpoint ``secrets``."""
        stamp, candidates = self._parse(delivery.headers.require(_HEADER, scheme=self.name))
        timestamp = parse_timestamp(stamp, scheme=self.name, header=_HEADER)
        message = stamp.encode("ascii") + b"." + delivery.body
        expected = (hmac_digest("sha256", secret.encode("utf-8"), message) for secret in secrets)
        if not matches_any(candidates, expected):
            raise SignatureMismatch(
                f"No v1 signature in {_HEADER} matches any of the {len(secrets)} configured secret(s) "
                "(Stripe uses the whsec_... string itself as the key)",
                scheme=self.name,
                header=_HEADER,
            )
        check_tolerance(timestamp, now=now, tolerance=tolerance, scheme=self.name, header=_HEADER)
        return VerifiedEvent.from_body(
            scheme=self.name, raw=delivery.body, timestamp=timestamp, id_field="id", type_field="type"
        )
