"""Pure resilience policies: state machines and rules that take the time as an argument and never do I/O.

The call pipeline (:mod:`tether.client._flow`) combines them; the async and sync shells carry out what
they decide.
"""

from tether.policies._decisions import GiveUp, GiveUpReason, Wait
from tether.policies.backoff import Backoff
from tether.policies.breaker import CLOSED_ADMISSION, Admitted, CircuitBreaker, CircuitSnapshot, CircuitState, Refused
from tether.policies.budget import BudgetSnapshot, RetryBudget, RetryBudgetState
from tether.policies.bulkhead import Bulkhead, BulkheadSnapshot, Compartment, Ticket
from tether.policies.deadline import Deadline
from tether.policies.idempotency import IDEMPOTENT_METHODS, Idempotency
from tether.policies.limiter import Limiter, RateLimit
from tether.policies.policy import Policy
from tether.policies.retry import DEFAULT_RETRY_STATUSES, decide, is_retryable, requested_delay

__all__ = [
    "CLOSED_ADMISSION",
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "Admitted",
    "Backoff",
    "BudgetSnapshot",
    "Bulkhead",
    "BulkheadSnapshot",
    "CircuitBreaker",
    "CircuitSnapshot",
    "CircuitState",
    "Compartment",
    "Deadline",
    "GiveUp",
    "GiveUpReason",
    "Idempotency",
    "Limiter",
    "Policy",
    "RateLimit",
    "Refused",
    "RetryBudget",
    "RetryBudgetState",
    "Ticket",
    "Wait",
    "decide",
    "is_retryable",
    "requested_delay",
]
