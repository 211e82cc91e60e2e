"""Values: validation, normalisation, limits and typed keys."""

from __future__ import annotations

import collections
import datetime as dt
import math
import string
from decimal import Decimal
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuplespace as ts
from tuplespace import URI, Credit, Limits, Map
from tuplespace._values import MAX_INT_BITS, check_tuple, check_value, type_name, value_key

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))

# -- normalisation -----------------------------------------------------------------


def test_lists_become_tuples_and_dicts_become_maps_at_every_depth() -> None:
    t = check_tuple(["a", [1, [2]], {"k": [3, {"m": []}]}])
    assert t == ("a", (1, (2,)), Map({"k": (3, Map({"m": ()}))}))
    assert type(t) is tuple
    assert type(t[1]) is tuple
    assert type(t[1][1]) is tuple
    assert type(t[2]) is Map
    assert type(t[2]["k"]) is tuple
    assert type(t[2]["k"][1]) is Map
    assert type(t[2]["k"][1]["m"]) is tuple


def test_a_normal_tuple_is_returned_as_it_is() -> None:
    for t in [("a", 1, None), ("a", 1.5, b"x", (1, 2)), ()]:
        assert check_tuple(t) is t


def test_a_named_tuple_becomes_a_plain_tuple() -> None:
    Point = collections.namedtuple("Point", "x y")
    t = check_tuple(("p", Point(1, 2)))
    assert type(t[1]) is tuple
    assert t == ("p", (1, 2))
    assert type(check_tuple(Point(1, 2))) is tuple


def test_bytearray_and_memoryview_become_bytes() -> None:
    t = check_tuple((bytearray(b"ab"), memoryview(b"cd")))
    assert t == (b"ab", b"cd")
    assert all(type(x) is bytes for x in t)


def test_negative_zero_becomes_zero() -> None:
    t = check_tuple((-0.0, [-0.0], {"z": -0.0}))
    assert [math.copysign(1.0, x) for x in (t[0], t[1][0], t[2]["z"])] == [1.0, 1.0, 1.0]


def test_times_move_to_utc_keeping_the_instant() -> None:
    local = dt.datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=PLUS2)
    (t,) = check_tuple((local,))
    assert t.tzinfo is UTC
    assert t == local
    assert (t.hour, t.microsecond) == (12, 123456)
    utc = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert check_value(utc) is utc


def test_subclass_instances_are_kept_in_embedded_use() -> None:
    class Level(IntEnum):
        LOW = 1

    (v,) = check_tuple((Level.LOW,))
    assert v is Level.LOW
    assert type_name(v) == "int"


# -- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ts.InvalidValue, match="finite") as info:
        check_tuple(("x", [bad]))
    assert info.value.path == "[1][0]"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ts.InvalidValue, match="timezone") as info:
        check_tuple(({"at": dt.datetime(2024, 1, 1)},))
    assert info.value.path == '[0]["at"]'
    assert not isinstance(info.value, ts.UnsupportedType)


def test_lone_surrogates_are_refused_in_strings_and_keys() -> None:
    with pytest.raises(ts.InvalidValue, match="surrogate"):
        check_value("ok\udc80")
    with pytest.raises(ts.InvalidValue, match="surrogate"):
        check_value({"\ud800": 1})
    assert check_value("\U0001d11e é") == "\U0001d11e é"


def test_int_bit_limit() -> None:
    biggest = (1 << MAX_INT_BITS) - 1
    assert check_value(biggest) == biggest
    assert check_value(-biggest) == -biggest
    for too_big in (1 << MAX_INT_BITS, -(1 << MAX_INT_BITS)):
        with pytest.raises(ts.ValueTooLarge) as info:
            check_tuple(("n", too_big))
        assert (info.value.limit, info.value.maximum, info.value.path) == ("int_bits", MAX_INT_BITS, "[1]")


