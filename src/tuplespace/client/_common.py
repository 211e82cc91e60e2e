"""What both flavours of the binding share: the URL of a space, checking arguments,
the wire form of requests and answers, errors, Server-Sent Events, the sockets to cut
when a space is closed, and the claims of its takes to confirm.  None of it does I/O
but :meth:`Confirmations.end`, the last resort of a space that ends without being closed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import httpx
import orjson

from .._codec import from_wire, template_to_wire, to_wire
from .._credit import to_credit
from .._errors import (
    ERRORS,
    CapabilityRevoked,
    EventsLost,
    InsufficientCredit,
    InvalidTemplate,
    InvalidValue,
    LimitReached,
    NotAllowed,
    RuleCycle,
    TupleSpaceError,
    Unreachable,
    UnsupportedType,
    ValueTooLarge,
    WireError,
    _PathError,
)
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, Event
from .._httpapi import OPERATION, OPERATIONS
from .._lease import AsyncLease, Lease, check_lease
from .._recordhandles import RecordData
from .._rules import RuleInfo
from .._rulewire import info_from_wire
from .._templates import RecordTemplate
from .._values import URI, Credit, Limits, Map, Tuple, Value, _key_path

__all__ = [
    "CONFIRM_DELAY",
    "AsyncLease",
    "Confirmations",
    "Lease",
    "ServerEvents",
    "Sockets",
    "SpaceInfo",
    "TokenInfo",
    "Tuple",
    "change_from_wire",
    "check_change_kinds",
    "check_port",
    "check_kinds",
    "credit_wire",
    "field_wire",
    "fill",
    "rule_from_wire",
    "check_lease",
    "check_limit",
    "check_max_pending",
    "check_since",
    "check_timeout",
    "error_code",
    "error_from_answer",
    "event_from_wire",
    "logger",
    "parse_url",
    "record_data_from_wire",
    "record_template_wire",
    "route",
    "shutdown",
    "space_path",
    "space_routes",
    "template_wire",
    "tuple_from_wire",
    "tuple_wire",
    "tuples_wire",
    "unreachable",
    "value_from_wire",
]

logger = logging.getLogger("tuplespace")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every HTTP client of a remote space uses, made once per process:
    httpx's default (certifi's certificates, or those ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``
    name when it is first needed).  Loading them takes tens of milliseconds, which a client
    made for each space opened would pay again."""
    return httpx.create_ssl_context()


CONFIRM_DELAY = 1.0
"""Seconds a confirmation waits for a take to ride on before it is sent alone."""

# What arrives from a server is decoded without the limits of a writer: the server
# has checked them, and its limits may be larger than the defaults.
_RECEIVED = Limits(max_fields=1 << 30, max_depth=1 << 10, max_bytes=1 << 40)


class SpaceInfo(NamedTuple):
    """A space of a server: its ``name``, its ``options`` (``order``, ``capacity``,
    ``event_retention``, ``store``, ...) and, where the server gave them, its
    ``statistics`` (those of :meth:`tuplespace.Space.statistics`)."""

    name: str
    options: dict[str, Any]
    statistics: dict[str, Any] | None = None


class TokenInfo(NamedTuple):
    """A bearer token of a server: its ``name``, whether it is ``admin``, its
    permissions by space (``spaces``), and its secret ``token`` — only in the answer
    to :meth:`AsyncTokens.create`, which is the one time the server shows it."""

    name: str
    admin: bool
    spaces: dict[str, list[str]]
    token: str | None = None


def check_port(url: str, parts: SplitResult) -> None:
    """Raise ``ValueError`` naming ``url`` (split into ``parts``) if its port is not a port number."""
    try:
        parts.port  # noqa: B018 (a property that checks)
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None


def parse_url(url: str) -> tuple[str, str]:
    """``http://host:port[/prefix]/spaces/<name>`` as the server's base URL and the space's name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    check_port(url, parts)
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: options of a remote space are keywords, not part of the URL")
    head, sep, name = parts.path.rstrip("/").rpartition("/spaces/")
    if not sep or not name or "/" in name:
        raise ValueError(f"{url!r} names no space: write http://host:port/spaces/<name>")
    base = urlunsplit((parts.scheme, parts.netloc, head, "", ""))
    return base, unquote(name)


def space_path(name: str) -> str:
    return "/spaces/" + quote(name, safe="")


def route(operation: str, /, **params: str | int) -> tuple[str, str]:
    """The method and the path of ``operation`` of the HTTP API (its row of the
    operation table, ``tuplespace._httpapi.OPERATIONS``), ``params`` quoted into the
    path."""
    op = OPERATION[operation]
    return op.method, fill(op.path, params)


def space_routes(name: str) -> dict[str, tuple[str, str]]:
    """The method and the path of each operation of the HTTP API on the space ``name``,
    by the operation's name; a path's other parameters are left to :func:`fill`."""
    space = quote(name, safe="")
    return {op.name: (op.method, op.path.replace("{space}", space)) for op in OPERATIONS}


def fill(path: str, params: Mapping[str, str | int]) -> str:
    """``path`` with each of its ``{name}`` the value of ``params`` of that name, quoted."""
    if not params:
        return path
    return path.format_map({key: quote(str(value), safe="") for key, value in params.items()})


# -- arguments -------------------------------------------------------------------------------
# Checked here as the embedded space checks them, so an invalid argument fails the same
# way whichever space it is given to (and NaN, which JSON cannot carry, never travels).


def check_timeout(timeout: float | None) -> float | None:
    """A timeout in seconds: None (forever) or a number >= 0.  One of
    ``threading.TIMEOUT_MAX`` seconds (292 years) or more is forever: no thread
    waits longer."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise InvalidValue(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}", "timeout")
    return None if timeout >= threading.TIMEOUT_MAX else timeout


