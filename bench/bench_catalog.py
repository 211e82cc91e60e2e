"""Benchmarks of a server's catalog of durable spaces: creating spaces, and restarting.

Prints ONE JSON line with ``"impl": "pytuplespace-catalog"``.  A server runs in
this process on 127.0.0.1 with a fresh data directory; spaces are created with
``PUT /spaces/<name>`` over one HTTP connection.

1. Creation: the time of one ``PUT /spaces/<name>`` (median of SAMPLES
   creations) once the server holds N_SMALL spaces, and once it holds N_LARGE.
2. Restart: the server is filled to N_RESTART spaces and stopped; the time for
   a new server on the same directory to start (``start_in_thread`` returns once
   it listens), and then the time until ``GET /spaces/<name>`` of a space made
   before the restart answers (median of RESTART_RUNS restarts).  The count of
   spaces listed after the restart is checked.

Env overrides: N_SMALL (10), N_LARGE (2000), N_RESTART (10000), SAMPLES (20),
RESTART_RUNS (3), SKIP (comma-separated: create,restart).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx

from _harness import header, logger, now, run
from tuplespace.server import Server, ServerLimits, create_app

N_SMALL = int(os.environ.get("N_SMALL", 10))
N_LARGE = int(os.environ.get("N_LARGE", 2000))
N_RESTART = int(os.environ.get("N_RESTART", 10_000))
SAMPLES = int(os.environ.get("SAMPLES", 20))
RESTART_RUNS = int(os.environ.get("RESTART_RUNS", 3))
# The server may create as many spaces as the benchmark makes.
LIMITS = ServerLimits(max_spaces=max(N_LARGE + SAMPLES, N_RESTART, 1))

log = logger("bench_catalog")


class Served:
    """A server on ``data_dir`` with one HTTP connection to it."""

    def __init__(self, data_dir: Path) -> None:
        self.server = Server(create_app(data_dir, limits=LIMITS), port=0)
        self.thread = self.server.start_in_thread()
        self.http = httpx.Client(base_url=self.server.url, timeout=60)
        self.count = 0

    def create(self, name: str) -> None:
        response = self.http.put(f"/spaces/{name}")
        assert response.status_code == 201, response.text

    def fill(self, n: int) -> None:
        """Create spaces up to ``n`` in all."""
        while self.count < n:
            self.create(f"s{self.count}")
            self.count += 1

    def timed_creations(self, samples: int) -> float:
        """The median milliseconds of ``samples`` creations (the count grows by them)."""
        times = []
        for _ in range(samples):
            t0 = now()
            self.create(f"s{self.count}")
            times.append((now() - t0) * 1000)
            self.count += 1
        return statistics.median(times)

    def stop(self) -> None:
        self.http.close()
        self.server.stop()
        self.thread.join()


def creation(res: dict[str, Any]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    try:
        served = Served(directory)
        try:
            served.fill(N_SMALL)
            res["create_ms_at_small"] = round(served.timed_creations(SAMPLES), 3)
            served.fill(N_LARGE)
            res["create_ms_at_large"] = round(served.timed_creations(SAMPLES), 3)
        finally:
            served.stop()
    finally:
        shutil.rmtree(directory)


def restart(res: dict[str, Any]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    try:
        served = Served(directory)
        t0 = now()
        served.fill(N_RESTART)
        res["fill_s"] = round(now() - t0, 2)
        served.stop()
        starts, firsts = [], []
        for _ in range(RESTART_RUNS):
            t0 = now()
            server = Server(create_app(directory), port=0)
            thread = server.start_in_thread()
            t1 = now()
            with httpx.Client(base_url=server.url, timeout=60) as http:
                answer = http.get(f"/spaces/s{N_RESTART - 1}")
                assert answer.status_code == 200, answer.text
                t2 = now()
                listed = len(http.get("/spaces").json()["spaces"])
            server.stop()
            thread.join()
            assert listed == N_RESTART, f"{listed} spaces listed after the restart, not {N_RESTART}"
            starts.append(t1 - t0)
            firsts.append(t2 - t0)
        res["restart_s"] = round(statistics.median(starts), 3)
        res["restart_first_answer_s"] = round(statistics.median(firsts), 3)
    finally:
        shutil.rmtree(directory)


def main() -> None:
    res = header(
        "pytuplespace-catalog", n_small=N_SMALL, n_large=N_LARGE, n_restart=N_RESTART, samples=SAMPLES
    )
    run(res, [("create", lambda: creation(res)), ("restart", lambda: restart(res))], log)


if __name__ == "__main__":
    main()
