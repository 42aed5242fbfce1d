"""A configurable HMAC scheme: one signature header over a template of timestamp, id, URL and body.

GitHub, Shopify, Slack, Zoom and Square are configurations of it (see :mod:`tether.webhooks._registry`); users
describe any other provider that signs with a plain HMAC the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tether.errors import ConfigurationError, MalformedSignatureHeader, SignatureMismatch
from tether.webhooks._event import VerifiedEvent
from tether.webhooks._scheme import Delivery
from tether.webhooks._signing import ALGORITHMS, Algorithm, Encoding, decode_signature, hmac_digest, matches_any
from tether.webhooks._timestamps import check_tolerance, parse_timestamp

__all__ = ["GenericHMAC"]

_SHORTHANDS = {"body": "{body}", "timestamp.body": "{timestamp}.{body}", "id.timestamp.body": "{id}.{timestamp}.{body}"}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_FIELDS = frozenset({"body", "timestamp", "id", "url"})
_MAX_SIGNATURES = 16


def _compile(template: str) -> tuple[tuple[str, bool], ...]:
    """Split a template into ``(text, is_field)`` parts, checking each ``{field}`` is known."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in _FIELDS:
            raise ConfigurationError(
                f"GenericHMAC signed={template!r}: unknown field {{{match.group(1)}}}; use {sorted(_FIELDS)}"
            )
        parts.extend(((template[position : match.start()], False), (match.group(1), True)))
        position = match.end()
    parts.append((template[position:], False))
    return tuple(part for part in parts if part[0] or part[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericHMAC:
    """An HMAC signature scheme described by configuration.

    ``header`` carries ``prefix`` + the ``encoding`` ("hex" or "base64") of ``HMAC-<algorithm>(secret, message)``.
    ``signed`` says what the message is: ``"body"``, ``"timestamp.body"``, ``"id.timestamp.body"``, or a template
    such as ``"v0:{timestamp}:{body}"`` over the fields ``{body}`` (the raw bytes), ``{timestamp}`` (from
    ``timestamp_header``, checked against the tolerance), ``{id}`` (from ``id_header``) and ``{url}`` (the
    ``url`` passed to :func:`~tether.webhooks.verify`). With ``separator`` set, the header may hold several
    signatures (key rotation), any of which may match. The event's ``id`` and ``type`` come from ``id_header`` /
    ``type_header``, else from the JSON payload's ``id_field`` / ``type_field``. Secrets are used as UTF-8 bytes.
    """

    header: str
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = ""
    signed: str = "body"
    timestamp_header: str | None = None
    id_header: str | None = None
    type_header: str | None = None
    id_field: str | None = "id"
    type_field: str | None = "type"
    separator: str | None = None
    name: str = "generic"
    _parts: tuple[tuple[str, bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(f"GenericHMAC algorithm={self.algorithm!r}: use one of {sorted(ALGORITHMS)}")
        if self.encoding not in ("hex", "base64"):
            raise ConfigurationError(f"GenericHMAC encoding={self.encoding!r}: use 'hex' or 'base64'")
        if not self.header:
            raise ConfigurationError("GenericHMAC needs header=, the name of the signature header")
        parts = _compile(_SHORTHANDS.get(self.signed, self.signed))
        fields = {text for text, is_field in parts if is_field}
        if "body" not in fields:
            raise ConfigurationError(f"GenericHMAC signed={self.signed!r} must include the body")
        if "timestamp" in fields and not self.timestamp_header:
            raise ConfigurationError(f"GenericHMAC signed={self.signed!r} needs timestamp_header=")
        if "id" in fields and not self.id_header:
            raise ConfigurationError(f"GenericHMAC signed={self.signed!r} needs id_header=")
        object.__setattr__(self, "_parts", parts)

    def _candidates(self, value: str) -> list[bytes]:
        texts = value.split(self.separator) if self.separator else [value]
        if len(texts) > _MAX_SIGNATURES:
            raise MalformedSignatureHeader(
                f"The {self.name} webhook's {self.header} header holds {len(texts)} signatures "
                f"(at most {_MAX_SIGNATURES} are read)",
                scheme=self.name,
                header=self.header,
            )
        decoded = []
        for text in (t.strip() for t in texts):
            if not text:
                continue
            if self.prefix and not text.startswith(self.prefix):
                continue
            signature = decode_signature(text[len(self.prefix) :], self.encoding)
            if signature is not None:
                decoded.append(signature)
        if not decoded:
            expected = f"{self.prefix}<{self.encoding} {self.algorithm.upper()} HMAC>"
            raise MalformedSignatureHeader(
                f"The {self.name} webhook's {self.header} header is not of the form {expected}",
                scheme=self.name,
                header=self.header,
            )
        return decoded

    def verify(self, delivery: Delivery, *, secrets: tuple[str, ...], now: float, tolerance: float) -> VerifiedEvent:
        """Verify ``delivery`` against any of ``secrets``; see the class docstring for the scheme."""
        headers = delivery.headers
        candidates = self._candidates(headers.require(self.header, scheme=self.name))
        values: dict[str, bytes] = {"body": delivery.body}
        timestamp = None
        if self.timestamp_header:
            stamp = headers.require(self.timestamp_header, scheme=self.name)
            timestamp = parse_timestamp(stamp, scheme=self.name, header=self.timestamp_header)
            values["timestamp"] = stamp.encode("ascii")
        event_id = headers.get(self.id_header) if self.id_header else None
        if any(text == "id" for text, is_field in self._parts if is_field):
            assert self.id_header is not None  # noqa: S101 - __post_init__ guarantees it
            event_id = headers.require(self.id_header, scheme=self.name)
            values["id"] = event_id.encode("ascii")
        if any(text == "url" for text, is_field in self._parts if is_field):
            if delivery.url is None:
                raise ConfigurationError(
                    f"The {self.name} scheme signs the notification URL: pass url= (the public URL the provider "
                    "was configured to call, exactly as registered)"
                )
            values["url"] = delivery.url.encode("utf-8")
        message = b"".join(values[text] if is_field else text.encode("utf-8") for text, is_field in self._parts)
        expected = (hmac_digest(self.algorithm, secret.encode("utf-8"), message) for secret in secrets)
        if not matches_any(candidates, expected):
            raise SignatureMismatch(
                f"No {self.name} signature in {self.header} matches any of the {len(secrets)} configured secret(s)",
                scheme=self.name,
                header=self.header,
            )
        if timestamp is not None and self.timestamp_header:
            check_tolerance(timestamp, now=now, tolerance=tolerance, scheme=self.name, header=self.timestamp_header)
        return VerifiedEvent.from_body(
            scheme=self.name,
            raw=delivery.body,
            timestamp=timestamp,
            id=event_id,
            type=headers.get(self.type_header) if self.type_header else None,
            id_field=self.id_field,
            type_field=self.type_field,
        )
