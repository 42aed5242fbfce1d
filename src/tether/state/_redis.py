"""The Redis backend's two shells: :class:`RedisState` (blocking, redis-py) and :class:`AsyncRedisState` (asyncio).

They are each other's twin and hold no decisions: each operation is a :class:`~tether.state.Command` from
:class:`~tether.state.RedisCommands`, run as one ``EVALSHA`` (``EVAL`` after ``NOSCRIPT``) and read by the
command itself; :class:`~tether.state._availability.Availability` says what happens when Redis fails.

Every Redis call is bounded by ``timeout`` (default 0.25 s): the asyncio shell cuts the whole exchange at it, the
blocking shell gives it to connecting, reading and waiting for a pooled connection each. redis-py's own retries
are off, since a retry that waits for a dead server is exactly what fail-open avoids; a connection that failed
is dropped, and the next command that tries opens a new one, which is how the shells reconnect after an outage.
``max_connections`` bounds the pool. redis-py is an optional dependency: ``pip install 'tether[redis]'``.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from typing import TYPE_CHECKING, Any, Self, TypeVar

from tether._redaction import redact_url
from tether.errors import ConfigurationError
from tether.policies.breaker import Admitted, CircuitBreaker, CircuitSnapshot, Phase
from tether.policies.budget import BudgetSnapshot, RetryBudget
from tether.policies.limiter import RateLimit
from tether.state._availability import Availability, OnUnavailable, SharedStateStats
from tether.state._backend import Admission
from tether.state._commands import Command, RedisCommands, interpret

if TYPE_CHECKING:
    from types import TracebackType

    import redis
    import redis.asyncio

__all__ = ["DEFAULT_URL", "AsyncRedisState", "RedisState"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
"""Where the shells look for Redis unless told otherwise."""

T = TypeVar("T")

# What makes Redis unavailable: whatever the exchange with it raises, for that command. That is redis-py's
# errors (refused, reset, timed out, error replies), the OS's, a reply of the wrong shape (MalformedReply), and
# what redis-py raises on a server that does not speak its protocol (an AttributeError from its handshake, for
# one). So no foreign exception reaches a caller; cancellation, not an Exception, still does.


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            "the Redis state backend needs redis-py: install it with pip install 'tether[redis]'"
        ) from None


def _where(kwargs: dict[str, Any]) -> str:
    """The server a pool connects to, for messages: never its credentials."""
    if kwargs.get("path"):
        return f"unix:{kwargs['path']} db {kwargs.get('db', 0)}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')} db {kwargs.get('db', 0)}"


class _Shell:
    """What both shells share: the settings, the commands, the availability bookkeeping."""

    __slots__ = ("_max_connections", "_no_script", "_owned", "availability", "commands", "timeout")

    def __init__(
        self,
        *,
        prefix: str,
        on_unavailable: OnUnavailable,
        timeout: float,
        retry_interval: float,
        max_connections: int,
        idle_ttl: float,
        deposit_interval: float,
    ) -> None:
        if not 0 < timeout < math.inf:
            raise ConfigurationError(f"the Redis timeout must be a number of seconds > 0, got {timeout!r}")
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, got {max_connections!r}")
        self.timeout = float(timeout)
        self._max_connections = max_connections
        self.commands = RedisCommands(prefix=prefix, idle_ttl=idle_ttl, deposit_interval=deposit_interval)
        self.availability = Availability(on_unavailable, retry_interval, "redis")  # named once connected
        self._no_script: type[BaseException] = _import("redis.exceptions").NoScriptError
        self._owned = False

    def _pool_options(self, retry_class: Any) -> dict[str, Any]:
        return {
            "max_connections": self._max_connections,
            "timeout": self.timeout,  # waiting for a free pooled connection
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": retry_class(_import("redis.backoff").NoBackoff(), 0),  # no retries: see the module docstring
        }

    def stats(self) -> SharedStateStats:
        """The backend's counters: outages, failed commands, answers given from local state."""
        return self.availability.stats()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.availability.where} prefix={self.commands.prefix!r} "
            f"on_unavailable={self.availability.on_unavailable!r}>"
        )


