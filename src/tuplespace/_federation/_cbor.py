"""Values in CBOR (RFC 8949), deterministically encoded (§4.2.1), with standard tags.

======== =============================================== ==========================================
wire     CBOR                                            note
======== =============================================== ==========================================
null     simple value 22 (``f6``)
bool     simple values 20, 21 (``f4``, ``f5``)
int      major types 0 and 1; tags 2 and 3 (bignums)     bignums only past 64 bits
float    major type 7, the shortest of half, single and  always a float: ``1.0`` is ``f9 3c00``,
         double precision that holds the value exactly   never the int ``1``
str      major type 3 (text string)
bytes    major type 2 (byte string)
time     tag 0 (RFC 3339 text), the JSON wire format's   exact to the microsecond, years 1 to 9999;
         ``$time`` text: ``2024-05-01T12:00:00.5Z``      decoders also accept tag 1 (epoch seconds)
uri      tag 32 (URI text)
credit   tag 4 (decimal fraction) ``[exponent, mantissa]`` trailing zeros of the mantissa removed
tuple    major type 4 (array)
map      major type 5 with text keys, sorted by their    the map of a record's fields, too
         encoded bytes
======== =============================================== ==========================================

Tag 0 rather than tag 1: an epoch time in a double cannot hold every microsecond of
years 1 to 9999 (past 2^53 microseconds it rounds), an integer one drops the fraction,
and the text is the one the JSON wire format already writes, so both formats agree
on every time.

The typed equality of the wire types holds: ``1``, ``1.0``, ``True`` and
``Credit(1)`` are four encodings.  Decoding trusts nothing: the input's size is
checked against ``limits.max_bytes`` before parsing, nesting against
``max_depth``, the items of each array and map against ``max_fields``; lengths
are checked against the bytes left before anything is allocated.  Indefinite
lengths, unknown tags, simple values other than these, non-text map keys,
duplicate keys and trailing bytes are :class:`~tuplespace.WireError`; each error
names the path of the offending part, like ``[1]["temp"]``.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .._codec import MAX_CREDIT_TEXT, Wire, _at, _time_from, _time_text, to_wire
from .._errors import InvalidValue, ValueTooLarge, WireError
from .._values import (
    DEFAULT_LIMITS,
    MAX_INT_BITS,
    URI,
    Credit,
    Limits,
    Map,
    Value,
    _key_path,
    check_value,
    type_name,
)

__all__ = ["CBOR", "JSON", "decode_cbor", "encode_cbor", "template_wire"]

CBOR = 60
"""The CoAP Content-Format of CBOR (application/cbor)."""
JSON = 50
"""The CoAP Content-Format of JSON (application/json): the JSON wire format."""

_UTC = _dt.UTC
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)


# ---------------------------------------------------------------------------
# Encoding


def _head(major: int, n: int) -> bytes:
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


def _int(n: int, out: list[bytes]) -> None:
    if 0 <= n < 1 << 64:
        out.append(_head(0, n))
    elif -(1 << 64) <= n < 0:
        out.append(_head(1, -1 - n))
    else:
        magnitude = n if n > 0 else -1 - n
        raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        out.append(b"\xc2" if n > 0 else b"\xc3")
        out.append(_head(2, len(raw)))
        out.append(raw)


def _float(x: float) -> bytes:
    for fmt, lead in ((">e", b"\xf9"), (">f", b"\xfa")):
        try:
            packed = struct.pack(fmt, x)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == x:
            return lead + packed
    return b"\xfb" + struct.pack(">d", x)


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _head(3, len(raw)) + raw


def _value(v: Value, out: list[bytes]) -> None:
    # ``v`` is normal (check_value's output): exact wire types, tuples and Maps, UTC times.
    t = type(v)
    if t is str:
        out.append(_text(v))
    elif t is int:
        _int(v, out)
    elif v is None:
        out.append(b"\xf6")
    elif t is bool:
        out.append(b"\xf5" if v else b"\xf4")
    elif t is float:
        out.append(_float(v))
    elif t is bytes:
        out.append(_head(2, len(v)))
        out.append(v)
    elif t is tuple:
        out.append(_head(4, len(v)))
        for x in v:
            _value(x, out)
    elif t is Map:
        _map(v, out)
    elif t is URI:
        out.append(b"\xd8\x20")
        out.append(_text(str(v)))
    elif t is Credit:
        _, digits, exponent = v.as_tuple()
        mantissa = int("".join(map(str, digits)))
        e = int(exponent)
        if mantissa == 0:
            e = 0
        while mantissa and mantissa % 10 == 0:
            mantissa //= 10
            e += 1
        out.append(b"\xc4\x82")
        _int(e, out)
        _int(mantissa, out)
    elif t is _dt.datetime:
        out.append(b"\xc0")
        out.append(_text(_time_text(v)))
    else:  # subclasses of the wire types, which embedded spaces keep as they are
        _value(_base(v), out)


def _base(v: Value) -> Value:
    """The value of the exact wire type that ``v``, of a subclass, stands for."""
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bytes):
        return bytes(v)
    if isinstance(v, URI):
        return URI(str(v))
    if isinstance(v, Credit):
        return Credit(v)
    if isinstance(v, _dt.datetime):
        return _dt.datetime.fromisoformat(v.isoformat())
    if isinstance(v, tuple):
        return tuple(v)
    return Map(v)


def _map(v: Map, out: list[bytes]) -> None:
    out.append(_head(5, len(v)))
    items = sorted((_text(k), x) for k, x in v.items())
    for key, x in items:
        out.append(key)
        _value(x, out)


def encode_cbor(value: Value, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The deterministic CBOR encoding of a value (a tuple gives an array, a mapping a map).

    >>> encode_cbor(("job", 1, 1.0, True)).hex()
    '84636a6f6201f93c00f5'

    Raises :class:`~tuplespace.UnsupportedType` or :class:`~tuplespace.InvalidValue`
    naming the field, as a space does.
    """
    t = type(value)
    if t is int and 0 <= value < 1 << 64:  # a version, a count: the common answer
        return _head(0, value)
    if t is float and math.isfinite(value):
        return _float(value + 0.0)  # -0.0 is 0.0
    out: list[bytes] = []
    _value(check_value(value, limits), out)
    return b"".join(out)


