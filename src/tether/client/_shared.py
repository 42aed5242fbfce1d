"""The call flow's limiter and circuit when their state is shared (a client's ``state=``, e.g. Redis).

They stand where :class:`~tether.policies.Limiter` and :class:`~tether.policies.CircuitState` stand for a client
of its own, with the same operations, but each returns the :class:`~tether.state.Command` that answers it: the
flow yields it (:class:`~tether.client._flow.Consult`) and the driver runs it on the shared state, as it sends a
request. This module, and :mod:`tether.state` with it, is imported only by a client given a ``state``.

**Whose keys.** Host and endpoint keys name the provider (``scheme://host:port``, the method and URL path), so
every client of every process calling it shares them. A ``"client"`` scope means "this client's provider": its key
is the client's identity, the origin of its ``base_url`` (:attr:`SharedGuards.client`), so clients of different
providers never share a client-scoped circuit or quota, and clients of one provider (in any process) do. Clients
without a ``base_url`` all share one ``"client"`` scope.

**A cancelled probe.** A half-open circuit's probe whose call is cancelled before its answer (the flow is closed
at its ``yield Send``) gets no verdict; its permit should go back at once. Nothing can be yielded to Redis while
a flow is being closed, so the release is *deferred* (:meth:`SharedGuards.defer`): the next command this client
sends takes it along first. A process that makes no further call leaves the probe to lapse after
``probe_timeout``, which counts as a failure (as for a process that dies mid-probe).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tether.policies import Admitted, CircuitBreaker, CircuitSnapshot, Policy, RateLimit, RetryBudget
from tether.policies._scope import scope_key
from tether.policies.breaker import Phase
from tether.state import Admission, AsyncRedisState, Command, RedisState

__all__ = ["SharedCircuit", "SharedGuards", "SharedLimiter"]


class SharedLimiter:
    """The shared quotas ``limits`` of ``key`` (stored under ``stored``, see :meth:`SharedGuards.stored`)."""

    __slots__ = ("_guards", "_stored", "key", "limits")

    def __init__(self, guards: SharedGuards, limits: tuple[RateLimit, ...], key: str) -> None:
        self._guards = guards
        self.limits = limits
        self.key = key
        self._stored = guards.stored(key)

    def reserve(self, now: float, max_wait: float) -> Command[float]:
        """See :meth:`tether.policies.Limiter.reserve`."""
        return self._guards.commands.reserve(self._stored, self.limits, now, max_wait)

    def learn(self, now: float, remaining: int, reset_after: float, *, window: bool = False) -> Command[None]:
        """See :meth:`tether.policies.Limiter.learn`."""
        return self._guards.commands.learn(self._stored, self.limits, now, remaining, reset_after, window=window)


class SharedCircuit:
    """The shared circuit ``key`` under the ``config`` setting (stored under ``stored``, see ``SharedGuards``)."""

    __slots__ = ("_guards", "_stored", "config", "key")

    def __init__(self, guards: SharedGuards, config: CircuitBreaker, key: str) -> None:
        self._guards = guards
        self.config = config
        self.key = key
        self._stored = guards.stored(key)

    def acquire(self, now: float) -> Command[Admission]:
        """See :meth:`tether.policies.CircuitState.acquire`; asked of the shared state even while closed."""
        return self._guards.commands.acquire(self._stored, self.config, now)

    def record(self, permit: Admitted, now: float, failed: bool, duration: float) -> Command[Phase | None]:
        """See :meth:`tether.policies.CircuitState.record`; the command answers the new phase, if it changed."""
        return self._guards.commands.record(self._stored, self.config, permit, now, failed=failed, duration=duration)

    def release(self, permit: Admitted, now: float) -> Command[None]:
        """See :meth:`tether.policies.CircuitState.release`."""
        return self._guards.commands.release(self._stored, self.config, permit, now)

    def snapshot(self, now: float) -> Command[CircuitSnapshot]:
        """See :meth:`tether.policies.CircuitState.snapshot`; nothing is written."""
        return self._guards.commands.circuit_snapshot(self._stored, self.config, now)


class SharedGuards:
    """What a client's calls consult in its shared ``state``: quotas, circuits and the retry budget.

    ``client``: the client's identity, the origin of its ``base_url`` (``""`` without one), which keys its
    ``"client"``-scoped circuits and quotas. The retry budget is kept per host (``scheme://host:port``): every
    process calling a host shares its budget.
    """

    __slots__ = ("_deferred", "client", "commands", "state", "warned")

    def __init__(self, state: AsyncRedisState | RedisState, *, client: str = "") -> None:
        self.state = state
        self.commands = state.commands
        self.client = client
        self.warned = False  # whether a lost bookkeeping command after a response was logged at WARNING yet
        self._deferred: deque[Command[Any]] = deque()

    def stored(self, key: str) -> str:
        """The key a circuit or quota ``key`` is stored under: a ``"client"`` scope's ``""`` is this client's."""
        return key if key else f"client:{self.client}"

    def limiter(self, policy: Policy, method: str, url: str) -> SharedLimiter:
        """The quotas a call to ``method url`` goes through under ``policy``."""
        return SharedLimiter(self, policy.rate_limits, scope_key(policy.rate_limit_scope, method, url))

    def circuit(self, breaker: CircuitBreaker, method: str, url: str) -> SharedCircuit:
        """The circuit a call to ``method url`` belongs to under ``breaker``."""
        return SharedCircuit(self, breaker, breaker.key(method, url))

    @staticmethod
    def budget_key(method: str, url: str) -> str:
        """The retry budget a call to ``method url`` deposits in and spends from: its host's."""
        return scope_key("host", method, url)

    def record_request(self, budget: RetryBudget, key: str, now: float) -> Command[None] | None:
        """A call's deposit in the retry budget ``key`` (``None`` while deposits are batched)."""
        return self.commands.record_request(key, budget, now)

    def try_spend(self, budget: RetryBudget, key: str, now: float) -> Command[bool]:
        """A retry's token from the retry budget ``key``."""
        return self.commands.try_spend(key, budget, now)

    def defer(self, command: Command[Any]) -> None:
        """Send ``command`` before this client's next one (it was made where nothing could be yielded)."""
        self._deferred.append(command)

    def deferred(self) -> Command[Any] | None:
        """The oldest deferred command, taken off the queue (``None``: none)."""
        try:
            return self._deferred.popleft()
        except IndexError:
            return None
