"""Events: what happened in a space, numbered, logged and fed to subscribers.

Every change of a space is an event with a per-space, strictly increasing
sequence number.  A tuple's is an :class:`Event`: ``write``, ``take``, ``expire``
(a lease ran out) and ``cancel`` (a lease was cancelled).  A record's is a
:class:`Change` (``create``, ``update``, ``move``, ``destroy``, ``expire``); both
kinds share one numbering and one bounded log, kept by the engine.

A subscriber's feed (a :class:`Feed` of tuple events, or a record's feed of its
changes, see :mod:`tuplespace._recordstore`) holds at most ``max_pending`` undelivered
events, and at most :data:`MAX_PENDING_BYTES` of their values (as
:func:`~tuplespace._values.footprint` counts them), and the feeds of one space hold
at most :data:`MAX_SPACE_PENDING_BYTES` together (:class:`PendingBytes`); one event
is always queued, whatever its size.  When it is full, it stops queueing and remembers where its gap
starts; once the subscriber has caught up, the feed refills itself from the log.  If
the log no longer reaches back to the gap, the subscriber gets :class:`EventsLost`
naming the first missing sequence number, never a silent gap.  So memory is bounded
by the log's retention plus ``max_pending`` events per subscriber and
:data:`MAX_SPACE_PENDING_BYTES` per space, however slow the subscribers are.

A feed opened with ``existing`` first reports the tuples already in the space
(events of kind ``present``, see :class:`Presence`), then its live events.  Its
present events are not queued: each is looked up in the space when the
subscriber asks for it, so they cost no memory beyond one reference per template.
"""

from __future__ import annotations

import abc
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from ._errors import EventsLost, InvalidValue
from ._registry import Interest
from ._templates import Template
from ._values import Value, footprint

__all__ = [
    "CHANGE_KINDS",
    "EVENT_KINDS",
    "Change",
    "Event",
    "Feed",
    "FeedBase",
    "MAX_PENDING_BYTES",
    "MAX_SPACE_PENDING_BYTES",
    "PendingBytes",
    "Presence",
    "RawEvent",
    "RecordEvent",
    "RecordFeed",
    "RecordWatchers",
    "check_existing",
]

# Bytes of the values one feed holds queued for its subscriber, and all the feeds of a space.
MAX_PENDING_BYTES = 16 << 20
MAX_SPACE_PENDING_BYTES = 256 << 20
EVENT_KINDS = frozenset({"write", "take", "expire", "cancel"})
CHANGE_KINDS = frozenset({"create", "update", "move", "destroy", "expire"})
_new_event = tuple.__new__  # an Event from a raw one, without NamedTuple's Python-level __new__


class Event(NamedTuple):
    """One change of a space: ``seq`` (its number), ``kind``, the ``tuple`` and the ``time``.

    A subscription opened with ``existing=True`` first yields an event of kind
    ``"present"`` for each matching tuple already there; its ``seq`` is the number of
    the last event before the subscription began (resume with ``since=`` it to get
    the live events, without the present ones again) and its ``time`` when the
    subscription began.
    """

    seq: int
    kind: str
    tuple: tuple[Value, ...]
    time: float


class Change(NamedTuple):
    """One change of a record (what :meth:`tuplespace.Record.watch` yields).

    - ``seq``: its number, shared with the space's tuple events; resume after it
      with ``watch(since=seq)``;
    - ``kind``: ``"create"``, ``"update"`` (one field set), ``"move"``,
      ``"destroy"`` or ``"expire"`` (its lease or credit ran out);
    - ``path``: the record's path after the change;
    - ``tag`` and ``value``: for ``"update"`` the field and its new value; for
      ``"create"`` the tag is None and the value the record's fields (a
      :class:`~tuplespace.Map`); for ``"move"`` the tag is None and the value the
      path it moved from; otherwise both are None;
    - ``version``: the record's ``$version`` after the change;
    - ``time``: when it happened (seconds since the epoch, from the space's clock).
    """

    seq: int
    kind: str
    path: str
    tag: str | None
    value: Value
    version: int
    time: float


RawEvent = tuple[int, str, Any, float]
"""An event as the log keeps it: ``(seq, kind, what, time)``.  ``what`` is the
tuple of a tuple event (always exactly a ``tuple``) or the record change of a
record event (never a ``tuple``)."""


