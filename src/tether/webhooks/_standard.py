"""Standard Webhooks (and Svix, with the ``svix-`` header prefix).

Headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``; the signed message is
``id + "." + timestamp + "." + raw``. The signature header holds space-separated ``version,base64`` entries:
``v1`` is HMAC-SHA256 keyed with the base64-decoded secret (after its ``whsec_`` prefix), ``v1a`` is an Ed25519
signature checked with a ``whpk_`` public key. Any entry may match, which is how senders rotate keys.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tether.errors import ConfigurationError, MalformedSignatureHeader, SignatureMismatch
from tether.webhooks._event import VerifiedEvent
from tether.webhooks._scheme import Delivery
from tether.webhooks._signing import decode_signature, hmac_digest, matches_any
from tether.webhooks._timestamps import check_tolerance, parse_timestamp

__all__ = ["StandardWebhooks"]

_MAX_SIGNATURES = 16
_SYMMETRIC_PREFIX = "whsec_"
_PUBLIC_KEY_PREFIX = "whpk_"


def _key_bytes(secret: str, prefix: str, what: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(prefix), validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret: say what shape it should have.
        raise ConfigurationError(
            f"A Standard Webhooks {what} must be base64 after its {prefix} prefix; this one is not"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class StandardWebhooks:
    """Standard Webhooks v1 (HMAC) and v1a (Ed25519); ``header_prefix="svix-"`` for Svix's header names.

    A secret starting with ``whpk_`` is an Ed25519 public key and checks ``v1a`` entries; any other secret
    (``whsec_...``, or bare base64) is an HMAC key and checks ``v1`` entries. The event's ``id`` is the id header,
    its ``type`` the JSON payload's ``type``.
    """

    header_prefix: str = "webhook-"
    name: str = "standard"

    def _signatures(self, value: str, header: str) -> dict[str, list[bytes]]:
        entries = value.split()
        if len(entries) > _MAX_SIGNATURES:
            raise MalformedSignatureHeader(
                f"The {self.name} webhook's {header} header holds {len(entries)} signatures "
                f"(at most {_MAX_SIGNATURES} are read)",
                scheme=self.name,
                header=header,
            )
        found: dict[str, list[bytes]] = {"v1": [], "v1a": []}
        for entry in entries:
            version, sep, text = entry.partition(",")
            signature = decode_signature(text, "base64") if sep and version in found else None
            if signature is not None:
                found[version].append(signature)
        if not any(found.values()):
            raise MalformedSignatureHeader(
                f"The {self.name} webhook's {header} header has no 'v1,<base64>' or 'v1a,<base64>' entry",
                scheme=self.name,
                header=header,
            )
        return found

    def verify(self, delivery: Delivery, *, secrets: tuple[str, ...], now: float, tolerance: float) -> VerifiedEvent:
        """Verify a Standard Webhooks delivery against any of ``secrets`` (HMAC secrets and/or public keys)."""
        headers, prefix = delivery.headers, self.header_prefix
        id_header, stamp_header, signature_header = f"{prefix}id", f"{prefix}timestamp", f"{prefix}signature"
        signatures = self._signatures(headers.require(signature_header, scheme=self.name), signature_header)
        event_id = headers.require(id_header, scheme=self.name)
        stamp = headers.require(stamp_header, scheme=self.name)
        timestamp = parse_timestamp(stamp, scheme=self.name, header=stamp_header)
        message = f"{event_id}.{stamp}.".encode("ascii") + delivery.body
        public_keys = [s for s in secrets if s.startswith(_PUBLIC_KEY_PREFIX)]
        hmac_keys = [_key_bytes(s, _SYMMETRIC_PREFIX, "secret") for s in secrets if s not in public_keys]
        expected = (hmac_digest("sha256", key, message) for key in hmac_keys)
        verified = bool(hmac_keys) and matches_any(signatures["v1"], expected)
        if not verified and public_keys:
            verified = any(
                self._ed25519_matches(_key_bytes(key, _PUBLIC_KEY_PREFIX, "public key"), signatures["v1a"], message)
                for key in public_keys
            )
        if not verified:
            raise SignatureMismatch(
                f"No signature in {signature_header} matches any of the {len(secrets)} configured key(s) "
                "(v1 needs the whsec_ secret, v1a the whpk_ public key)",
                scheme=self.name,
                header=signature_header,
            )
        check_tolerance(timestamp, now=now, tolerance=tolerance, scheme=self.name, header=stamp_header)
        return VerifiedEvent.from_body(
            scheme=self.name, raw=delivery.body, timestamp=timestamp, id=event_id, type_field="type"
        )

    @staticmethod
    def _ed25519_matches(key: bytes, signatures: list[bytes], message: bytes) -> bool:
        try:
            public_key = Ed25519PublicKey.from_public_bytes(key)
        except ValueError:
            raise ConfigurationError("A Standard Webhooks whpk_ public key must decode to 32 bytes") from None
        for signature in signatures:
            try:
                public_key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False
