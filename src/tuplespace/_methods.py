"""Methods: Lua functions held in record fields, run in a sandbox with limits.

A :class:`Method` is a value like any other: a map ``{"$method": {"lang": "lua",
"source": ...}}``, so it is stored, matched and sent on the wire as that map (see
``docs/wire-format.md``); only its source text travels, and nothing runs it but
:func:`call_method`, in the sandbox.

The sandbox is one Lua 5.4 state per space (``lupa``), used under the space's lock.
Each call gets fresh globals that hold only pure libraries, read-only: ``math``
(without ``random``), ``string`` (without ``dump`` and the pattern functions
``find``, ``match``, ``gmatch`` and ``gsub``, whose backtracking could run long
inside C where no limit is checked), ``table``, ``utf8`` and the base functions
that touch nothing outside (``pairs``, ``ipairs``, ``next``, ``select``,
``tostring``, ``tonumber``, ``type``, ``error``, ``assert``), plus ``write(...)``,
which spawns a tuple when the method succeeds, and ``create(path, fields)``, which
creates the record ``path`` with the fields of the table ``fields`` (null, bool,
int, float or str values, checked as any record's) when the method succeeds.  No ``io``, ``os``, ``debug``,
``load``, ``require``, ``coroutine``, ``pcall`` (so a method cannot catch the error
that stops it), ``setmetatable`` or ``collectgarbage``; source is loaded as text
only (never bytecode), and no Python object ever enters the state.

Limits (:class:`ActiveLimits`): a count hook stops the method after
``method_steps`` Lua VM instructions or ``method_ms`` milliseconds of CPU time;
the state's allocator refuses memory past ``method_memory`` bytes more than it
held before the call.  A method sees the record's fields that are null, bool, int,
float or str as ``self``; what it sets there, and the tuples it writes, are applied
only when it returns normally, all together (the tuples, then the records it
creates, then its own fields).  A method stopped by a limit or an error, or whose
changes do not fit (a path taken, a bad field), changes nothing.

Credit: when the space charges for steps, the principal of the call pays for the
steps the method ran (counted in hundreds by the hook), returned or failed, and
the method may run only as many steps as the principal's balance pays for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ._credit import Accounts, check_principal, times
from ._errors import (
    EvaluationError,
    InsufficientCredit,
    InvalidValue,
    LimitReached,
    RecordExists,
    ValueTooLarge,
)
from ._extras import MissingExtra, require
from ._names import check_path, check_tag
from ._recordstore import check_field, check_fields
from ._values import Credit, Map, Value

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "ActiveLimits",
    "Call",
    "Method",
    "Sandbox",
    "call_method",
    "check_created",
    "run_call",
    "run_paid",
    "step_budget",
]

_KEY: Final = "$method"
_LANGS: Final = ("lua",)
_MAX_SOURCE: Final = 64 << 10
_HOOK_EVERY: Final = 100  # VM instructions between two checks of the limits
MAX_FIRINGS: Final = 1000  # firings one operation may set off, unless a space says otherwise
METHOD_STEPS: Final = 100_000  # what a method may do, unless a space says otherwise
METHOD_MS: Final = 100
METHOD_MEMORY: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class ActiveLimits:
    """Bounds on what rules and methods may do in one space.

    - ``max_firings``: the most reactions one operation may set off, its own and
      those that follow from them (a storm is stopped there);
    - ``method_steps``: Lua VM instructions a method may run;
    - ``method_ms``: milliseconds of CPU time a method may take;
    - ``method_memory``: bytes a method may allocate beyond what the sandbox held.
    """

    max_firings: int = MAX_FIRINGS
    method_steps: int = METHOD_STEPS
    method_ms: int = METHOD_MS
    method_memory: int = METHOD_MEMORY

    def __post_init__(self) -> None:
        for name in ("max_firings", "method_steps", "method_ms", "method_memory"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ActiveLimits.{name} must be a positive int, got {value!r}")


class Method(Mapping[str, Value]):
    """A method to keep in a record field: source text in a sandboxed language
    (Lua 5.4), called with :meth:`Record.call <tuplespace.Record.call>`.

    The source is a Lua function expression whose first parameter is the record::

        >>> bump = Method("function(self, d) self.target = self.target + d return self.target end")

    It is stored as the map ``{"$method": {"lang": "lua", "source": ...}}`` and
    equal to it.  Raises :class:`InvalidValue` for another language or source that
    is not a str of at most 64 KiB.
    """

    __slots__ = ("_data", "lang", "source")

    def __init__(self, source: str, lang: str = "lua") -> None:
        if lang not in _LANGS:
            raise InvalidValue(f"a method's language is one of {', '.join(_LANGS)}, not {lang!r}", "lang")
        if type(source) is not str or not source.strip():
            raise InvalidValue("a method's source is a non-empty str", "source")
        if len(source) > _MAX_SOURCE:
            raise InvalidValue(f"a method's source has at most {_MAX_SOURCE} characters", "source")
        self.lang = lang
        self.source = source
        self._data = {_KEY: Map({"lang": lang, "source": source})}

    @classmethod
    def of(cls, value: object) -> Method | None:
        """The method a stored value holds, or None if it holds none."""
        if not isinstance(value, Mapping) or len(value) != 1 or _KEY not in value:
            return None
        inner = value[_KEY]
        if not isinstance(inner, Mapping) or set(inner) != {"lang", "source"}:
            return None
        try:
            return cls(inner["source"], inner["lang"])
        except InvalidValue:
            return None

    def __getitem__(self, key: str) -> Value:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return 1

    def __hash__(self) -> int:
        return hash((self.lang, self.source))

    def __repr__(self) -> str:
        return f"Method({self.source!r})"


# The sandbox's runner, loaded once per Lua state.  It keeps what it needs from the
# standard libraries in locals, then builds the read-only globals of methods.
_RUNNER: Final = """
local sethook, clock, load, pcall, setmetatable, pairs, type, error, pack, unpack =
    debug.sethook, os.clock, load, pcall, setmetatable, pairs, type, error, table.pack, table.unpack
