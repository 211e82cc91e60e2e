"""Rules: reactions and Push Logic rules kept by a space, as data (``space.rules``).

A **reaction** performs operations when an event on a tuple matching its template
(or a change of the record at its path) happens and its condition holds::

    space.rules.add("hot", on="write", template=("reading", str, float),
                    when="t[2] > 30.0", write=[("alarm", "t[1]", "t[2] - 30.0")])
    space.rules.add("log", path="sensors/kitchen", tag="temp", write=[("'temp'", "value")])

A **Push Logic rule** keeps a record field a function of other fields::

    space.rules.add("comfort", set="house.comfort", to="kitchen.temp >= 19.0 && kitchen.temp <= 23.0")

Expressions are the strings of a rule (see :mod:`tuplespace._expr`); every other
value, and a str wrapped in :class:`Lit`, is a constant.

How rules run.  A reaction is registered with the engine like a subscription: its
template goes into the engine's registry of feeds, so a write looks only at the
rules filed under its own values (1,000 rules on distinct templates cost a write
one lookup).  Rules that read record changes are found by path and tag through
one feed of record changes.  A matching event appends the rule to the space's
queue of firings; the queue is run by the space's hook at the end of every
operation (:meth:`Space.after_operations`), as the operation that caused the
events gives up the space's lock, before anyone else gets it, in event order,
each firing's operations as one step (a transaction when it takes).  The events
of a firing queue further firings at the end of the same queue.  So when
``space.write`` returns, every reaction it set off has run, and every rule sees the
space as its predecessors left it.

Levels.  Each rule reads what triggers it (tuples like its template, record fields
its expression names or its path and tag) and writes what its operations produce.  Rule A can trigger
rule B when something A produces could be what B reads; a rule's level is one more
than the highest level of the rules that can trigger it.  A rule that could trigger
itself, directly or through others, is refused by :meth:`Rules.add` with
:class:`RuleCycle`, naming the loop.  So no firing can set itself off again, and
the firings of one operation are also bounded by ``ActiveLimits.max_firings``.

A firing that fails (an expression raises, a take finds nothing, a limit) changes
nothing; the failure is counted on its rule (:attr:`RuleInfo.last_error`) and
logged, and the space goes on.
"""

from __future__ import annotations

import functools
import logging
import reprlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from ._codec import from_wire, template_from_wire, template_to_wire, to_wire
from ._credit import check_principal, short_of, to_credit
from ._errors import (
    EvaluationError,
    InsufficientCredit,
    InvalidTemplate,
    InvalidValue,
    LimitReached,
    RecordExists,
    RecordNotFound,
    RuleCycle,
    RuleExists,
    RuleNotFound,
    SpaceFull,
    TupleSpaceError,
    ValueTooLarge,
)
from ._events import Change, Feed, FeedTemplate, RawEvent, RecordFeed
from ._expr import Expr, compile_expr
from ._methods import ActiveLimits, Call, Sandbox, call_method, check_created, run_call
from ._names import check_path, check_tag
from ._recordstore import DEFAULT_PRINCIPAL
from ._store import OptionRow, RuleCountRow, RuleRow
from ._templates import ANY, Template, compile_template
from ._values import Credit, Limits, Value, check_value, value_key

if TYPE_CHECKING:
    from ._core import Core
    from ._engine import Engine

__all__ = [
    "MAX_RULES",
    "Lit",
    "RuleInfo",
    "Rules",
    "failure",
    "failure_from_json",
    "failure_to_json",
    "no_match",
]

log = logging.getLogger("tuplespace")

_TUPLE_EVENTS: Final = frozenset({"write", "take", "expire", "cancel"})
_RECORD_KINDS: Final = frozenset({"create", "update", "destroy", "expire", "move"})
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
MAX_RULES: Final = 100_000
_STOPPED: Final = "rule_stopped"  # the first field of the tuple written when a rule stops
_T: Final = frozenset({"t"})  # a reaction to a tuple event reads the tuple
_R: Final = frozenset({"path", "tag", "value", "kind"})  # one to a record event, the change


class Lit:
    """A constant str in a rule, where a str would be an expression:
    ``write=[(ts.Lit("t"), "t[1]")]`` writes ``("t", <the reading's t[1]>)``.
    ``"'t'"`` (a CEL string literal) means the same.  A bare word that names nothing
    the rule knows (``"alarm"``) is already that word."""

    __slots__ = ("value",)

    def __init__(self, value: Value) -> None:
        self.value = check_value(value)

    def __repr__(self) -> str:
        return f"Lit({self.value!r})"


@dataclass(frozen=True)
class RuleInfo:
    """What :meth:`Rules.list` tells of a rule: its definition, its level, and how
    often it fired and failed (``last_error``: the latest failure, or None)."""

    name: str
    kind: str  # "reaction" (to tuple events), "record" (to record events) or "push"
    on: frozenset[str]
    template: tuple[Any, ...] | None
    path: str | None  # a reaction to record events: the record's path, and the tag it watches
    tag: str | None
    when: str | None
    write: tuple[tuple[Any, ...], ...]
    take: tuple[tuple[Any, ...], ...]
    set: Mapping[str, str]
    refresh: Mapping[str, Any]  # path -> the lease it gives the record (an expression or seconds)
    create: Mapping[str, Mapping[str, Any]]  # path (or an expression of it) -> the new record's fields
    call: tuple[tuple[Any, ...], ...]  # (path, tag, arguments...) of each method it calls
    level: int
    fired: int
    failed: int
    last_error: TupleSpaceError | None
    principal: str
    using: Mapping[str, str]  # a Push Logic rule: its names of deeper record paths
    state: str  # "active", or "stopped": its latest firing could not be paid (see Rules.add)


# CEL's own words, which are values rather than names.
_WORDS = frozenset({"true", "false", "null"})


def _field(v: object, where: str, template: bool, names: frozenset[str]) -> Any:
    if type(v) is str:
        if v.isidentifier() and v not in names and v not in _WORDS:
            return v  # a bare word that names nothing the rule knows is that word: ("alarm", "t[1]")
        expr = compile_expr(v, where, names)
        if expr.names:
            return expr
        try:  # a constant ("'alarm'"): computed once, and known as such to the levels
            return check_value(expr.run({}))
        except (EvaluationError, InvalidValue) as exc:
            raise InvalidValue(str(exc), where) from None
    if isinstance(v, Lit):
        return v.value
    if template:
        return v
    try:
        return check_value(v)
    except InvalidValue as exc:
        raise InvalidValue(exc.reason, where) from None


def _run(field: Any, env: dict[str, Any]) -> Any:
    """A field of an operation in ``env``: an expression's value, or the constant."""
    return field.run(env) if type(field) is Expr else field


def _fill(fields: tuple[Any, ...], env: dict[str, Any]) -> tuple[Any, ...]:
    return tuple([f.run(env) if type(f) is Expr else f for f in fields])


Builder = Callable[[dict[str, Any]], tuple[Any, ...]]
#: What a reaction does for an event (:meth:`Rules.outcome`): the tuples it writes, the templates it
#: takes, the fields it sets (the record's path, the tag, the value), the records it refreshes (the
#: path, the lease in seconds), those it creates (the path, the fields) and the methods it calls
#: (the path, the tag, the arguments).
Outcome = tuple[
    list[tuple[Any, ...]],
    list[Template],
    list[tuple[str, str, Value]],
    list[tuple[str, Any]],
    list[tuple[Any, dict[str, Any]]],
    list[tuple[str, str, tuple[Any, ...]]],
]


