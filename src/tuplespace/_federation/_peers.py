"""Who may do what on a node: OSCORE peers from a keys file, the permissions of
anonymous peers, and rate limits per peer (docs/federation.md, Security).

A :class:`Guard` stands between a node's endpoint and its resources.  For each
request it takes a token of the sending host's bucket (4.29 with Max-Age when
none is left), opens an OSCORE-protected request with the context its kid names
(4.01 or 4.00 when it is unknown, replayed or forged: nothing acts), and checks
that the peer (authenticated, or anonymous) may do what the request asks (4.01
for anonymous, 4.03 for a peer); the answer is protected as the request was.  For
the node's own requests to a peer of the keys file it protects the request and
opens the answer.

The keys file (JSON)::

    {"state": "peers.state.json",
     "peers": [{"name": "gateway", "uri": "coap://192.0.2.7:5683/",
                "master_secret": "0102…", "master_salt": "9e7c…", "id_context": null,
                "sender_id": "01", "recipient_id": "", "permissions": "read+write"}]}

Secrets and IDs are hex; ``master_salt`` (empty), ``id_context`` (none),
``permissions`` (``read+write``) and ``state`` (the keys file's path with
``.state`` added, relative paths from the keys file's folder) may be left out.
``uri`` is the peer's base URI, for the node's requests to it; ``sender_id`` is
this node's ID, ``recipient_id`` the peer's.

Sequence numbers survive restarts through the state file: before the sender's
sequence number passes the last number reserved there, the next
:data:`SEQUENCE_STEP` are reserved (one write per step), so a restarted node
never reuses a nonce.  The highest number accepted from each peer is written
ahead too, up to ``2 * REPLAY_STEP`` past it, by a thread of its own: a request
waits for the disk only when a write is late.  After a restart every number up
to what was written is refused as a replay (a node that stopped cleanly writes
the exact numbers).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .._errors import InvalidValue, Unauthorized, Unreachable
from .._rate import RateLimiter
from .._recordstore import DEFAULT_PRINCIPAL
from ..server._errors import ApiError
from ..server._service_rules import rule_acts
from ._endpoint import Address
from ._message import (
    CONTENT_FORMAT,
    DELETE,
    FETCH,
    GET,
    MAX_AGE,
    OSCORE,
    POST,
    PUT,
    SERVICE_UNAVAILABLE,
    Message,
    MessageError,
)
from ._oscore import BAD_OPTION, BAD_REQUEST, UNAUTHORIZED, Context, OscoreError, PeerRequest, decode_option
from ._resources import error_message as error_answer

log = logging.getLogger("tuplespace")

__all__ = ["PERMISSIONS", "RULE_LEVELS", "Guard", "Peer", "client_guard", "load_peers", "needed"]

#: What a peer may do, each level allowing what the ones before it allow: ``read``
#: (GET, Observe, FETCH read, count, read_all, find and subscribe, POST ending its own
#: session), ``read+write`` (PUT a field, POST to a space, FETCH take, take_all,
#: write_if_absent, replace and take_record) and ``all`` (POST to create or refresh a
#: record, DELETE).  A space's ``$rules`` and ``$credit`` resources say what each of
#: theirs needs (:func:`needed`): adding a rule needs what it does when it fires too
#: (:data:`RULE_LEVELS`).
PERMISSIONS = ("none", "read", "read+write", "all")
NONE, READ, WRITE, ALL = range(4)
#: The level each operation a rule may do when it fires needs (the operations of
#: :func:`~tuplespace.server._service_rules.rule_acts`): what doing it directly
#: needs, a FETCH ``op=take`` and a POST ``op=call`` ``read+write``, a POST creating
#: or refreshing a record ``all``.
RULE_LEVELS = {"take": WRITE, "call_record": WRITE, "create_record": ALL, "refresh_record": ALL}
# FETCHes that change nothing
_READING = frozenset(
    {"op=read", "op=count", "op=read_all", "op=find", "op=subscribe", "op=watch", "op=watch_records"}
)
SEQUENCE_STEP = 1024  # sequence numbers reserved per write of the state file
REPLAY_STEP = 64  # accepted sequence numbers written ahead per write
Seal = Callable[[Message, bool], Message]
# The codes of a peer's refusal of a protected request (RFC 8613 §8.2).
_REFUSED = frozenset({BAD_REQUEST, UNAUTHORIZED, BAD_OPTION})
# What a peer's refusal says of this side's keys.
_HINTS = {
    "Security context not found": " (its keys file has no peer whose recipient_id is this side's sender_id)",
    "Decryption failed": " (its keys file has other keys for this side: master secret, salt or IDs)",
    "Replay detected": " (it accepted that sequence number already: a state file lost or shared?)",
}


class Peer:
    """A peer of the keys file: its name, base URI, context and permissions."""

    __slots__ = ("address", "context", "level", "mark", "name", "pending", "planned", "uri")

    def __init__(self, name: str, uri: str | None, context: Context, level: int) -> None:
        self.name = name
        self.uri = uri
        self.context = context
        self.level = level
        self.address: Address | None = None  # the UDP address of ``uri``
        # Accepted sequence numbers are written ahead: up to ``mark`` on the disk, up to
        # ``planned`` once the write ``pending`` is done.
        self.mark = self.planned = context.window.floor
        self.pending: Future[None] | None = None

    def __repr__(self) -> str:
        return f"Peer({self.name!r}, {PERMISSIONS[self.level]!r})"


def permission(name: str, what: str) -> int:
    """The level of a permission's name; :class:`InvalidValue` if it is none."""
    try:
        return PERMISSIONS.index(name)
    except ValueError:
        raise InvalidValue(f"{what} is one of {', '.join(PERMISSIONS)}; got {name!r}") from None


