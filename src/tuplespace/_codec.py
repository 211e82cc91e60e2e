"""The canonical JSON wire codec for values and templates.

Every value has exactly one encoding, so equal tuples written from any language
encode to the same bytes.  JSON types carry themselves; the types JSON lacks are
tagged objects with one ``"$"`` key::

    ("job", 7, 1.5, b"\\x00", URI("a/b"))
    ["job",7,{"$float":"1.5"},{"$bytes":"AA=="},{"$uri":"a/b"}]

>>> import tuplespace as ts
>>> ts.encode(("job", 2**60, ts.Credit("12.50")))
b'["job",{"$int":"1152921504606846976"},{"$credit":"12.5"}]'
>>> ts.decode(b'["job",{"$float":"1e+21"}]')
('job', 1e+21)

The format, with its rules for floats, times and credit, the template forms, the
limits and the errors, is specified in ``docs/wire-format.md``; the test vectors
in ``docs/wire-vectors.json`` pin it down for every implementation.

Decoding raises :class:`WireError` for input that is not in the wire format,
:class:`ValueTooLarge` past a limit, and :class:`InvalidValue` or
:class:`InvalidTemplate` for well-formed content that is not a valid value or
template field; each error's ``path`` says where, like ``[1]["temp"]``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import orjson

from ._errors import InvalidTemplate, InvalidValue, UnsupportedType, ValueTooLarge, WireError, _PathError
from ._templates import (
    ANY,
    FORMAL_TYPES,
    MAX_ONE_OF,
    OneOf,
    Pred,
    Prefix,
    Range,
    Regex,
    Template,
    XPath,
    compile_template,
)
from ._values import DEFAULT_LIMITS, MAX_INT_BITS, URI, Credit, Limits, Map, Value, _key_path, handle_address

__all__ = [
    "decode",
    "decode_template",
    "encode",
    "encode_template",
    "format_float",
    "from_wire",
    "template_from_wire",
    "template_to_wire",
    "to_wire",
]

Wire: TypeAlias = Any
"""A JSON-compatible object: dict, list, str, int, bool or None."""

MAX_SAFE_INT = 2**53 - 1
"""Ints in ``[-MAX_SAFE_INT, MAX_SAFE_INT]`` are bare JSON numbers, larger ones ``{"$int": ...}``."""

MAX_CREDIT_TEXT = 100
"""The longest canonical credit text, in characters."""

MAX_NESTING = 100
"""The deepest nesting the codec handles whatever the limits: it keeps the JSON
(at most two levels per value level) within what the JSON library reads and writes."""

UTC = _dt.UTC
_OPTIONS = orjson.OPT_SORT_KEYS
_FLOAT_HINT = 'floats are written {"$float": "1.5"} and ints past 2**53-1 as {"$int": "..."}'

_E = TypeVar("_E", bound=_PathError)


def _at(exc: _E, part: str) -> _E:
    """Prefix ``part`` to the path of ``exc`` (errors are raised innermost first)."""
    exc.path = part + exc.path
    exc.args = (f"{exc.path}: {exc.reason}",)
    return exc


# ---------------------------------------------------------------------------
# Floats: ECMAScript's Number.prototype.toString


def format_float(x: float) -> str:
    """The text of a finite float as ECMAScript's ``Number.prototype.toString`` writes it.

    >>> format_float(1e21), format_float(5e-7), format_float(1.0), format_float(-0.0)
    ('1e+21', '5e-7', '1', '0')

    Raises :class:`InvalidValue` for NaN and infinities.
    """
    if not math.isfinite(x):
        raise InvalidValue(f"float must be finite, got {x!r}")
    if x == 0:
        return "0"
    text = repr(float(x))  # the shortest digits that round-trip, as ECMAScript requires
    if 1e-4 <= abs(x) < 1e16:
        # Here repr() writes the digits without an exponent, as ECMAScript does, and
        # ends integers with ".0".
        return text[:-2] if text.endswith(".0") else text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    exp = (int(exp_text) if exp_text else 0) - len(fraction)  # x = int(digits) * 10**exp
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    s = stripped.lstrip("0")
    k = len(s)
    n = exp + k  # x = 0.s * 10**n
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + s
    else:
        e = n - 1
        out = (s if k == 1 else s[0] + "." + s[1:]) + ("e+" if e >= 0 else "e-") + str(abs(e))
    return sign + out


# ---------------------------------------------------------------------------
# Credit: decimal text without exponent or trailing fractional zeros


def _significant(digits: str, exp: int) -> tuple[str, int]:
    """``int(digits) * 10**exp`` as ``(s, e)`` with no leading or trailing zeros in ``s``."""
    digits = digits.lstrip("0")
    stripped = digits.rstrip("0")
    return stripped, exp + len(digits) - len(stripped)


def _canonical_decimal(digits: str, exp: int) -> str:
    """The canonical text of ``int(digits) * 10**exp`` (digits ASCII, not empty)."""
    s, exp = _significant(digits, exp)
    if not s:
        return "0"
    k = len(s)
    # Measured before it is built: a short exponent can make a very long text.
    length = k + exp if exp >= 0 else (k + 1 if k + exp > 0 else 2 - exp)
    if length > MAX_CREDIT_TEXT:
        raise ValueTooLarge(
            f"credit text would be {length} characters, more than {MAX_CREDIT_TEXT}",
            limit="credit_length",
            maximum=MAX_CREDIT_TEXT,
        )
    if exp >= 0:
        return s + "0" * exp
    point = k + exp
    if point > 0:
        return s[:point] + "." + s[point:]
    return "0." + "0" * -point + s


def _credit_text(c: Decimal) -> str:
    t = c.as_tuple()
    if not isinstance(t.exponent, int):  # Credit is always finite
        raise InvalidValue(f"credit must be finite, got {c!r}")
    return _canonical_decimal("".join(map(str, t.digits)), t.exponent)


# ---------------------------------------------------------------------------
# Encoding


def _time_text(v: _dt.datetime) -> str:
    if v.tzinfo is not UTC:
        if v.utcoffset() is None:
            raise InvalidValue("time must be timezone-aware (naive datetime given)")
        try:
            v = v.astimezone(UTC)
        except OverflowError:
            raise InvalidValue(f"time {v.isoformat()} is out of range in UTC") from None
    text = v.isoformat()[:-6]  # YYYY-MM-DDTHH:MM:SS[.ffffff] without "+00:00"
    return (text.rstrip("0") if v.microsecond else text) + "Z"


def _str(v: str) -> str:
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidValue(f"str holds a lone surrogate at index {exc.start}") from None
    return v


def to_wire(value: Value) -> Wire:
    """The JSON-compatible object (dict, list, str, int, bool, None) that encodes ``value``.

    ``orjson.dumps(to_wire(v), option=orjson.OPT_SORT_KEYS) == encode(v)``.

    Raises :class:`UnsupportedType` for a value of another type and
    :class:`InvalidValue` for an invalid one (a NaN, a naive datetime, ...),
    naming the field.
    """
    return _to_wire(value, 0)


def _to_wire(v: Value, depth: int) -> Wire:
    t = type(v)
    if t is str:
        return _str(v)
    if t is int:
        if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
            return v
        return _big_int(v)
    if v is None or t is bool:
        return v
    if t is tuple or t is list:
        return _seq_to_wire(v, depth + 1)
    if t is float:
        return {"$float": format_float(v)}
    if t is Map or t is dict:
        return _map_to_wire(v, depth + 1)
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if t is _dt.datetime:
        return {"$time": _time_text(v)}
    if t is URI:
        return {"$uri": _str(str(v))}
    if t is Credit:
        return {"$credit": _credit_text(v)}
    return _other_to_wire(v, depth)


def _other_to_wire(v: Value, depth: int) -> Wire:
    """Subclasses of the wire types (embedded use: enums, named tuples, ...) and friends."""
    if isinstance(v, int):
        return _to_wire(int(v), depth)
    if isinstance(v, float):
        return _to_wire(float(v), depth)
    if isinstance(v, str):
        return _str(str.__str__(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if isinstance(v, _dt.datetime):
        return {"$time": _time_text(v)}
    if isinstance(v, Credit):
        return {"$credit": _credit_text(v)}
    if isinstance(v, Decimal):
        raise UnsupportedType("Decimal is not a wire type; use tuplespace.Credit for amounts")
    if isinstance(v, (tuple, list)):
        return _seq_to_wire(v, depth + 1)
    if isinstance(v, Mapping):
        return _map_to_wire(v, depth + 1)
    address = handle_address(v)
    if address is not None:
        return {"$uri": str(address)}
    raise UnsupportedType(f"{type(v).__name__} is not a wire type")


def _big_int(v: int) -> Wire:
    if v.bit_length() > MAX_INT_BITS:
        raise ValueTooLarge(f"int has more than {MAX_INT_BITS} bits", limit="int_bits", maximum=MAX_INT_BITS)
    return {"$int": str(v)}


def _too_deep(maximum: int) -> ValueTooLarge:
    return ValueTooLarge(f"nesting is deeper than {maximum}", limit="max_depth", maximum=maximum)


def _seq_to_wire(v: tuple[Value, ...] | list[Value], depth: int) -> list[Wire]:
    if depth > MAX_NESTING:
        raise _too_deep(MAX_NESTING)
    out = []
    for i, x in enumerate(v):
        try:
            out.append(_to_wire(x, depth))
        except InvalidValue as exc:
            raise _at(exc, f"[{i}]") from None
    return out


def _map_to_wire(v: Mapping[Any, Value], depth: int) -> dict[str, Wire]:
    if depth > MAX_NESTING:
        raise _too_deep(MAX_NESTING)
    out: dict[str, Wire] = {}
    tagged = False
    for k, x in v.items():
        if type(k) is not str:
            raise UnsupportedType(f"map keys must be str, not {type(k).__name__}")
        _str(k)
        tagged = tagged or k[:1] == "$"
        try:
            out[k] = _to_wire(x, depth)
        except InvalidValue as exc:
            raise _at(exc, _key_path(k)) from None
    return {"$map": out} if tagged else out


def encode(value: Value) -> bytes:
    """The canonical wire bytes of a tuple, or of any value.

    >>> encode(("job", 1, None, True))
    b'["job",1,null,true]'

    Raises :class:`UnsupportedType` or :class:`InvalidValue` naming the field.
    """
    if type(value) is tuple:
        # Fast path: flat tuples of JSON-native scalars are their own wire form.
        for x in value:
            t = type(x)
            if t is int:
                if not -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
                    break
            elif t is not str and x is not None and t is not bool:
                break
        else:
            try:
                return orjson.dumps(value)
            except orjson.JSONEncodeError:
                pass  # a lone surrogate: the general path names the field
    # to_wire has checked all that could make the JSON library fail (strings, ints, nesting).
    return orjson.dumps(_to_wire(value, 0), option=_OPTIONS)


# ---------------------------------------------------------------------------
# Decoding

_INT_TEXT = re.compile(r"-?[0-9]+")
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_CREDIT_TEXT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")
_BASE64_TEXT = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?"
)
_TIME_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
# The most decimal digits an int of MAX_INT_BITS bits can have.
_MAX_INT_DIGITS = len(str(2**MAX_INT_BITS))


def _text(tag: str, payload: Wire) -> str:
    if type(payload) is not str:
        raise WireError(f'"{tag}" holds a JSON string, not {_json_type(payload)}')
    return _checked_str(payload)


def _json_type(o: Wire) -> str:
    if o is None:
        return "null"
    if isinstance(o, bool):
        return "a boolean"
    if isinstance(o, (int, float)):
        return "a number"
    if isinstance(o, str):
        return "a string"
    if isinstance(o, (list, tuple)):
        return "an array"
    if isinstance(o, dict):
        return "an object"
    return type(o).__name__


def _int_from(payload: Wire) -> int:
    text = _text("$int", payload)
    if not _INT_TEXT.fullmatch(text):
        raise WireError(f'"$int" text must be decimal digits with an optional "-", got {text[:40]!r}')
    if len(text.lstrip("-").lstrip("0")) > _MAX_INT_DIGITS:
        raise ValueTooLarge(f"int has more than {MAX_INT_BITS} bits", limit="int_bits", maximum=MAX_INT_BITS)
    return _int_value(int(text))


def _int_value(n: int) -> int:
    if n.bit_length() > MAX_INT_BITS:
        raise ValueTooLarge(f"int has more than {MAX_INT_BITS} bits", limit="int_bits", maximum=MAX_INT_BITS)
    return n


def _float_from(payload: Wire) -> float:
    t = type(payload)
    if t is str:
        if not _NUMBER_TEXT.fullmatch(payload):
            raise WireError(f'"$float" text must be a JSON number, got {payload[:40]!r}')
        x = float(payload)
    elif t is float or t is int:
        x = float(payload)
    else:
        raise WireError(f'"$float" holds a JSON string or number, not {_json_type(payload)}')
    if not math.isfinite(x):
        raise InvalidValue(f"float must be finite, got {payload!r}")
    return x + 0.0  # turns -0.0 into 0.0


def _bytes_from(payload: Wire) -> bytes:
    text = _text("$bytes", payload)
    if not _BASE64_TEXT.fullmatch(text):
        raise WireError('"$bytes" text is not canonical base64 (standard alphabet, "=" padding)')
    return base64.b64decode(text)


def _time_from(payload: Wire) -> _dt.datetime:
    text = _text("$time", payload)
    m = _TIME_TEXT.fullmatch(text)
    if m is None:
        raise WireError(f'"$time" text must be RFC 3339 like "2024-05-01T12:00:00Z", got {text[:40]!r}')
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    try:
        v = _dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=UTC,
        )
        if sign:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError(f"offset {sign}{off_h}:{off_m} is out of range")
            offset = _dt.timedelta(hours=int(off_h), minutes=int(off_m))
            v = v - offset if sign == "+" else v + offset
    except (ValueError, OverflowError) as exc:
        raise WireError(f'"$time" {text!r} is not a time from 0001 to 9999 UTC: {exc}') from None
    return v


def _uri_from(payload: Wire) -> URI:
    return URI(_text("$uri", payload))


def _credit_from(payload: Wire) -> Credit:
    text = _text("$credit", payload)
    m = _CREDIT_TEXT.fullmatch(text)
    if m is None:
        raise WireError(f'"$credit" text must be a decimal number like "12.5", got {text[:40]!r}')
    minus, whole, fraction, exp_text = m.groups()
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return Credit(0)
    if minus:
        raise InvalidValue(f"credit must not be negative, got {text[:40]!r}")
    exp_digits = (exp_text or "0").lstrip("+-").lstrip("0")
    if len(exp_digits) > 9:  # far past MAX_CREDIT_TEXT either way; spares int() a huge string
        raise ValueTooLarge(
            f"credit text would be longer than {MAX_CREDIT_TEXT} characters",
            limit="credit_length",
            maximum=MAX_CREDIT_TEXT,
        )
    exp = (int(exp_text) if exp_text else 0) - len(fraction)
    text = _canonical_decimal(digits, exp)
    if len(text) <= 40:
        return Credit(text)
    s, exp = _significant(digits, exp)  # Credit counts the digits it is given
    return Credit(f"{s}E{exp}")


def _map_from(payload: Wire) -> dict[str, Wire]:
    if type(payload) is not dict:
        raise WireError(f'"$map" holds a JSON object, not {_json_type(payload)}')
    return payload


_SCALAR_TAGS = {
    "$int": _int_from,
    "$float": _float_from,
    "$bytes": _bytes_from,
    "$time": _time_from,
    "$uri": _uri_from,
    "$credit": _credit_from,
}


class _Decoder:
    """Turns parsed JSON into values, checking the limits as it goes."""

    __slots__ = ("max_depth", "max_fields")

    def __init__(self, limits: Limits) -> None:
        self.max_depth = min(limits.max_depth, MAX_NESTING)
        self.max_fields = limits.max_fields

    def value(self, o: Wire, depth: int) -> Value:
        t = type(o)
        if t is str:
            return _checked_str(o)
        if t is int:
            return _int_value(o)
        if o is None or t is bool:
            return o
        if t is list or t is tuple:
            return self.seq(o, depth + 1)
        if t is dict:
            if len(o) == 1:
                for k, payload in o.items():
                    if k[:1] == "$":
                        return self.tagged(k, payload, depth)
            return self.map(_plain_object(o), depth + 1)
        if t is float:
            raise WireError(f"a bare JSON number must be an int within 64 bits; {_FLOAT_HINT}")
        raise WireError(f"{type(o).__name__} is not a JSON value")

    def tagged(self, tag: str, payload: Wire, depth: int) -> Value:
        convert = _SCALAR_TAGS.get(tag)
        if convert is not None:
            return convert(payload)
        if tag == "$map":
            return self.map(_map_from(payload), depth + 1)
        raise _unknown_tag(tag)

    def check(self, n: int, depth: int, noun: str = "fields") -> None:
        if depth > self.max_depth:
            raise _too_deep(self.max_depth)
        if n > self.max_fields:
            raise ValueTooLarge(
                f"{n} {noun}, more than {self.max_fields}", limit="max_fields", maximum=self.max_fields
            )

    def seq(self, o: list[Wire], depth: int) -> tuple[Value, ...]:
        self.check(len(o), depth)
        out = []
        for i, x in enumerate(o):
            try:
                out.append(self.value(x, depth))
            except (InvalidValue, WireError) as exc:
                raise _at(exc, f"[{i}]") from None
        return tuple(out)

    def map(self, o: dict[str, Wire], depth: int) -> Map:
        self.check(len(o), depth, "map keys")
        data: dict[str, Value] = {}
        for k, x in o.items():
            _checked_str(k)
            try:
                data[k] = self.value(x, depth)
            except (InvalidValue, WireError) as exc:
                raise _at(exc, _key_path(k)) from None
        m = Map.__new__(Map)
        m._data = data  # noqa: SLF001 (a Map over items just decoded, not copied again)
        return m


def _checked_str(s: Any) -> str:
    if type(s) is not str:
        raise WireError(f"object keys are strings, not {type(s).__name__}")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise WireError("string holds a lone surrogate") from None
    return s


def _plain_object(o: dict[str, Wire]) -> dict[str, Wire]:
    for k in o:
        if k[:1] == "$":
            raise WireError(
                f"an object with the key {_quote(k)} must have no other key; a map with keys that"
                ' start with "$" is written {"$map": {...}}'
            )
    return o


def _quote(k: str) -> str:
    return orjson.dumps(k[:60]).decode()


def _unknown_tag(tag: str) -> WireError:
    return WireError(f"unknown tag {_quote(tag)}")


def _loads(data: bytes | bytearray | memoryview | str, limits: Limits) -> Wire:
    if isinstance(data, str):
        if len(data) > limits.max_bytes:  # every character is at least one byte
            raise _too_many_bytes(len(data), limits)
        data = data.encode("utf-8", "surrogatepass")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"wire data is bytes or str, not {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not valid JSON: {exc}") from None


def _too_many_bytes(n: int, limits: Limits) -> ValueTooLarge:
    return ValueTooLarge(
        f"input is {n} bytes, more than {limits.max_bytes}", limit="max_bytes", maximum=limits.max_bytes
    )


def from_wire(obj: Wire, limits: Limits = DEFAULT_LIMITS) -> Value:
    """The value that the parsed JSON ``obj`` encodes (a JSON array gives a tuple).

    Raises :class:`WireError`, :class:`ValueTooLarge` or :class:`InvalidValue`
    naming the path (see :func:`decode`).
    """
    return _Decoder(limits).value(obj, 0)


def decode(data: bytes | bytearray | memoryview | str, limits: Limits = DEFAULT_LIMITS) -> Value:
    """Parse one value from wire bytes or text (a JSON array gives a tuple).

    >>> decode(b'["job",{"$int":"9007199254740993"},{"$time":"2024-05-01T12:00:00Z"}]')
    ('job', 9007199254740993, datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc))

    Raises :class:`WireError` for input not in the wire format, :class:`ValueTooLarge`
    past ``limits`` (the size of ``data`` is checked before parsing) and
    :class:`InvalidValue` for an invalid value (an empty URI, a negative credit);
    each names the path of the offending part, like ``[1]["temp"]``.
    """
    obj = _loads(data, limits)
    if type(obj) is list and len(obj) <= limits.max_fields:
        # Fast path: a flat array of strings (orjson has checked they are valid
        # Unicode), ints that fit 64 bits, booleans and nulls is already the tuple.
        for x in obj:
            tx = type(x)
            if tx is not str and tx is not int and tx is not bool and x is not None:
                break
        else:
            return tuple(obj)
    return _Decoder(limits).value(obj, 0)


# ---------------------------------------------------------------------------
# Templates

_FORMAL_NAMES: dict[type, str] = {kind: name for name, kind in FORMAL_TYPES.items()}
_FORMAL_NAMES.update({list: "tuple", dict: "map"})


def template_to_wire(template: Template | Any) -> list[Wire]:
    """The JSON-compatible wire form of a template (a :class:`Template` or anything
    ``Template(...)`` accepts).

    >>> import tuplespace as ts
    >>> template_to_wire(("job", int, ts.ANY, ts.Range(1, 5)))
    ['job', {'$formal': 'int'}, {'$any': True}, {'$range': {'low': 1, 'high': 5}}]

    Raises :class:`InvalidTemplate` for an invalid template, or one with a field that
    has no wire form (a :class:`Pred`, or a formal that is not a wire type), naming it.
    """
    compiled = template if isinstance(template, Template) else compile_template(template)
    return _fields_to_wire(compiled.fields, 0)


def _fields_to_wire(fields: Any, depth: int) -> list[Wire]:
    if depth > MAX_NESTING:
        raise InvalidTemplate(f"nesting is deeper than {MAX_NESTING}")
    out = []
    for i, f in enumerate(fields):
        try:
            out.append(_field_to_wire(f, depth))
        except InvalidTemplate as exc:
            raise _at(exc, f"[{i}]") from None
    return out


def _field_to_wire(f: Any, depth: int) -> Wire:
    if f is ANY:
        return {"$any": True}
    if isinstance(f, type):
        name = _FORMAL_NAMES.get(f)
        if name is None:
            raise InvalidTemplate(f"the formal {f.__qualname__} is not a wire type, so it has no wire form")
        return {"$formal": name}
    if isinstance(f, Template):
        return _fields_to_wire(f.fields, depth + 1)
    if isinstance(f, (tuple, list)):
        return _fields_to_wire(f, depth + 1)
    if isinstance(f, Mapping):
        if depth + 1 > MAX_NESTING:
            raise InvalidTemplate(f"nesting is deeper than {MAX_NESTING}")
        out: dict[str, Wire] = {}
        for k, x in f.items():
            try:
                out[k] = _field_to_wire(x, depth + 1)
            except InvalidTemplate as exc:
                raise _at(exc, _key_path(k)) from None
        return {"$map": out} if any(k[:1] == "$" for k in out) else out
    if isinstance(f, Pred):
        raise InvalidTemplate("a Pred (a Python predicate) has no wire form; it works only embedded")
    try:
        return _marker_to_wire(f)
    except InvalidValue as exc:
        raise InvalidTemplate(str(exc)) from None


def _marker_to_wire(f: Any) -> Wire:
    if isinstance(f, Range):
        bounds: dict[str, Wire] = {}
        if f.low is not None:
            bounds["low"] = to_wire(f.low)
        if f.high is not None:
            bounds["high"] = to_wire(f.high)
        if f.include_high:
            bounds["include_high"] = True
        return {"$range": bounds}
    if isinstance(f, Regex):
        return {"$regex": f.pattern}
    if isinstance(f, Prefix):
        return {"$prefix": to_wire(f.prefix)}
    if isinstance(f, OneOf):
        # A set of values: written sorted by canonical bytes, without repeats.
        encoded = sorted({encode(v): v for v in f.values}.items())
        return {"$oneof": [to_wire(v) for _, v in encoded]}
    if isinstance(f, XPath):
        return {"$xpath": f.expression}
    return to_wire(f)


def encode_template(template: Template | Any) -> bytes:
    """The canonical wire bytes of a template (see :func:`template_to_wire`)."""
    return orjson.dumps(template_to_wire(template), option=_OPTIONS)


class _TemplateDecoder(_Decoder):
    """Turns a parsed JSON template into template fields."""

    __slots__ = ()

    def fields(self, o: Wire, depth: int) -> tuple[Any, ...]:
        if type(o) is not list and type(o) is not tuple:
            raise WireError(f"a template is a JSON array, not {_json_type(o)}")
        self.check(len(o), depth)
        out = []
        for i, x in enumerate(o):
            try:
                out.append(self.field(x, depth))
            except (InvalidValue, InvalidTemplate, WireError) as exc:
                raise _at(exc, f"[{i}]") from None
        return tuple(out)

    def field(self, o: Wire, depth: int) -> Any:
        t = type(o)
        if t is list or t is tuple:
            return self.fields(o, depth + 1)
        if t is dict:
            if len(o) == 1:
                for k, payload in o.items():
                    if k[:1] == "$":
                        return self.marker(k, payload, depth)
            return self.map_template(_plain_object(o), depth + 1)
        return self.value(o, depth)

    def marker(self, tag: str, payload: Wire, depth: int) -> Any:
        if tag in _SCALAR_TAGS:
            return self.tagged(tag, payload, depth)
        if tag == "$map":
            return self.map_template(_map_from(payload), depth + 1)
        if tag == "$any":
            if payload is not True:
                raise WireError('"$any" holds true')
            return ANY
        if tag == "$formal":
            kind = FORMAL_TYPES.get(_text(tag, payload))
            if kind is None:
                raise WireError(f"unknown formal {_quote(payload)}; formals are " + ", ".join(FORMAL_TYPES))
            return kind
        if tag == "$range":
            return self.range(payload, depth)
        if tag == "$regex":
            return Regex(_text(tag, payload))
        if tag == "$prefix":
            try:
                return Prefix(self.value(payload, depth))
            except (InvalidValue, WireError) as exc:
                raise _at(exc, '["$prefix"]') from None
        if tag == "$oneof":
            return self.one_of(payload, depth)
        if tag == "$xpath":
            return XPath(_text(tag, payload))
        raise _unknown_tag(tag)

    def one_of(self, payload: Wire, depth: int) -> OneOf:
        if type(payload) is not list:
            raise WireError(f'"$oneof" holds a JSON array, not {_json_type(payload)}')
        if len(payload) > MAX_ONE_OF:
            raise InvalidTemplate(f"OneOf has {len(payload)} values, more than {MAX_ONE_OF}")
        values = []
        for i, x in enumerate(payload):
            try:
                values.append(self.value(x, depth))
            except (InvalidValue, WireError) as exc:
                raise _at(exc, f'["$oneof"][{i}]') from None
        return OneOf(*values)

    def range(self, payload: Wire, depth: int) -> Range:
        if type(payload) is not dict:
            raise WireError(f'"$range" holds a JSON object, not {_json_type(payload)}')
        for k in payload:
            if k not in ("low", "high", "include_high"):
                raise WireError(f'unknown "$range" key {_quote(k)}; the keys are low, high and include_high')
        bounds = {}
        for k in ("low", "high"):
            try:
                bounds[k] = self.value(payload.get(k), depth)
            except (InvalidValue, WireError) as exc:
                raise _at(exc, f'["$range"]["{k}"]') from None
        include_high = payload.get("include_high", False)
        if type(include_high) is not bool:
            raise WireError('"$range" include_high is true or false')
        return Range(bounds["low"], bounds["high"], include_high)

    def map_template(self, o: dict[str, Wire], depth: int) -> dict[str, Any]:
        self.check(len(o), depth, "map keys")
        out: dict[str, Any] = {}
        for k, x in o.items():
            _checked_str(k)
            try:
                out[k] = self.field(x, depth)
            except (InvalidValue, InvalidTemplate, WireError) as exc:
                raise _at(exc, _key_path(k)) from None
        return out


def template_from_wire(obj: Wire, limits: Limits = DEFAULT_LIMITS) -> Template:
    """The template that the parsed JSON ``obj`` (a JSON array) encodes.

    Raises :class:`WireError`, :class:`InvalidTemplate`, :class:`InvalidValue` or
    :class:`ValueTooLarge` naming the path of the offending field.
    """
    return compile_template(_TemplateDecoder(limits).fields(obj, 1))


def decode_template(data: bytes | bytearray | memoryview | str, limits: Limits = DEFAULT_LIMITS) -> Template:
    """Parse a template from wire bytes or text.

    >>> decode_template(b'["job",{"$formal":"int"}]').matches(("job", 3))
    True

    Raises as :func:`template_from_wire`, and :class:`ValueTooLarge` when ``data``
    is longer than ``limits.max_bytes``.
    """
    return template_from_wire(_loads(data, limits), limits)
