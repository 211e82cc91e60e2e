"""The claims of a server: what holds the tuples or the record of one claimed take.

A claim is a transaction the server starts for one ``take``: the taken tuple is
held by it until the client confirms (commit) or releases (abort) it, or its
lease runs out (abort, by the space's own timer), so a tuple whose answer never
reached its client returns to its place.  A claimed take of a record holds the
record instead (:class:`RecordClaim`, the same face); one of a space kept in Redis is a
Redis transaction (:class:`KeptClaim`), which any server on that Redis can end.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

import orjson

from .._aio import _call, _settle_now
from .._core import Core
from .._errors import TransactionError

if TYPE_CHECKING:
    from ..stores import AsyncRedisTransaction

__all__ = ["KeptClaim", "RecordClaim", "claim_tag"]


class RecordClaim:
    """A claimed take of a record: the record is held (docs/records.md) until
    :meth:`commit` removes it for good or :meth:`abort` shows it again, as the
    claim's lease running out unconfirmed does.  It has the face of a transaction
    that claims use (``state``, ``expires_at``, ``commit``, ``abort``)."""

    def __init__(self, core: Core, rid: int, lease: float) -> None:
        self._core = core
        self._rid = rid
        self.state = "active"
        self.expires_at: float | None = core.engine.clock.now() + lease
        self._timer = asyncio.get_running_loop().call_later(lease, self._expire)

    def _end(self, state: str) -> bool:
        if self.state != "active":
            return False
        self.state = state
        self._timer.cancel()
        return True

    def _release(self) -> None:
        core = self._core
        with core.lock:
            if not core.engine.closed:  # a closed space keeps the record as it was stored
                core.engine.records.release(self._rid)
                core.poke_timer()

    def _expire(self) -> None:
        if self._end("aborted"):
            self._release()

    async def commit(self) -> None:
        if not self._end("committed"):
            raise TransactionError(f"the claim is {self.state}")
        core = self._core

        def confirm() -> None:
            core.check_open()
            core.engine.records.confirm(self._rid)

        await _call(core, confirm)

    async def abort(self) -> None:
        if self._end("aborted"):
            self._release()
            await _settle_now(self._core)


class KeptClaim:
    """A claimed take of a space kept in Redis: a Redis transaction, its lease the
    claim's, holds the tuples taken in Redis, named there by its id and ``tag`` (the
    digest of the secret of the claim's id and its owner, :func:`claim_tag`), so that
    any server on that Redis confirms or releases it (:meth:`AsyncRedisSpace.end_claim`),
    and a server that dies holding it loses nothing: its lease gives the tuples back, at
    their place.  The face of a claim, as :class:`RecordClaim`, ended by :meth:`end`."""

    def __init__(self, tx: AsyncRedisTransaction, tag: str, remember: float) -> None:
        self.tx = tx
        self.tag = tag
        self.remember = remember  # seconds its outcome is remembered in Redis once ended

    @property
    def state(self) -> str:
        return self.tx.state

    @property
    def expires_at(self) -> float | None:
        return self.tx.expires_at

    async def end(self, confirm: bool) -> str | None:
        """Confirm or release the claim: its outcome, as :meth:`AsyncRedisSpace.end_claim`."""
        return await self.tx.end_claim(self.tag, confirm, self.remember)

    async def commit(self) -> None:
        state = await self.end(True)
        if state != "committed":
            raise TransactionError(f"the claim is {state or 'gone'}")

    async def abort(self) -> None:
        await self.end(False)


def claim_tag(secret: str, owner: str | None) -> str:
    """What names a claim kept in Redis, whose id holds ``secret``, made by ``owner``:
    a digest, so that Redis holds neither the ids that end claims nor who made them."""
    return hashlib.sha256(orjson.dumps([secret, owner])).hexdigest()
