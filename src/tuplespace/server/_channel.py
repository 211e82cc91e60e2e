"""The channel: the requests of the HTTP API as frames on one TCP connection.

A request on the channel costs two short frames instead of an HTTP exchange: no
headers, no connection bookkeeping, and any number of requests waiting on one
connection.  It is the same request as over HTTP and reaches the same handler,
so it means the same, is checked the same and fails the same
(docs/http-api.md, "The channel").

A channel shares the server's port: a connection whose first bytes are
``MAGIC`` (of ``tuplespace._framing``) is a channel, any other is HTTP, served by uvicorn
(``_connections`` tells them apart).  Then every frame is a 4-byte big-endian length
and that many bytes:

    hello           {"authorization": "Bearer ..."}  (JSON; the first frame of the client;
                    "origin" too if a web page's client opens it)
    welcome         {"server": "pytuplespace", "version": ..., "max_frame": ...}
    request frame   "7 POST /spaces/jobs/take\\n" + JSON body (the body may be empty)
    answer frame    "7 200\\n" + JSON body (empty for 204)
    cancel frame    "7 CANCEL": withdraw request 7, as a broken connection would
    closing frame   "0 400\\n" + JSON error: the channel broke its rules and is closed

The id (digits, not 0) is the client's to choose among its open requests;
answers come as requests finish, each with its id.  The authorization of the
hello holds for every request (checked again on each, so a revoked token stops
working at once).  A channel that closes withdraws the waits of its open
requests.  Event streams are not served on a channel: they stay on HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import types
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, cast

import orjson
from fastapi import FastAPI
from uvicorn.server import ServerState

from .. import __version__
from .._errors import TupleSpaceError
from .._framing import LENGTH as _LENGTH
from .._framing import frame
from .._httpapi import OPERATIONS, Operation
from ._errors import ApiError, api_error, limit_reached, request_timeout
from ._guard import Policy
from ._requests import ServiceRequest
from ._service import Answer, ApiBase

__all__: list[str] = []  # the door of _connections opens channels

logger = logging.getLogger("tuplespace.server")

# Distinct request lines whose route is remembered (space names and ids vary).
_REMEMBERED = 1024
# Requests one channel may have open at once, and the digits of a request id.
_MAX_OPEN = 10_000
_MAX_ID = 20
# Bytes of a hello, and of a request's first line beyond its body; a request frame
# may always be 1 MiB (bodies over the server's max_body get their 413 answer).
_MAX_HELLO = 1 << 16
_MAX_LINE = 1 << 16
_MIN_BODY = 1 << 20
_CONVERT: dict[Any, Callable[[str], Any]] = {int: int, str: str}

Endpoint = Callable[..., Awaitable[Answer]]


class _Routes:
    """Which handler of ``api`` serves ``METHOD /path``: the operation of the table
    (``tuplespace._httpapi.OPERATIONS``) whose path it is, with its path parameters converted to
    the types the handler's signature asks for."""

    def __init__(self, api: ApiBase) -> None:
        # By the number of segments of the path: each segment, a literal or None (a
        # parameter); the parameters' names and converters; the operation and its handler.
        self._by_length: dict[int, list[_Route]] = {}
        for op in OPERATIONS:
            endpoint: Endpoint = getattr(api, op.name)
            segments = op.path.split("/")
            literal = tuple(None if s.startswith("{") else s for s in segments)
            kinds = _param_types(endpoint)
            params = tuple(
                (i, s[1:-1], kinds.get(s[1:-1], str)) for i, s in enumerate(segments) if s[0:1] == "{"
            )
            self._by_length.setdefault(len(segments), []).append(_Route(op, endpoint, literal, params))
        self._seen: OrderedDict[tuple[str, str], tuple[Endpoint, dict[str, Any]]] = OrderedDict()

    def find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]]:
        key = (method, path)
        found = self._seen.get(key)
        if found is not None:
            self._seen.move_to_end(key)
            return found
        segments = path.split("/")
        allowed = False
        for route in self._by_length.get(len(segments), ()):
            if not route.matches(segments):
                continue
            if route.op.method != method:
                allowed = True
                continue
            if route.op.streams:
                raise ApiError(400, "bad_request", f"{path} streams: open it over HTTP, not on a channel")
            found = (route.endpoint, route.params_of(segments))
            break
        if found is None:
            if allowed:
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            raise ApiError(404, "not_found", f"no route {path}")
        self._seen[key] = found
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return found


class _Route:
    """An operation of the table as the channel matches it."""

    __slots__ = ("endpoint", "literal", "op", "params")

    def __init__(
        self,
        op: Operation,
        endpoint: Endpoint,
        literal: tuple[str | None, ...],
        params: tuple[tuple[int, str, Callable[[str], Any]], ...],
    ) -> None:
        self.op = op
        self.endpoint = endpoint
        self.literal = literal  # each segment of the path, None for a parameter
        self.params = params  # where each parameter is, its name and converter

    def matches(self, segments: list[str]) -> bool:
        """Whether a path of as many segments is this one's (a parameter is any segment but an empty one)."""
        for want, got in zip(self.literal, segments, strict=True):
            if got != want and (want is not None or not got):
                return False
        return True

    def params_of(self, segments: list[str]) -> dict[str, Any]:
        out = {}
        for i, name, kind in self.params:
            text = segments[i]
            try:
                out[name] = kind(text)
            except ValueError:
                raise ApiError(400, "bad_request", f"{name} is an integer, not {text!r}", name) from None
        return out