class RedisState(_Shell):
    """Limiter, retry budget and circuit state shared through Redis, with blocking I/O.

    A :class:`~tether.state.StateBackend`: ``RedisState("redis://:password@host:6379/0")``. Pass ``client`` to use
    a ``redis.Redis`` you configured yourself (it keeps its own timeouts and retries: give it short ones); it is
    then yours to close. See :mod:`tether.state` for the keys, the clock and ``on_unavailable``.
    """

    __slots__ = ("_client",)

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        client: redis.Redis | None = None,
        prefix: str = "tether:",
        on_unavailable: OnUnavailable = "open",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        max_connections: int = 32,
        idle_ttl: float = 3600.0,
        deposit_interval: float = 0.1,
    ) -> None:
        super().__init__(
            prefix=prefix,
            on_unavailable=on_unavailable,
            timeout=timeout,
            retry_interval=retry_interval,
            max_connections=max_connections,
            idle_ttl=idle_ttl,
            deposit_interval=deposit_interval,
        )
        if client is None:
            sync = _import("redis")
            try:
                pool = sync.BlockingConnectionPool.from_url(url, **self._pool_options(_import("redis.retry").Retry))
            except ValueError as exc:
                raise ConfigurationError(f"not a Redis URL: {redact_url(url)} ({exc})") from None
            client = sync.Redis.from_pool(pool)
            self._owned = True
        self._client: redis.Redis = client
        self.availability.where = _where(client.connection_pool.connection_kwargs)

    def execute(self, command: Command[T]) -> T:
        """Run ``command`` on Redis and read its reply; while Redis is unavailable, fall back or raise."""
        availability = self.availability
        if availability.should_try(command.now):
            try:
                result = interpret(command, self._run(command))
            except Exception as exc:  # see "What makes Redis unavailable" above
                availability.failed(command.now, exc)
            else:
                availability.succeeded(command.now)
                return result
        return availability.fall_back(command)

    def _run(self, command: Command[Any]) -> object:
        script, client = command.script, self._client
        try:
            return client.evalsha(script.sha, len(command.keys), *command.keys, *command.args)
        except self._no_script:  # the server lost its script cache (restart, SCRIPT FLUSH): send the source once
            return client.eval(script.source, len(command.keys), *command.keys, *command.args)

    def close(self) -> None:
        """Close the connections (a ``client`` passed in is left open: it is the caller's)."""
        if self._owned:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- the operations (see tether.state.StateBackend) ---------------------------------------------------

    def reserve(self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf) -> float:
        """The wait before a call may go; booked in every quota when at most ``max_wait``."""
        return self.execute(self.commands.reserve(key, limits, now, max_wait))

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
        """Pace ``key`` by what the provider announced."""
        self.execute(self.commands.learn(key, limits, now, remaining, reset_after, window=window))

    def record_request(self, key: str, config: RetryBudget, now: float) -> None:
        """Deposit an original request in the budget ``key`` (sent in batches, see ``RedisCommands``)."""
        command = self.commands.record_request(key, config, now)
        if command is not None:
            self.execute(command)

    def try_spend(self, key: str, config: RetryBudget, now: float) -> bool:
        """Take a token for a retry; ``False``: the retry must not happen."""
        return self.execute(self.commands.try_spend(key, config, now))

    def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> BudgetSnapshot:
        """The budget's state, for diagnostics."""
        return self.execute(self.commands.budget_snapshot(key, config, now))

    def acquire(self, key: str, config: CircuitBreaker, now: float) -> Admission:
        """May a call start now; the phase it leaves, and whether this decision changed it."""
        return self.execute(self.commands.acquire(key, config, now))

    def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Phase | None:
        """Report how an admitted call ended; the new phase if that changed it."""
        return self.execute(self.commands.record(key, config, permit, now, failed=failed, duration=duration))

    def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> None:
        """Give back a permit whose call ended without a verdict (it was cancelled); nothing is counted."""
        self.execute(self.commands.release(key, config, permit, now))

    def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> CircuitSnapshot:
        """The circuit's state, for diagnostics and health checks."""
        return self.execute(self.commands.circuit_snapshot(key, config, now))