# ---------------------------------------------------------------------------
# Decoding


class _Decoder:
    __slots__ = ("data", "limits", "pos")

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise WireError(f"truncated: {n} bytes announced, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def head(self) -> tuple[int, int]:
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 31
        if info < 24:
            return major, info
        if info < 28:
            return major, int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31:
            raise WireError("indefinite lengths are not accepted (deterministic CBOR has none)")
        raise WireError(f"reserved additional information {info} in byte 0x{initial:02x}")

    def count(self, n: int, noun: str) -> None:
        if n > self.limits.max_fields:
            raise ValueTooLarge(
                f"{noun} of {n} items, more than {self.limits.max_fields}",
                limit="max_fields",
                maximum=self.limits.max_fields,
            )

    def value(self, depth: int) -> Value:
        start = self.pos
        major, n = self.head()
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return self.take(n)
        if major == 3:
            return self.text(n)
        if major == 4 or major == 5:
            if depth >= self.limits.max_depth:
                raise ValueTooLarge(
                    f"nesting is deeper than {self.limits.max_depth}",
                    limit="max_depth",
                    maximum=self.limits.max_depth,
                )
            return self.array(n, depth + 1) if major == 4 else self.map(n, depth + 1)
        if major == 6:
            return self.tagged(n, depth)
        return self.simple(self.data[start] & 31, n)

    def text(self, n: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"text string is not valid UTF-8 at byte {exc.start}") from None

    def array(self, n: int, depth: int) -> tuple[Value, ...]:
        self.count(n, "array")
        out = []
        for i in range(n):
            try:
                out.append(self.value(depth))
            except (InvalidValue, WireError) as exc:
                raise _at(exc, f"[{i}]") from None
        return tuple(out)

    def map(self, n: int, depth: int) -> Map:
        self.count(n, "map")
        out: dict[str, Value] = {}
        for _ in range(n):
            major, length = self.head()
            if major != 3:
                raise WireError(f"map keys are text strings, not CBOR major type {major}")
            key = self.text(length)
            if key in out:
                raise WireError(f"map key {key!r} appears twice")
            try:
                out[key] = self.value(depth)
            except (InvalidValue, WireError) as exc:
                raise _at(exc, _key_path(key)) from None
        return Map(out)

    def tagged(self, tag: int, depth: int) -> Value:
        decode = _TAGS.get(tag)
        if decode is None:
            raise WireError(f"unknown tag {tag}")
        if self.pos < len(self.data) and self.data[self.pos] >> 5 == 6:  # nested, as deep as it likes
            raise WireError(f"tag {tag} holds another tag (none of the wire types' tags does)")
        return decode(self, self.value(depth))

    def simple(self, info: int, n: int) -> Value:
        if info < 24:
            simple = {20: False, 21: True, 22: None}
            if n in simple:
                return simple[n]
            raise WireError(f"simple value {n} is not a wire value")
        if info == 24:
            raise WireError(f"simple value {n} is not a wire value")
        fmt = {25: ">e", 26: ">f", 27: ">d"}[info]
        x: float = struct.unpack(fmt, n.to_bytes(struct.calcsize(fmt), "big"))[0]
        if not math.isfinite(x):
            raise InvalidValue(f"float must be finite, got {x!r}")
        return 0.0 if x == 0 else x


def _time_text_tag(_: _Decoder, payload: Value) -> _dt.datetime:
    if type(payload) is not str:
        raise WireError(f"tag 0 (time) holds a text string, not {type_name(payload)}")
    try:
        return _time_from(payload)
    except WireError as exc:
        raise WireError("tag 0 (time): " + exc.reason.replace('"$time" ', "")) from None


def _epoch_tag(_: _Decoder, payload: Value) -> _dt.datetime:
    if type(payload) not in (int, float):
        raise WireError(f"tag 1 (epoch time) holds a number, not {type_name(payload)}")
    try:
        return _EPOCH + _dt.timedelta(seconds=payload)
    except OverflowError:
        raise WireError(f"tag 1 (epoch time) {payload!r} is not a time from 0001 to 9999 UTC") from None


def _bignum_tag(negative: bool) -> Callable[[_Decoder, Value], int]:
    def decode(_: _Decoder, payload: Value) -> int:
        if type(payload) is not bytes:
            raise WireError(
                f"tag {3 if negative else 2} (bignum) holds a byte string, not {type_name(payload)}"
            )
        magnitude = int.from_bytes(payload, "big")
        if magnitude.bit_length() > MAX_INT_BITS:
            raise ValueTooLarge(
                f"int has more than {MAX_INT_BITS} bits", limit="int_bits", maximum=MAX_INT_BITS
            )
        return -1 - magnitude if negative else magnitude

    return decode


def _credit_tag(_: _Decoder, payload: Value) -> Credit:
    if type(payload) is not tuple or len(payload) != 2 or any(type(x) is not int for x in payload):
        raise WireError("tag 4 (credit) holds [exponent, mantissa], two integers")
    exponent, mantissa = payload
    if mantissa < 0:
        raise InvalidValue(f"credit must not be negative, got {mantissa}E{exponent}")
    if mantissa == 0:
        return Credit(0)
    if abs(exponent) > MAX_CREDIT_TEXT:  # its text would be longer than that
        raise ValueTooLarge(
            f"credit text would be longer than {MAX_CREDIT_TEXT} characters",
            limit="credit_length",
            maximum=MAX_CREDIT_TEXT,
        )
    return Credit(Decimal((0, tuple(map(int, str(mantissa))), exponent)))


def _uri_tag(_: _Decoder, payload: Value) -> URI:
    if type(payload) is not str:
        raise WireError(f"tag 32 (URI) holds a text string, not {type_name(payload)}")
    return URI(payload)


_TAGS: dict[int, Callable[[_Decoder, Value], Any]] = {
    0: _time_text_tag,
    1: _epoch_tag,
    2: _bignum_tag(False),
    3: _bignum_tag(True),
    4: _credit_tag,
    32: _uri_tag,
}


def decode_cbor(data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS) -> Value:
    """The value that CBOR ``data`` encodes (an array gives a tuple, a map a :class:`~tuplespace.Map`).

    >>> decode_cbor(bytes.fromhex("84636a6f6201f93c00f5"))
    ('job', 1, 1.0, True)

    Raises :class:`~tuplespace.WireError` for input that is not one CBOR item of the
    wire types, :class:`~tuplespace.ValueTooLarge` past ``limits`` (the size of
    ``data`` is checked before parsing) and :class:`~tuplespace.InvalidValue` for an
    invalid value; each names the path of the offending part.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"CBOR data is bytes, not {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise ValueTooLarge(
            f"input is {len(data)} bytes, more than {limits.max_bytes}",
            limit="max_bytes",
            maximum=limits.max_bytes,
        )
    if 0 < len(data) <= 9:
        number = _number(data)
        if number is not None:
            return number
    decoder = _Decoder(bytes(data), limits)
    value = decoder.value(0)
    if decoder.pos != len(decoder.data):
        raise WireError(f"{len(decoder.data) - decoder.pos} bytes after the end of the value")
    return value


# The floats by their initial byte, and the length of the item.
_FLOATS = {0xF9: (struct.Struct(">e"), 3), 0xFA: (struct.Struct(">f"), 5), 0xFB: (struct.Struct(">d"), 9)}


def template_wire(value: Value) -> Wire:
    """The JSON wire form of a template (or of a FETCH payload holding one) that came in
    CBOR: a CBOR template is the JSON one (docs/wire-format.md, Templates) with CBOR
    values in place of the JSON forms of values.  Its arrays are arrays of template
    fields, its maps are the ``{"$formal": "int"}``, ``{"$range": {...}}``... forms or
    map templates (``{"$map": {...}}`` for one with keys that start with ``$``), and
    every other item is a value.

    >>> template_wire(decode_cbor(bytes.fromhex("82636a6f62a16724666f726d616c63696e74")))
    ['job', {'$formal': 'int'}]
    """
    if type(value) is tuple:
        return [template_wire(item) for item in value]
    if type(value) is Map:
        return {key: template_wire(item) for key, item in value.items()}
    return to_wire(value)


def _number(data: bytes | bytearray | memoryview) -> int | float | None:
    """The integer or float that ``data`` is in whole, as the decoder reads it, at once
    (the payload of a field's get or set); None for anything else."""
    first = data[0]
    major, info = first >> 5, first & 31
    if major < 2:
        if info >= 28 or len(data) != (1 if info < 24 else 1 + (1 << (info - 24))):
            return None
        n = info if info < 24 else int.from_bytes(data[1:], "big")
        return n if major == 0 else -1 - n
    known = _FLOATS.get(first)
    if known is None or len(data) != known[1]:
        return None
    x: float = known[0].unpack_from(data, 1)[0]
    if not math.isfinite(x):
        raise InvalidValue(f"float must be finite, got {x!r}")
    return 0.0 if x == 0 else x
