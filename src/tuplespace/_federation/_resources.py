"""The records of a node's spaces as CoAP resources (the server side of docs/federation.md).

``/spaces/<space>/<path>`` is a record and ``/spaces/<space>/<path>/<tag>`` one of
its fields; ``/spaces/<space>/$rules`` holds the space's rules, in the JSON form the
HTTP API gives them (:mod:`tuplespace._rulewire`).  A request is decoded here, done
by the embedded space, and its answer or error encoded here: nothing below knows
CoAP.  Errors answer with the CoAP code of the HTTP API's status and the same JSON
error body as the diagnostic payload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson

from .._aio import AsyncRecord, AsyncRecordWatch, AsyncSpace, AsyncSubscription, AsyncTransaction
from .._codec import _loads, decode, encode, from_wire, template_from_wire
from .._credit import check_principal
from .._errors import (
    CapabilityRevoked,
    EventsLost,
    InvalidValue,
    LimitReached,
    NotFound,
    RecordNotFound,
    Timeout,
    TupleSpaceError,
    WireError,
)
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, check_existing
from .._httpapi import MAX_API_METHOD_LIMITS, OPERATION
from .._lease import AsyncLease
from .._methods import ActiveLimits
from .._recordhandles import Record, RecordData
from .._recordstore import DEFAULT_PRINCIPAL
from .._rules import Rules
from .._space import Space
from .._templates import ANY, Template, feed_templates
from .._values import URI, Limits, Map, Value
from ..server._claims import RecordClaim
from ..server._errors import ApiError, api_error
from ..server._hosting import parse_options
from ..server._requests import check_keys, get_template, parse_template_text, query_params
from ..server._service import Page, ServerLimits
from ..server._service_credit import credit_challenge, get_account, grant_credit, mint_credit, transfer_credit
from ..server._service_events import event_kinds, existing_param, since_param
from ..server._service_records import record_template_from_wire
from ..server._service_rules import (
    add_rule,
    advance_seconds,
    advance_space_clock,
    clock_reading,
    get_rule,
    list_rules,
    remove_rule,
    rule_definition,
)
from ._cbor import CBOR, JSON, decode_cbor, encode_cbor, template_wire
from ._feeds import EventFeed
from ._held import Asker, HeldTable, Sessions
from ._message import (
    ACCEPT,
    CHANGED,
    CONTENT,
    CONTENT_FORMAT,
    CREATED,
    DELETE,
    DELETED,
    FETCH,
    GET,
    LOCATION_PATH,
    POST,
    PUT,
    SIZE1,
    URI_QUERY,
    Message,
    MessageError,
    code_text,
)
from ._network import Address
from ._oscore import PeerRequest
from ._remote import CREDIT, RULES

__all__ = [
    "SpacesResource",
    "answer_value",
    "coap_code",
    "content_format",
    "error_message",
    "moved_away",
    "record_data",
]

log = logging.getLogger("tuplespace")

_MISSING = object()
# Changes after which a field's observers are told, beside a set of that field.
_ENDS = frozenset({"create", "move", "destroy", "expire"})
LINK_FORMAT = 40
# What FETCH does on a space, with ?op=.
FETCH_OPS = (
    "read",
    "take",
    "count",
    "read_all",
    "take_all",
    "write_if_absent",
    "replace",
    "find",
    "take_record",
)
_POST_OPS = "write, write_many, renew, cancel, begin, confirm, revoke, advance or close"


def coap_code(status: int) -> int:
    """The CoAP response code for an HTTP API status: 4.04 for 404; 4.03 for 402
    (CoAP's 4.02 is Bad Option: the body's code says insufficient_credit)."""
    if status == 402:
        status = 403
    if status not in (400, 401, 403, 404, 405, 406, 409, 413, 415, 429, 503):
        status = 500
    return (status // 100) << 5 | status % 100


def error_message(error: ApiError) -> Message:
    """The answer of an error: its CoAP code, and the JSON error body as diagnostic payload."""
    body = orjson.dumps(error.body())
    return Message(code=coap_code(error.status), options=[(CONTENT_FORMAT, b"\x32")], payload=body)


_MAX_PENDING = 1000
"""Events a peer's subscription holds at the node before it catches up from the log
(its notifications take them as they come, bounded in bytes: see EventFeed)."""


def _presence(text: str | None) -> tuple[int, int] | None:
    """``present=<upto>,<at>``: where a subscription's present events stood."""
    if text is None:
        return None
    upto, _, at = text.partition(",")
    if not all(n.isascii() and n.isdigit() and len(n) <= 20 for n in (upto, at)):
        raise ApiError(400, "bad_request", "present is <upto>,<at>: two sequence numbers", "present")
    return int(upto), int(at)


def _record_id(request: Message) -> int | None:
    """The record number a request on a record gives with ``?id=<n>`` (None: none)."""
    ids = [item[3:] for item in request.query if item.startswith("id=")]
    if not ids:
        return None
    rid = query_params((("id", i) for i in ids), ("id",))["id"]
    if not rid.isdigit() or not rid.isascii():
        raise ApiError(400, "bad_request", "id is a record's number (an integer >= 0)", "id")
    return int(rid)


class _Target:
    """What a request names: a record of a space, and maybe one of its fields."""

    __slots__ = ("key", "record", "space", "tag")

    def __init__(self, space: Space, record: Record, tag: str | None, key: tuple[str, ...]) -> None:
        self.space = space
        self.record = record
        self.tag = tag
        self.key = key  # the record's segments as asked: observers of one record share its watch


class SystemRecords(Protocol):
    """The records a node renders itself (``/$sys/<record>``), as observed: which
    may be, and what follows their changes
    (:class:`~tuplespace._federation._references.References`)."""

    def observable(self, path: tuple[str, ...]) -> bool:
        """Whether ``(record,)`` or ``(record, tag)`` names a system record or field."""

    def follow(self, record: str, changed: Callable[[tuple[str, ...] | None], None]) -> Callable[[], None]:
        """On the node's loop: call ``changed(tags)`` after each change of ``record``
        (None: any field), until the returned function is called."""


class _Watched:
    """One observed record: what follows its changes (an upcall, for a record of a
    space), the observations of the record and of its fields."""

    __slots__ = ("observations", "stop")

    def __init__(self) -> None:
        self.observations: dict[object, tuple[Callable[[], None], str | None]] = {}
        self.stop: Callable[[], None] | None = None

    def notify(self, change: Change) -> None:
        self.changed(None if change.kind in _ENDS else (change.tag,))

    def changed(self, tags: tuple[str | None, ...] | None) -> None:
        """Notify the observers of the record and of the fields ``tags`` (None: all)."""
        for notify, tag in list(self.observations.values()):
            if tag is None or tags is None or tag in tags:
                notify()


