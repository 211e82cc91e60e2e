"""A space's events observed over CoAP (the server side of ``subscribe`` on a
``coap://`` space, and of ``watch_records`` and a record's ``watch``, whose changes
travel the same way; docs/federation.md, "Subscriptions over Observe").

A peer registers with a FETCH of ``/spaces/<space>?op=subscribe`` carrying Observe 0
and a template; the node opens a subscription of the embedded space for it, reads
its events as they come into what the next notification carries, and notifies.
Each notification is ``{"after": n, "events": [...]}``: the events (and the news of
events lost) that came since the notification before, which ended with event ``n``;
the answer to the registration says ``"new": true`` too.  A subscription with
present events (``existing``) says where they stand, ``"present": [upto, after,
last]``, in the answer and in each notification carrying some: the last tuple there
when it began, the last present one notified before, and the last in this one.
A notification is retransmitted until acknowledged, one at a time; one never
acknowledged ends the observation, and the peer, seeing that the next one does not
go on from where it is, registers again from there (``since=``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._aio import AsyncRecordWatch, AsyncSubscription
from .._errors import EventsLost
from .._events import Change, Event
from .._values import Map, Value, footprint
from ..server._errors import ApiError
from ._message import Message

__all__ = ["EventFeed", "change_item", "event_item", "lost_item"]

# Bytes counted for an event beside its tuple's footprint: its number, kind and time.
EVENT_OVERHEAD = 48


def event_item(seq: int, kind: str, t: tuple[Value, ...], time: float) -> Map:
    """An event as a notification carries it (the fields of the HTTP API's event stream)."""
    return Map({"seq": seq, "kind": kind, "tuple": t, "time": time})


def change_item(change: Change) -> Map:
    """A record's change as a notification carries it (the fields of :class:`~tuplespace.Change`)."""
    return Map(change._asdict())


def _item(event: Event | Change) -> tuple[Map, int]:
    """What a notification carries of an event or a change, and the bytes it counts."""
    if isinstance(event, Change):
        return change_item(event), footprint((event.path, event.tag, event.value)) + EVENT_OVERHEAD
    return event_item(event.seq, event.kind, event.tuple, event.time), footprint(event.tuple) + EVENT_OVERHEAD


def lost_item(exc: EventsLost) -> Map:
    """The news that events are lost, as a notification carries it."""
    return Map({"first_missing": exc.first_missing, "oldest_available": exc.oldest_available})


class EventFeed:
    """One peer's observation of a space's events: a :class:`~._endpoint.Feed`.

    Events are read from ``subscription`` as they come, while those waiting for the
    next notification hold less than ``max_bytes`` (their tuples' footprint): past
    that the embedded subscription holds back, and catches up from the space's
    event log.  ``after`` is the event the peer's subscription goes on from;
    ``lost``, events it asked for that the log no longer has (told first).
    ``answer`` renders a notification's map in the format the peer asked for, or
    the error that ends the observation: ``ended`` once the subscription has ended;
    ``release`` is called once the observation ends.
    """

    def __init__(
        self,
        subscription: AsyncSubscription | AsyncRecordWatch,
        after: int,
        lost: EventsLost | None,
        *,
        notify: Callable[[], None],
        answer: Callable[[Map | ApiError], Message],
        ended: ApiError,
        max_bytes: int,
        release: Callable[[], None],
    ) -> None:
        self._subscription = subscription
        self._after = after
        self._items: list[Map] = [] if lost is None else [lost_item(lost)]
        self._next_after = after if lost is None else lost.oldest_available - 1
        self._bytes = 0
        self._max_bytes = max_bytes
        self._room = asyncio.Event()
        self._notify = notify
        self._answer = answer
        self._end = ended
        self._release = release
        self._ended = False
        self._cancelled = False
        self._closing: asyncio.Task[None] | None = None  # the close, held: a loop holds its tasks weakly
        self._new = True
        # Where the present events stand: the last tuple there when the subscription
        # began, the last present one notified, the last read (None: no present events).
        presence = subscription.presence if isinstance(subscription, AsyncSubscription) else None
        self._upto = None if presence is None else presence[0]
        self._present_after = self._present_last = 0 if presence is None else presence[1]
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Read the subscription's events into the next notification, and notify."""
        subscription = self._subscription
        while True:
            while self._bytes >= self._max_bytes:
                self._room.clear()
                await self._room.wait()
            try:
                event = await subscription.get()
            except EventsLost as exc:
                self._items.append(lost_item(exc))
                self._next_after = exc.oldest_available - 1
                self._notify()
                continue
            if event is None:  # the space closed, the record is gone, or the node ended it
                self._ended = True
                self._notify()
                return
            item, size = _item(event)
            self._items.append(item)
            if event.kind != "present":
                self._next_after = event.seq
            else:
                presence = subscription.presence  # read with the event: where it was in the walk
                if presence is not None:
                    self._present_last = presence[1]
            self._bytes += size
            self._notify()

    def render(self, request: Message) -> Message:
        """The events since the last notification (the answer to a registration: those
        since it began), after which the peer is at the last of them."""
        if self._ended and not self._items:
            return self._answer(self._end)
        items, self._items = self._items, []
        if self._ended:  # the end follows, in a notification of its own
            self._notify()
        after, self._after = self._after, self._next_after
        self._bytes = 0
        self._room.set()
        body: dict[str, Value] = {"after": after, "events": tuple(items)}
        if self._upto is not None and (self._new or self._present_last != self._present_after):
            body["present"] = (self._upto, self._present_after, self._present_last)
            self._present_after = self._present_last
        if self._new:
            body["new"], self._new = True, False
        return self._answer(Map(body))

    def cancel(self) -> None:
        """End the observation and the subscription it reads (once: its last
        notification ends it, and so may that notification going unacknowledged)."""
        if self._cancelled:
            return
        self._cancelled = True
        self._reader.cancel()
        self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        """Close the subscription read, then count it no more: a node that counts no
        stream of a space leaves it no subscriber."""
        try:
            await self._subscription.close()
        finally:
            self._release()
