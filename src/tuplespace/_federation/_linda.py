"""A node's space reached over CoAP with the Linda operations: ``ts.connect("coap://…")``
(:class:`CoapSpace`) and ``ts.connect_async("coap://…")`` (:class:`AsyncCoapSpace`).

What each operation sends and how its answer is read is written once, here, as an
:class:`_Ask`; the two classes only send it, one from the caller's thread, the other
on the caller's event loop.  So do their transactions (:class:`CoapTransaction`,
:class:`AsyncCoapTransaction`).

A take (each answer of a take_all, a take_record) is claimed: the node holds what it took until
the client confirms the claim with a request of its own, sent again until the node
answers it, for as long as the claim's lease lasts.  A take whose answer never
arrived is never confirmed, and the node puts its tuple back when the claim runs
out; the call then raises :class:`~tuplespace.Unreachable`.  So a tuple (or a
record) is neither lost nor taken twice; a take costs two exchanges.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote, unquote, urlsplit

import orjson

from .._codec import encode_template, template_to_wire, to_wire
from .._errors import (
    InvalidValue,
    LimitReached,
    RecordNotFound,
    SpaceClosed,
    SpaceFull,
    Timeout,
    TransactionAborted,
    TransactionError,
    TupleSpaceError,
    Unreachable,
    UnsupportedType,
)
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, Event, check_existing
from .._lease import AsyncLease, Lease
from .._methods import ActiveLimits
from .._names import check_path
from .._recordhandles import FULL_OPERATIONS, RecordData
from .._templates import ANY
from .._values import URI, Credit, Limits, Map, Tuple, Value, handle_address
from ..client import (
    AsyncCreditCalls,
    AsyncRemoteClock,
    AsyncRemoteRules,
    CreditCalls,
    RemoteClock,
    RemoteRules,
)
from ..client._common import (
    _prefixed,
    check_change_kinds,
    check_kinds,
    check_lease,
    check_limit,
    check_timeout,
    error_code,
    record_template_wire,
)
from ..client._primitives import AsyncLock, AsyncOpenable
from ._cbor import CBOR, JSON, encode_cbor
from ._endpoint import Address, Endpoint, Network, Timers, _bounded
from ._loop import LoopThread
from ._message import (
    ACCEPT,
    CONTENT_FORMAT,
    DELETE,
    FETCH,
    GET,
    POST,
    PUT,
    URI_PATH,
    URI_QUERY,
    Message,
    success,
)
from ._node import peer_of
from ._remote import (
    CREDIT,
    RULES,
    AsyncRemoteRecord,
    RemoteRecord,
    RemoteUpcall,
    _value,
    data_of,
    error_of,
    http_status,
    record_id,
)
from ._subscribe import AsyncCoapSubscription, CoapSubscription, Observed, _Stream, stream_arguments

if TYPE_CHECKING:
    from ._peers import Guard

__all__ = [
    "AsyncCoapRules",
    "AsyncCoapSpace",
    "AsyncCoapTransaction",
    "CoapRules",
    "CoapSpace",
    "CoapTransaction",
]

log = logging.getLogger("tuplespace")

_T = TypeVar("_T")


class _Ask(NamedTuple):
    """One request to the space's resource (or to what is at ``path`` below it): its
    method, payload (CBOR for POST, the JSON wire format for FETCH; JSON both ways
    with ``json``), query, and how long the node may wait before it answers."""

    code: int
    payload: bytes = b""
    query: tuple[str, ...] = ()
    wait: float | None = 0.0
    path: str | None = None
    json: bool = False


def _client_guard(keys: str | os.PathLike[str]) -> Guard:
    """What protects a client's requests with the OSCORE keys of the keys file ``keys``."""
    from ._peers import client_guard  # the permissions of a node: imported when needed

    return client_guard(keys)


def _tuple(t: Any) -> tuple[Value, ...]:
    if not isinstance(t, (tuple, list)):
        raise UnsupportedType(f"a tuple is a tuple or list, not {type(t).__name__}")
    return tuple(t)


def _seconds(name: str, seconds: float | None) -> tuple[str, ...]:
    return () if seconds is None else (f"{name}={seconds!r}",)


def _write(t: Any, lease: float | None, timeout: float | None) -> _Ask:
    wait = check_timeout(timeout)
    query = (*_seconds("lease", check_lease(lease)), *_seconds("timeout", wait))
    return _Ask(POST, encode_cbor(_tuple(t)), query, wait)


def _write_many(tuples: Iterable[Any], lease: float | None) -> _Ask:
    try:
        payload = encode_cbor(tuple(_tuple(t) for t in tuples))
    except InvalidValue as exc:  # named as the embedded space names it: tuples[i][j]
        raise _prefixed(exc, "tuples") from None
    return _Ask(POST, payload, ("op=write_many", *_seconds("lease", check_lease(lease))))


def _renew(seq: int, seconds: float | None) -> _Ask:
    return _Ask(POST, b"", ("op=renew", f"id={seq}", *_seconds("lease", check_lease(seconds))))


def _cancel(seq: int) -> _Ask:
    return _Ask(POST, b"", ("op=cancel", f"id={seq}"))


def _fetch(template: Any, op: str, timeout: float | None) -> _Ask:
    wait = check_timeout(timeout)
    return _Ask(FETCH, encode_template(template), (f"op={op}", *_seconds("timeout", wait)), wait)


def _count(template: Any) -> _Ask:
    return _Ask(FETCH, encode_template(template), ("op=count",))


def _pair(op: str, template: Any, t: Any, lease: float | None, timeout: float | None = 0) -> _Ask:
    """``write_if_absent`` or ``replace``: the template and the tuple, in the JSON wire format."""
    if callable(t):
        raise TypeError(
            "a space over CoAP cannot run a function successor: pass the new tuple, "
            "or take the old one and write its successor"
        )
    wait = check_timeout(timeout)
    payload = orjson.dumps([template_to_wire(template), to_wire(_tuple(t))])
    query = (f"op={op}", *_seconds("lease", check_lease(lease)), *_seconds("timeout", wait))
    return _Ask(FETCH, payload, query, wait)


def _create(path: str, fields: Any, credit: Any, lease: float | None, principal: str | None) -> _Ask:
    check_path(path)
    if not isinstance(fields, Mapping):
        raise InvalidValue(
            f"a record's fields are a mapping from tags to values, not {type(fields).__name__}"
        )
    query = (
        *(() if credit is None else (f"credit={credit}",)),
        *_seconds("lease", check_lease(lease)),
        *(() if principal is None else (f"principal={principal}",)),
    )
    return _Ask(POST, encode_cbor(fields), query, path=path)


def _rule_ask(operation: str, body: dict[str, Any] | None, params: dict[str, str | int] | None) -> _Ask:
    """The request to the space's ``$rules`` resource of a rules operation of the HTTP
    API's table, as :class:`~tuplespace.client.RemoteRules` sends it; the principal
    of a rule added travels in the query, where the node's permissions see it."""
    if operation == "list_rules":
        return _Ask(GET, path=RULES, json=True)
    if operation == "add_rule":
        assert body is not None
        definition = dict(body)
        principal = definition.pop("principal", None)
        query = () if principal is None else (f"principal={principal}",)
        return _Ask(POST, orjson.dumps(definition), query, path=RULES, json=True)
    assert params is not None
    assert operation in ("get_rule", "remove_rule")
    code = GET if operation == "get_rule" else DELETE
    return _Ask(code, path=f"{RULES}/{params['name']}", json=True)


# The credit operations of the HTTP API's table, and what each is below ``$credit``.
_CREDIT_OPS = {
    "get_account": "",
    "credit_challenge": "/challenge",
    "grant_credit": "/grant",
    "transfer_credit": "/transfer",
    "mint_credit": "/mint",
}


