"""How a space partitioned over the masters of a Redis Cluster scales, in one run.

For 1, 2 and 3 masters (a Cluster of its own each time: ``redis-server
--cluster-enabled yes`` on free ports of 127.0.0.1, the slots split evenly, no
replicas; stopped by their PIDs), and 1 then 2 client processes, each client opens
``redis+cluster://…?space=…&partitions=12&route=1``, writes ``N`` tuples
``("job", "<client>-<i>", "payload-string")`` and takes each back by its exact route
value, ``("job", "<client>-<i>", ANY)``: every call one script on the master of its
partition, one round trip.  Measured:

- throughput: all clients' operations over the longest client's time;
- the client's CPU per operation (``time.process_time`` in the client);
- Redis's CPU per operation: ``used_cpu_user + used_cpu_sys`` of ``INFO cpu`` summed
  over the masters (the whole process: network, parsing, scripts), and the part spent
  in the scripts, ``usec`` of ``FCALL`` (``EVALSHA`` before) in ``INFO commandstats``;
- a projection on paper, from those per-operation costs, of a space partitioned over
  10 and 100 masters on machines of their own (see ``projection``).

    .venv/bin/python bench/bench_redis_scale.py          # N=2000 per client; about 30 s

Env: N (operations of each kind per client), PARTITIONS (12), MASTERS (1,2,3), CLIENTS (1,2).
Prints one JSON line.
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
import uuid
from typing import Any

import redis

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace import ANY

N = int(os.environ.get("N", 2000))
PARTITIONS = int(os.environ.get("PARTITIONS", 12))
MASTERS = [int(m) for m in os.environ.get("MASTERS", "1,2,3").split(",")]
CLIENTS = [int(c) for c in os.environ.get("CLIENTS", "1,2").split(",")]
SLOTS = 16384
log = logger("bench_redis_scale")


def free_ports(n: int) -> list[int]:
    probes = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Cluster:
    """``masters`` redis-servers joined in a Cluster, each holding an even share of the slots."""

    def __init__(self, directory: str, masters: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server is not installed (apt-get install -y redis-server)")
        ports = free_ports(2 * masters)
        self.ports, buses = ports[:masters], ports[masters:]
        self.processes = []
        for port, bus in zip(self.ports, buses, strict=True):
            options = ["--bind", "127.0.0.1", "--port", str(port), "--cluster-port", str(bus)]
            options += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            options += ["--save", "", "--appendonly", "no", "--dir", directory]
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            self.processes.append(subprocess.Popen([binary, *options], **quiet))
        self.nodes = [redis.Redis(host="127.0.0.1", port=port) for port in self.ports]
        try:
            self._until(lambda: all(self._answers(node) for node in self.nodes), "the servers to answer")
            for i, node in enumerate(self.nodes):
                first, last = i * SLOTS // masters, (i + 1) * SLOTS // masters - 1
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                node.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                if i:
                    node.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0], buses[0])
            self._until(self._ready, "the cluster to be ready")
        except BaseException:
            self.stop()
            raise
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}"

    @staticmethod
    def _answers(node: redis.Redis) -> bool:
        try:
            return bool(node.ping())
        except redis.ConnectionError:
            return False

    def _ready(self) -> bool:
        for node in self.nodes:
            info = node.execute_command("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info or f"cluster_known_nodes:{len(self.nodes)}" not in info:
                return False
        return True

    @staticmethod
    def _until(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def usage(self) -> tuple[float, float]:
        """Seconds of CPU the masters have used, and microseconds in the scripts (FCALL;
        EVALSHA in versions before the Redis Functions library)."""
        cpu = scripts = 0.0
        for node in self.nodes:
            info = node.info("cpu")
            cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            stats = node.info("commandstats")
            scripts += sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("fcall", "evalsha"))
        return cpu, scripts

    def stop(self) -> None:
        for node in self.nodes:
            node.close()
        for process in self.processes:
            process.terminate()  # each by its PID
        for process in self.processes:
            process.wait(timeout=10)


def client(url: str, name: str, n: int) -> None:
    """One client process: opens the space, says ``ready``, waits for a line on stdin,
    then writes and takes ``n`` tuples; prints its time and CPU as JSON."""
    space = ts.connect(url)
    print("ready", flush=True)
    sys.stdin.readline()
    t0, cpu0 = now(), time.process_time()
    for i in range(n):
        space.write(("job", f"{name}-{i}", "payload-string"))
    for i in range(n):
        space.take(("job", f"{name}-{i}", ANY), timeout=0)
    print(json.dumps({"wall": now() - t0, "cpu": time.process_time() - cpu0, "ops": 2 * n}), flush=True)
    space.close()


def measure(cluster: Cluster, clients: int) -> dict[str, Any]:
    url = f"{cluster.url}?space=scale-{uuid.uuid4().hex[:8]}&partitions={PARTITIONS}&route=1"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", url, f"c{k}", str(N)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(clients)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    cpu0, scripts0 = cluster.usage()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        results.append(json.loads(out))
    cpu1, scripts1 = cluster.usage()
    ops = sum(r["ops"] for r in results)
    return {
        "ops_s": round(ops / max(r["wall"] for r in results)),
        "client_cpu_us_per_op": round(sum(r["cpu"] for r in results) / ops * 1e6, 1),
        "redis_cpu_us_per_op": round((cpu1 - cpu0) / ops * 1e6, 1),
        "redis_script_us_per_op": round((scripts1 - scripts0) / ops, 1),
    }


def projection(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A space partitioned over ``m`` masters on machines of their own, each Redis busy
    on one core: each master serves 1e6 / (its CPU per operation) operations a second, and
    routed operations spread evenly over the masters (the route values are many and the
    partitions at least as many as the masters), so the space serves ``m`` times that,
    if enough clients (each spending its CPU per operation) and the network keep up."""
    base = runs["masters_1_clients_1"]
    per_master = 1e6 / base["redis_cpu_us_per_op"]
    per_client_core = 1e6 / base["client_cpu_us_per_op"]
    out: dict[str, Any] = {
        "per_master_ops_s": round(per_master),
        "per_client_core_ops_s": round(per_client_core),
    }
    for m in (10, 100):
        total = m * per_master
        out[f"masters_{m}"] = {"ops_s": round(total), "client_cores_needed": round(total / per_client_core)}
    return out


def main() -> None:
    res: dict[str, Any] = header("redis-scale", n=N, partitions=PARTITIONS, redis_py=redis.__version__)
    runs: dict[str, dict[str, Any]] = {}

    def scale() -> None:
        for masters in MASTERS:
            with tempfile.TemporaryDirectory(prefix="bench-redis-scale-") as directory:
                cluster = Cluster(directory, masters)
                try:
                    res.setdefault("redis_server", cluster.nodes[0].info("server").get("redis_version"))
                    for clients in CLIENTS:
                        measured = runs[f"masters_{masters}_clients_{clients}"] = measure(cluster, clients)
                        log(f"{masters} masters, {clients} clients: {measured}")
                finally:
                    cluster.stop()
        res["runs"] = runs
        if "masters_1_clients_1" in runs:
            res["projection"] = projection(runs)
        res["load_after"] = round(os.getloadavg()[0], 2)

    res["load_before"] = round(os.getloadavg()[0], 2)
    run(res, [("scale", scale)], log)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
