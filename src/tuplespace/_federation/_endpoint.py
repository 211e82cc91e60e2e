"""A CoAP endpoint on a datagram transport: the message layer of RFC 7252 with
Observe (RFC 7641) and block-wise transfer (RFC 7959), server and client in one.

An :class:`Endpoint` is an asyncio datagram protocol.  As a server it hands each
request to its :class:`Site` once, however often the request arrives (a bounded
cache of recent message ids answers the repeats), piggybacks the answer on the
ACK, or sends it apart (confirmable, retransmitted) when the request was repeated
before its answer was ready; it assembles Block1 request payloads, cuts answers
into Block2 blocks and sends Observe notifications.  As a client it sends
confirmable requests, retransmits them with exponential backoff
(``ACK_TIMEOUT``, ``ACK_RANDOM_FACTOR``, ``MAX_RETRANSMIT`` of :class:`Timers`),
sends and fetches payloads block by block, follows observations, and raises
:class:`~tuplespace.Unreachable` when the peer does not acknowledge within
``MAX_TRANSMIT_SPAN`` or when an ICMP error says its port is closed.

Congestion control (RFC 7252 §4.7): at most ``NSTART`` confirmables are
outstanding to one peer (sent and not yet acknowledged), requests, separate
answers and notifications alike, whether sent on the loop or by the threads
exchanging their own requests; the others wait their turn in one FIFO queue per
peer.  A peer that acknowledged nothing in ``MAX_TRANSMIT_SPAN`` is silent: until
a datagram comes from it again it is sent at most one confirmable at a time, and
no more than ``PROBING_RATE`` bytes per second.

Every table an endpoint keeps is bounded: ``max_exchanges`` message ids
remembered, ``max_assemblies`` Block1 payloads being assembled and as many Block2
answers kept for the blocks still to be fetched, ``max_queued`` requests waiting
for their turn per peer, ``MAX_SILENT`` silent peers.  The tables of what peers
send (message ids, assemblies, answers kept) and the silent peers are shared
between hosts (:class:`~tuplespace._federation._shares.Shares`): one host holds at
most ``max_host_exchanges`` message ids, ``max_host_assemblies`` assemblies and as
many answers, and ``MAX_HOST_SILENT`` silent peers, giving way its own oldest past
them, and when a table is full the host holding the most gives way its oldest:
however much one host sends, the node remembers the others' requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import ipaddress
import itertools
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from .._errors import InvalidValue, LimitReached, Unauthorized, Unreachable
from ._blockwise import BLOCK_OPTIONS, Blocks, etag
from ._message import (
    ACCEPT,
    ACK,
    BAD_OPTION,
    BAD_REQUEST,
    BLOCK1,
    BLOCK2,
    CON,
    CONTINUE,
    ETAG,
    FETCH,
    GET,
    INTERNAL_SERVER_ERROR,
    MAX_AGE,
    NON,
    NOT_FOUND,
    OBSERVE,
    OSCORE,
    REQUEST_ENTITY_INCOMPLETE,
    RST,
    SIZE1,
    SIZE2,
    URI_HOST,
    URI_PATH,
    URI_PORT,
    URI_QUERY,
    Message,
    MessageError,
    block_value,
    decode_block,
    success,
)
from ._network import Address, Network, UdpNetwork
from ._shares import Shares

__all__ = ["Address", "Endpoint", "Feed", "Guard", "Network", "Site", "Timers", "UdpNetwork"]

log = logging.getLogger("tuplespace")

# The critical (odd-numbered) options a server understands, with the longest value of
# each: an unknown one, one longer than that, or one repeated that is not repeatable
# (all but Uri-Path and Uri-Query) is 4.02 (RFC 7252 §5.4.1, §5.4.3, §5.4.5). Text is
# taken past the RFC's 255 bytes (a long query is refused by what reads it, naming it).
# Elective options are ignored where they are not used.
_CRITICAL = {URI_HOST: 65535, URI_PORT: 2, URI_PATH: 65535, URI_QUERY: 65535, ACCEPT: 2, BLOCK2: 3, BLOCK1: 3}
_REPEATABLE = frozenset({URI_PATH, URI_QUERY})

MAX_LATENCY = 100.0  # RFC 7252 §4.8.2
DEFAULT_MAX_AGE = 60  # seconds an answer is fresh when it says nothing (RFC 7252 §5.10.5)
MAX_BEHIND = 16  # notifications kept while an earlier one's blocks are fetched, the oldest giving way
MAX_IDLE_SOCKETS = 16  # kept by an endpoint for the requests of threads
CLOSE_CHECK = 1.0  # seconds a thread waits for an answer before it checks the endpoint is open
# Message ids remembered at most: fewer than the 65,536 a peer goes through before reusing
# one, so that a new request is never taken for the repeat of an old one.
MAX_EXCHANGES = 32768
# Outstanding confirmables to a loopback peer by default: RFC 7252 §4.7 allows more than
# NSTART = 1 where the path is known, and a loopback path has no congestion to avoid.
LOOPBACK_NSTART = 32
# Seconds a server waits for an answer before acknowledging its request empty (as aiocoap).
EMPTY_ACK_DELAY = 0.1
MAX_SILENT = 4096  # silent peers remembered (the least recently silent or probed forgotten)
MAX_HOST_SILENT = 256  # of them on one host (its ports): one host cannot make the others forgotten
MAX_PEERS = 4096  # peers whose turns are counted, past which the idle ones are forgotten


class Timers:
    """The transmission parameters of RFC 7252 §4.8 and the times derived from them."""

    def __init__(
        self,
        ack_timeout: float = 2.0,
        ack_random_factor: float = 1.5,
        max_retransmit: int = 4,
        nstart: int | None = None,
        probing_rate: float = 1.0,
    ):
        if nstart is not None and not (isinstance(nstart, int) and nstart >= 1):
            raise InvalidValue(f"nstart is a number of messages, at least 1, got {nstart!r}")
        if not probing_rate > 0:
            raise InvalidValue(f"probing_rate is positive bytes per second, got {probing_rate!r}")
        self.ack_timeout = ack_timeout
        self.ack_random_factor = ack_random_factor
        self.max_retransmit = max_retransmit
        self.nstart = nstart
        """Confirmables outstanding to one peer at most (None: 1, LOOPBACK_NSTART to a
        loopback address)."""
        self.probing_rate = probing_rate
        """Bytes per second, at most, sent to a peer that stopped answering."""
        scale = ack_timeout * ack_random_factor
        self.max_transmit_span = scale * (2**max_retransmit - 1)
        """Seconds from the first transmission of a confirmable message to its last."""
        self.max_transmit_wait = scale * (2 ** (max_retransmit + 1) - 1)
        """Seconds from the first transmission until the sender gives up waiting."""
        self.exchange_lifetime = self.max_transmit_span + 2 * MAX_LATENCY + ack_timeout
        """Seconds a message id is remembered to recognise its repeats."""


class Site(Protocol):
    """What an endpoint serves."""

    def render(self, request: Message, peer: Address) -> Message | Awaitable[Message]:
        """The answer to a request from ``peer`` (its code, options and payload), or an
        awaitable of it."""

    def observe(
        self, request: Message, notify: Callable[[], None], peer: Address
    ) -> Callable[[], None] | Feed | Message | None:
        """Register an observation (RFC 7641) of what a GET (or a FETCH, RFC 8132)
        names, for ``peer``: ``notify()`` is to be called on the endpoint's loop after
        each change.  Returns the function that ends it (the request is rendered
        again for each notification), a :class:`Feed` (which renders them), None to
        answer without Observe, or the answer refusing it."""

    def too_large(self, maximum: int) -> Message:
        """The 4.13 answer to a request payload past ``maximum`` bytes."""


class Feed(Protocol):
    """An observation whose notifications the site renders itself (a stream of a
    space's events: each notification says what came since the last)."""

    def render(self, request: Message) -> Message | Awaitable[Message]:
        """The next notification (or the answer to the registration)."""

    def cancel(self) -> None:
        """End the observation."""


Seal = Callable[[Message, bool], Message]


class Guard(Protocol):
    """What stands between an endpoint and its site: who may do what, and OSCORE
    (:class:`tuplespace._federation._peers.Guard`)."""

    def admit(self, request: Message, peer: Address) -> tuple[Message | None, Message, Seal | None]:
        """``(refusal, inner, seal)``: the answer refusing a whole request (None:
        serve it), the request to serve, and what protects its answers
        (``seal(answer, fresh)``, fresh for notifications)."""

    def protect(self, peer: Address, message: Message) -> tuple[Message, Callable[[Message], Message]] | None:
        """The protected form of a request to ``peer`` and what opens its answers;
        None to send it as it is."""


class _Turn:
    """A confirmable's turn to be outstanding to its peer: ``wake()`` is called, from
    any thread, when a queued one is given it."""

    __slots__ = ("granted", "queued", "wake")

    def __init__(self, wake: Callable[[], object]) -> None:
        self.granted = False
        self.queued = False
        self.wake = wake


class _Peer:
    """The confirmables outstanding to one peer and those waiting for their turn."""

    __slots__ = ("nstart", "outstanding", "queue")

    def __init__(self, nstart: int) -> None:
        self.nstart = nstart
        self.outstanding = 0
        self.queue: deque[_Turn] = deque()


@functools.lru_cache(maxsize=1024)
def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Congestion:
    """NSTART and PROBING_RATE (RFC 7252 §4.7) per peer, for the endpoint's loop and
    the threads that exchange their own requests alike (under one lock)."""

    def __init__(self, timers: Timers, max_queued: int) -> None:
        self.nstart = timers.nstart
        self.probing_rate = timers.probing_rate
        self.max_queued = max_queued
        self._lock = threading.Lock()
        self._peers: dict[Address, _Peer] = {}
        # Peers that stopped answering, with when the next byte may be sent to each.
        self.silent: Shares[Address, float] = Shares(MAX_SILENT, MAX_HOST_SILENT)
        self.any_silent = False  # whether ``silent`` holds a peer (read without the lock)

    def enter(self, peer: Address, turn: _Turn, bounded: bool) -> bool:
        """Whether a confirmable to ``peer`` may be sent now; if not, ``turn`` waits in
        the peer's queue (:class:`~tuplespace.LimitReached` when ``bounded`` and
        ``max_queued`` wait already)."""
        with self._lock:
            state = self._peers.get(peer)
            if state is None:
                if len(self._peers) >= MAX_PEERS:
                    for idle in [
                        a for a, known in self._peers.items() if not known.outstanding and not known.queue
                    ]:
                        del self._peers[idle]
                nstart = self.nstart
                if nstart is None:
                    nstart = LOOPBACK_NSTART if _loopback(peer[0]) else 1
                state = self._peers[peer] = _Peer(nstart)
            limit = 1 if self.any_silent and peer in self.silent else state.nstart
            if state.outstanding < limit and not state.queue:
                state.outstanding += 1
                turn.granted = True
                return True
            if bounded and len(state.queue) >= self.max_queued:
                raise LimitReached(
                    f"{len(state.queue)} requests to {peer[0]}:{peer[1]} wait for their turn already",
                    limit="queued",
                    maximum=self.max_queued,
                )
            state.queue.append(turn)
            turn.queued = True
            return False

    def leave(self, peer: Address, turn: _Turn) -> None:
        """``turn`` is over (acknowledged, given up or abandoned): the next waiting is
        given it."""
        with self._lock:
            state = self._peers.get(peer)
            if state is None:
                return
            woken = []
            if turn.granted:
                turn.granted = False
                state.outstanding -= 1
                woken = self._next(peer, state)
            elif turn.queued:
                turn.queued = False
                state.queue.remove(turn)
        for waiting in woken:
            waiting.wake()

    def _next(self, peer: Address, state: _Peer) -> list[_Turn]:
        limit = 1 if self.any_silent and peer in self.silent else state.nstart
        woken = []
        while state.queue and state.outstanding < limit:
            turn = state.queue.popleft()
            turn.queued, turn.granted = False, True
            state.outstanding += 1
            woken.append(turn)
        return woken

    def lost(self, peer: Address, size: int) -> None:
        """``peer`` acknowledged nothing: probe it from now on."""
        with self._lock:
            if peer not in self.silent:
                self.silent.put(peer[0], peer, time.monotonic() + size / self.probing_rate)
                self.any_silent = True

    def heard(self, peer: Address) -> None:
        """A datagram came from ``peer``: it is not silent (any more)."""
        if not self.any_silent or peer not in self.silent:
            return
        with self._lock:
            if self.silent.pop(peer) is None:
                return
            self.any_silent = len(self.silent) > 0
            state = self._peers.get(peer)
            woken = [] if state is None else self._next(peer, state)
        for waiting in woken:
            waiting.wake()

    def pace(self, peer: Address, size: int) -> float:
        """Seconds to wait before a confirmable of ``size`` bytes goes to ``peer`` (0
        unless it is silent), the time taken."""
        if not self.any_silent or peer not in self.silent:
            return 0.0
        with self._lock:
            at = self.silent.get(peer)
            if at is None:
                return 0.0
            now = time.monotonic()
            start = max(now, at)
            self.silent.put(peer[0], peer, start + size / self.probing_rate)
            return start - now

    def clear(self) -> None:
        """Forget every turn (the endpoint is closed: nothing more is sent)."""
        with self._lock:
            for state in self._peers.values():
                state.queue.clear()
            self._peers.clear()

    def queued(self) -> int:
        with self._lock:
            return sum(len(state.queue) for state in self._peers.values())


class _Transmission:
    """A confirmable message waiting for its turn, then for its ACK (or RST),
    retransmitted until then."""

    __slots__ = ("attempts", "data", "done", "due", "handle", "mid", "peer", "timeout", "turn")

    def __init__(
        self, mid: int, peer: Address, data: bytes, timeout: float, done: Callable[[Message | None], None]
    ):
        self.mid = mid
        self.peer = peer
        self.data = data
        self.timeout = timeout
        self.done = done  # called with the ACK or RST, or None when it was never acknowledged
        self.attempts = 0
        self.due = 0.0  # when it is sent again unless acknowledged (the loop's time)
        self.handle: asyncio.TimerHandle | None = None  # its paced sending (to a silent peer)
        self.turn: _Turn | None = None


class _Waiting:
    """A request of this endpoint waiting for its answer, or an observation followed."""

    __slots__ = ("future", "max_age", "notify", "peer", "replaced", "sequence", "since")

    def __init__(self, peer: Address, future: asyncio.Future[Message]) -> None:
        self.peer = peer
        self.future = future
        self.notify: Callable[[Message], None] | None = None
        self.replaced: _Waiting | None = None  # the observation whose token a block is asked under
        self.sequence = -1
        self.since = 0.0  # when the last fresh notification came
        self.max_age = DEFAULT_MAX_AGE  # how long it is fresh (RFC 7252 §5.10.5)


class _Served:
    """A request received: its answer's datagram once sent (None while being made)."""

    __slots__ = ("reply", "separate")

    def __init__(self) -> None:
        self.reply: bytes | None = None
        self.separate = False  # acknowledged empty: the answer goes in a confirmable of its own


class _Observed:
    """An observation a peer registered here."""

    __slots__ = ("cancel", "dirty", "inflight", "peer", "render", "request", "rest", "seal")

    def __init__(self, peer: Address, request: Message) -> None:
        self.peer = peer
        self.request = request
        self.cancel: Callable[[], None] = _nothing
        self.render: Callable[[Message], Message | Awaitable[Message]] | None = None  # a Feed's
        self.inflight = False
        self.dirty = False
        self.seal: Seal | None = None  # protects its notifications (OSCORE)
        # While the blocks of a notification kept under its token are fetched: the time
        # after which the next may replace it anyway.
        self.rest: asyncio.TimerHandle | None = None


def _nothing() -> None:
    pass


class Endpoint(asyncio.DatagramProtocol):
    """One CoAP endpoint: serves ``site`` (None: a client only) and sends requests.

    ``block_szx`` is the exponent of the block size it sends and asks for (6: 1024
    bytes); a request payload past ``max_request_bytes`` is refused with 4.13 and an
    answer past ``max_response_bytes`` raises :class:`~tuplespace.Unreachable`.  It
    remembers ``max_exchanges`` message ids to answer repeated requests,
    ``max_host_exchanges`` of them from one sending host (whatever its ports), and
    assembles ``max_assemblies`` block-wise requests, ``max_host_assemblies`` from one
    host (as many answers kept for their next blocks).  A request finding
    ``max_queued`` others waiting for their turn to its peer (at most
    ``timers.nstart`` outstanding) raises :class:`~tuplespace.LimitReached`.
    """

    def __init__(
        self,
        site: Site | None = None,
        *,
        timers: Timers | None = None,
        max_request_bytes: int = (1 << 20) + 1024,
        max_response_bytes: int = 16 << 20,
        max_assemblies: int = 64,
        max_exchanges: int = 8192,
        max_host_exchanges: int = 1024,
        max_host_assemblies: int = 16,
        max_age: int = DEFAULT_MAX_AGE,
        max_queued: int = 1024,
        block_szx: int = 6,
        network: Network | None = None,
        guard: Guard | None = None,
    ) -> None:
        for name, value in (("max_exchanges", max_exchanges), ("max_host_exchanges", max_host_exchanges)):
            if not (isinstance(value, int) and 0 < value <= MAX_EXCHANGES):
                raise InvalidValue(f"{name} is 1 to {MAX_EXCHANGES} (message ids are 16 bits), got {value!r}")
        for name, value in (("max_assemblies", max_assemblies), ("max_host_assemblies", max_host_assemblies)):
            if not (isinstance(value, int) and value >= 1):
                raise InvalidValue(f"{name} is a number of requests, at least 1, got {value!r}")
        if not 0 < max_age < 1 << 32:
            raise InvalidValue(f"max_age is 1 to 2**32 - 1 seconds, got {max_age!r}")
        if not max_queued >= 0:
            raise InvalidValue(f"max_queued is a number of requests, at least 0, got {max_queued!r}")
        self.site = site
        self.guard = guard
        self._critical = _CRITICAL if guard is None else {**_CRITICAL, OSCORE: 65535}
        self.timers = timers or Timers()
        self._congestion = _Congestion(self.timers, max_queued)
        self.max_request_bytes = max_request_bytes
        self.max_response_bytes = max_response_bytes
        self.max_assemblies = max_assemblies
        self.max_exchanges = max_exchanges
        self.max_host_exchanges = max_host_exchanges
        self.max_host_assemblies = max_host_assemblies
        self.max_age = max_age
        self.block_szx = block_szx
        self.network = network or UdpNetwork()
        self.address: Address = ()  # where it is bound, once open
        self.errors: socket.socket | None = None  # where ICMP errors are read, with their address
        self._transport: asyncio.DatagramTransport | None = None
        self._random = random.Random(os.urandom(16))
        self._mids = itertools.count(self._random.getrandbits(16))  # next() is atomic: any thread
        self._transmissions: dict[int, _Transmission] = {}
        # When each confirmable sent is due again, the soonest first, and the one timer
        # of the loop for the soonest: an entry whose transmission was acknowledged, or
        # is due at another time, is passed over (and dropped when they pile up).
        self._schedule: list[tuple[float, int, _Transmission]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._waiting: dict[bytes, _Waiting] = {}
        # Idle sockets for the requests of other threads, with the peer each is connected to.
        self._sockets: list[tuple[Any, Address]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen: Shares[tuple[Address, int], _Served] = Shares(max_exchanges, max_host_exchanges)
        self._observed: dict[tuple[Address, bytes], _Observed] = {}
        self._assemblies: Shares[tuple[Any, ...], bytearray] = Shares(max_assemblies, max_host_assemblies)
        # The answers of other requests than GET cut into blocks, for their next blocks:
        # under the peer and the request's token, with what identifies the request.
        self._bodies: Shares[tuple[Address, bytes], tuple[Message, tuple[Any, ...]]] = Shares(
            max_assemblies, max_host_assemblies
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._observe_sequence = 0
        self._separate = 0
        self.closed = False

    async def open(self, host: str, port: int) -> Address:
        """Bind to ``host``, ``port`` (0: any) on the endpoint's network; the address bound."""
        self.address = await self.network.open(self, host, port)
        return self.address

    # -- asyncio's interface -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def error_received(self, exc: Exception) -> None:
        """An ICMP error: fail at once what waits for the peer it names."""
        if self.errors is None:
            return
        while True:
            try:
                _, _, _, peer = self.errors.recvmsg(1, 1024, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except OSError:
                return
            self._unreachable(peer[:2], f"the peer's port is closed ({exc})")

    def datagram_received(self, data: bytes, addr: Address) -> None:
        peer = addr[:2]
        if self._congestion.any_silent:
            self._congestion.heard(peer)
        try:
            message = Message.decode(data)
        except MessageError:
            if len(data) >= 4 and data[0] >> 4 == 4:  # a confirmable we cannot read: reset it
                self._send(peer, Message(RST, 0, data[2] << 8 | data[3]).encode())
            return
        code, mtype = message.code, message.mtype
        if code == 0:
            if mtype == CON:  # a ping
                self._send(peer, Message(RST, 0, message.mid).encode())
            elif mtype in (ACK, RST):
                self._acknowledged(message, peer)
        elif code < 32:
            if mtype in (CON, NON):
                self._request(message, peer)
        elif code >> 5 in (2, 4, 5):
            self._response(message, peer)
        elif mtype == CON:  # a reserved class (1, 3, 6, 7): rejected
            self._send(peer, Message(RST, 0, message.mid).encode())

    # -- sending -------------------------------------------------------------------------

    def _send(self, peer: Address, data: bytes) -> None:
        if self._transport is not None:
            self._transport.sendto(data, peer)

    def _next_mid(self) -> int:
        return next(self._mids) & 0xFFFF

    def _confirmable(
        self, peer: Address, message: Message, done: Callable[[Message | None], None], bounded: bool = False
    ) -> None:
        """Send ``message`` as confirmable, once its turn comes (NSTART), retransmitting
        until it is acknowledged; ``bounded``: a request, refused with
        :class:`~tuplespace.LimitReached` when ``max_queued`` wait for their turn."""
        message.mtype = CON
        mid = message.mid = self._next_mid()
        while mid in self._transmissions:  # 65536 confirmables under way: the oldest gives way
            self._give_up(mid)
        timers = self.timers
        timeout = timers.ack_timeout * self._random.uniform(1.0, timers.ack_random_factor)
        transmission = _Transmission(mid, peer, message.encode(), timeout, done)
        loop = asyncio.get_running_loop()

        def wake() -> None:  # on the loop when a confirmable gave its turn, else from a thread
            try:
                here = asyncio.get_running_loop() is loop
            except RuntimeError:
                here = False
            if here:
                self._emit(mid, transmission)
            else:
                loop.call_soon_threadsafe(self._emit, mid, transmission)

        turn = transmission.turn = _Turn(wake)
        now = self._congestion.enter(peer, turn, bounded)
        self._transmissions[mid] = transmission
        if now:
            self._emit(mid, transmission)

    def _emit(self, mid: int, transmission: _Transmission, paced: bool = False) -> None:
        """Send (again) a confirmable whose turn it is, at the probing rate to a
        silent peer, and wait for its acknowledgement."""
        if self._transmissions.get(mid) is not transmission:
            return
        loop = asyncio.get_running_loop()
        if not paced and self._congestion.any_silent:
            wait = self._congestion.pace(transmission.peer, len(transmission.data))
            if wait > 0:
                transmission.handle = loop.call_later(wait, self._emit, mid, transmission, True)
                return
        self._send(transmission.peer, transmission.data)
        due = transmission.due = loop.time() + transmission.timeout
        schedule = self._schedule
        if len(schedule) > 2 * len(self._transmissions) + 64:  # mostly acknowledged ones: drop them
            schedule[:] = [entry for entry in schedule if entry[2].due == entry[0]]
            heapq.heapify(schedule)
        heapq.heappush(schedule, (due, id(transmission), transmission))
        if self._timer is None or due < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = loop.call_at(due, self._due), due

    def _due(self) -> None:
        """Retransmit (or give up) the confirmables due, then wait for the next one."""
        self._timer = None
        loop = asyncio.get_running_loop()
        schedule = self._schedule
        now = loop.time()
        while schedule and schedule[0][0] <= now:
            due, _, transmission = heapq.heappop(schedule)
            if transmission.due == due:
                self._retransmit(transmission.mid)
        if schedule and not self.closed and (self._timer is None or self._timer_at != schedule[0][0]):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = schedule[0][0]
            self._timer = loop.call_at(self._timer_at, self._due)

    def _retransmit(self, mid: int) -> None:
        transmission = self._transmissions.get(mid)
        if transmission is None:
            return
        if transmission.attempts >= self.timers.max_retransmit:
            self._give_up(mid, lost=True)
            return
        transmission.attempts += 1
        transmission.timeout *= 2
        self._emit(mid, transmission)

    def _give_up(self, mid: int, lost: bool = False) -> None:
        """Stop sending a confirmable; ``lost``: its peer never acknowledged it."""
        transmission = self._transmissions.pop(mid)
        transmission.due = 0.0
        if transmission.handle is not None:
            transmission.handle.cancel()
        if lost:
            self._congestion.lost(transmission.peer, len(transmission.data))
        if transmission.turn is not None:
            self._congestion.leave(transmission.peer, transmission.turn)
        transmission.done(None)

    def _acknowledged(self, message: Message, peer: Address) -> bool:
        """Whether ``message`` acknowledged a confirmable under way (not a repeat)."""
        transmission = self._transmissions.get(message.mid)
        if transmission is None or transmission.peer != peer:
            return False
        del self._transmissions[message.mid]
        transmission.due = 0.0
        if transmission.handle is not None:
            transmission.handle.cancel()
        if transmission.turn is not None:
            self._congestion.leave(peer, transmission.turn)
        transmission.done(message)
        return True

    def _unreachable(self, peer: Address, why: str) -> None:
        for mid, transmission in list(self._transmissions.items()):
            if transmission.peer == peer:
                self._give_up(mid)
        for waiting in list(self._waiting.values()):
            if waiting.peer == peer and not waiting.future.done():
                waiting.future.set_exception(Unreachable(why))

    # -- the client side -----------------------------------------------------------------

    def _new_token(self) -> bytes:
        token = self._random.getrandbits(64).to_bytes(8, "big")
        while token in self._waiting:
            token = self._random.getrandbits(64).to_bytes(8, "big")
        return token

    async def _exchange(
        self, peer: Address, message: Message, notify: Callable[[Message], None] | None = None
    ) -> Message:
        """Send one confirmable request and return its answer (piggybacked or apart);
        with ``notify``, the messages that come later with its token are given to it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        token = message.token
        # A block of a protected notification is asked for under the observation's token:
        # the observation is waited for again once that block is in.
        previous = self._waiting.get(token)
        self._waiting[token] = waiting = _Waiting(peer, future)
        waiting.notify = notify
        waiting.replaced = previous
        span = self.timers.max_transmit_span

        def done(reply: Message | None) -> None:
            if future.done():
                return
            if reply is None:
                future.set_exception(Unreachable(f"no acknowledgement within {span:g} s"))
            elif reply.mtype == RST:
                future.set_exception(Unreachable("the peer reset the request"))

        try:
            self._confirmable(peer, message, done, bounded=True)
        except LimitReached:
            self._release(token, previous)
            raise
        mid = message.mid
        try:
            return await future
        except BaseException:
            if self._waiting.get(token) is waiting:
                self._release(token, previous)
            raise
        finally:
            if self._waiting.get(token) is waiting and notify is None:
                self._release(token, previous)
            if mid in self._transmissions and self._transmissions[mid].done is done:
                self._give_up(mid)

    def _release(self, token: bytes, previous: _Waiting | None) -> None:
        if previous is None:
            del self._waiting[token]
        else:
            self._waiting[token] = previous

    def _response(self, message: Message, peer: Address) -> None:
        if message.mtype == ACK and not self._acknowledged(message, peer):
            return  # a repeated answer: what it answered has it already
        waiting = self._waiting.get(message.token)
        if waiting is not None and waiting.replaced is not None and message.number(OBSERVE) is not None:
            waiting = waiting.replaced  # a notification, while a block of an earlier one is asked for
        if waiting is None or waiting.peer != peer:
            if message.mtype == CON:  # an answer nobody waits for, or an observation ended
                self._send(peer, Message(RST, 0, message.mid).encode())
            return
        if message.mtype == CON:
            self._send(peer, Message(ACK, 0, message.mid).encode())
        if not waiting.future.done():
            waiting.future.set_result(message)
        elif waiting.notify is not None and not _later_block(message):
            self._notification(waiting, message)

    def _notification(self, waiting: _Waiting, message: Message) -> None:
        sequence = message.number(OBSERVE)
        if sequence is not None and success(message.code):
            now = asyncio.get_running_loop().time()
            v1, v2 = waiting.sequence, sequence
            fresher = (v1 < v2 and v2 - v1 < 1 << 23) or (v1 > v2 and v1 - v2 > 1 << 23)
            if not (fresher or now > waiting.since + 128 or v1 < 0):  # RFC 7641 §3.4
                return
            waiting.sequence, waiting.since = sequence, now
            waiting.max_age = message.number(MAX_AGE) or DEFAULT_MAX_AGE
        assert waiting.notify is not None
        waiting.notify(message)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request(
        self, peer: Address, code: int, options: list[tuple[int, bytes]], payload: bytes = b""
    ) -> Message:
        """Send a request (block by block when its payload is larger than a block) and
        return the whole answer (its blocks fetched and joined)."""
        message = Message(CON, code, 0, self._new_token(), options, payload)
        protected = None if self.guard is None else self.guard.protect(peer, message)
        if protected is not None:
            message = protected[0]
        if len(message.payload) <= 16 << self.block_szx:
            sent, answer = message, await self._exchange(peer, message)
        else:
            sent, answer = await self._send_blocks(peer, message)
        if answer.number(BLOCK2) is not None:
            answer = await self._blocks2(peer, sent, answer)
        return answer if protected is None else protected[1](answer)

    def request_blocking(
        self,
        peer: Address,
        code: int,
        options: list[tuple[int, bytes]],
        payload: bytes = b"",
        timeout: float | None = None,
    ) -> Message:
        """:meth:`request` from a thread other than the endpoint's loop, which waits
        for the answer.  On UDP a request of one datagram each way is exchanged by
        the calling thread itself, on a socket of its own for the time of the
        request (at most ``MAX_IDLE_SOCKETS`` are kept for the next ones): no pass
        through the loop.  :class:`~tuplespace.Unreachable` when no answer comes
        within ``timeout`` seconds (None: no bound once the request is acknowledged),
        or when the endpoint is closed meanwhile (seen within ``CLOSE_CHECK`` seconds)."""
        loop = self._loop
        if loop is None or self.closed:
            raise Unreachable("the endpoint is closed")
        if len(payload) > 16 << self.block_szx:  # block by block: on the loop
            return asyncio.run_coroutine_threadsafe(
                _bounded(self.request(peer, code, options, payload), timeout), loop
            ).result()
        deadline = None if timeout is None else time.monotonic() + timeout
        message = Message(CON, code, 0, self._new_token(), options, payload)
        protected = None if self.guard is None else self.guard.protect(peer, message)
        if protected is not None:
            message = protected[0]
        try:
            sock, connected = self._sockets.pop()
        except IndexError:
            sock, connected = self.network.socket(self.address), ()
        try:
            if connected != peer:
                try:
                    sock.connect(peer)
                except OSError as exc:
                    raise Unreachable(f"the peer cannot be reached: {exc}") from None
                connected = peer
            answer = self._exchange_on(sock, peer, message, timeout, deadline)
            if answer.number(BLOCK2) is not None:
                blocks = Blocks(message, answer, self.max_response_bytes, self._new_token)
                failed = None
                while failed is None and (part := blocks.next_request()) is not None:  # the rest
                    failed = blocks.add(self._exchange_on(sock, peer, part, timeout, deadline))
                answer = blocks.whole() if failed is None else failed
        finally:
            if len(self._sockets) < MAX_IDLE_SOCKETS and not self.closed:
                self._sockets.append((sock, connected))
            else:
                sock.close()
        return answer if protected is None else protected[1](answer)

    def _exchange_on(
        self,
        sock: socket.socket,
        peer: Address,
        message: Message,
        timeout: float | None,
        deadline: float | None,
    ) -> Message:
        """One confirmable exchange on a blocking socket connected to ``peer``:
        retransmitted with backoff until acknowledged, then the answer awaited."""
        timers = self.timers
        wait = timers.ack_timeout * self._random.uniform(1.0, timers.ack_random_factor)
        mid = message.mid = self._next_mid()
        data = message.encode()
        token = message.token
        acknowledged, attempts = False, 0
        congestion = self._congestion
        turn = self._turn(peer, timeout, deadline)
        try:
            self._paced(sock, peer, data, timeout, deadline)
            resend = time.monotonic() + wait
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise Unreachable(f"no answer within {timeout} s")
                if not acknowledged and now >= resend:
                    if attempts >= timers.max_retransmit:
                        congestion.lost(peer, len(data))
                        raise Unreachable(f"no acknowledgement within {timers.max_transmit_span:g} s")
                    attempts += 1
                    wait *= 2
                    self._paced(sock, peer, data, timeout, deadline)
                    resend = time.monotonic() + wait
                if self.closed:
                    raise Unreachable("the endpoint is closed")
                bound = deadline if acknowledged else resend if deadline is None else min(resend, deadline)
                # 0 is non-blocking; a long wait is cut to see a close() from another thread
                sock.settimeout(CLOSE_CHECK if bound is None else min(max(bound - now, 1e-4), CLOSE_CHECK))
                try:
                    datagram = sock.recv(65536)
                except TimeoutError:
                    continue
                if congestion.any_silent:
                    congestion.heard(peer)
                try:
                    reply = Message.decode(datagram)
                except MessageError:
                    continue
                if reply.mtype in (ACK, RST) and reply.mid == mid:
                    if reply.mtype == RST:
                        raise Unreachable("the peer reset the request")
                    acknowledged = True
                    congestion.leave(peer, turn)  # no longer outstanding (RFC 7252 §4.7)
                    if reply.code == 0:
                        continue  # the answer comes apart
                if reply.code >= 64 and reply.token == token:
                    if reply.mtype == CON:
                        sock.send(Message(ACK, 0, reply.mid).encode())
                    return reply
                if reply.mtype == CON:  # an answer nobody waits for any more
                    sock.send(Message(RST, 0, reply.mid).encode())
        except ConnectionRefusedError as exc:
            raise Unreachable(f"the peer's port is closed ({exc})") from None
        except OSError as exc:
            if self.closed:
                raise Unreachable("the endpoint is closed") from None
            raise Unreachable(f"the peer cannot be reached: {exc}") from None
        finally:
            congestion.leave(peer, turn)

    def _turn(self, peer: Address, timeout: float | None, deadline: float | None) -> _Turn:
        """Wait, in a thread, for the turn of a request to ``peer`` (NSTART)."""
        turn = _Turn(_nothing)
        if self._congestion.enter(peer, turn, True):
            return turn
        ready = threading.Event()
        turn.wake = ready.set
        if turn.granted:  # given before it could be woken
            return turn
        try:
            while not ready.wait(
                CLOSE_CHECK if deadline is None else min(CLOSE_CHECK, deadline - time.monotonic())
            ):
                if self.closed:
                    raise Unreachable("the endpoint is closed")
                if deadline is not None and time.monotonic() >= deadline:
                    raise Unreachable(f"no answer within {timeout} s")
        except BaseException:
            self._congestion.leave(peer, turn)
            raise
        return turn

    def _paced(
        self, sock: socket.socket, peer: Address, data: bytes, timeout: float | None, deadline: float | None
    ) -> None:
        """Send a confirmable from a thread, at the probing rate to a silent peer."""
        wait = self._congestion.pace(peer, len(data))
        if wait > 0:
            if deadline is not None and time.monotonic() + wait > deadline:
                raise Unreachable(f"no answer within {timeout} s")
            until = time.monotonic() + wait
            while (left := until - time.monotonic()) > 0:
                if self.closed:
                    raise Unreachable("the endpoint is closed")
                time.sleep(min(left, CLOSE_CHECK))
        sock.send(data)

    async def _send_blocks(self, peer: Address, message: Message) -> tuple[Message, Message]:
        """Send ``message``, whose payload is larger than a block, in Block1 blocks
        (RFC 7959 §2.5): the message last sent (the last block) and its answer.  The
        next blocks of a large answer are asked under the last block's token, the one
        the node keeps that answer under (RFC 7959 §3.3)."""
        size = 16 << self.block_szx
        payload = message.payload
        szx, offset = self.block_szx, 0
        while True:
            chunk = payload[offset : offset + size]
            more = offset + size < len(payload)
            part = Message(CON, message.code, 0, self._new_token(), list(message.options), chunk)
            part.add(BLOCK1, block_value(offset // size, more, szx))
            if offset == 0:
                part.add(SIZE1, len(payload))
            answer = await self._exchange(peer, part)
            if not more or answer.code != CONTINUE:
                return part, answer
            asked = answer.number(BLOCK1)
            if asked is not None and decode_block(asked)[2] < szx:  # the server wants smaller blocks
                szx = decode_block(asked)[2]
            offset += size
            size = 16 << szx

    async def _blocks2(self, peer: Address, request: Message, answer: Message) -> Message:
        """The answer with the rest of its blocks (RFC 7959 §2.4) fetched and joined."""
        blocks = Blocks(request, answer, self.max_response_bytes, self._new_token)
        while (part := blocks.next_request()) is not None:
            failed = blocks.add(await self._exchange(peer, part))
            if failed is not None:
                return failed
        return blocks.whole()

    async def observe(
        self,
        peer: Address,
        options: list[tuple[int, bytes]],
        notify: Callable[[Message], None],
        lost: Callable[[str], None],
        code: int = GET,
        payload: bytes = b"",
    ) -> tuple[Message, Callable[[], None]]:
        """Register an observation (a GET with Observe 0, or ``code`` with ``payload``:
        a FETCH) and return the first answer and the function that ends the
        observation.  ``notify`` is called on the loop with each fresher notification,
        its blocks joined; none comes when the first answer came without Observe (the
        server did not register it).  When no fresh
        notification came for the Max-Age of the last (60 s unless it said), the
        client registers again (RFC 7641 §3.3.1): a server that dropped the
        observation (a notification lost too often) takes it up again, and one that
        does not answer calls ``lost`` with why.  Under OSCORE each registration is
        sealed anew (a sealed one sent again is a replay), and the notifications that
        follow it are opened with it."""
        message = Message(CON, code, 0, self._new_token(), list(options), payload)
        message.add(OBSERVE, 0)
        token = message.token
        # What fetches the rest of a notification.
        plain = Message(CON, code, 0, token, list(options), payload)
        protected = None if self.guard is None else self.guard.protect(peer, message)
        whole = notify
        if protected is not None:  # the blocks of a protected answer are kept under its token
            message, opened = protected
            plain = message

            def whole(notification: Message) -> None:
                try:
                    notification = opened(notification)
                except (Unreachable, Unauthorized) as exc:  # forged, or refused (a registration again)
                    log.info("coap: a notification was dropped: %s", exc)
                    return
                held = self._waiting.get(token)
                if held is not None:  # its Max-Age travels inside (RFC 8613 §4.1.3.1)
                    held.max_age = notification.number(MAX_AGE) or DEFAULT_MAX_AGE
                notify(notification)

        def registration() -> Message:
            """The registration sent again (RFC 7641 §3.3.1), sealed anew under OSCORE."""
            nonlocal opened
            again = Message(CON, code, 0, token, list(options), payload)
            again.add(OBSERVE, 0)
            sealed = None if self.guard is None else self.guard.protect(peer, again)
            if sealed is None:
                return again
            again, opened = sealed
            return again

        # Notifications that came while the blocks of an earlier one are fetched, given
        # in order once it is whole (None: no blocks being fetched).
        behind: deque[Message] | None = None

        def deliver(notification: Message) -> None:
            nonlocal behind
            if behind is not None:
                if len(behind) >= MAX_BEHIND:
                    behind.popleft()
                behind.append(notification)
                return
            block2 = notification.number(BLOCK2)
            if block2 is not None and decode_block(block2)[1]:
                behind = deque()
                self._spawn(self._rest_of_notification(peer, plain, notification, whole, caught_up))
            else:
                whole(notification)

        def caught_up() -> None:
            nonlocal behind
            waiting, behind = behind or deque(), None
            while waiting and behind is None:
                deliver(waiting.popleft())
            if behind is not None:
                behind.extend(waiting)

        first = await self._exchange(peer, message, deliver)
        waiting = self._waiting.get(token)

        def cancel() -> None:
            if waiting is None or self._waiting.get(token) is not waiting:
                return
            del self._waiting[token]
            if not self.closed:  # deregister (RFC 7641 §3.6); the answer matters to nobody
                ending = Message(CON, code, 0, token, list(options), payload)
                ending.add(OBSERVE, 1)
                if self.guard is not None:
                    sealed = self.guard.protect(peer, ending)
                    ending = ending if sealed is None else sealed[0]
                self._spawn(self._quietly(peer, ending))

        try:
            first = await self._blocks2(peer, plain, first)
            if protected is not None:
                first = opened(first)
        except BaseException:
            cancel()
            raise
        if first.number(OBSERVE) is None or not success(first.code) or waiting is None:
            if waiting is not None and self._waiting.get(token) is waiting:
                del self._waiting[token]
            return first, _nothing
        if waiting.sequence < 0:
            waiting.sequence = first.number(OBSERVE) or 0
            waiting.since = asyncio.get_running_loop().time()
            waiting.max_age = first.number(MAX_AGE) or DEFAULT_MAX_AGE
        keeping = asyncio.ensure_future(self._keep(peer, token, registration, waiting, lost))
        self._tasks.add(keeping)
        keeping.add_done_callback(self._tasks.discard)

        def end() -> None:
            keeping.cancel()
            cancel()

        return first, end

    async def _keep(
        self,
        peer: Address,
        token: bytes,
        registration: Callable[[], Message],
        waiting: _Waiting,
        lost: Callable[[str], None],
    ) -> None:
        """Register the observation again (``registration()``) whenever its last
        notification is stale."""
        loop = asyncio.get_running_loop()
        while self._waiting.get(token) is waiting:
            stale = waiting.since + waiting.max_age - loop.time()
            if stale > 0:
                await asyncio.sleep(stale)
                continue
            reply = await self._acknowledgement(peer, registration())  # its answer comes as a notification
            if reply is None or reply.mtype == RST:
                if self._waiting.get(token) is waiting:
                    del self._waiting[token]
                    span = self.timers.max_transmit_span
                    lost(f"the peer did not answer a renewed registration within {span:g} s")
                return
            waiting.since = loop.time()

    async def _acknowledgement(self, peer: Address, message: Message) -> Message | None:
        """Send a confirmable and return its ACK or RST (None: neither came)."""
        future: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()

        def done(reply: Message | None) -> None:
            if not future.done():
                future.set_result(reply)

        self._confirmable(peer, message, done)
        return await future

    async def _rest_of_notification(
        self,
        peer: Address,
        request: Message,
        first: Message,
        notify: Callable[[Message], None],
        then: Callable[[], None],
    ) -> None:
        try:
            whole = await self._blocks2(peer, request, first)
        except (Unreachable, MessageError) as exc:
            log.info("coap: the rest of a notification could not be fetched: %s", exc)
        else:
            notify(whole)
        finally:
            then()

    async def _quietly(self, peer: Address, message: Message) -> None:
        with contextlib.suppress(Unreachable, LimitReached):
            await self._exchange(peer, message)

    # -- the server side -----------------------------------------------------------------

    def _remember(self, peer: Address, key: tuple[Address, int]) -> _Served:
        """Remember a request's message id for EXCHANGE_LIFETIME, within its host's share."""
        seen = self._seen
        now = time.monotonic()
        seen.expire(now - self.timers.exchange_lifetime)
        served = _Served()
        seen.put(peer[0], key, served, now)
        return served

    def _request(self, message: Message, peer: Address) -> None:
        key = (peer, message.mid)
        served = self._seen.get(key)
        if served is not None:  # a repeat: the request takes effect once
            if served.reply is not None:
                self._send(peer, served.reply)
            elif message.mtype == CON:
                self._acknowledge_empty(message, peer, served)
            return
        served = self._remember(peer, key)
        if self.site is None:
            self._answer(
                message, peer, served, Message(code=NOT_FOUND, payload=b"a client: nothing is served")
            )
            return
        try:
            early, echo = self._check(message, peer)
        except MessageError as exc:
            early, echo = Message(code=BAD_REQUEST, payload=str(exc).encode()), None
        if early is not None:
            self._answer(message, peer, served, early)
            return
        inner, seal = message, None
        if self.guard is not None:
            refusal, inner, seal = self.guard.admit(message, peer)
            if refusal is not None:
                self._answer(message, peer, served, refusal if seal is None else seal(refusal, False))
                return
        observe = inner.number(OBSERVE) if inner.code in (GET, FETCH) else None
        observed: _Observed | None = None
        if observe == 0:
            observed, refusal = self._register(inner, peer)
            if refusal is not None:
                self._answer(message, peer, served, refusal if seal is None else seal(refusal, False))
                return
            if observed is not None:
                observed.seal = seal
        elif observe == 1:
            ended = self._observed.pop((peer, message.token), None)
            if ended is not None:
                ended.cancel()
        self._render(
            inner,
            peer,
            lambda answer: self._answered(message, peer, served, answer, echo, observed, seal),
            observed,
        )
        if served.reply is None and message.mtype == CON:  # the answer takes a while (a take waiting)
            asyncio.get_running_loop().call_later(
                EMPTY_ACK_DELAY, self._acknowledge_empty, message, peer, served
            )

    def _acknowledge_empty(self, message: Message, peer: Address, served: _Served) -> None:
        """Acknowledge a request whose answer is not ready: the client stops
        retransmitting it, it is no longer outstanding (NSTART), and the answer comes
        apart."""
        if served.reply is not None:
            return
        if not served.separate:
            served.separate = True
            self._separate += 1
        self._send(peer, Message(ACK, 0, message.mid).encode())

    def _answered(
        self,
        message: Message,
        peer: Address,
        served: _Served,
        answer: Message,
        echo: int | None,
        observed: _Observed | None,
        seal: Seal | None,
    ) -> None:
        if observed is not None:
            if success(answer.code):
                answer.add(OBSERVE, self._sequence())
                self._fresh_for(answer)
            else:
                self._deregister(observed)
        if seal is not None:
            answer = seal(answer, False)
        if echo is not None:
            answer.add(BLOCK1, echo)
        self._answer(message, peer, served, answer)

    def _render(
        self,
        request: Message,
        peer: Address,
        then: Callable[[Message], None],
        observed: _Observed | None = None,
    ) -> None:
        assert self.site is not None
        own = None if observed is None else observed.render  # a Feed's observation renders itself
        try:
            result = self.site.render(request, peer) if own is None else own(request)
        except Exception:
            log.exception("coap: rendering %r failed", request)
            result = Message(code=INTERNAL_SERVER_ERROR, payload=b"internal error")
        if isinstance(result, Message):
            then(result)
        else:
            self._spawn(self._rendered(result, then))

    @staticmethod
    async def _rendered(result: Awaitable[Message], then: Callable[[Message], None]) -> None:
        try:
            answer = await result
        except Exception:
            log.exception("coap: rendering failed")
            answer = Message(code=INTERNAL_SERVER_ERROR, payload=b"internal error")
        then(answer)

    def _answer(self, request: Message, peer: Address, served: _Served, answer: Message) -> None:
        answer.token = request.token
        self._cut(request, peer, answer)
        if request.mtype == NON:
            answer.mtype, answer.mid = NON, self._next_mid()
            served.reply = answer.encode()
            self._send(peer, served.reply)
        elif served.separate:
            served.reply = Message(ACK, 0, request.mid).encode()
            self._confirmable(peer, answer, _nothing_done)
        else:
            answer.mtype, answer.mid = ACK, request.mid
            served.reply = answer.encode()
            self._send(peer, served.reply)

    def _cut(self, request: Message, peer: Address, answer: Message) -> None:
        """Cut a large answer into Block2 blocks (RFC 7959): the block asked for, or the
        first; an answer to other than a GET is kept for its next blocks."""
        asked = request.number(BLOCK2)
        if asked is not None and asked & 7 == 7:  # refused (4.00): the refusal comes whole
            asked = None
        payload = answer.payload
        szx, num = self.block_szx, 0
        if asked is not None:
            num, _, asked_szx = decode_block(asked)
            szx = min(szx, asked_szx)
        size = 16 << szx
        if len(payload) <= size and (asked is None or not success(answer.code)):
            return  # an error that fits answers a block asked for whole: not "no such block"
        start = num * size
        if start and start >= len(payload):
            answer.code, answer.options, answer.payload = BAD_OPTION, [], b"no such block"
            return
        more = start + size < len(payload)
        if request.code != GET and num == 0 and more:
            kept = [o for o in answer.options if o[0] not in BLOCK_OPTIONS]
            whole = Message(code=answer.code, options=kept, payload=payload)
            now = asyncio.get_running_loop().time()
            self._bodies.expire(now - self.timers.max_transmit_wait)
            self._bodies.put(peer[0], (peer, request.token), (whole, _identity(request)), now)
        answer.payload = payload[start : start + size]
        answer.add(BLOCK2, block_value(num, more, szx))
        answer.add(ETAG, etag(payload))
        if num == 0:
            answer.add(SIZE2, len(payload))

    def _check(self, message: Message, peer: Address) -> tuple[Message | None, int | None]:
        """An answer due before the site sees the request (a bad option, a block to
        assemble, a payload too large), and the Block1 option to echo in the answer
        once the payload is whole."""
        size1 = asked = block1 = None
        critical, last = self._critical, 0
        for number, value in message.options:
            if number & 1:
                longest = critical.get(number)
                if longest is None:
                    why = "is not understood"
                elif len(value) > longest:
                    why = f"is {len(value)} bytes long, at most {longest}"
                elif number == last and number not in _REPEATABLE:
                    why = "is given more than once"
                else:
                    why = ""
                if why:
                    return Message(code=BAD_OPTION, payload=f"option {number} {why}".encode()), None
            last = number
            if number > BLOCK2:
                if number == BLOCK1:
                    block1 = int.from_bytes(value, "big")
                elif number == SIZE1:
                    size1 = int.from_bytes(value, "big")
            elif number == BLOCK2:
                asked = int.from_bytes(value, "big")
        assert self.site is not None
        maximum = self.max_request_bytes
        if size1 is not None and size1 > maximum:
            return self.site.too_large(maximum), None
        # A block asked for of size exponent 7 (reserved) is 4.00, with its answer whole.
        if asked is not None and decode_block(asked)[0] > 0 and message.code != GET:
            return self._kept(message, peer, asked), None
        if block1 is None:
            if len(message.payload) > maximum:
                return self.site.too_large(maximum), None
            return None, None
        num, more, szx = decode_block(block1)
        size = 16 << szx
        key = (peer, *_identity(message))
        assemblies = self._assemblies
        now = asyncio.get_running_loop().time()
        assemblies.expire(now - self.timers.max_transmit_wait)
        if num == 0:
            buffer = bytearray()
        else:
            buffer = assemblies.get(key) or bytearray()
            if len(buffer) != num * size:
                assemblies.pop(key)
                return Message(code=REQUEST_ENTITY_INCOMPLETE, payload=b"a block is missing"), None
        if more and len(message.payload) != size:
            assemblies.pop(key)
            return Message(code=BAD_REQUEST, payload=b"a block before the last is short"), None
        buffer += message.payload
        if len(buffer) > maximum:
            assemblies.pop(key)
            return self.site.too_large(maximum), None
        if more:
            assemblies.put(peer[0], key, buffer, now)
            return Message(code=CONTINUE).add(BLOCK1, block1), None
        assemblies.pop(key)
        message.payload = bytes(buffer)
        return None, block1

    def _kept(self, message: Message, peer: Address, asked: int) -> Message:
        """The answer kept for a later block of it that ``message`` asks for (RFC 7959
        §2.4, §3.3): the one kept under its token, else the newest kept for the same
        request from that peer (its method and options but the block ones; a client
        may ask each block under a token of its own).  The operation is not made
        again: when no answer is kept, 4.08.  Once its last block is asked for the
        answer is dropped, and MAX_TRANSMIT_WAIT after its first block at the latest."""
        bodies = self._bodies
        bodies.expire(asyncio.get_running_loop().time() - self.timers.max_transmit_wait)
        key = (peer, message.token)
        if key not in bodies:
            identity = _identity(message)
            key = next((k for k, (_, i) in bodies.held(peer[0]) if k[0] == peer and i == identity), key)
        found = bodies.get(key)
        if found is None:
            return Message(code=REQUEST_ENTITY_INCOMPLETE, payload=b"that answer is gone")
        kept = found[0]
        num, _, szx = decode_block(asked)
        if (num + 1) * (16 << min(szx, self.block_szx)) >= len(kept.payload):  # the last block
            bodies.pop(key)
            self._fetched(*key)
        return Message(code=kept.code, options=list(kept.options), payload=kept.payload)

    def _fresh_for(self, answer: Message) -> None:
        """Say how long an observed state is fresh, when not the default: the time
        after which an observer that heard nothing registers again."""
        if self.max_age != DEFAULT_MAX_AGE:
            answer.add(MAX_AGE, self.max_age)

    def _sequence(self) -> int:
        """The Observe value of a notification: increasing with each (24 bits)."""
        self._observe_sequence = (self._observe_sequence + 1) & 0xFFFFFF
        return self._observe_sequence

    def _register(self, message: Message, peer: Address) -> tuple[_Observed | None, Message | None]:
        assert self.site is not None
        key = (peer, message.token)
        existing = self._observed.get(key)
        if existing is not None:
            if _identity(existing.request) == _identity(message):  # registered again (RFC 7641 §4.1)
                existing.request = message
                return existing, None
            self._deregister(existing)  # its token now names another resource: that one is not observed
        observed = _Observed(peer, message)
        accepted = self.site.observe(message, lambda: self._notify(observed), peer)
        if accepted is None:
            return None, None
        if isinstance(accepted, Message):
            return None, accepted
        if callable(accepted):
            observed.cancel = accepted
        else:
            observed.cancel, observed.render = accepted.cancel, accepted.render
        self._observed[key] = observed
        return observed, None

    def _deregister(self, observed: _Observed) -> None:
        key = (observed.peer, observed.request.token)
        if self._observed.get(key) is observed:
            del self._observed[key]
        if observed.rest is not None:
            observed.rest.cancel()
        observed.cancel()

    def _notify(self, observed: _Observed) -> None:
        """Send the observer the current state, or (one being under way) once it is
        acknowledged: at most one notification in flight per observation."""
        if self._observed.get((observed.peer, observed.request.token)) is not observed:
            return
        if observed.inflight:
            observed.dirty = True
            return
        observed.inflight, observed.dirty = True, False
        request = observed.request
        self._render(
            request, observed.peer, lambda answer: self._send_notification(observed, answer), observed
        )

    def _send_notification(self, observed: _Observed, answer: Message) -> None:
        if self.closed:
            return
        request = observed.request
        answer.token = request.token
        last = not success(answer.code)
        if last:
            self._deregister(observed)
        else:
            answer.add(OBSERVE, self._sequence())
            self._fresh_for(answer)
        if observed.seal is not None:
            answer = observed.seal(answer, True)
        # A protected notification's blocks are asked for by a FETCH (its outer code): kept.
        code = request.code if observed.seal is None else FETCH
        first_block = Message(CON, code, 0, request.token, [o for o in request.options if o[0] != BLOCK2])
        self._cut(first_block, observed.peer, answer)

        block2 = answer.number(BLOCK2)
        blocks = code != GET and block2 is not None and decode_block(block2)[1]  # kept for its blocks

        def done(reply: Message | None) -> None:
            observed.inflight = False
            if reply is None or reply.mtype == RST:  # the observer is gone or not interested
                self._deregister(observed)
                return
            if blocks:  # the next notification would replace the blocks being fetched
                observed.inflight = True
                wait = self.timers.max_transmit_wait
                observed.rest = asyncio.get_running_loop().call_later(
                    wait, self._fetched, observed.peer, request.token
                )
            elif observed.dirty:
                self._notify(observed)

        self._confirmable(observed.peer, answer, done)

    def _fetched(self, peer: Address, token: bytes) -> None:
        """The last block of a notification was asked for (or the time to ask is over):
        the next notification may go."""
        observed = self._observed.get((peer, token))
        if observed is None or observed.rest is None:
            return
        observed.rest.cancel()
        observed.rest = None
        observed.inflight = False
        if observed.dirty:
            self._notify(observed)

    def statistics(self) -> dict[str, int]:
        """Tables held: remembered message ids, confirmables under way and their
        retransmissions scheduled, requests waiting, observations served, assemblies
        and Block2 answers kept; and how many requests were acknowledged before their
        answer, which came apart; confirmables waiting for their turn (NSTART) and
        peers that stopped answering."""
        return {
            "separate": self._separate,
            "exchanges": len(self._seen),
            "transmissions": len(self._transmissions),
            "scheduled": len(self._schedule),
            "waiting": len(self._waiting),
            "observed": len(self._observed),
            "assemblies": len(self._assemblies),
            "bodies": len(self._bodies),
            "queued": self._congestion.queued(),
            "silent": len(self._congestion.silent),
        }

    def close(self) -> None:
        """Stop: cancel retransmissions and tasks, fail what waits, close the transport."""
        if self.closed:
            return
        self.closed = True
        for transmission in self._transmissions.values():
            if transmission.handle is not None:
                transmission.handle.cancel()
        self._transmissions.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._schedule.clear()
        self._congestion.clear()
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_exception(Unreachable("the endpoint is closed"))
        self._waiting.clear()
        for observed in list(self._observed.values()):
            observed.cancel()
        self._observed.clear()
        for task in self._tasks:
            task.cancel()
        if self._transport is not None:
            self._transport.close()
        self.errors = None
        while self._sockets:
            self._sockets.pop()[0].close()

    def __repr__(self) -> str:
        return f"Endpoint({'server' if self.site else 'client'})"


def _nothing_done(reply: Message | None) -> None:
    pass


def _identity(request: Message) -> tuple[Any, ...]:
    """What the blocks of one block-wise request have in common: its method and its
    options but the block ones (RFC 7959 §2.4)."""
    return (request.code, *(o for o in request.options if o[0] not in BLOCK_OPTIONS))


def _later_block(message: Message) -> bool:
    """Whether ``message`` is a block of an answer other than its first."""
    block2 = message.number(BLOCK2)
    return block2 is not None and decode_block(block2)[0] > 0


async def _bounded(work: Awaitable[Message], timeout: float | None) -> Message:
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise Unreachable(f"no answer within {timeout} s") from None
