"""A node's space reached over CoAP with the Linda operations: ``ts.connect("coap://…")``
(:class:`CoapSpace`) and ``ts.connect_async("coap://…")`` (:class:`AsyncCoapSpace`).

What each operation sends and how its answer is read is written once, here, as an
:class:`_Ask`; the two classes only send it, one from the caller's thread, the other
on the caller's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from .._codec import encode_template, template_to_wire, to_wire
from .._errors import InvalidValue, SpaceClosed, Timeout, TupleSpaceError, Unreachable, UnsupportedType
from .._events import EVENT_KINDS, check_existing
from .._lease import AsyncLease, Lease
from .._templates import ANY
from .._values import Map, Tuple, Value
from ..client._common import (
    _prefixed,
    check_kinds,
    check_lease,
    check_limit,
    check_max_pending,
    check_since,
    check_timeout,
)
from ._cbor import CBOR, JSON, encode_cbor
from ._endpoint import Address, Endpoint, Network, Timers, _bounded
from ._loop import LoopThread
from ._message import ACCEPT, CONTENT_FORMAT, FETCH, GET, POST, URI_QUERY, Message
from ._node import peer_of
from ._remote import _value
from ._subscribe import AsyncCoapSubscription, CoapSubscription, _Stream

__all__ = ["AsyncCoapSpace", "CoapSpace"]


class _Ask(NamedTuple):
    """One request to the space's resource: its method, payload (CBOR for POST, the JSON
    wire format for FETCH), query, and how long the node may wait before it answers."""

    code: int
    payload: bytes = b""
    query: tuple[str, ...] = ()
    wait: float | None = 0.0


def _tuple(t: Any) -> tuple[Value, ...]:
    if not isinstance(t, (tuple, list)):
        raise UnsupportedType(f"a tuple is a tuple or list, not {type(t).__name__}")
    return tuple(t)


def _seconds(name: str, seconds: float | None) -> tuple[str, ...]:
    return () if seconds is None else (f"{name}={seconds!r}",)


def _write(t: Any, lease: float | None, timeout: float | None) -> _Ask:
    wait = check_timeout(timeout)
    query = (*_seconds("lease", check_lease(lease)), *_seconds("timeout", wait))
    return _Ask(POST, encode_cbor(_tuple(t)), query, wait)


def _write_many(tuples: Iterable[Any], lease: float | None) -> _Ask:
    try:
        payload = encode_cbor(tuple(_tuple(t) for t in tuples))
    except InvalidValue as exc:  # named as the embedded space names it: tuples[i][j]
        raise _prefixed(exc, "tuples") from None
    return _Ask(POST, payload, ("op=write_many", *_seconds("lease", check_lease(lease))))


def _renew(seq: int, seconds: float | None) -> _Ask:
    return _Ask(POST, b"", ("op=renew", f"id={seq}", *_seconds("lease", check_lease(seconds))))


def _cancel(seq: int) -> _Ask:
    return _Ask(POST, b"", ("op=cancel", f"id={seq}"))


def _fetch(template: Any, op: str, timeout: float | None) -> _Ask:
    wait = check_timeout(timeout)
    return _Ask(FETCH, encode_template(template), (f"op={op}", *_seconds("timeout", wait)), wait)


def _count(template: Any) -> _Ask:
    return _Ask(FETCH, encode_template(template), ("op=count",))


def _pair(op: str, template: Any, t: Any, lease: float | None, timeout: float | None = 0) -> _Ask:
    """``write_if_absent`` or ``replace``: the template and the tuple, in the JSON wire format."""
    if callable(t):
        raise TypeError(
            "a space over CoAP cannot run a function successor: pass the new tuple, "
            "or take the old one and write its successor"
        )
    wait = check_timeout(timeout)
    payload = orjson.dumps([template_to_wire(template), to_wire(_tuple(t))])
    query = (f"op={op}", *_seconds("lease", check_lease(lease)), *_seconds("timeout", wait))
    return _Ask(FETCH, payload, query, wait)


def _subscription(
    template: Any,
    events: Iterable[str],
    since: int | None,
    max_pending: int,
    lease: float | None,
    existing: bool,
) -> dict[str, Any]:
    """What a subscription is made of, checked as the embedded space checks it."""
    return {
        "template": b'{"$any":true}' if template is ANY else encode_template(template),
        "kinds": check_kinds(events),
        "since": check_since(since),
        "max_pending": check_max_pending(max_pending),
        "existing": check_existing(existing, since),
        "lease": check_lease(lease),
    }


def _found(found: Tuple | None, timeout: float | None) -> Tuple:
    if found is None:
        raise Timeout(f"no matching tuple within {timeout} s")
    return found


def _statistics(answer: Value) -> dict[str, Any]:
    if not isinstance(answer, Map):
        raise TupleSpaceError(f"the node answered {answer!r} where statistics belong")
    return dict(answer)


class _Pages:
    """A ``read_all`` or ``take_all``, an answer at a time: the node answers as many
    tuples as its ``max_results`` and ``max_answer`` allow and the cursor of the rest
    (``next``); the next request goes on from there (a take: asks again), for the limit
    left and without waiting, until an answer has no cursor."""

    def __init__(self, op: str, template: Any, limit: int | None, timeout: float | None) -> None:
        self.found: list[Tuple] = []
        self._op = op
        self._template = encode_template(template)
        self._limit = check_limit(limit)
        self._wait = check_timeout(timeout)
        self._after: int | None = None
        self._done = False

    def ask(self) -> _Ask | None:
        """The next request, or None when every answer is in."""
        if self._done:
            return None
        query = [f"op={self._op}"]
        if self._limit is not None:
            query.append(f"limit={self._limit - len(self.found)}")
        if self._after is not None and self._op == "read_all":
            query.append(f"after={self._after}")
        wait = self._wait if not self.found else 0.0
        query.extend(_seconds("timeout", wait))
        return _Ask(FETCH, self._template, tuple(query), wait)

    def add(self, answer: Value) -> None:
        if not isinstance(answer, Map) or not isinstance(answer.get("tuples"), tuple):
            raise TupleSpaceError(f"the node answered {answer!r} where a page of tuples belongs")
        page: tuple[Tuple, ...] = answer["tuples"]
        self.found.extend(page)
        cursor = answer.get("next")
        self._after = cursor if isinstance(cursor, int) else None
        self._done = (
            cursor is None or not page or (self._limit is not None and len(self.found) >= self._limit)
        )


class _Space:
    """What both faces share: the URL checked, the peer, the options of a request."""

    def __init__(
        self, url: str, timeout: float, ack_timeout: float, max_retransmit: int, network: Network | None
    ):
        parts = urlsplit(url)
        segments = parts.path.strip("/").split("/")
        if parts.scheme != "coap" or not parts.hostname or len(segments) != 2 or segments[0] != "spaces":
            raise InvalidValue(f"a space over CoAP is coap://host:port/spaces/<name>, got {url!r}")
        if not timeout > 0:
            raise InvalidValue(f"timeout must be positive seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.endpoint = Endpoint(timers=Timers(ack_timeout, max_retransmit=max_retransmit), network=network)
        """The client's CoAP endpoint."""
        self.peer: Address = ()
        """The node's address, once resolved."""
        self.path: list[tuple[int, bytes]] = []
        """The Uri-Path options of the space's resource."""
        self.streams: set[_Stream] = set()
        """The subscriptions open, ended when the space is closed."""
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise SpaceClosed(f"{self.url}: this handle is closed")

    async def _open(self) -> None:
        self.peer, self.path = await peer_of(self.url)
        await self.endpoint.open("::" if ":" in self.peer[0] else "0.0.0.0", 0)

    def _options(self, ask: _Ask) -> list[tuple[int, bytes]]:
        options = [*self.path, *((URI_QUERY, q.encode()) for q in ask.query), (ACCEPT, _CBOR)]
        if ask.code != GET:
            options.insert(len(self.path), (CONTENT_FORMAT, _CBOR if ask.code == POST else _JSON))
        return options

    def _within(self, ask: _Ask) -> float | None:
        """How long an answer may take: the node's wait and the space's ``timeout``."""
        return None if ask.wait is None else ask.wait + self.timeout

    async def _end_streams(self) -> None:
        """End the subscriptions, their deregistrations sent (once: the socket closes next)."""
        for stream in list(self.streams):
            stream.stop()
        await asyncio.sleep(0)

    def _answer(self, response: Message) -> Value:
        return _value(response, self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class CoapSpace(_Space):
    """The space ``jobs`` of a node, reached over CoAP, with the methods of
    :class:`~tuplespace.Space` that docs/federation.md lists ("Linda operations over CoAP").

    >>> jobs = ts.connect("coap://127.0.0.1:5683/spaces/jobs")   # doctest: +SKIP
    >>> jobs.write(("job", 1)); jobs.take(("job", int), timeout=5)  # doctest: +SKIP
    ('job', 1)

    Tuples travel in CBOR, templates in the JSON wire format.  A request the node does
    not answer within ``timeout`` seconds (beyond the time a read or take may wait)
    raises :class:`~tuplespace.Unreachable`.  A take is done once however often its
    request is sent (CoAP's duplicate detection); an answer that never arrives after
    all retransmissions loses the tuple taken, as no claim protects it.
    ``ack_timeout`` and ``max_retransmit`` are the retransmission timers (RFC 7252:
    2 s, 4 times) and ``network`` where the datagrams travel, as for :class:`~tuplespace.Node`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        network: Network | None = None,
    ) -> None:
        super().__init__(url, timeout, ack_timeout, max_retransmit, network)
        self._runner = LoopThread("tuplespace-coap-client")
        try:
            self._runner.call(self._open(), timeout)
        except BaseException:
            self._runner.stop()
            raise

    def _do(self, ask: _Ask) -> Value:
        self._check_open()
        options = self._options(ask)
        try:
            response = self.endpoint.request_blocking(
                self.peer, ask.code, options, ask.payload, self._within(ask)
            )
        except Unreachable:
            self._check_open()  # closed meanwhile
            raise
        return self._answer(response)

    def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> Lease:
        """See :meth:`Space.write <tuplespace.Space.write>`."""
        seq, expires = self._do(_write(t, lease, timeout))
        return Lease(self, seq, expires)

    def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> list[Lease]:
        """See :meth:`Space.write_many <tuplespace.Space.write_many>`: all or none."""
        return [Lease(self, seq, expires) for seq, expires in self._do(_write_many(tuples, lease))]

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = self._do(_renew(seq, seconds))
        return expires

    def _cancel(self, seq: int) -> None:
        self._do(_cancel(seq))

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """A copy of a tuple matching ``template``, waiting up to ``timeout`` seconds
        (None: as long as it takes); :class:`~tuplespace.Timeout` after."""
        return _found(self._do(_fetch(template, "read", timeout)), timeout)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a tuple matching ``template``, as :meth:`read` waits."""
        return _found(self._do(_fetch(template, "take", timeout)), timeout)

    def try_read(self, template: Any) -> Tuple | None:
        """A copy of a tuple matching ``template``, or None at once."""
        found: Tuple | None = self._do(_fetch(template, "read", 0))
        return found

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a tuple matching ``template``, or None at once."""
        found: Tuple | None = self._do(_fetch(template, "take", 0))
        return found

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """See :meth:`Space.read_all <tuplespace.Space.read_all>`; a large answer comes
        block by block, and in several answers past the node's ``max_results``."""
        return self._all(_Pages("read_all", template, limit, timeout))

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """See :meth:`Space.take_all <tuplespace.Space.take_all>`, answered as :meth:`read_all`."""
        return self._all(_Pages("take_all", template, limit, timeout))

    def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(self._do(ask))
        return pages.found

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        n: int = self._do(_count(template))
        return n

    def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        """See :meth:`Space.write_if_absent <tuplespace.Space.write_if_absent>`."""
        return bool(self._do(_pair("write_if_absent", template, t, lease)))

    def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """See :meth:`Space.replace <tuplespace.Space.replace>`; ``successor`` is the new
        tuple (a function cannot travel: ``TypeError``)."""
        return _found(self._do(_pair("replace", template, successor, lease, timeout)), timeout)

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> CoapSubscription:
        """See :meth:`Space.subscribe <tuplespace.Space.subscribe>`: the events come
        in notifications of an observation of the space (RFC 7641), each going on
        from the one before; after one that went missing, the subscription registers
        again from the last event it has (docs/federation.md, "Subscriptions over
        Observe").  At most ``max_pending`` events wait here: past that the
        observation ends until the reader has caught up, and resumes from the
        node's event log.  ``lease`` is kept here."""
        self._check_open()
        made = _subscription(template, events, since, max_pending, lease, existing)
        seconds = made.pop("lease")
        subscription = CoapSubscription(self, self._runner.loop, **made)
        self._runner.call(subscription.begin(seconds), self.timeout)
        return subscription

    def statistics(self) -> dict[str, Any]:
        """The space's statistics, as the node keeps them (see :meth:`Space.statistics
        <tuplespace.Space.statistics>`)."""
        return _statistics(self._do(_Ask(GET)))

    def close(self) -> None:
        """Close the client's socket; later calls raise :class:`~tuplespace.SpaceClosed`."""
        self.closed = True
        self._runner.stop(self._shutdown)

    async def _shutdown(self) -> None:
        await self._end_streams()
        self.endpoint.close()

    def __enter__(self) -> CoapSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCoapSpace(_Space):
    """:class:`CoapSpace` for asyncio, on the caller's event loop: the same methods,
    awaited (``ts.connect_async("coap://127.0.0.1:5683/spaces/jobs")``).

    >>> jobs = await ts.connect_async("coap://127.0.0.1:5683/spaces/jobs")   # doctest: +SKIP
    >>> await jobs.write(("job", 1))                                         # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        network: Network | None = None,
    ) -> None:
        super().__init__(url, timeout, ack_timeout, max_retransmit, network)

    async def _do(self, ask: _Ask) -> Value:
        self._check_open()
        work = self.endpoint.request(self.peer, ask.code, self._options(ask), ask.payload)
        try:
            response = await _bounded(work, self._within(ask))
        except Unreachable:
            self._check_open()  # closed meanwhile: what waited is released
            raise
        return self._answer(response)

    async def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> AsyncLease:
        """See :meth:`CoapSpace.write`."""
        seq, expires = await self._do(_write(t, lease, timeout))
        return AsyncLease(self, seq, expires)

    async def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> list[AsyncLease]:
        """See :meth:`CoapSpace.write_many`."""
        return [AsyncLease(self, seq, expires) for seq, expires in await self._do(_write_many(tuples, lease))]

    async def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = await self._do(_renew(seq, seconds))
        return expires

    async def _cancel(self, seq: int) -> None:
        await self._do(_cancel(seq))

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`CoapSpace.read`."""
        return _found(await self._do(_fetch(template, "read", timeout)), timeout)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`CoapSpace.take`."""
        return _found(await self._do(_fetch(template, "take", timeout)), timeout)

    async def try_read(self, template: Any) -> Tuple | None:
        """See :meth:`CoapSpace.try_read`."""
        found: Tuple | None = await self._do(_fetch(template, "read", 0))
        return found

    async def try_take(self, template: Any) -> Tuple | None:
        """See :meth:`CoapSpace.try_take`."""
        found: Tuple | None = await self._do(_fetch(template, "take", 0))
        return found

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`CoapSpace.read_all`."""
        return await self._all(_Pages("read_all", template, limit, timeout))

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`CoapSpace.take_all`."""
        return await self._all(_Pages("take_all", template, limit, timeout))

    async def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(await self._do(ask))
        return pages.found

    async def count(self, template: Any) -> int:
        """See :meth:`CoapSpace.count`."""
        n: int = await self._do(_count(template))
        return n

    async def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        """See :meth:`CoapSpace.write_if_absent`."""
        return bool(await self._do(_pair("write_if_absent", template, t, lease)))

    async def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """See :meth:`CoapSpace.replace`."""
        return _found(await self._do(_pair("replace", template, successor, lease, timeout)), timeout)

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> AsyncCoapSubscription:
        """See :meth:`CoapSpace.subscribe`; iterate with ``async for``.  The
        subscription begins when it is awaited, entered with ``async with`` or first
        read (as those of :class:`~tuplespace.client.AsyncRemoteSpace`)."""
        self._check_open()
        made = _subscription(template, events, since, max_pending, lease, existing)
        return AsyncCoapSubscription(self, **made)

    async def statistics(self) -> dict[str, Any]:
        """See :meth:`CoapSpace.statistics`."""
        return _statistics(await self._do(_Ask(GET)))

    async def close(self) -> None:
        """Close the client's socket; calls waiting for an answer and later calls raise
        :class:`~tuplespace.SpaceClosed`."""
        self.closed = True
        await self._end_streams()
        self.endpoint.close()

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncCoapSpace:
        """An :class:`AsyncCoapSpace` on ``url``, its socket bound on the running loop
        (:class:`~tuplespace.Unreachable` when its host is not resolved within ``timeout``)."""
        space = cls(url, **options)
        try:
            await asyncio.wait_for(space._open(), space.timeout)
        except TimeoutError:
            space.endpoint.close()
            raise Unreachable(f"{url}: its host was not resolved within {space.timeout} s") from None
        except BaseException:
            space.endpoint.close()
            raise
        return space

    async def __aenter__(self) -> AsyncCoapSpace:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


_CBOR, _JSON = bytes((CBOR,)), bytes((JSON,))
