"""The state of a server and what its handlers share: who is asking, and waiting.

Blocking operations are long polls: the handler waits at most ``long_poll``
seconds, on the space's own waiters, while watching for the client going away
(the wait is withdrawn and takes nothing), for the server shutting down (the
wait answers ``{"tuple": null, "more": true}``) and for its token being revoked
(the wait is withdrawn and answers 401).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar

import orjson

from .._aio import AsyncRecordWatch, AsyncSpace, AsyncSubscription, AsyncTransaction
from .._aio import _call as _aio_call
from .._codec import to_wire
from .._errors import (
    Forbidden,
    InvalidValue,
    LimitReached,
    NotFound,
    SpaceClosed,
    SpaceFull,
    Timeout,
    TransactionError,
    TupleSpaceError,
    Unauthorized,
    ValueTooLarge,
)
from .._httpapi import Operation
from .._rate import RateLimiter
from .._rules import MAX_RULES
from .._space import Space
from .._values import DEFAULT_LIMITS, Limits, Tuple
from ._auth import Grant, Tokens, permissions_for, valid_space_name
from ._budget import Budget
from ._claims import KeptClaim, claim_tag
from ._errors import coded
from ._hosting import ClientState, Hub, SpaceInfo
from ._requests import ServiceRequest, check_keys, read_body

if TYPE_CHECKING:
    from ..stores._redis_async import AsyncRedisRecordWatch, AsyncRedisSubscription, AsyncRedisTransaction

    Stream: TypeAlias = AsyncSubscription | AsyncRecordWatch | AsyncRedisSubscription | AsyncRedisRecordWatch

__all__ = [
    "JSON",
    "NO_CONTENT",
    "Answer",
    "ApiBase",
    "Caller",
    "Messages",
    "Notice",
    "Page",
    "ServerLimits",
    "found_answer",
    "json_answer",
    "lease_out",
    "locked_call",
    "wire_or_null",
]

T = TypeVar("T")

MAX_TX_DIGITS = 20  # digits of a transaction's id in Redis (a 64-bit count)


@dataclass(frozen=True)
class ServerLimits:
    """What one request, and one client, may ask of a server.

    - ``max_body``: bytes of a request body.
    - ``max_batch``: tuples in one ``write_many``, claims confirmed in one request.
    - ``max_results``: tuples in one ``read_all`` or ``take_all`` answer.
    - ``max_answer``: bytes of the tuples of one ``read_all`` or ``take_all`` answer,
      of the records of one ``find`` answer (one is always answered, whatever its size).
    - ``max_waiting``: calls one client may have waiting at once.
    - ``max_subscriptions``: event streams one client may have open.
    - ``max_transactions``: transactions and claims one client may hold.
    - ``max_pending``: events queued for one slow event stream (it then catches up
      from the space's event log).
    - ``rate``, ``burst``: requests per second one client may make on average, and
      in a burst (``rate=None``: no limit).
    - ``max_connections``: connections one client address may hold open at once.
    - ``max_partial_bytes``: bytes of requests under way (HTTP bodies and channel
      frames begun, not yet in full) the whole server holds; past it, reading them
      pauses until bytes are freed (see ``_budget``).
    - ``read_timeout``: seconds within which a request's head and body (over HTTP),
      or a frame (on a channel), must arrive in full once its first byte came.
    - ``idle_timeout``: seconds a connection may stay open with no request under
      way, before its first request or between two over HTTP.
    - ``max_rules``: rules one space may hold (at most 100,000).
    - ``max_rule_bytes``: bytes of the JSON definition of one rule.
    - ``max_spaces``: spaces the server hosts; creating one more is refused (the
      spaces of its store are all opened, however many there are).
    - ``wire``: the limits of a tuple (:class:`tuplespace.Limits`).

    A client is a token, or the address of a request without one.
    """

    max_body: int = 8 << 20
    max_batch: int = 10_000
    max_results: int = 10_000
    max_answer: int = 16 << 20
    max_waiting: int = 1_000
    max_subscriptions: int = 100
    max_transactions: int = 10_000
    max_pending: int = 1_000
    rate: float | None = None
    burst: int = 100
    max_connections: int = 64
    max_partial_bytes: int = 64 << 20
    read_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_rules: int = 1_000
    max_rule_bytes: int = 16 << 10
    max_spaces: int = 10_000
    wire: Limits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        for name in _COUNTS:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive int, got {value!r}")
        if self.max_rules > MAX_RULES:
            raise ValueError(f"ServerLimits.max_rules is at most {MAX_RULES}, got {self.max_rules!r}")
        if self.rate is not None and not _positive(self.rate):
            raise ValueError(f"ServerLimits.rate must be a positive number or None, got {self.rate!r}")
        for name in _SECONDS:
            value = getattr(self, name)
            if not _positive(value) or not math.isfinite(value):
                raise ValueError(f"ServerLimits.{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(self.wire, Limits):
            raise ValueError(f"ServerLimits.wire must be a tuplespace.Limits, got {self.wire!r}")

    @classmethod
    def parse(cls, settings: Iterable[str]) -> ServerLimits:
        """Limits from ``NAME=VALUE`` settings (as ``tuplespace serve --limit`` takes
        them): a field of ServerLimits, or of its ``wire`` :class:`tuplespace.Limits`
        (``max_fields``, ``max_depth``, ``max_bytes``); ``rate=none`` turns the rate
        limit off; ``read_timeout`` and ``idle_timeout`` are seconds.  Raises
        ValueError naming a setting that is not one."""
        own: dict[str, Any] = {}
        wire: dict[str, int] = {}
        for setting in settings:
            name, sep, text = setting.partition("=")
            name, text = name.strip(), text.strip()
            if not sep or not text:
                raise ValueError(f"a limit is NAME=VALUE, not {setting!r}")
            if name == "rate":
                own[name] = None if text.lower() == "none" else _number(name, text, float)
            elif name in _SECONDS:
                own[name] = _number(name, text, float)
            elif name in _COUNTS:
                own[name] = _number(name, text, int)
            elif name in _WIRE:
                wire[name] = _number(name, text, int)
            else:
                known = ", ".join(sorted((*_COUNTS, *_SECONDS, *_WIRE, "rate")))
                raise ValueError(f"no limit {name!r}; the limits are {known}")
        return cls(**own, wire=dataclasses.replace(DEFAULT_LIMITS, **wire))


_COUNTS = (
    "max_body",
    "max_batch",
    "max_results",
    "max_answer",
    "max_waiting",
    "max_subscriptions",
    "max_transactions",
    "max_pending",
    "burst",
    "max_connections",
    "max_partial_bytes",
    "max_rules",
    "max_rule_bytes",
    "max_spaces",
)
_SECONDS = ("read_timeout", "idle_timeout")
_WIRE = ("max_fields", "max_depth", "max_bytes")


def _positive(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def _number(name: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"limit {name} is {what}, not {text!r}") from None


def _address(request: ServiceRequest) -> str:
    """The key of a request's client address, under which its limits are counted."""
    return "address:" + (request.client or "-")


class _Interrupted(Exception):
    """A long poll ended early: its client went away or the server is shutting down."""


class _Revoked(Exception):
    """A long poll ended early: the token it was made with was revoked."""


def _revoked() -> Unauthorized:
    return Unauthorized("the token was revoked")


class TokenWork:
    """What each token has under way, its waiting requests and event streams, each
    with the call that ends it, so that revoking the token ends them at once: a
    waiting request answers 401 and takes nothing, a stream ends.

    Used on the event loop only.  An entry lasts as long as what it ends, so this
    holds no more than the waits and streams open (bounded per client by
    ``max_waiting`` and ``max_subscriptions``); requests without a token add nothing.
    """

    def __init__(self) -> None:
        self._ends: dict[Grant, set[Callable[[], Awaitable[None]]]] = {}

    @staticmethod
    def check(grant: Grant | None) -> None:
        """401 if ``grant`` was revoked since its request was authenticated."""
        if grant is not None and grant.revoked:
            raise _revoked()

    def add(self, grant: Grant | None, end: Callable[[], Awaitable[None]]) -> None:
        if grant is not None:
            self._ends.setdefault(grant, set()).add(end)

    def discard(self, grant: Grant | None, end: Callable[[], Awaitable[None]]) -> None:
        if grant is None:
            return
        ends = self._ends.get(grant)
        if ends is not None:
            ends.discard(end)
            if not ends:
                del self._ends[grant]

    async def end(self, grant: Grant) -> None:
        """End everything ``grant`` has under way (its token was just revoked)."""
        for end in self._ends.pop(grant, ()):
            await end()

    def __len__(self) -> int:
        return sum(map(len, self._ends.values()))


@dataclass(frozen=True)
class Caller:
    grant: Grant | None
    client: str  # the key its limits are counted under

    @property
    def owner(self) -> str | None:
        return None if self.grant is None else self.grant.name


JSON = "application/json"


@dataclass(slots=True)  # not frozen: made on every request, it is made fast (and never changed)
class Answer:
    """What a handler of the service answers, whatever transport asked: a status code
    (as HTTP numbers them, which the channel sends too), the body's bytes and their
    media type (None: no body).  Each transport sends it in its own way: HTTP as a
    response with its headers, a channel as an answer frame of the status and body
    alone."""

    status_code: int
    body: bytes
    media_type: str | None = JSON


# The answer of a request that succeeds with nothing to say.
NO_CONTENT = Answer(204, b"", None)


class Notice(NamedTuple):
    """One message of an event stream: its ``kind`` (an event's, ``"lost"`` for events
    lost), its ``data`` (a JSON-ready dict) and the sequence number a client that saw
    it resumes after.  A notice of kind None is a comment, its data a short text
    (``"subscribed"``, ``"keep-alive"``): it keeps an idle stream open."""

    kind: str | None
    data: Any
    seq: int = 0


@dataclass(frozen=True)
class Messages:
    """An answer that goes on: the notices of an event stream, sent as ``notices``
    yields them until it ends or the client goes away; either way ``end`` is awaited
    then (it ends the subscription).  Only a transport that carries streams (HTTP, as
    Server-Sent Events) asks for one."""

    notices: AsyncGenerator[Notice, None]
    end: Callable[[], Awaitable[None]]


def json_answer(data: object, status: int = 200) -> Answer:
    """``data`` as a JSON answer."""
    return Answer(status, orjson.dumps(data))


def lease_out(seq: int, expires: float | None) -> dict[str, Any]:
    return {"id": seq, "expires_at": expires}


class ApiBase:
    """The state of one server, and what every handler does first."""

    def __init__(
        self,
        hub: Hub,
        tokens: Tokens,
        limits: ServerLimits,
        long_poll: float,
        claim_lease: float,
        heartbeat: float,
    ) -> None:
        self.hub = hub
        self.tokens = tokens
        self.limits = limits
        self.budget = Budget(limits.max_partial_bytes)  # of the requests under way
        self.long_poll = long_poll
        self.claim_lease = claim_lease
        self.heartbeat = heartbeat
        self.stopping = False
        self._interrupts: set[Callable[[], object]] = set()  # of the long polls waiting
        self.streams: set[Stream] = set()
        self.token_work = TokenWork()
        self._rates = None if limits.rate is None else RateLimiter(limits.rate, limits.burst)
        self.requests = 0

    # -- shutting down ----------------------------------------------------------------

    async def begin_shutdown(self) -> None:
        """Refuse new requests, answer waiting long polls and end event streams."""
        if self.stopping:
            return
        self.stopping = True
        self.hub.stopping = True
        for interrupt in list(self._interrupts):
            interrupt()
        for sub in list(self.streams):
            await sub.close()

    async def close(self) -> None:
        await self.begin_shutdown()
        await self.hub.aclose()

    # -- the prologue of every request ---------------------------------------------------

    def caller(self, request: ServiceRequest) -> Caller:
        """Who is asking: 503 while shutting down, 401 for a bad token, 429 past the rate."""
        self.requests += 1
        if self.stopping:
            raise SpaceClosed("the server is shutting down")
        try:
            grant = self.tokens.authenticate(request.authorization)
        except Unauthorized:  # a bad token counts against its address: guessing is rate limited
            if self._rates is not None:
                self._check_rate(self._rates, _address(request))
            raise
        client = _address(request) if grant is None else "token:" + grant.name
        if self._rates is not None:
            self._check_rate(self._rates, client)
        return Caller(grant, client)

    def _check_rate(self, rates: RateLimiter, client: str) -> None:
        wait = rates.take(client)
        if wait:
            message = f"more than {rates.rate:g} requests per second"
            limited = LimitReached(message, limit="rate", maximum=self.limits.burst, retry_after=wait)
            raise coded(limited, "rate_limited")

    def _denied(self, caller: Caller, needed: str, space: str) -> TupleSpaceError:
        if caller.grant is None:
            return Unauthorized(f"{needed} on space {space!r} needs a token")
        return Forbidden(f"the token {caller.grant.name!r} may not {needed} on space {space!r}")

    async def authorize(
        self, caller: Caller, name: str, needs: Operation | tuple[str, ...]
    ) -> SpaceInfo | None:
        """The space ``name`` if it exists (None if the caller may create it), after
        checking the caller has the permissions of the operation ``needs`` on it (its
        ``needs`` and ``one_of`` in the operation table), or every one of ``needs``."""
        if not valid_space_name(name):
            message = (
                "a space name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
            raise coded(InvalidValue(message, "space"), "bad_request")
        info = self.hub.spaces.get(name)
        if info is None:  # not hosted here yet, maybe in the store's catalog
            info = await self.hub.get(name)
        anonymous = self.hub.default_anonymous if info is None else info.anonymous
        perms = permissions_for(self.tokens, caller.grant, name, anonymous)
        if isinstance(needs, Operation):
            if needs.one_of and perms.isdisjoint(needs.one_of):
                raise self._denied(caller, needs.one_of[0], name)
            needs = needs.needs
        for needed in needs:
            if needed not in perms:
                raise self._denied(caller, needed, name)
        if info is None and "admin" not in perms:
            raise NotFound(f"no space {name!r}")
        if info is not None and info.space is None and asyncio.current_task() is None:
            # A channel's request runs with no task until it first waits; a space kept
            # elsewhere (its client's timeouts) needs one.
            await asyncio.sleep(0)
        return info

    async def _begin(
        self, request: ServiceRequest, space: str, op: Operation, fields: frozenset[str] | None = None
    ) -> tuple[Caller, SpaceInfo | None, dict[str, Any]]:
        """The prologue of the operation ``op``: who asks, the space if it exists (after
        checking the permissions ``op`` needs), and the body, holding only the fields of
        ``op`` (or the keys ``fields``) and every one it requires."""
        caller = self.caller(request)
        info = await self.authorize(caller, space, op)
        body = await read_body(request, self.limits.max_body)
        check_keys(body, op.fields if fields is None else fields, op.required)
        return caller, info, body

    def stream_room(self, caller: Caller) -> ClientState:
        """The caller's state, once checked that it may open one more event stream (429
        if it has as many open as it may)."""
        state = self.hub.client(caller.client)
        self._within(caller, state.subscriptions, "max_subscriptions", "event streams")
        return state

    def _within(self, caller: Caller, used: int, limit: str, what: str) -> None:
        """429 when the caller already has ``used`` of its most ``limit`` (a field of
        :class:`ServerLimits`), ``what`` they are."""
        maximum: int = getattr(self.limits, limit)
        if used >= maximum:
            self.hub.release_client(caller.client)
            raise LimitReached(f"this client already has {maximum} {what}", limit=limit, maximum=maximum)

    async def space(self, caller: Caller, name: str, info: SpaceInfo | None) -> SpaceInfo:
        """``info``, or the space ``name`` created with the server's default options."""
        if info is not None and not info.deleted:
            return info
        if info is not None:
            raise NotFound(f"no space {name!r}")
        created, _ = await self.hub.create(name, {})
        return created

    # -- waiting ------------------------------------------------------------------------

    async def _race(
        self, request: ServiceRequest, grant: Grant | None, work: Coroutine[Any, Any, T], wait: float
    ) -> T:
        """Await ``work`` for at most ``wait`` seconds (then Timeout), unless the client
        goes away or the server stops first (then _Interrupted), or the token ``grant``
        is revoked (then _Revoked); either way ``work`` is cancelled, which withdraws
        its wait.

        The wait is bounded here, by a timer of the loop, rather than by a deadline of
        the space: ``work`` waits without one, the cheapest wait a space has."""
        task = asyncio.current_task()
        if task is None:  # a channel request runs eagerly until it waits: this is its task's
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
        if self.stopping:
            work.close()
            raise _Interrupted
        if grant is not None and grant.revoked:
            work.close()
            raise _Revoked
        ended: type[Exception] | None = None

        def end(why: type[Exception]) -> None:
            nonlocal ended
            if ended is None:
                ended = why
                task.cancel()

        async def revoked() -> None:
            end(_Revoked)

        loop = asyncio.get_running_loop()
        timer = loop.call_later(wait, end, Timeout)
        unwatch = request.watch_disconnect(functools.partial(end, _Interrupted))
        # Shutting down may begin in another thread.
        stop = functools.partial(loop.call_soon_threadsafe, end, _Interrupted)
        self._interrupts.add(stop)
        self.token_work.add(grant, revoked)
        try:
            return await work
        except asyncio.CancelledError:
            if ended is not None and task.uncancel() == 0:
                raise ended from None
            raise  # cancelled from outside as well
        finally:
            self._interrupts.discard(stop)
            self.token_work.discard(grant, revoked)
            timer.cancel()
            unwatch()

    def _claim_ids(self, body: dict[str, Any]) -> list[str]:
        ids = body.get("confirm", [])
        if type(ids) is not list or not all(type(x) is str for x in ids):
            raise coded(InvalidValue("confirm is a list of claim ids", "confirm"), "bad_request")
        if len(ids) > self.limits.max_batch:
            raise ValueTooLarge(
                f"{len(ids)} claims, more than {self.limits.max_batch} in one request",
                "confirm",
                limit="max_batch",
                maximum=self.limits.max_batch,
            )
        return ids

    async def _confirm(self, info: SpaceInfo, caller: Caller, claim_id: str) -> bool:
        """Make a claimed take final; False if the claim is gone (its tuple went back)."""
        if info.space is None:  # kept in Redis: the claim is there, whichever server made it
            return await self._end_kept_claim(info, caller, claim_id, True) == "committed"
        handle = self.hub.find("claim", claim_id, info, caller.owner)
        if handle is None:
            return self.hub.ended_state(claim_id, caller.owner) == "committed"
        try:
            await handle.tx.commit()
        except TransactionError:
            return False
        finally:
            self.hub.forget(claim_id)
        return True

    async def claimed_take(
        self,
        request: ServiceRequest,
        caller: Caller,
        info: SpaceInfo,
        timeout: float | None,
        take: Callable[
            [AsyncTransaction | AsyncRedisTransaction, float | None], Coroutine[Any, Any, T | None]
        ],
    ) -> tuple[T | None, bool, dict[str, Any] | None]:
        """A take under a claim: ``take(tx, 0)`` takes for the claim's transaction ``tx``
        without waiting (None: nothing), ``take(tx, None)`` waits (see :meth:`poll`).
        What it took, whether the client should ask again, and the claim (its id and
        expiry; None when nothing was taken, and the claim is gone)."""
        self.hub.check_handle_room(caller.client)
        tx, secret = self._claiming(caller, info)
        claimed = False
        try:
            found, more = await take(tx, 0), False
            if found is None and timeout != 0:
                # The claim's lease covers the wait too, so it cannot run out before the take.
                wait = self.long_poll if timeout is None else min(timeout, self.long_poll)
                await tx.renew(self.claim_lease + wait)
                found, more = await self.poll(request, caller, timeout, lambda w: take(tx, w), tried=True)
                if found is not None:
                    await tx.renew(self.claim_lease)
            if found is None:
                return None, more, None
            held = self._claim(caller, info, tx, secret)
            claimed = True
            return found, False, held
        finally:
            if not claimed:
                await tx.abort()

    def _claiming(
        self, caller: Caller, info: SpaceInfo
    ) -> tuple[AsyncTransaction | AsyncRedisTransaction, str]:
        """A transaction with the claim lease for a claimed take, and the secret of its
        claim's id.  On a space kept in Redis it is a claim there from its beginning
        (:class:`KeptClaim`), named by its tag, the digest of the secret and its owner;
        its outcome is remembered a claim lease past a wait."""
        aspace = info.aspace
        if isinstance(aspace, AsyncSpace):
            return aspace.transaction(lease=self.claim_lease), ""
        secret = self.hub.new_id()
        tag = claim_tag(secret, caller.owner)
        return aspace.claim(tag, self.claim_lease, self.claim_lease + self.long_poll), secret

    def _claim(
        self, caller: Caller, info: SpaceInfo, tx: AsyncTransaction | AsyncRedisTransaction, secret: str
    ) -> dict[str, Any]:
        """Hold ``tx``, whose takes a claimed take answers, as the caller's claim: its id
        and expiry.  The id of a claim kept in Redis is its transaction's there, a dot and
        the secret (see :meth:`_claiming`)."""
        if isinstance(tx, AsyncTransaction):
            handle = self.hub.add("claim", info, tx, caller.owner, caller.client)
        else:
            claim = KeptClaim(tx, claim_tag(secret, caller.owner), self.claim_lease)
            handle = self.hub.add("claim", info, claim, caller.owner, caller.client, f"{tx.id}.{secret}")
        return {"id": handle.id, "expires_at": tx.expires_at}

    async def _end_kept_claim(
        self, info: SpaceInfo, caller: Caller, claim_id: str, confirm: bool
    ) -> str | None:
        """Confirm or release the claim ``claim_id`` of a space kept in Redis, made by this
        server or by another on that Redis (its id is its transaction's there, a dot and
        its secret):
        its outcome, ``"committed"`` or ``"aborted"``; None if there is no such claim."""
        tx_id, dot, secret = claim_id.partition(".")
        if not dot or not tx_id.isascii() or not tx_id.isdigit() or len(tx_id) > MAX_TX_DIGITS:
            return None
        handle = self.hub.find("claim", claim_id, info, caller.owner)
        if handle is not None and isinstance(handle.tx, KeptClaim):
            try:
                return await handle.tx.end(confirm)
            finally:
                self.hub.forget(claim_id)
        aspace = info.aspace
        assert not isinstance(aspace, AsyncSpace)
        return await aspace.end_claim(tx_id, claim_tag(secret, caller.owner), confirm, self.claim_lease)

    async def poll(
        self,
        request: ServiceRequest,
        caller: Caller,
        timeout: float | None,
        call: Callable[[float | None], Coroutine[Any, Any, T]],
        *,
        tried: bool = False,
    ) -> tuple[T | None, bool]:
        """Run ``call(0)``, then ``call(None)`` as a long poll of at most ``long_poll``
        seconds (``tried``: the caller has just found nothing without waiting, so go
        straight to the wait).

        Returns ``(result, False)``, or ``(None, more)`` when nothing came in time;
        ``more`` is True when the wait was cut short (by the long-poll maximum or a
        shutdown) and the client should ask again.
        """
        if not tried:
            try:  # most calls need no wait: they finish without the machinery of one
                return await call(0.0), False
            except Timeout:
                if timeout == 0:
                    return None, False
            except SpaceFull:
                if timeout == 0:
                    raise
        wait = self.long_poll if timeout is None else min(timeout, self.long_poll)
        cut = timeout is None or timeout > self.long_poll
        state = self.hub.client(caller.client)
        self._within(caller, state.waiting, "max_waiting", "waiting calls")
        state.waiting += 1
        try:
            return await self._race(request, caller.grant, call(None), wait), False
        except Timeout:
            return None, cut
        except _Interrupted:
            return None, True
        except _Revoked:
            raise _revoked() from None
        finally:
            state.waiting -= 1
            self.hub.release_client(caller.client)

    async def waiting_page(
        self,
        request: ServiceRequest,
        caller: Caller,
        timeout: float | None,
        find: Callable[[float | None], Coroutine[Any, Any, tuple[list[Tuple], int | None]]],
    ) -> tuple[list[Tuple], int | None, bool]:
        """A page of a ``read_all`` or ``take_all``: ``find(0)``, then, if it found
        nothing and ``timeout`` is not 0, ``find(None)`` as a long poll (see :meth:`poll`).

        Returns the tuples, the cursor of the next page, and whether the wait was cut
        short (then the tuples are none and the client should ask again)."""
        found, cursor = await find(0)
        if found or timeout == 0:
            return found, cursor, False
        page, more = await self.poll(request, caller, timeout, find, tried=True)
        return ([], None, more) if page is None else (*page, False)

    # -- helpers of the handlers -----------------------------------------------------------

    @staticmethod
    def _existing(info: SpaceInfo | None, name: str) -> SpaceInfo:
        if info is None or info.deleted:
            raise NotFound(f"no space {name!r}")
        return info


class Page:
    """The tuples of one ``read_all`` or ``take_all`` answer: the space offers them a
    batch at a time to :meth:`fits`, which keeps as many as ``max_results`` tuples and
    ``max_answer`` bytes of JSON allow (see ``Engine.find_page``)."""

    __slots__ = ("_left", "_most", "_room", "_wires")

    def __init__(self, limits: ServerLimits) -> None:
        self._most = limits.max_answer
        self._left = limits.max_answer  # bytes
        self._room = limits.max_results  # tuples
        self._wires: dict[int, Any] = {}  # by the id of the tuple: a page may be shuffled

    def fits(self, batch: list[Tuple]) -> int:
        """How many tuples of ``batch`` the page keeps (the first of a page, whatever its size).

        Tuples are measured by groups, one encoding each, as large as half the bytes
        left hold at the average size so far: few calls for small tuples, little
        encoded past the limit for large ones."""
        wires = self._wires
        kept = 0
        while kept < len(batch) and self._room > 0:
            step = 1
            if wires:
                average = max(1, (self._most - self._left) // len(wires))
                step = max(1, min(self._room, self._left // (2 * average)))
            group = batch[kept : kept + step]
            encoded = [to_wire(t) for t in group]
            size = len(orjson.dumps(encoded)) - 1  # each tuple and its comma
            if size > self._left and (wires or len(group) > 1):
                for t, w in zip(group, encoded, strict=True):  # where the group is cut
                    size = len(orjson.dumps(w)) + 1
                    if size > self._left and wires:
                        break
                    wires[id(t)] = w
                    self._left -= size
                    self._room -= 1
                    kept += 1
                return kept
            for t, w in zip(group, encoded, strict=True):
                wires[id(t)] = w
            self._left -= size
            self._room -= len(group)
            kept += len(group)
        return kept

    def answer(self, found: list[Tuple], fields: dict[str, Any]) -> Answer:
        """``{"tuples": found, **fields}``."""
        wires = self._wires
        return json_answer({"tuples": [wires[id(t)] for t in found], **fields})


def wire_or_null(t: Tuple | None) -> Any:
    return None if t is None else to_wire(t)


def found_answer(t: Tuple | None, more: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"tuple": wire_or_null(t)}
    if more:
        out["more"] = True
    return out


async def locked_call(space: Space, operation: Callable[..., T], *args: Any) -> T:
    """Run an engine operation under the space's lock; return once it is durable."""
    result: T = await _aio_call(space.core, operation, *args)
    return result
