"""The committer: one thread per durable store that writes the journals of its spaces
in groups.

A space's engine journals its changes (:class:`~tuplespace._journal.Journal`); the
journal tells the committer once per batch that it holds some.  The committer
wakes, swaps out the pending changes of every space that has any, hands them all
to the store in one call (:meth:`tuplespace._store.RowStore.write`: one
transaction, one sync for every operation that arrived while the previous one was
being written: group commit), then marks each batch durable, which releases the
operations waiting for it.  Should a write fail, the store keeps its last
transaction and every operation from then on raises
:class:`~tuplespace.StoreError`: writing later changes would make it inconsistent.

The committer also rebuilds a space from the rows its store read
(:meth:`Committer.attach`), and keeps the high-water marks of its numbers: they are
raised :data:`RESERVE` at a time, so most batches need not write them; closing the
space writes the exact numbers.  After a crash, numbers jump but never repeat.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import StoreError
from ._journal import Journal
from ._store import Changes, Row, RowStore, SpaceRows, TuplePut, collector_paused

if TYPE_CHECKING:
    from ._space import Space

__all__ = ["RESERVE", "Committer"]

logger = logging.getLogger("tuplespace")

RESERVE = 10_000  # sequence numbers reserved per write of a space's high-water marks

# A space's swapped batch: its journal, the batch's number, the space's name, its
# changes of tuples and of other rows, and the space's last seq and event numbers.
_Swapped: TypeAlias = tuple[
    Journal, int, str, dict[int, TuplePut | None], dict[tuple[type[Row], Any], Row | None], tuple[int, int]
]


class Committer:
    """The thread that writes the changes of the spaces of ``store``, in groups."""

    def __init__(self, store: RowStore) -> None:
        self.store = store
        self.spaces: dict[str, tuple[Space, Journal]] = {}
        self.error: Exception | None = None  # why a write failed; nothing is written after
        self._marks: dict[str, tuple[int, int]] = {}  # stored high-water marks of seq and event numbers
        self._closing: set[str] = set()
        self._dirty: set[str] = set()  # spaces whose journals hold changes (or that close)
        self._dirty_lock = threading.Lock()
        self._kick = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"tuplespace-committer:{store.label}", daemon=True
        )
        self._thread.start()

    def check(self) -> None:
        """Raise :class:`StoreError` if a write has failed."""
        if self.error is not None:
            raise StoreError(f"the durable store {self.store.label} failed: {self.error}")

    def attach(self, name: str, space: Space, rows: SpaceRows, on_close: Callable[[], None]) -> None:
        """Rebuild the new, empty ``space`` from the ``rows`` its store holds and
        journal its changes from now on; ``on_close`` runs when it closes (it calls
        :meth:`detach`, then :meth:`forget`).  What ran out while the store was closed expires now, its
        events and their reactions in the space's first batch."""
        journal = Journal(functools.partial(self.kick, name))
        engine = space.core.engine
        engine.journal = journal  # rows found expired are deleted from the store
        with collector_paused():
            expired = engine.load(rows.tuples, rows.last_seq, rows.last_event)
            expired_records = engine.records.load(
                rows.records, rows.accounts, rows.capabilities, rows.redirects
            )
            rules = list(rows.rules)
            counts = list(rows.rule_counts)
        if rules:
            try:
                space.rules.load(rules, space.limits, counts)
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"{self.store.label} is damaged: a rule of space {name!r}: {exc}") from None
        # The loaded rows are in the store: a later delete of one must reach it even
        # if a put of the same row (a renewal, an aborted take) is still pending.
        journal.swapped_seq = engine.last_seq
        if expired or expired_records:  # now that the rules are in place: their reactions
            with space.core.lock:  # are journaled in the same batch as the deletions
                engine.expire_loaded(expired)
                engine.records.expire_loaded(expired_records)
        if expired:
            logger.info("space %s: %d tuples expired while the store was closed", name, len(expired))
        if expired_records:
            logger.info("space %s: %d records expired while the store was closed", name, len(expired_records))
        self._marks[name] = (rows.last_seq, rows.last_event)
        self._closing.discard(name)
        space.core.attach_journal(journal, on_close)
        self.spaces[name] = (space, journal)
        if journal.queued:  # what expired while loading, journaled before the space was known here
            self.kick(name)

    def detach(self, name: str) -> None:
        """Write the last batch of the space ``name``, which closes, with the exact
        high-water marks.  Raises :class:`StoreError` if the store failed.  The
        caller then calls :meth:`forget`."""
        space, journal = self.spaces[name]
        with space.core.lock:
            batch = journal.batch
            self._closing.add(name)
        self.kick(name)
        journal.wait(batch)

    def forget(self, name: str) -> None:
        """Forget the space ``name``, detached."""
        del self.spaces[name]

    def kick(self, name: str | None = None) -> None:
        """Wake the committer: the space ``name`` has changes to write (None: to stop)."""
        if name is not None:
            with self._dirty_lock:
                self._dirty.add(name)
        if not self._kick.is_set():
            self._kick.set()

    def stop(self) -> None:
        """Stop the thread (with no space attached)."""
        self._stopped = True
        self.kick()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._kick.wait()
            self._kick.clear()
            if self._stopped:
                return
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            swapped: list[_Swapped] = []
            for name in dirty:
                entry = self.spaces.get(name)
                if entry is None:
                    continue
                space, journal = entry
                with space.core.lock:
                    batch, tuples, rows = journal.swap()
                    last = (space.core.engine.last_seq, space.core.engine.last_event)
                swapped.append((journal, batch, name, tuples, rows, last))
            if self.error is None:
                try:
                    self._write(swapped)
                except Exception as exc:
                    # The changes of the batches are lost from memory: writing later
                    # ones would make the store inconsistent.  It keeps its last
                    # transaction; every operation from now on raises StoreError.
                    logger.exception("the store %s failed", self.store.label)
                    self.error = exc
            for journal, batch, *_ in swapped:
                journal.written(batch, self.error)

    def _write(self, swapped: list[_Swapped]) -> None:
        work = []
        for _, _, name, tuples, rows, (last_seq, last_event) in swapped:
            seq_mark, event_mark = self._marks[name]
            marks = None
            if name in self._closing:
                marks = (last_seq, last_event)
            elif last_seq > seq_mark or last_event > event_mark:
                marks = (last_seq + RESERVE, last_event + RESERVE)
            if tuples or rows or marks:
                work.append(Changes(name, tuples, rows, marks))
        if not work:
            return
        self.store.write(work)
        for changes in work:
            if changes.marks:
                self._marks[changes.space] = changes.marks
