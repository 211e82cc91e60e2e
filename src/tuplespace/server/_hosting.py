"""The spaces a server hosts, and the transactions and claims its clients hold.

Durable spaces live in the server's store (``--store URL``: a SQLite file, or
Redis), whose catalog lists them with the options the server keeps for them
(event retention, anonymous permissions), one entry per space: creating or
deleting a space writes its entry alone (see :class:`tuplespace._store.Store`).
A store shared by several servers (Redis) is looked up for a space a server does
not know yet.  Memory spaces exist until the server stops.

The transactions and claims (see :mod:`tuplespace.server._claims`) clients hold
are known by unguessable ids (:class:`Handle`); a token's transaction can only be
used with that token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._aio import AsyncSpace, AsyncTransaction
from .._codec import to_wire
from .._credit import CREDIT_OPTIONS, to_credit
from .._engine import EVENT_RETENTION_BYTES, ORDERS
from .._errors import (
    Conflict,
    InvalidValue,
    LimitReached,
    NotSupported,
    SpaceClosed,
    StoreError,
)
from .._httpapi import MAX_API_FIRINGS, MAX_API_METHOD_LIMITS, MAX_EVENT_RETENTION_BYTES
from .._memory import MemoryHost
from .._methods import MAX_FIRINGS, METHOD_MEMORY, METHOD_MS, METHOD_STEPS
from .._mint import MAX_BITS
from .._recordstore import DEFAULT_BASE_URI, DEFAULT_MINT_BITS, DEFAULT_OPERATOR
from .._space import Space
from .._store import Hosted, SharedStore, Store, collector_paused
from .._values import Credit, Limits
from ..client._primitives import AsyncOpenable
from ._auth import check_permissions
from ._claims import KeptClaim, RecordClaim
from ._errors import coded

if TYPE_CHECKING:
    from .._federation import Node
    from ..stores import AsyncRedisSpace, AsyncRedisTransaction

__all__ = ["ENDED_KEPT", "MAX_EVENT_RETENTION_BYTES", "SWEEP_FROM", "Handle", "Hub", "SpaceInfo"]

logger = logging.getLogger("tuplespace.server")

ENDED_KEPT = 10_000  # ended transactions and claims remembered, to answer precisely
SWEEP_FROM = 1024  # handles held before those that ended by themselves are swept out
EVENT_RETENTION = 10_000  # events a space keeps unless it asks otherwise
FOLLOW_AGAIN = 1.0  # seconds before listening again for spaces dropped by other servers


@dataclass(eq=False)
class SpaceInfo:
    """A hosted space and its options: ``aspace`` is its asyncio face, ``space`` the
    :class:`~tuplespace.Space` under it, or None when its state lives elsewhere
    (Redis): then ``host`` names the store that lacks what needs one."""

    name: str
    store: str
    anonymous: frozenset[str]
    event_retention: int
    event_retention_bytes: int
    hosted: Hosted
    host: str
    clock: str = "system"  # "simulated": moved by an admin (POST /spaces/{space}/clock)
    deleted: bool = False

    @property
    def aspace(self) -> AsyncSpace | AsyncRedisSpace:
        face: AsyncSpace | AsyncRedisSpace = self.hosted.aspace
        return face

    @property
    def space(self) -> Space | None:
        return self.hosted.space

    def kept(self) -> AsyncRedisSpace:
        """The asyncio face of the space, kept in Redis (``space`` is None)."""
        face = self.aspace
        assert not isinstance(face, AsyncSpace)
        return face

    def embedded(self, what: str) -> Space:
        """The space's :class:`~tuplespace.Space`, for ``what`` (``"transactions"``) that
        needs one; NotSupported (501) naming the store when it has none."""
        if self.hosted.space is None:
            raise NotSupported(f"space {self.name!r} is kept in {self.host}, which has no {what} yet")
        return self.hosted.space

    async def transaction(self, lease: float | None) -> AsyncTransaction | AsyncRedisTransaction:
        """Begin a transaction on the space, embedded or kept in Redis."""
        tx = self.aspace.transaction(lease)
        if isinstance(tx, AsyncOpenable):
            await tx  # begun in Redis
        return tx

    def local(self, what: str) -> AsyncSpace:
        """The asyncio face of the space's :class:`~tuplespace.Space` (see :meth:`embedded`)."""
        self.embedded(what)
        face = self.hosted.aspace
        assert isinstance(face, AsyncSpace)
        return face

    def options(self) -> dict[str, Any]:
        space = self.hosted.space
        face = self.hosted.aspace if space is None else space
        if space is None:
            firing, step, limits = face.firing_charge, face.step_charge, face.rules.limits
        else:  # read without making the rules of a space that has none
            firing, step, limits = space.core.active
        return {
            "order": face.order,
            "capacity": face.capacity,
            "event_retention": self.event_retention,
            "event_retention_bytes": self.event_retention_bytes,
            "store": self.store,
            "anonymous": sorted(self.anonymous),
            "charge_rate": credit_text(face.charge_rate),  # kept in Redis too
            "creation_charge": credit_text(face.creation_charge),
            "clock": self.clock,
            "operator": face.operator,
            "mint_amount": credit_text(face.mint_amount),
            "mint_bits": face.mint_bits,
            "redirect_charge": credit_text(face.redirect_charge),
            "firing_charge": credit_text(firing),
            "step_charge": credit_text(step),
            "max_firings": limits.max_firings,
            "method_steps": limits.method_steps,
            "method_ms": limits.method_ms,
            "method_memory": limits.method_memory,
        }

    async def statistics(self) -> dict[str, Any]:
        """The space's statistics (see :meth:`tuplespace.Space.statistics`)."""
        if self.hosted.space is not None:
            return self.hosted.space.statistics()
        found: dict[str, Any] = await self.hosted.aspace.statistics()
        return found


