"""The kernel of a space, which its faces and handles share.

A :class:`Core` owns what one space is made of: the engine (tuples, records,
the clock, the lease and deadline heaps, the event log and its sequence
numbers), the lock that guards it, the hooks that run as an operation gives the
lock up, the timer that ends leases while nobody calls, the journal of a durable
store and the space's rules.  The thread face (:class:`~tuplespace.Space`) and
the asyncio face (:class:`~tuplespace.AsyncSpace`) are peers built over one core
(``space.core``), so threads and coroutines coordinate through the same tuples;
the handles (leases, records, watches, subscriptions, transactions), the durable
store and the server hold the core, not a face.  Waiting is the faces' own: a
face turns "the engine found nothing" into a wait of its kind, and the core ends
the wait (:meth:`Core.wait_ended`, :meth:`Core.end_wait`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._clock import Clock, SystemClock
from ._credit import to_credit
from ._engine import ABORTED, CLOSED, DONE, TIMED_OUT, WAITING, Engine, GroupWaiter, Waiter
from ._errors import InvalidValue, SpaceClosed, Timeout, TransactionAborted
from ._methods import MAX_FIRINGS, METHOD_MEMORY, METHOD_MS, METHOD_STEPS, ActiveLimits
from ._rules import Rules
from ._templates import compile_template
from ._values import Credit, Tuple

if TYPE_CHECKING:
    from ._events import Feed
    from ._journal import Journal
    from ._recordhandles import Record
    from ._templates import Template

__all__ = ["Core", "outcome", "time_left"]

log = logging.getLogger("tuplespace")


class Core:
    """The engine, lock, hooks, timer, journal and rules of one space.

    ``engine`` is the space's :class:`~tuplespace._engine.Engine`; ``lock`` the lock
    every engine call is made under (the core sets it anew when it gains its first
    :meth:`after_operations` hook, so hold ``core.lock``, not a copy kept from
    before).  :meth:`build` makes one from a space's options.
    """

    __slots__ = (
        "__weakref__",
        "_active",
        "_hooks",
        "_on_close",
        "_plain",
        "_rules",
        "engine",
        "journal",
        "lock",
        "move_away",
        "refer",
        "timer",
    )

    def __init__(self, engine: Engine, active: tuple[Credit, Credit, ActiveLimits]) -> None:
        self.engine = engine
        # What :attr:`rules` starts with: the charges of a firing and of a step, the limits.
        self._active = active
        # Every operation holds ``lock``.  It is ``_plain``, a plain lock, until a hook
        # is registered (after_operations); then a _HookedLock around ``_plain``.
        self._plain = threading.Lock()
        self.lock: threading.Lock | _HookedLock = self._plain
        self._hooks: list[Callable[[], object]] = []
        # The thread that applies expiries while nobody calls (see :meth:`start_timer`).
        self.timer: _Timer | None = None
        # The durable store's journal (see :meth:`attach_journal`), None for a space
        # kept in memory only.
        self.journal: Journal | None = None
        self._on_close: Callable[[], None] | None = None
        self._rules: Rules | None = None
        # A node's hooks (see :meth:`attach_references`), None until one attaches them.
        self.refer: Callable[[Record | str, object], None] | None = None
        self.move_away: Callable[[Record, str, float | None], None] | None = None
        attach = getattr(engine.clock, "attach", None)
        if engine.clock.simulated and attach is not None:
            attach(self)

    @classmethod
    def build(
        cls,
        *,
        clock: Clock | None = None,
        firing_charge: Credit | int | str = 0,
        step_charge: Credit | int | str = 0,
        max_firings: int = MAX_FIRINGS,
        method_steps: int = METHOD_STEPS,
        method_ms: int = METHOD_MS,
        method_memory: int = METHOD_MEMORY,
        **options: Any,
    ) -> Core:
        """The core of a new space with ``options``, those of :class:`~tuplespace.Space`."""
        charges = []
        for option, amount in (("firing_charge", firing_charge), ("step_charge", step_charge)):
            try:
                charges.append(to_credit(amount, option))
            except InvalidValue as exc:
                raise ValueError(f"{option}: {exc}") from None
        active = ActiveLimits(max_firings, method_steps, method_ms, method_memory)
        engine = Engine(clock or SystemClock(), **options)
        return cls(engine, (charges[0], charges[1], active))

    # -- rules and hooks ------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        """The space's rules (see :attr:`Space.rules <tuplespace.Space.rules>`)."""
        if self._rules is None:
            with self.lock:
                if self._rules is None:
                    self._rules = Rules(self, self._active)
        return self._rules

    @property
    def active(self) -> tuple[Credit, Credit, ActiveLimits]:
        """The charge of a firing and of a method's step, and the limits of both: those
        of :attr:`rules`, read without making them (most spaces never have a rule)."""
        rules = self._rules
        return self._active if rules is None else (rules.firing_charge, rules.step_charge, rules.limits)

    def after_operations(self, hook: Callable[[], object]) -> None:
        """See :meth:`Space.after_operations <tuplespace.Space.after_operations>`."""
        if not callable(hook):
            raise TypeError(f"a hook is callable, got {hook!r}")
        with self._plain:
            if hook not in self._hooks:
                self._hooks.append(hook)
                self.lock = _HookedLock(self._plain, self._hooks)

    def run_hooks(self) -> None:
        """Call the hooks (with the lock held), as giving up the lock does."""
        _call_hooks(self._hooks)

    # -- durability -------------------------------------------------------------------

    def attach_journal(self, journal: Journal, on_close: Callable[[], None]) -> None:
        """Make the space durable through ``journal``; ``on_close`` runs when it closes."""
        self.journal = journal
        self._on_close = on_close

    def ticket(self) -> int:
        """With the lock held: the batch of the durable store that must be written
        before what was just done is acknowledged (0: nothing to wait for)."""
        journal = self.journal
        return journal.batch if journal is not None and (journal.pending or journal.rows) else 0

    def settle(self, ticket: int) -> None:
        """Return once the batch ``ticket`` is durable (0: at once)."""
        if ticket:
            self.journal.wait(ticket)  # type: ignore[union-attr]

    def settle_now(self) -> None:
        """Return once what was done so far is durable."""
        with self.lock:
            ticket = self.ticket()
        self.settle(ticket)

    def call(self, operation: Callable[..., Any], *args: Any) -> Any:
        """Run an engine operation under the lock; return once its changes are durable."""
        with self.lock:
            result = operation(*args)
            if self.timer is not None:  # the operation may have made a lease that ends sooner
                self.timer.poke()
            ticket = 0 if self.journal is None else self.ticket()
        if ticket:
            self.settle(ticket)
        return result

    # -- the timer ----------------------------------------------------------------------

    def start_timer(self) -> None:
        """With the lock held: make sure expiries are applied while nobody calls."""
        if self.timer is None and not self.engine.clock.simulated:
            self.timer = _Timer(self, self._plain)
        elif self.timer is not None:
            self.timer.poke()

    def poke_timer(self) -> None:
        """With the lock held: have the timer look again at the next expiry (a lease
        may now end sooner)."""
        if self.timer is not None:
            self.timer.poke()

    def on_clock_advanced(self) -> None:
        """Called by a :class:`~tuplespace.SimulatedClock`: expire what is due."""
        with self.lock:
            self.engine.tick()

    # -- waiting ----------------------------------------------------------------------

    def wait_ended(self, w: Waiter) -> bool:
        """After a timed slice of a wait: let the clock act; True if ``w`` has ended."""
        with self.lock:
            self.engine.tick()
            return w.state is not WAITING

    def end_wait(self, w: Waiter, received: bool) -> None:
        """When a wait stops: withdraw ``w`` if it still waits, make a take outside a
        transaction (or a group take) final once received, and put back what was taken
        for a caller that did not receive it."""
        if (
            w.state is WAITING
            or not received
            or type(w) is GroupWaiter
            or (w.kind == "take" and w.entry is not None and w.txn is None)
        ):
            with self.lock:
                self.engine.withdraw(w, received)

    # -- leases (the host of a :class:`~tuplespace.Lease`) -------------------------------

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = self.call(self.engine.renew, seq, seconds)
        return expires

    def _cancel(self, seq: int) -> None:
        self.call(self.engine.cancel, seq)

    # -- the operations both faces share, none of which waits -----------------------------

    def subscribe(
        self,
        templates: list[Template],
        events: Iterable[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
        existing: bool = False,
        present: tuple[int, int] | None = None,
    ) -> Feed:
        """A new feed of the space's events (see :meth:`Space.subscribe <tuplespace.Space.subscribe>`;
        ``present``: see ``Engine.subscribe``)."""
        if isinstance(events, str):
            events = {events}
        with self.lock:
            feed = self.engine.subscribe(templates, events, since, max_pending, lease, existing, present)
            self.start_timer()
        return feed

    def add_lifetime(self, template: Any, max_age: float) -> None:
        """See :meth:`Space.add_lifetime <tuplespace.Space.add_lifetime>`."""
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age > 0:
            raise InvalidValue(f"max_age must be a positive number of seconds, got {max_age!r}", "max_age")
        t = compile_template(template)
        with self.lock:
            self.engine.add_lifetime(t, max_age)
            self.start_timer()

    def remove_lifetime(self, template: Any, max_age: float) -> None:
        """See :meth:`Space.remove_lifetime <tuplespace.Space.remove_lifetime>`."""
        t = compile_template(template)
        with self.lock:
            self.engine.remove_lifetime(t, max_age)

    def statistics(self) -> dict[str, Any]:
        """Counts of tuples, waiters, subscribers, leases, transactions and operations."""
        with self.lock:
            self.engine.tick()
            return self.engine.statistics()

    def check_open(self) -> None:
        """Raise :class:`~tuplespace.SpaceClosed` if the space is closed."""
        if self.engine.closed:
            raise SpaceClosed("the space is closed")

    def abort_transactions(self) -> None:
        """With the lock held: abort every transaction still open."""
        self.engine.abort_all()

    def attach_references(
        self,
        refer: Callable[[Record | str, object], None],
        move_away: Callable[[Record, str, float | None], None],
    ) -> None:
        """Have the space count the references its records hold to other nodes
        (``refer``: told of the record, or the path being created, and each value about
        to be stored in it) and move records to other nodes (``move_away``)."""
        self.refer = refer
        self.move_away = move_away

    def close(self) -> None:
        """See :meth:`Space.close <tuplespace.Space.close>`."""
        with self.lock:
            self.engine.close()
            if self.timer is not None:
                self.timer.poke()
        if self._on_close is not None:
            self._on_close()


class _HookedLock:
    """The lock of a space with hooks (see :meth:`Core.after_operations`): giving
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


class _Timer:
    """Calls ``engine.tick()`` at the engine's next deadline, until the space is
    closed or garbage (the thread holds the core only weakly)."""

    def __init__(self, core: Core, plain: threading.Lock) -> None:
        self._cond = threading.Condition(plain)  # the core's plain lock: waiting gives it up
        self._engine = core.engine
        self._core = weakref.ref(core)
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
            while not engine.closed and (core := self._core()) is not None:
                engine.tick()
                core.run_hooks()  # the condition holds the plain lock: give up nothing, run the hooks
                del core
                deadline = engine.next_deadline()
                wait = 5.0 if deadline is None else min(max(deadline - engine.clock.now(), 0.0), 5.0)
                self._due = engine.clock.now() + wait
                self._cond.wait(wait)


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