class SpacesResource:
    """``/spaces/…`` of a node: GET, PUT, POST, DELETE and Observe on records and fields
    (the :class:`~tuplespace._federation._endpoint.Site` a node's endpoint serves).

    ``spaces`` maps the names of the node's spaces to them; ``max_observers`` bounds
    the observations of one record (its fields' included), ``max_observed`` the
    records observed at once (each has an upcall thread) and ``max_host_observations``
    the observations one peer's host holds, whatever ports it sends from.  A ``read_all`` or
    ``take_all`` answers at most ``max_results`` tuples and ``max_answer`` bytes (of
    their JSON form) at a time, and the cursor of the rest.  Each sending host holds at
    most ``max_transactions`` transactions and claims; a claimed take is held for
    ``claim_lease`` seconds until its taker confirms it (see :mod:`._held`), and has at
    most ``max_waiting`` calls to the spaces under way (waiting) at once.  A peer's
    host (whatever ports it sends from) has at most ``max_subscriptions`` event streams
    open at once, and all peers together ``max_node_subscriptions``, each holding at
    most ``max_notification_bytes`` of events for its next notification.
    """

    def __init__(
        self,
        spaces: dict[str, Space],
        *,
        max_observers: int,
        max_observed: int,
        max_host_observations: int = 64,
        max_results: int = 10_000,
        max_answer: int = 16 << 20,
        max_transactions: int = 10_000,
        claim_lease: float = 30.0,
        max_subscriptions: int = 64,
        max_node_subscriptions: int = 1024,
        max_notification_bytes: int = 64 << 10,
        max_waiting: int = 1000,
    ) -> None:
        if not (max_transactions >= 1 and 0 < claim_lease < float("inf")):
            raise InvalidValue(
                f"max_transactions >= 1 and a claim_lease of positive seconds; "
                f"got {max_transactions!r}, {claim_lease!r}"
            )
        for name, count in (
            ("max_host_observations", max_host_observations),
            ("max_subscriptions", max_subscriptions),
            ("max_node_subscriptions", max_node_subscriptions),
            ("max_waiting", max_waiting),
        ):
            if type(count) is not int or count < 1:
                raise InvalidValue(f"{name} must be a positive int, got {count!r}", name)
        self._spaces = spaces
        self._held = HeldTable(max_transactions)
        self._sessions = Sessions()
        self.claim_lease = claim_lease
        self._max_subscriptions = max_subscriptions
        self._max_node_subscriptions = max_node_subscriptions
        self._max_notification_bytes = max_notification_bytes
        self._max_waiting = max_waiting
        self._calls: dict[str, int] = {}  # under way, by host
        self._calling = 0  # of every host
        self._subscriptions: dict[str, int] = {}  # by host: a host's every port counts
        self._subscribed = 0  # of every host
        self._limits = ServerLimits(max_results=max_results, max_answer=max_answer)
        self.base_uri = ""  # the node's, once its socket is bound
        self._max_observers = max_observers
        self._max_observed = max_observed
        self._max_host_observations = max_host_observations
        self._observing: dict[str, int] = {}  # observations by host
        self._watched: dict[tuple[str, ...], _Watched] = {}  # by space and path, or ("$sys", record)
        self.system: SystemRecords | None = None
        """The node's system records, observed under ``/$sys/<record>[/<tag>]``."""
        self._async: dict[str, tuple[Space, AsyncSpace]] = {}  # the spaces' faces on the node's loop
        self.handlers: dict[
            str, Callable[[Message], Message | Awaitable[Message]]
        ] = {}  # by first segment: $refs, $sys

    def statistics(self) -> dict[str, int]:
        """Observed records, observations of records and fields, and the transactions
        and claims held for peers."""
        return {
            "observed_records": len(self._watched),
            "observations": sum(len(w.observations) for w in self._watched.values()),
            **self._held.statistics(),
            **self._sessions.statistics(),
            "subscriptions": self._subscribed,
            "calls": self._calling,
        }

    def close(self) -> None:
        """Stop the upcalls of every observed record."""
        for watched in self._watched.values():
            if watched.stop is not None:
                watched.stop()
        self._watched.clear()

    # -- the endpoint's interface ----------------------------------------------------------

    def too_large(self, maximum: int) -> Message:
        """4.13 for a request payload past the node's bound, with its Size1 and the JSON
        error body (``value_too_large``, limit ``max_request_bytes``)."""
        error = ApiError(
            413,
            "value_too_large",
            f"request payloads are at most {maximum} bytes",
            limit="max_request_bytes",
            maximum=maximum,
        )
        return error_message(error).add(SIZE1, maximum)

    def render(self, request: Message, peer: Address) -> Message | Awaitable[Message]:
        try:
            path = request.path
            if path == (".well-known", "core") and request.code == GET:
                return self._links(request)
            handler = self.handlers.get(path[0]) if path else None
            if handler is not None:
                return handler(request)
            if not path or path[0] != "spaces":
                raise ApiError(404, "not_found", "the resources of a node are under /spaces/")
            segments = path[1:]
            if not segments:
                raise ApiError(404, "not_found", "name a space: /spaces/<space>[/<path>]")
            accept = content_format(request.number(ACCEPT), 406)
            method = request.code
            if len(segments) == 1:
                return self._linda(request, segments[0], accept, _asker(request, str(peer[0])))
            if segments[1] == RULES:
                return self._rules(request, segments[0], segments[2:])
            if segments[1] == CREDIT:
                return self._credit(request, segments[0], segments[2:])
            if method == POST:
                return self._create(request, segments)
            target = self._target(segments, request)
            if method == GET:
                return self._get(target, request, accept)
            if method == PUT:
                return self._put(target, request, accept)
            if method == DELETE:
                if target.tag is not None:
                    raise ApiError(405, "method_not_allowed", "a field is not deleted; set it to null")
                target.record.destroy(force=_query(request, ("force", "id")).get("force") == "1")
                return Message(code=DELETED)
            raise ApiError(405, "method_not_allowed", f"{code_text(method)} is not a method of records")
        except ApiError as exc:
            return error_message(exc)
        except TupleSpaceError as exc:  # a MessageError too: an option that is not UTF-8
            return error_message(api_error(exc))

    def observe(
        self, request: Message, notify: Callable[[], None], peer: Address
    ) -> Callable[[], None] | EventFeed | Message | None:
        try:
            path = request.path
        except MessageError:
            return None  # a segment that is not UTF-8: the render answers the error
        if len(path) >= 2 and path[0] == "spaces" and request.code == FETCH:
            try:
                return self._stream(request, path[1:], notify, peer)
            except ApiError as exc:
                return error_message(exc)
            except TupleSpaceError as exc:
                return error_message(api_error(exc))
        if request.code != GET:
            return None  # the render answers what it is
        system = self.system
        if len(path) >= 2 and path[0] == "$sys" and system is not None:
            record = path[1]
            if not system.observable(path[1:]):
                return None  # the render answers the error
            return self._observation(
                ("$sys", record),
                path[2] if len(path) > 2 else None,
                notify,
                str(peer[0]),
                lambda watched: system.follow(record, watched.changed),
            )
        if len(path) < 3 or path[0] != "spaces":
            return None
        try:
            target = self._target(path[1:], request)
        except (ApiError, TupleSpaceError):
            return None  # the render answers the error

        def follow(watched: _Watched) -> Callable[[], None]:
            loop = asyncio.get_running_loop()
            upcall = target.record.on_change(lambda change: loop.call_soon_threadsafe(watched.notify, change))
            return upcall.cancel

        return self._observation(target.key, target.tag, notify, str(peer[0]), follow)

    def _observation(
        self,
        key: tuple[str, ...],
        tag: str | None,
        notify: Callable[[], None],
        host: str,
        follow: Callable[[_Watched], Callable[[], None]],
    ) -> Callable[[], None] | Message | None:
        """Register an observation of the record ``key`` (its field ``tag``) for
        ``host``, within the bounds: the function that ends it, or None to answer
        without Observe.  The first observation of a record begins to follow its
        changes (``follow(watched)``: the function that stops it), the last stops it."""
        if self._observing.get(host, 0) >= self._max_host_observations:
            log.warning(
                "coap: %s holds %d observations; answering without Observe", host, self._max_host_observations
            )
            return None
        watched = self._watched.get(key)
        if watched is None:
            if len(self._watched) >= self._max_observed:
                log.warning("coap: %d records observed; answering without Observe", self._max_observed)
                return None
            watched = _Watched()
            try:
                watched.stop = follow(watched)
            except TupleSpaceError as exc:  # the handle may not watch
                return error_message(api_error(exc))
            self._watched[key] = watched
        elif len(watched.observations) >= self._max_observers:
            return None
        observation = object()
        watched.observations[observation] = (notify, tag)
        self._observing[host] = self._observing.get(host, 0) + 1

        def cancel() -> None:
            if watched.observations.pop(observation, None) is not None:
                left = self._observing[host] - 1
                if left:
                    self._observing[host] = left
                else:
                    del self._observing[host]
            if not watched.observations and self._watched.get(key) is watched:
                del self._watched[key]
                if watched.stop is not None:
                    watched.stop()

        return cancel

    def _stream(
        self, request: Message, segments: tuple[str, ...], notify: Callable[[], None], peer: Address
    ) -> EventFeed:
        """A peer's observation of events: a FETCH with Observe 0 on a space, of its
        tuple events (``?op=subscribe``, see :meth:`_subscription`) or of its records'
        changes (``?op=watch_records[&events=create,update][&under=<path>][&since=<seq>]``),
        or on a record, of its changes (``?op=watch[&since=<seq>]``)."""
        accept = content_format(request.number(ACCEPT), 406)
        op = next((q[3:] for q in request.query if q.startswith("op=")), None)
        ended = _WATCH_ENDED
        opened: Callable[[int | None], AsyncSubscription | AsyncRecordWatch]
        if len(segments) > 1:
            if op != "watch":
                raise ApiError(400, "bad_request", "a record's observable FETCH is ?op=watch", "op")
            opened, since = self._record_watch(request, segments)
        else:
            space = self._spaces.get(segments[0])
            if space is None:
                raise NotFound(f"this node has no space {segments[0]!r}")
            aspace = self._aspace(segments[0], space)
            if op == "subscribe":
                opened, since = self._subscription(request, space)
                ended = _SPACE_CLOSED
            elif op == "watch_records":
                opened, since = _record_changes(request, aspace)
            else:
                raise ApiError(
                    400,
                    "bad_request",
                    "a space's observable FETCH is ?op=subscribe or ?op=watch_records",
                    "op",
                )
        host = str(peer[0])
        held = self._subscriptions.get(host, 0)
        if held >= self._max_subscriptions:
            raise LimitReached(
                f"a host subscribes to at most {self._max_subscriptions} event streams of this node",
                limit="subscriptions",
                maximum=self._max_subscriptions,
            )
        if self._subscribed >= self._max_node_subscriptions:
            raise LimitReached(
                f"this node serves at most {self._max_node_subscriptions} event streams at once",
                limit="node_subscriptions",
                maximum=self._max_node_subscriptions,
            )
        lost = None
        try:
            subscription = opened(since)
        except EventsLost as exc:  # told first; the subscription goes on from the oldest left
            lost = exc
            subscription = opened(exc.oldest_available - 1)
        self._subscriptions[host] = held + 1
        self._subscribed += 1

        def release() -> None:
            self._subscribed -= 1
            left = self._subscriptions[host] - 1
            if left:
                self._subscriptions[host] = left
            else:
                del self._subscriptions[host]

        def answer(body: Map | ApiError) -> Message:
            return error_message(body) if isinstance(body, ApiError) else answer_value(body, accept)

        after = subscription.last_seq if since is None else since
        return EventFeed(
            subscription,
            after,
            lost,
            notify=notify,
            answer=answer,
            ended=ended,
            max_bytes=self._max_notification_bytes,
            release=release,
        )

    def _record_watch(
        self, request: Message, segments: tuple[str, ...]
    ) -> tuple[Callable[[int | None], AsyncRecordWatch], int | None]:
        """A peer's watch of a record (``?op=watch``), through the handle its path
        names (a capability's too): what opens it after an event, and the event asked for."""
        since = since_param(_query(request, ("op", "since", "id")).get("since"), "since")
        target = self._target(segments, request)
        if target.tag is not None:
            raise ApiError(400, "bad_request", "a field is not watched: observe it with GET", "op")
        record = target.record
        token = target.key[-1] if record.is_capability else None  # its path is $cap/<token>
        watched = AsyncRecord(target.space.core, record.rid, token, record.operations)

        def opened(since: int | None) -> AsyncRecordWatch:
            return watched.watch(since)

        return opened, since

    def _subscription(
        self, request: Message, space: Space
    ) -> tuple[Callable[[int | None], AsyncSubscription], int | None]:
        """A peer's subscription to the events of a space: FETCH
        ``?op=subscribe[&events=write,take][&since=<seq>][&existing=true]`` with
        Observe 0 and the template (JSON or CBOR, ``{"$any": true}`` for every
        tuple) as payload; ``&present=<upto>,<at>`` with ``since`` goes on with the
        present events of a subscription from where they stood (see
        :attr:`tuplespace.Subscription.presence`).  What opens it after an event,
        and the event asked for."""
        query = _query(request, ("op", "events", "since", "existing", "present"))
        if request.number(CONTENT_FORMAT) not in (JSON, CBOR):
            raise ApiError(415, "content_format", "a template travels in JSON (50) or CBOR (60)")
        kinds = event_kinds(query.get("events"), EVENT_KINDS)
        since = since_param(query.get("since"), "since")
        existing = existing_param(query.get("existing"))
        check_existing(existing, since)
        present = _presence(query.get("present"))
        template = _subscribed(request, space.limits)
        if present is not None and since is None:
            raise ApiError(400, "bad_request", "present goes on from since=<seq>: give both", "present")
        templates = feed_templates(template)

        def opened(since: int | None) -> AsyncSubscription:
            feed = space.core.subscribe(templates, kinds, since, _MAX_PENDING, None, existing, present)
            return AsyncSubscription(space.core, feed)

        return opened, since

    def _links(self, request: Message) -> Message:
        """The node's spaces, for ``/.well-known/core`` (RFC 6690), in link format only."""
        accept = request.number(ACCEPT)
        if accept not in (None, LINK_FORMAT):
            raise ApiError(406, "content_format", f"the links are in link format (40), not format {accept}")
        links = ",".join(f'</spaces/{name}>;rt="tuplespace.space";obs' for name in self._spaces)
        return Message(code=CONTENT, payload=links.encode()).add(CONTENT_FORMAT, LINK_FORMAT)

    # -- requests ----------------------------------------------------------------------

    def _space(self, segments: tuple[str, ...]) -> tuple[Space, tuple[str, ...]]:
        if not segments:
            raise ApiError(404, "not_found", "name a space: /spaces/<space>/<path>")
        space = self._spaces.get(segments[0])
        if space is None:
            raise NotFound(f"this node has no space {segments[0]!r}")
        if len(segments) < 2:
            raise ApiError(404, "not_found", "name a record: /spaces/<space>/<path>[/<tag>]")
        return space, segments[1:]

    def _address(self, space_name: str, path: tuple[str, ...]) -> str:
        """The address of a record as text (resolved without building a URI)."""
        return f"{self.base_uri}spaces/{space_name}/{'/'.join(path)}"

    def _ref(self, space_name: str, path: tuple[str, ...]) -> str:
        """What resolves to the record at ``path``: the path itself, or its address
        where the path would be read as one (``$cap/<token>``, a ``://`` in it)."""
        text = "/".join(path)
        if text.startswith("$cap/") or "://" in text:
            return self._address(space_name, path)
        return text

    def _target(self, segments: tuple[str, ...], request: Message) -> _Target:
        """The record the path names, or (when no record has the whole path) the
        field named by its last segment of the record named by the others; with
        ``?id=<n>``, only if that record is the one numbered ``n`` (a handle names one
        record, not the path a new record may take after it)."""
        target = self._at(segments, _payer(request))
        rid = _record_id(request)
        if rid is not None and (target.record.is_capability or target.record.rid != rid):
            raise RecordNotFound(f"no record numbered {rid} at {'/'.join(segments[1:])}")
        return target

    def _at(self, segments: tuple[str, ...], payer: str) -> _Target:
        space, path = self._space(segments)
        ref = self._ref(segments[0], path)
        if len(path) > 1 and "://" not in ref:
            with space.core.lock:
                whole = space.core.engine.records.has(ref)
            if not whole:  # a field's path, most often: told without raising
                return self._field(space, path, segments, payer)
        try:
            return _Target(space, space.record(ref), None, segments)
        except (RecordNotFound, InvalidValue, CapabilityRevoked):  # "kitchen/$version", "$cap/<token>/temp"
            if len(path) < 2 or path[:-1] == ("$cap",):  # a capability's path names no field
                moved = moved_away(space, "/".join(path), payer)
                if moved is not None:
                    raise moved from None
                raise
            return self._field(space, path, segments, payer)

    def _field(self, space: Space, path: tuple[str, ...], segments: tuple[str, ...], payer: str) -> _Target:
        """The field named by the last segment of ``path`` of the record named by the
        others, no record having the whole path (unless it moved to another node:
        ``payer`` pays the redirection)."""
        moved = moved_away(space, "/".join(path), payer)
        if moved is not None:
            raise moved
        try:
            record = space.record(self._ref(segments[0], path[:-1]))
        except (RecordNotFound, CapabilityRevoked):  # a capability's, once gone from memory too
            moved = moved_away(space, "/".join(path[:-1]), payer)
            if moved is not None:
                raise moved from None
            raise
        return _Target(space, record, path[-1], segments[:-1])

    def _get(self, target: _Target, request: Message, accept: int) -> Message:
        record = target.record
        if target.tag is not None:
            value = record.get(target.tag, _MISSING)
            if value is _MISSING:
                raise ApiError(404, "field_not_found", f"the record has no field {target.tag!r}", target.tag)
            return answer_value(value, accept)
        query = _query(request, ("tags", "snapshot", "handle", "id"))
        if "handle" in query:  # what the handle the path names allows, and its record's number
            handle: dict[str, Value] = {"operations": tuple(sorted(record.operations))}
            if not record.is_capability:
                handle["id"] = record.rid
            return answer_value(Map(handle), accept)
        if "snapshot" in query:
            return answer_value(record_data(record.snapshot()), accept)
        tags = query.get("tags")
        if tags is None:
            return answer_value(record.all(), accept)
        names = [t for t in tags.split(",") if t]
        return answer_value(Map(dict(zip(names, record.view(*names), strict=True))), accept)

    def _put(self, target: _Target, request: Message, accept: int) -> Message | Awaitable[Message]:
        if target.tag is None:
            raise ApiError(405, "method_not_allowed", "PUT sets a field: /spaces/<space>/<path>/<tag>")
        value = _payload(request, target.space)
        if type(value) is URI and target.space.core.refer is not None:
            # It may hold another node's record, registered there first: from a thread,
            # the loop being free to send that request and receive its answer.
            work = asyncio.to_thread(target.record.set, target.tag, value)
            return self._done(work, lambda version: answer_value(version, accept, CHANGED))
        return answer_value(target.record.set(target.tag, value), accept, CHANGED)

    def _linda(self, request: Message, name: str, accept: int, asker: Asker) -> Message | Awaitable[Message]:
        """A request to ``/spaces/<space>`` (see :meth:`_space_request`); one that names
        its client's session (``?session=<id>``) and waits ends when the client ends
        its session (``POST ?op=close&session=<id>``)."""
        host = asker.host
        raw = next((v for n, v in request.options if n == URI_QUERY and v.startswith(b"session=")), None)
        closing = raw is not None and request.code == POST and "op=close" in request.query
        if not closing and request.code != GET and self._calls.get(host, 0) >= self._max_waiting:
            raise LimitReached(
                f"a host has at most {self._max_waiting} calls under way at this node",
                limit="max_waiting",
                maximum=self._max_waiting,
            )
        if raw is None:
            return self._under_way(host, self._space_request(request, name, accept, asker))
        session = self._sessions.check(raw[8:].decode("ascii", "replace"))
        if closing:
            _query(request, ("op", "session"))
            return self._done(self._sessions.end(asker, session), lambda _: Message(code=CHANGED))
        self._sessions.check_open(asker.owner, session)
        answer = self._space_request(request, name, accept, asker)
        if isinstance(answer, Message):
            return answer
        space = self._spaces.get(name)
        if request.code == POST and (space is None or space.capacity is None):
            return self._under_way(host, answer)  # a write where there is always room: it never waits
        return self._under_way(host, self._sessions.hold(asker.owner, session, answer))

    def _under_way(self, host: str, answer: Message | Awaitable[Message]) -> Message | Awaitable[Message]:
        """``answer``, counted among the calls of ``host`` under way until it is done."""
        if isinstance(answer, Message):
            return answer
        self._calls[host] = self._calls.get(host, 0) + 1
        self._calling += 1
        return self._counted(host, answer)

    async def _counted(self, host: str, work: Awaitable[Message]) -> Message:
        try:
            return await work
        finally:
            self._calling -= 1
            left = self._calls[host] - 1
            if left:
                self._calls[host] = left
            else:
                del self._calls[host]

    def _space_request(
        self, request: Message, name: str, accept: int, asker: Asker
    ) -> Message | Awaitable[Message]:
        """``/spaces/<space>`` (docs/federation.md, "Linda operations over CoAP"): GET
        answers the space's statistics (``?options``: its options, :func:`space_options`;
        ``?clock``: its time, and whether its clock is simulated); POST moves its
        simulated clock (``?op=advance``, see :meth:`_advance`) or writes
        (``?op=write``, the default: the payload's tuple; ``?op=write_many``: its array
        of tuples, all or none) for ``?lease=<s>`` and answers the leases, or
        renews (``?op=renew&id=<lease>``) or cancels (``?op=cancel&id=<lease>``) one,
        begins a transaction (``?op=begin``) or confirms a claim
        (``?op=confirm&claim=<id>``); FETCH, with a payload in the JSON wire format, does
        the ``?op=`` of :data:`FETCH_OPS` (read when none).  With ``?tx=<id>`` an
        operation is done in that transaction (and ``commit``, ``abort`` and ``renew``
        end or renew it); with ``?claim=1`` a take, take_all or take_record is held under
        a claim for its taker to confirm.  A transaction or a claim is ``asker``'s to use
        when its owner began it (else it is unknown)."""
        space = self._spaces.get(name)
        if space is None:
            raise NotFound(f"this node has no space {name!r}")
        aspace = self._aspace(name, space)
        if request.code == GET:
            shown = _query(request, ("options", "clock"))
            if len(shown) > 1:
                raise ApiError(400, "bad_request", "a GET of a space asks for ?options or ?clock, not both")
            if "options" in shown:
                return answer_value(space_options(space), accept)
            if "clock" in shown:
                return answer_value(Map(clock_reading(space.clock)), accept)
            return answer_value(Map(space.statistics()), accept)
        if request.code == POST:
            return self._post(request, name, space, aspace, accept, asker)
        if request.code == PUT:
            return self._set_options(request, space, accept)
        if request.code != FETCH:
            raise ApiError(
                405,
                "method_not_allowed",
                "a space takes GET (statistics), POST (writes), FETCH (the rest) and PUT ?options",
            )
        observed = {"op=subscribe", "op=watch_records"} & set(request.query)
        if observed:
            raise ApiError(400, "bad_request", f"{min(observed)} is observed: send it with Observe 0", "op")
        if request.number(CONTENT_FORMAT) not in (JSON, CBOR):
            raise ApiError(
                415, "content_format", "a template travels in the JSON wire format (50) or CBOR (60)"
            )
        query = _query(
            request, ("op", "timeout", "limit", "after", "lease", "tx", "claim", "under", "session")
        )
        op = query.get("op", "read")
        if op not in FETCH_OPS:
            raise ApiError(400, "bad_request", f"op is one of {', '.join(FETCH_OPS)}, not {op!r}", "op")
        timeout = _seconds(query, "timeout")
        tx_id, claim = query.get("tx"), _claim_asked(query, op)
        if tx_id is not None and op in ("write_if_absent", "replace", "find", "take_record"):
            raise ApiError(400, "bad_request", f"{op} is not done in a transaction", "tx")
        if op in ("find", "take_record"):
            return self._records(request, name, space, aspace, op, query, accept, claim, asker)
        if op in ("write_if_absent", "replace"):
            wire = _fetched(request, space.limits)
            if not isinstance(wire, list) or len(wire) != 2:
                raise WireError("the payload of write_if_absent or replace is [template, tuple]")
            template = template_from_wire(wire[0], space.limits)
            successor = from_wire(wire[1], space.limits)
            lease = _seconds(query, "lease")
            if op == "write_if_absent":
                return self._done(
                    aspace.write_if_absent(template, successor, lease), lambda w: answer_value(w, accept)
                )
            return self._done(
                aspace.replace(template, successor, lease, timeout), lambda t: answer_value(t, accept)
            )
        template = template_from_wire(_fetched(request, space.limits), space.limits)
        if tx_id is not None:
            if claim:
                raise ApiError(400, "bad_request", "what a transaction takes it holds: no claim", "claim")
            tx = self._held.transaction(tx_id, name, asker.owner)
            return self._in_transaction(tx, op, template, query, timeout, accept)
        if claim:
            limit = _whole(query, "limit")
            claimed = self._claim(name, aspace, op == "take_all", template, limit, timeout, asker)
            return self._done(claimed, lambda answer: answer_value(answer, accept))
        if op == "count":
            return self._done(aspace.count(template), lambda n: answer_value(n, accept))
        if op in ("read_all", "take_all"):
            limit, after = _whole(query, "limit"), _whole(query, "after")
            fits = Page(self._limits).fits
            work = aspace.find_page(template, op == "take_all", limit, fits, after, timeout)
            return self._done(
                work, lambda page: answer_value(Map({"tuples": page[0], "next": page[1]}), accept)
            )
        if timeout == 0:
            found = aspace.try_take(template) if op == "take" else aspace.try_read(template)
        else:
            found = aspace.take(template, timeout) if op == "take" else aspace.read(template, timeout)
        return self._done(found, lambda value: answer_value(value, accept))

    def _set_options(self, request: Message, space: Space, accept: int) -> Awaitable[Message]:
        """``PUT /spaces/<space>?options`` (docs/federation.md, "Linda operations over
        CoAP"): set the space's charges and method limits of :data:`SETTABLE_OPTIONS`
        from the JSON object of the payload, checked as ``PUT /spaces/{space}`` checks
        them over HTTP (4.00 naming the field), all or none; answers 2.04 with the
        space's options (those of ``GET ?options``)."""
        if "options" not in _query(request, ("options",)):
            raise ApiError(405, "method_not_allowed", "PUT sets the space's options: /spaces/<space>?options")
        if request.number(CONTENT_FORMAT) != JSON:
            raise ApiError(415, "content_format", "the options travel as a JSON object (content format 50)")
        body = _loads(request.payload, space.limits)
        if type(body) is not dict:
            raise ApiError(400, "bad_request", "the options are a JSON object")
        check_keys(body, SETTABLE_OPTIONS)
        options = parse_options(body)
        work = asyncio.to_thread(space.core.call, _apply_options, space.rules, options)
        return self._done(work, lambda _: answer_value(space_options(space), accept, CHANGED))

    def _in_transaction(
        self,
        tx: AsyncTransaction,
        op: str,
        template: Template,
        query: dict[str, str],
        timeout: float | None,
        accept: int,
    ) -> Awaitable[Message]:
        """A FETCH in a transaction; a read_all or take_all page that leaves matches
        out has a ``next`` that is not null, but no cursor to go on from (the
        transaction's own writes have no place in the space's order)."""
        if "after" in query:
            raise ApiError(400, "bad_request", "a transaction's read_all is not resumed: no after", "after")
        if op == "count":
            return self._done(tx.count(template), lambda n: answer_value(n, accept))
        if op in ("read_all", "take_all"):
            fits = Page(self._limits).fits
            work = tx.find_page(template, op == "take_all", _whole(query, "limit"), fits, timeout)
            return self._done(
                work, lambda page: answer_value(Map({"tuples": page[0], "next": page[1]}), accept)
            )
        if timeout == 0:
            found = tx.try_take(template) if op == "take" else tx.try_read(template)
        else:
            found = tx.take(template, timeout) if op == "take" else tx.read(template, timeout)
        return self._done(found, lambda value: answer_value(value, accept))

    async def _claim(
        self,
        name: str,
        aspace: AsyncSpace,
        take_all: bool,
        template: Template,
        limit: int | None,
        timeout: float | None,
        asker: Asker,
    ) -> Map:
        """A take (``{"tuple": t}``) or a page of a take_all (``{"tuples": [...], "next":
        cursor}``) under a claim: when something was taken, the answer has the claim's
        id (``"claim"``) and its lease in seconds (``"lease"``), counted from the take."""
        self._held.check_room(asker.host)
        # The claim's lease covers the wait too, so that it cannot run out before the take.
        tx = aspace.transaction(None if timeout is None else self.claim_lease + timeout)
        claimed = False
        try:
            if take_all:
                fits = Page(self._limits).fits
                taken, cursor = await tx.find_page(template, True, limit, fits, timeout)
                answer: dict[str, Value] = {"tuples": tuple(taken), "next": cursor}
            else:
                try:
                    found = await (tx.try_take(template) if timeout == 0 else tx.take(template, timeout))
                except Timeout:
                    found = None
                taken = [] if found is None else [found]
                answer = {"tuple": found}
            if taken:
                await tx.renew(self.claim_lease)
                held = self._held.add("claim", name, tx, asker)
                answer.update(claim=held.id, lease=self.claim_lease)
                claimed = True
        finally:
            if not claimed:
                await tx.abort()
        return Map(answer)

    def _records(
        self,
        request: Message,
        name: str,
        space: Space,
        aspace: AsyncSpace,
        op: str,
        query: dict[str, str],
        accept: int,
        claim: bool,
        asker: Asker,
    ) -> Message | Awaitable[Message]:
        """FETCH ``?op=find`` (the addresses of the matching records, at most ``limit``
        and the node's ``max_results``; ``more`` when more match past a bound the caller
        did not set) or ``?op=take_record`` (what the record taken held, or null; with
        ``?claim=1`` held under a claim, see :meth:`_claim_record`), the payload a record
        template in the JSON wire format, below ``?under=`` if given."""
        template = record_template_from_wire(_fetched(request, space.limits), space.limits).fields
        under = query.get("under")
        if op == "take_record":
            timeout = _seconds(query, "timeout")
            if claim:
                claimed = self._claim_record(name, aspace, template, under, timeout, asker)
                return self._done(claimed, lambda answer: answer_value(answer, accept))
            taken = (
                aspace.try_take_record(template, under)
                if timeout == 0
                else aspace.take_record(template, under, timeout)
            )
            return self._done(taken, lambda data: answer_value(record_data(data), accept))
        requested = _whole(query, "limit")
        most = self._limits.max_results
        limit = most if requested is None or requested > most else requested
        found = space.find(template, under, limit + 1)
        more = len(found) > limit and (requested is None or requested > most)
        addresses = tuple(record.address for record in found[:limit])
        ids = tuple(record.rid for record in found[:limit])
        return answer_value(Map({"records": addresses, "ids": ids, "more": more}), accept)

    def _post(
        self, request: Message, name: str, space: Space, aspace: AsyncSpace, accept: int, asker: Asker
    ) -> Message | Awaitable[Message]:
        query = _query(request, ("op", "lease", "id", "timeout", "tx", "claim", "capability", "session"))
        op = query.get("op", "write")
        if op == "advance":
            return self._advance(request, name, space, accept)
        if op == "revoke":
            return self._revoke(name, space, query.get("capability"))
        if op == "close":
            raise ApiError(400, "bad_request", "close names the session it ends: ?session=<id>", "session")
        lease = _seconds(query, "lease")
        tx_id = query.get("tx")
        if "claim" in query and op != "confirm":
            raise ApiError(400, "bad_request", "a claim is named to confirm it: ?op=confirm", "claim")
        if op == "begin":
            if lease is None:
                lease = 60.0
            _positive(lease)
            self._held.check_room(asker.host)
            held = self._held.add("transaction", name, aspace.transaction(lease), asker)
            return answer_value((held.id, held.tx.expires_at), accept, CREATED)
        if op == "confirm":
            claim_id = query.get("claim")
            if claim_id is None:
                raise ApiError(400, "bad_request", "confirm names its claim: ?claim=<id>", "claim")
            return self._done(self._confirm(name, claim_id, asker.owner), lambda _: Message(code=CHANGED))
        if tx_id is not None:
            tx = self._held.transaction(tx_id, name, asker.owner)
            if op in ("commit", "abort"):
                return self._done(self._end(tx_id, tx, op), lambda _: Message(code=CHANGED))
            if op == "renew":
                _positive(lease)
                return self._done(tx.renew(lease), lambda _: answer_value(tx.expires_at, accept, CHANGED))
        elif op in ("renew", "cancel"):
            seq = _whole(query, "id")
            if seq is None:
                raise ApiError(400, "bad_request", f"{op} names its lease: ?id=<lease>", "id")
            held_lease = AsyncLease(aspace.leases, seq, None)
            change = held_lease.renew(lease) if op == "renew" else held_lease.cancel()
            return self._done(change, lambda _: answer_value(held_lease.expires_at, accept, CHANGED))
        if op not in ("write", "write_many"):
            ops = "write, write_many, commit, abort or renew" if tx_id is not None else _POST_OPS
            raise ApiError(400, "bad_request", f"op is {ops}, not {op!r}", "op")
        value = _payload(request, space)
        if op == "write":
            if tx_id is not None:
                return self._done(tx.write(value, lease), lambda _: Message(code=CHANGED))
            work = aspace.write(value, lease, _seconds(query, "timeout"))
            return self._done(work, lambda one: _written(one, accept))
        if not isinstance(value, tuple):
            raise WireError("write_many writes an array of tuples")
        if tx_id is not None:
            return self._done(tx.write_many(value, lease), lambda _: Message(code=CHANGED))
        return self._done(
            aspace.write_many(value, lease),
            lambda leases: answer_value([_lease(one) for one in leases], accept, CREATED),
        )

    def _advance(self, request: Message, name: str, space: Space, accept: int) -> Awaitable[Message]:
        """POST ``?op=advance`` on a space: move its simulated clock by the payload's
        ``{"advance": seconds}`` (the HTTP API's body of ``POST /spaces/{space}/clock``,
        in JSON or CBOR) and run what falls due; answers 2.04 with ``{"now": t}``.  The
        service checks it: 4.00 naming ``advance``, 4.09 ``real_clock`` for a space on
        the system clock."""
        _query(request, ("op",))
        given = request.number(CONTENT_FORMAT)
        if given == JSON:
            body = _loads(request.payload, space.limits)
        elif given == CBOR:
            decoded = decode_cbor(request.payload, space.limits)
            body = dict(decoded) if isinstance(decoded, Map) else decoded
        else:
            raise ApiError(415, "content_format", "an advance travels in JSON (50) or CBOR (60)")
        if type(body) is not dict:
            raise ApiError(400, "bad_request", 'an advance is an object: {"advance": seconds}')
        _check_body(body, "advance_clock")
        work = advance_space_clock(space, name, advance_seconds(body["advance"]))
        return self._done(work, lambda answer: answer_value(Map(answer), accept, CHANGED))

    def _revoke(self, name: str, space: Space, token: str | None) -> Message:
        """POST ``?op=revoke&capability=<token>`` on a space: end the capability
        ``/spaces/<space>/$cap/<token>`` (see :meth:`tuplespace.Record.revoke`)."""
        if not token:
            raise ApiError(
                400, "bad_request", "revoke names its capability: ?capability=<token>", "capability"
            )
        handle = space.record(self._address(name, ("$cap", token)))
        Record(space.core, handle.rid, token, handle.operations, owner=True).revoke()
        return Message(code=CHANGED)

    async def _claim_record(
        self,
        name: str,
        aspace: AsyncSpace,
        template: Mapping[str, Any],
        under: str | None,
        timeout: float | None,
        asker: Asker,
    ) -> Map:
        """A take_record under a claim (``{"record": what it held, or null}``): the
        record taken is held, hidden but not removed, until its taker confirms the
        claim, and shown again as it was when the claim's lease runs out unconfirmed.
        When a record was taken, the answer has the claim's id (``"claim"``) and its
        lease in seconds (``"lease"``), counted from the take."""
        self._held.check_room(asker.host)
        held: list[RecordClaim] = []

        def hold(rid: int) -> None:  # under the space's lock, as soon as the record is held
            held.append(RecordClaim(aspace.core, rid, self.claim_lease))

        claimed = False
        try:
            try:
                taken = await aspace.take_record(template, under, timeout, hold=hold)
            except Timeout:
                return Map({"record": None})
            claim = self._held.add("claim", name, held[0], asker)
            claimed = True
        finally:
            if held and not claimed:
                await held[0].abort()
        return Map({"record": record_data(taken), "claim": claim.id, "lease": self.claim_lease})

    async def _end(self, held_id: str, tx: AsyncTransaction | RecordClaim, op: str) -> None:
        """Commit or abort a transaction, and stop holding it."""
        try:
            await (tx.commit() if op == "commit" else tx.abort())
        finally:
            self._held.forget(held_id)

    async def _confirm(self, name: str, claim_id: str, owner: str) -> None:
        """Make ``owner``'s claimed take final; confirming it again changes nothing."""
        if self._held.ended_state(claim_id, owner) == "committed":
            return
        held = self._held.find("claim", claim_id, name, owner)
        await self._end(held.id, held.tx, "commit")

    def _aspace(self, name: str, space: Space) -> AsyncSpace:
        known = self._async.get(name)
        if known is None or known[0] is not space:  # a space of that name made anew
            known = self._async[name] = (space, AsyncSpace(space))
        return known[1]

    @staticmethod
    async def _done(work: Awaitable[Any], answer: Callable[[Any], Message]) -> Message:
        """The answer once ``work`` is done; its error (a timeout: null) answered."""
        try:
            return answer(await work)
        except Timeout:
            return answer(None)
        except ApiError as exc:
            return error_message(exc)
        except TupleSpaceError as exc:
            return error_message(api_error(exc))

    def _create(self, request: Message, segments: tuple[str, ...]) -> Message | Awaitable[Message]:
        space, path = self._space(segments)
        query = _query(
            request,
            ("lease", "capability", "credit", "op", "to", "redirect_lease", "principal", "carried", "id"),
        )
        lease = _seconds(query, "lease")
        credit = query.get("credit")
        op = query.get("op", "create")
        if "principal" in query and (op == "move" or "capability" in query):
            raise ApiError(
                400, "bad_request", "principal names who pays: a create, refresh, clone or call", "principal"
            )
        if op in ("refresh", "clone", "move"):
            return self._change(self._target(segments, request).record, op, query, lease, credit, request)
        if op == "call":
            return self._call(self._target(segments, request), query, request)
        if op not in ("create", "read_only"):
            raise ApiError(
                400, "bad_request", f"op is create, refresh, clone, move, call or read_only, not {op!r}", "op"
            )
        carried = "carried" in query  # a record moving here brings its credit (see _references)
        if carried and (query["carried"] != "1" or credit is None):
            raise ApiError(400, "bad_request", "carried=1 says the credit= comes with the record", "carried")
        if "capability" in query:  # a capability on the record: its address
            record = self._target(segments, request).record
            ops = {op for op in query["capability"].split(",") if op}
            accept = content_format(request.number(ACCEPT), 406)
            return answer_value(record.capability(ops, lease=lease).address, accept, CREATED)
        if op == "read_only":  # the record's $RO handle: its address
            accept = content_format(request.number(ACCEPT), 406)
            return answer_value(self._target(segments, request).record.read_only().address, accept, CREATED)
        if "id" in query:
            raise ApiError(400, "bad_request", "a new record is given its number: no id", "id")
        fields = _payload(request, space)
        if not isinstance(fields, Map):
            raise WireError("a record is created from a map of its fields")
        accept = content_format(request.number(ACCEPT), 406)

        def answer(record: Record) -> Message:
            created = answer_value(record.rid, accept, CREATED)  # its number: what a handle names
            for segment in ("spaces", *segments):
                created.add(LOCATION_PATH, segment)
            return created

        if space.core.refer is not None and any(type(v) is URI for v in fields.values()):  # as in _put
            work = asyncio.to_thread(
                space.create,
                "/".join(path),
                fields,
                credit,
                lease,
                principal=_principal(query, request),
                carried=carried,
            )
            return self._done(work, answer)
        return answer(
            space.create(
                "/".join(path), fields, credit, lease, principal=_principal(query, request), carried=carried
            )
        )

    def _change(
        self,
        record: Record,
        op: str,
        query: dict[str, str],
        lease: float | None,
        credit: str | None,
        request: Message,
    ) -> Message | Awaitable[Message]:
        """POST ``?op=refresh`` (answers the record's new expiry), ``?op=clone&to=<path>``
        (the clone's address) or ``?op=move&to=<path or address>`` (the record's new
        address) on a record."""
        accept = content_format(request.number(ACCEPT), 406)
        if op == "refresh":
            return answer_value(
                record.refresh(credit, lease, principal=_principal(query, request)), accept, CHANGED
            )
        to = query.get("to")
        if to is None:
            raise ApiError(400, "bad_request", f"{op} names its new path: ?to=<path>", "to")
        if op == "clone":
            clone = record.clone(to, credit, lease, principal=_principal(query, request))
            return answer_value(clone.address, accept, CREATED)
        redirect = {} if "redirect_lease" not in query else {"redirect_lease": _redirect(query)}
        if to.startswith("coap://"):  # to another node: requests of its own, from a thread (as in _put)
            work = asyncio.to_thread(record.move, to, **redirect)
            return self._done(work, lambda _: answer_value(URI(to), accept, CHANGED))
        record.move(to, **redirect)
        return answer_value(record.address, accept, CHANGED)

    def _call(self, target: _Target, query: dict[str, str], request: Message) -> Awaitable[Message]:
        """POST ``?op=call`` on a field holding a method: run it in the space's sandbox
        with the arguments of the payload (an array; none without one), paid by
        ``?principal=`` (the space's default account when not named), and answer what
        it returned (see :meth:`tuplespace.Record.call`)."""
        if target.tag is None:
            raise ApiError(
                400, "bad_request", "a method is called at its field: /spaces/<space>/<path>/<tag>", "tag"
            )
        args = _payload(request, target.space) if request.payload else ()
        if not isinstance(args, tuple):
            raise InvalidValue("a call's payload is the array of its arguments", "args")
        accept = content_format(request.number(ACCEPT), 406)
        work = asyncio.to_thread(target.record.call, target.tag, *args, principal=_principal(query, request))
        return self._done(work, lambda value: answer_value(value, accept, CHANGED))

    def _rules(self, request: Message, name: str, below: tuple[str, ...]) -> Message | Awaitable[Message]:
        """``/spaces/<space>/$rules`` (docs/federation.md, "Rules and methods over
        CoAP"): GET lists the space's rules, POST adds one (its JSON definition, paid
        by ``?principal=``, the space's default account when not named);
        ``/spaces/<space>/$rules/<name>``: GET tells of that rule, DELETE removes it.
        Rules travel in JSON (content format 50), as the HTTP API gives them; a space
        holds at most its ``rules.max_rules``."""
        space = self._spaces.get(name)
        if space is None:
            raise NotFound(f"this node has no space {name!r}")
        if request.number(ACCEPT) not in (None, JSON):
            raise ApiError(406, "content_format", "rules are answered in JSON (content format 50)")
        rules, method = space.rules, request.code
        if len(below) > 1:
            raise ApiError(404, "not_found", "a rule is /spaces/<space>/$rules/<name>")
        if below:
            _query(request, ())
            if method == GET:
                return self._done(get_rule(rules, below[0]), lambda answer: _json(CONTENT, answer))
            if method == DELETE:
                return self._done(remove_rule(rules, below[0]), lambda _: Message(code=DELETED))
            raise ApiError(405, "method_not_allowed", "a rule takes GET and DELETE")
        if method == GET:
            _query(request, ())
            return self._done(list_rules(rules), lambda answer: _json(CONTENT, answer))
        if method != POST:
            raise ApiError(405, "method_not_allowed", "the rules take GET (list) and POST (add)")
        query = _query(request, ("principal",))
        if request.number(CONTENT_FORMAT) != JSON:
            raise ApiError(415, "content_format", "a rule travels as its JSON definition (content format 50)")
        body = _loads(request.payload, space.limits)
        if type(body) is not dict:
            raise ApiError(400, "bad_request", "a rule is a JSON object: its definition")
        _check_body(body, "add_rule")
        rule_name, args = rule_definition(body, space.limits, self._limits.max_rule_bytes)
        added = add_rule(rules, rule_name, args, _principal(query, request))
        return self._done(added, lambda answer: _json(CREATED, answer))

    def _credit(self, request: Message, name: str, below: tuple[str, ...]) -> Message | Awaitable[Message]:
        """``/spaces/<space>/$credit`` (docs/federation.md, "Credit over CoAP"): GET
        answers the balance of ``?principal=`` (the space's default account when not
        named); GET ``$credit/challenge`` the challenge to make stamps on; POST
        ``$credit/grant``, ``$credit/transfer`` and ``$credit/mint`` grant, transfer and
        mint credit, their JSON body as the HTTP API's without the principal, which
        is ``?principal=``.  Answers are the HTTP API's, in JSON (content format 50)."""
        space = self._spaces.get(name)
        if space is None:
            raise NotFound(f"this node has no space {name!r}")
        if request.number(ACCEPT) not in (None, JSON):
            raise ApiError(406, "content_format", "credit is answered in JSON (content format 50)")
        what, method = "/".join(below), request.code
        if what not in _CREDIT_METHODS:
            raise ApiError(
                404,
                "not_found",
                "the credit resources are $credit and $credit/<challenge, grant, transfer or mint>",
            )
        if method != _CREDIT_METHODS[what]:
            raise ApiError(
                405,
                "method_not_allowed",
                f"$credit{'/' if what else ''}{what} takes {code_text(_CREDIT_METHODS[what])}",
            )
        aspace = self._aspace(name, space)
        if what == "challenge":
            _query(request, ())
            return self._done(credit_challenge(aspace), lambda answer: _json(CONTENT, answer))
        principal = _principal(_query(request, ("principal",)), request)
        if method == GET:
            return self._done(get_account(aspace, principal), lambda answer: _json(CONTENT, answer))
        if request.number(CONTENT_FORMAT) != JSON:
            raise ApiError(415, "content_format", f"$credit/{what} takes a JSON body (content format 50)")
        body = _loads(request.payload, space.limits)
        if type(body) is not dict:
            raise ApiError(400, "bad_request", f"$credit/{what} takes a JSON object")
        _check_body(body, f"{what}_credit")
        operation = {"grant": grant_credit, "transfer": transfer_credit, "mint": mint_credit}[what]
        return self._done(operation(aspace, principal, body), lambda answer: _json(CHANGED, answer))


