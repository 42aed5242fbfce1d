"""The gateway's configuration: ``tether.toml`` in the working folder, or the file given with ``--config``.

::

    [gateway]
    database = "tether.db"          # SQLite file for the gateway's state, webhook inbox and vault (default ./tether.db)
    environment = "development"     # or "production" (overridden by TETHER_ENV): the vault's key policy

    [webhooks.sources.stripe]       # POST /webhooks/stripe
    scheme = "stripe"
    secret_env = "STRIPE_WEBHOOK_SECRET"   # or: secret = "..."  or: secrets = ["new", "old"]

    [webhooks.sources.twilio]
    scheme = "twilio"
    secrets = ["..."]
    url = "https://example.com/webhooks/twilio"   # the public URL, for URL-signing schemes (Twilio, Square)

    [integrations.github]           # an OAuth 2.0 provider (the flows themselves live in tether.auth)
    client_id = "Iv1.abc"
    client_secret_env = "GITHUB_CLIENT_SECRET"     # or: client_secret = "..."
    scopes = ["repo", "read:user"]                 # may be empty
    authorize_url = "https://github.com/login/oauth/authorize"   # with token_url; or: issuer = "https://..."
    token_url = "https://github.com/login/oauth/access_token"
    revocation_url = "https://..."                 # optional (RFC 7009)
    redirect_uri = "https://gw.example.com/oauth/callback"       # optional; default: the gateway's own
    test_url = "https://api.github.com/user"       # optional: POST /connections/ID/test calls it (GET)

Parsing (:func:`load_config`) checks the structure and never reads the environment; ``secret_env`` and
``client_secret_env`` variables, ``TETHER_ENV`` and ``TETHER_ADMIN_TOKEN`` are read by
:meth:`GatewaySettings.resolve_secrets`, once, at start-up. Every mistake raises
:class:`tether.errors.ConfigurationError` naming the file, the table and the field, never a secret's value.

Integration URLs are absolute ``https`` URLs without credentials or a fragment; ``http`` is accepted only for a
loopback host (``localhost``, ``127.0.0.0/8``, ``::1``), for development and tests against a local server.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from tether.errors import ConfigurationError
from tether.webhooks import SCHEMES

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_CONFIG",
    "ENVIRONMENT_ENV",
    "Environment",
    "GatewaySettings",
    "Integration",
    "WebhookSource",
    "load_config",
]

DEFAULT_CONFIG = Path("tether.toml")
"""The file read when no ``--config`` is given (relative to the working folder); it may be absent."""

ENVIRONMENT_ENV = "TETHER_ENV"
"""Overrides ``[gateway] environment`` when set (``development`` or ``production``)."""
ADMIN_TOKEN_ENV = "TETHER_ADMIN_TOKEN"  # noqa: S105 the variable's name, not a secret
"""The bearer token the connections API requires (``Authorization: Bearer ...``)."""

Environment = Literal["development", "production"]
_ENVIRONMENTS: tuple[Environment, ...] = ("development", "production")

_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOURCE_FIELDS = frozenset({"scheme", "secret", "secrets", "secret_env", "url"})
_GATEWAY_FIELDS = frozenset({"database", "environment"})
_INTEGRATION_FIELDS = frozenset(
    {
        "client_id",
        "client_secret",
        "client_secret_env",
        "scopes",
        "issuer",
        "authorize_url",
        "token_url",
        "revocation_url",
        "test_url",
        "redirect_uri",
    }
)
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 6749 §3.3 scope-token: printable ASCII except space, ``"`` and ``\\``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSource:
    """One ``[webhooks.sources.NAME]`` table: ``POST /webhooks/NAME`` verified with ``scheme``.

    ``secrets`` holds the configured secrets (several during a rotation); when the table names ``secret_env``
    it stays empty until :meth:`GatewaySettings.resolve_secrets` reads the variable. ``url`` is the public URL
    the provider signs (Twilio, Square). The ``repr`` never shows a secret.
    """

    name: str
    scheme: str
    secrets: tuple[str, ...] = field(default=(), repr=False)
    secret_env: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """One ``[integrations.NAME]`` table: an OAuth 2.0 client registered with a provider.

    The provider's endpoints come from ``issuer`` (discovery) or from ``authorize_url`` + ``token_url``, never
    both. ``client_secret`` is empty until :meth:`GatewaySettings.resolve_secrets` reads ``client_secret_env``;
    it never appears in a ``repr``. ``redirect_uri`` ``None`` means the gateway's own ``/oauth/callback``.
    ``test_url`` is the cheap authenticated ``GET`` that ``POST /connections/{id}/test`` makes (``None``: the
    discovered OIDC ``userinfo_endpoint``, if any).
    """

    name: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    client_secret_env: str | None = None
    scopes: tuple[str, ...] = ()
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    revocation_url: str | None = None
    redirect_uri: str | None = None
    test_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Gateway settings: ``database``, ``environment``, webhook ``sources`` and OAuth ``integrations``.

    ``database`` is the SQLite file of the gateway's state, webhook inbox and vault; ``environment`` sets the
    vault's key policy (see :func:`tether.auth.load_keyring`).
    ``admin_token`` guards the connections API (from ``TETHER_ADMIN_TOKEN``, read by :meth:`resolve_secrets`;
    never in a ``repr``). ``worker_idle`` is how long the inbox worker sleeps when no event is due (and so bounds
    how long a clean shutdown waits for it).
    """

    database: Path = Path("tether.db")
    environment: Environment = "development"
    sources: tuple[WebhookSource, ...] = ()
    integrations: tuple[Integration, ...] = ()
    admin_token: str | None = field(default=None, repr=False)
    worker_idle: float = 1.0

    @property
    def key_file(self) -> Path:
        """The development key file: ``tether.key`` beside the database (used only when no key is configured)."""
        return self.database.parent / "tether.key"

    def source(self, name: str) -> WebhookSource | None:
        """The source called ``name``, or ``None``."""
        return next((source for source in self.sources if source.name == name), None)

    def integration(self, name: str) -> Integration | None:
        """The integration called ``name``, or ``None``."""
        return next((integration for integration in self.integrations if integration.name == name), None)

    def resolve_secrets(self, environ: Mapping[str, str]) -> GatewaySettings:
        """Return these settings with the process environment ``environ`` applied.

        Every ``secret_env`` and ``client_secret_env`` is read, ``TETHER_ENV`` (when set) overrides
        ``environment``, and ``TETHER_ADMIN_TOKEN`` (when set and not empty) becomes ``admin_token``.

        Raises :class:`ConfigurationError` naming the source or integration and the variable (never a value) when a
        variable is unset or empty, or when ``TETHER_ENV`` is neither ``development`` nor ``production``.
        """
        resolved = []
        for source in self.sources:
            if source.secret_env is not None:
                value = environ.get(source.secret_env, "")
                if not value:
                    raise ConfigurationError(
                        f"webhook source {source.name!r}: environment variable {source.secret_env} (secret_env) "
                        "is not set or is empty"
                    )
                source = replace(source, secrets=(value,))  # noqa: PLW2901 a new value for this iteration
            resolved.append(source)
        integrations = []
        for integration in self.integrations:
            if integration.client_secret_env is not None:
                value = environ.get(integration.client_secret_env, "")
                if not value:
                    raise ConfigurationError(
                        f"integration {integration.name!r}: environment variable {integration.client_secret_env} "
                        "(client_secret_env) is not set or is empty"
                    )
                integration = replace(integration, client_secret=value)  # noqa: PLW2901 as above
            integrations.append(integration)
        environment = self.environment
        override = environ.get(ENVIRONMENT_ENV, "").strip()
        if override:
            if override not in _ENVIRONMENTS:
                raise ConfigurationError(
                    f"environment variable {ENVIRONMENT_ENV} must be one of {list(_ENVIRONMENTS)}, not {override!r}"
                )
            environment = override
        return replace(
            self,
            sources=tuple(resolved),
            integrations=tuple(integrations),
            environment=environment,
            admin_token=environ.get(ADMIN_TOKEN_ENV) or self.admin_token,
        )


