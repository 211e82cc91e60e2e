"""Handles on records of other nodes, reached over CoAP (``node.record(address)``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._errors import InvalidValue, LimitReached, TupleSpaceError
from .._values import URI, Map, Value
from ._cbor import CBOR, decode_cbor, encode_cbor

if TYPE_CHECKING:
    from aiocoap import Message
    from aiocoap.numbers.codes import Code

    from ._node import Node

__all__ = ["RemoteRecord", "RemoteUpcall"]

log = logging.getLogger("tuplespace")


def _status(code: Code) -> int:
    """``4.04`` as 404: the HTTP API's statuses and CoAP's codes share their numbers."""
    return int(code.dotted.replace(".", ""))


class RemoteRecord:
    """A handle on a record of a node, reached over CoAP; a value standing for its address.

    >>> remote = node.record("coap://127.0.0.1:5683/spaces/home/kitchen")   # doctest: +SKIP
    >>> remote.get("temp"); remote.set("temp", 22.0); remote.on_change(print) # doctest: +SKIP

    Raises what the peer's space raised (:class:`~tuplespace.RecordNotFound`,
    :class:`~tuplespace.NotAllowed`, …) and :class:`~tuplespace.Unreachable` when the
    peer does not answer within the node's ``timeout``.
    """

    __slots__ = ("_address", "_node")

    def __init__(self, node: Node, address: str | URI) -> None:
        text = str(address)
        if urlsplit(text).scheme != "coap":
            raise InvalidValue(f"a remote record's address is a coap:// URI, got {text!r}")
        self._node = node
        self._address = URI(text)

    @property
    def address(self) -> URI:
        """The record's address."""
        return self._address

    def __tuplespace_uri__(self) -> URI:
        return self._address

    def __repr__(self) -> str:
        return f"RemoteRecord({str(self._address)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRecord) and other._address == self._address

    def __hash__(self) -> int:
        return hash((RemoteRecord, self._address))

    def _uri(self, tag: str | None = None) -> str:
        return str(self._address) if tag is None else f"{self._address}/{tag}"

    def _request(self, method: str, uri: str, payload: bytes = b"", query: str | None = None) -> Value:
        from aiocoap import Message
        from aiocoap.numbers.codes import Code

        code = Code[method]
        message = Message(code=code, uri=uri, payload=payload, accept=CBOR)
        if payload:
            message.opt.content_format = CBOR
        if query is not None:
            message.opt.uri_query = (query,)
        response: Message = self._node.call(self._node.context.request(message).response)
        return _value(response, uri)

    def get(self, tag: str, default: Value = None) -> Value:
        """The value of the field ``tag`` (``default`` if the record has none), or of a
        computed tag (``$version``, ``$PK``, …)."""
        from ..client._common import error_code

        try:
            return self._request("GET", self._uri(tag))
        except TupleSpaceError as exc:
            if error_code(exc) == "field_not_found":
                return default
            raise

    def view(self, *tags: str) -> tuple[Value, ...]:
        """The values of several fields at one instant, in the order asked."""
        fields = self._request("GET", self._uri(), query="tags=" + ",".join(tags))
        return tuple(fields[t] for t in tags)

    def all(self) -> Map:
        """Every stored field."""
        fields: Map = self._request("GET", self._uri())
        return fields

    def set(self, tag: str, value: Value) -> int:
        """Set one field; returns the record's new ``$version``."""
        version: int = self._request("PUT", self._uri(tag), encode_cbor(value))
        return version

    def destroy(self, force: bool = False) -> None:
        """Remove the record (see :meth:`tuplespace.Record.destroy`)."""
        self._request("DELETE", self._uri(), query="force=1" if force else None)

    def on_change(self, fn: Callable[[Value], object], tag: str | None = None) -> RemoteUpcall:
        """Observe the record (or its field ``tag``): call ``fn`` with its fields (a
        :class:`~tuplespace.Map`), or the field's value, after each change, in a thread
        of the upcall's own.  Observe (RFC 7641) sends states, not changes: a
        function slower than the changes is given the latest state, skipping those
        in between.  Raises :class:`~tuplespace.LimitReached` when the peer observes
        as many as it may already."""
        upcall = RemoteUpcall(fn)
        uri = self._uri(tag)
        self._node.call(upcall.start(self._node, uri))
        return upcall


def _value(response: Message, uri: str) -> Value:
    if not response.code.is_successful():
        from ..client._common import error_from_answer

        raise error_from_answer(_status(response.code), response.payload, uri)
    if not response.payload:
        return None
    if response.opt.content_format not in (None, CBOR):
        raise TupleSpaceError(
            f"{uri}: the peer answered content format {response.opt.content_format}, not CBOR"
        )
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
        self._observation: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="tuplespace-remote-upcall", daemon=True)

    async def start(self, node: Node, uri: str) -> None:
        from aiocoap import Message
        from aiocoap.numbers.codes import Code

        request = Message(code=Code.GET, uri=uri, observe=0, accept=CBOR)
        pending = node.context.request(request)
        first = await pending.response
        _value(first, uri)
        if first.opt.observe is None:  # aiocoap has ended the observation already
            raise LimitReached(
                f"{uri}: the peer did not accept the observation", limit="observers", maximum=0
            )
        self._observation = pending.observation
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        self._task = self._loop.create_task(self._follow(uri))

    async def _follow(self, uri: str) -> None:
        try:
            async for response in self._observation:
                try:
                    value = _value(response, uri)
                except TupleSpaceError:
                    break
                with self._cond:
                    self._pending[:] = [value]
                    self._cond.notify()
        except Exception as exc:  # the observation ended: the record is gone, or the peer
            log.info("the observation of %s ended: %s", uri, exc)
        finally:  # cancelled too: by cancel() or when the node closes
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

    def _stop(self) -> None:
        if not self._observation.cancelled:
            self._observation.cancel()
        if self._task is not None:
            self._task.cancel()

    @property
    def active(self) -> bool:
        """Whether calls may still come."""
        return self._active

    def statistics(self) -> dict[str, int]:
        """``calls`` of the function and the ``errors`` it raised."""
        return {"calls": self._calls, "errors": self._errors}

    def cancel(self) -> None:
        """End the observation; returns once no call is under way."""
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop)
        self._end()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
