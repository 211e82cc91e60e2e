"""The transactions and claims a node holds for its peers (docs/federation.md,
"Transactions and claims over CoAP").

A transaction is begun by a peer with a lease and used by its id; a claim is a
transaction the node begins for one ``take`` or one answer of a ``take_all``: what it
took is held until the peer confirms the claim (the take is then final), and returns
to its place when the claim's lease runs out unconfirmed, as when the answer never
reached the peer.  Both are embedded transactions, which end by themselves at their
lease.  Ids are unguessable; the transactions and claims of one sending host are
bounded, and the states of those that ended are remembered (a bounded number for each
host, :class:`EndedByHost`) to answer a late request precisely: an abort, a commit, a
confirmation sent again.

The calls of a client that may wait (a take, a read, a write waiting for room) name
its session; when the client closes, it ends its session, and the node ends those of
its calls still waiting (:class:`Sessions`).

What a node holds for a peer belongs to the peer that began it (its :class:`Asker`'s
``owner``: an OSCORE peer, else the sending host): another peer naming its id is
answered as if there were none, whether it is held or has ended, so that an id learnt
elsewhere can neither be used nor probed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._aio import AsyncTransaction
from ..server._claims import RecordClaim
from ..server._errors import ApiError, limit_reached
from ..server._hosting import ENDED_KEPT, SWEEP_FROM
from ._message import Message

__all__ = ["ENDED_PER_HOST", "Asker", "EndedByHost", "Held", "HeldTable", "Sessions"]


ENDED_PER_HOST = 256
"""The ended transactions, claims and sessions remembered for one sending host, each
table apart: the host's own later ones push its oldest out."""

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Asker:
    """Who sent a request: its ``host`` (an IP address, whatever port it sends from),
    by which what the node holds for its peers is bounded, and its ``owner``, whose
    transactions, claims and sessions it may use: ``"peer <name>"`` for an OSCORE peer
    (its name in the keys file), else (an anonymous peer) its host."""

    host: str
    owner: str


class EndedByHost(Generic[K]):
    """What ended for each sending host, and how (a state), to answer precisely a late
    request naming it: at most :data:`ENDED_PER_HOST` keys of one host (its oldest give
    way) and ``ENDED_KEPT`` in all (past it, those of the host that ended one the
    longest ago are forgotten).  A host ending many, or keys it made up, forgets only
    its own.  A key is remembered for one host: the last that ended it (an OSCORE peer
    may send from several)."""

    def __init__(self) -> None:
        # By host, the one that ended one last at the end; each host's keys, oldest first.
        self._hosts: OrderedDict[str, OrderedDict[K, None]] = OrderedDict()
        self._states: dict[K, tuple[str, str]] = {}  # key -> (its host, its state)

    def __len__(self) -> int:
        return len(self._states)

    def get(self, key: K) -> str | None:
        """How ``key`` ended, if it is remembered."""
        known = self._states.get(key)
        return None if known is None else known[1]

    def add(self, host: str, key: K, state: str) -> None:
        """Remember that ``key`` of ``host`` ended in ``state``, within the bounds."""
        known = self._states.get(key)
        if known is not None and known[0] != host:
            before = self._hosts[known[0]]
            del before[key]
            if not before:
                del self._hosts[known[0]]
        keys = self._hosts.setdefault(host, OrderedDict())
        self._hosts.move_to_end(host)
        keys[key] = None
        keys.move_to_end(key)
        self._states[key] = (host, state)
        if len(keys) > ENDED_PER_HOST:
            del self._states[keys.popitem(last=False)[0]]
        while len(self._states) > ENDED_KEPT:  # never the host's own: it holds fewer
            for oldest in self._hosts.popitem(last=False)[1]:
                del self._states[oldest]


@dataclass(eq=False)
class Held:
    """A transaction (``kind`` ``"transaction"``) or a claim (``"claim"``) of the space
    ``space``, begun by ``asker`` (its host holds it, its owner uses it); a claimed
    take_record is held by a :class:`RecordClaim`, which has the face of a transaction."""

    id: str
    kind: str
    space: str
    tx: AsyncTransaction | RecordClaim
    asker: Asker


