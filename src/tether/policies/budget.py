"""Retry budget: retries may add at most a set fraction of traffic.

In the spirit of gRPC's retry throttling and the AWS SDKs' retry quota, and shaped like Finagle's
``RetryBudget``: a token bucket that every *original* request fills by ``ratio`` tokens and that a
trickle of ``min_per_second`` tokens refills over time, capped at ``burst`` tokens; a retry spends one
token and is suppressed when none is left. So over any window of ``T`` seconds with ``N`` original
requests, at most ``burst + ratio x N + min_per_second x T`` retries are allowed: during a full outage a
steady load makes about ``1 + ratio`` attempts per call instead of ``1 + retries``, while a quiet client
still retries its occasional failure.

Defaults: ``ratio=0.1`` (retries add at most 10 % load), ``burst=10``, ``min_per_second=0.2``.
:class:`RetryBudget` is the immutable setting; :class:`RetryBudgetState` is the one mutable object a client
shares between its calls (thread-safe; pure apart from its own state: callers pass ``now``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tether.errors import ConfigurationError

__all__ = ["BudgetSnapshot", "RetryBudget", "RetryBudgetState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudget:
    """How much extra traffic retries may add; see the module docstring."""

    ratio: float = 0.1
    burst: float = 10.0
    min_per_second: float = 0.2

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.burst < 1 or self.min_per_second < 0:
            raise ConfigurationError(f"RetryBudget needs ratio >= 0, burst >= 1 and min_per_second >= 0, got {self!r}")


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """A budget's state for diagnostics: ``tokens`` available, ``requests``/``retries``/``suppressed`` counts."""

    tokens: float
    requests: int
    retries: int
    suppressed: int


class RetryBudgetState:
    """The token bucket behind a :class:`RetryBudget` (shared by all calls of one client)."""

    __slots__ = ("_deposited", "_last", "_lock", "_requests", "_retries", "_suppressed", "_tokens", "config")

    def __init__(self, config: RetryBudget, now: float) -> None:
        self.config = config
        self._tokens = config.burst
        self._last = now
        self._lock = threading.Lock()
        self._requests = 0
        self._deposited = 0  # requests already turned into tokens
        self._retries = 0
        self._suppressed = 0

    def _settle(self, now: float) -> None:
        """Deposit the requests recorded since the last settlement, add the time-based trickle, apply the cap.

        Deposits between two settlements are only additions, so capping once here gives the same tokens as
        capping after each deposit; that keeps :meth:`record_request`, on every call's path, to one addition.
        """
        requests = self._requests
        self._tokens += (requests - self._deposited) * self.config.ratio
        self._deposited = requests
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens += elapsed * self.config.min_per_second
            self._last = now
        self._tokens = min(self.config.burst, self._tokens)

    def record_request(self, now: float) -> None:
        """An original request (a call's first attempt) was made: ``ratio`` tokens are deposited.

        Lock-free, as it is on every call's path: the count is turned into tokens when a retry next asks for
        one. Two threads racing here can lose an increment, which only ever leaves *fewer* tokens.
        """
        self._requests += 1

    def try_spend(self, now: float) -> bool:
        """Take one token for a retry; ``False`` (and the retry must not happen) if none is left."""
        with self._lock:
            self._settle(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._retries += 1
                return True
            self._suppressed += 1
            return False

    def snapshot(self) -> BudgetSnapshot:
        """The current state, for diagnostics (tokens as of the last retry decision, plus deposits since)."""
        with self._lock:
            requests = self._requests
            tokens = min(self.config.burst, self._tokens + (requests - self._deposited) * self.config.ratio)
            return BudgetSnapshot(tokens, requests, self._retries, self._suppressed)

    def __repr__(self) -> str:
        return f"<RetryBudgetState {self.snapshot()}>"
