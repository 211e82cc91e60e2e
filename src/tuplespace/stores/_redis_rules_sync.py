# Made from _redis_rules_async.py by scripts/unasync.py: edit _redis_rules_async.py, then run the script.
"""The rules of a space kept in Redis (``space.rules`` of :class:`RedisSpace`).

Written once, for coroutines, in the module whose name ends in ``_sync``;
``scripts/unasync.py`` makes its sync twin (``_sync``) from it.

The definitions live in Redis (the hash ``rules``, see ``_redis.lua``), so every process
that opens the space has the same rules, and they outlive every process.  Each process
keeps a model of them: an embedded space holding the same rules, whose engine checks a
new rule (its fields, its name, the cycle it would close) and gives each its level, as
for any embedded space.  The model follows the version of the rules in Redis, and is
built again from Redis when it changed.

Firing.  Redis keeps ``fired``, the seq of the latest event of the space's log whose
reactions have run.  Any process with the space open may run the next ones: it reads
the events after ``fired``, works out what each reaction to the first does (from its
model: the condition, the tuples to write, the tuples to take, found by their ids) and
sends it all to one script, ``rule_fire``, which performs every firing of that event and
moves ``fired`` on by one, atomically, if ``fired`` is still what the process read and
the rules are those it used.  Otherwise it performs nothing and the process reads again:
so each event's reactions run once, in the order of the events, whichever processes
run them, and a process that dies leaves either all of an event's firings done or none.
The writes of a firing are events too, whose reactions run after those of the events
before them.  A write (of any process) whose space has rules runs them before it
returns, as does a change of a record, and a take of a process that knows of rules;
:meth:`RedisRules.fire` runs them on demand (reactions to takes of other processes).
A process that knows of rules reacting to expiries runs a timer, which asks Redis when
the next lease of a tuple or record ends, ends it then and runs the reactions (through
``fired``, as above, so once whichever processes run timers); it looks again at least
every EXPIRY_LOOK seconds, for the leases other processes grant, and stops as the space
is closed.

A partitioned space keeps its rules, their counts and ``fired`` (a seq of the space) in
its first partition, and a copy of how many rules there are in the others
(``rule_flag``), so that a write there answers 'fire'.  A process reads the logs of
every partition after ``fired``, merged in the space's order (the order every process
sees).  A firing that takes in other partitions is announced in the first partition
(``rule_intent``, with a lease of FIRING_LEASE ms) and its tuples are held where they are
(``rule_hold``).  Then ``rule_fire`` in the first partition does there, in one step,
what the firings do there (the records they set, refresh, create and call, the tuples
they take and write there, the payments, the counts), moves ``fired`` on, and keeps what
they owe the other partitions (``rowe``: the tuples held there to take or to give back,
the writes; in a space with a capacity, room reserved for those writes).  That is done
next, by any process, before the reactions of a later event run: each partition does
what it is owed once (``rule_owed``, with a mark), then the first partition counts it
and forgets it (``cap_settle``, ``rule_paid``).  So a process killed after the decision
leaves the rest of the firing to the next process that runs reactions; one killed
before it leaves an announcement whose lease runs out, and the next process gives back
what it held (``rule_release``) and fires the event again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._codec import encode
from .._errors import (
    InvalidValue,
    RecordExists,
    RecordNotFound,
    RuleExists,
    RuleNotFound,
    StoreError,
    TupleSpaceError,
)
from .._events import Change
from .._methods import ActiveLimits, Sandbox, method_in, method_result
from .._names import check_path
from .._recordstore import DEFAULT_PRINCIPAL, check_field, check_fields
from .._rules import MAX_RULES, RuleInfo, failure_from_json, failure_to_json, no_match
from .._space import Space
from .._values import DEFAULT_LIMITS, Credit, Value, value_key
from ..client._common import check_lease
from ..client._primitives import Background, Lock
from ._redis import (
    Wake,
    decode_change,
    decode_record,
    decode_tuple,
    encode_record,
    encode_tuple,
    from_nanos,
    lease_ms,
    route_of_tuple,
)

if TYPE_CHECKING:
    from ._redis_sync import RedisCore

__all__ = ["RedisRules"]

log = logging.getLogger("tuplespace")

EVENTS_READ = 64  # the events a process reads from the log at a time to run their reactions
EXPIRY_LOOK = 1.0  # the most seconds between two looks of the timer for leases that end
_Args = list[Any]  # the arguments of a script
_Writes = list[tuple[Value, ...]]  # what a firing writes, sets and creates (see _firing_of)
_Sets = list[tuple[str, str, Value]]
_Creates = list[tuple[Any, dict[str, Any]]]
_Events = list[tuple[int, str, bytes]]  # each event's seq, kind and encoding
_Holds = dict[int, list[Any]]  # the ids a firing takes in each partition but the first
_Partitions = list[int]
FIRING_LEASE = 30_000  # ms a firing that takes in other partitions may take to be decided


class RedisRules:
    """The rules of a space kept in Redis: reactions to its tuples' events, kept in
    Redis for every process that opens the space (``space.rules``).

    >>> space.rules.add("hot", template=("reading", str, float),  # doctest: +SKIP
    ...                       when="t[2] > 30.0", write=[("alarm", "t[1]", "t[2] - 30.0")])

    The methods of :class:`~tuplespace.Rules` for reactions to tuple events (``write``
    and ``take`` operations): a reaction fires once for each event it matches, in
    the order of the events, its operations as one step, whichever process runs it.
    ``max_rules`` is the most rules :meth:`add` lets the space hold (100,000; a
    server sets its own); ``limits.max_firings`` the most events whose reactions one
    call runs (see :meth:`fire`).
    """

    def __init__(
        self,
        core: RedisCore,
        *,
        latest: Callable[[], Any] | None = None,
        after: Callable[[int, int], Any] | None = None,
    ) -> None:
        self._core = core
        # A partitioned space's: the seq after which its later events come, and its
        # events after a seq in the space's order (and whether some left the logs).
        self._latest = latest
        self._after = after
        self._model = _model()
        self._version = b""  # of the rules in Redis the model holds ('': none read yet)
        self._order: list[str] = []  # the names of the rules, in the order they were added
        self._since: dict[str, int] = {}  # each rule's first event: the events after this seq
        self._counts: dict[bytes, bytes] = {}  # the counts in Redis, as last read
        self._firing = Lock()  # one run of the pending reactions at a time in this process
        self._modelling = Lock()  # held while the model is read again, or added to
        self.max_rules = MAX_RULES
        self.limits = ActiveLimits()
        self._sandbox: Sandbox | None = None
        self._timer: Background | None = None  # runs the reactions to expiries as leases end
        self._tick = Wake()  # wakes the timer as the space closes
        self._closed = False

    def sandbox(self) -> Sandbox:
        """The Lua state in which this process runs the methods of the space's records."""
        if self._sandbox is None:
            self._sandbox = Sandbox()
        return self._sandbox

    @property
    def firing_charge(self) -> Credit:
        """The credit each firing costs the rule's principal (the space's option
        ``firing_charge``, kept in Redis): a rule whose principal cannot pay fails, and
        stops until it can, which the tuple ``("rule_stopped", name, principal)`` tells."""
        return from_nanos(self._core.options.firing_charge)

    @property
    def step_charge(self) -> Credit:
        """The credit each step of a method costs its caller (the space's option
        ``step_charge``, kept in Redis; see :meth:`tuplespace.Record.call`)."""
        return from_nanos(self._core.options.step_charge)

    @property
    def known(self) -> bool:
        """Whether this process knows of rules in the space (as of its latest look)."""
        return bool(self._order)

    def add(
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
        principal: str = DEFAULT_PRINCIPAL,
        refresh: Mapping[str, Any] | None = None,
        create: Mapping[Any, Mapping[str, Any]] | None = None,
        call: Iterable[Iterable[Any]] = (),
    ) -> RuleInfo:
        """Add a reaction to tuple events or to record events, or a Push Logic rule
        (see :meth:`tuplespace.Rules.add`); returns what :meth:`list` tells of it.  A
        Push Logic rule sets its field at once, as any process then does after each
        change of a field it reads.  A reaction's methods (``call=``) run in the sandbox
        of the process that fires it, on the record as it is; what they change is
        performed with the firing's other operations, in one script."""
        write, take = [tuple(w) for w in write], [tuple(t) for t in take]
        with self._modelling:
            info = self._add(
                name,
                on,
                template,
                path,
                tag,
                when,
                write,
                take,
                set,
                to,
                using,
                principal,
                {"refresh": refresh, "create": create, "call": [tuple(c) for c in call]},
            )
        if info.kind != "push":
            return info
        self._establish(name)
        return self.get(name)

    def _add(
        self,
        name: str,
        on: str | Iterable[str] | None,
        template: Iterable[Any] | None,
        path: str | None,
        tag: str | None,
        when: str | None,
        write: _Args,
        take: _Args,
        set: str | Mapping[str, str] | None,
        to: str | None,
        using: Mapping[str, str] | None,
        principal: str,
        on_records: dict[str, Any],
    ) -> RuleInfo:
        while True:
            self._follow()
            rules = self._model.rules
            rules.max_rules = self.max_rules
            rules.add(
                name,
                on=on,
                template=template,
                path=path,
                tag=tag,
                when=when,
                set=set,
                to=to,
                using=using,
                write=write,
                take=take,
                principal=principal,
                **on_records,
            )
            try:
                definition = rules.definition(name)
            except InvalidValue:
                rules.remove(name)
                raise
            latest = "" if self._latest is None else self._latest()
            reply = self._core.call("rule_add", [name, self._version, definition, latest])
            if reply[0] == b"ok":  # the model holds the rules of that version now
                self._version = reply[1]
                self._order.append(name)
                self._since[name] = int(reply[2])
                self._time_expiries()
                self._flag(reply[1], reply[3])
                return rules.get(name)
            if reply[0] == b"exists":
                rules.remove(name)
                raise RuleExists(f"there is a rule named {name!r} already; remove it first", "name")
            self._version = b""  # stale: read them again

    def remove(self, name: str) -> None:
        """Remove the rule ``name``; :class:`~tuplespace.RuleNotFound` if there is none."""
        reply = self._core.call("rule_remove", [name])
        if not reply:
            raise RuleNotFound(f"no rule named {name!r}")
        self._flag(*reply)

    def _flag(self, version: bytes, count: int) -> None:
        """Tell the other partitions of a partitioned space how many rules it has (of
        ``version``): a write there then answers 'fire'."""
        if self._after is not None:
            for part in self._core.serving(None)[1:]:
                part.core.call("rule_flag", [version, count])

    def list(self) -> list[RuleInfo]:
        """Every rule, by level, then by name, with its counts in Redis."""
        with self._modelling:
            self._follow()
        return [self._info(info) for info in self._model.rules.list()]

    def get(self, name: str) -> RuleInfo:
        """The rule ``name``; :class:`~tuplespace.RuleNotFound` if there is none."""
        with self._modelling:
            self._follow()
        return self._info(self._model.rules.get(name))

    def _info(self, info: RuleInfo) -> RuleInfo:
        counts, prefix = self._counts, info.name.encode() + b" "
        error = counts.get(prefix + b"e")
        return dataclasses.replace(
            info,
            fired=int(counts.get(prefix + b"f", 0)),
            failed=int(counts.get(prefix + b"x", 0)),
            last_error=None if error is None else failure_from_json(error),
            state="stopped" if prefix + b"s" in counts else "active",
        )

    def _follow(self) -> None:
        """Read the counts of the rules, and the rules too if they changed (with
        ``_modelling`` held: one call at a time builds the model, and an add checks a
        rule against the model whose version it stores it with)."""
        reply = self._core.call("rule_list", [self._version])
        n = int(reply[1])
        if reply[0] != self._version:
            self._load(reply[0], reply[2 : 2 + n])
        self._counts = dict(zip(reply[2 + n :: 2], reply[3 + n :: 2], strict=True))

    def _load(self, version: bytes, kept: _Args) -> None:
        """Make the model hold the rules ``kept`` (name, then what Redis keeps of it);
        StoreError naming a rule that Redis does not keep as a rule is kept."""
        rules = []
        model = _model()
        try:
            for name, entry in zip(kept[::2], kept[1::2], strict=True):
                try:
                    number, since, definition = entry.split(b" ", 2)
                    rules.append((int(number), name.decode(), int(since), definition.decode()))
                except ValueError:
                    raise self._damaged(name.decode(), "not '<number> <seq> <definition>'") from None
            rules.sort()
            for _, name, _, definition in rules:
                try:
                    model.rules.load([(name, definition)], DEFAULT_LIMITS)
                except (ValueError, KeyError, TypeError) as exc:
                    raise self._damaged(name, str(exc)) from None
        except BaseException:
            model.close()
            raise
        self._model.close()
        self._model = model
        self._order = [name for _, name, _, _ in rules]
        self._since = {name: since for _, name, since, _ in rules}
        self._version = version
        self._time_expiries()

    def _damaged(self, name: str, why: str) -> StoreError:
        space = self._core.options.space
        return StoreError(f"the rule {name!r} of space {space!r} in Redis is damaged: {why}")

    # -- firing --------------------------------------------------------------------------------

    def fire(self) -> int:
        """Run the reactions of the events whose reactions have not run yet, here, up
        to those of ``limits.max_firings`` events (see :class:`~tuplespace.ActiveLimits`;
        the next call runs the others); the number of events whose reactions this
        process ran."""
        if self._after is not None:
            return self._fire_across(self._after)
        ran = 0
        with self._firing:
            most = self.limits.max_firings
            reply = self._core.call("rule_pending", [EVENTS_READ])
            while True:
                if len(reply) == 1 or reply[0] != self._version:
                    # another process ran them, a tuple to take is gone, or the rules changed
                    if len(reply) > 1 or reply[0] == b"stale":
                        with self._modelling:
                            self._follow()
                    reply = self._core.call("rule_pending", [EVENTS_READ])
                    continue
                if int(reply[2]):
                    log.warning(
                        "%s events left the log of space %r before their reactions ran",
                        int(reply[2]),
                        self._core.options.space,
                    )
                fired, entries = int(reply[1]), reply[3:]
                if not entries or ran == most:
                    return ran
                # The events up to the first that fires a rule, run in one script.
                seq, firings = fired, []
                for i in range(0, min(len(entries), 3 * (most - ran)), 3):
                    seq = int(entries[i])
                    kind = entries[i + 1].decode()
                    event: tuple[Value, ...] | Change
                    if kind.startswith("r."):  # a record's change
                        event = decode_change(seq, kind, entries[i + 2], 0)[1]
                    else:
                        event = decode_tuple(entries[i + 2])
                    firings = self._firings(seq, kind, event, {})
                    if firings:
                        break
                reply = self._core.call("rule_fire", [fired, seq, *self._fire_args(), "", "", *firings])
                if len(reply) > 1:
                    ran += seq - fired

    def _fire_across(self, after: Callable[[int, int], Any]) -> int:
        """:meth:`fire` on a partitioned space: what firings owe partitions first,
        then the reactions of the events of every partition after ``fired``, in
        the space's order, read by ``after`` (the events after a seq, and whether some
        left the logs before)."""
        ran = 0
        counted = False  # the partitions' counts were just read
        with self._firing:
            most = self.limits.max_firings
            while True:
                reply = self._core.call("rule_owing", [])
                if len(reply) > 3:  # what firings owe partitions, not all done yet
                    self._pay(reply[3:])
                    continue
                if reply[2] == b"busy":  # a firing that takes is under way: its process runs them
                    return ran
                if reply[2]:  # the process of such a firing stopped midway: give back what it held
                    name, where = reply[2].decode().split()
                    self._release(name, [int(p) for p in where.split(",")])
                    continue
                if reply[0] != self._version:
                    with self._modelling:
                        self._follow()
                    continue
                fired = int(reply[1])
                if ran == most or not self._order:
                    return ran
                events, lost = after(fired, EVENTS_READ)
                if lost:
                    log.warning(
                        "events left the logs of space %r before their reactions ran",
                        self._core.options.space,
                    )
                if not events:
                    return ran
                # The events up to the first that fires a rule, run in one script.
                seq, firings, passed = fired, [], 0
                holds: _Holds = {}
                for seq, kind, data in events[: most - ran]:
                    passed += 1
                    event: tuple[Value, ...] | Change
                    if kind.startswith("r."):  # a record's change
                        event = decode_change(seq, kind, data, 0)[1]
                    else:
                        event = decode_tuple(data)
                    firings = self._firings(seq, kind, event, holds)
                    if firings:
                        break
                hold = "f" + secrets.token_hex(8) if holds else ""
                if hold and not self._hold(fired, hold, holds):
                    continue
                args = [fired, seq, *self._fire_args(), hold, "1" if counted else "", *firings]
                reply = self._core.call("rule_fire", args)
                counted = reply[0] == b"full"
                if counted:  # with a capacity, read the partitions' counts and try again
                    self._core.recount()
                if len(reply) > 1:
                    ran += passed
                elif hold:  # nothing was done: what it held goes back
                    self._release(hold, [*holds])

    def _hold(self, fired: int, hold: str, holds: _Holds) -> bool:
        """Announce a firing that takes in other partitions (with a lease, in the first
        partition), then hold there the tuples ``holds`` it takes, under the name
        ``hold``: whether all are held.  If not (the events' reactions ran meanwhile,
        another firing is announced, a tuple is gone), nothing is held."""
        where = ",".join(map(str, holds))
        reply = self._core.call("rule_intent", [fired, hold, where, FIRING_LEASE])
        if reply[0] != b"ok":
            return False
        parts = self._core.serving(None)
        for p, ids in holds.items():
            if (parts[p].core.call("rule_hold", [hold, *ids]))[0] != b"ok":
                self._release(hold, [*holds])
                return False
        return True

    def _release(self, hold: str, partitions: _Partitions) -> None:
        """Give back what the firing announced as ``hold`` holds in ``partitions``, and
        refuse it there from then on; then end its announcement."""
        parts = self._core.serving(None)
        for p in partitions:
            parts[p].core.call("rule_release", [hold])
        self._core.call("rule_intent_end", [hold])

    def _pay(self, owed: _Args) -> None:
        """Do what firings owe other partitions (``owed``: each "<seq> <rank>
        <partition>" and what: the tuples held there to take or give back, the writes),
        each once whichever processes do it, then forget it."""
        parts = self._core.serving(None)
        keys = owed[::2]
        readings: _Args = []  # of the partitions' counts, in a space with a capacity
        reserved: set[str] = set()  # the reservations of room for the writes done
        for key, owes in sorted(zip(keys, owed[1::2], strict=True), key=_owed_order):
            p = int(key.split()[2])
            reply = parts[p].core.call("rule_owed", [key, owes])
            if len(reply) > 1:
                readings += (p, reply[1], reply[2])
                reserved.add(json.loads(owes).get("res", ""))
        for res in reserved:  # counted in their partitions now: the room reserved ends
            self._core.call("cap_settle", [res, *readings])
        self._core.call("rule_paid", keys)

    def _fire_args(self) -> _Args:
        """The arguments of ``rule_fire`` after the seq: the version of the rules, the
        events to return (none in a partitioned space, whose process reads its
        partitions' logs), the most fields a record may have (the hold follows)."""
        return [self._version, EVENTS_READ if self._after is None else 0, DEFAULT_LIMITS.max_fields]

    def _establish(self, name: str) -> None:
        """Set the field of the Push Logic rule ``name``, just added, to its value."""
        counted = False  # the partitions' counts were just read
        while True:
            firing = self._firing_of(name, "", None, {})
            args = ["", 0, *self._fire_args(), "", "1" if counted else "", *firing]
            reply = self._core.call("rule_fire", args)
            counted = reply[0] == b"full"
            if counted:  # with a capacity, read the partitions' counts and try again
                self._core.recount()
            if len(reply) > 1:
                if self._after is not None:  # the tuple telling that it stopped, elsewhere
                    self.fire()
                return
            if reply[0] == b"stale":  # the rules changed meanwhile: is it still there?
                with self._modelling:
                    self._follow()
                if name not in self._since:
                    return

    def _firings(self, seq: int, kind: str, t: tuple[Value, ...] | Change, holds: _Holds) -> _Args:
        """What ``rule_fire`` needs of the firings of the rules for the event ``seq``
        (the ids they take in other partitions added to ``holds``)."""
        args: _Args = []
        for name in self._order:
            if self._since[name] < seq:
                args += self._firing_of(name, kind, t, holds)
        return args

    def _firing_of(
        self, name: str, kind: str, event: tuple[Value, ...] | Change | None, holds: _Holds
    ) -> _Args:
        """What ``rule_fire`` needs of the firing of ``name`` for an event, of a tuple
        or the change of a record (None: of the Push Logic rule ``name`` as it is
        added); nothing if it does not fire: its name, its failure or '', the ids it
        takes, the tuples it writes, the fields it sets, the versions of the records
        it read.  In a partitioned space, the ids it takes in other partitions are
        added to ``holds``, by partition."""
        rules = self._model.rules
        named = rules.reads(name, kind, event)
        if named is None:
            return []
        read: dict[str, tuple[bytes, dict[str, Value]]] = {}  # by path: the version and fields
        try:
            for path in named.values():
                read[path] = self._record(path)
            outcome = rules.outcome(name, event, {var: read[path][1] for var, path in named.items()})
            if outcome is None:
                return []
            writes, takes, sets, refreshes, creates, calls = outcome
            for path, tag, args in calls:  # a method's changes are the firing's
                if path not in read:
                    read[path] = self._record(path)
                writes, sets, creates = self._call(path, read[path][1], tag, args, writes, sets, creates)
            taken: list[tuple[int, Any]] = []  # the partition and id of each tuple it takes
            for template in takes:
                some = self._core.select(template, False, len(taken) + 1, "")
                found = [(self._partition(t), i) for i, t in some if (self._partition(t), i) not in taken]
                if not found:
                    raise no_match(template)
                taken.append(found[0])
            fields: _Args = []
            push = rules.get(name).kind == "push"
            for path, tag, value in sets:
                if path not in read:
                    read[path] = self._record(path)
                kept = read[path][1]
                if push and tag in kept and value_key(kept[tag]) == value_key(value):
                    continue  # a Push Logic rule sets its field when its value changes
                fields += (path, tag, encode(check_field(tag, value, DEFAULT_LIMITS)))
            leases: _Args = []
            for path, seconds in refreshes:
                if path not in read:
                    read[path] = self._record(path)
                leases += (path, lease_ms(check_lease(seconds)))
            made = created_records(self._core, creates)
            items, owes, stopped = self._placed(name, writes)
        except TupleSpaceError as exc:
            return [name, failure_to_json(exc), 0, 0, "", 0, 0, 0, 0, 0, 0]
        ids = [i for p, i in taken if not p]
        held: _Args = []
        for p, i in taken:
            if p:
                held += (p, i)
                holds.setdefault(p, []).append(i)
        versions: _Args = [len(read)]
        for path, (version, _) in read.items():
            versions += (path, version)
        return [
            name,
            "",
            len(ids),
            *ids,
            len(items) // 2,
            *items,
            stopped,
            len(owes) // 3,
            *owes,
            len(held) // 2,
            *held,
            len(fields) // 3,
            *fields,
            len(leases) // 2,
            *leases,
            len(made) // 3,
            *made,
            *versions,
        ]

    def _partition(self, t: tuple[Value, ...]) -> int:
        """The partition that keeps the tuple ``t`` (0 in a space without partitions)."""
        return 0 if self._after is None else route_of_tuple(t, self._core.options)

    def _placed(self, name: str, writes: _Writes) -> tuple[_Args, _Args, str]:
        """The writes of a firing of ``name`` as ``rule_fire`` takes them: those made
        in the first partition (each its encoding and index keys), those owed to other
        partitions, and in a space with a capacity to the first too (each its partition
        first), and the partition of the tuple telling that ``name`` stopped ('' in a
        space without partitions)."""
        options = self._core.options
        items: _Args = []
        owes: _Args = []
        counted = self._after is not None and options.capacity is not None  # by what is owed
        for w in writes:
            checked, data, keys = encode_tuple(w)
            p = self._partition(checked)
            if p or counted:
                owes += (p, data, keys)
            else:
                items += (data, keys)
        if self._after is None:
            return items, owes, ""
        stopped = ("rule_stopped", name, self._model.rules.get(name).principal)
        return items, owes, str(route_of_tuple(stopped, options))

    def _call(
        self,
        path: str,
        fields: dict[str, Value],
        tag: str,
        args: tuple[Any, ...],
        writes: _Writes,
        sets: _Sets,
        creates: _Creates,
    ) -> tuple[_Writes, _Sets, _Creates]:
        """Run the method ``tag`` of the record at ``path`` (its ``fields`` as read) for a
        firing; the firing's writes, sets and creations with the method's."""
        method = method_in(fields, tag)
        result, changed, spawned, created = self.sandbox().run(method, fields, args, self.limits)
        method_result(result, changed, fields, DEFAULT_LIMITS.max_fields)
        return (
            [*writes, *spawned],
            [*sets, *((path, k, v) for k, v in changed.items())],
            [*creates, *created],
        )

    def _record(self, path: str) -> tuple[bytes, dict[str, Value]]:
        """The version and fields of the record at ``path``; RecordNotFound, a failure
        of the firing, if there is none."""
        reply = self._core.call("rget", ["path", path])
        if len(reply) < 2:
            raise RecordNotFound(f"no record at {path!r}")
        version, _, fields = decode_record(reply[1])
        return str(version).encode(), fields

    # -- the timer of expiries ----------------------------------------------------------------

    def _time_expiries(self) -> None:
        """Start the timer if a rule reacts to expiries (of tuples, or of records)."""
        expiries = any("expire" in info.on for info in self._model.rules.list())
        if expiries and self._timer is None and not self._closed:
            self._timer = Background(self._expiries)

    def _expiries(self) -> None:
        """The timer: end the leases that have ended and run the reactions, then wait
        until the next one ends (at most EXPIRY_LOOK seconds), until the space closes."""
        while not self._closed:
            try:
                ms = -1
                for part in self._core.serving(None):  # each partition of a partitioned space
                    soon = int(part.core.call("rule_next", []))
                    ms = soon if ms < 0 or 0 <= soon < ms else ms
                self.fire()
            except Exception as exc:  # Redis out of reach, a damaged rule: logged, and looked at again
                if self._closed or self._core.closed():
                    return
                log.warning(
                    "the reactions to expiries of space %r were not run: %s", self._core.options.space, exc
                )
                ms = -1
            self._tick.wait(EXPIRY_LOOK if ms < 0 else min(ms / 1000.0, EXPIRY_LOOK))

    def close(self) -> None:
        """Stop the timer; let go of the model of the rules."""
        self._closed = True
        self._tick.set()
        if self._timer is not None:
            self._timer.stop()
        self._model.close()


