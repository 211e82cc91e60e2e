"""A served space under hostile requests: does it stay responsive, and bounded in memory?

Prints ONE JSON line with ``"impl": "pytuplespace-hostile"``.  Each workload runs against a
fresh ``python -m tuplespace serve --memory`` started by this script on 127.0.0.1 and stopped
by its PID.  While the workload runs, a prober opens a new connection every PROBE_EVERY
seconds and asks ``GET /health`` (timeout 5 s), from 127.0.0.2 — another client than the
hostile requests, which come from 127.0.0.1; the figures are the probes' latency (p50,
p99, max, in ms), how many failed, and the server's RSS (``VmRSS``) before, at its peak
during, and after the workload.  Every workload is bounded in count and time and sends
traffic to 127.0.0.1 only.

1. idle: IDLE_SOCKETS TCP connections that send nothing, held HOLD_S seconds.
2. partial: IDLE_SOCKETS connections that send half a request line / half the headers /
   headers promising a body that never comes, held HOLD_S seconds.
3. frames: FRAMES channel connections that send the hello and then a frame header
   declaring 8 MiB, and nothing more, held HOLD_S seconds.
4. xpath_memory: XML_TUPLES tuples holding an XML document of XML_BYTES each, then ``count``
   with an XPath template that looks at every element of every document, XPATH_REQUESTS times.
5. xpath_cpu: one tuple holding an XML document of CPU_XML_BYTES, then one ``count`` with an
   XPath template whose cost grows with the square of the document's elements.
6. eventlog: EVENT_TUPLES tuples holding a string of 1 MB written and taken (the space ends
   empty).
7. answers: ANSWER_TUPLES tuples holding a string of 1 MB, then ``read_all`` of them all over
   plain HTTP.

Goal (issue 13): ``/health`` p99 < 100 ms in every workload, no failed probe, RSS growth
bounded by the configured limits.

    .venv/bin/python bench/bench_hostile.py
    SKIP=xpath,answers .venv/bin/python bench/bench_hostile.py

To measure a commit rather than the work tree, extract its ``src/`` (``git archive REV src
| tar -x -C DIR``) and set ``PYTHONPATH=DIR/src``: the server inherits it.

Env: IDLE_SOCKETS (300), FRAMES (50), HOLD_S (15), XML_TUPLES (40), XML_BYTES (840000),
XPATH_REQUESTS (3), CPU_XML_BYTES (160000), EVENT_TUPLES (1000), ANSWER_TUPLES (200),
PROBE_EVERY (0.05), SKIP.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

import tuplespace as ts
from _harness import header, logger, run

IDLE_SOCKETS = int(os.environ.get("IDLE_SOCKETS", "300"))
FRAMES = int(os.environ.get("FRAMES", "50"))
HOLD_S = float(os.environ.get("HOLD_S", "15"))
XML_TUPLES = int(os.environ.get("XML_TUPLES", "40"))
XML_BYTES = int(os.environ.get("XML_BYTES", "840000"))
XPATH_REQUESTS = int(os.environ.get("XPATH_REQUESTS", "3"))
CPU_XML_BYTES = int(os.environ.get("CPU_XML_BYTES", "160000"))
EVENT_TUPLES = int(os.environ.get("EVENT_TUPLES", "1000"))
ANSWER_TUPLES = int(os.environ.get("ANSWER_TUPLES", "200"))
PROBE_EVERY = float(os.environ.get("PROBE_EVERY", "0.05"))
MIB = 1 << 20
PROBE_FROM = "127.0.0.2"  # another client address than the hostile requests' (127.0.0.1)
BLOB = "x" * 1_000_000  # 1 MB, under the default limit of 1 MiB per encoded tuple

log = logger("hostile")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def serve() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    command = [sys.executable, "-m", "tuplespace", "serve", "--memory", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Prober(threading.Thread):
    """Asks ``/health`` on a new connection every PROBE_EVERY seconds, and samples RSS."""

    def __init__(self, port: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.latencies: list[float] = []
        self.failures = 0
        self.peak_rss = rss_mb(pid)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(PROBE_EVERY):
            self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=5, source_address=(PROBE_FROM, 0)
                )
                conn.request("GET", "/health")
                ok = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - t0)
            else:
                self.failures += 1


def measure(res: dict[str, Any], name: str, attack: Callable[[int], None]) -> None:
    with serve() as (proc, port):
        before = rss_mb(proc.pid)
        prober = Prober(port, proc.pid)
        prober.start()
        try:
            attack(port)
        finally:
            prober.stopping.set()
            prober.join()
        lat = sorted(prober.latencies)

        def ms(q: float) -> float | None:
            return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None

        res[name] = {
            "health_p50_ms": ms(0.5),
            "health_p99_ms": ms(0.99),
            "health_max_ms": ms(1.0),
            "probes": len(prober.latencies),
            "failed_probes": prober.failures,
            "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(prober.peak_rss, 1),
            "rss_after_mb": round(rss_mb(proc.pid), 1),
        }
        log(f"{name}: {res[name]}")


def hold(sockets: list[socket.socket]) -> None:
    try:
        time.sleep(HOLD_S)
    finally:
        for s in sockets:
            s.close()


def connect_many(port: int, count: int, first: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            if first:
                s.sendall(first)
            sockets.append(s)
        except OSError:
            break  # refused: the server bounds connections
    log(f"{len(sockets)} of {count} connections opened")
    return sockets


def idle(port: int) -> None:
    hold(connect_many(port, IDLE_SOCKETS, b""))


def partial(port: int) -> None:
    thirds = IDLE_SOCKETS // 3
    sockets = connect_many(port, thirds, b"GET /heal")
    sockets += connect_many(port, thirds, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
    body = b"POST /spaces/x/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sockets += connect_many(port, thirds, body + b"Content-Length: 1000000\r\n\r\n{")
    hold(sockets)


def frames(port: int) -> None:
    hello = b'{"authorization": null}'
    first = b"TUPLESPACE/1\n" + struct.pack(">I", len(hello)) + hello + struct.pack(">I", 8 * MIB)
    hold(connect_many(port, FRAMES, first + b"1 POST /spaces/x/write\n"))


def xml_document(size: int) -> str:
    items = "".join(f"<i n='{i:06}'><v>{i:06}</v></i>" for i in range(size // 32))
    return f"<doc>{items}</doc>"


def count_xml(port: int, space_name: str, docs: int, size: int, expression: str, requests: int) -> None:
    with contextlib.closing(ts.connect(f"http://127.0.0.1:{port}/spaces/{space_name}")) as space:
        doc = xml_document(size)
        for i in range(docs):
            space.write(("xml", i, doc))
        for _ in range(requests):
            try:
                space.count(("xml", int, ts.XPath(expression)))
            except ts.TupleSpaceError as exc:
                log(f"{space_name}: count refused: {exc}")


def xpath_memory(port: int) -> None:
    count_xml(port, "xml", XML_TUPLES, XML_BYTES, "//i[v = 'none']", XPATH_REQUESTS)


def xpath_cpu(port: int) -> None:
    count_xml(port, "xmlcpu", 1, CPU_XML_BYTES, "//i[count(preceding::i) = count(following::i)]", 1)


def eventlog(port: int) -> None:
    url = f"http://127.0.0.1:{port}/spaces/log"
    with contextlib.closing(ts.connect(url, order="fifo")) as space:
        for i in range(EVENT_TUPLES):
            space.write(("blob", i, BLOB))
            space.take(("blob", i, str))


def answers(port: int) -> None:
    url = f"http://127.0.0.1:{port}/spaces/big"
    with contextlib.closing(ts.connect(url, order="fifo")) as space:
        for i in range(ANSWER_TUPLES):
            space.write(("blob", i, BLOB))
    body = {"template": ["blob", {"$formal": "int"}, {"$formal": "str"}], "limit": ANSWER_TUPLES}
    answer = httpx.post(f"{url}/read_all", json=body, timeout=120)
    log(f"read_all answered {answer.status_code}, {len(answer.content)} bytes")


def main() -> None:
    res = header(
        "pytuplespace-hostile",
        settings={
            "idle_sockets": IDLE_SOCKETS,
            "frame_sockets": FRAMES,
            "hold_s": HOLD_S,
            "xml_tuples": XML_TUPLES,
            "xml_bytes": XML_BYTES,
            "cpu_xml_bytes": CPU_XML_BYTES,
            "event_tuples": EVENT_TUPLES,
            "answer_tuples": ANSWER_TUPLES,
        },
    )
    workloads = [("idle", idle), ("partial", partial), ("frames", frames), ("xpath_memory", xpath_memory)]
    workloads += [("xpath_cpu", xpath_cpu), ("eventlog", eventlog), ("answers", answers)]
    run(res, [(name, lambda n=name, a=attack: measure(res, n, a)) for name, attack in workloads], log)


if __name__ == "__main__":
    main()
