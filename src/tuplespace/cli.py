"""The ``tuplespace`` command: a thin layer over the library and the server.

tuplespace serve --port 8765 --data-dir ./tuplespace-data
tuplespace write jobs '["job", 1, "resize"]'
tuplespace take jobs '["job", {"$formal": "int"}, {"$any": true}]' --timeout 5
tuplespace dump jobs | tuplespace load jobs-copy

Tuples and templates are given, and printed, in the wire format (docs/wire-format.md).
Exit codes: 0 success, 1 error (server unreachable, an error answered by the server,
invalid input on stdin, a server that cannot start), 2 usage (bad options or arguments,
invalid JSON or wire text in an argument, serve on a network without tokens), 3 timeout
(nothing matched in time), 130 interrupted (Ctrl-C, or SIGTERM during a load; a watch
stopped so ends with 0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO
from urllib.parse import quote

from . import __version__
from ._extras import missing
from ._httpapi import PERMISSIONS

try:
    import typer
except ModuleNotFoundError as exc:
    raise missing("cli", exc) from exc

if TYPE_CHECKING:
    from . import Node

__all__ = ["app", "main"]

_EXIT_HELP = (
    "Exit codes: 0 success; 1 error (server unreachable, error answered by the server, "
    "invalid input on stdin, a server that cannot start); "
    "2 usage (bad option, invalid JSON or wire text in an argument, serve on a network without tokens); "
    "3 timeout (nothing matched in time); 130 interrupted (Ctrl-C, or SIGTERM during a load; "
    "a watch stopped so ends with 0)."
)

LOG_LEVELS = ("debug", "info", "warning", "error")

app = typer.Typer(
    name="tuplespace",
    help="PyTupleSpace: a tuple space for Python.\n\n" + _EXIT_HELP,
    no_args_is_help=True,
    add_completion=False,
)


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
    unknown = sorted(perms - set(PERMISSIONS))
    if unknown:
        raise typer.BadParameter(
            f"unknown permission {unknown[0]!r}; permissions are {', '.join(PERMISSIONS)}"
        )
    return perms


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)] = 8765,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where durable spaces are kept, in DATA_DIR/spaces.db (default: tuplespace-data).",
            file_okay=False,
        ),
    ] = None,
    memory: Annotated[bool, typer.Option("--memory", help="Keep every space in memory only.")] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="The store of the spaces, instead of --data-dir or --memory: memory:, sqlite:PATH "
            "(a SQLite file), redis://HOST:PORT/DB or redis+cluster://HOST:PORT (spaces and their "
            "catalog kept in Redis: every server on the same Redis serves the same spaces; "
            "docs/scaling.md).",
        ),
    ] = None,
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
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help=(
                "NAME=VALUE, repeatable: a server limit, e.g. max_waiting=5000; of connections: "
                "max_connections (per client address, default 64), read_timeout (seconds for a "
                "request or a channel frame to arrive once begun, default 10), idle_timeout (seconds "
                "a connection may wait before a request, default 5), max_partial_bytes (of requests "
                "begun and not yet in full, held by the whole server, default 64 MiB) "
                "(docs/http-api.md, Limits)."
            ),
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="An origin whose web pages may call the API from a browser (repeatable; * for any).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A name clients reach the server by, besides IP addresses, localhost and --host "
            "(repeatable; * for any); requests for other names are refused.",
        ),
    ] = None,
    insecure_no_tokens: Annotated[
        bool,
        typer.Option(
            "--insecure-no-tokens",
            help="Serve a --host other than the loopback without --tokens: "
            "every client that reaches it may do everything.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help=", ".join(LOG_LEVELS) + ".")] = "info",
    coap: Annotated[
        str | None,
        typer.Option(
            "--coap",
            help="HOST:PORT: also run a federation node there, serving the same spaces over CoAP (UDP), "
            "their records named under its base URI.",
        ),
    ] = None,
    base_uri: Annotated[
        str | None,
        typer.Option("--base-uri", help="The node's name, coap://host:port/ (default: from --coap)."),
    ] = None,
    peers: Annotated[
        Path | None,
        typer.Option(
            "--peers",
            help='A JSON file {"peers": ["coap://host:port/", ...]}: nodes to probe, listed in $sys.',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    coap_space: Annotated[
        list[str] | None,
        typer.Option(
            "--coap-space",
            help="A space made at start unless it exists, for CoAP clients, which cannot make one "
            "(repeatable; default: default).",
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="A JSON keys file of the node's OSCORE peers, each with its permissions "
            "(docs/federation.md, Security).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    coap_anonymous: Annotated[
        str | None,
        typer.Option(
            "--coap-anonymous",
            help="What CoAP peers without OSCORE may do: none, read, read+write or all "
            "(default: none with --keys, else all).",
        ),
    ] = None,
) -> None:
    """Serve spaces over HTTP (docs/http-api.md) until SIGINT or SIGTERM; with --coap,
    a federation node beside it (docs/federation.md) serving the same spaces over CoAP,
    their records named under its base URI (--base-uri).

    Without --tokens it serves only the loopback (127.0.0.1, ::1, localhost): another
    --host without tokens exits with status 2 unless --insecure-no-tokens is given.
    The node checks no tokens: its peers authenticate with OSCORE (--keys), and
    those without may do what --coap-anonymous says; a --coap host other than the
    loopback needs --keys or --insecure-no-tokens.

    Exit status: 0 once stopped by SIGINT or SIGTERM; 1 when it cannot start (the address
    is in use, the data directory is in use by another server or cannot be opened, Redis
    cannot be reached); 2 for bad options.  A failure to start is one line on stderr."""
    from ._errors import StoreError, Unreachable
    from .server import ServerLimits, run

    if log_level.lower() not in LOG_LEVELS:
        _fail("serve", f"--log-level is one of {', '.join(LOG_LEVELS)}, not {log_level!r}", EXIT_USAGE)
    if store is not None and (memory or data_dir is not None):
        _fail("serve", "give --store, --data-dir or --memory, one of them", EXIT_USAGE)
    if store is None:
        store = "memory" if memory else "durable"
        data_dir = None if memory else data_dir or Path("tuplespace-data")

    if tokens is None and not insecure_no_tokens and not _is_loopback(host):
        _fail(
            "serve",
            f"refusing to serve {host} without --tokens: every client on its network could read, "
            "write and take every tuple (give --tokens FILE, or --insecure-no-tokens to serve it anyway)",
            EXIT_USAGE,
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = None
    if coap is not None:
        node = _node(coap, base_uri, peers, _Security(keys, coap_anonymous, insecure_no_tokens))
    try:
        limits = ServerLimits.parse(limit or ())
        run(
            host,
            port,
            log_level=log_level,
            limits=limits,
            cors_origins=cors_origin or (),
            allowed_hosts=allowed_host or (),
            data_dir=data_dir,
            store=store,
            tokens=tokens,
            anonymous=_permissions(anonymous),
            long_poll=long_poll,
            claim_lease=claim_lease,
            node=node,
            spaces=() if node is None else coap_space or ["default"],
        )
    except ValueError as exc:
        _fail("serve", _one_line(exc), EXIT_USAGE)
    except (StoreError, Unreachable) as exc:
        _fail("serve", _one_line(exc), EXIT_ERROR)
    except OSError as exc:
        _fail("serve", f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_ERROR)
    finally:
        if node is not None:
            node.close()


@dataclass(frozen=True)
class _Security:
    """The options of ``serve --coap`` that say who may do what."""

    keys: Path | None
    anonymous: str | None
    insecure: bool


def _node(coap: str, base_uri: str | None, peers: Path | None, security: _Security) -> Node:
    """The node of ``serve --coap``; exits on bad options (2) or an address it cannot
    bind (1)."""
    from . import InvalidValue, Node

    host, _, port_text = coap.rpartition(":")
    host = host.strip("[]")
    if not host or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        _fail("serve", f"--coap is HOST:PORT, got {coap!r}", EXIT_USAGE)
    if security.keys is None and not security.insecure and not _is_loopback(host):
        _fail(
            "serve",
            f"refusing to serve CoAP on {host} without --keys: every peer on its network could read, "
            "set and destroy every record (give --keys FILE, or --insecure-no-tokens to serve it anyway)",
            EXIT_USAGE,
        )
    anonymous = security.anonymous or ("all" if security.keys is None else "none")
    port = int(port_text)
    known: list[str] = []
    if peers is not None:
        import orjson

        try:
            listed = orjson.loads(peers.read_text())["peers"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail("serve", f"--peers {peers}: {_one_line(exc)}", EXIT_USAGE)
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            _fail("serve", f'--peers {peers}: "peers" is a list of coap:// URIs', EXIT_USAGE)
        known = listed
    shown = f"[{host}]" if ":" in host else host
    try:
        node = Node(
            base_uri or f"coap://{shown}:{port}/",
            bind=(host, port),
            peers=known,
            keys=security.keys,
            anonymous=anonymous,
        )
    except (InvalidValue, ValueError) as exc:
        _fail("serve", _one_line(exc), EXIT_USAGE)
    except OSError as exc:
        _fail("serve", f"cannot listen on UDP {coap}: {exc.strerror or exc}", EXIT_ERROR)
    logging.getLogger("tuplespace").info(
        "PyTupleSpace node %s serving CoAP on UDP %s:%d", node.base_uri, host, node.port
    )
    return node


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (as ``serve --host`` takes it) listens on the loopback only."""
    import ipaddress

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address