# The credit resources below ``$credit``, and the method each takes.
_CREDIT_METHODS = {"": GET, "challenge": GET, "grant": POST, "transfer": POST, "mint": POST}

_SPACE_CLOSED = ApiError(404, "not_found", "the subscription ended: its space is closed")
_WATCH_ENDED = ApiError(
    404, "watch_ended", "the watch ended: its record is gone, its capability ended, or its space closed"
)
"""The last notification of a watch (not an error to its watcher: the watch is over)."""


def _record_changes(
    request: Message, aspace: AsyncSpace
) -> tuple[Callable[[int | None], AsyncRecordWatch], int | None]:
    """A peer's watch of the records of a space (``?op=watch_records``): what opens
    it after an event, and the event asked for."""
    query = _query(request, ("op", "events", "since", "under"))
    kinds = event_kinds(query.get("events"), CHANGE_KINDS)
    under = query.get("under")

    def opened(since: int | None) -> AsyncRecordWatch:
        return aspace.watch_records(under, kinds, since=since)

    return opened, since_param(query.get("since"), "since")


def _asker(request: Message, host: str) -> Asker:
    """Who sent ``request`` from ``host``: an OSCORE peer by its name in the keys file,
    an anonymous peer by its host (whatever port it sends from)."""
    return Asker(host, f"peer {request.sender}" if isinstance(request, PeerRequest) else host)


