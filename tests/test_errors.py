"""The exception tree: one root, built-ins mixed in where the meaning matches."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

import tuplespace as ts
from tuplespace._errors import ERRORS, WireCode
from tuplespace.client._common import error_code, error_from_answer
from tuplespace.server._errors import api_error, coded

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


# -- the error codes of the HTTP API -------------------------------------------------------------

JS = Path(__file__).resolve().parent.parent / "clients" / "js" / "src"


def _js_table() -> dict[str, str]:
    """The JavaScript binding's table: error code -> the name of the class it raises."""
    module = (JS / "http.js").read_text()
    block = re.search(r"^const ERRORS = \{\n(.*?)^\};$", module, re.MULTILINE | re.DOTALL)
    assert block is not None, "clients/js/src/http.js has no `const ERRORS = {...};`"
    return dict(re.findall(r"^ +(\w+): (\w+),$", block.group(1), re.MULTILINE))


def _public_parent(error: type) -> str:
    return next(c.__name__ for c in error.__mro__[1:] if c.__name__ in ts.__all__ or c is Exception)


def test_the_javascript_binding_raises_the_same_class_for_each_code() -> None:
    assert _js_table() == {row.code: row.error.__name__ for row in ERRORS}


def test_the_javascript_error_classes_form_the_same_tree() -> None:
    module = (JS / "errors.js").read_text()
    classes = dict(re.findall(r"^export class (\w+) extends (\w+) \{", module, re.MULTILINE))
    assert classes.pop("TupleSpaceError") == "Error"
    for name, parent in classes.items():
        assert name in ts.__all__, name
        assert _public_parent(getattr(ts, name)) == parent, name


def test_each_code_is_answered_with_one_status() -> None:
    statuses: dict[str, set[int]] = {}
    for row in ERRORS:
        statuses.setdefault(row.code, set()).add(row.status)
    assert all(len(s) == 1 for s in statuses.values()), statuses
    assert len(statuses) == len(ERRORS)


@pytest.mark.parametrize("row", ERRORS, ids=[row.code for row in ERRORS])
def test_the_python_client_raises_the_class_of_each_code(row: WireCode) -> None:
    body = orjson.dumps(
        {"error": {"code": row.code, "message": "no", "field": None, "limit": "x", "maximum": 1}}
    )
    error = error_from_answer(row.status, body, "http://127.0.0.1:1/spaces/s")
    assert type(error) is row.error
    assert (error_code(error), str(error)) == (row.code, "no")


def test_the_server_answers_an_exception_with_the_first_code_of_its_class() -> None:
    assert api_error(ts.TransactionError("ended")).body()["error"]["code"] == "transaction_ended"
    assert api_error(ts.InvalidValue("bad", "[1]"), "tuple").body()["error"] == {
        "code": "invalid_value",
        "message": "bad",
        "field": "tuple[1]",
    }
    lost = api_error(ts.UnknownLease("gone"))
    assert (lost.status, lost.code, lost.field) == (404, "unknown_lease", None)
    cycle = api_error(ts.RuleCycle("loops", ["a", "b", "a"]), "rule")
    assert (cycle.status, cycle.code, cycle.field) == (409, "rule_cycle", "rule")
    assert cycle.body()["error"]["cycle"] == ["a", "b", "a"]
    with pytest.raises(ts.Timeout):
        api_error(ts.Timeout("nothing"))


def test_the_server_answers_an_exception_with_the_code_it_carries_if_its_class_has_it() -> None:
    """A handler raises an error of the tree, with one of the codes of its class if not
    the first; the server answers the code and status of that row of the table."""
    claim = api_error(coded(ts.NotFound("no claim c"), "unknown_claim"), "confirm")
    assert (claim.status, claim.body()) == (
        404,
        {"error": {"code": "unknown_claim", "message": "no claim c", "field": "confirm"}},
    )
    cursor = api_error(coded(ts.InvalidValue("no cursors here", "cursor"), "bad_request"))
    assert (cursor.status, cursor.code, cursor.message, cursor.field) == (
        400,
        "bad_request",
        "no cursors here",
        "cursor",
    )
    assert api_error(coded(ts.NotFound("gone"), "forbidden")).code == "not_found"  # not a code of NotFound
    raised = error_from_answer(404, orjson.dumps(claim.body()), "http://127.0.0.1:1/spaces/s")
    assert (type(raised), raised.code) == (ts.NotFound, "unknown_claim")


def test_the_server_answers_each_code_of_the_table_with_its_status() -> None:
    """An ``ApiError`` of a code of the table has its status; an error of the tree named by a
    code (``coded(NotFound(…), "unknown_claim")``) has a code of its class."""
    status = {row.code: row.status for row in ERRORS}
    src = Path(ts.__file__).parent
    texts = {path.name: path.read_text() for path in sorted(src.rglob("*.py"))}
    answers = [
        (code, int(answered), name)
        for name, text in texts.items()
        for answered, code in re.findall(r'ApiError\(\s*(\d{3}),\s*"(\w+)"', text)
    ]
    named = [
        (kind, code, name)
        for name, text in texts.items()
        for kind, code in re.findall(r'coded\(\s*(\w+)\((?:[^()]|\([^()]*\))*\),\s*"(\w+)"\)', text)
    ]
    assert len(answers) > 50
    assert len(named) > 30
    head = ("value_too_large", 431)  # the head of a request is over its limit
    wrong = [a for a in answers if a[0] in status and a[:2] != head and status[a[0]] != a[1]]
    assert wrong == []
    rows = {(row.error.__name__, row.code) for row in ERRORS}
    assert [n for n in named if n[:2] not in rows] == []
