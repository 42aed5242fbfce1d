"""``MemoryStorage``: the default cache storage, in the process's memory, bounded and least-recently-used.

Bounded both by entries and by bytes (body plus headers, :attr:`CacheEntry.size`); storing past either bound
evicts the least recently used entries first, and an entry larger than the byte bound is not stored at all.
Reading an entry marks it used. Safe for several threads (one lock, held for dictionary operations only).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tether.cache._storage import CacheEntry
from tether.errors import ConfigurationError

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """In-memory cache storage: at most ``max_entries`` entries and ``max_bytes`` bytes, least recently used out.

    Defaults: 1,024 entries, 64 MiB. ``len(storage)`` and :attr:`bytes` tell what it holds.
    """

    blocking = False

    __slots__ = ("_by_key", "_by_url", "_bytes", "_entries", "_lock", "max_bytes", "max_entries")

    def __init__(self, *, max_entries: int = 1024, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"MemoryStorage max_entries must be >= 1, got {max_entries!r}")
        if max_bytes < 1:
            raise ConfigurationError(f"MemoryStorage max_bytes must be >= 1, got {max_bytes!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()
        self._by_key: dict[str, set[str]] = {}
        self._by_url: dict[str, set[tuple[str, str]]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes held, as :attr:`CacheEntry.size` counts them."""
        return self._bytes

    def get(self, key: str) -> list[CacheEntry]:
        """Every variant stored under ``key``; each is marked recently used."""
        with self._lock:
            variants = self._by_key.get(key)
            if not variants:
                return []
            found = []
            for vary_key in variants:
                slot = (key, vary_key)
                self._entries.move_to_end(slot)
                found.append(self._entries[slot])
            return found

    def put(self, entry: CacheEntry) -> None:
        """Store ``entry`` (replacing its variant), then evict least recently used entries past the bounds."""
        size = entry.size
        with self._lock:
            self._remove((entry.key, entry.vary_key))
            if size > self.max_bytes:
                return
            slot = (entry.key, entry.vary_key)
            self._entries[slot] = entry
            self._by_key.setdefault(entry.key, set()).add(entry.vary_key)
            self._by_url.setdefault(entry.url_key, set()).add(slot)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._entries)))

    def delete(self, key: str, vary_key: str) -> None:
        """Remove one entry, if present."""
        with self._lock:
            self._remove((key, vary_key))

    def invalidate(self, url_key: str) -> None:
        """Remove every entry for the URL ``url_key``."""
        with self._lock:
            for slot in list(self._by_url.get(url_key, ())):
                self._remove(slot)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._entries.clear()
            self._by_key.clear()
            self._by_url.clear()
            self._bytes = 0

    def close(self) -> None:
        """Drop every entry (nothing else to release)."""
        self.clear()

    def _remove(self, slot: tuple[str, str]) -> None:
        entry = self._entries.pop(slot, None)
        if entry is None:
            return
        self._bytes -= entry.size
        variants = self._by_key.get(entry.key)
        if variants is not None:
            variants.discard(entry.vary_key)
            if not variants:
                del self._by_key[entry.key]
        slots = self._by_url.get(entry.url_key)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._by_url[entry.url_key]

    def __repr__(self) -> str:
        return f"MemoryStorage(entries={len(self._entries)}/{self.max_entries}, bytes={self._bytes}/{self.max_bytes})"
