"""Templates: patterns that select tuples field by field.

A template has as many fields as the tuples it matches.  Each field is one of:

- a value: matches an equal value, with typed equality (``1`` matches ``1``, not
  ``1.0`` or ``True``);
- :data:`ANY`: matches every value;
- a type (a *formal*): matches any value of that type, subclasses included;
  ``int`` does not match ``bool``; ``dict`` and ``list`` stand for map and tuple;
- :class:`Range`, :class:`Regex`, :class:`Prefix`, :class:`OneOf`, :class:`XPath`;
- a nested tuple of such fields: a nested template;
- a dict of such fields: matches a map that has at least those keys, each matching;
- :class:`Pred`: a Python callable (embedded only: it has no wire form).

A :class:`RecordTemplate` selects records: a mapping from some of their tags to
such fields.

>>> t = Template(("job", int, Regex("^cr")))
>>> t.matches(("job", 2, "crop")), t.matches(("job", True, "crop"))
(True, False)

Compiling raises :class:`InvalidTemplate` (also a ``ValueError``) naming the field.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from . import _xpath
from ._errors import InvalidTemplate, InvalidValue
from ._extras import require
from ._names import KNOWN_TAGS, check_tag
from ._values import DEFAULT_LIMITS, URI, Credit, Map, Value, _key_path, check_value, type_name, value_key

__all__ = [
    "ANY",
    "FORMAL_TYPES",
    "OneOf",
    "Pred",
    "Prefix",
    "Range",
    "RecordTemplate",
    "Regex",
    "Template",
    "XPath",
    "one_exact",
]

logger = logging.getLogger("tuplespace")

MAX_PATTERN = 4096
MAX_ONE_OF = 1024


class _Any:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""A template field that matches every value."""

FORMAL_TYPES: dict[str, type] = {
    "null": type(None),
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "bytes": bytes,
    "time": _dt.datetime,
    "uri": URI,
    "credit": Credit,
    "tuple": tuple,
    "map": Map,
}
"""Wire names of the formals, and the Python type each stands for."""


def _family(v: object) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        return "number"
    for kind in (str, bytes, _dt.datetime):
        if isinstance(v, kind):
            return kind.__name__
    return None


@dataclass(frozen=True, slots=True)
class Range:
    """Matches values with ``low <= value < high`` (``<= high`` with ``include_high``).

    Either bound may be ``None`` (unbounded).  Bounds are numbers (int, float and
    credit compare with each other; bool is not a number here), str, bytes or times,
    and a Range only matches values of the same kind as its bounds.

    >>> Range(20, 30).matches(21.5), Range(20, 30).matches(30)
    (True, False)
    """

    low: Value = None
    high: Value = None
    include_high: bool = False

    def __post_init__(self) -> None:
        kinds = {_family(b) for b in (self.low, self.high) if b is not None}
        if not kinds:
            raise InvalidTemplate("Range needs at least one bound")
        if None in kinds or len(kinds) > 1:
            raise InvalidTemplate(
                "Range bounds must be numbers, str, bytes or times, both of one kind; got "
                + " and ".join(type_name(b) for b in (self.low, self.high) if b is not None)
            )
        for b in (self.low, self.high):
            if isinstance(b, float) and not math.isfinite(b):
                raise InvalidTemplate("Range bounds must be finite")
            if isinstance(b, _dt.datetime) and b.utcoffset() is None:
                raise InvalidTemplate("Range time bounds must be timezone-aware")
        if not isinstance(self.include_high, bool):
            raise InvalidTemplate("Range.include_high must be a bool")

    def matches(self, value: Value) -> bool:
        if _family(value) != _family(self.low if self.low is not None else self.high):
            return False
        if self.low is not None and value < self.low:
            return False
        if self.high is not None:
            return bool(value <= self.high if self.include_high else value < self.high)
        return True


@functools.cache
def _re2() -> tuple[Any, Any]:
    """google-re2 and its options, loaded by the first Regex (the ``re2`` extra)."""
    re2 = require("re2", "re2")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    return re2, options


@dataclass(frozen=True, slots=True)
class Regex:
    """Matches str values in which the regular expression finds a match (``re.search``).

    The syntax is RE2's (that of Python's ``re`` without backreferences and
    look-around); matching takes linear time, so patterns from the network are safe.
    """

    pattern: str
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise InvalidTemplate(f"Regex pattern must be str, not {type(self.pattern).__name__}")
        if len(self.pattern) > MAX_PATTERN:
            raise InvalidTemplate(f"Regex pattern is longer than {MAX_PATTERN} characters")
        re2, options = _re2()
        try:
            compiled = re2.compile(self.pattern, options)
        except re2.error as exc:
            raise InvalidTemplate(f"invalid Regex {self.pattern!r}: {exc}") from None
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, value: Value) -> bool:
        return isinstance(value, str) and self._compiled.search(value) is not None


