"""A space served by ``tuplespace serve``, used over HTTP (docs/http-api.md).

:class:`AsyncRemoteSpace` has the operations of :class:`~tuplespace.AsyncSpace`, with
the same meaning and the same exceptions: tuples and templates travel in the wire
format, and an error answered by the server is raised as the exception the embedded
space raises for it.  All calls of one space share one HTTP client, so connections
are reused.

- Requests travel on the server's channel (docs/http-api.md): WebSockets that carry
  one request after another, a frame each way, kept open and reused; over HTTP
  when the server has no channel or a request is large.  ``channel=False`` keeps
  to HTTP.
- A blocking ``read`` or ``take`` is a long poll; one that outlasts the server's
  long-poll maximum is asked again, transparently, for the time left.
- No take loses a tuple: every take (and take_all, take_record) asks for a claim, and
  the space confirms it once the answer has arrived, riding on its next take or sent
  alone within about a second.  A take handed to the program stays taken when the
  program ends without closing the space: the space confirms what it holds when it
  is closed, dropped (garbage collected) or still open at interpreter exit, and, for
  an async space, when its event loop shuts down.  If the answer never arrives (or
  the process is killed first), the claim runs out on the server and the tuple
  returns to its place.
- Subscriptions read Server-Sent Events; when the connection breaks they reconnect
  and resume after the last event received, so nothing is missed while the server's
  event log still holds it (else :class:`~tuplespace.EventsLost`, as embedded).
- :meth:`~AsyncRemoteSpace.close` wakes every call still waiting on the space with
  :class:`~tuplespace.SpaceClosed`.

A server that cannot be reached raises :class:`~tuplespace.TupleSpaceError` saying so.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

import httpx
import orjson

from .._codec import to_wire
from .._credit import check_principal
from .._errors import (
    EventsLost,
    InvalidValue,
    LimitReached,
    SpaceClosed,
    SpaceFull,
    Timeout,
    TransactionAborted,
    TransactionError,
    TupleSpaceError,
)
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, check_existing
from .._mint import Challenge
from .._recordhandles import RecordData, check_revocable
from .._rules import RuleInfo
from .._rulewire import definition_to_wire
from .._templates import ANY, Template
from .._upcall import AsyncUpcall
from .._values import URI, Credit, Map, Value, handle_address
from ._async_subscription import AsyncRemoteRecordWatch, AsyncRemoteStream, AsyncRemoteSubscription
from ._async_transport import AsyncChannelTransport, AsyncHTTPTransport
from ._channel import SPIN
from ._common import (
    CONFIRM_DELAY,
    AsyncLease,
    Confirmations,
    Tuple,
    check_change_kinds,
    check_kinds,
    check_lease,
    check_limit,
    check_max_pending,
    check_since,
    check_spin,
    check_timeout,
    credit_wire,
    error_code,
    error_from_answer,
    field_wire,
    fill,
    logger,
    parse_url,
    record_data_from_wire,
    record_template_wire,
    rule_from_wire,
    space_routes,
    template_wire,
    tuple_from_wire,
    tuple_wire,
    tuples_wire,
    unreachable,
    value_from_wire,
)
from ._inprocess import AsyncInProcessTransport
from ._primitives import AsyncLater, AsyncLock, AsyncOpenable, opened_later

__all__ = [
    "AsyncCreditCalls",
    "AsyncRemoteClock",
    "AsyncRemoteRecord",
    "AsyncRemoteRules",
    "AsyncRemoteSpace",
    "AsyncRemoteTransaction",
    "AsyncRulesHost",
]

# The transports a space may use, by name (see _async_transport.py).
TRANSPORTS: dict[str, type[AsyncHTTPTransport]] = {
    "http": AsyncHTTPTransport,
    "channel": AsyncChannelTransport,
    "in-process": AsyncInProcessTransport,
}


def _monotonic() -> float:
    return time.monotonic()


class AsyncCreditCalls:
    """The credit calls of :class:`~tuplespace.Space` for a remote space: over HTTP
    (:class:`AsyncRemoteSpace`) or over CoAP (the space's ``$credit`` resource,
    docs/federation.md), each sent as an operation of the HTTP API's table through
    the space's ``request``.  Over HTTP the caller's own account is its token's name
    (``anonymous`` without one) and another account is for an ``admin`` of the space;
    over CoAP the caller's own account is the space's default one and another is for
    a peer allowed ``all``."""

    async def grant_credit(self: AsyncRulesHost, principal: str, amount: Credit | int | str) -> Credit:
        """See :meth:`Space.grant_credit <tuplespace.Space.grant_credit>`; needs the
        ``admin`` permission on the space."""
        body = {"principal": principal, "amount": credit_wire(amount, "amount")}
        answer = await self.request("grant_credit", body)
        return _credit(answer["balance"])

    async def account(self: AsyncRulesHost, principal: str) -> Credit:
        """See :meth:`Space.account <tuplespace.Space.account>`; an account other than
        the caller's own needs the ``admin`` permission on the space."""
        check_principal(principal)
        answer = await self.request("get_account", params={"principal": principal}, again=True)
        return _credit(answer["balance"])

    async def transfer_credit(
        self: AsyncRulesHost, source: str, target: str, amount: Credit | int | str
    ) -> Credit:
        """See :meth:`Space.transfer_credit <tuplespace.Space.transfer_credit>`; a
        ``source`` other than the caller's own account needs the ``admin`` permission
        on the space."""
        body = {"principal": source, "to": target, "amount": credit_wire(amount, "amount")}
        answer = await self.request("transfer_credit", body)
        return _credit(answer["balance"])

    async def credit_challenge(self: AsyncRulesHost) -> Challenge:
        """See :meth:`Space.credit_challenge <tuplespace.Space.credit_challenge>`."""
        answer = await self.request("credit_challenge", again=True)
        return Challenge(answer["challenge"], answer["bits"], _credit(answer["amount"]), answer["expires"])

    async def mint_credit(
        self: AsyncRulesHost, challenge: str, nonce: str, *, principal: str | None = None
    ) -> Credit:
        """See :meth:`Space.mint_credit <tuplespace.Space.mint_credit>`: the credit goes
        to the caller's account (its token's name, ``anonymous`` without a token);
        ``principal`` names another, which needs the ``admin`` permission on the space."""
        body: dict[str, Any] = {"challenge": challenge, "nonce": nonce}
        if principal is not None:
            body["principal"] = principal
        answer = await self.request("mint_credit", body)
        return _credit(answer["balance"])


