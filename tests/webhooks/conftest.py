"""Inbox locations for the store-parametrised tests: a SQLite file, or a fresh PostgreSQL schema dropped afterwards.

PostgreSQL comes from ``TETHER_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``); when it
cannot be reached the ``postgres`` cases skip and say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._postgres import throwaway_schema
from tether.webhooks import Inbox

OpenInbox = Callable[..., Inbox]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a schema made for this test alone, dropped (with its tables) afterwards."""
    with throwaway_schema() as (url, _):
        yield url


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
