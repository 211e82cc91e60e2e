"""What the whole server holds of requests under way: the bytes of HTTP bodies and
channel frames begun and not yet in full, at most ``ServerLimits.max_partial_bytes``.

Each connection is bounded on its own (``max_body``, ``read_timeout``), but many
connections, from many addresses, could each hold a body or a frame half sent.
Past the budget, a connection that holds part of a request stops being read until
bytes are freed; none is refused for it.  The one that began holding first always
goes on, so the server never waits on itself: what it holds is freed when its
request is in full, or when ``read_timeout`` ends it.  A request that arrives in
full in one read holds nothing here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

__all__ = ["Budget"]


class Budget:
    """The bytes each holder (a connection, or a request's body) holds of what it is
    receiving, and who waits to receive more."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.total = 0
        self.held: dict[Hashable, int] = {}  # in the order they began holding
        self.waiting: dict[Hashable, Callable[[], object]] = {}

    def hold(self, holder: Hashable, size: int) -> bool:
        """Say that ``holder`` holds ``size`` bytes now (0: none); whether it may read
        more (else it waits for :meth:`wait`'s callback)."""
        before = self.held.pop(holder, 0) if size == 0 else self.held.get(holder, 0)
        if size:
            self.held[holder] = size
        self.total += size - before
        if size < before:
            self._wake()
        return size == 0 or self.total <= self.most or next(iter(self.held)) == holder

    def wait(self, holder: Hashable, resume: Callable[[], object]) -> None:
        """Call ``resume`` once ``holder`` may read more."""
        self.waiting[holder] = resume

    async def until_free(self, holder: Hashable) -> None:
        """Return once ``holder`` may read more."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resume() -> None:
            if not ready.done():
                ready.set_result(None)

        self.wait(holder, resume)
        try:
            await ready
        finally:
            self.waiting.pop(holder, None)

    def release(self, holder: Hashable) -> None:
        """``holder`` is gone: it holds nothing and waits for nothing."""
        self.waiting.pop(holder, None)
        self.hold(holder, 0)

    def _wake(self) -> None:
        waiting = self.waiting
        if not waiting:
            return
        first = next(iter(self.held), None)
        if first in waiting:
            waiting.pop(first)()
        while waiting and self.total <= self.most:
            waiting.pop(next(iter(waiting)))()

    def statistics(self) -> dict[str, int]:
        """Bytes held, the budget, and how many holders wait."""
        return {
            "held": self.total,
            "most": self.most,
            "holders": len(self.held),
            "waiting": len(self.waiting),
        }
