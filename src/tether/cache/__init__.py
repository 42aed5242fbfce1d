"""HTTP caching (RFC 9111, private cache) and single-flight request coalescing for tether's clients.

::

    api = tether.AsyncClient("https://api.github.com", auth=tether.Bearer(token), cache=tether.Cache())
    r = await api.get("/repos/python/cpython")   # MISS: fetched and stored
    r = await api.get("/repos/python/cpython")   # HIT: no request sent (within max-age)
    r.headers["X-Tether-Cache"]                   # "HIT" | "STALE" | "REVALIDATED" | "MISS" | "COALESCED"

The pieces, one per module: ``_fields`` (reading ``Cache-Control``, ``Age``, dates, ``Vary``), ``_rules`` (the
RFC's decisions, pure, time passed in), ``_keys`` (cache and single-flight keys, credentials hashed),
``_storage`` (:class:`CacheEntry` and the :class:`CacheStorage` interface), ``_memory`` and ``_sqlite``
(storages), ``_flow`` (the cached call as sans-IO generators), ``_coalesce`` (single-flight), ``_shell`` (the
async and sync drivers a client uses) and ``_config`` (:class:`Cache`).

Why not hishel: DESIGN.md planned to take the RFC 9111 rules from hishel (2.0.0, the current release, checked
here) "where it fits". Its sans-IO state machine (``hishel.IdleClient`` → ``CacheMiss`` / ``NeedRevalidation``
/ ``FromCache`` ...) does not fit tether's pipeline, for these concrete reasons:

1. It reads the wall clock itself: ``get_age()``, ``get_heuristic_freshness()``, the ``Expires`` fallback in
   ``get_freshness_lifetime()`` and ``IdleClient.next()``'s ordering call ``time.time()``; there is no way to pass
   tether's injected ``Clock``, so a ``FakeClock`` cannot age an entry (DESIGN.md: "Time is injected"; STYLE.md
   1 names freshness code that reads the wall clock as the counter-example).
2. Its age is ``now - Date`` only (``get_age``): no ``Age`` header, no request/response times, no resident
   time (RFC 9111 §4.2.3). ``Entry`` has nowhere to keep those times (``id``, ``request``, ``response``). A
   response without ``Date`` has age 0 forever: checked, ``Cache-Control: max-age=1`` and no ``Date`` is still
   ``FromCache`` after 1.5 s.
3. No stale-while-revalidate or stale-if-error decisions: ``CacheOptions(allow_stale=True)`` serves any stale
   entry without bound (checked: ``max-age=1, stale-while-revalidate=1`` dated 2001 is ``FromCache``), and a
   5xx to a revalidation is forwarded (``NeedRevalidation.next`` → ``CouldNotBeStored``), never answered from
   the stored response. Both are part of this issue.
4. ``Vary`` matching (``vary_headers_match``) compares the new request's header values with the *stored
   request's* plaintext values, so ``Vary: Authorization`` or ``Vary: Cookie`` would keep credentials in the
   storage, against tether's rule that keys hold only digests of credentials.
5. Its own mutable ``Request``/``Response``/``Headers`` dataclasses (lower-cased names, values joined with
   ``", "`` on ``[]``, a body stream) would be converted to and from tether's on every cached call.

So tether implements the rules itself here (about 250 lines, each decision citing its section) and keeps
hishel's good ideas: the RFC's reuse conditions as explicit states, and validation by entity tag first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.cache._config import Cache
from tether.cache._flow import CACHE_STATUS_HEADER, CacheStatus
from tether.cache._memory import MemoryStorage
from tether.cache._storage import CacheEntry, CacheStorage

if TYPE_CHECKING:
    from tether.cache._sqlite import SQLiteStorage

__all__ = [
    "CACHE_STATUS_HEADER",
    "Cache",
    "CacheEntry",
    "CacheStatus",
    "CacheStorage",
    "MemoryStorage",
    "SQLiteStorage",
]


def __getattr__(name: str) -> Any:
    # sqlite3 takes ~10 ms to import, which a client without an SQLite cache should not pay
    if name == "SQLiteStorage":
        from tether.cache._sqlite import SQLiteStorage

        globals()[name] = SQLiteStorage
        return SQLiteStorage
    raise AttributeError(f"module 'tether.cache' has no attribute {name!r}")