def _param_types(endpoint: Endpoint) -> dict[str, Callable[[str], Any]]:
    hints = inspect.get_annotations(endpoint, eval_str=True)
    return {name: _CONVERT[kind] for name, kind in hints.items() if kind in _CONVERT}


class _Service:
    """What every channel of one application shares: its state and its routes."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.api: ApiBase = app.state.api
        self.policy: Policy = app.state.policy
        self.routes = _Routes(self.api)

    async def answer(self, channel: _Channel, data: bytes) -> bytes:
        """The answer frame (without its id) to a request frame (without its id)."""
        api = self.api
        try:
            line, _, body = data.partition(b"\n")
            method, _, path = line.decode("utf-8", "replace").partition(" ")
            if not path.startswith("/") or not method.isupper():
                raise ApiError(400, "bad_request", 'a channel request is "ID METHOD /path\\n" and its body')
            endpoint, params = self.routes.find(method, path)
            request = ServiceRequest(
                channel.authorization, channel.host, functools.partial(_given, body), channel.watch_disconnect
            )
            answer = await endpoint(**params, request=request)
        except ApiError as exc:
            return _error(exc)
        except TupleSpaceError as exc:
            return _error(api_error(exc, shutting_down=api.stopping))
        except Exception:
            logger.exception("a channel request failed: %s", data[:200])
            return _error(ApiError(500, "internal_error", "the server failed to answer"))
        return b"%d\n%s" % (answer.status_code, answer.body)


async def _given(body: bytes, most: int) -> tuple[bytes, int]:
    """A channel request's body, which came whole in its frame (see ``ReceiveBody``)."""
    return body, len(body)


def _error(error: ApiError) -> bytes:
    """The answer (without its id) that says ``error``: its status and its JSON body."""
    return b"%d\n%s" % (error.status, orjson.dumps(error.body()))


