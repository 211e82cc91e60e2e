"""Requests as the service reads them, and each field of a body checked, before anything acts.

A transport (HTTP, a channel) hands each request to its handler as a
:class:`ServiceRequest`.  Values and templates are decoded by the wire codec
(``from_wire``, ``template_from_wire``); the other fields are checked here, so a
malformed request is refused whole, naming the offending field, and never changes a
space.  What is refused is an error of ``tuplespace._errors`` (its code and status
in ``ERRORS``), which each transport answers in its own way.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import orjson

from .._codec import from_wire, template_from_wire
from .._errors import InvalidTemplate, InvalidValue, ValueTooLarge, WireError
from .._httpapi import MAX_COUNTER
from .._lease import check_lease
from .._templates import ANY, Template
from .._values import Limits, Tuple
from ._errors import coded, placed

__all__ = [
    "NO_QUERY",
    "ServiceRequest",
    "ReceiveBody",
    "WatchDisconnect",
    "check_keys",
    "get_bool",
    "get_cursor",
    "get_lease",
    "get_limit",
    "get_template",
    "get_timeout",
    "get_tuple",
    "get_tuples",
    "parse_template_text",
    "query_params",
    "read_body",
]

# ``watch(callback)`` calls ``callback`` once the client of a request goes away (at
# once if it has), and returns what stops the watch.
WatchDisconnect = Callable[[Callable[[], object]], Callable[[], None]]
# ``receive(most)``: the body of a request and its size in bytes, once it has arrived;
# past ``most`` bytes (announced or arrived) none of it, and the size so far.
ReceiveBody = Callable[[int], Awaitable[tuple[bytes, int]]]

NO_QUERY: Sequence[tuple[str, str]] = ()


class ServiceRequest:
    """One request as a handler of the service reads it, whatever transport brought it.

    - ``authorization``: its credentials (``"Bearer <token>"``), None without any.
    - ``client``: the address of its client (None if unknown); a client without a token
      is counted under it.
    - ``receive_body``: its body (see :data:`ReceiveBody`), which :func:`read_body`
      parses once the caller is known: over HTTP it may still be arriving.
    - ``watch_disconnect``: how a request that waits watches for its client going away
      (see :data:`WatchDisconnect`).
    - ``query``: its query parameters (an event stream's options), as (name, value)
      pairs in the order they came (read them with :func:`query_params`).
    - ``last_event_id``: the last event its client saw, to resume a stream after.

    The path's parameters (the space, a transaction's id) are the handler's arguments.
    """

    __slots__ = ("authorization", "client", "last_event_id", "query", "receive_body", "watch_disconnect")

    def __init__(
        self,
        authorization: str | None,
        client: str | None,
        receive_body: ReceiveBody,
        watch_disconnect: WatchDisconnect,
        query: Sequence[tuple[str, str]] = NO_QUERY,
        last_event_id: str | None = None,
    ) -> None:
        self.authorization = authorization
        self.client = client
        self.receive_body = receive_body
        self.watch_disconnect = watch_disconnect
        self.query = query
        self.last_event_id = last_event_id


def query_params(pairs: Iterable[tuple[str, str]], names: Collection[str]) -> dict[str, str]:
    """The query parameters ``pairs`` by name, each one of ``names`` given at most
    once; InvalidValue (400 ``bad_request``) naming one that is not, or one given twice
    (whose values would otherwise be settled silently)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in names:
            raise coded(InvalidValue(f"unknown parameter {name!r}", name), "bad_request")
        if name in params:
            raise coded(InvalidValue(f"parameter {name!r} is given more than once", name), "bad_request")
        params[name] = value
    return params


async def read_body(request: ServiceRequest, max_body: int, *, optional: bool = False) -> dict[str, Any]:
    """The request's body: a JSON object of at most ``max_body`` bytes.

    An empty body is ``{}`` when ``optional``.  ValueTooLarge (413) past the size,
    WireError or InvalidValue (400) otherwise."""
    data, size = await request.receive_body(max_body)
    if size > max_body:
        raise _too_big(size, max_body)
    if not data.strip():
        if optional:
            return {}
        raise coded(InvalidValue("the body is a JSON object"), "bad_request")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"the body is not valid JSON: {exc}") from None
    if type(body) is not dict:
        raise coded(InvalidValue("the body is a JSON object"), "bad_request")
    return body