def _credit_ask(operation: str, body: dict[str, Any] | None, params: dict[str, str | int] | None) -> _Ask:
    """The request to the space's ``$credit`` resource of a credit operation of the HTTP
    API's table, as :class:`~tuplespace.client.CreditCalls` sends it: the account it
    names travels in the query, where the node's permissions see it; the rest of its
    body is the JSON payload."""
    path = CREDIT + _CREDIT_OPS[operation]
    if operation == "get_account":
        assert params is not None
        return _Ask(GET, query=(f"principal={params['principal']}",), path=path, json=True)
    if body is None:
        return _Ask(GET, path=path, json=True)
    rest = dict(body)
    principal = rest.pop("principal", None)
    if principal is not None and type(principal) is not str:
        raise InvalidValue(
            f"a principal is the name of an account, not {type(principal).__name__}", "principal"
        )
    query = () if principal is None else (f"principal={principal}",)
    return _Ask(POST, orjson.dumps(rest), query, path=path, json=True)


def _request_ask(operation: str, body: dict[str, Any] | None, params: dict[str, str | int] | None) -> _Ask:
    """The request of an operation of the HTTP API's table that a space over CoAP
    carries: a rules or a credit operation, ``put_space`` (its options, which the
    node answers as ``GET ?options`` does), or ``get_clock`` and ``advance_clock``
    (``GET ?clock`` and ``POST ?op=advance``, as :class:`~tuplespace.client.RemoteClock`
    sends them)."""
    if operation == "put_space":
        return _Ask(PUT, orjson.dumps(body or {}), _OPTIONS.query)
    if operation == "get_clock":
        return _Ask(GET, query=("clock",))
    if operation == "advance_clock":
        return _Ask(POST, encode_cbor(body or {}), ("op=advance",))
    if operation in _CREDIT_OPS:
        return _credit_ask(operation, body, params)
    return _rule_ask(operation, body, params)


def _address(url: str, ref: Any) -> str:
    """The address of the record ``ref`` names: a path of the space at ``url``, an
    address, or a handle."""
    address = handle_address(ref)
    if address is not None or isinstance(ref, URI):
        return str(address or ref)
    if type(ref) is not str:
        raise UnsupportedType(
            f"a record is named by a path, a URI, a str or a handle, not {type(ref).__name__}"
        )
    if "://" not in ref:
        return f"{url}/{quote(ref, safe='/$')}"
    if not ref.startswith("coap://"):
        raise RecordNotFound(f"no record at {ref!r}: a space over CoAP holds coap:// addresses")
    return ref


def _under(under: str | None) -> tuple[str, ...]:
    if under is None:
        return ()
    if type(under) is not str:
        raise InvalidValue(f"under is a record path, not {type(under).__name__}")
    return (f"under={under}",)


def _find(template: Any, under: str | None, limit: int | None) -> _Ask:
    limit = check_limit(limit)
    query = ("op=find", *_under(under), *(() if limit is None else (f"limit={limit}",)))
    return _Ask(FETCH, orjson.dumps(record_template_wire(template)), query)


def _found_records(answer: Value) -> list[tuple[URI, int]]:
    """The addresses of the records found and their numbers."""
    if (
        not isinstance(answer, Map)
        or not isinstance(answer.get("records"), tuple)
        or not isinstance(answer.get("ids"), tuple)
        or len(answer["ids"]) != len(answer["records"])
    ):
        raise TupleSpaceError(f"the node answered {answer!r} where records belong")
    if answer.get("more"):
        n = len(answer["records"])
        raise LimitReached(
            f"the node answered {n} records at once (its max_results) and more match: find them with a limit",
            limit="max_results",
            maximum=n,
        )
    return list(zip(answer["records"], map(record_id, answer["ids"]), strict=True))


def _take_record(template: Any, under: str | None, timeout: float | None) -> _Ask:
    wait = check_timeout(timeout)
    payload = orjson.dumps(record_template_wire(template))
    return _Ask(FETCH, payload, ("op=take_record", *_under(under), *_seconds("timeout", wait)), wait)


def _record_found(taken: RecordData | None, timeout: float | None) -> RecordData:
    if taken is None:
        raise Timeout(f"no record matched within {timeout} s")
    return taken


def _subscription(
    space: _Space,
    template: Any,
    events: Iterable[str],
    since: int | None,
    max_pending: int,
    lease: float | None,
    existing: bool,
) -> dict[str, Any]:
    """What a subscription to the space's events is made of, checked as the embedded
    space checks it."""
    payload = b'{"$any":true}' if template is ANY else encode_template(template)
    query = ("op=subscribe", f"events={','.join(check_kinds(events))}")
    observed = Observed(space.peer, space.path, space.url, query, payload)
    return stream_arguments(observed, since, max_pending, lease, check_existing(existing, since))


def _record_changes(
    space: _Space,
    under: str | None,
    events: Iterable[str],
    since: int | None,
    max_pending: int,
    lease: float | None,
) -> dict[str, Any]:
    """What a watch of the space's records is made of, checked as the embedded space checks it."""
    query = ("op=watch_records", f"events={','.join(check_change_kinds(events))}", *_under(under))
    return stream_arguments(Observed(space.peer, space.path, space.url, query), since, max_pending, lease)


def _found(found: Tuple | None, timeout: float | None) -> Tuple:
    if found is None:
        raise Timeout(f"no matching tuple within {timeout} s")
    return found


_OPTIONS = _Ask(GET, query=("options",))
_OPTION_KEYS = frozenset(
    {
        "order",
        "capacity",
        "limits",
        "charge_rate",
        "creation_charge",
        "redirect_charge",
        "firing_charge",
        "step_charge",
        "max_firings",
        "active_limits",
        "operator",
        "mint_amount",
        "mint_bits",
        "clock",
    }
)


def _options_of(answer: Value) -> Map:
    """The options of a space, from the node's answer to ``GET ?options``."""
    if not isinstance(answer, Map) or not set(answer) >= _OPTION_KEYS:
        raise TupleSpaceError(f"the node answered {answer!r} where the options of a space belong")
    return answer


def _credit(options: Map, name: str) -> Credit:
    amount = options[name]
    if not isinstance(amount, Credit):
        raise TupleSpaceError(f"the node answered {amount!r} where the {name} of a space belongs")
    return amount


def _statistics(answer: Value) -> dict[str, Any]:
    if not isinstance(answer, Map):
        raise TupleSpaceError(f"the node answered {answer!r} where statistics belong")
    return dict(answer)


class _Pages:
    """A ``read_all`` or ``take_all``, an answer at a time: the node answers as many
    tuples as its ``max_results`` and ``max_answer`` allow and the cursor of the rest
    (``next``); the next request goes on from there (a take: asks again), for the limit
    left and without waiting, until an answer has no cursor."""

    def __init__(
        self, op: str, template: Any, limit: int | None, timeout: float | None, resumable: bool = True
    ) -> None:
        self.found: list[Tuple] = []
        self.claimed = resumable and op == "take_all"  # a take_all of the space, not of a transaction
        self._resumable = resumable
        self._op = op
        self._template = encode_template(template)
        self._limit = check_limit(limit)
        self._wait = check_timeout(timeout)
        self._after: int | None = None
        self._done = False

    def ask(self) -> _Ask | None:
        """The next request, or None when every answer is in."""
        if self._done:
            return None
        query = [f"op={self._op}"]
        if self._limit is not None:
            query.append(f"limit={self._limit - len(self.found)}")
        if self._after is not None and self._op == "read_all":
            query.append(f"after={self._after}")
        wait = self._wait if not self.found else 0.0
        query.extend(_seconds("timeout", wait))
        return _Ask(FETCH, self._template, tuple(query), wait)

    def add(self, answer: Value) -> None:
        if not isinstance(answer, Map) or not isinstance(answer.get("tuples"), tuple):
            raise TupleSpaceError(f"the node answered {answer!r} where a page of tuples belongs")
        page: tuple[Tuple, ...] = answer["tuples"]
        self.found.extend(page)
        cursor = answer.get("next")
        if cursor is not None and self._op == "read_all" and not self._resumable:
            raise LimitReached(
                f"the node answered {len(self.found)} tuples at once (its max_results or max_answer) "
                "and more match, past where a transaction can go on: read them with a limit",
                limit="max_results",
                maximum=len(self.found),
            )
        self._after = cursor if isinstance(cursor, int) else None
        self._done = (
            cursor is None or not page or (self._limit is not None and len(self.found) >= self._limit)
        )


