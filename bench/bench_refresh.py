"""The datagrams that refreshing remote references costs (docs/federation.md, soft state).

Prints ONE JSON line with ``"impl": "pytuplespace-refresh"``.  In one process: a
node ``peer`` holding N_REFS records and a node ``holder`` whose N_REFS records each
hold one of them (a field with its address).  Registering them is timed; then one
refresh of all of them (what the holder sends every ``refresh_period``) is done,
counting the datagrams both nodes send for it and their bytes.  At the default
timers that is the cost per ``refresh_period`` seconds: ``datagrams_per_s``.

Env overrides: N_REFS (10000).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace._federation._endpoint import Address

N_REFS = int(os.environ.get("N_REFS", 10_000))

log = logger("bench_refresh")


def counted(node: ts.Node, count: list[int]) -> None:
    """Count the datagrams and bytes the node's endpoint sends from its loop."""
    endpoint = node.endpoint
    send: Callable[[Address, bytes], None] = endpoint._send

    def counting(peer: Address, data: bytes) -> None:
        count[0] += 1
        count[1] += len(data)
        send(peer, data)

    endpoint._send = counting  # type: ignore[method-assign]


def bench(res: dict[str, Any]) -> None:
    with ts.Node("coap://127.0.0.1:0/") as peer, ts.Node("coap://127.0.0.1:0/") as holder:
        held = peer.space("home")
        addresses = [held.create(f"r{i}", {}).address for i in range(N_REFS)]
        space = holder.space("house")
        t0 = now()
        for i, address in enumerate(addresses):
            space.create(f"h{i}", {"x": address})
        registering = now() - t0
        count = [0, 0]
        counted(peer, count)
        counted(holder, count)
        t0 = now()
        requests = holder.call(holder.references.refresh())
        refreshing = now() - t0
        if held.record("r0").get("$refcount") != 1:
            raise AssertionError("the reference was not held")
        period = holder.references.refresh_period
        res.update(
            n_refs=N_REFS,
            refresh_period_s=period,
            reference_lifetime_s=holder.references.reference_lifetime,
            register_ops_s=round(N_REFS / registering, 1),
            refresh_requests=requests,
            refresh_datagrams=count[0],
            refresh_bytes=count[1],
            refresh_s=round(refreshing, 3),
            datagrams_per_s=round(count[0] / period, 1),
            bytes_per_s=round(count[1] / period, 1),
        )


def main() -> None:
    res = header("pytuplespace-refresh")
    run(res, [("refresh", lambda: bench(res))], log)


if __name__ == "__main__":
    main()