@dataclass(frozen=True, slots=True)
class Prefix:
    """Matches str, bytes or URI values that start with ``prefix`` (of the same type)."""

    prefix: str | bytes | URI

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, (str, bytes, URI)):
            raise InvalidTemplate(f"Prefix must be str, bytes or URI, not {type(self.prefix).__name__}")

    def matches(self, value: Value) -> bool:
        p = self.prefix
        if isinstance(p, URI):
            return isinstance(value, URI) and str(value).startswith(str(p))
        if isinstance(p, str):
            return isinstance(value, str) and value.startswith(p)
        return isinstance(value, bytes) and value.startswith(p)


class OneOf:
    """Matches a value equal (typed equality) to one of ``values``.

    >>> OneOf("crop", "blur").matches("blur")
    True

    A single set or frozenset argument is taken as the collection of values.
    """

    __slots__ = ("_keys", "values")

    def __init__(self, *values: Value) -> None:
        if len(values) == 1 and isinstance(values[0], (set, frozenset)):
            values = tuple(values[0])
        if not values:
            raise InvalidTemplate("OneOf needs at least one value")
        if len(values) > MAX_ONE_OF:
            raise InvalidTemplate(f"OneOf has {len(values)} values, more than {MAX_ONE_OF}")
        checked = []
        for i, v in enumerate(values):
            try:
                checked.append(check_value(v))
            except InvalidValue as exc:
                raise InvalidTemplate(f"OneOf value {i}: {exc}") from None
        self.values: tuple[Value, ...] = tuple(checked)
        self._keys = frozenset(map(value_key, self.values))

    def matches(self, value: Value) -> bool:
        return value_key(value) in self._keys

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OneOf) and other._keys == self._keys

    def __hash__(self) -> int:
        return hash(self._keys)

    def __repr__(self) -> str:
        return f"OneOf{self.values!r}"


@functools.cache
def _etree() -> Any:
    """lxml's etree, loaded by the first XPath (the ``xpath`` extra): lxml is large, and
    most spaces never match XML.  It only compiles expressions here, to check them; they
    are evaluated by :mod:`tuplespace._xpath`."""
    return require("xpath", "lxml.etree")


@dataclass(frozen=True, slots=True)
class XPath:
    """Matches str or bytes values holding an XML document on which ``expression``
    selects something (a non-empty node set, true, a non-zero number or a non-empty
    string).  Values that are not well-formed XML do not match.

    Evaluation is bounded (:mod:`tuplespace._xpath`): values over 1 MiB are not
    parsed, and an operation of a space evaluates XPath for at most 100 ms of CPU
    time (and waits for it at most 1 s); within a read, take or count, reaching a
    limit raises :class:`LimitReached` naming it.

    >>> XPath("/order[@state='open']").matches("<order state='open'/>")
    True
    """

    expression: str

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise InvalidTemplate(f"XPath expression must be str, not {type(self.expression).__name__}")
        if len(self.expression) > MAX_PATTERN:
            raise InvalidTemplate(f"XPath expression is longer than {MAX_PATTERN} characters")
        etree = _etree()
        try:
            etree.XPath(self.expression)
        except (etree.XPathSyntaxError, ValueError) as exc:  # ValueError: NUL or control characters
            raise InvalidTemplate(f"invalid XPath {self.expression!r}: {exc}") from None

    def matches(self, value: Value) -> bool:
        return isinstance(value, (str, bytes)) and _xpath.evaluate(self.expression, value)


@dataclass(frozen=True, slots=True)
class Pred:
    """Matches values for which ``function(value)`` is true.  Embedded use only.

    A predicate that raises does not match (the error is logged), so one faulty
    predicate never breaks another client's write.
    """

    function: Callable[[Value], object]

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise InvalidTemplate("Pred needs a callable")

    def matches(self, value: Value) -> bool:
        try:
            return bool(self.function(value))
        except Exception:
            logger.exception("template predicate %r raised; treated as no match", self.function)
            return False


_Check = Callable[[Value], bool]
_MARKERS = (Range, Regex, Prefix, OneOf, XPath, Pred)


