"""Capacity: a full space pushes back; waiting writers are admitted in arrival order.

Written once against the ``make_space`` fixture, so they run over every way of
running a space (the asyncio way through the adapter of the conformance kit, ``tuplespace.testing``).
"""

from __future__ import annotations

from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters
from tuplespace import ANY


def test_writers_wait_and_are_admitted_in_arrival_order(make_space: Any) -> None:
    space = make_space(capacity=2)
    space.write_many([("a",), ("b",)])
    writers = []
    for name in ("c", "d", "e"):
        writers.append(spawn(space.write, (name,)))
        wait_for_waiters(space, len(writers))
    stats = space.statistics()
    assert (stats["tuples"], stats["capacity"], stats["waiting_writers"]) == (2, 2, 3)
    assert not any(w.done() for w in writers)

    assert space.take(("a",)) == ("a",)
    lease = writers[0].result(PATIENCE)
    assert isinstance(lease, ts.Lease)
    assert space.read_all((str,)) == [("b",), ("c",)]
    assert space.statistics()["waiting_writers"] == 2
    assert not writers[1].done()

    assert space.take_all((str,), limit=2) == [("b",), ("c",)]
    writers[1].result(PATIENCE)
    writers[2].result(PATIENCE)
    assert space.read_all((str,)) == [("d",), ("e",)]
    stats = space.statistics()
    assert (stats["tuples"], stats["waiters"], stats["waiting_writers"]) == (2, 0, 0)


def test_the_lease_of_an_admitted_writer_is_its_own(make_space: Any, clock: ts.SimulatedClock) -> None:
    space = make_space(capacity=1, clock=clock)
    space.write(("a",))
    writer = spawn(space.write, ("b",), lease=10)
    wait_for_waiters(space, 1)
    clock.advance(5)
    space.take(("a",))
    lease = writer.result(PATIENCE)
    assert lease.expires_at == clock.now() + 10  # counted from the admission
    clock.advance(9.5)
    assert space.count(("b",)) == 1
    lease.cancel()
    assert space.count(("b",)) == 0


def test_timeout_zero_raises_space_full_at_once(make_space: Any) -> None:
    space = make_space(capacity=2)
    space.write_many([("a",), ("b",)])
    with pytest.raises(ts.SpaceFull) as info:
        space.write(("c",), timeout=0)
    assert isinstance(info.value, ts.LimitReached)
    assert (info.value.limit, info.value.maximum) == ("capacity", 2)
    assert space.statistics()["waiters"] == 0
    assert space.read_all((str,)) == [("a",), ("b",)]


def test_a_timed_out_writer_raises_timeout_and_leaves_no_waiter(
    make_space: Any, clock: ts.SimulatedClock
) -> None:
    space = make_space(capacity=1, clock=clock)
    space.write(("a",))
    writer = spawn(space.write, ("b",), timeout=5)
    wait_for_waiters(space, 1)
    clock.advance(4.5)
    assert not writer.done()
    clock.advance(0.5)
    with pytest.raises(ts.Timeout) as info:
        writer.result(PATIENCE)
    assert isinstance(info.value, TimeoutError)
    stats = space.statistics()
    assert (stats["waiters"], stats["waiting_writers"]) == (0, 0)
    space.take(("a",))
    assert space.statistics()["tuples"] == 0
    space.write(("c",), timeout=0)
    assert space.read_all((str,)) == [("c",)]


def test_an_invalid_write_into_a_full_space_is_refused_without_waiting(make_space: Any) -> None:
    space = make_space(capacity=1)
    space.write(("a",))
    with pytest.raises(ts.InvalidValue):
        space.write(("b", float("nan")))
    with pytest.raises(ts.InvalidValue):
        space.write(("b",), lease=-1)
    assert space.statistics()["waiters"] == 0


def test_write_many_that_does_not_fit_writes_nothing(make_space: Any) -> None:
    space = make_space(capacity=3)
    space.write(("a",))
    with pytest.raises(ts.SpaceFull) as info:
        space.write_many([("b",), ("c",), ("d",)])
    assert (info.value.limit, info.value.maximum) == ("capacity", 3)
    assert space.read_all((str,)) == [("a",)]
    assert space.statistics()["waiters"] == 0
    space.write_many([("b",), ("c",)])
    assert space.read_all((str,)) == [("a",), ("b",), ("c",)]
    with pytest.raises(ts.SpaceFull):
        space.write_many([("d",)])


def test_expiry_frees_room_for_a_waiting_writer(make_space: Any, clock: ts.SimulatedClock) -> None:
    space = make_space(capacity=1, clock=clock)
    space.write(("a",), lease=10)
    writer = spawn(space.write, ("b",))
    wait_for_waiters(space, 1)
    clock.advance(9.5)
    assert not writer.done()
    clock.advance(0.5)
    writer.result(PATIENCE)
    assert space.read_all((str,)) == [("b",)]
    assert space.statistics()["expired"] == 1


@pytest.mark.parametrize("removal", ["take", "expire", "cancel"])
def test_the_event_of_a_removal_comes_before_the_write_it_lets_in(
    make_space: Any, clock: ts.SimulatedClock, removal: str
) -> None:
    space = make_space(capacity=1, clock=clock)
    sub = space.subscribe((str,))
    lease = space.write(("a",), lease=10)
    writer = spawn(space.write, ("b",))
    wait_for_waiters(space, 1)
    if removal == "take":
        space.take(("a",))
    elif removal == "expire":
        clock.advance(10)
    else:
        lease.cancel()
    writer.result(PATIENCE)
    events = [sub.get(timeout=0) for _ in range(3)]
    assert [(e.kind, e.tuple) for e in events] == [("write", ("a",)), (removal, ("a",)), ("write", ("b",))]


