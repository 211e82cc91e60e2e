"""Benchmarks of the embedded tuple space (one process, no server).

Prints ONE JSON line with ``"impl": "pytuplespace-embedded"``.  Each workload is
timed side by side with its in-process reference, alternating rounds, and the
medians are reported, because the machines these run on are shared and noisy:

a) bulk: write N tuples ``("job", i, "payload-string")``, then take N with
   ``("job", int, str)``; fresh space per round (compare with Rinda's
   ``rinda_local.rb`` in the same run: see ``run_all.py``).
b) lookup by an exact value in the second field: M tuples ``("item", i, "x")``,
   reads of ``("item", k, ANY)`` for random k, with M_SMALL and M_LARGE stored;
   every round fills a fresh space of each size (one alive at a time) and reads
   from it, alternating which goes first.  ``lookup_slowdown`` is the median of
   the per-round ratios small/large reads per second.  Rounds are long (200,000
   reads) on purpose: with a million tuples stored a full collection of the
   cyclic GC comes only every ~70,000 reads and costs ~0.2 s, so a short
   window can miss it entirely.
c) ping-pong between two threads, ``("ping", i)`` / ``("pong", i)``, against
   ``queue.Queue`` ping-pong measured the way ``peers/py_reference.py`` does,
   alternating; ``pingpong_vs_queue`` is the median of the per-pair ratios.
d) waking writes: N_WAITERS coroutines each blocked in
   ``AsyncSpace.take(("task", k))`` for distinct k; only the synchronous
   ``space.write(("task", k))`` calls are timed (each wakes exactly one taker),
   against writes of ``("other", k)`` into a fresh space with no waiters.
e) memory: tracemalloc's traced bytes per stored tuple for N_MEM tuples
   ``("job", i, "payload-string")`` (the tuples, the entries and all indexes;
   the literals are shared), and, for reference, the bytes of the bare tuples.

The cyclic garbage collector stays on while timing, as in real use, but every
timed section starts right after ``gc.collect()``, so garbage left by the set-up
is not charged to it.  ``lookup_*_gc_share`` is the fraction of the read time
spent in the collector (from ``gc.callbacks``).

Env overrides: N_BULK (100000), M_SMALL (10000), M_LARGE (1000000),
N_READS (600000 reads per size, split over the rounds), N_PINGPONG (20000),
N_WAITERS (10000), N_MEM (1000000), ROUNDS (3), WAKE_ROUNDS (5), SEED (12345),
SKIP (comma-separated workloads to leave out: bulk,lookup,pingpong,wake,memory).
"""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import random
import statistics
import sys
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run

