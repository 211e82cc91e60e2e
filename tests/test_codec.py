"""The wire codec: the shared test vectors, Python-side cases, properties, and the
float formatting checked against a JavaScript engine."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import random
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuplespace as ts
from tuplespace import _codec
from tuplespace._codec import format_float
from tuplespace._templates import FORMAL_TYPES
from tuplespace._values import check_tuple, type_name, value_key

DOCS = Path(__file__).resolve().parent.parent / "docs"
VECTORS = json.loads((DOCS / "wire-vectors.json").read_text(encoding="utf-8"))
UTC = dt.UTC


def by_name(section: str) -> Callable[[Any], Any]:
    return pytest.mark.parametrize("vector", VECTORS[section], ids=[v["name"] for v in VECTORS[section]])


def stdlib_canonical(data: bytes) -> bytes:
    """The canonical form by the rules of the spec, computed with the standard library
    (an implementation independent of the codec's JSON library)."""
    obj = json.loads(data)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------------------
# The shared vectors


def test_vectors_file() -> None:
    assert VECTORS["version"] == 1
    assert VECTORS["default_limits"] == {
        "max_fields": ts.Limits().max_fields,
        "max_depth": ts.Limits().max_depth,
        "max_bytes": ts.Limits().max_bytes,
    }
    for section in ("values", "noncanonical", "invalid", "templates", "invalid_templates"):
        names = [v["name"] for v in VECTORS[section]]
        assert len(names) == len(set(names)), f"duplicate names in {section}"
    assert {v["type"] for v in VECTORS["values"]} == set(FORMAL_TYPES)


@by_name("values")
def test_value_vector(vector: dict[str, Any]) -> None:
    wire = vector["wire"].encode("utf-8")
    value = ts.decode(wire)
    assert type_name(value) == vector["type"]
    assert ts.encode(value) == wire
    assert orjson.dumps(ts.to_wire(value), option=orjson.OPT_SORT_KEYS) == wire
    assert value_key(ts.from_wire(json.loads(wire))) == value_key(value)
    assert value_key(ts.decode(vector["wire"])) == value_key(value)  # str input
    assert stdlib_canonical(wire) == wire


@by_name("noncanonical")
def test_noncanonical_vector(vector: dict[str, Any]) -> None:
    value = ts.decode(vector["input"].encode("utf-8"))
    canonical = vector["canonical"].encode("utf-8")
    assert ts.encode(value) == canonical
    assert value_key(ts.decode(canonical)) == value_key(value)
    assert stdlib_canonical(canonical) == canonical


@by_name("invalid")
def test_invalid_vector(vector: dict[str, Any]) -> None:
    limits = ts.Limits(**vector.get("limits", {}))
    error = getattr(ts, vector["error"])
    with pytest.raises(error) as info:
        ts.decode(vector["input"].encode("utf-8"), limits)
    assert type(info.value).__name__ == vector["error"]
    if vector["path"] is not None:
        assert info.value.path == vector["path"]
        assert str(info.value).startswith(vector["path"] + ": " if vector["path"] else "")


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


@by_name("invalid")
def test_invalid_vector_from_parsed_json(vector: dict[str, Any]) -> None:
    """from_wire reports the same errors on JSON parsed elsewhere (when it parses)."""
    try:
        obj = json.loads(vector["input"], parse_constant=reject_constant)
    except ValueError:
        return
    limits = ts.Limits(**vector.get("limits", {}))
    if "max_bytes" in vector.get("limits", {}):
        return  # the size of the text is decode's check
    with pytest.raises(getattr(ts, vector["error"])) as info:
        ts.from_wire(obj, limits)
    assert type(info.value).__name__ == vector["error"]
    if vector["path"] is not None:
        assert info.value.path == vector["path"]


@by_name("templates")
def test_template_vector(vector: dict[str, Any]) -> None:
    text = vector["template"].encode("utf-8")
    template = ts.decode_template(text)
    assert ts.encode_template(template) == text
    assert ts.encode_template(ts.template_from_wire(json.loads(text))) == text
    assert stdlib_canonical(text) == text
    for t in vector["matches"]:
        assert template.matches(ts.decode(t)), t
    for t in vector["rejects"]:
        assert not template.matches(ts.decode(t)), t


@by_name("invalid_templates")
def test_invalid_template_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(getattr(ts, vector["error"])) as info:
        ts.decode_template(vector["input"].encode("utf-8"))
    assert type(info.value).__name__ == vector["error"]
    assert info.value.path == vector["path"]


# ---------------------------------------------------------------------------
# Python values and their wire form, written out


class Color(enum.IntEnum):
    RED = 1


class Mood(str, enum.Enum):  # noqa: UP042 - its str() is "Mood.HAPPY", not its value
    HAPPY = "happy"


PYTHON_CASES: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (2**53 - 1, "9007199254740991"),
    (-(2**53 - 1), "-9007199254740991"),
    (2**53, '{"$int":"9007199254740992"}'),
    (-(2**53), '{"$int":"-9007199254740992"}'),
    (-(2**200), f'{{"$int":"-{2**200}"}}'),
    (Color.RED, "1"),
    (1.0, '{"$float":"1"}'),
    (-0.0, '{"$float":"0"}'),
    (1e16, '{"$float":"10000000000000000"}'),
    (1e21, '{"$float":"1e+21"}'),
    (5e-7, '{"$float":"5e-7"}'),
    (1.23e-18, '{"$float":"1.23e-18"}'),
    (0.1, '{"$float":"0.1"}'),
    (123.456, '{"$float":"123.456"}'),
    (1e-6, '{"$float":"0.000001"}'),
    (-1e-7, '{"$float":"-1e-7"}'),
    (float(2**60), '{"$float":"1152921504606847000"}'),
    ("é\x00\U0001f600", '"é\\u0000\U0001f600"'),
    (Mood.HAPPY, '"happy"'),
    (b"", '{"$bytes":""}'),
    (bytearray(b"\x00\xff"), '{"$bytes":"AP8="}'),
    (memoryview(b"abc"), '{"$bytes":"YWJj"}'),
    (dt.datetime(2024, 5, 1, 12, tzinfo=UTC), '{"$time":"2024-05-01T12:00:00Z"}'),
    (dt.datetime(2024, 5, 1, 12, 0, 0, 120000, tzinfo=UTC), '{"$time":"2024-05-01T12:00:00.12Z"}'),
    (
        dt.datetime(2024, 1, 1, 0, 30, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        '{"$time":"2023-12-31T23:30:00.000001Z"}',
    ),
    (dt.datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), '{"$time":"0999-01-02T03:04:05Z"}'),
    (ts.URI("a/b"), '{"$uri":"a/b"}'),
    (ts.Credit("12.50"), '{"$credit":"12.5"}'),
    (ts.Credit("1E+3"), '{"$credit":"1000"}'),
    (ts.Credit("0"), '{"$credit":"0"}'),
    (ts.Credit("0E-7"), '{"$credit":"0"}'),
    (ts.Credit("-0"), '{"$credit":"0"}'),
    (ts.Credit("0.0010"), '{"$credit":"0.001"}'),
    (ts.Credit(Decimal("1.5E-3")), '{"$credit":"0.0015"}'),
    (ts.Credit(Decimal("15E+1")), '{"$credit":"150"}'),
    (("a", [1, (2,)]), '["a",[1,[2]]]'),
    ([], "[]"),
    ({"b": 1, "a": [True]}, '{"a":[true],"b":1}'),
    (ts.Map({"$x": 1.5, "y": None}), '{"$map":{"$x":{"$float":"1.5"},"y":null}}'),
    ({"k": {"$": {}}}, '{"k":{"$map":{"$":{}}}}'),
]


