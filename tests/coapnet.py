"""A simulated datagram network for CoAP endpoints: seeded loss, duplication,
reordering and delay, under the interface of a real one (``Network.open``).

Endpoints on it may run on different event loops (each node has its own): a
datagram is handed to the receiver's loop, after its delay, with its sender's
address.  The fate of each datagram (lost, delivered once or twice, how late)
is drawn from one seeded generator, under a lock.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

from tuplespace._federation._endpoint import Address, Endpoint


class LossyNetwork:
    """Each datagram is lost with probability ``loss``, else delivered, and again
    with probability ``duplicate``; each copy comes up to ``delay`` seconds late,
    so datagrams overtake each other."""

    def __init__(self, seed: int, *, loss: float = 0.0, duplicate: float = 0.0, delay: float = 0.0) -> None:
        self.loss = loss
        self.duplicate = duplicate
        self.delay = delay
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._endpoints: dict[Address, tuple[Endpoint, asyncio.AbstractEventLoop]] = {}
        self._port = 20000
        self.sent = self.lost = self.duplicated = 0

    async def open(self, endpoint: Endpoint, host: str, port: int) -> Address:
        with self._lock:
            if port == 0:
                self._port += 1
                port = self._port
            address = ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)
            self._endpoints[address] = (endpoint, asyncio.get_running_loop())
        endpoint.connection_made(_Transport(self, address))  # type: ignore[arg-type]
        return address

    def send(self, source: Address, data: bytes, destination: Address) -> None:
        with self._lock:
            self.sent += 1
            target = self._endpoints.get(destination[:2])
            if self._random.random() < self.loss:
                self.lost += 1
                return
            copies = 1
            if self._random.random() < self.duplicate:
                self.duplicated += 1
                copies = 2
            delays = [self._random.uniform(0, self.delay) for _ in range(copies)]
        if target is None:
            return
        endpoint, loop = target
        for delay in delays:
            try:
                loop.call_soon_threadsafe(loop.call_later, delay, endpoint.datagram_received, data, source)
            except RuntimeError:  # its loop is closed
                return

    def forget(self, address: Address) -> None:
        with self._lock:
            self._endpoints.pop(address, None)


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
