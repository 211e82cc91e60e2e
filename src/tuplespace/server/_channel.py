"""The channel: the requests of the HTTP API, one after another on one WebSocket.

A request on the channel costs a WebSocket frame instead of an HTTP exchange:
no headers, no connection bookkeeping, one frame each way.  It is the same
request as over HTTP and reaches the same handler, so it means the same, is
checked the same and fails the same (docs/http-api.md, "The channel"):

    request frame   "POST /spaces/jobs/take\\n" + JSON body (the body may be empty)
    answer frame    "200\\n" + JSON body (empty for 204)

The ``Authorization`` header of the opening handshake holds for every request
(checked again on each, so a revoked token stops working at once).  Requests
are answered in order, one at a time: a blocking take holds its channel as it
holds an HTTP connection, and a channel that closes while a request waits
withdraws the wait, as a broken connection does.  Event streams are not served
on a channel: they stay on HTTP.
"""

from __future__ import annotations

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
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .._errors import TupleSpaceError
from ._api import ApiBase
from ._errors import ApiError, api_error, error_response

__all__ = ["PATH", "install_channel"]

PATH = "/channel"
# Distinct request lines whose route is remembered (space names and ids vary).
_REMEMBERED = 1024
# Routes that answer with a stream, which a channel does not carry.
_STREAMS = frozenset({"events"})
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

    def __init__(self, websocket: WebSocket, body: bytes) -> None:
        self._websocket = websocket
        self._body: bytes | None = body

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # The client sends nothing while its request is open: the next message is the end.
        message = await self._websocket.receive()
        if message["type"] != "websocket.disconnect":
            await self._websocket.close(1008, "one request at a time on a channel")
        return {"type": "http.disconnect"}


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
        try:
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                data = frame.get("bytes")
                if data is None:
                    data = (frame.get("text") or "").encode()
                answer = await _answer(api, routes, base, websocket, data)
                if websocket.application_state is WebSocketState.DISCONNECTED:
                    return  # closed while the request was open: nobody reads the answer
                await websocket.send_bytes(answer)
        except WebSocketDisconnect:
            return

    app.add_api_websocket_route(PATH, channel, name="channel")


async def _answer(api: ApiBase, routes: _Routes, base: Scope, websocket: WebSocket, data: bytes) -> bytes:
    try:
        line, _, body = data.partition(b"\n")
        method, _, path = line.decode("utf-8", "replace").partition(" ")
        if not path.startswith("/") or not method.isupper():
            raise ApiError(400, "bad_request", 'a channel request starts "METHOD /path\\n"')
        endpoint, params = routes.find(method, path)
        scope = {**base, "method": method, "path": path, "raw_path": path.encode()}
        request = Request(scope, _Exchange(websocket, body).receive)
        response = await endpoint(**params, request=request)
    except ApiError as exc:
        response = error_response(exc)
    except TupleSpaceError as exc:
        response = error_response(api_error(exc, shutting_down=api.stopping))
    return b"%d\n%s" % (response.status_code, response.body)
