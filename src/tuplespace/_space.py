"""The thread-safe space: the face of a space's :class:`~tuplespace._core.Core` for threads.

The core holds the engine, its lock and everything else the space is made of;
:class:`Space` and :class:`~tuplespace.AsyncSpace` are peers over it, each
waiting in its own way.

Every blocking call follows one pattern: try the non-blocking operation; if it
finds nothing, register a waiter, wait for it, and in ``finally`` withdraw the
waiter (or, if a taken tuple arrived too late for its caller, put it back), so a
timed-out or interrupted call leaves no waiter behind and takes no tuple.

Things that must happen when nobody calls (a transaction's lease running out,
expire events for subscribers) are done by one timer thread per core, started
on first need, which sleeps until the engine's next deadline.

The seam for what acts on a space's events (the rules of ``space.rules``):
:meth:`Space.after_operations` registers a hook that every operation calls as it
gives up the space's lock, once its changes are made and its events delivered to
the engine's feeds, before any other operation begins.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._clock import Clock, wait_event
from ._core import Core, outcome, time_left
from ._engine import (
    EVENT_RETENTION_BYTES,
    Txn,
    Waiter,
)
from ._errors import SpaceFull, Timeout
from ._events import CHANGE_KINDS, EVENT_KINDS
from ._lease import Lease
from ._methods import MAX_FIRINGS, METHOD_MEMORY, METHOD_MS, METHOD_STEPS
from ._mint import Challenge
from ._recordhandles import Record, RecordData, RecordWatch
from ._recordstore import (
    DEFAULT_BASE_URI,
    DEFAULT_MINT_BITS,
    DEFAULT_OPERATOR,
    DEFAULT_PRINCIPAL,
    RecordTaker,
)
from ._rules import Rules
from ._subscription import Subscription, SubscriptionBase
from ._templates import RecordTemplate, Template, compile_template, feed_templates, one_exact
from ._values import DEFAULT_LIMITS, URI, Credit, Limits, Tuple, Value

__all__ = ["Space", "Subscription", "SubscriptionBase", "Transaction", "TransactionBase"]

Successor = Iterable[Value] | Callable[[Tuple], Iterable[Value]]


class Space:
    """A tuple space in this process, safe to share between threads.

    >>> space = Space()
    >>> lease = space.write(("job", 1, "resize"), lease=30)
    >>> space.take(("job", int, str), timeout=2.0)
    ('job', 1, 'resize')

    Options:

    - ``order``: which match a read or take returns: ``"fifo"`` (the oldest, the
      default), ``"lifo"`` (the newest) or ``"random"``.  Waiting calls are always
      served in the order they arrived.
    - ``clock``: where time comes from (:class:`SimulatedClock` for simulations).
    - ``limits``: :class:`Limits` on the tuples written.
    - ``capacity``: the most tuples the space holds; writers then wait for room.
    - ``max_waiters``, ``max_subscribers``: how many calls may wait (and, apart, how
      many record takes), and how many subscriptions may exist, at once
      (:class:`LimitReached` beyond).
    - ``event_retention``: how many past events are kept for subscribers to resume;
      ``event_retention_bytes``: how many bytes of values the kept events may hold
      (64 MiB by default): the oldest go first past either.
    - ``seed``: seeds the random order, for repeatable runs.
    - ``name`` and ``base_uri``: the space's name and the node's base URI, which make
      the addresses of its records (``tuplespace://local/spaces/default/<path>`` by
      default).
    - ``charge_rate``: the credit a record pays per second for each KiB it stores;
      ``creation_charge``: the credit a creation costs.  Both 0 by default: credit
      is off.  See :meth:`create` and ``docs/records.md``.
    - ``operator``: the principal whose account receives the credit the space
      burns (``"operator"`` by default); see ``docs/active.md``.
    - ``mint_amount``: the credit a proof-of-work stamp mints (0, the default: the
      space mints none); ``mint_bits``: the zero bits a stamp needs (20).  See
      :meth:`mint_credit`.
    - ``redirect_charge``: the credit a caller pays each time it names a record by
      a path the record moved away from (0, the default: a redirection is free);
      see :meth:`record`.
    - ``firing_charge``, ``step_charge`` and ``max_firings``: the credit each firing
      of a rule and each step of a method cost (0 by default), and the most firings
      one operation may set off (1000); ``method_steps``, ``method_ms`` and
      ``method_memory``: what a method may run (100,000 steps, 100 ms of CPU time,
      1 MiB).  The initial values of :attr:`rules`' ``firing_charge``,
      ``step_charge`` and ``limits`` (:class:`ActiveLimits`).  A durable space
      stores them with its other options, and keeps the changes made to them on
      the open space.  See ``docs/active.md``.

    Timeouts are seconds: ``None`` waits forever, ``0`` never waits.  A blocking
    call that runs out of time raises :class:`Timeout` (also a ``TimeoutError``).
    """

    def __init__(
        self,
        *,
        order: str = "fifo",
        clock: Clock | None = None,
        limits: Limits = DEFAULT_LIMITS,
        capacity: int | None = None,
        max_waiters: int = 100_000,
        max_subscribers: int = 10_000,
        event_retention: int = 10_000,
        event_retention_bytes: int = EVENT_RETENTION_BYTES,
        seed: int | None = None,
        name: str = "default",
        base_uri: str = DEFAULT_BASE_URI,
        charge_rate: Credit | int | str = 0,
        creation_charge: Credit | int | str = 0,
        operator: str = DEFAULT_OPERATOR,
        mint_amount: Credit | int | str = 0,
        mint_bits: int = DEFAULT_MINT_BITS,
        redirect_charge: Credit | int | str = 0,
        firing_charge: Credit | int | str = 0,
        step_charge: Credit | int | str = 0,
        max_firings: int = MAX_FIRINGS,
        method_steps: int = METHOD_STEPS,
        method_ms: int = METHOD_MS,
        method_memory: int = METHOD_MEMORY,
    ) -> None:
        # What the package's other parts, the asyncio face and the handles use of this space.
        self.core = Core.build(
            order=order,
            clock=clock,
            limits=limits,
            capacity=capacity,
            max_waiters=max_waiters,
            max_subscribers=max_subscribers,
            event_retention=event_retention,
            event_retention_bytes=event_retention_bytes,
            seed=seed,
            name=name,
            base_uri=base_uri,
            charge_rate=charge_rate,
            creation_charge=creation_charge,
            operator=operator,
            mint_amount=mint_amount,
            mint_bits=mint_bits,
            redirect_charge=redirect_charge,
            firing_charge=firing_charge,
            step_charge=step_charge,
            max_firings=max_firings,
            method_steps=method_steps,
            method_ms=method_ms,
            method_memory=method_memory,
        )

    @classmethod
    def over(cls, core: Core) -> Space:
        """The thread face of the space whose kernel is ``core`` (``aspace.core`` of an
        :class:`~tuplespace.AsyncSpace`): both faces hold the same tuples and records.

        >>> aspace = AsyncSpace()                # doctest: +SKIP
        >>> Space.over(aspace.core).write(("job", 1))   # doctest: +SKIP
        """
        face = cls.__new__(cls)
        face.core = core
        return face

    @property
    def order(self) -> str:
        return self.core.engine.order

    @property
    def clock(self) -> Clock:
        return self.core.engine.clock

    @property
    def limits(self) -> Limits:
        return self.core.engine.limits

    @property
    def capacity(self) -> int | None:
        return self.core.engine.capacity

    @property
    def name(self) -> str:
        return self.core.engine.records.name

    @property
    def base_uri(self) -> str:
        """The node's base URI, the start of every address of its records."""
        return self.core.engine.records.base_uri

    @property
    def charge_rate(self) -> Credit:
        """Credit per second per KiB a record stores (0: storage is free)."""
        return self.core.engine.records.charge_rate

    @property
    def creation_charge(self) -> Credit:
        """Credit a creation costs, on top of the credit given to the new record."""
        return self.core.engine.records.creation_charge

    @property
    def redirect_charge(self) -> Credit:
        """Credit a caller pays for naming a record by a path it moved away from."""
        return self.core.engine.records.redirect_charge

    @property
    def firing_charge(self) -> Credit:
        """Credit each firing of a rule costs (see :attr:`Rules.firing_charge`)."""
        return self.core.active[0]

    @property
    def step_charge(self) -> Credit:
        """Credit each step of a method costs (see :attr:`Rules.step_charge`)."""
        return self.core.active[1]

    @property
    def max_firings(self) -> int:
        """The most firings one operation may set off (``rules.limits.max_firings``)."""
        return self.core.active[2].max_firings

    @property
    def operator(self) -> str:
        """The principal whose account receives the credit the space burns."""
        return self.core.engine.records.accounts.operator

    @property
    def mint_amount(self) -> Credit:
        """The credit a proof-of-work stamp mints (0: the space mints none)."""
        return self.core.engine.records.mint.amount

    @property
    def mint_bits(self) -> int:
        """The leading zero bits the hash of a stamp needs."""
        return self.core.engine.records.mint.bits

    @property
    def rules(self) -> Rules:
        """The space's rules: reactions, Push Logic rules and the limits of methods
        (see :class:`~tuplespace.Rules` and ``docs/active.md``)."""
        return self.core.rules

    def after_operations(self, hook: Callable[[], object]) -> None:
        """From now on, call ``hook()`` at the end of every operation on the space.

        The hook runs with the space's lock held, as the operation gives it up: the
        operation's changes are made and its events delivered to the engine's feeds
        (its subscriptions), and no other operation has begun.  What the hook does
        to the space counts as part of that operation: a durable space writes it in
        the same commit, and the operation's caller, once it returns, sees it done.
        This is how the rules of :attr:`rules` run the reactions an operation set
        off.  The hook must not block; what it raises is ignored after it is logged
        (the operation it follows has happened).  Registering a hook again does
        nothing.

        A space without hooks pays nothing for them: its lock stays a plain lock
        until the first one.  An operation that was already waiting for the lock
        when the first hook came gives it up without calling it; what that
        operation set off is then run at the end of the next one.
        """
        self.core.after_operations(hook)

    # -- writing ----------------------------------------------------------------

    def write(self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None) -> Lease:
        """Write the tuple ``t``; it stays ``lease`` seconds (None: until taken).

        In a space at its capacity the call waits up to ``timeout`` seconds for room
        (``timeout=0`` raises :class:`SpaceFull` at once).  Raises
        :class:`InvalidValue` (a ``ValueError``) for a tuple that cannot be stored,
        naming the field; nothing is written then.
        """
        core = self.core
        engine = core.engine
        lock = core.lock
        entry = None
        lock.acquire()  # not ``with``: this is the hot path, and ``with`` costs twice as much
        try:
            entry = engine.write(t, lease)
        except SpaceFull:
            if timeout == 0:
                raise
            deadline = engine.deadline(timeout)
            wake = _thread.allocate_lock()
            wake.acquire()
            w = engine.add_writer(t, lease, deadline, wake.release)
            core.start_timer()  # an expiry may make room while nobody calls
        else:
            if core.timer is not None and entry is not None and entry.expires is not None:
                core.timer.poke()
            ticket = 0 if core.journal is None else core.ticket()
        finally:
            lock.release()
        if entry is not None:
            if ticket:
                core.settle(ticket)
            return Lease(core, entry.seq, entry.expires)
        _wait(core, w, wake)
        assert w.entry is not None
        core.settle_now()
        return Lease(core, w.entry.seq, w.entry.expires)

    def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> list[Lease]:
        """Write several tuples at once, in order: all of them, or none if one is
        invalid or (with a capacity) they do not all fit (:class:`SpaceFull`)."""
        entries = self.core.call(self.core.engine.write_many, tuples, lease)
        return [Lease(self.core, e.seq, e.expires) for e in entries]

    # -- reading and taking ---------------------------------------------------------

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """Return a copy of a matching tuple, waiting up to ``timeout`` seconds for one."""
        return _block(self.core, compile_template(template), False, timeout, None)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a matching tuple, waiting up to ``timeout`` seconds for one."""
        return _block(self.core, compile_template(template), True, timeout, None)

    def try_read(self, template: Any) -> Tuple | None:
        """A matching tuple, or None at once if there is none."""
        t = compile_template(template)
        core = self.core
        with core.lock:
            return core.engine.find(t, False)

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a matching tuple, or None at once if there is none."""
        found: Tuple | None = self.core.call(self.core.engine.find, compile_template(template), True)
        return found

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """All matching tuples (at most ``limit``), in the order of the space.

        With a ``timeout`` (seconds; None: for ever), a read that finds no match waits
        for a first one, then returns every match there is (at most ``limit``);
        ``[]`` if none came in time.  ``timeout=0``, the default, never waits.
        """
        return _group(self.core, compile_template(template), False, limit, timeout, None)

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """Remove and return all matching tuples (at most ``limit``), in order.

        With a ``timeout`` (seconds; None: for ever), a take that finds no match waits
        for matches (Linda's ``ing``): the first write that brings some wakes it with
        up to ``limit`` of them, taken at once (a :meth:`write_many` with all of its
        matches); ``[]`` if none came in time.  ``timeout=0``, the default, never
        waits.  A waiting take that is cancelled or interrupted takes nothing::

            jobs = space.take_all(("job", int, str), limit=100, timeout=5)
        """
        return _group(self.core, compile_template(template), True, limit, timeout, None)

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        t = compile_template(template)
        core = self.core
        with core.lock:
            return core.engine.count(t)

    def __len__(self) -> int:
        with self.core.lock:
            self.core.engine.tick()
            return len(self.core.engine)

    # -- atomic compound operations ------------------------------------------------

    def replace(
        self, template: Any, successor: Successor, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """Take a matching tuple and write its successor, in one atomic step.

        ``successor`` is the new tuple, or a function from the taken tuple to it::

            space.replace(("counter", int), lambda t: ("counter", t[1] + 1))

        Waits up to ``timeout`` seconds for a match; returns the tuple taken.  If the
        function raises or returns an invalid tuple, nothing changes.
        """
        compiled = compile_template(template)
        engine = self.core.engine
        with self.core.lock:
            deadline = engine.deadline(timeout)
        while True:
            old: Tuple | None = self.core.call(engine.replace, compiled, successor, lease)
            if old is not None:
                return old
            # Wait until a match exists, then try again: the take and the write
            # happen together under the lock, never split by a wait.  Another
            # taker may win the match; the timeout bounds all the waits together.
            _block(self.core, compiled, False, time_left(engine, deadline), None)

    def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """Write ``t`` only if no tuple matches ``template``, atomically; True if written.

        >>> space.write_if_absent(("leader", ANY), ("leader", "node-7"))   # doctest: +SKIP
        True
        """
        return (
            self.core.call(self.core.engine.write_if_absent, compile_template(template), t, lease) is not None
        )

    # -- events -----------------------------------------------------------------

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> Subscription:
        """Subscribe to the events (``"write"``, ``"take"``, ``"expire"``, ``"cancel"``)
        of tuples matching ``template``; :data:`ANY` in place of a tuple template is
        every tuple, whatever its arity.

        >>> with space.subscribe(("order", ANY), events={"write"}) as events:  # doctest: +SKIP
        ...     for ev in events:
        ...         print(ev.seq, ev.kind, ev.tuple)

        ``existing=True``: first an event of kind ``"present"`` for every matching
        tuple already in the space, in the space's order, then the live events: each
        tuple is seen once, as present or by its write event, none missed between
        the two.  A present tuple that leaves the space before its turn comes is not
        reported as present.  Present events are read from the space as the
        subscriber asks for them, so they take no room among the ``max_pending``.
        Their ``seq`` is the last event before the subscription began.

        ``since``: resume after the event numbered ``since`` (the ``seq`` of the last
        event seen), replaying what was missed from the space's event log; raises
        :class:`EventsLost` if the log no longer reaches back so far.  At most
        ``max_pending`` events wait for a slow subscriber; beyond that it catches up
        from the log (see :class:`Subscription`).  ``lease``: seconds until the
        subscription ends by itself (None: never).  Raises :class:`InvalidValue` for
        ``existing=True`` with ``since``.
        """
        return Subscription(
            self.core,
            self.core.subscribe(feed_templates(template), events, since, max_pending, lease, existing),
        )

    # -- records ----------------------------------------------------------------------

    def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str = DEFAULT_PRINCIPAL,
        carried: bool = False,
    ) -> Record:
        """Create the record ``path`` (like ``sensors/kitchen``) with ``fields``, a
        mapping from tags (``A-Z a-z 0-9 _ -``) to values; returns its full handle.

        >>> rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})   # doctest: +SKIP
        >>> rec.address                                                          # doctest: +SKIP
        URI('tuplespace://local/spaces/default/sensors/kitchen')

        ``lease``: seconds until it expires (None: never).  ``credit``: what it starts
        with; in a space that charges for storage (``charge_rate``) it drains as the
        record lives, and the record expires when it runs out (a ``lease`` then buys
        that many seconds).  When the space charges, ``principal``'s account pays the
        credit and the ``creation_charge``, or :class:`InsufficientCredit` is raised.
        ``carried=True``: the credit comes with a record moving here from another node
        (docs/federation.md, "Migration") and enters the space; ``principal`` pays the
        rest (a lease's seconds, the creation charge).

        Raises :class:`RecordExists` if the path is taken, :class:`InvalidValue` for a
        bad path, tag or value, :class:`RecordNotFound` for a field holding the address
        of no record; nothing is created then.
        """
        refer = self.core.refer
        if refer is not None and isinstance(fields, Mapping):
            for value in fields.values():
                refer(path, value)
        records = self.core.engine.records
        rid: int = self.core.call(records.create, path, fields, credit, lease, principal, carried)
        return Record(self.core, rid)

    def record(self, ref: str | URI, *, principal: str = DEFAULT_PRINCIPAL) -> Record:
        """The handle of the record at the path or address ``ref``: a path (``"a/b"``),
        ``"$"`` (the root record: ``TUPS``, its top-level records, and ``ME``, the
        node's base URI), the record's address, or a capability's address (a handle
        allowing what the capability allows).  A path a record moved away from is
        followed while its redirection lasts, and costs ``principal`` the space's
        ``redirect_charge`` (:class:`InsufficientCredit` if it cannot pay).  Raises
        :class:`RecordNotFound`."""
        core = self.core
        records = core.engine.records
        if records.redirect_charge:
            rid, token, operations = core.call(records.resolve, ref, principal)
        else:
            with core.lock:
                rid, token, operations = records.resolve(ref, principal)
        return Record(core, rid, token, operations)

    def find(
        self, template: Mapping[str, Any], under: str | None = None, limit: int | None = None
    ) -> list[Record]:
        """The records whose fields match ``template`` (a mapping from tags to template
        fields: values, ``ANY``, types, ``Range``, ...; a record matches if it has all
        those tags, each matching), oldest first, at most ``limit``.  ``under``: only
        records whose path is below this one (``"sensors"``: ``sensors/...``).

        >>> space.find({"unit": "C", "temp": Range(20, 30)}, under="sensors")   # doctest: +SKIP

        Exact values are looked up in the index of every tag, as for tuples.
        """
        core = self.core
        exact = one_exact(template) if under is None and limit is None else None
        if exact is not None:  # {"tag": value}: one bucket of the index, no template to compile
            with core.lock:
                rids = core.engine.records.find_value(*exact)
        else:
            compiled = RecordTemplate(template)
            with core.lock:
                rids = core.engine.records.find(compiled, under, limit)
        return [Record(core, rid) for rid in rids]

    def try_take_record(
        self, template: Mapping[str, Any] | RecordTemplate, under: str | None = None
    ) -> RecordData | None:
        """Remove the oldest record matching ``template`` (see :meth:`find`) and return
        what it held, or None at once if none matches.  Records that other records
        contain are not taken."""
        taken = self.core.call(self.core.engine.records.take, RecordTemplate(template), under)
        return None if taken is None else RecordData(*taken)

    def take_record(
        self,
        template: Mapping[str, Any] | RecordTemplate,
        under: str | None = None,
        timeout: float | None = None,
    ) -> RecordData:
        """Remove the oldest record matching ``template`` and return what it held,
        waiting up to ``timeout`` seconds for one to be created or set so that it
        matches (:class:`Timeout` after)."""
        compiled = RecordTemplate(template)
        engine = self.core.engine
        records = engine.records
        ready = threading.Event()

        def first() -> tuple[Any, RecordTaker | None, float | None]:
            deadline = engine.deadline(timeout)
            taken = records.take(compiled, under)
            if taken is not None or timeout == 0:
                return taken, None, deadline
            self.core.start_timer()
            return None, records.add_taker(compiled, under, ready.set), deadline

        taken, taker, deadline = self.core.call(first)
        if taken is not None:
            return RecordData(*taken)
        if taker is None:
            raise Timeout(f"no record matches {compiled.fields!r}")
        received = False
        try:
            while True:  # blocked takes are served oldest first: the store hands this one its record
                with self.core.lock:
                    if taker.rec is not None:
                        break
                    engine.check_open()
                    if deadline is not None and engine.clock.now() >= deadline:
                        break
                    ready.clear()
                wait_event(ready, engine.clock, deadline)
            received = True
        finally:
            # A record handed to this call is removed for good only now; if the call
            # ends without receiving it (an exception), it is released to the next taker.
            taken = self.core.call(records.end_take, taker, received)
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
    ) -> RecordWatch:
        """The changes of every record below ``under`` (None: all), of the kinds in
        ``events`` (``create``, ``update``, ``move``, ``destroy``, ``expire``), as a
        :class:`RecordWatch`; arguments as for :meth:`subscribe`."""
        with self.core.lock:
            feed = self.core.engine.records.watch_all(under, events, since, max_pending, lease)
            self.core.start_timer()
        return RecordWatch(self.core, feed)

    def grant_credit(self, principal: str, amount: Credit | int | str) -> Credit:
        """Add ``amount`` to the credit account of ``principal``; its new balance."""
        balance: Credit = self.core.call(self.core.engine.records.grant, principal, amount)
        return balance

    def account(self, principal: str) -> Credit:
        """The credit in ``principal``'s account."""
        with self.core.lock:
            return self.core.engine.records.accounts.balance(principal)

    def transfer_credit(self, source: str, target: str, amount: Credit | int | str) -> Credit:
        """Move ``amount`` of credit from the account of ``source`` to that of
        ``target``, at once and exactly; the new balance of ``source``.  Raises
        :class:`InsufficientCredit` (and moves nothing) if ``source`` holds less."""
        balance: Credit = self.core.call(self.core.engine.records.transfer, source, target, amount)
        return balance

    def credit_challenge(self) -> Challenge:
        """The challenge to make proof-of-work stamps on (a :class:`Challenge`: the
        text, the zero ``bits`` a stamp needs, the ``amount`` it mints and until when
        it is accepted).  :class:`Forbidden` if the space mints no credit."""
        with self.core.lock:
            return self.core.engine.records.challenge()

    def mint_credit(self, challenge: str, nonce: str, *, principal: str = DEFAULT_PRINCIPAL) -> Credit:
        """Mint the space's ``mint_amount`` into ``principal``'s account for a stamp:
        a ``nonce`` whose hash with ``challenge`` has the zero bits asked for (make
        one with :func:`make_stamp`); the new balance.  Each stamp mints once.

        Raises :class:`InvalidValue` for a challenge that expired or is not the
        space's (``challenge``), and for a stamp with too few zero bits or spent
        already (``nonce``); :class:`Forbidden` if the space mints no credit.

        >>> c = space.credit_challenge()  # doctest: +SKIP
        >>> space.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits))  # doctest: +SKIP
        """
        balance: Credit = self.core.call(self.core.engine.records.mint_credit, challenge, nonce, principal)
        return balance

    # -- transactions ---------------------------------------------------------------

    def transaction(self, lease: float | None = 60.0) -> Transaction:
        """Start a transaction: a context manager with this space's operations.

        Its writes stay invisible to others and its takes held until it commits (on
        leaving the ``with`` block); an exception, or ``lease`` seconds passing
        first, aborts it: the writes vanish and every taken tuple returns to its
        place in the order.
        """
        with self.core.lock:
            txn = self.core.engine.begin(lease)
            self.core.start_timer()
        return Transaction(self.core, txn)

    # -- life cycle ------------------------------------------------------------------

    def on_clock_advanced(self) -> None:
        """Called by a :class:`SimulatedClock`: expire what is due."""
        self.core.on_clock_advanced()

    def add_lifetime(self, template: Any, max_age: float) -> None:
        """From now on, tuples matching ``template`` live at most ``max_age`` seconds
        after they are written, and those already here at most ``max_age`` seconds from
        now: their leases are shortened to that, never lengthened, so they leave
        exactly on time, as ``expire`` events, with no thread sweeping the space.
        :class:`~tuplespace.Cleaner` uses it; :meth:`remove_lifetime` ends the rule for
        later writes.
        """
        self.core.add_lifetime(template, max_age)

    def remove_lifetime(self, template: Any, max_age: float) -> None:
        """End the rule :meth:`add_lifetime` made with the same template and ``max_age``
        for the tuples written from now on; raises :class:`InvalidValue` if there is none."""
        self.core.remove_lifetime(template, max_age)

    def statistics(self) -> dict[str, Any]:
        """Counts of tuples, waiters, subscribers, leases, transactions and operations."""
        return self.core.statistics()

    def close(self) -> None:
        """Close the space: waiting calls raise :class:`SpaceClosed`, subscriptions end,
        open transactions abort, and every later call raises :class:`SpaceClosed`."""
        self.core.close()

    def __enter__(self) -> Space:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Space(order={self.order!r}, tuples={len(self.core.engine)})"


