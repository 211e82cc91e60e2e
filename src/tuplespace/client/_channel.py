"""The client's side of a server's channel: the requests of the HTTP API as
frames on one TCP connection to the server's port (docs/http-api.md, "The
channel").

:class:`Channel`, for the sync binding, is a blocking socket: one per thread with
a request open, the answer read in that thread, no thread hop.  It checks for an
answer for a moment (``spin`` seconds, yielding its CPU between checks) before it
sleeps, if answers to the same operation came that fast before: waking a thread
that slept costs more than the answer takes to come from a server on another core.
:class:`AsyncChannel` is an asyncio stream shared by every task of a space, many
requests open at once.  Both raise ``ChannelRefused`` when the server will not
open a channel (the binding then uses HTTP alone), ``ConnectionError`` when a
channel breaks (it is then useless: close it) and ``TimeoutError`` when an
answer does not come in time (a sync channel is then useless too; an async one
withdraws the request and goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import select
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

import orjson

from .._framing import LENGTH as _LENGTH
from .._framing import MAGIC
from .._framing import frame as _frame

__all__ = ["SPIN", "AsyncChannel", "AsyncChannels", "Channel", "ChannelRefused", "Channels", "answer"]

_READ = 1 << 16
# The most bytes a welcome may have.
_MAX_WELCOME = 1 << 16
# Whether a sync channel's waits can be bounded by the kernel (a timeval of two longs).
_KERNEL_BOUND = sys.platform.startswith("linux")
# Idle sync channels kept for reuse, and how long one stays idle before it is closed.
_IDLE_CHANNELS = 32
_IDLE = 15.0
# Operations whose last wait a sync channel remembers (their names, the last part of a path).
_REMEMBERED = 64


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# The default spin of a sync channel: none with one CPU, where the server cannot
# answer while this thread checks.
SPIN = 200e-6 if _cpus() > 1 else 0.0


class ChannelRefused(Exception):
    """The server did not open a channel (it has none, or something between refused)."""


def answer(data: bytes) -> tuple[int, bytes]:
    """The status and JSON body of an answer frame ``"200\\n{...}"``."""
    status, _, body = data.partition(b"\n")
    return int(status), body


def _address(base: str) -> tuple[str, int, bool]:
    parts = urlsplit(base)
    secure = parts.scheme == "https"
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), secure


def _opening(headers: dict[str, str]) -> bytes:
    """The first bytes of a channel: the magic, then the hello with the authorization."""
    hello = {"authorization": headers["Authorization"]} if "Authorization" in headers else {}
    return MAGIC + _frame(orjson.dumps(hello))


def _welcome(head: bytes) -> int:
    """The size of the welcome whose length is ``head`` (ChannelRefused when the
    server answered something else: HTTP, for a server with no channel)."""
    size = int.from_bytes(head, "big")
    if head.startswith(b"HTTP") or size > _MAX_WELCOME:
        raise ChannelRefused("the server answered the opening of a channel with HTTP")
    return size


def _closing(frame: bytes) -> ConnectionError:
    """The error of the server's closing frame ``"0 400\\n{...}"``."""
    status, body = answer(frame.partition(b" ")[2])
    try:
        message = orjson.loads(body)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")
    return ConnectionError(f"the server closed the channel ({status}: {message})")