def _payer(request: Message) -> str:
    """Whose account pays for a request naming none: an OSCORE peer's own (its name in
    the keys file), else (an anonymous peer) the space's default account."""
    return request.sender if isinstance(request, PeerRequest) else DEFAULT_PRINCIPAL


def _principal(query: dict[str, str], request: Message) -> str:
    """Whose account pays a rule's firings, a method's steps or a record's credit:
    ``?principal=`` (which the node's permissions let only a peer allowed ``all`` name
    unless it is its own), else the peer's (see :func:`_payer`)."""
    named = query.get("principal")
    if named is None:
        return _payer(request)
    if not named:
        raise ApiError(400, "bad_request", "principal is the name of an account", "principal")
    check_principal(named)
    return named


def _check_body(body: dict[str, Any], operation: str) -> None:
    """Check the keys of the JSON body of a request for the HTTP API's ``operation``
    (its fields, and those it requires), but for the principal: over CoAP that is
    ``?principal=``, where the node's permissions see it."""
    if "principal" in body:
        message = "the principal is named with ?principal=<name>, not in the body"
        raise ApiError(400, "bad_request", message, "principal")
    op = OPERATION[operation]
    check_keys(body, op.fields - {"principal"}, tuple(key for key in op.required if key != "principal"))


def _json(code: int, answer: dict[str, Any]) -> Message:
    """An answer carrying ``answer`` as JSON (content format 50)."""
    return Message(code=code, options=[(CONTENT_FORMAT, _FORMATS[JSON])], payload=orjson.dumps(answer))


