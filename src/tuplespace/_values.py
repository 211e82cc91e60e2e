"""The values that travel: their Python types, validation, limits and typed keys.

A tuple holds values of these types, and nothing else crosses the wire:

======== ===================================== ==========================================
wire     Python                                note
======== ===================================== ==========================================
null     ``None``
bool     ``bool``
int      ``int``                               at most :data:`MAX_INT_BITS` bits
float    ``float``                             finite; ``-0.0`` is stored as ``0.0``
str      ``str``                               valid Unicode (no lone surrogates)
bytes    ``bytes`` (``bytearray`` accepted)
time     ``datetime.datetime``, tz-aware       stored in UTC, microsecond precision
uri      :class:`URI`
credit   :class:`Credit` (a ``Decimal``)       finite, not negative
tuple    ``tuple`` (``list`` accepted)         nested tuple
map      :class:`Map` (``dict`` accepted)      str keys; immutable once stored
======== ===================================== ==========================================

Equality is typed: ``1``, ``1.0`` and ``True`` are three different values, and so
are ``"x"`` and ``URI("x")``.  :func:`value_key` gives each value a hashable key
with exactly that equality; the engine indexes tuples by it.

Embedded spaces also accept instances of subclasses of these types (an ``IntEnum``
member is an int); they match formals of their own class and of the base type.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import orjson

from ._errors import InvalidValue, UnsupportedType, ValueTooLarge

__all__ = [
    "Credit",
    "Limits",
    "Map",
    "Tuple",
    "URI",
    "Value",
    "check_tuple",
    "check_value",
    "footprint",
    "type_name",
    "value_key",
]

Value: TypeAlias = Any
"""Any of the wire types (see the module docstring)."""

Tuple: TypeAlias = tuple[Value, ...]
"""A tuple of values, as a space stores it."""

MAX_INT_BITS = 1024
UTC = _dt.UTC


class URI:
    """The address of a named tuple or record, local or on another node.

    A URI is a value of its own type: ``URI("a/b") != "a/b"``.

    >>> URI("tuplespace://node-1/spaces/jobs/sensors/kitchen")
    URI('tuplespace://node-1/spaces/jobs/sensors/kitchen')
    """

    __slots__ = ("_text",)
    _text: str

    def __init__(self, text: str | URI) -> None:
        if isinstance(text, URI):
            text = text._text  # noqa: SLF001 (same class: another URI's text)
        if not isinstance(text, str):
            raise UnsupportedType(f"URI text must be str, not {type(text).__name__}")
        if not text:
            raise InvalidValue("URI must not be empty")
        if len(text) > 8192:
            raise ValueTooLarge("URI is longer than 8192 characters", limit="uri_length", maximum=8192)
        if any(c <= " " or c == "\x7f" for c in text):
            raise InvalidValue("URI must not contain spaces or control characters")
        _check_unicode(text)
        object.__setattr__(self, "_text", text)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("URI is immutable")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"URI({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URI) and other._text == self._text

    def __hash__(self) -> int:
        return hash((URI, self._text))


class Credit(Decimal):
    """A non-negative, finite decimal amount of credit.

    Built from a ``str``, ``int`` or ``Decimal`` (not from a ``float``, whose binary
    value is rarely the amount meant).

    >>> Credit("12.50")
    Credit('12.50')
    """

    def __new__(cls, value: str | int | Decimal = "0") -> Credit:
        if cls is Credit and type(value) in _TEXTS:  # amounts repeat (options, charges): parsed once
            return _parsed(value)
        return _checked_credit(cls, value)

    def __repr__(self) -> str:
        return f"Credit('{self}')"


_TEXTS = (str, int)


@functools.lru_cache(maxsize=256, typed=True)
def _parsed(value: str | int) -> Credit:
    """The Credit of ``value`` (a Credit is immutable: one serves every caller)."""
    return _checked_credit(Credit, value)


def _checked_credit(cls: type[Credit], value: str | int | Decimal) -> Credit:
    """A new ``cls`` of ``value``, checked: finite, not negative, not too long."""
    if isinstance(value, (float, bool)):
        raise UnsupportedType(f"Credit is built from str, int or Decimal, not {type(value).__name__}")
    try:
        self = Decimal.__new__(cls, value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidValue(f"not a decimal amount: {value!r}") from exc
    if not self.is_finite() or (self.is_signed() and self != 0):
        raise InvalidValue(f"credit must be finite and not negative, got {value!r}")
    if len(self.as_tuple().digits) > 40:
        raise ValueTooLarge("credit has more than 40 digits", limit="credit_digits", maximum=40)
    if _written_length(self) > 100:
        raise ValueTooLarge(
            "credit written out (without exponent) is longer than 100 characters",
            limit="credit_length",
            maximum=100,
        )
    return self


def _written_length(d: Decimal) -> int:
    """The length of ``d``'s canonical text (normalized, no exponent), without writing it."""
    sign, digits, exponent = d.as_tuple()  # normalize() would overflow the context on huge exponents
    e = int(exponent)
    n = len(digits)
    while n > 1 and digits[n - 1] == 0:  # strip trailing zeros, as normalizing does
        n -= 1
        e += 1
    if n == 1 and digits[0] == 0:
        return 1
    if e >= 0:
        length = n + e
    elif -e >= n:
        length = 2 - e  # "0." then zeros then the digits
    else:
        length = n + 1
    return length + sign