def _claimed(ask: _Ask) -> _Ask:
    """A take, take_all or take_record asked under a claim."""
    return ask._replace(query=(*ask.query, "claim=1"))


class _Confirmation:
    """The confirmation of a claimed take's answer: a request of its own (``ask``;
    None when nothing was taken), asked again until the node answers it, while the
    claim's lease lasts (counted from the take's request, which came before the take)."""

    def __init__(self, answer: Value, sent: float, url: str) -> None:
        if not isinstance(answer, Map):
            raise TupleSpaceError(f"the node answered {answer!r} where a claimed take's answer belongs")
        self.answer = answer
        self._url = url
        claim, lease = answer.get("claim"), answer.get("lease")
        if claim is None:
            self.ask: _Ask | None = None
            return
        if not isinstance(claim, str) or not isinstance(lease, (int, float)):
            raise TupleSpaceError(f"the node answered {answer!r}: a claim is an id and a lease")
        self.ask = _Ask(POST, b"", ("op=confirm", f"claim={claim}"))
        self._deadline = sent + lease

    def failed(self, exc: TupleSpaceError) -> TupleSpaceError | None:
        """What the take raises after the confirmation failed with ``exc``; None to ask
        again (after a pause of the retransmission timer: a node that refuses at once,
        its port closed, is not asked in a tight loop).  A claim that ran out put its
        tuples back: the take did not happen."""
        if error_code(exc) == "unknown_claim":
            return Unreachable(f"{self._url}: the take's answer came too late, what it took went back")
        if isinstance(exc, Unreachable) and time.monotonic() < self._deadline:
            return None
        return exc


class _Transaction:
    """What both faces of a transaction share: its id on the node, its state as this
    side knows it (``"aborted"`` once it aborted it, the node said so, or its lease ran
    out on this side's clock) and its requests, each the space's with ``tx=<id>``."""

    def __init__(self, url: str, lease: float, forget: Callable[[Any], None]) -> None:
        self._url = url
        self._lease = lease
        self._forget = forget  # the space stops holding it (to abort it when closed)
        self.id = ""
        """The transaction's id on the node ("" until it is begun)."""
        self._state = "active"
        self._expires_at: float | None = None
        self._ends = 0.0

    def _begin(self) -> _Ask:
        return _Ask(POST, b"", ("op=begin", f"lease={self._lease!r}"))

    def _begun(self, answer: Value, asked: float) -> None:
        if not isinstance(answer, tuple) or len(answer) != 2 or not isinstance(answer[0], str):
            raise TupleSpaceError(f"{self._url}: the node answered {answer!r} where a transaction belongs")
        self.id, self._expires_at = answer
        # Counted from the request: the node's lease ends a moment later (by then it
        # aborts the transaction itself), and this side refuses to use it from now on.
        self._ends = asked + self._lease

    def _renewed(self, expires_at: Value, lease: float, asked: float) -> None:
        self._expires_at = expires_at if isinstance(expires_at, float) else None
        self._lease = lease
        self._ends = asked + lease

    @property
    def state(self) -> str:
        """``"active"``, ``"committed"`` or ``"aborted"``."""
        if self._state == "active" and self.id and time.monotonic() >= self._ends:
            self._ended("aborted")
        return self._state

    @property
    def expires_at(self) -> float | None:
        """When its lease runs out, in seconds since the epoch (on the node's clock)."""
        return self._expires_at

    def _ended(self, state: str) -> None:
        self._state = state
        self._forget(self)

    def _in(self, ask: _Ask) -> _Ask:
        """``ask`` done in this transaction; it must still be active."""
        state = self.state
        if state == "aborted":
            raise TransactionAborted("the transaction was aborted")
        if state == "committed":
            raise TransactionError("the transaction has ended: it was committed")
        return ask._replace(query=(*ask.query, f"tx={self.id}"))

    def _abort_ask(self) -> _Ask | None:
        """The request aborting it, None when there is nothing to abort."""
        if not self.id:  # never begun
            self._ended("aborted")
            return None
        return self._in(_Ask(POST, b"", ("op=abort",))) if self.state == "active" else None

    def _renew_ask(self, lease: float | None) -> tuple[_Ask, float]:
        seconds = _lease_of_transaction(lease)
        return _Ask(POST, b"", ("op=renew", f"lease={seconds!r}")), seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id or 'not begun'}, {self._state})"


def _lease_of_transaction(lease: float | None) -> float:
    seconds = check_lease(lease)
    if not seconds:
        raise InvalidValue("a transaction's lease over CoAP is a positive number of seconds", "lease")
    return seconds


class _RulesOptions:
    """The limits and charges of a space's rules, as the node has them: read here, set
    on the node (``space.rules.firing_charge = ...`` there)."""

    def __init__(self, options: Callable[[], Map]) -> None:
        self._options = options

    @property
    def limits(self) -> ActiveLimits:
        """See :attr:`Rules.limits <tuplespace.Rules.limits>`."""
        return ActiveLimits(**self._options()["active_limits"])

    @property
    def firing_charge(self) -> Credit:
        """See :attr:`Rules.firing_charge <tuplespace.Rules.firing_charge>`."""
        return _credit(self._options(), "firing_charge")

    @property
    def step_charge(self) -> Credit:
        """See :attr:`Rules.step_charge <tuplespace.Rules.step_charge>`."""
        return _credit(self._options(), "step_charge")


class CoapRules(_RulesOptions, RemoteRules):
    """The rules of a space over CoAP (:attr:`CoapSpace.rules`): the calls of
    :class:`~tuplespace.client.RemoteRules`, and their limits and charges read from
    the node at each access."""

    def __init__(self, space: CoapSpace) -> None:
        RemoteRules.__init__(self, space)
        _RulesOptions.__init__(self, space.read_options)


class AsyncCoapRules(_RulesOptions, AsyncRemoteRules):
    """The rules of a space over CoAP for asyncio (:attr:`AsyncCoapSpace.rules`): the
    calls of :class:`~tuplespace.client.AsyncRemoteRules`, and their limits and
    charges as :meth:`AsyncCoapSpace.read_options` read them last."""

    def __init__(self, space: AsyncCoapSpace) -> None:
        AsyncRemoteRules.__init__(self, space)
        _RulesOptions.__init__(self, space.known_options)


