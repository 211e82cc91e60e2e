"""Benchmarks of records in the embedded space (one process, no server).

Prints ONE JSON line with ``"impl": "pytuplespace-records"``.  Rounds alternate
which side of a comparison goes first, and medians are reported, because the
machines these run on are shared and noisy.

a) get / set: ``rec.get("temp")`` and ``rec.set("temp", x)`` (x alternating
   between two floats, so every set changes the index) on one record of a fresh
   space; ops per second.
b) find by an exact value among M records vs a tuple lookup by an exact value
   among M tuples, in the same run: M records ``r/<i>`` with fields
   ``{"id": i, "kind": "x"}`` and ``space.find({"id": k})``, against M tuples
   ``("item", i, "x")`` and ``space.read(("item", k, ANY))``, for random k.  Only
   one of the two spaces exists at a time (the cyclic GC walks every live object);
   every timed section starts right after ``gc.collect()``.  ``find_vs_read`` is the
   median of the per-round ratios of finds per second to reads per second.
c) create: records created per second while filling (b), and the memory per record.

Env overrides: N_OPS (200000 per round of get / set), M_LARGE (1000000),
N_FINDS (200000 per round), ROUNDS (3), SEED (12345), SKIP (comma-separated
workloads to leave out: getset,find).
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import tracemalloc
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run

N_OPS = int(os.environ.get("N_OPS", 200_000))
M_LARGE = int(os.environ.get("M_LARGE", 1_000_000))
N_FINDS = int(os.environ.get("N_FINDS", 200_000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
SEED = int(os.environ.get("SEED", 12345))

median = statistics.median
log = logger("bench_records")


# -- a) get / set ----------------------------------------------------------------------


def getset_round(n: int) -> tuple[float, float]:
    space = ts.Space()
    rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})
    get, set_ = rec.get, rec.set
    gc.collect()
    t0 = now()
    for _ in range(n):
        get("temp")
    t1 = now()
    for _ in range(n // 2):
        set_("temp", 21.5)
        set_("temp", 22.5)
    t2 = now()
    if rec.get("$version") != 1 + 2 * (n // 2):
        raise AssertionError("a set was lost")
    space.close()
    return n / (t1 - t0), 2 * (n // 2) / (t2 - t1)


def bench_getset(res: dict[str, Any]) -> None:
    gets, sets = [], []
    for _ in range(ROUNDS):
        g, s = getset_round(N_OPS)
        gets.append(g)
        sets.append(s)
    res["getset_n"] = N_OPS
    res["get_ops_s"] = round(median(gets), 1)
    res["set_ops_s"] = round(median(sets), 1)


# -- b) find by an exact value vs a tuple lookup by an exact value ----------------------------


def fill_records(m: int) -> tuple[ts.Space, float]:
    space = ts.Space()
    create = space.create
    t0 = now()
    for i in range(m):
        create(f"r/{i}", {"id": i, "kind": "x"})
    return space, m / (now() - t0)


def fill_tuples(m: int) -> ts.Space:
    space = ts.Space()
    write = space.write
    for i in range(m):
        write(("item", i, "x"))
    return space


def find_round(space: ts.Space, keys: list[int]) -> float:
    find = space.find
    t0 = now()
    for k in keys:
        found = find({"id": k})
        if len(found) != 1:
            raise AssertionError(f"find {k} gave {found!r}")
    return len(keys) / (now() - t0)


def read_round(space: ts.Space, keys: list[int]) -> float:
    read, ANY = space.read, ts.ANY
    t0 = now()
    for k in keys:
        t = read(("item", k, ANY))
        if t[1] != k:
            raise AssertionError(f"bad read: {t!r} for {k}")
    return len(keys) / (now() - t0)


def bench_find(res: dict[str, Any]) -> None:
    rng = random.Random(SEED)
    finds, reads, ratios, creates = [], [], [], []
    for r in range(ROUNDS):
        keys = [rng.randrange(M_LARGE) for _ in range(N_FINDS)]
        got: dict[str, float] = {}
        for side in ("records", "tuples") if r % 2 == 0 else ("tuples", "records"):
            gc.collect()
            if side == "records":
                space, rate = fill_records(M_LARGE)
                creates.append(rate)
                gc.collect()
                got[side] = find_round(space, keys)
            else:
                space = fill_tuples(M_LARGE)
                gc.collect()
                got[side] = read_round(space, keys)
            del space
        finds.append(got["records"])
        reads.append(got["tuples"])
        ratios.append(got["records"] / got["tuples"])
    gc.collect()
    res["find_m"] = M_LARGE
    res["find_per_round"] = N_FINDS
    res["find_ops_s"] = round(median(finds), 1)
    res["tuple_read_ops_s"] = round(median(reads), 1)
    res["find_vs_read"] = round(median(ratios), 3)
    res["create_ops_s"] = round(median(creates), 1)
    res["record_bytes"] = record_bytes(100_000)


def record_bytes(n: int) -> float:
    """tracemalloc's traced bytes per record of ``{"id": i, "kind": "x"}`` (record,
    fields, path, index entries)."""
    gc.collect()
    tracemalloc.start()
    space = ts.Space()
    base = tracemalloc.get_traced_memory()[0]
    create = space.create
    for i in range(n):
        create(f"r/{i}", {"id": i, "kind": "x"})
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del space
    return round(used / n, 1)


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "get_ops_s" in res:
        out["get_ops_s >= 200000"] = res["get_ops_s"] >= 200_000
        out["set_ops_s >= 200000"] = res["set_ops_s"] >= 200_000
    if "find_vs_read" in res:
        out["find_vs_read >= 1.0 (as fast as a tuple lookup)"] = res["find_vs_read"] >= 1.0
    return out


def main() -> None:
    res = header("pytuplespace-records", rounds=ROUNDS, seed=SEED)
    run(res, [("getset", lambda: bench_getset(res)), ("find", lambda: bench_find(res))], log, targets)


if __name__ == "__main__":
    main()
