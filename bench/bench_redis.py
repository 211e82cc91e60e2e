"""A space kept in Redis beside raw redis-py on the same redis-server, in one run.

Starts its own redis-server (``--save '' --appendonly no``) on a free port, stops it by
its PID at the end, and prints one JSON line:

Each workload runs in ``ROUNDS`` rounds, each round measuring redis-py then the space
on ``N / ROUNDS`` operations, and reports the best round of each: on a shared machine,
the load of other jobs then weighs on both sides alike.

1. Sequential writes of ``("job", i, "payload-string")`` through ``ts.connect("redis://…")``,
   then takes by a template with an exact field, ``("job", ANY, ANY)``; beside them, what
   Redis users do instead: LPUSH of the JSON text, then RPOP and decode.  Each call is one
   unpipelined round trip.  Target: >= 0.5x redis-py.
   Beside each, the Redis time per operation (``INFO commandstats``: the ``usec`` of
   LPUSH, RPOP or FCALL, whose figure holds the commands its script calls, over the
   phase, divided by the operations).
2. Blocking ping-pong between two processes: this one writes ``("ping", i)`` and takes
   ``("pong", ANY)``, a responder takes ``("ping", ANY)`` and writes ``("pong", i)``;
   beside it the same with LPUSH and BLPOP.  Target: >= 0.5x redis-py.

    .venv/bin/python bench/bench_redis.py          # N_BULK=5000 N_PINGPONG=2000 by default

Env: N_BULK, N_PINGPONG, ROUNDS (5), SKIP (comma-separated: bulk,pingpong).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import redis

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace import ANY

N_BULK = int(os.environ.get("N_BULK", 5000))
N_PINGPONG = int(os.environ.get("N_PINGPONG", 2000))
ROUNDS = int(os.environ.get("ROUNDS", 5))
log = logger("bench_redis")
# The commands that run a space's scripts: FCALL, EVALSHA in versions before its Redis
# Functions library (for bench/compare.py against those).
SCRIPT_CALLS = ("fcall", "evalsha")


def start_server(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    options = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen([binary, *options, "--dir", directory], **quiet)
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not come up") from None
            time.sleep(0.02)
    client.close()
    return proc, port


def responder(url: str, n: int) -> None:
    """The other process of the ping-pong: ``raw`` for redis-py, else a space."""
    if url.startswith("raw:"):
        r = redis.Redis(host="127.0.0.1", port=int(url[4:]))
        r.lpush("ready", 1)
        for _ in range(n):
            _, v = r.blpop(["ping"], 0)  # type: ignore[misc]
            r.lpush("pong", v)
        return
    space = ts.connect(url)
    space.write(("ready",))
    for _ in range(n):
        _, i = space.take(("ping", ANY))
        space.write(("pong", i))
    space.close()


def main() -> None:
    res: dict[str, Any] = header(
        "redis-store", redis_py=redis.__version__, bulk_n=N_BULK, pingpong_n=N_PINGPONG
    )
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        proc, port = start_server(directory)
        r = redis.Redis(host="127.0.0.1", port=port)
        res["redis_server"] = r.info("server").get("redis_version")
        url = f"redis://127.0.0.1:{port}/0?space=bench"
        space = ts.connect(url)

        def redis_usec() -> dict[str, int]:
            """Microseconds Redis has spent so far in each command."""
            return {k: v["usec"] for k, v in r.info("commandstats").items()}

        def bulk() -> None:
            n = N_BULK // ROUNDS
            best: dict[str, float] = {}
            used = dict.fromkeys(("lpush", "rpop", "write", "take"), 0)
            for _ in range(ROUNDS):
                phases = (
                    (
                        "lpush",
                        ("lpush",),
                        lambda i: r.lpush("jobs", json.dumps(["job", i, "payload-string"])),
                    ),
                    ("rpop", ("rpop",), lambda i: json.loads(r.rpop("jobs"))),  # type: ignore[arg-type]
                    ("write", SCRIPT_CALLS, lambda i: space.write(("job", i, "payload-string"))),
                    ("take", SCRIPT_CALLS, lambda i: space.take(("job", ANY, ANY))),
                )
                for name, commands, op in phases:
                    before, t0 = redis_usec(), now()
                    for i in range(n):
                        op(i)
                    dt, after = now() - t0, redis_usec()
                    best[name] = min(best.get(name, dt), dt)
                    for key in (f"cmdstat_{command}" for command in commands):
                        used[name] += after.get(key, 0) - before.get(key, 0)
            for name in used:
                res[f"redis_us_per_{name}"] = round(used[name] / (n * ROUNDS), 1)
            res["lpush_ops_s"] = round(n / best["lpush"])
            res["rpop_ops_s"] = round(n / best["rpop"])
            res["write_ops_s"] = round(n / best["write"])
            res["take_exact_ops_s"] = round(n / best["take"])

        def pingpong() -> None:
            n = N_PINGPONG // ROUNDS
            best: dict[str, float] = {}
            for _ in range(ROUNDS):
                for name, peer in (("blpop", f"raw:{port}"), ("space", url)):
                    child = subprocess.Popen([sys.executable, __file__, "--responder", peer, str(n)])
                    if name == "blpop":
                        r.blpop(["ready"], 30)
                        t0 = now()
                        for i in range(n):
                            r.lpush("ping", i)
                            _, v = r.blpop(["pong"], 0)  # type: ignore[misc]
                            assert int(v) == i
                    else:
                        space.take(("ready",), timeout=30)
                        t0 = now()
                        for i in range(n):
                            space.write(("ping", i))
                            assert space.take(("pong", ANY))[1] == i
                    dt = now() - t0
                    child.wait(timeout=60)
                    best[name] = min(best.get(name, dt), dt)
            for name, dt in best.items():
                res[f"{name}_pingpong_rt_s"] = round(n / dt)
                res[f"{name}_pingpong_mean_us"] = round(dt / n * 1e6, 1)

        def targets(res: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, ours, theirs in (
                ("write_vs_lpush", "write_ops_s", "lpush_ops_s"),
                ("take_exact_vs_rpop", "take_exact_ops_s", "rpop_ops_s"),
                ("pingpong_vs_blpop", "space_pingpong_rt_s", "blpop_pingpong_rt_s"),
            ):
                if ours in res and theirs in res:
                    ratio = res[ours] / res[theirs]
                    out[name] = {"ratio": round(ratio, 2), "target": 0.5, "met": ratio >= 0.5}
            return out

        try:
            run(res, [("bulk", bulk), ("pingpong", pingpong)], log, targets)
        finally:
            space.close()
            r.close()
            proc.terminate()  # stop our redis-server by its PID
            proc.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--responder":
        responder(sys.argv[2], int(sys.argv[3]))
    else:
        main()
