"""Which request headers the inbox keeps: all of them as received, except values that carry a credential.

Signature headers (``Stripe-Signature``, ``X-Hub-Signature-256``, ``webhook-signature``...) are kept: they prove
nothing to whoever reads them without the secret, and they let an operator see what was verified. ``Authorization``,
``Cookie``, API keys and tokens (anything :func:`tether._redaction.is_sensitive_name` flags that is not a
signature) are stored as ``[REDACTED]``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping

from tether._redaction import REDACTED, is_sensitive_name
from tether.errors import ConfigurationError
from tether.webhooks._headers import HeadersInput

__all__ = ["HeaderPairs", "dump_headers", "header_pairs", "header_size", "load_headers"]

HeaderPairs = tuple[tuple[str, str], ...]

_NEVER_KEPT = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")  # ASGI's raw bytes; latin-1 keeps every byte
    raise ConfigurationError(f"webhook header names and values must be str or bytes, not {type(value).__name__}")


def header_pairs(headers: HeadersInput) -> HeaderPairs:
    """The headers as ``(name, value)`` text pairs, in the order received (a mapping or an iterable of pairs)."""
    pairs: Iterable[tuple[object, object]] = headers.items() if isinstance(headers, Mapping) else headers
    # ASGI's bytes pairs, the common case, decoded without a call per item
    return tuple(
        [
            (
                name.decode("latin-1") if type(name) is bytes else _text(name),
                value.decode("latin-1") if type(value) is bytes else _text(value),
            )
            for name, value in pairs
        ]
    )


def header_size(pairs: HeaderPairs) -> int:
    """The headers' size in characters, names and values together."""
    return sum(len(name) + len(value) for name, value in pairs)


@functools.lru_cache(maxsize=1024)
def _redacted(name: str) -> bool:
    """Whether a header of this name is stored redacted (cached: providers send the same few names every time)."""
    lowered = name.strip().lower()
    if lowered in _NEVER_KEPT:
        return True
    return is_sensitive_name(lowered) and "signature" not in lowered


def dump_headers(pairs: HeaderPairs) -> str:
    """The headers as stored: a JSON list of pairs with credentials redacted."""
    return json.dumps([[name, REDACTED if _redacted(name) else value] for name, value in pairs], ensure_ascii=True)


def load_headers(stored: str) -> HeaderPairs:
    """The stored headers back as pairs."""
    return tuple((str(name), str(value)) for name, value in json.loads(stored))