def _builder(fields: tuple[Any, ...]) -> Builder:
    """A function of a firing's names that makes the tuple ``fields`` describe: its
    constants as they are, its expressions evaluated (compiled once, at ``add``)."""
    runs = [(i, f.run) for i, f in enumerate(fields) if type(f) is Expr]
    if not runs:
        return lambda env: fields
    head = fields[: len(fields) - len(runs)]
    if all(type(f) is Expr for f in fields[len(head) :]):  # constants, then expressions: the usual shape
        if len(runs) == 1:
            ((_, r0),) = runs
            return lambda env: head + (r0(env),)  # noqa: RUF005 (faster than unpacking)
        if len(runs) == 2:
            (_, r0), (_, r1) = runs
            return lambda env: head + (r0(env), r1(env))  # noqa: RUF005
    template = list(fields)

    def build(env: dict[str, Any]) -> tuple[Any, ...]:
        out = template.copy()
        for i, run in runs:
            out[i] = run(env)
        return tuple(out)

    return build


def _using(using: Mapping[str, str] | None) -> dict[str, str]:
    """The records a rule's expressions name: name -> path."""
    if using is None:
        return {}
    if not isinstance(using, Mapping):
        raise InvalidValue("using= maps a name to the path of a record", "using")
    out = {}
    for name, path in using.items():
        if type(name) is not str or not name.isidentifier():
            raise InvalidValue(f"a name of using= is a name of the expressions, got {name!r}", "using")
        out[name] = check_path(path)
    return out


def _split(target: object, where: str) -> tuple[str, str]:
    if type(target) is not str or "." not in target:
        raise InvalidValue(f"a field is named 'path.tag', got {target!r}", where)
    path, tag = target.rsplit(".", 1)
    check_tag(tag)
    check_path(path)
    return path, tag


def _shown(given: Any) -> Any:
    """A field of an operation as :class:`RuleInfo` tells it: as it was given, but a
    constant that is not a str without its :class:`Lit`."""
    return given.value if isinstance(given, Lit) and type(given.value) is not str else given


def _path(target: object, where: str, names: frozenset[str]) -> Any:
    """The path of a record an operation of a reaction names: a valid path as it is
    (or a :class:`Lit`), else (when ``names`` are given) an expression giving one."""
    if isinstance(target, Lit):
        target = target.value
    if type(target) is not str:
        raise InvalidValue(f"a record's path is a str, got {type(target).__name__}", where)
    try:
        return check_path(target)
    except InvalidValue:
        if not names:
            raise InvalidValue(f"{target!r} is not a record's path", where) from None
    return compile_expr(target, where, names)  # its path is computed, and checked, as the rule fires


def _holds(when: Expr | None, env: dict[str, Any]) -> bool:
    """Whether a firing's condition holds; EvaluationError if it is not a bool."""
    if when is None:
        return True
    ok = when.run(env)
    if type(ok) is not bool:
        raise EvaluationError(f"when= gave {type(ok).__name__}, not bool")
    return ok


def no_match(template: Template) -> EvaluationError:
    """The failure of a firing whose take finds no tuple matching ``template``."""
    return EvaluationError(f"take: no tuple matches {reprlib.repr(template.fields)}")


def failure(exc: Exception) -> TupleSpaceError:
    """What a firing that raised ``exc`` failed with: a TupleSpaceError as it is,
    anything else (a value no operation accepts) the rule's EvaluationError."""
    if isinstance(exc, TupleSpaceError):
        return exc
    if isinstance(exc, RecursionError):
        return EvaluationError("an expression nests too deeply")
    return EvaluationError(f"{type(exc).__name__}: {exc}")


def failure_to_json(exc: TupleSpaceError) -> str:
    """A firing's failure as a store that keeps it for other processes writes it:
    its class, its message and what the class adds (a limit, a path)."""
    out: dict[str, Any] = {"class": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, (LimitReached, ValueTooLarge)):
        out.update(limit=exc.limit, maximum=exc.maximum)
    if isinstance(exc, (InvalidValue, InvalidTemplate)):
        out.update(reason=exc.reason, path=exc.path)
    if isinstance(exc, InsufficientCredit):
        out.update(principal=exc.principal, needed=str(exc.needed), available=str(exc.available))
    return orjson.dumps(out).decode()


def failure_from_json(text: str | bytes) -> TupleSpaceError:
    """The failure that :func:`failure_to_json` wrote, of its class where that is one
    of a firing's failures (else a TupleSpaceError with its message)."""
    d = orjson.loads(text)
    kind = _FAILURES.get(d["class"])
    if kind is InsufficientCredit:
        return short_of(d["principal"], Credit(d["available"]), Credit(d["needed"]))
    message = d["message"]
    if kind is None:
        return TupleSpaceError(message)
    if issubclass(kind, ValueTooLarge):
        return kind(d["reason"], d["path"], limit=d["limit"], maximum=d["maximum"])
    if issubclass(kind, LimitReached):
        return kind(message, limit=d["limit"], maximum=d["maximum"])
    if issubclass(kind, (InvalidValue, InvalidTemplate)):
        return kind(d["reason"], d["path"])
    return kind(message)


# The failures a firing has, by class name, as failure_from_json rebuilds them.
_FAILURES: Final[dict[str, type[TupleSpaceError]]] = {
    k.__name__: k
    for k in (
        EvaluationError,
        InvalidValue,
        InvalidTemplate,
        ValueTooLarge,
        LimitReached,
        SpaceFull,
        InsufficientCredit,
        RecordNotFound,
        RecordExists,
    )
}


class _Rule:
    """A rule as the space keeps it."""

    __slots__ = (
        "builds",
        "called",
        "calls",
        "checks",
        "creates",
        "failed",
        "feed",
        "fire",
        "fired",
        "kind",
        "last_error",
        "level",
        "made",
        "name",
        "on",
        "path",
        "pred",
        "principal",
        "reads",
        "records",
        "records_made",
        "refreshes",
        "sets",
        "source",
        "source_template",
        "stopped",
        "succ",
        "tag",
        "takes",
        "template",
        "using",
        "when",
        "writes",
    )

    fire: Callable[[Any], bool]  # does the rule for an event, set as it is installed (Rules._firing)

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.on: frozenset[str] = frozenset()
        self.source_template: tuple[Any, ...] | None = None
        self.template: Template | None = None
        self.when: Expr | None = None
        self.writes: list[tuple[Any, ...]] = []
        self.builds: list[Builder] = []  # a builder of each tuple of writes
        self.takes: list[tuple[Any, ...]] = []
        self.sets: dict[tuple[str, str], Expr] = {}
        self.refreshes: list[tuple[str, Any]] = []  # (path, lease: an Expr or a constant)
        self.creates: list[tuple[Any, dict[str, Any]]] = []  # (path: a str or an Expr, fields)
        self.calls: list[tuple[str, str, Builder]] = []  # (path, tag, builder of the arguments)
        self.called: frozenset[str] = frozenset()  # the records its calls may set every field of
        self.made: frozenset[str | None] = frozenset()  # the paths it creates (None: computed)
        self.records_made = False  # it refreshes, creates or calls
        self.source: dict[str, Any] = {}
        self.path: str | None = None  # reactions to record events: the record, and the tag
        self.tag: str | None = None
        self.using: dict[str, str] = {}  # the records its expressions name: name -> path
        self.records: dict[str, str] = {}  # the records it reads as it fires: name -> path
        self.reads: set[tuple[str, str]] = set()  # push rules: the (path, tag) they read
        self.checks: list[Template] = []  # a reaction's template, one field at a time
        self.succ: set[_Rule] = set()  # the rules it can trigger
        self.pred: set[_Rule] = set()  # the rules that can trigger it
        self.level = 0
        self.fired = 0
        self.failed = 0
        self.last_error: TupleSpaceError | None = None
        self.principal = DEFAULT_PRINCIPAL  # whose account pays for its firings
        self.stopped = False  # its latest firing could not be paid
        self.feed: _RuleFeed | None = None

    # -- what it reads and writes, for levels -------------------------------------------

    def can_trigger(self, other: _Rule) -> bool:
        """Whether what this rule does could be what ``other`` reacts to."""
        if other.kind == "push":
            return any(key in other.reads for key in self.sets) or any(
                p in self.called or p in self.made or None in self.made for p, _ in other.reads
            )
        if other.kind == "record":
            updates = "update" in other.on and (
                other.path in self.called
                or any(p == other.path and other.tag in (None, t) for p, t in self.sets)
            )
            return updates or ("create" in other.on and (other.path in self.made or None in self.made))
        if "write" in other.on and any(_may_match(w, other) for w in self.writes):
            return True
        template = other.template
        assert template is not None
        return "take" in other.on and any(_may_overlap(t, template) for t in self.takes)

    def counts(self) -> RuleCountRow:
        """What the rule did, as a durable store keeps it."""
        error = None if self.last_error is None else failure_to_json(self.last_error)
        return RuleCountRow(self.name, self.fired, self.failed, error, self.stopped)

    def info(self) -> RuleInfo:
        source = self.source
        return RuleInfo(
            name=self.name,
            kind=self.kind,
            on=self.on,
            template=self.source_template,
            path=self.path,
            tag=self.tag,
            when=None if self.when is None else self.when.source,
            write=tuple(source.get("write", ())),
            take=tuple(source.get("take", ())),
            set={f"{p}.{t}": e.source for (p, t), e in self.sets.items()},
            refresh=dict(source.get("refresh", {})),
            create={p: dict(f) for p, f in source["create"].items()} if "create" in source else {},
            call=tuple(source.get("call", ())),
            level=self.level,
            fired=self.fired,
            failed=self.failed,
            last_error=self.last_error,
            principal=self.principal,
            using=dict(self.using),
            state="stopped" if self.stopped else "active",
        )