@pytest.mark.parametrize(
    "bad",
    [object(), {1, 2}, frozenset(), Decimal("1"), 1j, dt.date(2024, 1, 1), dt.time(12), print, ...],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_types_are_refused(bad: Any) -> None:
    with pytest.raises(ts.UnsupportedType) as info:
        check_tuple(("x", bad))
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)
    assert info.value.path == "[1]"


def test_decimal_points_to_credit() -> None:
    with pytest.raises(ts.UnsupportedType, match="Credit"):
        check_value(Decimal("1.5"))


@pytest.mark.parametrize("bad", ["abc", b"abc", 5, None, {"a": 1}, iter([1])])
def test_a_tuple_is_a_tuple_or_a_list(bad: Any) -> None:
    with pytest.raises(ts.UnsupportedType):
        check_tuple(bad)


def test_map_keys_are_str() -> None:
    with pytest.raises(ts.UnsupportedType, match="keys") as info:
        check_tuple(("m", {"ok": {1: "x"}}))
    assert info.value.path == '[1]["ok"]'


def test_error_paths_quote_keys_as_json() -> None:
    with pytest.raises(ts.InvalidValue) as info:
        check_tuple(("m", {'say "hi"': [0, {"é": float("nan")}]}))
    assert info.value.path == '[1]["say \\"hi\\""][1]["é"]'
    assert str(info.value) == f"{info.value.path}: {info.value.reason}"


# -- limits ------------------------------------------------------------------------


def test_max_fields_bounds_tuples_and_maps() -> None:
    limits = Limits(max_fields=2)
    check_tuple(("a", "b"), limits)
    with pytest.raises(ts.ValueTooLarge) as info:
        check_tuple(("a", "b", "c"), limits)
    assert (info.value.limit, info.value.maximum, info.value.path) == ("max_fields", 2, "")
    with pytest.raises(ts.ValueTooLarge) as info:
        check_tuple(("a", ("b", "c", "d")), limits)
    assert (info.value.limit, info.value.path) == ("max_fields", "[1]")
    with pytest.raises(ts.ValueTooLarge) as info:
        check_tuple(("a", {"x": 1, "y": 2, "z": 3}), limits)
    assert (info.value.limit, info.value.path) == ("max_fields", "[1]")


def test_max_depth_counts_the_tuple_itself() -> None:
    limits = Limits(max_depth=3)
    check_tuple(("a", ("b", ("c",))), limits)
    check_tuple(("a", {"b": ["c"]}), limits)
    for deep, path in [(("a", ("b", ("c", ("d",)))), "[1][1][1]"), (("a", {"b": [{"c": 1}]}), '[1]["b"][0]')]:
        with pytest.raises(ts.ValueTooLarge) as info:
            check_tuple(deep, limits)
        assert (info.value.limit, info.value.maximum, info.value.path) == ("max_depth", 3, path)


def test_the_default_depth_limit_refuses_absurd_nesting() -> None:
    t: Any = "leaf"
    for _ in range(10_000):
        t = (t,)
    with pytest.raises(ts.ValueTooLarge) as info:
        check_tuple(t)
    assert info.value.limit == "max_depth"


def test_max_bytes_bounds_the_encoded_size() -> None:
    limits = Limits(max_bytes=100)
    check_tuple(("x" * 50,), limits)
    for big in [("x" * 200,), (b"\x00" * 100,), tuple(range(40)), ("é" * 60,), ({"k" * 100: 1},)]:
        with pytest.raises(ts.ValueTooLarge) as info:
            check_tuple(big, limits)
        assert (info.value.limit, info.value.maximum) == ("max_bytes", 100)
        assert isinstance(info.value, ValueError)


def test_max_bytes_is_exact_at_the_boundary() -> None:
    size = len(ts.encode(("x" * 50,)))
    check_tuple(("x" * 50,), Limits(max_bytes=size))
    with pytest.raises(ts.ValueTooLarge):
        check_tuple(("x" * 50,), Limits(max_bytes=size - 1))