def created_records(core: RedisCore, creates: _Creates) -> _Args:
    """The records a firing creates, as ``rule_fire`` takes them: each path, the
    encoding of its fields, checked as any record's (paths given twice refused), and
    the links they hold (the addresses of records of the space, see
    :meth:`RedisCore.linked`)."""
    out: _Args = []
    seen: set[str] = set()
    for path, fields in creates:
        path = check_path(path)
        if path in seen:
            raise RecordExists(f"a record already has the path {path!r}; nothing changed")
        seen.add(path)
        checked = check_fields(fields, DEFAULT_LIMITS)
        links = []
        for tag, v in checked.items():
            checked[tag], link = core.linked(tag, v)
            if link:
                links.append(link)
        out += (path, encode_record(checked), "\n".join(links))
    return out


def _owed_order(owed: tuple[bytes, bytes]) -> tuple[int, int, int]:
    """The order in which what is owed to partitions is done: by event (what is owed
    for no event first: by a method, by a Push Logic rule as it is added), the
    partitions where it takes first, then by partition."""
    seq, rank, partition = owed[0].split()
    return (-1 if seq.startswith(b"a") else int(seq), int(rank), int(partition))


def _model() -> Space:
    """An embedded space whose rules are a model of those in Redis: checked and given
    their levels there, fired by this module."""
    space = Space()
    space.rules.model = True
    return space