local function readonly(lib, without)
    local copy = {}
    for k, v in pairs(lib) do
        if not without[k] then copy[k] = v end
    end
    return setmetatable({}, {
        __index = copy,
        __newindex = function() error("the library is read-only", 2) end,
        __metatable = false,
    })
end
local safe_string = readonly(string, {dump = true, find = true, match = true, gmatch = true, gsub = true})
getmetatable("").__index = safe_string   -- ("x"):rep(3) sees the same functions
local base = {
    math = readonly(math, {random = true, randomseed = true}),
    string = safe_string,
    table = readonly(table, {}),
    utf8 = readonly(utf8, {}),
    pairs = pairs, ipairs = ipairs, next = next, select = select, tostring = tostring,
    tonumber = tonumber, type = type, error = error, assert = assert,
}
local globals = {__index = base, __metatable = false}
local STOP = {}
local steps = 0
-- call: the source, then the arguments (a table made before the memory limit: pushing
-- a string as an argument would allocate outside any protected call).
local function run(call, self, nargs, max_steps, max_seconds, every)
    local spawned, n, made, m = {}, 0, {}, 0
    local env = setmetatable({
        write = function(...) n = n + 1; spawned[n] = pack(...) end,
        create = function(path, fields)
            if type(path) ~= "string" then error("create(path, fields): path is a string", 2) end
            if type(fields) ~= "table" then error("create(path, fields): fields is a table", 2) end
            local copy = {}
            for k, v in pairs(fields) do copy[k] = v end
            m = m + 1; made[m] = {path, copy}
        end,
    }, globals)
    steps = 0
    local chunk, err = load("return " .. call[1], "=method", "t", env)
    if not chunk then
        if err == "not enough memory" then return "memory" end
        return "syntax", err
    end
    local stop, why = clock() + max_seconds, nil
    sethook(function()
        steps = steps + every
        if steps > max_steps then why = "steps"; error(STOP) end
        if clock() > stop then why = "time"; error(STOP) end
    end, "", every)
    local ok, result = pcall(chunk)
    if ok then
        if type(result) ~= "function" then
            sethook()
            return "error", "the source is not a function expression"
        end
        ok, result = pcall(result, self, unpack(call, 2, nargs + 1))
    end
    sethook()
    if why then return why, steps end
    if not ok then
        if result == "not enough memory" then return "memory" end
        return "error", type(result) == "string" and result or "error object: " .. type(result)
    end
    return "ok", result, spawned, n, made, m
