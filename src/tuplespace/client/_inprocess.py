"""The in-process transport: a remote space whose server application runs in this
process, called without sockets (as httpx's ``ASGITransport`` calls an application).

>>> app = tuplespace.server.create_app(store="memory")                  # doctest: +SKIP
>>> space = tuplespace.connect("http://localhost/spaces/jobs", app=app)  # doctest: +SKIP
>>> space.write(("job", 1))                                              # doctest: +SKIP

The URL only names the server (its host must be one the server serves: localhost).
The application (an ASGI application, what :func:`tuplespace.server.create_app`
returns) runs on an event loop of its own, in a thread, from its first space on: its
lifespan starts there (the store opens) and ends at interpreter exit, so every space,
sync or async, of one application sees the same server.  Each request is an ASGI call
whose answer streams back as it is sent (a subscription's events arrive one by one);
closing a space ends the calls it still waits on, and the server learns that their
client went away, as it does from a socket.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, MutableMapping
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx

from ._async_transport import AsyncHTTPTransport
from ._sync_transport import HTTPTransport

__all__ = ["AsyncInProcessTransport", "InProcessTransport"]

T = TypeVar("T")
Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Coroutine[Any, Any, None]]

# Chunks of an answer sent by the application and not read yet, at most: the
# application waits beyond, as it would on a socket's full buffer.
_MOST_CHUNKS = 16
# How long interpreter exit waits for the application's lifespan to end.
_SHUTDOWN_WAIT = 10.0


class _Gone(httpx.ReadError):
    """The call ended before its answer: its transport was closed."""


class _Call:
    """One ASGI call of the application, on the application's loop: the request's body
    in, the answer's start and chunks out, ``http.disconnect`` once it is let go."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any], body: bytes) -> None:
        self._body: bytes | None = body
        self._left = asyncio.Event()
        self._start: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self._changed = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self._receive, self._send)
        except Exception as exc:
            await self._end(httpx.RemoteProtocolError(f"the application failed: {exc!r}"))
        else:
            await self._end(None)

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if not self._start.done():
                self._start.set_result((message["status"], list(message.get("headers", []))))
            return
        if message["type"] != "http.response.body":
            return
        async with self._changed:
            body = message.get("body", b"")
            if body:
                await self._changed.wait_for(lambda: len(self._chunks) < _MOST_CHUNKS or self._left.is_set())
                if self._left.is_set():
                    return
                self._chunks.append(body)
            if not message.get("more_body", False):
                self._ended = True
            self._changed.notify_all()

    async def _end(self, error: BaseException | None) -> None:
        if not self._start.done():
            self._start.set_exception(error or httpx.RemoteProtocolError("the application sent no answer"))
        async with self._changed:
            if not self._ended:
                self._error = error or httpx.RemoteProtocolError("the answer ended early")
            self._ended = True
            self._changed.notify_all()

    async def start(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        return await asyncio.shield(self._start)

    async def chunk(self) -> bytes | None:
        """The answer's next chunk; None once it has ended."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._chunks) or self._ended)
            if self._chunks:
                chunk = self._chunks.popleft()
                self._changed.notify_all()
                return chunk
            if self._error is not None:
                raise self._error
            return None

    async def leave(self, error: BaseException | None = None) -> None:
        """Let the call go: the application is told its client went away; a read still
        waiting raises ``error`` (when given)."""
        self._left.set()
        if error is not None:
            if not self._start.done():
                self._start.set_exception(error)
            async with self._changed:
                self._chunks.clear()
                self._error = self._error or error
                self._ended = True
                self._changed.notify_all()
        else:
            async with self._changed:
                self._changed.notify_all()


class _Application:
    """An ASGI application run on an event loop of its own, in a daemon thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._state: dict[str, Any] = {}
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="tuplespace-in-process", daemon=True
        )
        self.thread.start()
        self._messages: asyncio.Queue[Message] | None = None
        self._lifespan: Future[None] | None = None
        try:
            self.run(self._start_lifespan()).result()
        except BaseException:
            self._stop_loop()
            raise
        # At exit, before the thread pools stop (atexit is too late: the lifespan's end
        # runs the store's closing in a thread); the hooks run in reverse order of
        # registration, so this one runs before that of concurrent.futures.
        threading._register_atexit(self.stop)  # type: ignore[attr-defined]  # noqa: SLF001 (no public hook runs so early)

    def run(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _start_lifespan(self) -> None:
        self._messages = asyncio.Queue()
        self._messages.put_nowait({"type": "lifespan.startup"})
        started: asyncio.Future[None] = self.loop.create_future()

        async def send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and not started.done():
                started.set_exception(
                    RuntimeError(f"the application did not start: {message.get('message')}")
                )
            elif message["type"] == "lifespan.startup.complete" and not started.done():
                started.set_result(None)

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
        lifespan = self.loop.create_task(self.app(scope, self._messages.get, send))
        await asyncio.wait([started, lifespan], return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            lifespan.result()  # the application's own error, raised here
            raise RuntimeError("the application ended its lifespan before it started")
        started.result()
        self._lifespan = asyncio.run_coroutine_threadsafe(_finished(lifespan), self.loop)

    def stop(self) -> None:
        """End the application's lifespan (its store closes), then its loop."""
        lifespan, self._lifespan = self._lifespan, None
        if self._messages is not None and lifespan is not None:
            self.loop.call_soon_threadsafe(self._messages.put_nowait, {"type": "lifespan.shutdown"})
            lifespan.result(_SHUTDOWN_WAIT)
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(_SHUTDOWN_WAIT)
        if not self.thread.is_alive():
            self.loop.close()

    async def open(self, request: httpx.Request, body: bytes) -> _Call:
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
            "state": dict(self._state),
        }
        return _Call(self.app, scope, body)


async def _finished(task: asyncio.Task[None]) -> None:
    await task


_LOCK = threading.Lock()
_APPLICATIONS: dict[int, _Application] = {}


def _application(app: ASGIApp) -> _Application:
    """The running application of ``app``: started at its first call, kept to interpreter exit."""
    with _LOCK:
        running = _APPLICATIONS.get(id(app))
        if running is None or running.app is not app:
            running = _APPLICATIONS[id(app)] = _Application(app)
        return running


class _Calls:
    """The calls of one httpx transport still going, to let go when it is closed."""

    def __init__(self, application: _Application) -> None:
        self.application = application
        self._lock = threading.Lock()
        self._calls: set[_Call] = set()
        self._closed = False

    def add(self, call: _Call) -> None:
        with self._lock:
            if not self._closed:
                self._calls.add(call)
                return
        self.leave(call, _Gone("the transport was closed"))

    def leave(self, call: _Call, error: BaseException | None = None) -> None:
        with self._lock:
            self._calls.discard(call)
        self.application.run(call.leave(error))

    def extensions(self, call: _Call) -> dict[str, Any]:
        """The extensions of the response of ``call``: ``interrupt`` lets it go at once
        (see :meth:`AsyncInProcessTransport.interrupt`)."""
        return {"interrupt": lambda: self.leave(call, _Gone("the stream was interrupted"))}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            calls, self._calls = self._calls, set()
        for call in calls:
            self.application.run(call.leave(_Gone("the transport was closed")))


class _ASGIByteStream(httpx.SyncByteStream):
    def __init__(self, calls: _Calls, call: _Call) -> None:
        self._calls = calls
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._calls.application.run(self._call.chunk()).result()) is not None:
            yield chunk

    def close(self) -> None:
        self._calls.leave(self._call)