def _redirect(query: dict[str, str]) -> float | None:
    """``?redirect_lease=<s>`` of a move; ``null``: as long as the record lives."""
    return None if query["redirect_lease"] == "null" else _seconds(query, "redirect_lease")


def moved_away(space: Space, path: str, principal: str | None = None) -> ApiError | None:
    """The redirection of ``path`` if a record moved from there to another node: a 404
    with its new address as ``moved_to``, which remote handles follow.  A caller's
    access (``principal``: its account; None for the node's own lookups) pays the
    space's ``redirect_charge``, or the redirection is refused with InsufficientCredit."""
    store = space.core.engine.records
    if not store.moved:  # the common case, without the lock: no record moved away
        return None
    with space.core.lock:
        moved = store.moved_to(path)
    if moved is None:
        return None
    if principal is not None and store.redirect_charge:
        space.core.call(store.accounts.charge, principal, store.redirect_charge)
    return ApiError(404, "record_not_found", f"the record moved to {moved}", moved_to=moved)


def content_format(option: int | None, status: int) -> int:
    """The format an Accept or Content-Format option asks for (none: CBOR); ``status``
    (406 or 415) for one not served."""
    if option is None or option == CBOR:
        return CBOR
    if option == JSON:
        return JSON
    raise ApiError(
        status, "content_format", f"content format {option} is not served: use 60 (CBOR) or 50 (JSON)"
    )