end
return run, function() return steps end
"""


def _scalar(v: object) -> bool:
    t = type(v)
    return t is str or t is float or t is bool or (t is int and -(1 << 63) <= v < 1 << 63)  # type: ignore[operator]


class Sandbox:
    """The Lua state of one space, and the runner that calls methods in it."""

    __slots__ = ("_lua", "_lupa", "_ran", "_run", "_steps")

    def __init__(self) -> None:
        try:
            lua54 = require("active", "lupa.lua54")
        except MissingExtra as exc:
            raise EvaluationError(str(exc)) from None
        self._lupa = lua54
        self._lua = lua54.LuaRuntime(
            register_eval=False, register_builtins=False, unpack_returned_tuples=True, max_memory=0
        )
        self._run, self._steps = self._lua.execute(_RUNNER)
        self._ran: str | None = None  # how the latest call ended; None: it did not run

    def steps(self) -> int:
        """The steps the latest call ran, as they are paid for (0 if it did not run).
        The hook counts them in hundreds: a method it stopped (``method_steps``,
        ``method_ms``) ran what it counted, any other up to a hundred more, paid as a
        hundred."""
        if self._ran is None:
            return 0
        counted: int = self._steps()
        return counted if self._ran in ("steps", "time") else counted + _HOOK_EVERY

    def run(
        self,
        method: Method,
        fields: dict[str, Value],
        args: tuple[Any, ...],
        limits: ActiveLimits,
        max_steps: int | None = None,
    ) -> Any:
        """Call ``method`` with ``self`` holding the scalar ``fields``, stopping it past
        ``max_steps`` (default ``limits.method_steps``); returns (result, the fields it
        changed, the tuples it wrote, the records it created: (path, fields) pairs).
        Raises LimitReached at a limit (``method_steps`` at ``max_steps``),
        EvaluationError for an error of the method.

        :meth:`steps` then tells the steps it ran."""
        self._ran = None
        lua = self._lua
        for i, a in enumerate(args):
            if not (_scalar(a) or a is None):
                raise InvalidValue(
                    f"a method takes null, bool, int, float or str, not {type(a).__name__}", f"args[{i}]"
                )
        visible = {k: v for k, v in fields.items() if _scalar(v)}
        lua.set_max_memory(0)
        self_table = lua.table_from(visible)
        call_table = lua.table_from([method.source, *args])
        lua.set_max_memory(lua.get_memory_used() + limits.method_memory, total=True)
        try:
            outcome = self._run(
                call_table,
                self_table,
                len(args),
                limits.method_steps if max_steps is None else max_steps,
                limits.method_ms / 1000,
                _HOOK_EVERY,
            )
        except self._lupa.LuaMemoryError:
            outcome = ("memory",)
        finally:
            lua.set_max_memory(0)
        if type(outcome) is not tuple:  # one value returned
            outcome = (outcome,)
        status = self._ran = outcome[0]
        if status == "ok":
            return (
                outcome[1],
                _changes(visible, dict(self_table.items())),
                _spawned(outcome[2], outcome[3]),
                _made(outcome[4], outcome[5]),
            )
        lua.gccollect()
        if status == "steps":
            raise LimitReached(
                f"the method ran more than {limits.method_steps} steps and was stopped; nothing changed",
                limit="method_steps",
                maximum=limits.method_steps,
            )
        if status == "time":
            raise LimitReached(
                f"the method ran more than {limits.method_ms} ms and was stopped; nothing changed",
                limit="method_ms",
                maximum=limits.method_ms,
            )
        if status == "memory":
            raise LimitReached(
                f"the method needed more than {limits.method_memory} bytes and was stopped; nothing changed",
                limit="method_memory",
                maximum=limits.method_memory,
            )
        if status == "syntax":
            raise EvaluationError(
                f"the method's source is not a Lua function expression ({outcome[1]}): write it "
                "as function(self, ...) ... end; nothing changed"
            )
        raise EvaluationError(f"the method failed: {outcome[1]}; nothing changed")


def _from_lua(v: object, what: str) -> Value:
    if type(v) is float and not math.isfinite(v):
        raise EvaluationError(f"{what} is not finite: {v!r}")
    if v is None or _scalar(v):
        return v
    raise EvaluationError(f"{what} must be nil, a boolean, a number or a string, not {type(v).__name__}")


_UNSEEN: Final = object()


def _changes(visible: dict[str, Value], after: dict[Any, Any]) -> dict[str, Value]:
    changed: dict[str, Value] = {}
    for k, v in after.items():
        if type(k) is not str:
            raise EvaluationError(f"the method set self[{k!r}]: fields are named by strings")
        v = _from_lua(v, f"self.{k}")
        old = visible.get(k, _UNSEEN)
        if type(old) is not type(v) or old != v:
            changed[k] = v
    for k in visible:
        if k not in after:
            changed[k] = None
    return changed


def _spawned(table: Any, n: int) -> list[tuple[Value, ...]]:
    out = []
    for i in range(1, n + 1):
        packed = table[i]
        out.append(tuple(_from_lua(packed[j], f"write() argument {j}") for j in range(1, packed["n"] + 1)))
    return out


def _made(table: Any, n: int) -> list[tuple[str, dict[str, Value]]]:
    out = []
    for i in range(1, n + 1):
        path, fields = table[i][1], table[i][2]
        made: dict[str, Value] = {}
        for k, v in fields.items():
            if type(k) is not str:
                raise EvaluationError(f"create({path!r}): fields are named by strings, not {k!r}")
            made[k] = _from_lua(v, f"create({path!r}) field {k!r}")
        out.append((path, made))
    return out


def method_in(fields: Mapping[str, Value], tag: str) -> Method:
    """The method in the field ``tag`` of a record's ``fields``; InvalidValue if it
    holds none."""
    check_tag(tag)
    method = Method.of(fields.get(tag))
    if method is None:
        raise InvalidValue(f"the field {tag!r} holds no method", tag)
    return method


def method_result(
    result: object, changed: dict[str, Value], fields: Mapping[str, Value], max_fields: int
) -> Value:
    """The value a method returned, once what it ``changed`` of the record's ``fields``
    is found to fit the record (valid tags, at most ``max_fields`` of them)."""
    value = _from_lua(result, "the method's result")
    new_tags = [k for k in changed if k not in fields]
    for k in new_tags:
        check_tag(k)
    if len(fields) + len(new_tags) > max_fields:
        raise ValueTooLarge(
            f"the method would give the record more than {max_fields} tags; nothing changed",
            limit="max_fields",
            maximum=max_fields,
        )
    return value


@dataclass(slots=True)
class Call:
    """What a method call does, found before anything changes (:func:`run_call`):
    its ``value``, the fields of record ``rid`` it sets, the tuples it writes and the
    records it creates (path, fields), each checked as the space checks them."""

    rid: int
    value: Value
    fields: dict[str, Value]
    spawned: list[tuple[Value, ...]]
    created: list[tuple[str, dict[str, Value]]]

    def apply(self, engine: Engine, principal: str, written: bool = False) -> None:
        """Make the call's changes: its tuples (all of them or none: invalid, or no
        room; unless ``written``: the caller wrote them), then its records, then its
        fields.  ``principal`` pays for the records, in a space that charges."""
        if self.spawned and not written:
            engine.write_many(self.spawned)
        records = engine.records
        for path, fields in self.created:
            records.create(path, fields, principal=principal)
        for k, v in self.fields.items():
            records.set(self.rid, None, k, v)


def run_call(
    engine: Engine,
    sandbox: Sandbox,
    limits: ActiveLimits,
    rid: int,
    token: str | None,
    tag: str,
    args: tuple[Any, ...],
    principal: str,
    step_charge: Credit,
) -> Call:
    """Run the method in field ``tag`` of the record and check what it would change
    (:class:`RecordExists` for a record it creates at a path that is taken); the
    record changes only by :meth:`Call.apply`.  Call with the space's lock held.

    With a ``step_charge``, ``principal`` pays it for each step the method ran (see
    :meth:`Sandbox.steps`), whether it returned or failed, and the method may run
    only the steps the principal's balance can pay for."""
    records = engine.records
    rec = records.target(rid, token, "set")
    method = method_in(rec.fields, tag)
    if not step_charge:
        result, changed, spawned, created = sandbox.run(method, rec.fields, args, limits)
    else:
        result, changed, spawned, created = _paid_run(
            records.accounts, sandbox, method, rec.fields, args, limits, principal, step_charge
        )
    value = method_result(result, changed, rec.fields, engine.limits.max_fields)
    checked = {k: check_field(k, v, engine.limits) for k, v in changed.items()}
    return Call(rec.rid, value, checked, spawned, check_created(engine, created))