def load_config(path: Path | None = None) -> GatewaySettings:
    """Read the gateway's settings from ``path``, or from ``./tether.toml`` when it exists, else the defaults.

    An explicit ``path`` that does not exist is an error; a relative ``database`` is relative to the working
    folder, like the ``--database`` option. ``secret_env`` is not read here (see
    :meth:`GatewaySettings.resolve_secrets`).
    """
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return GatewaySettings()
        path = DEFAULT_CONFIG
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"config file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    try:
        return _settings(document)
    except ConfigurationError as exc:
        raise ConfigurationError(f"config file {str(path)!r}: {exc}") from None


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value in ("", []):
        return "empty"
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array"}.get(
        type(value), "a table" if isinstance(value, dict) else type(value).__name__
    )


def _settings(document: dict[str, Any]) -> GatewaySettings:
    gateway = _table(document.get("gateway", {}), "[gateway]")
    unknown = sorted(set(gateway) - _GATEWAY_FIELDS)
    if unknown:
        raise ConfigurationError(f"[gateway]: unknown field {unknown[0]!r}; known: {sorted(_GATEWAY_FIELDS)}")
    database = gateway.get("database", "tether.db")
    if not isinstance(database, str) or not database:
        raise ConfigurationError(f"[gateway] field 'database' must be a non-empty string, not {_kind(database)}")
    environment = gateway.get("environment", "development")
    if environment not in _ENVIRONMENTS:
        shown = repr(environment) if isinstance(environment, str) else _kind(environment)
        raise ConfigurationError(f"[gateway] field 'environment' must be one of {list(_ENVIRONMENTS)}, not {shown}")
    webhooks = _table(document.get("webhooks", {}), "[webhooks]")
    tables = _table(webhooks.get("sources", {}), "[webhooks.sources]")
    sources = tuple(_source(name, table) for name, table in tables.items())
    integration_tables = _table(document.get("integrations", {}), "[integrations]")
    integrations = tuple(_integration(name, table) for name, table in integration_tables.items())
    return GatewaySettings(
        database=Path(database),
        environment=cast("Environment", environment),
        sources=sources,
        integrations=integrations,
    )