def check_spin(spin: float) -> float:
    """How long a sync call may check for its answer before it sleeps: 0 to 0.01 s."""
    if isinstance(spin, bool) or not isinstance(spin, (int, float)) or not 0 <= spin <= 0.01:
        raise InvalidValue(f"spin must be a number of seconds from 0 to 0.01, got {spin!r}", "spin")
    return float(spin)


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidValue(f"limit must be an int >= 0 or None, got {limit!r}", "limit")
    return limit


def check_kinds(events: Iterable[str]) -> list[str]:
    kinds = frozenset({events} if isinstance(events, str) else events)
    if not kinds or not kinds <= EVENT_KINDS:
        raise InvalidValue(f"events must be a non-empty subset of {sorted(EVENT_KINDS)}, got {sorted(kinds)}")
    return sorted(kinds)


def check_since(since: int | None) -> int | None:
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise InvalidValue(f"since must be an event sequence number >= 0, got {since!r}", "since")
    return since


def check_max_pending(max_pending: int) -> int:
    if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
        raise InvalidValue(f"max_pending must be a positive int, got {max_pending!r}", "max_pending")
    return max_pending


# -- values ------------------------------------------------------------------------------------


def _prefixed(exc: _PathError, part: str) -> _PathError:
    exc.path = part + exc.path
    exc.args = (f"{exc.path}: {exc.reason}",)
    return exc


def tuple_wire(t: Iterable[Value]) -> list[Any]:
    """The wire form of a tuple to write; raises as the embedded space does, naming the field."""
    if not isinstance(t, (tuple, list)):
        raise UnsupportedType(f"a tuple is a tuple or list, not {type(t).__name__}")
    wire: list[Any] = to_wire(t)
    return wire


def tuples_wire(tuples: Iterable[Iterable[Value]]) -> list[list[Any]]:
    out = []
    for i, t in enumerate(tuples):
        try:
            out.append(tuple_wire(t))
        except InvalidValue as exc:
            raise _prefixed(exc, f"tuples[{i}]") from None
    return out


def template_wire(template: Any) -> list[Any]:
    """The wire form of a template; a :class:`~tuplespace.Pred` or a formal that is not a
    wire type raises :class:`InvalidTemplate`: it cannot travel."""
    return template_to_wire(template)


def tuple_from_wire(obj: Any) -> Tuple:
    t = from_wire(obj, _RECEIVED)
    if not isinstance(t, tuple):
        raise WireError(f"the server answered {type(t).__name__} where a tuple belongs")
    return t


def event_from_wire(data: dict[str, Any]) -> Event:
    return Event(data["seq"], data["kind"], tuple_from_wire(data["tuple"]), data["time"])


def value_from_wire(obj: Any) -> Value:
    return from_wire(obj, _RECEIVED)


def change_from_wire(data: dict[str, Any]) -> Change:
    return Change(
        data["seq"],
        data["kind"],
        data["path"],
        data["tag"],
        value_from_wire(data["value"]),
        data["version"],
        data["time"],
    )


def record_data_from_wire(data: dict[str, Any]) -> RecordData:
    """What a record held, from its wire form: its fields in the order of its tags."""
    fields = value_from_wire(data["fields"])
    assert isinstance(fields, Map)
    ordered = Map({tag: fields[tag] for tag in data["tags"]})
    address = value_from_wire(data["address"])
    assert isinstance(address, URI)
    out = RecordData.__new__(RecordData)
    object.__setattr__(out, "address", address)
    object.__setattr__(out, "fields", ordered)
    object.__setattr__(out, "version", data["version"])
    return out


