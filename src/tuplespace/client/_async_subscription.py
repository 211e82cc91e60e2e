"""Subscriptions to a remote space: events read from a Server-Sent Events stream
(docs/http-api.md), in the background, resumed after the last event received when
the connection breaks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import orjson

from .._errors import EventsLost, SpaceClosed, Timeout, TupleSpaceError, UnknownLease
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, Event
from ._common import (
    ServerEvents,
    change_from_wire,
    check_lease,
    check_timeout,
    error_code,
    error_from_answer,
    event_from_wire,
    logger,
    unreachable,
)
from ._primitives import AsyncBackground, AsyncLater, AsyncLock, AsyncMailbox, AsyncOpenable, AsyncSignal

if TYPE_CHECKING:
    from ._async import AsyncRemoteSpace

__all__ = ["AsyncRemoteRecordWatch", "AsyncRemoteStream", "AsyncRemoteSubscription"]

_EVENT_STREAM = {"Accept": "text/event-stream"}
_RECONNECT_DELAYS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

_END = object()  # put in the mailbox when the stream is over for good

E = TypeVar("E", Event, Change)


class AsyncRemoteStream(AsyncOpenable, Generic[E]):
    """What a subscription and a record watch share: events of type ``E`` read in the
    background from a Server-Sent Events stream, at most ``max_pending`` ahead of
    the reader; if the connection breaks, it reconnects and resumes after the last
    event received.  Events the server's log no longer holds raise
    :class:`~tuplespace.EventsLost`, and iteration can go on after it.
    """

    _route = "events"
    _kinds: frozenset[str] = EVENT_KINDS
    _decode: Callable[[dict[str, Any]], E]

    def __init__(
        self,
        space: AsyncRemoteSpace,
        params: dict[str, str],
        since: int | None,
        max_pending: int,
        lease: float | None,
    ) -> None:
        self._space = space
        self._params = params
        self._ended = False  # the stream's last event has come: it is not to be resumed
        self._received = since  # where to resume: the last event id the stream gave
        self._opening = AsyncLock()
        self._opened = False
        self._closed = False
        self._stopping = AsyncSignal()
        self._mailbox: AsyncMailbox[Any] = AsyncMailbox(max_pending)
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._parser = ServerEvents()
        self._pump: AsyncBackground | None = None
        self._lease = lease
        self._lease_end = AsyncLater()
        self._last_seq = since or 0
        self._delivered = 0
        self._reconnects = 0

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event delivered: resume with ``since=`` it."""
        return self._last_seq

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> dict[str, Any]:
        """Events delivered and waiting here, the last one, and how often the stream
        had to reconnect."""
        return {
            "pending": len(self._mailbox),
            "delivered": self._delivered,
            "last_seq": self._last_seq,
            "closed": self._closed,
            "reconnects": self._reconnects,
        }

    async def _open(self) -> None:
        async with self._opening:
            if self._opened or self._closed:
                return
            self._space.check_open()
            await self._connect(initial=True)
            self._opened = True
            self._space.open_streams.add(self)
            if self._lease is not None:
                self._lease_end.schedule(self._lease, self.close)
            self._pump = AsyncBackground(self._read_events)

    async def _connect(self, initial: bool) -> None:
        """Open the event stream after the last event received, and read the server's
        first message: a greeting once the subscription is in place, or the news that
        events were lost (raised at once when the subscription opens, as embedded)."""
        space = self._space
        headers = dict(_EVENT_STREAM)
        if self._received is not None:
            headers["Last-Event-ID"] = str(self._received)
        try:
            response = await space.open_stream(self._route, self._params, headers)
        except (httpx.TransportError, RuntimeError) as exc:
            if space.closed or self._closed:
                raise SpaceClosed("the space was closed") from None
            raise unreachable(space.url, exc) from exc
        if response.status_code >= 400:
            content = await response.aread()
            await response.aclose()
            raise error_from_answer(response.status_code, content, space.url)
        self._response = response
        self._lines = response.aiter_lines()
        self._parser = ServerEvents()
        try:
            kind, data = await self._next_message()
        except (EOFError, httpx.TransportError) as exc:
            await self._drop_stream()
            if space.closed or self._closed:
                raise SpaceClosed("the space was closed") from None
            raise unreachable(space.url, exc) from exc
        if kind == "lost" and initial:
            await self._drop_stream()
            raise _lost(data)
        if kind:
            await self._deliver(kind, data)

    async def _next_message(self) -> tuple[str, str]:
        """The next message of the stream, ``("", comment)`` for a comment;
        ``EOFError`` when the stream has ended."""
        assert self._lines is not None
        async for line in self._lines:
            message = self._parser.feed(line)
            if self._parser.last_id is not None:
                self._received = int(self._parser.last_id)
            if message is not None:
                return message
        raise EOFError

    async def _deliver(self, kind: str, data: str) -> None:
        """Put an event (or the news of lost ones) in the mailbox; one the server sent
        that cannot be read is put there as the error that says why."""
        if kind != "lost" and kind not in self._kinds:
            return
        try:
            item: Any = _lost(data) if kind == "lost" else self._decode(orjson.loads(data))
        except (TupleSpaceError, ValueError, KeyError, TypeError) as exc:
            item = TupleSpaceError(f"an event from {self._space.url} cannot be read: {exc}")
        await self._mailbox.put(item)
        if self._last(kind):
            self._ended = True
            await self._mailbox.put(_END)

    def _last(self, kind: str) -> bool:
        """Whether an event of ``kind`` is the last of the stream."""
        return False

    async def _read_events(self) -> None:
        try:
            await self._follow()
        except Exception as exc:  # a fault here must not leave the subscriber waiting forever
            logger.exception("reading the events of %s failed", self._space.url)
            await self._mailbox.put(TupleSpaceError(f"reading the events of {self._space.url} failed: {exc}"))
            await self._mailbox.put(_END)

    async def _follow(self) -> None:
        """Read the stream into the mailbox; reconnect and resume when it breaks."""
        failures = 0
        while not self._closed and not self._ended:
            try:
                if self._response is None:
                    await self._connect(initial=False)
                    self._reconnects += 1
                    failures = 0
                while not self._closed and not self._ended:
                    kind, data = await self._next_message()
                    await self._deliver(kind, data)
            except (EOFError, httpx.TransportError, SpaceClosed):
                pass  # the stream ended or broke: connect again
            except EventsLost as exc:
                await self._mailbox.put(exc)
                self._received = exc.oldest_available - 1
            except TupleSpaceError as exc:
                if error_code(exc) in _FINAL:
                    await self._mailbox.put(exc)
                    await self._mailbox.put(_END)
                    return
                if failures == 0:
                    logger.warning("the events of %s cannot be read, trying again: %s", self._space.url, exc)
            await self._drop_stream()
            if not self._closed:
                await self._stopping.wait(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])
                failures += 1

    async def _drop_stream(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    async def get(self, timeout: float | None = None) -> E | None:
        """The next event, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once the subscription has ended."""
        wait = check_timeout(timeout)
        await self._open()
        try:
            item = await self._mailbox.get(wait)
        except TimeoutError:
            raise Timeout("no event in time") from None
        except EOFError:
            return None
        if item is _END:
            await self.close()
            return None
        if isinstance(item, TupleSpaceError):
            raise item
        self._delivered += 1
        self._last_seq = item.seq
        event: E = item
        return event

    def __aiter__(self) -> AsyncRemoteStream[E]:
        return self

    async def __anext__(self) -> E:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def renew(self, lease: float | None) -> None:
        """End the subscription ``lease`` seconds from now (None: never)."""
        seconds = check_lease(lease)
        if self._closed:
            raise UnknownLease("the subscription has ended")
        self._lease_end.cancel()
        if seconds is not None:
            self._lease_end.schedule(seconds, self.close)

    async def close(self) -> None:
        """End the subscription: a waiting :meth:`get` returns None."""
        if self._closed:
            return
        self._closed = True
        self._lease_end.cancel()
        self._stopping.set()
        self._space.open_streams.discard(self)
        # The server learns first, so that it has ended the subscription by the
        # time a waiting get returns None (as soon as it can, that is: it learns
        # from the connection closing).
        if self._response is not None:
            self._space.interrupt_stream(self._response)
        self._mailbox.close()
        if self._pump is not None:
            await self._pump.stop()
        await self._drop_stream()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_seq={self._last_seq}, closed={self._closed})"