def credit_text(amount: Credit) -> str:
    """An amount of credit as the text of its wire form (``"12.5"``)."""
    text: str = to_wire(amount)["$credit"]
    return text


@dataclass(eq=False)
class Handle:
    """A transaction or a claim: ``kind`` is ``"transaction"`` or ``"claim"``."""

    id: str
    kind: str
    info: SpaceInfo
    tx: AsyncTransaction | AsyncRedisTransaction | RecordClaim | KeptClaim
    owner: str | None  # the token's name; None: whoever has the id
    client: str

    @property
    def state(self) -> str:
        return self.tx.state

    @property
    def transaction(self) -> AsyncTransaction | AsyncRedisTransaction:
        """The transaction of a ``"transaction"`` handle."""
        assert self.kind == "transaction"
        return self.tx  # type: ignore[return-value]


@dataclass
class _Ended:
    kind: str
    state: str
    space: str
    owner: str | None


@dataclass
class ClientState:
    """What one client (a token, or an address without one) holds at the moment."""

    waiting: int = 0
    subscriptions: int = 0
    handles: set[str] = field(default_factory=set)


def parse_options(body: dict[str, Any]) -> dict[str, Any]:
    """The options of a PUT /spaces/{space} body, checked; InvalidValue (400) naming the field."""
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
        "max_firings",
        *MAX_API_METHOD_LIMITS,
        *CREDIT_OPTIONS,
    }
    for key in body:
        if key not in allowed:
            raise coded(
                InvalidValue(f"unknown option {key!r}; options are {', '.join(sorted(allowed))}", key),
                "bad_request",
            )
    out: dict[str, Any] = {}
    if "order" in body:
        if body["order"] not in ORDERS:
            raise coded(InvalidValue(f"order is one of {', '.join(ORDERS)}", "order"), "bad_request")
        out["order"] = body["order"]
    if "capacity" in body:
        c = body["capacity"]
        if c is not None and (type(c) is not int or c < 1):
            raise coded(InvalidValue("capacity is a positive integer or null", "capacity"), "bad_request")
        out["capacity"] = c
    if "event_retention" in body:
        r = body["event_retention"]
        if type(r) is not int or not 0 <= r <= 1_000_000:
            raise coded(
                InvalidValue("event_retention is an integer from 0 to 1000000", "event_retention"),
                "bad_request",
            )
        out["event_retention"] = r
    if "event_retention_bytes" in body:
        r = body["event_retention_bytes"]
        if type(r) is not int or not 0 <= r <= MAX_EVENT_RETENTION_BYTES:
            raise coded(
                InvalidValue(
                    f"event_retention_bytes is an integer from 0 to {MAX_EVENT_RETENTION_BYTES}",
                    "event_retention_bytes",
                ),
                "bad_request",
            )
        out["event_retention_bytes"] = r
    if "store" in body:
        if body["store"] not in ("durable", "memory"):
            raise coded(InvalidValue('store is "durable" or "memory"', "store"), "bad_request")
        out["store"] = body["store"]
    if "clock" in body:
        if body["clock"] not in ("system", "simulated"):
            raise coded(InvalidValue('clock is "system" or "simulated"', "clock"), "bad_request")
        out["clock"] = body["clock"]
    if "anonymous" in body:
        try:
            out["anonymous"] = check_permissions(body["anonymous"], "anonymous")
        except ValueError as exc:
            raise coded(InvalidValue(str(exc), "anonymous"), "bad_request") from None
    if "operator" in body:
        if type(body["operator"]) is not str or not body["operator"]:
            raise coded(InvalidValue("operator is the name of an account", "operator"), "bad_request")
        out["operator"] = body["operator"]
    if "mint_bits" in body:
        b = body["mint_bits"]
        if type(b) is not int or not 1 <= b <= MAX_BITS:
            raise coded(
                InvalidValue(f"mint_bits is an integer from 1 to {MAX_BITS}", "mint_bits"), "bad_request"
            )
        out["mint_bits"] = b
    if "max_firings" in body:
        m = body["max_firings"]
        if type(m) is not int or not 1 <= m <= MAX_API_FIRINGS:
            raise coded(
                InvalidValue(f"max_firings is an integer from 1 to {MAX_API_FIRINGS}", "max_firings"),
                "bad_request",
            )
        out["max_firings"] = m
    for key, most in MAX_API_METHOD_LIMITS.items():
        if key in body:
            m = body[key]
            if type(m) is not int or not 1 <= m <= most:
                raise coded(InvalidValue(f"{key} is an integer from 1 to {most}", key), "bad_request")
            out[key] = m
    for key in CREDIT_OPTIONS:
        if key in body:
            amount = body[key]
            if type(amount) is not str and type(amount) is not int:
                raise coded(
                    InvalidValue(f"{key} is an amount of credit: a decimal string", key), "bad_request"
                )
            try:
                out[key] = credit_text(to_credit(amount, key))
            except (InvalidValue, ArithmeticError, ValueError) as exc:
                raise InvalidValue(f"{key} is an amount of credit: {exc}", key) from None
    return out