def record_template_wire(template: Any) -> dict[str, Any]:
    """The wire form of a record template (a mapping from tags to template fields)."""
    if isinstance(template, RecordTemplate):
        template = template.fields
    if not isinstance(template, Mapping):
        raise InvalidTemplate(
            f"a record template is a mapping from tags to fields, not {type(template).__name__}"
        )
    try:
        wire: dict[str, Any] = template_to_wire((dict(template),))[0]
    except InvalidTemplate as exc:
        exc.path = exc.path.removeprefix("[0]")
        exc.args = (f"{exc.path}: {exc.reason}" if exc.path else exc.reason,)
        raise
    return wire


def field_wire(tag: str, value: Value) -> Any:
    """The wire form of the value of a record's field; raises as the embedded space
    does, naming the field (``["temp"]``)."""
    try:
        return to_wire(value)
    except InvalidValue as exc:
        raise _prefixed(exc, _key_path(tag) if isinstance(tag, str) else "") from None


def credit_wire(amount: Any, name: str) -> Any:
    """An amount of credit as it travels (None stays None); raises as the embedded space."""
    if amount is None:
        return None
    credit: Credit = to_credit(amount, name)
    return to_wire(credit)


def check_change_kinds(events: Iterable[str]) -> list[str]:
    kinds = frozenset({events} if isinstance(events, str) else events)
    if not kinds or not kinds <= CHANGE_KINDS:
        raise InvalidValue(
            f"events must be a non-empty subset of {sorted(CHANGE_KINDS)}, got {sorted(kinds)}"
        )
    return sorted(kinds)


# -- errors ------------------------------------------------------------------------------------

# The class of each code the server answers (events_lost comes in an event stream).
_CLASSES: dict[str, type[TupleSpaceError]] = {row.code: row.error for row in ERRORS}


def _path(field: Any) -> str:
    """The path of an embedded error from the ``field`` a server names: the tuple or
    template of a one-tuple request is the value itself (``tuple[2]`` is ``[2]``)."""
    if not isinstance(field, str):
        return ""
    for whole in ("tuple", "template"):
        if field == whole or field.startswith(whole + "["):
            return field[len(whole) :]
    return field


def error_from_answer(status: int, content: bytes, where: str) -> TupleSpaceError:
    """The exception of the embedded space for an error answered by the server.

    The JSON error ``code`` chooses the class; an unknown code (or an answer that is
    not a JSON error) gives :class:`TupleSpaceError` with the status and message.
    The code stays on the exception, as ``code`` (see :func:`error_code`).
    """
    try:
        error = orjson.loads(content)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = content[:200].decode("utf-8", "replace")
        return TupleSpaceError(f"{where}: the server answered {status}: {text}")
    exc = _error(code, message, error)
    exc.code = code
    return exc


def error_code(exc: BaseException) -> str | None:
    """The server's error code of an exception raised for its answer (None if none)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else None


def _error(code: str, message: str, error: dict[str, Any]) -> TupleSpaceError:
    if code == "events_lost":
        return EventsLost(_int(error.get("first_missing")), _int(error.get("oldest_available")))
    kind = _CLASSES.get(code)
    if kind is None:
        return TupleSpaceError(f"{message} ({code})")
    if issubclass(kind, ValueTooLarge):
        path = _path(error.get("field"))
        return kind(message, path, limit=str(error.get("limit")), maximum=_int(error.get("maximum")))
    if issubclass(kind, RuleCycle):
        cycle = error.get("cycle")
        return kind(message, [str(c) for c in cycle] if isinstance(cycle, list) else [])
    if issubclass(kind, _PathError):
        return kind(message, _path(error.get("field")))
    if issubclass(kind, LimitReached):
        return kind(message, limit=str(error.get("limit", code)), maximum=_int(error.get("maximum")))
    if issubclass(kind, NotAllowed):
        allowed = error.get("allowed")
        return kind(
            message,
            operation=str(error.get("operation")),
            allowed=frozenset(allowed) if isinstance(allowed, list) else frozenset(),
        )
    if issubclass(kind, CapabilityRevoked):
        return kind(message, expired=error.get("expired") is True)
    if issubclass(kind, InsufficientCredit):
        return kind(
            message,
            principal=str(error.get("principal")),
            needed=_credit(error.get("needed")),
            available=_credit(error.get("available")),
        )
    return kind(message)


def rule_from_wire(obj: dict[str, Any]) -> RuleInfo:
    """The :class:`~tuplespace.RuleInfo` of a rule the server answered, its
    ``last_error`` the exception of its code."""
    error = obj.get("last_error")
    last = None if error is None else _error(str(error["code"]), str(error["message"]), error)
    return info_from_wire(obj, last, _RECEIVED)


def _credit(value: Any) -> Credit:
    try:
        credit = from_wire(value)
    except (InvalidValue, WireError):
        return Credit(0)
    return credit if isinstance(credit, Credit) else Credit(0)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def unreachable(url: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"cannot reach the tuple space server for {url}: {type(exc).__name__}: {exc}")


# -- Server-Sent Events ------------------------------------------------------------------------


class ServerEvents:
    """Parses the lines of a Server-Sent Events stream.

    :meth:`feed` takes one line and returns ``(event, data)`` when the line completes
    a message, or ``("", text)`` for a comment between messages (the server's greeting
    and its keep-alives); ``last_id`` is the last ``id`` the stream gave.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.last_id: str | None = None

    def feed(self, line: str) -> tuple[str, str] | None:
        if not line:
            # The id counts once its message is whole: a stream cut in the middle of a
            # message resumes before it.
            if self._id is not None:
                self.last_id = self._id
            if not self._data:
                self._event = ""
                return None
            message = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return message
        if line.startswith(":"):
            return None if self._data or self._event else ("", line[1:].strip())
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and value.isdigit():
            self._id = value
        return None