@pytest.mark.parametrize(("value", "wire"), PYTHON_CASES, ids=[w for _, w in PYTHON_CASES])
def test_python_value_encodes(value: Any, wire: str) -> None:
    assert ts.encode(value) == wire.encode("utf-8")
    back = ts.decode(wire)
    normal = ts._values.check_value(value)
    assert value_key(back) == value_key(normal)


def test_decoded_types() -> None:
    t = ts.decode(
        '[[1],{"a":1},{"$map":{"$b":2}},{"$time":"2024-05-01T14:00:00+02:00"},{"$credit":"1.50"},{"$float":"-0"}]'
    )
    assert type(t) is tuple
    assert type(t[0]) is tuple
    assert type(t[1]) is ts.Map
    assert type(t[2]) is ts.Map
    assert dict(t[2]) == {"$b": 2}
    assert t[3] == dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert t[3].tzinfo is UTC
    assert type(t[4]) is ts.Credit
    assert str(t[4]) == "1.5"
    assert type(t[5]) is float
    assert math.copysign(1, t[5]) == 1.0


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: ts.URI("\ud800"), ts.InvalidValue),
        (lambda: ts.Credit("1E+100"), ts.ValueTooLarge),
        (lambda: ts.Credit("1E-99"), ts.ValueTooLarge),
        (lambda: ts.Credit("1E+999999999999999999"), ts.ValueTooLarge),
    ],
)
def test_values_that_could_not_be_encoded_cannot_be_made(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


@pytest.mark.parametrize(
    ("value", "error", "path"),
    [
        ((1, float("nan")), ts.InvalidValue, "[1]"),
        ((1, [2, {"k": float("inf")}]), ts.InvalidValue, '[1][1]["k"]'),
        (("x", dt.datetime(2024, 1, 1)), ts.InvalidValue, "[1]"),
        (("\ud800",), ts.InvalidValue, "[0]"),
        (({"\udfff": 1},), ts.InvalidValue, "[0]"),
        ((2**1024,), ts.ValueTooLarge, "[0]"),
        ((-(2**1024),), ts.ValueTooLarge, "[0]"),
        ((Decimal("1.5"),), ts.UnsupportedType, "[0]"),
        (({1, 2},), ts.UnsupportedType, "[0]"),
        ((object(),), ts.UnsupportedType, "[0]"),
        (({1: "a"},), ts.UnsupportedType, "[0]"),
        ((dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),), ts.InvalidValue, "[0]"),
    ],
)
def test_encode_rejects(value: Any, error: type[Exception], path: str) -> None:
    with pytest.raises(error) as info:
        ts.encode(value)
    assert type(info.value) is error
    assert info.value.path == path  # type: ignore[attr-defined]
    with pytest.raises(error):
        ts.to_wire(value)