def _query(request: Message, allowed: tuple[str, ...]) -> dict[str, str]:
    """The Uri-Query of ``request`` by name: 4.00 ``bad_request`` naming a parameter
    not ``allowed`` or one given twice (see :func:`query_params`)."""
    return query_params((item.partition("=")[::2] for item in request.query), allowed)


_DECODERS: dict[int, Callable[..., Any]] = {CBOR: decode_cbor, JSON: decode}


def _subscribed(request: Message, limits: Limits) -> Any:
    """The template of a subscription (``{"$any": true}`` alone: every tuple), in
    JSON or CBOR (see :func:`_fetched`)."""
    if request.number(CONTENT_FORMAT) == CBOR:
        wire = template_wire(decode_cbor(request.payload, limits))
        return ANY if wire == {"$any": True} else get_template({"template": wire}, "template", limits)
    return parse_template_text(request.payload.decode(errors="replace"), limits)


def _fetched(request: Message, limits: Limits) -> Any:
    """The payload of a FETCH of a space (a template, a record template, ``[template,
    tuple]``) in the JSON wire format: as it came (Content-Format 50), or read from
    CBOR (60, see :func:`template_wire`)."""
    if request.number(CONTENT_FORMAT) == CBOR:
        return template_wire(decode_cbor(request.payload, limits))
    return _loads(request.payload, limits)