class HeldTable:
    """The transactions and claims of a node, at most ``max_per_host`` per sending host,
    each found only by its owner."""

    def __init__(self, max_per_host: int) -> None:
        self.max_per_host = max_per_host
        self._held: dict[str, Held] = {}
        self._by_host: dict[str, set[str]] = {}
        self._ended: EndedByHost[tuple[str, str]] = EndedByHost()  # (owner, id) -> its state when it ended
        self._sweep_at = SWEEP_FROM

    def statistics(self) -> dict[str, int]:
        """The active transactions and claims held."""
        active = [h.kind for h in self._held.values() if h.tx.state == "active"]
        claims = active.count("claim")
        return {"held_transactions": len(active) - claims, "held_claims": claims}

    def check_room(self, host: str) -> None:
        """4.29 ``limit_reached`` when ``host`` holds as many as it may (after
        forgetting those of its that ended by themselves)."""
        ids = self._by_host.get(host, set())
        if len(ids) >= self.max_per_host:
            for held_id in [i for i in ids if self._held[i].tx.state != "active"]:
                self.forget(held_id)
            if len(self._by_host.get(host, ())) >= self.max_per_host:
                raise limit_reached(
                    f"this host already holds {self.max_per_host} transactions and claims",
                    "max_transactions",
                    self.max_per_host,
                )

    def add(self, kind: str, space: str, tx: AsyncTransaction | RecordClaim, asker: Asker) -> Held:
        """Hold ``tx`` for ``asker`` under a new id (call :meth:`check_room` with its
        host before beginning it)."""
        if len(self._held) >= self._sweep_at:
            for held_id in [h.id for h in self._held.values() if h.tx.state != "active"]:
                self.forget(held_id)
            self._sweep_at = max(SWEEP_FROM, 2 * len(self._held))
        held = Held(secrets.token_urlsafe(18), kind, space, tx, asker)
        self._held[held.id] = held
        self._by_host.setdefault(asker.host, set()).add(held.id)
        return held

    def find(self, kind: str, held_id: str, space: str, owner: str) -> Held:
        """The active transaction or claim ``held_id`` of ``space`` that ``owner``
        began; else the error saying what became of it: 409 ``transaction_aborted`` or
        ``transaction_ended`` for a transaction of ``owner``'s, 404
        ``unknown_transaction`` or ``unknown_claim`` for none (another owner's too)."""
        held = self._held.get(held_id)
        if held is not None and held.kind == kind and held.space == space and held.asker.owner == owner:
            if held.tx.state == "active":
                return held
            self.forget(held_id)
        state = self.ended_state(held_id, owner)
        if kind == "claim":
            raise ApiError(
                404,
                "unknown_claim",
                f"no claim {held_id} (it ran out or was released: what it took went back)",
            )
        if state == "aborted":
            raise ApiError(409, "transaction_aborted", f"transaction {held_id} was aborted")
        if state is not None:
            raise ApiError(409, "transaction_ended", f"transaction {held_id} has ended")
        raise ApiError(404, "unknown_transaction", f"no transaction {held_id} in space {space!r}")

    def transaction(self, held_id: str, space: str, owner: str) -> AsyncTransaction:
        """The active transaction ``held_id`` of ``space`` that ``owner`` began (else
        the error of :meth:`find`)."""
        tx = self.find("transaction", held_id, space, owner).tx
        assert isinstance(tx, AsyncTransaction)  # claims are held under kind "claim"
        return tx

    def ended_state(self, held_id: str, owner: str) -> str | None:
        """How ``held_id``, begun by ``owner``, ended (``"committed"``, ``"aborted"``),
        if it is remembered."""
        held = self._held.get(held_id)
        if held is not None and held.tx.state != "active":
            self.forget(held_id)
        return self._ended.get((owner, held_id))

    def forget(self, held_id: str) -> None:
        """Stop holding ``held_id``, remembering how it ended."""
        held = self._held.pop(held_id, None)
        if held is None:
            return
        host = held.asker.host
        self._ended.add(host, (held.asker.owner, held_id), held.tx.state)
        ids = self._by_host.get(host)
        if ids is not None:
            ids.discard(held_id)
            if not ids:
                del self._by_host[host]


# A session id: what a client draws at random, in the characters of a URL-safe token.
_SESSION = re.compile(r"[A-Za-z0-9_-]{8,64}")


class Sessions:
    """The waiting calls of the clients' sessions, by owner (see :class:`Asker`) and
    session id: a client that closes ends its session (``POST ?op=close&session=<id>``),
    which ends the calls still waiting that the same owner sent (an anonymous peer:
    from the same host), without an answer.  The sessions each host ended are
    remembered (see :class:`EndedByHost`): a call of an ended session arriving late
    (reordered, repeated) is refused rather than left waiting."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], set[asyncio.Task[Any]]] = {}
        self._ended: EndedByHost[tuple[str, str]] = EndedByHost()

    @staticmethod
    def check(session: str) -> str:
        """``session`` if it is a session id, else 400 ``invalid_value``."""
        if _SESSION.fullmatch(session) is None:
            raise ApiError(400, "invalid_value", "session is 8 to 64 letters, digits, '-' or '_'", "session")
        return session

    def check_open(self, owner: str, session: str) -> None:
        """400 ``bad_request`` when ``owner``'s session has ended."""
        if self._ended.get((owner, session)) is not None:
            raise ApiError(400, "bad_request", f"session {session} was closed by its client", "session")

    async def hold(self, owner: str, session: str, work: Awaitable[Message]) -> Message:
        """The answer of ``work``, a call of ``owner``'s session that may wait, awaited
        in the task that answers it (which the session's end cancels)."""
        key = (owner, session)
        call = asyncio.current_task()
        assert call is not None
        calls = self._waiting.setdefault(key, set())
        calls.add(call)
        try:
            return await work
        finally:
            calls.discard(call)
            if not calls and self._waiting.get(key) is calls:
                del self._waiting[key]

    async def end(self, asker: Asker, session: str) -> int:
        """End the session of ``asker``'s owner: its calls still waiting end (their
        waits released, their claims aborted) before this returns; how many there were."""
        key = (asker.owner, session)
        self._ended.add(asker.host, key, "ended")
        calls = self._waiting.pop(key, set())
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        return len(calls)

    def statistics(self) -> dict[str, int]:
        """The calls waiting under a session, and the ended sessions remembered."""
        return {
            "session_calls": sum(len(calls) for calls in self._waiting.values()),
            "ended_sessions": len(self._ended),
        }
