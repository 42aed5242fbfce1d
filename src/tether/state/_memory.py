"""The in-memory backend: the policies themselves, one state per setting and key, in this process.

It is the default, and what a Redis backend falls back to while Redis cannot be reached
(``on_unavailable="open"``). Every answer comes from :class:`~tether.policies.Limiter`,
:class:`~tether.policies.RetryBudgetState` and :class:`~tether.policies.CircuitState`; this module only finds the
state an operation is about. States are found by setting *and* key, as the call pipeline's own registry does: two
settings that share a key keep separate state, and equal settings (however many clients hold them) share it.
"""

from __future__ import annotations

import math
import threading

from tether.policies.breaker import Admitted, CircuitBreaker, CircuitSnapshot, CircuitState, Phase
from tether.policies.budget import BudgetSnapshot, RetryBudget, RetryBudgetState
from tether.policies.limiter import Limiter, RateLimit
from tether.state._backend import CLOSED, Admission

__all__ = ["MemoryState"]


class MemoryState:
    """Limiter, budget and circuit state held in this process (thread-safe); a :class:`~tether.state.StateBackend`."""

    __slots__ = ("_budgets", "_circuits", "_limiters", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[tuple[tuple[RateLimit, ...], str], Limiter] = {}
        self._budgets: dict[tuple[RetryBudget, str], RetryBudgetState] = {}
        self._circuits: dict[tuple[CircuitBreaker, str], CircuitState] = {}

    # -- finding the state --------------------------------------------------------------------------------

    def limiter(self, key: str, limits: tuple[RateLimit, ...]) -> Limiter:
        """The limiter of ``key`` under ``limits``, made on first use."""
        found = self._limiters.get((limits, key))
        if found is None:
            with self._lock:
                found = self._limiters.setdefault((limits, key), Limiter(limits, key))
        return found

    def budget(self, key: str, config: RetryBudget, now: float) -> RetryBudgetState:
        """The retry budget ``key`` under ``config``, made full at ``now`` on first use."""
        found = self._budgets.get((config, key))
        if found is None:
            with self._lock:
                found = self._budgets.setdefault((config, key), RetryBudgetState(config, now))
        return found

    def circuit(self, key: str, config: CircuitBreaker) -> CircuitState:
        """The circuit ``key`` under ``config``, made closed on first use."""
        found = self._circuits.get((config, key))
        if found is None:
            with self._lock:
                found = self._circuits.setdefault((config, key), CircuitState(config, key))
        return found

    # -- the operations (see tether.state.StateBackend) ---------------------------------------------------

    def reserve(self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf) -> float:
        """The wait before a call may go; booked when at most ``max_wait`` (see :meth:`Limiter.reserve`)."""
        return self.limiter(key, limits).reserve(now, max_wait)

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
        """Pace ``key`` by the provider's announcement (see :meth:`Limiter.learn`)."""
        self.limiter(key, limits).learn(now, remaining, reset_after, window=window)

    def record_request(self, key: str, config: RetryBudget, now: float) -> None:
        """Count an original request in the budget ``key`` (see :meth:`RetryBudgetState.record_request`)."""
        self.budget(key, config, now).record_request(now)

    def try_spend(self, key: str, config: RetryBudget, now: float) -> bool:
        """Take a token for a retry (see :meth:`RetryBudgetState.try_spend`)."""
        return self.budget(key, config, now).try_spend(now)

    def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> BudgetSnapshot:
        """The budget's state (see :meth:`RetryBudgetState.snapshot`)."""
        return self.budget(key, config, now).snapshot()

    def acquire(self, key: str, config: CircuitBreaker, now: float) -> Admission:
        """Whether a call may start now, and whether deciding it moved the circuit (see ``CircuitState.acquire``)."""
        circuit = self.circuit(key, config)
        before = circuit.phase
        if before == "closed":  # as CircuitState.acquire: a closed circuit admits without the lock
            return CLOSED
        permit = circuit.acquire(now)
        after = circuit.phase
        return Admission(permit, after, after != before)

    def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Phase | None:
        """Report how an admitted call ended; the new phase if that changed it (see :meth:`CircuitState.record`)."""
        circuit = self.circuit(key, config)
        return circuit.phase if circuit.record(permit, now, failed, duration) else None

    def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> None:
        """Give back a permit whose call ended without a verdict (see :meth:`CircuitState.release`); ``now`` unused."""
        self.circuit(key, config).release(permit)

    def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> CircuitSnapshot:
        """The circuit's state as of ``now`` (see :meth:`CircuitState.snapshot`)."""
        return self.circuit(key, config).snapshot(now)

    def __repr__(self) -> str:
        counts = f"{len(self._limiters)} limiters, {len(self._budgets)} budgets, {len(self._circuits)} circuits"
        return f"<MemoryState {counts}>"
