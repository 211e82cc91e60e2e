"""Rules in JSON: the form the HTTP API and its bindings give a rule (docs/http-api.md, Rules).

A rule's definition is the data :meth:`Rules.add <tuplespace.Rules.add>` takes, as a
JSON object: ``name``, then ``template`` (a wire template), ``on``, ``when``,
``write`` (tuples in the wire format), ``take`` (wire templates), ``set``, ``path``,
``tag``, ``to``, ``using``, ``principal``, ``refresh`` (path -> lease), ``create``
(path, or an expression giving one, -> fields) and ``call`` (arrays of a path, a
tag and the arguments).  A JSON string in a tuple of ``write`` or
a template of ``take`` is what a str is there: an expression, or a bare word; a
constant string that is not a bare word travels as a CEL string literal
(``"'t[1]'"``), which is what ``Lit("t[1]")`` means.  What a space tells of a rule
(:class:`RuleInfo`) is its definition with ``kind``, ``level``, ``fired`` and
``failed`` (``last_error`` is the server's to write, as an error body).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._codec import from_wire, template_from_wire, template_to_wire, to_wire
from ._errors import InvalidTemplate, InvalidValue, TupleSpaceError, WireError
from ._rules import _RECORD_KINDS, Lit, RuleInfo
from ._values import Limits

__all__ = ["RULE_KEYS", "definition_from_wire", "definition_to_wire", "info_from_wire", "info_to_wire"]

_ESCAPES: Final = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
#: The fields of a rule's definition.
RULE_KEYS: Final = frozenset(
    {
        "name",
        "on",
        "template",
        "path",
        "tag",
        "when",
        "write",
        "take",
        "set",
        "to",
        "using",
        "principal",
        "refresh",
        "create",
        "call",
    }
)


def _cel_text(s: str) -> str:
    """``s`` as a CEL string literal."""
    return "'" + s.translate(_ESCAPES) + "'"


def _field_out(f: Any, take: bool) -> Any:
    if type(f) is str:
        return f
    if isinstance(f, Lit):
        if type(f.value) is str:
            return _cel_text(f.value)
        f = f.value
    return template_to_wire((f,))[0] if take else to_wire(f)


def _operations_out(items: Iterable[Iterable[Any]], take: bool) -> list[list[Any]]:
    return [[_field_out(f, take) for f in item] for item in items]


def _records_out(
    refresh: Mapping[str, Any] | None,
    create: Mapping[Any, Mapping[str, Any]] | None,
    call: Iterable[Iterable[Any]],
) -> dict[str, Any]:
    """The operations of a reaction on records, as JSON (those it has)."""
    out: dict[str, Any] = {}
    if refresh:
        out["refresh"] = {path: _field_out(lease, False) for path, lease in refresh.items()}
    if create:
        out["create"] = {
            (path.value if isinstance(path, Lit) else path): {
                t: _field_out(f, False) for t, f in fields.items()
            }
            for path, fields in create.items()
        }
    calls = [[_field_out(f, False) if i > 1 else f for i, f in enumerate(item)] for item in call]
    if calls:
        out["call"] = calls
    return out


def definition_to_wire(
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
) -> dict[str, Any]:
    """The JSON definition of the rule that ``Rules.add(name, ...)`` with these
    arguments adds (the arguments given, and those not at their defaults)."""
    out: dict[str, Any] = {"name": name}
    if on is not None:
        out["on"] = on if isinstance(on, str) else sorted(on)
    if template is not None:
        out["template"] = template_to_wire(tuple(template))
    for key, value in (("path", path), ("tag", tag), ("when", when), ("to", to), ("principal", principal)):
        if value is not None:
            out[key] = value
    writes, takes = _operations_out(write, False), _operations_out(take, True)
    if writes:
        out["write"] = writes
    if takes:
        out["take"] = takes
    if set is not None:
        out["set"] = set if isinstance(set, str) else dict(set)
    if using:
        out["using"] = dict(using)
    out.update(_records_out(refresh, create, call))
    return out


def info_to_wire(info: RuleInfo) -> dict[str, Any]:
    """What a space tells of a rule, as JSON (without ``last_error``)."""
    out: dict[str, Any] = {"name": info.name, "kind": info.kind}
    if info.kind == "push":
        ((target, expr),) = info.set.items()
        out.update(set=target, to=expr, using=dict(info.using))
    else:
        out.update(
            on=sorted(info.on),
            template=None if info.template is None else template_to_wire(info.template),
            path=info.path,
            tag=info.tag,
            when=info.when,
            write=_operations_out(info.write, False),
            take=_operations_out(info.take, True),
            set=dict(info.set),
        )
        if info.using:
            out["using"] = dict(info.using)
        out.update(_records_out(info.refresh, info.create, info.call))
    out.update(
        principal=info.principal, level=info.level, fired=info.fired, failed=info.failed, state=info.state
    )
    return out


def info_from_wire(obj: dict[str, Any], last_error: TupleSpaceError | None, limits: Limits) -> RuleInfo:
    """The :class:`RuleInfo` of what :func:`info_to_wire` wrote (and the server's
    ``last_error``, decoded by the caller), its values read within ``limits``."""
    push = obj["kind"] == "push"
    template = obj.get("template")
    return RuleInfo(
        name=obj["name"],
        kind=obj["kind"],
        on=_RECORD_KINDS if push else frozenset(obj["on"]),
        template=None if template is None else template_from_wire(template, limits).fields,
        path=obj.get("path"),
        tag=obj.get("tag"),
        when=obj.get("when"),
        write=tuple(_tuple(w, limits) for w in obj.get("write", ())),
        take=tuple(template_from_wire(t, limits).fields for t in obj.get("take", ())),
        set={obj["set"]: obj["to"]} if push else dict(obj["set"]),
        refresh={p: from_wire(f, limits) for p, f in obj.get("refresh", {}).items()},
        create={
            p: {t: from_wire(f, limits) for t, f in fields.items()}
            for p, fields in obj.get("create", {}).items()
        },
        call=tuple((c[0], c[1], *(from_wire(f, limits) for f in c[2:])) for c in obj.get("call", ())),
        level=obj["level"],
        fired=obj["fired"],
        failed=obj["failed"],
        last_error=last_error,
        principal=obj["principal"],
        using=dict(obj.get("using", {})),
        state=obj["state"],
    )


def _tuple(item: list[Any], limits: Limits) -> tuple[Any, ...]:
    value = from_wire(item, limits)
    assert isinstance(value, tuple)
    return value


# -- reading a definition sent to a server ----------------------------------------------------------


def _bad(message: str, field: str) -> InvalidValue:
    return InvalidValue(message, field)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and type(value) is not str:
        raise _bad(f"{key} is a string or null", key)
    return value


def _strings(value: Any, key: str) -> dict[str, str]:
    if type(value) is not dict or not all(type(v) is str for v in value.values()):
        raise _bad(f"{key} is a JSON object of strings", key)
    return value


def _operations_in(body: dict[str, Any], key: str, limits: Limits) -> list[tuple[Any, ...]]:
    items = body.get(key, [])
    if type(items) is not list:
        raise _bad(f"{key} is a JSON array of {'templates' if key == 'take' else 'tuples'}", key)
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if type(item) is not list:
            raise WireError(
                "a tuple is a JSON array" if key == "write" else "a template is a JSON array", where
            )
        try:
            out.append(template_from_wire(item, limits).fields if key == "take" else _tuple(item, limits))
        except (WireError, InvalidValue, InvalidTemplate) as exc:
            exc.path = where + exc.path
            raise
    return out


def definition_from_wire(body: dict[str, Any], limits: Limits) -> tuple[str, dict[str, Any]]:
    """The name and the keyword arguments of :meth:`Rules.add` of a JSON definition
    (without ``principal``, which the server decides; other fields than
    :data:`RULE_KEYS` are the caller's to refuse).  Raises InvalidValue, WireError or
    InvalidTemplate naming the field at fault (``write[0][2]``)."""
    name = body.get("name")
    if type(name) is not str:
        raise _bad("name is a string", "name")
    args: dict[str, Any] = {}
    on = body.get("on")
    if on is not None:
        if type(on) is list and all(type(k) is str for k in on):
            on = frozenset(on)
        elif type(on) is not str:
            raise _bad("on is an event kind or a JSON array of them", "on")
        args["on"] = on
    if body.get("template") is not None:
        try:
            args["template"] = template_from_wire(body["template"], limits).fields
        except (WireError, InvalidValue, InvalidTemplate) as exc:
            exc.path = "template" + exc.path
            raise
    for key in ("path", "tag", "when", "to"):
        value = _optional_str(body, key)
        if value is not None:
            args[key] = value
    args["write"] = _operations_in(body, "write", limits)
    args["take"] = _operations_in(body, "take", limits)
    target = body.get("set")
    if target is not None:
        args["set"] = target if type(target) is str else _strings(target, "set")
    if body.get("using") is not None:
        args["using"] = _strings(body["using"], "using")
    _records_in(body, args, limits)
    return name, args


def _value_in(value: Any, where: str, limits: Limits) -> Any:
    try:
        return from_wire(value, limits)
    except (WireError, InvalidValue) as exc:
        exc.path = where + exc.path
        raise


def _records_in(body: dict[str, Any], args: dict[str, Any], limits: Limits) -> None:
    """The operations on records of a JSON definition (refresh, create, call) into ``args``."""
    refresh = body.get("refresh")
    if refresh is not None:
        if type(refresh) is not dict:
            raise _bad("refresh is a JSON object from a record's path to a lease", "refresh")
        args["refresh"] = {p: _value_in(v, f"refresh.{p}", limits) for p, v in refresh.items()}
    create = body.get("create")
    if create is not None:
        if type(create) is not dict or not all(type(f) is dict for f in create.values()):
            raise _bad(
                "create is a JSON object from a record's path to a JSON object of its fields", "create"
            )
        args["create"] = {
            p: {t: _value_in(v, f"create.{p}.{t}", limits) for t, v in fields.items()}
            for p, fields in create.items()
        }
    calls = body.get("call")
    if calls is not None:
        if type(calls) is not list:
            raise _bad("call is a JSON array of calls: [path, tag, arguments...]", "call")
        args["call"] = []
        for i, item in enumerate(calls):
            where = f"call[{i}]"
            if (
                type(item) is not list
                or len(item) < 2
                or type(item[0]) is not str
                or type(item[1]) is not str
            ):
                raise _bad("a call is a JSON array: a record's path, its method's tag, the arguments", where)
            args["call"].append(
                (
                    item[0],
                    item[1],
                    *(_value_in(v, f"{where}[{j + 2}]", limits) for j, v in enumerate(item[2:])),
                )
            )
