"""Interests: templates waiting for tuples, indexed so a tuple finds only its own.

Blocked reads and takes, and subscriptions, are *interests*: a template and a
sequence number giving their arrival order.  A :class:`Registry` files each one
under the arity of its template and under one exact field (the one whose bucket
is smallest when it arrives; ties go to the later field, which tends to be the
more specific), or under the arity alone when the template has no exact field.
A tuple then looks up only the buckets of its own values: with 10,000 takers
waiting on ``("task", k)`` for distinct ``k``, a write of ``("task", 7)`` visits
one bucket of one interest.
"""

from __future__ import annotations

import itertools
from typing import Any, Generic, TypeVar

from ._templates import Template
from ._values import Value, value_key

__all__ = ["Interest", "Registry"]


class Interest:
    """Something registered against a template; subclasses add what it is for."""

    __slots__ = ("key", "pos", "seq", "template")

    def __init__(self, seq: int, template: Template) -> None:
        self.seq = seq
        self.template = template
        self.pos = -1  # filed under the exact field ``key`` at ``pos``; -1: under its arity alone
        self.key: Any = None


InterestT = TypeVar("InterestT", bound=Interest)


class _Arity(Generic[InterestT]):
    __slots__ = ("count", "index", "positions", "rest")

    def __init__(self, arity: int) -> None:
        # position -> key -> the one interest filed there, or a dict of them by seq
        self.index: list[dict[Any, InterestT | dict[int, InterestT]]] = [{} for _ in range(arity)]
        self.positions: list[int] = []  # the positions that have had interests filed under them
        self.rest: dict[int, InterestT] = {}
        self.count = 0


def _seq(i: Interest) -> int:
    return i.seq


def _members(group: Any) -> Any:
    return group.values() if type(group) is dict else (group,)


class Registry(Generic[InterestT]):
    """Interests by arity and exact field; :meth:`matching` finds those a tuple satisfies.

    A key with one interest holds it directly, not in a dict of one: with thousands
    of waiters on distinct values, that is one object fewer to reach per write.
    """

    __slots__ = ("_arities", "count")

    def __init__(self) -> None:
        self._arities: dict[int, _Arity[InterestT]] = {}
        self.count = 0

    def add(self, interest: InterestT) -> None:
        template = interest.template
        shelf = self._arities.get(template.arity)
        if shelf is None:
            shelf = self._arities[template.arity] = _Arity(template.arity)
        smallest = -1
        for pos, key in template.exact:
            group = shelf.index[pos].get(key)
            n = 0 if group is None else len(group) if type(group) is dict else 1
            if smallest < 0 or n <= smallest:
                interest.pos, interest.key, smallest = pos, key, n
        if interest.pos < 0:
            shelf.rest[interest.seq] = interest
        else:
            pos, key = interest.pos, interest.key
            if pos not in shelf.positions:
                shelf.positions = sorted((*shelf.positions, pos))
            d = shelf.index[pos]
            group = d.get(key)
            if group is None:
                d[key] = interest
            elif type(group) is dict:
                group[interest.seq] = interest
            else:
                d[key] = {group.seq: group, interest.seq: interest}  # type: ignore[union-attr,dict-item]
        shelf.count += 1
        self.count += 1

    def remove(self, interest: InterestT) -> None:
        shelf = self._arities[interest.template.arity]
        if interest.pos < 0:
            del shelf.rest[interest.seq]
        else:
            d = shelf.index[interest.pos]
            key = interest.key
            group = d[key]
            if group is interest:
                del d[key]
            else:
                del group[interest.seq]  # type: ignore[union-attr]
                if not group:
                    del d[key]
        shelf.count -= 1
        self.count -= 1

    def matching(self, t: tuple[Value, ...]) -> list[InterestT] | tuple[InterestT, ...]:
        """The interests whose template matches ``t``, in arrival order."""
        shelf = self._arities.get(len(t))
        if shelf is None or not shelf.count:
            return ()
        # Most tuples match nothing: that path builds nothing.
        index = shelf.index
        positions = shelf.positions
        if len(positions) == 1 and not shelf.rest:  # every interest filed under one position
            pos = positions[0]
            v = t[pos]
            tv = type(v)
            g = index[pos].get(v if tv is str or tv is int else value_key(v))
            if g is None:
                return ()
            if type(g) is not dict:  # one interest: the common case
                return (g,) if g.template.matches(t) else ()  # type: ignore[return-value,union-attr]
            return [i for i in g.values() if i.template.matches(t)]
        groups = None
        for pos in positions:  # a loop over the few positions interests are filed under
            v = t[pos]
            tv = type(v)
            g = index[pos].get(v if tv is str or tv is int else value_key(v))
            if g:
                if groups is None:
                    groups = [g]
                else:
                    groups.append(g)
        if shelf.rest:
            if groups is None:
                groups = [shelf.rest]
            else:
                groups.append(shelf.rest)
        if groups is None:
            return ()
        if len(groups) == 1:
            g = groups[0]
            if type(g) is not dict:  # one interest: the common case
                return (g,) if g.template.matches(t) else ()  # type: ignore[return-value,union-attr]
            candidates: list[InterestT] = list(g.values())
        else:
            candidates = sorted(itertools.chain.from_iterable(map(_members, groups)), key=_seq)
        return [i for i in candidates if i.template.matches(t)]

    def __iter__(self) -> Any:
        for shelf in self._arities.values():
            yield from shelf.rest.values()
            for d in shelf.index:
                for g in d.values():
                    yield from _members(g)
