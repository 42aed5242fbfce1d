"""A case-insensitive, read-only view of request headers that refuses hostile values instead of crashing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

from tether.errors import ConfigurationError, MalformedSignatureHeader, MissingSignatureHeader

__all__ = ["MAX_HEADER_CHARS", "Headers", "HeadersInput"]

MAX_HEADER_CHARS = 8192
"""The longest header value verification reads; real signature headers are a few hundred characters."""

HeadersInput: TypeAlias = "Mapping[str, str] | Mapping[str, bytes] | Iterable[tuple[str | bytes, str | bytes]]"


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")  # ASGI's raw headers; latin-1 never fails and keeps every byte
    raise ConfigurationError(f"webhook header {what} must be str or bytes, not {type(value).__name__}")


class Headers:
    """Headers from a mapping or a list of ``(name, value)`` pairs (str or bytes), looked up case-insensitively.

    A name given more than once with different values is ambiguous and is refused when read, as is a value that
    is not printable ASCII or longer than :data:`MAX_HEADER_CHARS`.
    """

    __slots__ = ("_values",)

    def __init__(self, headers: HeadersInput | Headers) -> None:
        if isinstance(headers, Headers):
            self._values: dict[str, list[str]] = headers._values
            return
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        values: dict[str, list[str]] = {}
        for pair in pairs:
            name, value = pair
            # the common cases (ASGI's bytes, a mapping's str) without a call each
            if type(name) is not str:
                name = name.decode("latin-1") if type(name) is bytes else _text(name, "names")
            if type(value) is not str:
                value = value.decode("latin-1") if type(value) is bytes else _text(value, "values")
            key = name.strip().lower()
            text = value.strip()
            bucket = values.get(key)
            if bucket is None:
                values[key] = [text]
            elif text not in bucket:
                bucket.append(text)
        self._values = values

    def get(self, name: str) -> str | None:
        """The header's value, or ``None`` when absent, empty, ambiguous or unreadable (for optional headers)."""
        try:
            return self.require(name, scheme="")
        except (MissingSignatureHeader, MalformedSignatureHeader):
            return None

    def require(self, name: str, *, scheme: str) -> str:
        """The header's value; raises :class:`MissingSignatureHeader` or :class:`MalformedSignatureHeader`."""
        found = [value for value in self._values.get(name.lower(), []) if value]
        if not found:
            raise MissingSignatureHeader(
                f"The {scheme} webhook has no {name} header (or it is empty)", scheme=scheme, header=name
            )
        if len(found) > 1:
            raise MalformedSignatureHeader(
                f"The {scheme} webhook's {name} header appears {len(found)} times with different values",
                scheme=scheme,
                header=name,
            )
        value = found[0]
        if len(value) > MAX_HEADER_CHARS:
            raise MalformedSignatureHeader(
                f"The {scheme} webhook's {name} header is {len(value)} characters long "
                f"(at most {MAX_HEADER_CHARS} are read)",
                scheme=scheme,
                header=name,
            )
        if not (value.isascii() and value.isprintable()):
            raise MalformedSignatureHeader(
                f"The {scheme} webhook's {name} header holds characters outside printable ASCII",
                scheme=scheme,
                header=name,
            )
        return value
