"""A process of the OAuth refresh race (imported by ``multiprocessing`` spawn children; not a test module).

It opens its own vault on the shared database and an ``AsyncClient`` for the stored connection, waits at the
barrier with the others, then makes ``calls`` concurrent calls and reports ``(successes, first errors)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tether
from tether.auth import OAuthApp, Provider, Vault, connection_client, parse_keyring


async def _calls(
    location: str, key_setting: str, metadata: dict[str, Any], secret: str, calls: int, barrier: Any
) -> tuple[int, list[str]]:
    issuer = metadata["issuer"]
    app = OAuthApp(
        "acme", provider=Provider.from_metadata(metadata, issuer=issuer), client_id="web", client_secret=secret
    )
    with Vault(location, keyring=parse_keyring(key_setting), busy_timeout=30.0) as vault:
        async with connection_client(app, vault, "user-1", issuer) as api:
            barrier.wait()
            results = await asyncio.gather(*(api.get("/api/me") for _ in range(calls)), return_exceptions=True)
    successes = sum(1 for result in results if isinstance(result, tether.Response) and result.status_code == 200)
    errors = [repr(result) for result in results if isinstance(result, BaseException)]
    return successes, errors[:3]


def race(
    location: str, key_setting: str, metadata: dict[str, Any], secret: str, calls: int, barrier: Any, results: Any
) -> None:
    """Make ``calls`` concurrent calls on connection ``user-1`` and put ``(successes, errors)`` on ``results``."""
    results.put(asyncio.run(_calls(location, key_setting, metadata, secret, calls, barrier)))
