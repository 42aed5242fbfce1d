"""The ``tether`` command line (Typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether._version import __version__

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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=0, max=65535)] = 8000,
    database: Annotated[Path, typer.Option(help="SQLite file for the gateway's state.")] = Path("tether.db"),
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the gateway (SQLite state in the working folder by default). Stops cleanly on SIGTERM/SIGINT."""
    import signal

    import uvicorn

    from tether.gateway import GatewaySettings, create_app

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handlers that were in place
    # before it started. Those are these no-ops, so a completed graceful shutdown exits 0 instead of dying by signal.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    uvicorn.run(
        create_app(GatewaySettings(database=database)),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    """Entry point of the ``tether`` console script."""
    app()


if __name__ == "__main__":
    main()
