"""The seams of a store: what a server asks of the store of its spaces (:class:`Store`),
and what a durable store exchanges with the engine, as typed rows.

A durable store keeps each space as rows: its tuples (:class:`TupleRow`), records
(:class:`RecordRow`), credit accounts (:class:`AccountRow`), capabilities
(:class:`CapabilityRow`), redirections (:class:`RedirectRow`), rules
(:class:`RuleRow`) and what they did (:class:`RuleCountRow`), the options changed
on the open space (:class:`OptionRow`), and the high-water marks of its sequence
and event numbers.
When a space opens, the store reads them (:class:`SpaceRows`) and the engine is
rebuilt from them; from then on the engine journals each change of a row
(:class:`tuplespace._journal.Journal`), and the one committer
(:class:`tuplespace._committer.Committer`) hands the store the changes of many
operations of many spaces at once (:class:`Changes`) to write in one transaction
(:class:`RowStore`).  The first field of every row but a tuple's is its key.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

from ._values import Tuple, Value

if TYPE_CHECKING:
    from ._space import Space

__all__ = [
    "AccountRow",
    "CapabilityRow",
    "Changes",
    "Hosted",
    "OptionRow",
    "RecordRow",
    "RedirectRow",
    "Row",
    "RowStore",
    "RuleCountRow",
    "RuleRow",
    "SharedStore",
    "SpaceRows",
    "Store",
    "TuplePut",
    "TupleRow",
    "collector_paused",
    "options_conflict",
]


def options_conflict(space: str, option: str, stored: str, given: str) -> ValueError:
    """The error of opening the stored ``space`` with a value of one of its own options
    (``given``) other than the one it keeps (``stored``), both as the message shows them."""
    return ValueError(f"space {space!r} has {option}={stored}; it cannot be opened with {given}")


class TupleRow(NamedTuple):
    """A stored tuple: its place in the order, the tuple, and when its lease runs
    out (None: never)."""

    seq: int
    tuple: Tuple
    expires: float | None


TuplePut: TypeAlias = tuple[Tuple, float | None]
"""A tuple to store, as a journal holds it until its batch is written: the tuple and
when its lease runs out (None: never).  A plain pair, not a :class:`TupleRow`: every
write of a durable space makes one."""


class RecordRow(NamedTuple):
    """A stored record: its number, path and fields, its version, the credit it held
    (decimal text) at the time ``since``, and when it runs out (None: never)."""

    rid: int
    path: str
    fields: Mapping[str, Value]
    version: int
    credit: str
    since: float
    expires: float | None


class AccountRow(NamedTuple):
    """A credit account: its principal and balance (decimal text)."""

    principal: str
    balance: str


class CapabilityRow(NamedTuple):
    """A capability: its token, the record it opens, the operations it grants
    (comma-separated), when it runs out (None: never), and whether it is the
    record's read-only one."""

    token: str
    rid: int
    operations: str
    expires: float | None
    read_only: bool


class RedirectRow(NamedTuple):
    """A redirection: the path a record had, the record, and when it runs out; for a
    record that moved to another node, its address there (``to``; ``rid`` is 0)."""

    path: str
    rid: int
    expires: float | None
    to: str | None = None


class RuleRow(NamedTuple):
    """A rule: its name and its definition (the JSON text :mod:`tuplespace._rules` writes)."""

    name: str
    definition: str


class RuleCountRow(NamedTuple):
    """What a rule did: its name, its firings and failed firings, its latest failure
    (the JSON text :func:`tuplespace._rules.failure_to_json` writes; None: none), and
    whether it is stopped for want of credit."""

    name: str
    fired: int
    failed: int
    last_error: str | None
    stopped: bool


class OptionRow(NamedTuple):
    """An option of a space changed while it was open (``firing_charge``...): its
    name and its value as JSON text, which the space has from then on in place of the
    one it was made with."""

    name: str
    value: str


Row: TypeAlias = RecordRow | AccountRow | CapabilityRow | RedirectRow | RuleRow | RuleCountRow | OptionRow
"""A keyed row of a space (its key is its first field)."""


