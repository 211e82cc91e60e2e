"""Remote get / set of a record over CoAP with OSCORE, beside the same unprotected.

Prints ONE JSON line with ``"impl": "pytuplespace-oscore"``.  In one process: a
:class:`tuplespace.Node` serving a space, with a keys file naming the second node
(permissions ``read+write``), and the second node's remote handle calling
``get("temp")`` then ``set("temp", x)`` sequentially, once with the keys of the
first (every request and answer protected, sequence numbers kept in a state file)
and once without (anonymous, allowed everything on loopback).  Ops/s and the 99th
percentile of the latency of a call (µs); rounds alternate which side goes first,
medians are reported.

Env overrides: N_OPS (2000 per round, operation and side), ROUNDS (3).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import tuplespace as ts
from _harness import header, logger, run
from bench_coap import Result, sequential

N_OPS = int(os.environ.get("N_OPS", 2000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
SECRET = "0102030405060708090a0b0c0d0e0f10"

log = logger("bench_oscore")


def _keys(path: Path, sender: str, recipient: str, **more: Any) -> Path:
    entry = {"name": "peer", "master_secret": SECRET, "sender_id": sender, "recipient_id": recipient, **more}
    path.write_text(json.dumps({"peers": [entry]}))
    return path


def one_round(n: int, protected: bool) -> Result:
    out: Result = {}
    with tempfile.TemporaryDirectory() as folder:
        keys = _keys(Path(folder) / "node.json", "0a", "0b")
        with ts.Node("coap://127.0.0.1:0/", keys=keys) as node:
            kitchen = node.space("home").create("kitchen", {"temp": 21.5})
            mine = _keys(Path(folder) / "other.json", "0b", "0a", uri=node.base_uri) if protected else None
            with ts.Node("coap://127.0.0.1:0/", keys=mine) as other:
                remote = other.record(kitchen.address)
                sequential(remote.get, remote.set, n, out)
            if kitchen.get("$version") != 1 + n:
                raise AssertionError("a set was lost")
            if node.statistics()["refused_oscore"]:
                raise AssertionError("a protected request was refused")
    return out


def bench(res: dict[str, Any]) -> None:
    got: dict[str, list[Result]] = {"oscore": [], "plain": []}
    sides = [("oscore", True), ("plain", False)]
    for r in range(ROUNDS):
        for name, protected in sides if r % 2 == 0 else sides[::-1]:
            got[name].append(one_round(N_OPS, protected))
    res["n_ops"] = N_OPS
    for name, results in got.items():
        for key in results[0]:
            res[f"{name}_{key}"] = round(statistics.median(r[key] for r in results), 1)


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ("get_seq", "set_seq"):
        ratio = res[f"oscore_{op}_ops_s"] / res[f"plain_{op}_ops_s"]
        out[f"oscore_{op} / plain_{op} >= 0.5 (ratio {ratio:.2f})"] = ratio >= 0.5
    return out


def main() -> None:
    res = header("pytuplespace-oscore", rounds=ROUNDS)
    run(res, [("getset", lambda: bench(res))], log, targets)


if __name__ == "__main__":
    main()