def _may_match(fields: tuple[Any, ...], rule: _Rule) -> bool:
    """Whether a tuple written from ``fields`` (constants and expressions) could match
    the template of ``rule``."""
    if len(fields) != len(rule.checks):
        return False
    for f, check in zip(fields, rule.checks, strict=True):
        if type(f) is not Expr and not check.matches((f,)):
            return False
    return True


def _exact(fields: tuple[Any, ...]) -> list[tuple[int, Any]]:
    """The constant fields of an operation, by position, as index keys."""
    out = []
    for pos, f in enumerate(fields):
        if type(f) is not Expr:
            try:
                out.append((pos, value_key(check_value(f))))
            except TupleSpaceError:
                continue  # a formal or an operator of a take
    return out


_Shelf = tuple[list[dict[Any, set["_Rule"]]], list[set["_Rule"]], set["_Rule"]]


class _Index:
    """Rules by arity and by the constant at each position of their templates (or
    write patterns), so that finding the rules one rule can trigger, or be triggered
    by, looks at few: a write of ``("done", i)`` only at rules that could match it."""

    def __init__(self) -> None:
        self.arities: dict[int, _Shelf] = {}

    def add(self, rule: _Rule, n: int, exact: list[tuple[int, Any]]) -> None:
        if n not in self.arities:
            self.arities[n] = ([{} for _ in range(n)], [set() for _ in range(n)], set())
        by_value, loose, every = self.arities[n]
        every.add(rule)
        fixed = dict(exact)
        for pos in range(n):
            if pos in fixed:
                by_value[pos].setdefault(fixed[pos], set()).add(rule)
            else:
                loose[pos].add(rule)

    def remove(self, rule: _Rule) -> None:
        for by_value, loose, every in self.arities.values():
            every.discard(rule)
            for d in by_value:
                for group in d.values():
                    group.discard(rule)
            for group in loose:
                group.discard(rule)

    def candidates(self, n: int, exact: list[tuple[int, Any]]) -> set[_Rule]:
        """The rules filed under arity ``n`` that agree with the first constant of ``exact``."""
        if n not in self.arities:
            return set()
        by_value, loose, every = self.arities[n]
        if not exact:
            return every
        pos, key = exact[0]
        return by_value[pos].get(key, set()) | loose[pos]


def _may_overlap(fields: tuple[Any, ...], template: Template) -> bool:
    """Whether a tuple taken by a template of ``fields`` could match ``template``."""
    if len(fields) != template.arity:
        return False
    exact = dict(template.exact)
    for pos, f in enumerate(fields):
        if pos in exact and type(f) is not Expr:
            try:
                if value_key(check_value(f)) != exact[pos]:
                    return False
            except TupleSpaceError:
                continue  # a formal or an operator: it may match the value
    return True


def _wire_field(f: Any) -> Any:
    return {"expr": f.source} if type(f) is Expr else {"value": to_wire(f)}


def _wire_fields(fields: tuple[Any, ...], take: bool) -> list[Any]:
    return [
        {"expr": f.source}
        if type(f) is Expr
        else {"template": template_to_wire((f,))[0]}
        if take
        else {"value": to_wire(f)}
        for f in fields
    ]


def _definition(rule: _Rule) -> str:
    """The rule as a durable store keeps it: JSON, with values and templates in the
    wire format.  Raises InvalidValue for a rule that cannot be kept (a ``Pred``)."""
    d: dict[str, Any] = {"principal": rule.principal}
    try:
        if rule.kind == "push":
            ((path, tag), expr) = next(iter(rule.sets.items()))
            d.update(set=f"{path}.{tag}", to=expr.source, using=rule.using)
        else:
            d.update(
                on=sorted(rule.on),
                template=None if rule.source_template is None else template_to_wire(rule.source_template),
                path=rule.path,
                tag=rule.tag,
                when=None if rule.when is None else rule.when.source,
                write=[_wire_fields(w, False) for w in rule.writes],
                take=[_wire_fields(t, True) for t in rule.takes],
                set={f"{p}.{t}": e.source for (p, t), e in rule.sets.items()} or None,
                using=rule.using or None,
            )
            if rule.refreshes:
                d["refresh"] = {p: _wire_field(f) for p, f in rule.refreshes}
            if rule.creates:
                d["create"] = [
                    [_wire_field(p), {t: _wire_field(f) for t, f in fields.items()}]
                    for p, fields in rule.creates
                ]
            if rule.calls:
                d["call"] = [
                    [path, tag, *_wire_fields(args, False)] for path, tag, args in rule.source["calls"]
                ]
    except InvalidTemplate as exc:
        raise InvalidValue(f"a durable space keeps rules in the wire format: {exc}", "template") from None
    return orjson.dumps(d).decode()


def _field_from_wire(f: dict[str, Any], limits: Limits) -> Any:
    if "expr" in f:
        return str(f["expr"])
    if "value" in f:
        return Lit(from_wire(f["value"], limits))
    field = template_from_wire([f["template"]], limits).fields[0]
    return Lit(field) if type(field) is str else field


def _decode_definition(text: str, limits: Limits) -> dict[str, Any]:
    d = orjson.loads(text)
    if "to" in d:
        return {"set": d["set"], "to": d["to"], "using": d["using"], "principal": d["principal"]}
    return {
        "on": d["on"],
        "template": None if d["template"] is None else template_from_wire(d["template"], limits).fields,
        "path": d["path"],
        "tag": d["tag"],
        "when": d["when"],
        "write": [[_field_from_wire(f, limits) for f in w] for w in d["write"]],
        "take": [[_field_from_wire(f, limits) for f in t] for t in d["take"]],
        "set": d["set"],
        "refresh": {p: _field_from_wire(f, limits) for p, f in d["refresh"].items()}
        if "refresh" in d
        else None,
        "create": {
            _field_from_wire(p, limits): {t: _field_from_wire(f, limits) for t, f in fields.items()}
            for p, fields in d["create"]
        }
        if "create" in d
        else None,
        "call": [
            [path, tag, *(_field_from_wire(f, limits) for f in args)]
            for path, tag, *args in d.get("call", ())
        ],
        "using": d.get("using"),
        "principal": d["principal"],
    }


