"""Handles on records of other nodes, reached over CoAP (``node.record(address)``)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson

from .._capabilities import READ_ONLY
from .._capabilities import operations as granted
from .._errors import InvalidValue, LimitReached, TupleSpaceError, Unreachable
from .._names import check_tag
from .._recordhandles import FULL_OPERATIONS, RecordData, check_revocable
from .._values import URI, Map, Value
from ._cbor import CBOR, decode_cbor, encode_cbor
from ._endpoint import Address, Endpoint, _bounded
from ._message import (
    ACCEPT,
    CONTENT_FORMAT,
    DELETE,
    GET,
    NOT_FOUND,
    OBSERVE,
    POST,
    PUT,
    URI_PATH,
    URI_QUERY,
    Message,
    success,
)

if TYPE_CHECKING:
    from .._events import Change
    from ._subscribe import AsyncCoapSubscription, CoapSubscription, Observed, _Stream

__all__ = [
    "CREDIT",
    "RULES",
    "AsyncHost",
    "AsyncRemoteRecord",
    "Host",
    "data_of",
    "RemoteRecord",
    "RemoteUpcall",
    "error_of",
    "http_status",
    "moved_to",
    "record_id",
]

log = logging.getLogger("tuplespace")
_CAP = "/$cap/"  # in the address of a capability, before its token
RULES = "$rules"
"""The segment below a space's name of the resource of its rules (``/spaces/<space>/$rules``)."""
CREDIT = "$credit"
"""The segment below a space's name of the resource of its accounts (``/spaces/<space>/$credit``)."""
_CBOR = bytes((CBOR,))
_T = TypeVar("_T")


def _space_of(address: str) -> str:
    """``coap://host/spaces/<space>`` of a record's address."""
    head, _, below = address.partition("/spaces/")
    return f"{head}/spaces/{below.partition('/')[0]}"


def http_status(code: int) -> int:
    """``4.04`` as 404: the HTTP API's statuses and CoAP's codes share their numbers."""
    return (code >> 5) * 100 + (code & 31)


class Host(Protocol):
    """What a remote record handle sends its requests through: a :class:`~tuplespace.Node`,
    or a space reached over CoAP (``ts.connect("coap://…")``)."""

    timeout: float

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def upcalls(self) -> set[RemoteUpcall]: ...

    @property
    def streams(self) -> set[_Stream]: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def call(self, coroutine: Coroutine[Any, Any, _T]) -> _T: ...

    def check_open(self) -> None: ...


class AsyncHost(Protocol):
    """What an :class:`AsyncRemoteRecord` sends its requests through, on the caller's loop."""

    timeout: float

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def streams(self) -> set[_Stream]: ...

    def check_open(self) -> None: ...


class _Ask(NamedTuple):
    """One request to a record (or its field ``tag``): its method, payload and query."""

    code: int
    tag: str | None = None
    payload: bytes = b""
    query: tuple[str, ...] = ()


def _view(tags: tuple[str, ...]) -> _Ask:
    return _Ask(GET, None, b"", ("tags=" + ",".join(tags),))


def _set(tag: str, value: Value) -> _Ask:
    """A set, refused as the embedded space refuses it: a bad tag, a value naming its field."""
    from ..client._common import _prefixed

    check_tag(tag)
    try:
        return _Ask(PUT, tag, encode_cbor(value))
    except InvalidValue as exc:
        raise _prefixed(exc, f'["{tag}"]') from None


def _call(tag: str, args: tuple[Value, ...], principal: str | None) -> _Ask:
    """A call of the method held in the field ``tag``, its arguments an array (CBOR)."""
    from ..client._common import _prefixed

    check_tag(tag)
    try:
        payload = encode_cbor(args)
    except InvalidValue as exc:  # named as the embedded space names it: args[i]
        raise _prefixed(exc, "args") from None
    query = ("op=call",) if principal is None else ("op=call", f"principal={principal}")
    return _Ask(POST, tag, payload, query)


def _destroy(force: bool) -> _Ask:
    return _Ask(DELETE, None, b"", ("force=1",) if force else ())