@pytest.mark.parametrize("field", ["max_fields", "max_depth", "max_bytes"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_limits_must_be_positive_ints(field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: bad})


def test_limits_are_frozen() -> None:
    limits = Limits()
    with pytest.raises(AttributeError):
        limits.max_fields = 3  # type: ignore[misc]


# -- URI, Credit, Map --------------------------------------------------------------


def test_uri_is_its_own_type() -> None:
    u = URI("tuplespace://node-1/spaces/jobs")
    assert u == URI("tuplespace://node-1/spaces/jobs")
    assert u != "tuplespace://node-1/spaces/jobs"
    assert u != "tuplespace://node-1/spaces/jobs"
    assert hash(u) == hash(URI(str(u)))
    assert str(u) == "tuplespace://node-1/spaces/jobs"
    assert repr(u) == "URI('tuplespace://node-1/spaces/jobs')"
    assert URI(u) == u
    assert len({u, str(u)}) == 2


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", ts.InvalidValue),
        ("a b", ts.InvalidValue),
        ("a\nb", ts.InvalidValue),
        ("a\x7f", ts.InvalidValue),
        (b"a", ts.UnsupportedType),
        (5, ts.UnsupportedType),
        ("x" * 8193, ts.ValueTooLarge),
    ],
)
def test_uri_validation(text: Any, error: type) -> None:
    with pytest.raises(error):
        URI(text)


def test_uri_is_immutable() -> None:
    u = URI("a")
    with pytest.raises(AttributeError):
        u._text = "b"
    assert str(u) == "a"


def test_credit() -> None:
    assert Credit("12.50") == Decimal("12.5")
    assert repr(Credit("12.50")) == "Credit('12.50')"
    assert Credit(3) == 3
    assert Credit(Decimal("0.1")) == Decimal("0.1")
    assert Credit() == 0
    assert Credit("-0") == 0
    assert isinstance(Credit("1"), Decimal)


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (1.5, ts.UnsupportedType),
        (True, ts.UnsupportedType),
        ("-1", ts.InvalidValue),
        ("NaN", ts.InvalidValue),
        ("Infinity", ts.InvalidValue),
        ("abc", ts.InvalidValue),
        ("1" * 41, ts.ValueTooLarge),
    ],
)
def test_credit_validation(amount: Any, error: type) -> None:
    with pytest.raises(error):
        Credit(amount)


def test_map_is_an_immutable_mapping() -> None:
    m = Map({"temp": 21.5}, unit="C")
    assert dict(m) == {"temp": 21.5, "unit": "C"}
    assert m["unit"] == "C"
    assert len(m) == 2
    assert "temp" in m
    with pytest.raises(TypeError):
        m["unit"] = "F"  # type: ignore[index]
    assert hash(m) == hash(Map({"unit": "C", "temp": 21.5}))
    assert repr(Map({"a": 1})) == "Map({'a': 1})"


def test_a_stored_map_does_not_follow_the_dict_it_came_from() -> None:
    d: dict[str, Any] = {"k": [1]}
    m = check_value(d)
    d["k"].append(2)
    d["j"] = 3
    assert dict(m) == {"k": (1,)}


def test_type_names() -> None:
    samples = [
        (None, "null"),
        (True, "bool"),
        (1, "int"),
        (1.5, "float"),
        ("s", "str"),
        (b"b", "bytes"),
        (URI("u"), "uri"),
        (Credit("1"), "credit"),
        ((1,), "tuple"),
        (Map(), "map"),
    ]
    for value, name in samples:
        assert type_name(value) == name
    assert type_name(dt.datetime(2024, 1, 1, tzinfo=UTC)) == "time"
    assert type_name({"a": 1}) == "map"
    assert type_name(object()) == "object"


# -- typed keys --------------------------------------------------------------------