# -- client commands ---------------------------------------------------------------------------

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
DEFAULT_URL = "http://127.0.0.1:8765"

Url = Annotated[
    str,
    typer.Option("--url", envvar="TUPLESPACE_URL", help="The server's base URL."),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="TUPLESPACE_TOKEN", help="Bearer token sent to the server."),
]
SpaceName = Annotated[str, typer.Argument(help="The space's name.", show_default=False)]
TemplateArg = Annotated[
    str,
    typer.Argument(
        help='A template in the wire format, e.g. \'["job", {"$formal": "int"}, {"$any": true}]\'.',
        show_default=False,
    ),
]


class _Failure(Exception):
    """A failure reported as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _fail(command: str, message: str, code: int) -> NoReturn:
    typer.echo(f"tuplespace {command}: {message}", err=True)
    raise typer.Exit(code)


def _explained(exc: Exception) -> tuple[str, int] | None:
    """The one line and the exit code that report ``exc``, or None for an error that is
    not the command's to report (a bug: it keeps its traceback)."""
    import httpx

    from ._errors import Timeout, TupleSpaceError

    if isinstance(exc, _Failure):
        return str(exc), exc.code
    if isinstance(exc, Timeout):
        return f"timeout: {exc}", EXIT_TIMEOUT
    if isinstance(exc, TupleSpaceError):
        return _one_line(exc), EXIT_ERROR
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the tuple space server: {type(exc).__name__}: {exc}", EXIT_ERROR
    return None


