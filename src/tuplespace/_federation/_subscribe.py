r"""Subscriptions to a space over CoAP: ``CoapSpace.subscribe`` (:class:`CoapSubscription`)
and ``AsyncCoapSpace.subscribe`` (:class:`AsyncCoapSubscription`), carried by Observe
(RFC 7641) on the space's resource (docs/federation.md, "Subscriptions over Observe");
and watches of records, their changes carried the same way: ``watch_records`` of a
space and ``watch`` of a remote record handle (the same classes, of
:class:`~tuplespace.Change`\ s).

What both share is a :class:`_Stream`, on the event loop of the space's endpoint: it
registers the observation, reads each notification into the events waiting for the
reader, and registers again after the last event it has (``since=``) when a
notification went missing (the next one does not go on from where it is), when the
node stopped answering, or when the reader has caught up after falling
``max_pending`` events behind (the observation is ended meanwhile, and the node's
log keeps what comes).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from .._errors import EventsLost, LimitReached, Timeout, TupleSpaceError, UnknownLease, Unreachable
from .._events import Change, Event
from .._values import Map, Tuple
from ..client._common import check_lease, check_max_pending, check_since, check_timeout, error_code
from ..client._primitives import AsyncOpenable
from ._cbor import CBOR, JSON
from ._endpoint import Address, Endpoint
from ._message import ACCEPT, CONTENT_FORMAT, FETCH, OBSERVE, URI_QUERY, Message
from ._remote import MAX_REDIRECTIONS, _space_of, _value, moved_to

__all__ = ["AsyncCoapSubscription", "CoapSubscription", "Observed", "StreamHost"]

E = TypeVar("E", Event, Change)

# Seconds before registering again after the node did not answer, the n-th time in a row.
RETRY_DELAYS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

_END = object()  # queued when the subscription ends for good
_CBOR, _JSON = bytes((CBOR,)), bytes((JSON,))


def _nothing() -> None:
    pass


class StreamHost(Protocol):
    """What a subscription sends through: a space over CoAP, or a :class:`~tuplespace.Node`."""

    timeout: float

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def streams(self) -> set[_Stream]:
        """The subscriptions open, ended when it closes."""
        ...


class Observed(NamedTuple):
    """What a subscription observes: the resource (its node, Uri-Path options and
    URL), the query asking for its events, and the payload (a template in the JSON
    wire format; none for records' changes).  After a change of a kind in ``ends``
    (a record's destroy or expire) nothing more comes: the subscription ends."""

    peer: Address | None  # None: resolved from the URL when it registers
    path: list[tuple[int, bytes]]
    url: str
    query: tuple[str, ...]
    payload: bytes = b""
    ends: frozenset[str] = frozenset()


_WATCH_ENDED = "watch_ended"  # the code of a watch's last notification: it is over
RECORD_ENDS = frozenset({"destroy", "expire"})
"""The changes after which a record's watch ends."""


def stream_arguments(
    observed: Observed, since: int | None, max_pending: int, lease: float | None, existing: bool = False
) -> dict[str, Any]:
    """What a subscription is made of, checked as the embedded space checks it
    (``lease`` is kept here, and given to ``begin``)."""
    return {
        "observed": observed,
        "since": check_since(since),
        "max_pending": check_max_pending(max_pending),
        "existing": existing,
        "lease": check_lease(lease),
    }


class _Stream:
    """A subscription's observations of a space's events, run on ``loop``; ``wake``
    is called (on the loop) when an item is queued or the stream ends."""

    def __init__(
        self,
        space: StreamHost,
        loop: asyncio.AbstractEventLoop | None,
        observed: Observed,
        since: int | None,
        existing: bool,
        max_pending: int,
        wake: Callable[[], None],
    ) -> None:
        self.space = space
        self.loop = loop  # where it runs (the asyncio face's: once it opens)
        self.observed = observed
        self._existing = existing
        self.max_pending = max_pending
        self._wake = wake
        self.items: deque[Any] = deque()  # events, errors to raise, and _END
        self.cursor = since  # the last event queued (None: until the node says where it begins)
        # Where its present events stand, as the node said: the last tuple there when it
        # began and the last one queued (None: no present events are to come).
        self.presence: tuple[int, int] | None = None
        self._generation = 0  # notifications of an observation ended are ignored
        self._end: Callable[[], None] = _nothing
        self._registering = False
        self._arriving = False  # followed to another node: its arrival there is still to skip
        self.paused = False  # the reader is max_pending behind: no observation
        self.closed = False
        self.registrations = 0
        self.queued = 0  # events queued since it began
        self._lease: asyncio.TimerHandle | None = None

    def _begun(self) -> asyncio.AbstractEventLoop:
        """The loop it runs on (it has begun: it is what calls this)."""
        assert self.loop is not None
        return self.loop

    def _options(self) -> list[tuple[int, bytes]]:
        observed = self.observed
        query = list(observed.query)
        if self.cursor is not None:
            query.append(f"since={self.cursor}")
            if self.presence is not None:
                query.append("present={},{}".format(*self.presence))
        elif self._existing:
            query.append("existing=true")
        return [
            *observed.path,
            *(((CONTENT_FORMAT, _JSON),) if observed.payload else ()),
            *((URI_QUERY, q.encode()) for q in query),
            (ACCEPT, _CBOR),
        ]

    async def register(self, first: bool = False) -> bool:
        """Observe the space's events after the last one queued; on the ``first``
        registration, events already lost raise :class:`~tuplespace.EventsLost`.
        Whether the observation stands (it may have been dropped at once, its first
        notifications not going on from where it began)."""
        self._generation += 1
        generation = self._generation
        early: list[Message] = []  # notifications come before the answer is read

        def notified(message: Message) -> None:
            if generation != self._generation:
                return
            if self._end is _nothing:
                early.append(message)
            else:
                self._notified(message)

        def lost(why: str) -> None:
            if generation == self._generation:
                self._again()

        for _ in range(MAX_REDIRECTIONS):
            observed = self.observed
            if observed.peer is None:
                from ._node import peer_of

                peer, path = await peer_of(observed.url)
                observed = self.observed = observed._replace(peer=peer, path=path)
            assert observed.peer is not None
            self.registrations += 1
            answer, end = await self.space.endpoint.observe(
                observed.peer, self._options(), notified, lost, FETCH, observed.payload
            )
            if generation != self._generation:  # closed meanwhile
                end()
                return False
            moved = moved_to(answer)
            if moved is None:
                break
            end()  # the record moved to another node: watched there
            self._follow(moved)
        else:
            raise Unreachable(f"{self.observed.url}: the record moved more than {MAX_REDIRECTIONS} times")
        self._end = end
        body = _value(answer, observed.url)
        if answer.number(OBSERVE) is None:
            raise LimitReached(
                f"{observed.url}: the node did not accept the subscription", limit="subscriptions", maximum=0
            )
        if first:
            events = body.get("events") if isinstance(body, Map) else None
            if events and isinstance(events[0], Map) and "first_missing" in events[0]:
                self.stop()
                raise EventsLost(events[0]["first_missing"], events[0]["oldest_available"])
        self._notified(answer, own=True)
        for message in early:
            if generation == self._generation:
                self._notified(message)
        return generation == self._generation

    def _notified(self, message: Message, own: bool = False) -> None:
        """Queue the events of a notification that goes on from the last one queued;
        register again after a gap, or when the node began the observation anew (a
        registration renewed after the node dropped it: ``own`` is the answer to
        :meth:`register`)."""
        url = self.observed.url
        moved = moved_to(message)
        if moved is not None:  # renewed where the record was: watched where it is
            self._follow(moved)
            self._again()
            return
        try:
            body = _value(message, url)
            after = body["after"]
            items = [_item(item) for item in body["events"]]
            present = body.get("present")
            if present is not None:
                upto, before, last = present
        except TupleSpaceError as exc:  # the space is gone or closed: the subscription ends
            if error_code(exc) == _WATCH_ENDED:
                self.stop()
            else:
                self._fail(exc)
            return
        except (TypeError, KeyError, ValueError) as exc:
            self._fail(TupleSpaceError(f"a notification from {url} cannot be read: {exc}"))
            return
        if self.cursor is None:
            self.cursor = after
        if (
            after != self.cursor
            or ("new" in body and not own)
            or (present is not None and self.presence is not None and before != self.presence[1])
        ):  # a notification went missing
            self._again()
            return
        if present is not None:
            self.presence = (upto, last)
        for item in items:
            if self._arriving:  # watched where the record moved: its changes there until it arrived
                self._arriving = isinstance(item, Change) and item.kind != "create"
                if isinstance(item, Change):
                    self.cursor = item.seq
                    continue
            self.items.append(item)
            if isinstance(item, EventsLost):
                self.cursor = item.oldest_available - 1
                continue
            self.queued += 1
            if item.kind != "present":
                self.cursor = item.seq
                self.presence = None  # the present events came first
            if item.kind in self.observed.ends:
                self.stop()
                return
            if isinstance(item, Change) and item.kind == "move" and self._follow(str(item.value)):
                self._wake()
                self._again()
                return
        if items:
            self._wake()
        if len(self.items) >= self.max_pending and not self.paused:
            self.paused = True
            self._drop()

    def _follow(self, address: str) -> bool:
        """A watched record moved to ``address``: whether that is another node's space,
        where its watch goes on.  That node numbers its events in its own log: a watch
        that had begun asks it for the record's changes from the start of its log, and
        skips those up to the record's arrival (its ``create`` there), which the ``move``
        told already; one that had not begun begins there."""
        observed = self.observed
        if observed.query[:1] != ("op=watch",) or _space_of(address) == _space_of(observed.url):
            return False
        self.observed = Observed(None, [], address, ("op=watch",), ends=observed.ends)
        self._arriving = self.cursor is not None
        self.cursor = 0 if self._arriving else None
        self.presence = None
        return True

    def _drop(self) -> None:
        """End the observation under way (its later notifications are ignored)."""
        self._generation += 1
        end, self._end = self._end, _nothing
        end()

    def _again(self) -> None:
        """Register again after the last event queued."""
        self._drop()
        if not self.closed and not self.paused and not self._registering:
            self._registering = True
            self._begun().create_task(self._retry())

    async def _retry(self) -> None:
        failures = 0
        try:
            while not self.closed and not self.paused:
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                try:
                    if await self.register():
                        return
                    failures = 0  # dropped at once: registered again from where it got
                except Unreachable:
                    failures += 1
                except TupleSpaceError as exc:  # the node refuses it: the subscription ends
                    self._fail(exc)
                    return
        finally:
            self._registering = False

    def resume(self) -> None:
        """On the loop: the reader has caught up; observe again."""
        if self.paused:
            self.paused = False
            self._again()

    def taken(self) -> None:
        """From the reader, after it took an item: resume once it has caught up."""
        if self.paused and not self.closed and len(self.items) <= self.max_pending // 2:
            self._begun().call_soon_threadsafe(self.resume)

    def _fail(self, exc: TupleSpaceError) -> None:
        if not self.closed:
            self.items.append(exc)
            self.stop()

    def stop(self) -> None:
        """On the loop: end the subscription; what is queued can still be read."""
        if self.closed:
            return
        self.closed = True
        self._drop()
        if self._lease is not None:
            self._lease.cancel()
        self.items.append(_END)
        self._wake()
        self.space.streams.discard(self)

    def renew(self, lease: float | None) -> None:
        """On the loop: end the subscription ``lease`` seconds from now (None: never)."""
        if self.closed:
            raise UnknownLease("the subscription has ended")
        if self._lease is not None:
            self._lease.cancel()
        self._lease = None if lease is None else self._begun().call_later(lease, self.stop)


class _Face(Generic[E]):
    """What both faces share: the stream, and what is read without waiting."""

    def __init__(self, stream: _Stream, since: int | None) -> None:
        self._stream = stream
        self._delivered = 0
        self._last_seq = since or 0
        self._ended = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event delivered: resume with ``since=`` it."""
        return self._last_seq

    @property
    def closed(self) -> bool:
        return self._ended or self._stream.closed

    def statistics(self) -> dict[str, Any]:
        """Events waiting here and delivered, the last one, whether it is closed, and
        how many times it registered its observation."""
        return {
            "pending": self._stream.queued - self._delivered,
            "delivered": self._delivered,
            "last_seq": self._last_seq,
            "closed": self.closed,
            "registrations": self._stream.registrations,
        }

    async def begin(self, lease: float | None) -> None:
        """On the stream's loop: register the observation (raising what the node
        refuses), and end the subscription ``lease`` seconds from now."""
        stream = self._stream
        stream.loop = asyncio.get_running_loop()
        stream.space.streams.add(stream)
        try:
            await stream.register(first=True)
        except BaseException:
            stream.stop()
            raise
        if stream.cursor is not None:
            self._last_seq = stream.cursor
        stream.renew(lease)

    def _next(self) -> E | None:
        """The item the stream has ready (the stream has one)."""
        stream = self._stream
        item = stream.items.popleft()
        stream.taken()
        if item is _END:
            self._ended = True
            stream.items.appendleft(_END)
            return None
        if isinstance(item, TupleSpaceError):
            raise item
        self._delivered += 1
        self._last_seq = item.seq
        event: E = item
        return event

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_seq={self._last_seq}, closed={self.closed})"


class CoapSubscription(_Face[E]):
    r"""The events of a subscription to a space over CoAP (:meth:`CoapSpace.subscribe
    <tuplespace.CoapSpace.subscribe>`); see :class:`~tuplespace.Subscription`.  A watch
    of records over CoAP is one too, of :class:`~tuplespace.Change`\ s
    (:meth:`CoapSpace.watch_records <tuplespace.CoapSpace.watch_records>`,
    :meth:`RemoteRecord.watch <tuplespace.RemoteRecord.watch>`): see
    :class:`~tuplespace.RecordWatch`."""

    def __init__(
        self, space: StreamHost, loop: asyncio.AbstractEventLoop, since: int | None, **stream: Any
    ) -> None:
        self._changed = threading.Condition()
        self._runner_loop = loop
        super().__init__(_Stream(space, loop, since=since, wake=self._wake, **stream), since)

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def get(self, timeout: float | None = None) -> E | None:
        """The next event, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once the subscription has ended."""
        wait = check_timeout(timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._stream.items), wait):
                raise Timeout("no event in time")
            return self._next()

    def __iter__(self) -> CoapSubscription[E]:
        return self

    def __next__(self) -> E:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def renew(self, lease: float | None) -> None:
        """End the subscription ``lease`` seconds from now (None: never)."""
        seconds = check_lease(lease)
        asyncio.run_coroutine_threadsafe(_call(self._stream.renew, seconds), self._runner_loop).result()

    def close(self) -> None:
        """End the subscription; a waiting :meth:`get` returns None."""
        if not self._stream.closed and not self._runner_loop.is_closed():
            asyncio.run_coroutine_threadsafe(_call(self._stream.stop), self._runner_loop).result()

    def __enter__(self) -> CoapSubscription[E]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncCoapSubscription(_Face[E], AsyncOpenable):
    """The events of a subscription to a space over CoAP, on the caller's event loop
    (:meth:`AsyncCoapSpace.subscribe <tuplespace.AsyncCoapSpace.subscribe>`):
    ``async for event in sub``; see :class:`~tuplespace.Subscription`.  It begins when
    it is awaited, entered with ``async with`` or first read, raising then what the
    node refuses."""

    def __init__(self, space: StreamHost, since: int | None, lease: float | None, **stream: Any) -> None:
        self._changed = asyncio.Event()
        self._lease_seconds = lease
        self._opened = False
        super().__init__(_Stream(space, None, since=since, wake=self._changed.set, **stream), since)

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        timeout = self._stream.space.timeout
        try:
            await asyncio.wait_for(self.begin(self._lease_seconds), timeout)
        except TimeoutError:
            raise Unreachable(f"{self._stream.observed.url}: no answer within {timeout} s") from None

    async def get(self, timeout: float | None = None) -> E | None:
        """See :meth:`CoapSubscription.get`."""
        wait = check_timeout(timeout)
        await self._open()
        try:
            async with asyncio.timeout(wait):
                while not self._stream.items:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise Timeout("no event in time") from None
        return self._next()

    def __aiter__(self) -> AsyncCoapSubscription[E]:
        return self

    async def __anext__(self) -> E:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def renew(self, lease: float | None) -> None:
        """See :meth:`CoapSubscription.renew`."""
        seconds = check_lease(lease)
        await self._open()
        self._stream.renew(seconds)

    async def close(self) -> None:
        """See :meth:`CoapSubscription.close`."""
        self._opened = True  # never to begin
        self._stream.stop()

    async def __aenter__(self) -> AsyncCoapSubscription[E]:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _item(item: Map) -> Event | Change | EventsLost:
    """An event or a record's change of a notification, or the news of events lost."""
    if "first_missing" in item:
        return EventsLost(item["first_missing"], item["oldest_available"])
    if "path" in item:
        return Change(*(item[field] for field in Change._fields))
    t: Tuple = item["tuple"]
    return Event(item["seq"], item["kind"], t, item["time"])


async def _call(function: Callable[..., None], *args: Any) -> None:
    function(*args)