class AsyncRemoteSpace(AsyncCreditCalls):
    """A space on a server, with the methods of :class:`~tuplespace.AsyncSpace`.

    >>> space = await tuplespace.connect_async("http://127.0.0.1:8765/spaces/jobs")  # doctest: +SKIP
    >>> await space.write(("job", 1, "resize"))  # doctest: +SKIP
    >>> await space.take(("job", int, str), timeout=5)  # doctest: +SKIP
    ('job', 1, 'resize')

    ``token`` is sent as ``Authorization: Bearer <token>``; ``connect_timeout`` bounds
    making a connection and every answer that involves no waiting; ``confirm_delay``
    is how long the claim of a take waits for the next take to carry its confirmation
    before it is sent alone (keep it well below the server's claim lease; see "Takes
    stay taken" in docs/http-api.md for when else it is sent); ``channel=False``
    sends every request over HTTP rather than on the server's channel.  ``spin`` is
    how long a call of the sync binding checks for its answer before its thread
    sleeps, when answers to that operation have come that fast (200 µs by default
    with more than one CPU, else 0; 0 never spins); the async binding never spins.
    ``transport`` names how requests travel (``TRANSPORTS``, see
    :mod:`tuplespace.client._async_transport`): ``"channel"`` (the default), ``"http"``
    (as ``channel=False``) or ``"in-process"``, which ``app`` chooses: an application
    of :func:`tuplespace.server.create_app` called in this process, without sockets.

    Leases are :class:`AsyncLease` (``await lease.renew(30)``).  ``subscribe`` and
    ``transaction`` give handles that need the server to open: the sync binding opens
    them at once, the async one when they are awaited, entered as context managers or
    first used.  A function successor of ``replace`` cannot travel: it raises
    ``TypeError``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        connect_timeout: float = 10.0,
        confirm_delay: float = CONFIRM_DELAY,
        channel: bool = True,
        spin: float = SPIN,
        transport: str | None = None,
        app: Any = None,
    ) -> None:
        base, name = parse_url(url)
        self.url = url
        self.name = name
        self._routes = space_routes(name)
        self._headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if app is not None:
            transport = "in-process"
        elif transport is None:
            transport = "channel" if channel else "http"
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; known transports: {', '.join(TRANSPORTS)}")
        options: dict[str, Any] = {"app": app} if app is not None else {}
        if transport == "channel":
            options["spin"] = check_spin(spin)
        self._transport = TRANSPORTS[transport](url, base, self._headers, connect_timeout, **options)
        confirm = self._routes["confirm_claim"][1]
        self._confirmations = Confirmations(url, confirm, self._transport.sync_client)
        self._confirm_delay = confirm_delay
        self._confirm_later = AsyncLater(self._confirmations.end)
        # The last resort of a space dropped, or still open at interpreter exit.
        weakref.finalize(self, self._confirmations.end_soon)
        self._closed = False
        self._closing = False
        # The handles that end with this one (close); each adds and removes itself.
        self.open_transactions: set[AsyncRemoteTransaction] = set()
        self.open_streams: set[AsyncRemoteStream[Any]] = set()
        self.rules = AsyncRemoteRules(self)
        self.clock = AsyncRemoteClock(self)
        self._stats = dict.fromkeys(
            (
                "requests",
                "long_polls_reissued",
                "claims_confirmed_riding",
                "claims_confirmed_alone",
                "claims_lost",
            ),
            0,
        )

    @property
    def closed(self) -> bool:
        return self._closed

    async def create_space(self, options: dict[str, Any]) -> None:
        """Create the space with ``options`` (those of ``PUT /spaces/{space}``) unless it
        exists; raise if it exists with other options.  Needs the ``admin`` permission."""
        await self.request("put_space", options)

    # -- requests: the seam the space's handles (records, transactions, streams) use --------

    def check_open(self) -> None:
        """Raise :class:`~tuplespace.SpaceClosed` once this handle is closed."""
        if self._closed:
            raise SpaceClosed("the space was closed")

    async def request(
        self,
        operation: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str | int] | None = None,
        wait: float | None = 0.0,
        again: bool = False,
    ) -> Any:
        """Send the request of ``operation`` (its name in the operation table of the HTTP
        API) about this space; its JSON answer (None when it has none).

        ``params``: the other parameters of its path (a transaction's ``tx_id``, ...).
        ``wait``: how long the server may hold it.  ``again``: the request may be sent
        a second time if the connection fails before an answer.
        """
        self.check_open()
        method, path = self._routes[operation]
        if params:
            path = fill(path, params)
        content = None if body is None else orjson.dumps(body)
        self._stats["requests"] += 1
        status, data = await self._transport.request(method, path, content, wait, again)
        if status >= 400:
            raise error_from_answer(status, data, self.url)
        return orjson.loads(data) if data else None

    async def long_poll(
        self,
        operation: str,
        body: dict[str, Any],
        timeout: float | None,
        key: str,
        again: bool = False,
        claim: bool = False,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """Post until the answer holds ``key``, or says the wait is over: the server cuts a
        long wait at its long-poll maximum (``"more": true``) and it is asked again for
        the time left.  ``claim``: a take under a claim (see :meth:`_claiming`)."""
        wait = check_timeout(timeout)
        deadline = None if wait is None else _monotonic() + wait
        while True:
            left = None if deadline is None else max(deadline - _monotonic(), 0.0)
            body["timeout"] = left
            if claim:
                answer = await self._claiming(operation, body, left)
            else:
                answer = await self.request(operation, body, params=params, wait=left, again=again)
            if answer.get(key) is not None or not answer.get("more"):
                return answer
            self._stats["long_polls_reissued"] += 1

    async def open_stream(
        self, operation: str, params: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        """Open the event stream of ``operation`` (``events`` or ``record_events``) of
        this space: the response, whose lines are read as they come."""
        return await self._transport.stream(self._routes[operation][1], params, headers)

    def interrupt_stream(self, response: httpx.Response) -> None:
        """End an event stream opened by :meth:`open_stream`, from any task."""
        self._transport.interrupt(response)

    # -- writing -------------------------------------------------------------------------

    async def write(
        self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None
    ) -> AsyncLease:
        """See :meth:`Space.write <tuplespace.Space.write>`; the lease is an :class:`AsyncLease`."""
        body = {"tuple": tuple_wire(t), "lease": check_lease(lease)}
        try:
            answer = await self.long_poll("write", body, timeout, "lease")
        except SpaceFull:
            if timeout == 0:
                raise
            # A write that waited and found no room ran out of time, as embedded.
            raise Timeout("the space stayed full: no room for the tuple in time") from None
        return self._lease(answer["lease"])

    async def write_many(
        self, tuples: Iterable[Iterable[Value]], lease: float | None = None
    ) -> list[AsyncLease]:
        """See :meth:`Space.write_many <tuplespace.Space.write_many>`."""
        body = {"tuples": tuples_wire(tuples), "lease": check_lease(lease)}
        answer = await self.request("write_many", body)
        return [self._lease(x) for x in answer["leases"]]

    def _lease(self, wire: dict[str, Any]) -> AsyncLease:
        return AsyncLease(self, wire["id"], wire["expires_at"])

    async def _renew(self, seq: int, seconds: float | None) -> float | None:
        body = {"lease": check_lease(seconds)}
        answer = await self.request("renew_lease", body, params={"lease_id": seq})
        expires: float | None = answer["expires_at"]
        return expires

    async def _cancel(self, seq: int) -> None:
        await self.request("cancel_lease", params={"lease_id": seq})

    # -- reading and taking -------------------------------------------------------------------

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.read <tuplespace.Space.read>`."""
        return _found(await self.read_at(None, template, timeout), template)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`Space.take <tuplespace.Space.take>`."""
        return _found(await self._take(template, timeout), template)

    async def try_read(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_read <tuplespace.Space.try_read>`."""
        return await self.read_at(None, template, 0)

    async def try_take(self, template: Any) -> Tuple | None:
        """See :meth:`Space.try_take <tuplespace.Space.try_take>`."""
        return await self._take(template, 0)

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`Space.read_all <tuplespace.Space.read_all>`.  The server answers so
        many tuples at a time (its ``max_results`` and ``max_answer``); the answers are
        gathered, each going on where the one before stopped (see :meth:`read_pages`).
        A wait (``timeout``) is a long poll, asked again for the time left when the
        server cuts it short."""
        return await self.all_at(None, "read_all", template, limit, timeout)

    def read_pages(self, template: Any, limit: int | None = None) -> AsyncIterator[list[Tuple]]:
        """The tuples :meth:`read_all` returns, one answer of the server at a time, each
        asked for as the one before has been iterated: a read of any size holds one
        answer in memory.  The tuples stay in the space.

        The answers walk the space's order from a cursor (docs/http-api.md): a tuple
        written meanwhile is met if its place is still ahead (in FIFO order, not in
        LIFO), one taken meanwhile is not, and none is met twice.

        >>> async for page in space.read_pages(("job", int, str)):   # doctest: +SKIP
        ...     print(len(page))
        """
        return self._pages(None, "read_all", template, limit)

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`Space.take_all <tuplespace.Space.take_all>`.  The tuples come under
        a claim, as a take's do, waited for or not: an answer lost on the way puts them
        back."""
        return await self.all_at(None, "take_all", template, limit, timeout)

    async def count(self, template: Any) -> int:
        """See :meth:`Space.count <tuplespace.Space.count>`."""
        return await self.count_at(None, template)

    async def read_at(self, tx_id: str | None, template: Any, timeout: float | None) -> Tuple | None:
        """A read of the space (``tx_id`` None) or in its transaction ``tx_id``, None on timeout."""
        body = {"template": template_wire(template)}
        operation, params = _in("read", tx_id)
        answer = await self.long_poll(operation, body, timeout, "tuple", again=True, params=params)
        return None if answer["tuple"] is None else tuple_from_wire(answer["tuple"])

    async def _take(self, template: Any, timeout: float | None) -> Tuple | None:
        """Take under a claim; the claims of earlier takes ride along to be confirmed."""
        body: dict[str, Any] = {"template": template_wire(template), "claim": True}
        answer = await self.long_poll("take", body, timeout, "tuple", claim=True)
        return None if answer["tuple"] is None else tuple_from_wire(answer["tuple"])

    async def _claiming(self, operation: str, body: dict[str, Any], wait: float | None) -> Any:
        """Send a take under a claim, with the claims of earlier takes riding along to
        be confirmed; keep the new claim to confirm later."""
        confirm = self._confirmations.pop_all()
        if confirm:
            body["confirm"] = confirm
        else:
            body.pop("confirm", None)
        try:
            answer = await self.request(operation, body, wait=wait, again=True)
        except BaseException:
            self._confirmations.settle(confirm, confirm)
            if confirm:
                self._confirm_later.schedule(self._confirm_delay, self._confirm_pending)
            raise
        self._confirmations.settle(confirm)
        self._confirmed(confirm, answer.get("unconfirmed", ()))
        claim = answer.get("claim")
        if claim is not None:
            self._confirmations.add(claim["id"])
            self._confirm_later.schedule(self._confirm_delay, self._confirm_pending)
        return answer

    def _confirmed(self, sent: list[str], unconfirmed: Iterable[str]) -> None:
        lost = set(unconfirmed)
        self._stats["claims_confirmed_riding"] += len(sent) - len(lost)
        for claim_id in lost:
            self._claim_lost(claim_id)

    def _claim_lost(self, claim_id: str) -> None:
        self._stats["claims_lost"] += 1
        self._confirmations.lost(claim_id)

    async def _confirm_pending(self) -> None:
        """Confirm, one request each, the claims no take has carried."""
        while claims := self._confirmations.pop_all():
            for i, claim_id in enumerate(claims):
                try:
                    await self.request("confirm_claim", params={"claim": claim_id}, again=True)
                except TupleSpaceError as exc:
                    if error_code(exc) == "unknown_claim":
                        self._claim_lost(claim_id)
                        continue
                    self._confirmations.settle(claims, claims[i:])
                    if isinstance(exc, SpaceClosed):
                        return
                    logger.warning("confirming claim %s of %s failed: %s", claim_id, self.url, exc)
                    if not self._closing:
                        self._confirm_later.schedule(self._confirm_delay, self._confirm_pending)
                    return
                except BaseException:  # cancelled: what is left is still to confirm
                    self._confirmations.settle(claims, claims[i:])
                    raise
                self._stats["claims_confirmed_alone"] += 1
            self._confirmations.settle(claims)

    async def all_at(
        self, tx_id: str | None, operation: str, template: Any, limit: int | None, timeout: float | None = 0
    ) -> list[Tuple]:
        """``read_all`` or ``take_all`` (``operation``) of the space or in its transaction
        ``tx_id``, page after page."""
        found: list[Tuple] = []
        async for page in self._pages(tx_id, operation, template, limit, timeout):
            found += page
        return found

    async def _pages(
        self, tx_id: str | None, operation: str, template: Any, limit: int | None, timeout: float | None = 0
    ) -> AsyncIterator[list[Tuple]]:
        """The answers of a ``read_all`` or ``take_all``.  A server answers so many tuples
        at a time (then ``"more": true``): a read goes on from the cursor of the answer
        before, a take is asked again, each for the limit left, until the last answer.
        A read in a transaction has no cursor, so it raises instead.  The tuples of a
        ``take_all`` come under a claim, as those of a take.  With a ``timeout``, the
        first answer is a long poll, asked again for the time left while the server
        cuts the wait short (an answer with no tuples and ``"more": true``)."""
        body: dict[str, Any] = {"template": template_wire(template), "limit": check_limit(limit)}
        wait = check_timeout(timeout)
        deadline = None if wait is None else _monotonic() + wait
        reading = operation == "read_all"
        # Takes in a transaction are held by it; others are claimed, as take's are.
        claiming = not reading and tx_id is None
        operation, params = _in(operation, tx_id)
        if claiming:
            body["claim"] = True
        got = 0
        while True:
            left = None if deadline is None else max(deadline - _monotonic(), 0.0)
            waiting = not got and left != 0
            if waiting:
                body["timeout"] = left
            else:
                body.pop("timeout", None)
                left = 0
            if claiming:
                answer = await self._claiming(operation, body, left)
            else:
                answer = await self.request(operation, body, params=params, wait=left, again=reading)
            page = [tuple_from_wire(t) for t in answer["tuples"]]
            if waiting and not page and answer.get("more"):
                self._stats["long_polls_reissued"] += 1
                continue
            got += len(page)
            if reading and answer.get("more") and "cursor" not in answer:
                raise _cut(got)
            yield page
            if not answer.get("more"):
                return
            if reading:
                body["cursor"] = answer["cursor"]
            if limit is not None:
                body["limit"] = limit - got

    async def count_at(self, tx_id: str | None, template: Any) -> int:
        """A count of the space or in its transaction ``tx_id`` (see :meth:`read_at`)."""
        operation, params = _in("count", tx_id)
        body = {"template": template_wire(template)}
        answer = await self.request(operation, body, params=params, again=True)
        n: int = answer["count"]
        return n

    # -- atomic compound operations -------------------------------------------------------------

    async def replace(
        self,
        template: Any,
        successor: Iterable[Value],
        lease: float | None = None,
        timeout: float | None = None,
    ) -> Tuple:
        """See :meth:`Space.replace <tuplespace.Space.replace>`.

        ``successor`` is the new tuple: a function of the taken tuple cannot travel to
        the server (``TypeError``); take and write in a :meth:`transaction` instead.
        """
        if callable(successor):
            raise TypeError(
                "a remote space cannot run a function successor: pass the new tuple, "
                "or take the old one and write its successor in a transaction"
            )
        body = {
            "template": template_wire(template),
            "tuple": tuple_wire(successor),
            "lease": check_lease(lease),
        }
        answer = await self.long_poll("replace", body, timeout, "tuple")
        return _found(None if answer["tuple"] is None else tuple_from_wire(answer["tuple"]), template)

    async def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """See :meth:`Space.write_if_absent <tuplespace.Space.write_if_absent>`."""
        body = {"template": template_wire(template), "tuple": tuple_wire(t), "lease": check_lease(lease)}
        answer = await self.request("write_if_absent", body)
        return bool(answer["written"])

    # -- events and transactions ----------------------------------------------------------------

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> AsyncRemoteSubscription:
        """See :meth:`Space.subscribe <tuplespace.Space.subscribe>`; iterate with ``async for``.

        The subscription begins when it opens: at once in the sync binding; in the
        async one when it is awaited, entered as a context manager or first read.  At
        most ``max_pending`` events wait here for a slow subscriber; the server then
        holds back (and catches up from its event log).  ``lease`` is kept here: the
        subscription ends by itself when it runs out.  With ``existing=True`` the
        present events come first; if the connection breaks, the stream resumes
        with the live events after the last event received, without present events
        again.
        """
        self.check_open()
        subscription = AsyncRemoteSubscription(
            self,
            {"$any": True} if template is ANY else template_wire(template),
            check_kinds(events),
            check_since(since),
            check_max_pending(max_pending),
            check_lease(lease),
            check_existing(existing, since),
        )
        return opened_later(subscription)

    def transaction(self, lease: float = 60.0) -> AsyncRemoteTransaction:
        """See :meth:`Space.transaction <tuplespace.Space.transaction>`; use with ``async with``.

        The transaction begins at once in the sync binding; in the async one when it
        is awaited, entered as a context manager or first used.  Its ``lease`` is a
        number of seconds: a transaction on a server always has one, so that it aborts
        by itself if this side goes away.
        """
        self.check_open()
        seconds = check_lease(lease)
        if seconds is None:
            raise InvalidValue(
                "a remote transaction's lease is a positive number of seconds, not forever", "lease"
            )
        return opened_later(AsyncRemoteTransaction(self, seconds))

    # -- records ---------------------------------------------------------------------------------

    async def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str | None = None,
    ) -> AsyncRemoteRecord:
        """See :meth:`Space.create <tuplespace.Space.create>`.  The account that pays is
        the caller's (its token's name, ``anonymous`` without a token); ``principal``
        names another, which only an admin of the space may charge."""
        if not isinstance(fields, Mapping):
            raise InvalidValue(f"fields is a mapping from tags to values, not {type(fields).__name__}")
        body: dict[str, Any] = {
            "path": path,
            "fields": to_wire(dict(fields)),
            "credit": credit_wire(credit, "credit"),
            "lease": check_lease(lease),
        }
        if principal is not None:
            body["principal"] = principal
        answer = await self.request("create_record", body)
        return self.record_handle(answer["record"])

    def record_handle(self, wire: dict[str, Any]) -> AsyncRemoteRecord:
        """The handle of the record a server's answer describes."""
        return AsyncRemoteRecord(self, _uri(wire["address"]), wire.get("id"), _FULL, None)

    async def record(self, ref: str | URI) -> AsyncRemoteRecord:
        """See :meth:`Space.record <tuplespace.Space.record>`: a path, ``"$"``, an address
        or a capability's address (which works without any token), or a handle."""
        ref = handle_address(ref) or ref
        if not isinstance(ref, (str, URI)):
            raise TypeError(
                f"a record is named by a path, a URI, a str or a handle, not {type(ref).__name__}"
            )
        answer = await self.request("open_record", {"ref": str(ref)}, again=True)
        handle = answer["handle"]
        return AsyncRemoteRecord(
            self,
            _uri(handle["address"]),
            handle.get("id"),
            frozenset(handle["operations"]),
            handle["expires_at"],
        )

    async def find(
        self, template: Any, under: str | None = None, limit: int | None = None
    ) -> list[AsyncRemoteRecord]:
        """See :meth:`Space.find <tuplespace.Space.find>`; needs the ``read`` permission on
        the space (capabilities find nothing)."""
        body = {"template": record_template_wire(template), "under": under, "limit": check_limit(limit)}
        answer = await self.request("find_records", body, again=True)
        if answer.get("more"):
            raise _cut(len(answer["records"]), "records")
        return [self.record_handle(r) for r in answer["records"]]

    async def try_take_record(self, template: Any, under: str | None = None) -> RecordData | None:
        """See :meth:`Space.try_take_record <tuplespace.Space.try_take_record>`."""
        return await self._take_record(template, under, 0)

    async def take_record(
        self, template: Any, under: str | None = None, timeout: float | None = None
    ) -> RecordData:
        """See :meth:`Space.take_record <tuplespace.Space.take_record>`.  Taken under a
        claim, as tuples are: a record whose answer is lost goes back to its place."""
        taken = await self._take_record(template, under, timeout)
        if taken is None:
            raise Timeout(f"no record matched {template!r} in time")
        return taken

    async def _take_record(
        self, template: Any, under: str | None, timeout: float | None
    ) -> RecordData | None:
        """Take under a claim; the claims of earlier takes ride along to be confirmed."""
        body: dict[str, Any] = {"template": record_template_wire(template), "under": under, "claim": True}
        answer = await self.long_poll("take_record", body, timeout, "record", claim=True)
        return None if answer["record"] is None else record_data_from_wire(answer["record"])

    def watch_records(
        self,
        under: str | None = None,
        events: Iterable[str] = CHANGE_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> AsyncRemoteRecordWatch:
        """See :meth:`Space.watch_records <tuplespace.Space.watch_records>`; opens as
        :meth:`subscribe` does."""
        self.check_open()
        params = {"events": ",".join(check_change_kinds(events))}
        if under is not None:
            params["under"] = under
        return self.record_watch(params, since, max_pending, lease)

    def record_watch(
        self, params: dict[str, str], since: int | None, max_pending: int, lease: float | None
    ) -> AsyncRemoteRecordWatch:
        """A watch of records (all, or one: ``params``), opened when first used."""
        watch = AsyncRemoteRecordWatch(
            self, params, check_since(since), check_max_pending(max_pending), check_lease(lease)
        )
        return opened_later(watch)

    # -- statistics and closing -------------------------------------------------------------------

    async def statistics(self) -> dict[str, Any]:
        """The space's statistics as the server keeps them (see
        :meth:`Space.statistics <tuplespace.Space.statistics>`), after confirming the
        takes of this handle; ``closed`` says whether this handle is closed.

        A closed handle still answers, on a connection of its own."""
        if self._closed:
            async with self._transport.new_client() as client:
                try:
                    response = await client.get(self._routes["get_space"][1])
                except httpx.TransportError as exc:
                    raise unreachable(self.url, exc) from exc
            if response.status_code >= 400:
                raise error_from_answer(response.status_code, response.content, self.url)
            answer = orjson.loads(response.content)
        else:
            await self._confirm_pending()  # this handle's takes are final in what it reports
            answer = await self.request("get_space", again=True)
        stats: dict[str, Any] = dict(answer["statistics"])
        stats["closed"] = self._closed
        return stats

    def client_statistics(self) -> dict[str, Any]:
        """What this handle did: requests, channels opened, long polls asked again, claims confirmed
        riding on a take or sent alone, claims that ran out before their confirmation,
        and claims still to confirm.  Asks the server nothing."""
        return {
            **self._stats,
            **self._transport.statistics(),
            "unconfirmed_claims": len(self._confirmations),
            "closed": self._closed,
        }

    async def close(self) -> None:
        """Close this handle: claims received are confirmed, its open transactions abort,
        its subscriptions end, and calls still waiting raise :class:`SpaceClosed`.

        The space itself stays on the server, with its tuples."""
        if self._closing:
            return
        self._closing = True
        self._confirm_later.cancel()
        await self._confirm_pending()
        for tx in list(self.open_transactions):
            await tx.abort_quietly()
        self._closed = True
        for sub in list(self.open_streams):
            await sub.close()
        await self._transport.close()

    async def __aenter__(self) -> AsyncRemoteSpace:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncRemoteSpace({self.url!r}{', closed' if self._closed else ''})"


def _in(operation: str, tx_id: str | None) -> tuple[str, dict[str, str | int] | None]:
    """The operation of the space named ``operation``, or its twin in the transaction ``tx_id``."""
    return (operation, None) if tx_id is None else ("tx_" + operation, {"tx_id": tx_id})


def _found(t: Tuple | None, template: Any) -> Tuple:
    if t is None:
        fields = template.fields if isinstance(template, Template) else template
        raise Timeout(f"no tuple matched {fields!r} in time")
    return t


def _cut(n: int, what: str = "tuples") -> TupleSpaceError:
    return LimitReached(
        f"the server answered {n} {what} at once (its max_results or max_answer) and more match, "
        "past where it can go on: read them with a limit",
        limit="max_results",
        maximum=n,
    )


def _uri(wire: Any) -> URI:
    uri = value_from_wire(wire)
    if not isinstance(uri, URI):
        raise TupleSpaceError(f"the server answered {uri!r} where an address belongs")
    return uri


def _credit(wire: Any) -> Credit:
    credit = value_from_wire(wire)
    if not isinstance(credit, Credit):
        raise TupleSpaceError(f"the server answered {credit!r} where credit belongs")
    return credit


# What a full handle may do: every operation, move the record and make capabilities.
_FULL = frozenset({"read", "set", "refresh", "clone", "destroy", "watch", "move", "capability"})


class AsyncRemoteRecord:
    """A handle on a record of a remote space; see :class:`~tuplespace.Record`, whose
    methods these are, awaited.

    A full handle names its record by the record's number on the server: it follows
    the record through moves, and fails with :class:`~tuplespace.RecordNotFound` once
    the record is gone, even if another record takes its path.  Its :attr:`address`
    is the one it knows: the record's when the handle was made, or after a
    :meth:`move` through it.  A capability is named by its own address, which is all
    a request needs: ``space.record(address)`` on a space opened without a token may
    do what the capability allows.
    """

    __slots__ = ("_address", "_expires_at", "_id", "_operations", "_owner", "_space")

    def __init__(
        self,
        space: AsyncRemoteSpace,
        address: URI,
        rid: int | None,
        operations: frozenset[str],
        expires_at: float | None,
        owner: bool = False,
    ) -> None:
        self._space = space
        self._address = address
        self._id = rid
        self._operations = operations
        self._expires_at = expires_at
        self._owner = owner  # made by capability() or read_only(): it may revoke itself

    @property
    def address(self) -> URI:
        """The record's address for a full handle, the capability's for a capability."""
        return self._address

    def __tuplespace_uri__(self) -> URI:
        """A handle stands for its address wherever a value or an address goes."""
        return self._address

    @property
    def operations(self) -> frozenset[str]:
        """What this handle allows (see :attr:`Record.operations <tuplespace.Record.operations>`)."""
        return self._operations

    @property
    def is_capability(self) -> bool:
        return self._id is None and "/$cap/" in str(self._address)

    @property
    def expires_at(self) -> float | None:
        """When this capability ends (None: never, and for a full handle)."""
        return self._expires_at

    def _body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"ref": str(self._address), **fields}
        if self._id is not None:
            body["id"] = self._id
        return body

    async def _post(self, operation: str, body: dict[str, Any], again: bool = False) -> Any:
        return await self._space.request(operation, body, again=again)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, tag: str, default: Value = None) -> Value:
        """See :meth:`Record.get <tuplespace.Record.get>`."""
        body = self._body(tags=[tag])
        if default is not None:
            body["default"] = to_wire(default)
        answer = await self._post("get_record", body, again=True)
        return value_from_wire(answer["values"][0])

    async def view(self, *tags: str) -> tuple[Value, ...]:
        """See :meth:`Record.view <tuplespace.Record.view>`."""
        if not tags:
            return ()
        answer = await self._post("get_record", self._body(tags=list(tags)), again=True)
        return tuple(value_from_wire(v) for v in answer["values"])

    async def _read(self) -> RecordData:
        answer = await self._post("get_record", self._body(), again=True)
        return record_data_from_wire(answer["record"])

    async def all(self) -> Map:
        """See :meth:`Record.all <tuplespace.Record.all>`."""
        return (await self._read()).fields

    async def tags(self) -> list[str]:
        """See :meth:`Record.tags <tuplespace.Record.tags>`."""
        return list((await self._read()).fields)

    async def snapshot(self) -> RecordData:
        """See :meth:`Record.snapshot <tuplespace.Record.snapshot>`."""
        return await self._read()

    # -- changing ------------------------------------------------------------------------------

    async def set(self, tag: str, value: Value) -> int:
        """See :meth:`Record.set <tuplespace.Record.set>`."""
        answer = await self._post("set_record", self._body(tag=tag, value=field_wire(tag, value)))
        version: int = answer["version"]
        return version

    async def call(self, tag: str, *args: Value, principal: str | None = None) -> Value:
        """See :meth:`Record.call <tuplespace.Record.call>`: the method runs on the
        server, in its sandbox, and the caller's account pays for its steps (or the
        ``principal`` an admin of the space names)."""
        body = self._body(tag=tag, args=[to_wire(a) for a in args])
        if principal is not None:
            body["principal"] = principal
        answer = await self._post("call_record", body)
        return value_from_wire(answer["value"])

    async def refresh(
        self,
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str | None = None,
    ) -> float | None:
        """See :meth:`Record.refresh <tuplespace.Record.refresh>`; ``principal`` as for
        :meth:`AsyncRemoteSpace.create`."""
        body = self._body(credit=credit_wire(credit, "credit"), lease=check_lease(lease))
        if principal is not None:
            body["principal"] = principal
        answer = await self._post("refresh_record", body)
        expires: float | None = answer["expires_at"]
        return expires

    async def clone(
        self,
        path: str,
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str | None = None,
    ) -> AsyncRemoteRecord:
        """See :meth:`Record.clone <tuplespace.Record.clone>`."""
        body = self._body(path=path, credit=credit_wire(credit, "credit"), lease=check_lease(lease))
        if principal is not None:
            body["principal"] = principal
        answer = await self._post("clone_record", body)
        return self._space.record_handle(answer["record"])

    async def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """See :meth:`Record.move <tuplespace.Record.move>`."""
        redirect = 0 if redirect_lease == 0 else check_lease(redirect_lease, "redirect_lease")
        answer = await self._post("move_record", self._body(path=path, redirect_lease=redirect))
        self._address = _uri(answer["address"])

    async def destroy(self, force: bool = False) -> None:
        """See :meth:`Record.destroy <tuplespace.Record.destroy>`."""
        await self._post("destroy_record", self._body(force=force))

    # -- capabilities ----------------------------------------------------------------------------

    def _capability(self, answer: dict[str, Any]) -> AsyncRemoteRecord:
        ops = frozenset(answer["operations"])
        return AsyncRemoteRecord(self._space, _uri(answer["address"]), None, ops, answer["expires_at"], True)

    async def read_only(self) -> AsyncRemoteRecord:
        """See :meth:`Record.read_only <tuplespace.Record.read_only>`."""
        return self._capability(await self._post("read_only_record", self._body()))

    async def capability(self, operations: Iterable[str], lease: float | None = None) -> AsyncRemoteRecord:
        """See :meth:`Record.capability <tuplespace.Record.capability>`."""
        ops = sorted({operations} if isinstance(operations, str) else set(operations))
        answer = await self._post("make_capability", self._body(operations=ops, lease=check_lease(lease)))
        return self._capability(answer)

    async def revoke(self) -> None:
        """See :meth:`Record.revoke <tuplespace.Record.revoke>`; needs the ``write``
        permission on the space."""
        check_revocable(self.is_capability, self._owner, self._operations)
        await self._post("revoke_capability", {"ref": str(self._address)})

    # -- watching -----------------------------------------------------------------------------------

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> AsyncRemoteRecordWatch:
        """See :meth:`Record.watch <tuplespace.Record.watch>`; opens as
        :meth:`AsyncRemoteSpace.subscribe` does, and ends after the record's
        ``destroy`` or ``expire``."""
        self._space.check_open()
        params = {"ref": str(self._address)}
        if self._id is not None:
            params["id"] = str(self._id)
        return self._space.record_watch(params, since, max_pending, lease)

    async def on_change(
        self,
        fn: Callable[[Change], object],
        *,
        on_lost: Callable[[EventsLost], object] | None = None,
        max_pending: int = 1000,
    ) -> AsyncUpcall:
        """See :meth:`Record.on_change <tuplespace.Record.on_change>`: ``fn`` runs in a
        thread of its own for a synchronous handle, in a task of the running event loop
        for one whose calls are awaited (where it may be a coroutine function):
        ``upcall = await rec.on_change(fn)``, ``await upcall.cancel()``."""
        return await AsyncUpcall.start(
            lambda since, pending: self.watch(since, pending), fn, on_lost, max_pending
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AsyncRemoteRecord)
            and other._space is self._space
            and other._key() == self._key()
        )

    def __hash__(self) -> int:
        return hash((id(self._space), self._key()))

    def _key(self) -> tuple[int | None, str | None]:
        return (self._id, None) if self._id is not None else (None, str(self._address))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._address)!r})"


