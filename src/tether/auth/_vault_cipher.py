"""Sealing one secret for one place: AES-256-GCM, a fresh 96-bit nonce, the key id, and the row's identity bound in.

A sealed value is text (it sits in a ``TEXT`` column on SQLite and PostgreSQL alike)::

    v1:KID:BASE64URL(nonce || ciphertext || tag)

``KID`` says which configured key opens it (:mod:`tether.auth._vault_keys`). The nonce is 12 random bytes from the
OS for every seal; with random nonces NIST SP 800-38D §8.3 allows 2**32 seals per key, far beyond what a token
store writes between rotations. The associated data is the :class:`SealedField` — component, integration,
connection id and field name — encoded unambiguously (a JSON array), so GCM's tag fails for a ciphertext pasted
into another connection's row, or from the refresh-token column into the access-token column.

Errors never carry the plaintext, the key, or the ciphertext bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from tether.auth._vault_keys import Keyring
from tether.errors import DecryptionFailed, UnknownKeyId

__all__ = ["FORMAT", "NONCE_BYTES", "SealedField", "key_id_of", "seal", "unseal"]

FORMAT = "v1"
"""The sealed-value format written first in every ciphertext."""

NONCE_BYTES = 12
"""96 bits: GCM's native nonce size."""

_TAG_BYTES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedField:
    """Where a sealed value belongs; bound into its ciphertext as associated data."""

    integration: str
    connection_id: str
    field: str

    def associated_data(self) -> bytes:
        """The bytes GCM authenticates alongside the ciphertext."""
        identity = ["tether.vault", FORMAT, self.integration, self.connection_id, self.field]
        return json.dumps(identity, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def describe(self) -> str:
        """The place in words, for error messages (no secret in it)."""
        return f"the {self.field} of connection {self.connection_id!r} ({self.integration})"


def seal(keyring: Keyring, plaintext: str, where: SealedField) -> str:
    """Encrypt ``plaintext`` under the keyring's newest key, bound to ``where``."""
    key_id = keyring.current_id
    cipher = keyring.cipher(key_id)
    if cipher is None:  # pragma: no cover - current_id is always configured
        raise UnknownKeyId(f"Key {key_id!r} is not configured", key_id=key_id)
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), where.associated_data())
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
    return f"{FORMAT}:{key_id}:{body}"


def key_id_of(value: str) -> str | None:
    """The key id a sealed value names, or ``None`` when it is not in the sealed format."""
    parts = value.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == FORMAT else None


def unseal(keyring: Keyring, value: str, where: SealedField) -> str:
    """Decrypt a value sealed for ``where``.

    Raises :class:`UnknownKeyId` when its key id is not configured, and :class:`DecryptionFailed` when it is not
    a sealed value, was altered, belongs to another place, or the key under its id is not the one it was sealed with.
    """
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[0] != FORMAT:
        raise DecryptionFailed(f"The stored value for {where.describe()} is not a vault ciphertext")
    _, key_id, body = parts
    cipher = keyring.cipher(key_id)
    if cipher is None:
        raise UnknownKeyId(
            f"The stored value for {where.describe()} was encrypted with key {key_id!r}, which is not configured "
            f"(configured: {', '.join(keyring.key_ids)})",
            key_id=key_id,
        )
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionFailed(f"The stored value for {where.describe()} is not valid base64") from None
    if len(raw) < NONCE_BYTES + _TAG_BYTES:
        raise DecryptionFailed(f"The stored value for {where.describe()} is truncated")
    try:
        plaintext = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], where.associated_data())
    except InvalidTag:
        raise DecryptionFailed(
            f"The stored value for {where.describe()} failed authentication under key {key_id!r}: it was altered, "
            "copied from another connection or field, or that key id now names a different key"
        ) from None
    return plaintext.decode("utf-8")