def _block(core: Core, template: Template, take: bool, timeout: float | None, txn: Txn | None) -> Tuple:
    engine = core.engine
    with core.lock:
        deadline = engine.deadline(timeout)
        found = engine.find(template, take, txn)
        if found is None:
            if timeout == 0:
                raise Timeout(f"no tuple matches {template.fields!r}")
            lock = _thread.allocate_lock()
            lock.acquire()
            w = engine.add_waiter(template, take, deadline, lock.release, txn)
        elif take and core.journal is not None:  # reads never wait for the disk
            ticket = core.ticket()
    if found is not None:
        if take and core.journal is not None:
            core.settle(ticket)
        return found
    result = _wait(core, w, lock)
    if take and core.journal is not None:
        core.settle_now()
    return result


def _group(
    core: Core, template: Template, take: bool, limit: int | None, timeout: float | None, txn: Txn | None
) -> list[Tuple]:
    """``read_all`` or ``take_all``, waiting up to ``timeout`` for a first match.

    A take waits as one group taker (see :meth:`Engine.add_group_taker`); a read
    waits as a read does, then reads again (a take may have come first)."""
    engine = core.engine
    ticket = 0
    while True:
        with core.lock:
            deadline = engine.deadline(timeout)
            found = engine.find_all(template, take, limit, txn)
            if found or timeout == 0 or limit == 0:
                if take and core.journal is not None:
                    ticket = core.ticket()
                break
            lock = _thread.allocate_lock()
            lock.acquire()
            if take:
                group = engine.add_group_taker(template, limit, deadline, lock.release, txn)
                w: Waiter = group
            else:
                w = engine.add_waiter(template, False, deadline, lock.release, txn)
        try:
            _wait(core, w, lock)
        except Timeout:
            return []
        if take:
            if core.journal is not None:
                core.settle_now()
            return group.got
        timeout = time_left(engine, deadline)
    core.settle(ticket)
    return found


