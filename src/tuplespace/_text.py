"""The text form of values, tuples and records: :func:`format` writes it, :func:`parse` reads it.

It is meant for people (logs, the command line, documents) where the wire format
is meant for programs, and it round-trips exactly: ``parse(format(x)) == x``, with
the typed equality of values.  ``docs/records.md`` specifies it::

    ("job", 42, 1.5, true, null, bytes"AP8=", time"2024-05-01T12:00:00.5Z")
    (uri"tuplespace://local/spaces/default/a", credit"12.5", {"unit": "C"}, (1, 2))
    {$PK: uri"tuplespace://local/spaces/default/sensors/kitchen", $version: 3, temp: 21.5, unit: "C"}

- ``null``, ``true``, ``false``; an int is its decimal digits; a float always has
  a ``.`` or an exponent (``1.0``, ``1e+21``); a str is a JSON string.
- bytes, time, URI and credit are a JSON string after their type's name: base64,
  RFC 3339 in UTC, the URI's text, the decimal amount (as in the wire format).
- A tuple is its values in parentheses, separated by commas (``("x")`` has one
  value); a map is ``{"key": value, ...}`` with JSON strings as keys.
- A record is braces holding ``$PK`` (its address), ``$version``, then its tags
  unquoted, each with its value.

Whitespace between tokens is free.  :func:`parse` raises :class:`WireError` (a
``ValueError``) for text that is not in this form, saying where.

:func:`parse_template` reads templates in the same form, where a field may also be
``?`` (:data:`ANY`) or ``?`` and a wire type's name (a formal: ``?int``)::

    ("job", ?int, ?)
    {"unit": "C", "temp": ?float}
"""

from __future__ import annotations

import base64
import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from ._codec import _bytes_from, _credit_from, _credit_text, _time_from, _time_text
from ._errors import InvalidValue, UnsupportedType, WireError
from ._recordhandles import RecordBase, RecordData
from ._templates import _FORMAL_CHECKS, ANY, FORMAL_TYPES, compile_template
from ._values import DEFAULT_LIMITS, URI, Credit, Limits, Map, Value, check_value

if TYPE_CHECKING:
    import datetime

__all__ = ["format", "parse", "parse_template"]


@runtime_checkable
class _Snapshots(Protocol):
    """A record handle of a remote space: what it holds comes from :meth:`snapshot`."""

    def snapshot(self) -> Any: ...