# -- sockets -----------------------------------------------------------------------------------


class _Stream(Protocol):
    def get_extra_info(self, info: str) -> Any: ...


class Sockets:
    """The sockets a client has opened, to shut down when its space is closed: that
    wakes the calls waiting on them at once, in any thread, with a broken connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[Any] = []

    def add(self, stream: _Stream) -> None:
        self.add_socket(stream.get_extra_info("socket"))

    def add_socket(self, sock: Any) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets = [s for s in self._sockets if s.fileno() != -1]
            self._sockets.append(sock)

    def shutdown(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            shutdown(sock)


def shutdown(sock: Any) -> None:
    # OSError: already closed, or never connected; TypeError: a transport's socket
    # that cannot be shut down (uvloop's): its transport is closed with its client.
    with contextlib.suppress(OSError, TypeError):
        sock.shutdown(socket.SHUT_RDWR)


# -- claims --------------------------------------------------------------------------------------


class Confirmations:
    """The claims of takes whose answers have arrived, waiting to be confirmed.

    The space confirms them riding on its next take, alone after its confirm delay,
    or when it is closed.  A claim taken by :meth:`pop_all` is on its way until
    :meth:`settle` says its request is over.  :meth:`end` confirms every claim still
    waiting or on its way, with requests of its own over HTTP, when the space ends
    without being closed: dropped, at interpreter exit, or when the event loop of an
    async space shuts down.  Confirming a claim twice is harmless: the second time
    the server answers that the take is final.
    """

    def __init__(self, url: str, confirm: str, client: Callable[[], httpx.Client]) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._sending: dict[int, list[str]] = {}  # id of a list given by pop_all -> the list
        self._url = url
        self._confirm = confirm  # the path of confirm_claim on the space
        self._client = client

    def add(self, claim_id: str) -> None:
        with self._lock:
            self._ids.append(claim_id)

    def pop_all(self) -> list[str]:
        """The claims to confirm, now on their way (give the list to :meth:`settle`)."""
        with self._lock:
            ids, self._ids = self._ids, []
            if ids:
                self._sending[id(ids)] = ids
        return ids

    def settle(self, sent: list[str], back: list[str] | None = None) -> None:
        """The request that carried ``sent`` (a list from :meth:`pop_all`) is over;
        ``back`` are claims of it whose confirmation may not have reached the server."""
        if sent:
            with self._lock:
                del self._sending[id(sent)]
                if back:
                    self._ids[:0] = back

    def lost(self, claim_id: str) -> None:
        logger.warning(
            "claim %s ran out before it was confirmed: what it took went back to the space %s "
            "and may be taken again",
            claim_id,
            self._url,
        )

    def end(self) -> None:
        """Confirm, one plain HTTP request each, the claims waiting or on their way."""
        with self._lock:
            ids = self._ids + [claim_id for sent in self._sending.values() for claim_id in sent]
            self._ids = []
        if not ids:
            return
        try:
            with self._client() as client:
                for claim_id in ids:
                    response = client.post(fill(self._confirm, {"claim": claim_id}))
                    if response.status_code < 400:
                        continue
                    exc = error_from_answer(response.status_code, response.content, self._url)
                    if error_code(exc) == "unknown_claim":
                        self.lost(claim_id)
                    else:
                        logger.warning("confirming claim %s of %s failed: %s", claim_id, self._url, exc)
        except httpx.HTTPError as exc:
            logger.warning(
                "confirming the claims of %s failed (%s: %s): what they took returns to the space",
                self._url,
                type(exc).__name__,
                exc,
            )

    def end_soon(self) -> None:
        """:meth:`end`, for a finalizer: in a thread of its own when called on an event
        loop's thread (the garbage collector runs finalizers on whatever thread it
        interrupts, and a blocking request there would stall that loop, or wait forever
        on a server run by it), at once otherwise (at interpreter exit, say)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.end()
        else:
            threading.Thread(target=self.end, name="tuplespace-confirm").start()

    def __len__(self) -> int:
        return len(self._ids)


# -- leases --------------------------------------------------------------------------------------
