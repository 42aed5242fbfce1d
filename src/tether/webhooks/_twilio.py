"""Twilio: ``X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + sorted form params))``.

Form bodies: the full URL (with its query string) followed by each POST parameter's name and value, sorted by
name. JSON bodies: Twilio adds ``bodySHA256=<hex SHA-256 of the raw body>`` to the URL's query and appends no
parameters, so the URL signature covers the body through that hash, which is checked too. Twilio's SDKs also
accept the URL with the scheme's default port added or removed, since proxies differ in how they report it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from tether.errors import ConfigurationError, MalformedSignatureHeader, SignatureMismatch
from tether.webhooks._event import VerifiedEvent
from tether.webhooks._scheme import Delivery
from tether.webhooks._signing import decode_signature, hmac_digest, matches_any

__all__ = ["Twilio"]

_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _url_variants(url: str) -> list[str]:
    """The URL as given, then with the scheme's default port toggled (present <-> absent)."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or parts.hostname is None or (port is not None and port != default):
        return [url]
    host = parts.netloc.rpartition("@")[2]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    bare = host.rsplit(":", 1)[0] if port is not None else host
    toggled = f"{userinfo}{bare}" if port is not None else f"{userinfo}{host}:{default}"
    return [url, urlunsplit(parts._replace(netloc=toggled))]


def _form_suffix(body: bytes) -> bytes:
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return "".join(name + value for name, value in sorted(pairs)).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class Twilio:
    """Twilio's request signatures; ``url`` is required (the public URL Twilio called, query string included)."""

    name: str = "twilio"

    def verify(self, delivery: Delivery, *, secrets: tuple[str, ...], now: float, tolerance: float) -> VerifiedEvent:
        """Verify a Twilio request against any of the auth ``secrets`` (Twilio signs no timestamp)."""
        del now, tolerance  # Twilio's signature covers no time; deduplicate on the idempotency token instead
        if delivery.url is None:
            raise ConfigurationError(
                "The twilio scheme signs the request URL: pass url= (the public URL Twilio called, with its query "
                "string, as configured in the console; a proxy's internal URL will not match)"
            )
        value = delivery.headers.require(_HEADER, scheme=self.name)
        candidate = decode_signature(value, "base64")
        if candidate is None:
            raise MalformedSignatureHeader(
                f"The twilio webhook's {_HEADER} header is not a base64 HMAC-SHA1", scheme=self.name, header=_HEADER
            )
        body_hashes = parse_qs(urlsplit(delivery.url).query).get("bodySHA256")
        suffix = b"" if body_hashes else _form_suffix(delivery.body)
        expected = (
            hmac_digest("sha1", secret.encode("utf-8"), url.encode("utf-8") + suffix)
            for secret in secrets
            for url in _url_variants(delivery.url)
        )
        if not matches_any([candidate], expected):
            raise SignatureMismatch(
                f"The {_HEADER} signature matches none of the {len(secrets)} configured auth token(s) for this URL "
                "(check url= is the exact public URL, scheme, host, port and query, that Twilio called)",
                scheme=self.name,
                header=_HEADER,
            )
        if body_hashes:
            actual = hashlib.sha256(delivery.body).hexdigest()
            if len(body_hashes) != 1 or not hmac.compare_digest(
                body_hashes[0].lower().encode("utf-8"), actual.encode("ascii")
            ):
                raise SignatureMismatch(
                    "The URL's signature is valid but its bodySHA256 does not match the body received "
                    "(the body was altered or is not the exact raw bytes)",
                    scheme=self.name,
                    header=_HEADER,
                )
        return VerifiedEvent.from_body(
            scheme=self.name, raw=delivery.body, id=delivery.headers.get("I-Twilio-Idempotency-Token")
        )