class AsyncRedisState(_Shell):
    """Limiter, retry budget and circuit state shared through Redis, with asyncio (``redis.asyncio``).

    The asyncio twin of :class:`RedisState` (an :class:`~tether.state.AsyncStateBackend`), with the same
    arguments; ``client`` is a ``redis.asyncio.Redis``. Close it with ``await state.aclose()`` or ``async with``,
    in the event loop that used it.
    """

    __slots__ = ("_client",)

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        client: redis.asyncio.Redis | None = None,
        prefix: str = "tether:",
        on_unavailable: OnUnavailable = "open",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        max_connections: int = 32,
        idle_ttl: float = 3600.0,
        deposit_interval: float = 0.1,
    ) -> None:
        super().__init__(
            prefix=prefix,
            on_unavailable=on_unavailable,
            timeout=timeout,
            retry_interval=retry_interval,
            max_connections=max_connections,
            idle_ttl=idle_ttl,
            deposit_interval=deposit_interval,
        )
        if client is None:
            aio = _import("redis.asyncio")
            try:
                options = self._pool_options(_import("redis.asyncio.retry").Retry)
                pool = aio.BlockingConnectionPool.from_url(url, **options)
            except ValueError as exc:
                raise ConfigurationError(f"not a Redis URL: {redact_url(url)} ({exc})") from None
            client = aio.Redis.from_pool(pool)
            self._owned = True
        self._client: redis.asyncio.Redis = client
        self.availability.where = _where(client.connection_pool.connection_kwargs)

    async def execute(self, command: Command[T]) -> T:
        """Run ``command`` on Redis and read its reply; while Redis is unavailable, fall back or raise."""
        availability = self.availability
        if availability.should_try(command.now):
            try:
                async with asyncio.timeout(self.timeout):  # the whole exchange: pool, connect, send, read
                    reply = await self._run(command)
                result = interpret(command, reply)
            except TimeoutError:  # asyncio.timeout's, which says nothing by itself
                availability.failed(command.now, TimeoutError(f"no answer within {self.timeout:g} s"))
            except Exception as exc:  # see "What makes Redis unavailable" above
                availability.failed(command.now, exc)
            else:
                availability.succeeded(command.now)
                return result
        return availability.fall_back(command)

    async def _run(self, command: Command[Any]) -> object:
        script, client = command.script, self._client
        try:
            return await client.evalsha(script.sha, len(command.keys), *command.keys, *command.args)
        except self._no_script:  # the server lost its script cache (restart, SCRIPT FLUSH): send the source once
            return await client.eval(script.source, len(command.keys), *command.keys, *command.args)

    async def aclose(self) -> None:
        """Close the connections (a ``client`` passed in is left open: it is the caller's)."""
        if self._owned:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the operations (see tether.state.AsyncStateBackend) ----------------------------------------------

    async def reserve(self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf) -> float:
        """The wait before a call may go; booked in every quota when at most ``max_wait``."""
        return await self.execute(self.commands.reserve(key, limits, now, max_wait))

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
        """Pace ``key`` by what the provider announced."""
        await self.execute(self.commands.learn(key, limits, now, remaining, reset_after, window=window))

    async def record_request(self, key: str, config: RetryBudget, now: float) -> None:
        """Deposit an original request in the budget ``key`` (sent in batches, see ``RedisCommands``)."""
        command = self.commands.record_request(key, config, now)
        if command is not None:
            await self.execute(command)

    async def try_spend(self, key: str, config: RetryBudget, now: float) -> bool:
        """Take a token for a retry; ``False``: the retry must not happen."""
        return await self.execute(self.commands.try_spend(key, config, now))

    async def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> BudgetSnapshot:
        """The budget's state, for diagnostics."""
        return await self.execute(self.commands.budget_snapshot(key, config, now))

    async def acquire(self, key: str, config: CircuitBreaker, now: float) -> Admission:
        """May a call start now; the phase it leaves, and whether this decision changed it."""
        return await self.execute(self.commands.acquire(key, config, now))

    async def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Phase | None:
        """Report how an admitted call ended; the new phase if that changed it."""
        return await self.execute(self.commands.record(key, config, permit, now, failed=failed, duration=duration))

    async def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> None:
        """Give back a permit whose call ended without a verdict (it was cancelled); nothing is counted."""
        await self.execute(self.commands.release(key, config, permit, now))

    async def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> CircuitSnapshot:
        """The circuit's state, for diagnostics and health checks."""
        return await self.execute(self.commands.circuit_snapshot(key, config, now))
