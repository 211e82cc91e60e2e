"""A simulated datagram network for CoAP endpoints: seeded loss, duplication,
reordering and delay, under the interface of a real one (``Network.open``).

Endpoints on it may run on different event loops (each node has its own): a
datagram is handed to the receiver's loop, after its delay, with its sender's
address; the sockets threads exchange their requests on (``network.socket``)
receive theirs in a queue ordered by the time of arrival.  The fate of each
datagram (lost, delivered once or twice, how late) is drawn from one seeded
generator, under a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from tuplespace._federation._endpoint import Address, Endpoint

# The RFC's backoff and probing rate, scaled down for the nodes and clients of a test: each
# test checks behaviour, not time.  A peer that stopped answering is probed at 400 bytes
# a second (a request every 0.2 s or so), so that an exchange lost whole at 30 % loss
# does not hold the next ones for seconds.
FAST = {"ack_timeout": 0.05, "probing_rate": 400.0}


class LossyNetwork:
    """Each datagram is lost with probability ``loss``, else delivered, and again
    with probability ``duplicate``; each copy comes up to ``delay`` seconds late,
    so datagrams overtake each other.  A datagram for which ``drop(source, data)`` is
    true is lost too."""

    def __init__(self, seed: int, *, loss: float = 0.0, duplicate: float = 0.0, delay: float = 0.0) -> None:
        self.loss = loss
        self.duplicate = duplicate
        self.delay = delay
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        # How a datagram reaches each address: (data, source, delay) -> None.
        self._receivers: dict[Address, Callable[[bytes, Address, float], None]] = {}
        self._port = 20000
        self.drop: Callable[[Address, bytes], bool] = lambda source, data: False
        self.sent = self.lost = self.duplicated = 0

    def _bind(self, host: str, port: int, receiver: Callable[[bytes, Address, float], None]) -> Address:
        with self._lock:
            if port == 0:
                self._port += 1
                port = self._port
            address = ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)
            self._receivers[address] = receiver
        return address

    async def open(self, endpoint: Endpoint, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()

        def receive(data: bytes, source: Address, delay: float) -> None:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                loop.call_soon_threadsafe(loop.call_later, delay, endpoint.datagram_received, data, source)

        address = self._bind(host, port, receive)
        endpoint.connection_made(_Transport(self, address))  # type: ignore[arg-type]
        return address

    def socket(self, near: Address) -> _Socket:
        sock = _Socket(self)
        sock.address = self._bind(near[0], 0, sock.deliver)
        return sock

    def send(self, source: Address, data: bytes, destination: Address) -> None:
        with self._lock:
            self.sent += 1
            receiver = self._receivers.get(destination[:2])
            if self.drop(source[:2], data) or self._random.random() < self.loss:
                self.lost += 1
                return
            copies = 1
            if self._random.random() < self.duplicate:
                self.duplicated += 1
                copies = 2
            delays = [self._random.uniform(0, self.delay) for _ in range(copies)]
        if receiver is not None:
            for delay in delays:
                receiver(data, source, delay)

    def forget(self, address: Address) -> None:
        with self._lock:
            self._receivers.pop(address, None)


class _Socket:
    """A blocking socket on the network: what a thread exchanges its requests on."""

    def __init__(self, network: LossyNetwork) -> None:
        self._network = network
        self.address: Address = ()
        self._peer: Address = ()
        self._timeout: float | None = None
        self._cond = threading.Condition()
        self._arrivals: list[tuple[float, int, bytes, Address]] = []  # a heap by time of arrival
        self._count = 0

    def deliver(self, data: bytes, source: Address, delay: float) -> None:
        with self._cond:
            self._count += 1
            heapq.heappush(self._arrivals, (time.monotonic() + delay, self._count, data, source))
            self._cond.notify()

    def connect(self, peer: Address) -> None:
        self._peer = peer[:2]

    def send(self, data: bytes) -> None:
        self._network.send(self.address, data, self._peer)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def recv(self, size: int) -> bytes:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while True:
                now = time.monotonic()
                arrivals = self._arrivals
                if arrivals and arrivals[0][0] <= now:
                    _, _, data, source = heapq.heappop(arrivals)
                    if source == self._peer:  # connected: datagrams of others are not received
                        return data[:size]
                    continue
                if deadline is not None and now >= deadline:
                    raise TimeoutError("timed out")
                waits = [t - now for t in (arrivals[0][0] if arrivals else None, deadline) if t is not None]
                self._cond.wait(min(waits) if waits else None)

    def close(self) -> None:
        self._network.forget(self.address)


class _Transport:
    """What an endpoint sends through."""

    def __init__(self, network: LossyNetwork, address: Address) -> None:
        self._network = network
        self._address = address

    def sendto(self, data: bytes, address: Address) -> None:
        self._network.send(self._address, data, address)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._address if name == "sockname" else default

    def close(self) -> None:
        self._network.forget(self._address)
