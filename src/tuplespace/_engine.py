"""The engine: the tuples of one space, their indexes, leases and waiters.

Design
------
The engine does no I/O, never sleeps and never blocks; it reads time only from
its clock.  It is not thread-safe: a shell (:class:`~tuplespace.Space`,
:class:`~tuplespace.AsyncSpace`, the server) holds one lock around every call and
turns "no match yet" into waiting, using the waiters the engine keeps.

Tuples.  Every stored tuple is an :class:`Entry` with a sequence number ``seq``,
given in write order; it is the tuple's identity, its place in the order and the
id of its lease.  Tuples are grouped by arity in a :class:`_Shelf`.  A shelf keeps
all its entries in seq order (``all``) and, for every field position, a dict from
the typed key of the value at that position (:func:`value_key`) to the entries
holding it, again in seq order.  A position's dict maps a value held by one tuple
to that entry itself and upgrades it to a :class:`_Bucket` (a deque) on the
second, which keeps a million distinct values cheap.

A template with exact values looks up the bucket of each exact field and scans
the smallest one, so ``("item", 42, ANY)`` touches only the tuples whose second
field is 42, however large the space.  Removal is lazy: a removed entry gets
``tuple = None`` and stays in the deques until it reaches an end, or until dead
entries make up half of a bucket, which is then compacted; every operation stays
amortised O(1) in the size of the space.

Order.  FIFO takes the first live match of a bucket, LIFO the last, "random"
draws among all matches.  A tuple put back (an aborted take) keeps its seq and is
re-inserted at its place.

Waiters.  A blocked read or take is a :class:`Waiter`, filed in a
:class:`~tuplespace._registry.Registry` under one exact field of its template.
A write looks up only the waiters filed under its own values, visits them in
arrival order, hands a copy to every matching reader and the tuple itself to the
first matching taker; then it is not stored at all.  So a write wakes exactly the
waiters it satisfies, and 10,000 blocked takers on other values cost it nothing.
A blocked ``take_all`` is one :class:`GroupWaiter`: it takes every match handed to
it, as a taker does, until its limit; a batch of writes (``write_many``, a commit)
hands it all the matches of the batch before waking it, so it wakes once with all.
A write into a full space (``capacity``) waits in a FIFO queue of writers and is
done by the engine as soon as a removal makes room.

Events.  Every write, take, expiry and cancellation is an event with the next
sequence number, kept in a bounded log and pushed to the feeds of matching
subscriptions (registered like waiters); see :mod:`tuplespace._events`.  A feed
opened with ``existing`` walks the tuples stored when it opened, a template's next
match at a time, before its live events.  A take handed a tuple by a write is made
final (its event emitted) when its caller receives it: one cancelled before puts
the tuple back without a trace.

Records.  The named records of the space, their index, credit and capabilities
are kept by a :class:`~tuplespace._recordstore.RecordStore` (``engine.records``) on
the same clock, log, lease heap and journal; see :mod:`tuplespace._recordstore`.

Transactions.  A :class:`Txn` holds what it took, out of the space (nobody else
sees it), and keeps its writes private.  Commit emits the take events and writes
the private tuples; abort (or its lease running out) puts every taken tuple back
at its place in the order, by its seq, and drops the writes.

Leases.  Finite leases sit in a heap by expiry time; :meth:`Engine.tick`, called
at the start of operations, pops what has fallen due.  No thread sweeps the space,
and an expired tuple is never returned.  The heap also holds the expiries of
records, capabilities and redirections, which the tick hands to the record store.
Deadlines of waits, transactions and subscriptions are in a second heap;
:meth:`Engine.next_deadline` tells a shell when to call :meth:`Engine.tick` if
nothing else happens.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TypeVar

from . import _xpath
from ._capabilities import Cap
from ._clock import Clock
from ._errors import (
    EventsLost,
    InvalidValue,
    LimitReached,
    SpaceClosed,
    SpaceFull,
    TransactionAborted,
    TransactionError,
    UnknownLease,
)
from ._events import (
    EVENT_KINDS,
    MAX_SPACE_PENDING_BYTES,
    Change,
    Event,
    Feed,
    FeedBase,
    FeedTemplate,
    PendingBytes,
    Presence,
    RawEvent,
    check_existing,
)
from ._journal import Journal
from ._lease import check_lease
from ._recordstore import (
    DEFAULT_BASE_URI,
    DEFAULT_MINT_BITS,
    DEFAULT_OPERATOR,
    Hold,
    Rec,
    RecordStore,
    Redirect,
)
from ._registry import Interest, Registry
from ._templates import Template
from ._values import DEFAULT_LIMITS, Limits, Tuple, check_tuple, footprint, value_key

__all__ = ["EVENT_RETENTION_BYTES", "ORDERS", "Engine", "Entry", "GroupWaiter", "Txn", "Waiter"]

ORDERS: Final = ("fifo", "lifo", "random")
EVENT_RETENTION_BYTES: Final = 64 << 20
_BATCH: Final = 64  # matches find_page gives its fits at a time

E = TypeVar("E", Event, Change)


class Entry:
    """A stored tuple.  ``tuple`` is None once it has left the space."""

    __slots__ = ("expires", "seq", "tuple")

    def __init__(self, seq: int, t: Tuple | None, expires: float | None) -> None:
        self.seq = seq
        self.tuple = t
        self.expires = expires

    def __repr__(self) -> str:
        return f"Entry({self.seq}, {self.tuple!r}, expires={self.expires})"


class _Bucket(deque[Entry]):
    """Entries in seq order; ``dead`` counts the removed ones still inside."""

    __slots__ = ("dead",)

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        super().__init__(entries)
        self.dead = 0


WAITING, DONE, TIMED_OUT, CLOSED, ABORTED = "waiting", "done", "timed out", "closed", "aborted"
ACTIVE, COMMITTED = "active", "committed"


class Waiter(Interest):
    """A blocked call: a read or take waiting for a tuple (filed in the registry as an
    interest in its template), or a write waiting for room (queued apart).

    The shell waits until ``state`` leaves WAITING; ``wake`` is called (under the
    shell's lock) when it does, and returns False if the caller can no longer
    receive a result (its event loop is gone).
    """

    __slots__ = ("deadline", "entry", "kind", "lease", "result", "state", "txn", "wake")

    def __init__(
        self,
        seq: int,
        template: Template,
        kind: str,
        deadline: float | None,
        wake: Callable[[], object],
        txn: Txn | None = None,
    ) -> None:
        self.seq = seq  # the fields of Interest, set here: a waiter is made on every wait
        self.template = template
        self.pos = -1
        self.key = None
        self.kind = kind  # "read", "take" or "write"
        self.deadline = deadline
        self.wake = wake
        self.txn = txn
        self.state = WAITING
        self.result: Tuple | None = None
        self.entry: Entry | None = None  # a take: what to put back if the taker is gone
        self.lease: float | None = None  # a write: the lease it asked for

    def __repr__(self) -> str:
        return f"Waiter({self.kind}, {self.template!r}, {self.state})"


class GroupWaiter(Waiter):
    """A blocked ``take_all``: a take that gathers up to ``limit`` tuples (None: no
    limit), as many as ``fits`` keeps (see :meth:`Engine.find_page`), and hands them
    over at once: the tuples in ``got``, their entries in ``taken``; ``full`` if
    ``fits`` left a match out."""

    __slots__ = ("fits", "full", "got", "limit", "taken")

    def __init__(
        self,
        seq: int,
        template: Template,
        deadline: float | None,
        wake: Callable[[], object],
        txn: Txn | None,
        limit: int | None,
        fits: Callable[[list[Tuple]], int] | None,
    ) -> None:
        super().__init__(seq, template, "take", deadline, wake, txn)
        self.limit = limit
        self.fits = fits
        self.got: list[Tuple] = []
        self.taken: list[Entry] = []
        self.full = False


_ROOM = Template(())  # the template of a write waiting for room: it waits for no tuple


class Txn:
    """The engine side of a transaction: what it took (held) and what it wrote (private)."""

    __slots__ = ("expires", "seq", "state", "taken", "waits", "writes")

    def __init__(self, seq: int, expires: float | None) -> None:
        self.seq = seq
        self.expires = expires
        self.state = ACTIVE
        self.taken: list[Entry] = []
        self.writes: list[tuple[Tuple, float | None]] = []
        self.waits: set[Waiter] = set()

    def __repr__(self) -> str:
        return f"Txn({self.seq}, {self.state}, taken={len(self.taken)}, writes={len(self.writes)})"


class _Shelf:
    """The tuples of one arity."""

    __slots__ = ("all", "index")

    def __init__(self, arity: int) -> None:
        self.all = _Bucket()
        self.index: list[dict[Any, Entry | _Bucket]] = [{} for _ in range(arity)]


def _live(bucket: Entry | _Bucket) -> int:
    return len(bucket) - bucket.dead if isinstance(bucket, _Bucket) else 1


def _insert_ordered(bucket: _Bucket, entry: Entry) -> None:
    if not bucket or bucket[-1].seq < entry.seq:
        bucket.append(entry)
    else:
        bucket.insert(bisect.bisect_left(bucket, entry.seq, key=lambda e: e.seq), entry)


def _discard(b: _Bucket) -> None:
    """Account for one more dead entry in ``b``: trim dead ends, compact when half dead."""
    b.dead += 1
    while b and b[0].tuple is None:
        b.popleft()
        b.dead -= 1
    while b and b[-1].tuple is None:
        b.pop()
        b.dead -= 1
    if b.dead > 16 and 2 * b.dead > len(b):
        live = [e for e in b if e.tuple is not None]
        b.clear()
        b.extend(live)
        b.dead = 0


class Engine:
    """The state of one space.  See the module docstring for the design.

    Every public method must be called with the shell's lock held.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        order: str = "fifo",
        limits: Limits = DEFAULT_LIMITS,
        capacity: int | None = None,
        max_waiters: int = 100_000,
        max_subscribers: int = 10_000,
        event_retention: int = 10_000,
        event_retention_bytes: int = EVENT_RETENTION_BYTES,
        seed: int | None = None,
        name: str = "default",
        base_uri: str = DEFAULT_BASE_URI,
        charge_rate: object = 0,
        creation_charge: object = 0,
        operator: str = DEFAULT_OPERATOR,
        mint_amount: object = 0,
        mint_bits: object = DEFAULT_MINT_BITS,
        redirect_charge: object = 0,
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")
        for option, value in (
            ("max_waiters", max_waiters),
            ("max_subscribers", max_subscribers),
            ("event_retention", event_retention),
            ("event_retention_bytes", event_retention_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{option} must be an int >= 0, got {value!r}")
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(f"capacity must be a positive int or None, got {capacity!r}")
        self.clock = clock
        self._now = clock.now
        self.order = order
        self.limits = limits
        self.capacity = capacity
        self.max_waiters = max_waiters
        self.max_subscribers = max_subscribers
        self.closed = False
        self._seed = seed  # of the order's random choices, made when first needed
        self.last_seq = 0  # the seq of the latest tuple written
        self._loaded_seq = 0  # last_seq when the engine was loaded from a store
        self.journal: Journal | None = None  # set by a durable store: changes to persist
        self._shelves: dict[int, _Shelf] = {}
        self._by_seq: dict[int, Entry] = {}
        # Heaps of what falls due: leases (the record store files its own items with
        # schedule()) and the deadlines of waits, transactions and feeds.  Either one not
        # empty means a tick may be due, which the record store's reads check inline.
        self.leases: list[tuple[float, int, Entry | Rec | Cap | Redirect | Hold]] = []
        self.deadlines: list[tuple[float, int, Waiter | Txn | FeedBase[Any]]] = []
        self._tiebreak = itertools.count()
        self._interest_seq = itertools.count(1)
        self._waiters: Registry[Waiter] = Registry()
        # During a batch of writes: the group takers that got tuples, woken at its end.
        self._gathering: list[GroupWaiter] | None = None
        self._writers: deque[Waiter] = deque()
        self._feeds: Registry[FeedTemplate] = Registry()
        self._subscribers = 0
        self._log: deque[RawEvent] = deque(maxlen=event_retention)
        # (seq, bytes) of the logged events that alone keep values in memory: see log_event.
        self._charged: deque[tuple[int, int]] = deque()
        self.pending = PendingBytes(MAX_SPACE_PENDING_BYTES)  # what its feeds hold queued
        self._charged_bytes = 0
        self.event_retention_bytes = event_retention_bytes
        self._event_seq = 0
        self._txns: dict[int, Txn] = {}
        self._txn_seq = itertools.count(1)
        self._lifetimes: list[tuple[Template, float]] = []
        self._leased = 0
        self._counts = dict.fromkeys(("takes", "reads", "expired", "cancelled", "commits", "aborts"), 0)
        self.records = RecordStore(
            self,
            name=name,
            base_uri=base_uri,
            charge_rate=charge_rate,
            creation_charge=creation_charge,
            operator=operator,
            mint_amount=mint_amount,
            mint_bits=mint_bits,
            redirect_charge=redirect_charge,
        )

    @functools.cached_property
    def _random(self) -> random.Random:
        """The random choices of the ``random`` order (seeded once, when first needed)."""
        return random.Random(self._seed)

    # -- time ---------------------------------------------------------------

    def tick(self) -> None:
        """Expire leases and end waits, transactions and subscriptions that are due."""
        now = self.clock.now()
        leases = self.leases
        while leases and leases[0][0] <= now:
            expires, _, entry = heapq.heappop(leases)
            if not isinstance(entry, Entry):
                self.records.lapse(entry, expires)
            elif entry.tuple is not None and entry.expires == expires:
                self._counts["expired"] += 1
                self._emit("expire", self._remove(entry))
        self._admit()
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, item = heapq.heappop(deadlines)
            if isinstance(item, Waiter):
                if item.state is WAITING:
                    self._end_wait(item, TIMED_OUT)
            elif isinstance(item, Txn):
                if item.state is ACTIVE and item.expires is not None and item.expires <= now:
                    self.abort(item)
            elif not item.closed and item.expires is not None and item.expires <= now:
                self.unsubscribe(item)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing is scheduled)."""
        lease = self.leases[0][0] if self.leases else None
        other = self.deadlines[0][0] if self.deadlines else None
        if lease is None or (other is not None and other < lease):
            return other
        return lease

    def expiry(self, lease: float | None) -> float | None:
        """The absolute expiry time for a lease of ``lease`` seconds (None: forever)."""
        if lease is None:  # the common case, without a call
            return None
        seconds = check_lease(lease)
        return None if seconds is None else self.clock.now() + seconds

    def deadline(self, timeout: float | None) -> float | None:
        """The absolute deadline of a wait of ``timeout`` seconds (None: forever)."""
        if timeout is None or timeout == math.inf:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise InvalidValue(
                f"timeout must be a number of seconds >= 0 or None, got {timeout!r}", "timeout"
            )
        return self.clock.now() + timeout

    def _schedule(self, when: float, item: Waiter | Txn | FeedBase[Any]) -> None:
        heapq.heappush(self.deadlines, (when, next(self._tiebreak), item))

    def _prune(self) -> None:
        """Drop deadlines of waits, transactions and feeds that have already ended, so
        an idle heap costs later operations nothing."""
        deadlines = self.deadlines
        while deadlines:
            item = deadlines[0][2]
            if isinstance(item, Waiter):
                ended = item.state is not WAITING
            elif isinstance(item, Txn):
                ended = item.state is not ACTIVE
            else:
                ended = item.closed
            if not ended:
                return
            heapq.heappop(deadlines)

    # -- events ---------------------------------------------------------------

    def _emit(self, kind: str, t: Tuple) -> None:
        seq = self._event_seq = self._event_seq + 1
        raw = (seq, kind, t, self._now())
        if kind == "write":  # the tuple is in the space: its event costs the log nothing
            self._log.append(raw)
        else:  # the tuple has left the space: the log alone may keep it
            self.log_event(raw, footprint(t))
        if self._feeds.count:
            self._deliver(raw)

    def log_event(self, raw: tuple[int, str, Any, float], size: int) -> None:
        """Keep the event ``raw`` (seq, kind, payload, time; its seq from
        :meth:`new_event`) in the space's log, counting the ``size`` bytes
        (:func:`~tuplespace._values.footprint`) it keeps in memory, and drop the
        oldest events while the log keeps more than ``event_retention_bytes``.

        The events charged are those of tuples that left the space (take, expire,
        cancel) and of record changes.  A tuple in the space costs its log nothing,
        and a tuple that left is kept by its leaving event until that is dropped
        (its write event, older, goes first): so the charged events bound the log.
        """
        self._log.append(raw)
        charged = self._charged
        charged.append((raw[0], size))
        self._charged_bytes += size
        if self._charged_bytes > self.event_retention_bytes or len(charged) > len(self._log):
            self._trim_log()

    def _trim_log(self) -> None:
        self._forget_dropped()
        charged, log = self._charged, self._log
        while self._charged_bytes > self.event_retention_bytes:
            dropped, size = charged.popleft()
            self._charged_bytes -= size
            while log and log[0][0] <= dropped:
                log.popleft()

    def _forget_dropped(self) -> None:
        """Uncount the charged events that the log dropped as over ``event_retention``."""
        charged, log = self._charged, self._log
        oldest = log[0][0] if log else self._event_seq + 1
        while charged and charged[0][0] < oldest:
            self._charged_bytes -= charged.popleft()[1]

    def _deliver(self, raw: RawEvent) -> None:
        """Push the event to the feeds whose templates match its tuple."""
        for ft in self._feeds.matching(raw[2]):
            ft.feed.push(raw)

    @property
    def last_event(self) -> int:
        """The sequence number of the latest event (0: none yet)."""
        return self._event_seq

    def subscribe(
        self,
        templates: list[Template],
        kinds: Iterable[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
        existing: bool = False,
        present: tuple[int, int] | None = None,
    ) -> Feed:
        """A feed of the events of ``kinds`` on tuples matching any of ``templates``.

        With ``since``, the feed first replays the logged events after ``since``;
        raises EventsLost at once if the log no longer reaches back that far.  With
        ``existing``, it first reports the matching tuples stored now (events of kind
        ``present``, see :class:`~tuplespace._events.Presence`): every tuple is then
        seen exactly once, as present or by its write event.  ``present``, given with
        ``since`` the event a feed with ``existing`` began after, goes on with that
        feed's present events from where they stood (its ``presence``).
        """
        self.check_open()
        kinds = frozenset(kinds)
        if not kinds or not kinds <= EVENT_KINDS:
            raise InvalidValue(
                f"events must be a non-empty subset of {sorted(EVENT_KINDS)}, got {sorted(kinds)}"
            )
        check_existing(existing, since)
        if present is not None and (existing or since is None):
            raise InvalidValue(
                "present goes on from where a feed's present events stood: give since, not existing"
            )
        feed = Feed(next(self._interest_seq), [], kinds, max_pending, None)
        self.add_feed(feed, since, lease)
        feed.templates = [FeedTemplate(next(self._interest_seq), t, feed) for t in templates]
        for ft in feed.templates:
            self._feeds.add(ft)
        if existing or present is not None:
            newest_first = self.order == "lifo"
            upto = self.last_seq if present is None else present[0]

            def next_match(template: Template, after: int) -> Entry | None:
                entry = next(self._matches(template, after), None)
                return None if entry is None or entry.seq > upto else entry

            start = (upto + 1 if newest_first else 0) if present is None else present[1]
            began = self._event_seq if since is None else since
            feed.present = Presence(templates, next_match, newest_first, start, began, self._now(), upto)
        return feed

    def add_feed(self, feed: FeedBase[Any], since: int | None, lease: float | None) -> None:
        """Count ``feed`` as a subscription ending after ``lease`` seconds, delivering
        the events after ``since`` (None: from now); raises EventsLost at once if the
        log no longer reaches back that far.  The caller routes events to it."""
        self.check_open()
        max_pending = feed.max_pending
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidValue(f"max_pending must be a positive int, got {max_pending!r}", "max_pending")
        if self._subscribers >= self.max_subscribers:
            raise LimitReached(
                f"this space already has {self.max_subscribers} subscriptions",
                limit="max_subscribers",
                maximum=self.max_subscribers,
            )
        if since is not None:
            if isinstance(since, bool) or not isinstance(since, int) or since < 0:
                raise InvalidValue(f"since must be an event sequence number >= 0, got {since!r}", "since")
            if since > self._event_seq:
                raise InvalidValue(
                    f"since={since} is ahead of this space's latest event, {self._event_seq}", "since"
                )
            oldest = self._log[0][0] if self._log else self._event_seq + 1
            if since + 1 < oldest:
                raise EventsLost(since + 1, oldest)
        feed.share(self.pending)
        feed.expires = self.expiry(lease)
        self.tick()
        if since is not None and since < self._event_seq:
            feed.gap = since + 1
        feed.last_seq = self._event_seq if since is None else since
        self._subscribers += 1
        if feed.expires is not None:
            self._schedule(feed.expires, feed)

    def load(
        self, rows: Iterable[tuple[int, Tuple, float | None]], last_seq: int, last_event: int
    ) -> list[tuple[int, Tuple, float | None]]:
        """Fill an empty engine from a store: its tuples' rows in seq order (each a
        :class:`~tuplespace._store.TupleRow` or a plain tuple of its fields).

        Rows whose lease ran out while the store was closed are not loaded: they are
        returned, in seq order, for :meth:`expire_loaded` to expire once what reacts
        to their expiry (the rules of the space) is in place.
        """
        now = self.clock.now()
        expired = []
        journal, self.journal = self.journal, None  # loaded rows are on disk already
        try:
            for row in rows:
                seq, t, expires = row
                if expires is not None and expires <= now:
                    expired.append(row)
                    continue
                shelf = self._shelves.get(len(t))
                if shelf is None:
                    shelf = self._shelves[len(t)] = _Shelf(len(t))
                self._store(shelf, Entry(seq, t, expires), True)
                self.last_seq = seq
        finally:
            self.journal = journal
        self.last_seq = self._loaded_seq = max(self.last_seq, last_seq)
        self._event_seq = max(self._event_seq, last_event)
        return expired

    def expire_loaded(self, rows: Iterable[tuple[int, Tuple, float | None]]) -> None:
        """Expire the rows that :meth:`load` found run out: an ``expire`` event each,
        in seq order, and their rows deleted from the store in the same batch as
        what reacts to them, so that a store closed before that batch is written
        finds them again, and expires them once, when it is next opened."""
        for seq, t, _ in rows:
            self._counts["expired"] += 1
            self._emit("expire", t)
            if self.journal is not None:
                self.journal.delete(seq)

    def next_event(self, feed: FeedBase[E]) -> E | None:
        """The feed's next event, or None if it has none yet; raises EventsLost."""
        if self.leases or self.deadlines:
            self.tick()
        return feed.pop(self._log, self._event_seq + 1)

    def unsubscribe(self, feed: FeedBase[Any]) -> None:
        """End the feed; its subscriber is woken and sees it closed."""
        if feed.closed:
            return
        feed.closed = True
        feed.detach()
        for ft in feed.templates:
            self._feeds.remove(ft)
        self._subscribers -= 1
        feed.wake()
        self._prune()

    def renew_feed(self, feed: FeedBase[Any], lease: float | None) -> float | None:
        if feed.closed:
            raise UnknownLease("the subscription has ended")
        feed.expires = self.expiry(lease)
        if feed.expires is not None:
            self._schedule(feed.expires, feed)
        return feed.expires

    # -- writing ----------------------------------------------------------------

    def write(self, t: object, lease: float | None = None, txn: Txn | None = None) -> Entry | None:
        """Validate and store ``t`` (or hand it to a waiting taker); return its entry.

        In a transaction the tuple stays private until commit and None is returned.
        Raises SpaceFull when the space is at its capacity (see :meth:`add_writer`).
        """
        if self.closed:
            raise SpaceClosed("the space is closed")
        t = check_tuple(t, self.limits)
        if txn is not None:
            self._check_txn(txn)
            self.expiry(lease)  # validated now, counted from the commit
            txn.writes.append((t, lease))
            return None
        expires = None if lease is None else self.expiry(lease)
        if self.leases or self.deadlines:
            self.tick()
        if self.capacity is not None and len(self._by_seq) >= self.capacity:
            raise self._full(self.capacity)
        return self._write(t, expires)

    def write_derived(self, t: object) -> Entry:
        """Write ``t`` from within an operation under way (a rule's firing): no lease,
        no transaction, no tick of its own (expiries are left to the operations); the
        tuple is checked, and the space's capacity holds, as for :meth:`write`."""
        if self.closed:
            raise SpaceClosed("the space is closed")
        t = check_tuple(t, self.limits)
        if self.capacity is not None and len(self._by_seq) >= self.capacity:
            raise self._full(self.capacity)
        return self._write(t, None)

    @staticmethod
    def _full(capacity: int) -> SpaceFull:
        return SpaceFull(
            f"the space holds {capacity} tuples, its capacity", limit="capacity", maximum=capacity
        )

    def _write(self, t: Tuple, expires: float | None) -> Entry:
        if self._lifetimes:
            expires = self._lifetime(t, expires)
        seq = self.last_seq = self.last_seq + 1
        entry = Entry(seq, t, expires)
        # _emit("write", t), inlined: this is the hot path
        event_seq = self._event_seq = self._event_seq + 1
        raw = (event_seq, "write", t, self._now())
        self._log.append(raw)  # the log keeps plain tuples; each feed makes what it delivers
        if self._feeds.count:  # _deliver(raw), inlined
            for ft in self._feeds.matching(t):
                ft.feed.push(raw)
        if self._waiters.count and self._serve_waiters(entry) is not None:
            return entry
        shelf = self._shelves.get(len(t))
        if shelf is None:
            shelf = self._shelves[len(t)] = _Shelf(len(t))
        self._store(shelf, entry, True)
        return entry

    def write_many(
        self, tuples: Iterable[object], lease: float | None = None, txn: Txn | None = None
    ) -> list[Entry]:
        """Write every tuple, in order; nothing is written if any of them is invalid or
        if they do not all fit in the space's capacity."""
        self.check_open()
        checked = []
        for i, t in enumerate(tuples):
            try:
                checked.append(check_tuple(t, self.limits))
            except InvalidValue as exc:
                exc.path = f"tuples[{i}]{exc.path}"
                exc.args = (f"{exc.path}: {exc.reason}",)
                raise
        if txn is not None:
            self._check_txn(txn)
            self.expiry(lease)
            txn.writes.extend((t, lease) for t in checked)
            return []
        expires = self.expiry(lease)
        self.tick()
        if self.capacity is not None and len(self._by_seq) + len(checked) > self.capacity:
            raise SpaceFull(
                f"{len(checked)} tuples do not fit: the space holds {len(self._by_seq)} of {self.capacity}",
                limit="capacity",
                maximum=self.capacity,
            )
        with self._batch():
            return [self._write(t, expires) for t in checked]

    def add_writer(
        self, t: object, lease: float | None, deadline: float | None, wake: Callable[[], object]
    ) -> Waiter:
        """Queue a write that waits for room in a full space; it is done when room frees."""
        t = check_tuple(t, self.limits)
        self.expiry(lease)
        self._check_waiters()
        w = Waiter(next(self._interest_seq), _ROOM, "write", deadline, wake)
        w.result, w.lease = t, lease
        self._writers.append(w)
        if deadline is not None:
            self._schedule(deadline, w)
        return w

    def _admit(self) -> None:
        """Let waiting writers into the room that removals made."""
        if self._writers:
            self._admit_writers()

    def _admit_writers(self) -> None:
        writers = self._writers
        while writers and len(self._by_seq) < self.capacity:  # type: ignore[operator]
            w = writers.popleft()
            if w.state is WAITING:
                w.entry = self._write(w.result, self.expiry(w.lease))  # type: ignore[arg-type]
                w.state = DONE
                w.wake()

    def _offer(self, entry: Entry) -> None:
        """Put back a tuple that left the space (its row may still be on disk)."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        if self._waiters.count:
            taker = self._serve_waiters(entry)
            if taker is not None:
                if taker.txn is None and self.journal is not None:
                    self.journal.delete(entry.seq)  # taken for good: its row goes too
                return
        shelf = self._shelves.get(len(t))
        if shelf is None:
            shelf = self._shelves[len(t)] = _Shelf(len(t))
        self._store(shelf, entry, not shelf.all or shelf.all[-1].seq < entry.seq)

    def _store(self, shelf: _Shelf, entry: Entry, appending: bool) -> None:
        """Index ``entry``; ``appending`` if its seq is the highest on the shelf."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        if appending:
            shelf.all.append(entry)
        else:
            _insert_ordered(shelf.all, entry)
        index = shelf.index
        for pos, v in enumerate(t):
            tv = type(v)
            key = v if tv is str or tv is int else value_key(v)
            d = index[pos]
            b = d.get(key)
            if b is None:
                d[key] = entry
            elif type(b) is Entry:
                d[key] = _Bucket((b, entry) if b.seq < entry.seq else (entry, b))
            elif appending:
                b.append(entry)  # type: ignore[union-attr]
            else:
                _insert_ordered(b, entry)  # type: ignore[arg-type]
        self._by_seq[entry.seq] = entry
        if entry.expires is not None:
            self._leased += 1
            heapq.heappush(self.leases, (entry.expires, next(self._tiebreak), entry))
        if self.journal is not None:
            self.journal.put(entry.seq, t, entry.expires)

    def _remove(self, entry: Entry, journal: bool = True) -> Tuple:
        """Unindex ``entry``; ``journal=False`` leaves it on disk (a transaction's take)."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        entry.tuple = None
        shelf = self._shelves[len(t)]
        # The oldest entry of a bucket leaves first in FIFO order: popped, it needs no
        # count of the dead (the others trim them, see _discard).
        every = shelf.all
        if every[0] is entry:
            every.popleft()
        else:
            _discard(every)
        for pos, v in enumerate(t):
            tv = type(v)
            key = v if tv is str or tv is int else value_key(v)
            d = shelf.index[pos]
            b = d[key]
            if b is entry or b.dead + 1 == len(b):  # type: ignore[union-attr,arg-type]
                del d[key]
            elif b[0] is entry:  # type: ignore[index]
                b.popleft()  # type: ignore[union-attr]
            else:
                _discard(b)  # type: ignore[arg-type]
        del self._by_seq[entry.seq]
        if entry.expires is not None:
            self._leased -= 1
        if journal and self.journal is not None:
            self.journal.delete(entry.seq)
        return t  # callers let waiting writers in (_admit) after emitting their event

    # -- waiters --------------------------------------------------------------

    def _serve_waiters(self, entry: Entry) -> Waiter | None:
        """Hand ``entry`` to the waiters it satisfies; the taker that consumed it, if one did."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        for w in self._waiters.matching(t):
            if type(w) is GroupWaiter:
                if self._gather(w, entry):
                    return w
                continue
            self._waiters.remove(w)
            if w.deadline is not None:
                self._unschedule(w)
            take = w.kind == "take"
            txn = w.txn
            w.state = DONE
            w.result = t
            if take:
                w.entry = entry
                if txn is not None:
                    txn.taken.append(entry)
                    if self.journal is not None:  # held, not yet taken: on disk until commit
                        self.journal.put(entry.seq, t, entry.expires)
            if w.wake() is False:  # its caller can no longer receive: not served
                w.state, w.result, w.entry = CLOSED, None, None
                if txn is not None and take:
                    txn.taken.remove(entry)
            elif take:
                if txn is not None:
                    self._counts["takes"] += 1
                # A take outside a transaction is counted, and its event emitted, when its
                # caller receives the tuple (see withdraw): one cancelled first takes nothing.
                return w
            else:
                self._counts["reads"] += 1
        return None

    def _unschedule(self, w: Waiter) -> None:
        """Drop the deadline of a wait that has just ended, if it is the next one."""
        if self.deadlines[0][2] is w:
            heapq.heappop(self.deadlines)
            self._prune()

    def _gather(self, w: GroupWaiter, entry: Entry) -> bool:
        """Hand ``entry`` to a group taker; False if it does not take it (its answer is
        full, or its caller is gone)."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        if w.fits is not None and not w.fits([t]):  # never the first: fits keeps that
            w.full = True
            self._close_group(w)
            return False
        w.got.append(t)
        w.taken.append(entry)
        txn = w.txn
        if txn is not None:
            txn.taken.append(entry)
            if self.journal is not None:  # held, not yet taken: on disk until commit
                self.journal.put(entry.seq, t, entry.expires)
        if self._gathering is None:  # a single write: hand it over now
            self._close_group(w)
            if not self._wake_group(w):
                w.got.clear()
                w.taken.clear()
                if txn is not None:
                    txn.taken.remove(entry)
                return False
            return True
        if len(w.got) == 1:
            self._gathering.append(w)
        if w.limit is not None and len(w.got) >= w.limit:
            self._close_group(w)
        return True

    def _close_group(self, w: GroupWaiter) -> None:
        """A group taker takes no more: out of the registry (it is woken later)."""
        if w.state is WAITING:
            self._waiters.remove(w)
            w.state = DONE
            if w.deadline is not None:
                self._unschedule(w)

    def _wake_group(self, w: GroupWaiter) -> bool:
        """Wake a group taker with what it gathered; False if its caller is gone."""
        if w.wake() is False:
            w.state = CLOSED
            return False
        return True  # final, with its take events, once its caller receives it (withdraw)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        """Writes (or put-backs) done as one step: a group taker gathers all of its
        matches among them and is woken at the end."""
        if self._gathering is not None:
            yield
            return
        self._gathering = []
        try:
            yield
        finally:
            self._hand_over_gathered()

    def _hand_over_gathered(self) -> None:
        """At the end of a batch: wake the group takers that gathered tuples; what a
        gone caller gathered goes back into the space, as one batch again."""
        gathered, self._gathering = self._gathering or [], None
        for w in gathered:
            self._close_group(w)
        back: list[Entry] = []
        for w in gathered:
            if not self._wake_group(w):
                if w.txn is not None:
                    for entry in w.taken:
                        w.txn.taken.remove(entry)
                back += w.taken
                w.got.clear()
                w.taken.clear()
        if back:
            with self._batch():
                for entry in sorted(back, key=_entry_seq):
                    self._offer(entry)

    def _check_waiters(self) -> None:
        self.check_open()
        if self._waiters.count + len(self._writers) >= self.max_waiters:
            raise LimitReached(
                f"this space already has {self.max_waiters} waiting calls",
                limit="max_waiters",
                maximum=self.max_waiters,
            )

    def add_waiter(
        self,
        template: Template,
        take: bool,
        deadline: float | None,
        wake: Callable[[], object],
        txn: Txn | None = None,
    ) -> Waiter:
        """Register a blocked read (``take=False``) or take; raise LimitReached when full."""
        self._check_waiters()
        if txn is not None:
            self._check_txn(txn)
        w = Waiter(next(self._interest_seq), template, "take" if take else "read", deadline, wake, txn)
        return self._file(w)

    def add_group_taker(
        self,
        template: Template,
        limit: int | None,
        deadline: float | None,
        wake: Callable[[], object],
        txn: Txn | None = None,
        fits: Callable[[list[Tuple]], int] | None = None,
    ) -> GroupWaiter:
        """Register a blocked ``take_all``: when a write (or a batch of writes) brings
        matches, it takes up to ``limit`` of them (as many as ``fits`` keeps, as for
        :meth:`find_page`) and is woken once with them all in ``got``."""
        self._check_waiters()
        if txn is not None:
            self._check_txn(txn)
        w = GroupWaiter(next(self._interest_seq), template, deadline, wake, txn, limit, fits)
        self._file(w)
        return w

    def _file(self, w: Waiter) -> Waiter:
        self._waiters.add(w)
        if w.txn is not None:
            w.txn.waits.add(w)
        if w.deadline is not None:
            self._schedule(w.deadline, w)
        return w

    def _end_wait(self, w: Waiter, state: str) -> None:
        if w.kind == "write":
            self._writers.remove(w)
        else:
            self._waiters.remove(w)
        if w.txn is not None:
            w.txn.waits.discard(w)
        w.state = state
        w.wake()
        if w.deadline is not None:
            self._prune()

    def withdraw(self, w: Waiter, received: bool) -> None:
        """After a wait ended: withdraw a waiter still waiting; for a take handed a
        tuple, make it final if its caller ``received`` it (outside a transaction:
        the take's event), else put the tuple back, as if it had never left."""
        if w.state is WAITING:
            self._end_wait(w, TIMED_OUT)
        elif w.state is DONE and type(w) is GroupWaiter:
            if received:
                self._counts["takes"] += len(w.got)
                if w.txn is None:
                    for t in w.got:
                        self._emit("take", t)
            else:
                with self._batch():
                    for entry in sorted(w.taken, key=_entry_seq):
                        if w.txn is not None:
                            if w.txn.state is not ACTIVE:
                                continue
                            w.txn.taken.remove(entry)
                        self._offer(entry)
            w.taken.clear()
        elif w.state is DONE and w.kind == "take" and w.entry is not None:
            if w.txn is not None:
                if not received and w.txn.state is ACTIVE:
                    w.txn.taken.remove(w.entry)
                    self._offer(w.entry)
            elif received:
                self._counts["takes"] += 1
                self._emit("take", w.result)  # type: ignore[arg-type]
                w.entry = None
            else:
                self._offer(w.entry)
                w.entry = None
        if w.txn is not None:
            w.txn.waits.discard(w)

    # -- reading and taking -----------------------------------------------------

    def _candidates(self, template: Template, after: int | None = None) -> Iterator[Entry]:
        """Live entries that may match, in the space's order (random: in seq order);
        only those past the cursor ``after`` (a seq) if it is given."""
        shelf = self._shelves.get(template.arity)
        if shelf is None:
            return iter(())
        # The smallest bucket of an exact field (never all tuples when there is
        # one: callers rely on candidates of a one-exact template all matching it).
        best: _Bucket | None = None
        for pos, key in template.exact:
            b = shelf.index[pos].get(key)
            if b is None:
                return iter(())
            if type(b) is Entry:
                if after is None or (b.seq < after if self.order == "lifo" else b.seq > after):
                    return iter((b,))
                return iter(())
            if best is None or len(b) < len(best):  # type: ignore[arg-type]
                best = b  # type: ignore[assignment]
        bucket = shelf.all if best is None else best
        if after is not None:
            return self._past(bucket, after)
        return reversed(bucket) if self.order == "lifo" else iter(bucket)

    def _past(self, bucket: _Bucket, after: int) -> Iterator[Entry]:
        """The entries of ``bucket`` past the cursor ``after``, in the space's order,
        found by bisection: a page of a large space does not walk the pages before it."""
        if self.order == "lifo":
            newer = bisect.bisect_left(bucket, after, key=_entry_seq)
            return itertools.islice(reversed(bucket), len(bucket) - newer, None)
        return itertools.islice(bucket, bisect.bisect_right(bucket, after, key=_entry_seq), None)

    def _matches(self, template: Template, after: int | None = None) -> Iterator[Entry]:
        if template.costly:
            return self._matches_in_budget(template, after)
        return self._scan(template, after)

    def _scan(self, template: Template, after: int | None) -> Iterator[Entry]:
        exact_only = not template.checks
        one_exact = len(template.exact) <= 1
        for e in self._candidates(template, after):
            t = e.tuple
            if t is not None and ((exact_only and one_exact) or template.matches(t)):
                yield e

    def _matches_in_budget(self, template: Template, after: int | None) -> Iterator[Entry]:
        """The matches of a template with XPath fields, evaluated within one budget."""
        with _xpath.budget():
            yield from self._scan(template, after)

    def _private(self, txn: Txn | None, template: Template) -> list[int]:
        """Positions of a transaction's own writes that match, oldest first."""
        if txn is None or not txn.writes:
            return []
        with _xpath.budget() if template.costly else contextlib.nullcontext():
            return [i for i, (t, _) in enumerate(txn.writes) if template.matches(t)]

    def find(self, template: Template, take: bool, txn: Txn | None = None) -> Tuple | None:
        """The first match in the space's order (removed if ``take``), or None.

        In a transaction, its own writes are seen too: after the space's tuples in
        FIFO order (they are newer), before them in LIFO order.
        """
        if self.closed:
            raise SpaceClosed("the space is closed")
        if self.leases or self.deadlines:
            self.tick()
        own: list[int] = []
        if txn is not None:
            self._check_txn(txn)
            own = self._private(txn, template)
            if own and self.order == "lifo":
                return self._own(txn, own[-1], take)
        entry = self._first(template)
        if entry is None:
            if own:
                i = own[0] if self.order == "fifo" else self._random.choice(own)
                return self._own(txn, i, take)  # type: ignore[arg-type]
            return None
        t: Tuple = entry.tuple  # type: ignore[assignment]
        if take:
            self._take(entry, txn)
        else:
            self._counts["reads"] += 1
        return t

    def _first(self, template: Template) -> Entry | None:
        if self.order == "random":
            matches = list(self._matches(template))
            return self._random.choice(matches) if matches else None
        if template.costly:
            return next(self._matches(template), None)
        every = not template.checks and len(template.exact) <= 1
        for e in self._candidates(template):  # _matches, inlined: this is the hot path
            t = e.tuple
            if t is not None and (every or template.matches(t)):
                return e
        return None

    def _own(self, txn: Txn, i: int, take: bool) -> Tuple:
        t = txn.writes[i][0]
        if take:
            del txn.writes[i]
        return t

    def _take(self, entry: Entry, txn: Txn | None, admit: bool = True) -> None:
        seq, expires = entry.seq, entry.expires
        t = self._remove(entry, txn is None)
        self._counts["takes"] += 1
        if txn is None:
            self._emit("take", t)
        else:
            txn.taken.append(Entry(seq, t, expires))
        if admit and self._writers:
            self._admit_writers()

    def find_all(
        self, template: Template, take: bool, limit: int | None = None, txn: Txn | None = None
    ) -> list[Tuple]:
        """Every match in the space's order, at most ``limit``; removed if ``take``."""
        return self.find_page(template, take, limit, txn=txn)[0]

    def find_page(
        self,
        template: Template,
        take: bool,
        limit: int | None = None,
        fits: Callable[[list[Tuple]], int] | None = None,
        after: int | None = None,
        txn: Txn | None = None,
    ) -> tuple[list[Tuple], int | None]:
        """The matches :meth:`find_all` chooses, as many as ``fits`` keeps: a page of
        bounded size, and the cursor of the next page.

        The chosen matches (at most ``limit``) are given to ``fits`` a batch at a time
        (a list of tuples); it answers how many of the batch it keeps, at least one of
        the first batch, so every page moves on.  Those it does not keep are left out,
        with all the matches after them.

        A read walks the space's order, FIFO oldest first, LIFO newest first;
        ``after``, the cursor of the page before, starts the walk past it.  In random
        order the chosen matches (a random selection when ``limit`` is smaller than
        all) are walked oldest first and each page is shuffled: the pages of one read
        together hold what a single answer would, every match or a uniform selection
        of ``limit`` of them (the next page asks for the ``limit`` left).  A take
        offers its matches in the order it takes them (random order: shuffled) and
        needs no cursor, what it took being gone.

        Returns the tuples and, when some were left out, the cursor past the last one
        returned (its seq), else None.  In a transaction its own writes are chosen too
        (as :meth:`find` sees them); they have no seq, and the cursor of a page that
        holds only them is 0.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidValue(f"limit must be an int >= 0 or None, got {limit!r}", "limit")
        self.check_open()
        self.tick()
        if txn is not None:
            self._check_txn(txn)
        own = self._private(txn, template)
        chosen: Iterable[Entry | int]
        if self.order == "random":
            pool: list[Entry | int] = [*self._matches(template, after), *own]
            if limit is not None and limit < len(pool):
                pool = self._random.sample(pool, limit)
            elif take:
                self._random.shuffle(pool)
            if not take:
                pool.sort(key=_place)
            chosen = pool
        else:
            chosen = self._matches(template, after)
            if own:
                mine = iter(own) if self.order == "fifo" else reversed(own)
                chosen = (
                    itertools.chain(chosen, mine) if self.order == "fifo" else itertools.chain(mine, chosen)
                )
            if limit is not None:
                chosen = itertools.islice(chosen, limit)
        writes = [] if txn is None else txn.writes
        cursor: int | None = None
        page: list[Entry | int]
        out: list[Tuple]
        if fits is None:
            page = list(chosen)
            out = [writes[e][0] if type(e) is int else e.tuple for e in page]  # type: ignore[union-attr,misc]
        else:
            page, out = [], []
            chosen = iter(chosen)
            while batch := list(itertools.islice(chosen, _BATCH)):
                tuples: list[Tuple] = [writes[e][0] if type(e) is int else e.tuple for e in batch]  # type: ignore[union-attr,misc]
                kept = fits(tuples)
                page += batch[:kept]
                out += tuples[:kept]
                if kept < len(batch):
                    cursor = next((x.seq for x in reversed(page) if type(x) is Entry), 0)
                    break
        if take:
            for e in page:
                if type(e) is Entry:
                    self._take(e, txn)
            if txn is not None:
                drop = {e for e in page if type(e) is int}
                txn.writes = [w for i, w in enumerate(txn.writes) if i not in drop]
        else:
            self._counts["reads"] += len(out)
            if self.order == "random":
                self._random.shuffle(out)
        return out, cursor

    def count(self, template: Template, txn: Txn | None = None) -> int:
        """How many tuples match ``template`` (in a transaction: with its own writes)."""
        self.check_open()
        if txn is not None:
            self._check_txn(txn)
        self.tick()
        own = len(self._private(txn, template))
        shelf = self._shelves.get(template.arity)
        if shelf is None:
            return own
        if not template.checks and len(template.exact) <= 1:
            if not template.exact:
                return own + _live(shelf.all)
            pos, key = template.exact[0]
            b = shelf.index[pos].get(key)
            return own + (0 if b is None else _live(b))
        return own + sum(1 for _ in self._matches(template))

    def __len__(self) -> int:
        return len(self._by_seq)

    # -- atomic compound operations ---------------------------------------------

    def replace(self, template: Template, successor: Any, lease: float | None) -> Tuple | None:
        """Take the first match and write its successor in one step; None if no match.

        ``successor`` is a tuple or a function of the taken tuple that returns one.
        If it raises or returns an invalid tuple, nothing changes.
        """
        if self.leases or self.deadlines:
            self.tick()
        expires = self.expiry(lease)
        entry = self._first(template)
        if entry is None:
            return None
        old: Tuple = entry.tuple  # type: ignore[assignment]
        new = check_tuple(successor(old) if callable(successor) else successor, self.limits)
        self._take(entry, None, admit=False)  # the successor takes the room, not a waiting writer
        self._write(new, expires)
        self._admit()
        return old

    def write_if_absent(self, template: Template, t: object, lease: float | None) -> Entry | None:
        """Write ``t`` only if no tuple matches ``template``; its entry, or None."""
        if self._first_any(template):
            check_tuple(t, self.limits)
            return None
        return self.write(t, lease)

    def _first_any(self, template: Template) -> bool:
        if self.leases or self.deadlines:
            self.tick()
        return next(self._matches(template), None) is not None

    # -- leases -----------------------------------------------------------------

    def renew(self, seq: int, lease: float | None) -> float | None:
        """Give the tuple ``seq`` a new lease of ``lease`` seconds from now; return its expiry."""
        expires = self.expiry(lease)
        self.tick()
        entry = self._by_seq.get(seq)
        if entry is None:
            raise UnknownLease(f"tuple {seq} is no longer in the space (taken, expired or cancelled)")
        self._leased += (expires is not None) - (entry.expires is not None)
        entry.expires = expires
        if expires is not None:
            heapq.heappush(self.leases, (expires, next(self._tiebreak), entry))
        if self.journal is not None:
            self.journal.put(seq, entry.tuple, expires)  # type: ignore[arg-type]
        return expires

    def cancel(self, seq: int) -> None:
        """Remove the tuple ``seq`` now."""
        self.tick()
        entry = self._by_seq.get(seq)
        if entry is None:
            raise UnknownLease(f"tuple {seq} is no longer in the space (taken, expired or cancelled)")
        self._counts["cancelled"] += 1
        self._emit("cancel", self._remove(entry))
        self._admit()

    def add_lifetime(self, template: Template, max_age: float) -> None:
        """From now on, tuples matching ``template`` live at most ``max_age`` seconds
        after they are written; those already here, ``max_age`` from now."""
        limit = self.expiry(max_age)
        assert limit is not None
        self._lifetimes.append((template, max_age))
        for entry in list(self._matches(template)):
            if entry.expires is None or entry.expires > limit:
                self._leased += entry.expires is None
                entry.expires = limit
                heapq.heappush(self.leases, (limit, next(self._tiebreak), entry))
                if self.journal is not None:
                    self.journal.put(entry.seq, entry.tuple, limit)  # type: ignore[arg-type]

    def remove_lifetime(self, template: Template, max_age: float) -> None:
        """End the rule :meth:`add_lifetime` made with the same fields and ``max_age``."""
        for i, (rule, age) in enumerate(self._lifetimes):
            if rule.fields == template.fields and age == max_age:
                del self._lifetimes[i]
                return
        raise InvalidValue(f"no lifetime of {max_age} s for {template.fields!r}", "template")

    def _lifetime(self, t: Tuple, expires: float | None) -> float | None:
        for template, max_age in self._lifetimes:
            if template.matches(t):
                limit = self.clock.now() + max_age
                if expires is None or expires > limit:
                    expires = limit
        return expires

    # -- transactions -------------------------------------------------------------

    def begin(self, lease: float | None) -> Txn:
        """Start a transaction; it aborts by itself when its lease runs out."""
        self.check_open()
        txn = Txn(next(self._txn_seq), self.expiry(lease))
        self._txns[txn.seq] = txn
        if txn.expires is not None:
            self._schedule(txn.expires, txn)
        return txn

    def _check_txn(self, txn: Txn) -> None:
        if txn.state is not ACTIVE:
            if txn.state is ABORTED:
                raise TransactionAborted(f"transaction {txn.seq} was aborted")
            raise TransactionError(f"transaction {txn.seq} has already been committed")
        if self._txns.get(txn.seq) is not txn:
            raise TransactionError("the transaction belongs to another space")

    def commit(self, txn: Txn) -> None:
        """Make the transaction's takes final and its writes visible, in one step.

        Raises SpaceFull, and aborts the transaction, when its writes do not fit in
        the space's capacity (what it took is out of the space already)."""
        self.tick()
        self._check_txn(txn)
        if self.capacity is not None and txn.writes and len(self._by_seq) + len(txn.writes) > self.capacity:
            held = len(self._by_seq)
            self.abort(txn)
            raise SpaceFull(
                f"the transaction's {len(txn.writes)} tuples do not fit: the space holds {held} of "
                f"{self.capacity}; the transaction is aborted",
                limit="capacity",
                maximum=self.capacity,
            )
        self._end_txn(txn, COMMITTED)
        self._counts["commits"] += 1
        for entry in txn.taken:
            if self.journal is not None:
                self.journal.delete(entry.seq)
            self._emit("take", entry.tuple)  # type: ignore[arg-type]
        with self._batch():
            for t, lease in txn.writes:
                self._write(t, self.expiry(lease))

    def abort(self, txn: Txn) -> None:
        """Discard the transaction's writes and put back what it took, each at its place."""
        if txn.state is not ACTIVE:
            return
        self._end_txn(txn, ABORTED)
        self._counts["aborts"] += 1
        now = self.clock.now()
        with self._batch():
            for entry in sorted(txn.taken, key=_entry_seq):
                if entry.expires is None or entry.expires > now:
                    self._offer(entry)
                else:
                    self._counts["expired"] += 1
                    self._emit("expire", entry.tuple)  # type: ignore[arg-type]

    def abort_all(self) -> None:
        """Abort every transaction still open."""
        for txn in list(self._txns.values()):
            self.abort(txn)

    def _end_txn(self, txn: Txn, state: str) -> None:
        txn.state = state
        del self._txns[txn.seq]
        for w in list(txn.waits):
            if w.state is WAITING:
                self._end_wait(w, ABORTED)
        txn.waits.clear()
        self._prune()

    def renew_txn(self, txn: Txn, lease: float | None) -> float | None:
        self._check_txn(txn)
        txn.expires = self.expiry(lease)
        if txn.expires is not None:
            self._schedule(txn.expires, txn)
        return txn.expires

    # -- life cycle -----------------------------------------------------------------

    # -- the seam of the record store: time, interests, the event log ----------------------------

    def schedule(self, when: float, item: Rec | Cap | Redirect | Hold) -> None:
        """File ``item`` in the lease heap, to lapse at ``when`` (the record store's items)."""
        heapq.heappush(self.leases, (when, next(self._tiebreak), item))

    def next_interest(self) -> int:
        """The sequence number of a new feed (a watch of records)."""
        return next(self._interest_seq)

    def file_feed(self, ft: FeedTemplate) -> None:
        """File the template of a feed with those the space's writes are matched against."""
        self._feeds.add(ft)

    def new_event(self) -> tuple[int, float]:
        """The sequence number and time of a new event, which the caller logs with
        :meth:`log_event`."""
        seq = self._event_seq = self._event_seq + 1
        return seq, self._now()

    def check_open(self) -> None:
        if self.closed:
            raise SpaceClosed("the space is closed")

    def close(self) -> None:
        """Refuse further operations; release every waiter and subscriber; abort transactions."""
        if self.closed:
            return
        self.closed = True
        self.abort_all()
        for w in list(self._waiters):
            self._end_wait(w, CLOSED)
        for w in list(self._writers):
            self._end_wait(w, CLOSED)
        for ft in list(self._feeds):
            self.unsubscribe(ft.feed)
        self.records.close()

    def _logged_bytes(self) -> int:
        self._forget_dropped()
        return self._charged_bytes

    def statistics(self) -> dict[str, Any]:
        """Counts for tests, metrics and the dashboard."""
        return {
            "tuples": len(self._by_seq),
            "capacity": self.capacity,
            "waiters": self._waiters.count + len(self._writers),
            "waiting_writers": len(self._writers),
            "subscribers": self._subscribers,
            "transactions": len(self._txns),
            "leased_tuples": self._leased,
            "last_event": self._event_seq,
            "logged_events": len(self._log),
            "logged_bytes": self._logged_bytes(),
            "arities": sorted(a for a, s in self._shelves.items() if _live(s.all)),
            "order": self.order,
            "closed": self.closed,
            "writes": self.last_seq - self._loaded_seq,  # every write takes the next seq
            **self._counts,
            **self.records.statistics(),
        }


def _entry_seq(e: Entry) -> int:
    return e.seq


def _place(e: Entry | int) -> tuple[bool, int]:
    """Where a chosen match stands in a walk: a stored tuple by its seq, a transaction's
    own write (its index among them) after every stored one."""
    return (True, e) if type(e) is int else (False, e.seq)  # type: ignore[union-attr]
