"""``SQLiteStorage``: a cache storage in a SQLite file (stdlib ``sqlite3``), shared by processes, kept across restarts.

One table, ``tether_http_cache_v1`` (the version is in the name, so a future layout gets a table of its own and
never misreads this one), in WAL mode with ``synchronous=NORMAL``: readers never wait for a writer, several
processes may share the file, and a commit does not wait for the disk (the cache may lose its last writes in a
power cut, never its consistency). Bodies are BLOBs, header lists JSON text. A new file is created readable by
its owner only: it holds response bodies.

Bounded by entries and bytes (defaults: 10,000 entries, 256 MiB); storing past a bound evicts the entries
stored (or last refreshed) longest ago. Keys are digests and URLs are redacted (:mod:`tether.cache._keys`).

A cache must never fail a call: a row that cannot be decoded (written by hand, damaged on disk) is deleted and
reads as a miss, and an SQLite error during a call (a locked or damaged database, a full disk) is logged at
WARNING and reads as a miss or skips the write. Only opening a file that is not an SQLite database raises,
``ConfigurationError``, at construction.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether._models import Headers
from tether.cache._storage import ENTRY_OVERHEAD, CacheEntry
from tether.errors import ConfigurationError

__all__ = ["SQLiteStorage"]

logger = logging.getLogger("tether.cache")

_TABLE = "tether_http_cache_v1"
_COLUMNS = (
    "key, vary_key, url_key, url, method, vary, status_code, reason, headers, content, request_time, response_time"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    key TEXT NOT NULL,
    vary_key TEXT NOT NULL,
    url_key TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    vary TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    reason TEXT NOT NULL,
    headers TEXT NOT NULL,
    content BLOB NOT NULL,
    request_time REAL NOT NULL,
    response_time REAL NOT NULL,
    size INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, vary_key)
);
CREATE INDEX IF NOT EXISTS {_TABLE}_url ON {_TABLE} (url_key);
CREATE INDEX IF NOT EXISTS {_TABLE}_seq ON {_TABLE} (seq);
"""


def _decode(row: tuple[Any, ...]) -> CacheEntry | None:
    """A row as an entry; ``None`` if any column is not what this module writes."""
    key, vary_key, url_key, url, method, vary, status, reason, headers, content, request_time, response_time = row
    try:
        names = json.loads(vary)
        pairs = json.loads(headers)
    except (TypeError, ValueError, RecursionError):
        return None
    texts = (key, vary_key, url_key, url, method, reason)
    if (
        not all(isinstance(text, str) for text in texts)
        or not isinstance(names, list)
        or not all(isinstance(name, str) for name in names)
        or not isinstance(pairs, list)
        or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in pairs
        )
        or not isinstance(status, int)
        or not 200 <= status < 400
        or not isinstance(content, bytes)
        or not all(isinstance(t, float | int) and math.isfinite(t) for t in (request_time, response_time))
        or method not in ("GET", "HEAD")
    ):
        return None
    return CacheEntry(
        key=key,
        vary_key=vary_key,
        url_key=url_key,
        url=url,
        method=method,
        vary=tuple(names),
        status_code=status,
        reason=reason,
        headers=Headers([(name, value) for name, value in pairs]),
        content=content,
        request_time=float(request_time),
        response_time=float(response_time),
    )


