"""A small job farm: producers write jobs, workers take them, results come back.

Run with ``make run`` (or ``python examples/job_farm.py``).
"""

from __future__ import annotations

import threading
import time

import tuplespace as ts

JOBS = 200
WORKERS = 4


def producer(space: ts.Space, first: int, count: int) -> None:
    for n in range(first, first + count):
        space.write(("job", n, "square"))


def worker(space: ts.Space, name: str) -> None:
    while True:
        _, n, _op = space.take(("job", int, str))
        if n < 0:  # the poison pill: stop
            return
        time.sleep(0.001)  # the work itself, e.g. a call to another service
        space.write(("result", n, n * n, name))


def main() -> None:
    space = ts.Space()
    start = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(space, f"worker-{i}")) for i in range(WORKERS)]
    producers = [threading.Thread(target=producer, args=(space, i * JOBS // 2, JOBS // 2)) for i in range(2)]
    for t in workers + producers:
        t.start()
    results = [space.take(("result", n, int, str)) for n in range(JOBS)]
    space.write_many([("job", -1, "stop")] * WORKERS)
    for t in workers + producers:
        t.join()
    elapsed = time.perf_counter() - start
    assert all(r[2] == r[1] ** 2 for r in results)
    by_worker: dict[str, int] = {}
    for r in results:
        by_worker[r[3]] = by_worker.get(r[3], 0) + 1
    print(f"{JOBS} jobs done by {WORKERS} workers in {elapsed * 1000:.1f} ms")
    for name, n in sorted(by_worker.items()):
        print(f"  {name}: {n} jobs")
    print(f"left in the space: {len(space)} tuples")


if __name__ == "__main__":
    main()
