"""The logging hook: call events to the stdlib logger ``tether``.

Attempts, retries, suppressed retries and completions at DEBUG; a circuit opening at WARNING, and its
recovery at INFO; a call that gave up at WARNING, once: a call
whose retry the budget suppressed ends in ``RetryBudgetExhausted``, whose warning says so, so an outage logs one
line per failed call rather than two. Only redacted data reaches a record: events carry redacted URLs, and
error messages are redacted at construction (:mod:`tether.errors`).
"""

from __future__ import annotations

import logging

from tether.events import (
    AttemptStarted,
    CallCompleted,
    CircuitChanged,
    Event,
    GaveUp,
    RetryScheduled,
    RetrySuppressed,
)

__all__ = ["logger", "logging_hook"]

logger = logging.getLogger("tether")


def logging_hook(event: Event) -> None:
    """Log ``event`` to the ``tether`` logger at its level."""
    if isinstance(event, GaveUp):
        logger.warning(
            "%s %s failed after %d attempt(s) in %.3f s: %s",
            event.method,
            event.url,
            event.attempt,
            event.elapsed,
            event.error,
        )
    elif isinstance(event, CircuitChanged):
        level = logging.WARNING if event.phase == "open" else logging.INFO
        logger.log(
            level, "circuit %s is now %s (after %s %s)", event.key or "(client)", event.phase, event.method, event.url
        )
    elif not logger.isEnabledFor(logging.DEBUG):
        return
    elif isinstance(event, RetrySuppressed):
        logger.debug(
            "%s %s: retry after attempt %d suppressed by the retry budget (%s)",
            event.method,
            event.url,
            event.attempt,
            event.reason,
        )
    elif isinstance(event, AttemptStarted):
        logger.debug("%s %s: attempt %d (timeout %s s)", event.method, event.url, event.attempt, event.timeout)
    elif isinstance(event, RetryScheduled):
        logger.debug(
            "%s %s: attempt %d failed (%s); retrying in %.3f s%s",
            event.method,
            event.url,
            event.attempt,
            event.reason,
            event.delay,
            " as the server asked" if event.server_asked else "",
        )
    elif isinstance(event, CallCompleted):
        logger.debug(
            "%s %s: %d after %d attempt(s) in %.3f s",
            event.method,
            event.url,
            event.status,
            event.attempt,
            event.elapsed,
        )