class SQLiteStorage:
    """Cache storage in the SQLite database at ``path`` (created if missing; ``":memory:"`` for a private one).

    At most ``max_entries`` entries and ``max_bytes`` bytes; the entries stored longest ago go first. Close it
    with :meth:`close` (or use it as a context manager) when no client uses it any more.
    """

    blocking = True

    def __init__(
        self, path: str | os.PathLike[str], *, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"SQLiteStorage max_entries must be >= 1, got {max_entries!r}")
        if max_bytes < 1:
            raise ConfigurationError(f"SQLiteStorage max_bytes must be >= 1, got {max_bytes!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:" and not Path(self.path).exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only before SQLite opens it
            self._db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(f"cannot open the cache database {self.path!r}: {error}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            self._db.close()
            raise ConfigurationError(
                f"{self.path!r} cannot hold tether's cache (is it an SQLite database?): {error}"
            ) from None

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; an SQLite error is logged and swallowed (the cache is best-effort)."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as error:
                logger.warning("tether cache: %s failed in %s: %s", doing, self.path, error)

    def get(self, key: str) -> list[CacheEntry]:
        """Every variant stored under ``key``; undecodable rows are deleted and left out."""
        found: list[CacheEntry] = []
        with self._guard("reading") as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE key = ?", (key,)).fetchall()  # noqa: S608
            for row in rows:
                entry = _decode(row)
                if entry is None:
                    logger.warning("tether cache: deleting an unreadable entry from %s", self.path)
                    db.execute(f"DELETE FROM {_TABLE} WHERE key = ? AND vary_key = ?", (row[0], row[1]))  # noqa: S608
                else:
                    found.append(entry)
        return found

    def put(self, entry: CacheEntry) -> None:
        """Store ``entry`` (replacing its variant), then evict the oldest entries past the bounds.

        An entry larger than ``max_bytes`` is not stored, and the variant it was to replace is deleted all the same:
        it is outdated.
        """
        size = entry.size
        if size > self.max_bytes:
            self.delete(entry.key, entry.vary_key)
            return
        row = (
            entry.key,
            entry.vary_key,
            entry.url_key,
            entry.url,
            entry.method,
            json.dumps(list(entry.vary)),
            entry.status_code,
            entry.reason,
            json.dumps([[name, value] for name, value in entry.headers.items()], ensure_ascii=False),
            entry.content,
            entry.request_time,
            entry.response_time,
            size,
        )
        with self._guard("storing") as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    f"INSERT OR REPLACE INTO {_TABLE} ({_COLUMNS}, size, seq) "  # noqa: S608
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM {_TABLE}))",
                    row,
                )
                self._evict(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _evict(self, db: sqlite3.Connection) -> None:
        count, total = db.execute(f"SELECT count(*), total(size) FROM {_TABLE}").fetchone()  # noqa: S608
        extra_entries, extra_bytes = count - self.max_entries, total - self.max_bytes
        if extra_entries <= 0 and extra_bytes <= 0:
            return
        doomed: list[tuple[str, str]] = []
        for key, vary_key, size in db.execute(f"SELECT key, vary_key, size FROM {_TABLE} ORDER BY seq"):  # noqa: S608
            if extra_entries <= 0 and extra_bytes <= 0:
                break
            doomed.append((key, vary_key))
            extra_entries -= 1
            extra_bytes -= size if isinstance(size, int) and size > 0 else ENTRY_OVERHEAD
        db.executemany(f"DELETE FROM {_TABLE} WHERE key = ? AND vary_key = ?", doomed)  # noqa: S608

    def delete(self, key: str, vary_key: str) -> None:
        """Remove one entry, if present."""
        with self._guard("deleting") as db:
            db.execute(f"DELETE FROM {_TABLE} WHERE key = ? AND vary_key = ?", (key, vary_key))  # noqa: S608

    def invalidate(self, url_key: str) -> None:
        """Remove every entry for the URL ``url_key``."""
        with self._guard("invalidating") as db:
            db.execute(f"DELETE FROM {_TABLE} WHERE url_key = ?", (url_key,))  # noqa: S608

    def __len__(self) -> int:
        with self._guard("counting") as db:
            return int(db.execute(f"SELECT count(*) FROM {_TABLE}").fetchone()[0])  # noqa: S608
        return 0

    def clear(self) -> None:
        """Remove every entry."""
        with self._guard("clearing") as db:
            db.execute(f"DELETE FROM {_TABLE}")  # noqa: S608

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r}, max_entries={self.max_entries}, max_bytes={self.max_bytes})"
