"""The engine against a naive model: a list of (id, tuple, expiry) in write order.

Hypothesis drives a :class:`tuplespace.Space` on a :class:`tuplespace.SimulatedClock`
and the model through the same random operations and checks that they agree, in
FIFO and in LIFO order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import tuplespace as ts
from tuplespace import ANY

ALPHABET: list[Any] = [0, 1, 1.0, True, False, "a", b"a", None, (), (1,), (1.0,), (True,), ("a", (1, None))]
FORMALS: list[type] = [int, float, bool, str, bytes, tuple, type(None)]

values = st.sampled_from(ALPHABET)
tuples = st.lists(values, min_size=0, max_size=3).map(tuple)
fields = st.one_of(values, st.just(ANY), st.sampled_from(FORMALS))
templates = st.lists(fields, min_size=0, max_size=3).map(tuple)
leases = st.one_of(st.none(), st.sampled_from([0.5, 1, 2.5, 5, 10]))
steps = st.sampled_from([0, 0.5, 1, 2.5, 5])
limits = st.one_of(st.none(), st.integers(0, 4))


def typed_equal(a: Any, b: Any) -> bool:
    """Typed equality, naively: same type, then equal (element-wise for tuples)."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(typed_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def field_matches(field: Any, value: Any) -> bool:
    if field is ANY:
        return True
    if isinstance(field, type):
        return type(value) is field
    return typed_equal(field, value)


def matches(template: tuple[Any, ...], t: tuple[Any, ...]) -> bool:
    return len(template) == len(t) and all(field_matches(f, v) for f, v in zip(template, t, strict=True))


@dataclass
class Stored:
    id: int
    tuple: tuple[Any, ...]
    expires: float | None


class SpaceModel(RuleBasedStateMachine):
    order = "fifo"

    @initialize()
    def start(self) -> None:
        self.clock = ts.SimulatedClock()
        self.space = ts.Space(order=self.order, clock=self.clock)
        self.model: list[Stored] = []
        self.leases: list[tuple[int, ts.Lease]] = []
        self.ids = itertools.count()

    # -- the model --------------------------------------------------------------------

    def expire(self) -> None:
        now = self.clock.now()
        self.model = [s for s in self.model if s.expires is None or s.expires > now]

    def expiry(self, lease: float | None) -> float | None:
        return None if lease is None else self.clock.now() + lease

    def matching(self, template: tuple[Any, ...]) -> list[Stored]:
        self.expire()
        found = [s for s in self.model if matches(template, s.tuple)]
        return found[::-1] if self.order == "lifo" else found

    def remove(self, stored: list[Stored]) -> None:
        gone = {s.id for s in stored}
        self.model = [s for s in self.model if s.id not in gone]

    def alive(self, id: int) -> Stored | None:
        self.expire()
        return next((s for s in self.model if s.id == id), None)

    def check_same(self, got: list[tuple[Any, ...]] | None, expected: list[Stored]) -> None:
        assert got is not None
        assert len(got) == len(expected), (got, [s.tuple for s in expected])
        for g, s in zip(got, expected, strict=True):
            assert typed_equal(g, s.tuple), (got, [s.tuple for s in expected])

    # -- rules ------------------------------------------------------------------------

    @rule(t=tuples, lease=leases)
    def write(self, t: tuple[Any, ...], lease: float | None) -> None:
        handle = self.space.write(t, lease=lease)
        stored = Stored(next(self.ids), t, self.expiry(lease))
        assert handle.expires_at == stored.expires
        self.model.append(stored)
        self.leases.append((stored.id, handle))

    @rule(batch=st.lists(tuples, max_size=4), lease=leases)
    def write_many(self, batch: list[tuple[Any, ...]], lease: float | None) -> None:
        handles = self.space.write_many(batch, lease=lease)
        assert len(handles) == len(batch)
        for t, handle in zip(batch, handles, strict=True):
            stored = Stored(next(self.ids), t, self.expiry(lease))
            self.model.append(stored)
            self.leases.append((stored.id, handle))

    @rule(template=templates)
    def try_take(self, template: tuple[Any, ...]) -> None:
        expected = self.matching(template)[:1]
        got = self.space.try_take(template)
        self.check_same([] if got is None else [got], expected)
        self.remove(expected)

    @rule(template=templates)
    def take(self, template: tuple[Any, ...]) -> None:
        expected = self.matching(template)[:1]
        try:
            got = [self.space.take(template, timeout=0)]
        except ts.Timeout:
            got = []
        self.check_same(got, expected)
        self.remove(expected)

    @rule(template=templates)
    def read(self, template: tuple[Any, ...]) -> None:
        expected = self.matching(template)[:1]
        try:
            got = [self.space.read(template, timeout=0)]
        except ts.Timeout:
            got = []
        self.check_same(got, expected)
        got_try = self.space.try_read(template)
        self.check_same([] if got_try is None else [got_try], expected)

    @rule(template=templates, limit=limits)
    def read_all(self, template: tuple[Any, ...], limit: int | None) -> None:
        expected = self.matching(template)[:limit]
        self.check_same(self.space.read_all(template, limit=limit), expected)

    @rule(template=templates, limit=limits)
    def take_all(self, template: tuple[Any, ...], limit: int | None) -> None:
        expected = self.matching(template)[:limit]
        self.check_same(self.space.take_all(template, limit=limit), expected)
        self.remove(expected)

    @rule(template=templates)
    def count(self, template: tuple[Any, ...]) -> None:
        assert self.space.count(template) == len(self.matching(template))

    @rule(seconds=steps)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.leases)
    @rule(pick=st.integers(0, 10**6), lease=leases)
    def renew(self, pick: int, lease: float | None) -> None:
        id, handle = self.leases[pick % len(self.leases)]
        stored = self.alive(id)
        if stored is None:
            with pytest.raises(ts.UnknownLease):
                handle.renew(lease)
        else:
            handle.renew(lease)
            stored.expires = self.expiry(lease)
            assert handle.expires_at == stored.expires

    @precondition(lambda self: self.leases)
    @rule(pick=st.integers(0, 10**6))
    def cancel(self, pick: int) -> None:
        id, handle = self.leases[pick % len(self.leases)]
        stored = self.alive(id)
        if stored is None:
            with pytest.raises(ts.UnknownLease):
                handle.cancel()
        else:
            handle.cancel()
            self.remove([stored])

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def same_counts(self) -> None:
        if not hasattr(self, "space"):
            return
        self.expire()
        stats = self.space.statistics()
        assert stats["tuples"] == len(self.model)
        assert stats["leased_tuples"] == sum(s.expires is not None for s in self.model)
        assert stats["waiters"] == 0
        assert self.space.count(()) == sum(len(s.tuple) == 0 for s in self.model)

    def teardown(self) -> None:
        if hasattr(self, "space"):
            self.space.close()


class LifoSpaceModel(SpaceModel):
    order = "lifo"


MODEL_SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None)

TestFifoSpace = SpaceModel.TestCase
TestFifoSpace.settings = MODEL_SETTINGS
TestLifoSpace = LifoSpaceModel.TestCase
TestLifoSpace.settings = MODEL_SETTINGS