def _formal_check(kind: type) -> _Check:
    check = _FORMAL_CHECKS.get(kind)
    if check is not None:
        return check
    if not issubclass(kind, (bool, int, float, str, bytes, _dt.datetime, URI, Credit, tuple, Map)):
        raise InvalidTemplate(f"{kind.__name__} is not a wire type, so it cannot be a formal")
    return _instance_of(kind)


class Template:
    """A compiled template.  Spaces compile the tuples given to them as templates;
    compile once with ``Template(fields)`` to reuse a template many times.

    ``exact`` lists ``(position, key)`` for the fields that are plain values: the
    engine finds candidates through its index on them.  ``plain`` is the tuple of
    those values when every field is a str or an int (a template that matches one
    tuple only), else None.  ``costly`` if it has an :class:`XPath` field: the
    engine matches it within a budget (:func:`tuplespace._xpath.budget`).
    """

    __slots__ = ("arity", "checks", "costly", "exact", "fields", "plain", "types", "wire_safe")

    def __init__(self, fields: Iterable[Any] | Template) -> None:
        if isinstance(fields, Template):
            for name in Template.__slots__:
                setattr(self, name, getattr(fields, name))
            return
        if isinstance(fields, (str, bytes, Mapping)) or not isinstance(fields, Iterable):
            raise InvalidTemplate(f"a template is a tuple or list of fields, not {type(fields).__name__}")
        self.fields: tuple[Any, ...] = tuple(fields)
        if len(self.fields) > DEFAULT_LIMITS.max_fields:
            raise InvalidTemplate(f"{len(self.fields)} fields, more than {DEFAULT_LIMITS.max_fields}")
        self.arity = len(self.fields)
        self.exact: list[tuple[int, Any]] = []
        self.checks: list[tuple[int, _Check]] = []
        self.wire_safe = True
        self.costly = False
        for pos, f in enumerate(self.fields):
            try:
                self._compile_field(pos, f, 1)
            except InvalidTemplate as exc:
                exc.path = f"[{pos}]{exc.path}"
                exc.args = (f"{exc.path}: {exc.reason}",)
                raise
        keys = tuple(key for _, key in self.exact)
        plain = len(keys) == self.arity and all(type(k) is str or type(k) is int for k in keys)
        self.plain = keys if plain else None
        self.types = _types(self.checks)

    def _compile_field(self, pos: int, f: Any, depth: int) -> None:
        check = self._field_check(f, depth)
        if isinstance(check, _Exact):
            self.exact.append((pos, check.key))
        elif check is not None:
            self.checks.append((pos, check))

    def _field_check(self, f: Any, depth: int) -> _Check | _Exact | None:
        """None for ANY, an _Exact for a plain value, else a check function."""
        if depth > DEFAULT_LIMITS.max_depth:
            raise InvalidTemplate(f"nesting is deeper than {DEFAULT_LIMITS.max_depth}")
        if f is ANY:
            return None
        if isinstance(f, type):
            if f.__module__ != "builtins" and f not in FORMAL_TYPES.values():
                self.wire_safe = False
            return _formal_check(f)
        if isinstance(f, _MARKERS):
            if isinstance(f, Pred):
                self.wire_safe = False
            elif isinstance(f, XPath):
                self.costly = True
            return f.matches
        if isinstance(f, Template):
            self.wire_safe = self.wire_safe and f.wire_safe
            self.costly = self.costly or f.costly
            nested = f.matches
            return lambda v: isinstance(v, tuple) and nested(v)
        if isinstance(f, (tuple, list)):
            subs: list[_Check | _Exact | None] = []
            for i, x in enumerate(f):
                try:
                    subs.append(self._field_check(x, depth + 1))
                except InvalidTemplate as exc:
                    exc.path = f"[{i}]{exc.path}"
                    exc.args = (f"{exc.path}: {exc.reason}",)
                    raise
            if all(isinstance(s, _Exact) for s in subs):
                return _Exact(self._value(f))
            return _nested(len(f), subs)
        if isinstance(f, Mapping):
            items = []
            for k, x in f.items():
                if not isinstance(k, str):
                    raise InvalidTemplate(f"map template keys must be str, not {type(k).__name__}")
                try:
                    items.append((k, self._field_check(x, depth + 1)))
                except InvalidTemplate as exc:
                    exc.path = _key_path(k) + exc.path
                    exc.args = (f"{exc.path}: {exc.reason}",)
                    raise
            return _submap(items)
        return _Exact(self._value(f))

    @staticmethod
    def _value(f: Any) -> Any:
        try:
            return value_key(check_value(f))
        except InvalidValue as exc:
            raise InvalidTemplate(f"not a value or template field: {exc}") from None

    def matches(self, t: tuple[Value, ...]) -> bool:
        """True if the tuple ``t`` matches this template."""
        plain = self.plain
        if plain is not None:
            # Only a tuple equal to ``plain`` can match; it does if its values are typed
            # alike (True == 1 and 1.0 == 1 in Python, not here), which the loop below
            # decides for the rare tuple that holds other types.
            if t != plain:
                return False
            for v in t:
                tv = type(v)
                if tv is not str and tv is not int:
                    break
            else:
                return True
        if len(t) != self.arity:
            return False
        for pos, key in self.exact:
            v = t[pos]
            tv = type(v)
            # A str or int is its own key; keys of other types never equal one.
            if v != key if tv is str or tv is int else value_key(v) != key:
                return False
        types = self.types
        if types is not None:  # every check a formal type: no call per field
            for pos, kind in types:
                if not isinstance(t[pos], kind):
                    return False
            return True
        for pos, check in self.checks:  # a loop, not all(): this is the hot path
            if not check(t[pos]):
                return False
        return True

    def __repr__(self) -> str:
        return f"Template({self.fields!r})"


