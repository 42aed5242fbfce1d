"""POST /webhooks/NAME through the real gateway app, the lifespan-owned worker, and `tether webhooks ...`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app as cli
from tether.gateway import create_app, load_config
from tether.webhooks import Inbox, InboxEvent

with warnings.catch_warnings():
    # This Starlette deprecates driving TestClient with httpx in favour of httpx2, which the venv does not have;
    # the TestClient still works, and it is the one way to run the app's lifespan in-process.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "gh-TOPSECRET-value"
BODY = json.dumps({"action": "opened", "number": 1}).encode()


def _github_headers(body: bytes, delivery: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "pull_request",
        "Content-Type": "application/json",
    }


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GH_SECRET", SECRET)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[gateway]\ndatabase = "{tmp_path / "inbox.db"}"\n\n'
        '[webhooks.sources.gh]\nscheme = "github"\nsecret_env = "GH_SECRET"\n'
    )
    return path


@pytest.fixture
def client(config: Path) -> Iterator[TestClient]:
    import dataclasses
    import os

    settings = dataclasses.replace(load_config(config).resolve_secrets(os.environ), worker_idle=0.02)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["webhooks", "--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_signed_delivery_is_stored_and_processed(client: TestClient, config: Path) -> None:
    """A correctly signed GitHub delivery answers 200 once on disk; the lifespan's worker then processes it."""
    response = client.post("/webhooks/gh", content=BODY, headers=_github_headers(BODY, "d-1"))
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    event_id = response.json()["id"]
    with Inbox(load_config(config).database) as inbox:
        _wait_for(lambda: (e := inbox.get(event_id)) is not None and e.status == "processed")
        event = inbox.get(event_id)
    assert event is not None
    assert event.source == "gh"
    assert event.raw == BODY
    assert event.type == "pull_request"
    duplicate = client.post("/webhooks/gh", content=BODY, headers=_github_headers(BODY, "d-1"))
    assert (duplicate.status_code, duplicate.json()["status"]) == (200, "duplicate")
    assert client.get("/healthz").json()["status"] == "ok"


def test_bad_signature_is_401_and_not_stored(client: TestClient, config: Path) -> None:
    response = client.post("/webhooks/gh", content=BODY, headers=_github_headers(BODY, "d-2", secret="wrong"))
    assert response.status_code == 401
    with Inbox(load_config(config).database) as inbox:
        assert inbox.events() == []


def test_unknown_source_is_404(client: TestClient) -> None:
    response = client.post("/webhooks/nope", content=BODY, headers=_github_headers(BODY, "d-3"))
    assert response.status_code == 404
    assert response.json()["status"] == "not_found"


def test_get_on_a_source_is_405(client: TestClient) -> None:
    assert client.get("/webhooks/gh").status_code == 405


