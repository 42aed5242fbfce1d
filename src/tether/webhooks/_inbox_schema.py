"""The inbox's schema: the ``webhook_events`` table is step 1 of tether's shared migrations.

The DDL itself lives in :mod:`tether.store._migrations`, with every other component's tables, because all of them
share one database file and one ``tether_migrations`` version (that module says why). This module keeps the
inbox's names for it and opens the inbox's SQLite database through :func:`tether.store._sqlite.open_sqlite`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether.store._migrations import MIGRATIONS, SCHEMA_VERSION
from tether.store._sqlite import open_sqlite as _open_sqlite

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "open_sqlite"]


def open_sqlite(path_or_url: str | Path, *, busy_timeout: float, now: float) -> sqlite3.Connection:
    """Open (creating if needed) the inbox's database in WAL mode with full fsync, migrated to the latest schema."""
    return _open_sqlite(path_or_url, busy_timeout=busy_timeout, now=now, what="webhook inbox")
