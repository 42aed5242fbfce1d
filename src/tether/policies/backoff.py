"""Exponential backoff with full jitter.

The n-th retry waits a uniformly random time in ``[0, min(max, initial x multiplier^(n-1))]`` ("full
jitter", which spreads retrying clients best; see the AWS Architecture Blog, *Exponential Backoff and
Jitter*). Randomness is injected as a number in ``[0, 1)`` so the schedule is pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.errors import ConfigurationError

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Backoff schedule: ``initial`` seconds, growing by ``multiplier`` per retry, capped at ``max``."""

    initial: float = 0.1
    multiplier: float = 2.0
    max: float = 10.0

    def __post_init__(self) -> None:
        if not (self.initial >= 0 and self.max >= 0 and self.multiplier >= 1):
            raise ConfigurationError(f"Backoff needs initial >= 0, max >= 0 and multiplier >= 1, got {self!r}")

    def ceiling(self, retry_number: int) -> float:
        """The largest delay the ``retry_number``-th retry (1-based) may wait."""
        exponent = max(0, retry_number - 1)
        # Cap the exponent: beyond ~1000 doublings the float overflows long after reaching `max`.
        return min(self.max, self.initial * self.multiplier ** min(exponent, 1000))

    def delay(self, retry_number: int, rand: float) -> float:
        """The jittered delay for the ``retry_number``-th retry, given ``rand`` in ``[0, 1)``."""
        return rand * self.ceiling(retry_number)
