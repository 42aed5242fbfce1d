"""Connecting to PostgreSQL (psycopg 3, an optional extra) for any component's store.

Locations are ``postgresql://`` (or ``postgres://``) URLs; ``options=-csearch_path=...`` selects a schema. The
connection is in autocommit mode: every store operation is one explicit ``connection.transaction()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["connect_postgres", "is_postgres_url", "psycopg_module"]


def is_postgres_url(path_or_url: object) -> bool:
    """Whether a store location names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(path_or_url, str) and path_or_url.startswith(("postgresql://", "postgres://"))


def psycopg_module(what: str) -> Any:
    """The ``psycopg`` module, or a :class:`ConfigurationError` saying which extra installs it."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(f"The {what} on PostgreSQL needs psycopg: pip install 'tether[postgres]'") from exc
    return psycopg


def connect_postgres(url: str, connect_timeout: float, *, what: str) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` (``psycopg.Error`` propagates)."""
    driver = psycopg_module(what)
    kwargs: dict[str, Any] = {"autocommit": True}
    if connect_timeout > 0:
        kwargs["connect_timeout"] = max(1, round(connect_timeout))
    return driver.connect(url, **kwargs)  # type: ignore[no-any-return]  # the driver is imported lazily
