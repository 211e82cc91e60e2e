"""What both faces of a space kept in Redis share, none of it doing I/O: the URL and
its options, the key layout, the Lua scripts, the encoding of tuples and their index
keys, and the calls waiting in this process.

The faces (:class:`~tuplespace.stores.AsyncRedisSpace` in ``_redis_async.py`` and
:class:`~tuplespace.stores.RedisSpace` made from it by ``scripts/unasync.py``) hold no
state of the space: it lives in Redis, under keys that all start with the space's
hash tag ``{ts:<space>}`` (so a Redis Cluster keeps a space on one slot):

- ``cfg`` (hash): the space's options, set by the first process that opens it, and the
  state of its event log: ``ev_last`` (the seq of the latest event), ``ev_first`` (of
  the oldest logged), ``ev_gone`` (of the latest dropped from the log), ``ev_n`` (how
  many are logged) and ``ev_bytes`` (the bytes of tuple encodings logged), and ``due``
  (no lease in ``exp`` ends before it, see ``_redis.lua``);
- ``seq`` (string): the id of the latest tuple written; ids give the order;
- ``tup`` (hash): id -> the tuple's wire encoding, a newline, and its index keys
  joined by newlines;
- ``a:<arity>`` (sorted set): the ids of the tuples of that arity, scored by id;
- ``x:<arity>:<position>:<value>`` (sorted set): the ids of the tuples of that arity
  holding that value at that position (the value's wire encoding, or ``#`` and its
  SHA-1 when the encoding is longer than 64 bytes);
- ``exp`` (sorted set): the ids of the tuples with a lease, scored by their expiry in
  milliseconds of Redis's clock (``TIME``);
- ``cnt`` (hash): counts of expiries and cancellations;
- ``ev`` (stream): the log of the latest ``event_retention`` events holding at most
  ``event_retention_bytes`` of tuple encodings, entry ``<seq>-0`` holding ``k``
  (kind), ``d`` (the tuple's encoding) and ``t`` (milliseconds of Redis's clock);
- ``w``, ``wn``, ``wq:<key>``, ``wexp`` and ``r:<token>``: the takes waiting in Redis
  for a write to hand them a tuple (see ``_redis.lua``);
- ``ch``: the sharded pub/sub channel (``SPUBLISH``, so on a Cluster it lives on the
  space's slot too) on which each write is published, ``<id> <encoding>``, and
  ``r <n>`` when ``n`` tuples left the space.

A template's candidates are the intersection of the sorted sets of its exact fields
(or its arity's set); the scripts walk the smallest in the space's order.  A template
whose only fields are exact values of short encodings (or ANY) is matched by Redis
itself; any other is matched in this process, and its take is a script that takes an
id only if it is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from hiredis import pack_command

from .._codec import decode, encode
from .._credit import check_principal, to_credit
from .._engine import EVENT_RETENTION_BYTES
from .._errors import InvalidValue, SpaceClosed, StoreError, TupleSpaceError, Unreachable, ValueTooLarge
from .._events import Change
from .._mint import MAX_BITS
from .._recordstore import DEFAULT_MINT_BITS, DEFAULT_OPERATOR
from .._registry import Interest
from .._store import options_conflict
from .._templates import RecordTemplate, Template
from .._values import DEFAULT_LIMITS, Credit, Map, Tuple, Value, check_tuple, check_value

__all__ = [
    "BATCH",
    "READ_AHEAD_BYTES",
    "AsyncCaller",
    "AsyncClient",
    "Caller",
    "ClockFollower",
    "Client",
    "SCHEMES",
    "FUNCTIONS",
    "LIBRARY",
    "AsyncGuard",
    "AsyncWake",
    "Clock",
    "Guard",
    "MOST_NANOS",
    "Options",
    "Wake",
    "Waiter",
    "candidates",
    "connection_error",
    "lease_ms",
    "decode_change",
    "decode_record",
    "encode_record",
    "encode_tuple",
    "from_nanos",
    "nanos",
    "pack",
    "parse_url",
    "partition_of",
    "prefix",
    "record_candidates",
    "redis_error",
    "route_of_template",
    "route_of_tuple",
    "unknown_function",
]


BATCH = 256
"""How many candidates a scan brings back at once for matching in this process."""

READ_AHEAD_BYTES = 1 << 20
"""Bytes of tuple encodings a subscription or a watch of records reads ahead from the
space's log at once (with at most one event more of each partition, whatever its
size): what one subscriber makes its process hold, whatever its ``max_pending``."""

SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
"""The schemes of the URLs of spaces kept in Redis."""

_LONGEST_KEY = 64  # longer value encodings are indexed by their SHA-1
_SPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # the names a server accepts too
_ORDERS = ("fifo", "lifo", "random")
_OPTIONS = (
    "space",
    "order",
    "capacity",
    "event_retention",
    "event_retention_bytes",
    "max_waiters",
    "max_subscribers",
    "partitions",
    "route",
    "durability",
    "charge_rate",
    "creation_charge",
    "operator",
    "firing_charge",
    "step_charge",
    "mint_amount",
    "mint_bits",
    "redirect_charge",
)
_NUMBERS = (*_OPTIONS[2:9], "mint_bits")
_CHARGES = ("charge_rate", "creation_charge", "firing_charge", "step_charge", "redirect_charge")  # credit
_STORED = (  # the space's own
    "order",
    "capacity",
    "event_retention",
    "event_retention_bytes",
    "charge_rate",
    "creation_charge",
    "operator",
    "firing_charge",
    "step_charge",
    "mint_amount",
    "mint_bits",
    "redirect_charge",
)
MAX_PARTITIONS = 256
"""The most partitions a space may have (a call that waits across partitions listens on
each, on a connection of its own)."""
_DURABILITIES = ("redis", "replicated")


# A top-level statement of a prelude starts a line (a ``local`` definition, or an ``if``
# that sets some), with the comment lines just above it.
_STATEMENT = re.compile(r"^(?:--[^\n]*\n)*(?!end\b|else\b|elseif\b|until\b)[A-Za-z_]", re.MULTILINE)
# The names in a piece of Lua: what is left once comments and strings are taken out.
_LUA_TOKEN = re.compile(r"--[^\n]*|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|([A-Za-z_]\w*)")
_LOCALS = re.compile(r"local\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)")


def _statements(prelude: str) -> tuple[list[str], list[str], list[str]]:
    """The top-level statements of ``prelude`` (each with the comment lines above it):
    its functions, the names of its other locals, and its other statements, made
    assignments to those names."""
    starts = [m.start() for m in _STATEMENT.finditer(prelude)]
    functions, names, state = [], [], []
    for start, end in zip([0, *starts[1:]], [*starts[1:], len(prelude)], strict=True):
        text = prelude[start:end]
        head = _LUA_TOKEN.sub(lambda m: m[0] if m[1] else "", text).lstrip()
        local = _LOCALS.match(head)
        if head.startswith("local function "):
            functions.append(text)
        elif local:
            names += re.findall(r"\w+", local[1])
            state.append(re.sub(r"^local\s+", "", text, count=1, flags=re.MULTILINE))
        else:
            state.append(text)
    return functions, names, state


def _library() -> tuple[str, dict[str, str]]:
    """The Redis Functions library of the scripts, and the name of each script's
    function in it.

    The shared parts of ``_redis.lua`` are made once, when Redis loads the library: their
    functions, and locals for the state a call starts from, which each call sets first
    (``start``, then ``start_records`` for a section marked ``+records``), as the
    statements of the prelude did at the top of a script (``start`` is told whether the
    call is ``open``, which alone may find the space without its options).  A call runs
    alone in Redis, so those locals hold its own state while it runs.  A section marked ``allow-oom`` runs
    in a Redis whose memory is full too: it frees room or reads, and adds at most what
    the space's limits bound (an event logged, a waiter filed), so that a full space
    can still be read and drained; Redis refuses the others then."""
    text = resources.files(__package__).joinpath("_redis.lua").read_text(encoding="utf-8")
    prelude, *parts = re.split(r"^--\[\[ (\w+)( \+records)?( allow-oom)? \]\]\n", text, flags=re.MULTILINE)
    sections = {
        parts[i]: (bool(parts[i + 1]), bool(parts[i + 2]), parts[i + 3]) for i in range(0, len(parts), 4)
    }
    records = sections.pop("_records")[2]
    functions, names, state = _statements(prelude)
    record_functions, record_names, record_state = _statements(records)
    declared = ["KEYS", "ARGV", *names, *record_names]
    lines = ["local " + ", ".join(declared[i : i + 30]) + "\n" for i in range(0, len(declared), 30)]
    body = "".join(
        [
            *lines,
            *functions,
            *record_functions,
            "local function start(keys, args, opens)\n  KEYS, ARGV = keys, args\n",
            *state,
            "end\nlocal function start_records()\n",
            *record_state,
            "end\n",
        ]
    )
    name = "tuplespace_" + hashlib.sha1((body + text).encode(), usedforsecurity=False).hexdigest()[:16]
    calls = {script: f"{name}_{script}" for script in sections}
    for script, (marked, oom, section) in sections.items():
        begin = f"start(keys, args{', true' if script == 'open' else ''})\n" + (
            "start_records()\n" if marked else ""
        )
        flags = ", flags={'allow-oom'}" if oom else ""
        body += (
            f"redis.register_function{{function_name='{calls[script]}', callback=function(keys, args)\n"
            f"{begin}{section}end{flags}}}\n"
        )
    return f"#!lua name={name}\n{body}", calls


LIBRARY, FUNCTIONS = _library()
"""The Redis Functions library of the atomic steps of a space (``_redis.lua``: a shared
prelude, what the scripts on records share, then one section per script, marked
``+records`` when it needs the second, ``allow-oom`` when it may run in a full Redis),
and the name of the function of each step, by which ``FCALL`` runs it; the library's
name holds a hash of its text, so that processes of different versions may share a
Redis (each loads its own)."""


def unknown_function(exc: BaseException) -> bool:
    """Whether ``exc`` says that Redis does not know the function called (it has not
    loaded the library yet, or lost it: a flush, a restart without its data)."""
    return str(exc).startswith("Function not found")


# -- credit


MOST_NANOS = 1 << 62
"""The most credit an account or a record kept in Redis holds, in units of 1e-9."""


def nanos(amount: object, name: str) -> int:
    """An amount of credit in units of 1e-9, as Redis counts it (its integers are exact)."""
    credit = to_credit(amount, name)
    nanos = credit.scaleb(9)
    if nanos != nanos.to_integral_value():
        raise InvalidValue(f"a space kept in Redis counts credit to 1e-9, not {credit}", name)
    if nanos > MOST_NANOS:
        raise ValueTooLarge(
            f"a space kept in Redis holds at most {from_nanos(MOST_NANOS)} credit in one place",
            name,
            limit="credit",
            maximum=MOST_NANOS,
        )
    return int(nanos)


def from_nanos(nanos: bytes | int) -> Credit:
    """Credit counted in units of 1e-9, written with no more digits than it needs."""
    return Credit(format(Decimal(int(nanos)).scaleb(-9).normalize(), "f"))


# -- the URL and the options ---------------------------------------------------------------


class Options:
    """Where the space is and how it behaves: ``redis`` is the URL of the Redis server
    (without the space's options), the rest are the options of the space."""

    __slots__ = (
        "capacity",
        "charge_rate",
        "cluster",
        "creation_charge",
        "durability",
        "event_retention",
        "event_retention_bytes",
        "firing_charge",
        "given",
        "max_subscribers",
        "max_waiters",
        "mint_amount",
        "mint_bits",
        "operator",
        "order",
        "partitions",
        "redirect_charge",
        "redis",
        "route",
        "server",
        "shown",
        "space",
        "step_charge",
    )

    def __init__(self, redis: str, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for a redis:// space; known: {', '.join(_OPTIONS)}"
            )
        self.redis = redis
        self.shown = _without_password(redis)  # as messages show it
        # A Redis Cluster (``redis+cluster://``), reached first at ``server``.
        self.cluster = "+cluster" in urlsplit(redis).scheme
        self.server = redis.replace("+cluster", "", 1)
        self.space: str = options.get("space", "default")
        if not isinstance(self.space, str) or _SPACE_NAME.fullmatch(self.space) is None:
            raise ValueError(
                f"space must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter "
                f"or digit; got {self.space!r}"
            )
        self.order: str = options.get("order", "fifo")
        if self.order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(_ORDERS)}; got {self.order!r}")
        self.capacity: int | None = options.get("capacity")
        if self.capacity is not None and (not _is_int(self.capacity) or self.capacity < 1):
            raise ValueError(f"capacity must be a positive int or None, got {self.capacity!r}")
        self.event_retention: int = options.get("event_retention", 10_000)
        if not _is_int(self.event_retention) or self.event_retention < 1:
            raise ValueError(
                f"event_retention must be an int >= 1 (a space kept in Redis delivers its events "
                f"from its log), got {self.event_retention!r}"
            )
        self.event_retention_bytes: int = options.get("event_retention_bytes", EVENT_RETENTION_BYTES)
        if not _is_int(self.event_retention_bytes) or self.event_retention_bytes < 0:
            raise ValueError(f"event_retention_bytes must be an int >= 0, got {self.event_retention_bytes!r}")
        self.max_waiters: int = options.get("max_waiters", 100_000)
        if not _is_int(self.max_waiters) or self.max_waiters < 0:
            raise ValueError(f"max_waiters must be an int >= 0, got {self.max_waiters!r}")
        self.max_subscribers: int = options.get("max_subscribers", 10_000)
        if not _is_int(self.max_subscribers) or self.max_subscribers < 0:
            raise ValueError(f"max_subscribers must be an int >= 0, got {self.max_subscribers!r}")
        self.partitions: int = options.get("partitions", 1)
        if not _is_int(self.partitions) or not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be an int from 1 to {MAX_PARTITIONS}, got {self.partitions!r}")
        self.route: int | None = options.get("route")
        if self.partitions > 1:
            if self.route is None:
                raise ValueError("route must name the field (0, 1, ...) by which partitions are chosen")
            if not _is_int(self.route) or not 0 <= self.route < DEFAULT_LIMITS.max_fields:
                raise ValueError(
                    f"route must be an int from 0 to {DEFAULT_LIMITS.max_fields - 1} "
                    f"(a field's position), got {self.route!r}"
                )
        elif self.route is not None:
            raise ValueError(f"route={self.route!r} needs partitions > 1")
        self.durability: str = options.get("durability", "redis")
        if self.durability not in _DURABILITIES:
            raise ValueError(f"durability must be one of {', '.join(_DURABILITIES)}; got {self.durability!r}")
        # What the space charges (see tuplespace.Space), in units of 1e-9.
        charges = []
        for option in _CHARGES:
            try:
                charges.append(nanos(options.get(option, 0), option))
            except (InvalidValue, ValueTooLarge) as exc:
                raise ValueError(f"{option}: {exc}") from None
        self.charge_rate, self.creation_charge, self.firing_charge, self.step_charge = charges[:4]
        self.redirect_charge = charges[4]
        self.operator: str = options.get("operator", DEFAULT_OPERATOR)
        try:
            check_principal(self.operator)
        except InvalidValue as exc:
            raise ValueError(f"operator: {exc}") from None
        try:
            self.mint_amount: Credit = to_credit(options.get("mint_amount", 0), "mint_amount")
        except InvalidValue as exc:
            raise ValueError(f"mint_amount: {exc}") from None
        self.mint_bits: int = options.get("mint_bits", DEFAULT_MINT_BITS)
        if not _is_int(self.mint_bits) or not 1 <= self.mint_bits <= MAX_BITS:
            raise ValueError(f"mint_bits must be an int from 1 to {MAX_BITS}, got {self.mint_bits!r}")
        # The options of the space kept in Redis that the caller chose (the others
        # take what the space already has).
        self.given = {k for k in _STORED if k in options}

    def stored(self) -> list[str]:
        """The options as the ``open`` script stores them for a new space."""
        capacity = "" if self.capacity is None else str(self.capacity)
        route = "" if self.route is None else str(self.route)
        return [
            self.order,
            capacity,
            str(self.event_retention),
            str(self.event_retention_bytes),
            str(self.partitions),
            route,
            str(self.charge_rate),
            str(self.creation_charge),
            self.operator,
            str(self.firing_charge),
            str(self.step_charge),
            str(self.mint_amount),
            str(self.mint_bits),
            str(self.redirect_charge),
        ]

    def adopt(self, opened: list[bytes | None]) -> None:
        """Take the options the space has in Redis, from the reply of the ``open`` script;
        ValueError if the caller chose others, or other partitions (a space's partitioning
        is part of what it is); StoreError if that Redis is not one the space can live in:
        one that evicts keys when full, or a node of a Cluster reached by a redis:// URL
        (a space on it could not follow a failover, nor reach the other slots); not
        looked at when Redis does not let the URL's user run ``INFO``."""
        *stored, policy, maxmemory, cluster = (b"" if v is None else v for v in opened)
        if policy not in (b"noeviction", b"") and maxmemory not in (b"0", b""):
            raise StoreError(
                f"Redis at {self.shown} evicts keys when full (maxmemory-policy {policy.decode()}, "
                f"maxmemory {maxmemory.decode()}): it would drop what space {self.space!r} holds; "
                f"a space needs maxmemory-policy noeviction (or no maxmemory)"
            )
        if cluster == b"1" and not self.cluster:
            raise StoreError(
                f"Redis at {self.shown} is a node of a Redis Cluster: open space {self.space!r} "
                f"with a redis+cluster:// URL"
            )
        (
            order,
            capacity,
            retention,
            budget,
            partitions,
            route,
            rate,
            creation,
            operator,
            firing,
            step,
            amount,
            bits,
            redirect,
        ) = stored
        laid = (int(partitions or b"1"), int(route) if route else None)
        if laid != (self.partitions, self.route):
            raise ValueError(
                f"the space {self.space!r} in Redis exists with partitions={laid[0]}, route={laid[1]!r} "
                f"(not partitions={self.partitions}, route={self.route!r}): open it with those"
            )
        have: dict[str, Any] = {
            "order": order.decode(),
            "capacity": int(capacity) if capacity else None,
            "event_retention": int(retention),
            "event_retention_bytes": int(budget),
            "charge_rate": int(rate or b"0"),
            "creation_charge": int(creation or b"0"),
            "operator": operator.decode() or DEFAULT_OPERATOR,
            "firing_charge": int(firing or b"0"),
            "step_charge": int(step or b"0"),
            "mint_amount": to_credit(amount.decode() or "0", "mint_amount"),
            "mint_bits": int(bits or DEFAULT_MINT_BITS),
            "redirect_charge": int(redirect or b"0"),
        }
        for k in _STORED:
            if k in self.given and have[k] != getattr(self, k):
                raise options_conflict(self.space, k, _shown(k, have[k]), _shown(k, getattr(self, k)))
        self.order, self.capacity = have["order"], have["capacity"]
        self.event_retention = have["event_retention"]
        self.event_retention_bytes = have["event_retention_bytes"]
        self.mint_amount, self.mint_bits = have["mint_amount"], have["mint_bits"]
        self.charge_rate, self.creation_charge = have["charge_rate"], have["creation_charge"]
        self.operator = have["operator"]
        self.firing_charge, self.step_charge = have["firing_charge"], have["step_charge"]
        self.redirect_charge = have["redirect_charge"]


