"""The thread-safe space: an :class:`~tuplespace._engine.Engine` behind a lock.

Every blocking call follows one pattern: try the non-blocking operation; if it
finds nothing, register a waiter, wait for it, and in ``finally`` withdraw the
waiter (or, if a taken tuple arrived too late for its caller, put it back), so a
timed-out or interrupted call leaves no waiter behind and takes no tuple.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Iterable
from typing import Any

from ._clock import Clock, SystemClock
from ._engine import CLOSED, DONE, TIMED_OUT, WAITING, Engine, Waiter
from ._errors import SpaceClosed, Timeout
from ._lease import Lease
from ._templates import Template, compile_template
from ._values import DEFAULT_LIMITS, Limits, Value

__all__ = ["Space"]

Tuple = tuple[Value, ...]


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
    - ``max_waiters``: how many calls may wait at once (:class:`LimitReached` beyond).
    - ``seed``: seeds the random order, for repeatable runs.

    Timeouts are seconds: ``None`` waits forever, ``0`` never waits.  A blocking
    call that runs out of time raises :class:`Timeout` (also a ``TimeoutError``).
    """

    def __init__(
        self,
        *,
        order: str = "fifo",
        clock: Clock | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_waiters: int = 100_000,
        seed: int | None = None,
    ) -> None:
        self._engine = Engine(
            clock or SystemClock(), order=order, limits=limits, max_waiters=max_waiters, seed=seed
        )
        self._lock = threading.Lock()
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

    # -- writing ----------------------------------------------------------------

    def write(self, t: Iterable[Value], lease: float | None = None) -> Lease:
        """Write the tuple ``t``; it stays ``lease`` seconds (None: until taken).

        Raises :class:`InvalidValue` (a ``ValueError``) for a tuple that cannot be
        stored, naming the field; nothing is written then.
        """
        with self._lock:
            entry = self._engine.write(t, lease)
        return Lease(self, entry.seq, entry.expires)

    def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> list[Lease]:
        """Write several tuples at once, in order: all of them, or none if one is invalid."""
        with self._lock:
            entries = self._engine.write_many(tuples, lease)
        return [Lease(self, e.seq, e.expires) for e in entries]

    # -- reading and taking ---------------------------------------------------------

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """Return a copy of a matching tuple, waiting up to ``timeout`` seconds for one."""
        return self._block(compile_template(template), False, timeout)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a matching tuple, waiting up to ``timeout`` seconds for one."""
        return self._block(compile_template(template), True, timeout)

    def try_read(self, template: Any) -> Tuple | None:
        """A matching tuple, or None at once if there is none."""
        t = compile_template(template)
        with self._lock:
            return self._engine.find(t, False)

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a matching tuple, or None at once if there is none."""
        t = compile_template(template)
        with self._lock:
            return self._engine.find(t, True)

    def read_all(self, template: Any, limit: int | None = None) -> list[Tuple]:
        """All matching tuples (at most ``limit``), in the order of the space."""
        t = compile_template(template)
        with self._lock:
            return self._engine.find_all(t, False, limit)

    def take_all(self, template: Any, limit: int | None = None) -> list[Tuple]:
        """Remove and return all matching tuples (at most ``limit``), in order."""
        t = compile_template(template)
        with self._lock:
            return self._engine.find_all(t, True, limit)

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        t = compile_template(template)
        with self._lock:
            return self._engine.count(t)

    def __len__(self) -> int:
        with self._lock:
            self._engine.tick()
            return len(self._engine)

    def _block(self, template: Template, take: bool, timeout: float | None) -> Tuple:
        engine = self._engine
        with self._lock:
            deadline = engine.deadline(timeout)
            found = engine.find(template, take)
            if found is not None:
                return found
            if timeout == 0:
                raise Timeout(f"no tuple matches {template.fields!r}")
            lock = _thread.allocate_lock()
            lock.acquire()
            w = engine.add_waiter(template, take, deadline, lock.release)
        received = False
        try:
            if deadline is None or engine.clock.simulated:
                lock.acquire()
            else:
                while not lock.acquire(timeout=max(deadline - engine.clock.now(), 0.0)):
                    with self._lock:
                        engine.tick()
                        if w.state is not WAITING:
                            break
            received = True
        finally:
            if w.state is WAITING or not received:
                with self._lock:
                    withdraw(engine, w, received)
        return outcome(w, timeout)

    # -- leases --------------------------------------------------------------------

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        with self._lock:
            return self._engine.renew(seq, seconds)

    def _cancel(self, seq: int) -> None:
        with self._lock:
            self._engine.cancel(seq)

    # -- life cycle ------------------------------------------------------------------

    def on_clock_advanced(self) -> None:
        """Called by a :class:`SimulatedClock`: expire what is due."""
        with self._lock:
            self._engine.tick()

    def statistics(self) -> dict[str, Any]:
        """Counts of tuples, waiters and leases (one source for metrics and tests)."""
        with self._lock:
            self._engine.tick()
            return self._engine.statistics()

    def close(self) -> None:
        """Close the space: waiting calls raise :class:`SpaceClosed`, and so does every later call."""
        with self._lock:
            self._engine.close()

    def __enter__(self) -> Space:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Space(order={self.order!r}, tuples={len(self._engine)})"


def withdraw(engine: Engine, w: Waiter, received: bool) -> None:
    """After a wait ended: withdraw a waiter still waiting, and put back a tuple
    that was taken for a caller that is no longer there to receive it."""
    if w.state is WAITING:
        engine.cancel_waiter(w)
    elif w.state is DONE and w.take and not received and w.entry is not None:
        engine.restore(w.entry)


def outcome(w: Waiter, timeout: float | None) -> Tuple:
    """The result of a finished wait, or the error that ended it."""
    if w.state is DONE:
        return w.result  # type: ignore[return-value]
    if w.state is CLOSED:
        raise SpaceClosed("the space was closed while waiting")
    assert w.state is TIMED_OUT
    raise Timeout(f"no tuple matched {w.template.fields!r} within {timeout} s")
