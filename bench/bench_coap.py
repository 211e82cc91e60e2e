"""Remote get / set of a record over CoAP, beside the same over the HTTP binding.

Prints ONE JSON line with ``"impl": "pytuplespace-coap"``.  In one process: a
:class:`tuplespace.Node` serving a space and a second node whose remote handle
(``other.record(address)``) calls ``get("temp")`` then ``set("temp", x)``
sequentially, against a served space (``tuplespace.server``, uvicorn on
127.0.0.1) read through ``ts.connect(url).record(path)``.  Rounds alternate which
side goes first; medians are reported (shared, noisy machines).

Env overrides: N_OPS (2000 per round and operation), ROUNDS (3), SKIP (coap,http).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace.server import Server, create_app

N_OPS = int(os.environ.get("N_OPS", 2000))
ROUNDS = int(os.environ.get("ROUNDS", 3))

log = logger("bench_coap")


def timed(get: Callable[[str], Any], set_: Callable[[str, Any], Any], n: int) -> tuple[float, float]:
    t0 = now()
    for _ in range(n):
        get("temp")
    t1 = now()
    for i in range(n):
        set_("temp", 21.5 + i % 2)
    t2 = now()
    return n / (t1 - t0), n / (t2 - t1)


def coap_round(n: int) -> tuple[float, float]:
    with ts.Node("coap://127.0.0.1:0/") as node, ts.Node("coap://127.0.0.1:0/") as other:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        remote = other.record(kitchen.address)
        rates = timed(remote.get, remote.set, n)
        if kitchen.get("$version") != 1 + n:
            raise AssertionError("a set was lost")
        return rates


def http_round(n: int) -> tuple[float, float]:
    server = Server(create_app(store="memory"), port=0)
    thread = server.start_in_thread()
    try:
        space = ts.connect(f"{server.url}/spaces/home")
        space.create("kitchen", {"temp": 21.5})
        rec = space.record("kitchen")
        rates = timed(rec.get, rec.set, n)
        if rec.get("$version") != 1 + n:
            raise AssertionError("a set was lost")
        space.close()
        return rates
    finally:
        server.stop()
        thread.join()


def bench(res: dict[str, Any]) -> None:
    got: dict[str, list[tuple[float, float]]] = {"coap": [], "http": []}
    sides = [("coap", coap_round), ("http", http_round)]
    for r in range(ROUNDS):
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            if name not in os.environ.get("SKIP", "").split(","):
                got[name].append(fn(N_OPS))
    res["n_ops"] = N_OPS
    for name, rates in got.items():
        if rates:
            res[f"{name}_get_ops_s"] = round(statistics.median(g for g, _ in rates), 1)
            res[f"{name}_set_ops_s"] = round(statistics.median(s for _, s in rates), 1)


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "coap_get_ops_s" in res and "http_get_ops_s" in res:
        for op in ("get", "set"):
            ratio = res[f"coap_{op}_ops_s"] / res[f"http_{op}_ops_s"]
            out[f"coap_{op} / http_{op} >= 0.5 (ratio {ratio:.2f})"] = ratio >= 0.5
    return out


def main() -> None:
    res = header("pytuplespace-coap", rounds=ROUNDS)
    run(res, [("getset", lambda: bench(res))], log, targets)


if __name__ == "__main__":
    main()