def _string(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where} field {key!r} must be a non-empty string, not {_kind(value)}")
    return value


def _named_table(name: str, value: object, where: str, noun: str, fields: frozenset[str]) -> dict[str, Any]:
    """A ``[KIND.NAME]`` table: its name checked, its value a table holding only known ``fields``."""
    if not _SOURCE_NAME.fullmatch(name):
        raise ConfigurationError(f"{where}: {noun} name may hold only letters, digits, '_', '.' and '-'")
    table = _table(value, where)
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ConfigurationError(f"{where}: unknown field {unknown[0]!r}; known: {sorted(fields)}")
    return table


def _exactly_one(table: dict[str, Any], keys: tuple[str, ...], where: str, missing: str) -> None:
    """Exactly one of ``keys`` is given in ``table``; else the error ``missing``, or which two clash."""
    given = sorted(key for key in keys if key in table)
    if not given:
        raise ConfigurationError(f"{where}: {missing}")
    if len(given) > 1:
        raise ConfigurationError(f"{where}: fields {given[0]!r} and {given[1]!r} both given; set only one")


def _source(name: str, value: object) -> WebhookSource:
    where = f"webhook source {name!r} ([webhooks.sources.{name}])"
    table = _named_table(name, value, where, "a source", _SOURCE_FIELDS)
    scheme = _string(table, "scheme", where)
    if scheme is None:
        raise ConfigurationError(f"{where}: field 'scheme' is missing; use one of {sorted(SCHEMES)}")
    if scheme.lower() not in SCHEMES:
        raise ConfigurationError(f"{where}: unknown scheme {scheme!r} in field 'scheme'; use one of {sorted(SCHEMES)}")
    _exactly_one(
        table, ("secret", "secrets", "secret_env"), where, "no secret; set one of 'secret', 'secrets' or 'secret_env'"
    )
    secrets: tuple[str, ...] = ()
    secret = _string(table, "secret", where)
    if secret is not None:
        secrets = (secret,)
    if "secrets" in table:
        listed = table["secrets"]
        if not isinstance(listed, list) or not listed:
            raise ConfigurationError(
                f"{where} field 'secrets' must be a non-empty array of strings, not {_kind(listed)}"
            )
        for item in listed:
            if not isinstance(item, str) or not item:
                raise ConfigurationError(f"{where} field 'secrets' must hold non-empty strings, not {_kind(item)}")
        secrets = tuple(listed)
    return WebhookSource(
        name=name,
        scheme=scheme.lower(),
        secrets=secrets,
        secret_env=_string(table, "secret_env", where),
        url=_string(table, "url", where),
    )


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(table: dict[str, Any], key: str, where: str, *, query: bool = True) -> str | None:
    """An absolute https URL (http only on a loopback host), without credentials or a fragment.

    The value is never repeated in an error: a URL may carry a credential in its user part or its query.
    """
    value = _string(table, key, where)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 raises ValueError on a malformed port
    except ValueError:
        raise ConfigurationError(f"{where} field {key!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"{where} field {key!r} must be an absolute https:// URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"{where} field {key!r} must use https:// (http:// is accepted only for localhost/loopback addresses)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{where} field {key!r} must not carry credentials (user:password@)")
    if parts.fragment or "#" in value:
        raise ConfigurationError(f"{where} field {key!r} must not have a fragment (#...)")
    if not query and parts.query:
        raise ConfigurationError(f"{where} field {key!r} must not have a query (?...)")
    return value


def _scopes(table: dict[str, Any], where: str) -> tuple[str, ...]:
    listed = table.get("scopes", [])
    if not isinstance(listed, list):
        raise ConfigurationError(f"{where} field 'scopes' must be an array of strings, not {_kind(listed)}")
    for item in listed:
        if not isinstance(item, str) or not _SCOPE.fullmatch(item):
            raise ConfigurationError(
                f"{where} field 'scopes' must hold non-empty strings without spaces, quotes or backslashes"
                + ("" if isinstance(item, str) else f", not {_kind(item)}")
            )
    return tuple(listed)


def _integration(name: str, value: object) -> Integration:
    where = f"integration {name!r} ([integrations.{name}])"
    table = _named_table(name, value, where, "an integration", _INTEGRATION_FIELDS)
    client_id = _string(table, "client_id", where)
    if client_id is None:
        raise ConfigurationError(f"{where}: field 'client_id' is missing")
    _exactly_one(
        table,
        ("client_secret", "client_secret_env"),
        where,
        "no client secret; set 'client_secret' or 'client_secret_env'",
    )
    issuer = _url(table, "issuer", where, query=False)
    authorize_url = _url(table, "authorize_url", where)
    token_url = _url(table, "token_url", where)
    if issuer is not None and (authorize_url is not None or token_url is not None):
        raise ConfigurationError(
            f"{where}: 'issuer' (discovery) and 'authorize_url'/'token_url' both given; set only one style"
        )
    if issuer is None:
        missing = [key for key, url in (("authorize_url", authorize_url), ("token_url", token_url)) if url is None]
        if len(missing) == 2:  # both endpoints
            raise ConfigurationError(
                f"{where}: no provider endpoints; set 'issuer' (discovery) or both 'authorize_url' and 'token_url'"
            )
        if missing:
            raise ConfigurationError(f"{where}: field {missing[0]!r} is missing (give both or use 'issuer')")
    return Integration(
        name=name,
        client_id=client_id,
        client_secret=_string(table, "client_secret", where) or "",
        client_secret_env=_string(table, "client_secret_env", where),
        scopes=_scopes(table, where),
        issuer=issuer,
        authorize_url=authorize_url,
        token_url=token_url,
        revocation_url=_url(table, "revocation_url", where),
        redirect_uri=_url(table, "redirect_uri", where),
        test_url=_url(table, "test_url", where),
    )
