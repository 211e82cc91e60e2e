"""Benchmarks of a served space, through the Python binding, beside Redis and Rinda over DRb.

Prints ONE JSON line with ``"impl": "pytuplespace-server"``.  Every server is a real
one this script starts on 127.0.0.1 and stops by its PID: ``python -m tuplespace
serve --memory`` (and ``--data-dir`` in a temporary folder for the durable figures),
each workload on a fresh one.  The clients are ``ts.connect(url)`` (sync) and
``ts.connect_async(url)``; the peers are ``redis_bench.py`` and ``rinda_drb.rb`` from
the shared peers folder, run as subprocesses with the same N, their JSON line kept.

1. bulk: N_BULK sequential ``write(("job", i, "payload-string"))``, then N_BULK
   ``take(("job", int, str))``, one client (each take must return tuple i: FIFO).
   Target: >= 1x Redis LPUSH / RPOP through redis-py.  (Each timed phase of 1 and 2
   follows WARM = 100 untimed operations on the same connection: the first calls
   create the space and import what they need, and would weigh on a quick run.)
2. pingpong: this process writes ``("ping", i)`` and takes ``("pong", int)``; a
   responder process takes ``("ping", int)`` and writes ``("pong", i)``;
   N_PINGPONG round trips.  Target: >= 1x Redis BLPOP ping-pong.
3. batch: N_BATCH tuples by ``write_many`` in batches of BATCH (the server's
   ``ServerLimits.max_batch`` by default), then all taken back with ``take_all``
   (for information).  Target: >= 50,000 tuples/s written.
4. waiters: N_WAITERS coroutines of one ``connect_async`` client each wait in
   ``take(("t", i))`` for their own i.  The server's RSS (``VmRSS``) is read
   before they start and once the space reports them all waiting; then one
   ``write(("t", i))`` each, in shuffled order, and every taker must get its
   own tuple.  Target: every taker answered, RSS with them waiting < 100 MB.
   ``tuplespace serve`` has no option for ``ServerLimits.max_waiting`` (1,000 per
   client, and every process on 127.0.0.1 is the same client), so this server is
   ``tuplespace.server.run(limits=ServerLimits(max_waiting=N_WAITERS + 100))``,
   started by this script.
5. durable: 1 to 3 again on a server with ``--data-dir`` (for information).

For each timed phase the CPU time of the server process (from ``/proc/PID/stat``)
and of this process is reported per operation, so a figure says which side the
time went to.  ``REPEATS`` passes (default 1) run round-robin: Redis, bulk,
ping-pong, Rinda, batch, waiters, durable.  Figures are the medians of the passes;
a ratio is taken within each pass, then the median.  ``load_before`` and
``load_after`` are ``os.getloadavg()``.

    .venv/bin/python bench/bench_server.py
    REPEATS=3 .venv/bin/python bench/bench_server.py
    N_BULK=2000 N_PINGPONG=500 N_BATCH=20000 .venv/bin/python bench/bench_server.py   # quick
    .venv/bin/python bench/bench_server.py --profile      # where one write's time goes

To measure a commit rather than the work tree, extract its ``src/`` (``git archive REV
src | tar -x -C DIR``) and set ``PYTHONPATH=DIR/src``: the servers and the responder
inherit it, and ``tuplespace_src`` in the JSON says which source ran.

``--profile`` runs no comparison: it times one sequential write through the layers
(the binding, httpx, ``http.client``, a raw socket; ``/health`` as the framework's
floor) with the CPU of each side, then profiles N_PROFILE binding writes with
cProfile in the client and in the server, and prints the top functions on stderr.

Env: REPEATS (1), N_BULK (20000), N_PINGPONG (5000), N_BATCH (100000), BATCH
(max_batch), N_WAITERS (1000), N_PROFILE (5000), SEED (12345), PEERS_DIR (default:
``../shared/peers`` beside the repository), RUBY (ruby), SKIP (comma-separated:
redis,rinda,bulk,pingpong,batch,waiters,durable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import http.client
import json
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

import tuplespace as ts
from _harness import SKIP, header, logger, now, run
from tuplespace.client import AsyncRemoteSpace
from tuplespace.server import ServerLimits

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT.parent / "shared" / "peers"))
RUBY = os.environ.get("RUBY", "ruby")

REPEATS = int(os.environ.get("REPEATS", 1))
N_BULK = int(os.environ.get("N_BULK", 20_000))
N_PINGPONG = int(os.environ.get("N_PINGPONG", 5_000))
N_BATCH = int(os.environ.get("N_BATCH", 100_000))
BATCH = int(os.environ.get("BATCH", ServerLimits().max_batch))
N_WAITERS = int(os.environ.get("N_WAITERS", 1_000))
N_PROFILE = int(os.environ.get("N_PROFILE", 5_000))
SEED = int(os.environ.get("SEED", 12345))
WARM = 100  # untimed operations first, on every connection
LADDER_ROUNDS = 5  # of the --profile ladder

PAYLOAD = "payload-string"
JSON_HEADERS = {"Content-Type": "application/json"}
JOB = ("job", int, str)
SPACE = "bench"
REDIS = "redis"
RINDA = "rinda-drb"
BATCH_GOAL = 50_000
RSS_GOAL_MB = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
median = statistics.median
log = logger("bench_server")


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def healthy(port: int) -> bool:
    """Whether the server on 127.0.0.1:``port`` answers ``/health``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Served:
    """A server in a subprocess on 127.0.0.1, stopped by its PID."""

    def __init__(self, argv: list[str], port: int, cwd: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/spaces/{SPACE}"
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = now() + 30
        while not healthy(port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited with {self.proc.returncode}")
            if now() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(argv)} did not answer /health within 30 s")
            time.sleep(0.05)

    def cpu(self) -> float:
        """Seconds of CPU the server process has used (user + system)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_mb(self) -> dict[str, float]:
        """VmRSS and VmHWM (the peak) of the server process, in MB."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ``tuplespace serve --memory`` with other limits, optionally under cProfile (its stats
# written once SIGTERM has stopped it).  Run with ``python -c`` so that the server process
# imports the server only, as ``tuplespace serve`` does, not what this script imports.
SERVE = """
import cProfile, sys
from tuplespace.server import ServerLimits, run
port, max_waiting, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
prof = cProfile.Profile() if out else None
if prof:
    prof.enable()
try:
    run("127.0.0.1", port, log_level="warning", limits=ServerLimits(max_waiting=max_waiting))
finally:
    if prof:
        prof.disable()
        prof.dump_stats(out)
"""


@contextlib.contextmanager
def served(
    durable: bool = False, max_waiting: int | None = None, profile: str | None = None
) -> Iterator[Served]:
    """A fresh server: ``tuplespace serve`` (``--memory``, or ``--data-dir`` in a temporary
    folder), or with ``max_waiting`` or ``profile`` the server of :data:`SERVE`."""
    with tempfile.TemporaryDirectory(prefix="tuplespace-bench-server-") as tmp:
        port = free_port()
        if max_waiting is None and profile is None:
            store = ["--data-dir", str(Path(tmp) / "data")] if durable else ["--memory"]
            argv = [sys.executable, "-m", "tuplespace", "serve", "--port", str(port), *store]
            argv += ["--log-level", "warning"]
        else:
            limit = max_waiting or ServerLimits().max_waiting
            argv = [sys.executable, "-c", SERVE, str(port), str(limit), profile or ""]
        server = Served(argv, port, tmp)
        try:
            yield server
        finally:
            server.stop()


class Meter:
    """Wall time, and CPU of this process and of the server, over one timed phase."""

    def __init__(self, server: Served) -> None:
        self.server = server

    def __enter__(self) -> Meter:
        gc.collect()
        self._cpu0, self._srv0, self._t0 = time.process_time(), self.server.cpu(), now()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = now() - self._t0
        self.client_cpu = time.process_time() - self._cpu0
        self.server_cpu = self.server.cpu() - self._srv0

    def figures(self, prefix: str, n: int, unit: str) -> dict[str, float]:
        return {
            f"{prefix}_{unit}": round(n / self.seconds, 1),
            f"{prefix}_client_cpu_us": round(self.client_cpu / n * 1e6, 1),
            f"{prefix}_server_cpu_us": round(self.server_cpu / n * 1e6, 1),
        }


# -- 1. bulk write, then take --------------------------------------------------------------------


def bulk(server: Served, prefix: str = "") -> dict[str, Any]:
    idle = server.memory_mb()["VmRSS"]
    space = ts.connect(server.url)
    write, take = space.write, space.take
    try:
        for i in range(WARM):  # the space exists and the paths have run (first calls import)
            write(("warm", i))
        for _ in range(WARM):
            take(("warm", int))
        with Meter(server) as w:
            for i in range(N_BULK):
                write(("job", i, PAYLOAD))
        with Meter(server) as t:
            for i in range(N_BULK):
                got = take(JOB)
                if got != ("job", i, PAYLOAD):
                    raise AssertionError(f"take {i} returned {got!r}")
        if space.count(JOB) != 0:
            raise AssertionError("the space is not empty after taking every tuple")
    finally:
        space.close()
    return {
        f"{prefix}idle_server_rss_mb": round(idle, 1),
        f"{prefix}bulk_n": N_BULK,
        **w.figures(f"{prefix}bulk_write", N_BULK, "ops_s"),
        **t.figures(f"{prefix}bulk_take", N_BULK, "ops_s"),
    }


# -- 2. ping-pong between two client processes ---------------------------------------------------


def responder(url: str, n: int) -> None:
    """``--responder``: take ``("ping", int)``, write ``("pong", i)``, n times after
    the WARM untimed round trips."""
    space = ts.connect(url)
    try:
        space.write(("ready",))
        for _ in range(n + WARM):
            _, i = space.take(("ping", int))
            space.write(("pong", i))
    finally:
        space.close()


def pingpong(server: Served, prefix: str = "") -> dict[str, Any]:
    space = ts.connect(server.url)
    pong = subprocess.Popen([sys.executable, __file__, "--responder", server.url, str(N_PINGPONG)])
    try:
        space.take(("ready",), timeout=60)  # the responder is connected
        write, take = space.write, space.take
        for i in range(-WARM, 0):
            write(("ping", i))
            take(("pong", int))
        with Meter(server) as m:
            for i in range(N_PINGPONG):
                write(("ping", i))
                got = take(("pong", int))
                if got != ("pong", i):
                    raise AssertionError(f"round trip {i} got {got!r}")
        if pong.wait(timeout=60) != 0:
            raise AssertionError(f"the responder exited with {pong.returncode}")
    finally:
        if pong.poll() is None:
            pong.send_signal(signal.SIGTERM)
            pong.wait()
        space.close()
    out = m.figures(f"{prefix}pingpong", N_PINGPONG, "rt_s")
    out[f"{prefix}pingpong_n"] = N_PINGPONG
    out[f"{prefix}pingpong_mean_us"] = round(m.seconds / N_PINGPONG * 1e6, 1)
    return out


# -- 3. batched writes -----------------------------------------------------------------------------


def batch(server: Served, prefix: str = "") -> dict[str, Any]:
    batches = [
        [("job", i, PAYLOAD) for i in range(start, min(start + BATCH, N_BATCH))]
        for start in range(0, N_BATCH, BATCH)
    ]
    space = ts.connect(server.url)
    try:
        with Meter(server) as w:
            for b in batches:
                space.write_many(b)
        if space.count(JOB) != N_BATCH:
            raise AssertionError("write_many did not store every tuple")
        with Meter(server) as t:
            taken = space.take_all(JOB)
        if len(taken) != N_BATCH or space.count(JOB) != 0:
            raise AssertionError(f"take_all took {len(taken)} of {N_BATCH}")
    finally:
        space.close()
    return {
        f"{prefix}batch_n": N_BATCH,
        f"{prefix}batch_size": BATCH,
        **w.figures(f"{prefix}batch_write", N_BATCH, "tuples_s"),
        **t.figures(f"{prefix}batch_take_all", N_BATCH, "tuples_s"),
    }


# -- 4. blocked takers held by one server ----------------------------------------------------------


async def waiters_async(server: Served) -> dict[str, Any]:
    space = await ts.connect_async(server.url)
    writer = await ts.connect_async(server.url)  # its own connection, not in the takers' pool
    assert isinstance(space, AsyncRemoteSpace)
    assert isinstance(writer, AsyncRemoteSpace)
    try:
        await space.write(("warm",))  # the space exists and every path has run once
        await space.take(("warm",))
        await space.statistics()
        before = server.memory_mb()
        t0 = now()
        takers = [asyncio.create_task(space.take(("t", i))) for i in range(N_WAITERS)]
        deadline = now() + 120
        while (await space.statistics())["waiters"] < N_WAITERS:
            if now() > deadline:
                raise AssertionError("the takers were not all waiting after 120 s")
            await asyncio.sleep(0.05)
        parked = now() - t0
        waiting = server.memory_mb()
        order = list(range(N_WAITERS))
        random.Random(SEED).shuffle(order)
        with Meter(server) as m:
            for i in order:
                await writer.write(("t", i))
            got = await asyncio.wait_for(asyncio.gather(*takers), timeout=120)
        own = sum(1 for i, t in enumerate(got) if t == ("t", i))
        stats = await space.statistics()
        if stats["tuples"] or stats["waiters"]:
            raise AssertionError(f"left behind: {stats['tuples']} tuples, {stats['waiters']} waiters")
    finally:
        await writer.close()
        await space.close()
    after = server.memory_mb()
    return {
        "waiters_n": N_WAITERS,
        "waiters_answered_own": own,
        "waiters_rss_before_mb": round(before["VmRSS"], 1),
        "waiters_rss_waiting_mb": round(waiting["VmRSS"], 1),
        "waiters_rss_after_mb": round(after["VmRSS"], 1),
        "waiters_hwm_mb": round(after["VmHWM"], 1),
        "waiters_kb_each": round((waiting["VmRSS"] - before["VmRSS"]) * 1024 / N_WAITERS, 1),
        "waiters_park_s": round(parked, 2),
        "waiters_answer_s": round(m.seconds, 2),
        "waiters_answer_client_cpu_s": round(m.client_cpu, 2),
        "waiters_answer_server_cpu_s": round(m.server_cpu, 2),
    }


def waiters(server: Served) -> dict[str, Any]:
    return asyncio.run(waiters_async(server))


# -- the peers ---------------------------------------------------------------------------------------


def peer(cmd: list[str]) -> dict[str, Any] | None:
    env = {**os.environ, "N_BULK": str(N_BULK), "N_PINGPONG": str(N_PINGPONG)}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        log(f"{' '.join(cmd)} exited with {proc.returncode} and {len(lines)} JSON lines: left out")
        return None
    rec: dict[str, Any] = json.loads(lines[-1])
    return rec


def redis_cmd() -> list[str] | None:
    script = PEERS_DIR / "redis_bench.py"
    if not script.exists():
        log(f"no {script}: the Redis comparison is skipped")
    elif shutil.which("redis-server") is None:
        log("redis-server is not installed (apt-get install -y redis-server): Redis is skipped")
    else:
        return [sys.executable, str(script)]
    return None


def rinda_cmd() -> list[str] | None:
    script = PEERS_DIR / "rinda_drb.rb"
    if not script.exists():
        log(f"no {script}: the Rinda comparison is skipped")
    elif shutil.which(RUBY) is None:
        log(f"{RUBY} is not installed (apt-get install -y ruby): Rinda is skipped")
    else:
        return [RUBY, str(script)]
    return None


# -- the passes, the ratios and the targets -----------------------------------------------------------


Pass = dict[str, dict[str, Any]]  # {"ours": figures, "redis": record, "rinda-drb": record}


def workloads(passes: list[Pass]) -> list[tuple[str, Callable[[], None]]]:
    def ours(fn: Callable[..., dict[str, Any]], **options: Any) -> Callable[[Pass], None]:
        def go(p: Pass) -> None:
            with served(**options) as server:
                p["ours"].update(fn(server))

        return go

    def durable(p: Pass) -> None:
        for fn in (bulk, pingpong, batch):
            with served(durable=True) as server:
                p["ours"].update(fn(server, "durable_"))

    def peer_of(name: str, cmd: list[str] | None) -> Callable[[Pass], None]:
        def go(p: Pass) -> None:
            if cmd is not None and (rec := peer(cmd)) is not None:
                p[name] = rec

        return go

    steps: list[tuple[str, Callable[[Pass], None]]] = [
        (REDIS, peer_of(REDIS, None if REDIS in SKIP else redis_cmd())),
        ("bulk", ours(bulk)),
        ("pingpong", ours(pingpong)),
        ("rinda", peer_of(RINDA, None if "rinda" in SKIP else rinda_cmd())),
        ("batch", ours(batch)),
        ("waiters", ours(waiters, max_waiting=N_WAITERS + 100)),
        ("durable", durable),
    ]
    out: list[tuple[str, Callable[[], None]]] = []
    for k in range(REPEATS):
        p: Pass = {"ours": {}}
        passes.append(p)
        out += [(name, _step(step, p, k, name)) for name, step in steps]
    return out


def _step(step: Callable[[Pass], None], p: Pass, k: int, name: str) -> Callable[[], None]:
    def go() -> None:
        log(f"[pass {k + 1}/{REPEATS}] {name}")
        step(p)

    return go


RATIOS: dict[str, tuple[str, str, str]] = {  # name: (our figure, peer, peer's figure)
    "ratio_write_vs_redis": ("bulk_write_ops_s", REDIS, "lpush_ops_s"),
    "ratio_take_vs_redis": ("bulk_take_ops_s", REDIS, "rpop_ops_s"),
    "ratio_pingpong_vs_redis": ("pingpong_rt_s", REDIS, "blpop_pingpong_rt_s"),
    "ratio_write_vs_rinda_drb": ("bulk_write_ops_s", RINDA, "bulk_write_ops_s"),
    "ratio_take_vs_rinda_drb": ("bulk_take_ops_s", RINDA, "bulk_take_ops_s"),
    "ratio_pingpong_vs_rinda_drb": ("pingpong_rt_s", RINDA, "pingpong_rt_s"),
    "ratio_durable_write_vs_redis": ("durable_bulk_write_ops_s", REDIS, "lpush_ops_s"),
    "ratio_durable_take_vs_redis": ("durable_bulk_take_ops_s", REDIS, "rpop_ops_s"),
    "ratio_durable_pingpong_vs_redis": ("durable_pingpong_rt_s", REDIS, "blpop_pingpong_rt_s"),
}


def medians(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in records[0]:
        values = [r[key] for r in records if key in r]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[key] = statistics.median_low(values)  # counts stay counts
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = round(median(values), 2)
        else:
            out[key] = values[0]
    return out


def summarise(res: dict[str, Any], passes: list[Pass]) -> None:
    res.update(medians([p["ours"] for p in passes]))
    res["peers"] = {
        name: medians(recs) for name in (REDIS, RINDA) if (recs := [p[name] for p in passes if name in p])
    }
    for name, (ours, peer_name, theirs) in RATIOS.items():
        values = [
            p["ours"][ours] / p[peer_name][theirs]
            for p in passes
            if ours in p["ours"] and theirs in p.get(peer_name, {})
        ]
        if values:
            res[name] = round(median(values), 3)
            if len(values) > 1:
                res[name + "_range"] = [round(min(values), 3), round(max(values), 3)]
    if "batch_write_tuples_s" in res:
        res["ratio_batch_vs_goal"] = round(res["batch_write_tuples_s"] / BATCH_GOAL, 3)
    if REPEATS > 1:
        res["per_pass"] = passes


def targets(res: dict[str, Any]) -> dict[str, Any]:
    def ratio(key: str, goal: float) -> dict[str, Any]:
        if key not in res:
            return {"goal": f">= {goal}x", "met": None, "why": "not measured (skipped, or peer not run)"}
        return {"value": res[key], "goal": f">= {goal}x", "met": res[key] >= goal}

    out: dict[str, Any] = {
        "write_vs_redis_lpush": ratio("ratio_write_vs_redis", 1),
        "take_vs_redis_rpop": ratio("ratio_take_vs_redis", 1),
        "pingpong_vs_redis_blpop": ratio("ratio_pingpong_vs_redis", 1),
        "batch_write": ratio("ratio_batch_vs_goal", 1) | {"goal": f">= {BATCH_GOAL:,} tuples/s"},
    }
    if "waiters_n" in res:
        met = res["waiters_answered_own"] == res["waiters_n"] and res["waiters_rss_waiting_mb"] < RSS_GOAL_MB
        out["waiters_rss"] = {
            "value": f"{res['waiters_answered_own']} of {res['waiters_n']} answered with their own tuple,"
            f" {res['waiters_rss_waiting_mb']} MB RSS while waiting",
            "goal": f"all answered, < {RSS_GOAL_MB} MB",
            "met": met,
        }
    else:
        out["waiters_rss"] = {"met": None, "why": "skipped"}
    judged = [v["met"] for v in out.values() if v.get("met") is not None]
    return {**out, "met": sum(judged), "of": len(judged)}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench() -> None:
    passes: list[Pass] = []
    res = header("pytuplespace-server", repeats=REPEATS, load_before=load())
    steps = workloads(passes)

    def finish() -> None:
        summarise(res, passes)
        res["load_after"] = load()

    run(res, [*steps, ("summary", finish)], log, targets)


# -- --profile: where the time of one sequential write goes ------------------------------------------


Sender = Callable[[], Any]


def raw_sender(port: int, body: bytes, path: str, opened: contextlib.ExitStack) -> Sender:
    """One keep-alive request over a plain socket, the least a client can do."""
    sock = opened.enter_context(socket.create_connection(("127.0.0.1", port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    method = "POST" if body else "GET"
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    request = head.encode() + b"\r\n" + body

    def once() -> None:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)

    return once


def http_client_sender(port: int, body: bytes, path: str, opened: contextlib.ExitStack) -> Sender:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    opened.callback(conn.close)

    def once() -> None:
        conn.request("POST", path, body, JSON_HEADERS)
        conn.getresponse().read()

    return once


def ladder(server: Served, n: int) -> dict[str, Any]:
    """One sequential write through each layer, from the binding down to a raw socket.

    Rounds of every step in turn, and the median of each figure: load on a shared
    machine comes and goes, and would otherwise fall on whichever step it met.  The
    plain connections are opened anew each round (the server closes idle ones)."""
    body = orjson.dumps({"tuple": ["job", 1, PAYLOAD], "lease": None, "timeout": None})
    body0 = orjson.dumps({"tuple": ["job", 1, PAYLOAD], "lease": None, "timeout": 0})
    path = f"/spaces/{SPACE}/write"
    port = server.port
    space = ts.connect(server.url)
    client = httpx.Client(base_url=server.base)
    steps: list[tuple[str, Callable[[contextlib.ExitStack], Sender]]] = [
        ("binding write()", lambda _: lambda: space.write(("job", 1, PAYLOAD))),
        ("binding write(timeout=0)", lambda _: lambda: space.write(("job", 1, PAYLOAD), timeout=0)),
        ("httpx.Client.post", lambda _: lambda: client.post(path, content=body, headers=JSON_HEADERS)),
        ("http.client", lambda opened: http_client_sender(port, body, path, opened)),
        ("raw socket, timeout null", lambda opened: raw_sender(port, body, path, opened)),
        ("raw socket, timeout 0", lambda opened: raw_sender(port, body0, path, opened)),
        ("raw socket, GET /health", lambda opened: raw_sender(port, b"", "/health", opened)),
    ]
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in steps}
    per_round = max(1, n // LADDER_ROUNDS)
    try:
        for _ in range(LADDER_ROUNDS):
            for name, make in steps:
                with contextlib.ExitStack() as opened:
                    send = make(opened)
                    for _ in range(WARM):
                        send()
                    with Meter(server) as m:
                        for _ in range(per_round):
                            send()
                figures[name].append((m.seconds, m.client_cpu, m.server_cpu))
    finally:
        space.close()
        client.close()
    out = {}
    for name, runs in figures.items():
        wall, client_cpu, server_cpu = (median(x) / per_round * 1e6 for x in zip(*runs, strict=True))
        out[name] = {
            "us_per_op": round(wall, 1),
            "client_cpu_us": round(client_cpu, 1),
            "server_cpu_us": round(server_cpu, 1),
        }
        log(f"{name}: {out[name]}")
    return out


def top(stats_file: str, what: str, sort: str, count: int) -> None:
    print(f"\n== {what}: top {count} by {sort} ==", file=sys.stderr)
    stats = pstats.Stats(stats_file, stream=sys.stderr)
    stats.strip_dirs().sort_stats(sort).print_stats(count)


def profile() -> None:
    res = header("pytuplespace-server-profile", n=N_PROFILE, load_before=load())
    with served() as server:
        res["ladder"] = ladder(server, N_PROFILE)
    with tempfile.TemporaryDirectory(prefix="tuplespace-bench-profile-") as tmp:
        server_out, client_out = str(Path(tmp) / "server.prof"), str(Path(tmp) / "client.prof")
        with served(profile=server_out) as server:
            space = ts.connect(server.url)
            write = space.write
            for i in range(WARM):
                write(("job", i, PAYLOAD))
            prof = cProfile.Profile()
            t0 = now()
            prof.enable()
            for i in range(N_PROFILE):
                write(("job", i, PAYLOAD))
            prof.disable()
            res["profiled_write_us"] = round((now() - t0) / N_PROFILE * 1e6, 1)
            prof.dump_stats(client_out)
            space.close()
        client_calls = pstats.Stats(client_out).total_calls  # type: ignore[attr-defined]
        server_calls = pstats.Stats(server_out).total_calls  # type: ignore[attr-defined]
        res["client_python_calls_per_write"] = round(client_calls / N_PROFILE)
        res["server_python_calls_per_write_with_startup"] = round(server_calls / (N_PROFILE + 2 * WARM))
        top(client_out, "client, binding write()", "tottime", 25)
        top(client_out, "client, binding write()", "cumulative", 25)
        top(server_out, "server, the same writes (and its start-up)", "tottime", 35)
        top(server_out, "server, the same writes (and its start-up)", "cumulative", 45)
    res["load_after"] = load()
    print(json.dumps(res), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true", help="where one sequential write's time goes")
    parser.add_argument("--responder", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.responder:
        responder(args.responder[0], int(args.responder[1]))
    elif args.profile:
        profile()
    else:
        bench()


if __name__ == "__main__":
    main()
