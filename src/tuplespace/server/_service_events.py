"""Event streams: a subscription per stream, resumable by sequence number, answered as
the notices that the HTTP adapter sends as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._codec import to_wire
from .._errors import EventsLost, InvalidValue, Timeout
from .._events import EVENT_KINDS, Event
from .._httpapi import OPERATION
from ..client._primitives import AsyncOpenable
from ._errors import coded
from ._requests import ServiceRequest, parse_template_text, query_params
from ._service import ApiBase, Caller, Messages, Notice

if TYPE_CHECKING:
    from ._service import Stream

__all__ = ["EventRoutes", "event_kinds", "existing_param", "since_param"]


E = TypeVar("E", covariant=True)


class Watch(Protocol[E]):
    """A subscription or a record watch, as a stream reads it."""

    async def get(self, timeout: float | None = None) -> E | None: ...

    async def close(self) -> None: ...


W = TypeVar("W", bound="Stream")

_SUBSCRIBED = Notice(None, "subscribed")
_KEEP_ALIVE = Notice(None, "keep-alive")


class EventRoutes(ApiBase):
    """The event stream of a space."""

    # -- events ------------------------------------------------------------------------------

    async def events(self, space: str, request: ServiceRequest) -> Messages:
        caller = self.caller(request)
        info = await self.authorize(caller, space, OPERATION["events"])
        params, kinds, since = self.stream_params(
            request, ("template", "events", "since", "existing"), EVENT_KINDS
        )
        text = params.get("template")
        if text is None:
            raise coded(InvalidValue("template is required", "template"), "bad_request")
        template = parse_template_text(text, self.limits.wire)
        existing = existing_param(params.get("existing"))
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
        kinds = event_kinds(params.get("events"), all_kinds)
        since = since_param(request.last_event_id, "Last-Event-ID")
        if since is None:
            since = since_param(params.get("since"), "since")
        return params, kinds, since

    async def open_stream(
        self,
        caller: Caller,
        since: int | None,
        open_watch: Callable[[int | None], W],
        notice: Callable[[Any], Notice],
    ) -> Messages:
        """The event stream of ``open_watch(since)``, each event said by ``notice``: if
        the events after ``since`` are gone, it opens after the oldest left and says
        what was lost first.  It ends when its client goes away, the server shuts down
        or the caller's token is revoked.  A watch that opens when awaited (a space kept in Redis) is opened
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

        return Messages(self._stream(watch, lost, notice), end)

    async def _stream(
        self, sub: Watch[E], lost: EventsLost | None, notice: Callable[[E], Notice]
    ) -> AsyncGenerator[Notice, None]:
        """The notices of a stream: a greeting (or the news of events lost), then an
        event (a tuple's or a record's: ``notice`` says it) at a time, and a
        keep-alive comment whenever the stream is idle for a heartbeat."""
        if lost is not None:
            yield _lost(lost)
        else:
            yield _SUBSCRIBED
        while True:
            try:
                event = await sub.get(self.heartbeat)
            except Timeout:
                yield _KEEP_ALIVE
                continue
            except EventsLost as exc:
                yield _lost(exc)
                continue
            if event is None:
                return
            yield notice(event)


def since_param(value: str | None, field: str) -> int | None:
    """The event to resume after, from a ``since`` parameter or a ``Last-Event-ID`` header."""
    if not value:  # absent, or the empty Last-Event-ID of a stream that had no event yet
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise coded(InvalidValue(f"{field} is an event sequence number", field), "bad_request")
    return int(value)


def event_kinds(value: str | None, all_kinds: frozenset[str]) -> frozenset[str]:
    """The kinds of events an ``events`` parameter asks for (``a,b``, a subset of
    ``all_kinds``; every one of them when it is not given)."""
    if value is None:
        return all_kinds
    kinds = frozenset(k for k in value.split(",") if k)
    if not kinds or not kinds <= all_kinds:
        message = f"events is a comma-separated list of {', '.join(sorted(all_kinds))}"
        raise coded(InvalidValue(message, "events"), "bad_request")
    return kinds


def existing_param(value: str | None) -> bool:
    """Whether an ``existing`` parameter (``true`` or ``false``, the default) asks
    for the tuples present first."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise coded(InvalidValue("existing is true or false", "existing"), "bad_request")


def _event(event: Event) -> Notice:
    data = {"seq": event.seq, "kind": event.kind, "tuple": to_wire(event.tuple), "time": event.time}
    return Notice(event.kind, data, event.seq)


def _lost(exc: EventsLost) -> Notice:
    data = {"first_missing": exc.first_missing, "oldest_available": exc.oldest_available}
    return Notice("lost", data, exc.oldest_available - 1)
