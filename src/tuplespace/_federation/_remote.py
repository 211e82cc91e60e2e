"""Handles on records of other nodes, reached over CoAP (``node.record(address)``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from .._errors import InvalidValue, LimitReached, TupleSpaceError
from .._values import URI, Map, Value
from ._cbor import CBOR, decode_cbor, encode_cbor
from ._endpoint import Address
from ._message import (
    ACCEPT,
    CONTENT_FORMAT,
    DELETE,
    GET,
    NOT_FOUND,
    OBSERVE,
    PUT,
    URI_PATH,
    URI_QUERY,
    Message,
    success,
)

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["RemoteRecord", "RemoteUpcall", "error_of", "http_status", "moved_to"]

log = logging.getLogger("tuplespace")
_CBOR = bytes((CBOR,))


def http_status(code: int) -> int:
    """``4.04`` as 404: the HTTP API's statuses and CoAP's codes share their numbers."""
    return (code >> 5) * 100 + (code & 31)


class RemoteRecord:
    """A handle on a record of a node, reached over CoAP; a value standing for its address.

    >>> remote = node.record("coap://127.0.0.1:5683/spaces/home/kitchen")   # doctest: +SKIP
    >>> remote.get("temp"); remote.set("temp", 22.0); remote.on_change(print) # doctest: +SKIP

    Raises what the peer's space raised (:class:`~tuplespace.RecordNotFound`,
    :class:`~tuplespace.NotAllowed`, …) and :class:`~tuplespace.Unreachable` when the
    peer does not answer within the node's ``timeout``.  A record that moved to another
    node is followed there: :attr:`address` is then its new address.
    """

    __slots__ = ("_address", "_location", "_node", "_target")

    def __init__(self, node: Node, address: str | URI) -> None:
        text = str(address)
        if urlsplit(text).scheme != "coap":
            raise InvalidValue(f"a remote record's address is a coap:// URI, got {text!r}")
        self._node = node
        self._address = URI(text)  # what the handle was made with: its identity
        self._location = self._address  # where the record is, once followed
        self._target: tuple[Address, list[tuple[int, bytes]]] | None = None  # resolved on first use

    @property
    def address(self) -> URI:
        """The record's address (where it moved to, once a request followed it)."""
        return self._location

    def __tuplespace_uri__(self) -> URI:
        return self._location

    def __repr__(self) -> str:
        return f"RemoteRecord({str(self._address)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRecord) and other._address == self._address

    def __hash__(self) -> int:
        return hash((RemoteRecord, self._address))

    def _uri(self, tag: str | None = None) -> str:
        return str(self._location) if tag is None else f"{self._location}/{tag}"

    def _options(self, tag: str | None, query: str | None = None) -> tuple[Address, list[tuple[int, bytes]]]:
        """The peer's address and the options naming the record (or its field ``tag``)."""
        if self._target is None:
            from ._node import peer_of

            self._target = self._node.call(peer_of(str(self._location)))
        peer, options = self._target
        options = list(options)
        if tag is not None:
            options.append((URI_PATH, tag.encode()))
        if query is not None:
            options.append((URI_QUERY, query.encode()))
        options.append((ACCEPT, _CBOR))
        return peer, options

    def _request(self, code: int, tag: str | None, payload: bytes = b"", query: str | None = None) -> Value:
        node = self._node
        for _ in range(MAX_REDIRECTIONS):
            peer, options = self._options(tag, query)
            if payload:
                options.append((CONTENT_FORMAT, _CBOR))
                options.sort(key=_number)
            response = node.endpoint.request_blocking(peer, code, options, payload, node.timeout)
            moved = moved_to(response)
            if moved is None:
                return _value(response, self._uri(tag))
            self._location, self._target = URI(moved), None
        raise TupleSpaceError(f"{self._address}: more than {MAX_REDIRECTIONS} redirections")

    def get(self, tag: str, default: Value = None) -> Value:
        """The value of the field ``tag`` (``default`` if the record has none), or of a
        computed tag (``$version``, ``$PK``, …)."""
        from ..client._common import error_code

        try:
            return self._request(GET, tag)
        except TupleSpaceError as exc:
            if error_code(exc) == "field_not_found":
                return default
            raise

    def view(self, *tags: str) -> tuple[Value, ...]:
        """The values of several fields at one instant, in the order asked."""
        fields = self._request(GET, None, query="tags=" + ",".join(tags))
        return tuple(fields[t] for t in tags)

    def all(self) -> Map:
        """Every stored field."""
        fields: Map = self._request(GET, None)
        return fields

    def set(self, tag: str, value: Value) -> int:
        """Set one field; returns the record's new ``$version``."""
        version: int = self._request(PUT, tag, encode_cbor(value))
        return version

    def destroy(self, force: bool = False) -> None:
        """Remove the record (see :meth:`tuplespace.Record.destroy`)."""
        self._request(DELETE, None, query="force=1" if force else None)

    def on_change(self, fn: Callable[[Value], object], tag: str | None = None) -> RemoteUpcall:
        """Observe the record (or its field ``tag``): call ``fn`` with its fields (a
        :class:`~tuplespace.Map`), or the field's value, after each change, in a thread
        of the upcall's own.  Observe (RFC 7641) sends states, not changes: a
        function slower than the changes is given the latest state, skipping those
        in between.  Raises :class:`~tuplespace.LimitReached` when the peer observes
        as many as it may already."""
        upcall = RemoteUpcall(fn)
        peer, options = self._options(tag)
        self._node.call(upcall.start(self._node, peer, options, self._uri(tag)))
        return upcall