def check_created(
    engine: Engine, created: list[tuple[str, dict[str, Value]]]
) -> list[tuple[str, dict[str, Value]]]:
    """The records a firing or a method creates, (path, fields) pairs, checked as
    ``create`` checks them: :class:`RecordExists` for a path taken (or given twice),
    InvalidValue for a bad path or field."""
    out = []
    seen = set()
    for path, fields in created:
        path = check_path(path)
        if path in seen or engine.records.has(path):
            raise RecordExists(f"a record already has the path {path!r}; nothing changed")
        seen.add(path)
        out.append((path, check_fields(fields, engine.limits)))
    return out


def call_method(
    engine: Engine,
    sandbox: Sandbox,
    limits: ActiveLimits,
    rid: int,
    token: str | None,
    tag: str,
    args: tuple[Any, ...],
    principal: str,
    step_charge: Credit,
) -> Value:
    """Run the method in field ``tag`` of the record; apply what it changed, all
    together, only if it returns normally (see :func:`run_call`)."""
    call = run_call(engine, sandbox, limits, rid, token, tag, args, principal, step_charge)
    call.apply(engine, principal)
    return call.value


def _paid_run(
    accounts: Accounts,
    sandbox: Sandbox,
    method: Method,
    fields: dict[str, Value],
    args: tuple[Any, ...],
    limits: ActiveLimits,
    principal: str,
    step_charge: Credit,
) -> Any:
    """:meth:`Sandbox.run`, bounded by what ``principal`` can pay and paid by it."""
    check_principal(principal)
    balance = accounts.balance(principal)
    max_steps = step_budget(principal, balance, step_charge)
    try:
        return run_paid(sandbox, method, fields, args, limits, principal, step_charge, balance, max_steps)
    finally:
        steps = sandbox.steps()
        if steps:
            accounts.charge(principal, step_charge * steps)


