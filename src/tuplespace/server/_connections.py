"""The connections of a server's port: who may open one, and what each must do in time.

Every connection meets the door first: its first bytes tell a channel
(``tuplespace._framing.MAGIC``) from HTTP, and the door hands it to the protocol
that serves it.  The limits come from the server's ``ServerLimits``:

- ``max_connections``: one client address holds at most this many connections.
  One more is refused: its first request is answered ``429 limit_reached`` (over
  HTTP, or as a channel's closing frame) and it is closed; if it sends nothing it
  is closed after a second.
- ``idle_timeout``: a connection with no request under way, before its first or
  between two over HTTP (uvicorn's ``timeout_keep_alive``), is closed after that
  many seconds.  An open channel is not idle: it stays open for its requests.
- ``read_timeout``: the head and the body of an HTTP request, and each frame of a
  channel, must arrive in full within that many seconds of their first byte, else
  ``408 request_timeout`` and the connection is closed.
- The head of an HTTP request (its request line and headers) is at most
  ``MAX_HEAD`` bytes, else ``431 value_too_large``.

Nothing is reserved for what a client announces: a body or a frame is held as
its bytes arrive, at most for ``read_timeout``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

import orjson
from fastapi import FastAPI
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .._framing import MAGIC, frame
from ._channel import _Channel, _Service
from ._errors import ApiError, limit_reached, request_timeout

__all__ = ["MAX_HEAD", "connection_door"]

MAX_HEAD = 1 << 16
# How long a refused connection may take to send its first request, to be told why.
_REFUSED_WAIT = 1.0


def connection_door(app: FastAPI) -> type[asyncio.Protocol]:
    """The protocol of uvicorn's connections (its ``http`` setting) for ``app`` made
    by ``create_app``: a connection that starts with :data:`MAGIC` is a channel, any
    other goes to uvicorn's HTTP protocol; both within the limits of the module."""
    service = _Service(app)
    addresses = _Addresses(service.api.limits.max_connections)

    class Door(_Door):
        _service = service
        _addresses = addresses

    return Door


class _Addresses:
    """How many connections each client address has open."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.open: dict[str, int] = {}

    def admit(self, host: str) -> bool:
        """Count one more connection of ``host``; False if it has as many as it may."""
        count = self.open.get(host, 0)
        if count >= self.most:
            return False
        self.open[host] = count + 1
        return True

    def release(self, host: str) -> None:
        count = self.open[host] - 1
        if count:
            self.open[host] = count
        else:
            del self.open[host]


def _http_answer(error: ApiError) -> bytes:
    """``error`` as a whole HTTP response that closes its connection."""
    body = orjson.dumps(error.body())
    status = HTTPStatus(error.status)
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in error.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Door(asyncio.Protocol):
    """The first bytes of a connection decide what it is; then the connection is
    handed to the protocol that serves it."""

    _service: _Service
    _addresses: _Addresses

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._host = "-"
        self._admitted = False
        self._first = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._host = str(peer[0])
        self._admitted = self._addresses.admit(self._host)
        idle = float(self._config.timeout_keep_alive)
        wait = idle if self._admitted else min(idle, _REFUSED_WAIT)
        self._timer = asyncio.get_running_loop().call_later(wait, self._transport.close)
        self._server_state.connections.add(self)  # type: ignore[arg-type]  # closed on shutdown

    def data_received(self, data: bytes) -> None:
        first = self._first + data
        if len(first) < len(MAGIC) and MAGIC.startswith(first):
            self._first = first
            return
        self._leave()
        transport = self._transport
        assert transport is not None
        channel = first.startswith(MAGIC)
        if not self._admitted:
            most = self._addresses.most
            error = limit_reached(f"this address has {most} connections open", "max_connections", most)
            body = orjson.dumps(error.body())
            transport.write(frame(b"0 429\n" + body) if channel else _http_answer(error))
            transport.close()
            return
        self._admitted = False  # the protocol it goes to releases it
        release = functools.partial(self._addresses.release, self._host)
        read_timeout = self._service.api.limits.read_timeout
        protocol: asyncio.Protocol
        if channel:
            protocol = _Channel(self._service, self._server_state, read_timeout, release)
            first = first[len(MAGIC) :]
        else:
            protocol = _Http(self._config, self._server_state, self._app_state, read_timeout, release)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if first:
            protocol.data_received(first)

    def _leave(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._server_state.connections.discard(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Gone before it said what it is: nothing to end."""
        self._leave()
        if self._admitted:
            self._addresses.release(self._host)

    def shutdown(self) -> None:
        """Close (uvicorn calls this on shutdown): no request was made."""
        if self._transport is not None:
            self._transport.close()


class _Http(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request to arrive in
    full and a bound on the bytes of its head; ``release`` is called once the
    connection is lost."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        read_timeout: float,
        release: Callable[[], None],
    ) -> None:
        super().__init__(config, server_state, app_state)
        self._read_timeout = read_timeout
        self._release = release
        self._deadline: asyncio.TimerHandle | None = None
        self._head: int | None = None  # bytes of the head so far (None: no head under way)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head is not None:
            self._head += len(data)
            if self._head > MAX_HEAD:
                message = f"the head of a request is more than {MAX_HEAD} bytes"
                self._refuse(ApiError(431, "value_too_large", message, limit="max_head", maximum=MAX_HEAD))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head = 0
        self._stop_deadline()
        self._deadline = self.loop.call_later(self._read_timeout, self._too_slow)

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_deadline()
        self._release()

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        what = "the head of a request" if self._head is not None else "the body of a request"
        self._refuse(request_timeout(what, self._read_timeout))

    def _refuse(self, error: ApiError) -> None:
        """Answer ``error`` unless the request being read has its answer under way
        already, and close the connection (its handler, if one runs, sees it gone)."""
        if self.transport.is_closing():
            return
        if self._head is not None or self.cycle is None or not self.cycle.response_started:
            self.transport.write(_http_answer(error))
        self.transport.close()
