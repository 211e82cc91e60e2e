"""Leases and timeouts on a SimulatedClock: time moves only when the test says so."""

from __future__ import annotations

from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import ANY


def test_a_lease_expires_exactly_at_its_time(sim_space: Any, clock: ts.SimulatedClock) -> None:
    start = clock.now()
    lease = sim_space.write(("token",), lease=10)
    assert lease.expires_at == start + 10
    clock.advance(9.5)
    assert sim_space.try_read(("token",)) == ("token",)
    clock.advance(0.25)
    assert sim_space.count(("token",)) == 1
    clock.advance(0.25)
    assert clock.now() == start + 10
    assert sim_space.try_read(("token",)) is None
    assert sim_space.statistics()["tuples"] == 0


def test_expired_tuples_are_never_returned(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.write(("job", 1), lease=5)
    sim_space.write(("job", 2))
    sim_space.write(("job", 3), lease=50)
    clock.advance(5)
    assert sim_space.read_all(("job", int)) == [("job", 2), ("job", 3)]
    assert sim_space.count(("job", ANY)) == 2
    assert sim_space.take(("job", int), timeout=0) == ("job", 2)
    clock.advance(45)
    assert sim_space.take_all(("job", int)) == []


def test_a_blocking_take_times_out_only_when_the_clock_passes_its_timeout(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    taker = spawn(sim_space.take, ("job", int), timeout=5)
    wait_for_waiters(sim_space, 1)
    clock.advance(4.5)
    assert sim_space.statistics()["waiters"] == 1
    clock.advance(0.49)
    assert sim_space.statistics()["waiters"] == 1
    assert not taker.done()
    clock.advance(0.02)
    with pytest.raises(ts.Timeout):
        taker.result(PATIENCE)
    assert sim_space.statistics()["waiters"] == 0
    sim_space.write(("job", 1))
    assert sim_space.count(("job", int)) == 1


def test_a_blocking_read_is_served_before_its_timeout(sim_space: Any, clock: ts.SimulatedClock) -> None:
    reader = spawn(sim_space.read, ("job", int), timeout=5)
    wait_for_waiters(sim_space, 1)
    clock.advance(4)
    sim_space.write(("job", 1))
    assert reader.result(PATIENCE) == ("job", 1)
    clock.advance(10)
    assert sim_space.count(("job", int)) == 1


def test_waits_with_different_timeouts_end_in_their_order(sim_space: Any, clock: ts.SimulatedClock) -> None:
    waits = {}
    for timeout in (30, 10, 20):
        waits[timeout] = spawn(sim_space.take, ("job", timeout), timeout=timeout)
        wait_for_waiters(sim_space, len(waits))
    for elapsed, left in [(10, 2), (20, 1), (30, 0)]:
        clock.advance(10)
        assert sim_space.statistics()["waiters"] == left
        with pytest.raises(ts.Timeout):
            waits[elapsed].result(PATIENCE)
        assert not any(w.done() for t, w in waits.items() if t > elapsed)


def test_a_read_a_take_all_and_a_write_into_a_full_space_end_when_the_clock_passes_their_deadline(
    make_space: Any, clock: ts.SimulatedClock
) -> None:
    space = make_space(capacity=1, clock=clock)
    space.write(("full",))
    writer = spawn(space.write, ("job", 1), timeout=100)
    group = spawn(space.take_all, ("job", str), timeout=100)
    reader = spawn(space.read, ("job", float), timeout=200)
    wait_for_waiters(space, 3)
    clock.advance(99.5)
    assert space.statistics()["waiters"] == 3
    clock.advance(0.5)
    assert space.statistics()["waiters"] == 1  # the read waits on
    with pytest.raises(ts.Timeout):
        writer.result(PATIENCE)
    assert group.result(PATIENCE) == []
    assert not reader.done()
    clock.advance(100)
    assert space.statistics()["waiters"] == 0
    with pytest.raises(ts.Timeout):
        reader.result(PATIENCE)
    assert space.read_all((ANY, ANY)) == []


def test_a_take_record_and_a_subscriptions_get_end_when_the_clock_passes_their_deadline(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    with sim_space.subscribe(("news",)) as sub:
        records = spawn(sim_space.take_record, {"kind": "job"}, timeout=100)
        news = spawn(sub.get, timeout=100)
        wait_until(lambda: sim_space.statistics()["record_takers"] == 1, "the take to wait")
        clock.advance(99.5)
        sim_space.create("note", {"kind": "note"})  # a change of a record: the take looks again, and waits on
        sim_space.write(("other",))  # a write: the subscription reads the log, and waits on
        assert sim_space.statistics()["record_takers"] == 1
        assert not news.done()
        clock.advance(0.5)
        with pytest.raises(ts.Timeout):
            records.result(PATIENCE)
        with pytest.raises(ts.Timeout):
            news.result(PATIENCE)
        assert sim_space.statistics()["record_takers"] == 0


def test_a_renewed_lease_outlives_the_old_expiry(sim_space: Any, clock: ts.SimulatedClock) -> None:
    start = clock.now()
    lease = sim_space.write(("presence", "node-7"), lease=10)
    clock.advance(5)
    lease.renew(10)
    assert lease.expires_at == start + 15
    clock.advance(6)  # past the first expiry
    assert sim_space.count(("presence", str)) == 1
    clock.advance(3.5)
    assert sim_space.count(("presence", str)) == 1
    clock.advance(0.5)
    assert sim_space.count(("presence", str)) == 0
    with pytest.raises(ts.UnknownLease):
        lease.renew(10)


def test_a_shortened_lease_expires_early(sim_space: Any, clock: ts.SimulatedClock) -> None:
    lease = sim_space.write(("presence", "node-7"), lease=100)
    lease.renew(1)
    clock.advance(1)
    assert sim_space.count(("presence", str)) == 0
    clock.advance(100)
    assert sim_space.statistics()["expired"] == 1


def test_a_lease_renewed_many_times_expires_once(sim_space: Any, clock: ts.SimulatedClock) -> None:
    lease = sim_space.write(("presence", "node-7"), lease=10)
    for _ in range(20):
        clock.advance(5)
        lease.renew(10)
    assert sim_space.count(("presence", str)) == 1
    clock.advance(10)
    assert sim_space.count(("presence", str)) == 0
    clock.advance(1000)
    assert sim_space.statistics()["expired"] == 1


def test_statistics_count_tuples_leases_and_expiries(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.write(("a", 1), lease=10)
    sim_space.write(("a", 2), lease=20)
    forever = sim_space.write(("a", 3))
    sim_space.write(("b",), lease=30)
    stats = sim_space.statistics()
    assert stats["tuples"] == 4
    assert stats["leased_tuples"] == 3
    assert stats["expired"] == 0
    assert stats["arities"] == [1, 2]
    assert stats["order"] == "fifo"
    assert stats["closed"] is False

    clock.advance(10)
    stats = sim_space.statistics()
    assert (stats["tuples"], stats["leased_tuples"], stats["expired"]) == (3, 2, 1)

    forever.renew(5)
    assert sim_space.statistics()["leased_tuples"] == 3
    sim_space.take(("a", 2))
    stats = sim_space.statistics()
    assert (stats["tuples"], stats["leased_tuples"], stats["expired"]) == (2, 2, 1)

    clock.advance(30)
    stats = sim_space.statistics()
    assert (stats["tuples"], stats["leased_tuples"], stats["expired"]) == (0, 0, 3)
    assert stats["arities"] == []


def test_a_cancelled_lease_is_not_counted_as_expired(sim_space: Any, clock: ts.SimulatedClock) -> None:
    lease = sim_space.write(("a",), lease=10)
    lease.cancel()
    clock.advance(20)
    stats = sim_space.statistics()
    assert (stats["tuples"], stats["leased_tuples"], stats["expired"]) == (0, 0, 0)


def test_a_leased_tuple_handed_to_a_waiting_taker(sim_space: Any, clock: ts.SimulatedClock) -> None:
    taker = spawn(sim_space.take, ("job", int))
    wait_for_waiters(sim_space, 1)
    lease = sim_space.write(("job", 1), lease=10)
    assert taker.result(PATIENCE) == ("job", 1)
    with pytest.raises(ts.UnknownLease):
        lease.cancel()
    clock.advance(20)
    assert sim_space.statistics()["expired"] == 0


def test_no_real_time_passes_on_a_simulated_clock(sim_space: Any, clock: ts.SimulatedClock) -> None:
    start = clock.now()
    sim_space.write(("a",), lease=1e-6)
    with pytest.raises(ts.Timeout):
        sim_space.take(("b",), timeout=0)
    assert clock.now() == start
    assert sim_space.count(("a",)) == 1
    clock.advance(1e-6)
    assert sim_space.count(("a",)) == 0


def test_timeout_zero_on_a_simulated_clock_never_waits(sim_space: Any) -> None:
    with pytest.raises(ts.Timeout):
        sim_space.read(("a",), timeout=0)
    assert sim_space.statistics()["waiters"] == 0
