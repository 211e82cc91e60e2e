"""Events as Server-Sent Events: a subscription per stream, resumable by sequence number."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._codec import to_wire
from .._errors import EventsLost, InvalidValue, Timeout
from .._events import EVENT_KINDS, Event
from .._httpapi import OPERATION
from ..client._primitives import AsyncOpenable
from ._errors import coded
from ._requests import ServiceRequest, parse_template_text, query_params
from ._service import ApiBase, Caller, disconnected

if TYPE_CHECKING:
    from ._service import Stream

__all__ = ["EventRoutes", "EventStream", "since_param"]


E = TypeVar("E", covariant=True)


class Watch(Protocol[E]):
    """A subscription or a record watch, as a stream reads it."""

    async def get(self, timeout: float | None = None) -> E | None: ...

    async def close(self) -> None: ...


W = TypeVar("W", bound="Stream")


class EventRoutes(ApiBase):
    """The event stream of a space."""

    # -- events ------------------------------------------------------------------------------

    async def events(self, space: str, request: ServiceRequest) -> Response:
        caller = self.caller(request)
        info = await self.authorize(caller, space, OPERATION["events"])
        params, kinds, since = self.stream_params(
            request, ("template", "events", "since", "existing"), EVENT_KINDS
        )
        text = params.get("template")
        if text is None:
            raise coded(InvalidValue("template is required", "template"), "bad_request")
        template = parse_template_text(text, self.limits.wire)
        existing = _existing(params.get("existing"))
        if existing and "since" in params:
            message = (
                "existing=true starts a stream with the tuples present; since resumes one: give one of them"
            )
            raise coded(InvalidValue(message, "existing"), "bad_request")
        # A stream resumed after an event (Last-Event-ID) goes on with the live events:
        # the present ones were sent before it.
        existing = existing and since is None
        target = await self.space(caller, space, info)
        return await self.open_stream(
            caller,
            since,
            lambda after: target.aspace.subscribe(
                template,
                kinds,
                since=after,
                max_pending=self.limits.max_pending,
                existing=existing,
            ),
            _event,
        )

    @staticmethod
    def stream_params(
        request: ServiceRequest, names: tuple[str, ...], all_kinds: frozenset[str]
    ) -> tuple[Mapping[str, str], frozenset[str], int | None]:
        """The query of a stream, holding only ``names``; its ``events`` (a subset of
        ``all_kinds``, all by default); the event to resume after (``Last-Event-ID``,
        else ``since``)."""
        params = query_params(request.query, names)
        kinds = all_kinds
        if "events" in params:
            kinds = frozenset(k for k in params["events"].split(",") if k)
            if not kinds or not kinds <= all_kinds:
                message = f"events is a comma-separated list of {', '.join(sorted(all_kinds))}"
                raise coded(InvalidValue(message, "events"), "bad_request")
        since = since_param(request.last_event_id, "Last-Event-ID")
        if since is None:
            since = since_param(params.get("since"), "since")
        return params, kinds, since

    async def open_stream(
        self,
        caller: Caller,
        since: int | None,
        open_watch: Callable[[int | None], W],
        message: Callable[[Any], bytes],
    ) -> Response:
        """The event stream of ``open_watch(since)``: if the events after ``since`` are
        gone, it opens after the oldest left and says what was lost first.  It ends
        when its client goes away, the server shuts down or the caller's token is
        revoked.  A watch that opens when awaited (a space kept in Redis) is opened
        before the stream begins, so what it refuses is the request's answer."""
        self.token_work.check(caller.grant)
        state = self.stream_room(caller)
        lost: EventsLost | None = None
        while True:
            try:
                watch = open_watch(since)
                if isinstance(watch, AsyncOpenable):
                    await watch
                break
            except EventsLost as exc:
                lost = exc
                since = exc.oldest_available - 1
            except BaseException:
                self.hub.release_client(caller.client)
                raise
        state.subscriptions += 1
        self.streams.add(watch)
        self.token_work.add(caller.grant, watch.close)

        async def end() -> None:
            self.streams.discard(watch)
            self.token_work.discard(caller.grant, watch.close)
            await watch.close()
            state.subscriptions -= 1
            self.hub.release_client(caller.client)

        return EventStream(self._stream(watch, lost, message), end)

    async def _stream(
        self, sub: Watch[E], lost: EventsLost | None, message: Callable[[E], bytes]
    ) -> AsyncGenerator[bytes, None]:
        """The messages of a stream: a greeting (or the news of events lost), then an
        event (a tuple's or a record's: ``message`` writes it) at a time, and a
        keep-alive comment whenever the stream is idle for a heartbeat."""
        if lost is not None:
            yield _lost(lost)
        else:
            yield b": subscribed\n\n"
        while True:
            try:
                event = await sub.get(self.heartbeat)
            except Timeout:
                yield b": keep-alive\n\n"
                continue
            except EventsLost as exc:
                yield _lost(exc)
                continue
            if event is None:
                return
            yield message(event)


def since_param(value: str | None, field: str) -> int | None:
    """The event to resume after, from a ``since`` parameter or a ``Last-Event-ID`` header."""
    if not value:  # absent, or the empty Last-Event-ID of a stream that had no event yet
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise coded(InvalidValue(f"{field} is an event sequence number", field), "bad_request")
    return int(value)


def _existing(value: str | None) -> bool:
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise coded(InvalidValue("existing is true or false", "existing"), "bad_request")


def _event(event: Event) -> bytes:
    data = orjson.dumps(
        {"seq": event.seq, "kind": event.kind, "tuple": to_wire(event.tuple), "time": event.time}
    )
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.kind.encode(), data)


def _lost(exc: EventsLost) -> bytes:
    data = orjson.dumps({"first_missing": exc.first_missing, "oldest_available": exc.oldest_available})
    return b"id: %d\nevent: lost\ndata: %s\n\n" % (exc.oldest_available - 1, data)


class EventStream(Response):
    """A stream of Server-Sent Events, sent until the generator ends or the client
    goes away; either way ``end`` is awaited then (it ends the subscription)."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncGenerator[bytes, None], end: Callable[[], Awaitable[None]]) -> None:
        # No body and so no Content-Length: the stream is as long as it lasts.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.chunks = chunks
        self.end = end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        streaming = loop.create_task(self._send_all(send))
        gone = loop.create_task(disconnected(receive))
        try:
            await asyncio.wait((streaming, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, gone):
                task.cancel()
            await asyncio.wait((streaming, gone))
            await self.chunks.aclose()
            await self.end()
        if not streaming.cancelled() and streaming.exception() is not None:
            raise streaming.exception()  # type: ignore[misc]

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