def _hex(entry: dict[str, Any], key: str, where: str, default: str | None = None) -> bytes | None:
    text = entry.get(key, default)
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidValue(f"{where}.{key} is a hex string, got {text!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidValue(f"{where}.{key} is a hex string, got {text!r}") from None


class _State:
    """The state file: for each peer, the sender's first unreserved sequence number
    and the highest one accepted from it (written ahead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()  # written from the node's loop and its handles' threads
        try:
            self.data: dict[str, dict[str, int]] = json.loads(path.read_text())
        except FileNotFoundError:
            self.data = {}
        except (OSError, ValueError) as exc:
            raise InvalidValue(f"the OSCORE state file {str(path)!r} cannot be read: {exc}") from None

    def get(self, name: str, key: str, default: int) -> int:
        value = self.data.get(name, {}).get(key, default)
        if not isinstance(value, int):
            raise InvalidValue(f"the OSCORE state file {str(self.path)!r} has {name}.{key} = {value!r}")
        return value

    def write(self, name: str, key: str, value: int, exact: bool = False) -> None:
        """Write a number down: a larger one than the last, unless ``exact``."""
        with self.lock:
            numbers = self.data.setdefault(name, {})
            numbers[key] = value if exact else max(value, numbers.get(key, value))
            temporary = self.path.with_name(self.path.name + ".tmp")
            with open(temporary, "w") as out:
                json.dump(self.data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)


def load_peers(path: str | os.PathLike[str]) -> tuple[list[Peer], _State]:
    """The peers of a keys file (format in this module's docstring) and its state file;
    each peer with a ``uri`` has its UDP address.  :class:`InvalidValue` naming the file
    for a file that cannot be read or an entry that is not right."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidValue(f"the keys file {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("peers"), list):
        raise InvalidValue(f"the keys file {str(path)!r} is an object with a list 'peers'")
    state_name = document.get("state", path.name + ".state")
    if not isinstance(state_name, str):
        raise InvalidValue(f"the keys file {str(path)!r}: 'state' is a path, got {state_name!r}")
    state = _State(path.parent / state_name)
    peers: list[Peer] = []
    seen: set[tuple[bytes, bytes | None]] = set()
    at: set[Address] = set()
    for i, entry in enumerate(document["peers"]):
        where = f"the keys file {str(path)!r}: peers[{i}]"
        if not isinstance(entry, dict):
            raise InvalidValue(f"{where} is an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidValue(f"{where}.name is a non-empty string")
        uri = entry.get("uri")
        if uri is not None and (not isinstance(uri, str) or urlsplit(uri).scheme != "coap"):
            raise InvalidValue(f"{where}.uri is a coap:// base URI, got {uri!r}")
        secret = _hex(entry, "master_secret", where)
        sender_id = _hex(entry, "sender_id", where)
        recipient_id = _hex(entry, "recipient_id", where)
        if not secret or sender_id is None or recipient_id is None:
            raise InvalidValue(f"{where} needs master_secret, sender_id and recipient_id (hex)")
        id_context = _hex(entry, "id_context", where)
        if (recipient_id, id_context) in seen:
            raise InvalidValue(f"{where}: two peers have the recipient ID {recipient_id.hex()!r}")
        seen.add((recipient_id, id_context))
        level = permission(entry.get("permissions", "read+write"), f"{where}.permissions")

        def reserve(sequence: int, name: str = name) -> int:
            state.write(name, "sender", sequence + SEQUENCE_STEP)
            return sequence + SEQUENCE_STEP

        try:
            context = Context(
                secret,
                _hex(entry, "master_salt", where, "") or b"",
                sender_id=sender_id,
                recipient_id=recipient_id,
                id_context=id_context,
                sequence=state.get(name, "sender", 0),
                floor=state.get(name, "recipient", -1),
                reserve=reserve,
            )
        except ValueError as exc:
            raise InvalidValue(f"{where}: {exc}") from None
        peer = Peer(name, uri, context, level)
        if uri is not None:
            peer.address = _resolve(uri, where)
            if peer.address in at:
                raise InvalidValue(f"{where}: two peers of the keys file are at {uri!r}")
            at.add(peer.address)
        peers.append(peer)
    return peers, state


def client_guard(keys: str | os.PathLike[str]) -> Guard:
    """The guard of a client that serves nothing (``ts.connect("coap://…", keys=…)``): it
    protects its requests to each peer of the keys file ``keys`` that has a ``uri``."""
    peers, state = load_peers(keys)
    return Guard(peers, state, anonymous=NONE, rate=None, burst=1, max_hosts=1)


def needed(request: Message, own: str = DEFAULT_PRINCIPAL) -> int:
    """The permission a request needs (a capability's path: none, the capability
    itself allows exactly what it grants); ``own`` is the account the peer pays
    from, which it may name."""
    try:
        path = request.path
        code = request.code
        if len(path) > 2 and path[0] == "spaces" and path[2] == "$cap":
            return NONE
        if len(path) > 2 and path[0] == "spaces" and path[2] == "$credit":
            return _credit_needed(path[3:], request.query, own)
        if code == GET:
            return READ
        # Adding or removing a rule, or calling a method, writes, and adding a rule
        # needs what it does too; charging another account than the space's default is
        # for a peer allowed everything.
        if (len(path) > 2 and path[0] == "spaces" and path[2] == "$rules") or "op=call" in request.query:
            names = any(q.startswith("principal=") and q != f"principal={own}" for q in request.query)
            if names or code not in (POST, DELETE):
                return ALL
            return max([WRITE, *(level for _, level in rule_acts_of(request))])
        if len(path) == 2 and code == POST and "op=close" in request.query:
            return READ  # the end of its own session, which a reader's waiting reads are under
        if code == FETCH:
            reading = all(q in _READING for q in request.query if q.startswith("op="))
            return READ if reading else WRITE
        if len(path) == 2 and (code == PUT or (code == POST and "op=advance" in request.query)):
            return ALL  # the space's options, its clock
        if code == PUT or (code == POST and len(path) == 2):
            return WRITE
    except MessageError:
        pass
    return ALL


def rule_acts_of(request: Message) -> list[tuple[str, int]]:
    """What the rule a request adds (a POST to ``/spaces/<space>/$rules``) does when
    it fires: each key of its definition that takes tuples, refreshes, creates or
    calls records, with the level that needs (:data:`RULE_LEVELS`).  Nothing for
    any other request, or a payload that is no JSON object (which the resource refuses)."""
    try:
        path = request.path
        if request.code != POST or len(path) != 3 or path[0] != "spaces" or path[2] != "$rules":
            return []
        definition = orjson.loads(request.payload)
    except (MessageError, orjson.JSONDecodeError):
        return []
    if type(definition) is not dict:
        return []
    return [(key, RULE_LEVELS[operation]) for key, operation in rule_acts(definition)]


def _credit_needed(below: tuple[str, ...], query: tuple[str, ...], own: str) -> int:
    """The permission a request to a space's ``$credit`` resources needs: anyone may
    ask for a challenge and mint credit by proof of work, a peer allowed ``read`` may
    read the space's default account and one allowed ``read+write`` spend from it;
    granting credit, and naming another account, is for a peer allowed ``all``.  An
    OSCORE peer's own account is its default (``own``), and so may be named too."""
    mine = (f"principal={DEFAULT_PRINCIPAL}", f"principal={own}")
    names = any(q.startswith("principal=") and q not in mine for q in query)
    what = below[0] if below else ""
    if names or what == "grant":
        return ALL
    if what in ("challenge", "mint"):
        return NONE
    return WRITE if what == "transfer" else READ


def _resolve(uri: str, where: str) -> Address:
    parts = urlsplit(uri)
    host, port = parts.hostname or "", parts.port or 5683
    try:
        ipaddress.ip_address(host)
        return (host, port)
    except ValueError:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise InvalidValue(f"{where}: the peer URI {uri!r} cannot be resolved: {exc}") from None
        address: Address = found[0][4][:2]
        return address


class Guard:
    """The security of a node (see the module's docstring): ``peers`` from a keys file
    (:func:`load_peers`), what ``anonymous`` peers may do (a level of
    :data:`PERMISSIONS`), and ``rate`` requests per second with bursts of ``burst``
    per sending host (None: no limit), for at most ``max_hosts`` hosts at once."""

    def __init__(
        self,
        peers: list[Peer],
        state: _State | None,
        *,
        anonymous: int,
        rate: float | None,
        burst: int,
        max_hosts: int,
    ) -> None:
        self.anonymous = anonymous
        self._state = state
        self._peers = peers
        self._by_kid = {(p.context.recipient_id, p.context.id_context): p for p in peers}
        self._by_address = {p.address: p for p in peers if p.address is not None}
        self._rates = None if rate is None else RateLimiter(rate, burst, max_clients=max_hosts)
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tuplespace-oscore-state")
        self._refused = {"rate": 0, "oscore": 0, "permission": 0}

    # -- the server side ---------------------------------------------------------------

    def admit(self, request: Message, peer: Address) -> tuple[Message | None, Message, Seal | None]:
        """``(refusal, inner, seal)`` for a request from ``peer``: the answer refusing
        it (None: serve it), the request to serve (opened if it was protected) and
        the function protecting its answers (``seal(answer, fresh)``; None if it
        came unprotected)."""
        if self._rates is not None:
            wait = self._rates.take(peer[0])
            if wait:
                self._refused["rate"] += 1
                error = ApiError(429, "rate_limited", f"more than {self._rates.rate:g} requests per second")
                return error_answer(error).add(MAX_AGE, math.ceil(wait)), request, None
        option = request.get(OSCORE)
        if option is None:
            who, level, seal, inner = None, self.anonymous, None, request
        else:
            try:
                partial_iv, kid, kid_context = decode_option(option)
                known = self._by_kid.get((kid, kid_context)) if kid is not None else None
                if known is None:
                    raise OscoreError(UNAUTHORIZED, "Security context not found")
                inner = PeerRequest(known.context.unprotect_request(request, partial_iv), known.name)
            except OscoreError as exc:
                self._refused["oscore"] += 1
                return Message(code=exc.code, payload=str(exc).encode()).add(MAX_AGE, 0), request, None
            try:
                self._accepted(known)
            except OSError as exc:
                with self._lock:
                    known.planned = known.mark  # the next request tries again
                log.error("oscore: the state file cannot be written: %s", exc)
                unavailable = Message(code=SERVICE_UNAVAILABLE, payload=b"the OSCORE state cannot be written")
                return unavailable, request, None
            context = known.context

            def seal(answer: Message, fresh: bool) -> Message:
                return context.protect_response(answer, partial_iv, fresh)

            who, level = known, known.level
        asks = needed(inner) if who is None else needed(inner, who.name)
        if asks <= level:
            return None, inner, seal
        self._refused["permission"] += 1
        may, field = f"may do {PERMISSIONS[level]}", None
        beyond = [key for key, needs in rule_acts_of(inner) if needs > level]
        if beyond:  # a rule that would do more than its author may
            field = beyond[0]
            may += f"; a rule that does {', '.join(beyond)} when it fires needs {PERMISSIONS[asks]}"
        if who is None:
            error = ApiError(401, "unauthorized", f"anonymous peers {may}: use OSCORE", field)
        else:
            error = ApiError(403, "forbidden", f"the peer {who.name!r} {may}", field)
        return error_answer(error), inner, seal

    def _accepted(self, peer: Peer) -> None:
        """Keep the highest accepted sequence number written ahead: a write of the next
        ``2 * REPLAY_STEP`` starts in the background when it comes within
        ``REPLAY_STEP`` of what is planned, and is waited for only if it passes what
        is on the disk (before the request acts)."""
        state = self._state
        highest = peer.context.window.highest
        if state is None or highest + REPLAY_STEP <= peer.planned:
            return
        with self._lock:
            if highest + REPLAY_STEP > peer.planned:
                planned = peer.planned = highest + 2 * REPLAY_STEP
                peer.pending = self._writer.submit(self._write_mark, state, peer, planned)
            pending = peer.pending
        if highest > peer.mark and pending is not None:
            pending.result()

    @staticmethod
    def _write_mark(state: _State, peer: Peer, planned: int) -> None:
        state.write(peer.name, "recipient", planned)
        peer.mark = max(peer.mark, planned)

    # -- the client side ---------------------------------------------------------------

    def protects(self, peer: Address) -> bool:
        """Whether the requests to ``peer`` (a UDP address) go protected: the keys file
        has a peer whose ``uri`` is there."""
        return peer in self._by_address

    def protect(self, peer: Address, message: Message) -> tuple[Message, Callable[[Message], Message]] | None:
        """For a peer of the keys file: the protected request and the function that
        opens its answers (raising :class:`~tuplespace.Unreachable` for a forged or
        replayed one, :class:`~tuplespace.Unauthorized` when the peer refused the
        request's protection); None for any other peer (the request goes unprotected)."""
        known = self._by_address.get(peer)
        if known is None:
            return None
        context = known.context
        try:
            outer, partial_iv = context.protect_request(message)
        except OscoreError as exc:
            raise Unreachable(f"OSCORE to {known.name!r}: {exc}") from None

        def open_answer(answer: Message) -> Message:
            if answer.get(OSCORE) is None and answer.code >= 128:
                # Not protected (§8.2): a refusal of the peer's OSCORE (its diagnostic as
                # payload, no content format), or an error of its guard or message layer.
                if answer.code in _REFUSED and answer.get(CONTENT_FORMAT) is None:
                    text = answer.payload[:200].decode("utf-8", "replace")
                    why = f"{known.name!r} ({known.uri}) refused the OSCORE-protected request: {text}"
                    raise Unauthorized(why + _HINTS.get(text, ""))
                return answer
            try:
                inner = context.unprotect_response(answer, partial_iv)
            except OscoreError as exc:
                raise Unreachable(f"the answer of {known.name!r} fails OSCORE: {exc}") from None
            self._accepted(known)
            return inner

        return outer, open_answer

    def statistics(self) -> dict[str, int]:
        """Peers with keys, hosts with a rate bucket, and requests refused for their
        rate, their protection and their permission."""
        clients = 0 if self._rates is None else self._rates.statistics()["clients"]
        return {
            "oscore_peers": len(self._peers),
            "rate_buckets": clients,
            **{f"refused_{k}": v for k, v in self._refused.items()},
        }

    def close(self) -> None:
        """Write the exact sequence numbers down (a clean stop loses none)."""
        self._writer.shutdown()
        state = self._state
        if state is None:
            return
        for peer in self._peers:
            with contextlib.suppress(OSError):
                peer.context.write_down(functools.partial(state.write, peer.name, "sender", exact=True))
                state.write(peer.name, "recipient", peer.context.window.highest, exact=True)