def test_credit_length_limit() -> None:
    assert ts.encode(ts.Credit("1E+99")) == b'{"$credit":"1' + b"0" * 99 + b'"}'
    assert ts.encode(ts.Credit("1E-98")) == b'{"$credit":"0.' + b"0" * 97 + b'1"}'
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.encode(ts.Credit("1E+100"))
    assert info.value.limit == "credit_length"
    assert info.value.maximum == 100


def test_nesting_past_the_codec_limit() -> None:
    deep: Any = ()
    for _ in range(_codec.MAX_NESTING - 1):
        deep = (deep,)
    assert ts.encode(deep) == b"[" * 100 + b"]" * 100
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.encode(((deep,),))
    assert info.value.limit == "max_depth"
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ts.ValueTooLarge):
        ts.encode(cyclic)
    with pytest.raises(ts.ValueTooLarge):
        ts.decode(b"[" * 200 + b"]" * 200, ts.Limits(max_depth=1000))
    deep_maps: Any = 1
    for _ in range(_codec.MAX_NESTING):
        deep_maps = {"$": deep_maps}  # the deepest JSON: two levels for each map
    data = ts.encode(deep_maps)
    assert data.startswith(b'{"$map":{"$":{"$map":{"$":')
    assert ts.encode(ts.decode(data, ts.Limits(max_depth=1000))) == data


# ---------------------------------------------------------------------------
# Decoding details that the portable vectors leave out


def test_bare_ints_outside_the_safe_range() -> None:
    assert ts.decode(b"[9007199254740993]") == (9007199254740993,)
    assert ts.decode(b"18446744073709551615") == 2**64 - 1
    assert ts.decode(b"-9223372036854775808") == -(2**63)
    assert ts.encode(ts.decode(b"9007199254740992")) == b'{"$int":"9007199254740992"}'
    with pytest.raises(ts.WireError, match=r"\$float"):
        ts.decode(b"18446744073709551616")  # past 64 bits: the parser gives a float


@pytest.mark.parametrize("text", [b"[1.0]", b"[1e2]", b"[-0.0]", b"[1E-2]"])
def test_bare_floats(text: bytes) -> None:
    with pytest.raises(ts.WireError, match=r'floats are written \{"\$float": "1.5"\}') as info:
        ts.decode(text)
    assert info.value.path == "[0]"


def test_size_is_checked_before_parsing() -> None:
    limits = ts.Limits(max_bytes=8)
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.decode(b"[not json at all]", limits)
    assert info.value.limit == "max_bytes"
    with pytest.raises(ts.ValueTooLarge):
        ts.decode("[not json at all]", limits)
    with pytest.raises(ts.ValueTooLarge):
        ts.decode('"ééééé"', limits)  # 7 characters, 12 bytes
    assert ts.decode(b'"123456"', limits) == "123456"
    with pytest.raises(ts.ValueTooLarge):
        ts.decode_template(b"[1,2,3,4,5]", limits)


