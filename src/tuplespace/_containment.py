"""Containment: records that hold other records, their reference counts and levels.

A field whose value is the address of a record of the same space contains that
record.  The containing record keeps ``refs`` (tag -> contained rid); the contained
one keeps ``containers`` (containing rid -> how many of its fields hold it), so its
``$refcount`` is the number of records containing it.  The level of a record is
one more than the highest level of the records it contains, 0 if it contains none.

Every record below a record has a lower level than it, so whether letting A
contain B closes a cycle is decided without a search when B's level is not above
A's, and otherwise by a search below B that never enters records whose level is
not above A's: the level prunes what the search has to visit.

Across nodes (docs/federation.md) a record may hold a record of another node
(``remote``: tag -> its address and level, as its node last answered) and be held
by records of other nodes (``holders``).  Levels travel with those references, so
a holder at level L asking to hold B is refused when B, or a record below B whose
level is above L, holds the holder's address; the records of other nodes found
below B at levels above L are searched in turn by their nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ContainmentCycle

if TYPE_CHECKING:
    from ._recordstore import Rec

__all__ = ["check_cycle", "check_holder", "link", "relevel", "unlink"]


def check_cycle(by_rid: dict[int, Rec], rec: Rec, child: Rec) -> None:
    """Raise ContainmentCycle if ``rec`` may not contain ``child`` (``child`` is ``rec``
    or contains it)."""
    if child is rec:
        raise ContainmentCycle(f"a record cannot contain itself ({rec.path})")
    if child.level <= rec.level:
        return
    stack = [child]
    seen = set()
    while stack:
        r = stack.pop()
        for rid in (r.refs or {}).values():
            if rid == rec.rid:
                raise ContainmentCycle(
                    f"{rec.path} cannot contain {child.path}: {child.path} contains {rec.path}"
                )
            below = by_rid[rid]
            if below.level > rec.level and rid not in seen:
                seen.add(rid)
                stack.append(below)


def check_holder(by_rid: dict[int, Rec], child: Rec, holder: str, level: int, name: str) -> list[str]:
    """Raise ContainmentCycle if the record at the address ``holder`` (of another node,
    or of this space), at ``level``, may not hold ``child`` (named ``name``): ``child``
    holds it, directly or through records of this space.  Otherwise the addresses of
    the records of other nodes below ``child`` whose level is above ``level``: the
    holder may be below them, which only their nodes can tell."""
    if child.level <= level:
        return []
    stack = [child]
    seen = set()
    further: list[str] = []
    while stack:
        r = stack.pop()
        for address, far in (r.remote or {}).values():
            if address == holder:
                through = "" if r is child else f" through {r.path}"
                raise ContainmentCycle(f"{holder} cannot contain {name}: {name} contains {holder}{through}")
            if far > level:
                further.append(address)
        for rid in (r.refs or {}).values():
            below = by_rid[rid]
            if below.level > level and rid not in seen:
                seen.add(rid)
                stack.append(below)
    return further


def link(rec: Rec, tag: str, child: Rec) -> None:
    """Record that the field ``tag`` of ``rec`` holds ``child``."""
    if rec.refs is None:
        rec.refs = {}
    rec.refs[tag] = child.rid
    if child.containers is None:
        child.containers = {}
    child.containers[rec.rid] = child.containers.get(rec.rid, 0) + 1


def unlink(by_rid: dict[int, Rec], rec: Rec, tag: str) -> None:
    """Record that the field ``tag`` of ``rec`` no longer holds the record it held."""
    refs: dict[str, int] = rec.refs  # type: ignore[assignment]
    child = by_rid.get(refs.pop(tag))
    if not refs:
        rec.refs = None
    if child is not None and child.containers is not None:
        n = child.containers[rec.rid] - 1
        if n:
            child.containers[rec.rid] = n
        else:
            del child.containers[rec.rid]
            if not child.containers:
                child.containers = None


def relevel(by_rid: dict[int, Rec], rec: Rec) -> None:
    """Recompute the level of ``rec`` and, where it changed, of the records above it."""
    stack = [rec]
    while stack:
        r = stack.pop()
        level = 1 + max((by_rid[c].level for c in r.refs.values()), default=-1) if r.refs else 0
        if r.remote:
            level = max(level, 1 + max(far for _, far in r.remote.values()))
        if level != r.level:
            r.level = level
            if r.containers:
                stack.extend(by_rid[c] for c in r.containers)
