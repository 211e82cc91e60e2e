"""Records: the named tuples of a space, with addresses, credit and capabilities.

Design
------
A :class:`RecordStore` belongs to an :class:`~tuplespace._engine.Engine` and
shares its clock, its lock (held by the shell around every call), its event log,
its lease heap and its journal.  Like the engine it does no I/O and never waits.
Every operation is a call with plain data (rids, tokens, paths, tags, values,
templates), so a server can offer each one as it is.

Records.  A record (:class:`Rec`) has an id ``rid``, given in creation order; a
``path`` inside the space (``sensors/kitchen``, see :mod:`tuplespace._names`),
which a move changes; and tagged fields in a dict.  Handles name a record by its
rid (the full handle) or by a capability token, so a move never breaks them.  Its
address is the space's prefix (the node's base URI, ``spaces/``, the space's
name) followed by its path.

Index.  Every field is indexed by tag and by the typed key of its value, as the
engine indexes tuples by position: a key held by one record maps to it, by more to
a dict of them by rid.  A template with exact values looks up the smallest bucket,
so ``find({"id": 7})`` touches only the records whose ``id`` is 7.

Containment.  A field whose value is the address of a record of this space
contains that record.  ``refs`` maps such tags to the contained rid and
``containers`` counts, per containing record, the fields that hold it, so
``$refcount`` is ``len(containers)``.  The level of a record is one more than the
highest level among the records it contains (0 if none).  A record's descendants
all have lower levels, so setting a field of A to B closes a cycle only if B's
level exceeds A's and A is found below B, searching only records whose level is
above A's.

Credit (:mod:`tuplespace._credit`).  A record keeps the credit it held at time
``since`` and its burn rate since then; its expiry time is when that runs out, an
item in the engine's lease heap like a tuple's lease, so it expires exactly on
time without a thread sweeping.  A set that changes its size settles the credit
at the new burn rate and moves the expiry; a record has one live item in the heap
however often its expiry moves.  What a record burns goes to the operator's account:
what it drained when it settles, all it held when it ends (see
:class:`~tuplespace._credit.Accounts`).

Capabilities (:mod:`tuplespace._capabilities`) and redirections (the old path of
a moved record, answering for it until its lease ends) lapse through the lease
heap too.

Events.  Creations, updates, moves, destructions and expiries are logged in the
engine's event log with the same numbering as tuple events; watchers
(:class:`~tuplespace._events.RecordFeed`) get them in order and resume from the
log by number.

Takers and holds.  A blocked take (:class:`RecordTaker`) waits in a queue in
arrival order.  A create, set, move or release that leaves a record takeable hands
it to the oldest taker whose template and ``under`` match, as the engine's
waiters get tuples.  The record is *held* for the taker: it stays stored (same
rid, path, fields, version, credit, lease and capabilities, nothing written to the
journal) but no lookup by path, find or take sees it and no handle changes it
(one may still read it, so a create answers with what it created); its path stays
reserved.  A
hold ends in :meth:`RecordStore.confirm` (the record is removed for good; the one
``destroy`` event is emitted then) or :meth:`RecordStore.release` (it is seen
again as it was, with no event, and offered to the takers).  A taker that is gone
before it received its record releases it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from . import _xpath
from ._capabilities import READ_ONLY, Cap, Capabilities, operations
from ._codec import encode
from ._containment import check_cycle, check_holder, link, relevel, unlink
from ._credit import (
    ZERO,
    Accounts,
    burn_rate,
    check_principal,
    credit_left,
    lifetime,
    rounded,
    seconds,
    stored_size,
    to_credit,
)
from ._errors import (
    CapabilityRevoked,
    ContainmentCycle,
    InvalidValue,
    LimitReached,
    NotAllowed,
    RecordExists,
    RecordInUse,
    RecordNotFound,
    UnsupportedType,
    ValueTooLarge,
)
from ._events import CHANGE_KINDS, Change, RecordEvent, RecordFeed, RecordWatchers
from ._mint import Challenge, Mint
from ._names import KNOWN_TAGS, check_path, check_tag, path_prefix
from ._recordindex import RecordIndex
from ._store import AccountRow, CapabilityRow, RecordRow, RedirectRow
from ._templates import RecordTemplate
from ._values import (
    URI,
    Credit,
    Limits,
    Map,
    Value,
    _key_path,
    _prefix,
    check_tuple,
    footprint,
    handle_address,
)

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "COMPUTED_TAGS",
    "DEFAULT_BASE_URI",
    "DEFAULT_MINT_BITS",
    "DEFAULT_OPERATOR",
    "DEFAULT_PRINCIPAL",
    "ROOT_RID",
    "Rec",
    "RecordStore",
    "RecordTaker",
    "Redirect",
    "check_field",
    "check_fields",
]

COMPUTED_TAGS: Final = ("$PK", "$version", "$credit", "$lifetime", "$refcount", "$level")
"""Tags computed when read; no record stores them."""

ROOT_RID: Final = 0
"""The rid of the root record ``$``; records get rids from 1."""
_NO_BURN: Final = Decimal(0)  # what a record burns where storage costs nothing

ROOT_OPERATIONS: Final = frozenset({"read", "watch"})
"""What the handle of the root record ``$`` may do."""

DEFAULT_PRINCIPAL: Final = "default"
DEFAULT_BASE_URI: Final = "tuplespace://local/"  # a space's records' base URI when no node names them
DEFAULT_OPERATOR: Final = "operator"  # the principal whose account receives what is burned
DEFAULT_MINT_BITS: Final = 20  # the zero bits of a stamp: about a million hashes
"""The principal whose account pays when a call names none."""

_MISSING: Any = object()
_INT64 = 1 << 63


class Rec:
    """A stored record.  ``fields`` maps tags to values; ``refs`` tags to the rids of
    contained records; ``containers`` the rids of containing records to how many
    of their fields hold this one."""

    __slots__ = (
        "burn",
        "caps",
        "containers",
        "credit",
        "expires",
        "fields",
        "holders",
        "level",
        "path",
        "redirects",
        "refs",
        "remote",
        "rid",
        "ro",
        "scheduled",
        "since",
        "size",
        "version",
    )

    def __init__(self, rid: int, path: str, fields: dict[str, Value]) -> None:
        self.rid = rid
        self.path = path
        self.fields = fields
        self.version = 1
        self.expires: float | None = None
        self.scheduled: float | None = None  # the time of its item in the lease heap
        self.credit: Credit = ZERO  # held at time ``since``
        self.since = 0.0
        self.burn = _NO_BURN  # credit per second
        self.size = 0  # bytes stored (kept only when the space charges for storage)
        self.refs: dict[str, int] | None = None
        self.containers: dict[int, int] | None = None
        self.remote: dict[str, tuple[str, int]] | None = None  # tag -> (address, level) on other nodes
        self.holders: dict[str, Hold] | None = None  # records of other nodes holding this one
        self.level = 0
        self.caps: set[str] | None = None
        self.redirects: set[str] | None = None
        self.ro: str | None = None  # the token of its read-only handle

    def __repr__(self) -> str:
        return f"Rec({self.rid}, {self.path!r}, v{self.version})"


class Redirect:
    """The old ``path`` of a moved record, answering for ``rid`` until ``expires``; or,
    for a record moved to another node, for its address there, ``to``."""

    __slots__ = ("expires", "path", "rid", "to")

    def __init__(self, path: str, rid: int, expires: float | None, to: str | None = None) -> None:
        self.path = path
        self.rid = rid
        self.expires = expires
        self.to = to


class Hold:
    """A record of another node (its address ``holder``) holding the record ``rid``: a
    soft reference that lapses at ``expires`` unless refreshed before."""

    __slots__ = ("expires", "holder", "rid", "scheduled")

    def __init__(self, rid: int, holder: str, expires: float) -> None:
        self.rid = rid
        self.holder = holder
        self.expires = expires
        self.scheduled: float | None = None  # the time of its item in the lease heap


class RecordTaker:
    """A blocked take of a record.  ``rec`` is the record held for it once handed
    one; ``wake`` is called (under the shell's lock) then, and when the space closes."""

    __slots__ = ("rec", "template", "under", "wake")

    def __init__(self, template: RecordTemplate, under: str | None, wake: Callable[[], object]) -> None:
        self.template = template
        self.under = under
        self.wake = wake
        self.rec: Rec | None = None


class RecordStore:
    """The records of one space (see the module docstring).  Every method must be
    called with the shell's lock held."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        base_uri: str,
        charge_rate: object,
        creation_charge: object,
        operator: str = DEFAULT_OPERATOR,
        mint_amount: object = 0,
        mint_bits: object = DEFAULT_MINT_BITS,
        redirect_charge: object = 0,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a space's name is a non-empty str, got {name!r}")
        if not isinstance(base_uri, str) or not base_uri.endswith("/") or "://" not in base_uri:
            raise ValueError(
                f"base_uri is an absolute URI ending with '/', like 'tuplespace://local/'; got {base_uri!r}"
            )
        URI(base_uri)  # valid URI text
        self._engine = engine
        self.name = name
        self.base_uri = base_uri
        self.prefix = f"{base_uri}spaces/{quote(name, safe='')}/"
        amounts = []
        for option, amount in (
            ("charge_rate", charge_rate),
            ("creation_charge", creation_charge),
            ("redirect_charge", redirect_charge),
        ):
            try:
                amounts.append(to_credit(amount, option))
            except InvalidValue as exc:
                raise ValueError(f"{option}: {exc}") from None
        self.charge_rate, self.creation_charge, self.redirect_charge = amounts
        self.charging = self.charge_rate > 0 or self.creation_charge > 0
        try:
            self.accounts = Accounts(engine, operator, self.drained)
        except InvalidValue as exc:
            raise ValueError(f"operator: {exc}") from None
        self.mint = Mint(engine.clock, mint_amount, mint_bits)
        self.caps = Capabilities(engine)
        self._by_rid: dict[int, Rec] = {}
        self._by_path: dict[str, Rec] = {}
        self._index = RecordIndex()
        self._redirects: dict[str, Redirect] = {}
        self._watchers = RecordWatchers()
        self._last_rid = ROOT_RID
        self._held: set[int] = set()  # rids of records held for a take (see the module docstring)
        self._takers: dict[RecordTaker, None] = {}  # blocked takes, oldest first
        self._counts = dict.fromkeys(("record_scans", "records_expired"), 0)
        # Federation (docs/federation.md): the level of another node's record whose
        # address a field may hold, if this node registered it as a reference (None:
        # a plain value); the records holding such references; the holds counted.
        self.remote_level: Callable[[str], int | None] | None = None
        self._holding: set[int] = set()
        self._holds = 0
        self.moved: dict[str, Redirect] = {}  # paths of records moved to other nodes

    # -- addresses --------------------------------------------------------------------

    def address(self, rid: int, token: str | None) -> URI:
        """The address a handle is known by: its capability's, else the record's own."""
        if token is not None:
            return URI(f"{self.prefix}$cap/{token}")
        if rid == ROOT_RID:
            return URI(self.prefix + "$")
        return URI(self.prefix + self._rec(rid).path)

    def resolve(
        self, ref: object, principal: str | None = None
    ) -> tuple[int, str | None, frozenset[str] | None]:
        """What ``ref`` (a path, ``"$"``, or an address of this space) names:
        ``(rid, token, operations)``; token and operations are None for a full handle.
        A path left by a move is followed to the record that moved, for which
        ``principal`` (a caller's; None for the space's own lookups) pays
        ``redirect_charge``; a record handle stands for its address."""
        self._tick()
        if type(ref) is not str:  # a plain str is no handle (the common case: a path)
            ref = handle_address(ref) or ref
        if isinstance(ref, URI) or (isinstance(ref, str) and "://" in ref):
            text = str(ref)
            if not text.startswith(self.prefix):
                raise RecordNotFound(
                    f"{text} is not an address in this space (its addresses start {self.prefix})"
                )
            ref = text[len(self.prefix) :]
            if ref.startswith("$cap/"):
                token = ref[5:]
                cap = self.caps.get(token)
                return cap.rid, token, cap.ops
        elif not isinstance(ref, str):
            raise UnsupportedType(
                f"a record is named by a path, a URI, a str or a handle, not {type(ref).__name__}"
            )
        if ref == "$":
            return ROOT_RID, None, None
        rec = self._at(ref)
        if rec is None:
            check_path(ref)
            raise RecordNotFound(f"no record at {ref!r}")
        if self.redirect_charge and principal is not None and rec.path != ref:
            self.accounts.charge(principal, self.redirect_charge)
        return rec.rid, None, None

    def has(self, path: str) -> bool:
        """Whether a record is at ``path`` (or moved from there, while its redirection
        lasts), as :meth:`resolve` would find it; ``path`` is not checked."""
        self._tick()
        return self._at(path) is not None

    def _at(self, path: str) -> Rec | None:
        """The record at ``path``, or the one that moved from there while its
        redirection lasts."""
        rec = self._by_path.get(path)
        if rec is None:
            redirect = self._redirects.get(path)
            if redirect is not None:
                rec = self._by_rid[redirect.rid]
        if rec is not None and rec.rid in self._held:
            return None
        return rec

    def _contained(self, v: URI) -> tuple[URI, Rec | None]:
        """A URI field value, and the record it names if it is an address of this space
        (then the value is that record's current address)."""
        text = str(v)
        if not text.startswith(self.prefix):
            return v, None
        path = text[len(self.prefix) :]
        if path.startswith("$"):
            if path == "$":
                raise InvalidValue("the root record $ cannot be contained in a record")
            return v, None  # a capability address: a value like any other
        rec = self._at(path)
        if rec is None:
            raise RecordNotFound(f"{text} names no record: a field can only contain a record that exists")
        return (v if rec.path == path else URI(self.prefix + rec.path)), rec

    # -- finding what a handle names -------------------------------------------------------

    def _tick(self) -> None:
        engine = self._engine
        engine.check_open()
        if engine.leases or engine.deadlines:
            engine.tick()

    def _rec(self, rid: int) -> Rec:
        rec = self._by_rid.get(rid)
        if rec is None:
            raise RecordNotFound(f"record {rid} is gone (destroyed or expired)")
        return rec

    def target(self, rid: int, token: str | None, op: str) -> Rec:
        """The record a handle names, if it may do ``op`` on it."""
        self._tick()
        if token is None:
            rec = self._by_rid.get(rid)
            if rec is None:
                if rid == ROOT_RID:
                    raise NotAllowed(f"the root record $ cannot {op}", operation=op, allowed=ROOT_OPERATIONS)
                raise RecordNotFound(f"record {rid} is gone (destroyed or expired)")
        else:
            cap = self.caps.get(token)
            if op not in cap.ops:
                raise NotAllowed(
                    f"this handle does not allow {op} (it allows {', '.join(sorted(cap.ops))})",
                    operation=op,
                    allowed=cap.ops,
                )
            rec = self._rec(cap.rid)
        if self._held and rec.rid in self._held and op != "read":
            raise RecordNotFound(f"record {rec.rid} is being taken")
        return rec

    # -- reading -------------------------------------------------------------------------

    def _fields(self, rid: int, token: str | None) -> tuple[dict[str, Value], Rec | None]:
        if token is None and rid == ROOT_RID:
            self._tick()
            return self._root_fields(), None
        rec = self.target(rid, token, "read")
        return rec.fields, rec

    def get(self, rid: int, token: str | None, tag: str, default: Value = None) -> Value:
        """The value of one field (a computed one for a tag starting with ``$``)."""
        if token is None:  # the full handle's path, inlined: reads are the hot path
            engine = self._engine
            if engine.closed or engine.leases or engine.deadlines:
                self._tick()
            rec = self._by_rid.get(rid)
            if rec is not None:
                v = rec.fields.get(tag, _MISSING)
                if v is not _MISSING:
                    return v
                return self._missing(rec, tag, default)
        fields, rec = self._fields(rid, token)
        v = fields.get(tag, _MISSING)
        return v if v is not _MISSING else self._missing(rec, tag, default)

    def _missing(self, rec: Rec | None, tag: str, default: Value) -> Value:
        if isinstance(tag, str) and tag.startswith("$"):
            return self._computed(rec, tag)
        check_tag(tag)
        return default

    def view(self, rid: int, token: str | None, tags: Iterable[str]) -> tuple[Value, ...]:
        """The values of several fields, in the order asked (None for a missing one)."""
        fields, rec = self._fields(rid, token)
        out = []
        for i, tag in enumerate(tags):
            v = fields.get(tag, _MISSING)
            if v is _MISSING:
                try:
                    v = self._missing(rec, tag, None)
                except InvalidValue as exc:
                    raise _prefix(exc, f"[{i}]") from None
            out.append(v)
        return tuple(out)

    def all(self, rid: int, token: str | None) -> Map:
        """Every stored field, in the order the tags were first set."""
        fields, _ = self._fields(rid, token)
        return _map(fields)

    def snapshot(self, rid: int, token: str | None) -> tuple[URI, Map, int]:
        """The record's address, fields and version, read at one instant."""
        fields, rec = self._fields(rid, token)
        if rec is None:
            return URI(self.prefix + "$"), _map(fields), 0
        return URI(self.prefix + rec.path), _map(fields), rec.version

    def tags(self, rid: int, token: str | None) -> list[str]:
        """The stored tags, in the order they were first set."""
        fields, _ = self._fields(rid, token)
        return list(fields)

    def _computed(self, rec: Rec | None, tag: str) -> Value:
        if tag not in COMPUTED_TAGS:
            raise InvalidValue(f"{tag!r} is not a computed tag; they are {', '.join(COMPUTED_TAGS)}")
        if rec is None:  # the root
            return URI(self.prefix + "$") if tag == "$PK" else None
        if tag == "$PK":
            return URI(self.prefix + rec.path)
        if tag == "$version":
            return rec.version
        if tag == "$credit":
            return credit_left(rec.credit, rec.burn, self._engine.clock.now() - rec.since)
        if tag == "$lifetime":
            return None if rec.expires is None else max(rec.expires - self._engine.clock.now(), 0.0)
        if tag == "$refcount":
            return (0 if rec.containers is None else len(rec.containers)) + (
                0 if rec.holders is None else len(rec.holders)
            )
        return rec.level

    def _root_fields(self) -> dict[str, Value]:
        top = sorted(r.path for r in self._by_rid.values() if not r.containers and not r.holders)
        return {"ME": URI(self.base_uri), "TUPS": _map({p: URI(self.prefix + p) for p in top})}

    # -- creating --------------------------------------------------------------------

    def _links(self, fields: dict[str, Value]) -> tuple[dict[str, Rec], dict[str, tuple[str, int]]]:
        """The records that ``fields`` contain, by tag (their values become current
        addresses), and the records of other nodes they hold."""
        links: dict[str, Rec] = {}
        far: dict[str, tuple[str, int]] = {}
        for tag, v in fields.items():
            if type(v) is URI:
                fields[tag], child = self._contained(v)
                if child is not None:
                    links[tag] = child
                elif self.remote_level is not None:
                    level = self.remote_level(str(v))
                    if level is not None:
                        far[tag] = (str(v), level)
        return links, far

    def create(
        self,
        path: object,
        fields: object,
        credit: object = None,
        lease: float | None = None,
        principal: str = DEFAULT_PRINCIPAL,
        carried: bool = False,
    ) -> int:
        """Create a record at ``path``; its rid.  Raises RecordExists, InvalidValue,
        RecordNotFound (a field naming no record) or InsufficientCredit, doing nothing.
        ``carried``: the credit comes with the record from another node and enters the
        space; ``principal`` pays the rest (a lease's, and the creation charge)."""
        self._tick()
        path = self._free(path)
        checked = check_fields(fields, self._engine.limits)
        rec = self._create(path, checked, credit, lease, principal, carried)
        self._offer(rec)
        return rec.rid

    def _free(self, path: object) -> str:
        """``path``, checked and held by no record."""
        path = check_path(path)
        if path in self._by_path:
            raise RecordExists(f"a record already has the path {path!r}")
        return path

    def _create(
        self,
        path: str,
        fields: dict[str, Value],
        credit: object,
        lease: float | None,
        principal: str,
        carried: bool = False,
    ) -> Rec:
        links, far = self._links(fields)
        now = self._engine.clock.now()
        size = stored_size(path, fields) if self.charge_rate else 0
        given, expires = self._funding(size, credit, lease, now)
        if self.charging:
            paid = given - to_credit(credit, "credit") if carried and credit is not None else given
            self.accounts.debit(principal, paid + self.creation_charge)
            self.accounts.burn(self.creation_charge)
        self._last_rid += 1
        rec = Rec(self._last_rid, path, fields)
        rec.size = size
        rec.credit, rec.since = given, now
        if self.charge_rate:
            rec.burn = burn_rate(self.charge_rate, size)
        rec.expires = expires
        self._by_rid[rec.rid] = rec
        self._by_path[path] = rec
        self._drop_redirect(path)
        for tag, v in fields.items():
            self._index.add(rec, tag, v)
        if links or far:
            for tag, child in links.items():
                link(rec, tag, child)
            if far:
                rec.remote = far
                self._holding.add(rec.rid)
            relevel(self._by_rid, rec)
        self._schedule(rec)
        self._journal(rec)
        self._emit("create", rec, None, _map(fields))
        return rec

    def _funding(
        self, size: int, credit: object, lease: float | None, now: float
    ) -> tuple[Credit, float | None]:
        """A new record's credit and expiry time (its credit is what it costs)."""
        given = ZERO if credit is None else to_credit(credit, "credit")
        expires = self._engine.expiry(lease)
        if not self.charge_rate:
            return given, expires
        burn = burn_rate(self.charge_rate, size)
        if expires is not None and lease is not None:
            given = rounded(given + burn * seconds(lease), up=True)
        if not given:
            raise InvalidValue(
                "this space charges for storage: a record needs credit= or a lease= to pay for it", "credit"
            )
        return given, now + lifetime(given, burn)

    def _settle(self, rec: Rec, size: int) -> None:
        """Account for the credit drained so far; from now on the record drains at
        the burn rate of ``size`` bytes."""
        now = self._engine.clock.now()
        left = credit_left(rec.credit, rec.burn, now - rec.since)
        self.accounts.burn(rec.credit - left)
        rec.credit = left
        rec.since = now
        rec.size = size
        rec.burn = burn_rate(self.charge_rate, size)
        rec.expires = now + lifetime(rec.credit, rec.burn)
        self._schedule(rec)

    def drained(self) -> Decimal:
        """The credit the records have drained since they last settled (the
        operator's, not yet in its account)."""
        if not self.charge_rate:
            return ZERO
        now = self._engine.clock.now()
        return sum(
            (
                rec.credit - credit_left(rec.credit, rec.burn, now - rec.since)
                for rec in self._by_rid.values()
            ),
            ZERO,
        )

    def settle_all(self) -> None:
        """Settle every record: what they drained goes to the operator's account."""
        if self.charge_rate:
            for rec in self._by_rid.values():
                self._settle(rec, rec.size)
                self._journal(rec)

    def grant(self, principal: str, amount: object) -> Credit:
        """Add ``amount`` to the account of ``principal``; its new balance."""
        self._engine.check_open()
        return self.accounts.grant(principal, amount)

    def transfer(self, source: str, target: str, amount: object) -> Credit:
        """Move ``amount`` between two accounts; the new balance of ``source``."""
        self._engine.check_open()
        return self.accounts.transfer(source, target, amount)

    def challenge(self) -> Challenge:
        """The challenge that stamps are made on now (see :mod:`tuplespace._mint`)."""
        self._engine.check_open()
        return self.mint.challenge()

    def mint_credit(self, challenge: object, nonce: object, principal: str) -> Credit:
        """Spend a stamp: credit ``principal`` with what it mints; the new balance."""
        self._engine.check_open()
        check_principal(principal)
        return self.accounts.grant(principal, self.mint.spend(challenge, nonce))

    # -- changing ----------------------------------------------------------------

    def set(self, rid: int, token: str | None, tag: str, value: object) -> int:
        """Set one field; the record's new version."""
        engine = self._engine
        rec = None
        if token is None and not (engine.closed or engine.leases or engine.deadlines):
            rec = self._by_rid.get(rid)  # the full handle's path, inlined: set is a hot path
        if rec is None or (self._held and rid in self._held):
            rec = self.target(rid, token, "set")
        fields = rec.fields
        if type(tag) is not str:
            check_tag(tag)
        old = fields.get(tag, _MISSING)  # a tag the record has is a valid one
        if old is _MISSING and tag not in KNOWN_TAGS:
            check_tag(tag)
        limits = engine.limits
        v = check_field(tag, value, limits)
        child = None
        far = None
        if type(v) is URI:
            v, child = self._contained(v)
            if child is not None:
                check_cycle(self._by_rid, rec, child)
            elif self.remote_level is not None:
                far = self.remote_level(str(v))
        if old is _MISSING and len(fields) >= limits.max_fields:
            raise ValueTooLarge(
                f"the record has {len(fields)} tags already, the most it may have",
                limit="max_fields",
                maximum=limits.max_fields,
            )
        if self.charge_rate:
            size = rec.size + len(encode(v)) + (len(tag) if old is _MISSING else -len(encode(old)))
            self._settle(rec, size)
        if old is not _MISSING:
            self._index.remove(rec, tag, old)
        fields[tag] = v
        self._index.add(rec, tag, v)
        refs = rec.refs
        held = refs is not None and tag in refs
        remote = rec.remote
        held_far = remote is not None and tag in remote
        if held or child is not None or held_far or far is not None:
            if held:
                unlink(self._by_rid, rec, tag)
            if held_far:
                self._unhold(rec, tag)
            if child is not None:
                link(rec, tag, child)
            if far is not None:
                if rec.remote is None:
                    rec.remote = {}
                    self._holding.add(rec.rid)
                rec.remote[tag] = (str(v), far)
            relevel(self._by_rid, rec)
        rec.version += 1
        self._journal(rec)
        self._emit("update", rec, tag, v)
        version = rec.version
        if self._takers:
            self._offer(rec)
        return version

    def refresh(
        self,
        rid: int,
        token: str | None,
        credit: object = None,
        lease: float | None = None,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> float | None:
        """Add credit to the record (refinance), or give it a new lease; its expiry time.

        In a space that charges for storage, ``lease=s`` adds the credit the record
        needs to live ``s`` more seconds at its current burn rate (none if it has
        that already); otherwise it sets the lease to ``s`` seconds from now.
        """
        rec = self.target(rid, token, "refresh")
        if credit is None and lease is None:
            raise InvalidValue("refresh needs credit= or lease=")
        add = ZERO if credit is None else to_credit(credit, "credit")
        now = self._engine.clock.now()
        expires = self._engine.expiry(lease) if lease is not None else rec.expires
        if self.charge_rate:
            current = credit_left(rec.credit, rec.burn, now - rec.since)
            if lease is not None:
                if expires is None:
                    raise InvalidValue(
                        "this space charges for storage: a record cannot live forever", "lease"
                    )
                add = Credit(add + rounded(rec.burn * seconds(lease) - current, up=True))
            self.accounts.debit(principal, add)
            self.accounts.burn(rec.credit - current)
            rec.credit = Credit(current + add)
            rec.since = now
            rec.expires = now + lifetime(rec.credit, rec.burn)
        else:
            if self.charging:
                self.accounts.debit(principal, add)
            rec.credit = Credit(rec.credit + add)
            rec.expires = expires
        self._schedule(rec)
        self._journal(rec)
        return rec.expires

    def clone(
        self,
        rid: int,
        token: str | None,
        path: object,
        credit: object = None,
        lease: float | None = None,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> int:
        """A new record at ``path`` with the fields of this one; the new rid."""
        rec = self.target(rid, token, "clone")
        new = self._create(self._free(path), dict(rec.fields), credit, lease, principal)
        self._offer(new)
        return new.rid

    def move(self, rid: int, path: object, redirect_lease: float | None) -> None:
        """Give the record a new path; the old one redirects to it for ``redirect_lease``
        seconds (None: as long as the record lives; 0: no redirection)."""
        rec = self.target(rid, None, "move")
        path = self._free(path)
        expires = None if redirect_lease == 0 else self._engine.expiry(redirect_lease)
        old = rec.path
        del self._by_path[old]
        rec.path = path
        self._by_path[path] = rec
        self._drop_redirect(path)
        if redirect_lease != 0:
            self._add_redirect(Redirect(old, rid, expires), rec)
        if self.charge_rate:
            self._settle(rec, rec.size + len(path.encode()) - len(old.encode()))
        rec.version += 1
        self._journal(rec)
        self._emit("move", rec, None, old)
        address = URI(self.prefix + path)
        for container in list(rec.containers or ()):
            c = self._by_rid[container]
            for tag, child in (c.refs or {}).items():
                if child == rid:
                    self._rewrite(c, tag, address)
        self._offer(rec)

    def _rewrite(self, rec: Rec, tag: str, v: Value, emit: bool = True) -> None:
        """Change a field as a consequence of another record's move or end."""
        old = rec.fields[tag]
        if self.charge_rate:
            self._settle(rec, rec.size + len(encode(v)) - len(encode(old)))
        self._index.remove(rec, tag, old)
        rec.fields[tag] = v
        self._index.add(rec, tag, v)
        rec.version += 1
        self._journal(rec)
        if emit:
            self._emit("update", rec, tag, v)

    def destroy(self, rid: int, token: str | None, force: bool = False) -> None:
        """Remove the record.  One that other records contain is removed only if
        ``force``; their fields that held it become None."""
        rec = self.target(rid, token, "destroy")
        if (rec.containers or rec.holders) and not force:
            refcount = self._computed(rec, "$refcount")
            raise RecordInUse(
                f"{rec.path} is contained in {refcount} record(s) ($refcount); "
                "destroy(force=True) removes it and sets their fields that held it to None"
            )
        self._remove(rec, "destroy")

    def _remove(self, rec: Rec, kind: str, emit: bool = True) -> None:
        if self.charging:
            self.accounts.burn(rec.credit)  # what it drained since it last settled, and what it held
        for tag, v in rec.fields.items():
            self._index.remove(rec, tag, v)
        for tag in list(rec.refs or ()):
            unlink(self._by_rid, rec, tag)
        self._holding.discard(rec.rid)
        if rec.holders:
            self._holds -= len(rec.holders)
        del self._by_rid[rec.rid]
        del self._by_path[rec.path]
        for token in list(rec.caps or ()):
            self.caps.end(token, "destroyed")
        journal = self._engine.journal
        for path in rec.redirects or ():
            del self._redirects[path]
            if journal is not None:
                journal.delete_row(RedirectRow, path)
        if journal is not None:
            journal.delete_row(RecordRow, rec.rid)
        if emit:
            self._emit(kind, rec, None, None)
        for feed in self._watchers.pop(rec.rid):
            self._engine.unsubscribe(feed)
        for container in list(rec.containers or ()):
            c = self._by_rid[container]
            for tag, child in list((c.refs or {}).items()):
                if child == rec.rid:
                    unlink(self._by_rid, c, tag)
                    self._rewrite(c, tag, None, emit)
            relevel(self._by_rid, c)

    # -- capabilities ---------------------------------------------------------------

    def capability(self, rid: int, ops: Iterable[str], lease: float | None) -> str:
        """A new capability granting ``ops`` on the record for ``lease`` seconds; its token."""
        rec = self.target(rid, None, "capability")
        return self._grant(rec, operations(ops), self._engine.expiry(lease), ro=False)

    def read_only(self, rid: int) -> str:
        """The token of the record's read-only handle (``$RO``), made on first use."""
        rec = self.target(rid, None, "capability")
        if rec.ro is None:
            rec.ro = self._grant(rec, READ_ONLY, None, ro=True)
        return rec.ro

    def _grant(self, rec: Rec, ops: frozenset[str], expires: float | None, ro: bool) -> str:
        cap = self.caps.grant(rec.rid, ops, expires, ro)
        if rec.caps is None:
            rec.caps = set()
        rec.caps.add(cap.token)
        if expires is not None:
            self._push(expires, cap)
        return cap.token

    def revoke(self, rid: int, token: str) -> None:
        """End the capability ``token`` of the record ``rid`` (a full handle's call)."""
        rec = self.target(rid, None, "revoke")
        if self.caps.get(token).rid != rid:
            raise CapabilityRevoked("the capability belongs to another record", expired=False)
        self._end_cap(rec, token, "revoked")

    def _end_cap(self, rec: Rec, token: str, why: str) -> None:
        """End a capability that was revoked or ran out, and the watches through it."""
        self.caps.end(token, why)
        if rec.caps is not None:
            rec.caps.discard(token)
        if rec.ro == token:
            rec.ro = None
        for feed in self._watchers.pop_through(rec.rid, token):
            self._engine.unsubscribe(feed)

    def expires_at(self, rid: int, token: str | None) -> float | None:
        """When the handle's capability ends (None: never, or a full handle)."""
        return None if token is None else self.caps.get(token).expires

    # -- redirections -----------------------------------------------------------------

    def _add_redirect(self, redirect: Redirect, rec: Rec) -> None:
        self._redirects[redirect.path] = redirect
        if rec.redirects is None:
            rec.redirects = set()
        rec.redirects.add(redirect.path)
        if redirect.expires is not None:
            self._push(redirect.expires, redirect)
        journal = self._engine.journal
        if journal is not None:
            journal.put_row(RedirectRow(redirect.path, redirect.rid, redirect.expires))

    def _drop_redirect(self, path: str) -> None:
        if self.moved and self.moved.pop(path, None) is not None:
            self._forget_moved(path)
        redirect = self._redirects.pop(path, None)
        if redirect is not None:
            rec = self._by_rid.get(redirect.rid)
            if rec is not None and rec.redirects is not None:
                rec.redirects.discard(path)
            journal = self._engine.journal
            if journal is not None:
                journal.delete_row(RedirectRow, path)

    # -- finding -------------------------------------------------------------------

    def _matching(self, template: RecordTemplate, under: str | None) -> Iterator[Rec]:
        counts = self._counts
        held = self._held
        candidates = self._index.candidates(template)
        with _xpath.budget() if template.costly else contextlib.nullcontext():
            for rec in list(self._by_rid.values()) if candidates is None else candidates:
                counts["record_scans"] += 1
                if (
                    (under is None or rec.path.startswith(under))
                    and template.matches(rec.fields)
                    and not (held and rec.rid in held)
                ):
                    yield rec

    def find(self, template: RecordTemplate, under: str | None, limit: int | None) -> list[int]:
        """The rids of the records matching ``template`` below ``under``, oldest first."""
        _check_limit(limit)
        engine = self._engine
        if engine.closed or engine.leases or engine.deadlines:
            self._tick()
        if template.trivial and under is None:
            return self.find_value(*template.exact[0], limit)
        out = []
        if limit != 0:
            for rec in self._matching(template, path_prefix(under)):
                out.append(rec.rid)
                if len(out) == limit:
                    break
        return out

    def find_value(self, tag: str, key: Any, limit: int | None = None) -> list[int]:
        """The rids of the records whose field ``tag`` has the value of typed key
        ``key``, oldest first: one bucket of the index is the answer."""
        engine = self._engine
        if engine.closed or engine.leases or engine.deadlines:
            self._tick()
        b = self._index.bucket(tag, key)
        if b is None:
            return []
        held = self._held
        if isinstance(b, Rec):
            self._counts["record_scans"] += 1
            return [b.rid] if limit != 0 and b.rid not in held else []
        self._counts["record_scans"] += len(b)
        rids = sorted(b) if not held else sorted(rid for rid in b if rid not in held)
        return rids if limit is None else rids[:limit]

    def take(self, template: RecordTemplate, under: str | None) -> tuple[URI, Map, int] | None:
        """Remove the oldest record matching ``template`` below ``under`` (one that no
        record contains); its address, fields and version, or None."""
        self._tick()
        for rec in self._matching(template, path_prefix(under)):
            if not rec.containers and not rec.holders:
                taken = (URI(self.prefix + rec.path), _map(rec.fields), rec.version)
                self._remove(rec, "destroy")
                return taken
        return None

    # -- blocked takes and holds -------------------------------------------------------

    def add_taker(
        self, template: RecordTemplate, under: str | None, wake: Callable[[], object]
    ) -> RecordTaker:
        """Queue a blocked take (after its :meth:`take` found nothing); it is handed
        the first record that comes to match while no older taker wants it.  At most
        the space's ``max_waiters`` wait at once (:class:`LimitReached` past it)."""
        engine = self._engine
        engine.check_open()
        if len(self._takers) >= engine.max_waiters:
            raise LimitReached(
                f"this space already has {engine.max_waiters} waiting record takes",
                limit="max_waiters",
                maximum=engine.max_waiters,
            )
        taker = RecordTaker(template, path_prefix(under), wake)
        self._takers[taker] = None
        return taker

    def end_take(self, taker: RecordTaker, received: bool) -> tuple[URI, Map, int] | None:
        """End a blocked take: the address, fields and version of the record it was
        handed (removed for good now), or None if it had none (it leaves the queue).
        A record handed to a taker that did not ``received`` it is released."""
        held = self.end_held_take(taker, received)
        if held is None:
            return None
        rid, address, fields, version = held
        self.confirm(rid)
        return address, fields, version

    def take_held(self, template: RecordTemplate, under: str | None) -> tuple[int, URI, Map, int] | None:
        """Hold (not remove) the record :meth:`take` would remove; its rid, address,
        fields and version, or None.  The caller ends the hold (confirm or release)."""
        self._tick()
        for rec in self._matching(template, path_prefix(under)):
            if not rec.containers and not rec.holders:
                return (rec.rid, *self.hold(rec))
        return None

    def end_held_take(self, taker: RecordTaker, received: bool) -> tuple[int, URI, Map, int] | None:
        """:meth:`end_take`, but a received record stays held (its rid comes first):
        the caller ends the hold (confirm or release)."""
        self._takers.pop(taker, None)
        rec, taker.rec = taker.rec, None
        if rec is None:
            return None
        if not received:
            self.release(rec.rid)
            return None
        return rec.rid, URI(self.prefix + rec.path), _map(rec.fields), rec.version

    def hold(self, rec: Rec) -> tuple[URI, Map, int]:
        """Hide ``rec`` from lookups, finds and takes, keeping it as it is (see the
        module docstring); its address, fields and version."""
        self._held.add(rec.rid)
        return URI(self.prefix + rec.path), _map(rec.fields), rec.version

    def confirm(self, rid: int) -> None:
        """Remove the held record ``rid`` for good (a ``destroy`` event)."""
        self._held.discard(rid)
        rec = self._by_rid.get(rid)
        if rec is not None:
            self._remove(rec, "destroy")

    def release(self, rid: int) -> None:
        """Show the held record ``rid`` again as it was, and offer it to the takers;
        if its lease ran out meanwhile it expires now."""
        self._held.discard(rid)
        rec = self._by_rid.get(rid)
        if rec is not None:
            rec.scheduled = None  # its item in the lease heap was dropped while held
            self._schedule(rec)
            if not self._engine.closed:
                self._engine.tick()
            if self._by_rid.get(rid) is rec:
                self._offer(rec)

    def _offer(self, rec: Rec) -> None:
        """Hand ``rec``, if it can be taken, to the oldest taker that wants it."""
        if not self._takers or rec.containers or rec.holders or rec.rid in self._held:
            return
        for taker in list(self._takers):
            under = taker.under
            if (under is None or rec.path.startswith(under)) and taker.template.matches(rec.fields):
                del self._takers[taker]
                if taker.wake() is False:
                    continue  # its caller is gone (its event loop closed)
                self.hold(rec)
                taker.rec = rec
                return

    # -- watching --------------------------------------------------------------------

    def watch(
        self, rid: int, token: str | None, since: int | None, max_pending: int, lease: float | None
    ) -> RecordFeed:
        """A feed of the record's changes from now (or after event ``since``).  The root
        record ``$`` holds every record of the space: its feed has all their changes."""
        if rid == ROOT_RID and token is None:
            return self.watch_all(None, CHANGE_KINDS, since, max_pending, lease)
        rec = self.target(rid, token, "watch")
        engine = self._engine
        feed = RecordFeed(engine.next_interest(), rec.rid, None, CHANGE_KINDS, max_pending, token)
        engine.add_feed(feed, since, lease)
        self._watchers.add(feed)
        return feed

    def add_watcher(self, feed: RecordFeed) -> None:
        """Deliver the changes of every record to ``feed`` (the rules' reader of them)."""
        self._watchers.add(feed)

    def watch_all(
        self,
        under: str | None,
        kinds: Iterable[str],
        since: int | None,
        max_pending: int,
        lease: float | None,
    ) -> RecordFeed:
        """A feed of the changes (of ``kinds``) of every record whose path is below ``under``."""
        self._engine.check_open()
        wanted = frozenset({kinds} if isinstance(kinds, str) else kinds)
        if not wanted or not wanted <= CHANGE_KINDS:
            raise InvalidValue(
                f"events must be a non-empty subset of {sorted(CHANGE_KINDS)}, got {sorted(wanted)}"
            )
        engine = self._engine
        feed = RecordFeed(engine.next_interest(), None, path_prefix(under), wanted, max_pending)
        engine.add_feed(feed, since, lease)
        self._watchers.add(feed)
        return feed

    def _emit(self, kind: str, rec: Rec, tag: str | None, value: Value) -> None:
        engine = self._engine
        seq, now = engine.new_event()
        change = _new_change(Change, (seq, kind, rec.path, tag, value, rec.version, now))
        engine.log_event((seq, kind, RecordEvent(rec.rid, change), now), footprint((rec.path, value)))
        if self._watchers:
            self._watchers.deliver(rec.rid, change)

    # -- time ------------------------------------------------------------------------

    def _schedule(self, rec: Rec) -> None:
        """Put the record's expiry in the lease heap, unless an earlier item of it is
        there already (that one moves it on when it falls due)."""
        expires = rec.expires
        if expires is not None and (rec.scheduled is None or expires < rec.scheduled):
            rec.scheduled = expires
            self._push(expires, rec)

    def _push(self, when: float, item: Rec | Cap | Redirect | Hold) -> None:
        self._engine.schedule(when, item)

    def lapse(self, item: Rec | Cap | Redirect | Hold, when: float) -> None:
        """Called by the engine's tick when ``when``, the expiry of ``item``, has come."""
        if type(item) is Rec:
            if self._by_rid.get(item.rid) is not item or item.scheduled != when:
                return  # gone, or superseded by an earlier item
            if item.rid in self._held:
                return  # a release schedules its expiry again
            item.scheduled = None
            if item.expires is not None and item.expires <= when:
                if not item.holders:  # held by other nodes: collected when the last lets go
                    self._counts["records_expired"] += 1
                    self._remove(item, "expire")
            else:
                self._schedule(item)  # its expiry moved later
        elif type(item) is Hold:
            self._lapse_hold(item, when)
        elif type(item) is Cap:
            if self.caps.is_live(item) and item.expires == when:
                self._end_cap(self._by_rid[item.rid], item.token, "expired")
        elif type(item) is Redirect and item.expires == when:
            if self._redirects.get(item.path) is item:
                self._drop_redirect(item.path)
            elif self.moved.get(item.path) is item:
                del self.moved[item.path]
                self._forget_moved(item.path)

    # -- references across nodes (docs/federation.md) --------------------------------

    def holds_elsewhere(self) -> bool:
        """Whether a record of this space holds a record of another node or space."""
        return bool(self._holding)

    def below(self, path: str, holder: str, level: int, refresh: bool) -> tuple[list[str], int]:
        """Raise ContainmentCycle if the record at ``path`` holds ``holder`` (a record
        address, at ``level``) through records of this space; else the addresses of the
        records of other nodes below it that their nodes must search, and the level
        that prunes their search (see :func:`~tuplespace._containment.check_holder`).

        For a ``refresh`` of a holder that holds it already there is nothing to search
        while the holder's level is above the record's; when it is not (levels not
        yet carried, or a cycle closed by two nodes at once, whose levels climb at
        each refresh) everything below is searched, and on a cycle the holder lets go."""
        self._tick()
        rec = self._at(check_path(path))
        if rec is None:
            raise RecordNotFound(f"no record at {path!r}")
        hold = rec.holders.get(holder) if rec.holders else None
        if refresh and hold is not None:
            if level > rec.level:
                return [], level
            level = -1
        try:
            return check_holder(self._by_rid, rec, holder, level, self.prefix + rec.path), level
        except ContainmentCycle:
            if refresh and hold is not None:
                self._drop_hold(rec, hold)
            raise

    def let_go(self, path: str, holder: str) -> None:
        """End the hold of ``holder`` on the record at ``path`` (found in a cycle)."""
        rec = self._at(path)
        hold = rec.holders.get(holder) if rec is not None and rec.holders else None
        if hold is not None:
            self._drop_hold(rec, hold)  # type: ignore[arg-type]

    def hold_for(self, holder: str, level: int, path: str, lifetime: float, maximum: int) -> int:
        """Let the record of another node at the address ``holder`` (at ``level``) hold
        the record at ``path`` for ``lifetime`` seconds more (a new hold or a refresh),
        once :meth:`below` found no cycle; the held record's level.  Raises
        RecordNotFound, LimitReached past ``maximum`` holds."""
        self._tick()
        rec = self._at(check_path(path))
        if rec is None:
            raise RecordNotFound(f"no record at {path!r}")
        hold = rec.holders.get(holder) if rec.holders else None
        if hold is None:
            if self._holds >= maximum:
                raise LimitReached(
                    f"the space holds {maximum} references from other nodes",
                    limit="references",
                    maximum=maximum,
                )
            hold = Hold(rec.rid, holder, 0.0)
            if rec.holders is None:
                rec.holders = {}
            rec.holders[holder] = hold
            self._holds += 1
        hold.expires = self._engine.clock.now() + lifetime
        if hold.scheduled is None:
            hold.scheduled = hold.expires
            self._push(hold.expires, hold)
        return rec.level

    def _lapse_hold(self, hold: Hold, when: float) -> None:
        rec = self._by_rid.get(hold.rid)
        if rec is None or rec.holders is None or rec.holders.get(hold.holder) is not hold:
            return
        if hold.expires > when:  # refreshed since: wait for its new expiry
            hold.scheduled = hold.expires
            self._push(hold.expires, hold)
            return
        self._drop_hold(rec, hold)

    def _drop_hold(self, rec: Rec, hold: Hold) -> None:
        """The record ``hold`` holds no more: collect it if its lease or credit has
        ended and nothing else holds it."""
        del rec.holders[hold.holder]  # type: ignore[union-attr]
        self._holds -= 1
        if not rec.holders:
            rec.holders = None
            if rec.expires is not None and rec.expires <= self._engine.clock.now() and not rec.containers:
                self._counts["records_expired"] += 1
                self._remove(rec, "expire")
            else:
                self._offer(rec)

    def hold_again(self, far: Callable[[str], bool]) -> list[str]:
        """Once the space is read back from its store: each field whose value is an
        address that is ``far`` (another node's record) holds that record again, at
        level 0 until its node answers the next refresh; the addresses held."""
        self._engine.check_open()
        held = []
        for rec in self._by_rid.values():
            for tag, v in rec.fields.items():
                if type(v) is URI and not (rec.refs and tag in rec.refs) and far(str(v)):
                    if rec.remote is None:
                        rec.remote = {}
                        self._holding.add(rec.rid)
                    rec.remote[tag] = (str(v), 0)
                    held.append(str(v))
            if rec.remote:
                relevel(self._by_rid, rec)
        return held

    def held_remotely(self) -> list[tuple[int, str, str, int, str]]:
        """The references to other nodes' records that this space's records hold:
        ``(rid, tag, holder address, holder level, held address)``."""
        self._engine.check_open()
        out = []
        for rid in self._holding:
            rec = self._by_rid[rid]
            address = self.prefix + rec.path
            for tag, (far, _) in rec.remote.items():  # type: ignore[union-attr]
                out.append((rid, tag, address, rec.level, far))
        return out

    def remote_answered(
        self, rid: int, tag: str, address: str, level: int | None, gone: bool, moved: str | None = None
    ) -> None:
        """The node of ``address``, held by the field ``tag`` of record ``rid``, answered
        a refresh: the held record's ``level``, or None when it refused the reference
        (the field then holds the address as a plain value) or ``gone`` (the record is
        no more: the field becomes None, an ``update`` event), or the record ``moved``
        to that address (the field holds it there, an ``update`` event)."""
        rec = self._by_rid.get(rid)
        if rec is None or rec.remote is None or rec.remote.get(tag, ("",))[0] != address:
            return  # changed meanwhile
        if moved is not None:
            rec.remote[tag] = (moved, rec.remote[tag][1])
            self._rewrite(rec, tag, URI(moved))
            return
        if level is not None:
            if rec.remote[tag][1] != level:
                rec.remote[tag] = (address, level)
                relevel(self._by_rid, rec)
            return
        self._unhold(rec, tag)
        if gone:
            self._rewrite(rec, tag, None)
        relevel(self._by_rid, rec)

    def holders_here(self, rid: int) -> list[tuple[str, int]]:
        """The addresses and levels of the records of this space that contain ``rid``."""
        rec = self.target(rid, None, "move")
        return [(self.prefix + self._by_rid[c].path, self._by_rid[c].level) for c in rec.containers or ()]

    def capabilities_of(self, rid: int) -> list[tuple[str, frozenset[str], float | None]]:
        """The live capabilities of the record ``rid``: token, operations and the
        seconds left (None: no end)."""
        rec = self.target(rid, None, "move")
        now = self._engine.clock.now()
        out = []
        for token in rec.caps or ():
            cap = self.caps.get(token)
            out.append((token, cap.ops, None if cap.expires is None else max(cap.expires - now, 0.0)))
        return out

    def move_away(
        self,
        rid: int,
        address: str,
        redirect_lease: float | None,
        caps: Mapping[str, str] | None = None,
        carried: Credit | None = None,
    ) -> None:
        """The record ``rid`` moved to ``address`` on another node (created there with
        its fields, and ``carried``, the credit it held when it was read): remove it
        here, with a ``move`` event whose value is its new address; what it drained
        until it was read is burned, what it carried leaves the space; the fields of
        this space that contained it hold it there now; its
        path answers with ``address`` (:meth:`moved_to`) for ``redirect_lease`` seconds
        (None: until a record takes the path; 0: not at all), and so do the addresses
        of its capabilities with those of their copies there (``caps``: token -> address)."""
        rec = self.target(rid, None, "move")
        if carried is not None and self.charging:
            self.accounts.burn(max(rec.credit - carried, ZERO))
            rec.credit = ZERO
        new = URI(address)
        level = rec.level
        for container in list(rec.containers or ()):
            c = self._by_rid[container]
            for tag, child in list((c.refs or {}).items()):
                if child == rid:
                    unlink(self._by_rid, c, tag)
                    self._rewrite(c, tag, new)
                    if c.remote is None:
                        c.remote = {}
                        self._holding.add(c.rid)
                    c.remote[tag] = (address, level)
            relevel(self._by_rid, c)
        self._emit("move", rec, None, new)
        path = rec.path
        self._remove(rec, "move", emit=False)
        if redirect_lease != 0:
            expires = self._engine.expiry(redirect_lease)
            journal = self._engine.journal
            for old, to in [(path, address), *((f"$cap/{t}", a) for t, a in (caps or {}).items())]:
                self._add_moved(Redirect(old, 0, expires, to=to))
                if journal is not None:
                    journal.put_row(RedirectRow(old, 0, expires, to))

    def _add_moved(self, redirect: Redirect) -> None:
        """Answer for the record that moved away from ``redirect.path`` to another node."""
        self.moved[redirect.path] = redirect
        if redirect.expires is not None:
            self._push(redirect.expires, redirect)

    def _forget_moved(self, path: str) -> None:
        """The redirection of ``path`` to another node is over: off the disk too."""
        journal = self._engine.journal
        if journal is not None:
            journal.delete_row(RedirectRow, path)

    def moved_to(self, path: str) -> str | None:
        """The address on another node of the record that moved away from ``path``, while
        its redirection lasts."""
        if not self.moved:
            return None
        self._tick()
        redirect = self.moved.get(path)
        return None if redirect is None else redirect.to

    def _unhold(self, rec: Rec, tag: str) -> None:
        remote: dict[str, tuple[str, int]] = rec.remote  # type: ignore[assignment]
        del remote[tag]
        if not remote:
            rec.remote = None
            self._holding.discard(rec.rid)

    # -- durability ------------------------------------------------------------------

    def _journal(self, rec: Rec) -> None:
        journal = self._engine.journal
        if journal is not None:
            journal.put_row(
                RecordRow(
                    rec.rid, rec.path, dict(rec.fields), rec.version, str(rec.credit), rec.since, rec.expires
                )
            )

    def load(
        self,
        records: Iterable[RecordRow],
        accounts: Iterable[AccountRow],
        caps: Iterable[CapabilityRow],
        redirects: Iterable[RedirectRow],
    ) -> list[Rec]:
        """Fill an empty store from a durable one; rows must be in rid order.  What
        ran out while the store was closed is removed now, without events; returns
        the records that were, for :meth:`expire_loaded`."""
        engine = self._engine
        journal, engine.journal = engine.journal, None  # what is loaded is on disk already
        try:
            for rid, path, fields, version, credit, since, expires in records:
                rec = Rec(rid, path, dict(fields))
                rec.version, rec.credit, rec.since, rec.expires = version, Credit(credit), since, expires
                if self.charge_rate:
                    rec.size = stored_size(path, rec.fields)
                    rec.burn = burn_rate(self.charge_rate, rec.size)
                self._by_rid[rid] = rec
                self._by_path[path] = rec
                self._last_rid = rid
                for tag, v in rec.fields.items():
                    self._index.add(rec, tag, v)
            # A destroyed record's number is not given again: each creation had an event,
            # and the store kept (at least) the number of the last.
            self._last_rid = max(self._last_rid, engine.last_event)
            for rec in self._by_rid.values():
                for tag, v in rec.fields.items():
                    if type(v) is URI and str(v).startswith(self.prefix):
                        child = self._by_path.get(str(v)[len(self.prefix) :])
                        if child is not None:
                            link(rec, tag, child)
            for rec in self._by_rid.values():
                if rec.refs:
                    relevel(self._by_rid, rec)
                self._schedule(rec)
            self.accounts.load(accounts)
            for row in caps:
                owner = self._by_rid.get(row.rid)
                if owner is not None:
                    cap = self.caps.restore(row)
                    if owner.caps is None:
                        owner.caps = set()
                    owner.caps.add(cap.token)
                    if cap.ro:
                        owner.ro = cap.token
                    if cap.expires is not None:
                        self._push(cap.expires, cap)
            for path, rid, redirect_expires, to in redirects:
                if to is not None:  # to another node
                    self._add_moved(Redirect(path, 0, redirect_expires, to))
                    continue
                owner = self._by_rid.get(rid)
                if owner is not None and path not in self._by_path:
                    self._add_redirect(Redirect(path, rid, redirect_expires), owner)
        finally:
            engine.journal = journal
        now = engine.clock.now()
        expired = [r for r in self._by_rid.values() if r.expires is not None and r.expires <= now]
        removed = []
        for rec in expired:
            if self._by_rid.get(rec.rid) is rec:
                self._remove(rec, "expire", emit=False)
                removed.append(rec)
        return removed

    def expire_loaded(self, recs: Iterable[Rec]) -> None:
        """The ``expire`` events of the records :meth:`load` removed, once what reacts
        to them (the rules of the space) is in place: what the reactions do is then
        journaled in the same batch as the removals."""
        for rec in recs:
            self._counts["records_expired"] += 1
            self._emit("expire", rec, None, None)

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        for feed in self._watchers.pop_all():
            self._engine.unsubscribe(feed)
        for taker in list(self._takers):
            taker.wake()  # it finds the space closed

    def __len__(self) -> int:
        return len(self._by_rid) - len(self._held)

    def statistics(self) -> dict[str, Any]:
        return {
            "records": len(self._by_rid) - len(self._held),
            "records_held": len(self._held),
            "record_takers": len(self._takers),
            "capabilities": len(self.caps),
            "redirections": len(self._redirects),
            "accounts": len(self.accounts),
            "record_watchers": len(self._watchers),
            **self._counts,
        }


_new_change = tuple.__new__  # a Change without NamedTuple's Python-level __new__


def check_fields(fields: object, limits: Limits) -> dict[str, Value]:
    """A record's fields, checked: a mapping of at most ``limits.max_fields`` tags to
    values of the wire types (:class:`InvalidValue` naming the tag otherwise)."""
    if not isinstance(fields, Mapping):
        raise UnsupportedType(
            f"a record's fields are a mapping from tags to values, not {type(fields).__name__}"
        )
    if len(fields) > limits.max_fields:
        raise ValueTooLarge(
            f"{len(fields)} tags, more than {limits.max_fields}",
            limit="max_fields",
            maximum=limits.max_fields,
        )
    out: dict[str, Value] = {}
    for tag, v in fields.items():
        try:
            check_tag(tag)
        except InvalidValue as exc:
            raise _prefix(exc, _key_path(tag)) from None
        out[tag] = check_field(tag, v, limits)
    return out


def check_field(tag: str, v: object, limits: Limits) -> Value:
    """The value ``v`` of field ``tag``, checked against ``limits`` and normalized."""
    tv = type(v)
    # The common scalars directly: set is a hot path.
    if tv is float:
        if v - v == 0.0:  # type: ignore[operator]  # finite
            return v + 0.0  # type: ignore[operator]  # -0.0 becomes 0.0
    elif (
        (tv is str and v.isascii() and 6 * len(v) < limits.max_bytes)  # type: ignore[attr-defined,arg-type]
        or (tv is int and -_INT64 < v < _INT64)  # type: ignore[operator]
        or v is None
        or tv is bool
    ):
        return v
    try:
        return check_tuple((v,), limits)[0]
    except InvalidValue as exc:
        exc.path = f'["{tag}"]' + exc.path[3:]  # the value's path, under its tag
        exc.args = (f"{exc.path}: {exc.reason}",)
        raise


def _check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidValue(f"limit must be an int >= 0 or None, got {limit!r}", "limit")


def _map(fields: Mapping[str, Value]) -> Map:
    m = Map.__new__(Map)
    m._data = dict(fields)  # noqa: SLF001 (a Map of fields already checked, built without copying them again)
    return m
