"""Remote get / set of a record over CoAP, beside the same over the HTTP binding.

Prints ONE JSON line with ``"impl": "pytuplespace-coap"``.  In one process: a
:class:`tuplespace.Node` serving a space and a second node whose remote handle
(``other.record(address)``) calls ``get("temp")`` then ``set("temp", x)``, against a
served space (``tuplespace.server``, uvicorn on 127.0.0.1) read through
``ts.connect(url).record(path)``.  Two ways each: sequential (one call after the
other, from a thread), and with 100 requests outstanding (100 coroutines on one
event loop: for CoAP the requesting node's endpoint on its loop, for HTTP the
asyncio client ``ts.connect_async``).  Ops/s and the 99th percentile of the
latency of a call (µs), and the CPU time of the process per call (µs: client and
server together, what bounds the rate on a quiet machine, and less disturbed by other
work than the rate).  Rounds alternate which side goes first; medians are reported
(shared, noisy machines).

Env overrides: N_OPS (2000 per round, operation and way), ROUNDS (3), SKIP (coap,http),
NSTART (the requesting node's ``nstart``; its default: 32 to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace._federation._message import ACCEPT, CONTENT_FORMAT, GET, PUT
from tuplespace._federation._node import peer_of
from tuplespace.server import Server, create_app

N_OPS = int(os.environ.get("N_OPS", 2000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
OUTSTANDING = 100
NSTART = int(os.environ["NSTART"]) if os.environ.get("NSTART") else None

log = logger("bench_coap")

Result = dict[str, float]  # "<op>_<way>_ops_s", "<op>_<way>_p99_us" and "<op>_<way>_cpu_us"


def p99(latencies: list[float]) -> float:
    return sorted(latencies)[int(len(latencies) * 0.99)] * 1e6


def sequential(get: Callable[[str], Any], set_: Callable[[str, Any], Any], n: int, out: Result) -> None:
    for op, call in (("get", lambda i: get("temp")), ("set", lambda i: set_("temp", 21.5 + i % 2))):
        latencies = []
        t0, cpu = now(), time.process_time()
        for i in range(n):
            t = now()
            call(i)
            latencies.append(now() - t)
        out[f"{op}_seq_ops_s"] = n / (now() - t0)
        out[f"{op}_seq_p99_us"] = p99(latencies)
        out[f"{op}_seq_cpu_us"] = (time.process_time() - cpu) / n * 1e6


async def outstanding(
    get: Callable[[], Awaitable[Any]], set_: Callable[[float], Awaitable[Any]], n: int, out: Result
) -> None:
    """``n`` calls of each operation by OUTSTANDING coroutines, each one after the other."""
    for op, call in (("get", lambda i: get()), ("set", lambda i: set_(21.5 + i % 2))):
        latencies: list[float] = []

        t0, cpu = now(), time.process_time()
        await asyncio.gather(*(_worker(call, n // OUTSTANDING, latencies) for _ in range(OUTSTANDING)))
        out[f"{op}_par_ops_s"] = len(latencies) / (now() - t0)
        out[f"{op}_par_p99_us"] = p99(latencies)
        out[f"{op}_par_cpu_us"] = (time.process_time() - cpu) / len(latencies) * 1e6


async def _worker(call: Callable[[int], Awaitable[Any]], share: int, latencies: list[float]) -> None:
    for i in range(share):
        t = now()
        await call(i)
        latencies.append(now() - t)


def coap_round(n: int) -> Result:
    out: Result = {}
    with ts.Node("coap://127.0.0.1:0/") as node, ts.Node("coap://127.0.0.1:0/", nstart=NSTART) as other:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        remote = other.record(kitchen.address)
        sequential(remote.get, remote.set, n, out)
        endpoint = other.endpoint

        async def many() -> None:
            peer, path = await peer_of(f"{kitchen.address}/temp")
            options = [*path, (ACCEPT, b"<")]  # CBOR (60) answers
            put_options = [*path, (CONTENT_FORMAT, b"<"), (ACCEPT, b"<")]

            async def get() -> Any:
                return ts.decode_cbor((await endpoint.request(peer, GET, options)).payload)

            async def set_(value: float) -> Any:
                payload = ts.encode_cbor(value)
                answer = await endpoint.request(peer, PUT, put_options, payload)
                return ts.decode_cbor(answer.payload)

            await outstanding(get, set_, n, out)

        other.call(many())
        if kitchen.get("$version") != 1 + 2 * n:
            raise AssertionError("a set was lost")
    return out


def http_round(n: int) -> Result:
    out: Result = {}
    server = Server(create_app(store="memory"), port=0)
    thread = server.start_in_thread()
    try:
        space = ts.connect(f"{server.url}/spaces/home")
        space.create("kitchen", {"temp": 21.5})
        rec = space.record("kitchen")
        sequential(rec.get, rec.set, n, out)

        async def many() -> None:
            aspace = await ts.connect_async(f"{server.url}/spaces/home")
            arec = await aspace.record("kitchen")
            await outstanding(lambda: arec.get("temp"), lambda v: arec.set("temp", v), n, out)
            await aspace.close()

        asyncio.run(many())
        if rec.get("$version") != 1 + 2 * n:
            raise AssertionError("a set was lost")
        space.close()
        return out
    finally:
        server.stop()
        thread.join()


def bench(res: dict[str, Any]) -> None:
    got: dict[str, list[Result]] = {"coap": [], "http": []}
    sides = [("coap", coap_round), ("http", http_round)]
    for r in range(ROUNDS):
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            if name not in os.environ.get("SKIP", "").split(","):
                got[name].append(fn(N_OPS))
    res["n_ops"] = N_OPS
    res["outstanding"] = OUTSTANDING
    res["nstart"] = NSTART
    for name, results in got.items():
        for key in results[0] if results else ():
            res[f"{name}_{key}"] = round(statistics.median(r[key] for r in results), 1)


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ("get_seq", "set_seq", "get_par", "set_par"):
        if f"coap_{op}_ops_s" in res and f"http_{op}_ops_s" in res:
            ratio = res[f"coap_{op}_ops_s"] / res[f"http_{op}_ops_s"]
            out[f"coap_{op} / http_{op} >= 0.5 (ratio {ratio:.2f})"] = ratio >= 0.5
    return out


def main() -> None:
    res = header("pytuplespace-coap", rounds=ROUNDS)
    run(res, [("getset", lambda: bench(res))], log, targets)


if __name__ == "__main__":
    main()
