"""The vault's connection store, on a real SQLite file and on the real PostgreSQL: one suite, both databases.

Hostile cases write to the table directly (the way an attacker with database access, or a bad migration, would):
a ciphertext copied to another row or field, a tampered ciphertext, a row under a key no longer configured.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.auth.conftest import OpenVault
from tether.auth import ConnectionStatus, RotationReport, TokenSet, Vault, parse_keyring
from tether.errors import ConnectionNotFound, DecryptionFailed, StaleConnection, UnknownKeyId
from tether.testing import FakeClock

TOKENS = TokenSet(
    access_token="gho_access_AAAA1111", refresh_token="ghr_refresh_RRRR2222", scopes=("repo", "user"), expires_at=2e9
)


@contextmanager
def raw(location: str | Path) -> Iterator[Any]:
    """A plain DB-API connection to the vault's database, committing on exit (``?`` or ``%s`` placeholders)."""
    if isinstance(location, Path):
        db = sqlite3.connect(location, isolation_level=None)
        try:
            yield db
        finally:
            db.close()
    else:
        import psycopg

        with psycopg.connect(location, autocommit=True) as pg:
            yield pg


def sql(location: str | Path, statement: str) -> str:
    """``statement`` with ``?`` placeholders in the location's driver's style."""
    return statement if isinstance(location, Path) else statement.replace("?", "%s")


def test_round_trip_and_the_public_view_has_no_secrets(open_vault: OpenVault, key_a: str, clock: FakeClock) -> None:
    """Save, get (decrypted), info and list (no secrets), with the caller's id and integration as the key."""
    vault = open_vault(key_a)
    info = vault.save("user-1", "github", TOKENS)
    assert (info.id, info.integration, info.status, info.version) == ("user-1", "github", ConnectionStatus.ACTIVE, 1)
    assert info.expires_at == 2e9
    assert info.created_at == info.updated_at == clock.time()
    stored = vault.get("user-1", "github")
    assert stored.tokens == TOKENS
    assert stored.key_id == "a"
    assert stored.info == info
    vault.save("user-2", "github", TokenSet(access_token="only-access"))
    vault.save("user-1", "slack", TOKENS)
    listed = vault.list()
    assert [(c.integration, c.id) for c in listed] == [("github", "user-1"), ("github", "user-2"), ("slack", "user-1")]
    assert [c.id for c in vault.list(integration="github")] == ["user-1", "user-2"]
    assert listed[1].has_refresh_token is False
    assert vault.get("user-2", "github").tokens.refresh_token is None
    shown = repr(listed) + str(vault.info("user-1", "github").to_json())
    assert "gho_access" not in shown
    assert "ghr_refresh" not in shown
    assert set(info.to_json()) >= {"id", "integration", "status", "expires_at"}


def test_missing_connections_delete_and_status_changes(open_vault: OpenVault, key_a: str) -> None:
    """Unknown ids raise ConnectionNotFound (a LookupError); delete says whether it deleted; needs_reauth sticks."""
    vault = open_vault(key_a)
    for call in (vault.get, vault.info, vault.mark_needs_reauth, vault.try_begin_refresh):
        with pytest.raises(ConnectionNotFound, match="'nobody'"):
            call("nobody", "github")
    vault.save("user-1", "github", TOKENS)
    marked = vault.mark_needs_reauth("user-1", "github")
    assert (marked.status, marked.version) == (ConnectionStatus.NEEDS_REAUTH, 2)
    assert [c.id for c in vault.list(status=ConnectionStatus.NEEDS_REAUTH)] == ["user-1"]
    assert vault.list(status=ConnectionStatus.ACTIVE) == []
    with pytest.raises(StaleConnection) as caught:
        vault.set_status("user-1", "github", ConnectionStatus.REVOKED, expected_version=1)
    assert caught.value.current_version == 2
    again = vault.save("user-1", "github", TOKENS)  # re-authorization: active again, a newer version
    assert (again.status, again.version) == (ConnectionStatus.ACTIVE, 3)
    assert vault.delete("user-1", "github") is True
    assert vault.delete("user-1", "github") is False
    assert vault.list() == []