def test_decode_inputs() -> None:
    assert ts.decode(bytearray(b"[1]")) == (1,)
    assert ts.decode(memoryview(b"[1]")) == (1,)
    with pytest.raises(ts.WireError):
        ts.decode(b'["\xff"]')
    with pytest.raises(ts.WireError):
        ts.decode('["\ud800"]')
    with pytest.raises(TypeError):
        ts.decode(123)  # type: ignore[arg-type]


def test_from_wire_checks_what_a_parser_may_let_through() -> None:
    with pytest.raises(ts.WireError) as info:
        ts.from_wire(json.loads('["a", "\\ud800"]'))
    assert info.value.path == "[1]"
    with pytest.raises(ts.WireError) as info:
        ts.from_wire(json.loads('[{"\\udc00": 1}]'))
    assert info.value.path == "[0]"
    with pytest.raises(ts.WireError):
        ts.from_wire({"$uri": "\ud800"})
    with pytest.raises(ts.WireError):
        ts.from_wire([b"bytes"])
    with pytest.raises(ts.WireError):
        ts.from_wire([float("nan")])
    with pytest.raises(ts.InvalidValue):
        ts.from_wire({"$float": float("inf")})
    with pytest.raises(ts.ValueTooLarge):
        ts.from_wire(2**1024)
    assert ts.from_wire(("a", ["b"])) == ("a", ("b",))


def test_limits_count_arrays_and_maps_not_tags() -> None:
    limits = ts.Limits(max_depth=2, max_fields=2)
    assert ts.decode(b'[[{"$int":"1"}],{"$map":{"$a":{"$float":"1"}}}]', limits) is not None
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.decode(b'[{"$map":{"$a":{"b":1}}}]', limits)
    assert info.value.path == '[0]["$a"]'
    assert info.value.limit == "max_depth"
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.decode(b'[{"$map":{"$a":1,"$b":2,"$c":3}}]', limits)
    assert info.value.path == "[0]"
    assert info.value.limit == "max_fields"
    assert ts.decode(b"1", ts.Limits(max_depth=1)) == 1


def test_check_tuple_measures_the_encoding() -> None:
    t = ("x" * 20,)
    size = len(ts.encode(t))
    assert check_tuple(t, ts.Limits(max_bytes=size)) == t
    with pytest.raises(ts.ValueTooLarge) as info:
        check_tuple(t, ts.Limits(max_bytes=size - 1))
    assert info.value.limit == "max_bytes"


# ---------------------------------------------------------------------------
# Templates


def test_template_to_wire_forms() -> None:
    template = (
        "job",
        int,
        list,
        dict,
        type(None),
        ts.ANY,
        ts.Range(1, 5.5, include_high=True),
        ts.Range(low="a"),
        ts.Regex("^a"),
        ts.Prefix(ts.URI("ts://n1/")),
        ts.OneOf({3, "a", 1.5, ts.URI("u")}),
        ts.XPath("/a"),
        ("x", {"k": float, "$k": 1}),
        ts.Template((1, str)),
        {"m": ts.ANY},
    )
    assert ts.template_to_wire(template) == [
        "job",
        {"$formal": "int"},
        {"$formal": "tuple"},
        {"$formal": "map"},
        {"$formal": "null"},
        {"$any": True},
        {"$range": {"low": 1, "high": {"$float": "5.5"}, "include_high": True}},
        {"$range": {"low": "a"}},
        {"$regex": "^a"},
        {"$prefix": {"$uri": "ts://n1/"}},
        {"$oneof": ["a", 3, {"$float": "1.5"}, {"$uri": "u"}]},
        {"$xpath": "/a"},
        ["x", {"$map": {"k": {"$formal": "float"}, "$k": 1}}],
        [1, {"$formal": "str"}],
        {"m": {"$any": True}},
    ]
    compiled = ts.Template(template)
    assert ts.template_to_wire(compiled) == ts.template_to_wire(template)
    assert ts.encode_template(ts.decode_template(ts.encode_template(template))) == ts.encode_template(
        template
    )