def _paid(query: list[str], credit: Any, lease: float | None, principal: str | None) -> _Ask:
    """A POST on the record with ``query``, funded with ``credit`` or ``lease`` by
    ``principal`` (the space's default account when None)."""
    if credit is not None:
        query.append(f"credit={credit}")
    query.extend(_seconds("lease", lease))
    if principal is not None:
        query.append(f"principal={principal}")
    return _Ask(POST, None, b"", tuple(query))


def _refresh(credit: Any, lease: float | None, principal: str | None) -> _Ask:
    return _paid(["op=refresh"], credit, lease, principal)


def data_of(answer: Value) -> RecordData | None:
    """What a record held, from a node's answer (see ``record_data``; None: no record)."""
    if answer is None:
        return None
    if not isinstance(answer, Map) or not isinstance(answer.get("fields"), Map):
        raise TupleSpaceError(f"the node answered {answer!r} where what a record holds belongs")
    fields: Map = answer["fields"]
    return RecordData(answer["address"], Map({tag: fields[tag] for tag in answer["tags"]}), answer["version"])


def _snapshot(answer: Value) -> RecordData:
    data = data_of(answer)
    if data is None:
        raise TupleSpaceError("the node answered null where a record's snapshot belongs")
    return data


_SNAPSHOT = _Ask(GET, None, b"", ("snapshot",))
_HANDLE = _Ask(GET, None, b"", ("handle",))
_READ_ONLY = _Ask(POST, None, b"", ("op=read_only",))


def _operations(answer: Value) -> frozenset[str]:
    """What a handle allows, from the node's answer to ``?handle``."""
    if not isinstance(answer, Map) or not isinstance(answer.get("operations"), tuple):
        raise TupleSpaceError(f"the node answered {answer!r} where what a handle allows belongs")
    return frozenset(answer["operations"])


def _capability(ops: frozenset[str], lease: float | None) -> _Ask:
    return _Ask(POST, None, b"", (f"capability={','.join(sorted(ops))}", *_seconds("lease", lease)))


def _clone(path: str, credit: Any, lease: float | None, principal: str | None) -> _Ask:
    return _paid(["op=clone", f"to={path}"], credit, lease, principal)


def _move(path: str, redirect_lease: float | None) -> _Ask:
    from ..client._common import check_lease

    redirect = 0 if redirect_lease == 0 else check_lease(redirect_lease, "redirect_lease")
    text = "null" if redirect is None else repr(redirect)  # null: as long as the record lives
    return _Ask(POST, None, b"", ("op=move", f"to={path}", f"redirect_lease={text}"))


def _seconds(name: str, seconds: float | None) -> tuple[str, ...]:
    """``name=<seconds>`` for a lease given (checked), nothing for None."""
    from ..client._common import check_lease

    checked = check_lease(seconds, name)
    return () if checked is None else (f"{name}={checked!r}",)


def record_id(answer: Value) -> int:
    """A record's number, as a node answered it."""
    if type(answer) is not int:
        raise TupleSpaceError(f"the node answered {answer!r} where a record's number belongs")
    return answer


def _address_answered(answer: Value) -> URI:
    if type(answer) is not URI:
        raise TupleSpaceError(f"the node answered {answer!r} where an address belongs")
    return answer


def _missing_field(exc: TupleSpaceError) -> bool:
    from ..client._common import error_code

    return error_code(exc) == "field_not_found"