class _Space:
    """What both faces share: the URL checked, the peer, the options of a request, and
    the OSCORE keys (``keys``, a keys file) its requests are protected with."""

    def __init__(
        self,
        url: str,
        timeout: float,
        timers: Timers,
        network: Network | None,
        keys: str | os.PathLike[str] | None,
    ):
        parts = urlsplit(url)
        segments = parts.path.strip("/").split("/")
        if parts.scheme != "coap" or not parts.hostname or len(segments) != 2 or segments[0] != "spaces":
            raise InvalidValue(f"a space over CoAP is coap://host:port/spaces/<name>, got {url!r}")
        if not timeout > 0:
            raise InvalidValue(f"timeout must be positive seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self._name = unquote(segments[1])
        self.timeout = timeout
        self._keys = keys
        self.guard = None if keys is None else _client_guard(keys)
        """What protects its requests with OSCORE (None: they go anonymous)."""
        self.endpoint = Endpoint(timers=timers, network=network, guard=self.guard)
        """The client's CoAP endpoint, which its subscriptions and record handles send through."""
        self.peer: Address = ()
        """The node's address, once resolved."""
        self.path: list[tuple[int, bytes]] = []
        """The Uri-Path options of the space's resource."""
        self.streams: set[_Stream] = set()
        """The subscriptions open, ended when the space is closed."""
        self._transactions: set[Any] = set()  # open: aborted when the space is closed
        self.session = secrets.token_urlsafe(12)
        """Named by the calls that may wait, which the node ends when the space closes."""
        self._waited = False  # a call that may wait was sent: closing ends the session
        self.closed = False

    @property
    def name(self) -> str:
        """The space's name on its node, as :attr:`Space.name <tuplespace.Space.name>`."""
        return self._name

    # -- the space's options, as the node has them (GET ?options) ----------------------

    @abc.abstractmethod
    def _space_options(self) -> Map:
        """The space's options as the node answered them (see ``space_options``)."""

    @property
    def order(self) -> str:
        """See :attr:`Space.order <tuplespace.Space.order>`."""
        order: str = self._space_options()["order"]
        return order

    @property
    def capacity(self) -> int | None:
        """See :attr:`Space.capacity <tuplespace.Space.capacity>`."""
        capacity: int | None = self._space_options()["capacity"]
        return capacity

    @property
    def limits(self) -> Limits:
        """See :attr:`Space.limits <tuplespace.Space.limits>`."""
        return Limits(**self._space_options()["limits"])

    @property
    def charge_rate(self) -> Credit:
        """See :attr:`Space.charge_rate <tuplespace.Space.charge_rate>`."""
        return _credit(self._space_options(), "charge_rate")

    @property
    def creation_charge(self) -> Credit:
        """See :attr:`Space.creation_charge <tuplespace.Space.creation_charge>`."""
        return _credit(self._space_options(), "creation_charge")

    @property
    def redirect_charge(self) -> Credit:
        """See :attr:`Space.redirect_charge <tuplespace.Space.redirect_charge>`."""
        return _credit(self._space_options(), "redirect_charge")

    @property
    def firing_charge(self) -> Credit:
        """See :attr:`Space.firing_charge <tuplespace.Space.firing_charge>`."""
        return _credit(self._space_options(), "firing_charge")

    @property
    def step_charge(self) -> Credit:
        """See :attr:`Space.step_charge <tuplespace.Space.step_charge>`."""
        return _credit(self._space_options(), "step_charge")

    @property
    def max_firings(self) -> int:
        """See :attr:`Space.max_firings <tuplespace.Space.max_firings>`."""
        most: int = self._space_options()["max_firings"]
        return most

    @property
    def operator(self) -> str:
        """See :attr:`Space.operator <tuplespace.Space.operator>`."""
        operator: str = self._space_options()["operator"]
        return operator

    @property
    def mint_amount(self) -> Credit:
        """See :attr:`Space.mint_amount <tuplespace.Space.mint_amount>`."""
        return _credit(self._space_options(), "mint_amount")

    @property
    def mint_bits(self) -> int:
        """See :attr:`Space.mint_bits <tuplespace.Space.mint_bits>`."""
        bits: int = self._space_options()["mint_bits"]
        return bits

    def check_open(self) -> None:
        """Raise :class:`~tuplespace.SpaceClosed` once the space is closed."""
        if self.closed:
            raise SpaceClosed(f"{self.url}: this handle is closed")

    async def _open(self) -> None:
        self.peer, self.path = await peer_of(self.url)
        if self.guard is not None and not self.guard.protects(self.peer):
            raise InvalidValue(
                f"the keys file {str(self._keys)!r} has no peer whose uri is the node's base URI "
                f"coap://{urlsplit(self.url).netloc}/ (at {self.peer[0]} port {self.peer[1]})",
                "keys",
            )
        await self.endpoint.open("::" if ":" in self.peer[0] else "0.0.0.0", 0)

    def _release(self) -> None:
        """Close the client's socket, and write the OSCORE sequence numbers down (a
        clean close loses none)."""
        self.endpoint.close()
        if self.guard is not None:
            self.guard.close()

    def _options(self, ask: _Ask) -> list[tuple[int, bytes]]:
        below = () if ask.path is None else ask.path.split("/")
        path = [*self.path, *((URI_PATH, segment.encode()) for segment in below)]
        accept = _JSON if ask.json else _CBOR
        options = [*path, *((URI_QUERY, q.encode()) for q in ask.query)]
        if ask.wait != 0:  # a call that may wait names the session that ends it
            self._waited = True
            options.append((URI_QUERY, f"session={self.session}".encode()))
        options.append((ACCEPT, accept))
        if ask.payload or ask.code not in (GET, DELETE):
            cbor = ask.code == POST and not ask.json
            options.insert(len(path), (CONTENT_FORMAT, _CBOR if cbor else _JSON))
        return options

    def _within(self, ask: _Ask) -> float | None:
        """How long an answer may take: the node's wait and the space's ``timeout``."""
        return None if ask.wait is None else ask.wait + self.timeout

    def _closing(self) -> tuple[_Ask, float] | None:
        """The request that ends the session, and how long closing waits for its
        answer (two transmissions); None when no call that may wait was sent."""
        if not self._waited:
            return None
        ask = _Ask(POST, b"", ("op=close", f"session={self.session}"))
        return ask, min(self.timeout, 2 * self.endpoint.timers.ack_timeout)

    async def _ask_apart(self, ask: _Ask) -> Value:
        """What ``ask`` answers, asked from an endpoint of its own (the space's is closed),
        with the keys read again: the space's closed guard wrote its numbers down."""
        guard = None if self._keys is None else _client_guard(self._keys)
        endpoint = Endpoint(timers=self.endpoint.timers, network=self.endpoint.network, guard=guard)
        try:
            await endpoint.open("::" if ":" in self.peer[0] else "0.0.0.0", 0)
            work = endpoint.request(self.peer, ask.code, self._options(ask), ask.payload)
            response = await _bounded(work, self._within(ask))
        finally:
            endpoint.close()
            if guard is not None:
                guard.close()
        return self._answer(response, ask)

    async def _end_streams(self) -> None:
        """End the subscriptions, their deregistrations sent (once: the socket closes next)."""
        for stream in list(self.streams):
            stream.stop()
        await asyncio.sleep(0)

    def _answer(self, response: Message, ask: _Ask) -> Any:
        if not ask.json:
            return _value(response, self.url)
        if not success(response.code):
            raise error_of(http_status(response.code), response.payload, self.url)
        return orjson.loads(response.payload) if response.payload else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class CoapSpace(_Space, CreditCalls):
    """The space ``jobs`` of a node, reached over CoAP, with the methods of
    :class:`~tuplespace.Space` that docs/federation.md lists ("Linda operations over CoAP").

    >>> jobs = ts.connect("coap://127.0.0.1:5683/spaces/jobs")   # doctest: +SKIP
    >>> jobs.write(("job", 1)); jobs.take(("job", int), timeout=5)  # doctest: +SKIP
    ('job', 1)

    Tuples travel in CBOR, templates in the JSON wire format.  A request the node does
    not answer within ``timeout`` seconds (beyond the time a read or take may wait)
    raises :class:`~tuplespace.Unreachable`.  A take is done once however often its
    request is sent (CoAP's duplicate detection), under a claim that this side
    confirms before the call returns: a take whose answer never arrives raises
    ``Unreachable``, and its tuple returns to the space when the claim runs out
    (docs/federation.md, "No lost tuples: claims").
    ``ack_timeout`` and ``max_retransmit`` are the retransmission timers (RFC 7252:
    2 s, 4 times), ``nstart`` and ``probing_rate`` its congestion control and
    ``network`` where the datagrams travel, as for :class:`~tuplespace.Node`.

    ``keys`` (a keys file, as a node's) makes this side an OSCORE peer of the node
    (docs/federation.md, Security): the entry whose ``uri`` is the node's base URI
    protects every request to it, and the node lets it do what its own keys file
    allows the peer of those keys, paid from that peer's account.  Without it the
    requests are anonymous.  A keys file that cannot be read, or has no entry for
    the node, raises :class:`~tuplespace.InvalidValue` naming it; a node that does
    not know the keys answers :class:`~tuplespace.Unauthorized`.

    >>> jobs = ts.connect("coap://192.0.2.7:5683/spaces/jobs", keys="keys.json")   # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        nstart: int | None = None,
        probing_rate: float = 1.0,
        network: Network | None = None,
        keys: str | os.PathLike[str] | None = None,
    ) -> None:
        timers = Timers(ack_timeout, max_retransmit=max_retransmit, nstart=nstart, probing_rate=probing_rate)
        super().__init__(url, timeout, timers, network, keys)
        self._rules = CoapRules(self)
        self._clock = RemoteClock(self)
        self._upcalls: set[RemoteUpcall] = set()
        self._runner = LoopThread("tuplespace-coap-client")
        try:
            self._runner.call(self._open(), timeout)
        except BaseException:
            self._runner.stop(self._shutdown)
            raise

    def _do(self, ask: _Ask) -> Value:
        self.check_open()
        options = self._options(ask)
        try:
            response = self.endpoint.request_blocking(
                self.peer, ask.code, options, ask.payload, self._within(ask)
            )
        except Unreachable:
            self.check_open()  # closed meanwhile
            raise
        return self._answer(response, ask)

    def request(
        self,
        operation: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str | int] | None = None,
        again: bool = False,
    ) -> Any:
        """Send a rules or credit operation of the HTTP API's table (``add_rule``,
        ``grant_credit``, ...) to the space's ``$rules`` or ``$credit`` resource, and
        answer its JSON, as :meth:`RemoteSpace.request
        <tuplespace.client.RemoteSpace.request>` does over HTTP."""
        return self._do(_request_ask(operation, body, params))

    def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> Lease:
        """See :meth:`Space.write <tuplespace.Space.write>`."""
        seq, expires = self._do(_write(t, lease, timeout))
        return Lease(self, seq, expires)

    def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> list[Lease]:
        """See :meth:`Space.write_many <tuplespace.Space.write_many>`: all or none."""
        return [Lease(self, seq, expires) for seq, expires in self._do(_write_many(tuples, lease))]

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = self._do(_renew(seq, seconds))
        return expires

    def _cancel(self, seq: int) -> None:
        self._do(_cancel(seq))

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """A copy of a tuple matching ``template``, waiting up to ``timeout`` seconds
        (None: as long as it takes); :class:`~tuplespace.Timeout` after."""
        return _found(self._do(_fetch(template, "read", timeout)), timeout)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a tuple matching ``template``, as :meth:`read` waits; the
        take is claimed, and final once the node has the claim's confirmation."""
        return _found(self._claim(_fetch(template, "take", timeout))["tuple"], timeout)

    def try_read(self, template: Any) -> Tuple | None:
        """A copy of a tuple matching ``template``, or None at once."""
        found: Tuple | None = self._do(_fetch(template, "read", 0))
        return found

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a tuple matching ``template``, or None at once (claimed as
        :meth:`take`)."""
        found: Tuple | None = self._claim(_fetch(template, "take", 0))["tuple"]
        return found

    def _claim(self, ask: _Ask) -> Map:
        """The answer of a claimed take, once its claim is confirmed."""
        sent = time.monotonic()
        confirmation = _Confirmation(self._do(_claimed(ask)), sent, self.url)
        while confirmation.ask is not None:
            try:
                self._do(confirmation.ask)
                break
            except TupleSpaceError as exc:
                failure = confirmation.failed(exc)
                if failure is not None:
                    raise failure from None
            time.sleep(self.endpoint.timers.ack_timeout)
        return confirmation.answer

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """See :meth:`Space.read_all <tuplespace.Space.read_all>`; a large answer comes
        block by block, and in several answers past the node's ``max_results``."""
        return self._all(_Pages("read_all", template, limit, timeout))

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """See :meth:`Space.take_all <tuplespace.Space.take_all>`, answered as
        :meth:`read_all`; each answer is claimed, as a :meth:`take`."""
        return self._all(_Pages("take_all", template, limit, timeout))

    def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(self._claim(ask) if pages.claimed else self._do(ask))
        return pages.found

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        n: int = self._do(_count(template))
        return n

    def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        """See :meth:`Space.write_if_absent <tuplespace.Space.write_if_absent>`."""
        return bool(self._do(_pair("write_if_absent", template, t, lease)))

    def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """See :meth:`Space.replace <tuplespace.Space.replace>`; ``successor`` is the new
        tuple (a function cannot travel: ``TypeError``)."""
        return _found(self._do(_pair("replace", template, successor, lease, timeout)), timeout)

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> CoapSubscription[Event]:
        """See :meth:`Space.subscribe <tuplespace.Space.subscribe>`: the events come
        in notifications of an observation of the space (RFC 7641), each going on
        from the one before; after one that went missing, the subscription registers
        again from the last event it has (docs/federation.md, "Subscriptions over
        Observe").  At most ``max_pending`` events wait here: past that the
        observation ends until the reader has caught up, and resumes from the
        node's event log.  ``lease`` is kept here."""
        self.check_open()
        return self._stream(_subscription(self, template, events, since, max_pending, lease, existing))

    def watch_records(
        self,
        under: str | None = None,
        events: Iterable[str] = CHANGE_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> CoapSubscription[Change]:
        """See :meth:`Space.watch_records <tuplespace.Space.watch_records>`: the changes
        come as a subscription's events do (see :meth:`subscribe`)."""
        self.check_open()
        return self._stream(_record_changes(self, under, events, since, max_pending, lease))

    def _stream(self, made: dict[str, Any]) -> CoapSubscription[Any]:
        seconds = made.pop("lease")
        subscription: CoapSubscription[Any] = CoapSubscription(self, self._runner.loop, **made)
        self._runner.call(subscription.begin(seconds), self.timeout)
        return subscription

    def set_options(self, options: dict[str, Any]) -> None:
        """Set options of the space on its node (``PUT /spaces/<space>?options``, the
        body of the HTTP API's ``PUT /spaces/{space}``): a node makes its spaces on first
        use, so over CoAP the space's options are changed rather than given as it is
        created; a peer allowed ``all`` sets the ``firing_charge``, ``step_charge``,
        ``max_firings``, ``method_steps``, ``method_ms`` and ``method_memory`` of its
        rules (those not named keep their values), all or none
        (:class:`~tuplespace.InvalidValue` naming a bad or other option, within the HTTP
        API's bounds; :class:`~tuplespace.Forbidden`, or :class:`~tuplespace.Unauthorized` when
        anonymous, for a peer allowed less)."""
        self._do(_request_ask("put_space", options, None))

    def read_options(self) -> Map:
        """The options of the space on its node (``GET /spaces/<space>?options``):
        ``order``, ``capacity``, ``limits``, the charges, ``max_firings``,
        ``active_limits`` (its rules' limits), ``operator``, ``mint_amount``,
        ``mint_bits`` and ``clock`` (``"system"`` or ``"simulated"``).  The attributes
        of the same names (``space.capacity``...) read them, one exchange each."""
        return _options_of(self._do(_OPTIONS))

    def _space_options(self) -> Map:
        return self.read_options()

    def statistics(self) -> dict[str, Any]:
        """The space's statistics, as the node keeps them (see :meth:`Space.statistics
        <tuplespace.Space.statistics>`); ``closed`` says whether this handle is closed.
        A closed handle still answers, from a socket of its own."""
        if not self.closed:
            return {**_statistics(self._do(_Ask(GET))), "closed": False}
        runner = LoopThread("tuplespace-coap-client")
        try:
            answer = runner.call(self._ask_apart(_Ask(GET)), self.timeout)
        finally:
            runner.stop()
        return {**_statistics(answer), "closed": True}

    def transaction(self, lease: float = 60.0) -> CoapTransaction:
        """Begin a transaction on the node's space (see :meth:`Space.transaction
        <tuplespace.Space.transaction>`; use with ``with``).  Its ``lease`` is a positive
        number of seconds: if this side goes away, the node aborts it when the lease runs
        out, and every tuple it took returns to its place."""
        tx = CoapTransaction(self.url, _lease_of_transaction(lease), self._transactions.discard, self._do)
        tx.begin()
        self._transactions.add(tx)
        return tx

    @property
    def rules(self) -> CoapRules:
        """The space's rules (see :class:`~tuplespace.Rules`): add, list, get and remove
        them, through its ``$rules`` resource (docs/federation.md, "Rules and methods
        over CoAP").  Adding and removing them needs ``read+write`` on the node, naming
        a ``principal`` other than the space's default account ``all``, and adding a
        rule what it does when it fires (``all`` for one that creates or refreshes
        records: otherwise :class:`~tuplespace.Forbidden`, or
        :class:`~tuplespace.Unauthorized` for an anonymous peer).

        >>> jobs.rules.add("done", template=("job", int), write=[("done", "t[1]")])  # doctest: +SKIP
        """
        return self._rules

    @property
    def clock(self) -> RemoteClock:
        """The space's clock on its node: ``now()`` reads its time (``GET ?clock``), and
        ``advance(seconds)`` moves a simulated one forward (``POST ?op=advance``), what
        falls due then run on the node (leases, waits, rules), as over HTTP.  Advancing
        needs ``all`` on the node (otherwise :class:`~tuplespace.Forbidden`, or
        :class:`~tuplespace.Unauthorized` for an anonymous peer); a bad number raises
        :class:`~tuplespace.InvalidValue` naming ``advance``, a space on the system clock
        :class:`~tuplespace.Conflict` (``real_clock``).

        >>> jobs.clock.advance(60)  # doctest: +SKIP
        """
        return self._clock

    # -- records ---------------------------------------------------------------------------

    def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Any = None,
        lease: float | None = None,
        *,
        principal: str | None = None,
    ) -> RemoteRecord:
        """See :meth:`Space.create <tuplespace.Space.create>`; the handle is a
        :class:`~tuplespace.RemoteRecord` on the record's address.  The space's default
        account pays, or ``principal``, which only a peer the node allows ``all`` may name."""
        rid = record_id(self._do(_create(path, fields, credit, lease, principal)))
        return RemoteRecord(self, f"{self.url}/{path}", FULL_OPERATIONS, rid=rid)

    def record(self, ref: str | URI) -> RemoteRecord:
        """See :meth:`Space.record <tuplespace.Space.record>`: a path of this space,
        ``"$"``, a ``coap://`` address (a capability's too) or a handle; raises
        :class:`~tuplespace.RecordNotFound` when no record is there."""
        handle = RemoteRecord(self, _address(self.url, ref))
        handle.ask()
        return handle.identified()

    def find(
        self, template: Mapping[str, Any], under: str | None = None, limit: int | None = None
    ) -> list[RemoteRecord]:
        """See :meth:`Space.find <tuplespace.Space.find>`: at most the node's
        ``max_results`` at once (:class:`~tuplespace.LimitReached` when more match
        and no smaller ``limit`` was asked)."""
        found = _found_records(self._do(_find(template, under, limit)))
        return [RemoteRecord(self, a, FULL_OPERATIONS, rid=rid) for a, rid in found]

    def try_take_record(self, template: Mapping[str, Any], under: str | None = None) -> RecordData | None:
        """See :meth:`Space.try_take_record <tuplespace.Space.try_take_record>`;
        claimed as :meth:`take_record`."""
        return data_of(self._claim(_take_record(template, under, 0))["record"])

    def take_record(
        self, template: Mapping[str, Any], under: str | None = None, timeout: float | None = None
    ) -> RecordData:
        """See :meth:`Space.take_record <tuplespace.Space.take_record>`; the take is
        claimed, as a :meth:`take`: the node holds the record until the claim is
        confirmed, and shows it again if the answer never arrived."""
        taken = data_of(self._claim(_take_record(template, under, timeout))["record"])
        return _record_found(taken, timeout)

    # -- what its record handles use (see tuplespace._federation._remote.Host) -----------------

    def call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the client's event loop (a thread of its own) and return
        its result; :class:`~tuplespace.Unreachable` after :attr:`timeout`."""
        return self._runner.call(coroutine, self.timeout)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The client's event loop, in a thread of its own."""
        return self._runner.loop

    @property
    def upcalls(self) -> set[RemoteUpcall]:
        """The upcalls of its record handles (``on_change``), ended when the space closes."""
        return self._upcalls

    def close(self) -> None:
        """Abort the open transactions, end the calls waiting at the node (their session),
        end the subscriptions, close the client's socket and end its record handles'
        upcalls; the calls waiting and later calls raise :class:`~tuplespace.SpaceClosed`."""
        if not self.closed:
            for tx in list(self._transactions):
                tx.abort_quietly()
            closing = self._closing()
            if closing is not None:  # at most once: the node may be gone
                ask, within = closing
                with contextlib.suppress(TupleSpaceError):
                    self.endpoint.request_blocking(self.peer, ask.code, self._options(ask), b"", within)
        self.closed = True
        self._runner.stop(self._shutdown)
        for upcall in list(self._upcalls):
            upcall.cancel()

    async def _shutdown(self) -> None:
        await self._end_streams()
        self._release()

    def __enter__(self) -> CoapSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCoapSpace(_Space, AsyncCreditCalls):
    """:class:`CoapSpace` for asyncio, on the caller's event loop: the same methods,
    awaited (``ts.connect_async("coap://127.0.0.1:5683/spaces/jobs")``), and the same
    keywords (``keys="keys.json"`` makes it the node's OSCORE peer).

    >>> jobs = await ts.connect_async("coap://127.0.0.1:5683/spaces/jobs")   # doctest: +SKIP
    >>> await jobs.write(("job", 1))                                         # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        nstart: int | None = None,
        probing_rate: float = 1.0,
        network: Network | None = None,
        keys: str | os.PathLike[str] | None = None,
    ) -> None:
        timers = Timers(ack_timeout, max_retransmit=max_retransmit, nstart=nstart, probing_rate=probing_rate)
        super().__init__(url, timeout, timers, network, keys)
        self._rules = AsyncCoapRules(self)
        self._clock = AsyncRemoteClock(self)
        self._known_options: Map | None = None

    async def _do(self, ask: _Ask) -> Value:
        self.check_open()
        work = self.endpoint.request(self.peer, ask.code, self._options(ask), ask.payload)
        try:
            response = await _bounded(work, self._within(ask))
        except Unreachable:
            self.check_open()  # closed meanwhile: what waited is released
            raise
        return self._answer(response, ask)

    async def request(
        self,
        operation: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str | int] | None = None,
        again: bool = False,
    ) -> Any:
        """See :meth:`CoapSpace.request`."""
        return await self._do(_request_ask(operation, body, params))

    async def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> AsyncLease:
        """See :meth:`CoapSpace.write`."""
        seq, expires = await self._do(_write(t, lease, timeout))
        return AsyncLease(self, seq, expires)

    async def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> list[AsyncLease]:
        """See :meth:`CoapSpace.write_many`."""
        return [AsyncLease(self, seq, expires) for seq, expires in await self._do(_write_many(tuples, lease))]

    async def _renew(self, seq: int, seconds: float | None) -> float | None:
        expires: float | None = await self._do(_renew(seq, seconds))
        return expires

    async def _cancel(self, seq: int) -> None:
        await self._do(_cancel(seq))

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`CoapSpace.read`."""
        return _found(await self._do(_fetch(template, "read", timeout)), timeout)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """See :meth:`CoapSpace.take`."""
        return _found((await self._claim(_fetch(template, "take", timeout)))["tuple"], timeout)

    async def try_read(self, template: Any) -> Tuple | None:
        """See :meth:`CoapSpace.try_read`."""
        found: Tuple | None = await self._do(_fetch(template, "read", 0))
        return found

    async def try_take(self, template: Any) -> Tuple | None:
        """See :meth:`CoapSpace.try_take`."""
        found: Tuple | None = (await self._claim(_fetch(template, "take", 0)))["tuple"]
        return found

    async def _claim(self, ask: _Ask) -> Map:
        """See :meth:`CoapSpace._claim`."""
        sent = time.monotonic()
        confirmation = _Confirmation(await self._do(_claimed(ask)), sent, self.url)
        while confirmation.ask is not None:
            try:
                await self._do(confirmation.ask)
                break
            except TupleSpaceError as exc:
                failure = confirmation.failed(exc)
                if failure is not None:
                    raise failure from None
            await asyncio.sleep(self.endpoint.timers.ack_timeout)
        return confirmation.answer

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`CoapSpace.read_all`."""
        return await self._all(_Pages("read_all", template, limit, timeout))

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`CoapSpace.take_all`."""
        return await self._all(_Pages("take_all", template, limit, timeout))

    async def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(await self._claim(ask) if pages.claimed else await self._do(ask))
        return pages.found

    async def count(self, template: Any) -> int:
        """See :meth:`CoapSpace.count`."""
        n: int = await self._do(_count(template))
        return n

    async def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        """See :meth:`CoapSpace.write_if_absent`."""
        return bool(await self._do(_pair("write_if_absent", template, t, lease)))

    async def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """See :meth:`CoapSpace.replace`."""
        return _found(await self._do(_pair("replace", template, successor, lease, timeout)), timeout)

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> AsyncCoapSubscription[Event]:
        """See :meth:`CoapSpace.subscribe`; iterate with ``async for``.  The
        subscription begins when it is awaited, entered with ``async with`` or first
        read (as those of :class:`~tuplespace.client.AsyncRemoteSpace`)."""
        self.check_open()
        return AsyncCoapSubscription(
            self, **_subscription(self, template, events, since, max_pending, lease, existing)
        )

    def watch_records(
        self,
        under: str | None = None,
        events: Iterable[str] = CHANGE_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> AsyncCoapSubscription[Change]:
        """See :meth:`CoapSpace.watch_records`; it begins as :meth:`subscribe`'s do."""
        self.check_open()
        return AsyncCoapSubscription(self, **_record_changes(self, under, events, since, max_pending, lease))

    async def set_options(self, options: dict[str, Any]) -> None:
        """See :meth:`CoapSpace.set_options`; the attributes read the options the node
        answered (see :meth:`read_options`)."""
        self._known_options = _options_of(await self._do(_request_ask("put_space", options, None)))

    async def read_options(self) -> Map:
        """See :meth:`CoapSpace.read_options`.  The attributes of the same names
        (``space.capacity``...) are those this call read last (an attribute cannot
        wait for the node)."""
        self._known_options = _options_of(await self._do(_OPTIONS))
        return self._known_options

    def known_options(self) -> Map:
        """The options of the space :meth:`read_options` read last."""
        if self._known_options is None:
            raise TupleSpaceError(f"{self.url}: its options are not read yet: await space.read_options()")
        return self._known_options

    def _space_options(self) -> Map:
        return self.known_options()

    async def statistics(self) -> dict[str, Any]:
        """See :meth:`CoapSpace.statistics`."""
        answer = await (self._ask_apart(_Ask(GET)) if self.closed else self._do(_Ask(GET)))
        return {**_statistics(answer), "closed": self.closed}

    @property
    def rules(self) -> AsyncCoapRules:
        """See :attr:`CoapSpace.rules`; its calls awaited."""
        return self._rules

    @property
    def clock(self) -> AsyncRemoteClock:
        """See :attr:`CoapSpace.clock`; its calls awaited."""
        return self._clock

    def transaction(self, lease: float = 60.0) -> AsyncCoapTransaction:
        """See :meth:`CoapSpace.transaction`; use with ``async with``.  It begins when
        it is awaited, entered or first used."""
        self.check_open()
        tx = AsyncCoapTransaction(
            self.url, _lease_of_transaction(lease), self._transactions.discard, self._do
        )
        self._transactions.add(tx)
        return tx

    async def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Any = None,
        lease: float | None = None,
        *,
        principal: str | None = None,
    ) -> AsyncRemoteRecord:
        """See :meth:`CoapSpace.create`."""
        rid = record_id(await self._do(_create(path, fields, credit, lease, principal)))
        return AsyncRemoteRecord(self, f"{self.url}/{path}", rid=rid)

    async def record(self, ref: str | URI) -> AsyncRemoteRecord:
        """See :meth:`CoapSpace.record`."""
        handle = AsyncRemoteRecord(self, _address(self.url, ref))
        await handle.ask()
        return handle.identified()

    async def find(
        self, template: Mapping[str, Any], under: str | None = None, limit: int | None = None
    ) -> list[AsyncRemoteRecord]:
        """See :meth:`CoapSpace.find`."""
        found = _found_records(await self._do(_find(template, under, limit)))
        return [AsyncRemoteRecord(self, a, rid=rid) for a, rid in found]

    async def try_take_record(
        self, template: Mapping[str, Any], under: str | None = None
    ) -> RecordData | None:
        """See :meth:`CoapSpace.try_take_record`."""
        return data_of((await self._claim(_take_record(template, under, 0)))["record"])

    async def take_record(
        self, template: Mapping[str, Any], under: str | None = None, timeout: float | None = None
    ) -> RecordData:
        """See :meth:`CoapSpace.take_record`."""
        taken = data_of((await self._claim(_take_record(template, under, timeout)))["record"])
        return _record_found(taken, timeout)

    async def close(self) -> None:
        """Abort the open transactions, end the calls waiting at the node (their session),
        end the subscriptions and close the client's socket; calls waiting for an answer
        and later calls raise :class:`~tuplespace.SpaceClosed`."""
        if not self.closed:
            for tx in list(self._transactions):
                await tx.abort_quietly()
            closing = self._closing()
            if closing is not None:  # at most once: the node may be gone
                ask, within = closing
                with contextlib.suppress(TupleSpaceError):
                    work = self.endpoint.request(self.peer, ask.code, self._options(ask))
                    await _bounded(work, within)
        self.closed = True
        await self._end_streams()
        self._release()

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncCoapSpace:
        """An :class:`AsyncCoapSpace` on ``url``, its socket bound on the running loop
        (:class:`~tuplespace.Unreachable` when its host is not resolved within ``timeout``)."""
        space = cls(url, **options)
        try:
            await asyncio.wait_for(space._open(), space.timeout)
        except TimeoutError:
            space._release()
            raise Unreachable(f"{url}: its host was not resolved within {space.timeout} s") from None
        except BaseException:
            space._release()
            raise
        return space

    async def __aenter__(self) -> AsyncCoapSpace:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class CoapTransaction(_Transaction):
    """A transaction on a node's space over CoAP (:meth:`CoapSpace.transaction`); see
    :class:`~tuplespace.Transaction`.  Used with ``with``, it commits when the block
    ends and aborts on an exception.

    >>> with jobs.transaction(lease=30) as tx:          # doctest: +SKIP
    ...     job = tx.take(("job", int))
    ...     tx.write(("done", job[1]))

    Its writes get their leases at commit; what it takes is held by it (no claim) and
    returns to its place if it aborts, by :meth:`abort` or its lease running out.  An
    operation on an aborted one raises :class:`~tuplespace.TransactionAborted`, on a
    committed one :class:`~tuplespace.TransactionError`.
    """

    def __init__(
        self, url: str, lease: float, forget: Callable[[Any], None], send: Callable[[_Ask], Value]
    ) -> None:
        super().__init__(url, lease, forget)
        self._send = send

    def begin(self) -> None:
        """Begin it on the node (:meth:`CoapSpace.transaction` does)."""
        asked = time.monotonic()
        self._begun(self._send(self._begin()), asked)

    def _call(self, ask: _Ask) -> Value:
        try:
            return self._send(self._in(ask))
        except TransactionAborted:
            self._ended("aborted")
            raise

    def write(self, t: Any, lease: float | None = None) -> None:
        """Write ``t`` at commit; its ``lease`` counts from then."""
        self._call(_write(t, lease, None))

    def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> None:
        """Write several tuples at commit (all or none)."""
        self._call(_write_many(tuples, lease))

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        return _found(self._call(_fetch(template, "read", timeout)), timeout)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return _found(self._call(_fetch(template, "take", timeout)), timeout)

    def try_read(self, template: Any) -> Tuple | None:
        found: Tuple | None = self._call(_fetch(template, "read", 0))
        return found

    def try_take(self, template: Any) -> Tuple | None:
        found: Tuple | None = self._call(_fetch(template, "take", 0))
        return found

    def read_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        """See :meth:`CoapSpace.read_all`; more matches than one answer holds raise
        :class:`~tuplespace.LimitReached` (read them with a ``limit``)."""
        return self._all(_Pages("read_all", template, limit, timeout, resumable=False))

    def take_all(self, template: Any, limit: int | None = None, timeout: float | None = 0) -> list[Tuple]:
        return self._all(_Pages("take_all", template, limit, timeout, resumable=False))

    def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(self._call(ask))
        return pages.found

    def count(self, template: Any) -> int:
        n: int = self._call(_count(template))
        return n

    def commit(self) -> None:
        """Make the takes final and the writes visible, atomically; raises SpaceFull,
        the transaction aborted, when its writes do not fit in the space's capacity."""
        try:
            self._call(_Ask(POST, b"", ("op=commit",)))
        except SpaceFull:
            self._ended("aborted")
            raise
        self._ended("committed")

    def abort(self) -> None:
        """Discard the writes and put every taken tuple back at its place; nothing
        happens to a transaction that has already ended."""
        ask = self._abort_ask()
        if ask is None:
            return
        with contextlib.suppress(TransactionError):  # it ended on the node already
            self._send(ask)
        self._ended("aborted")

    def abort_quietly(self) -> None:
        """Abort while the space closes; a failure only means its lease will end it."""
        try:
            self.abort()
        except TupleSpaceError as exc:
            log.warning("aborting a transaction of %s failed: %s", self._url, exc)
            self._ended("aborted")

    def renew(self, lease: float | None) -> None:
        """Give the transaction ``lease`` more seconds from now."""
        ask, seconds = self._renew_ask(lease)
        asked = time.monotonic()
        self._renewed(self._call(ask), seconds, asked)

    def __enter__(self) -> CoapTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self.state == "active":
            self.commit()
        else:
            self.abort()