class Level(enum.IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    ("template", "path", "word"),
    [
        ((1, ts.Pred(bool)), "[1]", "Pred"),
        (("a", {"k": [1, ts.Pred(bool)]}), '[1]["k"][1]', "Pred"),
        ((Level,), "[0]", "Level"),
    ],
)
def test_templates_without_wire_form(template: Any, path: str, word: str) -> None:
    assert not ts.Template(template).wire_safe
    with pytest.raises(ts.InvalidTemplate, match=word) as info:
        ts.template_to_wire(template)
    assert info.value.path == path
    assert "no wire form" in str(info.value)
    with pytest.raises(ts.InvalidTemplate):
        ts.encode_template(template)


def test_oneof_is_written_in_one_order() -> None:
    values = ["b", "a", 10, 9, (1,), {"k": 1}, ts.URI("u"), b"x", 1.5, True, None]
    expected = ts.encode_template((ts.OneOf(*values),))
    for seed in range(20):
        shuffled = values[:]
        random.Random(seed).shuffle(shuffled)
        assert ts.encode_template((ts.OneOf(*shuffled),)) == expected
    assert ts.encode_template((ts.OneOf("a", "a", "b"),)) == b'[{"$oneof":["a","b"]}]'


def test_template_limits() -> None:
    with pytest.raises(ts.ValueTooLarge) as info:
        ts.decode_template(b"[[[1]]]", ts.Limits(max_depth=2))
    assert info.value.path == "[0][0]"
    with pytest.raises(ts.ValueTooLarge):
        ts.decode_template(b'[{"a":{"b":1}}]', ts.Limits(max_depth=2))
    with pytest.raises(ts.ValueTooLarge):
        ts.decode_template(b"[1,2,3]", ts.Limits(max_fields=2))
    too_many = json.dumps([{"$oneof": list(range(2000))}])
    with pytest.raises(ts.InvalidTemplate):
        ts.decode_template(too_many)


# ---------------------------------------------------------------------------
# Properties

SAFE_KEYS = st.one_of(st.text(max_size=6), st.text(max_size=4).map(lambda s: "$" + s))
OFFSETS = st.sampled_from(
    [UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(-dt.timedelta(hours=8))]
)
URIS = st.text(
    st.characters(min_codepoint=0x21, exclude_categories=["Cs"], exclude_characters="\x7f"),
    min_size=1,
    max_size=30,
).map(ts.URI)
CREDITS = st.builds(
    lambda digits, exp: ts.Credit(Decimal(f"{digits}E{exp}")),
    st.integers(0, 10**30),
    st.integers(-30, 30),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.integers(-(2**1024) + 1, 2**1024 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.binary(max_size=40),
    st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS),
    URIS,
    CREDITS,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(SAFE_KEYS, children, max_size=5).map(ts.Map),
    ),
    max_leaves=25,
)
TUPLES = st.lists(VALUES, max_size=8).map(tuple)


@given(TUPLES)
def test_round_trip(t: tuple[Any, ...]) -> None:
    data = ts.encode(t)
    back = ts.decode(data)
    assert value_key(back) == value_key(t)
    assert ts.encode(back) == data
    assert value_key(ts.from_wire(json.loads(data))) == value_key(t)


@given(TUPLES)
def test_encoding_is_canonical(t: tuple[Any, ...]) -> None:
    data = ts.encode(t)
    assert stdlib_canonical(data) == data
    assert ts.encode(t) == data


@given(st.dictionaries(SAFE_KEYS, VALUES, max_size=8), st.randoms(use_true_random=False))
def test_map_bytes_do_not_depend_on_insertion_order(items: dict[str, Any], rnd: random.Random) -> None:
    pairs = list(items.items())
    rnd.shuffle(pairs)
    assert ts.encode(ts.Map(dict(pairs))) == ts.encode(ts.Map(items)) == ts.encode(dict(reversed(pairs)))


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.text()), max_size=10).map(tuple))
def test_fast_path_agrees(t: tuple[Any, ...]) -> None:
    try:
        expected = orjson.dumps(_codec.to_wire(t), option=orjson.OPT_SORT_KEYS)
    except ts.InvalidValue:
        with pytest.raises(ts.InvalidValue):
            ts.encode(t)
        return
    assert ts.encode(t) == expected


