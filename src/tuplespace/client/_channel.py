"""The client's side of a server's channel: requests one after another on one
WebSocket (docs/http-api.md, "The channel").

The WebSocket protocol is websockets' sans-I/O state machine, driven here over a
plain socket (:class:`Channel`, for the sync binding) or an asyncio stream
(:class:`AsyncChannel`): a request costs one frame each way and no thread hop.
Both raise ``ChannelRefused`` when the server will not open a channel (the
binding then uses HTTP alone) and ``ConnectionError`` or ``TimeoutError`` when
a channel breaks or its answer does not come in time (the channel is then
useless: close it).
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

__all__ = ["AsyncChannel", "Channel", "ChannelRefused", "PATH", "answer"]

PATH = "/channel"
_READ = 1 << 16


class ChannelRefused(Exception):
    """The server did not open a channel (it has none, or something between refused)."""


def answer(data: bytes) -> tuple[int, bytes]:
    """The status and JSON body of an answer frame ``"200\\n{...}"``."""
    status, _, body = data.partition(b"\n")
    return int(status), body


def _protocol(base: str, headers: dict[str, str]) -> tuple[ClientProtocol, str, int, bool]:
    parts = urlsplit(base)
    secure = parts.scheme == "https"
    uri = parse_uri(("wss" if secure else "ws") + "://" + parts.netloc + parts.path.rstrip("/") + PATH)
    protocol = ClientProtocol(uri, max_size=None)
    request = protocol.connect()
    for name, value in headers.items():
        request.headers[name] = value
    protocol.send_request(request)
    return protocol, uri.host, uri.port, secure


def _handshake_done(protocol: ClientProtocol) -> bool:
    events = protocol.events_received()
    if not events:
        return False
    if not isinstance(events[0], Response) or protocol.handshake_exc is not None:
        raise ChannelRefused(str(protocol.handshake_exc or "no handshake answer"))
    return True


def _message(protocol: ClientProtocol) -> bytes | None:
    """The answer among the frames received so far, if it has come."""
    for event in protocol.events_received():
        if isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.TEXT):
            return bytes(event.data)
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            raise ConnectionError("the server closed the channel")
    return None


class Channel:
    """A channel over a blocking socket; one request at a time."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.socket = sock
        self._protocol = protocol
        self._used = time.monotonic()

    def usable(self, idle: float) -> bool:
        """Whether the channel is still open, and idle for less than ``idle`` seconds."""
        if time.monotonic() - self._used >= idle:
            return False
        readable, _, _ = select.select([self.socket], [], [], 0)
        return not readable  # nothing is due on an idle channel but its end

    @classmethod
    def open(cls, base: str, headers: dict[str, str], timeout: float) -> Channel:
        protocol, host, port, secure = _protocol(base, headers)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            channel = cls(sock, protocol)
            channel._flush()
            while not _handshake_done(protocol):
                channel._receive()
        except BaseException:
            sock.close()
            raise
        return channel

    def _flush(self) -> None:
        data = self._protocol.data_to_send()
        if data:
            self.socket.sendall(b"".join(data))

    def _receive(self) -> None:
        data = self.socket.recv(_READ)
        if not data:
            raise ConnectionError("the server closed the channel")
        self._protocol.receive_data(data)
        self._flush()  # answers to pings

    def exchange(self, request: bytes, timeout: float | None) -> tuple[int, bytes]:
        """Send ``request`` and wait at most ``timeout`` seconds (None: no limit) for
        its answer."""
        self.socket.settimeout(timeout)
        self._protocol.send_binary(request)
        self._flush()
        while (data := _message(self._protocol)) is None:
            self._receive()
        self._used = time.monotonic()
        return answer(data)

    def close(self) -> None:
        self.socket.close()


class AsyncChannel:
    """A channel over an asyncio stream; one request at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._protocol = protocol
        self.socket = writer.get_extra_info("socket")
        self._used = time.monotonic()

    def usable(self, idle: float) -> bool:
        """Whether the channel is still open, and idle for less than ``idle`` seconds."""
        return time.monotonic() - self._used < idle and not self._reader.at_eof()

    @classmethod
    async def open(cls, base: str, headers: dict[str, str], timeout: float) -> AsyncChannel:
        protocol, host, port, secure = _protocol(base, headers)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if secure else None
            )
            channel = cls(reader, writer, protocol)
            try:
                await channel._flush()
                while not _handshake_done(protocol):
                    await channel._receive()
            except BaseException:
                channel.close()
                raise
        return channel

    async def _flush(self) -> None:
        data = self._protocol.data_to_send()
        if data:
            self._writer.write(b"".join(data))
            await self._writer.drain()

    async def _receive(self) -> None:
        data = await self._reader.read(_READ)
        if not data:
            raise ConnectionError("the server closed the channel")
        self._protocol.receive_data(data)
        await self._flush()  # answers to pings

    async def exchange(self, request: bytes, timeout: float | None) -> tuple[int, bytes]:
        """Send ``request`` and wait at most ``timeout`` seconds (None: no limit) for
        its answer."""
        async with asyncio.timeout(timeout):
            self._protocol.send_binary(request)
            await self._flush()
            while (data := _message(self._protocol)) is None:
                await self._receive()
        self._used = time.monotonic()
        return answer(data)

    def close(self) -> None:
        self._writer.close()