class _Handle:
    """What both faces of a remote record share: its address, where it is once followed,
    and how a request names it and its answer is read."""

    __slots__ = ("_address", "_checked", "_id", "_location", "_operations", "_owner", "_target")

    def __init__(
        self, address: str | URI, operations: frozenset[str] | None, owner: bool, rid: int | None = None
    ) -> None:
        text = str(address)
        if urlsplit(text).scheme != "coap":
            raise InvalidValue(f"a remote record's address is a coap:// URI, got {text!r}")
        self._address = URI(text)  # what the handle was made with
        self._id = rid  # the record's number in its space there: with the address, its identity
        self._checked = rid  # the number its requests ask the node to check (None: the address only)
        self._location = self._address  # where the record is, once followed
        self._target: tuple[Address, list[tuple[int, bytes]]] | None = None  # resolved on first use
        self._operations = operations  # what it allows (None: not asked yet)
        self._owner = owner  # made by capability() or read_only(): it may revoke itself

    @property
    def is_capability(self) -> bool:
        """Whether the handle is a capability (its address one of ``…/$cap/<token>``)."""
        return _CAP in str(self._address)

    def _revocation(self) -> tuple[str, _Ask]:
        """The address of the capability's space and the request that revokes it there
        (see :meth:`RemoteRecord.revoke`)."""
        check_revocable(self.is_capability, self._owner, self._operations or frozenset())
        space, token = str(self._address).rsplit(_CAP, 1)
        return space, _Ask(POST, None, b"", ("op=revoke", f"capability={token}"))

    @property
    def address(self) -> URI:
        """The record's address (where it moved to, once a request followed it)."""
        return self._location

    def __tuplespace_uri__(self) -> URI:
        return self._location

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._address)!r})"

    def _key(self) -> tuple[str, int | None]:
        """What the handle names: the record numbered :attr:`_id` of the space of the
        address it was made with, or that address when the node did not say its number."""
        if self._id is None:
            return str(self._address), None
        return _space_of(str(self._address)), self._id

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def _known(self, answer: Value) -> frozenset[str]:
        """What a handle allows, from the node's answer to ``?handle``, and the number
        of the record it names, which its requests name from then on (its identity,
        :meth:`_key`, stays what it was made with: see ``identified``)."""
        operations = _operations(answer)
        rid = answer.get("id") if isinstance(answer, Map) else None
        if type(rid) is int:
            self._checked = rid
        return operations

    def _uri(self, tag: str | None = None) -> str:
        return str(self._location) if tag is None else f"{self._location}/{tag}"

    def _request(self, ask: _Ask) -> tuple[Address, list[tuple[int, bytes]]]:
        """The peer's address and the options of ``ask`` (the record's path resolved,
        its number to check there when known)."""
        assert self._target is not None
        if self._checked is not None:
            ask = ask._replace(query=(*ask.query, f"id={self._checked}"))
        return _request(self._target, ask)

    def _answer(self, response: Message, ask: _Ask) -> tuple[bool, Value]:
        """Whether ``response`` is the answer (and its value) or a redirection, which
        the handle follows from now on."""
        moved = moved_to(response)
        if moved is None:
            return True, _value(response, self._uri(ask.tag))
        self._follow(URI(moved))
        return False, None

    def _moved(self, answer: Value) -> None:
        """The record moved to the address the node answered: the handle follows it."""
        self._follow(_address_answered(answer))

    def _follow(self, location: URI) -> None:
        """Name the record at ``location`` from now on: in the same space, the same
        record number; in another space (another node), its address there."""
        if _space_of(str(location)) != _space_of(str(self._location)):
            self._checked = None
        self._location, self._target = location, None

    def _watched(self) -> Observed:
        """What a watch of the record observes (see :meth:`RemoteRecord.watch`)."""
        from ._subscribe import RECORD_ENDS, Observed

        query = ("op=watch",) if self._checked is None else ("op=watch", f"id={self._checked}")
        return Observed(None, [], str(self._location), query, ends=RECORD_ENDS)

    def _too_far(self) -> TupleSpaceError:
        return TupleSpaceError(f"{self._address}: more than {MAX_REDIRECTIONS} redirections")


