"""The shared-state interface: the operations the call pipeline performs on limiter, budget and breaker state.

Every operation names its state by ``key`` (what :func:`tether.policies._scope.scope_key` gives for a call, or a
client's name for its budget) and carries the setting it runs under, so a backend holds no configuration of its
own. Times are the caller's monotonic seconds (``now``), as in :mod:`tether.policies`; a shared backend decides
on its own clock and converts what it answers back to the caller's (see :mod:`tether.state`).

:class:`StateBackend` answers at once (the in-memory backend, and the blocking Redis shell);
:class:`AsyncStateBackend` is its asyncio twin. Results are the policies' own values, plus two that a shared
circuit needs because its phase can change in another process: :class:`Admission` and, from ``record``, the
new phase (``None`` when it did not change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tether.policies.breaker import CLOSED_ADMISSION, Admitted, CircuitBreaker, CircuitSnapshot, Phase, Refused
from tether.policies.budget import BudgetSnapshot, RetryBudget
from tether.policies.limiter import RateLimit

__all__ = ["CLOSED", "Admission", "AsyncStateBackend", "StateBackend"]


@dataclass(frozen=True, slots=True)
class Admission:
    """A circuit's answer to ``acquire``: the ``permit`` (or refusal), the ``phase`` after it, and if it ``changed``.

    ``changed`` is true when this very decision moved the circuit (open to half-open as a probe is let through,
    half-open to open when a probe lapsed), so the caller announces each transition once.
    """

    permit: Admitted | Refused
    phase: Phase
    changed: bool


CLOSED = Admission(CLOSED_ADMISSION, "closed", changed=False)
"""The admission of every call through a closed circuit (one shared object, as ``CLOSED_ADMISSION`` is)."""


class StateBackend(Protocol):
    """Limiter, retry budget and circuit state, answered at once."""

    def reserve(self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf) -> float:
        """:meth:`Limiter.reserve <tether.policies.Limiter.reserve>` for ``key`` under ``limits``: the wait."""
        ...

    def learn(
        self,
        key: str,
        limits: tuple[RateLimit, ...],
        now: float,
        remaining: int,
        reset_after: float,
        *,
        window: bool = False,
    ) -> None:
        """:meth:`Limiter.learn <tether.policies.Limiter.learn>`: ``remaining`` calls until ``reset_after``."""
        ...

    def record_request(self, key: str, config: RetryBudget, now: float) -> None:
        """:meth:`RetryBudgetState.record_request <tether.policies.RetryBudgetState.record_request>`."""
        ...

    def try_spend(self, key: str, config: RetryBudget, now: float) -> bool:
        """:meth:`RetryBudgetState.try_spend <tether.policies.RetryBudgetState.try_spend>`: whether a retry may go."""
        ...

    def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> BudgetSnapshot:
        """The budget's state, for diagnostics."""
        ...

    def acquire(self, key: str, config: CircuitBreaker, now: float) -> Admission:
        """:meth:`CircuitState.acquire <tether.policies.CircuitState.acquire>`, with the phase it leaves."""
        ...

    def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Phase | None:
        """:meth:`CircuitState.record <tether.policies.CircuitState.record>`: the new phase, if it changed."""
        ...

    def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> None:
        """:meth:`CircuitState.release <tether.policies.CircuitState.release>`: a permit back, without a verdict."""
        ...

    def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> CircuitSnapshot:
        """The circuit's state, for diagnostics and health checks."""
        ...


class AsyncStateBackend(Protocol):
    """The asyncio twin of :class:`StateBackend`: the same operations, awaited."""

    async def reserve(self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf) -> float:
        """See :meth:`StateBackend.reserve`."""
        ...

    async def learn(
        self,
        key: str,
        limits: tuple[RateLimit, ...],
        now: float,
        remaining: int,
        reset_after: float,
        *,
        window: bool = False,
    ) -> None:
        """See :meth:`StateBackend.learn`."""
        ...

    async def record_request(self, key: str, config: RetryBudget, now: float) -> None:
        """See :meth:`StateBackend.record_request`."""
        ...

    async def try_spend(self, key: str, config: RetryBudget, now: float) -> bool:
        """See :meth:`StateBackend.try_spend`."""
        ...

    async def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> BudgetSnapshot:
        """See :meth:`StateBackend.budget_snapshot`."""
        ...

    async def acquire(self, key: str, config: CircuitBreaker, now: float) -> Admission:
        """See :meth:`StateBackend.acquire`."""
        ...

    async def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Phase | None:
        """See :meth:`StateBackend.record`."""
        ...

    async def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> None:
        """See :meth:`StateBackend.release`."""
        ...

    async def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> CircuitSnapshot:
        """See :meth:`StateBackend.circuit_snapshot`."""
        ...