class Hub:
    """The spaces of one server, their transactions and claims, and its clients.

    ``host`` is the server's store of durable spaces (None: it keeps none); spaces
    created with ``store: "memory"`` are kept in this process whatever it is.  With a
    ``node``, the node serves every space kept in this process over CoAP as well, and
    their records are named under its base URI.
    """

    def __init__(
        self,
        host: Store | None,
        store: str,
        default_anonymous: frozenset[str],
        wire_limits: Limits,
        max_handles_per_client: int,
        max_spaces: int,
        node: Node | None = None,
    ) -> None:
        self.host = host
        self.shared = host if isinstance(host, SharedStore) else None
        self.node = node
        self.memory = MemoryHost("memory:", wire_limits, DEFAULT_BASE_URI if node is None else node.base_uri)
        self.store = store
        self.default_anonymous = default_anonymous
        self.wire_limits = wire_limits
        self.max_handles = max_handles_per_client
        self.max_spaces = max_spaces
        self.spaces: dict[str, SpaceInfo] = {}
        self.handles: dict[str, Handle] = {}
        self.clients: dict[str, ClientState] = {}
        self._ended: OrderedDict[str, _Ended] = OrderedDict()
        self._changing: asyncio.Lock | None = None  # made on the event loop, when first needed
        self._starting = threading.Lock()
        self._following: asyncio.Task[None] | None = None
        self.started = False
        self.closed = False
        self.stopping = False
        self._sweep_at = SWEEP_FROM
        self._id_key = secrets.token_bytes(32)
        self._id_count = itertools.count(1)

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Open the spaces of the store's catalog (once).  Blocks: call it before
        serving, or from a worker thread."""
        with self._starting:
            if self.started:
                return
            self.started = True
            if self.host is None:
                return
            try:
                with collector_paused():  # thousands of spaces, that live on
                    for name, entry in self.host.catalog().items():
                        self._add(name, entry, self._open(self.host, name, entry), "durable")
            except BaseException:
                self.close()
                raise

    def _add(self, name: str, entry: dict[str, Any], hosted: Hosted, store: str) -> SpaceInfo:
        host = self.store_of(store)
        info = SpaceInfo(
            name,
            store,
            frozenset(entry.get("anonymous", self.default_anonymous)),  # a node's entries have none
            entry.get("event_retention", EVENT_RETENTION),
            entry.get("event_retention_bytes", EVENT_RETENTION_BYTES),
            hosted,
            host.label,
            entry.get("clock", "system"),
        )
        self.spaces[name] = info
        if self.node is not None and hosted.space is not None:
            self.node.add_space(name, hosted.space)
        return info

    def store_of(self, store: str) -> Store:
        """The store of a space kept in ``store`` (``"memory"`` or ``"durable"``)."""
        return self.memory if store == "memory" or self.host is None else self.host

    def _remove(self, info: SpaceInfo) -> None:
        info.deleted = True
        del self.spaces[info.name]
        if self.node is not None:
            self.node.remove_space(info.name)

    def close(self) -> None:
        """Close every space kept in this process (transactions and claims abort; the
        SQLite file is released) and the store; see :meth:`aclose`."""
        if self.closed:
            return
        self.closed = True
        self.stopping = True
        for info in list(self.spaces.values()):
            if info.space is not None:
                try:
                    info.space.close()
                except Exception:
                    logger.exception("closing space %s failed", info.name)
        self.handles.clear()
        if self.host is not None:
            self.host.close()

    async def aclose(self) -> None:
        """Close every space, those kept elsewhere (Redis) on the event loop, then the rest
        (:meth:`close`, in a worker thread)."""
        if self.closed:
            return
        if self._following is not None:
            self._following.cancel()
            await asyncio.wait([self._following])
        for info in list(self.spaces.values()):
            if info.space is None:
                try:
                    await info.aspace.close()
                except Exception:
                    logger.exception("closing space %s failed", info.name)
        await asyncio.to_thread(self.close)

    # -- spaces -----------------------------------------------------------------

    async def get(self, name: str) -> SpaceInfo | None:
        """The space ``name``: one this server hosts, or, with a store shared by other
        servers, one they added to its catalog (it is opened here then)."""
        info = self.spaces.get(name)
        if info is not None:
            return info
        if not self.started:
            await asyncio.to_thread(self.start)
            info = self.spaces.get(name)
        if info is None and self.shared is not None and not self.stopping:
            async with self._lock():
                info = self.spaces.get(name)
                if info is None:
                    info = await asyncio.to_thread(self._adopt, self.shared, name)
        return info

    def _adopt(self, host: SharedStore, name: str, entry: dict[str, Any] | None = None) -> SpaceInfo | None:
        """Host here the space ``name`` of the shared catalog (its ``entry``, else looked up)."""
        entry = entry or host.lookup(name)
        if entry is None:
            return None
        return self._add(name, entry, self._open(host, name, entry), "durable")

    @staticmethod
    def _open(host: Store, name: str, entry: dict[str, Any]) -> Hosted:
        """The space ``name`` of the catalog's ``entry``."""
        try:
            hosted, _ = host.open(name, entry, False)
        except ValueError as exc:  # the space in the store and its entry disagree
            raise StoreError(f"{host.label}: space {name!r}: {exc}") from None
        return hosted

    async def refresh(self) -> None:
        """Open here the spaces that other servers sharing the store added to its catalog,
        and forget those they dropped."""
        host = self.shared
        if host is None or self.stopping:
            return
        async with self._lock():
            entries = await asyncio.to_thread(host.catalog)
            for name, entry in entries.items():
                if name not in self.spaces:
                    await asyncio.to_thread(self._adopt, host, name, entry)
            for info in [i for i in self.spaces.values() if i.store == "durable" and i.name not in entries]:
                await self._forget_space(info)

    def follow(self) -> None:
        """Forget, as they go, the spaces other servers drop from a shared catalog (on
        the event loop, until :meth:`aclose`)."""
        if self.shared is not None and self._following is None:
            self._following = asyncio.get_running_loop().create_task(self._follow(self.shared))

    async def _follow(self, host: SharedStore) -> None:
        while True:
            try:
                async for name in host.dropped():
                    info = self.spaces.get(name)
                    if info is not None and info.store == "durable":
                        async with self._lock():
                            await self._forget_space(info)
            except Exception as exc:  # the store went away: listen again in a while
                logger.warning("cannot hear of spaces dropped from %s: %s", host.label, exc)
                await asyncio.sleep(FOLLOW_AGAIN)

    async def _forget_space(self, info: SpaceInfo) -> None:
        """Stop hosting ``info`` here (another server dropped it): calls waiting on it end (404)."""
        self._remove(info)
        await info.aspace.close()
        for handle_id in [h.id for h in self.handles.values() if h.info is info]:
            self.forget(handle_id)

    def _lock(self) -> asyncio.Lock:
        if self._changing is None:
            self._changing = asyncio.Lock()
        return self._changing

    async def create(self, name: str, body: dict[str, Any]) -> tuple[SpaceInfo, bool]:
        """The space ``name``, created with the options of ``body`` unless it exists;
        and whether it was created.  409 if it exists with other options."""
        options = parse_options(body)
        info = await self.get(name)
        async with self._lock():
            info = info or self.spaces.get(name)
            if info is None:
                if self.closed or self.stopping:
                    raise SpaceClosed("the server is shutting down")
                if len(self.spaces) >= self.max_spaces:
                    raise LimitReached(
                        f"this server hosts {len(self.spaces)} spaces, the most it may create (max_spaces)",
                        limit="max_spaces",
                        maximum=self.max_spaces,
                    )
                info, created = await self._create(name, options)
                if created:
                    return info, True
            current = info.options()
            for key, value in options.items():
                shown = sorted(value) if key == "anonymous" else value
                if current[key] != shown:
                    raise coded(
                        Conflict(f"space {name!r} exists with {key}={current[key]!r}"), "space_exists", key
                    )
            return info, False

    async def _create(self, name: str, options: dict[str, Any]) -> tuple[SpaceInfo, bool]:
        store = options.get("store", self.store)
        if store == "durable" and self.host is None:
            raise coded(
                InvalidValue("this server keeps no durable spaces (it has no store for them)", "store"),
                "bad_request",
            )
        host = self.store_of(store)
        entry: dict[str, Any] = {
            "order": options.get("order", "fifo"),
            "capacity": options.get("capacity"),
            "event_retention": options.get("event_retention", EVENT_RETENTION),
            "event_retention_bytes": options.get("event_retention_bytes", EVENT_RETENTION_BYTES),
            "charge_rate": options.get("charge_rate", "0"),
            "creation_charge": options.get("creation_charge", "0"),
            "operator": options.get("operator", DEFAULT_OPERATOR),
            "mint_amount": options.get("mint_amount", "0"),
            "mint_bits": options.get("mint_bits", DEFAULT_MINT_BITS),
            "redirect_charge": options.get("redirect_charge", "0"),
            "firing_charge": options.get("firing_charge", "0"),
            "step_charge": options.get("step_charge", "0"),
            "max_firings": options.get("max_firings", MAX_FIRINGS),
            "method_steps": options.get("method_steps", METHOD_STEPS),
            "method_ms": options.get("method_ms", METHOD_MS),
            "method_memory": options.get("method_memory", METHOD_MEMORY),
            "anonymous": sorted(options.get("anonymous", self.default_anonymous)),
        }
        if options.get("clock") == "simulated":
            if not host.simulated_clock:
                raise coded(
                    InvalidValue(f'{host.label} keeps no simulated clock: "store": "memory" does', "clock"),
                    "bad_request",
                )
            entry["clock"] = "simulated"

        try:
            hosted, theirs = await asyncio.to_thread(host.open, name, entry, True)
        except ValueError as exc:
            raise coded(InvalidValue(f"{host.label}: {exc}"), "bad_request") from None
        return self._add(name, theirs or entry, hosted, store), theirs is None

    async def delete(self, info: SpaceInfo) -> None:
        """Delete a space and its tuples, through its store; calls waiting on it end (404)."""
        async with self._lock():
            if info.deleted:
                return
            self._remove(info)
            space = info.space
            host = self.store_of(info.store)

            def drop() -> None:
                if space is not None:
                    with space.core.lock:
                        space.core.abort_transactions()
                host.drop(info.name, info.hosted)

            if space is None:  # its state lives elsewhere: the calls waiting here end first
                await info.aspace.close()
            await asyncio.to_thread(drop)
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
                raise LimitReached(
                    f"this client already holds {self.max_handles} transactions and claims",
                    limit="max_transactions",
                    maximum=self.max_handles,
                )

    def add(
        self,
        kind: str,
        info: SpaceInfo,
        tx: AsyncTransaction | AsyncRedisTransaction | RecordClaim | KeptClaim,
        owner: str | None,
        client: str,
        handle_id: str | None = None,
    ) -> Handle:
        """Hold ``tx`` for ``client``, under ``handle_id`` (made by :meth:`new_id`; by
        default a new one)."""
        if len(self.handles) >= self._sweep_at:
            self.sweep()
            self._sweep_at = max(SWEEP_FROM, 2 * len(self.handles))
        handle = Handle(handle_id or self.new_id(), kind, info, tx, owner, client)
        self.handles[handle.id] = handle
        self.client(client).handles.add(handle.id)
        return handle

    def new_id(self, prefix: str = "") -> str:
        """An id nobody can guess after ``prefix``, as ``secrets.token_urlsafe(24)``
        gives, but made without a system call (one per take would be): the keyed BLAKE2b
        of a count."""
        count = next(self._id_count).to_bytes(8, "big")
        digest = hashlib.blake2b(count, key=self._id_key, digest_size=24).digest()
        return prefix + base64.urlsafe_b64encode(digest).decode()

    def forget(self, handle_id: str) -> None:
        handle = self.handles.pop(handle_id, None)
        if handle is None:
            return
        self._ended[handle_id] = _Ended(handle.kind, handle.state, handle.info.name, handle.owner)
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

    def ended_state(self, handle_id: str, owner: str | None) -> str | None:
        """How the transaction or claim ``handle_id`` held by ``owner`` ended
        (``committed``, ``aborted``...), None if it is not one of ``owner``'s that
        ended lately: how another's ended is not told."""
        ended = self._ended.get(handle_id)
        return None if ended is None or ended.owner != owner else ended.state

    def sweep(self) -> None:
        """Forget transactions and claims that ended by themselves (their lease ran out)."""
        for hid in [h.id for h in self.handles.values() if h.state != "active"]:
            self.forget(hid)
