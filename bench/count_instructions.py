"""Instructions per operation, counted by cachegrind: a measure that the load of a shared
machine does not change, to compare two versions of the source where timings cannot.

    .venv/bin/python bench/count_instructions.py WORKLOAD N1 N2 [SRC]

runs WORKLOAD with N1 then N2 operations under ``valgrind --tool=cachegrind --cache-sim=no``
(``PYTHONHASHSEED=0``, ``PYTHONPATH=SRC``: ``src`` of another commit, extracted with ``git
worktree add`` or ``git archive``; default this tree's) and prints the difference of the two
counts divided by the operations between them, so what starting and stopping cost cancels out.

Embedded workloads (the process itself is counted; a ``gc.collect()`` before the loop):

- ``awrite_many``: ``AsyncSpace.write_many`` of 1,000 tuples on a SQLite space; N batches,
  per tuple;
- ``sub_write``: ``space.write`` delivering to one subscriber; ``sub_get``: the same writes,
  then each event taken by ``sub.get(timeout=0)`` (less ``sub_write``: a get);
  ``plain_write``: no subscriber;
- ``create``: ``space.create(f"r/{i}", {"id": i, "kind": "x"})``.

Served workloads (the ``tuplespace serve`` process is counted, under cachegrind; the client
is this process, with the same SRC, not counted; the server is stopped by SIGTERM):

- ``served_batch`` / ``served_batch_memory``: ``write_many`` of 1,000 tuples, ``--data-dir``
  or ``--memory``; N batches, per tuple;
- ``served_pingpong``: durable; this process writes ``("ping", i)`` and takes ``("pong", int)``,
  a responder process takes the ping and writes the pong; per round trip;
- ``served_restart``: a server (not counted) makes N durable spaces and stops; the counted one
  starts on its data directory, answers ``GET /spaces/s<N-1>``, and stops; per space (what a
  restart costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
PER_BATCH = 1_000
EMBEDDED = ("awrite_many", "sub_write", "sub_get", "plain_write", "create")
SERVED = ("served_batch", "served_batch_memory", "served_pingpong", "served_restart")
WARM = 100


def embedded(workload: str, n: int) -> None:
    """Run ``workload`` with ``n`` operations in this process (under cachegrind)."""
    import tuplespace as ts

    if workload == "awrite_many":
        asyncio.run(_awrite_many(n))
        return
    if workload == "create":
        space = ts.Space()
        for i in range(WARM):
            space.create(f"w/{i}", {"id": i, "kind": "x"})
        gc.collect()
        for i in range(n):
            space.create(f"r/{i}", {"id": i, "kind": "x"})
        space.close()
        return
    space = ts.Space(event_retention=n + 2 * WARM)
    sub = space.subscribe(("ev", int), events={"write"}, max_pending=n + 2 * WARM)
    for i in range(WARM):
        space.write(("ev", i))
        sub.get(timeout=0)
    if workload == "plain_write":
        sub.close()
    gc.collect()
    for i in range(n):
        space.write(("ev", i))
    if workload == "sub_get":
        for _ in range(n):
            sub.get(timeout=0)
    space.close()


async def _awrite_many(n: int) -> None:
    import tuplespace as ts

    with tempfile.TemporaryDirectory(prefix="count-instructions-") as tmp:
        space = await ts.connect_async(f"sqlite:{tmp}/s.db?space=bench")
        await space.write_many([("warm", i) for i in range(PER_BATCH)])
        gc.collect()
        for k in range(n):
            await space.write_many([("job", k * PER_BATCH + i, "payload-string") for i in range(PER_BATCH)])
        await space.close()


RESPONDER = """
import sys
import tuplespace as ts
space = ts.connect(sys.argv[1])
space.write(("ready",))
for _ in range(int(sys.argv[2])):
    _, i = space.take(("ping", int))
    space.write(("pong", i))
space.close()
"""


def _total(out: str) -> int:
    with open(out) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary in {out}")


def served(workload: str, n: int, env: dict[str, str]) -> int:
    """The instructions of a ``tuplespace serve`` process that served ``workload`` with ``n``
    operations."""
    import tuplespace as ts

    with tempfile.TemporaryDirectory(prefix="count-instructions-") as tmp:
        out = os.path.join(tmp, "cachegrind.out")
        data = os.path.join(tmp, "data")
        store = ["--memory"] if workload == "served_batch_memory" else ["--data-dir", data]
        if workload == "served_restart":
            with _serving([], store, tmp, env) as port, httpx.Client(timeout=60) as http:
                for i in range(n):
                    http.put(f"http://127.0.0.1:{port}/spaces/s{i}").raise_for_status()
            with _serving(_valgrind(out), store, tmp, env) as port:  # it answers for the last space
                httpx.get(f"http://127.0.0.1:{port}/spaces/s{n - 1}", timeout=60).raise_for_status()
            return _total(out)
        with _serving(_valgrind(out), store, tmp, env) as port:
            url = f"http://127.0.0.1:{port}/spaces/bench"
            space: Any = ts.connect(url)
            if workload == "served_pingpong":
                responder = [sys.executable, "-c", RESPONDER, url, str(n + WARM)]
                pong = subprocess.Popen(responder, env=env)
                space.take(("ready",), timeout=300)
                for i in range(n + WARM):
                    space.write(("ping", i))
                    if space.take(("pong", int)) != ("pong", i):
                        raise AssertionError(f"round trip {i} went wrong")
                if pong.wait(60) != 0:
                    raise AssertionError("the responder failed")
            else:
                space.write_many([("warm", i) for i in range(PER_BATCH)])
                for k in range(n):
                    space.write_many([("job", k * PER_BATCH + i, "payload-string") for i in range(PER_BATCH)])
            space.close()
        return _total(out)


@contextlib.contextmanager
def _serving(prefix: list[str], store: list[str], cwd: str, env: dict[str, str]) -> Iterator[int]:
    """A ``tuplespace serve`` process on ``store``, run under ``prefix`` (the counter, or
    nothing), until the block ends (SIGTERM); its port."""
    from bench_server import free_port, healthy

    port = free_port()
    argv = [
        *prefix,
        *(sys.executable, "-m", "tuplespace", "serve", "--port", str(port), *store),
        *("--log-level", "warning"),
    ]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {' '.join(argv)}")
            time.sleep(0.5)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def _valgrind(out: str) -> list[str]:
    return ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]


def count(workload: str, n: int, env: dict[str, str]) -> int:
    """The instructions of ``workload`` with ``n`` operations."""
    if workload in SERVED:
        return served(workload, n, env)
    with tempfile.TemporaryDirectory(prefix="count-instructions-") as tmp:
        out = os.path.join(tmp, "cachegrind.out")
        argv = [*_valgrind(out), sys.executable, os.path.abspath(__file__), "--run", workload, str(n)]
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _total(out)


def main() -> None:
    if sys.argv[1] == "--run":
        embedded(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) < 4 or sys.argv[1] not in (*EMBEDDED, *SERVED):
        raise SystemExit(__doc__)
    workload, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    src = os.path.abspath(sys.argv[4] if len(sys.argv) > 4 else os.path.join(HERE, "..", "src"))
    env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": "0"}
    if workload in SERVED:
        sys.path.insert(0, src)  # the client of the same source as the server
    first, second = count(workload, n1, env), count(workload, n2, env)
    per = PER_BATCH if re.search("batch|write_many", workload) else 1
    print(f"{workload} {src}: {(second - first) / ((n2 - n1) * per):,.0f} instructions per operation")


if __name__ == "__main__":
    main()
