"""Subscriptions: the events of a space, as an iterator that waits for the next one.

:class:`SubscriptionBase` is what the faces of a subscription share (and of a
record's watch): the feed it reads (see :mod:`tuplespace._events`) and the calls
that never wait.  :func:`next_from` waits for a feed's next item in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._clock import wait_event
from ._engine import E
from ._errors import Timeout
from ._events import Event, FeedBase, nothing

if TYPE_CHECKING:
    from ._core import Core

__all__ = ["Subscription", "SubscriptionBase", "next_from"]


def next_from(core: Core, feed: FeedBase[E], timeout: float | None) -> E | None:
    """The next item of ``feed``, waiting up to ``timeout`` seconds (:class:`Timeout`
    after); None once the feed has ended."""
    engine = core.engine
    with core.lock:
        event = engine.next_event(feed)
        if event is not None:
            return event
        deadline = engine.deadline(timeout)
    ready = threading.Event()
    while True:
        with core.lock:
            feed.wake = nothing
            event = engine.next_event(feed)
            if event is not None:
                return event
            if feed.closed:
                return None
            if deadline is not None and engine.clock.now() >= deadline:
                raise Timeout("no event in time")
            ready.clear()
            feed.wake = ready.set
        wait_event(ready, engine.clock, deadline)


class SubscriptionBase:
    """What both faces of a subscription (or of a record's watch) share: its state
    and the calls that never wait."""

    def __init__(self, core: Core, feed: FeedBase[Any]) -> None:
        self._core = core
        self._feed = feed

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event delivered: resume with ``since=`` it."""
        return self._feed.last_seq

    @property
    def closed(self) -> bool:
        return self._feed.closed

    @property
    def presence(self) -> tuple[int, int] | None:
        """Where the present events of a subscription opened with ``existing=True``
        stand: the seq of the last tuple there when it began and that of the last
        one reported as present (in the space's order); None when none are to come.
        A CoAP node sends it with its notifications, so that a peer registering
        again goes on with them (docs/federation.md, "Subscriptions over Observe")."""
        present = getattr(self._feed, "present", None)  # a record watch's feed has none
        return None if present is None else (present.upto, present.at)

    def statistics(self) -> dict[str, Any]:
        """Pending and delivered events, overflows and where the gap is."""
        with self._core.lock:
            return self._feed.statistics()

    def _renew(self, lease: float | None) -> None:
        with self._core.lock:
            self._core.engine.renew_feed(self._feed, lease)
            self._core.start_timer()

    def _close(self) -> None:
        with self._core.lock:
            self._core.engine.unsubscribe(self._feed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_seq={self.last_seq}, closed={self.closed})"


class Subscription(SubscriptionBase):
    """The events of a subscription (:meth:`Space.subscribe`), as an iterator.

    Iteration waits for the next event and ends when the subscription is closed
    (by :meth:`close`, its lease, or the space closing).  A subscriber that falls
    more than ``max_pending`` events behind catches up from the space's event log
    without losing any; only if the log no longer holds them does the next call
    raise :class:`EventsLost`, saying exactly which events are gone, and iteration
    can go on from the oldest the log still has.
    """

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (:class:`Timeout` after);
        None once the subscription has ended."""
        return next_from(self._core, self._feed, timeout)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def renew(self, lease: float | None) -> None:
        """End the subscription ``lease`` seconds from now (None: never)."""
        self._renew(lease)

    def close(self) -> None:
        """End the subscription; a waiting :meth:`get` returns None."""
        self._close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
