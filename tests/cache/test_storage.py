"""The storages: one suite for every backend (memory, SQLite), then what each does on its own.

SQLite's own: it survives a restart, shares one file between instances, deletes a damaged row and reads it as a
miss, refuses a file that is not a database at construction, keeps its file owner-only, and never raises during a
call once its database fails.
"""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether._models import Headers
from tether.cache import CacheEntry, CacheStorage, MemoryStorage, SQLiteStorage
from tether.errors import ConfigurationError

BOUNDED = {"max_entries": 3, "max_bytes": 10_000}


def entry(key: str, vary_key: str = "", *, url_key: str = "u", body: bytes = b"{}", at: float = 1.0) -> CacheEntry:
    return CacheEntry(
        key=key,
        vary_key=vary_key,
        url_key=url_key,
        url="https://api.example/x",
        method="GET",
        vary=("accept",) if vary_key else (),
        status_code=200,
        reason="OK",
        headers=Headers([("Content-Type", "application/json"), ("Cache-Control", "max-age=60"), ("X-Ü", "é")]),
        content=body,
        request_time=at,
        response_time=at + 0.5,
    )


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheStorage]:
    made: CacheStorage = (
        MemoryStorage(**BOUNDED) if request.param == "memory" else SQLiteStorage(tmp_path / "cache.db", **BOUNDED)
    )
    yield made
    made.close()


def test_round_trip(storage: CacheStorage) -> None:
    stored = entry("a", body=b"\x00\xffbinary")
    storage.put(stored)
    (found,) = storage.get("a")
    assert found.content == b"\x00\xffbinary"
    assert list(found.headers.items()) == list(stored.headers.items())
    assert (found.key, found.vary_key, found.url_key, found.url, found.method, found.vary) == (
        "a",
        "",
        "u",
        "https://api.example/x",
        "GET",
        (),
    )
    assert (found.status_code, found.reason, found.request_time, found.response_time) == (200, "OK", 1.0, 1.5)
    assert storage.get("missing") == []


def test_variants_replace_delete_and_invalidate(storage: CacheStorage) -> None:
    storage.put(entry("a", "v1"))
    storage.put(entry("a", "v2"))
    storage.put(entry("a", "v2", body=b"newer"))
    assert sorted((e.vary_key, e.content) for e in storage.get("a")) == [("v1", b"{}"), ("v2", b"newer")]
    storage.delete("a", "v1")
    assert [e.vary_key for e in storage.get("a")] == ["v2"]
    storage.put(entry("b", url_key="other"))
    storage.invalidate("u")
    assert storage.get("a") == []
    assert len(storage.get("b")) == 1
    storage.delete("nothing", "")
    storage.invalidate("nothing")


def test_bounded_by_entries(storage: CacheStorage) -> None:
    for key in "abcd":
        storage.put(entry(key))
    assert storage.get("a") == []  # the oldest went first
    assert all(storage.get(key) for key in "bcd")


def test_bounded_by_bytes(storage: CacheStorage) -> None:
    storage.put(entry("a", body=b"x" * 4000))
    storage.put(entry("b", body=b"x" * 4000))
    storage.put(entry("c", body=b"x" * 4000))  # 12,000+ bytes: over 10,000
    assert storage.get("a") == []
    assert storage.get("b")
    assert storage.get("c")
    storage.put(entry("huge", body=b"x" * 20_000))  # larger than the bound: never stored, evicts nothing
    assert storage.get("huge") == []
    assert storage.get("c")


def test_threads_share_a_storage(storage: CacheStorage) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                storage.put(entry(f"{n}-{i % 5}"))
                storage.get(f"{n}-{i % 5}")
                storage.invalidate("nothing")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_memory_storage_is_least_recently_used() -> None:
    storage = MemoryStorage(max_entries=2)
    storage.put(entry("a"))
    storage.put(entry("b"))
    assert storage.get("a")  # a is now the most recently used
    storage.put(entry("c"))
    assert storage.get("b") == []
    assert storage.get("a")
    assert len(storage) == 2
    assert storage.bytes == sum(e.size for key in "ac" for e in storage.get(key))


def test_bounds_must_be_positive(tmp_path: Path) -> None:
    for bad in ({"max_entries": 0}, {"max_bytes": 0}):
        with pytest.raises(ConfigurationError):
            MemoryStorage(**bad)
        with pytest.raises(ConfigurationError):
            SQLiteStorage(tmp_path / "x.db", **bad)


def test_sqlite_survives_a_restart_and_is_shared(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with SQLiteStorage(path) as first:
        first.put(entry("a"))
    with SQLiteStorage(path) as second, SQLiteStorage(path) as third:
        assert second.get("a")[0].content == b"{}"
        third.put(entry("b"))
        assert second.get("b")


def test_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    SQLiteStorage(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("headers", "not json"),
        ("headers", '[["only one"]]'),
        ("headers", '{"a": 1}'),
        ("vary", "[1, 2]"),
        ("status_code", "'abc'"),
        ("status_code", "999"),
        ("content", "'text, not a blob'"),
        ("request_time", "'yesterday'"),
        ("method", "'POST'"),
    ],
)
def test_sqlite_deletes_a_damaged_row_and_reads_a_miss(
    tmp_path: Path, column: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.db"
    with SQLiteStorage(path) as storage:
        storage.put(entry("a"))
        storage.put(entry("a", "v2"))
    raw = sqlite3.connect(path)
    literal = value if column in ("status_code", "content", "request_time", "method") else f"'{value}'"
    raw.execute(f"UPDATE tether_http_cache_v1 SET {column} = {literal} WHERE vary_key = ''")  # noqa: S608
    raw.commit()
    raw.close()
    with SQLiteStorage(path) as storage, caplog.at_level(logging.WARNING, "tether.cache"):
        assert [e.vary_key for e in storage.get("a")] == ["v2"]  # the healthy variant survives
        assert "unreadable entry" in caplog.text
        assert len(storage) == 1  # the damaged row is gone
        storage.put(entry("a"))
        assert len(storage.get("a")) == 2


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(ConfigurationError, match="SQLite"):
        SQLiteStorage(path)
    assert path.read_bytes().startswith(b"these are my notes")  # left untouched


def test_sqlite_failing_mid_call_reads_a_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    storage = SQLiteStorage(tmp_path / "cache.db")
    storage.put(entry("a"))
    storage.close()
    with caplog.at_level(logging.WARNING, "tether.cache"):
        assert storage.get("a") == []
        storage.put(entry("b"))
        storage.delete("a", "")
        storage.invalidate("u")
    assert "failed" in caplog.text


def test_sqlite_in_memory() -> None:
    with SQLiteStorage(":memory:") as storage:
        storage.put(entry("a"))
        assert storage.get("a")


def test_sqlite3_is_imported_only_by_a_sqlite_storage() -> None:
    code = (
        "import sys, tether, tether.cache; tether.Client(cache=tether.cache.Cache()); print('sqlite3' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_entry_too_large_to_store_removes_the_variant_it_replaces(storage: CacheStorage) -> None:
    """A newer response over ``max_bytes`` is not stored, and the outdated variant it was to replace goes all
    the same (else the cache would keep serving it as fresh); other variants stay."""
    storage.put(entry("a", "v1"))
    storage.put(entry("a", "v2"))
    storage.put(entry("a", "v1", body=b"x" * 20_000))
    assert [e.vary_key for e in storage.get("a")] == ["v2"]