def _too_big(size: int, max_body: int) -> ValueTooLarge:
    message = f"the request body is {size} bytes or more, more than {max_body}"
    return ValueTooLarge(message, limit="max_body", maximum=max_body)


def check_keys(body: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...] = ()) -> None:
    for key in body:
        if key not in allowed:
            message = f"unknown field {key!r}; expected {', '.join(sorted(allowed))}"
            raise coded(InvalidValue(message, key), "bad_request")
    for key in required:
        if key not in body:
            raise coded(InvalidValue(f"{key} is required", key), "bad_request")


def get_tuple(body: dict[str, Any], key: str, limits: Limits) -> Tuple:
    obj = body[key]
    if type(obj) is not list:
        raise WireError("a tuple is a JSON array", key)
    try:
        t = from_wire(obj, limits)
    except (WireError, InvalidValue) as exc:
        raise placed(exc, key) from None
    assert isinstance(t, tuple)
    return t


def get_tuples(body: dict[str, Any], key: str, limits: Limits, max_batch: int) -> list[Tuple]:
    items = body[key]
    if type(items) is not list:
        raise coded(InvalidValue("a JSON array of tuples", key), "bad_request")
    if len(items) > max_batch:
        message = f"{len(items)} tuples, more than {max_batch} in one request"
        raise ValueTooLarge(message, key, limit="max_batch", maximum=max_batch)
    out = []
    for i, obj in enumerate(items):
        if type(obj) is not list:
            raise WireError("a tuple is a JSON array", f"{key}[{i}]")
        try:
            t = from_wire(obj, limits)
        except (WireError, InvalidValue) as exc:
            raise placed(exc, f"{key}[{i}]") from None
        assert isinstance(t, tuple)
        out.append(t)
    return out


def get_template(body: dict[str, Any], key: str, limits: Limits) -> Template:
    try:
        return template_from_wire(body[key], limits)
    except (WireError, InvalidValue, InvalidTemplate) as exc:
        raise placed(exc, key) from None
    except ValueError as exc:  # a library under a template field refused it (lxml: NUL in an XPath)
        raise InvalidTemplate(str(exc), key) from None


def parse_template_text(text: str, limits: Limits, field: str = "template") -> Any:
    """A subscription's template given as JSON text (a query parameter): a wire
    template, or ``{"$any": true}`` alone for every tuple (:data:`ANY`)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"the template is not valid JSON: {exc}", field) from None
    if obj == {"$any": True}:
        return ANY
    return get_template({field: obj}, field, limits)


def _seconds(value: object, key: str, *, positive: bool) -> float:
    if type(value) is not int and type(value) is not float:
        raise coded(InvalidValue(f"{key} is a number of seconds or null", key), "bad_request")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0):
        what = "a positive number of seconds" if positive else "a number of seconds >= 0"
        raise InvalidValue(f"{key} is {what} or null", key)
    return seconds


def get_lease(body: dict[str, Any], key: str = "lease") -> float | None:
    """A lease: absent or null is forever; else at least ``MIN_LEASE`` seconds."""
    value = body.get(key)
    return None if value is None else check_lease(_seconds(value, key, positive=True), key)


def get_timeout(body: dict[str, Any]) -> float | None:
    """A timeout: absent is 0 (answer at once), null is forever."""
    if "timeout" not in body:
        return 0.0
    value = body["timeout"]
    return None if value is None else _seconds(value, "timeout", positive=False)


def get_limit(body: dict[str, Any]) -> int | None:
    """The most items to answer: an integer from 0 to ``MAX_COUNTER``, or None (no limit)."""
    value = body.get("limit")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_COUNTER:
        raise coded(
            InvalidValue(f"limit is an integer from 0 to {MAX_COUNTER} or null", "limit"), "bad_request"
        )
    return value


def get_cursor(body: dict[str, Any]) -> int | None:
    """The ``cursor`` of a read that goes on where an earlier answer stopped (None: from
    the start).  A cursor is opaque to clients; it holds a tuple's place in the space."""
    value = body.get("cursor")
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= 20 or not (value.isascii() and value.isdigit()):
        message = "cursor is the cursor an earlier answer gave, or null"
        raise coded(InvalidValue(message, "cursor"), "bad_request")
    return int(value)


def get_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if type(value) is not bool:
        raise coded(InvalidValue(f"{key} is true or false", key), "bad_request")
    return value