class AsyncCoapTransaction(_Transaction, AsyncOpenable):
    """:class:`CoapTransaction` for asyncio (:meth:`AsyncCoapSpace.transaction`): the
    same methods, awaited; used with ``async with``.  It begins on the node when it
    is awaited, entered or first used."""

    def __init__(
        self, url: str, lease: float, forget: Callable[[Any], None], send: Callable[[_Ask], Any]
    ) -> None:
        super().__init__(url, lease, forget)
        self._send = send
        self._opening = AsyncLock()

    async def _open(self) -> None:
        async with self._opening:
            if self.id or self._state != "active":
                return
            asked = time.monotonic()
            self._begun(await self._send(self._begin()), asked)

    async def _call(self, ask: _Ask) -> Any:
        await self._open()
        try:
            return await self._send(self._in(ask))
        except TransactionAborted:
            self._ended("aborted")
            raise

    async def write(self, t: Any, lease: float | None = None) -> None:
        """See :meth:`CoapTransaction.write`."""
        await self._call(_write(t, lease, None))

    async def write_many(self, tuples: Iterable[Any], lease: float | None = None) -> None:
        """See :meth:`CoapTransaction.write_many`."""
        await self._call(_write_many(tuples, lease))

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        return _found(await self._call(_fetch(template, "read", timeout)), timeout)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return _found(await self._call(_fetch(template, "take", timeout)), timeout)

    async def try_read(self, template: Any) -> Tuple | None:
        found: Tuple | None = await self._call(_fetch(template, "read", 0))
        return found

    async def try_take(self, template: Any) -> Tuple | None:
        found: Tuple | None = await self._call(_fetch(template, "take", 0))
        return found

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """See :meth:`CoapTransaction.read_all`."""
        return await self._all(_Pages("read_all", template, limit, timeout, resumable=False))

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        return await self._all(_Pages("take_all", template, limit, timeout, resumable=False))

    async def _all(self, pages: _Pages) -> list[Tuple]:
        while (ask := pages.ask()) is not None:
            pages.add(await self._call(ask))
        return pages.found

    async def count(self, template: Any) -> int:
        n: int = await self._call(_count(template))
        return n

    async def commit(self) -> None:
        """See :meth:`CoapTransaction.commit`."""
        try:
            await self._call(_Ask(POST, b"", ("op=commit",)))
        except SpaceFull:
            self._ended("aborted")
            raise
        self._ended("committed")

    async def abort(self) -> None:
        """See :meth:`CoapTransaction.abort`."""
        ask = self._abort_ask()
        if ask is None:
            return
        with contextlib.suppress(TransactionError):
            await self._send(ask)
        self._ended("aborted")

    async def abort_quietly(self) -> None:
        """See :meth:`CoapTransaction.abort_quietly`."""
        try:
            await self.abort()
        except TupleSpaceError as exc:
            log.warning("aborting a transaction of %s failed: %s", self._url, exc)
            self._ended("aborted")

    async def renew(self, lease: float | None) -> None:
        """See :meth:`CoapTransaction.renew`."""
        ask, seconds = self._renew_ask(lease)
        asked = time.monotonic()
        self._renewed(await self._call(ask), seconds, asked)

    async def __aenter__(self) -> AsyncCoapTransaction:
        await self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self.state == "active":
            await self.commit()
        else:
            await self.abort()


_CBOR, _JSON = bytes((CBOR,)), bytes((JSON,))