def _whole(query: dict[str, str], name: str) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise ApiError(400, "invalid_value", f"{name} is a whole number >= 0, not {text!r}", name)
    return int(text)


# The options of a node's space that a peer sets over CoAP (PUT /spaces/<space>?options).
SETTABLE_OPTIONS = frozenset({"firing_charge", "step_charge", "max_firings", *MAX_API_METHOD_LIMITS})


def _apply_options(rules: Rules, options: dict[str, Any]) -> None:
    """With the space's lock held: set its ``rules``' charges and limits to ``options``
    (checked by :func:`~tuplespace.server._hosting.parse_options`), the others kept."""
    limits = {**dataclasses.asdict(rules.limits)}
    limits.update((key, value) for key, value in options.items() if key in limits)
    rules.apply_limits(ActiveLimits(**limits))
    if "firing_charge" in options:
        rules.apply_firing_charge(options["firing_charge"])
    if "step_charge" in options:
        rules.apply_step_charge(options["step_charge"])


def space_options(space: Space) -> Map:
    """The options of ``space`` as they travel (``GET /spaces/<space>?options``): those
    of :class:`~tuplespace.Space` and, in ``active_limits``, its rules' limits
    (``space.rules.limits``); ``clock`` is ``"simulated"`` or ``"system"``."""
    return Map(
        {
            "order": space.order,
            "capacity": space.capacity,
            "limits": Map(dataclasses.asdict(space.limits)),
            "charge_rate": space.charge_rate,
            "creation_charge": space.creation_charge,
            "redirect_charge": space.redirect_charge,
            "firing_charge": space.firing_charge,
            "step_charge": space.step_charge,
            "max_firings": space.max_firings,
            "active_limits": Map(dataclasses.asdict(space.rules.limits)),
            "operator": space.operator,
            "mint_amount": space.mint_amount,
            "mint_bits": space.mint_bits,
            "clock": "simulated" if space.clock.simulated else "system",
        }
    )


