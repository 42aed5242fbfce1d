"""Retry: what may be retried, and how long to wait first.

Classification (:func:`is_retryable`):

- a connect error is retryable for every method: the request was never sent;
- a timeout or a broken connection after sending, and a response whose status is in ``statuses``
  (default 408, 425, 429, 500, 502, 503, 504), are retryable when repeating is safe: the method is
  idempotent (RFC 9110 §9.2.2) or the request carries an idempotency key;
- a 429 is retryable for every method, since the server refused the request without processing it.

Delay (:func:`decide`), for the n-th retry: the jittered exponential :class:`Backoff`, but never less than the
delay the server asked for (``Retry-After``, seconds or HTTP-date; ``RateLimit-Reset`` /
``X-RateLimit-Reset``, delta or epoch — see :mod:`tether._retry_after`). A server delay longer than
``max_retry_after`` or than the time left before the deadline gives up at once (``retry_after_too_long``)
instead of sleeping; so does any delay that would reach the deadline (``deadline``).
"""

from __future__ import annotations

from collections.abc import Callable

from tether._retry_after import parse_retry_after, server_delay
from tether.errors import ConnectError, ResponseTooLarge, TransportError
from tether.policies._decisions import GiveUp, Wait
from tether.policies.backoff import Backoff
from tether.policies.idempotency import IDEMPOTENT_METHODS

__all__ = ["DEFAULT_RETRY_STATUSES", "decide", "is_retryable", "requested_delay"]

DEFAULT_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

# Statuses whose rate-limit reset headers mean "come back then" (on others they merely describe the quota).
_RESET_APPLIES = frozenset({429, 503})


def is_retryable(
    *,
    method: str,
    keyed: bool,
    status: int | None = None,
    error: TransportError | None = None,
    statuses: frozenset[int] = DEFAULT_RETRY_STATUSES,
) -> bool:
    """Whether an attempt that ended in ``status`` (or ``error``) may be repeated.

    ``keyed`` says the request carries an idempotency key.
    """
    if error is not None:
        if isinstance(error, ConnectError):
            return True
        if isinstance(error, ResponseTooLarge):  # the same request gets the same body
            return False
        return keyed or method in IDEMPOTENT_METHODS
    if status is None or status not in statuses:
        return False
    if status == 429:
        return True
    return keyed or method in IDEMPOTENT_METHODS


def requested_delay(status: int, get_header: Callable[[str], str | None], wall_now: float) -> float | None:
    """The delay the response asks for, if it asks for one, in seconds."""
    if status in _RESET_APPLIES:
        return server_delay(get_header, wall_now)
    raw = get_header("retry-after")
    return None if raw is None else parse_retry_after(raw, wall_now)


def decide(
    *,
    retry_number: int,
    retries: int,
    backoff: Backoff,
    rand: float,
    remaining: float,
    server_delay: float | None = None,
    max_retry_after: float | None = None,
) -> Wait | GiveUp:
    """Decide the ``retry_number``-th retry (1-based) of a retryable failure.

    ``remaining`` is the time left before the deadline (``inf`` for none), ``rand`` a number in ``[0, 1)``.
    """
    if retry_number > retries:
        return GiveUp("attempts")
    delay = backoff.delay(retry_number, rand)
    if server_delay is not None:
        if server_delay >= remaining or (max_retry_after is not None and server_delay > max_retry_after):
            return GiveUp("retry_after_too_long", retry_after=server_delay)
        if server_delay >= delay:
            return Wait(server_delay, server_asked=True)
    if delay >= remaining:
        return GiveUp("deadline")
    return Wait(delay)
