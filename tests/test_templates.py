"""Templates: compiling, matching field by field, errors and the compile cache."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from decimal import Decimal
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuplespace as ts
from tuplespace import ANY, URI, Credit, Map, OneOf, Pred, Prefix, Range, Regex, Template, XPath
from tuplespace._templates import FORMAL_TYPES, MAX_ONE_OF, MAX_PATTERN, compile_template
from tuplespace._values import value_key

UTC = dt.UTC


class Level(IntEnum):
    LOW = 1
    HIGH = 2


def test_the_docstring_example() -> None:
    t = Template(("job", int, Regex("^cr")))
    assert t.matches(("job", 2, "crop"))
    assert not t.matches(("job", True, "crop"))
    assert not t.matches(("job", 2, "scrap"))
    assert not t.matches(("job", 2))
    assert t.arity == 3


def test_exact_fields_and_checks_are_told_apart() -> None:
    t = Template(("job", ANY, int, (1, 2), (1, int), {"k": 1}))
    assert [pos for pos, _ in t.exact] == [0, 3]
    assert [pos for pos, _ in t.checks] == [2, 4, 5]


def test_wire_safety() -> None:
    assert Template(("a", int, ANY, Range(1, 2), Regex("x"), Prefix("p"), OneOf(1), XPath("/a"))).wire_safe
    assert Template(("a", URI, Credit, dt.datetime, Map, tuple, type(None))).wire_safe
    assert not Template(("a", Pred(bool))).wire_safe
    assert not Template(("a", Level)).wire_safe
    assert not Template(("a", (1, {"k": Pred(bool)}))).wire_safe
    assert not Template(("a", Template((Pred(bool),)))).wire_safe


def test_a_template_can_be_copied() -> None:
    t = Template(("a", int))
    u = Template(t)
    assert u.matches(("a", 1))
    assert (u.arity, u.fields, u.exact) == (t.arity, t.fields, t.exact)
    assert compile_template(t) is t


def test_a_nested_template_object_matches_tuples_only() -> None:
    inner = Template(("x",))
    t = Template(("v", inner))
    assert t.matches(("v", ("x",)))
    for other in ["x", b"x", Map(x=1), None, 1, ("y",), ("x", "x")]:
        assert not t.matches(("v", other)), other


def test_formals_name_wire_types_and_their_aliases() -> None:
    assert FORMAL_TYPES["uri"] is URI
    assert FORMAL_TYPES["map"] is Map
    assert Template((list,)).matches(((1, 2),))
    assert Template((dict,)).matches((Map(a=1),))
    assert not Template((dict,)).matches(((),))
    assert Template((type(None),)).matches((None,))
    assert not Template((type(None),)).matches((0,))


def test_int_formal_excludes_bool_but_includes_int_subclasses() -> None:
    t = Template((int,))
    assert t.matches((1,))
    assert t.matches((Level.LOW,))
    assert not t.matches((True,))
    assert not t.matches((1.0,))
    assert Template((bool,)).matches((False,))
    assert not Template((bool,)).matches((0,))
    assert Template((Level,)).matches((Level.HIGH,))
    assert not Template((Level,)).matches((2,))
    assert not Template((float,)).matches((1,))


# -- markers -----------------------------------------------------------------------


def test_range_bounds() -> None:
    r = Range(20, 30)
    assert [r.matches(v) for v in (19, 20, 21.5, 29.999, 30, 31)] == [False, True, True, True, False, False]
    assert Range(20, 30, include_high=True).matches(30)
    assert Range(20, 30, include_high=True).matches(30.0)
    assert Range(low=5).matches(10**100)
    assert Range(high=5).matches(-(10**100))
    assert not Range(0, 2).matches(True)
    assert Range(0, 2).matches(Credit("1.5"))
    assert Range(Credit("1"), 2.5).matches(2)
    assert not Range(0, 2).matches("1")
    assert Range("a", "b").matches("abc")
    assert not Range("a", "b").matches(b"abc")
    assert not Range("a", "b").matches(URI("abc"))
    assert Range(dt.datetime(2024, 1, 1, tzinfo=UTC)).matches(dt.datetime(2024, 6, 1, tzinfo=UTC))
    assert not Range(5, 1).matches(3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Range(),
        lambda: Range(1, "z"),
        lambda: Range(True, 5),
        lambda: Range(b"a", "b"),
        lambda: Range(0, float("inf")),
        lambda: Range(float("nan")),
        lambda: Range(dt.datetime(2024, 1, 1)),
        lambda: Range(None, (1, 2)),
        lambda: Range(1, 2, include_high=1),  # type: ignore[arg-type]
        lambda: Range(URI("a"), URI("b")),
    ],
    ids=["none", "mixed", "bool", "bytes-str", "inf", "nan", "naive", "tuple", "include-int", "uri"],
)
def test_invalid_ranges(make: Any) -> None:
    with pytest.raises(ts.InvalidTemplate):
        make()


def test_regex_searches() -> None:
    assert Regex("ro").matches("crop")
    assert not Regex("^ro").matches("crop")
    assert Regex("p$").matches("crop")
    assert not Regex("ro").matches(b"crop")
    assert not Regex("ro").matches(URI("crop"))
    assert not Regex("1").matches(1)
    assert Regex("(?i)CROP").matches("crop")
    assert Regex("").matches("")


@pytest.mark.parametrize(
    "pattern", ["(", "[a-", r"(a)\1", "(?=a)", b"abc", 5, "a" * (MAX_PATTERN + 1)], ids=str
)
def test_invalid_regexes(pattern: Any) -> None:
    with pytest.raises(ts.InvalidTemplate):
        Regex(pattern)


def test_regex_is_safe_from_catastrophic_backtracking() -> None:
    assert not Regex("^(a+)+$").matches("a" * 5000 + "b")


def test_prefix() -> None:
    assert Prefix("ab").matches("abc")
    assert Prefix("").matches("")
    assert not Prefix("ab").matches("a")
    assert not Prefix("ab").matches(b"abc")
    assert Prefix(b"ab").matches(b"abc")
    assert not Prefix(b"ab").matches("abc")
    assert Prefix(URI("tuplespace://n/")).matches(URI("tuplespace://n/x"))
    assert not Prefix(URI("tuplespace://n/")).matches("tuplespace://n/x")
    assert not Prefix("tuplespace").matches(URI("tuplespace://n/x"))
    for bad in (1, None, ("a",)):
        with pytest.raises(ts.InvalidTemplate):
            Prefix(bad)  # type: ignore[arg-type]


def test_one_of_is_typed() -> None:
    o = OneOf(1, "x", (1, 2), {"k": [1]})
    assert [o.matches(v) for v in (1, 1.0, True, "x", URI("x"), (1, 2), (1.0, 2))] == [
        True,
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    assert o.matches(Map(k=(1,)))
    assert OneOf(1, True).matches(True)
    assert OneOf(1, True).matches(1)
    assert not OneOf(1, True).matches(1.0)
    assert OneOf(frozenset({"a", "b"})).matches("b")
    assert OneOf(1, 2) == OneOf(2, 1)
    assert OneOf(1) != OneOf(True)
    assert hash(OneOf(1, 2)) == hash(OneOf(2, 1))
    assert repr(OneOf("a")) == "OneOf('a',)"


@pytest.mark.parametrize(
    "args", [(), (set(),), (object(),), (float("nan"),), tuple(range(MAX_ONE_OF + 1))], ids=str
)
def test_invalid_one_of(args: tuple[Any, ...]) -> None:
    with pytest.raises(ts.InvalidTemplate):
        OneOf(*args)


def test_xpath() -> None:
    x = XPath("/order[@state='open']")
    assert x.matches("<order state='open'/>")
    assert x.matches(b"<order state='open'/>")
    assert not x.matches("<order state='closed'/>")
    assert not x.matches("<order state='open'")
    assert not x.matches("")
    assert not x.matches(5)
    assert not x.matches(URI("x"))
    assert XPath("count(//i) = 2").matches("<a><i/><i/></a>")
    assert not XPath("count(//i) - 2").matches("<a><i/><i/></a>")
    assert not XPath("number('not a number')").matches("<a/>")
    assert not XPath("0 div 0").matches("<a/>")
    assert XPath("1 div 0").matches("<a/>")
    assert XPath("-0.5").matches("<a/>")
    assert not XPath("string(/a)").matches("<a></a>")
    assert XPath("string(/a)").matches("<a>x</a>")
    assert XPath("/a").matches('<?xml version="1.0" encoding="UTF-8"?><a/>')
    assert XPath("/a").matches('<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>'.encode("latin-1"))


def test_xpath_that_fails_to_evaluate_does_not_match() -> None:
    for expression in ("$undefined", "/ns:a", "unknown-function()"):
        assert not XPath(expression).matches("<a/>")


@pytest.mark.parametrize("expression", ["", "1 +", "//", "/a[", b"/a", 5, "/a" * MAX_PATTERN], ids=str)
def test_invalid_xpath(expression: Any) -> None:
    with pytest.raises(ts.InvalidTemplate):
        XPath(expression)


def test_xml_entities_are_not_expanded() -> None:
    internal = '<!DOCTYPE r [<!ENTITY e "EXPANDED">]><r a="&e;">&e;</r>'
    assert not XPath("/r[contains(., 'EXPANDED')]").matches(internal)
    assert not XPath("/r[@a='EXPANDED']").matches(internal)
    assert not XPath("/r").matches('<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>')
    assert XPath("/r").matches("<!DOCTYPE r><r>plain</r>")


def test_pred() -> None:
    assert Pred(lambda v: v > 2).matches(3)
    assert not Pred(lambda v: v > 2).matches(1)
    with pytest.raises(ts.InvalidTemplate):
        Pred(5)  # type: ignore[arg-type]


def test_a_raising_pred_is_logged_and_does_not_match(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="tuplespace"):
        assert not Pred(lambda v: 1 / 0).matches(1)
    assert [r.name for r in caplog.records] == ["tuplespace"]


def test_any_is_a_singleton_even_through_pickle() -> None:
    assert pickle.loads(pickle.dumps(ANY)) is ANY
    assert repr(ANY) == "ANY"


# -- compile errors ----------------------------------------------------------------


@pytest.mark.parametrize("fields", ["abc", b"abc", 5, None, {"a": 1}, Map(a=1)], ids=repr)
def test_a_template_is_a_sequence_of_fields(fields: Any) -> None:
    with pytest.raises(ts.InvalidTemplate) as info:
        Template(fields)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        (("a", object()), "[1]"),
        (("a", object), "[1]"),
        (("a", Decimal), "[1]"),
        (("a", set), "[1]"),
        (("a", Decimal("1")), "[1]"),
        (("a", 1 << 2000), "[1]"),
        (("a", dt.datetime(2024, 1, 1)), "[1]"),
        (("a", ("b", ("c", object()))), "[1][1][1]"),
        (("a", {"k": {"m": object()}}), '[1]["k"]["m"]'),
        (("a", {1: "x"}), "[1]"),
        (("a", [object()]), "[1][0]"),
    ],
    ids=[
        "object",
        "formal-object",
        "formal-decimal",
        "formal-set",
        "decimal",
        "big-int",
        "naive-time",
        "deep",
        "map",
        "int-key",
        "list",
    ],
)
def test_compile_errors_name_the_field(fields: Any, path: str) -> None:
    with pytest.raises(ts.InvalidTemplate) as info:
        Template(fields)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")


def test_too_many_fields_or_too_deep() -> None:
    with pytest.raises(ts.InvalidTemplate):
        Template([ANY] * 257)
    Template([ANY] * 256)
    deep: Any = (ANY,)
    for _ in range(40):
        deep = (deep,)
    with pytest.raises(ts.InvalidTemplate, match="deeper"):
        Template(deep)


# -- the compile cache -------------------------------------------------------------


def test_the_cache_never_confuses_equal_fields_of_other_types() -> None:
    lookalikes = [("a", 1), ("a", True), ("a", 1.0), ("a", Credit("1")), ("a", Level.LOW)]
    for _ in range(2):
        templates = [compile_template(f) for f in lookalikes]
        assert templates[0].matches(("a", 1))
        assert not templates[0].matches(("a", True))
        assert not templates[0].matches(("a", 1.0))
        assert templates[1].matches(("a", True))
        assert not templates[1].matches(("a", 1))
        assert templates[2].matches(("a", 1.0))
        assert not templates[2].matches(("a", 1))
        assert templates[3].matches(("a", Credit("1.00")))
        assert not templates[3].matches(("a", 1))
        assert templates[4].matches(("a", 1))


def test_compiling_never_confuses_nested_lookalikes() -> None:
    assert not compile_template(("a", (1,))).matches(("a", (True,)))
    assert not compile_template(("a", (True,))).matches(("a", (1,)))
    assert not compile_template(("a", {"k": 1})).matches(("a", Map(k=True)))
    assert not compile_template(("a", {"k": True})).matches(("a", Map(k=1)))
    assert not compile_template(("a", OneOf(1))).matches(("a", True))
    assert not compile_template(("a", OneOf(True))).matches(("a", 1))


FLAT_FIELDS = st.one_of(
    st.text(max_size=3),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    st.just(ANY),
    st.sampled_from([int, str, bool, float, bytes, type(None), tuple, dict, list]),
)
FLAT_VALUES = st.one_of(
    st.text(max_size=3),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)


@given(st.lists(FLAT_FIELDS, max_size=4), st.lists(st.lists(FLAT_VALUES, max_size=4), max_size=8))
def test_the_direct_compile_agrees_with_the_general_one(fields: list[Any], tuples: list[list[Any]]) -> None:
    direct, general = compile_template(tuple(fields)), Template(tuple(fields))
    assert direct.arity == general.arity
    for t in [tuple(fields if all(type(f) in (str, int) for f in fields) else ()), *map(tuple, tuples)]:
        assert direct.matches(t) == general.matches(t), t


PLAIN_VALUES = st.one_of(
    st.sampled_from(["1", "a", 0, 1, 2]), st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
)


@given(
    st.lists(PLAIN_VALUES, max_size=4).map(tuple),
    st.lists(
        st.one_of(PLAIN_VALUES, st.sampled_from([1.0, 0.0, True, False, URI("1"), Level.LOW, None])),
        max_size=4,
    ),
)
def test_a_template_of_plain_values_matches_by_typed_equality(
    fields: tuple[Any, ...], values: list[Any]
) -> None:
    """Every field a str or an int: a tuple matches when each value equals its field as a
    value of the wire (``True`` is not ``1``, ``1.0`` is not ``1``)."""
    for t in (tuple(values), fields, tuple(values[: len(fields)]) + fields[len(values) :]):
        expected = len(t) == len(fields) and all(
            value_key(v) == value_key(f) for v, f in zip(t, fields, strict=True)
        )
        assert compile_template(fields).matches(t) == Template(fields).matches(t) == expected, t


LOOKALIKES: list[Any] = [
    0,
    1,
    1.0,
    True,
    False,
    0.0,
    "1",
    b"1",
    URI("1"),
    Credit("1"),
    None,
    Level.LOW,
    ANY,
    int,
    bool,
    float,
    OneOf(1),
    OneOf(True),
    Range(0, 2),
    Range(0.0, 2.0),
]
VALUES: list[Any] = [0, 1, 1.0, True, False, 0.0, "1", b"1", URI("1"), Credit("1"), None, Level.LOW, 2, 1.5]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(LOOKALIKES), min_size=1, max_size=3).map(tuple), min_size=1, max_size=8
    ),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3).map(tuple),
)
def test_cached_templates_match_like_fresh_ones(
    fields_list: list[tuple[Any, ...]], t: tuple[Any, ...]
) -> None:
    for fields in fields_list:
        assert compile_template(fields).matches(t) == Template(fields).matches(t)


def test_an_xpath_with_a_control_character_is_an_invalid_template() -> None:
    with pytest.raises(ts.InvalidTemplate):
        XPath("/a\x00b")


@pytest.mark.parametrize("make", [Template, compile_template], ids=["Template", "compile_template"])
def test_a_formal_type_matches_values_of_that_type_only(make: Any) -> None:
    values: list[Any] = [1, 1.5, True, "s", b"b", (1,), None, Credit("1")]
    expected = {
        int: [1],
        float: [1.5],
        bool: [True],
        str: ["s"],
        bytes: [b"b"],
        tuple: [(1,)],
        list: [(1,)],
        Credit: [Credit("1")],
    }
    for kind, matching in expected.items():
        template = make(("k", kind, ANY, float))
        assert [v for v in values if template.matches(("k", v, 0, 2.5))] == matching, kind
        assert not template.matches(("k", matching[0], 0, 2))  # the second formal fails
