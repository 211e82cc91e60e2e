"""Atomic compound operations: replace and write_if_absent, alone and under threads.

Written once against the ``space`` fixtures, so they run over every way of running
a space (the asyncio way through the adapter of the conformance kit, ``tuplespace.testing``).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters
from tuplespace import ANY


def increment(t: tuple[Any, ...]) -> tuple[Any, ...]:
    return (t[0], t[1] + 1)


# -- replace ------------------------------------------------------------------------------


def test_replace_with_a_tuple(space: Any) -> None:
    space.write_many([("counter", 1), ("other", 1)])
    assert space.replace(("counter", int), ("counter", 5)) == ("counter", 1)
    assert space.read_all((str, int)) == [("other", 1), ("counter", 5)]
    assert space.statistics()["tuples"] == 2


def test_replace_with_a_function_of_the_taken_tuple(space: Any) -> None:
    space.write(("counter", 41))
    assert space.replace(("counter", int), increment) == ("counter", 41)
    assert space.replace(("counter", int), lambda t: ["counter", t[1] * 2, {"by": "double"}]) == (
        "counter",
        42,
    )
    assert space.read_all((ANY, ANY, ANY)) == [("counter", 84, ts.Map({"by": "double"}))]
    assert space.count(("counter", int)) == 0


@pytest.mark.parametrize(
    ("order", "taken", "after"),
    [
        ("fifo", ("n", 0), [("n", 1), ("n", 2), ("m", 0)]),
        ("lifo", ("n", 2), [("m", 2), ("n", 1), ("n", 0)]),
    ],
)
def test_replace_takes_the_first_match_in_order(
    make_space: Any, order: str, taken: tuple[Any, ...], after: list[Any]
) -> None:
    space = make_space(order=order)
    space.write_many([("n", 0), ("n", 1), ("n", 2)])
    assert space.replace(("n", int), lambda t: ("m", t[1])) == taken
    assert space.read_all((str, int)) == after


def test_replace_gives_a_take_and_a_write_event(space: Any) -> None:
    space.write(("counter", 1))
    sub = space.subscribe(("counter", int))
    space.replace(("counter", int), increment)
    events = [sub.get(timeout=0), sub.get(timeout=0)]
    assert [(e.kind, e.tuple) for e in events] == [("take", ("counter", 1)), ("write", ("counter", 2))]
    assert events[1].seq == events[0].seq + 1
    stats = space.statistics()
    assert (stats["takes"], stats["writes"]) == (1, 2)


def test_replace_with_a_lease(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.write(("token", 1))
    sim_space.replace(("token", int), ("token", 2), lease=10)
    clock.advance(9.5)
    assert sim_space.read_all(("token", int)) == [("token", 2)]
    clock.advance(0.5)
    assert sim_space.read_all(("token", int)) == []


class Refused(Exception):
    pass


def refuse(t: tuple[Any, ...]) -> tuple[Any, ...]:
    raise Refused(repr(t))


@pytest.mark.parametrize(
    ("successor", "error"),
    [
        (refuse, Refused),
        (lambda t: (t[0], float("nan")), ts.InvalidValue),
        (lambda t: (t[0], object()), ts.UnsupportedType),
        (lambda t: 5, ts.UnsupportedType),
        (("counter", float("inf")), ts.InvalidValue),
        (lambda t: None, ts.UnsupportedType),
    ],
    ids=["raises", "nan", "object", "not-a-tuple", "invalid-tuple", "none"],
)
def test_a_failing_successor_leaves_the_space_unchanged(space: Any, successor: Any, error: type) -> None:
    space.write_many([("counter", 1), ("counter", 2)])
    sub = space.subscribe(("counter", ANY))
    before = space.statistics()
    with pytest.raises(error):
        space.replace(("counter", int), successor)
    assert space.read_all(("counter", ANY)) == [("counter", 1), ("counter", 2)]
    after = space.statistics()
    for key in ("tuples", "takes", "writes", "last_event", "waiters"):
        assert after[key] == before[key], key
    with pytest.raises(ts.Timeout):
        sub.get(timeout=0)
    assert space.replace(("counter", int), increment) == ("counter", 1)


def test_replace_waits_for_a_match(space: Any) -> None:
    replacer = spawn(space.replace, ("counter", int), increment)
    wait_for_waiters(space, 1)
    space.write(("counter", "not an int"))
    assert space.statistics()["waiters"] == 1
    space.write(("counter", 1))
    assert replacer.result(PATIENCE) == ("counter", 1)
    assert space.read_all(("counter", ANY)) == [("counter", "not an int"), ("counter", 2)]
    assert space.statistics()["waiters"] == 0


def test_replace_times_out(sim_space: Any, clock: ts.SimulatedClock) -> None:
    replacer = spawn(sim_space.replace, ("counter", int), increment, timeout=5)
    wait_for_waiters(sim_space, 1)
    clock.advance(4.5)
    assert not replacer.done()
    clock.advance(0.5)
    with pytest.raises(ts.Timeout):
        replacer.result(PATIENCE)
    assert sim_space.statistics()["waiters"] == 0
    sim_space.write(("counter", 1))
    assert sim_space.read_all(("counter", int)) == [("counter", 1)]


def test_replace_timeout_zero_never_waits(space: Any) -> None:
    with pytest.raises(ts.Timeout):
        space.replace(("counter", int), increment, timeout=0)
    assert space.statistics()["waiters"] == 0


def test_a_replace_that_loses_its_match_keeps_its_first_deadline(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    replacer = spawn(sim_space.replace, ("counter", int), increment, timeout=10)
    wait_for_waiters(sim_space, 1)
    clock.advance(6)
    taker = spawn(sim_space.take, ("counter", int))
    wait_for_waiters(sim_space, 2)
    sim_space.write(("counter", 1))  # the replace sees it, the taker (a taker wins a write) takes it
    assert taker.result(PATIENCE) == ("counter", 1)
    wait_for_waiters(sim_space, 1)  # the replace waits again
    clock.advance(4)
    assert sim_space.statistics()["waiters"] == 0
    with pytest.raises(ts.Timeout):
        replacer.result(PATIENCE)
    assert sim_space.statistics()["tuples"] == 0


def test_threads_incrementing_one_counter_with_replace_reach_the_exact_total(space: Any) -> None:
    threads, increments = 8, 100
    space.write(("counter", 0))
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait(PATIENCE)
        for _ in range(increments):
            space.replace(("counter", int), increment, timeout=PATIENCE)

    workers = [spawn(work) for _ in range(threads)]
    for w in workers:
        w.result(PATIENCE)
    assert space.read_all(("counter", ANY)) == [("counter", threads * increments)]
    assert space.statistics()["waiters"] == 0


# -- write_if_absent ---------------------------------------------------------------------------


def test_write_if_absent_writes_only_when_nothing_matches(space: Any) -> None:
    assert space.write_if_absent(("leader", ANY), ("leader", "node-1")) is True
    assert space.write_if_absent(("leader", ANY), ("leader", "node-2")) is False
    assert space.write_if_absent(("leader", "node-2"), ("follower", "node-2")) is True
    assert space.read_all((str, str)) == [("leader", "node-1"), ("follower", "node-2")]
    space.take(("leader", ANY))
    assert space.write_if_absent(("leader", ANY), ("leader", "node-3")) is True
    assert space.read_all(("leader", ANY)) == [("leader", "node-3")]


def test_write_if_absent_validates_the_tuple_either_way(space: Any) -> None:
    with pytest.raises(ts.InvalidValue):
        space.write_if_absent(("leader", ANY), ("leader", float("nan")))
    space.write(("leader", "node-1"))
    with pytest.raises(ts.InvalidValue):
        space.write_if_absent(("leader", ANY), ("leader", float("nan")))
    with pytest.raises(ts.InvalidTemplate):
        space.write_if_absent(("leader", object()), ("leader", "node-2"))
    assert space.read_all(("leader", ANY)) == [("leader", "node-1")]


def test_write_if_absent_with_a_lease(sim_space: Any, clock: ts.SimulatedClock) -> None:
    assert sim_space.write_if_absent(("lock", ANY), ("lock", "a"), lease=10) is True
    clock.advance(9.5)
    assert sim_space.write_if_absent(("lock", ANY), ("lock", "b"), lease=10) is False
    clock.advance(0.5)
    assert sim_space.write_if_absent(("lock", ANY), ("lock", "b"), lease=10) is True
    assert sim_space.read_all(("lock", ANY)) == [("lock", "b")]


def test_write_if_absent_has_exactly_one_winner_among_threads(space: Any) -> None:
    threads, rounds = 8, 20
    barrier = threading.Barrier(threads)

    def contend(i: int) -> list[bool]:
        won = []
        for r in range(rounds):
            barrier.wait(PATIENCE)
            won.append(space.write_if_absent(("leader", r, ANY), ("leader", r, i)))
        return won

    results = [f.result(PATIENCE) for f in [spawn(contend, i) for i in range(threads)]]
    for r in range(rounds):
        winners = [i for i in range(threads) if results[i][r]]
        assert len(winners) == 1, (r, winners)
        assert space.read_all(("leader", r, ANY)) == [("leader", r, winners[0])]
    assert space.statistics()["tuples"] == rounds
