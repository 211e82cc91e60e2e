"""Transactions: isolation, commit, abort, leases, and waiting inside a transaction.

Written once against the ``space`` fixtures, so they run over every way of running
a space (the asyncio way through the adapter of the conformance kit, ``tuplespace.testing``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters
from tuplespace import ANY

JOBS = [("job", n) for n in range(5)]


# -- isolation -------------------------------------------------------------------------


def test_writes_are_invisible_to_others_until_commit(space: Any) -> None:
    tx = space.transaction()
    other = space.transaction()
    tx.write(("job", 1))
    tx.write_many([("job", 2), ("job", 3)], lease=60)
    assert space.try_read(("job", int)) is None
    assert space.count(("job", int)) == 0
    assert space.read_all(("job", int)) == []
    assert other.try_read(("job", int)) is None
    assert other.count(("job", int)) == 0
    assert tx.try_read(("job", int)) == ("job", 1)
    assert tx.count(("job", int)) == 3
    assert space.statistics()["tuples"] == 0

    tx.commit()
    assert tx.state == "committed"
    assert space.read_all(("job", int)) == [("job", 1), ("job", 2), ("job", 3)]
    assert other.read_all(("job", int)) == [("job", 1), ("job", 2), ("job", 3)]  # read committed
    other.abort()


def test_takes_are_held_out_of_everyones_view(space: Any) -> None:
    space.write_many(JOBS)
    tx = space.transaction()
    other = space.transaction()
    assert tx.take(("job", int)) == ("job", 0)
    assert tx.try_take(("job", 3)) == ("job", 3)
    assert space.read_all(("job", int)) == [("job", 1), ("job", 2), ("job", 4)]
    assert space.try_take(("job", 0)) is None
    assert other.try_read(("job", 3)) is None
    assert other.count(("job", int)) == 3
    assert tx.try_read(("job", 0)) is None  # its own take is gone for it too
    assert tx.count(("job", int)) == 3
    tx.commit()
    assert space.read_all(("job", int)) == [("job", 1), ("job", 2), ("job", 4)]
    assert space.statistics()["tuples"] == 3


def test_a_tuple_taken_outside_is_gone_for_a_transaction_that_read_it(space: Any) -> None:
    space.write(("job", 1))
    with space.transaction() as tx:
        assert tx.read(("job", int)) == ("job", 1)
        assert space.take(("job", int)) == ("job", 1)
        assert tx.try_read(("job", int)) is None
        assert tx.try_take(("job", int)) is None


# -- commit and abort ---------------------------------------------------------------------


def test_leaving_the_block_commits(space: Any) -> None:
    space.write_many(JOBS[:2])
    with space.transaction() as tx:
        assert tx.take(("job", 0)) == ("job", 0)
        tx.write(("result", 0))
    assert tx.state == "committed"
    assert space.read_all((str, int)) == [("job", 1), ("result", 0)]
    stats = space.statistics()
    assert (stats["commits"], stats["aborts"], stats["transactions"]) == (1, 0, 0)


@pytest.mark.embedded("the count of commits after plain takes (the server counts their claims)")
def test_an_exception_in_the_block_aborts_and_puts_everything_back_in_place(space: Any) -> None:
    space.write_many(JOBS)
    tx = space.transaction()

    def fail_inside() -> None:
        with tx:
            assert tx.take(("job", 1)) == ("job", 1)
            assert tx.take(("job", 3)) == ("job", 3)
            tx.write(("result", 1))
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        fail_inside()
    assert tx.state == "aborted"
    assert space.read_all((str, int)) == JOBS
    assert [space.take(("job", int)) for _ in JOBS] == JOBS
    stats = space.statistics()
    assert (stats["commits"], stats["aborts"], stats["transactions"]) == (0, 1, 0)


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_abort_puts_taken_tuples_back_at_their_place(make_space: Any, order: str) -> None:
    space = make_space(order=order)
    space.write_many(JOBS)
    tx = space.transaction()
    taken = [tx.take(("job", int)), tx.take(("job", int))]
    space.write(("job", 5))
    tx.abort()
    expected = [*JOBS, ("job", 5)]
    if order == "lifo":
        expected.reverse()
        assert taken == [("job", 4), ("job", 3)]
    else:
        assert taken == [("job", 0), ("job", 1)]
    assert space.read_all(("job", int)) == expected
    assert [space.take(("job", int)) for _ in expected] == expected


def test_a_tuple_handed_to_a_waiting_transaction_take_returns_to_its_place_on_abort(space: Any) -> None:
    space.write(("a",))
    tx = space.transaction()
    taker = spawn(tx.take, ("b",))
    wait_for_waiters(space, 1)
    space.write(("b",))
    assert taker.result(PATIENCE) == ("b",)
    space.write(("c",))
    assert space.read_all((str,)) == [("a",), ("c",)]
    tx.abort()
    assert space.read_all((str,)) == [("a",), ("b",), ("c",)]


def test_a_waiting_take_all_in_a_transaction_holds_what_a_write_many_brings_until_abort(
    space: Any,
) -> None:
    space.write(("a", 0))
    tx = space.transaction()
    taker = spawn(tx.take_all, ("b", int), limit=2, timeout=PATIENCE * 10)
    wait_for_waiters(space, 1)
    space.write_many([("b", 1), ("c", 1), ("b", 2), ("b", 3)])
    assert taker.result(PATIENCE) == [("b", 1), ("b", 2)]
    assert space.read_all((str, int)) == [("a", 0), ("c", 1), ("b", 3)]
    tx.abort()
    assert space.read_all((str, int)) == [("a", 0), ("b", 1), ("c", 1), ("b", 2), ("b", 3)]


def test_a_waiting_read_all_in_a_transaction_sees_a_commit_of_another(space: Any) -> None:
    mine = space.transaction()
    reader = spawn(mine.read_all, ("job", int), timeout=PATIENCE * 10)
    wait_for_waiters(space, 1)
    with space.transaction() as other:
        other.write_many([("job", 1), ("job", 2)])
    assert reader.result(PATIENCE) == [("job", 1), ("job", 2)]
    mine.commit()


def test_a_tuple_whose_lease_ran_out_while_held_expires_instead_of_coming_back(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    sim_space.write(("job", 1), lease=10)
    sim_space.write(("job", 2))
    tx = sim_space.transaction(lease=60)
    assert tx.take_all(("job", int)) == [("job", 1), ("job", 2)]
    clock.advance(10)
    assert tx.state == "active"
    tx.abort()
    assert sim_space.read_all(("job", int)) == [("job", 2)]
    assert sim_space.statistics()["expired"] == 1


def test_abort_puts_back_leased_tuples_which_then_expire_at_their_time(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    sim_space.write(("job", 1), lease=30)
    sim_space.write(("job", 2), lease=40)
    tx = sim_space.transaction(lease=60)
    assert tx.take_all(("job", int)) == [("job", 1), ("job", 2)]
    tx.abort()
    assert sim_space.read_all(("job", int)) == [("job", 1), ("job", 2)]
    clock.advance(30)
    assert sim_space.read_all(("job", int)) == [("job", 2)]
    clock.advance(10)
    assert sim_space.read_all(("job", int)) == []
    assert sim_space.statistics()["expired"] == 2


def test_own_writes_taken_inside_are_never_written(space: Any) -> None:
    with space.transaction() as tx:
        tx.write(("tmp", 1))
        tx.write(("keep", 1))
        assert tx.take(("tmp", int)) == ("tmp", 1)
        assert tx.try_read(("tmp", int)) is None
    assert space.read_all((str, int)) == [("keep", 1)]


def test_a_write_lease_counts_from_commit(sim_space: Any, clock: ts.SimulatedClock) -> None:
    tx = sim_space.transaction()
    tx.write(("token",), lease=10)
    clock.advance(5)
    tx.commit()
    clock.advance(9.5)
    assert sim_space.count(("token",)) == 1
    clock.advance(0.5)
    assert sim_space.count(("token",)) == 0


def test_an_invalid_write_is_refused_at_once(space: Any) -> None:
    with space.transaction() as tx:
        with pytest.raises(ts.InvalidValue):
            tx.write(("job", float("nan")))
        with pytest.raises(ts.InvalidValue):
            tx.write(("job", 1), lease=-1)
        with pytest.raises(ts.InvalidValue):
            tx.write_many([("job", 2), ("job", float("inf"))])
        tx.write(("job", 3))
    assert space.read_all(("job", ANY)) == [("job", 3)]


# -- leases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_lease_running_out_aborts_by_itself(make_space: Any, clock: ts.SimulatedClock, order: str) -> None:
    space = make_space(clock=clock, order=order)
    space.write_many(JOBS)
    tx = space.transaction(lease=10)
    assert tx.expires_at == clock.now() + 10
    tx.take(("job", 1))
    tx.take(("job", 3))
    tx.write(("result", 1))
    clock.advance(9.5)
    assert tx.state == "active"
    assert space.count(("job", int)) == 3
    clock.advance(0.5)
    assert tx.state == "aborted"
    expected = JOBS if order == "fifo" else JOBS[::-1]
    assert space.read_all(("job", int)) == expected
    assert space.count(("result", int)) == 0
    with pytest.raises(ts.TransactionAborted):
        tx.write(("result", 2))
    stats = space.statistics()
    assert (stats["aborts"], stats["transactions"]) == (1, 0)


def test_a_renewed_transaction_lasts_longer(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.write(("job", 1))
    tx = sim_space.transaction(lease=10)
    tx.take(("job", 1))
    clock.advance(8)
    tx.renew(10)
    assert tx.expires_at == clock.now() + 10
    clock.advance(8)
    assert tx.state == "active"
    clock.advance(2)
    assert tx.state == "aborted"
    assert sim_space.read_all(("job", int)) == [("job", 1)]


def test_a_transaction_without_a_lease_never_runs_out(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.write(("job", 1))
    tx = sim_space.transaction(lease=None)
    assert tx.expires_at is None
    tx.take(("job", 1))
    clock.advance(10**9)
    tx.commit()
    assert sim_space.count(("job", 1)) == 0


def test_an_abandoned_transaction_aborts_with_nobody_calling(space: Any) -> None:
    space.write(("job", 1))
    tx = space.transaction(lease=0.5)  # long enough for the take below on a busy machine
    assert tx.take(("job", int)) == ("job", 1)
    taker = spawn(space.take, ("job", int))  # served only when the transaction gives the job back
    assert taker.result(PATIENCE) == ("job", 1)
    assert tx.state == "aborted"


# -- waiting inside a transaction --------------------------------------------------------------


def test_a_blocking_take_in_a_transaction_is_woken_by_a_later_write(space: Any) -> None:
    tx = space.transaction()
    taker = spawn(tx.take, ("job", int))
    wait_for_waiters(space, 1)
    space.write(("other", 1))
    space.write(("job", 7))
    assert taker.result(PATIENCE) == ("job", 7)
    assert space.count(("job", int)) == 0
    assert space.statistics()["waiters"] == 0
    tx.commit()
    assert space.count(("job", int)) == 0
    assert space.read_all((str, int)) == [("other", 1)]


def test_a_blocking_read_in_a_transaction_sees_a_later_write(space: Any) -> None:
    with space.transaction() as tx:
        reader = spawn(tx.read, ("job", int))
        wait_for_waiters(space, 1)
        space.write(("job", 7))
        assert reader.result(PATIENCE) == ("job", 7)
    assert space.read_all(("job", int)) == [("job", 7)]


def test_a_blocking_take_in_a_transaction_times_out(sim_space: Any, clock: ts.SimulatedClock) -> None:
    tx = sim_space.transaction()
    taker = spawn(tx.take, ("job", int), timeout=5)
    wait_for_waiters(sim_space, 1)
    clock.advance(5)
    with pytest.raises(ts.Timeout):
        taker.result(PATIENCE)
    assert tx.state == "active"
    sim_space.write(("job", 1))
    tx.commit()
    assert sim_space.read_all(("job", int)) == [("job", 1)]


def abort_by_call(space: Any, clock: ts.SimulatedClock, tx: Any) -> None:
    tx.abort()


def abort_by_lease(space: Any, clock: ts.SimulatedClock, tx: Any) -> None:
    clock.advance(600)


@pytest.mark.parametrize("abort", [abort_by_call, abort_by_lease], ids=["abort", "lease"])
def test_a_waiting_take_is_released_with_transaction_aborted(
    sim_space: Any, clock: ts.SimulatedClock, abort: Callable[..., None]
) -> None:
    # A lease longer than the test waits: only the simulated clock's advance ends it.
    tx = sim_space.transaction(lease=600)
    takers = [spawn(tx.take, ("job", int)), spawn(tx.read, ("other",), timeout=600)]
    wait_for_waiters(sim_space, 2)
    abort(sim_space, clock, tx)
    for taker in takers:
        with pytest.raises(ts.TransactionAborted):
            taker.result(PATIENCE)
    assert sim_space.statistics()["waiters"] == 0
    sim_space.write(("job", 1))
    assert sim_space.read_all(("job", int)) == [("job", 1)]


def test_closing_the_space_aborts_open_transactions(space: Any) -> None:
    space.write(("job", 1))
    tx = space.transaction()
    tx.take(("job", 1))
    space.close()
    assert tx.state == "aborted"


# -- an ended transaction ------------------------------------------------------------------

OPERATIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("write", lambda tx: tx.write(("job", 9))),
    ("write_many", lambda tx: tx.write_many([("job", 9)])),
    ("read", lambda tx: tx.read(("job", int), timeout=0)),
    ("read-forever", lambda tx: tx.read(("nothing",))),
    ("take", lambda tx: tx.take(("job", int))),
    ("try_read", lambda tx: tx.try_read(("job", int))),
    ("try_take", lambda tx: tx.try_take(("job", int))),
    ("read_all", lambda tx: tx.read_all(("job", int))),
    ("take_all", lambda tx: tx.take_all(("job", int))),
    ("commit", lambda tx: tx.commit()),
    ("renew", lambda tx: tx.renew(30)),
]


@pytest.mark.parametrize("operation", [op for _, op in OPERATIONS], ids=[name for name, _ in OPERATIONS])
def test_a_committed_transaction_refuses_every_operation(
    space: Any, operation: Callable[[Any], object]
) -> None:
    space.write(("job", 1))
    tx = space.transaction()
    tx.take(("job", 1))
    tx.commit()
    with pytest.raises(ts.TransactionError) as info:
        operation(tx)
    assert not isinstance(info.value, ts.TransactionAborted)
    tx.abort()  # aborting an ended transaction changes nothing
    assert tx.state == "committed"
    assert space.count(("job", int)) == 0
    assert space.statistics()["waiters"] == 0


@pytest.mark.parametrize("operation", [op for _, op in OPERATIONS], ids=[name for name, _ in OPERATIONS])
def test_an_aborted_transaction_refuses_every_operation(
    space: Any, operation: Callable[[Any], object]
) -> None:
    space.write(("job", 1))
    tx = space.transaction()
    tx.take(("job", 1))
    tx.abort()
    with pytest.raises(ts.TransactionAborted):
        operation(tx)
    assert tx.state == "aborted"
    assert space.read_all(("job", int)) == [("job", 1)]
    assert space.statistics()["waiters"] == 0


def test_count_on_an_ended_transaction_raises(space: Any) -> None:
    tx = space.transaction()
    tx.abort()
    with pytest.raises(ts.TransactionAborted):
        tx.count(("job", int))


# -- own writes, order, take_all and count inside -----------------------------------------------


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_own_writes_are_seen_after_the_space_in_fifo_and_before_it_in_lifo(
    make_space: Any, order: str
) -> None:
    space = make_space(order=order)
    space.write_many([("job", 1), ("job", 2)])
    with space.transaction() as tx:
        tx.write(("job", 3))
        tx.write(("job", 4))
        expected = [("job", n) for n in (1, 2, 3, 4)]
        if order == "lifo":
            expected.reverse()
        assert tx.read_all(("job", int)) == expected
        assert tx.read_all(("job", int), limit=3) == expected[:3]
        assert tx.try_read(("job", int)) == expected[0]
        assert tx.read(("job", int)) == expected[0]
        assert tx.count(("job", int)) == 4
        assert space.count(("job", int)) == 2
        assert [tx.take(("job", int)) for _ in range(3)] == expected[:3]
        assert tx.read_all(("job", int)) == expected[3:]
    assert space.read_all(("job", int)) == expected[3:]


def test_own_writes_become_the_newest_at_commit(space: Any) -> None:
    space.write(("job", 1))
    tx = space.transaction()
    tx.write(("job", 2))
    space.write(("job", 3))
    tx.commit()
    assert space.read_all(("job", int)) == [("job", 1), ("job", 3), ("job", 2)]


def test_take_all_and_count_inside_a_transaction(space: Any) -> None:
    space.write_many([("job", 1), ("job", 2), ("other", 1), ("job", 3)])
    tx = space.transaction()
    tx.write_many([("job", 4), ("job", "x")])
    assert tx.count(("job", int)) == 4
    assert tx.count(("job", ANY)) == 5
    assert tx.take_all(("job", int), limit=2) == [("job", 1), ("job", 2)]
    assert tx.count(("job", int)) == 2
    assert space.count(("job", int)) == 1
    assert tx.take_all(("job", int)) == [("job", 3), ("job", 4)]
    assert tx.count(("job", int)) == 0
    assert tx.read_all(("job", ANY)) == [("job", "x")]
    tx.commit()
    assert space.read_all((str, ANY)) == [("other", 1), ("job", "x")]
    assert space.statistics()["tuples"] == 2


def test_take_all_inside_an_aborted_transaction_comes_back_in_order(space: Any) -> None:
    space.write_many(JOBS)
    tx = space.transaction()
    assert tx.take_all(("job", int)) == JOBS
    assert space.count(("job", int)) == 0
    tx.abort()
    assert space.read_all(("job", int)) == JOBS


# -- statistics --------------------------------------------------------------------------------


def test_statistics_count_transactions_commits_and_aborts(space: Any) -> None:
    space.write_many(JOBS)
    first = space.transaction()
    second = space.transaction()
    assert space.statistics()["transactions"] == 2
    first.take(("job", 0))
    second.take(("job", 1))
    first.commit()
    second.abort()
    with space.transaction() as third:
        third.write(("result", 0))
    stats = space.statistics()
    assert (stats["transactions"], stats["commits"], stats["aborts"]) == (0, 2, 1)
    assert stats["tuples"] == 5


# -- asyncio ------------------------------------------------------------------------------------


def test_async_with_commits_aborts_and_waits() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        await aspace.write_many(JOBS)
        async with aspace.transaction() as tx:
            assert await tx.take(("job", int)) == ("job", 0)
            await tx.write(("result", 0))
            assert await aspace.try_read(("result", int)) is None
        assert tx.state == "committed"
        assert await aspace.read_all(("result", int)) == [("result", 0)]

        tx = aspace.transaction()

        async def fail_inside() -> None:
            async with tx:
                assert await tx.take(("job", int)) == ("job", 1)
                raise RuntimeError("failed")

        with pytest.raises(RuntimeError):
            await fail_inside()
        assert tx.state == "aborted"
        assert await aspace.read_all(("job", int)) == JOBS[1:]

        async with aspace.transaction() as tx:
            task = asyncio.create_task(tx.take(("late", int)))
            async with asyncio.timeout(PATIENCE):
                while (await aspace.statistics())["waiters"] != 1:
                    await asyncio.sleep(0)
            await aspace.write(("late", 1))
            assert await task == ("late", 1)
            assert await aspace.count(("late", int)) == 0

        tx = aspace.transaction()
        task = asyncio.create_task(tx.take(("never",)))
        async with asyncio.timeout(PATIENCE):
            while (await aspace.statistics())["waiters"] != 1:
                await asyncio.sleep(0)
        await tx.abort()
        with pytest.raises(ts.TransactionAborted):
            await task
        assert (await aspace.statistics())["transactions"] == 0

    asyncio.run(main())
