"""Records seen from a program: handles on records, their watches, and record contents.

A :class:`Record` is a handle on one record of a :class:`~tuplespace.Space`: the
full handle that :meth:`~tuplespace.Space.create` and
:meth:`~tuplespace.Space.record` return, or a capability
(:meth:`Record.capability`, :meth:`Record.read_only`) that allows some operations
only.  :class:`~tuplespace.AsyncRecord` (in :mod:`tuplespace._aio`) is the same
handle for asyncio, its methods awaited.  Both faces share :class:`RecordBase`;
every operation is one call of the space's record store under the space's lock
(see :mod:`tuplespace._recordstore`), and those that change something return once
the change is durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._capabilities import OPERATIONS, READ_ONLY
from ._errors import EventsLost, InvalidValue, NotAllowed
from ._events import Change, FeedBase
from ._names import check_tag
from ._recordstore import DEFAULT_PRINCIPAL, ROOT_OPERATIONS, ROOT_RID, RecordStore
from ._subscription import SubscriptionBase, next_from
from ._upcall import Upcall
from ._values import URI, Map, Value, check_value, value_key

if TYPE_CHECKING:
    from ._core import Core

__all__ = [
    "FULL_OPERATIONS",
    "ROOT_OPERATIONS",
    "Record",
    "RecordBase",
    "RecordData",
    "RecordWatch",
    "check_revocable",
]

FULL_OPERATIONS = OPERATIONS | {"move", "capability"}
"""What a full handle may do: every operation, move the record and make capabilities."""


class RecordData:
    """What a record holds at one instant: its ``address``, its ``fields`` (a
    :class:`~tuplespace.Map`) and its ``version``.

    :meth:`Space.take_record` returns one, :meth:`Record.snapshot` reads one, and
    :func:`tuplespace.parse` gives one for the text of a record.  Equality is typed,
    as for values: ``{"n": 1}`` and ``{"n": 1.0}`` are different fields.

    >>> RecordData(URI("tuplespace://local/spaces/default/a"), {"n": 1}).fields["n"]
    1
    """

    __slots__ = ("address", "fields", "version")

    def __init__(self, address: URI | str, fields: Mapping[str, Value], version: int = 1) -> None:
        for tag in fields:
            check_tag(tag)
        checked = check_value(dict(fields))
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidValue(f"version is an int >= 0, got {version!r}", "version")
        object.__setattr__(self, "address", URI(address))
        object.__setattr__(self, "fields", checked)
        object.__setattr__(self, "version", version)

    address: URI
    fields: Map
    version: int

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RecordData is immutable")

    def _key(self) -> tuple[Any, ...]:
        return (self.address, value_key(self.fields), self.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordData) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"RecordData({str(self.address)!r}, {dict(self.fields)!r}, version={self.version})"


class RecordBase:
    """What both faces of a record handle share: what it names, and the calls that
    never wait for anything (reads do not wait for the disk)."""

    __slots__ = ("_core", "_operations", "_owner", "_rid", "_token")

    def __init__(
        self,
        core: Core,
        rid: int,
        token: str | None = None,
        operations: frozenset[str] | None = None,
        owner: bool = False,
    ) -> None:
        self._core = core
        self._rid = rid
        self._token = token
        if token is not None:
            self._operations = operations or frozenset()
        else:
            self._operations = ROOT_OPERATIONS if rid == ROOT_RID else FULL_OPERATIONS
        self._owner = owner  # made by capability() or read_only(): it may revoke itself

    @property
    def _store(self) -> RecordStore:
        return self._core.engine.records

    def _locked(self, operation: Any, *args: Any) -> Any:
        with self._core.lock:
            return operation(self._rid, self._token, *args)

    @property
    def address(self) -> URI:
        """The address of this handle: the record's (the node's base URI, the space
        and the record's path) for a full handle, the capability's for a capability."""
        with self._core.lock:
            return self._store.address(self._rid, self._token)

    def __tuplespace_uri__(self) -> URI:
        """A handle stands for its address wherever a value or an address goes.  Read
        without the space's lock, which the caller may hold (a handle among the fields
        being written): the address is one dictionary lookup, and a handle whose record
        moves meanwhile gives the old address, which redirects to it."""
        return self._store.address(self._rid, self._token)

    @property
    def rid(self) -> int:
        """The record's number in its space's record store (a capability shares it)."""
        return self._rid

    @property
    def operations(self) -> frozenset[str]:
        """What this handle allows: for a capability a subset of ``read``, ``set``,
        ``refresh``, ``clone``, ``destroy`` and ``watch``; a full handle may also
        ``move`` the record and make ``capability`` handles (which revoke themselves)."""
        return self._operations

    @property
    def is_capability(self) -> bool:
        return self._token is not None

    @property
    def expires_at(self) -> float | None:
        """When this capability ends (None: never, and for a full handle)."""
        with self._core.lock:
            expires: float | None = self._store.expires_at(self._rid, self._token)
            return expires

    def _full(self, operation: str) -> None:
        if self._token is not None:
            raise NotAllowed(
                f"a capability cannot {operation}; only the record's full handle can",
                operation=operation,
                allowed=self._operations,
            )

    def _snapshot(self) -> RecordData:
        address, fields, version = self._locked(self._store.snapshot)
        data = RecordData.__new__(RecordData)
        object.__setattr__(data, "address", address)
        object.__setattr__(data, "fields", fields)
        object.__setattr__(data, "version", version)
        return data

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RecordBase)
            and other._core is self._core
            and (other._rid, other._token) == (self._rid, self._token)
        )

    def __hash__(self) -> int:
        return hash((id(self._core), self._rid, self._token))

    def __repr__(self) -> str:
        try:
            where = str(self.address)
        except Exception as exc:
            where = f"{type(exc).__name__}: {exc}"
        return f"{type(self).__name__}({where!r})"


class Record(RecordBase):
    """A handle on a record of a :class:`~tuplespace.Space`.

    >>> rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})   # doctest: +SKIP
    >>> rec.get("temp"), rec.get("$version")                                  # doctest: +SKIP
    (21.5, 1)
    >>> rec.set("temp", 22.0)                                                 # doctest: +SKIP
    2

    Reading a record that is gone raises :class:`RecordNotFound`; a capability
    that does not allow an operation raises :class:`NotAllowed`, a revoked or
    expired one :class:`CapabilityRevoked`.
    """

    __slots__ = ()

    # -- reading ---------------------------------------------------------------------

    def get(self, tag: str, default: Value = None) -> Value:
        """The value of the field ``tag`` (``default`` if the record has none), or of a
        computed tag: ``$PK`` (the address), ``$version``, ``$credit``, ``$lifetime``
        (seconds left, None: forever), ``$refcount`` or ``$level``."""
        core = self._core
        with core.lock:
            return core.engine.records.get(self._rid, self._token, tag, default)

    def view(self, *tags: str) -> tuple[Value, ...]:
        """The values of several fields at one instant, in the order asked."""
        view: tuple[Value, ...] = self._locked(self._store.view, tags)
        return view

    def all(self) -> Map:
        """Every stored field (computed tags are read with :meth:`get` and :meth:`view`)."""
        fields: Map = self._locked(self._store.all)
        return fields

    def tags(self) -> list[str]:
        """The stored tags, in the order they were first set."""
        tags: list[str] = self._locked(self._store.tags)
        return tags

    def snapshot(self) -> RecordData:
        """The record's address, fields and version, read at one instant."""
        return self._snapshot()

    # -- changing ---------------------------------------------------------------------

    def _call(self, operation: Any, *args: Any) -> Any:
        return self._core.call(operation, self._rid, self._token, *args)

    def set(self, tag: str, value: Value) -> int:
        """Set one field, atomically; returns the record's new ``$version``.

        Every set is an ``update`` event for the record's watchers.  A value that is
        the address of a record of this space contains that record; one that would
        make a record contain itself raises :class:`ContainmentCycle`.
        """
        core = self._core
        refer = core.refer
        if refer is not None:
            refer(self, value)
        version: int = core.call(core.engine.records.set, self._rid, self._token, tag, value)
        return version

    def call(self, tag: str, *args: Value, principal: str = DEFAULT_PRINCIPAL) -> Value:
        """Run the method held in the field ``tag`` (a :class:`~tuplespace.Method`) with
        ``args`` (null, bool, int, float or str) and return its result.

        The method runs in a sandbox, bounded by the space's ``rules.limits``; it may
        read and set the record's fields (``self.target``) and write tuples.  Its
        changes are applied together when it returns; a method stopped by a limit
        (:class:`LimitReached`: ``method_steps``, ``method_ms``, ``method_memory``) or
        by an error (:class:`EvaluationError`) changes nothing.  Needs ``set``.

        When the space charges for steps (``rules.step_charge``), ``principal``'s
        account pays for the steps the method ran, and the method may run only as
        many as it can pay for: :class:`InsufficientCredit` when it runs out.

        >>> thermo.call("bump", 0.5)  # doctest: +SKIP
        21.5
        """
        core = self._core
        result: Value = core.call(core.rules.call, self._rid, self._token, tag, args, principal)
        return result

    def refresh(
        self, credit: Any = None, lease: float | None = None, *, principal: str = DEFAULT_PRINCIPAL
    ) -> float | None:
        """Refinance the record: add ``credit`` (paid by ``principal``'s account when
        the space charges), or give it ``lease`` more seconds; returns its expiry time."""
        expires: float | None = self._call(self._store.refresh, credit, lease, principal)
        return expires

    def clone(
        self, path: str, credit: Any = None, lease: float | None = None, *, principal: str = DEFAULT_PRINCIPAL
    ) -> Record:
        """A new record at ``path`` with this record's fields; funded like :meth:`Space.create`."""
        rid: int = self._call(self._store.clone, path, credit, lease, principal)
        return Record(self._core, rid)

    def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """Give the record the new ``path``.  The old path keeps answering for it
        (:meth:`Space.record` follows it) for ``redirect_lease`` seconds (None: as long
        as the record lives, 0: not at all).  Fields of other records that contain it
        are changed to its new address.  Only the full handle can move a record.

        A record of a :class:`~tuplespace.Node`'s space moves to another node when
        ``path`` is an address there (``coap://…/spaces/<space>/<path>``): it is
        created there with its fields and removed here (a ``move`` event whose value
        is the new address); this handle is then gone, and the old address answers
        with the new one, which remote handles follow (docs/federation.md, Migration)."""
        self._full("move")
        core = self._core
        move_away = core.move_away
        if move_away is not None and str(path).startswith("coap://"):
            move_away(self, str(path), redirect_lease)
            return
        core.call(self._store.move, self._rid, path, redirect_lease)

    def destroy(self, force: bool = False) -> None:
        """Remove the record.  One contained in other records raises
        :class:`RecordInUse` unless ``force``; then their fields that held it become None."""
        self._call(self._store.destroy, force)

    # -- capabilities --------------------------------------------------------------------

    def read_only(self) -> Record:
        """The record's read-only handle (``$RO``): reads and watches, nothing else.
        The same one every time, until it is revoked."""
        self._full("capability")
        token: str = self._core.call(self._store.read_only, self._rid)
        return Record(self._core, self._rid, token, READ_ONLY, owner=True)

    def capability(self, operations: Iterable[str], lease: float | None = None) -> Record:
        """A new capability: a handle with an unguessable address of its own that
        allows only ``operations`` (of ``read``, ``set``, ``refresh``, ``clone``,
        ``destroy``, ``watch``), for ``lease`` seconds (None: until revoked).  Give its
        :attr:`address` to whoever should have those rights; :meth:`revoke` ends them."""
        self._full("capability")
        ops = frozenset({operations} if isinstance(operations, str) else operations)
        token: str = self._core.call(self._store.capability, self._rid, ops, lease)
        return Record(self._core, self._rid, token, ops, owner=True)

    def revoke(self) -> None:
        """End this capability (one made by :meth:`capability` or :meth:`read_only`):
        every handle on its address raises :class:`CapabilityRevoked` from now on."""
        check_revocable(self._token is not None, self._owner, self._operations)
        self._core.call(self._store.revoke, self._rid, self._token)

    # -- watching --------------------------------------------------------------------

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> RecordWatch:
        """The record's changes, in order, as an iterator of :class:`Change`: every
        set (the upcall), and its move, destruction or expiry, after which the
        iteration ends.  ``since``: resume after the event numbered ``since``; other
        arguments as for :meth:`Space.subscribe`."""
        core = self._core
        with core.lock:
            feed = self._store.watch(self._rid, self._token, since, max_pending, lease)
            core.start_timer()
        return RecordWatch(core, feed)

    def on_change(
        self,
        fn: Callable[[Change], object],
        *,
        on_lost: Callable[[EventsLost], object] | None = None,
        max_pending: int = 1000,
    ) -> Upcall:
        """Call ``fn(change)`` for every change of the record (the upcall), in a thread of
        its own: a slow ``fn`` never holds up a writer.  Falling behind by more than
        ``max_pending`` changes and the event log calls ``on_lost(exc)`` (:class:`EventsLost`)
        and goes on; ``upcall.cancel()`` stops it.  See :mod:`tuplespace._upcall`.

        >>> upcall = rec.on_change(lambda change: print(change.tag, change.value))  # doctest: +SKIP
        """
        return Upcall.start(lambda since, pending: self.watch(since, pending), fn, on_lost, max_pending)


