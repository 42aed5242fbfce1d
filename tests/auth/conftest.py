"""Vault locations for the store-parametrised tests: a SQLite file, or a fresh PostgreSQL schema dropped afterwards.

PostgreSQL comes from ``TETHER_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``), as in the
webhook inbox's suite; when it cannot be reached the ``postgres`` cases skip and say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._postgres import throwaway_schema
from tether.auth import Keyring, Vault, generate_key_setting, parse_keyring
from tether.testing import FakeClock

OpenVault = Callable[..., Vault]


@pytest.fixture
def postgres_schema() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a URL whose search_path is a schema made for this test alone, dropped afterwards."""
    with throwaway_schema() as made:
        yield made


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where the vault stores: each parametrised test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "tether.db"
    url, _ = request.getfixturevalue("postgres_schema")
    return str(url)


@pytest.fixture
def key_a() -> str:
    """A ``KID:KEY`` setting with one fresh key, id ``a``."""
    return generate_key_setting("a")


@pytest.fixture
def key_b() -> str:
    """A ``KID:KEY`` setting with one fresh key, id ``b``."""
    return generate_key_setting("b")


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
def open_vault(location: str | Path, clock: FakeClock) -> Iterator[OpenVault]:
    """Open vaults on this test's database (several share it, like several processes); all closed afterwards."""
    opened: list[Vault] = []

    def open_(keys: str | Keyring, **options: Any) -> Vault:
        keyring = parse_keyring(keys) if isinstance(keys, str) else keys
        vault = Vault(location, keyring=keyring, clock=options.pop("clock", clock), **options)
        opened.append(vault)
        return vault

    yield open_
    for vault in opened:
        vault.close()
