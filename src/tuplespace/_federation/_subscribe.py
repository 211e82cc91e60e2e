"""Subscriptions to a space over CoAP: ``CoapSpace.subscribe`` (:class:`CoapSubscription`)
and ``AsyncCoapSpace.subscribe`` (:class:`AsyncCoapSubscription`), carried by Observe
(RFC 7641) on the space's resource (docs/federation.md, "Subscriptions over Observe").

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
from typing import TYPE_CHECKING, Any

from .._errors import EventsLost, LimitReached, Timeout, TupleSpaceError, UnknownLease, Unreachable
from .._events import Event
from .._values import Map, Tuple
from ..client._common import check_lease, check_timeout
from ..client._primitives import AsyncOpenable
from ._cbor import CBOR, JSON
from ._message import ACCEPT, CONTENT_FORMAT, FETCH, OBSERVE, URI_QUERY, Message
from ._remote import _value

if TYPE_CHECKING:
    from ._linda import _Space

__all__ = ["AsyncCoapSubscription", "CoapSubscription"]

# Seconds before registering again after the node did not answer, the n-th time in a row.
RETRY_DELAYS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

_END = object()  # queued when the subscription ends for good
_CBOR, _JSON = bytes((CBOR,)), bytes((JSON,))


def _nothing() -> None:
    pass


class _Stream:
    """A subscription's observations of a space's events, run on ``loop``; ``wake``
    is called (on the loop) when an item is queued or the stream ends."""

    def __init__(
        self,
        space: _Space,
        loop: asyncio.AbstractEventLoop | None,
        template: bytes,
        kinds: list[str],
        since: int | None,
        existing: bool,
        max_pending: int,
        wake: Callable[[], None],
    ) -> None:
        self.space = space
        self.loop = loop  # where it runs (the asyncio face's: once it opens)
        self._template = template
        self._kinds = ",".join(sorted(kinds))
        self._existing = existing
        self.max_pending = max_pending
        self._wake = wake
        self.items: deque[Any] = deque()  # events, errors to raise, and _END
        self.cursor = since  # the last event queued (None: until the node says where it begins)
        self._generation = 0  # notifications of an observation ended are ignored
        self._end: Callable[[], None] = _nothing
        self._registering = False
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
        query = ["op=subscribe", f"events={self._kinds}"]
        if self.cursor is not None:
            query.append(f"since={self.cursor}")
        elif self._existing:
            query.append("existing=true")
        return [
            *self.space.path,
            (CONTENT_FORMAT, _JSON),
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

        space = self.space
        self.registrations += 1
        answer, end = await space.endpoint.observe(
            space.peer, self._options(), notified, lost, FETCH, self._template
        )
        if generation != self._generation:  # closed meanwhile
            end()
            return False
        self._end = end
        body = _value(answer, space.url)
        if answer.number(OBSERVE) is None:
            raise LimitReached(
                f"{space.url}: the node did not accept the subscription", limit="subscriptions", maximum=0
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
        try:
            body = _value(message, self.space.url)
            after = body["after"]
            items = [_item(item) for item in body["events"]]
        except TupleSpaceError as exc:  # the space is gone or closed: the subscription ends
            self._fail(exc)
            return
        except (TypeError, KeyError) as exc:
            self._fail(TupleSpaceError(f"a notification from {self.space.url} cannot be read: {exc}"))
            return
        if self.cursor is None:
            self.cursor = after
        if after != self.cursor or ("new" in body and not own):  # a notification went missing
            self._again()
            return
        for item in items:
            self.items.append(item)
            if isinstance(item, EventsLost):
                self.cursor = item.oldest_available - 1
                continue
            self.queued += 1
            if item.kind != "present":
                self.cursor = item.seq
        if items:
            self._wake()
        if len(self.items) >= self.max_pending and not self.paused:
            self.paused = True
            self._drop()

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


class _Face:
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

    def _next(self) -> Event | None:
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
        event: Event = item
        return event

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_seq={self._last_seq}, closed={self.closed})"


class CoapSubscription(_Face):
    """The events of a subscription to a space over CoAP (:meth:`CoapSpace.subscribe
    <tuplespace.CoapSpace.subscribe>`); see :class:`~tuplespace.Subscription`."""

    def __init__(
        self, space: _Space, loop: asyncio.AbstractEventLoop, since: int | None, **stream: Any
    ) -> None:
        self._changed = threading.Condition()
        self._runner_loop = loop
        super().__init__(_Stream(space, loop, since=since, wake=self._wake, **stream), since)

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once the subscription has ended."""
        wait = check_timeout(timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._stream.items), wait):
                raise Timeout("no event in time")
            return self._next()

    def __iter__(self) -> CoapSubscription:
        return self

    def __next__(self) -> Event:
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

    def __enter__(self) -> CoapSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncCoapSubscription(_Face, AsyncOpenable):
    """The events of a subscription to a space over CoAP, on the caller's event loop
    (:meth:`AsyncCoapSpace.subscribe <tuplespace.AsyncCoapSpace.subscribe>`):
    ``async for event in sub``; see :class:`~tuplespace.Subscription`.  It begins when
    it is awaited, entered with ``async with`` or first read, raising then what the
    node refuses."""

    def __init__(self, space: _Space, since: int | None, lease: float | None, **stream: Any) -> None:
        self._changed = asyncio.Event()
        self._lease_seconds = lease
        self._opened = False
        super().__init__(_Stream(space, None, since=since, wake=self._changed.set, **stream), since)

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        space = self._stream.space
        try:
            await asyncio.wait_for(self.begin(self._lease_seconds), space.timeout)
        except TimeoutError:
            raise Unreachable(f"{space.url}: no answer within {space.timeout} s") from None

    async def get(self, timeout: float | None = None) -> Event | None:
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

    def __aiter__(self) -> AsyncCoapSubscription:
        return self

    async def __anext__(self) -> Event:
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

    async def __aenter__(self) -> AsyncCoapSubscription:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _item(item: Map) -> Event | EventsLost:
    """An event of a notification, or the news of events lost."""
    if "first_missing" in item:
        return EventsLost(item["first_missing"], item["oldest_available"])
    t: Tuple = item["tuple"]
    return Event(item["seq"], item["kind"], t, item["time"])


async def _call(function: Callable[..., None], *args: Any) -> None:
    function(*args)
