"""What a cache storage holds (:class:`CacheEntry`) and the small interface every storage implements.

A storage is a dumb, bounded key-value store: the caching rules live in :mod:`tether.cache._rules` and the call
logic in :mod:`tether.cache._flow`, so a new backend (Redis, PostgreSQL) implements five methods and nothing
else. Entries are grouped by their primary ``key`` (method, URL and credential, hashed); several entries under
one key are the variants a ``Vary`` response selects between, told apart by ``vary_key``.

No key holds a secret in plaintext: ``key``, ``vary_key`` and ``url_key`` are SHA-256 digests, and ``url`` is
redacted (:func:`tether._redaction.redact_url`). The stored response itself is kept as received, so a storage on
disk holds response bodies; tether never stores a response that sets a cookie, carries a credential-like header
or echoes one of its request's secrets in a header value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from tether._models import Headers
from tether.cache._fields import EMPTY, CacheControl, parse_cache_control

__all__ = ["ENTRY_OVERHEAD", "CacheEntry", "CacheStorage"]

ENTRY_OVERHEAD = 256
"""Bytes counted per entry on top of its body and headers (keys, times), for storages bounded by size."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class CacheEntry:
    """One stored response and what the cache needs to reuse it.

    - ``key``: the primary cache key (method, URL without secrets, credential fingerprint), a hex digest;
    - ``vary_key``: a digest of the request's values of the headers ``Vary`` names (``""`` without ``Vary``);
    - ``url_key``: a digest of the URL alone, which an unsafe request to it invalidates (RFC 9111 §4.4);
    - ``url``: the redacted URL, for diagnostics only; ``method``: ``GET`` or ``HEAD``;
    - ``vary``: the lower-cased header names the response varies on;
    - ``status_code``, ``reason``, ``headers``, ``content``: the response;
    - ``request_time``, ``response_time``: wall-clock seconds when the request that fetched (or last validated)
      it was sent and its response arrived, for the age calculation of RFC 9111 §4.2.3;
    - ``cache_control``: the response's ``Cache-Control``, parsed once (derived from ``headers``, not stored).
    """

    key: str
    vary_key: str
    url_key: str
    url: str
    method: str
    vary: tuple[str, ...]
    status_code: int
    reason: str
    headers: Headers
    content: bytes
    request_time: float
    response_time: float
    cache_control: CacheControl = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = self.headers.get_list("cache-control")
        object.__setattr__(self, "cache_control", parse_cache_control(values) if values else EMPTY)

    @property
    def size(self) -> int:
        """Approximate bytes held: body, header names and values, and :data:`ENTRY_OVERHEAD`."""
        return len(self.content) + sum(len(name) + len(value) for name, value in self.headers.items()) + ENTRY_OVERHEAD

    def replace(self, **changes: object) -> CacheEntry:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<CacheEntry {self.method} {self.url} [{self.status_code}] {len(self.content)} bytes>"


@runtime_checkable
class CacheStorage(Protocol):
    """Where a :class:`~tether.Cache` keeps its entries.

    Implementations must be safe to call from several threads, never raise for a missing key, and may drop any
    entry at any time (they are bounded). ``blocking`` says whether the methods do I/O (the async client then
    calls them on a worker thread, off the event loop).
    """

    @property
    def blocking(self) -> bool:
        """Whether the methods block on I/O (the async client then calls them on a worker thread)."""
        ...

    def get(self, key: str) -> list[CacheEntry]:
        """Every entry stored under the primary ``key`` (one per ``Vary`` variant), in any order."""
        ...

    def put(self, entry: CacheEntry) -> None:
        """Store ``entry``, replacing the one with the same ``key`` and ``vary_key``."""
        ...

    def delete(self, key: str, vary_key: str) -> None:
        """Remove one entry, if present."""
        ...

    def invalidate(self, url_key: str) -> None:
        """Remove every entry for the URL with this ``url_key``: any method, any credential, any variant."""
        ...

    def close(self) -> None:
        """Release resources (files, connections); the storage is unusable afterwards."""
        ...
