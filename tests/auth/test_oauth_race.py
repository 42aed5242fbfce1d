"""The issue's race: 8 processes x 50 concurrent calls on a connection whose access token just expired."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from tests.auth import _oauth_race_worker
from tests.auth._oauth_fixtures import WEB_SECRET, consent, server, web_app
from tests.auth._oauth_server import AuthServer
from tether.auth import TokenSet, Vault, generate_key_setting, parse_keyring, run_flow_sync

pytestmark = pytest.mark.integration

__all__ = ["server"]

PROCESSES = 8
CALLS = 50


def test_one_refresh_reaches_the_server_however_many_processes_and_calls_need_it(
    server: AuthServer, location: str | Path
) -> None:
    """Exactly one refresh request reaches the server, all 400 calls succeed, and no invalid_grant is seen.

    The server rotates refresh tokens and answers a reused one with invalid_grant, so a second refresh with the
    same token would show up both as a second refresh and as an invalid_grant. Runs on SQLite and PostgreSQL.
    """
    import tether

    key_setting = generate_key_setting("a")
    app = web_app(server, scopes=("read",))
    with Vault(location, keyring=parse_keyring(key_setting)) as vault, tether.Client() as http:
        params = consent(app.authorization_url(session="s", connection_id="user-1"))
        tokens = run_flow_sync(app.finish_flow(session="s", params=params), http).tokens
        expired = TokenSet(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            scopes=tokens.scopes,
            expires_at=time.time() - 1,  # just expired
        )
        vault.save("user-1", "acme", expired)

        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(PROCESSES)
        results = context.Queue()
        processes = [
            context.Process(
                target=_oauth_race_worker.race,
                args=(str(location), key_setting, server.metadata(), WEB_SECRET, CALLS, barrier, results),
            )
            for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        reports = [results.get(timeout=180) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0] * PROCESSES
        assert [errors for _, errors in reports] == [[]] * PROCESSES
        assert sum(successes for successes, _ in reports) == PROCESSES * CALLS
        assert server.ledger.refreshes == 1
        assert server.ledger.invalid_grants == 0
        stored = vault.get("user-1", "acme")
        assert stored.tokens.refresh_token != tokens.refresh_token
        assert stored.info.status == "active"
        print(f"grants seen by the server: {server.ledger.grants}; API calls: {server.ledger.api_calls}")