class FeedTemplate(Interest):
    """One template of a feed, registered with the engine."""

    __slots__ = ("feed",)

    def __init__(self, seq: int, template: Template, feed: Feed) -> None:
        super().__init__(seq, template)
        self.feed = feed


class _Numbered(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def kind(self) -> str: ...


E = TypeVar("E", bound=_Numbered)


class PendingBytes:
    """The bytes of the values that some feeds (those of one space) hold queued, together:
    ``total``, at most ``most``."""

    __slots__ = ("most", "total")

    def __init__(self, most: int) -> None:
        self.most = most
        self.total = 0


class FeedBase(abc.ABC, Generic[E]):
    """The engine side of a subscription: what is queued for it, and where its gap is.

    Subclasses say which logged events they want and what they deliver for one.
    """

    __slots__ = (
        "closed",
        "delivered",
        "expires",
        "gap",
        "kinds",
        "last_seq",
        "max_pending",
        "overflows",
        "pending_bytes",
        "queue",
        "seq",
        "shared",
        "sizes",
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
        self.queue: deque[E] = deque()
        self.sizes: deque[int] = deque()  # the footprint of each event queued
        self.pending_bytes = 0
        self.shared = PendingBytes(MAX_PENDING_BYTES)  # its space's, once the engine has it
        self.gap: int | None = None  # the first event not queued, to be refilled from the log
        self.closed = False
        self.wake: Callable[[], object] = nothing
        self.delivered = 0
        self.overflows = 0
        self.last_seq = 0  # the last event handed to the subscriber

    @abc.abstractmethod
    def wants(self, raw: RawEvent) -> bool:
        """Whether the logged event ``raw`` is for this feed."""

    @abc.abstractmethod
    def make(self, raw: RawEvent) -> E:
        """What the subscriber gets for the logged event ``raw``."""

    @abc.abstractmethod
    def size(self, event: E) -> int:
        """The bytes the values of ``event`` hold (:func:`~tuplespace._values.footprint`)."""

    def _room(self, size: int) -> bool:
        """Whether an event of ``size`` bytes may be queued."""
        queue, shared = self.queue, self.shared
        return not queue or (
            len(queue) < self.max_pending
            and self.pending_bytes + size <= MAX_PENDING_BYTES
            and shared.total + size <= shared.most
        )

    def _queue(self, event: E, size: int) -> None:
        self.queue.append(event)
        self.sizes.append(size)
        self.pending_bytes += size
        self.shared.total += size

    def share(self, shared: PendingBytes) -> None:
        """Count what the feed queues in ``shared`` (its space's) from now on."""
        self.shared.total -= self.pending_bytes
        shared.total += self.pending_bytes
        self.shared = shared

    def detach(self) -> None:
        """Count what the feed still holds in nothing shared (it has ended)."""
        self.share(PendingBytes(MAX_PENDING_BYTES))

    def push(self, event: E) -> None:
        """Queue ``event`` if the feed wants its kind and has room for it."""
        if self.gap is None and event.kind in self.kinds:
            self._offer(event, self.size(event))

    def _offer(self, event: E, size: int) -> None:
        """Queue ``event``, of ``size`` bytes, or start a gap if there is no room for it."""
        queue = self.queue
        if queue:  # (_room and _queue, inlined: this is the hot path of a write with subscribers)
            if queue[-1].seq == event.seq:  # matched by two of its templates
                return
            shared = self.shared
            if (
                len(queue) >= self.max_pending
                or self.pending_bytes + size > MAX_PENDING_BYTES
                or shared.total + size > shared.most
            ):
                self.gap = event.seq
                self.overflows += 1
                return
        queue.append(event)
        self.sizes.append(size)
        self.pending_bytes += size
        self.shared.total += size
        self.wake()

    def pop(self, log: deque[RawEvent], next_seq: int) -> E | None:
        """The next event, refilling from ``log`` after a gap.

        Raises EventsLost if the log no longer reaches back to the gap; the feed
        then goes on from the oldest event the log still holds.
        """
        if not self.queue and self.gap is not None:
            self._refill(log, next_seq)
        if not self.queue:
            return None
        event = self.queue.popleft()
        size = self.sizes.popleft()
        self.pending_bytes -= size
        self.shared.total -= size
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
                event = self.make(raw)
                size = self.size(event)
                if not self._room(size):
                    self.gap = raw[0]
                    return
                self._queue(event, size)
        self.gap = None

    def statistics(self) -> dict[str, Any]:
        """Pending and delivered events, overflows and where the gap is."""
        return {
            "pending": len(self.queue),
            "pending_bytes": self.pending_bytes,
            "delivered": self.delivered,
            "overflows": self.overflows,
            "gap_from": self.gap,
            "last_seq": self.last_seq,
            "closed": self.closed,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.seq}, pending={len(self.queue)}, gap={self.gap})"


class Stored(Protocol):
    """A tuple stored in a space, as :class:`Presence` walks them: ``tuple`` is None
    once it has left the space."""

    @property
    def seq(self) -> int: ...

    @property
    def tuple(self) -> tuple[Value, ...] | None: ...


class Presence:
    """The tuples a feed opened with ``existing`` has still to report: those that were
    in the space when it opened, in the space's order (FIFO and random: oldest first;
    LIFO: newest first), each once even if several templates match it.

    It keeps no list of them, only each template's next match, looked up in the space
    (``next_match(template, after)``: the first stored match past the seq ``after`` in
    that order, among the tuples there when the feed opened) once the one before it
    is reported.  A tuple that leaves the space before its turn is not reported as
    present (its leaving event comes among the live ones, if the feed wants it); one
    taken inside a transaction is out of the space until the transaction ends, and
    reported if put back before the walk has passed its place.

    ``upto`` is the seq of the last tuple there when the feed opened, ``at`` that of
    the last one reported (``start`` before the first): a walk begun at ``start`` =
    ``at`` goes on from there (see :meth:`tuplespace.Subscription.presence`).
    """

    __slots__ = ("at", "heads", "newest_first", "next_match", "seq", "start", "templates", "time", "upto")

    def __init__(
        self,
        templates: list[Template],
        next_match: Callable[[Template, int], Stored | None],
        newest_first: bool,
        start: int,
        seq: int,
        time: float,
        upto: int,
    ) -> None:
        self.templates = templates
        self.next_match = next_match
        self.newest_first = newest_first
        self.seq = seq
        self.time = time
        self.start = self.at = start
        self.upto = upto
        self.heads: list[Stored | None] | None = None  # looked up when first asked for

    def next(self) -> Event | None:
        """The next present event, or None when all have been reported."""
        templates, newest_first = self.templates, self.newest_first
        heads = self.heads
        if heads is None:
            heads = self.heads = [self.next_match(t, self.start) for t in templates]
        pick: Stored | None = None
        for i, head in enumerate(heads):
            if head is not None and head.tuple is None:
                # It left the space; look again from its place (a tuple put back keeps its seq).
                before = head.seq + 1 if newest_first else head.seq - 1
                head = heads[i] = self.next_match(templates[i], before)
            if head is not None and (
                pick is None or (head.seq > pick.seq if newest_first else head.seq < pick.seq)
            ):
                pick = head
        if pick is None:
            return None
        t: tuple[Value, ...] = pick.tuple  # type: ignore[assignment]
        for i, head in enumerate(heads):
            if head is not None and head.seq == pick.seq:
                heads[i] = self.next_match(templates[i], pick.seq)
        self.at = pick.seq
        return Event(self.seq, "present", t, self.time)


class Feed(FeedBase[Event]):
    """The feed of a subscription to tuple events that match its templates; with a
    :class:`Presence` (``present``), the tuples already there come first."""

    __slots__ = ("present",)

    def __init__(
        self,
        seq: int,
        templates: list[FeedTemplate],
        kinds: frozenset[str],
        max_pending: int,
        expires: float | None,
    ) -> None:
        super().__init__(seq, templates, kinds, max_pending, expires)
        self.present: Presence | None = None

    def pop(self, log: deque[RawEvent], next_seq: int) -> Event | None:
        if self.present is not None:
            event = self.present.next()
            if event is not None:
                self.delivered += 1
                return event
            self.present = None
        return super().pop(log, next_seq)

    def statistics(self) -> dict[str, Any]:
        """See :meth:`FeedBase.statistics`; ``presenting``: present events are still to come."""
        return {**super().statistics(), "presenting": self.present is not None}

    def push(self, event: Event | RawEvent) -> None:
        """Queue the event ``event`` (the engine hands its raw events to the feeds of
        its tuples, and each feed that wants one makes its :class:`Event`): as
        :meth:`FeedBase.push`, the size taken from the tuple without a call of :meth:`size`."""
        if self.gap is None and event[1] in self.kinds:
            self._offer(_new_event(Event, event), footprint(event[2]))

    def wants(self, raw: RawEvent) -> bool:
        what = raw[2]
        return (
            raw[1] in self.kinds
            and type(what) is tuple
            and any(ft.template.matches(what) for ft in self.templates)
        )

    def make(self, raw: RawEvent) -> Event:
        return Event(*raw)

    def size(self, event: Event) -> int:
        return footprint(event.tuple)


class RecordEvent:
    """What the log holds for a record event: the record's rid and its change (never
    a tuple, so feeds of tuple events skip it)."""

    __slots__ = ("change", "rid")

    def __init__(self, rid: int, change: Change) -> None:
        self.rid = rid
        self.change = change


class RecordFeed(FeedBase[Change]):
    """The feed of a record watcher: the changes of one record (``rid``), or of every
    record whose path starts with ``under`` (``rid`` None; ``under`` None: all).
    ``cap`` is the token of the capability it watches through (None: a full handle),
    which ends it when it ends."""

    __slots__ = ("cap", "rid", "under")

    def __init__(
        self,
        seq: int,
        rid: int | None,
        under: str | None,
        kinds: frozenset[str],
        max_pending: int,
        cap: str | None = None,
    ) -> None:
        super().__init__(seq, [], kinds, max_pending, None)
        self.rid = rid
        self.under = under
        self.cap = cap

    def wants(self, raw: RawEvent) -> bool:
        what = raw[2]
        return (
            type(what) is RecordEvent
            and raw[1] in self.kinds
            and (what.rid == self.rid if self.rid is not None else self.covers(what.change.path))
        )

    def covers(self, path: str) -> bool:
        return self.under is None or path.startswith(self.under)

    def make(self, raw: RawEvent) -> Change:
        logged: RecordEvent = raw[2]
        return logged.change

    def size(self, event: Change) -> int:
        return footprint((event.path, event.tag, event.value))


class RecordWatchers:
    """The feeds of a space's record watchers: those of each record, by rid, and
    those of all records below a path."""

    __slots__ = ("_of", "_wide")

    def __init__(self) -> None:
        self._of: dict[int, list[RecordFeed]] = {}
        self._wide: list[RecordFeed] = []

    def add(self, feed: RecordFeed) -> None:
        if feed.rid is None:
            self._wide.append(feed)
        else:
            self._of.setdefault(feed.rid, []).append(feed)

    def deliver(self, rid: int, change: Change) -> None:
        """Push the change of record ``rid`` to the feeds that want it (dropping closed ones)."""
        feeds = self._of.get(rid)
        if feeds:
            for feed in list(feeds):
                if feed.closed:
                    feeds.remove(feed)
                else:
                    feed.push(change)
            if not feeds:
                del self._of[rid]
        for feed in list(self._wide):
            if feed.closed:
                self._wide.remove(feed)
            elif feed.covers(change.path):
                feed.push(change)

    def pop(self, rid: int) -> list[RecordFeed]:
        """The feeds watching record ``rid``, which has ended."""
        return self._of.pop(rid, [])

    def pop_through(self, rid: int, cap: str) -> list[RecordFeed]:
        """The feeds watching record ``rid`` through the capability ``cap``, which has ended."""
        feeds = self._of.get(rid)
        if not feeds:
            return []
        through = [feed for feed in feeds if feed.cap == cap]
        if through:
            kept = [feed for feed in feeds if feed.cap != cap]
            if kept:
                self._of[rid] = kept
            else:
                del self._of[rid]
        return through

    def pop_all(self) -> list[RecordFeed]:
        feeds = [*itertools.chain.from_iterable(self._of.values()), *self._wide]
        self._of.clear()
        self._wide.clear()
        return feeds

    def __bool__(self) -> bool:
        return bool(self._of or self._wide)

    def __len__(self) -> int:
        return sum(not f.closed for feeds in (*self._of.values(), self._wide) for f in feeds)


def check_existing(existing: bool, since: int | None) -> bool:
    """``existing``, once checked that it is a bool and not given with ``since``."""
    if type(existing) is not bool:
        raise InvalidValue(f"existing must be True or False, got {existing!r}", "existing")
    if existing and since is not None:
        raise InvalidValue(
            "existing=True starts a subscription with the tuples present, since= resumes one: "
            "give one of them",
            "existing",
        )
    return existing


def nothing() -> None:
    """A wake-up call that wakes nobody."""
    return None
