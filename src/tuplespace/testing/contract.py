"""The contract suite: what a space does (docs/semantics.md), written once and run over
every way of running a space.

Every test here uses the ``space`` (or ``make_space``, ``embedded_space``) fixture of
the kit's plugin and only the methods of :class:`tuplespace.Space`.  A test module
collects the suite by importing it whole::

    from tuplespace.testing.contract import *  # noqa: F403
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest

import tuplespace as ts
from tuplespace import ANY, URI, Credit, Map, OneOf, Pred, Prefix, Range, Regex, XPath
from tuplespace._values import check_value, value_key
from tuplespace.testing._threads import PATIENCE, spawn, wait_for_waiters, wait_until

UTC = dt.UTC


def typed(values: Any) -> list[tuple[str, Any]]:
    """Values as (type, typed key) pairs: equal lists mean equal values of equal types."""
    normal = [check_value(v) for v in values]
    return [(type(v).__name__, value_key(v)) for v in normal]


# -- writing, reading and taking ---------------------------------------------------


def test_write_then_read_returns_the_tuple_and_leaves_it(space: Any) -> None:
    space.write(("job", 1, "resize"))
    assert space.read(("job", int, str)) == ("job", 1, "resize")
    assert space.try_read(("job", 1, "resize")) == ("job", 1, "resize")
    assert space.count(("job", ANY, ANY)) == 1


def test_take_removes_the_tuple(space: Any) -> None:
    space.write(("job", 1, "resize"))
    assert space.take(("job", int, str)) == ("job", 1, "resize")
    assert space.try_take(("job", int, str)) is None
    assert space.count((ANY, ANY, ANY)) == 0
    assert space.statistics()["tuples"] == 0


def test_try_read_and_try_take_return_none_when_nothing_matches(space: Any) -> None:
    space.write(("job", 1))
    assert space.try_read(("job", 2)) is None
    assert space.try_take(("job", str)) is None
    assert space.try_read(("job", 1, ANY)) is None  # another arity
    assert space.count(("job", 1)) == 1


def test_lists_become_tuples_and_dicts_become_maps(space: Any) -> None:
    space.write(["point", [1, [2, 3]], {"unit": "m", "tags": ["a", "b"]}])
    t = space.read(("point", ANY, ANY))
    assert type(t) is tuple
    assert t[1] == (1, (2, 3))
    assert type(t[1]) is tuple
    assert type(t[1][1]) is tuple
    assert isinstance(t[2], Map)
    assert dict(t[2]) == {"unit": "m", "tags": ("a", "b")}
    assert space.try_take(("point", (1, (2, 3)), {"tags": ("a", "b")})) == t


def test_read_all_and_take_all_respect_order_and_limit(space: Any) -> None:
    space.write_many([("job", n) for n in range(6)])
    space.write(("other", 0))
    assert space.read_all(("job", int), limit=2) == [("job", 0), ("job", 1)]
    assert space.read_all(("job", int)) == [("job", n) for n in range(6)]
    assert space.read_all(("job", int), limit=0) == []
    assert space.take_all(("job", int), limit=3) == [("job", 0), ("job", 1), ("job", 2)]
    assert space.take_all(("job", ANY)) == [("job", 3), ("job", 4), ("job", 5)]
    assert space.take_all(("job", ANY)) == []
    assert space.read_all((str, int)) == [("other", 0)]


@pytest.mark.parametrize("limit", [-1, True, 1.5, "2"])
def test_an_invalid_limit_is_refused(space: Any, limit: Any) -> None:
    space.write(("job", 1))
    with pytest.raises(ts.InvalidValue) as info:
        space.take_all(("job", int), limit=limit)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ts.InvalidValue):
        space.read_all(("job", int), limit=limit)
    assert space.count(("job", int)) == 1


def test_count(space: Any) -> None:
    space.write_many([("a", 1), ("a", 2), ("a", "x"), ("b", 1), ("a", 1, 2)])
    assert space.count(("a", ANY)) == 3
    assert space.count(("a", int)) == 2
    assert space.count((ANY, 1)) == 2
    assert space.count((ANY, ANY)) == 4
    assert space.count((ANY, ANY, ANY)) == 1
    assert space.count(("c", ANY)) == 0
    assert space.count(()) == 0


def test_write_many_writes_in_order_and_returns_a_lease_each(space: Any) -> None:
    leases = space.write_many([("job", 2), ("job", 1), ("job", 3)])
    assert len(leases) == 3
    assert all(isinstance(lease, ts.Lease) for lease in leases)
    assert space.take_all(("job", int)) == [("job", 2), ("job", 1), ("job", 3)]


def test_write_many_writes_nothing_if_one_tuple_is_invalid(space: Any) -> None:
    space.write(("job", 0))
    with pytest.raises(ts.InvalidValue) as info:
        space.write_many([("job", 1), ("job", 2), ("job", float("nan")), ("job", 4)])
    assert info.value.path == "tuples[2][1]"
    assert "tuples[2][1]" in str(info.value)
    assert space.read_all(("job", ANY)) == [("job", 0)]
    assert space.statistics()["tuples"] == 1


def test_write_many_accepts_an_empty_list(space: Any) -> None:
    assert space.write_many([]) == []
    assert space.statistics()["tuples"] == 0


def test_a_compiled_template_can_be_reused(space: Any) -> None:
    template = ts.Template(("job", int))
    space.write_many([("job", 1), ("job", 2)])
    assert space.take(template) == ("job", 1)
    assert space.take(template) == ("job", 2)
    assert space.try_take(template) is None


def test_the_empty_tuple_is_a_tuple(space: Any) -> None:
    space.write(())
    assert space.count(()) == 1
    assert space.take(()) == ()
    assert space.try_take(()) is None


# -- order -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [("job", ANY), ("job", int), (str, int), (ANY, ANY), ("job", Range(0, 100)), ts.Template(("job", int))],
    ids=["exact", "formal", "no-exact", "all-any", "range", "compiled"],
)
def test_fifo_returns_the_oldest_match(space: Any, template: Any) -> None:
    for n in (3, 1, 4, 1, 5):
        space.write(("job", n))
    assert space.read(template) == ("job", 3)
    assert [space.take(template) for _ in range(5)] == [("job", n) for n in (3, 1, 4, 1, 5)]


def test_fifo_is_kept_among_tuples_with_the_same_values(space: Any) -> None:
    leases = [space.write(("job", 1)) for _ in range(3)]
    leases[1].cancel()
    space.write(("job", 1))
    assert space.take_all(("job", 1)) == [("job", 1)] * 3


@pytest.mark.parametrize(
    "template", [("job", ANY), ("job", int), (str, int)], ids=["exact", "formal", "scan"]
)
def test_lifo_returns_the_newest_match(make_space: Any, template: Any) -> None:
    space = make_space(order="lifo")
    for n in range(5):
        space.write(("job", n))
    assert space.read(template) == ("job", 4)
    assert space.read_all(template, limit=2) == [("job", 4), ("job", 3)]
    assert [space.take(template) for _ in range(5)] == [("job", n) for n in reversed(range(5))]


def test_random_order_returns_every_match_in_a_shuffled_order(make_space: Any) -> None:
    space = make_space(order="random", seed=7)
    expected = [("job", n) for n in range(60)]
    space.write_many(expected)
    seen = space.read_all(("job", int))
    assert sorted(seen) == expected
    assert seen != expected
    taken = [space.take(("job", int)) for _ in range(60)]
    assert sorted(taken) == expected
    assert taken != expected
    assert space.try_take(("job", int)) is None


def test_random_order_with_a_limit(make_space: Any) -> None:
    space = make_space(order="random", seed=3)
    space.write_many([("job", n) for n in range(20)])
    some = space.take_all(("job", int), limit=5)
    assert len(some) == 5
    assert len(set(some)) == 5
    assert space.count(("job", int)) == 15


def test_an_unknown_order_is_refused(make_space: Any) -> None:
    with pytest.raises(ValueError, match="order"):
        make_space(order="newest")


# -- typed equality ----------------------------------------------------------------


def test_equality_is_typed_in_templates_and_lookups(space: Any) -> None:
    values = [1, 1.0, True, "x", URI("x"), b"x", Credit("1"), (1,), (1.0,), (True,)]
    for v in values:
        space.write(("v", v))
    for v in values:
        found = space.read_all(("v", v))
        assert typed(t[1] for t in found) == typed([v]), v
        assert space.count(("v", v)) == 1
        assert typed([space.try_read(("v", v))[1]]) == typed([v])
    assert space.try_read(("v", 0)) is None
    assert space.try_read(("v", False)) is None
    assert typed([space.take(("v", True))[1]]) == typed([True])
    assert space.try_take(("v", True)) is None
    assert space.count(("v", 1)) == 1
    assert space.count(("v", 1.0)) == 1


def test_typed_equality_holds_for_waiting_calls(space: Any) -> None:
    taker = spawn(space.take, ("t", True))
    wait_for_waiters(space, 1)
    space.write_many([("t", 1), ("t", 1.0), ("t", "True")])
    assert space.statistics()["waiters"] == 1
    space.write(("t", True))
    assert taker.result(PATIENCE) == ("t", True)
    assert type(taker.result()[1]) is bool
    assert space.count(("t", ANY)) == 3


def test_equal_floats_match_whatever_their_sign_of_zero(space: Any) -> None:
    space.write(("z", -0.0))
    t = space.take(("z", 0.0))
    assert math.copysign(1.0, t[1]) == 1.0


def test_times_match_by_instant(space: Any) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    space.write(("t", dt.datetime(2024, 1, 1, 13, 0, tzinfo=paris)))
    t = space.take(("t", dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)))
    assert t[1] == dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert t[1].utcoffset() == dt.timedelta(0)


# -- template fields ---------------------------------------------------------------

T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
T1 = dt.datetime(2024, 6, 1, 12, tzinfo=UTC)
T2 = dt.datetime(2025, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 2025-01-01T00:00Z
MAP1 = Map({"temp": 21.5, "unit": "C"})
MAP2 = {"unit": "F"}

UNIVERSE: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    30,
    1.0,
    1.5,
    30.0,
    "x",
    "crop",
    "abc",
    b"abc",
    URI("x"),
    URI("tuplespace://node/a"),
    Credit("1"),
    Credit("2.5"),
    T1,
    T2,
    (1, "a"),
    (1,),
    (1.0,),
    (True,),
    (),
    MAP1,
    MAP2,
]

FIELD_CASES: list[tuple[str, Any, list[Any]]] = [
    ("ANY", ANY, UNIVERSE),
    ("formal-int-not-bool", int, [0, 1, 2, 30]),
    ("formal-bool", bool, [True, False]),
    ("formal-float", float, [1.0, 1.5, 30.0]),
    ("formal-str-not-uri", str, ["x", "crop", "abc"]),
    ("formal-bytes", bytes, [b"abc"]),
    ("formal-uri", URI, [URI("x"), URI("tuplespace://node/a")]),
    ("formal-credit", Credit, [Credit("1"), Credit("2.5")]),
    ("formal-time", dt.datetime, [T1, T2]),
    ("formal-tuple", tuple, [(1, "a"), (1,), (1.0,), (True,), ()]),
    ("formal-list-is-tuple", list, [(1, "a"), (1,), (1.0,), (True,), ()]),
    ("formal-map", Map, [MAP1, MAP2]),
    ("formal-dict-is-map", dict, [MAP1, MAP2]),
    ("formal-null", type(None), [None]),
    ("value-int", 1, [1]),
    ("value-float", 1.0, [1.0]),
    ("value-bool", True, [True]),
    ("value-str", "x", ["x"]),
    ("value-uri", URI("x"), [URI("x")]),
    ("value-credit", Credit("1.00"), [Credit("1")]),
    ("value-null", None, [None]),
    ("value-time-other-zone", dt.datetime(2025, 1, 1, tzinfo=UTC), [T2]),
    ("value-map", {"temp": 21.5, "unit": "C"}, [MAP1]),
    ("range", Range(1, 30), [1, 2, 1.0, 1.5, Credit("1"), Credit("2.5")]),
    (
        "range-include-high",
        Range(1, 30, include_high=True),
        [1, 2, 30, 1.0, 1.5, 30.0, Credit("1"), Credit("2.5")],
    ),
    ("range-float-low-only", Range(1.5), [2, 30, 1.5, 30.0, Credit("2.5")]),
    ("range-credit-high-only", Range(None, Credit("1.5")), [0, 1, 1.0, Credit("1")]),
    ("range-str", Range("b", "d"), ["crop"]),
    ("range-bytes", Range(b"a", b"b"), [b"abc"]),
    ("range-time", Range(T0, T2), [T1]),
    ("range-time-include-high", Range(T0, T2, include_high=True), [T1, T2]),
    ("regex-search", Regex("ro"), ["crop"]),
    ("regex-anchored", Regex("^x$"), ["x"]),
    ("regex-alternation", Regex("^(abc|crop)$"), ["crop", "abc"]),
    ("prefix-str", Prefix("ab"), ["abc"]),
    ("prefix-bytes", Prefix(b"ab"), [b"abc"]),
    ("prefix-uri", Prefix(URI("tuplespace://")), [URI("tuplespace://node/a")]),
    ("prefix-str-not-uri", Prefix("x"), ["x"]),
    ("one-of", OneOf(1, "x", b"abc"), [1, "x", b"abc"]),
    ("one-of-set", OneOf({1.0, None}), [None, 1.0]),
    ("one-of-typed", OneOf(False, 2.0), [False]),
    ("nested-formals", (int, str), [(1, "a")]),
    ("nested-any", (ANY,), [(1,), (1.0,), (True,)]),
    ("nested-exact", (1,), [(1,)]),
    ("nested-exact-float", (1.0,), [(1.0,)]),
    ("nested-list-template", [int, ANY], [(1, "a")]),
    ("nested-empty", (), [()]),
    ("nested-marker", (Range(0, 2), Prefix("a")), [(1, "a")]),
    ("map-subset", {"unit": str}, [MAP1, MAP2]),
    ("map-subset-value", {"unit": "C"}, [MAP1]),
    ("map-subset-range", {"temp": Range(20, 30)}, [MAP1]),
    ("map-empty", {}, [MAP1, MAP2]),
    ("map-missing-key", {"pressure": ANY}, []),
    ("compiled-template", ts.Template((int, str)), [(1, "a")]),
]


@pytest.mark.parametrize(("field", "expected"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_template_field(space: Any, field: Any, expected: list[Any]) -> None:
    space.write_many([("v", v) for v in UNIVERSE])
    found = space.read_all(("v", field))
    assert typed(t[1] for t in found) == typed(expected)
    assert space.count(("v", field)) == len(expected)
    first = space.try_take(("v", field))
    if expected:
        assert typed([first[1]]) == typed(expected[:1])
    else:
        assert first is None
    assert space.statistics()["tuples"] == len(UNIVERSE) - bool(expected)


def test_template_fields_combine(space: Any) -> None:
    space.write_many(
        [
            ("order", 1, "open", {"total": Credit("12.50"), "items": 3}),
            ("order", 2, "closed", {"total": Credit("99"), "items": 1}),
            ("order", 3, "open", {"total": Credit("120"), "items": 9}),
            ("order", 4, "opening", {"total": Credit("5")}),
        ]
    )
    template: tuple[Any, ...] = (
        "order",
        Range(1, 4),
        OneOf("open", "closed"),
        {"total": Range(Credit("10"), Credit("100"))},
    )
    assert [t[1] for t in space.read_all(template)] == [1, 2]
    template = ("order", int, Regex("^open$"), {"items": Range(2, None)})
    assert [t[1] for t in space.read_all(template)] == [1, 3]


def test_xpath_matches_xml_values(space: Any) -> None:
    docs = [
        "<order state='open'><item>crop</item></order>",
        b"<order state='closed'><item>blur</item><item>crop</item></order>",
        "<order state='open'",  # not well-formed
        "just text",
        5,
        URI("x"),
    ]
    space.write_many([("doc", d) for d in docs])
    assert [t[1] for t in space.read_all(("doc", XPath("/order[@state='open']")))] == [docs[0]]
    assert [t[1] for t in space.read_all(("doc", XPath("/order")))] == docs[:2]
    assert [t[1] for t in space.read_all(("doc", XPath("count(//item) > 1")))] == [docs[1]]
    assert [t[1] for t in space.read_all(("doc", XPath("//item[text()='crop']")))] == docs[:2]
    assert space.read_all(("doc", XPath("/invoice"))) == []
    assert space.read_all(("doc", XPath("count(//item) - 1"))) == [("doc", docs[1])]


HOSTILE_XML = [
    # an internal entity: XPath must not see its replacement text
    '<!DOCTYPE r [<!ENTITY e "EXPANDED">]><r a="&e;">&e;</r>',
    # an external entity: the file must not be read
    '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
    # a billion laughs
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + "]><r>&l9;</r>",
]


@pytest.mark.parametrize("doc", HOSTILE_XML, ids=["internal-entity", "external-entity", "billion-laughs"])
def test_xpath_never_expands_entities(space: Any, doc: str) -> None:
    space.write(("doc", doc))
    for expression in (
        "/r[contains(., 'EXPANDED')]",
        "/r[@a='EXPANDED']",
        "/r[contains(., 'root:')]",
        "/r[contains(., 'lol')]",
        "string-length(/r) > 100",
    ):
        assert space.read_all(("doc", XPath(expression))) == [], expression
    assert space.count(("doc", str)) == 1


def test_a_map_template_matches_maps_only(space: Any) -> None:
    space.write_many([("m", {}), ("m", ()), ("m", "unit"), ("m", {"unit": "C", "extra": (1, 2)})])
    assert [t[1] for t in space.read_all(("m", {}))] == [Map(), Map({"unit": "C", "extra": (1, 2)})]
    assert [t[1] for t in space.read_all(("m", {"extra": (int, 2)}))] == [Map({"unit": "C", "extra": (1, 2)})]
    assert space.read_all(("m", {"extra": (int, 3)})) == []


def test_nested_templates_go_deep(space: Any) -> None:
    space.write(("tree", (1, (2, (3, "leaf")))))
    space.write(("tree", (1, (2, (3, b"leaf")))))
    assert space.read_all(("tree", (1, (int, (ANY, str))))) == [("tree", (1, (2, (3, "leaf"))))]
    assert space.read_all(("tree", (1, (2, (3, "leaf"))))) == [("tree", (1, (2, (3, "leaf"))))]
    assert space.read_all(("tree", (1, (2, ANY)))) == [
        ("tree", (1, (2, (3, "leaf")))),
        ("tree", (1, (2, (3, b"leaf")))),
    ]
    assert space.read_all(("tree", (1, (2,)))) == []


class Color(IntEnum):
    RED = 1
    GREEN = 2


class Kind(StrEnum):
    JOB = "job"
    RESULT = "result"


def test_formals_match_subclasses_in_embedded_use(embedded_space: Any) -> None:
    space = embedded_space
    space.write_many([("c", Color.RED), ("c", 1), ("c", True), ("c", Color.GREEN)])
    assert space.read_all(("c", Color)) == [("c", Color.RED), ("c", Color.GREEN)]
    assert space.read_all(("c", Color))[0][1] is Color.RED
    assert [t[1] for t in space.read_all(("c", int))] == [Color.RED, 1, Color.GREEN]
    # an IntEnum member is an int: equal to the int it stands for, not to True
    assert [t[1] for t in space.read_all(("c", 1))] == [Color.RED, 1]
    assert [t[1] for t in space.read_all(("c", Color.RED))] == [Color.RED, 1]
    assert [t[1] for t in space.read_all(("c", Range(2, 3)))] == [Color.GREEN]


def test_str_subclasses_are_str_for_every_field_kind(embedded_space: Any) -> None:
    space = embedded_space
    space.write_many([(Kind.JOB, 1), ("job", 2), (Kind.RESULT, 3), (URI("job"), 4)])
    for field in (Kind.JOB, "job", Regex("^jo"), Prefix("jo"), OneOf("job"), Range("j", "k")):
        assert [t[1] for t in space.read_all((field, int))] == [1, 2], field
    assert [t[1] for t in space.read_all((Kind, int))] == [1, 3]
    assert [t[1] for t in space.read_all((str, int))] == [1, 2, 3]


def test_pred_fields_call_python(embedded_space: Any) -> None:
    space = embedded_space
    space.write_many([("n", n) for n in range(6)])
    assert space.read_all(("n", Pred(lambda v: v % 2 == 0))) == [("n", 0), ("n", 2), ("n", 4)]
    assert space.take(("n", Pred(lambda v: v > 3))) == ("n", 4)
    assert space.read_all(("n", {"k": Pred(bool)})) == []


def test_a_raising_pred_does_not_match_and_is_logged(
    embedded_space: Any, caplog: pytest.LogCaptureFixture
) -> None:
    space = embedded_space
    space.write_many([("n", 0), ("n", 1), ("n", 2)])
    with caplog.at_level(logging.ERROR, logger="tuplespace"):
        assert space.read_all(("n", Pred(lambda v: 1 / v > 0.6))) == [("n", 1)]
    assert any("predicate" in r.getMessage() for r in caplog.records)
    assert space.count(("n", int)) == 3


def test_a_raising_pred_in_a_waiter_does_not_break_the_writer(embedded_space: Any) -> None:
    space = embedded_space
    taker = spawn(space.take, ("n", Pred(lambda v: 1 / v > 0.6)))
    wait_for_waiters(space, 1)
    space.write(("n", 0))
    space.write(("n", 1))
    assert taker.result(PATIENCE) == ("n", 1)
    assert space.read_all(("n", int)) == [("n", 0)]


# -- blocking ----------------------------------------------------------------------


def test_read_waits_for_a_later_write_from_another_thread(space: Any) -> None:
    reader = spawn(space.read, ("job", int))
    wait_for_waiters(space, 1)
    assert not reader.done()
    writer = spawn(space.write, ("job", 7))
    assert reader.result(PATIENCE) == ("job", 7)
    writer.result(PATIENCE)
    assert space.count(("job", int)) == 1
    assert space.statistics()["waiters"] == 0


def test_take_waits_for_a_later_write_from_another_thread(space: Any) -> None:
    taker = spawn(space.take, ("job", int), timeout=PATIENCE * 10)
    wait_for_waiters(space, 1)
    spawn(space.write, ("job", 7)).result(PATIENCE)
    assert taker.result(PATIENCE) == ("job", 7)
    assert space.count(("job", int)) == 0


def test_a_write_of_another_tuple_does_not_wake_a_waiter(space: Any) -> None:
    a = spawn(space.take, ("a", int))
    wait_for_waiters(space, 1)
    b = spawn(space.take, ("b", int))
    wait_for_waiters(space, 2)
    space.write_many([("a", "x"), ("b", 1.0), ("c", 1), ("a", 1, 2)])
    assert space.statistics()["waiters"] == 2
    space.write(("b", 2))
    assert b.result(PATIENCE) == ("b", 2)
    assert space.statistics()["waiters"] == 1
    assert not a.done()
    space.write(("a", 1))
    assert a.result(PATIENCE) == ("a", 1)
    assert space.statistics()["tuples"] == 4


@pytest.mark.parametrize("op", ["read", "take"])
def test_timeout_zero_never_waits(space: Any, op: str) -> None:
    with pytest.raises(ts.Timeout):
        getattr(space, op)(("job", int), timeout=0)
    assert space.statistics()["waiters"] == 0
    space.write(("job", 1))
    assert getattr(space, op)(("job", int), timeout=0) == ("job", 1)


@pytest.mark.parametrize("op", ["read", "take"])
def test_a_timeout_raises_timeout_which_is_a_timeout_error(space: Any, op: str) -> None:
    space.write(("job", "not an int"))
    with pytest.raises(TimeoutError) as info:
        getattr(space, op)(("job", int), timeout=0.01)
    assert isinstance(info.value, ts.Timeout)
    assert isinstance(info.value, ts.TupleSpaceError)
    assert space.statistics()["waiters"] == 0
    assert space.read_all(("job", ANY)) == [("job", "not an int")]


def test_a_timed_out_take_takes_nothing_written_later(space: Any) -> None:
    with pytest.raises(ts.Timeout):
        space.take(("job", int), timeout=0.01)
    space.write(("job", 1))
    assert space.count(("job", int)) == 1
    assert space.statistics()["waiters"] == 0


@pytest.mark.parametrize("timeout", [-1, -0.5, float("nan"), True, "1"])
def test_an_invalid_timeout_is_refused(space: Any, timeout: Any) -> None:
    space.write(("job", 1))
    with pytest.raises(ts.InvalidValue) as info:
        space.take(("job", int), timeout=timeout)
    assert isinstance(info.value, ValueError)
    assert space.count(("job", int)) == 1
    assert space.statistics()["waiters"] == 0


def test_a_huge_timeout_waits_like_none(space: Any) -> None:
    taker = spawn(space.take, ("job", int), timeout=1e12)
    wait_for_waiters(space, 1)
    space.write(("job", 1))
    assert taker.result(PATIENCE) == ("job", 1)


def test_an_infinite_timeout_waits_forever(space: Any) -> None:
    taker = spawn(space.take, ("job", int), timeout=math.inf)
    wait_for_waiters(space, 1)
    space.write(("job", 1))
    assert taker.result(PATIENCE) == ("job", 1)


def test_a_write_hands_the_tuple_to_a_waiting_taker_without_storing_it(space: Any) -> None:
    taker = spawn(space.take, ("job", int))
    wait_for_waiters(space, 1)
    lease = space.write(("job", 1), lease=600)
    assert taker.result(PATIENCE) == ("job", 1)
    stats = space.statistics()
    assert stats["tuples"] == 0
    assert stats["waiters"] == 0
    assert space.try_read(("job", int)) is None
    with pytest.raises(ts.UnknownLease):
        lease.renew(60)


def test_a_write_copies_to_readers_that_arrived_before_the_taker(space: Any) -> None:
    readers = []
    for _ in range(2):
        readers.append(spawn(space.read, ("job", int)))
        wait_for_waiters(space, len(readers))
    taker = spawn(space.take, ("job", ANY))
    wait_for_waiters(space, 3)
    late_reader = spawn(space.read, (str, int))
    wait_for_waiters(space, 4)

    space.write(("job", 1))
    assert [r.result(PATIENCE) for r in readers] == [("job", 1), ("job", 1)]
    assert taker.result(PATIENCE) == ("job", 1)
    assert space.statistics()["waiters"] == 1
    assert space.statistics()["tuples"] == 0
    assert not late_reader.done()

    space.write(("job", 2))
    assert late_reader.result(PATIENCE) == ("job", 2)
    assert space.read_all(("job", ANY)) == [("job", 2)]


def test_a_write_copies_to_every_waiting_reader_and_is_stored(space: Any) -> None:
    readers = [spawn(space.read, ("job", int)) for _ in range(5)]
    wait_for_waiters(space, 5)
    space.write(("job", 1))
    assert [r.result(PATIENCE) for r in readers] == [("job", 1)] * 5
    assert space.count(("job", int)) == 1


def test_waiters_are_served_in_arrival_order(space: Any) -> None:
    takers = []
    for template in [("job", ANY), (str, 1), ("job", int), (ANY, ANY)]:
        takers.append(spawn(space.take, template))
        wait_for_waiters(space, len(takers))
    space.write(("job", 1))
    assert takers[0].result(PATIENCE) == ("job", 1)
    space.write(("job", 1))
    assert takers[1].result(PATIENCE) == ("job", 1)
    space.write(("job", 2))
    assert takers[2].result(PATIENCE) == ("job", 2)
    space.write(("job", 3))
    assert takers[3].result(PATIENCE) == ("job", 3)
    assert space.statistics()["tuples"] == 0


def test_a_waiter_arriving_later_is_served_after_earlier_ones(space: Any) -> None:
    takers = []
    for _ in range(5):
        takers.append(spawn(space.take, ("job", int)))
        wait_for_waiters(space, len(takers))
    space.write_many([("job", n) for n in range(5)])
    assert [t.result(PATIENCE) for t in takers] == [("job", n) for n in range(5)]


# -- group operations that wait (Linda's ing and rdg) ---------------------------------


def test_a_waiting_take_all_takes_several_at_once_up_to_its_limit(space: Any) -> None:
    taker = spawn(space.take_all, ("job", int), limit=3, timeout=PATIENCE * 10)
    wait_for_waiters(space, 1)
    assert not taker.done()
    space.write_many([("job", n) for n in range(5)])
    assert taker.result(PATIENCE) == [("job", 0), ("job", 1), ("job", 2)]
    assert space.read_all(("job", int)) == [("job", 3), ("job", 4)]
    assert space.statistics()["waiters"] == 0


def test_a_write_many_wakes_one_waiting_take_all_with_all_of_its_matches(space: Any) -> None:
    taker = spawn(space.take_all, ("job", int), timeout=None)
    wait_for_waiters(space, 1)
    space.write_many([("job", 1), ("other", 1), ("job", 2), ("job", "x"), ("job", 3)])
    assert taker.result(PATIENCE) == [("job", 1), ("job", 2), ("job", 3)]
    assert sorted(space.read_all((str, ANY))) == [("job", "x"), ("other", 1)]


def test_a_waiting_take_all_gets_what_a_single_write_brings(space: Any) -> None:
    taker = spawn(space.take_all, ("job", int), limit=10, timeout=math.inf)
    wait_for_waiters(space, 1)
    space.write(("job", 7))
    assert taker.result(PATIENCE) == [("job", 7)]
    assert space.statistics()["tuples"] == 0


def test_a_waiting_read_all_reads_every_match_and_leaves_them(space: Any) -> None:
    reader = spawn(space.read_all, ("job", int), timeout=PATIENCE * 10)
    wait_for_waiters(space, 1)
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    assert reader.result(PATIENCE) == [("job", 1), ("job", 2), ("job", 3)]
    assert space.count(("job", int)) == 3


def test_a_waiting_read_all_respects_its_limit(space: Any) -> None:
    reader = spawn(space.read_all, ("job", int), limit=2, timeout=None)
    wait_for_waiters(space, 1)
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    assert reader.result(PATIENCE) == [("job", 1), ("job", 2)]


@pytest.mark.parametrize("op", ["read_all", "take_all"])
def test_a_group_wait_that_runs_out_returns_an_empty_list_and_takes_nothing_later(
    space: Any, op: str
) -> None:
    space.write(("job", "not an int"))
    assert getattr(space, op)(("job", int), timeout=0.01) == []
    assert space.statistics()["waiters"] == 0
    space.write(("job", 1))
    assert space.read_all(("job", ANY)) == [("job", "not an int"), ("job", 1)]


@pytest.mark.parametrize("op", ["read_all", "take_all"])
def test_a_group_operation_without_a_timeout_or_with_zero_never_waits(space: Any, op: str) -> None:
    assert getattr(space, op)(("job", int)) == []
    assert getattr(space, op)(("job", int), timeout=0) == []
    assert getattr(space, op)(("job", int), limit=0, timeout=None) == []
    assert space.statistics()["waiters"] == 0
    space.write_many([("job", 1), ("job", 2)])
    assert getattr(space, op)(("job", int), limit=1, timeout=None) == [("job", 1)]


@pytest.mark.parametrize("op", ["read_all", "take_all"])
def test_a_group_operation_refuses_an_invalid_timeout(space: Any, op: str) -> None:
    space.write(("job", 1))
    with pytest.raises(ts.InvalidValue):
        getattr(space, op)(("job", int), timeout=-1)
    assert space.count(("job", int)) == 1


def test_a_waiting_take_all_is_served_in_arrival_order_with_other_takers(space: Any) -> None:
    first = spawn(space.take, ("job", int))
    wait_for_waiters(space, 1)
    group = spawn(space.take_all, ("job", int), timeout=None)
    wait_for_waiters(space, 2)
    last = spawn(space.take, ("job", int))
    wait_for_waiters(space, 3)
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    assert first.result(PATIENCE) == ("job", 1)
    assert group.result(PATIENCE) == [("job", 2), ("job", 3)]
    assert space.statistics()["waiters"] == 1
    space.write(("job", 4))
    assert last.result(PATIENCE) == ("job", 4)


def test_too_many_waiters_are_refused(make_space: Any) -> None:
    space = make_space(max_waiters=2)
    takers = [spawn(space.take, ("job", n)) for n in range(2)]
    wait_for_waiters(space, 2)
    with pytest.raises(ts.LimitReached) as info:
        space.take(("job", 9))
    assert info.value.limit == "max_waiters"
    assert info.value.maximum == 2
    assert space.statistics()["waiters"] == 2
    space.write_many([("job", 0), ("job", 1)])
    assert [t.result(PATIENCE) for t in takers] == [("job", 0), ("job", 1)]


# -- leases ------------------------------------------------------------------------


def test_a_tuple_without_a_lease_stays_forever(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    lease = space.write(("keep",))
    assert lease.expires_at is None
    clock.advance(100 * 365 * 86400)
    assert space.read(("keep",), timeout=0) == ("keep",)


def test_a_lease_expires_and_can_be_renewed_and_cancelled(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    lease = space.write(("presence", "node-1"), lease=30)
    assert lease.expires_at == clock.now() + 30
    clock.advance(20)
    lease.renew(30)
    assert lease.expires_at == clock.now() + 30
    clock.advance(20)
    assert space.count(("presence", str)) == 1
    lease.cancel()
    assert space.count(("presence", str)) == 0
    with pytest.raises(ts.UnknownLease):
        lease.renew(30)
    with pytest.raises(ts.UnknownLease):
        lease.cancel()


def test_a_lease_is_unknown_once_its_tuple_is_taken(space: Any) -> None:
    lease = space.write(("job", 1), lease=600)
    space.take(("job", 1))
    with pytest.raises(ts.UnknownLease) as info:
        lease.renew(60)
    assert isinstance(info.value, LookupError)
    with pytest.raises(ts.UnknownLease):
        lease.cancel()


def test_a_lease_is_unknown_once_its_tuple_expired(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    lease = space.write(("job", 1), lease=5)
    clock.advance(5)
    with pytest.raises(ts.UnknownLease):
        lease.renew(60)
    assert space.try_read(("job", 1)) is None


def test_renew_none_makes_a_lease_forever(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    lease = space.write(("job", 1), lease=5)
    lease.renew(None)
    assert lease.expires_at is None
    clock.advance(10**9)
    assert space.count(("job", 1)) == 1


def test_each_lease_of_write_many_is_its_own(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    leases = space.write_many([("a",), ("b",), ("c",)], lease=10)
    assert [lease.expires_at for lease in leases] == [clock.now() + 10] * 3
    leases[0].cancel()
    leases[1].renew(20)
    clock.advance(15)
    assert space.read_all((str,)) == [("b",)]


@pytest.mark.parametrize("lease", [0, -5, float("nan"), True, "10"])
def test_an_invalid_lease_is_refused_and_nothing_is_written(space: Any, lease: Any) -> None:
    with pytest.raises(ts.InvalidValue) as info:
        space.write(("job", 1), lease=lease)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ts.InvalidValue):
        space.write_many([("job", 2)], lease=lease)
    assert space.statistics()["tuples"] == 0


def test_an_invalid_renewal_keeps_the_lease(make_space: Any) -> None:
    clock = ts.SimulatedClock()
    space = make_space(clock=clock)
    lease = space.write(("job", 1), lease=10)
    with pytest.raises(ts.InvalidValue):
        lease.renew(-1)
    assert lease.expires_at == clock.now() + 10
    clock.advance(9)
    assert space.count(("job", 1)) == 1
    clock.advance(1)
    assert space.count(("job", 1)) == 0


# -- invalid input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "error", "path"),
    [
        (("a", object()), ts.UnsupportedType, "[1]"),
        (("a", {1, 2}), ts.UnsupportedType, "[1]"),
        (("a", Decimal("1.5")), ts.UnsupportedType, "[1]"),
        (("a", "b", {"temp": float("nan")}), ts.InvalidValue, '[2]["temp"]'),
        (("a", "b", {"temp": [1, float("inf")]}), ts.InvalidValue, '[2]["temp"][1]'),
        (("a", {"k": {3: "x"}}), ts.UnsupportedType, '[1]["k"]'),
        ((dt.datetime(2024, 1, 1),), ts.InvalidValue, "[0]"),
        (("a", "\ud800"), ts.InvalidValue, "[1]"),
        (("a", 1 << 1024), ts.ValueTooLarge, "[1]"),
    ],
    ids=[
        "object",
        "set",
        "decimal",
        "nan-in-map",
        "inf-deep",
        "int-map-key",
        "naive-time",
        "surrogate",
        "big-int",
    ],
)
def test_an_invalid_tuple_is_refused_naming_the_field(space: Any, t: Any, error: type, path: str) -> None:
    space.write(("before",))
    with pytest.raises(error) as info:
        space.write(t)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ts.InvalidValue)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")
    assert space.read_all((ANY,)) == [("before",)]
    assert space.statistics()["tuples"] == 1


@pytest.mark.parametrize("t", ["abc", 5, None, {"a": 1}, {"a", "b"}])
def test_a_tuple_must_be_a_tuple_or_list(space: Any, t: Any) -> None:
    with pytest.raises(ts.UnsupportedType) as info:
        space.write(t)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)
    assert space.statistics()["tuples"] == 0


def test_limits_on_fields_and_depth(make_space: Any) -> None:
    space = make_space(limits=ts.Limits(max_fields=3, max_depth=2))
    space.write(("a", "b", "c"))
    space.write(("a", ("b", "c")))
    with pytest.raises(ts.ValueTooLarge) as info:
        space.write(("a", "b", "c", "d"))
    assert (info.value.limit, info.value.maximum, info.value.path) == ("max_fields", 3, "")
    with pytest.raises(ts.ValueTooLarge) as info:
        space.write(("a", ("b", ("c",))))
    assert (info.value.limit, info.value.maximum, info.value.path) == ("max_depth", 2, "[1][1]")
    with pytest.raises(ts.ValueTooLarge) as info:
        space.write(("a", {"k": 1, "l": 2, "m": 3, "n": 4}))
    assert (info.value.limit, info.value.maximum, info.value.path) == ("max_fields", 3, "[1]")
    assert isinstance(info.value, ValueError)
    assert space.statistics()["tuples"] == 2


def test_a_limit_on_bytes(make_space: Any) -> None:
    space = make_space(limits=ts.Limits(max_bytes=1000))
    space.write(("blob", b"x" * 500))
    with pytest.raises(ts.ValueTooLarge) as info:
        space.write(("blob", b"x" * 2000))
    assert (info.value.limit, info.value.maximum) == ("max_bytes", 1000)
    with pytest.raises(ts.ValueTooLarge):
        space.write(("text", "é" * 1000))
    assert space.statistics()["tuples"] == 1


@pytest.mark.parametrize(
    ("template", "path"),
    [
        (("a", object()), "[1]"),
        (("a", {"k": object()}), '[1]["k"]'),
        (("a", ("b", object())), "[1][1]"),
        (("a", ("b", {"k": [1, set()]})), '[1][1]["k"][1]'),
        (("a", float("nan")), "[1]"),
        (("a", object), "[1]"),
        (("a", {1: ANY}), "[1]"),
    ],
    ids=["object", "map-key", "nested", "deep", "nan", "formal-object", "int-key"],
)
def test_an_invalid_template_is_refused_naming_the_field(space: Any, template: Any, path: str) -> None:
    space.write(("a", 1))
    calls: list[Callable[[], object]] = [
        lambda: space.take(template, timeout=0),
        lambda: space.read(template),
        lambda: space.try_take(template),
        lambda: space.take_all(template),
        lambda: space.count(template),
    ]
    for call in calls:
        with pytest.raises(ts.InvalidTemplate) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert info.value.path == path
        assert str(info.value).startswith(path + ": ")
    assert space.statistics()["waiters"] == 0
    assert space.count(("a", 1)) == 1


@pytest.mark.parametrize("template", ["abc", b"ab", 5, None, {"a": 1}])
def test_a_template_must_be_a_sequence_of_fields(space: Any, template: Any) -> None:
    with pytest.raises(ts.InvalidTemplate):
        space.try_read(template)


# -- closing -----------------------------------------------------------------------


def test_close_releases_waiting_calls_with_space_closed(space: Any) -> None:
    calls = []
    for op, template in [("take", ("a",)), ("read", ("b", int)), ("take", (ANY, ANY, ANY))]:
        calls.append(spawn(getattr(space, op), template))
        wait_for_waiters(space, len(calls))
    timed = spawn(space.take, ("c",), timeout=PATIENCE * 10)
    wait_for_waiters(space, 4)
    groups = [spawn(getattr(space, op), ("d", int), timeout=None) for op in ("take_all", "read_all")]
    wait_for_waiters(space, 6)
    space.close()
    for call in [*calls, timed, *groups]:
        with pytest.raises(ts.SpaceClosed):
            call.result(PATIENCE)
    # A server ends the waits of a closed client once it sees its connections close.
    wait_until(lambda: space.statistics()["waiters"] == 0, "the waits to end where the space is kept")
    assert space.statistics()["closed"] is True


def test_a_closed_space_refuses_writes_and_waits(space: Any) -> None:
    space.write(("a", 1))
    space.close()
    with pytest.raises(ts.SpaceClosed):
        space.write(("a", 2))
    with pytest.raises(ts.SpaceClosed):
        space.write_many([("a", 3)])
    with pytest.raises(ts.SpaceClosed):
        space.take(("b", 1))
    with pytest.raises(ts.SpaceClosed):
        space.read(("b", 1), timeout=PATIENCE)


def test_a_closed_space_refuses_every_later_call(space: Any) -> None:
    space.write(("a", 1))
    space.close()
    calls: list[Callable[[], object]] = [
        lambda: space.try_read(("a", 1)),
        lambda: space.try_take(("a", 1)),
        lambda: space.take(("a", 1)),
        lambda: space.read_all(("a", 1)),
        lambda: space.take_all(("a", 1)),
        lambda: space.count(("a", 1)),
    ]
    for call in calls:
        with pytest.raises(ts.SpaceClosed):
            call()


# -- indexes -----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_one_value_template_never_returns_other_tuples(make_space: Any, order: str) -> None:
    space = make_space(order=order)
    space.write(("z", "early"))
    space.write_many([("k", n) for n in range(6)])
    space.write_many([("z", n) for n in range(40)])
    space.write(("k", 99))
    space.write(("z", "late"))
    for n in range(1, 6):
        assert space.try_take(("k", n)) == ("k", n)
    for n in range(38):
        assert space.try_take(("z", n)) == ("z", n)
    assert space.count(("k", ANY)) == 2
    assert set(space.read_all(("k", ANY))) == {("k", 0), ("k", 99)}
    assert space.try_read(("k", ANY)) in {("k", 0), ("k", 99)}
    assert {space.take(("k", ANY)), space.take(("k", ANY))} == {("k", 0), ("k", 99)}
    assert space.count(("z", ANY)) == 4