MAX_REDIRECTIONS = 8
"""Moves a request follows (a record moved from node to node) before it gives up."""


def moved_to(response: Message) -> str | None:
    """The new address a 4.04 answer gives for a record that moved to another node."""
    if response.code != NOT_FOUND or not response.payload.startswith(b'{"error"'):
        return None
    try:
        moved = orjson.loads(response.payload)["error"].get("moved_to")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return moved if isinstance(moved, str) and moved.startswith("coap://") else None


def _number(option: tuple[int, bytes]) -> int:
    return option[0]


def error_of(status: int, body: bytes, where: str) -> TupleSpaceError:
    """The exception of the space for an error a node answered: its HTTP API ``status``
    and JSON error ``body`` (the error table of the HTTP binding decodes it)."""
    from ..client._common import error_from_answer

    return error_from_answer(status, body, where)


def _value(response: Message, uri: str) -> Value:
    if not success(response.code):
        raise error_of(http_status(response.code), response.payload, uri)
    if not response.payload:
        return None
    content_format = response.number(CONTENT_FORMAT)
    if content_format not in (None, CBOR):
        raise TupleSpaceError(f"{uri}: the peer answered content format {content_format}, not CBOR")
    return decode_cbor(response.payload)


class RemoteUpcall:
    """An observation of a remote record or field, calling a function with each new
    state in a thread of its own; :meth:`cancel` ends it."""

    def __init__(self, fn: Callable[[Value], object]) -> None:
        self._fn = fn
        self._cond = threading.Condition()
        self._pending: list[Value] = []  # the latest state not yet given to fn (at most one)
        self._active = True
        self._calls = self._errors = 0
        self._deregister: Callable[[], None] | None = None
        self._node: Node | None = None
        self._thread = threading.Thread(target=self._run, name="tuplespace-remote-upcall", daemon=True)

    async def start(self, node: Node, peer: Address, options: list[tuple[int, bytes]], uri: str) -> None:

        def notified(message: Message) -> None:
            try:
                value = _value(message, uri)
            except TupleSpaceError as exc:  # the record is gone
                log.info("the observation of %s ended: %s", uri, exc)
                self._ended(node)
                return
            with self._cond:
                self._pending[:] = [value]
                self._cond.notify()
            if message.number(OBSERVE) is None:  # the last notification
                self._ended(node)

        def lost(why: str) -> None:
            log.info("the observation of %s ended: %s", uri, why)
            self._ended(node)

        first, self._deregister = await node.endpoint.observe(peer, options, notified, lost)
        _value(first, uri)
        if first.number(OBSERVE) is None:
            raise LimitReached(
                f"{uri}: the peer did not accept the observation", limit="observers", maximum=0
            )
        self._node = node
        node.upcalls.add(self)
        self._thread.start()

    def _ended(self, node: Node) -> None:
        """On the node's loop: the observation is over."""
        node.upcalls.discard(self)
        self._end()

    def _end(self) -> None:
        with self._cond:
            self._active = False
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._active and not self._pending:
                    self._cond.wait()
                if not self._pending:
                    return
                value = self._pending.pop()
            try:
                self._fn(value)
                self._calls += 1
            except Exception:
                self._errors += 1
                log.exception("the remote upcall %r raised", self._fn)

    @property
    def active(self) -> bool:
        """Whether calls may still come."""
        return self._active

    def statistics(self) -> dict[str, int]:
        """``calls`` of the function and the ``errors`` it raised."""
        return {"calls": self._calls, "errors": self._errors}

    def cancel(self) -> None:
        """End the observation; returns once no call is under way."""
        node, deregister = self._node, self._deregister
        if node is not None:
            node.upcalls.discard(self)
            if deregister is not None and not node.loop.is_closed():
                node.loop.call_soon_threadsafe(deregister)
        self._end()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
