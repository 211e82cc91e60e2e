"""What only the thread-safe :class:`tuplespace.Space` has: len, repr, context manager,
its properties and its use of the real clock."""

from __future__ import annotations

import gc
import weakref

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until


def test_len_counts_live_tuples() -> None:
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock)
    assert len(space) == 0
    space.write_many([("a",), ("b", 1)])
    space.write(("c",), lease=5)
    assert len(space) == 3
    clock.advance(5)
    assert len(space) == 2
    space.take(("a",))
    assert len(space) == 1


def test_repr_and_properties() -> None:
    clock = ts.SimulatedClock()
    limits = ts.Limits(max_fields=4)
    space = ts.Space(order="lifo", clock=clock, limits=limits)
    space.write(("a",))
    assert repr(space) == "Space(order='lifo', tuples=1)"
    assert space.order == "lifo"
    assert space.clock is clock
    assert space.limits is limits
    assert isinstance(ts.Space().clock, ts.SystemClock)


def test_options_are_keywords() -> None:
    with pytest.raises(TypeError):
        ts.Space("lifo")  # type: ignore[call-arg]


def test_with_closes_the_space_and_releases_waiters() -> None:
    with ts.Space() as space:
        taker = spawn(space.take, ("a",))
        wait_for_waiters(space, 1)
    with pytest.raises(ts.SpaceClosed):
        taker.result(PATIENCE)
    assert space.statistics()["closed"] is True


def test_close_twice_is_harmless() -> None:
    space = ts.Space()
    space.close()
    space.close()
    with pytest.raises(ts.SpaceClosed):
        space.write(("a",))


def test_a_lease_runs_out_on_the_real_clock() -> None:
    space = ts.Space()
    space.write(("short",), lease=0.01)
    space.write(("long",), lease=3600)
    wait_until(lambda: space.count(("short",)) == 0, "the short lease to run out")
    assert space.read_all((str,)) == [("long",)]


def test_a_space_on_a_simulated_clock_can_be_collected() -> None:
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock)
    ref = weakref.ref(space)
    del space
    gc.collect()
    assert ref() is None
    clock.advance(1)


def test_advancing_the_clock_of_a_closed_space_is_harmless() -> None:
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock)
    space.write(("a",), lease=1)
    space.close()
    clock.advance(2)
    assert space.statistics()["tuples"] == 0


def test_one_clock_drives_many_spaces() -> None:
    clock = ts.SimulatedClock()
    spaces = [ts.Space(clock=clock) for _ in range(3)]
    takers = [spawn(s.take, ("a",), timeout=10) for s in spaces]
    for s in spaces:
        wait_for_waiters(s, 1)
    clock.advance(10)
    for t in takers:
        with pytest.raises(ts.Timeout):
            t.result(PATIENCE)


def test_a_hook_runs_at_the_end_of_every_operation_and_its_changes_belong_to_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock)
    seen: list[int] = []

    def count_and_mark() -> None:
        # with the lock held, after the operation's events: what it writes is part of the operation
        seen.append(space.core.engine.last_event)
        if space.core.engine.last_seq == 1:
            space.core.engine.write(("mark",))

    space.after_operations(count_and_mark)
    space.after_operations(count_and_mark)  # again: nothing more
    space.write(("a",), lease=5)
    assert space.try_read(("mark",)) == ("mark",)  # done when the write returned
    assert seen[0] == 1
    clock.advance(5)  # the expiry, on the clock's own call, ends an operation too
    assert seen[-1] == space.core.engine.last_event == 3
    before = len(seen)
    space.count(("a",))
    assert len(seen) == before + 1

    def broken() -> None:
        raise RuntimeError("boom")

    space.after_operations(broken)
    space.write(("b",))  # the write happened; the hook's failure is logged, not raised
    assert space.count(("b",)) == 1
    assert "a hook of a space failed" in caplog.text
    with pytest.raises(TypeError, match="callable"):
        space.after_operations(42)  # type: ignore[arg-type]


def test_the_timer_ends_its_operations_with_the_hooks() -> None:
    space = ts.Space()  # the real clock: a lease runs out while a take waits, on the timer's thread
    noted = [0]

    def note_expiries() -> None:
        expired = space.core.engine.statistics()["expired"]
        if expired > noted[0]:
            noted[0] = expired
            space.core.engine.write(("expired", expired))

    space.after_operations(note_expiries)
    space.subscribe(("short",), {"expire"})  # a subscriber to expiries starts the timer
    space.write(("short",), lease=0.2)
    assert space.take(("expired", int), timeout=PATIENCE) == ("expired", 1)


def test_handles_hold_the_core_not_the_space_face() -> None:
    space = ts.Space()
    lease = space.write(("job", 1), lease=60)
    rec = space.create("sensors/kitchen", {"temp": 21})
    sub = space.subscribe(("job", int), {"write"})
    tx = space.transaction()
    core = space.core
    face = weakref.ref(space)
    del space
    gc.collect()
    assert face() is None  # the handles keep the space's core, not its thread face
    lease.renew(30)
    assert rec.set("temp", 22) == 2
    tx.write(("job", 2))
    tx.commit()
    assert sub.get(timeout=PATIENCE).tuple == ("job", 2)
    assert ts.Space.over(core).count(("job", int)) == 2