def _wait(core: Core, w: Waiter, lock: Any) -> Tuple:
    """Wait until the engine ends ``w``; its result, or the error that ended it."""
    engine = core.engine
    received = False
    try:
        if w.deadline is None or engine.clock.simulated:
            lock.acquire()
        else:
            # lock.acquire refuses timeouts past TIMEOUT_MAX: wait in slices.
            while not lock.acquire(
                timeout=min(max(w.deadline - engine.clock.now(), 0.0), threading.TIMEOUT_MAX)
            ):
                if core.wait_ended(w):
                    break
        received = True
    finally:
        core.end_wait(w, received)
    return outcome(w)


class TransactionBase:
    """What both faces of a transaction share: its state and the calls that never wait.

    Every method here runs under the space's lock for microseconds; writes stay
    private and takes are held until commit, so none of them waits for the disk.
    """

    def __init__(self, core: Core, txn: Txn) -> None:
        self._core = core
        self._txn = txn

    @property
    def state(self) -> str:
        """``"active"``, ``"committed"`` or ``"aborted"``."""
        return self._txn.state

    @property
    def expires_at(self) -> float | None:
        return self._txn.expires

    def _locked(self, operation: Callable[..., Any], *args: Any) -> Any:
        with self._core.lock:
            return operation(*args)

    def _write(self, t: Iterable[Value], lease: float | None) -> None:
        self._locked(self._core.engine.write, t, lease, self._txn)

    def _write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None) -> None:
        self._locked(self._core.engine.write_many, tuples, lease, self._txn)

    def _find(self, template: Any, take: bool) -> Tuple | None:
        found: Tuple | None = self._locked(
            self._core.engine.find, compile_template(template), take, self._txn
        )
        return found

    def _count(self, template: Any) -> int:
        n: int = self._locked(self._core.engine.count, compile_template(template), self._txn)
        return n

    def _abort(self) -> None:
        self._locked(self._core.engine.abort, self._txn)

    def _renew(self, lease: float | None) -> None:
        with self._core.lock:
            self._core.engine.renew_txn(self._txn, lease)
            self._core.start_timer()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._txn.seq}, {self.state})"


