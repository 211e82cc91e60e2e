"""The little that the two flavours of the binding do differently, side by side.

The binding is written once, for asyncio, in ``_async.py``; ``scripts/unasync.py``
makes ``_sync.py`` from it by renaming (``AsyncMailbox`` becomes ``Mailbox``,
``opened_later`` becomes ``opened_now``).  What cannot
be renamed into its twin — a task or a thread, an asyncio future or a condition
variable — is written here twice.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

__all__ = [
    "AsyncBackground",
    "AsyncLater",
    "AsyncLock",
    "AsyncMailbox",
    "AsyncOpenable",
    "AsyncSignal",
    "Background",
    "Later",
    "Lock",
    "Mailbox",
    "Openable",
    "Signal",
    "opened_later",
    "opened_now",
]

T = TypeVar("T")
H = TypeVar("H", bound="AsyncOpenable")
S = TypeVar("S", bound="Openable")

AsyncLock = asyncio.Lock
Lock = threading.Lock


class AsyncSignal:
    """Set once; until then, waits of a given length may be cut short by it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Wait ``timeout`` seconds, or less if the signal is set meanwhile."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            pass


class Signal:
    """Set once; until then, waits of a given length may be cut short by it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Wait ``timeout`` seconds, or less if the signal is set meanwhile."""
        self._event.wait(timeout)


# -- handles that open with I/O: transactions and subscriptions ------------------------------


class AsyncOpenable(abc.ABC):
    """A handle whose opening needs the server.  The async flavour opens it when it is
    awaited, entered with ``async with`` or first used, so making one needs no ``await``."""

    @abc.abstractmethod
    async def _open(self) -> None:
        """Open the handle on the server."""

    async def _open_and_return(self: H) -> H:
        await self._open()
        return self

    def __await__(self: H) -> Generator[Any, None, H]:
        return self._open_and_return().__await__()


class Openable(abc.ABC):
    """A handle whose opening needs the server; the sync flavour opens it at once."""

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the handle on the server."""


def opened_later(handle: H) -> H:
    return handle


def opened_now(handle: S) -> S:
    handle._open()  # noqa: SLF001 (the helper of the Openable protocol it belongs to)
    return handle


# -- work in the background ------------------------------------------------------------------


class AsyncLater:
    """Calls a coroutine function once, some seconds from now, on the running loop.

    The task holds the function (and a method's object) until the call.  If the loop
    cancels the task as it shuts down (``asyncio.run`` cancels the tasks left when its
    coroutine returns), ``at_loop_end`` is called at once in place of the call, or of
    what is left of it; a call scheduled on that loop afterwards is replaced by it too.
    """

    def __init__(self, at_loop_end: Callable[[], None] | None = None) -> None:
        self._task: asyncio.Task[None] | None = None
        self._at_loop_end = at_loop_end
        self._ended_loop: asyncio.AbstractEventLoop | None = None

    def schedule(self, delay: float, function: Callable[[], Awaitable[None]]) -> None:
        """Call ``function`` in ``delay`` seconds, unless a call is already scheduled."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        if loop is self._ended_loop:
            self._loop_ends()
        else:
            self._task = loop.create_task(self._run(delay, function))

    async def _run(self, delay: float, function: Callable[[], Awaitable[None]]) -> None:
        try:
            await asyncio.sleep(delay)
            await function()
        except asyncio.CancelledError:
            # Not cancelled by cancel(), which forgets the task first: by the loop's end.
            if self._task is asyncio.current_task():
                self._ended_loop = asyncio.get_running_loop()
                self._loop_ends()
            raise

    def _loop_ends(self) -> None:
        if self._at_loop_end is not None:
            self._at_loop_end()

    def cancel(self) -> None:
        """Cancel the call if it has not begun (a call that cancels itself runs on)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()


class Later:
    """Calls a method once, some seconds from now, in a thread of its own.

    The thread holds the method's object weakly: a call to come does not keep it alive,
    and is not made once it is gone.  ``at_loop_end`` is the async twin's: a thread
    has no event loop to end before the call.
    """

    def __init__(self, at_loop_end: Callable[[], None] | None = None) -> None:
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def schedule(self, delay: float, method: Callable[[], None]) -> None:
        """Call ``method`` in ``delay`` seconds, unless a call is already scheduled; one
        ``threading.TIMEOUT_MAX`` seconds (292 years) or more away is never made."""
        if delay >= threading.TIMEOUT_MAX:
            return
        with self._lock:
            if self._timer is None or self._timer.finished.is_set():
                self._timer = threading.Timer(delay, _call, (weakref.WeakMethod(method),))
                self._timer.daemon = True
                self._timer.start()

    def cancel(self) -> None:
        """Cancel the call if it has not begun."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    function = method()
    if function is not None:
        function()


class AsyncBackground:
    """Runs one coroutine function as a task until it returns or is stopped."""

    def __init__(self, function: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await function()

        self._task = asyncio.get_running_loop().create_task(run())

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended."""
        if self._task is asyncio.current_task():
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


class Background:
    """Runs one function in a daemon thread until it returns."""

    def __init__(self, function: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=function, name="tuplespace-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wait until the function has returned (the caller has made it return)."""
        if self._thread is not threading.current_thread():
            self._thread.join()


# -- a bounded queue between a background reader and its consumer ----------------------------


class AsyncMailbox(Generic[T]):
    """A bounded FIFO between one producer and its consumers on one event loop.

    ``put`` waits while it is full, so a slow consumer slows the producer (and, for a
    network reader, the sender) instead of growing a queue.  After :meth:`close`,
    ``put`` drops what it is given and ``get`` raises ``EOFError``.
    """

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._closed = False
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def put(self, item: T) -> None:
        while len(self._items) >= self._size and not self._closed:
            await self._changed.wait()
        if not self._closed:
            self._items.append(item)
            self._notify()

    async def get(self, timeout: float | None) -> T:
        """The oldest item, waiting up to ``timeout`` seconds (``TimeoutError`` after)."""
        async with asyncio.timeout(timeout):
            while not self._items:
                if self._closed:
                    raise EOFError
                await self._changed.wait()
        item = self._items.popleft()
        self._notify()
        return item

    def close(self) -> None:
        """Drop what is queued; the consumer gets ``EOFError``, the producer is let go."""
        self._closed = True
        self._items.clear()
        self._notify()


class Mailbox(Generic[T]):
    """A bounded FIFO between one producer thread and its consumers; see :class:`AsyncMailbox`."""

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._closed = False
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        with self._changed:
            while len(self._items) >= self._size and not self._closed:
                self._changed.wait()
            if not self._closed:
                self._items.append(item)
                self._changed.notify_all()

    def get(self, timeout: float | None) -> T:
        """The oldest item, waiting up to ``timeout`` seconds (``TimeoutError`` after)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self._items:
                if self._closed:
                    raise EOFError
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._changed.wait(left)
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        """Drop what is queued; the consumer gets ``EOFError``, the producer is let go."""
        with self._changed:
            self._closed = True
            self._items.clear()
            self._changed.notify_all()