uris = st.text(string.ascii_letters + string.digits + ":/._-", min_size=1, max_size=6).map(URI)
credits = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False).map(
    Credit
)
times = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, PLUS2]),
)
SMALL = [
    None,
    True,
    False,
    0,
    1,
    2,
    0.0,
    -0.0,
    1.0,
    2.5,
    "",
    "1",
    "a",
    b"",
    b"1",
    URI("1"),
    URI("a"),
    Credit("0"),
    Credit("1"),
    Credit("1.0"),
    Credit("2.50"),
    (),
    (1,),
    (1.0,),
    (True,),
    Map(),
    Map(a=1),
    Map(a=1.0),
    Map(a=True),
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 1, 1, 2, tzinfo=PLUS2),
]
scalars = st.one_of(
    st.sampled_from(SMALL),
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=4),
    st.binary(max_size=4),
    uris,
    credits,
    times,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3).map(Map),
    ),
    max_leaves=6,
)
close_values = st.recursive(
    st.sampled_from(SMALL),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2).map(Map),
    ),
    max_leaves=3,
)


def kind(v: Any) -> str:
    for t, name in [
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (bytes, "bytes"),
        (URI, "uri"),
        (Credit, "credit"),
        (dt.datetime, "time"),
        (tuple, "tuple"),
        (Map, "map"),
    ]:
        if isinstance(v, t):
            return name
    assert v is None
    return "null"


def typed_equal(a: Any, b: Any) -> bool:
    """The reference: same kind, then equal; element-wise for tuples and maps."""
    if kind(a) != kind(b):
        return False
    if kind(a) == "tuple":
        return len(a) == len(b) and all(typed_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind(a) == "map":
        return a.keys() == b.keys() and all(typed_equal(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(values, values), st.tuples(close_values, close_values)))
def test_value_keys_are_equal_exactly_for_typed_equal_values(pair: tuple[Any, Any]) -> None:
    a, b = (check_value(v) for v in pair)
    ka, kb = value_key(a), value_key(b)
    assert (ka == kb) == typed_equal(a, b)
    if ka == kb:
        assert hash(ka) == hash(kb)
        assert len({ka, kb}) == 1


@settings(max_examples=200, deadline=None)
@given(st.tuples(close_values, close_values))
def test_typed_equal_values_encode_to_the_same_bytes(pair: tuple[Any, Any]) -> None:
    a, b = (check_value(v) for v in pair)
    assert (ts.encode((a,)) == ts.encode((b,))) == (value_key(a) == value_key(b))


@settings(max_examples=200, deadline=None)
@given(values)
def test_normalising_is_idempotent_and_keeps_the_value(v: Any) -> None:
    once = check_value(v)
    twice = check_value(once)
    assert typed_equal(once, v)
    assert value_key(twice) == value_key(once) == value_key(v)
    assert kind(twice) == kind(once)


@settings(max_examples=100, deadline=None)
@given(st.lists(close_values, max_size=30))
def test_value_keys_index_a_dict_by_typed_equality(vs: list[Any]) -> None:
    vs = [check_value(v) for v in vs]
    index: dict[Any, list[Any]] = {}
    for v in vs:
        index.setdefault(value_key(v), []).append(v)
    for group in index.values():
        assert all(typed_equal(group[0], v) for v in group)
    keys = list(index)
    for i, k in enumerate(keys):
        for j in range(i):
            assert not typed_equal(index[k][0], index[keys[j]][0])


def test_value_key_distinguishes_the_classic_confusions() -> None:
    confusable = [
        1,
        1.0,
        True,
        Credit("1"),
        "1",
        b"1",
        URI("1"),
        (1,),
        (1.0,),
        (True,),
        Map(a=1),
        Map(a=True),
    ]
    keys = [value_key(v) for v in confusable]
    assert len(set(keys)) == len(confusable)
    assert value_key(0) != value_key(False)
    assert value_key(0.0) == value_key(-0.0)
    assert value_key(Credit("1")) == value_key(Credit("1.00"))
    assert value_key(dt.datetime(2024, 1, 1, tzinfo=UTC)) == value_key(
        dt.datetime(2024, 1, 1, 2, tzinfo=PLUS2)
    )


def test_value_key_refuses_what_is_not_a_value() -> None:
    with pytest.raises(ts.UnsupportedType):
        value_key(object())
