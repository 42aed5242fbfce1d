"""Inbox locations for the store-parametrised tests: a SQLite file, or a fresh PostgreSQL schema dropped afterwards.

PostgreSQL comes from ``TETHER_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``); when it
cannot be reached the ``postgres`` cases skip and say so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tether.webhooks import Inbox

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

OpenInbox = Callable[..., Inbox]


def _admin() -> Any:
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is unreachable at {POSTGRES_URL}: {exc}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a schema made for this test alone, dropped (with its tables) afterwards."""
    schema = f"tether_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where an inbox stores: each parametrised test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "inbox.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_inbox(store_location: str | Path) -> Iterator[OpenInbox]:
    """Open inboxes on this test's store (several share it, like several workers); all closed afterwards."""
    opened: list[Inbox] = []

    def open_(**options: Any) -> Inbox:
        inbox = Inbox(store_location, **options)
        opened.append(inbox)
        return inbox

    yield open_
    for inbox in opened:
        inbox.close()
