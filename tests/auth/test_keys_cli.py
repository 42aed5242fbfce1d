"""`tether keys generate` and `tether keys rotate`: readable summaries, JSON, and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.auth.conftest import OpenVault
from tether.auth import TokenSet, parse_keyring
from tether.cli import app as cli


def test_generate_prints_a_pair_that_parses() -> None:
    """The printed line is a valid one-key setting with the requested id."""
    result = CliRunner().invoke(cli, ["keys", "generate", "--key-id", "2026-01"])
    assert result.exit_code == 0, result.output
    assert parse_keyring(result.output.strip()).key_ids == ("2026-01",)


def test_rotate_prints_a_summary_then_json_and_is_a_no_op_when_done(
    open_vault: OpenVault, location: str | Path, key_a: str, key_b: str
) -> None:
    """Rows under the old key are re-encrypted in batches; a second run reports nothing to do, as JSON here."""
    vault = open_vault(key_a)
    for number in range(5):
        vault.save(f"user-{number}", "github", TokenSet(access_token=f"access-{number}"))
    env = {"TETHER_SECRET_KEY": f"{key_b},{key_a}", "TETHER_SECRET_KEY_FILE": ""}
    args = ["keys", "rotate", "--database", str(location), "--batch-size", "2"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 5 connections under key 'b' in 3 batches; 0 already under it." in result.output
    assert "older keys can be removed" in result.output
    assert key_b.split(":", 1)[1] not in result.output

    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "key_id": "b",
        "rotated": 0,
        "current": 5,
        "remaining": 0,
        "batches": 0,
        "by_key": {"b": 5},
    }
    assert open_vault(key_b).get("user-3", "github").tokens.access_token == "access-3"


def test_rotate_without_a_key_or_with_a_missing_old_key_fails_clearly(
    open_vault: OpenVault, location: str | Path, key_a: str, key_b: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key configured: exit 2, nothing created. Old key dropped too early: exit 1 naming the missing key id."""
    open_vault(key_a).save("user-1", "github", TokenSet(access_token="t"))
    runner = CliRunner()
    args = ["keys", "rotate", "--database", str(location)]
    monkeypatch.chdir(tmp_path)  # where a development key file would be looked for (and must not be created)
    result = runner.invoke(cli, args, env={"TETHER_SECRET_KEY": "", "TETHER_SECRET_KEY_FILE": ""})
    assert result.exit_code == 2
    assert "No encryption key is configured" in result.output
    assert not (tmp_path / "tether.key").exists()
    result = runner.invoke(cli, args, env={"TETHER_SECRET_KEY": key_b, "TETHER_SECRET_KEY_FILE": ""})
    assert result.exit_code == 1
    assert "key 'a', which is not configured" in result.output
    assert "run it again" in result.output