def test_a_ciphertext_copied_to_another_row_or_field_fails_to_decrypt(
    open_vault: OpenVault, key_a: str, location: str | Path
) -> None:
    """Copying user-1's sealed token into user-2's row, or the refresh token into the access column, is caught."""
    vault = open_vault(key_a)
    vault.save("user-1", "github", TOKENS)
    vault.save("user-2", "github", TokenSet(access_token="user2-access", refresh_token="user2-refresh"))
    with raw(location) as db:
        db.execute(
            sql(
                location,
                "UPDATE connections SET access_token = (SELECT access_token FROM connections WHERE id = ?) "
                "WHERE id = ?",
            ),
            ("user-1", "user-2"),
        )
    with pytest.raises(DecryptionFailed, match="access_token of connection 'user-2'") as caught:
        vault.get("user-2", "github")
    assert "gho_access" not in str(caught.value)
    assert vault.get("user-1", "github").tokens == TOKENS  # the source row is untouched

    with raw(location) as db:
        db.execute(sql(location, "UPDATE connections SET access_token = refresh_token WHERE id = ?"), ("user-1",))
    with pytest.raises(DecryptionFailed, match="access_token of connection 'user-1'"):
        vault.get("user-1", "github")


def test_a_tampered_ciphertext_fails_and_the_public_view_still_works(
    open_vault: OpenVault, key_a: str, location: str | Path
) -> None:
    """One changed character in a stored ciphertext: get() raises DecryptionFailed; info() needs no decryption."""
    vault = open_vault(key_a)
    vault.save("user-1", "github", TOKENS)
    with raw(location) as db:
        (sealed,) = db.execute(
            sql(location, "SELECT refresh_token FROM connections WHERE id = ?"), ("user-1",)
        ).fetchone()
        tampered = sealed[:-3] + ("AAA" if not sealed.endswith("AAA") else "BBB")
        db.execute(sql(location, "UPDATE connections SET refresh_token = ? WHERE id = ?"), (tampered, "user-1"))
    with pytest.raises(DecryptionFailed, match="refresh_token"):
        vault.get("user-1", "github")
    assert vault.info("user-1", "github").status is ConnectionStatus.ACTIVE


def test_a_row_under_a_key_no_longer_configured_says_which_key_is_missing(
    open_vault: OpenVault, key_a: str, key_b: str
) -> None:
    """Dropping a key before rotating leaves its rows unreadable, with an error naming the key id."""
    open_vault(key_a).save("user-1", "github", TOKENS)
    with pytest.raises(UnknownKeyId, match="key 'a', which is not configured") as caught:
        open_vault(key_b).get("user-1", "github")
    assert caught.value.key_id == "a"


def test_a_newer_key_first_writes_under_it_and_still_reads_the_older(
    open_vault: OpenVault, key_a: str, key_b: str
) -> None:
    """With `b,a` configured, old rows open with a, new writes are sealed with b."""
    open_vault(key_a).save("old", "github", TOKENS)
    vault = open_vault(f"{key_b},{key_a}")
    assert vault.get("old", "github").key_id == "a"
    vault.save("new", "github", TOKENS)
    assert vault.get("new", "github").key_id == "b"
    assert vault.get("old", "github").tokens == TOKENS


def test_compare_and_swap_two_writers_the_stale_one_loses(open_vault: OpenVault, key_a: str) -> None:
    """Two vaults (as two processes) mark the same version; the second learns it lost and nothing it sent is written."""
    first, second = open_vault(key_a), open_vault(key_a)
    version = first.save("user-1", "github", TOKENS).version
    first.set_status("user-1", "github", ConnectionStatus.NEEDS_REAUTH, expected_version=version)
    with pytest.raises(StaleConnection, match=f"at version {version + 1}, not {version}"):
        second.set_status("user-1", "github", ConnectionStatus.REVOKED, expected_version=version)
    assert second.info("user-1", "github").status is ConnectionStatus.NEEDS_REAUTH