def record_data(data: RecordData | None) -> Value:
    """What a record holds (a snapshot, or what a record taken held) as it travels: its
    address, tags (in their order: CBOR maps sort their keys), fields and version; None
    for none."""
    if data is None:
        return None
    return Map(
        {"address": data.address, "tags": tuple(data.fields), "fields": data.fields, "version": data.version}
    )


def _written(lease: AsyncLease | None, accept: int) -> Message:
    if lease is None:  # a write that waited for room
        return error_message(api_error(Timeout("the space stayed full: no room for the tuple in time")))
    return answer_value(_lease(lease), accept, CREATED)


def _lease(lease: AsyncLease) -> tuple[int, float | None]:
    """A lease as it travels: its id and when it ends (None: never)."""
    return (lease.seq, lease.expires_at)


def _positive(lease: float | None) -> None:
    if lease is None or lease == 0:
        raise ApiError(400, "invalid_value", "a transaction's lease is a positive number of seconds", "lease")


def _claim_asked(query: dict[str, str], op: str) -> bool:
    """Whether ``?claim=1`` asks for the take (or take_all) to be claimed."""
    flag = query.get("claim")
    if flag is None:
        return False
    if flag != "1":
        raise ApiError(400, "invalid_value", f"claim is 1 when given, not {flag!r}", "claim")
    if op not in ("take", "take_all", "take_record"):
        raise ApiError(
            400, "bad_request", f"a {op} is not claimed: only take, take_all and take_record are", "claim"
        )
    return True


def _seconds(query: dict[str, str], name: str) -> float | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ApiError(400, "invalid_value", f"{name} is a number of seconds, not {text!r}", name) from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ApiError(400, "invalid_value", f"{name} is a finite number of seconds >= 0", name)
    return seconds


def _payload(request: Message, space: Space) -> Value:
    given = content_format(request.number(CONTENT_FORMAT), 415)
    return _DECODERS[given](request.payload, space.limits)


_FORMATS = {CBOR: bytes((CBOR,)), JSON: bytes((JSON,))}


def answer_value(value: Value, accept: int, code: int = CONTENT) -> Message:
    """An answer carrying ``value`` in the format ``accept`` (CBOR or JSON)."""
    payload = encode_cbor(value) if accept == CBOR else encode(value)
    return Message(code=code, options=[(CONTENT_FORMAT, _FORMATS[accept])], payload=payload)