def test_expiry_frees_room_for_a_writer_with_nobody_calling(make_space: Any) -> None:
    space = make_space(capacity=1)
    space.write(("a",), lease=0.05)
    writer = spawn(space.write, ("b",))  # no timeout: only the expiry can let it in
    writer.result(PATIENCE)
    assert space.read_all((str,)) == [("b",)]
    assert space.statistics()["expired"] == 1


def test_cancelling_a_lease_frees_room_for_a_waiting_writer(make_space: Any) -> None:
    space = make_space(capacity=1)
    lease = space.write(("a",))
    writer = spawn(space.write, ("b",))
    wait_for_waiters(space, 1)
    lease.cancel()
    writer.result(PATIENCE)
    assert space.read_all((str,)) == [("b",)]


def test_a_take_in_a_transaction_frees_room_and_an_abort_returns_even_into_a_full_space(
    make_space: Any,
) -> None:
    space = make_space(capacity=2)
    space.write_many([("a",), ("b",)])
    tx = space.transaction()
    assert tx.take(("a",)) == ("a",)
    space.write(("c",), timeout=0)
    with pytest.raises(ts.SpaceFull):
        space.write(("d",), timeout=0)
    tx.abort()
    assert space.read_all((str,)) == [("a",), ("b",), ("c",)]
    assert space.statistics()["tuples"] == 3
    with pytest.raises(ts.SpaceFull):
        space.write(("d",), timeout=0)
    space.take(("a",))
    with pytest.raises(ts.SpaceFull):
        space.write(("d",), timeout=0)
    space.take(("b",))
    space.write(("d",), timeout=0)
    assert space.read_all((str,)) == [("c",), ("d",)]


def test_a_commit_whose_writes_do_not_fit_raises_space_full_and_aborts(make_space: Any) -> None:
    space = make_space(capacity=2)
    space.write(("a",))
    tx = space.transaction()
    tx.write(("b",))
    tx.write(("c",))
    with pytest.raises(ts.SpaceFull) as info:
        tx.commit()
    assert (info.value.limit, info.value.maximum) == ("capacity", 2)
    assert tx.state == "aborted"
    assert space.read_all((str,)) == [("a",)]
    assert space.statistics()["tuples"] == 1
    with pytest.raises(ts.TransactionError):
        tx.write(("d",))
    space.write(("b",), timeout=0)  # the room is the space's still


def test_a_commit_that_does_not_fit_puts_back_what_it_took(make_space: Any) -> None:
    space = make_space(capacity=2)
    space.write_many([("job", 1), ("job", 2)])
    tx = space.transaction()
    assert tx.take(("job", 1)) == ("job", 1)
    tx.write_many([("result", 1), ("result", 2)])
    space.write(("job", 3), timeout=0)  # into the room the take made
    with pytest.raises(ts.SpaceFull), tx:  # the block's end commits
        pass
    assert tx.state == "aborted"
    assert sorted(space.read_all((str, int))) == [("job", 1), ("job", 2), ("job", 3)]
    assert space.count(("result", int)) == 0


def test_a_transaction_that_takes_as_many_as_it_writes_commits_into_a_full_space(
    make_space: Any,
) -> None:
    space = make_space(capacity=2)
    space.write_many([("job", 1), ("job", 2)])
    with space.transaction() as tx:
        assert tx.take(("job", 1)) == ("job", 1)
        tx.write(("result", 1))
    assert tx.state == "committed"
    assert sorted(space.read_all((str, int))) == [("job", 2), ("result", 1)]
    with pytest.raises(ts.SpaceFull):
        space.write(("job", 3), timeout=0)
    with pytest.raises(ts.SpaceFull), space.transaction() as tx:
        tx.write(("result", 2))
    assert space.count(("result", int)) == 1
    held = space.transaction()
    assert held.take(("job", 2)) == ("job", 2)
    space.write(("job", 3), timeout=0)
    held.abort()  # job 2 returns: 3 tuples in a space of capacity 2
    with space.transaction() as tx:  # writing nothing, it fits
        assert tx.read(("job", 3)) == ("job", 3)
    assert tx.state == "committed"
    assert sorted(space.read_all((str, int))) == [("job", 2), ("job", 3), ("result", 1)]


def test_a_closed_space_releases_waiting_writers(make_space: Any) -> None:
    space = make_space(capacity=1)
    space.write(("a",))
    writer = spawn(space.write, ("b",))
    wait_for_waiters(space, 1)
    space.close()
    with pytest.raises(ts.SpaceClosed):
        writer.result(PATIENCE)


def test_waiting_writers_count_against_max_waiters(make_space: Any) -> None:
    space = make_space(capacity=1, max_waiters=1)
    space.write(("a",))
    writer = spawn(space.write, ("b",))
    wait_for_waiters(space, 1)
    with pytest.raises(ts.LimitReached) as info:
        space.write(("c",))
    assert info.value.limit == "max_waiters"
    space.take(("a",))
    writer.result(PATIENCE)
    assert space.read_all((str,)) == [("b",)]


def test_replace_in_a_full_space_does_not_let_a_waiting_writer_in(make_space: Any) -> None:
    space = make_space(capacity=1)
    space.write(("counter", 0))
    writer = spawn(space.write, ("other",), timeout=600)
    wait_for_waiters(space, 1)
    space.replace(("counter", int), lambda t: ("counter", t[1] + 1))
    assert space.statistics()["tuples"] == 1
    assert space.read_all((str, ANY)) == [("counter", 1)]
    assert space.statistics()["waiting_writers"] == 1
    space.take(("counter", int))
    writer.result(PATIENCE)
    assert space.read_all((str,)) == [("other",)]