class _AsyncASGIByteStream(httpx.AsyncByteStream):
    def __init__(self, calls: _Calls, call: _Call) -> None:
        self._calls = calls
        self._call = call

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (
            chunk := await asyncio.wrap_future(self._calls.application.run(self._call.chunk()))
        ) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._calls.leave(self._call)


class _ASGITransport(httpx.BaseTransport):
    """An httpx transport that calls an ASGI application run by :class:`_Application`."""

    def __init__(self, app: ASGIApp) -> None:
        self._calls = _Calls(_application(app))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        application = self._calls.application
        if threading.current_thread() is application.thread:
            raise RuntimeError(
                "a blocking request to an application in this process, made on that application's "
                "own event loop, would wait forever: use an async space there"
            )
        call = application.run(application.open(request, request.read())).result()
        self._calls.add(call)
        try:
            status, headers = application.run(call.start()).result()
        except BaseException:
            self._calls.leave(call)
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=_ASGIByteStream(self._calls, call),
            extensions=self._calls.extensions(call),
        )

    def close(self) -> None:
        self._calls.close()


class _AsyncASGITransport(httpx.AsyncBaseTransport):
    """:class:`_ASGITransport` for an async client."""

    def __init__(self, app: ASGIApp) -> None:
        self._calls = _Calls(_application(app))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        application = self._calls.application
        body = await request.aread()
        call = await asyncio.wrap_future(application.run(application.open(request, body)))
        self._calls.add(call)
        try:
            status, headers = await asyncio.wrap_future(application.run(call.start()))
        except BaseException:
            self._calls.leave(call)
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=_AsyncASGIByteStream(self._calls, call),
            extensions=self._calls.extensions(call),
        )

    async def aclose(self) -> None:
        self._calls.close()


class AsyncInProcessTransport(AsyncHTTPTransport):
    """Requests of an :class:`~tuplespace.client.AsyncRemoteSpace` to a server
    application in this process (``app=``), without sockets."""

    def __init__(
        self, url: str, base: str, headers: dict[str, str], connect_timeout: float, **options: Any
    ) -> None:
        self._app: ASGIApp = options.pop("app")
        super().__init__(url, base, headers, connect_timeout, **options)

    def new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base,
            headers=self.headers,
            timeout=self.timeout,
            transport=_AsyncASGITransport(self._app),
        )

    def sync_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers=self.headers,
            timeout=self.timeout,
            transport=_ASGITransport(self._app),
        )


class InProcessTransport(HTTPTransport):
    """Requests of a :class:`~tuplespace.client.RemoteSpace` to a server application
    in this process (``app=``), without sockets."""

    def __init__(
        self, url: str, base: str, headers: dict[str, str], connect_timeout: float, **options: Any
    ) -> None:
        self._app: ASGIApp = options.pop("app")
        super().__init__(url, base, headers, connect_timeout, **options)

    def new_client(self) -> httpx.Client:
        return self.sync_client()

    def sync_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers=self.headers,
            timeout=self.timeout,
            transport=_ASGITransport(self._app),
        )

    def interrupt(self, response: httpx.Response) -> None:
        response.extensions["interrupt"]()
