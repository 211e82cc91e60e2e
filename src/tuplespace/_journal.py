"""The journal: the changes of a space that a durable store has not yet written.

The engine records every change of its stored tuples here (a put of a row, or a
delete) while the shell holds the space's lock.  A store's committer thread swaps
the pending changes out, writes many of them in one transaction (one fsync for
many acknowledged operations: group commit), then marks their batch durable.  An
operation returns only once the batch holding its change is durable.  The
journal tells its store once per batch that it holds changes, so a committer
serving many spaces swaps only the journals of those that changed.

A row written and deleted before it ever reached the disk (a tuple handed straight
to a waiting taker, or taken at once) costs the disk nothing.

Tuples are journaled as pairs of the tuple and its expiry
(:data:`~tuplespace._store.TuplePut`); records, credit accounts, capabilities,
redirections and rules as the typed rows of :mod:`tuplespace._store`
(:meth:`Journal.put_row`), keyed by kind and key: the latest row of a key in a batch
is what the store writes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ._errors import StoreError
from ._store import Row, TuplePut
from ._values import Tuple

__all__ = ["Journal"]


class Journal:
    """Pending changes of one space, and what is durable already."""

    def __init__(self, kick: Callable[[], None]) -> None:
        self.pending: dict[int, TuplePut | None] = {}  # seq -> (tuple, expires) to put, or None to delete
        self.rows: dict[tuple[type[Row], Any], Row | None] = {}  # (kind, key) -> row, or None to delete
        self.batch = 1  # the batch now collecting changes
        self.durable = 0  # the last batch written
        self.swapped_seq = 0  # no seq above this has been in a batch: such rows are not on disk
        self.error: BaseException | None = None
        self.queued = False  # the store was told of changes since the last swap
        self._kick = kick
        self._cond = threading.Condition()
        self._futures: list[tuple[int, asyncio.Future[None]]] = []

    def _changed(self) -> None:
        # The store is told once per batch: it then swaps this journal alone.
        if not self.queued:
            self.queued = True
            self._kick()

    def put(self, seq: int, t: Tuple, expires: float | None) -> None:
        self.pending[seq] = (t, expires)
        self._changed()

    def delete(self, seq: int) -> None:
        if seq > self.swapped_seq and seq in self.pending:
            del self.pending[seq]  # never written: nothing to delete
        else:
            self.pending[seq] = None
        self._changed()

    def put_row(self, row: Row) -> None:
        """Write ``row`` (in place of the row of its kind with its key, if any)."""
        self.rows[type(row), row[0]] = row
        self._changed()

    def delete_row(self, kind: type[Row], key: Any) -> None:
        """Delete the row of ``kind`` whose key is ``key``."""
        self.rows[kind, key] = None
        self._changed()

    def swap(self) -> tuple[int, dict[int, TuplePut | None], dict[tuple[type[Row], Any], Row | None]]:
        """Take the pending changes as a batch (with the space's lock held)."""
        batch, changes, rows = self.batch, self.pending, self.rows
        self.batch += 1
        self.queued = False
        self.pending = {}
        self.rows = {}
        if changes:
            self.swapped_seq = max(self.swapped_seq, max(changes))
        return batch, changes, rows

    def written(self, batch: int, error: BaseException | None = None) -> None:
        """Mark ``batch`` durable (or failed) and wake whoever waits for it."""
        with self._cond:
            if error is not None:
                self.error = error
            else:
                self.durable = batch
            self._cond.notify_all()
            ready = [f for b, f in self._futures if b <= self.durable or self.error is not None]
            self._futures = [(b, f) for b, f in self._futures if b > self.durable and self.error is None]
        for fut in ready:
            loop = fut.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    def _check(self) -> None:
        if self.error is not None:
            raise StoreError(f"the durable store failed: {self.error}") from self.error

    def wait(self, batch: int) -> None:
        """Block until ``batch`` is durable."""
        with self._cond:
            while self.durable < batch:
                self._check()
                self._cond.wait()
        self._check()

    async def wait_async(self, batch: int) -> None:
        """Await until ``batch`` is durable, without blocking the event loop."""
        with self._cond:
            if self.durable >= batch:
                return self._check()
            self._check()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._futures.append((batch, fut))
        await fut
        self._check()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
