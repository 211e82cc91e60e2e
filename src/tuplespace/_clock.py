"""Clocks: where spaces get the time from.

A space reads time only through its clock, so a :class:`SimulatedClock` can drive
it faster than real time, deterministically, for tests and simulations::

    clock = SimulatedClock()
    space = Space(clock=clock)
    space.write(("token",), lease=60)
    clock.advance(61)           # the lease runs out; no real time passes
    assert space.try_read(("token",)) is None

Times are seconds since the Unix epoch (UTC), as floats.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock", "wait_event"]


class Clock(Protocol):
    """What a space needs of a clock."""

    #: True if time only moves when :meth:`SimulatedClock.advance` is called;
    #: blocking calls then wait for the clock instead of for real seconds.
    simulated: bool

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The real clock (``time.time``)."""

    simulated = False
    now = staticmethod(time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """A clock that moves only when told to.

    ``SimulatedClock(start)`` begins at ``start`` seconds since the epoch (default:
    2000-01-01T00:00:00Z).  :meth:`advance` moves it forward and lets every space
    using it expire leases and time out waits that fall due.
    """

    simulated = True

    def __init__(self, start: float = 946_684_800.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._listeners: weakref.WeakSet[_Listener] = weakref.WeakSet()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (not backward) and run what falls due."""
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward; got {seconds!r} seconds")
        with self._lock:
            self._now += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener.on_clock_advanced()

    def attach(self, listener: _Listener) -> None:
        """Call ``listener.on_clock_advanced()`` after every :meth:`advance`."""
        self._listeners.add(listener)

    def __repr__(self) -> str:
        return f"SimulatedClock({self._now!r})"


class _Listener(Protocol):
    def on_clock_advanced(self) -> None: ...


def wait_event(event: threading.Event, clock: Clock, deadline: float | None) -> None:
    """Wait for ``event`` until ``deadline`` of ``clock`` (None: no end); simulated
    time moves in other threads, so then the caller is back soon to look again."""
    if deadline is None:
        event.wait()
    elif clock.simulated:
        event.wait(0.01)
    else:
        event.wait(min(max(deadline - clock.now(), 0.0), threading.TIMEOUT_MAX))
