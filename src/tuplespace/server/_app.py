"""The HTTP API of docs/http-api.md, as a FastAPI application: the HTTP adapter of the service.

A route per operation of the table hands its handler a :class:`ServiceRequest`
made of the HTTP request, and sends what the handler answers (an
:class:`~._service.Answer`, or the :class:`~._service.Messages` of an event
stream) as the HTTP response; the errors it raises become their status and body
through ``api_error``.  Handlers read the body with orjson and decode tuples and
templates with the wire codec; no model validates a request on the way in (the
request schemas exist for the OpenAPI document only).  Every request is checked
whole before it acts.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from .._errors import TupleSpaceError
from .._httpapi import OPERATIONS, Operation
from .._recordstore import DEFAULT_BASE_URI
from .._schemes import SCHEMES
from .._schemes import scheme as find_scheme
from ._auth import ALL, Tokens, valid_space_name
from ._dashboard import install_dashboard
from ._errors import ApiError, api_error
from ._guard import Guard, Policy, error_response
from ._hosting import Hub
from ._openapi import install as install_openapi
from ._openapi import route_options
from ._requests import ServiceRequest
from ._service import JSON, Answer, Messages, Notice, ServerLimits
from ._service_api import Api

if TYPE_CHECKING:
    from .._federation import Node

__all__ = ["create_app"]


def create_app(
    data_dir: str | Path | None = None,
    *,
    store: str | None = None,
    tokens: str | Path | dict[str, Any] | None = None,
    anonymous: set[str] | frozenset[str] | None = None,
    long_poll: float = 30.0,
    claim_lease: float = 30.0,
    limits: ServerLimits | None = None,
    heartbeat: float = 15.0,
    cors_origins: Iterable[str] = (),
    allowed_hosts: Iterable[str] = (),
    node: Node | None = None,
    spaces: Iterable[str] = (),
) -> FastAPI:
    """The ASGI application of a PyTupleSpace server (see docs/http-api.md).

    >>> app = create_app("./tuplespace-data")     # doctest: +SKIP
    >>> uvicorn.run(app, port=8765)                # doctest: +SKIP

    - ``data_dir``: where durable spaces are kept (``spaces.db``, with the catalog of the
      server's spaces).
    - ``store``: ``"durable"`` or ``"memory"``, how spaces are kept unless they ask
      otherwise; by default durable when there is a ``data_dir``, else memory.  Or the
      URL of the store that keeps the server's spaces, instead of a ``data_dir``:
      ``memory:``, ``sqlite:PATH`` (a SQLite file, as ``data_dir`` makes
      ``DATA_DIR/spaces.db``), ``redis://host:port/db`` or ``redis+cluster://host:port``
      (the spaces and their catalog kept in Redis, so every server on it hosts the
      same spaces; see docs/scaling.md).
    - ``tokens``: a token file (a path) or its content (a dict); None: the server
      checks no tokens and every request may do everything.
    - ``anonymous``: permissions of requests without a token on spaces created
      without their own ``anonymous`` list (default: none).
    - ``long_poll``: the longest a request waits, in seconds.
    - ``claim_lease``: how long a claimed take waits for its confirmation.
    - ``limits``: :class:`ServerLimits`.
    - ``heartbeat``: seconds between keep-alive comments on an idle event stream.
    - ``cors_origins``: the origins (``https://app.example``, or ``*``) whose web
      pages may call the API from a browser; none by default: a request with an
      ``Origin`` that is not the server's own is refused.
    - ``allowed_hosts``: the names (``tuples.example``, or ``*``) a request's ``Host``
      may give besides IP addresses and ``localhost``; others are refused, against
      DNS rebinding.
    - ``node``: a :class:`tuplespace.Node` that serves the server's spaces over CoAP
      too (docs/federation.md, Serving a node): every space kept in this process, the
      same space over HTTP and CoAP, its records named under the node's base URI.
    - ``spaces``: names of spaces made at start (in the default store) unless they
      exist, for clients that cannot make one (CoAP's).

    Raises ``ValueError`` for invalid options or an invalid token file.
    """
    store, host_url = _store(data_dir, store)
    for name, value in (("long_poll", long_poll), ("claim_lease", claim_lease), ("heartbeat", heartbeat)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    default_anonymous = frozenset(anonymous or ())
    unknown = default_anonymous - ALL
    if unknown:
        raise ValueError(
            f"unknown permission {sorted(unknown)[0]!r}; permissions are {', '.join(sorted(ALL))}"
        )
    made = list(spaces)
    for name in made:
        if not valid_space_name(name):
            raise ValueError(
                f"{name!r} is not a space name: 1 to 128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
    origins = list(cors_origins)
    policy = Policy(allowed_hosts, origins)
    limits = limits or ServerLimits()
    host = None
    if host_url is not None:
        found = find_scheme(urlsplit(host_url).scheme)
        assert found is not None
        host = found.host(host_url, limits.wire, DEFAULT_BASE_URI if node is None else node.base_uri)
    hub = Hub(host, store, default_anonymous, limits.wire, limits.max_transactions, limits.max_spaces, node)
    api = Api(hub, Tokens(tokens), limits, float(long_poll), float(claim_lease), float(heartbeat))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(hub.start)
        hub.follow()
        for name in made:
            await hub.create(name, {})
        try:
            yield
        finally:
            await api.close()

    app = FastAPI(
        title="PyTupleSpace",
        version=__version__,
        description="A tuple space over HTTP: see docs/http-api.md.",
        lifespan=lifespan,
        docs_url=None,  # served with the dashboard, from files of its own
        redoc_url=None,
    )
    app.state.api = api
    app.state.policy = policy
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(Guard, policy=policy, budget=api.budget)  # outermost: before CORS answers a preflight
    _routes(app, api)
    install_dashboard(app)
    _error_handlers(app, api)
    install_openapi(app, ("memory",) if data_dir is None else ("durable", "memory"))
    return app


def _store(data_dir: str | Path | None, store: str | None) -> tuple[str, str | None]:
    """How spaces are kept unless they ask otherwise (``"durable"`` or ``"memory"``),
    and the URL of the store of durable spaces (None: the server keeps none)."""
    if store is None:
        store = "memory" if data_dir is None else "durable"
    if store in ("durable", "memory"):
        if data_dir is None:
            if store == "durable":
                raise ValueError("a durable server needs a data_dir or a store URL")
            return store, None
        path = str(Path(data_dir) / "spaces.db")
        if "?" in path or "#" in path:
            raise ValueError(f"the data directory {str(data_dir)!r} holds '?' or '#': give it another name")
        return store, f"sqlite:{path}"
    scheme = urlsplit(store).scheme
    if find_scheme(scheme) is None or ":" not in store:
        names = ", ".join(f"{name}:" for name in SCHEMES)
        raise ValueError(f'store is "durable", "memory" or the URL of a store ({names}), not {store!r}')
    if data_dir is not None:
        raise ValueError("give a data_dir or a store URL, not both")
    if scheme == "memory":
        if store != "memory:":
            raise ValueError(f"{store!r}: a server's memory store takes no options (write memory:)")
        return "memory", None
    return "durable", store


def _routes(app: FastAPI, api: Api) -> None:
    """A route for each operation of the table, to the handler of its name."""
    for op in OPERATIONS:
        endpoint = _endpoint(op, getattr(api, op.name))
        app.add_api_route(op.path, endpoint, response_class=Response, **route_options(op))


def _endpoint(op: Operation, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Response]]:
    """The HTTP face of the handler of the operation ``op``: FastAPI gives it the
    path's parameters (checked against the handler's signature) and the request, of
    which it hands the handler a :class:`ServiceRequest`; what the handler answers
    goes out as an :class:`AnswerResponse`, or an :class:`EventStream` when ``op``
    streams."""
    respond: Callable[[Any], Response] = EventStream if op.streams else AnswerResponse

    async def endpoint(request: Request, **params: Any) -> Response:
        client = request.client
        headers = request.headers
        incoming = ServiceRequest(
            headers.get("authorization"),
            None if client is None else client.host,
            functools.partial(_body, request),
            functools.partial(_watch_disconnect, request.receive),
            request.query_params.multi_items(),
            headers.get("last-event-id"),
        )
        return respond(await handler(**params, request=incoming))

    signature = inspect.signature(handler, eval_str=True)
    parameters = [
        p.replace(annotation=Request) if p.name == "request" else p for p in signature.parameters.values()
    ]
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=Response
    )
    return endpoint


async def _body(request: Request, max_body: int) -> tuple[bytes, int]:
    """The body of ``request`` and its size, as it arrives (see ``ReceiveBody``)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > max_body:
        return b"", int(declared)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            return b"", size
        chunks.append(chunk)
    return b"".join(chunks), size


def _watch_disconnect(receive: Receive, callback: Callable[[], object]) -> Callable[[], None]:
    """Call ``callback`` when the client of an HTTP request goes away, as a task waiting
    for its disconnection tells; returns what stops the watch."""

    def gone_away(_: object) -> None:
        callback()

    gone = asyncio.get_running_loop().create_task(_disconnected(receive))
    gone.add_done_callback(gone_away)

    def unwatch() -> None:
        gone.remove_done_callback(gone_away)
        gone.cancel()

    return unwatch


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


_JSON_TYPE = (b"content-type", JSON.encode())


class AnswerResponse(Response):
    """An :class:`~._service.Answer` as an HTTP response: its status, its body, and
    the headers of its length (but of a 204 or 304) and of its media type, sent as it
    is (so a ``text/`` type names its own charset)."""

    def __init__(self, answer: Answer) -> None:
        status = self.status_code = answer.status_code
        self.background = None
        body = self.body = answer.body
        media = answer.media_type
        headers = [] if status < 200 or status in (204, 304) else [(b"content-length", b"%d" % len(body))]
        if media is not None:
            headers.append(_JSON_TYPE if media == JSON else (b"content-type", media.encode("latin-1")))
        self.raw_headers = headers


class EventStream(Response):
    """The :class:`~._service.Messages` of an event stream as Server-Sent Events, sent
    until they end or the client goes away; either way their ``end`` is awaited then
    (it ends the subscription).  A notice is an event (``id:``, ``event:`` and its JSON
    ``data:``), or a comment line."""

    media_type = "text/event-stream"

    def __init__(self, messages: Messages) -> None:
        # No body and so no Content-Length: the stream is as long as it lasts.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.notices = messages.notices
        self.end = messages.end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        streaming = loop.create_task(self._send_all(send))
        gone = loop.create_task(_disconnected(receive))
        try:
            await asyncio.wait((streaming, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, gone):
                task.cancel()
            await asyncio.wait((streaming, gone))
            await self.notices.aclose()
            await self.end()
        if not streaming.cancelled() and streaming.exception() is not None:
            raise streaming.exception()  # type: ignore[misc]

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for notice in self.notices:
            await send({"type": "http.response.body", "body": _event(notice), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(notice: Notice) -> bytes:
    """``notice`` as a Server-Sent Event, or a comment."""
    if notice.kind is None:
        return b": %s\n\n" % notice.data.encode()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (notice.seq, notice.kind.encode(), orjson.dumps(notice.data))


def _error_handlers(app: FastAPI, api: Api) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_space_error(request: Request, exc: Exception) -> Response:
        return error_response(api_error(exc, shutting_down=api.stopping))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = _methods_of(app, request)
            error = ApiError(
                405,
                "method_not_allowed",
                f"{request.url.path} takes {', '.join(allowed)}, not {request.method}",
            )
            error.headers["Allow"] = ", ".join(allowed)
            return error_response(error)
        code = {404: "not_found"}.get(exc.status_code, "bad_request")
        error = ApiError(exc.status_code, code, str(exc.detail))
        error.headers.update(exc.headers or {})
        return error_response(error)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("path", "query", "body")]
        return error_response(
            ApiError(400, "bad_request", str(first.get("msg", "invalid request")), ".".join(location) or None)
        )

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        # The client left (or was cut off) before its body arrived: nobody to answer.
        return Response(status_code=400)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(TupleSpaceError, on_space_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _methods_of(app: FastAPI, request: Request) -> list[str]:
    """The methods the routes of the request's path take (each method is a route of its own)."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= route.methods or set()
    return sorted(methods)
