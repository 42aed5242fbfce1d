"""``Cache``: the HTTP cache a client's GET and HEAD calls use, as one immutable setting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tether.cache._memory import MemoryStorage
from tether.cache._rules import Rules
from tether.cache._storage import CacheStorage
from tether.errors import ConfigurationError

__all__ = ["Cache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cache:
    """An RFC 9111 private HTTP cache for a client: ``AsyncClient(..., cache=tether.Cache())``.

    - ``storage``: where entries live: :class:`~tether.cache.MemoryStorage` (the default: 1,024 entries, 64 MiB,
      least recently used out) or :class:`~tether.cache.SQLiteStorage` (a file, shared by processes, kept across
      restarts), or your own :class:`~tether.cache.CacheStorage`. Several clients may share one storage:
      entries are keyed by credential, so they never see each other's private responses.
    - ``heuristic_fraction`` and ``heuristic_max``: the lifetime of a response without ``max-age`` or
      ``Expires`` but with ``Last-Modified`` is this fraction of its age at the time, at most ``heuristic_max``
      seconds (RFC 9111 §4.2.2; ``heuristic_fraction=0`` turns heuristic freshness off).
    - ``stale_while_revalidate``, ``stale_if_error``: seconds of staleness the client accepts on top of what the
      server's own ``stale-while-revalidate``/``stale-if-error`` directives allow (0, the default: only what
      the server allows). ``must-revalidate`` and ``no-cache`` responses are never served stale.
    """

    storage: CacheStorage = field(default_factory=MemoryStorage, kw_only=False)
    heuristic_fraction: float = 0.1
    heuristic_max: float = 86_400.0
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    rules: Rules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.storage, CacheStorage):
            raise ConfigurationError(f"Cache storage must implement tether.cache.CacheStorage, got {self.storage!r}")
        if not (isinstance(self.heuristic_fraction, int | float) and 0 <= self.heuristic_fraction <= 1):
            raise ConfigurationError(
                f"Cache.heuristic_fraction must be between 0 and 1, got {self.heuristic_fraction!r}"
            )
        for name in ("heuristic_max", "stale_while_revalidate", "stale_if_error"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ConfigurationError(f"Cache.{name} must be a finite number of seconds >= 0, got {value!r}")
        rules = Rules(
            heuristic_fraction=float(self.heuristic_fraction),
            heuristic_max=float(self.heuristic_max),
            stale_while_revalidate=float(self.stale_while_revalidate),
            stale_if_error=float(self.stale_if_error),
        )
        object.__setattr__(self, "rules", rules)
