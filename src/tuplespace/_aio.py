"""The asyncio space: the engine of a :class:`~tuplespace.Space`, seen from coroutines.

A thread and a coroutine coordinate through one space: ``AsyncSpace(space)``
shares ``space``'s engine and lock.  Operations that never wait take the lock for
a few microseconds; waiting is done on a future of the running event loop, never
by blocking it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ._engine import WAITING
from ._errors import Timeout
from ._lease import Lease
from ._space import Space, outcome, withdraw
from ._templates import compile_template
from ._values import Value

__all__ = ["AsyncSpace"]

Tuple = tuple[Value, ...]


def _waker(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> Callable[[], bool]:
    def resolve() -> None:
        if not fut.done():
            fut.set_result(None)

    def wake() -> bool:
        if asyncio._get_running_loop() is loop:
            resolve()
            return True
        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # the loop is closed: nobody will receive the tuple
            return False
        return True

    return wake


class AsyncSpace:
    """The asyncio face of a space: the same methods as :class:`Space`, awaited.

    >>> aspace = AsyncSpace(space)              # doctest: +SKIP
    >>> await aspace.take(("job", int, str))     # doctest: +SKIP

    ``AsyncSpace()`` with no space makes a new one; keyword options are those of
    :class:`Space`.  Cancelling a waiting call withdraws it and takes nothing.
    """

    def __init__(self, space: Space | None = None, **options: Any) -> None:
        if space is not None and options:
            raise TypeError("give either a space or options for a new one, not both")
        self.space = space if space is not None else Space(**options)

    async def write(self, t: Iterable[Value], lease: float | None = None) -> Lease:
        """See :meth:`Space.write`."""
        return self.space.write(t, lease)

    async def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> list[Lease]:
        """See :meth:`Space.write_many`."""
        return self.space.write_many(tuples, lease)

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.read`."""
        return await self._block(template, False, timeout)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.take`."""
        return await self._block(template, True, timeout)

    async def try_read(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_read`."""
        return self.space.try_read(template)

    async def try_take(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_take`."""
        return self.space.try_take(template)

    async def read_all(self, template: Any, limit: int | None = None) -> list[Tuple]:
        """See :meth:`Space.read_all`."""
        return self.space.read_all(template, limit)

    async def take_all(self, template: Any, limit: int | None = None) -> list[Tuple]:
        """See :meth:`Space.take_all`."""
        return self.space.take_all(template, limit)

    async def count(self, template: Any) -> int:
        """See :meth:`Space.count`."""
        return self.space.count(template)

    def statistics(self) -> dict[str, Any]:
        """See :meth:`Space.statistics`."""
        return self.space.statistics()

    async def close(self) -> None:
        """See :meth:`Space.close`."""
        self.space.close()

    async def __aenter__(self) -> AsyncSpace:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _block(self, template: Any, take: bool, timeout: float | None) -> Tuple:
        compiled = compile_template(template)
        space = self.space
        engine = space._engine
        with space._lock:
            deadline = engine.deadline(timeout)
            found = engine.find(compiled, take)
            if found is not None:
                return found
            if timeout == 0:
                raise Timeout(f"no tuple matches {compiled.fields!r}")
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            w = engine.add_waiter(compiled, take, deadline, _waker(loop, fut))
        received = False
        try:
            if deadline is None or engine.clock.simulated:
                await fut
            else:
                while not fut.done():
                    remaining = deadline - engine.clock.now()
                    if remaining > 0:
                        await asyncio.wait((fut,), timeout=remaining)
                        if fut.done():
                            break
                    with space._lock:
                        engine.tick()
                        if w.state is not WAITING:
                            break
            received = True
        finally:
            if w.state is WAITING or not received:
                with space._lock:
                    withdraw(engine, w, received)
        return outcome(w, timeout)

    def __repr__(self) -> str:
        return f"AsyncSpace({self.space!r})"
