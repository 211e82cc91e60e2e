"""Where a CoAP endpoint's datagrams travel: real UDP sockets (:class:`UdpNetwork`),
or a simulation with the same interface (the tests' lossy network)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import Unreachable

if TYPE_CHECKING:
    from ._endpoint import Endpoint

__all__ = ["Address", "Network", "UdpNetwork"]

Address = tuple[Any, ...]
_IP_RECVERR, _IPV6_RECVERR = 11, 25  # Linux: ICMP errors with the address they are about


class Network(Protocol):
    """Where an endpoint's datagrams travel: :class:`UdpNetwork`, or a simulation."""

    async def open(self, endpoint: Endpoint, host: str, port: int) -> Address:
        """Attach ``endpoint`` (``connection_made``) to a transport bound at ``host``,
        ``port`` (0: any) and return the address bound."""

    def socket(self, near: Address) -> Any:
        """A blocking datagram socket (``connect``, ``send``, ``recv``, ``settimeout``,
        ``close``; a timeout raises :class:`TimeoutError`) bound beside ``near``, the
        address of an endpoint: what a thread exchanges its requests on."""


class UdpNetwork:
    """Real UDP sockets, read by the loop up to ``BATCH`` datagrams at each wake-up,
    with ICMP errors reported with the address they are about."""

    async def open(self, endpoint: Endpoint, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            family, _, _, _, address = found[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise Unreachable(f"cannot listen on {host}:{port} (UDP): {exc}") from None
        try:
            sock.setblocking(False)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise Unreachable(f"cannot listen on {host}:{port} (UDP): {exc}") from None
        if hasattr(socket, "MSG_ERRQUEUE"):
            v6 = family == socket.AF_INET6
            level, option = (socket.IPPROTO_IPV6, _IPV6_RECVERR) if v6 else (socket.IPPROTO_IP, _IP_RECVERR)
            sock.setsockopt(level, option, 1)
            endpoint.errors = sock
        transport = _UdpTransport(loop, sock, endpoint)
        endpoint.connection_made(transport)  # type: ignore[arg-type]
        loop.add_reader(sock.fileno(), transport.readable)
        sockname: Address = sock.getsockname()
        return sockname

    def socket(self, near: Address) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in near[0] else socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((near[0], 0))
        return sock


class _UdpTransport:
    """An endpoint's UDP socket on the loop: several datagrams read at each wake-up
    (asyncio's datagram transport reads one), sent at once or dropped when the
    kernel's queue is full (as a network may drop them)."""

    BATCH = 64

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, endpoint: Endpoint) -> None:
        self._loop = loop
        self._sock = sock
        self._endpoint = endpoint

    def readable(self) -> None:
        receive, recvfrom = self._endpoint.datagram_received, self._sock.recvfrom
        for _ in range(self.BATCH):
            try:
                data, address = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error about a datagram sent before
                self._endpoint.error_received(exc)
                continue
            receive(data, address)

    def sendto(self, data: bytes, address: Address) -> None:
        try:
            self._sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._endpoint.error_received(exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._sock.getsockname() if name == "sockname" else default

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
