"""The exception tree: one root, built-ins mixed in where the meaning matches."""

from __future__ import annotations

import pytest

import tuplespace as ts

TREE = [
    (ts.Timeout, ts.TupleSpaceError, TimeoutError),
    (ts.InvalidValue, ts.TupleSpaceError, ValueError),
    (ts.UnsupportedType, ts.InvalidValue, TypeError),
    (ts.ValueTooLarge, ts.InvalidValue, ValueError),
    (ts.InvalidTemplate, ts.TupleSpaceError, ValueError),
    (ts.WireError, ts.TupleSpaceError, ValueError),
    (ts.LimitReached, ts.TupleSpaceError, Exception),
    (ts.UnknownLease, ts.TupleSpaceError, LookupError),
    (ts.SpaceClosed, ts.TupleSpaceError, Exception),
]


@pytest.mark.parametrize(("error", "parent", "builtin"), TREE, ids=[e[0].__name__ for e in TREE])
def test_the_tree(error: type, parent: type, builtin: type) -> None:
    assert issubclass(error, parent)
    assert issubclass(error, builtin)
    assert issubclass(error, ts.TupleSpaceError)


def test_not_a_value_error_where_the_meaning_differs() -> None:
    for error in (ts.Timeout, ts.LimitReached, ts.UnknownLease, ts.SpaceClosed):
        assert not issubclass(error, ValueError), error
    assert not issubclass(ts.InvalidTemplate, ts.InvalidValue)


def test_path_errors_carry_their_path_and_reason() -> None:
    e = ts.InvalidValue("float must be finite", '[2]["temp"]')
    assert (e.path, e.reason) == ('[2]["temp"]', "float must be finite")
    assert str(e) == '[2]["temp"]: float must be finite'
    assert str(ts.InvalidTemplate("bad")) == "bad"
    assert ts.InvalidTemplate("bad").path == ""


def test_limit_errors_name_the_limit() -> None:
    e = ts.ValueTooLarge("too many", "[1]", limit="max_fields", maximum=3)
    assert (e.limit, e.maximum, e.path) == ("max_fields", 3, "[1]")
    r = ts.LimitReached("full", limit="max_waiters", maximum=10)
    assert (r.limit, r.maximum, str(r)) == ("max_waiters", 10, "full")


def test_no_exception_shadows_a_builtin_name() -> None:
    import builtins

    for name in ts.__all__:
        obj = getattr(ts, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert not hasattr(builtins, name), name