class _RuleFeed(Feed):
    """A reaction's interest in the events of its template: queues the rule's firings
    (of the raw events the engine hands it, see :meth:`Rules.queue`)."""

    __slots__ = ("rule", "rules")

    def __init__(self, seq: int, rule: _Rule, rules: Rules) -> None:
        super().__init__(seq, [], rule.on, 1, None)
        self.rule = rule
        self.rules = rules

    def push(self, event: RawEvent) -> None:
        if event[1] in self.kinds:  # its kind; Rules.queue, inlined: this is the hot path
            rules = self.rules
            pending = rules.pending
            if len(pending) > rules.max_queued:
                rules.unqueued += 1
            else:
                pending.append((self.rule, event))


_Filing = list[tuple[dict[Any, list[_Rule]], Any]]
_Tuples = list[tuple[Any, ...]]  # where a rule is filed: (index, key) pairs


def _outcome(rule: _Rule, env: dict[str, Any]) -> Outcome | None:
    """What a reaction does in ``env`` (see :meth:`Rules.outcome`)."""
    try:
        if not _holds(rule.when, env):
            return None
        return (
            [build(env) for build in rule.builds],
            [compile_template(_fill(f, env)) for f in rule.takes],
            [(p, tag, check_value(e.run(env))) for (p, tag), e in rule.sets.items()],
            [(p, _run(lease, env)) for p, lease in rule.refreshes],
            [(_run(p, env), {t: _run(f, env) for t, f in fields.items()}) for p, fields in rule.creates],
            [(p, tag, args(env)) for p, tag, args in rule.calls],
        )
    except Exception as exc:
        raise failure(exc) from None


class _RecordChanges(RecordFeed):
    """The changes of every record, for the rules that read them: Push Logic rules
    and reactions to record events."""

    __slots__ = ("rules",)

    def __init__(self, seq: int, rules: Rules) -> None:
        super().__init__(seq, None, None, _RECORD_KINDS, 1)
        self.rules = rules

    def push(self, change: Change) -> None:
        rules = self.rules
        kind, path = change.kind, change.path
        if kind == "update":
            readers = [*rules.readers.get((path, change.tag), ()), *rules.updates.get(path, ())]  # type: ignore[arg-type]
        else:
            readers = [*rules.path_readers.get(path, ())]
            if kind == "move":
                readers.extend(rules.path_readers.get(change.value, ()))
        for rule in readers:
            if kind in rule.on:
                rules.queue(rule, change)