class RemoteRecord(_Handle):
    """A handle on a record of a node, reached over CoAP; a value standing for its address.

    >>> remote = node.record("coap://127.0.0.1:5683/spaces/home/kitchen")   # doctest: +SKIP
    >>> remote.get("temp"); remote.set("temp", 22.0); remote.on_change(print) # doctest: +SKIP

    Raises what the peer's space raised (:class:`~tuplespace.RecordNotFound`,
    :class:`~tuplespace.NotAllowed`, …) and :class:`~tuplespace.Unreachable` when the
    peer does not answer within the node's ``timeout``.  A record that moved to another
    node is followed there: :attr:`address` is then its new address.  The handles of
    ``ts.connect("coap://…")`` are these too, their requests sent by that space.
    """

    __slots__ = ("_node",)

    def __init__(
        self,
        node: Host,
        address: str | URI,
        operations: frozenset[str] | None = None,
        owner: bool = False,
        rid: int | None = None,
    ) -> None:
        super().__init__(address, operations, owner, rid)
        self._node = node

    @property
    def operations(self) -> frozenset[str]:
        """What this handle allows, as the node says (see :attr:`tuplespace.Record.operations`):
        asked of the node once when the handle was not made knowing it."""
        if self._operations is None:
            return self.ask()
        return self._operations

    def ask(self) -> frozenset[str]:
        """Ask the node what this handle allows, now: raises
        :class:`~tuplespace.RecordNotFound` (or :class:`~tuplespace.CapabilityRevoked`)
        when it names no record."""
        self._operations = self._known(self._do(_HANDLE))
        return self._operations

    def identified(self) -> RemoteRecord:
        """A handle on the record where this one found it, named by its number there
        (known once asked, :meth:`ask`): equal to the other handles on that record."""
        return RemoteRecord(self._node, self._location, self._operations, self._owner, self._checked)

    def _resolved(self, ask: _Ask) -> tuple[Address, list[tuple[int, bytes]]]:
        if self._target is None:
            from ._node import peer_of

            self._target = self._node.call(peer_of(str(self._location)))
        return self._request(ask)

    def _do(self, ask: _Ask) -> Value:
        node = self._node
        for _ in range(MAX_REDIRECTIONS):
            node.check_open()
            peer, options = self._resolved(ask)
            try:
                response = node.endpoint.request_blocking(peer, ask.code, options, ask.payload, node.timeout)
            except Unreachable:
                node.check_open()  # closed meanwhile
                raise
            done, value = self._answer(response, ask)
            if done:
                return value
        raise self._too_far()

    def get(self, tag: str, default: Value = None) -> Value:
        """The value of the field ``tag`` (``default`` if the record has none), or of a
        computed tag (``$version``, ``$PK``, …)."""
        try:
            return self._do(_Ask(GET, tag))
        except TupleSpaceError as exc:
            if _missing_field(exc):
                return default
            raise

    def view(self, *tags: str) -> tuple[Value, ...]:
        """The values of several fields at one instant, in the order asked."""
        fields = self._do(_view(tags))
        return tuple(fields[t] for t in tags)

    def all(self) -> Map:
        """Every stored field."""
        fields: Map = self._do(_Ask(GET))
        return fields

    def tags(self) -> list[str]:
        """The stored tags, in the order they were first set."""
        return list(self.snapshot().fields)

    def snapshot(self) -> RecordData:
        """The record's address, fields (in the order of their tags) and version, read
        at one instant."""
        return _snapshot(self._do(_SNAPSHOT))

    def set(self, tag: str, value: Value) -> int:
        """Set one field; returns the record's new ``$version``."""
        version: int = self._do(_set(tag, value))
        return version

    def call(self, tag: str, *args: Value, principal: str | None = None) -> Value:
        """Run the method held in the field ``tag`` with ``args`` on the record's node,
        in its sandbox (see :meth:`tuplespace.Record.call`), and return its result.
        Its steps are paid by the space's default account, or by ``principal``, which
        only a peer the node allows ``all`` may name."""
        return self._do(_call(tag, args, principal))

    def refresh(
        self, credit: Any = None, lease: float | None = None, *, principal: str | None = None
    ) -> float | None:
        """Refinance the record (see :meth:`tuplespace.Record.refresh`): add ``credit``
        or give it ``lease`` more seconds, paid by the space's default account or by
        ``principal``, which only a peer the node allows ``all`` may name; returns its
        expiry time."""
        expires: float | None = self._do(_refresh(credit, lease, principal))
        return expires

    def clone(
        self, path: str, credit: Any = None, lease: float | None = None, *, principal: str | None = None
    ) -> RemoteRecord:
        """A new record at ``path`` of the record's space with its fields (see
        :meth:`tuplespace.Record.clone`), funded as :meth:`refresh` is."""
        clone = RemoteRecord(self._node, _address_answered(self._do(_clone(path, credit, lease, principal))))
        clone.ask()  # its number
        return clone.identified()

    def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """Give the record the new ``path`` in its space, or move it to another node
        (``path`` a ``coap://`` address there); see :meth:`tuplespace.Record.move`.  The
        handle follows it: :attr:`address` is its new address."""
        self._moved(self._do(_move(path, redirect_lease)))

    def destroy(self, force: bool = False) -> None:
        """Remove the record (see :meth:`tuplespace.Record.destroy`)."""
        self._do(_destroy(force))

    def read_only(self) -> RemoteRecord:
        """The record's read-only handle (see :meth:`tuplespace.Record.read_only`)."""
        return RemoteRecord(self._node, _address_answered(self._do(_READ_ONLY)), READ_ONLY, owner=True)

    def capability(self, operations: Iterable[str], lease: float | None = None) -> RemoteRecord:
        """A new capability on the record, allowing only ``operations`` for ``lease``
        seconds (see :meth:`tuplespace.Record.capability`)."""
        ops = granted(operations)
        address = _address_answered(self._do(_capability(ops, lease)))
        return RemoteRecord(self._node, address, ops, owner=True)

    def revoke(self) -> None:
        """End this capability, made by :meth:`capability` or :meth:`read_only` (see
        :meth:`tuplespace.Record.revoke`); needs ``write`` on the node's space."""
        from ._node import peer_of

        space, ask = self._revocation()
        node = self._node
        node.check_open()
        peer, options = _request(node.call(peer_of(space)), ask)
        _value(node.endpoint.request_blocking(peer, ask.code, options, ask.payload, node.timeout), space)

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> CoapSubscription[Change]:
        """The record's changes, in order (see :meth:`tuplespace.Record.watch`): every
        set, and its move, destruction or expiry, after which it ends.  They come as
        the events of a space's subscription do (docs/federation.md, "Subscriptions over
        Observe"): resumed from the node's log after a notification went missing, at
        most ``max_pending`` waiting here.  After a move to another node it goes on
        there, from the record's arrival."""
        from ._subscribe import CoapSubscription, stream_arguments

        node = self._node
        node.check_open()
        made = stream_arguments(self._watched(), since, max_pending, lease)
        seconds = made.pop("lease")
        watch: CoapSubscription[Change] = CoapSubscription(node, node.loop, **made)
        node.call(watch.begin(seconds))
        return watch

    def on_change(self, fn: Callable[[Value], object], tag: str | None = None) -> RemoteUpcall:
        """Observe the record (or its field ``tag``): call ``fn`` with its fields (a
        :class:`~tuplespace.Map`), or the field's value, after each change, in a thread
        of the upcall's own.  Observe (RFC 7641) sends states, not changes: a
        function slower than the changes is given the latest state, skipping those
        in between.  Raises :class:`~tuplespace.LimitReached` when the peer observes
        as many as it may already."""
        upcall = RemoteUpcall(fn)
        ask = _Ask(GET, tag)

        async def where() -> tuple[Address, list[tuple[int, bytes]], str]:
            from ._node import peer_of

            if self._target is None:
                self._target = await peer_of(str(self._location))
            return (*self._request(ask), self._uri(tag))

        self._node.call(upcall.start(self._node, where, self._follow))
        return upcall


