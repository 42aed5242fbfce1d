"""Keyed digests, signature decoding and constant-time matching shared by every scheme."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

__all__ = ["ALGORITHMS", "Algorithm", "Encoding", "decode_signature", "hmac_digest", "matches_any"]

Algorithm: TypeAlias = Literal["sha1", "sha256", "sha512"]
Encoding: TypeAlias = Literal["hex", "base64"]

ALGORITHMS: frozenset[str] = frozenset({"sha1", "sha256", "sha512"})
"""The HMAC digests tether accepts; SHA-1 only because Twilio still signs with it."""

_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def hmac_digest(algorithm: Algorithm, key: bytes, message: bytes) -> bytes:
    """``HMAC(key, message)`` with the named digest."""
    return hmac.new(key, message, algorithm).digest()


def decode_signature(text: str, encoding: Encoding) -> bytes | None:
    """The signature's bytes, or ``None`` when ``text`` is not valid ``encoding`` (never raises)."""
    if encoding == "hex":
        if len(text) % 2 or not _HEX.fullmatch(text):
            return None
        return bytes.fromhex(text)
    if len(text) % 4 or not _BASE64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:  # pragma: no cover - the pattern and length check already rule this out
        return None


def matches_any(candidates: Sequence[bytes], expected: Iterable[bytes]) -> bool:
    """Whether any candidate equals any expected signature, each pair compared in constant time."""
    return any(hmac.compare_digest(candidate, want) for want in expected for candidate in candidates)