class Rules:
    """The rules of a space (``space.rules``): add, list and remove them.

    >>> space.rules.add("hot", on="write", template=("reading", str, float),  # doctest: +SKIP
    ...                 when="t[2] > 30.0", write=[("alarm", "t[1]", "t[2] - 30.0")])

    ``limits`` (:class:`ActiveLimits`) bounds the firings of one operation and what
    a method may do; set it with ``space.rules.limits = ts.ActiveLimits(...)``.
    A durable space keeps what is set there, and in :attr:`firing_charge` and
    :attr:`step_charge`, from then on: the setters return once it is durable.
    ``max_rules`` is the most rules the space holds (100,000; a server sets its own).
    """

    def __init__(self, core: Core, active: tuple[Credit, Credit, ActiveLimits]) -> None:
        self._core = core
        self._engine: Engine = core.engine
        self._rules: dict[str, _Rule] = {}
        self.pending: deque[tuple[_Rule, Any]] = deque()
        self.unqueued = 0  # firings past max_firings in the queue: counted, not kept
        # Rules by what record changes they read: an update of (path, tag), any update
        # of a path, the other changes of a path.
        self.readers: dict[tuple[str, str], list[_Rule]] = {}
        self.updates: dict[str, list[_Rule]] = {}
        self.path_readers: dict[str, list[_Rule]] = {}
        self._record_changes: _RecordChanges | None = None
        # Who can trigger whom: reactions by template, rules by what they write, take and set.
        self._targets = _Index()
        self._writers = _Index()
        self._take_watchers: set[_Rule] = set()
        self._takers: set[_Rule] = set()
        self._setters: dict[tuple[str, str], set[_Rule]] = {}
        self._makers: set[_Rule] = set()  # the rules that call methods or create records
        self._running = False
        self._storms = 0
        self._sandbox: Sandbox | None = None
        self._firing_charge, self._step_charge, self._limits = active
        self.max_queued = self._limits.max_firings  # the queue holds one more, see queue()
        self.max_rules = MAX_RULES
        # A model of rules a store keeps for every process (Redis), which fires them
        # itself: the rules are checked and levelled here, and fire nothing.
        self.model = False

    @property
    def limits(self) -> ActiveLimits:
        """The bounds on firings and methods (see :class:`ActiveLimits`)."""
        return self._limits

    @limits.setter
    def limits(self, limits: ActiveLimits) -> None:
        self._core.call(self.apply_limits, limits)

    def apply_limits(self, limits: ActiveLimits) -> None:
        """With the core's lock held: set :attr:`limits`, journalled in a durable space,
        whose commit the caller waits for (see :meth:`Core.call
        <tuplespace._core.Core.call>`).  InvalidValue if ``limits`` is not an
        :class:`ActiveLimits`: nothing changes."""
        if not isinstance(limits, ActiveLimits):
            raise InvalidValue(f"limits is an ActiveLimits, got {type(limits).__name__}", "limits")
        self._keep({name: getattr(limits, name) for name in ActiveLimits.__slots__})
        self._limits = limits
        self.max_queued = limits.max_firings

    @property
    def firing_charge(self) -> Credit:
        """The credit each firing costs its rule's principal (0: firings are free).
        Set it with ``space.rules.firing_charge = "0.01"`` (a ``Credit``, int or str)."""
        return self._firing_charge

    @firing_charge.setter
    def firing_charge(self, amount: Credit | int | str) -> None:
        self._core.call(self.apply_firing_charge, amount)

    def apply_firing_charge(self, amount: Credit | int | str) -> None:
        """With the core's lock held: set :attr:`firing_charge` (see :meth:`apply_limits`)."""
        charge = to_credit(amount, "firing_charge")
        self._keep({"firing_charge": str(charge)})
        self._firing_charge = charge

    @property
    def step_charge(self) -> Credit:
        """The credit each step of a method costs the principal of the call (0: steps
        are free).  Set it with ``space.rules.step_charge = "0.000001"``."""
        return self._step_charge

    @step_charge.setter
    def step_charge(self, amount: Credit | int | str) -> None:
        self._core.call(self.apply_step_charge, amount)

    def apply_step_charge(self, amount: Credit | int | str) -> None:
        """With the core's lock held: set :attr:`step_charge` (see :meth:`apply_limits`)."""
        charge = to_credit(amount, "step_charge")
        self._keep({"step_charge": str(charge)})
        self._step_charge = charge

    def _keep(self, options: Mapping[str, Value]) -> None:
        """Journal ``options`` changed on the open space, in a durable space (with the
        lock held).  SpaceClosed if the space is closed: nothing changes."""
        self._core.check_open()
        journal = self._engine.journal
        if journal is not None:
            for name, value in options.items():
                journal.put_row(OptionRow(name, orjson.dumps(value).decode()))

    # -- managing ------------------------------------------------------------------------

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
        """Add a rule; returns what :meth:`list` tells of it.

        A reaction has a ``template`` and fires on the events ``on`` (``"write"``,
        the default, ``"take"``, ``"expire"``, ``"cancel"``, or several) of tuples
        matching it, when ``when`` (an expression over the tuple ``t``; None:
        always) is true.  Or it has the ``path`` of a record and fires on its
        changes ``on`` (``"update"``, the default, of the field ``tag``, or of any
        field if ``tag`` is None; ``"create"``, ``"destroy"``, ``"expire"``,
        ``"move"``); its expressions read the change as ``path``, ``tag``,
        ``value`` and ``kind``.
        It takes a tuple matching each of ``take``, writes each of ``write`` and
        sets each record field of ``set`` (a map from ``"path.tag"`` to an
        expression), gives each record of ``refresh`` (a map from its path to a
        lease in seconds, or an expression of one) a new lease, creates each record
        of ``create`` (a map from its path, or an expression giving one, such as
        ``"'results/' + string(t[1])"``, to its fields, each a value or an
        expression) and calls each method of ``call`` (``("path", "tag", args...)``,
        the arguments values or expressions; the method runs as :meth:`Record.call
        <tuplespace.Record.call>` with the rule's principal), all in one step: if one
        of them fails, none happens.  A path that is a valid path is that path.

        ``using`` (``{"farm": "jobs/farm"}``) names records whose fields a
        reaction's expressions read as they are when it fires (``farm.total``); a
        change of those fields does not fire it.

        A Push Logic rule has ``set="path.tag"`` and ``to``, an expression whose
        names are records (``kitchen.temp`` is the field ``temp`` of the record at
        path ``kitchen``; ``using={"kitchen": "sensors/kitchen"}`` names deeper
        paths).  It sets the field now and after every change of a field it reads.

        Each firing costs :attr:`firing_charge` credit (0 by default) from the
        account of ``principal``; a firing it cannot pay for does nothing and fails
        with :class:`InsufficientCredit`.  The rule is then ``"stopped"`` (its
        :attr:`RuleInfo.state`) until a firing is paid again, and the space writes
        the tuple ``("rule_stopped", name, principal)`` when it stops.

        Raises :class:`InvalidValue` (a ``ValueError``) for a bad name, expression
        or operation, naming it; :class:`RuleCycle` if the rule could trigger itself.
        """
        rule = self.define(
            name, on, template, path, tag, when, write, take, set, to, using, principal, refresh, create, call
        )
        info: RuleInfo = self._core.call(self.admit, rule)
        return info

    def define(
        self,
        name: str,
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
    ) -> _Rule:
        """The rule of :meth:`add`'s arguments, checked, for :meth:`admit` to make one of
        the space's; the space is made ready to run rules.  Raises as :meth:`add`."""
        rule = self._build(
            name, on, template, path, tag, when, write, take, set, to, using, principal, refresh, create, call
        )
        self._core.after_operations(self.run_pending)
        return rule

    def admit(self, rule: _Rule) -> RuleInfo:
        """With the core's lock held: make ``rule`` (see :meth:`define`) one of the
        space's, journalled in a durable space, whose commit the caller waits for (see
        :meth:`Core.call <tuplespace._core.Core.call>`); what :meth:`list` tells of it."""
        definition = None if self._engine.journal is None else _definition(rule)
        return self._admit(rule, definition)

    def load(
        self, definitions: Iterable[tuple[str, str]], limits: Limits, counts: Iterable[RuleCountRow] = ()
    ) -> None:
        """Add the rules a store kept: (name, definition) pairs (a
        :class:`~tuplespace._store.RuleRow` is one), as :func:`_definition` wrote
        them, with what they did (``counts``: their firings, failures and states).
        A Push Logic rule is not fired as it loads: its field was set in the same
        commits as the changes it follows.  Raises ValueError for one that is damaged."""
        self._core.after_operations(self.run_pending)
        did = {row.name: row for row in counts}
        for name, text in definitions:
            rule = self._build(name, **_decode_definition(text, limits))
            row = did.get(name)
            if row is not None:
                rule.fired, rule.failed, rule.stopped = row.fired, row.failed, bool(row.stopped)
                rule.last_error = None if row.last_error is None else failure_from_json(row.last_error)
            with self._core.lock:
                self._admit(rule, None, loaded=True)

    def _build(
        self,
        name: str,
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
    ) -> _Rule:
        if type(name) is not str or not 1 <= len(name) <= 128 or not frozenset(name) <= _NAME_CHARS:
            raise InvalidValue(f"a rule's name is 1 to 128 of A-Z a-z 0-9 _ - ., got {name!r}", "name")
        if to is not None:
            if template is not None or path is not None or when is not None or write or take:
                raise InvalidValue("a Push Logic rule has set= and to= only (and using=)", "to")
            if refresh or create or call:
                raise InvalidValue("a Push Logic rule has set= and to= only (and using=)", "to")
            rule = self._push_rule(name, set, to, using)
        else:
            rule = self._reaction(name, on, template, path, tag, when, write, take, set, using)
            self._making(rule, refresh, create, call)
        check_principal(principal)
        rule.principal = principal
        return rule

    def _admit(self, rule: _Rule, definition: str | None, loaded: bool = False) -> RuleInfo:
        """Make ``rule`` one of the space's (with its lock held); journal its
        ``definition`` in a durable space.  A Push Logic rule sets its field now,
        unless it is ``loaded`` from a store (its field was set as the store kept it)."""
        name = rule.name
        if name in self._rules:
            raise RuleExists(f"there is a rule named {name!r} already; remove it first", "name")
        most = self.max_rules
        if len(self._rules) >= most:
            raise LimitReached(f"a space holds at most {most} rules", limit="max_rules", maximum=most)
        self._link(rule)
        self._install(rule)
        self._rules[name] = rule
        if "expire" in rule.on:  # expiries happen while nobody calls: the space's timer sees them
            self._core.start_timer()
        journal = self._engine.journal
        if journal is not None and definition is not None:
            journal.put_row(RuleRow(name, definition))
        if rule.kind == "push" and not self.model and not loaded:
            self.pending.append((rule, None))  # establish the field now
            self.run_pending()
        return rule.info()

    def remove(self, name: str) -> None:
        """Remove the rule ``name``; :class:`RuleNotFound` (a ``KeyError``) if there is none."""
        self._core.call(self.drop, name)

    def drop(self, name: str) -> None:
        """With the core's lock held: :meth:`remove` the rule ``name``, journalled in a
        durable space, whose commit the caller waits for (see :meth:`admit`)."""
        rule = self._rules.pop(name, None)
        if rule is None:
            raise RuleNotFound(f"no rule named {name!r}")
        if rule.feed is not None:
            self._engine.unsubscribe(rule.feed)
        for index, key in self._filed(rule):
            index[key].remove(rule)
            if not index[key]:
                del index[key]
        kept = [p for p in self.pending if p[0] is not rule]  # kept in place, as run_pending holds it
        self.pending.clear()
        self.pending.extend(kept)
        self._unlink(rule)
        journal = self._engine.journal
        if journal is not None:
            journal.delete_row(RuleRow, name)
            journal.delete_row(RuleCountRow, name)

    def list(self) -> list[RuleInfo]:
        """Every rule, by level, then by name."""
        with self._core.lock:
            return sorted((r.info() for r in self._rules.values()), key=lambda i: (i.level, i.name))

    def get(self, name: str) -> RuleInfo:
        """The rule ``name``; :class:`RuleNotFound` (a ``KeyError``) if there is none."""
        with self._core.lock:
            rule = self._rules.get(name)
            if rule is None:
                raise RuleNotFound(f"no rule named {name!r}")
            return rule.info()

    def statistics(self) -> dict[str, Any]:
        """Rules, firings and failures, and the storms stopped at ``max_firings``."""
        with self._core.lock:
            rules = self._rules.values()
            return {
                "rules": len(self._rules),
                "fired": sum(r.fired for r in rules),
                "failed": sum(r.failed for r in rules),
                "storms": self._storms,
                "levels": max((r.level for r in rules), default=0),
            }

    def definition(self, name: str) -> str:
        """The rule ``name`` as a store that keeps rules for others writes it (JSON,
        which :meth:`load` reads); RuleNotFound if there is none, InvalidValue for
        one that cannot be kept (a ``Pred``)."""
        with self._core.lock:
            rule = self._rules.get(name)
            if rule is None:
                raise RuleNotFound(f"no rule named {name!r}")
        return _definition(rule)

    def reads(self, name: str, kind: str, event: tuple[Any, ...] | Change | None) -> dict[str, str] | None:
        """Whether the rule ``name`` fires for an event in a space kept elsewhere
        (Redis), which performs it: None if it does not (another kind, a tuple its
        template does not match, a change of nothing it reads); else the records it
        reads as it fires (name -> path), whose fields :meth:`outcome` is given.  The
        event ``kind`` of the tuple ``event``, a record's change ``event``, or None:
        the firing of a Push Logic rule as it is added."""
        rule = self._rules[name]
        if event is None:
            return rule.records if rule.kind == "push" else None
        if isinstance(event, Change):
            kind, path = event.kind, event.path
            if rule.kind == "push":
                if kind == "update":
                    fires = (path, event.tag) in rule.reads
                else:
                    paths = rule.records.values()
                    fires = path in paths or (kind == "move" and event.value in paths)
            elif rule.kind != "record" or kind not in rule.on:
                fires = False
            elif kind == "update":
                fires = path == rule.path and rule.tag in (None, event.tag)
            else:
                fires = path == rule.path or (kind == "move" and event.value == rule.path)
        else:
            template = rule.template
            fires = kind in rule.on and template is not None and template.matches(event)
        return rule.records if fires else None

    def outcome(
        self, name: str, event: tuple[Any, ...] | Change | None, records: Mapping[str, Any]
    ) -> Outcome | None:
        """What the rule ``name``, which :meth:`reads` says fires for ``event``, does
        with the fields of the ``records`` it reads (by name): the tuples it writes,
        the templates it takes, in its order, and the fields it sets; None if its
        condition is false.  Raises the TupleSpaceError the firing fails with (see
        :func:`failure`)."""
        env = dict(records)
        if isinstance(event, Change):
            env.update(path=event.path, tag=event.tag, value=event.value, kind=event.kind)
        elif event is not None and self._rules[name].kind == "reaction":
            env["t"] = event
        return _outcome(self._rules[name], env)

    # -- building rules --------------------------------------------------------------------

    def _reaction(
        self,
        name: str,
        on: str | Iterable[str] | None,
        template: Iterable[Any] | None,
        path: str | None,
        tag: str | None,
        when: str | None,
        write: Iterable[Iterable[Any]],
        take: Iterable[Iterable[Any]],
        sets: str | Mapping[str, str] | None,
        using: Mapping[str, str] | None,
    ) -> _Rule:
        if (template is None) == (path is None):
            raise InvalidValue(
                "a reaction has a template (tuple events) or a path (record events); "
                "a Push Logic rule has set= and to=",
                "template",
            )
        if template is not None:
            rule, names, allowed = _Rule(name, "reaction"), _T, _TUPLE_EVENTS
            kinds = frozenset({"write"} if on is None else {on} if isinstance(on, str) else on)
            rule.source_template = tuple(template)
            rule.template = compile_template(rule.source_template)
            rule.checks = [compile_template((f,)) for f in rule.template.fields]
            if tag is not None:
                raise InvalidValue("tag= goes with path=, in a reaction to record events", "tag")
        else:
            rule, names, allowed = _Rule(name, "record"), _R, _RECORD_KINDS
            kinds = frozenset({"update"} if on is None else {on} if isinstance(on, str) else on)
            rule.path = check_path(path)
            rule.tag = None if tag is None else check_tag(tag)
        if not kinds or not kinds <= allowed:
            raise InvalidValue(f"on= is one or more of {sorted(allowed)}, got {sorted(kinds)}", "on")
        rule.on = kinds
        rule.using = rule.records = _using(using)
        clash = names & rule.using.keys()
        if clash:
            raise InvalidValue(f"using= names {sorted(clash)}, which the rule's event gives already", "using")
        names = names | frozenset(rule.using)
        rule.when = None if when is None else compile_expr(when, "when", names)
        writes, takes = [tuple(w) for w in write], [tuple(t) for t in take]
        for i, w in enumerate(writes):
            rule.writes.append(tuple(_field(f, f"write[{i}][{j}]", False, names) for j, f in enumerate(w)))
        for i, t in enumerate(takes):
            rule.takes.append(tuple(_field(f, f"take[{i}][{j}]", True, names) for j, f in enumerate(t)))
            compile_template(tuple(ANY if type(f) is Expr else f for f in rule.takes[-1]))  # valid now
        if sets is not None:
            if not isinstance(sets, Mapping):
                raise InvalidValue("a reaction's set= maps 'path.tag' to an expression", "set")
            for target, source in sets.items():
                rule.sets[_split(target, "set")] = compile_expr(source, f"set[{target!r}]", names)
        rule.builds = [_builder(w) for w in rule.writes]
        rule.source = {"write": writes, "take": takes}
        return rule

    @staticmethod
    def _making(
        rule: _Rule,
        refresh: Mapping[str, Any] | None,
        create: Mapping[Any, Mapping[str, Any]] | None,
        call: Iterable[Iterable[Any]],
    ) -> None:
        """Give a reaction its operations on records: refresh=, create= and call=."""
        if refresh is None and create is None and type(call) in (tuple, list) and not call:
            Rules._check_does_something(rule)  # none of them: the rule keeps its defaults
            return
        names = _T if rule.kind == "reaction" else _R
        names = names | frozenset(rule.using)
        if refresh is not None:
            if not isinstance(refresh, Mapping):
                raise InvalidValue(
                    "refresh= maps a record's path to a lease (seconds, or an expression)", "refresh"
                )
            for target, lease in refresh.items():
                where = f"refresh[{target!r}]"
                rule.refreshes.append((_path(target, where, frozenset()), _field(lease, where, False, names)))
        if create is not None:
            if not isinstance(create, Mapping):
                raise InvalidValue("create= maps a record's path (or an expression) to its fields", "create")
            for target, fields in create.items():
                where = f"create[{target!r}]"
                if not isinstance(fields, Mapping):
                    raise InvalidValue(
                        "a record's fields are a map from tags to values or expressions", where
                    )
                made = {}
                for tag, f in fields.items():
                    made[check_tag(tag)] = _field(f, f"{where}[{tag!r}]", False, names)
                rule.creates.append((_path(target, where, names), made))
        calls = []
        given = [tuple(item) for item in call]
        for i, item in enumerate(given):
            where = f"call[{i}]"
            if len(item) < 2 or type(item[1]) is not str:
                raise InvalidValue(
                    "a call is (path, tag, arguments...): the record and its method's field", where
                )
            path = _path(item[0], where, frozenset())
            args = tuple(_field(f, f"{where}[{j + 2}]", False, names) for j, f in enumerate(item[2:]))
            rule.calls.append((path, check_tag(item[1]), _builder(args)))
            calls.append((path, item[1], args))
        rule.called = frozenset(p for p, _, _ in rule.calls)
        rule.made = frozenset(p if type(p) is str else None for p, _ in rule.creates)
        rule.records_made = bool(rule.refreshes or rule.creates or rule.calls)
        Rules._check_does_something(rule)
        if refresh is not None:
            rule.source["refresh"] = {k: _shown(v) for k, v in refresh.items()}
        if create is not None:
            rule.source["create"] = {
                _shown(k): {t: _shown(f) for t, f in v.items()} for k, v in create.items()
            }
        rule.source["call"] = tuple(tuple(_shown(f) for f in c) for c in given)
        rule.source["calls"] = calls

    @staticmethod
    def _check_does_something(rule: _Rule) -> None:
        if not (rule.writes or rule.takes or rule.sets or rule.refreshes or rule.creates or rule.calls):
            raise InvalidValue(
                "a reaction does something: write=, take=, set=, refresh=, create= or call=", "write"
            )

    def _push_rule(self, name: str, target: object, to: str, using: Mapping[str, str] | None) -> _Rule:
        rule = _Rule(name, "push")
        rule.on = _RECORD_KINDS  # any change of a field it reads, or of its record
        path, tag = _split(target, "set")
        expr = compile_expr(to, "to")
        rule.using = _using(using)
        for var in expr.names:
            if not any(n == var for n, _ in expr.selects):
                raise InvalidValue(f"{var!r} names a record: read its fields as {var}.tag", "to")
        for var, field in expr.selects:
            rule.records[var] = rule.using.get(var, var)
            rule.reads.add((rule.records[var], field))
        rule.sets[(path, tag)] = expr
        return rule

    def _install(self, rule: _Rule) -> None:
        engine = self._engine
        rule.fire = self._firing(rule)
        if rule.kind == "reaction":
            assert rule.template is not None
            feed = rule.feed = _RuleFeed(engine.next_interest(), rule, self)
            engine.add_feed(feed, None, None)
            ft = FeedTemplate(engine.next_interest(), rule.template, feed)
            feed.templates = [ft]
            engine.file_feed(ft)
        else:
            if self._record_changes is None:
                self._record_changes = _RecordChanges(engine.next_interest(), self)
                engine.add_feed(self._record_changes, None, None)
                engine.records.add_watcher(self._record_changes)
            for index, key in self._filed(rule):
                index.setdefault(key, []).append(rule)

    def _filed(self, rule: _Rule) -> _Filing:
        """Where a rule that reads record changes is filed: (index, key) pairs."""
        if rule.kind == "reaction":  # to tuple events: filed with the engine
            return []
        if rule.kind == "push":
            paths = {p for p, _ in rule.reads}
            return [(self.readers, key) for key in rule.reads] + [(self.path_readers, p) for p in paths]
        out: list[tuple[dict[Any, list[_Rule]], Any]] = []
        if "update" in rule.on:
            out.append(
                (self.readers, (rule.path, rule.tag)) if rule.tag is not None else (self.updates, rule.path)
            )
        if rule.on - {"update"}:
            out.append((self.path_readers, rule.path))
        return out

    # -- levels ------------------------------------------------------------------------------

    def _successors(self, rule: _Rule) -> set[_Rule]:
        """The rules there are that ``rule`` can trigger."""
        out: set[_Rule] = set()
        for w in rule.writes:
            out.update(b for b in self._targets.candidates(len(w), _exact(w)) if rule.can_trigger(b))
        if rule.takes:
            out.update(b for b in self._take_watchers if rule.can_trigger(b))
        for key in rule.sets:
            out.update(b for b in self.readers.get(key, ()) if rule.can_trigger(b))
            out.update(b for b in self.updates.get(key[0], ()) if rule.can_trigger(b))
        if rule.called or rule.made:  # the rules of the records it sets or creates
            out.update(b for b in self._rules.values() if b.kind != "reaction" and rule.can_trigger(b))
        return out

    def _predecessors(self, rule: _Rule) -> set[_Rule]:
        """The rules there are that can trigger ``rule``."""
        makers = {a for a in self._makers if a.can_trigger(rule)} if rule.kind != "reaction" else set()
        if rule.kind == "push":
            return makers | {a for key in rule.reads for a in self._setters.get(key, ())}
        if rule.kind == "record":
            keys = [k for k in self._setters if k[0] == rule.path and rule.tag in (None, k[1])]
            return makers | {a for key in keys for a in self._setters[key] if a.can_trigger(rule)}
        template = rule.template
        assert template is not None
        out: set[_Rule] = set()
        if "write" in rule.on:
            writers = self._writers.candidates(template.arity, template.exact)
            out.update(a for a in writers if a.can_trigger(rule))
        if "take" in rule.on:
            out.update(a for a in self._takers if a.can_trigger(rule))
        return out

    def _link(self, new: _Rule) -> None:
        """File ``new`` in the graph of who triggers whom; RuleCycle (and nothing
        changes) if it could trigger itself."""
        succ, pred = self._successors(new), self._predecessors(new)
        if new.can_trigger(new):
            loop = [new.name, new.name]
            raise RuleCycle(f"rule {new.name!r} could trigger itself: {' -> '.join(loop)}", loop)
        # A loop through others: a path from a rule it triggers to one that triggers it.
        came_from: dict[_Rule, _Rule] = {}
        todo = deque(succ)
        for s in succ:
            came_from[s] = new
        while todo:
            r = todo.popleft()
            if r in pred:
                path = [r]
                while path[-1] is not new:
                    path.append(came_from[path[-1]])
                names = [new.name, *(x.name for x in reversed(path[:-1])), new.name]
                raise RuleCycle(f"rule {new.name!r} could trigger itself: {' -> '.join(names)}", names)
            for nxt in r.succ:
                if nxt not in came_from:
                    came_from[nxt] = r
                    todo.append(nxt)
        new.succ, new.pred = succ, pred
        for s in succ:
            s.pred.add(new)
        for p in pred:
            p.succ.add(new)
        if new.kind == "reaction":  # a reaction to tuple events
            assert new.template is not None
            self._targets.add(new, new.template.arity, new.template.exact)
            if "take" in new.on:
                self._take_watchers.add(new)
        for w in new.writes:
            self._writers.add(new, len(w), _exact(w))
        if new.takes:
            self._takers.add(new)
        for key in new.sets:
            self._setters.setdefault(key, set()).add(new)
        if new.called or new.made:
            self._makers.add(new)
        self._relevel([new])

    def _unlink(self, rule: _Rule) -> None:
        for s in rule.succ:
            s.pred.discard(rule)
        for p in rule.pred:
            p.succ.discard(rule)
        self._targets.remove(rule)
        self._writers.remove(rule)
        self._take_watchers.discard(rule)
        self._takers.discard(rule)
        self._makers.discard(rule)
        for key in rule.sets:
            self._setters[key].discard(rule)
            if not self._setters[key]:
                del self._setters[key]
        self._relevel(rule.succ)

    @staticmethod
    def _relevel(start: Iterable[_Rule]) -> None:
        """Give ``start`` and the rules downstream of them their levels: one more than
        the highest level of the rules that can trigger each."""
        todo: deque[_Rule] = deque(start)
        while todo:
            r = todo.popleft()
            level = 1 + max((p.level for p in r.pred), default=0)
            if level != r.level:
                r.level = level
                todo.extend(r.succ)

    # -- firing ------------------------------------------------------------------------------

    def queue(self, rule: _Rule, event: Any) -> None:
        """Queue a firing of ``rule`` for ``event`` (a record's :class:`Change`, or a
        tuple's raw event: ``event[2]`` is its tuple).  An operation runs at most
        ``max_firings`` of them, in order, so one queued behind as many others would
        never run: it is counted, not kept, and the queue of a write of many tuples that
        many rules watch stays small."""
        pending = self.pending
        if len(pending) > self.max_queued:
            self.unqueued += 1
        else:
            pending.append((rule, event))

    def _firing(self, rule: _Rule) -> Callable[[Any], bool]:
        """What ``rule`` does for an event, True if it did it (see :meth:`_perform`): for
        the common reaction (a condition on the tuple, one tuple written) a function
        that does just that."""
        if (
            rule.kind != "reaction"
            or rule.using
            or rule.takes
            or rule.sets
            or rule.records_made
            or len(rule.builds) != 1
        ):
            return functools.partial(self._perform, rule)
        when = None if rule.when is None else rule.when.run
        build = rule.builds[0]
        write = self._engine.write_derived

        def fire(event: RawEvent) -> bool:
            env = {"t": event[2]}  # the tuple of its raw event
            if when is not None:
                ok = when(env)
                if ok is not True:
                    if ok is False:
                        return False
                    raise EvaluationError(f"when= gave {type(ok).__name__}, not bool")
            write(build(env))
            return True

        return fire

    def run_pending(self) -> None:
        """Run the queued firings, in order, and those they set off; called with the
        space's lock held, by the operation that queued them.  Never raises.

        In a durable space, what each rule that ran did is journaled once, at the
        end, in the batch of the operation and its firings."""
        pending = self.pending
        if not pending or self._running:
            return
        self._running = True
        budget = self.max_queued  # limits.max_firings
        charge = self._firing_charge
        journal = self._engine.journal
        ran: set[_Rule] | None = None if journal is None else set()
        try:
            while pending:
                rule, event = pending.popleft()
                if ran is not None:
                    ran.add(rule)
                if budget == 0:
                    self._storm(rule, len(pending) + 1 + self.unqueued)
                    pending.clear()
                    break
                budget -= 1
                try:  # paid by the rule's principal, if the firing did something
                    if charge:
                        self._can_pay(rule, charge)
                    if rule.fire(event):
                        rule.fired += 1
                        if charge:
                            self._engine.records.accounts.charge(rule.principal, charge)
                            rule.stopped = False
                except Exception as exc:
                    self._failed(rule, failure(exc))
        finally:
            self._running = False
            self.unqueued = 0
            if ran:
                assert journal is not None
                for rule in ran:
                    if self._rules.get(rule.name) is rule:  # not removed by now
                        journal.put_row(rule.counts())

    def _storm(self, rule: _Rule, dropped: int) -> None:
        limit = self.limits.max_firings
        self._storms += 1
        exc = LimitReached(
            f"one operation set off more than {limit} firings (max_firings); "
            f"{dropped} firings were not run, from rule {rule.name!r} on",
            limit="max_firings",
            maximum=limit,
        )
        self._failed(rule, exc)

    @staticmethod
    def _failed(rule: _Rule, exc: TupleSpaceError) -> None:
        rule.failed += 1
        rule.last_error = exc
        log.warning("rule %r failed: %s", rule.name, exc)

    def _can_pay(self, rule: _Rule, charge: Credit) -> None:
        """Raise :class:`InsufficientCredit` if ``rule``'s principal cannot pay a firing;
        the rule is then stopped, which the space is told once."""
        try:
            self._engine.records.accounts.check(rule.principal, charge)
        except InsufficientCredit:
            if not rule.stopped:
                rule.stopped = True
                self._say_stopped(rule)
            raise

    def _say_stopped(self, rule: _Rule) -> None:
        """Write the tuple that tells that ``rule`` stopped for want of credit."""
        try:
            self._engine.write((_STOPPED, rule.name, rule.principal))
        except TupleSpaceError as exc:  # a full space: the rule's state and the log still say it
            log.warning("rule %r stopped; the space could not be told: %s", rule.name, exc)

    def _perform(self, rule: _Rule, event: Any) -> bool:
        """Do what ``rule`` does for ``event``; False if its condition was false."""
        engine = self._engine
        kind = rule.kind
        if kind == "reaction":
            env = {"t": event[2]}  # the tuple of its raw event
        elif kind == "record":
            env = {"path": event.path, "tag": event.tag, "value": event.value, "kind": event.kind}
        else:
            return self._push(rule)
        if rule.records:  # the fields of the records it names, as they are now
            env.update(self._records_env(rule))
        if not _holds(rule.when, env):
            return False
        if not (rule.takes or rule.sets or rule.records_made):  # writes alone: the common case
            builds = rule.builds
            if len(builds) == 1:
                engine.write_derived(builds[0](env))
            else:
                engine.write_many([build(env) for build in builds])
            return True
        writes = [build(env) for build in rule.builds]  # checked by the engine as it writes
        sets = (
            [(self._record(p), tag, check_value(e.run(env))) for (p, tag), e in rule.sets.items()]
            if rule.sets
            else ()
        )
        if rule.records_made:
            return self._perform_records(rule, env, writes, sets)
        if rule.takes:
            takes = [compile_template(_fill(t, env)) for t in rule.takes]
            txn = engine.begin(None)
            try:
                for template in takes:
                    if engine.find(template, True, txn) is None:
                        raise no_match(template)
                engine.write_many(writes, None, txn)
            except BaseException:
                engine.abort(txn)
                raise
            engine.commit(txn)
        elif len(writes) == 1:
            engine.write_derived(writes[0])
        elif writes:
            engine.write_many(writes)
        for rid, tag, value in sets:
            engine.records.set(rid, None, tag, value)
        return True

    def _perform_records(
        self,
        rule: _Rule,
        env: dict[str, Any],
        writes: _Tuples,
        sets: Iterable[tuple[int, str, Value]],
    ) -> bool:
        """Do what a reaction that refreshes, creates or calls does: everything is
        computed and checked first (the methods run), then its tuples are taken and
        written in a transaction, in which the records are refreshed and created, and
        the fields set; a failure before the commit changes nothing."""
        engine = self._engine
        refreshes = []
        for p, lease in rule.refreshes:
            seconds = _run(lease, env)
            engine.expiry(seconds)  # a valid lease, or InvalidValue
            refreshes.append((self._record(p), seconds))
        made = [(_run(p, env), {t: _run(f, env) for t, f in fields.items()}) for p, fields in rule.creates]
        calls: list[Call] = []
        for p, tag, args in rule.calls:
            call = run_call(
                engine,
                self._sandbox_of(),
                self.limits,
                self._record(p),
                None,
                tag,
                args(env),
                rule.principal,
                self._step_charge,
            )
            calls.append(call)
            writes.extend(call.spawned)
            made.extend(call.created)
        created = check_created(engine, made)
        takes = [compile_template(_fill(t, env)) for t in rule.takes]
        records = engine.records
        txn = engine.begin(None)
        try:
            for template in takes:
                if engine.find(template, True, txn) is None:
                    raise no_match(template)
            engine.write_many(writes, None, txn)
            for rid, seconds in refreshes:
                records.refresh(rid, None, lease=seconds, principal=rule.principal)
            for path, fields in created:
                records.create(path, fields, principal=rule.principal)
        except BaseException:
            engine.abort(txn)
            raise
        engine.commit(txn)
        for rid, tag, value in sets:
            records.set(rid, None, tag, value)
        for call in calls:
            call.created.clear()  # created with the rule's
            call.apply(engine, rule.principal, written=True)
        return True

    def _push(self, rule: _Rule) -> bool:
        """Fire a Push Logic rule: set its field, if the value changes."""
        env = self._records_env(rule)
        (path, tag), expr = next(iter(rule.sets.items()))
        value = check_value(expr.run(env))
        rid = self._record(path)
        records = self._engine.records
        fields = records.all(rid, None)
        if tag not in fields or value_key(fields[tag]) != value_key(value):
            records.set(rid, None, tag, value)
        return True

    def _record(self, path: str) -> int:
        rid, _, _ = self._engine.records.resolve(path)
        return rid

    def _records_env(self, rule: _Rule) -> dict[str, Any]:
        """The fields of the records a rule reads as it fires, by name; RecordNotFound
        if one is missing, a failure of the firing."""
        records = self._engine.records
        return {var: records.all(self._record(path), None) for var, path in rule.records.items()}

    # -- methods -----------------------------------------------------------------------------

    def _sandbox_of(self) -> Sandbox:
        """The space's sandbox, made when a method first runs."""
        if self._sandbox is None:
            self._sandbox = Sandbox()
        return self._sandbox

    def call(self, rid: int, token: str | None, tag: str, args: tuple[Any, ...], principal: str) -> Value:
        """Run the method of a record's field (see :meth:`Record.call`), paid by
        ``principal``; with the lock held."""
        return call_method(
            self._engine, self._sandbox_of(), self.limits, rid, token, tag, args, principal, self._step_charge
        )
