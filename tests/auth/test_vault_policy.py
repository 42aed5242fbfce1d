"""Where keys come from at start-up: configured keys always, a generated key file in development only."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tether.auth import generate_key_setting, load_keyring
from tether.errors import ConfigurationError, MalformedSecretKey, SecretKeyRequired


def test_the_setting_wins_in_both_environments(tmp_path: Path, key_a: str) -> None:
    """TETHER_SECRET_KEY is parsed as given; no file is created, even in development."""
    for environment in ("development", "production"):
        keyring = load_keyring(
            environment=environment, environ={"TETHER_SECRET_KEY": key_a}, key_file=tmp_path / "tether.key"
        )
        assert keyring.current_id == "a"
    assert not (tmp_path / "tether.key").exists()


def test_a_malformed_setting_is_an_error_even_in_development(tmp_path: Path) -> None:
    """A wrong key setting never falls back to a generated key (or to anything else)."""
    with pytest.raises(MalformedSecretKey):
        load_keyring(environment="development", environ={"TETHER_SECRET_KEY": "oops"}, key_file=tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_production_without_a_key_refuses_to_start_even_if_a_dev_key_file_exists(tmp_path: Path) -> None:
    """Production needs a key configured on purpose; a stray development key file is not picked up."""
    key_file = tmp_path / "tether.key"
    key_file.write_text(generate_key_setting("dev") + "\n")
    with pytest.raises(SecretKeyRequired, match="refuses to start") as caught:
        load_keyring(environment="production", environ={}, key_file=key_file)
    assert isinstance(caught.value, ConfigurationError)
    assert "TETHER_SECRET_KEY" in str(caught.value)


def test_a_named_key_file_is_read_in_production_and_a_missing_one_is_an_error(tmp_path: Path, key_b: str) -> None:
    """TETHER_SECRET_KEY_FILE points at a file in the same format; a wrong path is reported, not ignored."""
    named = tmp_path / "secret"
    named.write_text(key_b)
    named.chmod(0o600)
    keyring = load_keyring(environment="production", environ={"TETHER_SECRET_KEY_FILE": str(named)})
    assert keyring.key_ids == ("b",)
    with pytest.raises(SecretKeyRequired, match="does not exist"):
        load_keyring(environment="production", environ={"TETHER_SECRET_KEY_FILE": str(tmp_path / "nope")})


def test_development_creates_a_0600_key_file_and_warns_loudly_without_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No key configured in development: a key file is made (mode 0600), and a WARNING says where and why."""
    key_file = tmp_path / "state" / "tether.key"
    with caplog.at_level(logging.WARNING, logger="tether.vault"):
        keyring = load_keyring(environment="development", environ={}, key_file=key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip().split(":", 1)[1]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "DEVELOPMENT KEY CREATED" in record.getMessage()
    assert str(key_file) in record.getMessage()
    assert "TETHER_SECRET_KEY" in record.getMessage()
    assert secret not in caplog.text
    assert [p.name for p in key_file.parent.iterdir()] == ["tether.key"]  # no staging file left behind

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tether.vault"):
        again = load_keyring(environment="development", environ={}, key_file=key_file)
    assert again.key_ids == keyring.key_ids  # the same file is used, not a new key each start
    assert "DEVELOPMENT KEY IN USE" in caplog.text
    assert secret not in caplog.text


def test_without_create_a_missing_dev_key_is_an_error(tmp_path: Path) -> None:
    """Commands such as `tether keys rotate` never make a key."""
    with pytest.raises(SecretKeyRequired, match="No encryption key"):
        load_keyring(environment="development", environ={}, key_file=tmp_path / "tether.key", create=False)
    assert not (tmp_path / "tether.key").exists()


def test_a_key_file_readable_by_others_is_used_with_a_warning(
    tmp_path: Path, key_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Mounted secrets are often 0644: the key is used, and the warning says how to restrict it."""
    named = tmp_path / "secret"
    named.write_text(key_a)
    os.chmod(named, 0o644)
    with caplog.at_level(logging.WARNING, logger="tether.vault"):
        load_keyring(environment="production", environ={"TETHER_SECRET_KEY_FILE": str(named)})
    assert "chmod 600" in caplog.text
    assert key_a.split(":", 1)[1] not in caplog.text