class _Exact:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


def _as_check(c: _Check | _Exact | None) -> _Check:
    if c is None:
        return lambda v: True
    if isinstance(c, _Exact):
        key = c.key
        return lambda v: value_key(v) == key
    return c


def _nested(arity: int, subs: list[_Check | _Exact | None]) -> _Check:
    checks = [(i, _as_check(c)) for i, c in enumerate(subs) if c is not None]

    def check(v: Value) -> bool:
        return isinstance(v, tuple) and len(v) == arity and all(c(v[i]) for i, c in checks)

    return check


def _submap(items: list[tuple[str, _Check | _Exact | None]]) -> _Check:
    checks = [(k, _as_check(c)) for k, c in items]

    def check(v: Value) -> bool:
        return isinstance(v, Mapping) and all(k in v and c(v[k]) for k, c in checks)

    return check


def _is_int(v: Value) -> bool:
    return type(v) is int or (isinstance(v, int) and not isinstance(v, bool))


def _is_map(v: Value) -> bool:
    return isinstance(v, Mapping)


def _is_null(v: Value) -> bool:
    return v is None


def _instance_of(kind: type) -> _Check:
    def check(v: Value) -> bool:
        return isinstance(v, kind)

    return check


# One check function per formal type of the wire, made once.
_FORMAL_CHECKS: dict[type, _Check] = {
    int: _is_int,
    Map: _is_map,
    dict: _is_map,
    type(None): _is_null,
    **{kind: _instance_of(kind) for kind in (bool, float, str, bytes, _dt.datetime, URI, Credit, tuple)},
    list: _instance_of(tuple),
}
_INT64 = 1 << 63
# The formal checks that are an isinstance test, and its type.
_INSTANCE_TYPES: dict[_Check, type] = {
    check: tuple if kind is list else kind
    for kind, check in _FORMAL_CHECKS.items()
    if kind in (bool, float, str, bytes, _dt.datetime, URI, Credit, tuple, list)
}


def _types(checks: list[tuple[int, _Check]]) -> tuple[tuple[int, type], ...] | None:
    """``checks`` as (position, type) pairs if each one is an isinstance test, else None."""
    types = tuple((pos, _INSTANCE_TYPES.get(check)) for pos, check in checks)
    return None if any(kind is None for _, kind in types) else types  # type: ignore[return-value]


def compile_template(fields: Any) -> Template:
    """``Template(fields)``, compiled directly when every field is an ASCII str, a
    64-bit int, ANY or a formal of a wire type (the common case, about 1 µs)."""
    if type(fields) is Template:
        return fields
    if type(fields) is not tuple or len(fields) > DEFAULT_LIMITS.max_fields:
        return Template(fields)
    exact: list[tuple[int, Any]] = []
    checks: list[tuple[int, _Check]] = []
    types: tuple[tuple[int, type], ...] | None = ()  # (see _types), made in the same pass
    for pos, f in enumerate(fields):
        tf = type(f)
        if tf is str:
            if not f.isascii():
                return Template(fields)
            exact.append((pos, f))
        elif tf is int:
            if not -_INT64 < f < _INT64:
                return Template(fields)
            exact.append((pos, f))
        elif f is ANY:
            continue
        elif tf is type:
            check = _FORMAL_CHECKS.get(f)
            if check is None:
                return Template(fields)
            checks.append((pos, check))
            if types is not None:
                kind = _INSTANCE_TYPES.get(check)
                types = None if kind is None else (*types, (pos, kind))
        else:
            return Template(fields)
    template = Template.__new__(Template)
    template.fields = fields
    template.arity = len(fields)
    template.exact = exact
    template.checks = checks
    template.types = types
    template.plain = fields if len(exact) == len(fields) else None
    template.wire_safe = True
    template.costly = False
    return template