@dataclass(frozen=True)
class SpaceRows:
    """What a durable store holds of one space, as it reads it: the rows of each
    kind (tuples in ``seq`` order, records in ``rid`` order, rules by name, with what
    each did) and the high-water marks of its numbers (no tuple or event it ever had
    is numbered higher).  A tuple's row may be a plain tuple of a :class:`TupleRow`'s
    fields: a space may hold millions, and a plain tuple is the cheapest to make."""

    last_seq: int
    last_event: int
    tuples: Iterable[tuple[int, Tuple, float | None]]
    records: Iterable[RecordRow]
    accounts: Iterable[AccountRow]
    capabilities: Iterable[CapabilityRow]
    redirects: Iterable[RedirectRow]
    rules: Iterable[RuleRow]
    rule_counts: Iterable[RuleCountRow]


@dataclass(frozen=True)
class Changes:
    """The changes of one space in one batch, for its store to write.

    ``tuples``: seq -> the tuple to put with its expiry, or None to delete it; ``rows``: (kind, key)
    -> the row to put, or None to delete it; ``marks``: the high-water marks
    (last seq, last event) to store, or None if those stored still hold.
    """

    space: str
    tuples: Mapping[int, TuplePut | None]
    rows: Mapping[tuple[type[Row], Any], Row | None]
    marks: tuple[int, int] | None


class RowStore(Protocol):
    """A store that keeps spaces as rows (SQLite): what the committer writes through."""

    @property
    def label(self) -> str:
        """The store as an error names it."""

    def write(self, batch: Sequence[Changes]) -> None:
        """Write the changes of many spaces in one transaction: all of them or none
        (then raise)."""


@dataclass(frozen=True)
class Hosted:
    """A space a server hosts: ``aspace``, its asyncio face, which every operation on
    tuples goes through; ``space``, the :class:`~tuplespace.Space` under it when the
    store keeps the space in this process (transactions, claims, records and credit
    need one), None when its state lives elsewhere."""

    aspace: Any
    space: Space | None


class Store(Protocol):
    """Where a server keeps spaces and the catalog of them (name -> entry, a JSON
    object of the options of :data:`tuplespace._schemes.SPACE_OPTIONS`,
    ``anonymous``, and what the store adds).  Creating or dropping a space costs the
    same whatever the catalog holds.  Every method may block: the server calls them
    from worker threads."""

    @property
    def label(self) -> str:
        """The store as an error names it (``the SQLite file data/spaces.db``)."""

    @property
    def simulated_clock(self) -> bool:
        """Whether its spaces may follow a simulated clock (``"clock": "simulated"``)."""

    def catalog(self) -> dict[str, dict[str, Any]]:
        """Open the store; the entries of its catalog, by space name.  A shared store's
        is asked again, for the entries others made since."""

    def open(self, name: str, entry: dict[str, Any], new: bool) -> tuple[Hosted, dict[str, Any] | None]:
        """The space ``name`` of the catalog ``entry``, or with ``new``, a new space
        made with the options of ``entry`` and added to the catalog.  Returns the space
        and, should another server have added ``name`` first, its entry (else None).
        ``ValueError`` for options the store cannot keep."""

    def drop(self, name: str, hosted: Hosted) -> None:
        """Remove the space ``name`` from the catalog and delete what it holds.  A space
        kept in this process (``hosted.space``) is closed by it; one kept elsewhere was
        closed before."""

    def close(self) -> None:
        """Close the spaces' store (the server closes each space first)."""


@runtime_checkable
class SharedStore(Store, Protocol):
    """A store whose catalog other servers change too (Redis): a server looks a space
    it does not know up in it, and forgets those the others drop."""

    def lookup(self, name: str) -> dict[str, Any] | None:
        """The entry of ``name`` in the catalog now, or None."""

    def dropped(self) -> AsyncIterator[str]:
        """The names of the spaces other servers drop, as they drop them (on the event loop)."""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while what a store read becomes objects that
    all live on (the millions of tuples of a space, the thousands of spaces of a
    server): it would walk them again and again for nothing.  It runs again after, if
    it ran before."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
