"""The kernel of a space that its faces and handles share.

A :class:`~tuplespace.Space` owns an engine, the lock that guards it, the timer
that ends leases while nobody calls, and the journal of a durable store.  The
asyncio face (:class:`~tuplespace.AsyncSpace`), the handles (records, leases,
subscriptions), the durable store and the server reach them through the space's
:class:`Core` (``space.core``), never through the space's own attributes.  This
module is the one place that knows how the space keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._errors import SpaceClosed

if TYPE_CHECKING:
    from ._engine import Engine, Waiter
    from ._events import Feed
    from ._journal import Journal
    from ._record import Record
    from ._space import Space
    from ._templates import Template

__all__ = ["Core"]

# Every access below is to the space whose core this is: the core is the space's
# own state seen by the package's other parts, so it alone reads the space's slots.


class Core:
    """The engine, lock, timer and journal of one space, for the package's parts.

    ``engine`` is the space's :class:`~tuplespace._engine.Engine`; ``lock`` the lock
    every engine call is made under (the space sets it anew when it gains its first
    ``after_operations`` hook, so hold ``core.lock``, not a copy kept from before).
    ``call`` runs an engine operation under the lock and returns once its changes are
    durable.
    """

    __slots__ = ("call", "engine", "lock", "move_away", "refer", "settle", "space", "start_timer", "ticket")

    def __init__(self, space: Space) -> None:
        self.space = space
        self.engine: Engine = space._engine  # noqa: SLF001 (the core's own space)
        # The lock to hold around engine calls (a context manager); the space sets it
        # anew when its first hook makes it a lock that runs hooks on release.
        self.lock: Any = space._lock  # noqa: SLF001 (the core's own space)
        # The space's own steps, bound once (a call through the core costs no more than
        # the space's): ``call(operation, *args)`` runs an engine operation under the
        # lock and returns once its changes are durable; with the lock held, ``ticket()``
        # is the journal batch to await before acknowledging what was just done (0:
        # nothing) and ``start_timer()`` makes sure expiries are applied while nobody
        # calls; ``settle(ticket)`` returns once that batch is durable.
        self.call: Callable[..., Any] = space._call  # noqa: SLF001 (the core's own space)
        self.ticket: Callable[[], int] = space._ticket  # noqa: SLF001 (the core's own space)
        self.settle: Callable[[int], None] = space._settle  # noqa: SLF001 (the core's own space)
        self.start_timer: Callable[[], None] = space._start_timer  # noqa: SLF001 (the core's own space)
        # A node's hooks (see :meth:`attach_references`), None until one attaches them.
        self.refer: Callable[[Record | str, object], None] | None = None
        self.move_away: Callable[[Record, str, float | None], None] | None = None

    @property
    def journal(self) -> Journal | None:
        """The durable store's journal, None for a space kept in memory only."""
        return self.space._journal  # noqa: SLF001 (the core's own space)

    def attach_journal(self, journal: Journal, on_close: Callable[[], None]) -> None:
        """Make the space durable through ``journal``; ``on_close`` runs when it closes."""
        space = self.space
        space._journal = journal  # noqa: SLF001 (the core's own space)
        space._on_close = on_close  # noqa: SLF001 (the core's own space)

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

    def check_open(self) -> None:
        """Raise :class:`~tuplespace.SpaceClosed` if the space is closed."""
        if self.engine.closed:
            raise SpaceClosed("the space is closed")

    def abort_transactions(self) -> None:
        """With the lock held: abort every transaction still open."""
        engine = self.engine
        for txn in list(engine._txns.values()):  # noqa: SLF001 (the engine lists them for nobody else)
            engine.abort(txn)

    def poke_timer(self) -> None:
        """With the lock held: have the timer look again at the next expiry (a lease
        may now end sooner)."""
        timer = self.space._timer  # noqa: SLF001 (the core's own space)
        if timer is not None:
            timer.poke()

    def wait_ended(self, w: Waiter) -> bool:
        """Whether the waiter ``w`` is over (served, or its deadline passed)."""
        return self.space._wait_ended(w)  # noqa: SLF001 (the core's own space)

    def end_wait(self, w: Waiter, received: bool) -> None:
        """Withdraw ``w``; one that took a tuple the caller never received puts it back."""
        self.space._end_wait(w, received)  # noqa: SLF001 (the core's own space)

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
        return self.space._subscribe(templates, events, since, max_pending, lease, existing, present)  # noqa: SLF001 (the core's own space)
