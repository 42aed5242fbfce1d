"""Shared policy state: the limiter, retry budget and circuit breaker state that several processes can share.

One small interface (:class:`StateBackend`, and its asyncio twin :class:`AsyncStateBackend`) with the
operations the call pipeline performs: ``reserve``/``learn`` (rate limits), ``record_request``/``try_spend``
(retry budget), ``acquire``/``record``/``release`` (circuit breaker) and two snapshots. Two backends:

- :class:`MemoryState` (the default): the policies of :mod:`tether.policies` themselves, in this process.
- Redis, for processes that share quotas and circuits: :class:`RedisState` (blocking) and
  :class:`AsyncRedisState` (asyncio), thin shells around :class:`RedisCommands`, which turns each operation into
  one :class:`Command` (a Lua script, its keys and arguments, and how to read its reply) without doing any I/O.
  A call pipeline can yield such a command for its driver to run, exactly as it yields a request to send.

The Redis scripts are the policies' own algorithms, step for step, with the same settings and outcomes (a
property test runs both on the same inputs). Each decision is one script, so it is atomic across processes.

**Time.** Processes do not share a monotonic clock, so the scripts read Redis's (``TIME``) and every process
decides on the same time; waits come back as durations and refusals' ``retry_at`` in the caller's monotonic
seconds. Redis's clock is its host's wall clock: a step of that clock (not NTP's gradual slewing) shifts pending
waits by the step, and a failover to a replica on another host changes clocks by their difference.

**Keys.** ``<prefix>limiter:<digest>``, ``<prefix>budget:<digest>``, ``<prefix>circuit:<digest>`` (``prefix``
defaults to ``"tether:"``; the digest hides the key, which may hold a URL path). Each is one hash of bounded size:
a limiter holds one timestamp per declared quota plus the learned pacing, a circuit one counter triple per window
bucket plus at most ``probes`` probe times. Every write sets a TTL: a limiter key expires once its quotas have
fully recovered, budget and circuit keys ``idle_ttl`` (default an hour) after their last write, an open circuit
not before it may close. An expired key is a fresh state.

**When Redis fails** (refused, reset, slower than ``timeout``, an error reply), ``on_unavailable`` decides:
``"open"`` (the default) answers from this process's own in-memory state and counts a fallback (``stats()``),
``"closed"`` raises :class:`SharedStateUnavailable`. Either way one WARNING is logged per outage, not per call,
and Redis is retried every ``retry_interval`` seconds, one command at a time, until it answers again.

**Where the shared state differs from the local one.** Learned pacing is per key, for every process and every
set of declared quotas (locally, per set of quotas); quotas are identified by their rate, period and burst, so
equal declarations share one schedule. Budget and circuit state is per key whatever the setting, and a circuit
whose window changes shape (``window``, ``buckets``) starts its counts afresh. A process's retry-budget deposits
reach the other processes up to ``deposit_interval`` (0.1 s) late, which only ever makes the budget stricter. A
probe's ``Admitted.issued`` is on Redis's clock (it is the probe's identity there). A closed circuit costs a
round trip per ``acquire``, as the phase may have changed in another process.
"""

from tether.errors import SharedStateUnavailable
from tether.state._availability import OnUnavailable, SharedStateStats
from tether.state._backend import CLOSED, Admission, AsyncStateBackend, StateBackend
from tether.state._commands import Command, RedisCommands
from tether.state._memory import MemoryState
from tether.state._redis import DEFAULT_URL, AsyncRedisState, RedisState
from tether.state._scripts import Script

__all__ = [
    "CLOSED",
    "DEFAULT_URL",
    "Admission",
    "AsyncRedisState",
    "AsyncStateBackend",
    "Command",
    "MemoryState",
    "OnUnavailable",
    "RedisCommands",
    "RedisState",
    "Script",
    "SharedStateStats",
    "SharedStateUnavailable",
    "StateBackend",
]
