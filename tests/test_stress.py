"""Many threads and coroutines moving many tuples: each is taken exactly once."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from typing import Any

import pytest

import tuplespace as ts
from helpers import spawn

STOP = -1


def produce(space: ts.Space, producer: int, count: int, batch: int = 1) -> None:
    items = [("item", producer, k) for k in range(count)]
    if batch == 1:
        for item in items:
            space.write(item)
    else:
        for start in range(0, count, batch):
            space.write_many(items[start : start + batch])


def consume(space: ts.Space) -> list[tuple[int, int]]:
    taken: list[tuple[int, int]] = []
    while True:
        _, producer, k = space.take(("item", int, int))
        if producer == STOP:
            return taken
        taken.append((producer, k))


def check_exactly_once(taken: list[tuple[int, int]], producers: int, per_producer: int) -> None:
    counts = Counter(taken)
    duplicates = [item for item, n in counts.items() if n > 1]
    assert duplicates == [], f"taken more than once: {duplicates[:10]}"
    expected = {(p, k) for p in range(producers) for k in range(per_producer)}
    missing = expected - counts.keys()
    assert not missing, f"{len(missing)} never taken, e.g. {sorted(missing)[:10]}"
    assert len(taken) == len(expected)


@pytest.mark.timeout(600)
def test_producers_and_consumers_move_100000_tuples_each_taken_once() -> None:
    producers, consumers, per_producer = 4, 4, 25_000
    space = ts.Space()
    consuming = [spawn(consume, space) for _ in range(consumers)]
    producing = [spawn(produce, space, p, per_producer, 1 + p % 2 * 99) for p in range(producers)]
    for f in producing:
        f.result()
    space.write_many([("item", STOP, STOP)] * consumers)
    results = [f.result() for f in consuming]
    check_exactly_once(list(itertools.chain.from_iterable(results)), producers, per_producer)
    for result in results:  # FIFO: each consumer sees each producer's items in order
        for p in range(producers):
            ks = [k for q, k in result if q == p]
            assert ks == sorted(ks)
    stats = space.statistics()
    assert stats["tuples"] == 0
    assert stats["waiters"] == 0


@pytest.mark.timeout(600)
def test_takers_with_timeouts_and_batches_lose_nothing() -> None:
    producers, per_producer = 3, 6_000
    space = ts.Space()
    done = threading.Event()

    def impatient() -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        while not done.is_set() or space.count(("item", int, int)):
            try:
                _, p, k = space.take(("item", int, int), timeout=0.001)
            except ts.Timeout:
                continue
            taken.append((p, k))
        return taken

    def batcher() -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        while not done.is_set() or space.count(("item", int, int)):
            taken.extend((p, k) for _, p, k in space.take_all(("item", int, int), limit=50))
        return taken

    def picky(p: int) -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        for k in range(0, per_producer, 7):  # others may take it first: then move on
            t = space.try_take(("item", p, k))
            if t is not None:
                taken.append(t[1:])
        return taken

    consuming = [spawn(impatient), spawn(impatient), spawn(batcher)] + [
        spawn(picky, p) for p in range(producers)
    ]
    producing = [spawn(produce, space, p, per_producer, 1 + p * 10) for p in range(producers)]
    for f in producing:
        f.result()
    for picker in consuming[3:]:
        picker.result()
    done.set()
    taken = list(itertools.chain.from_iterable(f.result() for f in consuming))
    check_exactly_once(taken, producers, per_producer)
    assert space.statistics()["waiters"] == 0


@pytest.mark.timeout(600)
def test_threads_and_coroutines_share_the_work() -> None:
    producers, per_producer, threads, coroutines = 2, 10_000, 2, 8
    space = ts.Space()
    aspace = ts.AsyncSpace(space)

    async def coroutine_consumer() -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        while True:
            _, p, k = await aspace.take(("item", int, int))
            if p == STOP:
                return taken
            taken.append((p, k))

    async def main() -> list[Any]:
        tasks = [asyncio.create_task(coroutine_consumer()) for _ in range(coroutines)]
        consuming = [spawn(consume, space) for _ in range(threads)]
        await asyncio.gather(*(asyncio.to_thread(produce, space, p, per_producer) for p in range(producers)))
        await aspace.write_many([("item", STOP, STOP)] * (threads + coroutines))
        results = await asyncio.gather(*tasks)
        return [*results, *(f.result() for f in consuming)]

    results = asyncio.run(main())
    check_exactly_once(list(itertools.chain.from_iterable(results)), producers, per_producer)
    assert space.statistics()["tuples"] == 0
    assert space.statistics()["waiters"] == 0
