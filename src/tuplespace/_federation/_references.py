"""References across nodes: records holding records of other nodes, kept as soft state.

A field of a node's record whose value is the ``coap://`` address of a record of
another node (or another space) holds that record.  Before the field is set the
holder's node registers the reference with the held record's node (``POST /$refs``,
one entry), which refuses it when it would close a cycle and answers the held
record's level.  Every ``refresh_period`` seconds the holder's node refreshes all
its references, batched per peer node (``REFS_PER_REQUEST`` entries a request); the
peer counts each holder in ``$refcount`` until ``reference_lifetime`` seconds pass
without a refresh.  See docs/federation.md ("Containment across nodes").

``POST /$refs`` carries ``{"from": <holder node's base URI>, "refs": [[holder path,
holder level, held path], ...]}`` in CBOR, paths relative to the base URIs of their
nodes; the answer (2.04) is an array with, for each entry, the held record's level
or ``[status, error body]`` (the HTTP API's JSON error, as bytes).  ``POST /$reach``
asks a node to search below some of its records for a holder, to refuse cycles that
go through several nodes.  ``GET /$sys/…`` renders the node's system records, which
may be observed: :meth:`References.follow` says when they change.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from .._errors import (
    ContainmentCycle,
    InvalidValue,
    LimitReached,
    NotFound,
    RecordNotFound,
    TupleSpaceError,
    Unreachable,
)
from .._recordhandles import Record
from .._values import URI, UTC, Credit, Map, Value, handle_address
from ..server._errors import ApiError, api_error
from ._cbor import CBOR, decode_cbor, encode_cbor
from ._endpoint import Address
from ._message import ACCEPT, CHANGED, CONTENT_FORMAT, GET, NOT_FOUND, POST, URI_QUERY, Message
from ._node import peer_of
from ._remote import error_of, http_status, moved_to
from ._resources import answer_value, content_format, error_message, moved_away

if TYPE_CHECKING:
    from .._space import Space
    from ._node import Node

__all__ = ["REFS_PER_REQUEST", "References"]

log = logging.getLogger("tuplespace")

REFS_PER_REQUEST = 256
"""References in one refresh request: a request is a few blocks of 1 KiB."""
MAX_HOPS = 16
"""Nodes a search for a cycle goes through, one after another, before it gives up."""
CLOCK_PERIOD = 1.0
"""Seconds between the notifications of ``$sys/clock`` while it is observed."""
LIMIT_REACHED = 4 << 5 | 29  # 4.29, the code of LimitReached
_CBOR = bytes((CBOR,))


class _Peer:
    """A node this one holds references at, is held by, or was told of (peers.json)."""

    __slots__ = ("address", "answered", "configured", "failed", "heard")

    def __init__(self, configured: bool = False) -> None:
        self.configured = configured
        self.address: tuple[Address, list[tuple[int, bytes]]] | None = None  # resolved on first use
        self.answered: float | None = None  # wall time of its last answer to a refresh
        self.failed = False  # its last refresh went unanswered
        self.heard: float | None = None  # wall time of its last refresh of our records


class References:
    """The references of a node's records to other nodes' records, and theirs to ours."""

    def __init__(
        self,
        node: Node,
        *,
        refresh_period: float,
        reference_lifetime: float,
        max_references: int,
        max_peers: int,
        peers: Iterable[str],
    ) -> None:
        for name, seconds in (("refresh_period", refresh_period), ("reference_lifetime", reference_lifetime)):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < 1e9:
                raise InvalidValue(f"{name} is a positive number of seconds, got {seconds!r}", name)
        for name, count in (("max_references", max_references), ("max_peers", max_peers)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InvalidValue(f"{name} is a positive int, got {count!r}", name)
        self._node = node
        self.refresh_period = float(refresh_period)
        self.reference_lifetime = float(reference_lifetime)
        self._max_references = max_references
        self._max_peers = max_peers
        self._known: dict[str, tuple[int, float]] = {}  # held address -> (level, registered at)
        self._peers: dict[str, _Peer] = {}
        self._busy: set[str] = set()  # peers whose refresh is under way
        # What follows the changes of each observed $sys record (on the node's loop),
        # and what its observers were last told of the peers and of the spaces.
        self._followers: dict[str, Callable[[tuple[str, ...] | None], None]] = {}
        self._shown_peers: dict[str, tuple[bool, bool]] = {}
        self._shown_spaces: tuple[str, ...] = ()
        self.id = secrets.token_hex(8)
        self.started = datetime.datetime.now(UTC)
        for base in peers:
            self._peers[_base_of(base)] = _Peer(configured=True)

    # -- the holder's side ---------------------------------------------------------

    def attach(self, space: Space) -> None:
        """Let ``space``'s records hold records of other nodes and move to them.  A
        space read back from its store holds again the records of other nodes its
        fields name (soft state: their nodes count them again at the next refresh)."""
        space.core.attach_references(
            lambda holder, value: self._refer(space, holder, value),
            lambda record, address, lease: self._move_away(space, record, address, lease),
        )
        store = space.core.engine.records

        def far(text: str) -> bool:
            return (
                text.startswith("coap://")
                and not text.startswith(store.prefix)
                and _split(text)[1] is not None
            )

        held = space.core.call(store.hold_again, far)
        now = time.monotonic()
        for address in held:
            self._known.setdefault(address, (0, now))
        store.remote_level = self._level

    def _move_away(self, space: Space, record: Record, address: str, redirect_lease: float | None) -> None:
        """Move ``record`` to ``address`` on another node: create it there with its
        fields, the lease it has left and the credit it holds (``carried``: it enters
        that space, and leaves this one), let the records here that contained it hold
        it there, then remove it here, its path redirecting to ``address`` for
        ``redirect_lease`` seconds.  What the other space refuses (a creation charge
        its default account cannot pay: InsufficientCredit) leaves the record here."""
        store = space.core.engine.records
        if address.startswith(store.prefix):
            record.move(address[len(store.prefix) :], redirect_lease)
            return
        base, path = _split(address)
        if path is None:
            raise InvalidValue(f"a record moves to coap://host:port/spaces/<space>/<path>, not {address!r}")
        peer = self._new_peer(base)
        node = self._node
        fields, lifetime, credit = record.all(), record.get("$lifetime"), record.get("$credit")
        holders: list[tuple[str, int]] = space.core.call(store.holders_here, record.rid)
        caps: list[tuple[str, frozenset[str], float | None]] = space.core.call(
            store.capabilities_of, record.rid
        )
        where, options = node.call(peer_of(address))
        options = [*options, (CONTENT_FORMAT, _CBOR), (ACCEPT, _CBOR)]
        if lifetime is not None and not store.charge_rate:  # the lease it has left
            options.append((URI_QUERY, f"lease={lifetime!r}".encode()))
        carried = credit if isinstance(credit, Credit) and credit else None
        if carried is not None:  # where credit pays for storage, its lifetime is its credit's
            options += [(URI_QUERY, f"credit={carried}".encode()), (URI_QUERY, b"carried=1")]
        options.sort(key=lambda option: option[0])  # in option number order
        created = node.endpoint.request_blocking(where, POST, options, encode_cbor(fields), node.timeout)
        if created.code >> 5 != 2:
            raise error_of(http_status(created.code), created.payload, address)
        copies = {}  # its capabilities, made again there
        for token, ops, left in caps:
            query = [(URI_QUERY, f"capability={','.join(sorted(ops))}".encode())]
            if left is not None:
                query.append((URI_QUERY, f"lease={left!r}".encode()))
            asked = [*(o for o in options if o[0] != URI_QUERY), *query]
            asked.sort(key=lambda option: option[0])
            made = node.endpoint.request_blocking(where, POST, asked, b"", node.timeout)
            if made.code >> 5 == 2:
                copies[token] = str(decode_cbor(made.payload))
            else:
                log.warning("%s: a capability could not be made again: %r", address, made.payload[:200])
        if holders:
            entries = [(holder[len(node.base_uri) :], level, path) for holder, level in holders]
            answers = node.call(self._send(base, peer, entries))
            level = next((a for a in answers if isinstance(a, int) and not isinstance(a, bool)), 0)
            self._known[address] = (level, time.monotonic())
        space.core.call(store.move_away, record.rid, address, redirect_lease, copies, carried)

    def _level(self, address: str) -> int | None:
        known = self._known.get(address)
        return None if known is None else known[0]

    def _refer(self, space: Space, holder: Record | str, value: object) -> None:
        """Register with its node the reference that storing ``value`` in ``holder``
        (a record, or the path of one being created) makes, if it is the address of
        a record of another node or space; raises what the peer refused it with."""
        address = handle_address(value) or value
        if type(address) is not URI:
            return
        text = str(address)
        store = space.core.engine.records
        if not text.startswith("coap://"):
            return
        if text.startswith(store.prefix):
            self._below_here(space, holder, text[len(store.prefix) :])
            return
        base, path = _split(text)
        if path is None:
            return  # not a record's own address (a capability, the root, another resource)
        holder_address, level = _holder(space, holder)
        node = self._node
        entry = (holder_address[len(node.base_uri) :], level, path)
        (answer,) = node.call(self._send(base, self._new_peer(base), [entry]))
        if isinstance(answer, tuple):
            status, body = answer
            raise error_of(int(status), bytes(body), text)
        self._known[text] = (int(answer), time.monotonic())

    def _below_here(self, space: Space, holder: Record | str, path: str) -> None:
        """Raise ContainmentCycle if the record at ``path`` of ``space`` holds ``holder``
        through records of other nodes (the space checks the rest as it sets)."""
        store = space.core.engine.records
        if path.startswith("$") or not store.holds_elsewhere():
            return
        holder_address, level = _holder(space, holder)
        further, prune = space.core.call(store.below, path, holder_address, level, False)
        if further:
            through = self._node.call(self._reach(holder_address, prune, further, MAX_HOPS))
            if through is not None:
                raise _cycle(holder_address, store.prefix + path, through)

    def _new_peer(self, base: str) -> _Peer:
        """:meth:`_peer`, raising InvalidValue past ``max_peers``."""
        peer = self._peer(base)
        if peer is None:
            raise InvalidValue(f"this node already knows {self._max_peers} peers (max_peers)", "max_peers")
        return peer

    def _peer(self, base: str) -> _Peer | None:
        peer = self._peers.get(base)
        if peer is None:
            if len(self._peers) >= self._max_peers:
                return None
            peer = self._peers[base] = _Peer()
        return peer

    async def _send(self, base: str, peer: _Peer, entries: list[tuple[str, int, str]]) -> tuple[Value, ...]:
        """One ``POST /$refs`` of ``entries`` to the node at ``base``; its answers."""
        node = self._node
        if peer.address is None:
            peer.address = await peer_of(base + "$refs")
        where, options = peer.address
        payload = encode_cbor(Map({"from": node.base_uri, "refs": tuple(entries)}))
        options = [*options, (CONTENT_FORMAT, _CBOR), (ACCEPT, _CBOR)]
        try:
            request = node.endpoint.request(where, POST, options, payload)
            answer = await asyncio.wait_for(request, node.timeout)
        except (TimeoutError, Unreachable) as exc:
            peer.failed = True
            self._peers_moved((base,))
            raise Unreachable(f"{base}: {exc or 'no answer'}") from None
        peer.failed = False
        peer.answered = time.time()
        self._peers_moved((base,))
        if answer.code >> 5 != 2:
            raise error_of(http_status(answer.code), answer.payload, base)
        answers = decode_cbor(answer.payload)
        if not isinstance(answers, tuple) or len(answers) != len(entries):
            raise TupleSpaceError(f"{base} answered {len(entries)} references with {answers!r}")
        return answers

    async def run(self) -> None:
        """Refresh every ``refresh_period`` seconds, until cancelled: each round on its
        own, so that a peer slow to answer delays neither the others nor the next round
        (which leaves it out while its refresh is under way)."""
        rounds: set[asyncio.Task[int]] = set()
        while True:
            await asyncio.sleep(self.refresh_period)
            self._peers_moved(None)  # a peer silent for reference_lifetime
            task = asyncio.create_task(self.refresh())
            rounds.add(task)
            task.add_done_callback(self._round_done(rounds))

    def _round_done(self, rounds: set[asyncio.Task[int]]) -> Callable[[asyncio.Task[int]], None]:
        def done(task: asyncio.Task[int]) -> None:
            rounds.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:  # the next round tries again
                log.error("refreshing the references of %s failed", self._node.base_uri, exc_info=error)

        return done

    async def refresh(self) -> int:
        """Refresh every reference this node's records hold, batched per peer, and
        probe the configured peers that hold none; the number of requests sent."""
        node = self._node
        by_peer: dict[str, list[tuple[Space, tuple[int, str, str, int, str]]]] = {}
        held: set[str] = set()
        for space in list(node.spaces.values()):
            try:
                with space.core.lock:
                    references = space.core.engine.records.held_remotely()
            except TupleSpaceError:
                continue  # closed
            for reference in references:
                base, path = _split(reference[4])
                if path is not None and self._peer(base) is not None:
                    by_peer.setdefault(base, []).append((space, reference))
                    held.add(reference[4])
        now = time.monotonic()
        for address, (_, at) in list(self._known.items()):
            if address not in held and at < now - self.refresh_period:
                del self._known[address]
        for base, peer in list(self._peers.items()):  # other threads add peers
            if peer.configured and base not in by_peer:
                by_peer[base] = []
        # The peers at once, but not one whose refresh is still under way.
        busy = self._busy
        sent = await asyncio.gather(
            *(self._refresh_at(base, batch) for base, batch in by_peer.items() if base not in busy)
        )
        return sum(sent)

    async def _refresh_at(self, base: str, batch: list[tuple[Space, tuple[int, str, str, int, str]]]) -> int:
        """Refresh the references of ``batch`` at the node ``base``, in requests of
        ``REFS_PER_REQUEST``, one after another; the number of requests sent."""
        self._busy.add(base)
        try:
            return await self._refresh_chunks(base, self._peers[base], batch)
        finally:
            self._busy.discard(base)

    async def _refresh_chunks(
        self, base: str, peer: _Peer, batch: list[tuple[Space, tuple[int, str, str, int, str]]]
    ) -> int:
        node = self._node
        sent = 0
        for start in range(0, max(len(batch), 1), REFS_PER_REQUEST):
            chunk = batch[start : start + REFS_PER_REQUEST]
            entries = [
                (holder[len(node.base_uri) :], level, _split(far)[1] or "")
                for _, (_, _, holder, level, far) in chunk
            ]
            sent += 1
            try:
                answers = await self._send(base, peer, entries)
            except TupleSpaceError as exc:
                log.info("refreshing %d references at %s failed: %s", len(entries), base, exc)
                break  # the peer is not answering: try again next period
            self._answered(chunk, answers)
        return sent

    def _answered(
        self, chunk: list[tuple[Space, tuple[int, str, str, int, str]]], answers: tuple[Value, ...]
    ) -> None:
        for (space, (rid, tag, _, _, far)), answer in zip(chunk, answers, strict=True):
            level: int | None = None
            gone = False
            moved = None
            if isinstance(answer, int) and not isinstance(answer, bool):
                level = answer
                self._known[far] = (answer, time.monotonic())
            elif isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], bytes):
                moved = moved_to(Message(code=NOT_FOUND, payload=answer[1])) if answer[0] == 404 else None
                gone = moved is None and answer[0] == 404
                log.info("%s holds %s no more: %s", space.name, far, answer[1][:200].decode(errors="replace"))
            try:
                space.core.call(space.core.engine.records.remote_answered, rid, tag, far, level, gone, moved)
            except TupleSpaceError:
                return  # the space closed

    # -- the held side ---------------------------------------------------------------

    def answer(self, request: Message) -> Message | Awaitable[Message]:
        """``POST /$refs``: hold or refresh the entries' records for ``reference_lifetime``."""
        if request.code != POST:
            return _error(405, "method_not_allowed", "/$refs takes POST")
        refused = _not_cbor(request, "/$refs")
        if refused is not None:
            return refused
        try:
            body = decode_cbor(request.payload)
            holder_base = body["from"]
            entries = body["refs"]
            if not isinstance(holder_base, str) or not isinstance(entries, tuple):
                raise TypeError
            holder_base = _base_of(holder_base)
        except (TupleSpaceError, KeyError, TypeError):
            return _error(
                400, "bad_request", '/$refs takes {"from": <base URI>, "refs": [[path, level, path]]}'
            )
        peer = self._peer(holder_base)
        if peer is not None:
            peer.heard = time.time()
            self._peers_moved((holder_base,))
        return self._answers(holder_base, entries)

    async def _answers(self, holder_base: str, entries: tuple[Value, ...]) -> Message:
        answers = [await self._hold(holder_base, entry) for entry in entries]
        return Message(code=CHANGED, options=[(CONTENT_FORMAT, _CBOR)], payload=encode_cbor(tuple(answers)))

    async def _hold(self, holder_base: str, entry: Value) -> Value:
        try:
            if not (
                isinstance(entry, tuple)
                and len(entry) == 3
                and isinstance(entry[0], str)
                and type(entry[1]) is int
                and isinstance(entry[2], str)
            ):
                raise InvalidValue("a reference is [holder path, holder level, held path]")
            holder, level, held = entry
            segments = held.split("/", 2)
            if len(segments) < 3 or segments[0] != "spaces":
                raise InvalidValue(f"{held!r} is not spaces/<space>/<path>")
            space = self._node.spaces.get(segments[1])
            if space is None:
                raise NotFound(f"this node has no space {segments[1]!r}")
            store = space.core.engine.records
            holder_address = holder_base + holder
            try:
                with space.core.lock:
                    further, prune = store.below(segments[2], holder_address, level, refresh=True)
                if further:  # records of other nodes below, which may hold the holder
                    through = await self._reach(holder_address, prune, further, MAX_HOPS)
                    if through is not None:
                        with space.core.lock:
                            store.let_go(segments[2], holder_address)
                        raise _cycle(holder_address, self._node.base_uri + held, through)
                with space.core.lock:
                    found: int = store.hold_for(
                        holder_address,
                        level,
                        segments[2],
                        self.reference_lifetime,
                        self._max_references,
                    )
                    space.core.start_timer()
            except RecordNotFound:
                moved = moved_away(space, segments[2])
                if moved is None:
                    raise
                return (moved.status, orjson.dumps(moved.body()))
            return found
        except TupleSpaceError as exc:
            error = api_error(exc)
            return (error.status, orjson.dumps(error.body()))

    # -- cycles through other nodes ------------------------------------------------------

    async def _reach(self, holder: str, level: int, addresses: list[str], hops: int) -> str | None:
        """The address of a record among ``addresses`` (records of any node, this one
        too) or below them that holds ``holder`` (at ``level``), searched by their
        nodes, ``hops`` nodes deep at most; None if none does.  A node that does not
        answer is taken as holding none (its references lapse where it is gone)."""
        by_base: dict[str, list[str]] = {}
        for address in dict.fromkeys(addresses):
            base, path = _split(address)
            if path is not None:
                by_base.setdefault(base, []).append(path)
        for base, paths in by_base.items():
            if base == self._node.base_uri:
                found = await self._search(holder, level, paths, hops)
            else:
                found = await self._ask(base, holder, level, paths, hops)
            if found is not None:
                return found
        return None

    async def _search(self, holder: str, level: int, paths: list[str], hops: int) -> str | None:
        """:meth:`_reach` for records of this node (``spaces/<space>/<path>``)."""
        further: list[str] = []
        for path in paths:
            _, name, rest = path.split("/", 2)
            space = self._node.spaces.get(name)
            if space is None:
                continue
            try:
                with space.core.lock:
                    further += space.core.engine.records.below(rest, holder, level, refresh=False)[0]
            except ContainmentCycle:
                return self._node.base_uri + path
            except TupleSpaceError:
                continue  # gone meanwhile
        if not further:
            return None
        if hops <= 0:
            raise LimitReached(
                f"the records below go through more than {MAX_HOPS} nodes: a cycle cannot be ruled out",
                limit="hops",
                maximum=MAX_HOPS,
            )
        return await self._reach(holder, level, further, hops - 1)

    async def _ask(self, base: str, holder: str, level: int, paths: list[str], hops: int) -> str | None:
        """:meth:`_reach` asked of the node at ``base`` (``POST /$reach``)."""
        node = self._node
        where, options = await peer_of(base + "$reach")
        options = [*options, (CONTENT_FORMAT, _CBOR), (ACCEPT, _CBOR)]
        body = Map({"holder": holder, "level": level, "records": tuple(paths), "hops": hops})
        try:
            answer = await asyncio.wait_for(
                node.endpoint.request(where, POST, options, encode_cbor(body)), node.timeout
            )
        except (TimeoutError, Unreachable) as exc:
            log.info("%s did not answer a search for %s: %s", base, holder, exc or "no answer")
            return None
        if answer.code == LIMIT_REACHED:
            raise error_of(429, answer.payload, base)
        found = decode_cbor(answer.payload) if answer.code >> 5 == 2 else None
        return found if isinstance(found, str) else None

    def reach(self, request: Message) -> Message | Awaitable[Message]:
        """``POST /$reach``: whether one of the records (``spaces/<space>/<path>``) holds
        ``holder``, at ``level``, searching ``hops`` nodes further: the address of the
        record through which it does, or null."""
        if request.code != POST:
            return _error(405, "method_not_allowed", "/$reach takes POST")
        refused = _not_cbor(request, "/$reach")
        if refused is not None:
            return refused
        try:
            body = decode_cbor(request.payload)
            holder, level, paths, hops = body["holder"], body["level"], body["records"], body["hops"]
            if not (
                isinstance(holder, str)
                and type(level) is int
                and type(hops) is int
                and isinstance(paths, tuple)
                and all(isinstance(p, str) and p.count("/") >= 2 and p.startswith("spaces/") for p in paths)
            ):
                raise TypeError
        except (TupleSpaceError, KeyError, TypeError):
            shape = '{"holder": <address>, "level": <int>, "records": [spaces/<space>/<path>], "hops": <int>}'
            return _error(400, "bad_request", f"/$reach takes {shape}")
        return self._reached(holder, level, list(paths), min(hops, MAX_HOPS))

    async def _reached(self, holder: str, level: int, paths: list[str], hops: int) -> Message:
        try:
            found = await self._search(holder, level, paths, hops)
        except LimitReached as exc:
            return error_message(api_error(exc))
        return Message(code=CHANGED, options=[(CONTENT_FORMAT, _CBOR)], payload=encode_cbor(found))

    # -- $sys ----------------------------------------------------------------------

    def system(self, request: Message) -> Message:
        """``GET /$sys/<record>[/<tag>]``: the node's system records (``node``,
        ``peers``, ``clock``), rendered when asked; ``GET /$sys`` lists them."""
        if request.code != GET:
            return _error(405, "method_not_allowed", "the $sys records are read with GET")
        try:
            accept = content_format(request.number(ACCEPT), 406)
        except ApiError as exc:
            return error_message(exc)
        path = request.path[1:]
        records = self._records()
        if not path:
            base = self._node.base_uri
            return answer_value(Map({name: URI(f"{base}$sys/{name}") for name in records}), accept)
        make = records.get(path[0])
        if make is None or len(path) > 2:
            return _error(404, "record_not_found", f"$sys has the records {', '.join(records)}")
        fields = make()
        if len(path) == 1:
            return answer_value(fields, accept)
        if path[1] not in fields:
            return _error(404, "field_not_found", f"$sys/{path[0]} has no field {path[1]!r}")
        return answer_value(fields[path[1]], accept)

    def _records(self) -> dict[str, Callable[[], Map]]:
        return {"node": self._node_record, "peers": self._peers_record, "clock": _clock_record}

    def observable(self, path: tuple[str, ...]) -> bool:
        """Whether ``path`` (``(record,)`` or ``(record, tag)``) names a system record
        or one of its fields, which may then be observed."""
        make = self._records().get(path[0]) if 1 <= len(path) <= 2 else None
        return make is not None and (len(path) == 1 or path[1] in make())

    def follow(self, record: str, changed: Callable[[tuple[str, ...] | None], None]) -> Callable[[], None]:
        """On the node's loop: call ``changed(tags)`` after each change of the system
        record ``record``, with the fields that changed, until the returned function
        is called.  ``peers`` changes when a peer is added or its ``alive`` or
        ``configured`` changes (its fields' timestamps move without a change: they
        would at each refresh), ``node`` when its spaces change, ``clock`` every
        :data:`CLOCK_PERIOD` seconds (None: every field)."""
        self._followers[record] = changed
        if record == "peers":
            now = time.time()
            self._shown_peers = {base: self._state(peer, now) for base, peer in list(self._peers.items())}
        elif record == "node":
            self._shown_spaces = tuple(sorted(self._node.spaces))
        ticking = asyncio.ensure_future(_tick(changed)) if record == "clock" else None

        def stop() -> None:
            if self._followers.get(record) is changed:
                del self._followers[record]
            if ticking is not None:
                ticking.cancel()

        return stop

    def _peers_moved(self, bases: Iterable[str] | None) -> None:
        """On the node's loop: tell the observers of ``$sys/peers`` which of the peers
        ``bases`` (None: all) were added or changed liveness since they were last told."""
        changed = self._followers.get("peers")
        if changed is None:
            return
        now = time.time()
        moved: list[str] = []
        for base in list(self._peers) if bases is None else bases:
            peer = self._peers.get(base)
            state = None if peer is None else self._state(peer, now)
            if state is not None and self._shown_peers.get(base) != state:
                self._shown_peers[base] = state
                moved.append(base)
        if moved:
            changed(tuple(moved))

    def spaces_changed(self) -> None:
        """The node's spaces changed (from any thread): the observers of ``$sys/node``
        are told, on the node's loop."""
        loop = self._node.loop
        if "node" in self._followers and not loop.is_closed():
            loop.call_soon_threadsafe(self._spaces_moved)

    def _spaces_moved(self) -> None:
        changed = self._followers.get("node")
        spaces = tuple(sorted(self._node.spaces))
        if changed is not None and spaces != self._shown_spaces:
            self._shown_spaces = spaces
            changed(("spaces",))

    def _node_record(self) -> Map:
        node = self._node
        return Map(
            {
                "id": self.id,
                "base_uri": URI(node.base_uri),
                "started": self.started,
                "spaces": tuple(sorted(node.spaces)),
                "refresh_period": self.refresh_period,
                "reference_lifetime": self.reference_lifetime,
            }
        )

    def _state(self, peer: _Peer, now: float) -> tuple[bool, bool]:
        """Whether ``peer`` is alive (it answered or was heard within
        ``reference_lifetime`` and its last refresh did not go unanswered) and configured."""
        recent = [t for t in (peer.answered, peer.heard) if t is not None]
        alive = not peer.failed and bool(recent) and max(recent) > now - self.reference_lifetime
        return alive, peer.configured

    def _peers_record(self) -> Map:
        now = time.time()
        out: dict[str, Value] = {}
        for base, peer in sorted(list(self._peers.items())):
            answered = None if peer.answered is None else _time(peer.answered)
            heard = None if peer.heard is None else _time(peer.heard)
            alive, configured = self._state(peer, now)
            out[base] = Map({"alive": alive, "answered": answered, "heard": heard, "configured": configured})
        return Map(out)

    def peers(self) -> list[str]:
        """The base URIs of the peers this node knows."""
        return sorted(self._peers)


