"""The handler registry: which functions run for an event of a given source and type, and its ordering key."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from tether.errors import ConfigurationError
from tether.webhooks._inbox_event import InboxEvent

__all__ = ["Handler", "HandlerRegistry", "OrderBy"]

logger = logging.getLogger("tether.webhooks")

Handler: TypeAlias = Callable[[InboxEvent], Awaitable[None] | None]
OrderBy: TypeAlias = Callable[[InboxEvent], Any]


@dataclass(frozen=True, slots=True)
class _Registration:
    handler: Handler
    order_by: OrderBy | None


class HandlerRegistry:
    """Handlers per ``(source, event type)``; the type ``"*"`` matches every event of the source."""

    __slots__ = ("_by_key", "_ordered")

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], list[_Registration]] = {}
        self._ordered = False

    def add(self, source: str, event_type: str, handler: Handler, order_by: OrderBy | None) -> None:
        """Register ``handler`` for ``source`` events of ``event_type`` (or ``"*"``)."""
        if not source or not event_type:
            raise ConfigurationError("A webhook handler needs a non-empty source and event type (or '*')")
        self._by_key.setdefault((source, event_type), []).append(_Registration(handler, order_by))
        self._ordered = self._ordered or order_by is not None

    def wants(self, source: str, event_type: str | None) -> bool:
        """Whether any handler runs for an event of ``source`` and ``event_type``."""
        return (source, "*") in self._by_key or (event_type is not None and (source, event_type) in self._by_key)

    @property
    def ordered(self) -> bool:
        """Whether any handler was registered with an ``order_by`` (else no event has an ordering key)."""
        return self._ordered

    def _matching(self, source: str, event_type: str | None) -> list[_Registration]:
        exact = self._by_key.get((source, event_type), []) if event_type is not None else []
        return [*exact, *self._by_key.get((source, "*"), [])]

    def handlers(self, source: str, event_type: str | None) -> list[Handler]:
        """The handlers to run for an event, exact-type handlers first, in registration order."""
        return [registration.handler for registration in self._matching(source, event_type)]

    def order_key(self, event: InboxEvent) -> str | None:
        """The event's ordering key from the first matching ``order_by`` that gives one, else ``None``.

        An ``order_by`` that raises (a payload without the field, a body that is not JSON) gives no key: the
        event is then not ordered, rather than refused.
        """
        for registration in self._matching(event.source, event.type):
            if registration.order_by is None:
                continue
            try:
                key = registration.order_by(event)
            except Exception:  # a hostile payload must not fail the delivery
                logger.warning("order_by for %s event %s raised; the event is not ordered", event.source, event.id)
                continue
            if key is not None:
                return str(key)
        return None