def _shown(option: str, value: object) -> str:
    """An option's value as a message shows it (an amount of credit, not its units of 1e-9)."""
    if option in _CHARGES and isinstance(value, int):
        return repr(str(from_nanos(value)))
    return repr(value)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_url(url: str, options: Mapping[str, Any]) -> Options:
    """The options of ``redis://host:port/db?space=jobs&order=lifo`` (``rediss://`` for
    TLS; ``redis+cluster://host:port?space=jobs`` for a Redis Cluster, reached first at
    that node); keyword ``options`` override those of the URL."""
    parts, shown = urlsplit(url), _without_password(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{shown!r} is not a URL of Redis ({', '.join(s + '://' for s in SCHEMES)})")
    database = parts.path.strip("/")
    if "+cluster" in parts.scheme and database not in ("", "0"):
        raise ValueError(f"{shown!r}: a Redis Cluster has only database 0")
    if not (database == "" or database.isdecimal()):
        raise ValueError(f"{shown!r}: the database must be a number (redis://host:port/0), not {database!r}")
    merged: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _NUMBERS:
            try:
                merged[name] = int(value)
            except ValueError:
                raise ValueError(f"option {name} must be an integer, got {value!r}") from None
        else:
            merged[name] = value
    merged.update(options)
    return Options(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), merged)