def _holder(space: Space, holder: Record | str) -> tuple[str, int]:
    """The address and level of a record about to hold another (a path: being created)."""
    if isinstance(holder, str):
        return space.core.engine.records.prefix + holder, 0
    pk, level = holder.view("$PK", "$level")
    return str(pk), level


def _cycle(holder: str, name: str, through: str) -> ContainmentCycle:
    return ContainmentCycle(f"{holder} cannot contain {name}: {name} contains {holder} through {through}")


def _clock_record() -> Map:
    return Map({"now": datetime.datetime.now(UTC), "monotonic": time.monotonic()})


async def _tick(changed: Callable[[tuple[str, ...] | None], None]) -> None:
    """Tell the observers of ``$sys/clock`` every :data:`CLOCK_PERIOD` seconds, until cancelled."""
    while True:
        await asyncio.sleep(CLOCK_PERIOD)
        changed(None)


def _time(at: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(at, UTC)


def _base_of(uri: str) -> str:
    """``coap://host:port/`` of a URI (checked)."""
    parts = urlsplit(uri)
    if parts.scheme != "coap" or not parts.netloc:
        raise InvalidValue(f"a peer is named by a coap://host:port/ URI, got {uri!r}")
    return f"coap://{parts.netloc}/"


def _split(address: str) -> tuple[str, str | None]:
    """The base URI of a ``coap://`` address and its path, if it names a record of a
    space (``spaces/<space>/<path>``, no ``$`` segment); else None for the path."""
    base = _base_of(address)
    path = address[len(base) :]
    segments = path.split("/")
    if len(segments) < 3 or segments[0] != "spaces" or any(s.startswith("$") for s in segments[2:]):
        return base, None
    return base, path


def _error(status: int, code: str, message: str) -> Message:
    return error_message(ApiError(status, code, message))


def _not_cbor(request: Message, resource: str) -> Message | None:
    """The refusal of a request to ``resource`` (``/$refs``, ``/$reach``) whose payload or
    answer would be other than CBOR: 4.15 or 4.06; None for one in CBOR."""
    for option, status, what in ((CONTENT_FORMAT, 415, "takes"), (ACCEPT, 406, "answers")):
        given = request.number(option)
        if given not in (None, CBOR):
            return _error(status, "content_format", f"{resource} {what} CBOR (60), not format {given}")
    return None
