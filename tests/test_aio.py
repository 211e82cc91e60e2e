"""The asyncio space: coroutines and threads on one space, cancellation, timeouts."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_until


async def waiters(aspace: ts.AsyncSpace, n: int) -> None:
    async with asyncio.timeout(PATIENCE):
        while (await aspace.statistics())["waiters"] != n:
            await asyncio.sleep(0)


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_a_thread_and_a_coroutine_coordinate_through_one_space() -> None:
    space = ts.Space()
    aspace = ts.AsyncSpace(space)

    def echo() -> int:
        served = 0
        while True:
            _, n = space.take(("ping", int))
            if n < 0:
                return served
            space.write(("pong", n + 1))
            served += 1

    async def main() -> None:
        thread = spawn(echo)
        for n in range(200):
            await aspace.write(("ping", n))
            assert await aspace.take(("pong", int)) == ("pong", n + 1)
        await aspace.write(("ping", -1))
        assert thread.result(PATIENCE) == 200

    run(main)
    assert space.statistics()["tuples"] == 0
    assert space.statistics()["waiters"] == 0


def test_a_coroutine_waits_for_a_write_from_a_thread() -> None:
    space = ts.Space()
    aspace = ts.AsyncSpace(space)

    async def main() -> None:
        task = asyncio.create_task(aspace.read(("job", int)))
        await waiters(aspace, 1)
        await asyncio.to_thread(space.write, ("job", 1))
        assert await task == ("job", 1)
        assert await aspace.count(("job", int)) == 1

    run(main)


def test_threads_writing_at_once_wake_every_coroutine_waiting() -> None:
    space = ts.Space()
    aspace = ts.AsyncSpace(space)
    threads, per_thread = 4, 500

    def writer(first: int) -> None:
        for k in range(first, first + per_thread):
            space.write(("job", k))

    async def main() -> None:
        n = threads * per_thread
        takers = [asyncio.create_task(aspace.take(("job", k))) for k in range(n)]
        await waiters(aspace, n)
        writers = [spawn(writer, i * per_thread) for i in range(threads)]
        async with asyncio.timeout(PATIENCE):
            assert await asyncio.gather(*takers) == [("job", k) for k in range(n)]
        for w in writers:
            w.result(PATIENCE)

    run(main)
    assert space.statistics()["tuples"] == space.statistics()["waiters"] == 0


def test_a_thread_waits_for_a_write_from_a_coroutine() -> None:
    space = ts.Space()
    aspace = ts.AsyncSpace(space)
    taker = spawn(space.take, ("job", int))
    wait_until(lambda: space.statistics()["waiters"] == 1)

    async def main() -> None:
        await aspace.write(("job", 1))

    run(main)
    assert taker.result(PATIENCE) == ("job", 1)
    assert space.statistics()["tuples"] == 0


def test_coroutines_are_served_in_arrival_order() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        tasks = []
        for _ in range(5):
            tasks.append(asyncio.create_task(aspace.take(("job", int))))
            await waiters(aspace, len(tasks))
        await aspace.write_many([("job", n) for n in range(5)])
        assert await asyncio.gather(*tasks) == [("job", n) for n in range(5)]

    run(main)


@pytest.mark.parametrize("op", ["take", "read", "take_all", "read_all"])
@pytest.mark.parametrize("timeout", [None, 600], ids=["forever", "timed"])
def test_cancelling_a_waiting_call_leaves_no_waiter_and_takes_nothing(op: str, timeout: float | None) -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        task = asyncio.create_task(getattr(aspace, op)(("job", int), timeout=timeout))
        await waiters(aspace, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await aspace.statistics())["waiters"] == 0
        await aspace.write(("job", 1))
        assert await aspace.read_all(("job", int)) == [("job", 1)]

    run(main)


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_take_all_cancelled_after_the_handover_puts_every_tuple_back_in_its_place(order: str) -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace(order=order)
        await aspace.write(("job", 0))
        task = asyncio.create_task(aspace.take_all(("job", int, str), timeout=None))
        await waiters(aspace, 1)
        # Handed to the task, which has not resumed yet.
        await aspace.write_many([("job", 1, "a"), ("job", 2), ("job", 3, "b")])
        assert (await aspace.statistics())["tuples"] == 2
        await aspace.write(("job", 4, "c"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await aspace.statistics())["waiters"] == 0
        expected = [("job", 1, "a"), ("job", 3, "b"), ("job", 4, "c")]
        if order == "lifo":
            expected.reverse()
        assert await aspace.read_all(("job", int, str)) == expected
        assert await aspace.take_all(("job", int, str)) == expected
        assert (await aspace.statistics())["takes"] == 3  # a take its caller never received is no take

    run(main)


def test_a_take_all_cancelled_after_the_handover_gives_its_tuples_to_the_next_taker() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        group = asyncio.create_task(aspace.take_all(("job", int), timeout=None))
        await waiters(aspace, 1)
        second = asyncio.create_task(aspace.take_all(("job", int), timeout=None))
        await waiters(aspace, 2)
        await aspace.write_many([("job", 1), ("job", 2)])  # handed to the first
        group.cancel()
        with pytest.raises(asyncio.CancelledError):
            await group
        assert await second == [("job", 1), ("job", 2)]
        assert (await aspace.statistics())["tuples"] == 0

    run(main)


@pytest.mark.parametrize("timeout", [None, 600], ids=["forever", "timed"])
@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_take_cancelled_after_the_handover_puts_the_tuple_back_in_its_place(
    timeout: float | None, order: str
) -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace(order=order)
        await aspace.write(("job", 0))
        task = asyncio.create_task(aspace.take(("job", 1), timeout=timeout))
        await waiters(aspace, 1)
        await aspace.write(("job", 1))  # handed to the task, which has not resumed yet
        assert (await aspace.statistics())["tuples"] == 1
        assert (await aspace.statistics())["waiters"] == 0
        await aspace.write(("job", 2))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await aspace.statistics())["waiters"] == 0
        expected = [("job", 0), ("job", 1), ("job", 2)]
        if order == "lifo":
            expected.reverse()
        assert await aspace.read_all(("job", int)) == expected
        assert [await aspace.take(("job", int)) for _ in range(3)] == expected

    run(main)


def test_a_tuple_put_back_goes_to_the_next_waiting_taker() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        first = asyncio.create_task(aspace.take(("job", int)))
        await waiters(aspace, 1)
        second = asyncio.create_task(aspace.take(("job", int)))
        await waiters(aspace, 2)
        await aspace.write(("job", 1))  # handed to the first
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second == ("job", 1)
        assert (await aspace.statistics())["tuples"] == 0
        assert (await aspace.statistics())["waiters"] == 0

    run(main)


def test_a_read_cancelled_after_the_handover_leaves_the_tuple() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        task = asyncio.create_task(aspace.read(("job", int)))
        await waiters(aspace, 1)
        await aspace.write(("job", 1))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await aspace.read_all(("job", int)) == [("job", 1)]

    run(main)


def test_a_tuple_handed_to_a_cancelled_take_after_its_lease_ran_out_is_gone() -> None:
    async def main() -> None:
        clock = ts.SimulatedClock()
        aspace = ts.AsyncSpace(clock=clock)
        task = asyncio.create_task(aspace.take(("job", int)))
        await waiters(aspace, 1)
        await aspace.write(("job", 1), lease=10)
        clock.advance(10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await aspace.try_read(("job", int)) is None
        assert (await aspace.statistics())["tuples"] == 0
        assert (await aspace.statistics())["waiters"] == 0

    run(main)


def test_a_take_raced_by_cancellation_and_a_writing_thread_never_loses_a_tuple() -> None:
    rounds = 200

    async def main() -> None:
        space = ts.Space()
        aspace = ts.AsyncSpace(space)
        received = 0
        for n in range(rounds):
            task = asyncio.create_task(aspace.take(("job", n)))
            await waiters(aspace, 1)
            writer = asyncio.create_task(asyncio.to_thread(space.write, ("job", n)))
            for _ in range(n % 4):
                await asyncio.sleep(0)
            task.cancel()
            try:
                assert await task == ("job", n)
                received += 1
            except asyncio.CancelledError:
                pass
            await writer
            assert (await aspace.statistics())["waiters"] == 0
        left = await aspace.take_all(("job", int))
        assert received + len(left) == rounds
        assert sorted(left) == left

    run(main)


def test_wait_for_timing_out_leaves_no_waiter_and_takes_nothing() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aspace.take(("job", int)), 0.01)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await aspace.read(("job", int))
        assert (await aspace.statistics())["waiters"] == 0
        await aspace.write(("job", 1))
        assert await aspace.count(("job", int)) == 1

    run(main)


def test_a_timeout_raises_timeout() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        with pytest.raises(ts.Timeout):
            await aspace.take(("job", int), timeout=0.01)
        with pytest.raises(TimeoutError):
            await aspace.read(("job", int), timeout=0)
        assert (await aspace.statistics())["waiters"] == 0

    run(main)


def test_a_wait_on_a_simulated_clock_times_out_when_the_clock_passes() -> None:
    async def main() -> None:
        clock = ts.SimulatedClock()
        aspace = ts.AsyncSpace(clock=clock)
        task = asyncio.create_task(aspace.take(("job", int), timeout=5))
        await waiters(aspace, 1)
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert not task.done()
        clock.advance(0.1)
        with pytest.raises(ts.Timeout):
            await task
        assert (await aspace.statistics())["waiters"] == 0

    run(main)


def test_close_releases_waiting_coroutines() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        tasks = [asyncio.create_task(aspace.take(("job", n))) for n in range(3)]
        await waiters(aspace, 3)
        await aspace.close()
        for task in tasks:
            with pytest.raises(ts.SpaceClosed):
                await task
        with pytest.raises(ts.SpaceClosed):
            await aspace.write(("job", 1))

    run(main)


def test_async_with_closes_the_space() -> None:
    async def main() -> None:
        async with ts.AsyncSpace() as aspace:
            await aspace.write(("a",))
        assert (await aspace.statistics())["closed"] is True
        with pytest.raises(ts.SpaceClosed):
            await aspace.write(("a",))

    run(main)


def test_options_make_a_new_space_but_not_with_a_given_one() -> None:
    aspace = ts.AsyncSpace(order="lifo", seed=1)
    assert aspace.space.order == "lifo"
    with pytest.raises(TypeError):
        ts.AsyncSpace(ts.Space(), order="lifo")
    with pytest.raises(TypeError, match=r"unknown options \['ordre'\]; those of Space are .*'order'"):
        ts.AsyncSpace(ordre="lifo")
    shared = ts.Space()
    assert ts.AsyncSpace(shared).space is shared


def test_the_two_faces_are_peers_over_one_core() -> None:
    aspace = ts.AsyncSpace(order="lifo")  # made from options: no thread face until one is asked for
    space = ts.Space.over(aspace.core)
    assert space.core is aspace.core
    assert aspace.space.core is aspace.core
    assert space.order == "lifo"
    assert aspace.rules.core is space.core

    async def main() -> None:
        taker = asyncio.ensure_future(aspace.take(("job", int)))
        await asyncio.sleep(0)  # the take runs up to its wait
        assert (await aspace.statistics())["waiters"] == 1
        await asyncio.to_thread(space.write, ("job", 1))  # a thread's write wakes the coroutine
        assert await taker == ("job", 1)
        rec = space.create("sensors/kitchen", {"temp": 21})
        arec = await aspace.record("sensors/kitchen")
        assert arec == rec  # both handles hold the core: the same record
        await arec.set("temp", 22)
        assert rec.get("temp") == 22
        with space.transaction() as tx:
            tx.write(("done",))
        assert await aspace.try_take(("done",)) == ("done",)
        await aspace.close()
        with pytest.raises(ts.SpaceClosed):
            space.write(("late",))

    run(main)


def test_a_waiter_whose_event_loop_is_gone_does_not_swallow_a_tuple() -> None:
    space = ts.Space()
    aspace = ts.AsyncSpace(space)
    loop = asyncio.new_event_loop()
    coro = aspace.take(("job", int))
    task = loop.create_task(coro)
    loop.run_until_complete(asyncio.sleep(0))  # the task starts waiting
    assert space.statistics()["waiters"] == 1
    loop.close()
    space.write(("job", 1))
    assert space.read_all(("job", int)) == [("job", 1)]
    assert space.statistics()["waiters"] == 0
    coro.close()
    assert not task.done()
    del task
    gc.collect()


def test_an_async_space_gives_async_leases_and_awaited_statistics(tmp_path: Path) -> None:
    async def main() -> None:
        aspace = await ts.connect_async(f"sqlite:///{tmp_path}/spaces.db?space=jobs")
        assert isinstance(aspace, ts.AsyncSpace)
        lease = await aspace.write(("job", 1), lease=60)
        assert isinstance(lease, ts.AsyncLease)
        (other,) = await aspace.write_many([("job", 2)], lease=60)
        assert isinstance(other, ts.AsyncLease)
        await lease.renew(None)  # written down by the durable space, awaited
        assert lease.expires_at is None
        await other.cancel()
        stats = await aspace.statistics()
        assert stats["tuples"] == 1
        assert stats["leased_tuples"] == 0
        await aspace.close()
        reopened = ts.connect(f"sqlite:///{tmp_path}/spaces.db?space=jobs")
        assert reopened.read_all(("job", int)) == [("job", 1)]
        reopened.close()

    asyncio.run(main())


RULES_CALLS: dict[str, Callable[[ts.AsyncRules], Awaitable[object]]] = {
    "add": lambda rules: rules.add("more", template=("job", int), write=[(ts.Lit("done"), "t[1]")]),
    "remove": lambda rules: rules.remove("hot"),
    "set_limits": lambda rules: rules.set_limits(ts.ActiveLimits(max_firings=7)),
    "set_firing_charge": lambda rules: rules.set_firing_charge("0.5"),
    "set_step_charge": lambda rules: rules.set_step_charge("0.25"),
}


@pytest.mark.parametrize("call", sorted(RULES_CALLS))
def test_a_durable_async_spaces_rules_calls_await_the_commit_off_the_event_loop(
    tmp_path: Path, call: str
) -> None:
    url = f"sqlite:///{tmp_path}/spaces.db?space=jobs"
    order: list[str] = []
    progressed = threading.Event()

    async def main() -> None:
        aspace = await ts.connect_async(url)
        assert isinstance(aspace, ts.AsyncSpace)
        await aspace.rules.add("hot", template=("reading", str, float), write=[(ts.Lit("alarm"), "t[1]")])
        loop = threading.get_ident()

        def hold_the_commit() -> None:
            # As the committer takes a batch (off the loop's thread), it waits for the
            # loop to run another task before writing the batch.
            if threading.get_ident() != loop:
                progressed.wait(PATIENCE)

        aspace.core.after_operations(hold_the_commit)

        async def rules_call() -> None:
            await RULES_CALLS[call](aspace.rules)
            order.append(call)

        async def other_task() -> None:
            await asyncio.sleep(0)
            order.append("other task")
            progressed.set()

        await asyncio.gather(rules_call(), other_task())
        await aspace.close()

    asyncio.run(main())
    assert order == ["other task", call]
    reopened = ts.connect(url)  # the change was committed before the call returned
    rules = reopened.rules
    assert [r.name for r in rules.list()] == {"add": ["hot", "more"], "remove": []}.get(call, ["hot"])
    assert rules.limits.max_firings == (7 if call == "set_limits" else ts.ActiveLimits().max_firings)
    assert rules.firing_charge == ts.Credit("0.5" if call == "set_firing_charge" else 0)
    assert rules.step_charge == ts.Credit("0.25" if call == "set_step_charge" else 0)
    reopened.close()