class Channel:
    """A channel over a blocking socket, for one thread at a time: one request open
    (its id is always 1) and its answer read in the calling thread."""

    def __init__(self, sock: socket.socket, spin: float = 0.0) -> None:
        self.socket = sock
        self._buffer = bytearray()
        self._used = time.monotonic()
        # A plain socket on Linux blocks, bounded by the kernel (SO_RCVTIMEO): a socket
        # with a Python timeout polls before every send and receive, a system call more.
        self._kernel_bound = _KERNEL_BOUND and not isinstance(sock, ssl.SSLSocket)
        self._limit: float | None = -1.0  # the bound set on the socket (-1: none yet)
        if self._kernel_bound:
            sock.settimeout(None)
        # Checking without sleeping needs a socket that blocks (one with a Python
        # timeout polls first) and is not TLS (which has no MSG_DONTWAIT).
        self._spin = spin if self._kernel_bound else 0.0
        self._quick: dict[bytes, bool] = {}  # operation -> its last answer came within the spin

    def _bound(self, timeout: float | None) -> None:
        """Make a blocked send or receive give up after ``timeout`` seconds (None: never)."""
        if timeout == self._limit:
            return
        self._limit = timeout
        if not self._kernel_bound:
            self.socket.settimeout(timeout)
            return
        seconds = 0.0 if timeout is None else max(timeout, 1e-6)  # 0 is no bound
        timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def usable(self, idle: float) -> bool:
        """Whether the channel is still open, and idle for less than ``idle`` seconds."""
        if time.monotonic() - self._used >= idle:
            return False
        readable, _, _ = select.select([self.socket], [], [], 0)
        return not readable  # nothing is due on an idle channel but its end

    @classmethod
    def open(cls, base: str, headers: dict[str, str], timeout: float, spin: float = 0.0) -> Channel:
        host, port, secure = _address(base)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            channel = cls(sock, spin)
            channel._bound(timeout)
            channel._send(_opening(headers))
            channel._fill(_LENGTH)
            size = _welcome(bytes(channel._buffer[:_LENGTH]))
            channel._fill(_LENGTH + size)
            del channel._buffer[: _LENGTH + size]
        except BaseException:
            sock.close()
            raise
        return channel

    def _fill(self, size: int, spin: float = 0.0) -> None:
        """Receive until the buffer holds ``size`` bytes, checking ``spin`` seconds
        for the first of them before sleeping."""
        while len(self._buffer) < size:
            data = self._check(spin) if spin else None
            if data is None:
                try:
                    data = self.socket.recv(_READ)
                except BlockingIOError:  # the kernel's bound
                    raise TimeoutError("no answer in time") from None
            if not data:
                raise ConnectionError("the server closed the channel")
            self._buffer += data
            spin = 0.0

    def _check(self, spin: float) -> bytes | None:
        """What arrives within ``spin`` seconds, checked for without sleeping (None:
        nothing).  Between checks the thread yields its CPU to whatever else is ready
        to run there, as the server may be."""
        end = time.perf_counter() + spin
        while True:
            try:
                return self.socket.recv(_READ, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.perf_counter() >= end:
                    return None
                os.sched_yield()

    def _send(self, data: bytes) -> None:
        try:
            self.socket.sendall(data)
        except BlockingIOError:  # the kernel's bound
            raise TimeoutError("the server does not read") from None

    def _next(self, spin: float = 0.0) -> bytes:
        buffer = self._buffer
        self._fill(_LENGTH, spin)
        end = _LENGTH + int.from_bytes(buffer[:_LENGTH], "big")
        self._fill(end)
        frame = bytes(buffer[_LENGTH:end])
        del buffer[:end]
        return frame

    def exchange(self, request: bytes, timeout: float | None) -> tuple[int, bytes]:
        """Send ``request`` and wait at most ``timeout`` seconds (None: no limit) for
        its answer."""
        self._bound(timeout)
        self._send(_frame(b"1 " + request))
        # Spin if the last answer to this operation came within the spin: an answer
        # that waits on the server (a take that blocks) is slept for.
        operation = request[: request.find(b"\n")].rpartition(b"/")[2]
        spin = self._spin if self._quick.get(operation, True) else 0.0
        start = time.perf_counter()
        while True:
            request_id, _, data = self._next(spin).partition(b" ")
            if request_id == b"1":
                break
            if request_id == b"0":
                raise _closing(request_id + b" " + data)
        if self._spin:
            if len(self._quick) >= _REMEMBERED:
                self._quick.clear()
            self._quick[operation] = time.perf_counter() - start <= self._spin
        self._used = time.monotonic()
        return answer(data)

    def close(self) -> None:
        self.socket.close()


class AsyncChannel:
    """A channel over an asyncio stream, shared by every task of a space: requests
    go out as they come and a reader task hands each answer to its request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        # Nothing to shut down from another thread: close() ends every request open.
        self.socket = None
        self._ids = itertools.count(1)
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._broken: BaseException | None = None
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, base: str, headers: dict[str, str], timeout: float) -> AsyncChannel:
        host, port, secure = _address(base)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if secure else None
            )
            channel = cls(reader, writer)
            try:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                writer.write(_opening(headers))
                await reader.readexactly(_welcome(await reader.readexactly(_LENGTH)))
            except asyncio.IncompleteReadError:
                channel.close()
                raise ConnectionError("the server closed the channel") from None
            except BaseException:
                channel.close()
                raise
        channel._reading = asyncio.get_running_loop().create_task(channel._read())
        return channel

    def usable(self, idle: float) -> bool:
        """Whether the channel is still open (a shared channel is never idle for long
        enough to matter: it stays open while the space does)."""
        return self._broken is None

    async def _read(self) -> None:
        reader = self._reader
        try:
            while True:
                head = await reader.readexactly(_LENGTH)
                frame = await reader.readexactly(int.from_bytes(head, "big"))
                request_id, _, data = frame.partition(b" ")
                if request_id == b"0":
                    raise _closing(frame)
                fut = self._waiting.pop(request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        except asyncio.IncompleteReadError:
            self._break(ConnectionError("the server closed the channel"))
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
            self._writer.write(_frame(request_id + b" " + request))
            await self._writer.drain()
            async with asyncio.timeout(timeout):
                return answer(await fut)
        except BaseException:
            if self._waiting.pop(request_id, None) is not None and self._broken is None:
                with contextlib.suppress(OSError, RuntimeError):
                    self._writer.write(_frame(request_id + b" CANCEL"))
            raise

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self._break(ConnectionError("the channel was closed"))
        self._writer.close()


class Channels:
    """The channels of a sync space: one per thread with a request open, kept for
    reuse while idle."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float, spin: float) -> None:
        self._base = base
        self._headers = headers
        self._timeout = timeout
        self._spin = spin
        self._idle: list[Channel] = []
        self._closed = False

    def get(self) -> tuple[Channel, bool]:
        """An idle channel still open, else a new one; and whether it is new."""
        while True:
            try:
                channel = self._idle.pop()
            except IndexError:
                return Channel.open(self._base, self._headers, self._timeout, self._spin), True
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
    """The channel of an async space: one, shared by all its tasks, opened once.
    It never spins (``spin`` is the sync channels'): its waits belong to the event loop."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float, spin: float) -> None:
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