class Map(Mapping[str, Value]):
    """An immutable map from str keys to values; ``dict`` is accepted wherever a map is.

    >>> Map({"temp": 21.5, "unit": "C"})["unit"]
    'C'
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Value] | None = None, /, **items: Value) -> None:
        self._data: dict[str, Value] = dict(data or {}, **items)

    def __getitem__(self, key: str) -> Value:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"Map({self._data!r})"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on what one tuple may hold; a space checks every write against them.

    ``max_bytes`` bounds the canonical wire encoding of the tuple.
    """

    max_fields: int = 256
    max_depth: int = 32
    max_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_fields", "max_depth", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = Limits()

_TYPE_NAMES: dict[type, str] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
    _dt.datetime: "time",
    URI: "uri",
    Credit: "credit",
    tuple: "tuple",
    Map: "map",
}
_BASES = (bool, int, float, str, bytes, _dt.datetime, URI, Credit, tuple, Map)


def footprint(t: tuple[Value, ...]) -> int:
    """Roughly the bytes the values of ``t`` hold: the length of each str and bytes,
    nested ones included, and 8 for every value.  Cheap enough to measure every event
    a space logs (its ``event_retention_bytes``)."""
    n = 8 * len(t)
    for v in t:
        tv = type(v)
        if tv is str or tv is bytes:
            n += len(v)
        elif tv is not int and v is not None:
            n += _nested_footprint(v)
    return n


def _nested_footprint(v: Value) -> int:
    if isinstance(v, (str, bytes)):
        return len(v)
    if isinstance(v, tuple):
        return footprint(v)
    if isinstance(v, Mapping):
        return footprint(tuple(v)) + footprint(tuple(v.values()))
    return 0


