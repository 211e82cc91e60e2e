"""The index of records: for every tag, the records holding each value.

As the engine indexes tuples by position, the record store indexes fields by tag
and by the typed key of their value (:func:`~tuplespace._values.value_key`): a key
held by one record maps to that record itself, by more to a dict of them by rid
(upgraded on the second, downgraded when one is left), which keeps a million
distinct values cheap.  A template with exact values looks up the bucket of each
and scans the smallest, so ``find({"id": 7})`` touches only the records whose
``id`` is 7, however many records the space holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ._templates import RecordTemplate
from ._values import Value, value_key

if TYPE_CHECKING:
    from ._recordstore import Rec

__all__ = ["RecordIndex"]


class RecordIndex:
    """Records by tag and value."""

    __slots__ = ("_tags",)

    def __init__(self) -> None:
        self._tags: dict[str, dict[Any, Rec | dict[int, Rec]]] = {}

    def add(self, rec: Rec, tag: str, v: Value) -> None:
        tv = type(v)
        key = v if tv is str or tv is int else value_key(v)
        d = self._tags.get(tag)
        if d is None:
            self._tags[tag] = {key: rec}
            return
        b = d.get(key)
        if b is None:
            d[key] = rec
        elif type(b) is dict:
            b[rec.rid] = rec
        else:
            one = cast("Rec", b)
            d[key] = {one.rid: one, rec.rid: rec}

    def remove(self, rec: Rec, tag: str, v: Value) -> None:
        tv = type(v)
        key = v if tv is str or tv is int else value_key(v)
        d = self._tags[tag]
        b = d[key]
        if b is rec:
            del d[key]
            if not d:
                del self._tags[tag]
        else:
            del b[rec.rid]  # type: ignore[union-attr]
            if len(b) == 1:  # type: ignore[arg-type]
                d[key] = next(iter(b.values()))  # type: ignore[union-attr]

    def bucket(self, tag: str, key: Any) -> Rec | dict[int, Rec] | None:
        """The records whose field ``tag`` has the value of typed key ``key``."""
        d = self._tags.get(tag)
        return None if d is None else d.get(key)

    def candidates(self, template: RecordTemplate) -> list[Rec] | None:
        """The records that may match ``template``, oldest first: the smallest bucket
        of its exact fields; None if it has no exact field (every record may match)."""
        best: dict[int, Rec] | None = None
        for tag, key in template.exact:
            b = self.bucket(tag, key)
            if b is None:
                return []
            if type(b) is not dict:
                return [b]  # type: ignore[list-item]
            if best is None or len(b) < len(best):
                best = b
        if best is None:
            return None
        return [best[rid] for rid in sorted(best)]