def test_the_refresh_right_is_exclusive_and_store_refreshed_writes_both_tokens(
    open_vault: OpenVault, key_a: str
) -> None:
    """One lease at a time; the holder stores the new access and the rotated refresh token together."""
    first, second = open_vault(key_a), open_vault(key_a)
    first.save("user-1", "github", TOKENS)
    lease = first.try_begin_refresh("user-1", "github")
    assert lease is not None
    assert lease.connection.tokens.refresh_token == "ghr_refresh_RRRR2222"
    assert second.try_begin_refresh("user-1", "github") is None
    assert first.try_begin_refresh("user-1", "github") is None  # not re-entrant either
    refreshed = first.store_refreshed(
        lease, TokenSet(access_token="gho_new_access", refresh_token="ghr_rotated", expires_at=2.5e9)
    )
    assert refreshed.tokens.access_token == "gho_new_access"
    assert refreshed.tokens.refresh_token == "ghr_rotated"
    assert refreshed.tokens.scopes == ("repo", "user")  # not restated by the provider: kept
    assert second.get("user-1", "github").tokens == refreshed.tokens
    assert refreshed.info.version == lease.connection.info.version + 1
    assert second.try_begin_refresh("user-1", "github") is not None  # storing released the right


def test_a_refresh_token_the_provider_did_not_rotate_is_kept(open_vault: OpenVault, key_a: str) -> None:
    """RFC 6749 §6: a refresh response without refresh_token leaves the old one in force."""
    vault = open_vault(key_a)
    vault.save("user-1", "github", TOKENS)
    lease = vault.try_begin_refresh("user-1", "github")
    assert lease is not None
    stored = vault.store_refreshed(lease, TokenSet(access_token="new-access"))
    assert stored.tokens.refresh_token == TOKENS.refresh_token


def test_an_expired_lease_can_be_taken_over_and_its_old_holder_then_loses(
    open_vault: OpenVault, key_a: str, clock: FakeClock
) -> None:
    """A holder that died (or stalled past its lease) no longer blocks; if it comes back, its write is refused."""
    stalled, rescuer = open_vault(key_a), open_vault(key_a)
    stalled.save("user-1", "github", TOKENS)
    old = stalled.try_begin_refresh("user-1", "github", lease=30)
    assert old is not None
    clock.advance(29.5)
    assert rescuer.try_begin_refresh("user-1", "github") is None
    clock.advance(1)
    new = rescuer.try_begin_refresh("user-1", "github", lease=30)
    assert new is not None
    with pytest.raises(StaleConnection, match="changed during the refresh") as caught:
        stalled.store_refreshed(old, TokenSet(access_token="from-stalled", refresh_token="stalled-rt"))
    assert caught.value.current_version == new.connection.info.version
    assert stalled.release_refresh(old) is False
    rescuer.store_refreshed(new, TokenSet(access_token="from-rescuer", refresh_token="rescuer-rt"))
    assert stalled.get("user-1", "github").tokens.refresh_token == "rescuer-rt"


def test_release_and_reauthorization_end_a_lease(open_vault: OpenVault, key_a: str) -> None:
    """release_refresh frees the right at once; a re-connect during a refresh makes that refresh's write lose."""
    vault = open_vault(key_a)
    vault.save("user-1", "github", TOKENS)
    lease = vault.try_begin_refresh("user-1", "github")
    assert lease is not None
    assert vault.release_refresh(lease) is True
    lease = vault.try_begin_refresh("user-1", "github")
    assert lease is not None
    vault.save("user-1", "github", TokenSet(access_token="fresh-grant", refresh_token="fresh-rt"))
    with pytest.raises(StaleConnection):
        vault.store_refreshed(lease, TokenSet(access_token="late", refresh_token="late-rt"))
    assert vault.get("user-1", "github").tokens.access_token == "fresh-grant"
    vault.delete("user-1", "github")
    with pytest.raises(StaleConnection, match="deleted"):
        vault.store_refreshed(lease, TokenSet(access_token="late"))