def check_revocable(capability: bool, owner: bool, allowed: frozenset[str]) -> None:
    """NotAllowed unless a handle may revoke its capability: it is one (``capability``),
    and the handle that made it (``owner``); ``allowed``: its operations."""
    if not capability:
        raise NotAllowed(
            "a full handle cannot be revoked; revoke the capabilities made from it",
            operation="revoke",
            allowed=allowed,
        )
    if not owner:
        raise NotAllowed(
            "only the handle that capability() or read_only() returned can revoke the capability",
            operation="revoke",
            allowed=allowed,
        )


class RecordWatch(SubscriptionBase):
    """The changes of a record (:meth:`Record.watch`) or of the records below a path
    (:meth:`Space.watch_records`), as an iterator of :class:`Change`.

    Bounded like a :class:`Subscription`: a slow watcher catches up from the
    space's event log, and gets :class:`EventsLost` only for changes the log no
    longer holds.  Resume with ``since=watch.last_seq``.
    """

    def get(self, timeout: float | None = None) -> Change | None:
        """The next change, waiting up to ``timeout`` seconds (:class:`Timeout` after);
        None once the watch has ended."""
        feed: FeedBase[Change] = self._feed
        return next_from(self._core, feed, timeout)

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        change = self.get()
        if change is None:
            raise StopIteration
        return change

    def renew(self, lease: float | None) -> None:
        """End the watch ``lease`` seconds from now (None: never)."""
        self._renew(lease)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> RecordWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
