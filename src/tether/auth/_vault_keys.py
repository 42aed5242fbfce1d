"""The vault's encryption keys: the ``TETHER_SECRET_KEY`` format, parsed into a :class:`Keyring`.

Format: comma-separated ``KID:KEY`` pairs, **newest first**::

    TETHER_SECRET_KEY="2025-06:3q2+7w...=,2024-11:q83vEj...="

``KID`` (1-64 of ``A-Z a-z 0-9 _ - .``) names the key and is written next to every ciphertext, so a token sealed
under an older key stays readable while that key is listed. ``KEY`` is 32 random bytes (AES-256) in base64,
standard or URL-safe, padding optional. The first pair encrypts everything written; the others only decrypt.
Rotating means putting a new pair first, running ``tether keys rotate``, then dropping the old pair. Whitespace
and newlines around pairs are ignored, so a key file may hold one pair per line.

Why our own format rather than, say, Fernet's ``MultiFernet`` list: the key id must be explicit and stable (it is
stored, indexed and used to find rows to rotate), and "newest first" is then stated by the order alone.

Key bytes live only inside ``AESGCM`` objects and are never part of a ``repr``, a log line or an error message;
errors say which pair is wrong by position and key id.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tether.errors import MalformedSecretKey

__all__ = ["KEY_BYTES", "Keyring", "generate_key_setting", "parse_keyring"]

KEY_BYTES = 32
"""AES-256: every key is 32 bytes."""

_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Keyring:
    """The configured keys: :attr:`current_id` encrypts, every listed key decrypts. Built by :func:`parse_keyring`.

    Its ``repr`` lists key ids only; it refuses to be pickled, so keys do not travel by accident.
    """

    __slots__ = ("_ciphers", "_ids")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        ids: list[str] = []
        ciphers: dict[str, AESGCM] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            if not _KID.fullmatch(key_id):
                raise MalformedSecretKey(
                    f"Key {position} of the secret key setting has an invalid key id (1-64 of A-Z a-z 0-9 _ - .)"
                )
            if key_id in ciphers:
                raise MalformedSecretKey(f"Key id {key_id!r} appears twice in the secret key setting")
            if len(key) != KEY_BYTES:
                raise MalformedSecretKey(
                    f"Key {key_id!r} in the secret key setting is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
            ids.append(key_id)
            ciphers[key_id] = AESGCM(key)
        if not ids:
            raise MalformedSecretKey("The secret key setting holds no key")
        self._ids = tuple(ids)
        self._ciphers = ciphers

    @property
    def current_id(self) -> str:
        """The newest key's id: every new ciphertext is sealed under it."""
        return self._ids[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, newest first."""
        return self._ids

    def cipher(self, key_id: str) -> AESGCM | None:
        """The AES-GCM cipher for ``key_id``, or ``None`` when no such key is configured."""
        return self._ciphers.get(key_id)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self._ids!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Keyring holds secret keys and is not picklable; pass the key setting to the process")


def _decode_key(text: str, key_id: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSecretKey(f"Key {key_id!r} in the secret key setting is not valid base64") from None


def parse_keyring(setting: str) -> Keyring:
    """Parse a ``KID:KEY[,KID:KEY...]`` setting (newest first) into a :class:`Keyring`.

    Raises :class:`tether.errors.MalformedSecretKey`, naming the pair by position or key id, never its key.
    """
    pairs: list[tuple[str, bytes]] = []
    entries = [entry.strip() for entry in re.split(r"[,\n]", setting)]
    for position, entry in enumerate((entry for entry in entries if entry), start=1):
        key_id, separator, encoded = entry.partition(":")
        if not separator or not key_id.strip() or not encoded.strip():
            raise MalformedSecretKey(
                f"Entry {position} of the secret key setting is not KID:BASE64KEY (a key id, a colon, then the key)"
            )
        key_id = key_id.strip()
        pairs.append((key_id, _decode_key(encoded.strip(), key_id)))
    return Keyring(pairs)


def generate_key_setting(key_id: str) -> str:
    """A new ``KID:KEY`` pair with 32 fresh random bytes, ready to put first in ``TETHER_SECRET_KEY``."""
    if not _KID.fullmatch(key_id):
        raise MalformedSecretKey("A key id is 1-64 of A-Z a-z 0-9 _ - .")
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    return f"{key_id}:{base64.b64encode(key).decode('ascii')}"