def _without_password(url: str) -> str:
    """``url`` with its password, if any, written ``***``."""
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if ":" not in user:
        return url
    netloc = user.partition(":")[0] + ":***" + at + host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def prefix(space: str, partition: int = 0) -> str:
    """The start of every key of ``space`` (of its ``partition``, after the first): its
    hash tag, so each partition has a slot of its own."""
    return "{ts:" + space + (f":{partition}" if partition else "") + "}"


def partition_of(value: Value, partitions: int) -> int:
    """The partition of the tuples holding ``value`` at the route field: from the SHA-1
    of its canonical encoding, so every process routes a value alike."""
    digest = hashlib.sha1(encode(value), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def route_of_tuple(t: Tuple, options: Options) -> int:
    """The partition that keeps the checked tuple ``t`` (the first, when ``t`` has no
    route field)."""
    route = options.route
    if route is None or len(t) <= route:
        return 0
    return partition_of(t[route], options.partitions)


def route_of_template(template: Template, options: Options) -> int | None:
    """The one partition that can hold the matches of ``template`` (an exact value at
    the route field, or too few fields to have one), or None: every partition can."""
    route = options.route
    if route is None or template.arity <= route:
        return 0
    for pos, _ in template.exact:
        if pos == route:
            return partition_of(check_value(template.fields[pos]), options.partitions)
    return None


# -- tuples and templates ---------------------------------------------------------------------


def _value_key(v: Value) -> tuple[str, bool]:
    """The index key of a value, and whether it is its full encoding (not a digest)."""
    data = encode(v)
    if len(data) <= _LONGEST_KEY:
        return data.decode(), True
    return "#" + hashlib.sha1(data, usedforsecurity=False).hexdigest(), False


def encode_tuple(t: object) -> tuple[Tuple, bytes, str]:
    """A tuple to write, checked and normalized as the embedded space does (raising
    :class:`~tuplespace.InvalidValue` naming the field), with its encoding and its
    index keys joined by newlines (the canonical JSON encoding holds none)."""
    checked = check_tuple(t, DEFAULT_LIMITS)
    arity = len(checked)
    keys = [f"a:{arity}"]
    keys.extend(f"x:{arity}:{pos}:{_value_key(v)[0]}" for pos, v in enumerate(checked))
    return checked, encode(checked), "\n".join(keys)


def candidates(template: Template) -> tuple[list[str], bool]:
    """The index keys whose intersection holds the candidates of ``template``, and
    whether every candidate matches it (then Redis can pick, take and count alone)."""
    arity = template.arity
    keys = []
    trusted = not template.checks
    for pos, _ in template.exact:
        key, full = _value_key(check_value(template.fields[pos]))
        keys.append(f"x:{arity}:{pos}:{key}")
        trusted = trusted and full
    return keys or [f"a:{arity}"], trusted


def decode_tuple(data: bytes) -> Tuple:
    t = decode(data)
    assert isinstance(t, tuple)
    return t


# -- records -------------------------------------------------------------------------------------


def lease_ms(seconds: float | None) -> str:
    """A lease as the scripts take it: milliseconds ('' for none)."""
    return "" if seconds is None else repr(seconds * 1000.0)


def encode_record(fields: Mapping[str, Value]) -> bytes:
    """The fields of a record as Redis keeps them: ``<tag>\\t<encoding>`` joined by
    ``\\x1f``, in the order of the tags (canonical JSON holds neither a tab nor a
    control character); the script that stores them indexes them."""
    return b"\x1f".join(tag.encode() + b"\t" + encode(v) for tag, v in fields.items())


def decode_fields(data: bytes) -> dict[str, Value]:
    """The fields of a record from what Redis keeps of them."""
    out: dict[str, Value] = {}
    if data:
        for item in data.split(b"\x1f"):
            tag, _, value = item.partition(b"\t")
            out[tag.decode()] = decode(value)
    return out


def decode_record(kept: bytes) -> tuple[int, str, dict[str, Value]]:
    """The version, path and fields of a record from what Redis keeps of it."""
    head, fields, _ = kept.split(b"\n", 2)
    version, _, path = head.decode().partition(" ")
    return int(version), path, decode_fields(fields)


def decode_change(seq: int, kind: str, data: bytes, ms: int) -> tuple[int, Change]:
    """A record's change, and its rid, from an entry of the log (kind ``r.<kind>``)."""
    head, tag, value = data.split(b"\n", 2)
    rid, version, path = head.decode().split(" ", 2)
    kind = kind[2:]
    v: Value = None
    if kind == "create":
        v = Map(decode_fields(value))
    elif kind in ("update", "move"):  # the value set, the path left
        v = decode(value)
    return int(rid), Change(seq, kind, path, tag.decode() or None, v, int(version), ms / 1000.0)


def record_candidates(template: RecordTemplate) -> list[str]:
    """The index keys whose intersection holds the candidates of a record template:
    those of its fields that are plain str or int values (every record without any)."""
    keys = [
        f"rx:{tag}:{_value_key(f)[0]}"
        for tag, f in template.fields.items()
        if type(f) is str or type(f) is int
    ]
    return keys or ["ra"]


def pack(command: tuple[str | bytes | int | float, ...]) -> bytes:
    """A command in Redis's protocol (RESP): an array of bulk strings, numbers as text
    (packed by hiredis, in C: a take's command in 1.0 µs, 3.4 in Python)."""
    packed: bytes = pack_command(command)  # type: ignore[arg-type]  # its stub takes 1-tuples only
    return packed


def pairs(reply: Iterable[Any]) -> list[tuple[int, bytes]]:
    """``[id, data, id, data, ...]`` from a script, as pairs."""
    it = iter(reply)
    return [(int(i), data) for i, data in zip(it, it, strict=True)]


def connection_error(options: Options, exc: BaseException, closed: bool) -> TupleSpaceError:
    """The error of a failed call to Redis for a space: the space was closed meanwhile,
    or what :func:`redis_error` says."""
    if closed:
        return SpaceClosed("the space was closed")
    return redis_error(f"Redis at {options.shown}", options.cluster, exc, f"space {options.space!r}")


def redis_error(where: str, cluster: bool, exc: BaseException, subject: str) -> TupleSpaceError:
    """The error of a failed call to ``where`` ("Redis at <its URL without password>", a
    Cluster if ``cluster``) for ``subject``: Redis cannot be reached, or it refused
    (wrong credentials, not the kind of Redis the URL says, a full memory, a key changed
    by another client, a script error)."""
    from redis.exceptions import (
        AuthenticationError,
        ConnectionError,
        MovedError,
        OutOfMemoryError,
        RedisClusterException,
        TimeoutError,
    )

    if isinstance(exc, Unreachable):
        return exc
    text = str(exc)
    if isinstance(exc, AuthenticationError):
        return StoreError(f"{where} refused the credentials of the URL for {subject}: {text}")
    if "Cluster mode is not enabled" in text:
        return StoreError(f"{where} is not a Redis Cluster: open {subject} with a redis:// URL")
    if not cluster and (isinstance(exc, MovedError) or "not allowed in cluster mode" in text):
        return StoreError(f"{where} is a node of a Redis Cluster: open {subject} with a redis+cluster:// URL")
    if "DB index is out of range" in text:
        return StoreError(f"{where}: Redis has no such database (its `databases` setting) for {subject}")
    if isinstance(exc, OutOfMemoryError):
        return StoreError(
            f"{where} is full (maxmemory reached, maxmemory-policy noeviction): it refused a change "
            f"that adds to {subject}, which changed nothing (reads and takes still run)"
        )
    if text.startswith("GONE"):
        return StoreError(
            f"{subject} is no longer in {where} (Redis lost its data: a restart without it, a flush; "
            f"or the space was deleted), and was not made anew: open it again"
        )
    if "WRONGTYPE" in text:
        return StoreError(
            f"{where}: a key of {subject} holds another kind of value than the space keeps there "
            f"(another client changed it): {text}"
        )
    if isinstance(exc, (ConnectionError, TimeoutError, OSError, RedisClusterException)):
        hint = ""
        if where.startswith("Redis at rediss") and text.startswith("Timeout connecting"):
            hint = " (a rediss:// URL needs a Redis that speaks TLS on that port)"
        return Unreachable(f"cannot reach {where} for {subject}: {text}{hint}")
    return StoreError(f"{where} failed for {subject}: {type(exc).__name__}: {text}")


class Clock:
    """The latest event seq a process knows of in the partitions of a partitioned
    space (a Lamport clock): each script run in a partition is given it, and the events
    it logs come after it; the partition's latest seq, read after each script, moves
    it on.  So the events of changes a process made one after the other are numbered
    in that order, whatever their partitions."""

    __slots__ = ("_lock", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self._lock = threading.Lock()

    def advance(self, seq: int) -> None:
        """Move on to ``seq`` if it is later."""
        with self._lock:
            if seq > self.seq:
                self.seq = seq


# -- calls waiting in this process -------------------------------------------------------------


W = TypeVar("W", "AsyncWake", "Wake")


class Waiter(Interest, Generic[W]):
    """A read or take waiting in this process.  The listener of the space's channel hands
    a reader the tuple it waits for (``result``) and offers a taker the id of a tuple
    to take (``offer``); an error that ends every wait is put in ``error``.  ``tx``: the
    transaction it waits in ('': none); ``group``: a take_all's wait, which takes every
    match when it looks; ``taking``: it is taking what it was offered (a take_all: every
    match), and the take_alls that came after it wait until it is done; ``deadline``: when
    it times out."""

    __slots__ = ("deadline", "error", "filed", "group", "offer", "result", "take", "taking", "tx", "wake")

    def __init__(self, seq: int, template: Template, take: bool, wake: W) -> None:
        super().__init__(seq, template)
        self.take = take
        self.wake: W = wake
        self.filed = False  # in the registry of the space's waiters
        self.deadline: float | None = None  # when it times out, in the space's time
        self.result: Tuple | None = None
        self.offer: tuple[int, Tuple] | None = None
        self.error: TupleSpaceError | None = None
        self.tx = ""
        self.group = False
        self.taking = False


class Writer(Generic[W]):
    """A write waiting in this process for room in a full space.  The listener tells
    the first writer of the room made (``room``); a writer passes on what it does not
    use when it ends, so writers get in in arrival order.  ``filed``: in the queue of the
    space's writers; ``deadline``: when it times out."""

    __slots__ = ("deadline", "error", "filed", "room", "trying", "wake")

    def __init__(self, wake: W) -> None:
        self.wake: W = wake
        self.room = 0  # room told of, not yet tried
        self.trying = 0  # room told of, being tried
        self.error: TupleSpaceError | None = None
        self.filed = True
        self.deadline: float | None = None


# What the two faces do differently, side by side (``scripts/unasync.py`` renames
# ``AsyncWake`` to ``Wake``): the async face runs on one event loop and needs no lock.


class AsyncWake:
    """Wakes one waiting call; the call clears it before it looks for what woke it."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float | None) -> bool:
        """Wait until set, at most ``timeout`` seconds (None: no limit); whether it was set."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class Wake:
    """Wakes one waiting call; the call clears it before it looks for what woke it."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float | None) -> bool:
        """Wait until set, at most ``timeout`` seconds (None: no limit; a wait longer
        than threads can wait at once ends early, and the caller looks again); whether
        it was set."""
        return self._event.wait(None if timeout is None else min(timeout, threading.TIMEOUT_MAX))


class AsyncClient:
    """Closes a client of ``redis.asyncio``: every connection, to every node of a Cluster;
    finds the master of a key on a Cluster."""

    @staticmethod
    async def close(client: Any) -> None:
        await client.aclose()

    @staticmethod
    async def master_of(client: Any, key: str, refresh: bool) -> tuple[str, int]:
        """The host and port of the master of ``key``'s slot (``refresh``: asking the
        Cluster again, after that master failed or moved the slot)."""
        await client.initialize()
        if refresh:
            await client.nodes_manager.initialize()
        node = client.get_node_from_key(key)
        return node.host, node.port


class Client:
    """Closes a client of ``redis``: every connection, to every node of a Cluster (whose
    ``close`` leaves the connections of its nodes open)."""

    @staticmethod
    def close(client: Any) -> None:
        client.close()
        disconnect = getattr(client, "disconnect_connection_pools", None)
        if disconnect is not None:
            disconnect()

    @staticmethod
    def master_of(client: Any, key: str, refresh: bool) -> tuple[str, int]:
        """The host and port of the master of ``key``'s slot (``refresh``: asking the
        Cluster again, after that master failed or moved the slot)."""
        if refresh:
            client.nodes_manager.initialize()
        node = client.get_node_from_key(key)
        return node.host, node.port


CLOCK_TIMEOUT = 10.0
"""The longest a follower of a simulated clock waits for Redis to answer (seconds)."""


class ClockFollower:
    """What makes a space kept in Redis follow a :class:`~tuplespace.SimulatedClock`: the
    space's time (``cfg``'s ``clock``) becomes the clock's, for every process, and moves
    forward with each :meth:`~tuplespace.SimulatedClock.advance`, which collects what
    expired by then, then tells ``moved`` the space's time (ms) in the advancing thread.
    Its calls are its own connection's (an advance is not a call of the space, and may
    come from any thread); the space sets the clock's time first."""

    def __init__(self, clock: Any, options: Options, moved: Callable[[float], None]) -> None:
        if not getattr(clock, "simulated", False):
            raise ValueError(
                f"clock: a space kept in Redis keeps Redis's time, or a SimulatedClock's; got {clock!r}"
            )
        if options.partitions > 1:
            raise ValueError("clock: a partitioned space keeps Redis's time")
        from redis import Redis
        from redis.cluster import RedisCluster

        self.clock = clock  # the simulated clock followed
        self._options = options
        self._moved = moved
        self._key = prefix(options.space)
        settings = {"socket_connect_timeout": CLOCK_TIMEOUT, "socket_timeout": CLOCK_TIMEOUT}
        try:
            self._redis: Any = (RedisCluster if options.cluster else Redis).from_url(
                options.server, **settings
            )
        except Exception as exc:
            raise connection_error(options, exc, False) from None
        clock.attach(self)

    def now(self) -> str:
        """The clock's time, as the script ``clock`` takes it (ms)."""
        return repr(self.clock.now() * 1000.0)

    def on_clock_advanced(self) -> None:
        from redis.exceptions import RedisError

        try:
            try:
                reply = self._redis.fcall(FUNCTIONS["clock"], 1, self._key, self.now())
            except RedisError as exc:
                if not unknown_function(exc):
                    raise
                self._redis.function_load(LIBRARY, replace=True)
                reply = self._redis.fcall(FUNCTIONS["clock"], 1, self._key, self.now())
        except RedisError as exc:
            raise connection_error(self._options, exc, False) from None
        self._moved(float(reply[0]))

    def close(self) -> None:
        Client.close(self._redis)


class AsyncCaller:
    """Calls a function that changes the state of an async face from any thread: on the
    event loop the face runs on (at once when called there), whose coroutines see the
    change when they next run."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def __call__(self, function: Callable[..., None], *args: Any) -> None:
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # no loop runs in this thread
            here = False
        if here:
            function(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing waits on it
                self._loop.call_soon_threadsafe(function, *args)


class Caller:
    """Calls a function that changes the state of a sync face from any thread: at once
    (the face guards its state with a lock)."""

    def __call__(self, function: Callable[..., None], *args: Any) -> None:
        function(*args)


AsyncGuard = contextlib.nullcontext
"""The async face's calls and its listener share one thread: nothing to guard."""
Guard = threading.Lock
"""The sync face's calls and its listener run in threads of their own."""
