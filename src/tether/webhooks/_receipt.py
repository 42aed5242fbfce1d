"""The answer to one delivery: what the inbox did with it and which HTTP status to send back to the provider."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Outcome", "Receipt"]


class Outcome(StrEnum):
    """What :meth:`tether.webhooks.Inbox.receive` did with a delivery.

    ``accepted`` and ``duplicate`` answer 200 (the event is durable); ``rejected`` 401 (bad signature, nothing
    stored); ``too_large`` 413 and ``headers_too_large`` 431 (nothing stored); ``storage_failed`` 503, so the
    provider delivers again later.
    """

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    TOO_LARGE = "too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    STORAGE_FAILED = "storage_failed"


_STATUS = {
    Outcome.ACCEPTED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.REJECTED: 401,
    Outcome.TOO_LARGE: 413,
    Outcome.HEADERS_TOO_LARGE: 431,
    Outcome.STORAGE_FAILED: 503,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """The inbox's answer to one delivery; send ``status`` back to the provider.

    ``event_id`` is the inbox's id of the stored event (also for a duplicate: the first delivery's id), and
    ``provider_event_id`` the provider's id it was deduplicated on; both are ``None`` when nothing was stored.
    ``reason`` says why a delivery was refused, in words safe to log (never a secret).
    """

    outcome: Outcome
    event_id: int | None = None
    provider_event_id: str | None = None
    reason: str | None = None

    @property
    def status(self) -> int:
        """The HTTP status to answer: 2xx only once the event is durable."""
        return _STATUS[self.outcome]

    @property
    def ok(self) -> bool:
        """Whether the event is durably stored (accepted now or before), so answering 2xx is safe."""
        return self.status < 300
