"""What a signature scheme is: an object that turns a delivery and the secrets into a verified event, or raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.webhooks._event import VerifiedEvent
from tether.webhooks._headers import Headers

__all__ = ["Delivery", "Scheme"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One incoming request as verification sees it: headers, the exact raw body, and the public URL if known."""

    headers: Headers
    body: bytes
    url: str | None = None


@runtime_checkable
class Scheme(Protocol):
    """A webhook signature scheme. Implementations are pure: the time comes in as ``now``."""

    @property
    def name(self) -> str:
        """The scheme's name, used in events and error messages."""
        ...

    def verify(self, delivery: Delivery, *, secrets: tuple[str, ...], now: float, tolerance: float) -> VerifiedEvent:
        """Return the verified event, or raise a :class:`tether.errors.WebhookVerificationError` subclass."""
        ...