PATTERNS = st.sampled_from(["^a", "b$", "[0-9]+", "x|y", "(?i)job", ""])
XPATHS = st.sampled_from(["/a", "count(//b) > 1", "/order[@state='open']"])
RANGES = st.one_of(
    st.builds(ts.Range, st.integers(-100, 100), st.none() | st.floats(-1e3, 1e3), st.booleans()),
    st.builds(ts.Range, st.none(), st.text(max_size=3), st.booleans()),
    st.builds(ts.Range, st.binary(max_size=3), st.none()),
    st.builds(ts.Range, CREDITS, st.none()),
)
MARKERS = st.one_of(
    st.just(ts.ANY),
    st.sampled_from([*FORMAL_TYPES.values(), list, dict]),
    RANGES,
    PATTERNS.map(ts.Regex),
    st.one_of(st.text(max_size=3), st.binary(max_size=3), URIS).map(ts.Prefix),
    st.lists(VALUES, min_size=1, max_size=4).map(lambda vs: ts.OneOf(*vs)),
    XPATHS.map(ts.XPath),
)
FIELDS = st.recursive(
    st.one_of(SCALARS, MARKERS),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(SAFE_KEYS, children, max_size=4),
    ),
    max_leaves=15,
)


@settings(deadline=None)
@given(st.lists(FIELDS, max_size=6), st.lists(TUPLES, max_size=5))
def test_template_round_trip(fields: list[Any], samples: list[tuple[Any, ...]]) -> None:
    template = ts.Template(fields)
    data = ts.encode_template(template)
    assert stdlib_canonical(data) == data
    back = ts.decode_template(data)
    assert ts.encode_template(back) == data
    assert ts.encode_template(ts.template_from_wire(json.loads(data))) == data
    for t in samples:
        assert back.matches(t) == template.matches(t)


@given(TUPLES)
def test_a_tuple_read_as_a_template_matches_itself(t: tuple[Any, ...]) -> None:
    assert ts.decode_template(ts.encode(t)).matches(t)


# ---------------------------------------------------------------------------
# Floats, against a JavaScript engine


def _float_samples() -> list[float]:
    rnd = random.Random(20240501)
    xs: list[float] = []
    while len(xs) < 3000:
        x = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            xs.append(x)
    xs += [rnd.uniform(-1e6, 1e6) for _ in range(500)]
    xs += [float(rnd.getrandbits(rnd.randint(1, 80))) for _ in range(500)]
    xs += [round(rnd.uniform(0, 100), rnd.randint(0, 6)) for _ in range(500)]
    for e in range(-325, 309):
        for m in ("1", "5", "1.5", "9.999"):
            x = float(f"{m}e{e}")
            if math.isfinite(x):
                xs.append(x)
    xs += [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 1e21, 1e-7]
    xs += [math.nextafter(1e21, 0), math.nextafter(1e-6, 0), math.nextafter(1e-6, 1)]
    return xs


NODE_SCRIPT = """
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((hex) => String(Buffer.from(hex, 'hex').readDoubleLE(0)));
  process.stdout.write(JSON.stringify(out));
});
"""


def test_float_text_matches_javascript() -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed to check float formatting against JavaScript"
    xs = _float_samples()
    hexes = [struct.pack("<d", x).hex() for x in xs]
    result = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=json.dumps(hexes),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = json.loads(result.stdout)
    assert len(expected) == len(xs)
    mismatches = [
        (x, js, format_float(x)) for x, js in zip(xs, expected, strict=True) if js != format_float(x)
    ]
    assert mismatches == []


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips(x: float) -> None:
    text = format_float(x)
    assert float(text) == x
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?", text)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_float_text_of_non_finite(x: float) -> None:
    with pytest.raises(ts.InvalidValue):
        format_float(x)


# ---------------------------------------------------------------------------
# The specification document


def test_spec_names_every_tag_and_limit() -> None:
    spec = (DOCS / "wire-format.md").read_text(encoding="utf-8")
    for tag in ("$int", "$float", "$bytes", "$time", "$uri", "$credit", "$map"):
        assert f'"{tag}"' in spec
    for tag in ("$any", "$formal", "$range", "$regex", "$prefix", "$oneof", "$xpath"):
        assert f'"{tag}"' in spec
    for name in FORMAL_TYPES:
        assert f'"{name}"' in spec
    for limit in (
        "max_bytes",
        "max_depth",
        "max_fields",
        "int_bits",
        "credit_digits",
        "credit_length",
        "uri_length",
    ):
        assert limit in spec
    assert "wire-vectors.json" in spec
