"""Capabilities: unguessable addresses of a record, each granting some operations.

A capability is a token of 32 URL-safe characters (192 random bits), its record,
the operations it grants (a subset of :data:`OPERATIONS`) and when it ends.  Its
address is the space's prefix, ``$cap/`` and the token: it names the record
without its path, so a move does not break it.  A revoked or expired token is
remembered for a while (the last :data:`ENDED_KEPT`), so using it says which.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from ._errors import CapabilityRevoked, InvalidValue, RecordNotFound
from ._store import CapabilityRow

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ENDED_KEPT", "OPERATIONS", "READ_ONLY", "Cap", "Capabilities"]

OPERATIONS: Final = frozenset({"read", "set", "refresh", "clone", "destroy", "watch"})
"""The operations a capability can grant."""

READ_ONLY: Final = frozenset({"read", "watch"})
"""What the read-only handle (``$RO``) grants."""

ENDED_KEPT = 10_000


class Cap:
    """A capability: ``token`` grants ``ops`` on the record ``rid`` until ``expires``."""

    __slots__ = ("expires", "ops", "rid", "ro", "token")

    def __init__(self, token: str, rid: int, ops: frozenset[str], expires: float | None, ro: bool) -> None:
        self.token = token
        self.rid = rid
        self.ops = ops
        self.expires = expires
        self.ro = ro  # the record's read-only handle


def operations(ops: Iterable[str]) -> frozenset[str]:
    """``ops`` as a set a capability can grant; raises InvalidValue."""
    granted = frozenset({ops} if isinstance(ops, str) else ops)
    if not granted or not granted <= OPERATIONS:
        raise InvalidValue(
            f"a capability grants a non-empty subset of {', '.join(sorted(OPERATIONS))}; "
            f"got {sorted(granted)}"
        )
    return granted


class Capabilities:
    """The capabilities of one space, by token; journaled when the space is durable.
    Every method must be called with the shell's lock held."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._caps: dict[str, Cap] = {}
        self._ended: dict[str, str] = {}  # token -> why it no longer works

    def grant(self, rid: int, ops: frozenset[str], expires: float | None, ro: bool = False) -> Cap:
        """A new capability on the record ``rid``."""
        cap = Cap(secrets.token_urlsafe(24), rid, ops, expires, ro)
        self._caps[cap.token] = cap
        self._journal(cap)
        return cap

    def get(self, token: str) -> Cap:
        """The live capability ``token``; raises CapabilityRevoked (revoked, expired or
        unknown), or RecordNotFound if its record is gone."""
        cap = self._caps.get(token)
        if cap is None:
            why = self._ended.get(token)
            if why == "destroyed":
                raise RecordNotFound("the record of this capability is gone (destroyed or expired)")
            if why == "expired":
                raise CapabilityRevoked("the capability's lease has run out", expired=True)
            raise CapabilityRevoked("the capability was revoked (or never existed)", expired=False)
        return cap

    def is_live(self, cap: Cap) -> bool:
        return self._caps.get(cap.token) is cap

    def end(self, token: str, why: str) -> Cap:
        """End the capability ``token``: ``why`` is "revoked", "expired" or "destroyed"."""
        cap = self._caps.pop(token)
        self._ended[token] = why
        if len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]
        journal = self._engine.journal
        if journal is not None:
            journal.delete_row(CapabilityRow, token)
        return cap

    def _journal(self, cap: Cap) -> None:
        journal = self._engine.journal
        if journal is not None:
            journal.put_row(CapabilityRow(cap.token, cap.rid, ",".join(sorted(cap.ops)), cap.expires, cap.ro))

    def restore(self, row: CapabilityRow) -> Cap:
        """A capability read from a durable store."""
        cap = Cap(row.token, row.rid, frozenset(row.operations.split(",")), row.expires, bool(row.read_only))
        self._caps[row.token] = cap
        return cap

    def __len__(self) -> int:
        return len(self._caps)