def step_budget(principal: str, balance: Credit, step_charge: Credit) -> int:
    """The most steps a method call paid by ``principal``, who holds ``balance``, may
    run at ``step_charge`` a step; InsufficientCredit if it cannot pay one hundred.

    Steps are paid in hundreds; a call that ran ``n`` hundreds and more pays for
    ``n + 1``.  So the method may run at most ``(k - 1) * 100`` steps when the
    balance pays for ``k`` hundreds, and a balance that cannot pay one hundred
    refuses the call before it runs."""
    hundred = Credit(step_charge * _HOOK_EVERY)
    hundreds = times(balance, hundred)
    if hundreds < 1:
        raise InsufficientCredit(
            f"{principal!r} holds {balance} credit; a method call needs at least {hundred} "
            f"({_HOOK_EVERY} steps at {step_charge}); nothing ran",
            principal=principal,
            needed=hundred,
            available=balance,
        )
    return (hundreds - 1) * _HOOK_EVERY


def run_paid(
    sandbox: Sandbox,
    method: Method,
    fields: dict[str, Value],
    args: tuple[Any, ...],
    limits: ActiveLimits,
    principal: str,
    step_charge: Credit,
    balance: Credit,
    max_steps: int,
) -> Any:
    """:meth:`Sandbox.run` within ``max_steps`` (see :func:`step_budget`): running out
    of them raises InsufficientCredit.  However it ends, the caller then makes
    ``principal`` pay ``step_charge`` for each of ``sandbox.steps()``."""
    bounded = max_steps < limits.method_steps
    try:
        return sandbox.run(method, fields, args, limits, max_steps if bounded else None)
    except LimitReached as exc:
        if bounded and exc.limit == "method_steps":
            needed = Credit(step_charge * (limits.method_steps + _HOOK_EVERY))
            raise InsufficientCredit(
                f"the method ran out of credit: {principal!r} held {balance}, which pays for "
                f"{max_steps} steps, and was stopped; nothing changed but the payment",
                principal=principal,
                needed=needed,
                available=balance,
            ) from None
        raise
