"""An asyncio event loop in a thread of its own, for the sync faces of CoAP (its endpoints are asyncio)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._errors import Unreachable

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """A loop run by a daemon thread; :meth:`call` runs a coroutine there from any other
    thread, bounded in time; :meth:`stop` runs a last coroutine and ends the thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self.closed = False

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        """The result of ``coroutine``, run on the loop; :class:`~tuplespace.Unreachable`
        if it takes longer than ``timeout`` seconds (None: no bound) or a CoAP peer
        cannot be reached."""
        if self.closed:
            coroutine.close()
            raise Unreachable("closed")
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("called from the loop's own thread: it would wait on itself")
        return asyncio.run_coroutine_threadsafe(_within(coroutine, timeout), self.loop).result()

    def stop(self, last: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``last()`` on the loop, cancel the tasks left, and end the thread."""
        if self.closed:
            return
        self.closed = True
        asyncio.run_coroutine_threadsafe(_finish(last), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _within(coroutine: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
    try:
        return await asyncio.wait_for(coroutine, timeout)
    except TimeoutError:
        raise Unreachable(f"no answer within {timeout} s") from None


async def _finish(last: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
    if last is not None:
        await last()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:  # observations followed, requests under way
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