def feed_templates(template: Any) -> list[Template]:
    """What a subscription to ``template`` watches: :data:`ANY` alone, in place of a
    tuple, is every tuple whatever its arity (a template of ANY fields per arity a
    template can have, from 0 to ``max_fields``)."""
    if template is ANY:
        return list(_every_arity())
    return [compile_template(template)]


@functools.cache
def _every_arity() -> tuple[Template, ...]:
    return tuple(compile_template((ANY,) * n) for n in range(DEFAULT_LIMITS.max_fields + 1))


def one_exact(fields: object) -> tuple[str, Any] | None:
    """``(tag, key)`` if ``fields`` is a record template of one tag holding an ASCII str
    or a 64-bit int (the common lookup, answered without compiling a template)."""
    if type(fields) is dict and len(fields) == 1:
        for tag, f in fields.items():
            tf = type(f)
            if tag in KNOWN_TAGS and ((tf is str and f.isascii()) or (tf is int and -_INT64 < f < _INT64)):
                return tag, f
    return None


class RecordTemplate:
    """A template over a subset of a record's tags: a mapping from tag to template
    field.  A record matches if it has every tag of the template and each of its
    values matches the field.

    >>> RecordTemplate({"unit": "C", "temp": Range(20, 30)}).matches({"unit": "C", "temp": 21.5})
    True

    ``exact`` lists ``(tag, key)`` for the fields that are plain values: the record
    store finds candidates through its index on them.  ``costly`` as for :class:`Template`.
    """

    __slots__ = ("checks", "costly", "exact", "fields", "trivial", "wire_safe")

    def __init__(self, fields: Mapping[str, Any] | RecordTemplate) -> None:
        if type(fields) is not dict:
            if isinstance(fields, RecordTemplate):
                for name in RecordTemplate.__slots__:
                    setattr(self, name, getattr(fields, name))
                return
            if not isinstance(fields, Mapping):
                raise InvalidTemplate(
                    f"a record template is a mapping from tags to fields, not {type(fields).__name__}"
                )
        self.fields: dict[str, Any] = dict(fields)
        self.exact: list[tuple[str, Any]] = []
        self.checks: list[tuple[str, _Check]] = []
        self.wire_safe = True
        self.costly = False
        for tag, f in self.fields.items():
            if tag not in KNOWN_TAGS:
                try:
                    check_tag(tag)
                except InvalidValue as exc:
                    raise InvalidTemplate(exc.reason, _key_path(tag)) from None
            # The common fields directly (as compile_template does for tuples), the others compiled.
            tf = type(f)
            if (tf is str and f.isascii()) or (tf is int and -_INT64 < f < _INT64):
                self.exact.append((tag, f))
            elif tf is type and f in _FORMAL_CHECKS:
                self.checks.append((tag, _FORMAL_CHECKS[f]))
            elif f is not ANY:
                self._compile(tag, f)
        # Every record in the index bucket of a template's only, exact field matches it.
        self.trivial = not self.checks and len(self.exact) == len(self.fields) == 1

    def _compile(self, tag: str, f: Any) -> None:
        try:
            compiled = Template((f,))
        except InvalidTemplate as exc:  # name the tag instead of the position
            exc.path = f'["{tag}"]' + exc.path[3:]
            exc.args = (f"{exc.path}: {exc.reason}",)
            raise
        self.exact.extend((tag, key) for _, key in compiled.exact)
        self.checks.extend((tag, check) for _, check in compiled.checks)
        self.wire_safe = self.wire_safe and compiled.wire_safe
        self.costly = self.costly or compiled.costly

    def matches(self, fields: Mapping[str, Value]) -> bool:
        """True if a record with these fields matches."""
        for tag in self.fields:
            if tag not in fields:
                return False
        for tag, key in self.exact:
            v = fields[tag]
            tv = type(v)
            if v != key if tv is str or tv is int else value_key(v) != key:
                return False
        for tag, check in self.checks:
            if not check(fields[tag]):
                return False
        return True

    def __repr__(self) -> str:
        return f"RecordTemplate({self.fields!r})"
