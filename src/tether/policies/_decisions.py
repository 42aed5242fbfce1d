"""The decisions pure policies return; the I/O shells carry them out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GiveUp", "GiveUpReason", "Wait"]

GiveUpReason = Literal["not_retryable", "attempts", "deadline", "retry_after_too_long", "budget"]


@dataclass(frozen=True, slots=True)
class Wait:
    """Retry after ``seconds``; ``server_asked`` when the delay comes from the response's headers."""

    seconds: float
    server_asked: bool = False


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Do not retry, for ``reason``; ``retry_after`` is the server's requested delay when that was the cause."""

    reason: GiveUpReason
    retry_after: float | None = None