class Transaction(TransactionBase):
    """A transaction on a :class:`Space`; made by :meth:`Space.transaction`.

    It has the space's operations.  Inside it, its own writes are visible and its
    takes are gone; outside, nothing changes until :meth:`commit`.  Used as a
    context manager it commits when the block ends and aborts on an exception.
    Operations on an aborted transaction raise :class:`TransactionAborted`.
    """

    def write(self, t: Iterable[Value], lease: float | None = None) -> None:
        """Write ``t`` at commit; its ``lease`` counts from then."""
        self._write(t, lease)

    def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> None:
        """Write several tuples at commit (all or none)."""
        self._write_many(tuples, lease)

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        return _block(self._core, compile_template(template), False, timeout, self._txn)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return _block(self._core, compile_template(template), True, timeout, self._txn)

    def try_read(self, template: Any) -> Tuple | None:
        return self._find(template, False)

    def try_take(self, template: Any) -> Tuple | None:
        return self._find(template, True)

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        return _group(self._core, compile_template(template), False, limit, timeout, self._txn)

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        return _group(self._core, compile_template(template), True, limit, timeout, self._txn)

    def count(self, template: Any) -> int:
        return self._count(template)

    def commit(self) -> None:
        """Make the takes final and the writes visible, atomically.

        In a space with a capacity the writes must fit (what the transaction took is out
        of the space already): if they do not, the transaction is aborted (nothing it
        wrote is written, what it took returns) and SpaceFull is raised, at once."""
        self._core.call(self._core.engine.commit, self._txn)

    def abort(self) -> None:
        """Discard the writes and put every taken tuple back at its place."""
        self._abort()

    def renew(self, lease: float | None) -> None:
        """Give the transaction ``lease`` more seconds from now."""
        self._renew(lease)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self._txn.state == "active":
            self.commit()
        else:
            self.abort()
