"""Running an OAuth flow (discovery, a grant, a revocation) over a tether client, async or sync.

Each flow is a generator that yields requests and receives responses (:mod:`tether.auth._oauth_app`); these two
drivers send each request through the client's whole pipeline (deadline, retries, circuit) with
``raise_for_status`` off, because the flow reads the provider's error answers itself. Also here: building a client
for a stored connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

from tether._models import Request, Response
from tether.auth._oauth_provider import Provider, discovery_flow
from tether.policies import Policy

if TYPE_CHECKING:
    from tether.auth._oauth2 import OAuth2
    from tether.auth._oauth_app import OAuthApp
    from tether.auth._vault import Vault
    from tether.client import AsyncClient, Client

__all__ = [
    "connection_client",
    "disconnect",
    "disconnect_sync",
    "discover",
    "discover_sync",
    "run_flow",
    "run_flow_sync",
]

T = TypeVar("T")


def _lenient(policy: Policy) -> Policy:
    return policy if not policy.raise_for_status else dataclasses.replace(policy, raise_for_status=False)


async def run_flow(flow: Generator[Request, Response, T], client: AsyncClient) -> T:
    """Run ``flow`` to its result with ``client`` (its policy, with error statuses returned to the flow)."""
    policy = _lenient(client.policy)
    try:
        request = next(flow)
        while True:
            response = await client.send(request, policy=policy)
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


def run_flow_sync(flow: Generator[Request, Response, T], client: Client) -> T:
    """Run ``flow`` to its result with the blocking ``client``."""
    policy = _lenient(client.policy)
    try:
        request = next(flow)
        while True:
            response = client.send(request, policy=policy)
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def discover(issuer: str, client: AsyncClient) -> Provider:
    """``issuer``'s endpoints from its OIDC or RFC 8414 metadata (:class:`tether.errors.DiscoveryFailed` if none)."""
    return await run_flow(discovery_flow(issuer), client)


def discover_sync(issuer: str, client: Client) -> Provider:
    """:func:`discover` with a blocking client."""
    return run_flow_sync(discovery_flow(issuer), client)


def _disconnect_flow(app: OAuthApp, vault: Vault, connection_id: str) -> Generator[Request, Response, bool]:
    from tether.errors import ConnectionNotFound

    try:
        tokens = vault.get(connection_id, app.integration).tokens
    except ConnectionNotFound:
        return False
    if tokens.refresh_token is not None:
        yield from app.revoke_flow(tokens.refresh_token, "refresh_token")
    else:
        yield from app.revoke_flow(tokens.access_token, "access_token")
    return vault.delete(connection_id, app.integration)


async def disconnect(app: OAuthApp, vault: Vault, connection_id: str, client: AsyncClient) -> bool:
    """Revoke a stored connection's grant at the provider (RFC 7009), then forget it; whether it existed.

    The refresh token is revoked (which ends the grant's access tokens at most providers), or the access token
    when there is none. A provider without a revocation endpoint is not contacted. A revocation error is raised
    and the connection kept, so the caller can retry.
    """
    return await run_flow(_disconnect_flow(app, vault, connection_id), client)


def disconnect_sync(app: OAuthApp, vault: Vault, connection_id: str, client: Client) -> bool:
    """:func:`disconnect` with a blocking client."""
    return run_flow_sync(_disconnect_flow(app, vault, connection_id), client)


def connection_client(
    app: OAuthApp,
    vault: Vault,
    connection_id: str,
    base_url: str = "",
    *,
    oauth: dict[str, Any] | None = None,
    **client_options: Any,
) -> AsyncClient:
    """An :class:`tether.AsyncClient` whose calls carry connection ``connection_id``'s token (``app.integration``).

    ``oauth`` holds :class:`tether.auth.OAuth2` options (``skew``, ``hooks``, ...); ``client_options`` go to the
    client. ``async with connection_client(app, vault, "user-42", "https://api.github.com") as api: ...``
    """
    from tether.auth._oauth2 import OAuth2
    from tether.client import AsyncClient

    auth: OAuth2 = OAuth2(app, vault=vault, connection_id=connection_id, **(oauth or {}))
    return AsyncClient(base_url, auth=auth, **client_options)
