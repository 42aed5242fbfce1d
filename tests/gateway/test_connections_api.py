"""The gateway's vault at start-up (key policy) and the read-only connections API, through the real app and vault.

Connections are saved with a real :class:`tether.auth.Vault` on the gateway's own SQLite file, then read through
``GET /connections`` with Starlette's TestClient running the app's lifespan.
"""

from __future__ import annotations

import logging
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.auth import ConnectionStatus, TokenSet, Vault, generate_key_setting, parse_keyring
from tether.errors import SecretKeyRequired
from tether.gateway import GatewaySettings, Integration, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # see test_webhooks_gateway.py: TestClient over httpx is deprecated, still works
    from starlette.testclient import TestClient

ADMIN = "admin-token-TOPSECRET"
KEY = generate_key_setting("test-key")
TOKENS = ("gho_ACCESS-TOPSECRET-1", "ghr_REFRESH-TOPSECRET-1", "ya29.ACCESS-TOPSECRET-2", "1//REFRESH-TOPSECRET-2")


def _integration(name: str) -> Integration:
    return Integration(
        name=name,
        client_id=f"{name}-client",
        client_secret="client-secret-TOPSECRET",
        authorize_url="https://p.example/a",
        token_url="https://p.example/t",
    )


@pytest.fixture(autouse=True)
def _no_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decides whether a key is configured; the developer's own environment must not leak in."""
    for name in ("TETHER_SECRET_KEY", "TETHER_SECRET_KEY_FILE", "TETHER_ENV", "TETHER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path: Path, **changes: object) -> GatewaySettings:
    values: dict[str, object] = {
        "database": tmp_path / "gw.db",
        "integrations": (_integration("github"), _integration("google")),
        "admin_token": ADMIN,
        "worker_idle": 0.02,
    }
    values.update(changes)
    return GatewaySettings(**values)  # type: ignore[arg-type]


def _seed(database: Path) -> None:
    with Vault(database, keyring=parse_keyring(KEY)) as vault:
        vault.save(
            "user-1",
            "github",
            TokenSet(access_token=TOKENS[0], refresh_token=TOKENS[1], scopes=("repo",), expires_at=2_000_000_000.0),
        )
        vault.save("user-1", "google", TokenSet(access_token=TOKENS[2], refresh_token=TOKENS[3]))
        vault.save("user-2", "github", TokenSet(access_token=TOKENS[0] + "b"))
        vault.mark_needs_reauth("user-2", "github")
        vault.save("user-3", "legacy", TokenSet(access_token=TOKENS[2] + "c"))  # not in the gateway's config


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    settings = _settings(tmp_path)
    _seed(settings.database)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as test_client:
        yield test_client


def _assert_no_secret(text: str) -> None:
    for secret in (*TOKENS, "TOPSECRET"):
        assert secret not in text


# -- the vault at start-up --------------------------------------------------------------------------------------


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path, environment="production")
    app = create_app(settings)
    with pytest.raises(SecretKeyRequired, match="TETHER_SECRET_KEY or TETHER_SECRET_KEY_FILE"), TestClient(app):
        pass
    assert not (tmp_path / "tether.key").exists()


def test_production_with_a_key_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    settings = _settings(tmp_path, environment="production")
    _seed(settings.database)
    with TestClient(create_app(settings)) as client:
        response = client.get("/connections", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200
    assert len(response.json()["connections"]) == 4
    assert not (tmp_path / "tether.key").exists()


def test_development_creates_a_private_key_file_beside_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    settings = _settings(folder, database=folder / "gw.db")
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/connections", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
        assert client.get("/connections", headers={"Authorization": "Bearer wrong"}).status_code == 401
    _assert_no_secret(caplog.text)  # neither the admin token nor the integrations' client secret is logged
    key_file = folder / "tether.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "DEVELOPMENT KEY CREATED" in caplog.text
    key_text = key_file.read_text().strip()
    # The next start uses the same key: a connection saved under it is listed.
    with Vault(settings.database, keyring=parse_keyring(key_text)) as vault:
        vault.save("user-1", "github", TokenSet(access_token=TOKENS[0]))
    caplog.clear()
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        body = client.get("/connections", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert [c["id"] for c in body["connections"]] == ["user-1"]
    assert "DEVELOPMENT KEY IN USE" in caplog.text
    assert key_file.read_text().strip() == key_text
    assert key_text.split(":", 1)[1] not in caplog.text


# -- the connections API ----------------------------------------------------------------------------------------


def test_list(client: TestClient) -> None:
    response = client.get("/connections")
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is False
    listed = [(c["integration"], c["id"], c["status"]) for c in body["connections"]]
    assert listed == [
        ("github", "user-1", "active"),
        ("github", "user-2", "needs_reauth"),
        ("google", "user-1", "active"),
        ("legacy", "user-3", "active"),
    ]
    first = body["connections"][0]
    assert first["expires_at"] == 2_000_000_000.0
    assert first["scopes"] == ["repo"]
    assert first["has_refresh_token"] is True
    _assert_no_secret(response.text)


def test_list_filters_and_limit(client: TestClient) -> None:
    github = client.get("/connections", params={"integration": "github"}).json()
    assert [c["id"] for c in github["connections"]] == ["user-1", "user-2"]
    assert client.get("/connections", params={"integration": "nobody"}).json() == {
        "connections": [],
        "truncated": False,
    }
    reauth = client.get("/connections", params={"status": ConnectionStatus.NEEDS_REAUTH.value}).json()
    assert [(c["integration"], c["id"]) for c in reauth["connections"]] == [("github", "user-2")]
    limited = client.get("/connections", params={"limit": "2"}).json()
    assert len(limited["connections"]) == 2
    assert limited["truncated"] is True
    exact = client.get("/connections", params={"limit": "4"}).json()
    assert (len(exact["connections"]), exact["truncated"]) == (4, False)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "sleeping"}, "'status'"), ({"limit": "0"}, "'limit'"), ({"limit": "x"}, "'limit'")],
)
def test_list_bad_parameters(client: TestClient, params: dict[str, str], field: str) -> None:
    response = client.get("/connections", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert field in response.json()["reason"]


def test_show(client: TestClient) -> None:
    response = client.get("/connections/user-2")
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("id", "integration", "status", "expires_at")} == {
        "id": "user-2",
        "integration": "github",
        "status": "needs_reauth",
        "expires_at": None,
    }
    _assert_no_secret(response.text)
    chosen = client.get("/connections/user-1", params={"integration": "google"})
    assert chosen.status_code == 200
    assert (chosen.json()["id"], chosen.json()["integration"]) == ("user-1", "google")
    _assert_no_secret(chosen.text)