class AsyncRulesHost(Protocol):
    """What :class:`AsyncRemoteRules`, :class:`AsyncCreditCalls` and
    :class:`AsyncRemoteClock` send their requests through: a remote space over HTTP,
    or a space over CoAP (its ``$rules`` and ``$credit`` resources, ``?clock``,
    docs/federation.md).  It sends the rules operations of the HTTP API's table
    (``add_rule``, ``list_rules``, ``get_rule``, ``remove_rule``), its credit
    operations (``get_account``, ``grant_credit``, ``transfer_credit``,
    ``credit_challenge``, ``mint_credit``) and its clock operations (``get_clock``,
    ``advance_clock``), and answers their JSON."""

    @property
    def url(self) -> str: ...

    async def request(
        self,
        operation: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str | int] | None = None,
        again: bool = False,
    ) -> Any: ...


class AsyncRemoteRules:
    """The rules of a remote space (``space.rules``), with the calls of
    :class:`~tuplespace.Rules` that manage them and their errors
    (:class:`~tuplespace.RuleCycle`, :class:`~tuplespace.RuleExists`,
    :class:`~tuplespace.RuleNotFound`, :class:`~tuplespace.InvalidValue` naming the
    field, :class:`~tuplespace.LimitReached` past the space's ``max_rules``).  Adding
    and removing rules needs the ``write`` permission on the space, listing them
    ``read``.  A rule's firings are paid by ``principal``: by default the caller's own
    account (its token's name; over CoAP the space's default account), another only
    for an admin of the space (over CoAP: a peer with the ``all`` permission).
    """

    def __init__(self, space: AsyncRulesHost) -> None:
        self._space = space

    async def add(
        self,
        name: str,
        *,
        on: str | Iterable[str] | None = None,
        template: Iterable[Any] | None = None,
        path: str | None = None,
        tag: str | None = None,
        when: str | None = None,
        write: Iterable[Iterable[Any]] = (),
        take: Iterable[Iterable[Any]] = (),
        set: str | Mapping[str, str] | None = None,
        to: str | None = None,
        using: Mapping[str, str] | None = None,
        principal: str | None = None,
        refresh: Mapping[str, Any] | None = None,
        create: Mapping[Any, Mapping[str, Any]] | None = None,
        call: Iterable[Iterable[Any]] = (),
    ) -> RuleInfo:
        """See :meth:`Rules.add <tuplespace.Rules.add>`; a constant str given as
        ``Lit(s)`` comes back from :meth:`list` as the CEL literal ``"'s'"``."""
        body = definition_to_wire(
            name,
            on=on,
            template=template,
            path=path,
            tag=tag,
            when=when,
            write=write,
            take=take,
            set=set,
            to=to,
            using=using,
            principal=principal,
            refresh=refresh,
            create=create,
            call=call,
        )
        answer = await self._space.request("add_rule", body)
        return rule_from_wire(answer["rule"])

    async def list(self) -> list[RuleInfo]:
        """Every rule, by level, then by name."""
        answer = await self._space.request("list_rules", again=True)
        return [rule_from_wire(r) for r in answer["rules"]]

    async def get(self, name: str) -> RuleInfo:
        """The rule ``name``; :class:`~tuplespace.RuleNotFound` (a ``KeyError``) if there is none."""
        answer = await self._space.request("get_rule", params={"name": name}, again=True)
        return rule_from_wire(answer["rule"])

    async def remove(self, name: str) -> None:
        """Remove the rule ``name``; :class:`~tuplespace.RuleNotFound` (a ``KeyError``) if there is none."""
        await self._space.request("remove_rule", params={"name": name})

    def __repr__(self) -> str:
        return f"<AsyncRemoteRules of {self._space.url}>"