@contextlib.contextmanager
def _reporting(command: str) -> Iterator[None]:
    """Turn the errors a client command meets into one line on stderr and an exit code."""
    try:
        yield
        if sys.stdout is not None:
            _write("", flush=True)
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly, with nothing left
        # to flush into the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        _fail(command, "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        explained = _explained(exc)
        if explained is None:
            raise
        _fail(command, *explained)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _json(text: str | bytes, what: str) -> Any:
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _Failure(f"the {what} is not valid JSON: {exc}", EXIT_USAGE) from None


def _tuple(text: str | bytes, what: str = "tuple", code: int = EXIT_USAGE) -> tuple[Any, ...]:
    from ._codec import from_wire
    from ._errors import TupleSpaceError

    wire = _json(text, what) if code == EXIT_USAGE else _stdin_json(text, what)
    if not isinstance(wire, list):
        raise _Failure(f"the {what} must be a JSON array, not {_kind(wire)}", code)
    try:
        value = from_wire(wire)
    except (TupleSpaceError, ValueError) as exc:
        raise _Failure(f"the {what} is not valid wire format: {_one_line(exc)}", code) from None
    assert isinstance(value, tuple)
    return value


def _stdin_json(text: str | bytes, what: str) -> Any:
    try:
        return _json(text, what)
    except _Failure as exc:
        raise _Failure(str(exc), EXIT_ERROR) from None


def _template(text: str) -> Any:
    from ._codec import template_from_wire
    from ._errors import TupleSpaceError

    wire = _json(text, "template")
    if not isinstance(wire, list):
        raise _Failure(f"the template must be a JSON array, not {_kind(wire)}", EXIT_USAGE)
    try:
        return template_from_wire(wire)
    except (TupleSpaceError, ValueError) as exc:
        raise _Failure(f"the template is not valid wire format: {_one_line(exc)}", EXIT_USAGE) from None


def _kind(wire: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(wire), "a number"
    )


def _space(url: str, token: str | None, name: str) -> Any:
    from .client import RemoteSpace

    if not name:
        raise _Failure("the space name is empty", EXIT_USAGE)
    base = url.rstrip("/")
    try:
        return RemoteSpace(f"{base}/spaces/{quote(name, safe='')}", token=token)
    except ValueError as exc:
        raise _Failure(f"--url: {exc}", EXIT_USAGE) from None


def _server(url: str, token: str | None) -> Any:
    from ._connect import connect_server

    try:
        return connect_server(url, token=token)
    except ValueError as exc:
        raise _Failure(f"--url: {exc}", EXIT_USAGE) from None


def _stdout() -> TextIO:
    """stdout; a closed one fails the command."""
    if sys.stdout is None:
        raise _Failure("stdout is closed: nowhere to print", EXIT_ERROR)
    return sys.stdout


def _write(text: str, flush: bool = False) -> None:
    """Print ``text`` on stdout: a stdout closed, or that cannot be written (a full
    disk), fails the command.  (A reader gone, ``| head``, is :func:`_reporting`'s.)"""
    stdout = _stdout()
    try:
        stdout.write(text)
        if flush:
            stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _Failure(f"cannot write to stdout: {exc.strerror or exc}", EXIT_ERROR) from None


