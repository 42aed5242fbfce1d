"""The ``tether`` command line (Typer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether._version import __version__

if TYPE_CHECKING:
    from tether.gateway import GatewaySettings
    from tether.webhooks import Inbox, InboxEvent

__all__ = ["app", "main"]

app = typer.Typer(
    name="tether",
    help="tether: resilient third-party API integrations — toolkit and gateway.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tether {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """tether: resilient third-party API integrations."""


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Gateway config file (TOML). Default: ./tether.toml when it exists.", dir_okay=False),
]


def _settings(config: Path | None, *, resolve_secrets: bool) -> GatewaySettings:
    """Load the gateway config, or print the :class:`ConfigurationError` (never a secret) and exit 2."""
    import os

    from tether.errors import ConfigurationError
    from tether.gateway import load_config

    try:
        settings = load_config(config)
        return settings.resolve_secrets(os.environ) if resolve_secrets else settings
    except ConfigurationError as exc:
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=0, max=65535)] = 8000,
    database: Annotated[
        Path | None, typer.Option(help="SQLite file for the gateway's state (overrides [gateway] database).")
    ] = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the gateway (SQLite state in the working folder by default). Stops cleanly on SIGTERM/SIGINT.

    The vault's key comes from TETHER_SECRET_KEY or TETHER_SECRET_KEY_FILE; in development (the default, or
    TETHER_ENV=development) a key file tether.key is created beside the database when neither is set; in production
    (TETHER_ENV=production or [gateway] environment) the gateway refuses to start without one.
    """
    import dataclasses
    import os
    import signal
    import sqlite3

    import uvicorn

    from tether.errors import ConfigurationError
    from tether.gateway import create_app
    from tether.gateway.app import check_database, load_gateway_keyring

    settings = _settings(config, resolve_secrets=True)
    if database is not None:
        settings = dataclasses.replace(settings, database=database)
    # Checked here, before the server starts, so that a failure is one message and an exit status, not a traceback
    # from the lifespan.
    try:
        check_database(settings)
    except sqlite3.Error as exc:
        typer.echo(f"Error: cannot use the database {str(settings.database)!r}: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        keyring = load_gateway_keyring(settings, os.environ)
    except ConfigurationError as exc:
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from None

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handlers that were in place
    # before it started. Those are these no-ops, so a completed graceful shutdown exits 0 instead of dying by signal.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    uvicorn.run(
        create_app(settings, keyring=keyring),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


webhooks_app = typer.Typer(
    name="webhooks", help="Inspect and replay the gateway's received webhooks.", no_args_is_help=True
)
app.add_typer(webhooks_app)


@webhooks_app.callback()
def _webhooks(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Inspect and replay the webhooks in the gateway's inbox (the database named by the config)."""
    ctx.obj = config


def _inbox(ctx: typer.Context) -> Inbox:
    from tether.errors import ConfigurationError
    from tether.webhooks import Inbox

    settings = _settings(ctx.obj, resolve_secrets=False)
    if not settings.database.is_file():
        typer.echo(f"No webhook inbox at {settings.database} (set [gateway] database or pass --config).", err=True)
        raise typer.Exit(1)
    try:
        return Inbox(settings.database)
    except ConfigurationError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def _iso(timestamp: float | None) -> str | None:
    from datetime import UTC, datetime

    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _summary(event: InboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "status": event.status.value,
        "type": event.type,
        "attempts": event.attempts,
        "received_at": _iso(event.received_at),
        "provider_event_id": event.provider_event_id,
        "last_error": event.last_error,
    }


def _print_table(events: list[InboxEvent]) -> None:
    columns = ("id", "source", "status", "type", "attempts", "received_at", "last_error")
    rows = [[("" if value is None else str(value)) for value in (_summary(e)[c] for c in columns)] for e in events]
    if not rows:
        typer.echo("No events.")
        return
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    for row in [list(columns), *rows]:
        typer.echo("  ".join(cell[:200].ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _emit(events: list[InboxEvent], as_json: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps([_summary(event) for event in events], indent=2))
    else:
        _print_table(events)


def _parse_time(value: str | None, option: str) -> float | None:
    """Unix seconds, or an ISO 8601 date/time (UTC when it has no offset)."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use Unix seconds or an ISO 8601 time", param_hint=option) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@webhooks_app.command("list")
def webhooks_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only events in this state: pending, processing, processed, dead.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only events of this source.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List received webhook events, newest first."""
    from tether.webhooks import EventStatus

    states = [s.value for s in EventStatus]
    if status is not None and status not in states:
        raise typer.BadParameter(f"use one of {', '.join(states)}", param_hint="--status")
    with _inbox(ctx) as inbox:
        events = inbox.events(status=status, source=source, limit=limit)
    _emit(events, as_json)


@webhooks_app.command("show")
def webhooks_show(
    ctx: typer.Context,
    event_id: Annotated[int, typer.Argument(metavar="ID", help="The inbox's event id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one event: its state, headers (credentials redacted) and body."""
    import json

    with _inbox(ctx) as inbox:
        event = inbox.get(event_id)
    if event is None:
        typer.echo(f"No webhook event {event_id}.", err=True)
        raise typer.Exit(1)
    document = _summary(event) | {
        "processed_at": _iso(event.processed_at),
        "next_attempt_at": _iso(event.next_attempt_at),
        "headers": [list(pair) for pair in event.headers],
        "payload": event.payload,
        "body": event.raw.decode("utf-8", errors="replace"),
    }
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    for key in ("id", "source", "status", "type", "attempts", "provider_event_id", "received_at", "processed_at"):
        typer.echo(f"{key + ':':<19}{'' if document[key] is None else document[key]}")
    if event.last_error:
        typer.echo(f"{'last_error:':<19}{event.last_error}")
    typer.echo("headers:")
    for name, value in event.headers:
        typer.echo(f"  {name}: {value}")
    typer.echo("body:")
    typer.echo(document["body"])


@webhooks_app.command("replay")
def webhooks_replay(
    ctx: typer.Context,
    event_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="Replay this event.")] = None,
    source: Annotated[str | None, typer.Option(help="Replay this source's events.")] = None,
    since: Annotated[str | None, typer.Option(help="Received at or after (Unix seconds or ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Received before (Unix seconds or ISO 8601).")] = None,
) -> None:
    """Queue processed or dead events to run again: one by ID, or by --source/--since/--until."""
    if event_id is None and source is None and since is None and until is None:
        raise typer.BadParameter("give an event ID, or --source/--since/--until (see also `tether webhooks dead`)")
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    with _inbox(ctx) as inbox:
        count = inbox.replay(event_id, source=source, since=start, until=end)
    typer.echo(f"Queued {count} event{'' if count == 1 else 's'} for replay.")
    if event_id is not None and count == 0:
        typer.echo(f"Event {event_id} was not replayed: it does not exist or is not processed or dead.", err=True)
        raise typer.Exit(1)


@webhooks_app.command("dead")
def webhooks_dead(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source's dead letters.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events, newest first.", min=1)] = 50,
    replay: Annotated[bool, typer.Option("--replay", help="Queue every listed dead letter to run again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List dead letters: events whose handlers failed every attempt (``--replay`` queues them all again)."""
    with _inbox(ctx) as inbox:
        if replay:
            count = inbox.replay_dead(source=source)
            typer.echo(f"Queued {count} dead event{'' if count == 1 else 's'} for replay.")
            return
        events = inbox.events(status="dead", source=source, limit=limit)
    _emit(events, as_json)


keys_app = typer.Typer(name="keys", help="Manage the encryption keys of the credentials vault.", no_args_is_help=True)
app.add_typer(keys_app)


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="The new key's id (default: k-YYYYMMDDHHMMSS, UTC).")
    ] = None,
) -> None:
    """Print a new KID:KEY pair (32 random bytes) to put first in TETHER_SECRET_KEY."""
    from datetime import UTC, datetime

    from tether.auth import generate_key_setting
    from tether.errors import MalformedSecretKey

    try:
        typer.echo(generate_key_setting(key_id or f"k-{datetime.now(UTC):%Y%m%d%H%M%S}"))
    except MalformedSecretKey as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None


@keys_app.command("rotate")
def keys_rotate(
    database: Annotated[
        str | None,
        typer.Option(help="SQLite file or postgresql:// URL of the vault (default: [gateway] database)."),
    ] = None,
    config: ConfigOption = None,
    batch_size: Annotated[int, typer.Option(help="Rows re-encrypted per transaction.", min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt every stored token under the newest key of TETHER_SECRET_KEY (resumable: re-run after a stop).

    Keys come from TETHER_SECRET_KEY, else TETHER_SECRET_KEY_FILE, else tether.key beside the SQLite database (the
    development key `tether serve` creates); this command never creates a key. Exit status 1 when a row cannot be
    opened with the configured keys.
    """
    import json
    import os

    from tether.auth import RotationReport, Vault, load_keyring
    from tether.errors import ConfigurationError, VaultError

    location: str | Path = database if database is not None else _settings(config, resolve_secrets=False).database
    is_url = isinstance(location, str) and "://" in location
    if not is_url and not Path(location).is_file():
        typer.echo(f"No vault database at {location} (pass --database or set [gateway] database).", err=True)
        raise typer.Exit(1)
    key_file = Path("tether.key") if is_url else Path(location).parent / "tether.key"
    try:
        keyring = load_keyring(environment="development", environ=os.environ, key_file=key_file, create=False)
    except ConfigurationError as exc:
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from None

    def progress(report: RotationReport) -> None:
        if not as_json:
            typer.echo(f"  batch {report.batches}: {report.rotated} re-encrypted, {report.remaining} to go", err=True)

    try:
        with Vault(location, keyring=keyring) as vault:
            report = vault.rotate_keys(batch_size=batch_size, progress=progress)
    except (ConfigurationError, VaultError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        typer.echo("Batches committed before the error stay re-encrypted; fix the cause and run it again.", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    skipped = report.current - report.rotated
    typer.echo(
        f"Re-encrypted {report.rotated} connection{'' if report.rotated == 1 else 's'} under key {report.key_id!r} "
        f"in {report.batches} batch{'' if report.batches == 1 else 'es'}; {skipped} already under it."
    )
    others = {key: count for key, count in report.by_key.items() if key != report.key_id}
    if others:
        typer.echo(f"Still under other keys: {others}.")
    else:
        typer.echo("Every connection is under the newest key: older keys can be removed from TETHER_SECRET_KEY.")


def main() -> None:
    """Entry point of the ``tether`` console script."""
    app()


if __name__ == "__main__":
    main()