class AsyncRemoteClock:
    """The clock of a remote space (``space.clock``): its time, and, for a space
    created with ``clock="simulated"`` (in memory), :meth:`advance`, as a
    :class:`~tuplespace.SimulatedClock` has."""

    def __init__(self, space: AsyncRulesHost) -> None:
        self._space = space

    async def now(self) -> float:
        """The space's time, in seconds since the epoch."""
        answer = await self._space.request("get_clock", again=True)
        return float(answer["now"])

    async def advance(self, seconds: float) -> None:
        """Move the space's simulated clock ``seconds`` forward and run what falls due
        (leases, waits, rules).  Needs the ``admin`` permission on the space (over
        CoAP: a peer allowed ``all``); :class:`~tuplespace.InvalidValue` naming
        ``advance`` unless ``seconds`` is a number above 0, at most a hundred years;
        :class:`~tuplespace.Conflict` (``real_clock``) for a space on the system clock."""
        await self._space.request("advance_clock", {"advance": seconds})

    def __repr__(self) -> str:
        return f"<AsyncRemoteClock of {self._space.url}>"


class AsyncRemoteTransaction(AsyncOpenable):
    """A transaction on a remote space; see :class:`~tuplespace.Transaction`.

    It has the operations of the space, awaited.  Used with ``async with`` it commits
    when the block ends and aborts on an exception.  ``state`` is what this side
    knows: ``"aborted"`` once it aborted it, the server said so, or its lease ran out.
    """

    def __init__(self, space: AsyncRemoteSpace, lease: float | None) -> None:
        self._space = space
        self._lease = lease
        self._opening = AsyncLock()
        self._id: str | None = None  # on the server, once begun
        self._state = "active"
        self._expires_at: float | None = None
        self._ends: float | None = None  # when the lease runs out, on this side's clock

    async def _open(self) -> None:
        async with self._opening:
            if self._id is not None or self._state != "active":
                return
            asked = _monotonic()
            answer = await self._space.request("begin_transaction", {"lease": self._lease})
            self._id = answer["id"]
            self._set_lease(answer["expires_at"], self._lease, asked)
            self._space.open_transactions.add(self)

    def _set_lease(self, expires_at: float | None, lease: float | None, asked: float) -> None:
        self._expires_at = expires_at
        # Counted from the request: the server's lease ends a moment later (by then it
        # aborts the transaction itself), and this side refuses to use it from now on.
        self._ends = None if lease is None else asked + lease

    @property
    def state(self) -> str:
        """``"active"``, ``"committed"`` or ``"aborted"``."""
        if self._state == "active" and self._ends is not None and _monotonic() >= self._ends:
            self._ended("aborted")
        return self._state

    @property
    def expires_at(self) -> float | None:
        return self._expires_at

    def _ended(self, state: str) -> None:
        self._state = state
        self._space.open_transactions.discard(self)

    async def _ready(self) -> str:
        """Check the transaction can still be used, opening it; its id on the server."""
        if self._state == "active":
            await self._open()
        state = self.state
        if state == "aborted":
            raise TransactionAborted("the transaction was aborted")
        if state == "committed":
            raise TransactionError("the transaction has ended: it was committed")
        assert self._id is not None
        return self._id

    async def _call(self, operation: str, body: dict[str, Any] | None = None) -> Any:
        """The request of ``operation`` (``tx_write``, ...) in this transaction."""
        tx_id = await self._ready()
        try:
            return await self._space.request(operation, body, params={"tx_id": tx_id})
        except TransactionAborted:
            self._ended("aborted")
            raise

    async def _watch(self, operation: Any) -> Any:
        try:
            return await operation
        except TransactionAborted:
            self._ended("aborted")
            raise

    async def write(self, t: Iterable[Value], lease: float | None = None) -> None:
        """Write ``t`` at commit; its ``lease`` counts from then."""
        await self._call("tx_write", {"tuple": tuple_wire(t), "lease": check_lease(lease)})

    async def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> None:
        """Write several tuples at commit (all or none)."""
        await self._call("tx_write_many", {"tuples": tuples_wire(tuples), "lease": check_lease(lease)})

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        tx_id = await self._ready()
        return _found(await self._watch(self._space.read_at(tx_id, template, timeout)), template)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return _found(await self._take(template, timeout), template)

    async def try_read(self, template: Any) -> Tuple | None:
        tx_id = await self._ready()
        found: Tuple | None = await self._watch(self._space.read_at(tx_id, template, 0))
        return found

    async def try_take(self, template: Any) -> Tuple | None:
        return await self._take(template, 0)

    async def _take(self, template: Any, timeout: float | None) -> Tuple | None:
        # No claim: a tuple taken in a transaction is held by it, and returns if it aborts.
        tx_id = await self._ready()
        body = {"template": template_wire(template)}
        params: dict[str, str | int] = {"tx_id": tx_id}
        answer = await self._watch(self._space.long_poll("tx_take", body, timeout, "tuple", params=params))
        return None if answer["tuple"] is None else tuple_from_wire(answer["tuple"])

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        tx_id = await self._ready()
        found: list[Tuple] = await self._watch(
            self._space.all_at(tx_id, "read_all", template, limit, timeout)
        )
        return found

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        tx_id = await self._ready()
        taken: list[Tuple] = await self._watch(
            self._space.all_at(tx_id, "take_all", template, limit, timeout)
        )
        return taken

    async def count(self, template: Any) -> int:
        tx_id = await self._ready()
        n: int = await self._watch(self._space.count_at(tx_id, template))
        return n

    async def commit(self) -> None:
        """Make the takes final and the writes visible, atomically; raises SpaceFull,
        the transaction aborted, when its writes do not fit in the space's capacity."""
        try:
            await self._call("tx_commit")
        except SpaceFull:
            self._ended("aborted")
            raise
        self._ended("committed")

    async def abort(self) -> None:
        """Discard the writes and put every taken tuple back at its place; nothing
        happens to a transaction that has already ended."""
        if self._id is None:  # never begun: nothing to undo
            self._ended("aborted")
            return
        if self.state != "active":
            return
        with contextlib.suppress(TransactionError):  # it ended on the server already
            await self._space.request("tx_abort", params={"tx_id": self._id})
        self._ended("aborted")

    async def abort_quietly(self) -> None:
        """Abort while the space closes; a failure only means the lease will end it."""
        try:
            await self.abort()
        except TupleSpaceError as exc:
            logger.warning("aborting a transaction of %s failed: %s", self._space.url, exc)
            self._ended("aborted")

    async def renew(self, lease: float | None) -> None:
        """Give the transaction ``lease`` more seconds from now."""
        seconds = check_lease(lease)
        asked = _monotonic()
        answer = await self._call("tx_renew", {"lease": seconds})
        self._set_lease(answer["expires_at"], seconds, asked)

    async def __aenter__(self) -> AsyncRemoteTransaction:
        await self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self.state == "active":
            await self.commit()
        else:
            await self.abort()

    def __repr__(self) -> str:
        return f"AsyncRemoteTransaction({self._id or 'not begun'}, {self._state})"
