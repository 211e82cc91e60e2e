"""Workers, worker pools and cleaners.

Workers and cleaners run on every way of running a space (the ``make_space`` fixture of
the conformance kit): the thread forms on the sync spaces (embedded, remote, in Redis,
over CoAP), the asyncio forms (``AsyncWorker``, ``AsyncCleaner``) on the asyncio ones
(seen through the kit's sync adapter).  The job-farm test
is the one the pool was built for: 8 worker threads, 10,000 jobs, a third of the
handler calls raising; every job ends done exactly once or in the dead letter,
never both, none lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import ANY
from tuplespace.testing import SyncOverAsync

MakeSpace = Callable[..., ts.Space]


class Running:
    """A :class:`tuplespace.Worker`, or an :class:`tuplespace.AsyncWorker` on the event
    loop of an asyncio space, seen through the same calls."""

    def __init__(self, space: Any, templates: list[Any], handler: Callable[..., Any], **options: Any) -> None:
        self.space = space
        if isinstance(space, SyncOverAsync):
            self.worker: Any = space.run(ts.AsyncWorker(space.aspace, templates, handler, **options).start())
        else:
            self.worker = ts.Worker(space, templates, handler, **options).start()

    def stop(self) -> None:
        if isinstance(self.space, SyncOverAsync):
            self.space.run(self.worker.stop())
        else:
            self.worker.stop()

    def statistics(self) -> dict[str, Any]:
        return self.worker.statistics()  # type: ignore[no-any-return]


@contextlib.contextmanager
def cleaning(space: Any, template: Any, max_age: float) -> Iterator[Any]:
    """A :class:`tuplespace.Cleaner`, or an :class:`tuplespace.AsyncCleaner` on the event
    loop of an asyncio space, until the block ends."""
    if isinstance(space, SyncOverAsync):
        cleaner = space.run(ts.AsyncCleaner(space.aspace, template, max_age).start())
        try:
            yield cleaner
        finally:
            space.run(cleaner.stop())
    else:
        with ts.Cleaner(space, template, max_age) as cleaner:
            yield cleaner


# -- Worker --------------------------------------------------------------------------------


def test_a_worker_handles_existing_and_later_tuples_once_each_in_order(make_space: MakeSpace) -> None:
    space = make_space()
    space.write_many([("img", 0), ("doc", 0), ("img", 1), ("img", 2)])
    seen: list[tuple[Any, ...]] = []

    def thumbnail(t: tuple[Any, ...]) -> tuple[Any, ...]:
        seen.append(t)
        return ("thumb", t[1])

    worker = Running(space, [("img", int)], thumbnail)
    space.write(("img", 3))
    space.write(("doc", 1))
    space.write_many([("img", 4), ("img", 5)])
    assert space.read(("thumb", 5), timeout=PATIENCE) == ("thumb", 5)
    assert seen == [("img", n) for n in range(6)]
    assert space.read_all(("thumb", int)) == [("thumb", n) for n in range(6)]
    assert space.count(("img", int)) == 6  # a worker reads: the tuples stay
    assert worker.statistics()["running"] is True

    worker.stop()  # returns once the handler in progress has finished
    stats = worker.statistics()
    assert (stats["processed"], stats["failed"], stats["lost"], stats["running"]) == (6, 0, 0, False)
    space.write(("img", 6))
    space.write(("thumb", "sent after img 6"))
    assert space.read(("thumb", str), timeout=PATIENCE)
    assert seen == [("img", n) for n in range(6)]
    wait_until(lambda: space.statistics()["subscribers"] == 0, "the subscription to end")


def test_a_worker_with_several_templates_sees_each_tuple_once_in_order(make_space: MakeSpace) -> None:
    space = make_space()
    space.write_many([("x", 0), ("y", 0), ("z", 0)])
    seen: list[tuple[Any, ...]] = []
    worker = Running(space, [("x", ANY), ("x", int), ("y", int), ("w", int, int)], seen.append)
    space.write_many([("x", 1), ("z", 1), ("y", 1), ("w", 1, 1), ("x", "one"), ("y", 2)])
    wait_until(lambda: ("y", 2) in seen and ("w", 1, 1) in seen, "the last of each arity")
    worker.stop()
    pairs = [t for t in seen if len(t) == 2]
    assert pairs == [("x", 0), ("y", 0), ("x", 1), ("y", 1), ("x", "one"), ("y", 2)]
    assert [t for t in seen if len(t) == 3] == [("w", 1, 1)]


def test_a_tuple_handed_to_a_take_that_is_cancelled_is_handled_once(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    seen: list[tuple[Any, ...]] = []
    worker = ts.Worker(space, [("job", int)], seen.append).start()

    async def cancelled_take() -> None:
        taker = asyncio.create_task(ts.AsyncSpace(space).take(("job", int)))
        while space.statistics()["waiters"] == 0:
            await asyncio.sleep(0)
        space.write(("job", 1))  # handed to the waiting take...
        taker.cancel()  # ...which is cancelled before it receives it: the job is put back
        with pytest.raises(asyncio.CancelledError):
            await taker

    asyncio.run(cancelled_take())
    space.write(("job", 2))
    wait_until(lambda: ("job", 2) in seen, "the second job")
    worker.stop()
    assert seen == [("job", 1), ("job", 2)]
    assert space.read_all(("job", int)) == [("job", 1), ("job", 2)]


def test_a_pool_handles_a_job_put_back_by_a_cancelled_take_once(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    handled: list[tuple[Any, ...]] = []
    taker = spawn(space.take, ("job", int), timeout=PATIENCE)
    wait_for_waiters(space, 1)

    async def cancelled_take() -> None:
        task = asyncio.create_task(ts.AsyncSpace(space).take(("job", int)))
        while space.statistics()["waiters"] < 2:
            await asyncio.sleep(0)
        space.write(("job", 1))  # to the first waiting take (the thread's)
        space.write(("job", 2))  # to the second, cancelled before it receives it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_take())
    assert taker.result(PATIENCE) == ("job", 1)
    with ts.WorkerPool(space, ("job", int), lambda j: handled.append(j) or ("done", j[1]), workers=2):
        assert space.read(("done", 2), timeout=PATIENCE) == ("done", 2)
    assert handled == [("job", 2)]
    assert space.statistics()["takes"] == 2  # the thread's and the pool's, not the cancelled one


def test_handler_results_are_written_a_tuple_a_list_or_nothing(make_space: MakeSpace) -> None:
    space = make_space()

    def handle(t: tuple[Any, ...]) -> Any:
        n = t[1]
        if n == 0:
            return None
        if n == 1:
            return ("out", 1)
        return [("out", n, "a"), ("out", n, "b"), ("last",)]

    worker = Running(space, [("in", int)], handle)
    space.write_many([("in", 0), ("in", 1), ("in", 2)])
    assert space.take(("last",), timeout=PATIENCE) == ("last",)
    worker.stop()
    assert space.read_all(("out", ANY)) == [("out", 1)]
    assert space.read_all(("out", ANY, ANY)) == [("out", 2, "a"), ("out", 2, "b")]


def test_a_raising_handler_is_counted_and_the_worker_goes_on(
    make_space: MakeSpace, caplog: pytest.LogCaptureFixture
) -> None:
    space = make_space()

    def handle(t: tuple[Any, ...]) -> tuple[Any, ...]:
        if t[1] % 2:
            raise ValueError(f"odd {t[1]}")
        return ("ok", t[1])

    with caplog.at_level(logging.ERROR, logger="tuplespace"):
        worker = Running(space, [("n", int)], handle)
        space.write_many([("n", n) for n in range(5)])
        assert space.read(("ok", 4), timeout=PATIENCE) == ("ok", 4)
        worker.stop()
    assert space.read_all(("ok", int)) == [("ok", 0), ("ok", 2), ("ok", 4)]
    stats = worker.statistics()
    assert (stats["processed"], stats["failed"]) == (3, 2)
    assert sum("odd" in (r.exc_text or "") for r in caplog.records) == 2


def test_a_worker_that_falls_behind_the_log_counts_what_it_lost(make_thread_space: MakeSpace) -> None:
    space = make_thread_space(event_retention=3)
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def handle(t: tuple[Any, ...]) -> None:
        entered.set()
        assert release.wait(PATIENCE)
        seen.append(t[1])

    worker = ts.Worker(space, [("n", int)], handle, max_pending=1).start()
    space.write(("n", 0))
    assert entered.wait(PATIENCE)  # the worker is busy with ("n", 0)
    space.write_many([("n", n) for n in range(1, 10)])  # one waits; the log keeps the last 3
    assert worker.statistics()["pending"] == 1
    release.set()
    wait_until(lambda: seen[-1:] == [9], "the last tuple to be handled")
    worker.stop()
    assert seen == [0, 1, 7, 8, 9]
    stats = worker.statistics()
    assert (stats["processed"], stats["lost"], stats["pending"]) == (5, 5, 0)


def test_a_worker_needs_a_template_and_starts_once(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    with pytest.raises(ValueError, match="template"):
        ts.Worker(space, [], lambda t: None)
    worker = ts.Worker(space, [("a",)], lambda t: None).start()
    with pytest.raises(RuntimeError):
        worker.start()
    worker.stop()


def test_an_async_worker_awaits_a_coroutine_handler() -> None:
    async def main() -> list[Any]:
        aspace = ts.AsyncSpace()
        await aspace.write(("n", 1))

        async def double(t: tuple[Any, ...]) -> tuple[Any, ...]:
            await asyncio.sleep(0)
            return ("doubled", t[1] * 2)

        async with ts.AsyncWorker(aspace, [("n", int)], double) as worker:
            await aspace.write(("n", 2))
            got = [await aspace.take(("doubled", int)) for _ in range(2)]
            assert worker.statistics()["running"]
        assert not worker.statistics()["running"]
        with pytest.raises(ValueError, match="template"):
            ts.AsyncWorker(aspace, [], double)
        return got

    assert asyncio.run(main()) == [("doubled", 2), ("doubled", 4)]


# -- WorkerPool --------------------------------------------------------------------------------


def test_a_pool_of_8_processes_10000_jobs_with_a_third_of_the_calls_failing(
    make_thread_space: MakeSpace,
) -> None:
    space = make_thread_space()
    jobs, retries = 10_000, 3
    rng = random.Random(20_240_601)
    lock = threading.Lock()
    calls: dict[int, list[bool]] = defaultdict(list)  # job -> whether each call raised

    def handler(job: tuple[Any, ...]) -> tuple[Any, ...]:
        n = job[1]
        with lock:
            fails = rng.random() < 1 / 3
            calls[n].append(fails)
        if fails:
            raise RuntimeError(f"job {n} failed")
        return ("done", n)

    space.write_many([("job", n) for n in range(jobs)])
    pool = ts.WorkerPool(space, ("job", int), handler, workers=8, retries=retries)
    with pool:
        assert pool.statistics()["workers"] == 8
        wait_until(
            lambda: pool.statistics()["done"] + pool.statistics()["dead_lettered"] == jobs, "every job"
        )
    stats = pool.statistics()
    assert stats["workers"] == 0

    done = [t[1] for t in space.read_all(("done", int))]
    dead = space.read_all(("dead-letter", ANY, str))
    dead_jobs = [t[1][1] for t in dead]
    assert len(set(done)) == len(done), "a job was done twice"
    assert len(set(dead_jobs)) == len(dead_jobs), "a job was dead-lettered twice"
    assert not set(done) & set(dead_jobs), "a job was both done and dead-lettered"
    assert set(done) | set(dead_jobs) == set(range(jobs)), "a job was lost"
    assert space.count(("job", int)) == 0

    for n in done:  # it failed fewer than `retries` times, then succeeded once
        assert calls[n] == [True] * (len(calls[n]) - 1) + [False], calls[n]
        assert len(calls[n]) <= retries, calls[n]
    for t in dead:
        n = t[1][1]
        assert calls[n] == [True] * retries, calls[n]
        assert t == ("dead-letter", ("job", n), f"RuntimeError: job {n} failed")
    failed_calls = sum(sum(c) for c in calls.values())
    assert failed_calls > jobs / 4  # the handler really did fail about a third of the time
    assert dead  # and some jobs failed every time
    assert (stats["done"], stats["dead_lettered"], stats["failed_attempts"]) == (
        len(done),
        len(dead),
        failed_calls,
    )
    space_stats = space.statistics()
    assert (space_stats["transactions"], space_stats["waiters"]) == (0, 0)
    assert space_stats["tuples"] == jobs


def test_a_pool_uses_its_own_dead_letter_and_retries(make_sync_space: MakeSpace) -> None:
    space = make_sync_space()

    def handler(job: tuple[Any, ...]) -> tuple[Any, ...]:
        if job[1] == "bad":
            raise KeyError(job[1])
        return ("done", job[1])

    def dead_letter(job: tuple[Any, ...], error: BaseException) -> tuple[Any, ...]:
        return ("failed", job[1], type(error).__name__)

    with ts.WorkerPool(space, ("job", str), handler, workers=2, retries=1, dead_letter=dead_letter) as pool:
        space.write_many([("job", "bad"), ("job", "good")])
        assert space.read(("failed", "bad", str), timeout=PATIENCE) == ("failed", "bad", "KeyError")
        assert space.read(("done", "good"), timeout=PATIENCE) == ("done", "good")
    stats = pool.statistics()
    assert (stats["done"], stats["failed_attempts"], stats["dead_lettered"]) == (1, 1, 1)
    assert space.count(("job", str)) == 0


def test_a_stopped_pool_takes_no_more_jobs(make_sync_space: MakeSpace) -> None:
    space = make_sync_space()
    pool = ts.WorkerPool(space, ("job", int), lambda j: ("done", j[1]), workers=3).start()
    space.write(("job", 1))
    assert space.read(("done", 1), timeout=PATIENCE) == ("done", 1)
    pool.stop()
    assert pool.statistics()["workers"] == 0
    assert space.statistics()["transactions"] == 0
    assert space.statistics()["waiters"] == 0
    space.write(("job", 2))
    assert space.read_all(("job", int)) == [("job", 2)]
    with pytest.raises(RuntimeError):
        pool.start()


def test_a_pool_refuses_nonsense(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    for options in ({"workers": 0}, {"retries": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            ts.WorkerPool(space, ("job", int), lambda j: None, **options)


# -- Cleaner --------------------------------------------------------------------------------------


def test_a_cleaner_removes_tuples_exactly_at_max_age(make_thread_space: MakeSpace) -> None:
    clock = ts.SimulatedClock()
    space = make_thread_space(clock=clock)
    t0 = clock.now()
    space.write(("log", "old"))
    space.write(("log", "old-short"), lease=30)  # a shorter lease is kept
    space.write(("keep", "x"))
    clock.advance(10)
    sub = space.subscribe((str, str), events={"expire"})
    cleaner = ts.Cleaner(space, ("log", ANY), max_age=60)  # those already here: 60 s from now
    clock.advance(10)
    space.write(("log", "new"))
    space.write(("log", "new-short"), lease=5)

    expected = [(25, "new-short"), (30, "old-short"), (70, "old"), (80, "new")]
    for when, name in expected:
        clock.advance(when - 0.5 - (clock.now() - t0))
        assert space.count(("log", name)) == 1, name
        clock.advance(0.5)
        assert space.count(("log", name)) == 0, name
    events = [sub.get(timeout=0) for _ in expected]
    assert [(e.kind, e.tuple[1], e.time - t0) for e in events] == [
        ("expire", name, when) for when, name in expected
    ]
    assert space.statistics()["expired"] == 4

    cleaner.stop()
    space.write(("log", "after"))
    clock.advance(10**6)
    assert space.read_all((str, str)) == [("keep", "x"), ("log", "after")]


def test_a_cleaner_removes_old_tuples_on_every_kind_of_space(make_space: MakeSpace) -> None:
    space = make_space()
    space.write_many([("log", "before"), ("keep", "x")])
    with cleaning(space, ("log", ANY), max_age=0.05):
        space.write(("log", "after"))
        space.write(("other", "y"))
        wait_until(lambda: space.count(("log", ANY)) == 0, "the log lines to go")
    space.write(("log", "stopped"))
    space.write(("keep", "z"))
    assert space.read(("keep", "z"), timeout=PATIENCE)
    assert sorted(space.read_all((str, str))) == [
        ("keep", "x"),
        ("keep", "z"),
        ("log", "stopped"),
        ("other", "y"),
    ]


def test_a_cleaner_refuses_a_max_age_that_is_not_positive(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    for max_age in (0, -1, True):
        with pytest.raises(ValueError, match="max_age"):
            ts.Cleaner(space, ("log", ANY), max_age=max_age)
    assert space.statistics()["subscribers"] == 0


def test_a_cleaner_removes_tuples_with_nobody_calling(make_thread_space: MakeSpace) -> None:
    space = make_thread_space()
    sub = space.subscribe(("log", ANY), events={"expire"})
    with ts.Cleaner(space, ("log", ANY), max_age=0.05):
        space.write(("log", "line"))
        event = spawn(sub.get).result(PATIENCE)
    assert (event.kind, event.tuple) == ("expire", ("log", "line"))
    assert space.count(("log", ANY)) == 0
