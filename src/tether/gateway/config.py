"""The gateway's configuration: ``tether.toml`` in the working folder, or the file given with ``--config``.

::

    [gateway]
    database = "tether.db"          # SQLite file for the gateway's state and webhook inbox (default ./tether.db)

    [webhooks.sources.stripe]       # POST /webhooks/stripe
    scheme = "stripe"
    secret_env = "STRIPE_WEBHOOK_SECRET"   # or: secret = "..."  or: secrets = ["new", "old"]

    [webhooks.sources.twilio]
    scheme = "twilio"
    secrets = ["..."]
    url = "https://example.com/webhooks/twilio"   # the public URL, for URL-signing schemes (Twilio, Square)

Parsing (:func:`load_config`) checks the structure and never reads the environment; ``secret_env`` variables
are read by :meth:`GatewaySettings.resolve_secrets`, once, at start-up. Every mistake raises
:class:`tether.errors.ConfigurationError` naming the file, the source and the field, never a secret's value.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tether.errors import ConfigurationError
from tether.webhooks import SCHEMES

__all__ = ["DEFAULT_CONFIG", "GatewaySettings", "WebhookSource", "load_config"]

DEFAULT_CONFIG = Path("tether.toml")
"""The file read when no ``--config`` is given (relative to the working folder); it may be absent."""

_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOURCE_FIELDS = frozenset({"scheme", "secret", "secrets", "secret_env", "url"})
_GATEWAY_FIELDS = frozenset({"database"})


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
class GatewaySettings:
    """Gateway settings: the SQLite ``database`` (state and webhook inbox) and the webhook ``sources``.

    ``worker_idle`` is how long the inbox worker sleeps when no event is due (and so bounds how long a clean
    shutdown waits for it).
    """

    database: Path = Path("tether.db")
    sources: tuple[WebhookSource, ...] = ()
    worker_idle: float = 1.0

    def source(self, name: str) -> WebhookSource | None:
        """The source called ``name``, or ``None``."""
        return next((source for source in self.sources if source.name == name), None)

    def resolve_secrets(self, environ: Mapping[str, str]) -> GatewaySettings:
        """Return these settings with every ``secret_env`` read from ``environ``.

        Raises :class:`ConfigurationError` naming the source and the variable (never a value) when a variable
        is unset or empty.
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
        return replace(self, sources=tuple(resolved))


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
    webhooks = _table(document.get("webhooks", {}), "[webhooks]")
    tables = _table(webhooks.get("sources", {}), "[webhooks.sources]")
    sources = tuple(_source(name, table) for name, table in tables.items())
    return GatewaySettings(database=Path(database), sources=sources)


def _string(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where} field {key!r} must be a non-empty string, not {_kind(value)}")
    return value


def _source(name: str, value: object) -> WebhookSource:
    where = f"webhook source {name!r} ([webhooks.sources.{name}])"
    if not _SOURCE_NAME.fullmatch(name):
        raise ConfigurationError(f"{where}: a source name may hold only letters, digits, '_', '.' and '-'")
    table = _table(value, where)
    unknown = sorted(set(table) - _SOURCE_FIELDS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown field {unknown[0]!r}; known: {sorted(_SOURCE_FIELDS)}")
    scheme = _string(table, "scheme", where)
    if scheme is None:
        raise ConfigurationError(f"{where}: field 'scheme' is missing; use one of {sorted(SCHEMES)}")
    if scheme.lower() not in SCHEMES:
        raise ConfigurationError(f"{where}: unknown scheme {scheme!r} in field 'scheme'; use one of {sorted(SCHEMES)}")
    given = sorted(key for key in ("secret", "secrets", "secret_env") if key in table)
    if not given:
        raise ConfigurationError(f"{where}: no secret; set one of 'secret', 'secrets' or 'secret_env'")
    if len(given) > 1:
        raise ConfigurationError(f"{where}: fields {given[0]!r} and {given[1]!r} both given; set only one")
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