class AsyncRemoteRecord(_Handle):
    """:class:`RemoteRecord` for asyncio: the handles of ``ts.connect_async("coap://…")``,
    the same methods awaited on the caller's event loop (``on_change`` aside)."""

    __slots__ = ("_host",)

    def __init__(
        self,
        host: AsyncHost,
        address: str | URI,
        operations: frozenset[str] = FULL_OPERATIONS,
        owner: bool = False,
        rid: int | None = None,
    ) -> None:
        super().__init__(address, operations, owner, rid)
        self._host = host

    @property
    def operations(self) -> frozenset[str]:
        """See :attr:`RemoteRecord.operations`: known when the handle was made, or
        since :meth:`ask`."""
        return self._operations or frozenset()

    async def ask(self) -> frozenset[str]:
        """See :meth:`RemoteRecord.ask`."""
        self._operations = self._known(await self._do(_HANDLE))
        return self._operations

    def identified(self) -> AsyncRemoteRecord:
        """See :meth:`RemoteRecord.identified`."""
        operations = FULL_OPERATIONS if self._operations is None else self._operations
        return AsyncRemoteRecord(self._host, self._location, operations, self._owner, self._checked)

    async def _do(self, ask: _Ask) -> Value:
        from ._node import peer_of

        host = self._host
        for _ in range(MAX_REDIRECTIONS):
            host.check_open()
            if self._target is None:
                self._target = await peer_of(str(self._location))
            peer, options = self._request(ask)
            try:
                response = await _bounded(
                    host.endpoint.request(peer, ask.code, options, ask.payload), host.timeout
                )
            except Unreachable:
                host.check_open()  # closed meanwhile
                raise
            done, value = self._answer(response, ask)
            if done:
                return value
        raise self._too_far()

    async def get(self, tag: str, default: Value = None) -> Value:
        """See :meth:`RemoteRecord.get`."""
        try:
            return await self._do(_Ask(GET, tag))
        except TupleSpaceError as exc:
            if _missing_field(exc):
                return default
            raise

    async def view(self, *tags: str) -> tuple[Value, ...]:
        """See :meth:`RemoteRecord.view`."""
        fields = await self._do(_view(tags))
        return tuple(fields[t] for t in tags)

    async def all(self) -> Map:
        """See :meth:`RemoteRecord.all`."""
        fields: Map = await self._do(_Ask(GET))
        return fields

    async def tags(self) -> list[str]:
        """See :meth:`RemoteRecord.tags`."""
        return list((await self.snapshot()).fields)

    async def snapshot(self) -> RecordData:
        """See :meth:`RemoteRecord.snapshot`."""
        return _snapshot(await self._do(_SNAPSHOT))

    async def set(self, tag: str, value: Value) -> int:
        """See :meth:`RemoteRecord.set`."""
        version: int = await self._do(_set(tag, value))
        return version

    async def call(self, tag: str, *args: Value, principal: str | None = None) -> Value:
        """See :meth:`RemoteRecord.call`."""
        return await self._do(_call(tag, args, principal))

    async def refresh(
        self, credit: Any = None, lease: float | None = None, *, principal: str | None = None
    ) -> float | None:
        """See :meth:`RemoteRecord.refresh`."""
        expires: float | None = await self._do(_refresh(credit, lease, principal))
        return expires

    async def clone(
        self, path: str, credit: Any = None, lease: float | None = None, *, principal: str | None = None
    ) -> AsyncRemoteRecord:
        """See :meth:`RemoteRecord.clone`."""
        answer = await self._do(_clone(path, credit, lease, principal))
        clone = AsyncRemoteRecord(self._host, _address_answered(answer))
        await clone.ask()  # its number
        return clone.identified()

    async def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """See :meth:`RemoteRecord.move`."""
        self._moved(await self._do(_move(path, redirect_lease)))

    async def destroy(self, force: bool = False) -> None:
        """See :meth:`RemoteRecord.destroy`."""
        await self._do(_destroy(force))

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> AsyncCoapSubscription[Change]:
        """See :meth:`RemoteRecord.watch`; it begins when it is awaited, entered with
        ``async with`` or first read."""
        from ._subscribe import AsyncCoapSubscription, stream_arguments

        self._host.check_open()
        return AsyncCoapSubscription(
            self._host, **stream_arguments(self._watched(), since, max_pending, lease)
        )

    async def read_only(self) -> AsyncRemoteRecord:
        """See :meth:`RemoteRecord.read_only`."""
        return AsyncRemoteRecord(self._host, _address_answered(await self._do(_READ_ONLY)), READ_ONLY, True)

    async def capability(self, operations: Iterable[str], lease: float | None = None) -> AsyncRemoteRecord:
        """See :meth:`RemoteRecord.capability`."""
        ops = granted(operations)
        address = _address_answered(await self._do(_capability(ops, lease)))
        return AsyncRemoteRecord(self._host, address, ops, owner=True)

    async def revoke(self) -> None:
        """See :meth:`RemoteRecord.revoke`."""
        from ._node import peer_of

        space, ask = self._revocation()
        host = self._host
        host.check_open()
        peer, options = _request(await peer_of(space), ask)
        response = await _bounded(host.endpoint.request(peer, ask.code, options, ask.payload), host.timeout)
        _value(response, space)


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


