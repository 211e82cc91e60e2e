"""The ``tuplespace`` command: a thin layer over the library and the server.

tuplespace serve --port 8765 --data-dir ./tuplespace-data
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from . import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="tuplespace",
    help="PyTupleSpace: a tuple space for Python.",
    no_args_is_help=True,
    add_completion=False,
)

_PERMISSIONS = ("read", "write", "take", "subscribe", "admin")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tuplespace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """PyTupleSpace: a tuple space for Python."""


def _permissions(text: str) -> set[str]:
    perms = {p.strip() for p in text.split(",") if p.strip()}
    unknown = sorted(perms - set(_PERMISSIONS))
    if unknown:
        raise typer.BadParameter(
            f"unknown permission {unknown[0]!r}; permissions are {', '.join(_PERMISSIONS)}"
        )
    return perms


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)] = 8765,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where durable spaces are kept.", file_okay=False)
    ] = Path("tuplespace-data"),
    memory: Annotated[bool, typer.Option("--memory", help="Keep every space in memory only.")] = False,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            help="A JSON file of bearer tokens; without it, tokens are not checked.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    anonymous: Annotated[
        str,
        typer.Option(
            "--anonymous",
            help="Permissions of requests without a token on new spaces, e.g. read,subscribe.",
        ),
    ] = "",
    long_poll: Annotated[
        float, typer.Option("--long-poll", help="The longest a request waits, in seconds.", min=0.001)
    ] = 30.0,
    claim_lease: Annotated[
        float,
        typer.Option("--claim-lease", help="Seconds a claimed take waits for its confirmation.", min=0.001),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve spaces over HTTP (docs/http-api.md) until SIGINT or SIGTERM."""
    from .server import run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(
            host,
            port,
            log_level=log_level,
            data_dir=None if memory else data_dir,
            store="memory" if memory else "durable",
            tokens=tokens,
            anonymous=_permissions(anonymous),
            long_poll=long_poll,
            claim_lease=claim_lease,
        )
    except ValueError as exc:
        typer.echo(f"tuplespace serve: {exc}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    """The entry point of the ``tuplespace`` command."""
    app()