def type_name(value: object) -> str:
    """The wire type name of ``value`` ("int", "map", ...), or its Python type name."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for base in _BASES:
        if isinstance(value, base):
            return _TYPE_NAMES[base]
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _index_path(i: int) -> str:
    return f"[{i}]"


def _key_path(k: str) -> str:
    return "[" + orjson.dumps(k).decode() + "]"


def _prefix(exc: InvalidValue, part: str) -> InvalidValue:
    exc.path = part + exc.path
    exc.args = (f"{exc.path}: {exc.reason}",)
    return exc


# An upper bound of the encoded size of each scalar, checked cheaply; only when the
# bound passes the limit is the exact canonical encoding computed.
def _check(v: object, depth: int, limits: Limits, size: list[int]) -> Value:
    t = type(v)
    if t is str:
        if not v.isascii():  # type: ignore[attr-defined]
            _check_unicode(v)  # type: ignore[arg-type]
        size[0] += 6 * len(v) + 3  # type: ignore[arg-type]
        return v
    if t is int:
        if v.bit_length() > MAX_INT_BITS:  # type: ignore[attr-defined]
            raise ValueTooLarge(
                f"int has more than {MAX_INT_BITS} bits", limit="int_bits", maximum=MAX_INT_BITS
            )
        size[0] += 24 if -(1 << 63) < v < 1 << 63 else v.bit_length() // 3 + 20  # type: ignore[operator,attr-defined]
        return v
    if v is None or t is bool:
        size[0] += 6
        return v
    if t is float:
        if not math.isfinite(v):  # type: ignore[arg-type]
            raise InvalidValue(f"float must be finite, got {v!r}")
        size[0] += 40
        return 0.0 if v == 0 else v  # -0.0 becomes 0.0; other floats are kept as they are
    if t is tuple or t is list:
        return _check_seq(v, depth + 1, limits, size)  # type: ignore[arg-type]
    if t is bytes:
        size[0] += 4 * (len(v) // 3 + 1) + 16  # type: ignore[arg-type]
        return v
    if t is Map or isinstance(v, Mapping):
        return _check_map(v, depth + 1, limits, size)  # type: ignore[arg-type]
    if t is URI:
        size[0] += 6 * len(str(v)) + 16
        return v
    if t is Credit:
        size[0] += 120  # its canonical text is at most 100 characters
        return v
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            raise InvalidValue("time must be timezone-aware (naive datetime given)")
        size[0] += 48
        try:
            return v if v.tzinfo is UTC else v.astimezone(UTC)
        except OverflowError:
            raise InvalidValue(f"time {v.isoformat()} is outside years 1 to 9999 in UTC") from None
    if t is bytearray or t is memoryview:
        return _check(bytes(v), depth, limits, size)  # type: ignore[call-overload]
    if isinstance(v, Decimal):
        raise UnsupportedType("Decimal is not a wire type; use tuplespace.Credit for amounts")
    for base in (bool, int, float, str, bytes):  # subclasses: IntEnum members, str enums, ...
        if isinstance(v, base):
            _check(base(v), depth, limits, size)  # type: ignore[arg-type]
            return v
    if isinstance(v, (tuple, list)):
        return _check_seq(v, depth + 1, limits, size)
    address = handle_address(v)
    if address is not None:
        return _check(address, depth, limits, size)
    raise UnsupportedType(f"{type(v).__name__} is not a wire type")


def handle_address(v: object) -> URI | None:
    """The address a record handle stands for where a value goes (None for what is not
    a handle): a handle has a ``__tuplespace_uri__()`` method, as a path has
    ``__fspath__``."""
    method = getattr(type(v), "__tuplespace_uri__", None)
    if method is None:
        return None
    address = method(v)
    if type(address) is not URI:
        raise UnsupportedType(f"{type(v).__name__}.__tuplespace_uri__() must return a URI")
    return address


def _check_unicode(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(f"str holds a lone surrogate at index {exc.start}") from None


def _check_seq(
    v: tuple[Value, ...] | list[Value], depth: int, limits: Limits, size: list[int]
) -> tuple[Value, ...]:
    if depth > limits.max_depth:
        raise ValueTooLarge(
            f"nesting is deeper than {limits.max_depth}", limit="max_depth", maximum=limits.max_depth
        )
    if len(v) > limits.max_fields:
        raise ValueTooLarge(
            f"{len(v)} fields, more than {limits.max_fields}", limit="max_fields", maximum=limits.max_fields
        )
    size[0] += len(v) + 2
    out = []
    changed = type(v) is not tuple
    for i, x in enumerate(v):
        try:
            y = _check(x, depth, limits, size)
        except InvalidValue as exc:
            raise _prefix(exc, _index_path(i)) from None
        changed = changed or y is not x
        out.append(y)
    return tuple(out) if changed else v  # type: ignore[return-value]


def _check_map(v: Mapping[Any, Value], depth: int, limits: Limits, size: list[int]) -> Map:
    if depth > limits.max_depth:
        raise ValueTooLarge(
            f"nesting is deeper than {limits.max_depth}", limit="max_depth", maximum=limits.max_depth
        )
    if len(v) > limits.max_fields:
        raise ValueTooLarge(
            f"map has {len(v)} keys, more than {limits.max_fields}",
            limit="max_fields",
            maximum=limits.max_fields,
        )
    size[0] += 12
    out: dict[str, Value] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise UnsupportedType(f"map keys must be str, not {type(k).__name__}")
        _check_unicode(k)
        size[0] += 6 * len(k) + 4
        try:
            out[k] = _check(x, depth, limits, size)
        except InvalidValue as exc:
            raise _prefix(exc, _key_path(k)) from None
    m = Map.__new__(Map)
    m._data = out  # noqa: SLF001 (a Map over items just checked, not copied again)
    return m


def check_tuple(t: object, limits: Limits = DEFAULT_LIMITS) -> tuple[Value, ...]:
    """Validate ``t`` as a tuple to store and return its normalized form.

    Lists become tuples, dicts become :class:`Map`, times move to UTC and ``-0.0``
    becomes ``0.0``; an already normal tuple is returned as it is.

    Raises :class:`UnsupportedType` for a value of another type, :class:`ValueTooLarge`
    past a limit and :class:`InvalidValue` otherwise, each naming the field.
    """
    if type(t) is tuple and len(t) <= limits.max_fields:
        # Fast path: a flat tuple of ASCII str, 64-bit int, None and finite non-zero
        # floats is already normal (a zero may be -0.0, made 0.0 by the slow path).
        estimate = 2 + len(t)
        for x in t:
            tx = type(x)
            if tx is str:
                if not x.isascii():
                    break
                estimate += 6 * len(x) + 3
            elif tx is int:
                if not -(1 << 63) < x < 1 << 63:
                    break
                estimate += 24
            elif tx is float:
                if x == 0 or x - x != 0:  # zero, or not finite (inf - inf and nan - nan are nan)
                    break
                estimate += 40
            elif x is not None:
                break
        else:
            if estimate <= limits.max_bytes:
                return t
    elif not isinstance(t, (tuple, list)):
        raise UnsupportedType(f"a tuple is a tuple or list, not {type(t).__name__}")
    size = [0]
    out = _check_seq(t, 1, limits, size)
    if size[0] > limits.max_bytes:
        from ._codec import encode

        actual = len(encode(out))
        if actual > limits.max_bytes:
            raise ValueTooLarge(
                f"encoded tuple is {actual} bytes, more than {limits.max_bytes}",
                limit="max_bytes",
                maximum=limits.max_bytes,
            )
    return out


def check_value(v: object, limits: Limits = DEFAULT_LIMITS) -> Value:
    """Validate and normalize one value (see :func:`check_tuple`)."""
    return _check(v, 0, limits, [0])


# Typed index keys.  str, int, bytes, None and datetime never compare equal to a
# value of another of these types, so they are their own key; the others are
# wrapped with a marker so that 1, 1.0, True and Credit(1) get different keys.
class _Tag:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_FLOAT, _TUPLE, _MAP, _CREDIT = _Tag("float"), _Tag("tuple"), _Tag("map"), _Tag("credit")
_TRUE, _FALSE = _Tag("true"), _Tag("false")


def value_key(v: Value) -> Any:
    """A hashable key with typed equality: ``value_key(a) == value_key(b)`` iff a equals b."""
    t = type(v)
    if t is str or t is int or t is bytes or v is None:
        return v
    if t is float:
        return (_FLOAT, v)
    if t is bool:
        return _TRUE if v else _FALSE
    if t is tuple:
        return (_TUPLE, *map(value_key, v))
    if t is Map:
        return (_MAP, frozenset((k, value_key(x)) for k, x in v.items()))
    if t is URI or t is _dt.datetime:
        return v
    if t is Credit:
        return (_CREDIT, v)
    # subclasses of the wire types, in embedded use
    if isinstance(v, bool):
        return _TRUE if v else _FALSE
    if isinstance(v, (int, str, bytes, _dt.datetime)):
        return v
    if isinstance(v, float):
        return (_FLOAT, float(v))
    if isinstance(v, Credit):
        return (_CREDIT, v)
    if isinstance(v, tuple):
        return (_TUPLE, *map(value_key, v))
    if isinstance(v, Mapping):
        return (_MAP, frozenset((k, value_key(x)) for k, x in v.items()))
    raise UnsupportedType(f"{type(v).__name__} is not a wire type")