def test_rotation_interrupted_half_way_then_resumed(open_vault: OpenVault, key_a: str, key_b: str) -> None:
    """A run stopped after its first batch keeps that batch; re-running finishes; every row reads; all under b."""
    old = open_vault(key_a)
    expected = {}
    for number in range(7):
        tokens = TokenSet(access_token=f"access-{number}", refresh_token=f"refresh-{number}" if number % 2 else None)
        old.save(f"user-{number}", "github", tokens)
        expected[f"user-{number}"] = tokens
    vault = open_vault(f"{key_b},{key_a}")
    vault.save("already-new", "github", TokenSet(access_token="access-new"))
    expected["already-new"] = TokenSet(access_token="access-new")
    seen: list[RotationReport] = []

    def stop_after_first_batch(report: RotationReport) -> None:
        seen.append(report)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vault.rotate_keys(batch_size=3, progress=stop_after_first_batch)
    assert (seen[0].rotated, seen[0].remaining, seen[0].by_key) == (3, 4, {"a": 4, "b": 4})
    versions = {c.id: c.version for c in vault.list()}

    report = vault.rotate_keys(batch_size=3)
    assert (report.rotated, report.batches, report.remaining, report.current) == (4, 2, 0, 8)
    assert report.by_key == {"b": 8}
    assert vault.rotate_keys(batch_size=3).rotated == 0  # nothing left: a re-run is a no-op
    only_b = open_vault(key_b)
    for connection_id, tokens in expected.items():
        stored = only_b.get(connection_id, "github")
        assert stored.tokens == tokens
        assert stored.key_id == "b"
    assert {c.id: c.version for c in vault.list()} == versions  # re-encryption is not a change of tokens


def test_rotation_stops_at_an_unreadable_row_and_keeps_the_batches_it_committed(
    open_vault: OpenVault, key_a: str, key_b: str, location: str | Path
) -> None:
    """A row that cannot be opened stops the run with its error; earlier batches stay rotated; fixed, it finishes."""
    old = open_vault(key_a)
    for name in ("a1", "a2", "z9"):
        old.save(name, "github", TokenSet(access_token=f"access-{name}"))
    with raw(location) as db:
        db.execute(sql(location, "UPDATE connections SET access_token = ? WHERE id = ?"), ("v1:a:AAAA", "z9"))
    vault = open_vault(f"{key_b},{key_a}")
    with pytest.raises(DecryptionFailed, match="'z9'"):
        vault.rotate_keys(batch_size=2)
    assert {c.id: vault.get(c.id, "github").key_id for c in vault.list() if c.id != "z9"} == {"a1": "b", "a2": "b"}
    vault.delete("z9", "github")
    assert vault.rotate_keys().remaining == 0


def test_vault_repr_and_values_never_show_tokens_or_keys(open_vault: OpenVault, key_a: str) -> None:
    """Reprs of the vault, a stored connection, its tokens and a lease hold no token and no key."""
    vault = open_vault(key_a)
    vault.save("user-1", "github", TOKENS)
    lease = vault.try_begin_refresh("user-1", "github")
    text = " ".join(repr(value) for value in (vault, vault.get("user-1", "github"), TOKENS, lease, vault.list()))
    for secret in (TOKENS.access_token, TOKENS.refresh_token, key_a.split(":", 1)[1]):
        assert secret is not None
        assert secret not in text
    assert "Vault(keys=('a',))" in text


def test_another_module_cannot_mistake_a_vault_database_for_empty(tmp_path: Path, key_a: str) -> None:
    """The vault and the inbox share one file and one migration history."""
    from tether.webhooks import Inbox

    path = tmp_path / "tether.db"
    Vault(path, keyring=parse_keyring(key_a)).close()
    Inbox(path).close()
    with raw(path) as db:
        assert db.execute("SELECT version, name FROM tether_migrations ORDER BY version").fetchall() == [
            (1, "webhook inbox"),
            (2, "connections vault"),
            (3, "oauth states"),
        ]
