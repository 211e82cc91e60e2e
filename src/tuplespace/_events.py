"""Events: what happened in a space, numbered, logged and fed to subscribers.

Every change of a space is an :class:`Event` with a per-space, strictly increasing
sequence number: ``write``, ``take``, ``expire`` (a lease ran out) and ``cancel``
(a lease was cancelled).  The engine keeps the latest events in a bounded log.

A subscriber's :class:`Feed` holds at most ``max_pending`` undelivered events.
When it is full, it stops queueing and remembers where its gap starts; once the
subscriber has caught up, the feed refills itself from the log.  If the log no
longer reaches back to the gap, the subscriber gets :class:`EventsLost` naming
the first missing sequence number, never a silent gap.  So memory is bounded by
the log's retention plus ``max_pending`` per subscriber, however slow it is.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from ._errors import EventsLost
from ._registry import Interest
from ._templates import Template
from ._values import Value

__all__ = ["EVENT_KINDS", "Event", "Feed", "RawEvent"]

EVENT_KINDS = frozenset({"write", "take", "expire", "cancel"})


class Event(NamedTuple):
    """One change of a space: ``seq`` (its number), ``kind``, the ``tuple`` and the ``time``."""

    seq: int
    kind: str
    tuple: tuple[Value, ...]
    time: float


RawEvent = tuple[int, str, tuple[Value, ...], float]
"""An event as the log keeps it: the fields of :class:`Event`, in a plain tuple."""


class FeedTemplate(Interest):
    """One template of a feed, registered with the engine."""

    __slots__ = ("feed",)

    def __init__(self, seq: int, template: Template, feed: Feed) -> None:
        super().__init__(seq, template)
        self.feed = feed


class Feed:
    """The engine side of a subscription: what is queued for it, and where its gap is."""

    __slots__ = (
        "closed",
        "delivered",
        "expires",
        "gap",
        "kinds",
        "last_seq",
        "max_pending",
        "overflows",
        "queue",
        "seq",
        "templates",
        "wake",
    )

    def __init__(
        self,
        seq: int,
        templates: list[FeedTemplate],
        kinds: frozenset[str],
        max_pending: int,
        expires: float | None,
    ) -> None:
        self.seq = seq
        self.templates = templates
        self.kinds = kinds
        self.max_pending = max_pending
        self.expires = expires
        self.queue: deque[Event] = deque()
        self.gap: int | None = None  # the first event not queued, to be refilled from the log
        self.closed = False
        self.wake: Callable[[], object] = nothing
        self.delivered = 0
        self.overflows = 0
        self.last_seq = 0  # the last event handed to the subscriber

    def wants(self, raw: RawEvent) -> bool:
        return raw[1] in self.kinds and any(ft.template.matches(raw[2]) for ft in self.templates)

    def push(self, event: Event) -> None:
        if self.gap is not None or event.kind not in self.kinds:
            return
        if self.queue and self.queue[-1] is event:  # matched by two of its templates
            return
        if len(self.queue) >= self.max_pending:
            self.gap = event.seq
            self.overflows += 1
            return
        self.queue.append(event)
        self.wake()

    def pop(self, log: deque[RawEvent], next_seq: int) -> Event | None:
        """The next event, refilling from ``log`` after a gap.

        Raises EventsLost if the log no longer reaches back to the gap; the feed
        then goes on from the oldest event the log still holds.
        """
        if not self.queue and self.gap is not None:
            self._refill(log, next_seq)
        if not self.queue:
            return None
        event = self.queue.popleft()
        self.delivered += 1
        self.last_seq = event.seq
        return event

    def _refill(self, log: deque[RawEvent], next_seq: int) -> None:
        gap: int = self.gap  # type: ignore[assignment]
        oldest = log[0][0] if log else next_seq
        if oldest > gap:
            self.gap = oldest if log else None
            raise EventsLost(gap, oldest)
        # The log's sequence numbers are contiguous, so the gap's place is known.
        for raw in itertools.islice(log, gap - oldest, None):
            if self.wants(raw):
                if len(self.queue) >= self.max_pending:
                    self.gap = raw[0]
                    return
                self.queue.append(Event(*raw))
        self.gap = None

    def statistics(self) -> dict[str, Any]:
        """Pending and delivered events, overflows and where the gap is."""
        return {
            "pending": len(self.queue),
            "delivered": self.delivered,
            "overflows": self.overflows,
            "gap_from": self.gap,
            "last_seq": self.last_seq,
            "closed": self.closed,
        }

    def __repr__(self) -> str:
        return f"Feed({self.seq}, pending={len(self.queue)}, gap={self.gap})"


def nothing() -> None:
    """A wake-up call that wakes nobody."""
    return None
