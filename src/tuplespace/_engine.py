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

Waiters.  A blocked read or take is a :class:`Waiter`, registered under one
exact field of its template (the one whose waiter bucket is smallest at that
moment), or under its arity alone when the template has no exact field.  A write
looks up only the waiter buckets of its own values, visits those waiters in
arrival order, hands a copy to every matching reader and the tuple itself to the
first matching taker; then it is not stored at all.  So a write wakes exactly the
waiters it satisfies, and 10,000 blocked takers on other values cost it nothing.

Leases.  Finite leases sit in a heap by expiry time; :meth:`Engine.tick`, called
at the start of every operation, pops what has fallen due.  No thread sweeps the
space, and an expired tuple is never returned.  Timed waits are in a second heap.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from ._clock import Clock
from ._errors import InvalidValue, LimitReached, SpaceClosed, UnknownLease
from ._templates import Template
from ._values import DEFAULT_LIMITS, Limits, Value, check_tuple, value_key

__all__ = ["ORDERS", "Engine", "Entry", "Waiter"]

ORDERS: Final = ("fifo", "lifo", "random")

Tuple = tuple[Value, ...]


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


WAITING, DONE, TIMED_OUT, CLOSED = "waiting", "done", "timed out", "closed"


class Waiter:
    """A blocked read or take.  The shell waits until ``state`` leaves WAITING;
    ``wake`` is called (under the shell's lock) when it does, and returns False
    if the caller can no longer receive a result (its event loop is gone)."""

    __slots__ = ("deadline", "entry", "key", "result", "seq", "shelf", "state", "take", "template", "wake")

    def __init__(
        self, seq: int, template: Template, take: bool, deadline: float | None, wake: Callable[[], object]
    ) -> None:
        self.seq = seq
        self.template = template
        self.take = take
        self.deadline = deadline
        self.wake = wake
        self.state = WAITING
        self.result: Tuple | None = None
        self.entry: Entry | None = None  # for a take: what to put back if the taker is gone
        self.shelf: _Shelf | None = None
        self.key: tuple[int, Any] | None = None

    def __repr__(self) -> str:
        return f"Waiter({self.seq}, {self.template!r}, take={self.take}, {self.state})"