MAX_NESTING = 100

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\x00-\x1f]|\\.)*")
    | (?P<num>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_-]))
    | (?P<word>\$?[A-Za-z0-9_-]+)
    | (?P<punct>[(){}:,?])
    )""",
    re.VERBOSE,
)
_TAG = re.compile(r"[A-Za-z0-9_-]+")
_TYPED = ("bytes", "time", "uri", "credit")
_LITERALS: dict[str, Value] = {"null": None, "true": True, "false": False}


def format(value: Value | RecordData | RecordBase | _Snapshots, form: str = "text") -> str:
    """The text form of a value (a tuple, usually), of a :class:`RecordData`, or of a
    record handle (what it holds now), embedded or remote; with ``form="xml"`` its XML
    form (``docs/records.md``).

    >>> format(("job", 42, 1.5, None))
    '("job", 42, 1.5, null)'
    >>> format(("job", 42), form="xml")
    '<tuple><str>job</str><int>42</int></tuple>'

    Raises :class:`UnsupportedType` or :class:`InvalidValue` for what is not a value,
    and ``TypeError`` for an async remote handle (``format(await rec.snapshot())``).
    """
    if isinstance(value, RecordBase):
        value = value._snapshot()  # noqa: SLF001 (either face's embedded handle reads it at once)
    elif isinstance(value, _Snapshots):
        data = value.snapshot()
        if inspect.iscoroutine(data):
            data.close()
            raise TypeError("an async record handle: format(await record.snapshot())")
        value = data
    _check_form(form)
    if not isinstance(value, RecordData):
        value = check_value(value)
    if form == "xml":
        from ._xmlform import write_xml  # lxml, the 'xpath' extra: loaded by the first use

        return write_xml(value)
    return _record_text(value) if isinstance(value, RecordData) else _text(value)


def _check_form(form: object) -> None:
    if form not in ("text", "xml"):
        raise ValueError(f'form must be "text" or "xml", not {form!r}')


def _record_text(data: RecordData) -> str:
    parts = [f"$PK: {_text(data.address)}", f"$version: {data.version}"]
    parts.extend(f"{tag}: {_text(v)}" for tag, v in data.fields.items())
    return "{" + ", ".join(parts) + "}"


def _text(v: Value) -> str:
    t = type(v)
    if t is str:
        return orjson.dumps(v).decode()
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        text = repr(float(v))
        return text if "e" in text or "." in text else text + ".0"
    if isinstance(v, str):
        return orjson.dumps(str.__str__(v)).decode()
    if isinstance(v, bytes):
        return "bytes" + _quoted(base64.b64encode(v).decode("ascii"))
    if isinstance(v, URI):
        return "uri" + _quoted(str(v))
    if isinstance(v, Credit):
        return "credit" + _quoted(_credit_text(v))
    if isinstance(v, tuple):
        return "(" + ", ".join(map(_text, v)) + ")"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_quoted(k)}: {_text(x)}" for k, x in v.items()) + "}"
    time: datetime.datetime = v
    return "time" + _quoted(_time_text(time))


def _quoted(s: str) -> str:
    return orjson.dumps(s).decode()


def parse(text: str, type: type | None = None, *, form: str = "text", limits: Limits = DEFAULT_LIMITS) -> Any:
    """The value or record that ``text`` (in the text form, see :func:`format`, or with
    ``form="xml"`` the XML form) writes.

    >>> parse('("job", 42, 1.5, null)')
    ('job', 42, 1.5, None)

    With ``type`` (a wire type: ``int``, ``float``, ``str``, ``bool``, ``bytes``,
    ``datetime.datetime``, :class:`URI`, :class:`Credit`, ``tuple``, :class:`Map`,
    ``type(None)``), the answer is a value of that type: ``text`` in the text form of
    one, or else the plain text of one — digits for an int or a float, any text for
    a str, base64 for bytes, RFC 3339 for a time, a URI's or a decimal amount's text.

    >>> parse("123", int), parse("abc", str), parse("tuplespace://n/x", URI)
    (123, 'abc', URI('tuplespace://n/x'))

    Raises :class:`WireError` for text not in the text form (or not of ``type``),
    :class:`InvalidValue` or :class:`ValueTooLarge` for a value that is not valid
    (past ``limits``, a negative credit, ...), and ``TypeError`` for a ``type`` that
    is not a wire type.
    """
    if not isinstance(text, str):
        raise UnsupportedType(f"the text form is a str, not {_type_name(text)}")
    kind = None if type is None else _WIRE_NAMES.get(type)
    if type is not None and kind is None:
        raise TypeError(f"type must be a wire type ({', '.join(FORMAL_TYPES)}), not {type!r}")
    _check_form(form)
    if form == "xml":
        from ._xmlform import read_xml  # lxml, the 'xpath' extra: loaded by the first use

        out = read_xml(text, limits)
    elif len(text) > limits.max_bytes:
        raise WireError(f"the text is {len(text)} characters, more than {limits.max_bytes}")
    else:
        try:
            out = _read(text)
        except WireError:
            if kind is None:
                raise
            out = _plain(kind, text)
        else:
            if kind is not None and not _is(kind, out):
                out = _plain(kind, text)
    if kind is not None and not _is(kind, out):
        if not (kind == "float" and _is("int", out)):
            raise WireError(f"the text is a {_type_name(out)}, not of type {kind}")
        out = float(out)
    if isinstance(out, RecordData):
        return out
    return check_value(out, limits)


def parse_template(text: str) -> Any:
    """The template that ``text`` writes in the text form (see :func:`format`), where a
    field, at any depth, may also be ``?``, :data:`ANY`, or ``?`` followed by the name of
    a wire type, a formal (``?int`` is ``int``, ``?uri`` is :class:`URI`): a tuple
    template, a map of tags and fields (a record template, ``docs/records.md``), or
    ``?`` alone, :data:`ANY`, which :meth:`Space.subscribe` takes for every tuple.

    >>> parse_template('("job", ?int, ?)')
    ('job', <class 'int'>, ANY)
    >>> parse_template('{"unit": "C", "temp": ?float}')
    {'unit': 'C', 'temp': <class 'float'>}

    Raises :class:`WireError` for text not in this form (or longer than the default
    ``Limits.max_bytes``), saying where, and :class:`InvalidTemplate` for a template
    that is not valid (more than 256 fields, ...).
    """
    if not isinstance(text, str):
        raise UnsupportedType(f"the text form is a str, not {_type_name(text)}")
    if len(text) > DEFAULT_LIMITS.max_bytes:
        raise WireError(f"the text is {len(text)} characters, more than {DEFAULT_LIMITS.max_bytes}")
    out = _read(text, template=True)
    if out is not ANY and not isinstance(out, (tuple, dict)):
        raise WireError(f"a template is a tuple, a map or ? alone, not {_type_name(out)}")
    if out is not ANY:
        compile_template(out if isinstance(out, tuple) else (out,))
    return out


def _read(text: str, template: bool = False) -> Any:
    parser = _Parser(text, template)
    out = parser.value(0)
    if parser.peek() is not None:
        raise parser.error("expected the end of the text")
    return out


def _is(kind: str, v: object) -> bool:
    return not isinstance(v, RecordData) and _FORMAL_CHECKS[FORMAL_TYPES[kind]](v)


def _type_name(v: object) -> str:
    return type(v).__name__


# The wire types a ``type`` argument may name; dict and list as their wire types are.
_WIRE_NAMES: dict[object, str] = {kind: name for name, kind in FORMAL_TYPES.items()}
_WIRE_NAMES.update({dict: "map", list: "tuple"})


def _plain(kind: str, text: str) -> Any:
    """What ``text`` writes without the text form's marks, for a value of type ``kind``
    (the caller checks the type of a number)."""
    parser = _Parser(text)
    if kind == "str":
        return text
    if kind in ("int", "float") and _PLAIN_NUMBER.fullmatch(text.strip()):
        return _number(text.strip(), parser)
    if kind in _TYPED:
        return _typed(kind, text, parser)
    raise WireError(f"{text[:40]!r} is not of type {kind}, in the text form or plain")


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class _Parser:
    __slots__ = ("pos", "start", "template", "text", "token")

    def __init__(self, text: str, template: bool = False) -> None:
        self.text = text
        self.template = template  # whether ? fields may appear
        self.pos = 0  # where the next token is looked for
        self.start = 0  # where the latest token starts
        self.token: tuple[str, str] | None = None  # the next token, once peeked

    def error(self, message: str) -> WireError:
        return WireError(f"{message} at offset {self.start} of the text")

    def peek(self) -> tuple[str, str] | None:
        if self.token is None:
            m = _TOKEN.match(self.text, self.pos)
            if m is None:
                rest = self.text[self.pos :]
                self.start = self.pos + len(rest) - len(rest.lstrip())
                if rest.strip():
                    raise self.error(f"unexpected {rest.lstrip()[:20]!r}")
                return None
            kind = m.lastgroup
            assert kind is not None
            self.token = (kind, m[kind])
            self.start = m.start(kind)
            self.pos = m.end()
        return self.token

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of the text")
        self.token = None
        return token

    def expect(self, punct: str) -> None:
        kind, text = self.next()
        if kind != "punct" or text != punct:
            raise self.error(f"expected {punct!r}, found {text!r}")

    def value(self, depth: int) -> Any:
        if depth > MAX_NESTING:
            raise self.error(f"nesting is deeper than {MAX_NESTING}")
        kind, text = self.next()
        if kind == "str":
            return _json_string(text, self)
        if kind == "num":
            return _number(text, self)
        if kind == "word":
            if text in _LITERALS:
                return _LITERALS[text]
            if text in _TYPED:
                tkind, payload = self.next()
                if tkind != "str":
                    raise self.error(f"{text} is followed by a JSON string")
                return _typed(text, _json_string(payload, self), self)
            raise self.error(f"unknown word {text!r}")
        if text == "?":
            return self.field()
        if text == "(":
            return self.sequence(depth + 1)
        if text == "{":
            return self.braces(depth + 1)
        raise self.error(f"unexpected {text!r}")

    def field(self) -> Any:
        """After a ``?``: a formal when a wire type's name follows, else ANY."""
        if not self.template:
            raise self.error("'?' (any value) is for templates: read them with parse_template")
        token = self.peek()
        if token is None or token[0] != "word":
            return ANY
        self.next()
        formal = FORMAL_TYPES.get(token[1])
        if formal is None:
            raise self.error(f"unknown type {token[1]!r}; types are {', '.join(FORMAL_TYPES)}")
        return formal

    def sequence(self, depth: int) -> tuple[Value, ...]:
        out: list[Value] = []
        while True:
            token = self.peek()
            if token == ("punct", ")"):
                self.next()
                return tuple(out)
            out.append(self.value(depth))
            kind, text = self.next()
            if text == ")" and kind == "punct":
                return tuple(out)
            if text != "," or kind != "punct":
                raise self.error(f"expected ',' or ')', found {text!r}")

    def braces(self, depth: int) -> Map | dict[str, Any] | RecordData:
        token = self.peek()
        if token == ("word", "$PK"):
            if self.template:
                raise self.error("a record is not a template")
            return self.record(depth)
        out: dict[str, Value] = {}
        while True:
            kind, text = self.next()
            if kind == "punct" and text == "}":
                return out if self.template else Map(out)
            if kind != "str":
                raise self.error(f"a map's keys are JSON strings, found {text!r}")
            key = _json_string(text, self)
            if key in out:
                raise self.error(f"the key {text} appears twice")
            self.expect(":")
            out[key] = self.value(depth)
            kind, text = self.next()
            if kind == "punct" and text == "}":
                return out if self.template else Map(out)
            if kind != "punct" or text != ",":
                raise self.error(f"expected ',' or '}}', found {text!r}")

    def record(self, depth: int) -> RecordData:
        fields: dict[str, Value] = {}
        address: Value = None
        version = 1
        while True:
            kind, text = self.next()
            if kind == "punct" and text == "}" and address is not None:  # after a trailing comma
                break
            if kind not in ("word", "num") or (_TAG.fullmatch(text) is None and text[0] != "$"):
                raise self.error(f"expected a tag, found {text!r}")
            self.expect(":")
            v = self.value(depth)
            if text == "$PK":
                if not isinstance(v, URI):
                    raise self.error("$PK is the record's address, a uri")
                address = v
            elif text == "$version":
                if type(v) is not int or v < 0:
                    raise self.error("$version is an int >= 0")
                version = v
            elif text.startswith("$") or text in fields:
                raise self.error(f"the tag {text} cannot be given here (computed, or given twice)")
            else:
                fields[text] = v
            kind, text = self.next()
            if kind == "punct" and text == "}":
                break
            if kind != "punct" or text != ",":
                raise self.error(f"expected ',' or '}}', found {text!r}")
        assert isinstance(address, URI)
        try:
            return RecordData(address, fields, version)
        except InvalidValue as exc:
            raise self.error(f"not a valid record: {exc}") from None


def _json_string(text: str, parser: _Parser) -> str:
    try:
        s: str = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise parser.error(f"{text[:40]} is not a valid JSON string") from None
    return s


def _number(text: str, parser: _Parser) -> int | float:
    if "." in text or "e" in text or "E" in text:
        x = float(text)
        if x in (float("inf"), float("-inf")):
            raise parser.error(f"the float {text[:40]} is out of range")
        return x + 0.0
    try:
        return int(text)
    except ValueError:  # past Python's limit on the digits of an int
        raise parser.error(f"the int {text[:40]}... has too many digits") from None


def _typed(kind: str, payload: str, parser: _Parser) -> Value:
    try:
        if kind == "bytes":
            return _bytes_from(payload)
        if kind == "time":
            return _time_from(payload)
        if kind == "uri":
            return URI(payload)
        return _credit_from(payload)
    except (WireError, InvalidValue) as exc:
        raise parser.error(f"not a valid {kind}: {exc}") from None
