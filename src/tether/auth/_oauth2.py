"""``OAuth2``: an auth flow that attaches an OAuth 2.0 access token and keeps it fresh, rotation-safely.

The flow (see :mod:`tether.auth._protocol`), for every call:

1. take the current token; if it expires within ``skew`` (60 s), refresh first;
2. send the request with ``Authorization: Bearer``;
3. on a 401, refresh once (unless another call already replaced the rejected token) and replay the request;
4. a second 401 ends the call: with the default policy the client raises :class:`tether.errors.Unauthorized`. No
   loops.

**Single-flight refresh.** Within a process, one caller refreshes a connection while the others — coroutines or
threads — wait for it (a :class:`~tether.auth._oauth_signal.RefreshGate` per connection, and the client's driver
waits without blocking the event loop). Across processes, a stored connection is refreshed under the vault's
refresh lease (:meth:`tether.auth.Vault.try_begin_refresh`): the process holding it sends the one refresh
request, and :meth:`~tether.auth.Vault.store_refreshed` writes the new access token *and* the rotated refresh
token in one compare-and-swap transaction; the others poll the stored connection until it changes. Before
refreshing, the stored connection is re-read: another process may have refreshed it already.

**A dead grant.** On ``invalid_grant`` the stored connection is re-read before deciding: if another writer changed
it meanwhile (a process whose lease had expired, a re-connection) its tokens are used. Only when nothing changed is
the grant confirmed dead: the connection is marked ``needs_reauth`` (compare-and-swap on the version the lease
took), a :class:`tether.events.ConnectionNeedsReauth` event goes to the hooks and a warning to the ``tether``
logger, and :class:`tether.errors.NeedsReauth` is raised; later calls raise it at once without contacting the
provider.

The vault is synchronous (SQLite or PostgreSQL, milliseconds per statement); in an async client those few calls
run on the event loop's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence

from tether._logging import logger
from tether._models import Request, Response
from tether._redaction import redact_url
from tether.auth._oauth_app import OAuthApp
from tether.auth._oauth_signal import NEVER, RefreshGate
from tether.auth._protocol import WaitFor
from tether.auth._vault import Vault
from tether.auth._vault_records import ConnectionStatus, StoredConnection, TokenSet
from tether.errors import ConfigurationError, InvalidGrant, NeedsReauth, OAuthError, StaleConnection
from tether.events import ConnectionNeedsReauth, Hook

__all__ = ["OAuth2"]

Step = Generator[Request | WaitFor, Response, TokenSet]

_GATES: dict[tuple[int, str, str], RefreshGate] = {}
_GATES_LOCK = threading.Lock()


def _gate_for(vault: Vault, integration: str, connection_id: str) -> RefreshGate:
    """The process-wide gate of one stored connection (every ``OAuth2`` on it shares it)."""
    key = (id(vault), integration, connection_id)
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = RefreshGate()
        return gate


class OAuth2:
    """OAuth 2.0 bearer auth for a client's ``auth=``, backed by tokens in memory or a stored vault connection.

    - ``OAuth2(app, tokens=TokenSet(...))``: tokens held in memory (read the latest from :attr:`tokens`);
    - ``OAuth2(app, vault=vault, connection_id="user-42")``: the connection stored under ``app.integration``;
    - ``OAuth2(app)``: a service token, fetched (and fetched again before expiry) with the JWT bearer grant when
      ``app.jwt_bearer`` is set, else with client credentials.

    ``skew``: refresh this many seconds before expiry (60). ``refresh_timeout``: how long a call waits for a refresh
    made by another call or process (30 s). ``lease``: the vault refresh lease (60 s; longer than a refresh takes).
    ``hooks`` receive :class:`tether.events.ConnectionNeedsReauth`. Never shows a token in its ``repr``.
    """

    __slots__ = (
        "_app",
        "_connection_id",
        "_dead",
        "_gate",
        "_hooks",
        "_lease",
        "_poll",
        "_refresh_timeout",
        "_service",
        "_skew",
        "_tokens",
        "_vault",
    )

    def __init__(
        self,
        app: OAuthApp,
        *,
        tokens: TokenSet | None = None,
        vault: Vault | None = None,
        connection_id: str | None = None,
        skew: float = 60.0,
        refresh_timeout: float = 30.0,
        lease: float = 60.0,
        poll_interval: float = 0.05,
        hooks: Sequence[Hook] = (),
    ) -> None:
        if (vault is None) != (connection_id is None):
            raise ConfigurationError("OAuth2 takes a vault and a connection_id together")
        if vault is not None and tokens is not None:
            raise ConfigurationError("OAuth2 takes either tokens or a stored connection, not both")
        if skew < 0 or refresh_timeout <= 0 or lease <= 0 or poll_interval <= 0:
            raise ConfigurationError("OAuth2's skew must be >= 0; refresh_timeout, lease and poll_interval > 0")
        self._app = app
        self._vault = vault
        self._connection_id = connection_id
        self._tokens = tokens
        self._service = tokens is None and vault is None
        self._skew = skew
        self._refresh_timeout = refresh_timeout
        self._lease = lease
        self._poll = poll_interval
        self._hooks = tuple(hooks)
        self._dead: OAuthError | None = None
        self._gate = (
            _gate_for(vault, app.integration, connection_id)
            if vault is not None and connection_id is not None
            else RefreshGate()
        )

    @property
    def tokens(self) -> TokenSet | None:
        """The tokens last used or granted (``None`` before the first call of a stored or service token)."""
        return self._tokens

    def __repr__(self) -> str:
        where = f"connection={self._connection_id!r}" if self._vault is not None else "tokens=[REDACTED]"
        return f"OAuth2({self._app.integration!r}, {where})"

    # -- the auth flow --------------------------------------------------------------------------------------

    def auth_flow(self, request: Request) -> Generator[Request | WaitFor, Response, None]:
        """Attach a fresh token; on a 401, refresh once and replay; a second 401 is the call's answer."""
        tokens = yield from self._usable(rejected=None)
        response = yield _attach(request, tokens)
        if response.status_code != 401:
            return
        tokens = yield from self._usable(rejected=tokens.access_token)
        yield _attach(request, tokens)

    def _satisfies(self, tokens: TokenSet | None, rejected: str | None) -> bool:
        if tokens is None:
            return False
        if rejected is not None:
            return tokens.access_token != rejected
        return tokens.expires_at is None or tokens.expires_at - self._skew > self._app.clock.time()

    def _usable(self, *, rejected: str | None) -> Step:
        """A token to send: the current one if still good, else the result of the (single-flight) refresh."""
        clock = self._app.clock
        give_up_at = clock.monotonic() + self._refresh_timeout
        while True:
            if self._dead is not None:
                raise self._dead
            current = self._tokens
            if self._satisfies(current, rejected):
                assert current is not None  # noqa: S101 - _satisfies checked it
                return current
            waiting_for = self._gate.join()
            if waiting_for is None:
                try:
                    return (yield from self._lead(rejected))
                finally:
                    self._gate.finish()
            remaining = give_up_at - clock.monotonic()
            if remaining <= 0:
                raise OAuthError(
                    f"gave up waiting {self._refresh_timeout:g} s for another call's token refresh "
                    f"({self._app.integration})"
                )
            yield WaitFor(waiting_for, remaining)

    def _lead(self, rejected: str | None) -> Step:
        """Refresh as the leader (the gate is held): a stored connection, a service token, or tokens in memory."""
        if self._satisfies(self._tokens, rejected):  # refreshed between our check and taking the gate
            assert self._tokens is not None  # noqa: S101 - _satisfies checked it
            return self._tokens
        if self._vault is not None:
            tokens = yield from self._refresh_stored(self._vault, rejected)
        else:
            tokens = yield from self._refresh_in_memory()
        self._tokens = tokens
        return tokens

    def _refresh_in_memory(self) -> Step:
        current = self._tokens
        app = self._app
        if self._service:
            return (yield from app.service_token_flow())
        if current is None or current.refresh_token is None:
            raise NeedsReauth(
                f"the access token of {app.integration} is expired or refused and there is no refresh token: "
                "connect the account again"
            )
        try:
            granted = yield from app.refresh_flow(current.refresh_token)
        except InvalidGrant as error:
            self._dead = NeedsReauth(
                f"the refresh token of {app.integration} was refused (invalid_grant): connect the account again",
                error="invalid_grant",
                description=error.description,
                status_code=error.status_code,
            )
            raise self._dead from error
        return _merged(granted, current)

    # -- a stored connection --------------------------------------------------------------------------------

    def _read(self, vault: Vault) -> StoredConnection:
        assert self._connection_id is not None  # noqa: S101 - a stored connection has an id
        stored = vault.get(self._connection_id, self._app.integration)
        if stored.info.status is not ConnectionStatus.ACTIVE:
            raise NeedsReauth(
                f"connection {self._connection_id!r} ({self._app.integration}) is {stored.info.status.value}: "
                "a person must connect the account again"
            )
        return stored

    def _refresh_stored(self, vault: Vault, rejected: str | None) -> Step:
        connection_id = self._connection_id
        integration = self._app.integration
        assert connection_id is not None  # noqa: S101 - a stored connection has an id
        clock = self._app.clock
        give_up_at = clock.monotonic() + self._refresh_timeout
        stored = self._read(vault)  # another process may have refreshed it already
        while not self._satisfies(stored.tokens, rejected):
            lease = vault.try_begin_refresh(connection_id, integration, lease=self._lease)
            if lease is None:  # another process is refreshing: wait for its result
                if clock.monotonic() >= give_up_at:
                    raise OAuthError(
                        f"gave up waiting {self._refresh_timeout:g} s for another process to refresh connection "
                        f"{connection_id!r} ({integration})"
                    )
                yield WaitFor(NEVER, self._poll)
                stored = self._read(vault)
                continue
            leased = lease.connection
            if self._satisfies(leased.tokens, rejected):  # refreshed by another process meanwhile
                vault.release_refresh(lease)
                return leased.tokens
            refresh_token = leased.tokens.refresh_token
            if refresh_token is None:
                vault.release_refresh(lease)
                raise NeedsReauth(
                    f"connection {connection_id!r} ({integration}) has no refresh token and its access token is "
                    "expired or refused: connect the account again"
                )
            try:
                granted = yield from self._app.refresh_flow(refresh_token)
            except InvalidGrant as error:
                stored = self._after_invalid_grant(vault, leased, error)
                continue
            except BaseException:
                vault.release_refresh(lease)
                raise
            try:
                stored = vault.store_refreshed(lease, granted)
            except StaleConnection:
                logger.warning(
                    "connection %r (%s) changed while it was being refreshed (the refresh lease expired?); the "
                    "stored tokens win",
                    connection_id,
                    integration,
                )
                stored = self._read(vault)
            return stored.tokens
        return stored.tokens

    def _after_invalid_grant(self, vault: Vault, leased: StoredConnection, error: InvalidGrant) -> StoredConnection:
        """Re-read before deciding: a changed connection is used; an unchanged one is confirmed dead."""
        connection_id, integration = leased.info.id, leased.info.integration
        after = self._read(vault)
        if after.info.version != leased.info.version or after.tokens.refresh_token != leased.tokens.refresh_token:
            logger.info(
                "connection %r (%s): refresh refused, but another writer had already changed the connection; "
                "using its tokens",
                connection_id,
                integration,
            )
            return after
        try:
            vault.mark_needs_reauth(connection_id, integration, expected_version=leased.info.version)
        except StaleConnection:
            return self._read(vault)  # changed in between: let the loop look again
        token_url = redact_url(self._app.provider.token_url)
        reason = "the provider refused the refresh token (invalid_grant)"
        logger.warning("connection %r (%s) needs re-authorization: %s", connection_id, integration, reason)
        event = ConnectionNeedsReauth("POST", token_url, 1, integration, connection_id, reason)
        for hook in self._hooks:
            hook(event)
        raise NeedsReauth(
            f"connection {connection_id!r} ({integration}) needs re-authorization: {reason}",
            error="invalid_grant",
            description=error.description,
            status_code=error.status_code,
        ) from error


def _merged(granted: TokenSet, previous: TokenSet) -> TokenSet:
    """A refresh's tokens; the previous refresh token and scopes where the provider omitted them (RFC 6749 §6)."""
    return TokenSet(
        access_token=granted.access_token,
        refresh_token=granted.refresh_token if granted.refresh_token is not None else previous.refresh_token,
        token_type=granted.token_type,
        scopes=granted.scopes or previous.scopes,
        expires_at=granted.expires_at,
    )


def _attach(request: Request, tokens: TokenSet) -> Request:
    scheme = "Bearer" if tokens.token_type.lower() == "bearer" else tokens.token_type
    return request.with_headers((("Authorization", f"{scheme} {tokens.access_token}"),))
