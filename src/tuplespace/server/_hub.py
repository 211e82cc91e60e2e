"""The spaces a server hosts, and the transactions and claims its clients hold.

Durable spaces live in one SQLite file, ``<data_dir>/spaces.db``, whose catalog
table lists them with the options the server keeps for them (event retention,
anonymous permissions), one row per space: creating or deleting a space writes
its row alone.  A catalog of an earlier version, ``<data_dir>/spaces.json``, is
moved into the table on start (and kept as ``spaces.json.migrated``).  Memory
spaces exist until the server stops.

A claim is a transaction the server starts for one ``take``: the taken tuple is
held by it until the client confirms (commit) or releases (abort) it, or its
lease runs out (abort, by the space's own timer), so a tuple whose answer never
reached its client returns to its place.  A claimed take of a record holds the
record instead (:class:`RecordClaim`, the same face).  Transactions and claims are known by
unguessable ids; a token's transaction can only be used with that token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import logging
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # Windows: SQLite's own lock still keeps a second server out
    fcntl = None  # type: ignore[assignment]

from .._aio import AsyncSpace, AsyncTransaction, _call, _settle_now
from .._clock import SimulatedClock
from .._codec import to_wire
from .._credit import to_credit
from .._engine import EVENT_RETENTION_BYTES, ORDERS
from .._errors import InvalidValue, StoreError, TransactionError
from .._mint import MAX_BITS
from .._records import DEFAULT_MINT_BITS, DEFAULT_OPERATOR
from .._space import Space
from .._sqlite import Catalog, open_catalog, open_space
from .._templates import ANY, Template
from .._values import Credit, Limits
from ._auth import check_permissions
from ._errors import ApiError, limit_reached

__all__ = ["MAX_EVENT_RETENTION_BYTES", "Handle", "Hub", "RecordClaim", "SpaceInfo"]

logger = logging.getLogger("tuplespace.server")

MAX_EVENT_RETENTION_BYTES = 1 << 30  # the most a client may ask a space to keep of its events
ENDED_KEPT = 10_000  # ended transactions and claims remembered, to answer precisely
SWEEP_FROM = 1024  # handles held before those that ended by themselves are swept out


@dataclass(eq=False)
class SpaceInfo:
    """A hosted space and its options."""

    name: str
    store: str
    anonymous: frozenset[str]
    event_retention: int
    event_retention_bytes: int
    storage: str  # the space's name in the SQLite file
    space: Space
    aspace: AsyncSpace
    deleted: bool = False

    def options(self) -> dict[str, Any]:
        return {
            "order": self.space.order,
            "capacity": self.space.capacity,
            "event_retention": self.event_retention,
            "event_retention_bytes": self.event_retention_bytes,
            "store": self.store,
            "anonymous": sorted(self.anonymous),
            "charge_rate": credit_text(self.space.charge_rate),
            "creation_charge": credit_text(self.space.creation_charge),
            "clock": "simulated" if self.space.clock.simulated else "system",
            "operator": self.space.operator,
            "mint_amount": credit_text(self.space.mint_amount),
            "mint_bits": self.space.mint_bits,
        }


def credit_text(amount: Credit) -> str:
    """An amount of credit as the text of its wire form (``"12.5"``)."""
    text: str = to_wire(amount)["$credit"]
    return text


class RecordClaim:
    """A claimed take of a record: the record is held (docs/records.md) until
    :meth:`commit` removes it for good or :meth:`abort` shows it again, as the
    claim's lease running out unconfirmed does.  It has the face of a transaction
    that claims use (``state``, ``expires_at``, ``commit``, ``abort``)."""

    def __init__(self, space: Space, rid: int, lease: float) -> None:
        self._space = space
        self._rid = rid
        self.state = "active"
        self.expires_at: float | None = space._engine.clock.now() + lease
        self._timer = asyncio.get_running_loop().call_later(lease, self._expire)

    def _end(self, state: str) -> bool:
        if self.state != "active":
            return False
        self.state = state
        self._timer.cancel()
        return True

    def _release(self) -> None:
        space = self._space
        with space._lock:
            if not space._engine.closed:  # a closed space keeps the record as it was stored
                space._engine.records.release(self._rid)
                if space._timer is not None:
                    space._timer.poke()

    def _expire(self) -> None:
        if self._end("aborted"):
            self._release()

    async def commit(self) -> None:
        if not self._end("committed"):
            raise TransactionError(f"the claim is {self.state}")
        space = self._space

        def confirm() -> None:
            space._engine._check_open()
            space._engine.records.confirm(self._rid)

        await _call(space, confirm)

    async def abort(self) -> None:
        if self._end("aborted"):
            self._release()
            await _settle_now(self._space)


@dataclass(eq=False)
class Handle:
    """A transaction or a claim: ``kind`` is ``"transaction"`` or ``"claim"``."""

    id: str
    kind: str
    info: SpaceInfo
    tx: AsyncTransaction | RecordClaim
    owner: str | None  # the token's name; None: whoever has the id
    client: str

    @property
    def state(self) -> str:
        return self.tx.state

    @property
    def transaction(self) -> AsyncTransaction:
        """The transaction of a ``"transaction"`` handle."""
        assert isinstance(self.tx, AsyncTransaction)
        return self.tx


@dataclass
class _Ended:
    kind: str
    state: str
    space: str


@dataclass
class ClientState:
    """What one client (a token, or an address without one) holds at the moment."""

    waiting: int = 0
    subscriptions: int = 0
    handles: set[str] = field(default_factory=set)


def _parse_options(body: dict[str, Any]) -> dict[str, Any]:
    """The options of a PUT /spaces/{space} body, checked; ApiError 400 naming the field."""
    allowed = {
        "order",
        "capacity",
        "event_retention",
        "event_retention_bytes",
        "store",
        "anonymous",
        "clock",
        "operator",
        "mint_bits",
        *_CREDIT_OPTIONS,
    }
    for key in body:
        if key not in allowed:
            raise ApiError(
                400, "bad_request", f"unknown option {key!r}; options are {', '.join(sorted(allowed))}", key
            )
    out: dict[str, Any] = {}
    if "order" in body:
        if body["order"] not in ORDERS:
            raise ApiError(400, "bad_request", f"order is one of {', '.join(ORDERS)}", "order")
        out["order"] = body["order"]
    if "capacity" in body:
        c = body["capacity"]
        if c is not None and (type(c) is not int or c < 1):
            raise ApiError(400, "bad_request", "capacity is a positive integer or null", "capacity")
        out["capacity"] = c
    if "event_retention" in body:
        r = body["event_retention"]
        if type(r) is not int or not 0 <= r <= 1_000_000:
            raise ApiError(
                400, "bad_request", "event_retention is an integer from 0 to 1000000", "event_retention"
            )
        out["event_retention"] = r
    if "event_retention_bytes" in body:
        r = body["event_retention_bytes"]
        if type(r) is not int or not 0 <= r <= MAX_EVENT_RETENTION_BYTES:
            raise ApiError(
                400,
                "bad_request",
                f"event_retention_bytes is an integer from 0 to {MAX_EVENT_RETENTION_BYTES}",
                "event_retention_bytes",
            )
        out["event_retention_bytes"] = r
    if "store" in body:
        if body["store"] not in ("durable", "memory"):
            raise ApiError(400, "bad_request", 'store is "durable" or "memory"', "store")
        out["store"] = body["store"]
    if "clock" in body:
        if body["clock"] not in ("system", "simulated"):
            raise ApiError(400, "bad_request", 'clock is "system" or "simulated"', "clock")
        out["clock"] = body["clock"]
    if "anonymous" in body:
        try:
            out["anonymous"] = check_permissions(body["anonymous"], "anonymous")
        except ValueError as exc:
            raise ApiError(400, "bad_request", str(exc), "anonymous") from None
    if "operator" in body:
        if type(body["operator"]) is not str or not body["operator"]:
            raise ApiError(400, "bad_request", "operator is the name of an account", "operator")
        out["operator"] = body["operator"]
    if "mint_bits" in body:
        b = body["mint_bits"]
        if type(b) is not int or not 1 <= b <= MAX_BITS:
            raise ApiError(400, "bad_request", f"mint_bits is an integer from 1 to {MAX_BITS}", "mint_bits")
        out["mint_bits"] = b
    for key in _CREDIT_OPTIONS:
        if key in body:
            amount = body[key]
            if type(amount) is not str and type(amount) is not int:
                raise ApiError(400, "bad_request", f"{key} is an amount of credit: a decimal string", key)
            try:
                out[key] = credit_text(to_credit(amount, key))
            except (InvalidValue, ArithmeticError, ValueError) as exc:
                raise ApiError(400, "invalid_value", f"{key} is an amount of credit: {exc}", key) from None
    return out


# The options of a space that are amounts of credit (docs/records.md, docs/active.md).
_CREDIT_OPTIONS = ("charge_rate", "creation_charge", "mint_amount")


class Hub:
    """The spaces of one server, their transactions and claims, and its clients."""

    def __init__(
        self,
        data_dir: Path | None,
        store: str,
        default_anonymous: frozenset[str],
        wire_limits: Limits,
        max_handles_per_client: int,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.default_anonymous = default_anonymous
        self.wire_limits = wire_limits
        self.max_handles = max_handles_per_client
        self.spaces: dict[str, SpaceInfo] = {}
        self.handles: dict[str, Handle] = {}
        self.clients: dict[str, ClientState] = {}
        self._ended: OrderedDict[str, _Ended] = OrderedDict()
        self._retired: dict[str, int] = {}
        self._lock = threading.RLock()
        self.started = False
        self.closed = False
        self.stopping = False
        self._lock_fd: int | None = None
        self._catalog: Catalog | None = None
        self._sweep_at = SWEEP_FROM
        self._id_key = secrets.token_bytes(32)
        self._id_count = itertools.count(1)

    # -- life cycle -------------------------------------------------------------

    @property
    def db_path(self) -> str:
        assert self.data_dir is not None
        return str(self.data_dir / "spaces.db")

    @property
    def old_catalog_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "spaces.json"

    def start(self) -> None:
        """Open the durable spaces of the catalog (once)."""
        with self._lock:
            if not self.started:
                self._start()

    def _start(self) -> None:
        self.started = True
        if self.data_dir is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        try:
            self._catalog = open_catalog(self.db_path)
            if self.old_catalog_path.exists():
                self._migrate_catalog(self._catalog)
            entries, self._retired = self._catalog.read()
            for name, entry in entries.items():
                self._open_stored(name, entry)
        except BaseException:
            self.close()
            raise

    def _migrate_catalog(self, catalog: Catalog) -> None:
        """Move the entries of ``spaces.json`` into the catalog table (again, if the
        server stopped before the file was renamed: the rows are the same)."""
        path = self.old_catalog_path
        try:
            old = orjson.loads(path.read_bytes())
            entries: dict[str, dict[str, Any] | None] = dict(old["spaces"])
            retired = {str(name): int(times) for name, times in old.get("retired", {}).items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeError(f"cannot read the catalog {path}: {exc}") from None
        for name in retired:
            entries.setdefault(name, None)
        catalog.put(entries, retired)
        os.replace(path, path.with_name(path.name + ".migrated"))
        logger.info("moved the catalog of %d spaces from %s into %s", len(old["spaces"]), path, self.db_path)

    def _lock_data_dir(self) -> None:
        """Hold an exclusive lock on ``<data_dir>/lock`` while the server runs, so a
        second server on the same directory fails at once with a clear error."""
        assert self.data_dir is not None
        path = self.data_dir / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.data_dir} is in use by another server") from None
        self._lock_fd = fd

    def _open_stored(self, name: str, entry: dict[str, Any]) -> None:
        space = open_space(
            self.db_path,
            entry["storage"],
            order=entry["order"],
            capacity=entry["capacity"],
            event_retention=entry["event_retention"],
            event_retention_bytes=entry.get("event_retention_bytes", EVENT_RETENTION_BYTES),
            limits=self.wire_limits,
        )
        self.spaces[name] = SpaceInfo(
            name,
            "durable",
            frozenset(entry["anonymous"]),
            entry["event_retention"],
            space._engine.event_retention_bytes,
            entry["storage"],
            space,
            AsyncSpace(space),
        )

    def _write_entry(self, info: SpaceInfo | None, name: str) -> None:
        """Write the catalog row of ``name``: ``info``'s entry, or none (deleted)."""
        assert self._catalog is not None
        entry = None
        if info is not None:
            entry = {
                "storage": info.storage,
                "order": info.space.order,
                "capacity": info.space.capacity,
                "event_retention": info.event_retention,
                "event_retention_bytes": info.event_retention_bytes,
                "anonymous": sorted(info.anonymous),
            }
        self._catalog.put({name: entry}, self._retired)

    def close(self) -> None:
        """Close every space (transactions and claims abort; the SQLite file is released)."""
        if self.closed:
            return
        self.closed = True
        self.stopping = True
        for info in list(self.spaces.values()):
            try:
                info.space.close()
            except Exception:
                logger.exception("closing space %s failed", info.name)
        self.handles.clear()
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock on the data directory
            self._lock_fd = None

    # -- spaces -----------------------------------------------------------------

    def get(self, name: str) -> SpaceInfo | None:
        if not self.started:
            self.start()
        return self.spaces.get(name)

    def create(self, name: str, body: dict[str, Any]) -> tuple[SpaceInfo, bool]:
        """The space ``name``, created with the options of ``body`` unless it exists;
        and whether it was created.  409 if it exists with other options.

        Opening a durable space reads its tuples: call it from a worker thread.
        """
        options = _parse_options(body)
        with self._lock:
            info = self.get(name)
            if info is not None:
                current = info.options()
                for key, value in options.items():
                    shown = sorted(value) if key == "anonymous" else value
                    if current[key] != shown:
                        raise ApiError(
                            409, "space_exists", f"space {name!r} exists with {key}={current[key]!r}", key
                        )
                return info, False
            if self.closed or self.stopping:
                raise ApiError(503, "shutting_down", "the server is shutting down")
            store = options.get("store", self.store)
            if store == "durable" and self.data_dir is None:
                raise ApiError(
                    400,
                    "bad_request",
                    "this server keeps no durable spaces (it has no data directory)",
                    "store",
                )
            kwargs: dict[str, Any] = {
                "order": options.get("order", "fifo"),
                "capacity": options.get("capacity"),
                "event_retention": options.get("event_retention", 10_000),
                "event_retention_bytes": options.get("event_retention_bytes", EVENT_RETENTION_BYTES),
                "limits": self.wire_limits,
                "charge_rate": options.get("charge_rate", "0"),
                "creation_charge": options.get("creation_charge", "0"),
                "operator": options.get("operator", DEFAULT_OPERATOR),
                "mint_amount": options.get("mint_amount", "0"),
                "mint_bits": options.get("mint_bits", DEFAULT_MINT_BITS),
            }
            anonymous = options.get("anonymous", self.default_anonymous)
            if options.get("clock") == "simulated":
                if store == "durable":
                    raise ApiError(
                        400,
                        "bad_request",
                        'a space on a simulated clock is kept in memory: "store": "memory"',
                        "clock",
                    )
                kwargs["clock"] = SimulatedClock()
            if store == "durable":
                generation = self._retired.get(name, 0)
                storage = name if generation == 0 else f"{name}~{generation}"
                space = open_space(self.db_path, storage, **kwargs)
            else:
                storage = name
                space = Space(**kwargs, name=name)
            info = SpaceInfo(
                name,
                store,
                anonymous,
                kwargs["event_retention"],
                kwargs["event_retention_bytes"],
                storage,
                space,
                AsyncSpace(space),
            )
            self.spaces[name] = info
            if store == "durable":
                try:
                    self._write_entry(info, name)
                except BaseException:
                    del self.spaces[name]
                    space.close()
                    raise
            return info, True

    def delete(self, info: SpaceInfo) -> None:
        """Delete a space and its tuples; calls waiting on it end (404).

        Waits for the durable store: call it from a worker thread.
        """
        with self._lock:
            if info.deleted:
                return
            info.deleted = True
            del self.spaces[info.name]
            space = info.space
            with space._lock:
                engine = space._engine
                for txn in list(engine._txns.values()):
                    engine.abort(txn)
            if info.store == "durable":
                # The file keeps the space's row; a space made anew under this name
                # is stored under a new name, so its options are its own.
                for arity in space.statistics()["arities"]:
                    space.take_all(Template((ANY,) * arity))
                self._retired[info.name] = self._retired.get(info.name, 0) + 1
                self._write_entry(None, info.name)
            space.close()
            for handle_id in [h.id for h in self.handles.values() if h.info is info]:
                self.forget(handle_id)

    # -- transactions and claims ------------------------------------------------------

    def client(self, key: str) -> ClientState:
        state = self.clients.get(key)
        if state is None:
            state = self.clients[key] = ClientState()
        return state

    def release_client(self, key: str) -> None:
        """Forget a client that holds nothing any more, so the table stays bounded."""
        state = self.clients.get(key)
        if state is not None and not state.waiting and not state.subscriptions and not state.handles:
            del self.clients[key]

    def check_handle_room(self, client: str) -> None:
        state = self.client(client)
        if len(state.handles) >= self.max_handles:
            for hid in list(state.handles):
                handle = self.handles.get(hid)
                if handle is None or handle.state != "active":
                    self.forget(hid)
            if len(state.handles) >= self.max_handles:
                raise limit_reached(
                    f"this client already holds {self.max_handles} transactions and claims",
                    "max_transactions",
                    self.max_handles,
                )

    def add(
        self, kind: str, info: SpaceInfo, tx: AsyncTransaction | RecordClaim, owner: str | None, client: str
    ) -> Handle:
        if len(self.handles) >= self._sweep_at:
            self.sweep()
            self._sweep_at = max(SWEEP_FROM, 2 * len(self.handles))
        handle = Handle(self._new_id(), kind, info, tx, owner, client)
        self.handles[handle.id] = handle
        self.client(client).handles.add(handle.id)
        return handle

    def _new_id(self) -> str:
        """An id nobody can guess, as ``secrets.token_urlsafe(24)`` gives, but made
        without a system call (one per take would be): the keyed BLAKE2b of a count."""
        count = next(self._id_count).to_bytes(8, "big")
        digest = hashlib.blake2b(count, key=self._id_key, digest_size=24).digest()
        return base64.urlsafe_b64encode(digest).decode()

    def forget(self, handle_id: str) -> None:
        handle = self.handles.pop(handle_id, None)
        if handle is None:
            return
        self._ended[handle_id] = _Ended(handle.kind, handle.state, handle.info.name)
        while len(self._ended) > ENDED_KEPT:
            self._ended.popitem(last=False)
        state = self.clients.get(handle.client)
        if state is not None:
            state.handles.discard(handle_id)
            self.release_client(handle.client)

    def find(self, kind: str, handle_id: str, info: SpaceInfo, owner: str | None) -> Handle | None:
        """The active transaction or claim ``handle_id`` of ``info`` held by ``owner``;
        None if there is none (an ended one is forgotten, see :meth:`ended_state`)."""
        handle = self.handles.get(handle_id)
        if handle is None or handle.info is not info or handle.kind != kind or handle.owner != owner:
            return None
        if handle.state != "active":
            self.forget(handle_id)
            return None
        return handle

    def ended_state(self, handle_id: str) -> str | None:
        ended = self._ended.get(handle_id)
        return None if ended is None else ended.state

    def sweep(self) -> None:
        """Forget transactions and claims that ended by themselves (their lease ran out)."""
        for hid in [h.id for h in self.handles.values() if h.state != "active"]:
            self.forget(hid)