class _Shelf:
    """The tuples and waiters of one arity."""

    __slots__ = ("all", "index", "wait_all", "wait_index", "waiters")

    def __init__(self, arity: int) -> None:
        self.all = _Bucket()
        self.index: list[dict[Any, Entry | _Bucket]] = [{} for _ in range(arity)]
        self.wait_index: list[dict[Any, dict[int, Waiter]]] = [{} for _ in range(arity)]
        self.wait_all: dict[int, Waiter] = {}
        self.waiters = 0


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
        max_waiters: int = 100_000,
        seed: int | None = None,
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")
        self.clock = clock
        self.order = order
        self.limits = limits
        self.max_waiters = max_waiters
        self.closed = False
        self._random = random.Random(seed)
        self._seq = itertools.count(1)
        self._shelves: dict[int, _Shelf] = {}
        self._by_seq: dict[int, Entry] = {}
        self._leases: list[tuple[float, int, Entry]] = []
        self._deadlines: list[tuple[float, int, Waiter]] = []
        self._waiters = 0
        self._waiter_seq = itertools.count(1)
        self._reaped = 0
        self._leased = 0

    # -- time ---------------------------------------------------------------

    def tick(self) -> None:
        """Expire leases and time out waits that are due by the clock."""
        now = self.clock.now()
        leases = self._leases
        while leases and leases[0][0] <= now:
            expires, _, entry = heapq.heappop(leases)
            if entry.tuple is not None and entry.expires == expires:
                self._remove(entry)
                self._reaped += 1
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, w = heapq.heappop(deadlines)
            if w.state is WAITING:
                self._unregister(w)
                w.state = TIMED_OUT
                w.wake()

    def expiry(self, lease: float | None) -> float | None:
        """The absolute expiry time for a lease of ``lease`` seconds (None: forever)."""
        if lease is None or lease == math.inf:
            return None
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
            raise InvalidValue(f"lease must be a positive number of seconds or None, got {lease!r}", "lease")
        return self.clock.now() + lease

    def deadline(self, timeout: float | None) -> float | None:
        """The absolute deadline of a wait of ``timeout`` seconds (None: forever)."""
        if timeout is None or timeout == math.inf:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise InvalidValue(
                f"timeout must be a number of seconds >= 0 or None, got {timeout!r}", "timeout"
            )
        return self.clock.now() + timeout

    # -- writing ------------------------------------------------------------

    def write(self, t: object, lease: float | None = None) -> Entry:
        """Validate and store ``t`` (or hand it to a waiting taker); return its entry."""
        if self.closed:
            raise SpaceClosed("the space is closed")
        t = check_tuple(t, self.limits)
        expires = None if lease is None else self.expiry(lease)
        if self._leases or self._deadlines:
            self.tick()
        entry = Entry(next(self._seq), t, expires)
        self._offer(entry)
        return entry

    def write_many(self, tuples: Iterable[object], lease: float | None = None) -> list[Entry]:
        """Write every tuple, in order; nothing is written if any of them is invalid."""
        self._check_open()
        checked = []
        for i, t in enumerate(tuples):
            try:
                checked.append(check_tuple(t, self.limits))
            except InvalidValue as exc:
                exc.path = f"tuples[{i}]{exc.path}"
                exc.args = (f"{exc.path}: {exc.reason}",)
                raise
        expires = self.expiry(lease)
        self.tick()
        entries = [Entry(next(self._seq), t, expires) for t in checked]
        for entry in entries:
            self._offer(entry)
        return entries

    def restore(self, entry: Entry) -> None:
        """Put back a taken tuple at its place in the order (its taker is gone)."""
        if entry.tuple is None:
            raise ValueError("restore needs the entry's tuple")
        if entry.expires is not None and entry.expires <= self.clock.now():
            return
        self._offer(entry)

    def _offer(self, entry: Entry) -> None:
        t: Tuple = entry.tuple  # type: ignore[assignment]
        shelf = self._shelves.get(len(t))
        if shelf is None:
            shelf = self._shelves[len(t)] = _Shelf(len(t))
        elif shelf.waiters and self._serve_waiters(shelf, entry):
            return
        self._store(shelf, entry)

    def _store(self, shelf: _Shelf, entry: Entry) -> None:
        t: Tuple = entry.tuple  # type: ignore[assignment]
        appending = not shelf.all or shelf.all[-1].seq < entry.seq
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
            heapq.heappush(self._leases, (entry.expires, entry.seq, entry))

    def _remove(self, entry: Entry) -> Tuple:
        t: Tuple = entry.tuple  # type: ignore[assignment]
        entry.tuple = None
        shelf = self._shelves[len(t)]
        _discard(shelf.all)
        for pos, v in enumerate(t):
            key = value_key(v)
            d = shelf.index[pos]
            b = d[key]
            if b is entry or b.dead + 1 == len(b):  # type: ignore[union-attr,arg-type]
                del d[key]
            else:
                _discard(b)  # type: ignore[arg-type]
        del self._by_seq[entry.seq]
        if entry.expires is not None:
            self._leased -= 1
        return t

    # -- waiters --------------------------------------------------------------

    def _serve_waiters(self, shelf: _Shelf, entry: Entry) -> bool:
        """Hand ``entry`` to the waiters it satisfies; True if a taker consumed it."""
        t: Tuple = entry.tuple  # type: ignore[assignment]
        groups = []
        for pos, v in enumerate(t):
            d = shelf.wait_index[pos]
            if d:
                g = d.get(value_key(v))
                if g:
                    groups.append(g)
        if shelf.wait_all:
            groups.append(shelf.wait_all)
        if not groups:
            return False
        if len(groups) == 1:
            candidates = list(groups[0].values())
        else:
            candidates = sorted(itertools.chain.from_iterable(g.values() for g in groups), key=_by_seq)
        for w in candidates:
            if w.template.matches(t):
                self._unregister(w)
                w.state = DONE
                w.result = t
                if w.take:
                    w.entry = entry
                if w.wake() is False:  # its caller can no longer receive: not served
                    w.state, w.result, w.entry = CLOSED, None, None
                elif w.take:
                    return True
        return False

    def add_waiter(
        self, template: Template, take: bool, deadline: float | None, wake: Callable[[], object]
    ) -> Waiter:
        """Register a blocked read (``take=False``) or take; raise LimitReached when full."""
        self._check_open()
        if self._waiters >= self.max_waiters:
            raise LimitReached(
                f"this space already has {self.max_waiters} waiting calls",
                limit="max_waiters",
                maximum=self.max_waiters,
            )
        w = Waiter(next(self._waiter_seq), template, take, deadline, wake)
        shelf = self._shelves.get(template.arity)
        if shelf is None:
            shelf = self._shelves[template.arity] = _Shelf(template.arity)
        smallest = -1
        for pos, key in template.exact:
            g = shelf.wait_index[pos].get(key)
            n = len(g) if g else 0
            if w.key is None or n <= smallest:
                w.key, smallest = (pos, key), n
        if w.key is None:
            shelf.wait_all[w.seq] = w
        else:
            pos, key = w.key
            shelf.wait_index[pos].setdefault(key, {})[w.seq] = w
        w.shelf = shelf
        shelf.waiters += 1
        self._waiters += 1
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, w.seq, w))
        return w

    def _unregister(self, w: Waiter) -> None:
        shelf = w.shelf
        assert shelf is not None
        if w.key is None:
            del shelf.wait_all[w.seq]
        else:
            pos, key = w.key
            g = shelf.wait_index[pos][key]
            del g[w.seq]
            if not g:
                del shelf.wait_index[pos][key]
        shelf.waiters -= 1
        self._waiters -= 1

    def cancel_waiter(self, w: Waiter) -> None:
        """Withdraw a waiter that is still waiting (its caller gave up)."""
        if w.state is WAITING:
            self._unregister(w)
            w.state = TIMED_OUT

    # -- reading and taking -----------------------------------------------------

    def _candidates(self, template: Template) -> Iterator[Entry]:
        """Live entries that may match, in the space's order (random: in seq order)."""
        shelf = self._shelves.get(template.arity)
        if shelf is None:
            return iter(())
        best: Entry | _Bucket = shelf.all
        for pos, key in template.exact:
            b = shelf.index[pos].get(key)
            if b is None:
                return iter(())
            if type(b) is Entry:
                return iter((b,))
            if len(b) < len(best):  # type: ignore[arg-type]
                best = b
        bucket: _Bucket = best  # type: ignore[assignment]
        return reversed(bucket) if self.order == "lifo" else iter(bucket)

    def _matches(self, template: Template) -> Iterator[Entry]:
        exact_only = not template.checks
        one_exact = len(template.exact) <= 1
        for e in self._candidates(template):
            t = e.tuple
            if t is not None and ((exact_only and one_exact) or template.matches(t)):
                yield e

    def find(self, template: Template, take: bool) -> Tuple | None:
        """The first match in the space's order (removed if ``take``), or None."""
        if self._leases or self._deadlines:
            self.tick()
        if self.order == "random":
            matches = list(self._matches(template))
            entry = self._random.choice(matches) if matches else None
        else:
            entry = next(self._matches(template), None)
        if entry is None:
            return None
        t: Tuple = entry.tuple  # type: ignore[assignment]
        if take:
            self._remove(entry)
        return t

    def find_all(self, template: Template, take: bool, limit: int | None = None) -> list[Tuple]:
        """Every match in the space's order, at most ``limit``; removed if ``take``."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidValue(f"limit must be an int >= 0 or None, got {limit!r}", "limit")
        self.tick()
        if self.order == "random":
            entries = list(self._matches(template))
            self._random.shuffle(entries)
            entries = entries[:limit]
        else:
            entries = list(itertools.islice(self._matches(template), limit))
        out: list[Tuple] = [e.tuple for e in entries]  # type: ignore[misc]
        if take:
            for e in entries:
                self._remove(e)
        return out

    def count(self, template: Template) -> int:
        """How many stored tuples match ``template``."""
        self.tick()
        shelf = self._shelves.get(template.arity)
        if shelf is None:
            return 0
        if not template.checks and len(template.exact) <= 1:
            if not template.exact:
                return _live(shelf.all)
            pos, key = template.exact[0]
            b = shelf.index[pos].get(key)
            return 0 if b is None else _live(b)
        return sum(1 for _ in self._matches(template))

    def __len__(self) -> int:
        return len(self._by_seq)

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
            heapq.heappush(self._leases, (expires, seq, entry))
        return expires

    def cancel(self, seq: int) -> None:
        """Remove the tuple ``seq`` now."""
        self.tick()
        entry = self._by_seq.get(seq)
        if entry is None:
            raise UnknownLease(f"tuple {seq} is no longer in the space (taken, expired or cancelled)")
        self._remove(entry)

    # -- life cycle -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise SpaceClosed("the space is closed")

    def close(self) -> None:
        """Refuse further operations and release every waiter with state CLOSED."""
        self.closed = True
        for shelf in self._shelves.values():
            waiters = list(shelf.wait_all.values())
            for d in shelf.wait_index:
                for g in d.values():
                    waiters.extend(g.values())
            for w in waiters:
                self._unregister(w)
                w.state = CLOSED
                w.wake()

    def statistics(self) -> dict[str, Any]:
        """Counts for tests, metrics and the dashboard."""
        return {
            "tuples": len(self._by_seq),
            "waiters": self._waiters,
            "leased_tuples": self._leased,
            "expired_tuples": self._reaped,
            "arities": sorted(a for a, s in self._shelves.items() if _live(s.all)),
            "order": self.order,
            "closed": self.closed,
        }


def _by_seq(w: Waiter) -> int:
    return w.seq