N_BULK = int(os.environ.get("N_BULK", 100_000))
M_SMALL = int(os.environ.get("M_SMALL", 10_000))
M_LARGE = int(os.environ.get("M_LARGE", 1_000_000))
N_READS = int(os.environ.get("N_READS", 600_000))
N_PINGPONG = int(os.environ.get("N_PINGPONG", 20_000))
N_WAITERS = int(os.environ.get("N_WAITERS", 10_000))
N_MEM = int(os.environ.get("N_MEM", 1_000_000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
WAKE_ROUNDS = int(os.environ.get("WAKE_ROUNDS", 5))
SEED = int(os.environ.get("SEED", 12345))

median = statistics.median


log = logger("bench_embedded")


# -- a) bulk write / take ------------------------------------------------------------


def bulk_round(n: int) -> tuple[float, float]:
    space = ts.Space()
    write, take = space.write, space.take
    gc.collect()
    t0 = now()
    for i in range(n):
        write(("job", i, "payload-string"))
    t1 = now()
    tmpl = ("job", int, str)
    for _ in range(n):
        take(tmpl)
    t2 = now()
    if len(space) != 0:
        raise AssertionError("space not empty after taking every tuple")
    return n / (t1 - t0), n / (t2 - t1)


def bench_bulk(res: dict[str, Any]) -> None:
    writes, takes = [], []
    for _ in range(ROUNDS):
        w, t = bulk_round(N_BULK)
        writes.append(w)
        takes.append(t)
    res["bulk_n"] = N_BULK
    res["bulk_write_ops_s"] = round(median(writes), 1)
    res["bulk_take_ops_s"] = round(median(takes), 1)


# -- b) lookup by an exact value in the second field ------------------------------------


def fill_items(m: int) -> tuple[ts.Space, float]:
    space = ts.Space()
    write = space.write
    t0 = now()
    for i in range(m):
        write(("item", i, "x"))
    return space, m / (now() - t0)


class GcTimer:
    """Wall time spent in the cyclic garbage collector (through ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = now()
        else:
            self.seconds += now() - self._t0
            self.full += info["generation"] == 2

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


def read_round(space: ts.Space, keys: list[int]) -> tuple[float, float, int]:
    """Reads per second, and the seconds and full collections of the GC among them."""
    read, ANY = space.read, ts.ANY
    with GcTimer() as gct:
        t0 = now()
        for k in keys:
            t = read(("item", k, ANY))
            if t[1] != k:
                raise AssertionError(f"bad read: {t!r} for {k}")
        dt = now() - t0
    return len(keys) / dt, gct.seconds / dt, gct.full


def bench_lookup(res: dict[str, Any]) -> None:
    # Only one of the two spaces exists at a time: the cyclic GC walks every live
    # object of the process, so a million stored tuples would also slow down the
    # reads of the small space if both were alive at once.
    rng = random.Random(SEED)
    per_round = max(1, N_READS // ROUNDS)
    rates: dict[int, list[float]] = {M_SMALL: [], M_LARGE: []}
    fills: dict[int, list[float]] = {M_SMALL: [], M_LARGE: []}
    gc_share: dict[int, list[float]] = {M_SMALL: [], M_LARGE: []}
    full_gcs = {M_SMALL: 0, M_LARGE: 0}
    slowdowns = []
    for r in range(ROUNDS):
        sizes = [M_SMALL, M_LARGE] if r % 2 == 0 else [M_LARGE, M_SMALL]
        got = {}
        for m in sizes:
            keys = [rng.randrange(m) for _ in range(per_round)]
            gc.collect()
            space, fill = fill_items(m)
            gc.collect()  # the fill's garbage is not the reads' cost
            got[m], share, full = read_round(space, keys)
            del space
            rates[m].append(got[m])
            fills[m].append(fill)
            gc_share[m].append(share)
            full_gcs[m] += full
        slowdowns.append(got[M_SMALL] / got[M_LARGE])
    gc.collect()
    res["lookup_m_small"] = M_SMALL
    res["lookup_m_large"] = M_LARGE
    res["lookup_reads_per_size"] = per_round * ROUNDS
    res["lookup_small_reads_s"] = round(median(rates[M_SMALL]), 1)
    res["lookup_large_reads_s"] = round(median(rates[M_LARGE]), 1)
    res["lookup_slowdown"] = round(median(slowdowns), 3)
    res["lookup_small_gc_share"] = round(median(gc_share[M_SMALL]), 3)
    res["lookup_large_gc_share"] = round(median(gc_share[M_LARGE]), 3)
    res["lookup_small_full_gcs"] = full_gcs[M_SMALL]
    res["lookup_large_full_gcs"] = full_gcs[M_LARGE]
    res["lookup_small_fill_write_ops_s"] = round(median(fills[M_SMALL]), 1)
    res["lookup_large_fill_write_ops_s"] = round(median(fills[M_LARGE]), 1)


# -- c) ping-pong between two threads ------------------------------------------------------


def queue_pingpong(n: int) -> float:
    """Exactly as peers/py_reference.py measures it."""
    ping: queue.Queue[tuple[str, int]] = queue.Queue()
    pong: queue.Queue[tuple[str, int]] = queue.Queue()

    def responder() -> None:
        for _ in range(n):
            i = ping.get()
            pong.put(("pong", i[1]))

    t = threading.Thread(target=responder)
    t.start()
    t0 = now()
    for i in range(n):
        ping.put(("ping", i))
        r = pong.get()
        assert r[1] == i
    dt = now() - t0
    t.join()
    return dt


def space_pingpong(n: int) -> float:
    space = ts.Space()
    ANY = ts.ANY

    def responder() -> None:
        for _ in range(n):
            _, i = space.take(("ping", ANY))
            space.write(("pong", i))

    t = threading.Thread(target=responder)
    t.start()
    t0 = now()
    for i in range(n):
        space.write(("ping", i))
        r = space.take(("pong", i))
        assert r[1] == i
    dt = now() - t0
    t.join()
    if len(space) != 0:
        raise AssertionError("ping-pong left tuples behind")
    return dt


def bench_pingpong(res: dict[str, Any]) -> None:
    spaces, queues, ratios = [], [], []
    for r in range(ROUNDS):
        runs: list[tuple[str, Callable[[int], float]]] = [("q", queue_pingpong), ("s", space_pingpong)]
        if r % 2:
            runs.reverse()
        got = {}
        for name, fn in runs:
            gc.collect()
            got[name] = fn(N_PINGPONG)
        queues.append(got["q"])
        spaces.append(got["s"])
        ratios.append(got["q"] / got["s"])  # space rt/s over queue rt/s
    res["pingpong_n"] = N_PINGPONG
    res["pingpong_rt_s"] = round(N_PINGPONG / median(spaces), 1)
    res["pingpong_mean_us"] = round(median(spaces) / N_PINGPONG * 1e6, 2)
    res["queue_pingpong_rt_s"] = round(N_PINGPONG / median(queues), 1)
    res["queue_pingpong_mean_us"] = round(median(queues) / N_PINGPONG * 1e6, 2)
    res["pingpong_vs_queue"] = round(median(ratios), 3)


# -- d) a write that wakes one of many blocked takers ----------------------------------------


async def wake_round(n: int, order: list[int]) -> float:
    """Seconds for the n writes that each wake exactly one of n blocked takers."""
    space = ts.Space()
    aspace = ts.AsyncSpace(space)
    tasks = [asyncio.create_task(aspace.take(("task", k))) for k in range(n)]
    for _ in range(1000):
        await asyncio.sleep(0)
        if space.statistics()["waiters"] == n:
            break
    else:
        raise AssertionError("the takers did not all block")
    write = space.write
    gc.collect()  # start both timings with the same (empty) collector debt
    t0 = now()
    for k in order:
        write(("task", k))
    dt = now() - t0
    results = await asyncio.gather(*tasks)
    for k, r in enumerate(results):
        if r != ("task", k):
            raise AssertionError(f"taker {k} got {r!r}")
    st = space.statistics()
    if st["waiters"] or st["tuples"]:
        raise AssertionError(f"after the wake-ups: {st}")
    return dt


def plain_round(n: int, order: list[int]) -> float:
    """Seconds for n writes of ("other", k) into a fresh space with no waiters."""
    space = ts.Space()
    write = space.write
    gc.collect()
    t0 = now()
    for k in order:
        write(("other", k))
    dt = now() - t0
    if len(space) != n:
        raise AssertionError("plain writes lost tuples")
    return dt


def bench_wake(res: dict[str, Any]) -> None:
    order = list(range(N_WAITERS))
    random.Random(SEED).shuffle(order)
    wakes, plains, ratios = [], [], []
    for r in range(WAKE_ROUNDS):
        if r % 2:
            p = plain_round(N_WAITERS, order)
            w = asyncio.run(wake_round(N_WAITERS, order))
        else:
            w = asyncio.run(wake_round(N_WAITERS, order))
            p = plain_round(N_WAITERS, order)
        wakes.append(w)
        plains.append(p)
        ratios.append(w / p)
    res["wake_n_waiters"] = N_WAITERS
    res["wake_write_ns"] = round(median(wakes) / N_WAITERS * 1e9, 1)
    res["plain_write_ns"] = round(median(plains) / N_WAITERS * 1e9, 1)
    res["wake_vs_plain"] = round(median(ratios), 3)
    res["wake_takers_served"] = N_WAITERS  # every round checks each taker got its own tuple


# -- e) memory per stored tuple ------------------------------------------------------------


def bench_memory(res: dict[str, Any]) -> None:
    n = N_MEM
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        bare = [("job", i, "payload-string") for i in range(n)]
        bare_bytes = tracemalloc.get_traced_memory()[0] - base - sys.getsizeof(bare)
        del bare
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        space = ts.Space()
        write = space.write
        for i in range(n):
            write(("job", i, "payload-string"))
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if len(space) != n:
        raise AssertionError("memory run lost tuples")
    res["mem_n"] = n
    res["mem_bytes_per_tuple"] = round((current - base) / n, 1)
    res["mem_peak_bytes_per_tuple"] = round((peak - base) / n, 1)
    res["mem_bare_tuple_bytes"] = round(bare_bytes / n, 1)
    res["mem_engine_bytes_per_tuple"] = round((current - base - bare_bytes) / n, 1)
    del space
    gc.collect()


# Bulk and ping-pong first: run_all.py runs Rinda just before this script, so the
# workloads compared with Rinda's run close in time to it.
BENCHES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("bulk", bench_bulk),
    ("pingpong", bench_pingpong),
    ("wake", bench_wake),
    ("lookup", bench_lookup),
    ("memory", bench_memory),
]


def main() -> None:
    res = header("pytuplespace-embedded", rounds=ROUNDS)
    run(res, [(name, lambda fn=fn: fn(res)) for name, fn in BENCHES], log)


if __name__ == "__main__":
    main()