def _print_tuple(t: tuple[Any, ...]) -> None:
    from ._codec import encode

    _write(encode(t).decode() + "\n")


def _print_json(value: Any) -> None:
    import orjson

    _write(orjson.dumps(value).decode() + "\n")


def _seconds(value: float | None, option: str) -> float | None:
    if value is not None and not value >= 0:
        raise _Failure(f"{option} must be a number of seconds >= 0, not {value}", EXIT_USAGE)
    return value


def _lease(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise _Failure(f"--lease must be a number of seconds > 0, not {value}", EXIT_USAGE)
    return value


@app.command()
def spaces(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per space instead of a table.")
    ] = False,
) -> None:
    """List the spaces the token may read, with their tuple counts."""
    with _reporting("spaces"):
        with _server(url, token) as server:
            found = server.spaces()
        if as_json:
            for s in found:
                stats = s.statistics
                _print_json({"name": s.name, "tuples": stats["tuples"], "last_event": stats["last_event"]})
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("space", "tuples", "waiters", "subscribers", "last event", "order", "store")
        for s in found:
            stats, options = s.statistics, s.options
            table.add_row(
                s.name,
                str(stats["tuples"]),
                str(stats["waiters"]),
                str(stats["subscribers"]),
                str(stats["last_event"]),
                str(options["order"]),
                str(options["store"]),
            )
        import io

        shown = io.StringIO()  # written by _write, which reports a stdout that cannot be written
        Console(file=shown, force_terminal=_stdout().isatty(), width=Console().width).print(table)
        _write(shown.getvalue())


