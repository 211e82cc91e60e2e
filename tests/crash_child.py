"""A process that works a durable space hard until it is killed (see test_crash.py).

    python crash_child.py DB_PATH RUN LOG_PATH DURABILITY SEED

Threads and coroutines write and take tuples in the space ``crash`` of the SQLite
file DB_PATH and append one line to LOG_PATH before each operation begins and one
after it returned; each line is one ``write`` system call on a file opened for
appending, so every line written is kept when the process is killed, and no line
says an operation returned before it did.

Lines (``W`` is a worker: ``t0``... a thread, ``a0``... a coroutine)::

    R                      the space is open
    b W W id...            writing items ("item", id, payload)
    e W W                  ... returned
    b W T k                taking up to k items by template (or: taking one in a
                           transaction, aborting it, and taking the same item at once)
    e W T id...            ... returned these (none: nothing matched in time)
    b W S id               taking the item id, without waiting
    e W S id|-             ... returned it, or nothing
    b W J id               writing the job ("job", id)
    e W J                  ... returned
    b W K                  taking one job, without waiting
    e W K id|-             ... returned it, or nothing
    b W X                  a transaction: take one job j (waiting a little), write ("done", j)
    m W X j                ... it took j (nothing is on disk yet)
    e W X                  ... committed: returned
    e W X abort            ... aborted: returned
    e W X -                ... found no job in time: aborted

Item and job ids are ``RUN.W.n``, unique across runs: a worker's ids grow with n.

Items with a lease have a map for payload, the others bytes or a str.  Blocking
takes wait for any item, so a tuple that an aborted transaction puts back may be
handed straight to one of them.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import tuplespace as ts

THREADS = 6
COROUTINES = 3
LIFETIME = 60.0  # a child nobody kills ends by itself after this many seconds
ITEM = ("item", str, ts.ANY)
TRANSACTION_ITEMS = [("item", str, str), ("item", str, ts.Map)]  # taken in transactions
JOB = ("job", str)


class Log:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, *words: object) -> None:
        os.write(self.fd, (" ".join(map(str, words)) + "\n").encode())


def fail() -> None:
    """A worker met an error: report it and end the process (the test then fails)."""
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(2)


class Worker:
    """What one worker chooses to do next, and the ids it made."""

    def __init__(self, name: str, run: int, seed: int) -> None:
        self.name = name
        self.run = run
        self.rng = random.Random(f"{seed}.{name}")
        self.n = 0
        self.mine: list[str] = []  # items this worker wrote, recent first at the end

    def new_id(self) -> str:
        self.n += 1
        return f"{self.run}.{self.name}.{self.n}"

    def lease(self) -> float | None:
        return 3600.0 if self.rng.random() < 0.3 else None

    def item(self, item_id: str, lease: float | None) -> tuple[Any, ...]:
        """An item: with a lease, its payload is a map; without, bytes or a str."""
        if lease is not None:
            return ("item", item_id, {"n": self.n})
        return ("item", item_id, self.rng.choice([os.urandom(self.rng.randrange(64)), "x" * self.n]))

    def choose(self) -> str:
        return self.rng.choices("WVTUYSJKX", weights=[15, 10, 15, 10, 10, 10, 15, 10, 15])[0]

    def remember(self, ids: list[str]) -> None:
        self.mine.extend(ids)
        del self.mine[:-50]


def thread_worker(space: ts.Space, log: Log, w: Worker) -> None:
    try:
        while True:
            op = w.choose()
            if op in "WV":
                ids = [w.new_id() for _ in range(1 if op == "W" else 3)]
                log("b", w.name, "W", *ids)
                lease = w.lease()
                if op == "W":
                    space.write(w.item(ids[0], lease), lease=lease)
                else:
                    space.write_many([w.item(i, lease) for i in ids], lease=lease)
                log("e", w.name, "W")
                w.remember(ids)
            elif op == "T":
                log("b", w.name, "T", 1)
                try:
                    got = [space.take(ITEM, timeout=0.02)]
                except ts.Timeout:
                    got = []
                log("e", w.name, "T", *(t[1] for t in got))
            elif op == "U":
                log("b", w.name, "T", 3)
                got = space.take_all(ITEM, limit=3)
                log("e", w.name, "T", *(t[1] for t in got))
            elif op == "Y":
                log("b", w.name, "T", 1)
                tx = space.transaction()
                item = tx.try_take(w.rng.choice(TRANSACTION_ITEMS))
                tx.abort()
                found = None if item is None else space.try_take(("item", item[1], ts.ANY))
                log("e", w.name, "T", *([] if found is None else [found[1]]))
            elif op == "S":
                if not w.mine:
                    continue
                item_id = w.rng.choice(w.mine)
                log("b", w.name, "S", item_id)
                found = space.try_take(("item", item_id, ts.ANY))
                log("e", w.name, "S", "-" if found is None else item_id)
            elif op == "J":
                job_id = w.new_id()
                log("b", w.name, "J", job_id)
                space.write(("job", job_id), lease=w.lease())
                log("e", w.name, "J")
            elif op == "K":
                log("b", w.name, "K")
                job = space.try_take(JOB)
                log("e", w.name, "K", "-" if job is None else job[1])
            else:
                log("b", w.name, "X")
                tx = space.transaction()
                try:
                    job = tx.take(JOB, timeout=0.02)
                except ts.Timeout:
                    tx.abort()
                    log("e", w.name, "X", "-")
                    continue
                log("m", w.name, "X", job[1])
                tx.write(("done", job[1]))
                if w.rng.random() < 0.25:
                    tx.abort()
                    log("e", w.name, "X", "abort")
                else:
                    tx.commit()
                    log("e", w.name, "X")
    except BaseException:
        fail()


async def coroutine_worker(aspace: ts.AsyncSpace, log: Log, w: Worker) -> None:
    try:
        while True:
            op = w.choose()
            if op in "WV":
                ids = [w.new_id() for _ in range(1 if op == "W" else 3)]
                log("b", w.name, "W", *ids)
                lease = w.lease()
                if op == "W":
                    await aspace.write(w.item(ids[0], lease), lease=lease)
                else:
                    await aspace.write_many([w.item(i, lease) for i in ids], lease=lease)
                log("e", w.name, "W")
                w.remember(ids)
            elif op == "T":
                log("b", w.name, "T", 1)
                try:
                    got = [await aspace.take(ITEM, timeout=0.02)]
                except ts.Timeout:
                    got = []
                log("e", w.name, "T", *(t[1] for t in got))
            elif op == "U":
                log("b", w.name, "T", 3)
                got = await aspace.take_all(ITEM, limit=3)
                log("e", w.name, "T", *(t[1] for t in got))
            elif op == "Y":
                log("b", w.name, "T", 1)
                atx = aspace.transaction()
                item = await atx.try_take(w.rng.choice(TRANSACTION_ITEMS))
                await atx.abort()
                found = None if item is None else await aspace.try_take(("item", item[1], ts.ANY))
                log("e", w.name, "T", *([] if found is None else [found[1]]))
            elif op == "S":
                if not w.mine:
                    await asyncio.sleep(0)
                    continue
                item_id = w.rng.choice(w.mine)
                log("b", w.name, "S", item_id)
                found = await aspace.try_take(("item", item_id, ts.ANY))
                log("e", w.name, "S", "-" if found is None else item_id)
            elif op == "J":
                job_id = w.new_id()
                log("b", w.name, "J", job_id)
                await aspace.write(("job", job_id), lease=w.lease())
                log("e", w.name, "J")
            elif op == "K":
                log("b", w.name, "K")
                job = await aspace.try_take(JOB)
                log("e", w.name, "K", "-" if job is None else job[1])
            else:
                log("b", w.name, "X")
                tx = aspace.transaction()
                try:
                    job = await tx.take(JOB, timeout=0.02)
                except ts.Timeout:
                    await tx.abort()
                    log("e", w.name, "X", "-")
                    continue
                log("m", w.name, "X", job[1])
                await tx.write(("done", job[1]))
                if w.rng.random() < 0.25:
                    await tx.abort()
                    log("e", w.name, "X", "abort")
                else:
                    await tx.commit()
                    log("e", w.name, "X")
    except BaseException:
        fail()


def run_coroutines(space: ts.Space, log: Log, run: int, seed: int) -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace(space)
        workers = [Worker(f"a{i}", run, seed) for i in range(COROUTINES)]
        await asyncio.gather(*(coroutine_worker(aspace, log, w) for w in workers))

    try:
        asyncio.run(main())
    except BaseException:
        fail()


def main() -> None:
    path, run, log_path, durability, seed = sys.argv[1:6]
    log = Log(log_path)
    space = ts.connect(f"sqlite://{path}?space=crash&durability={durability}")
    log("R")
    targets: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (thread_worker, (space, log, Worker(f"t{i}", int(run), int(seed)))) for i in range(THREADS)
    ]
    targets.append((run_coroutines, (space, log, int(run), int(seed))))
    for target, args in targets:
        threading.Thread(target=target, args=args, daemon=True).start()
    time.sleep(LIFETIME)
    os._exit(0)


if __name__ == "__main__":
    main()