class AsyncRemoteSubscription(AsyncRemoteStream[Event]):
    """The events of a subscription to a remote space; see :class:`~tuplespace.Subscription`.

    ``async for event in sub`` waits for the next event and ends when the subscription
    is closed (by :meth:`close`, its lease, or the space's handle closing).
    """

    _kinds = EVENT_KINDS | {"present"}
    _decode = staticmethod(event_from_wire)

    def __init__(
        self,
        space: AsyncRemoteSpace,
        template: list[Any] | dict[str, bool],
        kinds: list[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
        existing: bool = False,
    ) -> None:
        params = {"template": orjson.dumps(template).decode(), "events": ",".join(kinds)}
        if existing:
            params["existing"] = "true"
        super().__init__(space, params, since, max_pending, lease)

    async def __aenter__(self) -> AsyncRemoteSubscription:
        await self._open()
        return self


class AsyncRemoteRecordWatch(AsyncRemoteStream[Change]):
    """The changes of a remote record, or of the remote records below a path; see
    :class:`~tuplespace.RecordWatch`.  The watch of one record ends after its
    ``destroy`` or ``expire``."""

    _route = "record_events"
    _kinds = CHANGE_KINDS
    _decode = staticmethod(change_from_wire)

    def __init__(
        self,
        space: AsyncRemoteSpace,
        params: dict[str, str],
        since: int | None,
        max_pending: int,
        lease: float | None,
    ) -> None:
        super().__init__(space, params, since, max_pending, lease)
        self._one = "ref" in params

    def _last(self, kind: str) -> bool:
        return self._one and kind in ("destroy", "expire")

    async def __aenter__(self) -> AsyncRemoteRecordWatch:
        await self._open()
        return self


# Errors after which a subscription cannot go on: its space is gone (or was made
# anew: the event to resume after is ahead of it), or its token may no longer read it.
_FINAL = frozenset(
    {
        "not_found",
        "unauthorized",
        "forbidden",
        "invalid_value",
        "record_not_found",
        "capability_revoked",
        "not_allowed",
    }
)


def _lost(data: str) -> EventsLost:
    body = orjson.loads(data)
    return EventsLost(body["first_missing"], body["oldest_available"])