@app.command()
def write(
    space: SpaceName,
    tuple_json: Annotated[str, typer.Argument(metavar="TUPLE_JSON", help="A tuple in the wire format.")],
    lease: Annotated[float | None, typer.Option(help="Seconds the tuple lives (default: forever).")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Write a tuple; print its lease as JSON ({"id", "expires_at"})."""
    with _reporting("write"):
        t = _tuple(tuple_json)
        with _space(url, token, space) as remote:
            written = remote.write(t, lease=_lease(lease))
        _print_json({"id": written.seq, "expires_at": written.expires_at})


_TIMEOUT_HELP = "Seconds to wait for a match (default: forever; 0: do not wait). Exit code 3 when none came."


@app.command()
def read(
    space: SpaceName,
    template_json: TemplateArg,
    timeout: Annotated[float | None, typer.Option(help=_TIMEOUT_HELP)] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print a tuple matching the template, leaving it in the space."""
    _find("read", space, template_json, timeout, url, token)


@app.command()
def take(
    space: SpaceName,
    template_json: TemplateArg,
    timeout: Annotated[float | None, typer.Option(help=_TIMEOUT_HELP)] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Take a tuple matching the template out of the space and print it."""
    _find("take", space, template_json, timeout, url, token)


def _find(
    command: str, space: str, template_json: str, timeout: float | None, url: str, token: str | None
) -> None:
    with _reporting(command):
        template = _template(template_json)
        wait = _seconds(timeout, "--timeout")
        _stdout()  # before a take: a tuple taken and not printed would be lost
        with _space(url, token, space) as remote:  # closing confirms a take
            found = getattr(remote, command)(template, timeout=wait)
        _print_tuple(found)


@app.command()
def count(space: SpaceName, template_json: TemplateArg, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Print how many tuples match the template."""
    with _reporting("count"):
        template = _template(template_json)
        with _space(url, token, space) as remote:
            n = remote.count(template)
        _write(f"{n}\n")


def _stop_on_sigterm() -> None:
    """SIGTERM ends a command as Ctrl-C does: quietly, after closing what it opened."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _resumed(open_feed: Callable[[int | None], Any], command: str, since: int | None) -> Any:
    """A subscription or watch opened after event ``since``; when the server's log no
    longer holds the events after it, the loss is reported on stderr and it opens
    after the oldest event the log holds."""
    from ._errors import EventsLost

    try:
        return open_feed(since)
    except EventsLost as exc:
        typer.echo(f"tuplespace {command}: {_one_line(exc)}", err=True)
        return open_feed(exc.oldest_available - 1)


def _follow(feed: Any, command: str, line: Callable[[Any], dict[str, Any]]) -> None:
    """Print ``line(item)`` as JSON for each item of a subscription or watch until it ends;
    items the server's log no longer holds are reported on stderr, and it goes on."""
    from ._errors import EventsLost

    while True:
        try:
            item = feed.get()
        except EventsLost as exc:
            typer.echo(f"tuplespace {command}: {_one_line(exc)}", err=True)
            continue
        if item is None:
            return
        _print_json(line(item))
        _write("", flush=True)


@app.command()
def watch(
    space: SpaceName,
    template_json: TemplateArg,
    events: Annotated[
        str, typer.Option(help="The kinds of event to print, comma-separated.")
    ] = "write,take,expire,cancel",
    since: Annotated[
        int | None, typer.Option(help="Begin after this event number (default: from now on).", min=0)
    ] = None,
    existing: Annotated[
        bool,
        typer.Option(
            "--existing",
            help="First print every matching tuple already there (kind present); not with --since.",
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print each event of tuples matching the template, one JSON line
    ({"seq", "kind", "tuple", "time"}) each, until interrupted (Ctrl-C or SIGTERM: exit 0).

    With --existing, the tuples already there come first, as events of kind present.
    Events the server's log no longer holds are reported on stderr, and watching goes on.
    """
    from ._codec import to_wire
    from ._events import EVENT_KINDS

    with _reporting("watch"):
        template = _template(template_json)
        kinds = [k.strip() for k in events.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in EVENT_KINDS]
        if unknown or not kinds:
            raise _Failure(
                f"--events: unknown kind {unknown[0]!r}; kinds are {', '.join(EVENT_KINDS)}"
                if unknown
                else f"--events: give at least one of {', '.join(EVENT_KINDS)}",
                EXIT_USAGE,
            )
        if existing and since is not None:
            raise _Failure(
                "--existing starts with what is there, --since resumes: give one of them", EXIT_USAGE
            )
        _stop_on_sigterm()

        def subscribe(after: int | None) -> Any:
            return remote.subscribe(template, kinds, since=after, existing=existing and after is None)

        try:
            with _space(url, token, space) as remote, _resumed(subscribe, "watch", since) as sub:
                _follow(
                    sub,
                    "watch",
                    lambda e: {"seq": e.seq, "kind": e.kind, "tuple": to_wire(e.tuple), "time": e.time},
                )
        except KeyboardInterrupt:
            return


@app.command()
def dump(
    space: SpaceName,
    template_json: Annotated[
        str | None,
        typer.Argument(
            help="A template in the wire format; without it, every tuple: one read per arity "
            "the space's statistics list.",
            show_default=False,
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print the tuples matching the template (default: every tuple), one wire JSON line each.

    The tuples stay in the space.  They are read one answer of the server at a time and
    printed as they come, so a space of any size is dumped in bounded memory; tuples
    written or taken during the dump may or may not be printed, none is printed twice.
    """
    with _reporting("dump"):
        templates = [_template(template_json)] if template_json is not None else None
        with _space(url, token, space) as remote:
            if templates is None:
                from ._codec import template_from_wire

                arities = remote.statistics()["arities"]
                templates = [template_from_wire([{"$any": True}] * n) for n in arities]
            for template in templates:
                for page in remote.read_pages(template):
                    for t in page:
                        _print_tuple(t)


LOAD_BATCH_BYTES = 4 << 20
"""Bytes of tuples ``load`` sends in one request by default: half the body a server takes by default."""


@app.command()
def load(
    space: SpaceName,
    batch: Annotated[int, typer.Option(help="Tuples written per request.", min=1, max=10_000)] = 1000,
    batch_bytes: Annotated[
        int,
        typer.Option(
            "--batch-bytes",
            help="Bytes of tuples written per request, and the longest line taken.",
            min=1024,
        ),
    ] = LOAD_BATCH_BYTES,
    lease: Annotated[float | None, typer.Option(help="Seconds each tuple lives (default: forever).")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Write the tuples read from stdin, one wire JSON line each (blank lines skipped).

    A load is not all-or-nothing.  Every line is checked before anything is written
    (and kept in a temporary file, so memory stays bounded): an invalid line, or one
    longer than --batch-bytes, writes nothing (exit 1).  The tuples are then written in
    order, in batches of at most --batch tuples and --batch-bytes bytes, each batch all
    or none.  A batch refused (a full space, a limit of the server, a wrong token, a
    server gone) stops the load (exit 1), and Ctrl-C or SIGTERM stops it after the batch
    being written (exit 130; a second one stops it at once); either way the one line on
    stderr says how many tuples were loaded.  Those stay written, and nothing that was
    in the space is touched.  Progress is shown on stderr when it is a terminal.
    """
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with _reporting("load"):
        _lease(lease)
        if sys.stdin is None:
            raise _Failure("stdin is closed: give the tuples on stdin, one wire JSON line each", EXIT_USAGE)
        with tempfile.TemporaryFile() as spool, _Deferring() as signals:
            try:
                total = _spool(sys.stdin.buffer, spool, batch_bytes)
            except KeyboardInterrupt:
                message = f"interrupted while reading stdin: nothing loaded into {space}"
                raise _Failure(message, EXIT_INTERRUPTED) from None
            spool.seek(0)
            console = Console(stderr=True)
            progress = Progress(
                TextColumn(f"loading into {space}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            )
            done = sending = 0
            try:
                with _space(url, token, space) as remote, progress:
                    task = progress.add_task("load", total=total)
                    for chunk in _batches(spool, batch, batch_bytes):
                        if signals.pending:
                            raise KeyboardInterrupt
                        sending = len(chunk)
                        with signals.deferred():
                            remote.write_many(chunk, lease=lease)
                        done, sending = done + sending, 0
                        progress.advance(task, len(chunk))
            except KeyboardInterrupt:
                unsure = f"; the {sending} being written may or may not have been" if sending else ""
                message = f"interrupted: loaded {done} of {total} tuples into {space}{unsure}"
                raise _Failure(message, EXIT_INTERRUPTED) from None
            except Exception as exc:
                explained = _explained(exc)
                if explained is None:
                    raise
                why, code = explained
                raise _Failure(f"loaded {done} of {total} tuples into {space}, then: {why}", code) from None
        typer.echo(f"loaded {total} tuples into {space}", err=True)


class _Deferring:
    """SIGINT and SIGTERM stop a command at once (KeyboardInterrupt), except within
    :meth:`deferred`: the first one there only sets :attr:`pending`, for the command
    to stop once the block ended; a second one stops it at once."""

    def __init__(self) -> None:
        self.pending = False
        self.deferring = False
        self.before: dict[int, Any] = {}

    def __enter__(self) -> _Deferring:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.before[sig] = signal.signal(sig, self._signalled)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self.before.items():
            signal.signal(sig, handler)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring and not self.pending:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold the first signal until the block ends (see :attr:`pending`)."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False


def _spool(source: Any, spool: Any, longest: int) -> int:
    """Check each line of ``source`` as a wire tuple and copy it to ``spool``; the
    number of tuples.  A line longer than ``longest`` bytes is refused unread."""
    count = 0
    number = 0
    while line := source.readline(longest + 1):
        number += 1
        if len(line) > longest and not line.endswith(b"\n"):
            raise _Failure(
                f"the tuple on line {number} is longer than {longest} bytes (--batch-bytes)", EXIT_ERROR
            )
        line = line.strip()
        if line:
            _tuple(line, f"tuple on line {number}", EXIT_ERROR)
            spool.write(line + b"\n")
            count += 1
    return count


def _batches(spool: Any, most: int, most_bytes: int) -> Iterator[list[tuple[Any, ...]]]:
    """The tuples of ``spool`` (checked by :func:`_spool`) in lists of at most ``most``
    tuples and ``most_bytes`` bytes of wire text (at least one tuple)."""
    chunk: list[tuple[Any, ...]] = []
    size = 0
    for line in spool:
        if chunk and (len(chunk) == most or size + len(line) > most_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(_tuple(line, "tuple", EXIT_ERROR))
        size += len(line)
    if chunk:
        yield chunk


# -- records -----------------------------------------------------------------------------------

record_app = typer.Typer(
    help="Named records of a space (docs/records.md): fields are given and printed in the wire format.",
    no_args_is_help=True,
)
app.add_typer(record_app, name="record")

RecordRef = Annotated[
    str,
    typer.Argument(help="The record: a path, $, an address or a capability's address.", show_default=False),
]


def _fields(text: str) -> dict[str, Any]:
    from ._codec import from_wire
    from ._errors import TupleSpaceError

    wire = _json(text, "fields")
    if not isinstance(wire, dict):
        raise _Failure(f"the fields must be a JSON object of tags and values, not {_kind(wire)}", EXIT_USAGE)
    try:
        value = from_wire(wire)
    except (TupleSpaceError, ValueError) as exc:
        raise _Failure(f"the fields are not valid wire format: {_one_line(exc)}", EXIT_USAGE) from None
    return dict(value)


def _value(text: str) -> Any:
    from ._codec import from_wire
    from ._errors import TupleSpaceError

    try:
        return from_wire(_json(text, "value"))
    except (TupleSpaceError, ValueError) as exc:
        raise _Failure(f"the value is not valid wire format: {_one_line(exc)}", EXIT_USAGE) from None


def _record_template(text: str) -> Any:
    from ._codec import template_from_wire
    from ._errors import TupleSpaceError
    from ._templates import RecordTemplate

    wire = _json(text, "record template")
    if not isinstance(wire, dict):
        raise _Failure(f"the record template must be a JSON object, not {_kind(wire)}", EXIT_USAGE)
    try:
        return RecordTemplate(template_from_wire([wire]).fields[0])
    except (TupleSpaceError, ValueError) as exc:
        raise _Failure(
            f"the record template is not valid wire format: {_one_line(exc)}", EXIT_USAGE
        ) from None


def _print_record(data: Any) -> None:
    from ._codec import to_wire

    _print_json({"address": str(data.address), "version": data.version, "fields": to_wire(data.fields)})


@record_app.command("create")
def record_create(
    space: SpaceName,
    path: Annotated[
        str, typer.Argument(help="The new record's path, e.g. sensors/kitchen.", show_default=False)
    ],
    fields_json: Annotated[
        str, typer.Argument(metavar="FIELDS_JSON", help='Its fields, e.g. \'{"temp": {"$float": "21.5"}}\'.')
    ],
    lease: Annotated[float | None, typer.Option(help="Seconds the record lives (default: forever).")] = None,
    credit: Annotated[str | None, typer.Option(help="Credit to fund it with, a decimal amount.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Create a record; print it as JSON ({"address", "version", "fields"})."""
    from ._errors import TupleSpaceError
    from ._values import Credit

    with _reporting("record create"):
        fields = _fields(fields_json)
        try:
            funds = None if credit is None else Credit(credit)
        except (TupleSpaceError, ValueError) as exc:
            raise _Failure(f"--credit: {_one_line(exc)}", EXIT_USAGE) from None
        with _space(url, token, space) as remote:
            _print_record(remote.create(path, fields, funds, _lease(lease)).snapshot())


@record_app.command("get")
def record_get(
    space: SpaceName,
    ref: RecordRef,
    tags: Annotated[
        list[str] | None, typer.Argument(help="Tags to print the values of (default: all).")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print a record as JSON, or with TAGS the values of those fields as a JSON array."""
    from ._codec import to_wire

    with _reporting("record get"), _space(url, token, space) as remote:
        rec = remote.record(ref)
        if tags:
            _print_json([to_wire(v) for v in rec.view(*tags)])
        else:
            _print_record(rec.snapshot())


@record_app.command("set")
def record_set(
    space: SpaceName,
    ref: RecordRef,
    tag: Annotated[str, typer.Argument(help="The field's tag.", show_default=False)],
    value_json: Annotated[
        str, typer.Argument(metavar="VALUE_JSON", help="Its new value, in the wire format.")
    ],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Set one field of a record; print the record's new version."""
    with _reporting("record set"):
        value = _value(value_json)
        with _space(url, token, space) as remote:
            _write(f"{remote.record(ref).set(tag, value)}\n")


@record_app.command("find")
def record_find(
    space: SpaceName,
    template_json: Annotated[
        str,
        typer.Argument(
            metavar="TEMPLATE_JSON", help='A record template, e.g. \'{"temp": {"$formal": "float"}}\'.'
        ),
    ],
    under: Annotated[str | None, typer.Option(help="Only records below this path.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many records.", min=1)] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print the records matching the template, one JSON line each."""
    with _reporting("record find"):
        template = _record_template(template_json)
        with _space(url, token, space) as remote:
            for rec in remote.find(template, under=under, limit=limit):
                _print_record(rec.snapshot())


@record_app.command("watch")
def record_watch(
    space: SpaceName,
    ref: Annotated[
        str | None, typer.Argument(help="The record to watch (default: every record).", show_default=False)
    ] = None,
    under: Annotated[str | None, typer.Option(help="Without REF: only records below this path.")] = None,
    since: Annotated[
        int | None, typer.Option(help="Begin after this event number (default: from now on).", min=0)
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print each change of a record (or of the records below a path), one JSON line
    ({"seq", "kind", "path", "tag", "value", "version", "time"}) each, until the record
    ends or the command is interrupted (Ctrl-C or SIGTERM: exit 0).

    Changes the server's log no longer holds are reported on stderr, and watching goes on.
    """
    from ._codec import to_wire

    with _reporting("record watch"):
        if ref is not None and under is not None:
            raise _Failure("give a record or --under, not both", EXIT_USAGE)
        _stop_on_sigterm()
        try:
            with _space(url, token, space) as remote:
                rec = remote.record(ref) if ref is not None else None

                def open_watch(after: int | None) -> Any:
                    if rec is not None:
                        return rec.watch(since=after)
                    return remote.watch_records(under, since=after)

                with _resumed(open_watch, "record watch", since) as changes:
                    _follow(changes, "record watch", lambda c: {**c._asdict(), "value": to_wire(c.value)})
        except KeyboardInterrupt:
            return


@record_app.command("destroy")
def record_destroy(
    space: SpaceName,
    ref: RecordRef,
    force: Annotated[
        bool, typer.Option(help="Also when records contain it (their fields become null).")
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Destroy a record."""
    with _reporting("record destroy"), _space(url, token, space) as remote:
        remote.record(ref).destroy(force=force)


# -- rules -------------------------------------------------------------------------------------

rules_app = typer.Typer(
    help="The rules of a space (docs/active.md): given and printed as JSON definitions "
    "(docs/http-api.md, Rules).",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")


@rules_app.command("list")
def rules_list(space: SpaceName, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Print each rule, by level then name, as one JSON line: its definition, "kind",
    "level", "fired", "failed", "state" ("active", or "stopped" for want of credit) and
    "last_error" (the message of its latest failure, or null)."""
    from ._rulewire import info_to_wire

    with _reporting("rules list"), _space(url, token, space) as remote:
        for info in remote.rules.list():
            last = None if info.last_error is None else str(info.last_error)
            _print_json({**info_to_wire(info), "last_error": last})


@rules_app.command("add")
def rules_add(
    space: SpaceName,
    rule_json: Annotated[
        str,
        typer.Argument(
            metavar="RULE_JSON",
            help='The rule, e.g. \'{"name": "hot", "template": ["reading", {"$formal": "float"}], '
            '"when": "t[1] > 30.0", "write": [["alarm", "t[1]"]]}\'.',
        ),
    ],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Add a rule; print it as JSON.  A rule that could trigger itself is refused,
    naming the cycle."""
    from ._errors import TupleSpaceError
    from ._rulewire import RULE_KEYS, definition_from_wire, info_to_wire
    from ._values import DEFAULT_LIMITS

    with _reporting("rules add"):
        wire = _json(rule_json, "rule")
        if not isinstance(wire, dict):
            raise _Failure(f"the rule must be a JSON object, not {_kind(wire)}", EXIT_USAGE)
        unknown = sorted(set(wire) - RULE_KEYS)
        if unknown:
            raise _Failure(f"the rule has an unknown field {unknown[0]!r}", EXIT_USAGE)
        try:
            name, args = definition_from_wire(wire, DEFAULT_LIMITS)
        except (TupleSpaceError, ValueError) as exc:
            raise _Failure(f"the rule is not valid: {_one_line(exc)}", EXIT_USAGE) from None
        with _space(url, token, space) as remote:
            info = remote.rules.add(name, principal=wire.get("principal"), **args)
            _print_json({**info_to_wire(info), "last_error": None})


@rules_app.command("remove")
def rules_remove(
    space: SpaceName,
    name: Annotated[str, typer.Argument(help="The rule's name.", show_default=False)],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Remove a rule."""
    with _reporting("rules remove"), _space(url, token, space) as remote:
        remote.rules.remove(name)


# -- tokens ------------------------------------------------------------------------------------

token_app = typer.Typer(
    help="The bearer tokens of a server started with --tokens (an admin token is needed).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


def _print_token(info: Any) -> None:
    _print_json({k: v for k, v in info._asdict().items() if v is not None})


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The token's name.", show_default=False)],
    space: Annotated[
        list[str] | None,
        typer.Option(
            "--space", help="SPACE=PERM,PERM... (repeatable; * for every space), e.g. jobs=read,take."
        ),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="An admin token: every permission everywhere.")
    ] = False,
    secret: Annotated[
        str | None, typer.Option("--secret", help="The token's secret (default: made up by the server).")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Create a token; print it as JSON with its secret ({"name", "admin", "spaces", "token"}):
    the only time the server shows the secret."""
    with _reporting("token create"):
        spaces: dict[str, set[str]] = {}
        for setting in space or ():
            name_, sep, perms = setting.partition("=")
            if not sep or not name_.strip():
                raise _Failure(f"--space is SPACE=PERM,PERM..., not {setting!r}", EXIT_USAGE)
            try:
                spaces[name_.strip()] = _permissions(perms)
            except typer.BadParameter as exc:
                raise _Failure(f"--space: {exc}", EXIT_USAGE) from None
        with _server(url, token) as server:
            made = server.tokens.create(name, {k: sorted(v) for k, v in spaces.items()}, admin, secret)
        _print_token(made)


@token_app.command("list")
def token_list(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Print the tokens, one JSON line each, without their secrets."""
    with _reporting("token list"), _server(url, token) as server:
        for info in server.tokens.list():
            _print_token(info)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.", show_default=False)],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Revoke a token: its next request is refused, its waiting requests and streams end."""
    with _reporting("token revoke"), _server(url, token) as server:
        server.tokens.revoke(name)


def main() -> None:
    """The entry point of the ``tuplespace`` command.  A usage error (a missing argument,
    an unknown option, a value out of range) is one line on stderr and status 2, as
    every other failure is one line."""
    from typer._click import exceptions as click  # typer carries its own click

    try:
        code = app(prog_name="tuplespace", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        sys.exit(exc.exit_code)  # the help was shown
    except click.ClickException as exc:
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "tuplespace"
        typer.echo(f"{where}: {' '.join(exc.format_message().split())} (see {where} --help)", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
