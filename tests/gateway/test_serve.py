"""`tether serve` as a user runs it: a real process on loopback, /healthz, clean exit on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import tether

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server did not come up")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_healthz_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = _free_port()
    database = tmp_path / "state.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "serve", "--port", str(port), "--database", str(database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        response = _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "version": tether.__version__, "database": "sqlite"}
        assert database.exists()
        process.send_signal(sig)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Application shutdown complete" in output
    if "TETHER_SECRET_KEY" not in os.environ and "TETHER_SECRET_KEY_FILE" not in os.environ:
        # Development settings without a key: the vault's key file is created beside the database, private.
        assert stat.S_IMODE((tmp_path / "tether.key").stat().st_mode) == 0o600
        assert "DEVELOPMENT KEY CREATED" in output


def test_unwritable_database_fails_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "serve", "--port", str(_free_port()), "--database", str(blocker / "x.db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "unable to open database" in (result.stdout + result.stderr)


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"tether {tether.__version__}"


def _without_keys(**extra: str) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in ("TETHER_SECRET_KEY", "TETHER_SECRET_KEY_FILE", "TETHER_ENV", "TETHER_ADMIN_TOKEN")
    }
    return environ | extra


@pytest.mark.parametrize("how", ["TETHER_ENV", "config"])
def test_production_without_a_key_exits_with_a_message(tmp_path: Path, how: str) -> None:
    """With production settings and no key, `tether serve` prints why and exits 2: no traceback, no key file."""
    config = tmp_path / "tether.toml"
    config.write_text('[gateway]\nenvironment = "production"\n' if how == "config" else "")
    environ = _without_keys(TETHER_ENV="production") if how == "TETHER_ENV" else _without_keys()
    command = [sys.executable, "-m", "tether.cli", "serve", "--port", str(_free_port()), "--config", str(config)]
    result = subprocess.run(
        [*command, "--database", str(tmp_path / "gw.db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=environ,
    )
    assert result.returncode == 2, result
    assert "Configuration error: No encryption key is configured and production settings are in force" in result.stderr
    assert "set TETHER_SECRET_KEY or TETHER_SECRET_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "tether.key").exists()


def test_malformed_tether_env_exits_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "serve", "--port", str(_free_port()), "--database", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=_without_keys(TETHER_ENV="staging"),
    )
    assert result.returncode == 2
    assert "TETHER_ENV must be one of ['development', 'production'], not 'staging'" in result.stderr
    assert "Traceback" not in result.stderr
