"""A space whose state lives in Redis: :class:`AsyncRedisSpace` and its sync twin.

Written once, for coroutines, in the module whose name ends in ``_async``;
``scripts/unasync.py`` makes its sync twin (``_sync``) from it: edit the first, then run
the script.

Every change of the space is one Lua script, run atomically by Redis.  A take (or a
take_all) whose template Redis matches alone waits in Redis: the script that finds
nothing registers it, a write's script hands it the tuple (a take_all: every tuple of
that write it matches), and it pops that with ``BLPOP`` (them with ``BLMPOP``).  Any other
call that must wait files a waiter in this process and listens on the space's
sharded pub/sub channel (one subscription per space and process, made by the first
waiter): a write publishes its tuple there, and the listener hands it to the readers
waiting for it and offers it to the first taker waiting for it, in arrival order;
the taker then takes it by its id, and waits again if another process was faster.
Subscriptions read the space's event log, a Redis stream, woken by the listener.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import functools
import itertools
import logging
import math
import os
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from operator import itemgetter
from typing import Any, Generic, NamedTuple, Self, TypeVar
from urllib.parse import quote

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.retry import Retry

from .._capabilities import OPERATIONS, READ_ONLY
from .._capabilities import operations as granted
from .._clock import SimulatedClock
from .._codec import encode
from .._credit import MAX_ACCOUNTS, check_principal, short_of, to_credit
from .._errors import (
    CapabilityRevoked,
    ContainmentCycle,
    EventsLost,
    Forbidden,
    InvalidValue,
    LimitReached,
    NotAllowed,
    NotSupported,
    RecordExists,
    RecordInUse,
    RecordNotFound,
    SpaceClosed,
    SpaceFull,
    StoreError,
    Timeout,
    TransactionAborted,
    TransactionError,
    TupleSpaceError,
    UnknownLease,
    Unreachable,
    UnsupportedType,
    ValueTooLarge,
)
from .._events import CHANGE_KINDS, EVENT_KINDS, Change, Event, check_existing
from .._methods import Method, method_in, method_result, run_paid, step_budget
from .._mint import (
    CHALLENGE_SECONDS,
    MAX_STAMPS,
    Challenge,
    check_stamp,
    spent_stamp,
    stale_challenge,
    stamps_exhausted,
)
from .._names import check_path, check_tag, path_prefix
from .._recordhandles import RecordData, check_revocable
from .._recordstore import COMPUTED_TAGS, DEFAULT_PRINCIPAL, ROOT_RID, check_field, check_fields
from .._registry import Registry
from .._templates import ANY, RecordTemplate, Template, compile_template
from .._upcall import AsyncUpcall
from .._values import DEFAULT_LIMITS, URI, Credit, Map, Tuple, Value, handle_address
from ..client._common import (
    AsyncLease,
    check_kinds,
    check_lease,
    check_limit,
    check_max_pending,
    check_since,
    check_timeout,
)
from ..client._primitives import AsyncBackground, AsyncLater, AsyncLock, AsyncOpenable, opened_later
from ._redis import (
    BATCH,
    FUNCTIONS,
    LIBRARY,
    MOST_NANOS,
    READ_AHEAD_BYTES,
    AsyncCaller,
    AsyncClient,
    AsyncGuard,
    AsyncWake,
    Clock,
    ClockFollower,
    Options,
    Waiter,
    Writer,
    candidates,
    connection_error,
    decode_change,
    decode_record,
    decode_tuple,
    encode_record,
    encode_tuple,
    from_nanos,
    lease_ms,
    nanos,
    pack,
    pairs,
    parse_url,
    prefix,
    record_candidates,
    route_of_template,
    route_of_tuple,
    unknown_function,
)
from ._redis_rules_async import AsyncRedisRules, created_records

log = logging.getLogger("tuplespace")

__all__ = [
    "AsyncPartitionedRedisSpace",
    "AsyncRedisCore",
    "AsyncRedisRecord",
    "AsyncRedisRecordWatch",
    "AsyncRedisSpace",
    "AsyncRedisSubscription",
    "AsyncRedisTransaction",
]

Successor = Iterable[Value] | Callable[[Tuple], Iterable[Value]]

_FAILURES = (RedisError, RedisClusterException)
"""What the clients of Redis raise when a call fails (RedisClusterException: no node
of a Cluster answers, or none serves the space's slot)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to make a connection to Redis, and to wait for an answer to a call."""
_START = {"fifo": "-inf", "lifo": "+inf", "random": "-inf"}
REPLICA_WAIT = 1.0
"""Seconds a call of a space with ``durability=replicated`` waits for a replica to
acknowledge its change (``WAIT 1``) before it raises :class:`~tuplespace.StoreError`."""
HANDOVER_WAIT = 5.0
"""Seconds a take registered in Redis waits in one ``BLPOP`` (a take_all in one
``BLMPOP``) for a tuple handed over (well below CONNECT_TIMEOUT, the longest wait for an
answer); its registration lasts three times as long, after which a script gives back
what was handed to it, should its process have gone away."""
_HOLD_MS = repr(HANDOVER_WAIT * 3000.0)  # its registration's span, in ms, as a script reads it
LISTEN_SLICE = 1.0
"""Seconds the listener of a space's channel waits for a message at a time before it
looks whether the space was closed: closing ends its wait at once, but a read it cut
off may have connected again (redis-py retries), and then only this ends it."""
MOST_HANDED = 2**31 - 1
"""How many entries a take_all without a limit pops from its inbox at once: all that
the script that served it handed it."""
_FULL = -1
"""The reply of the commit script whose transaction's writes do not fit in the space's
capacity (it aborted the transaction)."""
RESERVATION_LEASE = 30_000
"""Milliseconds room reserved for a write in a partitioned space with a capacity is
held for it: a reservation still there after that (its writer may have died) is
cancelled in its partitions by the next writer that finds the space full."""


_SUMMED = (
    "tuples",
    "leased_tuples",
    "takes",
    "reads",
    "expired",
    "cancelled",
    "logged_events",
    "logged_bytes",
    "waiters",
    "waiting_writers",
)
"""The statistics of a partitioned space that sum those of its partitions."""

_EVERY_ARITY = [f"a:{n}" for n in range(DEFAULT_LIMITS.max_fields + 1)]
"""The index keys of the tuples of each arity: together, every tuple."""


def _committing(script: str, args: list[Any]) -> str:
    """The script that runs ``script`` on a transaction with ``args``: a commit that
    writes nothing is ``settle``, which a full Redis runs too."""
    return "settle" if script == "commit" and not args else script


def _ms_int(seconds: float) -> str:
    return str(max(1, round(seconds * 1000.0)))


def _seconds(ms: bytes) -> float | None:
    return float(ms) / 1000.0 if ms else None


ROOT_URI = "tuplespace://local/"
"""The base URI of the addresses of records kept in Redis (the node's, for an embedded space)."""
_ROOT_OPERATIONS = frozenset({"read", "watch"})
_FULL_OPERATIONS = OPERATIONS | {"move", "capability"}


def _records_prefix(options: Options) -> str:
    """The start of the addresses of the records of a space."""
    return f"{ROOT_URI}spaces/{quote(options.space, safe='')}/"


async def _create(
    core: AsyncRedisCore,
    path: str,
    fields: dict[str, Value],
    credit: Credit | int | str | None,
    lease: float | None,
    principal: str,
) -> AsyncRedisRecord:
    """Create the record ``path`` with the checked ``fields``, paid by ``principal``
    when the space charges; its handle."""
    check_principal(principal)
    held = "" if credit is None else str(nanos(credit, "credit"))
    ms = lease_ms(check_lease(lease))
    while True:
        links = []
        for tag, v in fields.items():
            fields[tag], link = await core.linked(tag, v)
            if link:
                links.append(link)
        reply = await core.call(
            "rcreate", [path, ms, encode_record(fields), "\n".join(links), held, principal]
        )
        if reply[0] == b"exists":
            raise RecordExists(f"a record is at {path!r} already")
        if reply[0] == b"unfunded":
            raise InvalidValue(
                "this space charges for storage: a record needs credit= or a lease= to pay for it", "credit"
            )
        _paid(principal, reply)
        if reply[0] != b"retry":  # else a record it holds moved or ended meanwhile
            await _react(core, len(reply) > 1)
            return AsyncRedisRecord(core, int(reply[0]), URI(_records_prefix(core.options) + path))


async def _react(core: AsyncRedisCore, rules: bool) -> None:
    """Run the reactions after a change of records: every one not run yet if Redis
    said the space has ``rules``, else those of the rules this process knows of."""
    if rules:
        await core.fire()
    else:
        await core.react()


async def _checked(core: AsyncRedisCore, rid: int, reply: Any) -> Any:
    """The reply of a script run on a handle's record: RecordNotFound if the record is
    gone, CapabilityRevoked if the handle's capability has ended."""
    if reply and reply[0] == b"gone":  # and its capability with it
        raise RecordNotFound(f"record {rid} is gone (destroyed or expired)")
    if reply and reply[0] in (b"revoked", b"expired"):
        if not await core.call("rget", ["rid", rid]):
            raise RecordNotFound(f"record {rid} is gone (destroyed or expired)")
        expired = reply[0] == b"expired"
        raise CapabilityRevoked(
            "the capability's lease ran out" if expired else "the capability was revoked", expired=expired
        )
    if not reply:
        raise RecordNotFound(f"record {rid} is gone (destroyed or expired)")
    return reply


MAX_CHALLENGE = 64
"""The longest challenge a space kept in Redis looks up (it gives out 32 characters)."""


def _paid(principal: str, reply: Any) -> None:
    """InsufficientCredit if a script answered that ``principal`` holds less than a cost
    (``'short'``, its balance and the cost)."""
    if reply[0] == b"short":
        raise short_of(principal, from_nanos(reply[1]), from_nanos(reply[2]))


def _balance(reply: Any) -> Credit:
    """The balance a script ``grant`` or ``transfer`` answered (or why it refused)."""
    if reply[0] == b"full":
        raise LimitReached(
            f"a space keeps at most {MAX_ACCOUNTS} accounts", limit="max_accounts", maximum=MAX_ACCOUNTS
        )
    if reply[0] == b"large":
        raise ValueTooLarge(
            f"a space kept in Redis holds at most {from_nanos(MOST_NANOS)} credit in one account",
            limit="credit",
            maximum=MOST_NANOS,
        )
    return from_nanos(reply[0])


async def _heads(parts: list[_Part]) -> list[Any]:
    """The replies of the script ``events`` in each of ``parts``, with no event."""
    return [await core.call("events", [0, 0]) for _, core in parts]


async def _latest(parts: list[_Part], n: int) -> tuple[int, list[Any]]:
    """The seq after which every later event of ``parts`` of a space of ``n`` partitions
    comes, and the replies of the script ``events`` that made it so.  The seq ``k`` of
    partition ``p`` is ``k * n + p`` in the space; over several partitions, a second
    call makes each partition's latest seq at least the latest ``k`` of the first call,
    so that every later event of any of them comes after ``k * n + n - 1``."""
    replies = await _heads(parts)
    most = max(int(reply[0]) for reply in replies)
    if len(parts) > 1:
        replies = await _heads(parts)  # each call is given the clock, at least `most`
    return most * n + n - 1, replies


async def _latest_seq(parts: list[_Part]) -> int:
    """The seq after which every later event of the partitioned space of ``parts`` comes."""
    return (await _latest(parts, len(parts)))[0]


async def _read_logs(
    parts: list[_Part], after: dict[int, int], most: int, skip: Collection[int] = (), cap: str = ""
) -> tuple[list[tuple[int, str, bytes, int]], int, EventsLost | None, float | None]:
    """Read the next events of the log of each partition of ``parts`` after its seq
    there in ``after`` (moved on), at most ``most`` of each and :data:`READ_AHEAD_BYTES`
    of their encodings in all, but those of the partitions in ``skip``: the events
    read, each its seq in the space, kind, encoding and time (in no order); the seq up
    to which every event of those partitions is read; an EventsLost if a partition's log
    no longer reaches back to ``after``; the seconds until the next lease of the space
    (or of the capability whose token is ``cap``) ends (None: no lease).
    :class:`~tuplespace.CapabilityRevoked` if that capability has ended.

    An event of partition ``p`` of seq ``k`` there is ``k * n + p``.  Over several
    partitions, the script ``events`` makes a partition's latest seq at least the clock
    of this process, which every seq read moves on: the events up to the seq returned
    are all read."""
    n = parts[0][1].options.partitions
    room = READ_AHEAD_BYTES // len(parts)
    lost = None
    known = []  # up to which seq of its own each partition's events are all read
    expiry: float | None = None
    items: list[tuple[int, str, bytes, int]] = []
    for p, core in parts:
        if p in skip:
            known.append(after[p])
            continue
        reply = await core.call("events", [after[p], most, room, cap] if cap else [after[p], most, room])
        if reply[0] == b"ended":
            why = reply[1].decode()
            raise CapabilityRevoked(f"the capability has ended ({why})", expired=why == "expired")
        entries = reply[6:]
        if lost is None and after[p] < int(reply[4]):
            lost = EventsLost((after[p] + 1) * n + p, int(reply[1]) * n + p)
        for i in range(0, len(entries), 4):
            k = after[p] = int(entries[i])
            items.append((k * n + p, entries[i + 1].decode(), entries[i + 2], int(entries[i + 3])))
        all_read = len(entries) < 4 * most and not int(reply[5])
        known.append(int(reply[0]) if all_read else after[p])
        ms = float(reply[2])
        if ms >= 0:
            expiry = ms / 1000.0 if expiry is None else min(expiry, ms / 1000.0)
    return items, min(known) * n + n - 1, lost, expiry


async def _events_after(
    parts: list[_Part], fired: int, most: int
) -> tuple[list[tuple[int, str, bytes]], bool]:
    """The events of the partitioned space of ``parts`` after its seq ``fired``, in
    their order, each its seq, kind and encoding (at most ``most`` of each partition:
    the first of them, all those up to the last); and whether events after ``fired``
    left a partition's log before they were read."""
    n = len(parts)
    while True:
        after = {p: max(0, (fired - p) // n) for p, _ in parts}
        items, upto, lost, _ = await _read_logs(parts, after, most)
        items.sort(key=_first)
        ready = [(seq, kind, data) for seq, kind, data, _ in items if fired < seq <= upto]
        if ready or not any(seq > fired for seq, _, _, _ in items):
            return ready, lost is not None


async def _log_start(
    core: AsyncRedisCore, parts: list[_Part], since: int | None
) -> tuple[int, dict[int, int], list[Any]]:
    """Where a reader of ``parts`` of the space of ``core`` begins: after ``since``
    (None: the latest event), :class:`~tuplespace.EventsLost` if a partition's log no
    longer reaches back there; the seq of each partition read up to, and the replies of
    the script ``events``.  In a partitioned space, ``since`` is checked against the
    latest event of every partition, then each partition read is called again, given
    the clock that this made at least ``since``: its later events come after it."""
    n = core.options.partitions
    if since is None:
        since, replies = await _latest(parts, n)
    else:
        every = [(i, space.core) for i, space in enumerate(core.serving(None))] if n > 1 else parts
        replies = await _heads(every)
        last = max(int(reply[0]) * n + n - 1 for reply in replies)
        if since > last:
            raise InvalidValue(f"since={since} is ahead of the latest event, {last}", "since")
        if n > 1:
            replies = await _heads(parts)
    k, q = divmod(since, n)
    after = {p: k if p <= q else max(k - 1, 0) for p, _ in parts}
    for (p, _), reply in zip(parts, replies, strict=True):
        if after[p] < int(reply[4]):
            raise EventsLost((after[p] + 1) * n + p, int(reply[1]) * n + p)
    return since, after, replies


def _matches(
    reply: list[Any], template: RecordTemplate, below: str | None
) -> tuple[list[tuple[int, int, str, dict[str, Value]]], int | None]:
    """The records matching ``template`` below the path prefix ``below`` among those of
    a group of the script ``rscan`` (rid, version, path, fields), and the rid to go on
    after (None: no more)."""
    found = []
    for rid, kept in pairs(reply[1:]):
        version, path, fields = decode_record(kept)
        if (below is None or path.startswith(below)) and template.matches(fields):
            found.append((rid, version, path, fields))
    return found, int(reply[0]) if reply[0] else None


def _pop_command(key: str, seconds: float, most: int | None) -> tuple[Any, ...]:
    """The command that pops up to ``most`` entries (None: all) of the list ``key``,
    waiting up to ``seconds`` for one: a registered take's inbox, which holds what one
    script handed it (a take's: one entry, popped by ``BLPOP``)."""
    if most == 1:
        return ("BLPOP", key, repr(seconds))
    return ("BLMPOP", repr(seconds), 1, key, "LEFT", "COUNT", MOST_HANDED if most is None else most)


def _popped(got: Any) -> list[bytes] | None:
    """The entries the command of :func:`_pop_command` popped (None: none, in time)."""
    if got is None:
        return None
    entries = got[1]
    return [bytes(entry) for entry in entries] if isinstance(entries, list) else [bytes(entries)]


def _handed_tuple(entry: bytes) -> tuple[int, Tuple]:
    """A tuple handed to a take waiting in Redis, with its id, from its entry in the
    take's inbox ("<id> <expiry>", a newline, its encoding, a newline, its index keys)."""
    head, data, _ = entry.split(b"\n", 2)
    return int(head.partition(b" ")[0]), decode_tuple(data)


def _held(reply: Any) -> Any:
    """The reply of a find or take script, TransactionAborted if it says the transaction
    it holds tuples for is not open (it was aborted: its lease ran out)."""
    if len(reply) == 1:
        raise TransactionAborted("the transaction was aborted: its lease ran out")
    return reply


class AsyncRedisCore:
    """What a Redis space gives the handles it makes (transactions, subscriptions) and,
    in a partitioned space, what each partition gives the space across them: the
    space's options, the guard of its state in this process, and its operations, each
    bound to the space once (``space.core``).  A handle holds it, never the space's own
    attributes; its operations are the space's:

    ``call(script, args)`` runs a script on the space's keys; ``select``, ``block`` and
    ``group`` find (and take) tuples for a transaction id (``""``: none), at once, with
    a wait, or a group of them; ``write`` writes encoded tuples; ``begin``,
    ``end_transaction`` and ``end_waits`` follow a transaction of this process, and
    ``time_lease`` ends its lease on time once it has begun or been renewed;
    ``listen`` makes the process listen on the space's channel and ``wait`` waits on a
    wake while asking Redis (``ping``) whether it answers, until a deadline in the time
    ``now()`` tells (the simulated clock's the space follows, or this process's
    monotonic clock's); ``react`` runs the reactions
    to the space's events not run yet, if the process knows of rules, ``fire`` runs them
    whether it knows of them or not, and ``rules()`` gives the space's rules; ``recount``
    reads the count of every partition of a partitioned space with a capacity; ``add_subscription`` and
    ``remove_subscription`` keep its subscriptions, ``add_waiter``, ``refile`` and
    ``remove_waiter`` its waiting calls, ``take_offer(waiter)`` takes what was offered to
    a waiting take (None: nothing, or gone), ``add_writer`` and ``remove_writer`` its writes
    waiting for room; ``serving(template)`` lists the spaces (its
    partitions, or itself) that serve a template; ``subscriptions()`` lists the
    subscriptions and watches it wakes; ``txn(script, tx_id, items)`` runs a script
    on a transaction (``commit``, ``abort``, ``renew_txn``, ``release``) with the
    arguments of each item, an item's tuple naming its partition (None: every
    partition); ``closed()`` whether the space was closed; ``clock()`` the simulated clock
    it follows (None: it keeps Redis's time), on which its process counts the leases of
    its subscriptions and transactions.  ``linked(tag, value)``
    reads what a field holding ``value`` links to.
    """

    __slots__ = (
        "add_subscription",
        "add_waiter",
        "add_writer",
        "begin",
        "block",
        "call",
        "clock",
        "closed",
        "end_transaction",
        "end_waits",
        "fire",
        "group",
        "guard",
        "listen",
        "now",
        "options",
        "ping",
        "react",
        "recount",
        "refile",
        "remove_subscription",
        "remove_waiter",
        "remove_writer",
        "rules",
        "select",
        "serving",
        "subscriptions",
        "take_offer",
        "time_lease",
        "txn",
        "wait",
        "write",
    )

    def __init__(
        self,
        *,
        options: Options,
        guard: contextlib.AbstractContextManager[Any],
        call: Callable[[str, list[Any]], Any],
        select: Callable[[Template, bool, int | None, str], Any],
        block: Callable[[Template, bool, float | None, str, bool], Any],
        group: Callable[[Template, bool, int | None, float | None, str], Any],
        write: Callable[
            [list[str | bytes], float | None, float | None, tuple[str, int], str, list[Any] | None], Any
        ],
        begin: Callable[[AsyncRedisTransaction, float, list[str]], Any],
        end_transaction: Callable[[AsyncRedisTransaction], None],
        end_waits: Callable[[str, TupleSpaceError], None],
        listen: Callable[[], Any],
        wait: Callable[[AsyncWake, float | None], Any],
        now: Callable[[], float],
        ping: Callable[[], Any],
        react: Callable[[], Any],
        recount: Callable[[], Any],
        fire: Callable[[], Any],
        rules: Callable[[], AsyncRedisRules],
        add_subscription: Callable[[AsyncLogReader[Any], AsyncWake], None],
        remove_subscription: Callable[[AsyncLogReader[Any]], None],
        add_waiter: Callable[[Template, bool, AsyncWake, str], Waiter[AsyncWake]],
        refile: Callable[[Waiter[AsyncWake]], None],
        remove_waiter: Callable[[Waiter[AsyncWake]], None],
        take_offer: Callable[[Waiter[AsyncWake]], Any],
        add_writer: Callable[[AsyncWake], Writer[AsyncWake]],
        remove_writer: Callable[[Writer[AsyncWake], bool], None],
        serving: Callable[[Template | None], list[AsyncRedisSpace]],
        subscriptions: Callable[[], list[AsyncLogReader[Any]]],
        time_lease: Callable[[AsyncRedisTransaction], None],
        txn: Callable[[str, str, list[tuple[Tuple | None, list[Any]]]], Any],
        closed: Callable[[], bool],
        clock: Callable[[], SimulatedClock | None],
    ) -> None:
        self.options = options
        self.guard = guard
        self.call = call
        self.select = select
        self.block = block
        self.group = group
        self.write = write
        self.begin = begin
        self.end_transaction = end_transaction
        self.end_waits = end_waits
        self.listen = listen
        self.wait = wait
        self.now = now
        self.ping = ping
        self.react = react
        self.recount = recount
        self.fire = fire
        self.rules = rules
        self.add_subscription = add_subscription
        self.remove_subscription = remove_subscription
        self.add_waiter = add_waiter
        self.refile = refile
        self.remove_waiter = remove_waiter
        self.take_offer = take_offer
        self.add_writer = add_writer
        self.remove_writer = remove_writer
        self.serving = serving
        self.subscriptions = subscriptions
        self.time_lease = time_lease
        self.txn = txn
        self.closed = closed
        self.clock = clock

    async def linked(self, tag: str, v: Value) -> tuple[Value, str]:
        """A field's value, and the link it is if it is the address of a record of this
        space (``<tag> <rid> <path>``; "" if not): then the value is that record's
        current address.  The root and records that do not exist cannot be held."""
        here = _records_prefix(self.options)
        if type(v) is not URI or not str(v).startswith(here):
            return v, ""
        path = str(v)[len(here) :]
        if path == "$":
            raise InvalidValue("the root record $ cannot be contained in a record")
        if path.startswith("$"):
            return v, ""  # a capability's address: a value like any other
        reply = await self.call("rget", ["path", path])
        if not reply:
            raise RecordNotFound(f"{v} names no record: a field can only contain a record that exists")
        current = decode_record(reply[1])[1]
        return URI(here + current), f"{tag} {int(reply[0])} {current}"


_Part = tuple[int, AsyncRedisCore]
"""A partition of a space (its number, its core) whose log a reader reads."""


class AsyncRedisSpace:
    """A space kept in Redis, shared by every process that opens it; the methods of
    :class:`~tuplespace.AsyncSpace` for tuples.

    >>> space = await tuplespace.connect_async("redis://127.0.0.1:6379/0?space=jobs")  # doctest: +SKIP
    >>> await space.write(("job", 1, "resize"))                                       # doctest: +SKIP
    >>> await space.take(("job", int, str), timeout=5)                                # doctest: +SKIP
    ('job', 1, 'resize')

    The options ``order`` and ``capacity`` are the space's: the
    first process to open it sets them, and opening it with others raises
    ``ValueError``.  ``max_waiters`` bounds the calls waiting in this process.  Leases
    count in Redis's clock (or a :class:`~tuplespace.SimulatedClock`'s, given as
    ``clock``: see :meth:`follow`).  ``event_retention`` and ``event_retention_bytes`` (the
    space's too) bound the events its log in Redis keeps for subscribers, who read
    their events from it.  The charges ``charge_rate``, ``creation_charge``,
    ``firing_charge``, ``step_charge``, ``redirect_charge`` and the ``operator`` who
    receives what is burned are the space's too, with the meaning of :class:`tuplespace.Space`'s
    (docs/scaling.md, Credit).  A Redis
    that cannot be reached raises
    :class:`~tuplespace.Unreachable`, also in every call waiting on it.
    """

    def __init__(
        self,
        options: Options,
        partition: int = 0,
        client: Any = None,
        clock: Clock | None = None,
        owner: AsyncRedisCore | None = None,
    ) -> None:
        self._options = options
        # A partition of a partitioned space: the space, which runs the rules.
        self._owner = owner
        self._key = prefix(options.space, partition)
        self._channel = self._key + ":ch"
        # In a partitioned space, the clock its partitions share: each script is given
        # it, and the partition's latest seq, read after it in the same packet, moves it on.
        self._clock = clock if clock is not None or options.partitions == 1 else Clock()
        self._clock_read = [] if self._clock is None else [pack(("HGET", self._key + ":cfg", "ev_last"))]
        # A script is never run twice: a failure is the caller's to see.
        self._connection: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
        }
        calls = {"socket_timeout": CONNECT_TIMEOUT, **self._connection}
        self._calls = calls
        # durability=replicated: each command is followed, on its connection, by a WAIT
        # for one replica.
        self._replica_wait = (
            [pack(("WAIT", 1, int(REPLICA_WAIT * 1000)))] if options.durability == "replicated" else []
        )
        # On a Cluster, a client of the master of the space's slot (every key of the
        # space is there), found from the Cluster's client; asked again when it fails.
        self._master: Any = None
        self._master_failed = False
        self._pinged = 0.0  # when a waiting call last asked Redis whether it answers
        self._redis: Any = client
        self._owns_client = client is None  # the partitions of a space share its client
        self._pool: Any = None  # a single Redis's (on a Cluster, the pool of self._master)
        if options.cluster:
            try:  # the sync client asks the Cluster for its nodes here
                self._redis = client or RedisCluster.from_url(options.server, **calls)
            except _FAILURES as exc:
                raise connection_error(options, exc, False) from None
        else:
            self._redis = client or Redis.from_url(options.server, **calls)
            self._pool = self._redis.connection_pool
        # Connections taken from the pool once, for one call at a time; the pool still
        # holds them, and closes them when the space closes.  A process forked from this
        # one takes its own (the pool makes new ones there).
        self._idle: list[Any] = []
        self._idle_pid = os.getpid()
        # The subscription waits for messages without a time limit, on a connection of its
        # own, to the node that holds the space's slot on a Cluster (found when needed).
        self._subscriber: Any = None
        if not options.cluster:
            self._subscriber = Redis.from_url(options.server, **self._connection)
        self._guard = AsyncGuard()
        self._waiters: Registry[Waiter[AsyncWake]] = Registry()
        self._groups: list[Waiter[AsyncWake]] = []  # the take_alls among them
        self._yielding: list[AsyncWake] = []  # waits that let a take offered their match take it first
        self._writers: deque[Writer[AsyncWake]] = deque()
        self._subscriptions: dict[AsyncLogReader[Any], AsyncWake] = {}  # each with the wake of its gets
        self._transactions: dict[AsyncRedisTransaction, str] = {}  # those begun here and open, with their ids
        self._lease_timer: AsyncBackground | None = None  # ends their leases on time (see _end_leases)
        self._lease_tick = AsyncWake()  # wakes the timer for a lease that ends sooner, or as the space closes
        self._next_lease_end = math.inf  # when the timer wakes next (this process's monotonic clock)
        self._handed_takers = 0  # takes waiting for a tuple handed over in Redis
        self._registered_takers = 0  # those of them Redis has registered: they wait
        self._record_takers: list[_RecordTaker] = []  # the take_record calls waiting here, in arrival order
        self._record_changes = 0  # how many changes of records this process was told of
        self._round_changes = 0  # how many of them the latest round of record takes came after
        self._record_rounds = AsyncLock()  # one round at a time
        self._records_prefix = _records_prefix(options)
        self._tokens: set[str] = set()  # their tokens in Redis
        # Whether a take waiting in Redis sends its pop after the find script, in one
        # packet: once the script is known to be loaded (not with durability=replicated).
        self._pops_after_find = False
        # Whether the latest such take found nothing at once: only then does the next send
        # its pop with the script.  A take that finds a tuple at once pays no pop (nor the
        # script's answer to it); one that finds nothing sends its pop after the answer.
        self._takes_wait = True
        # Who a take waiting in Redis is: "<this object's name>:<its arrival here>".
        self._name = uuid.uuid4().hex
        self._arrivals = itertools.count(1)
        self._listening = AsyncLock()
        self._pubsub: Any = None
        self._listener: AsyncBackground | None = None
        self._random = random.Random()
        self._rules: AsyncRedisRules | None = None
        self._follower: ClockFollower | None = None  # of a simulated clock (see follow)
        self._heard = -math.inf  # the latest time of the space in Redis this process knows of (ms)
        self._closed = False
        self.core = AsyncRedisCore(  # what the space's handles and partitioned spaces use of it
            options=options,
            guard=self._guard,
            call=self._call,
            select=self._select,
            block=self._block,
            group=self._group,
            write=self._write,
            begin=self._begin,
            end_transaction=self._end_transaction,
            end_waits=self._end_waits,
            listen=self._listen,
            wait=self._wait,
            now=self._now,
            ping=self._ping,
            react=self._react,
            recount=self._recount,
            fire=self._fire,
            rules=self._the_rules,
            add_subscription=self._add_subscription,
            remove_subscription=self._remove_subscription,
            add_waiter=self._add_waiter,
            refile=self._refile,
            remove_waiter=self._remove_waiter,
            take_offer=self._take_offer,
            add_writer=self._add_writer,
            remove_writer=self._remove_writer,
            serving=self._serving,
            subscriptions=self._subscribers,
            time_lease=self._time_lease,
            txn=self._txn,
            closed=self._is_closed,
            clock=self._followed,
        )

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncRedisSpace:
        """Open the space that ``url`` names (``redis://host:port/db?space=jobs``; with
        ``partitions=N&route=K``, an :class:`AsyncPartitionedRedisSpace`)."""
        clock = options.pop("clock", None)
        parsed = parse_url(url, options)
        space = cls(parsed) if parsed.partitions == 1 else AsyncPartitionedRedisSpace(parsed)
        try:
            for part in space.core.serving(None):
                part.core.options.adopt(await part.core.call("open", part.core.options.stored()))
            if clock is not None:
                await space.follow(clock)
        except BaseException:
            await space.close()
            raise
        return space

    async def follow(self, clock: SimulatedClock) -> None:
        """Make the space's time ``clock``'s (a :class:`~tuplespace.SimulatedClock`) for
        every process, instead of Redis's, from now until it is dropped: leases, credit
        and expiries run in it, moving forward when it is advanced (and only forward:
        a clock behind the space's time moves it once it passes it).  The timeouts of
        the calls of this process count in it too: a wait ends when an advance passes
        its deadline, made here (before :meth:`~tuplespace.SimulatedClock.advance`
        returns, the call no longer counts as waiting) or in another process (once this
        one hears of it).  Given as the option ``clock`` of :meth:`open`.  Not for a
        partitioned space."""
        self._check_open()
        follower = ClockFollower(clock, self._options, functools.partial(AsyncCaller(), self._moved))
        try:
            await self._listen()  # from here on, this process hears of the advances of every process
            reply = await self._call("clock", [follower.now()])
        except BaseException:
            follower.close()
            raise
        if self._follower is not None:
            self._follower.close()
        self._follower = follower
        self._moved(float(reply[0]))

    def _followed(self) -> SimulatedClock | None:
        return None if self._follower is None else self._follower.clock

    def _now(self) -> float:
        """The time the deadlines of the calls waiting here count in (seconds): this
        process's monotonic clock's; following a simulated clock, the space's: the
        clock's, or the latest heard of from Redis if an advance made elsewhere has moved
        it past the clock."""
        follower = self._follower
        if follower is None:
            return time.monotonic()
        now = follower.clock.now()
        return now if now * 1000.0 >= self._heard else self._heard / 1000.0

    def _deadline(self, timeout: float | None) -> float | None:
        """The deadline of a call that waits up to ``timeout`` seconds from now (None: no limit)."""
        return None if timeout is None else self._now() + timeout

    def _left(self, deadline: float | None) -> float | None:
        """The seconds left until ``deadline`` (None: no limit)."""
        return None if deadline is None else deadline - self._now()

    def _passed(self, deadline: float | None) -> bool:
        """Whether ``deadline`` (None: no limit) has passed."""
        return deadline is not None and deadline <= self._now()

    def _moved(self, ms: float) -> None:
        """The space's time in Redis is ``ms``: end the waits it has timed out."""
        with self._guard:
            self._clock_moved(ms)

    def _clock_moved(self, ms: float) -> None:
        """:meth:`_moved`, the guard held.  A call waiting here whose deadline the space's
        time has passed no longer counts as waiting, nor is handed or offered a tuple, and
        wakes to time out (what it was offered or handed before, it takes or returns)."""
        self._heard = max(self._heard, ms)
        if self._follower is None:
            return
        now = self._now()
        for w in [w for w in self._waiters if w.deadline is not None and w.deadline <= now]:
            self._waiters.remove(w)
            w.filed = False
            w.wake.set()
        room = 0
        for writer in [w for w in self._writers if w.deadline is not None and w.deadline <= now]:
            self._writers.remove(writer)
            writer.filed = False
            room, writer.room = room + writer.room, 0  # the room it was told of is the next writer's
            writer.wake.set()
        self._room(room)
        for taker in self._record_takers:  # unless a round is taking a record for it
            if (
                taker.deadline is not None
                and taker.deadline <= now
                and not taker.busy
                and taker.result is None
            ):
                taker.error = taker.error or Timeout("no record matched in time")
                taker.wake.set()

    async def clock_now(self) -> tuple[float, bool]:
        """The space's time (seconds since the epoch) and whether it is a simulated
        clock's (see :meth:`follow` and :meth:`advance_clock`) rather than Redis's."""
        reply = await self._call("clock", [""])
        return float(reply[0]) / 1000.0, reply[1] == b"1"

    async def advance_clock(self, seconds: float) -> float | None:
        """Move the time of a space that follows a simulated clock ``seconds`` forward,
        in Redis, for every process: what falls due by then expires, and its reactions
        run.  The space's time then; None, nothing moved, if it keeps Redis's time."""
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward; got {seconds!r} seconds")
        reply = await self._call("clock", ["+", repr(seconds * 1000.0)])
        if reply[1] != b"1":
            return None
        self._moved(float(reply[0]))
        await self._fire()
        return float(reply[0]) / 1000.0

    @property
    def name(self) -> str:
        return self._options.space

    @property
    def order(self) -> str:
        return self._options.order

    @property
    def capacity(self) -> int | None:
        return self._options.capacity

    @property
    def mint_amount(self) -> Credit:
        """The credit a proof-of-work stamp mints (0: the space mints none)."""
        return self._options.mint_amount

    @property
    def mint_bits(self) -> int:
        """The leading zero bits a stamp needs."""
        return self._options.mint_bits

    @property
    def event_retention(self) -> int:
        return self._options.event_retention

    @property
    def event_retention_bytes(self) -> int:
        return self._options.event_retention_bytes

    @property
    def charge_rate(self) -> Credit:
        """The credit a record drains per second for each KiB it stores (0: none)."""
        return from_nanos(self._options.charge_rate)

    @property
    def creation_charge(self) -> Credit:
        """The credit creating a record costs, besides what it holds."""
        return from_nanos(self._options.creation_charge)

    @property
    def operator(self) -> str:
        """The principal whose account receives the credit the space burns."""
        return self._options.operator

    @property
    def firing_charge(self) -> Credit:
        """The credit each firing of a rule costs its principal (see ``rules.firing_charge``)."""
        return from_nanos(self._options.firing_charge)

    @property
    def step_charge(self) -> Credit:
        """The credit each step of a method costs its caller."""
        return from_nanos(self._options.step_charge)

    @property
    def redirect_charge(self) -> Credit:
        """The credit naming a record by a path it moved away from costs (see :meth:`record`)."""
        return from_nanos(self._options.redirect_charge)

    # -- writing ----------------------------------------------------------------------------

    async def write(
        self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None
    ) -> AsyncLease:
        """Write the tuple ``t``; see :meth:`tuplespace.Space.write`."""
        _, data, keys = encode_tuple(t)
        leases = await self._write([data, keys], check_lease(lease), check_timeout(timeout))
        assert leases is not None
        return leases[0]

    async def write_many(
        self, tuples: Iterable[Iterable[Value]], lease: float | None = None
    ) -> list[AsyncLease]:
        """Write several tuples at once, in order: all of them or none."""
        items: list[str | bytes] = []
        for i, t in enumerate(tuples):
            try:
                _, data, keys = encode_tuple(t)
            except InvalidValue as exc:
                exc.path = f"tuples[{i}]{exc.path}"
                exc.args = (f"{exc.path}: {exc.reason}",)
                raise
            items += (data, keys)
        lease = check_lease(lease)
        if not items:
            self._check_open()
            return []
        leases = await self._write(items, lease, 0)
        assert leases is not None
        return leases

    async def _write(
        self,
        items: list[str | bytes],
        lease: float | None,
        timeout: float | None,
        guard: tuple[str, int] = ("", 0),
        reservation: str = "",
        reading: list[Any] | None = None,
    ) -> list[AsyncLease] | None:
        """Write the encoded tuples; None if ``guard`` (an arity key and the last id it
        allows) saw a newer tuple, or the ``reservation`` of room of a partitioned space
        was cancelled (written, the count of the partition after the write and the
        number of that reading are added to ``reading``).  In a full space, wait up to
        ``timeout`` for room."""
        args = [guard[0], guard[1], lease_ms(lease), reservation, *items]
        deadline = self._deadline(timeout)
        writer: Writer[AsyncWake] | None = None
        wrote = False
        try:
            while True:
                if writer is not None:
                    writer.wake.clear()
                    with self._guard:
                        writer.trying, writer.room = writer.room, 0
                reply = await self._call("write", args)
                if reply[0] == b"ok" or reply[0] == b"fire":
                    wrote = True
                    expires = _seconds(reply[1])
                    if reply[0] == b"fire":  # the space has rules: run their reactions
                        await self._fire()
                    ids = reply[2:]
                    if reservation:
                        ids, counted = ids[:-2], ids[-2:]
                        if reading is not None:
                            reading += counted
                    return [AsyncLease(self, int(seq), expires) for seq in ids]
                if reply[0] == b"retry" or reply[0] == b"cancelled":
                    return None
                capacity = self._options.capacity
                if timeout == 0:
                    n = len(items) // 2
                    what = "the tuple does not fit" if n == 1 else f"{n} tuples do not fit"
                    raise SpaceFull(
                        f"{what}: the space holds {capacity}, its capacity",
                        limit="capacity",
                        maximum=capacity or 0,
                    )
                if writer is None:
                    writer = self._add_writer()
                    writer.deadline = deadline
                    await self._listen()
                    continue
                writer.trying = 0  # the room went to another process
                if self._passed(deadline):
                    raise Timeout("the space stayed full: no room for the tuple in time")
                until = deadline
                expiry = float(reply[1]) / 1000.0  # a lease that ends makes room too
                if expiry >= 0:
                    ends = self._now() + expiry
                    until = ends if deadline is None else min(deadline, ends)
                await self._wait(writer.wake, until)
                if writer.error is not None:
                    raise writer.error
        finally:
            if writer is not None:
                self._remove_writer(writer, wrote)

    # -- reading and taking ---------------------------------------------------------------------

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """A copy of a matching tuple, waiting up to ``timeout`` seconds for one."""
        return await self._block(compile_template(template), False, check_timeout(timeout))

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a matching tuple, waiting up to ``timeout`` seconds for one."""
        taken = await self._block(compile_template(template), True, check_timeout(timeout))
        await self._react()
        return taken

    async def try_read(self, template: Any) -> Tuple | None:
        """A matching tuple, or None at once if there is none."""
        found = await self._select(compile_template(template), False, 1)
        return found[0][1] if found else None

    async def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a matching tuple, or None at once if there is none."""
        found = await self._select(compile_template(template), True, 1)
        await self._react()
        return found[0][1] if found else None

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """All matching tuples (at most ``limit``), in the order of the space; see
        :meth:`tuplespace.Space.read_all` for the ``timeout``."""
        found = await self._group(
            compile_template(template), False, check_limit(limit), check_timeout(timeout)
        )
        return [t for _, t in found]

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        """Remove and return all matching tuples (at most ``limit``), in order; see
        :meth:`tuplespace.Space.take_all` for the ``timeout``."""
        found = await self._group(
            compile_template(template), True, check_limit(limit), check_timeout(timeout)
        )
        await self._react()
        return [t for _, t in found]

    async def _group(
        self, template: Template, take: bool, limit: int | None, timeout: float | None, tx: str = ""
    ) -> list[tuple[int, Tuple]]:
        """Select up to ``limit`` matches with their ids (taken for the transaction
        ``tx``, if not ''); if there are none, wait for a first one and select again
        (another process may have taken it first).  A take_all waits among the takes
        waiting here, in their order of arrival, or in Redis among the takes of every
        process (see :meth:`_take_group`)."""
        found = await self._select(template, take, limit, tx)
        if found or timeout == 0 or limit == 0:
            return found
        if take:
            return await self._take_group(template, limit, timeout, tx)
        return await self._await_group(template, False, limit, timeout, tx)

    async def _await_group(
        self, template: Template, take: bool, limit: int | None, timeout: float | None, tx: str
    ) -> list[tuple[int, Tuple]]:
        """Wait as a read does for a first match, then select up to ``limit`` matches
        (taken if ``take``), until some are found or ``timeout`` has passed."""
        deadline = self._deadline(timeout)
        while True:
            left = self._left(deadline)
            try:
                await self._block(
                    template, False, None if left is None else max(left, 0.0), tx, True, deadline
                )
            except Timeout:
                return []
            found = await self._select(template, take, limit, tx)
            if found:
                return found

    async def _take_group(
        self, template: Template, limit: int | None, timeout: float | None, tx: str
    ) -> list[tuple[int, Tuple]]:
        """A take_all waiting in Redis among the takes of every process if it can (see
        :meth:`_take_handed`), else in the queue of the takes waiting here, as a group:
        when it is offered a tuple (or woken) it takes up to ``limit`` matches while
        still in the queue, and a tuple published meanwhile is offered to no take that
        came after it; those look again once it has ended (what it left is theirs)."""
        deadline = self._deadline(timeout)
        handed = await self._handed(template, deadline, tx, limit)
        if handed is not None:
            return handed
        waiter = self._add_waiter(template, True, tx=tx)
        waiter.group = True
        waiter.deadline = deadline
        with self._guard:
            self._groups.append(waiter)
        try:
            await self._listen()
            while True:
                waiter.wake.clear()
                with self._guard:
                    waiter.offer = None  # it looks at every match, the offered one too
                    # A take that came before it and was offered a tuple takes it first.
                    waiter.taking = not self._offered(template, waiter.seq)
                if waiter.error is not None:
                    raise waiter.error
                if waiter.taking:
                    try:
                        found = await self._select(template, True, limit, tx)
                    finally:
                        self._took(waiter)
                    if found:
                        return found
                if self._passed(deadline):
                    return []
                await self._wait(waiter.wake, deadline)
        finally:
            self._remove_waiter(waiter)

    def _offered(self, template: Template, before: int | None) -> bool:
        """Whether a take waiting here (that came before the ``before``-th, if not None) is
        taking a tuple, or was offered one that ``template`` matches: then a take_all that
        came after it, or a wait for ``template`` that lets the takes go first, waits
        until it is done."""
        return any(
            w.take
            and (before is None or w.seq < before)
            and (w.taking or (w.offer is not None and template.matches(w.offer[1])))
            for w in self._waiters
        )

    def _took(self, waiter: Waiter[AsyncWake]) -> None:
        """``waiter`` is done taking: the take_alls that came after it, and the waits
        that let it take first, look again."""
        with self._guard:
            waiter.taking = False
            for g in self._groups:
                if g.seq > waiter.seq:
                    g.wake.set()
            for wake in self._yielding:
                wake.set()

    async def _take_offer(self, waiter: Waiter[AsyncWake]) -> Tuple | None:
        """Take the tuple offered to the waiting take ``waiter``: it, or None if none was
        offered or another process took it first.  The take_alls that came after it wait
        meanwhile, so that they do not take it first."""
        with self._guard:
            offer, waiter.offer = waiter.offer, None
            waiter.taking = offer is not None
        if offer is None:
            return None
        try:
            taken = _held(await self._call("take", [waiter.tx, offer[0]]))
        finally:
            self._took(waiter)
        return offer[1] if taken else None

    async def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        compiled = compile_template(template)
        keys, trusted = candidates(compiled)
        if trusted:
            reply = await self._call("find", ["count", "fifo", -1, BATCH, "-inf", "", "", *keys])
            return int(reply[2])
        return len((await self._scan(compiled, keys, None, "fifo"))[0])

    async def _select(
        self, template: Template, take: bool, limit: int | None, tx: str = ""
    ) -> list[tuple[int, Tuple]]:
        """Up to ``limit`` matches in the space's order, with their ids; taken if ``take``
        (held by the transaction ``tx``, if not '')."""
        if limit == 0:
            self._check_open()
            return []
        keys, trusted = candidates(template)
        order = self._options.order
        if trusted and order != "random":
            mode = "take" if take else "read"
            reply = _held(
                await self._call(
                    "find", [mode, order, -1 if limit is None else limit, BATCH, _START[order], "", tx, *keys]
                )
            )
            return [(i, decode_tuple(data)) for i, data in pairs(reply[3:])]
        if order != "random":
            found = (await self._scan(template, keys, limit, order, take, tx))[0]
            if not take:
                await self._tally(len(found))
            return found
        found = (await self._scan(template, keys, None, "fifo"))[0]
        self._random.shuffle(found)
        if not take:
            await self._tally(len(found[:limit]))
            return found[:limit]
        taken: list[tuple[int, Tuple]] = []
        while found and (limit is None or len(taken) < limit):
            # What another process took meanwhile is skipped.
            n = BATCH if limit is None else limit - len(taken)
            chosen, found = found[:n], found[n:]
            got = {i for i, _ in pairs(_held(await self._call("take", [tx, *(i for i, _ in chosen)])))}
            taken += [(i, t) for i, t in chosen if i in got]
        return taken

    async def _tally(self, reads: int) -> None:
        """Count in Redis ``reads`` tuples read without a script finding them (matched
        here, or handed to a waiting read by what a write published)."""
        if reads:
            await self._call("tally", [reads])

    async def _scan(
        self,
        template: Template,
        keys: list[str],
        limit: int | None,
        order: str,
        take: bool = False,
        tx: str = "",
    ) -> tuple[list[tuple[int, Tuple]], int]:
        """Up to ``limit`` matches of ``template`` among the candidates in ``keys``,
        matched here, batch by batch (taken if ``take``, for the transaction ``tx`` if
        not ''); and the id of the latest tuple written when the scan began."""
        found: list[tuple[int, Tuple]] = []
        cursor = _START[order]
        seen = -1
        while True:
            reply = await self._call("find", ["scan", order, -1, BATCH, cursor, "", "", *keys])
            if seen < 0:
                seen = int(reply[1])
            matches = [(i, t) for i, data in pairs(reply[3:]) if template.matches(t := decode_tuple(data))]
            if limit is not None:
                matches = matches[: limit - len(found)]
            if take and matches:
                got = {i for i, _ in pairs(_held(await self._call("take", [tx, *(i for i, _ in matches)])))}
                matches = [(i, t) for i, t in matches if i in got]
            found += matches
            if len(found) == limit or not reply[0]:
                return found, seen
            cursor = reply[0]

    async def _block(
        self,
        template: Template,
        take: bool,
        timeout: float | None,
        tx: str = "",
        only_wait: bool = False,
        deadline: float | None = None,
    ) -> Tuple:
        """A take or a read of one tuple matching ``template``, waiting up to ``timeout``
        (for the transaction ``tx``, if not ''); ``only_wait``: a read that only waits for
        a first match (of a group or a replace, which look again), counted as no read,
        and returns once the takes waiting here that were offered a match have taken it
        (a waiting take wins a write, as in the embedded space); ``deadline``: the
        deadline of the call it waits for, which began before (None: ``timeout`` from
        now)."""
        deadline = self._deadline(timeout) if deadline is None else deadline
        if take and timeout != 0:
            handed = await self._handed(template, deadline, tx, 1)
            if handed is not None:
                return handed[0][1]
        found = await self._select(template, take, 1, tx)
        if found:
            return found[0][1]
        if timeout == 0:
            raise Timeout(f"no tuple matches {template.fields!r}")
        waiter = self._add_waiter(template, take, tx=tx)
        waiter.deadline = deadline
        try:
            await self._listen()
            while True:
                waiter.wake.clear()
                with self._guard:
                    result = waiter.result
                    behind = only_wait and result is not None and self._offered(template, None)
                    if behind and waiter.wake not in self._yielding:
                        self._yielding.append(waiter.wake)
                if waiter.error is not None:
                    raise waiter.error
                if result is not None and (not behind or self._passed(deadline)):
                    if not (take or only_wait):  # handed by what a write published: no script read it
                        await self._tally(1)
                    return result
                if result is None:
                    if take and (offered := await self._take_offer(waiter)) is not None:
                        return offered
                    found = await self._select(template, take, 1, tx)
                    if found:
                        return found[0][1]
                    if self._passed(deadline):
                        raise Timeout(f"no tuple matched {template.fields!r} in time")
                await self._wait(waiter.wake, deadline)
        finally:
            with self._guard:
                if waiter.wake in self._yielding:
                    self._yielding.remove(waiter.wake)
            self._remove_waiter(waiter)

    async def _handed(
        self, template: Template, deadline: float | None, tx: str, limit: int | None
    ) -> list[tuple[int, Tuple]] | None:
        """A take (``limit`` 1) or take_all that may wait, taken as :meth:`_take_handed`
        does if it can be: None if not.  Not on a simulated clock: a registration in Redis
        lasts a span of the space's time, which an advance may pass at once, and the calls
        waiting here are those that the advances time out."""
        if self._options.order == "random" or tx or self._follower is not None:
            return None
        keys, trusted = candidates(template)
        if not trusted or self._waiters.count:
            # Handed over in Redis; not while calls wait here for what is published,
            # so that those that came first are served first.
            return None
        return await self._take_handed(template, keys, deadline, limit)

    async def _take_handed(
        self, template: Template, keys: list[str], deadline: float | None, limit: int | None
    ) -> list[tuple[int, Tuple]]:
        """A take (``limit`` 1) or take_all whose template Redis matches alone: when
        nothing matches, the find script registers it in Redis, a write hands it the
        first tuple that matches (a take_all: every tuple of that write that matches, up
        to ``limit``), in the order the takers of every process registered, and it pops
        what it was handed, until ``deadline``; the tuples with their ids."""
        order = self._options.order
        with self._guard:
            self._check_waiters()
            self._handed_takers += 1
            arrival = next(self._arrivals)
            token = f"{self._name}:{arrival}"  # who it is, and the name of its registration
            self._tokens.add(token)  # closing the space wakes it
        inbox = f"{self._key}:r:{token}"
        registered = False

        def counted(reply: Any) -> None:
            """Count the take as waiting once Redis has registered it (then the script
            answers its token): its place among the calls waiting here."""
            nonlocal registered
            if reply[0] and not registered:
                registered = True
                with self._guard:
                    self._registered_takers += 1

        try:
            while True:
                hold = f"{_HOLD_MS} {token}"
                args = ["take", order, -1 if limit is None else limit, BATCH, _START[order], hold, "", *keys]
                try:
                    if self._pops_after_find and self._takes_wait:
                        # The pop follows the script in one packet: no round trip between.
                        args[5] = hold + " pop"
                        wait = self._handover_wait(deadline)
                        reply, entries = await self._find_and_pop(args, inbox, wait, limit, counted)
                        if reply is None:  # Redis lost the scripts: look again, then pop
                            continue
                    else:
                        reply = await self._call("find", args)
                        counted(reply)
                        self._pops_after_find = not self._replica_wait  # the scripts are loaded now
                        entries = (
                            None
                            if len(reply) > 3
                            else await self._pop(inbox, self._handover_wait(deadline), limit)
                        )
                except BaseException:
                    if not self._closed:
                        with contextlib.suppress(TupleSpaceError):
                            await self._call("unwait", [token, "restore"])
                    raise
                self._takes_wait = len(reply) <= 3
                if not self._takes_wait:  # found at once
                    return [(i, decode_tuple(data)) for i, data in pairs(reply[3:])]
                if entries is None:
                    entries = await self._call("unwait", [token, ""])
                handed = [_handed_tuple(entry) for entry in entries if entry]
                if handed:
                    return handed
                self._check_open()  # the space closing wakes it with an empty entry
                if self._passed(deadline):
                    raise Timeout(f"no tuple matched {template.fields!r} in time")
        finally:
            with self._guard:
                self._handed_takers -= 1
                self._registered_takers -= registered
                self._tokens.discard(token)

    def _handover_wait(self, deadline: float | None) -> float:
        """How long a take waiting in Redis for a tuple handed over waits in one pop."""
        left = self._left(deadline)
        return HANDOVER_WAIT if left is None else min(max(left, 0.001), HANDOVER_WAIT)

    # -- atomic compound operations -----------------------------------------------------------------

    async def replace(
        self, template: Any, successor: Successor, lease: float | None = None, timeout: float | None = None
    ) -> Tuple:
        """Take a matching tuple and write its successor, in one atomic step; see
        :meth:`tuplespace.Space.replace`."""
        compiled = compile_template(template)
        lease = check_lease(lease)
        deadline = self._deadline(check_timeout(timeout))
        while True:
            for part in self._serving(compiled):
                found: list[tuple[int, Tuple]] = await part.core.select(compiled, False, 1, "")
                if found:
                    seq, old = found[0]
                    new, data, keys = encode_tuple(successor(old) if callable(successor) else successor)
                    if self._keeper(new) is not part:
                        raise InvalidValue(
                            f"the successor {new!r} belongs to another partition than {old!r}: "
                            f"a replace keeps the value of the route field",
                            "successor",
                        )
                    if await part.core.call("replace", [seq, lease_ms(lease), data, keys]):
                        await self._react()
                        return old
                    break  # another process took it first
            else:
                left = self._left(deadline)
                await self._block(
                    compiled, False, None if left is None else max(left, 0.0), "", True, deadline
                )

    async def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """Write ``t`` only if no tuple matches ``template``, atomically; True if written."""
        compiled = compile_template(template)
        _, data, keys = encode_tuple(t)
        lease = check_lease(lease)
        arity = f"a:{compiled.arity}"
        while True:
            keys_of, trusted = candidates(compiled)
            if trusted:
                reply = await self._call("find", ["count", "fifo", 1, BATCH, "-inf", "", "", *keys_of])
                seen, found = int(reply[1]), int(reply[2]) > 0
            else:
                matches, seen = await self._scan(compiled, keys_of, 1, "fifo")
                found = bool(matches)
            if found:
                return False
            # Written only if no tuple of the template's arity came since the look.
            if await self._write([data, keys], lease, 0, (arity, seen)) is not None:
                return True

    # -- rules ----------------------------------------------------------------------------------

    @property
    def rules(self) -> AsyncRedisRules:
        """The space's rules, kept in Redis for every process that opens it: reactions
        to its tuples' events (see :class:`AsyncRedisRules` and ``docs/scaling.md``)."""
        if self._owner is not None:
            return self._owner.rules()
        if self._rules is None:
            self._check_open()
            self._rules = self._new_rules()
        return self._rules

    def _new_rules(self) -> AsyncRedisRules:
        return AsyncRedisRules(self.core)

    def _the_rules(self) -> AsyncRedisRules:
        return self.rules

    async def _react(self) -> None:
        """Run the reactions not run yet, if this process knows of rules."""
        if self._owner is not None:
            await self._owner.react()
        elif self._rules is not None and self._rules.known:
            await self._fire()

    async def _fire(self) -> None:
        """Run the reactions not run yet, after an operation: what stops them (Redis out
        of reach, the space closed meanwhile) is logged, not raised, as the operation
        happened; the next process that runs them does them."""
        if self._owner is not None:
            await self._owner.fire()
            return
        try:
            await self.rules.fire()
        except TupleSpaceError as exc:
            log.warning("the reactions of space %r were not run: %s", self._options.space, exc)

    async def _recount(self) -> None:
        """Read the count of every partition of a partitioned space with a capacity
        (here: nothing to read)."""

    # -- transactions ---------------------------------------------------------------------------

    def transaction(self, lease: float | None = 60.0) -> AsyncRedisTransaction:
        """A transaction, whose takes Redis holds for it and whose writes wait in this
        process until it commits; see :class:`AsyncRedisTransaction`.  ``lease``
        (seconds, in Redis's clock) bounds how long it lasts: it has one, so that what
        it holds returns should its process die.  It begins at once in the sync face;
        in the async one when it is awaited, entered or first used."""
        self._check_open()
        return opened_later(AsyncRedisTransaction(self, _txn_lease(lease)))

    def claim(self, tag: str, lease: float, remember: float) -> AsyncRedisTransaction:
        """A transaction that is a claim (a server's claimed take: it takes, and writes
        nothing), named in Redis by its id and ``tag`` from when it begins, so that any
        process can confirm or release it with :meth:`end_claim`; its outcome is
        remembered there ``remember`` seconds past its ``lease`` (or past its end).
        Aborting it (:meth:`AsyncRedisTransaction.abort`) forgets the claim: it was given
        to nobody."""
        self._check_open()
        return opened_later(AsyncRedisTransaction(self, _txn_lease(lease), [tag, _ms_int(remember)]))

    async def _begin(
        self, tx: AsyncRedisTransaction, lease: float, claim: list[str]
    ) -> tuple[str, float | None]:
        """Begin ``tx`` in Redis, as the claim ``claim`` (its tag and ms remembered) if
        any: its id and expiry."""
        with self._guard:
            self._check_open()
            most = self._options.max_waiters
            if len(self._transactions) >= most:  # forget those whose lease ran out unused
                self._transactions = {t: i for t, i in self._transactions.items() if t.state == "active"}
            if len(self._transactions) >= most:
                raise LimitReached(
                    f"{most} transactions are open in this process already, the most allowed",
                    limit="max_waiters",
                    maximum=most,
                )
            self._transactions[tx] = ""
        try:
            reply = await self._call("begin", [lease_ms(lease), *claim])
        except BaseException:
            self._end_transaction(tx)
            raise
        tx_id = str(int(reply[0]))
        with self._guard:
            if tx in self._transactions:
                self._transactions[tx] = tx_id
        return tx_id, _seconds(reply[1])

    def _time_lease(self, tx: AsyncRedisTransaction) -> None:
        """End the lease of ``tx``, begun or renewed here, on time (see :meth:`_end_leases`)."""
        with self._guard:
            end = tx.deadline
            if end is not None and end < self._next_lease_end:
                self._lease_tick.set()
            if self._lease_timer is None and not self._closed:
                self._lease_timer = AsyncBackground(self._end_leases)

    async def _end_leases(self) -> None:
        """The timer of the transactions begun here: as the lease of one runs out, the
        script ``expire`` aborts it in Redis, so that what it holds goes back at once to
        the calls waiting for it in every process (and the calls waiting inside it end),
        as an embedded space's does, not at the next call that looks."""
        looked = time.monotonic()  # the leases that ended by then were ended
        while True:
            with self._guard:
                if self._closed:
                    return
                self._lease_tick.clear()
                ends = [end for tx in self._transactions if (end := tx.deadline) is not None and end > looked]
                self._next_lease_end = min(ends, default=math.inf)
            left = self._next_lease_end - time.monotonic()
            if left > 0:
                await self._lease_tick.wait(None if left == math.inf else left)
                continue
            looked = time.monotonic()
            try:
                await self._call("expire", [])
            except TupleSpaceError as exc:  # the calls waiting here tell Redis out of reach
                log.debug("the leases of space %r were not ended on time: %s", self._options.space, exc)

    async def end_claim(self, tx_id: str, tag: str, confirm: bool, remember: float) -> str | None:
        """End the claim that the transaction ``tx_id`` is, made with ``tag`` (see
        :meth:`claim`), from any process: confirming commits it if
        it is still open, releasing aborts it.  The claim's outcome, ``"committed"`` or
        ``"aborted"`` (released, or its lease ran out: its tuples went back), remembered
        in Redis ``remember`` seconds more; None if there is no such claim (another tag,
        or its outcome forgotten)."""
        reply = await self._call(
            "end_claim", [tx_id, tag, "confirm" if confirm else "release", _ms_int(remember)]
        )
        return None if reply is None else reply.decode()

    def _end_transaction(self, tx: AsyncRedisTransaction) -> None:
        """Forget ``tx``, which has ended."""
        with self._guard:
            self._transactions.pop(tx, None)

    async def _txn(self, script: str, tx_id: str, items: list[tuple[Tuple | None, list[Any]]]) -> Any:
        """The reply of ``script`` run on the transaction ``tx_id`` with the arguments of
        ``items``, in order."""
        args = [arg for _, each in items for arg in each]
        return await self._call(_committing(script, args), [tx_id, *args])

    def _is_closed(self) -> bool:
        return self._closed

    # -- events -------------------------------------------------------------------------------------

    def subscribe(
        self,
        template: Any,
        events: Iterable[str] = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> AsyncRedisSubscription:
        """The events of tuples matching ``template`` (:data:`~tuplespace.ANY` alone:
        every tuple); see :meth:`tuplespace.Space.subscribe`.

        Events are read from the space's log in Redis, so they come from every process
        using the space; ``since`` resumes after an event of any of them.  At most
        ``max_pending`` events are read ahead.  With ``existing``, the matching tuples
        present when it begins come first (kind ``present``), each looked up in Redis
        when its turn comes.  The subscription begins at once in the sync face; in the
        async one when it is awaited, entered or first read.
        """
        self._check_open()
        kinds = frozenset(check_kinds(events))
        since = check_since(since)
        compiled = None if template is ANY else compile_template(template)
        subscription = AsyncRedisSubscription(
            self.core,
            self._log_parts(compiled),
            compiled,
            kinds,
            since,
            check_max_pending(max_pending),
            check_lease(lease),
            check_existing(existing, since),
        )
        return opened_later(subscription)

    # -- records ----------------------------------------------------------------------------------

    async def create(
        self,
        path: str,
        fields: Mapping[str, Value],
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> AsyncRedisRecord:
        """Create the record ``path`` with ``fields`` (see :meth:`tuplespace.Space.create`);
        its handle.  ``lease``: seconds until it expires, in Redis's clock (None: never).
        ``credit``: what the record holds.  A space that charges (``charge_rate``,
        ``creation_charge``) takes the credit, and the creation charge, from the account
        of ``principal`` (:class:`~tuplespace.InsufficientCredit` if it holds less); with
        a charge rate the record drains its credit in Redis's clock, a lease buys the
        credit to last that long, and the record expires when its credit runs out.
        :class:`~tuplespace.RecordExists` if the path is taken."""
        self._check_open()
        check_path(path)
        return await _create(self.core, path, check_fields(fields, DEFAULT_LIMITS), credit, lease, principal)

    async def record(self, ref: str | URI, *, principal: str = DEFAULT_PRINCIPAL) -> AsyncRedisRecord:
        """The handle of the record at the path or address ``ref`` (or ``"$"``, the root
        record: ``TUPS`` and ``ME``); :class:`~tuplespace.RecordNotFound` if none is there.
        A path a record moved away from is followed while its redirection lasts, and
        costs ``principal`` the space's ``redirect_charge`` (:class:`InsufficientCredit`
        if it cannot pay), in the script that follows it."""
        self._check_open()
        ref = handle_address(ref) or ref
        here = self._records_prefix
        if isinstance(ref, URI) or (isinstance(ref, str) and "://" in ref):
            text = str(ref)
            if not text.startswith(here):
                raise RecordNotFound(f"{text} is not an address in this space (its addresses start {here})")
            ref = text[len(here) :]
        elif not isinstance(ref, str):
            raise UnsupportedType(
                f"a record is named by a path, a URI, a str or a handle, not {type(ref).__name__}"
            )
        if ref == "$":
            return AsyncRedisRecord(self.core, ROOT_RID, URI(here + "$"))
        if ref.startswith("$cap/"):
            reply = await self._call("rcap", [ref[5:]])
            if reply[0] == b"gone":
                raise RecordNotFound(
                    f"{here}{ref}: the record of this capability is gone (destroyed or expired)"
                )
            if reply[0] in (b"revoked", b"expired"):
                expired = reply[0] == b"expired"
                raise CapabilityRevoked(f"{here}{ref}: no capability has this address now", expired=expired)
            allowed = frozenset(reply[1].decode().split(","))
            return AsyncRedisRecord(self.core, int(reply[0]), URI(here + ref), ref[5:], allowed)
        reply = await self._call("rget", ["path", ref, "", principal])
        if not reply:
            check_path(ref)
            raise RecordNotFound(f"no record at {ref!r}")
        _paid(principal, reply)
        return AsyncRedisRecord(self.core, int(reply[0]), URI(here + decode_record(reply[1])[1]))

    async def record_by_id(self, rid: int) -> AsyncRedisRecord:
        """The full handle of the record numbered ``rid`` (its ``id``), which names that
        one record: :class:`~tuplespace.RecordNotFound` once it is gone, even if another
        took its path."""
        self._check_open()
        here = self._records_prefix
        if rid == ROOT_RID:
            return AsyncRedisRecord(self.core, ROOT_RID, URI(here + "$"))
        reply = await _checked(self.core, rid, await self._call("rget", ["rid", str(rid), ""]))
        return AsyncRedisRecord(self.core, rid, URI(here + decode_record(reply[1])[1]))

    async def revoke_capability(self, ref: str | URI) -> None:
        """End the capability at the address ``ref``, as its owner's
        :meth:`AsyncRedisRecord.revoke` does (for a server that holds the address:
        the address is its own permission)."""
        handle = await self.record(ref)
        if handle.token is None:
            raise InvalidValue(f"{ref} is not the address of a capability", "ref")
        await self._call("rrevoke", [handle.token])

    async def _matching(
        self, template: RecordTemplate, under: str | None, after: int
    ) -> tuple[list[tuple[int, int, str, dict[str, Value]]], int | None]:
        """The records matching ``template`` below ``under`` among the next candidates
        of a rid above ``after`` (rid, version, path, fields, oldest first), and the rid
        to go on after (None: no more)."""
        reply = await self._call("rscan", [BATCH, after, *record_candidates(template), ""])
        return _matches(reply[0], template, path_prefix(under))

    async def find(
        self, template: Mapping[str, Any], under: str | None = None, limit: int | None = None
    ) -> list[AsyncRedisRecord]:
        """The records matching ``template`` below ``under``, oldest first, at most
        ``limit`` (see :meth:`tuplespace.Space.find`).  The candidates are those holding
        the template's str and int values (looked up in Redis's index); they are matched
        in this process, 256 at a time."""
        compiled = RecordTemplate(template)
        check_limit(limit)
        path_prefix(under)
        out: list[AsyncRedisRecord] = []
        after: int | None = 0
        while after is not None and len(out) != limit:
            found, after = await self._matching(compiled, under, after)
            for rid, _, path, _ in found[: None if limit is None else limit - len(out)]:
                out.append(AsyncRedisRecord(self.core, rid, URI(self._records_prefix + path)))
        return out

    async def try_take_record(
        self,
        template: Mapping[str, Any] | RecordTemplate,
        under: str | None = None,
        *,
        claim: AsyncRedisTransaction | None = None,
    ) -> RecordData | None:
        """Remove the oldest record matching ``template`` below ``under`` and return what
        it held, or None at once if none matches.  With ``claim`` (see :meth:`claim`) the
        record is held in Redis for the claim, out of sight (no lookup, find or take sees
        it; its path stays its own) until the claim is confirmed (then it is destroyed,
        with its ``destroy`` event) or released or runs out (then it is back as it was);
        :class:`~tuplespace.TransactionAborted` if the claim has ended."""
        compiled = RecordTemplate(template)
        path_prefix(under)
        return await self._take_record(compiled, under, 0, await _claim_id(claim))

    async def _take_record(
        self, template: RecordTemplate, under: str | None, after: int = 0, tx: str = ""
    ) -> RecordData | None:
        """Take the oldest record matching ``template`` below ``under`` of a rid above
        ``after``, for the claim ``tx`` ('': for good)."""
        start: int | None = after
        while start is not None:
            found, more = await self._matching(template, under, start)
            for rid, version, path, fields in found:
                taken, changed = await self._take_changed(rid, version, path, fields, tx)
                if taken is not None:
                    return taken
                if changed:  # since it was matched: look at it again
                    more = rid - 1
                    break
            start = more
        return None

    async def _take_changed(
        self, rid: int, version: int, path: str, fields: dict[str, Value], tx: str = ""
    ) -> tuple[RecordData | None, bool]:
        """Take the record ``rid`` for the claim ``tx`` ('': for good) if it is still at
        ``version`` and no record contains it: what it held (or None), and whether it
        changed since that version."""
        reply = await self._call("rdestroy", [rid, version, "", tx])
        if reply and reply[0] == b"aborted":
            raise TransactionAborted("the claim was aborted: its lease ran out")
        if not reply or reply[0] in (b"retry", b"inuse"):
            return None, bool(reply) and reply[0] == b"retry"
        await _react(self.core, len(reply) > 3)
        return RecordData(URI(self._records_prefix + path), Map(fields), version), False

    async def take_record(
        self,
        template: Mapping[str, Any] | RecordTemplate,
        under: str | None = None,
        timeout: float | None = None,
        *,
        claim: AsyncRedisTransaction | None = None,
    ) -> RecordData:
        """Remove the oldest record matching ``template`` below ``under`` and return what
        it held, waiting up to ``timeout`` seconds (None: forever) for a record to be
        created or set so that it matches (:class:`~tuplespace.Timeout` after).  The
        takes waiting in this process look in turn, in their order of arrival, after
        each change of a record in any process; the first look to reach Redis wins.
        ``claim``: the claim that holds the record, as for :meth:`try_take_record`."""
        compiled = RecordTemplate(template)
        path_prefix(under)
        wait = check_timeout(timeout)
        tx = await _claim_id(claim)
        if wait == 0:
            taken = await self._take_record(compiled, under, 0, tx)
            if taken is None:
                raise Timeout("no record matched")
            return taken
        deadline = self._deadline(wait)
        await self._listen()  # from here on, every change of a record wakes the takers
        taker = _RecordTaker(compiled, under, tx)
        taker.deadline = deadline
        with self._guard:
            self._check_waiters()
            self._record_takers.append(taker)
        try:
            while True:
                taker.wake.clear()
                with self._guard:
                    if taker.result is not None:
                        return taker.result
                    if taker.error is not None:
                        raise taker.error
                    due = not taker.covered or self._round_changes < self._record_changes
                if due:
                    await self._record_round()
                    continue
                if self._passed(deadline):
                    with self._guard:  # unless a round is taking a record for it
                        if not taker.busy and taker.result is None:
                            taker.error = Timeout("no record matched in time")
                    continue
                await self._wait(taker.wake, None if taker.busy else deadline)
        finally:
            with self._guard:
                self._record_takers.remove(taker)

    async def _record_round(self) -> None:
        """One look for every take_record waiting here, in their order of arrival, at
        the candidates of each read from Redis at one instant: the first taker a record
        matches takes it.  A round runs once every change this process was told of."""
        async with self._record_rounds:
            with self._guard:
                changes = self._record_changes
                takers = [t for t in self._record_takers if t.result is None and t.error is None]
                if all(t.covered for t in takers) and self._round_changes >= changes:
                    return
            groups: list[Any] = [BATCH]
            for taker in takers:
                groups.extend((0, *record_candidates(taker.template), ""))
            reply = await self._call("rscan", groups)
            taken: set[int] = set()
            for taker, group in zip(takers, reply, strict=True):
                found, more = _matches(group, taker.template, path_prefix(taker.under))
                with self._guard:
                    if taker.error is not None:  # it ended meanwhile
                        continue
                    taker.busy = True
                got = None
                try:
                    for rid, version, path, fields in found:
                        if rid not in taken:
                            taken.add(rid)  # changed since the scan, it is looked at in the next round
                            got = (await self._take_changed(rid, version, path, fields, taker.tx))[0]
                            if got is not None:
                                break
                    if got is None and more is not None:  # more candidates than one scan brings
                        got = await self._take_record(taker.template, taker.under, more, taker.tx)
                except TransactionAborted as exc:  # its claim ended: it alone fails
                    taker.error = exc
                finally:  # also when the round fails: the taker waits, or times out, again
                    with self._guard:
                        taker.covered, taker.busy, taker.result = True, False, got
                        taker.wake.set()
            with self._guard:
                self._round_changes = max(self._round_changes, changes)
                for t in self._record_takers:
                    t.wake.set()

    def watch_records(
        self,
        under: str | None = None,
        events: Iterable[str] = CHANGE_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> AsyncRedisRecordWatch:
        """The changes of every record below ``under`` (None: all), of the kinds in
        ``events``, from every process, read from the space's log in Redis; arguments
        as for :meth:`subscribe`."""
        self._check_open()
        kinds = frozenset({events} if isinstance(events, str) else events)
        if not kinds or not kinds <= CHANGE_KINDS:
            raise InvalidValue(
                f"events must be a non-empty subset of {sorted(CHANGE_KINDS)}, got {sorted(kinds)}"
            )
        watch = AsyncRedisRecordWatch(
            self.core,
            None,
            None,
            path_prefix(under),
            kinds,
            check_since(since),
            check_max_pending(max_pending),
            check_lease(lease),
        )
        return opened_later(watch)

    async def grant_credit(self, principal: str, amount: Credit | int | str) -> Credit:
        """Add ``amount`` to the credit account of ``principal``; its new balance.  A
        space kept in Redis counts credit to 1e-9, and holds at most 2**62 of those in
        an account."""
        check_principal(principal)
        return _balance(
            await self._call("grant", [principal, nanos(amount, "amount"), MAX_ACCOUNTS, MOST_NANOS])
        )

    async def credit_challenge(self) -> Challenge:
        """The challenge to make proof-of-work stamps on, the one every process is given
        for ``CHALLENGE_SECONDS`` (see :meth:`tuplespace.Space.credit_challenge`);
        :class:`~tuplespace.Forbidden` if the space mints no credit."""
        self._check_minting()
        text, left = await self._call("challenge", [secrets.token_hex(16), _ms_int(CHALLENGE_SECONDS)])
        options = self._options
        return Challenge(
            text.decode(), options.mint_bits, options.mint_amount, time.time() + int(left) / 1000
        )

    async def mint_credit(self, challenge: str, nonce: str, *, principal: str = DEFAULT_PRINCIPAL) -> Credit:
        """Mint the space's ``mint_amount`` into ``principal``'s account for a stamp on a
        challenge it gave out, once (see :meth:`tuplespace.Space.mint_credit`): Redis
        keeps the stamps spent on a challenge as long as it accepts the challenge.  The
        new balance."""
        self._check_minting()
        check_principal(principal)
        if not isinstance(challenge, str) or not challenge.isascii() or len(challenge) > MAX_CHALLENGE:
            raise stale_challenge()
        bad: InvalidValue | None = None
        try:  # told after the challenge, as an embedded space tells it
            check_stamp(challenge, nonce, self._options.mint_bits)
        except InvalidValue as exc:
            bad = exc
        amount = nanos(self._options.mint_amount, "mint_amount")
        args = [nonce if bad is None else "", principal, amount, MAX_STAMPS, MAX_ACCOUNTS, MOST_NANOS]
        reply = await self._call("mint", [challenge, *args, "" if bad is None else "bad"])
        if reply[0] == b"stale":
            raise stale_challenge()
        if bad is not None:
            raise bad
        if reply[0] == b"spent":
            raise spent_stamp()
        if reply[0] == b"exhausted":
            raise stamps_exhausted()
        return _balance(reply)

    def _check_minting(self) -> None:
        if not self._options.mint_amount:
            raise Forbidden("this space mints no credit (its mint_amount is 0)")

    async def account(self, principal: str) -> Credit:
        """The credit of ``principal`` (0 for an account never granted any)."""
        check_principal(principal)
        return from_nanos(await self._call("account", [principal]))

    async def transfer_credit(self, source: str, target: str, amount: Credit | int | str) -> Credit:
        """Move ``amount`` (more than 0) from the account of ``source`` to that of
        ``target``, at once, all or nothing; the new balance of ``source``
        (:class:`~tuplespace.InsufficientCredit` if it holds less)."""
        check_principal(source)
        check_principal(target)
        credit = to_credit(amount, "amount")
        if not credit:
            raise InvalidValue("a transfer moves an amount of credit more than 0", "amount")
        units = nanos(credit, "amount")
        reply = await self._call("transfer", [source, target, units, MAX_ACCOUNTS, MOST_NANOS])
        _paid(source, [*reply, units])
        return _balance(reply)

    # -- leases ---------------------------------------------------------------------------------------

    async def _renew(self, seq: int, seconds: float | None) -> float | None:
        reply = await self._call("renew", [seq, lease_ms(check_lease(seconds))])
        if not reply[0]:
            raise UnknownLease(f"tuple {seq} is no longer in the space (taken, expired or cancelled)")
        return _seconds(reply[1])

    async def _cancel(self, seq: int) -> None:
        if not await self._call("cancel", [seq]):
            raise UnknownLease(f"tuple {seq} is no longer in the space (taken, expired or cancelled)")

    # -- partitions ---------------------------------------------------------------------------------

    def _serving(self, template: Template | None) -> list[AsyncRedisSpace]:
        """The partitions that can hold matches of ``template`` (None: every partition)."""
        return [self]

    def _keeper(self, t: Tuple) -> AsyncRedisSpace:
        """The partition that keeps the checked tuple ``t``."""
        return self

    def _log_parts(self, template: Template | None) -> list[_Part]:
        """The partitions whose events can be of tuples matching ``template`` (None:
        every tuple), numbered."""
        return [(0, self.core)]

    # -- calls waiting in this process ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SpaceClosed("the space is closed")

    def _check_waiters(self) -> None:
        self._check_open()
        most = self._options.max_waiters
        if self._waiters.count + len(self._writers) + self._handed_takers + len(self._record_takers) >= most:
            raise LimitReached(
                f"{most} calls are waiting already, the most allowed", limit="max_waiters", maximum=most
            )

    def _add_subscription(self, subscription: AsyncLogReader[Any], wake: AsyncWake) -> None:
        with self._guard:
            self._check_open()
            most = self._options.max_subscribers
            if len(self._subscriptions) >= most:
                raise LimitReached(
                    f"{most} subscriptions are open already, the most allowed",
                    limit="max_subscribers",
                    maximum=most,
                )
            self._subscriptions[subscription] = wake

    def _subscribers(self) -> list[AsyncLogReader[Any]]:
        with self._guard:
            return list(self._subscriptions)

    def _remove_subscription(self, subscription: AsyncLogReader[Any]) -> None:
        with self._guard:
            self._subscriptions.pop(subscription, None)

    def _add_waiter(
        self, template: Template, take: bool, wake: AsyncWake | None = None, tx: str = ""
    ) -> Waiter[AsyncWake]:
        """File a call waiting here (inside the transaction ``tx``, if not ''):
        TransactionAborted if that transaction has ended already, which a call that
        began in it before it ended but files its wait after would otherwise miss."""
        with self._guard:
            self._check_waiters()
            if tx and tx not in self._transactions.values():
                raise TransactionAborted("the transaction was aborted")
            waiter = Waiter(next(self._arrivals), template, take, wake or AsyncWake())
            waiter.tx = tx
            self._waiters.add(waiter)
            waiter.filed = True
        return waiter

    def _end_waits(self, tx: str, error: TupleSpaceError) -> None:
        """End the calls waiting here inside the transaction ``tx``, with ``error``."""
        with self._guard:
            self._fail_waits(tx, error)

    def _fail_waits(self, tx: str, error: TupleSpaceError) -> None:
        """:meth:`_end_waits`, the guard held."""
        for w in self._waiters:
            if w.tx == tx:
                w.error = error
                w.wake.set()

    def _refile(self, waiter: Waiter[AsyncWake]) -> None:
        """File again a reader handed a tuple, to wait for the next one."""
        with self._guard:
            self._check_open()
            if not waiter.filed:
                waiter.result = None
                self._waiters.add(waiter)
                waiter.filed = True

    def _remove_waiter(self, waiter: Waiter[AsyncWake]) -> None:
        with self._guard:
            if waiter.filed:
                self._waiters.remove(waiter)
                waiter.filed = False
            offer, waiter.offer = waiter.offer, None
            if offer is not None:  # offered, but not taken by this call: the next may take it
                self._offer(*offer)
                for wake in self._yielding:
                    wake.set()
            if waiter.group:  # what it left (past its limit) is for the takers after it
                self._groups.remove(waiter)
                for w in self._waiters:
                    if w.take:
                        w.wake.set()

    def _add_writer(self, wake: AsyncWake | None = None) -> Writer[AsyncWake]:
        with self._guard:
            self._check_waiters()
            writer = Writer(AsyncWake() if wake is None else wake)
            self._writers.append(writer)
        return writer

    def _remove_writer(self, writer: Writer[AsyncWake], wrote: bool) -> None:
        with self._guard:
            if writer.filed:  # not timed out by the clock
                self._writers.remove(writer)
                writer.filed = False
            self._room(writer.room + max(writer.trying - wrote, 0))  # the room it did not use

    async def _listen(self) -> None:
        """Make sure this process listens on the space's channel."""
        async with self._listening:
            if self._listener is not None:
                return
            self._check_open()
            if self._options.cluster:
                node = self._redis.get_node_from_key(self._channel)
                old, self._subscriber = (
                    self._subscriber,
                    Redis(host=node.host, port=node.port, **self._connection),
                )
                if old is not None:
                    await old.aclose()
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.ssubscribe(self._channel)
                # Once Redis confirms the subscription, every later write reaches this process.
                confirmed = await pubsub.get_message(timeout=CONNECT_TIMEOUT)
                if confirmed is None or confirmed["type"] != "ssubscribe":
                    raise Unreachable(f"Redis at {self._options.shown} did not confirm a subscription")
            except Exception as exc:
                await pubsub.aclose()
                # A close() meanwhile shut the subscriber's connections under this wait,
                # which redis-py then reports as it may (a TypeError, say): SpaceClosed.
                if isinstance(exc, (RedisError, Unreachable)) or self._closed:
                    raise connection_error(self._options, exc, self._closed) from exc
                raise
            with self._guard:
                closed = self._closed
                if not closed:
                    self._pubsub = pubsub
                    self._listener = AsyncBackground(self._receive)
            if closed:
                await pubsub.aclose()
                self._check_open()

    async def _receive(self) -> None:
        """The listener: hand what is published to the calls waiting here."""
        pubsub = self._pubsub
        try:
            while not self._closed:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_SLICE)
                if message is not None and message["type"] == "smessage":
                    with self._guard:
                        self._dispatch(message["data"])
            with self._guard:  # not while close() closes it (redis-py's close is not thread-safe)
                await pubsub.aclose()  # closed already, but for a connection a cut-off read made again
        except Exception as exc:
            with self._guard:
                if self._closed:
                    return  # close() has ended the subscription and tells the waiting calls
                self._listener = None
                self._pubsub = None
                error = connection_error(self._options, exc, False)
                for w in [*self._waiters, *self._writers, *self._record_takers]:
                    w.error = error
                    w.wake.set()
                for wake in self._subscriptions.values():
                    wake.set()  # its next read of the log meets the error
            await pubsub.aclose()

    def _dispatch(self, data: bytes) -> None:
        for wake in self._subscriptions.values():
            wake.set()  # the change was logged: read on
        head, _, body = data.partition(b" ")
        if head == b"r":
            self._room(int(body))
        elif head == b"R":  # a record changed: the takers waiting here look again, in turn
            self._record_changes += 1
            for waiting in self._record_takers:
                waiting.wake.set()
        elif (
            head == b"c"
        ):  # a capability was revoked, or the clock moved (to ``body`` ms): the readers look again
            if body:
                self._clock_moved(float(body))
        elif head == b"a":  # a transaction's lease ran out in Redis, which aborted it
            error = TransactionAborted("the transaction was aborted: its lease ran out")
            self._fail_waits(body.decode(), error)
        elif self._waiters.count:
            seq, _, taker = head.partition(b">")
            if not taker:
                self._offer(int(seq), decode_tuple(body))
            else:  # handed to a take waiting in Redis, maybe from this process
                name, _, arrival = taker.decode().partition(":")
                self._offer(int(seq), decode_tuple(body), int(arrival) if name == self._name else None)

    def _offer(self, seq: int, t: Tuple, taken: int | None = 0) -> None:
        """Hand ``t`` to the readers waiting for it and offer it to the first taker, in
        arrival order (readers that came after that taker do not see it).  ``taken``:
        the tuple was handed over in Redis already, to a take of another process (None)
        or to the one of this process that arrived ``taken``-th."""
        for w in self._waiters.matching(t):
            if taken != 0 and (w.take or (taken is not None and w.seq > taken)):
                return
            if not w.take:
                w.result = t
                self._waiters.remove(w)
                w.filed = False
                w.wake.set()
            elif w.offer is None:
                w.offer = (seq, t)
                w.wake.set()
                return
            elif w.group:  # it takes every match when it looks: the takers after it wait
                return

    def _room(self, n: int) -> None:
        """Tell the first writer waiting here that ``n`` tuples left the space."""
        if n > 0 and self._writers:
            first = self._writers[0]
            first.room += n
            first.wake.set()

    # -- calls to Redis -----------------------------------------------------------------------------

    async def _call(self, script: str, args: list[Any]) -> Any:
        self._check_open()
        try:
            return await self._run(script, args)
        except Exception as exc:  # the space closed meanwhile may have cut the connection
            if self._closed or isinstance(exc, _FAILURES):
                raise connection_error(self._options, exc, self._closed) from exc
            raise

    def _fcall(self, script: str, args: list[Any]) -> tuple[Any, ...]:
        """The command that runs ``script`` on the space's keys (given the clock, in a
        partition of a partitioned space)."""
        clock = self._clock
        keys = (1, self._key) if clock is None else (2, self._key, f"{self._key}:{clock.seq}")
        return ("FCALL", FUNCTIONS[script], *keys, *args)

    async def _run(self, script: str, args: list[Any]) -> Any:
        command = self._fcall(script, args)
        try:
            return await self._send(command, True)
        except ResponseError as exc:
            if not unknown_function(exc):
                raise
            await self._load_library()
            return await self._send(command, True)

    async def _load_library(self) -> None:
        """Load the library of the scripts in a Redis that does not know it yet, or lost it
        (on a Cluster, in the master of the space's slot)."""
        loader = self._redis if self._master is None else self._master
        await loader.function_load(LIBRARY, replace=True)

    async def _send(
        self,
        command: tuple[Any, ...],
        script: bool = False,
        then: tuple[Any, ...] = (),
        answered: Callable[[Any], None] | None = None,
    ) -> Any:
        """Send one command and read its answer on a connection of the pool kept here
        between calls (on a Cluster, of the master of the space's slot), followed by a
        read of the partition's latest seq after a ``script`` in a partitioned space, by
        the command ``then`` if any (the answer is then both answers; ``answered`` is
        given the first as soon as it is read) and by a WAIT for a replica with
        ``durability=replicated``."""
        more = [pack(then)] if then else []
        tail = [*self._clock_read, *more, *self._replica_wait] if script else [*more, *self._replica_wait]
        if self._idle_pid != os.getpid():
            self._idle, self._idle_pid = [], os.getpid()
        # The idle connections of this pool: a master forgotten meanwhile takes its list along.
        pool, idle = self._pool, self._idle
        if pool is None:
            pool, idle = await self._master_pool()
        try:
            connection = idle.pop()
        except IndexError:
            try:
                connection = await pool.get_connection()
            except BaseException:
                if self._master is not None:
                    await self._forget_master()
                raise
        try:
            await connection.send_packed_command([pack(command), *tail], check_health=False)
            try:
                reply = await connection.read_response()
            except ResponseError:
                for _ in tail:  # the answers that follow
                    await connection.read_response()
                raise
            if answered is not None:
                answered(reply)
            latest = await connection.read_response() if script and self._clock_read else None
            after = await connection.read_response() if then else None
            acknowledged = await connection.read_response() if self._replica_wait else 1
        except ResponseError as exc:  # Redis answered: the connection is fine
            if self._master is not None and str(exc).startswith(("MOVED", "ASK")):
                await self._forget_master()
            raise
        except BaseException:
            await connection.disconnect()  # it connects again when next used
            if self._master is not None:
                await self._forget_master()
            raise
        finally:
            idle.append(connection)
        if latest is not None and self._clock is not None:
            self._clock.advance(int(latest))
        if acknowledged < 1:
            raise StoreError(
                f"no replica acknowledged the change to space {self._options.space!r} within "
                f"{REPLICA_WAIT} s (durability=replicated): it was made on the master only, "
                f"and is lost if that master fails before a replica has it"
            )
        return (reply, after) if then else reply

    async def _master_pool(self) -> tuple[Any, list[Any]]:
        """The pool of connections to the master of the space's slot on a Cluster, and
        its idle connections: each command is packed and sent as on a single Redis, and
        a WAIT follows on the connection that made the change."""
        if self._master is None:
            host, port = await AsyncClient.master_of(self._redis, self._key, self._master_failed)
            with self._guard:
                if self._master is None:
                    self._master = Redis(host=host, port=port, **self._calls)
                    self._idle = []
        with self._guard:
            master, idle = self._master, self._idle
        if master is None:  # forgotten meanwhile, by a call that failed
            raise Unreachable(
                f"the master of space {self._options.space!r} failed: the next call asks the Cluster"
            )
        return master.connection_pool, idle

    async def _forget_master(self) -> None:
        """The master of the slot failed or moved it: the next call asks the Cluster."""
        with self._guard:
            master, self._master = self._master, None
            self._idle, self._master_failed = [], True
        if master is not None:
            await master.aclose()

    async def _find_and_pop(
        self, args: list[Any], key: str, seconds: float, most: int | None, answered: Callable[[Any], None]
    ) -> tuple[Any, list[bytes] | None]:
        """The reply of the script ``find`` for a take waiting in Redis (given to
        ``answered`` as soon as it is read), and what the pop of ``key`` sent after it,
        on the same connection, popped (up to ``most`` entries, None: all; waiting up to
        ``seconds``; None: nothing).  (None, None) if Redis did not know the scripts (the
        pop waited in vain): the next call looks first, then pops."""
        self._check_open()
        try:
            pop = _pop_command(key, seconds, most)
            reply, got = await self._send(self._fcall("find", args), True, pop, answered)
        except Exception as exc:
            if isinstance(exc, ResponseError) and unknown_function(exc):
                self._pops_after_find = False
                return None, None
            if self._closed or isinstance(exc, _FAILURES):
                raise connection_error(self._options, exc, self._closed) from exc
            raise
        return reply, _popped(got)

    async def _pop(self, key: str, seconds: float, most: int | None) -> list[bytes] | None:
        """Pop up to ``most`` entries (None: all) of ``key``, waiting up to ``seconds``
        for one: what it held, or None."""
        return _popped(await self._command(*_pop_command(key, seconds, most)))

    async def _command(self, *command: Any) -> Any:
        """The answer of Redis to one command other than a script."""
        self._check_open()
        try:
            return await self._send(command)
        except Exception as exc:  # the space closed meanwhile may have cut the connection
            if self._closed or isinstance(exc, _FAILURES):
                raise connection_error(self._options, exc, self._closed) from exc
            raise

    async def _ping(self) -> None:
        """Make sure the Redis that holds the space answers (Unreachable if not), once
        in HANDOVER_WAIT seconds for all the calls waiting here, running out the leases
        that have ended meanwhile: a transaction's gives back what it held, which wakes
        the calls waiting for it."""
        now = time.monotonic()
        if now - self._pinged >= HANDOVER_WAIT:
            self._pinged = now
            await self._call("expire", [])

    async def _wait(self, wake: AsyncWake, deadline: float | None) -> None:
        """Wait until ``wake`` is set or ``deadline`` (None: no limit) has come, asking
        Redis every HANDOVER_WAIT seconds whether it still answers: a Redis that stops
        answering is an error within 2 HANDOVER_WAIT and CONNECT_TIMEOUT more, not a
        wait without end."""
        while True:
            left = self._left(deadline)
            if left is not None and left <= 0:
                return
            if self._follower is not None:  # its advances wake the calls whose deadline they pass
                left = None
            if await wake.wait(HANDOVER_WAIT if left is None else min(left, HANDOVER_WAIT)):
                return
            await self._ping()

    # -- life cycle -------------------------------------------------------------------------------

    async def statistics(self) -> dict[str, Any]:
        """Counts of the space's tuples (in Redis) and of the calls waiting in this process."""
        with self._guard:
            local = {
                "subscribers": len(self._subscriptions),
                "waiters": self._waiters.count + len(self._writers) + self._registered_takers,
                "waiting_writers": len(self._writers),
                "record_takers": len(self._record_takers),
                "records_held": 0,
                "capacity": self._options.capacity,
                "order": self._options.order,
                "closed": self._closed,
            }
        if self._closed:
            return local
        (
            tuples,
            leased,
            expired,
            cancelled,
            last_event,
            logged,
            logged_bytes,
            txns,
            commits,
            aborts,
            records,
            capabilities,
            accounts,
            takes,
            reads,
            records_expired,
            redirections,
            arities,
        ) = await self._call("statistics", [DEFAULT_LIMITS.max_fields])
        return {
            "takes": int(takes),
            "reads": int(reads),
            "arities": arities,
            "records": records,
            "records_expired": int(records_expired),
            "redirections": redirections,
            "capabilities": capabilities,
            "accounts": accounts,
            "transactions": txns,
            "commits": int(commits),
            "aborts": int(aborts),
            "tuples": tuples,
            "leased_tuples": leased,
            "expired": int(expired),
            "cancelled": int(cancelled),
            "last_event": int(last_event),
            "logged_events": logged,
            "logged_bytes": int(logged_bytes),
            **local,
        }

    async def close(self) -> None:
        """Stop using the space (its tuples stay in Redis): waiting calls raise
        :class:`~tuplespace.SpaceClosed`, as does every later call."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            error = SpaceClosed("the space was closed while waiting")
            for w in [*self._waiters, *self._writers, *self._record_takers]:
                w.error = error
                w.wake.set()
            subscriptions = list(self._subscriptions)
            transactions = [tx_id for tx_id in self._transactions.values() if tx_id]
            tokens = list(self._tokens)
            pubsub, listener = self._pubsub, self._listener
        self._lease_tick.set()
        if self._lease_timer is not None:
            await self._lease_timer.stop()
        if self._rules is not None:
            await self._rules.close()
        if self._follower is not None:
            self._follower.close()
        for subscription in subscriptions:
            await subscription.close()
        for tx_id in transactions:  # abort, giving back what they hold (each sees the space closed)
            with contextlib.suppress(Exception):
                await self._run("abort", [tx_id])
        for token in tokens:  # wake the takes waiting in Redis, giving back what was handed to them
            with contextlib.suppress(Exception):
                await self._run("unwait", [token, "close"])
        if pubsub is not None:
            with self._guard:  # not while the listener closes it too
                await pubsub.aclose()  # ends the listener's wait for a message
        if listener is not None:
            await listener.stop()
        if self._subscriber is not None:
            await self._subscriber.aclose()
        if self._master is not None:
            await self._master.aclose()
        if self._owns_client:
            await AsyncClient.close(self._redis)

    async def __aenter__(self) -> AsyncRedisSpace:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncRedisSpace({self._options.shown!r}, space={self._options.space!r})"


class AsyncPartitionedRedisSpace(AsyncRedisSpace):
    """A space kept in Redis spread over ``partitions`` hash slots (so over the masters
    of a Cluster) by the value of its field ``route``: what
    ``redis+cluster://host:port?space=jobs&partitions=16&route=1`` opens.  Each
    partition is a space of its own in Redis (keys ``{ts:jobs}``, ``{ts:jobs:1}``, ...),
    with its own order, leases, waiting takes and event log; a tuple is kept in the
    partition of the SHA-1 of its route field's encoding (the first one if it has no
    such field).

    A template with an exact value at the route field is served by its partition
    alone, as by an unpartitioned space.  Any other is served across every partition,
    in turn from the first: the space's order holds within each partition, not across
    them.  Such a read or take can wait: it is filed among the waiting calls of each
    partition, in its arrival order there, and takes at most one tuple, in one
    partition.  Counts, ``read_all`` and ``take_all`` sum and join the partitions.
    ``write_many`` writes the tuples of each partition at once (all or none in each
    partition).  A subscription gets the events of every partition its template can
    match, in one order every process sees alike (the seq ``k`` of partition ``p`` is
    ``k * partitions + p``; a partition's seqs are a Lamport clock, so a process's
    changes come in the order it made them); ``since`` resumes it in any process.
    ``replace`` keeps the route field's value (atomic in its partition);
    ``write_if_absent`` is atomic when its template can match in the tuple's partition
    only.  A write into a partitioned space with a capacity reserves room in the
    first partition first, and stores the counts of the partitions it wrote in there
    after (two scripts more).  Its rules are kept in the first partition and react to
    the events of every partition in the space's order, each firing decided there in one
    step (see :class:`AsyncRedisRules`).
    See ``docs/scaling.md``, "Partitions".
    """

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        # This object holds the client the partitions share, and closes it last.
        self._parts = [
            AsyncRedisSpace(options, i, self._redis, self._clock, self.core)
            for i in range(options.partitions)
        ]
        # The waiters filed in the partitions for each call waiting across them, and how
        # many of those calls have looked once and wait (each counts as one waiter).
        self._across: list[list[Waiter[AsyncWake]]] = []
        self._waiting_across = 0
        # How many writes wait here for room, each filed in every partition.
        self._writing = 0

    def _serving(self, template: Template | None) -> list[AsyncRedisSpace]:
        if template is None:
            return self._parts
        i = route_of_template(template, self._options)
        return self._parts if i is None else [self._parts[i]]

    def _keeper(self, t: Tuple) -> AsyncRedisSpace:
        return self._parts[route_of_tuple(t, self._options)]

    def _log_parts(self, template: Template | None) -> list[_Part]:
        i = None if template is None else route_of_template(template, self._options)
        numbers = range(len(self._parts)) if i is None else [i]
        return [(n, self._parts[n].core) for n in numbers]

    async def _write(
        self,
        items: list[str | bytes],
        lease: float | None,
        timeout: float | None,
        guard: tuple[str, int] = ("", 0),
        reservation: str = "",
        reading: list[Any] | None = None,
    ) -> list[AsyncLease] | None:
        """Write the encoded tuples, those of each partition at once, in the order of
        their partitions' first tuples; their leases in the order given.  In a space
        with a capacity, wait up to ``timeout`` for room for them (see :meth:`_admit`)."""
        groups: dict[int, list[str | bytes]] = {}
        places: list[tuple[int, int]] = []
        for i in range(0, len(items), 2):
            data = items[i]
            assert isinstance(data, bytes)
            n = route_of_tuple(decode_tuple(data), self._options)
            group = groups.setdefault(n, [])
            places.append((n, len(group) // 2))
            group += items[i : i + 2]
        written: dict[int, list[AsyncLease]] = {}
        if self._options.capacity is not None:
            todo = {n: len(group) // 2 for n, group in groups.items()}

            async def attempt(mark: str, readings: list[Any]) -> None:
                for n in list(todo):
                    reading: list[Any] = [n]
                    leases = await self._parts[n].core.write(groups[n], lease, 0, ("", 0), mark, reading)
                    if leases is None:  # the reservation was cancelled: reserve again
                        return
                    readings += reading
                    written[n] = leases
                    del todo[n], groups[n]

            await self._admit(todo, attempt, timeout)
        for n, group in groups.items():
            leases = await self._parts[n].core.write(group, lease, timeout, guard, reservation, reading)
            assert leases is not None  # no guard: none is refused
            written[n] = leases
        return [written[n][k] for n, k in places]

    async def _admit(
        self, todo: dict[int, int], attempt: Callable[[str, list[Any]], Any], timeout: float | None
    ) -> None:
        """Make room in the space with a capacity for the tuples ``todo`` (how many in
        each partition), waiting up to ``timeout`` for it, and ``attempt`` their writes
        (given the reservation's mark; it drops from ``todo`` what it wrote and adds
        to the list given a reading of each partition it wrote in: its number, its count
        and the number of that reading, see ``cap_count``).  Room is reserved in the
        first partition (with a lease, so that the room a process that died held comes
        back), the tuples are written with that reservation, then the counts of their
        partitions are stored there and the reservation ends.  A reservation whose lease ran
        out is cancelled in its partitions by a writer that finds the space full; a
        write of a cancelled reservation is refused and reserves again, for the
        partitions it has not written yet."""
        home = self._parts[0].core
        deadline = self._deadline(timeout)
        wake: AsyncWake | None = None
        writers: list[tuple[AsyncRedisCore, Writer[AsyncWake]]] = []
        waiting = False  # filed in every partition: a waiting writer
        counted = False  # the counts were read since the space was last found full
        soonest = -1.0  # the ms until a tuple's lease ends in a partition (-1: none)
        try:
            while todo:
                n = sum(todo.values())
                mark = secrets.token_hex(8)
                token = f"{mark} {n} {','.join(map(str, todo))}"
                reply = await home.call("cap_reserve", [token, RESERVATION_LEASE])
                if reply[0] == b"ok":
                    readings: list[Any] = []
                    try:
                        await attempt(mark, readings)
                    except BaseException:  # what was written is not known: count them all
                        await self._count(token, token.split()[2].split(","))
                        raise
                    await home.call("cap_settle", [token, *readings])
                    continue
                stale = [r.decode() for r in reply[2:]]
                for r in stale:  # their writers may have died: their room comes back
                    await self._count(r, r.split()[2].split(","), cancel=True)
                if stale:
                    continue
                if not counted:  # the counts may be old: read them, then try again
                    if wake is not None:  # what is taken after this reading wakes it
                        wake.clear()
                    soonest = await self._count("", [])
                    counted = True
                    continue
                capacity = self._options.capacity
                if timeout == 0:
                    what = "the tuple does not fit" if n == 1 else f"{n} tuples do not fit"
                    raise SpaceFull(
                        f"{what}: the space holds {capacity}, its capacity",
                        limit="capacity",
                        maximum=capacity or 0,
                    )
                if wake is None:  # filed in every partition: a removal in any wakes it
                    wake = AsyncWake()
                    for part in self._parts:
                        writers.append((part.core, part.core.add_writer(wake)))
                        await part.core.listen()
                    with self._guard:
                        self._writing += 1
                        waiting = True
                    counted = False
                    continue
                if self._passed(deadline):
                    raise Timeout("the space stayed full: no room for the tuple in time")
                until = deadline
                for soon in (float(reply[1]), soonest):  # a lease that ends makes room too
                    if soon >= 0:
                        ends = self._now() + soon / 1000.0
                        until = ends if until is None else min(until, ends)
                await home.wait(wake, until)
                counted = False
                for _, writer in writers:
                    if writer.error is not None:
                        raise writer.error
        finally:
            with self._guard:
                self._writing -= waiting
            for core, writer in writers:
                core.remove_writer(writer, False)

    async def _count(self, reservation: str, parts: list[str], cancel: bool = False) -> float:
        """Count the tuples of the partitions ``parts`` in the first partition and end
        the ``reservation`` ('': none; every partition is counted then), cancelling it
        in those partitions first if ``cancel``; the ms until the next lease of a tuple
        there ends (-1: none)."""
        readings: list[Any] = []
        soonest = -1.0
        for q in parts if reservation else [str(q) for q in range(len(self._parts))]:
            live, number, soon = await self._parts[int(q)].core.call(
                "cap_count", [reservation.split()[0] if cancel else ""]
            )
            readings += (q, live, number)
            if float(soon) >= 0 and (soonest < 0 or float(soon) < soonest):
                soonest = float(soon)
        await self._parts[0].core.call("cap_settle", [reservation, *readings])
        return soonest

    async def _recount(self) -> None:
        if self._options.capacity is not None:
            await self._count("", [])

    async def write(
        self, t: Iterable[Value], lease: float | None = None, timeout: float | None = None
    ) -> AsyncLease:
        """Write the tuple ``t`` into its partition; see :meth:`tuplespace.Space.write`."""
        checked, data, keys = encode_tuple(t)
        write = self._write if self._options.capacity is not None else self._keeper(checked).core.write
        leases: list[AsyncLease] | None = await write(
            [data, keys], check_lease(lease), check_timeout(timeout), ("", 0), "", None
        )
        assert leases is not None
        return leases[0]

    def _ids(self, tx: str) -> list[str]:
        """The ids in each partition of the transaction ``tx`` ('': none)."""
        return tx.split(",") if tx else [""] * len(self._parts)

    def _serving_ids(self, template: Template, tx: str) -> list[tuple[AsyncRedisSpace, str]]:
        """The partitions that can hold matches of ``template``, each with the id there
        of the transaction ``tx``."""
        serving = self._serving(template)
        return [(part, i) for part, i in zip(self._parts, self._ids(tx), strict=True) if part in serving]

    async def _select(
        self, template: Template, take: bool, limit: int | None, tx: str = ""
    ) -> list[tuple[int, Tuple]]:
        found: list[tuple[int, Tuple]] = []
        for part, tx_id in self._serving_ids(template, tx):
            found += await part.core.select(
                template, take, None if limit is None else limit - len(found), tx_id
            )
            if limit is not None and len(found) >= limit:
                break
        return found

    async def _begin(
        self, tx: AsyncRedisTransaction, lease: float, claim: list[str]
    ) -> tuple[str, float | None]:
        """Begin ``tx`` in every partition: its ids there joined by commas, and the
        soonest of its expiries.  Each partition holds what it took there, and gives
        it back when its lease there runs out."""
        ids: list[str] = []
        expiries: list[float] = []
        try:
            for part in self._parts:
                tx_id, expires = await part.core.begin(tx, lease, claim)
                ids.append(tx_id)
                if expires is not None:
                    expiries.append(expires)
        except BaseException:  # what began gives nothing back: nothing was taken yet
            self._end_transaction(tx)
            with contextlib.suppress(TupleSpaceError):
                for part, tx_id in zip(self._parts, ids, strict=False):
                    await part.core.call("abort", [tx_id])
            raise
        return ",".join(ids), min(expiries, default=None)

    def _end_transaction(self, tx: AsyncRedisTransaction) -> None:
        for part in self._parts:
            part.core.end_transaction(tx)

    def _end_waits(self, tx: str, error: TupleSpaceError) -> None:
        for part, tx_id in zip(self._parts, self._ids(tx), strict=True):
            part.core.end_waits(tx_id, error)

    def _time_lease(self, tx: AsyncRedisTransaction) -> None:
        for part in self._parts:
            part.core.time_lease(tx)

    async def _txn(self, script: str, tx_id: str, items: list[tuple[Tuple | None, list[Any]]]) -> Any:
        """Run ``script`` in each partition of the transaction with the items of that
        partition (those without a tuple in every partition), in turn from the first.
        A commit that one partition refuses (the transaction's lease ran out there)
        aborts the transaction in the partitions after it; the partitions before it have
        committed.  The replies of a commit, an abort or a release are 1 when every
        partition's is, of a renewal the soonest expiry (None if one is not open).  In a
        space with a capacity, the partitions are counted after a commit or an abort
        (what they wrote or put back holds room), and room is reserved for the writes of
        a commit first, without waiting: SpaceFull, and nothing committed, if there is
        none (see :meth:`_admit`)."""
        ids = self._ids(tx_id)
        groups: list[list[Any]] = [[] for _ in self._parts]
        for t, args in items:
            for n in range(len(self._parts)) if t is None else [route_of_tuple(t, self._options)]:
                groups[n] += args
        replies: list[Any] = []

        async def run(mark: str = "", readings: list[Any] | None = None) -> None:
            # An attempt of _admit that stores its own readings (_count), so it needs
            # neither the reservation's mark nor its list of readings.
            for part, tx, args in zip(self._parts, ids, groups, strict=True):
                if script == "commit" and replies and not replies[-1]:
                    await part.core.call("abort", [tx])
                    continue
                replies.append(await part.core.call(_committing(script, args), [tx, *args]))
            todo.clear()
            if self._options.capacity is not None and script in ("commit", "abort"):
                await self._count("", [])  # before the reservation of a commit ends

        todo = {n: len(group) // 3 for n, group in enumerate(groups) if group} if script == "commit" else {}
        if self._options.capacity is not None and todo:
            await self._admit(todo, run, 0)
        else:
            await run()
        if script == "renew_txn":
            return None if None in replies else min(replies, key=float)
        return int(all(replies))

    def _new_rules(self) -> AsyncRedisRules:
        """The rules, kept in the first partition, reacting to the events of every
        partition in the space's order (see :class:`AsyncRedisRules`)."""
        parts = self._log_parts(None)
        return AsyncRedisRules(
            self.core,
            latest=functools.partial(_latest_seq, parts),
            after=functools.partial(_events_after, parts),
        )

    def claim(self, tag: str, lease: float, remember: float) -> AsyncRedisTransaction:
        """Not for a partitioned space (no server hosts one): NotSupported."""
        raise NotSupported(
            f"claims on a space partitioned by field {self._options.route}: a server hosts spaces without "
            f"partitions"
        )

    async def count(self, template: Any) -> int:
        """How many tuples match ``template``, in every partition that can hold one."""
        compiled = compile_template(template)
        return sum([await part.count(compiled) for part in self._serving(compiled)])

    async def _block(
        self,
        template: Template,
        take: bool,
        timeout: float | None,
        tx: str = "",
        only_wait: bool = False,
        deadline: float | None = None,
    ) -> Tuple:
        deadline = self._deadline(timeout) if deadline is None else deadline
        parts = self._serving_ids(template, tx)
        if len(parts) == 1:
            part, tx_id = parts[0]
            found_there: Tuple = await part.core.block(template, take, timeout, tx_id, only_wait)
            return found_there
        found = await self._select(template, take, 1, tx)
        if found:
            return found[0][1]
        if timeout == 0:
            raise Timeout(f"no tuple matches {template.fields!r}")
        # A waiter filed in each partition, in its arrival order there, wakes this call
        # at a write to any of them; a take takes one tuple offered (the offers it does
        # not take pass on to the next takers when it ends), or looks in every partition.
        wake = AsyncWake()
        waiters: list[tuple[AsyncRedisSpace, Waiter[AsyncWake]]] = []
        filed: list[Waiter[AsyncWake]] = []
        self._across.append(filed)
        looked = False
        try:
            for part, tx_id in parts:
                waiters.append((part, part.core.add_waiter(template, take, wake, tx_id)))
                filed.append(waiters[-1][1])
                await part.core.listen()
            while True:
                wake.clear()
                for part, waiter in waiters:
                    if waiter.error is not None:
                        raise waiter.error
                    if not take:
                        if waiter.result is not None:
                            if not only_wait:
                                await part.core.call("tally", [1])
                            return waiter.result
                        part.core.refile(waiter)
                        continue
                    offered: Tuple | None = await part.core.take_offer(waiter)
                    if offered is not None:
                        return offered
                found = await self._select(template, take, 1, tx)
                if found:
                    return found[0][1]
                if self._passed(deadline):
                    raise Timeout(f"no tuple matched {template.fields!r} in time")
                if not looked:  # filed everywhere and looked everywhere: now it waits
                    looked = True
                    with self._guard:
                        self._waiting_across += 1
                await self._wait(wake, deadline)
        finally:
            with self._guard:
                self._waiting_across -= looked
                self._across.remove(filed)
            for part, waiter in waiters:
                part.core.remove_waiter(waiter)

    async def _take_group(
        self, template: Template, limit: int | None, timeout: float | None, tx: str
    ) -> list[tuple[int, Tuple]]:
        parts = self._serving(template)
        if len(parts) == 1:
            found_there: list[tuple[int, Tuple]] = await parts[0].core.group(
                template, True, limit, timeout, tx
            )
            return found_there
        return await self._await_group(template, True, limit, timeout, tx)  # across partitions: as a read

    async def _ping(self) -> None:
        for part in self._parts:
            await part.core.ping()

    async def write_if_absent(self, template: Any, t: Iterable[Value], lease: float | None = None) -> bool:
        """Write ``t`` only if no tuple matches ``template``; True if written.  Atomic
        when the template can match in the tuple's partition only; otherwise the other
        partitions the template can match in are looked in first, then the tuple's, as
        :meth:`AsyncRedisSpace.write_if_absent` does: a matching tuple written in another
        partition after it was looked in there is not seen (the window: the scripts
        that look in the partitions after it, and the write).  In a space with a
        capacity, room is reserved for it first (``SpaceFull`` at once if there is
        none and no tuple matches)."""
        compiled = compile_template(template)
        checked, _, _ = encode_tuple(t)
        keeper = self._keeper(checked)
        for part in self._serving(compiled):
            if part is not keeper and await part.count(compiled):
                return False
        if self._options.capacity is None:
            return await keeper.write_if_absent(compiled, checked, lease)
        if await keeper.count(compiled):
            return False
        n = route_of_tuple(checked, self._options)
        todo = {n: 1}
        written = False

        async def attempt(mark: str, readings: list[Any]) -> None:
            nonlocal written
            written = await keeper.write_if_absent(compiled, checked, lease)
            del todo[n]
            live, number, _ = await keeper.core.call("cap_count", [""])
            readings += (n, live, number)

        await self._admit(todo, attempt, 0)
        return written

    async def statistics(self) -> dict[str, Any]:
        """The counts of every partition, summed (``last_event``: the events of all of
        them), and ``partitions``."""
        if self._closed:
            return await super().statistics()
        each = [await part.statistics() for part in self._parts]
        total = each[0]
        for stats in each[1:]:
            for name in _SUMMED:
                total[name] += stats[name]
        total["last_event"] = (await _latest(self._log_parts(None), len(self._parts)))[0]
        total["arities"] = sorted({n for stats in each for n in stats["arities"]})
        # A subscription across partitions is one subscriber.
        readers = {r for part in self._parts for r in part.core.subscriptions()}
        total["subscribers"] = len(readers.union(self._subscriptions))
        # A call waiting across partitions is one waiter, once it has looked in each.
        with self._guard:
            total["waiters"] += self._waiting_across - sum(w.filed for filed in self._across for w in filed)
            # A write waiting for room is one waiting writer once it is filed in each
            # partition (the partitions' writers are those of such writes).
            total["waiters"] += self._writing - total["waiting_writers"]
            total["waiting_writers"] = self._writing
            # The records are the first partition's, their takers this object's.
            total["record_takers"] = len(self._record_takers)
        return {**total, "partitions": len(self._parts)}

    async def close(self) -> None:
        """Stop using the space (its tuples stay in Redis); see :meth:`AsyncRedisSpace.close`."""
        for part in self._parts:
            await part.close()
        await super().close()

    def __repr__(self) -> str:
        o = self._options
        where = f"{o.shown!r}, space={o.space!r}"
        return f"{type(self).__name__}({where}, partitions={o.partitions}, route={o.route})"


_Own = tuple[Tuple, bytes, str, str, int]
"""A write of a transaction until it commits: the tuple, its encoding, its index keys,
its lease in ms ('' for none) and its rank among the transaction's writes."""


def _rank(own: _Own) -> int:
    return own[4]


def _txn_lease(lease: float | None) -> float:
    """The lease of a transaction, in seconds: a positive number (InvalidValue if not)."""
    seconds = check_lease(lease)
    if seconds is None:
        raise InvalidValue(
            "a transaction of a space kept in Redis has a lease (a positive number of seconds), "
            "so that what it holds returns should its process die",
            "lease",
        )
    return seconds


MAX_TRANSACTION_BYTES = 16 * 1024 * 1024
"""Bytes of encodings the writes of one transaction of a space kept in Redis may hold
until it commits."""


class AsyncRedisTransaction(AsyncOpenable):
    """A transaction on a space kept in Redis; made by :meth:`AsyncRedisSpace.transaction`,
    with the meaning of :class:`~tuplespace.Transaction` (docs/semantics.md).

    Its takes move the tuples, in one script each, out of the space into a holding
    set in Redis that belongs to it; its writes wait in this process.  Commit is one
    script: it logs the take events of the tuples held, drops them, and writes its
    own tuples (their leases count from then).  Abort, or its lease running out in
    Redis's clock, puts every tuple held back at its place in the order: a process
    that dies with a transaction open loses nothing, since the next script that runs
    on the space after the lease has run out gives its tuples back.  Used with
    ``async with``, it commits when the block ends and aborts on an exception.
    """

    def __init__(self, space: AsyncRedisSpace, lease: float, claim: list[str] | None = None) -> None:
        self._space = space
        self._claim = claim or []  # a claim's tag and the ms its outcome is remembered
        self._core = space.core
        self._lease = lease
        self._opening = AsyncLock()
        self._id = ""  # its id in Redis, once begun
        self._expires: float | None = None
        self._deadline: float | None = None
        self._state = "active"
        # Its own writes, in order: tuple, encoding, index keys, lease, their rank.
        self._writes: list[_Own] = []
        self._bytes = 0
        self._ranks = itertools.count()
        self._waiting = 0  # calls waiting inside it

    @property
    def state(self) -> str:
        """``"active"``, ``"committed"`` or ``"aborted"`` (also once its lease has run out)."""
        if self._state == "active" and (self._core.closed() or self._ran_out()):
            self._state = "aborted"
        return self._state

    def _ran_out(self) -> bool:
        """Whether its lease has run out: on the simulated clock the space follows, if
        any, else in this process's time."""
        clock = self._core.clock()
        if clock is not None:
            return self._expires is not None and clock.now() >= self._expires
        return self._deadline is not None and time.monotonic() >= self._deadline

    @property
    def expires_at(self) -> float | None:
        return self._expires

    @property
    def deadline(self) -> float | None:
        """When its lease ends, in this process's monotonic clock (None until it has begun)."""
        return self._deadline

    async def _open(self) -> None:
        async with self._opening:
            if self._id or self._state != "active":
                return
            self._id, self._expires = await self._core.begin(self, self._lease, self._claim)
            self._deadline = time.monotonic() + self._lease
            self._core.time_lease(self)

    async def _check(self) -> None:
        await self._open()
        state = self.state
        if state == "aborted":
            raise TransactionAborted("the transaction was aborted")
        if state != "active":
            raise TransactionError(f"the transaction is {state}")

    def _end(self, state: str) -> None:
        self._state = state
        self._writes = []
        self._core.end_transaction(self)
        self._release_waits()

    def _release_waits(self) -> None:
        """End the calls waiting inside the transaction, which has ended."""
        if self._waiting:
            state = self._state
            error = TransactionAborted("the transaction was aborted while waiting")
            self._core.end_waits(
                self._id,
                error if state == "aborted" else TransactionError(f"the transaction {state} while waiting"),
            )

    async def _held(self, call: Any) -> Any:
        """The result of the awaitable ``call``; an abort seen in Redis ends this transaction."""
        try:
            return await call
        except TransactionAborted:
            self._end("aborted")
            raise

    async def write(self, t: Iterable[Value], lease: float | None = None) -> None:
        """Write ``t`` at commit; its ``lease`` counts from then."""
        await self.write_many([t], lease)

    async def write_many(self, tuples: Iterable[Iterable[Value]], lease: float | None = None) -> None:
        """Write several tuples at commit (all or none)."""
        await self._check()
        if self._claim:
            raise TransactionError("a claim holds takes only: it writes nothing")
        ms = lease_ms(check_lease(lease))
        added: list[_Own] = []
        size = self._bytes
        for i, t in enumerate(tuples):
            try:
                checked, data, keys = encode_tuple(t)
            except InvalidValue as exc:
                exc.path = f"tuples[{i}]{exc.path}"
                exc.args = (f"{exc.path}: {exc.reason}",)
                raise
            size += len(data) + len(keys)
            if size > MAX_TRANSACTION_BYTES:
                raise LimitReached(
                    f"a transaction holds at most {MAX_TRANSACTION_BYTES} bytes of writes until it commits",
                    limit="transaction_bytes",
                    maximum=MAX_TRANSACTION_BYTES,
                )
            added.append((checked, data, keys, ms, next(self._ranks)))
        self._writes += added
        self._bytes = size

    async def _pick(
        self, template: Template, take: bool, limit: int | None
    ) -> list[tuple[int | _Own, Tuple]]:
        """Up to ``limit`` matches among the space's tuples (taken for this transaction
        if ``take``) and its own writes, each with its id in the space or its write:
        after the space's in FIFO order, before them in LIFO order."""
        await self._check()
        own = [w for w in self._writes if template.matches(w[0])]
        lifo = self._core.options.order == "lifo"
        if lifo:
            own.reverse()
        found: list[tuple[int | _Own, Tuple]] = []

        def mine(n: int | None) -> list[tuple[int | _Own, Tuple]]:
            chosen = own if n is None else own[:n]
            if take:
                self._writes = [w for w in self._writes if not any(w is c for c in chosen)]
                self._bytes -= sum(len(c[1]) + len(c[2]) for c in chosen)
            return [(c, c[0]) for c in chosen]

        if lifo:
            found += mine(limit)
        left = None if limit is None else limit - len(found)
        if left != 0:
            found += await self._held(self._core.select(template, take, left, self._id))
        if not lifo:
            found += mine(None if limit is None else limit - len(found))
        return found

    async def _one(self, template: Any, take: bool, timeout: float | None) -> Tuple:
        compiled = compile_template(template)
        timeout = check_timeout(timeout)
        found = await self._pick(compiled, take, 1)
        if found:
            return found[0][1]
        if timeout == 0:
            raise Timeout(f"no tuple matches {compiled.fields!r}")
        self._waiting += 1
        try:
            found_later: Tuple = await self._held(
                self._core.block(compiled, take, self._bound(timeout), self._id, False)
            )
        except Timeout:
            self._check_lease()
            raise
        finally:
            self._waiting -= 1
        return found_later

    def _bound(self, timeout: float | None) -> float | None:
        """``timeout``, cut at the end of the transaction's lease (on a simulated clock,
        the abort in Redis as the clock passes it ends the wait: see _fail_waits)."""
        if self._deadline is None or self._core.clock() is not None:
            return timeout
        left = max(self._deadline - time.monotonic(), 0.0)
        return left if timeout is None else min(timeout, left)

    def _check_lease(self) -> None:
        """TransactionAborted if the transaction's lease has run out (a wait ended by it)."""
        if self.state == "aborted":
            self._end("aborted")
            raise TransactionAborted("the transaction's lease ran out while waiting: it was aborted")

    async def _all(
        self, template: Template, take: bool, limit: int | None, timeout: float | None
    ) -> list[tuple[int | _Own, Tuple]]:
        found = await self._pick(template, take, limit)
        if found or timeout == 0 or limit == 0:
            return found
        self._waiting += 1
        try:
            later: list[tuple[int | _Own, Tuple]] = await self._held(
                self._core.group(template, take, limit, self._bound(timeout), self._id)
            )
        finally:
            self._waiting -= 1
        if not later:
            self._check_lease()
        return later

    async def find_page(
        self,
        template: Template,
        take: bool,
        limit: int | None,
        fits: Callable[[list[Tuple]], int],
        timeout: float | None = 0,
    ) -> tuple[list[Tuple], int | None]:
        """:meth:`read_all` or :meth:`take_all` for an answer of bounded size (the
        server's): the matches that ``fits`` keeps, in order, and how many it left out
        (None: none); a take gives back those at once, the tuples of the space to their
        place, its own writes to its writes.  Its pages are not resumed."""
        found = await self._all(template, take, limit, timeout)
        kept = fits([t for _, t in found])
        if take and kept < len(found):
            rest = found[kept:]
            self._writes = sorted([*self._writes, *(o for o, _ in rest if isinstance(o, tuple))], key=_rank)
            self._bytes += sum(len(o[1]) + len(o[2]) for o, _ in rest if isinstance(o, tuple))
            ids: list[tuple[Tuple | None, list[Any]]] = [(t, [i]) for i, t in rest if isinstance(i, int)]
            if ids and not await self._core.txn("release", self._id, ids):
                self._end("aborted")
        return [t for _, t in found[:kept]], len(found) - kept if kept < len(found) else None

    async def read(self, template: Any, timeout: float | None = None) -> Tuple:
        return await self._one(template, False, timeout)

    async def take(self, template: Any, timeout: float | None = None) -> Tuple:
        return await self._one(template, True, timeout)

    async def try_read(self, template: Any) -> Tuple | None:
        found = await self._pick(compile_template(template), False, 1)
        return found[0][1] if found else None

    async def try_take(self, template: Any) -> Tuple | None:
        found = await self._pick(compile_template(template), True, 1)
        return found[0][1] if found else None

    async def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        found = await self._all(compile_template(template), False, check_limit(limit), check_timeout(timeout))
        return [t for _, t in found]

    async def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[Tuple]:
        found = await self._all(compile_template(template), True, check_limit(limit), check_timeout(timeout))
        return [t for _, t in found]

    async def count(self, template: Any) -> int:
        await self._check()
        compiled = compile_template(template)
        return await self._space.count(compiled) + sum(1 for w in self._writes if compiled.matches(w[0]))

    async def commit(self) -> None:
        """Make the takes final and the writes visible, in one script (for a claim,
        which writes nothing, the one that confirms it, which also destroys the records
        it holds: see :meth:`AsyncRedisSpace.claim`).  Raises SpaceFull, the
        transaction aborted, when its writes do not fit in the space's capacity (what it
        took is out of the space already)."""
        await self._check()
        if self._claim:
            tag, remember = self._claim
            if await self.end_claim(tag, True, int(remember) / 1000) != "committed":
                if self._state == "active":  # its outcome forgotten
                    self._end("aborted")
                raise TransactionAborted("the claim was aborted: its lease ran out")
            return
        writes: list[tuple[Tuple | None, list[Any]]] = [
            (t, [ms, data, keys]) for t, data, keys, ms, _ in self._writes
        ]
        try:
            committed = await self._core.txn("commit", self._id, writes)
        except SpaceFull:  # no room in a partitioned space: nothing was committed
            await self.abort()
            raise
        self._end("committed" if committed == 1 else "aborted")
        if committed == _FULL:
            capacity = self._space.capacity
            raise SpaceFull(
                f"the transaction's {len(writes)} tuples do not fit: the space holds {capacity}, its "
                "capacity; the transaction is aborted",
                limit="capacity",
                maximum=capacity or 0,
            )
        if not committed:
            raise TransactionAborted("the transaction was aborted: its lease ran out")
        await self._core.react()

    async def abort(self) -> None:
        """Discard the writes and put every taken tuple back at its place (a claim is
        forgotten: see :meth:`AsyncRedisSpace.claim`)."""
        if self._state != "active":
            return
        self._end("aborted")
        if self._id:
            await self._core.txn("abort", self._id, [(None, ["forget"] if self._claim else [])])
            # Calls that filed their wait meanwhile; one filing later sees the abort in Redis.
            self._release_waits()

    @property
    def id(self) -> str:
        """Its id in Redis (``""`` until it has begun)."""
        return self._id

    async def end_claim(self, tag: str, confirm: bool, remember: float) -> str | None:
        """:meth:`AsyncRedisSpace.end_claim` for this transaction's claim, which ends here too."""
        state = await self._space.end_claim(self._id, tag, confirm, remember)
        if state is not None and self._state == "active":
            self._end(state)
        return state

    async def renew(self, lease: float | None) -> None:
        """Give the transaction ``lease`` more seconds from now."""
        await self._check()
        seconds = _txn_lease(lease)
        reply = await self._core.txn("renew_txn", self._id, [(None, [lease_ms(seconds)])])
        if reply is None:
            self._end("aborted")
            raise TransactionAborted("the transaction was aborted: its lease ran out")
        self._expires = _seconds(reply)
        self._deadline = time.monotonic() + seconds
        self._core.time_lease(self)

    async def __aenter__(self) -> AsyncRedisTransaction:
        await self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None and self.state == "active":
            await self.commit()
        else:
            await self.abort()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._id}, {self.state})"


_Item = TypeVar("_Item", Event, Change)
_first = itemgetter(0)


class AsyncLogReader(AsyncOpenable, Generic[_Item]):
    """What a subscription and a record watch of a space kept in Redis share: the items
    read ahead from the space's log (at most ``max_pending`` at once), the last one
    delivered, a lease, and the wait for the space's listener to tell of new events."""

    _ITEM = "event"  # what it delivers, for its messages
    _NAME = "subscription"

    def __init__(
        self,
        core: AsyncRedisCore,
        parts: list[_Part],
        kinds: frozenset[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
    ) -> None:
        self._core = core
        self._parts = parts
        self._kinds = kinds
        self._since = since
        self._max_pending = max_pending
        self._lease = lease
        self._lease_end = AsyncLater()
        self._ends_at: float | None = None  # when its lease ends on the simulated clock followed
        self._wake = AsyncWake()
        self._pending: deque[_Item] = deque()
        self._after = {p: 0 for p, _ in parts}  # the seq of the last event read from each partition
        self._ahead: list[tuple[int, str, bytes, int]] = []  # read, not yet known to be next
        self._last_seq = since or 0
        self._delivered = 0
        self._cap = ""  # the token of the capability it reads through, if any: it ends with it
        self._opening = AsyncLock()
        self._opened = False
        self._closed = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the last item delivered: resume with ``since=`` it."""
        return self._last_seq

    @property
    def closed(self) -> bool:
        return self._closed or self._ran_out()

    def _end_in(self, seconds: float | None) -> None:
        """End it ``seconds`` from now (None: never): on the simulated clock the space
        follows, if any, else by a timer of this process."""
        self._lease_end.cancel()
        self._ends_at = None
        if seconds is None:
            return
        clock = self._core.clock()
        if clock is None:
            self._lease_end.schedule(seconds, self.close)
        else:
            self._ends_at = clock.now() + seconds

    def _ran_out(self) -> bool:
        """Whether its lease has run out on the simulated clock the space follows."""
        clock = self._core.clock()
        return self._ends_at is not None and clock is not None and clock.now() >= self._ends_at

    async def _live(self) -> bool:
        """Whether it has not ended (a lease run out on the simulated clock ends it now)."""
        if not self._closed and self._ran_out():
            await self.close()
        return not self._closed

    def statistics(self) -> dict[str, Any]:
        """Items read ahead and delivered, and the last one."""
        return {
            "pending": len(self._pending),
            "delivered": self._delivered,
            "last_seq": self._last_seq,
            "closed": self.closed,
        }

    @abc.abstractmethod
    def _keep(self, seq: int, kind: str, data: bytes, stamp: int) -> None:
        """Queue what the logged event ``seq`` brings, if it is asked for."""

    async def _begin(self) -> list[Any]:
        """Listen for the events of the partitions read and begin after ``since``; the
        replies of the script ``events`` there."""
        for _, core in self._parts:
            await core.listen()  # from here on, every logged change wakes a waiting get
            core.add_subscription(self, self._wake)
        try:
            self._last_seq, self._after, replies = await _log_start(self._core, self._parts, self._since)
        except BaseException:
            self._leave()
            raise
        return replies

    def _leave(self) -> None:
        for _, core in self._parts:
            core.remove_subscription(self)

    async def _fetch(self) -> tuple[bool, float | None]:
        """Read the next events of the log of each partition, keeping those asked for in
        the order of their seqs; whether any was read, and the seconds until the next
        lease of the space ends (None: no lease).  One read holds at most
        ``max_pending`` events and :data:`READ_AHEAD_BYTES` of their tuples' encodings
        (or one event, whatever its size, from each partition).

        An event of partition ``p`` of seq ``k`` there is ``k * n + p``.  Over several
        partitions, the events read are kept once every partition's next events are
        known to come after them: the script ``events`` makes a partition's latest seq at
        least the clock of this process, which every seq read moves on.  A partition
        whose events read are still waiting so is not read again: what waits is at most
        one read of each."""
        n = self._core.options.partitions
        most = max(1, self._max_pending // len(self._parts))
        waiting = {item[0] % n for item in self._ahead}
        items, upto, lost, expiry = await _read_logs(self._parts, self._after, most, waiting, self._cap)
        self._ahead += items
        self._ahead.sort(key=_first)
        ready = bisect.bisect_right(self._ahead, upto, key=_first)
        for item in self._ahead[:ready]:
            self._keep(*item)
        del self._ahead[:ready]
        if lost is not None:
            raise lost
        return bool(ready or self._ahead), expiry

    def _delivering(self, item: _Item) -> _Item:
        self._delivered += 1
        self._last_seq = item.seq
        return item

    async def _await_news(self, deadline: float | None, expiry: float | None) -> None:
        """Wait for the space's listener to tell of new events, at most until ``expiry``
        seconds from now (a lease of the space that ends is an event to log) and
        ``deadline`` (:class:`~tuplespace.Timeout` once it has passed)."""
        now = self._core.now()
        if deadline is not None and deadline <= now:
            raise Timeout(f"no {self._ITEM} in time")
        if expiry is not None:
            deadline = now + expiry if deadline is None else min(deadline, now + expiry)
        await self._core.wait(self._wake, deadline)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _Item:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> _Item | None:
        """The next item, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once it has ended."""

    async def renew(self, lease: float | None) -> None:
        """End it ``lease`` seconds from now (None: never)."""
        seconds = check_lease(lease)
        if not await self._live():
            raise UnknownLease(f"the {self._NAME} has ended")
        self._end_in(seconds)

    async def close(self) -> None:
        """End it: a waiting :meth:`get` returns None."""
        if self._closed:
            return
        self._closed = True
        self._lease_end.cancel()
        self._pending.clear()
        self._ahead.clear()
        self._leave()
        self._wake.set()

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_seq={self._last_seq}, closed={self._closed})"


class AsyncRedisSubscription(AsyncLogReader[Event]):
    """The events of a subscription to a space kept in Redis; see
    :class:`~tuplespace.Subscription`.  ``async for event in sub`` waits for the next
    event, and ends when the subscription is closed (by :meth:`close`, its lease or
    the space's handle closing).

    Opened with ``existing``, it first reports the matching tuples present when it
    began: one script read the latest event's seq and the latest tuple's id, and each
    :meth:`get` looks up the next tuple still in the space, in the space's order, of an
    id up to that one and past the last reported.  Then a :meth:`get` reads the events
    after the last one delivered from the space's log in Redis (at most
    ``max_pending`` at once), runs out the leases that have ended, and waits for the
    space's listener to tell it of new events.  Events the log no
    longer holds raise :class:`~tuplespace.EventsLost`; reading goes on after it.
    """

    def __init__(
        self,
        core: AsyncRedisCore,
        parts: list[_Part],
        template: Template | None,
        kinds: frozenset[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
        existing: bool,
    ) -> None:
        super().__init__(core, parts, kinds, since, max_pending, lease)
        self._template = template  # None: every tuple
        self._presenting = existing
        # The partitions whose present tuples are still to report, each with the id of
        # its latest tuple when the subscription began, and the id of the last reported.
        self._present_in: deque[tuple[AsyncRedisCore, int]] = deque()
        self._present_after = 0
        self._began = 0.0

    def statistics(self) -> dict[str, Any]:
        """Events read ahead and delivered, the last one, and whether the present tuples
        are still being reported."""
        return {**super().statistics(), "presenting": self._presenting}

    async def _open(self) -> None:
        async with self._opening:
            if self._opened or self._closed:
                return
            replies = await self._begin()
            self._present_in.extend(
                (core, int(reply[3])) for (_, core), reply in zip(self._parts, replies, strict=True)
            )
            self._present_after = self._present_start()
            self._began = time.time()
            self._opened = True
            self._end_in(self._lease)

    def _present_start(self) -> int:
        """The id the present tuples of a partition are looked up after."""
        if self._core.options.order == "lifo" and self._present_in:
            return self._present_in[0][1] + 1
        return 0

    def _keep(self, seq: int, kind: str, data: bytes, stamp: int) -> None:
        if kind in self._kinds:
            t = decode_tuple(data)
            if self._wants(t):
                self._pending.append(Event(seq, kind, t, stamp / 1000.0))

    def _wants(self, t: Tuple) -> bool:
        return self._template is None or self._template.matches(t)

    async def _present(self) -> Tuple | None:
        """The next tuple present when the subscription began that is still in the
        space, in the space's order in each partition, a partition after the other
        (None: there is none left)."""
        while self._present_in:
            t = await self._present_there(*self._present_in[0])
            if t is not None:
                return t
            self._present_in.popleft()
            self._present_after = self._present_start()
        return None

    async def _present_there(self, core: AsyncRedisCore, upto: int) -> Tuple | None:
        """The next tuple present in the partition of ``core``, of an id up to ``upto``."""
        order = "lifo" if core.options.order == "lifo" else "fifo"
        template = self._template
        if template is None:
            reply = await core.call("first", [order, self._present_after, upto, *_EVERY_ARITY])
            if not reply:
                return None
            self._present_after = int(reply[0])
            return decode_tuple(reply[1])
        keys, trusted = candidates(template)
        cursor = str(self._present_after)
        while True:
            mode, limit = ("read", 1) if trusted else ("scan", -1)
            reply = await core.call("find", [mode, order, limit, BATCH, cursor, "", "", *keys])
            for i, data in pairs(reply[3:]):
                if i > upto:  # written since it began, in FIFO order: the last ones are passed
                    return None
                t = decode_tuple(data)
                if trusted or template.matches(t):
                    self._present_after = i
                    return t
            if trusted or not reply[0]:
                return None
            cursor = reply[0]

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once the subscription has ended."""
        wait = check_timeout(timeout)
        await self._open()
        deadline = None if wait is None else self._core.now() + wait
        while await self._live():
            if self._pending:
                return self._delivering(self._pending.popleft())
            self._wake.clear()
            try:
                if self._presenting:
                    t = await self._present()
                    if t is not None and not self._closed:
                        self._delivered += 1
                        return Event(self._last_seq, "present", t, self._began)
                    self._presenting = False
                    continue
                read, expiry = await self._fetch()
            except Exception:
                if self._closed:  # closed meanwhile, maybe with the space's connections
                    break
                raise
            if read:
                continue
            await self._await_news(deadline, expiry)
        return None


class _RecordTaker:
    """A :meth:`AsyncRedisSpace.take_record` waiting in this process, looked for by the
    rounds of the space (see :meth:`AsyncRedisSpace._record_round`)."""

    __slots__ = ("busy", "covered", "deadline", "error", "result", "template", "tx", "under", "wake")

    def __init__(self, template: RecordTemplate, under: str | None, tx: str) -> None:
        self.template = template
        self.under = under
        self.tx = tx  # the claim it takes for ('': none)
        self.deadline: float | None = None  # when it times out, in the space's time
        self.wake = AsyncWake()
        self.covered = False  # whether a round has looked for it
        self.busy = False  # whether a round is taking a record for it
        self.result: RecordData | None = None
        self.error: TupleSpaceError | None = None


async def _claim_id(claim: AsyncRedisTransaction | None) -> str:
    """The id in Redis of ``claim`` (begun if it was not yet), '' for none."""
    return "" if claim is None else (await claim).id


class _Loaded(NamedTuple):
    """A record as read at one instant."""

    version: int
    fields: dict[str, Value]
    lifetime: float | None
    refcount: int
    level: int
    credit: Credit


class AsyncRedisRecord:
    """The handle of a record of a space kept in Redis; the methods of
    :class:`~tuplespace.AsyncRecord` that such a space has (see docs/scaling.md).  It
    names the record by its rid: after the record is destroyed or expired every call
    raises :class:`~tuplespace.RecordNotFound`, even if a new record takes the path.
    Each read and each set is one script in Redis (a value that is the address of a
    record of the space is looked up first)."""

    __slots__ = ("_core", "_operations", "_owner", "_ref", "address", "expires_at", "rid", "space", "token")

    def __init__(
        self,
        core: AsyncRedisCore,
        rid: int,
        address: URI,
        token: str | None = None,
        allowed: frozenset[str] | None = None,
        owner: bool = False,
    ) -> None:
        self._core = core
        self.rid = rid
        self.address = address
        self.space = core.options.space
        self.token = token  # a capability's, or None for a full handle
        if allowed is None:
            allowed = _ROOT_OPERATIONS if rid == ROOT_RID else _FULL_OPERATIONS
        self._operations = allowed
        self._owner = owner  # made by capability() or read_only(): it may revoke
        self._ref = str(rid) if token is None else "$" + token  # how the scripts name it
        # When a capability made here ends, in the space's clock (None: never, or unknown).
        self.expires_at: float | None = None

    def __tuplespace_uri__(self) -> URI:
        """Where a value goes, a handle is its address."""
        return self.address

    @property
    def operations(self) -> frozenset[str]:
        """What this handle allows: for a capability a subset of ``read``, ``set``,
        ``refresh``, ``clone``, ``destroy`` and ``watch``; a full handle may also
        ``move`` the record and make ``capability`` handles; the root record's ``read``
        and ``watch``."""
        return self._operations

    @property
    def is_capability(self) -> bool:
        return self.token is not None

    async def _load(self, level: bool = False) -> _Loaded:
        """The record's version, fields, seconds left of its lease (None: none), how many
        records contain it and (if asked for) its level."""
        if self.rid == ROOT_RID:
            fields: dict[str, Value] = {"ME": URI(ROOT_URI), "TUPS": await self._top()}
            return _Loaded(0, fields, None, 0, 0, Credit(0))
        reply = await _checked(
            self._core, self.rid, await self._core.call("rget", ["rid", self._ref, "1" if level else ""])
        )
        version, _, fields = decode_record(reply[1])
        left = float(reply[2]) / 1000.0 if reply[2] else None
        return _Loaded(version, fields, left, reply[3], reply[4], from_nanos(reply[5]))

    async def _top(self) -> Map:
        """The path and address of every record that no record contains, by path."""
        here = str(self.address)[:-1]
        found: dict[str, Value] = {}
        after = b"0"
        while after:
            reply = await self._core.call("rtop", [after, BATCH])
            for path in reply[1:]:
                found[path.decode()] = URI(here + path.decode())
            after = reply[0]
        return Map(dict(sorted(found.items())))

    def _value(self, tag: str, loaded: _Loaded) -> Value:
        fields = loaded.fields
        if tag in fields:
            return fields[tag]
        if not (isinstance(tag, str) and tag.startswith("$")):
            check_tag(tag)
            return None
        if tag not in COMPUTED_TAGS:
            raise InvalidValue(f"{tag!r} is not a computed tag; they are {', '.join(COMPUTED_TAGS)}")
        if tag == "$PK":
            return self.address
        if self.rid == ROOT_RID:
            return None
        computed: dict[str, Value] = {
            "$version": loaded.version,
            "$credit": loaded.credit,
            "$lifetime": loaded.lifetime,
            "$refcount": loaded.refcount,
        }
        return computed.get(tag, loaded.level)

    async def get(self, tag: str, default: Value = None) -> Value:
        """The value of one field (a computed one for a tag starting with ``$``)."""
        await self._may("read")
        loaded = await self._load(tag == "$level")
        v = self._value(tag, loaded)
        return default if v is None and tag not in loaded.fields and not tag.startswith("$") else v

    async def view(self, *tags: str) -> tuple[Value, ...]:
        """The values of several fields at one instant, in the order asked."""
        await self._may("read")
        loaded = await self._load("$level" in tags)
        return tuple(self._value(tag, loaded) for tag in tags)

    async def all(self) -> Map:
        """Every stored field, in the order the tags were first set."""
        await self._may("read")
        return Map((await self._load()).fields)

    async def tags(self) -> list[str]:
        """The stored tags, in the order they were first set."""
        await self._may("read")
        return list((await self._load()).fields)

    async def snapshot(self) -> RecordData:
        """The record's address, fields and version at one instant."""
        await self._may("read")
        loaded = await self._load()
        return RecordData(self.address, loaded.fields, loaded.version)

    async def snapshot_view(self, *tags: str) -> tuple[RecordData, tuple[Value, ...]]:
        """The record's address, fields and version, and the values of ``tags`` (computed
        ones too), all read at one instant."""
        await self._may("read")
        loaded = await self._load("$level" in tags)
        data = RecordData(self.address, loaded.fields, loaded.version)
        return data, tuple(self._value(tag, loaded) for tag in tags)

    async def lifetime_ends(self) -> float | None:
        """When the record's lease ends, in this process's wall clock (None: never)."""
        loaded = await self._load()
        return None if loaded.lifetime is None else time.time() + loaded.lifetime

    async def _may(self, operation: str) -> None:
        """NotAllowed unless this handle allows ``operation`` (one a capability may
        allow); CapabilityRevoked first if it is a capability that has ended (one look in
        Redis, on the way to NotAllowed)."""
        if operation not in self._operations and operation in OPERATIONS and self.token is not None:
            await _checked(self._core, self.rid, await self._core.call("rcap", [self.token]))
        self._full(operation)

    def _full(self, operation: str) -> None:
        """NotAllowed unless this handle allows ``operation``."""
        allowed = self._operations
        if operation not in allowed:
            what = "the root record $ cannot" if self.rid == ROOT_RID else "this handle does not allow"
            raise NotAllowed(
                f"{what} {operation} (it allows {', '.join(sorted(allowed))})",
                operation=operation,
                allowed=allowed,
            )

    async def set(self, tag: str, value: Value) -> int:
        """Set one field, atomically; the record's new ``$version``."""
        await self._may("set")
        check_tag(tag)
        checked = check_field(tag, value, DEFAULT_LIMITS)
        most = DEFAULT_LIMITS.max_fields
        while True:
            v, link = await self._core.linked(tag, checked)
            reply = await self._core.call("rset", [self._ref, tag, encode(v), most, link])
            await _checked(self._core, self.rid, reply)
            if reply[0] == b"full":
                raise ValueTooLarge(
                    f"the record has {most} tags already, the most it may have",
                    limit="max_fields",
                    maximum=most,
                )
            if reply[0] == b"cycle":
                raise ContainmentCycle(f"{self.address} cannot contain {v}: {v} contains it")
            if reply[0] != b"retry":  # else the record it holds moved or ended meanwhile
                await _react(self._core, len(reply) > 1)
                return int(reply[0])

    async def call(self, tag: str, *args: Value, principal: str = DEFAULT_PRINCIPAL) -> Value:
        """Run the method in the field ``tag`` (see :meth:`~tuplespace.Record.call`) in
        this process's sandbox, within ``space.rules.limits``; what it changed (the
        fields it set, the tuples it wrote, the records it created) is applied in one
        script, if the record's version is still the one it ran on (else it runs again
        on the record as it now is).  The method's value.  With a ``step_charge``,
        ``principal`` pays for the steps each run ran, as in an embedded space, whether
        it returned or failed."""
        await self._may("set")
        rules = self._core.rules()
        recounted = False  # in a partitioned space with a capacity, its counts were read again
        while True:
            loaded = await self._load()
            method = method_in(loaded.fields, tag)
            result, changed, spawned, created = await self._run(rules, method, loaded.fields, args, principal)
            value = method_result(result, changed, loaded.fields, DEFAULT_LIMITS.max_fields)
            items: list[str | bytes] = [str(len(changed))]
            for k, v in changed.items():
                items += (k, encode(check_field(k, v, DEFAULT_LIMITS)))
            made = await created_records(self._core, created)
            items += (str(len(made) // 3), *made)
            items += self._spawned(spawned)
            reply = await _checked(
                self._core, self.rid, await self._core.call("rcall", [self._ref, loaded.version, *items])
            )
            if reply[0] == b"full" and self._core.options.partitions > 1 and not recounted:
                await self._core.recount()  # counts older than the takes since may make it seem full
                recounted = True
                continue
            if reply[0] == b"full":
                capacity = self._core.options.capacity
                raise SpaceFull(
                    f"the {len(spawned)} tuples the method wrote do not fit: the space holds {capacity}, "
                    "its capacity; nothing changed",
                    limit="capacity",
                    maximum=capacity or 0,
                )
            if reply[0] == b"exists":
                raise RecordExists(f"a record already has the path {reply[1].decode()!r}; nothing changed")
            if reply[0] == b"fire" or reply[-1] == b"owed":  # rules to run, writes owed to partitions
                await self._core.fire()
            if reply[0] != b"retry":
                return value

    def _spawned(self, spawned: list[tuple[Value, ...]]) -> list[Any]:
        """The tuples a method wrote, as ``rcall`` takes them: each its partition ('' in
        a space without partitions), encoding and index keys."""
        options = self._core.options
        items: list[Any] = []
        for t in spawned:
            checked, data, keys = encode_tuple(t)
            items += ("" if options.partitions == 1 else route_of_tuple(checked, options), data, keys)
        return items

    async def _run(
        self,
        rules: AsyncRedisRules,
        method: Method,
        fields: dict[str, Value],
        args: tuple[Value, ...],
        principal: str,
    ) -> Any:
        """Run ``method`` in this process's sandbox, paid by ``principal`` when steps
        cost credit (to the operator, at once: the payment is not undone if the
        record changes meanwhile and the method runs again)."""
        charge = rules.step_charge
        if not charge:
            return rules.sandbox().run(method, fields, args, rules.limits)
        check_principal(principal)
        balance = from_nanos(await self._core.call("account", [principal]))
        max_steps = step_budget(principal, balance, charge)
        sandbox = rules.sandbox()
        try:
            limits = rules.limits
            return run_paid(sandbox, method, fields, args, limits, principal, charge, balance, max_steps)
        finally:
            steps = sandbox.steps()
            if steps:
                units = nanos(charge * steps, "step_charge")
                to = self._core.options.operator
                reply = await self._core.call("transfer", [principal, to, units, MAX_ACCOUNTS, MOST_NANOS])
                _paid(principal, [*reply, units])

    async def move(self, path: str, redirect_lease: float | None = 3600.0) -> None:
        """Give the record the path ``path`` (its ``$version`` goes up; a ``move``
        event).  For ``redirect_lease`` seconds (None: as long as the record lives; 0:
        not at all) the old path opens it.  This handle's address follows; other
        handles keep the address they were opened with, and still name the record.
        :class:`~tuplespace.RecordExists` if a record has the path."""
        self._full("move")
        check_path(path)
        redirect = "0" if redirect_lease == 0 else lease_ms(check_lease(redirect_lease, "redirect_lease"))
        here = _records_prefix(self._core.options)
        reply = await self._core.call("rmove", [self.rid, path, redirect, here])
        if not reply:
            raise RecordNotFound(f"record {self.rid} is gone (destroyed or expired)")
        if reply[0] == b"exists":
            raise RecordExists(f"a record is at {path!r} already")
        self.address = URI(here + path)
        await _react(self._core, len(reply) > 1)

    async def refresh(
        self,
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> float | None:
        """Give the record a lease of ``lease`` seconds from now, in the space's clock,
        and add ``credit`` to what it holds, paid by ``principal`` when the space charges;
        its expiry, in the space's clock (None: never).  With a charge rate, ``lease=s``
        adds the credit the record needs to live ``s`` more seconds (none if it has that
        already), and the credit sets its expiry."""
        await self._may("refresh")
        if credit is None and lease is None:
            raise InvalidValue("refresh needs credit= or lease=")
        check_principal(principal)
        more = "" if credit is None else str(nanos(credit, "credit"))
        ms = "keep" if lease is None else lease_ms(check_lease(lease))
        reply = await self._core.call("rrenew", [self._ref, ms, more, principal])
        if reply[0] == b"forever":
            raise InvalidValue("this space charges for storage: a record cannot live forever", "lease")
        _paid(principal, reply)
        if not (await _checked(self._core, self.rid, reply))[0]:
            raise RecordNotFound(f"record {self.rid} is gone (destroyed or expired)")
        return _seconds(reply[1])

    async def clone(
        self,
        path: str,
        credit: Credit | int | str | None = None,
        lease: float | None = None,
        *,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> AsyncRedisRecord:
        """A new record at ``path`` with this one's fields (read at one instant); its
        handle.  :class:`~tuplespace.RecordExists` if the path is taken."""
        await self._may("clone")
        check_path(path)
        return await _create(self._core, path, (await self._load()).fields, credit, lease, principal)

    async def destroy(self, force: bool = False) -> None:
        """Remove the record (a ``destroy`` event).  A record that other records contain
        raises :class:`~tuplespace.RecordInUse`, unless ``force``: then the fields that
        hold it become None (an ``update`` event each)."""
        await self._may("destroy")
        reply = await self._core.call("rdestroy", [self._ref, "", "force" if force else ""])
        await _checked(self._core, self.rid, reply)
        if reply[0] == b"inuse":
            raise RecordInUse(
                f"{self.address} is contained by other records: destroy(force=True) empties their fields"
            )
        await _react(self._core, len(reply) > 3)

    def watch(
        self, since: int | None = None, max_pending: int = 1000, lease: float | None = None
    ) -> AsyncRedisRecordWatch:
        """The record's changes, in order, from every process; it ends after the
        record's ``destroy`` or ``expire``.  The root record's watch has the changes of
        every record."""
        self._full("watch")
        root = self.rid == ROOT_RID
        watch = AsyncRedisRecordWatch(
            self._core,
            None if root else self.rid,
            None if root else self._ref,
            None,
            CHANGE_KINDS,
            check_since(since),
            check_max_pending(max_pending),
            check_lease(lease),
        )
        return opened_later(watch)

    async def on_change(
        self,
        fn: Callable[[Change], object],
        *,
        on_lost: Callable[[EventsLost], object] | None = None,
        max_pending: int = 1000,
    ) -> AsyncUpcall:
        """Call ``fn(change)`` for every change of the record, from every process, in
        order (see :meth:`tuplespace.Record.on_change`): the upcall reads the record's
        :meth:`watch` off the writer's path, in a thread of its own for a sync handle,
        in a task of the running event loop for an async one (where ``fn`` may be a
        coroutine function).  It ends after the record's ``destroy`` or ``expire``."""
        return await AsyncUpcall.start(
            lambda since, pending: self.watch(since, pending), fn, on_lost, max_pending
        )

    async def capability(self, operations: Iterable[str], lease: float | None = None) -> AsyncRedisRecord:
        """A new capability: a handle with an unguessable address of its own that
        allows only ``operations`` (of ``read``, ``set``, ``refresh``, ``clone``,
        ``destroy``, ``watch``), for ``lease`` seconds (None: until revoked)."""
        self._full("capability")
        return await self._grant(granted(operations), lease_ms(check_lease(lease)), "")

    async def read_only(self) -> AsyncRedisRecord:
        """The record's read-only handle (``$RO``): reads and watches, nothing else.
        The same one every time, until it is revoked."""
        self._full("capability")
        return await self._grant(READ_ONLY, "", "ro")

    async def _grant(self, allowed: frozenset[str], lease: str, ro: str) -> AsyncRedisRecord:
        token = secrets.token_urlsafe(24)
        reply = await self._core.call("rgrant", [self.rid, ",".join(sorted(allowed)), lease, token, ro])
        if not reply:
            raise RecordNotFound(f"record {self.rid} is gone (destroyed or expired)")
        token = reply[0].decode()
        address = URI(f"{_records_prefix(self._core.options)}$cap/{token}")
        handle = AsyncRedisRecord(self._core, self.rid, address, token, allowed, owner=True)
        handle.expires_at = _seconds(reply[1])
        return handle

    async def revoke(self) -> None:
        """End this capability (one made by :meth:`capability` or :meth:`read_only`):
        every handle on its address raises :class:`~tuplespace.CapabilityRevoked` from now on."""
        check_revocable(self.token is not None, self._owner, self._operations)
        await self._core.call("rrevoke", [self.token])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncRedisRecord) and (other.rid, other.space, other.token) == (
            self.rid,
            self.space,
            self.token,
        )

    def __hash__(self) -> int:
        return hash(self.rid)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.address)!r})"


class AsyncRedisRecordWatch(AsyncLogReader[Change]):
    """The changes of a record, or of the records below a path, of a space kept in
    Redis: read from the space's log, as a subscription's events are, woken by the
    space's listener.  It ends when closed, when its lease runs out, and, watching one
    record, after that record's ``destroy`` or ``expire``."""

    _ITEM = "change"
    _NAME = "watch"

    def __init__(
        self,
        core: AsyncRedisCore,
        rid: int | None,
        ref: str | None,
        under: str | None,
        kinds: frozenset[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
    ) -> None:
        super().__init__(core, [(0, core)], kinds, since, max_pending, lease)
        self._rid = rid
        self._ref = ref  # how the scripts name the record watched (None: every record below under)
        self._under = under
        if ref is not None and ref.startswith("$"):
            self._cap = ref[1:]

    async def _open(self) -> None:
        async with self._opening:
            if self._opened or self._closed:
                return
            core = self._core
            if self._rid is not None and self._ref is not None:
                await _checked(core, self._rid, await core.call("rget", ["rid", self._ref]))
            await self._begin()
            self._opened = True
            self._end_in(self._lease)

    def _keep(self, seq: int, kind: str, data: bytes, stamp: int) -> None:
        if kind.startswith("r.") and kind[2:] in self._kinds:
            rid, change = decode_change(seq, kind, data, stamp)
            under = self._under
            if rid == self._rid or (self._rid is None and (under is None or change.path.startswith(under))):
                self._pending.append(change)

    async def get(self, timeout: float | None = None) -> Change | None:
        """The next change, waiting up to ``timeout`` seconds (:class:`~tuplespace.Timeout`
        after); None once the watch has ended."""
        wait = check_timeout(timeout)
        await self._open()
        deadline = None if wait is None else self._core.now() + wait
        while await self._live():
            if self._pending:
                change = self._delivering(self._pending.popleft())
                if self._rid is not None and change.kind in ("destroy", "expire"):
                    await self.close()  # the record is gone: this was its last change
                return change
            self._wake.clear()
            try:
                read, expiry = await self._fetch()
            except CapabilityRevoked:
                await self.close()  # the capability it was opened through has ended
                break
            except Exception:
                if self._closed:
                    break
                raise
            if read:
                continue
            await self._await_news(deadline, expiry)
        return None
