"""Upcalls: a function called for every change of a record (``rec.on_change(fn)``).

An upcall reads a watch of the record (:meth:`tuplespace.Record.watch`) in a thread of
its own (:class:`Upcall`, for the sync handles) or a task (:class:`AsyncUpcall`, for the
async ones) and calls the function there, so a writer never waits for it.  Changes
queue in the watch, bounded as a watch is (``max_pending``, then the space's event
log); a function slower than the changes for longer than that makes the watch fall
behind: ``on_lost`` is then called with the :class:`EventsLost` that says which changes
were skipped (without ``on_lost``, a warning is logged), and the upcall goes on from the
oldest change the log still holds.  An exception of the function is logged and the
upcall goes on.  The upcall ends with the record (destroyed, expired, moved) or with
:meth:`cancel`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from ._errors import EventsLost, TupleSpaceError
from ._events import Change

__all__ = ["AsyncUpcall", "Upcall"]

log = logging.getLogger("tuplespace")

OpenWatch = Callable[[int | None, int], Any]
"""``open(since, max_pending)``: a new watch of the record."""


class _UpcallBase:
    __slots__ = ("_calls", "_errors", "_fn", "_lost", "_max_pending", "_on_lost", "_open", "_watch")

    def __init__(
        self,
        open_watch: OpenWatch,
        watch: Any,
        fn: Callable[[Change], Any],
        on_lost: Callable[[EventsLost], Any] | None,
        max_pending: int,
    ) -> None:
        self._open, self._watch, self._fn = open_watch, watch, fn
        self._on_lost, self._max_pending = on_lost, max_pending
        self._calls = self._errors = self._lost = 0

    def statistics(self) -> dict[str, int]:
        """``calls`` of the function, the ``errors`` it raised, the times it fell behind (``lost``)."""
        return {"calls": self._calls, "errors": self._errors, "lost": self._lost}

    def _failed(self, change: Change) -> None:
        self._errors += 1
        log.exception("the upcall %r raised on change %d of %s", self._fn, change.seq, change.path)

    def _behind(self, exc: EventsLost) -> Callable[[EventsLost], Any]:
        """What to call for a watch that fell behind, and the watch that goes on after it."""
        self._lost += 1
        self._watch = self._open(exc.oldest_available - 1, self._max_pending)
        return self._on_lost or _warn


def _check(fn: object, on_lost: object) -> None:
    if not callable(fn):
        raise TypeError(f"on_change takes a function, not {type(fn).__name__}")
    if on_lost is not None and not callable(on_lost):
        raise TypeError(f"on_lost must be a function or None, not {type(on_lost).__name__}")


def _warn(exc: EventsLost) -> None:
    log.warning("an upcall fell behind the changes of its record: %s", exc)


class Upcall(_UpcallBase):
    """The upcall of a sync record handle (:meth:`tuplespace.Record.on_change`): the
    function runs in a daemon thread of its own."""

    __slots__ = ("_cancelled", "_lock", "_thread")

    def __init__(self, open_watch: OpenWatch, watch: Any, *args: Any) -> None:
        super().__init__(open_watch, watch, *args)
        self._lock = threading.Lock()
        self._cancelled = False
        name = f"tuplespace-upcall-{self._fn!r}"[:60]
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def start(
        cls,
        open_watch: OpenWatch,
        fn: Callable[[Change], Any],
        on_lost: Callable[[EventsLost], Any] | None = None,
        max_pending: int = 1000,
    ) -> Upcall:
        """An upcall of ``fn`` on the watch ``open_watch(None, max_pending)``, opened
        before this returns: every change after it is seen, and what cannot be watched
        raises here."""
        _check(fn, on_lost)
        watch = open_watch(None, max_pending)
        watch.__enter__()
        return cls(open_watch, watch, fn, on_lost, max_pending)

    def _run(self) -> None:
        while True:
            try:
                for change in self._watch:
                    self._calls += 1
                    try:
                        self._fn(change)
                    except Exception:
                        self._failed(change)
                return
            except EventsLost as exc:
                with self._lock:
                    if self._cancelled:
                        return
                    self._watch.close()
                    try:
                        report = self._behind(exc)
                    except TupleSpaceError:
                        return  # the record is gone, or the space closed
                report(exc)
            except TupleSpaceError:
                return

    def cancel(self) -> None:
        """Stop calling the function; waits for a call under way to return (unless
        called from the function itself)."""
        with self._lock:
            self._cancelled = True
            self._watch.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    @property
    def active(self) -> bool:
        """Whether the function may still be called."""
        return self._thread.is_alive()


class AsyncUpcall(_UpcallBase):
    """The upcall of an async record handle: the function (or coroutine function) runs
    in a task of the event loop that called ``on_change``."""

    __slots__ = ("_task",)

    def __init__(self, open_watch: OpenWatch, watch: Any, *args: Any) -> None:
        super().__init__(open_watch, watch, *args)
        self._task = asyncio.get_running_loop().create_task(self._run())

    @classmethod
    async def start(
        cls,
        open_watch: OpenWatch,
        fn: Callable[[Change], Any],
        on_lost: Callable[[EventsLost], Any] | None = None,
        max_pending: int = 1000,
    ) -> AsyncUpcall:
        """See :meth:`Upcall.start`."""
        _check(fn, on_lost)
        watch = open_watch(None, max_pending)
        await watch.__aenter__()
        return cls(open_watch, watch, fn, on_lost, max_pending)

    async def _run(self) -> None:
        while True:
            try:
                async for change in self._watch:
                    self._calls += 1
                    try:
                        done = self._fn(change)
                        if inspect.isawaitable(done):
                            await done
                    except Exception:
                        self._failed(change)
                return
            except EventsLost as exc:
                await self._watch.close()
                try:
                    report = self._behind(exc)
                except TupleSpaceError:
                    return
                done = report(exc)
                if inspect.isawaitable(done):
                    await done
            except TupleSpaceError:
                return

    async def cancel(self) -> None:
        """Stop calling the function, and wait until its task ended (unless called from
        the function itself)."""
        await self._watch.close()
        if self._task is not asyncio.current_task():
            self._task.cancel()
            await asyncio.wait([self._task])

    @property
    def active(self) -> bool:
        """Whether the function may still be called."""
        return not self._task.done()
