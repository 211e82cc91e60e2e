"""The client's side of a server's channel: the requests of the HTTP API as
frames on one WebSocket (docs/http-api.md, "The channel").

The WebSocket protocol is websockets' sans-I/O state machine, driven here over a
plain socket (:class:`Channel`, for the sync binding: one per thread with a
request open, the answer read in that thread, no thread hop) or an asyncio
stream (:class:`AsyncChannel`: one for every task of a space, many requests
open at once).  Both raise ``ChannelRefused`` when the server will not open a
channel (the binding then uses HTTP alone), ``ConnectionError`` when a channel
breaks (it is then useless: close it) and ``TimeoutError`` when an answer does
not come in time (a sync channel is then useless too; an async one withdraws
the request and goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

__all__ = ["AsyncChannel", "AsyncChannels", "Channel", "ChannelRefused", "Channels", "PATH", "answer"]

PATH = "/channel"
_READ = 1 << 16
# Idle sync channels kept for reuse, and how long one stays idle before it is closed
# (less than the server's 20 s between pings, which an idle sync channel does not answer).
_IDLE_CHANNELS = 32
_IDLE = 15.0


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
    """A channel over a blocking socket, for one thread at a time: one request open
    (its id is always 1) and its answer read in the calling thread."""

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
        self._protocol.send_binary(b"1 " + request)
        self._flush()
        while (data := _message(self._protocol)) is None:
            self._receive()
        self._used = time.monotonic()
        return answer(data.partition(b" ")[2])

    def close(self) -> None:
        self.socket.close()


class AsyncChannel:
    """A channel over an asyncio stream, shared by every task of a space: requests
    go out as they come and a reader task hands each answer to its request."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._protocol = protocol
        # Nothing to shut down from another thread: close() ends every request open.
        self.socket = None
        self._ids = itertools.count(1)
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._broken: BaseException | None = None
        self._reading: asyncio.Task[None] | None = None

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
        channel._reading = asyncio.get_running_loop().create_task(channel._read())
        return channel

    def usable(self, idle: float) -> bool:
        """Whether the channel is still open (a shared channel answers the server's
        pings while idle, so it never goes stale)."""
        return self._broken is None

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

    async def _read(self) -> None:
        try:
            while True:
                await self._receive()
                for event in self._protocol.events_received():
                    if not isinstance(event, Frame):
                        continue
                    if event.opcode is Opcode.CLOSE:
                        raise ConnectionError("the server closed the channel")
                    if event.opcode in (Opcode.BINARY, Opcode.TEXT):
                        request_id, _, data = bytes(event.data).partition(b" ")
                        fut = self._waiting.pop(request_id, None)
                        if fut is not None and not fut.done():
                            fut.set_result(data)
        except (OSError, asyncio.CancelledError) as exc:
            self._break(exc if isinstance(exc, OSError) else ConnectionError("the channel was closed"))

    def _break(self, exc: BaseException) -> None:
        if self._broken is None:
            self._broken = exc
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError(str(exc)))

    async def exchange(self, request: bytes, timeout: float | None) -> tuple[int, bytes]:
        """Send ``request`` and wait at most ``timeout`` seconds (None: no limit) for
        its answer; cancelled, the request is withdrawn on the server too."""
        if self._broken is not None:
            raise ConnectionError(str(self._broken))
        request_id = b"%d" % next(self._ids)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = fut
        try:
            self._protocol.send_binary(request_id + b" " + request)
            await self._flush()
            async with asyncio.timeout(timeout):
                return answer(await fut)
        except BaseException:
            if self._waiting.pop(request_id, None) is not None and self._broken is None:
                self._protocol.send_binary(request_id + b" CANCEL")
                with contextlib.suppress(OSError):
                    self._writer.write(b"".join(self._protocol.data_to_send()))
            raise

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self._break(ConnectionError("the channel was closed"))
        self._writer.close()


class Channels:
    """The channels of a sync space: one per thread with a request open, kept for
    reuse while idle."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        self._base = base
        self._headers = headers
        self._timeout = timeout
        self._idle: list[Channel] = []
        self._closed = False

    def get(self) -> tuple[Channel, bool]:
        """An idle channel still open, else a new one; and whether it is new."""
        while True:
            try:
                channel = self._idle.pop()
            except IndexError:
                return Channel.open(self._base, self._headers, self._timeout), True
            if channel.usable(_IDLE):
                return channel, False
            channel.close()

    def release(self, channel: Channel) -> None:
        if len(self._idle) < _IDLE_CHANNELS and not self._closed:
            self._idle.append(channel)
        else:
            channel.close()

    def failed(self, channel: Channel) -> None:
        channel.close()  # its state is unknown: an answer may still be on its way

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


class AsyncChannels:
    """The channel of an async space: one, shared by all its tasks, opened once."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        self._base = base
        self._headers = headers
        self._timeout = timeout
        self._channel: AsyncChannel | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False

    async def get(self) -> tuple[AsyncChannel, bool]:
        """The channel, opened by the first task that needs it; and whether it is new."""
        if self._channel is not None and self._channel.usable(_IDLE):
            return self._channel, False
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._channel is not None and self._channel.usable(_IDLE):
                return self._channel, False
            if self._closed:
                raise ConnectionError("the channels are closed")
            self._channel = await AsyncChannel.open(self._base, self._headers, self._timeout)
            return self._channel, True

    def release(self, channel: AsyncChannel) -> None:
        """Nothing to do: the channel stays open for every task."""

    def failed(self, channel: AsyncChannel) -> None:
        if not channel.usable(_IDLE):  # broken; a request given up on was withdrawn
            channel.close()

    def close(self) -> None:
        self._closed = True
        if self._channel is not None:
            self._channel.close()
