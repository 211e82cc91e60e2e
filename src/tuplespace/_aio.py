"""The asyncio space: the face of a space's :class:`~tuplespace._core.Core` for coroutines.

:class:`AsyncSpace` and :class:`~tuplespace.Space` are peers over one core: a
thread and a coroutine coordinate through one space, ``AsyncSpace(space)`` being
the asyncio face of ``space``'s core (``space.core``).  Operations that never wait
take the core's lock for a few microseconds; waiting is done on a future of the
running event loop, never by blocking it.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from ._capabilities import READ_ONLY
from ._clock import Clock
from ._core import Core, outcome, time_left
from ._engine import E, Txn, Waiter
from ._errors import EventsLost, SpaceFull, Timeout
from ._events import CHANGE_KINDS, EVENT_KINDS, Change, Event, FeedBase, nothing
from ._lease import AsyncLease
from ._methods import ActiveLimits
from ._mint import Challenge
from ._recordhandles import RecordBase, RecordData, check_revocable
from ._recordstore import DEFAULT_PRINCIPAL, RecordTaker
from ._rules import RuleInfo
from ._space import Space, SubscriptionBase, Successor, TransactionBase
from ._templates import RecordTemplate, Template, compile_template, feed_templates, one_exact
from ._upcall import AsyncUpcall
from ._values import URI, Credit, Map, Tuple, Value

__all__ = [
    "AsyncRecord",
    "AsyncRecordWatch",
    "AsyncRules",
    "AsyncSpace",
    "AsyncSubscription",
    "AsyncTransaction",
]


class _Wakes:
    """The futures of one event loop to resolve, resolved together in one callback.

    Waking a coroutine costs its writer only an append: the loop resolves every
    future woken since its last turn at once, and a writer in another thread
    wakes the loop once per batch instead of once per waiter.  No lock: a deque's
    appends and pops are atomic, and a flag read while the loop clears it costs at
    worst one extra flush.
    """

    _of: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wakes]] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: deque[asyncio.Future[None]] = deque()
        self.scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Wakes:
        wakes = cls._of.get(loop)
        if wakes is None:
            wakes = cls._of[loop] = cls(loop)
        return wakes

    def schedule(self, fut: asyncio.Future[None]) -> bool:
        """Have the loop flush the futures queued, ``fut`` the latest; False if the
        loop is closed (nobody will ever see ``fut``)."""
        self.scheduled = True
        try:
            if asyncio._get_running_loop() is self.loop:  # noqa: SLF001 (exported by asyncio; None off a loop)
                self.loop.call_soon(self.flush)
            else:
                self.loop.call_soon_threadsafe(self.flush)
        except RuntimeError:  # the loop is closed
            self.scheduled = False
            self.pending.remove(fut)
            return False
        return True

    def flush(self) -> None:
        self.scheduled = False  # a future queued from now on schedules the next flush
        pending = self.pending
        while pending:
            fut = pending.popleft()
            if not fut.done():
                fut.set_result(None)


class _Wake(asyncio.Future[None]):
    """A future that is its own wake-up: a waiter's ``wake()`` queues it on its loop.

    Calling the future itself, not a partial of a bound method, leaves a wake-up
    one object to reach instead of three.
    """

    __slots__ = ("_wakes",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._wakes = _Wakes.of(loop)

    def __call__(self) -> bool:
        wakes = self._wakes
        wakes.pending.append(self)
        return wakes.scheduled or wakes.schedule(self)


async def _wait(core: Core, w: Waiter, fut: asyncio.Future[None]) -> Tuple:
    """Await the end of ``w``; cancellation withdraws it and puts back what it took."""
    engine = core.engine
    received = False
    try:
        if w.deadline is None or engine.clock.simulated:
            await fut
        else:
            while not fut.done():
                remaining = w.deadline - engine.clock.now()
                if remaining > 0:
                    await asyncio.wait((fut,), timeout=remaining)
                    if fut.done():
                        break
                if core.wait_ended(w):
                    break
        received = True
    finally:
        core.end_wait(w, received)
    return outcome(w)


async def _call(core: Core, operation: Callable[..., Any], *args: Any) -> Any:
    """Run an engine operation under the lock; return once its changes are durable."""
    with core.lock:
        result = operation(*args)
        core.poke_timer()  # the operation may have made a lease that ends sooner
        journal = core.journal
        ticket = 0 if journal is None else core.ticket()
    if ticket:
        await journal.wait_async(ticket)  # type: ignore[union-attr]
    return result


async def _settle_now(core: Core) -> None:
    journal = core.journal
    if journal is not None:
        with core.lock:
            ticket = core.ticket()
        if ticket:
            await journal.wait_async(ticket)


async def _block(core: Core, template: Template, take: bool, timeout: float | None, txn: Txn | None) -> Tuple:
    engine = core.engine
    with core.lock:
        deadline = engine.deadline(timeout)
        found = engine.find(template, take, txn)
        if found is None:
            if timeout == 0:
                raise Timeout(f"no tuple matches {template.fields!r}")
            loop = asyncio.get_running_loop()
            fut = _Wake(loop)
            w = engine.add_waiter(template, take, deadline, fut, txn)
    if found is not None:
        if take:
            await _settle_now(core)
        return found
    result = await _wait(core, w, fut)
    if take:
        await _settle_now(core)
    return result


async def _group(
    core: Core,
    template: Template,
    take: bool,
    limit: int | None,
    timeout: float | None,
    txn: Txn | None,
    fits: Callable[[list[Tuple]], int] | None = None,
    after: int | None = None,
) -> tuple[list[Tuple], int | None]:
    """A page of ``read_all`` or ``take_all`` (see :meth:`Space._group
    <tuplespace.Space._group>`), waiting up to ``timeout`` for a first match; and the
    cursor of the next page (see :meth:`Engine.find_page
    <tuplespace._engine.Engine.find_page>`), not None when the page left matches out."""
    engine = core.engine
    while True:
        with core.lock:
            deadline = engine.deadline(timeout)
            found, cursor = engine.find_page(template, take, limit, fits, after, txn)
            if found or timeout == 0 or limit == 0:
                break
            fut = _Wake(asyncio.get_running_loop())
            if take:
                group = engine.add_group_taker(template, limit, deadline, fut, txn, fits)
                w: Waiter = group
            else:
                w = engine.add_waiter(template, False, deadline, fut, txn)
        try:
            await _wait(core, w, fut)
        except Timeout:
            return [], None
        if take:
            await _settle_now(core)
            return group.got, 0 if group.full else None
        timeout = time_left(engine, deadline)
    if take:
        await _settle_now(core)
    return found, cursor


_SPACE_OPTIONS = frozenset(inspect.signature(Space).parameters)


class CoreLeases:
    """The host of the :class:`AsyncLease` handles of an asyncio face
    (``aspace.leases``): the leases of its space's core, renewed and cancelled from a
    coroutine (a durable space's change is awaited off the event loop).  The handles
    hold it, and through it the core, not the face."""

    __slots__ = ("core",)

    def __init__(self, core: Core) -> None:
        self.core = core

    async def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = await _call(self.core, self.core.engine.renew, seq, seconds)
        return expires

    async def _cancel(self, seq: int) -> None:
        await _call(self.core, self.core.engine.cancel, seq)


class AsyncRules:
    """The rules of an asyncio face (``aspace.rules``): the calls of :class:`Rules`,
    awaited, as those of the other asyncio spaces' rules are.  A durable space's commit
    is awaited off the event loop, as for the face's other calls.

    >>> await aspace.rules.add("hot", template=("reading", str, float),  # doctest: +SKIP
    ...                        when="t[2] > 30.0", write=[("alarm", "t[1]", "t[2] - 30.0")])
    >>> await aspace.rules.set_firing_charge("0.01")  # doctest: +SKIP

    :attr:`limits`, :attr:`firing_charge` and :attr:`step_charge` are read as those of
    :class:`Rules` and set with :meth:`set_limits`, :meth:`set_firing_charge` and
    :meth:`set_step_charge`; ``space.rules`` of the thread face is the same rules.
    """

    __slots__ = ("core",)

    def __init__(self, core: Core) -> None:
        self.core = core

    async def add(
        self,
        name: str,
        *,
        on: str | Iterable[str] | None = None,
        template: Iterable[Any] | None = None,
        path: str | None = None,
        tag: str | None = None,
        when: str | None = None,
        write: Iterable[Iterable[Any]] = (),
        take: Iterable[Iterable[Any]] = (),
        set: str | Mapping[str, str] | None = None,
        to: str | None = None,
        using: Mapping[str, str] | None = None,
        principal: str = DEFAULT_PRINCIPAL,
        refresh: Mapping[str, Any] | None = None,
        create: Mapping[Any, Mapping[str, Any]] | None = None,
        call: Iterable[Iterable[Any]] = (),
    ) -> RuleInfo:
        """See :meth:`Rules.add`."""
        rules = self.core.rules
        rule = rules.define(
            name, on, template, path, tag, when, write, take, set, to, using, principal, refresh, create, call
        )
        info: RuleInfo = await _call(self.core, rules.admit, rule)
        return info

    async def remove(self, name: str) -> None:
        """See :meth:`Rules.remove`."""
        await _call(self.core, self.core.rules.drop, name)

    async def list(self) -> list[RuleInfo]:
        """See :meth:`Rules.list`."""
        return self.core.rules.list()

    async def get(self, name: str) -> RuleInfo:
        """See :meth:`Rules.get`."""
        return self.core.rules.get(name)

    async def statistics(self) -> dict[str, Any]:
        """See :meth:`Rules.statistics`."""
        return self.core.rules.statistics()

    @property
    def max_rules(self) -> int:
        """The most rules the space holds (see :class:`Rules`)."""
        return self.core.rules.max_rules

    @max_rules.setter
    def max_rules(self, most: int) -> None:
        self.core.rules.max_rules = most

    @property
    def limits(self) -> ActiveLimits:
        """See :attr:`Rules.limits`; set with :meth:`set_limits`."""
        return self.core.rules.limits

    @property
    def firing_charge(self) -> Credit:
        """See :attr:`Rules.firing_charge`; set with :meth:`set_firing_charge`."""
        return self.core.rules.firing_charge

    @property
    def step_charge(self) -> Credit:
        """See :attr:`Rules.step_charge`; set with :meth:`set_step_charge`."""
        return self.core.rules.step_charge

    async def set_limits(self, limits: ActiveLimits) -> None:
        """Set :attr:`limits` (see :attr:`Rules.limits`); returns once a durable space keeps them."""
        await _call(self.core, self.core.rules.apply_limits, limits)

    async def set_firing_charge(self, amount: Credit | int | str) -> None:
        """Set :attr:`firing_charge`; returns once a durable space keeps it."""
        await _call(self.core, self.core.rules.apply_firing_charge, amount)

    async def set_step_charge(self, amount: Credit | int | str) -> None:
        """Set :attr:`step_charge`; returns once a durable space keeps it."""
        await _call(self.core, self.core.rules.apply_step_charge, amount)


class AsyncSpace:
    """The asyncio face of a space: the same methods as :class:`Space`, awaited.

    >>> aspace = AsyncSpace(space)              # doctest: +SKIP
    >>> await aspace.take(("job", int, str))     # doctest: +SKIP

    ``AsyncSpace()`` with no space makes a new one; keyword options are those of
    :class:`Space`.  Both faces are built over the space's kernel (:attr:`core`):
    ``aspace.space`` is the thread face of the same space.  Cancelling a waiting
    call withdraws it and takes nothing.
    ``subscribe`` and ``transaction`` return objects used with ``async with``.
    Records (:meth:`create`, :meth:`record`, :meth:`find`) are :class:`AsyncRecord`
    handles, whose methods are awaited too.
    """

    def __init__(self, space: Space | None = None, **options: Any) -> None:
        if space is not None and options:
            raise TypeError("give either a space or options for a new one, not both")
        unknown = options.keys() - _SPACE_OPTIONS
        if unknown:
            raise TypeError(
                f"AsyncSpace() got unknown options {sorted(unknown)}; "
                f"those of Space are {sorted(_SPACE_OPTIONS)}"
            )
        self.core = space.core if space is not None else Core.build(**options)
        self.leases = CoreLeases(self.core)
        self._rules = AsyncRules(self.core)
        self._space = space

    @property
    def space(self) -> Space:
        """The thread face of this space (the :class:`Space` it was made from, if any)."""
        if self._space is None:
            self._space = Space.over(self.core)
        return self._space

    @property
    def rules(self) -> AsyncRules:
        """The space's rules (see :attr:`Space.rules`), their calls awaited."""
        return self._rules

    async def write(
        self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None
    ) -> AsyncLease:
        """See :meth:`Space.write`; the lease is an :class:`AsyncLease`."""
        core = self.core
        engine = core.engine
        entry = None
        with core.lock:
            try:
                entry = engine.write(t, lease)
            except SpaceFull:
                if timeout == 0:
                    raise
                loop = asyncio.get_running_loop()
                fut = _Wake(loop)
                w = engine.add_writer(t, lease, engine.deadline(timeout), fut)
                core.start_timer()  # an expiry may make room while nobody calls
            else:
                if entry is not None and entry.expires is not None:
                    core.poke_timer()
                journal = core.journal
                ticket = 0 if journal is None else core.ticket()
        if entry is not None:
            if ticket:
                await journal.wait_async(ticket)  # type: ignore[union-attr]
            return AsyncLease(self.leases, entry.seq, entry.expires)
        await _wait(core, w, fut)
        assert w.entry is not None
        await _settle_now(core)
        return AsyncLease(self.leases, w.entry.seq, w.entry.expires)

    async def write_many(
        self, tuples: Iterable[Iterable[Value]], lease: float | None = None
    ) -> list[AsyncLease]:
        """See :meth:`Space.write_many`; the leases are :class:`AsyncLease`."""
        entries = await _call(self.core, self.core.engine.write_many, tuples, lease)
        return [AsyncLease(self.leases, e.seq, e.expires) for e in entries]

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.read`."""
        return await _block(self.core, compile_template(template), False, timeout, None)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.take`."""
        return await _block(self.core, compile_template(template), True, timeout, None)

    async def try_read(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_read`."""
        t = compile_template(template)
        core = self.core
        with core.lock:
            return core.engine.find(t, False)

    async def try_take(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_take`."""
        found: Tuple | None = await _call(self.core, self.core.engine.find, compile_template(template), True)
        return found

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`Space.read_all`."""
        return (await _group(self.core, compile_template(template), False, limit, timeout, None))[0]

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`Space.take_all`."""
        return (await _group(self.core, compile_template(template), True, limit, timeout, None))[0]

    async def find_page(
        self,
        template: Template,
        take: bool,
        limit: int | None,
        fits: Callable[[list[Tuple]], int],
        after: int | None,
        timeout: float | None = 0,
    ) -> tuple[list[Tuple], int | None]:
        """:meth:`read_all` or :meth:`take_all` for an answer of bounded size, a page at
        a time (see :meth:`Engine.find_page <tuplespace._engine.Engine.find_page>`): the
        server's."""
        return await _group(self.core, template, take, limit, timeout, None, fits, after)

    async def count(self, template: Any) -> int:
        """See :meth:`Space.count`."""
        t = compile_template(template)
        core = self.core
        with core.lock:
            return core.engine.count(t)

    async def replace(
        self, template: Any, successor: Successor, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """See :meth:`Space.replace`."""
        compiled = compile_template(template)
        core = self.core
        with self.core.lock:
            deadline = core.engine.deadline(timeout)
        while True:
            old: Tuple | None = await _call(core, core.engine.replace, compiled, successor, lease)
            if old is not None:
                return old
            await _block(core, compiled, False, time_left(core.engine, deadline), None)

    async def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """See :meth:`Space.write_if_absent`."""
        written = await _call(
            self.core, self.core.engine.write_if_absent, compile_template(template), t, lease
        )
        return written is not None

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> AsyncSubscription:
        """See :meth:`Space.subscribe`; iterate with ``async for``."""
        feed = self.core.subscribe(feed_templates(template), events, since, max_pending, lease, existing)
        return AsyncSubscription(self.core, feed)

    async def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> AsyncRecord:
        """See :meth:`Space.create`."""
        rid: int = await _call(
            self.core, self.core.engine.records.create, path, fields, credit, lease, principal
        )
        return AsyncRecord(self.core, rid)

    async def record(self, ref: str | URI, *, principal: str = DEFAULT_PRINCIPAL) -> AsyncRecord:
        """See :meth:`Space.record`."""
        records = self.core.engine.records
        if records.redirect_charge:
            rid, token, operations = await _call(self.core, records.resolve, ref, principal)
        else:
            with self.core.lock:
                rid, token, operations = records.resolve(ref, principal)
        return AsyncRecord(self.core, rid, token, operations)

    async def find(
        self, template: Mapping[str, Any], under: str | None = None, limit: int | None = None
    ) -> list[AsyncRecord]:
        """See :meth:`Space.find`."""
        exact = one_exact(template) if under is None and limit is None else None
        if exact is not None:
            with self.core.lock:
                rids = self.core.engine.records.find_value(*exact)
        else:
            compiled = RecordTemplate(template)
            with self.core.lock:
                rids = self.core.engine.records.find(compiled, under, limit)
        return [AsyncRecord(self.core, rid) for rid in rids]

    async def try_take_record(
        self, template: Mapping[str, Any] | RecordTemplate, under: str | None = None
    ) -> RecordData | None:
        """See :meth:`Space.try_take_record`."""
        taken = await _call(self.core, self.core.engine.records.take, RecordTemplate(template), under)
        return None if taken is None else RecordData(*taken)

    async def take_record(
        self,
        template: Mapping[str, Any] | RecordTemplate,
        under: str | None = None,
        timeout: float | None = None,
        *,
        hold: Callable[[int], object] | None = None,
    ) -> RecordData:
        """See :meth:`Space.take_record`.  With ``hold``, the record is held (hidden
        from finds and takes, not removed) and ``hold(rid)`` is called under the
        space's lock as soon as it is: the caller then confirms or releases it, as a
        claimed take does (``tuplespace.server.RecordClaim``)."""
        return await self._take_record(RecordTemplate(template), under, timeout, hold)

    async def _take_record(
        self,
        compiled: RecordTemplate,
        under: str | None,
        timeout: float | None,
        hold: Callable[[int], object] | None,
    ) -> RecordData:
        """:meth:`take_record`; with ``hold``, the record is held, not removed, and
        ``hold(rid)`` is called under the lock as soon as it is: the caller then
        confirms or releases it (a claimed take over HTTP)."""
        records = self.core.engine.records
        loop = asyncio.get_running_loop()
        fut = _Wake(loop)

        def holding(held: Any) -> Any:
            """The record of a held take ``(rid, *record)``, once ``hold(rid)`` is told."""
            if held is None:
                return None
            hold(held[0])  # type: ignore[misc]
            return held[1:]

        def grab() -> Any:
            if hold is None:
                return records.take(compiled, under)
            return holding(records.take_held(compiled, under))

        def end(taker: RecordTaker, received: bool) -> Any:
            if hold is None:
                return records.end_take(taker, received)
            return holding(records.end_held_take(taker, received))

        def first() -> tuple[Any, RecordTaker | None, float | None]:
            deadline = engine.deadline(timeout)
            taken = grab()
            if taken is not None or timeout == 0:
                return taken, None, deadline
            return None, records.add_taker(compiled, under, fut), deadline

        engine = self.core.engine
        taken, taker, deadline = await _call(self.core, first)
        if taken is not None:
            return RecordData(*taken)
        if taker is None:
            raise Timeout(f"no record matches {compiled.fields!r}")
        received = False
        try:
            while True:  # the store hands this take its record, oldest taker first
                with self.core.lock:
                    if taker.rec is not None:
                        break
                    self.core.check_open()
                    if deadline is not None and engine.clock.now() >= deadline:
                        break  # to receive a record handed meanwhile, if one was
                await _wait_future(fut, engine.clock, deadline)
            received = True
        finally:
            # Removed for good only now; released to the next taker if this call is cancelled.
            with self.core.lock:
                taken = end(taker, received)
        await _settle_now(self.core)
        if taken is None:
            raise Timeout(f"no record matched {compiled.fields!r} in time")
        return RecordData(*taken)

    def watch_records(
        self,
        under: str | None = None,
        events: Iterable[str] = CHANGE_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> AsyncRecordWatch:
        """See :meth:`Space.watch_records`; iterate with ``async for``."""
        with self.core.lock:
            feed = self.core.engine.records.watch_all(under, events, since, max_pending, lease)
            self.core.start_timer()
        return AsyncRecordWatch(self.core, feed)

    async def grant_credit(self, principal: str, amount: Credit | int | str) -> Credit:
        """See :meth:`Space.grant_credit`."""
        balance: Credit = await _call(self.core, self.core.engine.records.grant, principal, amount)
        return balance

    async def account(self, principal: str) -> Credit:
        """See :meth:`Space.account`."""
        with self.core.lock:
            return self.core.engine.records.accounts.balance(principal)

    async def transfer_credit(self, source: str, target: str, amount: Credit | int | str) -> Credit:
        """See :meth:`Space.transfer_credit`."""
        balance: Credit = await _call(self.core, self.core.engine.records.transfer, source, target, amount)
        return balance

    async def credit_challenge(self) -> Challenge:
        """See :meth:`Space.credit_challenge`."""
        with self.core.lock:
            return self.core.engine.records.challenge()

    async def mint_credit(self, challenge: str, nonce: str, *, principal: str = DEFAULT_PRINCIPAL) -> Credit:
        """See :meth:`Space.mint_credit`."""
        balance: Credit = await _call(
            self.core, self.core.engine.records.mint_credit, challenge, nonce, principal
        )
        return balance

    def transaction(self, lease: float | None = 60.0) -> AsyncTransaction:
        """See :meth:`Space.transaction`; use with ``async with``."""
        with self.core.lock:
            txn = self.core.engine.begin(lease)
            self.core.start_timer()
        return AsyncTransaction(self.core, txn)

    async def add_lifetime(self, template: Any, max_age: float) -> None:
        """See :meth:`Space.add_lifetime`."""
        self.core.add_lifetime(template, max_age)

    async def remove_lifetime(self, template: Any, max_age: float) -> None:
        """See :meth:`Space.remove_lifetime`."""
        self.core.remove_lifetime(template, max_age)

    async def statistics(self) -> dict[str, Any]:
        """See :meth:`Space.statistics`; awaited, as every asyncio space's."""
        return self.core.statistics()

    async def close(self) -> None:
        """See :meth:`Space.close`."""
        await asyncio.to_thread(self.core.close)  # a durable space writes what is pending

    async def __aenter__(self) -> AsyncSpace:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncSpace(order={self.core.engine.order!r}, tuples={len(self.core.engine)})"


class AsyncTransaction(TransactionBase):
    """A transaction seen from asyncio; see :class:`~tuplespace.Transaction`."""

    async def write(self, t: Iterable[Value], lease: float | None = None) -> None:
        self._write(t, lease)

    async def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> None:
        self._write_many(tuples, lease)

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        return await _block(self._core, compile_template(template), False, timeout, self._txn)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return await _block(self._core, compile_template(template), True, timeout, self._txn)

    async def try_read(self, template: Any) -> Tuple | None:
        return self._find(template, False)

    async def try_take(self, template: Any) -> Tuple | None:
        return self._find(template, True)

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        return (await _group(self._core, compile_template(template), False, limit, timeout, self._txn))[0]

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        return (await _group(self._core, compile_template(template), True, limit, timeout, self._txn))[0]

    async def find_page(
        self,
        template: Template,
        take: bool,
        limit: int | None,
        fits: Callable[[list[Tuple]], int],
        timeout: float | None = 0,
    ) -> tuple[list[Tuple], int | None]:
        """See :meth:`AsyncSpace.find_page`; a transaction's pages are not resumed."""
        return await _group(self._core, template, take, limit, timeout, self._txn, fits)

    async def count(self, template: Any) -> int:
        return self._count(template)

    async def commit(self) -> None:
        """See :meth:`tuplespace.Transaction.commit`: SpaceFull, the transaction aborted, when its
        writes do not fit in the space's capacity."""
        await _call(self._core, self._core.engine.commit, self._txn)

    async def abort(self) -> None:
        self._abort()

    async def renew(self, lease: float | None) -> None:
        """Give the transaction ``lease`` more seconds from now."""
        self._renew(lease)

    async def __aenter__(self) -> AsyncTransaction:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self._txn.state == "active":
            await self.commit()
        else:
            await self.abort()


async def _wait_future(fut: asyncio.Future[None], clock: Clock, deadline: float | None) -> None:
    """The asyncio twin of :func:`~tuplespace._clock.wait_event`: wait for ``fut`` until
    ``deadline`` of ``clock`` (None: no end); simulated time moves in other threads,
    so then the caller is back soon to look again."""
    if deadline is None:
        await fut
    else:
        await asyncio.wait((fut,), timeout=0.01 if clock.simulated else max(deadline - clock.now(), 0.0))


async def anext_from(
    core: Core, feed: FeedBase[E], loop: asyncio.AbstractEventLoop, timeout: float | None = None
) -> E | None:
    """The next item of ``feed``, awaited on ``loop`` up to ``timeout`` seconds of the
    space's clock (:class:`Timeout` after); None once the feed has ended."""
    engine = core.engine
    with core.lock:
        deadline = engine.deadline(timeout)
    while True:
        with core.lock:
            feed.wake = nothing
            event = engine.next_event(feed)
            if event is not None:
                return event
            if feed.closed:
                return None
            if deadline is not None and engine.clock.now() >= deadline:
                raise Timeout("nothing came in time")
            fut = _Wake(loop)
            feed.wake = fut
        try:
            await _wait_future(fut, engine.clock, deadline)
        finally:
            with core.lock:
                feed.wake = nothing


class AsyncSubscription(SubscriptionBase):
    """A subscription seen from asyncio: ``async for ev in sub``; see :class:`~tuplespace.Subscription`."""

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds of the space's clock; None once ended."""
        try:
            return await anext_from(self._core, self._feed, asyncio.get_running_loop(), timeout)
        except Timeout:
            raise Timeout("no event in time") from None

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def close(self) -> None:
        self._close()

    async def renew(self, lease: float | None) -> None:
        """End the subscription ``lease`` seconds from now (None: never)."""
        self._renew(lease)

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncRecord(RecordBase):
    """A record handle for asyncio: the methods of :class:`Record`, awaited."""

    __slots__ = ()

    async def get(self, tag: str, default: Value = None) -> Value:
        """See :meth:`Record.get`."""
        return self._locked(self._store.get, tag, default)

    async def view(self, *tags: str) -> tuple[Value, ...]:
        """See :meth:`Record.view`."""
        view: tuple[Value, ...] = self._locked(self._store.view, tags)
        return view

    async def all(self) -> Map:
        """See :meth:`Record.all`."""
        fields: Map = self._locked(self._store.all)
        return fields

    async def tags(self) -> list[str]:
        """See :meth:`Record.tags`."""
        tags: list[str] = self._locked(self._store.tags)
        return tags

    async def snapshot(self) -> RecordData:
        """See :meth:`Record.snapshot`."""
        return self._snapshot()

    async def _call(self, operation: Any, *args: Any) -> Any:
        return await _call(self._core, operation, *args)

    async def set(self, tag: str, value: Value) -> int:
        """See :meth:`Record.set`."""
        version: int = await self._call(self._store.set, self._rid, self._token, tag, value)
        return version

    async def call(self, tag: str, *args: Value, principal: str = DEFAULT_PRINCIPAL) -> Value:
        """See :meth:`Record.call`."""
        result: Value = await self._call(self._core.rules.call, self._rid, self._token, tag, args, principal)
        return result

    async def refresh(
        self, credit: Any = None, lease: float | None = None, *, principal: str = DEFAULT_PRINCIPAL
    ) -> float | None:
        """See :meth:`Record.refresh`."""
        expires: float | None = await self._call(
            self._store.refresh, self._rid, self._token, credit, lease, principal
        )
        return expires

    async def clone(
        self, path: str, credit: Any = None, lease: float | None = None, *, principal: str = DEFAULT_PRINCIPAL
    ) -> AsyncRecord:
        """See :meth:`Record.clone`."""
        rid: int = await self._call(self._store.clone, self._rid, self._token, path, credit, lease, principal)
        return AsyncRecord(self._core, rid)

    async def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """See :meth:`Record.move`."""
        self._full("move")
        await self._call(self._store.move, self._rid, path, redirect_lease)

    async def destroy(self, force: bool = False) -> None:
        """See :meth:`Record.destroy`."""
        await self._call(self._store.destroy, self._rid, self._token, force)

    async def read_only(self) -> AsyncRecord:
        """See :meth:`Record.read_only`."""
        self._full("capability")
        token: str = await self._call(self._store.read_only, self._rid)
        return AsyncRecord(self._core, self._rid, token, READ_ONLY, owner=True)

    async def capability(self, operations: Iterable[str], lease: float | None = None) -> AsyncRecord:
        """See :meth:`Record.capability`."""
        self._full("capability")
        ops = frozenset({operations} if isinstance(operations, str) else operations)
        token: str = await self._call(self._store.capability, self._rid, ops, lease)
        return AsyncRecord(self._core, self._rid, token, ops, owner=True)

    async def revoke(self) -> None:
        """See :meth:`Record.revoke`."""
        check_revocable(self._token is not None, self._owner, self._operations)
        await self._call(self._store.revoke, self._rid, self._token)

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> AsyncRecordWatch:
        """See :meth:`Record.watch`; iterate with ``async for``."""
        core = self._core
        with core.lock:
            feed = self._store.watch(self._rid, self._token, since, max_pending, lease)
            core.start_timer()
        return AsyncRecordWatch(core, feed)

    async def on_change(
        self,
        fn: Callable[[Change], object],
        *,
        on_lost: Callable[[EventsLost], object] | None = None,
        max_pending: int = 1000,
    ) -> AsyncUpcall:
        """See :meth:`Record.on_change <tuplespace.Record.on_change>`: ``fn`` (a function or a
        coroutine function) runs in a task of the running event loop:
        ``upcall = await rec.on_change(fn)``, ``await upcall.cancel()``."""
        return await AsyncUpcall.start(
            lambda since, pending: self.watch(since, pending), fn, on_lost, max_pending
        )


class AsyncRecordWatch(SubscriptionBase):
    """A record watch for asyncio: ``async for change in watch``; see :class:`RecordWatch`."""

    async def get(self, timeout: float | None = None) -> Change | None:
        """The next change, waiting up to ``timeout`` seconds of the space's clock; None once ended."""
        feed: FeedBase[Change] = self._feed
        try:
            return await anext_from(self._core, feed, asyncio.get_running_loop(), timeout)
        except Timeout:
            raise Timeout("no change in time") from None

    def __aiter__(self) -> AsyncRecordWatch:
        return self

    async def __anext__(self) -> Change:
        change = await self.get()
        if change is None:
            raise StopAsyncIteration
        return change

    async def renew(self, lease: float | None) -> None:
        """End the watch ``lease`` seconds from now (None: never)."""
        self._renew(lease)

    async def close(self) -> None:
        self._close()

    async def __aenter__(self) -> AsyncRecordWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