class _Channel(asyncio.Protocol):
    """One open channel: its frames, and its requests, each served by a task of its own.

    Each frame, the hello first, must arrive in full within ``read_timeout`` seconds
    of its first byte (else ``0 408`` and the channel closes); ``release`` is called
    once the connection is lost.  The part of a frame received so far is held in the
    server's budget (``_budget``): the channel is not read while the budget says wait,
    nor while its client does not read its answers."""

    def __init__(
        self, service: _Service, server_state: ServerState, read_timeout: float, release: Callable[[], None]
    ) -> None:
        self.service = service
        self.server_state = server_state
        self.read_timeout = read_timeout
        self.release = release
        self.deadline: asyncio.TimerHandle | None = None  # of the frame arriving
        self.transport: asyncio.Transport | None = None
        self.ended = False  # the connection is lost, or the channel refused
        self.watchers: set[Callable[[], object]] = set()  # of the requests that wait
        self.open: dict[bytes, asyncio.Task[None]] = {}
        self.authorization: str | None = None  # the hello's, for every request
        self.host: str | None = None  # the client's address
        self.buffer = bytearray()
        self.hello = True
        self.closing = False
        self.held = 0  # bytes of a frame begun, held in the budget
        self.unread = False  # its client does not read its answers
        self.waiting = False  # for the budget
        self.most = max(service.api.limits.max_body, _MIN_BODY) + _MAX_LINE

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = self.transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.host = str(peer[0])
        self.server_state.connections.add(self)  # type: ignore[arg-type]  # shut down with the server
        self._await_frame()  # the hello

    def connection_lost(self, exc: Exception | None) -> None:
        # Requests still open see their client gone: their waits are withdrawn.
        self.ended = True
        if self.deadline is not None:
            self.deadline.cancel()
        for callback in list(self.watchers):
            callback()
        self.server_state.connections.discard(self)
        self.service.api.budget.release(self)
        self.release()

    def pause_writing(self) -> None:
        # A client that does not read its answers sends no more requests.
        assert self.transport is not None
        self.unread = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.unread = False
        if self.buffer and not self.ended:
            self.data_received(b"")  # the frames that came before its client stopped reading
        if not self.waiting and not self.unread and not self.ended:
            self.transport.resume_reading()

    def _budget_free(self) -> None:
        self.waiting = False
        if not self.unread and not self.ended and self.transport is not None:
            self.transport.resume_reading()

    def watch_disconnect(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` when the channel closes (now if it has), for a request that
        waits; returns what stops the watch."""
        if self.ended:
            callback()
        self.watchers.add(callback)
        return functools.partial(self.watchers.discard, callback)

    def shutdown(self) -> None:
        """Close once every open request is answered (uvicorn calls this on shutdown,
        after the application answered its waiting calls)."""
        self.closing = True
        if not self.open and self.transport is not None:
            self.transport.close()

    # -- frames ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        # Frames are served until the client stops reading its answers; those that
        # have arrived wait in the buffer until it reads them (resume_writing).
        while len(buffer) - start >= _LENGTH and not self.ended and not self.unread:
            size = int.from_bytes(buffer[start : start + _LENGTH], "big")
            most = _MAX_HELLO if self.hello else self.most
            if size > most:
                self._refuse(
                    ApiError(
                        413,
                        "value_too_large",
                        f"a frame of {size} bytes, more than {most}",
                        limit="max_body",
                        maximum=most,
                    )
                )
                return
            end = start + _LENGTH + size
            if len(buffer) < end:
                break
            frame = bytes(buffer[start + _LENGTH : end])
            start = end
            if self.hello:
                self._hello(frame)
            else:
                self._frame(frame)
        del buffer[:start]
        if buffer or self.held:
            self._hold(len(buffer))
        if start and self.deadline is not None:  # a frame came in full
            self.deadline.cancel()
            self.deadline = None
        if buffer and self.deadline is None and not self.ended and not self.unread:  # the next one has begun
            self._await_frame()

    def _hold(self, held: int) -> None:
        self.held = held
        budget = self.service.api.budget
        if not budget.hold(self, held) and not self.ended:
            assert self.transport is not None
            self.waiting = True
            self.transport.pause_reading()
            budget.wait(self, self._budget_free)

    def _await_frame(self) -> None:
        self.deadline = asyncio.get_running_loop().call_later(self.read_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self.deadline = None
        self._refuse(request_timeout("a frame", self.read_timeout))

    def _send(self, payload: bytes) -> None:
        if self.transport is not None and not self.ended:
            self.transport.write(frame(payload))

    def _refuse(self, error: ApiError) -> None:
        """Answer ``error`` on the channel's own id, 0, and close it."""
        self._send(b"0 " + _error(error))
        self.ended = True
        assert self.transport is not None
        self.transport.close()

    def _hello(self, frame: bytes) -> None:
        try:
            hello = orjson.loads(frame)
        except orjson.JSONDecodeError:
            hello = None
        authorization = hello.get("authorization") if type(hello) is dict else None
        origin = hello.get("origin") if type(hello) is dict else None
        if type(hello) is not dict or not all(v is None or type(v) is str for v in (authorization, origin)):
            self._refuse(ApiError(400, "bad_request", 'a channel opens with {"authorization": "Bearer …"}'))
            return
        if origin is not None:  # said by a client of a web page: it is checked as over HTTP
            refused = self.service.policy.origin_error(origin, None)
            if refused is not None:
                self._refuse(refused)
                return
        self.authorization = authorization
        self.hello = False
        welcome = {"server": "pytuplespace", "version": __version__, "max_frame": self.most}
        self._send(orjson.dumps(welcome))

    def _frame(self, frame: bytes) -> None:
        request_id, _, request = frame.partition(b" ")
        if not request_id.isdigit() or len(request_id) > _MAX_ID or request_id == b"0":
            self._refuse(ApiError(400, "bad_request", "a channel request starts with its id, digits but 0"))
        elif request == b"CANCEL":
            task = self.open.get(request_id)
            if task is not None:
                task.cancel()
        elif request_id in self.open:
            self._answer(request_id, ApiError(400, "bad_request", "this id is in use"))
        elif len(self.open) >= _MAX_OPEN:
            too_many = f"a channel has at most {_MAX_OPEN} requests open"
            self._answer(request_id, limit_reached(too_many, "channel_requests", _MAX_OPEN))
        else:
            serve = self._serve(request_id, request)
            try:  # most requests need no wait: they are answered here, with no task
                awaited = serve.send(None)
            except StopIteration:
                return
            self.open[request_id] = asyncio.get_running_loop().create_task(_resume(serve, awaited))

    def _answer(self, request_id: bytes, error: ApiError) -> None:
        self._send(request_id + b" " + _error(error))

    async def _serve(self, request_id: bytes, data: bytes) -> None:
        try:
            answer = await self.service.answer(self, data)
        finally:  # the id is free again once its answer is sent (or it is withdrawn)
            self.open.pop(request_id, None)
            if self.closing and not self.open and self.transport is not None:
                self.transport.close()
        self._send(request_id + b" " + answer)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, Any, None]:
    """The rest of ``coro``, which has run up to its first wait (for ``awaited``), as
    something a task can run: what the task sends or throws goes on to ``coro``.

    A request runs eagerly until it waits, as ``asyncio.eager_task_factory`` runs a
    task (Python 3.12): there is no current task until then, and the handlers need
    none before their first wait."""
    while True:
        try:
            sent = yield awaited
        except BaseException as exc:  # cancelled: the request is withdrawn
            try:
                awaited = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                awaited = coro.send(sent)
            except StopIteration:
                return
