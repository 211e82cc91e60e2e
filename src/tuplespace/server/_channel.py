"""The channel: the requests of the HTTP API on one WebSocket, many at once.

A request on the channel costs a WebSocket frame instead of an HTTP exchange:
no headers, no connection bookkeeping, one frame each way, and any number of
requests waiting on one connection.  It is the same request as over HTTP and
reaches the same handler, so it means the same, is checked the same and fails
the same (docs/http-api.md, "The channel"):

    request frame   "7 POST /spaces/jobs/take\n" + JSON body (the body may be empty)
    answer frame    "7 200\n" + JSON body (empty for 204)
    cancel frame    "7 CANCEL": withdraw request 7, as a broken connection would

The id (digits) is the client's to choose among its open requests; answers
come as requests finish, each with its id.  The ``Authorization`` header of the
opening handshake holds for every request (checked again on each, so a revoked
token stops working at once).  A channel that closes withdraws the waits of its
open requests.  Event streams are not served on a channel: they stay on HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Message, Scope
from starlette.websockets import WebSocket, WebSocketDisconnect

from .._errors import TupleSpaceError
from ._api import ApiBase
from ._errors import ApiError, api_error, error_response

__all__ = ["PATH", "install_channel"]

PATH = "/channel"
# Distinct request lines whose route is remembered (space names and ids vary).
_REMEMBERED = 1024
# Requests one channel may have open at once, and the digits of a request id.
_MAX_OPEN = 10_000
_MAX_ID = 20
# Routes that answer with a stream, which a channel does not carry.
_STREAMS = frozenset({"events", "record_events"})
_CONVERT: dict[Any, Callable[[str], Any]] = {int: int, str: str}

Endpoint = Callable[..., Awaitable[Response]]


class _Routes:
    """Which handler serves ``METHOD /path``, with its path parameters converted
    to the types its signature asks for."""

    def __init__(self, app: FastAPI) -> None:
        self._routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
        self._streams = {r.endpoint for r in self._routes if r.name in _STREAMS}
        self._types = {r.endpoint: _param_types(r.endpoint) for r in self._routes}
        self._seen: OrderedDict[tuple[str, str], tuple[Endpoint, dict[str, Any]]] = OrderedDict()

    def find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]]:
        key = (method, path)
        found = self._seen.get(key)
        if found is not None:
            self._seen.move_to_end(key)
            return found
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        allowed = False
        for route in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                if route.endpoint in self._streams:
                    raise ApiError(400, "bad_request", f"{path} streams: open it over HTTP, not on a channel")
                found = (route.endpoint, self._convert(route.endpoint, child["path_params"]))
                break
            allowed = allowed or match is Match.PARTIAL
        if found is None:
            if allowed:
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            raise ApiError(404, "not_found", f"no route {path}")
        self._seen[key] = found
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return found

    def _convert(self, endpoint: Endpoint, params: dict[str, str]) -> dict[str, Any]:
        types = self._types[endpoint]
        out = {}
        for name, text in params.items():
            try:
                out[name] = types.get(name, str)(text)
            except ValueError:
                raise ApiError(400, "bad_request", f"{name} is an integer, not {text!r}", name) from None
        return out


def _param_types(endpoint: Endpoint) -> dict[str, Callable[[str], Any]]:
    hints = inspect.get_annotations(endpoint, eval_str=True)
    return {name: _CONVERT[kind] for name, kind in hints.items() if kind in _CONVERT}


class _Exchange:
    """One request of a channel as the handlers see it: its body, then, when a
    handler waits for the client to go away, the channel's end."""

    def __init__(self, body: bytes, ended: asyncio.Event) -> None:
        self._body: bytes | None = body
        self._ended = ended

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._ended.wait()
        return {"type": "http.disconnect"}


class _Channel:
    """One open channel: its requests, each served by a task of its own."""

    def __init__(self, api: ApiBase, routes: _Routes, websocket: WebSocket, base: Scope) -> None:
        self.api = api
        self.routes = routes
        self.websocket = websocket
        self.base = base
        self.ended = asyncio.Event()
        self.open: dict[bytes, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                data = frame.get("bytes")
                if data is None:
                    data = (frame.get("text") or "").encode()
                request_id, _, request = data.partition(b" ")
                if not request_id.isdigit() or len(request_id) > _MAX_ID:
                    await self.websocket.close(1008, "a channel request starts with its id")
                    return
                if request == b"CANCEL":
                    task = self.open.get(request_id)
                    if task is not None:
                        task.cancel()
                elif request_id in self.open:
                    await self._send(request_id, _error(ApiError(400, "bad_request", "this id is in use")))
                elif len(self.open) >= _MAX_OPEN:
                    too_many = ApiError(
                        429,
                        "limit_reached",
                        f"a channel has at most {_MAX_OPEN} requests open",
                        limit="channel_requests",
                        maximum=_MAX_OPEN,
                    )
                    await self._send(request_id, _error(too_many))
                else:
                    task = asyncio.create_task(self._serve(request_id, request))
                    self.open[request_id] = task
                    task.add_done_callback(functools.partial(self._forget, request_id))
        except WebSocketDisconnect:
            return
        finally:
            # Requests still open see their client gone: their waits are withdrawn.
            self.ended.set()
            if self.open:
                await asyncio.wait(list(self.open.values()))

    def _forget(self, request_id: bytes, task: asyncio.Task[None]) -> None:
        self.open.pop(request_id, None)

    async def _serve(self, request_id: bytes, data: bytes) -> None:
        answer = await _answer(self.api, self.routes, self.base, self.ended, data)
        if not self.ended.is_set():
            await self._send(request_id, answer)

    async def _send(self, request_id: bytes, answer: bytes) -> None:
        try:
            await self.websocket.send_bytes(request_id + b" " + answer)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.ended.set()  # the channel closed under the answer: nobody reads it


def install_channel(app: FastAPI, api: ApiBase) -> None:
    """Serve the channel at :data:`PATH` (call after every HTTP route is added)."""
    routes = _Routes(app)

    async def channel(websocket: WebSocket) -> None:
        await websocket.accept()
        base: Scope = {
            "type": "http",
            "http_version": "1.1",
            "scheme": "http",
            "root_path": "",
            "query_string": b"",
            "headers": [(k, v) for k, v in websocket.scope["headers"] if k == b"authorization"],
            "client": websocket.scope.get("client"),
            "server": websocket.scope.get("server"),
            "app": app,
        }
        await _Channel(api, routes, websocket, base).run()

    app.add_api_websocket_route(PATH, channel, name="channel")


def _error(error: ApiError) -> bytes:
    response = error_response(error)
    return b"%d\n%s" % (response.status_code, response.body)


async def _answer(api: ApiBase, routes: _Routes, base: Scope, ended: asyncio.Event, data: bytes) -> bytes:
    try:
        line, _, body = data.partition(b"\n")
        method, _, path = line.decode("utf-8", "replace").partition(" ")
        if not path.startswith("/") or not method.isupper():
            raise ApiError(400, "bad_request", 'a channel request is "ID METHOD /path\\n" and its body')
        endpoint, params = routes.find(method, path)
        scope = {**base, "method": method, "path": path, "raw_path": path.encode()}
        request = Request(scope, _Exchange(body, ended).receive)
        response = await endpoint(**params, request=request)
    except ApiError as exc:
        response = error_response(exc)
    except TupleSpaceError as exc:
        response = error_response(api_error(exc, shutting_down=api.stopping))
    return b"%d\n%s" % (response.status_code, response.body)
