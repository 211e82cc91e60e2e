"""The records of a node's spaces as CoAP resources (the server side of docs/federation.md).

``/spaces/<space>/<path>`` is a record and ``/spaces/<space>/<path>/<tag>`` one of
its fields.  A request is decoded here, done by the embedded space, and its answer
or error encoded here: nothing below knows CoAP.  Errors answer with the CoAP code
of the HTTP API's status and the same JSON error body as the diagnostic payload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiocoap import Message
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource, PathCapable

from .._aio import AsyncSpace
from .._codec import decode, decode_template, encode
from .._errors import (
    CapabilityRevoked,
    InvalidValue,
    NotFound,
    RecordNotFound,
    Timeout,
    TupleSpaceError,
    WireError,
)
from .._events import Change
from .._record import Record
from .._space import Space
from .._upcall import Upcall
from .._values import URI, Map, Value
from ..server._errors import ApiError, api_error
from ._cbor import CBOR, JSON, decode_cbor, encode_cbor

if TYPE_CHECKING:
    from aiocoap.protocol import ServerObservation

__all__ = ["SpacesResource", "coap_code"]

log = logging.getLogger("tuplespace")

_CODES = {
    400: Code.BAD_REQUEST,
    401: Code.UNAUTHORIZED,
    402: Code.FORBIDDEN,  # CoAP's 4.02 is Bad Option; the body's code says insufficient_credit
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    406: Code.NOT_ACCEPTABLE,
    409: Code.CONFLICT,
    413: Code.REQUEST_ENTITY_TOO_LARGE,
    415: Code.UNSUPPORTED_CONTENT_FORMAT,
    429: Code.TOO_MANY_REQUESTS,
    503: Code.SERVICE_UNAVAILABLE,
}
_MISSING = object()
# Changes after which a field's observers are told, beside a set of that field.
_ENDS = frozenset({"create", "move", "destroy", "expire"})


def _nothing() -> None:
    pass


def coap_code(status: int) -> Code:
    """The CoAP response code for an HTTP API status."""
    return _CODES.get(status, Code.INTERNAL_SERVER_ERROR)


def _error(error: ApiError) -> Message:
    body = orjson.dumps(error.body())
    return Message(code=coap_code(error.status), payload=body, content_format=JSON)


class _Target:
    """What a request names: a record of a space, and maybe one of its fields."""

    __slots__ = ("key", "record", "space", "tag")

    def __init__(self, space: Space, record: Record, tag: str | None, key: tuple[str, ...]) -> None:
        self.space = space
        self.record = record
        self.tag = tag
        self.key = key  # the record's segments as asked: observers of one record share its watch


class _Watched:
    """One observed record: one upcall, the observations of the record and of its fields."""

    __slots__ = ("observations", "upcall")

    def __init__(self) -> None:
        self.observations: dict[ServerObservation, str | None] = {}
        self.upcall: Upcall | None = None

    def notify(self, change: Change) -> None:
        for observation, tag in list(self.observations.items()):
            if tag is None or change.tag == tag or change.kind in _ENDS:
                observation.trigger()


class SpacesResource(ObservableResource, PathCapable):  # type: ignore[misc]
    """``/spaces/…`` of a node: GET, PUT, POST, DELETE and Observe on records and fields.

    ``spaces`` maps the names of the node's spaces to them; ``max_observers`` bounds
    the observations of one record (its fields' included) and ``max_observed`` the
    records observed at once (each has an upcall thread).  A request payload larger
    than ``max_request_bytes`` is refused with 4.13, block-wise ones as soon as they
    announce or pass that size, and at most ``max_assemblies`` block-wise requests are
    assembled at once.
    """

    def __init__(
        self,
        spaces: dict[str, Space],
        *,
        max_observers: int,
        max_observed: int,
        max_request_bytes: int,
        max_assemblies: int,
    ) -> None:
        super().__init__()
        self._spaces = spaces
        self.base_uri = ""  # the node's, once its socket is bound
        self._max_observers = max_observers
        self._max_observed = max_observed
        self._max_request_bytes = max_request_bytes
        self._max_assemblies = max_assemblies
        self._watched: dict[tuple[str, ...], _Watched] = {}
        self._async: dict[str, AsyncSpace] = {}  # the spaces' faces on the node's loop
        # Observations refused by the space, until their first render answers the error.
        self._refused: dict[int, TupleSpaceError] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def statistics(self) -> dict[str, int]:
        """Observed records, and observations of records and fields."""
        return {
            "observed_records": len(self._watched),
            "observations": sum(len(w.observations) for w in self._watched.values()),
        }

    def close(self) -> None:
        """Stop the upcalls of every observed record."""
        for watched in self._watched.values():
            if watched.upcall is not None:
                watched.upcall.cancel()
        self._watched.clear()

    # -- aiocoap's interface --------------------------------------------------------------

    def get_resources_as_linkheader(self) -> Any:
        """The node's spaces, for ``/.well-known/core`` (RFC 6690)."""
        from aiocoap.util.linkformat import Link, LinkFormat

        return LinkFormat([Link("/" + name, rt="tuplespace.space", obs=None) for name in self._spaces])

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        block1 = request.opt.block1
        announced = request.opt.size1
        if announced is not None and announced > self._max_request_bytes:
            raise _TooLarge(self._max_request_bytes)
        if block1 is not None:
            if block1.start + len(request.payload) > self._max_request_bytes:
                raise _TooLarge(self._max_request_bytes)
            # aiocoap's spool keeps each assembly (a finished one too) for MAX_TRANSMIT_WAIT.
            assemblies = self._block1._assemblies._items
            if block1.block_number == 0 and len(assemblies) >= self._max_assemblies:
                raise coap_error.ServiceUnavailable("too many block-wise requests under way; retry later")
        elif len(request.payload) > self._max_request_bytes:
            raise _TooLarge(self._max_request_bytes)
        return True

    async def render(self, request: Message) -> Message:
        refused = self._refused.pop(id(request), None)
        if refused is not None:
            return _error(api_error(refused))
        try:
            accept = _format(request.opt.accept, Code.NOT_ACCEPTABLE)
            method = request.code
            if len(request.opt.uri_path) == 1:
                return await self._linda(request, accept)
            if method == Code.POST:
                return self._create(request)
            target = self._target(request.opt.uri_path)
            if method == Code.GET:
                return self._get(target, request, accept)
            if method == Code.PUT:
                return self._put(target, request, accept)
            if method == Code.DELETE:
                if target.tag is not None:
                    raise ApiError(405, "method_not_allowed", "a field is not deleted; set it to null")
                target.record.destroy(force=_query(request, ("force",)).get("force") == "1")
                return Message(code=Code.DELETED)
            raise ApiError(405, "method_not_allowed", f"{method} is not a method of records")
        except ApiError as exc:
            return _error(exc)
        except TupleSpaceError as exc:
            return _error(api_error(exc))

    async def add_observation(self, request: Message, serverobservation: ServerObservation) -> None:
        try:
            accepted = self._observe(request, serverobservation)
        except TupleSpaceError as exc:  # the handle may not watch: the render answers why
            self._refused[id(request)] = exc
            accepted = False
        if not accepted:
            # Refused: the answer goes without Observe (RFC 7641 §4.1).  aiocoap calls the
            # cancellation callback of every observation, so even a refused one has one.
            serverobservation.accept(_nothing)
            serverobservation.deregister()

    def _observe(self, request: Message, serverobservation: ServerObservation) -> bool:
        try:
            target = self._target(request.opt.uri_path)
        except (ApiError, TupleSpaceError):
            return False  # the render answers the error
        watched = self._watched.get(target.key)
        if watched is None:
            if len(self._watched) >= self._max_observed:
                log.warning("coap: %d records observed; answering without Observe", self._max_observed)
                return False
            watched = self._watched[target.key] = _Watched()
            loop = asyncio.get_running_loop()
            watched.upcall = target.record.on_change(
                lambda change: loop.call_soon_threadsafe(watched.notify, change)
            )
        elif len(watched.observations) >= self._max_observers:
            return False
        watched.observations[serverobservation] = target.tag

        def cancel() -> None:
            watched.observations.pop(serverobservation, None)
            if not watched.observations and self._watched.get(target.key) is watched:
                del self._watched[target.key]
                if watched.upcall is not None:
                    watched.upcall.cancel()

        serverobservation.accept(cancel)
        return True

    # -- requests ----------------------------------------------------------------------

    def _space(self, segments: tuple[str, ...]) -> tuple[Space, tuple[str, ...]]:
        if not segments:
            raise ApiError(404, "not_found", "name a space: /spaces/<space>/<path>")
        space = self._spaces.get(segments[0])
        if space is None:
            raise NotFound(f"this node has no space {segments[0]!r}")
        if len(segments) < 2:
            raise ApiError(404, "not_found", "name a record: /spaces/<space>/<path>[/<tag>]")
        return space, segments[1:]

    def _address(self, space_name: str, path: tuple[str, ...]) -> URI:
        return URI(f"{self.base_uri}spaces/{space_name}/{'/'.join(path)}")

    def _target(self, segments: tuple[str, ...]) -> _Target:
        """The record the path names, or (when no record has the whole path) the
        field named by its last segment of the record named by the others."""
        space, path = self._space(segments)
        try:
            return _Target(space, space.record(self._address(segments[0], path)), None, segments)
        except (RecordNotFound, InvalidValue, CapabilityRevoked):  # "kitchen/$version", "$cap/<token>/temp"
            if len(path) < 2:
                raise
            record = space.record(self._address(segments[0], path[:-1]))
            return _Target(space, record, path[-1], segments[:-1])

    def _get(self, target: _Target, request: Message, accept: int) -> Message:
        record = target.record
        if target.tag is not None:
            value = record.get(target.tag, _MISSING)
            if value is _MISSING:
                raise ApiError(404, "field_not_found", f"the record has no field {target.tag!r}", target.tag)
            return _answer(value, accept)
        tags = _query(request, ("tags",)).get("tags")
        if tags is None:
            return _answer(record.all(), accept)
        names = [t for t in tags.split(",") if t]
        return _answer(Map(dict(zip(names, record.view(*names), strict=True))), accept)

    def _put(self, target: _Target, request: Message, accept: int) -> Message:
        if target.tag is None:
            raise ApiError(405, "method_not_allowed", "PUT sets a field: /spaces/<space>/<path>/<tag>")
        value = _payload(request, target.space)
        return _answer(target.record.set(target.tag, value), accept, Code.CHANGED)

    async def _linda(self, request: Message, accept: int) -> Message:
        """``/spaces/<space>``: POST writes the tuple of the payload (``?lease=<s>``);
        FETCH with a template (JSON) reads, takes (``?op=take``) or counts
        (``?op=count``) its matches, waiting up to ``?timeout=<s>`` (none: as long as
        it takes; 0: not at all) and answering null when none came."""
        name = request.opt.uri_path[0]
        space = self._spaces.get(name)
        if space is None:
            raise NotFound(f"this node has no space {name!r}")
        aspace = self._async.get(name)
        if aspace is None:
            aspace = self._async[name] = AsyncSpace(space)
        if request.code == Code.POST:
            lease = _seconds(_query(request, ("lease",)), "lease")
            await aspace.write(_payload(request, space), lease)
            return Message(code=Code.CREATED)
        if request.code != Code.FETCH:
            raise ApiError(
                405, "method_not_allowed", "a space takes POST (write) and FETCH (read, take, count)"
            )
        if request.opt.content_format != JSON:
            raise ApiError(415, "content_format", "a template travels in the JSON wire format (50)")
        query = _query(request, ("op", "timeout"))
        template = decode_template(request.payload, space.limits)
        op = query.get("op", "read")
        if op == "count":
            return _answer(await aspace.count(template), accept)
        if op not in ("read", "take"):
            raise ApiError(400, "bad_request", f"op is read, take or count, not {op!r}", "op")
        timeout = _seconds(query, "timeout")
        try:
            if timeout == 0:
                found = await (aspace.try_take(template) if op == "take" else aspace.try_read(template))
            else:
                found = await (
                    aspace.take(template, timeout) if op == "take" else aspace.read(template, timeout)
                )
        except Timeout:
            found = None
        return _answer(found, accept)

    def _create(self, request: Message) -> Message:
        space, path = self._space(request.opt.uri_path)
        fields = _payload(request, space)
        if not isinstance(fields, Map):
            raise WireError("a record is created from a map of its fields")
        space.create("/".join(path), fields)
        return Message(code=Code.CREATED, location_path=("spaces", *request.opt.uri_path))


class _TooLarge(coap_error.ConstructionRenderableError):  # type: ignore[misc]
    """4.13 for a request payload past the node's bound, with its Size1 and the JSON
    error body (``value_too_large``, limit ``max_request_bytes``)."""

    code = Code.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        super().__init__(f"request payloads are at most {maximum} bytes")

    def to_message(self) -> Message:
        error = ApiError(
            413, "value_too_large", self.message, limit="max_request_bytes", maximum=self.maximum
        )
        message = _error(error)
        message.opt.size1 = self.maximum
        return message


def _format(option: int | None, refusal: Code) -> int:
    if option is None or option == CBOR:
        return CBOR
    if option == JSON:
        return JSON
    status = 406 if refusal == Code.NOT_ACCEPTABLE else 415
    raise ApiError(
        status, "content_format", f"content format {int(option)} is not served: use 60 (CBOR) or 50 (JSON)"
    )


def _query(request: Message, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in request.opt.uri_query:
        name, _, value = item.partition("=")
        if name not in allowed:
            raise ApiError(400, "bad_request", f"unknown query parameter {name!r}", name)
        out[name] = value
    return out


_DECODERS: dict[int, Callable[..., Any]] = {CBOR: decode_cbor, JSON: decode}


def _seconds(query: dict[str, str], name: str) -> float | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ApiError(400, "invalid_value", f"{name} is a number of seconds, not {text!r}", name) from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ApiError(400, "invalid_value", f"{name} is a finite number of seconds >= 0", name)
    return seconds


def _payload(request: Message, space: Space) -> Value:
    content_format = _format(request.opt.content_format, Code.UNSUPPORTED_CONTENT_FORMAT)
    return _DECODERS[content_format](request.payload, space.limits)


def _answer(value: Value, accept: int, code: Code = Code.CONTENT) -> Message:
    payload = encode_cbor(value) if accept == CBOR else encode(value)
    return Message(code=code, payload=payload, content_format=accept)
