"""``Policy``: every resilience setting of a call in one immutable value.

A client has a default policy; any call may pass another (``client.policy.replace(retries=0)``).
Defaults (see ``shared/DESIGN.md``): 30 s deadline, 10 s per attempt, 3 retries with full-jitter backoff
from 0.1 s capped at 10 s, server delays honoured up to 60 s, a retry budget of 10 % of traffic, and
generated ``Idempotency-Key`` headers on POST and PATCH.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tether.errors import ConfigurationError
from tether.policies._scope import SCOPES, Scope
from tether.policies.backoff import Backoff
from tether.policies.breaker import CircuitBreaker
from tether.policies.budget import RetryBudget
from tether.policies.bulkhead import Bulkhead
from tether.policies.idempotency import Idempotency
from tether.policies.limiter import RateLimit
from tether.policies.retry import DEFAULT_RETRY_STATUSES

__all__ = ["Policy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Resilience settings for a call.

    - ``deadline``: total seconds for the call, all attempts and waits included (``None``: unbounded).
    - ``attempt_timeout``: seconds for one attempt; each gets ``min(attempt_timeout, time left)``.
    - ``retries``: how many times a retryable failure is repeated (0 disables retrying).
    - ``backoff``: the jittered exponential schedule between attempts.
    - ``retry_statuses``: response statuses worth repeating (subject to idempotency).
    - ``max_retry_after``: the longest server-requested wait honoured; longer raises ``RetryAfterTooLong``.
    - ``budget``: the retry budget (``None`` disables it).
    - ``idempotency``: key generation for unsafe methods (``None``: no keys, so POST/PATCH are not retried
      unless the caller sets the key header itself).
    - ``raise_for_status``: raise the typed error for a final 4xx/5xx response instead of returning it.
    - ``breaker``: the circuit breaker, e.g. ``CircuitBreaker()`` (``None``, the default for now, disables it); a
      client keeps one circuit per host by default.
    - ``rate_limits``: the provider's declared quotas, e.g. ``(RateLimit(10), RateLimit(1000, per=3600))``; calls
      wait for a slot, and one whose wait would pass its deadline raises ``RateLimited`` at once, without waiting.
    - ``learn_rate_limits``: pace calls by the quota the provider announces in its headers (``RateLimit``,
      ``X-RateLimit-*``, Shopify's call limit, ``Retry-After`` on 429/503), so it never needs to answer 429.
    - ``rate_limit_scope``: what one set of quotas covers: each ``host`` (the default), ``endpoint`` or the ``client``.
    - ``bulkhead``: at most so many requests in flight per host (by default), the rest waiting in a bounded line,
      e.g. ``Bulkhead(10, max_queue=100)`` (``None``, the default: no bound); a full line raises ``BulkheadFull``.
    - ``max_redirects``: how many redirects a call follows (0: none, the 3xx response is returned); more is a
      ``ReadError``. Credentials never follow a redirect to another origin (see :mod:`tether.client`).
    """

    deadline: float | None = 30.0
    attempt_timeout: float | None = 10.0
    retries: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    max_retry_after: float | None = 60.0
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    idempotency: Idempotency | None = field(default_factory=Idempotency)
    raise_for_status: bool = True
    breaker: CircuitBreaker | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    learn_rate_limits: bool = True
    rate_limit_scope: Scope = "host"
    bulkhead: Bulkhead | None = None
    max_redirects: int = 10

    def __post_init__(self) -> None:
        for name in ("deadline", "attempt_timeout", "max_retry_after"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigurationError(f"Policy.{name} must be a positive number of seconds or None, got {value!r}")
        if self.retries < 0:
            raise ConfigurationError(f"Policy.retries must be >= 0, got {self.retries!r}")
        if self.max_redirects < 0:
            raise ConfigurationError(f"Policy.max_redirects must be >= 0, got {self.max_redirects!r}")
        if not isinstance(self.rate_limits, tuple):
            object.__setattr__(self, "rate_limits", tuple(self.rate_limits))
        if self.rate_limit_scope not in SCOPES:
            raise ConfigurationError(
                f"Policy.rate_limit_scope must be host, endpoint or client, got {self.rate_limit_scope!r}"
            )
        if not isinstance(self.retry_statuses, frozenset):
            object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    def replace(self, **changes: object) -> Policy:
        """A copy with ``changes`` applied, e.g. ``policy.replace(retries=0, deadline=5)``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
