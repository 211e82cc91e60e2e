"""The text form of values, tuples and records (``ts.format`` / ``ts.parse``,
docs/records.md): what it looks like, that it round-trips exactly, and its errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tuplespace as ts
from test_codec import TUPLES, VALUES
from tuplespace._values import check_value, value_key

UTC = dt.UTC

EXAMPLES: list[tuple[Any, str]] = [
    (("job", 42, 1.5, True, None), '("job", 42, 1.5, true, null)'),
    ((), "()"),
    (("x",), '("x")'),
    ((1.0, -0.0, 1e21, 5e-7, -(2**70)), "(1.0, 0.0, 1e+21, 5e-07, -1180591620717411303424)"),
    (
        (b"\x00\xff", ts.URI("tuplespace://local/spaces/default/a")),
        '(bytes"AP8=", uri"tuplespace://local/spaces/default/a")',
    ),
    (
        (ts.Credit("12.50"), dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        '(credit"12.5", time"2024-05-01T12:00:00.5Z")',
    ),
    (({"unit": "C", "$odd": [1, 2]},), '({"unit": "C", "$odd": (1, 2)})'),
    (("tab\there", 'quote"d', "café"), '("tab\\there", "quote\\"d", "café")'),
    ((ts.Map(),), "({})"),
]


@pytest.mark.parametrize(("value", "text"), EXAMPLES, ids=[t for _, t in EXAMPLES])
def test_examples(value: Any, text: str) -> None:
    assert ts.format(value) == text
    assert value_key(ts.parse(text)) == value_key(check_value(value))


def test_a_record_is_written_with_its_address_version_and_tags() -> None:
    space = ts.Space()
    rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})
    rec.set("temp", 22.0)
    text = ts.format(rec)
    assert text == (
        '{$PK: uri"tuplespace://local/spaces/default/sensors/kitchen", $version: 2, temp: 22.0, unit: "C"}'
    )
    assert ts.parse(text) == rec.snapshot()
    assert ts.format(ts.parse(text)) == text


def test_whitespace_is_free_and_trailing_commas_are_accepted() -> None:
    assert ts.parse(' ( "a" ,\n 1 , ) ') == ("a", 1)
    assert ts.parse('{ "k" : 1 , }') == {"k": 1}
    data = ts.parse('{$PK:uri"x:y",n:1,}')
    assert isinstance(data, ts.RecordData)
    assert (data.address, data.fields, data.version) == (ts.URI("x:y"), {"n": 1}, 1)


def test_tags_that_look_like_numbers_or_words() -> None:
    data = ts.parse('{$PK: uri"x:y", 12abc: 1, -3: 2, 1e-5: 3, null: 4, true: 5}')
    assert isinstance(data, ts.RecordData)
    assert list(data.fields) == ["12abc", "-3", "1e-5", "null", "true"]
    assert ts.parse(ts.format(data)) == data


def test_typed_equality_holds_through_text() -> None:
    for value in (1, 1.0, True, ts.Credit(1), "1", ts.URI("1")):
        back = ts.parse(ts.format((value,)))
        assert type(back[0]) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(",
        "(1,,2)",
        "(1 2)",
        "{1: 2}",
        '{"a" 1}',
        '{"a": 1, "a": 2}',
        "nope",
        "bytes 1",
        'bytes"*"',
        'time"yesterday"',
        'uri""',
        'credit"-1"',
        "1e999",
        "(1) 2",
        "'single'",
        '"\\x"',
        "{$PK: 1}",
        '{$PK: uri"x:y", $version: -1}',
        '{$PK: uri"x:y", $level: 1}',
        '{$PK: uri"x:y", a: 1, a: 2}',
        '{$PK: uri"x:y", a.b: 1}',
        "(" * 200 + ")" * 200,
        "9" * 5000,
    ],
)
def test_what_is_not_the_text_form_is_a_wire_error(text: str) -> None:
    with pytest.raises((ts.WireError, ts.InvalidValue)) as info:
        ts.parse(text)
    assert isinstance(info.value, ValueError)


def test_errors_say_where() -> None:
    with pytest.raises(ts.WireError, match="offset 6"):
        ts.parse("(1, 2 3)")


TEMPLATES: list[tuple[str, Any]] = [
    ('("job", ?int, ?)', ("job", int, ts.ANY)),
    ("(? str,?float,?bool,?null)", (str, float, bool, type(None))),
    ("(?bytes, ?time, ?uri, ?credit, ?tuple, ?map)", (bytes, dt.datetime, ts.URI, ts.Credit, tuple, ts.Map)),
    (
        '("job", ("x", ?int), {"n": ?, "$m": 1.5}, bytes"AP8=")',
        ("job", ("x", int), {"n": ts.ANY, "$m": 1.5}, b"\x00\xff"),
    ),
    ("()", ()),
    ('{"unit": "C", "temp": ?float}', {"unit": "C", "temp": float}),
    (" ? ", ts.ANY),
]


@pytest.mark.parametrize(("text", "template"), TEMPLATES, ids=[t for t, _ in TEMPLATES])
def test_a_template_is_read_from_the_text_form(text: str, template: Any) -> None:
    assert ts.parse_template(text) == template


def test_a_template_read_from_text_matches_as_written_in_python() -> None:
    space = ts.Space()
    space.write(("job", 1, 2.5, {"n": (1, 2)}))
    space.write(("job", "one", 2.5, {"n": (1, 2)}))
    found = space.read_all(ts.parse_template('("job", ?int, ?float, {"n": (?, ?int)})'))
    assert found == [("job", 1, 2.5, ts.Map({"n": (1, 2)}))]
    space.create("sensors/kitchen", {"unit": "C", "temp": 21.5})
    space.create("sensors/hall", {"unit": "C", "temp": "warm"})
    [kitchen] = space.find(ts.parse_template('{"unit": "C", "temp": ?float}'))
    assert kitchen.address == space.record("sensors/kitchen").address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '("job", ?integer)',
            "unknown type 'integer'; types are null, bool, int, .* at offset 9 of the text",
        ),
        ('("job", ', "unexpected end of the text at offset 8 of the text"),
        ('("job" ?int)', "expected ',' or '\\)', found '\\?' at offset 7"),
        ('{$PK: uri"x:y"}', "a record is not a template at offset 1"),
        ("?int", "a template is a tuple, a map or \\? alone, not type"),
        ("1", "a template is a tuple, a map or \\? alone, not int"),
        ('(bytes"AP8")', "not a valid bytes"),
    ],
)
def test_text_that_is_not_a_template_is_a_wire_error_saying_where(text: str, message: str) -> None:
    with pytest.raises(ts.WireError, match=message):
        ts.parse_template(text)


def test_a_value_has_no_template_fields_and_a_template_is_checked() -> None:
    with pytest.raises(ts.WireError, match=r"'\?' \(any value\) is for templates: .* at offset 8"):
        ts.parse('("job", ?)')
    with pytest.raises(ts.InvalidTemplate):
        ts.parse_template("(" + ", ".join(["?"] * 300) + ")")
    with pytest.raises(ts.UnsupportedType):
        ts.parse_template(b"()")  # type: ignore[arg-type]


def test_format_refuses_what_is_not_a_value() -> None:
    with pytest.raises(ts.UnsupportedType):
        ts.format((object(),))
    with pytest.raises(ts.InvalidValue):
        ts.format((float("nan"),))
    with pytest.raises(ts.UnsupportedType):
        ts.parse(b"()")  # type: ignore[arg-type]


def test_limits_apply() -> None:
    with pytest.raises(ts.ValueTooLarge):
        ts.parse("(" + ", ".join(["1"] * 300) + ")")
    with pytest.raises(ts.ValueTooLarge):
        ts.parse("(1, 2, 3)", limits=ts.Limits(max_fields=2))


@given(TUPLES)
def test_tuples_round_trip(t: tuple[Any, ...]) -> None:
    text = ts.format(t)
    back = ts.parse(text)
    assert value_key(back) == value_key(ts.decode(ts.encode(t)))
    assert ts.format(back) == text


@given(VALUES)
def test_values_round_trip(v: Any) -> None:
    assert value_key(ts.parse(ts.format(v))) == value_key(ts.decode(ts.encode(v)))


TAGS = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
ADDRESSES = st.from_regex(r"[a-z]{1,8}(/[a-z0-9._~-]{1,8}){0,3}", fullmatch=True).map(
    lambda p: ts.URI("tuplespace://local/spaces/default/" + p)
)
RECORDS = st.builds(
    ts.RecordData,
    ADDRESSES,
    st.dictionaries(TAGS, VALUES, max_size=6),
    st.integers(0, 2**40),
)


@given(RECORDS)
def test_records_round_trip(data: ts.RecordData) -> None:
    text = ts.format(data)
    back = ts.parse(text)
    assert back == data
    assert ts.format(back) == text


# -- parse with a type (StrToTup) -------------------------------------------------------------

_WIRE_TYPE_OF = [(bool, bool), (int, int), (float, float), (str, str), (bytes, bytes)]
_WIRE_TYPE_OF += [(dt.datetime, dt.datetime), (ts.Credit, ts.Credit), (ts.URI, ts.URI), (tuple, tuple)]
_WIRE_TYPE_OF += [(type(None), type(None)), (ts.Map, ts.Map)]


def _wire_type(v: Any) -> type:
    for kind, wire in _WIRE_TYPE_OF:
        if type(v) is kind or (kind is not bool and kind is not int and isinstance(v, kind)):
            return wire
    raise AssertionError(f"no wire type for {v!r}")


@given(VALUES)
def test_a_typed_parse_reads_the_text_form_of_its_type(v: Any) -> None:
    v = check_value(v)
    assert value_key(ts.parse(ts.format(v), _wire_type(v))) == value_key(v)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("123", int, 123),
        ("-7", int, -7),
        ("1", float, 1.0),
        ("2.5e3", float, 2500.0),
        ("abc", str, "abc"),
        ("12", str, "12"),
        ('"q"', str, "q"),
        ("tuplespace://n/x", ts.URI, ts.URI("tuplespace://n/x")),
        ("12.5", ts.Credit, ts.Credit("12.5")),
        ("AP8=", bytes, b"\x00\xff"),
        ("2024-05-01T12:00:00Z", dt.datetime, dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("true", bool, True),
        ("null", type(None), None),
        ('(1, "a")', tuple, (1, "a")),
        ('{"a": 1}', dict, ts.Map({"a": 1})),
    ],
)
def test_a_typed_parse_reads_plain_text_of_its_type(text: str, kind: type, value: Any) -> None:
    out = ts.parse(text, kind)
    assert value_key(out) == value_key(check_value(value))


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("1.5", int, "the text is a float, not of type int"),
        ("abc", int, "'abc' is not of type int"),
        ("1", bool, "'1' is not of type bool"),
        ("(1, 2)", ts.Map, "is not of type map"),
        ('{$PK: uri"a:b", $version: 1}', ts.Map, "is not of type map"),
        ("not base64!", bytes, "not a valid bytes"),
    ],
)
def test_a_typed_parse_of_another_type_is_a_wire_error(text: str, kind: type, message: str) -> None:
    with pytest.raises(ts.WireError, match=message):
        ts.parse(text, kind)


@pytest.mark.parametrize("kind", [object, set, ts.Limits, ts.Record])
def test_a_type_that_is_not_a_wire_type_is_a_type_error(kind: Any) -> None:
    with pytest.raises(TypeError, match="type must be a wire type"):
        ts.parse("1", kind)


# -- the XML form -----------------------------------------------------------------------------


@given(TUPLES)
def test_tuples_round_trip_through_the_xml_form(t: tuple[Any, ...]) -> None:
    text = ts.format(t, form="xml")
    back = ts.parse(text, form="xml")
    assert value_key(back) == value_key(ts.decode(ts.encode(t)))
    assert ts.format(back, form="xml") == text


@given(RECORDS)
def test_records_round_trip_through_the_xml_form(data: ts.RecordData) -> None:
    text = ts.format(data, form="xml")
    assert ts.parse(text, form="xml") == data


def test_the_xml_form_of_a_tuple_and_a_record() -> None:
    t = ("job", 42, 1.5, None, True, b"\x00\xff", ts.Credit("12.50"), {"unit": "C"}, ("x",))
    assert ts.format(t, form="xml") == (
        "<tuple><str>job</str><int>42</int><float>1.5</float><null/><bool>true</bool>"
        "<bytes>AP8=</bytes><credit>12.5</credit><map><item><str>unit</str><str>C</str></item></map>"
        "<tuple><str>x</str></tuple></tuple>"
    )
    when = dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    data = ts.RecordData(ts.URI("tuplespace://local/spaces/default/a"), {"at": when}, 3)
    assert ts.format(data, form="xml") == (
        '<record address="tuplespace://local/spaces/default/a" version="3">'
        '<field tag="at"><time>2024-05-01T12:00:00.5Z</time></field></record>'
    )


def test_a_str_that_xml_cannot_carry_travels_as_base64() -> None:
    text = ts.format(("\x00\x1b[0m", "tab\tcr\r"), form="xml")
    assert '<str encoding="base64">' in text
    assert ts.parse(text, form="xml") == ("\x00\x1b[0m", "tab\tcr\r")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<tuple><int>1</int>", "not well-formed XML"),
        ("<tuple><int>1.5</int></tuple>", "not a valid int"),
        ("<set><int>1</int></set>", "unknown element <set>"),
        ("<tuple>loose<int>1</int></tuple>", "holds elements, not text"),
        ("<map><item><int>1</int><int>2</int></item></map>", "a <str> key and a value"),
        ("<bool>yes</bool>", "neither true nor false"),
        ("<null>x</null>", "holds no text"),
        ('<record address="a:b" version="x"></record>', "version must be"),
        ('<record address="a:b" version="\u00b2"></record>', "version must be"),
        (f'<record address="a:b" version="{"9" * 5000}"></record>', "version must be"),
        ('<record address="a:b"><field tag="n"><int>1</int><int>2</int></field></record>', "exactly one"),
    ],
)
def test_text_not_in_the_xml_form_is_a_wire_error(text: str, message: str) -> None:
    with pytest.raises(ts.WireError, match=message):
        ts.parse(text, form="xml")


def test_the_xml_form_resolves_no_entities_and_keeps_to_the_limits() -> None:
    secret = '<!DOCTYPE t [<!ENTITY e SYSTEM "file:///etc/passwd">]><str>&e;</str>'
    with pytest.raises(ts.WireError, match="no DOCTYPE"):
        ts.parse(secret, form="xml")
    laughs = (
        '<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><str>&b;</str>'
    )
    with pytest.raises(ts.WireError, match="no DOCTYPE"):
        ts.parse(laughs, form="xml")
    with pytest.raises(ts.ValueTooLarge):
        ts.parse("<tuple>" + "<int>1</int>" * 300 + "</tuple>", form="xml")
    with pytest.raises(ts.WireError, match="deeper than 2"):
        ts.parse(
            "<tuple><tuple><tuple><tuple/></tuple></tuple></tuple>", form="xml", limits=ts.Limits(max_depth=2)
        )
    with pytest.raises(ts.InvalidValue):
        ts.parse("<tuple><float>nan</float></tuple>", form="xml")
    with pytest.raises(ValueError, match='form must be "text" or "xml"'):
        ts.format((1,), form="json")
