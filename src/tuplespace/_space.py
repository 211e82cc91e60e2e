"""The thread-safe space: an :class:`~tuplespace._engine.Engine` behind a lock.

Every blocking call follows one pattern: try the non-blocking operation; if it
finds nothing, register a waiter, wait for it, and in ``finally`` withdraw the
waiter (or, if a taken tuple arrived too late for its caller, put it back), so a
timed-out or interrupted call leaves no waiter behind and takes no tuple.

Things that must happen when nobody calls (a transaction's lease running out,
expire events for subscribers) are done by one timer thread per space, started
on first need, which sleeps until the engine's next deadline.

The seam for what acts on a space's events (the rules of ``space.rules``):
:meth:`Space.after_operations` registers a hook that every operation calls as it
gives up the space's lock, once its changes are made and its events delivered to
the engine's feeds, before any other operation begins.
"""

from __future__ import annotations

import _thread
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._clock import Clock, SystemClock, wait_event
from ._core import Core
from ._credit import to_credit
from ._engine import (
    ABORTED,
    CLOSED,
    DONE,
    EVENT_RETENTION_BYTES,
    TIMED_OUT,
    WAITING,
    Engine,
    GroupWaiter,
    Txn,
    Waiter,
)
from ._errors import InvalidValue, SpaceClosed, SpaceFull, Timeout, TransactionAborted
from ._events import CHANGE_KINDS, EVENT_KINDS, Feed
from ._journal import Journal
from ._lease import Lease
from ._methods import MAX_FIRINGS, ActiveLimits
from ._mint import Challenge
from ._record import Record, RecordData, RecordWatch
from ._records import DEFAULT_BASE_URI, DEFAULT_MINT_BITS, DEFAULT_OPERATOR, DEFAULT_PRINCIPAL, RecordTaker
from ._rules import Rules
from ._subscription import Subscription, SubscriptionBase
from ._templates import RecordTemplate, Template, compile_template, feed_templates, one_exact
from ._values import DEFAULT_LIMITS, URI, Credit, Limits, Tuple, Value

__all__ = ["Space", "Subscription", "SubscriptionBase", "Transaction", "TransactionBase"]