def test_cli_list_show_and_replay(client: TestClient, config: Path) -> None:
    """`list --json` shows the delivery's id/source/status; `show` omits nothing but redacts the signature."""
    headers = _github_headers(BODY, "d-4") | {"Authorization": "Bearer tok-TOPSECRET"}
    event_id = client.post("/webhooks/gh", content=BODY, headers=headers).json()["id"]
    with Inbox(load_config(config).database) as inbox:
        _wait_for(lambda: (e := inbox.get(event_id)) is not None and e.status == "processed")

    code, out, _ = _cli(config, "list", "--json")
    assert code == 0
    [listed] = json.loads(out)
    assert {k: listed[k] for k in ("id", "source", "status", "type", "attempts")} == {
        "id": event_id,
        "source": "gh",
        "status": "processed",
        "type": "pull_request",
        "attempts": 0,  # the gateway has no handlers: stored processed, never run (see Inbox(unhandled=...))
    }
    assert listed["received_at"]

    code, out, _ = _cli(config, "list", "--status", "processed", "--source", "gh")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["id", "source", "status"]
    assert out.splitlines()[1].split()[:3] == [str(event_id), "gh", "processed"]
    assert json.loads(_cli(config, "list", "--source", "other", "--json")[1]) == []

    code, out, _ = _cli(config, "show", str(event_id), "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["payload"] == {"action": "opened", "number": 1}
    # Credentials are stored redacted; the signature header is kept on purpose (see webhooks/_stored_headers.py).
    assert ["authorization", "[REDACTED]"] in shown["headers"]
    assert "tok-TOPSECRET" not in out
    assert SECRET not in out
    code, out, _ = _cli(config, "show", str(event_id))
    assert code == 0
    assert "pull_request" in out
    assert "tok-TOPSECRET" not in out

    assert _cli(config, "show", "999")[0] == 1

    code, out, _ = _cli(config, "replay", str(event_id))
    assert (code, out.strip()) == (0, "Queued 1 event for replay.")
    with Inbox(load_config(config).database) as inbox:
        _wait_for(lambda: (e := inbox.get(event_id)) is not None and e.status == "processed" and e.attempts == 1)
    code, out, _ = _cli(config, "replay", "--source", "gh", "--since", "2000-01-01T00:00:00", "--until", "4102444800")
    assert (code, out.strip()) == (0, "Queued 1 event for replay.")
    code, out, _ = _cli(config, "replay", "--source", "gh", "--until", "2000-01-01")
    assert (code, out.strip()) == (0, "Queued 0 events for replay.")
    assert _cli(config, "replay")[0] != 0
    assert _cli(config, "replay", "--since", "yesterday")[0] != 0


def test_dead_letters_through_the_app_and_cli(config: Path) -> None:
    """A handler that always fails makes the event dead; `dead --json` lists it and `dead --replay` requeues it."""
    import dataclasses
    import os

    settings = dataclasses.replace(load_config(config).resolve_secrets(os.environ), worker_idle=0.02)
    calls: list[int] = []
    with Inbox(settings.database, max_attempts=1) as inbox:

        @inbox.on("gh")
        def always_fails(event: InboxEvent) -> None:
            calls.append(event.id)
            raise RuntimeError("handler broke")

        with TestClient(create_app(settings, inbox=inbox)) as client:
            event_id = client.post("/webhooks/gh", content=BODY, headers=_github_headers(BODY, "d-5")).json()["id"]
            _wait_for(lambda: (e := inbox.get(event_id)) is not None and e.status == "dead")

            code, out, _ = _cli(config, "dead", "--json")
            assert code == 0
            [dead] = json.loads(out)
            assert (dead["id"], dead["source"], dead["status"]) == (event_id, "gh", "dead")
            assert "handler broke" in dead["last_error"]
            code, out, _ = _cli(config, "dead")
            assert code == 0
            assert "handler broke" in out

            code, out, _ = _cli(config, "dead", "--replay")
            assert (code, out.strip()) == (0, "Queued 1 dead event for replay.")
            _wait_for(lambda: len(calls) == 2)
            _wait_for(lambda: (e := inbox.get(event_id)) is not None and e.status == "dead")
    assert calls == [event_id, event_id]


def test_cli_without_an_inbox(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndatabase = "{tmp_path / "absent.db"}"\n')
    code, _, err = _cli(config, "list")
    assert code == 1
    assert "No webhook inbox" in err


def test_serve_reports_a_bad_config_and_exits_nonzero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The message names the source and field; the secret's value is never printed."""
    config = tmp_path / "bad.toml"
    config.write_text('[webhooks.sources.gh]\nscheme = "gitlab"\nsecret = "TOPSECRET"\n')
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "'gh'" in result.stderr
    assert "unknown scheme 'gitlab'" in result.stderr
    assert "TOPSECRET" not in result.output + result.stderr

    config.write_text('[webhooks.sources.gh]\nscheme = "github"\nsecret_env = "TETHER_TEST_UNSET_VAR"\n')
    monkeypatch.delenv("TETHER_TEST_UNSET_VAR", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "TETHER_TEST_UNSET_VAR" in result.stderr


def test_shutdown_stops_the_worker(config: Path) -> None:
    """Leaving the lifespan stops the worker promptly and closes nothing the caller owns."""
    import dataclasses
    import os

    settings = dataclasses.replace(load_config(config).resolve_secrets(os.environ), worker_idle=0.02)
    with Inbox(settings.database) as inbox:
        started = time.monotonic()
        with TestClient(create_app(settings, inbox=inbox)):
            pass
        assert time.monotonic() - started < 3
        assert inbox.events() == []  # still open: the app did not close the caller's inbox
