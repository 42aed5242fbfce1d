"""Each shared-state operation as one Redis command, and the reading of its reply: pure, no I/O.

:class:`RedisCommands` has the operations of :class:`~tether.state.StateBackend`, but instead of answering it
returns a :class:`Command`: the script to run with its keys and arguments, ``read`` (the reply to the
operation's result) and ``local`` (the same operation on this process's own state, for when Redis cannot be
reached). Any shell can carry a command out: the blocking and asyncio shells in :mod:`tether.state._redis`, or a
call pipeline that yields the command for its driver to run.

Keys are ``<prefix><kind>:<digest>``, the digest a BLAKE2b hash of the caller's key: an endpoint key holds a URL
path, and a path may hold a secret (a webhook token), which must not reach Redis's key space, ``MONITOR`` or
logs. Numbers travel as ``repr`` strings and come back as ``%.17g`` strings, both exact.

The scripts decide on the server's clock (the prelude's ``TIME``), so processes that do not share a monotonic
clock agree on time. What they answer in time is converted to the caller's clock: a refusal's ``retry_at`` by the
offset between the caller's ``now`` and the server's, waits as they are (durations). A probe's ``issued`` stays
on the server's clock: it is the probe's identity there, sent back as is by ``record``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tether.errors import ConfigurationError
from tether.policies.breaker import Admitted, CircuitBreaker, CircuitSnapshot, Phase, Refused
from tether.policies.budget import BudgetSnapshot, RetryBudget
from tether.policies.limiter import RateLimit
from tether.state._backend import CLOSED, Admission
from tether.state._memory import MemoryState
from tether.state._scripts import (
    BUDGET_SETTLE,
    BUDGET_SNAPSHOT,
    CIRCUIT_ACQUIRE,
    CIRCUIT_RECORD,
    CIRCUIT_RELEASE,
    CIRCUIT_SNAPSHOT,
    LIMITER_LEARN,
    LIMITER_RESERVE,
    Script,
)

__all__ = ["Command", "MalformedReply", "RedisCommands", "interpret"]

T = TypeVar("T")

_SERVER_CLOCK = ""  # ARGV[1] that makes a script read Redis's TIME
_PHASES: dict[str, Phase] = {"closed": "closed", "open": "open", "half_open": "half_open"}


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """One operation for Redis: run ``script`` with ``keys`` and ``args``, then ``read`` its reply.

    ``local`` answers the same operation from this process's own state (used only while Redis is unavailable
    and ``on_unavailable="open"``); ``now`` is the caller's time when the command was made.
    """

    script: Script
    keys: tuple[str, ...]
    args: tuple[str, ...]
    read: Callable[[object], T]
    local: Callable[[], T]
    now: float

    def __repr__(self) -> str:  # the closures say nothing useful, and keys are digests
        return f"<Command {self.script.name} {self.keys} {self.args}>"


class MalformedReply(Exception):
    """A reply that does not have the shape the script returns (a foreign server, or another program's key)."""


def interpret(command: Command[T], reply: object) -> T:
    """``command.read(reply)``; a reply of the wrong shape raises :class:`MalformedReply`."""
    try:
        return command.read(reply)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise MalformedReply(f"unexpected reply to {command.script.name}: {type(exc).__name__}") from None


# -- reading replies (pure) ----------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _number(value: object) -> float:
    if isinstance(value, bytes | str | int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _items(value: object, length: int) -> list[object]:
    if not isinstance(value, list) or len(value) != length:
        raise ValueError(f"expected a list of {length}")
    return value


def _phase(value: object) -> Phase:
    return _PHASES[_text(value)]


def _read_wait(reply: object) -> float:
    return _number(reply)


def _read_nothing(reply: object) -> None:
    _count(reply)


def _read_spent(reply: object) -> bool:
    return _count(reply) == 1


def _read_budget(pending: int, config: RetryBudget, reply: object) -> BudgetSnapshot:
    tokens, requests, retries, suppressed = _items(reply, 4)
    stored = _text(tokens)
    level = config.burst if not stored else float(stored)
    return BudgetSnapshot(
        min(config.burst, level + pending * config.ratio),
        _count(requests) + pending,
        _count(retries),
        _count(suppressed),
    )


def _read_admission(now: float, reply: object) -> Admission:
    kind, value, phase, changed, server_now = _items(reply, 5)
    decision, after = _text(kind), _phase(phase)
    if decision == "admit":
        if after != "closed":
            raise ValueError("admitted outside a probe by a circuit that is not closed")
        return CLOSED
    permit: Admitted | Refused
    if decision == "probe":
        permit = Admitted(probe=True, issued=_number(value))
    elif decision == "refuse":
        permit = Refused(_number(value) + (now - _number(server_now)))
    else:
        raise ValueError(f"unknown decision {decision!r}")
    return Admission(permit, after, _count(changed) == 1)


def _read_transition(reply: object) -> Phase | None:
    changed, phase = _items(reply, 2)
    return _phase(phase) if _count(changed) == 1 else None


def _read_circuit(now: float, reply: object) -> CircuitSnapshot:
    phase, calls, failures, slow, trips, open_until, server_now = _items(reply, 7)
    until = _text(open_until)
    return CircuitSnapshot(
        _phase(phase),
        _count(calls),
        _count(failures),
        _count(slow),
        _count(trips),
        float(until) + (now - _number(server_now)) if until else None,
    )


# -- building commands (pure) --------------------------------------------------------------------------------


def _num(value: float) -> str:
    return repr(float(value))


def _quota_field(limit: RateLimit) -> str:
    """The limiter hash field of a quota: equal quotas (in any process) share their TAT."""
    burst = limit.rate if limit.burst is None else limit.burst
    return f"{limit.rate}/{limit.per!r}/{burst}"


def _circuit_args(config: CircuitBreaker, idle_ttl: float) -> tuple[str, ...]:
    slot_width = config.window / config.buckets  # as CircuitState computes it
    return (
        f"{config.buckets}/{slot_width!r}",
        str(config.buckets),
        _num(slot_width),
        str(config.probes),
        _num(config.probe_timeout),
        _num(config.open_for),
        _num(config.open_multiplier),
        _num(config.max_open_for),
        _num(idle_ttl),
    )


class RedisCommands:
    """Builds the :class:`Command` for each shared-state operation (pure apart from its own small state).

    ``prefix`` namespaces every key; ``idle_ttl`` is how long budget and circuit keys outlive their last write
    (limiter keys expire when their quotas have fully recovered). ``local`` is the state ``Command.local``
    answers from. ``server_time=False`` makes the scripts decide at the callers' ``now`` instead of Redis's
    clock: only for tests driving one fake clock, since processes' monotonic clocks disagree.

    The retry budget's deposits (one per original request) are sent in batches: a request's deposit rides with
    the next command for that budget, or is sent on its own once ``deposit_interval`` seconds have passed since
    the last one went. This process's retries therefore see all of its own deposits, as with the local budget,
    while other processes see them at most ``deposit_interval`` late: the shared budget is at worst a little
    stricter, never looser. ``deposit_interval=0`` sends every deposit at once.
    """

    __slots__ = ("_deposits", "_lock", "deposit_interval", "idle_ttl", "local", "prefix", "server_time")

    def __init__(
        self,
        *,
        prefix: str = "tether:",
        idle_ttl: float = 3600.0,
        deposit_interval: float = 0.1,
        local: MemoryState | None = None,
        server_time: bool = True,
    ) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError(f"the key prefix must be a string, got {prefix!r}")
        if not 1 <= idle_ttl <= 30 * 86400:
            raise ConfigurationError(f"idle_ttl must be between 1 s and 30 days, got {idle_ttl!r}")
        if not 0 <= deposit_interval < math.inf:
            raise ConfigurationError(f"deposit_interval must be a number of seconds >= 0, got {deposit_interval!r}")
        self.prefix = prefix
        self.idle_ttl = float(idle_ttl)
        self.deposit_interval = float(deposit_interval)
        self.local = MemoryState() if local is None else local
        self.server_time = server_time
        self._lock = threading.Lock()
        self._deposits: dict[str, tuple[int, float]] = {}  # budget key -> (deposits not sent yet, last sent at)

    def redis_key(self, kind: str, key: str) -> str:
        """The Redis key of the ``kind`` (``limiter``, ``budget``, ``circuit``) state named ``key``."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        return f"{self.prefix}{kind}:{digest}"

    def _clock(self, now: float) -> str:
        return _SERVER_CLOCK if self.server_time else _num(now)

    # -- limiter ------------------------------------------------------------------------------------------

    def reserve(
        self, key: str, limits: tuple[RateLimit, ...], now: float, max_wait: float = math.inf
    ) -> Command[float]:
        """Book a call's slot in every quota of ``key``; the command answers the wait (see ``Limiter.reserve``)."""
        args = [self._clock(now), _num(max_wait)]
        for limit in limits:
            args += (_quota_field(limit), _num(limit.interval), _num(limit.tolerance))
        local = self.local
        return Command(
            LIMITER_RESERVE,
            (self.redis_key("limiter", key),),
            tuple(args),
            _read_wait,
            lambda: local.reserve(key, limits, now, max_wait),
            now,
        )

    def learn(
        self,
        key: str,
        limits: tuple[RateLimit, ...],
        now: float,
        remaining: int,
        reset_after: float,
        *,
        window: bool = False,
    ) -> Command[None]:
        """Pace ``key`` by what the provider announced (see ``Limiter.learn``); learned pacing is per key."""
        local = self.local
        return Command(
            LIMITER_LEARN,
            (self.redis_key("limiter", key),),
            (self._clock(now), str(int(remaining)), _num(reset_after), "1" if window else "0"),
            _read_nothing,
            lambda: local.learn(key, limits, now, remaining, reset_after, window=window),
            now,
        )

    # -- retry budget -------------------------------------------------------------------------------------

    def record_request(self, key: str, config: RetryBudget, now: float) -> Command[None] | None:
        """Deposit an original request in the budget ``key``: a command when deposits are due, else ``None``."""
        with self._lock:
            pending, sent_at = self._deposits.get(key, (0, -math.inf))
            pending += 1
            if now - sent_at < self.deposit_interval:
                self._deposits[key] = (pending, sent_at)
                return None
            self._deposits[key] = (0, now)
        return self._settle(key, config, now, pending, spend=False, read=_read_nothing)

    def try_spend(self, key: str, config: RetryBudget, now: float) -> Command[bool]:
        """Take a token for a retry, with this process's pending deposits (see ``RetryBudgetState.try_spend``)."""
        with self._lock:
            pending, _ = self._deposits.get(key, (0, -math.inf))
            self._deposits[key] = (0, now)
        return self._settle(key, config, now, pending, spend=True, read=_read_spent)

    def _settle(
        self, key: str, config: RetryBudget, now: float, deposits: int, *, spend: bool, read: Callable[[object], T]
    ) -> Command[T]:
        local = self.local

        def on_local_state() -> T:
            for _ in range(deposits):
                local.record_request(key, config, now)
            return local.try_spend(key, config, now) if spend else None  # type: ignore[return-value]

        args = (
            self._clock(now),
            str(deposits),
            _num(config.ratio),
            _num(config.burst),
            _num(config.min_per_second),
            _num(self.idle_ttl),
            "1" if spend else "0",
        )
        return Command(BUDGET_SETTLE, (self.redis_key("budget", key),), args, read, on_local_state, now)

    def budget_snapshot(self, key: str, config: RetryBudget, now: float) -> Command[BudgetSnapshot]:
        """The budget's state, counting this process's deposits not sent yet."""
        with self._lock:
            pending = self._deposits.get(key, (0, 0.0))[0]
        local = self.local
        return Command(
            BUDGET_SNAPSHOT,
            (self.redis_key("budget", key),),
            (self._clock(now),),
            lambda reply: _read_budget(pending, config, reply),
            lambda: local.budget_snapshot(key, config, now),
            now,
        )

    # -- circuit breaker ----------------------------------------------------------------------------------

    def acquire(self, key: str, config: CircuitBreaker, now: float) -> Command[Admission]:
        """May a call start now (see ``CircuitState.acquire``); asked of Redis even while closed."""
        local = self.local
        return Command(
            CIRCUIT_ACQUIRE,
            (self.redis_key("circuit", key),),
            (self._clock(now), *_circuit_args(config, self.idle_ttl)),
            lambda reply: _read_admission(now, reply),
            lambda: local.acquire(key, config, now),
            now,
        )

    def record(
        self, key: str, config: CircuitBreaker, permit: Admitted, now: float, *, failed: bool, duration: float
    ) -> Command[Phase | None]:
        """Report how an admitted call ended (see ``CircuitState.record``); the command answers the new phase."""
        slow = duration >= (math.inf if config.slow_call is None else config.slow_call)  # as CircuitState.record
        args = (
            self._clock(now),
            *_circuit_args(config, self.idle_ttl),
            "1" if permit.probe else "0",
            _num(permit.issued),
            "1" if failed else "0",
            "1" if slow else "0",
            str(config.min_calls),
            _num(config.failure_ratio),
            _num(config.slow_ratio) if config.slow_call is not None else "",
        )
        local = self.local
        return Command(
            CIRCUIT_RECORD,
            (self.redis_key("circuit", key),),
            args,
            _read_transition,
            lambda: local.record(key, config, permit, now, failed=failed, duration=duration),
            now,
        )

    def release(self, key: str, config: CircuitBreaker, permit: Admitted, now: float) -> Command[None]:
        """Give back a permit whose call ended without a verdict (see ``CircuitState.release``)."""
        local = self.local
        return Command(
            CIRCUIT_RELEASE,
            (self.redis_key("circuit", key),),
            (self._clock(now), *_circuit_args(config, self.idle_ttl), _num(permit.issued)),
            _read_nothing,
            lambda: local.release(key, config, permit, now),
            now,
        )

    def circuit_snapshot(self, key: str, config: CircuitBreaker, now: float) -> Command[CircuitSnapshot]:
        """The circuit's state as of now (nothing is written)."""
        local = self.local
        return Command(
            CIRCUIT_SNAPSHOT,
            (self.redis_key("circuit", key),),
            (self._clock(now), *_circuit_args(config, self.idle_ttl)),
            lambda reply: _read_circuit(now, reply),
            lambda: local.circuit_snapshot(key, config, now),
            now,
        )

    def __repr__(self) -> str:
        return f"<RedisCommands prefix={self.prefix!r}>"