def _request(
    target: tuple[Address, list[tuple[int, bytes]]], ask: _Ask
) -> tuple[Address, list[tuple[int, bytes]]]:
    """The peer's address and the options of ``ask`` sent to ``target``: a peer and
    the Uri-Path options of a resource there."""
    peer, options = target
    options = list(options)
    if ask.tag is not None:
        options.append((URI_PATH, ask.tag.encode()))
    options.extend((URI_QUERY, q.encode()) for q in ask.query)
    options.append((ACCEPT, _CBOR))
    if ask.payload:
        options.append((CONTENT_FORMAT, _CBOR))
        options.sort(key=_number)
    return peer, options


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


Where = Callable[[], Awaitable[tuple[Address, list[tuple[int, bytes]], str]]]
"""Where an observed record (or field) is now: its peer, the options of the request
and its URI."""


class RemoteUpcall:
    """An observation of a remote record or field, calling a function with each new
    state in a thread of its own; :meth:`cancel` ends it.  When the record moves to
    another node (the node answers its old address with the new one), the
    observation follows it: it registers again there, and the function is called
    with the state it has there."""

    def __init__(self, fn: Callable[[Value], object]) -> None:
        self._fn = fn
        self._cond = threading.Condition()
        self._pending: list[Value] = []  # the latest state not yet given to fn (at most one)
        self._active = True
        self._calls = self._errors = 0
        self._deregister: Callable[[], None] | None = None
        self._node: Host | None = None
        self._thread = threading.Thread(target=self._run, name="tuplespace-remote-upcall", daemon=True)

    async def start(self, node: Host, where: Where, follow: Callable[[URI], None]) -> None:
        """Observe the record or field ``where`` says is (its peer, the options of the
        request and its URI, asked again after each move); ``follow`` is told each
        address it moved to."""
        await self._register(node, where, follow)
        self._node = node
        node.upcalls.add(self)
        self._thread.start()

    async def _register(self, node: Host, where: Where, follow: Callable[[URI], None]) -> Value:
        """Register the observation where the record is, following its moves; the
        state the first answer gave."""
        for _ in range(MAX_REDIRECTIONS):
            peer, options, uri = await where()
            notified = functools.partial(self._notified, node, where, follow, uri)
            first, deregister = await node.endpoint.observe(peer, options, notified, self._lost(node, uri))
            moved = moved_to(first)
            if moved is not None:
                deregister()
                follow(URI(moved))
                continue
            value = _value(first, uri)
            if first.number(OBSERVE) is None:
                raise LimitReached(
                    f"{uri}: the peer did not accept the observation", limit="observers", maximum=0
                )
            self._deregister = deregister
            return value
        raise Unreachable(f"the record moved more than {MAX_REDIRECTIONS} times on the way")

    def _notified(
        self, node: Host, where: Where, follow: Callable[[URI], None], uri: str, message: Message
    ) -> None:
        """On the node's loop: a notification; one that says the record moved away ends
        the observation here and registers it where the record is now."""
        moved = moved_to(message)
        if moved is not None:
            follow(URI(moved))
            node.loop.create_task(self._moved(node, where, follow))
            return
        try:
            value = _value(message, uri)
        except TupleSpaceError as exc:  # the record is gone
            log.info("the observation of %s ended: %s", uri, exc)
            self._ended(node)
            return
        self._give(value)
        if message.number(OBSERVE) is None:  # the last notification
            self._ended(node)

    async def _moved(self, node: Host, where: Where, follow: Callable[[URI], None]) -> None:
        """Observe the record where it moved, giving the function its state there."""
        try:
            value = await self._register(node, where, follow)
        except TupleSpaceError as exc:
            log.info("the observation of a record that moved ended: %s", exc)
            self._ended(node)
            return
        if not self._active:  # cancelled meanwhile
            self._deregister_now()
            return
        self._give(value)

    def _lost(self, node: Host, uri: str) -> Callable[[str], None]:
        def lost(why: str) -> None:
            log.info("the observation of %s ended: %s", uri, why)
            self._ended(node)

        return lost

    def _give(self, value: Value) -> None:
        with self._cond:
            self._pending[:] = [value]
            self._cond.notify()

    def _deregister_now(self) -> None:
        deregister, self._deregister = self._deregister, None
        if deregister is not None:
            deregister()

    def _ended(self, node: Host) -> None:
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
