"""No token is readable at rest or in a log: raw SQLite file bytes, PostgreSQL row text, every log record.

Also pins down that an inbox database created before the vault existed (schema version 1) keeps opening, and
gains the ``connections`` table.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from tests.auth.conftest import OpenVault
from tether.auth import TokenSet, Vault, generate_key_setting, parse_keyring
from tether.errors import UnknownKeyId
from tether.store._migrations import MIGRATIONS

ACCESS = "ya29.KNOWN-ACCESS-TOKEN-7f3a9c"
REFRESH = "1//KNOWN-REFRESH-TOKEN-d41d8c"
ROTATED = "1//KNOWN-ROTATED-REFRESH-e3b0c4"


def _exercise(vault: Vault, stranger: Vault) -> None:
    """Save, read, refresh, rotate, and fail to decrypt (errors logged with tracebacks): every path with a token.

    ``stranger`` is a vault on the same database with only an unrelated key.
    """
    vault.save("user-1", "google", TokenSet(access_token=ACCESS, refresh_token=REFRESH, scopes=("email",)))
    vault.get("user-1", "google")
    lease = vault.try_begin_refresh("user-1", "google")
    assert lease is not None
    logging.getLogger("app").info("leased %r", lease)
    vault.store_refreshed(lease, TokenSet(access_token=ACCESS + "-2", refresh_token=ROTATED))
    vault.save("user-2", "google", TokenSet(access_token=ACCESS + "-u2", refresh_token=REFRESH + "-u2"))
    vault.rotate_keys(batch_size=1)
    logging.getLogger("app").info("stored %r", vault.get("user-1", "google"))
    try:
        stranger.get("user-1", "google")
    except UnknownKeyId:
        logging.getLogger("app").exception("cannot read the connection")
    else:  # pragma: no cover - the assertion is the failure
        pytest.fail("a vault without the key read the token")


def _secrets(*settings: str) -> list[bytes]:
    keys = [setting.split(":", 1)[1] for combined in settings for setting in combined.split(",")]
    tokens = [ACCESS, REFRESH, ROTATED, ACCESS + "-2", ACCESS + "-u2", REFRESH + "-u2"]
    return [value.encode() for value in tokens + keys]


def test_no_token_or_key_in_the_sqlite_file_or_the_logs(
    tmp_path: Path, key_a: str, key_b: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Known token strings are written, refreshed and rotated; the database file, its WAL and the logs lack them."""
    path = tmp_path / "tether.db"
    with caplog.at_level(logging.DEBUG):
        with Vault(path, keyring=parse_keyring(key_a)) as first:
            first.save("user-0", "google", TokenSet(access_token=ACCESS + "-0"))
        with (
            Vault(path, keyring=parse_keyring(f"{key_b},{key_a}")) as vault,
            Vault(path, keyring=parse_keyring(generate_key_setting("z"))) as stranger,
        ):
            _exercise(vault, stranger)
            wal = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tether.db"))
            assert b"v1:b:" in wal  # the scan reads the real rows
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tether.db"))
    assert b"connections" in data
    assert "cannot read the connection" in caplog.text
    for secret in [*_secrets(key_a, key_b), (ACCESS + "-0").encode()]:
        assert secret not in wal
        assert secret not in data
        assert secret.decode() not in caplog.text


@pytest.mark.integration
def test_no_token_in_the_postgres_table_text(
    postgres_schema: tuple[str, str], key_a: str, key_b: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same on PostgreSQL: every row's full text representation lacks every token and key."""
    import psycopg

    url, _ = postgres_schema
    with (
        caplog.at_level(logging.DEBUG),
        Vault(url, keyring=parse_keyring(f"{key_b},{key_a}")) as vault,
        Vault(url, keyring=parse_keyring(generate_key_setting("z"))) as stranger,
    ):
        _exercise(vault, stranger)
    with psycopg.connect(url, autocommit=True) as db:
        rows = [row[0] for row in db.execute("SELECT c::text FROM connections AS c").fetchall()]
    assert len(rows) == 2
    text = "\n".join(rows)
    assert "v1:b:" in text
    assert "cannot read the connection" in caplog.text
    for secret in _secrets(key_a, key_b):
        assert secret.decode() not in text
        assert secret.decode() not in caplog.text


def test_an_inbox_database_from_before_the_vault_keeps_opening(tmp_path: Path, key_a: str) -> None:
    """A file at schema version 1 (inbox only, with an event) opens as a vault and as an inbox, gaining steps 2-3."""
    from tether.webhooks import Inbox

    path = tmp_path / "tether.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE tether_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION "
        "NOT NULL)"
    )
    version, name, statements = MIGRATIONS[0]
    for statement in statements:
        db.execute(statement)
    db.execute("INSERT INTO tether_migrations VALUES (?, ?, 0)", (version, name))
    db.execute(
        "INSERT INTO webhook_events (source, provider_event_id, headers, body, received_at, status, next_attempt_at) "
        "VALUES ('stripe', 'evt_1', '[]', x'7b7d', 1, 'processed', 1)"
    )
    db.close()
    with Vault(path, keyring=parse_keyring(key_a)) as vault:
        vault.save("user-1", "github", TokenSet(access_token="t"))
    with Inbox(path) as inbox:
        assert [event.provider_event_id for event in inbox.events()] == ["evt_1"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM tether_migrations ORDER BY version").fetchall() == [(1,), (2,), (3,)]
    db.close()


def test_opening_many_vaults_on_one_store_is_fine(open_vault: OpenVault, key_a: str) -> None:
    """Reopening re-applies nothing (the migration is recorded once) on either database."""
    for _ in range(3):
        open_vault(key_a).list()