log = logging.getLogger("tuplespace")

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
      one operation may set off (1000); the initial values of :attr:`rules`'
      ``firing_charge``, ``step_charge`` and ``limits.max_firings``.  A durable
      space stores them with its other options.  See ``docs/active.md``.

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
    ) -> None:
        charges = []
        for option, amount in (("firing_charge", firing_charge), ("step_charge", step_charge)):
            try:
                charges.append(to_credit(amount, option))
            except InvalidValue as exc:
                raise ValueError(f"{option}: {exc}") from None
        # What :attr:`rules` starts with: the charges of a firing and of a step, the limits.
        self._active = (charges[0], charges[1], ActiveLimits(max_firings=max_firings))
        self._engine = Engine(
            clock or SystemClock(),
            order=order,
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
        )
        # Every operation holds _lock.  It is _plain, a plain lock, until a hook is
        # registered (after_operations); then a _HookedLock around _plain.
        self._plain = threading.Lock()
        self._lock: threading.Lock | _HookedLock = self._plain
        self._hooks: list[Callable[[], object]] = []
        self._timer: _Timer | None = None
        self._journal: Journal | None = None  # a durable store's; see _ticket
        self._on_close: Callable[[], None] | None = None
        self._rules: Rules | None = None
        self.core = Core(self)  # what the package's other parts use of this space
        attach = getattr(self._engine.clock, "attach", None)
        if self._engine.clock.simulated and attach is not None:
            attach(self)

    @property
    def order(self) -> str:
        return self._engine.order

    @property
    def clock(self) -> Clock:
        return self._engine.clock

    @property
    def limits(self) -> Limits:
        return self._engine.limits

    @property
    def capacity(self) -> int | None:
        return self._engine.capacity

    @property
    def name(self) -> str:
        return self._engine.records.name

    @property
    def base_uri(self) -> str:
        """The node's base URI, the start of every address of its records."""
        return self._engine.records.base_uri

    @property
    def charge_rate(self) -> Credit:
        """Credit per second per KiB a record stores (0: storage is free)."""
        return self._engine.records.charge_rate

    @property
    def creation_charge(self) -> Credit:
        """Credit a creation costs, on top of the credit given to the new record."""
        return self._engine.records.creation_charge

    @property
    def redirect_charge(self) -> Credit:
        """Credit a caller pays for naming a record by a path it moved away from."""
        return self._engine.records.redirect_charge

    @property
    def firing_charge(self) -> Credit:
        """Credit each firing of a rule costs (see :attr:`Rules.firing_charge`)."""
        return self.rules.firing_charge

    @property
    def step_charge(self) -> Credit:
        """Credit each step of a method costs (see :attr:`Rules.step_charge`)."""
        return self.rules.step_charge

    @property
    def max_firings(self) -> int:
        """The most firings one operation may set off (``rules.limits.max_firings``)."""
        return self.rules.limits.max_firings

    @property
    def operator(self) -> str:
        """The principal whose account receives the credit the space burns."""
        return self._engine.records.accounts.operator

    @property
    def mint_amount(self) -> Credit:
        """The credit a proof-of-work stamp mints (0: the space mints none)."""
        return self._engine.records.mint.amount

    @property
    def mint_bits(self) -> int:
        """The leading zero bits the hash of a stamp needs."""
        return self._engine.records.mint.bits

    @property
    def rules(self) -> Rules:
        """The space's rules: reactions, Push Logic rules and the limits of methods
        (see :class:`~tuplespace.Rules` and ``docs/active.md``)."""
        if self._rules is None:
            with self._lock:
                if self._rules is None:
                    self._rules = Rules(self, self._active)
        return self._rules

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
        if not callable(hook):
            raise TypeError(f"a hook is callable, got {hook!r}")
        with self._plain:
            if hook not in self._hooks:
                self._hooks.append(hook)
                self._lock = self.core.lock = _HookedLock(self._plain, self._hooks)

    def _run_hooks(self) -> None:
        """Call the hooks (with the lock held), as giving up the lock does."""
        _call_hooks(self._hooks)

    # -- writing ----------------------------------------------------------------

    def write(self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None) -> Lease:
        """Write the tuple ``t``; it stays ``lease`` seconds (None: until taken).

        In a space at its capacity the call waits up to ``timeout`` seconds for room
        (``timeout=0`` raises :class:`SpaceFull` at once).  Raises
        :class:`InvalidValue` (a ``ValueError``) for a tuple that cannot be stored,
        naming the field; nothing is written then.
        """
        engine = self._engine
        entry = None
        self._lock.acquire()  # not ``with``: this is the hot path, and ``with`` costs twice as much
        try:
            entry = engine.write(t, lease)
        except SpaceFull:
            if timeout == 0:
                raise
            deadline = engine.deadline(timeout)
            lock = _thread.allocate_lock()
            lock.acquire()
            w = engine.add_writer(t, lease, deadline, lock.release)
            self._start_timer()  # an expiry may make room while nobody calls
        else:
            if self._timer is not None and entry is not None and entry.expires is not None:
                self._timer.poke()
            ticket = 0 if self._journal is None else self._ticket()
        finally:
            self._lock.release()
        if entry is not None:
            if ticket:
                self._settle(ticket)
            return Lease(self, entry.seq, entry.expires)
        self._wait(w, lock)
        assert w.entry is not None
        self._settle_now()
        return Lease(self, w.entry.seq, w.entry.expires)

    def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> list[Lease]:
        """Write several tuples at once, in order: all of them, or none if one is
        invalid or (with a capacity) they do not all fit (:class:`SpaceFull`)."""
        entries = self._call(self._engine.write_many, tuples, lease)
        return [Lease(self, e.seq, e.expires) for e in entries]

    # -- reading and taking ---------------------------------------------------------

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """Return a copy of a matching tuple, waiting up to ``timeout`` seconds for one."""
        return self._block(compile_template(template), False, timeout, None)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a matching tuple, waiting up to ``timeout`` seconds for one."""
        return self._block(compile_template(template), True, timeout, None)

    def try_read(self, template: Any) -> Tuple | None:
        """A matching tuple, or None at once if there is none."""
        t = compile_template(template)
        with self._lock:
            return self._engine.find(t, False)

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a matching tuple, or None at once if there is none."""
        found: Tuple | None = self._call(self._engine.find, compile_template(template), True)
        return found

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """All matching tuples (at most ``limit``), in the order of the space.

        With a ``timeout`` (seconds; None: for ever), a read that finds no match waits
        for a first one, then returns every match there is (at most ``limit``);
        ``[]`` if none came in time.  ``timeout=0``, the default, never waits.
        """
        return self._group(compile_template(template), False, limit, timeout, None)

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """Remove and return all matching tuples (at most ``limit``), in order.

        With a ``timeout`` (seconds; None: for ever), a take that finds no match waits
        for matches (Linda's ``ing``): the first write that brings some wakes it with
        up to ``limit`` of them, taken at once (a :meth:`write_many` with all of its
        matches); ``[]`` if none came in time.  ``timeout=0``, the default, never
        waits.  A waiting take that is cancelled or interrupted takes nothing::

            jobs = space.take_all(("job", int, str), limit=100, timeout=5)
        """
        return self._group(compile_template(template), True, limit, timeout, None)

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        t = compile_template(template)
        with self._lock:
            return self._engine.count(t)

    def __len__(self) -> int:
        with self._lock:
            self._engine.tick()
            return len(self._engine)

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
        engine = self._engine
        with self._lock:
            deadline = engine.deadline(timeout)
        while True:
            old: Tuple | None = self._call(engine.replace, compiled, successor, lease)
            if old is not None:
                return old
            # Wait until a match exists, then try again: the take and the write
            # happen together under the lock, never split by a wait.  Another
            # taker may win the match; the timeout bounds all the waits together.
            self._block(compiled, False, time_left(engine, deadline), None)

    def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """Write ``t`` only if no tuple matches ``template``, atomically; True if written.

        >>> space.write_if_absent(("leader", ANY), ("leader", "node-7"))   # doctest: +SKIP
        True
        """
        return self._call(self._engine.write_if_absent, compile_template(template), t, lease) is not None

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
            self, self._subscribe(feed_templates(template), events, since, max_pending, lease, existing)
        )

    def _subscribe(
        self,
        templates: list[Template],
        events: Iterable[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
        existing: bool = False,
        present: tuple[int, int] | None = None,
    ) -> Feed:
        if isinstance(events, str):
            events = {events}
        with self._lock:
            feed = self._engine.subscribe(templates, events, since, max_pending, lease, existing, present)
            self._start_timer()
        return feed

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
        records = self._engine.records
        rid: int = self._call(records.create, path, fields, credit, lease, principal, carried)
        return Record(self, rid)

    def record(self, ref: str | URI, *, principal: str = DEFAULT_PRINCIPAL) -> Record:
        """The handle of the record at the path or address ``ref``: a path (``"a/b"``),
        ``"$"`` (the root record: ``TUPS``, its top-level records, and ``ME``, the
        node's base URI), the record's address, or a capability's address (a handle
        allowing what the capability allows).  A path a record moved away from is
        followed while its redirection lasts, and costs ``principal`` the space's
        ``redirect_charge`` (:class:`InsufficientCredit` if it cannot pay).  Raises
        :class:`RecordNotFound`."""
        records = self._engine.records
        if records.redirect_charge:
            rid, token, operations = self._call(records.resolve, ref, principal)
        else:
            with self._lock:
                rid, token, operations = records.resolve(ref, principal)
        return Record(self, rid, token, operations)

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
        exact = one_exact(template) if under is None and limit is None else None
        if exact is not None:  # {"tag": value}: one bucket of the index, no template to compile
            with self._lock:
                rids = self._engine.records.find_value(*exact)
        else:
            compiled = RecordTemplate(template)
            with self._lock:
                rids = self._engine.records.find(compiled, under, limit)
        return [Record(self, rid) for rid in rids]

    def try_take_record(
        self, template: Mapping[str, Any] | RecordTemplate, under: str | None = None
    ) -> RecordData | None:
        """Remove the oldest record matching ``template`` (see :meth:`find`) and return
        what it held, or None at once if none matches.  Records that other records
        contain are not taken."""
        taken = self._call(self._engine.records.take, RecordTemplate(template), under)
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
        engine = self._engine
        records = engine.records
        ready = threading.Event()

        def first() -> tuple[Any, RecordTaker | None, float | None]:
            deadline = engine.deadline(timeout)
            taken = records.take(compiled, under)
            if taken is not None or timeout == 0:
                return taken, None, deadline
            self._start_timer()
            return None, records.add_taker(compiled, under, ready.set), deadline

        taken, taker, deadline = self._call(first)
        if taken is not None:
            return RecordData(*taken)
        if taker is None:
            raise Timeout(f"no record matches {compiled.fields!r}")
        received = False
        try:
            while True:  # blocked takes are served oldest first: the store hands this one its record
                with self._lock:
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
            taken = self._call(records.end_take, taker, received)
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
        with self._lock:
            feed = self._engine.records.watch_all(under, events, since, max_pending, lease)
            self._start_timer()
        return RecordWatch(self, feed)

    def grant_credit(self, principal: str, amount: Credit | int | str) -> Credit:
        """Add ``amount`` to the credit account of ``principal``; its new balance."""
        balance: Credit = self._call(self._engine.records.grant, principal, amount)
        return balance

    def account(self, principal: str) -> Credit:
        """The credit in ``principal``'s account."""
        with self._lock:
            return self._engine.records.accounts.balance(principal)

    def transfer_credit(self, source: str, target: str, amount: Credit | int | str) -> Credit:
        """Move ``amount`` of credit from the account of ``source`` to that of
        ``target``, at once and exactly; the new balance of ``source``.  Raises
        :class:`InsufficientCredit` (and moves nothing) if ``source`` holds less."""
        balance: Credit = self._call(self._engine.records.transfer, source, target, amount)
        return balance

    def credit_challenge(self) -> Challenge:
        """The challenge to make proof-of-work stamps on (a :class:`Challenge`: the
        text, the zero ``bits`` a stamp needs, the ``amount`` it mints and until when
        it is accepted).  :class:`Forbidden` if the space mints no credit."""
        with self._lock:
            return self._engine.records.challenge()

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
        balance: Credit = self._call(self._engine.records.mint_credit, challenge, nonce, principal)
        return balance

    # -- transactions ---------------------------------------------------------------

    def transaction(self, lease: float | None = 60.0) -> Transaction:
        """Start a transaction: a context manager with this space's operations.

        Its writes stay invisible to others and its takes held until it commits (on
        leaving the ``with`` block); an exception, or ``lease`` seconds passing
        first, aborts it: the writes vanish and every taken tuple returns to its
        place in the order.
        """
        with self._lock:
            txn = self._engine.begin(lease)
            self._start_timer()
        return Transaction(self, txn)

    # -- waiting ----------------------------------------------------------------

    def _block(self, template: Template, take: bool, timeout: float | None, txn: Txn | None) -> Tuple:
        engine = self._engine
        with self._lock:
            deadline = engine.deadline(timeout)
            found = engine.find(template, take, txn)
            if found is None:
                if timeout == 0:
                    raise Timeout(f"no tuple matches {template.fields!r}")
                lock = _thread.allocate_lock()
                lock.acquire()
                w = engine.add_waiter(template, take, deadline, lock.release, txn)
            elif take and self._journal is not None:  # reads never wait for the disk
                ticket = self._ticket()
        if found is not None:
            if take and self._journal is not None:
                self._settle(ticket)
            return found
        result = self._wait(w, lock)
        if take and self._journal is not None:
            self._settle_now()
        return result

    def _group(
        self, template: Template, take: bool, limit: int | None, timeout: float | None, txn: Txn | None
    ) -> list[Tuple]:
        """``read_all`` or ``take_all``, waiting up to ``timeout`` for a first match.

        A take waits as one group taker (see :meth:`Engine.add_group_taker`); a read
        waits as a read does, then reads again (a take may have come first)."""
        engine = self._engine
        ticket = 0
        while True:
            with self._lock:
                deadline = engine.deadline(timeout)
                found = engine.find_all(template, take, limit, txn)
                if found or timeout == 0 or limit == 0:
                    if take and self._journal is not None:
                        ticket = self._ticket()
                    break
                lock = _thread.allocate_lock()
                lock.acquire()
                if take:
                    group = engine.add_group_taker(template, limit, deadline, lock.release, txn)
                    w: Waiter = group
                else:
                    w = engine.add_waiter(template, False, deadline, lock.release, txn)
            try:
                self._wait(w, lock)
            except Timeout:
                return []
            if take:
                if self._journal is not None:
                    self._settle_now()
                return group.got
            timeout = time_left(engine, deadline)
        self._settle(ticket)
        return found

    def _wait(self, w: Waiter, lock: Any) -> Tuple:
        """Wait until the engine ends ``w``; its result, or the error that ended it."""
        engine = self._engine
        received = False
        try:
            if w.deadline is None or engine.clock.simulated:
                lock.acquire()
            else:
                # lock.acquire refuses timeouts past TIMEOUT_MAX: wait in slices.
                while not lock.acquire(
                    timeout=min(max(w.deadline - engine.clock.now(), 0.0), threading.TIMEOUT_MAX)
                ):
                    if self._wait_ended(w):
                        break
            received = True
        finally:
            self._end_wait(w, received)
        return outcome(w)

    def _wait_ended(self, w: Waiter) -> bool:
        """After a timed slice of a wait: let the clock act; True if ``w`` has ended."""
        with self._lock:
            self._engine.tick()
            return w.state is not WAITING

    def _end_wait(self, w: Waiter, received: bool) -> None:
        """When a wait stops: withdraw ``w`` if it still waits, make a take outside a
        transaction (or a group take) final once received, and put back what was taken
        for a caller that did not receive it."""
        if (
            w.state is WAITING
            or not received
            or type(w) is GroupWaiter
            or (w.kind == "take" and w.entry is not None and w.txn is None)
        ):
            with self._lock:
                self._engine.withdraw(w, received)

    # -- durability -------------------------------------------------------------

    def _ticket(self) -> int:
        """With the lock held: the batch of the durable store that must be written
        before what was just done is acknowledged (0: nothing to wait for)."""
        journal = self._journal
        return journal.batch if journal is not None and (journal.pending or journal.rows) else 0

    def _settle(self, ticket: int) -> None:
        if ticket:
            self._journal.wait(ticket)  # type: ignore[union-attr]

    def _settle_now(self) -> None:
        with self._lock:
            ticket = self._ticket()
        self._settle(ticket)

    def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        """Run an engine operation under the lock; return once its changes are durable."""
        with self._lock:
            result = operation(*args)
            if self._timer is not None:  # the operation may have made a lease that ends sooner
                self._timer.poke()
            ticket = 0 if self._journal is None else self._ticket()
        if ticket:
            self._settle(ticket)
        return result

    # -- leases --------------------------------------------------------------------

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = self._call(self._engine.renew, seq, seconds)
        if self._timer is not None:
            with self._lock:
                self._timer.poke()
        return expires

    def _cancel(self, seq: int) -> None:
        self._call(self._engine.cancel, seq)

    # -- life cycle ------------------------------------------------------------------

    def _start_timer(self) -> None:
        if self._timer is None and not self._engine.clock.simulated:
            self._timer = _Timer(self)
        elif self._timer is not None:
            self._timer.poke()

    def on_clock_advanced(self) -> None:
        """Called by a :class:`SimulatedClock`: expire what is due."""
        with self._lock:
            self._engine.tick()

    def add_lifetime(self, template: Any, max_age: float) -> None:
        """From now on, tuples matching ``template`` live at most ``max_age`` seconds
        after they are written, and those already here at most ``max_age`` seconds from
        now: their leases are shortened to that, never lengthened, so they leave
        exactly on time, as ``expire`` events, with no thread sweeping the space.
        :class:`~tuplespace.Cleaner` uses it; :meth:`remove_lifetime` ends the rule for
        later writes.
        """
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age > 0:
            raise InvalidValue(f"max_age must be a positive number of seconds, got {max_age!r}", "max_age")
        t = compile_template(template)
        with self._lock:
            self._engine.add_lifetime(t, max_age)
            self._start_timer()

    def remove_lifetime(self, template: Any, max_age: float) -> None:
        """End the rule :meth:`add_lifetime` made with the same template and ``max_age``
        for the tuples written from now on; raises :class:`InvalidValue` if there is none."""
        t = compile_template(template)
        with self._lock:
            self._engine.remove_lifetime(t, max_age)

    def statistics(self) -> dict[str, Any]:
        """Counts of tuples, waiters, subscribers, leases, transactions and operations."""
        with self._lock:
            self._engine.tick()
            return self._engine.statistics()

    def close(self) -> None:
        """Close the space: waiting calls raise :class:`SpaceClosed`, subscriptions end,
        open transactions abort, and every later call raises :class:`SpaceClosed`."""
        with self._lock:
            self._engine.close()
            if self._timer is not None:
                self._timer.poke()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Space:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Space(order={self.order!r}, tuples={len(self._engine)})"


class _HookedLock:
    """The lock of a space with hooks (see :meth:`Space.after_operations`): giving
    it up first calls them.  Taking it is the plain lock's own ``acquire``."""

    __slots__ = ("_plain", "_space_hooks", "acquire", "locked")

    def __init__(self, plain: threading.Lock, hooks: list[Callable[[], object]]) -> None:
        self._plain = plain
        self._space_hooks = hooks
        self.acquire = plain.acquire
        self.locked = plain.locked

    def release(self) -> None:
        try:
            for hook in self._space_hooks:  # _call_hooks, inlined: this is the hot path
                try:
                    hook()
                except Exception:
                    log.exception("a hook of a space failed")
        finally:
            self._plain.release()

    def __enter__(self) -> bool:
        return self._plain.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _call_hooks(hooks: list[Callable[[], object]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            log.exception("a hook of a space failed")


def time_left(engine: Engine, deadline: float | None) -> float | None:
    """The seconds left until ``deadline`` (None: forever)."""
    return None if deadline is None else max(deadline - engine.clock.now(), 0.0)


def outcome(w: Waiter) -> Tuple:
    """The result of a finished wait, or the error that ended it."""
    if w.state is DONE:
        return w.result  # type: ignore[return-value]
    if w.state is CLOSED:
        raise SpaceClosed("the space was closed while waiting")
    if w.state is ABORTED:
        raise TransactionAborted("the transaction was aborted while waiting")
    assert w.state is TIMED_OUT
    if w.kind == "write":
        raise Timeout("the space stayed full: no room for the tuple in time")
    raise Timeout(f"no tuple matched {w.template.fields!r} in time")


class _Timer:
    """Calls ``engine.tick()`` at the engine's next deadline, until the space is
    closed or garbage (the thread holds the space only weakly)."""

    def __init__(self, space: Space) -> None:
        self._cond = threading.Condition(space._plain)  # noqa: SLF001 (the space's own timer waits on its lock)
        self._engine = space.core.engine
        self._space = weakref.ref(space)
        self._due = 0.0  # when the thread wakes next
        threading.Thread(target=self._run, name="tuplespace-timer", daemon=True).start()

    def poke(self) -> None:
        """A deadline may have moved earlier (call with the space's lock held)."""
        deadline = self._engine.next_deadline()
        if self._engine.closed or (deadline is not None and deadline < self._due):
            self._cond.notify()

    def _run(self) -> None:
        engine = self._engine
        with self._cond:
            while not engine.closed and (space := self._space()) is not None:
                engine.tick()
                space._run_hooks()  # noqa: SLF001 (the space's own timer; its condition holds the plain lock)
                del space
                deadline = engine.next_deadline()
                wait = 5.0 if deadline is None else min(max(deadline - engine.clock.now(), 0.0), 5.0)
                self._due = engine.clock.now() + wait
                self._cond.wait(wait)


class TransactionBase:
    """What both faces of a transaction share: its state and the calls that never wait.

    Every method here runs under the space's lock for microseconds; writes stay
    private and takes are held until commit, so none of them waits for the disk.
    """

    def __init__(self, space: Space, txn: Txn) -> None:
        self._space = space
        self._txn = txn

    @property
    def state(self) -> str:
        """``"active"``, ``"committed"`` or ``"aborted"``."""
        return self._txn.state

    @property
    def expires_at(self) -> float | None:
        return self._txn.expires

    def _locked(self, operation: Callable[..., Any], *args: Any) -> Any:
        with self._space.core.lock:
            return operation(*args)

    def _write(self, t: Iterable[Value], lease: float | None) -> None:
        self._locked(self._space.core.engine.write, t, lease, self._txn)

    def _write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None) -> None:
        self._locked(self._space.core.engine.write_many, tuples, lease, self._txn)

    def _find(self, template: Any, take: bool) -> Tuple | None:
        found: Tuple | None = self._locked(
            self._space.core.engine.find, compile_template(template), take, self._txn
        )
        return found

    def _count(self, template: Any) -> int:
        n: int = self._locked(self._space.core.engine.count, compile_template(template), self._txn)
        return n

    def _abort(self) -> None:
        self._locked(self._space.core.engine.abort, self._txn)

    def _renew(self, lease: float | None) -> None:
        with self._space.core.lock:
            self._space.core.engine.renew_txn(self._txn, lease)
            self._space.core.start_timer()

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
        return self._space._block(  # noqa: SLF001 (a transaction waits as its space does)
            compile_template(template), False, timeout, self._txn
        )

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return self._space._block(  # noqa: SLF001 (a transaction waits as its space does)
            compile_template(template), True, timeout, self._txn
        )

    def try_read(self, template: Any) -> Tuple | None:
        return self._find(template, False)

    def try_take(self, template: Any) -> Tuple | None:
        return self._find(template, True)

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        return self._space._group(  # noqa: SLF001 (a transaction waits as its space does)
            compile_template(template), False, limit, timeout, self._txn
        )

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        return self._space._group(  # noqa: SLF001 (a transaction waits as its space does)
            compile_template(template), True, limit, timeout, self._txn
        )

    def count(self, template: Any) -> int:
        return self._count(template)

    def commit(self) -> None:
        """Make the takes final and the writes visible, atomically."""
        self._space.core.call(self._space.core.engine.commit, self._txn)

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
