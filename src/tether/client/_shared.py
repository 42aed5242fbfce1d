"""The call flow's limiter and circuit when their state is shared (a client's ``state=``, e.g. Redis).

They stand where :class:`~tether.policies.Limiter` and :class:`~tether.policies.CircuitState` stand for a client
of its own, with the same operations, but each returns the :class:`~tether.state.Command` that answers it: the
flow yields it (:class:`~tether.client._flow.Consult`) and the driver runs it on the shared state, as it sends a
request. This module, and :mod:`tether.state` with it, is imported only by a client given a ``state``.
"""

from __future__ import annotations

from tether.policies import Admitted, CircuitBreaker, Policy, RateLimit, RetryBudget
from tether.policies._scope import scope_key
from tether.policies.breaker import Phase
from tether.state import Admission, AsyncRedisState, Command, RedisState

__all__ = ["SharedCircuit", "SharedGuards", "SharedLimiter"]


class SharedLimiter:
    """The shared quotas ``limits`` of ``key``."""

    __slots__ = ("_guards", "key", "limits")

    def __init__(self, guards: SharedGuards, limits: tuple[RateLimit, ...], key: str) -> None:
        self._guards = guards
        self.limits = limits
        self.key = key

    def reserve(self, now: float, max_wait: float) -> Command[float]:
        """See :meth:`tether.policies.Limiter.reserve`."""
        return self._guards.commands.reserve(self.key, self.limits, now, max_wait)

    def learn(self, now: float, remaining: int, reset_after: float) -> Command[None]:
        """See :meth:`tether.policies.Limiter.learn`."""
        return self._guards.commands.learn(self.key, self.limits, now, remaining, reset_after)


class SharedCircuit:
    """The shared circuit ``key`` under the ``config`` setting."""

    __slots__ = ("_guards", "config", "key")

    def __init__(self, guards: SharedGuards, config: CircuitBreaker, key: str) -> None:
        self._guards = guards
        self.config = config
        self.key = key

    def acquire(self, now: float) -> Command[Admission]:
        """See :meth:`tether.policies.CircuitState.acquire`; asked of the shared state even while closed."""
        return self._guards.commands.acquire(self.key, self.config, now)

    def record(self, permit: Admitted, now: float, failed: bool, duration: float) -> Command[Phase | None]:
        """See :meth:`tether.policies.CircuitState.record`; the command answers the new phase, if it changed."""
        return self._guards.commands.record(self.key, self.config, permit, now, failed=failed, duration=duration)


class SharedGuards:
    """What a client's calls consult in its shared ``state``: quotas, circuits and the retry budget.

    The retry budget is kept per host (``scheme://host:port``): every process calling a host shares its budget.
    """

    __slots__ = ("commands", "state")

    def __init__(self, state: AsyncRedisState | RedisState) -> None:
        self.state = state
        self.commands = state.commands

    def limiter(self, policy: Policy, method: str, url: str) -> SharedLimiter:
        """The quotas a call to ``method url`` goes through under ``policy``."""
        return SharedLimiter(self, policy.rate_limits, scope_key(policy.rate_limit_scope, method, url))

    def circuit(self, breaker: CircuitBreaker, method: str, url: str) -> SharedCircuit:
        """The circuit a call to ``method url`` belongs to under ``breaker``."""
        return SharedCircuit(self, breaker, breaker.key(method, url))

    def record_request(self, budget: RetryBudget, method: str, url: str, now: float) -> Command[None] | None:
        """A call's deposit in its host's retry budget (``None`` while deposits are batched)."""
        return self.commands.record_request(scope_key("host", method, url), budget, now)

    def try_spend(self, budget: RetryBudget, method: str, url: str, now: float) -> Command[bool]:
        """A retry's token from its host's retry budget."""
        return self.commands.try_spend(scope_key("host", method, url), budget, now)