def test_show_ambiguous_id_requires_the_integration(client: TestClient) -> None:
    response = client.get("/connections/user-1")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "ambiguous"
    assert "?integration=" in body["reason"]
    assert body["integrations"] == ["github", "google"]
    _assert_no_secret(response.text)


def test_show_not_found(client: TestClient) -> None:
    response = client.get("/connections/nobody")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "?integration=NAME" in response.json()["reason"]
    wrong = client.get("/connections/user-2", params={"integration": "google"})
    assert wrong.status_code == 404
    assert wrong.json() == {"error": "not_found", "reason": "No connection 'user-2' for integration 'google'"}


def test_show_integration_not_in_the_config(client: TestClient) -> None:
    """A connection of an integration no longer configured is listed, and shown when its integration is named."""
    assert client.get("/connections/user-3").status_code == 404
    response = client.get("/connections/user-3", params={"integration": "legacy"})
    assert response.status_code == 200
    assert response.json()["integration"] == "legacy"


# -- the admin token --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {ADMIN}x"},
        {"Authorization": f"Basic {ADMIN}"},
        {"Authorization": ""},
    ],
)
@pytest.mark.parametrize("path", ["/connections", "/connections/user-2", "/connections/nobody"])
def test_admin_token_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], path: str
) -> None:
    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    settings = _settings(tmp_path)
    _seed(settings.database)
    with TestClient(create_app(settings)) as client:
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"
        _assert_no_secret(response.text)
        right = client.get(path, headers={"Authorization": f"bearer {ADMIN}"})
        assert right.status_code in (200, 404)


def test_production_without_admin_token_answers_403(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    settings = _settings(tmp_path, environment="production", admin_token=None)
    with caplog.at_level(logging.WARNING, logger="tether.gateway"), TestClient(create_app(settings)) as client:
        for path in ("/connections", "/connections/user-1"):
            for headers in ({}, {"Authorization": "Bearer anything"}):
                response = client.get(path, headers=headers)
                assert response.status_code == 403
                assert response.json()["error"] == "admin_token_not_configured"
                assert "TETHER_ADMIN_TOKEN" in response.json()["reason"]
        assert client.get("/healthz").status_code == 200
    assert "TETHER_ADMIN_TOKEN is not set" in caplog.text


def test_development_without_admin_token_is_open_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    settings = _settings(tmp_path, admin_token=None)
    _seed(settings.database)
    with caplog.at_level(logging.WARNING, logger="tether.gateway"), TestClient(create_app(settings)) as client:
        assert client.get("/connections").status_code == 200
        assert client.get("/connections/user-2").status_code == 200
    warnings_logged = [r for r in caplog.records if r.name == "tether.gateway" and "open to anyone" in r.message]
    assert len(warnings_logged) == 1
    assert warnings_logged[0].levelno == logging.WARNING


def test_admin_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("TETHER_SECRET_KEY", KEY)
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", "from-env-token")
    monkeypatch.setenv("TETHER_ENV", "production")
    settings = GatewaySettings(database=tmp_path / "gw.db").resolve_secrets(os.environ)
    assert settings.environment == "production"
    with TestClient(create_app(settings)) as client:
        assert client.get("/connections").status_code == 401
        ok = client.get("/connections", headers={"Authorization": "Bearer from-env-token"})
        assert ok.status_code == 200
        assert ok.json() == {"connections": [], "truncated": False}


def test_keys_rotate_finds_the_development_key_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key file the gateway created beside its database is the one `tether keys rotate --database` uses."""
    from typer.testing import CliRunner

    from tether.cli import app as cli

    folder = tmp_path / "state"
    folder.mkdir()
    settings = _settings(folder, database=folder / "gw.db")
    with TestClient(create_app(settings)):
        pass
    key_text = (folder / "tether.key").read_text().strip()
    with Vault(settings.database, keyring=parse_keyring(key_text)) as vault:
        vault.save("user-1", "github", TokenSet(access_token=TOKENS[0]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["keys", "rotate", "--database", str(settings.database)])
    assert result.exit_code == 0, result.output
    assert "Every connection is under the newest key" in result.output
    assert not (elsewhere / "tether.key").exists()
